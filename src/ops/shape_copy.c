/* Shape ops, part 2 (src/ops/shape.def): pad, flip, roll, repeat, tile, tril, triu.
 *
 * None of these needs a typed loop of its own: each is a few block copies between strided
 * views (tfw__light_view) handed to tfw__copy_cast, which is parallel, dtype-generic and
 * coalesces contiguous runs into memcpy.
 *   flip    one copy from a view with negated strides.
 *   roll    two copies (the two halves swap places).
 *   repeat  one copy from a stride-0 view into a view of the output whose dims are split
 *           into (repeat, size) pairs; when that needs more than TFW_MAX_DIMS dims, the
 *           outermost repeat dims become an explicit loop of copies.
 *   pad     constant: fill, then copy the (possibly cropped) input into the middle.
 *           reflect/replicate: copy the middle, then fill the borders dim by dim by copying
 *           already-written slices of the output (one copy per padded index).
 *   tril/triu  copy, then zero each row's masked columns (a memset per row: zero is the
 *           all-zero bit pattern in every dtype, f16/bf16 and bool included). */

#include "core/iter.h"
#include "ops/registry.h"
#include "ops/samples.h"
#include "ops/view.h"

#define PAD_MAX_PAIRS (TFW_MAX_DIMS / 2) /* pads per registry call: a.ints holds 8 entries */

/* ---- inference ------------------------------------------------------------------------- */

static tfw_status pad_check(const tfw__call *c, tfw__meta *m) {
  const tfw_tensor *t = c->in[0];
  const tfw__attrs *a = &c->a;
  const char *op = c->op->name;
  if (a->n_ints < 0 || a->n_ints % 2 != 0 || a->n_ints / 2 > t->ndim)
    return tfw__error(TFW_EVALUE, "pad: %d pad entries given for a %d-d tensor (expected an even "
                      "number, at most %d)", a->n_ints, t->ndim, 2 * t->ndim);
  int64_t mode = a->i[0];
  if (mode != TFW_PAD_CONSTANT && mode != TFW_PAD_REFLECT && mode != TFW_PAD_REPLICATE)
    return tfw__error(TFW_EVALUE, "pad: unknown mode %lld", (long long)mode);
  m->dtype = t->dtype;
  m->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) m->shape[d] = t->shape[d];
  for (int k = 0; k < a->n_ints / 2; k++) {
    int d = t->ndim - 1 - k;
    int64_t before = a->ints[2 * k], after = a->ints[2 * k + 1], size = t->shape[d], n;
    if (mode != TFW_PAD_CONSTANT && (before < 0 || after < 0))
      return tfw__error(TFW_EVALUE, "pad: negative padding (%lld, %lld) for dimension %d is only "
                        "supported in constant mode", (long long)before, (long long)after, d);
    if (mode == TFW_PAD_REFLECT && (before >= size || after >= size) && (before || after))
      return tfw__error(TFW_EVALUE, "pad: reflect padding (%lld, %lld) must be less than the "
                        "size %lld of dimension %d", (long long)before, (long long)after,
                        (long long)size, d);
    if (mode == TFW_PAD_REPLICATE && size == 0 && (before || after))
      return tfw__error(TFW_EVALUE, "pad: replicate padding (%lld, %lld) needs a non-empty "
                        "dimension %d", (long long)before, (long long)after, d);
    if (__builtin_add_overflow(size, before, &n) || __builtin_add_overflow(n, after, &n) || n < 0)
      return tfw__error(TFW_ESHAPE, "%s: padding (%lld, %lld) of dimension %d of size %lld gives "
                        "an invalid size", op, (long long)before, (long long)after, d,
                        (long long)size);
    m->shape[d] = n;
  }
  return TFW_OK;
}

tfw_status tfw__infer_pad(const tfw__call *c, tfw__meta *out) { return pad_check(c, out); }

static tfw_status same_check(const tfw__call *c, tfw__meta *m, bool *flip) {
  const tfw_tensor *t = c->in[0];
  const char *op = c->op->name;
  m->dtype = t->dtype;
  m->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) m->shape[d] = t->shape[d];
  if (c->op->id == TFW__OP_roll) {
    int64_t dim = c->a.i[1];
    if (dim < INT32_MIN || dim > INT32_MAX || tfw__wrap_dim(op, (int)dim, t->ndim) < 0)
      return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d "
                        "dimensions", op, (long long)dim, t->ndim);
    return TFW_OK;
  }
  /* flip */
  if (c->a.n_ints < 0 || c->a.n_ints > TFW_MAX_DIMS)
    return tfw__error(TFW_EVALUE, "%s: %d dims given", op, c->a.n_ints);
  bool seen[TFW_MAX_DIMS] = {false};
  for (int k = 0; k < c->a.n_ints; k++) {
    int64_t dim = c->a.ints[k];
    int d = dim < INT32_MIN || dim > INT32_MAX ? -1 : tfw__wrap_dim(op, (int)dim, t->ndim);
    if (d < 0)
      return tfw__error(TFW_EINDEX, "%s: dimension %lld out of range for a tensor of %d "
                        "dimensions", op, (long long)dim, t->ndim);
    if (seen[d]) return tfw__error(TFW_EVALUE, "%s: dimension %d appears twice in dims", op, d);
    seen[d] = true;
    if (flip && t->ndim > 0) flip[d] = true;
  }
  return TFW_OK;
}

tfw_status tfw__infer_shape_same(const tfw__call *c, tfw__meta *out) {
  return same_check(c, out, NULL);
}

/* The input's shape padded with leading 1s and the repeats, both of length nd. */
static tfw_status repeat_check(const tfw__call *c, tfw__meta *m, int64_t *ishape, int64_t *reps) {
  const tfw_tensor *t = c->in[0];
  const char *op = c->op->name;
  int n = c->a.n_ints;
  if (n < 0 || n > TFW_MAX_DIMS)
    return tfw__error(TFW_ESHAPE, "%s: %d repeats given (at most %d)", op, n, TFW_MAX_DIMS);
  if (c->op->id == TFW__OP_repeat && n < t->ndim)
    return tfw__error(TFW_ESHAPE, "%s: %d repeats given for a tensor of %d dimensions (need at "
                      "least as many)", op, n, t->ndim);
  int nd = n > t->ndim ? n : t->ndim;
  for (int k = 0; k < nd; k++) {
    int j = k - (nd - t->ndim), r = k - (nd - n);
    ishape[k] = j < 0 ? 1 : t->shape[j];
    reps[k] = r < 0 ? 1 : c->a.ints[r];
    if (reps[k] < 0)
      return tfw__error(TFW_EVALUE, "%s: repeats must be non-negative, got %lld at index %d", op,
                        (long long)reps[k], r);
    if (__builtin_mul_overflow(ishape[k], reps[k], &m->shape[k]))
      return tfw__error(TFW_ESHAPE, "%s: repeating %lld times a dimension of size %lld overflows",
                        op, (long long)reps[k], (long long)ishape[k]);
  }
  m->dtype = t->dtype;
  m->ndim = nd;
  return TFW_OK;
}

tfw_status tfw__infer_repeat(const tfw__call *c, tfw__meta *out) {
  int64_t ishape[TFW_MAX_DIMS], reps[TFW_MAX_DIMS];
  return repeat_check(c, out, ishape, reps);
}

tfw_status tfw__infer_tri(const tfw__call *c, tfw__meta *out) {
  const tfw_tensor *t = c->in[0];
  if (t->ndim < 2) {
    char b[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "%s: input must have at least 2 dimensions, got shape %s",
                      c->op->name, tfw__shape_str(b, sizeof b, t->ndim, t->shape));
  }
  out->dtype = t->dtype;
  out->ndim = t->ndim;
  for (int d = 0; d < t->ndim; d++) out->shape[d] = t->shape[d];
  return TFW_OK;
}

/* ---- kernels ------------------------------------------------------------------------------ */

/* A block of t: [start[d], start[d] + len[d]) on every dim. */
static void block(tfw_tensor *v, const tfw_tensor *t, const int64_t *start, const int64_t *len) {
  int64_t off = t->offset;
  for (int d = 0; d < t->ndim; d++) off += start[d] * t->strides[d];
  tfw__light_view(v, t, t->ndim, len, t->strides, off);
}

tfw_status tfw__kernel_pad(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw_tensor *o = out[0];
  const tfw__attrs *a = &c->a;
  int nd = t->ndim, npairs = a->n_ints / 2;
  int64_t before[TFW_MAX_DIMS] = {0}, after[TFW_MAX_DIMS] = {0};
  bool grows = false;
  for (int k = 0; k < npairs; k++) {
    before[nd - 1 - k] = a->ints[2 * k];
    after[nd - 1 - k] = a->ints[2 * k + 1];
    grows |= a->ints[2 * k] > 0 || a->ints[2 * k + 1] > 0;
  }
  /* the part of the input that lands in the output, and where */
  int64_t src0[TFW_MAX_DIMS], dst0[TFW_MAX_DIMS], len[TFW_MAX_DIMS];
  bool empty = false;
  for (int d = 0; d < nd; d++) {
    src0[d] = before[d] < 0 ? -before[d] : 0;
    dst0[d] = before[d] > 0 ? before[d] : 0;
    len[d] = o->shape[d] - dst0[d] - (after[d] > 0 ? after[d] : 0);
    if (len[d] <= 0) empty = true;
  }
  tfw_status st;
  if (a->i[0] == TFW_PAD_CONSTANT) {
    if (grows && (st = tfw_fill_(o, a->f[0]))) return st;
    if (empty) return TFW_OK;
    tfw_tensor dst, src;
    block(&dst, o, dst0, len);
    block(&src, t, src0, len);
    return tfw__copy_cast(&dst, &src);
  }
  if (empty && tfw__numel(o->ndim, o->shape) == 0) return TFW_OK;
  tfw_tensor dst, src;
  block(&dst, o, dst0, len);
  block(&src, t, src0, len);
  if ((st = tfw__copy_cast(&dst, &src))) return st;
  /* region: full range on dims already padded, the middle on the others */
  int64_t rstart[TFW_MAX_DIMS], rlen[TFW_MAX_DIMS];
  for (int d = 0; d < nd; d++) {
    rstart[d] = dst0[d];
    rlen[d] = len[d];
  }
  for (int d = nd - 1; d >= nd - npairs; d--) {
    int64_t size = t->shape[d], b = before[d];
    for (int64_t j = 0; j < o->shape[d]; j++) {
      if (j >= b && j < b + size) continue;
      int64_t x = j - b; /* input coordinate outside [0, size) */
      int64_t from;
      if (a->i[0] == TFW_PAD_REFLECT) from = x < 0 ? -x : 2 * (size - 1) - x;
      else from = x < 0 ? 0 : size - 1;
      int64_t s0[TFW_MAX_DIMS], l1[TFW_MAX_DIMS];
      for (int e = 0; e < nd; e++) {
        s0[e] = rstart[e];
        l1[e] = rlen[e];
      }
      l1[d] = 1;
      s0[d] = j;
      block(&dst, o, s0, l1);
      s0[d] = b + from;
      block(&src, o, s0, l1);
      if ((st = tfw__copy_cast(&dst, &src))) return st;
    }
    rstart[d] = 0;
    rlen[d] = o->shape[d];
  }
  return TFW_OK;
}

tfw_status tfw__kernel_flip(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw__meta m;
  bool flip[TFW_MAX_DIMS] = {false};
  tfw_status st = same_check(c, &m, flip);
  if (st) return st;
  int64_t strides[TFW_MAX_DIMS], off = t->offset;
  for (int d = 0; d < t->ndim; d++) {
    strides[d] = t->strides[d];
    if (flip[d] && t->shape[d] > 0) {
      off += (t->shape[d] - 1) * t->strides[d];
      strides[d] = -t->strides[d];
    }
  }
  tfw_tensor src;
  tfw__light_view(&src, t, t->ndim, t->shape, strides, off);
  return tfw__copy_cast(out[0], &src);
}

tfw_status tfw__kernel_roll(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw_tensor *o = out[0];
  int d = t->ndim == 0 ? -1 : tfw__wrap_dim("roll", (int)c->a.i[1], t->ndim);
  int64_t n = d < 0 ? 0 : t->shape[d];
  int64_t s = n > 0 ? ((c->a.i[0] % n) + n) % n : 0;
  if (s == 0) return tfw__copy_cast(o, t);
  int64_t zero[TFW_MAX_DIMS] = {0}, start[TFW_MAX_DIMS] = {0}, len[TFW_MAX_DIMS];
  for (int k = 0; k < t->ndim; k++) len[k] = t->shape[k];
  tfw_tensor dst, src;
  /* out[s:] = in[:n - s] */
  len[d] = n - s;
  start[d] = s;
  block(&dst, o, start, len);
  block(&src, t, zero, len);
  tfw_status st = tfw__copy_cast(&dst, &src);
  if (st) return st;
  /* out[:s] = in[n - s:] */
  len[d] = s;
  start[d] = n - s;
  block(&dst, o, zero, len);
  block(&src, t, start, len);
  return tfw__copy_cast(&dst, &src);
}

/* Output dims of repeat: dim k of the padded input becomes (reps[k], ishape[k]) in a view of
 * the output, with the source broadcast (stride 0) over the repeat part. Dims where either
 * part is 1 need only one view dim. */
tfw_status tfw__kernel_repeat(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw_tensor *o = out[0];
  tfw__meta m;
  int64_t ishape[TFW_MAX_DIMS], reps[TFW_MAX_DIMS];
  tfw_status st = repeat_check(c, &m, ishape, reps);
  if (st) return st;
  if (tfw__numel(o->ndim, o->shape) == 0) return TFW_OK;
  int nd = m.ndim, lead = nd - t->ndim;
  int64_t istr[TFW_MAX_DIMS];
  for (int k = 0; k < nd; k++) istr[k] = k < lead ? 0 : t->strides[k - lead];
  /* how many dims the split view needs, and which leading repeat dims to loop over */
  int need = 0;
  for (int k = 0; k < nd; k++) need += (reps[k] > 1 && ishape[k] > 1) ? 2 : 1;
  bool loop[TFW_MAX_DIMS] = {false};
  for (int k = 0; k < nd && need > TFW_MAX_DIMS; k++)
    if (reps[k] > 1 && ishape[k] > 1) {
      loop[k] = true;
      need--;
    }
  int vn = 0;
  int64_t vshape[TFW_MAX_DIMS], ostr[TFW_MAX_DIMS], sstr[TFW_MAX_DIMS];
  for (int k = 0; k < nd; k++) {
    if (reps[k] > 1 && !loop[k]) {
      vshape[vn] = reps[k];
      ostr[vn] = ishape[k] * o->strides[k];
      sstr[vn++] = 0;
    }
    if (ishape[k] > 1 || (reps[k] <= 1 && !loop[k]) || loop[k]) {
      vshape[vn] = ishape[k];
      ostr[vn] = o->strides[k];
      sstr[vn++] = istr[k];
    }
  }
  /* an odometer over the looped repeat indices (a single pass when nothing loops) */
  int64_t idx[TFW_MAX_DIMS] = {0};
  for (;;) {
    int64_t off = o->offset;
    for (int k = 0; k < nd; k++)
      if (loop[k]) off += idx[k] * ishape[k] * o->strides[k];
    tfw_tensor dst, src;
    tfw__light_view(&dst, o, vn, vshape, ostr, off);
    tfw__light_view(&src, t, vn, vshape, sstr, t->offset);
    if ((st = tfw__copy_cast(&dst, &src))) return st;
    int k = nd - 1;
    for (; k >= 0; k--) {
      if (!loop[k]) continue;
      if (++idx[k] < reps[k]) break;
      idx[k] = 0;
    }
    if (k < 0) return TFW_OK;
  }
}

typedef struct tri_ctx {
  char *data;    /* contiguous output */
  int64_t rows;  /* size of dim -2 */
  int64_t cols;  /* size of dim -1 */
  int64_t diag;  /* clamped diagonal */
  size_t es;
  bool upper;
} tri_ctx;

/* Zeroes the masked columns of output rows [begin, end) (row r is index r % rows of dim -2). */
static void tri_rows(int64_t begin, int64_t end, void *p) {
  const tri_ctx *x = p;
  for (int64_t r = begin; r < end; r++) {
    int64_t i = r % x->rows;
    int64_t edge = i + x->diag; /* tril keeps j <= edge, triu keeps j >= edge */
    int64_t z0, z1;             /* zeroed columns [z0, z1) */
    if (x->upper) {
      z0 = 0;
      z1 = edge < 0 ? 0 : edge > x->cols ? x->cols : edge;
    } else {
      z0 = edge + 1 < 0 ? 0 : edge + 1 > x->cols ? x->cols : edge + 1;
      z1 = x->cols;
    }
    if (z1 > z0) memset(x->data + (r * x->cols + z0) * (int64_t)x->es, 0, (size_t)(z1 - z0) * x->es);
  }
}

tfw_status tfw__kernel_tri(const tfw__call *c, tfw_tensor **out) {
  const tfw_tensor *t = c->in[0];
  tfw_tensor *o = out[0];
  tfw_status st = tfw__copy_cast(o, t);
  if (st) return st;
  tri_ctx x = {tfw__data(o), o->shape[o->ndim - 2], o->shape[o->ndim - 1], c->a.i[0],
               tfw_dtype_size(o->dtype), c->op->id == TFW__OP_triu};
  if (x.rows == 0 || x.cols == 0) return TFW_OK;
  /* clamp so that i + diag cannot overflow; beyond these bounds the mask no longer changes */
  if (x.diag > x.cols + 1) x.diag = x.cols + 1;
  if (x.diag < -x.rows - 1) x.diag = -x.rows - 1;
  int64_t nrows = tfw__numel(o->ndim, o->shape) / x.cols;
  int64_t grain = TFW__GRAIN_EW / x.cols > 0 ? TFW__GRAIN_EW / x.cols : 1;
  tfw__parallel_for(nrows, grain, tri_rows, &x);
  return TFW_OK;
}

/* ---- samples ------------------------------------------------------------------------------ */

int tfw__sample_shape_copy(const tfw__op_def *op, tfw__call *calls, int cap) {
  static const tfw__layout layouts[3] = {TFW__LAYOUT_CONTIGUOUS, TFW__LAYOUT_STRIDED,
                                         TFW__LAYOUT_BROADCAST};
  static const tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16};
  static const int64_t shape[3] = {2, 4, 5};
  int n = 0;
  for (int s = 0; s < 3 && n < cap; s++) {
    tfw_tensor *t = tfw__sample_tensor(dts[s], 3, shape, -5, 5, (uint64_t)s, layouts[s]);
    if (!t) break;
    tfw__call *c = &calls[n++];
    tfw__call_init(c, op->id, 1, (const tfw_tensor *const *)&t);
    tfw__attrs *a = &c->a;
    switch (op->id) {
    case TFW__OP_pad: {
      static const int64_t pads[3][4] = {{1, 2, -1, 3}, {3, 1, 2, 0}, {0, 4, 1, 1}};
      a->n_ints = 4;
      for (int k = 0; k < 4; k++) a->ints[k] = pads[s][k];
      a->i[0] = s; /* constant, reflect, replicate */
      a->f[0] = 1.5;
      break;
    }
    case TFW__OP_flip:
      a->n_ints = 2;
      a->ints[0] = s - 1;
      a->ints[1] = s == 0 ? 0 : s;
      break;
    case TFW__OP_roll:
      a->i[0] = s == 1 ? -7 : 3;
      a->i[1] = s - 1;
      break;
    case TFW__OP_repeat:
    case TFW__OP_tile:
      a->n_ints = op->id == TFW__OP_tile && s == 1 ? 2 : 4;
      for (int k = 0; k < a->n_ints; k++) a->ints[k] = (k + s) % 3 + 1;
      break;
    case TFW__OP_tril:
    case TFW__OP_triu:
      a->i[0] = s - 1;
      break;
    default:
      break;
    }
  }
  return n;
}

/* ---- public wrappers ---------------------------------------------------------------------- */

tfw_tensor *tfw_pad(const tfw_tensor *t, int npairs, const int64_t *pads, tfw_pad_mode mode,
                    double value) {
  if (npairs < 0 || npairs > TFW_MAX_DIMS) {
    tfw__error(TFW_EVALUE, "pad: %d pad pairs given (expected 0 to %d)", npairs, TFW_MAX_DIMS);
    return NULL;
  }
  if (npairs > 0 && !pads) {
    tfw__error(TFW_EVALUE, "pad: 'pads' is NULL");
    return NULL;
  }
  if (t && npairs > t->ndim) {
    tfw__error(TFW_EVALUE, "pad: %d pad entries given for a %d-d tensor (expected an even "
               "number, at most %d)", 2 * npairs, t->ndim, 2 * t->ndim);
    return NULL;
  }
  /* A registry call holds PAD_MAX_PAIRS pairs. The dims are independent, so more pairs are
   * applied by a chain of calls: each later call sees the (contiguous) result of the previous
   * one with the already padded trailing dims merged into one (a view), pads that merged dim
   * by (0, 0) and the next dims by their pairs, and is unflattened back (a view). */
  tfw_tensor *cur = tfw_retain((tfw_tensor *)t);
  int done = 0;
  do {
    int room = done == 0 ? PAD_MAX_PAIRS : PAD_MAX_PAIRS - 1;
    int k = npairs - done < room ? npairs - done : room;
    int nd = cur ? cur->ndim : 0;
    tfw_tensor *in = done > 0 ? tfw_flatten(cur, nd - done, nd - 1) : tfw_retain(cur);
    tfw__call c;
    tfw__call_init(&c, TFW__OP_pad, 1, (const tfw_tensor *const *)&in);
    int m = 0;
    if (done > 0) {
      c.a.ints[m++] = 0;
      c.a.ints[m++] = 0;
    }
    for (int j = 0; j < 2 * k; j++) c.a.ints[m++] = pads[2 * done + j];
    c.a.n_ints = m;
    c.a.i[0] = (int64_t)mode;
    c.a.f[0] = value;
    tfw_tensor *next = in || !done ? tfw__op_run(&c) : NULL;
    if (next && done > 0) {
      tfw_tensor *full = tfw_unflatten(next, -1, done, cur->shape + nd - done);
      tfw_release(next);
      next = full;
    }
    tfw_release(in);
    tfw_release(cur);
    cur = next;
    done += k;
  } while (cur && done < npairs);
  return cur;
}

tfw_tensor *tfw_flip(const tfw_tensor *t, int ndims, const int *dims) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_flip, 1, &t);
  if (ndims < 0 || ndims > TFW_MAX_DIMS || (ndims > 0 && !dims)) {
    tfw__error(TFW_EVALUE, "flip: %d dims given%s", ndims, ndims > 0 && !dims ? " but 'dims' is NULL" : "");
    return NULL;
  }
  c.a.n_ints = ndims;
  for (int k = 0; k < ndims; k++) c.a.ints[k] = dims[k];
  return tfw__op_run(&c);
}

tfw_tensor *tfw_roll(const tfw_tensor *t, int64_t shift, int dim) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_roll, 1, &t);
  c.a.i[0] = shift;
  c.a.i[1] = dim;
  return tfw__op_run(&c);
}

static tfw_tensor *run_reps(tfw__op_id id, const tfw_tensor *t, int n, const int64_t *reps) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &t);
  if (tfw__call_set_ints(&c, "repeats", n, reps)) return NULL;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_repeat(const tfw_tensor *t, int n, const int64_t *repeats) {
  return run_reps(TFW__OP_repeat, t, n, repeats);
}

tfw_tensor *tfw_tile(const tfw_tensor *t, int n, const int64_t *reps) {
  return run_reps(TFW__OP_tile, t, n, reps);
}

tfw_tensor *tfw_tril(const tfw_tensor *t, int64_t diagonal) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_tril, 1, &t);
  c.a.i[0] = diagonal;
  return tfw__op_run(&c);
}

tfw_tensor *tfw_triu(const tfw_tensor *t, int64_t diagonal) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_triu, 1, &t);
  c.a.i[0] = diagonal;
  return tfw__op_run(&c);
}
