// Helpers shared by the C files of the CPU backend (not part of the public header).
#ifndef SD_INTERNAL_H
#define SD_INTERNAL_H
#include <stddef.h>

void *sd_aligned_alloc(size_t bytes);
void sd_aligned_free(void *p);
/// Row softmax with fp32 input and fp32 or bf16 output. With `inv_sums`, rows hold exp(x - max)
/// unnormalised and 1/sum goes to inv_sums[row] (used by attention).
void sd_softmax_rows(int threads, const float *x, void *y, int odt, long rows, long cols, float *inv_sums);
/// out[i, h*dh + d] *= inv[h * rows + i] for an attention output block of `rows` query rows.
void sd_rescale_heads(int threads, float *out, const float *inv, long rows, long heads, long dh, long width);

/// Fused flash-style attention (AVX-512; bf16 also needs AVX-512 BF16 and an even head dim).
int sd_flash_attention_supported(long dh, int bf16);
size_t sd_flash_scratch_bytes(long n, long lk, long heads, long dh, int bf16);
void sd_flash_attention(int threads, long n, long lq, long lk, long heads, long dh, const void *q,
                        long q_rs, const void *k, long k_rs, const void *v, long v_rs, int bf16,
                        int causal, float *out, float scale, void *scratch);
/// Sets s[h][i][j] = -inf for keys j after query i0 + i (causal attention, blocked path).
void sd_causal_mask(float *s, long heads, long rows, long lk, long i0);

#endif
