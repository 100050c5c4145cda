/* The Mamba block (Gu & Dao 2023, mamba_simple.py) and the selective scan's one-step form.
 *
 * Letters: Bt batch, L time, M d_model, E d_inner = expand * M, N d_state, R dt_rank,
 * K d_conv. Forward, x [Bt, L, M]:
 *   xz = x W_in^T [Bt, L, 2E] -> xs, z;  xc = causal depthwise conv of xs over L (+ bias),
 *   silu;  [dt_r | B | C] = xc W_x^T;  delta = softplus(dt_r W_dt^T + b_dt);  A = -exp(A_log);
 *   y = selective_scan(xc, delta, A, B, C, D) * silu(z);  out = y W_out^T.
 * The causal conv is written with registered ops: pad K-1 zeros on the left of time, then
 * K shifted slices each times its tap (a [E, 1] column), summed; for the usual K = 4 that is
 * four fused-size elementwise passes, cheaper than an im2col and fully differentiable. The
 * channel-major [Bt, E, L] tensors the scan reads are transposed views, never copies: the
 * scan kernel takes any strides. Everything except the scan is registered ops, so autograd
 * covers the block through their rules and the scan's custom node (backward_recurrent.c).
 *
 * Generation (tfw_mamba_step) keeps a [Bt, E, K] window of conv inputs and the [Bt, E, N]
 * SSM state: O(1) work per token, the same arithmetic as the scan's recurrence. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tenflower/nn_functional_activation.h"
#include "tenflower/nn_recurrent.h"

typedef struct mamba_impl {
  int64_t M, E, N, K, R;
} mamba_impl;

static void put(tfw_tensor **t, tfw_tensor *v) {
  tfw_release(*t);
  *t = v;
}

/* ---- selective state update (one step) ---------------------------------------------------- */

tfw_status tfw_selective_state_update(const tfw_tensor *state, const tfw_tensor *x, const tfw_tensor *dt,
                                      const tfw_tensor *A, const tfw_tensor *B, const tfw_tensor *C,
                                      const tfw_tensor *D, tfw_tensor **y, tfw_tensor **new_state) {
  if (!y || !new_state) return tfw__error(TFW_EVALUE, "selective_state_update: output pointers are NULL");
  *y = *new_state = NULL;
  if (!state || !x || !dt || !A || !B || !C)
    return tfw__error(TFW_EVALUE, "selective_state_update: state, x, dt, A, B and C must be given");
  if (tfw_tensor_ndim(state) != 3 || tfw_tensor_ndim(x) != 2 || tfw_tensor_ndim(B) != 2 ||
      tfw_tensor_ndim(C) != 2) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "selective_state_update: state must be [B, D, N] (got %s), x and dt [B, D], "
                      "B and C [B, N]", tfw__shape_str(buf, sizeof buf, tfw_tensor_ndim(state), tfw_tensor_shape(state)));
  }
  /* dA = exp(dt[:, :, None] * A), dBx = (dt x)[:, :, None] * B[:, None, :] */
  tfw_tensor *dt3 = tfw_unsqueeze(dt, 2), *la = dt3 ? tfw_mul(dt3, A) : NULL, *dA = la ? tfw_exp(la) : NULL;
  tfw_tensor *dx = dA ? tfw_mul(dt, x) : NULL, *dx3 = dx ? tfw_unsqueeze(dx, 2) : NULL;
  tfw_tensor *B3 = dx3 ? tfw_unsqueeze(B, 1) : NULL, *dBx = B3 ? tfw_mul(dx3, B3) : NULL;
  tfw_tensor *decayed = dBx ? tfw_mul(state, dA) : NULL, *s2 = decayed ? tfw_add(decayed, dBx) : NULL;
  tfw_tensor *C3 = s2 ? tfw_unsqueeze(C, 1) : NULL, *sc = C3 ? tfw_mul(s2, C3) : NULL;
  tfw_tensor *yv = sc ? tfw_sum(sc, 1, (int[]){2}, false) : NULL;
  if (yv && D) {
    tfw_tensor *Dx = tfw_mul(D, x);
    put(&yv, Dx ? tfw_add(yv, Dx) : NULL);
    tfw_release(Dx);
  }
  tfw_status st = yv ? TFW_OK : tfw_last_status();
  tfw_release(dt3), tfw_release(la), tfw_release(dA), tfw_release(dx), tfw_release(dx3);
  tfw_release(B3), tfw_release(dBx), tfw_release(decayed), tfw_release(C3), tfw_release(sc);
  if (st) {
    tfw_release(s2);
    return st;
  }
  *y = yv;
  *new_state = s2;
  return TFW_OK;
}

/* ---- the causal depthwise conv ("conv1d" child: weight [E, 1, K], bias [E]) ----------------- */

/* x [Bt, E, L] -> [Bt, E, L]: out[t] = b + sum_k w[k] x[t - (K-1) + k] (zeros before t = 0), the
 * first L outputs of nn.Conv1d(E, E, K, groups=E, padding=K-1) as mamba uses it. */
static tfw_tensor *causal_conv(const tfw_tensor *x, const tfw_tensor *w, const tfw_tensor *b) {
  const int64_t E = tfw_tensor_shape(w)[0], K = tfw_tensor_shape(w)[2], L = tfw_tensor_shape(x)[2];
  tfw_tensor *xp = tfw_pad(x, 1, (int64_t[]){K - 1, 0}, TFW_PAD_CONSTANT, 0.0);
  tfw_tensor *acc = xp && b ? tfw_view(b, 2, (int64_t[]){E, 1}) : NULL;
  if (xp && !b) acc = tfw_zeros(tfw_tensor_dtype(x), 2, (int64_t[]){E, 1});
  for (int64_t k = 0; acc && k < K; k++) {
    tfw_tensor *wk = tfw_narrow(w, 2, k, 1), *wk2 = wk ? tfw_view(wk, 2, (int64_t[]){E, 1}) : NULL;
    tfw_tensor *xs = wk2 ? tfw_narrow(xp, 2, k, L) : NULL, *term = xs ? tfw_mul(xs, wk2) : NULL;
    put(&acc, term ? tfw_add(acc, term) : NULL);
    tfw_release(wk), tfw_release(wk2), tfw_release(xs), tfw_release(term);
  }
  tfw_release(xp);
  return acc;
}

static tfw_status conv_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Conv1d: takes 1 input and gives 1 output");
  tfw_tensor *w = tfw_module_get_parameter(m, "weight");
  if (!in[0] || tfw_tensor_ndim(in[0]) != 3 || tfw_tensor_shape(in[0])[1] != tfw_tensor_shape(w)[0])
    return tfw__error(TFW_ESHAPE, "Conv1d (causal, depthwise): input must be [batch, %lld, length]",
                      (long long)tfw_tensor_shape(w)[0]);
  out[0] = causal_conv(in[0], w, tfw_module_get_parameter(m, "bias"));
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable CONV_VT = {"Conv1d", conv_forward, NULL};

/* ---- the block ------------------------------------------------------------------------------ */

static tfw_tensor *linear(const tfw_tensor *x, tfw_module *m, const char *child) {
  return tfw_module_call(tfw_module_get_child(m, child), x);
}

static tfw_status mamba_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Mamba: takes 1 input and gives 1 output");
  const mamba_impl *p = tfw_module_impl(m);
  const tfw_tensor *x = in[0];
  if (!x) return tfw__error(TFW_EVALUE, "Mamba: input is NULL");
  if (tfw_tensor_ndim(x) != 3 || tfw_tensor_shape(x)[2] != p->M) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "Mamba: input of shape %s, expected [batch, length, %lld]",
                      tfw__shape_str(buf, sizeof buf, tfw_tensor_ndim(x), tfw_tensor_shape(x)), (long long)p->M);
  }
  const int64_t E = p->E, N = p->N, R = p->R;
  tfw_tensor *xz = linear(x, m, "in_proj");                               /* [Bt, L, 2E] */
  tfw_tensor *xs = xz ? tfw_narrow(xz, 2, 0, E) : NULL, *z = xz ? tfw_narrow(xz, 2, E, E) : NULL;
  tfw_tensor *xc = xs ? tfw_transpose(xs, 1, 2) : NULL;                   /* [Bt, E, L] */
  tfw_tensor *cv = xc ? tfw_module_call(tfw_module_get_child(m, "conv1d"), xc) : NULL;
  tfw_tensor *xa = cv ? tfw_silu(cv) : NULL;                              /* [Bt, E, L] */
  tfw_tensor *xa_t = xa ? tfw_transpose(xa, 1, 2) : NULL;                 /* [Bt, L, E] */
  tfw_tensor *xdbl = xa_t ? linear(xa_t, m, "x_proj") : NULL;             /* [Bt, L, R + 2N] */
  tfw_tensor *dtr = xdbl ? tfw_narrow(xdbl, 2, 0, R) : NULL;
  tfw_tensor *Bl = xdbl ? tfw_narrow(xdbl, 2, R, N) : NULL, *Cl = xdbl ? tfw_narrow(xdbl, 2, R + N, N) : NULL;
  tfw_tensor *dtl = dtr ? linear(dtr, m, "dt_proj") : NULL;               /* W_dt dt + b_dt, [Bt, L, E] */
  tfw_tensor *delta = dtl ? tfw_softplus(dtl, 1.0, 20.0) : NULL;
  tfw_tensor *delta_t = delta ? tfw_transpose(delta, 1, 2) : NULL;        /* [Bt, E, L] */
  tfw_tensor *Bs = Bl ? tfw_transpose(Bl, 1, 2) : NULL, *Cs = Cl ? tfw_transpose(Cl, 1, 2) : NULL;
  tfw_tensor *ea = delta_t ? tfw_exp(tfw_module_get_parameter(m, "A_log")) : NULL;
  tfw_tensor *A = ea ? tfw_neg(ea) : NULL;                                /* [E, N] */
  tfw_tensor *ys = NULL;
  tfw_status st = A && Bs && Cs ? tfw_selective_scan(xa, delta_t, A, Bs, Cs, tfw_module_get_parameter(m, "D"),
                                                     &ys, NULL)
                                : tfw_last_status();
  tfw_tensor *yt = ys ? tfw_transpose(ys, 1, 2) : NULL, *sz = yt ? tfw_silu(z) : NULL;
  tfw_tensor *g = sz ? tfw_mul(yt, sz) : NULL;                            /* [Bt, L, E] */
  out[0] = g ? linear(g, m, "out_proj") : NULL;
  if (!st && !out[0]) st = tfw_last_status();
  tfw_release(xz), tfw_release(xs), tfw_release(z), tfw_release(xc), tfw_release(cv);
  tfw_release(xa), tfw_release(xa_t), tfw_release(xdbl), tfw_release(dtr), tfw_release(Bl);
  tfw_release(Cl), tfw_release(dtl), tfw_release(delta), tfw_release(delta_t), tfw_release(Bs);
  tfw_release(Cs), tfw_release(ea), tfw_release(A), tfw_release(ys), tfw_release(yt);
  tfw_release(sz), tfw_release(g);
  return st;
}

tfw_status tfw_mamba_step(tfw_module *m, const tfw_tensor *x, const tfw_tensor *conv_state,
                          const tfw_tensor *ssm_state, tfw_tensor **y, tfw_tensor **new_conv_state,
                          tfw_tensor **new_ssm_state) {
  if (!y || !new_conv_state || !new_ssm_state)
    return tfw__error(TFW_EVALUE, "mamba_step: output pointers are NULL");
  *y = *new_conv_state = *new_ssm_state = NULL;
  if (!m || strcmp(tfw_module_type(m), "Mamba") || !x || !conv_state || !ssm_state)
    return tfw__error(TFW_EVALUE, "mamba_step: needs a Mamba module, x, conv_state and ssm_state");
  const mamba_impl *p = tfw_module_impl(m);
  const int64_t E = p->E, N = p->N, R = p->R, K = p->K;
  if (tfw_tensor_ndim(x) != 2 || tfw_tensor_shape(x)[1] != p->M || tfw_tensor_ndim(conv_state) != 3 ||
      tfw_tensor_shape(conv_state)[1] != E || tfw_tensor_shape(conv_state)[2] != K ||
      tfw_tensor_ndim(ssm_state) != 3 || tfw_tensor_shape(ssm_state)[1] != E ||
      tfw_tensor_shape(ssm_state)[2] != N)
    return tfw__error(TFW_ESHAPE, "mamba_step: expected x [B, %lld], conv_state [B, %lld, %lld], "
                      "ssm_state [B, %lld, %lld]", (long long)p->M, (long long)E, (long long)K,
                      (long long)E, (long long)N);
  tfw_tensor *w = tfw_module_get_parameter(m, "conv1d.weight"), *b = tfw_module_get_parameter(m, "conv1d.bias");
  tfw_tensor *xz = linear(x, m, "in_proj");                                  /* [Bt, 2E] */
  tfw_tensor *xs = xz ? tfw_narrow(xz, 1, 0, E) : NULL, *z = xz ? tfw_narrow(xz, 1, E, E) : NULL;
  /* window: drop the oldest input, append xs */
  tfw_tensor *old = xs ? tfw_narrow(conv_state, 2, 1, K - 1) : NULL, *xs3 = old ? tfw_unsqueeze(xs, 2) : NULL;
  tfw_tensor *win = xs3 ? tfw_cat(2, (tfw_tensor *[]){old, xs3}, 2) : NULL;   /* [Bt, E, K] */
  tfw_tensor *w2 = win ? tfw_view(w, 2, (int64_t[]){E, K}) : NULL, *ww = w2 ? tfw_mul(win, w2) : NULL;
  tfw_tensor *cv = ww ? tfw_sum(ww, 1, (int[]){2}, false) : NULL;
  if (cv && b) put(&cv, tfw_add(cv, b));
  tfw_tensor *xa = cv ? tfw_silu(cv) : NULL;                                  /* [Bt, E] */
  tfw_tensor *xdbl = xa ? linear(xa, m, "x_proj") : NULL;
  tfw_tensor *dtr = xdbl ? tfw_narrow(xdbl, 1, 0, R) : NULL;
  tfw_tensor *Bv = xdbl ? tfw_narrow(xdbl, 1, R, N) : NULL, *Cv = xdbl ? tfw_narrow(xdbl, 1, R + N, N) : NULL;
  tfw_tensor *dtl = dtr ? linear(dtr, m, "dt_proj") : NULL, *dt = dtl ? tfw_softplus(dtl, 1.0, 20.0) : NULL;
  tfw_tensor *ea = dt ? tfw_exp(tfw_module_get_parameter(m, "A_log")) : NULL, *A = ea ? tfw_neg(ea) : NULL;
  tfw_tensor *ys = NULL, *s2 = NULL;
  tfw_status st = A ? tfw_selective_state_update(ssm_state, xa, dt, A, Bv, Cv, tfw_module_get_parameter(m, "D"),
                                                 &ys, &s2)
                    : tfw_last_status();
  tfw_tensor *sz = ys ? tfw_silu(z) : NULL, *g = sz ? tfw_mul(ys, sz) : NULL;
  tfw_tensor *o = g ? linear(g, m, "out_proj") : NULL;
  if (!st && !o) st = tfw_last_status();
  if (!st) {
    *y = o, *new_conv_state = win, *new_ssm_state = s2;
    o = win = s2 = NULL;
  }
  tfw_release(o), tfw_release(win), tfw_release(s2);
  tfw_release(xz), tfw_release(xs), tfw_release(z), tfw_release(old), tfw_release(xs3), tfw_release(w2);
  tfw_release(ww), tfw_release(cv), tfw_release(xa), tfw_release(xdbl), tfw_release(dtr), tfw_release(Bv);
  tfw_release(Cv), tfw_release(dtl), tfw_release(dt), tfw_release(ea), tfw_release(A), tfw_release(ys);
  tfw_release(sz), tfw_release(g);
  return st;
}

static void mamba_destroy(void *impl) { free(impl); }
static const tfw_module_vtable MAMBA_VT = {"Mamba", mamba_forward, mamba_destroy};

/* Registers a fresh f32 parameter of the given shape with values fill(i) (n elements). */
static tfw_status add_param(tfw_module *m, const char *name, int ndim, const int64_t *shape, const float *v) {
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F32, ndim, shape, v);
  tfw_status st = t ? tfw_module_register_parameter(m, name, t) : tfw_last_status();
  tfw_release(t);
  return st;
}

static tfw_status add_child(tfw_module *m, const char *name, tfw_module *c) {
  tfw_status st = c ? tfw_module_register_module(m, name, c) : tfw_last_status();
  tfw_module_release(c);
  return st;
}

tfw_module *tfw_mamba_new(int64_t d_model, int64_t d_state, int64_t d_conv, int64_t expand, int64_t dt_rank) {
  if (d_model < 1 || d_state < 1 || d_state > 256 || d_conv < 1 || expand < 1) {
    tfw__error(TFW_EVALUE, "Mamba: d_model, d_conv, expand must be >= 1 and d_state in [1, 256], got "
               "%lld, %lld, %lld and %lld", (long long)d_model, (long long)d_conv, (long long)expand,
               (long long)d_state);
    return NULL;
  }
  mamba_impl *p = malloc(sizeof *p);
  if (!p) {
    tfw__error(TFW_ENOMEM, "Mamba: out of memory");
    return NULL;
  }
  const int64_t M = d_model, E = expand * d_model, N = d_state, K = d_conv;
  const int64_t R = dt_rank > 0 ? dt_rank : (d_model + 15) / 16;
  *p = (mamba_impl){M, E, N, K, R};
  tfw_module *m = tfw_module_new(&MAMBA_VT, p);
  if (!m) {
    free(p);
    return NULL;
  }
  tfw_status st = add_child(m, "in_proj", tfw_linear_new(M, 2 * E, false));
  /* conv1d: nn.Conv1d's default init, U(-1/sqrt(fan_in), ..) with fan_in = K (depthwise) */
  tfw_module *conv = st ? NULL : tfw_module_new(&CONV_VT, NULL);
  tfw_tensor *cw = conv ? tfw_empty(TFW_DTYPE_F32, 3, (int64_t[]){E, 1, K}) : NULL;
  tfw_tensor *cb = cw ? tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){E}) : NULL;
  if (!st) st = cb ? tfw_init_uniform_(cw, -1 / sqrt((double)K), 1 / sqrt((double)K)) : tfw_last_status();
  if (!st) st = tfw_init_uniform_(cb, -1 / sqrt((double)K), 1 / sqrt((double)K));
  if (!st) st = tfw_module_register_parameter(conv, "weight", cw);
  if (!st) st = tfw_module_register_parameter(conv, "bias", cb);
  tfw_release(cw), tfw_release(cb);
  if (!st) st = add_child(m, "conv1d", tfw_module_retain(conv));
  tfw_module_release(conv);
  if (!st) st = add_child(m, "x_proj", tfw_linear_new(E, R + 2 * N, false));
  tfw_module *dtp = st ? NULL : tfw_linear_new(R, E, true);
  if (!st && !dtp) st = tfw_last_status();
  /* dt_proj: weight U(-R^-0.5, R^-0.5); bias = softplus^-1(dt), dt log-uniform in
   * [dt_min, dt_max] = [1e-3, 1e-1], floored at 1e-4 */
  if (!st) st = tfw_init_uniform_(tfw_module_get_parameter(dtp, "weight"), -1 / sqrt((double)R), 1 / sqrt((double)R));
  float *v = st ? NULL : malloc(sizeof(float) * (size_t)(E * N > E ? E * N : E));
  if (!st && !v) st = tfw__error(TFW_ENOMEM, "Mamba: out of memory");
  if (!st) {
    tfw_tensor *r = tfw_rand(TFW_DTYPE_F64, 1, (int64_t[]){E});
    const double *rv = r ? tfw_tensor_data(r) : NULL;
    for (int64_t e = 0; rv && e < E; e++) {
      double dt = exp(rv[e] * (log(0.1) - log(0.001)) + log(0.001));
      dt = dt < 1e-4 ? 1e-4 : dt;
      v[e] = (float)(dt + log(-expm1(-dt)));
    }
    tfw_tensor *bias = rv ? tfw_from_data(TFW_DTYPE_F32, 1, (int64_t[]){E}, v) : NULL;
    bool prev = tfw_set_grad_enabled(false);
    st = bias ? tfw_copy_(tfw_module_get_parameter(dtp, "bias"), bias) : tfw_last_status();
    tfw_set_grad_enabled(prev);
    tfw_release(r), tfw_release(bias);
  }
  if (!st) st = add_child(m, "dt_proj", tfw_module_retain(dtp));
  tfw_module_release(dtp);
  if (!st) { /* A_log[e, n] = log(n + 1) */
    for (int64_t e = 0; e < E; e++)
      for (int64_t n = 0; n < N; n++) v[e * N + n] = (float)log((double)(n + 1));
    st = add_param(m, "A_log", 2, (int64_t[]){E, N}, v);
  }
  if (!st) {
    for (int64_t e = 0; e < E; e++) v[e] = 1.0f;
    st = add_param(m, "D", 1, (int64_t[]){E}, v);
  }
  free(v);
  if (!st) st = add_child(m, "out_proj", tfw_linear_new(E, M, false));
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}
