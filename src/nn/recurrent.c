/* LSTM and GRU modules (torch.nn.LSTM / torch.nn.GRU), multi-layer, optionally
 * bidirectional, with dropout between layers.
 *
 * Letters: T time, N batch, I input size, H hidden size, G gates (4 for LSTM: i, f, g, o;
 * 3 for GRU: r, z, n). Parameters per layer l and direction (suffix "_reverse" for the
 * backward direction), as PyTorch: weight_ih_l{l} [G*H, I_l], weight_hh_l{l} [G*H, H],
 * bias_ih_l{l}, bias_hh_l{l} [G*H].
 *
 * Work is time-major [T, N, *] (batch_first inputs are transposed views). For each layer and
 * direction the input projections of all T steps are one GEMM, [T*N, I] x [I, G*H], with
 * the biases added once (for the LSTM both biases; the GRU keeps b_hh inside the recurrence
 * because n = tanh(W_in x + b_in + r * (W_hn h + b_hn)) multiplies it by r). The recurrence
 * is then a loop over T of one [N, H] x [H, G*H] matmul and a few elementwise ops, all
 * registered ops, so autograd (and double backward) comes from their rules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "tenflower/nn_recurrent.h"
#include "tenflower/nn_functional_norm.h"

typedef struct rnn_impl {
  bool lstm;
  int64_t I, H;
  int layers, dirs;
  bool bias, batch_first;
  double dropout;
} rnn_impl;

static const char *rnn_name(const rnn_impl *r) { return r->lstm ? "LSTM" : "GRU"; }

static tfw_tensor *param(tfw_module *m, const char *kind, int layer, int dir) {
  char name[48];
  snprintf(name, sizeof name, "%s_l%d%s", kind, layer, dir ? "_reverse" : "");
  return tfw_module_get_parameter(m, name);
}

/* Drops the reference in *t and stores v (which may be NULL). */
static void put(tfw_tensor **t, tfw_tensor *v) {
  tfw_release(*t);
  *t = v;
}

/* One LSTM step: gates [N, 4H] = gx_t + h W_hh^T; returns status, updates *h and *c. */
static tfw_status lstm_step(const tfw_tensor *gx, const tfw_tensor *whh_t, int64_t H, tfw_tensor **h,
                            tfw_tensor **c) {
  tfw_tensor *gh = tfw_matmul(*h, whh_t), *g = gh ? tfw_add(gx, gh) : NULL;
  tfw_tensor *sg = g ? tfw_sigmoid(g) : NULL;
  tfw_tensor *gi = sg ? tfw_narrow(sg, 1, 0, H) : NULL, *gf = sg ? tfw_narrow(sg, 1, H, H) : NULL;
  tfw_tensor *go = sg ? tfw_narrow(sg, 1, 3 * H, H) : NULL, *gg0 = g ? tfw_narrow(g, 1, 2 * H, H) : NULL;
  tfw_tensor *gg = gg0 ? tfw_tanh(gg0) : NULL;
  tfw_tensor *fc = gf ? tfw_mul(gf, *c) : NULL, *ig = gi && gg ? tfw_mul(gi, gg) : NULL;
  tfw_tensor *c2 = fc && ig ? tfw_add(fc, ig) : NULL, *tc = c2 ? tfw_tanh(c2) : NULL;
  tfw_tensor *h2 = tc && go ? tfw_mul(go, tc) : NULL;
  tfw_status st = h2 ? TFW_OK : tfw_last_status();
  tfw_release(gh), tfw_release(g), tfw_release(sg), tfw_release(gi), tfw_release(gf);
  tfw_release(go), tfw_release(gg0), tfw_release(gg), tfw_release(fc), tfw_release(ig);
  tfw_release(tc);
  if (st) {
    tfw_release(c2);
    return st;
  }
  put(h, h2);
  put(c, c2);
  return TFW_OK;
}

/* One GRU step: gh = h W_hh^T (+ b_hh); r, z = sigmoid(gx + gh) on the first 2H columns,
 * n = tanh(gx_n + r * gh_n), h' = n + z * (h - n). */
static tfw_status gru_step(const tfw_tensor *gx, const tfw_tensor *whh_t, const tfw_tensor *bhh,
                           int64_t H, tfw_tensor **h) {
  tfw_tensor *gh0 = tfw_matmul(*h, whh_t);
  tfw_tensor *gh = gh0 && bhh ? tfw_add(gh0, bhh) : tfw_retain(gh0);
  tfw_tensor *gx_rz = gh ? tfw_narrow(gx, 1, 0, 2 * H) : NULL, *gh_rz = gh ? tfw_narrow(gh, 1, 0, 2 * H) : NULL;
  tfw_tensor *srz = gx_rz && gh_rz ? tfw_add(gx_rz, gh_rz) : NULL, *rz = srz ? tfw_sigmoid(srz) : NULL;
  tfw_tensor *r = rz ? tfw_narrow(rz, 1, 0, H) : NULL, *z = rz ? tfw_narrow(rz, 1, H, H) : NULL;
  tfw_tensor *gx_n = r ? tfw_narrow(gx, 1, 2 * H, H) : NULL, *gh_n = r ? tfw_narrow(gh, 1, 2 * H, H) : NULL;
  tfw_tensor *rgh = gh_n ? tfw_mul(r, gh_n) : NULL, *pre = rgh ? tfw_add(gx_n, rgh) : NULL;
  tfw_tensor *n = pre ? tfw_tanh(pre) : NULL, *hmn = n ? tfw_sub(*h, n) : NULL;
  tfw_tensor *zd = hmn ? tfw_mul(z, hmn) : NULL, *h2 = zd ? tfw_add(n, zd) : NULL;
  tfw_status st = h2 ? TFW_OK : tfw_last_status();
  tfw_release(gh0), tfw_release(gh), tfw_release(gx_rz), tfw_release(gh_rz), tfw_release(srz);
  tfw_release(rz), tfw_release(r), tfw_release(z), tfw_release(gx_n), tfw_release(gh_n);
  tfw_release(rgh), tfw_release(pre), tfw_release(n), tfw_release(hmn), tfw_release(zd);
  if (st) return st;
  put(h, h2);
  return TFW_OK;
}

/* Runs one layer in one direction over x [T, N, I_l]: writes *y [T, N, H] and updates *h
 * (and *c for the LSTM) to the final state. */
static tfw_status run_direction(tfw_module *m, const rnn_impl *r, int layer, int dir,
                                const tfw_tensor *x, tfw_tensor **h, tfw_tensor **c, tfw_tensor **y) {
  *y = NULL;
  const int64_t T = tfw_tensor_shape(x)[0], H = r->H;
  tfw_tensor *wih = param(m, "weight_ih", layer, dir), *whh = param(m, "weight_hh", layer, dir);
  tfw_tensor *bih = param(m, "bias_ih", layer, dir), *bhh = param(m, "bias_hh", layer, dir);
  /* all time steps' input projections at once: [T, N, I] x [I, G*H] */
  tfw_tensor *wih_t = tfw_transpose(wih, 0, 1), *whh_t = tfw_transpose(whh, 0, 1);
  tfw_tensor *gx = wih_t ? tfw_matmul(x, wih_t) : NULL;
  if (gx && bih) put(&gx, tfw_add(gx, bih));
  if (gx && bhh && r->lstm) put(&gx, tfw_add(gx, bhh));
  tfw_tensor **outs = gx && whh_t ? tfw__calloc((size_t)(T ? T : 1), sizeof *outs) : NULL;
  tfw_status st = outs ? TFW_OK : gx && whh_t ? tfw__error(TFW_ENOMEM, "%s: out of memory", rnn_name(r))
                                              : tfw_last_status();
  for (int64_t s = 0; !st && s < T; s++) {
    int64_t t = dir ? T - 1 - s : s;
    tfw_tensor *gx_t = tfw_select(gx, 0, t);
    if (!gx_t) st = tfw_last_status();
    else st = r->lstm ? lstm_step(gx_t, whh_t, H, h, c) : gru_step(gx_t, whh_t, bhh, H, h);
    tfw_release(gx_t);
    if (!st) outs[t] = tfw_retain(*h);
  }
  if (!st && T > 0) {
    *y = tfw_stack((int)T, outs, 0);
    if (!*y) st = tfw_last_status();
  } else if (!st) { /* T == 0: an empty [0, N, H] */
    const int64_t *hs = tfw_tensor_shape(*h);
    *y = tfw_empty(tfw_tensor_dtype(*h), 3, (int64_t[]){0, hs[0], H});
    if (!*y) st = tfw_last_status();
  }
  if (outs)
    for (int64_t t = 0; t < T; t++) tfw_release(outs[t]);
  tfw__free(outs);
  tfw_release(wih_t), tfw_release(whh_t), tfw_release(gx);
  return st;
}

/* The initial state for (layer, dir): a [N, H] slice of s0, or zeros. */
static tfw_tensor *initial_state(const tfw_tensor *s0, int k, tfw_dtype dt, int64_t N, int64_t H) {
  return s0 ? tfw_select(s0, 0, k) : tfw_zeros(dt, 2, (int64_t[]){N, H});
}

static tfw_status check_state(const rnn_impl *r, const char *arg, const tfw_tensor *s, bool batched,
                              int64_t N) {
  int64_t want[3] = {(int64_t)r->layers * r->dirs, N, r->H};
  if (!batched) want[1] = r->H;
  int nd = batched ? 3 : 2;
  bool ok = tfw_tensor_ndim(s) == nd;
  for (int i = 0; ok && i < nd; i++) ok = tfw_tensor_shape(s)[i] == want[i];
  if (ok) return TFW_OK;
  char got[TFW__SHAPE_BUF], exp_[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: %s has shape %s, expected %s", rnn_name(r), arg,
                    tfw__shape_str(got, sizeof got, tfw_tensor_ndim(s), tfw_tensor_shape(s)),
                    tfw__shape_str(exp_, sizeof exp_, nd, want));
}

static tfw_status rnn_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  const rnn_impl *r = tfw_module_impl(m);
  const char *name = rnn_name(r);
  int max_io = r->lstm ? 3 : 2;
  if (n_in < 1 || n_in > max_io || n_out < 1 || n_out > max_io)
    return tfw__error(TFW_EVALUE, "%s: takes 1 to %d inputs (x, h0%s) and gives 1 to %d outputs, got %d and %d",
                      name, max_io, r->lstm ? ", c0" : "", max_io, n_in, n_out);
  for (int k = 0; k < n_out; k++) out[k] = NULL;
  const tfw_tensor *x = in[0], *h0 = n_in > 1 ? in[1] : NULL, *c0 = n_in > 2 ? in[2] : NULL;
  if (!x) return tfw__error(TFW_EVALUE, "%s: input is NULL", name);
  int nd = tfw_tensor_ndim(x);
  if ((nd != 2 && nd != 3) || tfw_tensor_shape(x)[nd - 1] != r->I) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: input of shape %s, expected [T, N, %lld]%s or unbatched [T, %lld]",
                      name, tfw__shape_str(buf, sizeof buf, nd, tfw_tensor_shape(x)), (long long)r->I,
                      r->batch_first ? " (batch_first: [N, T, I])" : "", (long long)r->I);
  }
  if (!tfw_dtype_is_floating(tfw_tensor_dtype(x)))
    return tfw__error(TFW_EDTYPE, "%s: input must be floating, got %s", name,
                      tfw_dtype_name(tfw_tensor_dtype(x)));
  bool batched = nd == 3;
  /* time-major view [T, N, I] */
  tfw_tensor *xt = !batched ? tfw_unsqueeze(x, 1) : r->batch_first ? tfw_transpose(x, 0, 1)
                                                                    : tfw_retain((tfw_tensor *)x);
  if (!xt) return tfw_last_status();
  const int64_t N = tfw_tensor_shape(xt)[1], H = r->H;
  tfw_status st = TFW_OK;
  if (h0) st = check_state(r, "h0", h0, batched, N);
  if (!st && c0) st = check_state(r, "c0", c0, batched, N);
  tfw_tensor *h0b = NULL, *c0b = NULL;
  if (!st && h0) h0b = batched ? tfw_retain((tfw_tensor *)h0) : tfw_unsqueeze(h0, 1);
  if (!st && c0) c0b = batched ? tfw_retain((tfw_tensor *)c0) : tfw_unsqueeze(c0, 1);
  if (!st && ((h0 && !h0b) || (c0 && !c0b))) st = tfw_last_status();
  const int nk = r->layers * r->dirs;
  tfw_tensor *hn[2 * 64] = {NULL}, *cn[2 * 64] = {NULL}; /* layers <= 64 (checked at creation) */
  tfw_tensor *layer_in = tfw_retain(xt);
  tfw_dtype dt = tfw_tensor_dtype(x);
  for (int l = 0; !st && l < r->layers; l++) {
    tfw_tensor *ys[2] = {NULL, NULL};
    for (int dir = 0; !st && dir < r->dirs; dir++) {
      int k = l * r->dirs + dir;
      hn[k] = initial_state(h0b, k, dt, N, H);
      if (r->lstm) cn[k] = initial_state(c0b, k, dt, N, H);
      if (!hn[k] || (r->lstm && !cn[k])) st = tfw_last_status();
      else st = run_direction(m, r, l, dir, layer_in, &hn[k], r->lstm ? &cn[k] : NULL, &ys[dir]);
    }
    tfw_tensor *y = NULL;
    if (!st) y = r->dirs == 2 ? tfw_cat(2, ys, 2) : tfw_retain(ys[0]);
    tfw_release(ys[0]), tfw_release(ys[1]);
    if (!st && !y) st = tfw_last_status();
    if (!st && l + 1 < r->layers && r->dropout > 0 && tfw_module_is_training(m)) {
      put(&y, tfw_dropout(y, r->dropout, true));
      if (!y) st = tfw_last_status();
    }
    put(&layer_in, y);
  }
  if (!st) { /* output [T, N, dirs*H] back to the caller's layout */
    out[0] = !batched ? tfw_squeeze(layer_in, 1) : r->batch_first ? tfw_transpose(layer_in, 0, 1)
                                                                   : tfw_retain(layer_in);
    if (!out[0]) st = tfw_last_status();
  }
  for (int k = 1; !st && k < n_out; k++) {
    tfw_tensor *s = tfw_stack(nk, k == 1 ? hn : cn, 0);
    out[k] = s && !batched ? tfw_squeeze(s, 1) : tfw_retain(s);
    tfw_release(s);
    if (!out[k]) st = tfw_last_status();
  }
  for (int k = 0; k < nk; k++) tfw_release(hn[k]), tfw_release(cn[k]);
  tfw_release(layer_in), tfw_release(xt), tfw_release(h0b), tfw_release(c0b);
  if (st)
    for (int k = 0; k < n_out; k++) tfw_release(out[k]), out[k] = NULL;
  return st;
}

static void rnn_destroy(void *impl) { free(impl); }
static const tfw_module_vtable LSTM_VT = {"LSTM", rnn_forward, rnn_destroy};
static const tfw_module_vtable GRU_VT = {"GRU", rnn_forward, rnn_destroy};

static tfw_module *rnn_new(bool lstm, int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                           bool batch_first, double dropout, bool bidirectional) {
  const char *name = lstm ? "LSTM" : "GRU";
  if (input_size < 0 || hidden_size < 1 || num_layers < 1 || num_layers > 64) {
    tfw__error(TFW_EVALUE, "%s: input_size must be >= 0, hidden_size >= 1 and num_layers in [1, 64], "
               "got %lld, %lld and %d", name, (long long)input_size, (long long)hidden_size, num_layers);
    return NULL;
  }
  if (!(dropout >= 0 && dropout <= 1)) {
    tfw__error(TFW_EVALUE, "%s: dropout must be in [0, 1], got %g", name, dropout);
    return NULL;
  }
  rnn_impl *r = malloc(sizeof *r);
  if (!r) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", name);
    return NULL;
  }
  *r = (rnn_impl){lstm, input_size, hidden_size, num_layers, bidirectional ? 2 : 1, bias, batch_first, dropout};
  tfw_module *m = tfw_module_new(lstm ? &LSTM_VT : &GRU_VT, r);
  if (!m) {
    free(r);
    return NULL;
  }
  const int64_t G = lstm ? 4 : 3, H = hidden_size;
  const double bound = 1.0 / sqrt((double)H);
  tfw_status st = TFW_OK;
  for (int l = 0; !st && l < num_layers; l++)
    for (int dir = 0; !st && dir < r->dirs; dir++) {
      int64_t in_l = l == 0 ? input_size : H * r->dirs;
      const char *kinds[4] = {"weight_ih", "weight_hh", "bias_ih", "bias_hh"};
      for (int k = 0; !st && k < (bias ? 4 : 2); k++) {
        tfw_tensor *p = k == 0   ? tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){G * H, in_l})
                        : k == 1 ? tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){G * H, H})
                                 : tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){G * H});
        st = p ? tfw_init_uniform_(p, -bound, bound) : tfw_last_status();
        char pname[48];
        snprintf(pname, sizeof pname, "%s_l%d%s", kinds[k], l, dir ? "_reverse" : "");
        if (!st) st = tfw_module_register_parameter(m, pname, p);
        tfw_release(p);
      }
    }
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_module *tfw_lstm_new(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                         bool batch_first, double dropout, bool bidirectional) {
  return rnn_new(true, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional);
}

tfw_module *tfw_gru_new(int64_t input_size, int64_t hidden_size, int num_layers, bool bias,
                        bool batch_first, double dropout, bool bidirectional) {
  return rnn_new(false, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional);
}
