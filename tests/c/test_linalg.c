/* Tests of the matrix products (matmul, bmm, addmm, baddbmm, outer, dot) against naive
 * double-precision loops written here, on contiguous, transposed (unit row stride),
 * strided (no unit stride) and broadcast inputs, in float and integer dtypes. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

/* ---- reference ------------------------------------------------------------------------- */

/* numpy.matmul in double on the values of a and b. Returns the malloc'd result (row-major)
 * and its shape; *bound receives max over elements of sum_k |a||b| (the scale of the
 * rounding error). */
static double *ref_matmul(const tfw_tensor *a, const tfw_tensor *b, int *ond, int64_t *oshape,
                          double *bound) {
  int ra = tfw_tensor_ndim(a), rb = tfw_tensor_ndim(b);
  const int64_t *sa = tfw_tensor_shape(a), *sb = tfw_tensor_shape(b);
  double *va = th_values(a), *vb = th_values(b);
  int64_t n = ra >= 2 ? sa[ra - 2] : 1, k = sa[ra - 1], m = rb >= 2 ? sb[rb - 1] : 1;
  int nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0, nb = nba > nbb ? nba : nbb;
  int64_t bs[8], bsa[8], bsb[8], nbatch = 1;
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - nba), db = d - (nb - nbb);
    bsa[d] = da >= 0 ? sa[da] : 1;
    bsb[d] = db >= 0 ? sb[db] : 1;
    bs[d] = bsa[d] == 1 ? bsb[d] : bsa[d];
    nbatch *= bs[d];
  }
  *ond = 0;
  for (int d = 0; d < nb; d++) oshape[(*ond)++] = bs[d];
  if (ra >= 2) oshape[(*ond)++] = n;
  if (rb >= 2) oshape[(*ond)++] = m;
  double *o = malloc(sizeof(double) * (size_t)(nbatch * n * m + 1));
  *bound = 0;
  for (int64_t bi = 0; bi < nbatch; bi++) {
    int64_t r = bi, ia = 0, ib = 0, mula = 1, mulb = 1;
    for (int d = nb - 1; d >= 0; d--) {
      int64_t i = r % bs[d];
      r /= bs[d];
      ia += (bsa[d] == 1 ? 0 : i) * mula;
      ib += (bsb[d] == 1 ? 0 : i) * mulb;
      mula *= bsa[d];
      mulb *= bsb[d];
    }
    for (int64_t i = 0; i < n; i++)
      for (int64_t j = 0; j < m; j++) {
        double s = 0, sabs = 0;
        for (int64_t kk = 0; kk < k; kk++) {
          double x = va[ia * n * k + i * k + kk], y = vb[ib * k * m + kk * m + j];
          s += x * y;
          sabs += fabs(x * y);
        }
        o[bi * n * m + i * m + j] = s;
        if (sabs > *bound) *bound = sabs;
      }
  }
  free(va);
  free(vb);
  return o;
}

/* Tolerance for a result of dtype dt whose exact value is a sum of products of scale bound:
 * one rounding of the result plus f32/f64 accumulation error. */
static double tol(tfw_dtype dt, double bound) {
  if (!tfw_dtype_is_floating(dt)) return 0;
  return 4 * th_eps(dt) * (bound + 1e-3);
}

/* Integer results wrap to their dtype (computed in int64, then cast like C). */
static void wrap_ref(double *ref, int64_t n, tfw_dtype dt) {
  for (int64_t i = 0; i < n; i++) {
    int64_t v = (int64_t)ref[i];
    switch (dt) {
    case TFW_DTYPE_I8: ref[i] = (int8_t)(uint8_t)(uint64_t)v; break;
    case TFW_DTYPE_U8: ref[i] = (uint8_t)(uint64_t)v; break;
    case TFW_DTYPE_I32: ref[i] = (int32_t)(uint32_t)(uint64_t)v; break;
    default: break;
    }
  }
}

static int64_t numel_of(int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  return n;
}

static double lo_of(tfw_dtype dt) { return tfw_dtype_is_floating(dt) ? -1 : -6; }
static double hi_of(tfw_dtype dt) { return tfw_dtype_is_floating(dt) ? 1 : 6; }

typedef enum { L_CONTIG, L_TRANSPOSED, L_STRIDED, L_BROADCAST } layout;

/* A tensor of the given shape in one of four layouts. L_TRANSPOSED: a transpose of the last
 * two dims of a contiguous tensor (unit stride on the row dim). L_BROADCAST: the first dim
 * expanded from 1. */
static tfw_tensor *make(tfw_dtype dt, int nd, const int64_t *shape, layout l, uint64_t seed) {
  double lo = lo_of(dt), hi = hi_of(dt);
  if (l == L_STRIDED && nd > 0) return th_random_strided(dt, nd, shape, lo, hi, seed);
  if (l == L_TRANSPOSED && nd >= 2) {
    int64_t s[8];
    memcpy(s, shape, sizeof(int64_t) * (size_t)nd);
    s[nd - 2] = shape[nd - 1];
    s[nd - 1] = shape[nd - 2];
    tfw_tensor *t = th_random(dt, nd, s, lo, hi, seed);
    tfw_tensor *v = tfw_transpose(t, -1, -2);
    cr_assert(v, "transpose: %s", tfw_last_error());
    tfw_release(t);
    return v;
  }
  if (l == L_BROADCAST && nd > 0) {
    int64_t s[8];
    memcpy(s, shape, sizeof(int64_t) * (size_t)nd);
    s[0] = 1;
    tfw_tensor *t = th_random(dt, nd, s, lo, hi, seed);
    tfw_tensor *v = tfw_expand(t, nd, shape);
    cr_assert(v, "expand: %s", tfw_last_error());
    tfw_release(t);
    return v;
  }
  return th_random(dt, nd, shape, lo, hi, seed);
}

static void check_matmul(const tfw_tensor *a, const tfw_tensor *b, tfw_dtype want,
                         const char *what) {
  int ond;
  int64_t oshape[8];
  double bound;
  double *ref = ref_matmul(a, b, &ond, oshape, &bound);
  wrap_ref(ref, numel_of(ond, oshape), want);
  tfw_tensor *o = tfw_matmul(a, b);
  th_expect_close(o, want, ond, oshape, ref, 0, tol(want, bound), what);
  tfw_release(o);
  free(ref);
}

static const tfw_dtype k_dtypes[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16,
                                     TFW_DTYPE_BF16, TFW_DTYPE_I32, TFW_DTYPE_I64,
                                     TFW_DTYPE_I8, TFW_DTYPE_U8};
#define N_DTYPES (int)(sizeof k_dtypes / sizeof k_dtypes[0])

/* ---- matmul ---------------------------------------------------------------------------- */

Test(linalg, matmul_2d_all_dtypes_layouts) {
  static const int64_t sizes[][3] = {{5, 7, 3}, {1, 1, 1}, {17, 33, 9}, {0, 3, 2}, {3, 0, 2},
                                     {2, 3, 0}, {1, 9, 1}, {70, 65, 66}};
  char what[128];
  for (int di = 0; di < N_DTYPES; di++) {
    tfw_dtype dt = k_dtypes[di];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
      if (s == 7 && dt != TFW_DTYPE_F32 && dt != TFW_DTYPE_I64) continue; /* keep it quick */
      int64_t n = sizes[s][0], k = sizes[s][1], m = sizes[s][2];
      int64_t sa[2] = {n, k}, sb[2] = {k, m};
      for (int la = 0; la < 3; la++) {
        tfw_tensor *a = make(dt, 2, sa, (layout)la, 1 + s);
        tfw_tensor *b = make(dt, 2, sb, (layout)((la + 1) % 3), 2 + s);
        snprintf(what, sizeof what, "matmul %s [%lld,%lld]@[%lld,%lld] layout %d",
                 tfw_dtype_name(dt), (long long)n, (long long)k, (long long)k, (long long)m, la);
        check_matmul(a, b, dt, what);
        tfw_release(a);
        tfw_release(b);
      }
    }
  }
  th_expect_no_leaks();
}

Test(linalg, matmul_batch_broadcast_and_1d) {
  static const struct {
    int na, nb;
    int64_t sa[5], sb[5];
  } cases[] = {
      {4, 3, {2, 1, 3, 4}, {5, 4, 2}}, /* the classic: -> [2, 5, 3, 2] */
      {2, 3, {3, 4}, {2, 4, 5}},
      {3, 2, {2, 3, 4}, {4, 5}},
      {1, 1, {4}, {4}},                /* -> 0-d */
      {1, 2, {4}, {4, 3}},             /* -> [3] */
      {2, 1, {3, 4}, {4}},             /* -> [3] */
      {3, 1, {2, 3, 4}, {4}},          /* -> [2, 3] */
      {1, 3, {4}, {2, 4, 3}},          /* -> [2, 3] */
      {1, 1, {0}, {0}},                /* empty dot -> 0 */
      {3, 3, {0, 2, 3}, {1, 3, 2}},    /* empty batch */
      {5, 3, {2, 1, 3, 1, 2}, {3, 2, 3}},
  };
  char what[128];
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_BF16, TFW_DTYPE_I32};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
    for (int di = 0; di < 4; di++)
      for (int l = 0; l < 4; l++) {
        tfw_dtype dt = dts[di];
        tfw_tensor *a = make(dt, cases[c].na, cases[c].sa, (layout)l, 10 + c);
        tfw_tensor *b = make(dt, cases[c].nb, cases[c].sb, (layout)((l + 2) % 4), 20 + c);
        snprintf(what, sizeof what, "matmul case %zu %s layout %d", c, tfw_dtype_name(dt), l);
        check_matmul(a, b, dt, what);
        tfw_release(a);
        tfw_release(b);
      }
  th_expect_no_leaks();
}

Test(linalg, matmul_mixed_dtypes_promote) {
  static const tfw_dtype pairs[][3] = {
      {TFW_DTYPE_I32, TFW_DTYPE_F32, TFW_DTYPE_F32}, {TFW_DTYPE_F16, TFW_DTYPE_BF16, TFW_DTYPE_F32},
      {TFW_DTYPE_I8, TFW_DTYPE_U8, TFW_DTYPE_I32},   {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F64},
      {TFW_DTYPE_BOOL, TFW_DTYPE_I64, TFW_DTYPE_I64}, {TFW_DTYPE_I64, TFW_DTYPE_F16, TFW_DTYPE_F16},
  };
  int64_t sa[3] = {2, 3, 5}, sb[2] = {5, 4};
  for (size_t p = 0; p < sizeof pairs / sizeof pairs[0]; p++) {
    tfw_tensor *a = th_random(pairs[p][0], 3, sa, -3, 3, 5);
    tfw_tensor *b = th_random(pairs[p][1], 2, sb, -3, 3, 6);
    check_matmul(a, b, pairs[p][2], "matmul mixed dtypes");
    tfw_release(a);
    tfw_release(b);
  }
  th_expect_no_leaks();
}

Test(linalg, matmul_integer_wraps_like_int64) {
  /* int32 result of large products: computed in int64, then wrapped to int32 */
  int64_t s1[2] = {1, 2}, s2[2] = {2, 1};
  int32_t av[2] = {2000000000, 3}, bv[2] = {3, 7};
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_I32, 2, s1, av);
  tfw_tensor *b = tfw_from_data(TFW_DTYPE_I32, 2, s2, bv);
  tfw_tensor *o = tfw_matmul(a, b);
  int64_t exact = 2000000000ll * 3 + 21;
  double ref = (double)(int32_t)(uint32_t)(uint64_t)exact;
  int64_t os[2] = {1, 1};
  th_expect_close(o, TFW_DTYPE_I32, 2, os, &ref, 0, 0, "int32 wrap");
  tfw_release(a);
  tfw_release(b);
  tfw_release(o);
  th_expect_no_leaks();
}

Test(linalg, matmul_many_small_matrices) {
  /* many small matrices: the batch is spread over threads; one big matrix: GEMM threads */
  int64_t sa[3] = {300, 5, 6}, sb[3] = {300, 6, 7};
  for (int l = 0; l < 3; l++) {
    tfw_tensor *a = make(TFW_DTYPE_F32, 3, sa, (layout)l, 1);
    tfw_tensor *b = make(TFW_DTYPE_F32, 3, sb, (layout)((l + 1) % 3), 2);
    check_matmul(a, b, TFW_DTYPE_F32, "matmul 300 small");
    tfw_release(a);
    tfw_release(b);
  }
  th_expect_no_leaks();
}

Test(linalg, results_identical_for_any_thread_count) {
  int64_t s1[3] = {40, 9, 11}, s2[3] = {40, 11, 13}, s3[2] = {150, 130}, s4[2] = {130, 120};
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 3, s1, -1, 1, 1);
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 3, s2, -1, 1, 2);
  tfw_tensor *c = th_random(TFW_DTYPE_F64, 2, s3, -1, 1, 3);
  tfw_tensor *d = th_random(TFW_DTYPE_F64, 2, s4, -1, 1, 4);
  tfw_tensor *r1[2], *r4[2];
  tfw_set_num_threads(1);
  r1[0] = tfw_matmul(a, b);
  r1[1] = tfw_matmul(c, d);
  tfw_set_num_threads(4);
  r4[0] = tfw_matmul(a, b);
  r4[1] = tfw_matmul(c, d);
  tfw_set_num_threads(0);
  for (int i = 0; i < 2; i++) {
    cr_assert(r1[i] && r4[i], "%s", tfw_last_error());
    size_t nbytes = (size_t)tfw_tensor_numel(r1[i]) * tfw_dtype_size(tfw_tensor_dtype(r1[i]));
    cr_assert(memcmp(tfw_tensor_data(r1[i]), tfw_tensor_data(r4[i]), nbytes) == 0,
              "result %d differs between 1 and 4 threads", i);
    tfw_release(r1[i]);
    tfw_release(r4[i]);
  }
  tfw_release(a);
  tfw_release(b);
  tfw_release(c);
  tfw_release(d);
  th_expect_no_leaks();
}

/* ---- bmm ------------------------------------------------------------------------------- */

Test(linalg, bmm) {
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_I64};
  static const int64_t sizes[][4] = {{3, 4, 5, 2}, {1, 1, 1, 1}, {2, 0, 3, 4}, {0, 2, 2, 2},
                                     {4, 3, 0, 2}};
  char what[96];
  for (int di = 0; di < 4; di++)
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
      for (int l = 0; l < 4; l++) {
        int64_t B = sizes[s][0], n = sizes[s][1], k = sizes[s][2], m = sizes[s][3];
        int64_t sa[3] = {B, n, k}, sb[3] = {B, k, m};
        tfw_tensor *a = make(dts[di], 3, sa, (layout)l, 3);
        tfw_tensor *b = make(dts[di], 3, sb, (layout)((l + 3) % 4), 4);
        int ond;
        int64_t os[8];
        double bound;
        double *ref = ref_matmul(a, b, &ond, os, &bound);
        wrap_ref(ref, numel_of(ond, os), dts[di]);
        tfw_tensor *o = tfw_bmm(a, b);
        snprintf(what, sizeof what, "bmm %s size %zu layout %d", tfw_dtype_name(dts[di]), s, l);
        th_expect_close(o, dts[di], 3, os, ref, 0, tol(dts[di], bound), what);
        free(ref);
        tfw_release(o);
        tfw_release(a);
        tfw_release(b);
      }
  th_expect_no_leaks();
}

/* ---- addmm / baddbmm ------------------------------------------------------------------- */

/* beta * c (broadcast to [B?, n, m]) + alpha * a @ b in double. */
static double *ref_addmm(const tfw_tensor *c, const tfw_tensor *a, const tfw_tensor *b,
                         double beta, double alpha, double *bound) {
  int ond;
  int64_t os[8];
  double *p = ref_matmul(a, b, &ond, os, bound);
  double *cv = th_values(c);
  int cn = tfw_tensor_ndim(c);
  const int64_t *cs = tfw_tensor_shape(c);
  int64_t total = 1;
  for (int d = 0; d < ond; d++) total *= os[d];
  for (int64_t e = 0; e < total; e++) {
    int64_t r = e, ci = 0, mul = 1;
    for (int d = ond - 1; d >= 0; d--) {
      int64_t i = r % os[d];
      r /= os[d];
      int cd = d - (ond - cn);
      if (cd >= 0) {
        ci += (cs[cd] == 1 ? 0 : i) * mul;
        mul *= cs[cd];
      }
    }
    p[e] = (beta == 0 ? 0 : beta * cv[ci]) + alpha * p[e];
  }
  *bound = fabs(alpha) * *bound + fabs(beta) * 8;
  free(cv);
  return p;
}

Test(linalg, addmm_broadcast_c_all_dtypes) {
  static const struct {
    int nc;
    int64_t sc[2];
  } cs[] = {{1, {4}}, {2, {3, 4}}, {2, {1, 4}}, {2, {3, 1}}, {0, {0}}};
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16,
                           TFW_DTYPE_I32, TFW_DTYPE_I64};
  const double betas[] = {1, 0.5, 0, -2}, alphas[] = {1, 2, -1.5, 3};
  int64_t sa[2] = {3, 5}, sb[2] = {5, 4}, os[2] = {3, 4};
  char what[96];
  for (int di = 0; di < 6; di++)
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
      for (int s = 0; s < 4; s++) {
        tfw_dtype dt = dts[di];
        bool integral = !tfw_dtype_is_floating(dt);
        double beta = integral ? round(betas[s]) : betas[s];
        double alpha = integral ? round(alphas[s]) : alphas[s];
        tfw_tensor *c = make(dt, cs[ci].nc, cs[ci].sc, L_CONTIG, 7 + ci);
        tfw_tensor *a = make(dt, 2, sa, (layout)(s % 3), 8);
        tfw_tensor *b = make(dt, 2, sb, (layout)((s + 1) % 3), 9);
        double bound;
        double *ref = ref_addmm(c, a, b, beta, alpha, &bound);
        wrap_ref(ref, 12, dt);
        tfw_tensor *o = tfw_addmm(c, a, b, beta, alpha);
        snprintf(what, sizeof what, "addmm %s c%zu beta %g alpha %g", tfw_dtype_name(dt), ci,
                 beta, alpha);
        th_expect_close(o, dt, 2, os, ref, 0, tol(dt, bound), what);
        free(ref);
        tfw_release(o);
        tfw_release(a);
        tfw_release(b);
        tfw_release(c);
      }
  th_expect_no_leaks();
}

Test(linalg, addmm_beta_zero_ignores_nan) {
  int64_t sc[2] = {2, 2}, sa[2] = {2, 3}, sb[2] = {3, 2};
  tfw_tensor *c = tfw_full(TFW_DTYPE_F32, 2, sc, NAN);
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, sa, -1, 1, 1);
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 2, sb, -1, 1, 2);
  double bound;
  double *ref = ref_addmm(c, a, b, 0, 1.5, &bound);
  tfw_tensor *o = tfw_addmm(c, a, b, 0, 1.5);
  th_expect_close(o, TFW_DTYPE_F32, 2, sc, ref, 0, tol(TFW_DTYPE_F32, bound), "beta 0 NaN c");
  tfw_release(o);
  /* beta != 0 propagates the NaN */
  o = tfw_addmm(c, a, b, 1, 1);
  double *v = th_values(o);
  for (int i = 0; i < 4; i++) cr_assert(isnan(v[i]), "element %d should be NaN", i);
  free(v);
  free(ref);
  tfw_release(o);
  tfw_release(a);
  tfw_release(b);
  tfw_release(c);
  th_expect_no_leaks();
}

Test(linalg, baddbmm) {
  static const struct {
    int nc;
    int64_t sc[3];
  } cs[] = {{3, {2, 3, 4}}, {1, {4}}, {2, {3, 4}}, {3, {1, 3, 1}}, {0, {0}}};
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_BF16, TFW_DTYPE_I64};
  int64_t sa[3] = {2, 3, 5}, sb[3] = {2, 5, 4}, os[3] = {2, 3, 4};
  char what[96];
  for (int di = 0; di < 4; di++)
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
      tfw_dtype dt = dts[di];
      double beta = ci == 4 ? 0 : -1, alpha = tfw_dtype_is_floating(dt) ? 0.25 : 2;
      tfw_tensor *c = make(dt, cs[ci].nc, cs[ci].sc, L_CONTIG, 7 + ci);
      tfw_tensor *a = make(dt, 3, sa, (layout)(ci % 4), 8);
      tfw_tensor *b = make(dt, 3, sb, (layout)((ci + 2) % 4), 9);
      double bound;
      double *ref = ref_addmm(c, a, b, beta, alpha, &bound);
      tfw_tensor *o = tfw_baddbmm(c, a, b, beta, alpha);
      snprintf(what, sizeof what, "baddbmm %s c%zu", tfw_dtype_name(dt), ci);
      th_expect_close(o, dt, 3, os, ref, 0, tol(dt, bound), what);
      free(ref);
      tfw_release(o);
      tfw_release(a);
      tfw_release(b);
      tfw_release(c);
    }
  th_expect_no_leaks();
}

/* ---- outer / dot ----------------------------------------------------------------------- */

Test(linalg, outer_and_dot) {
  const int64_t lens[] = {0, 1, 7, 33};
  char what[96];
  for (int di = 0; di < N_DTYPES; di++)
    for (int i = 0; i < 4; i++)
      for (int l = 0; l < 4; l++) {
        tfw_dtype dt = k_dtypes[di];
        int64_t n = lens[i], m = lens[(i + 1) % 4];
        tfw_tensor *a = make(dt, 1, &n, (layout)l, 1 + i);
        tfw_tensor *b = make(dt, 1, &m, (layout)((l + 1) % 4), 2 + i);
        tfw_tensor *b2 = make(dt, 1, &n, (layout)((l + 2) % 4), 3 + i);
        double *va = th_values(a), *vb = th_values(b), *vb2 = th_values(b2);
        double *ro = malloc(sizeof(double) * (size_t)(n * m + 1));
        double dot = 0, bound = 0;
        for (int64_t x = 0; x < n; x++) {
          for (int64_t y = 0; y < m; y++) ro[x * m + y] = va[x] * vb[y];
          dot += va[x] * vb2[x];
          bound += fabs(va[x] * vb2[x]);
        }
        int64_t os[2] = {n, m};
        wrap_ref(ro, n * m, dt);
        wrap_ref(&dot, 1, dt);
        tfw_tensor *o = tfw_outer(a, b);
        snprintf(what, sizeof what, "outer %s %lld x %lld layout %d", tfw_dtype_name(dt),
                 (long long)n, (long long)m, l);
        th_expect_close(o, dt, 2, os, ro, 0, tol(dt, 1), what);
        tfw_release(o);
        o = tfw_dot(a, b2);
        snprintf(what, sizeof what, "dot %s %lld layout %d", tfw_dtype_name(dt), (long long)n, l);
        th_expect_close(o, dt, 0, NULL, &dot, 0, tol(dt, bound), what);
        tfw_release(o);
        free(va);
        free(vb);
        free(vb2);
        free(ro);
        tfw_release(a);
        tfw_release(b);
        tfw_release(b2);
      }
  th_expect_no_leaks();
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_null(tfw_tensor *t, tfw_status code, const char *needle, const char *what) {
  cr_assert(t == NULL, "%s: expected an error, got a tensor", what);
  th_expect_error(tfw_last_status(), code, needle, what);
}

Test(linalg, errors) {
  int64_t s23[2] = {2, 3}, s45[2] = {4, 5}, s3[1] = {3}, s4[1] = {4}, s234[3] = {2, 3, 4},
          s345[3] = {3, 4, 5}, s245[3] = {2, 4, 5}, s2345[4] = {2, 3, 4, 5};
  tfw_tensor *a23 = tfw_zeros(TFW_DTYPE_F32, 2, s23), *b45 = tfw_zeros(TFW_DTYPE_F32, 2, s45);
  tfw_tensor *v3 = tfw_zeros(TFW_DTYPE_F32, 1, s3), *v4 = tfw_zeros(TFW_DTYPE_F32, 1, s4);
  tfw_tensor *t234 = tfw_zeros(TFW_DTYPE_F32, 3, s234), *t345 = tfw_zeros(TFW_DTYPE_F32, 3, s345);
  tfw_tensor *t245 = tfw_zeros(TFW_DTYPE_F32, 3, s245);
  tfw_tensor *t2345 = tfw_zeros(TFW_DTYPE_F32, 4, s2345);
  tfw_tensor *sc = tfw_scalar(TFW_DTYPE_F32, 1);
  tfw_tensor *bo = tfw_zeros(TFW_DTYPE_BOOL, 2, s23), *bo2 = tfw_zeros(TFW_DTYPE_BOOL, 2, s45);
  tfw_tensor *i23 = tfw_zeros(TFW_DTYPE_I32, 2, s23);
  int64_t s35[2] = {3, 5}, s34[2] = {3, 4};
  tfw_tensor *i35 = tfw_zeros(TFW_DTYPE_I32, 2, s35), *i34 = tfw_zeros(TFW_DTYPE_I32, 2, s34);
  tfw_tensor *c25 = tfw_zeros(TFW_DTYPE_F32, 2, (int64_t[]){2, 5});

  expect_null(tfw_matmul(a23, b45), TFW_ESHAPE,
              "matmul: inner dimensions differ: a is [2, 3], b is [4, 5] (3 != 4)", "inner");
  expect_null(tfw_matmul(v3, v4), TFW_ESHAPE, "inner dimensions differ: a is [3], b is [4]",
              "1-d inner");
  expect_null(tfw_matmul(sc, v3), TFW_ESHAPE, "at least 1-d", "0-d");
  tfw_tensor *t452 = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){4, 5, 2});
  expect_null(tfw_matmul(t2345, t452), TFW_ESHAPE, "matmul: batch dimensions do not broadcast: "
              "a is [2, 3, 4, 5], b is [4, 5, 2] (3 vs 4)", "batch");
  tfw_release(t452);
  expect_null(tfw_matmul(NULL, v3), TFW_EVALUE, "NULL", "NULL a");
  expect_null(tfw_matmul(bo, bo2), TFW_EDTYPE, "bool", "bool");
  expect_null(tfw_bmm(a23, b45), TFW_ESHAPE, "bmm: a must be 3-d, got shape [2, 3]", "bmm 2-d");
  expect_null(tfw_bmm(t234, t345), TFW_ESHAPE, "bmm: batch sizes differ", "bmm batch");
  expect_null(tfw_bmm(t234, t234), TFW_ESHAPE, "bmm: inner dimensions differ: a is [2, 3, 4], "
              "b is [2, 3, 4] (4 != 3)", "bmm inner");
  expect_null(tfw_addmm(v3, a23, b45, 1, 1), TFW_ESHAPE, "addmm: inner dimensions differ",
              "addmm inner");
  expect_null(tfw_addmm(v3, a23, t345, 1, 1), TFW_ESHAPE, "addmm: b must be 2-d", "addmm 3-d");
  tfw_tensor *b35 = tfw_zeros(TFW_DTYPE_F32, 2, s35);
  expect_null(tfw_addmm(v3, a23, b35, 1, 1), TFW_ESHAPE,
              "addmm: c of shape [3] cannot be broadcast to the result shape [2, 5]", "addmm c");
  expect_null(tfw_addmm(t234, a23, b35, 1, 1), TFW_ESHAPE, "cannot be broadcast", "addmm c 3-d");
  tfw_tensor *ic = tfw_zeros(TFW_DTYPE_I32, 2, (int64_t[]){2, 5});
  expect_null(tfw_addmm(ic, i23, i35, 0.5, 1), TFW_EVALUE, "beta must be an integer",
              "addmm int beta");
  tfw_tensor *o = tfw_addmm(c25, i23, i35, 0.5, 1.5); /* float c: the result is float */
  cr_assert(o, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(o), TFW_DTYPE_F32);
  tfw_release(o);
  expect_null(tfw_addmm(ic, i23, i35, 1, 1.5), TFW_EVALUE, "alpha must be an integer for int32",
              "addmm int alpha");
  expect_null(tfw_addmm(NULL, a23, b35, 1, 1), TFW_EVALUE, "NULL", "addmm NULL c");
  expect_null(tfw_baddbmm(t245, t234, t345, 1, 1), TFW_ESHAPE, "baddbmm: batch sizes differ",
              "baddbmm batch");
  expect_null(tfw_baddbmm(t234, t234, t234, 1, 1), TFW_ESHAPE, "inner dimensions differ",
              "baddbmm inner");
  expect_null(tfw_outer(a23, v3), TFW_ESHAPE, "outer: a must be 1-d, got shape [2, 3]", "outer");
  expect_null(tfw_dot(v3, v4), TFW_ESHAPE, "dot: a and b must have the same length: a is [3], "
              "b is [4] (3 != 4)", "dot len");
  expect_null(tfw_dot(v3, a23), TFW_ESHAPE, "dot: b must be 1-d", "dot 2-d");
  o = tfw_matmul(i34, bo2); /* int32 @ bool promotes to int32: fine */
  cr_assert(o && tfw_tensor_dtype(o) == TFW_DTYPE_I32, "int32 @ bool: %s", tfw_last_error());
  tfw_release(o);

  tfw_tensor *all[] = {a23, b45, v3, v4, t234, t345, t245, t2345, sc, bo, bo2, i23, i35, i34,
                       c25, b35, ic};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tfw_release(all[i]);
  th_expect_no_leaks();
}

Test(linalg, huge_results_fail_cleanly) {
  /* expanded views cost no memory; their product would have 2^80 elements */
  int64_t one[2] = {1, 1}, col[2] = {1ll << 40, 1}, row[2] = {1, 1ll << 40};
  tfw_tensor *base = tfw_zeros(TFW_DTYPE_F32, 2, one);
  tfw_tensor *a = tfw_expand(base, 2, col), *b = tfw_expand(base, 2, row);
  cr_assert(a && b, "%s", tfw_last_error());
  tfw_tensor *o = tfw_matmul(a, b);
  cr_assert(o == NULL, "a 2^80-element result must fail");
  cr_assert(tfw_last_status() == TFW_ESHAPE || tfw_last_status() == TFW_ENOMEM, "%s",
            tfw_last_error());
  tfw_release(a);
  tfw_release(b);
  tfw_release(base);
  th_expect_no_leaks();
}

Test(linalg, out_of_memory_is_clean) {
  /* f16 batch broadcast with a strided operand: several temporaries on the way */
  int64_t sa[3] = {2, 3, 4}, sb[2] = {4, 5}, sc[1] = {5};
  tfw_tensor *a = th_random_strided(TFW_DTYPE_F16, 3, sa, -1, 1, 1);
  tfw_tensor *b = th_random(TFW_DTYPE_F16, 2, sb, -1, 1, 2);
  tfw_tensor *c = th_random(TFW_DTYPE_F16, 1, sc, -1, 1, 3);
  tfw_tensor *a2 = th_random_strided(TFW_DTYPE_I32, 2, (int64_t[]){3, 4}, -3, 3, 4);
  tfw_tensor *b2 = th_random(TFW_DTYPE_I32, 2, sb, -3, 3, 5);
  tfw_tensor *c2 = th_random(TFW_DTYPE_I32, 1, sc, -3, 3, 6);
  tfw_memory_stats before;
  tfw_memory_stats_get(&before);
  for (int n = 1; n < 12; n++) {
    tfw_memory_fail_at(n, false);
    tfw_tensor *o = tfw_matmul(a, b);
    tfw_memory_fail_at(0, false);
    if (!o) th_expect_error(tfw_last_status(), TFW_ENOMEM, "out of memory", "matmul oom");
    tfw_release(o);
    tfw_memory_fail_at(n, false);
    o = tfw_addmm(c2, a2, b2, 2, 3);
    tfw_memory_fail_at(0, false);
    if (!o) th_expect_error(tfw_last_status(), TFW_ENOMEM, "out of memory", "addmm oom");
    tfw_release(o);
    tfw_memory_stats s;
    tfw_memory_stats_get(&s);
    cr_assert_eq(s.live_tensors, before.live_tensors, "leak after failing allocation %d", n);
  }
  tfw_release(a);
  tfw_release(b);
  tfw_release(c);
  tfw_release(a2);
  tfw_release(b2);
  tfw_release(c2);
  th_expect_no_leaks();
}

/* ---- registry samples ------------------------------------------------------------------ */

Test(linalg, registry_samples_run) {
  const tfw__op_id ids[] = {TFW__OP_matmul, TFW__OP_bmm, TFW__OP_addmm, TFW__OP_baddbmm,
                            TFW__OP_outer, TFW__OP_dot};
  for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    const tfw__op_def *op = &tfw__ops[ids[i]];
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 2, "%s: only %d samples", op->name, n);
    for (int s = 0; s < n; s++) {
      tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
      tfw_status st = tfw__op_run_multi(&calls[s], out);
      cr_assert_eq(st, TFW_OK, "%s sample %d: %s", op->name, s, tfw_last_error());
      /* check the sample against the reference too */
      const tfw_tensor *x = calls[s].in[0], *y = calls[s].in[1];
      if (ids[i] == TFW__OP_addmm || ids[i] == TFW__OP_baddbmm) {
        x = calls[s].in[1];
        y = calls[s].in[2];
      }
      double bound;
      int ond;
      int64_t os[8];
      double *ref;
      if (ids[i] == TFW__OP_addmm || ids[i] == TFW__OP_baddbmm) {
        free(ref_matmul(x, y, &ond, os, &bound)); /* the shape */
        ref = ref_addmm(calls[s].in[0], x, y, calls[s].a.f[0], calls[s].a.f[1], &bound);
      } else if (ids[i] == TFW__OP_outer) {
        tfw_tensor *xv = tfw_unsqueeze(x, 1), *yv = tfw_unsqueeze(y, 0);
        ref = ref_matmul(xv, yv, &ond, os, &bound);
        tfw_release(xv);
        tfw_release(yv);
      } else {
        ref = ref_matmul(x, y, &ond, os, &bound);
      }
      tfw_dtype dt = tfw_tensor_dtype(out[0]);
      wrap_ref(ref, numel_of(ond, os), dt);
      th_expect_close(out[0], dt, ond, os, ref, 0, tol(dt, bound + 8), op->name);
      free(ref);
      tfw_release(out[0]);
    }
    tfw__samples_free(calls, n);
  }
  th_expect_no_leaks();
}
