#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// matmul.comp with B stored as fp16: linear layers under VulkanBackend.Options.weightStorage = .float16.
#define HALF_WEIGHTS
#include "matmul.glsl"

void main() { gemmMain(); }
