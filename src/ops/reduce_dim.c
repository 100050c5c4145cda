/* Reductions along one dim that report where: argmax, argmin (int64 indices) and
 * max_dim/min_dim (values and int64 indices, two outputs). The first extreme wins; NaN
 * counts as larger (argmax) / smaller (argmin) than every number, so the first NaN is
 * reported, as in PyTorch. The loops are the engine's arg kinds (reduce_engine.c): rows
 * when the dim is innermost, columns (vectorised over the kept inner dim) otherwise. */
#include <math.h>

#include "ops/reduce.h"
#include "ops/samples.h"

static bool wants_values(const tfw__call *c) {
  return c->op->id == TFW__OP_max_dim || c->op->id == TFW__OP_min_dim;
}
static bool is_max(const tfw__call *c) {
  return c->op->id == TFW__OP_argmax || c->op->id == TFW__OP_max_dim;
}

tfw_status tfw__infer_reduce_dim(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  const char *name = c->op->name;
  if (c->a.i[0] < INT32_MIN || c->a.i[0] > INT32_MAX)
    return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d "
                      "dimensions", name, (long long)c->a.i[0], x->ndim);
  int d = tfw__wrap_dim(name, (int)c->a.i[0], x->ndim);
  if (d < 0) return TFW_EINDEX;
  if (x->ndim > 0 && x->shape[d] == 0) {
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_EVALUE, "%s: cannot reduce over a zero-size dimension (dim %d of "
                      "shape %s)", name, d, tfw__shape_str(b, sizeof b, x->ndim, x->shape));
  }
  tfw__meta m = {.dtype = TFW_DTYPE_I64, .ndim = 0};
  for (int k = 0; k < x->ndim; k++) {
    if (k != d) m.shape[m.ndim++] = x->shape[k];
    else if (c->a.b[0]) m.shape[m.ndim++] = 1;
  }
  if (wants_values(c)) {
    out[0] = m;
    out[0].dtype = x->dtype;
    out[1] = m;
  } else {
    out[0] = m;
  }
  return TFW_OK;
}

typedef struct arg_ctx {
  char *val; /* NULL for argmax/argmin */
  tfw_dtype vdt;
  size_t ves;
  bool is_int;
  int64_t *idx;
} arg_ctx;

static void fin_arg(tfw__rval v, int64_t idx, int64_t o, void *vctx) {
  const arg_ctx *a = vctx;
  a->idx[o] = idx;
  if (!a->val) return;
  char *p = a->val + (size_t)o * a->ves;
  if (a->is_int) {
    switch (a->vdt) {
    case TFW_DTYPE_I8: *(int8_t *)p = (int8_t)v.i; break;
    case TFW_DTYPE_U8: *(uint8_t *)p = (uint8_t)v.i; break;
    case TFW_DTYPE_I32: *(int32_t *)p = (int32_t)v.i; break;
    case TFW_DTYPE_I64: *(int64_t *)p = v.i; break;
    default: *(uint8_t *)p = v.i != 0; break; /* bool */
    }
  } else {
    tfw__store_f64(p, a->vdt, v.d);
  }
}

tfw_status tfw__kernel_reduce_dim(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x0 = c->in[0];
  int d = tfw__wrap_dim(c->op->name, (int)c->a.i[0], x0->ndim);
  if (d < 0) return TFW_EINDEX;
  bool mask[TFW_MAX_DIMS] = {false};
  if (x0->ndim > 0) mask[d] = true;
  tfw_tensor *xc = NULL;
  const tfw_tensor *x = x0;
  if (x0->dtype == TFW_DTYPE_F16 || x0->dtype == TFW_DTYPE_BF16) {
    xc = tfw__as_contiguous(x0, TFW_DTYPE_F32);
    if (!xc) return tfw_last_status();
    x = xc;
  }
  tfw__red_op op = is_max(c) ? TFW__R_ARGMAX : TFW__R_ARGMIN;
  const tfw__red_kind *k = tfw__red_kind_get(op, x->dtype);
  TFW_ASSERT(k != NULL);
  arg_ctx a = {.is_int = tfw__red_is_int(op, x->dtype)};
  if (wants_values(c)) {
    a.val = tfw__data(out[0]), a.vdt = out[0]->dtype, a.ves = tfw_dtype_size(out[0]->dtype);
    a.idx = (int64_t *)tfw__data(out[1]);
  } else {
    a.idx = (int64_t *)tfw__data(out[0]);
  }
  tfw__reduce_run(x, mask, k, NULL, fin_arg, &a);
  tfw_release(xc);
  return TFW_OK;
}

int tfw__sample_reduce_dim(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s0[3] = {3, 4, 5}, s1[2] = {6, 4}, s2[3] = {2, 3, 4};
  struct {
    tfw_dtype dt;
    int nd;
    const int64_t *shape;
    tfw__layout lay;
    int dim;
    bool keep;
  } spec[4] = {
      {TFW_DTYPE_F32, 3, s0, TFW__LAYOUT_CONTIGUOUS, -1, false},
      {TFW_DTYPE_F64, 2, s1, TFW__LAYOUT_STRIDED, 0, true},
      {TFW_DTYPE_F32, 3, s2, TFW__LAYOUT_BROADCAST, 1, false},
      {TFW_DTYPE_I32, 3, s0, TFW__LAYOUT_CONTIGUOUS, 1, true},
  };
  int n = 0;
  for (int i = 0; i < 4 && n < cap; i++) {
    tfw_tensor *t = tfw__sample_tensor(spec[i].dt, spec[i].nd, spec[i].shape, -3.0, 3.0,
                                       (uint64_t)i + 11, spec[i].lay);
    if (!t) break;
    const tfw_tensor *in[1] = {t};
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, 1, in);
    c->a.i[0] = spec[i].dim;
    c->a.b[0] = spec[i].keep;
  }
  return n;
}

static tfw__call dim_call(tfw__op_id id, const tfw_tensor *t, int dim, bool keepdim) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  c.a.i[0] = dim;
  c.a.b[0] = keepdim;
  return c;
}

tfw_tensor *tfw_argmax(const tfw_tensor *t, int dim, bool keepdim) {
  tfw__call c = dim_call(TFW__OP_argmax, t, dim, keepdim);
  return tfw__op_run(&c);
}
tfw_tensor *tfw_argmin(const tfw_tensor *t, int dim, bool keepdim) {
  tfw__call c = dim_call(TFW__OP_argmin, t, dim, keepdim);
  return tfw__op_run(&c);
}

static tfw_status values_indices(tfw__op_id id, const tfw_tensor *t, int dim, bool keepdim,
                                 tfw_tensor **values, tfw_tensor **indices) {
  if (values) *values = NULL;
  if (indices) *indices = NULL;
  tfw__call c = dim_call(id, t, dim, keepdim);
  tfw_tensor *out[2] = {NULL, NULL};
  tfw_status st = tfw__op_run_multi(&c, out);
  if (st) return st;
  if (values) *values = out[0];
  else tfw_release(out[0]);
  if (indices) *indices = out[1];
  else tfw_release(out[1]);
  return TFW_OK;
}

tfw_status tfw_max_dim(const tfw_tensor *t, int dim, bool keepdim, tfw_tensor **values,
                       tfw_tensor **indices) {
  return values_indices(TFW__OP_max_dim, t, dim, keepdim, values, indices);
}
tfw_status tfw_min_dim(const tfw_tensor *t, int dim, bool keepdim, tfw_tensor **values,
                       tfw_tensor **indices) {
  return values_indices(TFW__OP_min_dim, t, dim, keepdim, values, indices);
}
