/* Internal interface of the activation ops (activation.c), for their autograd rules. */
#ifndef TFW_ACTIVATION_H
#define TFW_ACTIVATION_H

#include "ops/registry.h"

/* Runs activation op id on x with attributes f[0] = f0, f[1] = f1 (new reference or NULL). */
tfw_tensor *tfw__act(tfw__op_id id, const tfw_tensor *x, double f0, double f1);

/* g * gelu'(x) for the exact gelu, fused (op gelu_backward; not differentiable itself). */
tfw_tensor *tfw__gelu_backward(const tfw_tensor *x, const tfw_tensor *g);

#endif
