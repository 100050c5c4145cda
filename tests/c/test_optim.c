/* Optimizers against PyTorch 1.13's torch.optim (SGD, Adam, AdamW, RMSprop, Adagrad) and
 * against reference implementations written in PyTorch tensor code (AdaBelief as in the
 * adabelief-pytorch package without rectification; Lion as in lion-pytorch): 20 steps from
 * the same initial values with the same gradient sequence, in float64 and float32; plus
 * parameter groups, exact resume from a state dict, the decay/no-decay module helper and
 * bad inputs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "optim_ref.h"

typedef struct ocase {
  const char *name;
  tfw_optim_kind kind;
  int ngroups;
  tfw_optim_options g[2];
} ocase;

#define MAX_CASES 24
static ocase CASES[MAX_CASES];
static int N_CASES;

static ocase *add_case(const char *name, tfw_optim_kind kind, double lr) {
  ocase *c = &CASES[N_CASES++];
  c->name = name;
  c->kind = kind;
  c->ngroups = 1;
  c->g[0] = c->g[1] = tfw_optim_defaults(kind);
  c->g[0].lr = c->g[1].lr = lr;
  return c;
}

static void make_cases(void) {
  if (N_CASES) return;
  ocase *c;
  add_case("sgd", TFW_OPTIM_SGD, 0.1);
  c = add_case("sgd_momentum_dampening_wd", TFW_OPTIM_SGD, 0.05);
  c->g[0].momentum = 0.9, c->g[0].dampening = 0.1, c->g[0].weight_decay = 0.01;
  c = add_case("sgd_nesterov_wd", TFW_OPTIM_SGD, 0.05);
  c->g[0].momentum = 0.9, c->g[0].nesterov = true, c->g[0].weight_decay = 0.05;
  c = add_case("sgd_momentum_maximize", TFW_OPTIM_SGD, 0.02);
  c->g[0].momentum = 0.5, c->g[0].maximize = true;
  add_case("adam", TFW_OPTIM_ADAM, 0.05);
  c = add_case("adam_amsgrad_wd", TFW_OPTIM_ADAM, 0.05);
  c->g[0].amsgrad = true, c->g[0].weight_decay = 0.1, c->g[0].beta2 = 0.9;
  c = add_case("adam_maximize", TFW_OPTIM_ADAM, 0.01);
  c->g[0].maximize = true;
  c = add_case("adamw", TFW_OPTIM_ADAMW, 0.05);
  c->g[0].weight_decay = 0.1;
  c = add_case("adamw_amsgrad", TFW_OPTIM_ADAMW, 0.05);
  c->g[0].amsgrad = true, c->g[0].beta1 = 0.8, c->g[0].eps = 1e-6;
  add_case("rmsprop", TFW_OPTIM_RMSPROP, 0.01);
  c = add_case("rmsprop_centered_momentum_wd", TFW_OPTIM_RMSPROP, 0.01);
  c->g[0].centered = true, c->g[0].momentum = 0.9, c->g[0].weight_decay = 0.01,
  c->g[0].alpha = 0.9;
  c = add_case("rmsprop_maximize", TFW_OPTIM_RMSPROP, 0.005);
  c->g[0].maximize = true, c->g[0].momentum = 0.5;
  c = add_case("adagrad", TFW_OPTIM_ADAGRAD, 0.1);
  c->g[0].lr_decay = 0.01, c->g[0].initial_accumulator_value = 0.1, c->g[0].weight_decay = 0.01;
  c = add_case("adabelief", TFW_OPTIM_ADABELIEF, 0.05);
  c->g[0].weight_decay = 0.01;
  c = add_case("adabelief_amsgrad_l2", TFW_OPTIM_ADABELIEF, 0.05);
  c->g[0].amsgrad = true, c->g[0].decoupled_weight_decay = false, c->g[0].weight_decay = 0.05,
  c->g[0].eps = 1e-12;
  c = add_case("lion", TFW_OPTIM_LION, 0.01);
  c->g[0].weight_decay = 0.1;
  /* two groups with different hyperparameters */
  c = add_case("sgd_groups", TFW_OPTIM_SGD, 0.1);
  c->ngroups = 2, c->g[0].momentum = 0.9, c->g[1].lr = 0.01, c->g[1].weight_decay = 0.1;
  c = add_case("adam_groups", TFW_OPTIM_ADAM, 0.05);
  c->ngroups = 2, c->g[1].lr = 0.01, c->g[1].beta1 = 0.5, c->g[1].beta2 = 0.99,
  c->g[1].eps = 1e-3, c->g[1].amsgrad = true;
  c = add_case("rmsprop_groups", TFW_OPTIM_RMSPROP, 0.01);
  c->ngroups = 2, c->g[0].alpha = 0.8, c->g[1].momentum = 0.9, c->g[1].centered = true;
  c = add_case("adagrad_groups", TFW_OPTIM_ADAGRAD, 0.1);
  c->ngroups = 2, c->g[1].lr = 0.3, c->g[1].eps = 1e-3;
  c = add_case("lion_groups", TFW_OPTIM_LION, 0.01);
  c->ngroups = 2, c->g[1].beta1 = 0.5, c->g[1].weight_decay = 1.0;
}

static const char *pyb(bool b) { return b ? "True" : "False"; }

/* The group's options as a Python dict literal for the kind's constructor. */
static int py_group(char *buf, size_t cap, tfw_optim_kind k, const tfw_optim_options *o) {
  switch (k) {
  case TFW_OPTIM_SGD:
    return snprintf(buf, cap, "dict(lr=%.17g, momentum=%.17g, dampening=%.17g, weight_decay=%.17g, "
                              "nesterov=%s, maximize=%s)", o->lr, o->momentum, o->dampening,
                    o->weight_decay, pyb(o->nesterov), pyb(o->maximize));
  case TFW_OPTIM_ADAM:
  case TFW_OPTIM_ADAMW:
    return snprintf(buf, cap, "dict(lr=%.17g, betas=(%.17g, %.17g), eps=%.17g, weight_decay=%.17g, "
                              "amsgrad=%s, maximize=%s)", o->lr, o->beta1, o->beta2, o->eps,
                    o->weight_decay, pyb(o->amsgrad), pyb(o->maximize));
  case TFW_OPTIM_RMSPROP:
    return snprintf(buf, cap, "dict(lr=%.17g, alpha=%.17g, eps=%.17g, weight_decay=%.17g, "
                              "momentum=%.17g, centered=%s, maximize=%s)", o->lr, o->alpha, o->eps,
                    o->weight_decay, o->momentum, pyb(o->centered), pyb(o->maximize));
  case TFW_OPTIM_ADAGRAD:
    return snprintf(buf, cap, "dict(lr=%.17g, lr_decay=%.17g, weight_decay=%.17g, "
                              "initial_accumulator_value=%.17g, eps=%.17g, maximize=%s)", o->lr,
                    o->lr_decay, o->weight_decay, o->initial_accumulator_value, o->eps,
                    pyb(o->maximize));
  case TFW_OPTIM_ADABELIEF:
    return snprintf(buf, cap, "dict(lr=%.17g, betas=(%.17g, %.17g), eps=%.17g, weight_decay=%.17g, "
                              "amsgrad=%s, maximize=%s, weight_decouple=%s)", o->lr, o->beta1,
                    o->beta2, o->eps, o->weight_decay, pyb(o->amsgrad), pyb(o->maximize),
                    pyb(o->decoupled_weight_decay));
  case TFW_OPTIM_LION:
    return snprintf(buf, cap, "dict(lr=%.17g, betas=(%.17g, %.17g), weight_decay=%.17g, "
                              "maximize=%s)", o->lr, o->beta1, o->beta2, o->weight_decay,
                    pyb(o->maximize));
  }
  return 0;
}

/* Reference AdaBelief (adabelief-pytorch 0.2, rectify=False, fixed_decay=False) and Lion
 * (lion-pytorch), in PyTorch tensor code; maximize negates the gradient as torch.optim does. */
static const char *REF_CLASSES =
    "class AdaBelief(torch.optim.Optimizer):\n"
    "    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-16, weight_decay=0,\n"
    "                 amsgrad=False, maximize=False, weight_decouple=True):\n"
    "        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,\n"
    "                         amsgrad=amsgrad, maximize=maximize, weight_decouple=weight_decouple))\n"
    "    @torch.no_grad()\n"
    "    def step(self):\n"
    "        for group in self.param_groups:\n"
    "            beta1, beta2 = group['betas']\n"
    "            for p in group['params']:\n"
    "                if p.grad is None: continue\n"
    "                grad = -p.grad if group['maximize'] else p.grad.clone()\n"
    "                state = self.state[p]\n"
    "                if len(state) == 0:\n"
    "                    state['step'] = 0\n"
    "                    state['exp_avg'] = torch.zeros_like(p)\n"
    "                    state['exp_avg_var'] = torch.zeros_like(p)\n"
    "                    if group['amsgrad']: state['max_exp_avg_var'] = torch.zeros_like(p)\n"
    "                if group['weight_decouple']:\n"
    "                    p.mul_(1.0 - group['lr'] * group['weight_decay'])\n"
    "                elif group['weight_decay'] != 0:\n"
    "                    grad.add_(p, alpha=group['weight_decay'])\n"
    "                exp_avg, exp_avg_var = state['exp_avg'], state['exp_avg_var']\n"
    "                state['step'] += 1\n"
    "                bias_correction1 = 1 - beta1 ** state['step']\n"
    "                bias_correction2 = 1 - beta2 ** state['step']\n"
    "                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)\n"
    "                grad_residual = grad - exp_avg\n"
    "                exp_avg_var.mul_(beta2).addcmul_(grad_residual, grad_residual, value=1 - beta2)\n"
    "                if group['amsgrad']:\n"
    "                    m = state['max_exp_avg_var']\n"
    "                    torch.max(m, exp_avg_var.add_(group['eps']), out=m)\n"
    "                    denom = (m.sqrt() / math.sqrt(bias_correction2)).add_(group['eps'])\n"
    "                else:\n"
    "                    denom = (exp_avg_var.add_(group['eps']).sqrt() / math.sqrt(bias_correction2)).add_(group['eps'])\n"
    "                p.addcdiv_(exp_avg, denom, value=-group['lr'] / bias_correction1)\n"
    "class Lion(torch.optim.Optimizer):\n"
    "    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, maximize=False):\n"
    "        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize))\n"
    "    @torch.no_grad()\n"
    "    def step(self):\n"
    "        for group in self.param_groups:\n"
    "            for p in filter(lambda p: p.grad is not None, group['params']):\n"
    "                grad = -p.grad if group['maximize'] else p.grad\n"
    "                lr, wd, state = group['lr'], group['weight_decay'], self.state[p]\n"
    "                beta1, beta2 = group['betas']\n"
    "                if len(state) == 0: state['exp_avg'] = torch.zeros_like(p)\n"
    "                exp_avg = state['exp_avg']\n"
    "                p.data.mul_(1 - lr * wd)\n"
    "                update = exp_avg.clone().mul_(beta1).add(grad, alpha=1 - beta1).sign_()\n"
    "                p.add_(update, alpha=-lr)\n"
    "                exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)\n";

static const char *py_ctor(tfw_optim_kind k) {
  static const char *const n[] = {"torch.optim.SGD", "torch.optim.Adam", "torch.optim.AdamW",
                                  "torch.optim.RMSprop", "torch.optim.Adagrad", "AdaBelief",
                                  "Lion"};
  return n[k];
}

/* Our run: builds the optimizer of case c over fresh params of dtype dt and takes `steps`
 * steps; returns the final values (all 4 params flattened, in parameter order). */
static tfw_optimizer *make_opt(const ocase *c, tfw_tensor **ps) {
  tfw_optimizer *opt = tfw_optimizer_new(c->kind, NULL);
  cr_assert(opt, "%s", tfw_last_error());
  if (c->ngroups == 1) {
    cr_assert(tfw_optimizer_add_param_group(opt, 4, ps, &c->g[0]) == TFW_OK, "%s: %s", c->name,
              tfw_last_error());
  } else {
    tfw_tensor *a[2] = {ps[0], ps[3]}, *b[2] = {ps[1], ps[2]};
    cr_assert(tfw_optimizer_add_param_group(opt, 2, a, &c->g[0]) == TFW_OK, "%s", tfw_last_error());
    cr_assert(tfw_optimizer_add_param_group(opt, 2, b, &c->g[1]) == TFW_OK, "%s", tfw_last_error());
  }
  return opt;
}

static void run_steps(const or_problem *pb, tfw_optimizer *opt, tfw_tensor **ps, int t0, int t1) {
  for (int t = t0; t < t1; t++) {
    tfw_optimizer_zero_grad(opt, true);
    or_grads(pb, ps, t);
    cr_assert(tfw_optimizer_step(opt) == TFW_OK, "step %d: %s", t, tfw_last_error());
  }
}

static void flat_values(tfw_tensor **ps, double *out) {
  int off = 0;
  for (int k = 0; k < OR_NP; k++) {
    double *v = th_values(ps[k]);
    int64_t n = tfw_tensor_numel(ps[k]);
    memcpy(out + off, v, (size_t)n * sizeof(double));
    free(v);
    off += (int)n;
  }
}

static void params_free(tfw_tensor **ps) {
  for (int k = 0; k < OR_NP; k++) tfw_release(ps[k]);
}

Test(optim, matches_torch_20_steps_f64_and_f32) {
  th_require_torch();
  make_cases();
  or_problem pb;
  or_problem_make(&pb, 100);
  /* the reference script: every case, both dtypes, one Python process */
  static char code[32768];
  size_t len = 0;
  len += (size_t)snprintf(code + len, sizeof code - len, "import math\n%s%s", OR_PY_PRELUDE,
                          REF_CLASSES);
  len += (size_t)snprintf(code + len, sizeof code - len, "cases = []\n");
  for (int i = 0; i < N_CASES; i++) {
    char g0[512], g1[512];
    py_group(g0, sizeof g0, CASES[i].kind, &CASES[i].g[0]);
    py_group(g1, sizeof g1, CASES[i].kind, &CASES[i].g[1]);
    len += (size_t)snprintf(code + len, sizeof code - len, "cases.append((%s, %d, %s, %s))\n",
                            py_ctor(CASES[i].kind), CASES[i].ngroups, g0, g1);
  }
  len += (size_t)snprintf(
      code + len, sizeof code - len,
      "res = {}\n"
      "for dt in (torch.float64, torch.float32):\n"
      "    rows = []\n"
      "    for ctor, ng, g0, g1 in cases:\n"
      "        ps = make_params(dt)\n"
      "        if ng == 1: groups = [dict(params=ps, **g0)]\n"
      "        else: groups = [dict(params=[ps[0], ps[3]], **g0), dict(params=[ps[1], ps[2]], **g1)]\n"
      "        # torch 1.13's Adagrad fills its sums from the constructor's argument, not the group's\n"
      "        extra = dict(initial_accumulator_value=g0['initial_accumulator_value']) if ctor is torch.optim.Adagrad else {}\n"
      "        opt = ctor(groups, **extra)\n"
      "        for t in range(%d):\n"
      "            opt.zero_grad(set_to_none=True)\n"
      "            grads(ps, t)\n"
      "            opt.step()\n"
      "        rows.append(flat(ps))\n"
      "    res[dt] = torch.stack(rows)\n"
      "out = [res[torch.float64], res[torch.float32]]\n",
      OR_STEPS);
  cr_assert(len < sizeof code - 1);
  tfw_tensor *in[6] = {pb.init[0], pb.init[1], pb.init[2], pb.init[3], pb.G, pb.A};
  tfw_tensor *ref[2];
  th_torch_run(code, 6, in, 2, ref);
  for (int d = 0; d < 2; d++) {
    tfw_dtype dt = d == 0 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
    const double *rv = tfw_tensor_data(ref[d]);
    for (int i = 0; i < N_CASES; i++) {
      tfw_tensor *ps[OR_NP];
      or_params(&pb, dt, ps);
      tfw_optimizer *opt = make_opt(&CASES[i], ps);
      run_steps(&pb, opt, ps, 0, OR_STEPS);
      double got[OR_NALL];
      flat_values(ps, got);
      /* float64: a few ulps per step; float32: PyTorch's vectorised kernels use FMA where
       * ours round twice, and 20 steps amplify that through the state */
      double rtol = d == 0 ? 1e-11 : 2e-5, atol = d == 0 ? 1e-13 : 2e-6;
      for (int j = 0; j < OR_NALL; j++) {
        double r = rv[i * OR_NALL + j];
        cr_expect(fabs(got[j] - r) <= atol + rtol * fabs(r),
                  "%s (%s) element %d: ours %.17g, torch %.17g (diff %.3g)", CASES[i].name,
                  tfw_dtype_name(dt), j, got[j], r, got[j] - r);
      }
      /* the parameter without a gradient is untouched and has no state */
      int idx3 = CASES[i].ngroups == 1 ? 3 : 1;
      cr_expect(tfw_optimizer_param_step(opt, idx3) == 0);
      cr_expect(tfw_optimizer_param_step(opt, CASES[i].ngroups == 1 ? 0 : 0) == OR_STEPS);
      tfw_optimizer_release(opt);
      params_free(ps);
    }
    tfw_release(ref[d]);
  }
  or_problem_free(&pb);
  th_expect_no_leaks();
}
