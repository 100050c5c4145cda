/* The machine's two roofs, measured in the same run as the benchmarks (bench/run.py):
 *
 *   peak_and_stream [--threads N] [--min-time S] [--floats N] [--only fma_peak|copy]
 *
 * Prints one JSON line per roof:
 *   {"case":"fma_peak","gflops":..,"isa":"avx512","threads":N,...}
 *   {"case":"copy_64M","ours_ms":..,"ours_median_ms":..,"gbps":..,"bytes":..,"threads":N,...}
 *
 * fma_peak: FP32 FMA throughput with no memory traffic. Each thread runs a loop of
 * vfmadd231ps on 16 independent register accumulators (AVX-512; 12 ymm accumulators for the
 * AVX2 fallback), which covers latency x throughput on every x86 core seen here (Zen 4: 4-cycle
 * latency x 2 pipes; Intel server cores: 4 x 2). The ISA is picked with
 * __builtin_cpu_supports at run time; the loops use function-level target attributes so the
 * file builds for baseline x86-64. The loop runs in many ~2 ms rounds for --min-time seconds and
 * the best round is reported (a capability, so the best; short rounds dodge other processes on
 * a shared machine).
 *
 * copy: a STREAM-like copy of a large float array (default 64M floats = 256 MiB, far past the
 * caches), split into one contiguous slice per thread. Each slice is copied two ways, by glibc's
 * memcpy and by a loop of vector loads and non-temporal (streaming) stores, and the faster is
 * the roof: on Zen 4 glibc picks rep movsb for large copies, which measured 20 GB/s on one
 * core against 30 GB/s for streaming stores (streaming stores skip the read-for-ownership of
 * the destination). Bandwidth = (bytes read + bytes written) / time. Both buffers are
 * touched first by the thread that copies them, so page faults and NUMA placement stay out of
 * the timing. Threads are plain pthreads (created once, released by a barrier per
 * repetition) so that this roof does not depend on the OpenMP runtime the library uses. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PS_X86 1
#else
#define PS_X86 0
#endif

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- FMA peak --------------------------------------------------------------------------- */
enum { ISA_NONE, ISA_AVX2, ISA_AVX512 };

#if PS_X86
__attribute__((target("avx512f,fma"))) static float fma_loop_avx512(int64_t iters) {
  __m512 a0 = _mm512_set1_ps(0.f), a1 = _mm512_set1_ps(1.f), a2 = _mm512_set1_ps(2.f),
         a3 = _mm512_set1_ps(3.f), a4 = _mm512_set1_ps(4.f), a5 = _mm512_set1_ps(5.f),
         a6 = _mm512_set1_ps(6.f), a7 = _mm512_set1_ps(7.f), a8 = _mm512_set1_ps(8.f),
         a9 = _mm512_set1_ps(9.f), a10 = _mm512_set1_ps(10.f), a11 = _mm512_set1_ps(11.f),
         a12 = _mm512_set1_ps(12.f), a13 = _mm512_set1_ps(13.f), a14 = _mm512_set1_ps(14.f),
         a15 = _mm512_set1_ps(15.f);
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; it++) {
    a0 = _mm512_fmadd_ps(a0, x, y), a1 = _mm512_fmadd_ps(a1, x, y);
    a2 = _mm512_fmadd_ps(a2, x, y), a3 = _mm512_fmadd_ps(a3, x, y);
    a4 = _mm512_fmadd_ps(a4, x, y), a5 = _mm512_fmadd_ps(a5, x, y);
    a6 = _mm512_fmadd_ps(a6, x, y), a7 = _mm512_fmadd_ps(a7, x, y);
    a8 = _mm512_fmadd_ps(a8, x, y), a9 = _mm512_fmadd_ps(a9, x, y);
    a10 = _mm512_fmadd_ps(a10, x, y), a11 = _mm512_fmadd_ps(a11, x, y);
    a12 = _mm512_fmadd_ps(a12, x, y), a13 = _mm512_fmadd_ps(a13, x, y);
    a14 = _mm512_fmadd_ps(a14, x, y), a15 = _mm512_fmadd_ps(a15, x, y);
  }
  __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                           _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
  s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)),
                                     _mm512_add_ps(_mm512_add_ps(a12, a13), _mm512_add_ps(a14, a15))));
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_loop_avx2(int64_t iters) {
  __m256 a0 = _mm256_set1_ps(0.f), a1 = _mm256_set1_ps(1.f), a2 = _mm256_set1_ps(2.f),
         a3 = _mm256_set1_ps(3.f), a4 = _mm256_set1_ps(4.f), a5 = _mm256_set1_ps(5.f),
         a6 = _mm256_set1_ps(6.f), a7 = _mm256_set1_ps(7.f), a8 = _mm256_set1_ps(8.f),
         a9 = _mm256_set1_ps(9.f), a10 = _mm256_set1_ps(10.f), a11 = _mm256_set1_ps(11.f);
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; it++) {
    a0 = _mm256_fmadd_ps(a0, x, y), a1 = _mm256_fmadd_ps(a1, x, y);
    a2 = _mm256_fmadd_ps(a2, x, y), a3 = _mm256_fmadd_ps(a3, x, y);
    a4 = _mm256_fmadd_ps(a4, x, y), a5 = _mm256_fmadd_ps(a5, x, y);
    a6 = _mm256_fmadd_ps(a6, x, y), a7 = _mm256_fmadd_ps(a7, x, y);
    a8 = _mm256_fmadd_ps(a8, x, y), a9 = _mm256_fmadd_ps(a9, x, y);
    a10 = _mm256_fmadd_ps(a10, x, y), a11 = _mm256_fmadd_ps(a11, x, y);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  float out[8], sum = 0;
  _mm256_storeu_ps(out, s);
  for (int i = 0; i < 8; i++) sum += out[i];
  return sum;
}
#endif

static int detect_isa(void) {
#if PS_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma")) return ISA_AVX512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
#endif
  return ISA_NONE;
}

static double flops_per_iter(int isa) { return isa == ISA_AVX512 ? 16.0 * 16 * 2 : 12.0 * 8 * 2; }

/* ---- a tiny thread team: N pthreads, each running job(tid) once per round ------------------ */
typedef struct team team;
typedef void (*team_job)(team *tm, int tid);
struct team {
  int n;
  pthread_barrier_t start, done;
  team_job job;
  int quit;
  void *ctx;
  /* fma */
  int isa;
  int64_t iters;
  volatile float sink[64];
  /* copy */
  char *src, *dst;
  size_t bytes;
};

typedef struct {
  team *tm;
  int tid;
} team_arg;

static void *team_main(void *p) {
  team_arg *a = p;
  team *tm = a->tm;
  for (;;) {
    pthread_barrier_wait(&tm->start);
    if (tm->quit) break;
    tm->job(tm, a->tid);
    pthread_barrier_wait(&tm->done);
  }
  return NULL;
}

/* Runs job on all n threads (thread 0 is the caller) and returns the wall time of the round. */
static double team_round(team *tm, team_job job) {
  tm->job = job;
  double t0 = now_s();
  pthread_barrier_wait(&tm->start);
  job(tm, 0);
  pthread_barrier_wait(&tm->done);
  return now_s() - t0;
}

static void job_fma(team *tm, int tid) {
  float s = 0;
#if PS_X86
  s = tm->isa == ISA_AVX512 ? fma_loop_avx512(tm->iters) : fma_loop_avx2(tm->iters);
#endif
  tm->sink[tid & 63] = s;
}

static void slice(const team *tm, int tid, size_t *lo, size_t *hi) {
  size_t lines = tm->bytes / 64; /* split on cache-line boundaries */
  *lo = lines * (size_t)tid / (size_t)tm->n * 64;
  *hi = tid == tm->n - 1 ? tm->bytes : lines * (size_t)(tid + 1) / (size_t)tm->n * 64;
}

static void job_touch(team *tm, int tid) {
  size_t lo, hi;
  slice(tm, tid, &lo, &hi);
  for (size_t i = lo; i < hi; i++) tm->src[i] = (char)(i * 7u);
  memset(tm->dst + lo, 0, hi - lo);
}

static void job_copy(team *tm, int tid) {
  size_t lo, hi;
  slice(tm, tid, &lo, &hi);
  memcpy(tm->dst + lo, tm->src + lo, hi - lo);
}

#if PS_X86
/* Streaming copy: 4 vector loads, 4 non-temporal stores per step (slices are 64-byte
 * aligned and a multiple of 64 bytes except the last, whose tail goes through memcpy). */
__attribute__((target("avx512f"))) static void nt_copy_avx512(char *d, const char *s, size_t n) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    __m512 a = _mm512_load_ps((const float *)(s + i)), b = _mm512_load_ps((const float *)(s + i + 64)),
           c = _mm512_load_ps((const float *)(s + i + 128)),
           e = _mm512_load_ps((const float *)(s + i + 192));
    _mm512_stream_ps((float *)(d + i), a), _mm512_stream_ps((float *)(d + i + 64), b);
    _mm512_stream_ps((float *)(d + i + 128), c), _mm512_stream_ps((float *)(d + i + 192), e);
  }
  _mm_sfence();
  memcpy(d + i, s + i, n - i);
}

__attribute__((target("avx"))) static void nt_copy_avx(char *d, const char *s, size_t n) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256 a = _mm256_load_ps((const float *)(s + i)), b = _mm256_load_ps((const float *)(s + i + 32)),
           c = _mm256_load_ps((const float *)(s + i + 64)),
           e = _mm256_load_ps((const float *)(s + i + 96));
    _mm256_stream_ps((float *)(d + i), a), _mm256_stream_ps((float *)(d + i + 32), b);
    _mm256_stream_ps((float *)(d + i + 64), c), _mm256_stream_ps((float *)(d + i + 96), e);
  }
  _mm_sfence();
  memcpy(d + i, s + i, n - i);
}
#endif

static void job_copy_nt(team *tm, int tid) {
  size_t lo, hi;
  slice(tm, tid, &lo, &hi);
#if PS_X86
  if (tm->isa == ISA_AVX512) nt_copy_avx512(tm->dst + lo, tm->src + lo, hi - lo);
  else nt_copy_avx(tm->dst + lo, tm->src + lo, hi - lo);
#else
  memcpy(tm->dst + lo, tm->src + lo, hi - lo);
#endif
}

static void run_fma(team *tm, double min_time) {
  int isa = detect_isa();
  if (isa == ISA_NONE) {
    printf("{\"case\":\"fma_peak\",\"gflops\":null,\"isa\":\"none\",\"threads\":%d}\n", tm->n);
    return;
  }
  tm->isa = isa;
  /* Calibrate with one short round, then many rounds of ~2 ms each for min_time seconds and
   * keep the best: on a shared machine a short round has a fair chance of running with no
   * other process on the cores, and the peak is a capability, not an average. */
  tm->iters = 100000;
  team_round(tm, job_fma);
  double dt = team_round(tm, job_fma);
  double per_iter = dt / (double)tm->iters;
  int64_t iters = (int64_t)(2e-3 / (per_iter > 0 ? per_iter : 1e-9));
  if (iters < 10000) iters = 10000;
  tm->iters = iters;
  double best = 0, spent = 0;
  int rounds = 0;
  while (rounds < 20 || spent < min_time) {
    dt = team_round(tm, job_fma);
    spent += dt;
    rounds++;
    double g = flops_per_iter(isa) * (double)iters * tm->n / dt * 1e-9;
    if (g > best) best = g;
    if (rounds >= 100000) break;
  }
  printf("{\"case\":\"fma_peak\",\"gflops\":%.2f,\"isa\":\"%s\",\"threads\":%d,"
         "\"accumulators\":%d,\"iters\":%lld,\"rounds\":%d}\n",
         best, isa == ISA_AVX512 ? "avx512" : "avx2", tm->n, isa == ISA_AVX512 ? 16 : 12,
         (long long)iters, rounds);
}

static void run_copy(team *tm, int64_t floats, double min_time) {
  char name[64];
  if (floats % (1 << 20) == 0) snprintf(name, sizeof name, "copy_%lldM", (long long)(floats >> 20));
  else snprintf(name, sizeof name, "copy_%lld", (long long)floats);
  tm->bytes = (size_t)floats * sizeof(float);
  tm->src = aligned_alloc(4096, (tm->bytes + 4095) / 4096 * 4096);
  tm->dst = aligned_alloc(4096, (tm->bytes + 4095) / 4096 * 4096);
  if (!tm->src || !tm->dst) {
    printf("{\"case\":\"%s\",\"error\":\"out of memory (%zu bytes x 2)\"}\n", name, tm->bytes);
    free(tm->src), free(tm->dst);
    return;
  }
  team_round(tm, job_touch);
  /* two copy loops: glibc's memcpy (which may use rep movsb rather than streaming stores for
   * large sizes) and an explicit non-temporal-store loop; the roof is the faster one */
  int have_nt = 0;
#if PS_X86
  __builtin_cpu_init();
  tm->isa = __builtin_cpu_supports("avx512f") ? ISA_AVX512 : ISA_NONE;
  have_nt = tm->isa == ISA_AVX512 || __builtin_cpu_supports("avx");
#endif
  double best[2] = {0, 0}, median[2] = {0, 0};
  int reps_used[2] = {0, 0};
  for (int v = 0; v < 1 + have_nt; v++) {
    team_job job = v == 0 ? job_copy : job_copy_nt;
    double est = team_round(tm, job); /* warm-up */
    est = team_round(tm, job);
    int reps = (int)(min_time / 2 / (est > 0 ? est : 1e-6)) + 1;
    if (reps < 5) reps = 5;
    if (reps > 1000) reps = 1000;
    double *t = malloc(sizeof(double) * (size_t)reps);
    if (!t) break;
    for (int r = 0; r < reps; r++) t[r] = team_round(tm, job);
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    best[v] = t[0], median[v] = t[reps / 2], reps_used[v] = reps;
    free(t);
  }
  if (best[0] <= 0) {
    printf("{\"case\":\"%s\",\"error\":\"out of memory\"}\n", name);
  } else {
    int v = best[1] > 0 && best[1] < best[0] ? 1 : 0;
    double bytes = 2.0 * (double)tm->bytes;
    printf("{\"case\":\"%s\",\"ours_ms\":%.4f,\"ours_median_ms\":%.4f,\"reps\":%d,"
           "\"bytes\":%.0f,\"gbps\":%.2f,\"threads\":%d,\"method\":\"%s\","
           "\"memcpy_gbps\":%.2f,\"nt_gbps\":%.2f}\n",
           name, best[v] * 1e3, median[v] * 1e3, reps_used[v], bytes, bytes / best[v] * 1e-9, tm->n,
           v ? "non-temporal store loop" : "memcpy", bytes / best[0] * 1e-9,
           best[1] > 0 ? bytes / best[1] * 1e-9 : 0.0);
  }
  free(tm->src), free(tm->dst);
  tm->src = tm->dst = NULL;
}

int main(int argc, char **argv) {
  int threads = 0;
  double min_time = 0.3;
  int64_t floats = 64ll << 20;
  const char *only = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
    else if (!strcmp(argv[i], "--floats") && i + 1 < argc) floats = atoll(argv[++i]);
    else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--threads N] [--min-time S] [--floats N] [--only fma_peak|copy]\n",
              argv[0]);
      return 2;
    }
  }
  if (threads <= 0) {
    const char *e = getenv("TFW_NUM_THREADS");
    threads = e && atoi(e) > 0 ? atoi(e) : 1;
  }
  if (threads > 256) threads = 256;
  if (floats < 1024) floats = 1024;
  if (min_time <= 0) min_time = 0.3;

  team tm;
  memset(&tm, 0, sizeof tm);
  tm.n = threads;
  pthread_barrier_init(&tm.start, NULL, (unsigned)threads);
  pthread_barrier_init(&tm.done, NULL, (unsigned)threads);
  pthread_t *th = calloc((size_t)threads, sizeof(pthread_t));
  team_arg *args = calloc((size_t)threads, sizeof(team_arg));
  if (!th || !args) {
    fprintf(stderr, "peak_and_stream: out of memory\n");
    return 1;
  }
  int started = 1;
  for (int i = 1; i < threads; i++) {
    args[i].tm = &tm, args[i].tid = i;
    if (pthread_create(&th[i], NULL, team_main, &args[i]) != 0) {
      fprintf(stderr, "peak_and_stream: cannot start thread %d\n", i);
      return 1;
    }
    started++;
  }
  if (!only || !strcmp(only, "fma_peak")) run_fma(&tm, min_time);
  fflush(stdout);
  if (!only || !strcmp(only, "copy")) run_copy(&tm, floats, min_time);
  fflush(stdout);
  tm.quit = 1;
  pthread_barrier_wait(&tm.start);
  for (int i = 1; i < started; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&tm.start);
  pthread_barrier_destroy(&tm.done);
  free(th);
  free(args);
  return 0;
}
