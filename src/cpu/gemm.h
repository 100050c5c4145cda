/* Dense matrix multiply on the CPU: packed, cache-blocked (BLIS-style) with micro-kernels
 * chosen at run time from tfw__cpu() (AVX-512, AVX2+FMA, generic C). See gemm.c.
 *
 * Letters: C (M x N) = alpha * A (M x K) @ B (K x N) + beta * C, with element strides
 *   A(i,k) = A[i*rsa + k*csa],  B(k,j) = B[k*rsb + j*csb],  C(i,j) = C[i*rsc + j*csc]
 * so row-major, column-major, transposed and strided views are all one call. Strides may
 * be any value (including negative) as long as the addressed elements exist; C must not
 * overlap A or B, and distinct (i,j) must address distinct C elements.
 *
 * beta == 0 never reads C (NaN/Inf there are overwritten); alpha == 0 or K == 0 only
 * scales C by beta. M, N or K <= 0: nothing to multiply (negative sizes: no-op).
 *
 * Threads: OpenMP, tfw__num_threads() of them, split over rows/columns of C only, so
 * every C element sees the same K-reduction order and results are bit-identical for any
 * thread count. Problems under ~64^3 multiply-adds run on the calling thread.
 * Never aborts; if scratch memory cannot be allocated it falls back to a plain loop. */
#ifndef TFW_CPU_GEMM_H
#define TFW_CPU_GEMM_H

#include <stdint.h>

void tfw__sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t rsa,
                int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                int64_t rsc, int64_t csc);

void tfw__dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t rsa,
                int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
                int64_t rsc, int64_t csc);

/* Name of the micro-kernel the next call would use, e.g. "avx512 32x12" (for benches). */
const char *tfw__sgemm_kernel_name(void);
const char *tfw__dgemm_kernel_name(void);

#endif /* TFW_CPU_GEMM_H */
