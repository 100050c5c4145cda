/* Tensor and storage lifetime, inspection, and the creation functions. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "tfw_version_gen.h"

const char *tfw_version(void) { return TFW_VERSION_STRING_GEN; }

int64_t tfw__numel(int ndim, const int64_t *shape) {
  int64_t n = 1;
  bool overflow = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) return 0;
    if (__builtin_mul_overflow(n, shape[i], &n)) overflow = true;
  }
  return overflow ? -1 : n;
}

void tfw__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
  int64_t s = 1;
  for (int i = ndim - 1; i >= 0; i--) {
    strides[i] = s;
    /* can only overflow for tensors with a zero-size dim, whose strides are never used */
    if (__builtin_mul_overflow(s, shape[i] > 1 ? shape[i] : 1, &s)) s = 1;
  }
}

tfw_status tfw__check_shape(const char *op, int ndim, const int64_t *shape, size_t elsize,
                            int64_t *numel) {
  if (ndim < 0 || ndim > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: ndim must be in [0, %d], got %d", op, TFW_MAX_DIMS, ndim);
  if (ndim > 0 && !shape) return tfw__error(TFW_EVALUE, "%s: shape is NULL", op);
  int64_t n = 1;
  bool zero = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      char b[TFW__SHAPE_BUF];
      return tfw__error(TFW_ESHAPE, "%s: negative dimension %lld at index %d in shape %s", op,
                        (long long)shape[i], i, tfw__shape_str(b, sizeof b, ndim, shape));
    }
    if (shape[i] == 0) zero = true;
  }
  if (!zero) {
    for (int i = 0; i < ndim; i++) {
      if (__builtin_mul_overflow(n, shape[i], &n)) goto overflow;
    }
    int64_t bytes;
    if (__builtin_mul_overflow(n, (int64_t)(elsize ? elsize : 1), &bytes)) goto overflow;
  } else {
    n = 0;
  }
  if (numel) *numel = n;
  return TFW_OK;
overflow: {
  char b[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: shape %s has more elements than fit in 64-bit bytes", op,
                    tfw__shape_str(b, sizeof b, ndim, shape));
}
}

static tfw_tensor *tensor_alloc(void) {
  tfw_tensor *t = tfw__calloc(1, sizeof *t);
  if (!t) return NULL;
  atomic_init(&t->refcount, 1);
  tfw__stats_tensor(+1);
  return t;
}

tfw_tensor *tfw__tensor_new(const char *op, tfw_dtype dt, int ndim, const int64_t *shape) {
  if (!tfw_dtype_is_valid(dt)) {
    tfw__error(TFW_EDTYPE, "%s: invalid dtype %d", op, (int)dt);
    return NULL;
  }
  int64_t numel = 0;
  if (tfw__check_shape(op, ndim, shape, tfw_dtype_size(dt), &numel) != TFW_OK) return NULL;
  size_t nbytes = (size_t)numel * tfw_dtype_size(dt);
  tfw__storage *s = tfw__calloc(1, sizeof *s);
  if (!s) goto oom;
  s->data = tfw__storage_alloc(nbytes);
  if (!s->data) {
    tfw__free(s);
    goto oom;
  }
  atomic_init(&s->refcount, 1);
  s->nbytes = nbytes;
  s->owned = true;
  tfw_tensor *t = tensor_alloc();
  if (!t) {
    tfw__storage_free(s->data, nbytes);
    tfw__free(s);
    goto oom;
  }
  t->storage = s;
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  tfw__contiguous_strides(ndim, shape, t->strides);
  return t;
oom: {
  char b[TFW__SHAPE_BUF];
  tfw__error(TFW_ENOMEM, "%s: out of memory allocating %zu bytes for %s tensor of shape %s", op,
             nbytes, tfw_dtype_name(dt), tfw__shape_str(b, sizeof b, ndim, shape));
  return NULL;
}
}

tfw_tensor *tfw__tensor_view(const tfw_tensor *base, int ndim, const int64_t *shape,
                             const int64_t *strides, int64_t offset) {
  tfw_tensor *t = tensor_alloc();
  if (!t) {
    tfw__error(TFW_ENOMEM, "view: out of memory");
    return NULL;
  }
  atomic_fetch_add(&base->storage->refcount, 1);
  t->storage = base->storage;
  t->dtype = base->dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) {
    t->shape[i] = shape[i];
    t->strides[i] = strides[i];
  }
  t->offset = offset;
  return t;
}

static void storage_release(tfw__storage *s) {
  int64_t r = atomic_fetch_sub(&s->refcount, 1) - 1;
  TFW_ASSERT(r >= 0);
  if (r > 0) return;
  if (s->owned) tfw__storage_free(s->data, s->nbytes);
  else if (s->release) s->release(s->release_ctx, s->data);
  tfw__free(s);
}

/* Hook for src/autograd: releases what the autograd fields hold. */
void (*tfw__autograd_release_hook)(tfw_tensor *t) = NULL;

tfw_tensor *tfw_retain(tfw_tensor *t) {
  if (t) atomic_fetch_add(&t->refcount, 1);
  return t;
}

void tfw_release(tfw_tensor *t) {
  if (!t) return;
  int64_t r = atomic_fetch_sub(&t->refcount, 1) - 1;
  TFW_ASSERT(r >= 0); /* a refcount below zero is a double release */
  if (r > 0) return;
  if (t->autograd && tfw__autograd_release_hook) tfw__autograd_release_hook(t);
  storage_release(t->storage);
  tfw__stats_tensor(-1);
  tfw__free(t);
}

int tfw_tensor_ndim(const tfw_tensor *t) { return t ? t->ndim : -1; }
const int64_t *tfw_tensor_shape(const tfw_tensor *t) { return t ? t->shape : NULL; }
const int64_t *tfw_tensor_strides(const tfw_tensor *t) { return t ? t->strides : NULL; }
int64_t tfw_tensor_offset(const tfw_tensor *t) { return t ? t->offset : 0; }
tfw_dtype tfw_tensor_dtype(const tfw_tensor *t) { return t ? t->dtype : TFW_DTYPE_COUNT; }
int64_t tfw_tensor_numel(const tfw_tensor *t) { return t ? tfw__numel(t->ndim, t->shape) : 0; }
void *tfw_tensor_data(const tfw_tensor *t) { return t ? tfw__data(t) : NULL; }
bool tfw_tensor_shares_storage(const tfw_tensor *a, const tfw_tensor *b) {
  return a && b && a->storage == b->storage;
}

int64_t tfw_tensor_size(const tfw_tensor *t, int dim) {
  if (!t) return -1;
  int d = tfw__wrap_dim("tfw_tensor_size", dim, t->ndim);
  return d < 0 ? -1 : t->shape[d];
}

bool tfw__is_contiguous(const tfw_tensor *t) {
  int64_t s = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] == 0) return true;
    if (t->shape[i] != 1 && t->strides[i] != s) return false;
    s *= t->shape[i];
  }
  return true;
}
bool tfw_tensor_is_contiguous(const tfw_tensor *t) { return t && tfw__is_contiguous(t); }

int tfw__wrap_dim(const char *op, int dim, int ndim) {
  int n = ndim > 0 ? ndim : 1; /* scalars accept dim 0 and -1, like PyTorch */
  if (dim < -n || dim >= n) {
    tfw__error(TFW_EINDEX, "%s: dimension %d out of range for a tensor of %d dimensions "
               "(expected in [%d, %d])", op, dim, ndim, -n, n - 1);
    return -1;
  }
  return dim < 0 ? dim + n : dim;
}

tfw_status tfw__check_tensor(const char *op, const char *arg, const tfw_tensor *t) {
  if (!t) return tfw__error(TFW_EVALUE, "%s: argument '%s' is NULL", op, arg);
  return TFW_OK;
}

/* ---- element access ------------------------------------------------------------------- */

static tfw_status element_ptr(const char *op, const tfw_tensor *t, const int64_t *index,
                              char **p) {
  if (tfw__check_tensor(op, "t", t)) return TFW_EVALUE;
  if (t->ndim > 0 && !index) return tfw__error(TFW_EVALUE, "%s: index is NULL", op);
  int64_t off = 0;
  for (int i = 0; i < t->ndim; i++) {
    int64_t k = index[i];
    if (k < 0) k += t->shape[i];
    if (k < 0 || k >= t->shape[i])
      return tfw__error(TFW_EINDEX, "%s: index %lld out of range for dimension %d of size %lld",
                        op, (long long)index[i], i, (long long)t->shape[i]);
    off += k * t->strides[i];
  }
  *p = tfw__data(t) + off * (int64_t)tfw_dtype_size(t->dtype);
  return TFW_OK;
}

tfw_status tfw_tensor_get(const tfw_tensor *t, const int64_t *index, double *out) {
  char *p;
  tfw_status s = element_ptr("tfw_tensor_get", t, index, &p);
  if (s) return s;
  if (out) *out = tfw__load_f64(p, t->dtype);
  return TFW_OK;
}

tfw_status tfw_tensor_set(tfw_tensor *t, const int64_t *index, double value) {
  char *p;
  tfw_status s = element_ptr("tfw_tensor_set", t, index, &p);
  if (s) return s;
  atomic_fetch_add(&t->storage->version, 1);
  tfw__store_f64(p, t->dtype, value);
  return TFW_OK;
}

static tfw_status item_ptr(const char *op, const tfw_tensor *t, char **p) {
  if (tfw__check_tensor(op, "t", t)) return TFW_EVALUE;
  int64_t n = tfw__numel(t->ndim, t->shape);
  if (n != 1) {
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: a tensor with %lld elements (shape %s) has no single value",
                      op, (long long)n, tfw__shape_str(b, sizeof b, t->ndim, t->shape));
  }
  *p = tfw__data(t);
  return TFW_OK;
}

tfw_status tfw_item(const tfw_tensor *t, double *out) {
  char *p;
  tfw_status s = item_ptr("tfw_item", t, &p);
  if (s) return s;
  if (out) *out = tfw__load_f64(p, t->dtype);
  return TFW_OK;
}

tfw_status tfw_item_i64(const tfw_tensor *t, int64_t *out) {
  char *p;
  tfw_status s = item_ptr("tfw_item_i64", t, &p);
  if (s) return s;
  if (out) *out = tfw__load_i64(p, t->dtype);
  return TFW_OK;
}

/* ---- creation --------------------------------------------------------------------------- */

tfw_tensor *tfw_empty(tfw_dtype dt, int ndim, const int64_t *shape) {
  return tfw__tensor_new("empty", dt, ndim, shape);
}

tfw_tensor *tfw_zeros_like(const tfw_tensor *t) {
  if (tfw__check_tensor("zeros_like", "t", t)) return NULL;
  return tfw_zeros(t->dtype, t->ndim, t->shape);
}
tfw_tensor *tfw_ones_like(const tfw_tensor *t) {
  if (tfw__check_tensor("ones_like", "t", t)) return NULL;
  return tfw_ones(t->dtype, t->ndim, t->shape);
}
tfw_tensor *tfw_full_like(const tfw_tensor *t, double value) {
  if (tfw__check_tensor("full_like", "t", t)) return NULL;
  return tfw_full(t->dtype, t->ndim, t->shape, value);
}

tfw_tensor *tfw_from_data(tfw_dtype dt, int ndim, const int64_t *shape, const void *data) {
  tfw_tensor *t = tfw__tensor_new("from_data", dt, ndim, shape);
  if (!t) return NULL;
  if (t->storage->nbytes) {
    if (!data) {
      tfw_release(t);
      tfw__error(TFW_EVALUE, "from_data: data is NULL");
      return NULL;
    }
    memcpy(t->storage->data, data, t->storage->nbytes);
  }
  return t;
}

tfw_tensor *tfw_from_buffer(tfw_dtype dt, int ndim, const int64_t *shape, const int64_t *strides,
                            void *data, tfw_release_fn release, void *ctx) {
  if (!tfw_dtype_is_valid(dt)) {
    tfw__error(TFW_EDTYPE, "from_buffer: invalid dtype %d", (int)dt);
    return NULL;
  }
  int64_t numel = 0;
  if (tfw__check_shape("from_buffer", ndim, shape, tfw_dtype_size(dt), &numel)) return NULL;
  if (!data && numel > 0) {
    tfw__error(TFW_EVALUE, "from_buffer: data is NULL");
    return NULL;
  }
  tfw__storage *s = tfw__calloc(1, sizeof *s);
  tfw_tensor *t = s ? tensor_alloc() : NULL;
  if (!t) {
    tfw__free(s);
    tfw__error(TFW_ENOMEM, "from_buffer: out of memory");
    return NULL;
  }
  atomic_init(&s->refcount, 1);
  s->data = data;
  s->release = release;
  s->release_ctx = ctx;
  t->storage = s;
  t->dtype = dt;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  if (strides) {
    for (int i = 0; i < ndim; i++) t->strides[i] = strides[i];
  } else {
    tfw__contiguous_strides(ndim, shape, t->strides);
  }
  /* Extent for the record (not used for bounds: the buffer is the caller's promise). */
  s->nbytes = (size_t)numel * tfw_dtype_size(dt);
  return t;
}
