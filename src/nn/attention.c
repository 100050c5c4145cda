/* Attention modules and positional encodings: MultiheadAttention (PyTorch's parameter names
 * and mask conventions), learned / sinusoidal positional encodings, rotary embeddings (the
 * functional tfw_apply_rotary and a module). Everything is a composite of registered ops, so
 * gradients (and double backward) come from the ops' rules; the need_weights = false path of
 * MultiheadAttention runs the fused attention kernel (tfw_scaled_dot_product_attention).
 *
 * MultiheadAttention masks: PyTorch's bool masks mean "true = not allowed" while sdpa's mean
 * "true = keep", so bool masks are negated; when both masks are bool they are combined with
 * logical_or before the negation, when either is float the bools become -inf/0 and the two
 * are added (PyTorch's merge_masks). Letters: N batch, L queries, S keys, E embed_dim,
 * H heads, hd = E / H. */
#include <math.h>
#include <stdlib.h>

#include "nn/nn_internal.h"
#include "tenflower/nn_attention.h"
#include "tenflower/nn_functional_attention.h"
#include "tenflower/nn_functional_norm.h"

/* consume-and-pass-NULL helpers */
static tfw_tensor *c1(tfw_tensor *r, tfw_tensor *a) {
  tfw_release(a);
  return r;
}
static tfw_tensor *c2(tfw_tensor *r, tfw_tensor *a, tfw_tensor *b) {
  tfw_release(a), tfw_release(b);
  return r;
}
static tfw_tensor *MM_(tfw_tensor *a, tfw_tensor *b) { return c2(a && b ? tfw_matmul(a, b) : NULL, a, b); }
static tfw_tensor *ADD_(tfw_tensor *a, tfw_tensor *b) { return c2(a && b ? tfw_add(a, b) : NULL, a, b); }
static tfw_tensor *MUL_(tfw_tensor *a, tfw_tensor *b) { return c2(a && b ? tfw_mul(a, b) : NULL, a, b); }
static tfw_tensor *TR_(tfw_tensor *a, int d0, int d1) { return c1(a ? tfw_transpose(a, d0, d1) : NULL, a); }
static tfw_tensor *reshape_(tfw_tensor *a, int nd, const int64_t *shape) {
  return c1(a ? tfw_reshape(a, nd, shape) : NULL, a);
}
#define RESHAPE_(a, nd, ...) reshape_(a, nd, (int64_t[]){__VA_ARGS__})

/* ---- MultiheadAttention ------------------------------------------------------------------- */

typedef struct {
  int64_t E, H;
  double dropout;
  bool batch_first;
  double rope_base; /* > 0: RoPE on the per-head queries and keys (tfw_multihead_attention_set_rotary) */
} mha_impl;

static const tfw_module_vtable MHA;

/* x @ w[r0:r0+E]^T + b[r0:r0+E] for the in-projection (b may be NULL) */
static tfw_tensor *in_proj(const tfw_tensor *x, const tfw_tensor *w, const tfw_tensor *b, int64_t r0,
                           int64_t E) {
  tfw_tensor *ws = tfw_narrow(w, 0, r0, E);
  tfw_tensor *y = MM_(tfw_retain((tfw_tensor *)x), TR_(ws, 0, 1));
  if (y && b) y = ADD_(y, tfw_narrow(b, 0, r0, E));
  return y;
}

/* [N, L, E] -> [N, H, L, hd] */
static tfw_tensor *split_heads_(tfw_tensor *x, int64_t H) {
  if (!x) return NULL;
  const int64_t *s = tfw_tensor_shape(x);
  int64_t N = s[0], L = s[1], hd = s[2] / H;
  return TR_(RESHAPE_(x, 4, N, L, H, hd), 1, 2);
}

/* a mask as float (bools: true -> -inf) in dtype dt */
static tfw_tensor *as_additive(const tfw_tensor *m, tfw_dtype dt) {
  if (tfw_tensor_dtype(m) != TFW_DTYPE_BOOL) return tfw_to_dtype(m, dt);
  tfw_tensor *z = tfw_zeros(dt, 0, NULL);
  tfw_tensor *r = z ? tfw_masked_fill(z, m, -INFINITY) : NULL;
  tfw_release(z);
  return r;
}

/* The sdpa mask ([N or 1, H or 1, L, S], bool true = keep, or float) from PyTorch's masks. */
tfw_status tfw__mha_merge_masks(const char *op, const tfw_tensor *kpm, const tfw_tensor *am,
                              int64_t N, int64_t H, int64_t L, int64_t S, tfw_dtype dt,
                              tfw_tensor **out) {
  *out = NULL;
  char b[TFW__SHAPE_BUF];
  tfw_tensor *k4 = NULL, *a4 = NULL;
  if (kpm) {
    if (tfw_tensor_numel(kpm) != N * S || tfw_tensor_shape(kpm)[tfw_tensor_ndim(kpm) - 1] != S)
      return tfw__error(TFW_ESHAPE, "%s: key_padding_mask of shape %s, expected [%lld, %lld]", op,
                        tfw__shape_str(b, sizeof b, tfw_tensor_ndim(kpm), tfw_tensor_shape(kpm)),
                        (long long)N, (long long)S);
    k4 = tfw_reshape(kpm, 4, (int64_t[]){N, 1, 1, S});
  }
  if (am) {
    int nd = tfw_tensor_ndim(am);
    const int64_t *s = tfw_tensor_shape(am);
    if (nd == 2 && s[0] == L && s[1] == S) a4 = tfw_retain((tfw_tensor *)am);
    else if (nd == 3 && s[0] == N * H && s[1] == L && s[2] == S)
      a4 = tfw_reshape(am, 4, (int64_t[]){N, H, L, S});
    else {
      tfw_release(k4);
      return tfw__error(TFW_ESHAPE, "%s: attn_mask of shape %s, expected [%lld, %lld] or [%lld, %lld, %lld]",
                        op, tfw__shape_str(b, sizeof b, nd, s), (long long)L, (long long)S,
                        (long long)(N * H), (long long)L, (long long)S);
    }
  }
  for (int i = 0; i < 2; i++) {
    const tfw_tensor *m = i ? am : kpm;
    if (m && tfw_tensor_dtype(m) != TFW_DTYPE_BOOL && !tfw_dtype_is_floating(tfw_tensor_dtype(m))) {
      tfw_release(k4), tfw_release(a4);
      return tfw__error(TFW_EDTYPE, "%s: %s must be bool or floating-point, got %s", op,
                        i ? "attn_mask" : "key_padding_mask", tfw_dtype_name(tfw_tensor_dtype(m)));
    }
  }
  if (!k4 && !a4) return TFW_OK;
  tfw_tensor *r;
  bool all_bool = (!k4 || tfw_tensor_dtype(k4) == TFW_DTYPE_BOOL) &&
                  (!a4 || tfw_tensor_dtype(a4) == TFW_DTYPE_BOOL);
  if (all_bool) {
    tfw_tensor *dis = k4 && a4 ? tfw_logical_or(k4, a4) : tfw_retain(k4 ? k4 : a4);
    r = dis ? tfw_logical_not(dis) : NULL;
    tfw_release(dis);
  } else {
    tfw_tensor *fk = k4 ? as_additive(k4, dt) : NULL, *fa = a4 ? as_additive(a4, dt) : NULL;
    r = fk && fa ? tfw_add(fk, fa) : tfw_retain(fk ? fk : fa);
    tfw_release(fk), tfw_release(fa);
  }
  tfw_release(k4), tfw_release(a4);
  *out = r;
  return r ? TFW_OK : tfw_last_status();
}

bool tfw__mha_info_get(const tfw_module *m, tfw__mha_info *info) {
  if (!m || tfw_module_type(m) != MHA.type_name) return false;
  const mha_impl *p = tfw_module_impl(m);
  *info = (tfw__mha_info){p->E, p->H, p->batch_first, p->rope_base};
  return true;
}

tfw_tensor *tfw__mha_heads(const tfw_module *m, const tfw_tensor *x, int which) {
  const mha_impl *p = tfw_module_impl(m);
  int nd = tfw_tensor_ndim(x);
  tfw_tensor *xn = nd == 2 ? tfw_unsqueeze(x, 0) /* to [N, L, E] */
                           : p->batch_first ? tfw_retain((tfw_tensor *)x) : tfw_transpose(x, 0, 1);
  tfw_tensor *h = xn ? split_heads_(in_proj(xn, tfw_module_get_parameter(m, "in_proj_weight"),
                                            tfw_module_get_parameter(m, "in_proj_bias"),
                                            which * p->E, p->E), p->H)
                     : NULL;
  tfw_release(xn);
  return h;
}

tfw_tensor *tfw__mha_output(tfw_module *m, tfw_tensor *o, int nd) {
  if (!o) return NULL;
  const mha_impl *p = tfw_module_impl(m);
  const int64_t *s = tfw_tensor_shape(o);
  int64_t N = s[0], L = s[2];
  /* [N, H, L, hd] -> [N, L, E] -> out_proj -> the caller's layout */
  o = RESHAPE_(TR_(o, 1, 2), 3, N, L, p->E);
  o = c1(o ? tfw_module_call(tfw_module_get_child(m, "out_proj"), o) : NULL, o);
  if (o && nd == 2) o = c1(tfw_squeeze(o, 0), o);
  else if (o && !p->batch_first) o = TR_(o, 0, 1);
  return o;
}

tfw_status tfw__mha_rope_(tfw_tensor **h, int64_t pos0, double base) {
  int64_t L = tfw_tensor_shape(*h)[tfw_tensor_ndim(*h) - 2];
  tfw_tensor *pos = tfw_arange((double)pos0, (double)(pos0 + L), 1, TFW_DTYPE_I64), *r = NULL;
  tfw_status st = pos ? tfw_apply_rotary(*h, NULL, pos, base, &r, NULL) : tfw_last_status();
  tfw_release(pos);
  if (st) return st;
  tfw_release(*h);
  *h = r;
  return TFW_OK;
}

tfw_status tfw_multihead_attention_forward(tfw_module *m, const tfw_tensor *query,
                                           const tfw_tensor *key, const tfw_tensor *value,
                                           const tfw_tensor *key_padding_mask, bool need_weights,
                                           const tfw_tensor *attn_mask, bool average_attn_weights,
                                           bool is_causal, tfw_tensor **out, tfw_tensor **weights) {
  const char *op = "MultiheadAttention";
  if (out) *out = NULL;
  if (weights) *weights = NULL;
  if (!m || tfw_module_type(m) != MHA.type_name || !out)
    return tfw__error(TFW_EVALUE, "%s: not a MultiheadAttention module, or out is NULL", op);
  if (need_weights && !weights) return tfw__error(TFW_EVALUE, "%s: need_weights without weights", op);
  if (tfw__check_tensor(op, "query", query) || tfw__check_tensor(op, "key", key) ||
      tfw__check_tensor(op, "value", value))
    return tfw_last_status();
  const mha_impl *p = tfw_module_impl(m);
  const int64_t E = p->E, H = p->H;
  int nd = tfw_tensor_ndim(query);
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF], b3[TFW__SHAPE_BUF];
  bool ok = (nd == 2 || nd == 3) && tfw_tensor_ndim(key) == nd && tfw_tensor_ndim(value) == nd &&
            tfw_tensor_shape(query)[nd - 1] == E && tfw_tensor_shape(key)[nd - 1] == E &&
            tfw_tensor_shape(value)[nd - 1] == E;
  int ld = nd == 3 && !p->batch_first ? 0 : nd - 2; /* the sequence dim */
  if (ok) ok = tfw_tensor_shape(key)[ld] == tfw_tensor_shape(value)[ld] &&
               (nd == 2 || tfw_tensor_shape(key)[1 - ld] == tfw_tensor_shape(query)[1 - ld]);
  if (!ok)
    return tfw__error(TFW_ESHAPE, "%s: expected query, key, value of %s [.., %lld] with matching "
                      "batch and key/value lengths, got %s, %s, %s", op,
                      p->batch_first ? "[N, L, E]" : "[L, N, E]", (long long)E,
                      tfw__shape_str(b1, sizeof b1, nd, tfw_tensor_shape(query)),
                      tfw__shape_str(b2, sizeof b2, tfw_tensor_ndim(key), tfw_tensor_shape(key)),
                      tfw__shape_str(b3, sizeof b3, tfw_tensor_ndim(value), tfw_tensor_shape(value)));
  /* [N, L, E] sizes, then the per-head projections [N, H, L or S, hd] */
  int64_t N = nd == 2 ? 1 : tfw_tensor_shape(query)[p->batch_first ? 0 : 1];
  int64_t L = tfw_tensor_shape(query)[ld], S = tfw_tensor_shape(key)[ld];
  tfw_tensor *h[3];
  const tfw_tensor *src[3] = {query, key, value};
  for (int i = 0; i < 3; i++) h[i] = tfw__mha_heads(m, src[i], i);
  tfw_tensor *mask = NULL;
  tfw_status st = h[0] && h[1] && h[2] ? TFW_OK : tfw_last_status();
  for (int i = 0; i < 2 && !st && p->rope_base > 0; i++) /* queries at 0 .. L-1, keys at 0 .. S-1 */
    st = tfw__mha_rope_(&h[i], 0, p->rope_base);
  const tfw_tensor *kpm = key_padding_mask;
  tfw_tensor *kpm2 = NULL;
  if (!st && kpm && nd == 2) kpm = kpm2 = tfw_unsqueeze(kpm, 0);
  if (!st) st = tfw__mha_merge_masks(op, kpm, attn_mask, N, H, L, S, tfw_tensor_dtype(h[0]), &mask);
  tfw_release(kpm2);
  double drop = tfw_module_is_training(m) ? p->dropout : 0;
  tfw_tensor *o = NULL, *attw = NULL;
  if (!st && !need_weights) {
    o = tfw_scaled_dot_product_attention(h[0], h[1], h[2], mask, drop, is_causal, 0);
  } else if (!st) {
    /* explicit path: the weights are an output */
    tfw_tensor *s = tfw_mul_scalar(h[0], 1.0 / sqrt((double)(E / H)));
    s = MM_(s, tfw_transpose(h[1], -2, -1));
    if (s && mask) {
      tfw_tensor *fm = as_additive(mask, tfw_tensor_dtype(s));
      if (tfw_tensor_dtype(mask) == TFW_DTYPE_BOOL) { /* mask is "keep": flip for additive */
        tfw_release(fm);
        tfw_tensor *nm = tfw_logical_not(mask);
        fm = nm ? as_additive(nm, tfw_tensor_dtype(s)) : NULL;
        tfw_release(nm);
      }
      s = ADD_(s, fm);
    }
    if (s && is_causal) {
      tfw_tensor *ones = tfw_ones(TFW_DTYPE_BOOL, 2, (int64_t[]){L, S});
      tfw_tensor *up = ones ? tfw_triu(ones, 1) : NULL;
      tfw_tensor *t = up ? tfw_masked_fill(s, up, -INFINITY) : NULL;
      tfw_release(ones), tfw_release(up), tfw_release(s);
      s = t;
    }
    tfw_tensor *pw = c1(s ? tfw_softmax(s, -1) : NULL, s);
    if (pw && drop > 0) pw = c1(tfw_dropout(pw, drop, true), pw);
    o = pw ? tfw_matmul(pw, h[2]) : NULL;
    if (pw && average_attn_weights) attw = c1(tfw_mean(pw, 1, (int[]){1}, false), pw);
    else attw = pw;
    if (attw && nd == 2) attw = c1(tfw_squeeze(attw, 0), attw);
  }
  for (int i = 0; i < 3; i++) tfw_release(h[i]);
  tfw_release(mask);
  if (!st && (!o || (need_weights && !attw))) st = tfw_last_status();
  if (st) {
    tfw_release(o), tfw_release(attw);
    return st;
  }
  o = tfw__mha_output(m, o, nd);
  if (!o) {
    tfw_release(attw);
    return tfw_last_status();
  }
  *out = o;
  if (weights) *weights = attw;
  return TFW_OK;
}

static tfw_status mha_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                              tfw_tensor **out) {
  if ((n_in != 1 && n_in != 3) || (n_out != 1 && n_out != 2))
    return tfw__error(TFW_EVALUE, "MultiheadAttention: takes 1 input (self-attention) or 3 "
                      "(query, key, value) and gives 1 or 2 outputs (output, weights); got %d, %d",
                      n_in, n_out);
  const tfw_tensor *q = in[0], *k = n_in == 3 ? in[1] : in[0], *v = n_in == 3 ? in[2] : in[0];
  return tfw_multihead_attention_forward(m, q, k, v, NULL, n_out == 2, NULL, true, false, &out[0],
                                         n_out == 2 ? &out[1] : NULL);
}

static void free_impl(void *impl) { free(impl); }
static const tfw_module_vtable MHA = {"MultiheadAttention", mha_forward, free_impl};

tfw_module *tfw_multihead_attention_new(int64_t embed_dim, int64_t num_heads, double dropout,
                                        bool bias, bool batch_first) {
  if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads || !(dropout >= 0 && dropout <= 1)) {
    tfw__error(TFW_EVALUE, "MultiheadAttention: embed_dim (%lld) must be a positive multiple of "
               "num_heads (%lld), dropout (%g) in [0, 1]", (long long)embed_dim,
               (long long)num_heads, dropout);
    return NULL;
  }
  mha_impl *p = malloc(sizeof *p);
  tfw_module *m = p ? tfw_module_new(&MHA, p) : NULL;
  if (!m) {
    free(p);
    tfw__error(TFW_ENOMEM, "MultiheadAttention: out of memory");
    return NULL;
  }
  *p = (mha_impl){embed_dim, num_heads, dropout, batch_first, 0};
  const int64_t E = embed_dim;
  tfw_tensor *w = tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){3 * E, E});
  tfw_tensor *b = bias ? tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){3 * E}) : NULL;
  tfw_module *op = tfw_linear_new(E, E, bias);
  tfw_status st = !w || (bias && !b) || !op ? tfw_last_status() : TFW_OK;
  /* PyTorch's _reset_parameters: xavier_uniform_(in_proj_weight), zero biases; out_proj keeps
   * Linear's weight init */
  if (!st) st = tfw_init_xavier_uniform_(w, 1.0);
  if (!st && bias) st = tfw_init_zeros_(tfw_module_get_parameter(op, "bias"));
  if (!st) st = tfw_module_register_parameter(m, "in_proj_weight", w);
  if (!st) st = tfw_module_register_parameter(m, "in_proj_bias", b);
  if (!st) st = tfw_module_register_module(m, "out_proj", op);
  tfw_release(w), tfw_release(b);
  tfw_module_release(op);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_status tfw_multihead_attention_set_rotary(tfw_module *m, double base) {
  if (!m || tfw_module_type(m) != MHA.type_name)
    return tfw__error(TFW_EVALUE, "MultiheadAttention set_rotary: not a MultiheadAttention module");
  mha_impl *p = tfw_module_impl(m);
  if (!(base >= 0) || (base > 0 && (p->E / p->H) % 2))
    return tfw__error(TFW_EVALUE, "MultiheadAttention set_rotary: base (%g) must be >= 0 and the "
                      "head dim (%lld) even", base, (long long)(p->E / p->H));
  p->rope_base = base;
  return TFW_OK;
}

/* ---- positional encodings ------------------------------------------------------------------- */

typedef struct {
  int64_t max_len, dim;
  double base;
} pos_impl;

/* x + table[:L] where table is [max_len, dim] */
static tfw_status add_positions(const char *op, tfw_module *m, const tfw_tensor *table,
                                int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "%s: takes 1 input and gives 1 output", op);
  const pos_impl *p = tfw_module_impl(m);
  const tfw_tensor *x = in[0];
  if (tfw__check_tensor(op, "input", x)) return tfw_last_status();
  int nd = tfw_tensor_ndim(x);
  char b[TFW__SHAPE_BUF];
  if (nd < 2 || tfw_tensor_shape(x)[nd - 1] != p->dim || tfw_tensor_shape(x)[nd - 2] > p->max_len)
    return tfw__error(TFW_ESHAPE, "%s: input of shape %s, expected [.., L, %lld] with L <= %lld",
                      op, tfw__shape_str(b, sizeof b, nd, tfw_tensor_shape(x)), (long long)p->dim,
                      (long long)p->max_len);
  tfw_tensor *t = tfw_narrow(table, 0, 0, tfw_tensor_shape(x)[nd - 2]);
  out[0] = t ? tfw_add(x, t) : NULL;
  tfw_release(t);
  return out[0] ? TFW_OK : tfw_last_status();
}

static tfw_status learned_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                  tfw_tensor **out) {
  return add_positions("LearnedPositionalEncoding", m, tfw_module_get_parameter(m, "weight"), n_in,
                       in, n_out, out);
}
static tfw_status sinus_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                tfw_tensor **out) {
  return add_positions("SinusoidalPositionalEncoding", m, tfw_module_get_buffer(m, "pe"), n_in, in,
                       n_out, out);
}
static tfw_status rotary_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                 tfw_tensor **out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "RotaryEmbedding: takes 1 input and gives 1 output");
  const pos_impl *p = tfw_module_impl(m);
  if (in[0] && tfw_tensor_ndim(in[0]) >= 1 && tfw_tensor_shape(in[0])[tfw_tensor_ndim(in[0]) - 1] != p->dim)
    return tfw__error(TFW_ESHAPE, "RotaryEmbedding: input's last dim is %lld, expected %lld",
                      (long long)tfw_tensor_shape(in[0])[tfw_tensor_ndim(in[0]) - 1], (long long)p->dim);
  return tfw_apply_rotary(in[0], NULL, NULL, p->base, &out[0], NULL);
}

static const tfw_module_vtable LEARNED = {"LearnedPositionalEncoding", learned_forward, free_impl};
static const tfw_module_vtable SINUS = {"SinusoidalPositionalEncoding", sinus_forward, free_impl};
static const tfw_module_vtable ROTARY = {"RotaryEmbedding", rotary_forward, free_impl};

static tfw_module *pos_new(const tfw_module_vtable *vt, int64_t max_len, int64_t dim, double base) {
  pos_impl *p = malloc(sizeof *p);
  tfw_module *m = p ? tfw_module_new(vt, p) : NULL;
  if (!m) {
    free(p);
    tfw__error(TFW_ENOMEM, "%s: out of memory", vt->type_name);
    return NULL;
  }
  *p = (pos_impl){max_len, dim, base};
  return m;
}

tfw_module *tfw_learned_positional_encoding_new(int64_t max_len, int64_t dim) {
  if (max_len <= 0 || dim <= 0) {
    tfw__error(TFW_EVALUE, "LearnedPositionalEncoding: max_len (%lld) and dim (%lld) must be > 0",
               (long long)max_len, (long long)dim);
    return NULL;
  }
  tfw_module *m = pos_new(&LEARNED, max_len, dim, 0);
  tfw_tensor *w = m ? tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){max_len, dim}) : NULL;
  tfw_status st = w ? tfw_init_normal_(w, 0, 1) : tfw_last_status();
  if (!st) st = tfw_module_register_parameter(m, "weight", w);
  tfw_release(w);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_module *tfw_sinusoidal_positional_encoding_new(int64_t dim, int64_t max_len) {
  if (max_len <= 0 || dim <= 0) {
    tfw__error(TFW_EVALUE, "SinusoidalPositionalEncoding: dim (%lld) and max_len (%lld) must be > 0",
               (long long)dim, (long long)max_len);
    return NULL;
  }
  tfw_module *m = pos_new(&SINUS, max_len, dim, 10000);
  tfw_tensor *pe = m ? tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){max_len, dim}) : NULL;
  tfw_status st = pe ? TFW_OK : tfw_last_status();
  if (!st) {
    float *d = (float *)tfw__data(pe);
    for (int64_t pos = 0; pos < max_len; pos++)
      for (int64_t i = 0; i < dim; i += 2) {
        /* the tutorial: div_term = exp(arange(0, d, 2) * (-log(10000) / d)) */
        double a = (double)pos * exp((double)i * (-log(10000.0) / (double)dim));
        d[pos * dim + i] = (float)sin(a);
        if (i + 1 < dim) d[pos * dim + i + 1] = (float)cos(a);
      }
    st = tfw_module_register_buffer(m, "pe", pe, true);
  }
  tfw_release(pe);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_module *tfw_rotary_embedding_new(int64_t dim, double base) {
  if (dim <= 0 || dim % 2 || !(base > 0)) {
    tfw__error(TFW_EVALUE, "RotaryEmbedding: dim (%lld) must be even and > 0, base (%g) > 0",
               (long long)dim, base);
    return NULL;
  }
  return pos_new(&ROTARY, 0, dim, base);
}

/* ---- rotary ---------------------------------------------------------------------------------- */

/* x cos + rotate_half(x) sin, cos/sin [L, D] in x's dtype */
static tfw_tensor *rotate(const tfw_tensor *x, const tfw_tensor *cs, const tfw_tensor *sn) {
  int nd = tfw_tensor_ndim(x);
  int64_t D = tfw_tensor_shape(x)[nd - 1];
  tfw_tensor *x1 = tfw_narrow(x, nd - 1, 0, D / 2), *x2 = tfw_narrow(x, nd - 1, D / 2, D / 2);
  tfw_tensor *nx2 = x2 ? tfw_neg(x2) : NULL;
  tfw_tensor *parts[2] = {nx2, x1};
  tfw_tensor *rh = nx2 && x1 ? tfw_cat(2, parts, nd - 1) : NULL;
  tfw_release(x1), tfw_release(x2), tfw_release(nx2);
  tfw_tensor *a = tfw_mul(x, cs);
  return ADD_(a, MUL_(rh, tfw_retain((tfw_tensor *)sn)));
}

tfw_status tfw_apply_rotary(const tfw_tensor *q, const tfw_tensor *k, const tfw_tensor *positions,
                            double base, tfw_tensor **q_out, tfw_tensor **k_out) {
  const char *op = "apply_rotary";
  if (q_out) *q_out = NULL;
  if (k_out) *k_out = NULL;
  if (!q_out || (k && !k_out)) return tfw__error(TFW_EVALUE, "%s: q_out (and k_out with k) must be given", op);
  if (tfw__check_tensor(op, "q", q)) return tfw_last_status();
  if (!(base > 0)) return tfw__error(TFW_EVALUE, "%s: base must be > 0, got %g", op, base);
  const tfw_tensor *xs[2] = {q, k};
  int64_t L = -1, D = -1;
  for (int i = 0; i < 2; i++) {
    const tfw_tensor *x = xs[i];
    if (!x) continue;
    int nd = tfw_tensor_ndim(x);
    char b[TFW__SHAPE_BUF];
    if (!tfw_dtype_is_floating(tfw_tensor_dtype(x)))
      return tfw__error(TFW_EDTYPE, "%s: %s must be floating-point", op, i ? "k" : "q");
    if (nd < 2 || tfw_tensor_shape(x)[nd - 1] % 2 || (D >= 0 && tfw_tensor_shape(x)[nd - 1] != D) ||
        (L >= 0 && tfw_tensor_shape(x)[nd - 2] != L))
      return tfw__error(TFW_ESHAPE, "%s: %s of shape %s: expected [.., L, D] with D even (q and k alike)",
                        op, i ? "k" : "q", tfw__shape_str(b, sizeof b, nd, tfw_tensor_shape(x)));
    L = tfw_tensor_shape(x)[nd - 2], D = tfw_tensor_shape(x)[nd - 1];
  }
  tfw_tensor *pos = positions ? tfw_to_dtype(positions, TFW_DTYPE_F64)
                              : tfw_arange(0, (double)L, 1, TFW_DTYPE_F64);
  if (!pos) return tfw_last_status();
  if (tfw_tensor_numel(pos) != L) {
    tfw_release(pos);
    return tfw__error(TFW_ESHAPE, "%s: %lld positions for a sequence of %lld", op,
                      (long long)tfw_tensor_numel(positions), (long long)L);
  }
  /* theta [L, D/2] = pos * base^(-2i/D), computed in f64 then cast once */
  tfw_tensor *inv = tfw_arange(0, (double)D, 2, TFW_DTYPE_F64);
  inv = c1(inv ? tfw_mul_scalar(inv, -log(base) / (double)D) : NULL, inv);
  inv = c1(inv ? tfw_exp(inv) : NULL, inv);
  tfw_tensor *th = MM_(RESHAPE_(pos, 2, L, 1), RESHAPE_(inv, 2, 1, D / 2));
  tfw_tensor *parts[2] = {th, th};
  tfw_tensor *emb = th ? tfw_cat(2, parts, 1) : NULL;
  tfw_release(th);
  tfw_dtype dt = tfw_tensor_dtype(q);
  tfw_tensor *cs = emb ? tfw_cos(emb) : NULL, *sn = emb ? tfw_sin(emb) : NULL;
  tfw_release(emb);
  cs = c1(cs ? tfw_to_dtype(cs, dt) : NULL, cs);
  sn = c1(sn ? tfw_to_dtype(sn, dt) : NULL, sn);
  tfw_status st = cs && sn ? TFW_OK : tfw_last_status();
  if (!st) {
    *q_out = rotate(q, cs, sn);
    if (k) *k_out = rotate(k, cs, sn);
    if (!*q_out || (k && !*k_out)) {
      st = tfw_last_status();
      tfw_release(*q_out), *q_out = NULL;
      if (k_out) tfw_release(*k_out), *k_out = NULL;
    }
  }
  tfw_release(cs), tfw_release(sn);
  return st;
}
