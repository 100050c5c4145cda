/* Tests of the shape ops (src/ops/shape.c, shape_copy.c): cat, stack, split, chunk, pad,
 * flip, roll, repeat, tile, tril, triu against naive index-arithmetic references on
 * f32/f64/i64/bool/f16 inputs in contiguous, strided and broadcast layouts; edge cases;
 * errors; the registry samples. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

static const tfw_dtype DTS[5] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_I64, TFW_DTYPE_BOOL,
                                 TFW_DTYPE_F16};

/* layout 0 contiguous, 1 strided, 2 broadcast (dim 0 expanded from size 1) */
static tfw_tensor *input(tfw_dtype dt, int nd, const int64_t *shape, int layout, uint64_t seed) {
  if (layout == 1 && nd > 0) return th_random_strided(dt, nd, shape, -9, 9, seed);
  if (layout == 2 && nd > 0) {
    int64_t small[TFW_MAX_DIMS];
    memcpy(small, shape, sizeof(int64_t) * (size_t)nd);
    small[0] = 1;
    tfw_tensor *s = th_random(dt, nd, small, -9, 9, seed);
    tfw_tensor *e = tfw_expand(s, nd, shape);
    cr_assert(e, "expand: %s", tfw_last_error());
    tfw_release(s);
    return e;
  }
  return th_random(dt, nd, shape, -9, 9, seed);
}

static void unravel(int64_t lin, int nd, const int64_t *shape, int64_t *idx) {
  for (int d = nd - 1; d >= 0; d--) {
    idx[d] = lin % shape[d];
    lin /= shape[d];
  }
}

static int64_t ravel(int nd, const int64_t *shape, const int64_t *idx) {
  int64_t lin = 0;
  for (int d = 0; d < nd; d++) lin = lin * shape[d] + idx[d];
  return lin;
}

/* Output multi-index -> input multi-index; false means "not from the input" (fill value). */
typedef bool (*map_fn)(const int64_t *o, int64_t *i, const void *ctx);

static void check_map(const tfw_tensor *out, const tfw_tensor *in, int nd, const int64_t *shape,
                      map_fn map, const void *ctx, double fill, const char *what) {
  cr_assert(out, "%s: %s", what, tfw_last_error());
  double *iv = th_values(in);
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *ref = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int64_t o[TFW_MAX_DIMS] = {0}, i[TFW_MAX_DIMS] = {0};
  for (int64_t k = 0; k < n; k++) {
    unravel(k, nd, shape, o);
    ref[k] = map(o, i, ctx) ? iv[ravel(tfw_tensor_ndim(in), tfw_tensor_shape(in), i)] : fill;
  }
  th_expect_close(out, tfw_tensor_dtype(in), nd, shape, ref, 0, 0, what);
  free(ref);
  free(iv);
}

#define EXPECT_ERR(expr, code, needle)                                     \
  do {                                                                     \
    tfw_tensor *r_ = (expr);                                               \
    cr_assert_null(r_, "%s: expected an error", #expr);                    \
    th_expect_error(tfw_last_status(), code, needle, #expr);               \
  } while (0)

/* ---- cat / stack ----------------------------------------------------------------------- */

/* Reference cat of n tensors along dim, computed in double into ref (row-major). */
static double *ref_cat(int n, tfw_tensor *const *ts, int dim, bool stack, int nd,
                       const int64_t *oshape) {
  int64_t total = 1;
  for (int d = 0; d < nd; d++) total *= oshape[d];
  double *ref = malloc(sizeof(double) * (size_t)(total > 0 ? total : 1));
  double **vals = malloc(sizeof(double *) * (size_t)n);
  for (int k = 0; k < n; k++) vals[k] = th_values(ts[k]);
  int64_t o[TFW_MAX_DIMS] = {0}, i[TFW_MAX_DIMS] = {0};
  for (int64_t lin = 0; lin < total; lin++) {
    unravel(lin, nd, oshape, o);
    int k = 0;
    int64_t pos = o[dim];
    if (stack) {
      k = (int)pos;
      for (int d = 0, j = 0; d < nd; d++)
        if (d != dim) i[j++] = o[d];
    } else {
      while (pos >= tfw_tensor_shape(ts[k])[dim]) pos -= tfw_tensor_shape(ts[k++])[dim];
      memcpy(i, o, sizeof(int64_t) * (size_t)nd);
      i[dim] = pos;
    }
    ref[lin] = vals[k][ravel(tfw_tensor_ndim(ts[k]), tfw_tensor_shape(ts[k]), i)];
  }
  for (int k = 0; k < n; k++) free(vals[k]);
  free(vals);
  return ref;
}

Test(shape, cat_layouts_and_dtypes) {
  for (int di = 0; di < 5; di++) {
    tfw_dtype dt = DTS[di];
    tfw_tensor *ts[3];
    const int64_t sh[3][3] = {{2, 3, 4}, {2, 1, 4}, {2, 5, 4}};
    for (int k = 0; k < 3; k++) ts[k] = input(dt, 3, sh[k], k, 10 * di + k);
    tfw_tensor *c = tfw_cat(3, ts, -2);
    const int64_t osh[3] = {2, 9, 4};
    double *ref = ref_cat(3, ts, 1, false, 3, osh);
    th_expect_close(c, dt, 3, osh, ref, 0, 0, "cat dim 1");
    free(ref);
    tfw_release(c);
    for (int k = 0; k < 3; k++) tfw_release(ts[k]);
    /* along dim 0 and the last dim */
    const int64_t sh0[3][2] = {{3, 4}, {1, 4}, {2, 4}};
    for (int k = 0; k < 3; k++) ts[k] = input(dt, 2, sh0[k], k, 50 + 10 * di + k);
    c = tfw_cat(3, ts, 0);
    ref = ref_cat(3, ts, 0, false, 2, (const int64_t[]){6, 4});
    th_expect_close(c, dt, 2, (const int64_t[]){6, 4}, ref, 0, 0, "cat dim 0");
    free(ref);
    tfw_release(c);
    for (int k = 0; k < 3; k++) tfw_release(ts[k]);
    /* stack */
    for (int k = 0; k < 3; k++) ts[k] = input(dt, 2, (const int64_t[]){3, 4}, k, 90 + k);
    for (int dim = -3; dim < 3; dim++) {
      tfw_tensor *s = tfw_stack(3, ts, dim);
      int d = dim < 0 ? dim + 3 : dim;
      int64_t osh2[3];
      for (int e = 0, j = 0; e < 3; e++) osh2[e] = e == d ? 3 : (j++ == 0 ? 3 : 4);
      ref = ref_cat(3, ts, d, true, 3, osh2);
      th_expect_close(s, dt, 3, osh2, ref, 0, 0, "stack");
      free(ref);
      tfw_release(s);
    }
    for (int k = 0; k < 3; k++) tfw_release(ts[k]);
  }
  th_expect_no_leaks();
}

Test(shape, cat_promotion_many_and_empty) {
  /* promotion: bool + i64 + f16 -> f16; i64 + f32 -> f32 */
  tfw_tensor *ts[20];
  ts[0] = input(TFW_DTYPE_BOOL, 2, (const int64_t[]){2, 2}, 0, 1);
  ts[1] = input(TFW_DTYPE_I64, 2, (const int64_t[]){2, 3}, 1, 2);
  ts[2] = input(TFW_DTYPE_F16, 2, (const int64_t[]){2, 1}, 2, 3);
  tfw_tensor *c = tfw_cat(3, ts, 1);
  double *ref = ref_cat(3, ts, 1, false, 2, (const int64_t[]){2, 6});
  th_expect_close(c, TFW_DTYPE_F16, 2, (const int64_t[]){2, 6}, ref, 0, 0, "cat promote");
  free(ref);
  tfw_release(c);
  for (int k = 0; k < 3; k++) tfw_release(ts[k]);
  /* 20 inputs: more than a registry call holds */
  int64_t total = 0;
  for (int k = 0; k < 20; k++) {
    int64_t rows = k % 3;
    ts[k] = input(k % 2 ? TFW_DTYPE_I64 : TFW_DTYPE_F32, 2, (const int64_t[]){rows, 3}, 0, 200 + k);
    total += rows;
  }
  c = tfw_cat(20, ts, 0);
  ref = ref_cat(20, ts, 0, false, 2, (const int64_t[]){total, 3});
  th_expect_close(c, TFW_DTYPE_F32, 2, (const int64_t[]){total, 3}, ref, 0, 0, "cat 20");
  free(ref);
  tfw_release(c);
  for (int k = 0; k < 20; k++) tfw_release(ts[k]);
  for (int k = 0; k < 12; k++) ts[k] = input(TFW_DTYPE_F64, 1, (const int64_t[]){2}, k % 3, 300 + k);
  c = tfw_stack(12, ts, 1);
  ref = ref_cat(12, ts, 1, true, 2, (const int64_t[]){2, 12});
  th_expect_close(c, TFW_DTYPE_F64, 2, (const int64_t[]){2, 12}, ref, 0, 0, "stack 12");
  free(ref);
  tfw_release(c);
  for (int k = 0; k < 12; k++) tfw_release(ts[k]);
  /* legacy: 1-d empty tensors are skipped; empty dims concatenate */
  ts[0] = tfw_zeros(TFW_DTYPE_F32, 1, (const int64_t[]){0});
  ts[1] = input(TFW_DTYPE_F32, 2, (const int64_t[]){2, 3}, 0, 7);
  ts[2] = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){0, 3});
  c = tfw_cat(3, ts, 0);
  double *v1 = th_values(ts[1]);
  th_expect_close(c, TFW_DTYPE_F32, 2, (const int64_t[]){2, 3}, v1, 0, 0, "cat skip empty");
  free(v1);
  tfw_release(c);
  c = tfw_cat(1, &ts[0], 0);
  cr_assert(c && tfw_tensor_ndim(c) == 1 && tfw_tensor_numel(c) == 0);
  tfw_release(c);
  for (int k = 0; k < 3; k++) tfw_release(ts[k]);
  th_expect_no_leaks();
}

Test(shape, cat_stack_errors) {
  tfw_tensor *a = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){2, 3});
  tfw_tensor *b = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){4, 3});
  tfw_tensor *c3 = tfw_zeros(TFW_DTYPE_F32, 3, (const int64_t[]){2, 3, 1});
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 1);
  tfw_tensor *ab[2] = {a, b}, *ac[2] = {a, c3}, *as[2] = {a, s}, *an[2] = {a, NULL};
  EXPECT_ERR(tfw_cat(2, ab, 1), TFW_ESHAPE,
             "cat: sizes of tensors must match except in dimension 1: tensor 1 has shape [4, 3], "
             "tensor 0 has shape [2, 3] (dimension 0: 4 != 2)");
  EXPECT_ERR(tfw_cat(2, ac, 0), TFW_ESHAPE, "tensor 1 has 3 dimensions");
  EXPECT_ERR(tfw_cat(2, as, 0), TFW_ESHAPE, "zero-dimensional tensor (at position 1)");
  EXPECT_ERR(tfw_cat(2, an, 0), TFW_EVALUE, "NULL");
  EXPECT_ERR(tfw_cat(0, ab, 0), TFW_EVALUE, "non-empty list");
  EXPECT_ERR(tfw_cat(2, NULL, 0), TFW_EVALUE, "NULL");
  EXPECT_ERR(tfw_cat(2, ab, 2), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_stack(2, ab, 0), TFW_ESHAPE, "stack: tensor 1 has shape [4, 3], but tensor 0 has shape [2, 3]");
  EXPECT_ERR(tfw_stack(2, ab, 0), TFW_ESHAPE, NULL);
  tfw_tensor *aa[2] = {a, a};
  EXPECT_ERR(tfw_stack(2, aa, 3), TFW_EINDEX, "out of range");
  /* many inputs take the same checks */
  tfw_tensor *many[10] = {a, a, a, a, a, a, a, a, a, b};
  EXPECT_ERR(tfw_cat(10, many, 1), TFW_ESHAPE, "tensor 9 has shape [4, 3]");
  many[9] = NULL;
  EXPECT_ERR(tfw_cat(10, many, 1), TFW_EVALUE, "tensor 9 is NULL");
  tfw_release(a);
  tfw_release(b);
  tfw_release(c3);
  tfw_release(s);
  th_expect_no_leaks();
}

/* ---- split / chunk -------------------------------------------------------------------- */

Test(shape, split_chunk) {
  tfw_tensor *t = input(TFW_DTYPE_F32, 2, (const int64_t[]){7, 3}, 1, 5);
  double *tv = th_values(t);
  tfw_tensor **parts;
  int n;
  cr_assert(tfw_split(t, 3, 0, &parts, &n) == TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(n, 3);
  int64_t row = 0;
  for (int k = 0; k < n; k++) {
    int64_t rows = k < 2 ? 3 : 1;
    th_expect_close(parts[k], TFW_DTYPE_F32, 2, (const int64_t[]){rows, 3}, tv + row * 3, 0, 0,
                    "split piece");
    cr_assert(tfw_tensor_shares_storage(parts[k], t), "split pieces must be views");
    row += rows;
  }
  tfw_tensor_list_free(parts, n);
  /* chunk: ceil(7 / 4) = 2 per piece -> 4 pieces (2, 2, 2, 1) */
  cr_assert(tfw_chunk(t, 4, -2, &parts, &n) == TFW_OK);
  cr_assert_eq(n, 4);
  cr_assert_eq(tfw_tensor_shape(parts[3])[0], 1);
  tfw_tensor_list_free(parts, n);
  /* chunk 6 of 7 rows: ceil = 2 -> 4 pieces, like torch.chunk */
  cr_assert(tfw_chunk(t, 6, 0, &parts, &n) == TFW_OK);
  cr_assert_eq(n, 4);
  tfw_tensor_list_free(parts, n);
  cr_assert(tfw_chunk(t, 3, 1, &parts, &n) == TFW_OK);
  cr_assert_eq(n, 3);
  double col[7];
  for (int k = 0; k < 7; k++) col[k] = tv[3 * k + 2];
  th_expect_close(parts[2], TFW_DTYPE_F32, 2, (const int64_t[]){7, 1}, col, 0, 0, "chunk col");
  tfw_tensor_list_free(parts, n);
  /* empty dim: one empty piece */
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_I64, 2, (const int64_t[]){0, 2});
  cr_assert(tfw_split(z, 0, 0, &parts, &n) == TFW_OK && n == 1);
  tfw_tensor_list_free(parts, n);
  cr_assert(tfw_chunk(z, 3, 0, &parts, &n) == TFW_OK && n == 1);
  tfw_tensor_list_free(parts, n);
  /* errors */
  th_expect_error(tfw_split(t, 0, 0, &parts, &n), TFW_EVALUE, "split size must be positive", "split 0");
  cr_assert(parts == NULL && n == 0);
  th_expect_error(tfw_split(t, -1, 0, &parts, &n), TFW_EVALUE, "got -1", "split -1");
  th_expect_error(tfw_split(t, 2, 2, &parts, &n), TFW_EINDEX, "out of range", "split dim");
  th_expect_error(tfw_split(NULL, 2, 0, &parts, &n), TFW_EVALUE, "NULL", "split NULL");
  th_expect_error(tfw_split(t, 2, 0, NULL, &n), TFW_EVALUE, "must not be NULL", "split out");
  th_expect_error(tfw_chunk(t, 0, 0, &parts, &n), TFW_EVALUE, "chunks must be positive", "chunk 0");
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 1);
  th_expect_error(tfw_split(s, 1, 0, &parts, &n), TFW_EINDEX, "0-d", "split scalar");
  tfw_tensor_list_free(NULL, 0);
  tfw_release(s);
  tfw_release(z);
  free(tv);
  tfw_release(t);
  th_expect_no_leaks();
}

/* ---- pad -------------------------------------------------------------------------------- */

typedef struct pad_ctx { int nd; int64_t before[TFW_MAX_DIMS]; int64_t size[TFW_MAX_DIMS]; int mode; } pad_ctx;
static bool map_pad(const int64_t *o, int64_t *i, const void *ctx) {
  const pad_ctx *p = ctx;
  for (int d = 0; d < p->nd; d++) {
    int64_t x = o[d] - p->before[d], n = p->size[d];
    if (x < 0 || x >= n) {
      if (p->mode == TFW_PAD_CONSTANT) return false;
      if (p->mode == TFW_PAD_REFLECT) x = x < 0 ? -x : 2 * (n - 1) - x;
      else x = x < 0 ? 0 : n - 1;
    }
    i[d] = x;
  }
  return true;
}

static void check_pad(const tfw_tensor *t, int npairs, const int64_t *pads, int mode, double value,
                      const char *what) {
  pad_ctx p = {tfw_tensor_ndim(t), {0}, {0}, mode};
  int64_t osh[TFW_MAX_DIMS];
  for (int d = 0; d < p.nd; d++) {
    p.size[d] = tfw_tensor_shape(t)[d];
    osh[d] = p.size[d];
  }
  for (int k = 0; k < npairs; k++) {
    int d = p.nd - 1 - k;
    p.before[d] = pads[2 * k];
    osh[d] += pads[2 * k] + pads[2 * k + 1];
  }
  tfw_tensor *o = tfw_pad(t, npairs, pads, (tfw_pad_mode)mode, value);
  double fill = value;
  if (tfw_tensor_dtype(t) == TFW_DTYPE_BOOL) fill = value != 0;
  else if (tfw_tensor_dtype(t) == TFW_DTYPE_I64) fill = trunc(value);
  check_map(o, t, p.nd, osh, map_pad, &p, fill, what);
  tfw_release(o);
}

Test(shape, pad_modes) {
  const int64_t shape[3] = {3, 4, 5};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 500 + 3 * di + l);
      check_pad(t, 2, (const int64_t[]){1, 2, 0, 3}, TFW_PAD_CONSTANT, 2.0, "pad constant");
      check_pad(t, 3, (const int64_t[]){-1, 2, 1, -2, -1, 0}, TFW_PAD_CONSTANT, 0.0, "pad crop");
      check_pad(t, 1, (const int64_t[]){7, -6}, TFW_PAD_CONSTANT, 1.0, "pad beyond crop");
      check_pad(t, 2, (const int64_t[]){4, 3, 1, 3}, TFW_PAD_REFLECT, 0, "pad reflect");
      check_pad(t, 3, (const int64_t[]){2, 0, 0, 1, 2, 2}, TFW_PAD_REFLECT, 0, "pad reflect 3");
      check_pad(t, 3, (const int64_t[]){3, 6, 1, 0, 2, 2}, TFW_PAD_REPLICATE, 0, "pad replicate");
      check_pad(t, 0, NULL, TFW_PAD_REFLECT, 0, "pad nothing");
      tfw_release(t);
    }
  /* more pairs than a registry call holds (chained calls) */
  const int64_t s6[6] = {2, 1, 3, 2, 1, 2};
  const int64_t p6[12] = {1, 0, 0, 1, 1, 1, 0, 2, 1, 0, 1, 1};
  for (int mode = 0; mode < 3; mode++) {
    tfw_tensor *t = input(TFW_DTYPE_F32, 6, s6, 1, 77 + mode);
    int64_t pads[12];
    for (int k = 0; k < 12; k++) pads[k] = mode == TFW_PAD_REFLECT && k >= 2 && k < 4 ? 0 : p6[k];
    if (mode == TFW_PAD_REFLECT) { /* reflect needs pad < size: sizes from the last: 2,1,2,3,1,2 */
      const int64_t rp[12] = {1, 0, 0, 0, 1, 1, 0, 2, 0, 0, 1, 1};
      memcpy(pads, rp, sizeof rp);
    }
    check_pad(t, 6, pads, mode, -1.5, "pad 6 pairs");
    tfw_release(t);
  }
  /* empty input, constant pad */
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){0, 2});
  tfw_tensor *o = tfw_pad(z, 2, (const int64_t[]){1, 1, 2, 0}, TFW_PAD_CONSTANT, 3.0);
  double ref[16];
  for (int k = 0; k < 8; k++) ref[k] = 3.0;
  th_expect_close(o, TFW_DTYPE_F32, 2, (const int64_t[]){2, 4}, ref, 0, 0, "pad empty");
  tfw_release(o);
  /* errors */
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4});
  EXPECT_ERR(tfw_pad(t, 1, (const int64_t[]){4, 0}, TFW_PAD_REFLECT, 0), TFW_EVALUE,
             "pad: reflect padding (4, 0) must be less than the size 4 of dimension 1");
  EXPECT_ERR(tfw_pad(t, 2, (const int64_t[]){0, 0, 0, 3}, TFW_PAD_REFLECT, 0), TFW_EVALUE, "size 3");
  EXPECT_ERR(tfw_pad(t, 1, (const int64_t[]){-1, 0}, TFW_PAD_REPLICATE, 0), TFW_EVALUE,
             "only supported in constant mode");
  EXPECT_ERR(tfw_pad(t, 1, (const int64_t[]){-3, -2}, TFW_PAD_CONSTANT, 0), TFW_ESHAPE, "invalid size");
  EXPECT_ERR(tfw_pad(t, 1, (const int64_t[]){INT64_MAX, 1}, TFW_PAD_CONSTANT, 0), TFW_ESHAPE, "invalid size");
  EXPECT_ERR(tfw_pad(t, 3, (const int64_t[]){0, 0, 0, 0, 0, 0}, TFW_PAD_CONSTANT, 0), TFW_EVALUE,
             "6 pad entries given for a 2-d tensor");
  EXPECT_ERR(tfw_pad(t, 1, NULL, TFW_PAD_CONSTANT, 0), TFW_EVALUE, "'pads' is NULL");
  EXPECT_ERR(tfw_pad(t, 1, (const int64_t[]){1, 1}, (tfw_pad_mode)7, 0), TFW_EVALUE, "unknown mode 7");
  EXPECT_ERR(tfw_pad(z, 2, (const int64_t[]){0, 0, 1, 0}, TFW_PAD_REPLICATE, 0), TFW_EVALUE,
             "non-empty dimension 0");
  EXPECT_ERR(tfw_pad(NULL, 1, (const int64_t[]){1, 1}, TFW_PAD_CONSTANT, 0), TFW_EVALUE, "NULL");
  tfw_release(t);
  tfw_release(z);
  th_expect_no_leaks();
}

/* ---- flip / roll ------------------------------------------------------------------------ */

typedef struct fr_ctx { int nd; bool flip[TFW_MAX_DIMS]; int64_t size[TFW_MAX_DIMS]; int rdim; int64_t shift; } fr_ctx;
static bool map_flip(const int64_t *o, int64_t *i, const void *ctx) {
  const fr_ctx *f = ctx;
  for (int d = 0; d < f->nd; d++) i[d] = f->flip[d] ? f->size[d] - 1 - o[d] : o[d];
  return true;
}
static bool map_roll(const int64_t *o, int64_t *i, const void *ctx) {
  const fr_ctx *f = ctx;
  for (int d = 0; d < f->nd; d++) i[d] = o[d];
  if (f->rdim >= 0) {
    int64_t n = f->size[f->rdim];
    i[f->rdim] = (((o[f->rdim] - f->shift) % n) + n) % n;
  }
  return true;
}

Test(shape, flip_roll) {
  const int64_t shape[3] = {3, 4, 5};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 600 + 3 * di + l);
      fr_ctx f = {3, {true, false, true}, {3, 4, 5}, -1, 0};
      tfw_tensor *o = tfw_flip(t, 2, (const int[]){-1, 0});
      check_map(o, t, 3, shape, map_flip, &f, 0, "flip");
      cr_assert(!tfw_tensor_shares_storage(o, t), "flip must copy");
      tfw_release(o);
      fr_ctx f0 = {3, {false, false, false}, {3, 4, 5}, -1, 0};
      o = tfw_flip(t, 0, NULL);
      check_map(o, t, 3, shape, map_flip, &f0, 0, "flip none");
      tfw_release(o);
      static const int64_t shifts[] = {0, 1, -1, 7, -13, 4, INT64_MIN, INT64_MAX};
      for (size_t k = 0; k < sizeof shifts / sizeof shifts[0]; k++)
        for (int dim = -1; dim < 3; dim++) {
          int d = dim < 0 ? 2 : dim;
          int64_t n = shape[d];
          fr_ctx r = {3, {false}, {3, 4, 5}, d, ((shifts[k] % n) + n) % n};
          o = tfw_roll(t, shifts[k], dim);
          check_map(o, t, 3, shape, map_roll, &r, 0, "roll");
          tfw_release(o);
        }
      tfw_release(t);
    }
  /* 0-d and empty */
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 4);
  tfw_tensor *o = tfw_roll(s, 3, 0);
  double x = 0;
  cr_assert(o && tfw_item(o, &x) == TFW_OK && x == 4);
  tfw_release(o);
  o = tfw_flip(s, 1, (const int[]){0});
  cr_assert(o && tfw_item(o, &x) == TFW_OK && x == 4);
  tfw_release(o);
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){0, 3});
  o = tfw_roll(z, 2, 0);
  cr_assert(o && tfw_tensor_numel(o) == 0);
  tfw_release(o);
  o = tfw_flip(z, 2, (const int[]){0, 1});
  cr_assert(o && tfw_tensor_numel(o) == 0);
  tfw_release(o);
  /* errors */
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4});
  EXPECT_ERR(tfw_flip(t, 2, (const int[]){1, -1}), TFW_EVALUE, "flip: dimension 1 appears twice");
  EXPECT_ERR(tfw_flip(t, 1, (const int[]){2}), TFW_EINDEX, "flip: dimension 2 out of range");
  EXPECT_ERR(tfw_flip(t, 1, NULL), TFW_EVALUE, "NULL");
  EXPECT_ERR(tfw_roll(t, 1, 2), TFW_EINDEX, "roll: dimension 2 out of range");
  EXPECT_ERR(tfw_roll(NULL, 1, 0), TFW_EVALUE, "NULL");
  tfw_release(t);
  tfw_release(z);
  tfw_release(s);
  th_expect_no_leaks();
}

/* ---- repeat / tile ---------------------------------------------------------------------- */

typedef struct rep_ctx { int ond, ind; int64_t isize[TFW_MAX_DIMS]; } rep_ctx;
static bool map_repeat(const int64_t *o, int64_t *i, const void *ctx) {
  const rep_ctx *r = ctx;
  for (int k = 0; k < r->ind; k++) i[k] = o[k + r->ond - r->ind] % r->isize[k];
  return true;
}

static void check_repeat(const tfw_tensor *t, int n, const int64_t *reps, bool tile,
                         const char *what) {
  int ind = tfw_tensor_ndim(t), ond = n > ind ? n : ind;
  rep_ctx r = {ond, ind, {0}};
  int64_t osh[TFW_MAX_DIMS];
  for (int k = 0; k < ind; k++) r.isize[k] = tfw_tensor_shape(t)[k];
  for (int k = 0; k < ond; k++) {
    int j = k - (ond - ind), q = k - (ond - n);
    osh[k] = (j < 0 ? 1 : r.isize[j]) * (q < 0 ? 1 : reps[q]);
  }
  tfw_tensor *o = tile ? tfw_tile(t, n, reps) : tfw_repeat(t, n, reps);
  check_map(o, t, ond, osh, map_repeat, &r, 0, what);
  tfw_release(o);
}

Test(shape, repeat_tile) {
  const int64_t shape[3] = {2, 1, 3};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 700 + 3 * di + l);
      check_repeat(t, 3, (const int64_t[]){2, 3, 2}, false, "repeat");
      check_repeat(t, 5, (const int64_t[]){2, 1, 1, 4, 1}, false, "repeat lead");
      check_repeat(t, 3, (const int64_t[]){1, 1, 1}, false, "repeat ones");
      check_repeat(t, 3, (const int64_t[]){2, 0, 1}, false, "repeat zero");
      check_repeat(t, 1, (const int64_t[]){3}, true, "tile short");
      check_repeat(t, 4, (const int64_t[]){2, 1, 2, 2}, true, "tile long");
      check_repeat(t, 0, NULL, true, "tile none");
      tfw_tensor *o = tfw_repeat(t, 3, (const int64_t[]){2, 2, 2});
      cr_assert(o && !tfw_tensor_shares_storage(o, t));
      tfw_release(o);
      tfw_release(t);
    }
  /* 8-d with every dim repeated: the split view would need 16 dims (looped copies) */
  const int64_t s8[8] = {2, 2, 1, 2, 2, 2, 2, 2};
  tfw_tensor *t = input(TFW_DTYPE_F32, 8, s8, 1, 9);
  check_repeat(t, 8, (const int64_t[]){2, 3, 2, 1, 2, 2, 2, 2}, false, "repeat 8-d");
  tfw_release(t);
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_I64, 5);
  check_repeat(s, 2, (const int64_t[]){2, 3}, false, "repeat scalar");
  check_repeat(s, 0, NULL, false, "repeat scalar none");
  /* errors */
  t = tfw_zeros(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4});
  EXPECT_ERR(tfw_repeat(t, 1, (const int64_t[]){2}), TFW_ESHAPE,
             "repeat: 1 repeats given for a tensor of 2 dimensions");
  EXPECT_ERR(tfw_repeat(t, 2, (const int64_t[]){2, -1}), TFW_EVALUE, "repeats must be non-negative, got -1");
  EXPECT_ERR(tfw_tile(t, 2, (const int64_t[]){-2, 1}), TFW_EVALUE, "tile: repeats must be non-negative");
  EXPECT_ERR(tfw_repeat(t, 2, (const int64_t[]){INT64_MAX, 2}), TFW_ESHAPE, "overflows");
  EXPECT_ERR(tfw_repeat(t, 2, (const int64_t[]){INT64_MAX / 4, INT64_MAX / 8}), TFW_ESHAPE, "64-bit");
  EXPECT_ERR(tfw_repeat(t, 9, (const int64_t[9]){1}), TFW_ESHAPE, "9 entries");
  EXPECT_ERR(tfw_repeat(t, 2, NULL), TFW_EVALUE, "NULL");
  tfw_release(t);
  tfw_release(s);
  th_expect_no_leaks();
}

/* ---- tril / triu ------------------------------------------------------------------------- */

typedef struct tri_ctx { int nd; int64_t k; bool upper; } tri_ctx;
static bool map_tri(const int64_t *o, int64_t *i, const void *ctx) {
  const tri_ctx *t = ctx;
  for (int d = 0; d < t->nd; d++) i[d] = o[d];
  int64_t r = o[t->nd - 2], c = o[t->nd - 1];
  /* compare in double so that extreme diagonals do not overflow */
  return t->upper ? (double)c >= (double)r + (double)t->k : (double)c <= (double)r + (double)t->k;
}

Test(shape, tril_triu) {
  const int64_t shape[3] = {2, 4, 5};
  static const int64_t diags[] = {0, 1, -1, 3, -3, 10, -10, INT64_MAX, INT64_MIN};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 800 + 3 * di + l);
      for (size_t k = 0; k < sizeof diags / sizeof diags[0]; k++)
        for (int up = 0; up < 2; up++) {
          tri_ctx c = {3, diags[k], up};
          tfw_tensor *o = up ? tfw_triu(t, diags[k]) : tfw_tril(t, diags[k]);
          char what[64];
          snprintf(what, sizeof what, "%s diag %lld %s layout %d", up ? "triu" : "tril",
                   (long long)diags[k], tfw_dtype_name(DTS[di]), l);
          check_map(o, t, 3, shape, map_tri, &c, 0, what);
          tfw_release(o);
        }
      tfw_release(t);
    }
  /* 2-d, 4-d and empty */
  tfw_tensor *t = input(TFW_DTYPE_F64, 2, (const int64_t[]){6, 3}, 1, 1);
  tri_ctx c = {2, 1, false};
  tfw_tensor *o = tfw_tril(t, 1);
  check_map(o, t, 2, (const int64_t[]){6, 3}, map_tri, &c, 0, "tril tall");
  tfw_release(o);
  tfw_release(t);
  t = input(TFW_DTYPE_F32, 4, (const int64_t[]){2, 3, 3, 4}, 2, 2);
  tri_ctx c4 = {4, -1, true};
  o = tfw_triu(t, -1);
  check_map(o, t, 4, (const int64_t[]){2, 3, 3, 4}, map_tri, &c4, 0, "triu 4-d");
  tfw_release(o);
  tfw_release(t);
  t = tfw_zeros(TFW_DTYPE_F32, 3, (const int64_t[]){2, 0, 3});
  o = tfw_tril(t, 0);
  cr_assert(o && tfw_tensor_numel(o) == 0);
  tfw_release(o);
  tfw_release(t);
  t = tfw_zeros(TFW_DTYPE_F32, 1, (const int64_t[]){3});
  EXPECT_ERR(tfw_tril(t, 0), TFW_ESHAPE, "tril: input must have at least 2 dimensions, got shape [3]");
  EXPECT_ERR(tfw_triu(NULL, 0), TFW_EVALUE, "NULL");
  tfw_release(t);
  th_expect_no_leaks();
}

/* ---- registry samples and allocation failures ------------------------------------------ */

Test(shape, registry_samples) {
  int ran = 0;
  for (int id = TFW__OP_cat; id <= TFW__OP_triu; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 2 && n <= 8, "%s: %d samples", op->name, n);
    for (int k = 0; k < n; k++) {
      tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
      tfw_status st = tfw__op_run_multi(&calls[k], out);
      cr_assert(st == TFW_OK, "%s sample %d: %s", op->name, k, tfw_last_error());
      cr_assert(!tfw_tensor_shares_storage(out[0], calls[k].in[0]), "%s: must copy", op->name);
      for (int j = 0; j < op->n_out; j++) tfw_release(out[j]);
      ran++;
    }
    tfw__samples_free(calls, n);
  }
  cr_assert(ran >= 20, "only %d samples ran", ran);
  th_expect_no_leaks();
}

Test(shape, oom_is_clean) {
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4}, -1, 1, 9);
  tfw_tensor *ts[10] = {t, t, t, t, t, t, t, t, t, t};
  for (int n = 1; n <= 3; n++) {
    tfw_memory_fail_at(n, false);
    tfw_tensor *o1 = tfw_cat(10, ts, 0);
    tfw_tensor *o2 = tfw_pad(t, 1, (const int64_t[]){1, 1}, TFW_PAD_REFLECT, 0);
    tfw_tensor **parts = NULL;
    int cnt = 0;
    tfw_status st = tfw_split(t, 1, 0, &parts, &cnt);
    tfw_memory_fail_at(0, false);
    tfw_release(o1);
    tfw_release(o2);
    if (st == TFW_OK) tfw_tensor_list_free(parts, cnt);
    else cr_assert(parts == NULL && cnt == 0);
  }
  tfw_release(t);
  th_expect_no_leaks();
}

/* Sizes above the parallel grain, so that the copies and the tril/triu row loop run in
 * several chunks (ctest runs with TFW_NUM_THREADS=2). */
Test(shape, large_parallel) {
  tfw_tensor *t = input(TFW_DTYPE_F32, 3, (const int64_t[]){2, 300, 500}, 1, 3);
  tri_ctx c = {3, 7, false};
  tfw_tensor *o = tfw_tril(t, 7);
  check_map(o, t, 3, (const int64_t[]){2, 300, 500}, map_tri, &c, 0, "tril large");
  tfw_release(o);
  tri_ctx cu = {3, -20, true};
  o = tfw_triu(t, -20);
  check_map(o, t, 3, (const int64_t[]){2, 300, 500}, map_tri, &cu, 0, "triu large");
  tfw_release(o);
  tfw_tensor *ts[2] = {t, t};
  o = tfw_cat(2, ts, 2);
  double *ref = ref_cat(2, ts, 2, false, 3, (const int64_t[]){2, 300, 1000});
  th_expect_close(o, TFW_DTYPE_F32, 3, (const int64_t[]){2, 300, 1000}, ref, 0, 0, "cat large");
  free(ref);
  tfw_release(o);
  check_repeat(t, 3, (const int64_t[]){1, 2, 2}, false, "repeat large");
  fr_ctx r = {3, {false}, {2, 300, 500}, 2, 123};
  o = tfw_roll(t, 123, 2);
  check_map(o, t, 3, (const int64_t[]){2, 300, 500}, map_roll, &r, 0, "roll large");
  tfw_release(o);
  check_pad(t, 2, (const int64_t[]){3, 2, 4, 1}, TFW_PAD_REFLECT, 0, "pad large");
  tfw_release(t);
  th_expect_no_leaks();
}
