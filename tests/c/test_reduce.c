/* Tests of the reduction family (sum mean var std prod amax amin logsumexp norm all any max
 * min argmax argmin max_dim min_dim cumsum cumprod softmax log_softmax) against naive
 * double-precision reference loops written here, on contiguous, strided and broadcast
 * inputs; edge cases (empty, 0-d, size-1 and negative dims, NaN); errors; determinism
 * across thread counts; accuracy of long f32 sums; the registry samples. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/reduce.h"
#include "ops/registry.h"
#include "ops/samples.h"

/* ---- reference ---------------------------------------------------------------------- */
enum { R_SUM, R_MEAN, R_VAR, R_STD, R_PROD, R_AMAX, R_AMIN, R_LSE, R_NORM, R_ALL, R_ANY, R_N };
static const char *rname[R_N] = {"sum", "mean", "var", "std", "prod", "amax", "amin",
                                 "logsumexp", "norm", "all", "any"};

static bool dmax(double a, double b) { return b > a || isnan(b); }  /* b replaces a */
static bool dmin(double a, double b) { return b < a || isnan(b); }

/* Reduces x (row-major, shape) over mask; out has nout entries (kept dims row-major). */
static int64_t ref_reduce(const double *x, int nd, const int64_t *shape, const bool *mask, int op,
                          int64_t corr, double ord, double *out) {
  int64_t n = 1, nout = 1, nred = 1;
  for (int d = 0; d < nd; d++) {
    n *= shape[d];
    if (mask[d]) nred *= shape[d];
    else nout *= shape[d];
  }
  int64_t *oi = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i, o = 0, mul = 1;
    for (int d = nd - 1; d >= 0; d--) {
      int64_t k = r % shape[d];
      r /= shape[d];
      if (!mask[d]) o += k * mul, mul *= shape[d];
    }
    oi[i] = o;
  }
  double *a = calloc((size_t)(nout ? nout : 1), sizeof(double));
  double *b = calloc((size_t)(nout ? nout : 1), sizeof(double));
  for (int64_t o = 0; o < nout; o++) {
    a[o] = op == R_PROD || op == R_ALL ? 1 : op == R_AMAX || op == R_LSE ? -INFINITY
           : op == R_AMIN ? INFINITY : 0;
    if (op == R_NORM && isinf(ord)) a[o] = ord > 0 ? -INFINITY : INFINITY;
  }
  for (int64_t i = 0; i < n; i++) {
    double v = x[i], *p = &a[oi[i]];
    switch (op) {
    case R_SUM: case R_MEAN: case R_VAR: case R_STD: *p += v; break;
    case R_PROD: *p *= v; break;
    case R_AMAX: case R_LSE: if (dmax(*p, v)) *p = v; break;
    case R_AMIN: if (dmin(*p, v)) *p = v; break;
    case R_ALL: *p = *p && v != 0; break;
    case R_ANY: *p = *p || v != 0; break;
    case R_NORM:
      if (ord == INFINITY) { if (dmax(*p, fabs(v))) *p = fabs(v); }
      else if (ord == -INFINITY) { if (dmin(*p, fabs(v))) *p = fabs(v); }
      else if (ord == 1) *p += fabs(v);
      else if (ord == 0 || ord == 2) *p += v * v;
      else *p += pow(fabs(v), ord);
      break;
    }
  }
  if (op == R_VAR || op == R_STD || op == R_LSE) {
    for (int64_t i = 0; i < n; i++) {
      double m = op == R_LSE ? (isinf(a[oi[i]]) ? 0 : a[oi[i]]) : a[oi[i]] / (double)nred;
      b[oi[i]] += op == R_LSE ? exp(x[i] - m) : (x[i] - m) * (x[i] - m);
    }
  }
  for (int64_t o = 0; o < nout; o++) {
    double div = (double)nred - (double)corr;
    if (div < 0) div = 0;
    switch (op) {
    case R_MEAN: out[o] = a[o] / (double)nred; break;
    case R_VAR: out[o] = b[o] / div; break;
    case R_STD: out[o] = sqrt(b[o] / div); break;
    case R_LSE: out[o] = (isinf(a[o]) ? 0 : a[o]) + log(b[o]); break;
    case R_NORM:
      out[o] = isinf(ord) || ord == 1 ? a[o] : ord == 0 || ord == 2 ? sqrt(a[o]) : pow(a[o], 1 / ord);
      break;
    default: out[o] = a[o]; break;
    }
  }
  free(a), free(b), free(oi);
  return nout;
}

static tfw_tensor *call_red(int op, const tfw_tensor *t, int ndims, const int *dims, bool keep,
                            int64_t corr, double ord) {
  switch (op) {
  case R_SUM: return tfw_sum(t, ndims, dims, keep);
  case R_MEAN: return tfw_mean(t, ndims, dims, keep);
  case R_VAR: return tfw_var(t, ndims, dims, corr, keep);
  case R_STD: return tfw_std(t, ndims, dims, corr, keep);
  case R_PROD: return tfw_prod(t, ndims, dims, keep);
  case R_AMAX: return tfw_amax(t, ndims, dims, keep);
  case R_AMIN: return tfw_amin(t, ndims, dims, keep);
  case R_LSE: return tfw_logsumexp(t, ndims, dims, keep);
  case R_NORM: return tfw_norm(t, ord, ndims, dims, keep);
  case R_ALL: return tfw_all(t, ndims, dims, keep);
  default: return tfw_any(t, ndims, dims, keep);
  }
}

static tfw_dtype out_dtype(int op, tfw_dtype dt) {
  if (op == R_ALL || op == R_ANY) return TFW_DTYPE_BOOL;
  if ((op == R_SUM || op == R_PROD) && !tfw_dtype_is_floating(dt)) return TFW_DTYPE_I64;
  return dt;
}

/* A broadcast input: size 1 on the first dim, expanded. */
static tfw_tensor *random_broadcast(tfw_dtype dt, int nd, const int64_t *shape, double lo,
                                    double hi, uint64_t seed) {
  int64_t small[TFW_MAX_DIMS];
  memcpy(small, shape, sizeof(int64_t) * (size_t)nd);
  small[0] = 1;
  tfw_tensor *s = th_random(dt, nd, small, lo, hi, seed);
  tfw_tensor *e = tfw_expand(s, nd, shape);
  cr_assert(e, "expand: %s", tfw_last_error());
  tfw_release(s);
  return e;
}

static tfw_tensor *make_input(int layout, tfw_dtype dt, int nd, const int64_t *shape, double lo,
                              double hi, uint64_t seed) {
  if (layout == 1) return th_random_strided(dt, nd, shape, lo, hi, seed);
  if (layout == 2) return random_broadcast(dt, nd, shape, lo, hi, seed);
  return th_random(dt, nd, shape, lo, hi, seed);
}

static double tol_for(tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return 2e-6;
  case TFW_DTYPE_F64: return 1e-12;
  case TFW_DTYPE_F16: return 2e-3;
  case TFW_DTYPE_BF16: return 1.6e-2;
  default: return 0;
  }
}

/* Checks op(t, dims, keep) against the reference. */
static void check_red(int op, const tfw_tensor *t, int ndims, const int *dims, bool keep,
                      int64_t corr, double ord, const char *what) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *shape = tfw_tensor_shape(t);
  bool mask[TFW_MAX_DIMS] = {false};
  for (int d = 0; d < nd; d++) mask[d] = ndims == 0;
  for (int k = 0; k < ndims; k++) mask[dims[k] < 0 ? dims[k] + nd : dims[k]] = true;
  int64_t oshape[TFW_MAX_DIMS];
  int ond = 0;
  for (int d = 0; d < nd; d++)
    if (!mask[d]) oshape[ond++] = shape[d];
    else if (keep) oshape[ond++] = 1;
  double *x = th_values(t);
  int64_t n = tfw_tensor_numel(t);
  double *ref = malloc(sizeof(double) * (size_t)(n + 1));
  ref_reduce(x, nd, shape, mask, op, corr, ord, ref);
  tfw_tensor *y = call_red(op, t, ndims, dims, keep, corr, ord);
  char msg[200];
  snprintf(msg, sizeof msg, "%s %s (%s)", rname[op], what, tfw_dtype_name(tfw_tensor_dtype(t)));
  tfw_dtype dt = tfw_tensor_dtype(t);
  double rtol = tol_for(dt), atol = tol_for(dt);
  if (op == R_PROD && dt != TFW_DTYPE_F64) atol = 0; /* products are small; relative only */
  th_expect_close(y, out_dtype(op, dt), ond, oshape, ref, rtol, atol, msg);
  tfw_release(y);
  free(x), free(ref);
}

static const int dims_a[] = {0}, dims_b[] = {-1}, dims_c[] = {0, 2}, dims_d[] = {1};
static const int *dsets[] = {NULL, dims_a, dims_b, dims_c, dims_d};
static const int dlens[] = {0, 1, 1, 2, 1};

Test(reduce, every_reduction_matches_reference_f32_f64) {
  const int64_t shape[3] = {5, 6, 7};
  const tfw_dtype dts[2] = {TFW_DTYPE_F32, TFW_DTYPE_F64};
  for (int op = 0; op < R_N; op++)
    for (int di = 0; di < 2; di++)
      for (int lay = 0; lay < 3; lay++) {
        double lo = op == R_PROD ? 0.5 : -2, hi = op == R_PROD ? 1.5 : 2;
        if (op == R_ALL || op == R_ANY) lo = -1, hi = 1.2; /* some exact zeros after floor? no: */
        tfw_tensor *t = make_input(lay, dts[di], 3, shape, lo, hi, 100 + op * 7 + lay);
        if (op == R_ALL || op == R_ANY) { /* put zeros in: floor to integers */
          tfw_tensor *r = tfw_to_dtype(t, TFW_DTYPE_I32);
          tfw_release(t);
          t = tfw_to_dtype(r, dts[di]);
          tfw_release(r);
        }
        for (int s = 0; s < 5; s++)
          for (int keep = 0; keep < 2; keep++) {
            char what[64];
            snprintf(what, sizeof what, "layout %d dims %d keep %d", lay, s, keep);
            if (op == R_NORM) {
              const double ords[5] = {0, 1, 2, INFINITY, 3};
              for (int o = 0; o < 5; o++) check_red(op, t, dlens[s], dsets[s], keep, 0, ords[o], what);
            } else {
              check_red(op, t, dlens[s], dsets[s], keep, op == R_VAR || op == R_STD ? keep : 0, 0, what);
            }
          }
        tfw_release(t);
      }
  th_expect_no_leaks();
}

Test(reduce, integer_and_bool_dtypes) {
  const int64_t shape[3] = {4, 5, 6};
  const tfw_dtype dts[5] = {TFW_DTYPE_I8, TFW_DTYPE_U8, TFW_DTYPE_I32, TFW_DTYPE_I64, TFW_DTYPE_BOOL};
  const int ops[6] = {R_SUM, R_PROD, R_AMAX, R_AMIN, R_ALL, R_ANY};
  for (int di = 0; di < 5; di++)
    for (int oi = 0; oi < 6; oi++)
      for (int lay = 0; lay < 3; lay++) {
        bool u = dts[di] == TFW_DTYPE_U8;
        tfw_tensor *t = make_input(lay, dts[di], 3, shape, u ? 0 : -3, 4, 7 * di + oi + lay);
        for (int s = 0; s < 5; s++) check_red(ops[oi], t, dlens[s], dsets[s], s & 1, 0, 0, "int");
        tfw_release(t);
      }
  /* int64 sums are exact beyond 2^53; mean of an integer tensor is an error */
  int64_t big[3] = {INT64_C(1) << 60, 3, -(INT64_C(1) << 59)}, n3 = 3;
  tfw_tensor *b = tfw_from_data(TFW_DTYPE_I64, 1, &n3, big);
  tfw_tensor *s = tfw_sum(b, 0, NULL, false);
  int64_t v = 0;
  cr_assert_eq(tfw_item_i64(s, &v), TFW_OK);
  cr_assert_eq(v, (INT64_C(1) << 60) + 3 - (INT64_C(1) << 59));
  tfw_release(s);
  th_expect_error(tfw_mean(b, 0, NULL, false) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "mean", "int mean");
  th_expect_error(tfw_var(b, 0, NULL, 1, false) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "floating", "int var");
  tfw_release(b);
  th_expect_no_leaks();
}

Test(reduce, half_dtypes_compute_in_f32) {
  const int64_t shape[2] = {9, 70};
  const tfw_dtype dts[2] = {TFW_DTYPE_F16, TFW_DTYPE_BF16};
  const int ops[7] = {R_SUM, R_MEAN, R_AMAX, R_VAR, R_LSE, R_NORM, R_ANY};
  for (int di = 0; di < 2; di++)
    for (int oi = 0; oi < 7; oi++)
      for (int lay = 0; lay < 2; lay++) {
        tfw_tensor *t = make_input(lay, dts[di], 2, shape, 0, 2, 5 + oi);
        for (int s = 0; s < 3; s++) check_red(ops[oi], t, dlens[s], dsets[s], false, 1, 2, "half");
        tfw_release(t);
      }
  th_expect_no_leaks();
}

/* ---- larger shapes: every driver (row, column, split) and block boundaries ----------- */
Test(reduce, large_shapes_all_drivers) {
  const int64_t shapes[4][3] = {{3, 700, 41}, {2, 3, 40000}, {1300, 2, 30}, {70000, 1, 1}};
  for (int si = 0; si < 4; si++)
    for (int lay = 0; lay < 2; lay++) {
      tfw_tensor *t = make_input(lay, TFW_DTYPE_F32, 3, shapes[si], -1, 1, 40 + si);
      const int ops[5] = {R_SUM, R_AMAX, R_VAR, R_NORM, R_ANY};
      for (int oi = 0; oi < 5; oi++)
        for (int s = 0; s < 5; s++) check_red(ops[oi], t, dlens[s], dsets[s], false, 1, 2, "large");
      tfw_release(t);
    }
  th_expect_no_leaks();
}

Test(reduce, long_f32_sum_is_accurate_and_thread_independent) {
  const int64_t n = 1000000;
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 1, &n, 0, 1, 3);
  const float *x = tfw_tensor_data(t);
  double ref = 0;
  for (int64_t i = 0; i < n; i++) ref += (double)x[i];
  tfw_set_num_threads(1);
  tfw_tensor *s1 = tfw_sum(t, 0, NULL, false);
  tfw_set_num_threads(2);
  tfw_tensor *s2 = tfw_sum(t, 0, NULL, false);
  float a = *(const float *)tfw_tensor_data(s1), b = *(const float *)tfw_tensor_data(s2);
  cr_assert(fabs((double)a - ref) <= 1e-7 * fabs(ref) + 1e-3, "sum %.9g vs double %.9g", a, ref);
  cr_assert(memcmp(&a, &b, sizeof a) == 0, "1 thread %.9g, 2 threads %.9g", a, b);
  tfw_release(s1), tfw_release(s2), tfw_release(t);

  /* every driver and the scans/softmax give the same bits for 1 and 2 threads */
  const int64_t sh[2] = {300, 1500};
  tfw_tensor *m = th_random_strided(TFW_DTYPE_F32, 2, sh, -3, 3, 9);
  for (int k = 0; k < 8; k++) {
    tfw_tensor *r[2];
    for (int th = 0; th < 2; th++) {
      tfw_set_num_threads(th + 1);
      int d0 = 0, d1 = 1;
      switch (k) {
      case 0: r[th] = tfw_sum(m, 1, &d0, false); break;
      case 1: r[th] = tfw_sum(m, 1, &d1, false); break;
      case 2: r[th] = tfw_var(m, 0, NULL, 1, false); break;
      case 3: r[th] = tfw_logsumexp(m, 1, &d0, false); break;
      case 4: r[th] = tfw_cumsum(m, 0); break;
      case 5: r[th] = tfw_softmax(m, 0); break;
      case 6: r[th] = tfw_log_softmax(m, 1); break;
      default: r[th] = tfw_argmax(m, 0, false); break;
      }
      cr_assert(r[th], "%s", tfw_last_error());
    }
    tfw_set_num_threads(2);
    int64_t bytes = tfw_tensor_numel(r[0]) * (int64_t)tfw_dtype_size(tfw_tensor_dtype(r[0]));
    cr_assert(memcmp(tfw_tensor_data(r[0]), tfw_tensor_data(r[1]), (size_t)bytes) == 0,
              "case %d differs between 1 and 2 threads", k);
    tfw_release(r[0]), tfw_release(r[1]);
  }
  tfw_release(m);
  th_expect_no_leaks();
}

/* ---- edge cases --------------------------------------------------------------------- */
static double item(const tfw_tensor *t) {
  double v = -12345;
  cr_assert(t, "%s", tfw_last_error());
  cr_assert_eq(tfw_item(t, &v), TFW_OK, "%s", tfw_last_error());
  return v;
}
/* The value of a one-element result, which it releases. */
static double take(tfw_tensor *t) {
  double v = item(t);
  tfw_release(t);
  return v;
}

Test(reduce, empty_scalar_and_size_one) {
  const int64_t e[2] = {0, 3};
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_F32, 2, e);
  int d0 = 0, d1 = 1;
  double zeros[3] = {0, 0, 0}, ones[3] = {1, 1, 1}, nans[3] = {NAN, NAN, NAN};
  double ninf[3] = {-INFINITY, -INFINITY, -INFINITY};
  int64_t three = 3, zero = 0;
  tfw_tensor *r = tfw_sum(z, 1, &d0, false);
  th_expect_close(r, TFW_DTYPE_F32, 1, &three, zeros, 0, 0, "sum of empty");
  tfw_release(r);
  r = tfw_prod(z, 1, &d0, false);
  th_expect_close(r, TFW_DTYPE_F32, 1, &three, ones, 0, 0, "prod of empty");
  tfw_release(r);
  r = tfw_mean(z, 1, &d0, false);
  th_expect_close(r, TFW_DTYPE_F32, 1, &three, nans, 0, 0, "mean of empty");
  tfw_release(r);
  r = tfw_logsumexp(z, 1, &d0, false);
  th_expect_close(r, TFW_DTYPE_F32, 1, &three, ninf, 0, 0, "logsumexp of empty");
  tfw_release(r);
  r = tfw_amax(z, 1, &d1, false); /* reducing the non-empty dim is fine */
  th_expect_close(r, TFW_DTYPE_F32, 1, &zero, NULL, 0, 0, "amax over dim 1");
  tfw_release(r);
  r = tfw_all(z, 0, NULL, false);
  cr_assert_eq(item(r), 1.0);
  tfw_release(r);
  r = tfw_any(z, 0, NULL, false);
  cr_assert_eq(item(r), 0.0);
  tfw_release(r);
  th_expect_error(tfw_amax(z, 1, &d0, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "amax: cannot reduce over a zero-size dimension", "amax empty");
  th_expect_error(tfw_amin(z, 0, NULL, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "amin", "amin empty");
  th_expect_error(tfw_max(z) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "zero-size", "max empty");
  th_expect_error(tfw_argmax(z, 0, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "argmax", "argmax empty");
  th_expect_error(tfw_norm(z, INFINITY, 0, NULL, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "norm", "norm inf empty");
  r = tfw_argmax(z, 1, true);
  const int64_t s01[2] = {0, 1};
  th_expect_close(r, TFW_DTYPE_I64, 2, s01, NULL, 0, 0, "argmax over the non-empty dim");
  tfw_release(r);
  r = tfw_cumsum(z, 0);
  th_expect_close(r, TFW_DTYPE_F32, 2, e, NULL, 0, 0, "cumsum of empty");
  tfw_release(r);
  r = tfw_softmax(z, 1);
  th_expect_close(r, TFW_DTYPE_F32, 2, e, NULL, 0, 0, "softmax of empty");
  tfw_release(r);
  tfw_release(z);

  /* 0-d scalars: dims 0 and -1 are accepted, the result is 0-d */
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F64, -2.5);
  int m1 = -1;
  for (int op = 0; op < R_N; op++) {
    tfw_tensor *a = call_red(op, s, 1, &m1, false, 0, 2);
    tfw_tensor *b = call_red(op, s, 0, NULL, true, 0, 2);
    cr_assert(a && b && tfw_tensor_ndim(a) == 0 && tfw_tensor_ndim(b) == 0, "%s of 0-d: %s", rname[op], tfw_last_error());
    tfw_release(a), tfw_release(b);
  }
  cr_assert_eq(take(tfw_sum(s, 0, NULL, false)), -2.5);
  cr_assert_eq(take(tfw_max(s)), -2.5);
  cr_assert_eq(take(tfw_argmax(s, 0, false)), 0);
  cr_assert_eq(take(tfw_cumprod(s, -1)), -2.5);
  cr_assert_eq(take(tfw_softmax(s, 0)), 1.0);
  cr_assert_eq(take(tfw_log_softmax(s, 0)), 0.0);
  cr_assert(isnan(take(tfw_var(s, 0, NULL, 1, false))));
  th_expect_error(tfw_sum(s, 1, (int[]){1}, false) ? TFW_OK : tfw_last_status(), TFW_EINDEX, "out of range", "0-d dim 1");
  tfw_release(s);

  /* size-1 dims and negative dims */
  const int64_t sh[4] = {1, 4, 1, 3};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 4, sh, -1, 1, 77);
  const int dd[3][2] = {{-2, -4}, {2, 0}, {-1, 1}};
  for (int k = 0; k < 3; k++)
    for (int op = 0; op < R_N; op++) check_red(op, t, 2, dd[k], k == 1, 1, 2, "size-1 dims");
  tfw_release(t);
  th_expect_no_leaks();
}

Test(reduce, nan_and_var_correction) {
  const int64_t n = 5;
  double v[5] = {1, NAN, 3, NAN, -1};
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F64, 1, &n, v);
  cr_assert(isnan(take(tfw_amax(t, 0, NULL, false))));
  cr_assert(isnan(take(tfw_amin(t, 0, NULL, false))));
  cr_assert(isnan(take(tfw_max(t))));
  cr_assert(isnan(take(tfw_min(t))));
  cr_assert_eq(take(tfw_argmax(t, 0, false)), 1);
  cr_assert_eq(take(tfw_argmin(t, 0, false)), 1);
  cr_assert(isnan(take(tfw_logsumexp(t, 0, NULL, false))));
  cr_assert_eq(take(tfw_any(t, 0, NULL, false)), 1);
  tfw_tensor *sm = tfw_softmax(t, 0);
  double *sv = th_values(sm);
  for (int i = 0; i < 5; i++) cr_assert(isnan(sv[i]), "softmax with NaN: element %d is %g", i, sv[i]);
  free(sv), tfw_release(sm), tfw_release(t);

  /* ties: the first index wins; max_dim reports values and indices */
  float w[6] = {2, 5, 5, 1, 1, 0};
  const int64_t s23[2] = {2, 3};
  t = tfw_from_data(TFW_DTYPE_F32, 2, s23, w);
  tfw_tensor *vals, *idx;
  cr_assert_eq(tfw_max_dim(t, 1, false, &vals, &idx), TFW_OK);
  const int64_t two = 2;
  th_expect_close(vals, TFW_DTYPE_F32, 1, &two, (double[]){5, 1}, 0, 0, "max_dim values");
  th_expect_close(idx, TFW_DTYPE_I64, 1, &two, (double[]){1, 0}, 0, 0, "max_dim indices");
  tfw_release(vals), tfw_release(idx);
  cr_assert_eq(tfw_min_dim(t, -1, true, NULL, &idx), TFW_OK);
  const int64_t s21[2] = {2, 1};
  th_expect_close(idx, TFW_DTYPE_I64, 2, s21, (double[]){0, 2}, 0, 0, "min_dim indices");
  tfw_release(idx), tfw_release(t);

  /* infinities: logsumexp of [-inf, -inf] is -inf, of [inf, 1] is inf */
  double inf2[2] = {-INFINITY, -INFINITY}, inf3[2] = {INFINITY, 1};
  const int64_t n2 = 2;
  t = tfw_from_data(TFW_DTYPE_F64, 1, &n2, inf2);
  cr_assert_eq(take(tfw_logsumexp(t, 0, NULL, false)), -INFINITY);
  tfw_release(t);
  t = tfw_from_data(TFW_DTYPE_F64, 1, &n2, inf3);
  cr_assert_eq(take(tfw_logsumexp(t, 0, NULL, false)), INFINITY);
  tfw_release(t);

  /* var with correction >= N: divisor max(0, N - correction) = 0, like PyTorch */
  double two_v[2] = {1, 2}, one_v[1] = {4};
  const int64_t n1 = 1;
  t = tfw_from_data(TFW_DTYPE_F64, 1, &n2, two_v);
  cr_assert_eq(take(tfw_var(t, 0, NULL, 2, false)), INFINITY);
  cr_assert_eq(take(tfw_var(t, 0, NULL, 3, false)), INFINITY);
  cr_assert_eq(take(tfw_var(t, 0, NULL, 0, false)), 0.25);
  cr_assert_eq(take(tfw_std(t, 0, NULL, 1, false)), sqrt(0.5));
  tfw_release(t);
  t = tfw_from_data(TFW_DTYPE_F64, 1, &n1, one_v);
  cr_assert(isnan(take(tfw_var(t, 0, NULL, 1, false))));
  tfw_release(t);
  th_expect_no_leaks();
}

/* ---- arg reductions ------------------------------------------------------------------ */
static void check_arg(const tfw_tensor *t, int dim, bool keep, const char *what) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *sh = tfw_tensor_shape(t);
  int d = dim < 0 ? dim + nd : dim;
  int64_t A = 1, R = sh[d], B = 1;
  for (int k = 0; k < nd; k++) {
    if (k < d) A *= sh[k];
    if (k > d) B *= sh[k];
  }
  double *x = th_values(t);
  double *rv[2], *ri[2];
  for (int m = 0; m < 2; m++) rv[m] = malloc(sizeof(double) * (size_t)(A * B)), ri[m] = malloc(sizeof(double) * (size_t)(A * B));
  for (int64_t a = 0; a < A; a++)
    for (int64_t b = 0; b < B; b++)
      for (int m = 0; m < 2; m++) {
        double best = 0;
        int64_t bi = -1;
        for (int64_t r = 0; r < R; r++) {
          double v = x[(a * R + r) * B + b];
          bool better = m == 0 ? (v > best || (isnan(v) && !isnan(best))) : (v < best || (isnan(v) && !isnan(best)));
          if (bi < 0 || better) best = v, bi = r;
        }
        rv[m][a * B + b] = best, ri[m][a * B + b] = (double)bi;
      }
  int64_t os[TFW_MAX_DIMS];
  int ond = 0;
  for (int k = 0; k < nd; k++)
    if (k != d) os[ond++] = sh[k];
    else if (keep) os[ond++] = 1;
  tfw_dtype dt = tfw_tensor_dtype(t);
  for (int m = 0; m < 2; m++) {
    tfw_tensor *i1 = m == 0 ? tfw_argmax(t, dim, keep) : tfw_argmin(t, dim, keep);
    th_expect_close(i1, TFW_DTYPE_I64, ond, os, ri[m], 0, 0, what);
    tfw_tensor *v, *i2;
    tfw_status st = m == 0 ? tfw_max_dim(t, dim, keep, &v, &i2) : tfw_min_dim(t, dim, keep, &v, &i2);
    cr_assert_eq(st, TFW_OK, "%s", tfw_last_error());
    th_expect_close(i2, TFW_DTYPE_I64, ond, os, ri[m], 0, 0, what);
    th_expect_close(v, dt, ond, os, rv[m], 0, 0, what);
    tfw_release(i1), tfw_release(i2), tfw_release(v);
    free(rv[m]), free(ri[m]);
  }
  free(x);
}

Test(reduce, argmax_argmin_max_dim_min_dim) {
  const int64_t shape[3] = {4, 30, 17};
  const tfw_dtype dts[8] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16,
                            TFW_DTYPE_I8, TFW_DTYPE_U8, TFW_DTYPE_I32, TFW_DTYPE_BOOL};
  for (int di = 0; di < 8; di++)
    for (int lay = 0; lay < 3; lay++) {
      /* integer-valued data so ties occur in every dtype */
      tfw_tensor *t = make_input(lay, dts[di], 3, shape, 0, 6, 50 + di * 3 + lay);
      for (int dim = -3; dim < 3; dim++) check_arg(t, dim, dim & 1, "arg");
      tfw_release(t);
    }
  const int64_t big[2] = {3, 100000};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, big, -1, 1, 5);
  check_arg(t, 1, false, "long rows");
  check_arg(t, 0, false, "columns");
  tfw_tensor *f = tfw_flatten(t, 0, 1);
  check_arg(f, 0, false, "split driver");
  tfw_release(f), tfw_release(t);
  th_expect_no_leaks();
}

/* ---- scans ----------------------------------------------------------------------------- */
static void check_scan(const tfw_tensor *t, int dim, bool prod, const char *what) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *sh = tfw_tensor_shape(t);
  int d = nd == 0 ? 0 : dim < 0 ? dim + nd : dim;
  int64_t A = 1, R = nd ? sh[d] : 1, B = 1;
  for (int k = 0; k < nd; k++) {
    if (k < d) A *= sh[k];
    if (k > d) B *= sh[k];
  }
  double *x = th_values(t);
  double *ref = malloc(sizeof(double) * (size_t)(A * R * B + 1));
  for (int64_t a = 0; a < A; a++)
    for (int64_t b = 0; b < B; b++) {
      double acc = prod ? 1 : 0;
      for (int64_t r = 0; r < R; r++) {
        int64_t i = (a * R + r) * B + b;
        acc = prod ? acc * x[i] : acc + x[i];
        ref[i] = acc;
      }
    }
  tfw_dtype dt = tfw_tensor_dtype(t);
  tfw_tensor *y = prod ? tfw_cumprod(t, dim) : tfw_cumsum(t, dim);
  th_expect_close(y, tfw_dtype_is_floating(dt) ? dt : TFW_DTYPE_I64, nd, sh, ref, tol_for(dt),
                  tol_for(dt), what);
  tfw_release(y);
  free(x), free(ref);
}

Test(reduce, cumsum_cumprod) {
  const int64_t shape[3] = {3, 5, 300};
  const tfw_dtype dts[7] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_I8,
                            TFW_DTYPE_U8, TFW_DTYPE_I32, TFW_DTYPE_BOOL};
  for (int di = 0; di < 7; di++)
    for (int lay = 0; lay < 3; lay++)
      for (int prod = 0; prod < 2; prod++) {
        bool flt = tfw_dtype_is_floating(dts[di]);
        /* integer products stay in {-1, 0, 1} so the double reference is exact */
        tfw_tensor *t = make_input(lay, dts[di], 3, shape, prod ? (flt ? 0.9 : -1) : -2,
                                   prod ? (flt ? 1.1 : 2) : 3, 60 + di + lay);
        for (int dim = -3; dim < 3; dim++) check_scan(t, dim, prod, prod ? "cumprod" : "cumsum");
        tfw_release(t);
      }
  th_expect_no_leaks();
}

/* ---- softmax ---------------------------------------------------------------------------- */
static void check_softmax(const tfw_tensor *t, int dim, bool logsm, const char *what) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *sh = tfw_tensor_shape(t);
  int d = dim < 0 ? dim + nd : dim;
  int64_t A = 1, R = sh[d], B = 1;
  for (int k = 0; k < nd; k++) {
    if (k < d) A *= sh[k];
    if (k > d) B *= sh[k];
  }
  double *x = th_values(t);
  double *ref = malloc(sizeof(double) * (size_t)(A * R * B));
  for (int64_t a = 0; a < A; a++)
    for (int64_t b = 0; b < B; b++) {
      double m = -INFINITY, s = 0;
      for (int64_t r = 0; r < R; r++) m = fmax(m, x[(a * R + r) * B + b]);
      for (int64_t r = 0; r < R; r++) s += exp(x[(a * R + r) * B + b] - m);
      for (int64_t r = 0; r < R; r++) {
        int64_t i = (a * R + r) * B + b;
        ref[i] = logsm ? x[i] - m - log(s) : exp(x[i] - m) / s;
      }
    }
  tfw_dtype dt = tfw_tensor_dtype(t);
  double tol = dt == TFW_DTYPE_F32 ? 1e-5 : tol_for(dt);
  tfw_tensor *y = logsm ? tfw_log_softmax(t, dim) : tfw_softmax(t, dim);
  th_expect_close(y, dt, nd, sh, ref, tol, tol, what);
  tfw_release(y);
  free(x), free(ref);
}

Test(reduce, softmax_log_softmax) {
  const int64_t shape[3] = {3, 37, 300};
  const tfw_dtype dts[4] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16};
  for (int di = 0; di < 4; di++)
    for (int lay = 0; lay < 3; lay++)
      for (int lg = 0; lg < 2; lg++) {
        tfw_tensor *t = make_input(lay, dts[di], 3, shape, -8, 8, 70 + di + lay);
        for (int dim = -3; dim < 3; dim++) check_softmax(t, dim, lg, lg ? "log_softmax" : "softmax");
        tfw_release(t);
      }
  /* stability: huge logits do not overflow */
  float big[3] = {1000, 1001, -1000};
  const int64_t n3 = 3;
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F32, 1, &n3, big);
  check_softmax(t, 0, false, "large logits");
  check_softmax(t, 0, true, "large logits (log)");
  tfw_release(t);
  /* the fast exp against libm over the f32 range */
  for (float v = -105.0f; v < 88.72f; v += 0.01f) {
    double e = exp((double)v), g = (double)tfw__expf_fast(v);
    cr_assert(fabs(g - e) <= 4e-7 * e + 1.5e-45, "exp(%g): %.9g vs %.9g", v, g, e);
  }
  cr_assert(isnan(tfw__expf_fast(NAN)));
  cr_assert_eq(tfw__expf_fast(-INFINITY), 0.0f);
  cr_assert_eq(tfw__expf_fast(INFINITY), INFINITY);
  cr_assert_eq(tfw__expf_fast(88.8f), INFINITY);
  cr_assert_eq(tfw__expf_fast(-104.5f), 0.0f);
  th_expect_no_leaks();
}

/* ---- errors ----------------------------------------------------------------------------- */
#define EXPECT_NULL(expr, code, needle) \
  th_expect_error((expr) ? TFW_OK : tfw_last_status(), code, needle, #expr)

Test(reduce, errors) {
  const int64_t sh[2] = {2, 3};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, sh, -1, 1, 1);
  tfw_tensor *i = th_random(TFW_DTYPE_I32, 2, sh, -1, 1, 1);
  int bad = 2, neg = -3, dup[2] = {1, -1};
  EXPECT_NULL(tfw_sum(NULL, 0, NULL, false), TFW_EVALUE, "sum");
  EXPECT_NULL(tfw_sum(t, 1, &bad, false), TFW_EINDEX, "sum: dimension 2 out of range");
  EXPECT_NULL(tfw_mean(t, 1, &neg, false), TFW_EINDEX, "mean");
  EXPECT_NULL(tfw_sum(t, 2, dup, false), TFW_EVALUE, "appears twice");
  EXPECT_NULL(tfw_sum(t, -1, NULL, false), TFW_EVALUE, "ndims");
  EXPECT_NULL(tfw_sum(t, 9, dup, false), TFW_EVALUE, "ndims");
  EXPECT_NULL(tfw_amax(t, 1, NULL, false), TFW_EVALUE, "dims is NULL");
  EXPECT_NULL(tfw_mean(i, 0, NULL, false), TFW_EDTYPE, "mean: 't' must be a floating-point tensor, got int32");
  EXPECT_NULL(tfw_std(i, 0, NULL, 1, false), TFW_EDTYPE, "std");
  EXPECT_NULL(tfw_logsumexp(i, 0, NULL, false), TFW_EDTYPE, "logsumexp");
  EXPECT_NULL(tfw_norm(i, 2, 0, NULL, false), TFW_EDTYPE, "norm");
  EXPECT_NULL(tfw_norm(t, NAN, 0, NULL, false), TFW_EVALUE, "ord");
  EXPECT_NULL(tfw_softmax(i, 0), TFW_EDTYPE, "softmax");
  EXPECT_NULL(tfw_log_softmax(t, 2), TFW_EINDEX, "log_softmax");
  EXPECT_NULL(tfw_softmax(NULL, 0), TFW_EVALUE, "softmax");
  EXPECT_NULL(tfw_argmax(t, -3, false), TFW_EINDEX, "argmax");
  EXPECT_NULL(tfw_cumsum(t, 5), TFW_EINDEX, "cumsum");
  EXPECT_NULL(tfw_cumprod(NULL, 0), TFW_EVALUE, "cumprod");
  EXPECT_NULL(tfw_max(NULL), TFW_EVALUE, "max");
  tfw_tensor *v = (tfw_tensor *)1, *ix = (tfw_tensor *)1;
  th_expect_error(tfw_max_dim(t, 7, false, &v, &ix), TFW_EINDEX, "max_dim", "max_dim dim");
  cr_assert(v == NULL && ix == NULL, "outputs are NULL on error");
  th_expect_error(tfw_min_dim(NULL, 0, false, &v, NULL), TFW_EVALUE, "min_dim", "min_dim NULL");
  /* out of memory on every allocation of a var over an f16 input: clean errors, no leaks */
  tfw_tensor *h = tfw_to_dtype(t, TFW_DTYPE_F16);
  for (int k = 1; k < 8; k++) {
    tfw_memory_fail_at(k, false);
    tfw_tensor *r = tfw_var(h, 1, &dup[0], 1, false);
    tfw_memory_fail_at(0, false);
    if (!r) cr_assert_eq(tfw_last_status(), TFW_ENOMEM, "fail at %d: %s", k, tfw_last_error());
    tfw_release(r);
    tfw_memory_fail_at(k, false);
    r = tfw_cumsum(h, 0);
    tfw_memory_fail_at(0, false);
    if (!r) cr_assert_eq(tfw_last_status(), TFW_ENOMEM, "cumsum fail at %d: %s", k, tfw_last_error());
    tfw_release(r);
    tfw_memory_fail_at(k, false);
    r = tfw_softmax(h, 0);
    tfw_memory_fail_at(0, false);
    if (!r) cr_assert_eq(tfw_last_status(), TFW_ENOMEM, "softmax fail at %d: %s", k, tfw_last_error());
    tfw_release(r);
  }
  tfw_release(h), tfw_release(t), tfw_release(i);
  th_expect_no_leaks();
}

/* ---- registry samples -------------------------------------------------------------------- */
Test(reduce, registry_samples_run) {
  const char *names[] = {"sum", "mean", "var", "std", "prod", "amax", "amin", "logsumexp",
                         "norm", "all", "any", "max", "min", "argmax", "argmin", "max_dim",
                         "min_dim", "cumsum", "cumprod", "softmax", "log_softmax"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    const tfw__op_def *op = tfw__op_find(names[k]);
    cr_assert(op, "op %s is not registered", names[k]);
    tfw__call calls[4];
    int n = op->sample(op, calls, 4);
    cr_assert(n >= 2, "%s: %d samples", names[k], n);
    for (int s = 0; s < n; s++) {
      tfw_tensor *out[TFW__MAX_OUT];
      tfw_status st = tfw__op_run_multi(&calls[s], out);
      cr_assert_eq(st, TFW_OK, "%s sample %d: %s", names[k], s, tfw_last_error());
      for (int o = 0; o < op->n_out; o++) tfw_release(out[o]);
    }
    tfw__samples_free(calls, n);
  }
  th_expect_no_leaks();
}
