/* Loss functions: the public wrappers, reduction handling, the cross-entropy coefficient
 * tensors shared with the autograd rules, and the losses that are composites of registered
 * ops (nll_loss, mse, l1, smooth_l1, huber, binary_cross_entropy[_with_logits], kl_div,
 * cosine_embedding, margin_ranking, triplet_margin). A composite needs no rule of its own:
 * backward, double backward and forward mode come from the ops it is built of. Each follows
 * PyTorch 1.13's formula (aten/src/ATen/native/Loss.cpp, LossNLL.cpp), including its
 * clamps: binary_cross_entropy clamps log at -100; the logits version uses
 * softplus(-x) (stable for any x); cosine_embedding adds 1e-12 to the squared norms. */
#include <math.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/loss.h"

/* ---- consuming helpers (NULL passes through) -------------------------------------------- */
static tfw_tensor *own(const tfw_tensor *t) { return tfw_retain((tfw_tensor *)t); }
#define BIN_(NAME, F)                                             \
  static tfw_tensor *NAME(tfw_tensor *a, tfw_tensor *b) {         \
    tfw_tensor *r = a && b ? F(a, b) : NULL;                      \
    tfw_release(a), tfw_release(b);                               \
    return r;                                                     \
  }
BIN_(add_, tfw_add) BIN_(sub_, tfw_sub) BIN_(mul_, tfw_mul) BIN_(div_, tfw_div)
BIN_(eq_, tfw_eq) BIN_(min_, tfw_minimum)
static tfw_tensor *un_(tfw_tensor *(*f)(const tfw_tensor *), tfw_tensor *a) {
  tfw_tensor *r = a ? f(a) : NULL;
  tfw_release(a);
  return r;
}
static tfw_tensor *where_(tfw_tensor *m, tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = m && a && b ? tfw_where(m, a, b) : NULL;
  tfw_release(m), tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *cast_(tfw_tensor *a, tfw_dtype dt) {
  tfw_tensor *r = a ? tfw_to_dtype(a, dt) : NULL;
  tfw_release(a);
  return r;
}
static tfw_tensor *sumdim_(tfw_tensor *a, int dim, bool keep) {
  tfw_tensor *r = a ? tfw_sum(a, 1, &dim, keep) : NULL;
  tfw_release(a);
  return r;
}
static tfw_tensor *relu_(tfw_tensor *a) { return un_(tfw_relu, a); }
static tfw_tensor *fscalar(const tfw_tensor *like, double v) { return tfw_scalar(like->dtype, v); }

/* ---- reductions ------------------------------------------------------------------------------ */

tfw_status tfw__parse_reduction(const char *op, const char *s, bool allow_batchmean, int *red) {
  if (s && !strcmp(s, "none")) *red = TFW__RED_NONE;
  else if (s && !strcmp(s, "mean")) *red = TFW__RED_MEAN;
  else if (s && !strcmp(s, "sum")) *red = TFW__RED_SUM;
  else if (s && allow_batchmean && !strcmp(s, "batchmean")) *red = TFW__RED_BATCHMEAN;
  else
    return tfw__error(TFW_EVALUE, "%s: reduction must be 'none', 'mean'%s or 'sum', got '%s'",
                      op, allow_batchmean ? ", 'batchmean'" : "", s ? s : "(null)");
  return TFW_OK;
}

tfw_tensor *tfw__reduce_loss(const tfw_tensor *l, int red) {
  if (!l) return NULL;
  if (red == TFW__RED_MEAN) return tfw_mean(l, 0, NULL, false);
  if (red == TFW__RED_SUM) return tfw_sum(l, 0, NULL, false);
  return own(l);
}
static tfw_tensor *reduce_(tfw_tensor *l, int red) {
  tfw_tensor *r = tfw__reduce_loss(l, red);
  tfw_release(l);
  return r;
}

static bool args_ok(const char *op, int n, const tfw_tensor *const *ts, const char *const *names) {
  for (int i = 0; i < n; i++)
    if (tfw__check_tensor(op, names[i], ts[i])) return false;
  return true;
}

/* input and target of the same shape (PyTorch broadcasts with a warning; we require it) */
static bool same_shape(const char *op, const tfw_tensor *a, const tfw_tensor *b) {
  bool same = a->ndim == b->ndim;
  for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
  if (!same) {
    char as[96], bs[96];
    tfw__error(TFW_ESHAPE, "%s: target %s must have the input's shape %s", op,
               tfw__shape_str(bs, sizeof bs, b->ndim, b->shape),
               tfw__shape_str(as, sizeof as, a->ndim, a->shape));
  }
  return same;
}

/* ---- cross-entropy coefficients -------------------------------------------------------------- */

void tfw__ce_parts_free(tfw__ce_parts *p) {
  tfw_release(p->a), tfw_release(p->wb), tfw_release(p->D);
  p->a = p->wb = p->D = NULL;
}

tfw_status tfw__ce_parts_make(const tfw_tensor *x, const tfw_tensor *target,
                              const tfw_tensor *weight, int64_t ignore_index, double eps,
                              tfw__ce_parts *p) {
  memset(p, 0, sizeof *p);
  int cd = p->cd = x->ndim == 1 ? 0 : 1;
  int64_t C = x->shape[cd];
  int64_t bs[TFW_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) bs[d] = d == cd ? C : 1;
  if (weight) {
    tfw_tensor *w = weight->dtype == x->dtype ? own(weight) : tfw_to_dtype(weight, x->dtype);
    p->wb = w ? tfw_reshape(w, x->ndim, bs) : NULL;
    tfw_release(w);
    if (!p->wb) goto fail;
  }
  if (tfw_dtype_is_floating(target->dtype)) {
    tfw_tensor *a = tfw__adds_consume(tfw_mul_scalar(target, 1 - eps), eps / (double)C);
    a = cast_(a, x->dtype);
    p->a = p->wb ? mul_(a, own(p->wb)) : a;
    int64_t rows = C > 0 ? tfw__numel(x->ndim, x->shape) / C : 0;
    p->D = tfw_scalar(x->dtype, (double)rows);
  } else {
    tfw_tensor *tu = tfw_unsqueeze(target, cd);
    tfw_tensor *cls = tfw_arange(0, (double)C, 1, TFW_DTYPE_I64);
    tfw_tensor *clsb = cls ? tfw_reshape(cls, x->ndim, bs) : NULL;
    tfw_release(cls);
    tfw_tensor *ign = tfw_scalar(TFW_DTYPE_I64, (double)ignore_index);
    tfw_tensor *valid = tu && ign ? cast_(tfw_ne(tu, ign), x->dtype) : NULL;
    tfw_release(ign);
    tfw_tensor *onehot = cast_(eq_(clsb, tu), x->dtype);
    tfw_tensor *oh = mul_(onehot, valid ? own(valid) : NULL); /* valid one-hot */
    if (p->wb) oh = mul_(oh, own(p->wb));
    p->D = oh ? tfw_sum(oh, 0, NULL, false) : NULL;
    tfw_tensor *a = tfw__muls_consume(oh, 1 - eps);
    if (eps > 0) {
      tfw_tensor *sm = tfw__muls_consume(own(valid), eps / (double)C);
      if (p->wb) sm = mul_(sm, own(p->wb));
      a = add_(a, sm);
    }
    tfw_release(valid);
    p->a = a;
  }
  if (!p->a || !p->D) goto fail;
  return TFW_OK;
fail:
  tfw__ce_parts_free(p);
  return tfw_last_status();
}

/* ---- cross_entropy and nll_loss -------------------------------------------------------------- */

tfw_tensor *tfw_cross_entropy(const tfw_tensor *input, const tfw_tensor *target,
                              const tfw_tensor *weight, const char *reduction,
                              int64_t ignore_index, double label_smoothing) {
  int red;
  if (tfw__check_tensor("cross_entropy", "input", input) ||
      tfw__check_tensor("cross_entropy", "target", target) ||
      tfw__parse_reduction("cross_entropy", reduction, false, &red))
    return NULL;
  const tfw_tensor *in[3] = {input, target, weight};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_cross_entropy, weight ? 3 : 2, in);
  c.a.i[0] = red;
  c.a.i[1] = ignore_index;
  c.a.f[0] = label_smoothing;
  return tfw__op_run(&c);
}

/* nll_loss = -sum_c a_c logp_c per row (a the one-hot coefficients without smoothing), then
 * 'mean' divides by the summed target weights. */
static tfw_tensor *nll_loss_impl(const tfw_tensor *input, const tfw_tensor *target,
                         const tfw_tensor *weight, const char *reduction, int64_t ignore_index) {
  const char *op = "nll_loss";
  int red;
  if (!args_ok(op, 2, (const tfw_tensor *[]){input, target}, (const char *[]){"input", "target"}) ||
      tfw__parse_reduction(op, reduction, false, &red))
    return NULL;
  if (tfw__check_float(op, "input", input)) return NULL;
  if (!tfw_dtype_is_integral(target->dtype)) {
    tfw__error(TFW_EDTYPE, "nll_loss: target must hold integer class indices, got %s",
               tfw_dtype_name(target->dtype));
    return NULL;
  }
  if (input->ndim == 0) {
    tfw__error(TFW_ESHAPE, "nll_loss: input must have a class dimension");
    return NULL;
  }
  bool ok = target->ndim == (input->ndim == 1 ? 0 : input->ndim - 1);
  for (int d = 0; ok && d < target->ndim; d++)
    ok = target->shape[d] == input->shape[d == 0 ? 0 : d + 1];
  if (!ok) {
    char xs[96], ts[96];
    tfw__error(TFW_ESHAPE, "nll_loss: target %s does not match input %s (expected the input's "
               "shape without the class dimension 1)",
               tfw__shape_str(ts, sizeof ts, target->ndim, target->shape),
               tfw__shape_str(xs, sizeof xs, input->ndim, input->shape));
    return NULL;
  }
  if (weight && (tfw__check_float(op, "weight", weight) || weight->ndim != 1 ||
                 weight->shape[0] != input->shape[input->ndim == 1 ? 0 : 1])) {
    if (tfw_dtype_is_floating(weight->dtype))
      tfw__error(TFW_ESHAPE, "nll_loss: weight must be 1-d with one entry per class");
    return NULL;
  }
  if (tfw__check_class_targets(op, target, input->shape[input->ndim == 1 ? 0 : 1], ignore_index))
    return NULL;
  tfw__ce_parts P;
  if (tfw__ce_parts_make(input, target, weight, ignore_index, 0, &P)) return NULL;
  tfw_tensor *l = tfw__muls_consume(sumdim_(mul_(own(P.a), own(input)), P.cd, false), -1);
  if (red == TFW__RED_MEAN) {
    tfw_tensor *s = l ? tfw_sum(l, 0, NULL, false) : NULL;
    tfw_release(l);
    l = div_(s, own(P.D));
  } else if (red == TFW__RED_SUM) {
    l = reduce_(l, red);
  }
  tfw__ce_parts_free(&P);
  return l;
}

/* ---- pointwise regression losses ------------------------------------------------------------- */

/* Checks (input, target) and parses the reduction; false with the error set otherwise. */
static bool pair_ok(const char *op, const tfw_tensor *x, const tfw_tensor *y, const char *reduction,
                    bool batchmean, int *red) {
  if (!args_ok(op, 2, (const tfw_tensor *[]){x, y}, (const char *[]){"input", "target"}) ||
      tfw__parse_reduction(op, reduction, batchmean, red))
    return false;
  if (tfw__check_float(op, "input", x) || tfw__check_float(op, "target", y)) return false;
  return same_shape(op, x, y);
}

static tfw_tensor *mse_loss_impl(const tfw_tensor *input, const tfw_tensor *target, const char *reduction) {
  int red;
  if (!pair_ok("mse_loss", input, target, reduction, false, &red)) return NULL;
  tfw_tensor *d = tfw_sub(input, target);
  return reduce_(mul_(d ? own(d) : NULL, d), red);
}

static tfw_tensor *l1_loss_impl(const tfw_tensor *input, const tfw_tensor *target, const char *reduction) {
  int red;
  if (!pair_ok("l1_loss", input, target, reduction, false, &red)) return NULL;
  return reduce_(un_(tfw_abs, tfw_sub(input, target)), red);
}

/* |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta  (beta == 0: l1) */
static tfw_tensor *smooth_l1_loss_impl(const tfw_tensor *input, const tfw_tensor *target,
                               const char *reduction, double beta) {
  int red;
  if (!pair_ok("smooth_l1_loss", input, target, reduction, false, &red)) return NULL;
  if (!(beta >= 0)) {
    tfw__error(TFW_EVALUE, "smooth_l1_loss: beta must be >= 0, got %g", beta);
    return NULL;
  }
  tfw_tensor *ad = un_(tfw_abs, tfw_sub(input, target));
  if (beta == 0) return reduce_(ad, red);
  tfw_tensor *b = ad ? fscalar(ad, beta) : NULL;
  tfw_tensor *m = ad && b ? tfw_lt(ad, b) : NULL;
  tfw_release(b);
  tfw_tensor *q = tfw__muls_consume(mul_(ad ? own(ad) : NULL, ad ? own(ad) : NULL), 0.5 / beta);
  tfw_tensor *l = tfw__adds_consume(ad ? own(ad) : NULL, -0.5 * beta);
  tfw_release(ad);
  return reduce_(where_(m, q, l), red);
}

/* |d| <= delta ? 0.5 d^2 : delta (|d| - 0.5 delta) */
static tfw_tensor *huber_loss_impl(const tfw_tensor *input, const tfw_tensor *target, const char *reduction,
                           double delta) {
  int red;
  if (!pair_ok("huber_loss", input, target, reduction, false, &red)) return NULL;
  if (!(delta > 0)) {
    tfw__error(TFW_EVALUE, "huber_loss: delta must be > 0, got %g", delta);
    return NULL;
  }
  tfw_tensor *ad = un_(tfw_abs, tfw_sub(input, target));
  tfw_tensor *b = ad ? fscalar(ad, delta) : NULL;
  tfw_tensor *m = ad && b ? tfw_lt(ad, b) : NULL;
  tfw_release(b);
  tfw_tensor *q = tfw__muls_consume(mul_(ad ? own(ad) : NULL, ad ? own(ad) : NULL), 0.5);
  tfw_tensor *l = tfw__muls_consume(tfw__adds_consume(ad ? own(ad) : NULL, -0.5 * delta), delta);
  tfw_release(ad);
  return reduce_(where_(m, q, l), red);
}

/* ---- binary cross-entropy --------------------------------------------------------------------- */

static tfw_tensor *apply_weight_(tfw_tensor *l, const tfw_tensor *weight) {
  return weight ? mul_(l, own(weight)) : l;
}

static tfw_tensor *clamp_(tfw_tensor *a, double lo, double hi) {
  tfw_tensor *r = a ? tfw_clamp(a, lo, hi) : NULL;
  tfw_release(a);
  return r;
}

/* -w (y max(log x, -100) + (1 - y) max(log(1 - x), -100)) */
static tfw_tensor *binary_cross_entropy_impl(const tfw_tensor *input, const tfw_tensor *target,
                                     const tfw_tensor *weight, const char *reduction) {
  int red;
  if (!pair_ok("binary_cross_entropy", input, target, reduction, false, &red)) return NULL;
  tfw_tensor *lx = clamp_(tfw_log(input), -100, NAN);
  tfw_tensor *l1x = clamp_(un_(tfw_log, tfw__adds_consume(tfw_neg(input), 1)), -100, NAN);
  tfw_tensor *omy = tfw__adds_consume(tfw_neg(target), 1);
  tfw_tensor *l = tfw__muls_consume(add_(mul_(own(target), lx), mul_(omy, l1x)), -1);
  return reduce_(apply_weight_(l, weight), red);
}

/* (1 - y) x + (1 + (pw - 1) y) softplus(-x), softplus stable for any x */
static tfw_tensor *binary_cross_entropy_with_logits_impl(const tfw_tensor *input, const tfw_tensor *target,
                                                 const tfw_tensor *weight,
                                                 const tfw_tensor *pos_weight,
                                                 const char *reduction) {
  int red;
  if (!pair_ok("binary_cross_entropy_with_logits", input, target, reduction, false, &red))
    return NULL;
  tfw_tensor *nx = tfw_neg(input);
  tfw_tensor *sp = nx ? tfw__act(TFW__OP_softplus, nx, 1, INFINITY) : NULL;
  tfw_release(nx);
  if (pos_weight) /* 1 + (pw - 1) y */
    sp = mul_(sp, tfw__adds_consume(mul_(tfw__adds_consume(own(pos_weight), -1), own(target)), 1));
  tfw_tensor *lin = mul_(tfw__adds_consume(tfw_neg(target), 1), own(input));
  return reduce_(apply_weight_(add_(lin, sp), weight), red);
}

/* log_target ? exp(t) (t - x) : xlogy(t, t) - t x; 'batchmean' = sum / input.size(0) */
static tfw_tensor *kl_div_impl(const tfw_tensor *input, const tfw_tensor *target, const char *reduction,
                       bool log_target) {
  int red;
  if (!pair_ok("kl_div", input, target, reduction, true, &red)) return NULL;
  tfw_tensor *l;
  if (log_target) {
    l = mul_(tfw_exp(target), tfw_sub(target, input));
  } else {
    tfw_tensor *z = fscalar(target, 0);
    tfw_tensor *pos = z ? tfw_gt(target, z) : NULL;
    tfw_tensor *one = fscalar(target, 1);
    tfw_tensor *ts = pos && one ? tfw_where(pos, target, one) : NULL; /* log never sees 0 */
    tfw_release(one);
    tfw_tensor *lts = ts ? tfw_log(ts) : NULL;
    tfw_tensor *xl = mul_(ts, lts);
    xl = where_(pos, xl, z);
    l = sub_(xl, tfw_mul(target, input));
  }
  if (red != TFW__RED_BATCHMEAN) return reduce_(l, red);
  tfw_tensor *s = reduce_(l, TFW__RED_SUM);
  return tfw__muls_consume(s, 1.0 / (double)(input->ndim > 0 ? input->shape[0] : 1));
}

/* ---- embedding and ranking losses ------------------------------------------------------------- */

static tfw_tensor *sumlast_(tfw_tensor *a, int dim) { return sumdim_(a, dim, false); }

/* y == 1: 1 - cos; y == -1: max(0, cos - margin); cos over dim 1 (dim 0 for 1-d inputs) */
static tfw_tensor *cosine_embedding_loss_impl(const tfw_tensor *x1, const tfw_tensor *x2,
                                      const tfw_tensor *target, double margin,
                                      const char *reduction) {
  const char *op = "cosine_embedding_loss";
  int red;
  if (!args_ok(op, 3, (const tfw_tensor *[]){x1, x2, target},
               (const char *[]){"input1", "input2", "target"}) ||
      tfw__parse_reduction(op, reduction, false, &red) || tfw__check_float(op, "input1", x1) ||
      tfw__check_float(op, "input2", x2))
    return NULL;
  if (!same_shape(op, x1, x2)) return NULL;
  if (x1->ndim < 1 || x1->ndim > 2 || target->ndim != x1->ndim - 1 ||
      (x1->ndim == 2 && target->shape[0] != x1->shape[0])) {
    tfw__error(TFW_ESHAPE, "%s: inputs must be [N, D] with target [N] (or [D] with a 0-d target)",
               op);
    return NULL;
  }
  int dim = x1->ndim == 2 ? 1 : 0;
  tfw_tensor *prod = sumlast_(tfw_mul(x1, x2), dim);
  tfw_tensor *m1 = tfw__adds_consume(sumlast_(tfw_mul(x1, x1), dim), 1e-12);
  tfw_tensor *m2 = tfw__adds_consume(sumlast_(tfw_mul(x2, x2), dim), 1e-12);
  tfw_tensor *cos = div_(prod, un_(tfw_sqrt, mul_(m1, m2)));
  tfw_tensor *one = tfw_scalar(target->dtype, 1), *mone = tfw_scalar(target->dtype, -1);
  tfw_tensor *ispos = one ? tfw_eq(target, one) : NULL, *isneg = mone ? tfw_eq(target, mone) : NULL;
  tfw_release(one), tfw_release(mone);
  tfw_tensor *pos = tfw__adds_consume(tfw_neg(cos), 1);
  tfw_tensor *neg = relu_(tfw__adds_consume(cos ? own(cos) : NULL, -margin));
  tfw_tensor *z = cos ? fscalar(cos, 0) : NULL, *z2 = cos ? fscalar(cos, 0) : NULL;
  tfw_release(cos);
  tfw_tensor *l = add_(where_(ispos, pos, z), where_(isneg, neg, z2));
  return reduce_(l, red);
}

/* max(0, -y (x1 - x2) + margin) */
static tfw_tensor *margin_ranking_loss_impl(const tfw_tensor *x1, const tfw_tensor *x2,
                                    const tfw_tensor *target, double margin,
                                    const char *reduction) {
  const char *op = "margin_ranking_loss";
  int red;
  if (!args_ok(op, 3, (const tfw_tensor *[]){x1, x2, target},
               (const char *[]){"input1", "input2", "target"}) ||
      tfw__parse_reduction(op, reduction, false, &red) || tfw__check_float(op, "input1", x1) ||
      tfw__check_float(op, "input2", x2) || !same_shape(op, x1, x2) || !same_shape(op, x1, target))
    return NULL;
  tfw_tensor *l = relu_(tfw__adds_consume(tfw__muls_consume(mul_(own(target), tfw_sub(x1, x2)), -1), margin));
  return reduce_(l, red);
}

/* PyTorch's pairwise_distance: ||a - b + eps||_p over the last dim */
static tfw_tensor *pdist_(const tfw_tensor *a, const tfw_tensor *b, double p, double eps) {
  tfw_tensor *d = tfw__adds_consume(tfw_sub(a, b), eps);
  int dim = -1;
  tfw_tensor *r = d ? tfw_norm(d, p, 1, &dim, false) : NULL;
  tfw_release(d);
  return r;
}

/* max(d(a, p) - d(a, n) + margin, 0); swap: d(a, n) -> min(d(a, n), d(p, n)) */
static tfw_tensor *triplet_margin_loss_impl(const tfw_tensor *anchor, const tfw_tensor *positive,
                                    const tfw_tensor *negative, double margin, double p,
                                    double eps, bool swap, const char *reduction) {
  const char *op = "triplet_margin_loss";
  int red;
  if (!args_ok(op, 3, (const tfw_tensor *[]){anchor, positive, negative},
               (const char *[]){"anchor", "positive", "negative"}) ||
      tfw__parse_reduction(op, reduction, false, &red) || tfw__check_float(op, "anchor", anchor) ||
      !same_shape(op, anchor, positive) || !same_shape(op, anchor, negative))
    return NULL;
  if (anchor->ndim < 1 || anchor->ndim > 2) {
    tfw__error(TFW_ESHAPE, "%s: inputs must be [N, D] or [D], got %d dimensions", op, anchor->ndim);
    return NULL;
  }
  if (!(p > 0)) {
    tfw__error(TFW_EVALUE, "%s: p must be > 0, got %g", op, p);
    return NULL;
  }
  tfw_tensor *dp = pdist_(anchor, positive, p, eps);
  tfw_tensor *dn = pdist_(anchor, negative, p, eps);
  if (swap) dn = min_(dn, pdist_(positive, negative, p, eps));
  tfw_tensor *l = relu_(tfw__adds_consume(sub_(dp, dn), margin));
  return reduce_(l, red);
}

/* ---- public entry points: under autocast, a loss computes in float32 ------------------------ */

tfw_tensor *tfw_nll_loss(const tfw_tensor *input, const tfw_tensor *target,
                         const tfw_tensor *weight, const char *reduction, int64_t ignore_index) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = nll_loss_impl(input, target, weight, reduction, ignore_index);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_mse_loss(const tfw_tensor *input, const tfw_tensor *target, const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = mse_loss_impl(input, target, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_l1_loss(const tfw_tensor *input, const tfw_tensor *target, const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = l1_loss_impl(input, target, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_smooth_l1_loss(const tfw_tensor *input, const tfw_tensor *target,
                               const char *reduction, double beta) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = smooth_l1_loss_impl(input, target, reduction, beta);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_huber_loss(const tfw_tensor *input, const tfw_tensor *target, const char *reduction,
                           double delta) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = huber_loss_impl(input, target, reduction, delta);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_binary_cross_entropy(const tfw_tensor *input, const tfw_tensor *target,
                                     const tfw_tensor *weight, const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = binary_cross_entropy_impl(input, target, weight, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_binary_cross_entropy_with_logits(const tfw_tensor *input, const tfw_tensor *target,
                                                 const tfw_tensor *weight,
                                                 const tfw_tensor *pos_weight,
                                                 const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = binary_cross_entropy_with_logits_impl(input, target, weight, pos_weight, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_kl_div(const tfw_tensor *input, const tfw_tensor *target, const char *reduction,
                       bool log_target) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = kl_div_impl(input, target, reduction, log_target);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_cosine_embedding_loss(const tfw_tensor *x1, const tfw_tensor *x2,
                                      const tfw_tensor *target, double margin,
                                      const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = cosine_embedding_loss_impl(x1, x2, target, margin, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_margin_ranking_loss(const tfw_tensor *x1, const tfw_tensor *x2,
                                    const tfw_tensor *target, double margin,
                                    const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = margin_ranking_loss_impl(x1, x2, target, margin, reduction);
  tfw__autocast_f32_region(false);
  return r;
}

tfw_tensor *tfw_triplet_margin_loss(const tfw_tensor *anchor, const tfw_tensor *positive,
                                    const tfw_tensor *negative, double margin, double p,
                                    double eps, bool swap, const char *reduction) {
  tfw__autocast_f32_region(true);
  tfw_tensor *r = triplet_margin_loss_impl(anchor, positive, negative, margin, p, eps, swap, reduction);
  tfw__autocast_f32_region(false);
  return r;
}
