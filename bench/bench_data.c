/* Data pipeline timings on the real MNIST files (scripts/fetch_mnist.sh puts them in
 * ~/.cache/tenflower/mnist; TFW_MNIST_DIR overrides). One JSON line per case:
 *   idx_read_mnist_train      reading train-images (47 MB) into a u8 tensor
 *   normalize_mnist_train     u8 [60000, 28, 28] -> f32 (x / 255 - mean) / std
 *   loader_epoch_b64_w{0,2}   one shuffled epoch of batches of 64 over a tensor dataset of
 *                             f32 images [60000, 1, 28, 28] + i64 labels (938 batches)
 *   loader_epoch_b64_u8norm   the same from u8 images, normalised per batch in batch_map
 * Usage: bench_data [--threads N] [--reps R] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tenflower/tenflower.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const float MEAN = 0.1307f, STD = 0.3081f;

static tfw_status norm_batch(void *ctx, tfw_sample *b) {
  for (int k = 0; k < b->n; k++)
    if (!strcmp(b->names[k], "image")) {
      tfw_tensor *f = tfw_normalize_u8(b->tensors[k], 1, &MEAN, &STD);
      if (!f) return tfw_last_status();
      tfw_release(b->tensors[k]);
      b->tensors[k] = f;
    }
  return TFW_OK;
}

static double epoch_ms(tfw_dataset *ds, int workers, tfw_sample_map_fn bm, int64_t *nb) {
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 64, o.shuffle = true, o.seed = 1, o.num_workers = workers;
  o.batch_map = bm;
  tfw_loader *l = tfw_loader_new(ds, &o);
  tfw_sample b;
  tfw_sample_init(&b);
  double t0 = now_ms();
  *nb = 0;
  while (tfw_loader_next(l, &b) == TFW_OK && b.n > 0) {
    (*nb)++;
    tfw_sample_clear(&b);
  }
  double t = now_ms() - t0;
  tfw_loader_free(l);
  return t;
}

int main(int argc, char **argv) {
  int threads = 2, reps = 5;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
  }
  tfw_set_num_threads(threads);
  char dir[512];
  const char *env = getenv("TFW_MNIST_DIR"), *home = getenv("HOME");
  snprintf(dir, sizeof dir, "%s", env ? env : "");
  if (!env) snprintf(dir, sizeof dir, "%s/.cache/tenflower/mnist", home ? home : ".");
  char path[600];
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
  double best = 1e30;
  tfw_tensor *im = NULL;
  for (int r = 0; r < reps; r++) {
    tfw_release(im);
    double t0 = now_ms();
    im = tfw_idx_read(path);
    double t = now_ms() - t0;
    if (!im) {
      printf("{\"case\":\"idx_read_mnist_train\",\"error\":\"%s\"}\n", tfw_last_error());
      return 1;
    }
    if (t < best) best = t;
  }
  printf("{\"case\":\"idx_read_mnist_train\",\"ours_ms\":%.3f,\"threads\":%d}\n", best, threads);
  tfw_tensor *f = NULL;
  best = 1e30;
  for (int r = 0; r < reps; r++) {
    tfw_release(f);
    double t0 = now_ms();
    f = tfw_normalize_u8(im, 1, &MEAN, &STD);
    double t = now_ms() - t0;
    if (t < best) best = t;
  }
  printf("{\"case\":\"normalize_mnist_train\",\"ours_ms\":%.3f,\"threads\":%d}\n", best, threads);
  tfw_tensor *lab8 = NULL, *im2 = NULL;
  tfw_tensor *tmp = NULL;
  tfw_mnist_load(dir, true, &tmp, &lab8);
  tfw_release(tmp);
  tfw_tensor *lab = tfw_to_dtype(lab8, TFW_DTYPE_I64);
  tfw_tensor *f4 = tfw_reshape(f, 4, (int64_t[]){60000, 1, 28, 28});
  tfw_tensor *ts[2] = {f4, lab};
  const char *names[2] = {"image", "label"};
  tfw_dataset *ds = tfw_dataset_from_tensors(2, names, ts);
  for (int w = 0; w <= 2; w += 2) {
    best = 1e30;
    int64_t nb = 0;
    for (int r = 0; r < reps; r++) {
      double t = epoch_ms(ds, w, NULL, &nb);
      if (t < best) best = t;
    }
    printf("{\"case\":\"loader_epoch_b64_w%d\",\"ours_ms\":%.3f,\"batches\":%lld,\"threads\":%d}\n",
           w, best, (long long)nb, threads);
  }
  im2 = tfw_reshape(im, 4, (int64_t[]){60000, 1, 28, 28});
  ts[0] = im2;
  tfw_dataset *ds8 = tfw_dataset_from_tensors(2, names, ts);
  best = 1e30;
  int64_t nb = 0;
  for (int r = 0; r < reps; r++) {
    double t = epoch_ms(ds8, 0, norm_batch, &nb);
    if (t < best) best = t;
  }
  printf("{\"case\":\"loader_epoch_b64_u8norm\",\"ours_ms\":%.3f,\"batches\":%lld,\"threads\":%d}\n",
         best, (long long)nb, threads);
  tfw_dataset_release(ds);
  tfw_dataset_release(ds8);
  tfw_release(im), tfw_release(im2), tfw_release(f), tfw_release(f4);
  tfw_release(lab), tfw_release(lab8);
  return 0;
}
