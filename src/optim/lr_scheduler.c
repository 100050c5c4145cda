/* Learning-rate schedulers with torch.optim.lr_scheduler's semantics (PyTorch 1.13).
 *
 * Every scheduler but ReduceLROnPlateau computes the lr of an epoch in closed form from the
 * base lrs (PyTorch's `_get_closed_form_lr`; its chainable forms give the same values up to
 * rounding), which makes a scheduler a pure function of (configuration, last_epoch) and its
 * state dict trivially exact. CosineAnnealingWarmRestarts walks its periods with integers (no
 * float log as in PyTorch's epoch= branch), as its step() without an epoch does. OneCycleLR
 * also writes momentum (SGD, RMSprop) or beta1 (Adam-like kinds, Lion) of each group.
 * ReduceLROnPlateau reads and writes the optimizer's lrs as PyTorch does. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "optim/optimizer.h"

typedef enum sched_type {
  S_STEP, S_MULTISTEP, S_EXP, S_COSINE, S_RESTARTS, S_POLY, S_LINEAR, S_WARMUP, S_ONECYCLE,
  S_PLATEAU
} sched_type;

static const char *const TYPE_NAMES[] = {"StepLR", "MultiStepLR", "ExponentialLR",
                                         "CosineAnnealingLR", "CosineAnnealingWarmRestarts",
                                         "PolynomialLR", "LinearLR", "Warmup", "OneCycleLR",
                                         "ReduceLROnPlateau"};

#define MAX_FIELDS 16

struct tfw_lr_scheduler {
  sched_type type;
  tfw_optimizer *opt; /* borrowed */
  int ng;
  double *base_lrs, *last_lrs, *per_group; /* per_group: OneCycle max_lrs, plateau min_lrs */
  int64_t *milestones;
  int n_milestones;
  double last_epoch;
  /* configuration and counters, all doubles (integers stay exact below 2^53) */
  double a, b, c, d;           /* type-specific, named in fields() */
  double t_cur, t_i;           /* warm restarts */
  tfw_one_cycle_options oc;
  tfw_plateau_options pl;
  double best, num_bad, cooldown_counter;
  tfw_lr_scheduler *inner;     /* warmup */
};

typedef struct field {
  const char *name;
  double *v;
} field;

/* The scalar fields of s's state dict beyond last_epoch. */
static int fields(tfw_lr_scheduler *s, field *f) {
  int n = 0;
#define F(nm, ptr) (f[n++] = (field){nm, ptr})
  switch (s->type) {
  case S_STEP: F("step_size", &s->a), F("gamma", &s->b); break;
  case S_MULTISTEP: F("gamma", &s->b); break;
  case S_EXP: F("gamma", &s->b); break;
  case S_COSINE: F("T_max", &s->a), F("eta_min", &s->b); break;
  case S_RESTARTS:
    F("T_0", &s->a), F("T_mult", &s->c), F("eta_min", &s->b), F("T_cur", &s->t_cur),
        F("T_i", &s->t_i);
    break;
  case S_POLY: F("total_iters", &s->a), F("power", &s->b); break;
  case S_LINEAR: F("start_factor", &s->b), F("end_factor", &s->c), F("total_iters", &s->a); break;
  case S_WARMUP: F("warmup_steps", &s->a), F("start_factor", &s->b), F("has_inner", &s->d); break;
  case S_ONECYCLE:
    F("total_steps", &s->a), F("pct_start", &s->oc.pct_start), F("anneal_linear", &s->b),
        F("cycle_momentum", &s->c), F("base_momentum", &s->oc.base_momentum),
        F("max_momentum", &s->oc.max_momentum), F("div_factor", &s->oc.div_factor),
        F("final_div_factor", &s->oc.final_div_factor), F("three_phase", &s->d);
    break;
  case S_PLATEAU:
    F("mode_max", &s->a), F("factor", &s->pl.factor), F("patience", &s->b),
        F("threshold", &s->pl.threshold), F("threshold_abs", &s->c), F("cooldown", &s->d),
        F("eps", &s->pl.eps), F("best", &s->best), F("num_bad_epochs", &s->num_bad),
        F("cooldown_counter", &s->cooldown_counter);
    break;
  }
#undef F
  return n;
}

/* ---- closed forms ---------------------------------------------------------------------------- */
static double anneal(const tfw_lr_scheduler *s, double start, double end, double pct) {
  if (s->b != 0) return (end - start) * pct + start;
  return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1);
}

typedef struct phase {
  double end, lr0, lr1, m0, m1;
} phase;

/* OneCycle's lr (and momentum, *mom) of group g at step e (PyTorch's get_lr). */
static double one_cycle_at(const tfw_lr_scheduler *s, int g, double e, double *mom) {
  double max_lr = s->per_group[g], initial = max_lr / s->oc.div_factor;
  double min_lr = initial / s->oc.final_div_factor, total = s->a;
  double bm = s->oc.base_momentum, mm = s->oc.max_momentum;
  double end1 = s->oc.pct_start * total - 1;
  phase ph[3];
  int n;
  if (s->d != 0) {
    ph[0] = (phase){end1, initial, max_lr, mm, bm};
    ph[1] = (phase){2 * s->oc.pct_start * total - 2, max_lr, initial, bm, mm};
    ph[2] = (phase){total - 1, initial, min_lr, mm, mm};
    n = 3;
  } else {
    ph[0] = (phase){end1, initial, max_lr, mm, bm};
    ph[1] = (phase){total - 1, max_lr, min_lr, bm, mm};
    n = 2;
  }
  double start = 0;
  for (int i = 0; i < n; i++) {
    if (e <= ph[i].end || i == n - 1) {
      double pct = (e - start) / (ph[i].end - start);
      *mom = anneal(s, ph[i].m0, ph[i].m1, pct);
      return anneal(s, ph[i].lr0, ph[i].lr1, pct);
    }
    start = ph[i].end;
  }
  *mom = mm;
  return max_lr;
}

static double lr_at(const tfw_lr_scheduler *s, int g, double e) {
  double base = s->base_lrs[g];
  switch (s->type) {
  case S_STEP: return base * pow(s->b, floor(e / s->a));
  case S_MULTISTEP: {
    int k = 0;
    while (k < s->n_milestones && (double)s->milestones[k] <= e) k++;
    return base * pow(s->b, k);
  }
  case S_EXP: return base * pow(s->b, e);
  case S_COSINE: return s->b + (base - s->b) * (1 + cos(M_PI * e / s->a)) / 2;
  case S_RESTARTS: {
    double t_cur = e, t_i = s->a;
    while (t_cur >= t_i) t_cur -= t_i, t_i *= s->c;
    return s->b + (base - s->b) * (1 + cos(M_PI * t_cur / t_i)) / 2;
  }
  case S_POLY: return base * pow(1.0 - fmin(s->a, e) / s->a, s->b);
  case S_LINEAR: return base * (s->b + (s->c - s->b) * fmin(s->a, e) / s->a);
  case S_WARMUP:
    if (e < s->a) return base * (s->b + (1.0 - s->b) * e / s->a);
    return s->inner ? lr_at(s->inner, g, e - s->a) : base;
  case S_ONECYCLE: {
    double m;
    return one_cycle_at(s, g, e, &m);
  }
  case S_PLATEAU: return s->last_lrs[g];
  }
  return base;
}

/* Sets the lrs of epoch last_epoch (and OneCycle's momentum). */
static tfw_status apply(tfw_lr_scheduler *s) {
  for (int g = 0; g < s->ng; g++) {
    double lr = lr_at(s, g, s->last_epoch);
    if (s->type == S_ONECYCLE && s->c != 0) {
      double m;
      one_cycle_at(s, g, s->last_epoch, &m);
      tfw_optim_options o;
      tfw_optimizer_get_options(s->opt, g, &o);
      if (s->opt->kind == TFW_OPTIM_SGD || s->opt->kind == TFW_OPTIM_RMSPROP) o.momentum = m;
      else o.beta1 = m;
      s->opt->groups[g].o = o; /* PyTorch does not validate these writes either */
    }
    if (!(lr >= 0) || !isfinite(lr))
      return tfw__error(TFW_EVALUE, "%s: computed an invalid lr %g for group %d at epoch %.0f",
                        TYPE_NAMES[s->type], lr, g, s->last_epoch);
    s->opt->groups[g].o.lr = lr;
    s->last_lrs[g] = lr;
  }
  return TFW_OK;
}

/* ---- construction ---------------------------------------------------------------------------- */
static tfw_lr_scheduler *sched_new(const char *op, tfw_optimizer *opt, sched_type type) {
  if (!opt) {
    tfw__error(TFW_EVALUE, "%s: optimizer is NULL", op);
    return NULL;
  }
  int ng = opt->n_groups;
  if (ng == 0) {
    tfw__error(TFW_EVALUE, "%s: the optimizer has no parameter groups", op);
    return NULL;
  }
  tfw_lr_scheduler *s = tfw__calloc(1, sizeof *s);
  if (s) {
    s->base_lrs = tfw__calloc((size_t)ng, sizeof(double));
    s->last_lrs = tfw__calloc((size_t)ng, sizeof(double));
    s->per_group = tfw__calloc((size_t)ng, sizeof(double));
  }
  if (!s || !s->base_lrs || !s->last_lrs || !s->per_group) {
    tfw_lr_scheduler_release(s);
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    return NULL;
  }
  s->type = type;
  s->opt = opt;
  s->ng = ng;
  for (int g = 0; g < ng; g++) s->base_lrs[g] = s->last_lrs[g] = opt->groups[g].o.lr;
  return s;
}

/* Validates the configuration (constructors and load_state_dict). */
static tfw_status validate(const tfw_lr_scheduler *s) {
  const char *t = TYPE_NAMES[s->type];
#define REQ(cond, ...) \
  if (!(cond)) return tfw__error(TFW_EVALUE, __VA_ARGS__)
  switch (s->type) {
  case S_STEP: REQ(s->a >= 1, "%s: step_size must be >= 1, got %.0f", t, s->a); break;
  case S_COSINE: REQ(s->a >= 1, "%s: T_max must be >= 1, got %.0f", t, s->a); break;
  case S_RESTARTS:
    REQ(s->a >= 1, "%s: T_0 must be >= 1, got %.0f", t, s->a);
    REQ(s->c >= 1, "%s: T_mult must be >= 1, got %.0f", t, s->c);
    break;
  case S_POLY: REQ(s->a >= 1, "%s: total_iters must be >= 1, got %.0f", t, s->a); break;
  case S_LINEAR:
    REQ(s->b > 0 && s->b <= 1, "%s: start_factor must be in (0, 1], got %g", t, s->b);
    REQ(s->c >= 0 && s->c <= 1, "%s: end_factor must be in [0, 1], got %g", t, s->c);
    REQ(s->a >= 1, "%s: total_iters must be >= 1, got %.0f", t, s->a);
    break;
  case S_WARMUP:
    REQ(s->a >= 1, "%s: warmup_steps must be >= 1, got %.0f", t, s->a);
    REQ(s->b > 0 && s->b <= 1, "%s: start_factor must be in (0, 1], got %g", t, s->b);
    break;
  case S_ONECYCLE:
    REQ(s->a >= 1, "%s: total_steps must be >= 1, got %.0f", t, s->a);
    REQ(s->oc.pct_start >= 0 && s->oc.pct_start <= 1, "%s: pct_start must be in [0, 1], got %g",
        t, s->oc.pct_start);
    REQ(s->oc.div_factor > 0 && s->oc.final_div_factor > 0,
        "%s: div_factor and final_div_factor must be > 0 (got %g, %g)", t, s->oc.div_factor,
        s->oc.final_div_factor);
    for (int g = 0; g < s->ng; g++)
      REQ(s->per_group[g] >= 0, "%s: max_lr of group %d must be >= 0, got %g", t, g,
          s->per_group[g]);
    break;
  case S_PLATEAU:
    REQ(s->pl.factor >= 0 && s->pl.factor < 1, "%s: factor must be in [0, 1), got %g", t,
        s->pl.factor);
    REQ(s->b >= 0, "%s: patience must be >= 0, got %.0f", t, s->b);
    REQ(s->d >= 0, "%s: cooldown must be >= 0, got %.0f", t, s->d);
    REQ(s->pl.threshold >= 0, "%s: threshold must be >= 0, got %g", t, s->pl.threshold);
    for (int g = 0; g < s->ng; g++)
      REQ(s->per_group[g] >= 0, "%s: min_lr of group %d must be >= 0, got %g", t, g,
          s->per_group[g]);
    break;
  default: break;
  }
#undef REQ
  field f[MAX_FIELDS];
  int n = fields((tfw_lr_scheduler *)s, f);
  for (int i = 0; i < n; i++)
    if (isnan(*f[i].v) || (isinf(*f[i].v) && strcmp(f[i].name, "best") != 0))
      return tfw__error(TFW_EVALUE, "%s: %s must be finite, got %g", t, f[i].name, *f[i].v);
  return TFW_OK;
}

/* Validates, then sets the lrs of epoch 0 (PyTorch's initial step). */
static tfw_lr_scheduler *finish(tfw_lr_scheduler *s) {
  if (validate(s) != TFW_OK || apply(s) != TFW_OK) {
    tfw_lr_scheduler_release(s);
    return NULL;
  }
  return s;
}

tfw_lr_scheduler *tfw_step_lr_new(tfw_optimizer *opt, int64_t step_size, double gamma) {
  tfw_lr_scheduler *s = sched_new("step_lr_new", opt, S_STEP);
  if (!s) return NULL;
  s->a = (double)step_size, s->b = gamma;
  return finish(s);
}

tfw_lr_scheduler *tfw_multistep_lr_new(tfw_optimizer *opt, int n, const int64_t *milestones,
                                       double gamma) {
  if (n < 0 || (n > 0 && !milestones)) {
    tfw__error(TFW_EVALUE, "multistep_lr_new: invalid milestones (n = %d)", n);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (milestones[i] < 0 || (i > 0 && milestones[i] < milestones[i - 1])) {
      tfw__error(TFW_EVALUE, "multistep_lr_new: milestones must be non-decreasing and >= 0 "
                             "(milestone %d is %lld)", i, (long long)milestones[i]);
      return NULL;
    }
  tfw_lr_scheduler *s = sched_new("multistep_lr_new", opt, S_MULTISTEP);
  if (!s) return NULL;
  s->milestones = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof(int64_t));
  if (!s->milestones) {
    tfw_lr_scheduler_release(s);
    tfw__error(TFW_ENOMEM, "multistep_lr_new: out of memory");
    return NULL;
  }
  if (n) memcpy(s->milestones, milestones, (size_t)n * sizeof(int64_t));
  s->n_milestones = n;
  s->b = gamma;
  return finish(s);
}

tfw_lr_scheduler *tfw_exponential_lr_new(tfw_optimizer *opt, double gamma) {
  tfw_lr_scheduler *s = sched_new("exponential_lr_new", opt, S_EXP);
  if (!s) return NULL;
  s->b = gamma;
  return finish(s);
}

tfw_lr_scheduler *tfw_cosine_lr_new(tfw_optimizer *opt, int64_t T_max, double eta_min) {
  tfw_lr_scheduler *s = sched_new("cosine_lr_new", opt, S_COSINE);
  if (!s) return NULL;
  s->a = (double)T_max, s->b = eta_min;
  return finish(s);
}

tfw_lr_scheduler *tfw_cosine_warm_restarts_lr_new(tfw_optimizer *opt, int64_t T_0, int64_t T_mult,
                                                  double eta_min) {
  tfw_lr_scheduler *s = sched_new("cosine_warm_restarts_lr_new", opt, S_RESTARTS);
  if (!s) return NULL;
  s->a = (double)T_0, s->c = (double)T_mult, s->b = eta_min;
  s->t_cur = 0, s->t_i = (double)T_0;
  return finish(s);
}

tfw_lr_scheduler *tfw_polynomial_lr_new(tfw_optimizer *opt, int64_t total_iters, double power) {
  tfw_lr_scheduler *s = sched_new("polynomial_lr_new", opt, S_POLY);
  if (!s) return NULL;
  s->a = (double)total_iters, s->b = power;
  return finish(s);
}

tfw_lr_scheduler *tfw_linear_lr_new(tfw_optimizer *opt, double start_factor, double end_factor,
                                    int64_t total_iters) {
  tfw_lr_scheduler *s = sched_new("linear_lr_new", opt, S_LINEAR);
  if (!s) return NULL;
  s->b = start_factor, s->c = end_factor, s->a = (double)total_iters;
  return finish(s);
}

tfw_lr_scheduler *tfw_warmup_lr_new(tfw_optimizer *opt, tfw_lr_scheduler *inner,
                                    int64_t warmup_steps, double start_factor) {
  if (inner && (inner->type == S_PLATEAU || inner->type == S_ONECYCLE || inner->opt != opt)) {
    tfw__error(TFW_EVALUE, "warmup_lr_new: inner scheduler %s cannot follow a warmup",
               inner->opt != opt ? "of another optimizer" : TYPE_NAMES[inner->type]);
    tfw_lr_scheduler_release(inner);
    return NULL;
  }
  tfw_lr_scheduler *s = sched_new("warmup_lr_new", opt, S_WARMUP);
  if (!s) {
    tfw_lr_scheduler_release(inner);
    return NULL;
  }
  if (inner) /* the base lrs are those the inner scheduler saw (PyTorch's initial_lr) */
    for (int g = 0; g < s->ng; g++) s->base_lrs[g] = inner->base_lrs[g];
  s->inner = inner;
  s->a = (double)warmup_steps, s->b = start_factor, s->d = inner ? 1 : 0;
  return finish(s);
}

tfw_one_cycle_options tfw_one_cycle_defaults(int64_t total_steps) {
  return (tfw_one_cycle_options){total_steps, 0.3, TFW_ANNEAL_COS, true, 0.85, 0.95, 25.0, 1e4,
                                 false};
}

tfw_lr_scheduler *tfw_one_cycle_lr_new(tfw_optimizer *opt, int n, const double *max_lrs,
                                       const tfw_one_cycle_options *o) {
  const char *op = "one_cycle_lr_new";
  if (!o || !max_lrs) {
    tfw__error(TFW_EVALUE, "%s: %s is NULL", op, o ? "max_lrs" : "options");
    return NULL;
  }
  tfw_lr_scheduler *s = sched_new(op, opt, S_ONECYCLE);
  if (!s) return NULL;
  if (n != 1 && n != s->ng) {
    tfw__error(TFW_EVALUE, "%s: expected %d values for max_lr (one per group) or 1, got %d", op,
               s->ng, n);
    tfw_lr_scheduler_release(s);
    return NULL;
  }
  if (o->cycle_momentum && opt->kind == TFW_OPTIM_ADAGRAD) {
    tfw__error(TFW_EVALUE, "%s: optimizer must support momentum with cycle_momentum (Adagrad "
                           "has neither momentum nor betas)", op);
    tfw_lr_scheduler_release(s);
    return NULL;
  }
  for (int g = 0; g < s->ng; g++) s->per_group[g] = max_lrs[n == 1 ? 0 : g];
  s->oc = *o;
  s->a = (double)o->total_steps;
  s->b = o->anneal_strategy == TFW_ANNEAL_LINEAR;
  s->c = o->cycle_momentum;
  s->d = o->three_phase;
  for (int g = 0; g < s->ng; g++) s->base_lrs[g] = s->per_group[g] / o->div_factor;
  return finish(s);
}

tfw_plateau_options tfw_plateau_defaults(void) {
  return (tfw_plateau_options){false, 0.1, 10, 1e-4, false, 0, 0.0, 1e-8};
}

tfw_lr_scheduler *tfw_plateau_lr_new(tfw_optimizer *opt, const tfw_plateau_options *o,
                                     const double *min_lrs) {
  if (!o) {
    tfw__error(TFW_EVALUE, "plateau_lr_new: options are NULL");
    return NULL;
  }
  tfw_lr_scheduler *s = sched_new("plateau_lr_new", opt, S_PLATEAU);
  if (!s) return NULL;
  s->pl = *o;
  s->a = o->mode_max, s->b = (double)o->patience, s->c = o->threshold_abs;
  s->d = (double)o->cooldown;
  for (int g = 0; g < s->ng; g++) s->per_group[g] = min_lrs ? min_lrs[g] : o->min_lr;
  s->best = o->mode_max ? -INFINITY : INFINITY;
  if (validate(s) != TFW_OK) {
    tfw_lr_scheduler_release(s);
    return NULL;
  }
  return s; /* PyTorch's ReduceLROnPlateau does not touch the lrs at construction */
}

void tfw_lr_scheduler_release(tfw_lr_scheduler *s) {
  if (!s) return;
  tfw_lr_scheduler_release(s->inner);
  tfw__free(s->base_lrs), tfw__free(s->last_lrs), tfw__free(s->per_group);
  tfw__free(s->milestones);
  tfw__free(s);
}

/* ---- stepping --------------------------------------------------------------------------------- */
static tfw_status check_groups(const char *op, const tfw_lr_scheduler *s) {
  if (s->opt->n_groups != s->ng)
    return tfw__error(TFW_ESTATE, "%s: the optimizer has %d groups but the scheduler was made "
                                  "for %d", op, s->opt->n_groups, s->ng);
  return TFW_OK;
}

tfw_status tfw_lr_scheduler_step(tfw_lr_scheduler *s) {
  if (!s) return tfw__error(TFW_EVALUE, "lr_scheduler_step: scheduler is NULL");
  if (s->type == S_PLATEAU)
    return tfw__error(TFW_ESTATE, "lr_scheduler_step: ReduceLROnPlateau needs the metric: use "
                                  "tfw_lr_scheduler_step_metric");
  tfw_status st = check_groups("lr_scheduler_step", s);
  if (st) return st;
  if (s->type == S_ONECYCLE && s->last_epoch + 1 > s->a)
    return tfw__error(TFW_ESTATE, "lr_scheduler_step: OneCycleLR: tried to step %.0f times; the "
                                  "specified number of total steps is %.0f", s->last_epoch + 2,
                      s->a);
  s->last_epoch += 1;
  if (s->type == S_RESTARTS) {
    s->t_cur += 1;
    if (s->t_cur >= s->t_i) s->t_cur -= s->t_i, s->t_i *= s->c;
  }
  return apply(s);
}

static bool is_better(const tfw_lr_scheduler *s, double a) {
  double best = s->best, th = s->pl.threshold;
  if (s->a == 0) return s->c == 0 ? a < best * (1.0 - th) : a < best - th;
  return s->c == 0 ? a > best * (th + 1.0) : a > best + th;
}

tfw_status tfw_lr_scheduler_step_metric(tfw_lr_scheduler *s, double metric) {
  if (!s) return tfw__error(TFW_EVALUE, "lr_scheduler_step_metric: scheduler is NULL");
  if (s->type != S_PLATEAU)
    return tfw__error(TFW_ESTATE, "lr_scheduler_step_metric: only ReduceLROnPlateau takes a "
                                  "metric; %s steps with tfw_lr_scheduler_step",
                      TYPE_NAMES[s->type]);
  tfw_status st = check_groups("lr_scheduler_step_metric", s);
  if (st) return st;
  s->last_epoch += 1;
  if (is_better(s, metric)) {
    s->best = metric;
    s->num_bad = 0;
  } else {
    s->num_bad += 1;
  }
  if (s->cooldown_counter > 0) {
    s->cooldown_counter -= 1;
    s->num_bad = 0;
  }
  if (s->num_bad > s->b) {
    for (int g = 0; g < s->ng; g++) {
      double old = s->opt->groups[g].o.lr;
      double nw = fmax(old * s->pl.factor, s->per_group[g]);
      if (old - nw > s->pl.eps) s->opt->groups[g].o.lr = nw;
    }
    s->cooldown_counter = s->d;
    s->num_bad = 0;
  }
  for (int g = 0; g < s->ng; g++) s->last_lrs[g] = s->opt->groups[g].o.lr;
  return TFW_OK;
}

double tfw_lr_scheduler_get_last_lr(const tfw_lr_scheduler *s, int group) {
  if (!s || group < 0 || group >= s->ng) {
    tfw__error(TFW_EINDEX, "lr_scheduler_get_last_lr: group %d out of range", group);
    return NAN;
  }
  return s->last_lrs[group];
}

int64_t tfw_lr_scheduler_last_epoch(const tfw_lr_scheduler *s) {
  return s ? (int64_t)s->last_epoch : -1;
}

const char *tfw_lr_scheduler_type(const tfw_lr_scheduler *s) {
  return s ? TYPE_NAMES[s->type] : "";
}

/* ---- state dict ------------------------------------------------------------------------------- */
static tfw_tensor *vec(const double *v, int n) {
  return tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){n}, v);
}

static void sd_build(const tfw_lr_scheduler *s, tfw__sd_builder *b, const char *pre) {
  tfw__sd_add_scalar(b, s->last_epoch, "%slast_epoch", pre);
  tfw__sd_add(b, vec(s->base_lrs, s->ng), "%sbase_lrs", pre);
  tfw__sd_add(b, vec(s->last_lrs, s->ng), "%slast_lrs", pre);
  if (s->type == S_ONECYCLE) tfw__sd_add(b, vec(s->per_group, s->ng), "%smax_lrs", pre);
  if (s->type == S_PLATEAU) tfw__sd_add(b, vec(s->per_group, s->ng), "%smin_lrs", pre);
  if (s->type == S_MULTISTEP) {
    double *m = tfw__calloc((size_t)(s->n_milestones + 1), sizeof(double));
    for (int i = 0; m && i < s->n_milestones; i++) m[i] = (double)s->milestones[i];
    tfw__sd_add(b, m ? vec(m, s->n_milestones) : NULL, "%smilestones", pre);
    tfw__free(m);
  }
  field f[MAX_FIELDS];
  int n = fields((tfw_lr_scheduler *)s, f);
  for (int i = 0; i < n; i++) tfw__sd_add_scalar(b, *f[i].v, "%s%s", pre, f[i].name);
  if (s->inner) {
    char p2[64];
    snprintf(p2, sizeof p2, "%sinner.", pre);
    sd_build(s->inner, b, p2);
  }
}

tfw_status tfw_lr_scheduler_state_dict(const tfw_lr_scheduler *s, tfw_named_tensor **out,
                                       int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "lr_scheduler_state_dict: out and count are required");
  *out = NULL;
  *count = 0;
  if (!s) return tfw__error(TFW_EVALUE, "lr_scheduler_state_dict: scheduler is NULL");
  tfw__sd_builder b = {0};
  sd_build(s, &b, "");
  return tfw__sd_finish(&b, out, count);
}

static tfw_status read_vec(tfw__sd_reader *r, const char *pre, const char *name, int n, double *dst) {
  const tfw_tensor *t = tfw__sd_find(r, "%s%s", pre, name);
  char key[96];
  snprintf(key, sizeof key, "%s%s", pre, name);
  if (!t) return tfw__error(TFW_EVALUE, "%s: missing key \"%s\"", r->op, key);
  tfw_status st = tfw__sd_check_shape(r->op, key, t, 1, (int64_t[]){n});
  if (st) return st;
  for (int i = 0; i < n; i++) {
    if (tfw_tensor_get(t, (int64_t[]){i}, &dst[i]) != TFW_OK) return tfw_last_status();
    if (!isfinite(dst[i]))
      return tfw__error(TFW_EVALUE, "%s: key \"%s\" holds a non-finite value", r->op, key);
  }
  return TFW_OK;
}

/* Reads into tmp (a copy of s with its own arrays). */
static tfw_status sd_read(tfw_lr_scheduler *tmp, tfw__sd_reader *r, const char *pre) {
  tfw_status st = tfw__sd_scalar(r, &tmp->last_epoch, "%slast_epoch", pre);
  if (!st) st = read_vec(r, pre, "base_lrs", tmp->ng, tmp->base_lrs);
  if (!st) st = read_vec(r, pre, "last_lrs", tmp->ng, tmp->last_lrs);
  if (!st && tmp->type == S_ONECYCLE) st = read_vec(r, pre, "max_lrs", tmp->ng, tmp->per_group);
  if (!st && tmp->type == S_PLATEAU) st = read_vec(r, pre, "min_lrs", tmp->ng, tmp->per_group);
  if (!st && tmp->type == S_MULTISTEP) {
    const tfw_tensor *t = tfw__sd_find(r, "%smilestones", pre);
    if (!t) return tfw__error(TFW_EVALUE, "%s: missing key \"%smilestones\"", r->op, pre);
    if (t->ndim != 1 || t->shape[0] > 1 << 20)
      return tfw__error(TFW_EVALUE, "%s: key \"%smilestones\" must be a vector", r->op, pre);
    int n = (int)t->shape[0];
    int64_t *m = tfw__calloc((size_t)(n + 1), sizeof(int64_t));
    if (!m) return tfw__error(TFW_ENOMEM, "%s: out of memory", r->op);
    for (int i = 0; i < n; i++) {
      double v = 0;
      tfw_tensor_get(t, (int64_t[]){i}, &v);
      if (!(v >= 0 && v == floor(v) && v < 9e15) || (i > 0 && v < (double)m[i - 1])) {
        tfw__free(m);
        return tfw__error(TFW_EVALUE, "%s: key \"%smilestones\" must hold non-decreasing "
                                      "integers >= 0", r->op, pre);
      }
      m[i] = (int64_t)v;
    }
    tmp->milestones = m;
    tmp->n_milestones = n;
  }
  field f[MAX_FIELDS];
  int n = fields(tmp, f);
  for (int i = 0; i < n && !st; i++) {
    const tfw_tensor *t = tfw__sd_find(r, "%s%s", pre, f[i].name);
    if (t && strcmp(f[i].name, "best") == 0) { /* +-inf is a valid best */
      if (tfw_tensor_numel(t) != 1 || tfw_item(t, f[i].v) != TFW_OK || isnan(*f[i].v))
        st = tfw__error(TFW_EVALUE, "%s: key \"%sbest\" must hold one number", r->op, pre);
      continue;
    }
    st = tfw__sd_scalar(r, f[i].v, "%s%s", pre, f[i].name);
  }
  if (!st && tmp->last_epoch < 0)
    st = tfw__error(TFW_EVALUE, "%s: \"%slast_epoch\" must be >= 0, got %g", r->op, pre,
                    tmp->last_epoch);
  if (!st && tmp->type == S_WARMUP && (tmp->d != 0) != (tmp->inner != NULL))
    st = tfw__error(TFW_EVALUE, "%s: \"%shas_inner\" is %g but this warmup %s an inner scheduler",
                    r->op, pre, tmp->d, tmp->inner ? "has" : "has no");
  if (!st) {
    tmp->oc.total_steps = (int64_t)tmp->a;
    tmp->pl.patience = (int64_t)tmp->b;
    tmp->pl.cooldown = (int64_t)tmp->d;
    st = validate(tmp);
  }
  if (!st && tmp->inner) {
    char p2[64];
    snprintf(p2, sizeof p2, "%sinner.", pre);
    st = sd_read(tmp->inner, r, p2);
  }
  return st;
}

/* A deep copy of s's layout (arrays zeroed) for loading into. */
static tfw_lr_scheduler *shadow(const tfw_lr_scheduler *s) {
  tfw_lr_scheduler *t = tfw__calloc(1, sizeof *t);
  if (!t) return NULL;
  *t = *s;
  t->milestones = NULL;
  t->inner = NULL;
  t->base_lrs = tfw__calloc((size_t)s->ng, sizeof(double));
  t->last_lrs = tfw__calloc((size_t)s->ng, sizeof(double));
  t->per_group = tfw__calloc((size_t)s->ng, sizeof(double));
  if (s->inner) t->inner = shadow(s->inner);
  if (!t->base_lrs || !t->last_lrs || !t->per_group || (s->inner && !t->inner)) {
    tfw_lr_scheduler_release(t);
    return NULL;
  }
  return t;
}

static void swap_in(tfw_lr_scheduler *s, tfw_lr_scheduler *t) {
  tfw_lr_scheduler tmp = *s;
  tfw_lr_scheduler *si = s->inner, *ti = t->inner;
  *s = *t;
  *t = tmp;
  s->inner = si, t->inner = ti;
  if (si) swap_in(si, ti);
}

tfw_status tfw_lr_scheduler_load_state_dict(tfw_lr_scheduler *s, int n, const tfw_named_tensor *sd) {
  const char *op = "lr_scheduler_load_state_dict";
  if (!s) return tfw__error(TFW_EVALUE, "%s: scheduler is NULL", op);
  tfw__sd_reader r;
  tfw_status st = tfw__sd_reader_init(&r, op, n, sd);
  tfw_lr_scheduler *t = st ? NULL : shadow(s);
  if (!st && !t) st = tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  if (!st) st = sd_read(t, &r, "");
  if (!st) st = tfw__sd_check_unused(&r);
  if (!st) swap_in(s, t); /* t now holds the old state */
  tfw_lr_scheduler_release(t);
  tfw__sd_reader_free(&r);
  return st;
}
