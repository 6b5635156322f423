#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
// The cooperative-matrix variant (gemm_coop.glsl); compiled with tools/compile_shaders.sh's newer glslang.
#define COOPERATIVE_MATRIX
// matmul.comp with B stored as fp16: linear layers under VulkanBackend.Options.weightStorage = .float16.
#define HALF_WEIGHTS
#include "matmul.glsl"

void main() { gemmMain(); }
