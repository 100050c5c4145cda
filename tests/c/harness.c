#include "harness.h"

#include <stdlib.h>
#include <string.h>

uint64_t th_rand_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double th_rand_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * ((double)(th_rand_u64(s) >> 11) * (1.0 / 9007199254740992.0));
}

static double draw(tfw_dtype dt, uint64_t *st, double lo, double hi) {
  double v = th_rand_uniform(st, lo, hi);
  if (dt == TFW_DTYPE_BOOL) return (th_rand_u64(st) & 1) ? 1.0 : 0.0;
  if (tfw_dtype_is_integral(dt)) return floor(v);
  return v;
}

tfw_tensor *th_random(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                      uint64_t seed) {
  tfw_tensor *t = tfw_empty(dt, ndim, shape);
  cr_assert(t != NULL, "th_random: %s", tfw_last_error());
  int64_t n = tfw_tensor_numel(t);
  uint64_t st = seed * 7919 + 17;
  int64_t idx[TFW_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i;
    for (int d = ndim - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    cr_assert(tfw_tensor_set(t, idx, draw(dt, &st, lo, hi)) == TFW_OK);
  }
  return t;
}

tfw_tensor *th_random_strided(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                              uint64_t seed) {
  if (ndim == 0) return th_random(dt, ndim, shape, lo, hi, seed);
  /* big: shape reversed, first (after transpose: last) dim doubled */
  int64_t big[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) big[d] = shape[ndim - 1 - d];
  big[ndim - 1] = shape[0] * 2;
  tfw_tensor *b = th_random(dt, ndim, big, lo, hi, seed + 1000);
  int perm[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) perm[d] = ndim - 1 - d;
  tfw_tensor *p = tfw_permute(b, ndim, perm);
  cr_assert(p != NULL, "th_random_strided permute: %s", tfw_last_error());
  tfw_tensor *s = tfw_slice(p, 0, 0, shape[0] * 2, 2);
  cr_assert(s != NULL, "th_random_strided slice: %s", tfw_last_error());
  tfw_release(b);
  tfw_release(p);
  return s;
}

double *th_values(const tfw_tensor *t) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *shape = tfw_tensor_shape(t);
  int64_t n = tfw_tensor_numel(t);
  double *v = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int64_t idx[TFW_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i;
    for (int d = nd - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    cr_assert(tfw_tensor_get(t, idx, &v[i]) == TFW_OK);
  }
  return v;
}

double th_eps(tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return 1e-5;
  case TFW_DTYPE_F64: return 1e-12;
  case TFW_DTYPE_F16: return 2e-3;
  case TFW_DTYPE_BF16: return 1.6e-2;
  default: return 0;
  }
}

void th_expect_close(const tfw_tensor *t, tfw_dtype dt, int ndim, const int64_t *shape,
                     const double *ref, double rtol, double atol, const char *what) {
  cr_assert(t != NULL, "%s: result is NULL: %s", what, tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(t), dt, "%s: dtype %s, expected %s", what,
               tfw_dtype_name(tfw_tensor_dtype(t)), tfw_dtype_name(dt));
  cr_assert_eq(tfw_tensor_ndim(t), ndim, "%s: ndim %d, expected %d", what, tfw_tensor_ndim(t), ndim);
  for (int d = 0; d < ndim; d++)
    cr_assert_eq(tfw_tensor_shape(t)[d], shape[d], "%s: dim %d is %lld, expected %lld", what, d,
                 (long long)tfw_tensor_shape(t)[d], (long long)shape[d]);
  double *v = th_values(t);
  int64_t n = tfw_tensor_numel(t);
  int bad = 0;
  int64_t first = -1;
  for (int64_t i = 0; i < n; i++) {
    double a = v[i], b = ref[i];
    bool ok;
    if (isnan(b)) ok = isnan(a);
    else if (isinf(b)) ok = a == b;
    else ok = fabs(a - b) <= atol + rtol * fabs(b);
    if (!ok) {
      if (bad < 5) fprintf(stderr, "%s: element %lld: got %.9g, expected %.9g\n", what, (long long)i, a, b);
      if (first < 0) first = i;
      bad++;
    }
  }
  free(v);
  cr_assert(bad == 0, "%s: %d of %lld elements differ (first at %lld)", what, bad, (long long)n,
            (long long)first);
}

void th_expect_error(tfw_status got, tfw_status code, const char *needle, const char *what) {
  cr_assert_eq(got, code, "%s: status %s, expected %s (message: %s)", what, tfw_status_name(got),
               tfw_status_name(code), tfw_last_error());
  if (needle)
    cr_assert(strstr(tfw_last_error(), needle) != NULL, "%s: message '%s' does not contain '%s'",
              what, tfw_last_error(), needle);
}

void th_expect_no_leaks(void) {
  tfw_memory_stats s;
  tfw_memory_stats_get(&s);
  cr_assert_eq(s.live_tensors, 0, "%lld tensors still alive", (long long)s.live_tensors);
  cr_assert_eq(s.live_bytes, 0, "%lld storage bytes still alive", (long long)s.live_bytes);
}
