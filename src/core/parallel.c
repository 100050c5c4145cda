/* One thread pool for the library: OpenMP's, sized by tfw_set_num_threads() or the
 * TFW_NUM_THREADS environment variable (default: the number of cores).
 *
 * tfw__parallel_for splits [0, n) into a number of chunks that depends only on n and the
 * grain, so kernels that reduce per chunk and combine chunk results in order give the same
 * bits for 1 or N threads. */
#include <stdlib.h>
#include <unistd.h>
#ifdef TFW_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/core.h"

static _Atomic int g_threads = 0;

static int default_threads(void) {
  const char *e = getenv("TFW_NUM_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int tfw__num_threads(void) {
  int n = atomic_load(&g_threads);
  if (n <= 0) {
    n = default_threads();
    atomic_store(&g_threads, n);
  }
  return n;
}

void tfw_set_num_threads(int n) { atomic_store(&g_threads, n > 0 ? n : default_threads()); }
int tfw_get_num_threads(void) { return tfw__num_threads(); }

/* Upper bound on chunks so that scheduling overhead stays small. */
#define TFW__MAX_CHUNKS 256

int64_t tfw__parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  if (grain < 1) grain = 1;
  int64_t c = n / grain;
  if (c < 1) c = 1;
  if (c > TFW__MAX_CHUNKS) c = TFW__MAX_CHUNKS;
  return c;
}

void tfw__parallel_for(int64_t n, int64_t grain, tfw__range_fn fn, void *ctx) {
  int64_t chunks = tfw__parallel_chunks(n, grain);
  if (chunks == 0) return;
  int threads = tfw__num_threads();
  if (chunks == 1 || threads == 1) {
    for (int64_t c = 0; c < chunks; c++) fn(c * n / chunks, (c + 1) * n / chunks, ctx);
    return;
  }
#ifdef TFW_HAVE_OPENMP
  if (omp_in_parallel()) {
    for (int64_t c = 0; c < chunks; c++) fn(c * n / chunks, (c + 1) * n / chunks, ctx);
    return;
  }
  int nt = (int)(chunks < threads ? chunks : threads);
#pragma omp parallel for num_threads(nt) schedule(static)
  for (int64_t c = 0; c < chunks; c++) fn(c * n / chunks, (c + 1) * n / chunks, ctx);
#else
  for (int64_t c = 0; c < chunks; c++) fn(c * n / chunks, (c + 1) * n / chunks, ctx);
#endif
}
