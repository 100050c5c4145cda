/* Forward-mode autodiff (dual numbers) and the function-transform helpers built on both
 * modes: tfw_jvp, tfw_vjp, tfw_hvp (forward-over-reverse) and tfw_jacobian.
 *
 * A tensor's tangent lives in its autograd state. When an op's input carries a tangent, the
 * dispatcher calls the op's JVP rule (written with registered ops) and attaches the result to
 * the outputs. JVP rules run with tangent propagation off (one level of forward mode), but
 * reverse-mode recording stays on, and the backward pass propagates tangents like any other
 * ops — which is what makes forward-over-reverse Hessian-vector products work. */
#include "autograd/autograd.h"

static _Thread_local int g_in_jvp; /* >0 while a JVP rule runs */

tfw_tensor *tfw__tangent(const tfw_tensor *t) {
  const tfw__ag *ag = tfw__ag_get(t);
  return ag ? ag->tangent : NULL;
}

tfw_status tfw__forward_ad_record(const tfw__call *c, tfw_tensor **out) {
  if (g_in_jvp) return TFW_OK;
  const tfw__op_def *op = c->op;
  tfw_tensor *tin[TFW__MAX_IN] = {NULL};
  bool any = false;
  for (int i = 0; i < c->n_in; i++) {
    tin[i] = tfw__tangent(c->in[i]);
    if (tin[i]) any = true;
  }
  if (!any || !(op->flags & TFW__OPF_DIFF)) return TFW_OK;
  if (op->jvp == tfw__jvp_none)
    return tfw__error(TFW_EUNSUPPORTED, "jvp: %s has no forward-mode rule yet", op->name);
  tfw_tensor *tout[TFW__MAX_OUT] = {NULL};
  /* The rule sees detached aliases of the outputs: a tangent computed from out[k] must not
   * record a graph node holding out[k], or out[k] -> tangent -> node -> out[k] would be a
   * reference cycle (found by the hvp tests: leaked tensors). Reverse-over-forward is not
   * supported, so the tangent needs no history through the primal outputs. */
  tfw_tensor *det[TFW__MAX_OUT] = {NULL};
  for (int k = 0; k < op->n_out; k++) {
    det[k] = tfw_detach(out[k]);
    if (!det[k]) {
      for (int j = 0; j < k; j++) tfw_release(det[j]);
      return tfw_last_status();
    }
  }
  g_in_jvp++;
  tfw_status st = op->jvp(c, det, tin, tout);
  g_in_jvp--;
  for (int k = 0; k < op->n_out; k++) tfw_release(det[k]);
  if (st) return st;
  for (int k = 0; k < op->n_out; k++) {
    if (!tout[k]) continue;
    if (!tfw_dtype_is_floating(out[k]->dtype)) {
      tfw_release(tout[k]);
      continue;
    }
    if (!out[k]->autograd) out[k]->autograd = tfw__calloc(1, sizeof(tfw__ag));
    tfw__ag *ag = out[k]->autograd;
    if (!ag) {
      tfw_release(tout[k]);
      return tfw__error(TFW_ENOMEM, "%s: out of memory attaching a tangent", op->name);
    }
    tfw_release(ag->tangent);
    ag->tangent = tout[k];
  }
  return TFW_OK;
}

tfw_status tfw_tensor_set_tangent(tfw_tensor *t, const tfw_tensor *tangent) {
  if (tfw__check_tensor("set_tangent", "t", t)) return TFW_EVALUE;
  if (tangent) {
    if (!tfw_dtype_is_floating(t->dtype))
      return tfw__error(TFW_EDTYPE, "set_tangent: only floating-point tensors have tangents, got %s",
                        tfw_dtype_name(t->dtype));
    if (tangent->ndim != t->ndim || memcmp(tangent->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim)) {
      char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
      return tfw__error(TFW_ESHAPE, "set_tangent: tangent of shape %s for a tensor of shape %s",
                        tfw__shape_str(b1, sizeof b1, tangent->ndim, tangent->shape),
                        tfw__shape_str(b2, sizeof b2, t->ndim, t->shape));
    }
  }
  if (!t->autograd) {
    if (!tangent) return TFW_OK;
    t->autograd = tfw__calloc(1, sizeof(tfw__ag));
    if (!t->autograd) return tfw__error(TFW_ENOMEM, "set_tangent: out of memory");
  }
  tfw__ag *ag = t->autograd;
  tfw_tensor *nt = NULL;
  if (tangent) {
    nt = tfw_to_dtype(tangent, t->dtype);
    if (!nt) return tfw_last_status();
  }
  tfw_release(ag->tangent);
  ag->tangent = nt;
  return TFW_OK;
}

tfw_tensor *tfw_tensor_tangent(const tfw_tensor *t) { return tfw_retain(tfw__tangent(t)); }

/* Fresh handles on the inputs: same data, no history, so the caller's tensors keep theirs. */
static tfw_status alias_inputs(const char *op, int n, tfw_tensor *const *in, tfw_tensor **al) {
  for (int i = 0; i < n; i++) al[i] = NULL;
  if (n < 1 || n > 64) return tfw__error(TFW_EVALUE, "%s: %d inputs (1 to 64 supported)", op, n);
  for (int i = 0; i < n; i++) {
    if (tfw__check_tensor(op, "input", in[i])) return TFW_EVALUE;
    al[i] = tfw_detach(in[i]);
    if (!al[i]) return tfw_last_status();
  }
  return TFW_OK;
}

static void release_all(int n, tfw_tensor **t) {
  for (int i = 0; i < n; i++) {
    tfw_release(t[i]);
    t[i] = NULL;
  }
}

tfw_status tfw_jvp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs,
                   tfw_tensor *const *tangents, int n_out, tfw_tensor **outputs,
                   tfw_tensor **out_tangents) {
  if (!fn || !outputs || !out_tangents || n_out < 1 || n_out > 64)
    return tfw__error(TFW_EVALUE, "jvp: fn, outputs and out_tangents are required (1 to 64 outputs)");
  tfw_tensor *al[64];
  tfw_status st = alias_inputs("jvp", n_in, inputs, al);
  for (int k = 0; k < n_out; k++) outputs[k] = out_tangents[k] = NULL;
  for (int i = 0; !st && i < n_in; i++)
    if (tangents && tangents[i]) st = tfw_tensor_set_tangent(al[i], tangents[i]);
  if (!st) st = fn(ctx, n_in, al, n_out, outputs);
  for (int k = 0; !st && k < n_out; k++) {
    if (!outputs[k]) {
      st = tfw__error(TFW_EVALUE, "jvp: fn returned no output %d", k);
      break;
    }
    tfw_tensor *t = tfw__tangent(outputs[k]);
    out_tangents[k] = t ? tfw_retain(t) : tfw_zeros_like(outputs[k]);
    if (!out_tangents[k]) st = tfw_last_status();
  }
  for (int k = 0; k < n_out; k++) /* hand back plain tensors */
    if (outputs[k] && outputs[k]->autograd) {
      tfw__ag *ag = outputs[k]->autograd;
      tfw_release(ag->tangent);
      ag->tangent = NULL;
    }
  if (st) {
    release_all(n_out, outputs);
    release_all(n_out, out_tangents);
  }
  release_all(n_in, al);
  return st;
}

tfw_status tfw_vjp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs, int n_out,
                   tfw_tensor **outputs, tfw_tensor *const *cotangents, tfw_tensor **grads) {
  if (!fn || !outputs || !grads || n_out < 1 || n_out > 64)
    return tfw__error(TFW_EVALUE, "vjp: fn, outputs and grads are required (1 to 64 outputs)");
  tfw_tensor *al[64];
  tfw_status st = alias_inputs("vjp", n_in, inputs, al);
  for (int k = 0; k < n_out; k++) outputs[k] = NULL;
  for (int i = 0; i < n_in; i++) grads[i] = NULL;
  for (int i = 0; !st && i < n_in; i++) st = tfw_tensor_set_requires_grad(al[i], true);
  bool prev = tfw_set_grad_enabled(true);
  if (!st) st = fn(ctx, n_in, al, n_out, outputs);
  tfw_set_grad_enabled(prev);
  if (!st) st = tfw_grad(n_out, outputs, n_in, al, cotangents, false, false, true, grads);
  for (int i = 0; !st && i < n_in; i++)
    if (!grads[i]) {
      grads[i] = tfw_zeros_like(al[i]);
      if (!grads[i]) st = tfw_last_status();
    }
  if (st) {
    release_all(n_out, outputs);
    release_all(n_in, grads);
  } else {
    for (int k = 0; k < n_out; k++) { /* detached results */
      tfw_tensor *d = tfw_detach(outputs[k]);
      tfw_release(outputs[k]);
      outputs[k] = d;
    }
  }
  release_all(n_in, al);
  return st;
}

tfw_status tfw_hvp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs,
                   tfw_tensor *const *v, tfw_tensor **hvp) {
  if (!fn || !v || !hvp) return tfw__error(TFW_EVALUE, "hvp: fn, v and hvp are required");
  tfw_tensor *al[64], *out = NULL, *g[64] = {NULL};
  tfw_status st = alias_inputs("hvp", n_in, inputs, al);
  for (int i = 0; i < n_in; i++) hvp[i] = NULL;
  for (int i = 0; !st && i < n_in; i++) {
    st = tfw_tensor_set_requires_grad(al[i], true);
    if (!st && v[i]) st = tfw_tensor_set_tangent(al[i], v[i]);
  }
  bool prev = tfw_set_grad_enabled(true);
  if (!st) st = fn(ctx, n_in, al, 1, &out);
  /* reverse pass under forward mode: the gradient's tangent is H v */
  if (!st) st = tfw_grad(1, &out, n_in, al, NULL, false, true, true, g);
  tfw_set_grad_enabled(prev);
  for (int i = 0; !st && i < n_in; i++) {
    tfw_tensor *t = g[i] ? tfw__tangent(g[i]) : NULL;
    hvp[i] = t ? tfw_detach(t) : tfw_zeros_like(al[i]);
    if (!hvp[i]) st = tfw_last_status();
  }
  if (st) release_all(n_in, hvp);
  tfw_release(out);
  release_all(n_in, g);
  release_all(n_in, al);
  return st;
}

tfw_status tfw_jacobian(tfw_fn fn, void *ctx, const tfw_tensor *input, tfw_tensor **jac) {
  if (!jac) return tfw__error(TFW_EVALUE, "jacobian: jac is NULL");
  *jac = NULL;
  if (tfw__check_tensor("jacobian", "input", input)) return TFW_EVALUE;
  if (!tfw_dtype_is_floating(input->dtype))
    return tfw__error(TFW_EDTYPE, "jacobian: input must be floating, got %s", tfw_dtype_name(input->dtype));
  /* one JVP per input element (forward mode: cheap when the input is small) */
  int64_t n = tfw__numel(input->ndim, input->shape);
  tfw_tensor *cols = NULL, *basis = tfw_zeros(input->dtype, 1, &n);
  tfw_tensor *x = (tfw_tensor *)input;
  tfw_status st = basis ? TFW_OK : tfw_last_status();
  tfw_tensor **parts = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof(tfw_tensor *));
  if (!parts && !st) st = tfw__error(TFW_ENOMEM, "jacobian: out of memory");
  int64_t out_ndim = -1, out_shape[TFW_MAX_DIMS];
  for (int64_t j = 0; !st && j < n; j++) {
    tfw_tensor_set(basis, &j, 1.0);
    tfw_tensor *e = tfw_reshape(basis, input->ndim, input->shape), *out = NULL, *tan = NULL;
    tfw_tensor *ec = e ? tfw_clone(e) : NULL;
    tfw_tensor_set(basis, &j, 0.0);
    if (!ec) st = tfw_last_status();
    if (!st) st = tfw_jvp(fn, ctx, 1, &x, &ec, 1, &out, &tan);
    if (!st) {
      out_ndim = out->ndim;
      memcpy(out_shape, out->shape, sizeof out_shape);
      parts[j] = tfw_unsqueeze(tan, tan->ndim); /* [out..., 1] */
      if (!parts[j]) st = tfw_last_status();
    }
    tfw_release(e), tfw_release(ec), tfw_release(out), tfw_release(tan);
  }
  if (!st && n > 0) {
    cols = tfw_cat((int)n, parts, out_ndim); /* [out..., n] */
    if (!cols) st = tfw_last_status();
  }
  if (!st && n > 0) {
    int64_t shape[TFW_MAX_DIMS * 2];
    int nd = 0;
    for (int d = 0; d < out_ndim; d++) shape[nd++] = out_shape[d];
    for (int d = 0; d < input->ndim; d++) shape[nd++] = input->shape[d];
    if (nd > TFW_MAX_DIMS) st = tfw__error(TFW_ESHAPE, "jacobian: the result would have %d dims (max %d)", nd, TFW_MAX_DIMS);
    else {
      *jac = tfw_reshape(cols, nd, shape);
      if (!*jac) st = tfw_last_status();
    }
  } else if (!st) {
    st = tfw__error(TFW_EVALUE, "jacobian: the input is empty");
  }
  for (int64_t j = 0; parts && j < n; j++) tfw_release(parts[j]);
  tfw__free(parts);
  tfw_release(cols);
  tfw_release(basis);
  return st;
}
