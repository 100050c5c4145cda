/* Activation functions (activation.def): inference, the kernel driver, the typed loops,
 * samples and the public wrappers.
 *
 * Kernel choices: every activation is one expression per dtype, run through the strided
 * iterator (core/iter.h) like the elementwise ops; the f32 loops use the branch-free
 * approximations of src/cpu/vmath.h (tfw__expf, tfw__expm1f, tfw__tanhf, tfw__sigmoidf,
 * tfw__log1pf) and tfw__vm_sel blends instead of `?:`, so gcc vectorises them, and they are
 * compiled for AVX-512, AVX2 and baseline x86-64 (TFW_CLONES), picked at load time. f64 uses
 * libm. f16/bf16 inputs are widened to f32 once and the result rounded once. Constants
 * (selu's alpha and scale, gelu-tanh's sqrt(2/pi)) are PyTorch's.
 *
 * glu splits x in halves a, b along dim (size must be even) and computes a * sigmoid(b) over
 * the two half views of a contiguous copy, so it is one pass too. */
#include <math.h>

#include "core/iter.h"
#include "cpu/vmath.h"
#include "ops/activation.h"
#include "ops/samples.h"

#define SELU_ALPHA 1.6732632423543772848170429916717
#define SELU_SCALE 1.0507009873554804934193349852946
#define GELU_K 0.7978845608028654 /* sqrt(2 / pi) */

typedef struct act_p {
  float a, b;   /* f32 copies of f[0], f[1] */
  double ad, bd;
} act_p;

/* ---- loops ------------------------------------------------------------------------------- */
#define DEF_ACT(NAME, T, EXPR)                                                        \
  static TFW_CLONES void NAME(int64_t n, char **p, const int64_t *s, void *ctx) {     \
    const act_p *P = ctx;                                                             \
    (void)P;                                                                          \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                     \
      T *restrict o = (T *)p[0];                                                      \
      const T *restrict in = (const T *)p[1];                                         \
      for (int64_t i = 0; i < n; i++) {                                               \
        T x = in[i];                                                                  \
        o[i] = (EXPR);                                                                \
      }                                                                               \
    } else {                                                                          \
      for (int64_t i = 0; i < n; i++) {                                               \
        T x = *(const T *)(p[1] + i * s[1]);                                          \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                             \
      }                                                                               \
    }                                                                                 \
  }

#define SEL tfw__vm_sel
/* log(1 + e^z), stable for any z: max(z, 0) + log1p(e^-|z|) */
static inline float softplus1f(float z) {
  return SEL(z > 0, z, 0.0f) + tfw__log1pf(tfw__expf(-tfw__vm_abs(z)));
}
static inline double softplus1(double z) { return (z > 0 ? z : 0.0) + log1p(exp(-fabs(z))); }
static inline float clamp06f(float v) {
  v = SEL(v < 0.0f, 0.0f, v);
  return SEL(v > 6.0f, 6.0f, v);
}
static inline double clamp06(double v) { return v < 0 ? 0 : (v > 6 ? 6 : v); }

DEF_ACT(leaky_relu_f32, float, SEL(x > 0.0f, x, x * P->a))
DEF_ACT(leaky_relu_f64, double, x > 0 ? x : x * P->ad)
DEF_ACT(elu_f32, float, SEL(x <= 0.0f, P->a * tfw__expm1f(x), x))
DEF_ACT(elu_f64, double, x <= 0 ? P->ad * expm1(x) : x)
DEF_ACT(selu_f32, float,
        (float)SELU_SCALE * SEL(x <= 0.0f, (float)SELU_ALPHA * tfw__expm1f(x), x))
DEF_ACT(selu_f64, double, SELU_SCALE * (x <= 0 ? SELU_ALPHA * expm1(x) : x))
DEF_ACT(celu_f32, float, SEL(x <= 0.0f, P->a * tfw__expm1f(x / P->a), x))
DEF_ACT(celu_f64, double, x <= 0 ? P->ad * expm1(x / P->ad) : x)
DEF_ACT(gelu_tanh_f32, float,
        0.5f * x * (1.0f + tfw__tanhf((float)GELU_K * (x + 0.044715f * x * x * x))))
DEF_ACT(gelu_tanh_f64, double, 0.5 * x * (1.0 + tanh(GELU_K * (x + 0.044715 * x * x * x))))
DEF_ACT(silu_f32, float, x * tfw__sigmoidf(x))
DEF_ACT(silu_f64, double, x / (1.0 + exp(-x)))
DEF_ACT(mish_f32, float, x * tfw__tanhf(softplus1f(x)))
DEF_ACT(mish_f64, double, x * tanh(softplus1(x)))
DEF_ACT(hardswish_f32, float, x * clamp06f(x + 3.0f) * (1.0f / 6.0f))
DEF_ACT(hardswish_f64, double, x * clamp06(x + 3.0) / 6.0)
DEF_ACT(hardsigmoid_f32, float, clamp06f(x + 3.0f) * (1.0f / 6.0f))
DEF_ACT(hardsigmoid_f64, double, clamp06(x + 3.0) / 6.0)
DEF_ACT(softplus_f32, float, SEL(x * P->a > P->b, x, softplus1f(x * P->a) / P->a))
DEF_ACT(softplus_f64, double, x * P->ad > P->bd ? x : softplus1(x * P->ad) / P->ad)
DEF_ACT(softsign_f32, float, x / (1.0f + tfw__vm_abs(x)))
DEF_ACT(softsign_f64, double, x / (1.0 + fabs(x)))

/* gelu'(x) g = (Phi(x) + x phi(x)) g with Phi(x) = (1 + erf(x / sqrt 2)) / 2 and
 * phi(x) = exp(-x^2 / 2) / sqrt(2 pi): one pass instead of gelu's composite rule (eleven
 * elementwise ops over the MLP activations). Inputs p[1] = x, p[2] = g. */
static TFW_CLONES void gelu_bwd_f32(int64_t n, char **p, const int64_t *s, void *ctx) {
  (void)ctx;
  const float r2 = 0.707106781186547524f, rpi = 0.398942280401432678f; /* 1/sqrt2, 1/sqrt(2pi) */
  if (s[0] == 4 && s[1] == 4 && s[2] == 4) {
    float *restrict o = (float *)p[0];
    const float *restrict x = (const float *)p[1], *restrict g = (const float *)p[2];
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      float d = 0.5f * (1.0f + tfw__erff(v * r2)) + v * rpi * tfw__expf(-0.5f * v * v);
      o[i] = g[i] * d;
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      float v = *(const float *)(p[1] + i * s[1]), gv = *(const float *)(p[2] + i * s[2]);
      float d = 0.5f * (1.0f + tfw__erff(v * r2)) + v * rpi * tfw__expf(-0.5f * v * v);
      *(float *)(p[0] + i * s[0]) = gv * d;
    }
  }
}
static void gelu_bwd_f64(int64_t n, char **p, const int64_t *s, void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; i++) {
    double v = *(const double *)(p[1] + i * s[1]), gv = *(const double *)(p[2] + i * s[2]);
    double d = 0.5 * (1.0 + erf(v * M_SQRT1_2)) + v * 0.5 * M_2_SQRTPI * M_SQRT1_2 * exp(-0.5 * v * v);
    *(double *)(p[0] + i * s[0]) = gv * d;
  }
}

static TFW_CLONES void glu_f32(int64_t n, char **p, const int64_t *s, void *ctx) {
  (void)ctx;
  if (s[0] == 4 && s[1] == 4 && s[2] == 4) {
    float *restrict o = (float *)p[0];
    const float *restrict a = (const float *)p[1], *restrict b = (const float *)p[2];
    for (int64_t i = 0; i < n; i++) o[i] = a[i] * tfw__sigmoidf(b[i]);
  } else {
    for (int64_t i = 0; i < n; i++)
      *(float *)(p[0] + i * s[0]) =
          *(const float *)(p[1] + i * s[1]) * tfw__sigmoidf(*(const float *)(p[2] + i * s[2]));
  }
}
static void glu_f64(int64_t n, char **p, const int64_t *s, void *ctx) {
  (void)ctx;
  for (int64_t i = 0; i < n; i++) {
    double b = *(const double *)(p[2] + i * s[2]);
    *(double *)(p[0] + i * s[0]) = *(const double *)(p[1] + i * s[1]) / (1.0 + exp(-b));
  }
}

#define PICK(OP) \
  case TFW__OP_##OP: return f64 ? OP##_f64 : OP##_f32;
static tfw__loop_fn act_loop(tfw__op_id id, bool f64) {
  switch (id) {
    PICK(leaky_relu) PICK(elu) PICK(selu) PICK(celu) PICK(gelu_tanh) PICK(silu) PICK(mish)
    PICK(hardswish) PICK(hardsigmoid) PICK(softplus) PICK(softsign) PICK(glu)
  default:
    return NULL;
  }
}

/* ---- inference and kernels -------------------------------------------------------------- */

static tfw_status check_attrs(const tfw__call *c) {
  const char *name = c->op->name;
  switch (c->op->id) {
  case TFW__OP_celu:
    if (c->a.f[0] == 0 || c->a.f[0] != c->a.f[0])
      return tfw__error(TFW_EVALUE, "celu: alpha must be nonzero, got %g", c->a.f[0]);
    break;
  case TFW__OP_softplus:
    if (c->a.f[0] == 0 || c->a.f[0] != c->a.f[0])
      return tfw__error(TFW_EVALUE, "softplus: beta must be nonzero, got %g", c->a.f[0]);
    break;
  default:
    (void)name;
    break;
  }
  return TFW_OK;
}

tfw_status tfw__infer_act(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  if (tfw__check_float(c->op->name, "input", x)) return TFW_EDTYPE;
  tfw_status st = check_attrs(c);
  if (st) return st;
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  return TFW_OK;
}

/* Runs fn over (out, ins...) in compute dtype f32/f64, casting in and out where needed. */
static tfw_status run_act(tfw_tensor *out, int nin, const tfw_tensor *const *in,
                          tfw__loop_fn fn, act_p *P) {
  bool f64 = out->dtype == TFW_DTYPE_F64;
  tfw_dtype ct = f64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  const tfw_tensor *ops[4];
  tfw_tensor *tmp[3] = {NULL, NULL, NULL};
  tfw_status st = TFW_OK;
  tfw_tensor *dst = out;
  if (out->dtype != ct && !(dst = tfw__tensor_new("activation", ct, out->ndim, out->shape)))
    return tfw_last_status();
  ops[0] = dst;
  for (int i = 0; i < nin; i++) {
    if (in[i]->dtype != ct) {
      if (!(tmp[i] = tfw__as_contiguous(in[i], ct))) {
        st = tfw_last_status();
        goto done;
      }
      ops[i + 1] = tmp[i];
    } else {
      ops[i + 1] = in[i];
    }
  }
  tfw__iter it;
  tfw__iter_init(&it, nin + 1, ops, out->ndim, out->shape);
  tfw__iter_run(&it, TFW__GRAIN_EW / 4, fn, P);
  if (dst != out) st = tfw__copy_cast(out, dst);
done:
  for (int i = 0; i < nin; i++) tfw_release(tmp[i]);
  if (dst != out) tfw_release(dst);
  return st;
}

tfw_status tfw__kernel_act(const tfw__call *c, tfw_tensor **out) {
  act_p P = {(float)c->a.f[0], (float)c->a.f[1], c->a.f[0], c->a.f[1]};
  if (c->op->id == TFW__OP_softplus && isinf(P.bd) && P.bd > 0) P.b = INFINITY;
  tfw__loop_fn fn = act_loop(c->op->id, out[0]->dtype == TFW_DTYPE_F64);
  return run_act(out[0], 1, c->in, fn, &P);
}

tfw_status tfw__infer_glu(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  if (tfw__check_float("glu", "input", x)) return TFW_EDTYPE;
  if (x->ndim == 0) return tfw__error(TFW_ESHAPE, "glu: input must have at least 1 dimension");
  if (c->a.i[0] < -x->ndim || c->a.i[0] >= x->ndim)
    return tfw__error(TFW_EINDEX, "glu: dim %lld out of range for a tensor of %d dimensions",
                      (long long)c->a.i[0], x->ndim);
  int d = (int)(c->a.i[0] < 0 ? c->a.i[0] + x->ndim : c->a.i[0]);
  if (x->shape[d] % 2)
    return tfw__error(TFW_ESHAPE, "glu: halving dimension %d must be even, got size %lld", d,
                      (long long)x->shape[d]);
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  out->shape[d] /= 2;
  return TFW_OK;
}

tfw_status tfw__kernel_glu(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x = c->in[0];
  int d = (int)(c->a.i[0] < 0 ? c->a.i[0] + x->ndim : c->a.i[0]);
  bool f64 = out[0]->dtype == TFW_DTYPE_F64;
  tfw_tensor *xc = tfw__as_contiguous(x, f64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32);
  if (!xc) return tfw_last_status();
  int64_t st_[TFW_MAX_DIMS];
  tfw__contiguous_strides(x->ndim, x->shape, st_);
  int64_t h = x->shape[d] / 2;
  tfw_tensor *a = tfw__tensor_view(xc, x->ndim, out[0]->shape, st_, xc->offset);
  tfw_tensor *b = tfw__tensor_view(xc, x->ndim, out[0]->shape, st_, xc->offset + h * st_[d]);
  tfw_status st = TFW_OK;
  if (!a || !b) st = tfw_last_status();
  else {
    const tfw_tensor *in[2] = {a, b};
    st = run_act(out[0], 2, in, act_loop(TFW__OP_glu, f64), NULL);
  }
  tfw_release(a), tfw_release(b), tfw_release(xc);
  return st;
}

tfw_status tfw__infer_gelu_backward(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0], *g = c->in[1];
  if (tfw__check_float("gelu_backward", "x", x) || tfw__check_float("gelu_backward", "grad", g))
    return TFW_EDTYPE;
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (x->ndim != g->ndim || memcmp(x->shape, g->shape, sizeof(int64_t) * (size_t)x->ndim))
    return tfw__error(TFW_ESHAPE, "gelu_backward: x %s and grad %s must have the same shape",
                      tfw__shape_str(b1, sizeof b1, x->ndim, x->shape),
                      tfw__shape_str(b2, sizeof b2, g->ndim, g->shape));
  if (x->dtype != g->dtype)
    return tfw__error(TFW_EDTYPE, "gelu_backward: x (%s) and grad (%s) must have one dtype",
                      tfw_dtype_name(x->dtype), tfw_dtype_name(g->dtype));
  out->dtype = x->dtype;
  out->ndim = x->ndim;
  memcpy(out->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
  return TFW_OK;
}

tfw_status tfw__kernel_gelu_backward(const tfw__call *c, tfw_tensor **out) {
  bool f64 = out[0]->dtype == TFW_DTYPE_F64;
  return run_act(out[0], 2, c->in, f64 ? gelu_bwd_f64 : gelu_bwd_f32, NULL);
}

tfw_tensor *tfw__gelu_backward(const tfw_tensor *x, const tfw_tensor *g) {
  const tfw_tensor *in[2] = {x, g};
  tfw__call c;
  tfw__call_init(&c, TFW__OP_gelu_backward, 2, in);
  return tfw__op_run(&c);
}

/* ---- samples -------------------------------------------------------------------------------- */

int tfw__sample_act(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s34[2] = {3, 4}, s45[2] = {4, 5}, s6[1] = {6};
  struct { tfw_dtype dt; int nd; const int64_t *s; tfw__layout l; double f0, f1; } spec[] = {
      {TFW_DTYPE_F32, 2, s34, TFW__LAYOUT_CONTIGUOUS, 0.2, 20},
      {TFW_DTYPE_F64, 2, s45, TFW__LAYOUT_STRIDED, 1.5, 1.0},
      {TFW_DTYPE_BF16, 1, s6, TFW__LAYOUT_CONTIGUOUS, 0.7, 2.0},
      {TFW_DTYPE_F64, 2, s34, TFW__LAYOUT_BROADCAST, 0.5, 20},
  };
  int n = 0;
  for (size_t k = 0; k < sizeof spec / sizeof spec[0] && n < cap; k++) {
    /* values away from the kinks (0, +-3 and softplus' threshold) so that finite
     * differences see one branch */
    const tfw_tensor *a = tfw__sample_tensor(spec[k].dt, spec[k].nd, spec[k].s, -4.5, 4.5,
                                             13 * k + 5, spec[k].l);
    if (!a) break;
    tfw__call_init(&calls[n], op->id, 1, &a);
    calls[n].a.f[0] = spec[k].f0;
    calls[n].a.f[1] = spec[k].f1;
    n++;
  }
  return n;
}

int tfw__sample_gelu_backward(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s1[2] = {3, 5}, s2[3] = {2, 3, 4};
  const struct { tfw_dtype dt; int nd; const int64_t *s; tfw__layout l; } spec[3] = {
      {TFW_DTYPE_F32, 2, s1, TFW__LAYOUT_CONTIGUOUS},
      {TFW_DTYPE_F64, 3, s2, TFW__LAYOUT_STRIDED},
      {TFW_DTYPE_BF16, 2, s1, TFW__LAYOUT_CONTIGUOUS}};
  int n = 0;
  for (int k = 0; k < 3 && n < cap; k++) {
    const tfw_tensor *in[2] = {
        tfw__sample_tensor(spec[k].dt, spec[k].nd, spec[k].s, -6, 6, 40 + (uint64_t)k, spec[k].l),
        tfw__sample_tensor(spec[k].dt, spec[k].nd, spec[k].s, -2, 2, 50 + (uint64_t)k, spec[k].l)};
    if (!in[0] || !in[1]) break;
    tfw__call_init(&calls[n++], op->id, 2, in);
  }
  return n;
}

int tfw__sample_glu(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s1[2] = {3, 4}, s2[3] = {2, 6, 3};
  int n = 0;
  if (cap < 3) return 0;
  const tfw_tensor *a = tfw__sample_tensor(TFW_DTYPE_F32, 2, s1, -3, 3, 1, TFW__LAYOUT_CONTIGUOUS);
  tfw__call_init(&calls[n], op->id, 1, &a);
  calls[n++].a.i[0] = -1;
  a = tfw__sample_tensor(TFW_DTYPE_F64, 3, s2, -3, 3, 2, TFW__LAYOUT_STRIDED);
  tfw__call_init(&calls[n], op->id, 1, &a);
  calls[n++].a.i[0] = 1;
  a = tfw__sample_tensor(TFW_DTYPE_F16, 3, s2, -3, 3, 3, TFW__LAYOUT_CONTIGUOUS);
  tfw__call_init(&calls[n], op->id, 1, &a);
  calls[n++].a.i[0] = 1;
  return n;
}

/* ---- public wrappers ------------------------------------------------------------------------ */

tfw_tensor *tfw__act(tfw__op_id id, const tfw_tensor *x, double f0, double f1) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &x);
  c.a.f[0] = f0;
  c.a.f[1] = f1;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_leaky_relu(const tfw_tensor *x, double negative_slope) {
  return tfw__act(TFW__OP_leaky_relu, x, negative_slope, 0);
}
tfw_tensor *tfw_elu(const tfw_tensor *x, double alpha) { return tfw__act(TFW__OP_elu, x, alpha, 0); }
tfw_tensor *tfw_selu(const tfw_tensor *x) { return tfw__act(TFW__OP_selu, x, 0, 0); }
tfw_tensor *tfw_celu(const tfw_tensor *x, double alpha) { return tfw__act(TFW__OP_celu, x, alpha, 0); }
tfw_tensor *tfw_gelu_tanh(const tfw_tensor *x) { return tfw__act(TFW__OP_gelu_tanh, x, 0, 0); }
tfw_tensor *tfw_silu(const tfw_tensor *x) { return tfw__act(TFW__OP_silu, x, 0, 0); }
tfw_tensor *tfw_mish(const tfw_tensor *x) { return tfw__act(TFW__OP_mish, x, 0, 0); }
tfw_tensor *tfw_hardswish(const tfw_tensor *x) { return tfw__act(TFW__OP_hardswish, x, 0, 0); }
tfw_tensor *tfw_hardsigmoid(const tfw_tensor *x) { return tfw__act(TFW__OP_hardsigmoid, x, 0, 0); }
tfw_tensor *tfw_softplus(const tfw_tensor *x, double beta, double threshold) {
  return tfw__act(TFW__OP_softplus, x, beta, threshold);
}
tfw_tensor *tfw_softsign(const tfw_tensor *x) { return tfw__act(TFW__OP_softsign, x, 0, 0); }

tfw_tensor *tfw_glu(const tfw_tensor *x, int dim) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_glu, 1, &x);
  c.a.i[0] = dim;
  return tfw__op_run(&c);
}

/* geglu / swiglu / reglu: x split in halves (a, b) along dim, a * act(b), like glu. */
static tfw_tensor *gated(const tfw_tensor *x, int dim, tfw_tensor *(*act)(const tfw_tensor *)) {
  if (tfw__check_tensor("gated activation", "input", x)) return NULL;
  int d = tfw__wrap_dim("gated activation", dim, x->ndim);
  if (d < 0) return NULL;
  if (x->shape[d] % 2) {
    tfw__error(TFW_ESHAPE, "gated activation: halving dimension %d must be even, got size %lld",
               d, (long long)x->shape[d]);
    return NULL;
  }
  int64_t h = x->shape[d] / 2;
  tfw_tensor *a = tfw_narrow(x, d, 0, h), *b = tfw_narrow(x, d, h, h);
  tfw_tensor *g = b ? act(b) : NULL;
  tfw_tensor *r = a && g ? tfw_mul(a, g) : NULL;
  tfw_release(a), tfw_release(b), tfw_release(g);
  return r;
}
tfw_tensor *tfw_geglu(const tfw_tensor *x, int dim) { return gated(x, dim, tfw_gelu); }
tfw_tensor *tfw_swiglu(const tfw_tensor *x, int dim) { return gated(x, dim, tfw_silu); }
tfw_tensor *tfw_reglu(const tfw_tensor *x, int dim) { return gated(x, dim, tfw_relu); }
