// Batched C = A · B (B transposed when asked; shared by every batch when asked) + bias[N] +
// residual[M × N]: matmul, and linear layers with their PyTorch [out, in] weight as B transposed.
layout(set = 0, binding = 0) readonly buffer A { float a[]; };
#ifdef HALF_WEIGHTS
layout(set = 0, binding = 1) readonly buffer B { uint bh[]; };   // fp16 pairs (half.glsl)
#define HALF_WORDS bh
#include "half.glsl"
#else
layout(set = 0, binding = 1) readonly buffer B { float b[]; };
#endif
layout(set = 0, binding = 2) writeonly buffer C { float y[]; };
layout(set = 0, binding = 3) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 4) readonly buffer Residual { float residual[]; };
layout(push_constant) uniform P {
    uint batch, M, N, K, aOff, bOff, yOff, biasOff, resOff;
    uint transposeB, sharedB, hasBias, hasResidual;
} p;

struct RowA { uint base; };
#define ColA uint
RowA rowA(uint z, uint m) { return RowA(p.aOff + (z * p.M + m) * p.K); }
ColA colA(uint kk) { return kk; }
float loadA(RowA row, ColA kk) { return a[row.base + kk]; }
bool bTransposed() { return p.transposeB != 0u; }
float loadB(uint z, uint kk, uint n) {
    uint base = p.bOff + (p.sharedB != 0u ? 0u : z * p.K * p.N);
    uint at = p.transposeB != 0u ? base + n * p.K + kk : base + kk * p.N + n;
#ifdef HALF_WEIGHTS
    return halfAt(at);
#else
    return b[at];
#endif
}
void storeC(uint z, uint m, uint n, float value) {
    uint at = (z * p.M + m) * p.N + n;
    if (p.hasBias != 0u) value += bias[p.biasOff + n];
    if (p.hasResidual != 0u) value += residual[p.resOff + at];
    y[p.yOff + at] = value;
}

#ifdef COOPERATIVE_MATRIX
#include "gemm_coop.glsl"
#else
#include "gemm.glsl"
#endif

