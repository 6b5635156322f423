#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// GroupNorm over large groups, pass 2 of 3: one invocation per image·group merges its chunks'
// (count, mean, M2) with Chan et al.'s pairwise formula (stable: no E[x²] − E[x]² cancellation)
// into (mean, 1/√(variance + eps)).
layout(set = 0, binding = 0) readonly buffer S { float stats[]; };
layout(set = 0, binding = 1) writeonly buffer R { float result[]; };
layout(push_constant) uniform P { uint count, chunks; float eps; } p;

void main() {
    uint id = gl_GlobalInvocationID.x;
    if (id >= p.count) return;
    float n = 0.0, mean = 0.0, m2 = 0.0;
    for (uint k = 0u; k < p.chunks; k++) {
        uint at = (id * p.chunks + k) * 3u;
        float nb = stats[at], meanB = stats[at + 1u], m2b = stats[at + 2u];
        float total = n + nb;
        float delta = meanB - mean;
        mean += delta * (nb / total);
        m2 += m2b + delta * delta * (n * nb / total);
        n = total;
    }
    result[2u * id] = mean;
    result[2u * id + 1u] = inversesqrt(m2 / n + p.eps);
}
