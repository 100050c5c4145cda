/* The fused optimizer update: one pass over all parameters that have a gradient.
 *
 * step() first prepares one segment per parameter (contiguous param, grad and state pointers
 * plus the scalar coefficients of this step, computed in double as PyTorch computes them in
 * Python), then runs a single tfw__parallel_for over the concatenated element range: each
 * chunk walks the segments it overlaps, and each segment is one loop that reads grad and
 * state and writes param and state (no temporaries, no chains of tensor ops). The loops are
 * written in the dtype of the parameter, in the operation order of PyTorch 1.13's
 * single-tensor implementations (torch/optim/NAME.py, the _single_tensor_NAME functions), with the scalar
 * coefficients rounded to that dtype as PyTorch does for its scalar arguments; f64 results
 * then agree with PyTorch to a few ulps. Elementwise work: the split into chunks does not
 * change any bit, so results are the same for any thread count. */
#include <math.h>

#include "autograd/autograd.h"
#include "optim/optimizer.h"

typedef struct seg {
  tfw_optim_kind kind;
  tfw_dtype dt;
  int64_t n;
  char *p;
  const char *g;
  char *s[TFW__OPT_SLOTS];
  bool fresh; /* SGD: the momentum buffer starts as a copy of the update direction */
  /* coefficients of this step (double; each loop casts them to its dtype) */
  double lr, wd, mom, damp1, b1, b2, omb1, omb2, eps, alpha, oma, step_size, bc2_sqrt, decay;
  bool nesterov, amsgrad, maximize, centered, decoupled;
} seg;

/* ---- one loop per algorithm and dtype -------------------------------------------------------- */
#define TFW__SGD(T)                                                                          \
  static TFW_CLONES void sgd_##T(const seg *s, int64_t b, int64_t e) {                       \
    T *p = (T *)s->p, *buf = (T *)s->s[0];                                                   \
    const T *g = (const T *)s->g;                                                            \
    const T lr = (T)s->lr, wd = (T)s->wd, mom = (T)s->mom, damp1 = (T)s->damp1;              \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    const bool has_wd = s->wd != 0, nesterov = s->nesterov;                                  \
    if (s->mom == 0) {                                                                       \
      for (int64_t i = b; i < e; i++) {                                                      \
        T d = sign * g[i];                                                                   \
        if (has_wd) d = d + wd * p[i];                                                   \
        p[i] = p[i] - lr * d;                                                                \
      }                                                                                      \
    } else if (s->fresh) {                                                                   \
      for (int64_t i = b; i < e; i++) {                                                      \
        T d = sign * g[i];                                                                   \
        if (has_wd) d = d + wd * p[i];                                                   \
        buf[i] = d;                                                                          \
        if (nesterov) d = d + mom * d;                                                    \
        p[i] = p[i] - lr * d;                                                                \
      }                                                                                      \
    } else {                                                                                 \
      for (int64_t i = b; i < e; i++) {                                                      \
        T d = sign * g[i];                                                                   \
        if (has_wd) d = d + wd * p[i];                                                   \
        T m = buf[i] * mom + damp1 * d;                                                      \
        buf[i] = m;                                                                          \
        d = nesterov ? d + mom * m : m;                                                   \
        p[i] = p[i] - lr * d;                                                                \
      }                                                                                      \
    }                                                                                        \
  }

/* Adam and AdamW (decoupled: p *= 1 - lr * wd first); amsgrad keeps the max of exp_avg_sq. */
#define TFW__ADAM(T, SQRT)                                                                   \
  static inline __attribute__((always_inline)) void adam_body_##T(const seg *s, int64_t b, int64_t e, const bool l2, const bool dec, const bool ams) {                      \
    T *p = (T *)s->p, *m = (T *)s->s[0], *v = (T *)s->s[1], *vmax = (T *)s->s[2];            \
    const T *g = (const T *)s->g;                                                            \
    const T wd = (T)s->wd, decay = (T)s->decay, b1 = (T)s->b1, b2 = (T)s->b2;                \
    const T omb1 = (T)s->omb1, omb2 = (T)s->omb2, eps = (T)s->eps;                           \
    const T nstep = (T)-s->step_size, bc2s = (T)s->bc2_sqrt;                                 \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    for (int64_t i = b; i < e; i++) {                                                        \
      T gi = sign * g[i], pi = p[i];                                                         \
      if (l2) gi = gi + wd * pi;                                                             \
      if (dec) pi = pi * decay;                                                              \
      T mi = m[i] * b1 + omb1 * gi;                                                          \
      T vi = v[i] * b2 + omb2 * gi * gi;                                                     \
      m[i] = mi;                                                                             \
      v[i] = vi;                                                                             \
      if (ams) {                                                                      \
        T mx = vmax[i];                                                                      \
        vi = vi > mx ? vi : mx;                                                              \
        vmax[i] = vi;                                                                        \
      }                                                                                      \
      T denom = SQRT(vi) / bc2s + eps;                                                       \
      p[i] = pi + nstep * mi / denom;                                                        \
    }                                                                                        \
  }

/* AdaBelief (adabelief-pytorch without rectification): eps is added into exp_avg_var in
 * place every step, then added again outside the square root. */
#define TFW__ADABELIEF(T, SQRT)                                                              \
  static inline __attribute__((always_inline)) void adabelief_body_##T(const seg *s, int64_t b, int64_t e, const bool l2, const bool dec, const bool ams) {                 \
    T *p = (T *)s->p, *m = (T *)s->s[0], *v = (T *)s->s[1], *vmax = (T *)s->s[2];            \
    const T *g = (const T *)s->g;                                                            \
    const T wd = (T)s->wd, decay = (T)s->decay, b1 = (T)s->b1, b2 = (T)s->b2;                \
    const T omb1 = (T)s->omb1, omb2 = (T)s->omb2, eps = (T)s->eps;                           \
    const T nstep = (T)-s->step_size, bc2s = (T)s->bc2_sqrt;                                 \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    for (int64_t i = b; i < e; i++) {                                                        \
      T gi = sign * g[i], pi = p[i];                                                         \
      if (dec) pi = pi * decay;                                                              \
      if (l2) gi = gi + wd * pi;                                                             \
      T mi = m[i] * b1 + omb1 * gi;                                                          \
      T r = gi - mi;                                                                         \
      T vi = v[i] * b2 + omb2 * r * r;                                                       \
      vi = vi + eps;                                                                         \
      m[i] = mi;                                                                             \
      v[i] = vi;                                                                             \
      if (ams) {                                                                      \
        T mx = vmax[i];                                                                      \
        vi = vi > mx ? vi : mx;                                                              \
        vmax[i] = vi;                                                                        \
      }                                                                                      \
      T denom = SQRT(vi) / bc2s + eps;                                                       \
      p[i] = pi + nstep * mi / denom;                                                        \
    }                                                                                        \
  }

/* Lion: update = sign(beta1 m + (1 - beta1) g); m = beta2 m + (1 - beta2) g. */
#define TFW__LION(T)                                                                         \
  static TFW_CLONES void lion_##T(const seg *s, int64_t b, int64_t e) {                      \
    T *p = (T *)s->p, *m = (T *)s->s[0];                                                     \
    const T *g = (const T *)s->g;                                                            \
    const T decay = (T)s->decay, b1 = (T)s->b1, b2 = (T)s->b2, lr = (T)s->lr;                \
    const T omb1 = (T)s->omb1, omb2 = (T)s->omb2;                                            \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    for (int64_t i = b; i < e; i++) {                                                        \
      T gi = sign * g[i], mi = m[i];                                                         \
      T c = mi * b1 + omb1 * gi;                                                             \
      T u = (T)((c > 0) - (c < 0));                                                          \
      p[i] = p[i] * decay - lr * u;                                                          \
      m[i] = mi * b2 + omb2 * gi;                                                            \
    }                                                                                        \
  }

#define TFW__RMSPROP(T, SQRT)                                                                \
  static inline __attribute__((always_inline)) void rmsprop_body_##T(const seg *s, int64_t b, int64_t e, const bool has_wd, const bool centered, const bool has_mom) {                   \
    T *p = (T *)s->p, *sq = (T *)s->s[0], *buf = (T *)s->s[1], *ga = (T *)s->s[2];           \
    const T *g = (const T *)s->g;                                                            \
    const T wd = (T)s->wd, alpha = (T)s->alpha, oma = (T)s->oma, eps = (T)s->eps;            \
    const T lr = (T)s->lr, mom = (T)s->mom;                                                  \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    for (int64_t i = b; i < e; i++) {                                                        \
      T gi = sign * g[i];                                                                    \
      if (has_wd) gi = gi + wd * p[i];                                                       \
      T si = sq[i] * alpha + oma * gi * gi;                                                  \
      sq[i] = si;                                                                            \
      T avg;                                                                                 \
      if (centered) {                                                                     \
        T a = ga[i] * alpha + oma * gi;                                                      \
        ga[i] = a;                                                                           \
        avg = SQRT(si + (T)-1 * a * a);                                                      \
      } else {                                                                               \
        avg = SQRT(si);                                                                      \
      }                                                                                      \
      avg = avg + eps;                                                                       \
      if (has_mom) {                                                                         \
        T bi = buf[i] * mom + gi / avg;                                                      \
        buf[i] = bi;                                                                         \
        p[i] = p[i] - lr * bi;                                                               \
      } else {                                                                               \
        p[i] = p[i] + -lr * gi / avg;                                                        \
      }                                                                                      \
    }                                                                                        \
  }

#define TFW__ADAGRAD(T, SQRT)                                                                \
  static inline __attribute__((always_inline)) void adagrad_body_##T(const seg *s, int64_t b, int64_t e, const bool has_wd) {                   \
    T *p = (T *)s->p, *sum = (T *)s->s[0];                                                   \
    const T *g = (const T *)s->g;                                                            \
    const T wd = (T)s->wd, eps = (T)s->eps, nclr = (T)-s->step_size;                         \
    const T sign = s->maximize ? (T)-1 : (T)1;                                               \
    for (int64_t i = b; i < e; i++) {                                                        \
      T gi = sign * g[i];                                                                    \
      if (has_wd) gi = gi + wd * p[i];                                                       \
      T si = sum[i] + gi * gi;                                                               \
      sum[i] = si;                                                                           \
      T std = SQRT(si) + eps;                                                                \
      p[i] = p[i] + nclr * gi / std;                                                         \
    }                                                                                        \
  }

TFW__SGD(float)
TFW__SGD(double)
TFW__ADAM(float, sqrtf)
TFW__ADAM(double, sqrt)
TFW__ADABELIEF(float, sqrtf)
TFW__ADABELIEF(double, sqrt)
TFW__LION(float)
TFW__LION(double)
TFW__RMSPROP(float, sqrtf)
TFW__RMSPROP(double, sqrt)
TFW__ADAGRAD(float, sqrtf)
TFW__ADAGRAD(double, sqrt)

/* The loops above specialised on their flags (each combination is its own vectorised loop). */
#define TFW__B3(NAME, T, X, Y, Z)                                                            \
  static TFW_CLONES void NAME##_##T(const seg *s, int64_t b, int64_t e) {                    \
    const bool x = (X), y = (Y), z = (Z);                                                    \
    if (x) {                                                                                 \
      if (z) NAME##_body_##T(s, b, e, true, false, true);                                    \
      else NAME##_body_##T(s, b, e, true, false, false);                                     \
    } else if (y) {                                                                          \
      if (z) NAME##_body_##T(s, b, e, false, true, true);                                    \
      else NAME##_body_##T(s, b, e, false, true, false);                                     \
    } else {                                                                                 \
      if (z) NAME##_body_##T(s, b, e, false, false, true);                                   \
      else NAME##_body_##T(s, b, e, false, false, false);                                    \
    }                                                                                        \
  }
#define TFW__RMS_DISPATCH(T)                                                                 \
  static TFW_CLONES void rmsprop_##T(const seg *s, int64_t b, int64_t e) {                   \
    const bool w = s->wd != 0, c = s->centered, m = s->mom > 0;                              \
    if (c) {                                                                                 \
      if (m) w ? rmsprop_body_##T(s, b, e, 1, 1, 1) : rmsprop_body_##T(s, b, e, 0, 1, 1);    \
      else w ? rmsprop_body_##T(s, b, e, 1, 1, 0) : rmsprop_body_##T(s, b, e, 0, 1, 0);      \
    } else {                                                                                 \
      if (m) w ? rmsprop_body_##T(s, b, e, 1, 0, 1) : rmsprop_body_##T(s, b, e, 0, 0, 1);    \
      else w ? rmsprop_body_##T(s, b, e, 1, 0, 0) : rmsprop_body_##T(s, b, e, 0, 0, 0);      \
    }                                                                                        \
  }
#define TFW__ADAGRAD_DISPATCH(T)                                                             \
  static TFW_CLONES void adagrad_##T(const seg *s, int64_t b, int64_t e) {                   \
    if (s->wd != 0) adagrad_body_##T(s, b, e, true);                                         \
    else adagrad_body_##T(s, b, e, false);                                                   \
  }
TFW__B3(adam, float, !s->decoupled && s->wd != 0, s->decoupled && s->wd != 0, s->amsgrad)
TFW__B3(adam, double, !s->decoupled && s->wd != 0, s->decoupled && s->wd != 0, s->amsgrad)
TFW__B3(adabelief, float, !s->decoupled && s->wd != 0, s->decoupled, s->amsgrad)
TFW__B3(adabelief, double, !s->decoupled && s->wd != 0, s->decoupled, s->amsgrad)
TFW__RMS_DISPATCH(float)
TFW__RMS_DISPATCH(double)
TFW__ADAGRAD_DISPATCH(float)
TFW__ADAGRAD_DISPATCH(double)

static void run_seg(const seg *s, int64_t b, int64_t e) {
  bool f = s->dt == TFW_DTYPE_F32;
  switch (s->kind) {
  case TFW_OPTIM_SGD: f ? sgd_float(s, b, e) : sgd_double(s, b, e); break;
  case TFW_OPTIM_ADAM:
  case TFW_OPTIM_ADAMW: f ? adam_float(s, b, e) : adam_double(s, b, e); break;
  case TFW_OPTIM_ADABELIEF: f ? adabelief_float(s, b, e) : adabelief_double(s, b, e); break;
  case TFW_OPTIM_LION: f ? lion_float(s, b, e) : lion_double(s, b, e); break;
  case TFW_OPTIM_RMSPROP: f ? rmsprop_float(s, b, e) : rmsprop_double(s, b, e); break;
  case TFW_OPTIM_ADAGRAD: f ? adagrad_float(s, b, e) : adagrad_double(s, b, e); break;
  }
}

typedef struct pass {
  const seg *segs;
  const int64_t *start; /* start[k] = first global element of segment k; start[n] = total */
  int n;
} pass;

static void pass_range(int64_t b, int64_t e, void *ctx) {
  const pass *ps = ctx;
  int lo = 0, hi = ps->n - 1; /* the last segment whose start <= b */
  while (lo < hi) {
    int mid = (lo + hi + 1) / 2;
    if (ps->start[mid] <= b) lo = mid;
    else hi = mid - 1;
  }
  for (int k = lo; k < ps->n && ps->start[k] < e; k++) {
    int64_t sb = b > ps->start[k] ? b - ps->start[k] : 0;
    int64_t se = (e < ps->start[k + 1] ? e : ps->start[k + 1]) - ps->start[k];
    if (se > sb) run_seg(&ps->segs[k], sb, se);
  }
}

/* ---- preparing the segments ------------------------------------------------------------------ */
/* Per parameter: the temporaries the step holds (released at the end). */
typedef struct prep {
  int param;
  tfw_tensor *grad;   /* contiguous grad in the param dtype (retained) */
  tfw_tensor *work;   /* contiguous param copy when the param is not contiguous, else NULL */
  bool new_slot[TFW__OPT_SLOTS];
} prep;

static tfw_status alloc_slot(tfw__opt_param *pp, int k, double fill) {
  tfw_tensor *t = fill == 0 ? tfw_zeros(pp->p->dtype, pp->p->ndim, pp->p->shape)
                            : tfw_full(pp->p->dtype, pp->p->ndim, pp->p->shape, fill);
  if (!t) return tfw__error(TFW_ENOMEM, "optimizer step: out of memory for state of a "
                                        "parameter with %lld elements",
                            (long long)tfw_tensor_numel(pp->p));
  pp->slot[k] = t;
  return TFW_OK;
}

static void fill_coeffs(seg *s, tfw_optim_kind kind, const tfw_optim_options *o, int64_t step) {
  s->kind = kind;
  s->lr = o->lr;
  s->wd = o->weight_decay;
  s->mom = o->momentum;
  s->damp1 = 1.0 - o->dampening;
  s->b1 = o->beta1;
  s->b2 = o->beta2;
  s->omb1 = 1.0 - o->beta1;
  s->omb2 = 1.0 - o->beta2;
  s->eps = o->eps;
  s->alpha = o->alpha;
  s->oma = 1.0 - o->alpha;
  s->nesterov = o->nesterov;
  s->amsgrad = o->amsgrad;
  s->maximize = o->maximize;
  s->centered = o->centered;
  s->decoupled = kind == TFW_OPTIM_ADAMW || kind == TFW_OPTIM_LION ||
                 (kind == TFW_OPTIM_ADABELIEF && o->decoupled_weight_decay);
  s->decay = 1.0 - o->lr * o->weight_decay;
  double st = (double)step; /* the step being taken, 1-based */
  switch (kind) {
  case TFW_OPTIM_ADAM:
  case TFW_OPTIM_ADAMW:
  case TFW_OPTIM_ADABELIEF:
    s->step_size = o->lr / (1.0 - pow(o->beta1, st));
    s->bc2_sqrt = sqrt(1.0 - pow(o->beta2, st));
    break;
  case TFW_OPTIM_ADAGRAD: s->step_size = o->lr / (1.0 + (st - 1.0) * o->lr_decay); break;
  default: s->step_size = 0; s->bc2_sqrt = 1; break;
  }
}

static void prep_release(prep *pr, int n) {
  for (int i = 0; i < n; i++) tfw_release(pr[i].grad), tfw_release(pr[i].work);
}

tfw_status tfw_optimizer_step(tfw_optimizer *opt) {
  if (!opt) return tfw__error(TFW_EVALUE, "optimizer step: optimizer is NULL");
  int n = opt->n_params;
  prep *pr = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof *pr);
  seg *segs = tfw__calloc((size_t)(n > 0 ? n : 1), sizeof *segs);
  int64_t *start = tfw__calloc((size_t)n + 1, sizeof *start);
  if (!pr || !segs || !start) {
    tfw__free(pr), tfw__free(segs), tfw__free(start);
    return tfw__error(TFW_ENOMEM, "optimizer step: out of memory");
  }
  tfw_status st = TFW_OK;
  int m = 0;
  /* 1. collect parameters with a gradient, check shapes, allocate missing state */
  for (int i = 0; i < n && st == TFW_OK; i++) {
    tfw__opt_param *pp = &opt->params[i];
    tfw_tensor *g = tfw__param_grad(pp->p);
    if (!g) continue;
    const tfw_optim_options *o = &opt->groups[pp->group].o;
    bool same = g->ndim == pp->p->ndim;
    for (int d = 0; same && d < g->ndim; d++) same = g->shape[d] == pp->p->shape[d];
    if (!same) {
      char a[TFW__SHAPE_BUF], b[TFW__SHAPE_BUF];
      st = tfw__error(TFW_EVALUE, "optimizer step: parameter %d has shape %s but its gradient "
                                  "has shape %s", i,
                      tfw__shape_str(a, sizeof a, pp->p->ndim, pp->p->shape),
                      tfw__shape_str(b, sizeof b, g->ndim, g->shape));
      break;
    }
    prep *q = &pr[m];
    q->param = i;
    q->grad = tfw__as_contiguous(g, pp->p->dtype);
    if (!q->grad) {
      st = tfw_last_status();
      break;
    }
    if (!tfw__is_contiguous(pp->p)) {
      q->work = tfw_clone(pp->p);
      if (!q->work) {
        st = tfw_last_status();
        m++;
        break;
      }
    }
    m++;
    for (int k = 0; k < TFW__OPT_SLOTS && st == TFW_OK; k++) {
      if (pp->slot[k] || !tfw__opt_slot_used(opt->kind, k, o)) continue;
      double fill = opt->kind == TFW_OPTIM_ADAGRAD ? o->initial_accumulator_value : 0.0;
      st = alloc_slot(pp, k, fill);
      if (st == TFW_OK) q->new_slot[k] = true;
    }
  }
  if (st != TFW_OK) { /* nothing was updated: undo the state allocated here */
    for (int j = 0; j < m; j++)
      for (int k = 0; k < TFW__OPT_SLOTS; k++)
        if (pr[j].new_slot[k]) {
          tfw_release(opt->params[pr[j].param].slot[k]);
          opt->params[pr[j].param].slot[k] = NULL;
        }
    prep_release(pr, m);
    tfw__free(pr), tfw__free(segs), tfw__free(start);
    return st;
  }
  /* 2. one segment per parameter */
  for (int j = 0; j < m; j++) {
    tfw__opt_param *pp = &opt->params[pr[j].param];
    seg *s = &segs[j];
    fill_coeffs(s, opt->kind, &opt->groups[pp->group].o, pp->step + 1);
    tfw_tensor *w = pr[j].work ? pr[j].work : pp->p;
    s->dt = pp->p->dtype;
    s->n = tfw_tensor_numel(pp->p);
    s->p = tfw__data(w);
    s->g = tfw__data(pr[j].grad);
    for (int k = 0; k < TFW__OPT_SLOTS; k++) s->s[k] = pp->slot[k] ? tfw__data(pp->slot[k]) : NULL;
    s->fresh = opt->kind == TFW_OPTIM_SGD && pr[j].new_slot[0];
    start[j + 1] = start[j] + s->n;
  }
  /* 3. the pass: chunks of 64K elements keep small models on one thread */
  pass ps = {segs, start, m};
  if (m > 0) tfw__parallel_for(start[m], 1 << 16, pass_range, &ps);
  /* 4. write back non-contiguous params, bump versions, count steps */
  for (int j = 0; j < m; j++) {
    tfw__opt_param *pp = &opt->params[pr[j].param];
    if (pr[j].work && st == TFW_OK) st = tfw__copy_cast(pp->p, pr[j].work);
    tfw__bump_version(pp->p);
    pp->step++;
  }
  prep_release(pr, m);
  tfw__free(pr), tfw__free(segs), tfw__free(start);
  return st;
}
