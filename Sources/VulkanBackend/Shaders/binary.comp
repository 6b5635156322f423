#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// y = a op b with NumPy broadcasting: the output shape (rank ≤ 8) and each operand's element
// strides in it (0 along broadcast dimensions), as OpShapes.broadcast computes them.
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
layout(set = 0, binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint count, rank, op, aOff, bOff, yOff;
    uint shape[8]; uint aStride[8]; uint bStride[8];
} p;

void main() {
    for (uint i = gl_GlobalInvocationID.x; i < p.count; i += gridStride()) {
        uint rem = i, ia = 0u, ib = 0u;
        for (int d = int(p.rank) - 1; d >= 0; d--) {
            uint coord = rem % p.shape[d];
            rem /= p.shape[d];
            ia += coord * p.aStride[d];
            ib += coord * p.bStride[d];
        }
        float u = a[p.aOff + ia], v = b[p.bOff + ib];
        y[p.yOff + i] = p.op == 0u ? u + v : (p.op == 1u ? u * v : u - v);
    }
}
