/* Tests for the Philox generator and the random ops (rand, randn, randint, bernoulli).
 *
 * Truth: Random123's known-answer vectors for Philox4x32-10; for the ops, a reference loop
 * here that rebuilds every element from (seed, offset, i) with the documented conversions
 * (random.c's header), and statistics (moments, Kolmogorov-Smirnov, bin counts). */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

static const double TWO_PI = 6.283185307179586476925286766559;

Test(random, philox_known_answers) {
  struct { uint32_t ctr[4], key[2], out[4]; } kat[3] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (int k = 0; k < 3; k++) {
    uint32_t out[4];
    tfw__philox4x32_10(kat[k].ctr, kat[k].key, out);
    for (int j = 0; j < 4; j++)
      cr_assert_eq(out[j], kat[k].out[j], "vector %d word %d: %08x, expected %08x", k, j, out[j],
                   kat[k].out[j]);
  }
}

Test(random, default_seed_and_state) {
  cr_assert_eq(tfw_initial_seed(), UINT64_C(67280421310721));
  uint64_t s, o;
  tfw_rng_get_state(&s, &o);
  cr_assert_eq(s, UINT64_C(67280421310721));
  cr_assert_eq(o, 0);
  tfw_manual_seed(42);
  cr_assert_eq(tfw_initial_seed(), 42);
  int64_t shape[1] = {10}; /* f32: 3 blocks; f64: 5 blocks */
  tfw_tensor *a = tfw_rand(TFW_DTYPE_F32, 1, shape);
  tfw_rng_get_state(&s, &o);
  cr_assert_eq(o, 3, "offset %llu after 10 f32 draws", (unsigned long long)o);
  tfw_tensor *b = tfw_rand(TFW_DTYPE_F64, 1, shape);
  tfw_rng_get_state(&s, &o);
  cr_assert_eq(o, 8);
  tfw_tensor *c = tfw_randint(0, 5, TFW_DTYPE_I64, 1, shape);
  tfw_rng_get_state(&s, &o);
  cr_assert_eq(o, 13);
  tfw_release(a);
  tfw_release(b);
  tfw_release(c);
  th_expect_no_leaks();
}

/* ---- reference: every element from (seed, offset, i) -------------------------------- */
static void block(uint64_t seed, uint64_t c, uint32_t w[4]) {
  uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  tfw__philox4x32_10(ctr, key, w);
}

static double ref_value(tfw__op_id op, tfw_dtype dt, uint64_t seed, uint64_t off, int64_t i,
                        int64_t low, int64_t high) {
  uint32_t w[4];
  bool wide = op == TFW__OP_randint || dt == TFW_DTYPE_F64;
  int per = wide ? 2 : 4;
  block(seed, off + (uint64_t)(i / per), w);
  int j = (int)(i % per);
  if (op == TFW__OP_rand) {
    if (dt == TFW_DTYPE_F64) {
      uint64_t u = w[2 * j] | (uint64_t)w[2 * j + 1] << 32;
      return (double)(u >> 11) / 9007199254740992.0;
    }
    int bits = dt == TFW_DTYPE_F16 ? 11 : dt == TFW_DTYPE_BF16 ? 8 : 24;
    return (double)(w[j] >> (32 - bits)) / (double)(1u << bits);
  }
  if (op == TFW__OP_randn) {
    double u1, u2;
    if (dt == TFW_DTYPE_F64) {
      uint64_t a = w[0] | (uint64_t)w[1] << 32, b = w[2] | (uint64_t)w[3] << 32;
      u1 = ((double)(a >> 11) + 1.0) / 9007199254740992.0;
      u2 = (double)(b >> 11) / 9007199254740992.0;
    } else {
      int k = j / 2;
      u1 = ((double)w[2 * k] + 1.0) / 4294967296.0;
      u2 = (double)w[2 * k + 1] / 4294967296.0;
      j = j % 2;
    }
    double r = sqrt(-2.0 * log(u1));
    return j == 0 ? r * cos(TWO_PI * u2) : r * sin(TWO_PI * u2);
  }
  /* randint: low + floor(u64 * range / 2^64) */
  uint64_t u = w[2 * j] | (uint64_t)w[2 * j + 1] << 32;
  uint64_t range = (uint64_t)high - (uint64_t)low;
  uint64_t v = (uint64_t)(((unsigned __int128)u * range) >> 64);
  return (double)(int64_t)((uint64_t)low + v);
}

static void check_against_ref(tfw__op_id op, tfw_dtype dt, int ndim, const int64_t *shape,
                              int64_t low, int64_t high) {
  tfw_manual_seed(1234567);
  tfw_rng_set_state(1234567, 99); /* nonzero offset */
  tfw_tensor *t = op == TFW__OP_rand    ? tfw_rand(dt, ndim, shape)
                  : op == TFW__OP_randn ? tfw_randn(dt, ndim, shape)
                                        : tfw_randint(low, high, dt, ndim, shape);
  cr_assert(t, "%s %s: %s", tfw__ops[op].name, tfw_dtype_name(dt), tfw_last_error());
  int64_t n = tfw_tensor_numel(t);
  double *ref = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) {
    double v = ref_value(op, dt, 1234567, 99, i, low, high);
    if (dt == TFW_DTYPE_F32) v = (float)v;
    else if (dt == TFW_DTYPE_F16) v = tfw_f16_to_f32(tfw_f32_to_f16((float)v));
    else if (dt == TFW_DTYPE_BF16) v = tfw_bf16_to_f32(tfw_f32_to_bf16((float)v));
    else if (dt == TFW_DTYPE_BOOL) v = v != 0;
    ref[i] = v;
  }
  char what[64];
  snprintf(what, sizeof what, "%s %s", tfw__ops[op].name, tfw_dtype_name(dt));
  double rtol = op == TFW__OP_randn ? 1e-12 : 0; /* libm may differ in the last bit */
  th_expect_close(t, dt, ndim, shape, ref, rtol, op == TFW__OP_randn ? 1e-12 : 0, what);
  free(ref);
  tfw_release(t);
}

Test(random, values_match_reference_loop) {
  int64_t shape[3] = {3, 5, 7}; /* 105: partial last block */
  tfw_dtype fl[4] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16};
  for (int k = 0; k < 4; k++) {
    check_against_ref(TFW__OP_rand, fl[k], 3, shape, 0, 0);
    check_against_ref(TFW__OP_randn, fl[k], 3, shape, 0, 0);
  }
  tfw_dtype all[9] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16, TFW_DTYPE_I8,
                      TFW_DTYPE_U8, TFW_DTYPE_I32, TFW_DTYPE_I64, TFW_DTYPE_BOOL};
  for (int k = 0; k < 9; k++) {
    int64_t lo = all[k] == TFW_DTYPE_U8 || all[k] == TFW_DTYPE_BOOL ? 0 : -7;
    int64_t hi = all[k] == TFW_DTYPE_BOOL ? 2 : 100;
    check_against_ref(TFW__OP_randint, all[k], 3, shape, lo, hi);
  }
  /* full int64 range */
  check_against_ref(TFW__OP_randint, TFW_DTYPE_I64, 1, shape, INT64_MIN, INT64_MAX);
  th_expect_no_leaks();
}

Test(random, scalar_and_empty) {
  tfw_tensor *s = tfw_rand(TFW_DTYPE_F32, 0, NULL);
  cr_assert(s && tfw_tensor_ndim(s) == 0 && tfw_tensor_numel(s) == 1, "%s", tfw_last_error());
  double v;
  cr_assert_eq(tfw_item(s, &v), TFW_OK);
  cr_assert(v >= 0 && v < 1);
  uint64_t s0, o0, s1, o1;
  tfw_rng_get_state(&s0, &o0);
  int64_t shape[2] = {0, 4};
  tfw_tensor *e = tfw_randn(TFW_DTYPE_F64, 2, shape);
  cr_assert(e && tfw_tensor_numel(e) == 0 && tfw_tensor_shape(e)[1] == 4, "%s", tfw_last_error());
  tfw_rng_get_state(&s1, &o1);
  cr_assert_eq(o1, o0, "an empty draw consumed counters");
  tfw_tensor *ep = tfw_zeros(TFW_DTYPE_F32, 2, shape);
  tfw_tensor *eb = tfw_bernoulli(ep);
  cr_assert(eb && tfw_tensor_numel(eb) == 0, "%s", tfw_last_error());
  tfw_release(s);
  tfw_release(e);
  tfw_release(ep);
  tfw_release(eb);
  th_expect_no_leaks();
}

/* ---- determinism -------------------------------------------------------------------- */
static void expect_same_bits(const tfw_tensor *a, const tfw_tensor *b, const char *what) {
  cr_assert(a && b, "%s: %s", what, tfw_last_error());
  cr_assert_eq(tfw_tensor_numel(a), tfw_tensor_numel(b));
  size_t bytes = (size_t)tfw_tensor_numel(a) * tfw_dtype_size(tfw_tensor_dtype(a));
  cr_assert(memcmp(tfw_tensor_data(a), tfw_tensor_data(b), bytes) == 0, "%s: results differ",
            what);
}

static tfw_tensor *draw(int which, const tfw_tensor *p) {
  int64_t shape[2] = {300, 1001}; /* 300300 elements: many parallel chunks */
  switch (which) {
  case 0: return tfw_rand(TFW_DTYPE_F32, 2, shape);
  case 1: return tfw_rand(TFW_DTYPE_F64, 2, shape);
  case 2: return tfw_randn(TFW_DTYPE_F32, 2, shape);
  case 3: return tfw_randn(TFW_DTYPE_BF16, 2, shape);
  case 4: return tfw_randint(-1000, 1000, TFW_DTYPE_I32, 2, shape);
  default: return tfw_bernoulli(p);
  }
}

Test(random, same_seed_same_numbers_any_thread_count) {
  int64_t shape[2] = {300, 1001};
  tfw_tensor *p = th_random(TFW_DTYPE_F32, 2, shape, 0.0, 1.0, 5);
  for (int which = 0; which < 6; which++) {
    tfw_set_num_threads(1);
    tfw_manual_seed(7);
    tfw_tensor *a = draw(which, p);
    tfw_set_num_threads(2);
    tfw_manual_seed(7);
    tfw_tensor *b = draw(which, p);
    tfw_set_num_threads(3);
    tfw_manual_seed(7);
    tfw_tensor *c = draw(which, p);
    expect_same_bits(a, b, "1 vs 2 threads");
    expect_same_bits(a, c, "1 vs 3 threads");
    tfw_manual_seed(8);
    tfw_tensor *d = draw(which, p);
    size_t bytes = (size_t)tfw_tensor_numel(a) * tfw_dtype_size(tfw_tensor_dtype(a));
    cr_assert(memcmp(tfw_tensor_data(a), tfw_tensor_data(d), bytes) != 0,
              "draw %d: seeds 7 and 8 gave the same numbers", which);
    tfw_release(a);
    tfw_release(b);
    tfw_release(c);
    tfw_release(d);
  }
  tfw_set_num_threads(0);
  tfw_release(p);
  th_expect_no_leaks();
}

Test(random, get_set_state_replays) {
  tfw_manual_seed(2024);
  int64_t shape[1] = {1000};
  tfw_tensor *warm = tfw_rand(TFW_DTYPE_F32, 1, shape);
  uint64_t s, o;
  tfw_rng_get_state(&s, &o);
  tfw_tensor *a = tfw_randn(TFW_DTYPE_F32, 1, shape);
  tfw_tensor *b = tfw_rand(TFW_DTYPE_F64, 1, shape);
  tfw_rng_set_state(s, o);
  tfw_tensor *a2 = tfw_randn(TFW_DTYPE_F32, 1, shape);
  tfw_tensor *b2 = tfw_rand(TFW_DTYPE_F64, 1, shape);
  expect_same_bits(a, a2, "replayed randn");
  expect_same_bits(b, b2, "replayed rand");
  /* consecutive draws don't overlap */
  tfw_tensor *c = tfw_randn(TFW_DTYPE_F32, 1, shape);
  cr_assert(memcmp(tfw_tensor_data(a), tfw_tensor_data(c), 4000) != 0);
  tfw_release(warm);
  tfw_release(a);
  tfw_release(b);
  tfw_release(a2);
  tfw_release(b2);
  tfw_release(c);
  th_expect_no_leaks();
}

/* ---- statistics ------------------------------------------------------------------------ */
static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Kolmogorov-Smirnov statistic sqrt(n) * D of v (sorted in place) against cdf. */
static double ks(double *v, int64_t n, double (*cdf)(double)) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  double d = 0;
  for (int64_t i = 0; i < n; i++) {
    double f = cdf(v[i]);
    double lo = f - (double)i / (double)n, hi = (double)(i + 1) / (double)n - f;
    if (lo > d) d = lo;
    if (hi > d) d = hi;
  }
  return d * sqrt((double)n);
}
static double cdf_uniform(double x) { return x < 0 ? 0 : x > 1 ? 1 : x; }
static double cdf_normal(double x) { return 0.5 * erfc(-x / sqrt(2.0)); }

static void moments(const double *v, int64_t n, double *mean, double *var) {
  double s = 0, s2 = 0;
  for (int64_t i = 0; i < n; i++) s += v[i];
  *mean = s / (double)n;
  for (int64_t i = 0; i < n; i++) s2 += (v[i] - *mean) * (v[i] - *mean);
  *var = s2 / (double)(n - 1);
}

Test(random, uniform_statistics) {
  tfw_manual_seed(11);
  int64_t shape[1] = {1000000};
  tfw_dtype dts[2] = {TFW_DTYPE_F32, TFW_DTYPE_F64};
  for (int k = 0; k < 2; k++) {
    tfw_tensor *t = tfw_rand(dts[k], 1, shape);
    double *v = th_values(t);
    double mean, var;
    moments(v, shape[0], &mean, &var);
    for (int64_t i = 0; i < shape[0]; i++) cr_assert(v[i] >= 0 && v[i] < 1, "value %g", v[i]);
    /* sd of the mean: 0.2887 / 1000; of the variance: ~0.075 / 1000. 6 sigma bounds. */
    cr_assert(fabs(mean - 0.5) < 1.8e-3, "%s mean %g", tfw_dtype_name(dts[k]), mean);
    cr_assert(fabs(var - 1.0 / 12) < 5e-4, "%s var %g", tfw_dtype_name(dts[k]), var);
    double k_s = ks(v, shape[0], cdf_uniform);
    cr_assert(k_s < 1.95, "%s KS sqrt(n) D = %g (p < 0.001)", tfw_dtype_name(dts[k]), k_s);
    free(v);
    tfw_release(t);
  }
  /* half types: exact grid values, never 1 */
  int64_t small[1] = {20000};
  tfw_tensor *h = tfw_rand(TFW_DTYPE_F16, 1, small), *bh = tfw_rand(TFW_DTYPE_BF16, 1, small);
  double *vh = th_values(h), *vb = th_values(bh);
  for (int64_t i = 0; i < small[0]; i++) {
    cr_assert(vh[i] >= 0 && vh[i] < 1 && vh[i] * 2048 == floor(vh[i] * 2048), "f16 %g", vh[i]);
    cr_assert(vb[i] >= 0 && vb[i] < 1 && vb[i] * 256 == floor(vb[i] * 256), "bf16 %g", vb[i]);
  }
  free(vh);
  free(vb);
  tfw_release(h);
  tfw_release(bh);
  th_expect_no_leaks();
}

Test(random, normal_statistics) {
  tfw_manual_seed(12);
  int64_t shape[2] = {1000, 1000};
  tfw_dtype dts[2] = {TFW_DTYPE_F32, TFW_DTYPE_F64};
  for (int k = 0; k < 2; k++) {
    tfw_tensor *t = tfw_randn(dts[k], 2, shape);
    double *v = th_values(t);
    int64_t n = 1000000;
    double mean, var, m3 = 0, m4 = 0;
    moments(v, n, &mean, &var);
    for (int64_t i = 0; i < n; i++) {
      double z = v[i] - mean;
      m3 += z * z * z;
      m4 += z * z * z * z;
    }
    m3 /= (double)n;
    m4 /= (double)n;
    /* sd: mean 1e-3, var 1.4e-3, skew 2.4e-3, kurtosis 4.9e-3: 6 sigma */
    cr_assert(fabs(mean) < 6e-3, "%s mean %g", tfw_dtype_name(dts[k]), mean);
    cr_assert(fabs(var - 1) < 8.5e-3, "%s var %g", tfw_dtype_name(dts[k]), var);
    cr_assert(fabs(m3) < 1.5e-2, "%s third moment %g", tfw_dtype_name(dts[k]), m3);
    cr_assert(fabs(m4 - 3) < 6e-2, "%s fourth moment %g", tfw_dtype_name(dts[k]), m4);
    double k_s = ks(v, n, cdf_normal);
    cr_assert(k_s < 1.95, "%s KS sqrt(n) D = %g (p < 0.001)", tfw_dtype_name(dts[k]), k_s);
    free(v);
    tfw_release(t);
  }
  th_expect_no_leaks();
}

Test(random, randint_range_and_uniformity) {
  tfw_manual_seed(13);
  int64_t shape[1] = {100000};
  tfw_tensor *t = tfw_randint(-3, 7, TFW_DTYPE_I64, 1, shape);
  cr_assert(t, "%s", tfw_last_error());
  double *v = th_values(t);
  int64_t count[10] = {0};
  for (int64_t i = 0; i < shape[0]; i++) {
    cr_assert(v[i] >= -3 && v[i] < 7 && v[i] == floor(v[i]), "value %g", v[i]);
    count[(int)v[i] + 3]++;
  }
  double chi2 = 0;
  for (int b = 0; b < 10; b++) chi2 += (count[b] - 1e4) * (count[b] - 1e4) / 1e4;
  cr_assert(chi2 < 27.9, "chi-square %g with 9 dof (p < 0.001)", chi2);
  free(v);
  tfw_release(t);
  /* u8 over its full range, bool over {0, 1} */
  tfw_tensor *u = tfw_randint(0, 256, TFW_DTYPE_U8, 1, shape);
  tfw_tensor *b = tfw_randint(0, 2, TFW_DTYPE_BOOL, 1, shape);
  cr_assert(u && b, "%s", tfw_last_error());
  double *vu = th_values(u), *vb = th_values(b);
  int seen[256] = {0};
  double ones = 0;
  for (int64_t i = 0; i < shape[0]; i++) {
    seen[(int)vu[i]] = 1;
    ones += vb[i];
  }
  for (int k = 0; k < 256; k++) cr_assert(seen[k], "u8 value %d never drawn", k);
  cr_assert(fabs(ones / 1e5 - 0.5) < 0.01, "bool mean %g", ones / 1e5);
  free(vu);
  free(vb);
  tfw_release(u);
  tfw_release(b);
  th_expect_no_leaks();
}

/* ---- bernoulli -------------------------------------------------------------------------- */
Test(random, bernoulli_layouts_and_reference) {
  int64_t shape[2] = {40, 30};
  for (int layout = 0; layout < 3; layout++) {
    tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16};
    for (int k = 0; k < 3; k++) {
      tfw_tensor *p = tfw__sample_tensor(dts[k], 2, shape, 0.0, 1.0, 3, (tfw__layout)layout);
      tfw_rng_set_state(77, 5);
      tfw_tensor *o = tfw_bernoulli(p);
      cr_assert(o, "%s", tfw_last_error());
      double *pv = th_values(p);
      double ref[1200];
      int per = dts[k] == TFW_DTYPE_F64 ? 2 : 4;
      for (int64_t i = 0; i < 1200; i++) {
        uint32_t w[4];
        block(77, 5 + (uint64_t)(i / per), w);
        int j = (int)(i % per);
        double u = per == 2 ? (double)((w[2 * j] | (uint64_t)w[2 * j + 1] << 32) >> 11) * 0x1p-53
                            : (double)(w[j] >> 8) * 0x1p-24;
        ref[i] = u < (per == 2 ? pv[i] : (double)(float)pv[i]) ? 1.0 : 0.0;
      }
      th_expect_close(o, dts[k], 2, shape, ref, 0, 0, "bernoulli");
      free(pv);
      tfw_release(p);
      tfw_release(o);
    }
  }
  th_expect_no_leaks();
}

Test(random, bernoulli_statistics_and_extremes) {
  tfw_manual_seed(14);
  int64_t shape[1] = {200000};
  tfw_tensor *p = tfw_full(TFW_DTYPE_F32, 1, shape, 0.3);
  tfw_tensor *o = tfw_bernoulli(p);
  double *v = th_values(o);
  double s = 0;
  for (int64_t i = 0; i < shape[0]; i++) {
    cr_assert(v[i] == 0 || v[i] == 1);
    s += v[i];
  }
  /* sd of the mean: sqrt(0.21 / 2e5) = 1.02e-3 */
  cr_assert(fabs(s / 2e5 - 0.3) < 6e-3, "mean %g", s / 2e5);
  free(v);
  tfw_release(p);
  tfw_release(o);
  double ends[2] = {0.0, 1.0};
  for (int k = 0; k < 2; k++) {
    tfw_tensor *q = tfw_full(TFW_DTYPE_F64, 1, shape, ends[k]);
    tfw_tensor *r = tfw_bernoulli(q);
    double *rv = th_values(r);
    for (int64_t i = 0; i < shape[0]; i++) cr_assert_eq(rv[i], ends[k]);
    free(rv);
    tfw_release(q);
    tfw_release(r);
  }
  th_expect_no_leaks();
}

/* ---- errors ------------------------------------------------------------------------------- */
Test(random, errors) {
  int64_t shape[2] = {2, 3}, neg[2] = {2, -3}, huge[2] = {INT64_MAX / 2, 4};
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  cr_assert_null(tfw_rand(TFW_DTYPE_I32, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EDTYPE, "rand: dtype must be floating-point, got int32",
                  "rand int32");
  cr_assert_null(tfw_randn(TFW_DTYPE_BOOL, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EDTYPE, "randn", "randn bool");
  cr_assert_null(tfw_rand(TFW_DTYPE_COUNT, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EDTYPE, "invalid dtype", "rand bad dtype");
  cr_assert_null(tfw_rand(TFW_DTYPE_F32, 2, neg));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "negative dimension -3", "negative dim");
  cr_assert_null(tfw_randn(TFW_DTYPE_F64, 2, huge));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "randn", "overflowing shape");
  cr_assert_null(tfw_rand(TFW_DTYPE_F32, 9, nine));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "ndim must be in [0, 8], got 9", "ndim 9");
  cr_assert_null(tfw_rand(TFW_DTYPE_F32, -1, shape));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "got -1", "ndim -1");
  cr_assert_null(tfw_rand(TFW_DTYPE_F32, 2, NULL));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "shape is NULL", "NULL shape");
  cr_assert_null(tfw_randint(5, 5, TFW_DTYPE_I64, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "high (5) must be greater than low (5)",
                  "randint empty range");
  cr_assert_null(tfw_randint(0, 300, TFW_DTYPE_U8, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "[0, 300) does not fit in uint8", "u8 range");
  cr_assert_null(tfw_randint(-1, 1, TFW_DTYPE_BOOL, 2, shape));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "does not fit in bool", "bool range");
  cr_assert_null(tfw_bernoulli(NULL));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "bernoulli", "NULL p");
  tfw_tensor *pi = tfw_zeros(TFW_DTYPE_I32, 2, shape);
  cr_assert_null(tfw_bernoulli(pi));
  th_expect_error(tfw_last_status(), TFW_EDTYPE, "'p' must be a floating-point tensor, got int32",
                  "int p");
  double bad[3] = {1.5, -0.25, NAN};
  for (int k = 0; k < 3; k++) {
    tfw_tensor *p = tfw_full(TFW_DTYPE_F32, 2, shape, 0.5);
    int64_t idx[2] = {1, 2};
    tfw_tensor_set(p, idx, bad[k]);
    uint64_t s0, o0, s1, o1;
    tfw_rng_get_state(&s0, &o0);
    cr_assert_null(tfw_bernoulli(p));
    th_expect_error(tfw_last_status(), TFW_EVALUE, "p must be in [0, 1]", "bad p");
    cr_assert(strstr(tfw_last_error(), "flat index 5"), "%s", tfw_last_error());
    tfw_rng_get_state(&s1, &o1);
    cr_assert_eq(o0, o1, "a failed bernoulli consumed counters");
    tfw_release(p);
  }
  tfw_release(pi);
  th_expect_no_leaks();
}

Test(random, registry_samples) {
  tfw__op_id ids[4] = {TFW__OP_rand, TFW__OP_randn, TFW__OP_randint, TFW__OP_bernoulli};
  for (int k = 0; k < 4; k++) {
    const tfw__op_def *op = &tfw__ops[ids[k]];
    cr_assert(op->flags & TFW__OPF_RANDOM);
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 2, "%s: %d samples", op->name, n);
    for (int i = 0; i < n; i++) {
      tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
      tfw_status st = tfw__op_run_multi(&calls[i], out);
      cr_assert_eq(st, TFW_OK, "%s sample %d: %s", op->name, i, tfw_last_error());
      tfw_release(out[0]);
    }
    tfw__samples_free(calls, n);
  }
  th_expect_no_leaks();
}

/* tfw__philox_blocks (vectorised) gives the bits of tfw__philox4x32_10 block by block, for
 * lengths around the vector width and counters whose low word wraps into the high word. */
Test(random, philox_blocks_equal_single_blocks) {
  const uint64_t seeds[2] = {0, UINT64_C(0x0123456789ABCDEF)};
  const uint64_t firsts[3] = {0, UINT64_C(0xFFFFFFF7), UINT64_C(0x7FFFFFFFFFFFFFF0)};
  const int64_t lens[6] = {1, 15, 16, 17, 33, 100};
  uint32_t got[400], want[4];
  for (int s = 0; s < 2; s++)
    for (int f = 0; f < 3; f++)
      for (int l = 0; l < 6; l++) {
        tfw__philox_blocks(seeds[s], firsts[f], lens[l], got);
        for (int64_t b = 0; b < lens[l]; b++) {
          uint64_t c = firsts[f] + (uint64_t)b;
          uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
          const uint32_t key[2] = {(uint32_t)seeds[s], (uint32_t)(seeds[s] >> 32)};
          tfw__philox4x32_10(ctr, key, want);
          for (int w = 0; w < 4; w++)
            cr_assert_eq(got[4 * b + w], want[w], "seed %d first %d len %lld block %lld word %d",
                         s, f, (long long)lens[l], (long long)b, w);
        }
      }
}
