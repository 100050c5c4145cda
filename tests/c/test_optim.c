/* Optimizers against PyTorch 1.13's torch.optim (SGD, Adam, AdamW, RMSprop, Adagrad) and
 * against reference implementations written in PyTorch tensor code (AdaBelief as in the
 * adabelief-pytorch package without rectification; Lion as in lion-pytorch): 20 steps from
 * the same initial values with the same gradient sequence, in float64 and float32; plus
 * parameter groups, exact resume from a state dict, the decay/no-decay module helper and
 * bad inputs. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* 10 steps, state dict, a fresh optimizer over copies of the params loads it, 10 more steps:
 * bit-identical to 20 uninterrupted steps, for every case and both dtypes. One case goes
 * through a safetensors file. */
Test(optim, resume_from_state_dict_is_bit_exact) {
  make_cases();
  or_problem pb;
  or_problem_make(&pb, 200);
  for (int d = 0; d < 2; d++) {
    tfw_dtype dt = d == 0 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
    for (int i = 0; i < N_CASES; i++) {
      const ocase *c = &CASES[i];
      tfw_tensor *ps[OR_NP], *qs[OR_NP];
      or_params(&pb, dt, ps);
      tfw_optimizer *opt = make_opt(c, ps);
      run_steps(&pb, opt, ps, 0, 10);
      tfw_named_tensor *sd;
      int n;
      cr_assert(tfw_optimizer_state_dict(opt, &sd, &n) == TFW_OK, "%s", tfw_last_error());
      /* a fresh run resumes from copies of the current values */
      for (int k = 0; k < OR_NP; k++) {
        tfw_tensor *dk = tfw_detach(ps[k]);
        qs[k] = tfw_clone(dk);
        tfw_release(dk);
        tfw_tensor_set_requires_grad(qs[k], true);
      }
      tfw_optimizer *opt2 = make_opt(c, qs);
      if (i == 1 && d == 0) { /* through a file */
        char path[] = "/tmp/tfw_optim_sd_XXXXXX";
        int fd = mkstemp(path);
        cr_assert(fd >= 0);
        close(fd);
        const char *names[64];
        tfw_tensor *ts[64];
        cr_assert(n <= 64);
        for (int j = 0; j < n; j++) names[j] = sd[j].name, ts[j] = sd[j].tensor;
        cr_assert(tfw_safetensors_save(path, n, names, ts, 0, NULL, NULL) == TFW_OK, "%s",
                  tfw_last_error());
        tfw_safetensors *st = tfw_safetensors_open(path);
        cr_assert(st, "%s", tfw_last_error());
        int m = tfw_safetensors_count(st);
        tfw_named_tensor *back = calloc((size_t)m, sizeof *back);
        for (int j = 0; j < m; j++) {
          back[j].name = (char *)tfw_safetensors_name(st, j);
          back[j].tensor = tfw_safetensors_get(st, back[j].name);
        }
        cr_assert(tfw_optimizer_load_state_dict(opt2, m, back) == TFW_OK, "%s", tfw_last_error());
        for (int j = 0; j < m; j++) tfw_release(back[j].tensor);
        free(back);
        tfw_safetensors_close(st);
        remove(path);
      } else {
        cr_assert(tfw_optimizer_load_state_dict(opt2, n, sd) == TFW_OK, "%s: %s", c->name,
                  tfw_last_error());
      }
      tfw_named_tensors_free(sd, n);
      run_steps(&pb, opt, ps, 10, 20);
      run_steps(&pb, opt2, qs, 10, 20);
      for (int k = 0; k < OR_NP; k++) {
        bool eq = false;
        cr_assert(tfw_equal(ps[k], qs[k], &eq) == TFW_OK);
        cr_expect(eq, "%s (%s): parameter %d differs after resuming", c->name,
                  tfw_dtype_name(dt), k);
      }
      /* the two optimizers' states are identical too */
      tfw_named_tensor *s1, *s2;
      int n1, n2;
      cr_assert(tfw_optimizer_state_dict(opt, &s1, &n1) == TFW_OK);
      cr_assert(tfw_optimizer_state_dict(opt2, &s2, &n2) == TFW_OK);
      cr_expect_eq(n1, n2);
      for (int j = 0; j < n1 && j < n2; j++) {
        bool eq = false;
        cr_expect_str_eq(s1[j].name, s2[j].name);
        cr_assert(tfw_equal(s1[j].tensor, s2[j].tensor, &eq) == TFW_OK);
        cr_expect(eq, "%s: state %s differs", c->name, s1[j].name);
      }
      tfw_named_tensors_free(s1, n1);
      tfw_named_tensors_free(s2, n2);
      tfw_optimizer_release(opt);
      tfw_optimizer_release(opt2);
      params_free(ps);
      params_free(qs);
    }
  }
  or_problem_free(&pb);
  th_expect_no_leaks();
}

/* The state dict's names and contents. */
Test(optim, state_dict_contents) {
  tfw_tensor *p = th_random(TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, -1, 1, 1);
  tfw_tensor_set_requires_grad(p, true);
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_ADAM);
  o.amsgrad = true;
  o.lr = 0.25;
  tfw_optimizer *opt = tfw_optimizer_create(TFW_OPTIM_ADAM, 1, &p, &o);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  tfw_backward(s, NULL, false, false);
  tfw_release(s);
  cr_assert(tfw_optimizer_step(opt) == TFW_OK);
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_optimizer_state_dict(opt, &sd, &n) == TFW_OK);
  const char *want[] = {"state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                        "state.0.max_exp_avg_sq", "param_groups.0.num_params",
                        "param_groups.0.lr", "param_groups.0.weight_decay",
                        "param_groups.0.beta1", "param_groups.0.beta2", "param_groups.0.eps",
                        "param_groups.0.amsgrad", "param_groups.0.maximize"};
  cr_assert_eq(n, 12);
  for (int i = 0; i < n; i++) cr_expect_str_eq(sd[i].name, want[i]);
  double v;
  tfw_item(sd[0].tensor, &v);
  cr_expect_eq(v, 1.0);
  tfw_item(sd[5].tensor, &v);
  cr_expect_eq(v, 0.25);
  cr_expect_eq(tfw_tensor_dtype(sd[1].tensor), TFW_DTYPE_F32);
  cr_expect_eq(tfw_tensor_dtype(sd[0].tensor), TFW_DTYPE_F64);
  /* exp_avg after one step of gradient 1: (1 - beta1) * 1 */
  double *m = th_values(sd[1].tensor);
  cr_expect(fabs(m[0] - 0.1) < 1e-7);
  free(m);
  /* the version counter moved: a graph that saved p before the step refuses to backward */
  tfw_named_tensors_free(sd, n);
  tfw_optimizer_release(opt);
  tfw_release(p);
  th_expect_no_leaks();
}

Test(optim, step_bumps_version_so_stale_graphs_fail) {
  tfw_tensor *p = th_random(TFW_DTYPE_F64, 1, (int64_t[]){4}, -1, 1, 2);
  tfw_tensor_set_requires_grad(p, true);
  tfw_optimizer *opt = tfw_sgd_new(1, &p, 0.1, 0, 0, false);
  tfw_tensor *sq = tfw_mul(p, p), *l = tfw_sum(sq, 0, NULL, false); /* saves p */
  tfw_tensor *l2 = tfw_sum(p, 0, NULL, false);
  cr_assert(tfw_backward(l2, NULL, false, false) == TFW_OK);
  cr_assert(tfw_optimizer_step(opt) == TFW_OK);
  th_expect_error(tfw_backward(l, NULL, false, false), TFW_ESTATE, "", "backward after step");
  tfw_release(sq), tfw_release(l), tfw_release(l2);
  tfw_optimizer_release(opt);
  tfw_release(p);
  th_expect_no_leaks();
}

static tfw_tensor *leaf(tfw_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  tfw_tensor *t = th_random(dt, ndim, shape, -1, 1, seed);
  if (tfw_dtype_is_floating(dt)) tfw_tensor_set_requires_grad(t, true);
  return t;
}

Test(optim, bad_inputs) {
  tfw_tensor *p = leaf(TFW_DTYPE_F32, 1, (int64_t[]){3}, 1);
  tfw_tensor *q = leaf(TFW_DTYPE_F32, 2, (int64_t[]){2, 2}, 2);
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_ADAM);
  o.lr = -1;
  th_expect_error(tfw_optimizer_create(TFW_OPTIM_ADAM, 1, &p, &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "invalid lr -1", "negative lr");
  o = tfw_optim_defaults(TFW_OPTIM_ADAM);
  o.beta1 = 1.0;
  th_expect_error(tfw_optimizer_create(TFW_OPTIM_ADAM, 1, &p, &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "invalid beta1 1", "beta1 = 1");
  o.beta1 = 0.9, o.beta2 = -0.1;
  th_expect_error(tfw_optimizer_create(TFW_OPTIM_ADAM, 1, &p, &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "invalid beta2 -0.1", "beta2 < 0");
  o = tfw_optim_defaults(TFW_OPTIM_SGD);
  o.nesterov = true;
  th_expect_error(tfw_optimizer_create(TFW_OPTIM_SGD, 1, &p, &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "Nesterov", "nesterov without momentum");
  o = tfw_optim_defaults(TFW_OPTIM_SGD);
  o.weight_decay = NAN;
  th_expect_error(tfw_optimizer_create(TFW_OPTIM_SGD, 1, &p, &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "weight_decay must be finite", "nan weight decay");
  /* dtypes */
  tfw_tensor *i = tfw_zeros(TFW_DTYPE_I32, 1, (int64_t[]){3});
  tfw_tensor *h = tfw_zeros(TFW_DTYPE_F16, 1, (int64_t[]){3});
  th_expect_error(tfw_sgd_new(1, &i, 0.1, 0, 0, false) ? TFW_OK : tfw_last_status(), TFW_EDTYPE,
                  "parameter 0 has dtype int32", "int param");
  th_expect_error(tfw_sgd_new(1, &h, 0.1, 0, 0, false) ? TFW_OK : tfw_last_status(), TFW_EDTYPE,
                  "float16", "f16 param");
  /* the same parameter twice, in a group and across groups */
  tfw_tensor *twice[2] = {p, p};
  th_expect_error(tfw_sgd_new(2, twice, 0.1, 0, 0, false) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "appears twice", "param twice");
  tfw_optimizer *opt = tfw_sgd_new(1, &p, 0.1, 0.9, 0, false);
  cr_assert(opt);
  th_expect_error(tfw_optimizer_add_param_group(opt, 1, &p, NULL), TFW_EVALUE,
                  "already in group 0", "param in two groups");
  /* non-leaf */
  tfw_tensor *nl = tfw_mul_scalar(p, 2);
  th_expect_error(tfw_optimizer_add_param_group(opt, 1, &nl, NULL), TFW_EVALUE, "not a leaf",
                  "non-leaf");
  th_expect_error(tfw_optimizer_set_lr(opt, 3, 0.1), TFW_EINDEX, "group 3 out of range", "lr group");
  th_expect_error(tfw_optimizer_set_lr(opt, 0, -0.5), TFW_EVALUE, "invalid lr -0.5", "set lr");
  cr_expect(isnan(tfw_optimizer_get_lr(opt, 1)));
  cr_expect(tfw_optimizer_add_param_group(opt, 1, &q, NULL) == TFW_OK);
  cr_expect_eq(tfw_optimizer_num_groups(opt), 2);
  tfw_optimizer_release(opt);
  tfw_release(i), tfw_release(h), tfw_release(nl);
  tfw_release(p), tfw_release(q);
  th_expect_no_leaks();
}

/* An Adam state dict with one key removed / one added / one mis-shaped / one bad value:
 * each fails naming the key, and the optimizer is unchanged. */
Test(optim, load_state_dict_is_strict) {
  tfw_tensor *p = leaf(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, 3);
  tfw_optimizer *opt = tfw_adam_new(1, &p, 0.1, 0);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  tfw_backward(s, NULL, false, false);
  tfw_release(s);
  tfw_optimizer_step(opt);
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_optimizer_state_dict(opt, &sd, &n) == TFW_OK);
  tfw_tensor *p2 = leaf(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, 4);
  tfw_optimizer *o2 = tfw_adam_new(1, &p2, 0.5, 0);
  /* missing: drop "state.0.exp_avg_sq" (index 2) */
  tfw_named_tensor cut[32];
  int m = 0;
  for (int j = 0; j < n; j++)
    if (strcmp(sd[j].name, "state.0.exp_avg_sq")) cut[m++] = sd[j];
  th_expect_error(tfw_optimizer_load_state_dict(o2, m, cut), TFW_EVALUE,
                  "missing key \"state.0.exp_avg_sq\"", "missing state");
  m = 0;
  for (int j = 0; j < n; j++)
    if (strcmp(sd[j].name, "param_groups.0.beta2")) cut[m++] = sd[j];
  th_expect_error(tfw_optimizer_load_state_dict(o2, m, cut), TFW_EVALUE,
                  "missing key \"param_groups.0.beta2\"", "missing hyperparameter");
  /* extra */
  for (int j = 0; j < n; j++) cut[j] = sd[j];
  tfw_tensor *extra = tfw_zeros(TFW_DTYPE_F64, 2, (int64_t[]){2, 3});
  cut[n] = (tfw_named_tensor){"state.0.momentum_buffer", extra};
  th_expect_error(tfw_optimizer_load_state_dict(o2, n + 1, cut), TFW_EVALUE,
                  "unexpected key \"state.0.momentum_buffer\"", "extra key");
  cut[n] = (tfw_named_tensor){"state.1.step", extra};
  th_expect_error(tfw_optimizer_load_state_dict(o2, n + 1, cut), TFW_EVALUE,
                  "unexpected key \"state.1.step\"", "state of a parameter that does not exist");
  /* mis-shaped */
  tfw_tensor *bad = tfw_zeros(TFW_DTYPE_F64, 2, (int64_t[]){3, 2});
  for (int j = 0; j < n; j++)
    if (!strcmp(sd[j].name, "state.0.exp_avg")) cut[j].tensor = bad;
  th_expect_error(tfw_optimizer_load_state_dict(o2, n, cut), TFW_EVALUE,
                  "key \"state.0.exp_avg\" has shape [3, 2], expected [2, 3]", "shape");
  /* invalid value */
  for (int j = 0; j < n; j++) cut[j] = sd[j];
  tfw_tensor *neg = tfw_scalar(TFW_DTYPE_F64, -3);
  for (int j = 0; j < n; j++)
    if (!strcmp(sd[j].name, "param_groups.0.lr")) cut[j].tensor = neg;
  th_expect_error(tfw_optimizer_load_state_dict(o2, n, cut), TFW_EVALUE, "invalid lr -3", "lr");
  /* wrong optimizer kind: SGD has none of Adam's keys */
  tfw_tensor *p3 = leaf(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, 5);
  tfw_optimizer *sgd = tfw_sgd_new(1, &p3, 0.1, 0.9, 0, false);
  th_expect_error(tfw_optimizer_load_state_dict(sgd, n, sd), TFW_EVALUE, "key", "kind mismatch");
  /* nothing changed */
  cr_expect_eq(tfw_optimizer_get_lr(o2, 0), 0.5);
  cr_expect_eq(tfw_optimizer_param_step(o2, 0), 0);
  cr_expect(tfw_optimizer_load_state_dict(o2, n, sd) == TFW_OK);
  cr_expect_eq(tfw_optimizer_get_lr(o2, 0), 0.1);
  cr_expect_eq(tfw_optimizer_param_step(o2, 0), 1);
  tfw_release(extra), tfw_release(bad), tfw_release(neg);
  tfw_named_tensors_free(sd, n);
  tfw_optimizer_release(opt), tfw_optimizer_release(o2), tfw_optimizer_release(sgd);
  tfw_release(p), tfw_release(p2), tfw_release(p3);
  th_expect_no_leaks();
}

Test(optim, grad_shape_mismatch_and_zero_grad) {
  tfw_tensor *p = leaf(TFW_DTYPE_F32, 1, (int64_t[]){3}, 6);
  tfw_optimizer *opt = tfw_sgd_new(1, &p, 0.1, 0.9, 0, false);
  tfw_optimizer_step(opt); /* no gradient: nothing happens */
  cr_expect_eq(tfw_optimizer_param_step(opt, 0), 0);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  tfw_backward(s, NULL, false, false);
  tfw_optimizer_zero_grad(opt, false);
  tfw_tensor *g = tfw_tensor_grad(p);
  cr_assert(g);
  th_expect_close(g, TFW_DTYPE_F32, 1, (int64_t[]){3}, (double[]){0, 0, 0}, 0, 0, "zeroed");
  tfw_release(g);
  tfw_optimizer_zero_grad(opt, true);
  cr_expect_null(tfw_tensor_grad(p));
  tfw_release(s);
  tfw_optimizer_release(opt);
  tfw_release(p);
  th_expect_no_leaks();
}

/* A non-contiguous parameter (a transposed view) is updated through its strides. */
Test(optim, non_contiguous_parameter) {
  tfw_tensor *base = th_random(TFW_DTYPE_F64, 2, (int64_t[]){3, 2}, -1, 1, 7);
  tfw_tensor *p = tfw_transpose(base, 0, 1);
  tfw_release(base);
  tfw_tensor_set_requires_grad(p, true);
  double *before = th_values(p);
  tfw_optimizer *opt = tfw_sgd_new(1, &p, 0.5, 0, 0, false);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  tfw_backward(s, NULL, false, false);
  cr_assert(tfw_optimizer_step(opt) == TFW_OK, "%s", tfw_last_error());
  double want[6];
  for (int j = 0; j < 6; j++) want[j] = before[j] - 0.5;
  th_expect_close(p, TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, want, 0, 1e-15, "strided sgd");
  free(before);
  tfw_release(s);
  tfw_optimizer_release(opt);
  tfw_release(p);
  th_expect_no_leaks();
}

/* Decay / no-decay split of a module: Linear weights decay; biases, LayerNorm and Embedding
 * weights do not. */
Test(optim, module_param_groups) {
  tfw_module *emb = tfw_embedding_new(10, 4, INT64_MIN, 0);
  tfw_module *lin = tfw_linear_new(4, 8, true);
  tfw_module *ln = tfw_layer_norm_new(1, (int64_t[]){8}, 1e-5, true);
  tfw_module *head = tfw_linear_new(8, 3, false);
  tfw_module *mods[4] = {emb, lin, ln, head};
  tfw_module *seq = tfw_sequential_new(4, mods);
  for (int i = 0; i < 4; i++) tfw_module_release(mods[i]);
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  o.weight_decay = 0.1;
  tfw_optimizer *opt = tfw_optimizer_new(TFW_OPTIM_ADAMW, &o);
  int nd = -1, nn = -1;
  cr_assert(tfw_optimizer_add_module_params(opt, seq, &o, &nd, &nn) == TFW_OK, "%s",
            tfw_last_error());
  cr_expect_eq(nd, 2); /* 1.weight, 3.weight */
  cr_expect_eq(nn, 4); /* 0.weight (Embedding), 1.bias, 2.weight, 2.bias */
  int n;
  tfw_tensor *const *g0 = tfw_optimizer_group_params(opt, 0, &n);
  cr_assert_eq(n, 2);
  cr_expect(g0[0] == tfw_module_get_parameter(seq, "1.weight"));
  cr_expect(g0[1] == tfw_module_get_parameter(seq, "3.weight"));
  tfw_tensor *const *g1 = tfw_optimizer_group_params(opt, 1, &n);
  cr_assert_eq(n, 4);
  cr_expect(g1[0] == tfw_module_get_parameter(seq, "0.weight"));
  tfw_optim_options got;
  tfw_optimizer_get_options(opt, 0, &got);
  cr_expect_eq(got.weight_decay, 0.1);
  tfw_optimizer_get_options(opt, 1, &got);
  cr_expect_eq(got.weight_decay, 0.0);
  tfw_optimizer_release(opt);
  tfw_module_release(seq);
  th_expect_no_leaks();
}
