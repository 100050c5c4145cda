/* Deterministic sample tensors for the registry's generators. */
#include <math.h>

#include "ops/samples.h"

static uint64_t mix(uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static void fill(tfw_tensor *t, double lo, double hi, uint64_t seed) {
  int64_t n = tfw__numel(t->ndim, t->shape);
  size_t es = tfw_dtype_size(t->dtype);
  char *p = tfw__data(t);
  for (int64_t i = 0; i < n; i++) {
    uint64_t r = mix(seed * 0x100000001B3ull + (uint64_t)i);
    double u = (double)(r >> 11) * (1.0 / 9007199254740992.0);
    double v = lo + (hi - lo) * u;
    if (t->dtype == TFW_DTYPE_BOOL) v = (double)(r & 1);
    else if (tfw_dtype_is_integral(t->dtype)) v = floor(v);
    tfw__store_f64(p + i * (int64_t)es, t->dtype, v);
  }
}

tfw_tensor *tfw__sample_tensor(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                               uint64_t seed, tfw__layout layout) {
  if (layout == TFW__LAYOUT_CONTIGUOUS || ndim == 0) {
    tfw_tensor *t = tfw__tensor_new("sample", dt, ndim, shape);
    if (t) fill(t, lo, hi, seed);
    return t;
  }
  if (layout == TFW__LAYOUT_BROADCAST) {
    /* a tensor with size 1 at the first non-unit dim, expanded */
    int64_t small[TFW_MAX_DIMS] = {0};
    int bd = -1;
    for (int d = 0; d < ndim; d++) {
      small[d] = shape[d];
      if (bd < 0 && shape[d] > 1) {
        bd = d;
        small[d] = 1;
      }
    }
    tfw_tensor *t = tfw__tensor_new("sample", dt, ndim, small);
    if (!t) return NULL;
    fill(t, lo, hi, seed);
    int64_t st[TFW_MAX_DIMS];
    for (int d = 0; d < ndim; d++) st[d] = d == bd ? 0 : t->strides[d];
    tfw_tensor *v = tfw__tensor_view(t, ndim, shape, st, 0);
    tfw_release(t);
    return v;
  }
  /* strided: buffer of shape reversed with the last dim doubled; view = transpose + step 2 */
  int64_t big[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) big[d] = shape[ndim - 1 - d];
  big[ndim - 1] = shape[0] * 2;
  tfw_tensor *b = tfw__tensor_new("sample", dt, ndim, big);
  if (!b) return NULL;
  fill(b, lo, hi, seed);
  int64_t st[TFW_MAX_DIMS];
  for (int d = 0; d < ndim; d++) st[d] = b->strides[ndim - 1 - d];
  st[0] *= 2;
  tfw_tensor *v = tfw__tensor_view(b, ndim, shape, st, 0);
  tfw_release(b);
  return v;
}

void tfw__samples_free(tfw__call *calls, int n) {
  for (int i = 0; i < n; i++)
    for (int j = 0; j < calls[i].n_in; j++) tfw_release((tfw_tensor *)calls[i].in[j]);
}
