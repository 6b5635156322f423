#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"
layout(local_size_x = WG) in;

// fp32 → fp16 (round to nearest even), two per word: the fp16 weight storage of conv2d_half and
// matmul_half. An odd count leaves the last word's upper half zero.
layout(set = 0, binding = 0) readonly buffer Src { float src[]; };
layout(set = 0, binding = 1) writeonly buffer Dst { uint dst[]; };
layout(push_constant) uniform P { uint count, srcOff, dstOff; } p;
#define HALF_WORDS dst
#include "half.glsl"

void main() {
    uint words = (p.count + 1u) / 2u;
    for (uint w = gl_GlobalInvocationID.x; w < words; w += gridStride()) {
        uint lo = halfBits(src[p.srcOff + 2u * w]);
        uint hi = 2u * w + 1u < p.count ? halfBits(src[p.srcOff + 2u * w + 1u]) : 0u;
        dst[p.dstOff + w] = lo | (hi << 16);
    }
}
