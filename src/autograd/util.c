/* Helpers shared by the backward rules, and the "no rule" placeholders of ops.def. */
#include "autograd/autograd.h"

tfw_status tfw__backward_none(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return tfw__error(TFW_EUNSUPPORTED, "backward: %s has no backward rule", node->op->name);
}

tfw_status tfw__jvp_none(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  return tfw__error(TFW_EUNSUPPORTED, "jvp: %s has no forward-mode rule", c->op->name);
}

tfw_tensor *tfw__sum_to(const tfw_tensor *g, int ndim, const int64_t *shape, tfw_dtype dt) {
  int lead = g->ndim - ndim;
  if (lead < 0) {
    tfw__error(TFW_EINTERNAL, "sum_to: gradient has fewer dims (%d) than its input (%d)", g->ndim, ndim);
    return NULL;
  }
  int dims[TFW_MAX_DIMS], nd = 0;
  for (int i = 0; i < g->ndim; i++)
    if (i < lead || (shape[i - lead] == 1 && g->shape[i] != 1)) dims[nd++] = i;
  tfw_tensor *r;
  if (nd > 0) {
    tfw_tensor *s = tfw_sum(g, nd, dims, true);
    if (!s) return NULL;
    r = tfw_reshape(s, ndim, shape);
    tfw_release(s);
  } else if (lead == 0 && g->ndim == ndim) {
    r = tfw_retain((tfw_tensor *)g);
  } else {
    r = tfw_reshape(g, ndim, shape);
  }
  if (r && r->dtype != dt) {
    tfw_tensor *c = tfw_to_dtype(r, dt);
    tfw_release(r);
    r = c;
  }
  return r;
}

tfw_tensor *tfw__grad_for_input(const tfw__node *n, int i, const tfw_tensor *g) {
  const tfw_tensor *x = n->saved[i];
  return tfw__sum_to(g, x->ndim, x->shape, x->dtype);
}

bool tfw__needs_grad(const tfw__node *n, int i) {
  return n->next[i].node != NULL || n->next[i].leaf != NULL;
}
