// gemm.glsl's tiled product on cooperative matrices (GL_KHR_cooperative_matrix: tensor cores /
// matrix cores), with the same interface: rowA, colA, loadA, loadB, bTransposed, storeC and
// p.batch, p.M, p.N, p.K (included by matmul.glsl and conv2d.glsl when COOPERATIVE_MATRIX is set).
// fp16 A and B, fp32 accumulation. The hardware tile TM × TN × TK comes in specialization constants
// 1–3 from what vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR reports (Swift picks one with
// fp16 × fp16 → fp32 at subgroup scope; 16 × 16 × 16 when offered).
// A workgroup of 128 invocations computes a (4·TM) × (4·TN) block of C: 16 hardware tiles shared
// out round-robin over its subgroups (gl_NumSubgroups, whatever size the driver picks; with fewer
// than 2 subgroups the block takes two passes). K advances 2·TK at a time: all invocations stage
// the A and B slabs through shared memory, converting fp32 (or packed fp16 weights) to fp16 and
// padding with zeros past M, N and K, so every shape is handled without alignment rules (values
// beyond fp16's ±65504 become ±inf: the portable shaders remain for such data). Results go
// through a shared fp32 block so the epilogue (bias, residual/addend, bounds) stays storeC's.
layout(local_size_x = 128) in;
layout(constant_id = 1) const uint TM = 16;
layout(constant_id = 2) const uint TN = 16;
layout(constant_id = 3) const uint TK = 16;
const uint BM = 4u * TM, BN = 4u * TN, BK = 2u * TK;
const uint TILES = 16u;     // 4 × 4 hardware tiles per workgroup
const uint PER_SUBGROUP = 8u;
const uint INVOCATIONS = 128u;
// Each invocation loads column lid % BK of A-slab rows lid / BK + j·(128 / BK), j < A_ROWS, in every
// K step (as gemm.glsl does), so those rows are decomposed once (conv2d's need divisions). Swift's
// CooperativeMatrix.select keeps BK a divisor of 128 and A_ROWS ≤ MAX_A_ROWS.
const uint A_ROWS = BM * BK / INVOCATIONS;
const uint MAX_A_ROWS = 32u;

shared float16_t slabA[BM * BK];   // row-major, BK per row
shared float16_t slabB[BK * BN];   // row-major, BN per row
shared float blockC[BM * BN];      // row-major, BN per row

void gemmMain() {
    uint batch = gl_WorkGroupID.z;
    uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
    uint lid = gl_LocalInvocationID.x;
    uint subgroups = gl_NumSubgroups, sg = gl_SubgroupID;
    uint ac = lid % BK, ar0 = lid / BK, rowStep = INVOCATIONS / BK;
    RowA rows[MAX_A_ROWS];
    for (uint j = 0u; j < A_ROWS; j++) rows[j] = rowA(batch, min(row0 + ar0 + j * rowStep, p.M - 1u));
    for (uint first = 0u; first < TILES; first += subgroups * PER_SUBGROUP) {
        coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator> acc[PER_SUBGROUP];
        for (uint i = 0u; i < PER_SUBGROUP; i++) {
            acc[i] = coopmat<float, gl_ScopeSubgroup, TM, TN, gl_MatrixUseAccumulator>(0.0);
        }
        for (uint k0 = 0u; k0 < p.K; k0 += BK) {
            uint kk = k0 + ac;
            ColA col = colA(min(kk, p.K - 1u));
            for (uint j = 0u; j < A_ROWS; j++) {
                uint r = ar0 + j * rowStep, m = row0 + r;
                float v = 0.0;
                if (m < p.M && kk < p.K) v = loadA(rows[j], col);
                slabA[r * BK + ac] = float16_t(v);
            }
            for (uint e = lid; e < BK * BN; e += INVOCATIONS) {
                // Neighbouring invocations read neighbouring words of B: along N when B is K × N,
                // along K when it is stored transposed (a linear layer's weight).
                uint r = bTransposed() ? e % BK : e / BN, c = bTransposed() ? e / BK : e % BN;
                uint n = col0 + c, kb = k0 + r;
                float v = 0.0;
                if (n < p.N && kb < p.K) v = loadB(batch, kb, n);
                slabB[r * BN + c] = float16_t(v);
            }
            barrier();
            for (uint i = 0u; i < PER_SUBGROUP; i++) {
                uint t = first + sg + i * subgroups;
                if (t >= min(TILES, first + subgroups * PER_SUBGROUP)) break;
                uint tr = t / 4u, tc = t % 4u;
                for (uint ks = 0u; ks < BK; ks += TK) {
                    coopmat<float16_t, gl_ScopeSubgroup, TM, TK, gl_MatrixUseA> matA;
                    coopmat<float16_t, gl_ScopeSubgroup, TK, TN, gl_MatrixUseB> matB;
                    coopMatLoad(matA, slabA, tr * TM * BK + ks, BK, gl_CooperativeMatrixLayoutRowMajor);
                    coopMatLoad(matB, slabB, ks * BN + tc * TN, BN, gl_CooperativeMatrixLayoutRowMajor);
                    acc[i] = coopMatMulAdd(matA, matB, acc[i]);
                }
            }
            barrier();
        }
        for (uint i = 0u; i < PER_SUBGROUP; i++) {
            uint t = first + sg + i * subgroups;
            if (t >= min(TILES, first + subgroups * PER_SUBGROUP)) break;
            uint tr = t / 4u, tc = t % 4u;
            coopMatStore(acc[i], blockC, tr * TM * BN + tc * TN, BN, gl_CooperativeMatrixLayoutRowMajor);
        }
    }
    barrier();
    for (uint e = lid; e < BM * BN; e += INVOCATIONS) {
        uint m = row0 + e / BN, n = col0 + e % BN;
        if (m < p.M && n < p.N) storeC(batch, m, n, blockC[e]);
    }
}
