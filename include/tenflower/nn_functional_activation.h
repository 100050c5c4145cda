/* tenflower — activation functions (PyTorch's torch.nn.functional names and semantics).
 * Every function returns a new reference (the caller releases it) or NULL with the error set
 * (tfw_last_error): TFW_EVALUE for a NULL tensor or a bad parameter, TFW_EDTYPE for a
 * non-floating input, TFW_ESHAPE/TFW_EINDEX for glu's dim. Floating dtypes only (f16/bf16
 * computed in f32); differentiable (backward, double backward, forward mode). */
#ifndef TENFLOWER_NN_FUNCTIONAL_ACTIVATION_H
#define TENFLOWER_NN_FUNCTIONAL_ACTIVATION_H

#include "tensor.h"

TFW_API tfw_tensor *tfw_leaky_relu(const tfw_tensor *x, double negative_slope); /* 0.01 in torch */
TFW_API tfw_tensor *tfw_elu(const tfw_tensor *x, double alpha);                 /* 1.0 */
TFW_API tfw_tensor *tfw_selu(const tfw_tensor *x);
TFW_API tfw_tensor *tfw_celu(const tfw_tensor *x, double alpha);  /* alpha != 0 */
TFW_API tfw_tensor *tfw_gelu_tanh(const tfw_tensor *x);           /* F.gelu(x, approximate='tanh') */
TFW_API tfw_tensor *tfw_silu(const tfw_tensor *x);
TFW_API tfw_tensor *tfw_mish(const tfw_tensor *x);
TFW_API tfw_tensor *tfw_hardswish(const tfw_tensor *x);
TFW_API tfw_tensor *tfw_hardsigmoid(const tfw_tensor *x);
/* log(1 + exp(beta x)) / beta, x where beta x > threshold (torch: beta 1, threshold 20) */
TFW_API tfw_tensor *tfw_softplus(const tfw_tensor *x, double beta, double threshold);
TFW_API tfw_tensor *tfw_softsign(const tfw_tensor *x);
/* a * sigmoid(b), (a, b) the halves of x along dim (its size must be even) */
TFW_API tfw_tensor *tfw_glu(const tfw_tensor *x, int dim);
/* Gated variants (composites of registered ops, as in GLU-variant transformers): with (a, b)
 * the halves of x along dim, a * gelu(b) (exact erf gelu), a * silu(b), a * relu(b). */
TFW_API tfw_tensor *tfw_geglu(const tfw_tensor *x, int dim);
TFW_API tfw_tensor *tfw_swiglu(const tfw_tensor *x, int dim);
TFW_API tfw_tensor *tfw_reglu(const tfw_tensor *x, int dim);

#endif
