/* Backward and forward-mode rules of the convolution and pooling family (src/ops/conv.def).
 *
 * Convolutions (letters of src/ops/conv.h: big, small, weight) are bilinear in (input,
 * weight), so every gradient is another op of the family applied to the output gradient:
 *   conv:             gx = conv_transpose(g, w)  (output_padding restores the input size)
 *                     gw = conv_weight_grad(x, g),  gb = sum of g over batch and space
 *   conv_transpose:   gx = conv(g, w),  gw = conv_weight_grad(g, x),  gb as above
 *   conv_weight_grad: gx = conv_transpose(gy, gg),  ggy = conv(x, gg)
 * All three have rules, so double backward works to any order. When conv_transpose's
 * output_padding is >= stride (allowed when dilation is larger), conv(g, w) is longer than x
 * by floor(output_padding / stride): the extra entries read only zeros of x's adjoint, so
 * the result is narrowed (gx) or x is zero-padded (gw).
 * JVPs: the op on (tangent of x, w) plus the op on (x, tangent of w), plus the bias tangent.
 *
 * Pooling: max pooling's gradient is scatter_add of g at the indices (recomputed from the
 * saved input, since nodes keep inputs only) into zeros; its JVP gathers the tangent at the
 * indices. Both are registered ops, so second order comes free. When no graph is being
 * built (grad mode off: plain backward without create_graph), the gradient is instead one
 * fused pass, tfw__max_pool_grad (src/ops/pool.c): recompute each window's argmax and write
 * g there, without the forward's values, the index tensor, a zero fill or a scatter. avg and adaptive avg pooling
 * are linear: their adjoints are dedicated ops (avg_pool_backward,
 * adaptive_avg_pool2d_backward) whose own adjoints are the forward ops. */
#include <string.h>

#include "autograd/autograd.h"
#include "ops/conv.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

/* Runs op id on (a, b) with groups and ints[] = the S-entry lists given (internal dims of g
 * mapped back to the op's S spatial dims). */
static tfw_tensor *run2(tfw__op_id id, const tfw_tensor *a, const tfw_tensor *b,
                        const tfw__conv_geom *g, int nl, const int64_t *const *lists) {
  const tfw_tensor *in[2] = {a, b};
  tfw__call c;
  tfw__call_init(&c, id, 2, in);
  c.a.n_ints = nl * g->S;
  for (int q = 0; q < nl; q++)
    for (int j = 0; j < g->S; j++) c.a.ints[q * g->S + j] = lists[q][2 - g->S + j];
  c.a.i[0] = g->G;
  return tfw__op_run(&c);
}

static tfw__op_id conv_id(int S) { return S == 1 ? TFW__OP_conv1d : TFW__OP_conv2d; }
static tfw__op_id conv_tr_id(int S) {
  return S == 1 ? TFW__OP_conv_transpose1d : TFW__OP_conv_transpose2d;
}

/* conv(a, w) with g's stride, padding, dilation. */
static tfw_tensor *conv_of(const tfw__conv_geom *g, const tfw_tensor *a, const tfw_tensor *w) {
  const int64_t *l[3] = {g->s, g->p, g->d};
  return run2(conv_id(g->S), a, w, g, 3, l);
}

/* conv_transpose(a, w) producing the big size g->L. */
static tfw_tensor *conv_tr_of(const tfw__conv_geom *g, const tfw_tensor *a, const tfw_tensor *w) {
  int64_t op[2];
  for (int i = 0; i < 2; i++)
    op[i] = g->L[i] - ((g->P[i] - 1) * g->s[i] - 2 * g->p[i] + g->d[i] * (g->k[i] - 1) + 1);
  const int64_t *l[4] = {g->s, g->p, op, g->d};
  return run2(conv_tr_id(g->S), a, w, g, 4, l);
}

static tfw_tensor *wgrad_of(const tfw__conv_geom *g, const tfw_tensor *big, const tfw_tensor *small) {
  const int64_t *l[4] = {g->k, g->s, g->p, g->d};
  return run2(TFW__OP_conv_weight_grad, big, small, g, 4, l);
}

/* Sum of g over every dim but 1 (the bias gradient). */
static tfw_tensor *bias_grad(const tfw_tensor *g) {
  int dims[TFW_MAX_DIMS], nd = 0;
  for (int d = 0; d < g->ndim; d++)
    if (d != 1) dims[nd++] = d;
  return tfw_sum(g, nd, dims, false);
}

/* Extra length of conv(big) over the small size when output_padding >= stride. */
static int64_t overhang(const tfw__conv_geom *g, int i) {
  int64_t full = (g->L[i] + 2 * g->p[i] - g->d[i] * (g->k[i] - 1) - 1) / g->s[i] + 1;
  return full - g->P[i];
}

tfw_status tfw__backward_conv(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw__conv_geom g;
  tfw_status st = tfw__conv_geometry(&node->call, &g);
  if (st) return st;
  const tfw_tensor *G = gout[0];
  const tfw__op_id id = node->op->id;
  if (id == TFW__OP_conv_weight_grad) { /* inputs x (big), gy (small); G = d(weight) */
    if (NEED(0)) st = give(node, gin, 0, conv_tr_of(&g, IN(1), G));
    if (!st && NEED(1)) st = give(node, gin, 1, conv_of(&g, IN(0), G));
    return st;
  }
  if (id == TFW__OP_conv1d || id == TFW__OP_conv2d) {
    if (NEED(0)) st = give(node, gin, 0, conv_tr_of(&g, G, IN(1)));
    if (!st && NEED(1)) st = give(node, gin, 1, wgrad_of(&g, IN(0), G));
  } else { /* conv_transpose: x small, G big */
    bool over = overhang(&g, 0) > 0 || overhang(&g, 1) > 0;
    if (NEED(0)) {
      tfw_tensor *r = conv_of(&g, G, IN(1));
      for (int j = 0; r && over && j < g.S; j++) {
        tfw_tensor *n = tfw_narrow(r, 2 + j, 0, g.P[2 - g.S + j]);
        tfw_release(r);
        r = n;
      }
      st = give(node, gin, 0, r);
    }
    if (!st && NEED(1)) {
      tfw_tensor *xp = NULL;
      if (over) {
        int64_t pads[4] = {0, 0, 0, 0};
        for (int j = 0; j < g.S; j++) pads[2 * (g.S - 1 - j) + 1] = overhang(&g, 2 - g.S + j);
        if (!(xp = tfw_pad(IN(0), g.S, pads, TFW_PAD_CONSTANT, 0.0))) return tfw_last_status();
      }
      st = give(node, gin, 1, wgrad_of(&g, G, over ? xp : IN(0)));
      tfw_release(xp);
    }
  }
  if (!st && node->call.n_in == 3 && NEED(2)) st = give(node, gin, 2, bias_grad(G));
  return st;
}

tfw_status tfw__jvp_conv(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  tfw_tensor *acc = NULL;
  for (int i = 0; i < 2; i++) {
    if (!tin[i]) continue;
    tfw__call t = *c;
    t.n_in = 2;
    t.in[i] = tin[i];
    tfw_tensor *r = tfw__op_run(&t);
    if (!r) {
      tfw_release(acc);
      return tfw_last_status();
    }
    acc = tfw__jvp_sum2(acc, r);
  }
  if (c->n_in == 3 && tin[2]) {
    int64_t shape[TFW_MAX_DIMS];
    const tfw_tensor *o = outputs[0];
    for (int d = 0; d < o->ndim; d++) shape[d] = d == 1 ? o->shape[1] : 1;
    tfw_tensor *b = tfw_reshape(tin[2], o->ndim, shape);
    if (!b) {
      tfw_release(acc);
      return tfw_last_status();
    }
    acc = tfw__jvp_sum2(acc, b);
  }
  if (!acc) return tfw__error(TFW_EINTERNAL, "%s jvp: no tangent", c->op->name);
  *tout = tfw__jvp_fit(acc, outputs[0]);
  tfw_release(acc);
  return *tout ? TFW_OK : tfw_last_status();
}

/* ---- pooling --------------------------------------------------------------------------- */

/* t viewed/reshaped as [N, C, prod(spatial)]. */
static tfw_tensor *flat3(const tfw_tensor *t) {
  int64_t shape[3] = {t->shape[0], t->shape[1], 1};
  for (int d = 2; d < t->ndim; d++) shape[2] *= t->shape[d];
  return tfw_reshape(t, 3, shape);
}

tfw_status tfw__backward_max_pool(const tfw__node *node, tfw_tensor *const *gout,
                                  tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  const tfw_tensor *x = IN(0);
  if (!tfw_grad_enabled()) { /* first order: one fused pass, nothing to record */
    tfw_tensor *gx;
    tfw_status fst = tfw__max_pool_grad(&node->call, gout[0], &gx);
    return fst ? fst : give(node, gin, 0, gx);
  }
  tfw_tensor *out[2];
  bool prev = tfw_set_grad_enabled(false);
  tfw_status st = tfw__op_run_multi(&node->call, out); /* indices: recomputed */
  tfw_set_grad_enabled(prev);
  if (st) return st;
  tfw_release(out[0]);
  tfw_tensor *idx = flat3(out[1]), *g = flat3(gout[0]);
  int64_t zshape[3] = {x->shape[0], x->shape[1], 1};
  for (int d = 2; d < x->ndim; d++) zshape[2] *= x->shape[d];
  tfw_tensor *z = tfw_zeros(gout[0]->dtype, 3, zshape);
  tfw_tensor *s = idx && g && z ? tfw_scatter_add(z, 2, idx, g) : NULL;
  tfw_tensor *r = s ? tfw_reshape(s, x->ndim, x->shape) : NULL;
  tfw_release(out[1]), tfw_release(idx), tfw_release(g), tfw_release(z), tfw_release(s);
  return give(node, gin, 0, r);
}

tfw_status tfw__jvp_max_pool(const tfw__call *c, tfw_tensor *const *outputs,
                             tfw_tensor *const *tin, tfw_tensor **tout) {
  if (!tin[0]) return TFW_OK;
  tfw_tensor *t = flat3(tin[0]), *idx = flat3(outputs[1]);
  tfw_tensor *gth = t && idx ? tfw_gather(t, 2, idx) : NULL;
  tfw_tensor *r = gth ? tfw_reshape(gth, outputs[0]->ndim, outputs[0]->shape) : NULL;
  tfw_release(t), tfw_release(idx), tfw_release(gth);
  if (!r) return tfw_last_status();
  *tout = tfw__jvp_fit(r, outputs[0]);
  tfw_release(r);
  return *tout ? TFW_OK : tfw_last_status();
}

/* avg_pool <-> avg_pool_backward and adaptive_avg_pool2d <-> its backward: each is the
 * other's adjoint; the attributes carry over (sizes swap roles). */
tfw_status tfw__backward_avg_pool(const tfw__node *node, tfw_tensor *const *gout,
                                  tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  const tfw_tensor *x = IN(0);
  const int S = x->ndim - 2;
  tfw__call c = node->call;
  const tfw_tensor *g = gout[0];
  c.in[0] = g;
  switch (node->op->id) {
  case TFW__OP_avg_pool1d:
  case TFW__OP_avg_pool2d:
    c.op = &tfw__ops[TFW__OP_avg_pool_backward];
    c.a.n_ints = 4 * S;
    for (int j = 0; j < S; j++) c.a.ints[3 * S + j] = x->shape[2 + j];
    break;
  case TFW__OP_avg_pool_backward:
    c.op = &tfw__ops[S == 1 ? TFW__OP_avg_pool1d : TFW__OP_avg_pool2d];
    c.a.n_ints = 3 * S;
    break;
  case TFW__OP_adaptive_avg_pool2d:
    c.op = &tfw__ops[TFW__OP_adaptive_avg_pool2d_backward];
    c.a.ints[0] = x->shape[2], c.a.ints[1] = x->shape[3];
    break;
  default: /* adaptive_avg_pool2d_backward */
    c.op = &tfw__ops[TFW__OP_adaptive_avg_pool2d];
    c.a.ints[0] = x->shape[2], c.a.ints[1] = x->shape[3];
    break;
  }
  return give(node, gin, 0, tfw__op_run(&c));
}

tfw_status tfw__backward_adaptive_avg_pool(const tfw__node *node, tfw_tensor *const *gout,
                                           tfw_tensor **gin) {
  return tfw__backward_avg_pool(node, gout, gin);
}
