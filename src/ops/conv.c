/* Convolution family: shape inference, the kernel entry, registry samples and the public
 * wrappers of conv1d/conv2d/conv_transpose1d/conv_transpose2d (and the internal
 * conv_weight_grad). The kernels themselves are in conv_kernels.c; see conv.h for the
 * big/small/weight letters shared by the three ops.
 *
 * Validation mirrors PyTorch's messages where it can: channels that do not match the weight
 * ("conv2d: weight has 3 input channels per group, input has 4 channels with groups 1"),
 * a kernel larger than the padded input, non-positive stride/dilation/groups, negative
 * padding, output_padding not smaller than stride or dilation. Attribute values are capped
 * at TFW__CONV_ATTR_MAX so that size arithmetic cannot overflow on hostile inputs.
 * Input, weight and bias must share one floating dtype (TFW_EDTYPE otherwise, as PyTorch). */
#include <string.h>

#include "ops/conv.h"
#include "ops/samples.h"
#include "tenflower/nn_functional_conv.h"

#define SHAPE(buf, t) tfw__shape_str(buf, sizeof buf, (t)->ndim, (t)->shape)

static bool is_transpose(tfw__op_id id) {
  return id == TFW__OP_conv_transpose1d || id == TFW__OP_conv_transpose2d;
}

static int op_spatial(const tfw__call *c) {
  switch (c->op->id) {
  case TFW__OP_conv1d:
  case TFW__OP_conv_transpose1d:
    return 1;
  case TFW__OP_conv2d:
  case TFW__OP_conv_transpose2d:
    return 2;
  default: /* conv_weight_grad: from x */
    return c->in[0]->ndim - 2;
  }
}

/* Reads S values of parameter q from ints into v[2] (internal dims; dim 0 is 1 for S = 1). */
static tfw_status read_param(const tfw__call *c, int S, int q, const char *what, int64_t lo,
                             int64_t fill, int64_t *v) {
  v[0] = fill;
  for (int j = 0; j < S; j++) {
    int64_t x = c->a.ints[q * S + j];
    if (x < lo || x > TFW__CONV_ATTR_MAX)
      return tfw__error(TFW_EVALUE, "%s: %s must be %s and at most %lld, got %lld", c->op->name,
                        what, lo > 0 ? "positive" : "non-negative",
                        (long long)TFW__CONV_ATTR_MAX, (long long)x);
    v[2 - S + j] = x;
  }
  return TFW_OK;
}

static tfw_status need_rank(const char *op, const char *arg, const tfw_tensor *t, int nd) {
  if (t->ndim == nd) return TFW_OK;
  char b[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: %s must be %d-d, got shape %s", op, arg, nd, SHAPE(b, t));
}

tfw_status tfw__conv_geometry(const tfw__call *c, tfw__conv_geom *g) {
  const char *op = c->op->name;
  const tfw__op_id id = c->op->id;
  const bool wgrad = id == TFW__OP_conv_weight_grad, tr = is_transpose(id);
  tfw_status st;
  memset(g, 0, sizeof *g);
  if (!wgrad && (c->n_in < 2 || c->n_in > 3))
    return tfw__error(TFW_EVALUE, "%s: expects input, weight and an optional bias, got %d "
                      "tensors", op, c->n_in);
  const tfw_tensor *x = c->in[0], *w = c->in[1];
  const tfw_tensor *bias = c->n_in == 3 ? c->in[2] : NULL;
  for (int i = 0; i < c->n_in; i++) {
    if ((st = tfw__check_float(op, i == 0 ? "input" : i == 1 ? (wgrad ? "gy" : "weight") : "bias",
                               c->in[i])))
      return st;
    if (c->in[i]->dtype != x->dtype)
      return tfw__error(TFW_EDTYPE, "%s: input is %s but %s is %s; they must have the same "
                        "dtype", op, tfw_dtype_name(x->dtype), i == 1 ? "weight" : "bias",
                        tfw_dtype_name(c->in[i]->dtype));
  }
  const int S = op_spatial(c);
  if (S < 1 || S > 2) {
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: input must be 3-d or 4-d, got shape %s", op, SHAPE(b, x));
  }
  g->S = S;
  if ((st = need_rank(op, "input", x, S + 2)) ||
      (st = need_rank(op, wgrad ? "gy" : "weight", w, S + 2)))
    return st;
  const int nparams = tr || wgrad ? 4 : 3;
  if (c->a.n_ints != nparams * S)
    return tfw__error(TFW_EVALUE, "%s: expects %d attribute values (%d per spatial dim), got %d",
                      op, nparams * S, nparams, c->a.n_ints);
  g->G = c->a.i[0];
  if (g->G < 1 || g->G > TFW__CONV_ATTR_MAX)
    return tfw__error(TFW_EVALUE, "%s: groups must be positive, got %lld", op, (long long)g->G);
  int64_t outpad[2] = {0, 0};
  if (wgrad) {
    if ((st = read_param(c, S, 0, "kernel size", 1, 1, g->k)) ||
        (st = read_param(c, S, 1, "stride", 1, 1, g->s)) ||
        (st = read_param(c, S, 2, "padding", 0, 0, g->p)) ||
        (st = read_param(c, S, 3, "dilation", 1, 1, g->d)))
      return st;
  } else {
    if ((st = read_param(c, S, 0, "stride", 1, 1, g->s)) ||
        (st = read_param(c, S, 1, "padding", 0, 0, g->p)))
      return st;
    if (tr && (st = read_param(c, S, 2, "output_padding", 0, 0, outpad))) return st;
    if ((st = read_param(c, S, tr ? 3 : 2, "dilation", 1, 1, g->d))) return st;
  }
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  g->N = x->shape[0];
  if (wgrad) {
    g->C = x->shape[1];
    g->O = w->shape[1];
    if (w->shape[0] != g->N)
      return tfw__error(TFW_ESHAPE, "%s: batch sizes differ: input %s, gy %s", op, SHAPE(b1, x),
                        SHAPE(b2, w));
  } else if (tr) {
    g->O = x->shape[1];
    g->C = w->shape[1] * g->G;
    if (w->shape[0] != g->O)
      return tfw__error(TFW_ESHAPE, "%s: weight of shape %s expects %lld input channels, input "
                        "%s has %lld", op, SHAPE(b1, w), (long long)w->shape[0], SHAPE(b2, x),
                        (long long)g->O);
  } else {
    g->C = x->shape[1];
    g->O = w->shape[0];
    if (g->C % g->G != 0 || w->shape[1] * g->G != g->C)
      return tfw__error(TFW_ESHAPE, "%s: weight has %lld input channels per group, input has "
                        "%lld channels with groups %lld", op, (long long)w->shape[1],
                        (long long)g->C, (long long)g->G);
  }
  if (g->C % g->G != 0 || g->O % g->G != 0)
    return tfw__error(TFW_ESHAPE, "%s: channels (%lld and %lld) must be divisible by groups %lld",
                      op, (long long)g->C, (long long)g->O, (long long)g->G);
  if (!wgrad)
    for (int j = 0; j < S; j++) g->k[2 - S + j] = w->shape[2 + j];
  g->k[0] = S == 1 ? 1 : g->k[0];
  g->L[0] = g->P[0] = 1;
  for (int j = 0; j < S; j++) {
    int i = 2 - S + j;
    if (g->k[i] < 1)
      return tfw__error(TFW_ESHAPE, "%s: kernel size must be positive, weight is %s", op,
                        SHAPE(b1, w));
    const int64_t ext = g->d[i] * (g->k[i] - 1) + 1; /* effective kernel extent */
    if (tr) {
      g->P[i] = x->shape[2 + j];
      if (outpad[i] >= g->s[i] && outpad[i] >= g->d[i])
        return tfw__error(TFW_EVALUE, "%s: output_padding (%lld) must be smaller than stride "
                          "(%lld) or dilation (%lld)", op, (long long)outpad[i],
                          (long long)g->s[i], (long long)g->d[i]);
      g->L[i] = (g->P[i] - 1) * g->s[i] - 2 * g->p[i] + ext + outpad[i];
      if (g->P[i] < 1 || g->L[i] < 1)
        return tfw__error(TFW_ESHAPE, "%s: output size %lld in spatial dim %d is not positive "
                          "(input %s, weight %s)", op, (long long)g->L[i], j, SHAPE(b1, x),
                          SHAPE(b2, w));
    } else {
      g->L[i] = x->shape[2 + j];
      const int64_t padded = g->L[i] + 2 * g->p[i];
      if (ext > padded)
        return tfw__error(TFW_ESHAPE, "%s: kernel (%lld with dilation %lld) is larger than the "
                          "padded input (%lld) in spatial dim %d", op, (long long)g->k[i],
                          (long long)g->d[i], (long long)padded, j);
      g->P[i] = (padded - ext) / g->s[i] + 1;
      if (wgrad && w->shape[2 + j] != g->P[i])
        return tfw__error(TFW_ESHAPE, "%s: gy %s does not match the conv output size %lld in "
                          "spatial dim %d (input %s)", op, SHAPE(b1, w), (long long)g->P[i], j,
                          SHAPE(b2, x));
    }
  }
  if (bias && (bias->ndim != 1 || bias->shape[0] != (tr ? g->C : g->O)))
    return tfw__error(TFW_ESHAPE, "%s: bias must have shape [%lld], got %s", op,
                      (long long)(tr ? g->C : g->O), SHAPE(b1, bias));
  return TFW_OK;
}

tfw_status tfw__infer_conv(const tfw__call *c, tfw__meta *out) {
  tfw__conv_geom g;
  tfw_status st = tfw__conv_geometry(c, &g);
  if (st) return st;
  const int S = g.S;
  out->dtype = c->in[0]->dtype;
  out->ndim = S + 2;
  if (c->op->id == TFW__OP_conv_weight_grad) {
    out->shape[0] = g.O;
    out->shape[1] = g.C / g.G;
    for (int j = 0; j < S; j++) out->shape[2 + j] = g.k[2 - S + j];
  } else {
    const bool tr = is_transpose(c->op->id);
    out->shape[0] = g.N;
    out->shape[1] = tr ? g.C : g.O;
    for (int j = 0; j < S; j++) out->shape[2 + j] = tr ? g.L[2 - S + j] : g.P[2 - S + j];
  }
  return TFW_OK;
}

tfw_status tfw__kernel_conv(const tfw__call *c, tfw_tensor **out) {
  tfw__conv_geom g;
  tfw_status st = tfw__conv_geometry(c, &g);
  return st ? st : tfw__conv_compute(c, &g, out[0]);
}

/* ---- samples --------------------------------------------------------------------------- */

typedef struct conv_sample {
  tfw__op_id id;
  tfw_dtype dt;
  tfw__layout layout;
  int n_in, nd;
  int64_t shape[3][4];
  int n_ints;
  int64_t ints[8];
  int64_t groups;
} conv_sample;

static const conv_sample k_samples[] = {
    {TFW__OP_conv2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, 4,
     {{2, 4, 5, 6}, {6, 2, 3, 3}, {6}}, 6, {2, 1, 1, 0, 1, 1}, 2},
    {TFW__OP_conv2d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, 4,
     {{1, 3, 6, 5}, {2, 3, 2, 3}}, 6, {1, 1, 0, 1, 2, 1}, 1},
    {TFW__OP_conv2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, 4,
     {{2, 3, 4, 4}, {3, 1, 3, 3}, {3}}, 6, {1, 1, 1, 1, 1, 1}, 3},
    {TFW__OP_conv1d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, 3,
     {{2, 4, 9}, {6, 2, 3}, {6}}, 3, {2, 1, 1}, 2},
    {TFW__OP_conv1d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, 3, {{1, 3, 8}, {2, 3, 2}}, 3,
     {1, 0, 2}, 1},
    {TFW__OP_conv_transpose2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, 4,
     {{2, 4, 3, 4}, {4, 3, 3, 3}, {6}}, 8, {2, 1, 1, 0, 1, 0, 1, 1}, 2},
    {TFW__OP_conv_transpose2d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, 4,
     {{1, 2, 4, 3}, {2, 2, 2, 3}}, 8, {1, 1, 0, 0, 0, 0, 2, 1}, 1},
    {TFW__OP_conv_transpose1d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, 3,
     {{2, 4, 5}, {4, 3, 3}, {6}}, 4, {2, 1, 1, 1}, 2},
    {TFW__OP_conv_weight_grad, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, 4,
     {{2, 4, 5, 6}, {2, 6, 3, 4}}, 8, {3, 3, 2, 1, 1, 0, 1, 1}, 2},
    {TFW__OP_conv_weight_grad, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, 3, {{2, 3, 7}, {2, 4, 3}}, 4,
     {3, 2, 0, 1}, 1},
};

int tfw__sample_conv(const tfw__op_def *op, tfw__call *calls, int cap) {
  int count = 0;
  for (size_t s = 0; s < sizeof k_samples / sizeof k_samples[0] && count < cap; s++) {
    const conv_sample *cs = &k_samples[s];
    if (cs->id != op->id) continue;
    const tfw_tensor *in[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < cs->n_in; i++) {
      in[i] = tfw__sample_tensor(cs->dt, i == 2 ? 1 : cs->nd, cs->shape[i], -1, 1,
                                 (uint64_t)s * 16 + (uint64_t)i, cs->layout);
      ok = ok && in[i];
    }
    if (!ok) {
      for (int i = 0; i < cs->n_in; i++) tfw_release((tfw_tensor *)in[i]);
      break;
    }
    tfw__call_init(&calls[count], op->id, cs->n_in, in);
    calls[count].a.n_ints = cs->n_ints;
    memcpy(calls[count].a.ints, cs->ints, sizeof cs->ints);
    calls[count].a.i[0] = cs->groups;
    count++;
  }
  return count;
}

/* ---- public wrappers ------------------------------------------------------------------- */

/* Runs op on (x, w[, bias]) with ints = the given lists (S entries each; NULL = fill). A
 * 2-d (1-d op) or 3-d (2-d op) input without batch dim is run as a batch of one, like
 * PyTorch. */
static tfw_tensor *conv_call(tfw__op_id id, int S, const tfw_tensor *x, const tfw_tensor *w,
                             const tfw_tensor *bias, int nlists, const int64_t *const *lists,
                             const int64_t *fills, int64_t groups) {
  const char *name = tfw__ops[id].name;
  if (tfw__check_tensor(name, "input", x) || tfw__check_tensor(name, "weight", w)) return NULL;
  tfw_tensor *xb = NULL;
  bool unbatched = x->ndim == S + 1;
  if (unbatched && !(xb = tfw_unsqueeze(x, 0))) return NULL;
  const tfw_tensor *in[3] = {unbatched ? xb : x, w, bias};
  tfw__call c;
  tfw__call_init(&c, id, bias ? 3 : 2, in);
  c.a.n_ints = nlists * S;
  for (int q = 0; q < nlists; q++)
    for (int j = 0; j < S; j++) c.a.ints[q * S + j] = lists[q] ? lists[q][j] : fills[q];
  c.a.i[0] = groups;
  tfw_tensor *r = tfw__op_run(&c);
  tfw_release(xb);
  if (r && unbatched) {
    tfw_tensor *sq = tfw_squeeze(r, 0);
    tfw_release(r);
    r = sq;
  }
  return r;
}

tfw_tensor *tfw_conv2d(const tfw_tensor *input, const tfw_tensor *weight, const tfw_tensor *bias,
                       const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                       int64_t groups) {
  const int64_t *lists[3] = {stride, padding, dilation}, fills[3] = {1, 0, 1};
  return conv_call(TFW__OP_conv2d, 2, input, weight, bias, 3, lists, fills, groups);
}

tfw_tensor *tfw_conv1d(const tfw_tensor *input, const tfw_tensor *weight, const tfw_tensor *bias,
                       int64_t stride, int64_t padding, int64_t dilation, int64_t groups) {
  const int64_t *lists[3] = {&stride, &padding, &dilation}, fills[3] = {1, 0, 1};
  return conv_call(TFW__OP_conv1d, 1, input, weight, bias, 3, lists, fills, groups);
}

/* padding='same': total padding dil*(k-1) per dim, split with the extra element on the right
 * (PyTorch's rule). The odd part goes through tfw_pad so the conv op stays symmetric. */
static tfw_tensor *conv_same(int S, const tfw_tensor *input, const tfw_tensor *weight,
                             const tfw_tensor *bias, const int64_t *dilation, int64_t groups) {
  const char *name = S == 1 ? "conv1d" : "conv2d";
  if (tfw__check_tensor(name, "input", input) || tfw__check_tensor(name, "weight", weight))
    return NULL;
  if (weight->ndim != S + 2) {
    char b[TFW__SHAPE_BUF];
    tfw__error(TFW_ESHAPE, "%s: weight must be %d-d, got shape %s", name, S + 2,
               SHAPE(b, weight));
    return NULL;
  }
  int64_t pad[2], dil[2], extra[4] = {0, 0, 0, 0};
  bool odd = false;
  for (int j = 0; j < S; j++) {
    dil[j] = dilation ? dilation[j] : 1;
    if (dil[j] < 1 || dil[j] > TFW__CONV_ATTR_MAX) {
      tfw__error(TFW_EVALUE, "%s: dilation must be positive, got %lld", name, (long long)dil[j]);
      return NULL;
    }
    int64_t total = dil[j] * (weight->shape[2 + j] - 1);
    pad[j] = total / 2;
    /* tfw_pad lists the last dim first: (left, right) pairs */
    extra[2 * (S - 1 - j) + 1] = total - 2 * pad[j];
    odd = odd || total % 2 != 0;
  }
  tfw_tensor *xp = NULL;
  if (odd && !(xp = tfw_pad(input, S, extra, TFW_PAD_CONSTANT, 0.0))) return NULL;
  const tfw_tensor *x = odd ? xp : input;
  tfw_tensor *r = S == 1 ? tfw_conv1d(x, weight, bias, 1, pad[0], dil[0], groups)
                         : tfw_conv2d(x, weight, bias, NULL, pad, dil, groups);
  tfw_release(xp);
  return r;
}

tfw_tensor *tfw_conv1d_same(const tfw_tensor *input, const tfw_tensor *weight,
                            const tfw_tensor *bias, int64_t dilation, int64_t groups) {
  return conv_same(1, input, weight, bias, &dilation, groups);
}

tfw_tensor *tfw_conv2d_same(const tfw_tensor *input, const tfw_tensor *weight,
                            const tfw_tensor *bias, const int64_t *dilation, int64_t groups) {
  return conv_same(2, input, weight, bias, dilation, groups);
}

tfw_tensor *tfw_conv_transpose2d(const tfw_tensor *input, const tfw_tensor *weight,
                                 const tfw_tensor *bias, const int64_t *stride,
                                 const int64_t *padding, const int64_t *output_padding,
                                 int64_t groups, const int64_t *dilation) {
  const int64_t *lists[4] = {stride, padding, output_padding, dilation}, fills[4] = {1, 0, 0, 1};
  return conv_call(TFW__OP_conv_transpose2d, 2, input, weight, bias, 4, lists, fills, groups);
}

tfw_tensor *tfw_conv_transpose1d(const tfw_tensor *input, const tfw_tensor *weight,
                                 const tfw_tensor *bias, int64_t stride, int64_t padding,
                                 int64_t output_padding, int64_t groups, int64_t dilation) {
  const int64_t *lists[4] = {&stride, &padding, &output_padding, &dilation};
  const int64_t fills[4] = {1, 0, 0, 1};
  return conv_call(TFW__OP_conv_transpose1d, 1, input, weight, bias, 4, lists, fills, groups);
}
