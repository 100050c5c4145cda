/* Convolution and pooling layers over include/tenflower/nn_functional_conv.h, with PyTorch's
 * parameter names ("weight" [out, in/groups, k...], "bias" [out]) and default init
 * (kaiming_uniform_(a = sqrt(5)) for the weight, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
 * bias, fan_in = in/groups * prod(k); for transposed convs PyTorch's fan_in is computed from
 * the weight's dim 1, i.e. out/groups * prod(k)). */
#include <math.h>
#include <stdlib.h>

#include "core/core.h"
#include "nn/nn_internal.h"
#include "tenflower/nn.h"
#include "tenflower/nn_functional_conv.h"

typedef struct {
  int dims;           /* 1 or 2 */
  bool transposed;
  bool same;          /* padding='same' */
  int64_t stride[2], padding[2], dilation[2], output_padding[2], groups;
} conv_impl;


static tfw_status conv_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "%s: takes 1 input and gives 1 output", tfw_module_type(m));
  conv_impl *c = tfw_module_impl(m);
  const tfw_tensor *w = tfw_module_get_parameter(m, "weight"), *b = tfw_module_get_parameter(m, "bias");
  if (c->transposed)
    out[0] = c->dims == 1 ? tfw_conv_transpose1d(in[0], w, b, c->stride[0], c->padding[0], c->output_padding[0],
                                                 c->groups, c->dilation[0])
                          : tfw_conv_transpose2d(in[0], w, b, c->stride, c->padding, c->output_padding,
                                                 c->groups, c->dilation);
  else if (c->same)
    out[0] = c->dims == 1 ? tfw_conv1d_same(in[0], w, b, c->dilation[0], c->groups)
                          : tfw_conv2d_same(in[0], w, b, c->dilation, c->groups);
  else
    out[0] = c->dims == 1 ? tfw_conv1d(in[0], w, b, c->stride[0], c->padding[0], c->dilation[0], c->groups)
                          : tfw_conv2d(in[0], w, b, c->stride, c->padding, c->dilation, c->groups);
  return out[0] ? TFW_OK : tfw_last_status();
}

static const tfw_module_vtable CONV1D = {"Conv1d", conv_forward, tfw__module_free_impl};
static const tfw_module_vtable CONV2D = {"Conv2d", conv_forward, tfw__module_free_impl};
static const tfw_module_vtable CONVT2D = {"ConvTranspose2d", conv_forward, tfw__module_free_impl};

static tfw_module *conv_new(const tfw_module_vtable *vt, int dims, bool transposed, int64_t cin,
                            int64_t cout, const int64_t *k, const int64_t *stride, const int64_t *padding,
                            const int64_t *output_padding, const int64_t *dilation, int64_t groups,
                            bool bias, bool same) {
  const char *name = vt->type_name;
  if (cin <= 0 || cout <= 0 || groups <= 0 || cin % groups || cout % groups) {
    tfw__error(TFW_EVALUE, "%s: in_channels (%lld) and out_channels (%lld) must be positive multiples "
               "of groups (%lld)", name, (long long)cin, (long long)cout, (long long)groups);
    return NULL;
  }
  for (int d = 0; d < dims; d++)
    if (!k || k[d] <= 0) {
      tfw__error(TFW_EVALUE, "%s: kernel_size must be positive", name);
      return NULL;
    }
  conv_impl *c;
  tfw_module *m = tfw__module_new_impl(vt, sizeof *c, (void **)&c);
  if (!m) return NULL;
  c->dims = dims;
  c->transposed = transposed;
  c->same = same;
  c->groups = groups;
  for (int d = 0; d < dims; d++) {
    c->stride[d] = stride ? stride[d] : 1;
    c->padding[d] = padding ? padding[d] : 0;
    c->dilation[d] = dilation ? dilation[d] : 1;
    c->output_padding[d] = output_padding ? output_padding[d] : 0;
  }
  int64_t shape[4] = {transposed ? cin : cout, transposed ? cout / groups : cin / groups, k[0], dims > 1 ? k[1] : 1};
  tfw_tensor *w = tfw_empty(TFW_DTYPE_F32, 2 + dims, shape);
  tfw_status st = w ? tfw_init_kaiming_uniform_(w, sqrt(5.0), TFW_FAN_IN, "leaky_relu") : tfw_last_status();
  tfw_tensor *b = NULL;
  if (!st && bias) {
    int64_t fan_in = 0;
    tfw_init_fans(w, &fan_in, NULL);
    b = tfw_empty(TFW_DTYPE_F32, 1, &cout);
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0;
    st = b ? tfw_init_uniform_(b, -bound, bound) : tfw_last_status();
  }
  if (!st) st = tfw_module_register_parameter(m, "weight", w);
  if (!st) st = tfw_module_register_parameter(m, "bias", b);
  tfw_release(w), tfw_release(b);
  if (st) {
    tfw_module_release(m);
    return NULL;
  }
  return m;
}

tfw_module *tfw_conv1d_new(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
                           int64_t padding, int64_t dilation, int64_t groups, bool bias) {
  return conv_new(&CONV1D, 1, false, in_channels, out_channels, &kernel_size, &stride, &padding, NULL,
                  &dilation, groups, bias, false);
}

tfw_module *tfw_conv2d_new(int64_t in_channels, int64_t out_channels, const int64_t *kernel_size,
                           const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                           int64_t groups, bool bias, bool padding_same) {
  return conv_new(&CONV2D, 2, false, in_channels, out_channels, kernel_size, stride, padding, NULL,
                  dilation, groups, bias, padding_same);
}

tfw_module *tfw_conv_transpose2d_new(int64_t in_channels, int64_t out_channels, const int64_t *kernel_size,
                                     const int64_t *stride, const int64_t *padding,
                                     const int64_t *output_padding, int64_t groups, bool bias,
                                     const int64_t *dilation) {
  return conv_new(&CONVT2D, 2, true, in_channels, out_channels, kernel_size, stride, padding,
                  output_padding, dilation, groups, bias, false);
}

/* ---- pooling ---------------------------------------------------------------------------------- */

typedef struct {
  int kind; /* 0 max2d, 1 avg2d, 2 adaptive avg2d, 3 max1d, 4 avg1d */
  int64_t k[2], s[2], p[2];
  bool ceil_mode;
} pool_impl;

static tfw_status pool_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1)
    return tfw__error(TFW_EVALUE, "%s: takes 1 input and gives 1 output", tfw_module_type(m));
  pool_impl *p = tfw_module_impl(m);
  switch (p->kind) {
  case 0: out[0] = tfw_max_pool2d(in[0], p->k, p->s, p->p, NULL, p->ceil_mode, NULL); break;
  case 1: out[0] = tfw_avg_pool2d(in[0], p->k, p->s, p->p, p->ceil_mode, true, 0); break;
  case 2: out[0] = tfw_adaptive_avg_pool2d(in[0], p->k); break;
  case 3: out[0] = tfw_max_pool1d(in[0], p->k[0], p->s[0], p->p[0], 1, p->ceil_mode, NULL); break;
  default: out[0] = tfw_avg_pool1d(in[0], p->k[0], p->s[0], p->p[0], p->ceil_mode, true); break;
  }
  return out[0] ? TFW_OK : tfw_last_status();
}

static const tfw_module_vtable MAXPOOL2D = {"MaxPool2d", pool_forward, tfw__module_free_impl};
static const tfw_module_vtable AVGPOOL2D = {"AvgPool2d", pool_forward, tfw__module_free_impl};
static const tfw_module_vtable ADAPTIVE = {"AdaptiveAvgPool2d", pool_forward, tfw__module_free_impl};
static const tfw_module_vtable MAXPOOL1D = {"MaxPool1d", pool_forward, tfw__module_free_impl};
static const tfw_module_vtable AVGPOOL1D = {"AvgPool1d", pool_forward, tfw__module_free_impl};

static tfw_module *pool_new(const tfw_module_vtable *vt, int kind, int dims, const int64_t *k,
                            const int64_t *s, const int64_t *p, bool ceil_mode) {
  for (int d = 0; d < dims; d++)
    if (!k || k[d] <= 0) {
      tfw__error(TFW_EVALUE, "%s: kernel/output size must be positive", vt->type_name);
      return NULL;
    }
  pool_impl *q;
  tfw_module *m = tfw__module_new_impl(vt, sizeof *q, (void **)&q);
  if (!m) return NULL;
  q->kind = kind;
  q->ceil_mode = ceil_mode;
  for (int d = 0; d < dims; d++) {
    q->k[d] = k[d];
    q->s[d] = s && s[d] > 0 ? s[d] : k[d]; /* stride defaults to the kernel size */
    q->p[d] = p ? p[d] : 0;
  }
  return m;
}

tfw_module *tfw_max_pool2d_new(const int64_t *kernel_size, const int64_t *stride, const int64_t *padding,
                               bool ceil_mode) {
  return pool_new(&MAXPOOL2D, 0, 2, kernel_size, stride, padding, ceil_mode);
}
tfw_module *tfw_avg_pool2d_new(const int64_t *kernel_size, const int64_t *stride, const int64_t *padding,
                               bool ceil_mode) {
  return pool_new(&AVGPOOL2D, 1, 2, kernel_size, stride, padding, ceil_mode);
}
tfw_module *tfw_adaptive_avg_pool2d_new(const int64_t *output_size) {
  return pool_new(&ADAPTIVE, 2, 2, output_size, NULL, NULL, false);
}
tfw_module *tfw_max_pool1d_new(int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode) {
  return pool_new(&MAXPOOL1D, 3, 1, &kernel_size, &stride, &padding, ceil_mode);
}
tfw_module *tfw_avg_pool1d_new(int64_t kernel_size, int64_t stride, int64_t padding, bool ceil_mode) {
  return pool_new(&AVGPOOL1D, 4, 1, &kernel_size, &stride, &padding, ceil_mode);
}

/* ---- Flatten -------------------------------------------------------------------------------------- */

typedef struct {
  int start, end;
} flat_impl;

static tfw_status flat_forward(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  if (n_in != 1 || n_out != 1) return tfw__error(TFW_EVALUE, "Flatten: takes 1 input and gives 1 output");
  flat_impl *f = tfw_module_impl(m);
  out[0] = tfw_flatten(in[0], f->start, f->end);
  return out[0] ? TFW_OK : tfw_last_status();
}
static const tfw_module_vtable FLATTEN = {"Flatten", flat_forward, tfw__module_free_impl};

tfw_module *tfw_flatten_new(int start_dim, int end_dim) {
  flat_impl *f;
  tfw_module *m = tfw__module_new_impl(&FLATTEN, sizeof *f, (void **)&f);
  if (!m) return NULL;
  *f = (flat_impl){start_dim, end_dim};
  return m;
}
