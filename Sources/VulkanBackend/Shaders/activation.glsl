// Activations, each matching ReferenceBackend.apply (Sources/Tensors/ReferenceBackend.swift).

// erf as 1 − erfc, with erfc from Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7
// everywhere): GLSL has no erf. In GELU the error is at most 0.5·|x|·1.2e-7.
float erfApprox(float x) {
    float z = abs(x);
    float t = 1.0 / (1.0 + 0.5 * z);
    float r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
              t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
              t * (-0.82215223 + t * 0.17087277)))))))));
    float e = 1.0 - r;
    return x >= 0.0 ? e : -e;
}

// tanh through exp on a clamped argument: tanh(±9) rounds to ±1 in fp32, and some drivers' tanh
// overflows to NaN for large arguments.
float tanhSafe(float x) {
    float c = clamp(x, -9.0, 9.0);
    float e = exp(2.0 * c);
    return (e - 1.0) / (e + 1.0);
}

float silu(float x) { return x / (1.0 + exp(-x)); }
float geluErf(float x) { return 0.5 * x * (1.0 + erfApprox(x * 0.70710678118654752)); }
float geluTanh(float x) { return 0.5 * x * (1.0 + tanhSafe(0.7978845608028654 * (x + 0.044715 * x * x * x))); }
float quickGelu(float x) { return x / (1.0 + exp(-1.702 * x)); }

// Codes shared with VulkanBackend+Ops.swift (ActivationCode).
float activate(uint kind, float x) {
    switch (kind) {
    case 1u: return silu(x);
    case 2u: return geluErf(x);
    case 3u: return geluTanh(x);
    case 4u: return quickGelu(x);
    case 5u: return tanhSafe(x);
    default: return x;
    }
}
