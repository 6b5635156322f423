// Shared by the fused attention driver (flash_attention.c) and its kernel variants
// (flash_kernel_*.c, each an instantiation of flash_kernel.h with its own tile shape).
#ifndef SD_FLASH_H
#define SD_FLASH_H
#include "sdkernels.h"
#include "internal.h"
#include <immintrin.h>

#define F32_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,avx512bf16")))

typedef struct {
    long n, lq, lk, heads, dh, dp, lkp;   // dp: head dim padded to 16; lkp: keys padded to the tile
    const void *q, *k, *v;
    long q_rs, k_rs, v_rs;
    int bf16, causal;                      // causal: query i sees keys 0...i only
    float scale;
    float *out;
    void *kt, *vp;                         // packed K^T and V for every (image, head)
    long blocks;                           // query blocks per (image, head)
} flash_job;

static inline long flash_round_up(long x, long m) { return (x + m - 1) / m * m; }

// Kernel variants: query rows per micro-tile x keys per tile. 6x64 suits long contexts (many
// tiles, online rescaling); 3x128 covers a short context such as CLIP's 77 tokens in one tile.
#define FLASH_VARIANTS(X) X(6x64, 6, 64, 8) X(3x128, 3, 128, 16)
#define FLASH_DECLARE(NAME, ROWS_, KEYS_, TILES_)                                 \
    void sd_flash_task_f32_##NAME(void *job, long begin, long end);              \
    void sd_flash_task_bf16_##NAME(void *job, long begin, long end);
FLASH_VARIANTS(FLASH_DECLARE)

#endif
