/* Normalisation, embedding and dropout layers over the functional ops of
 * include/tenflower/nn_functional_norm.h, with PyTorch's parameter/buffer names and defaults. */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "nn/nn_internal.h"
#include "tenflower/nn.h"
#include "tenflower/nn_functional_norm.h"

#define P(m, name) tfw_module_get_parameter(m, name)
#define B(m, name) tfw_module_get_buffer(m, name)

static tfw_status one_in_one_out(const tfw_module *m, int n_in, int n_out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "%s: takes 1 input and gives 1 output", tfw_module_type(m));
  return TFW_OK;
}

/* Registers a parameter of the given shape filled with value; the module keeps it. */
static tfw_status param(tfw_module *m, const char *name, int nd, const int64_t *shape, double value) {
  tfw_tensor *t = tfw_full(TFW_DTYPE_F32, nd, shape, value);
  if (!t) return tfw_last_status();
  tfw_status st = tfw_module_register_parameter(m, name, t);
  tfw_release(t);
  return st;
}

static tfw_status buffer(tfw_module *m, const char *name, tfw_dtype dt, int nd, const int64_t *shape,
                         double value) {
  tfw_tensor *t = tfw_full(dt, nd, shape, value);
  if (!t) return tfw_last_status();
  tfw_status st = tfw_module_register_buffer(m, name, t, true);
  tfw_release(t);
  return st;
}

static tfw_module *finish(tfw_module *m, tfw_status st) {
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

/* ---- LayerNorm / RMSNorm ---------------------------------------------------------------- */

typedef struct {
  int n;
  int64_t shape[TFW_MAX_DIMS];
  double eps;
} ln_impl;

static tfw_status ln_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_status st = one_in_one_out(m, n_in, n_out);
  if (st) return st;
  ln_impl *s = tfw_module_impl(m);
  if (!strcmp(tfw_module_type(m), "RMSNorm"))
    out[0] = tfw_rms_norm(in[0], s->n, s->shape, P(m, "weight"), s->eps);
  else
    out[0] = tfw_layer_norm(in[0], s->n, s->shape, P(m, "weight"), P(m, "bias"), s->eps);
  return out[0] ? TFW_OK : tfw_last_status();
}

static const tfw_module_vtable LAYERNORM = {"LayerNorm", ln_forward, tfw__module_free_impl};
static const tfw_module_vtable RMSNORM = {"RMSNorm", ln_forward, tfw__module_free_impl};

static tfw_module *norm_new(const tfw_module_vtable *vt, int n, const int64_t *shape, double eps,
                            bool affine, bool bias) {
  if (n < 1 || n > TFW_MAX_DIMS || !shape) {
    tfw__error(TFW_EVALUE, "%s: normalized_shape must have 1 to %d dims, got %d", vt->type_name,
               TFW_MAX_DIMS, n);
    return NULL;
  }
  ln_impl *s;
  tfw_module *m = tfw__module_new_impl(vt, sizeof *s, (void **)&s);
  if (!m) return NULL;
  s->n = n;
  memcpy(s->shape, shape, sizeof(int64_t) * (size_t)n);
  s->eps = eps;
  tfw_status st = TFW_OK;
  if (affine) st = param(m, "weight", n, shape, 1.0);
  if (!st && affine && bias) st = param(m, "bias", n, shape, 0.0);
  return finish(m, st);
}

tfw_module *tfw_layer_norm_new(int n, const int64_t *normalized_shape, double eps, bool elementwise_affine) {
  return norm_new(&LAYERNORM, n, normalized_shape, eps, elementwise_affine, true);
}
tfw_module *tfw_rms_norm_new(int n, const int64_t *normalized_shape, double eps, bool elementwise_affine) {
  return norm_new(&RMSNORM, n, normalized_shape, eps, elementwise_affine, false);
}

/* ---- GroupNorm -------------------------------------------------------------------------------- */

typedef struct {
  int64_t groups;
  double eps;
} gn_impl;

static tfw_status gn_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_status st = one_in_one_out(m, n_in, n_out);
  if (st) return st;
  gn_impl *s = tfw_module_impl(m);
  out[0] = tfw_group_norm(in[0], s->groups, P(m, "weight"), P(m, "bias"), s->eps);
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable GROUPNORM = {"GroupNorm", gn_forward, tfw__module_free_impl};

tfw_module *tfw_group_norm_new(int64_t num_groups, int64_t num_channels, double eps, bool affine) {
  if (num_groups <= 0 || num_channels < 0 || num_channels % num_groups) {
    tfw__error(TFW_EVALUE, "GroupNorm: num_channels (%lld) must be divisible by num_groups (%lld > 0)",
               (long long)num_channels, (long long)num_groups);
    return NULL;
  }
  gn_impl *s;
  tfw_module *m = tfw__module_new_impl(&GROUPNORM, sizeof *s, (void **)&s);
  if (!m) return NULL;
  *s = (gn_impl){num_groups, eps};
  tfw_status st = TFW_OK;
  if (affine) st = param(m, "weight", 1, &num_channels, 1.0);
  if (!st && affine) st = param(m, "bias", 1, &num_channels, 0.0);
  return finish(m, st);
}

/* ---- BatchNorm ------------------------------------------------------------------------------- */

typedef struct {
  int want_dims; /* 1d: 2 or 3, 2d: 4 */
  double eps, momentum;
  bool track;
} bn_impl;

static tfw_status bn_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_status st = one_in_one_out(m, n_in, n_out);
  if (st) return st;
  bn_impl *s = tfw_module_impl(m);
  int nd = tfw_tensor_ndim(in[0]);
  if (s->want_dims == 4 ? nd != 4 : (nd != 2 && nd != 3))
    return tfw__error(TFW_ESHAPE, "%s: expected a %s input, got %d dims", tfw_module_type(m),
                      s->want_dims == 4 ? "4-d [N, C, H, W]" : "2-d or 3-d [N, C(, L)]", nd);
  bool training = tfw_module_is_training(m);
  tfw_tensor *rm = B(m, "running_mean"), *rv = B(m, "running_var");
  if (training && s->track) { /* num_batches_tracked += 1, like PyTorch */
    tfw_tensor *nbt = B(m, "num_batches_tracked");
    int64_t v = 0;
    tfw_item_i64(nbt, &v);
    bool prev = tfw_set_grad_enabled(false);
    tfw_fill_(nbt, (double)(v + 1));
    tfw_set_grad_enabled(prev);
  }
  out[0] = tfw_batch_norm(in[0], rm, rv, P(m, "weight"), P(m, "bias"), training || !s->track,
                          s->momentum, s->eps);
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable BATCHNORM1D = {"BatchNorm1d", bn_forward, tfw__module_free_impl};
static const tfw_module_vtable BATCHNORM2D = {"BatchNorm2d", bn_forward, tfw__module_free_impl};

static tfw_module *bn_new(const tfw_module_vtable *vt, int want, int64_t c, double eps, double momentum,
                          bool affine, bool track) {
  if (c <= 0) {
    tfw__error(TFW_EVALUE, "%s: num_features must be > 0, got %lld", vt->type_name, (long long)c);
    return NULL;
  }
  bn_impl *s;
  tfw_module *m = tfw__module_new_impl(vt, sizeof *s, (void **)&s);
  if (!m) return NULL;
  *s = (bn_impl){want, eps, momentum, track};
  tfw_status st = TFW_OK;
  if (affine) st = param(m, "weight", 1, &c, 1.0);
  if (!st && affine) st = param(m, "bias", 1, &c, 0.0);
  if (!st && track) st = buffer(m, "running_mean", TFW_DTYPE_F32, 1, &c, 0.0);
  if (!st && track) st = buffer(m, "running_var", TFW_DTYPE_F32, 1, &c, 1.0);
  if (!st && track) st = buffer(m, "num_batches_tracked", TFW_DTYPE_I64, 0, NULL, 0.0);
  return finish(m, st);
}

tfw_module *tfw_batch_norm1d_new(int64_t num_features, double eps, double momentum, bool affine,
                                 bool track_running_stats) {
  return bn_new(&BATCHNORM1D, 2, num_features, eps, momentum, affine, track_running_stats);
}
tfw_module *tfw_batch_norm2d_new(int64_t num_features, double eps, double momentum, bool affine,
                                 bool track_running_stats) {
  return bn_new(&BATCHNORM2D, 4, num_features, eps, momentum, affine, track_running_stats);
}

/* ---- Embedding ---------------------------------------------------------------------------------- */

typedef struct {
  int64_t padding_idx;
  double max_norm;
} emb_impl;

static tfw_status emb_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_status st = one_in_one_out(m, n_in, n_out);
  if (st) return st;
  emb_impl *s = tfw_module_impl(m);
  out[0] = tfw_embedding(in[0], P(m, "weight"), s->padding_idx, s->max_norm, 2.0);
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable EMBEDDING = {"Embedding", emb_forward, tfw__module_free_impl};

tfw_module *tfw_embedding_new(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx,
                              double max_norm) {
  if (num_embeddings <= 0 || embedding_dim <= 0) {
    tfw__error(TFW_EVALUE, "Embedding: num_embeddings and embedding_dim must be > 0, got %lld and %lld",
               (long long)num_embeddings, (long long)embedding_dim);
    return NULL;
  }
  if (padding_idx != TFW_EMBEDDING_NO_PADDING) {
    if (padding_idx < -num_embeddings || padding_idx >= num_embeddings) {
      tfw__error(TFW_EINDEX, "Embedding: padding_idx %lld out of range for %lld embeddings",
                 (long long)padding_idx, (long long)num_embeddings);
      return NULL;
    }
    if (padding_idx < 0) padding_idx += num_embeddings;
  }
  emb_impl *s;
  tfw_module *m = tfw__module_new_impl(&EMBEDDING, sizeof *s, (void **)&s);
  if (!m) return NULL;
  *s = (emb_impl){padding_idx, max_norm};
  int64_t shape[2] = {num_embeddings, embedding_dim};
  tfw_tensor *w = tfw_empty(TFW_DTYPE_F32, 2, shape);
  tfw_status st = w ? tfw_init_normal_(w, 0, 1) : tfw_last_status(); /* PyTorch: N(0, 1) */
  if (!st && padding_idx != TFW_EMBEDDING_NO_PADDING) {                /* ... padding row zero */
    tfw_tensor *row = tfw_select(w, 0, padding_idx);
    st = row ? tfw_init_zeros_(row) : tfw_last_status();
    tfw_release(row);
  }
  if (!st) st = tfw_module_register_parameter(m, "weight", w);
  tfw_release(w);
  return finish(m, st);
}

/* ---- Dropout ---------------------------------------------------------------------------------- */

typedef struct {
  double p;
} drop_impl;

static tfw_status drop_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_status st = one_in_one_out(m, n_in, n_out);
  if (st) return st;
  drop_impl *s = tfw_module_impl(m);
  out[0] = tfw_dropout(in[0], s->p, tfw_module_is_training(m));
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable DROPOUT = {"Dropout", drop_forward, tfw__module_free_impl};

tfw_module *tfw_dropout_new(double p) {
  if (!(p >= 0 && p <= 1)) {
    tfw__error(TFW_EVALUE, "Dropout: p must be in [0, 1], got %g", p);
    return NULL;
  }
  drop_impl *s;
  tfw_module *m = tfw__module_new_impl(&DROPOUT, sizeof *s, (void **)&s);
  if (!m) return NULL;
  s->p = p;
  return m;
}
