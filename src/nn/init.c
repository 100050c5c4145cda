/* torch.nn.init: in-place initialisers. Random numbers come from the library's Philox
 * generator (tfw_rand / tfw_randn), so seeds reproduce; the distributions, bounds and fan
 * computations are PyTorch's, which is what "each layer's default init equals PyTorch's"
 * means (the bit streams of two different RNGs cannot be equal). */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "tenflower/nn.h"

/* Copies src into t without recording (t is usually a parameter that requires grad). */
static tfw_status assign(const char *op, tfw_tensor *t, tfw_tensor *src) {
  if (!src) return tfw_last_status();
  bool prev = tfw_set_grad_enabled(false);
  tfw_status st = tfw_copy_(t, src);
  tfw_set_grad_enabled(prev);
  tfw_release(src);
  return st;
}

static tfw_status check(const char *op, const tfw_tensor *t) {
  if (!t) return tfw__error(TFW_EVALUE, "%s: tensor is NULL", op);
  if (!tfw_dtype_is_floating(tfw_tensor_dtype(t)))
    return tfw__error(TFW_EDTYPE, "%s: needs a floating-point tensor, got %s", op,
                      tfw_dtype_name(tfw_tensor_dtype(t)));
  return TFW_OK;
}

tfw_status tfw_init_uniform_(tfw_tensor *t, double a, double b) {
  tfw_status st = check("init_uniform_", t);
  if (st) return st;
  if (!(a <= b)) return tfw__error(TFW_EVALUE, "init_uniform_: need a <= b, got %g and %g", a, b);
  tfw_tensor *u = tfw_rand(TFW_DTYPE_F64, tfw_tensor_ndim(t), tfw_tensor_shape(t));
  tfw_tensor *s = u ? tfw_mul_scalar(u, b - a) : NULL;
  tfw_tensor *r = s ? tfw_add_scalar(s, a) : NULL;
  tfw_release(u), tfw_release(s);
  return assign("init_uniform_", t, r);
}

tfw_status tfw_init_normal_(tfw_tensor *t, double mean, double std) {
  tfw_status st = check("init_normal_", t);
  if (st) return st;
  if (!(std >= 0)) return tfw__error(TFW_EVALUE, "init_normal_: std must be >= 0, got %g", std);
  tfw_tensor *n = tfw_randn(TFW_DTYPE_F64, tfw_tensor_ndim(t), tfw_tensor_shape(t));
  tfw_tensor *s = n ? tfw_mul_scalar(n, std) : NULL;
  tfw_tensor *r = s ? tfw_add_scalar(s, mean) : NULL;
  tfw_release(n), tfw_release(s);
  return assign("init_normal_", t, r);
}

tfw_status tfw_init_constant_(tfw_tensor *t, double value) {
  if (!t) return tfw__error(TFW_EVALUE, "init_constant_: tensor is NULL");
  bool prev = tfw_set_grad_enabled(false);
  tfw_status st = tfw_fill_(t, value);
  tfw_set_grad_enabled(prev);
  return st;
}
tfw_status tfw_init_zeros_(tfw_tensor *t) { return tfw_init_constant_(t, 0); }
tfw_status tfw_init_ones_(tfw_tensor *t) { return tfw_init_constant_(t, 1); }

double tfw_init_calculate_gain(const char *nl, double param) {
  if (!nl) return -1;
  if (!strcmp(nl, "linear") || !strcmp(nl, "identity") || !strncmp(nl, "conv", 4) ||
      !strcmp(nl, "sigmoid"))
    return 1.0;
  if (!strcmp(nl, "tanh")) return 5.0 / 3.0;
  if (!strcmp(nl, "relu")) return sqrt(2.0);
  if (!strcmp(nl, "leaky_relu")) return sqrt(2.0 / (1.0 + param * param));
  if (!strcmp(nl, "selu")) return 3.0 / 4.0;
  return -1;
}

tfw_status tfw_init_fans(const tfw_tensor *t, int64_t *fan_in, int64_t *fan_out) {
  if (!t) return tfw__error(TFW_EVALUE, "init_fans: tensor is NULL");
  int nd = tfw_tensor_ndim(t);
  if (nd < 2)
    return tfw__error(TFW_ESHAPE, "init_fans: fan in and fan out need at least 2 dimensions, got %d", nd);
  const int64_t *s = tfw_tensor_shape(t);
  int64_t rf = 1;
  for (int d = 2; d < nd; d++) rf *= s[d];
  if (fan_in) *fan_in = s[1] * rf;
  if (fan_out) *fan_out = s[0] * rf;
  return TFW_OK;
}

tfw_status tfw_init_xavier_uniform_(tfw_tensor *t, double gain) {
  int64_t fi, fo;
  tfw_status st = tfw_init_fans(t, &fi, &fo);
  if (st) return st;
  double a = gain * sqrt(6.0 / (double)(fi + fo > 0 ? fi + fo : 1));
  return tfw_init_uniform_(t, -a, a);
}

tfw_status tfw_init_xavier_normal_(tfw_tensor *t, double gain) {
  int64_t fi, fo;
  tfw_status st = tfw_init_fans(t, &fi, &fo);
  if (st) return st;
  return tfw_init_normal_(t, 0, gain * sqrt(2.0 / (double)(fi + fo > 0 ? fi + fo : 1)));
}

static tfw_status kaiming_std(const char *op, const tfw_tensor *t, double a, tfw_fan_mode mode,
                              const char *nl, double *std) {
  int64_t fi, fo;
  tfw_status st = tfw_init_fans(t, &fi, &fo);
  if (st) return st;
  double gain = tfw_init_calculate_gain(nl ? nl : "leaky_relu", a);
  if (gain < 0) return tfw__error(TFW_EVALUE, "%s: unknown nonlinearity '%s'", op, nl);
  int64_t fan = mode == TFW_FAN_IN ? fi : fo;
  if (fan <= 0) return tfw__error(TFW_EVALUE, "%s: initialising a zero-element tensor", op);
  *std = gain / sqrt((double)fan);
  return TFW_OK;
}

tfw_status tfw_init_kaiming_uniform_(tfw_tensor *t, double a, tfw_fan_mode mode, const char *nl) {
  double std = 0;
  tfw_status st = kaiming_std("init_kaiming_uniform_", t, a, mode, nl, &std);
  if (st) return st;
  double bound = sqrt(3.0) * std;
  return tfw_init_uniform_(t, -bound, bound);
}

tfw_status tfw_init_kaiming_normal_(tfw_tensor *t, double a, tfw_fan_mode mode, const char *nl) {
  double std = 0;
  tfw_status st = kaiming_std("init_kaiming_normal_", t, a, mode, nl, &std);
  if (st) return st;
  return tfw_init_normal_(t, 0, std);
}

/* Inverse of the standard normal CDF: a rational first guess refined by Newton on erfc. */
static double norm_ppf(double p) {
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  double q = p < 0.5 ? p : 1 - p;
  double t = sqrt(-2 * log(q));
  double x = t - (2.515517 + 0.802853 * t + 0.010328 * t * t) /
                     (1 + 1.432788 * t + 0.189269 * t * t + 0.001308 * t * t * t);
  if (p < 0.5) x = -x;
  for (int i = 0; i < 4; i++) { /* Newton: Phi(x) - p = 0 */
    double cdf = 0.5 * erfc(-x / sqrt(2.0));
    double pdf = exp(-0.5 * x * x) / sqrt(2 * M_PI);
    if (pdf < 1e-300) break;
    x -= (cdf - p) / pdf;
  }
  return x;
}

tfw_status tfw_init_trunc_normal_(tfw_tensor *t, double mean, double std, double a, double b) {
  tfw_status st = check("init_trunc_normal_", t);
  if (st) return st;
  if (!(std > 0) || !(a < b))
    return tfw__error(TFW_EVALUE, "init_trunc_normal_: need std > 0 and a < b, got std %g, [%g, %g]", std, a, b);
  /* PyTorch's method: uniform in [Phi(lo), Phi(hi)], then the inverse CDF. */
  double lo = 0.5 * erfc(-((a - mean) / std) / sqrt(2.0)), hi = 0.5 * erfc(-((b - mean) / std) / sqrt(2.0));
  tfw_tensor *u = tfw_rand(TFW_DTYPE_F64, tfw_tensor_ndim(t), tfw_tensor_shape(t));
  if (!u) return tfw_last_status();
  tfw_tensor *c = tfw_contiguous(u);
  tfw_release(u);
  if (!c) return tfw_last_status();
  double *v = tfw_tensor_data(c);
  for (int64_t i = 0; i < tfw_tensor_numel(c); i++) {
    double x = mean + std * norm_ppf(lo + (hi - lo) * v[i]);
    v[i] = x < a ? a : (x > b ? b : x);
  }
  return assign("init_trunc_normal_", t, c);
}

tfw_status tfw_init_orthogonal_(tfw_tensor *t, double gain) {
  tfw_status st = check("init_orthogonal_", t);
  if (st) return st;
  if (tfw_tensor_ndim(t) < 2)
    return tfw__error(TFW_ESHAPE, "init_orthogonal_: needs at least 2 dimensions, got %d", tfw_tensor_ndim(t));
  int64_t rows = tfw_tensor_shape(t)[0], cols = tfw_tensor_numel(t) / (rows ? rows : 1);
  if (rows == 0 || cols == 0) return TFW_OK;
  /* QR (modified Gram-Schmidt, in double) of a normal matrix with more rows than columns;
   * Q's columns made unique by the signs of R's diagonal, as PyTorch does. */
  bool tr = rows < cols;
  int64_t R = tr ? cols : rows, C = tr ? rows : cols;
  tfw_tensor *g = tfw_randn(TFW_DTYPE_F64, 2, (int64_t[]){R, C});
  tfw_tensor *q = g ? tfw_contiguous(g) : NULL;
  tfw_release(g);
  if (!q) return tfw_last_status();
  double *a = tfw_tensor_data(q);
  for (int64_t j = 0; j < C; j++) {
    for (int64_t k = 0; k < j; k++) {
      double dot = 0;
      for (int64_t i = 0; i < R; i++) dot += a[i * C + k] * a[i * C + j];
      for (int64_t i = 0; i < R; i++) a[i * C + j] -= dot * a[i * C + k];
    }
    double nrm = 0;
    for (int64_t i = 0; i < R; i++) nrm += a[i * C + j] * a[i * C + j];
    nrm = sqrt(nrm);
    /* R's diagonal is +nrm, so Q's column keeps its sign */
    for (int64_t i = 0; i < R; i++) a[i * C + j] = nrm > 0 ? gain * a[i * C + j] / nrm : 0;
  }
  tfw_tensor *m = tr ? tfw_transpose(q, 0, 1) : tfw_retain(q);
  tfw_release(q);
  tfw_tensor *shaped = m ? tfw_reshape(m, tfw_tensor_ndim(t), tfw_tensor_shape(t)) : NULL;
  tfw_release(m);
  return assign("init_orthogonal_", t, shaped);
}
