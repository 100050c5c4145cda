/* tenflower — attention functionals (PyTorch's torch.nn.functional names and semantics).
 * Every function returns a new reference (the caller releases it) or NULL with the error set
 * (tfw_last_error). */
#ifndef TENFLOWER_NN_FUNCTIONAL_ATTENTION_H
#define TENFLOWER_NN_FUNCTIONAL_ATTENTION_H

#include "tensor.h"

/* softmax(q k^T * scale + mask) v over the last two dims, batched over the leading dims, as
 * torch.nn.functional.scaled_dot_product_attention:
 *   q [B.., Lq, E], k [B.., Lk, E], v [B.., Lk, Ev] (same batch dims, same floating dtype;
 *   f16/bf16 computed in f32) -> [B.., Lq, Ev].
 *   attn_mask (may be NULL): broadcastable to [B.., Lq, Lk]; bool: true = take part, false =
 *   masked out; floating: added to the scores.
 *   dropout_p in [0, 1): dropout on the attention weights (drawn from the global Philox
 *   generator; the draw is recorded so backward uses the same mask). Applied whenever
 *   dropout_p > 0: pass 0 in evaluation.
 *   is_causal: query i sees keys j <= i (top-left aligned, as PyTorch); may be combined
 *   with attn_mask.
 *   scale: 0 means the default 1/sqrt(E).
 * A row whose keys are all masked out gives NaN (as softmax of all -inf does).
 * Runs a fused, tiled kernel (flash-attention style) that never stores the Lq x Lk matrix:
 * extra memory is linear in the sequence length. Differentiable (backward is fused too;
 * double backward and forward mode go through a composite of registered ops).
 * Errors: TFW_EVALUE (NULL tensor, dropout_p or scale out of range), TFW_EDTYPE (non-floating
 * q/k/v, dtypes differ, mask neither bool nor floating), TFW_ESHAPE (shapes disagree, mask
 * does not broadcast). */
TFW_API tfw_tensor *tfw_scaled_dot_product_attention(const tfw_tensor *q, const tfw_tensor *k,
                                                     const tfw_tensor *v,
                                                     const tfw_tensor *attn_mask,
                                                     double dropout_p, bool is_causal,
                                                     double scale);

/* Rotary position embedding (RoPE), GPT-NeoX / LLaMA "half-split" convention: the last dim D
 * (even) of x is split in halves x1 = x[..., :D/2], x2 = x[..., D/2:], and with
 * theta_i = pos * base^(-2i/D) (i < D/2),
 *   out[..., :D/2] = x1 cos(theta) - x2 sin(theta),  out[..., D/2:] = x2 cos(theta) + x1 sin(theta)
 * (rotate_half, as in HF transformers' apply_rotary_pos_emb; NOT the interleaved pairs of the
 * original RoFormer / GPT-J). x is [.., L, D]; positions (may be NULL: 0 .. L-1) is an integer
 * or floating tensor of L positions ([L]; broadcast over the batch dims). base: 10000 in
 * LLaMA. Applies the same rotation to q and to k (their last two dims may differ in L only
 * through positions: pass positions of length L for each). *q_out / *k_out receive new
 * references (k and k_out may be NULL to rotate q alone). Differentiable (composite).
 * Errors: TFW_EVALUE (NULL, base <= 0), TFW_ESHAPE (odd D, positions length != L). */
TFW_API tfw_status tfw_apply_rotary(const tfw_tensor *q, const tfw_tensor *k,
                                    const tfw_tensor *positions, double base, tfw_tensor **q_out,
                                    tfw_tensor **k_out);

#endif
