/* tenflower — functional normalisation, embedding and dropout (torch.nn.functional names and
 * argument semantics). Every function returns a new reference (or NULL with tfw_last_error()
 * set); tensor arguments are borrowed. All are differentiable (reverse and forward mode, and
 * double backward) with respect to their floating inputs. f16/bf16 compute in f32.
 * Errors: TFW_EVALUE (NULL input, bad eps/p/num_groups/padding_idx), TFW_EDTYPE (non-floating
 * input or weight, non-integer indices), TFW_ESHAPE (parameter or normalized_shape mismatch,
 * naming both shapes), TFW_EINDEX (embedding index out of range). */
#ifndef TENFLOWER_NN_FUNCTIONAL_NORM_H
#define TENFLOWER_NN_FUNCTIONAL_NORM_H

#include <stdint.h>

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* F.layer_norm: normalises over the last n dims, which must equal normalized_shape (n >= 1);
 * weight and bias (NULL = none) have shape normalized_shape. eps >= 0 (PyTorch: 1e-5). */
TFW_API tfw_tensor *tfw_layer_norm(const tfw_tensor *input, int n, const int64_t *normalized_shape,
                                   const tfw_tensor *weight, const tfw_tensor *bias, double eps);
/* RMS norm (torch.nn.functional.rms_norm): x / sqrt(mean(x^2 over the last n dims) + eps) *
 * weight (NULL = none). PyTorch's eps=None is the dtype's machine epsilon: pass it explicitly. */
TFW_API tfw_tensor *tfw_rms_norm(const tfw_tensor *input, int n, const int64_t *normalized_shape,
                                 const tfw_tensor *weight, double eps);
/* F.group_norm: input [N, C, *], C divisible by num_groups (> 0); weight, bias: [C] or NULL. */
TFW_API tfw_tensor *tfw_group_norm(const tfw_tensor *input, int64_t num_groups,
                                   const tfw_tensor *weight, const tfw_tensor *bias, double eps);
/* F.batch_norm: input [N, C, *]; running_mean / running_var [C] or both NULL; weight, bias
 * [C] or NULL. training (or no running stats): normalises with the batch statistics over
 * every dim but 1 (biased variance) and, when running stats are given, updates them in place
 * (not recorded by autograd): running = (1 - momentum) * running + momentum * batch, with the
 * unbiased batch variance. Eval: uses the running stats. Training needs more than one value
 * per channel (TFW_EVALUE). */
TFW_API tfw_tensor *tfw_batch_norm(const tfw_tensor *input, tfw_tensor *running_mean,
                                   tfw_tensor *running_var, const tfw_tensor *weight,
                                   const tfw_tensor *bias, bool training, double momentum,
                                   double eps);
/* padding_idx value meaning "none" for tfw_embedding. */
#define TFW_EMBEDDING_NO_PADDING INT64_MIN
/* F.embedding(input, weight, padding_idx, max_norm, norm_type): rows of weight [V, D] picked
 * by the int64/int32 indices input (any shape) -> input.shape + [D]. padding_idx (may be
 * negative, from the end; TFW_EMBEDDING_NO_PADDING for none): that row gets no gradient.
 * max_norm > 0 (0 = none): the looked-up rows of weight whose norm_type-norm exceeds max_norm
 * are rescaled in place to max_norm first (not recorded by autograd), like PyTorch. An index
 * outside [0, V) is TFW_EINDEX ("embedding: index 12 out of range for 10 embeddings"). */
TFW_API tfw_tensor *tfw_embedding(const tfw_tensor *input, tfw_tensor *weight, int64_t padding_idx,
                                  double max_norm, double norm_type);
/* F.dropout: in training, zeroes each element with probability p (0 <= p <= 1) and scales
 * the rest by 1 / (1 - p); p = 1 gives zeros; eval or p = 0 returns input itself (retained).
 * The mask comes from the global Philox generator with tfw_rand's f32 semantics (element i
 * is kept iff tfw_rand's value i < 1 - p), so tfw_rng_get_state / tfw_rng_set_state replay
 * it exactly; backward and recomputation reuse the same mask. */
TFW_API tfw_tensor *tfw_dropout(const tfw_tensor *input, double p, bool training);

#ifdef __cplusplus
}
#endif
#endif
