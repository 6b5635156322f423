// The only file that uses oneDNN's C API (2.6, as shipped by Debian). oneDNN 3.x changed the
// descriptor API; porting means rewriting this file alone.
//
// Design: weights are packed once into the layout oneDNN prefers (queried with format "any" on a
// representative shape); primitives are created lazily per input shape and cached on the owning
// object (conv / linear) or on the context (batched products). Every call sets the context's
// thread count first, so primitives are always created and run with the same number of threads.
#include "sdkernels.h"
#include "internal.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern void omp_set_num_threads(int);

#define CACHE_KEY_LEN 24

typedef struct cache_entry {
    long key[CACHE_KEY_LEN];
    dnnl_primitive_t prim;
    void *weights;          // weights in this primitive's layout when they differ from the packed ones
    struct cache_entry *next;
} cache_entry;

struct sd_ctx {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int threads;
    pthread_mutex_t lock;
    cache_entry *cache;     // batched products
    void *scratch;          // attention score block, reused across calls
    void *dnnl_scratch;     // oneDNN's scratchpad for this context's primitives (user mode)
    size_t dnnl_scratch_size;
    size_t scratch_size;
};

/// Weights packed for oneDNN plus the primitives that use them, one per input shape.
typedef struct {
    dnnl_memory_desc_t packed_md;
    void *packed;
    float *bias;
    cache_entry *cache;
    const char *impl;
} packed_weights;

struct sd_conv {
    sd_ctx *ctx;
    int oc, ic, kh, kw, sh, sw, pt, pl, pb, pr, wdt, has_bias;
    packed_weights pw;
};

struct sd_linear {
    sd_ctx *ctx;
    int out, in, wdt, has_bias;
    packed_weights pw;
};

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#define CHECK(call, what)                                                                 \
    do {                                                                                  \
        dnnl_status_t st_ = (call);                                                       \
        if (st_ != dnnl_success) {                                                        \
            set_err(err, errlen, "oneDNN %s failed (status %d)", what, (int)st_);         \
            goto fail;                                                                    \
        }                                                                                 \
    } while (0)

static dnnl_data_type_t dt_of(int dt) { return dt == SD_BF16 ? dnnl_bf16 : dnnl_f32; }

static cache_entry *cache_find(cache_entry *head, const long *key) {
    for (cache_entry *e = head; e; e = e->next)
        if (memcmp(e->key, key, sizeof(long) * CACHE_KEY_LEN) == 0) return e;
    return NULL;
}

static cache_entry *cache_insert(cache_entry **head, const long *key, dnnl_primitive_t prim,
                                 void *weights) {
    cache_entry *e = calloc(1, sizeof(cache_entry));
    if (!e) return NULL;
    memcpy(e->key, key, sizeof(long) * CACHE_KEY_LEN);
    e->prim = prim;
    e->weights = weights;
    e->next = *head;
    *head = e;
    return e;
}

static void cache_free(cache_entry *head) {
    while (head) {
        cache_entry *next = head->next;
        dnnl_primitive_destroy(head->prim);
        sd_aligned_free(head->weights);
        free(head);
        head = next;
    }
}

static const char *impl_name(dnnl_primitive_t prim) {
    const_dnnl_primitive_desc_t pd = NULL;
    const char *name = "unknown";
    if (dnnl_primitive_get_primitive_desc(prim, &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)&name);
    return name;
}

/// Primitive attributes with a user-managed scratchpad. oneDNN's default ("library") scratchpad is
/// one global buffer: primitives of two backends running on two threads at once would share it.
/// Each context owns its scratchpad instead, and the context lock serialises its executions.
static dnnl_primitive_attr_t user_scratchpad_attr(void) {
    dnnl_primitive_attr_t attr = NULL;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return NULL;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    return attr;
}

/// The scratchpad memory `prim` needs, grown in the context as required (caller holds the lock
/// or owns the context). Returns NULL for a primitive that needs none; sets *failed on OOM.
static void *scratchpad_for(sd_ctx *ctx, dnnl_primitive_t prim, const dnnl_memory_desc_t **md, int *failed) {
    const_dnnl_primitive_desc_t pd = NULL;
    *failed = 0;
    if (dnnl_primitive_get_primitive_desc(prim, &pd) != dnnl_success) return NULL;
    *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t need = *md ? dnnl_memory_desc_get_size(*md) : 0;
    if (need == 0) return NULL;
    if (ctx->dnnl_scratch_size < need) {
        sd_aligned_free(ctx->dnnl_scratch);
        ctx->dnnl_scratch = sd_aligned_alloc(need);
        ctx->dnnl_scratch_size = ctx->dnnl_scratch ? need : 0;
        if (!ctx->dnnl_scratch) { *failed = 1; return NULL; }
    }
    return ctx->dnnl_scratch;
}

/// Runs one reorder from (src_md, src) to (dst_md, dst).
static int reorder(sd_ctx *ctx, const dnnl_memory_desc_t *src_md, const void *src,
                   const dnnl_memory_desc_t *dst_md, void *dst, char *err, size_t errlen) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t prim = NULL;
    dnnl_memory_t ms = NULL, md = NULL, mscratch = NULL;
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    int rc = -1, failed = 0;
    CHECK(dnnl_reorder_primitive_desc_create(&pd, src_md, ctx->engine, dst_md, ctx->engine, attr),
          "reorder descriptor");
    CHECK(dnnl_primitive_create(&prim, pd), "reorder primitive");
    CHECK(dnnl_memory_create(&ms, src_md, ctx->engine, (void *)src), "memory");
    CHECK(dnnl_memory_create(&md, dst_md, ctx->engine, dst), "memory");
    const dnnl_memory_desc_t *scratch_md = NULL;
    void *scratch = scratchpad_for(ctx, prim, &scratch_md, &failed);
    if (failed) { set_err(err, errlen, "out of memory for the reorder scratchpad"); goto fail; }
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, ms}, {DNNL_ARG_TO, md}, {DNNL_ARG_SCRATCHPAD, NULL}};
    if (scratch) CHECK(dnnl_memory_create(&mscratch, scratch_md, ctx->engine, scratch), "memory");
    args[2].memory = mscratch;
    CHECK(dnnl_primitive_execute(prim, ctx->stream, scratch ? 3 : 2, args), "reorder");
    CHECK(dnnl_stream_wait(ctx->stream), "stream wait");
    rc = 0;
fail:
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (mscratch) dnnl_memory_destroy(mscratch);
    if (ms) dnnl_memory_destroy(ms);
    if (md) dnnl_memory_destroy(md);
    if (prim) dnnl_primitive_destroy(prim);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

/// Executes `prim` with (arg, md, pointer) triples; memory objects are thin wrappers over our buffers.
typedef struct { int arg; const dnnl_memory_desc_t *md; const void *ptr; } exec_arg;

static int execute(sd_ctx *ctx, dnnl_primitive_t prim, const exec_arg *in, int count, char *err,
                   size_t errlen) {
    dnnl_exec_arg_t args[9];
    int made = 0, rc = -1, failed = 0;
    for (; made < count; made++) {
        args[made].arg = in[made].arg;
        CHECK(dnnl_memory_create(&args[made].memory, in[made].md, ctx->engine, (void *)in[made].ptr),
              "memory");
    }
    const dnnl_memory_desc_t *scratch_md = NULL;
    void *scratch = scratchpad_for(ctx, prim, &scratch_md, &failed);
    if (failed) { set_err(err, errlen, "out of memory for the oneDNN scratchpad"); goto fail; }
    if (scratch) {
        args[made].arg = DNNL_ARG_SCRATCHPAD;
        CHECK(dnnl_memory_create(&args[made].memory, scratch_md, ctx->engine, scratch), "memory");
        made++;
    }
    CHECK(dnnl_primitive_execute(prim, ctx->stream, made, args), "execute");
    CHECK(dnnl_stream_wait(ctx->stream), "stream wait");
    rc = 0;
fail:
    for (int i = 0; i < made; i++) dnnl_memory_destroy(args[i].memory);
    return rc;
}

/// Caller holds ctx->lock. Makes the primitive of `pd` (whose ownership it takes) and caches it
/// under `key`, reordering the packed weights when this shape wants another layout.
static cache_entry *adopt_primitive(sd_ctx *ctx, packed_weights *pw, const long *key,
                                    dnnl_primitive_desc_t pd, char *err, size_t errlen) {
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    void *weights = NULL;
    dnnl_primitive_t prim = NULL;
    cache_entry *e = NULL;
    if (!dnnl_memory_desc_equal(want, &pw->packed_md)) {
        weights = sd_aligned_alloc(dnnl_memory_desc_get_size(want));
        if (!weights) { set_err(err, errlen, "out of memory"); goto fail; }
        if (reorder(ctx, &pw->packed_md, pw->packed, want, weights, err, errlen) != 0) goto fail;
    }
    CHECK(dnnl_primitive_create(&prim, pd), "primitive");
    e = cache_insert(&pw->cache, key, prim, weights);
    if (e) { dnnl_primitive_desc_destroy(pd); return e; }
    set_err(err, errlen, "out of memory");
fail:
    if (prim) dnnl_primitive_destroy(prim);
    sd_aligned_free(weights);
    dnnl_primitive_desc_destroy(pd);
    return NULL;
}

/// Caller holds ctx->lock. Runs a cached weighted primitive: src, weights, bias, dst and an optional
/// binary post-op operand (`post_md`, `post`).
static int run_weighted(sd_ctx *ctx, packed_weights *pw, cache_entry *e, const void *src, void *dst,
                        const dnnl_memory_desc_t *post_md, const void *post, char *err, size_t errlen) {
    pw->impl = impl_name(e->prim);
    const_dnnl_primitive_desc_t pd;
    dnnl_primitive_get_primitive_desc(e->prim, &pd);
    exec_arg args[5] = {
        {DNNL_ARG_SRC, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), src},
        {DNNL_ARG_WEIGHTS, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0),
         e->weights ? e->weights : pw->packed},
        {DNNL_ARG_DST, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), dst},
    };
    int count = 3;
    if (pw->bias)
        args[count++] = (exec_arg){DNNL_ARG_BIAS, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 1), pw->bias};
    if (post)
        args[count++] = (exec_arg){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, post_md, post};
    return execute(ctx, e->prim, args, count, err, errlen);
}

/// Packs `user` (plain fp32 weights described by user_md) into the layout `pd` asks for.
static int pack_weights(sd_ctx *ctx, packed_weights *pw, dnnl_primitive_desc_t pd,
                        const dnnl_memory_desc_t *user_md, const void *user, const float *bias, long bias_count,
                        char *err, size_t errlen) {
    pw->impl = "none";
    if (bias) {
        pw->bias = sd_aligned_alloc(sizeof(float) * bias_count);
        if (!pw->bias) { set_err(err, errlen, "out of memory"); return -1; }
        memcpy(pw->bias, bias, sizeof(float) * bias_count);
    }
    pw->packed_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    pw->packed = sd_aligned_alloc(dnnl_memory_desc_get_size(&pw->packed_md));
    if (!pw->packed) { set_err(err, errlen, "out of memory packing weights"); return -1; }
    return reorder(ctx, user_md, user, &pw->packed_md, pw->packed, err, errlen);
}

static void release_weights(packed_weights *pw) {
    cache_free(pw->cache);
    sd_aligned_free(pw->packed);
    sd_aligned_free(pw->bias);
}

// ------------------------------------------------------------------------------------ context

sd_ctx *sd_ctx_create(int threads, char *err, size_t errlen) {
    sd_ctx *ctx = calloc(1, sizeof(sd_ctx));
    if (!ctx) { set_err(err, errlen, "out of memory"); return NULL; }
    ctx->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&ctx->lock, NULL);
    omp_set_num_threads(ctx->threads);
    CHECK(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0), "engine");
    CHECK(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags), "stream");
    return ctx;
fail:
    sd_ctx_destroy(ctx);
    return NULL;
}

void sd_ctx_destroy(sd_ctx *ctx) {
    if (!ctx) return;
    cache_free(ctx->cache);
    sd_aligned_free(ctx->scratch);
    sd_aligned_free(ctx->dnnl_scratch);
    if (ctx->stream) dnnl_stream_destroy(ctx->stream);
    if (ctx->engine) dnnl_engine_destroy(ctx->engine);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

int sd_ctx_threads(const sd_ctx *ctx) { return ctx->threads; }

const char *sd_dnnl_isa_name(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_sse41: return "sse41";
    default: return "other";
    }
}

// ------------------------------------------------------------------------------------ conv

static int conv_out(int in, int k, int s, int p0, int p1) { return (in + p0 + p1 - k) / s + 1; }

/// The binary post-op operand of a convolution: [n, oc] per image and channel (kind 1) or the full
/// output (kind 2), NHWC fp32.
static void conv_addend_md(const sd_conv *c, int n, int h, int w, int kind, int dt, dnnl_memory_desc_t *md) {
    int oh = conv_out(h, c->kh, c->sh, c->pt, c->pb), ow = conv_out(w, c->kw, c->sw, c->pl, c->pr);
    dnnl_dims_t ad = {n, c->oc, kind == 1 ? 1 : oh, kind == 1 ? 1 : ow};
    dnnl_memory_desc_init_by_tag(md, 4, ad, dt_of(dt), dnnl_nhwc);
}

/// Creates a primitive descriptor with post-ops: a binary add of `post` (may be NULL), then ReLU.
static dnnl_status_t with_post_ops(const_dnnl_op_desc_t desc, const dnnl_memory_desc_t *post, int relu,
                                   dnnl_engine_t engine, dnnl_primitive_desc_t *pd) {
    dnnl_primitive_attr_t attr = user_scratchpad_attr();
    dnnl_post_ops_t ops = NULL;
    if (post || relu) {
        dnnl_post_ops_create(&ops);
        if (post) dnnl_post_ops_append_binary(ops, dnnl_binary_add, post);
        if (relu) dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
        dnnl_primitive_attr_set_post_ops(attr, ops);
    }
    dnnl_status_t st = dnnl_primitive_desc_create(pd, desc, attr, engine, NULL);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return st;
}

/// Forward-inference convolution descriptor for an NHWC batch of n x h x w, weights in format "any".
static dnnl_status_t conv_pd(sd_conv *c, int n, int h, int w, int sdt, int ddt, int addend_kind,
                             int addend_dt, int relu, dnnl_primitive_desc_t *pd) {
    int oh = conv_out(h, c->kh, c->sh, c->pt, c->pb), ow = conv_out(w, c->kw, c->sw, c->pl, c->pr);
    dnnl_memory_desc_t src, wei, bias, dst, add;
    dnnl_dims_t sd = {n, c->ic, h, w}, wd = {c->oc, c->ic, c->kh, c->kw}, bd = {c->oc},
                dd = {n, c->oc, oh, ow};
    dnnl_dims_t strides = {c->sh, c->sw}, pl = {c->pt, c->pl}, pr = {c->pb, c->pr};
    dnnl_memory_desc_init_by_tag(&src, 4, sd, dt_of(sdt), dnnl_nhwc);
    dnnl_memory_desc_init_by_tag(&wei, 4, wd, dt_of(c->wdt), dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias, 1, bd, dnnl_f32, dnnl_a);
    dnnl_memory_desc_init_by_tag(&dst, 4, dd, dt_of(ddt), dnnl_nhwc);
    dnnl_convolution_desc_t desc;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(
        &desc, dnnl_forward_inference, dnnl_convolution_direct, &src, &wei, c->has_bias ? &bias : NULL,
        &dst, strides, pl, pr);
    if (st != dnnl_success) return st;
    if (addend_kind) conv_addend_md(c, n, h, w, addend_kind, addend_dt, &add);
    return with_post_ops(&desc, addend_kind ? &add : NULL, relu, c->ctx->engine, pd);
}

sd_conv *sd_conv_create(sd_ctx *ctx, const float *weight_oihw, const float *bias, int oc, int ic,
                        int kh, int kw, int stride_h, int stride_w, int pad_top, int pad_left,
                        int pad_bottom, int pad_right, int wdt, char *err, size_t errlen) {
    sd_conv *c = calloc(1, sizeof(sd_conv));
    dnnl_primitive_desc_t pd = NULL;
    if (!c) { set_err(err, errlen, "out of memory"); return NULL; }
    *c = (sd_conv){ctx, oc, ic, kh, kw, stride_h, stride_w, pad_top, pad_left, pad_bottom, pad_right,
                   wdt, bias != NULL};
    omp_set_num_threads(ctx->threads);
    // Pack for a representative 32x32 input; other shapes reuse this layout when oneDNN agrees.
    int rep = 32 * stride_h;
    CHECK(conv_pd(c, 1, rep, rep, wdt, SD_F32, 0, SD_F32, 0, &pd), "convolution descriptor");
    dnnl_memory_desc_t user;
    dnnl_dims_t wd = {oc, ic, kh, kw};
    dnnl_memory_desc_init_by_tag(&user, 4, wd, dnnl_f32, dnnl_oihw);
    pthread_mutex_lock(&ctx->lock);   // the reorder uses the context's scratchpad
    int packed = pack_weights(ctx, &c->pw, pd, &user, weight_oihw, bias, oc, err, errlen);
    pthread_mutex_unlock(&ctx->lock);
    if (packed != 0) goto fail;
    dnnl_primitive_desc_destroy(pd);
    return c;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    sd_conv_destroy(c);
    return NULL;
}

int sd_conv_forward(sd_conv *c, const void *src, int sdt, int n, int h, int w, void *dst, int ddt,
                    const void *addend, int addend_kind, int addend_dt, int relu, char *err, size_t errlen) {
    sd_ctx *ctx = c->ctx;
    if (!addend) addend_kind = 0;
    size_t addend_esize = addend_dt == SD_BF16 ? 2 : 4;
    if (addend_kind == 1 && n > 1) {
        // oneDNN 2.6 applies an [n, oc, 1, 1] binary post-op as per-channel only (image 0's row for
        // every image), so per-image addends run one image at a time.
        int oh = conv_out(h, c->kh, c->sh, c->pt, c->pb), ow = conv_out(w, c->kw, c->sw, c->pl, c->pr);
        size_t in_step = (size_t)h * w * c->ic * (sdt == SD_BF16 ? 2 : 4);
        size_t out_step = (size_t)oh * ow * c->oc * (ddt == SD_BF16 ? 2 : 4);
        for (int i = 0; i < n; i++)
            if (sd_conv_forward(c, (const char *)src + i * in_step, sdt, 1, h, w, (char *)dst + i * out_step,
                                ddt, (const char *)addend + addend_esize * (size_t)i * c->oc, 1, addend_dt, relu,
                                err, errlen) != 0) return -1;
        return 0;
    }
    omp_set_num_threads(ctx->threads);
    long key[CACHE_KEY_LEN] = {n, h, w, sdt, ddt, addend_kind, addend_dt, relu};
    dnnl_primitive_desc_t pd = NULL;
    dnnl_memory_desc_t add;
    int rc = -1;
    pthread_mutex_lock(&ctx->lock);
    cache_entry *e = cache_find(c->pw.cache, key);
    if (!e) {
        CHECK(conv_pd(c, n, h, w, sdt, ddt, addend_kind, addend_dt, relu, &pd), "convolution descriptor");
        e = adopt_primitive(ctx, &c->pw, key, pd, err, errlen);
        pd = NULL;
        if (!e) goto fail;
    }
    if (addend_kind) conv_addend_md(c, n, h, w, addend_kind, addend_dt, &add);
    rc = run_weighted(ctx, &c->pw, e, src, dst, &add, addend_kind ? addend : NULL, err, errlen);
fail:
    pthread_mutex_unlock(&ctx->lock);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

void sd_conv_destroy(sd_conv *c) {
    if (!c) return;
    release_weights(&c->pw);
    free(c);
}

const char *sd_conv_impl(const sd_conv *c) { return c->pw.impl; }

// ------------------------------------------------------------------------------------ linear

static dnnl_status_t linear_pd(sd_linear *l, long m, int sdt, int ddt, int residual,
                               dnnl_primitive_desc_t *pd) {
    dnnl_memory_desc_t src, wei, bias, dst;
    dnnl_dims_t sd = {m, l->in}, wd = {l->in, l->out}, bd = {1, l->out}, dd = {m, l->out};
    dnnl_memory_desc_init_by_tag(&src, 2, sd, dt_of(sdt), dnnl_ab);
    dnnl_memory_desc_init_by_tag(&wei, 2, wd, dt_of(l->wdt), dnnl_format_tag_any);
    dnnl_memory_desc_init_by_tag(&bias, 2, bd, dnnl_f32, dnnl_ab);
    dnnl_memory_desc_init_by_tag(&dst, 2, dd, dt_of(ddt), dnnl_ab);
    dnnl_matmul_desc_t desc;
    dnnl_status_t st = dnnl_matmul_desc_init(&desc, &src, &wei, l->has_bias ? &bias : NULL, &dst);
    if (st != dnnl_success) return st;
    dnnl_memory_desc_t res;
    dnnl_memory_desc_init_by_tag(&res, 2, dd, dnnl_f32, dnnl_ab);
    return with_post_ops(&desc, residual ? &res : NULL, 0, l->ctx->engine, pd);
}

sd_linear *sd_linear_create(sd_ctx *ctx, const float *weight, const float *bias, int out, int in,
                            int wdt, char *err, size_t errlen) {
    sd_linear *l = calloc(1, sizeof(sd_linear));
    dnnl_primitive_desc_t pd = NULL;
    if (!l) { set_err(err, errlen, "out of memory"); return NULL; }
    *l = (sd_linear){ctx, out, in, wdt, bias != NULL};
    omp_set_num_threads(ctx->threads);
    CHECK(linear_pd(l, 256, wdt, SD_F32, 0, &pd), "matmul descriptor");
    // The PyTorch [out, in] weight is the [in, out] matrix W^T with strides (1, in).
    dnnl_memory_desc_t user;
    dnnl_dims_t wd = {in, out}, ws = {1, in};
    dnnl_memory_desc_init_by_strides(&user, 2, wd, dnnl_f32, ws);
    pthread_mutex_lock(&ctx->lock);   // the reorder uses the context's scratchpad
    int packed = pack_weights(ctx, &l->pw, pd, &user, weight, bias, out, err, errlen);
    pthread_mutex_unlock(&ctx->lock);
    if (packed != 0) goto fail;
    dnnl_primitive_desc_destroy(pd);
    return l;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    sd_linear_destroy(l);
    return NULL;
}

int sd_linear_forward(sd_linear *l, const void *src, int sdt, long m, void *dst, int ddt,
                      const float *residual, char *err, size_t errlen) {
    sd_ctx *ctx = l->ctx;
    omp_set_num_threads(ctx->threads);
    long key[CACHE_KEY_LEN] = {m, sdt, ddt, residual != NULL};
    dnnl_primitive_desc_t pd = NULL;
    int rc = -1;
    pthread_mutex_lock(&ctx->lock);
    cache_entry *e = cache_find(l->pw.cache, key);
    if (!e) {
        CHECK(linear_pd(l, m, sdt, ddt, residual != NULL, &pd), "matmul descriptor");
        e = adopt_primitive(ctx, &l->pw, key, pd, err, errlen);
        pd = NULL;
        if (!e) goto fail;
    }
    dnnl_memory_desc_t res;
    dnnl_dims_t dd = {m, l->out};
    dnnl_memory_desc_init_by_tag(&res, 2, dd, dnnl_f32, dnnl_ab);
    rc = run_weighted(ctx, &l->pw, e, src, dst, &res, residual, err, errlen);
fail:
    pthread_mutex_unlock(&ctx->lock);
    if (pd) dnnl_primitive_desc_destroy(pd);
    return rc;
}

void sd_linear_destroy(sd_linear *l) {
    if (!l) return;
    release_weights(&l->pw);
    free(l);
}

const char *sd_linear_impl(const sd_linear *l) { return l->pw.impl; }

// ------------------------------------------------------------------------------------ batched products

/// Caller holds ctx->lock.
static int bmm_locked(sd_ctx *ctx, long batch, long m, long n, long k, const void *a, long a_bs,
                      long a_rs, long a_cs, const void *b, long b_bs, long b_rs, long b_cs, int abdt,
                      void *c, long c_bs, long c_rs, int cdt, float alpha, char *err, size_t errlen) {
    long key[CACHE_KEY_LEN] = {1, batch, m, n, k, a_bs, a_rs, a_cs, b_bs, b_rs, b_cs, abdt,
                               c_bs, c_rs, cdt};
    memcpy(&key[15], &alpha, sizeof(float));
    dnnl_memory_desc_t amd, bmd, cmd;
    dnnl_dims_t ad = {batch, m, k}, as = {a_bs, a_rs, a_cs};
    dnnl_dims_t bd = {batch, k, n}, bs = {b_bs, b_rs, b_cs};
    dnnl_dims_t cd = {batch, m, n}, cs = {c_bs, c_rs, 1};
    dnnl_memory_desc_init_by_strides(&amd, 3, ad, dt_of(abdt), as);
    dnnl_memory_desc_init_by_strides(&bmd, 3, bd, dt_of(abdt), bs);
    dnnl_memory_desc_init_by_strides(&cmd, 3, cd, dt_of(cdt), cs);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    cache_entry *e = cache_find(ctx->cache, key);
    if (!e) {
        dnnl_matmul_desc_t desc;
        CHECK(dnnl_matmul_desc_init(&desc, &amd, &bmd, NULL, &cmd), "batched matmul descriptor");
        attr = user_scratchpad_attr();
        if (!attr) { set_err(err, errlen, "oneDNN attributes failed"); goto fail; }
        if (alpha != 1.0f) CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha), "scales");
        CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, ctx->engine, NULL), "batched matmul");
        dnnl_primitive_t prim;
        CHECK(dnnl_primitive_create(&prim, pd), "batched matmul primitive");
        e = cache_insert(&ctx->cache, key, prim, NULL);
        if (!e) { dnnl_primitive_destroy(prim); goto fail; }
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    exec_arg args[3] = {{DNNL_ARG_SRC, &amd, a}, {DNNL_ARG_WEIGHTS, &bmd, b}, {DNNL_ARG_DST, &cmd, c}};
    if (attr) dnnl_primitive_attr_destroy(attr);
    return execute(ctx, e->prim, args, 3, err, errlen);
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return -1;
}

int sd_bmm(sd_ctx *ctx, long batch, long m, long n, long k, const void *a, long a_bs, long a_rs,
           long a_cs, const void *b, long b_bs, long b_rs, long b_cs, int abdt, void *c, long c_bs,
           long c_rs, int cdt, float alpha, char *err, size_t errlen) {
    omp_set_num_threads(ctx->threads);
    pthread_mutex_lock(&ctx->lock);
    int rc = bmm_locked(ctx, batch, m, n, k, a, a_bs, a_rs, a_cs, b, b_bs, b_rs, b_cs, abdt, c,
                        c_bs, c_rs, cdt, alpha, err, errlen);
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}

/// Query rows per block: large enough that each product is an efficient GEMM (measured best at
/// 64-256 rows for 4096 keys), small enough that the score block (heads x rows x lk floats, about
/// 10 MiB at most) stays in the last-level cache between the products and the softmax.
static long attention_block_rows(long lq, long lk, long heads) {
    long rows = (10L << 20) / (4 * heads * lk);
    rows = rows > 256 ? 256 : rows;
    rows = rows < 16 ? 16 : (rows / 16) * 16;
    return rows > lq ? lq : rows;
}

int sd_attention(sd_ctx *ctx, long n, long lq, long lk, long heads, long dh, const void *q,
                 long q_rs, const void *k, long k_rs, const void *v, long v_rs, int qkvdt,
                 int causal, float *out, float scale, char *err, size_t errlen) {
    omp_set_num_threads(ctx->threads);
    if (sd_flash_attention_supported(dh, qkvdt == SD_BF16)) {
        size_t bytes = sd_flash_scratch_bytes(n, lk, heads, dh, qkvdt == SD_BF16);
        pthread_mutex_lock(&ctx->lock);
        if (ctx->scratch_size < bytes) {
            sd_aligned_free(ctx->scratch);
            ctx->scratch = sd_aligned_alloc(bytes);
            ctx->scratch_size = ctx->scratch ? bytes : 0;
        }
        if (!ctx->scratch) {
            pthread_mutex_unlock(&ctx->lock);
            set_err(err, errlen, "out of memory for attention");
            return -1;
        }
        sd_flash_attention(ctx->threads, n, lq, lk, heads, dh, q, q_rs, k, k_rs, v, v_rs,
                           qkvdt == SD_BF16, causal, out, scale, ctx->scratch);
        pthread_mutex_unlock(&ctx->lock);
        return 0;
    }
    long rows = attention_block_rows(lq, lk, heads);
    size_t esize = qkvdt == SD_BF16 ? 2 : 4;
    size_t scores = sizeof(float) * heads * rows * lk;
    size_t probs = qkvdt == SD_BF16 ? 2 * heads * rows * lk : 0;
    size_t need = scores + probs + sizeof(float) * heads * rows;
    int rc = -1;
    pthread_mutex_lock(&ctx->lock);
    if (ctx->scratch_size < need) {
        sd_aligned_free(ctx->scratch);
        ctx->scratch = sd_aligned_alloc(need);
        ctx->scratch_size = ctx->scratch ? need : 0;
        if (!ctx->scratch) { set_err(err, errlen, "out of memory for attention scores"); goto done; }
    }
    float *s = ctx->scratch;
    void *p = qkvdt == SD_BF16 ? (void *)((char *)ctx->scratch + scores) : (void *)s;
    float *inv = (float *)((char *)ctx->scratch + scores + probs);
    long width = heads * dh;
    for (long img = 0; img < n; img++) {
        const char *kb = (const char *)k + esize * img * lk * k_rs;
        const char *vb = (const char *)v + esize * img * lk * v_rs;
        for (long i0 = 0; i0 < lq; i0 += rows) {
            long r = lq - i0 < rows ? lq - i0 : rows;
            const char *qb = (const char *)q + esize * (img * lq + i0) * q_rs;
            float *ob = out + (img * lq + i0) * width;
            // S[h] = scale * Q[h] K[h]^T  (K^T read through strides, never transposed in memory)
            if (bmm_locked(ctx, heads, r, lk, dh, qb, dh, q_rs, 1, kb, dh, 1, k_rs, qkvdt, s,
                           r * lk, lk, SD_F32, scale, err, errlen) != 0) goto done;
            // P = exp(S - rowmax), left unnormalised: the 1/sum is applied to the output rows.
            if (causal) sd_causal_mask(s, heads, r, lk, i0);
            sd_softmax_rows(ctx->threads, s, p, qkvdt, heads * r, lk, inv);
            // O[h] = P[h] V[h], written straight into the interleaved-heads output rows.
            if (bmm_locked(ctx, heads, r, dh, lk, p, r * lk, lk, 1, vb, dh, v_rs, 1, qkvdt, ob, dh,
                           width, SD_F32, 1.0f, err, errlen) != 0) goto done;
            sd_rescale_heads(ctx->threads, ob, inv, r, heads, dh, width);
        }
    }
    rc = 0;
done:
    pthread_mutex_unlock(&ctx->lock);
    return rc;
}
