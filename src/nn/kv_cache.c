/* KV cache for generation: the projected keys and values of an attention layer's past
 * positions, preallocated as [N, H, max_len, hd], so that a sequence runs one token (or one
 * chunk) at a time. A step projects only its T new positions, writes their keys/values at
 * [len, len + T) and attends the new queries to keys [0, len + T): query at absolute
 * position p sees keys 0 .. p. Work per step is O(T * (len + T)) instead of recomputing the
 * whole O(len^2) causal forward. Everything runs without recording (generation needs no
 * gradients, and the in-place writes into the cache must not be part of a graph).
 *
 * Letters: N batch, H heads, hd head dim, T new positions, p0 = positions already cached,
 * S = p0 + T keys attended. */
#include <stdlib.h>
#include <string.h>

#include "nn/nn_internal.h"
#include "tenflower/nn_functional_attention.h"

struct tfw_kv_cache {
  int64_t batch, heads, head_dim, max_len, len;
  tfw_tensor *k, *v;         /* [N, H, max_len, hd]; positions [0, len) are valid */
  tfw_tensor *mem_k, *mem_v; /* decoder cross-attention: memory keys/values [N, H, S_mem, hd], or NULL */
};

/* The self-attention module of m (m itself, or a Transformer layer's self_attn); NULL if none. */
static tfw_module *self_attn_of(const tfw_module *m) {
  tfw__mha_info info;
  if (!m) return NULL;
  if (tfw__mha_info_get(m, &info)) return (tfw_module *)m;
  const char *t = tfw_module_type(m);
  if (!strcmp(t, "TransformerEncoderLayer") || !strcmp(t, "TransformerDecoderLayer"))
    return tfw_module_get_child(m, "self_attn");
  return NULL;
}

tfw_kv_cache *tfw_kv_cache_new(const tfw_module *m, int64_t batch, int64_t max_len) {
  tfw_module *sa = self_attn_of(m);
  tfw__mha_info info;
  if (!sa || !tfw__mha_info_get(sa, &info)) {
    tfw__error(TFW_EVALUE, "kv_cache_new: m must be a MultiheadAttention or a Transformer "
               "encoder/decoder layer, got %s", m ? tfw_module_type(m) : "NULL");
    return NULL;
  }
  if (batch <= 0 || max_len <= 0) {
    tfw__error(TFW_EVALUE, "kv_cache_new: batch (%lld) and max_len (%lld) must be > 0",
               (long long)batch, (long long)max_len);
    return NULL;
  }
  tfw_kv_cache *c = calloc(1, sizeof *c);
  if (!c) {
    tfw__error(TFW_ENOMEM, "kv_cache_new: out of memory");
    return NULL;
  }
  *c = (tfw_kv_cache){batch, info.H, info.E / info.H, max_len, 0, NULL, NULL, NULL, NULL};
  tfw_dtype dt = tfw_tensor_dtype(tfw_module_get_parameter(sa, "in_proj_weight"));
  const int64_t shape[4] = {batch, info.H, max_len, info.E / info.H};
  c->k = tfw_zeros(dt, 4, shape);
  c->v = c->k ? tfw_zeros(dt, 4, shape) : NULL;
  if (!c->v) {
    tfw_kv_cache_free(c);
    return NULL;
  }
  return c;
}

void tfw_kv_cache_reset(tfw_kv_cache *c) {
  if (!c) return;
  c->len = 0;
  tfw_release(c->mem_k), tfw_release(c->mem_v);
  c->mem_k = c->mem_v = NULL;
}

void tfw_kv_cache_free(tfw_kv_cache *c) {
  if (!c) return;
  tfw_kv_cache_reset(c);
  tfw_release(c->k), tfw_release(c->v);
  free(c);
}

int64_t tfw_kv_cache_length(const tfw_kv_cache *c) { return c ? c->len : 0; }
int64_t tfw_kv_cache_max_len(const tfw_kv_cache *c) { return c ? c->max_len : 0; }

void tfw__kv_cache_set_length(tfw_kv_cache *c, int64_t len) {
  if (c && len >= 0 && len <= c->len) c->len = len;
}

/* Checks x ([T, N, E] / [N, T, E] / [T, E]) against m and the cache; *T its new positions. */
static tfw_status check_step(const char *op, const char *name, const tfw__mha_info *in,
                             const tfw_tensor *x, const tfw_kv_cache *c, int64_t *T) {
  if (tfw__check_tensor(op, name, x)) return tfw_last_status();
  int nd = tfw_tensor_ndim(x);
  const int64_t *s = tfw_tensor_shape(x);
  char b[TFW__SHAPE_BUF];
  if ((nd != 2 && nd != 3) || s[nd - 1] != in->E || s[nd == 3 && !in->batch_first ? 0 : nd - 2] < 1)
    return tfw__error(TFW_ESHAPE, "%s: %s of shape %s, expected %s with E = %lld and T >= 1", op,
                      name, tfw__shape_str(b, sizeof b, nd, s),
                      in->batch_first ? "[N, T, E] or [T, E]" : "[T, N, E] or [T, E]",
                      (long long)in->E);
  *T = s[nd == 3 && !in->batch_first ? 0 : nd - 2];
  int64_t N = nd == 2 ? 1 : s[in->batch_first ? 0 : 1];
  if (c->heads != in->H || c->head_dim != in->E / in->H)
    return tfw__error(TFW_EVALUE, "%s: the cache was made for %lld heads of %lld, the module has "
                      "%lld heads of %lld", op, (long long)c->heads, (long long)c->head_dim,
                      (long long)in->H, (long long)(in->E / in->H));
  if (N != c->batch)
    return tfw__error(TFW_ESHAPE, "%s: %s has batch %lld, the cache was made for batch %lld", op,
                      name, (long long)N, (long long)c->batch);
  if (c->len + *T > c->max_len)
    return tfw__error(TFW_EINDEX, "%s: the cache holds %lld of max_len %lld positions and cannot "
                      "take %lld more (reset it, or make a cache with a larger max_len)", op,
                      (long long)c->len, (long long)c->max_len, (long long)*T);
  return TFW_OK;
}

/* keep[i, j] = j <= p0 + i over [T, S]: the causal mask of queries at p0 .. p0 + T - 1 */
static tfw_tensor *offset_causal_mask(int64_t T, int64_t S, int64_t p0) {
  tfw_tensor *ones = tfw_ones(TFW_DTYPE_BOOL, 2, (int64_t[]){T, S});
  tfw_tensor *keep = ones ? tfw_tril(ones, p0) : NULL;
  tfw_release(ones);
  return keep;
}

static tfw_status self_step(tfw_module *m, const tfw__mha_info *in, const tfw_tensor *x,
                            tfw_kv_cache *c, int64_t T, tfw_tensor **out) {
  const int64_t p0 = c->len, S = p0 + T;
  tfw_tensor *h[3] = {NULL, NULL, NULL}, *mask = NULL, *o = NULL; /* h: [N, H, T, hd] */
  tfw_status st = TFW_OK;
  for (int i = 0; i < 3 && !st; i++)
    if (!(h[i] = tfw__mha_heads(m, x, i))) st = tfw_last_status();
  for (int i = 0; i < 2 && !st && in->rope_base > 0; i++) st = tfw__mha_rope_(&h[i], p0, in->rope_base);
  for (int i = 1; i < 3 && !st; i++) { /* append at [p0, S) */
    tfw_tensor *dst = tfw_narrow(i == 1 ? c->k : c->v, 2, p0, T);
    st = dst ? tfw_copy_(dst, h[i]) : tfw_last_status();
    tfw_release(dst);
  }
  /* T == 1 sees every key; a first chunk is plain (top-left) causal; a later chunk needs the
   * causal mask shifted by p0 */
  if (!st && T > 1 && p0 > 0 && !(mask = offset_causal_mask(T, S, p0))) st = tfw_last_status();
  if (!st) {
    tfw_tensor *K = tfw_narrow(c->k, 2, 0, S), *V = tfw_narrow(c->v, 2, 0, S);
    o = K && V ? tfw_scaled_dot_product_attention(h[0], K, V, mask, 0, T > 1 && p0 == 0, 0) : NULL;
    tfw_release(K), tfw_release(V);
    o = tfw__mha_output(m, o, tfw_tensor_ndim(x));
    if (!o) st = tfw_last_status();
  }
  for (int i = 0; i < 3; i++) tfw_release(h[i]);
  tfw_release(mask);
  if (st) return st;
  c->len = S;
  *out = o;
  return TFW_OK;
}

tfw_status tfw_multihead_attention_forward_cached(tfw_module *m, const tfw_tensor *x,
                                                  tfw_kv_cache *cache, tfw_tensor **out) {
  const char *op = "MultiheadAttention (cached)";
  if (out) *out = NULL;
  tfw__mha_info in;
  if (!m || !cache || !out) return tfw__error(TFW_EVALUE, "%s: NULL module, cache or out", op);
  if (!tfw__mha_info_get(m, &in))
    return tfw__error(TFW_EVALUE, "%s: not a MultiheadAttention module (%s)", op, tfw_module_type(m));
  int64_t T = 0;
  if (check_step(op, "x", &in, x, cache, &T)) return tfw_last_status();
  bool prev = tfw_set_grad_enabled(false);
  tfw_status st = self_step(m, &in, x, cache, T, out);
  tfw_set_grad_enabled(prev);
  return st;
}

tfw_status tfw__mha_cross_cached(tfw_module *mha, const tfw_tensor *query, const tfw_tensor *memory,
                                 const tfw_tensor *key_padding_mask, tfw_kv_cache *c, int64_t pos0,
                                 tfw_tensor **out) {
  const char *op = "TransformerDecoderLayer (cached): multihead_attn";
  *out = NULL;
  tfw__mha_info in;
  if (!tfw__mha_info_get(mha, &in)) return tfw__error(TFW_EINTERNAL, "%s: not a MultiheadAttention", op);
  if (tfw__check_tensor(op, "memory", memory)) return tfw_last_status();
  int nd = tfw_tensor_ndim(query);
  const int64_t *ms = tfw_tensor_shape(memory);
  int ld = nd == 3 && !in.batch_first ? 0 : nd - 2;
  char b[TFW__SHAPE_BUF];
  if (tfw_tensor_ndim(memory) != nd || ms[nd - 1] != in.E ||
      (nd == 3 && ms[1 - ld] != c->batch) || ms[ld] < 1)
    return tfw__error(TFW_ESHAPE, "%s: memory of shape %s, expected rank %d like tgt, batch %lld, "
                      "E = %lld", op, tfw__shape_str(b, sizeof b, tfw_tensor_ndim(memory), ms), nd,
                      (long long)c->batch, (long long)in.E);
  const int64_t S = ms[ld];
  if (c->mem_k && tfw_tensor_shape(c->mem_k)[2] != S)
    return tfw__error(TFW_ESHAPE, "%s: memory has %lld positions but the cache projected %lld "
                      "(memory must stay the same until tfw_kv_cache_reset)", op, (long long)S,
                      (long long)tfw_tensor_shape(c->mem_k)[2]);
  tfw_status st = TFW_OK;
  if (!c->mem_k) {
    tfw_tensor *k = tfw__mha_heads(mha, memory, 1), *v = k ? tfw__mha_heads(mha, memory, 2) : NULL;
    st = v ? TFW_OK : tfw_last_status();
    if (!st && in.rope_base > 0) st = tfw__mha_rope_(&k, 0, in.rope_base);
    if (st) {
      tfw_release(k), tfw_release(v);
      return st;
    }
    c->mem_k = k, c->mem_v = v;
  }
  tfw_tensor *q = tfw__mha_heads(mha, query, 0), *mask = NULL;
  st = q ? TFW_OK : tfw_last_status();
  if (!st && in.rope_base > 0) st = tfw__mha_rope_(&q, pos0, in.rope_base);
  const tfw_tensor *kpm = key_padding_mask;
  tfw_tensor *kpm2 = NULL;
  if (!st && kpm && nd == 2 && !(kpm = kpm2 = tfw_unsqueeze(kpm, 0))) st = tfw_last_status();
  if (!st)
    st = tfw__mha_merge_masks(op, kpm, NULL, c->batch, in.H, tfw_tensor_shape(q)[2], S,
                              tfw_tensor_dtype(q), &mask);
  tfw_release(kpm2);
  tfw_tensor *o = st ? NULL : tfw_scaled_dot_product_attention(q, c->mem_k, c->mem_v, mask, 0, false, 0);
  tfw_release(q), tfw_release(mask);
  if (st) return st;
  *out = tfw__mha_output(mha, o, nd);
  return *out ? TFW_OK : tfw_last_status();
}
