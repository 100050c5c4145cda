/* Backward and forward-mode rules of the view, shape and copy ops: permute, slice, narrow,
 * select, expand, cat, stack, pad, flip, roll, repeat, tile, tril, triu, cast, clone.
 * (squeeze, squeeze_all, unsqueeze and unflatten use the reshape rule of backward_basic.c;
 * most JVPs are tfw__jvp_linear.)
 *
 * Every rule is written with registered ops so that, with create_graph, it is recorded too
 * (double backward). Views scatter their gradient back into the input's shape with pad
 * (constant zeros) where the view is a contiguous block, and with index_add where it is
 * strided; copies that gather (repeat, pad's reflected borders) sum back with sum / index_add.
 * Dims follow the op's attribute conventions (src/ops/view.def, shape.def). */
#include "autograd/autograd.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

/* gin[i] = sum_to(t) for input i (shape and dtype of the input), consuming t. */
static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

/* The node's op applied again to g in place of its input (same attributes). */
static tfw_tensor *rerun(const tfw__node *node, const tfw_tensor *g) {
  tfw__call c = node->call;
  c.in[0] = g;
  return tfw__op_run(&c);
}

/* g padded with zeros on dim d only: before / after elements (negative crops). */
static tfw_tensor *pad_dim(const tfw_tensor *g, int d, int64_t before, int64_t after) {
  if (before == 0 && after == 0) return tfw_retain((tfw_tensor *)g);
  int64_t pads[2 * TFW_MAX_DIMS] = {0};
  int k = g->ndim - 1 - d; /* pairs are given last dim first */
  pads[2 * k] = before;
  pads[2 * k + 1] = after;
  return tfw_pad(g, k + 1, pads, TFW_PAD_CONSTANT, 0.0);
}

/* The int64 tensor [start, start + step, ...] of n entries. */
static tfw_tensor *index_range(int64_t start, int64_t step, int64_t n) {
  return tfw_arange((double)start, (double)(start + step * n), (double)step, TFW_DTYPE_I64);
}

/* Gradient of a view that picks `len` elements start, start + step, ... of dim d (size
 * `size`) of the input: g placed there, zeros elsewhere. */
static tfw_tensor *embed(const tfw_tensor *g, int d, int64_t size, int64_t start, int64_t step,
                         int64_t len) {
  if (step == 1 || len <= 1) return pad_dim(g, d, start, size - start - len);
  int64_t shape[TFW_MAX_DIMS];
  for (int k = 0; k < g->ndim; k++) shape[k] = g->shape[k];
  shape[d] = size;
  tfw_tensor *z = tfw_zeros(g->dtype, g->ndim, shape);
  tfw_tensor *idx = index_range(start, step, len);
  tfw_tensor *r = z && idx ? tfw_index_add(z, d, idx, g) : NULL;
  tfw_release(z), tfw_release(idx);
  return r;
}

/* ---- views ---------------------------------------------------------------------------- */

tfw_status tfw__backward_permute(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw__attrs *a = &node->call.a;
  int nd = IN(0)->ndim, inv[TFW_MAX_DIMS];
  for (int k = 0; k < nd; k++) {
    int d = (int)(a->ints[k] < 0 ? a->ints[k] + nd : a->ints[k]);
    inv[d] = k;
  }
  return give(node, gin, 0, tfw_permute(gout[0], nd, inv));
}

/* slice and narrow: the start, step and length the forward op used (geom_slice, view.c). */
tfw_status tfw__backward_slice(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  const tfw__attrs *a = &node->call.a;
  int d = tfw__wrap_dim(node->op->name, (int)a->i[0], x->ndim);
  if (d < 0) return tfw_last_status();
  int64_t size = x->shape[d], start = a->i[1], step = 1;
  if (node->op->id == TFW__OP_slice) {
    int64_t end = a->i[2];
    step = a->i[3];
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = start < 0 ? 0 : start > size ? size : start;
    end = end < 0 ? 0 : end > size ? size : end;
  } else if (start < 0) {
    start += size;
  }
  return give(node, gin, 0, embed(gout[0], d, size, start, step, gout[0]->shape[d]));
}

tfw_status tfw__backward_select_view(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  int d = tfw__wrap_dim("select", (int)node->call.a.i[0], x->ndim);
  if (d < 0) return tfw_last_status();
  int64_t size = x->shape[d], index = node->call.a.i[1];
  if (index < 0) index += size;
  tfw_tensor *u = tfw_unsqueeze(gout[0], d);
  tfw_tensor *e = u ? embed(u, d, size, index, 1, 1) : NULL;
  tfw_release(u);
  return give(node, gin, 0, e);
}

/* expand (and clone, cast): the gradient summed back to the input's shape, in its dtype. */
tfw_status tfw__backward_expand(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return give(node, gin, 0, tfw_retain(gout[0]));
}

tfw_status tfw__backward_cast(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return give(node, gin, 0, tfw_retain(gout[0]));
}

/* ---- cat, stack ---------------------------------------------------------------------- */

tfw_status tfw__backward_cat(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *g = gout[0];
  int d = tfw__wrap_dim("cat", (int)node->call.a.i[0], g->ndim);
  if (d < 0) return tfw_last_status();
  tfw_status st = TFW_OK;
  int64_t pos = 0;
  for (int i = 0; i < node->call.n_in && !st; i++) {
    const tfw_tensor *x = IN(i);
    if (x->ndim == 1 && x->shape[0] == 0) { /* skipped (or empty): an empty gradient */
      if (NEED(i)) st = give(node, gin, i, tfw_zeros(g->dtype, 1, x->shape));
      continue;
    }
    if (NEED(i)) st = give(node, gin, i, tfw_narrow(g, d, pos, x->shape[d]));
    pos += x->shape[d];
  }
  return st;
}

tfw_status tfw__backward_stack(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *g = gout[0];
  int d = tfw__wrap_dim("stack", (int)node->call.a.i[0], g->ndim);
  if (d < 0) return tfw_last_status();
  tfw_status st = TFW_OK;
  for (int i = 0; i < node->call.n_in && !st; i++)
    if (NEED(i)) st = give(node, gin, i, tfw_select(g, d, i));
  return st;
}

/* Forward mode of cat and stack: the op applied to the tangents, with zeros of the input's
 * dtype for inputs that have none (integer inputs too, so the result promotes like the
 * primal output). */
static tfw_status jvp_zeros_for_missing(const tfw__call *c, tfw_tensor *const *tin,
                                        tfw_tensor **tout) {
  tfw__call t = *c;
  tfw_tensor *zeros[TFW__MAX_IN] = {NULL};
  tfw_status st = TFW_OK;
  for (int i = 0; i < c->n_in && !st; i++) {
    if (tin[i]) {
      t.in[i] = tin[i];
    } else {
      zeros[i] = tfw_zeros_like(c->in[i]);
      t.in[i] = zeros[i];
      if (!zeros[i]) st = tfw_last_status();
    }
  }
  if (!st) st = tfw__op_run_multi(&t, tout);
  for (int i = 0; i < c->n_in; i++) tfw_release(zeros[i]);
  return st;
}

tfw_status tfw__jvp_cat(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  return jvp_zeros_for_missing(c, tin, tout);
}

/* ---- pad ------------------------------------------------------------------------------- */

/* Adjoint of reflect/replicate padding of dim d by (before, after) around `size` input
 * elements: the middle of g plus each border slice added onto the input index it copied. */
static tfw_tensor *unpad_dim(const tfw_tensor *g, int d, int64_t size, int64_t before,
                             int64_t after, bool reflect) {
  tfw_tensor *mid = tfw_narrow(g, d, before, size);
  if (!mid || before + after == 0) return mid;
  int64_t n = before + after;
  int64_t *pos = tfw__calloc((size_t)(2 * n), sizeof(int64_t)), *from = pos + n;
  if (!pos) {
    tfw_release(mid);
    tfw__error(TFW_ENOMEM, "pad backward: out of memory");
    return NULL;
  }
  int64_t m = 0;
  for (int64_t j = 0; j < before + size + after; j++) {
    if (j >= before && j < before + size) continue;
    int64_t x = j - before; /* the input coordinate outside [0, size) */
    pos[m] = j;
    from[m++] = reflect ? (x < 0 ? -x : 2 * (size - 1) - x) : (x < 0 ? 0 : size - 1);
  }
  tfw_tensor *pi = tfw_from_data(TFW_DTYPE_I64, 1, &n, pos);
  tfw_tensor *fi = tfw_from_data(TFW_DTYPE_I64, 1, &n, from);
  tfw__free(pos);
  tfw_tensor *border = pi ? tfw_index_select(g, d, pi) : NULL;
  tfw_tensor *r = border && fi ? tfw_index_add(mid, d, fi, border) : NULL;
  tfw_release(pi), tfw_release(fi), tfw_release(border), tfw_release(mid);
  return r;
}

tfw_status tfw__backward_pad(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw__attrs *a = &node->call.a;
  const tfw_tensor *x = IN(0);
  if (a->i[0] == TFW_PAD_CONSTANT) { /* the same pads negated crop the gradient back */
    tfw__call c = node->call;
    c.in[0] = gout[0];
    for (int k = 0; k < a->n_ints; k++) c.a.ints[k] = -a->ints[k];
    c.a.f[0] = 0;
    return give(node, gin, 0, tfw__op_run(&c));
  }
  /* reflect / replicate pad each dim independently: undo them one dim at a time */
  tfw_tensor *g = tfw_retain(gout[0]);
  for (int k = 0; k < a->n_ints / 2 && g; k++) {
    int d = x->ndim - 1 - k;
    tfw_tensor *u = unpad_dim(g, d, x->shape[d], a->ints[2 * k], a->ints[2 * k + 1],
                              a->i[0] == TFW_PAD_REFLECT);
    tfw_release(g);
    g = u;
  }
  return give(node, gin, 0, g);
}

/* Padding is linear up to the constant: the tangent is padded with zeros. */
tfw_status tfw__jvp_pad(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw__call t = *c;
  t.in[0] = tin[0];
  t.a.f[0] = 0;
  tout[0] = tfw__op_run(&t);
  return tout[0] ? TFW_OK : tfw_last_status();
}

/* ---- flip, roll, tril, triu ---------------------------------------------------------- */

/* flip, tril and triu are their own adjoints. */
tfw_status tfw__backward_self_adjoint(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  return give(node, gin, 0, rerun(node, gout[0]));
}

tfw_status tfw__backward_roll(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  tfw__call c = node->call;
  c.in[0] = gout[0];
  int d = x->ndim > 0 ? tfw__wrap_dim("roll", (int)c.a.i[1], x->ndim) : 0;
  if (d < 0) return tfw_last_status();
  int64_t size = x->ndim > 0 ? x->shape[d] : 1;
  c.a.i[0] = size > 0 ? -(c.a.i[0] % size) : 0; /* reduced first: -INT64_MIN overflows */
  return give(node, gin, 0, tfw__op_run(&c));
}

/* ---- repeat, tile ---------------------------------------------------------------------- */

/* Each output dim k is reps[k] copies of input dim k (ishape[k]; the input gains leading 1s):
 * view it as [before, reps, ishape, after] and sum the copies, one dim at a time. */
tfw_status tfw__backward_repeat(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *x = IN(0);
  const tfw__attrs *a = &node->call.a;
  int n = a->n_ints, nd = n > x->ndim ? n : x->ndim;
  tfw_tensor *g = tfw_retain(gout[0]);
  int64_t cur[TFW_MAX_DIMS];
  for (int k = 0; k < nd; k++) cur[k] = gout[0]->shape[k];
  for (int k = 0; k < nd && g; k++) {
    int j = k - (nd - x->ndim), r = k - (nd - n);
    int64_t ishape = j < 0 ? 1 : x->shape[j], reps = r < 0 ? 1 : a->ints[r];
    if (reps == 1) continue;
    int64_t pre = 1, post = 1;
    for (int e = 0; e < k; e++) pre *= cur[e];
    for (int e = k + 1; e < nd; e++) post *= cur[e];
    int64_t split[4] = {pre, reps, ishape, post};
    tfw_tensor *v = tfw_reshape(g, 4, split);
    tfw_tensor *s = v ? tfw_sum(v, 1, (const int[]){1}, false) : NULL;
    cur[k] = ishape;
    tfw_tensor *back = s ? tfw_reshape(s, nd, cur) : NULL;
    tfw_release(v), tfw_release(s), tfw_release(g);
    g = back;
  }
  return give(node, gin, 0, g); /* sum_to drops the added leading 1s */
}
