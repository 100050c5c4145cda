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

/* Makes m apply rotary position embeddings (RoPE, tfw_apply_rotary's half-split convention,
 * this base; 0 turns it off) to the per-head queries and keys after the in-projection:
 * queries at positions 0 .. L-1 and keys at 0 .. S-1 in the full forward, offset by the
 * cache length in the cached forward. Not part of PyTorch's MultiheadAttention (LLaMA-style
 * models do this); the parameters and state_dict do not change. Errors: TFW_EVALUE (not a
 * MultiheadAttention, base < 0, odd head dim). */
TFW_API tfw_status tfw_multihead_attention_set_rotary(tfw_module *m, double base);

/* ---- KV cache for generation ------------------------------------------------------------------
 * A KV cache holds the projected keys and values of one attention layer's past positions,
 * preallocated as [N, H, max_len, hd] each, so that a sequence can be run one token (or one
 * chunk) at a time: each step projects only its new positions, appends their keys/values and
 * attends the new queries to everything cached so far (query at absolute position p sees keys
 * 0 .. p). The outputs equal those of the full causal forward over the whole sequence.
 * One cache per attention layer (a stack of L layers needs L caches). For a decoder layer the
 * cache also keeps the cross-attention keys/values of the memory, computed on the first step
 * after creation or reset.
 * The cached forwards are for inference: they run without recording autograd history and
 * without dropout (as in eval mode), whatever the module's mode. */
typedef struct tfw_kv_cache tfw_kv_cache;
/* A cache for m (a MultiheadAttention, or a Transformer encoder/decoder layer: its self_attn)
 * for batch size `batch` (1 for unbatched input) and up to max_len positions, in the dtype of
 * m's in_proj_weight. NULL with TFW_EVALUE (wrong module, sizes <= 0) or TFW_ENOMEM. */
TFW_API tfw_kv_cache *tfw_kv_cache_new(const tfw_module *m, int64_t batch, int64_t max_len);
TFW_API void tfw_kv_cache_free(tfw_kv_cache *cache); /* NULL is a no-op */
/* Forgets every position (and a decoder's memory keys/values); the buffers are kept. */
TFW_API void tfw_kv_cache_reset(tfw_kv_cache *cache);
TFW_API int64_t tfw_kv_cache_length(const tfw_kv_cache *cache);  /* positions cached */
TFW_API int64_t tfw_kv_cache_max_len(const tfw_kv_cache *cache);
/* Causal self-attention of x's T new positions (m's layout: [T, N, E], batch_first [N, T, E],
 * unbatched [T, E]) against the cached ones plus themselves; appends their keys/values.
 * *out: the attention output for the T positions, in x's layout. Errors: TFW_EVALUE (NULL
 * argument, not a MultiheadAttention, cache made for other sizes), TFW_ESHAPE (x's shape or
 * batch), TFW_EINDEX (the cache would exceed max_len: nothing is appended then). */
TFW_API tfw_status tfw_multihead_attention_forward_cached(tfw_module *m, const tfw_tensor *x,
                                                          tfw_kv_cache *cache, tfw_tensor **out);

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

/* The cached (incremental) form of the encoder layer with is_causal = true: a GPT-style
 * decoder-only block. src holds the T new positions (layout as above); *out the layer's
 * output for them, equal to the rows of the full causal forward. Errors as
 * tfw_multihead_attention_forward_cached. */
TFW_API tfw_status tfw_transformer_encoder_layer_forward_cached(tfw_module *m,
                                                                const tfw_tensor *src,
                                                                tfw_kv_cache *cache,
                                                                tfw_tensor **out);

/* torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward, dropout, activation
 * ("relu" or "gelu"), layer_norm_eps, batch_first, norm_first): children self_attn,
 * multihead_attn (cross-attention to the memory), linear1, dropout, linear2, norm1, norm2,
 * norm3, dropout1, dropout2, dropout3 with PyTorch's names (18 state_dict entries).
 * Post-norm: x = norm1(x + sa(x)); x = norm2(x + mha(x, memory)); x = norm3(x + ff(x)).
 * Pre-norm: x = x + sa(norm1(x)); x = x + mha(norm2(x), memory); x = x + ff(norm3(x)).
 * As a module: tfw_module_forward with 2 inputs (tgt, memory) and 1 output. */
TFW_API tfw_module *tfw_transformer_decoder_layer_new(int64_t d_model, int64_t nhead,
                                                      int64_t dim_feedforward, double dropout,
                                                      const char *activation, double eps,
                                                      bool batch_first, bool norm_first);
/* The full forward, as TransformerDecoderLayer.forward: tgt [T, N, E] (batch_first [N, T, E],
 * unbatched [T, E]), memory [S, N, E] likewise; tgt_mask / tgt_key_padding_mask for the
 * self-attention and memory_mask / memory_key_padding_mask for the cross-attention (each may
 * be NULL; MultiheadAttention's conventions), tgt_is_causal / memory_is_causal add the causal
 * mask. */
TFW_API tfw_status tfw_transformer_decoder_layer_forward(
    tfw_module *m, const tfw_tensor *tgt, const tfw_tensor *memory, const tfw_tensor *tgt_mask,
    const tfw_tensor *memory_mask, const tfw_tensor *tgt_key_padding_mask,
    const tfw_tensor *memory_key_padding_mask, bool tgt_is_causal, bool memory_is_causal,
    tfw_tensor **out);
/* The cached form with tgt_is_causal = true: tgt holds the T new positions; memory (and
 * memory_key_padding_mask, may be NULL) must stay the same from the first step after
 * tfw_kv_cache_new / tfw_kv_cache_reset on, since its keys/values are projected once then.
 * Errors as tfw_multihead_attention_forward_cached. */
TFW_API tfw_status tfw_transformer_decoder_layer_forward_cached(
    tfw_module *m, const tfw_tensor *tgt, const tfw_tensor *memory,
    const tfw_tensor *memory_key_padding_mask, tfw_kv_cache *cache, tfw_tensor **out);

#endif
