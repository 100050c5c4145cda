/* TransformerEncoderLayer and TransformerDecoderLayer, as torch.nn's: a stack of residual
 * blocks (self-attention, [cross-attention to the memory,] feed-forward), post-norm
 * (norm_first = false, the default: x = norm_i(x + block(x))) or pre-norm
 * (x = x + block(norm_i(x))). Children and parameter names are PyTorch's (self_attn.*,
 * multihead_attn.*, linear1, linear2, norm1..3, dropout, dropout1..3), so state_dicts move
 * between the two.
 *
 * Both layers also run incrementally with a KV cache (kv_cache.c): the self-attention is then
 * causal over the cached positions plus the new ones, the decoder's cross-attention reuses
 * the memory's keys/values projected on the first step, and no dropout applies. */
#include <stdio.h>
#include <stdlib.h>

#include "nn/nn_internal.h"
#include "tenflower/nn_attention.h"

typedef struct {
  bool norm_first;
  bool gelu;
  bool decoder;
} layer_impl;

static const tfw_module_vtable ENCODER, DECODER;

#define CHILD(m, n) tfw_module_get_child(m, n)

/* What one forward needs; cache == NULL is the full forward. */
typedef struct {
  const tfw_tensor *mask, *kpm; /* self-attention */
  bool causal;
  const tfw_tensor *memory, *mmask, *mkpm; /* decoder cross-attention */
  bool mcausal;
  tfw_kv_cache *cache;
  int64_t pos0; /* cached: absolute position of the first new token */
} fwd_args;

/* dropout child `name` applied to x (consumed); none in the cached (inference) forward */
static tfw_tensor *dropout_(tfw_module *m, const char *name, tfw_tensor *x, const fwd_args *a) {
  if (!x || a->cache) return x;
  tfw_tensor *r = tfw_module_call(CHILD(m, name), x);
  tfw_release(x);
  return r;
}

static tfw_tensor *sa_block(tfw_module *m, const tfw_tensor *x, const fwd_args *a) {
  tfw_tensor *y = NULL;
  tfw_module *sa = CHILD(m, "self_attn");
  tfw_status st = a->cache ? tfw_multihead_attention_forward_cached(sa, x, a->cache, &y)
                           : tfw_multihead_attention_forward(sa, x, x, x, a->kpm, false, a->mask,
                                                             true, a->causal, &y, NULL);
  return st ? NULL : dropout_(m, "dropout1", y, a);
}

static tfw_tensor *mha_block(tfw_module *m, const tfw_tensor *x, const fwd_args *a) {
  tfw_tensor *y = NULL;
  tfw_module *ca = CHILD(m, "multihead_attn");
  tfw_status st = a->cache ? tfw__mha_cross_cached(ca, x, a->memory, a->mkpm, a->cache, a->pos0, &y)
                           : tfw_multihead_attention_forward(ca, x, a->memory, a->memory, a->mkpm,
                                                             false, a->mmask, true, a->mcausal, &y,
                                                             NULL);
  return st ? NULL : dropout_(m, "dropout2", y, a);
}

/* linear2(dropout(act(linear1(x)))), then dropout2 (encoder) / dropout3 (decoder) */
static tfw_tensor *ff_block(tfw_module *m, const tfw_tensor *x, const fwd_args *a) {
  const layer_impl *s = tfw_module_impl(m);
  tfw_tensor *h = tfw_module_call(CHILD(m, "linear1"), x);
  tfw_tensor *act = h ? (s->gelu ? tfw_gelu(h) : tfw_relu(h)) : NULL;
  tfw_release(h);
  act = dropout_(m, "dropout", act, a);
  tfw_tensor *o = act ? tfw_module_call(CHILD(m, "linear2"), act) : NULL;
  tfw_release(act);
  return dropout_(m, s->decoder ? "dropout3" : "dropout2", o, a);
}

/* r = x + f (consumes f) */
static tfw_tensor *residual(const tfw_tensor *x, tfw_tensor *f) {
  if (!f) return NULL;
  tfw_tensor *r = tfw_add(x, f);
  tfw_release(f);
  return r;
}

typedef tfw_tensor *(*block_fn)(tfw_module *m, const tfw_tensor *x, const fwd_args *a);

/* The blocks in order, block i with child "norm<i+1>" */
static tfw_status layer_forward(tfw_module *m, const tfw_tensor *src, const fwd_args *a,
                                tfw_tensor **out) {
  const layer_impl *s = tfw_module_impl(m);
  const block_fn enc[] = {sa_block, ff_block}, dec[] = {sa_block, mha_block, ff_block};
  const block_fn *blocks = s->decoder ? dec : enc;
  int n = s->decoder ? 3 : 2;
  tfw_tensor *x = tfw_retain((tfw_tensor *)src), *t;
  for (int i = 0; i < n && x; i++) {
    char norm[16];
    snprintf(norm, sizeof norm, "norm%d", i + 1);
    if (s->norm_first) {
      tfw_tensor *nx = tfw_module_call(CHILD(m, norm), x);
      t = nx ? residual(x, blocks[i](m, nx, a)) : NULL;
      tfw_release(nx), tfw_release(x);
      x = t;
    } else {
      t = residual(x, blocks[i](m, x, a));
      tfw_release(x);
      x = t ? tfw_module_call(CHILD(m, norm), t) : NULL;
      tfw_release(t);
    }
  }
  if (!x) return tfw_last_status();
  *out = x;
  return TFW_OK;
}

static tfw_status check_layer(const char *op, tfw_module *m, const tfw_module_vtable *vt,
                              const tfw_tensor *x, tfw_tensor **out) {
  if (out) *out = NULL;
  if (!m || !out || !x) return tfw__error(TFW_EVALUE, "%s: NULL argument", op);
  if (tfw_module_type(m) != vt->type_name)
    return tfw__error(TFW_EVALUE, "%s: not a %s module (%s)", op, vt->type_name, tfw_module_type(m));
  return TFW_OK;
}

/* The cached forward: no grad, and a failure rolls the cache back to where it was. */
static tfw_status layer_forward_cached(tfw_module *m, const tfw_tensor *x, fwd_args *a,
                                       tfw_tensor **out) {
  if (!a->cache) return tfw__error(TFW_EVALUE, "%s (cached): NULL cache", tfw_module_type(m));
  a->pos0 = tfw_kv_cache_length(a->cache);
  bool prev = tfw_set_grad_enabled(false);
  tfw_status st = layer_forward(m, x, a, out);
  tfw_set_grad_enabled(prev);
  if (st) tfw__kv_cache_set_length(a->cache, a->pos0);
  return st;
}

tfw_status tfw_transformer_encoder_layer_forward(tfw_module *m, const tfw_tensor *src,
                                                 const tfw_tensor *src_mask,
                                                 const tfw_tensor *key_padding_mask, bool is_causal,
                                                 tfw_tensor **out) {
  if (check_layer("TransformerEncoderLayer", m, &ENCODER, src, out)) return tfw_last_status();
  fwd_args a = {.mask = src_mask, .kpm = key_padding_mask, .causal = is_causal};
  return layer_forward(m, src, &a, out);
}

tfw_status tfw_transformer_encoder_layer_forward_cached(tfw_module *m, const tfw_tensor *src,
                                                        tfw_kv_cache *cache, tfw_tensor **out) {
  if (check_layer("TransformerEncoderLayer (cached)", m, &ENCODER, src, out)) return tfw_last_status();
  fwd_args a = {.cache = cache};
  return layer_forward_cached(m, src, &a, out);
}

tfw_status tfw_transformer_decoder_layer_forward(
    tfw_module *m, const tfw_tensor *tgt, const tfw_tensor *memory, const tfw_tensor *tgt_mask,
    const tfw_tensor *memory_mask, const tfw_tensor *tgt_key_padding_mask,
    const tfw_tensor *memory_key_padding_mask, bool tgt_is_causal, bool memory_is_causal,
    tfw_tensor **out) {
  if (check_layer("TransformerDecoderLayer", m, &DECODER, tgt, out)) return tfw_last_status();
  if (!memory) return tfw__error(TFW_EVALUE, "TransformerDecoderLayer: memory is NULL");
  fwd_args a = {.mask = tgt_mask, .kpm = tgt_key_padding_mask, .causal = tgt_is_causal,
                .memory = memory, .mmask = memory_mask, .mkpm = memory_key_padding_mask,
                .mcausal = memory_is_causal};
  return layer_forward(m, tgt, &a, out);
}

tfw_status tfw_transformer_decoder_layer_forward_cached(
    tfw_module *m, const tfw_tensor *tgt, const tfw_tensor *memory,
    const tfw_tensor *memory_key_padding_mask, tfw_kv_cache *cache, tfw_tensor **out) {
  if (check_layer("TransformerDecoderLayer (cached)", m, &DECODER, tgt, out)) return tfw_last_status();
  if (!memory) return tfw__error(TFW_EVALUE, "TransformerDecoderLayer (cached): memory is NULL");
  fwd_args a = {.memory = memory, .mkpm = memory_key_padding_mask, .cache = cache};
  return layer_forward_cached(m, tgt, &a, out);
}

static tfw_status enc_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "TransformerEncoderLayer: takes 1 input and gives 1 output "
                      "(use tfw_transformer_encoder_layer_forward for masks)");
  return tfw_transformer_encoder_layer_forward(m, in[0], NULL, NULL, false, out);
}

static tfw_status dec_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 2 || n_out != 1)
    return tfw__error(TFW_EVALUE, "TransformerDecoderLayer: takes 2 inputs (tgt, memory) and gives "
                      "1 output (use tfw_transformer_decoder_layer_forward for masks); got %d, %d",
                      n_in, n_out);
  return tfw_transformer_decoder_layer_forward(m, in[0], in[1], NULL, NULL, NULL, NULL, false, false,
                                               out);
}

static const tfw_module_vtable ENCODER = {"TransformerEncoderLayer", enc_forward, tfw__module_free_impl};
static const tfw_module_vtable DECODER = {"TransformerDecoderLayer", dec_forward, tfw__module_free_impl};

static tfw_status add_child(tfw_module *m, const char *name, tfw_module *c) {
  if (!c) return tfw_last_status();
  tfw_status st = tfw_module_register_module(m, name, c);
  tfw_module_release(c);
  return st;
}

/* Children in PyTorch's registration order (which is the state_dict order). */
static tfw_module *layer_new(const tfw_module_vtable *vt, bool decoder, int64_t d_model,
                             int64_t nhead, int64_t dim_feedforward, double dropout,
                             const char *activation, double eps, bool batch_first, bool norm_first) {
  bool gelu = activation && !strcmp(activation, "gelu");
  if (activation && !gelu && strcmp(activation, "relu")) {
    tfw__error(TFW_EVALUE, "%s: activation must be 'relu' or 'gelu', got '%s'", vt->type_name, activation);
    return NULL;
  }
  if (dim_feedforward <= 0) {
    tfw__error(TFW_EVALUE, "%s: dim_feedforward must be > 0, got %lld", vt->type_name,
               (long long)dim_feedforward);
    return NULL;
  }
  layer_impl *s;
  tfw_module *m = tfw__module_new_impl(vt, sizeof *s, (void **)&s);
  if (!m) return NULL;
  *s = (layer_impl){norm_first, gelu, decoder};
  tfw_status st = add_child(m, "self_attn", tfw_multihead_attention_new(d_model, nhead, dropout, true, batch_first));
  if (!st && decoder)
    st = add_child(m, "multihead_attn", tfw_multihead_attention_new(d_model, nhead, dropout, true, batch_first));
  if (!st) st = add_child(m, "linear1", tfw_linear_new(d_model, dim_feedforward, true));
  if (!st) st = add_child(m, "dropout", tfw_dropout_new(dropout));
  if (!st) st = add_child(m, "linear2", tfw_linear_new(dim_feedforward, d_model, true));
  int n = decoder ? 3 : 2;
  char name[24];
  for (int i = 1; i <= n && !st; i++) {
    snprintf(name, sizeof name, "norm%d", i);
    st = add_child(m, name, tfw_layer_norm_new(1, &d_model, eps, true));
  }
  for (int i = 1; i <= n && !st; i++) {
    snprintf(name, sizeof name, "dropout%d", i);
    st = add_child(m, name, tfw_dropout_new(dropout));
  }
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_module *tfw_transformer_encoder_layer_new(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                              double dropout, const char *activation, double eps,
                                              bool batch_first, bool norm_first) {
  return layer_new(&ENCODER, false, d_model, nhead, dim_feedforward, dropout, activation, eps,
                   batch_first, norm_first);
}

tfw_module *tfw_transformer_decoder_layer_new(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                              double dropout, const char *activation, double eps,
                                              bool batch_first, bool norm_first) {
  return layer_new(&DECODER, true, d_model, nhead, dim_feedforward, dropout, activation, eps,
                   batch_first, norm_first);
}
