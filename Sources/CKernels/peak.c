// The machine's arithmetic peak, measured with independent FMA chains (fp32) or VDPBF16PS (bf16)
// on every thread: benchmarks report each op as a fraction of this number.
#include "sdkernels.h"
#include <immintrin.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);

typedef struct { long iterations; int bf16; volatile float sink; } peak_job;

#define CHAINS 24   // enough independent chains to cover FMA latency x issue width

__attribute__((target("avx512f,fma"))) static void peak_f32(peak_job *job) {
    __m512 acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps((float)j * 1e-3f);
    const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (long i = 0; i < job->iterations; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_fmadd_ps(acc[j], a, b);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(acc[j]);
    job->sink = s;
}

__attribute__((target("avx512f,avx512bf16"))) static void peak_bf16(peak_job *job) {
    __m512 acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_set1_ps(0);
    const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3F80), b = (__m512bh)_mm512_set1_epi16(0x3380);
    for (long i = 0; i < job->iterations; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
    float s = 0;
    for (int j = 0; j < CHAINS; j++) s += _mm512_reduce_add_ps(acc[j]);
    job->sink = s;
}

__attribute__((target("avx2,fma"))) static void peak_avx2(peak_job *job) {
    __m256 acc[CHAINS];
    for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_set1_ps((float)j * 1e-3f);
    const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (long i = 0; i < job->iterations; i++)
        for (int j = 0; j < CHAINS; j++) acc[j] = _mm256_fmadd_ps(acc[j], a, b);
    float lanes[8], s = 0;
    for (int j = 0; j < CHAINS; j++) { _mm256_storeu_ps(lanes, acc[j]); for (int k = 0; k < 8; k++) s += lanes[k]; }
    job->sink = s;
}

static void peak_worker(void *data) {
    peak_job local = *(peak_job *)data;
    if (local.bf16) peak_bf16(&local);
    else if (sd_cpu_has_avx512f()) peak_f32(&local);
    else peak_avx2(&local);
    ((peak_job *)data)->sink = local.sink;
}

double sd_fma_peak_flops(int threads, int bf16, long iterations) {
    if (bf16 && !sd_cpu_has_avx512_bf16()) return 0;
    if (!bf16 && !sd_cpu_has_avx512f()) {
        __builtin_cpu_init();
        if (!__builtin_cpu_supports("fma")) return 0;
    }
    peak_job job = {iterations, bf16, 0};
    if (threads < 1) threads = 1;
    GOMP_parallel(peak_worker, &job, (unsigned)threads, 0);
    // fp32: 16 lanes x 2 flops per FMA; bf16: 16 lanes x 2 products x 2 flops per VDPBF16PS.
    double lanes = bf16 ? 64.0 : (sd_cpu_has_avx512f() ? 32.0 : 16.0);
    return (double)threads * (double)iterations * CHAINS * lanes;
}
