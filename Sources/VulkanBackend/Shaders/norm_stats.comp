#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// GroupNorm over large groups, pass 1 of 3: workgroup (chunk, image·group) reduces one chunk of
// its group's values to (count, mean, sum of squared deviations), two passes over the chunk so a
// large mean does not cancel the variance away. norm_combine.comp merges the chunks.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) readonly buffer O { float o[]; };
layout(set = 0, binding = 2) writeonly buffer S { float stats[]; };
layout(push_constant) uniform P {
    uint pixels, c, groups, hasOffset, chunkSize, chunks, xOff, oOff;
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
    uint id = gl_WorkGroupID.y, chunk = gl_WorkGroupID.x;
    uint image = id / p.groups, g = id % p.groups;
    uint per = p.c / p.groups, n = p.pixels * per;
    uint first = chunk * p.chunkSize, last = min(first + p.chunkSize, n);
    uint lid = gl_LocalInvocationID.x;
    float s = 0.0;
    for (uint i = first + lid; i < last; i += WG) s += load(image, g, per, i);
    float count = float(last - first);
    float mean = reduceSum(s) / count;
    float q = 0.0;
    for (uint i = first + lid; i < last; i += WG) { float d = load(image, g, per, i) - mean; q += d * d; }
    float m2 = reduceSum(q);
    if (lid == 0u) {
        uint at = (id * p.chunks + chunk) * 3u;
        stats[at] = count;
        stats[at + 1u] = mean;
        stats[at + 2u] = m2;
    }
}
