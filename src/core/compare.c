/* Whole-tensor comparisons: tfw_allclose and tfw_equal.
 *
 * Both run straight on tfw__iter (no dependency on the elementwise ops) and compare values,
 * not bits, across dtypes: two integer/bool operands compare exactly as int64, anything with
 * a float side compares in double (f16/bf16 widened exactly). The answer is an AND over all
 * elements, so it is the same for any thread count; workers stop early once a mismatch is
 * seen. */
#include <math.h>

#include "core/core.h"
#include "core/iter.h"

#define CMP_GRAIN 16384

typedef struct {
  tfw_dtype da, db;
  bool ints;        /* both operands integral or bool: compare as int64 */
  double rtol, atol;
  bool equal_nan;
  bool exact;       /* tfw_equal: a == b */
  _Atomic bool fail;
} cmp_ctx;

/* allclose on one pair (PyTorch's isclose): equal values (infinities included) are close;
 * NaNs are close to each other only with equal_nan; otherwise a finite |a - b| must be
 * <= atol + rtol * |b|. */
static inline bool close_f64(double a, double b, const cmp_ctx *c) {
  if (a == b) return true;
  if (isnan(a) || isnan(b)) return c->equal_nan && isnan(a) && isnan(b);
  double err = fabs(a - b);
  return isfinite(err) && err <= c->atol + c->rtol * fabs(b);
}

static void cmp_loop(int64_t n, char **p, const int64_t *s, void *ctx) {
  cmp_ctx *c = ctx;
  if (atomic_load_explicit(&c->fail, memory_order_relaxed)) return;
  bool ok = true;
  if (c->ints) {
    for (int64_t i = 0; i < n && ok; i++) {
      int64_t a = tfw__load_i64(p[0] + i * s[0], c->da);
      int64_t b = tfw__load_i64(p[1] + i * s[1], c->db);
      if (a == b) continue;
      if (c->exact) ok = false;
      else ok = close_f64((double)a, (double)b, c);
    }
  } else if (c->da == TFW_DTYPE_F32 && c->db == TFW_DTYPE_F32) { /* the common case */
    for (int64_t i = 0; i < n && ok; i++) {
      double a = *(const float *)(p[0] + i * s[0]);
      double b = *(const float *)(p[1] + i * s[1]);
      ok = c->exact ? a == b : close_f64(a, b, c);
    }
  } else {
    for (int64_t i = 0; i < n && ok; i++) {
      double a = tfw__load_f64(p[0] + i * s[0], c->da);
      double b = tfw__load_f64(p[1] + i * s[1], c->db);
      ok = c->exact ? a == b : close_f64(a, b, c);
    }
  }
  if (!ok) atomic_store(&c->fail, true);
}

static void run_cmp(const tfw_tensor *a, const tfw_tensor *b, int ndim, const int64_t *shape,
                    cmp_ctx *c) {
  c->da = a->dtype;
  c->db = b->dtype;
  c->ints = !tfw_dtype_is_floating(a->dtype) && !tfw_dtype_is_floating(b->dtype);
  atomic_store(&c->fail, false);
  if (tfw__numel(ndim, shape) == 0) return;
  const tfw_tensor *ops[2] = {a, b};
  tfw__iter it;
  tfw__iter_init(&it, 2, ops, ndim, shape);
  tfw__iter_run(&it, CMP_GRAIN, cmp_loop, c);
}

tfw_status tfw_allclose(const tfw_tensor *a, const tfw_tensor *b, double rtol, double atol,
                        bool equal_nan, bool *result) {
  tfw_status st;
  if ((st = tfw__check_tensor("allclose", "a", a))) return st;
  if ((st = tfw__check_tensor("allclose", "b", b))) return st;
  if (!result) return tfw__error(TFW_EVALUE, "allclose: result pointer is NULL");
  if (!(rtol >= 0.0))
    return tfw__error(TFW_EVALUE, "allclose: rtol must be >= 0, got %g", rtol);
  if (!(atol >= 0.0))
    return tfw__error(TFW_EVALUE, "allclose: atol must be >= 0, got %g", atol);
  const tfw_tensor *ts[2] = {a, b};
  int ndim;
  int64_t shape[TFW_MAX_DIMS];
  if ((st = tfw__broadcast_shapes("allclose", 2, ts, &ndim, shape))) return st;
  cmp_ctx c = {.rtol = rtol, .atol = atol, .equal_nan = equal_nan, .exact = false};
  run_cmp(a, b, ndim, shape, &c);
  *result = !atomic_load(&c.fail);
  return TFW_OK;
}

tfw_status tfw_equal(const tfw_tensor *a, const tfw_tensor *b, bool *result) {
  tfw_status st;
  if ((st = tfw__check_tensor("equal", "a", a))) return st;
  if ((st = tfw__check_tensor("equal", "b", b))) return st;
  if (!result) return tfw__error(TFW_EVALUE, "equal: result pointer is NULL");
  bool same = a->ndim == b->ndim;
  for (int d = 0; same && d < a->ndim; d++) same = a->shape[d] == b->shape[d];
  if (!same) {
    *result = false;
    return TFW_OK;
  }
  cmp_ctx c = {.exact = true};
  run_cmp(a, b, a->ndim, a->shape, &c);
  *result = !atomic_load(&c.fail);
  return TFW_OK;
}
