/* Shape ops, part 1 (src/ops/shape.def): cat and stack, and the composites split and chunk.
 *
 * cat/stack allocate the output once and copy each input into a narrow() (cat) or
 * select() (stack) of it with tfw__copy_cast, which is parallel, casts to the promoted
 * dtype and handles any input strides. The registry entries take at most TFW__MAX_IN
 * inputs; tfw_cat/tfw_stack with more run the same plan/fill functions directly (one copy,
 * no grouping of partial results) unless autograd is watching an input: then they go
 * through the registry in groups of TFW__MAX_IN, so that every step is recorded.
 *
 * split/chunk return arrays of narrow() views (no copies); they are composites of the
 * narrow entry and have no registry entry of their own. */

#include "autograd/autograd.h"
#include "ops/registry.h"
#include "ops/samples.h"
#include "ops/view.h"

/* PyTorch skips 1-d tensors of shape [0] in cat (legacy behaviour kept for compatibility). */
static bool cat_skipped(const tfw_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

/* Output meta and normalised dim for cat (stack = false) or stack over n tensors. */
static tfw_status cat_plan(const char *op, bool stack, int n, const tfw_tensor *const *ts,
                           int64_t dim, tfw__meta *m, int *dim_out) {
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (n < 1) return tfw__error(TFW_EVALUE, "%s: expected a non-empty list of tensors, got %d", op, n);
  if (!ts) return tfw__error(TFW_EVALUE, "%s: the tensor list is NULL", op);
  for (int i = 0; i < n; i++)
    if (!ts[i]) return tfw__error(TFW_EVALUE, "%s: tensor %d is NULL", op, i);
  tfw_dtype dt = ts[0]->dtype;
  for (int i = 1; i < n; i++) dt = tfw_promote_types(dt, ts[i]->dtype);
  if (dim < INT32_MIN || dim > INT32_MAX)
    return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range", op, (long long)dim);
  m->dtype = dt;
  if (stack) {
    const tfw_tensor *r = ts[0];
    for (int i = 1; i < n; i++) {
      bool same = ts[i]->ndim == r->ndim;
      for (int d = 0; same && d < r->ndim; d++) same = ts[i]->shape[d] == r->shape[d];
      if (!same)
        return tfw__error(TFW_ESHAPE, "%s: tensor %d has shape %s, but tensor 0 has shape %s "
                          "(all must be equal)", op, i,
                          tfw__shape_str(b1, sizeof b1, ts[i]->ndim, ts[i]->shape),
                          tfw__shape_str(b2, sizeof b2, r->ndim, r->shape));
    }
    if (r->ndim >= TFW_MAX_DIMS)
      return tfw__error(TFW_ESHAPE, "%s: stacking %d-d tensors gives more than %d dimensions", op,
                        r->ndim, TFW_MAX_DIMS);
    int d = tfw__wrap_dim(op, (int)dim, r->ndim + 1);
    if (d < 0) return tfw_last_status();
    m->ndim = r->ndim + 1;
    for (int k = 0, j = 0; k < m->ndim; k++) m->shape[k] = k == d ? n : r->shape[j++];
    *dim_out = d;
    return TFW_OK;
  }
  int ref = 0; /* the first tensor that is not skipped decides ndim and the other sizes */
  while (ref < n - 1 && cat_skipped(ts[ref])) ref++;
  const tfw_tensor *r = ts[ref];
  for (int i = 0; i < n; i++)
    if (ts[i]->ndim == 0)
      return tfw__error(TFW_ESHAPE, "%s: zero-dimensional tensor (at position %d) cannot be "
                        "concatenated", op, i);
  int d = tfw__wrap_dim(op, (int)dim, r->ndim);
  if (d < 0) return tfw_last_status();
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    const tfw_tensor *t = ts[i];
    if (cat_skipped(t) && i != ref) continue;
    if (t->ndim != r->ndim)
      return tfw__error(TFW_ESHAPE, "%s: tensor %d has %d dimensions (%s), but tensor %d has %d "
                        "(%s)", op, i, t->ndim, tfw__shape_str(b1, sizeof b1, t->ndim, t->shape),
                        ref, r->ndim, tfw__shape_str(b2, sizeof b2, r->ndim, r->shape));
    for (int k = 0; k < r->ndim; k++)
      if (k != d && t->shape[k] != r->shape[k])
        return tfw__error(TFW_ESHAPE, "%s: sizes of tensors must match except in dimension %d: "
                          "tensor %d has shape %s, tensor %d has shape %s (dimension %d: %lld "
                          "!= %lld)", op, d, i,
                          tfw__shape_str(b1, sizeof b1, t->ndim, t->shape), ref,
                          tfw__shape_str(b2, sizeof b2, r->ndim, r->shape), k,
                          (long long)t->shape[k], (long long)r->shape[k]);
    if (__builtin_add_overflow(total, t->shape[d], &total))
      return tfw__error(TFW_ESHAPE, "%s: the concatenated dimension %d overflows int64", op, d);
  }
  m->ndim = r->ndim;
  for (int k = 0; k < r->ndim; k++) m->shape[k] = k == d ? total : r->shape[k];
  *dim_out = d;
  return TFW_OK;
}

/* Copies each input into its block of out (contiguous, shape from cat_plan). */
static tfw_status cat_fill(tfw_tensor *out, bool stack, int n, const tfw_tensor *const *ts, int d) {
  int64_t pos = 0;
  for (int i = 0; i < n; i++) {
    const tfw_tensor *t = ts[i];
    tfw_tensor dst;
    if (stack) {
      int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
      for (int k = 0, j = 0; k < out->ndim; k++) {
        if (k == d) continue;
        shape[j] = out->shape[k];
        strides[j++] = out->strides[k];
      }
      tfw__light_view(&dst, out, out->ndim - 1, shape, strides, out->offset + i * out->strides[d]);
    } else {
      if (cat_skipped(t) && out->ndim != 1) continue;
      int64_t shape[TFW_MAX_DIMS];
      for (int k = 0; k < out->ndim; k++) shape[k] = out->shape[k];
      shape[d] = t->shape[d];
      tfw__light_view(&dst, out, out->ndim, shape, out->strides, out->offset + pos * out->strides[d]);
      pos += t->shape[d];
    }
    tfw_status st = tfw__copy_cast(&dst, t);
    if (st) return st;
  }
  return TFW_OK;
}

tfw_status tfw__infer_cat(const tfw__call *c, tfw__meta *out) {
  int d;
  return cat_plan(c->op->name, c->op->id == TFW__OP_stack, c->n_in, c->in, c->a.i[0], out, &d);
}

tfw_status tfw__kernel_cat(const tfw__call *c, tfw_tensor **out) {
  tfw__meta m;
  int d;
  bool stack = c->op->id == TFW__OP_stack;
  tfw_status st = cat_plan(c->op->name, stack, c->n_in, c->in, c->a.i[0], &m, &d);
  if (st) return st;
  return cat_fill(out[0], stack, c->n_in, c->in, d);
}

/* Samples: inputs of three layouts in one call (contiguous, strided, broadcast), and a
 * mixed-dtype call that promotes. */
int tfw__sample_cat(const tfw__op_def *op, tfw__call *calls, int cap) {
  bool stack = op->id == TFW__OP_stack;
  static const int64_t shapes[3][3] = {{2, 3, 4}, {2, 5, 4}, {2, 2, 4}};
  int n = 0;
  for (int s = 0; s < 2 && n < cap; s++) {
    tfw_tensor *in[3];
    for (int k = 0; k < 3; k++) {
      tfw_dtype dt = s == 0 ? TFW_DTYPE_F32 : (k == 1 ? TFW_DTYPE_I64 : TFW_DTYPE_F16);
      in[k] = tfw__sample_tensor(dt, 3, stack ? shapes[0] : shapes[k], -3, 3,
                                 (uint64_t)(3 * s + k), (tfw__layout)k);
    }
    if (!in[0] || !in[1] || !in[2]) {
      for (int k = 0; k < 3; k++) tfw_release(in[k]);
      break;
    }
    tfw__call_init(&calls[n], op->id, 3, (const tfw_tensor *const *)in);
    calls[n].a.i[0] = stack ? (s == 0 ? 3 : -2) : (s == 0 ? 1 : -2);
    n++;
  }
  return n;
}

/* ---- public wrappers ----------------------------------------------------------------------- */

static tfw_tensor *cat_or_stack(const char *op, tfw__op_id id, int n, tfw_tensor *const *ts,
                                int dim);

/* True if autograd (reverse or forward mode) would record an op on one of ts. */
static bool watched(int n, tfw_tensor *const *ts) {
  for (int i = 0; i < n; i++)
    if ((tfw_grad_enabled() && tfw__requires_grad(ts[i])) || tfw__tangent(ts[i])) return true;
  return false;
}

/* cat/stack of n > TFW__MAX_IN tensors (already checked by cat_plan; d normalised) as
 * registry calls: groups of TFW__MAX_IN, then cat of the groups' results along d (a stacked
 * group has the new dim at d). Inputs that cat skips are dropped first. */
static tfw_tensor *cat_groups(const char *op, tfw__op_id id, int n, tfw_tensor *const *ts, int d,
                              int out_ndim) {
  bool stack = id == TFW__OP_stack;
  tfw_tensor **keep = tfw__calloc((size_t)n, sizeof *keep);
  int ng = (n + TFW__MAX_IN - 1) / TFW__MAX_IN, nk = 0;
  tfw_tensor **parts = tfw__calloc((size_t)ng, sizeof *parts);
  tfw_tensor *out = NULL;
  if (!keep || !parts) {
    tfw__error(TFW_ENOMEM, "%s: out of memory for %d inputs", op, n);
    goto done;
  }
  for (int i = 0; i < n; i++)
    if (stack || out_ndim == 1 || !cat_skipped(ts[i])) keep[nk++] = ts[i];
  if (nk <= TFW__MAX_IN) {
    out = cat_or_stack(op, id, nk, keep, d);
    goto done;
  }
  ng = (nk + TFW__MAX_IN - 1) / TFW__MAX_IN;
  for (int g = 0; g < ng; g++) {
    int k = nk - g * TFW__MAX_IN < TFW__MAX_IN ? nk - g * TFW__MAX_IN : TFW__MAX_IN;
    parts[g] = cat_or_stack(op, id, k, keep + g * TFW__MAX_IN, d);
    if (!parts[g]) goto done;
  }
  out = cat_or_stack(op, TFW__OP_cat, ng, parts, d);
done:
  if (parts)
    for (int g = 0; g < ng; g++) tfw_release(parts[g]);
  tfw__free(parts);
  tfw__free(keep);
  return out;
}

static tfw_tensor *cat_or_stack(const char *op, tfw__op_id id, int n, tfw_tensor *const *ts,
                                int dim) {
  if (n >= 1 && n <= TFW__MAX_IN && ts) {
    tfw__call c;
    tfw__call_init(&c, id, n, (const tfw_tensor *const *)ts);
    c.a.i[0] = dim;
    return tfw__op_run(&c);
  }
  /* more inputs than a registry call holds: the same plan and fill, without the dispatcher
   * (or in registry-sized groups when autograd must see the op) */
  tfw__meta m;
  int d;
  bool stack = id == TFW__OP_stack;
  if (cat_plan(op, stack, n, (const tfw_tensor *const *)ts, dim, &m, &d)) return NULL;
  if (watched(n, ts)) return cat_groups(op, id, n, ts, d, m.ndim);
  tfw_tensor *out = tfw__tensor_new(op, m.dtype, m.ndim, m.shape);
  if (!out) return NULL;
  if (cat_fill(out, stack, n, (const tfw_tensor *const *)ts, d)) {
    tfw_release(out);
    return NULL;
  }
  return out;
}

tfw_tensor *tfw_cat(int n, tfw_tensor *const *ts, int dim) {
  return cat_or_stack("cat", TFW__OP_cat, n, ts, dim);
}

tfw_tensor *tfw_stack(int n, tfw_tensor *const *ts, int dim) {
  return cat_or_stack("stack", TFW__OP_stack, n, ts, dim);
}

void tfw_tensor_list_free(tfw_tensor **list, int count) {
  if (!list) return;
  for (int i = 0; i < count; i++) tfw_release(list[i]);
  tfw__free(list);
}

/* Pieces of split_size along dim (the last may be smaller); a 0-size dim gives one empty
 * piece, like PyTorch. */
static tfw_status split_impl(const char *op, const tfw_tensor *t, int64_t split_size, int dim,
                             tfw_tensor ***out, int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "%s: 'out' and 'count' must not be NULL", op);
  *out = NULL;
  *count = 0;
  if (tfw__check_tensor(op, "t", t)) return TFW_EVALUE;
  if (t->ndim == 0)
    return tfw__error(TFW_EINDEX, "%s: cannot be applied to a 0-d tensor (dim %d)", op, dim);
  int d = tfw__wrap_dim(op, dim, t->ndim);
  if (d < 0) return tfw_last_status();
  int64_t size = t->shape[d];
  if (split_size < 0 || (split_size == 0 && size > 0))
    return tfw__error(TFW_EVALUE, "%s: split size must be positive (0 only for an empty "
                      "dimension), got %lld for dimension %d of size %lld", op,
                      (long long)split_size, d, (long long)size);
  int64_t pieces = size == 0 ? 1 : (size - 1) / split_size + 1;
  if (pieces > INT32_MAX)
    return tfw__error(TFW_EVALUE, "%s: %lld pieces do not fit in an int count", op,
                      (long long)pieces);
  tfw_tensor **list = tfw__calloc((size_t)pieces, sizeof *list);
  if (!list) return tfw__error(TFW_ENOMEM, "%s: out of memory for %lld pieces", op, (long long)pieces);
  for (int64_t k = 0; k < pieces; k++) {
    int64_t start = k * split_size;
    int64_t len = size - start < split_size ? size - start : split_size;
    list[k] = tfw_narrow(t, d, start, len);
    if (!list[k]) {
      tfw_tensor_list_free(list, (int)k);
      return tfw_last_status();
    }
  }
  *out = list;
  *count = (int)pieces;
  return TFW_OK;
}

tfw_status tfw_split(const tfw_tensor *t, int64_t split_size, int dim, tfw_tensor ***out,
                     int *count) {
  return split_impl("split", t, split_size, dim, out, count);
}

/* torch.chunk: pieces of ceil(size / chunks), so fewer than chunks pieces may come back. */
tfw_status tfw_chunk(const tfw_tensor *t, int chunks, int dim, tfw_tensor ***out, int *count) {
  if (out) *out = NULL;
  if (count) *count = 0;
  if (chunks <= 0)
    return tfw__error(TFW_EVALUE, "chunk: number of chunks must be positive, got %d", chunks);
  if (tfw__check_tensor("chunk", "t", t)) return TFW_EVALUE;
  int64_t size = 0;
  if (t->ndim > 0) {
    int d = tfw__wrap_dim("chunk", dim, t->ndim);
    if (d < 0) return tfw_last_status();
    size = t->shape[d];
  }
  return split_impl("chunk", t, (size + chunks - 1) / chunks, dim, out, count);
}
