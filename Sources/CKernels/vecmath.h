// Branch-free scalar maths written so the compiler vectorises the loops that call it.
// Each function is compiled twice through the kernels that inline it: once for the baseline
// x86-64 target and once for AVX-512 (chosen at run time).
#ifndef SD_VECMATH_H
#define SD_VECMATH_H
#include <stdint.h>
#include <string.h>

#define SD_INLINE static inline __attribute__((always_inline))

SD_INLINE float sd_bits_to_float(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
SD_INLINE uint32_t sd_float_to_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/// exp(x) by Cody-Waite range reduction and the Cephes degree-6 polynomial: relative error
/// < 2e-7 on [-87, 88]; inputs are clamped there (exp(-87) ~ 1.6e-38, far below any use here).
SD_INLINE float sd_exp(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * sd_bits_to_float((uint32_t)((int32_t)k + 127) << 23);
}

SD_INLINE float sd_sigmoid(float x) { return 1.0f / (1.0f + sd_exp(-x)); }

/// tanh through exp; absolute error ~1e-7 (it loses relative accuracy only below |x| ~ 1e-3,
/// where the absolute error stays at float epsilon scale).
SD_INLINE float sd_tanh(float x) {
    float a = x < -9.0f ? -9.0f : (x > 9.0f ? 9.0f : x);
    float e = sd_exp(2.0f * a);
    return (e - 1.0f) / (e + 1.0f);
}

/// erf via the Chebyshev-fitted erfc of Numerical Recipes (fractional error < 1.2e-7 in erfc,
/// so the absolute error of erf is below 2.4e-7 everywhere).
SD_INLINE float sd_erf(float x) {
    float z = x < 0 ? -x : x;
    float t = 1.0f / (1.0f + 0.5f * z);
    float poly = -1.26551223f + t * (1.00002368f + t * (0.37409196f + t * (0.09678418f +
                 t * (-0.18628806f + t * (0.27886807f + t * (-1.13520398f + t * (1.48851587f +
                 t * (-0.82215223f + t * 0.17087277f))))))));
    float erfc = t * sd_exp(-z * z + poly);
    float r = 1.0f - erfc;
    return x < 0 ? -r : r;
}

/// Exact-form GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
SD_INLINE float sd_gelu(float x) { return 0.5f * x * (1.0f + sd_erf(x * 0.70710678118654752f)); }

/// tanh-approximation GELU (PyTorch approximate="tanh").
SD_INLINE float sd_gelu_tanh(float x) {
    return 0.5f * x * (1.0f + sd_tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/// bf16 with round-to-nearest-even; NaN stays a quiet NaN.
SD_INLINE uint16_t sd_f32_to_bf16(float f) {
    uint32_t u = sd_float_to_bits(f);
    uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7FFFFFFFu) > 0x7F800000u) ? 0x7FC0u : rounded);
}

SD_INLINE float sd_bf16_to_f32(uint16_t h) { return sd_bits_to_float((uint32_t)h << 16); }

/// IEEE half to float, including subnormals, infinities and NaN.
SD_INLINE float sd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t normal = sign | ((exp + 112u) << 23) | (mant << 13);
    uint32_t special = sign | 0x7F800000u | (mant << 13);
    float sub = (float)mant * 5.9604644775390625e-8f;   // mant * 2^-24
    uint32_t subnormal = sign | sd_float_to_bits(sub);
    return sd_bits_to_float(exp == 0x1Fu ? special : (exp == 0 ? subnormal : normal));
}

#endif
