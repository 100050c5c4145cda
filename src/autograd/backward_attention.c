/* Backward and forward-mode rules of scaled dot-product attention (attention.def).
 *
 * First-order backward (grad mode off, the usual case): the forward is recomputed under
 * no-grad (the node keeps only the inputs; out and logsumexp are needed, and recomputing
 * them costs one fused forward, O(Lq) memory) and the fused sdpa_backward op gives dq and
 * [dk | dv]. sdpa_backward itself has no backward: a fused second-order kernel is not worth
 * its code. Instead, when the backward is recorded (create_graph: grad mode is on inside the
 * rule), or when a float attn_mask needs a gradient (its gradient is the full score
 * gradient, [B.., Lq, Lk] anyway), the rule is written as a composite of registered ops:
 *   S = scale q k^T (+ mask, causal/bool positions -inf), P = softmax(S), M = dropout mask
 *   dv = (P M)^T g, dP = (g v^T) M, dS = P (dP + glse - rowsum(dP P))
 *   dq = scale dS k, dk = scale dS^T q, dmask = dS summed to the mask's shape
 * which materialises Lq x Lk but is differentiable again (double backward). The JVP rule is
 * the same kind of composite: dS = scale (tq k^T + q tk^T) + tmask, dP = P (dS - rowsum(P dS)),
 * dout = (dP M) v + (P M) tv, dlse = rowsum(P dS).
 *
 * Helpers with a trailing underscore consume their tensor arguments and pass NULL through. */
#include <math.h>

#include "autograd/autograd.h"
#include "ops/attention.h"

static tfw_tensor *mul_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_mul(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *add_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_add(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *sub_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_sub(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *mm_(tfw_tensor *a, tfw_tensor *b) {
  tfw_tensor *r = a && b ? tfw_matmul(a, b) : NULL;
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *tr(const tfw_tensor *a) { return a ? tfw_transpose(a, -2, -1) : NULL; }
static tfw_tensor *tr_(tfw_tensor *a) {
  tfw_tensor *r = tr(a);
  tfw_release(a);
  return r;
}
static tfw_tensor *own(const tfw_tensor *t) { return tfw_retain((tfw_tensor *)t); }
/* sum over the last dim, keepdim */
static tfw_tensor *rowsum_(tfw_tensor *a) {
  tfw_tensor *r = a ? tfw_sum(a, 1, (int[]){-1}, true) : NULL;
  tfw_release(a);
  return r;
}

/* The pieces of the composite: P = softmax(S) and Pd = P * M (M: dropout, NULL = none). */
typedef struct {
  tfw_tensor *P, *M, *Pd;
} probs;

static void probs_free(probs *p) { tfw_release(p->P), tfw_release(p->M), tfw_release(p->Pd); }

static tfw_status composite_probs(const tfw__call *c, probs *pr) {
  const tfw_tensor *q = c->in[0], *k = c->in[1], *mask = c->n_in == 4 ? c->in[3] : NULL;
  const tfw__attrs *a = &c->a;
  int nd = q->ndim;
  int64_t Lq = q->shape[nd - 2], Lk = k->shape[nd - 2];
  pr->P = pr->M = pr->Pd = NULL;
  tfw_tensor *S = tfw__muls_consume(mm_(own(q), tr(k)), a->f[1]);
  tfw_tensor *ninf = tfw_scalar(q->dtype, -INFINITY);
  if (S && mask) {
    if (mask->dtype == TFW_DTYPE_BOOL) {
      tfw_tensor *t = tfw_where(mask, S, ninf);
      tfw_release(S);
      S = t;
    } else {
      tfw_tensor *mc = tfw_to_dtype(mask, q->dtype);
      S = add_(S, mc);
    }
  }
  if (S && a->b[0]) {
    tfw_tensor *ones = tfw_ones(TFW_DTYPE_BOOL, 2, (int64_t[]){Lq, Lk});
    tfw_tensor *tri = ones ? tfw_tril(ones, 0) : NULL;
    tfw_tensor *t = tri ? tfw_where(tri, S, ninf) : NULL;
    tfw_release(ones), tfw_release(tri), tfw_release(S);
    S = t;
  }
  tfw_release(ninf);
  pr->P = S ? tfw_softmax(S, -1) : NULL;
  tfw_release(S);
  if (!pr->P) return tfw_last_status();
  if (a->f[0] > 0) {
    tfw__call mc;
    tfw__call_init(&mc, TFW__OP_sdpa_dropout_mask, 0, NULL);
    mc.a.n_ints = nd;
    memcpy(mc.a.ints, tfw_tensor_shape(pr->P), sizeof(int64_t) * (size_t)nd);
    mc.a.dtype = pr->P->dtype, mc.a.f[0] = a->f[0], mc.a.i[0] = a->i[0], mc.a.i[1] = a->i[1];
    pr->M = tfw__op_run(&mc);
    pr->Pd = pr->M ? tfw_mul(pr->P, pr->M) : NULL;
  } else {
    pr->Pd = own(pr->P);
  }
  return pr->Pd ? TFW_OK : tfw_last_status();
}

static tfw_status backward_composite(const tfw__node *node, tfw_tensor *const *gout,
                                     tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  const tfw_tensor *q = c->in[0], *k = c->in[1], *v = c->in[2];
  double scale = c->a.f[1];
  probs pr;
  tfw_status st = composite_probs(c, &pr);
  if (st) return st;
  tfw_tensor *g = tfw_to_dtype(gout[0], q->dtype), *gl = tfw_to_dtype(gout[1], q->dtype);
  if (tfw__needs_grad(node, 2)) gin[2] = mm_(tr(pr.Pd), own(g));
  tfw_tensor *dP = mm_(own(g), tr(v));
  if (pr.M) dP = mul_(dP, own(pr.M));
  /* dS = P (dP + glse[..., None] - rowsum(dP P)) */
  tfw_tensor *glu = gl ? tfw_unsqueeze(gl, -1) : NULL;
  tfw_tensor *dS = mul_(own(pr.P), sub_(add_(own(dP), glu), rowsum_(mul_(own(dP), own(pr.P)))));
  tfw_release(dP), tfw_release(g), tfw_release(gl);
  if (tfw__needs_grad(node, 0)) gin[0] = tfw__muls_consume(mm_(own(dS), own(k)), scale);
  if (tfw__needs_grad(node, 1)) gin[1] = tfw__muls_consume(mm_(tr(dS), own(q)), scale);
  if (c->n_in == 4 && tfw__needs_grad(node, 3)) gin[3] = dS ? tfw__grad_for_input(node, 3, dS) : NULL;
  bool bad = !dS;
  tfw_release(dS);
  probs_free(&pr);
  for (int i = 0; i < c->n_in; i++)
    if (tfw__needs_grad(node, i) && !gin[i]) bad = true;
  if (bad) {
    st = tfw_last_status();
    for (int i = 0; i < c->n_in; i++) tfw_release(gin[i]), gin[i] = NULL;
    return st ? st : TFW_EINTERNAL;
  }
  return TFW_OK;
}

tfw_status tfw__backward_sdpa(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw__call *c = &node->call;
  for (int i = 0; i < c->n_in; i++) gin[i] = NULL;
  bool mask_grad = c->n_in == 4 && tfw__needs_grad(node, 3);
  if (tfw_grad_enabled() || mask_grad) return backward_composite(node, gout, gin);
  const tfw_tensor *q = c->in[0], *v = c->in[2];
  tfw_tensor *o[2];
  tfw_status st = tfw__op_run_multi(c, o); /* recompute out and logsumexp */
  if (st) return st;
  const tfw_tensor *in[8] = {c->in[0], c->in[1], c->in[2], o[0], o[1], gout[0], gout[1],
                             c->n_in == 4 ? c->in[3] : NULL};
  tfw__call bc;
  tfw__call_init(&bc, TFW__OP_sdpa_backward, c->n_in == 4 ? 8 : 7, in);
  bc.a = c->a;
  tfw_tensor *r[2];
  st = tfw__op_run_multi(&bc, r);
  tfw_release(o[0]), tfw_release(o[1]);
  if (st) return st;
  int nd = q->ndim;
  int64_t E = q->shape[nd - 1], Ev = v->shape[nd - 1];
  gin[0] = r[0];
  if (tfw__needs_grad(node, 1)) gin[1] = tfw_narrow(r[1], nd - 1, 0, E);
  if (tfw__needs_grad(node, 2)) gin[2] = tfw_narrow(r[1], nd - 1, E, Ev);
  tfw_release(r[1]);
  if ((tfw__needs_grad(node, 1) && !gin[1]) || (tfw__needs_grad(node, 2) && !gin[2])) {
    st = tfw_last_status();
    for (int i = 0; i < 3; i++) tfw_release(gin[i]), gin[i] = NULL;
    return st;
  }
  return TFW_OK;
}

tfw_status tfw__jvp_sdpa(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                         tfw_tensor **tout) {
  tout[0] = tout[1] = NULL;
  const tfw_tensor *q = c->in[0], *k = c->in[1];
  probs pr;
  tfw_status st = composite_probs(c, &pr);
  if (st) return st;
  tfw_tensor *dS = NULL;
  if (tin[0]) dS = mm_(tfw_to_dtype(tin[0], q->dtype), tr(k));
  if (tin[1]) {
    tfw_tensor *t = mm_(own(q), tr_(tfw_to_dtype(tin[1], q->dtype)));
    dS = dS ? add_(dS, t) : t;
  }
  if (dS) dS = tfw__muls_consume(dS, c->a.f[1]);
  if (c->n_in == 4 && tin[3] && tfw_dtype_is_floating(c->in[3]->dtype)) {
    tfw_tensor *t = tfw_to_dtype(tin[3], q->dtype);
    dS = dS ? add_(dS, t) : t;
  }
  tfw_tensor *dout = NULL, *dlse = NULL;
  if (dS) {
    tfw_tensor *PdS = mul_(own(pr.P), dS);                   /* P dS */
    tfw_tensor *r = PdS ? tfw_sum(PdS, 1, (int[]){-1}, true) : NULL; /* rowsum(P dS) */
    tfw_tensor *dP = sub_(own(PdS), mul_(own(pr.P), own(r))); /* P (dS - rowsum) */
    if (pr.M) dP = mul_(dP, own(pr.M));
    dout = mm_(dP, own(c->in[2]));
    dlse = r ? tfw_squeeze(r, -1) : NULL;
    tfw_release(PdS), tfw_release(r);
    if (!dout || !dlse) goto fail;
  }
  if (tin[2]) {
    tfw_tensor *t = mm_(own(pr.Pd), tfw_to_dtype(tin[2], q->dtype));
    if (!t) goto fail;
    dout = dout ? add_(dout, t) : t;
  }
  probs_free(&pr);
  tout[0] = dout ? tfw__jvp_fit(dout, outputs[0]) : NULL;
  tout[1] = dlse ? tfw__jvp_fit(dlse, outputs[1]) : NULL;
  tfw_release(dout), tfw_release(dlse);
  return TFW_OK;
fail:
  probs_free(&pr);
  tfw_release(dout), tfw_release(dlse);
  return tfw_last_status();
}
