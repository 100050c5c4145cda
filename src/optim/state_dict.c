/* Named-tensor state dicts for the optimizer objects: a builder and a strict reader, plus the
 * two gradient accessors src/optim needs from autograd. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "optim/optim_internal.h"

#define NAME_CAP 256

static void sd_push(tfw__sd_builder *b, tfw_tensor *t, const char *name) {
  if (b->st != TFW_OK) {
    tfw_release(t);
    return;
  }
  if (!t) {
    b->st = tfw_last_status() != TFW_OK ? tfw_last_status() : TFW_ENOMEM;
    return;
  }
  if (b->n == b->cap) {
    int cap = b->cap ? b->cap * 2 : 16;
    tfw_named_tensor *v = tfw__realloc(b->v, (size_t)cap * sizeof *v);
    if (!v) {
      tfw_release(t);
      b->st = tfw__error(TFW_ENOMEM, "state_dict: out of memory");
      return;
    }
    b->v = v;
    b->cap = cap;
  }
  size_t len = strlen(name) + 1;
  char *s = tfw__malloc(len);
  if (!s) {
    tfw_release(t);
    b->st = tfw__error(TFW_ENOMEM, "state_dict: out of memory");
    return;
  }
  memcpy(s, name, len);
  b->v[b->n].name = s;
  b->v[b->n].tensor = t;
  b->n++;
}

void tfw__sd_add(tfw__sd_builder *b, tfw_tensor *t, const char *fmt, ...) {
  char name[NAME_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  sd_push(b, t, name);
}

void tfw__sd_add_scalar(tfw__sd_builder *b, double v, const char *fmt, ...) {
  char name[NAME_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  sd_push(b, b->st == TFW_OK ? tfw_scalar(TFW_DTYPE_F64, v) : NULL, name);
}

void tfw__sd_add_copy(tfw__sd_builder *b, const tfw_tensor *t, const char *fmt, ...) {
  char name[NAME_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  sd_push(b, b->st == TFW_OK ? tfw_clone(t) : NULL, name);
}

tfw_status tfw__sd_finish(tfw__sd_builder *b, tfw_named_tensor **out, int *count) {
  if (b->st != TFW_OK) {
    tfw_named_tensors_free(b->v, b->n);
    *out = NULL;
    *count = 0;
    return b->st;
  }
  *out = b->v;
  *count = b->n;
  return TFW_OK;
}

tfw_status tfw__sd_reader_init(tfw__sd_reader *r, const char *op, int n,
                               const tfw_named_tensor *sd) {
  r->op = op;
  r->n = n;
  r->sd = sd;
  r->used = NULL;
  if (n < 0 || (n > 0 && !sd))
    return tfw__error(TFW_EVALUE, "%s: invalid state dict (n = %d, list %s)", op, n,
                      sd ? "given" : "NULL");
  for (int i = 0; i < n; i++) {
    if (!sd[i].name || !sd[i].tensor)
      return tfw__error(TFW_EVALUE, "%s: state dict entry %d has a NULL %s", op, i,
                        sd[i].name ? "tensor" : "name");
  }
  r->used = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof(bool));
  if (!r->used) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  return TFW_OK;
}

void tfw__sd_reader_free(tfw__sd_reader *r) {
  tfw__free(r->used);
  r->used = NULL;
}

static const tfw_tensor *sd_lookup(tfw__sd_reader *r, const char *name) {
  for (int i = 0; i < r->n; i++) {
    if (strcmp(r->sd[i].name, name) == 0) {
      r->used[i] = true;
      return r->sd[i].tensor;
    }
  }
  return NULL;
}

const tfw_tensor *tfw__sd_find(tfw__sd_reader *r, const char *fmt, ...) {
  char name[NAME_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return sd_lookup(r, name);
}

tfw_status tfw__sd_scalar(tfw__sd_reader *r, double *out, const char *fmt, ...) {
  char name[NAME_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  const tfw_tensor *t = sd_lookup(r, name);
  if (!t) return tfw__error(TFW_EVALUE, "%s: missing key \"%s\"", r->op, name);
  if (tfw_tensor_numel(t) != 1 || tfw_tensor_ndim(t) > 1) {
    char sb[TFW__SHAPE_BUF];
    return tfw__error(TFW_EVALUE, "%s: key \"%s\" must hold one value, got shape %s", r->op,
                      name, tfw__shape_str(sb, sizeof sb, t->ndim, t->shape));
  }
  double v;
  if (tfw_item(t, &v) != TFW_OK) return tfw_last_status();
  if (!isfinite(v))
    return tfw__error(TFW_EVALUE, "%s: key \"%s\" holds a non-finite value (%g)", r->op, name, v);
  *out = v;
  return TFW_OK;
}

tfw_status tfw__sd_check_unused(tfw__sd_reader *r) {
  for (int i = 0; i < r->n; i++) {
    if (!r->used[i]) {
      /* a duplicate of a used key is unexpected too */
      return tfw__error(TFW_EVALUE, "%s: unexpected key \"%s\"", r->op, r->sd[i].name);
    }
  }
  return TFW_OK;
}

tfw_status tfw__sd_check_shape(const char *op, const char *key, const tfw_tensor *t, int ndim,
                               const int64_t *shape) {
  bool ok = t->ndim == ndim;
  for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
  if (ok) return TFW_OK;
  char a[TFW__SHAPE_BUF], b[TFW__SHAPE_BUF];
  return tfw__error(TFW_EVALUE, "%s: key \"%s\" has shape %s, expected %s", op, key,
                    tfw__shape_str(a, sizeof a, t->ndim, t->shape),
                    tfw__shape_str(b, sizeof b, ndim, shape));
}

tfw_tensor *tfw__param_grad(const tfw_tensor *p) {
  const tfw__ag *ag = tfw__ag_get(p);
  return ag ? ag->grad : NULL;
}

void tfw__param_set_grad(tfw_tensor *p, tfw_tensor *g) {
  tfw__ag *ag = tfw__ag_get(p);
  if (!ag) return; /* a tensor that never had autograd state has no gradient to replace */
  tfw_retain(g);
  tfw_release(ag->grad);
  ag->grad = g;
}
