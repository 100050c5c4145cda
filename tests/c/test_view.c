/* Tests of the view ops (src/ops/view.c): every op against a naive index-mapping reference
 * on f32/f64/i64/bool/f16 inputs in contiguous, strided and broadcast layouts; storage
 * sharing and write-through; PyTorch's computeStride cases; edge cases; errors; samples. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

static const tfw_dtype DTS[5] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_I64, TFW_DTYPE_BOOL,
                                 TFW_DTYPE_F16};

/* layout 0 contiguous, 1 strided (th_random_strided), 2 broadcast (dim 0 expanded from 1) */
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

/* Output multi-index -> input multi-index. */
typedef void (*map_fn)(const int64_t *o, int64_t *i, const void *ctx);

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

/* Checks out == in[map(o)] exactly, with shape (nd, shape) and in's dtype. */
static void check_map(const tfw_tensor *out, const tfw_tensor *in, int nd, const int64_t *shape,
                      map_fn map, const void *ctx, const char *what) {
  cr_assert(out, "%s: %s", what, tfw_last_error());
  double *iv = th_values(in);
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  double *ref = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  int64_t o[TFW_MAX_DIMS] = {0}, i[TFW_MAX_DIMS] = {0};
  for (int64_t k = 0; k < n; k++) {
    unravel(k, nd, shape, o);
    map(o, i, ctx);
    ref[k] = iv[ravel(tfw_tensor_ndim(in), tfw_tensor_shape(in), i)];
  }
  th_expect_close(out, tfw_tensor_dtype(in), nd, shape, ref, 0, 0, what);
  free(ref);
  free(iv);
}

static void map_linear(const int64_t *o, int64_t *i, const void *ctx) {
  const int64_t *c = ctx; /* c[0] = out ndim, c[1..] out shape, then in ndim, in shape */
  int ond = (int)c[0], ind = (int)c[1 + ond];
  unravel(ravel(ond, c + 1, o), ind, c + 2 + ond, i);
}

static void expect_linear(const tfw_tensor *out, const tfw_tensor *in, int nd,
                          const int64_t *shape, const char *what) {
  int64_t ctx[2 + 2 * TFW_MAX_DIMS];
  ctx[0] = nd;
  for (int d = 0; d < nd; d++) ctx[1 + d] = shape[d];
  ctx[1 + nd] = tfw_tensor_ndim(in);
  for (int d = 0; d < tfw_tensor_ndim(in); d++) ctx[2 + nd + d] = tfw_tensor_shape(in)[d];
  check_map(out, in, nd, shape, map_linear, ctx, what);
}

static void expect_shares(const tfw_tensor *v, const tfw_tensor *base, const char *what) {
  cr_assert(tfw_tensor_shares_storage(v, base), "%s: result does not share the input's storage",
            what);
}

Test(view, reshape_view_all_layouts) {
  const int64_t shape[3] = {3, 4, 5};
  const int64_t target[3] = {5, -1, 2}, resolved[3] = {5, 6, 2};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 10 * di + l);
      char what[64];
      snprintf(what, sizeof what, "reshape %s layout %d", tfw_dtype_name(DTS[di]), l);
      tfw_tensor *r = tfw_reshape(t, 3, target);
      expect_linear(r, t, 3, resolved, what);
      if (l == 0) expect_shares(r, t, what);
      else cr_assert(!tfw_tensor_shares_storage(r, t), "%s: expected a copy", what);
      tfw_release(r);
      /* a view that splits only dim 1 exists for every layout */
      const int64_t split[4] = {3, 2, 2, 5};
      tfw_tensor *v = tfw_view(t, 4, split);
      expect_linear(v, t, 4, split, what);
      expect_shares(v, t, what);
      tfw_release(v);
      tfw_release(t);
    }
  th_expect_no_leaks();
}

Test(view, compute_stride_cases) {
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 2, (const int64_t[]){4, 6}, -1, 1, 1);
  tfw_tensor *t = tfw_transpose(b, 0, 1); /* [6, 4] strides [1, 6] */
  /* split the non-contiguous dims: viewable */
  tfw_tensor *v = tfw_view(t, 3, (const int64_t[]){2, 3, 4});
  expect_linear(v, t, 3, (const int64_t[]){2, 3, 4}, "view split transposed");
  const int64_t *st = tfw_tensor_strides(v);
  cr_expect(st[0] == 3 && st[1] == 1 && st[2] == 6, "strides %lld %lld %lld", (long long)st[0],
            (long long)st[1], (long long)st[2]);
  tfw_release(v);
  v = tfw_view(t, 4, (const int64_t[]){6, 1, 2, 2});
  expect_linear(v, t, 4, (const int64_t[]){6, 1, 2, 2}, "view split last");
  tfw_release(v);
  /* merging dims that are not contiguous with each other: not a view */
  th_expect_error(tfw_view(t, 1, (const int64_t[]){24}) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "use reshape", "view merge transposed");
  tfw_tensor *r = tfw_reshape(t, 1, (const int64_t[]){24});
  expect_linear(r, t, 1, (const int64_t[]){24}, "reshape merge transposed");
  cr_assert(!tfw_tensor_shares_storage(r, t));
  tfw_release(r);
  /* broadcast (stride 0) dims: split ok, merge with a real dim not */
  tfw_tensor *s = th_random(TFW_DTYPE_F64, 2, (const int64_t[]){1, 4}, -1, 1, 2);
  tfw_tensor *e = tfw_expand(s, 2, (const int64_t[]){3, 4});
  v = tfw_view(e, 3, (const int64_t[]){3, 2, 2});
  expect_linear(v, e, 3, (const int64_t[]){3, 2, 2}, "view expanded");
  tfw_release(v);
  cr_assert_null(tfw_view(e, 1, (const int64_t[]){12}));
  /* size-1 dims with odd strides do not block a view */
  tfw_tensor *u = tfw_unsqueeze(t, 1); /* [6, 1, 4] */
  v = tfw_view(u, 2, (const int64_t[]){6, 4});
  expect_linear(v, t, 2, (const int64_t[]){6, 4}, "view drop unit dim");
  tfw_release(v);
  /* 0-d <-> [1, 1] */
  tfw_tensor *sc = tfw_scalar(TFW_DTYPE_I64, 7);
  v = tfw_view(sc, 2, (const int64_t[]){1, -1});
  expect_linear(v, sc, 2, (const int64_t[]){1, 1}, "view scalar");
  tfw_tensor *back = tfw_view(v, 0, NULL);
  expect_linear(back, sc, 0, NULL, "view to 0-d");
  tfw_release(back);
  tfw_release(v);
  /* empty tensors */
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_F32, 3, (const int64_t[]){2, 0, 3});
  v = tfw_view(z, 2, (const int64_t[]){0, 5});
  cr_assert(v && tfw_tensor_numel(v) == 0);
  tfw_release(v);
  th_expect_error(tfw_view(z, 2, (const int64_t[]){-1, 0}) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "ambiguous", "view -1 of empty");
  tfw_release(z);
  tfw_release(sc);
  tfw_release(u);
  tfw_release(e);
  tfw_release(s);
  tfw_release(t);
  tfw_release(b);
  th_expect_no_leaks();
}

typedef struct perm_ctx { int nd; int perm[TFW_MAX_DIMS]; } perm_ctx;
static void map_perm(const int64_t *o, int64_t *i, const void *ctx) {
  const perm_ctx *p = ctx;
  for (int k = 0; k < p->nd; k++) i[p->perm[k]] = o[k];
}

Test(view, transpose_permute) {
  const int64_t shape[3] = {2, 3, 4};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 100 + di * 3 + l);
      perm_ctx p = {3, {2, 1, 0}};
      tfw_tensor *v = tfw_transpose(t, 0, -1);
      check_map(v, t, 3, (const int64_t[]){4, 3, 2}, map_perm, &p, "transpose");
      expect_shares(v, t, "transpose");
      tfw_release(v);
      perm_ctx q = {3, {1, 2, 0}};
      v = tfw_permute(t, 3, (const int[]){1, -1, 0});
      check_map(v, t, 3, (const int64_t[]){3, 4, 2}, map_perm, &q, "permute");
      expect_shares(v, t, "permute");
      tfw_release(v);
      tfw_release(t);
    }
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 1);
  tfw_tensor *v = tfw_transpose(s, 0, -1);
  cr_assert(v && tfw_tensor_ndim(v) == 0);
  tfw_release(v);
  v = tfw_permute(s, 0, NULL);
  cr_assert(v && tfw_tensor_ndim(v) == 0);
  tfw_release(v);
  tfw_release(s);
  th_expect_no_leaks();
}

typedef struct slice_ctx { int nd, dim; int64_t start, step; bool drop; } slice_ctx;
static void map_slice(const int64_t *o, int64_t *i, const void *ctx) {
  const slice_ctx *s = ctx;
  for (int k = 0, j = 0; k < s->nd; k++) {
    if (k == s->dim) i[k] = s->start + (s->drop ? 0 : o[j++]) * s->step;
    else i[k] = o[j++];
  }
}

Test(view, slice_narrow_select) {
  const int64_t shape[3] = {4, 7, 3};
  /* (dim, start, end, step) -> expected (start, len) along dim */
  static const int64_t cases[][6] = {
      {1, 0, 7, 1, 0, 7},     {1, 1, 6, 2, 1, 3},    {1, -3, 100, 1, 4, 3}, {1, -100, 2, 1, 0, 2},
      {-2, 5, 2, 1, 5, 0},    {1, 2, 7, 10, 2, 1},   {0, -1, 4, 1, 3, 1},   {2, 0, -1, 2, 0, 1},
      {1, 7, 100, 1, 7, 0},   {0, INT64_MIN, INT64_MAX, INT64_MAX, 0, 1}};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 3, shape, l, 200 + di * 3 + l);
      for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int64_t *c = cases[k];
        int dim = (int)(c[0] < 0 ? c[0] + 3 : c[0]);
        tfw_tensor *v = tfw_slice(t, (int)c[0], c[1], c[2], c[3]);
        int64_t os[3] = {4, 7, 3};
        os[dim] = c[5];
        slice_ctx sc = {3, dim, c[4], c[3], false};
        char what[64];
        snprintf(what, sizeof what, "slice case %zu %s layout %d", k, tfw_dtype_name(DTS[di]), l);
        check_map(v, t, 3, os, map_slice, &sc, what);
        expect_shares(v, t, what);
        tfw_release(v);
      }
      tfw_tensor *v = tfw_narrow(t, 1, -5, 3);
      slice_ctx nc = {3, 1, 2, 1, false};
      check_map(v, t, 3, (const int64_t[]){4, 3, 3}, map_slice, &nc, "narrow");
      expect_shares(v, t, "narrow");
      tfw_release(v);
      v = tfw_select(t, 1, -2);
      slice_ctx sel = {3, 1, 5, 1, true};
      check_map(v, t, 2, (const int64_t[]){4, 3}, map_slice, &sel, "select");
      expect_shares(v, t, "select");
      tfw_release(v);
      tfw_release(t);
    }
  /* select on a 1-d tensor gives a 0-d view */
  tfw_tensor *a = tfw_arange(0, 5, 1, TFW_DTYPE_I64);
  tfw_tensor *v = tfw_select(a, 0, 3);
  int64_t x = -1;
  cr_assert(v && tfw_tensor_ndim(v) == 0 && tfw_item_i64(v, &x) == TFW_OK && x == 3);
  tfw_release(v);
  tfw_release(a);
  th_expect_no_leaks();
}

typedef struct exp_ctx { int ond, ind; int64_t ishape[TFW_MAX_DIMS]; } exp_ctx;
static void map_expand(const int64_t *o, int64_t *i, const void *ctx) {
  const exp_ctx *e = ctx;
  for (int k = 0; k < e->ind; k++) {
    int ok = k + e->ond - e->ind;
    i[k] = e->ishape[k] == 1 ? 0 : o[ok];
  }
}

Test(view, expand) {
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 2; l++) {
      const int64_t shape[2] = {3, 1};
      tfw_tensor *t = input(DTS[di], 2, shape, l, 300 + di);
      tfw_tensor *v = tfw_expand(t, 4, (const int64_t[]){2, 0 + 5, -1, 4});
      exp_ctx e = {4, 2, {3, 1}};
      check_map(v, t, 4, (const int64_t[]){2, 5, 3, 4}, map_expand, &e, "expand");
      expect_shares(v, t, "expand");
      const int64_t *st = tfw_tensor_strides(v);
      cr_expect(st[0] == 0 && st[1] == 0 && st[3] == 0, "expanded dims must have stride 0");
      tfw_release(v);
      v = tfw_expand(t, 3, (const int64_t[]){0, 3, 1}); /* new leading size 0 */
      cr_assert(v && tfw_tensor_numel(v) == 0);
      tfw_release(v);
      tfw_release(t);
    }
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F16, 2.5);
  tfw_tensor *v = tfw_expand(s, 2, (const int64_t[]){2, 3});
  exp_ctx e = {2, 0, {0}};
  check_map(v, s, 2, (const int64_t[]){2, 3}, map_expand, &e, "expand scalar");
  tfw_release(v);
  tfw_release(s);
  th_expect_no_leaks();
}

Test(view, squeeze_unsqueeze_flatten_unflatten) {
  const int64_t shape[4] = {2, 1, 3, 1};
  for (int di = 0; di < 5; di++)
    for (int l = 0; l < 3; l++) {
      tfw_tensor *t = input(DTS[di], 4, shape, l, 400 + di * 3 + l);
      tfw_tensor *v = tfw_squeeze(t, 1);
      expect_linear(v, t, 3, (const int64_t[]){2, 3, 1}, "squeeze");
      expect_shares(v, t, "squeeze");
      tfw_release(v);
      v = tfw_squeeze(t, 0); /* size 2: unchanged view, like PyTorch */
      expect_linear(v, t, 4, shape, "squeeze non-1");
      expect_shares(v, t, "squeeze non-1");
      tfw_release(v);
      v = tfw_squeeze_all(t);
      expect_linear(v, t, 2, (const int64_t[]){2, 3}, "squeeze_all");
      tfw_release(v);
      v = tfw_unsqueeze(t, -1);
      expect_linear(v, t, 5, (const int64_t[]){2, 1, 3, 1, 1}, "unsqueeze -1");
      expect_shares(v, t, "unsqueeze");
      tfw_release(v);
      v = tfw_unsqueeze(t, 2);
      expect_linear(v, t, 5, (const int64_t[]){2, 1, 1, 3, 1}, "unsqueeze 2");
      tfw_release(v);
      v = tfw_flatten(t, 1, -1);
      expect_linear(v, t, 2, (const int64_t[]){2, 3}, "flatten");
      if (l != 1) expect_shares(v, t, "flatten");
      tfw_release(v);
      v = tfw_flatten(t, 0, -1);
      expect_linear(v, t, 1, (const int64_t[]){6}, "flatten all");
      tfw_release(v);
      v = tfw_unflatten(t, 2, 2, (const int64_t[]){-1, 1});
      expect_linear(v, t, 5, (const int64_t[]){2, 1, 3, 1, 1}, "unflatten");
      expect_shares(v, t, "unflatten");
      tfw_release(v);
      tfw_release(t);
    }
  /* flatten of a transposed tensor copies; of a 0-d tensor gives [1] */
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 3, (const int64_t[]){2, 3, 4}, -1, 1, 5);
  tfw_tensor *t = tfw_transpose(b, 0, 2);
  tfw_tensor *v = tfw_flatten(t, 0, 1);
  expect_linear(v, t, 2, (const int64_t[]){12, 2}, "flatten transposed");
  cr_assert(!tfw_tensor_shares_storage(v, t));
  tfw_release(v);
  v = tfw_unflatten(b, -1, 3, (const int64_t[]){2, -1, 1});
  expect_linear(v, b, 5, (const int64_t[]){2, 3, 2, 2, 1}, "unflatten -1");
  tfw_release(v);
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F64, 3);
  v = tfw_flatten(s, 0, -1);
  expect_linear(v, s, 1, (const int64_t[]){1}, "flatten 0-d");
  tfw_release(v);
  v = tfw_squeeze(s, 0);
  cr_assert(v && tfw_tensor_ndim(v) == 0);
  tfw_release(v);
  v = tfw_unsqueeze(s, 0);
  expect_linear(v, s, 1, (const int64_t[]){1}, "unsqueeze 0-d");
  tfw_release(v);
  tfw_release(s);
  tfw_release(t);
  tfw_release(b);
  th_expect_no_leaks();
}

Test(view, writes_through_views) {
  tfw_tensor *b = tfw_zeros(TFW_DTYPE_F32, 3, (const int64_t[]){2, 3, 4});
  tfw_tensor *t = tfw_transpose(b, 0, 2);       /* [4, 3, 2] */
  tfw_tensor *s = tfw_slice(t, 0, 1, 4, 2);     /* rows 1, 3 of dim 0 */
  tfw_tensor *e = tfw_select(s, 2, 1);          /* [2, 3] */
  tfw_tensor *u = tfw_unsqueeze(e, 0);          /* [1, 2, 3] */
  cr_assert(u, "%s", tfw_last_error());
  cr_assert(tfw_tensor_set(u, (const int64_t[]){0, 1, 2}, 5.0) == TFW_OK);
  /* u[0,1,2] = e[1,2] = s[1,2,1] = t[3,2,1] = b[1,2,3] */
  double x = 0;
  cr_assert(tfw_tensor_get(b, (const int64_t[]){1, 2, 3}, &x) == TFW_OK);
  cr_assert_eq(x, 5.0, "write through the view chain not seen by the base (got %g)", x);
  cr_assert(tfw_fill_(e, 2.0) == TFW_OK);
  double *v = th_values(b);
  int twos = 0;
  for (int k = 0; k < 24; k++) twos += v[k] == 2.0;
  cr_assert_eq(twos, 6, "fill through a view wrote %d elements, expected 6", twos);
  cr_assert(tfw_tensor_get(b, (const int64_t[]){1, 0, 1}, &x) == TFW_OK && x == 2.0);
  free(v);
  tfw_release(u);
  tfw_release(e);
  tfw_release(s);
  tfw_release(t);
  /* views keep the storage alive after the base is released */
  tfw_tensor *r = tfw_view(b, 1, (const int64_t[]){24});
  tfw_release(b);
  cr_assert(tfw_tensor_get(r, (const int64_t[]){23}, &x) == TFW_OK && x == 2.0);
  tfw_release(r);
  th_expect_no_leaks();
}

#define EXPECT_ERR(expr, code, needle)                                     \
  do {                                                                     \
    tfw_tensor *r_ = (expr);                                               \
    cr_assert_null(r_, "%s: expected an error", #expr);                    \
    th_expect_error(tfw_last_status(), code, needle, #expr);               \
  } while (0)

Test(view, errors) {
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4}, -1, 1, 9);
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 1);
  EXPECT_ERR(tfw_view(t, 2, (const int64_t[]){4, 5}), TFW_ESHAPE,
             "view: shape [4, 5] is invalid for input of 12 elements ([3, 4])");
  EXPECT_ERR(tfw_reshape(t, 2, (const int64_t[]){-1, 5}), TFW_ESHAPE,
             "reshape: shape [-1, 5] is invalid for input of 12 elements ([3, 4])");
  EXPECT_ERR(tfw_view(t, 2, (const int64_t[]){-1, -1}), TFW_ESHAPE, "only one dimension");
  EXPECT_ERR(tfw_view(t, 2, (const int64_t[]){-2, -6}), TFW_ESHAPE, "invalid size -2");
  EXPECT_ERR(tfw_view(t, 3, (const int64_t[]){INT64_MAX, 4, 4}), TFW_ESHAPE, "invalid for input");
  EXPECT_ERR(tfw_view(t, 9, (const int64_t[9]){0}), TFW_ESHAPE, "'shape' has 9 entries");
  EXPECT_ERR(tfw_view(t, 2, NULL), TFW_EVALUE, "'shape' is NULL");
  EXPECT_ERR(tfw_view(NULL, 1, (const int64_t[]){1}), TFW_EVALUE, "NULL");
  EXPECT_ERR(tfw_reshape(NULL, 1, (const int64_t[]){1}), TFW_EVALUE, "NULL");
  EXPECT_ERR(tfw_transpose(t, 0, 2), TFW_EINDEX, "transpose: dimension 2 out of range");
  EXPECT_ERR(tfw_transpose(t, -3, 0), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_permute(t, 1, (const int[]){0}), TFW_ESHAPE, "permute: 1 dims given");
  EXPECT_ERR(tfw_permute(t, 2, (const int[]){1, -1}), TFW_EVALUE, "appears twice");
  EXPECT_ERR(tfw_permute(t, 2, (const int[]){0, 2}), TFW_EINDEX, "dimension 2 out of range");
  EXPECT_ERR(tfw_slice(t, 0, 0, 3, 0), TFW_EVALUE, "slice: step must be positive, got 0");
  EXPECT_ERR(tfw_slice(t, 0, 0, 3, -1), TFW_EVALUE, "step must be positive");
  EXPECT_ERR(tfw_slice(t, 2, 0, 3, 1), TFW_EINDEX, "slice: dimension 2 out of range");
  EXPECT_ERR(tfw_slice(s, 0, 0, 1, 1), TFW_EINDEX, "0-d tensor");
  EXPECT_ERR(tfw_narrow(t, 1, 5, 1), TFW_EINDEX, "start 5 out of range");
  EXPECT_ERR(tfw_narrow(t, 1, 2, 3), TFW_EINDEX, "exceeds dimension 1 of size 4");
  EXPECT_ERR(tfw_narrow(t, 1, 0, -1), TFW_EVALUE, "length must be non-negative");
  EXPECT_ERR(tfw_select(t, 0, 3), TFW_EINDEX, "select: index 3 out of range for dimension 0 of size 3");
  EXPECT_ERR(tfw_select(t, 1, -5), TFW_EINDEX, "index -5 out of range");
  EXPECT_ERR(tfw_select(s, 0, 0), TFW_EINDEX, "0-d tensor");
  EXPECT_ERR(tfw_expand(t, 2, (const int64_t[]){3, 5}), TFW_ESHAPE,
             "expand: cannot expand shape [3, 4] to [3, 5]");
  EXPECT_ERR(tfw_expand(t, 1, (const int64_t[]){4}), TFW_ESHAPE, "1 sizes given");
  EXPECT_ERR(tfw_expand(t, 3, (const int64_t[]){-1, 3, 4}), TFW_ESHAPE, "new leading");
  EXPECT_ERR(tfw_expand(s, 4, (const int64_t[]){INT64_MAX, INT64_MAX, 2, 2}), TFW_ESHAPE,
             "64-bit");
  EXPECT_ERR(tfw_squeeze(t, 2), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_unsqueeze(t, 3), TFW_EINDEX, "unsqueeze: dimension 3 out of range");
  EXPECT_ERR(tfw_unsqueeze(t, -4), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_unflatten(t, 1, 2, (const int64_t[]){3, -1}), TFW_ESHAPE,
             "unflatten: shape [3, -1] is invalid for input of 4 elements ([4])");
  EXPECT_ERR(tfw_unflatten(t, 1, 2, (const int64_t[]){2, 3}), TFW_ESHAPE, "invalid for input");
  EXPECT_ERR(tfw_unflatten(t, 1, 0, NULL), TFW_ESHAPE, "0 sizes given");
  EXPECT_ERR(tfw_unflatten(t, 5, 1, (const int64_t[]){4}), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_flatten(t, 1, 0), TFW_EVALUE, "start_dim (1) comes after end_dim (0)");
  EXPECT_ERR(tfw_flatten(t, 0, 2), TFW_EINDEX, "out of range");
  EXPECT_ERR(tfw_flatten(NULL, 0, 1), TFW_EVALUE, "NULL");
  /* 8-d tensors cannot gain a dim */
  int64_t ones[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  tfw_tensor *o8 = tfw_zeros(TFW_DTYPE_U8, 8, ones);
  EXPECT_ERR(tfw_unsqueeze(o8, 0), TFW_ESHAPE, "at most 8");
  EXPECT_ERR(tfw_unflatten(o8, 0, 2, (const int64_t[]){1, 1}), TFW_ESHAPE, "sizes given");
  tfw_release(o8);
  tfw_release(s);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(view, registry_samples) {
  int ran = 0;
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    if (id < TFW__OP_view || id > TFW__OP_unflatten) continue;
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 2 && n <= 8, "%s: %d samples", op->name, n);
    for (int k = 0; k < n; k++) {
      tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
      tfw_status st = tfw__op_run_multi(&calls[k], out);
      cr_assert(st == TFW_OK, "%s sample %d: %s", op->name, k, tfw_last_error());
      if (op->flags & TFW__OPF_VIEW)
        cr_assert(tfw_tensor_shares_storage(out[0], calls[k].in[0]), "%s: not a view", op->name);
      /* same values in row-major order for the reshaping ops */
      if (id == TFW__OP_view || id == TFW__OP_reshape || id == TFW__OP_unflatten)
        expect_linear(out[0], calls[k].in[0], tfw_tensor_ndim(out[0]), tfw_tensor_shape(out[0]),
                      op->name);
      for (int j = 0; j < op->n_out; j++) tfw_release(out[j]);
      ran++;
    }
    tfw__samples_free(calls, n);
  }
  cr_assert(ran >= 24, "only %d samples ran", ran);
  th_expect_no_leaks();
}

Test(view, oom_is_clean) {
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, (const int64_t[]){3, 4}, -1, 1, 9);
  tfw_memory_fail_at(1, true);
  tfw_tensor *v = tfw_transpose(t, 0, 1);
  tfw_tensor *r = tfw_reshape(v, 1, (const int64_t[]){12});
  tfw_memory_fail_at(0, false);
  cr_assert_null(v);
  cr_assert_null(r);
  cr_assert_eq(tfw_last_status(), TFW_EVALUE); /* reshape of the NULL result */
  tfw_release(t);
  th_expect_no_leaks();
}
