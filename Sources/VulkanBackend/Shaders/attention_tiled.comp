#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// attention.comp with the keys and values staged through shared memory: the workgroup's 64 query
// rows load each tile of TILE keys (and their values for this chunk of output dimensions) once,
// with neighbouring invocations reading neighbouring words, instead of every row fetching every
// key from global memory. Same online softmax, same result up to summation order. Used when the
// head dimension is at most MAXD and the device has the shared memory (VulkanBackend+Ops.swift).
#define CHUNK 64
#define TILE 16
#define MAXD 160
layout(set = 0, binding = 0) readonly buffer Q { float q[]; };
layout(set = 0, binding = 1) readonly buffer K { float k[]; };
layout(set = 0, binding = 2) readonly buffer V { float v[]; };
layout(set = 0, binding = 3) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint lq, lk, heads, d, qOff, kOff, vOff, yOff, causal;
    float scale;
} p;

shared float kTile[TILE * MAXD];
shared float vTile[TILE * CHUNK];

void main() {
    uint lid = gl_LocalInvocationID.x;
    uint i = gl_GlobalInvocationID.x;
    bool live = i < p.lq;   // inactive rows still load tiles and meet every barrier
    uint image = gl_WorkGroupID.y / p.heads, h = gl_WorkGroupID.y % p.heads;
    uint first = gl_WorkGroupID.z * CHUNK;
    uint width = p.heads * p.d;
    uint dims = min(CHUNK, p.d - first);
    uint lastRow = min(gl_WorkGroupID.x * WG + WG, p.lq) - 1u;
    uint groupKeys = p.causal != 0u ? min(lastRow + 1u, p.lk) : p.lk;
    uint keys = live ? (p.causal != 0u ? min(i + 1u, p.lk) : p.lk) : 0u;
    uint qRow = p.qOff + (image * p.lq + min(i, p.lq - 1u)) * width + h * p.d;
    float acc[CHUNK];
    for (uint t = 0u; t < CHUNK; t++) acc[t] = 0.0;
    float m = -3.402823466e38, l = 0.0;
    for (uint j0 = 0u; j0 < groupKeys; j0 += TILE) {
        uint n = min(uint(TILE), groupKeys - j0);
        for (uint e = lid; e < n * p.d; e += WG) {
            uint r = e / p.d, t = e % p.d;
            kTile[r * p.d + t] = k[p.kOff + (image * p.lk + j0 + r) * width + h * p.d + t];
        }
        for (uint e = lid; e < n * dims; e += WG) {
            uint r = e / dims, t = e % dims;
            vTile[r * CHUNK + t] = v[p.vOff + (image * p.lk + j0 + r) * width + h * p.d + first + t];
        }
        barrier();
        uint mine = keys > j0 ? min(n, keys - j0) : 0u;
        for (uint r = 0u; r < mine; r++) {
            float s = 0.0;
            for (uint t = 0u; t < p.d; t++) s += q[qRow + t] * kTile[r * p.d + t];
            s *= p.scale;
            float mNew = max(m, s);
            float correction = exp(m - mNew), weight = exp(s - mNew);
            l = l * correction + weight;
            for (uint t = 0u; t < dims; t++) acc[t] = acc[t] * correction + weight * vTile[r * CHUNK + t];
            m = mNew;
        }
        barrier();
    }
    if (!live) return;
    float inv = 1.0 / l;
    uint yRow = p.yOff + (image * p.lq + i) * width + h * p.d + first;
    for (uint t = 0u; t < dims; t++) y[yRow + t] = acc[t] * inv;
}
