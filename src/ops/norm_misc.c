/* embedding and dropout (entries in norm.def), and the composites group_norm and batch_norm.
 *
 * embedding: indices are validated first (the first bad one is reported), then rows of the
 *   (contiguous) weight are copied with memcpy, output rows in parallel. max_norm renormalises
 *   the looked-up rows of weight in place before the lookup, like PyTorch's embedding_renorm_
 *   (scale max_norm / (norm + 1e-7) where norm > max_norm; each distinct row once), outside
 *   autograd; the write bumps weight's version counter.
 * dropout: the wrapper reserves ceil(numel / 4) Philox blocks and stores (seed, first counter)
 *   in the call, so the kernel is a pure function of its attributes: backward (the same op on
 *   the gradient) and recomputation (checkpointing) replay the mask exactly, and the mask of
 *   element i (row-major) is tfw_rand's f32 value i from the same generator state compared
 *   with 1 - p (tfw_bernoulli's rule). p = 0 or eval returns the input itself (retained).
 * group_norm: x [N, C, *] reshaped to [N, G, C/G * S], layer_norm over the last dim (the fused
 *   kernel), reshaped back, then * weight + bias per channel.
 * batch_norm: mean/var over every dim but 1 (registered reductions), so backward and double
 *   backward come from the composite; running stats are updated in place outside autograd
 *   with the unbiased variance, as PyTorch. */
#include <math.h>

#include "core/iter.h"
#include "core/rng.h"
#include "ops/registry.h"
#include "ops/samples.h"
#include "tenflower/nn_functional_norm.h"

/* ---- embedding ---------------------------------------------------------------------------- */

static bool is_index_dtype(tfw_dtype dt) { return dt == TFW_DTYPE_I64 || dt == TFW_DTYPE_I32; }

tfw_status tfw__infer_embedding(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *w = c->in[0], *idx = c->in[1];
  if (tfw__check_float("embedding", "weight", w)) return TFW_EDTYPE;
  if (!is_index_dtype(idx->dtype))
    return tfw__error(TFW_EDTYPE, "embedding: indices must be int64 or int32, got %s",
                      tfw_dtype_name(idx->dtype));
  char b1[TFW__SHAPE_BUF];
  if (w->ndim != 2)
    return tfw__error(TFW_ESHAPE, "embedding: weight must be 2-d [num_embeddings, dim], got %s",
                      tfw__shape_str(b1, sizeof b1, w->ndim, w->shape));
  if (idx->ndim + 1 > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "embedding: indices have %d dims; at most %d", idx->ndim,
                      TFW_MAX_DIMS - 1);
  if (c->a.b[0] && (c->a.i[0] < 0 || c->a.i[0] >= w->shape[0]))
    return tfw__error(TFW_EVALUE, "embedding: padding_idx %lld out of range for %lld embeddings",
                      (long long)c->a.i[0], (long long)w->shape[0]);
  out->dtype = w->dtype;
  out->ndim = idx->ndim + 1;
  for (int d = 0; d < idx->ndim; d++) out->shape[d] = idx->shape[d];
  out->shape[idx->ndim] = w->shape[1];
  return TFW_OK;
}

typedef struct emb_ctx {
  const char *w;
  const int64_t *idx;
  char *out;
  size_t row_bytes;
} emb_ctx;

static void emb_rows(int64_t b, int64_t e, void *vp) {
  const emb_ctx *E = vp;
  for (int64_t i = b; i < e; i++)
    memcpy(E->out + (size_t)i * E->row_bytes, E->w + (size_t)E->idx[i] * E->row_bytes, E->row_bytes);
}

/* indices as a contiguous int64 tensor, every value checked against [0, V) */
static tfw_tensor *checked_indices(const tfw_tensor *idx, int64_t V) {
  tfw_tensor *ic = tfw__as_contiguous(idx, TFW_DTYPE_I64);
  if (!ic) return NULL;
  const int64_t *p = (const int64_t *)tfw__data(ic);
  int64_t n = tfw__numel(ic->ndim, ic->shape);
  for (int64_t i = 0; i < n; i++)
    if (p[i] < 0 || p[i] >= V) {
      tfw__error(TFW_EINDEX, "embedding: index %lld out of range for %lld embeddings (at flat "
                 "position %lld)", (long long)p[i], (long long)V, (long long)i);
      tfw_release(ic);
      return NULL;
    }
  return ic;
}

tfw_status tfw__kernel_embedding(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *w0 = c->in[0];
  tfw_tensor *ic = checked_indices(c->in[1], w0->shape[0]);
  if (!ic) return tfw_last_status();
  int64_t n = tfw__numel(ic->ndim, ic->shape), D = w0->shape[1];
  tfw_tensor *w = n > 0 && D > 0 ? tfw__as_contiguous(w0, w0->dtype) : NULL;
  if (n > 0 && D > 0 && !w) {
    tfw_release(ic);
    return tfw_last_status();
  }
  if (w) {
    emb_ctx E = {tfw__data(w), (const int64_t *)tfw__data(ic), tfw__data(out[0]),
                 (size_t)D * tfw_dtype_size(w->dtype)};
    int64_t grain = TFW__GRAIN_EW / D > 0 ? TFW__GRAIN_EW / D : 1;
    tfw__parallel_for(n, grain, emb_rows, &E);
  }
  tfw_release(w), tfw_release(ic);
  return TFW_OK;
}

int tfw__sample_embedding(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t ws[2] = {7, 4}, is0[2] = {2, 3}, is1[1] = {5};
  int n = 0;
  for (int s = 0; s < 3 && n < cap; s++) {
    tfw_dtype dt = s == 1 ? TFW_DTYPE_F32 : TFW_DTYPE_F64;
    tfw_tensor *w = tfw__sample_tensor(dt, 2, ws, -1, 1, 40 + (uint64_t)s,
                                       s == 2 ? TFW__LAYOUT_STRIDED : TFW__LAYOUT_CONTIGUOUS);
    tfw_tensor *i = tfw__sample_tensor(s == 1 ? TFW_DTYPE_I32 : TFW_DTYPE_I64, s == 1 ? 1 : 2,
                                       s == 1 ? is1 : is0, 0, s == 2 ? 6 : 7, 50 + (uint64_t)s,
                                       TFW__LAYOUT_CONTIGUOUS);
    const tfw_tensor *in[2] = {w, i};
    tfw__call_init(&calls[n], op->id, 2, in);
    calls[n].a.b[0] = s == 2;
    calls[n].a.i[0] = 6; /* not among the indices of sample 2: gradcheck stays exact */
    n++;
  }
  return n;
}

/* Renormalises the rows of w named by idx (contiguous int64, checked) to norm <= max_norm. */
static tfw_status renorm_rows(tfw_tensor *w, const tfw_tensor *ic, double max_norm, double p) {
  int64_t n = tfw__numel(ic->ndim, ic->shape), V = w->shape[0], D = w->shape[1];
  bool *seen = tfw__calloc((size_t)(V > 0 ? V : 1), sizeof(bool));
  if (!seen) return tfw__error(TFW_ENOMEM, "embedding: out of memory for max_norm");
  const int64_t *ix = (const int64_t *)tfw__data(ic);
  size_t es = tfw_dtype_size(w->dtype);
  char *base = tfw__data(w);
  bool wrote = false;
  for (int64_t k = 0; k < n; k++) {
    int64_t r = ix[k];
    if (seen[r]) continue;
    seen[r] = true;
    double acc = 0;
    for (int64_t j = 0; j < D; j++) {
      double v = fabs(tfw__load_f64(base + (r * w->strides[0] + j * w->strides[1]) * (int64_t)es, w->dtype));
      if (isinf(p)) acc = v > acc ? v : acc;
      else acc += pow(v, p);
    }
    double norm = isinf(p) ? acc : pow(acc, 1.0 / p);
    if (norm > max_norm) {
      double scale = max_norm / (norm + 1e-7);
      for (int64_t j = 0; j < D; j++) {
        char *e = base + (r * w->strides[0] + j * w->strides[1]) * (int64_t)es;
        tfw__store_f64(e, w->dtype, tfw__load_f64(e, w->dtype) * scale);
      }
      wrote = true;
    }
  }
  tfw__free(seen);
  if (wrote) atomic_fetch_add(&w->storage->version, 1);
  return TFW_OK;
}

tfw_tensor *tfw_embedding(const tfw_tensor *input, tfw_tensor *weight, int64_t padding_idx,
                          double max_norm, double norm_type) {
  if (tfw__check_tensor("embedding", "input", input) ||
      tfw__check_tensor("embedding", "weight", weight))
    return NULL;
  if (weight->ndim != 2) {
    char b[TFW__SHAPE_BUF];
    tfw__error(TFW_ESHAPE, "embedding: weight must be 2-d [num_embeddings, dim], got %s",
               tfw__shape_str(b, sizeof b, weight->ndim, weight->shape));
    return NULL;
  }
  int64_t V = weight->shape[0];
  bool has_pad = padding_idx != TFW_EMBEDDING_NO_PADDING;
  if (has_pad && (padding_idx < -V || padding_idx >= V)) {
    tfw__error(TFW_EVALUE, "embedding: padding_idx %lld must be within [%lld, %lld)",
               (long long)padding_idx, (long long)-V, (long long)V);
    return NULL;
  }
  if (max_norm != 0) {
    if (!(max_norm > 0) || !(norm_type > 0)) {
      tfw__error(TFW_EVALUE, "embedding: max_norm (%g) and norm_type (%g) must be > 0", max_norm,
                 norm_type);
      return NULL;
    }
    if (!is_index_dtype(input->dtype)) {
      tfw__error(TFW_EDTYPE, "embedding: indices must be int64 or int32, got %s",
                 tfw_dtype_name(input->dtype));
      return NULL;
    }
    if (tfw__check_float("embedding", "weight", weight)) return NULL;
    tfw_tensor *ic = checked_indices(input, V);
    if (!ic) return NULL;
    tfw_status st = renorm_rows(weight, ic, max_norm, norm_type);
    tfw_release(ic);
    if (st) return NULL;
  }
  const tfw_tensor *in[2] = {weight, input};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_embedding, 2, in);
  c.a.b[0] = has_pad;
  c.a.i[0] = has_pad && padding_idx < 0 ? padding_idx + V : has_pad ? padding_idx : 0;
  return tfw__op_run(&c);
}

/* ---- dropout ------------------------------------------------------------------------------ */

tfw_status tfw__infer_dropout(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  if (tfw__check_float("dropout", "input", x)) return TFW_EDTYPE;
  double p = c->a.f[0];
  if (!(p >= 0 && p <= 1))
    return tfw__error(TFW_EVALUE, "dropout: p must be in [0, 1], got %g", p);
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) out->shape[d] = x->shape[d];
  return TFW_OK;
}

typedef struct drop_ctx {
  const char *x;
  char *y;
  int64_t n;
  uint64_t seed, first;
  float keep; /* 1 - p in f32: the bernoulli threshold */
  double scale;
  bool f64;
} drop_ctx;

/* y = keep ? x * scale : 0 over n elements, w the 32-bit draws (one per element). */
static TFW_CLONES void drop_f32(const float *x, float *y, const uint32_t *w, int64_t n, float keep,
                                float scale) {
  for (int64_t i = 0; i < n; i++)
    y[i] = (float)(w[i] >> 8) * 0x1p-24f < keep ? x[i] * scale : 0.0f; /* tfw__u32_to_unit_f32 */
}

/* Blocks [b0, b1) of 4 elements; the draws are made DROP_CHUNK blocks at a time
 * (tfw__philox_blocks, vectorised) into a stack buffer, then applied in one vector loop. */
#define DROP_CHUNK 256
static void drop_blocks(int64_t b0, int64_t b1, void *vp) {
  const drop_ctx *D = vp;
  uint32_t w[4 * DROP_CHUNK];
  float sf = (float)D->scale;
  for (int64_t c0 = b0; c0 < b1; c0 += DROP_CHUNK) {
    int64_t nb = b1 - c0 < DROP_CHUNK ? b1 - c0 : DROP_CHUNK;
    tfw__philox_blocks(D->seed, D->first + (uint64_t)c0, nb, w);
    int64_t i0 = c0 * 4, m = D->n - i0 < 4 * nb ? D->n - i0 : 4 * nb;
    if (!D->f64) {
      drop_f32((const float *)D->x + i0, (float *)D->y + i0, w, m, D->keep, sf);
      continue;
    }
    const double *x = (const double *)D->x + i0;
    double *y = (double *)D->y + i0;
    for (int64_t j = 0; j < m; j++) y[j] = tfw__u32_to_unit_f32(w[j]) < D->keep ? x[j] * D->scale : 0.0;
  }
}

tfw_status tfw__kernel_dropout(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x0 = c->in[0];
  int64_t n = tfw__numel(x0->ndim, x0->shape);
  if (n == 0) return TFW_OK;
  tfw_dtype cdt = x0->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  tfw_tensor *x = tfw__as_contiguous(x0, cdt);
  tfw_tensor *y = !x ? NULL : out[0]->dtype == cdt ? tfw_retain(out[0])
                            : tfw__tensor_new("dropout", cdt, out[0]->ndim, out[0]->shape);
  if (!y) {
    tfw_release(x);
    return tfw_last_status();
  }
  double p = c->a.f[0];
  drop_ctx D = {tfw__data(x), tfw__data(y), n, (uint64_t)c->a.i[0], (uint64_t)c->a.i[1],
                (float)(1.0 - p), p < 1 ? 1.0 / (1.0 - p) : 0.0, cdt == TFW_DTYPE_F64};
  tfw__parallel_for((n + 3) / 4, 4096, drop_blocks, &D);
  tfw_status st = y != out[0] ? tfw__copy_cast(out[0], y) : TFW_OK;
  tfw_release(x), tfw_release(y);
  return st;
}

int tfw__sample_dropout(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s0[2] = {5, 7}, s1[3] = {2, 3, 3};
  const double ps[3] = {0.3, 0.5, 0.9};
  int n = 0;
  for (int s = 0; s < 3 && n < cap; s++) {
    tfw_tensor *x = tfw__sample_tensor(s == 2 ? TFW_DTYPE_F16 : s ? TFW_DTYPE_F64 : TFW_DTYPE_F32,
                                       s ? 3 : 2, s ? s1 : s0, -2, 2, 60 + (uint64_t)s,
                                       s == 1 ? TFW__LAYOUT_STRIDED : TFW__LAYOUT_CONTIGUOUS);
    const tfw_tensor *in[1] = {x};
    tfw__call_init(&calls[n], op->id, 1, in);
    calls[n].a.f[0] = ps[s];
    calls[n].a.i[0] = 1234 + s;
    calls[n].a.i[1] = 77 * s;
    n++;
  }
  return n;
}

tfw_tensor *tfw_dropout(const tfw_tensor *input, double p, bool training) {
  if (tfw__check_tensor("dropout", "input", input)) return NULL;
  if (!(p >= 0 && p <= 1)) {
    tfw__error(TFW_EVALUE, "dropout: p must be in [0, 1], got %g", p);
    return NULL;
  }
  if (tfw__check_float("dropout", "input", input)) return NULL;
  if (!training || p == 0) return tfw_retain((tfw_tensor *)input);
  int64_t n = tfw__numel(input->ndim, input->shape);
  uint64_t seed;
  uint64_t first = tfw__rng_reserve((uint64_t)((n + 3) / 4), &seed);
  tfw__call c;
  tfw__call_init(&c, TFW__OP_dropout, 1, &input);
  c.a.f[0] = p;
  c.a.i[0] = (int64_t)seed;
  c.a.i[1] = (int64_t)first;
  return tfw__op_run(&c);
}

/* ---- group_norm and batch_norm (composites) ------------------------------------------------ */

/* p ([C]) viewed as [1, C, 1, ...] for an x of ndim dims */
static tfw_tensor *chan_view(const tfw_tensor *p, int ndim) {
  int64_t s[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) s[d] = d == 1 ? p->shape[0] : 1;
  return tfw_reshape(p, ndim, s);
}

/* y * w + b per channel (either may be NULL); consumes y */
static tfw_tensor *affine(tfw_tensor *y, const tfw_tensor *w, const tfw_tensor *b) {
  for (int k = 0; k < 2 && y; k++) {
    const tfw_tensor *p = k ? b : w;
    if (!p) continue;
    tfw_tensor *v = chan_view(p, y->ndim);
    tfw_tensor *r = !v ? NULL : k ? tfw_add(y, v) : tfw_mul(y, v);
    tfw_release(v), tfw_release(y);
    y = r;
  }
  return y;
}

static tfw_status check_chan(const char *op, const char *arg, const tfw_tensor *p, int64_t C) {
  if (!p) return TFW_OK;
  if (p->ndim != 1 || p->shape[0] != C) {
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: %s has shape %s, expected [%lld] (the channels)", op, arg,
                      tfw__shape_str(b, sizeof b, p->ndim, p->shape), (long long)C);
  }
  return TFW_OK;
}

tfw_tensor *tfw_group_norm(const tfw_tensor *input, int64_t num_groups, const tfw_tensor *weight,
                           const tfw_tensor *bias, double eps) {
  const char *op = "group_norm";
  if (tfw__check_tensor(op, "input", input)) return NULL;
  char b[TFW__SHAPE_BUF];
  if (input->ndim < 2) {
    tfw__error(TFW_ESHAPE, "group_norm: input must be [N, C, *], got %s",
               tfw__shape_str(b, sizeof b, input->ndim, input->shape));
    return NULL;
  }
  int64_t N = input->shape[0], C = input->shape[1];
  if (num_groups <= 0 || C % num_groups != 0) {
    tfw__error(TFW_EVALUE, "group_norm: num_groups (%lld) must be positive and divide the "
               "number of channels (%lld)", (long long)num_groups, (long long)C);
    return NULL;
  }
  if (check_chan(op, "weight", weight, C) || check_chan(op, "bias", bias, C)) return NULL;
  int64_t L = (C / num_groups) * tfw__numel(input->ndim - 2, input->shape + 2);
  int64_t gs[3] = {N, num_groups, L};
  tfw_tensor *xg = tfw_reshape(input, 3, gs);
  tfw_tensor *yg = xg ? tfw_layer_norm(xg, 1, &L, NULL, NULL, eps) : NULL;
  tfw_tensor *y = yg ? tfw_reshape(yg, input->ndim, input->shape) : NULL;
  tfw_release(xg), tfw_release(yg);
  return affine(y, weight, bias);
}

tfw_tensor *tfw_batch_norm(const tfw_tensor *input, tfw_tensor *running_mean,
                           tfw_tensor *running_var, const tfw_tensor *weight,
                           const tfw_tensor *bias, bool training, double momentum, double eps) {
  const char *op = "batch_norm";
  if (tfw__check_tensor(op, "input", input)) return NULL;
  char b[TFW__SHAPE_BUF];
  if (input->ndim < 2) {
    tfw__error(TFW_ESHAPE, "batch_norm: input must be [N, C, *], got %s",
               tfw__shape_str(b, sizeof b, input->ndim, input->shape));
    return NULL;
  }
  if (tfw__check_float(op, "input", input)) return NULL;
  int64_t C = input->shape[1];
  if (check_chan(op, "weight", weight, C) || check_chan(op, "bias", bias, C) ||
      check_chan(op, "running_mean", running_mean, C) ||
      check_chan(op, "running_var", running_var, C))
    return NULL;
  if (!(eps >= 0) || !isfinite(momentum)) {
    tfw__error(TFW_EVALUE, "batch_norm: eps (%g) must be >= 0 and momentum (%g) finite", eps,
               momentum);
    return NULL;
  }
  if ((running_mean == NULL) != (running_var == NULL)) {
    tfw__error(TFW_EVALUE, "batch_norm: running_mean and running_var must both be given or "
               "both be NULL");
    return NULL;
  }
  bool use_batch = training || !running_mean;
  int64_t count = C > 0 ? tfw__numel(input->ndim, input->shape) / C : 0;
  if (use_batch && count <= 1) {
    tfw__error(TFW_EVALUE, "batch_norm: expected more than 1 value per channel when training, "
               "got input of shape %s", tfw__shape_str(b, sizeof b, input->ndim, input->shape));
    return NULL;
  }
  int dims[TFW_MAX_DIMS], nd = 0;
  for (int d = 0; d < input->ndim; d++)
    if (d != 1) dims[nd++] = d;
  tfw_tensor *mean = NULL, *var = NULL, *y = NULL;
  if (use_batch) {
    mean = tfw_mean(input, nd, dims, true);
    var = mean ? tfw_var(input, nd, dims, 0, true) : NULL;
  } else {
    mean = chan_view(running_mean, input->ndim);
    var = mean ? chan_view(running_var, input->ndim) : NULL;
  }
  if (!var) goto done;
  if (training && running_mean) { /* running stats: outside autograd, unbiased variance */
    bool prev = tfw_set_grad_enabled(false);
    tfw_tensor *m1 = tfw_reshape(mean, 1, &C), *v1 = m1 ? tfw_reshape(var, 1, &C) : NULL;
    tfw_tensor *vu = v1 ? tfw_mul_scalar(v1, (double)count / (double)(count - 1)) : NULL;
    tfw_status st = vu ? TFW_OK : tfw_last_status();
    tfw_tensor *stats[2] = {m1, vu}, *run[2] = {running_mean, running_var};
    for (int k = 0; k < 2 && !st; k++) {
      tfw_tensor *a = tfw_mul_scalar(run[k], 1.0 - momentum);
      tfw_tensor *s = a ? tfw_mul_scalar(stats[k], momentum) : NULL;
      tfw_tensor *r = s ? tfw_add(a, s) : NULL;
      st = r ? tfw_copy_(run[k], r) : tfw_last_status();
      tfw_release(a), tfw_release(s), tfw_release(r);
    }
    tfw_release(m1), tfw_release(v1), tfw_release(vu);
    tfw_set_grad_enabled(prev);
    if (st) goto done;
  }
  {
    tfw_tensor *ve = tfw_add_scalar(var, eps);
    tfw_tensor *r = ve ? tfw_rsqrt(ve) : NULL;
    tfw_tensor *xc = r ? tfw_sub(input, mean) : NULL;
    y = xc ? tfw_mul(xc, r) : NULL;
    tfw_release(ve), tfw_release(r), tfw_release(xc);
  }
  y = affine(y, weight, bias);
done:
  tfw_release(mean), tfw_release(var);
  return y;
}
