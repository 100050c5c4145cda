/* Autograd of the linear-algebra family beyond the registry samples: einsum equations with
 * diagonals, summed labels, "..." broadcasting, several operands and implicit outputs
 * (gradcheck, gradgradcheck and JVP against float64 central differences), values checked
 * against PyTorch 1.13, dtypes of gradients, addmm's beta/alpha, and the clear error when an
 * einsum gradient cannot be expressed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAXOP 4

typedef struct {
  const char *eq;
  int n;
  tfw_tensor *x[MAXOP]; /* float64 leaves */
  tfw_tensor *w;        /* random weights of the output: L = sum(einsum * w) */
} ein_case;

static tfw_tensor *ein(const ein_case *c, tfw_tensor *const *x) {
  tfw_tensor *out = tfw_einsum(c->eq, c->n, x);
  cr_assert(out != NULL, "%s: %s", c->eq, tfw_last_error());
  return out;
}

/* L = sum(einsum(x) * w), recorded when grad mode is on. */
static tfw_tensor *loss(const ein_case *c) {
  tfw_tensor *o = ein(c, c->x);
  tfw_tensor *p = tfw_mul(o, c->w);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  tfw_release(o), tfw_release(p);
  return s;
}

static double loss_value(const ein_case *c) {
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *s = loss(c);
  double v;
  tfw_item(s, &v);
  tfw_release(s);
  tfw_set_grad_enabled(prev);
  return v;
}

static void grads(const ein_case *c, bool create_graph, tfw_tensor **g) {
  tfw_tensor *s = loss(c);
  tfw_status st = tfw_grad(1, &s, c->n, c->x, NULL, false, create_graph, true, g);
  cr_assert_eq(st, TFW_OK, "%s backward: %s", c->eq, tfw_last_error());
  tfw_release(s);
}

static void flat_index(const tfw_tensor *x, int64_t j, int64_t *idx) {
  for (int d = tfw_tensor_ndim(x) - 1; d >= 0; d--) idx[d] = j % tfw_tensor_shape(x)[d], j /= tfw_tensor_shape(x)[d];
}

/* sum_i <grad_i(x), v_i> with fresh first-order gradients. */
static double grad_dot(const ein_case *c, tfw_tensor *const *v) {
  tfw_tensor *g[MAXOP] = {NULL};
  grads(c, false, g);
  double acc = 0;
  for (int i = 0; i < c->n; i++) {
    if (!g[i]) continue;
    double *gv = th_values(g[i]), *vv = th_values(v[i]);
    for (int64_t k = 0; k < tfw_tensor_numel(g[i]); k++) acc += gv[k] * vv[k];
    free(gv), free(vv);
    tfw_release(g[i]);
  }
  return acc;
}

static tfw_status ein_fn(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  out[0] = tfw_einsum((const char *)ctx, n_in, in);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* First and second order gradcheck and a JVP check of one einsum. */
static void check_einsum(const char *eq, int n, const int *nd, const int64_t shapes[][4]) {
  ein_case c = {eq, n, {NULL}, NULL};
  for (int i = 0; i < n; i++) {
    c.x[i] = th_random(TFW_DTYPE_F64, nd[i], shapes[i], -1, 1, 10 + (uint64_t)i);
    cr_assert(tfw_tensor_set_requires_grad(c.x[i], true) == TFW_OK);
  }
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *o = ein(&c, c.x);
  tfw_set_grad_enabled(prev);
  c.w = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(o), tfw_tensor_shape(o), -1, 1, 99);

  /* first order */
  tfw_tensor *g[MAXOP] = {NULL};
  grads(&c, false, g);
  const double h = 1e-6;
  for (int i = 0; i < n; i++) {
    cr_assert(g[i] != NULL, "%s: no gradient for operand %d", eq, i);
    cr_assert_eq(tfw_tensor_ndim(g[i]), nd[i], "%s: gradient rank of operand %d", eq, i);
    for (int d = 0; d < nd[i]; d++)
      cr_assert_eq(tfw_tensor_shape(g[i])[d], shapes[i][d], "%s: gradient shape of operand %d", eq, i);
    double *ga = th_values(g[i]);
    for (int64_t j = 0; j < tfw_tensor_numel(c.x[i]); j++) {
      int64_t idx[TFW_MAX_DIMS];
      double v;
      flat_index(c.x[i], j, idx);
      tfw_tensor_get(c.x[i], idx, &v);
      tfw_tensor_set(c.x[i], idx, v + h);
      double fp = loss_value(&c);
      tfw_tensor_set(c.x[i], idx, v - h);
      double fm = loss_value(&c);
      tfw_tensor_set(c.x[i], idx, v);
      double num = (fp - fm) / (2 * h);
      cr_assert(fabs(num - ga[j]) <= 1e-6 + 1e-5 * fabs(num),
                "%s: d/d(operand %d)[%lld]: analytic %.10g, numeric %.10g", eq, i, (long long)j, ga[j], num);
    }
    free(ga);
    tfw_release(g[i]);
  }

  /* second order: d/dx <grad(x), v>, the gradients recorded with create_graph */
  tfw_tensor *v[MAXOP], *M = NULL;
  grads(&c, true, g);
  for (int i = 0; i < n; i++) {
    v[i] = th_random(TFW_DTYPE_F64, nd[i], shapes[i], -1, 1, 50 + (uint64_t)i);
    if (!tfw_tensor_requires_grad(g[i])) continue;
    tfw_tensor *p = tfw_mul(g[i], v[i]);
    tfw_tensor *s = tfw_sum(p, 0, NULL, false);
    tfw_release(p);
    if (M) {
      tfw_tensor *t = tfw_add(M, s);
      tfw_release(M), tfw_release(s);
      M = t;
    } else {
      M = s;
    }
  }
  for (int i = 0; i < n; i++) tfw_release(g[i]);
  if (M) {
    tfw_tensor *gg[MAXOP] = {NULL};
    cr_assert_eq(tfw_grad(1, &M, n, c.x, NULL, false, false, true, gg), TFW_OK, "%s double backward: %s",
                 eq, tfw_last_error());
    tfw_release(M);
    const double h2 = 1e-5;
    for (int i = 0; i < n; i++) {
      int64_t numel = tfw_tensor_numel(c.x[i]);
      double *ga = gg[i] ? th_values(gg[i]) : calloc((size_t)numel + 1, sizeof(double));
      for (int64_t j = 0; j < numel; j++) {
        int64_t idx[TFW_MAX_DIMS];
        double val;
        flat_index(c.x[i], j, idx);
        tfw_tensor_get(c.x[i], idx, &val);
        tfw_tensor_set(c.x[i], idx, val + h2);
        double fp = grad_dot(&c, v);
        tfw_tensor_set(c.x[i], idx, val - h2);
        double fm = grad_dot(&c, v);
        tfw_tensor_set(c.x[i], idx, val);
        double num = (fp - fm) / (2 * h2);
        cr_assert(fabs(num - ga[j]) <= 1e-5 + 1e-4 * fabs(num),
                  "%s: second order d/d(operand %d)[%lld]: analytic %.10g, numeric %.10g", eq, i,
                  (long long)j, ga[j], num);
      }
      free(ga);
      tfw_release(gg[i]);
    }
  }

  /* forward mode */
  tfw_tensor *out[1], *tan[1], *xs[MAXOP];
  cr_assert_eq(tfw_jvp(ein_fn, (void *)eq, n, c.x, v, 1, out, tan), TFW_OK, "%s jvp: %s", eq,
               tfw_last_error());
  prev = tfw_set_grad_enabled(false);
  double *tv = th_values(tan[0]), *pm[2];
  for (int s = 0; s < 2; s++) {
    for (int i = 0; i < n; i++) {
      tfw_tensor *hv = tfw_mul_scalar(v[i], s ? -h : h);
      xs[i] = tfw_add(c.x[i], hv);
      tfw_release(hv);
    }
    tfw_tensor *os = ein(&c, xs);
    pm[s] = th_values(os);
    tfw_release(os);
    for (int i = 0; i < n; i++) tfw_release(xs[i]);
  }
  tfw_set_grad_enabled(prev);
  for (int64_t j = 0; j < tfw_tensor_numel(out[0]); j++) {
    double num = (pm[0][j] - pm[1][j]) / (2 * h);
    cr_assert(fabs(num - tv[j]) <= 1e-6 + 1e-5 * fabs(num), "%s: tangent[%lld] %.10g, numeric %.10g",
              eq, (long long)j, tv[j], num);
  }
  free(tv), free(pm[0]), free(pm[1]);
  tfw_release(out[0]), tfw_release(tan[0]);
  for (int i = 0; i < n; i++) tfw_release(v[i]), tfw_release(c.x[i]);
  tfw_release(c.w), tfw_release(o);
}

#define SHAPES(...) ((const int64_t[][4]){__VA_ARGS__})
#define NDS(...) ((const int[]){__VA_ARGS__})

Test(autograd_linalg, einsum_diagonals) {
  check_einsum("ii->i", 1, NDS(2), SHAPES({4, 4}));
  check_einsum("ii->", 1, NDS(2), SHAPES({3, 3}));
  check_einsum("ii", 1, NDS(2), SHAPES({3, 3})); /* implicit: the trace */
  check_einsum("iij->ji", 1, NDS(3), SHAPES({3, 3, 2}));
  check_einsum("ii,ij->j", 2, NDS(2, 2), SHAPES({3, 3}, {3, 4}));
  check_einsum("...ii->...i", 1, NDS(3), SHAPES({2, 3, 3}));
  check_einsum("iji->ij", 1, NDS(3), SHAPES({2, 3, 2}));
  th_expect_no_leaks();
}

Test(autograd_linalg, einsum_summed_labels) {
  check_einsum("ij->i", 1, NDS(2), SHAPES({3, 4}));
  check_einsum("ij->", 1, NDS(2), SHAPES({3, 4}));
  check_einsum("ij->ji", 1, NDS(2), SHAPES({3, 4}));
  check_einsum("i,i->", 2, NDS(1, 1), SHAPES({5}, {5}));
  check_einsum("ij,k->i", 2, NDS(2, 1), SHAPES({2, 3}, {4}));
  check_einsum("bij,bjk->", 2, NDS(3, 3), SHAPES({2, 3, 4}, {2, 4, 3}));
  check_einsum("ij,jk,kl->il", 3, NDS(2, 2, 2), SHAPES({2, 3}, {3, 4}, {4, 2}));
  check_einsum("ij,jk", 2, NDS(2, 2), SHAPES({2, 3}, {3, 4})); /* implicit output */
  check_einsum("i,j->ij", 2, NDS(1, 1), SHAPES({3}, {2}));
  check_einsum("ij,ij->ij", 2, NDS(2, 2), SHAPES({2, 3}, {2, 3}));
  th_expect_no_leaks();
}

Test(autograd_linalg, einsum_ellipsis) {
  /* operand 0's "..." dim of size 1 broadcasts against 2 */
  check_einsum("...ij,...jk->...ik", 2, NDS(3, 3), SHAPES({1, 3, 4}, {2, 4, 2}));
  check_einsum("...ij,...jk", 2, NDS(3, 2), SHAPES({2, 3, 4}, {4, 2}));
  check_einsum("ba...,a->b", 2, NDS(3, 1), SHAPES({2, 3, 2}, {3})); /* "..." summed */
  check_einsum("...i,...i->...", 2, NDS(3, 2), SHAPES({2, 1, 3}, {4, 3}));
  th_expect_no_leaks();
}

Test(autograd_linalg, einsum_values_match_pytorch) {
  /* torch.einsum('iij->ji', x).backward(g) with x = arange(18.).reshape(3, 3, 2) and
   * g = arange(6.).reshape(2, 3): the gradient sits on the diagonal (i, i, j) */
  tfw_tensor *x = tfw_arange(0, 18, 1, TFW_DTYPE_F32);
  tfw_tensor *x3 = tfw_reshape(x, 3, (int64_t[]){3, 3, 2});
  cr_assert(tfw_tensor_set_requires_grad(x3, true) == TFW_OK);
  tfw_tensor *ga = tfw_arange(0, 6, 1, TFW_DTYPE_F32);
  tfw_tensor *g = tfw_reshape(ga, 2, (int64_t[]){2, 3});
  tfw_tensor *y = tfw_einsum("iij->ji", 1, &x3);
  cr_assert_eq(tfw_backward(y, g, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gx = tfw_tensor_grad(x3);
  const double ref[18] = {0, 3, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 2, 5};
  th_expect_close(gx, TFW_DTYPE_F32, 3, (int64_t[]){3, 3, 2}, ref, 0, 0, "iij->ji grad");
  tfw_release(gx), tfw_release(y), tfw_release(g), tfw_release(ga), tfw_release(x3), tfw_release(x);

  /* torch: a = arange(6.).reshape(2, 3), b = arange(12.).reshape(3, 4) (int64),
   * einsum('ij,jk->ik', a, b.double()).sum().backward(): a.grad = b.sum(1) per row */
  tfw_tensor *af = tfw_arange(0, 6, 1, TFW_DTYPE_F32);
  tfw_tensor *a = tfw_reshape(af, 2, (int64_t[]){2, 3});
  tfw_tensor *bi = tfw_arange(0, 12, 1, TFW_DTYPE_I64);
  tfw_tensor *b = tfw_reshape(bi, 2, (int64_t[]){3, 4});
  cr_assert(tfw_tensor_set_requires_grad(a, true) == TFW_OK);
  tfw_tensor *ops[2] = {a, b};
  tfw_tensor *p = tfw_einsum("ij,jk->ik", 2, ops);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gaa = tfw_tensor_grad(a);
  const double ref2[6] = {6, 22, 38, 6, 22, 38};
  th_expect_close(gaa, TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, ref2, 0, 0, "mixed int operand grad");
  tfw_release(gaa), tfw_release(s), tfw_release(p), tfw_release(b), tfw_release(bi);
  tfw_release(a), tfw_release(af);
  th_expect_no_leaks();
}

Test(autograd_linalg, einsum_gradient_too_large_is_an_error) {
  /* the gradient of the last operand needs gout, 7 operands and an eye: 9 > 8 */
  tfw_tensor *ops[8];
  const char *eq = "ab,bc,cd,de,ef,fg,gh,hh->a";
  for (int i = 0; i < 8; i++) {
    ops[i] = th_random(TFW_DTYPE_F64, 2, (int64_t[]){2, 2}, -1, 1, (uint64_t)i);
    cr_assert(tfw_tensor_set_requires_grad(ops[i], true) == TFW_OK);
  }
  tfw_tensor *y = tfw_einsum(eq, 8, ops);
  cr_assert(y != NULL, "%s", tfw_last_error());
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  th_expect_error(tfw_backward(s, NULL, false, false), TFW_EUNSUPPORTED, "einsum backward", "too many operands");
  tfw_release(s), tfw_release(y);
  for (int i = 0; i < 8; i++) tfw_release(ops[i]);
  th_expect_no_leaks();
}

/* addmm with beta = 0: c's gradient is exactly zero (PyTorch gives zeros too), and the
 * NaN in c does not leak into anything. Values from torch.addmm(c, a, b, beta=0, alpha=2). */
Test(autograd_linalg, addmm_beta_zero_and_f32_dtypes) {
  tfw_tensor *c = tfw_from_data(TFW_DTYPE_F32, 1, (int64_t[]){2}, (float[]){NAN, 1});
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, (float[]){1, 2, 3, 4});
  tfw_tensor *b = tfw_from_data(TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, (float[]){5, 6, 7, 8});
  tfw_tensor *in[3] = {c, a, b};
  for (int i = 0; i < 3; i++) cr_assert(tfw_tensor_set_requires_grad(in[i], true) == TFW_OK);
  tfw_tensor *y = tfw_addmm(c, a, b, 0.0, 2.0);
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gc = tfw_tensor_grad(c), *gA = tfw_tensor_grad(a), *gB = tfw_tensor_grad(b);
  th_expect_close(gc, TFW_DTYPE_F32, 1, (int64_t[]){2}, (double[]){0, 0}, 0, 0, "addmm dc");
  th_expect_close(gA, TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, (double[]){22, 30, 22, 30}, 0, 0, "addmm da");
  th_expect_close(gB, TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, (double[]){8, 8, 12, 12}, 0, 0, "addmm db");
  tfw_release(gc), tfw_release(gA), tfw_release(gB), tfw_release(s), tfw_release(y);
  for (int i = 0; i < 3; i++) tfw_release(in[i]);
  th_expect_no_leaks();
}

/* ---- anomaly mode ----------------------------------------------------------------------------- */

Test(anomaly, forward_names_the_op_and_shapes) {
  double v[12] = {1, 2, 3, 4, 5, 0, 7, 8, 9, 10, 11, 12};
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_F64, 2, (int64_t[]){3, 4}, v);
  tfw_set_anomaly_mode(true);
  cr_assert(tfw_anomaly_mode());
  tfw_tensor *y = tfw_log(x); /* log(0) = -inf from finite inputs */
  cr_assert(y == NULL, "log(0) passed in anomaly mode");
  th_expect_error(tfw_last_status(), TFW_EVALUE,
                  "anomaly: log (forward) produced NaN/Inf from inputs of shape [3, 4]", "log");
  /* an Inf input (an attention mask) is not an anomaly when the op only carries it */
  double mv[4] = {0, -INFINITY, 0, 0};
  tfw_tensor *mask = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){4}, mv);
  tfw_tensor *z = tfw_add(x, mask);
  cr_assert(z != NULL, "adding an -inf mask: %s", tfw_last_error());
  /* ... but NaN made from it is: inf - inf */
  tfw_tensor *n = tfw_sub(z, z);
  cr_assert(n == NULL, "inf - inf passed in anomaly mode");
  th_expect_error(tfw_last_status(), TFW_EVALUE, "anomaly: sub (forward) produced NaN/Inf from inputs "
                  "of shape [3, 4], [3, 4] (output 0 holds NaN)", "sub");
  tfw_set_anomaly_mode(false);
  y = tfw_log(x);
  cr_assert(y != NULL, "anomaly mode off: %s", tfw_last_error());
  tfw_release(y), tfw_release(z), tfw_release(mask), tfw_release(x);
  th_expect_no_leaks();
}

Test(anomaly, backward_names_the_rule) {
  /* forward finite (1e-300 * 1e300 = 1), but d/da = g * b overflows with g = 1e10 */
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){1}, (double[]){1e-300});
  tfw_tensor *b = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){1}, (double[]){1e300});
  cr_assert(tfw_tensor_set_requires_grad(a, true) == TFW_OK);
  tfw_tensor *g = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){1}, (double[]){1e10});
  tfw_set_anomaly_mode(true);
  tfw_tensor *y = tfw_mul(a, b);
  cr_assert(y != NULL, "%s", tfw_last_error());
  th_expect_error(tfw_backward(y, g, true, false), TFW_EVALUE,
                  "anomaly: mul (backward) produced NaN/Inf in the gradient of input 0", "mul backward");
  cr_assert(strstr(tfw_last_error(), "from inputs of shape [1], [1]") != NULL, "%s", tfw_last_error());
  tfw_set_anomaly_mode(false);
  cr_assert_eq(tfw_backward(y, g, false, false), TFW_OK, "anomaly mode off: %s", tfw_last_error());
  tfw_release(y), tfw_release(g), tfw_release(a), tfw_release(b);
  th_expect_no_leaks();
}

/* f16 leaves get f16 gradients, equal (to f16 rounding) to the f64 ones. */
Test(autograd_linalg, bmm_f16_gradients) {
  tfw_tensor *a64 = th_random(TFW_DTYPE_F64, 3, (int64_t[]){2, 3, 4}, -1, 1, 1);
  tfw_tensor *b64 = th_random(TFW_DTYPE_F64, 3, (int64_t[]){2, 4, 5}, -1, 1, 2);
  tfw_tensor *g64 = th_random(TFW_DTYPE_F64, 3, (int64_t[]){2, 3, 5}, -1, 1, 3);
  tfw_tensor *ref[2], *got[2];
  for (int half = 0; half < 2; half++) {
    tfw_dtype dt = half ? TFW_DTYPE_F16 : TFW_DTYPE_F64;
    tfw_tensor *a = tfw_to_dtype(a64, dt), *b = tfw_to_dtype(b64, dt), *g = tfw_to_dtype(g64, dt);
    cr_assert(tfw_tensor_set_requires_grad(a, true) == TFW_OK);
    cr_assert(tfw_tensor_set_requires_grad(b, true) == TFW_OK);
    tfw_tensor *y = tfw_bmm(a, b);
    cr_assert_eq(tfw_backward(y, g, false, false), TFW_OK, "%s", tfw_last_error());
    tfw_tensor **dst = half ? got : ref;
    dst[0] = tfw_tensor_grad(a), dst[1] = tfw_tensor_grad(b);
    tfw_release(y), tfw_release(a), tfw_release(b), tfw_release(g);
  }
  for (int i = 0; i < 2; i++) {
    cr_assert_eq(tfw_tensor_dtype(got[i]), TFW_DTYPE_F16, "gradient %d dtype", i);
    double *r = th_values(ref[i]);
    th_expect_close(got[i], TFW_DTYPE_F16, 3, tfw_tensor_shape(ref[i]), r, 4e-3, 4e-3, "f16 bmm grad");
    free(r);
    tfw_release(ref[i]), tfw_release(got[i]);
  }
  tfw_release(a64), tfw_release(b64), tfw_release(g64);
  th_expect_no_leaks();
}
