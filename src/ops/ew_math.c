/* Inner loops of the floating-point unary functions (sqrt, exp, log, tanh, sigmoid, erf,
 * gelu, ...), for float32 and float64. f16/bf16 inputs are computed through these f32
 * loops. The f32 loops call the branch-free approximations of src/cpu/vmath.h where they
 * exist (so the loops vectorise) and libm otherwise. */
#include <math.h>

#include "cpu/vmath.h"
#include "ops/elementwise.h"

#define DEF_F(NAME, T, EXPR)                                                          \
  static TFW__CLONES void NAME(int64_t n, char **p, const int64_t *s, void *ctx) {    \
    (void)ctx;                                                                        \
    if (s[0] == sizeof(T) && s[1] == sizeof(T)) {                                     \
      T *restrict o = (T *)p[0];                                                      \
      const T *restrict a = (const T *)p[1];                                          \
      for (int64_t i = 0; i < n; i++) {                                               \
        T x = a[i];                                                                   \
        o[i] = (EXPR);                                                                \
      }                                                                               \
    } else {                                                                          \
      for (int64_t i = 0; i < n; i++) {                                               \
        T x = *(const T *)(p[1] + i * s[1]);                                          \
        *(T *)(p[0] + i * s[0]) = (EXPR);                                             \
      }                                                                               \
    }                                                                                 \
  }

#define SQRT1_2 0.70710678118654752440

DEF_F(sqrt_f32, float, sqrtf(x))
DEF_F(sqrt_f64, double, sqrt(x))
DEF_F(rsqrt_f32, float, 1.0f / sqrtf(x))
DEF_F(rsqrt_f64, double, 1.0 / sqrt(x))
DEF_F(exp_f32, float, tfw__expf(x))
DEF_F(exp_f64, double, exp(x))
DEF_F(exp2_f32, float, exp2f(x))
DEF_F(exp2_f64, double, exp2(x))
DEF_F(log_f32, float, tfw__logf(x))
DEF_F(log_f64, double, log(x))
DEF_F(log2_f32, float, log2f(x))
DEF_F(log2_f64, double, log2(x))
DEF_F(log1p_f32, float, tfw__log1pf(x))
DEF_F(log1p_f64, double, log1p(x))
DEF_F(expm1_f32, float, tfw__expm1f(x))
DEF_F(expm1_f64, double, expm1(x))
DEF_F(sin_f32, float, sinf(x))
DEF_F(sin_f64, double, sin(x))
DEF_F(cos_f32, float, cosf(x))
DEF_F(cos_f64, double, cos(x))
DEF_F(tan_f32, float, tanf(x))
DEF_F(tan_f64, double, tan(x))
DEF_F(tanh_f32, float, tfw__tanhf(x))
DEF_F(tanh_f64, double, tanh(x))
DEF_F(sigmoid_f32, float, tfw__sigmoidf(x))
DEF_F(sigmoid_f64, double, 1.0 / (1.0 + exp(-x)))
DEF_F(erf_f32, float, tfw__erff(x))
DEF_F(erf_f64, double, erf(x))
DEF_F(gelu_f32, float, tfw__geluf(x))
DEF_F(gelu_f64, double, 0.5 * x * (1.0 + erf(x * SQRT1_2)))

#define SEL(OP)                                        \
  case TFW__OP_##OP:                                   \
    return ct == TFW_DTYPE_F32 ? OP##_f32 : (ct == TFW_DTYPE_F64 ? OP##_f64 : NULL);

tfw__loop_fn tfw__ew_float_unary_loop(tfw__op_id id, tfw_dtype ct) {
  switch (id) {
    SEL(sqrt) SEL(rsqrt) SEL(exp) SEL(exp2) SEL(log) SEL(log2) SEL(log1p) SEL(expm1)
    SEL(sin) SEL(cos) SEL(tan) SEL(tanh) SEL(sigmoid) SEL(erf) SEL(gelu)
  default:
    return NULL;
  }
}
