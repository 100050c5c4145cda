/* tenflower — the training loop (Trainer) and exact-resume training checkpoints.
 *
 * A trainer owns nothing it is given: the model, optimizer, scheduler and loaders are
 * borrowed and must outlive it. tfw_trainer_fit runs epochs of
 *   batch -> [autocast] loss -> backward (loss / accum_steps [x loss scale])
 *   every accum_steps batches: [unscale] [clip] optimizer step (skipped on overflow with a
 *   loss scaler) -> zero grads -> scheduler step (per step or per epoch)
 * with periodic evaluation, logging (progress bar, run_dir/log.csv, TensorBoard events),
 * checkpoints (run_dir/checkpoints/ckpt-<step>.safetensors, atomic, last K kept) and, at the
 * end, run_dir/report.html. A run restarted with resume = true continues from the newest
 * valid checkpoint and produces the same parameters, losses and log rows as a run that was
 * never interrupted, bit for bit (the checkpoint holds parameters and buffers, optimizer,
 * scheduler, loss-scaler and EMA state, the RNG state, the loader position and the step).
 * See docs/training.md. */
#ifndef TENFLOWER_TRAIN_H
#define TENFLOWER_TRAIN_H

#include "data.h"
#include "nn.h"
#include "optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- training checkpoints ----------------------------------------------------------------- */
/* Writes n named tensors (any dtypes) and metadata pairs to path as one safetensors file,
 * atomically (temporary file, fsync, rename, fsync of the directory), with a CRC-32C of every
 * tensor's name, dtype, shape and bytes in the metadata ("tfw.checksum") and
 * "tfw.format" = "tenflower-checkpoint-1". */
TFW_API tfw_status tfw_ckpt_save(const char *path, int n, const tfw_named_tensor *tensors,
                                 int n_meta, const char *const *meta_keys,
                                 const char *const *meta_values);
/* Loads a checkpoint written by tfw_ckpt_save: every tensor (copied into memory; the list is
 * the caller's, free with tfw_named_tensors_free). A missing file is TFW_EIO; a truncated,
 * corrupt (checksum mismatch) or foreign file is TFW_EFORMAT naming the file. */
TFW_API tfw_status tfw_ckpt_load(const char *path, tfw_named_tensor **out, int *count);
/* The newest loadable checkpoint "ckpt-<step>.safetensors" in dir: its path (into buf) and
 * step. Corrupt files are skipped (with a warning on stderr). TFW_EIO if there is none. */
TFW_API tfw_status tfw_ckpt_latest(const char *dir, char *buf, size_t cap, int64_t *step);

/* ---- trainer ------------------------------------------------------------------------------ */
typedef struct tfw_trainer tfw_trainer;

/* Computes the loss of one batch (a new reference in *loss, a scalar) and, optionally, the
 * logits [N, C] and borrowed class targets [N] used for accuracy (*logits a new reference or
 * NULL). The default (loss_fn NULL): logits = model(batch[input_field]), loss =
 * cross_entropy(logits, batch[target_field]). */
typedef tfw_status (*tfw_loss_fn)(void *ctx, tfw_module *model, const tfw_sample *batch,
                                  tfw_tensor **loss, tfw_tensor **logits,
                                  const tfw_tensor **targets);

typedef struct tfw_train_metrics {
  int64_t step;        /* optimizer steps done (1 after the first) */
  int64_t epoch;       /* 0-based */
  double loss;         /* mean loss of the step's batches */
  double accuracy;     /* top-1 accuracy of the step's batches in [0, 1]; NaN without logits */
  double topk_accuracy; /* top-k (config.topk) or NaN */
  double lr;           /* group 0's lr used for the step */
  double grad_norm;    /* total gradient norm before clipping, NaN when not computed */
  double samples_per_s;
  bool skipped;        /* the loss scaler found Inf/NaN gradients and skipped the step */
} tfw_train_metrics;

typedef struct tfw_eval_result {
  double loss, accuracy, topk_accuracy; /* means over the evaluation set */
  int64_t samples;
  double seconds;
} tfw_eval_result;

typedef struct tfw_trainer_callbacks {
  /* Each may be NULL; a non-OK status from one stops fit with that status. */
  tfw_status (*on_step_end)(void *ctx, tfw_trainer *t, const tfw_train_metrics *m);
  tfw_status (*on_eval_end)(void *ctx, tfw_trainer *t, int64_t step, const tfw_eval_result *r);
  tfw_status (*on_epoch_end)(void *ctx, tfw_trainer *t, int64_t epoch);
  void *ctx;
} tfw_trainer_callbacks;

typedef struct tfw_trainer_config {
  int64_t epochs;           /* >= 1 (1) */
  int64_t max_steps;        /* stop after this many optimizer steps; 0: no limit */
  int accum_steps;          /* batches per optimizer step (1) */
  double clip_grad_norm;    /* > 0: clip by global 2-norm; 0: off */
  double clip_grad_value;   /* > 0: clamp each gradient element; 0: off */
  int64_t eval_every;       /* evaluate every N steps; 0: at the end of each epoch */
  int64_t log_every;        /* a CSV/TensorBoard row every N steps (1) */
  int64_t checkpoint_every; /* every N steps; 0: at the end of each epoch; -1: never */
  int keep_checkpoints;     /* newest K kept (2) */
  bool scheduler_per_epoch; /* step the scheduler per epoch instead of per optimizer step */
  const char *run_dir;      /* logs, checkpoints, report; NULL: nothing written */
  bool resume;              /* continue from run_dir's newest valid checkpoint, if any */
  bool autocast;            /* run the loss function under autocast in autocast_dtype */
  tfw_dtype autocast_dtype; /* TFW_DTYPE_BF16 (default) or TFW_DTYPE_F16 */
  tfw_grad_scaler *scaler;  /* optional dynamic loss scaler (borrowed) */
  tfw_ema *ema;             /* optional EMA of weights, updated after each step (borrowed) */
  int topk;                 /* also report top-k accuracy (0: off) */
  const char *input_field;  /* "input" */
  const char *target_field; /* "target" */
  bool progress;            /* progress bar / lines on stderr (true) */
  bool tensorboard;         /* event file in run_dir (true) */
  bool report;              /* run_dir/report.html at the end (true) */
  double label_smoothing;   /* default loss, training batches only: in [0, 1) (0) */
  tfw_loss_fn loss_fn;      /* NULL: cross-entropy of model(input) */
  void *loss_ctx;
  tfw_trainer_callbacks callbacks;
} tfw_trainer_config;

TFW_API tfw_trainer_config tfw_trainer_config_default(void);
/* eval may be NULL (no evaluation); scheduler may be NULL. Errors: TFW_EVALUE (bad config,
 * naming the field). */
TFW_API tfw_trainer *tfw_trainer_new(const tfw_trainer_config *cfg, tfw_module *model,
                                     tfw_optimizer *opt, tfw_lr_scheduler *sched,
                                     tfw_loader *train, tfw_loader *eval);
/* Trains until config.epochs or config.max_steps. Resumes first when config.resume. */
TFW_API tfw_status tfw_trainer_fit(tfw_trainer *t);
/* One pass over a loader in eval mode without gradients (restores the training mode). */
TFW_API tfw_status tfw_trainer_evaluate(tfw_trainer *t, tfw_loader *loader, tfw_eval_result *r);
/* Writes a checkpoint of the current state to path (run_dir's are written by fit). */
TFW_API tfw_status tfw_trainer_save_checkpoint(tfw_trainer *t, const char *path);
/* Restores the state of a checkpoint written by a trainer with the same model, optimizer,
 * scheduler and loader configuration. */
TFW_API tfw_status tfw_trainer_load_checkpoint(tfw_trainer *t, const char *path);
TFW_API int64_t tfw_trainer_step(const tfw_trainer *t);
/* The metrics of the last evaluation (NaN fields before the first). */
TFW_API tfw_eval_result tfw_trainer_last_eval(const tfw_trainer *t);
TFW_API void tfw_trainer_free(tfw_trainer *t);

#ifdef __cplusplus
}
#endif
#endif
