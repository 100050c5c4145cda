/* The op table built from ops.def, and the dispatcher every op goes through. */
#include <stdio.h>

#include "autograd/autograd.h"
#include "ops/registry.h"

const tfw__op_def tfw__ops[TFW__OP_COUNT] = {
#define TFW_OP(name, n_in, n_out, flags, infer, kernel, sample, backward, jvp, doc) \
  {#name, TFW__OP_##name, n_in, n_out, flags, tfw__infer_##infer, tfw__kernel_##kernel, \
   tfw__sample_##sample, tfw__backward_##backward, tfw__jvp_##jvp, doc},
#include "ops/ops.def"
#undef TFW_OP
};

const tfw__op_def *tfw__op_find(const char *name) {
  for (int i = 0; i < TFW__OP_COUNT; i++)
    if (strcmp(tfw__ops[i].name, name) == 0) return &tfw__ops[i];
  return NULL;
}

void tfw__call_init(tfw__call *c, tfw__op_id id, int n_in, const tfw_tensor *const *in) {
  memset(c, 0, sizeof *c);
  c->op = &tfw__ops[id];
  c->a.n_ints = -1;
  c->n_in = n_in;
  for (int i = 0; i < n_in && i < TFW__MAX_IN; i++) c->in[i] = in[i];
}

static tfw_status check_call(const tfw__call *c) {
  const tfw__op_def *op = c->op;
  if (op->n_in >= 0 && c->n_in != op->n_in)
    return tfw__error(TFW_EINTERNAL, "%s: called with %d inputs, expects %d", op->name, c->n_in,
                      op->n_in);
  if (c->n_in < 0 || c->n_in > TFW__MAX_IN)
    return tfw__error(TFW_EVALUE, "%s: %d inputs given; at most %d are supported", op->name,
                      c->n_in, TFW__MAX_IN);
  for (int i = 0; i < c->n_in; i++) {
    if (!c->in[i]) return tfw__error(TFW_EVALUE, "%s: input %d is NULL", op->name, i);
    if (!tfw_dtype_is_valid(c->in[i]->dtype))
      return tfw__error(TFW_EINTERNAL, "%s: input %d has a corrupt dtype", op->name, i);
  }
  return TFW_OK;
}

static tfw_status op_run(const tfw__call *c, tfw_tensor **out) {
  const tfw__op_def *op = c->op;
  for (int k = 0; k < op->n_out; k++) out[k] = NULL;
  tfw_status st = check_call(c);
  if (st) return st;
  tfw__meta meta[TFW__MAX_OUT];
  memset(meta, 0, sizeof meta);
  st = op->infer(c, meta);
  if (st) return st;
  if (!(op->flags & TFW__OPF_VIEW) && !(op->flags & TFW__OPF_NONDET_SHAPE)) {
    for (int k = 0; k < op->n_out; k++) {
      out[k] = tfw__tensor_new(op->name, meta[k].dtype, meta[k].ndim, meta[k].shape);
      if (!out[k]) {
        st = tfw_last_status();
        goto fail;
      }
    }
  }
  st = op->kernel(c, out);
  if (st) goto fail;
  st = tfw__forward_ad_record(c, out);
  if (st) goto fail;
  st = tfw__autograd_record(c, out);
  if (st) goto fail;
  return TFW_OK;
fail:
  for (int k = 0; k < op->n_out; k++) {
    tfw_release(out[k]);
    out[k] = NULL;
  }
  return st;
}

tfw_status tfw__op_run_multi(const tfw__call *c, tfw_tensor **out) {
  tfw_tensor *casts[TFW__MAX_IN];
  tfw__call cc;
  int n_cast = tfw__autocast_prepare(c, &cc, casts); /* autocast.c; 0 when off */
  if (n_cast == 0) return op_run(c, out);
  if (n_cast < 0) {
    for (int k = 0; k < c->op->n_out; k++) out[k] = NULL;
    return tfw_last_status();
  }
  tfw_status st = op_run(&cc, out);
  for (int i = 0; i < c->n_in && i < TFW__MAX_IN; i++) tfw_release(casts[i]);
  return st;
}

tfw_tensor *tfw__op_run(const tfw__call *c) {
  tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
  if (tfw__op_run_multi(c, out)) return NULL;
  for (int k = 1; k < c->op->n_out; k++) tfw_release(out[k]);
  return out[0];
}

tfw_tensor *tfw__op1(tfw__op_id id, const tfw_tensor *a) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &a);
  return tfw__op_run(&c);
}

tfw_tensor *tfw__op2(tfw__op_id id, const tfw_tensor *a, const tfw_tensor *b) {
  const tfw_tensor *in[2] = {a, b};
  tfw__call c;
  tfw__call_init(&c, id, 2, in);
  return tfw__op_run(&c);
}

tfw_status tfw__reduce_mask(const char *op, const tfw_tensor *t, const tfw__attrs *a, bool *mask) {
  int nd = t->ndim;
  for (int d = 0; d < TFW_MAX_DIMS; d++) mask[d] = false;
  if (a->n_ints <= 0) {
    for (int d = 0; d < nd; d++) mask[d] = true;
    return TFW_OK;
  }
  if (a->n_ints > TFW_MAX_DIMS)
    return tfw__error(TFW_EVALUE, "%s: %d dims given; at most %d", op, a->n_ints, TFW_MAX_DIMS);
  for (int k = 0; k < a->n_ints; k++) {
    int64_t dim = a->ints[k];
    int n = nd > 0 ? nd : 1;
    if (dim < -n || dim >= n)
      return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d dimensions "
                        "(expected in [%d, %d])", op, (long long)dim, nd, -n, n - 1);
    int d = (int)(dim < 0 ? dim + n : dim);
    if (nd == 0) continue;
    if (mask[d]) return tfw__error(TFW_EVALUE, "%s: dimension %d appears twice in dims", op, d);
    mask[d] = true;
  }
  return TFW_OK;
}

tfw_status tfw__check_float(const char *op, const char *arg, const tfw_tensor *t) {
  if (!tfw_dtype_is_floating(t->dtype))
    return tfw__error(TFW_EDTYPE, "%s: '%s' must be a floating-point tensor, got %s", op, arg,
                      tfw_dtype_name(t->dtype));
  return TFW_OK;
}
