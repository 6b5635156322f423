// Tiled matrix product core, included by matmul.glsl and conv2d.glsl after they define
//   RowA rowA(uint batch, uint m)             — what loading row m of A needs (computed once)
//   ColA colA(uint kk)                        — what loading column kk of A needs (once per tile)
//   float loadA(RowA row, ColA col)           — A[batch][m][kk], called only in range
//   float loadB(uint batch, uint kk, uint n)  — B[batch] (K × N), called only in range
//   bool bTransposed()                        — whether B is stored N × K
//   void storeC(uint batch, uint m, uint n, float value)
// (conv2d's rows and columns need divisions to decompose: hoisted out of the K loop.)
// and the push-constant fields p.batch, p.M, p.N, p.K. A workgroup of 64 invocations computes a
// 32 × 32 tile of C, each invocation 4 × 4 outputs strided by 8 (so neighbours read neighbouring
// shared-memory words); K advances 8 at a time through 2 KiB of shared memory — well under the
// 16 KiB every Vulkan device offers.
#define BM 32
#define BN 32
#define BK 8
layout(local_size_x = WG) in;

shared float tileA[BK][BM];
shared float tileB[BK][BN];

void gemmMain() {
    uint batch = gl_WorkGroupID.z;
    uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
    uint lid = gl_LocalInvocationID.x;
    uint tx = lid % 8u, ty = lid / 8u;
    float acc[4][4];
    for (int r = 0; r < 4; r++) for (int c = 0; c < 4; c++) acc[r][c] = 0.0;
    // A tile (32 rows × 8): invocation lid loads column lid % 8 of rows lid / 8 + 8t, t < 4, in
    // every K step, so its rows are decomposed once here.
    uint ak = lid % BK;
    RowA rows[4];
    for (uint t = 0u; t < 4u; t++) rows[t] = rowA(batch, min(row0 + (lid + WG * t) / BK, p.M - 1u));
    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
        uint kk = k0 + ak;
        ColA col = colA(min(kk, p.K - 1u));
        for (uint t = 0u; t < 4u; t++) {
            uint e = lid + WG * t;
            uint ar = e / BK;
            uint m = row0 + ar;
            tileA[ak][ar] = (m < p.M && kk < p.K) ? loadA(rows[t], col) : 0.0;
            // B tile (8 × 32): neighbouring invocations read neighbouring words of B — along N
            // when B is K × N, along K when it is stored transposed (a linear layer's weight).
            uint bk = bTransposed() ? e % BK : e / BN, bc = bTransposed() ? e / BK : e % BN;
            uint n = col0 + bc, kb = k0 + bk;
            tileB[bk][bc] = (n < p.N && kb < p.K) ? loadB(batch, kb, n) : 0.0;
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk++) {
            float a[4], b[4];
            for (uint r = 0u; r < 4u; r++) a[r] = tileA[kk][ty + 8u * r];
            for (uint c = 0u; c < 4u; c++) b[c] = tileB[kk][tx + 8u * c];
            for (uint r = 0u; r < 4u; r++) for (uint c = 0u; c < 4u; c++) acc[r][c] += a[r] * b[c];
        }
        barrier();
    }
    for (uint r = 0u; r < 4u; r++) {
        uint m = row0 + ty + 8u * r;
        if (m >= p.M) continue;
        for (uint c = 0u; c < 4u; c++) {
            uint n = col0 + tx + 8u * c;
            if (n < p.N) storeC(batch, m, n, acc[r][c]);
        }
    }
}
