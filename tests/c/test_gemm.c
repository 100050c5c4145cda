/* tfw__sgemm / tfw__dgemm against a naive triple loop accumulated in double (f32) or
 * long double (f64), over edge shapes, transposed/strided/negative-stride layouts,
 * alpha/beta combinations, every micro-kernel path the CPU supports, and 1 vs N threads.
 *
 * Tolerance per element (a rigorous bound for K-term dot products):
 *   |ours - ref| <= 2 (K + 2) eps (|alpha| sum_k |A(i,k)||B(k,j)| + |beta||C0(i,j)|) + tiny */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/cpu.h"
#include "cpu/gemm.h"

/* ---- helpers ---------------------------------------------------------------------------- */
static uint64_t g_seed = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* uniform in [-1, 1) */
  g_seed = g_seed * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(g_seed >> 11) / (double)(1ull << 52) - 1.0;
}

/* A matrix view: rows x cols with strides (rs, cs) inside a buffer; layout chooses them. */
enum layout { ROW, COL, ROW_PAD, COL_PAD, NEG_ROW, LAYOUTS };
static const char *layout_name[LAYOUTS] = {"row", "col", "row+pad", "col+pad", "negrow"};

typedef struct view {
  int64_t rows, cols, rs, cs, off, size; /* element (r,c) at buf[off + r*rs + c*cs] */
} view;

static view make_view(int64_t rows, int64_t cols, enum layout l) {
  view v = {rows, cols, 0, 0, 0, 0};
  switch (l) {
  case ROW: v.rs = cols, v.cs = 1; break;
  case COL: v.rs = 1, v.cs = rows; break;
  case ROW_PAD: v.rs = cols + 3, v.cs = 1; break;
  case COL_PAD: v.rs = 1, v.cs = rows + 5; break;
  case NEG_ROW: v.rs = -(cols + 1), v.cs = 1, v.off = (rows - 1) * (cols + 1); break;
  default: break;
  }
  int64_t rspan = rows > 0 ? (rows - 1) * (v.rs < 0 ? -v.rs : v.rs) : 0;
  int64_t cspan = cols > 0 ? (cols - 1) * v.cs : 0;
  v.size = rspan + cspan + 1;
  return v;
}

typedef struct gcase {
  int64_t M, N, K;
  double alpha, beta;
  enum layout la, lb, lc;
  bool nan_c; /* fill C with NaN (only meaningful with beta == 0) */
} gcase;

static char g_desc[256];
static const char *describe(const gcase *g, const char *what) {
  snprintf(g_desc, sizeof g_desc, "%s M=%ld N=%ld K=%ld alpha=%g beta=%g A=%s B=%s C=%s kern=%s",
           what, (long)g->M, (long)g->N, (long)g->K, g->alpha, g->beta, layout_name[g->la],
           layout_name[g->lb], layout_name[g->lc],
           what[0] == 's' ? tfw__sgemm_kernel_name() : tfw__dgemm_kernel_name());
  return g_desc;
}

/* Runs one f32 case and checks every element. */
static void check_s(const gcase *g) {
  view va = make_view(g->M, g->K, g->la), vb = make_view(g->K, g->N, g->lb),
       vc = make_view(g->M, g->N, g->lc);
  float *A = malloc(sizeof(float) * va.size), *B = malloc(sizeof(float) * vb.size);
  float *C = malloc(sizeof(float) * vc.size), *C0 = malloc(sizeof(float) * vc.size);
  cr_assert(A && B && C && C0);
  for (int64_t i = 0; i < va.size; i++) A[i] = (float)urand();
  for (int64_t i = 0; i < vb.size; i++) B[i] = (float)urand();
  for (int64_t i = 0; i < vc.size; i++) C0[i] = g->nan_c ? NAN : (float)urand();
  memcpy(C, C0, sizeof(float) * vc.size);
  const float *a = A + va.off, *b = B + vb.off;
  tfw__sgemm(g->M, g->N, g->K, (float)g->alpha, a, va.rs, va.cs, b, vb.rs, vb.cs,
             (float)g->beta, C + vc.off, vc.rs, vc.cs);
  const double eps = 0x1p-24;
  for (int64_t i = 0; i < g->M; i++)
    for (int64_t j = 0; j < g->N; j++) {
      double ab = 0, mag = 0;
      for (int64_t k = 0; k < g->K; k++) {
        double p = (double)a[i * va.rs + k * va.cs] * (double)b[k * vb.rs + j * vb.cs];
        ab += p;
        mag += fabs(p);
      }
      int64_t ci = vc.off + i * vc.rs + j * vc.cs;
      double c0 = g->beta == 0 ? 0 : (double)C0[ci];
      double ref = (float)g->alpha * ab + (float)g->beta * c0;
      double tol = 2.0 * (double)(g->K + 2) * eps *
                       (fabs(g->alpha) * mag + fabs(g->beta) * fabs(c0)) + 1e-30;
      double got = (double)C[ci];
      if (!(fabs(got - ref) <= tol))
        cr_assert_fail("%s: C(%ld,%ld) = %.9g, reference %.9g (|diff| %.3g > tol %.3g)",
                       describe(g, "sgemm"), (long)i, (long)j, got, ref, fabs(got - ref), tol);
    }
  /* Elements of the C buffer outside the view (padding) must be untouched. */
  for (int64_t t = 0; t < vc.size; t++) {
    bool inside = false;
    int64_t rel = t - vc.off;
    for (int64_t j = 0; j < g->N && !inside; j++) {
      int64_t r = rel - j * vc.cs;
      if (vc.rs != 0 && r % vc.rs == 0 && r / vc.rs >= 0 && r / vc.rs < g->M) inside = true;
    }
    if (!inside && !(isnan(C0[t]) && isnan(C[t])) && C[t] != C0[t])
      cr_assert_fail("%s: padding element %ld written", describe(g, "sgemm"), (long)t);
  }
  free(A), free(B), free(C), free(C0);
}

/* Runs one f64 case. */
static void check_d(const gcase *g) {
  view va = make_view(g->M, g->K, g->la), vb = make_view(g->K, g->N, g->lb),
       vc = make_view(g->M, g->N, g->lc);
  double *A = malloc(sizeof(double) * va.size), *B = malloc(sizeof(double) * vb.size);
  double *C = malloc(sizeof(double) * vc.size), *C0 = malloc(sizeof(double) * vc.size);
  cr_assert(A && B && C && C0);
  for (int64_t i = 0; i < va.size; i++) A[i] = urand();
  for (int64_t i = 0; i < vb.size; i++) B[i] = urand();
  for (int64_t i = 0; i < vc.size; i++) C0[i] = g->nan_c ? NAN : urand();
  memcpy(C, C0, sizeof(double) * vc.size);
  const double *a = A + va.off, *b = B + vb.off;
  tfw__dgemm(g->M, g->N, g->K, g->alpha, a, va.rs, va.cs, b, vb.rs, vb.cs, g->beta,
             C + vc.off, vc.rs, vc.cs);
  const double eps = 0x1p-53;
  for (int64_t i = 0; i < g->M; i++)
    for (int64_t j = 0; j < g->N; j++) {
      long double ab = 0, mag = 0;
      for (int64_t k = 0; k < g->K; k++) {
        long double p = (long double)a[i * va.rs + k * va.cs] * b[k * vb.rs + j * vb.cs];
        ab += p;
        mag += fabsl(p);
      }
      int64_t ci = vc.off + i * vc.rs + j * vc.cs;
      double c0 = g->beta == 0 ? 0 : C0[ci];
      double ref = (double)(g->alpha * ab + g->beta * (long double)c0);
      double tol = 2.0 * (double)(g->K + 2) * eps *
                       (fabs(g->alpha) * (double)mag + fabs(g->beta) * fabs(c0)) + 1e-300;
      if (!(fabs(C[ci] - ref) <= tol))
        cr_assert_fail("%s: C(%ld,%ld) = %.17g, reference %.17g (|diff| %.3g > tol %.3g)",
                       describe(g, "dgemm"), (long)i, (long)j, C[ci], ref, fabs(C[ci] - ref),
                       tol);
    }
  free(A), free(B), free(C), free(C0);
}

static const int64_t edge[] = {1, 7, 17, 33, 65, 129, 257};
#define NEDGE ((int)(sizeof edge / sizeof edge[0]))

/* Shape sweep: all (M, N) edge pairs with a few K, cycling layouts and alpha/beta. */
static void sweep(bool dbl) {
  static const double ab[][2] = {{1, 0}, {1, 1}, {-0.5, 2}, {2, -1}, {1.5, 0}};
  int n = 0;
  for (int mi = 0; mi < NEDGE; mi++)
    for (int ni = 0; ni < NEDGE; ni++) {
      const int64_t ks[] = {1, 33, edge[(mi + ni) % NEDGE]};
      for (int ki = 0; ki < 3; ki++, n++) {
        gcase g = {edge[mi], edge[ni], ks[ki], ab[n % 5][0], ab[n % 5][1],
                   (enum layout)(n % LAYOUTS), (enum layout)((n / LAYOUTS) % LAYOUTS),
                   (enum layout)((n / 3) % LAYOUTS), false};
        g.nan_c = g.beta == 0 && (n & 1);
        if (dbl) check_d(&g);
        else check_s(&g);
      }
    }
}

/* Every layout combination at one awkward size, both beta kinds. */
static void layouts(bool dbl) {
  for (int la = 0; la < LAYOUTS; la++)
    for (int lb = 0; lb < LAYOUTS; lb++)
      for (int lc = 0; lc < LAYOUTS; lc++) {
        gcase g = {37, 29, 45, 0.75, (la + lb + lc) % 2 ? 0.0 : -1.25, (enum layout)la,
                   (enum layout)lb, (enum layout)lc, (la + lb + lc) % 2 == 1};
        if (dbl) check_d(&g);
        else check_s(&g);
      }
}

/* Large enough for several mc/kc blocks, threads, and the column split (small M). */
static void big(bool dbl) {
  const gcase gs[] = {
      {520, 300, 1100, 1, 0.5, ROW, ROW, ROW, false},
      {300, 520, 700, -1, 0, COL, ROW, COL, true},
      {16, 2000, 300, 1, 1, ROW, COL, COL, false}, /* column split across threads */
      {3, 9000, 20, 1, 0, ROW, ROW, COL, false},   /* several nc blocks */
      {1, 513, 777, 2, 1, ROW, ROW, ROW, false},   /* GEMV-like */
      {513, 1, 777, 1, 0, COL, ROW, ROW, true},
  };
  for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++) {
    if (dbl) check_d(&gs[i]);
    else check_s(&gs[i]);
  }
}

/* Runs fn at each micro-kernel level this CPU can execute. */
static void each_level(void (*fn)(bool), bool dbl) {
  static const char *levels[] = {"generic", "avx2", "avx512"};
  for (int l = 0; l < 3; l++) {
    tfw__cpu_force(levels[l]);
    const tfw__cpu_info *ci = tfw__cpu();
    if (l == 1 && !(ci->avx2 && ci->fma)) continue;
    if (l == 2 && !ci->avx512f) continue;
    fn(dbl);
  }
  tfw__cpu_force(NULL);
}

Test(gemm, sgemm_shapes) { each_level(sweep, false); }
Test(gemm, dgemm_shapes) { each_level(sweep, true); }
Test(gemm, sgemm_layouts) { each_level(layouts, false); }
Test(gemm, dgemm_layouts) { each_level(layouts, true); }
Test(gemm, sgemm_big) { each_level(big, false); }
Test(gemm, dgemm_big) { each_level(big, true); }

Test(gemm, kernel_paths) {
  const tfw__cpu_info *ci;
  tfw__cpu_force("generic");
  cr_expect(strncmp(tfw__sgemm_kernel_name(), "generic", 7) == 0, "%s", tfw__sgemm_kernel_name());
  tfw__cpu_force("avx2");
  ci = tfw__cpu();
  cr_expect(!ci->avx512f);
  if (ci->avx2 && ci->fma)
    cr_expect(strncmp(tfw__sgemm_kernel_name(), "avx2", 4) == 0, "%s", tfw__sgemm_kernel_name());
  tfw__cpu_force(NULL);
  ci = tfw__cpu();
  if (ci->avx512f && ci->avx512vl && ci->avx512bw && ci->avx512dq)
    cr_expect(strncmp(tfw__sgemm_kernel_name(), "avx512", 6) == 0, "%s",
              tfw__sgemm_kernel_name());
  cr_expect(ci->l1d_bytes > 0 && ci->l2_bytes > 0 && ci->l3_bytes > 0 && ci->cores > 0);
}

/* K == 0 and alpha == 0 scale C by beta; beta == 0 overwrites NaN; bad sizes do nothing. */
Test(gemm, degenerate) {
  float A[12], B[12], C[12];
  for (int i = 0; i < 12; i++) A[i] = B[i] = 1, C[i] = NAN;
  tfw__sgemm(3, 4, 0, 1, A, 0, 0, B, 0, 0, 0, C, 4, 1);
  for (int i = 0; i < 12; i++) cr_assert_eq(C[i], 0.0f, "C[%d] = %g", i, C[i]);
  for (int i = 0; i < 12; i++) C[i] = 2;
  tfw__sgemm(3, 4, 0, 1, NULL, 0, 0, NULL, 0, 0, 0.5f, C, 4, 1);
  for (int i = 0; i < 12; i++) cr_assert_eq(C[i], 1.0f, "C[%d] = %g", i, C[i]);
  A[0] = INFINITY;
  tfw__sgemm(3, 4, 3, 0.0f, A, 3, 1, B, 4, 1, 3.0f, C, 4, 1); /* alpha 0: A not used */
  for (int i = 0; i < 12; i++) cr_assert_eq(C[i], 3.0f, "C[%d] = %g", i, C[i]);
  tfw__sgemm(-1, 4, 3, 1, A, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(3, -4, 3, 1, A, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(3, 4, -3, 1, A, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(0, 4, 3, 1, A, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(3, 0, 3, 1, A, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(3, 4, 3, 1, NULL, 3, 1, B, 4, 1, 0, C, 4, 1);
  tfw__sgemm(3, 4, 3, 1, A, 3, 1, B, 4, 1, 0, NULL, 4, 1);
  for (int i = 0; i < 12; i++) cr_assert_eq(C[i], 3.0f, "C[%d] = %g", i, C[i]);
  double dA[4] = {1, 2, 3, 4}, dC[4] = {NAN, NAN, NAN, NAN};
  tfw__dgemm(2, 2, 0, 1, dA, 2, 1, dA, 2, 1, 0, dC, 2, 1);
  for (int i = 0; i < 4; i++) cr_assert_eq(dC[i], 0.0, "dC[%d] = %g", i, dC[i]);
  tfw__dgemm(2, 2, 2, 1, dA, 2, 1, dA, 2, 1, 0, dC, 2, 1); /* [[7,10],[15,22]] */
  cr_assert(dC[0] == 7 && dC[1] == 10 && dC[2] == 15 && dC[3] == 22, "%g %g %g %g", dC[0],
            dC[1], dC[2], dC[3]);
}

/* Same bits for 1, 2 and 3 threads (threads split only M/N, never K). */
static void thread_invariance(int64_t M, int64_t N, int64_t K, bool row_c, bool dbl) {
#ifdef _OPENMP
  const int64_t nc = M * N;
  void *A = malloc(8 * M * K), *B = malloc(8 * K * N), *C1 = malloc(8 * nc), *C2 = malloc(8 * nc);
  cr_assert(A && B && C1 && C2);
  const int64_t rsc = row_c ? N : 1, csc = row_c ? 1 : M;
  const int saved = omp_get_max_threads();
  for (int64_t i = 0; i < M * K; i++) {
    if (dbl) ((double *)A)[i] = urand();
    else ((float *)A)[i] = (float)urand();
  }
  for (int64_t i = 0; i < K * N; i++) {
    if (dbl) ((double *)B)[i] = urand();
    else ((float *)B)[i] = (float)urand();
  }
  for (int nt = 1; nt <= 3; nt++) {
    omp_set_num_threads(nt);
    void *C = nt == 1 ? C1 : C2;
    for (int64_t i = 0; i < nc; i++) {
      if (dbl) ((double *)C)[i] = 0.25 * (double)(i % 7);
      else ((float *)C)[i] = 0.25f * (float)(i % 7);
    }
    if (dbl)
      tfw__dgemm(M, N, K, 1.5, A, K, 1, B, N, 1, 0.75, C, rsc, csc);
    else
      tfw__sgemm(M, N, K, 1.5f, A, K, 1, B, N, 1, 0.75f, C, rsc, csc);
    if (nt > 1)
      cr_assert(memcmp(C1, C2, (dbl ? 8 : 4) * nc) == 0,
                "%s %ldx%ldx%ld: %d threads differ from 1 thread", dbl ? "dgemm" : "sgemm",
                (long)M, (long)N, (long)K, nt);
  }
  omp_set_num_threads(saved);
  free(A), free(B), free(C1), free(C2);
#else
  (void)M, (void)N, (void)K, (void)row_c, (void)dbl;
#endif
}

Test(gemm, threads_bit_identical) {
  thread_invariance(515, 333, 1031, true, false);
  thread_invariance(515, 333, 1031, false, false);
  thread_invariance(16, 2000, 300, false, false); /* column split */
  thread_invariance(257, 129, 700, true, true);
  thread_invariance(8, 1500, 200, false, true);
  thread_invariance(4, 20000, 16, false, false); /* several nc blocks per thread's columns */
  thread_invariance(700, 5, 900, false, false);  /* row split, several kc blocks */
}
