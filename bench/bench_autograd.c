/* Autograd benchmarks, run side by side with PyTorch by bench/run.py:
 *   mlp_784_512_512_10_b64: forward + backward of a 784-512-512-10 ReLU MLP, batch 64, loss =
 *     mean(out^2); gradients dropped each step (zero_grad(set_to_none)).
 *   op_chain_1000x8: 1000 tiny ops (alternating mul/add on 8 floats), then backward: the cost
 *     of tape bookkeeping per op.
 *   checkpoint_mlp16: peak memory (and time) of forward + backward of a 16-layer MLP (width
 *     512, batch 1024, ReLU) with and without activation checkpointing in 4 segments of 4
 *     layers (only segment inputs are kept; each segment is recomputed in backward):
 *     {"case":..,"plain_peak_mb":..,"ckpt_peak_mb":..,"plain_ms":..,"ckpt_ms":..}.
 *   conv2d_mnist_b64: conv2d(1->32) then conv2d(32->64), 3x3, no padding, with bias, on
 *     x [64, 1, 28, 28], then backward with a fixed random grad_output (weights and biases
 *     require grad); gradients dropped each step.
 *   mnist_cnn_fwd_bwd: the MNIST-example CNN (see cnn_setup), batch 64, training mode
 *     (dropout on), log_softmax + nll_loss, forward + backward; gradients dropped each step.
 *   mnist_cnn_train_step: the same CNN, a whole training step as the demo runs it: forward,
 *     cross-entropy (mean), backward, AdamW step (lr 1e-3, weight decay 0.01 on the weights,
 *     none on the biases), zero_grad(set_to_none).
 *   cross_entropy_8192x1024: mean cross-entropy of logits [8192, 1024] against int64 targets,
 *     forward + backward.
 *   layer_norm_8192x1024: y = layer_norm(x [8192, 1024], [1024], w, b), then backward with a
 *     fixed random grad_output (x, w, b require grad); gradients dropped each step.
 * Usage: bench_autograd [--threads N] [--min-time S] [--only case]
 * Prints {"case":..,"ours_ms":..,"ours_median_ms":..,"reps":..,"threads":N} per case, or
 * {"case":..,"error":..} when a step fails. Timing: as bench_ops (warm-up, min of R). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenflower/tenflower.h>

#include "bench_common.h"

/* ---- MLP ------------------------------------------------------------------------------------ */
static tfw_tensor *W[3], *B[3], *X;

static void mlp_setup(void) {
  const int64_t dims[4] = {784, 512, 512, 10};
  tfw_manual_seed(1);
  for (int l = 0; l < 3; l++) {
    W[l] = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){dims[l], dims[l + 1]});
    B[l] = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){dims[l + 1]});
    tfw_tensor_set_requires_grad(W[l], true);
    tfw_tensor_set_requires_grad(B[l], true);
  }
  X = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){64, 784});
}

static int mlp_step(void) {
  tfw_tensor *h = bench_mlp_forward(X, 3, W, B);
  if (!h) return -1;
  tfw_tensor *sq = tfw_mul(h, h);
  tfw_tensor *loss = sq ? tfw_mean(sq, 0, NULL, false) : NULL;
  tfw_release(sq);
  tfw_release(h);
  if (!loss) return -1;
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  for (int l = 0; l < 3; l++) tfw_tensor_zero_grad(W[l]), tfw_tensor_zero_grad(B[l]);
  return st == TFW_OK ? 0 : -1;
}

/* ---- chain of tiny ops ----------------------------------------------------------------------- */
static tfw_tensor *CX, *CM, *CA;

static void chain_setup(void) {
  CX = tfw_full(TFW_DTYPE_F32, 1, (int64_t[]){8}, 0.5);
  tfw_tensor_set_requires_grad(CX, true);
  CM = tfw_full(TFW_DTYPE_F32, 1, (int64_t[]){8}, 1.0001);
  CA = tfw_full(TFW_DTYPE_F32, 1, (int64_t[]){8}, 0.001);
}

static int chain_step(void) {
  tfw_tensor *y = tfw_retain(CX);
  for (int i = 0; i < 1000; i++) {
    tfw_tensor *n = (i & 1) ? tfw_add(y, CA) : tfw_mul(y, CM);
    tfw_release(y);
    if (!n) return -1;
    y = n;
  }
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  tfw_release(y);
  if (!s) return -1;
  tfw_status st = tfw_backward(s, NULL, false, false);
  tfw_release(s);
  tfw_tensor_zero_grad(CX);
  return st == TFW_OK ? 0 : -1;
}

/* ---- checkpointing: peak memory of a 16-layer MLP ---------------------------------------- */
#define CK_LAYERS 16
static tfw_tensor *CW[CK_LAYERS], *CXin;

/* in[0] = activations, in[1..4] = the segment's weights */
static tfw_status segment_fn(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_tensor *h = tfw_retain(in[0]);
  for (int l = 1; l < n_in; l++) {
    tfw_tensor *m = tfw_matmul(h, in[l]);
    tfw_release(h);
    h = m ? tfw_relu(m) : NULL;
    tfw_release(m);
    if (!h) return tfw_last_status();
  }
  out[0] = h;
  return TFW_OK;
}

static int mlp16(bool ckpt, int64_t *peak) {
  tfw_memory_reset_peak();
  tfw_memory_stats before;
  tfw_memory_stats_get(&before);
  tfw_tensor *h = tfw_retain(CXin);
  for (int seg = 0; seg < CK_LAYERS / 4; seg++) {
    tfw_tensor *in[5] = {h, CW[4 * seg], CW[4 * seg + 1], CW[4 * seg + 2], CW[4 * seg + 3]}, *o = NULL;
    tfw_status st = ckpt ? tfw_checkpoint(segment_fn, NULL, 5, in, 1, &o) : segment_fn(NULL, 5, in, 1, &o);
    tfw_release(h);
    if (st) return -1;
    h = o;
  }
  tfw_tensor *loss = tfw_mean(h, 0, NULL, false);
  tfw_release(h);
  if (!loss || tfw_backward(loss, NULL, false, false)) return -1;
  tfw_release(loss);
  tfw_memory_stats after;
  tfw_memory_stats_get(&after);
  *peak = after.peak_bytes - before.live_bytes;
  for (int l = 0; l < CK_LAYERS; l++) tfw_tensor_zero_grad(CW[l]);
  return 0;
}

static void checkpoint_case(int threads) {
  tfw_manual_seed(3);
  for (int l = 0; l < CK_LAYERS; l++) {
    tfw_tensor *w = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){512, 512});
    CW[l] = tfw_mul_scalar(w, 0.06); /* ~ sqrt(2 / fan_in): activations stay O(1) */
    tfw_release(w);
    tfw_tensor_set_requires_grad(CW[l], true);
  }
  CXin = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){1024, 512});
  int64_t peak[2] = {0, 0};
  double ms[2] = {1e30, 1e30};
  for (int rep = 0; rep < 3; rep++)
    for (int k = 0; k < 2; k++) {
      int64_t p;
      double t0 = bench_now_s();
      if (mlp16(k == 1, &p)) {
        bench_print_error("checkpoint_mlp16", tfw_last_error());
        return;
      }
      double t = (bench_now_s() - t0) * 1e3;
      if (t < ms[k]) ms[k] = t;
      peak[k] = p;
    }
  printf("{\"case\":\"checkpoint_mlp16\",\"plain_peak_mb\":%.2f,\"ckpt_peak_mb\":%.2f,"
         "\"plain_ms\":%.3f,\"ckpt_ms\":%.3f,\"threads\":%d}\n",
         (double)peak[0] / (1 << 20), (double)peak[1] / (1 << 20), ms[0], ms[1], threads);
}

/* ---- layer norm ------------------------------------------------------------------------------- */
static tfw_tensor *LX, *LW, *LB, *LG;

static void ln_setup(void) {
  tfw_manual_seed(5);
  LX = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){8192, 1024});
  LW = tfw_randn(TFW_DTYPE_F32, 1, (int64_t[]){1024});
  LB = tfw_randn(TFW_DTYPE_F32, 1, (int64_t[]){1024});
  LG = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){8192, 1024});
  tfw_tensor_set_requires_grad(LX, true);
  tfw_tensor_set_requires_grad(LW, true);
  tfw_tensor_set_requires_grad(LB, true);
}

static int ln_step(void) {
  tfw_tensor *y = tfw_layer_norm(LX, 1, (int64_t[]){1024}, LW, LB, 1e-5);
  if (!y || tfw_backward(y, LG, false, false)) return -1;
  tfw_release(y);
  tfw_tensor_zero_grad(LX), tfw_tensor_zero_grad(LW), tfw_tensor_zero_grad(LB);
  return 0;
}

/* ---- scaled dot-product attention (fused kernel), causal ------------------------------------ */
static tfw_tensor *AQ, *AK, *AV, *AG;

static void sdpa_setup(void) {
  const int64_t s[4] = {8, 8, 512, 64};
  tfw_manual_seed(6);
  AQ = tfw_randn(TFW_DTYPE_F32, 4, s), AK = tfw_randn(TFW_DTYPE_F32, 4, s);
  AV = tfw_randn(TFW_DTYPE_F32, 4, s), AG = tfw_randn(TFW_DTYPE_F32, 4, s);
  tfw_tensor_set_requires_grad(AQ, true);
  tfw_tensor_set_requires_grad(AK, true);
  tfw_tensor_set_requires_grad(AV, true);
}

static int sdpa_step(void) {
  tfw_tensor *y = tfw_scaled_dot_product_attention(AQ, AK, AV, NULL, 0, true, 0);
  if (!y || tfw_backward(y, AG, false, false)) return -1;
  tfw_release(y);
  tfw_tensor_zero_grad(AQ), tfw_tensor_zero_grad(AK), tfw_tensor_zero_grad(AV);
  return 0;
}

/* ---- MNIST-example convolutions: conv(1->32) then conv(32->64), 3x3, batch 64, 28x28 ------ */
static tfw_tensor *CVX, *CVW1, *CVB1, *CVW2, *CVB2, *CVG;

static void convnet_setup(void) {
  tfw_manual_seed(7);
  CVX = tfw_randn(TFW_DTYPE_F32, 4, (int64_t[]){64, 1, 28, 28});
  CVW1 = tfw_randn(TFW_DTYPE_F32, 4, (int64_t[]){32, 1, 3, 3});
  CVB1 = tfw_randn(TFW_DTYPE_F32, 1, (int64_t[]){32});
  CVW2 = tfw_randn(TFW_DTYPE_F32, 4, (int64_t[]){64, 32, 3, 3});
  CVB2 = tfw_randn(TFW_DTYPE_F32, 1, (int64_t[]){64});
  CVG = tfw_randn(TFW_DTYPE_F32, 4, (int64_t[]){64, 64, 24, 24});
  tfw_tensor *p[4] = {CVW1, CVB1, CVW2, CVB2};
  for (int i = 0; i < 4; i++) tfw_tensor_set_requires_grad(p[i], true);
}

static int convnet_step(void) {
  tfw_tensor *h = tfw_conv2d(CVX, CVW1, CVB1, NULL, NULL, NULL, 1);
  tfw_tensor *y = h ? tfw_conv2d(h, CVW2, CVB2, NULL, NULL, NULL, 1) : NULL;
  tfw_release(h);
  if (!y || tfw_backward(y, CVG, false, false)) return -1;
  tfw_release(y);
  tfw_tensor_zero_grad(CVW1), tfw_tensor_zero_grad(CVB1);
  tfw_tensor_zero_grad(CVW2), tfw_tensor_zero_grad(CVB2);
  return 0;
}

/* ---- the MNIST-example CNN (PyTorch's examples/mnist), batch 64, forward + backward ---------
 * conv(1->32, 3x3), relu, conv(32->64, 3x3), relu, max_pool 2, dropout 0.25, flatten,
 * linear(9216->128), relu, dropout 0.5, linear(128->10), log_softmax, nll_loss (mean); built
 * from nn modules as a user writes it; gradients dropped after each step (no optimizer). */
static tfw_module *CNN;
static tfw_tensor *CNN_X, *CNN_T;

static void cnn_setup(void) {
  tfw_manual_seed(11);
  const int64_t k3[2] = {3, 3}, k2[2] = {2, 2};
  tfw_module *mods[] = {
      tfw_conv2d_new(1, 32, k3, NULL, NULL, NULL, 1, true, false), tfw_activation_new("relu"),
      tfw_conv2d_new(32, 64, k3, NULL, NULL, NULL, 1, true, false), tfw_activation_new("relu"),
      tfw_max_pool2d_new(k2, NULL, NULL, false), tfw_dropout_new(0.25), tfw_flatten_new(1, -1),
      tfw_linear_new(9216, 128, true), tfw_activation_new("relu"), tfw_dropout_new(0.5),
      tfw_linear_new(128, 10, true)};
  const int n = (int)(sizeof mods / sizeof mods[0]);
  CNN = tfw_sequential_new(n, mods);
  for (int i = 0; i < n; i++) tfw_module_release(mods[i]);
  tfw_module_train(CNN, true);
  CNN_X = tfw_randn(TFW_DTYPE_F32, 4, (int64_t[]){64, 1, 28, 28});
  CNN_T = tfw_randint(0, 10, TFW_DTYPE_I64, 1, (int64_t[]){64});
}

static int cnn_step(void) {
  tfw_tensor *logits = tfw_module_call(CNN, CNN_X);
  tfw_tensor *lp = logits ? tfw_log_softmax(logits, 1) : NULL;
  tfw_tensor *loss = lp ? tfw_nll_loss(lp, CNN_T, NULL, "mean", -100) : NULL;
  tfw_release(logits), tfw_release(lp);
  if (!loss) return -1;
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  tfw_module_zero_grad(CNN);
  return st == TFW_OK ? 0 : -1;
}

/* ---- the same CNN, full training step with AdamW ------------------------------------------ */
static tfw_optimizer *CNN_OPT;

static void cnn_train_setup(void) {
  cnn_setup();
  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  oo.lr = 1e-3;
  oo.weight_decay = 0.01;
  CNN_OPT = tfw_optimizer_new(TFW_OPTIM_ADAMW, &oo);
  if (CNN_OPT) tfw_optimizer_add_module_params(CNN_OPT, CNN, &oo, NULL, NULL);
}

static int cnn_train_step(void) {
  if (!CNN_OPT) return -1;
  tfw_tensor *logits = tfw_module_call(CNN, CNN_X);
  tfw_tensor *loss = logits ? tfw_cross_entropy(logits, CNN_T, NULL, "mean", -100, 0.0) : NULL;
  tfw_release(logits);
  if (!loss) return -1;
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  if (st == TFW_OK) st = tfw_optimizer_step(CNN_OPT);
  tfw_optimizer_zero_grad(CNN_OPT, true);
  return st == TFW_OK ? 0 : -1;
}

/* ---- cross-entropy: logits [8192, 1024], int64 targets, mean reduction ------------------- */
static tfw_tensor *CE_X, *CE_T;

static void ce_setup(void) {
  tfw_manual_seed(9);
  CE_X = tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){8192, 1024});
  CE_T = tfw_randint(0, 1024, TFW_DTYPE_I64, 1, (int64_t[]){8192});
  tfw_tensor_set_requires_grad(CE_X, true);
}

static int ce_step(void) {
  tfw_tensor *loss = tfw_cross_entropy(CE_X, CE_T, NULL, "mean", -100, 0.0);
  if (!loss) return -1;
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  tfw_tensor_zero_grad(CE_X);
  return st == TFW_OK ? 0 : -1;
}

static const bench_step_case CASES[] = {
    {"cross_entropy_8192x1024", ce_setup, ce_step},
    {"conv2d_mnist_b64", convnet_setup, convnet_step},
    {"mnist_cnn_fwd_bwd", cnn_setup, cnn_step},
    {"mnist_cnn_train_step", cnn_train_setup, cnn_train_step},
    {"sdpa_b8_h8_t512_d64_causal", sdpa_setup, sdpa_step},
    {"mlp_784_512_512_10_b64", mlp_setup, mlp_step},
    {"op_chain_1000x8", chain_setup, chain_step},
    {"layer_norm_8192x1024", ln_setup, ln_step},
};

int main(int argc, char **argv) {
  bench_args a = {.threads = 2, .min_time = 0.3};
  for (int i = 1; i < argc; i++) bench_parse_arg(&a, argc, argv, &i);
  tfw_set_num_threads(a.threads);
  if (!a.only || strstr(a.only, "checkpoint_mlp16")) checkpoint_case(a.threads);
  bench_run_cases(CASES, sizeof CASES / sizeof CASES[0], &a);
  return 0;
}
