/* GEMM benchmark: tfw__sgemm on square row-major problems and the machine's FP32 FMA peak.
 *
 *   bench_gemm [--threads N] [--reps R] [--sizes 256,512,1024,2048] [--dgemm] [--no-peak]
 *
 * Prints one JSON line per case:
 *   {"case":"sgemm_n1024","ours_ms":..,"gflops":..,"threads":2,"kernel":"..."}
 *   {"case":"fma_peak","gflops":..,"threads":2,"isa":"avx512"}
 * Times are the best of R repetitions after one warm-up call; a GEMM does 2*n^3 flops.
 * The FMA peak runs 16 independent register accumulators of vfmadd231ps per thread (no
 * memory traffic), enough to cover latency x throughput on Zen 4 (4 x 1 zmm/cycle) and on
 * Intel server cores (4 x 2 zmm/cycle). Compare with PyTorch's torch.mm in the same run
 * (scripts or by hand); see gemm.c for recorded numbers. */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu.h"
#include "cpu/gemm.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int max_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/* ---- FMA peak: iters x 16 accumulators x (2 flops x lanes) per thread ---------------- */
#define PEAK_ACC 16

__attribute__((target("avx512f,fma"))) static float peak_avx512(int64_t iters) {
  __m512 acc[PEAK_ACC];
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int r = 0; r < PEAK_ACC; r++) acc[r] = _mm512_set1_ps((float)r);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 16
    for (int r = 0; r < PEAK_ACC; r++) acc[r] = _mm512_fmadd_ps(acc[r], x, y);
  }
  __m512 s = acc[0];
  for (int r = 1; r < PEAK_ACC; r++) s = _mm512_add_ps(s, acc[r]);
  return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float peak_avx2(int64_t iters) {
  __m256 acc[PEAK_ACC / 2 + 4]; /* 12 of 16 ymm registers */
  const __m256 x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
  for (int r = 0; r < 12; r++) acc[r] = _mm256_set1_ps((float)r);
  for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int r = 0; r < 12; r++) acc[r] = _mm256_fmadd_ps(acc[r], x, y);
  }
  float out[8], sum = 0;
  __m256 s = acc[0];
  for (int r = 1; r < 12; r++) s = _mm256_add_ps(s, acc[r]);
  _mm256_storeu_ps(out, s);
  for (int i = 0; i < 8; i++) sum += out[i];
  return sum;
}

static void fma_peak(int threads) {
  const tfw__cpu_info *ci = tfw__cpu();
  const int avx512 = ci->avx512f && ci->fma, avx2 = ci->avx2 && ci->fma;
  if (!avx512 && !avx2) {
    printf("{\"case\":\"fma_peak\",\"gflops\":null,\"isa\":\"none\"}\n");
    return;
  }
  const int64_t iters = 50 * 1000 * 1000;
  const double flops_per_iter = avx512 ? PEAK_ACC * 16 * 2 : 12 * 8 * 2;
  double best = 0;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; rep++) {
    double t0 = now_s();
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
#endif
    {
      float s = avx512 ? peak_avx512(iters) : peak_avx2(iters);
#ifdef _OPENMP
#pragma omp atomic
#endif
      sink += s;
    }
    double dt = now_s() - t0;
    double g = flops_per_iter * (double)iters * threads / dt * 1e-9;
    if (g > best) best = g;
  }
  (void)sink;
  printf("{\"case\":\"fma_peak\",\"gflops\":%.1f,\"threads\":%d,\"isa\":\"%s\"}\n", best, threads,
         avx512 ? "avx512" : "avx2");
}

/* ---- GEMM -------------------------------------------------------------------------------- */
static void fill(float *x, int64_t n, uint64_t seed) {
  for (int64_t i = 0; i < n; i++) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    x[i] = (float)((double)(seed >> 40) / (double)(1ull << 24) - 0.5);
  }
}

static void bench_sgemm(int64_t n, int reps, int threads) {
  float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n),
        *C = malloc(sizeof(float) * n * n);
  if (!A || !B || !C) {
    printf("{\"case\":\"sgemm_n%ld\",\"error\":\"out of memory\"}\n", (long)n);
    free(A), free(B), free(C);
    return;
  }
  fill(A, n * n, 1);
  fill(B, n * n, 2);
  /* row-major: A(i,k) = A[i*n + k] */
  tfw__sgemm(n, n, n, 1.0f, A, n, 1, B, n, 1, 0.0f, C, n, 1);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    tfw__sgemm(n, n, n, 1.0f, A, n, 1, B, n, 1, 0.0f, C, n, 1);
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  printf("{\"case\":\"sgemm_n%ld\",\"ours_ms\":%.3f,\"gflops\":%.1f,\"threads\":%d,"
         "\"kernel\":\"%s\"}\n",
         (long)n, best * 1e3, 2.0 * n * n * n / best * 1e-9, threads, tfw__sgemm_kernel_name());
  free(A), free(B), free(C);
}

static void bench_dgemm(int64_t n, int reps, int threads) {
  double *A = malloc(sizeof(double) * n * n), *B = malloc(sizeof(double) * n * n),
         *C = malloc(sizeof(double) * n * n);
  if (!A || !B || !C) {
    free(A), free(B), free(C);
    return;
  }
  for (int64_t i = 0; i < n * n; i++) A[i] = (double)(i % 97) / 97 - 0.5, B[i] = (double)(i % 89) / 89 - 0.5;
  tfw__dgemm(n, n, n, 1.0, A, n, 1, B, n, 1, 0.0, C, n, 1);
  double best = 1e30;
  for (int r = 0; r < reps; r++) {
    double t0 = now_s();
    tfw__dgemm(n, n, n, 1.0, A, n, 1, B, n, 1, 0.0, C, n, 1);
    double dt = now_s() - t0;
    if (dt < best) best = dt;
  }
  printf("{\"case\":\"dgemm_n%ld\",\"ours_ms\":%.3f,\"gflops\":%.1f,\"threads\":%d,"
         "\"kernel\":\"%s\"}\n",
         (long)n, best * 1e3, 2.0 * n * n * n / best * 1e-9, threads, tfw__dgemm_kernel_name());
  free(A), free(B), free(C);
}

int main(int argc, char **argv) {
  int threads = 0, reps = 0, dgemm = 0, peak = 1;
  const char *sizes = "256,512,1024,2048";
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--sizes") && i + 1 < argc) sizes = argv[++i];
    else if (!strcmp(argv[i], "--dgemm")) dgemm = 1;
    else if (!strcmp(argv[i], "--no-peak")) peak = 0;
    else {
      fprintf(stderr, "usage: %s [--threads N] [--reps R] [--sizes a,b,..] [--dgemm] [--no-peak]\n", argv[0]);
      return 2;
    }
  }
#ifdef _OPENMP
  if (threads > 0) omp_set_num_threads(threads);
#endif
  threads = max_threads();
  for (const char *s = sizes; *s;) {
    char *end;
    long n = strtol(s, &end, 10);
    if (end == s) break;
    if (n > 0) {
      /* enough repetitions for ~1 s of work at 100 GFLOP/s, 5 to 200 (or exactly --reps) */
      int r = (int)(100e9 / (2.0 * n * n * n));
      r = r < 5 ? 5 : r > 200 ? 200 : r;
      if (reps > 0) r = reps;
      bench_sgemm(n, r, threads);
      if (dgemm) bench_dgemm(n, r < 50 ? r : 50, threads);
    }
    s = *end == ',' ? end + 1 : end;
  }
  if (peak) fma_peak(threads);
  return 0;
}
