/* A small, complete training run used by tests/c/test_trainer.c as a child process: an MLP
 * with dropout on a synthetic 4-class problem, AdamW with warmup + cosine schedule, the
 * trainer checkpointing every few steps into RUN_DIR with resume on. The test kills it with
 * SIGKILL at random moments and restarts it until it finishes, then compares RUN_DIR's log
 * and final weights with an uninterrupted run.
 *
 *   prog_train_run RUN_DIR [EPOCHS] [CHECKPOINT_EVERY]
 * Exit status 0 when training finished; final weights in RUN_DIR/final.safetensors. */
#include <stdio.h>
#include <stdlib.h>

#include "tenflower/tenflower.h"

#define CHECK(x)                                                              \
  do {                                                                        \
    if (!(x)) {                                                               \
      fprintf(stderr, "prog_train_run: %s failed: %s\n", #x, tfw_last_error()); \
      exit(2);                                                                \
    }                                                                         \
  } while (0)

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: prog_train_run RUN_DIR [EPOCHS] [CHECKPOINT_EVERY]\n");
    return 2;
  }
  const char *run_dir = argv[1];
  int64_t epochs = argc > 2 ? atoll(argv[2]) : 3;
  int64_t every = argc > 3 ? atoll(argv[3]) : 3;
  tfw_manual_seed(1234);

  /* data: x ~ N(0, 1) [2048, 32]; label = argmax of a fixed random teacher x @ T */
  int64_t xs[2] = {2048, 32}, ts[2] = {32, 4};
  tfw_tensor *x = tfw_randn_at(99, 0, TFW_DTYPE_F32, 2, xs);
  tfw_tensor *teacher = tfw_randn_at(98, 0, TFW_DTYPE_F32, 2, ts);
  CHECK(x && teacher);
  tfw_tensor *logits = tfw_matmul(x, teacher);
  tfw_tensor *y = logits ? tfw_argmax(logits, 1, false) : NULL;
  CHECK(y);
  const char *names[2] = {"input", "target"};
  tfw_tensor *cols[2] = {x, y};
  tfw_dataset *ds = tfw_dataset_from_tensors(2, names, cols);
  CHECK(ds);
  tfw_loader_options lo = tfw_loader_options_default();
  lo.batch_size = 32;
  lo.shuffle = true;
  lo.seed = 7;
  tfw_loader *train = tfw_loader_new(ds, &lo);
  CHECK(train);

  tfw_module *parts[6] = {tfw_linear_new(32, 256, true), tfw_activation_new("relu"),
                          tfw_dropout_new(0.2),          tfw_linear_new(256, 256, true),
                          tfw_activation_new("relu"),   tfw_linear_new(256, 4, true)};
  tfw_module *model = tfw_sequential_new(6, parts);
  CHECK(model);
  for (int i = 0; i < 6; i++) tfw_module_release(parts[i]);

  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  oo.lr = 3e-3;
  tfw_optimizer *opt = tfw_optimizer_new(TFW_OPTIM_ADAMW, &oo);
  CHECK(opt);
  CHECK(tfw_optimizer_add_module_params(opt, model, &oo, NULL, NULL) == TFW_OK);
  int64_t steps = epochs * tfw_loader_len(train);
  tfw_lr_scheduler *cos = tfw_cosine_lr_new(opt, steps - 10, 1e-4);
  tfw_lr_scheduler *sched = cos ? tfw_warmup_lr_new(opt, cos, 10, 0.1) : NULL;
  CHECK(sched);

  tfw_trainer_config cfg = tfw_trainer_config_default();
  cfg.epochs = epochs;
  cfg.run_dir = run_dir;
  cfg.resume = true;
  cfg.checkpoint_every = every;
  cfg.clip_grad_norm = 1.0;
  cfg.progress = false;
  cfg.report = false;
  tfw_trainer *t = tfw_trainer_new(&cfg, model, opt, sched, train, NULL);
  CHECK(t);
  CHECK(tfw_trainer_fit(t) == TFW_OK);

  tfw_named_tensor *sd;
  int n;
  CHECK(tfw_module_state_dict(model, &sd, &n) == TFW_OK);
  const char *nm[16];
  tfw_tensor *tt[16];
  for (int i = 0; i < n && i < 16; i++) nm[i] = sd[i].name, tt[i] = sd[i].tensor;
  char path[4096];
  snprintf(path, sizeof path, "%s/final.safetensors", run_dir);
  CHECK(tfw_safetensors_save(path, n, nm, tt, 0, NULL, NULL) == TFW_OK);
  tfw_named_tensors_free(sd, n);

  tfw_trainer_free(t);
  tfw_lr_scheduler_release(sched);
  tfw_optimizer_release(opt);
  tfw_module_release(model);
  tfw_loader_free(train);
  tfw_dataset_release(ds);
  tfw_release(x), tfw_release(teacher), tfw_release(logits), tfw_release(y);
  return 0;
}
