/* Optimizer benchmarks, run side by side with PyTorch by bench/run.py:
 *   mlp_sgd_step: one training step of a 784-512-512-10 ReLU MLP (weights [in, out], as in
 *     bench_autograd's MLP), batch 64: zero_grad(set_to_none), forward, cross-entropy
 *     against int64 targets, backward, SGD(lr 0.01, momentum 0.9) step.
 *   adamw_step: the fused AdamW update alone (lr 1e-3, weight decay 1e-2) over 10 float32
 *     parameters of [1000, 1000] (10M elements) with fixed gradients.
 * Usage: bench_optim [--threads N] [--min-time S] [--only case]
 * Prints {"case":..,"ours_ms":..,"ours_median_ms":..,"reps":..,"threads":N} per case.
 * Timing: as bench_ops (warm-up, then the minimum of R repetitions). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenflower/tenflower.h>

#include "bench_common.h"

/* A leaf f32 tensor N(0, 1) * scale. */
static tfw_tensor *randn_leaf(int ndim, const int64_t *shape, double scale) {
  tfw_tensor *t = tfw_randn(TFW_DTYPE_F32, ndim, shape);
  float *d = tfw_tensor_data(t);
  for (int64_t i = 0; i < tfw_tensor_numel(t); i++) d[i] *= (float)scale;
  tfw_tensor_set_requires_grad(t, true);
  return t;
}

/* ---- MLP + SGD ------------------------------------------------------------------------------ */
static tfw_tensor *W[3], *B[3], *X, *Y;
static tfw_optimizer *SGD;

static void mlp_setup(void) {
  const int64_t dims[4] = {784, 512, 512, 10};
  tfw_manual_seed(1);
  tfw_tensor *ps[6];
  for (int l = 0; l < 3; l++) {
    W[l] = randn_leaf(2, (int64_t[]){dims[l], dims[l + 1]}, 1.0 / sqrt((double)dims[l]));
    B[l] = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){dims[l + 1]});
    tfw_tensor_set_requires_grad(B[l], true);
    ps[2 * l] = W[l], ps[2 * l + 1] = B[l];
  }
  X = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){64, 784});
  Y = tfw_randint(0, 10, TFW_DTYPE_I64, 1, (int64_t[]){64});
  SGD = tfw_sgd_new(6, ps, 0.01, 0.9, 0, false);
}

static int mlp_step(void) {
  tfw_optimizer_zero_grad(SGD, true);
  tfw_tensor *h = bench_mlp_forward(X, 3, W, B);
  if (!h) return -1;
  tfw_tensor *loss = tfw_cross_entropy(h, Y, NULL, "mean", -100, 0.0);
  tfw_release(h);
  if (!loss) return -1;
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  if (st) return -1;
  return tfw_optimizer_step(SGD) == TFW_OK ? 0 : -1;
}

/* ---- AdamW over 10M parameters ----------------------------------------------------------------- */
#define NBIG 10
static tfw_tensor *PB[NBIG];
static tfw_optimizer *ADAMW;

static void adamw_setup(void) {
  tfw_manual_seed(2);
  for (int i = 0; i < NBIG; i++) {
    PB[i] = randn_leaf(2, (int64_t[]){1000, 1000}, 1.0);
    tfw_tensor *g = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){1000, 1000});
    tfw_tensor *m = tfw_mul(PB[i], g), *s = tfw_sum(m, 0, NULL, false); /* grad = g */
    tfw_backward(s, NULL, false, false);
    tfw_release(g), tfw_release(m), tfw_release(s);
  }
  ADAMW = tfw_adamw_new(NBIG, PB, 1e-3, 1e-2);
}

static int adamw_step(void) { return tfw_optimizer_step(ADAMW) == TFW_OK ? 0 : -1; }

static const bench_step_case CASES[] = {
    {"mlp_sgd_step", mlp_setup, mlp_step},
    {"adamw_step", adamw_setup, adamw_step},
};

int main(int argc, char **argv) {
  bench_args a = {.threads = 2, .min_time = 0.3};
  for (int i = 1; i < argc; i++) bench_parse_arg(&a, argc, argv, &i);
  tfw_set_num_threads(a.threads);
  bench_run_cases(CASES, sizeof CASES / sizeof CASES[0], &a);
  return 0;
}
