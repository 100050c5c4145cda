/* The gather/scatter family: index_select, gather, take_along_dim (one "gather" kernel) and
 * scatter, scatter_add, index_add (one "scatter" kernel).
 *
 * Every op is reduced to one strided problem: an iteration shape, an int64 index addressed by
 * the iteration position (broadcast with stride 0 for index_select / index_add /
 * take_along_dim), a "direct" operand addressed by the position, and an "indexed" operand
 * addressed by the position with the coordinate at dim replaced by the index value.
 *
 * Safety: the index is first converted to a contiguous int64 copy and EVERY value is checked
 * against the size of the indexed dimension before anything is read or written, so a bad
 * index is a TFW_EINDEX error and never an out-of-bounds access. Negative values are rejected
 * like PyTorch's gather/scatter/index_select do.
 *
 * Loop shapes (why the two kernels differ):
 *  - gather walks rows of the innermost iteration dim, in output order, parallel over rows.
 *    An embedding lookup (index_select on dim 0 of a contiguous [N, D] table) becomes one
 *    memcpy per output row.
 *  - scatter must be deterministic when indices repeat (scatter: last write in index order
 *    wins; scatter_add/index_add: sums in index order). Output elements that different index
 *    positions may hit share every coordinate except dim, so the work is split over those
 *    other coordinates only: tasks = (planes over the dims other than dim and the innermost)
 *    x (blocks of the innermost dim), and inside a task the index positions along dim are
 *    visited in order, the innermost dim in the inner loop (contiguous for index_add on
 *    [N, D] tables). The split depends only on shapes, so results are bit-identical for any
 *    thread count.
 * f16/bf16 additions are done in an f32 copy and rounded once at the end. */
#include <limits.h>

#include "core/iter.h"
#include "ops/index_internal.h"

/* ---- shared helpers ------------------------------------------------------------------ */

int tfw__index_wrap_dim(const char *op, int64_t dim, int ndim) {
  if (dim < INT_MIN || dim > INT_MAX) {
    int n = ndim > 0 ? ndim : 1;
    tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d dimensions "
               "(expected in [%d, %d])", op, (long long)dim, ndim, -n, n - 1);
    return -1;
  }
  return tfw__wrap_dim(op, (int)dim, ndim);
}

tfw_status tfw__index_check_dtype(const char *op, const tfw_tensor *index) {
  if (index->dtype == TFW_DTYPE_I64 || index->dtype == TFW_DTYPE_I32) return TFW_OK;
  return tfw__error(TFW_EDTYPE, "%s: index must be an integer tensor, got %s (int64 or int32 "
                    "expected)", op, tfw_dtype_name(index->dtype));
}

/* PyTorch treats a 0-d tensor as 1-d of size 1 in these ops ("nonempty" dims). */
static int ne_ndim(const tfw_tensor *t) { return t->ndim > 0 ? t->ndim : 1; }
static int64_t ne_size(const tfw_tensor *t, int d) { return t->ndim > 0 ? t->shape[d] : 1; }
static int64_t ne_stride(const tfw_tensor *t, int d) { return t->ndim > 0 ? t->strides[d] : 0; }

/* Checks that every value of idx (contiguous int64) lies in [0, size) of dimension dim.
 * Serial on purpose: the first bad position in row-major order is reported. */
static tfw_status check_values(const char *op, const tfw_tensor *idx, int dim, int64_t size) {
  const int64_t *p = (const int64_t *)tfw__data(idx);
  int64_t n = tfw__numel(idx->ndim, idx->shape);
  for (int64_t i = 0; i < n; i++) {
    if ((uint64_t)p[i] < (uint64_t)size) continue;
    int64_t pos[TFW_MAX_DIMS];
    int64_t r = i;
    for (int d = idx->ndim - 1; d >= 0; d--) {
      pos[d] = r % idx->shape[d];
      r /= idx->shape[d];
    }
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_EINDEX, "%s: index %lld out of range for dimension %d of size %lld (at "
                      "index position %s)", op, (long long)p[i], dim, (long long)size,
                      tfw__shape_str(b, sizeof b, idx->ndim, pos));
  }
  return TFW_OK;
}

/* The index as a contiguous int64 tensor with every value checked. NULL on error. */
static tfw_tensor *checked_index(const char *op, const tfw_tensor *index, int dim, int64_t size) {
  tfw_tensor *idx = tfw__as_contiguous(index, TFW_DTYPE_I64);
  if (!idx) return NULL;
  if (check_values(op, idx, dim, size)) {
    tfw_release(idx);
    return NULL;
  }
  return idx;
}

/* ---- inference ---------------------------------------------------------------------- */

tfw_status tfw__infer_gather(const tfw__call *c, tfw__meta *out) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0], *index = c->in[1];
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (tfw__index_check_dtype(op, index)) return TFW_EDTYPE;
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  out->dtype = t->dtype;
  switch (c->op->id) {
  case TFW__OP_index_select: {
    int64_t m = tfw__numel(index->ndim, index->shape);
    if (index->ndim > 1)
      return tfw__error(TFW_ESHAPE, "%s: index must be 0-d or 1-d, got shape %s", op,
                        tfw__shape_str(b1, sizeof b1, index->ndim, index->shape));
    out->ndim = t->ndim;
    if (t->ndim == 0) {
      if (m != 1)
        return tfw__error(TFW_ESHAPE, "%s: a 0-d t takes exactly 1 index, got %lld", op,
                          (long long)m);
      return TFW_OK;
    }
    for (int d = 0; d < t->ndim; d++) out->shape[d] = d == dim ? m : t->shape[d];
    return TFW_OK;
  }
  case TFW__OP_gather: {
    if (ne_ndim(t) != ne_ndim(index))
      return tfw__error(TFW_ESHAPE, "%s: index must have as many dimensions as t: index is %s, "
                        "t is %s", op, tfw__shape_str(b1, sizeof b1, index->ndim, index->shape),
                        tfw__shape_str(b2, sizeof b2, t->ndim, t->shape));
    if (tfw__numel(index->ndim, index->shape) > 0)
      for (int d = 0; d < ne_ndim(t); d++)
        if (d != dim && ne_size(index, d) > ne_size(t, d))
          return tfw__error(TFW_ESHAPE, "%s: index %s is larger than t %s at dimension %d "
                            "(%lld > %lld); only dimension %d (dim) may be larger", op,
                            tfw__shape_str(b1, sizeof b1, index->ndim, index->shape),
                            tfw__shape_str(b2, sizeof b2, t->ndim, t->shape), d,
                            (long long)ne_size(index, d), (long long)ne_size(t, d), dim);
    out->ndim = index->ndim;
    for (int d = 0; d < index->ndim; d++) out->shape[d] = index->shape[d];
    return TFW_OK;
  }
  default: { /* take_along_dim */
    if (t->ndim != index->ndim)
      return tfw__error(TFW_ESHAPE, "%s: t and index must have the same number of dimensions: "
                        "t is %s, index is %s", op, tfw__shape_str(b1, sizeof b1, t->ndim, t->shape),
                        tfw__shape_str(b2, sizeof b2, index->ndim, index->shape));
    out->ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) {
      int64_t a = t->shape[d], b = index->shape[d];
      if (d == dim) out->shape[d] = b;
      else if (a == b || b == 1) out->shape[d] = a;
      else if (a == 1) out->shape[d] = b;
      else
        return tfw__error(TFW_ESHAPE, "%s: t %s and index %s cannot be broadcast at dimension %d "
                          "(%lld vs %lld)", op, tfw__shape_str(b1, sizeof b1, t->ndim, t->shape),
                          tfw__shape_str(b2, sizeof b2, index->ndim, index->shape), d,
                          (long long)a, (long long)b);
    }
    return TFW_OK;
  }
  }
}

tfw_status tfw__infer_scatter(const tfw__call *c, tfw__meta *out) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0], *index = c->in[1], *src = c->in[2];
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (tfw__index_check_dtype(op, index)) return TFW_EDTYPE;
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) out->shape[d] = t->shape[d];
  if (ne_ndim(src) != ne_ndim(t))
    return tfw__error(TFW_ESHAPE, "%s: src must have as many dimensions as t: src is %s, t is %s",
                      op, tfw__shape_str(b1, sizeof b1, src->ndim, src->shape),
                      tfw__shape_str(b2, sizeof b2, t->ndim, t->shape));
  if (c->op->id == TFW__OP_index_add) {
    int64_t m = tfw__numel(index->ndim, index->shape);
    if (index->ndim > 1)
      return tfw__error(TFW_ESHAPE, "%s: index must be 0-d or 1-d, got shape %s", op,
                        tfw__shape_str(b1, sizeof b1, index->ndim, index->shape));
    if (ne_size(src, dim) != m)
      return tfw__error(TFW_ESHAPE, "%s: src has size %lld at dimension %d but index has %lld "
                        "entries (they must match)", op, (long long)ne_size(src, dim), dim,
                        (long long)m);
    for (int d = 0; d < ne_ndim(t); d++)
      if (d != dim && ne_size(src, d) != ne_size(t, d))
        return tfw__error(TFW_ESHAPE, "%s: src %s and t %s differ at dimension %d (%lld vs %lld); "
                          "only dimension %d (dim) may differ", op,
                          tfw__shape_str(b1, sizeof b1, src->ndim, src->shape),
                          tfw__shape_str(b2, sizeof b2, t->ndim, t->shape), d,
                          (long long)ne_size(src, d), (long long)ne_size(t, d), dim);
    return TFW_OK;
  }
  if (ne_ndim(index) != ne_ndim(t))
    return tfw__error(TFW_ESHAPE, "%s: index must have as many dimensions as t: index is %s, t is "
                      "%s", op, tfw__shape_str(b1, sizeof b1, index->ndim, index->shape),
                      tfw__shape_str(b2, sizeof b2, t->ndim, t->shape));
  if (tfw__numel(index->ndim, index->shape) == 0) return TFW_OK; /* nothing is read or written */
  for (int d = 0; d < ne_ndim(t); d++) {
    if (ne_size(index, d) > ne_size(src, d))
      return tfw__error(TFW_ESHAPE, "%s: index %s is larger than src %s at dimension %d (%lld > "
                        "%lld)", op, tfw__shape_str(b1, sizeof b1, index->ndim, index->shape),
                        tfw__shape_str(b2, sizeof b2, src->ndim, src->shape), d,
                        (long long)ne_size(index, d), (long long)ne_size(src, d));
    if (d != dim && ne_size(index, d) > ne_size(t, d))
      return tfw__error(TFW_ESHAPE, "%s: index %s is larger than t %s at dimension %d (%lld > "
                        "%lld); only dimension %d (dim) may be larger", op,
                        tfw__shape_str(b1, sizeof b1, index->ndim, index->shape),
                        tfw__shape_str(b2, sizeof b2, t->ndim, t->shape), d,
                        (long long)ne_size(index, d), (long long)ne_size(t, d), dim);
  }
  return TFW_OK;
}

/* ---- gather kernel -------------------------------------------------------------------- */

typedef struct gather_ctx {
  tfw__walk w;        /* rows (all dims but the innermost): off[0] idx elems, [1] out bytes, [2] t bytes */
  const int64_t *idx;
  char *dst;
  const char *src;
  size_t es;
  int64_t n;          /* row length (innermost iteration dim) */
  int64_t sik, sdk;   /* idx elements / out bytes along the row */
  int64_t sxk;        /* t bytes along the row (0 when the row runs along dim) */
  int64_t sx;         /* t bytes per unit of index value (t's stride at dim) */
} gather_ctx;

#define GATHER_ROW(T)                                                                  \
  for (int64_t k = 0; k < n; k++)                                                      \
    *(T *)(dp + k * g->sdk) = *(const T *)(xp + ip[k * g->sik] * g->sx + k * g->sxk);

static void gather_rows(int64_t begin, int64_t end, void *ctx) {
  const gather_ctx *g = ctx;
  tfw__walk w = g->w;
  tfw__walk_seek(&w, begin);
  const int64_t n = g->n;
  const size_t es = g->es;
  /* whole rows of t copied at once: index constant along the row, both rows contiguous */
  bool rowcopy = g->sik == 0 && g->sdk == (int64_t)es && g->sxk == (int64_t)es;
  for (int64_t r = begin; r < end; r++, tfw__walk_next(&w)) {
    const int64_t *ip = g->idx + w.off[0];
    char *dp = g->dst + w.off[1];
    const char *xp = g->src + w.off[2];
    if (rowcopy) {
      memcpy(dp, xp + ip[0] * g->sx, (size_t)n * es);
      continue;
    }
    switch (es) {
    case 1: GATHER_ROW(uint8_t); break;
    case 2: GATHER_ROW(uint16_t); break;
    case 4: GATHER_ROW(uint32_t); break;
    default: GATHER_ROW(uint64_t); break;
    }
  }
}

tfw_status tfw__kernel_gather(const tfw__call *c, tfw_tensor **out) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0], *index = c->in[1];
  tfw_tensor *o = out[0];
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  tfw_tensor *idx = checked_index(op, index, dim, ne_size(t, dim));
  if (!idx) return tfw_last_status();
  const int64_t es = (int64_t)tfw_dtype_size(t->dtype);
  int nd = ne_ndim(t);
  int64_t shape[TFW_MAX_DIMS], ist[TFW_MAX_DIMS], tst[TFW_MAX_DIMS], ost[TFW_MAX_DIMS];
  int64_t icontig[TFW_MAX_DIMS];
  tfw__contiguous_strides(idx->ndim, idx->shape, icontig);
  for (int d = 0; d < nd; d++) tst[d] = ne_stride(t, d) * es;
  switch (c->op->id) {
  case TFW__OP_index_select:
    for (int d = 0; d < nd; d++) {
      shape[d] = d == dim ? tfw__numel(idx->ndim, idx->shape) : ne_size(t, d);
      ist[d] = d == dim ? 1 : 0;
    }
    break;
  case TFW__OP_gather:
    nd = ne_ndim(index);
    for (int d = 0; d < nd; d++) {
      shape[d] = ne_size(index, d);
      ist[d] = index->ndim > 0 ? icontig[d] : 0;
    }
    break;
  default: /* take_along_dim: broadcast t and index on the dims other than dim */
    for (int d = 0; d < nd; d++) {
      shape[d] = o->ndim > 0 ? o->shape[d] : 1;
      ist[d] = (index->ndim == 0 || (d != dim && index->shape[d] == 1)) ? 0 : icontig[d];
      if (d != dim && t->ndim > 0 && t->shape[d] == 1) tst[d] = 0;
    }
    break;
  }
  tfw__contiguous_strides(nd, shape, ost);
  for (int d = 0; d < nd; d++) ost[d] *= es;
  int64_t numel = tfw__numel(nd, shape);
  if (numel > 0) {
    gather_ctx g = {.idx = (const int64_t *)tfw__data(idx), .dst = tfw__data(o),
                    .src = tfw__data(t), .es = (size_t)es, .n = shape[nd - 1],
                    .sik = ist[nd - 1], .sdk = ost[nd - 1],
                    .sxk = nd - 1 == dim ? 0 : tst[nd - 1], .sx = tst[dim]};
    g.w.n = nd - 1;
    for (int d = 0; d < nd - 1; d++) {
      g.w.size[d] = shape[d];
      g.w.st[0][d] = ist[d];
      g.w.st[1][d] = ost[d];
      g.w.st[2][d] = d == dim ? 0 : tst[d];
    }
    int64_t grain = TFW__GRAIN_EW / g.n;
    tfw__parallel_for(numel / g.n, grain > 0 ? grain : 1, gather_rows, &g);
  }
  tfw_release(idx);
  return TFW_OK;
}

/* ---- scatter kernel -------------------------------------------------------------------- */

typedef struct scatter_ctx {
  tfw__walk w;         /* planes: off[0] idx elems, [1] src bytes, [2] out bytes */
  const int64_t *idx;
  const char *src;
  char *dst;
  tfw_dtype dt;
  size_t es;
  bool add;
  int64_t m;           /* index positions along dim, visited in order */
  int64_t si, sd;      /* idx elements / src bytes per step along dim */
  int64_t sx;          /* out bytes per unit of index value */
  int64_t kn, kblock, nkb; /* innermost dim: extent, block size, blocks per plane */
  int64_t sik, sdk, sxk;   /* idx elements / src bytes / out bytes along the innermost dim */
} scatter_ctx;

#define SCATTER_BLOCK(T, STMT)                                                      \
  for (int64_t j = 0; j < m; j++) {                                                 \
    const int64_t *ipj = ip + j * s->si;                                            \
    const char *dpj = dp + j * s->sd;                                               \
    for (int64_t k = k0; k < k1; k++) {                                             \
      const T *a = (const T *)(dpj + k * s->sdk);                                   \
      T *x = (T *)(xp + ipj[k * s->sik] * s->sx + k * s->sxk);                      \
      STMT;                                                                         \
    }                                                                               \
  }
/* Integer adds wrap (two's complement) like PyTorch, without signed-overflow UB. */
#define IADD(T) SCATTER_BLOCK(T, *x = (T)((uint64_t)*x + (uint64_t)*a))

static void scatter_tasks(int64_t begin, int64_t end, void *ctx) {
  const scatter_ctx *s = ctx;
  tfw__walk w = s->w;
  int64_t plane = begin / s->nkb;
  tfw__walk_seek(&w, plane);
  const int64_t m = s->m;
  for (int64_t task = begin; task < end; task++) {
    if (task / s->nkb != plane) {
      plane = task / s->nkb;
      tfw__walk_next(&w);
    }
    int64_t k0 = (task % s->nkb) * s->kblock;
    int64_t k1 = k0 + s->kblock < s->kn ? k0 + s->kblock : s->kn;
    const int64_t *ip = s->idx + w.off[0];
    const char *dp = s->src + w.off[1];
    char *xp = s->dst + w.off[2];
    if (!s->add) {
      switch (s->es) {
      case 1: SCATTER_BLOCK(uint8_t, *x = *a); break;
      case 2: SCATTER_BLOCK(uint16_t, *x = *a); break;
      case 4: SCATTER_BLOCK(uint32_t, *x = *a); break;
      default: SCATTER_BLOCK(uint64_t, *x = *a); break;
      }
      continue;
    }
    switch (s->dt) {
    case TFW_DTYPE_F32: SCATTER_BLOCK(float, *x += *a); break;
    case TFW_DTYPE_F64: SCATTER_BLOCK(double, *x += *a); break;
    case TFW_DTYPE_I8: IADD(int8_t); break;
    case TFW_DTYPE_U8: IADD(uint8_t); break;
    case TFW_DTYPE_I32: IADD(int32_t); break;
    case TFW_DTYPE_I64: IADD(int64_t); break;
    case TFW_DTYPE_BOOL: SCATTER_BLOCK(uint8_t, *x = (uint8_t)((*x | *a) != 0)); break;
    default: TFW_ASSERT(0 && "scatter: f16/bf16 adds run in f32"); break;
    }
  }
}

/* Blocks of the innermost dim per task: large enough to amortise the index loads of the
 * outer loop, small enough that [N, D] index_add on wide D still splits across threads. */
#define SCATTER_KBLOCK 1024

tfw_status tfw__kernel_scatter(const tfw__call *c, tfw_tensor **out) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0], *index = c->in[1], *src = c->in[2];
  tfw_tensor *o = out[0];
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  bool add = c->op->id != TFW__OP_scatter;
  bool half = t->dtype == TFW_DTYPE_F16 || t->dtype == TFW_DTYPE_BF16;
  tfw_dtype wdt = add && half ? TFW_DTYPE_F32 : t->dtype;
  tfw_tensor *idx = NULL, *work = NULL, *src2 = NULL;
  tfw_status st = TFW_OK;
  if (!(idx = checked_index(op, index, dim, ne_size(t, dim)))) goto fail;
  work = wdt == t->dtype ? tfw_retain(o) : tfw__tensor_new(op, wdt, t->ndim, t->shape);
  if (!work) goto fail;
  if ((st = tfw__copy_cast(work, t))) goto done;
  if (src->dtype == wdt) {
    src2 = tfw_retain((tfw_tensor *)src);
  } else if (wdt != t->dtype && src->dtype != t->dtype) {
    /* f16/bf16 t: round src to t's dtype first (PyTorch casts src to t's dtype) */
    tfw_tensor *tmp = tfw__as_contiguous(src, t->dtype);
    src2 = tmp ? tfw__as_contiguous(tmp, wdt) : NULL;
    tfw_release(tmp);
  } else {
    src2 = tfw__as_contiguous(src, wdt);
  }
  if (!src2) goto fail;

  const int64_t es = (int64_t)tfw_dtype_size(wdt);
  int nd;
  int64_t shape[TFW_MAX_DIMS], ist[TFW_MAX_DIMS], sst[TFW_MAX_DIMS], xst[TFW_MAX_DIMS];
  int64_t tshape[TFW_MAX_DIMS];
  for (int d = 0; d < ne_ndim(t); d++) tshape[d] = ne_size(t, d);
  tfw__contiguous_strides(ne_ndim(t), tshape, xst);
  if (c->op->id == TFW__OP_index_add) {
    nd = ne_ndim(t);
    for (int d = 0; d < nd; d++) {
      shape[d] = ne_size(src2, d);
      ist[d] = d == dim ? 1 : 0;
    }
  } else {
    nd = ne_ndim(index);
    tfw__contiguous_strides(idx->ndim, idx->shape, ist);
    for (int d = 0; d < nd; d++) {
      shape[d] = ne_size(index, d);
      if (index->ndim == 0) ist[d] = 0;
    }
  }
  for (int d = 0; d < nd; d++) {
    sst[d] = ne_stride(src2, d) * es;
    xst[d] *= es;
  }
  int64_t numel = tfw__numel(nd, shape);
  if (numel > 0) {
    int kd = nd - 1 == dim ? -1 : nd - 1; /* the innermost dim, unless it is dim itself */
    scatter_ctx s = {.idx = (const int64_t *)tfw__data(idx), .src = tfw__data(src2),
                     .dst = tfw__data(work), .dt = wdt, .es = (size_t)es, .add = add,
                     .m = shape[dim], .si = ist[dim], .sd = sst[dim], .sx = xst[dim],
                     .kn = kd >= 0 ? shape[kd] : 1,
                     .sik = kd >= 0 ? ist[kd] : 0, .sdk = kd >= 0 ? sst[kd] : 0,
                     .sxk = kd >= 0 ? xst[kd] : 0};
    s.kblock = s.kn < SCATTER_KBLOCK ? s.kn : SCATTER_KBLOCK;
    s.nkb = (s.kn + s.kblock - 1) / s.kblock;
    s.w.n = 0;
    for (int d = 0; d < nd; d++) {
      if (d == dim || d == kd) continue;
      s.w.size[s.w.n] = shape[d];
      s.w.st[0][s.w.n] = ist[d];
      s.w.st[1][s.w.n] = sst[d];
      s.w.st[2][s.w.n] = xst[d];
      s.w.n++;
    }
    int64_t per_task = s.m * s.kblock;
    int64_t grain = TFW__GRAIN_EW / (per_task > 0 ? per_task : 1);
    int64_t tasks = (numel / (s.m * s.kn)) * s.nkb;
    tfw__parallel_for(tasks, grain > 0 ? grain : 1, scatter_tasks, &s);
  }
  if (work != o) st = tfw__copy_cast(o, work);
  goto done;
fail:
  st = tfw_last_status();
done:
  tfw_release(idx);
  tfw_release(work);
  tfw_release(src2);
  return st;
}

/* ---- public wrappers ------------------------------------------------------------------ */

static tfw_tensor *run_index(tfw__op_id id, const tfw_tensor *t, const tfw_tensor *index,
                             const tfw_tensor *src, int64_t dim) {
  const char *op = tfw__ops[id].name;
  if (tfw__check_tensor(op, "t", t) || tfw__check_tensor(op, "index", index)) return NULL;
  if (tfw__ops[id].n_in == 3 && tfw__check_tensor(op, "src", src)) return NULL;
  const tfw_tensor *in[3] = {t, index, src};
  tfw__call c;
  tfw__call_init(&c, id, tfw__ops[id].n_in, in);
  c.a.i[0] = dim;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_index_select(const tfw_tensor *t, int dim, const tfw_tensor *index) {
  return run_index(TFW__OP_index_select, t, index, NULL, dim);
}
tfw_tensor *tfw_gather(const tfw_tensor *t, int dim, const tfw_tensor *index) {
  return run_index(TFW__OP_gather, t, index, NULL, dim);
}
tfw_tensor *tfw_take_along_dim(const tfw_tensor *t, const tfw_tensor *index, int dim) {
  return run_index(TFW__OP_take_along_dim, t, index, NULL, dim);
}
tfw_tensor *tfw_scatter(const tfw_tensor *t, int dim, const tfw_tensor *index,
                        const tfw_tensor *src) {
  return run_index(TFW__OP_scatter, t, index, src, dim);
}
tfw_tensor *tfw_scatter_add(const tfw_tensor *t, int dim, const tfw_tensor *index,
                            const tfw_tensor *src) {
  return run_index(TFW__OP_scatter_add, t, index, src, dim);
}
tfw_tensor *tfw_index_add(const tfw_tensor *t, int dim, const tfw_tensor *index,
                          const tfw_tensor *src) {
  return run_index(TFW__OP_index_add, t, index, src, dim);
}
