/* Backward and forward-mode rules of the selective scan (recurrent.def), and its public
 * wrapper tfw_selective_scan.
 *
 * First-order backward (grad mode off inside the rule, the usual case): the fused op
 * selective_scan_backward (a chunked reverse scan, src/ops/recurrent_scan.c) gives all six
 * gradients packed flat. That op has no backward of its own. When the backward is recorded
 * (create_graph: grad mode is on inside the rule) the rule is instead a composite of
 * registered ops, so it differentiates again (double backward), as sdpa's rule does.
 * Letters: b batch (Bt), d channel (Dm), n state (N), t time (L); 4-d tensors are
 * [Bt, Dm, N, L]. With a_t = exp(delta_t A) and x_t = delta_t u_t B_t:
 *   h_t = a_t h_{t-1} + x_t                       (forward linear scan, h_{-1} = 0)
 *   y_t = sum_n C_t h_t + D u_t,  state = h_{L-1}
 * backward, given gy [Bt, Dm, L] and gs [Bt, Dm, N]:
 *   g_t = a_{t+1} g_{t+1} + C_t gy_t  (+ gs at t = L-1)   (reverse linear scan)
 *   gu = delta sum_n g B + D gy,  gdelta = u sum_n g B + sum_n A (g a h_{t-1}),
 *   gA = sum_{b,t} delta (g a h_{t-1}),  gB = sum_d g delta u,  gC = sum_d gy h,  gD = sum gy u
 * forward mode, given the input tangents (missing ones are zeros):
 *   th_t = a_t th_{t-1} + a_t (tdelta A + delta tA) h_{t-1} + (tdelta u + delta tu) B + delta u tB
 *   ty = sum_n (tC h + C th) + tD u + D tu,  tstate = th_{L-1}
 * The linear scans are L steps of registered ops over [Bt, Dm, N] slices and the states
 * [Bt, Dm, N, L] are materialised: O(Bt Dm N L) memory and L small ops per scan, fine for
 * second-order work (Hessian-vector products, gradient penalties) and tests, not for the
 * training hot path, which never takes this route. All of it runs in f64 if any input is
 * f64, else in f32; gradients are cast back to each input's dtype.
 *
 * Helpers with a trailing underscore consume their tensor arguments and pass NULL through. */
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tenflower/nn_recurrent.h"

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
static tfw_tensor *sum_(tfw_tensor *a, int n, const int *dims) {
  tfw_tensor *r = a ? tfw_sum(a, n, dims, false) : NULL;
  tfw_release(a);
  return r;
}
static tfw_tensor *unsq(const tfw_tensor *a, int dim) { return a ? tfw_unsqueeze(a, dim) : NULL; }
static tfw_tensor *own(const tfw_tensor *t) { return t ? tfw_retain((tfw_tensor *)t) : NULL; }
static tfw_tensor *cast(const tfw_tensor *t, tfw_dtype dt) {
  return !t ? NULL : tfw_tensor_dtype(t) == dt ? own(t) : tfw_to_dtype(t, dt);
}
/* x[..., t-1] along the last dim, zero at t = 0 (pad one before, crop one after) */
static tfw_tensor *shift_right(const tfw_tensor *x) {
  return x ? tfw_pad(x, 1, (int64_t[]){1, -1}, TFW_PAD_CONSTANT, 0) : NULL;
}

/* h_t = a_t h_{t-1} + x_t over the last dim (h_{-1} = 0); reverse: g_t = a_{t+1} g_{t+1} + x_t
 * (g_L = 0). a, x [.., L] of one shape; L steps of registered ops. */
static tfw_tensor *linear_scan(const tfw_tensor *a, const tfw_tensor *x, bool reverse) {
  if (!a || !x) return NULL;
  int nd = tfw_tensor_ndim(x);
  int64_t L = tfw_tensor_shape(x)[nd - 1];
  if (L == 0) return tfw_zeros_like(x);
  tfw_tensor **hs = calloc((size_t)L, sizeof *hs), *prev = NULL;
  if (!hs) {
    tfw__error(TFW_ENOMEM, "selective_scan: out of memory (composite backward)");
    return NULL;
  }
  bool ok = true;
  for (int64_t i = 0; i < L && ok; i++) {
    int64_t t = reverse ? L - 1 - i : i;
    tfw_tensor *xt = tfw_select(x, nd - 1, t);
    if (i > 0 && xt) xt = add_(xt, mul_(tfw_select(a, nd - 1, reverse ? t + 1 : t), own(prev)));
    hs[t] = prev = xt;
    ok = xt != NULL;
  }
  tfw_tensor *r = ok ? tfw_stack((int)L, hs, nd - 1) : NULL;
  for (int64_t t = 0; t < L; t++) tfw_release(hs[t]);
  free(hs);
  return r;
}

/* The composite's pieces: the inputs in the compute dtype, broadcastable 4-d views, and the
 * forward states. */
typedef struct {
  tfw_tensor *in[6];            /* u, delta, A, B, C, D in the compute dtype */
  tfw_tensor *u4, *d4, *A4, *B4, *C4; /* [Bt,Dm,1,L], [Bt,Dm,1,L], [Dm,N,1], [Bt,1,N,L] x2 */
  tfw_tensor *a, *h, *hprev;    /* [Bt, Dm, N, L] */
} scan_parts;

static void parts_free(scan_parts *p) {
  for (int i = 0; i < 6; i++) tfw_release(p->in[i]);
  tfw_release(p->u4), tfw_release(p->d4), tfw_release(p->A4), tfw_release(p->B4), tfw_release(p->C4);
  tfw_release(p->a), tfw_release(p->h), tfw_release(p->hprev);
}

static tfw_dtype compute_dtype(const tfw_tensor *const *in) {
  for (int i = 0; i < 6; i++)
    if (tfw_tensor_dtype(in[i]) == TFW_DTYPE_F64) return TFW_DTYPE_F64;
  return TFW_DTYPE_F32;
}

static tfw_status scan_parts_make(const tfw_tensor *const *in, scan_parts *p) {
  memset(p, 0, sizeof *p);
  tfw_dtype ct = compute_dtype(in);
  for (int i = 0; i < 6; i++) p->in[i] = cast(in[i], ct);
  p->u4 = unsq(p->in[0], 2), p->d4 = unsq(p->in[1], 2), p->A4 = unsq(p->in[2], -1);
  p->B4 = unsq(p->in[3], 1), p->C4 = unsq(p->in[4], 1);
  p->a = p->d4 && p->A4 ? tfw_mul(p->d4, p->A4) : NULL;
  if (p->a) {
    tfw_tensor *e = tfw_exp(p->a);
    tfw_release(p->a);
    p->a = e;
  }
  tfw_tensor *x = mul_(mul_(own(p->d4), own(p->u4)), own(p->B4));
  p->h = linear_scan(p->a, x, false);
  tfw_release(x);
  p->hprev = shift_right(p->h);
  if (!p->hprev || !p->in[5] || !p->C4) {
    parts_free(p);
    return tfw_last_status();
  }
  return TFW_OK;
}

static tfw_status backward_composite(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  const tfw_tensor *in[6];
  for (int i = 0; i < 6; i++) in[i] = tfw__node_input(node, i);
  scan_parts p;
  tfw_status st = scan_parts_make(in, &p);
  if (st) return st;
  tfw_dtype ct = tfw_tensor_dtype(p.a);
  const tfw_tensor *u = p.in[0], *delta = p.in[1];
  int64_t L = tfw_tensor_shape(u)[2];
  tfw_tensor *gy = cast(gout[0], ct), *gs = cast(gout[1], ct);
  tfw_tensor *gy4 = unsq(gy, 2);
  tfw_tensor *z = gy4 ? tfw_mul(p.C4, gy4) : NULL; /* C_t gy_t, [Bt, Dm, N, L] */
  if (L > 0) { /* + gs at t = L-1 */
    tfw_tensor *gs4 = unsq(gs, -1);
    z = add_(z, gs4 ? tfw_pad(gs4, 1, (int64_t[]){L - 1, 0}, TFW_PAD_CONSTANT, 0) : NULL);
    tfw_release(gs4);
  }
  tfw_tensor *g = linear_scan(p.a, z, true);
  tfw_release(z);
  tfw_tensor *gdA = mul_(mul_(own(g), own(p.a)), own(p.hprev)); /* d/d(delta A) */
  tfw_tensor *gB_n = g ? sum_(tfw_mul(g, p.B4), 1, (int[]){2}) : NULL; /* sum_n g B, [Bt, Dm, L] */
  tfw_tensor *r[6] = {NULL};
  bool need[6];
  for (int i = 0; i < 6; i++) need[i] = tfw__needs_grad(node, i);
  if (need[0]) r[0] = add_(mul_(own(gB_n), own(delta)), mul_(unsq(p.in[5], -1), own(gy)));
  if (need[1]) r[1] = add_(mul_(own(gB_n), own(u)), sum_(mul_(own(gdA), own(p.A4)), 1, (int[]){2}));
  if (need[2]) r[2] = sum_(mul_(own(gdA), own(p.d4)), 2, (int[]){0, 3});
  if (need[3]) r[3] = sum_(mul_(own(g), mul_(own(p.d4), own(p.u4))), 1, (int[]){1});
  if (need[4]) r[4] = sum_(mul_(own(gy4), own(p.h)), 1, (int[]){1});
  if (need[5]) r[5] = sum_(mul_(own(gy), own(u)), 2, (int[]){0, 2});
  tfw_release(gy), tfw_release(gs), tfw_release(gy4), tfw_release(g), tfw_release(gdA), tfw_release(gB_n);
  parts_free(&p);
  for (int i = 0; i < 6; i++) {
    if (!need[i]) continue;
    gin[i] = r[i] ? cast(r[i], tfw_tensor_dtype(in[i])) : NULL;
    tfw_release(r[i]);
    if (!gin[i]) st = st ? st : tfw_last_status();
  }
  if (st)
    for (int i = 0; i < 6; i++) tfw_release(gin[i]), gin[i] = NULL;
  return st;
}

tfw_status tfw__backward_selective_scan(const tfw__node *node, tfw_tensor *const *gout, tfw_tensor **gin) {
  for (int i = 0; i < 6; i++) gin[i] = NULL;
  if (tfw_grad_enabled()) return backward_composite(node, gout, gin);
  tfw__call c;
  const tfw_tensor *in[8];
  for (int i = 0; i < 6; i++) in[i] = tfw__node_input(node, i);
  in[6] = gout[0], in[7] = gout[1];
  tfw__call_init(&c, TFW__OP_selective_scan_backward, 8, in);
  tfw_tensor *flat = tfw__op_run(&c);
  if (!flat) return tfw_last_status();
  int64_t off = 0;
  tfw_status st = TFW_OK;
  for (int i = 0; i < 6 && !st; i++) {
    const tfw_tensor *x = in[i];
    int64_t n = tfw_tensor_numel(x);
    if (tfw__needs_grad(node, i)) {
      tfw_tensor *piece = tfw_narrow(flat, 0, off, n);
      tfw_tensor *shaped = piece ? tfw_view(piece, tfw_tensor_ndim(x), tfw_tensor_shape(x)) : NULL;
      gin[i] = shaped ? cast(shaped, tfw_tensor_dtype(x)) : NULL;
      tfw_release(piece), tfw_release(shaped);
      if (!gin[i]) st = tfw_last_status();
    }
    off += n;
  }
  tfw_release(flat);
  if (st)
    for (int i = 0; i < 6; i++) tfw_release(gin[i]), gin[i] = NULL;
  return st;
}

tfw_status tfw__jvp_selective_scan(const tfw__call *c, tfw_tensor *const *outputs, tfw_tensor *const *tin,
                                   tfw_tensor **tout) {
  tout[0] = tout[1] = NULL;
  scan_parts p;
  tfw_status st = scan_parts_make(c->in, &p);
  if (st) return st;
  tfw_dtype ct = tfw_tensor_dtype(p.a);
  tfw_tensor *t[6]; /* tangents in the compute dtype, zeros where none */
  for (int i = 0; i < 6; i++) t[i] = tin[i] ? cast(tin[i], ct) : tfw_zeros_like(p.in[i]);
  tfw_tensor *td4 = unsq(t[1], 2);
  /* ta = a (tdelta A + delta tA);  tx = (tdelta u + delta tu) B + delta u tB */
  tfw_tensor *tdA = add_(mul_(own(td4), own(p.A4)), mul_(own(p.d4), unsq(t[2], -1)));
  tfw_tensor *ta = mul_(own(p.a), tdA);
  tfw_tensor *tdu = add_(mul_(own(td4), own(p.u4)), mul_(own(p.d4), unsq(t[0], 2)));
  tfw_tensor *tx = add_(mul_(tdu, own(p.B4)), mul_(mul_(own(p.d4), own(p.u4)), unsq(t[3], 1)));
  tfw_tensor *z = add_(mul_(ta, own(p.hprev)), tx);
  tfw_tensor *th = linear_scan(p.a, z, false);
  tfw_release(z), tfw_release(td4);
  tfw_tensor *ty = add_(sum_(mul_(own(th), own(p.C4)), 1, (int[]){2}),
                        sum_(mul_(own(p.h), unsq(t[4], 1)), 1, (int[]){2}));
  ty = add_(ty, add_(mul_(unsq(t[5], -1), own(p.in[0])), mul_(unsq(p.in[5], -1), own(t[0]))));
  int64_t L = tfw_tensor_shape(p.in[0])[2];
  tfw_tensor *ts = th && L > 0 ? tfw_select(th, 3, L - 1) : th ? tfw_zeros_like(outputs[1]) : NULL;
  tfw_release(th);
  for (int i = 0; i < 6; i++) tfw_release(t[i]);
  parts_free(&p);
  if (ty && ts) {
    tout[0] = tfw__jvp_fit(ty, outputs[0]);
    tout[1] = tfw__jvp_fit(ts, outputs[1]);
  }
  tfw_release(ty), tfw_release(ts);
  if (!tout[0] || !tout[1]) {
    st = tfw_last_status();
    tfw_release(tout[0]), tfw_release(tout[1]);
    tout[0] = tout[1] = NULL;
    return st ? st : TFW_EINTERNAL;
  }
  return TFW_OK;
}

tfw_status tfw_selective_scan(const tfw_tensor *u, const tfw_tensor *delta, const tfw_tensor *A,
                              const tfw_tensor *B, const tfw_tensor *C, const tfw_tensor *D,
                              tfw_tensor **y, tfw_tensor **last_state) {
  if (!y) return tfw__error(TFW_EVALUE, "selective_scan: y (the output pointer) is NULL");
  *y = NULL;
  if (last_state) *last_state = NULL;
  tfw_tensor *dz = NULL;
  if (!D && u && A) { /* no skip: zeros, which need no gradient */
    if (tfw__check_tensor("selective_scan", "u", u)) return TFW_EVALUE;
    if (tfw_tensor_ndim(u) != 3)
      return tfw__error(TFW_ESHAPE, "selective_scan: u must be [batch, channels, length], got %d dims",
                        tfw_tensor_ndim(u));
    dz = tfw_zeros(tfw_tensor_dtype(u), 1, (int64_t[]){tfw_tensor_shape(u)[1]});
    if (!dz) return tfw_last_status();
    D = dz;
  }
  const tfw_tensor *in[6] = {u, delta, A, B, C, D};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_selective_scan, 6, in);
  tfw_tensor *out[2];
  tfw_status st = tfw__op_run_multi(&c, out); /* records the node (registry backward and JVP) */
  tfw_release(dz);
  if (st) return st;
  *y = out[0];
  if (last_state) *last_state = out[1];
  else tfw_release(out[1]);
  return TFW_OK;
}
