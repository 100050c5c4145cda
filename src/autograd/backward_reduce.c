/* Backward and forward-mode (JVP) rules of the reduction family: prod, var, std, amax, amin,
 * max, min, max_dim, min_dim, logsumexp, norm, cumsum, cumprod, softmax, log_softmax.
 *
 * Most reductions y = r(x) share one scheme: a helper builds D, the derivative of each output
 * element with respect to the inputs of its slice, as a tensor of x's shape (so D broadcasts
 * against y with its reduced dims kept). Then
 *   backward: gx = g_keep * D              (g_keep: the output gradient with size-1 dims)
 *   jvp:      ty = sum(D * tx, reduced dims, keepdim as the op)
 * D is built with registered ops from the saved input, so with create_graph it is recorded
 * and double backward works. Parts of D that are piecewise constant (masks of maxima, signs)
 * are computed with grad mode off: they have zero derivative, as in PyTorch.
 *
 * Conventions at non-differentiable points follow PyTorch: amax/amin/max/min and the inf-norms
 * split the gradient evenly among tied extremes; NaNs count as the extreme (PyTorch 1.13 does
 * so for max/min and the inf-norms, but gives amax/amin a NaN gradient there); max_dim/min_dim
 * give it to the reported index; the 2-norm has gradient 0 where the norm is 0; std has
 * gradient 0 where std is 0; p-norms give 0 to zero entries.
 *
 * Zeros in prod and cumprod: the first derivative is exact everywhere (a slice with one zero
 * sends the product of the others to the zero's position); the second derivative is exact
 * away from zeros only (the masks that route the gradient around zeros are constants). */
#include <math.h>

#include "autograd/autograd.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* ---- shared helpers --------------------------------------------------------------------- */

/* gin[i] = sum_to(t) for input i, consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

/* *tout = t fitted to the output's shape and dtype, consuming t. */
static tfw_status finish(tfw_tensor *t, const tfw_tensor *out, tfw_tensor **tout) {
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, out);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}

static void release_all(tfw_tensor **ts, int n) {
  for (int i = 0; i < n; i++) tfw_release(ts[i]), ts[i] = NULL;
}

static bool is_op(const tfw__call *c, tfw__op_id id) { return c->op->id == id; }

/* max/min reduce every dim to a 0-d result whatever their attrs say. */
static bool all_dims(const tfw__call *c) { return is_op(c, TFW__OP_max) || is_op(c, TFW__OP_min); }

/* Ops that work along one dim a.i[0]. */
static bool one_dim(const tfw__call *c) {
  switch (c->op->id) {
  case TFW__OP_max_dim: case TFW__OP_min_dim: case TFW__OP_cumsum: case TFW__OP_cumprod:
  case TFW__OP_softmax: case TFW__OP_log_softmax: return true;
  default: return false;
  }
}

/* mask[d]: dim d of x is reduced (or scanned) by the call. */
static tfw_status red_dims(const tfw__call *c, const tfw_tensor *x, bool *mask) {
  if (all_dims(c)) {
    for (int d = 0; d < x->ndim; d++) mask[d] = true;
    return TFW_OK;
  }
  if (one_dim(c)) {
    int dim = tfw__wrap_dim(c->op->name, (int)c->a.i[0], x->ndim);
    if (dim < 0) return tfw_last_status();
    for (int d = 0; d < x->ndim; d++) mask[d] = d == dim;
    return TFW_OK;
  }
  return tfw__reduce_mask(c->op->name, x, &c->a, mask);
}

static bool keeps(const tfw__call *c) { return all_dims(c) ? false : c->a.b[0]; }

/* The reduced result g reshaped to x's rank, reduced dims of size 1 (a view where possible). */
static tfw_tensor *keep_view(const tfw_tensor *g, const tfw_tensor *x, const bool *mask) {
  int64_t shape[TFW_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = mask[d] ? 1 : x->shape[d];
  return tfw_reshape(g, x->ndim, shape);
}

/* sum of t over the masked dims of x. */
static tfw_tensor *sum_dims(const tfw_tensor *t, const tfw_tensor *x, const bool *mask, bool keep) {
  int dims[TFW_MAX_DIMS], n = 0;
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) dims[n++] = d;
  if (n == 0 && x->ndim > 0) return tfw_retain((tfw_tensor *)t); /* nothing reduced */
  return tfw_sum(t, n, dims, keep);
}

/* The call's op (or id instead) applied to x with keepdim on; max/min become amax/amin over
 * every dim. Recorded like any op when grad mode is on. */
static tfw_tensor *rerun_keep(const tfw__call *c, tfw__op_id id, const tfw_tensor *x) {
  tfw__call k = *c;
  if (all_dims(c)) k.a.n_ints = -1;
  k.op = &tfw__ops[id];
  k.in[0] = x;
  k.a.b[0] = true;
  return tfw__op_run(&k);
}

/* (a == v) or (a != v), as a tensor of dtype dt (a constant: comparisons record nothing). */
static tfw_tensor *cmp_mask(const tfw_tensor *a, double v, bool equal, tfw_dtype dt) {
  tfw_tensor *s = tfw_scalar(a->dtype, v);
  tfw_tensor *b = !s ? NULL : equal ? tfw_eq(a, s) : tfw_ne(a, s);
  tfw_tensor *m = b ? tfw_to_dtype(b, dt) : NULL;
  tfw_release(s), tfw_release(b);
  return m;
}

/* Even split among ties: mask / count(mask) over the reduced dims, where mask marks the
 * elements of a equal to the keepdim extreme e, or NaN. A constant (call with grad mode off). */
static tfw_tensor *tie_split(const tfw_tensor *a, const tfw_tensor *e, const tfw_tensor *x,
                             const bool *mask) {
  tfw_tensor *t[5] = {NULL};
  t[0] = tfw_eq(a, e);
  t[1] = t[0] ? tfw_isnan(a) : NULL;
  t[2] = t[1] ? tfw_logical_or(t[0], t[1]) : NULL;
  t[3] = t[2] ? tfw_to_dtype(t[2], x->dtype) : NULL;
  t[4] = t[3] ? sum_dims(t[3], x, mask, true) : NULL;
  tfw_tensor *D = t[4] ? tfw_div(t[3], t[4]) : NULL;
  release_all(t, 5);
  return D;
}

/* ---- derivatives of the reductions (D, shaped like x) ------------------------------------- */

typedef tfw_tensor *(*deriv_fn)(const tfw__call *c, const tfw_tensor *x, const bool *mask);

/* prod: D = product of the others. With p the product of the nonzero entries (zeros replaced
 * by 1) and nz the number of zeros in the slice:
 *   nz == 0: p / x;   nz == 1: p at the zero, 0 elsewhere;   nz >= 2: 0. */
static tfw_tensor *d_prod(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  tfw_tensor *t[8] = {NULL}, *s = NULL, *D = NULL;
  double total = 0;
  t[0] = cmp_mask(x, 0, true, x->dtype);                   /* z: 1 at zeros */
  t[1] = t[0] ? tfw_sum(t[0], 0, NULL, false) : NULL;
  if (!t[1] || tfw_item(t[1], &total)) goto done;
  tfw_release(t[1]);
  if (total == 0) { /* no zeros anywhere: p / x */
    t[1] = rerun_keep(c, TFW__OP_prod, x);
    D = t[1] ? tfw_div(t[1], x) : NULL;
    goto done;
  }
  t[1] = sum_dims(t[0], x, mask, true);                    /* nz */
  t[2] = t[1] ? cmp_mask(t[1], 0, true, x->dtype) : NULL;  /* [nz == 0] */
  t[3] = t[2] ? cmp_mask(t[1], 1, true, x->dtype) : NULL;  /* [nz == 1] */
  t[4] = t[3] ? tfw_add(x, t[0]) : NULL;                   /* x with zeros -> 1 */
  t[5] = t[4] ? rerun_keep(c, TFW__OP_prod, t[4]) : NULL;  /* p */
  t[6] = t[5] ? tfw_div(t[2], t[4]) : NULL;
  t[7] = t[6] ? tfw_mul(t[3], t[0]) : NULL;
  s = t[7] ? tfw_add(t[6], t[7]) : NULL;
  D = s ? tfw_mul(t[5], s) : NULL;
done:
  tfw_release(s);
  release_all(t, 8);
  return D;
}

/* var and std: the divisor max(0, N - correction). */
static double var_divisor(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  double n = 1;
  for (int d = 0; d < x->ndim; d++)
    if (mask[d]) n *= (double)x->shape[d];
  double div = n - (double)c->a.i[0];
  return div > 0 ? div : 0;
}

/* x - mean(x) over the reduced dims. */
static tfw_tensor *deviation(const tfw__call *c, const tfw_tensor *x) {
  tfw_tensor *m = rerun_keep(c, TFW__OP_mean, x);
  tfw_tensor *dev = m ? tfw_sub(x, m) : NULL;
  tfw_release(m);
  return dev;
}

/* var: D = 2 (x - mean) / div (inf when div is 0, as the forward gives inf). */
static tfw_tensor *d_var(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  double div = var_divisor(c, x, mask);
  tfw_tensor *dev = deviation(c, x);
  tfw_tensor *D = dev ? tfw_mul_scalar(dev, div > 0 ? 2.0 / div : INFINITY) : NULL;
  tfw_release(dev);
  return D;
}

/* std: D = (x - mean) / (div * std), 0 where std is 0 (PyTorch's masked_fill). */
static tfw_tensor *d_std(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  double div = var_divisor(c, x, mask);
  tfw_tensor *t[6] = {NULL}, *D = NULL;
  t[0] = deviation(c, x);
  t[1] = t[0] ? rerun_keep(c, TFW__OP_std, x) : NULL;
  t[2] = t[1] ? cmp_mask(t[1], 0, true, x->dtype) : NULL;
  t[3] = t[2] ? cmp_mask(t[1], 0, false, x->dtype) : NULL;
  t[4] = t[3] ? tfw_add(t[1], t[2]) : NULL; /* std with 0 -> 1 */
  t[5] = t[4] ? tfw_div(t[3], t[4]) : NULL;
  tfw_tensor *q = t[5] ? tfw_mul(t[0], t[5]) : NULL;
  D = q ? tfw_mul_scalar(q, div > 0 ? 1.0 / div : INFINITY) : NULL;
  tfw_release(q);
  release_all(t, 6);
  return D;
}

/* amax, amin, max, min: the even split among the extremes (a constant). */
static tfw_tensor *d_extreme(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  bool prev = tfw_set_grad_enabled(false);
  bool hi = is_op(c, TFW__OP_amax) || is_op(c, TFW__OP_max);
  tfw_tensor *e = rerun_keep(c, hi ? TFW__OP_amax : TFW__OP_amin, x);
  tfw_tensor *D = e ? tie_split(x, e, x, mask) : NULL;
  tfw_release(e);
  tfw_set_grad_enabled(prev);
  return D;
}

/* max_dim, min_dim: one-hot at the reported index along the dim (a constant). */
static tfw_tensor *d_select(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  if (x->ndim == 0) return tfw_ones_like(x);
  bool prev = tfw_set_grad_enabled(false);
  tfw__call k = *c;
  k.in[0] = x;
  k.a.b[0] = true;
  tfw_tensor *out[2] = {NULL}, *t[3] = {NULL}, *D = NULL;
  int dim = 0;
  while (!mask[dim]) dim++;
  int64_t shape[TFW_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) shape[d] = d == dim ? x->shape[d] : 1;
  if (tfw__op_run_multi(&k, out) == TFW_OK) {
    t[0] = tfw_arange(0, (double)x->shape[dim], 1, TFW_DTYPE_I64);
    t[1] = t[0] ? tfw_reshape(t[0], x->ndim, shape) : NULL;
    t[2] = t[1] ? tfw_eq(t[1], out[1]) : NULL;
    D = t[2] ? tfw_to_dtype(t[2], x->dtype) : NULL;
  }
  release_all(out, 2);
  release_all(t, 3);
  tfw_set_grad_enabled(prev);
  return D;
}

/* logsumexp: D = exp(x - logsumexp(x)) (the softmax over the reduced dims). */
static tfw_tensor *d_logsumexp(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  tfw_tensor *l = rerun_keep(c, TFW__OP_logsumexp, x);
  tfw_tensor *s = l ? tfw_sub(x, l) : NULL;
  tfw_tensor *D = s ? tfw_exp(s) : NULL;
  tfw_release(l), tfw_release(s);
  return D;
}

/* 2-norm: x / n, 0 where n is 0. */
static tfw_tensor *d_norm2(const tfw__call *c, const tfw_tensor *x) {
  tfw_tensor *t[3] = {NULL}, *D = NULL;
  t[0] = rerun_keep(c, TFW__OP_norm, x);
  t[1] = t[0] ? cmp_mask(t[0], 0, true, x->dtype) : NULL;
  t[2] = t[1] ? tfw_add(t[0], t[1]) : NULL; /* n with 0 -> 1 (x is 0 there) */
  D = t[2] ? tfw_div(x, t[2]) : NULL;
  release_all(t, 3);
  return D;
}

/* inf/-inf norms: sign(x) times the even split among the |x| equal to the norm (a constant). */
static tfw_tensor *d_norm_inf(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *t[4] = {NULL}, *D = NULL;
  t[0] = tfw_sign(x);
  t[1] = t[0] ? tfw_abs(x) : NULL;
  t[2] = t[1] ? rerun_keep(c, TFW__OP_norm, x) : NULL;
  t[3] = t[2] ? tie_split(t[1], t[2], x, mask) : NULL;
  D = t[3] ? tfw_mul(t[0], t[3]) : NULL;
  release_all(t, 4);
  tfw_set_grad_enabled(prev);
  return D;
}

/* Other p: sign(x) |x|^(p-1) / n^(p-1), with 0 at x == 0 and where n == 0. |x| is x * sign(x)
 * with the sign a constant, so the rule needs pow's backward only for double backward. */
static tfw_tensor *d_norm_p(const tfw__call *c, const tfw_tensor *x, double p) {
  tfw_tensor *t[12] = {NULL}, *D = NULL;
  bool prev = tfw_set_grad_enabled(false);
  t[0] = tfw_sign(x);
  tfw_set_grad_enabled(prev);
  t[1] = t[0] ? cmp_mask(x, 0, true, x->dtype) : NULL;
  t[2] = t[1] ? cmp_mask(x, 0, false, x->dtype) : NULL;
  t[3] = t[2] ? tfw_mul(x, t[0]) : NULL;            /* |x| */
  t[4] = t[3] ? tfw_add(t[3], t[1]) : NULL;         /* |x| with 0 -> 1 */
  t[5] = t[4] ? tfw_pow_scalar(t[4], p - 1) : NULL;
  t[6] = t[5] ? tfw_mul(t[5], t[2]) : NULL;
  t[7] = t[6] ? tfw_mul(t[6], t[0]) : NULL;         /* sign(x) |x|^(p-1) */
  t[8] = t[7] ? rerun_keep(c, TFW__OP_norm, x) : NULL;
  t[9] = t[8] ? cmp_mask(t[8], 0, true, x->dtype) : NULL;
  t[10] = t[9] ? tfw_add(t[8], t[9]) : NULL;        /* n with 0 -> 1 */
  t[11] = t[10] ? tfw_pow_scalar(t[10], p - 1) : NULL;
  tfw_tensor *q = t[11] ? tfw_div(t[7], t[11]) : NULL;
  tfw_tensor *nzn = q ? cmp_mask(t[8], 0, false, x->dtype) : NULL;
  D = nzn ? tfw_mul(q, nzn) : NULL;
  tfw_release(q), tfw_release(nzn);
  release_all(t, 12);
  return D;
}

/* norm, ord a.f[0]: 0 and 2 (Frobenius), 1, +-inf, other p. */
static tfw_tensor *d_norm(const tfw__call *c, const tfw_tensor *x, const bool *mask) {
  double p = c->a.f[0];
  if (p == 0 || p == 2) return d_norm2(c, x);
  if (isinf(p)) return d_norm_inf(c, x, mask);
  if (p == 1) {
    bool prev = tfw_set_grad_enabled(false);
    tfw_tensor *D = tfw_sign(x);
    tfw_set_grad_enabled(prev);
    return D;
  }
  return d_norm_p(c, x, p);
}

/* ---- the reduction scheme: backward and JVP from D ---------------------------------------- */

static tfw_status red_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin,
                               deriv_fn deriv) {
  if (!NEED(0)) return TFW_OK;
  const tfw_tensor *x = IN(0);
  bool mask[TFW_MAX_DIMS];
  if (red_dims(&node->call, x, mask)) return tfw_last_status();
  tfw_tensor *D = deriv(&node->call, x, mask);
  tfw_tensor *g = D ? keep_view(gout[0], x, mask) : NULL;
  tfw_tensor *t = g ? tfw_mul(g, D) : NULL;
  tfw_release(D), tfw_release(g);
  return give(node, gin, 0, t);
}

static tfw_status red_jvp(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                          tfw_tensor **tout, deriv_fn deriv) {
  const tfw_tensor *x = c->in[0];
  bool mask[TFW_MAX_DIMS];
  if (!tin[0]) return TFW_OK;
  if (red_dims(c, x, mask)) return tfw_last_status();
  tfw_tensor *D = deriv(c, x, mask);
  tfw_tensor *p = D ? tfw_mul(tin[0], D) : NULL;
  tfw_tensor *s = p ? sum_dims(p, x, mask, keeps(c)) : NULL;
  tfw_release(D), tfw_release(p);
  return finish(s, outputs[0], &tout[0]);
}

#define RED_RULES(name, deriv)                                                                  \
  tfw_status tfw__backward_##name(const tfw__node *node, tfw_tensor *const *gout,               \
                                  tfw_tensor **gin) {                                           \
    return red_backward(node, gout, gin, deriv);                                                \
  }                                                                                             \
  tfw_status tfw__jvp_##name(const tfw__call *c, tfw_tensor *const *outputs,                    \
                             tfw_tensor *const *tin, tfw_tensor **tout) {                       \
    return red_jvp(c, outputs, tin, tout, deriv);                                               \
  }

RED_RULES(prod, d_prod)
RED_RULES(var, d_var)
RED_RULES(std, d_std)
RED_RULES(extreme, d_extreme) /* amax, amin, max, min */
RED_RULES(select, d_select)   /* max_dim, min_dim: values only; the int64 indices get none */
RED_RULES(logsumexp, d_logsumexp)
RED_RULES(norm, d_norm)

/* ---- scans --------------------------------------------------------------------------------- */

/* The scanned dim of x (wrapped), or -1 for a 0-d x (the scan is the identity). */
static int scan_dim(const tfw__call *c, const tfw_tensor *x) {
  if (x->ndim == 0) return -1;
  return tfw__wrap_dim(c->op->name, (int)c->a.i[0], x->ndim);
}

/* Reversed inclusive cumsum along dim: out[i] = sum_{j >= i} v[j]. */
static tfw_tensor *rev_cumsum(const tfw_tensor *v, int dim) {
  if (dim < 0) return tfw_retain((tfw_tensor *)v);
  tfw_tensor *f = tfw_flip(v, 1, &dim);
  tfw_tensor *s = f ? tfw_cumsum(f, dim) : NULL;
  tfw_tensor *r = s ? tfw_flip(s, 1, &dim) : NULL;
  tfw_release(f), tfw_release(s);
  return r;
}

tfw_status tfw__backward_cumsum(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  int dim = scan_dim(&node->call, IN(0));
  if (dim < 0 && IN(0)->ndim > 0) return tfw_last_status();
  return give(node, gin, 0, rev_cumsum(gout[0], dim));
}

/* cumprod of x along the call's dim, recorded. */
static tfw_tensor *cumprod_of(const tfw__call *c, const tfw_tensor *x) {
  tfw__call k = *c;
  k.in[0] = x;
  return tfw__op_run(&k);
}

/* Masks for the zeros of x along dim (constants, dtype of x): before[i] = no zero at or before
 * i; first[i] = i is the first zero. *any = x has a zero at all. */
static tfw_status zero_masks(const tfw_tensor *x, int dim, bool *any, tfw_tensor **before,
                             tfw_tensor **first) {
  *before = *first = NULL;
  *any = false;
  tfw_tensor *t[4] = {NULL};
  double nz = 0;
  tfw_status st = TFW_OK;
  t[0] = cmp_mask(x, 0, true, x->dtype);
  t[1] = t[0] ? tfw_sum(t[0], 0, NULL, false) : NULL;
  if (!t[1] || tfw_item(t[1], &nz)) goto fail;
  if (nz == 0) goto done;
  *any = true;
  t[2] = dim < 0 ? tfw_retain(t[0]) : tfw_cumsum(t[0], dim); /* zeros so far */
  t[3] = t[2] ? cmp_mask(t[2], 1, true, x->dtype) : NULL;
  *before = t[3] ? cmp_mask(t[2], 0, true, x->dtype) : NULL;
  *first = *before ? tfw_mul(t[0], t[3]) : NULL;
  if (!*first) goto fail;
  goto done;
fail:
  st = tfw_last_status();
  tfw_release(*before), *before = NULL;
done:
  release_all(t, 4);
  return st;
}

/* cumprod backward. Without zeros: gx = revcumsum(g * C) / x with C = cumprod(x). With zeros,
 * along each line with its first zero at z:
 *   i < z:  revcumsum(g * C)[i] / x[i]             (C is 0 from z on)
 *   i == z: revcumsum(g * C')[z], C' = cumprod(x with x[z] -> 1, x[z] held constant)
 *   i > z:  0                                       (every product includes x[z] = 0). */
tfw_status tfw__backward_cumprod(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  const tfw__call *c = &node->call;
  const tfw_tensor *x = IN(0);
  int dim = scan_dim(c, x);
  if (dim < 0 && x->ndim > 0) return tfw_last_status();
  tfw_tensor *before = NULL, *first = NULL, *t[15] = {NULL}, *r = NULL;
  bool any;
  if (zero_masks(x, dim, &any, &before, &first)) return tfw_last_status();
  t[0] = cumprod_of(c, x);
  t[1] = t[0] ? tfw_mul(gout[0], t[0]) : NULL;
  t[2] = t[1] ? rev_cumsum(t[1], dim) : NULL;
  if (!any) {
    r = t[2] ? tfw_div(t[2], x) : NULL;
    goto done;
  }
  t[3] = t[2] ? cmp_mask(x, 0, true, x->dtype) : NULL;
  t[4] = t[3] ? tfw_add(x, t[3]) : NULL;            /* x with zeros -> 1 */
  t[5] = t[4] ? tfw_div(t[2], t[4]) : NULL;
  t[6] = t[5] ? tfw_mul(t[5], before) : NULL;      /* the i < z part */
  t[7] = t[6] ? tfw_mul_scalar(first, -1) : NULL;
  t[8] = t[7] ? tfw_add_scalar(t[7], 1) : NULL;    /* 1 - first */
  t[9] = t[8] ? tfw_mul(x, t[8]) : NULL;
  t[10] = t[9] ? tfw_add(t[9], first) : NULL;     /* x with its first zero -> 1 */
  t[11] = t[10] ? cumprod_of(c, t[10]) : NULL;     /* C' */
  t[12] = t[11] ? tfw_mul(gout[0], t[11]) : NULL;
  t[13] = t[12] ? rev_cumsum(t[12], dim) : NULL;
  t[14] = t[13] ? tfw_mul(t[13], first) : NULL;    /* the i == z part */
  r = t[14] ? tfw_add(t[6], t[14]) : NULL;
done:
  release_all(t, 15);
  tfw_release(before), tfw_release(first);
  return give(node, gin, 0, r);
}

/* cumprod JVP: out[i] = sum_{j <= i} t[j] prod_{k <= i, k != j} x[k]. Without zeros that is
 * C * cumsum(t / x). With zeros (first zero at z): the same for i < z (t/x taken before z only),
 * and t[z] * C'[i] for i >= z (C' as in the backward). */
tfw_status tfw__jvp_cumprod(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  const tfw_tensor *x = c->in[0], *C = outputs[0];
  if (!tin[0]) return TFW_OK;
  int dim = scan_dim(c, x);
  if (dim < 0 && x->ndim > 0) return tfw_last_status();
  tfw_tensor *before = NULL, *first = NULL, *t[12] = {NULL}, *r = NULL;
  bool any;
  if (zero_masks(x, dim, &any, &before, &first)) return tfw_last_status();
  if (!any) {
    t[0] = tfw_div(tin[0], x);
    t[1] = t[0] ? (dim < 0 ? tfw_retain(t[0]) : tfw_cumsum(t[0], dim)) : NULL;
    r = t[1] ? tfw_mul(C, t[1]) : NULL;
    goto done;
  }
  t[0] = cmp_mask(x, 0, true, x->dtype);
  t[1] = t[0] ? tfw_add(x, t[0]) : NULL;           /* x with zeros -> 1 */
  t[2] = t[1] ? tfw_div(tin[0], t[1]) : NULL;
  t[3] = t[2] ? tfw_mul(t[2], before) : NULL;
  t[4] = t[3] ? (dim < 0 ? tfw_retain(t[3]) : tfw_cumsum(t[3], dim)) : NULL;
  t[5] = t[4] ? tfw_mul(C, t[4]) : NULL;           /* 0 from z on, as C */
  t[6] = t[5] ? tfw_mul_scalar(first, -1) : NULL;
  t[7] = t[6] ? tfw_add_scalar(t[6], 1) : NULL;
  t[8] = t[7] ? tfw_mul(x, t[7]) : NULL;
  t[9] = t[8] ? tfw_add(t[8], first) : NULL;
  t[10] = t[9] ? cumprod_of(c, t[9]) : NULL;       /* C' */
  t[11] = t[10] ? tfw_mul(tin[0], first) : NULL;
  if (t[11]) {
    /* t[z] broadcast along the line, kept from z on (C' before z times 0) */
    tfw_tensor *tz = dim < 0 ? tfw_retain(t[11]) : tfw_sum(t[11], 1, &dim, true);
    tfw_tensor *nb = tz ? tfw_mul_scalar(before, -1) : NULL;
    tfw_tensor *after = nb ? tfw_add_scalar(nb, 1) : NULL; /* i >= z */
    tfw_tensor *a1 = after ? tfw_mul(tz, t[10]) : NULL;
    tfw_tensor *a2 = a1 ? tfw_mul(a1, after) : NULL;
    r = a2 ? tfw_add(t[5], a2) : NULL;
    tfw_release(tz), tfw_release(nb), tfw_release(after), tfw_release(a1), tfw_release(a2);
  }
done:
  release_all(t, 12);
  tfw_release(before), tfw_release(first);
  return finish(r, outputs[0], &tout[0]);
}

/* ---- softmax and log_softmax ----------------------------------------------------------------- */

/* softmax of x along the call's dim, recorded. */
static tfw_tensor *softmax_of(const tfw__call *c, const tfw_tensor *x) {
  tfw__call k = *c;
  k.op = &tfw__ops[TFW__OP_softmax];
  k.in[0] = x;
  return tfw__op_run(&k);
}

/* y * (v - sum(v * y, dim)): the softmax Jacobian (symmetric) applied to v. */
static tfw_tensor *softmax_apply(const tfw__call *c, const tfw_tensor *x, const tfw_tensor *v) {
  bool mask[TFW_MAX_DIMS];
  if (red_dims(c, x, mask)) return NULL;
  tfw_tensor *t[4] = {NULL}, *r = NULL;
  t[0] = softmax_of(c, x);
  t[1] = t[0] ? tfw_mul(v, t[0]) : NULL;
  t[2] = t[1] ? sum_dims(t[1], x, mask, true) : NULL;
  t[3] = t[2] ? tfw_sub(v, t[2]) : NULL;
  r = t[3] ? tfw_mul(t[0], t[3]) : NULL;
  release_all(t, 4);
  return r;
}

/* v - softmax(x) * sum(v, dim) (backward), or v - sum(v * softmax(x), dim) (JVP). */
static tfw_tensor *log_softmax_apply(const tfw__call *c, const tfw_tensor *x, const tfw_tensor *v,
                                     bool transpose) {
  bool mask[TFW_MAX_DIMS];
  if (red_dims(c, x, mask)) return NULL;
  tfw_tensor *t[3] = {NULL}, *r = NULL;
  t[0] = softmax_of(c, x);
  if (transpose) {
    t[1] = t[0] ? sum_dims(v, x, mask, true) : NULL;
    t[2] = t[1] ? tfw_mul(t[0], t[1]) : NULL;
  } else {
    t[1] = t[0] ? tfw_mul(v, t[0]) : NULL;
    t[2] = t[1] ? sum_dims(t[1], x, mask, true) : NULL;
  }
  r = t[2] ? tfw_sub(v, t[2]) : NULL;
  release_all(t, 3);
  return r;
}

tfw_status tfw__backward_softmax(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  return give(node, gin, 0, softmax_apply(&node->call, IN(0), gout[0]));
}

tfw_status tfw__jvp_softmax(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  if (!tin[0]) return TFW_OK;
  return finish(softmax_apply(c, c->in[0], tin[0]), outputs[0], &tout[0]);
}

tfw_status tfw__backward_log_softmax(const tfw__node *node, tfw_tensor *const *gout,
                                     tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  return give(node, gin, 0, log_softmax_apply(&node->call, IN(0), gout[0], true));
}

tfw_status tfw__jvp_log_softmax(const tfw__call *c, tfw_tensor *const *outputs,
                                tfw_tensor *const *tin, tfw_tensor **tout) {
  if (!tin[0]) return TFW_OK;
  return finish(log_softmax_apply(c, c->in[0], tin[0], false), outputs[0], &tout[0]);
}
