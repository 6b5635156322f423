#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// conv2d.comp with the weight stored as fp16 (VulkanBackend.Options.weightStorage = .float16).
#define HALF_WEIGHTS
#include "conv2d.glsl"

void main() { gemmMain(); }
