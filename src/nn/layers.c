/* The basic layers: Linear, Sequential, Residual, activation modules. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"
#include "nn/nn_internal.h"
#include "tenflower/nn.h"

/* ---- Linear ------------------------------------------------------------------------------- */

static tfw_status linear_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out,
                                 tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Linear: takes 1 input and gives 1 output");
  tfw_tensor *w = tfw_module_get_parameter(m, "weight"), *b = tfw_module_get_parameter(m, "bias");
  const tfw_tensor *x = in[0];
  if (!x) return tfw__error(TFW_EVALUE, "Linear: input is NULL");
  int64_t in_f = tfw_tensor_shape(w)[1];
  if (tfw_tensor_ndim(x) < 1 || tfw_tensor_shape(x)[tfw_tensor_ndim(x) - 1] != in_f) {
    char buf[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "Linear: input of shape %s, expected last dimension %lld (in_features)",
                      tfw__shape_str(buf, sizeof buf, tfw_tensor_ndim(x), tfw_tensor_shape(x)), (long long)in_f);
  }
  tfw_tensor *wt = tfw_transpose(w, 0, 1); /* a view: the GEMM reads it transposed */
  tfw_tensor *y = wt ? tfw_matmul(x, wt) : NULL;
  tfw_release(wt);
  if (y && b) {
    tfw_tensor *yb = tfw_add(y, b);
    tfw_release(y);
    y = yb;
  }
  out[0] = y;
  return y ? TFW_OK : tfw_last_status();
}

static const tfw_module_vtable LINEAR = {"Linear", linear_forward, NULL};

tfw_module *tfw_linear_new(int64_t in_features, int64_t out_features, bool bias) {
  if (in_features < 0 || out_features < 0) {
    tfw__error(TFW_EVALUE, "Linear: in_features and out_features must be >= 0, got %lld and %lld",
               (long long)in_features, (long long)out_features);
    return NULL;
  }
  tfw_module *m = tfw_module_new(&LINEAR, NULL);
  tfw_tensor *w = m ? tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){out_features, in_features}) : NULL;
  tfw_tensor *b = bias && w ? tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){out_features}) : NULL;
  tfw_status st = !w || (bias && !b) ? tfw_last_status() : TFW_OK;
  /* PyTorch's reset_parameters: kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)) */
  if (!st && in_features > 0) st = tfw_init_kaiming_uniform_(w, sqrt(5.0), TFW_FAN_IN, "leaky_relu");
  if (!st && b) {
    double bound = in_features > 0 ? 1.0 / sqrt((double)in_features) : 0;
    st = tfw_init_uniform_(b, -bound, bound);
  }
  if (!st) st = tfw_module_register_parameter(m, "weight", w);
  if (!st) st = tfw_module_register_parameter(m, "bias", b);
  tfw_release(w);
  tfw_release(b);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

/* ---- Sequential ------------------------------------------------------------------------------ */

typedef struct {
  int n;
} seq_impl;

static tfw_status seq_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Sequential: takes 1 input and gives 1 output");
  seq_impl *s = tfw_module_impl(m);
  tfw_tensor *x = tfw_retain(in[0]);
  for (int i = 0; i < s->n; i++) {
    char name[16];
    snprintf(name, sizeof name, "%d", i);
    tfw_tensor *y = tfw_module_call(tfw_module_get_child(m, name), x);
    tfw_release(x);
    if (!y) return tfw_last_status();
    x = y;
  }
  out[0] = x;
  return TFW_OK;
}

static void seq_destroy(void *impl) { free(impl); }
static const tfw_module_vtable SEQUENTIAL = {"Sequential", seq_forward, seq_destroy};

tfw_status tfw_sequential_append(tfw_module *seq, tfw_module *module) {
  if (!seq || tfw_module_type(seq) != SEQUENTIAL.type_name)
    return tfw__error(TFW_EVALUE, "sequential_append: not a Sequential");
  seq_impl *s = tfw_module_impl(seq);
  char name[16];
  snprintf(name, sizeof name, "%d", s->n);
  tfw_status st = tfw_module_register_module(seq, name, module);
  if (!st) s->n++;
  return st;
}

tfw_module *tfw_sequential_new(int n, tfw_module *const *modules) {
  if (n < 0 || (n > 0 && !modules)) {
    tfw__error(TFW_EVALUE, "Sequential: bad module list");
    return NULL;
  }
  seq_impl *s;
  tfw_module *m = tfw__module_new_impl(&SEQUENTIAL, sizeof *s, (void **)&s);
  if (!m) return NULL;
  for (int i = 0; i < n; i++)
    if (tfw_sequential_append(m, modules[i])) {
      tfw_module_release(m);
      return NULL;
    }
  return m;
}

/* ---- Residual -------------------------------------------------------------------------------- */

static tfw_status res_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Residual: takes 1 input and gives 1 output");
  tfw_tensor *y = tfw_module_call(tfw_module_get_child(m, "body"), in[0]);
  if (!y) return tfw_last_status();
  out[0] = tfw_add(in[0], y);
  tfw_release(y);
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable RESIDUAL = {"Residual", res_forward, NULL};

tfw_module *tfw_residual_new(tfw_module *body) {
  if (!body) {
    tfw__error(TFW_EVALUE, "Residual: body is NULL");
    return NULL;
  }
  tfw_module *m = tfw_module_new(&RESIDUAL, NULL);
  if (m && tfw_module_register_module(m, "body", body)) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

/* ---- activations ------------------------------------------------------------------------------ */

typedef struct {
  tfw_tensor *(*fn)(const tfw_tensor *);
} act_impl;

static tfw_tensor *identity(const tfw_tensor *x) { return tfw_retain((tfw_tensor *)x); }

static tfw_status act_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "%s: takes 1 input and gives 1 output", tfw_module_type(m));
  act_impl *a = tfw_module_impl(m);
  out[0] = a->fn(in[0]);
  return out[0] ? TFW_OK : tfw_last_status();
}
static void act_destroy(void *impl) { free(impl); }
static const tfw_module_vtable ACT_RELU = {"ReLU", act_forward, act_destroy};
static const tfw_module_vtable ACT_GELU = {"GELU", act_forward, act_destroy};
static const tfw_module_vtable ACT_TANH = {"Tanh", act_forward, act_destroy};
static const tfw_module_vtable ACT_SIGMOID = {"Sigmoid", act_forward, act_destroy};
static const tfw_module_vtable ACT_IDENTITY = {"Identity", act_forward, act_destroy};

tfw_module *tfw_activation_new(const char *name) {
  const tfw_module_vtable *vt = NULL;
  tfw_tensor *(*fn)(const tfw_tensor *) = NULL;
  if (name && !strcmp(name, "relu")) vt = &ACT_RELU, fn = tfw_relu;
  else if (name && !strcmp(name, "gelu")) vt = &ACT_GELU, fn = tfw_gelu;
  else if (name && !strcmp(name, "tanh")) vt = &ACT_TANH, fn = tfw_tanh;
  else if (name && !strcmp(name, "sigmoid")) vt = &ACT_SIGMOID, fn = tfw_sigmoid;
  else if (name && !strcmp(name, "identity")) vt = &ACT_IDENTITY, fn = identity;
  if (!vt) {
    tfw__error(TFW_EVALUE, "activation_new: unknown activation '%s' (relu, gelu, tanh, sigmoid, identity)",
               name ? name : "(null)");
    return NULL;
  }
  act_impl *a = malloc(sizeof *a);
  if (!a) {
    tfw__error(TFW_ENOMEM, "activation_new: out of memory");
    return NULL;
  }
  a->fn = fn;
  tfw_module *m = tfw_module_new(vt, a);
  if (!m) free(a);
  return m;
}
