#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"
layout(local_size_x = WG) in;

// x [rows, 2F] → y [rows, F]: first half · gelu(second half) (diffusers' GEGLU order).
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count, f, xOff, yOff; } p;

void main() {
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += gridStride()) {
        uint r = i / p.f, j = i % p.f;
        uint base = p.xOff + r * 2u * p.f;
        y[p.yOff + i] = x[base + j] * geluErf(x[base + p.f + j]);
    }
}
