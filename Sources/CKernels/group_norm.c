// GroupNorm over NHWC activations, optionally fused with SiLU, a bf16 store, and a per-image,
// per-channel offset added to the input first (a ResNet's time embedding: GroupNorm(h + t)
// without ever materialising h + t).
// Pass 1 gathers per-channel sums of (x - K_c), where K_c is the channel's first pixel: the shift
// keeps E[x^2] - E[x]^2 free of cancellation when a channel's mean is large against its spread.
// Partial sums are float over short runs of pixels and double across runs. Pass 2 applies one
// fused scale and shift per (image, channel). Two reads and one write of the activation in all.
#include "sdkernels.h"
#include "internal.h"
#include "vecmath.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define RUN 64   // pixels summed in float before folding into double

typedef struct {
    const float *x; long pixels, channels, parts;
    double *s1, *s2;          // [n * parts][channels]
} stats_ctx;

/// Channels are walked in blocks of 64 (four AVX-512 registers per sum) across a run of pixels,
/// so the running sums stay in registers rather than in memory.
#define CBLOCK 64
SD_INLINE void stats_body(const stats_ctx *c, long b, long e) {
    long C = c->channels;
    for (long task = b; task < e; task++) {
        long img = task / c->parts, part = task % c->parts;
        long p0 = c->pixels * part / c->parts, p1 = c->pixels * (part + 1) / c->parts;
        const float *restrict base = c->x + img * c->pixels * C;
        double *restrict d1 = c->s1 + task * C, *restrict d2 = c->s2 + task * C;
        for (long c0 = 0; c0 < C; c0 += CBLOCK) {
            long w = C - c0 < CBLOCK ? C - c0 : CBLOCK;
            float shift[CBLOCK] = {0};
            for (long j = 0; j < w; j++) shift[j] = base[c0 + j];   // pixel 0 of this image
            for (long p = p0; p < p1; p += RUN) {
                long q = p + RUN < p1 ? p + RUN : p1;
                float f1[CBLOCK] = {0}, f2[CBLOCK] = {0};
                if (w == CBLOCK) {
                    for (long px = p; px < q; px++) {
                        const float *restrict row = base + px * C + c0;
                        for (long j = 0; j < CBLOCK; j++) { float d = row[j] - shift[j]; f1[j] += d; f2[j] += d * d; }
                    }
                } else {
                    for (long px = p; px < q; px++) {
                        const float *restrict row = base + px * C + c0;
                        for (long j = 0; j < w; j++) { float d = row[j] - shift[j]; f1[j] += d; f2[j] += d * d; }
                    }
                }
                for (long j = 0; j < w; j++) { d1[c0 + j] += f1[j]; d2[c0 + j] += f2[j]; }
            }
        }
    }
}

typedef struct {
    const float *x; void *y; int odt, silu; long pixels, channels;
    const float *scale, *shift;   // [n][channels]
} apply_ctx;

SD_INLINE void apply_body(const apply_ctx *c, long b, long e) {
    long C = c->channels;
    float out[512];
    for (long r = b; r < e; r++) {
        long img = r / c->pixels;
        const float *restrict x = c->x + r * C;
        const float *restrict a = c->scale + img * C, *restrict s = c->shift + img * C;
        if (c->odt == SD_F32 && !c->silu) {
            float *restrict y = (float *)c->y + r * C;
            for (long k = 0; k < C; k++) y[k] = x[k] * a[k] + s[k];
            continue;
        }
        for (long c0 = 0; c0 < C; c0 += 512) {
            long m = C - c0 < 512 ? C - c0 : 512;
            if (c->silu)
                for (long k = 0; k < m; k++) { float v = x[c0 + k] * a[c0 + k] + s[c0 + k]; out[k] = v * sd_sigmoid(v); }
            else
                for (long k = 0; k < m; k++) out[k] = x[c0 + k] * a[c0 + k] + s[c0 + k];
            if (c->odt == SD_BF16) {
                uint16_t *restrict y = (uint16_t *)c->y + r * C + c0;
                for (long k = 0; k < m; k++) y[k] = sd_f32_to_bf16(out[k]);
            } else {
                memcpy((float *)c->y + r * C + c0, out, sizeof(float) * m);
            }
        }
    }
}

AVX512 static void stats_avx512(void *c, long b, long e) { stats_body(c, b, e); }
static void stats_generic(void *c, long b, long e) { stats_body(c, b, e); }
AVX512 static void apply_avx512(void *c, long b, long e) { apply_body(c, b, e); }
static void apply_generic(void *c, long b, long e) { apply_body(c, b, e); }

int sd_group_norm(int threads, const float *x, const float *offset, void *y, int odt, long n, long pixels,
                   long channels, long groups, const float *gamma, const float *beta, float eps,
                   int silu) {
    int wide = sd_cpu_has_avx512f();
    long parts = threads > 1 ? threads : 1;
    if (parts > pixels) parts = pixels;
    long C = channels, tasks = n * parts, cpg = channels / groups;
    double *sums = calloc((size_t)(2 * tasks * C), sizeof(double));
    float *affine = malloc(sizeof(float) * 2 * n * C);
    if (!sums || !affine) { free(sums); free(affine); return -1; }
    stats_ctx sc = {x, pixels, C, parts, sums, sums + tasks * C};
    sd_parallel_for(threads, tasks, 1, wide ? stats_avx512 : stats_generic, &sc);

    float *scale = affine, *shift = affine + n * C;
    double count = (double)pixels;
    for (long img = 0; img < n; img++) {
        const float *k = x + img * pixels * C;
        for (long g = 0; g < groups; g++) {
            // Channel statistics from the shifted sums; group variance = mean over channels of
            // (channel variance + squared distance of the channel mean from the group mean).
            double mean_g = 0, var_g = 0;
            for (int pass = 0; pass < 2; pass++)
                for (long j = 0; j < cpg; j++) {
                    long ch = g * cpg + j;
                    double a1 = 0, a2 = 0;
                    for (long p = 0; p < parts; p++) {
                        a1 += sc.s1[(img * parts + p) * C + ch];
                        a2 += sc.s2[(img * parts + p) * C + ch];
                    }
                    // An offset b[n, c] shifts the channel's mean and nothing else (the shifted
                    // sums of x + b around x0 + b equal those of x around x0).
                    double b = offset ? offset[img * C + ch] : 0;
                    double m = a1 / count, mean_c = k[ch] + b + m;
                    if (pass == 0) mean_g += mean_c / (double)cpg;
                    else var_g += (a2 / count - m * m + (mean_c - mean_g) * (mean_c - mean_g)) / (double)cpg;
                }
            double rstd = 1.0 / sqrt((var_g < 0 ? 0 : var_g) + (double)eps);
            for (long j = 0; j < cpg; j++) {
                long ch = g * cpg + j;
                // y = (x + b - mean) * gamma * rstd + beta = x * scale + shift.
                double b = offset ? offset[img * C + ch] : 0;
                scale[img * C + ch] = (float)(gamma[ch] * rstd);
                shift[img * C + ch] = (float)(beta[ch] + (b - mean_g) * gamma[ch] * rstd);
            }
        }
    }
    apply_ctx ac = {x, y, odt, silu, pixels, C, scale, shift};
    long min_rows = C >= 4096 ? 1 : 4096 / C;
    sd_parallel_for(threads, n * pixels, min_rows, wide ? apply_avx512 : apply_generic, &ac);
    free(sums);
    free(affine);
    return 0;
}
