#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"
layout(local_size_x = WG) in;

// GroupNorm and LayerNorm: one workgroup per (image, group) normalises `pixels` × C/groups values
// (LayerNorm: one "image" per row, pixels 1, groups 1). Two passes over the data — the mean, then
// the mean squared deviation — so a large mean does not cancel the variance away. `offset` [N, C],
// when present, is added to x first (a ResNet's time embedding); SiLU last when asked.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer O { float o[]; };
layout(set = 0, binding = 2) readonly buffer W { float w[]; };
layout(set = 0, binding = 3) readonly buffer B { float b[]; };
layout(set = 0, binding = 4) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint images, pixels, c, groups, hasOffset, fusedSiLU;
    uint xOff, oOff, wOff, bOff, yOff;
    float eps;
} p;

shared float partial[WG];

float reduceSum(float v) {
    uint lid = gl_LocalInvocationID.x;
    partial[lid] = v;
    barrier();
    for (uint s = WG / 2u; s > 0u; s >>= 1) {
        if (lid < s) partial[lid] += partial[lid + s];
        barrier();
    }
    float total = partial[0];
    barrier();
    return total;
}

float load(uint image, uint g, uint per, uint idx) {
    uint pixel = idx / per, ch = g * per + idx % per;
    float v = x[p.xOff + (image * p.pixels + pixel) * p.c + ch];
    if (p.hasOffset != 0u) v += o[p.oOff + image * p.c + ch];
    return v;
}

void main() {
    uint id = flatGroup();
    if (id >= p.images * p.groups) return;   // uniform across the workgroup
    uint image = id / p.groups, g = id % p.groups;
    uint per = p.c / p.groups, n = p.pixels * per;
    uint lid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = lid; i < n; i += WG) s += load(image, g, per, i);
    float mean = reduceSum(s) / float(n);
    float q = 0.0;
    for (uint i = lid; i < n; i += WG) { float d = load(image, g, per, i) - mean; q += d * d; }
    float rstd = inversesqrt(reduceSum(q) / float(n) + p.eps);
    for (uint i = lid; i < n; i += WG) {
        uint pixel = i / per, ch = g * per + i % per;
        float v = (load(image, g, per, i) - mean) * rstd * w[p.wOff + ch] + b[p.bOff + ch];
        y[p.yOff + (image * p.pixels + pixel) * p.c + ch] = p.fusedSiLU != 0u ? silu(v) : v;
    }
}
