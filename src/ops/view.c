/* View ops (src/ops/view.def): view, reshape, transpose, permute, slice, narrow, select,
 * expand, squeeze, squeeze_all, unsqueeze, unflatten, plus the composite tfw_flatten.
 *
 * Every view op is pure stride arithmetic: view_geometry() computes the result's shape,
 * strides and offset from in[0] and the attributes (or an error naming the op and the
 * values); the shared infer reports the shape and the shared kernel wraps the geometry in
 * tfw__tensor_view, so the result aliases in[0]'s storage and nothing is copied.
 *
 * reshape follows PyTorch: tfw__view_strides() is PyTorch's computeStride (a view exists
 * when every run of input dims that the new shape splits or merges is itself contiguous,
 * whatever the order of the runs), tfw_reshape returns a view when it succeeds and runs
 * the copying "reshape" entry otherwise. tfw_flatten is a composite of tfw_reshape and is
 * not a registry entry. */

#include "ops/registry.h"
#include "ops/samples.h"
#include "ops/view.h"

/* ---- shape helpers --------------------------------------------------------------------- */

tfw_status tfw__infer_size(const char *op, const tfw_tensor *t, int n, const int64_t *sizes,
                           int64_t *out) {
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (n < 0 || n > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: shape has %d dimensions; expected 0 to %d", op, n,
                      TFW_MAX_DIMS);
  int64_t numel = tfw__numel(t->ndim, t->shape);
  int infer = -1;
  bool zero = false;
  for (int k = 0; k < n; k++) {
    if (sizes[k] == -1) {
      if (infer >= 0)
        return tfw__error(TFW_ESHAPE, "%s: only one dimension can be inferred (-1), shape %s",
                          op, tfw__shape_str(b1, sizeof b1, n, sizes));
      infer = k;
    } else if (sizes[k] < 0) {
      return tfw__error(TFW_ESHAPE, "%s: invalid size %lld at index %d of shape %s", op,
                        (long long)sizes[k], k, tfw__shape_str(b1, sizeof b1, n, sizes));
    }
    zero |= sizes[k] == 0;
  }
  int64_t known = 1; /* product of the given sizes */
  for (int k = 0; k < n && !zero; k++)
    if (k != infer && __builtin_mul_overflow(known, sizes[k], &known)) goto bad;
  if (zero) known = 0;
  for (int k = 0; k < n; k++) out[k] = sizes[k];
  if (infer >= 0) {
    if (known == 0)
      return tfw__error(TFW_ESHAPE, "%s: cannot reshape a tensor of %lld elements (%s) into shape "
                        "%s: the size of the -1 dimension is ambiguous", op, (long long)numel,
                        tfw__shape_str(b2, sizeof b2, t->ndim, t->shape),
                        tfw__shape_str(b1, sizeof b1, n, sizes));
    if (numel % known != 0) goto bad;
    out[infer] = numel / known;
    return TFW_OK;
  }
  if (known != numel) goto bad;
  return TFW_OK;
bad:
  return tfw__error(TFW_ESHAPE, "%s: shape %s is invalid for input of %lld elements (%s)", op,
                    tfw__shape_str(b1, sizeof b1, n, sizes), (long long)numel,
                    tfw__shape_str(b2, sizeof b2, t->ndim, t->shape));
}

bool tfw__view_strides(int ondim, const int64_t *oshape, const int64_t *ostride, int ndim,
                       const int64_t *shape, int64_t *strides) {
  if (ondim == 0) {
    for (int d = 0; d < ndim; d++) strides[d] = 1;
    return true;
  }
  int64_t numel = tfw__numel(ondim, oshape);
  if (numel == 0) {
    bool same = ondim == ndim;
    for (int d = 0; same && d < ndim; d++) same = oshape[d] == shape[d];
    if (same) {
      for (int d = 0; d < ndim; d++) strides[d] = ostride[d];
      return true;
    }
    for (int d = ndim - 1; d >= 0; d--)
      strides[d] = d == ndim - 1 ? 1 : (shape[d + 1] > 1 ? shape[d + 1] : 1) * strides[d + 1];
    return true;
  }
  /* Walk the old dims from the innermost, cutting them into chunks that are contiguous
   * among themselves (stride[d-1] == numel of the chunk * base stride); each chunk must be
   * covered exactly by a run of new dims, which then get strides within the chunk. */
  int vd = ndim - 1;
  int64_t base = ostride[ondim - 1], tnumel = 1, vnumel = 1;
  for (int td = ondim - 1; td >= 0; td--) {
    tnumel *= oshape[td];
    if (td == 0 || (oshape[td - 1] != 1 && ostride[td - 1] != tnumel * base)) {
      while (vd >= 0 && (vnumel < tnumel || shape[vd] == 1)) {
        strides[vd] = vnumel * base;
        vnumel *= shape[vd];
        vd--;
      }
      if (vnumel != tnumel) return false;
      if (td > 0) {
        base = ostride[td - 1];
        tnumel = 1;
        vnumel = 1;
      }
    }
  }
  return vd == -1;
}

/* Dims for ops that address an existing dim; a 0-d tensor has none. */
static int wrap_existing(const char *op, int64_t dim, const tfw_tensor *t) {
  if (t->ndim == 0) {
    tfw__error(TFW_EINDEX, "%s: cannot be applied to a 0-d tensor (dim %lld)", op,
               (long long)dim);
    return -1;
  }
  if (dim < -t->ndim || dim >= t->ndim) {
    tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d dimensions "
               "(expected in [%d, %d])", op, (long long)dim, t->ndim, -t->ndim, t->ndim - 1);
    return -1;
  }
  return (int)(dim < 0 ? dim + t->ndim : dim);
}

/* Like tfw__wrap_dim (scalars accept 0 and -1) but for int64 attributes. */
static int wrap_dim64(const char *op, int64_t dim, int ndim) {
  if (dim < INT32_MIN || dim > INT32_MAX) {
    tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d dimensions", op,
               (long long)dim, ndim);
    return -1;
  }
  return tfw__wrap_dim(op, (int)dim, ndim);
}

/* ---- geometry of every view op ----------------------------------------------------------- */

typedef struct view_geom {
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
  int64_t strides[TFW_MAX_DIMS];
  int64_t offset;
} view_geom;

static void geom_copy_input(view_geom *g, const tfw_tensor *t) {
  g->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) {
    g->shape[d] = t->shape[d];
    g->strides[d] = t->strides[d];
  }
  g->offset = t->offset;
}

static void geom_drop(view_geom *g, int d) {
  for (int k = d; k + 1 < g->ndim; k++) {
    g->shape[k] = g->shape[k + 1];
    g->strides[k] = g->strides[k + 1];
  }
  g->ndim--;
}

static tfw_status geom_view(const tfw__call *c, const tfw_tensor *t, view_geom *g) {
  const char *op = c->op->name;
  const tfw__attrs *a = &c->a;
  tfw_status st = tfw__infer_size(op, t, a->n_ints, a->ints, g->shape);
  if (st) return st;
  g->ndim = a->n_ints;
  g->offset = t->offset;
  if (c->op->id == TFW__OP_reshape) {
    tfw__contiguous_strides(g->ndim, g->shape, g->strides);
    return TFW_OK;
  }
  if (!tfw__view_strides(t->ndim, t->shape, t->strides, g->ndim, g->shape, g->strides)) {
    char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF], b3[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: shape %s is not compatible with the input's size %s and "
                      "strides %s (at least one dimension spans two contiguous runs); use "
                      "reshape, which copies", op, tfw__shape_str(b1, sizeof b1, g->ndim, g->shape),
                      tfw__shape_str(b2, sizeof b2, t->ndim, t->shape),
                      tfw__shape_str(b3, sizeof b3, t->ndim, t->strides));
  }
  return TFW_OK;
}

static tfw_status geom_slice(const tfw__call *c, const tfw_tensor *t, view_geom *g) {
  const char *op = c->op->name;
  const tfw__attrs *a = &c->a;
  int d = wrap_existing(op, a->i[0], t);
  if (d < 0) return tfw_last_status();
  geom_copy_input(g, t);
  int64_t size = t->shape[d], start = a->i[1], len;
  if (c->op->id == TFW__OP_slice) {
    int64_t end = a->i[2], step = a->i[3];
    if (step <= 0)
      return tfw__error(TFW_EVALUE, "%s: step must be positive, got %lld", op, (long long)step);
    if (start < 0) start += size;
    if (end < 0) end += size;
    start = start < 0 ? 0 : start > size ? size : start;
    end = end < 0 ? 0 : end > size ? size : end;
    len = end > start ? (end - start - 1) / step + 1 : 0;
    g->strides[d] = len > 1 ? t->strides[d] * step : t->strides[d]; /* no overflow: step < size */
  } else { /* narrow */
    len = a->i[2];
    if (start < -size || start > size)
      return tfw__error(TFW_EINDEX, "%s: start %lld out of range for dimension %d of size %lld "
                        "(expected in [%lld, %lld])", op, (long long)start, d, (long long)size,
                        (long long)-size, (long long)size);
    if (start < 0) start += size;
    if (len < 0)
      return tfw__error(TFW_EVALUE, "%s: length must be non-negative, got %lld", op,
                        (long long)len);
    if (len > size - start)
      return tfw__error(TFW_EINDEX, "%s: start (%lld) + length (%lld) exceeds dimension %d of "
                        "size %lld", op, (long long)start, (long long)len, d, (long long)size);
  }
  g->shape[d] = len;
  g->offset += start * t->strides[d];
  return TFW_OK;
}

static tfw_status geom_expand(const tfw__call *c, const tfw_tensor *t, view_geom *g) {
  const char *op = c->op->name;
  const tfw__attrs *a = &c->a;
  int n = a->n_ints;
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (n < t->ndim || n > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: %d sizes given for a tensor of %d dimensions (expected "
                      "%d to %d)", op, n, t->ndim, t->ndim, TFW_MAX_DIMS);
  g->ndim = n;
  g->offset = t->offset;
  for (int k = 0; k < n; k++) {
    int j = k - (n - t->ndim); /* the input dim aligned with k, or < 0 for a new one */
    int64_t s = a->ints[k];
    if (j < 0 && s < 0) {
      return tfw__error(TFW_ESHAPE, "%s: cannot expand shape %s to %s: the new leading "
                        "dimension %d must have a size >= 0, got %lld", op,
                        tfw__shape_str(b1, sizeof b1, t->ndim, t->shape),
                        tfw__shape_str(b2, sizeof b2, n, a->ints), k, (long long)s);
    } else if (j < 0) {
      g->shape[k] = s;
      g->strides[k] = 0;
    } else if (s == -1 || s == t->shape[j]) {
      g->shape[k] = t->shape[j];
      g->strides[k] = t->strides[j];
    } else if (t->shape[j] == 1 && s >= 0) {
      g->shape[k] = s;
      g->strides[k] = 0;
    } else {
      return tfw__error(TFW_ESHAPE, "%s: cannot expand shape %s to %s: size %lld at dimension "
                        "%d must match the existing size %lld or the existing size must be 1",
                        op, tfw__shape_str(b1, sizeof b1, t->ndim, t->shape),
                        tfw__shape_str(b2, sizeof b2, n, a->ints), (long long)s, k,
                        (long long)(j < 0 ? 1 : t->shape[j]));
    }
  }
  /* a broadcast view may be materialised later: its numel must be representable */
  return tfw__check_shape(op, g->ndim, g->shape, tfw_dtype_size(t->dtype), NULL);
}

static tfw_status geom_unflatten(const tfw__call *c, const tfw_tensor *t, view_geom *g) {
  const char *op = c->op->name;
  const tfw__attrs *a = &c->a;
  int d = wrap_existing(op, a->i[0], t);
  if (d < 0) return tfw_last_status();
  int n = a->n_ints;
  if (n < 1 || t->ndim - 1 + n > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: %d sizes given for dimension %d of a %d-d tensor "
                      "(expected 1 to %d)", op, n, d, t->ndim, TFW_MAX_DIMS - t->ndim + 1);
  /* infer the sizes against a 1-d stand-in for the unflattened dimension */
  tfw_tensor dimt;
  memset(&dimt, 0, sizeof dimt);
  dimt.ndim = 1;
  dimt.shape[0] = t->shape[d];
  int64_t sizes[TFW_MAX_DIMS];
  tfw_status st = tfw__infer_size(op, &dimt, n, a->ints, sizes);
  if (st) return st;
  g->ndim = t->ndim - 1 + n;
  g->offset = t->offset;
  for (int k = 0; k < d; k++) {
    g->shape[k] = t->shape[k];
    g->strides[k] = t->strides[k];
  }
  int64_t stride = t->strides[d];
  for (int k = n - 1; k >= 0; k--) {
    g->shape[d + k] = sizes[k];
    g->strides[d + k] = stride;
    stride *= sizes[k] > 0 ? sizes[k] : 1;
  }
  for (int k = d + 1; k < t->ndim; k++) {
    g->shape[k - 1 + n] = t->shape[k];
    g->strides[k - 1 + n] = t->strides[k];
  }
  return TFW_OK;
}

static tfw_status view_geometry(const tfw__call *c, view_geom *g) {
  const tfw_tensor *t = c->in[0];
  const char *op = c->op->name;
  const tfw__attrs *a = &c->a;
  switch (c->op->id) {
  case TFW__OP_view:
  case TFW__OP_reshape:
    return geom_view(c, t, g);
  case TFW__OP_transpose: {
    int d0 = wrap_dim64(op, a->i[0], t->ndim);
    if (d0 < 0) return tfw_last_status();
    int d1 = wrap_dim64(op, a->i[1], t->ndim);
    if (d1 < 0) return tfw_last_status();
    geom_copy_input(g, t);
    if (t->ndim == 0) return TFW_OK;
    g->shape[d0] = t->shape[d1];
    g->strides[d0] = t->strides[d1];
    g->shape[d1] = t->shape[d0];
    g->strides[d1] = t->strides[d0];
    return TFW_OK;
  }
  case TFW__OP_permute: {
    if (a->n_ints != t->ndim)
      return tfw__error(TFW_ESHAPE, "%s: %d dims given for a tensor of %d dimensions", op,
                        a->n_ints, t->ndim);
    bool seen[TFW_MAX_DIMS] = {false};
    geom_copy_input(g, t);
    for (int k = 0; k < t->ndim; k++) {
      int d = wrap_existing(op, a->ints[k], t);
      if (d < 0) return tfw_last_status();
      if (seen[d]) return tfw__error(TFW_EVALUE, "%s: dimension %d appears twice in dims", op, d);
      seen[d] = true;
      g->shape[k] = t->shape[d];
      g->strides[k] = t->strides[d];
    }
    return TFW_OK;
  }
  case TFW__OP_slice:
  case TFW__OP_narrow:
    return geom_slice(c, t, g);
  case TFW__OP_select: {
    int d = wrap_existing(op, a->i[0], t);
    if (d < 0) return tfw_last_status();
    int64_t size = t->shape[d], idx = a->i[1];
    if (idx < -size || idx >= size)
      return tfw__error(TFW_EINDEX, "%s: index %lld out of range for dimension %d of size %lld",
                        op, (long long)idx, d, (long long)size);
    if (idx < 0) idx += size;
    geom_copy_input(g, t);
    g->offset += idx * t->strides[d];
    geom_drop(g, d);
    return TFW_OK;
  }
  case TFW__OP_expand:
    return geom_expand(c, t, g);
  case TFW__OP_squeeze: {
    int d = wrap_dim64(op, a->i[0], t->ndim);
    if (d < 0) return tfw_last_status();
    geom_copy_input(g, t);
    if (t->ndim > 0 && t->shape[d] == 1) geom_drop(g, d);
    return TFW_OK;
  }
  case TFW__OP_squeeze_all:
    geom_copy_input(g, t);
    for (int d = g->ndim - 1; d >= 0; d--)
      if (g->shape[d] == 1) geom_drop(g, d);
    return TFW_OK;
  case TFW__OP_unsqueeze: {
    if (t->ndim >= TFW_MAX_DIMS)
      return tfw__error(TFW_ESHAPE, "%s: a tensor of %d dimensions cannot gain another (at most "
                        "%d)", op, t->ndim, TFW_MAX_DIMS);
    int d = wrap_dim64(op, a->i[0], t->ndim + 1);
    if (d < 0) return tfw_last_status();
    geom_copy_input(g, t);
    for (int k = t->ndim; k > d; k--) {
      g->shape[k] = g->shape[k - 1];
      g->strides[k] = g->strides[k - 1];
    }
    g->shape[d] = 1;
    g->strides[d] = d >= t->ndim ? 1 : t->shape[d] * t->strides[d];
    g->ndim++;
    return TFW_OK;
  }
  case TFW__OP_unflatten:
    return geom_unflatten(c, t, g);
  default:
    return tfw__error(TFW_EINTERNAL, "%s: not a view op", op);
  }
}

/* ---- registry functions ----------------------------------------------------------------- */

tfw_status tfw__infer_view(const tfw__call *c, tfw__meta *out) {
  view_geom g;
  tfw_status st = view_geometry(c, &g);
  if (st) return st;
  out[0].dtype = c->in[0]->dtype;
  out[0].ndim = g.ndim;
  for (int d = 0; d < g.ndim; d++) out[0].shape[d] = g.shape[d];
  return TFW_OK;
}

tfw_status tfw__kernel_view(const tfw__call *c, tfw_tensor **out) {
  view_geom g;
  tfw_status st = view_geometry(c, &g);
  if (st) return st;
  out[0] = tfw__tensor_view(c->in[0], g.ndim, g.shape, g.strides, g.offset);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* The copying half of reshape: out[0] is contiguous with the new shape, so a view of it
 * with the input's shape and contiguous strides lines the elements up in row-major order. */
tfw_status tfw__kernel_reshape(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw_tensor dst;
  tfw__light_view(&dst, out[0], t->ndim, t->shape, NULL, out[0]->offset);
  return tfw__copy_cast(&dst, t);
}

void tfw__light_view(tfw_tensor *v, const tfw_tensor *base, int ndim, const int64_t *shape,
                     const int64_t *strides, int64_t offset) {
  memset(v, 0, sizeof *v);
  atomic_init(&v->refcount, 1);
  v->storage = base->storage;
  v->dtype = base->dtype;
  v->ndim = ndim;
  for (int d = 0; d < ndim; d++) v->shape[d] = shape[d];
  if (strides) {
    for (int d = 0; d < ndim; d++) v->strides[d] = strides[d];
  } else {
    tfw__contiguous_strides(ndim, shape, v->strides);
  }
  v->offset = offset;
}

/* Samples: a [3, 4, 5] tensor in each layout (contiguous, strided = transposed and
 * stepped, broadcast = stride 0 on dim 0) with attributes valid for every layout. */
static tfw__call *next_sample(const tfw__op_def *op, tfw__call *calls, int *n, int cap,
                              tfw_dtype dt, tfw__layout layout) {
  static const int64_t s345[3] = {3, 4, 5};
  if (*n >= cap) return NULL;
  tfw_tensor *t = tfw__sample_tensor(dt, 3, s345, -4, 4, (uint64_t)*n, layout);
  if (!t) return NULL;
  tfw__call *c = &calls[(*n)++];
  const tfw_tensor *in[1] = {t};
  tfw__call_init(c, op->id, 1, in);
  return c;
}

static void set_list(tfw__attrs *a, int n, const int64_t *v) {
  a->n_ints = n;
  for (int k = 0; k < n; k++) a->ints[k] = v[k];
}

int tfw__sample_view(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const tfw__layout layouts[3] = {TFW__LAYOUT_CONTIGUOUS, TFW__LAYOUT_STRIDED,
                                         TFW__LAYOUT_BROADCAST};
  static const tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_I64};
  int n = 0;
  for (int s = 0; s < 3; s++) {
    tfw__call *c = next_sample(op, calls, &n, cap, dts[s], layouts[s]);
    if (!c) break;
    tfw__attrs *a = &c->a;
    switch (op->id) {
    case TFW__OP_view: /* split dim 1: a view for every layout */
      set_list(a, 4, (const int64_t[]){3, 2, 2, -1});
      break;
    case TFW__OP_reshape:
      set_list(a, 2, (const int64_t[]){-1, 6});
      break;
    case TFW__OP_transpose:
      a->i[0] = 0;
      a->i[1] = -1;
      break;
    case TFW__OP_permute:
      set_list(a, 3, (const int64_t[]){2, 0, 1});
      break;
    case TFW__OP_slice:
      a->i[0] = s == 1 ? -1 : 1;
      a->i[1] = -3;
      a->i[2] = 100;
      a->i[3] = 2;
      break;
    case TFW__OP_narrow:
      a->i[0] = 2;
      a->i[1] = 1;
      a->i[2] = 3;
      break;
    case TFW__OP_select:
      a->i[0] = 1;
      a->i[1] = -1;
      break;
    case TFW__OP_expand:
      set_list(a, 4, (const int64_t[]){2, -1, 4, 5});
      break;
    case TFW__OP_squeeze: /* s == 2: dim 0 has size 3, the view is unchanged */
      a->i[0] = 0;
      break;
    case TFW__OP_unsqueeze:
      a->i[0] = s - 2;
      break;
    case TFW__OP_unflatten:
      a->i[0] = -1;
      set_list(a, 2, (const int64_t[]){-1, 5});
      break;
    default:
      break;
    }
  }
  return n;
}

/* ---- public wrappers ---------------------------------------------------------------------- */

tfw_status tfw__call_set_ints(tfw__call *c, const char *arg, int n, const int64_t *v) {
  if (n < 0 || n > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: '%s' has %d entries; expected 0 to %d", c->op->name, arg,
                      n, TFW_MAX_DIMS);
  if (n > 0 && !v) return tfw__error(TFW_EVALUE, "%s: '%s' is NULL", c->op->name, arg);
  set_list(&c->a, n, v);
  return TFW_OK;
}

static tfw_tensor *run_list(tfw__op_id id, const tfw_tensor *t, const char *arg, int n,
                            const int64_t *v) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  if (tfw__call_set_ints(&c, arg, n, v)) return NULL;
  return tfw__op_run(&c);
}

static tfw_tensor *run_scalars(tfw__op_id id, const tfw_tensor *t, int64_t i0, int64_t i1,
                               int64_t i2, int64_t i3) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  c.a.i[0] = i0;
  c.a.i[1] = i1;
  c.a.i[2] = i2;
  c.a.i[3] = i3;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_view(const tfw_tensor *t, int ndim, const int64_t *shape) {
  return run_list(TFW__OP_view, t, "shape", ndim, shape);
}

tfw_tensor *tfw_reshape(const tfw_tensor *t, int ndim, const int64_t *shape) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_reshape, 1, &t);
  if (tfw__call_set_ints(&c, "shape", ndim, shape)) return NULL;
  if (!t) return tfw__op_run(&c); /* the dispatcher reports the NULL input */
  int64_t sizes[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  if (tfw__infer_size("reshape", t, ndim, shape, sizes)) return NULL;
  if (tfw__view_strides(t->ndim, t->shape, t->strides, ndim, sizes, strides))
    c.op = &tfw__ops[TFW__OP_view];
  return tfw__op_run(&c);
}

tfw_tensor *tfw_transpose(const tfw_tensor *t, int dim0, int dim1) {
  return run_scalars(TFW__OP_transpose, t, dim0, dim1, 0, 0);
}

tfw_tensor *tfw_permute(const tfw_tensor *t, int ndim, const int *dims) {
  int64_t d64[TFW_MAX_DIMS];
  if (ndim >= 0 && ndim <= TFW_MAX_DIMS && dims)
    for (int k = 0; k < ndim; k++) d64[k] = dims[k];
  return run_list(TFW__OP_permute, t, "dims", ndim, dims ? d64 : NULL);
}

tfw_tensor *tfw_slice(const tfw_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
  return run_scalars(TFW__OP_slice, t, dim, start, end, step);
}

tfw_tensor *tfw_narrow(const tfw_tensor *t, int dim, int64_t start, int64_t length) {
  return run_scalars(TFW__OP_narrow, t, dim, start, length, 0);
}

tfw_tensor *tfw_select(const tfw_tensor *t, int dim, int64_t index) {
  return run_scalars(TFW__OP_select, t, dim, index, 0, 0);
}

tfw_tensor *tfw_expand(const tfw_tensor *t, int ndim, const int64_t *shape) {
  return run_list(TFW__OP_expand, t, "shape", ndim, shape);
}

tfw_tensor *tfw_squeeze(const tfw_tensor *t, int dim) {
  return run_scalars(TFW__OP_squeeze, t, dim, 0, 0, 0);
}

tfw_tensor *tfw_squeeze_all(const tfw_tensor *t) {
  return run_scalars(TFW__OP_squeeze_all, t, 0, 0, 0, 0);
}

tfw_tensor *tfw_unsqueeze(const tfw_tensor *t, int dim) {
  return run_scalars(TFW__OP_unsqueeze, t, dim, 0, 0, 0);
}

tfw_tensor *tfw_unflatten(const tfw_tensor *t, int dim, int n, const int64_t *sizes) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_unflatten, 1, &t);
  if (tfw__call_set_ints(&c, "sizes", n, sizes)) return NULL;
  c.a.i[0] = dim;
  return tfw__op_run(&c);
}

/* Composite: the merged shape, then reshape (a view when the strides allow). A 0-d tensor
 * flattens to [1], like PyTorch. */
tfw_tensor *tfw_flatten(const tfw_tensor *t, int start_dim, int end_dim) {
  if (tfw__check_tensor("flatten", "t", t)) return NULL;
  int s = tfw__wrap_dim("flatten", start_dim, t->ndim);
  if (s < 0) return NULL;
  int e = tfw__wrap_dim("flatten", end_dim, t->ndim);
  if (e < 0) return NULL;
  if (s > e) {
    tfw__error(TFW_EVALUE, "flatten: start_dim (%d) comes after end_dim (%d)", start_dim,
               end_dim);
    return NULL;
  }
  if (t->ndim == 0) return tfw_reshape(t, 1, (const int64_t[]){1});
  int64_t shape[TFW_MAX_DIMS];
  int n = 0;
  for (int d = 0; d < s; d++) shape[n++] = t->shape[d];
  int64_t m = 1;
  for (int d = s; d <= e; d++) m *= t->shape[d]; /* cannot overflow: numel fits */
  shape[n++] = m;
  for (int d = e + 1; d < t->ndim; d++) shape[n++] = t->shape[d];
  return tfw_reshape(t, n, shape);
}
