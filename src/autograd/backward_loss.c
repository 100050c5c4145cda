/* Backward and forward-mode rules of cross_entropy and cross_entropy_backward.
 *
 * With a = the coefficient tensor (tfw__ce_parts: smoothed, weighted one-hot or probabilities),
 * A = sum_c a, sm = softmax(x) over the class dim and s = the loss gradient per row (g for
 * 'none', g / D for 'mean', g for 'sum'):
 *   loss_r = sum_c a (lse - x)          d/dx = s (A sm - a)  (the fused backward op)
 *   d/dp (probability targets)          = -s (1 - eps) w log_softmax(x)
 *   cross_entropy_backward's own rule:  d/dx <G, s (A sm - a)> = s A (sm G - sm sum_c(sm G))
 *                                       d/dg = reduce(sum_c G (A sm - a))
 *                                       d/dp = s (1 - eps) w (sum_c(sm G) - G)
 * all written with registered ops, so every order of derivative is available. The class
 * weight gets no gradient (TFW_EUNSUPPORTED, as PyTorch's "not implemented"). */
#include "autograd/autograd.h"
#include "ops/loss.h"

static tfw_tensor *own(const tfw_tensor *t) { return tfw_retain((tfw_tensor *)t); }
#define BIN_(NAME, F)                                     \
  static tfw_tensor *NAME(tfw_tensor *a, tfw_tensor *b) { \
    tfw_tensor *r = a && b ? F(a, b) : NULL;              \
    tfw_release(a), tfw_release(b);                       \
    return r;                                             \
  }
BIN_(sub_, tfw_sub) BIN_(mul_, tfw_mul) BIN_(div_, tfw_div)
static tfw_tensor *sumc_(tfw_tensor *a, int cd, bool keep) {
  tfw_tensor *r = a ? tfw_sum(a, 1, &cd, keep) : NULL;
  tfw_release(a);
  return r;
}
static tfw_tensor *sumall_(tfw_tensor *a) {
  tfw_tensor *r = a ? tfw_sum(a, 0, NULL, false) : NULL;
  tfw_release(a);
  return r;
}

typedef struct ce_ctx {
  const tfw_tensor *x, *target, *weight;
  int red;
  double eps;
  bool probs;
  tfw__ce_parts P;
} ce_ctx;

static tfw_status ctx_make(const tfw__call *c, int n_fixed, ce_ctx *k) {
  k->x = c->in[0];
  k->target = c->in[1];
  k->weight = c->n_in > n_fixed ? c->in[n_fixed] : NULL;
  k->red = (int)c->a.i[0];
  k->eps = c->a.f[0];
  k->probs = tfw_dtype_is_floating(k->target->dtype);
  return tfw__ce_parts_make(k->x, k->target, k->weight, c->a.i[1], k->eps, &k->P);
}

/* s broadcastable against x: g unsqueezed at the class dim ('none'), g / D ('mean'), g. */
static tfw_tensor *row_scale(const ce_ctx *k, const tfw_tensor *g) {
  if (k->red == TFW__RED_NONE && k->x->ndim > 1) return tfw_unsqueeze(g, k->P.cd);
  if (k->red == TFW__RED_MEAN) return tfw_div(g, k->P.D);
  return own(g);
}

/* reduce over rows like the loss: sum over the class dim ('none'), all (sum), / D (mean) */
static tfw_tensor *reduce_rows_(const ce_ctx *k, tfw_tensor *t) {
  if (k->red == TFW__RED_NONE) return sumc_(t, k->P.cd, false);
  tfw_tensor *s = sumall_(t);
  return k->red == TFW__RED_MEAN ? div_(s, own(k->P.D)) : s;
}

/* the weight factor (1 - eps) w of the probability coefficients (NULL w: a number) */
static tfw_tensor *pw_(const ce_ctx *k, tfw_tensor *t) {
  t = tfw__muls_consume(t, 1 - k->eps);
  return k->P.wb ? mul_(t, own(k->P.wb)) : t;
}

static tfw_status no_weight_grad(const char *op) {
  return tfw__error(TFW_EUNSUPPORTED, "%s: the gradient for 'weight' is not implemented (as in "
                    "PyTorch); set requires_grad false on the class weight", op);
}

static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__backward_ce(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  if (c->n_in > 2 && tfw__needs_grad(node, 2)) return no_weight_grad("cross_entropy");
  tfw_status st = TFW_OK;
  if (tfw__needs_grad(node, 0)) {
    tfw__call b = *c;
    b.op = &tfw__ops[TFW__OP_cross_entropy_backward];
    b.n_in = c->n_in + 1;
    b.in[2] = gout[0];
    if (c->n_in > 2) b.in[3] = c->in[2];
    st = give(node, gin, 0, tfw__op_run(&b));
    if (st) return st;
  }
  if (tfw__needs_grad(node, 1)) { /* probability targets */
    ce_ctx k;
    if ((st = ctx_make(c, 2, &k))) return st;
    tfw_tensor *ls = tfw_log_softmax(k.x, k.P.cd);
    tfw_tensor *t = tfw__muls_consume(mul_(pw_(&k, ls), row_scale(&k, gout[0])), -1);
    st = give(node, gin, 1, t);
    tfw__ce_parts_free(&k.P);
  }
  return st;
}

tfw_status tfw__jvp_ce(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                       tfw_tensor **tout) {
  ce_ctx k;
  tfw_status st = ctx_make(c, 2, &k);
  if (st) return st;
  tfw_tensor *acc = NULL;
  if (tin[0]) { /* sum_c (A sm - a) tx */
    tfw_tensor *A = sumc_(own(k.P.a), k.P.cd, true);
    tfw_tensor *d = sub_(mul_(A, tfw_softmax(k.x, k.P.cd)), own(k.P.a));
    acc = mul_(d, own(tin[0]));
  }
  if (c->n_in > 1 && tin[1]) { /* -(1 - eps) w log_softmax tp */
    tfw_tensor *t = tfw__muls_consume(mul_(pw_(&k, tfw_log_softmax(k.x, k.P.cd)), own(tin[1])), -1);
    acc = tfw__jvp_sum2(acc, t);
  }
  if (c->n_in > 2 && tin[2]) {
    tfw_release(acc);
    tfw__ce_parts_free(&k.P);
    return no_weight_grad("cross_entropy");
  }
  tfw_tensor *r = acc ? reduce_rows_(&k, acc) : NULL;
  tfw__ce_parts_free(&k.P);
  if (!r) return tfw_last_status();
  *tout = tfw__jvp_fit(r, outputs[0]);
  tfw_release(r);
  return *tout ? TFW_OK : tfw_last_status();
}

/* s A (sm v - sm sum_c(sm v)): the softmax Jacobian (symmetric) applied to v, scaled */
static tfw_tensor *hess_(const ce_ctx *k, const tfw_tensor *sm, const tfw_tensor *s,
                         const tfw_tensor *v) {
  tfw_tensor *smv = tfw_mul(sm, v);
  tfw_tensor *q = sumc_(smv ? own(smv) : NULL, k->P.cd, true);
  tfw_tensor *h = sub_(smv, mul_(own(sm), q));
  tfw_tensor *A = sumc_(own(k->P.a), k->P.cd, true);
  return mul_(mul_(h, A), own(s));
}

tfw_status tfw__backward_ce_bwd(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  if (c->n_in > 3 && tfw__needs_grad(node, 3)) return no_weight_grad("cross_entropy_backward");
  ce_ctx k;
  tfw_status st = ctx_make(c, 3, &k);
  if (st) return st;
  const tfw_tensor *G = gout[0], *g = c->in[2];
  tfw_tensor *sm = tfw_softmax(k.x, k.P.cd);
  tfw_tensor *s = sm ? row_scale(&k, g) : NULL;
  if (!s) {
    st = tfw_last_status();
    goto done;
  }
  if (tfw__needs_grad(node, 0) && (st = give(node, gin, 0, hess_(&k, sm, s, G)))) goto done;
  if (tfw__needs_grad(node, 2)) {
    tfw_tensor *A = sumc_(own(k.P.a), k.P.cd, true);
    tfw_tensor *d = sub_(mul_(A, own(sm)), own(k.P.a));
    tfw_tensor *t = reduce_rows_(&k, mul_(d, own(G)));
    if ((st = give(node, gin, 2, t))) goto done;
  }
  if (tfw__needs_grad(node, 1)) {
    tfw_tensor *q = sumc_(tfw_mul(sm, G), k.P.cd, true);
    tfw_tensor *t = mul_(pw_(&k, sub_(q, own(G))), own(s));
    st = give(node, gin, 1, t);
  }
done:
  tfw_release(sm), tfw_release(s);
  tfw__ce_parts_free(&k.P);
  return st;
}

tfw_status tfw__jvp_ce_bwd(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                           tfw_tensor **tout) {
  if (c->n_in > 3 && tin[3]) return no_weight_grad("cross_entropy_backward");
  ce_ctx k;
  tfw_status st = ctx_make(c, 3, &k);
  if (st) return st;
  tfw_tensor *sm = tfw_softmax(k.x, k.P.cd);
  tfw_tensor *s = sm ? row_scale(&k, c->in[2]) : NULL;
  tfw_tensor *acc = NULL;
  if (s && tin[0]) acc = hess_(&k, sm, s, tin[0]);
  if (s && tin[2]) { /* linear in g */
    tfw__call b = *c;
    b.in[2] = tin[2];
    acc = tfw__jvp_sum2(acc, tfw__op_run(&b));
  }
  if (s && tin[1]) { /* s (1 - eps) (sm sum_c(w tp) - w tp) */
    tfw_tensor *wtp = pw_(&k, own(tin[1]));
    tfw_tensor *q = sumc_(wtp ? own(wtp) : NULL, k.P.cd, true);
    acc = tfw__jvp_sum2(acc, mul_(sub_(mul_(own(sm), q), wtp), own(s)));
  }
  tfw_release(sm), tfw_release(s);
  tfw__ce_parts_free(&k.P);
  if (!acc) return tfw_last_status();
  *tout = tfw__jvp_fit(acc, outputs[0]);
  tfw_release(acc);
  return *tout ? TFW_OK : tfw_last_status();
}
