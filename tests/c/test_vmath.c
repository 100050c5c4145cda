/* Accuracy tests for src/cpu/vmath.h against libm in double precision.
 *
 * Each function runs inside a vectorised loop (target_clones, the way the elementwise
 * kernels will call it) over a sweep of float bit patterns that covers the whole range
 * (both signs, denormals, infinities, NaNs), and the error is measured in ulps of the
 * correctly rounded float result (denormal ulp = 2^-149). The scalar (non-vectorised) call
 * must give the same bits as the vector loop. Bounds: 2 ulp for exp, log, log1p, expm1,
 * tanh, sigmoid; 4 ulp for erf and gelu. Measured maxima (step-31 sweep, 1.4e8 points):
 * exp 0.95, log 0.80, log1p 1.44, expm1 1.48, tanh 1.32, sigmoid 1.39, erf 1.85 (1.48 after
 * the two-part exp), gelu 2.81. */
#include <stdlib.h>
#include <string.h>

#include "cpu/vmath.h"
#include "harness.h"

#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#define LOOP(NAME, F)                                                                  \
  CLONES static void loop_##NAME(int64_t n, const float *restrict x, float *restrict y) { \
    for (int64_t i = 0; i < n; i++) y[i] = F(x[i]);                                     \
  }                                                                                    \
  __attribute__((noinline)) static float one_##NAME(float x) { return F(x); }
LOOP(exp, tfw__expf)
LOOP(log, tfw__logf)
LOOP(log1p, tfw__log1pf)
LOOP(expm1, tfw__expm1f)
LOOP(tanh, tfw__tanhf)
LOOP(sigmoid, tfw__sigmoidf)
LOOP(erf, tfw__erff)
LOOP(gelu, tfw__geluf)

static double ref_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double ref_gelu(double x) { return x < -40 ? -0.0 : 0.5 * x * erfc(-x / sqrt(2.0)); }

static float u2f(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint32_t f2u(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* Error of got in ulps of the float nearest to ref; 1e9 for a wrong NaN / inf / sign. */
static double ulp_error(float got, double ref) {
  if (isnan(ref)) return isnan(got) ? 0 : 1e9;
  if (isnan(got)) return 1e9;
  float rf = (float)ref;
  if (isinf(rf)) return (isinf(got) && (got > 0) == (rf > 0)) ? 0 : 1e9;
  if (isinf(got)) return 1e9;
  int e;
  frexp(fabs(ref), &e); /* |ref| in [2^(e-1), 2^e) */
  double ulp = ldexp(1.0, e - 1 - 23);
  if (ulp < 0x1p-149) ulp = 0x1p-149;
  return fabs((double)got - ref) / ulp;
}

typedef struct {
  const char *name;
  void (*loop)(int64_t, const float *restrict, float *restrict);
  float (*one)(float);
  double (*ref)(double);
  double bound;
} fn_case;

static const fn_case cases[] = {
    {"expf", loop_exp, one_exp, exp, 2},
    {"logf", loop_log, one_log, log, 2},
    {"log1pf", loop_log1p, one_log1p, log1p, 2},
    {"expm1f", loop_expm1, one_expm1, expm1, 2},
    {"tanhf", loop_tanh, one_tanh, tanh, 2},
    {"sigmoidf", loop_sigmoid, one_sigmoid, ref_sigmoid, 2},
    {"erff", loop_erf, one_erf, erf, 4},
    {"geluf", loop_gelu, one_gelu, ref_gelu, 4},
};

#define CHUNK 65536

/* Sweeps bit patterns b = start + k * step over all 2^32 patterns. */
static void sweep(const fn_case *c, uint64_t step, uint64_t start) {
  float *x = malloc(sizeof(float) * CHUNK), *y = malloc(sizeof(float) * CHUNK);
  double worst = 0;
  float worst_x = 0;
  int64_t checked = 0, scalar_mismatch = 0;
  for (uint64_t b = start; b < (UINT64_C(1) << 32);) {
    int n = 0;
    for (; n < CHUNK && b < (UINT64_C(1) << 32); n++, b += step) x[n] = u2f((uint32_t)b);
    c->loop(n, x, y);
    for (int i = 0; i < n; i++) {
      double e = ulp_error(y[i], c->ref((double)x[i]));
      if (e > worst) {
        worst = e;
        worst_x = x[i];
      }
      if (i % 61 == 0) { /* scalar path: same bits */
        float s = c->one(x[i]);
        if (f2u(s) != f2u(y[i]) && !(isnan(s) && isnan(y[i]))) scalar_mismatch++;
      }
    }
    checked += n;
  }
  cr_expect(worst <= c->bound, "%s: %.3f ulp at x = %a (got %a, libm %a); bound %.1f", c->name,
            worst, worst_x, c->one(worst_x), c->ref((double)worst_x), c->bound);
  cr_expect_eq(scalar_mismatch, 0, "%s: %lld scalar results differ from the vector loop", c->name,
               (long long)scalar_mismatch);
  cr_log_info("%s: max %.3f ulp over %lld points (at %a)", c->name, worst, (long long)checked,
              worst_x);
  free(x);
  free(y);
}

/* ~4.4M points per function over the whole float range, plus a dense sweep of the range
 * where each function does its real work (all floats with |x| in [2^-3, 2^4): 2^22 of them
 * per sign, sampled with step 29). */
Test(vmath, whole_range, .timeout = 60) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    sweep(&cases[k], 977, 5);
  }
}

static void dense(const fn_case *c, float lo, float hi, uint32_t step) {
  float *x = malloc(sizeof(float) * CHUNK), *y = malloc(sizeof(float) * CHUNK);
  double worst = 0;
  float worst_x = 0;
  for (int sign = 0; sign < 2; sign++) {
    uint32_t b0 = f2u(lo), b1 = f2u(hi);
    for (uint32_t b = b0; b < b1;) {
      int n = 0;
      for (; n < CHUNK && b < b1; n++, b += step) x[n] = sign ? -u2f(b) : u2f(b);
      c->loop(n, x, y);
      for (int i = 0; i < n; i++) {
        double e = ulp_error(y[i], c->ref((double)x[i]));
        if (e > worst) {
          worst = e;
          worst_x = x[i];
        }
      }
    }
  }
  cr_expect(worst <= c->bound, "%s dense: %.3f ulp at x = %a (got %a, libm %a)", c->name, worst,
            worst_x, c->one(worst_x), c->ref((double)worst_x));
  free(x);
  free(y);
}

Test(vmath, working_ranges, .timeout = 60) {
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) dense(&cases[k], 0.125f, 16.0f, 29);
  /* the far tails where exp / erfc go denormal */
  dense(&cases[0], 80.0f, 104.0f, 3);   /* expf overflow / underflow edges */
  dense(&cases[7], 2.0f, 15.0f, 3);     /* gelu negative tail */
  dense(&cases[5], 60.0f, 104.0f, 3);   /* sigmoid denormal results */
  dense(&cases[2], 1e-8f, 0.125f, 13);  /* log1p near 0 */
  dense(&cases[3], 1e-8f, 0.125f, 13);  /* expm1 near 0 */
}

/* Exact results at the special points. */
Test(vmath, special_values) {
  const float inf = INFINITY, nan = NAN, den = 0x1p-149f, fmin = 0x1p-126f;
  struct { const char *fn; float x, want; } sp[] = {
      {"expf", 0.0f, 1.0f},        {"expf", -0.0f, 1.0f},     {"expf", inf, inf},
      {"expf", -inf, 0.0f},        {"expf", 89.0f, inf},      {"expf", -104.0f, 0.0f},
      {"expf", 1e30f, inf},        {"expf", -1e30f, 0.0f},    {"expf", den, 1.0f},
      {"logf", 1.0f, 0.0f},        {"logf", 0.0f, -inf},      {"logf", -0.0f, -inf},
      {"logf", inf, inf},          {"logf", -1.0f, nan},      {"logf", -inf, nan},
      {"logf", -den, nan},         {"log1pf", 0.0f, 0.0f},    {"log1pf", -0.0f, -0.0f},
      {"log1pf", -1.0f, -inf},     {"log1pf", -2.0f, nan},    {"log1pf", inf, inf},
      {"log1pf", -inf, nan},       {"log1pf", den, den},      {"log1pf", -den, -den},
      {"expm1f", 0.0f, 0.0f},      {"expm1f", -0.0f, -0.0f},  {"expm1f", inf, inf},
      {"expm1f", -inf, -1.0f},     {"expm1f", den, den},      {"expm1f", -den, -den},
      {"expm1f", fmin, fmin},      {"expm1f", 100.0f, inf},   {"tanhf", 0.0f, 0.0f},
      {"tanhf", -0.0f, -0.0f},     {"tanhf", inf, 1.0f},      {"tanhf", -inf, -1.0f},
      {"tanhf", den, den},         {"tanhf", 20.0f, 1.0f},    {"sigmoidf", 0.0f, 0.5f},
      {"sigmoidf", inf, 1.0f},     {"sigmoidf", -inf, 0.0f},  {"sigmoidf", -200.0f, 0.0f},
      {"sigmoidf", 200.0f, 1.0f},  {"erff", 0.0f, 0.0f},      {"erff", -0.0f, -0.0f},
      {"erff", inf, 1.0f},         {"erff", -inf, -1.0f},     {"erff", 5.0f, 1.0f},
      {"erff", -1e30f, -1.0f},     {"geluf", 0.0f, 0.0f},     {"geluf", -0.0f, -0.0f},
      {"geluf", inf, inf},         {"geluf", -inf, -0.0f},    {"geluf", -1e30f, -0.0f},
      {"geluf", 1e30f, 1e30f},     {"geluf", 20.0f, 20.0f},
  };
  for (size_t i = 0; i < sizeof sp / sizeof sp[0]; i++) {
    const fn_case *c = NULL;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
      if (strcmp(cases[k].name, sp[i].fn) == 0) c = &cases[k];
    cr_assert(c);
    float xs[8], ys[8];
    for (int j = 0; j < 8; j++) xs[j] = sp[i].x; /* through the vector loop too */
    c->loop(8, xs, ys);
    float got[2] = {c->one(sp[i].x), ys[7]};
    for (int j = 0; j < 2; j++) {
      if (isnan(sp[i].want)) {
        cr_expect(isnan(got[j]), "%s(%a) = %a, expected nan", sp[i].fn, sp[i].x, got[j]);
      } else {
        cr_expect(f2u(got[j]) == f2u(sp[i].want), "%s(%a) = %a, expected %a (%s)", sp[i].fn,
                  sp[i].x, got[j], sp[i].want, j ? "vector" : "scalar");
      }
    }
  }
  /* NaN in, NaN out, for every function */
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    cr_expect(isnan(cases[k].one(nan)) && isnan(cases[k].one(-nan)), "%s(nan)", cases[k].name);
  }
}
