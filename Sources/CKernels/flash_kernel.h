// The fused attention kernel, instantiated once per tile shape by flash_kernel_<ROWS>x<KEYS>.c,
// which defines ROWS (query rows per micro-tile), KV (16-key vectors per tile), TILES (micro-tiles
// per task) and VARIANT (the name suffix). See flash_attention.c for the algorithm.
//
// Registers: a tile's scores are ROWS x KV accumulators (24 of the 32 AVX-512 registers for both
// shapes); P·V keeps ROWS x 4 output vectors per 64-wide slice of the head dimension.
#include "flash.h"
#include <math.h>
#include <string.h>

#define KEYS (16 * KV)
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

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
    float m[ROWS];            // running max per row (log2 units)
    __m512 l[ROWS];           // running sum per row, 16 partial lanes
} online_state;

/// Turns one tile of scores s[ROWS][KV] into probabilities (in place), updating the running max
/// and sums; row r sees the tile's first valid[r] keys; alpha[r] receives the factor the row's output accumulated so far must be scaled by.
/// Scores are scaled by scale·log2(e) so the running max, the rescale factors and the
/// probabilities all come from 2^x.
F32_TARGET static inline __attribute__((always_inline)) void
online_softmax(__m512 s[ROWS][KV], online_state *st, float alpha[16], float scale, const long valid[ROWS], int bf16) {
    __mmask16 mask[ROWS][KV];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < KV; c++) {
            long left = valid[r] - 16 * c;
            mask[r][c] = left >= 16 ? (__mmask16)0xFFFF : (left <= 0 ? 0 : (__mmask16)((1u << left) - 1));
        }
    const __m512 sc = _mm512_set1_ps(scale * 1.44269504088896341f), ninf = _mm512_set1_ps(-INFINITY);
    float m_old[16] = {0}, m_new[16] = {0};
#pragma clang loop unroll(full)
    for (int r = 0; r < ROWS; r++) {
        __m512 mx = ninf;
#pragma clang loop unroll(full)
        for (int c = 0; c < KV; c++) {
            s[r][c] = _mm512_mask_mul_ps(ninf, mask[r][c], s[r][c], sc);
            mx = _mm512_max_ps(mx, s[r][c]);
        }
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
        for (int c = 0; c < KV; c++) {
            if (mask[r][c] == 0) { s[r][c] = _mm512_setzero_ps(); continue; }   // past the last key
            __m512 x = _mm512_sub_ps(s[r][c], mv);
            s[r][c] = _mm512_maskz_mov_ps(mask[r][c], bf16 ? exp2_bf16(x) : exp2_f32(x));
            sum = _mm512_add_ps(sum, s[r][c]);
        }
        st->l[r] = _mm512_fmadd_ps(st->l[r], _mm512_set1_ps(alpha[r]), sum);
    }
}

// ------------------------------------------------------------------------------ fp32 micro-kernels

/// s[r][c] = sum_d q[r][d] * kt[d][16c .. 16c+15] for the first NK key vectors; the others (past the
/// end of a short last tile) are left at zero and masked off by the softmax.
#define SCORES_F32(NK)                                                                              \
    F32_TARGET static inline __attribute__((always_inline)) void                                    \
    scores_f32_##NK(const float *q, const float *kt, long dp, long lkp, __m512 s[ROWS][KV]) {       \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < KV; c++) s[r][c] = _mm512_setzero_ps(); \
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

/// o[r][dc .. dc+16·NV) = alpha[r]·o + Σ_j p[r][j]·v[j][dc ..] over `keys` keys, NV = 1..4.
#define PV_F32(NV)                                                                                  \
    F32_TARGET static inline __attribute__((always_inline)) void                                    \
    pv_f32_##NV(const float *p, const float *v, long dp, long dc, float *o, const float *alpha, int keys) { \
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

// ------------------------------------------------------------------------------ bf16 micro-kernels

/// As scores_f32 with pairs of d: q2[r][pair] holds two bf16, kt[pair][key][2].
#define SCORES_BF16(NK)                                                                             \
    BF16_TARGET static inline __attribute__((always_inline)) void                                   \
    scores_bf16_##NK(const uint32_t *q2, const uint16_t *kt, long dp, long lkp, __m512 s[ROWS][KV]) { \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < KV; c++) s[r][c] = _mm512_setzero_ps(); \
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

/// As pv_f32 with pairs of keys: p2[r][key pair] holds two bf16 probabilities, v[key pair][d][2].
#define PV_BF16(NV)                                                                                 \
    BF16_TARGET static inline __attribute__((always_inline)) void                                   \
    pv_bf16_##NV(const uint32_t *p2, const uint16_t *v, long dp, long dc, float *o, const float *alpha, int keys) { \
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
                __m512bh b = (__m512bh)_mm512_set1_epi32((int)p2[r * (KEYS / 2) + jp]);             \
                _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                     \
                    acc[r][c] = _mm512_dpbf16_ps(acc[r][c], b, vv[c]);                              \
            }                                                                                       \
        }                                                                                           \
        _Pragma("clang loop unroll(full)") for (int r = 0; r < ROWS; r++)                           \
            _Pragma("clang loop unroll(full)") for (int c = 0; c < NV; c++)                         \
                _mm512_storeu_ps(o + r * dp + dc + 16 * c, acc[r][c]);                              \
    }

SCORES_F32(1) SCORES_F32(2) SCORES_F32(3) SCORES_F32(4)
SCORES_BF16(1) SCORES_BF16(2) SCORES_BF16(3) SCORES_BF16(4)
#if KV > 4
SCORES_F32(5) SCORES_F32(6) SCORES_F32(7) SCORES_F32(8)
SCORES_BF16(5) SCORES_BF16(6) SCORES_BF16(7) SCORES_BF16(8)
#endif
PV_F32(1) PV_F32(2) PV_F32(3) PV_F32(4)
PV_BF16(1) PV_BF16(2) PV_BF16(3) PV_BF16(4)

// Dispatch on the number of key vectors a tile holds (a short last tile computes only those).
#if KV > 4
#define WIDE_SCORES(T, ...) case 8: scores_##T##_8(__VA_ARGS__); break; case 7: scores_##T##_7(__VA_ARGS__); break; \
    case 6: scores_##T##_6(__VA_ARGS__); break; case 5: scores_##T##_5(__VA_ARGS__); break;
#else
#define WIDE_SCORES(T, ...)
#endif
#define SCORES(T, nk, ...)                                                                          \
    switch (nk) {                                                                                   \
    WIDE_SCORES(T, __VA_ARGS__)                                                                     \
    case 4: scores_##T##_4(__VA_ARGS__); break;                                                     \
    case 3: scores_##T##_3(__VA_ARGS__); break;                                                     \
    case 2: scores_##T##_2(__VA_ARGS__); break;                                                     \
    default: scores_##T##_1(__VA_ARGS__); break;                                                    \
    }
#define PV(T, nv, ...)                                                                              \
    switch (nv) {                                                                                   \
    case 4: pv_##T##_4(__VA_ARGS__); break;                                                         \
    case 3: pv_##T##_3(__VA_ARGS__); break;                                                         \
    case 2: pv_##T##_2(__VA_ARGS__); break;                                                         \
    default: pv_##T##_1(__VA_ARGS__); break;                                                        \
    }

// ------------------------------------------------------------------------------ tasks

typedef struct {
    _Alignas(64) float q[TILES][ROWS * 160 + 16];   // packed query rows (fp32 or bf16 pairs)
    _Alignas(64) float o[TILES][ROWS * 160];        // output accumulators
    _Alignas(64) float p[ROWS * KEYS];              // one tile of probabilities
    online_state st[TILES];
} tile_state;

/// Copies the query rows of one task into its micro-tiles and clears their state.
F32_TARGET static void start_task(const flash_job *j, tile_state *ts, long img, long h, long row0, int tiles, long rows) {
    size_t es = j->bf16 ? 2 : 4;
    for (int mt = 0; mt < tiles; mt++) {
        if (j->dp != j->dh || rows < TILES * ROWS) memset(ts->q[mt], 0, sizeof ts->q[mt]);
        memset(ts->o[mt], 0, sizeof(float) * ROWS * j->dp);
        for (int r = 0; r < ROWS; r++) {
            ts->st[mt].m[r] = -INFINITY;
            ts->st[mt].l[r] = _mm512_setzero_ps();
            long i = row0 + mt * ROWS + r;
            if (i >= j->lq) continue;
            memcpy((char *)ts->q[mt] + es * r * j->dp,
                   (const char *)j->q + es * ((img * j->lq + i) * j->q_rs + h * j->dh), es * j->dh);
        }
    }
}

/// Writes O / l for the rows of one task.
F32_TARGET static void finish_task(const flash_job *j, tile_state *ts, long img, long h, long row0, int tiles) {
    long width = j->heads * j->dh;
    for (int mt = 0; mt < tiles; mt++)
        for (int r = 0; r < ROWS; r++) {
            long i = row0 + mt * ROWS + r;
            if (i >= j->lq) return;
            float inv = 1.0f / _mm512_reduce_add_ps(ts->st[mt].l[r]);
            float *dst = j->out + (img * j->lq + i) * width + h * j->dh;
            for (long d = 0; d < j->dh; d++) dst[d] = ts->o[mt][r * j->dp + d] * inv;
        }
}

/// One task: TILES micro-tiles of query rows of one (image, head) against all keys. Keys are the
/// outer loop so each K/V tile stays in L1 while every micro-tile uses it.
#define FLASH_TASK(T, TARGET, IS_BF16, ETYPE, QTYPE, PTYPE)                                        \
    TARGET void CAT(CAT(sd_flash_task_##T##_, VARIANT), ) (void *ctx, long b, long e) {             \
        const flash_job *j = ctx;                                                                   \
        long dp = j->dp, lkp = j->lkp;                                                              \
        static _Thread_local tile_state ts;                                                         \
        for (long t = b; t < e; t++) {                                                              \
            long head_index = t / j->blocks, block = t % j->blocks;                                 \
            long img = head_index / j->heads, h = head_index % j->heads;                            \
            long row0 = block * TILES * ROWS;                                                       \
            long rows = j->lq - row0 < TILES * ROWS ? j->lq - row0 : TILES * ROWS;                  \
            int tiles = (int)((rows + ROWS - 1) / ROWS);                                            \
            start_task(j, &ts, img, h, row0, tiles, rows);                                          \
            const ETYPE *kt = (const ETYPE *)j->kt + head_index * dp * lkp;                         \
            const ETYPE *vp = (const ETYPE *)j->vp + head_index * dp * lkp;                         \
            for (long k0 = 0; k0 < lkp; k0 += KEYS) {                                               \
                long valid = j->lk - k0;                                                            \
                /* keys past the end have zero probability: work stops at the last 16-key group */ \
                int keys = valid >= KEYS ? KEYS : (int)flash_round_up(valid, 16);                   \
                for (int mt = 0; mt < tiles; mt++) {                                                \
                    __m512 s[ROWS][KV];                                                             \
                    float alpha[16];                                                                \
                    SCORES(T, keys / 16, (const QTYPE *)ts.q[mt], kt + k0 * (IS_BF16 ? 2 : 1), dp, lkp, s) \
                    long row_valid[ROWS];                                                           \
                    for (int r = 0; r < ROWS; r++) {                                                \
                        long limit = row0 + mt * ROWS + r + 1 - k0; /* causal: keys <= the query */ \
                        row_valid[r] = j->causal && limit < valid ? limit : valid;                  \
                    }                                                                               \
                    online_softmax(s, &ts.st[mt], alpha, j->scale, row_valid, IS_BF16);             \
                    for (int r = 0; r < ROWS; r++)                                                  \
                        for (int c = 0; c < KV; c++) {                                              \
                            if (IS_BF16) _mm256_storeu_si256((__m256i *)((uint16_t *)ts.p + r * KEYS + 16 * c), \
                                                             (__m256i)_mm512_cvtneps_pbh(s[r][c]));  \
                            else _mm512_storeu_ps(ts.p + r * KEYS + 16 * c, s[r][c]);               \
                        }                                                                           \
                    for (long dc = 0; dc < dp; dc += 64) {                                          \
                        long nv = (dp - dc) / 16 < 4 ? (dp - dc) / 16 : 4;                          \
                        PV(T, nv, (const PTYPE *)ts.p, vp + k0 * dp, dp, dc, ts.o[mt], alpha, keys) \
                    }                                                                               \
                }                                                                                   \
            }                                                                                       \
            finish_task(j, &ts, img, h, row0, tiles);                                               \
        }                                                                                           \
    }

FLASH_TASK(f32, F32_TARGET, 0, float, float, float)
FLASH_TASK(bf16, BF16_TARGET, 1, uint16_t, uint32_t, uint32_t)
