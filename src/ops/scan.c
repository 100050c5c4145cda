/* Inclusive scans along one dim: cumsum and cumprod.
 *
 * The input is viewed as [A, R, B] (R the scanned dim) on a contiguous copy in the compute
 * type (only made when the input is strided or needs a cast): f32/f64 accumulate in f64
 * (PyTorch's CPU acc type), f16/bf16 go through f32, integers and bool accumulate in int64
 * with wrap-around and return int64. B == 1 scans each row serially (rows in parallel);
 * B > 1 carries a running row acc[b] down R, vectorised over b, blocks of b in parallel, so
 * a transposed copy is never made. The order of operations is fixed: any thread count
 * gives the same bits. */
#include "core/iter.h"
#include "ops/reduce.h"
#include "ops/samples.h"

#define HOT TFW_CLONES
#define SCAN_BLOCK 256

tfw_status tfw__infer_scan(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *x = c->in[0];
  if (c->a.i[0] < INT32_MIN || c->a.i[0] > INT32_MAX)
    return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d "
                      "dimensions", c->op->name, (long long)c->a.i[0], x->ndim);
  if (tfw__wrap_dim(c->op->name, (int)c->a.i[0], x->ndim) < 0) return TFW_EINDEX;
  out->dtype = tfw_dtype_is_floating(x->dtype) ? x->dtype : TFW_DTYPE_I64;
  out->ndim = x->ndim;
  for (int d = 0; d < x->ndim; d++) out->shape[d] = x->shape[d];
  return TFW_OK;
}

typedef struct scan_ctx {
  const char *x;
  char *y;
  int64_t A, R, B, nblk;
  bool prod;
  tfw_dtype dt; /* F32, F64 or I64 (input and output of the loops) */
} scan_ctx;

#define DEF_SCAN(NAME, T, ACC)                                                          \
  HOT static void rows_##NAME(const T *x, T *y, int64_t R, bool prod) {                     \
    ACC acc = (ACC)prod;                                                                         \
    if (prod)                                                                               \
      for (int64_t r = 0; r < R; r++) y[r] = (T)(acc *= (ACC)x[r]);                         \
    else                                                                                    \
      for (int64_t r = 0; r < R; r++) y[r] = (T)(acc += (ACC)x[r]);                         \
  }                                                                                         \
  HOT static void cols_##NAME(const T *x, T *y, int64_t R, int64_t B, int64_t nb,           \
                              bool prod) {                                                  \
    ACC acc[SCAN_BLOCK];                                                                    \
    for (int64_t j = 0; j < nb; j++) acc[j] = (ACC)prod;                                      \
    for (int64_t r = 0; r < R; r++) {                                                       \
      const T *xr = x + r * B;                                                              \
      T *yr = y + r * B;                                                                    \
      if (prod)                                                                             \
        for (int64_t j = 0; j < nb; j++) yr[j] = (T)(acc[j] *= (ACC)xr[j]);                 \
      else                                                                                  \
        for (int64_t j = 0; j < nb; j++) yr[j] = (T)(acc[j] += (ACC)xr[j]);                 \
    }                                                                                       \
  }
DEF_SCAN(f32, float, double)
DEF_SCAN(f64, double, double)
/* int64 wraps: unsigned arithmetic, then the two's complement bit pattern */
DEF_SCAN(u64, uint64_t, uint64_t)

static void scan_chunk(int64_t b, int64_t e, void *vp) {
  const scan_ctx *S = vp;
  size_t es = tfw_dtype_size(S->dt);
  for (int64_t t = b; t < e; t++) {
    int64_t a = t / S->nblk, j0 = (t % S->nblk) * SCAN_BLOCK;
    int64_t nb = S->B - j0 < SCAN_BLOCK ? S->B - j0 : SCAN_BLOCK;
    size_t off = (size_t)(a * S->R * S->B + j0) * es;
    const char *x = S->x + off;
    char *y = S->y + off;
    if (S->B == 1) {
      switch (S->dt) {
      case TFW_DTYPE_F32: rows_f32((const float *)x, (float *)y, S->R, S->prod); break;
      case TFW_DTYPE_F64: rows_f64((const double *)x, (double *)y, S->R, S->prod); break;
      default: rows_u64((const uint64_t *)x, (uint64_t *)y, S->R, S->prod); break;
      }
    } else {
      switch (S->dt) {
      case TFW_DTYPE_F32: cols_f32((const float *)x, (float *)y, S->R, S->B, nb, S->prod); break;
      case TFW_DTYPE_F64:
        cols_f64((const double *)x, (double *)y, S->R, S->B, nb, S->prod);
        break;
      default: cols_u64((const uint64_t *)x, (uint64_t *)y, S->R, S->B, nb, S->prod); break;
      }
    }
  }
}

tfw_status tfw__kernel_scan(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *x0 = c->in[0];
  tfw_tensor *y = out[0];
  int d = tfw__wrap_dim(c->op->name, (int)c->a.i[0], x0->ndim);
  if (d < 0) return TFW_EINDEX;
  int64_t numel = tfw__numel(x0->ndim, x0->shape);
  if (numel == 0) return TFW_OK;
  tfw_dtype cdt = y->dtype == TFW_DTYPE_F16 || y->dtype == TFW_DTYPE_BF16 ? TFW_DTYPE_F32
                                                                          : y->dtype;
  tfw_tensor *xc = tfw__as_contiguous(x0, cdt);
  if (!xc) return tfw_last_status();
  tfw_tensor *yc = y;
  if (cdt != y->dtype) {
    yc = tfw__tensor_new(c->op->name, cdt, y->ndim, y->shape);
    if (!yc) {
      tfw_release(xc);
      return tfw_last_status();
    }
  }
  scan_ctx S = {.x = tfw__data(xc), .y = tfw__data(yc), .A = 1, .R = 1, .B = 1,
                .prod = c->op->id == TFW__OP_cumprod, .dt = cdt};
  for (int k = 0; k < x0->ndim; k++) {
    if (k < d) S.A *= x0->shape[k];
    else if (k == d) S.R = x0->shape[k];
    else S.B *= x0->shape[k];
  }
  S.nblk = (S.B + SCAN_BLOCK - 1) / SCAN_BLOCK;
  int64_t work = S.R * (S.B < SCAN_BLOCK ? S.B : SCAN_BLOCK);
  int64_t grain = TFW__GRAIN_EW / (work > 0 ? work : 1);
  tfw__parallel_for(S.A * S.nblk, grain > 0 ? grain : 1, scan_chunk, &S);
  tfw_status st = TFW_OK;
  if (yc != y) {
    st = tfw__copy_cast(y, yc);
    tfw_release(yc);
  }
  tfw_release(xc);
  return st;
}

int tfw__sample_scan(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const int64_t s0[3] = {3, 4, 5}, s1[2] = {6, 4}, s2[3] = {2, 3, 4};
  struct {
    tfw_dtype dt;
    int nd;
    const int64_t *shape;
    tfw__layout lay;
    int dim;
  } spec[4] = {
      {TFW_DTYPE_F32, 3, s0, TFW__LAYOUT_CONTIGUOUS, -1},
      {TFW_DTYPE_F64, 2, s1, TFW__LAYOUT_STRIDED, 0},
      {TFW_DTYPE_F32, 3, s2, TFW__LAYOUT_BROADCAST, 1},
      {TFW_DTYPE_I32, 3, s0, TFW__LAYOUT_CONTIGUOUS, 1},
  };
  bool prod = op->id == TFW__OP_cumprod;
  int n = 0;
  for (int i = 0; i < 4 && n < cap; i++) {
    tfw_tensor *t = tfw__sample_tensor(spec[i].dt, spec[i].nd, spec[i].shape, prod ? 0.5 : -3.0,
                                       prod ? 1.5 : 3.0, (uint64_t)i + 21, spec[i].lay);
    if (!t) break;
    const tfw_tensor *in[1] = {t};
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, 1, in);
    c->a.i[0] = spec[i].dim;
  }
  return n;
}

static tfw_tensor *scan_op(tfw__op_id id, const tfw_tensor *t, int dim) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  c.a.i[0] = dim;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_cumsum(const tfw_tensor *t, int dim) { return scan_op(TFW__OP_cumsum, t, dim); }
tfw_tensor *tfw_cumprod(const tfw_tensor *t, int dim) { return scan_op(TFW__OP_cumprod, t, dim); }
