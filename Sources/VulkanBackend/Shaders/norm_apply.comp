#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"
layout(local_size_x = WG) in;

// GroupNorm over large groups, pass 3 of 3: every element at once, with its group's mean and
// 1/σ from norm_combine.comp; the offset first and SiLU last, as in norm.comp.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer O { float o[]; };
layout(set = 0, binding = 2) readonly buffer W { float w[]; };
layout(set = 0, binding = 3) readonly buffer B { float b[]; };
layout(set = 0, binding = 4) readonly buffer R { float result[]; };
layout(set = 0, binding = 5) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint count, pixels, c, groups, hasOffset, fusedSiLU, xOff, oOff, wOff, bOff, yOff;
} p;

void main() {
    uint per = p.c / p.groups;
    for (uint e = gl_GlobalInvocationID.x; e < p.count; e += gridStride()) {
        uint ch = e % p.c, image = e / (p.pixels * p.c);
        uint id = image * p.groups + ch / per;
        float v = x[p.xOff + e];
        if (p.hasOffset != 0u) v += o[p.oOff + image * p.c + ch];
        float r = (v - result[2u * id]) * result[2u * id + 1u] * w[p.wOff + ch] + b[p.bOff + ch];
        y[p.yOff + e] = p.fusedSiLU != 0u ? silu(r) : r;
    }
}
