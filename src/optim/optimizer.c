/* Optimizers: construction, parameter groups and their validation, zero_grad, lr access,
 * the module helper for decay / no-decay groups, and the strict state dict. The update
 * itself is in update.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "optim/optimizer.h"

const char *const tfw__opt_slot_names[][TFW__OPT_SLOTS] = {
    [TFW_OPTIM_SGD] = {"momentum_buffer", NULL, NULL},
    [TFW_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [TFW_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    [TFW_OPTIM_RMSPROP] = {"square_avg", "momentum_buffer", "grad_avg"},
    [TFW_OPTIM_ADAGRAD] = {"sum", NULL, NULL},
    [TFW_OPTIM_ADABELIEF] = {"exp_avg", "exp_avg_var", "max_exp_avg_var"},
    [TFW_OPTIM_LION] = {"exp_avg", NULL, NULL},
};

static bool kind_valid(tfw_optim_kind k) { return (int)k >= TFW_OPTIM_SGD && k <= TFW_OPTIM_LION; }

bool tfw__opt_slot_used(tfw_optim_kind kind, int k, const tfw_optim_options *o) {
  switch (kind) {
  case TFW_OPTIM_SGD: return k == 0 && o->momentum != 0;
  case TFW_OPTIM_ADAM:
  case TFW_OPTIM_ADAMW:
  case TFW_OPTIM_ADABELIEF: return k < 2 || (k == 2 && o->amsgrad);
  case TFW_OPTIM_RMSPROP: return k == 0 || (k == 1 && o->momentum > 0) || (k == 2 && o->centered);
  case TFW_OPTIM_ADAGRAD:
  case TFW_OPTIM_LION: return k == 0;
  }
  return false;
}

const char *tfw_optim_kind_name(tfw_optim_kind kind) {
  static const char *const names[] = {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "AdaBelief",
                                      "Lion"};
  return kind_valid(kind) ? names[kind] : "unknown";
}

tfw_optim_options tfw_optim_defaults(tfw_optim_kind kind) {
  tfw_optim_options o = {0};
  o.lr = 1e-3;
  o.beta1 = 0.9;
  o.beta2 = 0.999;
  o.eps = 1e-8;
  o.alpha = 0.99;
  switch (kind) {
  case TFW_OPTIM_ADAMW: o.weight_decay = 1e-2; break;
  case TFW_OPTIM_RMSPROP: o.lr = 1e-2; break;
  case TFW_OPTIM_ADAGRAD: o.lr = 1e-2; o.eps = 1e-10; break;
  case TFW_OPTIM_ADABELIEF: o.eps = 1e-16; o.decoupled_weight_decay = true; break;
  case TFW_OPTIM_LION: o.lr = 1e-4; o.beta2 = 0.99; break;
  default: break;
  }
  return o;
}

/* ---- hyperparameters: one table drives validation and the state dict ------------------------ */
enum { HP_BOOL = 1, HP_NONNEG = 2, HP_BETA = 4 };
typedef struct hp {
  const char *name;
  size_t off;
  int flags;
  unsigned kinds; /* bit per tfw_optim_kind */
} hp;
#define K(x) (1u << TFW_OPTIM_##x)
#define ALL (K(SGD) | K(ADAM) | K(ADAMW) | K(RMSPROP) | K(ADAGRAD) | K(ADABELIEF) | K(LION))
#define ADAMS (K(ADAM) | K(ADAMW) | K(ADABELIEF))
static const hp HPS[] = {
    {"lr", offsetof(tfw_optim_options, lr), HP_NONNEG, ALL},
    {"weight_decay", offsetof(tfw_optim_options, weight_decay), HP_NONNEG, ALL},
    {"momentum", offsetof(tfw_optim_options, momentum), HP_NONNEG, K(SGD) | K(RMSPROP)},
    {"dampening", offsetof(tfw_optim_options, dampening), 0, K(SGD)},
    {"nesterov", offsetof(tfw_optim_options, nesterov), HP_BOOL, K(SGD)},
    {"beta1", offsetof(tfw_optim_options, beta1), HP_BETA, ADAMS | K(LION)},
    {"beta2", offsetof(tfw_optim_options, beta2), HP_BETA, ADAMS | K(LION)},
    {"eps", offsetof(tfw_optim_options, eps), HP_NONNEG, ADAMS | K(RMSPROP) | K(ADAGRAD)},
    {"amsgrad", offsetof(tfw_optim_options, amsgrad), HP_BOOL, ADAMS},
    {"maximize", offsetof(tfw_optim_options, maximize), HP_BOOL, ALL},
    {"alpha", offsetof(tfw_optim_options, alpha), HP_NONNEG, K(RMSPROP)},
    {"centered", offsetof(tfw_optim_options, centered), HP_BOOL, K(RMSPROP)},
    {"lr_decay", offsetof(tfw_optim_options, lr_decay), HP_NONNEG, K(ADAGRAD)},
    {"initial_accumulator_value", offsetof(tfw_optim_options, initial_accumulator_value),
     HP_NONNEG, K(ADAGRAD)},
    {"decoupled_weight_decay", offsetof(tfw_optim_options, decoupled_weight_decay), HP_BOOL,
     K(ADABELIEF)},
};
#define N_HPS ((int)(sizeof HPS / sizeof HPS[0]))

static double hp_get(const tfw_optim_options *o, const hp *h) {
  const char *b = (const char *)o + h->off;
  return (h->flags & HP_BOOL) ? (*(const bool *)b ? 1.0 : 0.0) : *(const double *)b;
}
static void hp_set(tfw_optim_options *o, const hp *h, double v) {
  char *b = (char *)o + h->off;
  if (h->flags & HP_BOOL) *(bool *)b = v != 0;
  else *(double *)b = v;
}

static tfw_status check_options(const char *op, tfw_optim_kind kind, const tfw_optim_options *o) {
  for (int i = 0; i < N_HPS; i++) {
    const hp *h = &HPS[i];
    if (!(h->kinds & (1u << kind)) || (h->flags & HP_BOOL)) continue;
    double v = hp_get(o, h);
    if (!isfinite(v))
      return tfw__error(TFW_EVALUE, "%s: %s: %s must be finite, got %g", op,
                        tfw_optim_kind_name(kind), h->name, v);
    if ((h->flags & HP_NONNEG) && v < 0)
      return tfw__error(TFW_EVALUE, "%s: %s: invalid %s %g (must be >= 0)", op,
                        tfw_optim_kind_name(kind), h->name, v);
    if ((h->flags & HP_BETA) && !(v >= 0 && v < 1))
      return tfw__error(TFW_EVALUE, "%s: %s: invalid %s %g (must be in [0, 1))", op,
                        tfw_optim_kind_name(kind), h->name, v);
  }
  if (kind == TFW_OPTIM_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
    return tfw__error(TFW_EVALUE, "%s: SGD: Nesterov momentum requires a momentum and zero "
                                  "dampening (momentum %g, dampening %g)", op, o->momentum,
                      o->dampening);
  return TFW_OK;
}

/* ---- construction ---------------------------------------------------------------------------- */
tfw_optimizer *tfw_optimizer_new(tfw_optim_kind kind, const tfw_optim_options *defaults) {
  if (!kind_valid(kind)) {
    tfw__error(TFW_EVALUE, "optimizer_new: unknown optimizer kind %d", (int)kind);
    return NULL;
  }
  tfw_optim_options d = defaults ? *defaults : tfw_optim_defaults(kind);
  if (check_options("optimizer_new", kind, &d)) return NULL;
  tfw_optimizer *opt = tfw__calloc(1, sizeof *opt);
  if (!opt) {
    tfw__error(TFW_ENOMEM, "optimizer_new: out of memory");
    return NULL;
  }
  opt->kind = kind;
  opt->defaults = d;
  return opt;
}

tfw_status tfw_optimizer_add_param_group(tfw_optimizer *opt, int n, tfw_tensor *const *params,
                                         const tfw_optim_options *opts) {
  const char *op = "optimizer_add_param_group";
  if (!opt) return tfw__error(TFW_EVALUE, "%s: optimizer is NULL", op);
  if (n < 0 || (n > 0 && !params))
    return tfw__error(TFW_EVALUE, "%s: invalid parameter list (n = %d)", op, n);
  tfw_optim_options o = opts ? *opts : opt->defaults;
  tfw_status st = check_options(op, opt->kind, &o);
  if (st) return st;
  for (int i = 0; i < n; i++) {
    const tfw_tensor *p = params[i];
    if (!p) return tfw__error(TFW_EVALUE, "%s: parameter %d is NULL", op, i);
    if (p->dtype != TFW_DTYPE_F32 && p->dtype != TFW_DTYPE_F64)
      return tfw__error(TFW_EDTYPE, "%s: parameter %d has dtype %s; optimizers support float32 "
                                    "and float64 parameters", op, i, tfw_dtype_name(p->dtype));
    if (!tfw_tensor_is_leaf(p))
      return tfw__error(TFW_EVALUE, "%s: parameter %d is not a leaf tensor (made by %s); "
                                    "optimize leaves only", op, i, tfw_tensor_grad_fn_name(p));
    for (int j = 0; j < i; j++)
      if (params[j] == p)
        return tfw__error(TFW_EVALUE, "%s: parameter %d appears twice in the group (also at %d)",
                          op, i, j);
    for (int j = 0; j < opt->n_params; j++)
      if (opt->params[j].p == p)
        return tfw__error(TFW_EVALUE, "%s: parameter %d is already in group %d of the optimizer",
                          op, i, opt->params[j].group);
  }
  if (opt->n_params + n > opt->cap_params) {
    int cap = opt->cap_params ? opt->cap_params : 16;
    while (cap < opt->n_params + n) cap *= 2;
    tfw__opt_param *v = tfw__realloc(opt->params, (size_t)cap * sizeof *v);
    if (!v) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    opt->params = v;
    tfw_tensor **pv = tfw__realloc(opt->ptrs, (size_t)cap * sizeof *pv);
    if (!pv) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    opt->ptrs = pv;
    opt->cap_params = cap;
  }
  if (opt->n_groups == opt->cap_groups) {
    int cap = opt->cap_groups ? opt->cap_groups * 2 : 4;
    tfw__opt_group *v = tfw__realloc(opt->groups, (size_t)cap * sizeof *v);
    if (!v) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    opt->groups = v;
    opt->cap_groups = cap;
  }
  int g = opt->n_groups++;
  opt->groups[g] = (tfw__opt_group){o, opt->n_params, n};
  for (int i = 0; i < n; i++) {
    tfw__opt_param *pp = &opt->params[opt->n_params];
    memset(pp, 0, sizeof *pp);
    pp->p = tfw_retain(params[i]);
    pp->group = g;
    opt->ptrs[opt->n_params++] = pp->p;
  }
  return TFW_OK;
}

tfw_optimizer *tfw_optimizer_create(tfw_optim_kind kind, int n, tfw_tensor *const *params,
                                    const tfw_optim_options *opts) {
  tfw_optimizer *opt = tfw_optimizer_new(kind, opts);
  if (opt && tfw_optimizer_add_param_group(opt, n, params, NULL) != TFW_OK) {
    tfw_optimizer_release(opt);
    return NULL;
  }
  return opt;
}

tfw_optimizer *tfw_sgd_new(int n, tfw_tensor *const *params, double lr, double momentum,
                           double weight_decay, bool nesterov) {
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_SGD);
  o.lr = lr;
  o.momentum = momentum;
  o.weight_decay = weight_decay;
  o.nesterov = nesterov;
  return tfw_optimizer_create(TFW_OPTIM_SGD, n, params, &o);
}

tfw_optimizer *tfw_adam_new(int n, tfw_tensor *const *params, double lr, double weight_decay) {
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_ADAM);
  o.lr = lr;
  o.weight_decay = weight_decay;
  return tfw_optimizer_create(TFW_OPTIM_ADAM, n, params, &o);
}

tfw_optimizer *tfw_adamw_new(int n, tfw_tensor *const *params, double lr, double weight_decay) {
  tfw_optim_options o = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  o.lr = lr;
  o.weight_decay = weight_decay;
  return tfw_optimizer_create(TFW_OPTIM_ADAMW, n, params, &o);
}

void tfw_optimizer_release(tfw_optimizer *opt) {
  if (!opt) return;
  for (int i = 0; i < opt->n_params; i++) {
    tfw_release(opt->params[i].p);
    for (int k = 0; k < TFW__OPT_SLOTS; k++) tfw_release(opt->params[i].slot[k]);
  }
  tfw__free(opt->params);
  tfw__free(opt->ptrs);
  tfw__free(opt->groups);
  tfw__free(opt);
}

/* ---- the module helper ------------------------------------------------------------------------ */
static bool no_decay_owner(const tfw_module *root, const char *path) {
  const char *dot = strrchr(path, '.');
  const tfw_module *owner = root;
  if (dot) {
    char buf[512];
    size_t len = (size_t)(dot - path);
    if (len >= sizeof buf) return false;
    memcpy(buf, path, len);
    buf[len] = 0;
    owner = tfw_module_get_child(root, buf);
  }
  const char *type = owner ? tfw_module_type(owner) : NULL;
  return type && (strstr(type, "Norm") || strcmp(type, "Embedding") == 0);
}

tfw_status tfw_optimizer_add_module_params(tfw_optimizer *opt, const tfw_module *m,
                                           const tfw_optim_options *opts, int *n_decay,
                                           int *n_no_decay) {
  const char *op = "optimizer_add_module_params";
  if (!opt || !m) return tfw__error(TFW_EVALUE, "%s: %s is NULL", op, opt ? "module" : "optimizer");
  tfw_named_tensor *list;
  int n;
  tfw_status st = tfw_module_named_parameters(m, &list, &n);
  if (st) return st;
  tfw_tensor **dec = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof *dec);
  tfw_tensor **nod = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof *nod);
  if (!dec || !nod) {
    tfw__free(dec), tfw__free(nod);
    tfw_named_tensors_free(list, n);
    return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  }
  int nd = 0, nn = 0;
  for (int i = 0; i < n; i++) {
    tfw_tensor *p = list[i].tensor;
    if (p->ndim <= 1 || no_decay_owner(m, list[i].name)) nod[nn++] = p;
    else dec[nd++] = p;
  }
  tfw_optim_options a = opts ? *opts : opt->defaults, b = a;
  b.weight_decay = 0;
  int before = opt->n_groups;
  st = tfw_optimizer_add_param_group(opt, nd, dec, &a);
  if (st == TFW_OK) st = tfw_optimizer_add_param_group(opt, nn, nod, &b);
  if (st != TFW_OK) { /* keep the optimizer as it was */
    while (opt->n_groups > before) {
      tfw__opt_group *g = &opt->groups[--opt->n_groups];
      for (int i = g->first; i < g->first + g->n; i++) tfw_release(opt->params[i].p);
      opt->n_params = g->first;
    }
  } else {
    if (n_decay) *n_decay = nd;
    if (n_no_decay) *n_no_decay = nn;
  }
  tfw__free(dec), tfw__free(nod);
  tfw_named_tensors_free(list, n);
  return st;
}

/* ---- access ----------------------------------------------------------------------------------- */
void tfw_optimizer_zero_grad(tfw_optimizer *opt, bool set_to_none) {
  if (!opt) return;
  for (int i = 0; i < opt->n_params; i++) {
    tfw_tensor *p = opt->params[i].p, *g = tfw__param_grad(p);
    if (!g) continue;
    if (set_to_none) {
      tfw__param_set_grad(p, NULL);
    } else {
      /* a fresh zero tensor: the old gradient may alias other tensors (backward can hand a
       * grad_output or an expanded view over as a leaf's gradient) */
      tfw_tensor *z = tfw_zeros(g->dtype, g->ndim, g->shape);
      if (z) tfw__param_set_grad(p, z);
      else tfw__param_set_grad(p, NULL);
      tfw_release(z);
    }
  }
}

tfw_optim_kind tfw_optimizer_kind(const tfw_optimizer *opt) { return opt ? opt->kind : TFW_OPTIM_SGD; }
int tfw_optimizer_num_groups(const tfw_optimizer *opt) { return opt ? opt->n_groups : 0; }
int tfw_optimizer_num_params(const tfw_optimizer *opt) { return opt ? opt->n_params : 0; }

static bool group_ok(const char *op, const tfw_optimizer *opt, int group) {
  if (!opt) {
    tfw__error(TFW_EVALUE, "%s: optimizer is NULL", op);
    return false;
  }
  if (group < 0 || group >= opt->n_groups) {
    tfw__error(TFW_EINDEX, "%s: group %d out of range (the optimizer has %d)", op, group,
               opt->n_groups);
    return false;
  }
  return true;
}

tfw_tensor *const *tfw_optimizer_group_params(const tfw_optimizer *opt, int group, int *n) {
  if (n) *n = 0;
  if (!group_ok("optimizer_group_params", opt, group)) return NULL;
  if (n) *n = opt->groups[group].n;
  return opt->ptrs + opt->groups[group].first;
}

double tfw_optimizer_get_lr(const tfw_optimizer *opt, int group) {
  return group_ok("optimizer_get_lr", opt, group) ? opt->groups[group].o.lr : NAN;
}

tfw_status tfw_optimizer_set_lr(tfw_optimizer *opt, int group, double lr) {
  if (!group_ok("optimizer_set_lr", opt, group)) return tfw_last_status();
  if (!(lr >= 0) || !isfinite(lr))
    return tfw__error(TFW_EVALUE, "optimizer_set_lr: invalid lr %g for group %d (must be a "
                                  "finite value >= 0)", lr, group);
  opt->groups[group].o.lr = lr;
  return TFW_OK;
}

tfw_status tfw_optimizer_get_options(const tfw_optimizer *opt, int group, tfw_optim_options *out) {
  if (!group_ok("optimizer_get_options", opt, group)) return tfw_last_status();
  if (!out) return tfw__error(TFW_EVALUE, "optimizer_get_options: out is NULL");
  *out = opt->groups[group].o;
  return TFW_OK;
}

tfw_status tfw_optimizer_set_options(tfw_optimizer *opt, int group, const tfw_optim_options *o) {
  if (!group_ok("optimizer_set_options", opt, group)) return tfw_last_status();
  if (!o) return tfw__error(TFW_EVALUE, "optimizer_set_options: options are NULL");
  tfw_status st = check_options("optimizer_set_options", opt->kind, o);
  if (st) return st;
  opt->groups[group].o = *o;
  return TFW_OK;
}

int64_t tfw_optimizer_param_step(const tfw_optimizer *opt, int param) {
  if (!opt || param < 0 || param >= opt->n_params) return -1;
  return opt->params[param].step;
}

/* ---- state dict ----------------------------------------------------------------------------- */
tfw_status tfw_optimizer_state_dict(const tfw_optimizer *opt, tfw_named_tensor **out, int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "optimizer_state_dict: out and count are required");
  *out = NULL;
  *count = 0;
  if (!opt) return tfw__error(TFW_EVALUE, "optimizer_state_dict: optimizer is NULL");
  tfw__sd_builder b = {0};
  for (int i = 0; i < opt->n_params; i++) {
    const tfw__opt_param *pp = &opt->params[i];
    if (pp->step == 0) continue;
    tfw__sd_add_scalar(&b, (double)pp->step, "state.%d.step", i);
    for (int k = 0; k < TFW__OPT_SLOTS; k++)
      if (pp->slot[k])
        tfw__sd_add_copy(&b, pp->slot[k], "state.%d.%s", i, tfw__opt_slot_names[opt->kind][k]);
  }
  for (int g = 0; g < opt->n_groups; g++) {
    const tfw__opt_group *gr = &opt->groups[g];
    tfw__sd_add_scalar(&b, gr->n, "param_groups.%d.num_params", g);
    for (int h = 0; h < N_HPS; h++)
      if (HPS[h].kinds & (1u << opt->kind))
        tfw__sd_add_scalar(&b, hp_get(&gr->o, &HPS[h]), "param_groups.%d.%s", g, HPS[h].name);
  }
  return tfw__sd_finish(&b, out, count);
}

tfw_status tfw_optimizer_load_state_dict(tfw_optimizer *opt, int n, const tfw_named_tensor *sd) {
  const char *op = "optimizer_load_state_dict";
  if (!opt) return tfw__error(TFW_EVALUE, "%s: optimizer is NULL", op);
  tfw__sd_reader r;
  tfw_status st = tfw__sd_reader_init(&r, op, n, sd);
  if (st) {
    tfw__sd_reader_free(&r);
    return st;
  }
  int np = opt->n_params, ng = opt->n_groups;
  tfw_optim_options *go = tfw__calloc((size_t)(ng > 0 ? ng : 1), sizeof *go);
  tfw__opt_param *ps = tfw__calloc((size_t)(np > 0 ? np : 1), sizeof *ps); /* new state */
  if (!go || !ps) {
    st = tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    goto done;
  }
  /* groups: sizes and hyperparameters */
  for (int g = 0; g < ng && !st; g++) {
    double v;
    st = tfw__sd_scalar(&r, &v, "param_groups.%d.num_params", g);
    if (!st && v != opt->groups[g].n)
      st = tfw__error(TFW_EVALUE, "%s: group %d has %d parameters but the state dict's "
                                  "\"param_groups.%d.num_params\" is %g", op, g,
                      opt->groups[g].n, g, v);
    go[g] = opt->groups[g].o;
    for (int h = 0; h < N_HPS && !st; h++) {
      if (!(HPS[h].kinds & (1u << opt->kind))) continue;
      st = tfw__sd_scalar(&r, &v, "param_groups.%d.%s", g, HPS[h].name);
      if (!st) hp_set(&go[g], &HPS[h], v);
    }
    if (!st) st = check_options(op, opt->kind, &go[g]);
  }
  /* per-parameter state */
  for (int i = 0; i < np && !st; i++) {
    const tfw_tensor *p = opt->params[i].p;
    const tfw_tensor *stp = tfw__sd_find(&r, "state.%d.step", i);
    if (!stp) continue;
    double v;
    st = tfw__sd_scalar(&r, &v, "state.%d.step", i);
    if (!st && (v < 1 || v != floor(v) || v > 9e15))
      st = tfw__error(TFW_EVALUE, "%s: \"state.%d.step\" must be a positive integer, got %g", op,
                      i, v);
    if (st) break;
    ps[i].step = (int64_t)v;
    const tfw_optim_options *o = &go[opt->params[i].group];
    for (int k = 0; k < TFW__OPT_SLOTS && !st; k++) {
      const char *name = tfw__opt_slot_names[opt->kind][k];
      if (!name) continue;
      const tfw_tensor *t = tfw__sd_find(&r, "state.%d.%s", i, name);
      char key[96];
      snprintf(key, sizeof key, "state.%d.%s", i, name);
      bool used = tfw__opt_slot_used(opt->kind, k, o);
      if (!t) {
        /* SGD's momentum buffer is created by the first step that uses momentum */
        if (used && opt->kind != TFW_OPTIM_SGD)
          st = tfw__error(TFW_EVALUE, "%s: missing key \"%s\"", op, key);
        continue;
      }
      if (!used) {
        st = tfw__error(TFW_EVALUE, "%s: unexpected key \"%s\" (not used with this group's "
                                    "options)", op, key);
        break;
      }
      st = tfw__sd_check_shape(op, key, t, p->ndim, p->shape);
      if (st) break;
      if (!tfw_dtype_is_floating(t->dtype)) {
        st = tfw__error(TFW_EDTYPE, "%s: key \"%s\" has dtype %s, expected a floating dtype", op,
                        key, tfw_dtype_name(t->dtype));
        break;
      }
      tfw_tensor *c = tfw_empty(p->dtype, p->ndim, p->shape);
      if (!c || tfw__copy_cast(c, t) != TFW_OK) {
        tfw_release(c);
        st = tfw_last_status();
        break;
      }
      ps[i].slot[k] = c;
    }
  }
  if (!st) st = tfw__sd_check_unused(&r);
  if (!st) { /* commit */
    for (int g = 0; g < ng; g++) opt->groups[g].o = go[g];
    for (int i = 0; i < np; i++) {
      tfw__opt_param *pp = &opt->params[i];
      pp->step = ps[i].step;
      for (int k = 0; k < TFW__OPT_SLOTS; k++) {
        tfw_release(pp->slot[k]);
        pp->slot[k] = ps[i].slot[k];
        ps[i].slot[k] = NULL;
      }
    }
  }
done:
  if (ps)
    for (int i = 0; i < np; i++)
      for (int k = 0; k < TFW__OPT_SLOTS; k++) tfw_release(ps[i].slot[k]);
  tfw__free(ps);
  tfw__free(go);
  tfw__sd_reader_free(&r);
  return st;
}
