/* GPT training-step benchmark, run side by side with PyTorch by bench/run.py:
 *   char_gpt_adamw_step: one training step of examples/char_gpt.c's model (src/nn/gpt.c: 4
 *     layers, 4 heads, width 256, context 128, vocabulary 83, tied head, dropout 0.1) on a
 *     fixed batch of 16 x 128 token ids: zero_grad(set_to_none), forward, cross-entropy over
 *     [B * T, V], backward, clip_grad_norm_(1.0), AdamW step (lr 1e-3, betas 0.9 / 0.95,
 *     weight decay 0.1 on matrices; biases, norms and embeddings without).
 * Usage: bench_gpt [--threads N] [--min-time S] [--only case] [--steps N]
 *   --steps N: run N steps and print the mean time per step (for perf), no JSON.
 * Prints {"case":..,"ours_ms":..,"ours_median_ms":..,"reps":..,"threads":N} per case.
 * Timing: as bench_ops (warm-up, then the minimum of R repetitions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tenflower/tenflower.h>

#include "bench_common.h"

#define B 16
#define T 128
#define V 83

static tfw_module *MODEL;
static tfw_optimizer *OPT;
static tfw_tensor *X, *Y, **PARAMS;
static int NP;

static void setup(void) {
  tfw_manual_seed(1);
  tfw_gpt_config c = tfw_gpt_config_default(V);
  MODEL = tfw_gpt_new(&c);
  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  oo.lr = 1e-3, oo.weight_decay = 0.1, oo.beta1 = 0.9, oo.beta2 = 0.95;
  OPT = tfw_optimizer_new(TFW_OPTIM_ADAMW, &oo);
  if (!MODEL || !OPT || tfw_optimizer_add_module_params(OPT, MODEL, &oo, NULL, NULL)) return;
  tfw_named_tensor *ps;
  tfw_module_named_parameters(MODEL, &ps, &NP);
  PARAMS = malloc(sizeof *PARAMS * (size_t)NP);
  for (int i = 0; i < NP; i++) PARAMS[i] = tfw_retain(ps[i].tensor);
  tfw_named_tensors_free(ps, NP);
  X = tfw_randint(0, V, TFW_DTYPE_I64, 2, (int64_t[]){B, T});
  Y = tfw_randint(0, V, TFW_DTYPE_I64, 1, (int64_t[]){B * T});
  tfw_module_train(MODEL, true);
}

static double PHASE[4]; /* --steps: seconds in forward + loss, backward, clip, AdamW */

static int step(void) {
  if (!MODEL || !OPT) return -1;
  double t0 = bench_now_s();
  tfw_optimizer_zero_grad(OPT, true);
  tfw_tensor *lg = tfw_gpt_forward(MODEL, X);
  tfw_tensor *flat = lg ? tfw_reshape(lg, 2, (int64_t[]){B * T, V}) : NULL;
  tfw_tensor *loss = flat ? tfw_cross_entropy(flat, Y, NULL, "mean", -100, 0.0) : NULL;
  tfw_release(lg), tfw_release(flat);
  if (!loss) return -1;
  double t1 = bench_now_s();
  tfw_status st = tfw_backward(loss, NULL, false, false);
  tfw_release(loss);
  double t2 = bench_now_s(), norm;
  if (!st) st = tfw_clip_grad_norm_(NP, PARAMS, 1.0, 2.0, false, &norm);
  double t3 = bench_now_s();
  if (!st) st = tfw_optimizer_step(OPT);
  double t4 = bench_now_s();
  PHASE[0] += t1 - t0, PHASE[1] += t2 - t1, PHASE[2] += t3 - t2, PHASE[3] += t4 - t3;
  return st == TFW_OK ? 0 : -1;
}

int main(int argc, char **argv) {
  bench_args a = {.threads = 2, .min_time = 0.3};
  int steps = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_parse_arg(&a, argc, argv, &i)) continue;
    if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
  }
  tfw_set_num_threads(a.threads);
  if (a.only && !strstr(a.only, "char_gpt_adamw_step")) return 0;
  setup();
  if (bench_warm_up("char_gpt_adamw_step", step)) return 0;
  if (steps > 0) {
    memset(PHASE, 0, sizeof PHASE);
    double t0 = bench_now_s();
    for (int s = 0; s < steps; s++) step();
    fprintf(stderr, "char_gpt_adamw_step: %.2f ms per step over %d steps (forward + loss %.2f, "
            "backward %.2f, clip %.2f, AdamW %.2f)\n", (bench_now_s() - t0) * 1e3 / steps, steps,
            PHASE[0] * 1e3 / steps, PHASE[1] * 1e3 / steps, PHASE[2] * 1e3 / steps,
            PHASE[3] * 1e3 / steps);
    return 0;
  }
  bench_time_steps("char_gpt_adamw_step", step, a.min_time, a.threads);
  tfw_release(X), tfw_release(Y);
  for (int i = 0; i < NP; i++) tfw_release(PARAMS[i]);
  free(PARAMS);
  tfw_optimizer_release(OPT);
  tfw_module_release(MODEL);
  return 0;
}
