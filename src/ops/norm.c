/* layer_norm and rms_norm: forward and fused backward kernels (entries in norm.def).
 *
 * x is viewed as rows [M, N]: N = prod(normalized_shape) (the last dims of x), M = the rest.
 * Inputs that are strided or f16/bf16 are first made contiguous in the compute type (f32, or
 * f64 for f64 x); the output is written in place when it already has that type.
 *
 * Forward, one row (f32): the row (4 KiB for N = 1024) stays in L1 across the passes:
 *   1. sum(x) in 16 f32 lanes, blocks of 256 carried in f64 -> mean (skipped for rms_norm),
 *   2. sum((x - mean)^2) the same way -> var: two-pass in registers, so a large mean does not
 *      cancel the variance away (Welford is slower and no more accurate here),
 *   3. y = (x - mean) * rstd * w + b, one fused loop per weight/bias combination.
 * Rows run in parallel (tfw__parallel_for over rows; each row is computed alone, so the
 * result is bit-identical for any thread count).
 *
 * Backward (one op returning grad x and the stacked column sums [2, N]): per row it
 * recomputes mean/rstd (cheaper than saving them: the node keeps only inputs, and the row is
 * in L1 anyway), then with gh = g * w:
 *   a = mean(gh * xhat), c = mean(gh) (layer_norm only),
 *   gx = rstd * (gh - c - xhat * a),
 * and adds g * xhat and g into per-block column partials. Blocks of rows are a pure function
 * of (M, N) (at most 64), partials are summed in block order in f64: deterministic for any
 * thread count. This is one read of x and g and one write of gx, against PyTorch's separate
 * gx and gamma/beta kernels. f64 x runs the same code in double. */
#include <math.h>

#include "core/iter.h"
#include "ops/registry.h"
#include "ops/samples.h"

#if defined(__clang__)
#define HOT
#else
#define HOT __attribute__((optimize("fp-contract=fast"))) TFW_CLONES
#endif

/* ---- row kernels (f32) ---------------------------------------------------------------- */

/* sum(x - m) or sum((x - m)^2): 16 f32 lanes over blocks of 256, carried in f64. */
HOT static double sum_dev_f32(const float *x, int64_t n, float m, bool sq) {
  double dl[16] = {0};
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    float fl[16] = {0};
    for (int k = 0; k < 256; k += 16)
      for (int j = 0; j < 16; j++) {
        float d = x[i + k + j] - m;
        fl[j] += sq ? d * d : d;
      }
    for (int j = 0; j < 16; j++) dl[j] += (double)fl[j];
  }
  double t = 0;
  for (; i < n; i++) {
    float d = x[i] - m;
    t += sq ? (double)d * d : (double)d;
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; j++) dl[j] += dl[j + w];
  return dl[0] + t;
}

static void stats_f32(const float *x, int64_t n, double eps, bool rms, float *mean, float *rstd) {
  float m = rms ? 0.0f : (float)(sum_dev_f32(x, n, 0.0f, false) / (double)n);
  double var = sum_dev_f32(x, n, m, true) / (double)n;
  *mean = m;
  *rstd = (float)(1.0 / sqrt(var + eps));
}

HOT static void fwd_row_f32(const float *x, float *y, int64_t n, const float *w, const float *b,
                            double eps, bool rms) {
  float m, r;
  stats_f32(x, n, eps, rms, &m, &r);
  if (w && b)
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i] + b[i];
  else if (w)
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r * w[i];
  else if (b)
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r + b[i];
  else
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r;
}

/* One row of the backward; pw/pb: the block's column partials of g * xhat and g. */
HOT static void bwd_row_f32(const float *g, const float *x, float *gx, int64_t n, const float *w,
                            double eps, bool rms, float *pw, float *pb) {
  float m, r;
  stats_f32(x, n, eps, rms, &m, &r);
  float al[16] = {0}, cl[16] = {0};
  double a = 0, c = 0;
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    for (int k = 0; k < 256; k += 16)
      for (int j = 0; j < 16; j++) {
        int64_t e = i + k + j;
        float xh = (x[e] - m) * r, gh = w ? g[e] * w[e] : g[e];
        al[j] += gh * xh;
        cl[j] += gh;
        pw[e] += g[e] * xh;
        pb[e] += g[e];
      }
    for (int j = 0; j < 16; j++) a += (double)al[j], c += (double)cl[j], al[j] = cl[j] = 0;
  }
  for (; i < n; i++) {
    float xh = (x[i] - m) * r, gh = w ? g[i] * w[i] : g[i];
    a += (double)gh * xh;
    c += (double)gh;
    pw[i] += g[i] * xh;
    pb[i] += g[i];
  }
  float af = (float)(a / (double)n), cf = rms ? 0.0f : (float)(c / (double)n);
  if (w)
    for (int64_t e = 0; e < n; e++) gx[e] = r * (g[e] * w[e] - cf - (x[e] - m) * r * af);
  else
    for (int64_t e = 0; e < n; e++) gx[e] = r * (g[e] - cf - (x[e] - m) * r * af);
}

/* ---- row kernels (f64): the same formulas in double ------------------------------------ */

static void stats_f64(const double *x, int64_t n, double eps, bool rms, double *mean, double *rstd) {
  double m = 0, v = 0;
  if (!rms) {
    for (int64_t i = 0; i < n; i++) m += x[i];
    m /= (double)n;
  }
  for (int64_t i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
  *mean = m;
  *rstd = 1.0 / sqrt(v / (double)n + eps);
}

static void fwd_row_f64(const double *x, double *y, int64_t n, const double *w, const double *b,
                        double eps, bool rms) {
  double m, r;
  stats_f64(x, n, eps, rms, &m, &r);
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * r * (w ? w[i] : 1.0) + (b ? b[i] : 0.0);
}

static void bwd_row_f64(const double *g, const double *x, double *gx, int64_t n, const double *w,
                        double eps, bool rms, double *pw, double *pb) {
  double m, r, a = 0, c = 0;
  stats_f64(x, n, eps, rms, &m, &r);
  for (int64_t i = 0; i < n; i++) {
    double xh = (x[i] - m) * r, gh = w ? g[i] * w[i] : g[i];
    a += gh * xh;
    c += gh;
    pw[i] += g[i] * xh;
    pb[i] += g[i];
  }
  a /= (double)n;
  c = rms ? 0.0 : c / (double)n;
  for (int64_t i = 0; i < n; i++)
    gx[i] = r * ((w ? g[i] * w[i] : g[i]) - c - (x[i] - m) * r * a);
}

/* ---- drivers ------------------------------------------------------------------------------ */

typedef struct norm_ctx {
  const char *x, *g, *w, *b;
  char *y, *part; /* part: [nblk, 2, N] partials (backward) */
  int64_t M, N, rows_per_blk;
  double eps;
  bool rms, f64;
} norm_ctx;

static void fwd_chunk(int64_t r0, int64_t r1, void *vp) {
  const norm_ctx *S = vp;
  for (int64_t r = r0; r < r1; r++) {
    if (S->f64)
      fwd_row_f64((const double *)S->x + r * S->N, (double *)S->y + r * S->N, S->N,
                  (const double *)S->w, (const double *)S->b, S->eps, S->rms);
    else
      fwd_row_f32((const float *)S->x + r * S->N, (float *)S->y + r * S->N, S->N,
                  (const float *)S->w, (const float *)S->b, S->eps, S->rms);
  }
}

static void bwd_chunk(int64_t k0, int64_t k1, void *vp) {
  const norm_ctx *S = vp;
  size_t es = S->f64 ? 8 : 4;
  for (int64_t k = k0; k < k1; k++) {
    char *pw = S->part + (size_t)(2 * k * S->N) * es, *pb = pw + (size_t)S->N * es;
    memset(pw, 0, 2 * (size_t)S->N * es);
    int64_t e = (k + 1) * S->rows_per_blk < S->M ? (k + 1) * S->rows_per_blk : S->M;
    for (int64_t r = k * S->rows_per_blk; r < e; r++) {
      size_t off = (size_t)(r * S->N) * es;
      if (S->f64)
        bwd_row_f64((const double *)(S->g + off), (const double *)(S->x + off),
                    (double *)(S->y + off), S->N, (const double *)S->w, S->eps, S->rms,
                    (double *)pw, (double *)pb);
      else
        bwd_row_f32((const float *)(S->g + off), (const float *)(S->x + off),
                    (float *)(S->y + off), S->N, (const float *)S->w, S->eps, S->rms,
                    (float *)pw, (float *)pb);
    }
  }
}

/* ---- inference ---------------------------------------------------------------------------- */

/* Checks normalized_shape (a.ints) against the trailing dims of x and the optional parameter
 * tensors; sets *N (elements per row). first: index of the first parameter in c->in. */
static tfw_status check_norm(const tfw__call *c, const tfw_tensor *x, int first, int64_t *N) {
  const char *name = c->op->name;
  const tfw__attrs *a = &c->a;
  bool bwd = c->op->id == TFW__OP_layer_norm_backward || c->op->id == TFW__OP_rms_norm_backward;
  bool is_ln = c->op->id == TFW__OP_layer_norm || c->op->id == TFW__OP_layer_norm_backward;
  int want = first + (a->b[0] ? 1 : 0) + (a->b[1] && is_ln && !bwd ? 1 : 0);
  if (c->n_in != want)
    return tfw__error(TFW_EVALUE, "%s: %d inputs given, expected %d (weight %s, bias %s)", name,
                      c->n_in, want, a->b[0] ? "given" : "absent",
                      a->b[1] && is_ln && !bwd ? "given" : "absent");
  for (int i = 0; i < c->n_in; i++)
    if (tfw__check_float(name, i == 0 ? (bwd ? "grad" : "input") : i < first ? "input"
                         : i == first && a->b[0] ? "weight" : "bias", c->in[i]))
      return TFW_EDTYPE;
  if (a->n_ints < 1 || a->n_ints > TFW_MAX_DIMS)
    return tfw__error(TFW_EVALUE, "%s: normalized_shape must have 1 to %d dims, got %d", name,
                      TFW_MAX_DIMS, a->n_ints);
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  int k = a->n_ints;
  bool ok = k <= x->ndim;
  for (int d = 0; ok && d < k; d++) ok = a->ints[d] == x->shape[x->ndim - k + d];
  if (!ok)
    return tfw__error(TFW_ESHAPE, "%s: normalized_shape %s does not match the last dims of the "
                      "input of shape %s", name, tfw__shape_str(b1, sizeof b1, k, a->ints),
                      tfw__shape_str(b2, sizeof b2, x->ndim, x->shape));
  *N = 1;
  for (int d = 0; d < k; d++) *N *= a->ints[d];
  for (int i = first; i < c->n_in; i++) {
    const tfw_tensor *p = c->in[i];
    bool same = p->ndim == k;
    for (int d = 0; same && d < k; d++) same = p->shape[d] == a->ints[d];
    if (!same)
      return tfw__error(TFW_ESHAPE, "%s: %s has shape %s, expected normalized_shape %s", name,
                        i == first && a->b[0] ? "weight" : "bias",
                        tfw__shape_str(b1, sizeof b1, p->ndim, p->shape),
                        tfw__shape_str(b2, sizeof b2, k, a->ints));
  }
  if (!(a->f[0] >= 0) || isinf(a->f[0]))
    return tfw__error(TFW_EVALUE, "%s: eps must be finite and >= 0, got %g", name, a->f[0]);
  return TFW_OK;
}

tfw_status tfw__infer_layer_norm(const tfw__call *c, tfw__meta *out) {
  if (c->n_in < 1) return tfw__error(TFW_EVALUE, "%s: no input given", c->op->name);
  const tfw_tensor *x = c->in[0];
  int64_t N;
  tfw_status st = check_norm(c, x, 1, &N);
  if (st) return st;
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) out->shape[d] = x->shape[d];
  return TFW_OK;
}

tfw_status tfw__infer_layer_norm_backward(const tfw__call *c, tfw__meta *out) {
  if (c->n_in < 2) return tfw__error(TFW_EVALUE, "%s: expects (grad, input[, weight])", c->op->name);
  const tfw_tensor *g = c->in[0], *x = c->in[1];
  int64_t N;
  tfw_status st = check_norm(c, x, 2, &N);
  if (st) return st;
  bool same = g->ndim == x->ndim;
  for (int d = 0; same && d < x->ndim; d++) same = g->shape[d] == x->shape[d];
  if (!same) {
    char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: grad has shape %s, input %s", c->op->name,
                      tfw__shape_str(b1, sizeof b1, g->ndim, g->shape),
                      tfw__shape_str(b2, sizeof b2, x->ndim, x->shape));
  }
  if (c->a.n_ints + 1 > TFW_MAX_DIMS)
    return tfw__error(TFW_EVALUE, "%s: normalized_shape of %d dims leaves no room for the "
                      "stacked sums", c->op->name, c->a.n_ints);
  out[0].dtype = x->dtype;
  out[0].ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) out[0].shape[d] = x->shape[d];
  out[1].dtype = x->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  out[1].ndim = c->a.n_ints + 1;
  out[1].shape[0] = 2;
  for (int d = 0; d < c->a.n_ints; d++) out[1].shape[d + 1] = c->a.ints[d];
  return TFW_OK;
}

/* ---- kernels -------------------------------------------------------------------------------- */

/* Contiguous copies in the compute type of the optional inputs, from index i. */
static tfw_status params(const tfw__call *c, int i, tfw_dtype cdt, tfw_tensor **w, tfw_tensor **b) {
  *w = *b = NULL;
  bool is_ln = c->op->id == TFW__OP_layer_norm;
  if (c->a.b[0]) {
    if (!(*w = tfw__as_contiguous(c->in[i++], cdt))) return tfw_last_status();
  }
  if (c->a.b[1] && is_ln) {
    if (!(*b = tfw__as_contiguous(c->in[i], cdt))) return tfw_last_status();
  }
  return TFW_OK;
}

/* A tensor of out's shape in cdt: out itself when it has that dtype, else a new one. */
static tfw_tensor *compute_out(tfw_tensor *out, tfw_dtype cdt, const char *name) {
  if (out->dtype == cdt) return tfw_retain(out);
  return tfw__tensor_new(name, cdt, out->ndim, out->shape);
}

static tfw_status finish_out(tfw_tensor *out, tfw_tensor *tmp) {
  tfw_status st = tmp != out ? tfw__copy_cast(out, tmp) : TFW_OK;
  tfw_release(tmp);
  return st;
}

tfw_status tfw__kernel_layer_norm(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x0 = c->in[0];
  int64_t N = 1;
  for (int d = 0; d < c->a.n_ints; d++) N *= c->a.ints[d];
  int64_t numel = tfw__numel(x0->ndim, x0->shape);
  if (numel == 0) return TFW_OK;
  tfw_dtype cdt = x0->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  tfw_tensor *w = NULL, *b = NULL, *x = NULL, *y = NULL;
  tfw_status st = params(c, 1, cdt, &w, &b);
  if (st) goto done;
  if (!(x = tfw__as_contiguous(x0, cdt)) || !(y = compute_out(out[0], cdt, c->op->name))) {
    st = tfw_last_status();
    goto done;
  }
  norm_ctx S = {tfw__data(x), NULL, w ? tfw__data(w) : NULL, b ? tfw__data(b) : NULL,
                tfw__data(y), NULL, numel / N, N, 0, c->a.f[0],
                c->op->id == TFW__OP_rms_norm, cdt == TFW_DTYPE_F64};
  int64_t grain = TFW__GRAIN_EW / (3 * N) > 0 ? TFW__GRAIN_EW / (3 * N) : 1;
  tfw__parallel_for(S.M, grain, fwd_chunk, &S);
  st = finish_out(out[0], y);
  y = NULL;
done:
  tfw_release(w), tfw_release(b), tfw_release(x), tfw_release(y);
  return st;
}

tfw_status tfw__kernel_layer_norm_backward(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *g0 = c->in[0], *x0 = c->in[1];
  int64_t N = 1;
  for (int d = 0; d < c->a.n_ints; d++) N *= c->a.ints[d];
  int64_t numel = tfw__numel(x0->ndim, x0->shape), M = N > 0 ? numel / N : 0;
  tfw_dtype cdt = out[1]->dtype;
  size_t es = tfw_dtype_size(cdt);
  if (M == 0 || N == 0) { /* empty: zero sums */
    memset(tfw__data(out[1]), 0, (size_t)(2 * N) * es);
    return TFW_OK;
  }
  tfw_tensor *w = NULL, *x = NULL, *g = NULL, *gx = NULL;
  char *part = NULL;
  tfw_status st = TFW_OK;
  if (c->a.b[0] && !(w = tfw__as_contiguous(c->in[2], cdt))) goto fail;
  if (!(x = tfw__as_contiguous(x0, cdt)) || !(g = tfw__as_contiguous(g0, cdt))) goto fail;
  if (!(gx = compute_out(out[0], cdt, c->op->name))) goto fail;
  /* blocks of rows: at most 64, ~32k elements each; a function of (M, N) only */
  int64_t nblk = numel / 32768;
  nblk = nblk < 1 ? 1 : nblk > 64 ? 64 : nblk > M ? M : nblk;
  int64_t rpb = (M + nblk - 1) / nblk;
  nblk = (M + rpb - 1) / rpb;
  part = tfw__malloc((size_t)(2 * nblk * N) * es);
  if (!part) {
    st = tfw__error(TFW_ENOMEM, "%s: out of memory for %lld column partials", c->op->name,
                    (long long)(2 * nblk * N));
    goto done;
  }
  norm_ctx S = {tfw__data(x), tfw__data(g), w ? tfw__data(w) : NULL, NULL, tfw__data(gx), part,
                M, N, rpb, c->a.f[0], c->op->id == TFW__OP_rms_norm_backward,
                cdt == TFW_DTYPE_F64};
  tfw__parallel_for(nblk, 1, bwd_chunk, &S);
  /* column sums: blocks in order, in f64 */
  char *o = tfw__data(out[1]);
  for (int64_t j = 0; j < 2 * N; j++) {
    double s = 0;
    for (int64_t k = 0; k < nblk; k++)
      s += cdt == TFW_DTYPE_F64 ? ((double *)part)[k * 2 * N + j] : ((float *)part)[k * 2 * N + j];
    if (cdt == TFW_DTYPE_F64) ((double *)o)[j] = s;
    else ((float *)o)[j] = (float)s;
  }
  st = finish_out(out[0], gx);
  gx = NULL;
  goto done;
fail:
  st = tfw_last_status();
done:
  tfw__free(part);
  tfw_release(w), tfw_release(x), tfw_release(g), tfw_release(gx);
  return st;
}

/* ---- samples -------------------------------------------------------------------------------- */

int tfw__sample_layer_norm(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s0[3] = {2, 3, 5}, s1[2] = {4, 6}, s2[3] = {3, 2, 4};
  struct {
    tfw_dtype dt;
    int nd;
    const int64_t *shape;
    int k; /* normalized dims */
    bool w, b;
    tfw__layout lay;
  } spec[4] = {
      {TFW_DTYPE_F32, 3, s0, 1, true, true, TFW__LAYOUT_CONTIGUOUS},
      {TFW_DTYPE_F64, 2, s1, 1, false, false, TFW__LAYOUT_STRIDED},
      {TFW_DTYPE_F64, 3, s2, 2, true, false, TFW__LAYOUT_CONTIGUOUS},
      {TFW_DTYPE_BF16, 3, s0, 2, false, true, TFW__LAYOUT_CONTIGUOUS},
  };
  bool bwd = op->id == TFW__OP_layer_norm_backward || op->id == TFW__OP_rms_norm_backward;
  bool is_ln = op->id == TFW__OP_layer_norm || op->id == TFW__OP_layer_norm_backward;
  int n = 0;
  for (int s = 0; s < 4 && n < cap; s++) {
    const int nd = spec[s].nd, k = spec[s].k;
    const int64_t *ns = spec[s].shape + nd - k;
    const tfw_tensor *in[4];
    int m = 0;
    if (bwd)
      in[m++] = tfw__sample_tensor(spec[s].dt, nd, spec[s].shape, -1, 1, 90 + (uint64_t)s,
                                   TFW__LAYOUT_CONTIGUOUS);
    in[m++] = tfw__sample_tensor(spec[s].dt, nd, spec[s].shape, -2, 2, 70 + (uint64_t)s, spec[s].lay);
    if (spec[s].w) in[m++] = tfw__sample_tensor(spec[s].dt, k, ns, 0.5, 1.5, 80 + (uint64_t)s, 0);
    if (spec[s].b && is_ln && !bwd)
      in[m++] = tfw__sample_tensor(spec[s].dt, k, ns, -1, 1, 85 + (uint64_t)s, 0);
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, m, in);
    c->a.n_ints = k;
    for (int d = 0; d < k; d++) c->a.ints[d] = ns[d];
    c->a.f[0] = 1e-5;
    c->a.b[0] = spec[s].w;
    c->a.b[1] = spec[s].b && is_ln && !bwd;
  }
  return n;
}

/* ---- public wrappers ------------------------------------------------------------------------ */

static tfw_tensor *run_norm(tfw__op_id id, const tfw_tensor *x, int n, const int64_t *shape,
                            const tfw_tensor *w, const tfw_tensor *b, double eps) {
  const char *name = tfw__ops[id].name;
  if (tfw__check_tensor(name, "input", x)) return NULL;
  if (n < 1 || n > TFW_MAX_DIMS || !shape) {
    tfw__error(TFW_EVALUE, "%s: normalized_shape must have 1 to %d dims, got %d%s", name,
               TFW_MAX_DIMS, n, shape ? "" : " (NULL)");
    return NULL;
  }
  const tfw_tensor *in[3] = {x};
  int m = 1;
  if (w) in[m++] = w;
  if (b) in[m++] = b;
  tfw__call c;
  tfw__call_init(&c, id, m, in);
  c.a.n_ints = n;
  for (int d = 0; d < n; d++) c.a.ints[d] = shape[d];
  c.a.f[0] = eps;
  c.a.b[0] = w != NULL;
  c.a.b[1] = b != NULL;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_layer_norm(const tfw_tensor *input, int n, const int64_t *normalized_shape,
                           const tfw_tensor *weight, const tfw_tensor *bias, double eps) {
  return run_norm(TFW__OP_layer_norm, input, n, normalized_shape, weight, bias, eps);
}

tfw_tensor *tfw_rms_norm(const tfw_tensor *input, int n, const int64_t *normalized_shape,
                         const tfw_tensor *weight, double eps) {
  return run_norm(TFW__OP_rms_norm, input, n, normalized_shape, weight, NULL, eps);
}
