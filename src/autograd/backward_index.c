/* Backward and forward-mode rules of the index ops: index_select, gather, take_along_dim,
 * scatter, scatter_add, index_add, masked_select, sort, topk.
 *
 * Gathers scatter-add their gradient back into zeros (index_select -> index_add, gather and
 * take_along_dim -> scatter_add, masked_select -> index_add over the flattened mask's
 * nonzero positions); scatters gather it back. Index and mask inputs get no gradient. All
 * rules use registered ops, so they are recorded with create_graph (double backward).
 *
 * scatter with repeated indices: only the src element that wins (the last in index order,
 * like the kernel) reaches the output, so only it gets a gradient; the others get 0 (PyTorch
 * gives every duplicate the gradient, which is not the derivative). sort and topk send the
 * values' gradient to the selected indices, recomputed from the saved input. */
#include "autograd/autograd.h"
#include "core/iter.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* gin[i] = sum_to(t) for input i (shape and dtype of the input), consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

static int dim_of(const tfw__node *node) { return (int)node->call.a.i[0]; }

/* Zeros with x's shape and g's dtype. */
static tfw_tensor *zeros_as(const tfw_tensor *x, const tfw_tensor *g) {
  return tfw_zeros(g->dtype, x->ndim, x->shape);
}

/* t (whose shape is <= shape on every dim) padded with zeros at the end of each dim to shape:
 * the gradient of a src that is larger than the index. Consumes t. */
static tfw_tensor *grow_to(tfw_tensor *t, int ndim, const int64_t *shape) {
  if (!t || t->ndim != ndim) return t;
  int64_t pads[2 * TFW_MAX_DIMS];
  bool any = false;
  for (int k = 0; k < ndim; k++) {
    pads[2 * k] = 0;
    pads[2 * k + 1] = shape[ndim - 1 - k] - t->shape[ndim - 1 - k];
    any |= pads[2 * k + 1] != 0;
  }
  if (!any) return t;
  tfw_tensor *r = tfw_pad(t, ndim, pads, TFW_PAD_CONSTANT, 0.0);
  tfw_release(t);
  return r;
}

/* ---- gathers ------------------------------------------------------------------------------- */

tfw_status tfw__backward_index_select(const tfw__node *node, tfw_tensor *const *gout,
                                      tfw_tensor **gin) {
  tfw_tensor *z = zeros_as(IN(0), gout[0]);
  tfw_tensor *r = z ? tfw_index_add(z, dim_of(node), IN(1), gout[0]) : NULL;
  tfw_release(z);
  return give(node, gin, 0, r);
}

tfw_status tfw__backward_gather(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_tensor *z = zeros_as(IN(0), gout[0]);
  tfw_tensor *r = z ? tfw_scatter_add(z, dim_of(node), IN(1), gout[0]) : NULL;
  tfw_release(z);
  return give(node, gin, 0, r);
}

/* take_along_dim broadcasts t and index on the other dims: scatter-add into the broadcast t
 * (the output's shape with t's size at dim), then sum_to t's shape. */
tfw_status tfw__backward_take_along_dim(const tfw__node *node, tfw_tensor *const *gout,
                                        tfw_tensor **gin) {
  const tfw_tensor *x = IN(0), *g = gout[0];
  int d = tfw__wrap_dim("take_along_dim", dim_of(node), x->ndim);
  if (d < 0) return tfw_last_status();
  int64_t shape[TFW_MAX_DIMS];
  for (int k = 0; k < g->ndim; k++) shape[k] = k == d ? x->shape[d] : g->shape[k];
  tfw_tensor *z = tfw_zeros(g->dtype, g->ndim, shape);
  tfw_tensor *idx = tfw_expand(IN(1), g->ndim, g->shape);
  tfw_tensor *r = z && idx ? tfw_scatter_add(z, d, idx, g) : NULL;
  tfw_release(z), tfw_release(idx);
  return give(node, gin, 0, r);
}

/* masked_select: the 1-d gradient added at the flat positions where the (broadcast) mask is
 * true, in the broadcast shape, then summed back to t's shape. */
tfw_status tfw__backward_masked_select(const tfw__node *node, tfw_tensor *const *gout,
                                       tfw_tensor **gin) {
  const tfw_tensor *both[2] = {IN(0), IN(1)};
  int nd;
  int64_t shape[TFW_MAX_DIMS];
  if (tfw__broadcast_shapes("masked_select", 2, both, &nd, shape)) return tfw_last_status();
  int64_t n = tfw__numel(nd, shape);
  tfw_tensor *m = tfw_expand(IN(1), nd, shape);
  tfw_tensor *flat = m ? tfw_reshape(m, 1, &n) : NULL;
  tfw_tensor *nz = flat ? tfw_nonzero(flat) : NULL; /* [count, 1] */
  tfw_tensor *pos = nz ? tfw_reshape(nz, 1, (const int64_t[]){-1}) : NULL;
  tfw_tensor *z = tfw_zeros(gout[0]->dtype, 1, &n);
  tfw_tensor *r = pos && z ? tfw_index_add(z, 0, pos, gout[0]) : NULL;
  tfw_tensor *full = r ? tfw_reshape(r, nd, shape) : NULL;
  tfw_release(m), tfw_release(flat), tfw_release(nz), tfw_release(pos), tfw_release(z);
  tfw_release(r);
  return give(node, gin, 0, full);
}

/* ---- scatters ------------------------------------------------------------------------------ */

/* For scatter: the positions of index (a float 0/1 tensor of index's shape, g's dtype) whose
 * src element is the one left in the output: scatter the position ids and read them back. */
static tfw_tensor *scatter_winners(const tfw__node *node, const tfw_tensor *g) {
  const tfw_tensor *x = IN(0), *index = IN(1);
  int d = dim_of(node);
  int64_t n = tfw__numel(index->ndim, index->shape);
  tfw_tensor *ids0 = tfw_arange(0, (double)n, 1, TFW_DTYPE_I64);
  tfw_tensor *ids = ids0 ? tfw_reshape(ids0, index->ndim, index->shape) : NULL;
  tfw_tensor *none = tfw_full(TFW_DTYPE_I64, x->ndim, x->shape, -1);
  tfw_tensor *w = ids && none ? tfw_scatter(none, d, index, ids) : NULL;
  tfw_tensor *back = w ? tfw_gather(w, d, index) : NULL;
  tfw_tensor *won = back ? tfw_eq(back, ids) : NULL;
  tfw_tensor *f = won ? tfw_to_dtype(won, g->dtype) : NULL;
  tfw_release(ids0), tfw_release(ids), tfw_release(none), tfw_release(w), tfw_release(back);
  tfw_release(won);
  return f;
}

tfw_status tfw__backward_scatter(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *index = IN(1), *src = IN(2), *g = gout[0];
  int d = dim_of(node);
  tfw_status st = TFW_OK;
  if (NEED(0)) { /* overwritten positions get nothing */
    tfw_tensor *z = tfw_zeros(g->dtype, index->ndim, index->shape);
    st = give(node, gin, 0, z ? tfw_scatter(g, d, index, z) : NULL);
    tfw_release(z);
  }
  if (!st && NEED(2)) {
    tfw_tensor *picked = tfw_gather(g, d, index);
    tfw_tensor *won = picked ? scatter_winners(node, g) : NULL;
    tfw_tensor *gs = won ? tfw_mul(picked, won) : NULL;
    tfw_release(picked), tfw_release(won);
    st = give(node, gin, 2, grow_to(gs, src->ndim, src->shape));
  }
  return st;
}

tfw_status tfw__backward_scatter_add(const tfw__node *node, tfw_tensor *const *gout,
                                     tfw_tensor **gin) {
  const tfw_tensor *src = IN(2);
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_retain(gout[0]));
  if (!st && NEED(2))
    st = give(node, gin, 2, grow_to(tfw_gather(gout[0], dim_of(node), IN(1)), src->ndim, src->shape));
  return st;
}

tfw_status tfw__backward_index_add(const tfw__node *node, tfw_tensor *const *gout,
                                   tfw_tensor **gin) {
  tfw_status st = TFW_OK;
  if (NEED(0)) st = give(node, gin, 0, tfw_retain(gout[0]));
  if (!st && NEED(2)) st = give(node, gin, 2, tfw_index_select(gout[0], dim_of(node), IN(1)));
  return st;
}

/* Forward mode of scatter, scatter_add, index_add: linear in (t, src) with the index kept;
 * a src without a tangent (an integer src too) contributes zeros. */
tfw_status tfw__jvp_scatter(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                            tfw_tensor **tout) {
  tfw__call t = *c;
  tfw_tensor *z[3] = {NULL, NULL, NULL};
  tfw_status st = TFW_OK;
  for (int i = 0; i < 3 && !st; i += 2) {
    if (tin[i]) {
      t.in[i] = tin[i];
      continue;
    }
    z[i] = tfw_zeros(outputs[0]->dtype, c->in[i]->ndim, c->in[i]->shape);
    t.in[i] = z[i];
    if (!z[i]) st = tfw_last_status();
  }
  if (!st) st = tfw__op_run_multi(&t, tout);
  tfw_release(z[0]), tfw_release(z[2]);
  return st;
}

/* ---- sort, topk ------------------------------------------------------------------------- */

tfw_status tfw__backward_sort(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw_tensor *out[TFW__MAX_OUT] = {NULL};
  bool prev = tfw_set_grad_enabled(false); /* the indices only: nothing to record */
  tfw_status st = tfw__op_run_multi(&node->call, out);
  tfw_set_grad_enabled(prev);
  if (st) return st;
  tfw_tensor *z = zeros_as(IN(0), gout[0]);
  tfw_tensor *r = z ? tfw_scatter_add(z, dim_of(node), out[1], gout[0]) : NULL;
  tfw_release(z), tfw_release(out[0]), tfw_release(out[1]);
  return give(node, gin, 0, r);
}

/* sort and topk: the values' tangent is the input's tangent at the selected indices. */
tfw_status tfw__jvp_sort(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  tout[0] = tfw_gather(tin[0], (int)c->a.i[0], outputs[1]);
  return tout[0] ? TFW_OK : tfw_last_status();
}
