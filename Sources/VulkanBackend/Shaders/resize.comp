#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// Nearest-neighbour resize [N, H, W, C] → [N, OH, OW, C] with PyTorch's rule: source = ⌊dst · in / out⌋.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
layout(set = 0, binding = 1) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint count, H, W, C, OH, OW, xOff, yOff; } p;

void main() {
    for (uint e = gl_GlobalInvocationID.x; e < p.count; e += gridStride()) {
        uint ch = e % p.C, ox = (e / p.C) % p.OW, oy = (e / (p.C * p.OW)) % p.OH, image = e / (p.C * p.OW * p.OH);
        uint iy = oy * p.H / p.OH, ix = ox * p.W / p.OW;
        y[p.yOff + e] = x[p.xOff + ((image * p.H + iy) * p.W + ix) * p.C + ch];
    }
}
