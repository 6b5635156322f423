// NHWC convolution as an implicit GEMM: M = N·OH·OW output pixels, N = output channels,
// K = KH·KW·CI; A is gathered from x on the fly (zero outside the padded image), B is the weight in
// [KH, KW, CI, CO] order (conv_weight.comp, once at load). Epilogue: bias, the addend (kind 1:
// one value per image and channel; kind 2: the full output), then ReLU when asked.
layout(set = 0, binding = 0) readonly buffer X { float x[]; };
#ifdef HALF_WEIGHTS
layout(set = 0, binding = 1) readonly buffer Wt { uint wh[]; };   // fp16 pairs (half.glsl)
#define HALF_WORDS wh
#include "half.glsl"
#else
layout(set = 0, binding = 1) readonly buffer Wt { float w[]; };
#endif
layout(set = 0, binding = 2) writeonly buffer Out { float y[]; };
layout(set = 0, binding = 3) readonly buffer Bias { float bias[]; };
layout(set = 0, binding = 4) readonly buffer Addend { float addend[]; };
layout(push_constant) uniform P {
    uint batch, M, N, K;
    uint H, W, CI, OH, OW, KW, strideH, strideW, padTop, padLeft;
    uint xOff, wOff, yOff, biasOff, addOff;
    uint hasBias, addendKind, relu;
} p;

// A row is an output pixel: its image's first element and the input corner its window starts at.
struct RowA { uint imageBase; int iy0, ix0; };
// A column is a (ky, kx, ci) position in the window.
struct ColA { int ky, kx; uint ci; };

RowA rowA(uint z, uint m) {
    uint image = m / (p.OH * p.OW), pixel = m % (p.OH * p.OW);
    uint oy = pixel / p.OW, ox = pixel % p.OW;
    return RowA(p.xOff + image * p.H * p.W * p.CI, int(oy * p.strideH) - int(p.padTop), int(ox * p.strideW) - int(p.padLeft));
}

ColA colA(uint kk) {
    return ColA(int(kk / (p.KW * p.CI)), int((kk / p.CI) % p.KW), kk % p.CI);
}

float loadA(RowA row, ColA col) {
    int iy = row.iy0 + col.ky, ix = row.ix0 + col.kx;
    if (iy < 0 || ix < 0 || iy >= int(p.H) || ix >= int(p.W)) return 0.0;   // zero padding
    return x[row.imageBase + (uint(iy) * p.W + uint(ix)) * p.CI + col.ci];
}
bool bTransposed() { return false; }
#ifdef HALF_WEIGHTS
float loadB(uint z, uint kk, uint n) { return halfAt(p.wOff + kk * p.N + n); }
#else
float loadB(uint z, uint kk, uint n) { return w[p.wOff + kk * p.N + n]; }
#endif
void storeC(uint z, uint m, uint n, float value) {
    if (p.hasBias != 0u) value += bias[p.biasOff + n];
    if (p.addendKind == 1u) value += addend[p.addOff + (m / (p.OH * p.OW)) * p.N + n];
    if (p.addendKind == 2u) value += addend[p.addOff + m * p.N + n];
    if (p.relu != 0u) value = max(value, 0.0);
    y[p.yOff + m * p.N + n] = value;
}

#ifdef COOPERATIVE_MATRIX
#include "gemm_coop.glsl"
#else
#include "gemm.glsl"
#endif

