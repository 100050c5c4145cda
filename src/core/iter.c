/* Strided N-operand iteration with broadcasting and dimension coalescing (see iter.h). */
#include "core/iter.h"

tfw_status tfw__broadcast_shapes(const char *op, int n, const tfw_tensor *const *ts, int *ndim,
                                 int64_t *shape) {
  int nd = 0;
  for (int k = 0; k < n; k++)
    if (ts[k]->ndim > nd) nd = ts[k]->ndim;
  for (int i = 0; i < nd; i++) shape[i] = 1;
  for (int k = 0; k < n; k++) {
    const tfw_tensor *t = ts[k];
    for (int i = 0; i < t->ndim; i++) {
      int o = nd - t->ndim + i;
      int64_t s = t->shape[i];
      if (s == shape[o]) continue;
      if (shape[o] == 1) {
        shape[o] = s;
      } else if (s != 1) {
        char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
        /* report the first two operands that disagree */
        int j = 0;
        for (; j < k; j++) {
          int oj = o - (nd - ts[j]->ndim);
          if (oj >= 0 && ts[j]->shape[oj] != 1 && ts[j]->shape[oj] != s) break;
        }
        if (j == k) j = 0;
        return tfw__error(TFW_ESHAPE,
                          "%s: shapes %s and %s cannot be broadcast (dimension %d: %lld vs %lld)",
                          op, tfw__shape_str(b1, sizeof b1, ts[j]->ndim, ts[j]->shape),
                          tfw__shape_str(b2, sizeof b2, t->ndim, t->shape), o,
                          (long long)shape[o], (long long)s);
      }
    }
  }
  *ndim = nd;
  return TFW_OK;
}

void tfw__iter_init(tfw__iter *it, int nops, const tfw_tensor *const *ops, int ndim,
                    const int64_t *shape) {
  TFW_ASSERT(nops <= TFW__ITER_MAX_OPS && ndim <= TFW_MAX_DIMS);
  it->nops = nops;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 0) { /* nothing to visit; strides may be meaningless */
      it->ndim = 1;
      it->numel = 0;
      it->shape[0] = 0;
      for (int k = 0; k < nops; k++) {
        it->base[k] = tfw__data(ops[k]);
        it->strides[k][0] = 0;
      }
      return;
    }
  }
  int64_t st[TFW__ITER_MAX_OPS][TFW_MAX_DIMS];
  for (int k = 0; k < nops; k++) {
    const tfw_tensor *t = ops[k];
    int64_t es = (int64_t)tfw_dtype_size(t->dtype);
    it->base[k] = tfw__data(t);
    for (int i = 0; i < ndim; i++) {
      int j = i - (ndim - t->ndim);
      st[k][i] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j] * es;
    }
  }
  /* drop size-1 dims, then merge dim i into the running dim when contiguous for all */
  int nd = 0;
  int64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    numel *= shape[i];
    if (shape[i] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < nops && merge; k++)
      if (it->strides[k][nd - 1] != st[k][i] * shape[i]) merge = false;
    if (merge) {
      it->shape[nd - 1] *= shape[i];
      for (int k = 0; k < nops; k++) it->strides[k][nd - 1] = st[k][i];
    } else {
      it->shape[nd] = shape[i];
      for (int k = 0; k < nops; k++) it->strides[k][nd] = st[k][i];
      nd++;
    }
  }
  if (nd == 0) {
    nd = 1;
    it->shape[0] = 1;
    for (int k = 0; k < nops; k++) it->strides[k][0] = 0;
  }
  it->ndim = nd;
  it->numel = numel;
}

void tfw__iter_range(const tfw__iter *it, int64_t begin, int64_t end, tfw__loop_fn fn, void *ctx) {
  if (begin >= end) return;
  const int nd = it->ndim, nops = it->nops;
  int64_t idx[TFW_MAX_DIMS];
  int64_t rem = begin;
  for (int i = nd - 1; i >= 0; i--) {
    idx[i] = rem % it->shape[i];
    rem /= it->shape[i];
  }
  char *ptrs[TFW__ITER_MAX_OPS];
  int64_t inner[TFW__ITER_MAX_OPS];
  for (int k = 0; k < nops; k++) {
    int64_t off = 0;
    for (int i = 0; i < nd; i++) off += idx[i] * it->strides[k][i];
    ptrs[k] = it->base[k] + off;
    inner[k] = it->strides[k][nd - 1];
  }
  int64_t pos = begin;
  const int64_t inner_n = it->shape[nd - 1];
  while (pos < end) {
    int64_t n = inner_n - idx[nd - 1];
    if (n > end - pos) n = end - pos;
    fn(n, ptrs, inner, ctx);
    pos += n;
    if (pos >= end) break;
    /* advance the multi-index by n along the innermost dim, carrying outward */
    idx[nd - 1] += n;
    for (int k = 0; k < nops; k++) ptrs[k] += n * inner[k];
    for (int i = nd - 1; i > 0 && idx[i] == it->shape[i]; i--) {
      idx[i] = 0;
      idx[i - 1]++;
      for (int k = 0; k < nops; k++)
        ptrs[k] += it->strides[k][i - 1] - it->shape[i] * it->strides[k][i];
    }
  }
}

typedef struct {
  const tfw__iter *it;
  tfw__loop_fn fn;
  void *ctx;
} run_ctx;

static void run_chunk(int64_t b, int64_t e, void *p) {
  run_ctx *r = p;
  tfw__iter_range(r->it, b, e, r->fn, r->ctx);
}

void tfw__iter_run(const tfw__iter *it, int64_t grain, tfw__loop_fn fn, void *ctx) {
  run_ctx r = {it, fn, ctx};
  tfw__parallel_for(it->numel, grain, run_chunk, &r);
}
