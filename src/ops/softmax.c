/* softmax and log_softmax along one dim, stable (the max is subtracted first).
 *
 * The input is viewed as [A, R, B] on a contiguous copy in the compute type (made only when
 * the input is strided or f16/bf16, which compute in f32). B == 1 (the usual last-dim case)
 * runs tfw__softmax_row_f32 per row, rows in parallel: a NaN-propagating max with 32 lanes,
 * exp(x - max) written to y with a polynomial exp that gcc vectorises (glibc's expf is a
 * scalar call without -ffast-math, and it dominated the profile), the sum of y in f32
 * blocks carried in f64, and one scale pass; a 16 KiB row stays in L1/L2 across the four
 * passes. B > 1 works on blocks of 256 columns, vectorised over b, so no transpose is made.
 * A NaN anywhere in a slice makes the whole slice NaN, as in PyTorch; so does a slice of all
 * -inf (x - max is nan). */
#include <math.h>

#include "core/iter.h"
#include "ops/reduce.h"
#include "ops/samples.h"

#if defined(__clang__)
#define HOT
#else
#define HOT __attribute__((optimize("fp-contract=fast"))) TFW_CLONES
#endif
#define SM_BLOCK 256

/* exp(x) in f32: x = k ln2 + r with |r| <= ln2/2 (Cody-Waite split of ln2), a degree-6
 * polynomial for e^r (Cephes expf coefficients), and 2^k applied as two exponent-built
 * factors 2^(k/2) * 2^(k - k/2) so that k = 128 (x near 88.7) and the subnormal results
 * (x down to -104) come out right. The rounding of k uses the 1.5 * 2^23 trick, so NaN never
 * reaches a float->int conversion. Beyond the range: 0 or inf; NaN stays NaN. */
static inline float expf_poly(float x) {
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  float xc = x < -104.0f ? -104.0f : x > 89.0f ? 89.0f : x;
  float t = xc * 1.44269504088896341f;
  float kf = t + magic;
  float k = kf - magic;
  float r = xc - k * 0.693145751953125f;
  r = r - k * 1.428606765330187045e-06f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  uint32_t kb;
  memcpy(&kb, &kf, sizeof kb);
  int32_t ki = (int32_t)(kb - 0x4B400000u), h = ki / 2;
  uint32_t e1 = (uint32_t)(h + 127) << 23, e2 = (uint32_t)(ki - h + 127) << 23;
  float s1, s2;
  memcpy(&s1, &e1, sizeof s1);
  memcpy(&s2, &e2, sizeof s2);
  float res = (p * s1) * s2;
  res = x < -103.97f ? 0.0f : res;
  res = x > 88.7228f ? INFINITY : res;
  return x != x ? x : res;
}

float tfw__expf_fast(float x) { return expf_poly(x); }

HOT static float max_f32(const float *x, int64_t n) {
  float l[32];
  for (int j = 0; j < 32; j++) l[j] = -INFINITY;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; j++) {
      float v = x[i + j];
      l[j] = (v > l[j] || v != v) ? v : l[j];
    }
  float m = -INFINITY;
  for (; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  for (int j = 0; j < 32; j++) m = (l[j] > m || l[j] != l[j]) ? l[j] : m;
  return m;
}

/* y = exp(x - m), returning sum(y): blocks of 256 summed in 32 f32 lanes, carried in f64. */
HOT static double exp_sub_sum_f32(const float *x, float *y, int64_t n, float m) {
  double dl[32] = {0};
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    float fl[32] = {0};
    for (int k = 0; k < 256; k += 32)
      for (int j = 0; j < 32; j++) {
        float e = expf_poly(x[i + k + j] - m);
        y[i + k + j] = e;
        fl[j] += e;
      }
    for (int j = 0; j < 32; j++) dl[j] += (double)fl[j];
  }
  double t = 0;
  for (; i < n; i++) {
    float e = expf_poly(x[i] - m);
    y[i] = e;
    t += (double)e;
  }
  for (int w = 16; w >= 1; w /= 2)
    for (int j = 0; j < w; j++) dl[j] += dl[j + w];
  return dl[0] + t;
}

HOT static void scale_f32(float *y, int64_t n, float s) {
  for (int64_t i = 0; i < n; i++) y[i] *= s;
}

/* y = (x - m) - ls: x - m first, so large logits keep their precision */
HOT static void sub_f32(const float *x, float *y, int64_t n, float m, float ls) {
  for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
}

void tfw__softmax_row_f32(const float *x, float *y, int64_t n, bool log_space) {
  if (n <= 0) return;
  float m = max_f32(x, n);
  double s = exp_sub_sum_f32(x, y, n, m);
  if (log_space) sub_f32(x, y, n, m, (float)log(s));
  else scale_f32(y, n, (float)(1.0 / s));
}

static void row_f64(const double *x, double *y, int64_t n, bool log_space) {
  double m = -INFINITY;
  for (int64_t i = 0; i < n; i++) m = (x[i] > m || x[i] != x[i]) ? x[i] : m;
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (y[i] = exp(x[i] - m));
  if (log_space) {
    double ls = log(s);
    for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
  } else {
    double inv = 1.0 / s;
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
  }
}

/* Columns: x, y point at [R, B] slices (row stride B); nb <= SM_BLOCK columns. */
HOT static void cols_f32(const float *x, float *y, int64_t R, int64_t B, int64_t nb,
                         bool log_space) {
  float m[SM_BLOCK];
  double s[SM_BLOCK];
  for (int64_t j = 0; j < nb; j++) m[j] = -INFINITY, s[j] = 0;
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      float v = x[r * B + j];
      m[j] = (v > m[j] || v != v) ? v : m[j];
    }
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      float e = expf_poly(x[r * B + j] - m[j]);
      if (!log_space) y[r * B + j] = e;
      s[j] += (double)e;
    }
  float f[SM_BLOCK];
  for (int64_t j = 0; j < nb; j++) f[j] = log_space ? (float)log(s[j]) : (float)(1.0 / s[j]);
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      if (log_space) y[r * B + j] = (x[r * B + j] - m[j]) - f[j];
      else y[r * B + j] *= f[j];
    }
}

static void cols_f64(const double *x, double *y, int64_t R, int64_t B, int64_t nb,
                     bool log_space) {
  double m[SM_BLOCK], s[SM_BLOCK];
  for (int64_t j = 0; j < nb; j++) m[j] = -INFINITY, s[j] = 0;
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      double v = x[r * B + j];
      m[j] = (v > m[j] || v != v) ? v : m[j];
    }
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      double e = exp(x[r * B + j] - m[j]);
      if (!log_space) y[r * B + j] = e;
      s[j] += e;
    }
  for (int64_t j = 0; j < nb; j++) s[j] = log_space ? log(s[j]) : 1.0 / s[j];
  for (int64_t r = 0; r < R; r++)
    for (int64_t j = 0; j < nb; j++) {
      if (log_space) y[r * B + j] = (x[r * B + j] - m[j]) - s[j];
      else y[r * B + j] *= s[j];
    }
}

typedef struct sm_ctx {
  const char *x;
  char *y;
  int64_t R, B, nblk;
  bool log_space, f64;
} sm_ctx;

static void sm_chunk(int64_t b, int64_t e, void *vp) {
  const sm_ctx *S = vp;
  size_t es = S->f64 ? 8 : 4;
  for (int64_t t = b; t < e; t++) {
    int64_t a = t / S->nblk, j0 = (t % S->nblk) * SM_BLOCK;
    int64_t nb = S->B - j0 < SM_BLOCK ? S->B - j0 : SM_BLOCK;
    size_t off = (size_t)(a * S->R * S->B + j0) * es;
    const char *x = S->x + off;
    char *y = S->y + off;
    if (S->B == 1) {
      if (S->f64) row_f64((const double *)x, (double *)y, S->R, S->log_space);
      else tfw__softmax_row_f32((const float *)x, (float *)y, S->R, S->log_space);
    } else if (S->f64) {
      cols_f64((const double *)x, (double *)y, S->R, S->B, nb, S->log_space);
    } else {
      cols_f32((const float *)x, (float *)y, S->R, S->B, nb, S->log_space);
    }
  }
}

static void sm_run(const char *x, char *y, int64_t A, int64_t R, int64_t B, bool f64,
                   bool log_space) {
  sm_ctx S = {x, y, R, B, (B + SM_BLOCK - 1) / SM_BLOCK, log_space, f64};
  int64_t work = R * (B < SM_BLOCK ? B : SM_BLOCK) * 4; /* ~4 passes per element */
  int64_t grain = TFW__GRAIN_EW / (work > 0 ? work : 1);
  tfw__parallel_for(A * S.nblk, grain > 0 ? grain : 1, sm_chunk, &S);
}

void tfw__softmax_rows_f32(const float *x, float *y, int64_t rows, int64_t n, bool log_space) {
  sm_run((const char *)x, (char *)y, rows, n, 1, false, log_space);
}

tfw_status tfw__infer_softmax(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  if (tfw__check_float(c->op->name, "t", x)) return TFW_EDTYPE;
  if (c->a.i[0] < INT32_MIN || c->a.i[0] > INT32_MAX)
    return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d "
                      "dimensions", c->op->name, (long long)c->a.i[0], x->ndim);
  if (tfw__wrap_dim(c->op->name, (int)c->a.i[0], x->ndim) < 0) return TFW_EINDEX;
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) out->shape[d] = x->shape[d];
  return TFW_OK;
}

tfw_status tfw__kernel_softmax(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x0 = c->in[0];
  tfw_tensor *y = out[0];
  int d = tfw__wrap_dim(c->op->name, (int)c->a.i[0], x0->ndim);
  if (d < 0) return TFW_EINDEX;
  if (tfw__numel(x0->ndim, x0->shape) == 0) return TFW_OK;
  tfw_dtype cdt = y->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  tfw_tensor *xc = tfw__as_contiguous(x0, cdt);
  if (!xc) return tfw_last_status();
  tfw_tensor *yc = y;
  if (cdt != y->dtype) {
    yc = tfw__tensor_new(c->op->name, cdt, y->ndim, y->shape);
    if (!yc) {
      tfw_release(xc);
      return tfw_last_status();
    }
  }
  int64_t A = 1, R = 1, B = 1;
  for (int k = 0; k < x0->ndim; k++) {
    if (k < d) A *= x0->shape[k];
    else if (k == d) R = x0->shape[k];
    else B *= x0->shape[k];
  }
  sm_run(tfw__data(xc), tfw__data(yc), A, R, B, cdt == TFW_DTYPE_F64,
         c->op->id == TFW__OP_log_softmax);
  tfw_status st = TFW_OK;
  if (yc != y) {
    st = tfw__copy_cast(y, yc);
    tfw_release(yc);
  }
  tfw_release(xc);
  return st;
}

int tfw__sample_softmax(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s0[3] = {3, 4, 5}, s1[2] = {6, 4}, s2[3] = {2, 3, 4};
  struct {
    tfw_dtype dt;
    int nd;
    const int64_t *shape;
    tfw__layout lay;
    int dim;
  } spec[4] = {
      {TFW_DTYPE_F32, 3, s0, TFW__LAYOUT_CONTIGUOUS, -1},
      {TFW_DTYPE_F64, 2, s1, TFW__LAYOUT_STRIDED, 0},
      {TFW_DTYPE_F32, 3, s2, TFW__LAYOUT_BROADCAST, 1},
      {TFW_DTYPE_F64, 3, s0, TFW__LAYOUT_CONTIGUOUS, 0},
  };
  int n = 0;
  for (int i = 0; i < 4 && n < cap; i++) {
    tfw_tensor *t = tfw__sample_tensor(spec[i].dt, spec[i].nd, spec[i].shape, -4.0, 4.0,
                                       (uint64_t)i + 31, spec[i].lay);
    if (!t) break;
    const tfw_tensor *in[1] = {t};
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, 1, in);
    c->a.i[0] = spec[i].dim;
  }
  return n;
}

static tfw_tensor *sm_op(tfw__op_id id, const tfw_tensor *t, int dim) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  c.a.i[0] = dim;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_softmax(const tfw_tensor *t, int dim) { return sm_op(TFW__OP_softmax, t, dim); }
tfw_tensor *tfw_log_softmax(const tfw_tensor *t, int dim) {
  return sm_op(TFW__OP_log_softmax, t, dim);
}
