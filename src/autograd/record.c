/* Autograd state of tensors, grad mode, and the recorder the op dispatcher calls. */
#include <stdlib.h>

#include "autograd/autograd.h"

static _Thread_local int g_grad_disabled; /* 0: grad mode on (the default) */
static _Atomic uint64_t g_seq;

bool tfw_set_grad_enabled(bool enabled) {
  bool prev = !g_grad_disabled;
  g_grad_disabled = !enabled;
  return prev;
}
bool tfw_grad_enabled(void) { return !g_grad_disabled; }

tfw__ag *tfw__ag_get(const tfw_tensor *t) { return t ? (tfw__ag *)t->autograd : NULL; }

static tfw__ag *ag_make(tfw_tensor *t) {
  if (!t->autograd) t->autograd = tfw__calloc(1, sizeof(tfw__ag));
  return t->autograd;
}

bool tfw__requires_grad(const tfw_tensor *t) {
  const tfw__ag *ag = tfw__ag_get(t);
  return ag && ag->requires_grad;
}

static void hooks_free(tfw__hook *h) {
  while (h) {
    tfw__hook *n = h->next;
    tfw__free(h);
    h = n;
  }
}

void tfw__node_release(tfw__node *n);

static void node_release_saved(tfw__node *n) {
  for (int i = 0; i < TFW__MAX_IN; i++) {
    tfw_release(n->saved[i]);
    n->saved[i] = NULL;
    n->call.in[i] = NULL;
  }
  n->released = true;
}

void tfw__node_release(tfw__node *n) {
  if (!n) return;
  if (atomic_fetch_sub(&n->refcount, 1) != 1) return;
  node_release_saved(n);
  for (int i = 0; i < TFW__MAX_IN; i++) {
    tfw__node_release(n->next[i].node);
    tfw_release(n->next[i].leaf);
  }
  for (int k = 0; k < TFW__MAX_OUT; k++) hooks_free(n->out_hooks[k]);
  if (n->ctx_free) n->ctx_free(n->ctx);
  tfw__free(n);
}

void tfw__node_release_saved(tfw__node *n) { node_release_saved(n); }

/* Installed into tfw_release (src/core/tensor.c) so the core needs no autograd knowledge. */
extern void (*tfw__autograd_release_hook)(tfw_tensor *t);
static void ag_release(tfw_tensor *t) {
  tfw__ag *ag = t->autograd;
  t->autograd = NULL;
  tfw_release(ag->grad);
  tfw__node_release(ag->grad_fn);
  hooks_free(ag->hooks);
  tfw_release(ag->tangent);
  tfw__free(ag);
}
extern tfw_status (*tfw__inplace_check_hook)(const char *op, const tfw_tensor *dst);
__attribute__((constructor)) static void install_hooks(void) {
  tfw__autograd_release_hook = ag_release;
  tfw__inplace_check_hook = tfw__check_inplace;
}

void tfw__bump_version(tfw_tensor *t) { atomic_fetch_add(&t->storage->version, 1); }

tfw_status tfw__check_inplace(const char *op, const tfw_tensor *dst) {
  if (tfw_grad_enabled() && tfw__requires_grad(dst))
    return tfw__error(TFW_ESTATE, "%s: in-place write into a tensor that requires grad; "
                      "disable grad mode or detach it first", op);
  return TFW_OK;
}

/* ---- public ---------------------------------------------------------------------------- */

tfw_status tfw_tensor_set_requires_grad(tfw_tensor *t, bool requires_grad) {
  if (tfw__check_tensor("set_requires_grad", "t", t)) return TFW_EVALUE;
  tfw__ag *ag = tfw__ag_get(t);
  if (ag && ag->grad_fn) {
    if (requires_grad) return TFW_OK;
    return tfw__error(TFW_ESTATE, "set_requires_grad: t is not a leaf (it was produced by %s); "
                      "use tfw_detach", ag->grad_fn->op->name);
  }
  if (requires_grad && !tfw_dtype_is_floating(t->dtype))
    return tfw__error(TFW_EDTYPE, "set_requires_grad: only floating-point tensors can require "
                      "grad, got %s", tfw_dtype_name(t->dtype));
  if (!ag && !requires_grad) return TFW_OK;
  ag = ag_make(t);
  if (!ag) return tfw__error(TFW_ENOMEM, "set_requires_grad: out of memory");
  ag->requires_grad = requires_grad;
  return TFW_OK;
}

bool tfw_tensor_requires_grad(const tfw_tensor *t) { return tfw__requires_grad(t); }

bool tfw_tensor_is_leaf(const tfw_tensor *t) {
  const tfw__ag *ag = tfw__ag_get(t);
  return !ag || !ag->grad_fn;
}

tfw_tensor *tfw_tensor_grad(const tfw_tensor *t) {
  const tfw__ag *ag = tfw__ag_get(t);
  return ag ? tfw_retain(ag->grad) : NULL;
}

void tfw_tensor_zero_grad(tfw_tensor *t) {
  tfw__ag *ag = tfw__ag_get(t);
  if (!ag) return;
  tfw_release(ag->grad);
  ag->grad = NULL;
}

const char *tfw_tensor_grad_fn_name(const tfw_tensor *t) {
  const tfw__ag *ag = tfw__ag_get(t);
  return ag && ag->grad_fn ? ag->grad_fn->op->name : NULL;
}

tfw_tensor *tfw_detach(const tfw_tensor *t) {
  if (tfw__check_tensor("detach", "t", t)) return NULL;
  return tfw__tensor_view(t, t->ndim, t->shape, t->strides, t->offset);
}

tfw_status tfw_tensor_register_hook(tfw_tensor *t, tfw_grad_hook_fn fn, void *ctx) {
  if (tfw__check_tensor("register_hook", "t", t)) return TFW_EVALUE;
  if (!fn) return tfw__error(TFW_EVALUE, "register_hook: fn is NULL");
  if (!tfw__requires_grad(t))
    return tfw__error(TFW_ESTATE, "register_hook: t does not require grad");
  tfw__hook *h = tfw__calloc(1, sizeof *h);
  if (!h) return tfw__error(TFW_ENOMEM, "register_hook: out of memory");
  h->fn = fn;
  h->ctx = ctx;
  tfw__ag *ag = tfw__ag_get(t);
  tfw__hook **list = ag->grad_fn ? &ag->grad_fn->out_hooks[ag->output_nr] : &ag->hooks;
  while (*list) list = &(*list)->next; /* hooks run in registration order */
  *list = h;
  return TFW_OK;
}

/* ---- recording ---------------------------------------------------------------------------- */

tfw_status tfw__autograd_record(const tfw__call *c, tfw_tensor **out) {
  tfw_status ast = tfw__anomaly_check_forward(c, out);
  if (ast) return ast;
  if (g_grad_disabled) return TFW_OK;
  const tfw__op_def *op = c->op;
  bool any = false;
  for (int i = 0; i < c->n_in; i++)
    if (tfw__requires_grad(c->in[i])) any = true;
  if (!any || !(op->flags & TFW__OPF_DIFF)) return TFW_OK;
  tfw__node *n = tfw__calloc(1, sizeof *n);
  if (!n) return tfw__error(TFW_ENOMEM, "%s: out of memory recording the autograd graph", op->name);
  atomic_init(&n->refcount, 1);
  n->op = op;
  n->call = *c;
  n->seq = atomic_fetch_add(&g_seq, 1);
  for (int i = 0; i < c->n_in; i++) {
    tfw_tensor *in = (tfw_tensor *)c->in[i];
    n->saved[i] = tfw_retain(in);
    n->call.in[i] = in;
    n->saved_version[i] = atomic_load(&in->storage->version);
    tfw__ag *ag = tfw__ag_get(in);
    if (!ag || !ag->requires_grad) continue;
    if (ag->grad_fn) {
      atomic_fetch_add(&ag->grad_fn->refcount, 1);
      n->next[i].node = ag->grad_fn;
      n->next[i].output_nr = ag->output_nr;
    } else {
      n->next[i].leaf = tfw_retain(in);
    }
  }
  tfw_status st = TFW_OK;
  for (int k = 0; k < op->n_out; k++) {
    tfw_tensor *o = out[k];
    n->out_meta[k].dtype = o->dtype;
    n->out_meta[k].ndim = o->ndim;
    memcpy(n->out_meta[k].shape, o->shape, sizeof(int64_t) * (size_t)o->ndim);
    if (!tfw_dtype_is_floating(o->dtype)) continue; /* indices never require grad */
    tfw__ag *ag = ag_make(o);
    if (!ag) {
      st = tfw__error(TFW_ENOMEM, "%s: out of memory recording the autograd graph", op->name);
      break;
    }
    ag->requires_grad = true;
    atomic_fetch_add(&n->refcount, 1);
    ag->grad_fn = n;
    ag->output_nr = k;
  }
  tfw__node_release(n); /* the outputs own it now */
  return st;
}
