#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// Scaled dot-product attention with an online softmax (flash-style): one invocation per (query
// row, image·head, chunk of CHUNK output dimensions) walks the keys once, keeping the running
// maximum, the running sum of weights and its share of the weighted values. The Lq × Lk score
// matrix is never stored. Head dimensions above CHUNK take several chunks, each recomputing the
// scores (the VAE's single 512-wide head: 8 chunks); q, k, v are [N, L, heads·D].
#define CHUNK 64
layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer K { float k[]; };
layout(set = 0, binding = 2) readonly buffer V { float v[]; };
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint lq, lk, heads, d, qOff, kOff, vOff, yOff, causal;
    float scale;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x;
    if (i >= p.lq) return;   // no barriers below
    uint image = gl_WorkGroupID.y / p.heads, h = gl_WorkGroupID.y % p.heads;
    uint first = gl_WorkGroupID.z * CHUNK;
    uint width = p.heads * p.d;
    uint dims = min(CHUNK, p.d - first);
    uint qRow = p.qOff + (image * p.lq + i) * width + h * p.d;
    uint keys = p.causal != 0u ? min(i + 1u, p.lk) : p.lk;
    float acc[CHUNK];
    for (uint t = 0u; t < CHUNK; t++) acc[t] = 0.0;
    float m = -3.402823466e38, l = 0.0;
    for (uint j = 0u; j < keys; j++) {
        uint kRow = (image * p.lk + j) * width + h * p.d;
        float s = 0.0;
        for (uint t = 0u; t < p.d; t++) s += q[qRow + t] * k[p.kOff + kRow + t];
        s *= p.scale;
        float mNew = max(m, s);
        float correction = exp(m - mNew), weight = exp(s - mNew);
        l = l * correction + weight;
        for (uint t = 0u; t < dims; t++) acc[t] = acc[t] * correction + weight * v[p.vOff + kRow + first + t];
        m = mNew;
    }
    float inv = 1.0 / l;
    uint yRow = p.yOff + (image * p.lq + i) * width + h * p.d + first;
    for (uint t = 0u; t < dims; t++) y[yRow + t] = acc[t] * inv;
}
