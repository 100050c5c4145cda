/* Creation ops (full, arange, linspace, eye) and copies (cast, clone) as registry entries,
 * with their public wrappers (tfw_zeros, tfw_ones, tfw_full, tfw_scalar, tfw_arange,
 * tfw_linspace, tfw_eye, tfw_to_dtype, tfw_clone, tfw_contiguous). */
#include <math.h>

#include "ops/registry.h"
#include "ops/samples.h"

static tfw_status shape_from_attrs(const tfw__call *c, tfw__meta *out) {
  const char *op = c->op->name;
  if (!tfw_dtype_is_valid(c->a.dtype))
    return tfw__error(TFW_EDTYPE, "%s: invalid dtype %d", op, (int)c->a.dtype);
  int nd = c->a.n_ints < 0 ? 0 : c->a.n_ints;
  tfw_status st = tfw__check_shape(op, nd, c->a.ints, tfw_dtype_size(c->a.dtype), NULL);
  if (st) return st;
  out->dtype = c->a.dtype;
  out->ndim = nd;
  memcpy(out->shape, c->a.ints, sizeof(int64_t) * (size_t)nd);
  return TFW_OK;
}

tfw_status tfw__infer_full(const tfw__call *c, tfw__meta *out) { return shape_from_attrs(c, out); }
tfw_status tfw__kernel_full(const tfw__call *c, tfw_tensor **out) {
  if (c->a.f[0] == 0) {
    memset(out[0]->storage->data, 0, out[0]->storage->nbytes); /* zero bits are 0 in every dtype */
    return TFW_OK;
  }
  return tfw_fill_(out[0], c->a.f[0]);
}

static tfw_status infer_1d(const tfw__call *c, tfw__meta *out, int64_t n) {
  if (!tfw_dtype_is_valid(c->a.dtype))
    return tfw__error(TFW_EDTYPE, "%s: invalid dtype %d", c->op->name, (int)c->a.dtype);
  out->dtype = c->a.dtype;
  out->ndim = 1;
  out->shape[0] = n;
  return tfw__check_shape(c->op->name, 1, out->shape, tfw_dtype_size(c->a.dtype), NULL);
}

tfw_status tfw__infer_arange(const tfw__call *c, tfw__meta *out) {
  double start = c->a.f[0], end = c->a.f[1], step = c->a.f[2];
  if (!isfinite(start) || !isfinite(end) || !isfinite(step))
    return tfw__error(TFW_EVALUE, "arange: start, end and step must be finite (got %g, %g, %g)",
                      start, end, step);
  if (step == 0) return tfw__error(TFW_EVALUE, "arange: step must be nonzero");
  if ((end - start) / step < 0)
    return tfw__error(TFW_EVALUE, "arange: step %g goes the wrong way from %g to %g", step, start, end);
  double len = ceil((end - start) / step);
  if (!(len < 9.0e15)) return tfw__error(TFW_ESHAPE, "arange: %g elements is too many", len);
  return infer_1d(c, out, (int64_t)len);
}
tfw_status tfw__kernel_arange(const tfw__call *c, tfw_tensor **out) {
  tfw_tensor *t = out[0];
  int64_t n = t->shape[0];
  size_t es = tfw_dtype_size(t->dtype);
  char *p = tfw__data(t);
  for (int64_t i = 0; i < n; i++)
    tfw__store_f64(p + i * (int64_t)es, t->dtype, c->a.f[0] + (double)i * c->a.f[2]);
  return TFW_OK;
}

tfw_status tfw__infer_linspace(const tfw__call *c, tfw__meta *out) {
  if (c->a.i[0] < 0)
    return tfw__error(TFW_EVALUE, "linspace: steps must be >= 0, got %lld", (long long)c->a.i[0]);
  return infer_1d(c, out, c->a.i[0]);
}
tfw_status tfw__kernel_linspace(const tfw__call *c, tfw_tensor **out) {
  tfw_tensor *t = out[0];
  int64_t steps = t->shape[0];
  double start = c->a.f[0], end = c->a.f[1];
  size_t es = tfw_dtype_size(t->dtype);
  char *p = tfw__data(t);
  double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0.0;
  /* Like PyTorch: the first half counts up from start, the second half down from end, so
   * both endpoints are exact. */
  int64_t half = steps / 2;
  for (int64_t i = 0; i < steps; i++) {
    double v = i < half ? start + step * (double)i : end - step * (double)(steps - 1 - i);
    tfw__store_f64(p + i * (int64_t)es, t->dtype, v);
  }
  return TFW_OK;
}

tfw_status tfw__infer_eye(const tfw__call *c, tfw__meta *out) {
  if (!tfw_dtype_is_valid(c->a.dtype))
    return tfw__error(TFW_EDTYPE, "eye: invalid dtype %d", (int)c->a.dtype);
  out->dtype = c->a.dtype;
  out->ndim = 2;
  out->shape[0] = c->a.i[0];
  out->shape[1] = c->a.i[1];
  return tfw__check_shape("eye", 2, out->shape, tfw_dtype_size(c->a.dtype), NULL);
}
tfw_status tfw__kernel_eye(const tfw__call *c, tfw_tensor **out) {
  tfw_tensor *t = out[0];
  memset(t->storage->data, 0, t->storage->nbytes);
  int64_t n = t->shape[0], m = t->shape[1];
  size_t es = tfw_dtype_size(t->dtype);
  for (int64_t i = 0; i < n && i < m; i++) tfw__store_f64(tfw__data(t) + (i * m + i) * (int64_t)es, t->dtype, 1.0);
  return TFW_OK;
}

tfw_status tfw__infer_cast(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *a = c->in[0];
  tfw_dtype dt = c->op->id == TFW__OP_clone ? a->dtype : c->a.dtype;
  if (!tfw_dtype_is_valid(dt)) return tfw__error(TFW_EDTYPE, "%s: invalid dtype %d", c->op->name, (int)dt);
  out->dtype = dt;
  out->ndim = a->ndim;
  memcpy(out->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
  return TFW_OK;
}
tfw_status tfw__infer_clone(const tfw__call *c, tfw__meta *out) { return tfw__infer_cast(c, out); }
tfw_status tfw__kernel_cast(const tfw__call *c, tfw_tensor **out) { return tfw__copy_cast(out[0], c->in[0]); }
tfw_status tfw__kernel_clone(const tfw__call *c, tfw_tensor **out) { return tfw__copy_cast(out[0], c->in[0]); }

/* ---- samples ------------------------------------------------------------------------------ */
int tfw__sample_full(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 2) return 0;
  tfw__call_init(&calls[0], op->id, 0, NULL);
  calls[0].a.n_ints = 2, calls[0].a.ints[0] = 3, calls[0].a.ints[1] = 4;
  calls[0].a.dtype = TFW_DTYPE_F32, calls[0].a.f[0] = 1.5;
  tfw__call_init(&calls[1], op->id, 0, NULL);
  calls[1].a.n_ints = 0, calls[1].a.dtype = TFW_DTYPE_I64, calls[1].a.f[0] = -7;
  return 2;
}
int tfw__sample_arange(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 2) return 0;
  tfw__call_init(&calls[0], op->id, 0, NULL);
  calls[0].a.f[0] = 0, calls[0].a.f[1] = 5, calls[0].a.f[2] = 0.5, calls[0].a.dtype = TFW_DTYPE_F32;
  tfw__call_init(&calls[1], op->id, 0, NULL);
  calls[1].a.f[0] = 10, calls[1].a.f[1] = -3, calls[1].a.f[2] = -3, calls[1].a.dtype = TFW_DTYPE_I32;
  return 2;
}
int tfw__sample_linspace(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 1) return 0;
  tfw__call_init(&calls[0], op->id, 0, NULL);
  calls[0].a.f[0] = -1, calls[0].a.f[1] = 2, calls[0].a.i[0] = 7, calls[0].a.dtype = TFW_DTYPE_F64;
  return 1;
}
int tfw__sample_eye(const tfw__op_def *op, tfw__call *calls, int cap) {
  if (cap < 1) return 0;
  tfw__call_init(&calls[0], op->id, 0, NULL);
  calls[0].a.i[0] = 3, calls[0].a.i[1] = 5, calls[0].a.dtype = TFW_DTYPE_F32;
  return 1;
}
int tfw__sample_cast(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s[2] = {3, 5};
  const tfw_dtype to[3] = {TFW_DTYPE_F64, TFW_DTYPE_I32, TFW_DTYPE_BF16};
  const tfw__layout lay[3] = {TFW__LAYOUT_STRIDED, TFW__LAYOUT_BROADCAST, TFW__LAYOUT_CONTIGUOUS};
  int n = 0;
  for (int k = 0; k < 3 && n < cap; k++, n++) {
    const tfw_tensor *a = tfw__sample_tensor(TFW_DTYPE_F32, 2, s, -100, 100, (uint64_t)k, lay[k]);
    tfw__call_init(&calls[n], op->id, 1, &a);
    calls[n].a.dtype = to[k];
  }
  return n;
}

/* ---- public wrappers ----------------------------------------------------------------------- */
static tfw_tensor *full(tfw_dtype dt, int ndim, const int64_t *shape, double v) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_full, 0, NULL);
  if (ndim < 0 || ndim > TFW_MAX_DIMS) {
    tfw__error(TFW_ESHAPE, "full: ndim must be in [0, %d], got %d", TFW_MAX_DIMS, ndim);
    return NULL;
  }
  if (ndim > 0 && !shape) {
    tfw__error(TFW_EVALUE, "full: shape is NULL");
    return NULL;
  }
  c.a.n_ints = ndim;
  for (int i = 0; i < ndim; i++) c.a.ints[i] = shape[i];
  c.a.dtype = dt;
  c.a.f[0] = v;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_zeros(tfw_dtype dt, int ndim, const int64_t *shape) { return full(dt, ndim, shape, 0); }
tfw_tensor *tfw_ones(tfw_dtype dt, int ndim, const int64_t *shape) { return full(dt, ndim, shape, 1); }
tfw_tensor *tfw_full(tfw_dtype dt, int ndim, const int64_t *shape, double v) { return full(dt, ndim, shape, v); }
tfw_tensor *tfw_scalar(tfw_dtype dt, double v) { return full(dt, 0, NULL, v); }

tfw_tensor *tfw_arange(double start, double end, double step, tfw_dtype dt) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_arange, 0, NULL);
  c.a.f[0] = start, c.a.f[1] = end, c.a.f[2] = step, c.a.dtype = dt;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_linspace(double start, double end, int64_t steps, tfw_dtype dt) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_linspace, 0, NULL);
  c.a.f[0] = start, c.a.f[1] = end, c.a.i[0] = steps, c.a.dtype = dt;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_eye(int64_t n, int64_t m, tfw_dtype dt) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_eye, 0, NULL);
  c.a.i[0] = n, c.a.i[1] = m, c.a.dtype = dt;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_to_dtype(const tfw_tensor *t, tfw_dtype dt) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_cast, 1, &t);
  c.a.dtype = dt;
  return tfw__op_run(&c);
}
tfw_tensor *tfw_clone(const tfw_tensor *t) { return tfw__op1(TFW__OP_clone, t); }
tfw_tensor *tfw_contiguous(const tfw_tensor *t) {
  if (t && tfw__is_contiguous(t)) return tfw_retain((tfw_tensor *)t);
  return tfw__op1(TFW__OP_clone, t);
}
