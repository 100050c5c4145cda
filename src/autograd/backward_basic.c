/* Backward rules of the arithmetic core: add, sub, mul, div, neg, exp, sum, mean, matmul,
 * transpose, view, reshape. Each rule uses registered ops only, so that with create_graph
 * the rule is recorded too and double backward works. Rules write NULL for inputs that do
 * not need a gradient (tfw__needs_grad) to save work. */
#include "autograd/autograd.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* gin[i] = sum_to(t) for input i, consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__backward_add(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_retain(gout[0]));
  if (!st && NEED(1)) st = give(node, gin, 1, tfw_retain(gout[0]));
  return st;
}

tfw_status tfw__backward_sub(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_retain(gout[0]));
  if (!st && NEED(1)) st = give(node, gin, 1, tfw_neg(gout[0]));
  return st;
}

tfw_status tfw__backward_mul(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_mul(gout[0], IN(1)));
  if (!st && NEED(1)) st = give(node, gin, 1, tfw_mul(gout[0], IN(0)));
  return st;
}

tfw_status tfw__backward_div(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_div(gout[0], IN(1)));
  if (!st && NEED(1)) {
    /* d(a/b)/db = -a / b^2 = -(a/b)/b */
    tfw_tensor *q = tfw_div(IN(0), IN(1));
    tfw_tensor *qb = q ? tfw_div(q, IN(1)) : NULL;
    tfw_tensor *t = qb ? tfw_mul(gout[0], qb) : NULL;
    tfw_tensor *nt = t ? tfw_neg(t) : NULL;
    tfw_release(q), tfw_release(qb), tfw_release(t);
    st = give(node, gin, 1, nt);
  }
  return st;
}

tfw_status tfw__backward_neg(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return give(node, gin, 0, tfw_neg(gout[0]));
}

tfw_status tfw__backward_exp(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_tensor *e = tfw_exp(IN(0));
  tfw_tensor *t = e ? tfw_mul(gout[0], e) : NULL;
  tfw_release(e);
  return give(node, gin, 0, t);
}

/* Reshapes g (the reduced result) so it broadcasts against the input: reduced dims become
 * size 1 when keepdim was false. */
static tfw_tensor *unreduce(const tfw__node *node, const tfw_tensor *g) {
  const tfw_tensor *x = IN(0);
  bool mask[TFW_MAX_DIMS];
  if (tfw__reduce_mask(node->op->name, x, &node->call.a, mask)) return NULL;
  int64_t kshape[TFW_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) kshape[d] = mask[d] ? 1 : x->shape[d];
  tfw_tensor *r = tfw_reshape(g, x->ndim, kshape);
  if (!r) return NULL;
  tfw_tensor *e = tfw_expand(r, x->ndim, x->shape);
  tfw_release(r);
  return e;
}

tfw_status tfw__backward_sum(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return give(node, gin, 0, unreduce(node, gout[0]));
}

tfw_status tfw__backward_mean(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  int64_t n_in = tfw__numel(x->ndim, x->shape);
  int64_t n_out = tfw__numel(gout[0]->ndim, gout[0]->shape);
  double count = n_out > 0 ? (double)n_in / (double)n_out : 0;
  tfw_tensor *e = unreduce(node, gout[0]);
  tfw_tensor *t = e ? tfw_mul_scalar(e, count > 0 ? 1.0 / count : 0.0) : NULL;
  tfw_release(e);
  return give(node, gin, 0, t);
}

/* Transposes the last two dims (a view). */
static tfw_tensor *mT(const tfw_tensor *t) { return tfw_transpose(t, -2, -1); }

tfw_status tfw__backward_matmul(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *a = IN(0), *b = IN(1);
  tfw_status st = TFW_OK;
  /* numpy.matmul's 1-d promotion, undone at the end */
  tfw_tensor *a1 = a->ndim == 1 ? tfw_unsqueeze(a, 0) : tfw_retain((tfw_tensor *)a);
  tfw_tensor *b1 = b->ndim == 1 ? tfw_unsqueeze(b, -1) : tfw_retain((tfw_tensor *)b);
  tfw_tensor *g1 = tfw_retain(gout[0]), *t;
  if (a->ndim == 1 && g1) t = tfw_unsqueeze(g1, g1->ndim - 1), tfw_release(g1), g1 = t;
  if (b->ndim == 1 && g1) t = tfw_unsqueeze(g1, g1->ndim), tfw_release(g1), g1 = t;
  if (!a1 || !b1 || !g1) {
    st = tfw_last_status();
    goto done;
  }
  for (int i = 0; i < 2 && !st; i++) {
    if (!NEED(i)) continue;
    const tfw_tensor *x1 = i == 0 ? a1 : b1, *x = i == 0 ? a : b;
    tfw_tensor *tr = mT(i == 0 ? b1 : a1);
    tfw_tensor *p = !tr ? NULL : i == 0 ? tfw_matmul(g1, tr) : tfw_matmul(tr, g1);
    tfw_tensor *s = p ? tfw__sum_to(p, x1->ndim, x1->shape, x->dtype) : NULL;
    gin[i] = s ? tfw_reshape(s, x->ndim, x->shape) : NULL;
    tfw_release(tr), tfw_release(p), tfw_release(s);
    if (!gin[i]) st = tfw_last_status();
  }
done:
  tfw_release(a1), tfw_release(b1), tfw_release(g1);
  return st;
}

tfw_status tfw__backward_transpose(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  gin[0] = tfw_transpose(gout[0], (int)node->call.a.i[0], (int)node->call.a.i[1]);
  return gin[0] ? TFW_OK : tfw_last_status();
}

tfw_status tfw__backward_reshape(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  gin[0] = tfw_reshape(gout[0], x->ndim, x->shape);
  return gin[0] ? TFW_OK : tfw_last_status();
}
