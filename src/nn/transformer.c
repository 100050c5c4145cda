/* TransformerEncoderLayer, as torch.nn.TransformerEncoderLayer: self-attention and a
 * feed-forward block, each with a residual connection, post-norm (norm_first = false, the
 * default) or pre-norm. Children and parameter names are PyTorch's (self_attn.*, linear1,
 * linear2, norm1, norm2), so state_dicts move between the two. */
#include <stdlib.h>

#include "nn/nn_internal.h"
#include "tenflower/nn_attention.h"

typedef struct {
  bool norm_first;
  bool gelu;
} enc_impl;

#define CHILD(m, n) tfw_module_get_child(m, n)

/* x + dropout(sa(x)) pieces; consumes nothing. */
static tfw_tensor *sa_block(tfw_module *m, const tfw_tensor *x, const tfw_tensor *mask,
                            const tfw_tensor *kpm, bool causal) {
  tfw_tensor *y = NULL;
  if (tfw_multihead_attention_forward(CHILD(m, "self_attn"), x, x, x, kpm, false, mask, true, causal,
                                      &y, NULL))
    return NULL;
  tfw_tensor *d = tfw_module_call(CHILD(m, "dropout1"), y);
  tfw_release(y);
  return d;
}

static tfw_tensor *ff_block(tfw_module *m, const tfw_tensor *x) {
  enc_impl *s = tfw_module_impl(m);
  tfw_tensor *h = tfw_module_call(CHILD(m, "linear1"), x);
  tfw_tensor *a = h ? (s->gelu ? tfw_gelu(h) : tfw_relu(h)) : NULL;
  tfw_tensor *d = a ? tfw_module_call(CHILD(m, "dropout"), a) : NULL;
  tfw_tensor *o = d ? tfw_module_call(CHILD(m, "linear2"), d) : NULL;
  tfw_tensor *r = o ? tfw_module_call(CHILD(m, "dropout2"), o) : NULL;
  tfw_release(h), tfw_release(a), tfw_release(d), tfw_release(o);
  return r;
}

/* r = x + f(...) (consumes f) */
static tfw_tensor *residual(const tfw_tensor *x, tfw_tensor *f) {
  if (!f) return NULL;
  tfw_tensor *r = tfw_add(x, f);
  tfw_release(f);
  return r;
}

tfw_status tfw_transformer_encoder_layer_forward(tfw_module *m, const tfw_tensor *src,
                                                 const tfw_tensor *src_mask,
                                                 const tfw_tensor *key_padding_mask, bool is_causal,
                                                 tfw_tensor **out) {
  if (!m || !out || !src) return tfw__error(TFW_EVALUE, "TransformerEncoderLayer: NULL argument");
  *out = NULL;
  enc_impl *s = tfw_module_impl(m);
  tfw_tensor *x = tfw_retain((tfw_tensor *)src), *t;
  if (s->norm_first) {
    tfw_tensor *n1 = tfw_module_call(CHILD(m, "norm1"), x);
    t = n1 ? residual(x, sa_block(m, n1, src_mask, key_padding_mask, is_causal)) : NULL;
    tfw_release(n1), tfw_release(x);
    x = t;
    tfw_tensor *n2 = x ? tfw_module_call(CHILD(m, "norm2"), x) : NULL;
    t = n2 ? residual(x, ff_block(m, n2)) : NULL;
    tfw_release(n2), tfw_release(x);
    x = t;
  } else {
    t = residual(x, sa_block(m, x, src_mask, key_padding_mask, is_causal));
    tfw_release(x);
    x = t ? tfw_module_call(CHILD(m, "norm1"), t) : NULL;
    tfw_release(t);
    t = x ? residual(x, ff_block(m, x)) : NULL;
    tfw_release(x);
    x = t ? tfw_module_call(CHILD(m, "norm2"), t) : NULL;
    tfw_release(t);
  }
  if (!x) return tfw_last_status();
  *out = x;
  return TFW_OK;
}

static tfw_status enc_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "TransformerEncoderLayer: takes 1 input and gives 1 output "
                      "(use tfw_transformer_encoder_layer_forward for masks)");
  return tfw_transformer_encoder_layer_forward(m, in[0], NULL, NULL, false, out);
}

static const tfw_module_vtable ENCODER = {"TransformerEncoderLayer", enc_forward, tfw__module_free_impl};

static tfw_status add_child(tfw_module *m, const char *name, tfw_module *c) {
  if (!c) return tfw_last_status();
  tfw_status st = tfw_module_register_module(m, name, c);
  tfw_module_release(c);
  return st;
}

tfw_module *tfw_transformer_encoder_layer_new(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                              double dropout, const char *activation, double eps,
                                              bool batch_first, bool norm_first) {
  bool gelu = activation && !strcmp(activation, "gelu");
  if (activation && !gelu && strcmp(activation, "relu")) {
    tfw__error(TFW_EVALUE, "TransformerEncoderLayer: activation must be 'relu' or 'gelu', got '%s'", activation);
    return NULL;
  }
  enc_impl *s;
  tfw_module *m = tfw__module_new_impl(&ENCODER, sizeof *s, (void **)&s);
  if (!m) return NULL;
  s->norm_first = norm_first;
  s->gelu = gelu;
  tfw_status st = add_child(m, "self_attn", tfw_multihead_attention_new(d_model, nhead, dropout, true, batch_first));
  if (!st) st = add_child(m, "linear1", tfw_linear_new(d_model, dim_feedforward, true));
  if (!st) st = add_child(m, "dropout", tfw_dropout_new(dropout));
  if (!st) st = add_child(m, "linear2", tfw_linear_new(dim_feedforward, d_model, true));
  if (!st) st = add_child(m, "norm1", tfw_layer_norm_new(1, &d_model, eps, true));
  if (!st) st = add_child(m, "norm2", tfw_layer_norm_new(1, &d_model, eps, true));
  if (!st) st = add_child(m, "dropout1", tfw_dropout_new(dropout));
  if (!st) st = add_child(m, "dropout2", tfw_dropout_new(dropout));
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}
