/* Modules: named parameters, buffers and children; recursive iteration with PyTorch's key
 * order; state_dict / load_state_dict; train/eval; hooks. */
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "nn/nn_internal.h"
#include "tenflower/nn.h"

typedef struct entry {
  char *name;
  tfw_tensor *t; /* NULL: a reserved slot (bias=False) */
  bool persistent;
} entry;

typedef struct child {
  char *name;
  tfw_module *m;
} child;

typedef struct hook {
  int kind; /* 0 forward, 1 pre, 2 backward */
  void (*fn)(void);
  void *ctx;
  struct hook *next;
} hook;

#define TFW__MAX_MODULE_OUT 8

typedef struct bwd_ctx {
  tfw_module *m;
  int k;
} bwd_ctx;

struct tfw_module {
  _Atomic int64_t refcount;
  const tfw_module_vtable *vt;
  void *impl;
  bool training;
  entry *params;
  int n_params, cap_params;
  entry *buffers;
  int n_buffers, cap_buffers;
  child *children;
  int n_children, cap_children;
  hook *hooks;
  bwd_ctx bwd[TFW__MAX_MODULE_OUT];
};

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = tfw__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

tfw_module *tfw_module_new(const tfw_module_vtable *vt, void *impl) {
  if (!vt || !vt->forward) {
    tfw__error(TFW_EVALUE, "module_new: a vtable with a forward function is required");
    return NULL;
  }
  tfw_module *m = tfw__calloc(1, sizeof *m);
  if (!m) {
    tfw__error(TFW_ENOMEM, "module_new: out of memory");
    return NULL;
  }
  atomic_init(&m->refcount, 1);
  m->vt = vt;
  m->impl = impl;
  m->training = true;
  for (int k = 0; k < TFW__MAX_MODULE_OUT; k++) m->bwd[k] = (bwd_ctx){m, k};
  return m;
}

void *tfw_module_impl(const tfw_module *m) { return m ? m->impl : NULL; }

void tfw__module_free_impl(void *impl) { free(impl); }

tfw_module *tfw__module_new_impl(const tfw_module_vtable *vt, size_t impl_size, void **impl) {
  void *blk = calloc(1, impl_size ? impl_size : 1);
  tfw_module *m = blk ? tfw_module_new(vt, blk) : NULL;
  if (!m) {
    free(blk);
    tfw__error(TFW_ENOMEM, "%s: out of memory", vt->type_name);
    return NULL;
  }
  *impl = blk;
  return m;
}
const char *tfw_module_type(const tfw_module *m) { return m ? m->vt->type_name : NULL; }

tfw_module *tfw_module_retain(tfw_module *m) {
  if (m) atomic_fetch_add(&m->refcount, 1);
  return m;
}

void tfw_module_release(tfw_module *m) {
  if (!m) return;
  int64_t r = atomic_fetch_sub(&m->refcount, 1) - 1;
  TFW_ASSERT(r >= 0);
  if (r > 0) return;
  for (int i = 0; i < m->n_params; i++) tfw__free(m->params[i].name), tfw_release(m->params[i].t);
  for (int i = 0; i < m->n_buffers; i++) tfw__free(m->buffers[i].name), tfw_release(m->buffers[i].t);
  for (int i = 0; i < m->n_children; i++)
    tfw__free(m->children[i].name), tfw_module_release(m->children[i].m);
  tfw__free(m->params);
  tfw__free(m->buffers);
  tfw__free(m->children);
  for (hook *h = m->hooks; h;) {
    hook *n = h->next;
    tfw__free(h);
    h = n;
  }
  if (m->vt->destroy) m->vt->destroy(m->impl);
  tfw__free(m);
}

/* ---- registration ---------------------------------------------------------------------- */

static tfw_status check_name(const char *op, const char *name) {
  if (!name || !name[0]) return tfw__error(TFW_EVALUE, "%s: empty name", op);
  if (strchr(name, '.'))
    return tfw__error(TFW_EVALUE, "%s: name '%s' must not contain '.'", op, name);
  if (strlen(name) > 200) return tfw__error(TFW_EVALUE, "%s: name longer than 200 characters", op);
  return TFW_OK;
}

static int find_entry(const entry *e, int n, const char *name) {
  for (int i = 0; i < n; i++)
    if (strcmp(e[i].name, name) == 0) return i;
  return -1;
}

static int find_child(const tfw_module *m, const char *name, size_t len) {
  for (int i = 0; i < m->n_children; i++)
    if (strlen(m->children[i].name) == len && strncmp(m->children[i].name, name, len) == 0) return i;
  return -1;
}

/* Fails if name is used by another kind of member. */
static tfw_status check_clash(const char *op, const tfw_module *m, const char *name, int kind) {
  bool clash = (kind != 0 && find_entry(m->params, m->n_params, name) >= 0) ||
               (kind != 1 && find_entry(m->buffers, m->n_buffers, name) >= 0) ||
               (kind != 2 && find_child(m, name, strlen(name)) >= 0);
  if (clash) return tfw__error(TFW_EVALUE, "%s: '%s' is already a member of this %s", op, name,
                               m->vt->type_name);
  return TFW_OK;
}

static tfw_status add_entry(const char *op, entry **arr, int *n, int *cap, const char *name,
                            tfw_tensor *t, bool persistent) {
  int i = find_entry(*arr, *n, name);
  if (i >= 0) { /* replace */
    tfw_release((*arr)[i].t);
    (*arr)[i].t = tfw_retain(t);
    (*arr)[i].persistent = persistent;
    return TFW_OK;
  }
  if (*n == *cap) {
    int nc = *cap ? *cap * 2 : 4;
    entry *ne = tfw__realloc(*arr, sizeof(entry) * (size_t)nc);
    if (!ne) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    *arr = ne;
    *cap = nc;
  }
  char *nm = dupstr(name);
  if (!nm) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  (*arr)[*n] = (entry){nm, tfw_retain(t), persistent};
  (*n)++;
  return TFW_OK;
}

tfw_status tfw_module_register_parameter(tfw_module *m, const char *name, tfw_tensor *p) {
  const char *op = "register_parameter";
  if (!m) return tfw__error(TFW_EVALUE, "%s: module is NULL", op);
  tfw_status st = check_name(op, name);
  if (!st) st = check_clash(op, m, name, 0);
  if (st) return st;
  if (p) {
    if (!tfw_dtype_is_floating(tfw_tensor_dtype(p)))
      return tfw__error(TFW_EDTYPE, "%s: parameter '%s' must be floating-point, got %s", op, name,
                        tfw_dtype_name(tfw_tensor_dtype(p)));
    st = tfw_tensor_set_requires_grad(p, true);
    if (st) return st;
  }
  return add_entry(op, &m->params, &m->n_params, &m->cap_params, name, p, true);
}

tfw_status tfw_module_register_buffer(tfw_module *m, const char *name, tfw_tensor *b, bool persistent) {
  const char *op = "register_buffer";
  if (!m) return tfw__error(TFW_EVALUE, "%s: module is NULL", op);
  tfw_status st = check_name(op, name);
  if (!st) st = check_clash(op, m, name, 1);
  if (st) return st;
  return add_entry(op, &m->buffers, &m->n_buffers, &m->cap_buffers, name, b, persistent);
}

tfw_status tfw_module_register_module(tfw_module *m, const char *name, tfw_module *c) {
  const char *op = "register_module";
  if (!m || !c) return tfw__error(TFW_EVALUE, "%s: module and child must not be NULL", op);
  if (c == m) return tfw__error(TFW_EVALUE, "%s: a module cannot be its own child", op);
  tfw_status st = check_name(op, name);
  if (!st) st = check_clash(op, m, name, 2);
  if (st) return st;
  int i = find_child(m, name, strlen(name));
  if (i >= 0) {
    tfw_module_retain(c);
    tfw_module_release(m->children[i].m);
    m->children[i].m = c;
    return TFW_OK;
  }
  if (m->n_children == m->cap_children) {
    int nc = m->cap_children ? m->cap_children * 2 : 4;
    child *n = tfw__realloc(m->children, sizeof(child) * (size_t)nc);
    if (!n) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    m->children = n;
    m->cap_children = nc;
  }
  char *nm = dupstr(name);
  if (!nm) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  m->children[m->n_children++] = (child){nm, tfw_module_retain(c)};
  return TFW_OK;
}

/* Walks the dotted path to the owning module; *leaf receives the last component. */
static const tfw_module *walk(const tfw_module *m, const char *path, const char **leaf) {
  while (m) {
    const char *dot = strchr(path, '.');
    if (!dot) {
      *leaf = path;
      return m;
    }
    int i = find_child(m, path, (size_t)(dot - path));
    m = i >= 0 ? m->children[i].m : NULL;
    path = dot + 1;
  }
  return NULL;
}

tfw_tensor *tfw_module_get_parameter(const tfw_module *m, const char *path) {
  const char *leaf;
  if (!m || !path) return NULL;
  const tfw_module *o = walk(m, path, &leaf);
  int i = o ? find_entry(o->params, o->n_params, leaf) : -1;
  return i >= 0 ? o->params[i].t : NULL;
}

tfw_tensor *tfw_module_get_buffer(const tfw_module *m, const char *path) {
  const char *leaf;
  if (!m || !path) return NULL;
  const tfw_module *o = walk(m, path, &leaf);
  int i = o ? find_entry(o->buffers, o->n_buffers, leaf) : -1;
  return i >= 0 ? o->buffers[i].t : NULL;
}

tfw_module *tfw_module_get_child(const tfw_module *m, const char *path) {
  const char *leaf;
  if (!m || !path) return NULL;
  const tfw_module *o = walk(m, path, &leaf);
  int i = o ? find_child(o, leaf, strlen(leaf)) : -1;
  return i >= 0 ? o->children[i].m : NULL;
}

/* ---- iteration --------------------------------------------------------------------------- */

typedef struct {
  tfw_named_tensor *v;
  int n, cap;
  tfw_status st;
} nlist;

static void push(nlist *l, const char *prefix, const char *name, tfw_tensor *t, bool dedup) {
  if (l->st || !t) return;
  if (dedup)
    for (int i = 0; i < l->n; i++)
      if (l->v[i].tensor == t) return;
  if (l->n == l->cap) {
    int nc = l->cap ? l->cap * 2 : 16;
    tfw_named_tensor *nv = tfw__realloc(l->v, sizeof(*nv) * (size_t)nc);
    if (!nv) {
      l->st = tfw__error(TFW_ENOMEM, "named tensors: out of memory");
      return;
    }
    l->v = nv;
    l->cap = nc;
  }
  size_t len = strlen(prefix) + strlen(name) + 1;
  char *full = tfw__malloc(len);
  if (!full) {
    l->st = tfw__error(TFW_ENOMEM, "named tensors: out of memory");
    return;
  }
  snprintf(full, len, "%s%s", prefix, name);
  l->v[l->n++] = (tfw_named_tensor){full, tfw_retain(t)};
}

/* what: 1 params, 2 buffers, 3 state_dict (params + persistent buffers, per module) */
static void collect(const tfw_module *m, const char *prefix, int what, nlist *l, int depth) {
  if (depth > 64) {
    l->st = tfw__error(TFW_EVALUE, "named tensors: modules nested deeper than 64 (a cycle?)");
    return;
  }
  if (what & 1)
    for (int i = 0; i < m->n_params; i++) push(l, prefix, m->params[i].name, m->params[i].t, what == 1);
  if (what & 2)
    for (int i = 0; i < m->n_buffers; i++)
      if (what != 3 || m->buffers[i].persistent)
        push(l, prefix, m->buffers[i].name, m->buffers[i].t, what == 2);
  for (int i = 0; i < m->n_children && !l->st; i++) {
    char sub[1024];
    size_t lp = strlen(prefix), ln = strlen(m->children[i].name);
    if (lp + ln + 2 > sizeof sub) {
      l->st = tfw__error(TFW_EVALUE, "named tensors: a dotted name is longer than %zu characters", sizeof sub);
      return;
    }
    memcpy(sub, prefix, lp);
    memcpy(sub + lp, m->children[i].name, ln);
    sub[lp + ln] = '.';
    sub[lp + ln + 1] = '\0';
    collect(m->children[i].m, sub, what, l, depth + 1);
  }
}

void tfw_named_tensors_free(tfw_named_tensor *list, int count) {
  if (!list) return;
  for (int i = 0; i < count; i++) tfw__free(list[i].name), tfw_release(list[i].tensor);
  tfw__free(list);
}

static tfw_status gather(const tfw_module *m, int what, tfw_named_tensor **out, int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "named tensors: out and count are required");
  *out = NULL;
  *count = 0;
  if (!m) return tfw__error(TFW_EVALUE, "named tensors: module is NULL");
  nlist l = {0};
  collect(m, "", what, &l, 0);
  if (l.st) {
    tfw_named_tensors_free(l.v, l.n);
    return l.st;
  }
  *out = l.v;
  *count = l.n;
  return TFW_OK;
}

tfw_status tfw_module_named_parameters(const tfw_module *m, tfw_named_tensor **out, int *count) {
  return gather(m, 1, out, count);
}
tfw_status tfw_module_named_buffers(const tfw_module *m, tfw_named_tensor **out, int *count) {
  return gather(m, 2, out, count);
}

int64_t tfw_module_num_parameters(const tfw_module *m) {
  tfw_named_tensor *l;
  int n;
  if (gather(m, 1, &l, &n)) return -1;
  int64_t total = 0;
  for (int i = 0; i < n; i++) total += tfw_tensor_numel(l[i].tensor);
  tfw_named_tensors_free(l, n);
  return total;
}

tfw_status tfw_module_state_dict(const tfw_module *m, tfw_named_tensor **out, int *count) {
  tfw_status st = gather(m, 3, out, count);
  if (st) return st;
  for (int i = 0; i < *count; i++) { /* detached: the state has no history */
    tfw_tensor *d = tfw_detach((*out)[i].tensor);
    if (!d) {
      st = tfw_last_status();
      tfw_named_tensors_free(*out, *count);
      *out = NULL;
      *count = 0;
      return st;
    }
    tfw_release((*out)[i].tensor);
    (*out)[i].tensor = d;
  }
  return TFW_OK;
}

static bool same_shape(const tfw_tensor *a, const tfw_tensor *b) {
  return tfw_tensor_ndim(a) == tfw_tensor_ndim(b) &&
         memcmp(tfw_tensor_shape(a), tfw_tensor_shape(b), sizeof(int64_t) * (size_t)tfw_tensor_ndim(a)) == 0;
}

/* Appends to a bounded message buffer. */
static void addmsg(char *buf, size_t cap, size_t *len, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 4 >= cap) {
    if (*len + 4 < cap && strcmp(buf + *len - 3, "...") != 0) {
      memcpy(buf + *len, "...", 4);
      *len += 3;
    }
    return;
  }
  memcpy(buf + *len, s, n + 1);
  *len += n;
}

tfw_status tfw_module_load_state_dict(tfw_module *m, int n, const tfw_named_tensor *sd, bool strict,
                                      char **report) {
  const char *op = "load_state_dict";
  if (report) *report = NULL;
  if (!m || (n > 0 && !sd) || n < 0) return tfw__error(TFW_EVALUE, "%s: bad arguments", op);
  tfw_named_tensor *own;
  int n_own;
  tfw_status st = gather(m, 3, &own, &n_own);
  if (st) return st;
  char missing[1024] = "", unexpected[1024] = "", shapes[1024] = "";
  size_t lm = 0, lu = 0, ls = 0;
  int n_missing = 0, n_unexpected = 0, n_shape = 0;
  int *match = tfw__calloc((size_t)(n_own ? n_own : 1), sizeof(int));
  if (!match) {
    tfw_named_tensors_free(own, n_own);
    return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  }
  for (int i = 0; i < n_own; i++) {
    match[i] = -1;
    for (int j = 0; j < n; j++)
      if (sd[j].name && strcmp(sd[j].name, own[i].name) == 0) match[i] = j;
    if (match[i] < 0) {
      n_missing++;
      addmsg(missing, sizeof missing, &lm, lm ? ", " : "");
      addmsg(missing, sizeof missing, &lm, own[i].name);
    } else if (!sd[match[i]].tensor || !same_shape(sd[match[i]].tensor, own[i].tensor)) {
      char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF], line[512];
      const tfw_tensor *s = sd[match[i]].tensor;
      snprintf(line, sizeof line, "%s%s: checkpoint %s, model %s", ls ? "; " : "", own[i].name,
               s ? tfw__shape_str(b1, sizeof b1, tfw_tensor_ndim(s), tfw_tensor_shape(s)) : "NULL",
               tfw__shape_str(b2, sizeof b2, tfw_tensor_ndim(own[i].tensor), tfw_tensor_shape(own[i].tensor)));
      addmsg(shapes, sizeof shapes, &ls, line);
      n_shape++;
    }
  }
  for (int j = 0; j < n; j++) {
    bool found = false;
    for (int i = 0; i < n_own && !found; i++) found = match[i] == j;
    if (!found) {
      n_unexpected++;
      addmsg(unexpected, sizeof unexpected, &lu, lu ? ", " : "");
      addmsg(unexpected, sizeof unexpected, &lu, sd[j].name ? sd[j].name : "(null)");
    }
  }
  if (report && (n_missing || n_unexpected)) {
    size_t cap = lm + lu + 64;
    *report = malloc(cap);
    if (*report) snprintf(*report, cap, "missing keys: [%s]; unexpected keys: [%s]", missing, unexpected);
  }
  if (n_shape || (strict && (n_missing || n_unexpected))) {
    st = tfw__error(TFW_EVALUE, "%s: %d missing key(s) [%s], %d unexpected key(s) [%s], %d shape "
                    "mismatch(es) [%s]", op, n_missing, missing, n_unexpected, unexpected, n_shape, shapes);
  } else {
    bool prev = tfw_set_grad_enabled(false);
    for (int i = 0; i < n_own && !st; i++)
      if (match[i] >= 0) st = tfw_copy_(own[i].tensor, sd[match[i]].tensor);
    tfw_set_grad_enabled(prev);
  }
  tfw__free(match);
  tfw_named_tensors_free(own, n_own);
  return st;
}

/* ---- running ------------------------------------------------------------------------------- */

void tfw_module_train(tfw_module *m, bool training) {
  if (!m) return;
  m->training = training;
  for (int i = 0; i < m->n_children; i++) tfw_module_train(m->children[i].m, training);
}

bool tfw_module_is_training(const tfw_module *m) { return m && m->training; }

void tfw_module_zero_grad(tfw_module *m) {
  if (!m) return;
  for (int i = 0; i < m->n_params; i++) tfw_tensor_zero_grad(m->params[i].t);
  for (int i = 0; i < m->n_children; i++) tfw_module_zero_grad(m->children[i].m);
}

tfw_status tfw_module_apply(tfw_module *m, tfw_status (*fn)(tfw_module *, void *), void *ctx) {
  if (!m || !fn) return tfw__error(TFW_EVALUE, "module_apply: module and fn are required");
  for (int i = 0; i < m->n_children; i++) {
    tfw_status st = tfw_module_apply(m->children[i].m, fn, ctx);
    if (st) return st;
  }
  return fn(m, ctx);
}

static tfw_tensor *bwd_hook_tramp(const tfw_tensor *grad, void *ctx) {
  bwd_ctx *b = ctx;
  for (hook *h = b->m->hooks; h; h = h->next)
    if (h->kind == 2) ((tfw_backward_hook_fn)h->fn)(b->m, b->k, grad, h->ctx);
  return NULL;
}

tfw_status tfw_module_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (!m) return tfw__error(TFW_EVALUE, "module_forward: module is NULL");
  if (!out || n_out < 0 || n_in < 0 || (n_in > 0 && !in))
    return tfw__error(TFW_EVALUE, "%s: bad input/output arrays", m->vt->type_name);
  for (int k = 0; k < n_out; k++) out[k] = NULL;
  bool has_bwd = false;
  for (hook *h = m->hooks; h; h = h->next) {
    if (h->kind == 1) ((tfw_forward_pre_hook_fn)h->fn)(m, n_in, in, h->ctx);
    if (h->kind == 2) has_bwd = true;
  }
  tfw_status st = m->vt->forward(m, n_in, in, n_out, out);
  if (st) {
    for (int k = 0; k < n_out; k++) {
      tfw_release(out[k]);
      out[k] = NULL;
    }
    return st;
  }
  for (hook *h = m->hooks; h; h = h->next)
    if (h->kind == 0) ((tfw_forward_hook_fn)h->fn)(m, n_in, in, n_out, out, h->ctx);
  if (has_bwd)
    for (int k = 0; k < n_out && k < TFW__MAX_MODULE_OUT; k++)
      if (out[k] && tfw_tensor_requires_grad(out[k]))
        tfw_tensor_register_hook(out[k], bwd_hook_tramp, &m->bwd[k]);
  return TFW_OK;
}

tfw_tensor *tfw_module_call(tfw_module *m, const tfw_tensor *x) {
  tfw_tensor *in[1] = {(tfw_tensor *)x}, *out[1] = {NULL};
  if (tfw_module_forward(m, 1, in, 1, out)) return NULL;
  return out[0];
}

static tfw_status add_hook(tfw_module *m, int kind, void (*fn)(void), void *ctx) {
  if (!m || !fn) return tfw__error(TFW_EVALUE, "register hook: module and fn are required");
  hook *h = tfw__calloc(1, sizeof *h);
  if (!h) return tfw__error(TFW_ENOMEM, "register hook: out of memory");
  *h = (hook){kind, fn, ctx, NULL};
  hook **p = &m->hooks;
  while (*p) p = &(*p)->next;
  *p = h;
  return TFW_OK;
}

tfw_status tfw_module_register_forward_hook(tfw_module *m, tfw_forward_hook_fn fn, void *ctx) {
  return add_hook(m, 0, (void (*)(void))fn, ctx);
}
tfw_status tfw_module_register_forward_pre_hook(tfw_module *m, tfw_forward_pre_hook_fn fn, void *ctx) {
  return add_hook(m, 1, (void (*)(void))fn, ctx);
}
tfw_status tfw_module_register_backward_hook(tfw_module *m, tfw_backward_hook_fn fn, void *ctx) {
  return add_hook(m, 2, (void (*)(void))fn, ctx);
}
