/* tenflower — a GPT-2-style decoder-only language model (pre-norm Transformer) with
 * incremental (KV-cached) generation.
 *
 *   logits = lm_head(norm(blocks(dropout(tok_emb(idx) + pos_emb(0 .. T-1)))))
 *
 * where each block is a torch.nn.TransformerEncoderLayer(n_embd, n_head, ff_dim, dropout,
 * activation "gelu" (exact erf form), batch_first = true, norm_first = true) run with the
 * causal mask: x = x + dropout(attn(ln1(x))); x = x + dropout(W2 dropout(gelu(W1 ln2(x)))).
 * With tie_weights the LM head is the token embedding (logits = x tok_emb.weight^T) and has
 * no parameter of its own.
 *
 * state_dict keys (PyTorch's, so the same model written with torch.nn loads as it is):
 *   tok_emb.weight [V, C], pos_emb.weight [context, C],
 *   blocks.<i>.self_attn.in_proj_weight [3C, C], blocks.<i>.self_attn.in_proj_bias [3C],
 *   blocks.<i>.self_attn.out_proj.{weight [C, C], bias}, blocks.<i>.linear1.{weight [F, C],
 *   bias}, blocks.<i>.linear2.{weight [C, F], bias}, blocks.<i>.norm1/norm2.{weight, bias},
 *   norm.{weight, bias}, and lm_head.weight [V, C] when the head is not tied.
 * Initialisation (GPT-2's): every matrix and embedding N(0, 0.02), the residual output
 * projections (self_attn.out_proj.weight, linear2.weight) N(0, 0.02 / sqrt(2 n_layer)),
 * biases 0, LayerNorms weight 1 / bias 0; drawn from the global generator (tfw_manual_seed).
 * See docs/examples.md (examples/char_gpt.c trains one on a book). */
#ifndef TENFLOWER_NN_GPT_H
#define TENFLOWER_NN_GPT_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfw_gpt_config {
  int64_t vocab_size; /* V >= 1 */
  int64_t context;    /* the longest sequence (positions of pos_emb) >= 1 */
  int64_t n_layer;    /* >= 1 */
  int64_t n_head;     /* >= 1, divides n_embd */
  int64_t n_embd;     /* C >= 1 */
  int64_t ff_dim;     /* hidden width of the MLP; 0 means 4 * n_embd */
  double dropout;     /* in [0, 1): embeddings, attention weights, residual branches, MLP */
  double layer_norm_eps; /* 1e-5 */
  bool tie_weights;   /* LM head = token embedding (true) */
} tfw_gpt_config;

/* vocab_size V with the defaults: context 128, 4 layers, 4 heads, width 256, ff 4 x 256,
 * dropout 0.1, eps 1e-5, tied head. */
TFW_API tfw_gpt_config tfw_gpt_config_default(int64_t vocab_size);
/* A new GPT module (one reference; tfw_module_release). NULL with TFW_EVALUE naming the
 * field (sizes < 1, n_embd % n_head != 0, dropout outside [0, 1)) or TFW_ENOMEM. */
TFW_API tfw_module *tfw_gpt_new(const tfw_gpt_config *cfg);
/* The configuration m was made with. TFW_EVALUE when m is not a GPT. */
TFW_API tfw_status tfw_gpt_get_config(const tfw_module *m, tfw_gpt_config *cfg);
/* Logits [B, T, V] (f32, recorded for autograd) of token ids idx [B, T] (or [T] -> [T, V]),
 * int64 or int32, 1 <= T <= context. Dropout applies in training mode (tfw_module_train).
 * Also the module's forward (1 input, 1 output). NULL with TFW_EVALUE (not a GPT, NULL),
 * TFW_EDTYPE (idx not integer), TFW_ESHAPE (rank, T), TFW_EINDEX (an id outside [0, V)). */
TFW_API tfw_tensor *tfw_gpt_forward(tfw_module *m, const tfw_tensor *idx);

typedef struct tfw_gpt_sampling {
  double temperature; /* > 0: sample from softmax(logits / temperature); <= 0: greedy argmax
                         (the lowest id among equal maxima) */
  int64_t top_k;      /* > 0: sample among the k largest logits only; 0: all */
  uint64_t seed;      /* the sampler's own generator (splitmix64): same seed, same text */
  bool use_cache;     /* true: incremental decoding with a KV cache per layer; false: a full
                         causal forward over the window for every new token (the reference) */
} tfw_gpt_sampling;
/* temperature 1, top_k 0, seed 0, use_cache true. */
TFW_API tfw_gpt_sampling tfw_gpt_sampling_default(void);
/* Continues prompt[0 .. n_prompt) (n_prompt >= 1 ids in [0, V)) by n_new tokens, written to
 * out[0 .. n_new). Runs without gradients and without dropout (whatever m's mode, which is
 * left as it was). The model sees at most `context` tokens: without the cache, the last
 * context tokens each step (a sliding window); with the cache, the cache is filled until it
 * holds context positions, then rebuilt from the last context / 2 tokens (so each token costs
 * O(context) attention work, and the results equal the uncached ones exactly as long as
 * n_prompt + n_new <= context + 1). Errors: TFW_EVALUE (NULL, not a GPT, n_prompt < 1,
 * n_new < 0), TFW_EINDEX (a prompt id out of range), TFW_ENOMEM. */
TFW_API tfw_status tfw_gpt_generate(tfw_module *m, int64_t n_prompt, const int64_t *prompt,
                                    int64_t n_new, const tfw_gpt_sampling *sampling,
                                    int64_t *out);

#ifdef __cplusplus
}
#endif
#endif
