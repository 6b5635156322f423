// Vectorised kernels for every CPU op that is not a convolution or a matrix product.
// Each kernel is a chunk function over [begin, end) of its natural unit (elements, rows, pixels),
// compiled for the baseline target and for AVX-512; the AVX-512 copy is picked at run time.
#include "sdkernels.h"
#include "internal.h"
#include "vecmath.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

int sd_cpu_has_avx512f(void) {
    static int cached = -1;
    if (cached < 0) { __builtin_cpu_init(); cached = __builtin_cpu_supports("avx512f") ? 1 : 0; }
    return cached;
}

int sd_cpu_has_avx512_bf16(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16") ? 1 : 0;
    }
    return cached;
}

/// Defines name_task(): the AVX-512 or baseline chunk function for name_body(const ctx *, b, e).
#define DISPATCH(name, ctxtype)                                                                    \
    AVX512 static void name##_avx512(void *c, long b, long e) { name##_body((const ctxtype *)c, b, e); } \
    static void name##_generic(void *c, long b, long e) { name##_body((const ctxtype *)c, b, e); }      \
    static sd_task_fn name##_task(void) { return sd_cpu_has_avx512f() ? name##_avx512 : name##_generic; }

/// Stores n floats as fp32 or bf16 at element offset `at` of `y`.
SD_INLINE void store_row(void *y, int odt, long at, const float *restrict v, long n) {
    if (odt == SD_BF16) {
        uint16_t *restrict o = (uint16_t *)y + at;
        for (long i = 0; i < n; i++) o[i] = sd_f32_to_bf16(v[i]);
    } else {
        memcpy((float *)y + at, v, sizeof(float) * n);
    }
}

// ------------------------------------------------------------------------------ conversions

typedef struct { const void *src; void *dst; int kind; } convert_ctx;

SD_INLINE void convert_body(const convert_ctx *c, long b, long e) {
    if (c->kind == 0) {
        const float *restrict s = c->src; uint16_t *restrict d = c->dst;
        for (long i = b; i < e; i++) d[i] = sd_f32_to_bf16(s[i]);
    } else if (c->kind == 1) {
        const uint16_t *restrict s = c->src; float *restrict d = c->dst;
        for (long i = b; i < e; i++) d[i] = sd_bf16_to_f32(s[i]);
    } else {
        const uint16_t *restrict s = c->src; float *restrict d = c->dst;
        for (long i = b; i < e; i++) d[i] = sd_f16_to_f32(s[i]);
    }
}
DISPATCH(convert, convert_ctx)

void sd_convert_f32_to_bf16(int threads, const float *src, uint16_t *dst, long count) {
    convert_ctx c = {src, dst, 0};
    sd_parallel_for(threads, count, 1 << 15, convert_task(), &c);
}
void sd_convert_bf16_to_f32(int threads, const uint16_t *src, float *dst, long count) {
    convert_ctx c = {src, dst, 1};
    sd_parallel_for(threads, count, 1 << 15, convert_task(), &c);
}
void sd_convert_f16_to_f32(int threads, const uint16_t *src, float *dst, long count) {
    convert_ctx c = {src, dst, 2};
    sd_parallel_for(threads, count, 1 << 15, convert_task(), &c);
}

// ------------------------------------------------------------------------------ unary

typedef struct { int op; const float *x; float *y; float mul, add, lo, hi; } unary_ctx;

SD_INLINE void unary_body(const unary_ctx *c, long b, long e) {
    const float *restrict x = c->x; float *restrict y = c->y;
    switch (c->op) {
    case SD_SILU: for (long i = b; i < e; i++) y[i] = x[i] * sd_sigmoid(x[i]); break;
    case SD_GELU_ERF: for (long i = b; i < e; i++) y[i] = sd_gelu(x[i]); break;
    case SD_GELU_TANH: for (long i = b; i < e; i++) y[i] = sd_gelu_tanh(x[i]); break;
    case SD_QUICK_GELU: for (long i = b; i < e; i++) y[i] = x[i] * sd_sigmoid(1.702f * x[i]); break;
    case SD_TANH: for (long i = b; i < e; i++) y[i] = sd_tanh(x[i]); break;
    default: {   // affine + clamp
        float m = c->mul, a = c->add, lo = c->lo, hi = c->hi;
        for (long i = b; i < e; i++) {
            float v = x[i] * m + a;
            y[i] = v < lo ? lo : (v > hi ? hi : v);
        }
    }
    }
}
DISPATCH(unary, unary_ctx)

void sd_unary(int threads, int op, const float *x, float *y, long count) {
    unary_ctx c = {op, x, y, 1, 0, 0, 0};
    sd_parallel_for(threads, count, 1 << 14, unary_task(), &c);
}

void sd_affine_clamp(int threads, const float *x, float *y, long count, float mul, float add,
                     float lo, float hi) {
    unary_ctx c = {-1, x, y, mul, add, lo, hi};
    sd_parallel_for(threads, count, 1 << 15, unary_task(), &c);
}

// ------------------------------------------------------------------------------ binary

#define MAX_RANK 8
typedef struct {
    int op, rank;
    long shape[MAX_RANK], as[MAX_RANK], bs[MAX_RANK];
    const float *a, *b; float *y;
} binary_ctx;

/// One chunk of output rows (all dimensions but the last); the last dimension is the inner loop.
SD_INLINE void binary_body(const binary_ctx *c, long b, long e) {
    int r = c->rank;
    long n = c->shape[r - 1], sa = c->as[r - 1], sb = c->bs[r - 1];
    for (long row = b; row < e; row++) {
        long rem = row, oa = 0, ob = 0;
        for (int d = r - 2; d >= 0; d--) {
            long i = rem % c->shape[d];
            rem /= c->shape[d];
            oa += i * c->as[d];
            ob += i * c->bs[d];
        }
        const float *restrict pa = c->a + oa, *restrict pb = c->b + ob;
        float *restrict py = c->y + row * n;
        if (sa == 1 && sb == 1) {
            if (c->op == SD_ADD) for (long i = 0; i < n; i++) py[i] = pa[i] + pb[i];
            else if (c->op == SD_MUL) for (long i = 0; i < n; i++) py[i] = pa[i] * pb[i];
            else for (long i = 0; i < n; i++) py[i] = pa[i] - pb[i];
        } else {
            if (c->op == SD_ADD) for (long i = 0; i < n; i++) py[i] = pa[i * sa] + pb[i * sb];
            else if (c->op == SD_MUL) for (long i = 0; i < n; i++) py[i] = pa[i * sa] * pb[i * sb];
            else for (long i = 0; i < n; i++) py[i] = pa[i * sa] - pb[i * sb];
        }
    }
}
DISPATCH(binary, binary_ctx)

void sd_binary(int threads, int op, int rank, const long *shape, const float *a,
               const long *a_strides, const float *b, const long *b_strides, float *y) {
    binary_ctx c = {.op = op, .a = a, .b = b, .y = y};
    // Merge neighbouring dimensions that are contiguous in both operands (fewer, longer rows).
    int r = 0;
    for (int d = 0; d < rank && d < MAX_RANK; d++) {
        if (shape[d] == 1) continue;
        if (r > 0 && c.as[r - 1] == a_strides[d] * shape[d] && c.bs[r - 1] == b_strides[d] * shape[d]) {
            c.shape[r - 1] *= shape[d];
            c.as[r - 1] = a_strides[d];
            c.bs[r - 1] = b_strides[d];
        } else {
            c.shape[r] = shape[d]; c.as[r] = a_strides[d]; c.bs[r] = b_strides[d]; r++;
        }
    }
    if (r == 0) { c.shape[0] = 1; c.as[0] = 1; c.bs[0] = 1; r = 1; }
    c.rank = r;
    long rows = 1;
    for (int d = 0; d < r - 1; d++) rows *= c.shape[d];
    long inner = c.shape[r - 1];
    long min_rows = inner >= (1 << 14) ? 1 : (1 << 14) / inner;
    sd_parallel_for(threads, rows, min_rows, binary_task(), &c);
}

// ------------------------------------------------------------------------------ softmax

typedef struct { const float *x; void *y; int odt; long cols; float *inv_sums; } softmax_ctx;

SD_INLINE float row_max(const float *restrict x, long n) {
    float lanes[16];
    for (int j = 0; j < 16; j++) lanes[j] = -INFINITY;
    long i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) lanes[j] = x[i + j] > lanes[j] ? x[i + j] : lanes[j];
    // The tail runs as one padded vector step too: scalar tails dominated 77-key rows.
    long rem = n - i;
    for (int j = 0; j < 16; j++) { float v = j < rem ? x[i + j < n ? i + j : n - 1] : -INFINITY; lanes[j] = v > lanes[j] ? v : lanes[j]; }
    float mx = -INFINITY;
    for (int j = 0; j < 16; j++) mx = lanes[j] > mx ? lanes[j] : mx;
    return mx;
}

/// Writes exp(x - max) (fp32 or bf16) and returns the sum of the fp32 values.
SD_INLINE float row_exp(const float *restrict x, void *y, int odt, long n, float mx) {
    float acc[16] = {0}, sum = 0, tail[16];
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        float e[16];
        for (int j = 0; j < 16; j++) { e[j] = sd_exp(x[i + j] - mx); acc[j] += e[j]; }
        if (odt == SD_F32) memcpy((float *)y + i, e, sizeof e);
        else for (int j = 0; j < 16; j++) ((uint16_t *)y)[i + j] = sd_f32_to_bf16(e[j]);
    }
    long rem = n - i;
    if (rem > 0) {
        for (int j = 0; j < 16; j++) {
            float v = j < rem ? x[i + j < n ? i + j : n - 1] : mx;
            tail[j] = sd_exp(v - mx);
            acc[j] += j < rem ? tail[j] : 0.0f;
        }
        if (odt == SD_F32) memcpy((float *)y + i, tail, sizeof(float) * rem);
        else for (long j = 0; j < rem; j++) ((uint16_t *)y)[i + j] = sd_f32_to_bf16(tail[j]);
    }
    for (int j = 0; j < 16; j++) sum += acc[j];
    return sum;
}

/// With inv_sums, rows are left unnormalised and 1/sum is stored per row (attention scales its
/// much smaller output instead); without, rows are normalised in place (fp32 only).
SD_INLINE void softmax_body(const softmax_ctx *c, long b, long e) {
    long n = c->cols;
    size_t esize = c->odt == SD_BF16 ? 2 : 4;
    for (long row = b; row < e; row++) {
        const float *x = c->x + row * n;
        void *y = (char *)c->y + esize * row * n;
        float sum = row_exp(x, y, c->odt, n, row_max(x, n));
        float inv = 1.0f / sum;
        if (c->inv_sums) { c->inv_sums[row] = inv; continue; }
        float *restrict o = y;
        for (long k = 0; k < n; k++) o[k] *= inv;
    }
}
DISPATCH(softmax, softmax_ctx)

void sd_softmax_rows(int threads, const float *x, void *y, int odt, long rows, long cols, float *inv_sums) {
    softmax_ctx c = {x, y, odt, cols, inv_sums};
    long min_rows = cols >= 4096 ? 1 : 4096 / (cols ? cols : 1);
    sd_parallel_for(threads, rows, min_rows, softmax_task(), &c);
}

void sd_softmax(int threads, const float *x, float *y, long rows, long cols) {
    sd_softmax_rows(threads, x, y, SD_F32, rows, cols, NULL);
}

typedef struct { float *out; const float *inv; long rows, heads, dh, width; } rescale_ctx;

SD_INLINE void rescale_body(const rescale_ctx *c, long b, long e) {
    for (long i = b; i < e; i++)
        for (long h = 0; h < c->heads; h++) {
            float s = c->inv[h * c->rows + i];
            float *restrict o = c->out + i * c->width + h * c->dh;
            for (long d = 0; d < c->dh; d++) o[d] *= s;
        }
}
DISPATCH(rescale, rescale_ctx)

void sd_rescale_heads(int threads, float *out, const float *inv, long rows, long heads, long dh, long width) {
    rescale_ctx c = {out, inv, rows, heads, dh, width};
    sd_parallel_for(threads, rows, 64, rescale_task(), &c);
}

// ------------------------------------------------------------------------------ layer norm

typedef struct { const float *x; void *y; int odt; long cols; const float *g, *bt; float eps; } ln_ctx;

SD_INLINE void layer_norm_body(const ln_ctx *c, long b, long e) {
    long n = c->cols;
    float out[256];
    for (long row = b; row < e; row++) {
        const float *restrict x = c->x + row * n;
        float acc[16] = {0};
        long i = 0;
        for (; i + 16 <= n; i += 16) for (int j = 0; j < 16; j++) acc[j] += x[i + j];
        float sum = 0;
        for (; i < n; i++) sum += x[i];
        for (int j = 0; j < 16; j++) sum += acc[j];
        float mean = sum / (float)n;
        float vacc[16] = {0};
        for (i = 0; i + 16 <= n; i += 16)
            for (int j = 0; j < 16; j++) { float d = x[i + j] - mean; vacc[j] += d * d; }
        float var = 0;
        for (; i < n; i++) { float d = x[i] - mean; var += d * d; }
        for (int j = 0; j < 16; j++) var += vacc[j];
        float rstd = 1.0f / sqrtf(var / (float)n + c->eps);
        for (long s = 0; s < n; s += 256) {
            long m = n - s < 256 ? n - s : 256;
            for (long k = 0; k < m; k++) out[k] = (x[s + k] - mean) * rstd * c->g[s + k] + c->bt[s + k];
            store_row(c->y, c->odt, row * n + s, out, m);
        }
    }
}
DISPATCH(layer_norm, ln_ctx)

void sd_layer_norm(int threads, const float *x, void *y, int odt, long rows, long cols,
                   const float *gamma, const float *beta, float eps) {
    ln_ctx c = {x, y, odt, cols, gamma, beta, eps};
    long min_rows = cols >= 4096 ? 1 : 4096 / (cols ? cols : 1);
    sd_parallel_for(threads, rows, min_rows, layer_norm_task(), &c);
}

// ------------------------------------------------------------------------------ GEGLU

typedef struct { const float *x; void *y; int odt; long f; } geglu_ctx;

/// diffusers GEGLU: the first half of the projection is the value, the second half the gate.
SD_INLINE void geglu_body(const geglu_ctx *c, long b, long e) {
    long f = c->f;
    float out[256];
    for (long row = b; row < e; row++) {
        const float *restrict v = c->x + row * 2 * f, *restrict g = v + f;
        for (long s = 0; s < f; s += 256) {
            long m = f - s < 256 ? f - s : 256;
            for (long k = 0; k < m; k++) out[k] = v[s + k] * sd_gelu(g[s + k]);
            store_row(c->y, c->odt, row * f + s, out, m);
        }
    }
}
DISPATCH(geglu, geglu_ctx)

void sd_geglu(int threads, const float *x, void *y, int odt, long rows, long f) {
    geglu_ctx c = {x, y, odt, f};
    long min_rows = f >= 4096 ? 1 : 4096 / (f ? f : 1);
    sd_parallel_for(threads, rows, min_rows, geglu_task(), &c);
}

// ------------------------------------------------------------------------------ layout ops

typedef struct { const char *x; char *y; long h, w, c, oh, ow, esize; } upsample_ctx;

/// One chunk of output rows (image, output y). Source pixel = floor(dst · in / out), PyTorch's
/// "nearest" rule (for 2× it is dst / 2).
SD_INLINE void upsample_body(const upsample_ctx *u, long b, long e) {
    long pixel = u->c * u->esize;
    for (long r = b; r < e; r++) {
        long img = r / u->oh, oy = r % u->oh;
        const char *src = u->x + (img * u->h + oy * u->h / u->oh) * u->w * pixel;
        char *dst = u->y + r * u->ow * pixel;
        for (long x = 0; x < u->ow; x++) memcpy(dst + x * pixel, src + (x * u->w / u->ow) * pixel, pixel);
    }
}
DISPATCH(upsample, upsample_ctx)

void sd_resize_nearest(int threads, const void *x, void *y, long n, long h, long w, long c, long oh, long ow,
                       long esize) {
    upsample_ctx u = {x, y, h, w, c, oh, ow, esize};
    sd_parallel_for(threads, n * oh, 4, upsample_task(), &u);
}

typedef struct { const char *x; char *y; long cx, cy, offset, esize; } columns_ctx;

SD_INLINE void columns_body(const columns_ctx *c, long b, long e) {
    long bytes = c->cx * c->esize;
    for (long p = b; p < e; p++)
        memcpy(c->y + (p * c->cy + c->offset) * c->esize, c->x + p * bytes, bytes);
}
DISPATCH(columns, columns_ctx)

void sd_copy_columns(int threads, const void *x, long cx, void *y, long cy, long offset,
                     long pixels, long elem_size) {
    columns_ctx c = {x, y, cx, cy, offset, elem_size};
    sd_parallel_for(threads, pixels, 1024, columns_task(), &c);
}

typedef struct { const char *src; char *dst; } copy_ctx;

static void copy_task(void *c, long b, long e) {
    const copy_ctx *cc = c;
    memcpy(cc->dst + b, cc->src + b, (size_t)(e - b));
}

void sd_copy(int threads, const void *src, void *dst, long bytes) {
    copy_ctx c = {src, dst};
    sd_parallel_for(threads, bytes, 1 << 16, copy_task, &c);
}

void sd_causal_mask(float *s, long heads, long rows, long lk, long i0) {
    for (long h = 0; h < heads; h++)
        for (long i = 0; i < rows; i++)
            for (long j = i0 + i + 1; j < lk; j++) s[(h * rows + i) * lk + j] = -INFINITY;
}
