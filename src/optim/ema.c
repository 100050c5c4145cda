/* Exponential moving average of a module's weights (timm's ModelEmaV2 semantics:
 * ema = decay * ema + (1 - decay) * value, with an optional warmup of the decay). */
#include <math.h>
#include <stdio.h>

#include "autograd/autograd.h"
#include "optim/optim_internal.h"

typedef struct ema_entry {
  char *name;
  tfw_tensor *shadow; /* contiguous, no grad */
  bool floating;
} ema_entry;

struct tfw_ema {
  double decay;
  bool warmup, include_buffers;
  int64_t num_updates;
  ema_entry *e;
  int n;
};

/* The module's tensors the EMA follows: parameters, then (optionally) buffers. */
static tfw_status gather(const tfw_ema *e, const tfw_module *m, bool include_buffers,
                         tfw_named_tensor **out, int *count) {
  tfw_named_tensor *p, *b = NULL;
  int np, nb = 0;
  tfw_status st = tfw_module_named_parameters(m, &p, &np);
  if (st) return st;
  if (include_buffers) {
    st = tfw_module_named_buffers(m, &b, &nb);
    if (st) {
      tfw_named_tensors_free(p, np);
      return st;
    }
  }
  tfw_named_tensor *all = tfw__realloc(p, (size_t)(np + nb + 1) * sizeof *all);
  if (!all) {
    tfw_named_tensors_free(p, np);
    tfw_named_tensors_free(b, nb);
    return tfw__error(TFW_ENOMEM, "ema: out of memory");
  }
  for (int i = 0; i < nb; i++) all[np + i] = b[i];
  tfw__free(b); /* names and references moved */
  *out = all;
  *count = np + nb;
  (void)e;
  return TFW_OK;
}

void tfw_ema_release(tfw_ema *e) {
  if (!e) return;
  for (int i = 0; i < e->n; i++) tfw__free(e->e[i].name), tfw_release(e->e[i].shadow);
  tfw__free(e->e);
  tfw__free(e);
}

tfw_ema *tfw_ema_new(const tfw_module *m, double decay, bool warmup, bool include_buffers) {
  if (!m) {
    tfw__error(TFW_EVALUE, "ema_new: module is NULL");
    return NULL;
  }
  if (!(decay >= 0 && decay <= 1)) {
    tfw__error(TFW_EVALUE, "ema_new: decay must be in [0, 1], got %g", decay);
    return NULL;
  }
  tfw_named_tensor *l;
  int n;
  if (gather(NULL, m, include_buffers, &l, &n)) return NULL;
  tfw_ema *e = tfw__calloc(1, sizeof *e);
  if (e) e->e = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof(ema_entry));
  if (!e || !e->e) {
    tfw__free(e);
    tfw_named_tensors_free(l, n);
    tfw__error(TFW_ENOMEM, "ema_new: out of memory");
    return NULL;
  }
  e->decay = decay, e->warmup = warmup, e->include_buffers = include_buffers;
  for (int i = 0; i < n; i++) {
    tfw_tensor *d = tfw_detach(l[i].tensor);
    tfw_tensor *c = d ? tfw_clone(d) : NULL;
    tfw_release(d);
    if (!c) {
      tfw_named_tensors_free(l, n);
      tfw_ema_release(e);
      return NULL;
    }
    e->e[e->n].name = l[i].name;
    l[i].name = NULL;
    e->e[e->n].shadow = c;
    e->e[e->n].floating = tfw_dtype_is_floating(c->dtype);
    e->n++;
  }
  tfw_named_tensors_free(l, n);
  return e;
}

/* Looks the module's tensors up against the entries: same names, order and shapes. */
static tfw_status match(const char *op, const tfw_ema *e, const tfw_module *m,
                        tfw_named_tensor **l, int *n) {
  if (!e || !m) return tfw__error(TFW_EVALUE, "%s: %s is NULL", op, e ? "module" : "ema");
  tfw_status st = gather(e, m, e->include_buffers, l, n);
  if (st) return st;
  if (*n != e->n) {
    st = tfw__error(TFW_EVALUE, "%s: the module has %d tensors, the EMA %d", op, *n, e->n);
  } else {
    for (int i = 0; i < e->n && !st; i++) {
      if (strcmp((*l)[i].name, e->e[i].name) != 0)
        st = tfw__error(TFW_EVALUE, "%s: tensor %d is \"%s\" in the module but \"%s\" in the EMA",
                        op, i, (*l)[i].name, e->e[i].name);
      else
        st = tfw__sd_check_shape(op, e->e[i].name, (*l)[i].tensor, e->e[i].shadow->ndim,
                                 e->e[i].shadow->shape);
      if (!st && (*l)[i].tensor->dtype != e->e[i].shadow->dtype)
        st = tfw__error(TFW_EDTYPE, "%s: \"%s\" has dtype %s, the EMA copy %s", op, e->e[i].name,
                        tfw_dtype_name((*l)[i].tensor->dtype),
                        tfw_dtype_name(e->e[i].shadow->dtype));
    }
  }
  if (st) {
    tfw_named_tensors_free(*l, *n);
    *l = NULL;
  }
  return st;
}

tfw_status tfw_ema_update(tfw_ema *e, const tfw_module *m) {
  tfw_named_tensor *l;
  int n;
  tfw_status st = match("ema_update", e, m, &l, &n);
  if (st) return st;
  double k = (double)(e->num_updates + 1);
  double d = e->warmup ? fmin(e->decay, (1.0 + k) / (10.0 + k)) : e->decay;
  for (int i = 0; i < n && !st; i++) {
    tfw_tensor *sh = e->e[i].shadow;
    tfw_tensor *v = tfw__as_contiguous(l[i].tensor, sh->dtype);
    if (!v) {
      st = tfw_last_status();
      break;
    }
    int64_t cnt = tfw_tensor_numel(sh);
    if (!e->e[i].floating) {
      memcpy(tfw__data(sh), tfw__data(v), (size_t)cnt * tfw_dtype_size(sh->dtype));
    } else if (sh->dtype == TFW_DTYPE_F32) {
      float *s = (float *)tfw__data(sh), df = (float)d, omd = (float)(1.0 - d);
      const float *x = (const float *)tfw__data(v);
      for (int64_t j = 0; j < cnt; j++) s[j] = s[j] * df + omd * x[j];
    } else if (sh->dtype == TFW_DTYPE_F64) {
      double *s = (double *)tfw__data(sh), omd = 1.0 - d;
      const double *x = (const double *)tfw__data(v);
      for (int64_t j = 0; j < cnt; j++) s[j] = s[j] * d + omd * x[j];
    } else { /* f16 / bf16: through double, one rounding */
      char *s = tfw__data(sh);
      const char *x = tfw__data(v);
      size_t es = tfw_dtype_size(sh->dtype);
      for (int64_t j = 0; j < cnt; j++)
        tfw__store_f64(s + j * (int64_t)es, sh->dtype,
                       tfw__load_f64(s + j * (int64_t)es, sh->dtype) * d +
                           (1.0 - d) * tfw__load_f64(x + j * (int64_t)es, sh->dtype));
    }
    tfw_release(v);
  }
  tfw_named_tensors_free(l, n);
  if (!st) e->num_updates++;
  return st;
}

tfw_status tfw_ema_copy_to(const tfw_ema *e, tfw_module *m) {
  tfw_named_tensor *l;
  int n;
  tfw_status st = match("ema_copy_to", e, m, &l, &n);
  if (st) return st;
  for (int i = 0; i < n && !st; i++) {
    st = tfw__copy_cast(l[i].tensor, e->e[i].shadow);
    tfw__bump_version(l[i].tensor);
  }
  tfw_named_tensors_free(l, n);
  return st;
}

tfw_status tfw_ema_swap(tfw_ema *e, tfw_module *m) {
  tfw_named_tensor *l;
  int n;
  tfw_status st = match("ema_swap", e, m, &l, &n);
  if (st) return st;
  tfw_tensor **old = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof *old);
  if (!old) st = tfw__error(TFW_ENOMEM, "ema_swap: out of memory");
  for (int i = 0; i < n && !st; i++) { /* copies first: a failure changes nothing */
    tfw_tensor *d = tfw_detach(l[i].tensor);
    old[i] = d ? tfw_clone(d) : NULL;
    tfw_release(d);
    if (!old[i]) st = tfw_last_status();
  }
  for (int i = 0; i < n && !st; i++) {
    st = tfw__copy_cast(l[i].tensor, e->e[i].shadow);
    tfw__bump_version(l[i].tensor);
  }
  for (int i = 0; i < n && !st; i++) {
    tfw_release(e->e[i].shadow);
    e->e[i].shadow = old[i];
    old[i] = NULL;
  }
  for (int i = 0; old && i < n; i++) tfw_release(old[i]);
  tfw__free(old);
  tfw_named_tensors_free(l, n);
  return st;
}

tfw_tensor *tfw_ema_get(const tfw_ema *e, const char *name) {
  if (!e || !name) return NULL;
  for (int i = 0; i < e->n; i++)
    if (strcmp(e->e[i].name, name) == 0) return e->e[i].shadow;
  return NULL;
}

int64_t tfw_ema_num_updates(const tfw_ema *e) { return e ? e->num_updates : 0; }

tfw_status tfw_ema_state_dict(const tfw_ema *e, tfw_named_tensor **out, int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "ema_state_dict: out and count are required");
  *out = NULL;
  *count = 0;
  if (!e) return tfw__error(TFW_EVALUE, "ema_state_dict: ema is NULL");
  tfw__sd_builder b = {0};
  tfw__sd_add_scalar(&b, (double)e->num_updates, "num_updates");
  tfw__sd_add_scalar(&b, e->decay, "decay");
  tfw__sd_add_scalar(&b, e->warmup, "warmup");
  for (int i = 0; i < e->n; i++) tfw__sd_add_copy(&b, e->e[i].shadow, "shadow.%s", e->e[i].name);
  return tfw__sd_finish(&b, out, count);
}

tfw_status tfw_ema_load_state_dict(tfw_ema *e, int n, const tfw_named_tensor *sd) {
  const char *op = "ema_load_state_dict";
  if (!e) return tfw__error(TFW_EVALUE, "%s: ema is NULL", op);
  tfw__sd_reader r;
  tfw_status st = tfw__sd_reader_init(&r, op, n, sd);
  double nu = 0, decay = 0, warm = 0;
  if (!st) st = tfw__sd_scalar(&r, &nu, "num_updates");
  if (!st) st = tfw__sd_scalar(&r, &decay, "decay");
  if (!st) st = tfw__sd_scalar(&r, &warm, "warmup");
  if (!st && !(nu >= 0 && nu == floor(nu) && nu < 9e15))
    st = tfw__error(TFW_EVALUE, "%s: num_updates must be an integer >= 0, got %g", op, nu);
  if (!st && !(decay >= 0 && decay <= 1))
    st = tfw__error(TFW_EVALUE, "%s: decay must be in [0, 1], got %g", op, decay);
  tfw_tensor **nv = st ? NULL : tfw__calloc((size_t)(e->n > 0 ? e->n : 1), sizeof *nv);
  if (!st && !nv) st = tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  for (int i = 0; i < e->n && !st; i++) {
    const tfw_tensor *t = tfw__sd_find(&r, "shadow.%s", e->e[i].name);
    char key[300];
    snprintf(key, sizeof key, "shadow.%s", e->e[i].name);
    if (!t) {
      st = tfw__error(TFW_EVALUE, "%s: missing key \"%s\"", op, key);
      break;
    }
    st = tfw__sd_check_shape(op, key, t, e->e[i].shadow->ndim, e->e[i].shadow->shape);
    if (st) break;
    nv[i] = tfw_empty(e->e[i].shadow->dtype, t->ndim, t->shape);
    if (!nv[i] || tfw__copy_cast(nv[i], t) != TFW_OK) st = tfw_last_status();
  }
  if (!st) st = tfw__sd_check_unused(&r);
  if (!st) {
    e->num_updates = (int64_t)nu, e->decay = decay, e->warmup = warm != 0;
    for (int i = 0; i < e->n; i++) {
      tfw_release(e->e[i].shadow);
      e->e[i].shadow = nv[i];
      nv[i] = NULL;
    }
  }
  for (int i = 0; nv && i < e->n; i++) tfw_release(nv[i]);
  tfw__free(nv);
  tfw__sd_reader_free(&r);
  return st;
}
