// Threading through libgomp's own entry point, so our kernels share oneDNN's OpenMP thread pool:
// one set of threads for the whole backend, no oversubscription and no second spin-waiting pool.
// GOMP_parallel is the stable libgomp ABI that GCC emits for `#pragma omp parallel` (GCC >= 4.9).
#include "sdkernels.h"
#include "internal.h"
#include <stdlib.h>

extern void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags);
extern int omp_get_thread_num(void);
extern int omp_get_num_threads(void);

typedef struct {
    sd_task_fn fn;
    void *context;
    long count;
} parallel_job;

static void parallel_worker(void *data) {
    const parallel_job *job = data;
    long threads = omp_get_num_threads(), id = omp_get_thread_num();
    long begin = job->count * id / threads, end = job->count * (id + 1) / threads;
    if (begin < end) job->fn(job->context, begin, end);
}

void sd_parallel_for(int threads, long count, long min_chunk, sd_task_fn fn, void *context) {
    if (count <= 0) return;
    if (min_chunk < 1) min_chunk = 1;
    long useful = (count + min_chunk - 1) / min_chunk;
    if (threads > useful) threads = (int)useful;
    if (threads <= 1) { fn(context, 0, count); return; }
    parallel_job job = {fn, context, count};
    GOMP_parallel(parallel_worker, &job, (unsigned)threads, 0);
}

void *sd_aligned_alloc(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    if (posix_memalign(&p, 64, (bytes + 63) & ~(size_t)63) != 0) return NULL;
    return p;
}

void sd_aligned_free(void *p) { free(p); }
