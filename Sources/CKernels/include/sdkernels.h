// C layer of the CPU backend: the oneDNN glue (dnnl_glue.c, the only file that includes oneDNN)
// and vectorised kernels for everything that is not a convolution or a matrix product.
// All activations are row-major with the channel (or feature) dimension last.
#ifndef SDKERNELS_H
#define SDKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Element types understood by the C layer.
enum { SD_F32 = 0, SD_BF16 = 1 };

// ---------------------------------------------------------------- machine
int sd_cpu_has_avx512f(void);
int sd_cpu_has_avx512_bf16(void);
/// Name of the most capable ISA oneDNN dispatches to on this CPU.
const char *sd_dnnl_isa_name(void);
/// Fused multiply-add peak measurement: runs `iterations` rounds of the FMA loop on `threads`
/// threads and returns the floating-point operations done. bf16 != 0 uses VDPBF16PS.
double sd_fma_peak_flops(int threads, int bf16, long iterations);

// ---------------------------------------------------------------- threading (libgomp, shared with oneDNN)
typedef void (*sd_task_fn)(void *context, long begin, long end);
/// Runs fn over [0, count) split into contiguous chunks on `threads` threads.
void sd_parallel_for(int threads, long count, long min_chunk, sd_task_fn fn, void *context);

// ---------------------------------------------------------------- oneDNN glue
typedef struct sd_ctx sd_ctx;
typedef struct sd_conv sd_conv;
typedef struct sd_linear sd_linear;

/// Creates an engine/stream pair and a primitive cache; `threads` is used for every call on it.
sd_ctx *sd_ctx_create(int threads, char *err, size_t errlen);
void sd_ctx_destroy(sd_ctx *ctx);
int sd_ctx_threads(const sd_ctx *ctx);

/// Packs an OIHW fp32 weight (and optional bias) for a 2-D convolution computed in `wdt`.
sd_conv *sd_conv_create(sd_ctx *ctx, const float *weight_oihw, const float *bias,
                        int oc, int ic, int kh, int kw, int stride_h, int stride_w,
                        int pad_top, int pad_left, int pad_bottom, int pad_right,
                        int wdt, char *err, size_t errlen);
/// NHWC convolution. `addend` (dtype `addend_dt`, may be NULL) is added after the bias:
/// addend_kind 1 means shape [n, oc] (one value per image and channel), 2 the full output shape.
/// With `relu`, ReLU is applied last. Both ride on the convolution as oneDNN post-ops.
int sd_conv_forward(sd_conv *conv, const void *src, int sdt, int n, int h, int w,
                    void *dst, int ddt, const void *addend, int addend_kind, int addend_dt, int relu,
                    char *err, size_t errlen);
void sd_conv_destroy(sd_conv *conv);
/// Implementation name oneDNN picked for the last call (for benchmarks and logs).
const char *sd_conv_impl(const sd_conv *conv);

/// Packs a [out, in] fp32 weight for y = x W^T + b.
sd_linear *sd_linear_create(sd_ctx *ctx, const float *weight, const float *bias, int out, int in,
                            int wdt, char *err, size_t errlen);
/// `residual` (fp32 [m, out], may be NULL) is added to the result.
int sd_linear_forward(sd_linear *lin, const void *src, int sdt, long m, void *dst, int ddt,
                      const float *residual, char *err, size_t errlen);
void sd_linear_destroy(sd_linear *lin);
const char *sd_linear_impl(const sd_linear *lin);

/// Strided batched product C[b] = alpha * A[b] x B[b]; A is m x k, B is k x n, C is m x n with unit
/// column stride. Strides are in elements. `a`/`b` share dtype `abdt`.
int sd_bmm(sd_ctx *ctx, long batch, long m, long n, long k,
           const void *a, long a_bs, long a_rs, long a_cs,
           const void *b, long b_bs, long b_rs, long b_cs, int abdt,
           void *c, long c_bs, long c_rs, int cdt, float alpha, char *err, size_t errlen);

/// Fused attention: out[n, i, h*d] = softmax(q k^T * scale) v per head, processed in blocks of
/// query rows so the full score matrix is never stored. q: [n, lq, heads*dh] with row stride
/// q_rs; k, v: [n, lk, heads*dh] with row strides k_rs, v_rs; out: [n, lq, heads*dh] fp32.
/// `qkvdt` is the dtype of q, k and v. With `causal`, query i attends to keys 0...i only.
int sd_attention(sd_ctx *ctx, long n, long lq, long lk, long heads, long dh,
                 const void *q, long q_rs, const void *k, long k_rs, const void *v, long v_rs,
                 int qkvdt, int causal, float *out, float scale, char *err, size_t errlen);

// ---------------------------------------------------------------- kernels (fp32 in, `odt` out)
void sd_convert_f32_to_bf16(int threads, const float *src, uint16_t *dst, long count);
void sd_convert_bf16_to_f32(int threads, const uint16_t *src, float *dst, long count);
void sd_convert_f16_to_f32(int threads, const uint16_t *src, float *dst, long count);

/// x: [n, pixels, channels] NHWC; y = (x' - mean_g) / sqrt(var_g + eps) * gamma + beta, optional SiLU,
/// where x' = x + offset[n, c] when `offset` is not NULL.
/// Returns 0, or -1 when its small statistics buffers cannot be allocated.
int sd_group_norm(int threads, const float *x, const float *offset, void *y, int odt, long n, long pixels, long channels,
                   long groups, const float *gamma, const float *beta, float eps, int silu);
/// Normalises each row of length `cols`.
void sd_layer_norm(int threads, const float *x, void *y, int odt, long rows, long cols,
                   const float *gamma, const float *beta, float eps);

enum { SD_SILU = 0, SD_GELU_ERF = 1, SD_GELU_TANH = 2, SD_QUICK_GELU = 3, SD_TANH = 4 };
void sd_unary(int threads, int op, const float *x, float *y, long count);
/// y = min(max(x * mul + add, lo), hi)
void sd_affine_clamp(int threads, const float *x, float *y, long count, float mul, float add,
                     float lo, float hi);

enum { SD_ADD = 0, SD_MUL = 1, SD_SUB = 2 };
/// Broadcasting binary op over rank <= 8 (element strides, 0 for a broadcast dimension).
void sd_binary(int threads, int op, int rank, const long *shape,
               const float *a, const long *a_strides, const float *b, const long *b_strides, float *y);

/// x: [rows, 2*f] -> y: [rows, f] = x[:, :f] * gelu_erf(x[:, f:]).
void sd_geglu(int threads, const float *x, void *y, int odt, long rows, long f);
/// Softmax over each row of length `cols`, in place allowed.
void sd_softmax(int threads, const float *x, float *y, long rows, long cols);
/// NHWC nearest-neighbour resize: [n, h, w, c] -> [n, oh, ow, c], source = floor(dst * in / out);
/// elements of `esize` bytes (fp32 or bf16).
void sd_resize_nearest(int threads, const void *x, void *y, long n, long h, long w, long c, long oh, long ow,
                       long esize);
/// Parallel memcpy (the bandwidth yardstick for memory-bound ops).
void sd_copy(int threads, const void *src, void *dst, long bytes);
/// Copies `x` ([pixels, cx]) into columns [offset, offset + cx) of y ([pixels, cy]).
void sd_copy_columns(int threads, const void *x, long cx, void *y, long cy, long offset,
                     long pixels, long elem_size);

#ifdef __cplusplus
}
#endif
#endif
