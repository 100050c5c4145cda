/* Packed, cache-blocked GEMM (BLIS-style): C = alpha*A@B + beta*C for f32 and f64.
 *
 * Loop nest (gemm_driver.h), letters as in gemm.h:
 *   jc over N in nc      B panel  kc x nc  packed once per thread's columns      (L3)
 *    pc over K in kc     (kc balanced: nkb = ceil(K/kc_max), kc = ceil(K/nkb))
 *     ic over M in mc    A block  mc x kc  packed per thread                    (L2)
 *      jr over nc in nr  B sliver kc x nr  stays in L1 across the ir loop       (L1)
 *       ir over mc in mr micro-kernel: mr x nr tile of C in registers, k = 0..kc-1
 * A row-major C (csc == 1) is computed as C^T = B^T A^T so that the kernel always stores
 * contiguous columns. Packing pads edge slivers with zeros; edge tiles (and C with no unit
 * stride) go through a register-sized temp tile and a scalar merge that rounds exactly as
 * the kernels do (t = alpha*ab; C = fma(beta, C, t)), so every path gives the same bits.
 *
 * Micro-kernels (run-time choice from tfw__cpu(); reference loops below as generic path):
 *   AVX-512  f32 32x8 (2 zmm of A x 8 broadcasts = 16 accumulators), f64 16x8
 *   AVX2+FMA f32 16x6, f64 8x6 (12 accumulators in 16 ymm)
 *   generic  f32 8x4, f64 4x4 (plain C, baseline SSE2)
 * Why 32x8: fed from L1/L2 the kernel alone runs at the FMA peak on Zen 4 for every shape
 * tried (32x6, 32x8, 32x12, 32x14, 48x8, 16x14: 116.5-117.2 GFLOP/s, peak 117). In the full
 * GEMM on a 16-core Xeon VM (Sapphire Rapids class, 2 FMA ports) 32x8 and 16x16 beat 32x12
 * by 3-5 points of peak at 1 thread (90%/87% vs 85% at n=1024-2048), and nr = 8 divides the
 * usual power-of-two sizes. 16x16 needs 17 loads per 16 FMAs, too close to Intel's 2
 * loads/cycle, so 32x8 it is.
 *
 * Blocks (tfw__cpu() cache sizes): kc = half of L1 / (nr * elt) (512 on Zen 4's 32 KiB
 * L1 for f32, 768 on a 48 KiB L1), mc = half of L2 / (kc * elt) (256 on Zen 4's 1 MiB),
 * nc = a quarter of L3 / (kc * elt), capped at 8192. On Zen 4 (1 zmm FMA per cycle) the
 * kernel needs only ~8 bytes/cycle of A from L2, so a long kc that cuts the C traffic
 * matters more than L1 residency of B: kc = 336 measured 99 GFLOP/s at n=1024 single
 * thread, kc = 512-768 102-105 (same noisy host, best of 4 rounds).
 *
 * Packing: the copy and the transposing pack of full slivers use AVX2 (8x8 transposes,
 * gemm_avx2.c) on the AVX2 and AVX-512 paths; row-major A@B needs the transposing one for
 * A after the C^T swap, and scalar it cost ~25% of a 256^3 product on 2 Zen 4 threads.
 *
 * Threads: one OpenMP region. With 2 threads each one owns half of the nr-column slivers
 * of C and runs the whole loop nest on them with its own packed A and B: nothing written
 * is shared and there is no barrier. Jointly packed B (the earlier scheme, still used for
 * more threads or when only rows balance) made every packed line move between the two
 * cores' L2s: B packing took 4-5x longer than from a thread's own cache. K is never split,
 * so each C element sees the same kc blocks in the same order for any thread count:
 * bit-identical results. Problems under 64^3 multiply-adds stay on the calling thread.
 *
 * Measured (bench/run.py --only sgemm_*, tfw_matmul, row-major square f32, ms, minimum of
 * R reps, 2 threads on a quiet 2-core AMD EPYC Zen 4 VM, load 1.0; FMA peak 233-235
 * GFLOP/s; torch.mm = PyTorch 1.13 on OpenBLAS 0.3.21 SkylakeX kernels, same run):
 *                       n=256    512   1024   2048
 *   before (d477366)    0.173  1.251  10.30   80.2   (83%, 91%, 89%, 91% of peak)
 *   now                 0.155  1.197   9.76   78.9   (93%, 97%, 95%, 94%)
 *   torch.mm            0.173  1.285  10.37   82.0   (ratio now 0.88-0.90, 0.93-0.94,
 *                                                     0.94-0.95, 0.95-0.96)
 * Single thread (bench_gemm, earlier): 101-107 GFLOP/s, 87-91% of the 117 GFLOP/s peak.
 * On a 16-core Sapphire Rapids VM (bench_gemm, 2 threads) the column split measured 5-25%
 * faster than the joint-B row split at n = 256-2048.
 */
#include "cpu/gemm.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef TFW_HAVE_OPENMP
#include <omp.h>
#endif

#include "core/core.h"
#include "core/cpu.h"
#include "cpu/gemm_kernels.h"

/* Below this many multiply-adds (64^3) the thread start-up costs more than it saves. */
#define TFW__GEMM_MT_FLOOR (64.0 * 64.0 * 64.0)

/* Scratch buffers up to this size stay cached per calling thread between calls. */
#define TFW__GEMM_WS_KEEP ((size_t)64 << 20)

#ifdef TFW_GEMM_TUNING
#include <stdio.h>
static void tfw__gemm_tune(int64_t mr, int64_t nr, int64_t *mc, int64_t *kc, int64_t *nc) {
  const char *e = getenv("TFW_GEMM_BLOCKS");
  long m, k, n;
  if (e && sscanf(e, "%ld,%ld,%ld", &m, &k, &n) == 3) {
    *mc = m / mr * mr;
    *kc = k;
    *nc = n / nr * nr;
  }
}
#define TFW__GEMM_TUNE(mr, nr, mc, kc, nc) tfw__gemm_tune(mr, nr, mc, kc, nc)
#else
#define TFW__GEMM_TUNE(mr, nr, mc, kc, nc) ((void)0)
#endif

/* ---- scratch for the packed panels ----------------------------------------------------- *
 * One 64-byte aligned buffer per calling thread, kept between calls and freed when the
 * thread exits (pthread key destructor). Allocating it fresh each call costs page faults
 * (glibc mmaps blocks over 128 KiB): measured ~1-2 ms per 1024^3 call in a VM, >10%. */
typedef struct tfw__gemm_ws {
  void *raw;
  size_t bytes;
} tfw__gemm_ws;

static pthread_key_t g_ws_key;
static pthread_once_t g_ws_once = PTHREAD_ONCE_INIT;
static bool g_ws_ok;

static void ws_destroy(void *p) {
  tfw__gemm_ws *ws = p;
  if (ws) free(ws->raw);
  free(ws);
}

static void ws_init(void) { g_ws_ok = pthread_key_create(&g_ws_key, ws_destroy) == 0; }

/* Returns a 64-byte aligned block of at least bytes, owned by the calling thread (valid
 * until its next call), or NULL. *tmp is set when the block must be freed by the caller. */
static void *ws_get(size_t bytes, void **tmp) {
  *tmp = NULL;
  pthread_once(&g_ws_once, ws_init);
  tfw__gemm_ws *ws = g_ws_ok ? pthread_getspecific(g_ws_key) : NULL;
  if (g_ws_ok && !ws) {
    ws = calloc(1, sizeof *ws);
    if (ws && pthread_setspecific(g_ws_key, ws) != 0) {
      free(ws);
      ws = NULL;
    }
  }
  if (!ws || bytes > TFW__GEMM_WS_KEEP) { /* no cache, or too big to keep around */
    *tmp = malloc(bytes + 64);
    return *tmp ? (void *)(((uintptr_t)*tmp + 63) & ~(uintptr_t)63) : NULL;
  }
  if (ws->bytes < bytes) {
    free(ws->raw);
    ws->raw = malloc(bytes + 64);
    ws->bytes = ws->raw ? bytes : 0;
    if (!ws->raw) return NULL;
  }
  return (void *)(((uintptr_t)ws->raw + 63) & ~(uintptr_t)63);
}

/* ---- generic C micro-kernels (the reference loops of the SIMD kernels) ------------------ */
enum { SG_MR = 8, SG_NR = 4, DG_MR = 4, DG_NR = 4 };

static void sgemm_ukr_generic(int64_t kc, const float *restrict a, const float *restrict b,
                              float *restrict c, int64_t ldc, float alpha, float beta) {
  float ab[SG_NR][SG_MR] = {{0}};
  for (int64_t k = 0; k < kc; k++, a += SG_MR, b += SG_NR)
    for (int j = 0; j < SG_NR; j++)
      for (int i = 0; i < SG_MR; i++) ab[j][i] += a[i] * b[j];
  for (int j = 0; j < SG_NR; j++)
    for (int i = 0; i < SG_MR; i++) {
      float t = alpha * ab[j][i];
      c[i + j * ldc] = beta == 0.0f ? t : fmaf(beta, c[i + j * ldc], t);
    }
}

static void dgemm_ukr_generic(int64_t kc, const double *restrict a, const double *restrict b,
                              double *restrict c, int64_t ldc, double alpha, double beta) {
  double ab[DG_NR][DG_MR] = {{0}};
  for (int64_t k = 0; k < kc; k++, a += DG_MR, b += DG_NR)
    for (int j = 0; j < DG_NR; j++)
      for (int i = 0; i < DG_MR; i++) ab[j][i] += a[i] * b[j];
  for (int j = 0; j < DG_NR; j++)
    for (int i = 0; i < DG_MR; i++) {
      double t = alpha * ab[j][i];
      c[i + j * ldc] = beta == 0.0 ? t : fma(beta, c[i + j * ldc], t);
    }
}

const tfw__sgemm_ukr tfw__sgemm_ukr_generic = {SG_MR, SG_NR, sgemm_ukr_generic, "generic 8x4", NULL, NULL};
const tfw__dgemm_ukr tfw__dgemm_ukr_generic = {DG_MR, DG_NR, dgemm_ukr_generic, "generic 4x4", NULL, NULL};

static bool has_avx512(const tfw__cpu_info *ci) {
  return ci->avx512f && ci->avx512vl && ci->avx512bw && ci->avx512dq && ci->fma;
}

static const tfw__sgemm_ukr *pick_s(void) {
  const tfw__cpu_info *ci = tfw__cpu();
  if (has_avx512(ci)) return &tfw__sgemm_ukr_avx512;
  if (ci->avx2 && ci->fma) return &tfw__sgemm_ukr_avx2;
  return &tfw__sgemm_ukr_generic;
}

static const tfw__dgemm_ukr *pick_d(void) {
  const tfw__cpu_info *ci = tfw__cpu();
  if (has_avx512(ci)) return &tfw__dgemm_ukr_avx512;
  if (ci->avx2 && ci->fma) return &tfw__dgemm_ukr_avx2;
  return &tfw__dgemm_ukr_generic;
}

const char *tfw__sgemm_kernel_name(void) { return pick_s()->name; }
const char *tfw__dgemm_kernel_name(void) { return pick_d()->name; }

/* ---- the driver, instantiated for f32 and f64 ---------------------------------------- */
#define TFW__T float
#define TFW__UKR tfw__sgemm_ukr
#define TFW__FMA fmaf
#define TFW__NAME(x) s_##x
#include "cpu/gemm_driver.h"
#undef TFW__T
#undef TFW__UKR
#undef TFW__FMA
#undef TFW__NAME

#define TFW__T double
#define TFW__UKR tfw__dgemm_ukr
#define TFW__FMA fma
#define TFW__NAME(x) d_##x
#include "cpu/gemm_driver.h"
#undef TFW__T
#undef TFW__UKR
#undef TFW__FMA
#undef TFW__NAME

void tfw__sgemm(int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t rsa,
                int64_t csa, const float *B, int64_t rsb, int64_t csb, float beta, float *C,
                int64_t rsc, int64_t csc) {
  if (M <= 0 || N <= 0 || K < 0 || !C || (K > 0 && alpha != 0 && (!A || !B))) return;
  s_gemm(pick_s(), M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

void tfw__dgemm(int64_t M, int64_t N, int64_t K, double alpha, const double *A, int64_t rsa,
                int64_t csa, const double *B, int64_t rsb, int64_t csb, double beta, double *C,
                int64_t rsc, int64_t csc) {
  if (M <= 0 || N <= 0 || K < 0 || !C || (K > 0 && alpha != 0 && (!A || !B))) return;
  d_gemm(pick_d(), M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
