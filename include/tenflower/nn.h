/* tenflower — neural-network modules: named parameters, buffers and children, train/eval,
 * state_dict with PyTorch's key names, hooks, initialisers, and the built-in layers.
 *
 * A module is a reference-counted object with a vtable (its forward) and an implementation
 * struct. Parameter, buffer and child names follow PyTorch, so state_dict keys are the same
 * dotted paths ("0.weight", "encoder.layers.1.norm.bias") and weights move between the two
 * through safetensors. */
#ifndef TENFLOWER_NN_H
#define TENFLOWER_NN_H

#include "autograd.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tfw_module tfw_module;

typedef struct tfw_module_vtable {
  const char *type_name; /* "Linear" */
  /* Computes out[0..n_out) (new references) from in[0..n_in). */
  tfw_status (*forward)(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                        tfw_tensor **out);
  /* Frees the implementation struct (parameters, buffers, children are released by the core). */
  void (*destroy)(void *impl);
} tfw_module_vtable;

/* ---- building modules ----------------------------------------------------------------- */
/* A new module (one reference) with vtable vt and implementation impl (owned: passed to
 * vt->destroy on release; may be NULL). NULL on out of memory. */
TFW_API tfw_module *tfw_module_new(const tfw_module_vtable *vt, void *impl);
TFW_API void *tfw_module_impl(const tfw_module *m);
TFW_API tfw_module *tfw_module_retain(tfw_module *m);
TFW_API void tfw_module_release(tfw_module *m); /* NULL is a no-op */
TFW_API const char *tfw_module_type(const tfw_module *m);
/* Registers p (retained) as parameter name (no dots); marks it requires_grad. Replaces an
 * existing parameter of the same name (shape may change). p may be NULL (e.g. bias=False):
 * then the name is reserved and skipped by iteration and state_dict, as in PyTorch. */
TFW_API tfw_status tfw_module_register_parameter(tfw_module *m, const char *name, tfw_tensor *p);
/* Registers b (retained) as a buffer; non-persistent buffers stay out of state_dict. */
TFW_API tfw_status tfw_module_register_buffer(tfw_module *m, const char *name, tfw_tensor *b,
                                              bool persistent);
/* Registers child (retained) under name. */
TFW_API tfw_status tfw_module_register_module(tfw_module *m, const char *name, tfw_module *child);
/* Borrowed lookups by dotted path ("0.weight", "layers.1"); NULL if absent. */
TFW_API tfw_tensor *tfw_module_get_parameter(const tfw_module *m, const char *path);
TFW_API tfw_tensor *tfw_module_get_buffer(const tfw_module *m, const char *path);
TFW_API tfw_module *tfw_module_get_child(const tfw_module *m, const char *path);

/* ---- using modules ------------------------------------------------------------------------ */
/* Runs forward pre-hooks, the forward, then forward hooks. */
TFW_API tfw_status tfw_module_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                      tfw_tensor **out);
/* One input, one output: returns the output (new reference) or NULL. */
TFW_API tfw_tensor *tfw_module_call(tfw_module *m, const tfw_tensor *x);
/* Sets training mode on m and all its descendants (eval: training = false). */
TFW_API void tfw_module_train(tfw_module *m, bool training);
TFW_API bool tfw_module_is_training(const tfw_module *m);
/* Drops the .grad of every parameter (zero_grad(set_to_none=True)). */
TFW_API void tfw_module_zero_grad(tfw_module *m);
/* Calls fn on every descendant, then on m (PyTorch's Module.apply order); stops at the first
 * error and returns it. */
TFW_API tfw_status tfw_module_apply(tfw_module *m, tfw_status (*fn)(tfw_module *m, void *ctx),
                                    void *ctx);

/* ---- named tensors and state_dict ------------------------------------------------------------ */
typedef struct tfw_named_tensor {
  char *name;         /* dotted path, owned by the list */
  tfw_tensor *tensor; /* a reference owned by the list */
} tfw_named_tensor;
/* Frees a list returned by the functions below (releases the tensors). */
TFW_API void tfw_named_tensors_free(tfw_named_tensor *list, int count);
/* Parameters of m and its descendants, in registration order, depth first (PyTorch's order),
 * each tensor once even if shared. The tensors are the parameters themselves. */
TFW_API tfw_status tfw_module_named_parameters(const tfw_module *m, tfw_named_tensor **out,
                                               int *count);
TFW_API tfw_status tfw_module_named_buffers(const tfw_module *m, tfw_named_tensor **out,
                                            int *count);
TFW_API int64_t tfw_module_num_parameters(const tfw_module *m); /* total elements */
/* Parameters and persistent buffers, detached (no history), PyTorch key order. */
TFW_API tfw_status tfw_module_state_dict(const tfw_module *m, tfw_named_tensor **out, int *count);
/* Copies the given tensors into m's parameters and buffers (with a cast to their dtype).
 * strict: missing keys, unexpected keys and shape mismatches fail with TFW_EVALUE and a
 * message listing them all by name; nothing is copied then. Not strict: shape mismatches
 * still fail; missing/unexpected keys are skipped. report (may be NULL) receives a
 * malloc'd description of missing/unexpected keys (free with tfw_string_free). */
TFW_API tfw_status tfw_module_load_state_dict(tfw_module *m, int n, const tfw_named_tensor *sd,
                                              bool strict, char **report);

/* ---- hooks ----------------------------------------------------------------------------------- */
/* Called after forward with the inputs and outputs; may not replace outputs. */
typedef void (*tfw_forward_hook_fn)(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                    tfw_tensor *const *out, void *ctx);
/* Called before forward with the inputs. */
typedef void (*tfw_forward_pre_hook_fn)(tfw_module *m, int n_in, tfw_tensor *const *in, void *ctx);
/* Called during backward with the gradient of output k of the module. */
typedef void (*tfw_backward_hook_fn)(tfw_module *m, int k, const tfw_tensor *grad_output, void *ctx);
TFW_API tfw_status tfw_module_register_forward_hook(tfw_module *m, tfw_forward_hook_fn fn, void *ctx);
TFW_API tfw_status tfw_module_register_forward_pre_hook(tfw_module *m, tfw_forward_pre_hook_fn fn,
                                                        void *ctx);
TFW_API tfw_status tfw_module_register_backward_hook(tfw_module *m, tfw_backward_hook_fn fn,
                                                     void *ctx);

/* ---- initialisers (in place, under no-grad; PyTorch's torch.nn.init) -------------------------- */
typedef enum tfw_fan_mode { TFW_FAN_IN, TFW_FAN_OUT } tfw_fan_mode;
/* gain for a nonlinearity: "linear", "conv1d", "conv2d", "sigmoid", "tanh", "relu",
 * "leaky_relu" (param = negative slope), "selu" (PyTorch's calculate_gain). -1 if unknown. */
TFW_API double tfw_init_calculate_gain(const char *nonlinearity, double param);
/* fan_in / fan_out as PyTorch computes them (dim 1 and dim 0 times the receptive field). */
TFW_API tfw_status tfw_init_fans(const tfw_tensor *t, int64_t *fan_in, int64_t *fan_out);
TFW_API tfw_status tfw_init_uniform_(tfw_tensor *t, double a, double b);
TFW_API tfw_status tfw_init_normal_(tfw_tensor *t, double mean, double std);
TFW_API tfw_status tfw_init_constant_(tfw_tensor *t, double value);
TFW_API tfw_status tfw_init_zeros_(tfw_tensor *t);
TFW_API tfw_status tfw_init_ones_(tfw_tensor *t);
TFW_API tfw_status tfw_init_xavier_uniform_(tfw_tensor *t, double gain);
TFW_API tfw_status tfw_init_xavier_normal_(tfw_tensor *t, double gain);
TFW_API tfw_status tfw_init_kaiming_uniform_(tfw_tensor *t, double a, tfw_fan_mode mode,
                                             const char *nonlinearity);
TFW_API tfw_status tfw_init_kaiming_normal_(tfw_tensor *t, double a, tfw_fan_mode mode,
                                            const char *nonlinearity);
/* Normal(mean, std) truncated to [a, b] (redrawn, not clamped). */
TFW_API tfw_status tfw_init_trunc_normal_(tfw_tensor *t, double mean, double std, double a, double b);
/* A (semi-)orthogonal matrix from the QR decomposition of a normal matrix, times gain. */
TFW_API tfw_status tfw_init_orthogonal_(tfw_tensor *t, double gain);

/* ---- layers --------------------------------------------------------------------------------- */
/* y = x W^T + b; weight [out, in] ("weight"), bias [out] ("bias"); PyTorch's default init
 * (kaiming_uniform with a = sqrt(5), bias U(-1/sqrt(in), 1/sqrt(in))). */
TFW_API tfw_module *tfw_linear_new(int64_t in_features, int64_t out_features, bool bias);
/* Children named "0", "1", ... run in order (each one input, one output). */
TFW_API tfw_module *tfw_sequential_new(int n, tfw_module *const *modules);
TFW_API tfw_status tfw_sequential_append(tfw_module *seq, tfw_module *module);
/* y = x + body(x); the child is named "body". */
TFW_API tfw_module *tfw_residual_new(tfw_module *body);
/* Activation modules without parameters: "relu", "gelu", "tanh", "sigmoid", "identity". */
TFW_API tfw_module *tfw_activation_new(const char *name);

/* Normalisation (weight 1, bias 0, eps e.g. 1e-5), as torch.nn.LayerNorm / RMSNorm /
 * GroupNorm; parameters "weight", "bias". */
TFW_API tfw_module *tfw_layer_norm_new(int n, const int64_t *normalized_shape, double eps,
                                       bool elementwise_affine);
TFW_API tfw_module *tfw_rms_norm_new(int n, const int64_t *normalized_shape, double eps,
                                     bool elementwise_affine);
TFW_API tfw_module *tfw_group_norm_new(int64_t num_groups, int64_t num_channels, double eps,
                                       bool affine);
/* BatchNorm1d ([N, C] or [N, C, L]) / BatchNorm2d ([N, C, H, W]): parameters "weight",
 * "bias"; buffers "running_mean", "running_var", "num_batches_tracked" (PyTorch's names;
 * momentum e.g. 0.1). Training mode uses batch statistics and updates the running ones. */
TFW_API tfw_module *tfw_batch_norm1d_new(int64_t num_features, double eps, double momentum,
                                         bool affine, bool track_running_stats);
TFW_API tfw_module *tfw_batch_norm2d_new(int64_t num_features, double eps, double momentum,
                                         bool affine, bool track_running_stats);
/* Embedding: "weight" [num, dim] ~ N(0, 1), the padding_idx row zero (INT64_MIN = none);
 * max_norm 0 = none. */
TFW_API tfw_module *tfw_embedding_new(int64_t num_embeddings, int64_t embedding_dim,
                                      int64_t padding_idx, double max_norm);
/* Dropout(p): active in training mode only. */
TFW_API tfw_module *tfw_dropout_new(double p);
/* Convolutions (PyTorch names and default init). Array arguments have one entry per spatial
 * dim; NULL stride/dilation = 1, NULL padding = 0; padding_same = PyTorch's padding='same'
 * (stride 1). Transposed weights are [in, out/groups, k...]. */
TFW_API tfw_module *tfw_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
                                   int64_t stride, int64_t padding, int64_t dilation,
                                   int64_t groups, bool bias);
TFW_API tfw_module *tfw_conv2d_new(int64_t in_channels, int64_t out_channels,
                                   const int64_t *kernel_size, const int64_t *stride,
                                   const int64_t *padding, const int64_t *dilation,
                                   int64_t groups, bool bias, bool padding_same);
TFW_API tfw_module *tfw_conv_transpose2d_new(int64_t in_channels, int64_t out_channels,
                                             const int64_t *kernel_size, const int64_t *stride,
                                             const int64_t *padding,
                                             const int64_t *output_padding, int64_t groups,
                                             bool bias, const int64_t *dilation);
/* Pooling: stride NULL or 0 = kernel size. */
TFW_API tfw_module *tfw_max_pool2d_new(const int64_t *kernel_size, const int64_t *stride,
                                       const int64_t *padding, bool ceil_mode);
TFW_API tfw_module *tfw_avg_pool2d_new(const int64_t *kernel_size, const int64_t *stride,
                                       const int64_t *padding, bool ceil_mode);
TFW_API tfw_module *tfw_adaptive_avg_pool2d_new(const int64_t *output_size);
TFW_API tfw_module *tfw_max_pool1d_new(int64_t kernel_size, int64_t stride, int64_t padding,
                                       bool ceil_mode);
TFW_API tfw_module *tfw_avg_pool1d_new(int64_t kernel_size, int64_t stride, int64_t padding,
                                       bool ceil_mode);
/* Flatten(start_dim, end_dim), PyTorch's defaults are 1 and -1. */
TFW_API tfw_module *tfw_flatten_new(int start_dim, int end_dim);

#ifdef __cplusplus
}
#endif
#endif
