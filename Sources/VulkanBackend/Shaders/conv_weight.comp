#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// PyTorch's OIHW convolution weight → [KH, KW, CI, CO], the B matrix of conv2d.comp; once at load.
layout(set = 0, binding = 0) readonly buffer Src { float src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { float dst[]; };
layout(push_constant) uniform P { uint count, O, I, KH, KW, srcOff, dstOff; } p;

void main() {
    for (uint e = gl_GlobalInvocationID.x; e < p.count; e += gridStride()) {
        uint kx = e % p.KW, ky = (e / p.KW) % p.KH, ci = (e / (p.KW * p.KH)) % p.I, o = e / (p.KW * p.KH * p.I);
        dst[p.dstOff + ((ky * p.KW + kx) * p.I + ci) * p.O + o] = src[p.srcOff + e];
    }
}
