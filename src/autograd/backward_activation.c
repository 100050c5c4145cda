/* Backward and forward-mode (JVP) rules of the activation ops (activation.def).
 *
 * Each activation's derivative is written once as d_<op>(x, attrs, v) = v * f'(x), built from
 * registered ops (where, mul, exp, sigmoid, tanh, softplus, ...), so the backward rule
 * (v = output gradient) and the JVP rule (v = tangent) share it, and with create_graph the
 * rule is recorded: double backward works. Conventions at kinks follow PyTorch's
 * derivatives.yaml: leaky_relu/elu/selu/celu take the negative branch at x <= 0;
 * hardswish' = x/3 + 1/2 on [-3, 3] (0 below, 1 above); hardsigmoid' = 1/6 on (-3, 3);
 * softplus' = 1 above the threshold, sigmoid(beta x) below.
 *
 * Helpers with a trailing underscore consume their tensor arguments and pass NULL through,
 * so a chain stops at the first error with its message. */
#include <math.h>

#include "autograd/autograd.h"
#include "ops/activation.h"

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_K 0.7978845608028654

static tfw_tensor *mul_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_mul(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *add_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_add(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *own(const tfw_tensor *t) { return tfw_retain((tfw_tensor *)t); }
/* 1 - a^2, consuming a */
static tfw_tensor *one_minus_sq_(tfw_tensor *a) {
  tfw_tensor *sq = a ? tfw_mul(a, a) : NULL;
  tfw_release(a);
  return tfw__adds_consume(tfw__muls_consume(sq, -1), 1);
}
/* cmp(x, s) with s a float64 0-d tensor (does not promote x) */
static tfw_tensor *cmp_s(tfw_tensor *(*cmp)(const tfw_tensor *, const tfw_tensor *),
                         const tfw_tensor *x, double s) {
  tfw_tensor *st = tfw_scalar(TFW_DTYPE_F64, s);
  tfw_tensor *r = st ? cmp(x, st) : NULL;
  tfw_release(st);
  return r;
}
/* where(m, a, b), consuming all three */
static tfw_tensor *where_(tfw_tensor *m, tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = m && a && b ? tfw_where(m, a, b) : NULL;
  tfw_release(m), tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *zero_like(const tfw_tensor *t) { return tfw_scalar(t->dtype, 0); }

static tfw_tensor *un_(tfw_tensor *(*f)(const tfw_tensor *), tfw_tensor *a) {
  tfw_tensor *r = a ? f(a) : NULL;
  tfw_release(a);
  return r;
}

/* v * f'(x) for activation op id with attributes a (new reference or NULL). */
static tfw_tensor *deriv(tfw__op_id id, const tfw__attrs *a, const tfw_tensor *x,
                         const tfw_tensor *v) {
  switch (id) {
  case TFW__OP_leaky_relu:
    return where_(cmp_s(tfw_gt, x, 0), own(v), tfw_mul_scalar(v, a->f[0]));
  case TFW__OP_elu:
    return where_(cmp_s(tfw_gt, x, 0), own(v), mul_(tfw__muls_consume(tfw_exp(x), a->f[0]), own(v)));
  case TFW__OP_selu:
    return where_(cmp_s(tfw_gt, x, 0), tfw_mul_scalar(v, SELU_SCALE),
                  mul_(tfw__muls_consume(tfw_exp(x), SELU_SCALE * SELU_ALPHA), own(v)));
  case TFW__OP_celu:
    return where_(cmp_s(tfw_gt, x, 0), own(v),
                  mul_(un_(tfw_exp, tfw_mul_scalar(x, 1.0 / a->f[0])), own(v)));
  case TFW__OP_gelu_tanh: {
    /* t = tanh(k x (1 + c x^2)); f' = (1 + t) / 2 + x (1 - t^2) k (1 + 3 c x^2) / 2 */
    tfw_tensor *x2 = tfw_mul(x, x);
    tfw_tensor *t = un_(tfw_tanh, mul_(tfw__adds_consume(tfw__muls_consume(own(x2), 0.044715 * GELU_K), GELU_K), own(x)));
    tfw_tensor *p = tfw__muls_consume(tfw__adds_consume(t ? own(t) : NULL, 1), 0.5);
    tfw_tensor *q = mul_(mul_(one_minus_sq_(t), own(x)),
                         tfw__adds_consume(tfw__muls_consume(x2, 3 * 0.044715 * 0.5 * GELU_K), 0.5 * GELU_K));
    return mul_(add_(p, q), own(v));
  }
  case TFW__OP_silu: { /* s (1 + x (1 - s)) */
    tfw_tensor *s = tfw_sigmoid(x);
    tfw_tensor *r = tfw__adds_consume(mul_(tfw__adds_consume(tfw__muls_consume(s ? own(s) : NULL, -1), 1), own(x)), 1);
    return mul_(mul_(s, r), own(v));
  }
  case TFW__OP_mish: { /* t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x)) */
    tfw_tensor *t = un_(tfw_tanh, tfw__act(TFW__OP_softplus, x, 1, INFINITY));
    tfw_tensor *q = mul_(mul_(tfw_sigmoid(x), own(x)), one_minus_sq_(t ? own(t) : NULL));
    return mul_(add_(t, q), own(v));
  }
  case TFW__OP_hardswish: {
    tfw_tensor *mid = mul_(tfw__adds_consume(tfw_mul_scalar(x, 1.0 / 3), 0.5), own(v));
    tfw_tensor *hi = where_(cmp_s(tfw_le, x, 3), mid, own(v));
    return where_(cmp_s(tfw_lt, x, -3), zero_like(v), hi);
  }
  case TFW__OP_hardsigmoid: {
    tfw_tensor *m = cmp_s(tfw_gt, x, -3), *m2 = cmp_s(tfw_lt, x, 3);
    tfw_tensor *in = m && m2 ? tfw_logical_and(m, m2) : NULL;
    tfw_release(m), tfw_release(m2);
    return where_(in, tfw_mul_scalar(v, 1.0 / 6), zero_like(v));
  }
  case TFW__OP_softplus: {
    tfw_tensor *z = tfw_mul_scalar(x, a->f[0]);
    tfw_tensor *above = z ? cmp_s(tfw_gt, z, a->f[1]) : NULL;
    return where_(above, own(v), mul_(un_(tfw_sigmoid, z), own(v)));
  }
  case TFW__OP_softsign: { /* 1 / (1 + |x|)^2 */
    tfw_tensor *d = tfw__adds_consume(tfw_abs(x), 1);
    tfw_tensor *d2 = mul_(d ? own(d) : NULL, d);
    tfw_tensor *r = d2 ? tfw_div(v, d2) : NULL;
    tfw_release(d2);
    return r;
  }
  default:
    tfw__error(TFW_EINTERNAL, "activation rule: no derivative for op %d", (int)id);
    return NULL;
  }
}

tfw_status tfw__backward_act(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = tfw__node_input(node, 0);
  tfw_tensor *d = deriv(node->op->id, &node->call.a, x, gout[0]);
  if (!d) return tfw_last_status();
  gin[0] = tfw__grad_for_input(node, 0, d);
  tfw_release(d);
  return gin[0] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__jvp_act(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *d = deriv(c->op->id, &c->a, c->in[0], tin[0]);
  if (!d) return tfw_last_status();
  *tout = tfw__jvp_fit(d, outputs[0]);
  tfw_release(d);
  return *tout ? TFW_OK : tfw_last_status();
}

/* glu: a, b the halves of x along dim; d(a s(b)) = s da + a s (1 - s) db. */
static tfw_status glu_halves(const tfw_tensor *x, int64_t dim, tfw_tensor **a, tfw_tensor **b) {
  int d = (int)(dim < 0 ? dim + x->ndim : dim);
  int64_t h = x->shape[d] / 2;
  *a = tfw_narrow(x, d, 0, h);
  *b = tfw_narrow(x, d, h, h);
  if (!*a || !*b) {
    tfw_release(*a), tfw_release(*b);
    return tfw_last_status();
  }
  return TFW_OK;
}

tfw_status tfw__backward_glu(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = tfw__node_input(node, 0);
  tfw_tensor *a, *b;
  tfw_status st = glu_halves(x, node->call.a.i[0], &a, &b);
  if (st) return st;
  tfw_tensor *s = tfw_sigmoid(b);
  tfw_tensor *ga = s ? tfw_mul(gout[0], s) : NULL;
  tfw_tensor *ds = mul_(tfw__adds_consume(tfw__muls_consume(s ? own(s) : NULL, -1), 1), s); /* s (1 - s) */
  tfw_tensor *gb = mul_(mul_(ds, own(a)), own(gout[0]));
  tfw_tensor *parts[2] = {ga, gb};
  tfw_tensor *g = ga && gb ? tfw_cat(2, parts, (int)node->call.a.i[0]) : NULL;
  tfw_release(ga), tfw_release(gb), tfw_release(a), tfw_release(b);
  if (!g) return tfw_last_status();
  gin[0] = tfw__grad_for_input(node, 0, g);
  tfw_release(g);
  return gin[0] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__jvp_glu(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *a, *b, *ta, *tb;
  tfw_status st = glu_halves(c->in[0], c->a.i[0], &a, &b);
  if (st) return st;
  st = glu_halves(tin[0], c->a.i[0], &ta, &tb);
  if (st) {
    tfw_release(a), tfw_release(b);
    return st;
  }
  tfw_tensor *s = tfw_sigmoid(b);
  tfw_tensor *p = s ? tfw_mul(ta, s) : NULL;
  tfw_tensor *ds = mul_(tfw__adds_consume(tfw__muls_consume(s ? own(s) : NULL, -1), 1), s);
  tfw_tensor *q = mul_(mul_(ds, own(a)), own(tb));
  tfw_tensor *t = add_(p, q);
  tfw_release(a), tfw_release(b), tfw_release(ta), tfw_release(tb);
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, outputs[0]);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}
