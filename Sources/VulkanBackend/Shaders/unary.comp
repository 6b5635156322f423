#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
#include "activation.glsl"
layout(local_size_x = WG) in;

// y = activation(x) for kind 1...5; kind 0: y = clamp(x · mul + add, lo, hi).
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count, xOff, yOff, kind; float mul, add, lo, hi; } p;

void main() {
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += gridStride()) {
        float v = x[p.xOff + i];
        y[p.yOff + i] = p.kind == 0u ? min(max(v * p.mul + p.add, p.lo), p.hi) : activate(p.kind, v);
    }
}
