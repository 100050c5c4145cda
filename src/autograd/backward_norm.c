/* Backward and forward-mode rules of the norm family: layer_norm, rms_norm, embedding,
 * dropout (group_norm and batch_norm are composites and need none).
 *
 * layer_norm / rms_norm, with xhat = (x - mean) * rstd (mean = 0 for rms_norm), gh = g * w:
 *   gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat))   (no mean(gh) term for rms_norm)
 *   gw = sum over rows of g * xhat,  gb = sum over rows of g.
 * Without create_graph the rule calls the fused layer_norm_backward / rms_norm_backward op
 * (one pass over x and g, norm.c). With create_graph (grad mode on in the rule and something
 * requiring grad) it evaluates the same formulas with registered ops, so the result is
 * recorded and double backward works; both paths are checked by the generated gradcheck and
 * gradgradcheck. JVP: t_xhat = rstd * (tc - xhat * mean(xhat * tc)), tc = tx - mean(tx)
 * (tx for rms_norm); ty = t_xhat * w + xhat * tw + tb.
 * embedding: gw = index_add(zeros [V, D], 0, flat indices, g rows), the padding row masked
 * out; linear in g, so double backward is free. dropout: the same op (same seed and counter,
 * hence the same mask) applied to g. */
#include "autograd/autograd.h"

#define NEED(i) tfw__needs_grad(node, i)
#define IN(i) tfw__node_input(node, i)

static tfw_status give(const tfw__node *node, tfw_tensor **gin, int i, tfw_tensor *t) {
  if (!t) return tfw_last_status();
  gin[i] = tfw__grad_for_input(node, i, t);
  tfw_release(t);
  return gin[i] ? TFW_OK : tfw_last_status();
}

static tfw_status finish(tfw_tensor *t, const tfw_tensor *out, tfw_tensor **tout) {
  if (!t) return tfw_last_status();
  *tout = tfw__jvp_fit(t, out);
  tfw_release(t);
  return *tout ? TFW_OK : tfw_last_status();
}

/* ---- layer_norm / rms_norm ------------------------------------------------------------------- */

typedef struct ln_parts {
  tfw_tensor *xhat, *rstd; /* x's shape; rstd with the normalised dims kept as 1 */
  int dims[TFW_MAX_DIMS], nd;
} ln_parts;

static bool is_rms(const tfw__call *c) { return c->op->id == TFW__OP_rms_norm; }

/* xhat and rstd from registered ops (recorded when grad mode is on). */
static tfw_status parts(const tfw__call *c, const tfw_tensor *x, ln_parts *P) {
  P->nd = c->a.n_ints;
  for (int k = 0; k < P->nd; k++) P->dims[k] = x->ndim - P->nd + k;
  P->xhat = P->rstd = NULL;
  tfw_tensor *mu = NULL, *xc = NULL, *sq = NULL, *var = NULL, *ve = NULL;
  if (is_rms(c)) {
    xc = tfw_retain((tfw_tensor *)x);
  } else {
    mu = tfw_mean(x, P->nd, P->dims, true);
    xc = mu ? tfw_sub(x, mu) : NULL;
  }
  sq = xc ? tfw_mul(xc, xc) : NULL;
  var = sq ? tfw_mean(sq, P->nd, P->dims, true) : NULL;
  ve = var ? tfw_add_scalar(var, c->a.f[0]) : NULL;
  P->rstd = ve ? tfw_rsqrt(ve) : NULL;
  P->xhat = P->rstd ? tfw_mul(xc, P->rstd) : NULL;
  tfw_release(mu), tfw_release(xc), tfw_release(sq), tfw_release(var), tfw_release(ve);
  if (!P->xhat) {
    tfw_release(P->rstd);
    P->rstd = NULL;
    return tfw_last_status();
  }
  return TFW_OK;
}

static void parts_free(ln_parts *P) { tfw_release(P->xhat), tfw_release(P->rstd); }

/* t - xhat * mean(xhat * t) [- mean(t)], times rstd: the linear map shared by gx and the JVP
 * (it is self-adjoint). Consumes t. */
static tfw_tensor *project(const tfw__call *c, const ln_parts *P, tfw_tensor *t) {
  if (!t) return NULL;
  tfw_tensor *u = tfw_mul(P->xhat, t);
  tfw_tensor *a = u ? tfw_mean(u, P->nd, P->dims, true) : NULL;
  tfw_tensor *xa = a ? tfw_mul(P->xhat, a) : NULL;
  tfw_tensor *r = xa ? tfw_sub(t, xa) : NULL;
  tfw_release(u), tfw_release(a), tfw_release(xa);
  if (r && !is_rms(c)) {
    tfw_tensor *m = tfw_mean(t, P->nd, P->dims, true);
    tfw_tensor *r2 = m ? tfw_sub(r, m) : NULL;
    tfw_release(m), tfw_release(r);
    r = r2;
  }
  tfw_release(t);
  tfw_tensor *out = r ? tfw_mul(r, P->rstd) : NULL;
  tfw_release(r);
  return out;
}

static int w_index(const tfw__call *c) { return c->a.b[0] ? 1 : -1; }
static int b_index(const tfw__call *c) {
  return !is_rms(c) && c->a.b[1] ? (c->a.b[0] ? 2 : 1) : -1;
}

static tfw_status ln_backward_composite(const tfw__node *node, const tfw_tensor *g,
                                        tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  int wi = w_index(c), bi = b_index(c);
  ln_parts P;
  tfw_status st = parts(c, IN(0), &P);
  if (st) return st;
  if (NEED(0)) {
    tfw_tensor *gh = wi >= 0 ? tfw_mul(g, IN(wi)) : tfw_retain((tfw_tensor *)g);
    st = give(node, gin, 0, project(c, &P, gh));
  }
  if (!st && wi >= 0 && NEED(wi)) st = give(node, gin, wi, tfw_mul(g, P.xhat));
  if (!st && bi >= 0 && NEED(bi)) st = give(node, gin, bi, tfw_retain((tfw_tensor *)g));
  parts_free(&P);
  return st;
}

static tfw_status ln_backward_fused(const tfw__node *node, const tfw_tensor *g, tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  int wi = w_index(c), bi = b_index(c);
  const tfw_tensor *in[3] = {g, IN(0), wi >= 0 ? IN(wi) : NULL};
  tfw__call bc;
  tfw__call_init(&bc, is_rms(c) ? TFW__OP_rms_norm_backward : TFW__OP_layer_norm_backward,
                 wi >= 0 ? 3 : 2, in);
  bc.a = c->a;
  bc.a.b[1] = false;
  tfw_tensor *out[2];
  tfw_status st = tfw__op_run_multi(&bc, out);
  if (st) return st;
  if (NEED(0)) st = give(node, gin, 0, tfw_retain(out[0]));
  if (!st && wi >= 0 && NEED(wi)) st = give(node, gin, wi, tfw_select(out[1], 0, 0));
  if (!st && bi >= 0 && NEED(bi)) st = give(node, gin, bi, tfw_select(out[1], 0, 1));
  tfw_release(out[0]), tfw_release(out[1]);
  return st;
}

tfw_status tfw__backward_layer_norm(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  bool graph = false;
  if (tfw_grad_enabled())
    for (int i = 0; i < node->call.n_in && !graph; i++) graph = tfw_tensor_requires_grad(IN(i));
  if (tfw_grad_enabled() && tfw_tensor_requires_grad(gout[0])) graph = true;
  return graph ? ln_backward_composite(node, gout[0], gin) : ln_backward_fused(node, gout[0], gin);
}

tfw_status tfw__jvp_layer_norm(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  int wi = w_index(c), bi = b_index(c);
  ln_parts P;
  tfw_status st = parts(c, c->in[0], &P);
  if (st) return st;
  tfw_tensor *acc = NULL;
  if (tin[0]) {
    tfw_tensor *th = project(c, &P, tfw_retain(tin[0]));
    if (th && wi >= 0) {
      tfw_tensor *t = tfw_mul(th, c->in[wi]);
      tfw_release(th);
      th = t;
    }
    if (!th) goto fail;
    acc = th;
  }
  if (wi >= 0 && tin[wi]) {
    tfw_tensor *t = tfw_mul(P.xhat, tin[wi]);
    if (!t) goto fail;
    acc = tfw__jvp_sum2(acc, t);
    if (!acc) goto fail;
  }
  if (bi >= 0 && tin[bi]) {
    acc = tfw__jvp_sum2(acc, tfw_retain(tin[bi]));
    if (!acc) goto fail;
  }
  parts_free(&P);
  if (!acc) acc = tfw_zeros_like(outputs[0]);
  return finish(acc, outputs[0], tout);
fail:
  st = tfw_last_status();
  tfw_release(acc);
  parts_free(&P);
  return st;
}

/* ---- embedding ------------------------------------------------------------------------------- */

tfw_status tfw__backward_embedding(const tfw__node *node, tfw_tensor *const *gout,
                                   tfw_tensor **gin) {
  if (!NEED(0)) return TFW_OK;
  const tfw_tensor *w = IN(0), *idx = IN(1);
  int64_t V = w->shape[0], D = w->shape[1], n = tfw__numel(idx->ndim, idx->shape);
  int64_t g2s[2] = {n, D};
  tfw_tensor *flat = tfw_reshape(idx, 1, &n);
  tfw_tensor *g2 = flat ? tfw_reshape(gout[0], 2, g2s) : NULL;
  tfw_tensor *z = g2 ? tfw_zeros(gout[0]->dtype, 2, w->shape) : NULL;
  tfw_tensor *gw = z ? tfw_index_add(z, 0, flat, g2) : NULL;
  tfw_release(flat), tfw_release(g2), tfw_release(z);
  if (gw && node->call.a.b[0]) { /* the padding row gets no gradient */
    bool prev = tfw_set_grad_enabled(false);
    int64_t ms[2] = {V, 1};
    tfw_tensor *mask = tfw_ones(gw->dtype, 2, ms);
    tfw_status st = mask ? tfw_tensor_set(mask, (int64_t[]){node->call.a.i[0], 0}, 0.0)
                         : tfw_last_status();
    tfw_set_grad_enabled(prev);
    tfw_tensor *m = st ? NULL : tfw_mul(gw, mask);
    tfw_release(mask), tfw_release(gw);
    gw = m;
  }
  return give(node, gin, 0, gw);
}

/* ---- dropout ----------------------------------------------------------------------------------- */

tfw_status tfw__backward_dropout(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  tfw__call c = node->call;
  c.in[0] = gout[0];
  return give(node, gin, 0, tfw__op_run(&c));
}
