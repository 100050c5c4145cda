/* Forward-mode (JVP) rules of the arithmetic core, and helpers for writing JVP rules. A rule
 * receives the tangents of the inputs (tin[i], NULL = zero) and returns the tangents of the
 * outputs, using registered ops. */
#include "autograd/autograd.h"

/* t broadcast to out's shape and cast to out's dtype (a view when no cast is needed). */
tfw_tensor *tfw__jvp_fit(const tfw_tensor *t, const tfw_tensor *out) {
  tfw_tensor *e = tfw_expand(t, out->ndim, out->shape);
  if (e && e->dtype != out->dtype) {
    tfw_tensor *c = tfw_to_dtype(e, out->dtype);
    tfw_release(e);
    e = c;
  }
  return e;
}

/* For ops linear in all their inputs (sum, mean, transpose, view, cat, ...): the tangent is
 * the op applied to the tangents, with zeros for inputs that have none. */
tfw_status tfw__jvp_linear(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                           tfw_tensor **tout) {
  tfw__call t = *c;
  tfw_tensor *zeros[TFW__MAX_IN] = {NULL};
  tfw_status st = TFW_OK;
  for (int i = 0; i < c->n_in; i++) {
    if (tin[i]) {
      t.in[i] = tin[i];
    } else if (tfw_dtype_is_floating(c->in[i]->dtype)) {
      zeros[i] = tfw_zeros_like(c->in[i]);
      if (!zeros[i]) {
        st = tfw_last_status();
        goto done;
      }
      t.in[i] = zeros[i];
    }
  }
  st = tfw__op_run_multi(&t, tout);
done:
  for (int i = 0; i < c->n_in; i++) tfw_release(zeros[i]);
  return st;
}

tfw_status tfw__jvp_linear_unary(const tfw__call *c, tfw_tensor *const *outputs,
                                 tfw_tensor *const *tin, tfw_tensor **tout) {
  return tfw__jvp_linear(c, outputs, tin, tout);
}

/* acc + t (either may be NULL; consumes both). */
tfw_tensor *tfw__jvp_sum2(tfw_tensor *acc, tfw_tensor *t) {
  if (!acc) return t;
  if (!t) return acc;
  tfw_tensor *s = tfw_add(acc, t);
  tfw_release(acc);
  tfw_release(t);
  return s;
}

static tfw_status finish(tfw_tensor *t, const tfw_tensor *out, tfw_tensor **tout) {
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, out);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}

tfw_status tfw__jvp_add(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *t = tfw__jvp_sum2(tin[0] ? tfw_retain(tin[0]) : NULL, tin[1] ? tfw_retain(tin[1]) : NULL);
  return finish(t, outputs[0], tout);
}

tfw_status tfw__jvp_sub(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *t = tfw__jvp_sum2(tin[0] ? tfw_retain(tin[0]) : NULL, tin[1] ? tfw_neg(tin[1]) : NULL);
  return finish(t, outputs[0], tout);
}

tfw_status tfw__jvp_mul(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  tfw_tensor *t = tfw__jvp_sum2(tin[0] ? tfw_mul(tin[0], c->in[1]) : NULL,
                                tin[1] ? tfw_mul(c->in[0], tin[1]) : NULL);
  return finish(t, outputs[0], tout);
}

tfw_status tfw__jvp_div(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  /* d(a/b) = da/b - (a/b) db/b */
  tfw_tensor *t0 = tin[0] ? tfw_div(tin[0], c->in[1]) : NULL, *t1 = NULL;
  if (tin[1]) {
    tfw_tensor *q = tfw_mul(outputs[0], tin[1]);
    tfw_tensor *r = q ? tfw_div(q, c->in[1]) : NULL;
    t1 = r ? tfw_neg(r) : NULL;
    tfw_release(q), tfw_release(r);
  }
  return finish(tfw__jvp_sum2(t0, t1), outputs[0], tout);
}

tfw_status tfw__jvp_neg(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  return finish(tfw_neg(tin[0]), outputs[0], tout);
}

tfw_status tfw__jvp_exp(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                        tfw_tensor **tout) {
  return finish(tfw_mul(tin[0], outputs[0]), outputs[0], tout);
}

tfw_status tfw__jvp_matmul(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                           tfw_tensor **tout) {
  tfw_tensor *t = tfw__jvp_sum2(tin[0] ? tfw_matmul(tin[0], c->in[1]) : NULL,
                                tin[1] ? tfw_matmul(c->in[0], tin[1]) : NULL);
  return finish(t, outputs[0], tout);
}
