/* Elementwise ops against naive double-precision reference loops, generated from the
 * registry samples, plus promotion rules, special values and error inputs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

static double floordiv_ref(double a, double b) { return floor(a / b); }
static double rem_ref(double a, double b) {
  double r = fmod(a, b);
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

/* Reference of op on doubles; is_int: the compute dtype is integral. */
static double ref2(tfw__op_id id, double x, double y, bool is_int) {
  switch (id) {
  case TFW__OP_add: return x + y;
  case TFW__OP_sub: return x - y;
  case TFW__OP_mul: return x * y;
  case TFW__OP_div: return x / y;
  case TFW__OP_floor_div: return floordiv_ref(x, y);
  case TFW__OP_remainder: return rem_ref(x, y);
  case TFW__OP_pow: return is_int && y < 0 ? 0 : pow(x, y);
  case TFW__OP_minimum: return isnan(x) || isnan(y) ? NAN : fmin(x, y);
  case TFW__OP_maximum: return isnan(x) || isnan(y) ? NAN : fmax(x, y);
  case TFW__OP_eq: return x == y;
  case TFW__OP_ne: return x != y;
  case TFW__OP_lt: return x < y;
  case TFW__OP_le: return x <= y;
  case TFW__OP_gt: return x > y;
  case TFW__OP_ge: return x >= y;
  case TFW__OP_logical_and: return (x != 0) && (y != 0);
  case TFW__OP_logical_or: return (x != 0) || (y != 0);
  case TFW__OP_logical_xor: return (x != 0) != (y != 0);
  case TFW__OP_bitwise_and: return (double)((int64_t)x & (int64_t)y);
  case TFW__OP_bitwise_or: return (double)((int64_t)x | (int64_t)y);
  case TFW__OP_bitwise_xor: return (double)((int64_t)x ^ (int64_t)y);
  default: cr_assert_fail("no binary reference for %s", tfw__ops[id].name); return 0;
  }
}

static double ref1(const tfw__call *c, double x, bool is_bool) {
  switch (c->op->id) {
  case TFW__OP_neg: return -x;
  case TFW__OP_abs: return fabs(x);
  case TFW__OP_sign: return isnan(x) ? x : (double)((x > 0) - (x < 0));
  case TFW__OP_relu: return x > 0 || isnan(x) ? x : 0;
  case TFW__OP_sqrt: return sqrt(x);
  case TFW__OP_rsqrt: return 1 / sqrt(x);
  case TFW__OP_exp: return exp(x);
  case TFW__OP_exp2: return exp2(x);
  case TFW__OP_log: return log(x);
  case TFW__OP_log2: return log2(x);
  case TFW__OP_log1p: return log1p(x);
  case TFW__OP_expm1: return expm1(x);
  case TFW__OP_sin: return sin(x);
  case TFW__OP_cos: return cos(x);
  case TFW__OP_tan: return tan(x);
  case TFW__OP_tanh: return tanh(x);
  case TFW__OP_sigmoid: return 1 / (1 + exp(-x));
  case TFW__OP_erf: return erf(x);
  case TFW__OP_gelu: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
  case TFW__OP_isnan: return isnan(x);
  case TFW__OP_isinf: return isinf(x);
  case TFW__OP_logical_not: return x == 0;
  case TFW__OP_bitwise_not: return is_bool ? (x == 0) : (double)~(int64_t)x;
  case TFW__OP_clamp: {
    double lo = c->a.f[0], hi = c->a.f[1];
    return fmin(fmax(x, lo), hi);
  }
  case TFW__OP_nan_to_num: return isnan(x) ? c->a.f[0] : x;
  default: cr_assert_fail("no unary reference for %s", c->op->name); return 0;
  }
}

/* Index of output element i (row-major over out_shape) in input t (broadcast). */
static int64_t bidx(const tfw_tensor *t, int out_nd, const int64_t *out_shape, int64_t i) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *sh = tfw_tensor_shape(t);
  int64_t idx = 0, mult = 1;
  for (int d = out_nd - 1; d >= 0; d--) {
    int64_t k = i % out_shape[d];
    i /= out_shape[d];
    int td = d - (out_nd - nd);
    if (td >= 0) {
      if (sh[td] != 1) idx += k * mult;
      mult *= sh[td];
    }
  }
  return idx;
}

static double round_to(double v, tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return (float)v;
  case TFW_DTYPE_F16: return tfw_f16_to_f32(tfw_f32_to_f16((float)v));
  case TFW_DTYPE_BF16: return tfw_bf16_to_f32(tfw_f32_to_bf16((float)v));
  case TFW_DTYPE_BOOL: return v != 0;
  case TFW_DTYPE_U8: return (uint8_t)(int64_t)v; /* integer results wrap */
  case TFW_DTYPE_I8: return (int8_t)(int64_t)v;
  case TFW_DTYPE_I32: return (int32_t)(int64_t)v;
  default: return v;
  }
}

static void check_call(const tfw__call *c, int sample) {
  tfw_tensor *out = tfw__op_run(c);
  cr_assert(out != NULL, "%s sample %d failed: %s", c->op->name, sample, tfw_last_error());
  int nd = tfw_tensor_ndim(out);
  const int64_t *shape = tfw_tensor_shape(out);
  int64_t n = tfw_tensor_numel(out);
  double *in[3];
  for (int k = 0; k < c->n_in; k++) in[k] = th_values(c->in[k]);
  double *ref = malloc(sizeof(double) * (size_t)(n ? n : 1));
  tfw_dtype odt = tfw_tensor_dtype(out);
  bool is_int = !tfw_dtype_is_floating(odt);
  for (int64_t i = 0; i < n; i++) {
    double x = in[0][bidx(c->in[0], nd, shape, i)];
    double r;
    if (c->op->id == TFW__OP_where) {
      double a = in[1][bidx(c->in[1], nd, shape, i)], b = in[2][bidx(c->in[2], nd, shape, i)];
      r = x != 0 ? a : b;
    } else if (c->op->id == TFW__OP_masked_fill) {
      double m = in[1][bidx(c->in[1], nd, shape, i)];
      r = m != 0 ? c->a.f[0] : x;
    } else if (c->n_in == 2) {
      double y = in[1][bidx(c->in[1], nd, shape, i)];
      /* inputs are rounded to the compute dtype first (f16 -> f32 exact) */
      r = ref2(c->op->id, x, y, is_int);
    } else {
      r = ref1(c, x, tfw_tensor_dtype(c->in[0]) == TFW_DTYPE_BOOL);
    }
    ref[i] = round_to(r, odt);
  }
  /* f32 transcendental math in float: a few ulp; half types: one rounding of the result */
  double rtol = th_eps(odt) * 4, atol = th_eps(odt) * 4;
  char what[96];
  snprintf(what, sizeof what, "%s sample %d (%s)", c->op->name, sample, tfw_dtype_name(odt));
  th_expect_close(out, odt, nd, shape, ref, rtol, atol, what);
  for (int k = 0; k < c->n_in; k++) free(in[k]);
  free(ref);
  tfw_release(out);
}

Test(elementwise, registry_samples_match_reference) {
  int checked = 0;
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    /* the ops of elementwise.def (the activations of activation.def are checked against
     * PyTorch in test_activation.c) */
    if (!(op->flags & TFW__OPF_ELEMWISE) || id > TFW__OP_masked_fill) continue;
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 1, "%s has no samples", op->name);
    for (int s = 0; s < n; s++) check_call(&calls[s], s);
    tfw__samples_free(calls, n);
    checked++;
  }
  cr_assert(checked >= 45, "only %d elementwise ops checked", checked);
  th_expect_no_leaks();
}

Test(elementwise, large_contiguous_and_threads_bit_identical) {
  int64_t shape[1] = {300001};
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 1, shape, -4, 4, 1);
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 1, shape, -4, 4, 2);
  tfw_tensor *(*fns[])(const tfw_tensor *) = {tfw_exp, tfw_tanh, tfw_gelu, tfw_sigmoid, tfw_erf};
  for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++) {
    tfw_set_num_threads(1);
    tfw_tensor *r1 = fns[f](a);
    tfw_set_num_threads(2);
    tfw_tensor *r2 = fns[f](a);
    cr_assert(memcmp(tfw_tensor_data(r1), tfw_tensor_data(r2), 300001 * 4) == 0, "fn %zu", f);
    tfw_release(r1);
    tfw_release(r2);
  }
  tfw_tensor *s = tfw_add(a, b);
  double *va = th_values(a), *vb = th_values(b);
  double *ref = malloc(sizeof(double) * 300001);
  for (int i = 0; i < 300001; i++) ref[i] = (float)(va[i] + vb[i]);
  th_expect_close(s, TFW_DTYPE_F32, 1, shape, ref, 0, 0, "add large");
  free(va), free(vb), free(ref);
  tfw_release(s);
  tfw_release(a);
  tfw_release(b);
  th_expect_no_leaks();
}

Test(elementwise, promotion_rules) {
  struct { tfw_dtype a, b; bool a0d, b0d; tfw_dtype want; } cases[] = {
    {TFW_DTYPE_I32, TFW_DTYPE_F32, false, false, TFW_DTYPE_F32},
    {TFW_DTYPE_U8, TFW_DTYPE_I8, false, false, TFW_DTYPE_I32},
    {TFW_DTYPE_F16, TFW_DTYPE_BF16, false, false, TFW_DTYPE_F32},
    {TFW_DTYPE_BOOL, TFW_DTYPE_U8, false, false, TFW_DTYPE_U8},
    {TFW_DTYPE_I32, TFW_DTYPE_I64, false, true, TFW_DTYPE_I32},  /* 0-d int does not widen */
    {TFW_DTYPE_I32, TFW_DTYPE_F64, false, true, TFW_DTYPE_F64},  /* 0-d float: higher category */
    {TFW_DTYPE_F16, TFW_DTYPE_F64, false, true, TFW_DTYPE_F16},  /* same category: dim wins */
    {TFW_DTYPE_I64, TFW_DTYPE_F32, true, true, TFW_DTYPE_F32},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int64_t s[1] = {3};
    tfw_tensor *a = cases[k].a0d ? tfw_scalar(cases[k].a, 1) : tfw_ones(cases[k].a, 1, s);
    tfw_tensor *b = cases[k].b0d ? tfw_scalar(cases[k].b, 2) : tfw_ones(cases[k].b, 1, s);
    tfw_tensor *r = tfw_add(a, b);
    cr_assert(r, "%s", tfw_last_error());
    cr_assert_eq(tfw_tensor_dtype(r), cases[k].want, "case %zu: got %s want %s", k,
                 tfw_dtype_name(tfw_tensor_dtype(r)), tfw_dtype_name(cases[k].want));
    tfw_release(a), tfw_release(b), tfw_release(r);
  }
  /* wrapped C scalars */
  int64_t s[1] = {2};
  tfw_tensor *i = tfw_ones(TFW_DTYPE_I32, 1, s), *h = tfw_ones(TFW_DTYPE_F16, 1, s);
  tfw_tensor *r1 = tfw_add_scalar(i, 2.5), *r2 = tfw_add_scalar(i, 2.0), *r3 = tfw_mul_scalar(h, 2.5);
  cr_assert_eq(tfw_tensor_dtype(r1), TFW_DTYPE_F32);
  cr_assert_eq(tfw_tensor_dtype(r2), TFW_DTYPE_I32);
  cr_assert_eq(tfw_tensor_dtype(r3), TFW_DTYPE_F16);
  double v;
  cr_assert(tfw_tensor_get(r1, (int64_t[]){1}, &v) == TFW_OK && v == 3.5);
  tfw_tensor *d = tfw_div(i, i);
  cr_assert_eq(tfw_tensor_dtype(d), TFW_DTYPE_F32);
  tfw_release(i), tfw_release(h), tfw_release(r1), tfw_release(r2), tfw_release(r3), tfw_release(d);
  th_expect_no_leaks();
}

Test(elementwise, integer_semantics) {
  int64_t s[1] = {6};
  int32_t av[6] = {7, -7, 7, -7, INT32_MIN, 5};
  int32_t bv[6] = {2, 2, -2, -2, -1, 3};
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_I32, 1, s, av), *b = tfw_from_data(TFW_DTYPE_I32, 1, s, bv);
  tfw_tensor *q = tfw_floor_div(a, b), *r = tfw_remainder(a, b), *m = tfw_mul(a, a);
  int32_t *qv = tfw_tensor_data(q), *rv = tfw_tensor_data(r), *mv = tfw_tensor_data(m);
  int32_t wq[6] = {3, -4, -4, 3, INT32_MIN, 1}, wr[6] = {1, 1, -1, -1, 0, 2};
  for (int i = 0; i < 6; i++) {
    cr_assert_eq(qv[i], wq[i], "floor_div[%d] = %d, want %d", i, qv[i], wq[i]);
    cr_assert_eq(rv[i], wr[i], "remainder[%d] = %d, want %d", i, rv[i], wr[i]);
  }
  cr_assert_eq(mv[4], 0); /* INT32_MIN * INT32_MIN wraps to 0 */
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_I32, 1, s);
  th_expect_error(tfw_floor_div(a, z) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "division by zero",
                  "floor_div by zero");
  th_expect_error(tfw_remainder(a, z) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "remainder",
                  "remainder by zero");
  tfw_release(a), tfw_release(b), tfw_release(q), tfw_release(r), tfw_release(m), tfw_release(z);
  th_expect_no_leaks();
}

Test(elementwise, special_values) {
  int64_t s[1] = {5};
  float av[5] = {NAN, INFINITY, -INFINITY, -0.0f, 1.0f};
  float bv[5] = {1.0f, NAN, 2.0f, 0.0f, 0.0f};
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_F32, 1, s, av), *b = tfw_from_data(TFW_DTYPE_F32, 1, s, bv);
  tfw_tensor *mx = tfw_maximum(a, b), *mn = tfw_minimum(a, b), *dv = tfw_div(a, b);
  float *x = tfw_tensor_data(mx), *n = tfw_tensor_data(mn), *d = tfw_tensor_data(dv);
  cr_assert(isnan(x[0]) && isnan(x[1]) && x[2] == 2.0f && n[2] == -INFINITY);
  cr_assert(isinf(d[4]) && d[4] > 0);
  tfw_tensor *nn = tfw_nan_to_num(a, 0.0, NAN, NAN);
  float *v = tfw_tensor_data(nn);
  cr_assert(v[0] == 0 && v[1] == 3.4028234663852886e38f && v[2] == -3.4028234663852886e38f);
  tfw_tensor *isn = tfw_isnan(a), *isi = tfw_isinf(a);
  bool *bn = tfw_tensor_data(isn), *bi = tfw_tensor_data(isi);
  cr_assert(bn[0] && !bn[1] && bi[1] && bi[2] && !bi[4]);
  tfw_tensor *cl = tfw_clamp(a, NAN, 0.5);
  float *c = tfw_tensor_data(cl);
  cr_assert(isnan(c[0]) && c[1] == 0.5f && c[2] == -INFINITY && c[4] == 0.5f);
  tfw_release(a), tfw_release(b), tfw_release(mx), tfw_release(mn), tfw_release(dv);
  tfw_release(nn), tfw_release(isn), tfw_release(isi), tfw_release(cl);
  th_expect_no_leaks();
}

Test(elementwise, errors) {
  int64_t s23[2] = {2, 3}, s4[1] = {4};
  tfw_tensor *a = tfw_ones(TFW_DTYPE_F32, 2, s23), *b = tfw_ones(TFW_DTYPE_F32, 1, s4);
  tfw_tensor *bl = tfw_ones(TFW_DTYPE_BOOL, 1, s4), *f = tfw_ones(TFW_DTYPE_F32, 1, s4);
  th_expect_error(tfw_add(a, b) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "add: shapes [2, 3] and [4] cannot be broadcast", "broadcast mismatch");
  th_expect_error(tfw_add(a, NULL) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "add: input 1 is NULL",
                  "NULL input");
  th_expect_error(tfw_sub(bl, bl) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "sub", "bool sub");
  th_expect_error(tfw_neg(bl) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "neg", "bool neg");
  th_expect_error(tfw_bitwise_and(f, f) ? TFW_OK : tfw_last_status(), TFW_EDTYPE,
                  "bitwise_and: needs integral", "float bitwise");
  th_expect_error(tfw_where(f, f, f) ? TFW_OK : tfw_last_status(), TFW_EDTYPE,
                  "where: condition must be a bool tensor, got float32", "where cond");
  th_expect_error(tfw_masked_fill(f, f, 1) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "masked_fill",
                  "mask dtype");
  tfw_tensor *i = tfw_ones(TFW_DTYPE_I32, 1, s4);
  th_expect_error(tfw_gelu(i) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "gelu", "gelu int");
  tfw_release(a), tfw_release(b), tfw_release(bl), tfw_release(f), tfw_release(i);
  th_expect_no_leaks();
}

Test(elementwise, empty_and_scalar) {
  int64_t s0[2] = {0, 3}, s3[1] = {3};
  tfw_tensor *e = tfw_ones(TFW_DTYPE_F32, 2, s0), *v = tfw_ones(TFW_DTYPE_F32, 1, s3);
  tfw_tensor *r = tfw_add(e, v);
  cr_assert(r && tfw_tensor_numel(r) == 0 && tfw_tensor_shape(r)[0] == 0 && tfw_tensor_shape(r)[1] == 3);
  tfw_tensor *x = tfw_scalar(TFW_DTYPE_F64, 2), *y = tfw_scalar(TFW_DTYPE_F64, 3);
  tfw_tensor *p = tfw_pow(x, y);
  double d;
  cr_assert(tfw_tensor_ndim(p) == 0 && tfw_item(p, &d) == TFW_OK && d == 8.0);
  tfw_release(e), tfw_release(v), tfw_release(r), tfw_release(x), tfw_release(y), tfw_release(p);
  th_expect_no_leaks();
}
