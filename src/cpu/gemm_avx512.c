/* AVX-512 GEMM micro-kernels (see gemm.c for the blocking and the measurements).
 *
 * f32: MR = 16*MV rows (MV zmm vectors of A per k), NR columns of B broadcast from the
 * packed panel (embedded {1to16} broadcasts), MV*NR zmm accumulators. f64 likewise with
 * 8-wide vectors. Reference loop: tfw__sgemm_ukr_generic in gemm.c computes the same. */
#include <immintrin.h>
#include <math.h>

#include "cpu/gemm_kernels.h"

#define TFW__AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define TFW__INLINE static inline __attribute__((always_inline))

#ifndef TFW__S512_MV
#define TFW__S512_MV 2
#endif
#ifndef TFW__S512_NR
#define TFW__S512_NR 8
#endif
#ifndef TFW__D512_MV
#define TFW__D512_MV 2
#endif
#ifndef TFW__D512_NR
#define TFW__D512_NR 8
#endif
#ifndef TFW__PF_C
#define TFW__PF_C 32
#endif
#ifndef TFW__PF_A
#define TFW__PF_A 8
#endif

#define TFW__STR2(x) #x
#define TFW__STR(x) TFW__STR2(x)

/* ---- f32 ----------------------------------------------------------------------------- */
TFW__INLINE TFW__AVX512 void s512_body(const int MV, const int NR, int64_t kc,
                                       const float *restrict a, const float *restrict b,
                                       float *restrict c, int64_t ldc, float alpha, float beta) {
  __m512 acc[3][16]; /* [MV][NR] */
#pragma GCC unroll 16
  for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
    for (int v = 0; v < MV; v++) acc[v][j] = _mm512_setzero_ps();
  /* Prefetch the C tile TFW__PF_C iterations before the end, not at the start: the A
   * sliver streaming through L1 (kc * MR * 4 bytes) would evict it again. */
  for (int pass = 0; pass < 2; pass++) {
    const int64_t kend = pass == 0 ? (kc > TFW__PF_C ? kc - TFW__PF_C : 0) : kc;
    if (pass == 1)
#pragma GCC unroll 16
      for (int j = 0; j < NR; j++) {
        _mm_prefetch((const char *)(c + j * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + j * ldc + 16 * MV - 1), _MM_HINT_T0);
      }
#pragma GCC unroll 4
    for (int64_t k = pass == 0 ? 0 : (kc > TFW__PF_C ? kc - TFW__PF_C : 0); k < kend; k++) {
      __m512 av[3];
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++) av[v] = _mm512_load_ps(a + 16 * v);
      _mm_prefetch((const char *)(a + 16 * MV * TFW__PF_A), _MM_HINT_T0);
#pragma GCC unroll 16
      for (int j = 0; j < NR; j++) {
        __m512 bj = _mm512_set1_ps(b[j]);
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++) acc[v][j] = _mm512_fmadd_ps(av[v], bj, acc[v][j]);
      }
      a += 16 * MV;
      b += NR;
    }
  }

  const __m512 va = _mm512_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++)
        _mm512_storeu_ps(c + j * ldc + 16 * v, _mm512_mul_ps(va, acc[v][j]));
  } else {
    const __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++) {
        float *cp = c + j * ldc + 16 * v;
        __m512 t = _mm512_mul_ps(va, acc[v][j]);
        _mm512_storeu_ps(cp, _mm512_fmadd_ps(vb, _mm512_loadu_ps(cp), t));
      }
  }
}

static TFW__AVX512 void sgemm_ukr_avx512(int64_t kc, const float *a, const float *b, float *c,
                                         int64_t ldc, float alpha, float beta) {
  s512_body(TFW__S512_MV, TFW__S512_NR, kc, a, b, c, ldc, alpha, beta);
}

const tfw__sgemm_ukr tfw__sgemm_ukr_avx512 = {
    16 * TFW__S512_MV, TFW__S512_NR, sgemm_ukr_avx512,
    "avx512 " TFW__STR(TFW__S512_MV) "x16x" TFW__STR(TFW__S512_NR),
    tfw__spack_copy_avx2, tfw__spack_tr_avx2}; /* AVX-512 CPUs all have AVX2 */

/* ---- f64 ----------------------------------------------------------------------------- */
TFW__INLINE TFW__AVX512 void d512_body(const int MV, const int NR, int64_t kc,
                                       const double *restrict a, const double *restrict b,
                                       double *restrict c, int64_t ldc, double alpha,
                                       double beta) {
  __m512d acc[3][16];
#pragma GCC unroll 16
  for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
    for (int v = 0; v < MV; v++) acc[v][j] = _mm512_setzero_pd();
  /* Prefetch the C tile TFW__PF_C iterations before the end, not at the start: the A
   * sliver streaming through L1 (kc * MR * 4 bytes) would evict it again. */
  for (int pass = 0; pass < 2; pass++) {
    const int64_t kend = pass == 0 ? (kc > TFW__PF_C ? kc - TFW__PF_C : 0) : kc;
    if (pass == 1)
#pragma GCC unroll 16
      for (int j = 0; j < NR; j++) {
        _mm_prefetch((const char *)(c + j * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + j * ldc + 8 * MV - 1), _MM_HINT_T0);
      }
#pragma GCC unroll 4
    for (int64_t k = pass == 0 ? 0 : (kc > TFW__PF_C ? kc - TFW__PF_C : 0); k < kend; k++) {
      __m512d av[3];
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++) av[v] = _mm512_load_pd(a + 8 * v);
      _mm_prefetch((const char *)(a + 8 * MV * TFW__PF_A), _MM_HINT_T0);
#pragma GCC unroll 16
      for (int j = 0; j < NR; j++) {
        __m512d bj = _mm512_set1_pd(b[j]);
#pragma GCC unroll 3
        for (int v = 0; v < MV; v++) acc[v][j] = _mm512_fmadd_pd(av[v], bj, acc[v][j]);
      }
      a += 8 * MV;
      b += NR;
    }
  }

  const __m512d va = _mm512_set1_pd(alpha);
  if (beta == 0.0) {
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++)
        _mm512_storeu_pd(c + j * ldc + 8 * v, _mm512_mul_pd(va, acc[v][j]));
  } else {
    const __m512d vb = _mm512_set1_pd(beta);
#pragma GCC unroll 16
    for (int j = 0; j < NR; j++)
#pragma GCC unroll 3
      for (int v = 0; v < MV; v++) {
        double *cp = c + j * ldc + 8 * v;
        __m512d t = _mm512_mul_pd(va, acc[v][j]);
        _mm512_storeu_pd(cp, _mm512_fmadd_pd(vb, _mm512_loadu_pd(cp), t));
      }
  }
}

static TFW__AVX512 void dgemm_ukr_avx512(int64_t kc, const double *a, const double *b,
                                         double *c, int64_t ldc, double alpha, double beta) {
  d512_body(TFW__D512_MV, TFW__D512_NR, kc, a, b, c, ldc, alpha, beta);
}

const tfw__dgemm_ukr tfw__dgemm_ukr_avx512 = {
    8 * TFW__D512_MV, TFW__D512_NR, dgemm_ukr_avx512,
    "avx512 " TFW__STR(TFW__D512_MV) "x8x" TFW__STR(TFW__D512_NR), NULL, NULL};
