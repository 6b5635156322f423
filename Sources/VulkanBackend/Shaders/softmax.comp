#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// Softmax over the last dimension: one workgroup per row, max and sum reduced in shared memory.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint rows, c, xOff, yOff; } p;

shared float partial[WG];

void main() {
    uint row = flatGroup();
    if (row >= p.rows) return;   // uniform across the workgroup: no barrier is skipped by some only
    uint lid = gl_LocalInvocationID.x;
    uint base = row * p.c;
    float m = -3.402823466e38;
    for (uint j = lid; j < p.c; j += WG) m = max(m, x[p.xOff + base + j]);
    partial[lid] = m;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (lid < s) partial[lid] = max(partial[lid], partial[lid + s]);
        barrier();
    }
    float top = partial[0];
    barrier();
    float sum = 0.0;
    for (uint j = lid; j < p.c; j += WG) sum += exp(x[p.xOff + base + j] - top);
    partial[lid] = sum;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (lid < s) partial[lid] += partial[lid + s];
        barrier();
    }
    float inv = 1.0 / partial[0];
    for (uint j = lid; j < p.c; j += WG) y[p.yOff + base + j] = exp(x[p.xOff + base + j] - top) * inv;
}
