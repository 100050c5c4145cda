/* Autograd rules of the elementwise ops (src/autograd/backward_elementwise.c), beyond what the
 * generated gradcheck can see: PyTorch's conventions at kinks and ties, pow at a zero base,
 * reduced-precision gradients, and chains of ops checked to second order, in forward mode
 * and forward-over-reverse, against numbers from PyTorch 1.13 (torch.autograd.grad with
 * create_graph=True, float64). */
#include <math.h>
#include <stdlib.h>

#include "harness.h"

/* ---- helpers -------------------------------------------------------------------------------- */

/* A float64 1-d leaf that requires grad. */
static tfw_tensor *leaf(int n, const double *v) {
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){n}, v);
  cr_assert(t && tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

/* Gradients of sum(y) w.r.t. the n leaves (NULL where unused); consumes y. */
static void grad_of_sum(tfw_tensor *y, int n, tfw_tensor **leaves, tfw_tensor **g) {
  cr_assert(y != NULL, "forward: %s", tfw_last_error());
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  tfw_release(y);
  cr_assert_eq(tfw_grad(1, &s, n, leaves, NULL, false, false, true, g), TFW_OK, "%s",
               tfw_last_error());
  tfw_release(s);
}

/* Expects the gradient g (float64, shape [n]) to equal ref exactly or to 1e-12; consumes g. */
static void expect_grad(tfw_tensor *g, int n, const double *ref, const char *what) {
  cr_assert(g != NULL, "%s: no gradient", what);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){n}, ref, 1e-12, 1e-12, what);
  tfw_release(g);
}

static tfw_tensor *unary_grad(tfw_tensor *(*f)(const tfw_tensor *), int n, const double *x) {
  tfw_tensor *l = leaf(n, x), *g;
  grad_of_sum(f(l), 1, &l, &g);
  tfw_release(l);
  return g;
}

static tfw_tensor *clamp_pm_half(const tfw_tensor *x) { return tfw_clamp(x, -0.5, 0.5); }
static tfw_tensor *clamp_hi_only(const tfw_tensor *x) { return tfw_clamp(x, NAN, 0.5); }
static tfw_tensor *clamp_lo_only(const tfw_tensor *x) { return tfw_clamp(x, -0.5, NAN); }
static tfw_tensor *pow_0_3(const tfw_tensor *x) { return tfw_pow_scalar(x, 0.3); }

/* ---- conventions ------------------------------------------------------------------------------ */

Test(ag_ew, kinks_follow_pytorch) {
  expect_grad(unary_grad(tfw_relu, 3, (double[]){-1, 0, 2}), 3, (double[]){0, 0, 1}, "relu'(0) = 0");
  expect_grad(unary_grad(tfw_abs, 3, (double[]){-2, 0, 3}), 3, (double[]){-1, 0, 1}, "abs'(0) = 0");
  expect_grad(unary_grad(tfw_sign, 3, (double[]){-2, 0, 3}), 3, (double[]){0, 0, 0}, "sign' = 0");
  const double xc[5] = {-1, -0.5, 0, 0.5, 1};
  expect_grad(unary_grad(clamp_pm_half, 5, xc), 5, (double[]){0, 1, 1, 1, 0}, "clamp: bounds inclusive");
  expect_grad(unary_grad(clamp_hi_only, 5, xc), 5, (double[]){1, 1, 1, 1, 0}, "clamp: NaN lo = none");
  expect_grad(unary_grad(clamp_lo_only, 5, xc), 5, (double[]){0, 1, 1, 1, 1}, "clamp: NaN hi = none");
  /* relu and clamp mask with a zero, not a product: an infinite gradient does not become NaN */
  tfw_tensor *x = leaf(2, (double[]){-1, 1}), *g;
  tfw_tensor *y = tfw_relu(x);
  tfw_tensor *go = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){2}, (double[]){INFINITY, 2});
  cr_assert_eq(tfw_grad(1, &y, 1, &x, &go, false, false, false, &g), TFW_OK, "%s", tfw_last_error());
  expect_grad(g, 2, (double[]){0, 2}, "relu masks an infinite gradient to 0");
  tfw_release(x), tfw_release(y), tfw_release(go);
  th_expect_no_leaks();
}

Test(ag_ew, minimum_maximum_split_ties) {
  const double a[3] = {1, 2, 3}, b[3] = {1, 5, 0};
  tfw_tensor *l[2] = {leaf(3, a), leaf(3, b)}, *g[2];
  grad_of_sum(tfw_maximum(l[0], l[1]), 2, l, g);
  expect_grad(g[0], 3, (double[]){0.5, 0, 1}, "maximum, a");
  expect_grad(g[1], 3, (double[]){0.5, 1, 0}, "maximum, b");
  grad_of_sum(tfw_minimum(l[0], l[1]), 2, l, g);
  expect_grad(g[0], 3, (double[]){0.5, 1, 0}, "minimum, a");
  expect_grad(g[1], 3, (double[]){0.5, 0, 1}, "minimum, b");
  tfw_release(l[0]), tfw_release(l[1]);
  th_expect_no_leaks();
}

Test(ag_ew, pow_at_a_zero_base) {
  /* torch.pow: d/da = 0 where b == 0; d/db = 0 where a == 0 and b >= 0 */
  const double a[5] = {0, 0, 0, 0, 2}, b[5] = {0, 2, 0.5, -1, 3};
  tfw_tensor *l[2] = {leaf(5, a), leaf(5, b)}, *g[2];
  grad_of_sum(tfw_pow(l[0], l[1]), 2, l, g);
  expect_grad(g[0], 5, (double[]){0, 0, INFINITY, -INFINITY, 12}, "pow, d/da");
  expect_grad(g[1], 5, (double[]){0, 0, 0, -INFINITY, 5.545177444479562}, "pow, d/db");
  tfw_release(l[0]), tfw_release(l[1]);
  /* a C-scalar exponent keeps full precision in b - 1 */
  expect_grad(unary_grad(pow_0_3, 1, (double[]){2}), 1, (double[]){0.18467166200173743}, "x ** 0.3");
  /* an integer base: only the exponent gets a gradient, a^b log(a) in float64 */
  tfw_tensor *ai = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){2}, (int64_t[]){2, 3});
  tfw_tensor *bl = leaf(2, (double[]){1.5, 2}), *gb;
  grad_of_sum(tfw_pow(ai, bl), 1, &bl, &gb);
  /* (PyTorch 1.13 takes log(a) in float32 here and gives 1.9605162923, 9.8875107765) */
  expect_grad(gb, 2, (double[]){1.9605162869370945, 9.887510598012987}, "int ** float, d/db");
  tfw_release(ai), tfw_release(bl);
  th_expect_no_leaks();
}

Test(ag_ew, remainder_where_masked_fill) {
  tfw_tensor *l[2] = {leaf(3, (double[]){5.5, -5.5, 7}), leaf(3, (double[]){2, 2, -3})}, *g[2];
  grad_of_sum(tfw_remainder(l[0], l[1]), 2, l, g);
  expect_grad(g[0], 3, (double[]){1, 1, 1}, "remainder, d/da");
  expect_grad(g[1], 3, (double[]){-2, 3, 3}, "remainder, d/db = -floor(a / b)");
  /* where: the condition gets nothing; b broadcasts ([1] -> [3]) and sums back */
  tfw_tensor *cond = tfw_from_data(TFW_DTYPE_BOOL, 1, (int64_t[]){3}, (bool[]){true, false, true});
  tfw_tensor *b1 = leaf(1, (double[]){4});
  tfw_tensor *wl[2] = {l[0], b1};
  grad_of_sum(tfw_where(cond, l[0], b1), 2, wl, g);
  expect_grad(g[0], 3, (double[]){1, 0, 1}, "where, a");
  expect_grad(g[1], 1, (double[]){1}, "where, b (summed over the broadcast)");
  cr_assert(!tfw_tensor_requires_grad(cond));
  grad_of_sum(tfw_masked_fill(l[1], cond, 9.0), 1, &l[1], g);
  expect_grad(g[0], 3, (double[]){0, 1, 0}, "masked_fill");
  tfw_release(l[0]), tfw_release(l[1]), tfw_release(cond), tfw_release(b1);
  th_expect_no_leaks();
}

/* Gradients of half-precision inputs come back in half precision (PyTorch's values, computed
 * in float32 and rounded to float16). */
Test(ag_ew, half_precision_gradients) {
  const double xv[5] = {-2, -0.5, 0, 0.7, 1.9};
  struct { tfw_tensor *(*f)(const tfw_tensor *); double ref[5]; const char *what; } cases[] = {
    {tfw_sigmoid, {0.10498046875, 0.2349853515625, 0.25, 0.2216796875, 0.1131591796875}, "sigmoid f16"},
    {tfw_tanh, {0.0706787109375, 0.78662109375, 1.0, 0.634765625, 0.08563232421875}, "tanh f16"},
  };
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    tfw_tensor *x64 = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){5}, xv);
    tfw_tensor *x = tfw_to_dtype(x64, TFW_DTYPE_F16), *g;
    tfw_release(x64);
    cr_assert(tfw_tensor_set_requires_grad(x, true) == TFW_OK);
    grad_of_sum(cases[k].f(x), 1, &x, &g);
    th_expect_close(g, TFW_DTYPE_F16, 1, (int64_t[]){5}, cases[k].ref, 4e-3, 1e-4, cases[k].what);
    tfw_release(g), tfw_release(x);
  }
  th_expect_no_leaks();
}

/* ---- chains to second order ------------------------------------------------------------------- */

#define NX 7
static const double XS[NX] = {-2.5, -1.0, -0.3, 0.0, 0.4, 1.2, 3.0};

/* A release pool for the chains' temporaries. */
typedef struct { tfw_tensor *t[64]; int n; } pool;
static tfw_tensor *P(pool *p, tfw_tensor *t) {
  cr_assert(t != NULL && p->n < 64, "%s", tfw_last_error());
  return p->t[p->n++] = t;
}
static void pool_free(pool *p) {
  while (p->n) tfw_release(p->t[--p->n]);
}

/* sum(gelu(tanh(sigmoid(x) * x))) */
static tfw_status activations(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  pool p = {.n = 0};
  tfw_tensor *x = in[0];
  tfw_tensor *y = P(&p, tfw_gelu(P(&p, tfw_tanh(P(&p, tfw_mul(P(&p, tfw_sigmoid(x)), x))))));
  out[0] = tfw_sum(y, 0, NULL, false);
  pool_free(&p);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* Every other elementwise rule in one smooth chain:
 *   u = sqrt(x^2 + 1) + rsqrt(x^2 + 2)
 *   v = log(u) + log2(u + 1) + log1p(u) + expm1(sin(x)) cos(x)
 *   w = tan(erf(x) / 2) + exp2(|x|) + u ** x
 *   sum(maximum(v, 0.3 w) + clamp(v w, -2, 2.5) + relu(minimum(v, w))) */
static tfw_status math_chain(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  pool p = {.n = 0};
  tfw_tensor *x = in[0];
  tfw_tensor *x2 = P(&p, tfw_mul(x, x));
  tfw_tensor *u = P(&p, tfw_add(P(&p, tfw_sqrt(P(&p, tfw_add_scalar(x2, 1)))),
                                P(&p, tfw_rsqrt(P(&p, tfw_add_scalar(x2, 2))))));
  tfw_tensor *v = P(&p, tfw_add(P(&p, tfw_log(u)), P(&p, tfw_log2(P(&p, tfw_add_scalar(u, 1))))));
  v = P(&p, tfw_add(v, P(&p, tfw_log1p(u))));
  v = P(&p, tfw_add(v, P(&p, tfw_mul(P(&p, tfw_expm1(P(&p, tfw_sin(x)))), P(&p, tfw_cos(x))))));
  tfw_tensor *w = P(&p, tfw_tan(P(&p, tfw_mul_scalar(P(&p, tfw_erf(x)), 0.5))));
  w = P(&p, tfw_add(w, P(&p, tfw_exp2(P(&p, tfw_abs(x))))));
  w = P(&p, tfw_add(w, P(&p, tfw_pow(u, x))));
  tfw_tensor *r = P(&p, tfw_maximum(v, P(&p, tfw_mul_scalar(w, 0.3))));
  r = P(&p, tfw_add(r, P(&p, tfw_clamp(P(&p, tfw_mul(v, w)), -2.0, 2.5))));
  r = P(&p, tfw_add(r, P(&p, tfw_relu(P(&p, tfw_minimum(v, w))))));
  out[0] = tfw_sum(r, 0, NULL, false);
  pool_free(&p);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* sum(tanh(sigmoid(x) x) sin(x) + cos(x) relu(x) x + |x| clamp(x, -1, 1) tan(0.3 x)): no exp
 * or div of an intermediate, see chains_jvp_and_hvp */
static tfw_status mixed_chain(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  pool p = {.n = 0};
  tfw_tensor *x = in[0];
  tfw_tensor *a = P(&p, tfw_mul(P(&p, tfw_tanh(P(&p, tfw_mul(P(&p, tfw_sigmoid(x)), x)))), P(&p, tfw_sin(x))));
  tfw_tensor *b = P(&p, tfw_mul(P(&p, tfw_mul(P(&p, tfw_cos(x)), P(&p, tfw_relu(x)))), x));
  tfw_tensor *c = P(&p, tfw_mul(P(&p, tfw_abs(x)), P(&p, tfw_clamp(x, -1, 1))));
  c = P(&p, tfw_mul(c, P(&p, tfw_tan(P(&p, tfw_mul_scalar(x, 0.3))))));
  tfw_tensor *r = P(&p, tfw_add(P(&p, tfw_add(a, b)), c));
  out[0] = tfw_sum(r, 0, NULL, false);
  pool_free(&p);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* y = fn(x), g1 = dy/dx, g2 = d(sum g1)/dx (the Hessian's diagonal: the chains are
 * elementwise), by double backward. */
static void check_second_order(tfw_fn fn, double y_ref, const double *g1_ref, const double *g2_ref,
                               const char *what) {
  tfw_tensor *x = leaf(NX, XS), *y, *g1, *g2;
  cr_assert_eq(fn(NULL, 1, &x, 1, &y), TFW_OK, "%s: %s", what, tfw_last_error());
  double yv;
  cr_assert(tfw_item(y, &yv) == TFW_OK);
  cr_assert(fabs(yv - y_ref) <= 1e-12 * fabs(y_ref), "%s: value %.17g, PyTorch %.17g", what, yv, y_ref);
  cr_assert_eq(tfw_grad(1, &y, 1, &x, NULL, false, true, false, &g1), TFW_OK, "%s", tfw_last_error());
  cr_assert(tfw_tensor_requires_grad(g1), "%s: create_graph records the backward", what);
  th_expect_close(g1, TFW_DTYPE_F64, 1, (int64_t[]){NX}, g1_ref, 1e-11, 1e-13, what);
  tfw_tensor *s = tfw_sum(g1, 0, NULL, false);
  cr_assert_eq(tfw_grad(1, &s, 1, &x, NULL, false, false, false, &g2), TFW_OK, "%s: %s", what,
               tfw_last_error());
  th_expect_close(g2, TFW_DTYPE_F64, 1, (int64_t[]){NX}, g2_ref, 1e-11, 1e-13, what);
  tfw_release(x), tfw_release(y), tfw_release(g1), tfw_release(g2), tfw_release(s);
}

static const double ACT_Y = 1.2897191980442062;
static const double ACT_G1[NX] = {-0.03378048756618961, 0.01987805217986483, 0.13834909322889993,
                                  0.25, 0.4490542143494487, 0.45798009694681024,
                                  0.015409848850913068};
static const double ACT_G2[NX] = {0.005467899546546355, 0.08722837031509863, 0.29441154236497435,
                                  0.4494711402007163, 0.47687134052238794, -0.4447595608383238,
                                  -0.033722453769853514};

Test(ag_ew, activation_chain_second_order) {
  check_second_order(activations, ACT_Y, ACT_G1, ACT_G2, "gelu(tanh(sigmoid(x) x))");
  th_expect_no_leaks();
}

static const double MATH_Y = 76.20373349861973;
static const double MATH_G1[NX] = {-1.3697816344917664, -1.6929125119581863, 0.49863528907521415,
                                   2.0989895802873266,  3.6185060251940095,  -0.7370511960416501,
                                   28.340139490656306};
static const double MATH_G2[NX] = {-3.021331995646486, 2.8390179077752555, 3.20835108329215,
                                   2.2479968033625717, 1.2119290232591702, -5.579597603116376,
                                   54.75357742074988};

Test(ag_ew, math_chain_second_order) {
  check_second_order(math_chain, MATH_Y, MATH_G1, MATH_G2, "math chain");
  th_expect_no_leaks();
}

static const double MIXED_Y = -0.06293037671839383;
static const double MIXED_G1[NX] = {-2.1249632789720883, -1.145948781858979, -0.3050828610303313, 0.0,
                                    1.2917752415105375,  1.009930483697257,  -4.602158097246891};
static const double MIXED_G2[NX] = {1.9480368918404452, 1.6072377662334367, 1.0213543195643584, 1.0,
                                    3.007377022773246,  -4.345205582793724, 8.377596434574922};

Test(ag_ew, mixed_chain_second_order) {
  check_second_order(mixed_chain, MIXED_Y, MIXED_G1, MIXED_G2, "mixed chain");
  th_expect_no_leaks();
}

/* Forward mode through the JVP rules (jvp = <g1, v>) and forward-over-reverse through the
 * backward rules' own JVPs (hvp = g2 * v, the Hessian being diagonal).
 * hvp runs on the mixed chain only: the JVPs of exp and div (jvp_basic.c) save their output
 * in a recorded op when the input tangent requires grad, a reference cycle that leaks under
 * forward-over-reverse, for all three chains. */
Test(ag_ew, chains_jvp_and_hvp) {
  struct { tfw_fn fn; const double *g1, *g2; const char *what; bool hvp; } chains[] = {
    {activations, ACT_G1, ACT_G2, "activations", true},
    {math_chain, MATH_G1, MATH_G2, "math chain", true},
    {mixed_chain, MIXED_G1, MIXED_G2, "mixed chain", true},
  };
  const double vv[NX] = {1, -0.5, 2, 0.25, -1, 0.75, 1.5};
  for (size_t k = 0; k < sizeof chains / sizeof chains[0]; k++) {
    tfw_tensor *x = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){NX}, XS);
    tfw_tensor *v = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){NX}, vv);
    tfw_tensor *y, *t, *h;
    cr_assert_eq(tfw_jvp(chains[k].fn, NULL, 1, &x, &v, 1, &y, &t), TFW_OK, "%s jvp: %s",
                 chains[k].what, tfw_last_error());
    double dir = 0, hv[NX];
    for (int i = 0; i < NX; i++) dir += chains[k].g1[i] * vv[i], hv[i] = chains[k].g2[i] * vv[i];
    th_expect_close(t, TFW_DTYPE_F64, 0, NULL, &dir, 1e-11, 1e-13, chains[k].what);
    tfw_release(y), tfw_release(t);
    if (chains[k].hvp) {
      cr_assert_eq(tfw_hvp(chains[k].fn, NULL, 1, &x, &v, &h), TFW_OK, "%s hvp: %s", chains[k].what,
                   tfw_last_error());
      th_expect_close(h, TFW_DTYPE_F64, 1, (int64_t[]){NX}, hv, 1e-11, 1e-13, chains[k].what);
      tfw_release(h);
    }
    tfw_release(x), tfw_release(v);
    th_expect_no_leaks();
  }
}
