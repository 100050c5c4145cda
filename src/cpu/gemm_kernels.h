/* GEMM micro-kernels, internal to src/cpu/gemm*.c.
 *
 * A micro-kernel multiplies a packed MR x kc sliver of A by a packed kc x NR sliver of B:
 *   a: for k in [0,kc): MR contiguous values A(i0..i0+MR, k)       (64-byte aligned)
 *   b: for k in [0,kc): NR contiguous values B(k, j0..j0+NR)
 *   c: the MR x NR tile, column-major: C(i,j) at c[i + j*ldc]
 * and stores c = alpha*ab + beta*c, rounded as t = alpha*ab; t + beta*c (beta == 0: t,
 * c is not read). The driver relies on this exact rounding to merge edge tiles in C. */
#ifndef TFW_CPU_GEMM_KERNELS_H
#define TFW_CPU_GEMM_KERNELS_H

#include <stdint.h>

#define TFW__GEMM_MAX_TILE 512 /* MR*NR upper bound over all kernels (temp edge tile) */

typedef void (*tfw__sgemm_ukr_fn)(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, float alpha, float beta);
typedef void (*tfw__dgemm_ukr_fn)(int64_t kc, const double *a, const double *b, double *c,
                                  int64_t ldc, double alpha, double beta);

typedef struct tfw__sgemm_ukr {
  int mr, nr;
  tfw__sgemm_ukr_fn fn;
  const char *name;
} tfw__sgemm_ukr;

typedef struct tfw__dgemm_ukr {
  int mr, nr;
  tfw__dgemm_ukr_fn fn;
  const char *name;
} tfw__dgemm_ukr;

extern const tfw__sgemm_ukr tfw__sgemm_ukr_avx512, tfw__sgemm_ukr_avx2, tfw__sgemm_ukr_generic;
extern const tfw__dgemm_ukr tfw__dgemm_ukr_avx512, tfw__dgemm_ukr_avx2, tfw__dgemm_ukr_generic;

#endif /* TFW_CPU_GEMM_KERNELS_H */
