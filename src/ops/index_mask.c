/* masked_select and nonzero: the two index ops whose output size depends on the values
 * (TFW__OPF_NONDET_SHAPE), so the kernel allocates out[0] itself.
 *
 * Both run in two passes over the same fixed chunks (tfw__parallel_chunks of the element
 * count, a function of the size only): pass 1 counts the selected elements per chunk, an
 * exclusive prefix sum over the chunk counts gives each chunk its first output row, pass 2
 * writes. The output is therefore in row-major order and identical for any thread count. */
#include "core/iter.h"
#include "ops/index_internal.h"

typedef struct mask_ctx {
  tfw__walk w;      /* all dims of the (broadcast) shape: off[0] tested operand bytes, off[1] t bytes */
  int64_t n;        /* elements */
  int64_t chunks;
  int64_t *counts;  /* [chunks + 1]: per-chunk counts, then exclusive prefix sums */
  tfw_dtype dt;     /* dtype of the tested operand (mask: bool) */
  const char *test; /* tested operand base */
  const char *src;  /* masked_select: t base */
  char *dst;        /* output base */
  size_t es;        /* masked_select: element size of t */
  int ndim;         /* nonzero: columns of the output */
} mask_ctx;

static inline bool is_nonzero(const char *p, tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: return *(const float *)p != 0;
  case TFW_DTYPE_F64: return *(const double *)p != 0;
  case TFW_DTYPE_F16:
  case TFW_DTYPE_BF16: return (*(const uint16_t *)p & 0x7fff) != 0; /* -0 is zero, NaN is not */
  case TFW_DTYPE_I32: return *(const int32_t *)p != 0;
  case TFW_DTYPE_I64: return *(const int64_t *)p != 0;
  default: return *(const uint8_t *)p != 0; /* i8 u8 bool */
  }
}

static void count_chunks(int64_t begin, int64_t end, void *ctx) {
  mask_ctx *m = ctx;
  for (int64_t c = begin; c < end; c++) {
    int64_t lo = c * m->n / m->chunks, hi = (c + 1) * m->n / m->chunks, cnt = 0;
    tfw__walk w = m->w;
    tfw__walk_seek(&w, lo);
    for (int64_t i = lo; i < hi; i++, tfw__walk_next(&w)) cnt += is_nonzero(m->test + w.off[0], m->dt);
    m->counts[c] = cnt;
  }
}

static void write_chunks(int64_t begin, int64_t end, void *ctx) {
  mask_ctx *m = ctx;
  for (int64_t c = begin; c < end; c++) {
    int64_t lo = c * m->n / m->chunks, hi = (c + 1) * m->n / m->chunks, row = m->counts[c];
    tfw__walk w = m->w;
    tfw__walk_seek(&w, lo);
    for (int64_t i = lo; i < hi; i++, tfw__walk_next(&w)) {
      if (!is_nonzero(m->test + w.off[0], m->dt)) continue;
      if (m->src) {
        memcpy(m->dst + row * (int64_t)m->es, m->src + w.off[1], m->es);
      } else {
        int64_t *o = (int64_t *)m->dst + row * m->ndim;
        for (int d = 0; d < m->ndim; d++) o[d] = w.pos[d];
      }
      row++;
    }
  }
}

/* Counts, allocates out (dtype dt, shape [total] or [total, ndim]) and writes. */
static tfw_status run_mask(const char *op, mask_ctx *m, tfw_dtype dt, bool nonzero,
                           tfw_tensor **out) {
  m->chunks = tfw__parallel_chunks(m->n, TFW__GRAIN_EW);
  m->counts = tfw__calloc((size_t)m->chunks + 1, sizeof(int64_t));
  if (!m->counts) return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  tfw__parallel_for(m->chunks, 1, count_chunks, m);
  int64_t total = 0;
  for (int64_t c = 0; c < m->chunks; c++) {
    int64_t k = m->counts[c];
    m->counts[c] = total;
    total += k;
  }
  int64_t shape[2] = {total, m->ndim};
  out[0] = tfw__tensor_new(op, dt, nonzero ? 2 : 1, shape);
  if (!out[0]) {
    tfw__free(m->counts);
    return tfw_last_status();
  }
  m->dst = tfw__data(out[0]);
  tfw__parallel_for(m->chunks, 1, write_chunks, m);
  tfw__free(m->counts);
  return TFW_OK;
}

/* ---- masked_select ----------------------------------------------------------------------- */

tfw_status tfw__infer_masked_select(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *t = c->in[0], *mask = c->in[1];
  if (mask->dtype != TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "masked_select: mask must be a bool tensor, got %s",
                      tfw_dtype_name(mask->dtype));
  int nd;
  int64_t shape[TFW_MAX_DIMS];
  const tfw_tensor *ops[2] = {t, mask};
  tfw_status st = tfw__broadcast_shapes("masked_select", 2, ops, &nd, shape);
  if (st) return st;
  if (tfw__check_shape("masked_select", nd, shape, tfw_dtype_size(t->dtype), NULL))
    return TFW_ESHAPE;
  out->dtype = t->dtype;
  out->ndim = 1;
  out->shape[0] = 0; /* known only after the kernel has counted */
  return TFW_OK;
}

/* Byte strides of t broadcast to (nd, shape): 0 on broadcast dims. */
static void bcast_strides(const tfw_tensor *t, int nd, int64_t *st) {
  int64_t es = (int64_t)tfw_dtype_size(t->dtype);
  for (int d = 0; d < nd; d++) {
    int j = d - (nd - t->ndim);
    st[d] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j] * es;
  }
}

tfw_status tfw__kernel_masked_select(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0], *mask = c->in[1];
  mask_ctx m = {.dt = TFW_DTYPE_BOOL, .test = tfw__data(mask), .src = tfw__data(t),
                .es = tfw_dtype_size(t->dtype)};
  const tfw_tensor *ops[2] = {t, mask};
  int nd;
  int64_t shape[TFW_MAX_DIMS];
  tfw_status st = tfw__broadcast_shapes("masked_select", 2, ops, &nd, shape);
  if (st) return st;
  m.w.n = nd;
  for (int d = 0; d < nd; d++) m.w.size[d] = shape[d];
  bcast_strides(mask, nd, m.w.st[0]);
  bcast_strides(t, nd, m.w.st[1]);
  m.n = tfw__numel(nd, shape);
  return run_mask("masked_select", &m, t->dtype, false, out);
}

tfw_tensor *tfw_masked_select(const tfw_tensor *t, const tfw_tensor *mask) {
  if (tfw__check_tensor("masked_select", "t", t) || tfw__check_tensor("masked_select", "mask", mask))
    return NULL;
  return tfw__op2(TFW__OP_masked_select, t, mask);
}

/* ---- nonzero ---------------------------------------------------------------------------- */

tfw_status tfw__infer_nonzero(const tfw__call *c, tfw__meta *out) {
  out->dtype = TFW_DTYPE_I64;
  out->ndim = 2;
  out->shape[0] = 0; /* known only after the kernel has counted */
  out->shape[1] = c->in[0]->ndim;
  return TFW_OK;
}

tfw_status tfw__kernel_nonzero(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  mask_ctx m = {.dt = t->dtype, .test = tfw__data(t), .ndim = t->ndim};
  m.w.n = t->ndim;
  for (int d = 0; d < t->ndim; d++) m.w.size[d] = t->shape[d];
  bcast_strides(t, t->ndim, m.w.st[0]);
  m.n = tfw__numel(t->ndim, t->shape);
  return run_mask("nonzero", &m, TFW_DTYPE_I64, true, out);
}

tfw_tensor *tfw_nonzero(const tfw_tensor *t) {
  if (tfw__check_tensor("nonzero", "t", t)) return NULL;
  return tfw__op1(TFW__OP_nonzero, t);
}
