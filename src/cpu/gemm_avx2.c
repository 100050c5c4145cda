/* AVX2+FMA GEMM micro-kernels (see gemm.c). 16 ymm registers: MV=2 vectors of A per k and
 * NR=6 broadcast columns give 12 accumulators + 2 A + 1 broadcast = 15 registers.
 * f32: 16x6, f64: 8x6. Reference loop: the generic kernels in gemm.c. */
#include <immintrin.h>

#include "cpu/gemm_kernels.h"

#define TFW__AVX2 __attribute__((target("avx2,fma")))

enum { S2_MV = 2, S2_NR = 6, D2_MV = 2, D2_NR = 6 };

static TFW__AVX2 void sgemm_ukr_avx2(int64_t kc, const float *restrict a,
                                     const float *restrict b, float *restrict c, int64_t ldc,
                                     float alpha, float beta) {
  __m256 acc[S2_MV][S2_NR];
#pragma GCC unroll 8
  for (int j = 0; j < S2_NR; j++)
#pragma GCC unroll 2
    for (int v = 0; v < S2_MV; v++) acc[v][j] = _mm256_setzero_ps();
#pragma GCC unroll 8
  for (int j = 0; j < S2_NR; j++) _mm_prefetch((const char *)(c + j * ldc), _MM_HINT_T0);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    __m256 av[S2_MV];
#pragma GCC unroll 2
    for (int v = 0; v < S2_MV; v++) av[v] = _mm256_load_ps(a + 8 * v);
    _mm_prefetch((const char *)(a + 8 * S2_MV * 8), _MM_HINT_T0);
#pragma GCC unroll 8
    for (int j = 0; j < S2_NR; j++) {
      __m256 bj = _mm256_broadcast_ss(b + j);
#pragma GCC unroll 2
      for (int v = 0; v < S2_MV; v++) acc[v][j] = _mm256_fmadd_ps(av[v], bj, acc[v][j]);
    }
    a += 8 * S2_MV;
    b += S2_NR;
  }

  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int j = 0; j < S2_NR; j++)
#pragma GCC unroll 2
      for (int v = 0; v < S2_MV; v++)
        _mm256_storeu_ps(c + j * ldc + 8 * v, _mm256_mul_ps(va, acc[v][j]));
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int j = 0; j < S2_NR; j++)
#pragma GCC unroll 2
      for (int v = 0; v < S2_MV; v++) {
        float *cp = c + j * ldc + 8 * v;
        __m256 t = _mm256_mul_ps(va, acc[v][j]);
        _mm256_storeu_ps(cp, _mm256_fmadd_ps(vb, _mm256_loadu_ps(cp), t));
      }
  }
}

const tfw__sgemm_ukr tfw__sgemm_ukr_avx2 = {8 * S2_MV, S2_NR, sgemm_ukr_avx2, "avx2 16x6",
                                            tfw__spack_copy_avx2, tfw__spack_tr_avx2};

static TFW__AVX2 void dgemm_ukr_avx2(int64_t kc, const double *restrict a,
                                     const double *restrict b, double *restrict c, int64_t ldc,
                                     double alpha, double beta) {
  __m256d acc[D2_MV][D2_NR];
#pragma GCC unroll 8
  for (int j = 0; j < D2_NR; j++)
#pragma GCC unroll 2
    for (int v = 0; v < D2_MV; v++) acc[v][j] = _mm256_setzero_pd();
#pragma GCC unroll 8
  for (int j = 0; j < D2_NR; j++) _mm_prefetch((const char *)(c + j * ldc), _MM_HINT_T0);

#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; k++) {
    __m256d av[D2_MV];
#pragma GCC unroll 2
    for (int v = 0; v < D2_MV; v++) av[v] = _mm256_load_pd(a + 4 * v);
    _mm_prefetch((const char *)(a + 4 * D2_MV * 8), _MM_HINT_T0);
#pragma GCC unroll 8
    for (int j = 0; j < D2_NR; j++) {
      __m256d bj = _mm256_broadcast_sd(b + j);
#pragma GCC unroll 2
      for (int v = 0; v < D2_MV; v++) acc[v][j] = _mm256_fmadd_pd(av[v], bj, acc[v][j]);
    }
    a += 4 * D2_MV;
    b += D2_NR;
  }

  const __m256d va = _mm256_set1_pd(alpha);
  if (beta == 0.0) {
#pragma GCC unroll 8
    for (int j = 0; j < D2_NR; j++)
#pragma GCC unroll 2
      for (int v = 0; v < D2_MV; v++)
        _mm256_storeu_pd(c + j * ldc + 4 * v, _mm256_mul_pd(va, acc[v][j]));
  } else {
    const __m256d vb = _mm256_set1_pd(beta);
#pragma GCC unroll 8
    for (int j = 0; j < D2_NR; j++)
#pragma GCC unroll 2
      for (int v = 0; v < D2_MV; v++) {
        double *cp = c + j * ldc + 4 * v;
        __m256d t = _mm256_mul_pd(va, acc[v][j]);
        _mm256_storeu_pd(cp, _mm256_fmadd_pd(vb, _mm256_loadu_pd(cp), t));
      }
  }
}

const tfw__dgemm_ukr tfw__dgemm_ukr_avx2 = {4 * D2_MV, D2_NR, dgemm_ukr_avx2, "avx2 8x6", NULL, NULL};

/* ---- packing (see gemm_kernels.h); also used by the AVX-512 descriptors --------------- */
void TFW__AVX2 tfw__spack_copy_avx2(int64_t kc, int64_t w, const float *restrict src,
                                    int64_t ld, float *restrict dst) {
  const int64_t w8 = w / 8 * 8;
  for (int64_t k = 0; k < kc; k++, src += ld, dst += w) {
    for (int64_t r = 0; r < w8; r += 8) _mm256_storeu_ps(dst + r, _mm256_loadu_ps(src + r));
    for (int64_t r = w8; r < w; r++) dst[r] = src[r];
  }
}

/* Rows r0..r0+7 (row stride ld, contiguous in k) x k0..k0+7 into 8 runs of 8 (stride w). */
static inline __attribute__((always_inline)) TFW__AVX2 void tr8x8(const float *s, int64_t ld,
                                                                  float *d, int64_t w) {
  __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
  __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
  __m256 r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
  __m256 r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
  __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
  __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
  __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
  _mm256_storeu_ps(d + 0 * w, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(d + 1 * w, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(d + 2 * w, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(d + 3 * w, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(d + 4 * w, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(d + 5 * w, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(d + 6 * w, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(d + 7 * w, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* k outer, 8-row blocks inner: dst is written front to back, 8*w values per k step. */
void TFW__AVX2 tfw__spack_tr_avx2(int64_t kc, int64_t w, const float *restrict src, int64_t ld,
                                  float *restrict dst) {
  const int64_t w8 = w / 8 * 8, kc8 = kc / 8 * 8;
  for (int64_t k = 0; k < kc8; k += 8)
    for (int64_t r = 0; r < w8; r += 8) tr8x8(src + r * ld + k, ld, dst + k * w + r, w);
  for (int64_t k = kc8; k < kc; k++)
    for (int64_t r = 0; r < w8; r++) dst[k * w + r] = src[r * ld + k];
  for (int64_t r = w8; r < w; r++)
    for (int64_t k = 0; k < kc; k++) dst[k * w + r] = src[r * ld + k];
}
