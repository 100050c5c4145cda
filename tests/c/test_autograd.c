/* Autograd: gradcheck and gradgradcheck generated from the registry (float64 central
 * differences, on contiguous and non-contiguous leaves), coverage of backward rules, and the
 * engine's behaviour (accumulation, retain_graph, version counters, grad mode, hooks,
 * tfw_grad, determinism, memory). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

/* ---- generated gradient checks ------------------------------------------------------------ */

typedef struct {
  tfw__call call;
  int n_leaf;
  int leaf_idx[TFW__MAX_IN];       /* which inputs are differentiable leaves */
  tfw_tensor *gout[TFW__MAX_OUT];  /* random cotangents of the floating outputs */
} gc_case;

/* A float64 copy of t as a leaf; strided: a non-contiguous view of a larger buffer. */
static tfw_tensor *leaf_f64(const tfw_tensor *t, bool strided, uint64_t seed) {
  tfw_tensor *c = tfw_to_dtype(t, TFW_DTYPE_F64);
  if (strided && tfw_tensor_ndim(t) > 0) {
    tfw_tensor *s = th_random_strided(TFW_DTYPE_F64, tfw_tensor_ndim(t), tfw_tensor_shape(t), 0, 1, seed);
    cr_assert(tfw_copy_(s, c) == TFW_OK);
    tfw_release(c);
    c = s;
  }
  cr_assert(tfw_tensor_set_requires_grad(c, true) == TFW_OK);
  return c;
}

/* sum_k <out_k, gout_k> over the floating outputs, with grad mode off. */
static double objective(const gc_case *gc) {
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *out[TFW__MAX_OUT];
  tfw_status st = tfw__op_run_multi(&gc->call, out);
  cr_assert_eq(st, TFW_OK, "%s: %s", gc->call.op->name, tfw_last_error());
  double acc = 0;
  for (int k = 0; k < gc->call.op->n_out; k++) {
    if (gc->gout[k]) {
      double *o = th_values(out[k]), *g = th_values(gc->gout[k]);
      for (int64_t i = 0; i < tfw_tensor_numel(out[k]); i++) acc += o[i] * g[i];
      free(o), free(g);
    }
    tfw_release(out[k]);
  }
  tfw_set_grad_enabled(prev);
  return acc;
}

/* Analytic gradients of the objective w.r.t. the leaves (create_graph as asked). */
static void analytic(const gc_case *gc, bool create_graph, tfw_tensor **grads) {
  tfw_tensor *out[TFW__MAX_OUT];
  cr_assert_eq(tfw__op_run_multi(&gc->call, out), TFW_OK, "%s: %s", gc->call.op->name, tfw_last_error());
  tfw_tensor *outs[TFW__MAX_OUT], *gos[TFW__MAX_OUT], *leaves[TFW__MAX_IN];
  int n = 0;
  for (int k = 0; k < gc->call.op->n_out; k++)
    if (gc->gout[k] && tfw_tensor_requires_grad(out[k])) outs[n] = out[k], gos[n++] = gc->gout[k];
  for (int i = 0; i < gc->n_leaf; i++) leaves[i] = (tfw_tensor *)gc->call.in[gc->leaf_idx[i]];
  cr_assert(n > 0, "%s: no output requires grad", gc->call.op->name);
  tfw_status st = tfw_grad(n, outs, gc->n_leaf, leaves, gos, false, create_graph, true, grads);
  cr_assert_eq(st, TFW_OK, "%s backward: %s", gc->call.op->name, tfw_last_error());
  for (int k = 0; k < gc->call.op->n_out; k++) tfw_release(out[k]);
}

static void check_first_order(gc_case *gc, const char *what) {
  tfw_tensor *grads[TFW__MAX_IN] = {NULL};
  analytic(gc, false, grads);
  const double h = 1e-6;
  for (int l = 0; l < gc->n_leaf; l++) {
    tfw_tensor *x = (tfw_tensor *)gc->call.in[gc->leaf_idx[l]];
    int nd = tfw_tensor_ndim(x);
    int64_t n = tfw_tensor_numel(x);
    double *ga = grads[l] ? th_values(grads[l]) : calloc((size_t)(n ? n : 1), sizeof(double));
    if (grads[l]) {
      cr_assert_eq(tfw_tensor_ndim(grads[l]), nd, "%s: gradient rank", what);
      for (int d = 0; d < nd; d++)
        cr_assert_eq(tfw_tensor_shape(grads[l])[d], tfw_tensor_shape(x)[d], "%s: gradient shape", what);
    }
    for (int64_t j = 0; j < n; j++) {
      int64_t idx[TFW_MAX_DIMS], r = j;
      for (int d = nd - 1; d >= 0; d--) idx[d] = r % tfw_tensor_shape(x)[d], r /= tfw_tensor_shape(x)[d];
      double v;
      tfw_tensor_get(x, idx, &v);
      bool prev = tfw_set_grad_enabled(false);
      tfw_tensor_set(x, idx, v + h);
      double fp = objective(gc);
      tfw_tensor_set(x, idx, v - h);
      double fm = objective(gc);
      tfw_tensor_set(x, idx, v);
      tfw_set_grad_enabled(prev);
      double num = (fp - fm) / (2 * h);
      cr_assert(fabs(num - ga[j]) <= 1e-5 + 1e-4 * fabs(num),
                "%s: d/d(input %d)[%lld]: analytic %.10g, numeric %.10g", what, gc->leaf_idx[l],
                (long long)j, ga[j], num);
    }
    free(ga);
    tfw_release(grads[l]);
  }
}

/* Second order: for a random v, the gradient of <grad(x), v> w.r.t. x, computed by double
 * backward, against central differences of <grad(x), v>. */
static double grad_dot(gc_case *gc, tfw_tensor *const *v) {
  tfw_tensor *grads[TFW__MAX_IN] = {NULL};
  analytic(gc, false, grads);
  double acc = 0;
  for (int l = 0; l < gc->n_leaf; l++) {
    if (!grads[l]) continue;
    double *g = th_values(grads[l]), *vv = th_values(v[l]);
    for (int64_t i = 0; i < tfw_tensor_numel(grads[l]); i++) acc += g[i] * vv[i];
    free(g), free(vv);
    tfw_release(grads[l]);
  }
  return acc;
}

static void check_second_order(gc_case *gc, const char *what) {
  tfw_tensor *v[TFW__MAX_IN];
  for (int l = 0; l < gc->n_leaf; l++) {
    const tfw_tensor *x = gc->call.in[gc->leaf_idx[l]];
    v[l] = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(x), tfw_tensor_shape(x), -1, 1, 500 + (uint64_t)l);
  }
  tfw_tensor *grads[TFW__MAX_IN] = {NULL};
  analytic(gc, true, grads);
  /* L = sum_l <grads[l], v[l]>, recorded */
  tfw_tensor *L = NULL;
  for (int l = 0; l < gc->n_leaf; l++) {
    if (!grads[l] || !tfw_tensor_requires_grad(grads[l])) continue;
    tfw_tensor *p = tfw_mul(grads[l], v[l]);
    tfw_tensor *s = tfw_sum(p, 0, NULL, false);
    tfw_release(p);
    if (L) {
      tfw_tensor *t = tfw_add(L, s);
      tfw_release(L), tfw_release(s);
      L = t;
    } else {
      L = s;
    }
  }
  for (int l = 0; l < gc->n_leaf; l++) tfw_release(grads[l]);
  if (!L) { /* the gradient does not depend on x (linear op): second derivative is 0 */
    for (int l = 0; l < gc->n_leaf; l++) tfw_release(v[l]);
    return;
  }
  tfw_tensor *leaves[TFW__MAX_IN], *gg[TFW__MAX_IN] = {NULL};
  for (int l = 0; l < gc->n_leaf; l++) leaves[l] = (tfw_tensor *)gc->call.in[gc->leaf_idx[l]];
  tfw_status st = tfw_grad(1, &L, gc->n_leaf, leaves, NULL, false, false, true, gg);
  cr_assert_eq(st, TFW_OK, "%s double backward: %s", what, tfw_last_error());
  tfw_release(L);
  const double h = 1e-5;
  for (int l = 0; l < gc->n_leaf; l++) {
    tfw_tensor *x = leaves[l];
    int nd = tfw_tensor_ndim(x);
    int64_t n = tfw_tensor_numel(x);
    double *ga = gg[l] ? th_values(gg[l]) : calloc((size_t)(n ? n : 1), sizeof(double));
    for (int64_t j = 0; j < n; j++) {
      int64_t idx[TFW_MAX_DIMS], r = j;
      for (int d = nd - 1; d >= 0; d--) idx[d] = r % tfw_tensor_shape(x)[d], r /= tfw_tensor_shape(x)[d];
      double val;
      tfw_tensor_get(x, idx, &val);
      bool prev = tfw_set_grad_enabled(false);
      tfw_tensor_set(x, idx, val + h);
      tfw_set_grad_enabled(prev);
      double fp = grad_dot(gc, v);
      prev = tfw_set_grad_enabled(false);
      tfw_tensor_set(x, idx, val - h);
      tfw_set_grad_enabled(prev);
      double fm = grad_dot(gc, v);
      prev = tfw_set_grad_enabled(false);
      tfw_tensor_set(x, idx, val);
      tfw_set_grad_enabled(prev);
      double num = (fp - fm) / (2 * h);
      cr_assert(fabs(num - ga[j]) <= 1e-4 + 1e-3 * fabs(num),
                "%s: second order d/d(input %d)[%lld]: analytic %.10g, numeric %.10g", what,
                gc->leaf_idx[l], (long long)j, ga[j], num);
    }
    free(ga);
    tfw_release(gg[l]);
  }
  for (int l = 0; l < gc->n_leaf; l++) tfw_release(v[l]);
}

static void free_case(gc_case *gc) {
  for (int i = 0; i < gc->call.n_in; i++) tfw_release((tfw_tensor *)gc->call.in[i]);
  for (int k = 0; k < TFW__MAX_OUT; k++) tfw_release(gc->gout[k]);
}

/* Builds a float64 gradcheck case from a registry sample; false if it has no float input. */
static bool make_case(const tfw__call *sample, bool strided, uint64_t seed, gc_case *gc) {
  memset(gc, 0, sizeof *gc);
  gc->call = *sample;
  for (int i = 0; i < sample->n_in; i++) {
    const tfw_tensor *t = sample->in[i];
    if (tfw_dtype_is_floating(tfw_tensor_dtype(t))) {
      gc->call.in[i] = leaf_f64(t, strided, seed + (uint64_t)i);
      gc->leaf_idx[gc->n_leaf++] = i;
    } else {
      gc->call.in[i] = tfw_retain((tfw_tensor *)t);
    }
  }
  if (gc->n_leaf == 0) {
    for (int i = 0; i < gc->call.n_in; i++) tfw_release((tfw_tensor *)gc->call.in[i]);
    return false;
  }
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *out[TFW__MAX_OUT];
  tfw_status st = tfw__op_run_multi(&gc->call, out);
  tfw_set_grad_enabled(prev);
  cr_assert_eq(st, TFW_OK, "%s f64 sample: %s", sample->op->name, tfw_last_error());
  bool usable = false;
  for (int k = 0; k < sample->op->n_out; k++) {
    tfw_dtype odt = tfw_tensor_dtype(out[k]);
    /* finite differences need float64 outputs (a cast to f32/f16/bf16 output rounds away
     * the perturbation); integer outputs carry no gradient */
    if (odt == TFW_DTYPE_F64) {
      gc->gout[k] = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(out[k]), tfw_tensor_shape(out[k]), -1, 1,
                              seed * 31 + (uint64_t)k);
      usable = true;
    } else if (tfw_dtype_is_floating(odt)) {
      usable = false;
      tfw_release(out[k]);
      for (int j = k + 1; j < sample->op->n_out; j++) tfw_release(out[j]);
      break;
    }
    tfw_release(out[k]);
  }
  if (!usable) free_case(gc);
  return usable;
}


static void gradcheck_ops(bool second) {
  int checked = 0;
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    if (op->backward == tfw__backward_none) continue;
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    for (int s = 0; s < n; s++)
      for (int strided = 0; strided < 2; strided++) {
        gc_case gc;
        if (!make_case(&calls[s], strided, (uint64_t)(id * 16 + s), &gc)) continue;
        char what[96];
        snprintf(what, sizeof what, "%s sample %d%s", op->name, s, strided ? " (strided leaves)" : "");
        if (second) check_second_order(&gc, what);
        else check_first_order(&gc, what);
        free_case(&gc);
        checked++;
      }
    tfw__samples_free(calls, n);
  }
  cr_assert(checked > 0);
}

Test(autograd, gradcheck_every_op_with_a_backward) {
  gradcheck_ops(false);
  th_expect_no_leaks();
}

Test(autograd, gradgradcheck_every_op_with_a_backward) {
  gradcheck_ops(true);
  th_expect_no_leaks();
}

/* ---- the engine ------------------------------------------------------------------------------ */

static tfw_tensor *leaf(double a, double b, double c) {
  double v[3] = {a, b, c};
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){3}, v);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

Test(autograd, accumulates_and_reuses) {
  tfw_tensor *x = leaf(1, 2, 3);
  tfw_tensor *y = tfw_mul(x, x); /* x used twice */
  tfw_tensor *z = tfw_add(y, x);
  tfw_tensor *s = tfw_sum(z, 0, NULL, false);
  cr_assert_str_eq(tfw_tensor_grad_fn_name(s), "sum");
  cr_assert(!tfw_tensor_is_leaf(s) && tfw_tensor_is_leaf(x));
  cr_assert_eq(tfw_backward(s, NULL, true, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *g = tfw_tensor_grad(x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){3, 5, 7}, 0, 1e-12, "2x + 1");
  tfw_release(g);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK); /* accumulates */
  g = tfw_tensor_grad(x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){6, 10, 14}, 0, 1e-12, "accumulated");
  tfw_release(g);
  th_expect_error(tfw_backward(s, NULL, false, false), TFW_ESTATE, "a second time", "freed graph");
  tfw_tensor_zero_grad(x);
  cr_assert(tfw_tensor_grad(x) == NULL);
  tfw_release(x), tfw_release(y), tfw_release(z), tfw_release(s);
  th_expect_no_leaks();
}

Test(autograd, errors_and_modes) {
  tfw_tensor *x = leaf(1, 2, 3);
  tfw_tensor *i = tfw_ones(TFW_DTYPE_I32, 1, (int64_t[]){3});
  th_expect_error(tfw_tensor_set_requires_grad(i, true), TFW_EDTYPE, "only floating-point", "int leaf");
  tfw_tensor *y = tfw_mul(x, x);
  th_expect_error(tfw_backward(y, NULL, false, false), TFW_EVALUE, "one element", "non-scalar");
  th_expect_error(tfw_tensor_set_requires_grad(y, false), TFW_ESTATE, "not a leaf", "non-leaf");
  /* saved tensor modified in place */
  tfw_tensor *a = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
  tfw_tensor *p = tfw_mul(x, a);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  cr_assert(tfw_fill_(a, 5) == TFW_OK);
  th_expect_error(tfw_backward(s, NULL, false, false), TFW_ESTATE,
                  "mul: input 1 (shape [3]), saved for backward, was modified in place", "version");
  th_expect_error(tfw_fill_(x, 0), TFW_ESTATE, "requires grad", "in-place on leaf");
  /* no_grad */
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *q = tfw_mul(x, x);
  tfw_set_grad_enabled(prev);
  cr_assert(!tfw_tensor_requires_grad(q) && tfw_tensor_is_leaf(q));
  tfw_tensor *d = tfw_detach(x);
  cr_assert(!tfw_tensor_requires_grad(d) && tfw_tensor_shares_storage(d, x));
  /* non-differentiable ops stop the graph */
  tfw_tensor *c = tfw_gt(x, a);
  cr_assert(!tfw_tensor_requires_grad(c));
  tfw_release(x), tfw_release(i), tfw_release(y), tfw_release(a), tfw_release(p), tfw_release(s);
  tfw_release(q), tfw_release(d), tfw_release(c);
  th_expect_no_leaks();
}

static tfw_tensor *double_it(const tfw_tensor *g, void *ctx) {
  (*(int *)ctx)++;
  return tfw_mul_scalar(g, 2.0);
}

Test(autograd, hooks_and_grad_of_intermediates) {
  tfw_tensor *x = leaf(1, 2, 3);
  tfw_tensor *y = tfw_exp(x);
  tfw_tensor *z = tfw_mul(y, y);
  tfw_tensor *s = tfw_sum(z, 0, NULL, false);
  int calls = 0;
  cr_assert(tfw_tensor_register_hook(y, double_it, &calls) == TFW_OK);
  tfw_tensor *ins[2] = {x, y}, *g[2];
  cr_assert_eq(tfw_grad(1, &s, 2, ins, NULL, true, false, false, g), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(calls, 1);
  double ey[3] = {exp(1), exp(2), exp(3)};
  /* dz/dy = 2y, doubled by the hook: gy = 4y; gx = gy * y */
  th_expect_close(g[1], TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){4 * ey[0], 4 * ey[1], 4 * ey[2]},
                  1e-12, 0, "grad of intermediate (after its hook, as PyTorch)");
  th_expect_close(g[0], TFW_DTYPE_F64, 1, (int64_t[]){3},
                  (double[]){4 * ey[0] * ey[0], 4 * ey[1] * ey[1], 4 * ey[2] * ey[2]}, 1e-12, 0, "hooked");
  tfw_release(g[0]), tfw_release(g[1]);
  tfw_tensor *unused = leaf(0, 0, 0);
  tfw_tensor *ins2[1] = {unused};
  th_expect_error(tfw_grad(1, &s, 1, ins2, NULL, true, false, false, g), TFW_EVALUE, "not used", "unused");
  cr_assert_eq(tfw_grad(1, &s, 1, ins2, NULL, true, false, true, g), TFW_OK);
  cr_assert(g[0] == NULL);
  tfw_release(x), tfw_release(y), tfw_release(z), tfw_release(s), tfw_release(unused);
  th_expect_no_leaks();
}

/* Saved tensors are released as soon as backward no longer needs them. */
Test(autograd, saved_tensors_released) {
  tfw_memory_empty_cache();
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){256, 256}, -1, 1, 1);
  tfw_tensor_set_requires_grad(x, true);
  tfw_tensor *y = tfw_exp(x);
  tfw_tensor *z = tfw_mul(y, x);
  tfw_release(y); /* y lives on only as a saved input of mul */
  tfw_tensor *s = tfw_sum(z, 0, NULL, false);
  tfw_memory_stats before, after;
  tfw_memory_stats_get(&before);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_memory_stats_get(&after);
  /* y (256 KiB) and the other saved buffers are gone; only x's .grad was added */
  cr_assert(after.live_bytes <= before.live_bytes, "live bytes grew from %lld to %lld",
            (long long)before.live_bytes, (long long)after.live_bytes);
  tfw_release(x), tfw_release(z), tfw_release(s);
  th_expect_no_leaks();
}

Test(autograd, bit_identical_for_1_and_2_threads) {
  tfw_tensor *g[2] = {NULL, NULL};
  for (int t = 1; t <= 2; t++) {
    tfw_set_num_threads(t);
    tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, (int64_t[]){64, 300}, -1, 1, 7);
    tfw_tensor *w = th_random(TFW_DTYPE_F32, 2, (int64_t[]){300, 70}, -1, 1, 8);
    tfw_tensor_set_requires_grad(w, true);
    tfw_tensor *h = tfw_matmul(a, w);
    tfw_tensor *e = tfw_exp(h);
    tfw_tensor *m = tfw_mean(e, 0, NULL, false);
    cr_assert_eq(tfw_backward(m, NULL, false, false), TFW_OK, "%s", tfw_last_error());
    g[t - 1] = tfw_tensor_grad(w);
    tfw_release(a), tfw_release(w), tfw_release(h), tfw_release(e), tfw_release(m);
  }
  tfw_set_num_threads(0);
  bool eq = false;
  cr_assert(tfw_equal(g[0], g[1], &eq) == TFW_OK && eq, "gradients differ between 1 and 2 threads");
  tfw_release(g[0]), tfw_release(g[1]);
  th_expect_no_leaks();
}

/* ---- forward mode ------------------------------------------------------------------------------ */

/* out_k(x + s*t) for every floating output, as flat double arrays. */
static void eval_shifted(const tfw__call *c, tfw_tensor *const *x, tfw_tensor *const *t, double s,
                         double **vals) {
  tfw__call cc = *c;
  tfw_tensor *moved[TFW__MAX_IN] = {NULL};
  bool prev = tfw_set_grad_enabled(false);
  for (int i = 0; i < c->n_in; i++) {
    if (!t[i]) continue;
    tfw_tensor *st = tfw_mul_scalar(t[i], s);
    moved[i] = tfw_add(x[i], st);
    tfw_release(st);
    cc.in[i] = moved[i];
  }
  tfw_tensor *out[TFW__MAX_OUT];
  cr_assert_eq(tfw__op_run_multi(&cc, out), TFW_OK, "%s: %s", c->op->name, tfw_last_error());
  for (int k = 0; k < c->op->n_out; k++) {
    /* only float64 outputs resolve a 1e-6 step (casts to narrower floats round it away) */
    vals[k] = tfw_tensor_dtype(out[k]) == TFW_DTYPE_F64 ? th_values(out[k]) : NULL;
    tfw_release(out[k]);
  }
  for (int i = 0; i < c->n_in; i++) tfw_release(moved[i]);
  tfw_set_grad_enabled(prev);
}

Test(autograd, jvp_every_op_with_a_forward_rule) {
  int checked = 0;
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    if (op->jvp == tfw__jvp_none) continue;
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    for (int s = 0; s < n; s++) {
      tfw__call c = calls[s];
      tfw_tensor *x[TFW__MAX_IN] = {NULL}, *t[TFW__MAX_IN] = {NULL};
      bool any = false;
      for (int i = 0; i < c.n_in; i++) {
        const tfw_tensor *in = calls[s].in[i];
        if (tfw_dtype_is_floating(tfw_tensor_dtype(in))) {
          x[i] = tfw_to_dtype(in, TFW_DTYPE_F64);
          t[i] = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(in), tfw_tensor_shape(in), -1, 1, (uint64_t)(id * 8 + s + i));
          cr_assert(tfw_tensor_set_tangent(x[i], t[i]) == TFW_OK);
          any = true;
        } else {
          x[i] = tfw_retain((tfw_tensor *)in);
        }
        c.in[i] = x[i];
      }
      if (any) {
        tfw_tensor *out[TFW__MAX_OUT];
        cr_assert_eq(tfw__op_run_multi(&c, out), TFW_OK, "%s: %s", op->name, tfw_last_error());
        /* the primal values of x for the finite differences: plain copies */
        tfw_tensor *xp[TFW__MAX_IN];
        for (int i = 0; i < c.n_in; i++) xp[i] = tfw_detach(x[i]);
        double *plus[TFW__MAX_OUT], *minus[TFW__MAX_OUT];
        tfw__call pc = c;
        for (int i = 0; i < c.n_in; i++) pc.in[i] = xp[i];
        eval_shifted(&pc, xp, t, 1e-6, plus);
        eval_shifted(&pc, xp, t, -1e-6, minus);
        for (int k = 0; k < op->n_out; k++) {
          if (plus[k]) {
            tfw_tensor *tan = tfw_tensor_tangent(out[k]);
            cr_assert(tan != NULL, "%s sample %d: output %d has no tangent", op->name, s, k);
            double *tv = th_values(tan);
            for (int64_t j = 0; j < tfw_tensor_numel(out[k]); j++) {
              double num = (plus[k][j] - minus[k][j]) / 2e-6;
              cr_assert(fabs(num - tv[j]) <= 1e-5 + 1e-4 * fabs(num),
                        "%s sample %d: tangent[%lld] %.10g, numeric %.10g", op->name, s, (long long)j, tv[j], num);
            }
            free(tv);
            tfw_release(tan);
          }
          free(plus[k]), free(minus[k]);
          tfw_release(out[k]);
        }
        for (int i = 0; i < c.n_in; i++) tfw_release(xp[i]);
        checked++;
      }
      for (int i = 0; i < c.n_in; i++) tfw_release(x[i]), tfw_release(t[i]);
    }
    tfw__samples_free(calls, n);
  }
  cr_assert(checked > 0);
  th_expect_no_leaks();
}

/* f(x) = sum(exp(x) * x) — H = diag(exp(x) * (x + 2)) */
static tfw_status scalar_fn(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_tensor *e = tfw_exp(in[0]);
  tfw_tensor *p = tfw_mul(e, in[0]);
  out[0] = tfw_sum(p, 0, NULL, false);
  tfw_release(e), tfw_release(p);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* f(x) = W x with a fixed W: the Jacobian is W */
static tfw_status linear_fn(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  out[0] = tfw_matmul((tfw_tensor *)ctx, in[0]);
  return out[0] ? TFW_OK : tfw_last_status();
}

Test(autograd, jvp_vjp_hvp_jacobian) {
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){0.5, -1, 2});
  tfw_tensor *v = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){1, 2, -1});
  tfw_tensor *h[1];
  cr_assert_eq(tfw_hvp(scalar_fn, NULL, 1, &x, &v, h), TFW_OK, "%s", tfw_last_error());
  double ref[3];
  double xs[3] = {0.5, -1, 2}, vs[3] = {1, 2, -1};
  for (int i = 0; i < 3; i++) ref[i] = exp(xs[i]) * (xs[i] + 2) * vs[i];
  th_expect_close(h[0], TFW_DTYPE_F64, 1, (int64_t[]){3}, ref, 1e-12, 1e-12, "hvp");
  tfw_release(h[0]);
  tfw_tensor *out[1], *tan[1], *g[1];
  cr_assert_eq(tfw_jvp(scalar_fn, NULL, 1, &x, &v, 1, out, tan), TFW_OK, "%s", tfw_last_error());
  double dir = 0;
  for (int i = 0; i < 3; i++) dir += exp(xs[i]) * (xs[i] + 1) * vs[i];
  th_expect_close(tan[0], TFW_DTYPE_F64, 0, NULL, &dir, 1e-12, 1e-12, "jvp");
  tfw_release(out[0]), tfw_release(tan[0]);
  cr_assert_eq(tfw_vjp(scalar_fn, NULL, 1, &x, 1, out, NULL, g), TFW_OK, "%s", tfw_last_error());
  double gr[3];
  for (int i = 0; i < 3; i++) gr[i] = exp(xs[i]) * (xs[i] + 1);
  th_expect_close(g[0], TFW_DTYPE_F64, 1, (int64_t[]){3}, gr, 1e-12, 1e-12, "vjp");
  cr_assert(!tfw_tensor_requires_grad(x) && tfw_tensor_tangent(x) == NULL, "inputs untouched");
  tfw_release(out[0]), tfw_release(g[0]);
  double wv[6] = {1, 2, 3, 4, 5, 6};
  tfw_tensor *W = tfw_from_data(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, wv);
  tfw_tensor *J;
  cr_assert_eq(tfw_jacobian(linear_fn, W, x, &J), TFW_OK, "%s", tfw_last_error());
  th_expect_close(J, TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, wv, 0, 1e-12, "jacobian");
  tfw_release(J), tfw_release(W), tfw_release(x), tfw_release(v);
  th_expect_no_leaks();
}

/* Every op marked differentiable has a backward and a forward-mode rule (docs/ops.md lists
 * them; test_registry checks that file is current). */
Test(autograd, every_differentiable_op_has_rules) {
  int missing = 0;
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    if (!(op->flags & TFW__OPF_DIFF)) continue;
    if (op->backward == tfw__backward_none) {
      fprintf(stderr, "%s: differentiable but has no backward rule\n", op->name);
      missing++;
    }
    if (op->jvp == tfw__jvp_none) {
      fprintf(stderr, "%s: differentiable but has no forward-mode rule\n", op->name);
      missing++;
    }
  }
  cr_assert_eq(missing, 0, "%d rules missing (see above)", missing);
}
