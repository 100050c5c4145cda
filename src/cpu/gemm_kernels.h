/* GEMM micro-kernels, internal to src/cpu/gemm*.c.
 *
 * A micro-kernel multiplies a packed MR x kc sliver of A by a packed kc x NR sliver of B:
 *   a: for k in [0,kc): MR contiguous values A(i0..i0+MR, k)       (64-byte aligned)
 *   b: for k in [0,kc): NR contiguous values B(k, j0..j0+NR)
 *   c: the MR x NR tile, column-major: C(i,j) at c[i + j*ldc]
 * and stores c = alpha*ab + beta*c, rounded as t = alpha*ab; t + beta*c (beta == 0: t,
 * c is not read). The driver relies on this exact rounding to merge edge tiles in C.
 *
 * Packing helpers (optional, NULL: the driver's scalar loops) fill one full sliver of w
 * rows (w = MR for A, NR for B; w % 8 == 0 takes the vector path) for k in [0, kc):
 *   copy:      dst[k*w + r] = src[k*ld + r]   (the w values of each k are contiguous)
 *   transpose: dst[k*w + r] = src[r*ld + k]   (each of the w rows is contiguous in k)
 * The transposing one is what row-major A@B needs for one operand after the C^T swap;
 * done with scalar moves it cost ~25% of a 256^3 product on 2 Zen 4 threads. */
#ifndef TFW_CPU_GEMM_KERNELS_H
#define TFW_CPU_GEMM_KERNELS_H

#include <stdint.h>

#define TFW__GEMM_MAX_TILE 512 /* MR*NR upper bound over all kernels (temp edge tile) */

typedef void (*tfw__sgemm_ukr_fn)(int64_t kc, const float *a, const float *b, float *c,
                                  int64_t ldc, float alpha, float beta);
typedef void (*tfw__dgemm_ukr_fn)(int64_t kc, const double *a, const double *b, double *c,
                                  int64_t ldc, double alpha, double beta);

typedef void (*tfw__spack_fn)(int64_t kc, int64_t w, const float *src, int64_t ld, float *dst);

typedef struct tfw__sgemm_ukr {
  int mr, nr;
  tfw__sgemm_ukr_fn fn;
  const char *name;
  tfw__spack_fn pack_copy, pack_tr; /* optional, see above */
} tfw__sgemm_ukr;

typedef void (*tfw__dpack_fn)(int64_t kc, int64_t w, const double *src, int64_t ld,
                              double *dst);

typedef struct tfw__dgemm_ukr {
  int mr, nr;
  tfw__dgemm_ukr_fn fn;
  const char *name;
  tfw__dpack_fn pack_copy, pack_tr; /* optional; none yet for f64 */
} tfw__dgemm_ukr;

extern const tfw__sgemm_ukr tfw__sgemm_ukr_avx512, tfw__sgemm_ukr_avx2, tfw__sgemm_ukr_generic;
extern const tfw__dgemm_ukr tfw__dgemm_ukr_avx512, tfw__dgemm_ukr_avx2, tfw__dgemm_ukr_generic;

/* AVX2 packing helpers (gemm_avx2.c), shared by the AVX2 and AVX-512 descriptors. */
void tfw__spack_copy_avx2(int64_t kc, int64_t w, const float *src, int64_t ld, float *dst);
void tfw__spack_tr_avx2(int64_t kc, int64_t w, const float *src, int64_t ld, float *dst);

#endif /* TFW_CPU_GEMM_KERNELS_H */
