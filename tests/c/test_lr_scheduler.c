/* LR schedulers against torch.optim.lr_scheduler (PyTorch 1.13), step for step: 50 steps,
 * three parameter groups with different base lrs; OneCycleLR's momentum / beta1 too;
 * warmup against SequentialLR([LinearLR, inner], [warmup]); ReduceLROnPlateau on a fixed
 * metric sequence. Plus exact resume through state dicts and bad inputs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define NG 3
#define STEPS 50
static const double BASE[NG] = {0.1, 0.05, 1.0};

typedef struct scase {
  const char *name;
  const char *py;  /* Python expression making the scheduler from `opt` */
  bool adam;       /* the optimizer is Adam (OneCycle cycles beta1) */
  int plateau;     /* 1, 2: ReduceLROnPlateau variant (stepped with metrics) */
} scase;

static const scase CASES[] = {
    {"step", "S.StepLR(opt, step_size=7, gamma=0.5)", false, 0},
    {"multistep", "S.MultiStepLR(opt, milestones=[5, 12, 12, 30], gamma=0.3)", false, 0},
    {"exponential", "S.ExponentialLR(opt, gamma=0.93)", false, 0},
    {"cosine", "S.CosineAnnealingLR(opt, T_max=20, eta_min=0.001)", false, 0},
    {"restarts_mult2", "S.CosineAnnealingWarmRestarts(opt, T_0=7, T_mult=2, eta_min=0.01)", false, 0},
    {"restarts_mult1", "S.CosineAnnealingWarmRestarts(opt, T_0=5, T_mult=1)", false, 0},
    {"polynomial", "S.PolynomialLR(opt, total_iters=30, power=2.0)", false, 0},
    {"linear", "S.LinearLR(opt, start_factor=0.25, end_factor=0.9, total_iters=10)", false, 0},
    {"warmup_cosine", "S.SequentialLR(opt, [S.LinearLR(opt, 0.1, 1.0, 5), S.CosineAnnealingLR(opt, 45)], [5])", false, 0},
    {"warmup_step", "S.SequentialLR(opt, [S.LinearLR(opt, 0.01, 1.0, 8), S.StepLR(opt, 10, 0.5)], [8])", false, 0},
    {"warmup_exponential", "S.SequentialLR(opt, [S.LinearLR(opt, 0.2, 1.0, 3), S.ExponentialLR(opt, 0.9)], [3])", false, 0},
    {"warmup_multistep", "S.SequentialLR(opt, [S.LinearLR(opt, 0.5, 1.0, 4), S.MultiStepLR(opt, [10, 20], 0.1)], [4])", false, 0},
    {"warmup_restarts", "S.SequentialLR(opt, [S.LinearLR(opt, 0.1, 1.0, 5), S.CosineAnnealingWarmRestarts(opt, 10, 2, 0.001)], [5])", false, 0},
    {"warmup_polynomial", "S.SequentialLR(opt, [S.LinearLR(opt, 0.1, 1.0, 6), S.PolynomialLR(opt, 40, 1.5)], [6])", false, 0},
    {"warmup_only", "S.LinearLR(opt, 0.1, 1.0, 6)", false, 0},
    {"one_cycle_cos_sgd", "S.OneCycleLR(opt, max_lr=[1.0, 0.5, 0.2], total_steps=50)", false, 0},
    {"one_cycle_linear_3phase_adam", "S.OneCycleLR(opt, max_lr=0.3, total_steps=60, pct_start=0.25, anneal_strategy='linear', three_phase=True, base_momentum=0.8, max_momentum=0.9, div_factor=10, final_div_factor=100)", true, 0},
    {"plateau_min_rel", "S.ReduceLROnPlateau(opt, mode='min', factor=0.5, patience=3, threshold=0.01, cooldown=2, min_lr=[0.001, 0.002, 0.0])", false, 1},
    {"plateau_max_abs", "S.ReduceLROnPlateau(opt, mode='max', factor=0.3, patience=2, threshold=0.1, threshold_mode='abs', min_lr=0.01)", false, 2},
};
#define N_CASES ((int)(sizeof CASES / sizeof CASES[0]))

static tfw_tensor *P[NG];

static tfw_optimizer *make_opt(bool adam) {
  tfw_optimizer *opt = tfw_optimizer_new(adam ? TFW_OPTIM_ADAM : TFW_OPTIM_SGD, NULL);
  for (int g = 0; g < NG; g++) {
    P[g] = tfw_zeros(TFW_DTYPE_F64, 1, (int64_t[]){2});
    tfw_optim_options o = tfw_optim_defaults(adam ? TFW_OPTIM_ADAM : TFW_OPTIM_SGD);
    o.lr = BASE[g];
    o.momentum = adam ? 0 : 0.9;
    cr_assert(tfw_optimizer_add_param_group(opt, 1, &P[g], &o) == TFW_OK);
  }
  return opt;
}

static void free_params(void) {
  for (int g = 0; g < NG; g++) tfw_release(P[g]);
}

/* The metric of epoch t for plateau cases: improves, stalls, improves a little, stalls. */
static double metric(int t) {
  double base = t < 10 ? 10.0 - t : (t < 25 ? 1.0 + 0.001 * (t % 3) : 0.9 - 0.02 * (t - 25));
  return t >= 35 ? 0.5 + 0.05 * (t % 2) : base;
}

static tfw_lr_scheduler *make_sched(int i, tfw_optimizer *opt) {
  tfw_lr_scheduler *inner;
  switch (i) {
  case 0: return tfw_step_lr_new(opt, 7, 0.5);
  case 1: return tfw_multistep_lr_new(opt, 4, (int64_t[]){5, 12, 12, 30}, 0.3);
  case 2: return tfw_exponential_lr_new(opt, 0.93);
  case 3: return tfw_cosine_lr_new(opt, 20, 0.001);
  case 4: return tfw_cosine_warm_restarts_lr_new(opt, 7, 2, 0.01);
  case 5: return tfw_cosine_warm_restarts_lr_new(opt, 5, 1, 0);
  case 6: return tfw_polynomial_lr_new(opt, 30, 2.0);
  case 7: return tfw_linear_lr_new(opt, 0.25, 0.9, 10);
  case 8: inner = tfw_cosine_lr_new(opt, 45, 0); return tfw_warmup_lr_new(opt, inner, 5, 0.1);
  case 9: inner = tfw_step_lr_new(opt, 10, 0.5); return tfw_warmup_lr_new(opt, inner, 8, 0.01);
  case 10: inner = tfw_exponential_lr_new(opt, 0.9); return tfw_warmup_lr_new(opt, inner, 3, 0.2);
  case 11:
    inner = tfw_multistep_lr_new(opt, 2, (int64_t[]){10, 20}, 0.1);
    return tfw_warmup_lr_new(opt, inner, 4, 0.5);
  case 12:
    inner = tfw_cosine_warm_restarts_lr_new(opt, 10, 2, 0.001);
    return tfw_warmup_lr_new(opt, inner, 5, 0.1);
  case 13: inner = tfw_polynomial_lr_new(opt, 40, 1.5); return tfw_warmup_lr_new(opt, inner, 6, 0.1);
  case 14: return tfw_warmup_lr_new(opt, NULL, 6, 0.1);
  case 15: {
    tfw_one_cycle_options o = tfw_one_cycle_defaults(50);
    return tfw_one_cycle_lr_new(opt, 3, (double[]){1.0, 0.5, 0.2}, &o);
  }
  case 16: {
    tfw_one_cycle_options o = tfw_one_cycle_defaults(60);
    o.pct_start = 0.25, o.anneal_strategy = TFW_ANNEAL_LINEAR, o.three_phase = true;
    o.base_momentum = 0.8, o.max_momentum = 0.9, o.div_factor = 10, o.final_div_factor = 100;
    return tfw_one_cycle_lr_new(opt, 1, (double[]){0.3}, &o);
  }
  case 17: {
    tfw_plateau_options o = tfw_plateau_defaults();
    o.factor = 0.5, o.patience = 3, o.threshold = 0.01, o.cooldown = 2;
    return tfw_plateau_lr_new(opt, &o, (double[]){0.001, 0.002, 0.0});
  }
  case 18: {
    tfw_plateau_options o = tfw_plateau_defaults();
    o.mode_max = true, o.factor = 0.3, o.patience = 2, o.threshold = 0.1, o.threshold_abs = true;
    o.min_lr = 0.01;
    return tfw_plateau_lr_new(opt, &o, NULL);
  }
  }
  return NULL;
}

static void do_step(int i, tfw_lr_scheduler *s, int t) {
  tfw_status st = CASES[i].plateau ? tfw_lr_scheduler_step_metric(s, metric(t) * (CASES[i].plateau == 2 ? -1 : 1))
                                   : tfw_lr_scheduler_step(s);
  cr_assert(st == TFW_OK, "%s step %d: %s", CASES[i].name, t, tfw_last_error());
}

/* Row t: the lrs of the 3 groups, then their momentum (SGD) or beta1 (Adam). */
static void record(tfw_optimizer *opt, const tfw_lr_scheduler *s, bool adam, double *row) {
  for (int g = 0; g < NG; g++) {
    row[g] = tfw_optimizer_get_lr(opt, g);
    cr_expect_eq(row[g], tfw_lr_scheduler_get_last_lr(s, g));
    tfw_optim_options o;
    tfw_optimizer_get_options(opt, g, &o);
    row[NG + g] = adam ? o.beta1 : o.momentum;
  }
}

Test(lr_scheduler, matches_torch_50_steps) {
  th_require_torch();
  static char code[16384];
  size_t len = (size_t)snprintf(code, sizeof code,
      "import torch.optim.lr_scheduler as S\n"
      "import warnings\nwarnings.simplefilter('ignore')\n"
      "ms = x[0].tolist()\n"
      "def run(make, adam, plateau):\n"
      "    ps = [torch.zeros(2, requires_grad=True) for _ in range(3)]\n"
      "    base = [0.1, 0.05, 1.0]\n"
      "    if adam: opt = torch.optim.Adam([dict(params=[p], lr=b) for p, b in zip(ps, base)])\n"
      "    else: opt = torch.optim.SGD([dict(params=[p], lr=b) for p, b in zip(ps, base)], lr=0.1, momentum=0.9)\n"
      "    s = make(opt)\n"
      "    rows = []\n"
      "    def rec():\n"
      "        m = [g['betas'][0] if adam else g['momentum'] for g in opt.param_groups]\n"
      "        rows.append([g['lr'] for g in opt.param_groups] + m)\n"
      "    rec()\n"
      "    for t in range(%d):\n"
      "        opt.step()\n"
      "        if plateau: s.step(ms[t] * (-1 if plateau == 2 else 1))\n"
      "        else: s.step()\n"
      "        rec()\n"
      "    return torch.tensor(rows, dtype=torch.float64)\n"
      "out = []\n", STEPS);
  for (int i = 0; i < N_CASES; i++)
    len += (size_t)snprintf(code + len, sizeof code - len, "out.append(run(lambda opt: %s, %s, %d))\n",
                            CASES[i].py, CASES[i].adam ? "True" : "False", CASES[i].plateau);
  cr_assert(len < sizeof code - 1);
  double ms[STEPS];
  for (int t = 0; t < STEPS; t++) ms[t] = metric(t);
  tfw_tensor *mt = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){STEPS}, ms);
  tfw_tensor *ref[N_CASES];
  th_torch_run(code, 1, &mt, N_CASES, ref);
  for (int i = 0; i < N_CASES; i++) {
    tfw_optimizer *opt = make_opt(CASES[i].adam);
    tfw_lr_scheduler *s = make_sched(i, opt);
    cr_assert(s, "%s: %s", CASES[i].name, tfw_last_error());
    double got[(STEPS + 1) * 2 * NG];
    record(opt, s, CASES[i].adam, got);
    for (int t = 0; t < STEPS; t++) {
      do_step(i, s, t);
      record(opt, s, CASES[i].adam, got + (t + 1) * 2 * NG);
    }
    /* closed forms vs PyTorch's chainable products: rounding only */
    th_expect_close(ref[i], TFW_DTYPE_F64, 2, (int64_t[]){STEPS + 1, 2 * NG}, got, 1e-12, 1e-15,
                    CASES[i].name);
    tfw_lr_scheduler_release(s);
    tfw_optimizer_release(opt);
    free_params();
    tfw_release(ref[i]);
  }
  tfw_release(mt);
  th_expect_no_leaks();
}

/* 20 steps, state dicts of optimizer and scheduler into fresh ones, 30 more: the lrs (and
 * momenta) equal an uninterrupted run bit for bit. */
Test(lr_scheduler, resume_is_exact) {
  for (int i = 0; i < N_CASES; i++) {
    tfw_optimizer *opt = make_opt(CASES[i].adam);
    tfw_lr_scheduler *s = make_sched(i, opt);
    tfw_tensor *keep[NG];
    for (int g = 0; g < NG; g++) keep[g] = P[g];
    for (int t = 0; t < 20; t++) do_step(i, s, t);
    tfw_named_tensor *osd, *ssd;
    int on, sn;
    cr_assert(tfw_optimizer_state_dict(opt, &osd, &on) == TFW_OK);
    cr_assert(tfw_lr_scheduler_state_dict(s, &ssd, &sn) == TFW_OK);
    tfw_optimizer *opt2 = make_opt(CASES[i].adam);
    tfw_lr_scheduler *s2 = make_sched(i, opt2);
    cr_assert(tfw_optimizer_load_state_dict(opt2, on, osd) == TFW_OK, "%s", tfw_last_error());
    cr_assert(tfw_lr_scheduler_load_state_dict(s2, sn, ssd) == TFW_OK, "%s: %s", CASES[i].name,
              tfw_last_error());
    cr_expect_eq(tfw_lr_scheduler_last_epoch(s2), 20);
    int steps = CASES[i].name[0] == 'o' ? 29 : 30; /* OneCycle (50 steps) ends at step 50 */
    for (int t = 20; t < 20 + steps; t++) {
      do_step(i, s, t);
      do_step(i, s2, t);
      for (int g = 0; g < NG; g++) {
        tfw_optim_options a, b;
        tfw_optimizer_get_options(opt, g, &a);
        tfw_optimizer_get_options(opt2, g, &b);
        cr_expect(a.lr == b.lr && a.momentum == b.momentum && a.beta1 == b.beta1,
                  "%s step %d group %d: lr %.17g vs %.17g", CASES[i].name, t, g, a.lr, b.lr);
      }
    }
    tfw_named_tensors_free(osd, on);
    tfw_named_tensors_free(ssd, sn);
    tfw_lr_scheduler_release(s), tfw_lr_scheduler_release(s2);
    tfw_optimizer_release(opt), tfw_optimizer_release(opt2);
    free_params();
    for (int g = 0; g < NG; g++) tfw_release(keep[g]);
  }
  th_expect_no_leaks();
}

Test(lr_scheduler, bad_inputs) {
  tfw_optimizer *opt = make_opt(false);
  th_expect_error(tfw_step_lr_new(opt, 0, 0.5) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "step_size must be >= 1", "step_size 0");
  th_expect_error(tfw_multistep_lr_new(opt, 2, (int64_t[]){5, 3}, 0.5) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "non-decreasing", "milestones");
  th_expect_error(tfw_cosine_warm_restarts_lr_new(opt, 5, 0, 0) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "T_mult must be >= 1", "T_mult");
  th_expect_error(tfw_linear_lr_new(opt, 0, 1, 5) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "start_factor", "start 0");
  tfw_one_cycle_options oc = tfw_one_cycle_defaults(10);
  th_expect_error(tfw_one_cycle_lr_new(opt, 2, (double[]){1, 2}, &oc) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "expected 3 values for max_lr", "max_lr count");
  tfw_plateau_options po = tfw_plateau_defaults();
  po.factor = 1.0;
  th_expect_error(tfw_plateau_lr_new(opt, &po, NULL) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "factor must be in [0, 1)", "factor 1");
  tfw_lr_scheduler *pl = tfw_plateau_lr_new(opt, &(tfw_plateau_options){.factor = 0.1}, NULL);
  tfw_lr_scheduler *inner = tfw_plateau_lr_new(opt, &(tfw_plateau_options){.factor = 0.1}, NULL);
  th_expect_error(tfw_warmup_lr_new(opt, inner, 5, 0.1) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "ReduceLROnPlateau cannot follow a warmup", "plateau inside warmup");
  th_expect_error(tfw_lr_scheduler_step(pl), TFW_ESTATE, "needs the metric", "plateau step");
  tfw_lr_scheduler *st = tfw_step_lr_new(opt, 3, 0.5);
  th_expect_error(tfw_lr_scheduler_step_metric(st, 1.0), TFW_ESTATE, "only ReduceLROnPlateau",
                  "metric to step");
  /* OneCycle past its end */
  tfw_one_cycle_options o2 = tfw_one_cycle_defaults(3);
  tfw_lr_scheduler *oc3 = tfw_one_cycle_lr_new(opt, 1, (double[]){1.0}, &o2);
  for (int t = 0; t < 3; t++) cr_assert(tfw_lr_scheduler_step(oc3) == TFW_OK);
  th_expect_error(tfw_lr_scheduler_step(oc3), TFW_ESTATE, "total steps is 3", "past end");
  /* strict load: StepLR's dict into a cosine; a missing key; a mis-shaped base_lrs */
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_lr_scheduler_state_dict(st, &sd, &n) == TFW_OK);
  tfw_lr_scheduler *cs = tfw_cosine_lr_new(opt, 10, 0);
  th_expect_error(tfw_lr_scheduler_load_state_dict(cs, n, sd), TFW_EVALUE, "missing key \"T_max\"",
                  "type mismatch");
  th_expect_error(tfw_lr_scheduler_load_state_dict(st, n - 1, sd), TFW_EVALUE, "missing key",
                  "missing");
  tfw_tensor *two = tfw_zeros(TFW_DTYPE_F64, 1, (int64_t[]){2});
  tfw_tensor *keep = sd[1].tensor;
  sd[1].tensor = two;
  th_expect_error(tfw_lr_scheduler_load_state_dict(st, n, sd), TFW_EVALUE,
                  "key \"base_lrs\" has shape [2], expected [3]", "shape");
  sd[1].tensor = keep;
  cr_expect(tfw_lr_scheduler_load_state_dict(st, n, sd) == TFW_OK);
  tfw_release(two);
  tfw_named_tensors_free(sd, n);
  tfw_lr_scheduler_release(pl), tfw_lr_scheduler_release(st), tfw_lr_scheduler_release(oc3);
  tfw_lr_scheduler_release(cs);
  tfw_optimizer_release(opt);
  free_params();
  th_expect_no_leaks();
}
