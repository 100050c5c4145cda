/* tenflower — automatic differentiation (reverse mode).
 *
 * Tensors that require grad record, for every differentiable op applied to them, a node in a
 * graph; tfw_backward() walks the graph from a result back to the leaves and accumulates
 * gradients into their .grad. Backward rules are written with tenflower's own ops, so with
 * create_graph the backward pass is itself recorded and can be differentiated again. Only
 * floating-point tensors can require grad. Grad mode is per thread. */
#ifndef TENFLOWER_AUTOGRAD_H
#define TENFLOWER_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Marks t as a leaf that requires grad (or not). TFW_EDTYPE for non-floating tensors;
 * TFW_ESTATE when t is not a leaf (it already has a grad_fn). */
TFW_API tfw_status tfw_tensor_set_requires_grad(tfw_tensor *t, bool requires_grad);
TFW_API bool tfw_tensor_requires_grad(const tfw_tensor *t);
/* True for tensors created by the user (no grad_fn). */
TFW_API bool tfw_tensor_is_leaf(const tfw_tensor *t);
/* The accumulated gradient of a leaf (new reference), or NULL if there is none yet. */
TFW_API tfw_tensor *tfw_tensor_grad(const tfw_tensor *t);
/* Drops the accumulated gradient (PyTorch's zero_grad(set_to_none=True)). */
TFW_API void tfw_tensor_zero_grad(tfw_tensor *t);
/* The name of the op that produced t ("mul", ...), or NULL for leaves. Borrowed. */
TFW_API const char *tfw_tensor_grad_fn_name(const tfw_tensor *t);
/* A view of t's data that does not require grad and has no history. */
TFW_API tfw_tensor *tfw_detach(const tfw_tensor *t);

/* Grad mode (per thread, on by default): with it off, ops record nothing. Returns the
 * previous setting, so a no_grad scope is
 *   bool prev = tfw_set_grad_enabled(false); ... tfw_set_grad_enabled(prev);  */
TFW_API bool tfw_set_grad_enabled(bool enabled);
TFW_API bool tfw_grad_enabled(void);

/* Accumulates d(output)/d(leaf) * grad_output into every leaf's .grad. grad_output may be
 * NULL when output has one element (it is then 1). retain_graph keeps the saved tensors so
 * that backward can run again; create_graph records the backward pass for higher-order
 * derivatives (it implies retain_graph). */
TFW_API tfw_status tfw_backward(tfw_tensor *output, const tfw_tensor *grad_output,
                                bool retain_graph, bool create_graph);

/* Returns in grads[i] (new references) the gradients of sum_k <outputs[k], grad_outputs[k]>
 * with respect to inputs[i], without touching .grad. grad_outputs may be NULL (all outputs
 * must then have one element). An input that the outputs do not depend on is an error
 * (TFW_EVALUE) unless allow_unused, in which case its gradient is NULL. */
TFW_API tfw_status tfw_grad(int n_outputs, tfw_tensor *const *outputs, int n_inputs,
                            tfw_tensor *const *inputs, tfw_tensor *const *grad_outputs,
                            bool retain_graph, bool create_graph, bool allow_unused,
                            tfw_tensor **grads);

/* Gradient hook: called with the gradient flowing into t during backward; return NULL to
 * keep it, or a new reference to replace it. */
typedef tfw_tensor *(*tfw_grad_hook_fn)(const tfw_tensor *grad, void *ctx);
TFW_API tfw_status tfw_tensor_register_hook(tfw_tensor *t, tfw_grad_hook_fn fn, void *ctx);

/* ---- forward mode and function transforms --------------------------------------------- */

/* Attaches a tangent (the dual part of a dual number) to t; NULL removes it. Ops on tensors
 * with tangents propagate them through each op's JVP rule (docs/ops.md, "forward" column). */
TFW_API tfw_status tfw_tensor_set_tangent(tfw_tensor *t, const tfw_tensor *tangent);
/* t's tangent (new reference), or NULL if it has none. */
TFW_API tfw_tensor *tfw_tensor_tangent(const tfw_tensor *t);

/* A function of tensors for the transforms below: fill out[0..n_out) with new references
 * and return TFW_OK, or return an error status. */
typedef tfw_status (*tfw_fn)(void *ctx, int n_in, tfw_tensor *const *in, int n_out,
                             tfw_tensor **out);

/* Forward mode: outputs = fn(inputs) and out_tangents = J(inputs) . tangents (tangents[i]
 * may be NULL = zero). The inputs are not modified. */
TFW_API tfw_status tfw_jvp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs,
                           tfw_tensor *const *tangents, int n_out, tfw_tensor **outputs,
                           tfw_tensor **out_tangents);
/* Reverse mode: outputs = fn(inputs) and grads[i] = cotangents . J_i (cotangents may be
 * NULL when every output has one element). */
TFW_API tfw_status tfw_vjp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs, int n_out,
                           tfw_tensor **outputs, tfw_tensor *const *cotangents,
                           tfw_tensor **grads);
/* Hessian-vector product of a scalar function, forward-over-reverse: hvp[i] = sum_j H_ij v_j. */
TFW_API tfw_status tfw_hvp(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs,
                           tfw_tensor *const *v, tfw_tensor **hvp);
/* The Jacobian of a one-input, one-output function: shape [*out_shape, *in_shape] (at most 8
 * dims in all), built column by column with forward mode. */
TFW_API tfw_status tfw_jacobian(tfw_fn fn, void *ctx, const tfw_tensor *input, tfw_tensor **jac);

/* ---- activation checkpointing and anomaly mode ----------------------------------------- */

/* Activation checkpointing: outputs = fn(inputs), computed with grad mode off so that no
 * intermediate activation is kept; one graph node records the call. Its backward re-runs
 * fn from the saved inputs with grad mode on and the global RNG state (tfw_rng_get_state)
 * set back to what it was at the forward, so random ops (dropout masks) draw the same
 * numbers, then backpropagates through the recomputed graph into the inputs: gradients
 * are bit-identical to running fn without checkpointing. Every tensor fn uses that needs
 * a gradient must be among the inputs (backward fails with TFW_EVALUE if fn reads one from
 * ctx); ctx must stay valid until the graph is freed. At most 8 inputs and 2 outputs
 * (TFW_EVALUE otherwise). When grad mode is off or no input requires grad, this is just
 * fn(inputs). Double backward (create_graph) through a checkpoint is TFW_EUNSUPPORTED.
 * outputs[0..n_out) receive new references. */
TFW_API tfw_status tfw_checkpoint(tfw_fn fn, void *ctx, int n_in, tfw_tensor *const *inputs,
                                  int n_out, tfw_tensor **outputs);

/* Anomaly mode (process-wide, off by default; a debugging aid, it reads every result):
 * - forward: an op whose floating outputs hold NaN (or Inf) while its inputs held none fails
 *   with TFW_EVALUE, e.g. "anomaly: log (forward) produced NaN/Inf from inputs of shape
 *   [3, 4] (output 0 holds Inf)"; ops without tensor inputs (full, arange) are not checked;
 * - backward: a backward rule that returns a gradient holding NaN/Inf fails the backward
 *   with TFW_EVALUE naming the op, the input and the input shapes. */
TFW_API void tfw_set_anomaly_mode(bool on);
TFW_API bool tfw_anomaly_mode(void);

#ifdef __cplusplus
}
#endif
#endif
