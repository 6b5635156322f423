// fp16 weight storage without any device feature: two halves per 32-bit word, unpacked exactly by
// unpackHalf2x16 (core GLSL). Packing rounds to nearest, ties to even, in integer arithmetic —
// packHalf2x16 leaves the rounding to the driver — so every device stores the same bits as
// Swift's Float16(x).

float halfAt(uint index) {
    return unpackHalf2x16(HALF_WORDS[index >> 1])[index & 1u];
}

uint halfBits(float value) {
    uint x = floatBitsToUint(value);
    uint sign = (x >> 16) & 0x8000u;
    uint e = (x >> 23) & 0xFFu, m = x & 0x7FFFFFu;
    if (e == 255u) return sign | 0x7C00u | (m != 0u ? 0x200u : 0u);   // infinity, NaN (quiet)
    int he = int(e) - 112;                                            // the half's biased exponent
    if (he >= 31) return sign | 0x7C00u;                              // overflow: infinity
    if (he <= 0) {                                                    // subnormal half, or zero
        if (he < -10) return sign;
        uint full = m | 0x800000u;
        uint shift = uint(14 - he);
        uint h = full >> shift, rest = full & ((1u << shift) - 1u), halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (h & 1u) != 0u)) h += 1u;
        return sign | h;
    }
    uint h = (uint(he) << 10) | (m >> 13), rest = m & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u) != 0u)) h += 1u;   // a carry rounds up the exponent
    return sign | h;
}
