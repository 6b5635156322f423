// Fused attention for AVX-512 (fp32) and AVX-512 BF16: the flash-attention scheme on a CPU.
// For a block of query rows, keys are visited in tiles; each tile's scores live only in registers
// and a small per-row buffer, the softmax is kept online (running max m, running sum l, the output
// rescaled by 2^(m_old - m_new)), and P·V accumulates straight into the output rows. Nothing of
// size Lq × Lk is ever written. K and V are first packed per (image, head) into the layouts the
// inner loops stream: Kᵀ [d][key] and V [key][d] (bf16: pairs interleaved for VDPBF16PS).
// This file packs and dispatches; flash_kernel.h holds the kernels, one instantiation per tile shape.
#include "flash.h"
#include <string.h>

/// Contexts up to this many keys take the 3x128 kernel (one tile, no rescaling).
#define SHORT_CONTEXT 128

static long keys_per_tile(long lk) { return lk <= SHORT_CONTEXT ? 128 : 64; }

size_t sd_flash_scratch_bytes(long n, long lk, long heads, long dh, int bf16) {
    size_t es = bf16 ? 2 : 4;
    return 2 * es * (size_t)n * heads * flash_round_up(dh, 16) * flash_round_up(lk, keys_per_tile(lk)) + 128;
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

int sd_flash_attention_supported(long dh, int bf16) {
    if (dh < 1 || dh > 160) return 0;
    if (bf16) return sd_cpu_has_avx512_bf16() && dh % 2 == 0;
    return sd_cpu_has_avx512f();
}

void sd_flash_attention(int threads, long n, long lq, long lk, long heads, long dh, const void *q,
                        long q_rs, const void *k, long k_rs, const void *v, long v_rs, int bf16,
                        int causal, float *out, float scale, void *scratch) {
    int short_context = lk <= SHORT_CONTEXT;
    long rows_per_task = short_context ? 3 * 16 : 6 * 8;
    flash_job j = {n, lq, lk, heads, dh, flash_round_up(dh, 16), flash_round_up(lk, keys_per_tile(lk)),
                   q, k, v, q_rs, k_rs, v_rs, bf16, causal, scale, out, NULL, NULL,
                   (lq + rows_per_task - 1) / rows_per_task};
    size_t half = (size_t)(bf16 ? 2 : 4) * n * heads * j.dp * j.lkp;
    j.kt = scratch;
    j.vp = (char *)scratch + flash_round_up((long)half, 64);
    sd_parallel_for(threads, n * heads, 1, pack_task, &j);
    sd_task_fn task = short_context ? (bf16 ? sd_flash_task_bf16_3x128 : sd_flash_task_f32_3x128)
                                    : (bf16 ? sd_flash_task_bf16_6x64 : sd_flash_task_f32_6x64);
    sd_parallel_for(threads, n * heads * j.blocks, 1, task, &j);
}
