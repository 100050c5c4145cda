/* Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
 *
 * Norms accumulate in double over fixed chunks combined in chunk order, so the total is the
 * same for any thread count. Gradients are changed in place when the parameter owns them
 * exclusively; a gradient that may alias other tensors (backward can hand over a grad_output
 * or an expanded view as a leaf's gradient) is replaced by a scaled copy instead. */
#include <math.h>

#include "autograd/autograd.h"
#include "optim/optim_internal.h"

/* The gradient of p as a contiguous tensor that only p references (made so if needed);
 * NULL when p has none. *err set on failure. */
static tfw_tensor *owned_grad(tfw_tensor *p, tfw_status *err) {
  tfw_tensor *g = tfw__param_grad(p);
  if (!g) return NULL;
  if (tfw__is_contiguous(g) && atomic_load(&g->refcount) == 1 &&
      atomic_load(&g->storage->refcount) == 1 && g->storage->owned)
    return g;
  tfw_tensor *c = tfw_clone(g);
  if (!c) {
    *err = tfw_last_status();
    return NULL;
  }
  tfw__param_set_grad(p, c);
  tfw_release(c);
  return c;
}

static tfw_status check_params(const char *op, int n, tfw_tensor *const *params) {
  if (n < 0 || (n > 0 && !params)) return tfw__error(TFW_EVALUE, "%s: invalid parameter list (n = %d)", op, n);
  for (int i = 0; i < n; i++) {
    if (!params[i]) return tfw__error(TFW_EVALUE, "%s: parameter %d is NULL", op, i);
    const tfw_tensor *g = tfw__param_grad(params[i]);
    if (g && g->dtype != TFW_DTYPE_F32 && g->dtype != TFW_DTYPE_F64)
      return tfw__error(TFW_EDTYPE, "%s: the gradient of parameter %d has dtype %s (float32 and "
                                    "float64 are supported)", op, i, tfw_dtype_name(g->dtype));
  }
  return TFW_OK;
}

typedef struct norm_job {
  const char *data;
  bool f32;
  int64_t n, chunks;
  double p;
  double *partial;
} norm_job;

#define NORM_GRAIN 32768

static TFW_CLONES void norm_chunk(int64_t cb, int64_t ce, void *ctx) {
  norm_job *j = ctx;
  for (int64_t c = cb; c < ce; c++) {
    int64_t b = c * j->n / j->chunks, e = (c + 1) * j->n / j->chunks;
    double acc = 0;
    if (isinf(j->p)) {
      for (int64_t i = b; i < e; i++) {
        double v = fabs(j->f32 ? (double)((const float *)j->data)[i] : ((const double *)j->data)[i]);
        acc = (v > acc || isnan(v)) ? v : acc;
      }
    } else if (j->p == 2) {
      if (j->f32)
        for (int64_t i = b; i < e; i++) acc += (double)((const float *)j->data)[i] * ((const float *)j->data)[i];
      else
        for (int64_t i = b; i < e; i++) acc += ((const double *)j->data)[i] * ((const double *)j->data)[i];
    } else {
      for (int64_t i = b; i < e; i++)
        acc += pow(fabs(j->f32 ? (double)((const float *)j->data)[i] : ((const double *)j->data)[i]), j->p);
    }
    j->partial[c] = acc;
  }
}

/* sum |g|^p (or max |g| for p = inf) of one contiguous gradient. */
static tfw_status grad_norm_pow(const tfw_tensor *g, double p, double *out) {
  tfw_tensor *c = tfw__as_contiguous(g, g->dtype);
  if (!c) return tfw_last_status();
  norm_job j = {tfw__data(c), c->dtype == TFW_DTYPE_F32, tfw_tensor_numel(c), 0, p, NULL};
  j.chunks = tfw__parallel_chunks(j.n, NORM_GRAIN);
  double acc = 0;
  if (j.chunks > 0) {
    j.partial = tfw__calloc((size_t)j.chunks, sizeof(double));
    if (!j.partial) {
      tfw_release(c);
      return tfw__error(TFW_ENOMEM, "clip_grad_norm_: out of memory");
    }
    tfw__parallel_for(j.chunks, 1, norm_chunk, &j);
    for (int64_t k = 0; k < j.chunks; k++) {
      if (isinf(p)) acc = (j.partial[k] > acc || isnan(j.partial[k])) ? j.partial[k] : acc;
      else acc += j.partial[k];
    }
    tfw__free(j.partial);
  }
  tfw_release(c);
  *out = acc;
  return TFW_OK;
}

static void scale_grad(tfw_tensor *g, double coef) {
  int64_t n = tfw_tensor_numel(g);
  if (g->dtype == TFW_DTYPE_F32) {
    float *d = (float *)tfw__data(g), c = (float)coef;
    for (int64_t i = 0; i < n; i++) d[i] *= c;
  } else {
    double *d = (double *)tfw__data(g);
    for (int64_t i = 0; i < n; i++) d[i] *= coef;
  }
  tfw__bump_version(g);
}

tfw_status tfw_clip_grad_norm_(int n, tfw_tensor *const *params, double max_norm, double norm_type,
                               bool error_if_nonfinite, double *total_norm) {
  const char *op = "clip_grad_norm_";
  tfw_status st = check_params(op, n, params);
  if (st) return st;
  if (!(norm_type > 0))
    return tfw__error(TFW_EVALUE, "%s: norm_type must be > 0 (or INFINITY), got %g", op, norm_type);
  if (isnan(max_norm) || max_norm < 0)
    return tfw__error(TFW_EVALUE, "%s: max_norm must be >= 0, got %g", op, max_norm);
  /* per-parameter norms, then the norm of the norms (PyTorch's order) */
  double total = 0;
  bool any = false;
  for (int i = 0; i < n; i++) {
    const tfw_tensor *g = tfw__param_grad(params[i]);
    if (!g) continue;
    double s = 0;
    st = grad_norm_pow(g, norm_type, &s);
    if (st) return st;
    any = true;
    if (isinf(norm_type)) {
      total = (s > total || isnan(s)) ? s : total;
    } else {
      double norm_i = norm_type == 2 ? sqrt(s) : pow(s, 1.0 / norm_type);
      total += norm_type == 2 ? norm_i * norm_i : pow(norm_i, norm_type);
    }
  }
  if (any && !isinf(norm_type)) total = norm_type == 2 ? sqrt(total) : pow(total, 1.0 / norm_type);
  if (total_norm) *total_norm = total;
  if (!any) return TFW_OK;
  if (error_if_nonfinite && !isfinite(total))
    return tfw__error(TFW_EVALUE, "%s: the total norm of order %g for gradients is non-finite "
                                  "(%g), so it cannot be clipped", op, norm_type, total);
  double coef = max_norm / (total + 1e-6);
  if (!(coef < 1.0)) return TFW_OK; /* PyTorch multiplies by min(coef, 1): 1 changes nothing */
  for (int i = 0; i < n; i++) {
    tfw_tensor *g = owned_grad(params[i], &st);
    if (st) return st;
    if (g) scale_grad(g, coef);
  }
  return TFW_OK;
}

tfw_status tfw_clip_grad_value_(int n, tfw_tensor *const *params, double clip_value) {
  const char *op = "clip_grad_value_";
  tfw_status st = check_params(op, n, params);
  if (st) return st;
  if (!(clip_value >= 0))
    return tfw__error(TFW_EVALUE, "%s: clip_value must be >= 0, got %g", op, clip_value);
  for (int i = 0; i < n; i++) {
    tfw_tensor *g = owned_grad(params[i], &st);
    if (st) return st;
    if (!g) continue;
    int64_t m = tfw_tensor_numel(g);
    if (g->dtype == TFW_DTYPE_F32) {
      float *d = (float *)tfw__data(g), c = (float)clip_value;
      for (int64_t k = 0; k < m; k++) d[k] = d[k] < -c ? -c : (d[k] > c ? c : d[k]);
    } else {
      double *d = (double *)tfw__data(g), c = clip_value;
      for (int64_t k = 0; k < m; k++) d[k] = d[k] < -c ? -c : (d[k] > c ? c : d[k]);
    }
    tfw__bump_version(g);
  }
  return TFW_OK;
}
