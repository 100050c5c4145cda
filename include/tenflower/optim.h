/* tenflower — optimizers, parameter groups, learning-rate schedulers, gradient clipping,
 * exponential moving average of weights, and dynamic loss scaling.
 *
 * Semantics follow PyTorch 1.13 (torch.optim, torch.optim.lr_scheduler,
 * torch.nn.utils.clip_grad_norm_, torch.cuda.amp.GradScaler); AdaBelief follows Zhuang et al.
 * 2020 as in the adabelief-pytorch reference (without rectification), Lion follows Chen et
 * al. 2023 as in the lion-pytorch reference. See docs/optim.md.
 *
 * An optimizer updates its parameters in place, under no-grad, in one fused pass (one loop
 * per element reading grad and state and writing param and state), bumping each parameter's
 * version counter. Parameters must be f32 or f64 leaf tensors; their state has their dtype.
 * Parameters without a gradient are skipped (their state and step count do not change).
 *
 * Objects here (tfw_optimizer, tfw_lr_scheduler, tfw_ema, tfw_grad_scaler) are plain owned
 * objects: the creator releases them with their _release function (NULL is a no-op). An
 * optimizer retains its parameters; a scheduler or scaler borrows its optimizer, which must
 * outlive it. */
#ifndef TENFLOWER_OPTIM_H
#define TENFLOWER_OPTIM_H

#include "nn.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- optimizers --------------------------------------------------------------------------- */
typedef enum tfw_optim_kind {
  TFW_OPTIM_SGD,       /* torch.optim.SGD */
  TFW_OPTIM_ADAM,      /* torch.optim.Adam (amsgrad flag) */
  TFW_OPTIM_ADAMW,     /* torch.optim.AdamW (amsgrad flag) */
  TFW_OPTIM_RMSPROP,   /* torch.optim.RMSprop */
  TFW_OPTIM_ADAGRAD,   /* torch.optim.Adagrad */
  TFW_OPTIM_ADABELIEF, /* AdaBelief (amsgrad flag; decoupled or L2 weight decay) */
  TFW_OPTIM_LION       /* Lion (decoupled weight decay) */
} tfw_optim_kind;

/* Hyperparameters of one parameter group. Fields an optimizer does not use are ignored
 * (and are not part of its state dict). Start from tfw_optim_defaults(kind), which gives
 * PyTorch's defaults (SGD's lr has none in PyTorch: 1e-3 here). */
typedef struct tfw_optim_options {
  double lr;           /* >= 0 */
  double weight_decay; /* >= 0; L2 (added to the gradient) except AdamW, Lion, and AdaBelief
                          with decoupled_weight_decay: p *= 1 - lr * weight_decay */
  double momentum;     /* SGD, RMSProp: >= 0 */
  double dampening;    /* SGD */
  bool nesterov;       /* SGD: needs momentum > 0 and dampening == 0 */
  double beta1, beta2; /* Adam, AdamW, AdaBelief, Lion: in [0, 1) */
  double eps;          /* Adam, AdamW, RMSProp, Adagrad, AdaBelief: >= 0 */
  bool amsgrad;        /* Adam, AdamW, AdaBelief */
  bool maximize;       /* ascend instead of descend */
  double alpha;        /* RMSProp smoothing constant, >= 0 */
  bool centered;       /* RMSProp */
  double lr_decay;     /* Adagrad, >= 0 */
  double initial_accumulator_value; /* Adagrad, >= 0 */
  bool decoupled_weight_decay;      /* AdaBelief (default true, as its reference) */
} tfw_optim_options;

typedef struct tfw_optimizer tfw_optimizer;

/* PyTorch's defaults for kind: SGD lr 1e-3 (PyTorch requires one), momentum 0; Adam lr 1e-3,
 * betas (0.9, 0.999), eps 1e-8; AdamW the same with weight_decay 1e-2; RMSProp lr 1e-2,
 * alpha 0.99, eps 1e-8; Adagrad lr 1e-2, eps 1e-10; AdaBelief lr 1e-3, betas (0.9, 0.999),
 * eps 1e-16, decoupled weight decay; Lion lr 1e-4, betas (0.9, 0.99). */
TFW_API tfw_optim_options tfw_optim_defaults(tfw_optim_kind kind);
TFW_API const char *tfw_optim_kind_name(tfw_optim_kind kind); /* "SGD", "AdamW", ... */

/* A new optimizer of kind with no parameter groups; defaults (may be NULL = tfw_optim_defaults)
 * are used by tfw_optimizer_add_param_group when it gets NULL options. NULL on error
 * (TFW_EVALUE for invalid options, naming the field and value). */
TFW_API tfw_optimizer *tfw_optimizer_new(tfw_optim_kind kind, const tfw_optim_options *defaults);
/* Appends a parameter group (params retained). opts NULL = the optimizer's defaults.
 * Errors: TFW_EVALUE (NULL/duplicate parameter, a parameter already in another group,
 * non-leaf parameter, invalid options), TFW_EDTYPE (parameter not f32/f64). n may be 0. */
TFW_API tfw_status tfw_optimizer_add_param_group(tfw_optimizer *opt, int n,
                                                 tfw_tensor *const *params,
                                                 const tfw_optim_options *opts);
/* tfw_optimizer_new + one group; NULL on error. */
TFW_API tfw_optimizer *tfw_optimizer_create(tfw_optim_kind kind, int n, tfw_tensor *const *params,
                                            const tfw_optim_options *opts);
/* Shorthands for the common cases (one group, other options at their defaults). */
TFW_API tfw_optimizer *tfw_sgd_new(int n, tfw_tensor *const *params, double lr, double momentum,
                                   double weight_decay, bool nesterov);
TFW_API tfw_optimizer *tfw_adam_new(int n, tfw_tensor *const *params, double lr,
                                    double weight_decay);
TFW_API tfw_optimizer *tfw_adamw_new(int n, tfw_tensor *const *params, double lr,
                                     double weight_decay);
/* Adds two groups with the parameters of m (each once): group A, the decayed ones, with
 * opts; group B, the rest, with opts but weight_decay 0. A parameter goes to B when it has
 * ndim <= 1 (biases, norm weights, scalars) or its owning module is a normalisation or an
 * embedding layer (type name containing "Norm", or "Embedding"). Both groups are always
 * added (possibly empty), A first. n_decay / n_no_decay (may be NULL) receive the counts. */
TFW_API tfw_status tfw_optimizer_add_module_params(tfw_optimizer *opt, const tfw_module *m,
                                                   const tfw_optim_options *opts, int *n_decay,
                                                   int *n_no_decay);

/* One update of every parameter that has a gradient. TFW_EVALUE if a gradient's shape
 * differs from its parameter's; TFW_ENOMEM when state cannot be allocated (nothing is
 * updated then). */
TFW_API tfw_status tfw_optimizer_step(tfw_optimizer *opt);
/* Drops (set_to_none) or zero-fills every parameter's gradient. */
TFW_API void tfw_optimizer_zero_grad(tfw_optimizer *opt, bool set_to_none);

TFW_API tfw_optim_kind tfw_optimizer_kind(const tfw_optimizer *opt);
TFW_API int tfw_optimizer_num_groups(const tfw_optimizer *opt);
TFW_API int tfw_optimizer_num_params(const tfw_optimizer *opt); /* over all groups */
/* Parameters of group g (borrowed, valid until the next add_param_group; NULL for a bad g,
 * count in *n). */
TFW_API tfw_tensor *const *tfw_optimizer_group_params(const tfw_optimizer *opt, int group, int *n);
/* The lr of a group; NaN for a bad group index (with TFW_EINDEX set). */
TFW_API double tfw_optimizer_get_lr(const tfw_optimizer *opt, int group);
TFW_API tfw_status tfw_optimizer_set_lr(tfw_optimizer *opt, int group, double lr);
/* A copy of a group's options (TFW_EINDEX for a bad group). */
TFW_API tfw_status tfw_optimizer_get_options(const tfw_optimizer *opt, int group,
                                             tfw_optim_options *out);
/* Replaces a group's options (validated; TFW_EVALUE naming the field). */
TFW_API tfw_status tfw_optimizer_set_options(tfw_optimizer *opt, int group,
                                             const tfw_optim_options *opts);
/* Step count of parameter i (global index over groups in order); -1 for a bad index. */
TFW_API int64_t tfw_optimizer_param_step(const tfw_optimizer *opt, int param);

/* Everything needed to resume bit-exactly, as named tensors (copies, caller frees the list
 * with tfw_named_tensors_free): for every parameter i (global index) that has state,
 * "state.<i>.step" (0-d f64) and its buffers "state.<i>.<name>" (param dtype and shape):
 *   SGD momentum_buffer (absent until momentum is first used); Adam/AdamW exp_avg,
 *   exp_avg_sq, max_exp_avg_sq (amsgrad); RMSProp square_avg, momentum_buffer (momentum > 0),
 *   grad_avg (centered); Adagrad sum; AdaBelief exp_avg, exp_avg_var, max_exp_avg_var
 *   (amsgrad); Lion exp_avg;
 * and for every group g, "param_groups.<g>.num_params" and each hyperparameter the kind uses
 * ("param_groups.<g>.lr", ".weight_decay", ".momentum", ".beta1", ...; flags as 0/1), all
 * 0-d f64. */
TFW_API tfw_status tfw_optimizer_state_dict(const tfw_optimizer *opt, tfw_named_tensor **out,
                                            int *count);
/* Loads a state dict into an optimizer with the same groups (same sizes, same parameter
 * shapes). Strict: an unexpected key, a missing key (a group hyperparameter, or a buffer of a
 * parameter that has "state.<i>.step"), a wrong shape or a non-finite/invalid value fails
 * with TFW_EVALUE naming the key, and nothing is changed. Values are copied (cast to the
 * parameter dtype). */
TFW_API tfw_status tfw_optimizer_load_state_dict(tfw_optimizer *opt, int n,
                                                 const tfw_named_tensor *sd);
TFW_API void tfw_optimizer_release(tfw_optimizer *opt);

/* ---- learning-rate schedulers ------------------------------------------------------------- */
/* A scheduler sets the lr of every group of its optimizer. At creation it records each
 * group's current lr as its base lr and sets the lr of epoch 0 (as PyTorch's constructors
 * do); tfw_lr_scheduler_step advances one epoch (or iteration) and sets the new lr. Values
 * are computed in closed form from the epoch (PyTorch's chainable forms give the same values
 * up to rounding). */
typedef struct tfw_lr_scheduler tfw_lr_scheduler;

/* lr = base * gamma^(epoch / step_size). step_size >= 1. */
TFW_API tfw_lr_scheduler *tfw_step_lr_new(tfw_optimizer *opt, int64_t step_size, double gamma);
/* lr = base * gamma^(number of milestones <= epoch); milestones increasing, >= 0. */
TFW_API tfw_lr_scheduler *tfw_multistep_lr_new(tfw_optimizer *opt, int n,
                                               const int64_t *milestones, double gamma);
TFW_API tfw_lr_scheduler *tfw_exponential_lr_new(tfw_optimizer *opt, double gamma);
/* eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2. T_max >= 1. */
TFW_API tfw_lr_scheduler *tfw_cosine_lr_new(tfw_optimizer *opt, int64_t T_max, double eta_min);
/* SGDR: cosine over T_0 epochs, then restarts with periods multiplied by T_mult (>= 1). */
TFW_API tfw_lr_scheduler *tfw_cosine_warm_restarts_lr_new(tfw_optimizer *opt, int64_t T_0,
                                                          int64_t T_mult, double eta_min);
/* base * (1 - min(epoch, total_iters) / total_iters)^power. */
TFW_API tfw_lr_scheduler *tfw_polynomial_lr_new(tfw_optimizer *opt, int64_t total_iters,
                                                double power);
/* LinearLR: base * factor, factor going linearly from start_factor to end_factor over
 * total_iters epochs. 0 < start_factor <= 1, 0 <= end_factor <= 1. */
TFW_API tfw_lr_scheduler *tfw_linear_lr_new(tfw_optimizer *opt, double start_factor,
                                            double end_factor, int64_t total_iters);
/* Linear warmup in front of another closed-form scheduler (takes ownership of inner, also on
 * failure): epochs 0..warmup_steps-1 get base * (start_factor + (1 - start_factor) *
 * epoch / warmup_steps); epoch e >= warmup_steps gets inner's lr of epoch e - warmup_steps.
 * The same as PyTorch's SequentialLR([LinearLR(opt, start_factor, 1.0, warmup_steps),
 * inner], milestones=[warmup_steps]). inner NULL = constant lr after warmup. inner may not
 * be ReduceLROnPlateau or OneCycleLR. */
TFW_API tfw_lr_scheduler *tfw_warmup_lr_new(tfw_optimizer *opt, tfw_lr_scheduler *inner,
                                            int64_t warmup_steps, double start_factor);

typedef enum tfw_anneal_strategy { TFW_ANNEAL_COS, TFW_ANNEAL_LINEAR } tfw_anneal_strategy;
typedef struct tfw_one_cycle_options {
  int64_t total_steps;     /* > 0 */
  double pct_start;        /* 0.3 */
  tfw_anneal_strategy anneal_strategy; /* cos */
  bool cycle_momentum;     /* true: cycles SGD/RMSProp momentum, or beta1 of Adam-like kinds */
  double base_momentum;    /* 0.85 */
  double max_momentum;     /* 0.95 */
  double div_factor;       /* 25: initial lr = max_lr / div_factor */
  double final_div_factor; /* 1e4: min lr = initial lr / final_div_factor */
  bool three_phase;        /* false */
} tfw_one_cycle_options;
TFW_API tfw_one_cycle_options tfw_one_cycle_defaults(int64_t total_steps);
/* OneCycleLR; max_lrs[g] per group (n must equal the group count, or 1 for all groups).
 * Stepping past total_steps fails with TFW_ESTATE, as in PyTorch. */
TFW_API tfw_lr_scheduler *tfw_one_cycle_lr_new(tfw_optimizer *opt, int n, const double *max_lrs,
                                               const tfw_one_cycle_options *o);

typedef struct tfw_plateau_options {
  bool mode_max;       /* false: "min" */
  double factor;       /* 0.1, < 1 */
  int64_t patience;    /* 10 */
  double threshold;    /* 1e-4 */
  bool threshold_abs;  /* false: "rel" */
  int64_t cooldown;    /* 0 */
  double min_lr;       /* 0 (all groups) */
  double eps;          /* 1e-8: smaller lr changes are ignored */
} tfw_plateau_options;
TFW_API tfw_plateau_options tfw_plateau_defaults(void);
/* ReduceLROnPlateau; advanced with tfw_lr_scheduler_step_metric. min_lrs (may be NULL: all
 * o->min_lr) has one entry per group. */
TFW_API tfw_lr_scheduler *tfw_plateau_lr_new(tfw_optimizer *opt, const tfw_plateau_options *o,
                                             const double *min_lrs);

/* Advances one epoch. TFW_ESTATE for ReduceLROnPlateau (use step_metric) or past OneCycle's
 * end. */
TFW_API tfw_status tfw_lr_scheduler_step(tfw_lr_scheduler *s);
/* ReduceLROnPlateau: advances with the epoch's metric (TFW_ESTATE for other schedulers). */
TFW_API tfw_status tfw_lr_scheduler_step_metric(tfw_lr_scheduler *s, double metric);
/* The lr the scheduler last set for group g (NaN for a bad index). */
TFW_API double tfw_lr_scheduler_get_last_lr(const tfw_lr_scheduler *s, int group);
TFW_API int64_t tfw_lr_scheduler_last_epoch(const tfw_lr_scheduler *s);
/* The scheduler's full state (0-d or 1-d f64 tensors: "last_epoch", "base_lrs",
 * "last_lrs", its configuration, counters; a warmup's inner scheduler under "inner.").
 * load_state_dict is strict (TFW_EVALUE naming a missing/unexpected/mis-shaped key) and
 * needs a scheduler of the same type on an optimizer with the same number of groups; it
 * does not change the optimizer's lrs (load the optimizer's own state dict for that). */
TFW_API tfw_status tfw_lr_scheduler_state_dict(const tfw_lr_scheduler *s, tfw_named_tensor **out,
                                               int *count);
TFW_API tfw_status tfw_lr_scheduler_load_state_dict(tfw_lr_scheduler *s, int n,
                                                    const tfw_named_tensor *sd);
TFW_API const char *tfw_lr_scheduler_type(const tfw_lr_scheduler *s); /* "StepLR", ... */
TFW_API void tfw_lr_scheduler_release(tfw_lr_scheduler *s);

/* ---- gradient clipping -------------------------------------------------------------------- */
/* torch.nn.utils.clip_grad_norm_: the norm_type-norm (any p > 0, or INFINITY) of all
 * gradients together (parameters without a gradient are skipped); every gradient is then
 * multiplied by min(1, max_norm / (total + 1e-6)). With error_if_nonfinite a NaN/Inf total
 * fails with TFW_EVALUE before anything is changed. total_norm (may be NULL) receives the
 * norm before clipping. */
TFW_API tfw_status tfw_clip_grad_norm_(int n, tfw_tensor *const *params, double max_norm,
                                       double norm_type, bool error_if_nonfinite,
                                       double *total_norm);
/* Clamps every gradient into [-clip_value, clip_value] (clip_value >= 0). */
TFW_API tfw_status tfw_clip_grad_value_(int n, tfw_tensor *const *params, double clip_value);

/* ---- exponential moving average of weights ------------------------------------------------ */
/* ema = decay * ema + (1 - decay) * value for every floating parameter (and, with
 * include_buffers, floating buffer) of a module; integer buffers are copied. With warmup the
 * decay of update k (1-based) is min(decay, (1 + k) / (10 + k)). The EMA copies are
 * initialised from the module's current values. */
typedef struct tfw_ema tfw_ema;
TFW_API tfw_ema *tfw_ema_new(const tfw_module *m, double decay, bool warmup,
                             bool include_buffers);
/* One EMA update from m (same names and shapes as at creation; TFW_EVALUE otherwise). */
TFW_API tfw_status tfw_ema_update(tfw_ema *e, const tfw_module *m);
/* Copies the averaged values into m's parameters/buffers (under no-grad). */
TFW_API tfw_status tfw_ema_copy_to(const tfw_ema *e, tfw_module *m);
/* Exchanges the averaged values with m's current ones (call twice to swap back). */
TFW_API tfw_status tfw_ema_swap(tfw_ema *e, tfw_module *m);
/* The averaged tensor of a parameter/buffer path (borrowed), NULL if absent. */
TFW_API tfw_tensor *tfw_ema_get(const tfw_ema *e, const char *name);
TFW_API int64_t tfw_ema_num_updates(const tfw_ema *e);
/* "num_updates", "decay", "warmup" (0-d f64) and "shadow.<path>" copies. Strict load. */
TFW_API tfw_status tfw_ema_state_dict(const tfw_ema *e, tfw_named_tensor **out, int *count);
TFW_API tfw_status tfw_ema_load_state_dict(tfw_ema *e, int n, const tfw_named_tensor *sd);
TFW_API void tfw_ema_release(tfw_ema *e);

/* ---- dynamic loss scaling ----------------------------------------------------------------- */
/* torch.cuda.amp.GradScaler's algorithm: scale the loss, backward, then step() unscales the
 * gradients (unless unscale_ was called), skips the optimizer step if any gradient is
 * Inf/NaN, and update() backs the scale off (x backoff_factor) after an overflow or grows it
 * (x growth_factor) after growth_interval clean steps in a row. Disabled: scale() returns the
 * loss, step() just steps. */
typedef struct tfw_grad_scaler tfw_grad_scaler;
/* PyTorch's defaults: 65536, 2, 0.5, 2000. */
TFW_API tfw_grad_scaler *tfw_grad_scaler_new(double init_scale, double growth_factor,
                                             double backoff_factor, int64_t growth_interval,
                                             bool enabled);
/* loss * scale (new reference, differentiable). */
TFW_API tfw_tensor *tfw_grad_scaler_scale(const tfw_grad_scaler *s, const tfw_tensor *loss);
/* Divides opt's gradients by the scale in place and records whether any was non-finite.
 * TFW_ESTATE if already called for opt since the last update(). */
TFW_API tfw_status tfw_grad_scaler_unscale_(tfw_grad_scaler *s, tfw_optimizer *opt);
/* Unscales if needed, then steps opt unless an Inf/NaN was found; *stepped (may be NULL)
 * tells which. TFW_ESTATE if step was already called for opt since the last update(). */
TFW_API tfw_status tfw_grad_scaler_step(tfw_grad_scaler *s, tfw_optimizer *opt, bool *stepped);
/* Adjusts the scale from this iteration's findings and forgets them. */
TFW_API tfw_status tfw_grad_scaler_update(tfw_grad_scaler *s);
TFW_API double tfw_grad_scaler_get_scale(const tfw_grad_scaler *s);
TFW_API bool tfw_grad_scaler_found_inf(const tfw_grad_scaler *s); /* for the current iteration */
/* "scale", "growth_factor", "backoff_factor", "growth_interval", "growth_tracker" (0-d f64). */
TFW_API tfw_status tfw_grad_scaler_state_dict(const tfw_grad_scaler *s, tfw_named_tensor **out,
                                              int *count);
TFW_API tfw_status tfw_grad_scaler_load_state_dict(tfw_grad_scaler *s, int n,
                                                   const tfw_named_tensor *sd);
TFW_API void tfw_grad_scaler_release(tfw_grad_scaler *s);

#ifdef __cplusplus
}
#endif
#endif
