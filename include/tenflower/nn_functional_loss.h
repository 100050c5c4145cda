/* tenflower — loss functions (PyTorch's torch.nn.functional names and semantics).
 * reduction is "none", "mean" or "sum" (kl_div also "batchmean"); anything else is TFW_EVALUE.
 * Every function returns a new reference (the caller releases it), or NULL with the error
 * set: TFW_EVALUE (NULL tensor, bad reduction or parameter), TFW_EDTYPE, TFW_ESHAPE (input and
 * target shapes differ), TFW_EINDEX (class target out of range, e.g. "cross_entropy: target 7
 * out of range for 5 classes at index 3"). All are differentiable in their floating inputs
 * (backward, double backward, forward mode); class-index targets get no gradient, nor does the
 * class weight of cross_entropy/nll_loss (TFW_EUNSUPPORTED if it requires grad, as in PyTorch).
 * cross_entropy is one fused op (log-softmax + NLL, and its gradient); the others are
 * composites of registered ops. */
#ifndef TENFLOWER_NN_FUNCTIONAL_LOSS_H
#define TENFLOWER_NN_FUNCTIONAL_LOSS_H

#include "tensor.h"

/* input [N, C, d...] or [C] logits; target: integer class indices [N, d...] (values in [0, C)
 * or ignore_index) or float class probabilities shaped like input; weight: [C] or NULL;
 * label_smoothing in [0, 1]. PyTorch defaults: "mean", ignore_index -100, smoothing 0. */
TFW_API tfw_tensor *tfw_cross_entropy(const tfw_tensor *input, const tfw_tensor *target,
                                      const tfw_tensor *weight, const char *reduction,
                                      int64_t ignore_index, double label_smoothing);
/* input: log-probabilities [N, C, d...] or [C]; target integer classes */
TFW_API tfw_tensor *tfw_nll_loss(const tfw_tensor *input, const tfw_tensor *target,
                                 const tfw_tensor *weight, const char *reduction,
                                 int64_t ignore_index);
TFW_API tfw_tensor *tfw_mse_loss(const tfw_tensor *input, const tfw_tensor *target,
                                 const char *reduction);
TFW_API tfw_tensor *tfw_l1_loss(const tfw_tensor *input, const tfw_tensor *target,
                                const char *reduction);
TFW_API tfw_tensor *tfw_smooth_l1_loss(const tfw_tensor *input, const tfw_tensor *target,
                                       const char *reduction, double beta); /* beta 1.0 */
TFW_API tfw_tensor *tfw_huber_loss(const tfw_tensor *input, const tfw_tensor *target,
                                   const char *reduction, double delta); /* delta 1.0 */
/* input probabilities in [0, 1]; weight (NULL or broadcastable) multiplies each element */
TFW_API tfw_tensor *tfw_binary_cross_entropy(const tfw_tensor *input, const tfw_tensor *target,
                                             const tfw_tensor *weight, const char *reduction);
/* numerically stable for any logit; pos_weight (NULL or broadcastable, per class) */
TFW_API tfw_tensor *tfw_binary_cross_entropy_with_logits(const tfw_tensor *input,
                                                         const tfw_tensor *target,
                                                         const tfw_tensor *weight,
                                                         const tfw_tensor *pos_weight,
                                                         const char *reduction);
/* input log-probabilities; target probabilities (log-probabilities when log_target) */
TFW_API tfw_tensor *tfw_kl_div(const tfw_tensor *input, const tfw_tensor *target,
                               const char *reduction, bool log_target);
/* x1, x2 [N, D] (or [D]); target [N] of 1 / -1 */
TFW_API tfw_tensor *tfw_cosine_embedding_loss(const tfw_tensor *x1, const tfw_tensor *x2,
                                              const tfw_tensor *target, double margin,
                                              const char *reduction);
TFW_API tfw_tensor *tfw_margin_ranking_loss(const tfw_tensor *x1, const tfw_tensor *x2,
                                            const tfw_tensor *target, double margin,
                                            const char *reduction);
/* anchor, positive, negative [N, D] or [D]; torch defaults margin 1, p 2, eps 1e-6 */
TFW_API tfw_tensor *tfw_triplet_margin_loss(const tfw_tensor *anchor, const tfw_tensor *positive,
                                            const tfw_tensor *negative, double margin, double p,
                                            double eps, bool swap, const char *reduction);

#endif
