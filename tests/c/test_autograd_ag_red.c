/* Autograd of the reduction family beyond the registry samples: conventions at ties and NaNs
 * (amax/amin/max/min split evenly, max_dim/min_dim pick the reported index), zeros in prod and
 * cumprod, the norms at 0 and for other p, std of a constant slice, f16 gradients, and
 * second derivatives (double backward) of rules whose samples cannot reach them. Expected
 * values were computed with PyTorch 1.13 (float64) and written in. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"

typedef tfw_tensor *(*fn1)(const tfw_tensor *x);

static tfw_tensor *f_amax1(const tfw_tensor *x) { return tfw_amax(x, 1, (int[]){1}, false); }
static tfw_tensor *f_amin0(const tfw_tensor *x) { return tfw_amin(x, 1, (int[]){0}, false); }
static tfw_tensor *f_max(const tfw_tensor *x) { return tfw_max(x); }
static tfw_tensor *f_prod1(const tfw_tensor *x) { return tfw_prod(x, 1, (int[]){1}, false); }
static tfw_tensor *f_prod_all(const tfw_tensor *x) { return tfw_prod(x, 0, NULL, false); }
static tfw_tensor *f_cumprod1(const tfw_tensor *x) { return tfw_cumprod(x, 1); }
static tfw_tensor *f_cumsum0(const tfw_tensor *x) { return tfw_cumsum(x, 0); }
static tfw_tensor *f_norm2(const tfw_tensor *x) { return tfw_norm(x, 2, 1, (int[]){1}, false); }
static tfw_tensor *f_norm_inf(const tfw_tensor *x) { return tfw_norm(x, INFINITY, 1, (int[]){1}, false); }
static tfw_tensor *f_norm_ninf(const tfw_tensor *x) { return tfw_norm(x, -INFINITY, 1, (int[]){1}, false); }
static tfw_tensor *f_norm3(const tfw_tensor *x) { return tfw_norm(x, 3, 1, (int[]){1}, false); }
static tfw_tensor *f_norm_half(const tfw_tensor *x) { return tfw_norm(x, 0.5, 1, (int[]){1}, false); }
static tfw_tensor *f_norm1(const tfw_tensor *x) { return tfw_norm(x, 1, 0, NULL, false); }
static tfw_tensor *f_std1(const tfw_tensor *x) { return tfw_std(x, 1, (int[]){1}, 1, false); }
static tfw_tensor *f_var1(const tfw_tensor *x) { return tfw_var(x, 1, (int[]){1}, 1, false); }
static tfw_tensor *f_var1_c0(const tfw_tensor *x) { return tfw_var(x, 1, (int[]){1}, 0, false); }
static tfw_tensor *f_lse1(const tfw_tensor *x) { return tfw_logsumexp(x, 1, (int[]){1}, false); }
static tfw_tensor *f_lse0(const tfw_tensor *x) { return tfw_logsumexp(x, 1, (int[]){0}, false); }
static tfw_tensor *f_softmax0(const tfw_tensor *x) { return tfw_softmax(x, 0); }
static tfw_tensor *f_softmax1(const tfw_tensor *x) { return tfw_softmax(x, 1); }
static tfw_tensor *f_log_softmax1(const tfw_tensor *x) { return tfw_log_softmax(x, 1); }
static tfw_tensor *f_max_dim1(const tfw_tensor *x) {
  tfw_tensor *v = NULL;
  cr_assert_eq(tfw_max_dim(x, 1, false, &v, NULL), TFW_OK, "%s", tfw_last_error());
  return v;
}
static tfw_tensor *f_min_dim0(const tfw_tensor *x) {
  tfw_tensor *v = NULL;
  cr_assert_eq(tfw_min_dim(x, 0, false, &v, NULL), TFW_OK, "%s", tfw_last_error());
  return v;
}

static tfw_tensor *leaf(tfw_dtype dt, int nd, const int64_t *shape, const double *x) {
  tfw_tensor *f = tfw_from_data(TFW_DTYPE_F64, nd, shape, x);
  tfw_tensor *t = tfw_to_dtype(f, dt);
  tfw_release(f);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

/* A tensor shaped like y holding go (NULL: ones). */
static tfw_tensor *like(const tfw_tensor *y, const double *go) {
  if (!go) return tfw_ones_like(y);
  tfw_tensor *f = tfw_from_data(TFW_DTYPE_F64, tfw_tensor_ndim(y), tfw_tensor_shape(y), go);
  tfw_tensor *t = tfw_to_dtype(f, tfw_tensor_dtype(y));
  tfw_release(f);
  return t;
}

/* The gradient of <f(x), go> at x (shape [2, 3] unless given) against ref. */
static void expect_grad_dt(fn1 f, tfw_dtype dt, int nd, const int64_t *shape, const double *xv,
                           const double *go, const double *ref, double tol, const char *what) {
  tfw_tensor *x = leaf(dt, nd, shape, xv);
  tfw_tensor *y = f(x);
  cr_assert(y != NULL, "%s: %s", what, tfw_last_error());
  tfw_tensor *g = like(y, go), *gx;
  cr_assert_eq(tfw_grad(1, &y, 1, &x, &g, false, false, false, &gx), TFW_OK, "%s: %s", what,
               tfw_last_error());
  th_expect_close(gx, dt, nd, shape, ref, tol, tol, what);
  tfw_release(x), tfw_release(y), tfw_release(g), tfw_release(gx);
}

static void expect_grad(fn1 f, const int64_t *shape, const double *xv, const double *go,
                        const double *ref, const char *what) {
  expect_grad_dt(f, TFW_DTYPE_F64, 2, shape, xv, go, ref, 1e-12, what);
}

static const int64_t S23[2] = {2, 3}, S33[2] = {3, 3}, S34[2] = {3, 4};

Test(autograd_red, ties_split_evenly_like_pytorch) {
  double x[6] = {1, 3, 3, 2, 2, 2};
  expect_grad(f_amax1, S23, x, (double[]){1, 2}, (double[]){0, 0.5, 0.5, 2. / 3, 2. / 3, 2. / 3},
              "amax ties");
  expect_grad(f_amin0, S23, (double[]){1, 3, 0, 1, 2, 0}, (double[]){1, 2, 3},
              (double[]){0.5, 0, 1.5, 0.5, 2, 1.5}, "amin ties");
  expect_grad(f_max, S23, (double[]){4, 1, 4, 0, 4, 2}, NULL,
              (double[]){1. / 3, 0, 1. / 3, 0, 1. / 3, 0}, "max ties");
  /* max/min over everything send the gradient to the NaNs (PyTorch's evenly_distribute) */
  expect_grad(f_max, S23, (double[]){1, NAN, 3, 2, 2, NAN}, NULL, (double[]){0, 0.5, 0, 0, 0, 0.5},
              "max with NaN");
  /* amax/amin too (PyTorch 1.13 gives NaN gradients to the whole slice there instead) */
  expect_grad(f_amax1, S23, (double[]){1, NAN, 3, 2, 2, 1}, NULL, (double[]){0, 1, 0, 0.5, 0.5, 0},
              "amax with NaN");
  /* max_dim/min_dim: the first extreme, the one whose index is reported */
  expect_grad(f_max_dim1, S23, x, (double[]){1, 2}, (double[]){0, 1, 0, 2, 0, 0}, "max_dim ties");
  expect_grad(f_min_dim0, S23, (double[]){1, 3, 0, 1, 2, 0}, (double[]){1, 2, 3},
              (double[]){1, 0, 3, 0, 2, 0}, "min_dim ties");
  th_expect_no_leaks();
}

Test(autograd_red, zeros_in_prod_and_cumprod) {
  /* one zero: the product of the others goes to it; two zeros: nothing */
  expect_grad(f_prod1, S33, (double[]){2, 0, 3, 0, 0, 5, 1, 2, 4}, (double[]){1, 1, 2},
              (double[]){0, 6, 0, 0, 0, 0, 16, 8, 4}, "prod with zeros");
  expect_grad(f_prod_all, S23, (double[]){2, 0.5, 3, 1.5, -1, 5}, NULL,
              (double[]){-11.25, -45, -7.5, -15, 22.5, -4.5}, "prod of all");
  double cx[12] = {2, 0, 3, 4, 1, 2, 0, 0, 0, 3, 2, 1};
  double cg[12] = {1, 2, 3, 4, 1, -1, 2, 0.5, 0.5, 1, -2, 1};
  expect_grad(f_cumprod1, S34, cx, cg, (double[]){1, 118, 0, 0, -1, -1, 4, 0, -2.5, 0, 0, 0},
              "cumprod with zeros");
  expect_grad(f_cumsum0, S23, (double[]){1, 2, 3, -1, 0, 5}, (double[]){1, 2, 3, 0.5, -1, 2},
              (double[]){1.5, 1, 5, 0.5, -1, 2}, "cumsum");
  th_expect_no_leaks();
}

Test(autograd_red, norms_std_var_at_special_points) {
  expect_grad(f_norm2, S23, (double[]){0, 0, 0, 3, 4, 0}, NULL, (double[]){0, 0, 0, 0.6, 0.8, 0},
              "2-norm, 0 at a zero norm");
  expect_grad(f_norm_inf, S23, (double[]){3, -3, 1, 0, 2, -1}, (double[]){1, 2},
              (double[]){0.5, -0.5, 0, 0, 2, 0}, "inf-norm ties");
  expect_grad(f_norm_ninf, S23, (double[]){3, -0.5, 1, -1, 2, 1}, (double[]){1, 2},
              (double[]){0, -1, 0, -1, 0, 1}, "-inf-norm");
  expect_grad(f_norm3, S23, (double[]){1, -2, 0.5, 0, 2, -1}, (double[]){1, 2},
              (double[]){0.2290048874729442, -0.9160195498917768, 0.05725122186823605, 0,
                         1.848963398268359, -0.4622408495670898},
              "3-norm");
  expect_grad(f_norm_half, S23, (double[]){1, -2, 0.5, 0, 2, -1}, (double[]){1, 2},
              (double[]){3.1213203435596424, -2.207106781186547, 4.414213562373094, 0,
                         3.4142135623730945, -4.82842712474619},
              "0.5-norm, 0 at a zero entry");
  expect_grad(f_norm1, S23, (double[]){1, -2, 0, 0.5, 2, -1}, NULL, (double[]){1, -1, 0, 1, 1, -1},
              "1-norm");
  expect_grad(f_std1, S23, (double[]){2, 2, 2, 1, 2, 4}, NULL,
              (double[]){0, 0, 0, -0.43643578047198484, -0.10910894511799625, 0.5455447255899809},
              "std, 0 where std is 0");
  expect_grad(f_var1_c0, S23, (double[]){2, 2, 3, 1, 2, 4}, NULL,
              (double[]){-0.22222222222222232, -0.22222222222222232, 0.4444444444444443,
                         -0.888888888888889, -0.22222222222222232, 1.111111111111111},
              "var, correction 0");
  th_expect_no_leaks();
}

Test(autograd_red, softmax_family_values) {
  double x[6] = {1, 2, 3, -1, 0, 5}, g[6] = {1, 2, 3, 0.5, -1, 2};
  expect_grad(f_lse1, S23, x, (double[]){1, 2},
              (double[]){0.09003057317038043, 0.24472847105479759, 0.6652409557748217,
                         0.004912229808901908, 0.013352825026752904, 1.9817349451643456},
              "logsumexp");
  expect_grad(f_softmax0, S23, x, g,
              (double[]){0.05249679270175336, 0.31498075621051974, 0.10499358540350653,
                         -0.05249679270175324, -0.3149807562105195, -0.10499358540350633},
              "softmax");
  expect_grad(f_log_softmax1, S23, x, g,
              (double[]){0.4598165609777174, 0.5316291736712142, -0.9914457346489307,
                         0.49631582764332355, -1.0100146187700647, 0.5136987911267412},
              "log_softmax");
  /* f16 leaves get f16 gradients (PyTorch's values computed in f32) */
  expect_grad_dt(f_softmax1, TFW_DTYPE_F16, 2, S23, (double[]){0.5, 1, -1, 2, 0, 1},
                 (double[]){1, 0, 0, 0, 1, 0},
                 (double[]){0.2269590049982071, -0.19990482926368713, -0.02705417573451996,
                            -0.05989201366901398, 0.08192506432533264, -0.02203304134309292},
                 4e-3, "softmax f16");
  expect_grad_dt(f_amax1, TFW_DTYPE_BF16, 2, S23, (double[]){1, 3, 3, 2, 2, 2}, (double[]){1, 2},
                 (double[]){0, 0.5, 0.5, 2. / 3, 2. / 3, 2. / 3}, 8e-3, "amax bf16");
  th_expect_no_leaks();
}

/* ---- forward mode ---------------------------------------------------------------------------- */

static tfw_status call_fn(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  out[0] = ((fn1)ctx)(in[0]);
  return out[0] ? TFW_OK : tfw_last_status();
}

static void expect_jvp(fn1 f, const int64_t *shape, const double *xv, const double *tv,
                       int out_n, const double *ref, const char *what) {
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_F64, 2, shape, xv);
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F64, 2, shape, tv);
  tfw_tensor *y, *ty;
  cr_assert_eq(tfw_jvp(call_fn, (void *)f, 1, &x, &t, 1, &y, &ty), TFW_OK, "%s: %s", what,
               tfw_last_error());
  cr_assert_eq(tfw_tensor_numel(ty), out_n, "%s: tangent size", what);
  double *v = th_values(ty);
  for (int i = 0; i < out_n; i++)
    cr_assert(fabs(v[i] - ref[i]) <= 1e-12 * (1 + fabs(ref[i])), "%s: tangent[%d] %.15g, expected %.15g",
              what, i, v[i], ref[i]);
  free(v);
  tfw_release(x), tfw_release(t), tfw_release(y), tfw_release(ty);
}

Test(autograd_red, jvp_at_zeros_and_ties) {
  expect_jvp(f_prod1, S33, (double[]){2, 0, 3, 0, 0, 5, 1, 2, 4},
             (double[]){1, 2, 3, 1, 1, 1, 0.5, -1, 2}, 3, (double[]){12, 0, 4}, "prod with zeros");
  expect_jvp(f_cumprod1, S34, (double[]){2, 0, 3, 4, 1, 2, 0, 0, 0, 3, 2, 1},
             (double[]){1, 2, 3, 4, 1, -1, 2, 0.5, 0.5, 1, -2, 1}, 12,
             (double[]){1, 4, 12, 48, 1, 1, 4, 0, 0.5, 1.5, 3, 3}, "cumprod with zeros");
  expect_jvp(f_amax1, S23, (double[]){1, 3, 3, 2, 2, 2}, (double[]){1, 2, 3, 1, -1, 3}, 2,
             (double[]){2.5, 1}, "amax ties");
  expect_jvp(f_max_dim1, S23, (double[]){1, 3, 3, 2, 2, 2}, (double[]){1, 2, 3, 1, -1, 3}, 2,
             (double[]){2, 1}, "max_dim ties");
  th_expect_no_leaks();
}

/* ---- second order ---------------------------------------------------------------------------- */

/* grad of <grad <f(x), w>, v> (w = linspace(-1, 1) over the output) against PyTorch's. */
static void expect_hv(fn1 f, const double *ref, const char *what) {
  double xv[6] = {1, -2, 0.5, 0.3, 2, -1}, vv[6] = {1, 2, 3, 0.5, -1, 2};
  tfw_tensor *x = leaf(TFW_DTYPE_F64, 2, S23, xv);
  tfw_tensor *v = tfw_from_data(TFW_DTYPE_F64, 2, S23, vv);
  tfw_tensor *y = f(x);
  cr_assert(y != NULL, "%s: %s", what, tfw_last_error());
  int64_t n = tfw_tensor_numel(y);
  tfw_tensor *l = tfw_linspace(-1, 1, n, TFW_DTYPE_F64);
  tfw_tensor *w = tfw_reshape(l, tfw_tensor_ndim(y), tfw_tensor_shape(y));
  tfw_tensor *gx, *h;
  cr_assert_eq(tfw_grad(1, &y, 1, &x, &w, false, true, false, &gx), TFW_OK, "%s: %s", what,
               tfw_last_error());
  tfw_tensor *p = tfw_mul(gx, v);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  cr_assert_eq(tfw_grad(1, &s, 1, &x, NULL, false, false, false, &h), TFW_OK, "%s: %s", what,
               tfw_last_error());
  th_expect_close(h, TFW_DTYPE_F64, 2, S23, ref, 1e-10, 1e-12, what);
  tfw_release(x), tfw_release(v), tfw_release(y), tfw_release(l), tfw_release(w);
  tfw_release(gx), tfw_release(p), tfw_release(s), tfw_release(h);
}

Test(autograd_red, double_backward_against_pytorch) {
  expect_hv(f_norm3, (double[]){-0.7717151002512914, -0.5772177985619416, -0.7654409937451834,
                                0.09658715983493286, 0.29466749397260483, 0.6183111358956893},
            "3-norm");
  expect_hv(f_norm_half, (double[]){-0.35355339059327373, 2.457106781186547, 10.535533905932738,
                                    -6.144348045903595, -0.1107568900507735, -2.064818193872626},
            "0.5-norm");
  expect_hv(f_std1, (double[]){0.275962951016968, 0.0551925902033936, -0.33115554122036167,
                               -0.04405228900144274, 0.019089325233958565, 0.024962963767484192},
            "std");
  expect_hv(f_cumprod1, (double[]){-0.2, -1.3, 0, 4.4, 0.4, 0.7}, "cumprod");
  expect_hv(f_lse0, (double[]){-0.11085643664655442, 0, 0.14914645207033272, 0.11085643664655459, 0,
                               -0.1491464520703329},
            "logsumexp");
  expect_hv(f_log_softmax1, (double[]){-0.8285837632313354, 0.012853241156732758, 0.8157305220746026,
                                       -0.3085538362854014, 0.5017141747032455, -0.1931603384178442},
            "log_softmax");
  th_expect_no_leaks();
}

/* Forward-over-reverse (tfw_hvp) of sum(f(x)^2): the JVP rules of the ops inside the backward
 * rules carry the tangent through the gradient. */
static tfw_status sq_loss(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_tensor *y = ((fn1)ctx)(in[0]);
  tfw_tensor *y2 = y ? tfw_mul(y, y) : NULL;
  out[0] = y2 ? tfw_sum(y2, 0, NULL, false) : NULL;
  tfw_release(y), tfw_release(y2);
  return out[0] ? TFW_OK : tfw_last_status();
}

static void expect_hvp(fn1 f, const double *ref, const char *what) {
  double xv[6] = {1, -2, 0.5, 0.3, 2, -1}, vv[6] = {1, 2, 3, 0.5, -1, 2};
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_F64, 2, S23, xv);
  tfw_tensor *v = tfw_from_data(TFW_DTYPE_F64, 2, S23, vv);
  tfw_tensor *h;
  cr_assert_eq(tfw_hvp(sq_loss, (void *)f, 1, &x, &v, &h), TFW_OK, "%s: %s", what, tfw_last_error());
  th_expect_close(h, TFW_DTYPE_F64, 2, S23, ref, 1e-10, 1e-12, what);
  tfw_release(x), tfw_release(v), tfw_release(h);
}

Test(autograd_red, hvp_forward_over_reverse) {
  expect_hvp(f_prod1, (double[]){22, -13, 24, -8, -0.42, -0.24}, "prod");
  expect_hvp(f_var1, (double[]){-6.333333333333334, 1.8333333333333333, 4.499999999999999,
                                1.1999999999999997, -20.89, 19.689999999999998},
             "var");
  expect_hvp(f_softmax0, (double[]){0.0732267158102083, -0.09474527441177352, -0.03135693415864856,
                                    -0.07322671581020825, 0.0947452744117734, 0.031356934158648604},
             "softmax");
  expect_hvp(f_amax1, (double[]){2, 0, 0, 0, -2, 0}, "amax");
  expect_hvp(f_max_dim1, (double[]){2, 0, 0, 0, -2, 0}, "max_dim");
  expect_hvp(f_std1, (double[]){-1, 0, 1, 0, -1.5, 1.5}, "std");
  expect_hvp(f_lse0, (double[]){1.425767081706423, 0.1798445381957411, 4.816380556713495,
                                0.24242069046174314, -2.0719272784231917, 0.8187683956737917},
             "logsumexp");
  expect_hvp(f_norm3, (double[]){2.5697186858382963, 5.0345508947036, 3.0351524274059467,
                                 0.34519111735290436, -1.3075348561312214, 3.208504111077858},
             "3-norm");
  expect_hvp(f_norm2, (double[]){2, 4, 6, 1, -2, 4}, "2-norm");
  expect_hvp(f_cumprod1, (double[]){16, -17, 24, -5.4, 0.6, -0.24}, "cumprod");
  expect_hvp(f_log_softmax1, (double[]){-7.0013736642565485, 0.5038730681743216, 6.497500596082224,
                                        3.1107511485613806, -9.286703370446935, 6.175952221885555},
             "log_softmax");
  th_expect_no_leaks();
}
