#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// One input of a channel concatenation: x [pixels, C] → columns [offset, offset + C) of y [pixels, total].
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) buffer Y { float y[]; };
layout(push_constant) uniform P { uint count, C, total, offset, xOff, yOff; } p;

void main() {
    for (uint e = gl_GlobalInvocationID.x; e < p.count; e += gridStride()) {
        uint pixel = e / p.C, j = e % p.C;
        y[p.yOff + pixel * p.total + p.offset + j] = x[p.xOff + e];
    }
}
