/* Backward and forward-mode (JVP) rules of the elementwise ops beyond the arithmetic core:
 * pow, remainder, minimum, maximum, the unary math functions, relu, clamp, where and
 * masked_fill.
 *
 * Each op's derivative is written once, as a function that multiplies a vector by the
 * Jacobian (elementwise: by f'(x)); the backward rule applies it to the output gradient and
 * sums to each input's shape, the JVP rule applies it to the tangents. Everything is built
 * from registered ops, so with create_graph the rules are recorded too and double backward
 * works; a derivative never uses the op's output in backward (the node saves inputs only),
 * so it is recomputed from the inputs there, while the JVP rules take the output they are
 * given.
 *
 * Conventions at non-differentiable points follow PyTorch (tools/autograd/derivatives.yaml):
 * relu'(0) = 0, abs'(0) = 0, sign' = 0; clamp passes the gradient where lo <= x <= hi
 * (bounds inclusive, a NaN bound is absent); minimum/maximum split the gradient in half
 * between tied inputs; d(a^b)/da = 0 where b == 0 and d(a^b)/db = 0 where a == 0 and b >= 0;
 * d remainder(a, b)/db = -floor(a / b). Conditions and masks (bool) get no gradient.
 *
 * Helpers named with a trailing underscore consume (release) their first tensor argument
 * and pass NULL through, so that a chain of ops stops at the first error with its message. */
#include <math.h>
#include <string.h>

#include "autograd/autograd.h"
#include "ops/activation.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* ---- consuming helpers --------------------------------------------------------------------- */

static tfw_tensor *mul_(tfw_tensor *a, const tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_mul(a, b) : NULL;
  tfw_release(a);
  return r;
}

static tfw_tensor *div_(tfw_tensor *a, const tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_div(a, b) : NULL;
  tfw_release(a);
  return r;
}

/* g / den, consuming den. */
static tfw_tensor *over_(const tfw_tensor *g, tfw_tensor *den) {
  tfw_tensor *r = den ? tfw_div(g, den) : NULL;
  tfw_release(den);
  return r;
}

static tfw_tensor *add_(tfw_tensor *a, tfw_tensor *b) { /* consumes both */
  tfw_tensor *r = a && b ? tfw_add(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}

static tfw_tensor *un_(tfw_tensor *(*f)(const tfw_tensor *), tfw_tensor *a) {
  tfw_tensor *r = a ? f(a) : NULL;
  tfw_release(a);
  return r;
}

static tfw_tensor *sq_(tfw_tensor *a) {
  tfw_tensor *r = a ? tfw_mul(a, a) : NULL;
  tfw_release(a);
  return r;
}

static tfw_tensor *own(const tfw_tensor *t) { return tfw_retain((tfw_tensor *)t); }

/* f(x): the given output y (JVP rules) or f recomputed from x (backward rules). The output
 * is taken as a detached alias: the rule's result becomes y's tangent, and a recorded op
 * saving y itself would close the cycle y -> tangent -> node -> y (a leak). */
static tfw_tensor *value(tfw_tensor *(*f)(const tfw_tensor *), const tfw_tensor *x,
                         const tfw_tensor *y) {
  return y ? tfw_detach(y) : f(x);
}

/* where(mask, t, 0): t where mask holds, else 0 (a zero, never t * 0, so inf/NaN in t do not
 * leak through). Consumes mask. */
static tfw_tensor *keep_(const tfw_tensor *t, tfw_tensor *mask) {
  if (!mask) return NULL;
  tfw_tensor *z = tfw_scalar(t->dtype, 0);
  tfw_tensor *r = z ? tfw_where(mask, t, z) : NULL;
  tfw_release(z), tfw_release(mask);
  return r;
}

/* where(mask, 0, t), consuming t and mask. */
static tfw_tensor *drop_(tfw_tensor *t, tfw_tensor *mask) {
  tfw_tensor *z = t ? tfw_scalar(t->dtype, 0) : NULL;
  tfw_tensor *r = z && mask ? tfw_where(mask, z, t) : NULL;
  tfw_release(z), tfw_release(mask), tfw_release(t);
  return r;
}

/* cmp(x, s) for a C scalar s: s as a float64 0-d tensor, which does not promote x, so the
 * comparison runs in x's compute dtype like the op's own kernel. */
static tfw_tensor *cmp_scalar(tfw_tensor *(*cmp)(const tfw_tensor *, const tfw_tensor *),
                              const tfw_tensor *x, double s) {
  tfw_tensor *st = tfw_scalar(TFW_DTYPE_F64, s);
  tfw_tensor *r = st ? cmp(x, st) : NULL;
  tfw_release(st);
  return r;
}

static tfw_tensor *and_(tfw_tensor *a, tfw_tensor *b) { /* consumes both */
  tfw_tensor *r = a && b ? tfw_logical_and(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}

/* A bool mask as 0/1 of dtype dt (a constant: masks carry no gradient). Consumes m. */
static tfw_tensor *as_(tfw_tensor *m, tfw_dtype dt) {
  tfw_tensor *r = m ? tfw_to_dtype(m, dt) : NULL;
  tfw_release(m);
  return r;
}

/* ---- rule plumbing --------------------------------------------------------------------------- */

/* gin[i] = sum_to(t) for input i, consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

/* *tout = t broadcast and cast to the output, consuming t. */
static tfw_status finish(tfw_tensor *t, const tfw_tensor *out, tfw_tensor **tout) {
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, out);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}

/* ---- unary ops: v * f'(x) --------------------------------------------------------------------
 * d_<op>(x, y, v): x the input, y the output f(x) or NULL (recompute), v the gradient or
 * tangent. Returns a new reference. */

static tfw_tensor *d_abs(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw_sign(x), v); /* sign(0) = 0: abs'(0) = 0 */
}

static tfw_tensor *d_relu(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return keep_(v, cmp_scalar(tfw_gt, x, 0)); /* relu'(0) = 0, as threshold_backward */
}

static tfw_tensor *d_sqrt(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return over_(v, tfw__muls_consume(value(tfw_sqrt, x, y), 2)); /* v / (2 sqrt(x)) */
}

static tfw_tensor *d_rsqrt(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(div_(tfw__muls_consume(value(tfw_rsqrt, x, y), -0.5), x), v); /* -x^(-3/2) / 2 */
}

static tfw_tensor *d_exp2(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw__muls_consume(value(tfw_exp2, x, y), M_LN2), v);
}

static tfw_tensor *d_log(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return tfw_div(v, x);
}

static tfw_tensor *d_log2(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return over_(v, tfw_mul_scalar(x, M_LN2));
}

static tfw_tensor *d_log1p(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return over_(v, tfw_add_scalar(x, 1));
}

static tfw_tensor *d_expm1(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw__adds_consume(value(tfw_expm1, x, y), 1), v); /* exp(x) = expm1(x) + 1 */
}

static tfw_tensor *d_sin(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw_cos(x), v);
}

static tfw_tensor *d_cos(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(un_(tfw_neg, tfw_sin(x)), v);
}

static tfw_tensor *d_tan(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw__adds_consume(sq_(value(tfw_tan, x, y)), 1), v); /* 1 + tan^2 */
}

static tfw_tensor *d_tanh(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  return mul_(tfw__adds_consume(un_(tfw_neg, sq_(value(tfw_tanh, x, y))), 1), v); /* 1 - tanh^2 */
}

static tfw_tensor *d_sigmoid(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  tfw_tensor *s = value(tfw_sigmoid, x, y);
  tfw_tensor *d = mul_(tfw__adds_consume(un_(tfw_neg, own(s)), 1), s); /* s (1 - s) */
  tfw_release(s);
  return mul_(d, v);
}

static tfw_tensor *d_erf(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  /* 2/sqrt(pi) exp(-x^2) */
  return mul_(tfw__muls_consume(un_(tfw_exp, un_(tfw_neg, sq_(own(x)))), M_2_SQRTPI), v);
}

static tfw_tensor *d_gelu(const tfw_tensor *x, const tfw_tensor *y, const tfw_tensor *v) {
  /* gelu = x Phi(x): gelu' = Phi(x) + x phi(x), Phi(x) = (1 + erf(x / sqrt 2)) / 2,
   * phi(x) = exp(-x^2 / 2) / sqrt(2 pi) */
  tfw_tensor *Phi = tfw__muls_consume(tfw__adds_consume(un_(tfw_erf, tfw_mul_scalar(x, M_SQRT1_2)), 1), 0.5);
  tfw_tensor *phi = tfw__muls_consume(un_(tfw_exp, tfw__muls_consume(sq_(own(x)), -0.5)), 0.5 * M_2_SQRTPI * M_SQRT1_2);
  return mul_(add_(Phi, mul_(phi, x)), v);
}

/* v * clamp'(x): v where lo <= x <= hi (a NaN bound is absent; a NaN x gets 0). */
static tfw_tensor *d_clamp(const tfw_tensor *x, double lo, double hi, const tfw_tensor *v) {
  if (isnan(lo) && isnan(hi)) return own(v);
  tfw_tensor *m = NULL;
  if (!isnan(lo)) m = cmp_scalar(tfw_ge, x, lo);
  if (!isnan(hi)) m = isnan(lo) ? cmp_scalar(tfw_le, x, hi) : m ? and_(m, cmp_scalar(tfw_le, x, hi)) : NULL;
  return keep_(v, m);
}

/* Backward and JVP of a unary op from its d_<op>. */
#define TFW__EW_UNARY(op)                                                                        \
  tfw_status tfw__backward_##op(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) { \
    return NEED(0) ? give(node, gin, 0, d_##op(IN(0), NULL, gout[0])) : TFW_OK;                  \
  }                                                                                              \
  tfw_status tfw__jvp_##op(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin, \
                           tfw_tensor **tout) {                                                  \
    return tin[0] ? finish(d_##op(c->in[0], outputs[0], tin[0]), outputs[0], tout) : TFW_OK;     \
  }
TFW__EW_UNARY(abs)
TFW__EW_UNARY(relu)
TFW__EW_UNARY(sqrt)
TFW__EW_UNARY(rsqrt)
TFW__EW_UNARY(exp2)
TFW__EW_UNARY(log)
TFW__EW_UNARY(log2)
TFW__EW_UNARY(log1p)
TFW__EW_UNARY(expm1)
TFW__EW_UNARY(sin)
TFW__EW_UNARY(cos)
TFW__EW_UNARY(tan)
TFW__EW_UNARY(tanh)
TFW__EW_UNARY(sigmoid)
TFW__EW_UNARY(erf)
#undef TFW__EW_UNARY

/* gelu: the fused gelu_backward op when the backward is not recorded (the usual case) and
 * x and the gradient agree in shape and dtype; the composite d_gelu otherwise (create_graph:
 * double backward needs registered differentiable ops). */
tfw_status tfw__backward_gelu(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  const tfw_tensor *x = IN(0), *g = gout[0];
  bool fused = !tfw_grad_enabled() && tfw_tensor_dtype(x) == tfw_tensor_dtype(g) &&
               tfw_tensor_ndim(x) == tfw_tensor_ndim(g) &&
               !memcmp(tfw_tensor_shape(x), tfw_tensor_shape(g), sizeof(int64_t) * (size_t)tfw_tensor_ndim(x));
  return give(node, gin, 0, fused ? tfw__gelu_backward(x, g) : d_gelu(x, NULL, g));
}
tfw_status tfw__jvp_gelu(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  return tin[0] ? finish(d_gelu(c->in[0], outputs[0], tin[0]), outputs[0], tout) : TFW_OK;
}

/* sign is piecewise constant: a zero gradient (as PyTorch), not a missing one. */
tfw_status tfw__backward_sign(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  gin[0] = tfw_zeros_like(IN(0));
  return gin[0] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__jvp_sign(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  tout[0] = tfw_zeros_like(outputs[0]);
  return tout[0] ? TFW_OK : tfw_last_status();
}

/* clamp(x, lo = f[0], hi = f[1]): the gradient passes where lo <= x <= hi. */
tfw_status tfw__backward_clamp(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const double *f = node->call.a.f;
  return NEED(0) ? give(node, gin, 0, d_clamp(IN(0), f[0], f[1], gout[0])) : TFW_OK;
}

tfw_status tfw__jvp_clamp(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                          tfw_tensor **tout) {
  return tin[0] ? finish(d_clamp(c->in[0], c->a.f[0], c->a.f[1], tin[0]), outputs[0], tout) : TFW_OK;
}

/* ---- binary ops ----------------------------------------------------------------------------- */

/* b - 1, keeping a C-scalar exponent (pow_scalar) a C scalar at full precision. */
static tfw_tensor *minus_one(const tfw_tensor *b) {
  if (!b->wrapped_number) return tfw_add_scalar(b, -1);
  double v;
  if (tfw_item(b, &v)) return NULL;
  tfw_tensor *r = tfw_scalar(b->dtype, v - 1);
  if (r) r->wrapped_number = true;
  return r;
}

/* v * d(a^b)/da = v b a^(b-1), and 0 where b == 0 (PyTorch's pow_backward_self). */
static tfw_tensor *d_pow_a(const tfw_tensor *a, const tfw_tensor *b, const tfw_tensor *v) {
  tfw_tensor *bm1 = minus_one(b);
  tfw_tensor *p = bm1 ? tfw_pow(a, bm1) : NULL;
  tfw_release(bm1);
  return drop_(mul_(mul_(p, b), v), cmp_scalar(tfw_eq, b, 0));
}

/* v * d(a^b)/db = v a^b log(a), and 0 where a == 0 and b >= 0 (pow_backward_exponent).
 * y = a^b or NULL (recompute). */
static tfw_tensor *d_pow_b(const tfw_tensor *a, const tfw_tensor *b, const tfw_tensor *y,
                           const tfw_tensor *v) {
  tfw_tensor *p = y ? tfw_detach(y) : tfw_pow(a, b); /* detached: see value() */
  /* log of an integer base in the result's dtype, not float32 */
  tfw_tensor *af = !p || tfw_dtype_is_floating(a->dtype) ? own(a) : tfw_to_dtype(a, p->dtype);
  tfw_tensor *t = mul_(un_(tfw_log, af), p);
  tfw_release(p);
  tfw_tensor *m = and_(cmp_scalar(tfw_eq, a, 0), cmp_scalar(tfw_ge, b, 0));
  return mul_(drop_(t, m), v);
}

tfw_status tfw__backward_pow(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, d_pow_a(IN(0), IN(1), gout[0]));
  if (!st && NEED(1)) st = give(node, gin, 1, d_pow_b(IN(0), IN(1), NULL, gout[0]));
  return st;
}

tfw_status tfw__jvp_pow(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *ta = tin[0] ? d_pow_a(c->in[0], c->in[1], tin[0]) : NULL;
  if (tin[0] && !ta) return tfw_last_status();
  tfw_tensor *tb = tin[1] ? d_pow_b(c->in[0], c->in[1], outputs[0], tin[1]) : NULL;
  if (tin[1] && !tb) {
    tfw_release(ta);
    return tfw_last_status();
  }
  return finish(tfw__jvp_sum2(ta, tb), outputs[0], tout);
}

/* v * d remainder(a, b)/db = -v floor(a / b) (floor_div is piecewise constant: no graph). */
static tfw_tensor *d_remainder_b(const tfw_tensor *a, const tfw_tensor *b, const tfw_tensor *v) {
  return mul_(un_(tfw_neg, tfw_floor_div(a, b)), v);
}

tfw_status tfw__backward_remainder(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, own(gout[0]));
  if (!st && NEED(1)) st = give(node, gin, 1, d_remainder_b(IN(0), IN(1), gout[0]));
  return st;
}

tfw_status tfw__jvp_remainder(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                              tfw_tensor **tout) {
  tfw_tensor *tb = tin[1] ? d_remainder_b(c->in[0], c->in[1], tin[1]) : NULL;
  if (tin[1] && !tb) return tfw_last_status();
  return finish(tfw__jvp_sum2(tin[0] ? own(tin[0]) : NULL, tb), outputs[0], tout);
}

/* The share of the gradient that input i of maximum (is_max) or minimum gets, as 0, 1/2 or 1
 * of dtype dt: 1 - [i loses] - [tie] / 2. With a NaN both inputs get all of it (as PyTorch). */
static tfw_tensor *minmax_share(const tfw_tensor *a, const tfw_tensor *b, bool is_max, int i,
                                tfw_dtype dt) {
  bool a_loses_if_lt = is_max == (i == 0); /* maximum: a loses where a < b; b where a > b */
  tfw_tensor *lose = as_(a_loses_if_lt ? tfw_lt(a, b) : tfw_gt(a, b), dt);
  tfw_tensor *tie = as_(tfw_eq(a, b), dt);
  return tfw__adds_consume(un_(tfw_neg, add_(lose, tfw__muls_consume(tie, 0.5))), 1);
}

static tfw_status minmax_backward(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin,
                                  bool is_max) {
  tfw_status st = TFW_OK;
  for (int i = 0; i < 2 && !st; i++)
    if (NEED(i)) st = give(node, gin, i, mul_(minmax_share(IN(0), IN(1), is_max, i, gout[0]->dtype), gout[0]));
  return st;
}

static tfw_status minmax_jvp(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                             tfw_tensor **tout, bool is_max) {
  tfw_tensor *t = NULL;
  for (int i = 0; i < 2; i++) {
    if (!tin[i]) continue;
    tfw_tensor *ti = mul_(minmax_share(c->in[0], c->in[1], is_max, i, outputs[0]->dtype), tin[i]);
    if (!ti) {
      tfw_release(t);
      return tfw_last_status();
    }
    t = tfw__jvp_sum2(t, ti);
  }
  return finish(t, outputs[0], tout);
}

tfw_status tfw__backward_maximum(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return minmax_backward(node, gout, gin, true);
}

tfw_status tfw__backward_minimum(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return minmax_backward(node, gout, gin, false);
}

tfw_status tfw__jvp_maximum(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  return minmax_jvp(c, outputs, tin, tout, true);
}

tfw_status tfw__jvp_minimum(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  return minmax_jvp(c, outputs, tin, tout, false);
}

/* ---- selection ------------------------------------------------------------------------------- */

/* where(cond, a, b): a's gradient where cond holds, b's elsewhere; cond gets none. */
tfw_status tfw__backward_where(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(1)) st = give(node, gin, 1, keep_(gout[0], own(IN(0))));
  if (!st && NEED(2)) st = give(node, gin, 2, drop_(own(gout[0]), own(IN(0))));
  return st;
}

/* Linear in (a, b) for a fixed cond: where(cond, ta, tb), zeros standing in for inputs without
 * a tangent (integer inputs included: their values must not leak into the tangent). */
tfw_status tfw__jvp_where(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                          tfw_tensor **tout) {
  tfw_tensor *z = tfw_scalar(outputs[0]->dtype, 0);
  if (!z) return tfw_last_status();
  tfw_tensor *t = tfw_where(c->in[0], tin[1] ? tin[1] : z, tin[2] ? tin[2] : z);
  tfw_release(z);
  return finish(t, outputs[0], tout);
}

/* masked_fill(a, mask, value): a's gradient where mask is false; the value is an attribute. */
tfw_status tfw__backward_masked_fill(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return NEED(0) ? give(node, gin, 0, tfw_masked_fill(gout[0], IN(1), 0.0)) : TFW_OK;
}

tfw_status tfw__jvp_masked_fill(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                                tfw_tensor **tout) {
  return tin[0] ? finish(tfw_masked_fill(tin[0], c->in[1], 0.0), outputs[0], tout) : TFW_OK;
}
