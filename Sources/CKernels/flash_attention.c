// Fused attention for AVX-512 (fp32) and AVX-512 BF16: the flash-attention scheme on a CPU.
// For a block of query rows, keys are visited in tiles of 64; each tile's scores live only in
// registers and a 64-entry buffer per row, the softmax is kept online (running max m, running sum l,
// the output rescaled by exp(m_old - m_new)), and P·V accumulates straight into the output rows.
// Nothing of size Lq × Lk is ever written. K and V are first packed per (image, head) into the
// layouts the inner loops stream: Kᵀ [d][key] and V [key][d] (bf16: pairs interleaved for VDPBF16PS).
#include "sdkernels.h"
#include "internal.h"
#include <immintrin.h>
#include <math.h>
#include <string.h>

#define F32_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))
#define ROWS 6          // query rows per micro-tile: 6 x 4 accumulators + loads fit 32 registers
#define KEYS 64         // keys per tile (4 vectors)
#define TILES 8         // micro-tiles per task (48 query rows share each K/V tile while it is in L1)

typedef struct {
    long n, lq, lk, heads, dh, dp, lkp;   // dp: head dim padded to 16; lkp: keys padded to 64
    const void *q, *k, *v;
    long q_rs, k_rs, v_rs;
    int bf16;
    float scale;
    float *out;
    void *kt, *vp;                         // packed K^T and V for every (image, head)
    long blocks;                           // query blocks per (image, head)
} flash_job;

static long round_up(long x, long m) { return (x + m - 1) / m * m; }

size_t sd_flash_scratch_bytes(long n, long lk, long heads, long dh, int bf16) {
    size_t es = bf16 ? 2 : 4;
    return 2 * es * (size_t)n * heads * round_up(dh, 16) * round_up(lk, KEYS) + 128;
}

// ------------------------------------------------------------------------------ packing

/// Packs K^T and V of one (image, head). Padding (d >= dh, key >= lk) is zero.
static void pack_task(void *ctx, long b, long e) {
    const flash_job *j = ctx;
    long dp = j->dp, lkp = j->lkp, dh = j->dh;
    for (long t = b; t < e; t++) {
        long img = t / j->heads, h = t % j->heads;
        int padded = dp != dh || lkp != j->lk;
        if (j->bf16) {
            const uint16_t *k = (const uint16_t *)j->k + img * j->lk * j->k_rs + h * dh;
            const uint16_t *v = (const uint16_t *)j->v + img * j->lk * j->v_rs + h * dh;
            uint16_t *kt = (uint16_t *)j->kt + t * dp * lkp, *vp = (uint16_t *)j->vp + t * dp * lkp;
            if (padded) { memset(kt, 0, 2 * dp * lkp); memset(vp, 0, 2 * dp * lkp); }
            uint32_t *kt2 = (uint32_t *)kt;              // kt[pair][key] as 32-bit pairs of d
            for (long key = 0; key < j->lk; key++) {
                const uint16_t *src = k + key * j->k_rs;
                for (long p = 0; p < dh / 2; p++) {
                    uint32_t pair;
                    memcpy(&pair, src + 2 * p, 4);
                    kt2[p * lkp + key] = pair;
                }
            }
            for (long key = 0; key < j->lk; key++)       // vp[key pair][d][2]
                for (long d = 0; d < dh; d++) vp[((key / 2) * dp + d) * 2 + (key & 1)] = v[key * j->v_rs + d];
        } else {
            const float *k = (const float *)j->k + img * j->lk * j->k_rs + h * dh;
            const float *v = (const float *)j->v + img * j->lk * j->v_rs + h * dh;
            float *kt = (float *)j->kt + t * dp * lkp, *vp = (float *)j->vp + t * dp * lkp;
            if (padded) { memset(kt, 0, 4 * dp * lkp); memset(vp, 0, 4 * dp * lkp); }
            for (long key = 0; key < j->lk; key++) {
                for (long d = 0; d < dh; d++) kt[d * lkp + key] = k[key * j->k_rs + d];
                memcpy(vp + key * dp, v + key * j->v_rs, 4 * dh);
            }
        }
    }
}

// ------------------------------------------------------------------------------ vector maths

/// 2^x for x <= 0 (scores minus their running max, in log2 units): 2^k by VSCALEFPS and 2^f,
/// |f| <= 1/2, by its Taylor series. DEGREE 6 has relative error < 1.3e-7 (fp32 path); DEGREE 4 has
/// < 4.3e-5, far below the 2^-9 rounding of the bf16 probabilities it feeds.
#define EXP2(NAME, TARGET, DEGREE)                                                                  \
    TARGET static inline __attribute__((always_inline)) __m512 NAME(__m512 x) {                     \
        x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));                                              \
        __m512 k = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);          \
        __m512 f = _mm512_sub_ps(x, k);                                                             \
        __m512 p = DEGREE == 6 ? _mm512_set1_ps(1.5403530393381608e-4f) : _mm512_set1_ps(9.618129107628477e-3f); \
        if (DEGREE == 6) {                                                                          \
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));                     \
            p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.618129107628477e-3f));                      \
        }                                                                                           \
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.550410866482158e-2f));                          \
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.402265069591007e-1f));                          \
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.931471805599453e-1f));                          \
        p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));                                           \
        return _mm512_scalef_ps(p, k);                                                              \
    }
EXP2(exp2_f32, F32_TARGET, 6)
EXP2(exp2_bf16, F32_TARGET, 4)

typedef struct {
    float m[ROWS];            // running max per row
    __m512 l[ROWS];           // running sum per row, 16 partial lanes
} online_state;

/// Turns one tile of scores s[ROWS][4] into probabilities (in place), updating the running max and
/// sums; alpha[r] receives the factor the row's output accumulated so far must be scaled by.
/// Scores are scaled by scale·log2(e) so the running max, the rescale factors and the
/// probabilities all come from 2^x.
F32_TARGET static inline __attribute__((always_inline)) void
online_softmax(__m512 s[ROWS][4], online_state *st, float alpha[16], float scale, long valid, int bf16) {
    __mmask16 mask[4];
    for (int c = 0; c < 4; c++) {
        long left = valid - 16 * c;
        mask[c] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
    }
    const __m512 sc = _mm512_set1_ps(scale * 1.44269504088896341f), ninf = _mm512_set1_ps(-INFINITY);
    float m_old[16] = {0}, m_new[16] = {0};
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) s[r][c] = _mm512_mask_mul_ps(ninf, mask[c], s[r][c], sc);
        __m512 mx = _mm512_max_ps(_mm512_max_ps(s[r][0], s[r][1]), _mm512_max_ps(s[r][2], s[r][3]));
        float tile_max = _mm512_reduce_max_ps(mx);
        m_old[r] = st->m[r];
        m_new[r] = tile_max > m_old[r] ? tile_max : m_old[r];
    }
    // One vector exp gives every row's rescale factor; a row's first tile gets 2^-inf = 0.
    _mm512_storeu_ps(alpha, exp2_f32(_mm512_sub_ps(_mm512_loadu_ps(m_old), _mm512_loadu_ps(m_new))));
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) {
        st->m[r] = m_new[r];
        const __m512 mv = _mm512_set1_ps(m_new[r]);
        __m512 sum = _mm512_setzero_ps();
#pragma clang loop unroll(full)
        for (int c = 0; c < 4; c++) {
            if (mask[c] == 0) { s[r][c] = _mm512_setzero_ps(); continue; }   // past the last key
            __m512 x = _mm512_sub_ps(s[r][c], mv);
            s[r][c] = _mm512_maskz_mov_ps(mask[c], bf16 ? exp2_bf16(x) : exp2_f32(x));
            sum = _mm512_add_ps(sum, s[r][c]);
        }
        st->l[r] = _mm512_fmadd_ps(st->l[r], _mm512_set1_ps(alpha[r]), sum);
    }
}

// ------------------------------------------------------------------------------ fp32 micro-kernels

/// s[r][c] = sum_d q[r][d] * kt[d][c*16 .. c*16+15] for the first NK key vectors (the others of a
/// short last tile are masked off by the softmax and left at zero here).
#define SCORES_F32(NK)                                                                              \
    F32_TARGET static inline void scores_f32_##NK(const float *q, const float *kt, long dp, long lkp, \
                                                  __m512 s[ROWS][4]) {                              \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < 4; c++) s[r][c] = _mm512_setzero_ps(); \
        for (long d = 0; d < dp; d++) {                                                             \
            __m512 k[NK];                                                                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NK; c++)                         \
                k[c] = _mm512_loadu_ps(kt + d * lkp + 16 * c);                                      \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                     \
                __m512 b = _mm512_set1_ps(q[r * dp + d]);                                           \
                _Pragma("clang loop unroll(full)") for (int c = 0; c < NK; c++)                     \
                    s[r][c] = _mm512_fmadd_ps(b, k[c], s[r][c]);                                    \
            }                                                                                       \
        }                                                                                           \
    }
SCORES_F32(1) SCORES_F32(2) SCORES_F32(3) SCORES_F32(4)

/// o[r][dc .. dc+16*NV) = alpha[r] * o + sum_j p[r][j] * v[j][dc ..], for NV = 1..4 vectors.
#define PV_F32(NV)                                                                                  \
    F32_TARGET static inline void pv_f32_##NV(const float *p, const float *v, long dp, long dc,      \
                                              float *o, const float *alpha, int keys) {             \
        __m512 acc[ROWS][NV];                                                                       \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                         \
            __m512 a = _mm512_set1_ps(alpha[r]);                                                    \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                acc[r][c] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * dp + dc + 16 * c));            \
        }                                                                                           \
        for (int j = 0; j < keys; j++) {                                                            \
            __m512 vv[NV];                                                                          \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                vv[c] = _mm512_loadu_ps(v + j * dp + dc + 16 * c);                                  \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                     \
                __m512 b = _mm512_set1_ps(p[r * KEYS + j]);                                         \
                _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                     \
                    acc[r][c] = _mm512_fmadd_ps(b, vv[c], acc[r][c]);                               \
            }                                                                                       \
        }                                                                                           \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                _mm512_storeu_ps(o + r * dp + dc + 16 * c, acc[r][c]);                              \
    }
PV_F32(1) PV_F32(2) PV_F32(3) PV_F32(4)

// ------------------------------------------------------------------------------ bf16 micro-kernels

/// As scores_f32 with pairs of d: q2[r][pair] holds two bf16, kt[pair][key][2].
#define SCORES_BF16(NK)                                                                             \
    BF16_TARGET static inline void scores_bf16_##NK(const uint32_t *q2, const uint16_t *kt, long dp, \
                                                    long lkp, __m512 s[ROWS][4]) {                  \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < 4; c++) s[r][c] = _mm512_setzero_ps(); \
        for (long pr = 0; pr < dp / 2; pr++) {                                                      \
            __m512bh k[NK];                                                                         \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NK; c++)                         \
                k[c] = (__m512bh)_mm512_loadu_si512(kt + pr * lkp * 2 + 32 * c);                    \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                     \
                __m512bh b = (__m512bh)_mm512_set1_epi32((int)q2[r * (dp / 2) + pr]);               \
                _Pragma("clang loop unroll(full)") for (int c = 0; c < NK; c++)                     \
                    s[r][c] = _mm512_dpbf16_ps(s[r][c], b, k[c]);                                   \
            }                                                                                       \
        }                                                                                           \
    }
SCORES_BF16(1) SCORES_BF16(2) SCORES_BF16(3) SCORES_BF16(4)

/// As pv_f32 with pairs of keys: p2[r][key pair] holds two bf16 probabilities, v[key pair][d][2].
#define PV_BF16(NV)                                                                                 \
    BF16_TARGET static inline void pv_bf16_##NV(const uint32_t *p2, const uint16_t *v, long dp,     \
                                                long dc, float *o, const float *alpha, int keys) {  \
        __m512 acc[ROWS][NV];                                                                       \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                         \
            __m512 a = _mm512_set1_ps(alpha[r]);                                                    \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                acc[r][c] = _mm512_mul_ps(a, _mm512_loadu_ps(o + r * dp + dc + 16 * c));            \
        }                                                                                           \
        for (int jp = 0; jp < keys / 2; jp++) {                                                     \
            __m512bh vv[NV];                                                                        \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                vv[c] = (__m512bh)_mm512_loadu_si512(v + (jp * dp + dc + 16 * c) * 2);              \
            _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++) {                     \
                __m512bh b = (__m512bh)_mm512_set1_epi32((int)p2[r * (KEYS / 2) + jp]);              \
                _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                     \
                    acc[r][c] = _mm512_dpbf16_ps(acc[r][c], b, vv[c]);                              \
            }                                                                                       \
        }                                                                                           \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                _mm512_storeu_ps(o + r * dp + dc + 16 * c, acc[r][c]);                              \
    }
PV_BF16(1) PV_BF16(2) PV_BF16(3) PV_BF16(4)

// ------------------------------------------------------------------------------ driver

typedef struct {
    _Alignas(64) float q[TILES][ROWS * 160 + 16];   // packed query rows (fp32 or bf16 pairs)
    _Alignas(64) float o[TILES][ROWS * 160];        // output accumulators
    _Alignas(64) float p[ROWS * KEYS];              // one tile of probabilities
    online_state st[TILES];
} flash_tile_state;

/// One task: TILES micro-tiles (up to 48 query rows) of one (image, head) against all keys.
#define FLASH_TASK(NAME, TARGET, IS_BF16)                                                           \
    TARGET static void NAME(void *ctx, long b, long e) {                                            \
        const flash_job *j = ctx;                                                                   \
        long dp = j->dp, lkp = j->lkp, dh = j->dh, width = j->heads * dh;                           \
        static _Thread_local flash_tile_state ts;                                                   \
        for (long t = b; t < e; t++) {                                                              \
            long head_index = t / j->blocks, block = t % j->blocks;                                 \
            long img = head_index / j->heads, h = head_index % j->heads;                            \
            long row0 = block * TILES * ROWS;                                                       \
            long rows = j->lq - row0 < TILES * ROWS ? j->lq - row0 : TILES * ROWS;                  \
            int tiles = (int)((rows + ROWS - 1) / ROWS);                                            \
            for (int mt = 0; mt < tiles; mt++) {                                                    \
                if (dp != dh || rows < TILES * ROWS) memset(ts.q[mt], 0, sizeof ts.q[mt]);           \
                memset(ts.o[mt], 0, sizeof(float) * ROWS * dp);                                     \
                for (int r = 0; r < ROWS; r++) {                                                    \
                    ts.st[mt].m[r] = -INFINITY;                                                     \
                    ts.st[mt].l[r] = _mm512_setzero_ps();                                           \
                    long i = row0 + mt * ROWS + r;                                                  \
                    if (i >= j->lq) continue;                                                       \
                    size_t es = IS_BF16 ? 2 : 4;                                                    \
                    memcpy((char *)ts.q[mt] + es * r * dp,                                          \
                           (const char *)j->q + es * ((img * j->lq + i) * j->q_rs + h * dh), es * dh); \
                }                                                                                   \
            }                                                                                       \
            const char *kt = (const char *)j->kt + (IS_BF16 ? 2 : 4) * head_index * dp * lkp;       \
            const char *vp = (const char *)j->vp + (IS_BF16 ? 2 : 4) * head_index * dp * lkp;       \
            for (long k0 = 0; k0 < lkp; k0 += KEYS) {                                               \
                long valid = j->lk - k0;                                                            \
                /* keys past the end have zero probability: P·V stops at the last 16-key group */  \
                int keys = valid >= KEYS ? KEYS : (int)round_up(valid, 16);                         \
                for (int mt = 0; mt < tiles; mt++) {                                                \
                    __m512 s[ROWS][4];                                                              \
                    float alpha[16];                                                                \
                    SCORES_CALL(IS_BF16, keys / 16)                                                 \
                    online_softmax(s, &ts.st[mt], alpha, j->scale, valid, IS_BF16);                          \
                    for (int r = 0; r < ROWS; r++)                                                  \
                        for (int c = 0; c < 4; c++) {                                               \
                            if (IS_BF16) _mm256_storeu_si256((__m256i *)((uint16_t *)ts.p + r * KEYS + 16 * c), \
                                                             (__m256i)_mm512_cvtneps_pbh(s[r][c]));  \
                            else _mm512_storeu_ps(ts.p + r * KEYS + 16 * c, s[r][c]);               \
                        }                                                                           \
                    for (long dc = 0; dc < dp; dc += 64) {                                          \
                        long nv = (dp - dc) / 16 < 4 ? (dp - dc) / 16 : 4;                          \
                        PV_CALL(IS_BF16, nv)                                                        \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
            for (int mt = 0; mt < tiles; mt++)                                                      \
                for (int r = 0; r < ROWS; r++) {                                                    \
                    long i = row0 + mt * ROWS + r;                                                  \
                    if (i >= j->lq) break;                                                          \
                    float inv = 1.0f / _mm512_reduce_add_ps(ts.st[mt].l[r]);                        \
                    float *dst = j->out + (img * j->lq + i) * width + h * dh;                       \
                    for (long d = 0; d < dh; d++) dst[d] = ts.o[mt][r * dp + d] * inv;              \
                }                                                                                   \
        }                                                                                           \
    }

#define SCORES_CALL(IS_BF16, nk)                                                                    \
    if (IS_BF16) {                                                                                  \
        const uint32_t *q2 = (const uint32_t *)ts.q[mt];                                            \
        const uint16_t *k2 = (const uint16_t *)kt + k0 * 2;                                         \
        switch (nk) {                                                                               \
        case 4: scores_bf16_4(q2, k2, dp, lkp, s); break;                                           \
        case 3: scores_bf16_3(q2, k2, dp, lkp, s); break;                                           \
        case 2: scores_bf16_2(q2, k2, dp, lkp, s); break;                                           \
        default: scores_bf16_1(q2, k2, dp, lkp, s); break;                                          \
        }                                                                                           \
    } else {                                                                                        \
        const float *k4 = (const float *)kt + k0;                                                   \
        switch (nk) {                                                                               \
        case 4: scores_f32_4(ts.q[mt], k4, dp, lkp, s); break;                                      \
        case 3: scores_f32_3(ts.q[mt], k4, dp, lkp, s); break;                                      \
        case 2: scores_f32_2(ts.q[mt], k4, dp, lkp, s); break;                                      \
        default: scores_f32_1(ts.q[mt], k4, dp, lkp, s); break;                                     \
        }                                                                                           \
    }

#define PV_CALL(IS_BF16, nv)                                                                        \
    if (IS_BF16) {                                                                                  \
        const uint32_t *p2 = (const uint32_t *)ts.p;                                                \
        const uint16_t *v2 = (const uint16_t *)vp + k0 * dp;                                        \
        switch (nv) {                                                                               \
        case 4: pv_bf16_4(p2, v2, dp, dc, ts.o[mt], alpha, keys); break;                                  \
        case 3: pv_bf16_3(p2, v2, dp, dc, ts.o[mt], alpha, keys); break;                                  \
        case 2: pv_bf16_2(p2, v2, dp, dc, ts.o[mt], alpha, keys); break;                                  \
        default: pv_bf16_1(p2, v2, dp, dc, ts.o[mt], alpha, keys); break;                                 \
        }                                                                                           \
    } else {                                                                                        \
        const float *v4 = (const float *)vp + k0 * dp;                                              \
        switch (nv) {                                                                               \
        case 4: pv_f32_4(ts.p, v4, dp, dc, ts.o[mt], alpha, keys); break;                                 \
        case 3: pv_f32_3(ts.p, v4, dp, dc, ts.o[mt], alpha, keys); break;                                 \
        case 2: pv_f32_2(ts.p, v4, dp, dc, ts.o[mt], alpha, keys); break;                                 \
        default: pv_f32_1(ts.p, v4, dp, dc, ts.o[mt], alpha, keys); break;                                \
        }                                                                                           \
    }

FLASH_TASK(flash_f32_task, F32_TARGET, 0)
FLASH_TASK(flash_bf16_task, BF16_TARGET, 1)

int sd_flash_attention_supported(long dh, int bf16) {
    if (dh < 1 || dh > 160) return 0;
    if (bf16) return sd_cpu_has_avx512_bf16() && dh % 2 == 0;
    return sd_cpu_has_avx512f();
}

void sd_flash_attention(int threads, long n, long lq, long lk, long heads, long dh, const void *q,
                        long q_rs, const void *k, long k_rs, const void *v, long v_rs, int bf16,
                        float *out, float scale, void *scratch) {
    flash_job j = {n, lq, lk, heads, dh, round_up(dh, 16), round_up(lk, KEYS), q, k, v, q_rs, k_rs, v_rs,
                   bf16, scale, out, NULL, NULL, (lq + TILES * ROWS - 1) / (TILES * ROWS)};
    size_t half = (size_t)(bf16 ? 2 : 4) * n * heads * j.dp * j.lkp;
    j.kt = scratch;
    j.vp = (char *)scratch + round_up((long)half, 64);
    sd_parallel_for(threads, n * heads, 1, pack_task, &j);
    sd_parallel_for(threads, n * heads * j.blocks, 1, bf16 ? flash_bf16_task : flash_f32_task, &j);
}
