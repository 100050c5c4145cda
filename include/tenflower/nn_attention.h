/* tenflower — attention modules and positional encodings (PyTorch's names and state_dict
 * keys). Constructors return a new module (one reference; tfw_module_release) or NULL with
 * the error set (TFW_EVALUE for bad sizes, TFW_ENOMEM). */
#ifndef TENFLOWER_NN_ATTENTION_H
#define TENFLOWER_NN_ATTENTION_H

#include "nn.h"

/* torch.nn.MultiheadAttention(embed_dim, num_heads, dropout, bias, batch_first) with
 * kdim = vdim = embed_dim. Parameters: "in_proj_weight" [3E, E] (xavier_uniform),
 * "in_proj_bias" [3E] (zeros), child "out_proj" (Linear E -> E: "out_proj.weight",
 * "out_proj.bias" zeros) — the keys of PyTorch's state_dict, so its weights load as they
 * are. bias = false drops both biases. Dropout on the attention weights applies in training
 * mode only. As a module: tfw_module_forward with 1 input (self-attention) or 3 (query, key,
 * value) and 1 output (need_weights = false: the fused attention kernel) or 2 (also the
 * head-averaged weights). */
TFW_API tfw_module *tfw_multihead_attention_new(int64_t embed_dim, int64_t num_heads,
                                                double dropout, bool bias, bool batch_first);
/* The full forward, as MultiheadAttention.forward: query [L, N, E] ([N, L, E] batch_first,
 * [L, E] unbatched), key/value [S, N, E] likewise. key_padding_mask (may be NULL) [N, S]
 * ([S] unbatched): bool true = ignore that key, or float added. attn_mask (may be NULL)
 * [L, S] or [N * num_heads, L, S]: bool true = not allowed, or float added. is_causal adds
 * the causal mask (query i sees keys j <= i). need_weights: *weights receives the attention
 * weights, averaged over heads when average_attn_weights ([N, L, S]) or per head
 * ([N, H, L, S]); else *weights = NULL (pass weights NULL then) and the fused kernel runs.
 * *out receives [L, N, E] (batch_first [N, L, E]). Errors: TFW_EVALUE, TFW_ESHAPE,
 * TFW_EDTYPE naming the argument. */
TFW_API tfw_status tfw_multihead_attention_forward(tfw_module *m, const tfw_tensor *query,
                                                   const tfw_tensor *key, const tfw_tensor *value,
                                                   const tfw_tensor *key_padding_mask,
                                                   bool need_weights, const tfw_tensor *attn_mask,
                                                   bool average_attn_weights, bool is_causal,
                                                   tfw_tensor **out, tfw_tensor **weights);

/* Learned absolute positions: parameter "weight" [max_len, dim] (normal(0, 1), as
 * nn.Embedding); forward x [.., L, dim] -> x + weight[:L] (L <= max_len). */
TFW_API tfw_module *tfw_learned_positional_encoding_new(int64_t max_len, int64_t dim);
/* Fixed sinusoidal positions (the PyTorch transformer tutorial's formula): persistent buffer
 * "pe" [max_len, dim] with pe[p, 2i] = sin(p / 10000^(2i/dim)), pe[p, 2i+1] = cos(same);
 * forward x [.., L, dim] -> x + pe[:L]. (The tutorial stores [max_len, 1, dim] for
 * sequence-first input and applies dropout; here the positions are the second-to-last dim
 * and dropout is a separate module.) */
TFW_API tfw_module *tfw_sinusoidal_positional_encoding_new(int64_t dim, int64_t max_len);
/* Rotary embedding module (no parameters): forward x [.., L, dim] -> tfw_apply_rotary(x)
 * with positions 0 .. L-1 and the given base (10000 in LLaMA); the GPT-NeoX / LLaMA
 * half-split convention (see tfw_apply_rotary in nn_functional_attention.h). */
TFW_API tfw_module *tfw_rotary_embedding_new(int64_t dim, double base);

/* torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, activation
 * ("relu" or "gelu"), layer_norm_eps, batch_first, norm_first): children self_attn, linear1,
 * dropout, linear2, norm1, norm2, dropout1, dropout2 with PyTorch's names. The module's
 * forward takes src only; the full form takes src_mask / key_padding_mask (as
 * MultiheadAttention's attn_mask / key_padding_mask) and is_causal. */
TFW_API tfw_module *tfw_transformer_encoder_layer_new(int64_t d_model, int64_t nhead,
                                                      int64_t dim_feedforward, double dropout,
                                                      const char *activation, double eps,
                                                      bool batch_first, bool norm_first);
TFW_API tfw_status tfw_transformer_encoder_layer_forward(tfw_module *m, const tfw_tensor *src,
                                                         const tfw_tensor *src_mask,
                                                         const tfw_tensor *key_padding_mask,
                                                         bool is_causal, tfw_tensor **out);

#endif
