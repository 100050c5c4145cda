/* The training loop (include/tenflower/train.h): accumulation, clipping, loss scaling,
 * autocast, scheduling, evaluation, logging, checkpoints and exact resume.
 *
 * Exact resume rests on three facts: a checkpoint is only taken at an optimizer-step
 * boundary (gradients are zero, nothing half-accumulated); everything the next steps
 * depend on is in it (parameters and buffers, optimizer/scheduler/scaler/EMA state, the
 * global Philox state that dropout draws from, the loader's (epoch, batch) position, the
 * step); and every per-step number logged is computed from those alone, in a fixed order.
 * Rows of log.csv past the checkpoint's step, written before an interruption, are removed
 * on resume, so the log of a resumed run equals an uninterrupted run's. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "tenflower/amp.h"
#include "tenflower/logging.h"
#include "tenflower/train.h"
#include "train/train_internal.h"

struct tfw_trainer {
  tfw_trainer_config cfg;
  tfw_module *model;
  tfw_optimizer *opt;
  tfw_lr_scheduler *sched;
  tfw_loader *train, *eval;
  int64_t step;
  tfw_eval_result last_eval;
  char *run_dir;
  tfw_csv_log *csv;
  tfw_summary_writer *tb;
};

static double now_s(void) { return tfw__monotonic(); }

tfw_trainer_config tfw_trainer_config_default(void) {
  tfw_trainer_config c;
  memset(&c, 0, sizeof c);
  c.epochs = 1;
  c.accum_steps = 1;
  c.log_every = 1;
  c.keep_checkpoints = 2;
  c.autocast_dtype = TFW_DTYPE_BF16;
  c.input_field = "input";
  c.target_field = "target";
  c.progress = true;
  c.tensorboard = true;
  c.report = true;
  return c;
}

tfw_trainer *tfw_trainer_new(const tfw_trainer_config *cfg, tfw_module *model, tfw_optimizer *opt,
                             tfw_lr_scheduler *sched, tfw_loader *train, tfw_loader *eval) {
  const char *op = "trainer_new";
  if (!cfg || !model || !opt || !train) {
    tfw__error(TFW_EVALUE, "%s: config, model, optimizer and train loader must be given", op);
    return NULL;
  }
  const char *bad = NULL;
  double v = 0;
  if (cfg->epochs < 1) bad = "epochs", v = (double)cfg->epochs;
  else if (cfg->max_steps < 0) bad = "max_steps", v = (double)cfg->max_steps;
  else if (cfg->accum_steps < 1) bad = "accum_steps", v = cfg->accum_steps;
  else if (!(cfg->clip_grad_norm >= 0)) bad = "clip_grad_norm", v = cfg->clip_grad_norm;
  else if (!(cfg->clip_grad_value >= 0)) bad = "clip_grad_value", v = cfg->clip_grad_value;
  else if (cfg->eval_every < 0) bad = "eval_every", v = (double)cfg->eval_every;
  else if (cfg->log_every < 1) bad = "log_every", v = (double)cfg->log_every;
  else if (cfg->checkpoint_every < -1) bad = "checkpoint_every", v = (double)cfg->checkpoint_every;
  else if (cfg->keep_checkpoints < 1) bad = "keep_checkpoints", v = cfg->keep_checkpoints;
  else if (cfg->topk < 0) bad = "topk", v = cfg->topk;
  else if (!(cfg->label_smoothing >= 0 && cfg->label_smoothing < 1))
    bad = "label_smoothing", v = cfg->label_smoothing;
  if (bad) {
    tfw__error(TFW_EVALUE, "%s: config.%s = %g is out of range", op, bad, v);
    return NULL;
  }
  if (cfg->autocast && cfg->autocast_dtype != TFW_DTYPE_BF16 && cfg->autocast_dtype != TFW_DTYPE_F16) {
    tfw__error(TFW_EVALUE, "%s: config.autocast_dtype is %s; use bfloat16 or float16", op,
               tfw_dtype_name(cfg->autocast_dtype));
    return NULL;
  }
  if (cfg->resume && !cfg->run_dir) {
    tfw__error(TFW_EVALUE, "%s: config.resume needs config.run_dir", op);
    return NULL;
  }
  tfw_trainer *t = tfw__calloc(1, sizeof *t);
  if (!t) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    return NULL;
  }
  t->cfg = *cfg;
  if (!t->cfg.input_field) t->cfg.input_field = "input";
  if (!t->cfg.target_field) t->cfg.target_field = "target";
  if (cfg->run_dir) {
    size_t n = strlen(cfg->run_dir);
    t->run_dir = tfw__malloc(n + 1);
    if (!t->run_dir) {
      tfw__free(t);
      tfw__error(TFW_ENOMEM, "%s: out of memory", op);
      return NULL;
    }
    memcpy(t->run_dir, cfg->run_dir, n + 1);
    t->cfg.run_dir = t->run_dir;
  }
  t->model = model, t->opt = opt, t->sched = sched, t->train = train, t->eval = eval;
  t->last_eval = (tfw_eval_result){NAN, NAN, NAN, 0, 0};
  return t;
}

void tfw_trainer_free(tfw_trainer *t) {
  if (!t) return;
  tfw_csv_log_close(t->csv);
  tfw_summary_writer_close(t->tb);
  tfw__free(t->run_dir);
  tfw__free(t);
}

int64_t tfw_trainer_step(const tfw_trainer *t) { return t ? t->step : -1; }
tfw_eval_result tfw_trainer_last_eval(const tfw_trainer *t) {
  return t ? t->last_eval : (tfw_eval_result){NAN, NAN, NAN, 0, 0};
}

/* ---- one batch ------------------------------------------------------------------------------ */

static tfw_status default_loss(const tfw_trainer *t, const tfw_sample *b, tfw_tensor **loss,
                               tfw_tensor **logits, const tfw_tensor **targets) {
  tfw_tensor *x = tfw_sample_get(b, t->cfg.input_field);
  tfw_tensor *y = tfw_sample_get(b, t->cfg.target_field);
  if (!x || !y)
    return tfw__error(TFW_EVALUE, "trainer: the batch has no field '%s'; set config.input_field/"
                      "target_field or a loss_fn", x ? t->cfg.target_field : t->cfg.input_field);
  *logits = tfw_module_call(t->model, x);
  if (!*logits) return tfw_last_status();
  *loss = tfw_cross_entropy(*logits, y, NULL, "mean", -100,
                            tfw_module_is_training(t->model) ? t->cfg.label_smoothing : 0.0);
  *targets = y;
  return *loss ? TFW_OK : tfw_last_status();
}

/* Runs the loss function (under autocast when configured); counts top-1/top-k hits. */
static tfw_status batch_loss(tfw_trainer *t, const tfw_sample *b, tfw_tensor **loss, double *lossv,
                             int64_t *n, int64_t *hit1, int64_t *hitk) {
  tfw_tensor *logits = NULL;
  const tfw_tensor *targets = NULL;
  *loss = NULL;
  tfw_autocast_state prev;
  if (t->cfg.autocast) tfw_autocast_set(true, t->cfg.autocast_dtype, &prev);
  tfw_status st = t->cfg.loss_fn
                      ? t->cfg.loss_fn(t->cfg.loss_ctx, t->model, b, loss, &logits, &targets)
                      : default_loss(t, b, loss, &logits, &targets);
  if (t->cfg.autocast) tfw_autocast_restore(prev);
  if (!st && (!*loss || tfw_tensor_numel(*loss) != 1))
    st = tfw__error(TFW_EVALUE, "trainer: the loss function must return a scalar loss");
  if (!st) st = tfw_item(*loss, lossv);
  *n = 0;
  if (!st && logits && targets && tfw_tensor_ndim(logits) == 2 && tfw_tensor_ndim(targets) == 1) {
    bool prev_g = tfw_set_grad_enabled(false);
    int64_t rows = tfw_tensor_shape(logits)[0];
    tfw_tensor *am = tfw_argmax(logits, 1, false);
    tfw_tensor *eq = am ? tfw_eq(am, targets) : NULL;
    tfw_tensor *s = eq ? tfw_sum(eq, 0, NULL, false) : NULL;
    double v = 0;
    if (!s || tfw_item(s, &v)) st = tfw_last_status();
    *hit1 += (int64_t)v;
    tfw_release(am), tfw_release(eq), tfw_release(s);
    int64_t k = t->cfg.topk;
    if (!st && k > 0) {
      if (k > tfw_tensor_shape(logits)[1]) k = tfw_tensor_shape(logits)[1];
      tfw_tensor *vals = NULL, *idx = NULL;
      st = tfw_topk(logits, k, 1, true, false, &vals, &idx);
      tfw_tensor *tu = st ? NULL : tfw_unsqueeze(targets, 1);
      tfw_tensor *e2 = tu ? tfw_eq(idx, tu) : NULL;
      tfw_tensor *s2 = e2 ? tfw_sum(e2, 0, NULL, false) : NULL;
      v = 0;
      if (!st && (!s2 || tfw_item(s2, &v))) st = tfw_last_status();
      *hitk += (int64_t)v;
      tfw_release(vals), tfw_release(idx), tfw_release(tu), tfw_release(e2), tfw_release(s2);
    }
    *n = rows;
    tfw_set_grad_enabled(prev_g);
  }
  tfw_release(logits);
  if (st) {
    tfw_release(*loss);
    *loss = NULL;
  }
  return st;
}

static int64_t batch_rows(const tfw_trainer *t, const tfw_sample *b) {
  tfw_tensor *x = tfw_sample_get(b, t->cfg.input_field);
  if (!x && b->n > 0) x = b->tensors[0];
  return x && tfw_tensor_ndim(x) > 0 ? tfw_tensor_shape(x)[0] : 1;
}

/* ---- evaluation ------------------------------------------------------------------------------ */

tfw_status tfw_trainer_evaluate(tfw_trainer *t, tfw_loader *loader, tfw_eval_result *r) {
  if (!t || !loader || !r) return tfw__error(TFW_EVALUE, "trainer_evaluate: trainer, loader and result must be given");
  double t0 = now_s();
  bool was_training = tfw_module_is_training(t->model);
  tfw_module_train(t->model, false);
  bool prev = tfw_set_grad_enabled(false);
  int64_t e0, i0;
  tfw_loader_state(loader, &e0, &i0);
  tfw_status st = tfw_loader_set_state(loader, e0, 0);
  double loss_sum = 0;
  int64_t n = 0, rows_all = 0, hit1 = 0, hitk = 0;
  tfw_sample b;
  tfw_sample_init(&b);
  while (!st) {
    st = tfw_loader_next(loader, &b);
    if (st || b.n == 0) break;
    tfw_tensor *loss;
    double lv;
    int64_t rows = 0;
    st = batch_loss(t, &b, &loss, &lv, &rows, &hit1, &hitk);
    tfw_release(loss);
    int64_t br = batch_rows(t, &b);
    loss_sum += lv * (double)br;
    rows_all += br;
    n += rows;
    tfw_sample_clear(&b);
  }
  tfw_sample_clear(&b);
  tfw_set_grad_enabled(prev);
  tfw_module_train(t->model, was_training);
  if (st) return st;
  r->loss = rows_all ? loss_sum / (double)rows_all : NAN;
  r->accuracy = n ? (double)hit1 / (double)n : NAN;
  r->topk_accuracy = n && t->cfg.topk ? (double)hitk / (double)n : NAN;
  r->samples = rows_all;
  r->seconds = now_s() - t0;
  t->last_eval = *r;
  return TFW_OK;
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

typedef struct nt_list {
  tfw_named_tensor *v;
  int n, cap;
} nt_list;

static tfw_status nt_push(nt_list *l, const char *prefix, const char *name, tfw_tensor *t) {
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 64;
    tfw_named_tensor *v = tfw__realloc(l->v, sizeof *v * (size_t)cap);
    if (!v) {
      tfw_release(t);
      return tfw__error(TFW_ENOMEM, "trainer checkpoint: out of memory");
    }
    l->v = v, l->cap = cap;
  }
  size_t a = strlen(prefix), b = strlen(name);
  char *s = tfw__malloc(a + b + 1);
  if (!s) {
    tfw_release(t);
    return tfw__error(TFW_ENOMEM, "trainer checkpoint: out of memory");
  }
  memcpy(s, prefix, a), memcpy(s + a, name, b + 1);
  l->v[l->n].name = s, l->v[l->n].tensor = t;
  l->n++;
  return TFW_OK;
}

/* Moves a state dict's entries into l under prefix (the list's array is freed). */
static tfw_status nt_take(nt_list *l, const char *prefix, tfw_named_tensor *sd, int n) {
  tfw_status st = TFW_OK;
  for (int i = 0; i < n; i++) {
    if (!st) st = nt_push(l, prefix, sd[i].name, tfw_retain(sd[i].tensor));
  }
  tfw_named_tensors_free(sd, n);
  return st;
}

static tfw_status push_i64(nt_list *l, const char *name, int64_t n, const int64_t *v) {
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_I64, 1, &n, v);
  return t ? nt_push(l, "trainer.", name, t) : tfw_last_status();
}

static tfw_status collect(tfw_trainer *t, nt_list *l) {
  tfw_named_tensor *sd;
  int n;
  tfw_status st = tfw_module_state_dict(t->model, &sd, &n);
  if (!st) st = nt_take(l, "model.", sd, n);
  if (!st && !(st = tfw_optimizer_state_dict(t->opt, &sd, &n))) st = nt_take(l, "optim.", sd, n);
  if (!st && t->sched && !(st = tfw_lr_scheduler_state_dict(t->sched, &sd, &n)))
    st = nt_take(l, "sched.", sd, n);
  if (!st && t->cfg.scaler && !(st = tfw_grad_scaler_state_dict(t->cfg.scaler, &sd, &n)))
    st = nt_take(l, "scaler.", sd, n);
  if (!st && t->cfg.ema && !(st = tfw_ema_state_dict(t->cfg.ema, &sd, &n)))
    st = nt_take(l, "ema.", sd, n);
  uint64_t seed, off;
  tfw_rng_get_state(&seed, &off);
  int64_t e, i;
  tfw_loader_state(t->train, &e, &i);
  int64_t rng[2] = {(int64_t)seed, (int64_t)off}, pos[2] = {e, i};
  if (!st) st = push_i64(l, "step", 1, &t->step);
  if (!st) st = push_i64(l, "rng", 2, rng);
  if (!st) st = push_i64(l, "loader", 2, pos);
  return st;
}

tfw_status tfw_trainer_save_checkpoint(tfw_trainer *t, const char *path) {
  if (!t || !path) return tfw__error(TFW_EVALUE, "trainer_save_checkpoint: trainer and path must be given");
  nt_list l = {0};
  tfw_status st = collect(t, &l);
  char step_s[32];
  snprintf(step_s, sizeof step_s, "%" PRId64, t->step);
  const char *k[1] = {"step"}, *v[1] = {step_s};
  if (!st) st = tfw_ckpt_save(path, l.n, l.v, 1, k, v);
  tfw_named_tensors_free(l.v, l.n);
  return st;
}

/* Entries of sd under prefix, with the prefix stripped (names borrowed from sd). */
static int select_prefix(const tfw_named_tensor *sd, int n, const char *prefix, tfw_named_tensor *out) {
  size_t p = strlen(prefix);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(sd[i].name, prefix, p) == 0) out[k].name = sd[i].name + p, out[k++].tensor = sd[i].tensor;
  return k;
}

static tfw_status get_i64(const tfw_named_tensor *sd, int n, const char *name, int64_t len,
                          int64_t *out, const char *path) {
  for (int i = 0; i < n; i++) {
    if (strcmp(sd[i].name, name) != 0) continue;
    const tfw_tensor *x = sd[i].tensor;
    if (tfw_tensor_dtype(x) != TFW_DTYPE_I64 || tfw_tensor_ndim(x) != 1 || tfw_tensor_shape(x)[0] != len)
      break;
    memcpy(out, tfw_tensor_data(x), sizeof(int64_t) * (size_t)len);
    return TFW_OK;
  }
  return tfw__error(TFW_EFORMAT, "trainer_load_checkpoint: '%s' has no valid '%s'", path, name);
}

tfw_status tfw_trainer_load_checkpoint(tfw_trainer *t, const char *path) {
  if (!t || !path) return tfw__error(TFW_EVALUE, "trainer_load_checkpoint: trainer and path must be given");
  tfw_named_tensor *sd;
  int n;
  tfw_status st = tfw_ckpt_load(path, &sd, &n);
  if (st) return st;
  int64_t step, rng[2], pos[2];
  st = get_i64(sd, n, "trainer.step", 1, &step, path);
  if (!st) st = get_i64(sd, n, "trainer.rng", 2, rng, path);
  if (!st) st = get_i64(sd, n, "trainer.loader", 2, pos, path);
  tfw_named_tensor *part = tfw__malloc(sizeof *part * (size_t)(n ? n : 1));
  if (!st && !part) st = tfw__error(TFW_ENOMEM, "trainer_load_checkpoint: out of memory");
  if (!st) st = tfw_module_load_state_dict(t->model, select_prefix(sd, n, "model.", part), part, true, NULL);
  if (!st) st = tfw_optimizer_load_state_dict(t->opt, select_prefix(sd, n, "optim.", part), part);
  if (!st && t->sched)
    st = tfw_lr_scheduler_load_state_dict(t->sched, select_prefix(sd, n, "sched.", part), part);
  if (!st && t->cfg.scaler)
    st = tfw_grad_scaler_load_state_dict(t->cfg.scaler, select_prefix(sd, n, "scaler.", part), part);
  if (!st && t->cfg.ema)
    st = tfw_ema_load_state_dict(t->cfg.ema, select_prefix(sd, n, "ema.", part), part);
  if (!st) st = tfw_loader_set_state(t->train, pos[0], pos[1]);
  if (!st) {
    tfw_rng_set_state((uint64_t)rng[0], (uint64_t)rng[1]);
    t->step = step;
  }
  tfw__free(part);
  tfw_named_tensors_free(sd, n);
  return st;
}

/* ---- run directory ---------------------------------------------------------------------------- */

static tfw_status mkdir_p1(const char *dir) { return tfw__mkdir(dir, "trainer_fit"); }

/* Creates dir and its missing parents (mkdir -p). */
static tfw_status mkdir_p(const char *dir) {
  char buf[4096];
  size_t n = strlen(dir);
  if (n == 0 || n >= sizeof buf)
    return tfw__error(TFW_EVALUE, "trainer_fit: run_dir '%s' is empty or too long", dir);
  memcpy(buf, dir, n + 1);
  for (size_t i = 1; i < n; i++) {
    if (buf[i] != '/') continue;
    buf[i] = '\0';
    tfw_status st = mkdir_p1(buf);
    buf[i] = '/';
    if (st) return st;
  }
  return mkdir_p1(buf);
}

static void path_join(char *buf, size_t cap, const char *a, const char *b) {
  snprintf(buf, cap, "%s/%s", a, b);
}

/* Keeps the header and the rows of log.csv whose step (first field) is <= step, rewriting
 * the file atomically (temporary, fsync, rename, fsync of the directory). */
static tfw_status truncate_log(const char *path, int64_t step) {
  FILE *f = fopen(path, "rb");
  if (!f) return TFW_OK; /* no log yet */
  tfw__sbuf in = {0};
  char chunk[65536];
  size_t got;
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) tfw__sbuf_put(&in, chunk, got);
  bool read_err = ferror(f) != 0;
  fclose(f);
  if (in.oom || read_err) {
    tfw__sbuf_free(&in);
    return in.oom ? tfw__error(TFW_ENOMEM, "trainer: out of memory reading '%s'", path)
                  : tfw__error(TFW_EIO, "trainer: cannot read '%s'", path);
  }
  tfw__atomic_file af;
  tfw_status st = tfw__atomic_begin(&af, "trainer", path);
  if (st) {
    tfw__sbuf_free(&in);
    return st;
  }
  size_t pos = 0;
  bool header = true;
  while (!st && pos < in.len) {
    const char *line = in.p + pos, *nl = memchr(line, '\n', in.len - pos);
    size_t n = nl ? (size_t)(nl - line) + 1 : in.len - pos;
    pos += n;
    if (!header) {
      if (!nl) continue; /* a row torn by a kill never got its newline */
      char *end;
      long long s = strtoll(line, &end, 10);
      if (end == line || s > step) continue; /* past the checkpoint */
    }
    header = false;
    st = tfw__atomic_write(&af, line, n);
  }
  tfw__sbuf_free(&in);
  return tfw__atomic_end(&af, st);
}

static tfw_status write_checkpoint(tfw_trainer *t) {
  if (!t->run_dir || t->cfg.checkpoint_every < 0) return TFW_OK;
  char dir[4096], path[4200];
  path_join(dir, sizeof dir, t->run_dir, "checkpoints");
  snprintf(path, sizeof path, "%s/ckpt-%012" PRId64 ".safetensors", dir, t->step);
  tfw_status st = tfw_trainer_save_checkpoint(t, path);
  if (!st) tfw__ckpt_prune(dir, t->cfg.keep_checkpoints);
  return st;
}

static tfw_status open_logs(tfw_trainer *t, bool resumed) {
  if (!t->run_dir) return TFW_OK;
  char path[4200];
  path_join(path, sizeof path, t->run_dir, "log.csv");
  static const char *const cols[] = {"step", "epoch", "loss", "accuracy", "lr", "grad_norm",
                                     "samples_per_s", "eval_loss", "eval_accuracy", "time_s"};
  t->csv = tfw_csv_log_open(path, (int)(sizeof cols / sizeof *cols), cols, resumed ? TFW_CSV_APPEND : 0);
  if (!t->csv) return tfw_last_status();
  if (t->cfg.tensorboard) {
    t->tb = tfw_summary_writer_open(t->run_dir);
    if (!t->tb) return tfw_last_status();
  }
  return TFW_OK;
}

static tfw_status write_config(tfw_trainer *t) {
  if (!t->run_dir) return TFW_OK;
  char buf[12][64];
  const char *keys[12], *vals[12];
  int n = 0;
#define KV(k, ...) (keys[n] = (k), snprintf(buf[n], sizeof buf[n], __VA_ARGS__), vals[n] = buf[n], n++)
  KV("model", "%s", tfw_module_type(t->model));
  KV("parameters", "%" PRId64, tfw_module_num_parameters(t->model));
  KV("optimizer", "%s", tfw_optim_kind_name(tfw_optimizer_kind(t->opt)));
  KV("lr", "%g", tfw_optimizer_get_lr(t->opt, 0));
  KV("scheduler", "%s", t->sched ? tfw_lr_scheduler_type(t->sched) : "none");
  KV("epochs", "%" PRId64, t->cfg.epochs);
  KV("batches_per_epoch", "%" PRId64, tfw_loader_len(t->train));
  KV("accum_steps", "%d", t->cfg.accum_steps);
  KV("clip_grad_norm", "%g", t->cfg.clip_grad_norm);
  KV("autocast", "%s", t->cfg.autocast ? tfw_dtype_name(t->cfg.autocast_dtype) : "off");
  KV("threads", "%d", tfw_get_num_threads());
#undef KV
  return tfw_run_config_write(t->run_dir, n, keys, vals);
}

/* ---- fit ---------------------------------------------------------------------------------------- */

typedef struct step_acc {
  double loss_sum;
  int micro;
  int64_t rows, n, hit1, hitk;
  double t0;
} step_acc;

static tfw_status log_row(tfw_trainer *t, const tfw_train_metrics *m, const tfw_eval_result *ev,
                          double t_start) {
  if (!t->csv) return TFW_OK;
  tfw_status st = TFW_OK;
  bool row = m && t->step % t->cfg.log_every == 0;
  if (!row && !ev) return TFW_OK;
  st = tfw_csv_log_set(t->csv, "step", (double)t->step);
  if (!st && m) {
    tfw_csv_log_set(t->csv, "epoch", (double)m->epoch);
    tfw_csv_log_set(t->csv, "loss", m->loss);
    if (!isnan(m->accuracy)) tfw_csv_log_set(t->csv, "accuracy", m->accuracy);
    tfw_csv_log_set(t->csv, "lr", m->lr);
    if (!isnan(m->grad_norm)) tfw_csv_log_set(t->csv, "grad_norm", m->grad_norm);
    tfw_csv_log_set(t->csv, "samples_per_s", m->samples_per_s);
  }
  if (!st && ev) {
    tfw_csv_log_set(t->csv, "eval_loss", ev->loss);
    if (!isnan(ev->accuracy)) tfw_csv_log_set(t->csv, "eval_accuracy", ev->accuracy);
  }
  if (!st) st = tfw_csv_log_set(t->csv, "time_s", now_s() - t_start);
  if (!st) st = tfw_csv_log_row_end(t->csv);
  if (!st && t->tb) {
    if (m) {
      tfw_summary_writer_add_scalar(t->tb, "train/loss", m->loss, t->step);
      if (!isnan(m->accuracy)) tfw_summary_writer_add_scalar(t->tb, "train/accuracy", m->accuracy, t->step);
      tfw_summary_writer_add_scalar(t->tb, "train/lr", m->lr, t->step);
      tfw_summary_writer_add_scalar(t->tb, "train/samples_per_s", m->samples_per_s, t->step);
    }
    if (ev) {
      tfw_summary_writer_add_scalar(t->tb, "eval/loss", ev->loss, t->step);
      if (!isnan(ev->accuracy)) tfw_summary_writer_add_scalar(t->tb, "eval/accuracy", ev->accuracy, t->step);
    }
  }
  return st;
}

static tfw_status run_eval(tfw_trainer *t, tfw_progress *bar, tfw_eval_result *ev) {
  tfw_status st = tfw_trainer_evaluate(t, t->eval, ev);
  if (st) return st;
  if (bar) {
    char msg[160];
    snprintf(msg, sizeof msg, "step %" PRId64 ": eval loss %.4f, accuracy %.2f%% (%" PRId64
             " samples, %.1f s)", t->step, ev->loss, 100 * ev->accuracy, ev->samples, ev->seconds);
    tfw_progress_write(bar, msg);
  }
  if (t->cfg.callbacks.on_eval_end)
    st = t->cfg.callbacks.on_eval_end(t->cfg.callbacks.ctx, t, t->step, ev);
  return st;
}

/* The optimizer step closing an accumulation window. */
static tfw_status optimizer_step(tfw_trainer *t, step_acc *a, int64_t epoch, tfw_train_metrics *m) {
  tfw_status st = TFW_OK;
  int np = 0;
  tfw_tensor **params = NULL;
  m->grad_norm = NAN;
  m->lr = tfw_optimizer_get_lr(t->opt, 0);
  if (t->cfg.scaler && (t->cfg.clip_grad_norm > 0 || t->cfg.clip_grad_value > 0))
    st = tfw_grad_scaler_unscale_(t->cfg.scaler, t->opt);
  if (!st && (t->cfg.clip_grad_norm > 0 || t->cfg.clip_grad_value > 0)) {
    int total = tfw_optimizer_num_params(t->opt);
    params = tfw__malloc(sizeof *params * (size_t)(total ? total : 1));
    if (!params) return tfw__error(TFW_ENOMEM, "trainer: out of memory");
    for (int g = 0; g < tfw_optimizer_num_groups(t->opt); g++) {
      int k;
      tfw_tensor *const *p = tfw_optimizer_group_params(t->opt, g, &k);
      for (int i = 0; i < k; i++) params[np++] = p[i];
    }
    if (t->cfg.clip_grad_norm > 0)
      st = tfw_clip_grad_norm_(np, params, t->cfg.clip_grad_norm, 2.0, false, &m->grad_norm);
    if (!st && t->cfg.clip_grad_value > 0) st = tfw_clip_grad_value_(np, params, t->cfg.clip_grad_value);
    tfw__free(params);
  }
  m->skipped = false;
  if (!st) {
    if (t->cfg.scaler) {
      bool stepped = true;
      st = tfw_grad_scaler_step(t->cfg.scaler, t->opt, &stepped);
      if (!st) st = tfw_grad_scaler_update(t->cfg.scaler);
      m->skipped = !stepped;
    } else {
      st = tfw_optimizer_step(t->opt);
    }
  }
  tfw_optimizer_zero_grad(t->opt, true);
  if (st) return st;
  if (t->cfg.ema) st = tfw_ema_update(t->cfg.ema, t->model);
  if (!st && t->sched && !t->cfg.scheduler_per_epoch) st = tfw_lr_scheduler_step(t->sched);
  t->step++;
  double dt = now_s() - a->t0;
  m->step = t->step;
  m->epoch = epoch;
  m->loss = a->loss_sum / a->micro;
  m->accuracy = a->n ? (double)a->hit1 / (double)a->n : NAN;
  m->topk_accuracy = a->n && t->cfg.topk ? (double)a->hitk / (double)a->n : NAN;
  m->samples_per_s = dt > 0 ? (double)a->rows / dt : 0;
  return st;
}

tfw_status tfw_trainer_fit(tfw_trainer *t) {
  if (!t) return tfw__error(TFW_EVALUE, "trainer_fit: trainer is NULL");
  tfw_status st = TFW_OK;
  bool resumed = false;
  char dir[4096], path[4200];
  if (t->run_dir) {
    path_join(dir, sizeof dir, t->run_dir, "checkpoints");
    if ((st = mkdir_p(t->run_dir)) || (st = mkdir_p1(dir))) return st;
    int64_t step;
    if (t->cfg.resume && tfw_ckpt_latest(dir, path, sizeof path, &step) == TFW_OK) {
      if ((st = tfw_trainer_load_checkpoint(t, path))) return st;
      char log[4200];
      path_join(log, sizeof log, t->run_dir, "log.csv");
      if ((st = truncate_log(log, t->step))) return st;
      resumed = true;
      if (t->cfg.progress) fprintf(stderr, "resuming from %s (step %" PRId64 ")\n", path, t->step);
    }
    /* a run killed between a write and its pruning (or inside a write) left extra files */
    tfw__ckpt_prune(dir, t->cfg.keep_checkpoints);
    tfw_clear_error();
    if ((st = open_logs(t, resumed)) || (st = write_config(t))) return st;
  }
  double t_start = now_s();
  tfw_module_train(t->model, true);
  tfw_optimizer_zero_grad(t->opt, true);
  int64_t epoch, index;
  tfw_loader_state(t->train, &epoch, &index);
  bool done = t->cfg.max_steps > 0 && t->step >= t->cfg.max_steps;
  bool evaluated_last = false;
  tfw_sample b;
  tfw_sample_init(&b);
  while (!st && !done && epoch < t->cfg.epochs) {
    tfw_progress *bar = NULL;
    if (t->cfg.progress) {
      char desc[64];
      snprintf(desc, sizeof desc, "epoch %" PRId64 "/%" PRId64, epoch + 1, t->cfg.epochs);
      bar = tfw_progress_new(desc, tfw_loader_len(t->train), stderr);
      if (bar && index > 0) tfw_progress_update(bar, index, NULL);
    }
    step_acc a = {0, 0, 0, 0, 0, 0, now_s()};
    tfw_train_metrics m;
    double run_loss = 0;
    int64_t run_n = 0, run_hit = 0, run_rows = 0, run_steps = 0;
    for (;;) {
      st = tfw_loader_next(t->train, &b);
      if (st) break;
      bool end = b.n == 0;
      if (!end) {
        tfw_tensor *loss;
        double lv;
        int64_t rows;
        st = batch_loss(t, &b, &loss, &lv, &rows, &a.hit1, &a.hitk);
        if (st) break;
        tfw_tensor *scaled = t->cfg.scaler ? tfw_grad_scaler_scale(t->cfg.scaler, loss) : tfw_retain(loss);
        tfw_tensor *bw = scaled && t->cfg.accum_steps > 1 ? tfw_mul_scalar(scaled, 1.0 / t->cfg.accum_steps)
                                                          : tfw_retain(scaled);
        st = bw ? tfw_backward(bw, NULL, false, false) : tfw_last_status();
        tfw_release(bw), tfw_release(scaled), tfw_release(loss);
        if (st) break;
        a.loss_sum += lv;
        a.micro++;
        a.n += rows;
        a.rows += batch_rows(t, &b);
        tfw_sample_clear(&b);
        if (bar) tfw_progress_update(bar, 1, NULL);
      }
      if (a.micro > 0 && (a.micro == t->cfg.accum_steps || end)) {
        if ((st = optimizer_step(t, &a, epoch, &m))) break;
        run_loss += m.loss, run_steps++;
        run_n += a.n, run_hit += a.hit1, run_rows += a.rows;
        bool eval_now = t->eval && t->cfg.eval_every > 0 && t->step % t->cfg.eval_every == 0;
        tfw_eval_result ev;
        if (eval_now && (st = run_eval(t, bar, &ev))) break;
        evaluated_last = eval_now;
        if ((st = log_row(t, &m, eval_now ? &ev : NULL, t_start))) break;
        if (bar) {
          char post[128];
          int o = snprintf(post, sizeof post, "loss %.4f", run_loss / (double)run_steps);
          if (run_n) o += snprintf(post + o, sizeof post - (size_t)o, " acc %.2f%%", 100.0 * (double)run_hit / (double)run_n);
          snprintf(post + o, sizeof post - (size_t)o, " lr %.3g", m.lr);
          tfw_progress_update(bar, 0, post);
        }
        if (t->cfg.callbacks.on_step_end &&
            (st = t->cfg.callbacks.on_step_end(t->cfg.callbacks.ctx, t, &m)))
          break;
        done = t->cfg.max_steps > 0 && t->step >= t->cfg.max_steps;
        if (t->cfg.checkpoint_every > 0 && (t->step % t->cfg.checkpoint_every == 0 || done) &&
            (st = write_checkpoint(t)))
          break;
        a = (step_acc){0, 0, 0, 0, 0, 0, now_s()};
        if (done) break;
      }
      if (end) break;
    }
    tfw_sample_clear(&b);
    if (bar) tfw_progress_close(bar);
    if (st) break;
    int64_t e2, i2;
    tfw_loader_state(t->train, &e2, &i2);
    bool epoch_done = e2 > epoch;
    if (epoch_done) {
      if (t->sched && t->cfg.scheduler_per_epoch && (st = tfw_lr_scheduler_step(t->sched))) break;
      if (t->eval && t->cfg.eval_every == 0) {
        tfw_eval_result ev;
        if ((st = run_eval(t, NULL, &ev))) break;
        evaluated_last = true;
        if (t->cfg.progress)
          fprintf(stderr, "epoch %" PRId64 ": eval loss %.4f, accuracy %.2f%% (%" PRId64 " samples, %.1f s)\n",
                  epoch + 1, ev.loss, 100 * ev.accuracy, ev.samples, ev.seconds);
        if ((st = log_row(t, NULL, &ev, t_start))) break;
      }
      if (t->cfg.checkpoint_every == 0 && (st = write_checkpoint(t))) break;
      if (t->cfg.callbacks.on_epoch_end &&
          (st = t->cfg.callbacks.on_epoch_end(t->cfg.callbacks.ctx, t, epoch)))
        break;
    }
    epoch = e2;
  }
  if (!st && t->eval && !evaluated_last && t->cfg.eval_every > 0) {
    tfw_eval_result ev;
    st = run_eval(t, NULL, &ev);
    if (!st) st = log_row(t, NULL, &ev, t_start);
  }
  if (t->tb) tfw_summary_writer_flush(t->tb);
  if (!st && t->run_dir && t->cfg.report) {
    tfw_csv_log_close(t->csv);
    t->csv = NULL;
    st = tfw_report_write(t->run_dir, NULL);
  }
  return st;
}
