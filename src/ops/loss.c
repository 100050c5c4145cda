/* cross_entropy and cross_entropy_backward: fused log-softmax + NLL, and its gradient
 * (softmax - smoothed one-hot) * grad, in one pass over each row.
 *
 * Layout: the logits [N, C, d...] are viewed as rows of C classes, r = (n, d...) in
 * row-major order; a [N, C] input is used as is (a contiguous f32/f64 copy only when it is
 * strided or f16/bf16), a higher-dim input is copied once into [N, d..., C] so every row is
 * contiguous. Rows run in parallel (tfw__parallel_for over row blocks); per-row losses go to a
 * buffer that is summed in row order in f64, so the result is bit-identical for any thread
 * count.
 *
 * Per row (f32): a 16-lane max, then sum(exp(x - max)) with the vectorised exp of
 * src/cpu/vmath.h (16 f32 lanes per 1024-element block, blocks carried in f64), lse = max +
 * log(sum). Forward: loss = w_t (1 - eps) (lse - x_t) + eps / C sum_c w_c (lse - x_c) for
 * class indices (the smoothing term only when eps > 0), sum_c a_c (lse - x_c) for
 * probabilities. Backward recomputes lse (the row is in L1, cheaper than storing and
 * re-reading a saved log-softmax: PyTorch's path writes and reads the [N, C] log-softmax and
 * a [N, C] one-hot gradient) and writes g_r (A e^(x - lse) - a) in one more exp pass.
 * Double backward: cross_entropy_backward has its own rule, written with softmax and
 * friends (src/autograd/backward_loss.c). */
#include <math.h>

#include "core/iter.h"
#include "cpu/vmath.h"
#include "ops/loss.h"
#include "ops/samples.h"

#if defined(__clang__)
#define HOT TFW_CLONES
#else
#define HOT __attribute__((optimize("fp-contract=fast"))) TFW_CLONES
#endif

/* ---- row kernels ----------------------------------------------------------------------- */

HOT static float max_f32(const float *x, int64_t n) {
  float l[16];
  for (int j = 0; j < 16; j++) l[j] = -INFINITY;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) {
      float v = x[i + j];
      l[j] = (v > l[j] || v != v) ? v : l[j];
    }
  float m = -INFINITY;
  for (; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  for (int j = 0; j < 16; j++) m = (l[j] > m || l[j] != l[j]) ? l[j] : m;
  return m;
}

/* sum(exp(x - m)) */
HOT static double sumexp_f32(const float *x, int64_t n, float m) {
  double acc = 0;
  int64_t i = 0;
  for (; i + 1024 <= n; i += 1024) {
    float l[16] = {0};
    for (int k = 0; k < 1024; k += 16)
      for (int j = 0; j < 16; j++) l[j] += tfw__expf(x[i + k + j] - m);
    float s = 0;
    for (int j = 0; j < 16; j++) s += l[j];
    acc += (double)s;
  }
  float l[16] = {0};
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j++) l[j] += tfw__expf(x[i + j] - m);
  float s = 0;
  for (; i < n; i++) s += tfw__expf(x[i] - m);
  for (int j = 0; j < 16; j++) s += l[j];
  return acc + (double)s;
}

/* y = sA e^(x - lse) - sc w (w NULL: 1) */
HOT static void grad_row_f32(const float *x, float *y, int64_t n, float lse, float sA, float sc,
                             const float *w) {
  if (w)
    for (int64_t i = 0; i < n; i++) y[i] = sA * tfw__expf(x[i] - lse) - sc * w[i];
  else
    for (int64_t i = 0; i < n; i++) y[i] = sA * tfw__expf(x[i] - lse) - sc;
}

static double lse_f32(const float *x, int64_t n) {
  float m = max_f32(x, n);
  if (isinf(m)) return m; /* all -inf: lse -inf (loss nan as in PyTorch); +inf: inf */
  return (double)m + log(sumexp_f32(x, n, m));
}

static double lse_f64(const double *x, int64_t n) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  if (isinf(m)) return m;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += exp(x[i] - m);
  return m + log(s);
}

/* ---- the shared problem description ------------------------------------------------------ */

typedef struct ce_prob {
  int64_t N, C, S, R; /* batch, classes, spatial, rows = N * S */
  bool f64, probs;
  int red;
  int64_t ignore;
  double eps;
  tfw_tensor *x;      /* [R, C] contiguous, f32 or f64 */
  tfw_tensor *t;      /* int64 [R] or [R, C] probabilities (x's compute dtype) */
  double *w;          /* [C] or NULL */
  float *wf;          /* f32 copy of w */
  double wsum;        /* sum of w (C without weights) */
  double *g;          /* backward: per-row scale [R] */
  double *lr;         /* forward: per-row loss [R] */
  tfw_tensor *y;      /* backward: [R, C] output in compute dtype */
} ce_prob;

static void prob_free(ce_prob *P) {
  tfw_release(P->x), tfw_release(P->t), tfw_release(P->y);
  tfw__free(P->w), tfw__free(P->wf), tfw__free(P->g), tfw__free(P->lr);
}

/* t viewed as [N, d..., C] (class dim moved last): a view, no copy. */
static tfw_tensor *class_last(const tfw_tensor *t) {
  if (t->ndim <= 2) return tfw_retain((tfw_tensor *)t);
  int64_t sh[TFW_MAX_DIMS], st[TFW_MAX_DIMS];
  int k = 0;
  sh[k] = t->shape[0], st[k++] = t->strides[0];
  for (int d = 2; d < t->ndim; d++) sh[k] = t->shape[d], st[k++] = t->strides[d];
  sh[k] = t->shape[1], st[k++] = t->strides[1];
  return tfw__tensor_view(t, t->ndim, sh, st, t->offset);
}

static tfw_tensor *contig_class_last(const tfw_tensor *t, tfw_dtype dt) {
  tfw_tensor *v = class_last(t);
  tfw_tensor *c = v ? tfw__as_contiguous(v, dt) : NULL;
  tfw_release(v);
  return c;
}

/* Validates shapes, dtypes and attributes; fills the sizes. */
static tfw_status ce_check(const tfw__call *c, int n_fixed, ce_prob *P) {
  const char *op = c->op->name;
  memset(P, 0, sizeof *P);
  if (c->n_in != n_fixed && c->n_in != n_fixed + 1)
    return tfw__error(TFW_EVALUE, "%s: expects %d or %d inputs, got %d", op, n_fixed,
                      n_fixed + 1, c->n_in);
  const tfw_tensor *x = c->in[0], *t = c->in[1];
  if (tfw__check_float(op, "input", x)) return TFW_EDTYPE;
  if (x->ndim == 0) return tfw__error(TFW_ESHAPE, "%s: input must have a class dimension", op);
  if (c->a.i[0] < 0 || c->a.i[0] > 2)
    return tfw__error(TFW_EVALUE, "%s: reduction code %lld is not 0 (none), 1 (mean) or 2 (sum)",
                      op, (long long)c->a.i[0]);
  double eps = c->a.f[0];
  if (!(eps >= 0 && eps <= 1))
    return tfw__error(TFW_EVALUE, "%s: label_smoothing must be in [0, 1], got %g", op, eps);
  P->C = x->shape[x->ndim == 1 ? 0 : 1];
  P->N = x->ndim == 1 ? 1 : x->shape[0];
  P->S = 1;
  for (int d = 2; d < x->ndim; d++) P->S *= x->shape[d];
  P->R = P->N * P->S;
  P->red = (int)c->a.i[0];
  P->ignore = c->a.i[1];
  P->eps = eps;
  P->f64 = x->dtype == TFW_DTYPE_F64;
  char xs[96], ts[96];
  tfw__shape_str(xs, sizeof xs, x->ndim, x->shape);
  tfw__shape_str(ts, sizeof ts, t->ndim, t->shape);
  if (tfw_dtype_is_floating(t->dtype)) {
    P->probs = true;
    bool same = t->ndim == x->ndim;
    for (int d = 0; same && d < x->ndim; d++) same = t->shape[d] == x->shape[d];
    if (!same)
      return tfw__error(TFW_ESHAPE, "%s: probability target %s must have the input's shape %s",
                        op, ts, xs);
  } else if (tfw_dtype_is_integral(t->dtype)) {
    bool ok = t->ndim == (x->ndim == 1 ? 0 : x->ndim - 1);
    for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == x->shape[d == 0 ? 0 : d + 1];
    if (!ok)
      return tfw__error(TFW_ESHAPE, "%s: target %s does not match input %s (expected the input's "
                        "shape without the class dimension 1)", op, ts, xs);
  } else {
    return tfw__error(TFW_EDTYPE, "%s: target must hold integer class indices or float "
                      "probabilities, got %s", op, tfw_dtype_name(t->dtype));
  }
  if (c->n_in == n_fixed + 1) {
    const tfw_tensor *w = c->in[n_fixed];
    if (tfw__check_float(op, "weight", w)) return TFW_EDTYPE;
    if (w->ndim != 1 || w->shape[0] != P->C)
      return tfw__error(TFW_ESHAPE, "%s: weight must be 1-d with %lld entries (one per class), "
                        "got %s", op, (long long)P->C,
                        tfw__shape_str(ts, sizeof ts, w->ndim, w->shape));
  }
  return TFW_OK;
}

static void loss_meta(const tfw_tensor *x, int red, tfw__meta *out) {
  out->dtype = x->dtype;
  out->ndim = 0;
  if (red != TFW__RED_NONE || x->ndim == 1) return;
  out->shape[out->ndim++] = x->shape[0];
  for (int d = 2; d < x->ndim; d++) out->shape[out->ndim++] = x->shape[d];
}

tfw_status tfw__infer_ce(const tfw__call *c, tfw__meta *out) {
  ce_prob P;
  tfw_status st = ce_check(c, 2, &P);
  if (st) return st;
  loss_meta(c->in[0], P.red, out);
  return TFW_OK;
}

tfw_status tfw__infer_ce_bwd(const tfw__call *c, tfw__meta *out) {
  ce_prob P;
  tfw_status st = ce_check(c, 3, &P);
  if (st) return st;
  tfw__meta lm;
  loss_meta(c->in[0], P.red, &lm);
  const tfw_tensor *g = c->in[2];
  if (tfw__check_float(c->op->name, "grad", g)) return TFW_EDTYPE;
  bool same = g->ndim == lm.ndim;
  for (int d = 0; same && d < g->ndim; d++) same = g->shape[d] == lm.shape[d];
  if (!same) {
    char gs[96], ls[96];
    return tfw__error(TFW_ESHAPE, "%s: grad %s must have the loss's shape %s", c->op->name,
                      tfw__shape_str(gs, sizeof gs, g->ndim, g->shape),
                      tfw__shape_str(ls, sizeof ls, lm.ndim, lm.shape));
  }
  const tfw_tensor *x = c->in[0];
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  return TFW_OK;
}

tfw_status tfw__check_class_targets(const char *op, const tfw_tensor *target, int64_t C,
                                    int64_t ignore_index) {
  tfw_tensor *t = tfw__as_contiguous(target, TFW_DTYPE_I64);
  if (!t) return tfw_last_status();
  const int64_t *tv = (const int64_t *)tfw__data(t);
  int64_t n = tfw__numel(t->ndim, t->shape);
  tfw_status st = TFW_OK;
  for (int64_t i = 0; i < n; i++)
    if (tv[i] != ignore_index && (tv[i] < 0 || tv[i] >= C)) {
      st = tfw__error(TFW_EINDEX, "%s: target %lld out of range for %lld classes at index %lld",
                      op, (long long)tv[i], (long long)C, (long long)i);
      break;
    }
  tfw_release(t);
  return st;
}

/* Loads the inputs into P (contiguous, class-last, compute dtype). */
static tfw_status ce_load(const tfw__call *c, int n_fixed, ce_prob *P) {
  tfw_dtype ct = P->f64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  const char *op = c->op->name;
  if (!P->probs) {
    tfw_status st = tfw__check_class_targets(op, c->in[1], P->C, P->ignore);
    if (st) return st;
  }
  P->x = contig_class_last(c->in[0], ct);
  P->t = P->probs ? contig_class_last(c->in[1], ct) : tfw__as_contiguous(c->in[1], TFW_DTYPE_I64);
  if (!P->x || !P->t) return tfw_last_status();
  P->wsum = (double)P->C;
  if (c->n_in == n_fixed + 1) {
    tfw_tensor *w = tfw__as_contiguous(c->in[n_fixed], TFW_DTYPE_F64);
    P->w = tfw__malloc(sizeof(double) * (size_t)P->C);
    P->wf = tfw__malloc(sizeof(float) * (size_t)P->C);
    if (!w || !P->w || !P->wf) {
      tfw_release(w);
      return tfw_last_status() ? tfw_last_status() : TFW_ENOMEM;
    }
    memcpy(P->w, tfw__data(w), sizeof(double) * (size_t)P->C);
    tfw_release(w);
    P->wsum = 0;
    for (int64_t k = 0; k < P->C; k++) P->wsum += P->w[k], P->wf[k] = (float)P->w[k];
  }
  return TFW_OK;
}

/* Per-row coefficients: A = sum_c a_c, and the target's a for class indices. For
 * probabilities the row's a is computed on the fly. Returns the mean-divisor share. */
static inline double wt(const ce_prob *P, int64_t k) { return P->w ? P->w[k] : 1.0; }

/* loss of row r */
static double row_loss(const ce_prob *P, int64_t r) {
  int64_t C = P->C;
  const char *xb = tfw__data(P->x);
  double lse;
  if (P->f64) lse = lse_f64((const double *)xb + r * C, C);
  else lse = lse_f32((const float *)xb + r * C, C);
#define XV(k) (P->f64 ? ((const double *)xb)[r * C + (k)] : (double)((const float *)xb)[r * C + (k)])
  if (!P->probs) {
    int64_t t = ((const int64_t *)tfw__data(P->t))[r];
    if (t == P->ignore) return 0;
    double l = (1 - P->eps) * wt(P, t) * (lse - XV(t));
    if (P->eps > 0) {
      double s = 0;
      for (int64_t k = 0; k < C; k++) s += wt(P, k) * (lse - XV(k));
      l += P->eps / (double)C * s;
    }
    return l;
  }
  const char *pb = tfw__data(P->t);
  double l = 0;
  for (int64_t k = 0; k < C; k++) {
    double p = P->f64 ? ((const double *)pb)[r * C + k] : (double)((const float *)pb)[r * C + k];
    double a = wt(P, k) * (p * (1 - P->eps) + P->eps / (double)C);
    l += a * (lse - XV(k));
  }
  return l;
#undef XV
}

static void fwd_chunk(int64_t b, int64_t e, void *ctx) {
  ce_prob *P = ctx;
  for (int64_t r = b; r < e; r++) P->lr[r] = row_loss(P, r);
}

/* gradient of row r, scaled by s = P->g[r] */
static void row_grad(const ce_prob *P, int64_t r) {
  int64_t C = P->C;
  double s = P->g[r];
  double eC = P->eps / (double)C;
  if (P->f64) {
    const double *x = (const double *)tfw__data(P->x) + r * C;
    double *y = (double *)tfw__data(P->y) + r * C;
    double lse = lse_f64(x, C);
    if (!P->probs) {
      int64_t t = ((const int64_t *)tfw__data(P->t))[r];
      if (t == P->ignore) {
        for (int64_t k = 0; k < C; k++) y[k] = 0;
        return;
      }
      double A = (1 - P->eps) * wt(P, t) + eC * P->wsum;
      for (int64_t k = 0; k < C; k++) y[k] = s * (A * exp(x[k] - lse) - eC * wt(P, k));
      y[t] -= s * (1 - P->eps) * wt(P, t);
    } else {
      const double *p = (const double *)tfw__data(P->t) + r * C;
      double A = 0;
      for (int64_t k = 0; k < C; k++) A += wt(P, k) * (p[k] * (1 - P->eps) + eC);
      for (int64_t k = 0; k < C; k++)
        y[k] = s * (A * exp(x[k] - lse) - wt(P, k) * (p[k] * (1 - P->eps) + eC));
    }
    return;
  }
  const float *x = (const float *)tfw__data(P->x) + r * C;
  float *y = (float *)tfw__data(P->y) + r * C;
  float lse = (float)lse_f32(x, C);
  if (!P->probs) {
    int64_t t = ((const int64_t *)tfw__data(P->t))[r];
    if (t == P->ignore) {
      memset(y, 0, sizeof(float) * (size_t)C);
      return;
    }
    double A = (1 - P->eps) * wt(P, t) + eC * P->wsum;
    grad_row_f32(x, y, C, lse, (float)(s * A), (float)(s * eC), P->wf);
    y[t] -= (float)(s * (1 - P->eps) * wt(P, t));
  } else {
    const float *p = (const float *)tfw__data(P->t) + r * C;
    double A = 0;
    for (int64_t k = 0; k < C; k++) A += wt(P, k) * (p[k] * (1 - P->eps) + eC);
    for (int64_t k = 0; k < C; k++)
      y[k] = (float)(s * (A * (double)tfw__expf(x[k] - lse) -
                          wt(P, k) * (p[k] * (1 - P->eps) + eC)));
  }
}

static void bwd_chunk(int64_t b, int64_t e, void *ctx) {
  ce_prob *P = ctx;
  for (int64_t r = b; r < e; r++) row_grad(P, r);
}

static int64_t row_grain(int64_t C) {
  int64_t g = (TFW__GRAIN_EW / 4) / (C > 0 ? C : 1);
  return g > 0 ? g : 1;
}

/* 'mean' divisor: sum of the valid rows' target weights, or the row count. */
static double mean_divisor(const ce_prob *P) {
  if (P->probs) return (double)P->R;
  const int64_t *t = (const int64_t *)tfw__data(P->t);
  double D = 0;
  for (int64_t r = 0; r < P->R; r++)
    if (t[r] != P->ignore) D += wt(P, t[r]);
  return D;
}

tfw_status tfw__kernel_ce(const tfw__call *c, tfw_tensor **out) {
  ce_prob P;
  tfw_status st = ce_check(c, 2, &P);
  if (!st) st = ce_load(c, 2, &P);
  if (st) goto done;
  if (!(P.lr = tfw__malloc(sizeof(double) * (size_t)(P.R > 0 ? P.R : 1)))) {
    st = tfw_last_status();
    goto done;
  }
  if (P.C > 0) tfw__parallel_for(P.R, row_grain(P.C), fwd_chunk, &P);
  else
    for (int64_t r = 0; r < P.R; r++) P.lr[r] = 0;
  char *o = tfw__data(out[0]);
  if (P.red == TFW__RED_NONE) {
    int64_t es = (int64_t)tfw_dtype_size(out[0]->dtype);
    for (int64_t r = 0; r < P.R; r++) tfw__store_f64(o + r * es, out[0]->dtype, P.lr[r]);
  } else {
    double s = 0;
    for (int64_t r = 0; r < P.R; r++) s += P.lr[r];
    if (P.red == TFW__RED_MEAN) s /= mean_divisor(&P);
    tfw__store_f64(o, out[0]->dtype, s);
  }
done:
  prob_free(&P);
  return st;
}

tfw_status tfw__kernel_ce_bwd(const tfw__call *c, tfw_tensor **out) {
  ce_prob P;
  tfw_status st = ce_check(c, 3, &P);
  if (!st) st = ce_load(c, 3, &P);
  if (st) goto done;
  tfw_tensor *g = tfw__as_contiguous(c->in[2], TFW_DTYPE_F64);
  P.g = tfw__malloc(sizeof(double) * (size_t)(P.R > 0 ? P.R : 1));
  int64_t shp[2] = {P.R, P.C};
  P.y = tfw__tensor_new(c->op->name, P.f64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32, 2, shp);
  if (!g || !P.g || !P.y) {
    tfw_release(g);
    st = tfw_last_status();
    goto done;
  }
  const double *gv = (const double *)tfw__data(g);
  double scale = P.red == TFW__RED_MEAN ? 1.0 / mean_divisor(&P) : 1.0;
  for (int64_t r = 0; r < P.R; r++) P.g[r] = (P.red == TFW__RED_NONE ? gv[r] : gv[0]) * scale;
  tfw_release(g);
  if (P.C > 0) tfw__parallel_for(P.R, row_grain(P.C), bwd_chunk, &P);
  /* out (class dim 1) <- y (class last) */
  if (out[0]->ndim <= 2 && out[0]->dtype == P.y->dtype) {
    if (P.R * P.C > 0)
      memcpy(tfw__data(out[0]), tfw__data(P.y), tfw_dtype_size(P.y->dtype) * (size_t)(P.R * P.C));
  } else {
    tfw_tensor *ov = class_last(out[0]);
    int64_t cs[TFW_MAX_DIMS];
    if (ov) tfw__contiguous_strides(ov->ndim, ov->shape, cs);
    tfw_tensor *yv = ov ? tfw__tensor_view(P.y, ov->ndim, ov->shape, cs, 0) : NULL;
    st = ov && yv ? tfw__copy_cast(ov, yv) : tfw_last_status();
    tfw_release(ov), tfw_release(yv);
  }
done:
  prob_free(&P);
  return st;
}

/* ---- samples ------------------------------------------------------------------------------ */

/* (logits, target[, weight]) cases; with_grad adds the grad input of cross_entropy_backward.
 * Weighted cases are left out: the weight gets no gradient (as in PyTorch), and the
 * generated gradient checks differentiate every floating input. */
static int ce_samples(const tfw__op_def *op, tfw__call *calls, int cap, bool with_grad) {
  static const int64_t x2[2] = {4, 5}, t1[1] = {4}, x3[3] = {2, 3, 4}, t2[2] = {2, 4},
                       x1[1] = {6};
  struct { int nd; const int64_t *xs; int tnd; const int64_t *ts; bool probs; int red;
           int64_t ignore; double eps; tfw__layout lay; tfw_dtype dt; } spec[] = {
      {2, x2, 1, t1, false, 1, -100, 0.0, TFW__LAYOUT_CONTIGUOUS, TFW_DTYPE_F32},
      {2, x2, 1, t1, false, 0, 2, 0.1, TFW__LAYOUT_STRIDED, TFW_DTYPE_F64},
      {3, x3, 2, t2, false, 2, 1, 0.2, TFW__LAYOUT_CONTIGUOUS, TFW_DTYPE_F64},
      {2, x2, 2, x2, true, 1, -100, 0.15, TFW__LAYOUT_CONTIGUOUS, TFW_DTYPE_F64},
      {3, x3, 3, x3, true, 0, -100, 0.0, TFW__LAYOUT_STRIDED, TFW_DTYPE_F32},
      {1, x1, 0, NULL, false, 0, -100, 0.0, TFW__LAYOUT_CONTIGUOUS, TFW_DTYPE_F64},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof spec / sizeof spec[0] && n < cap; k++) {
    const tfw_tensor *in[4] = {NULL};
    int64_t C = spec[k].xs[spec[k].nd == 1 ? 0 : 1];
    in[0] = tfw__sample_tensor(spec[k].dt, spec[k].nd, spec[k].xs, -3, 3, 40 + k, spec[k].lay);
    if (spec[k].probs)
      in[1] = tfw__sample_tensor(spec[k].dt, spec[k].tnd, spec[k].ts, 0, 1, 50 + k,
                                 TFW__LAYOUT_CONTIGUOUS);
    else
      in[1] = tfw__sample_tensor(TFW_DTYPE_I64, spec[k].tnd, spec[k].ts, 0, (double)C, 50 + k,
                                 TFW__LAYOUT_CONTIGUOUS);
    int nin = 2;
    if (with_grad) {
      int64_t gs[TFW_MAX_DIMS];
      int gnd = 0;
      if (spec[k].red == 0 && spec[k].nd > 1) {
        gs[gnd++] = spec[k].xs[0];
        for (int d = 2; d < spec[k].nd; d++) gs[gnd++] = spec[k].xs[d];
      }
      in[nin++] = tfw__sample_tensor(spec[k].dt, gnd, gs, -1, 1, 60 + k, TFW__LAYOUT_CONTIGUOUS);
    }
    tfw__call_init(&calls[n], op->id, nin, in);
    calls[n].a.i[0] = spec[k].red;
    calls[n].a.i[1] = spec[k].ignore;
    calls[n].a.f[0] = spec[k].eps;
    n++;
  }
  return n;
}

int tfw__sample_ce(const tfw__op_def *op, tfw__call *calls, int cap) {
  return ce_samples(op, calls, cap, false);
}
int tfw__sample_ce_bwd(const tfw__op_def *op, tfw__call *calls, int cap) {
  return ce_samples(op, calls, cap, true);
}
