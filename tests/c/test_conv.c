/* Convolution and pooling against PyTorch (torch.nn.functional, run at test time on the same
 * inputs): forward values and the gradients of every input, on shapes that cover stride 2,
 * padding 1 and 'same', dilation 2, groups 2 and depthwise, odd sizes, batch 1, ceil_mode and
 * count_include_pad; plus error cases, half precision, unbatched inputs, indices, forward
 * mode, and bit-identical results for 1 and 2 threads. Cases are batched into a few Python
 * runs (starting torch dominates the test time). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- a batch of PyTorch comparisons ------------------------------------------------------- */

#define MAX_CASES 48
#define MAX_TS 256

typedef struct {
  char what[96];
  tfw_tensor *y;             /* our output */
  int n_leaf;
  tfw_tensor *leaves[3];
  tfw_tensor *gout;
  int out_at;                /* first of this case's outputs in the torch results */
} tcase;

typedef struct {
  int n_cases, n_in, n_out;
  tcase cases[MAX_CASES];
  tfw_tensor *in[MAX_TS];
  char code[32768];
  size_t len;
} batch;

static void add_code(batch *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_code(batch *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b->code + b->len, sizeof b->code - b->len, fmt, ap);
  va_end(ap);
  cr_assert(n > 0 && b->len + (size_t)n < sizeof b->code, "torch code too long");
  b->len += (size_t)n;
}

static void batch_init(batch *b) {
  memset(b, 0, sizeof *b);
  add_code(b, "out = []\n");
}

/* Adds a case: y = expr over X[0..n_leaf) (the leaves, float64 leaves with requires_grad),
 * compared with our y and the gradients of <y, gout> w.r.t. every leaf. */
static void add_case(batch *b, const char *what, tfw_tensor *y, int n_leaf, tfw_tensor **leaves,
                     const char *expr) {
  cr_assert(y, "%s: %s", what, tfw_last_error());
  cr_assert(b->n_cases < MAX_CASES && b->n_in + n_leaf + 1 <= MAX_TS);
  tcase *c = &b->cases[b->n_cases++];
  snprintf(c->what, sizeof c->what, "%s", what);
  c->y = y;
  c->n_leaf = n_leaf;
  c->gout = th_random(tfw_tensor_dtype(y), tfw_tensor_ndim(y), tfw_tensor_shape(y), -1, 1,
                      (uint64_t)b->n_cases * 97);
  int o = b->n_in;
  for (int i = 0; i < n_leaf; i++) c->leaves[i] = leaves[i], b->in[b->n_in++] = leaves[i];
  b->in[b->n_in++] = c->gout;
  c->out_at = b->n_out;
  b->n_out += 1 + n_leaf;
  add_code(b, "X = x[%d:%d]\ny = %s\n", o, o + n_leaf + 1, expr);
  add_code(b, "g = torch.autograd.grad(y, X[:%d], X[%d].to(y.dtype), allow_unused=True)\n",
           n_leaf, n_leaf);
  add_code(b, "out += [y] + [gi if gi is not None else torch.zeros_like(xi) for gi, xi in "
              "zip(g, X[:%d])]\n", n_leaf);
}

static void expect_match(const tfw_tensor *ours, const tfw_tensor *ref, double tol,
                         const char *what) {
  double *v = th_values(ref);
  th_expect_close(ours, tfw_tensor_dtype(ours), tfw_tensor_ndim(ref), tfw_tensor_shape(ref), v,
                  tol, tol, what);
  free(v);
}

static void batch_run(batch *b, double tol) {
  tfw_tensor **ref = calloc((size_t)b->n_out, sizeof *ref);
  th_torch_run(b->code, b->n_in, b->in, b->n_out, ref);
  for (int k = 0; k < b->n_cases; k++) {
    tcase *c = &b->cases[k];
    expect_match(c->y, ref[c->out_at], tol, c->what);
    tfw_tensor *g[3] = {NULL, NULL, NULL};
    tfw_status st = tfw_grad(1, &c->y, c->n_leaf, c->leaves, &c->gout, false, false, true, g);
    cr_assert_eq(st, TFW_OK, "%s backward: %s", c->what, tfw_last_error());
    for (int i = 0; i < c->n_leaf; i++) {
      char w[128];
      snprintf(w, sizeof w, "%s: gradient of input %d", c->what, i);
      if (g[i]) expect_match(g[i], ref[c->out_at + 1 + i], tol, w);
      tfw_release(g[i]);
    }
    tfw_release(c->y), tfw_release(c->gout);
  }
  for (int i = 0; i < b->n_out; i++) tfw_release(ref[i]);
  free(ref);
}

/* Leaves are released by the caller after batch_run; helper to make one. */
static tfw_tensor *leaf(int nd, const int64_t *shape, uint64_t seed) {
  tfw_tensor *t = th_random(TFW_DTYPE_F64, nd, shape, -1, 1, seed);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

static void release_leaves(batch *b) {
  for (int k = 0; k < b->n_cases; k++)
    for (int i = 0; i < b->cases[k].n_leaf; i++) tfw_release(b->cases[k].leaves[i]);
}

/* ---- convolutions -------------------------------------------------------------------------- */

typedef struct {
  int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, g;
  bool bias;
} conv2_cfg;

static void add_conv2d(batch *b, const conv2_cfg *f, uint64_t seed) {
  tfw_tensor *l[3];
  l[0] = leaf(4, (int64_t[]){f->n, f->c, f->h, f->w}, seed);
  l[1] = leaf(4, (int64_t[]){f->o, f->c / f->g, f->kh, f->kw}, seed + 1);
  if (f->bias) l[2] = leaf(1, (int64_t[]){f->o}, seed + 2);
  tfw_tensor *y = tfw_conv2d(l[0], l[1], f->bias ? l[2] : NULL, (int64_t[]){f->sh, f->sw},
                             (int64_t[]){f->ph, f->pw}, (int64_t[]){f->dh, f->dw}, f->g);
  char expr[256], what[96];
  snprintf(expr, sizeof expr, "F.conv2d(X[0], X[1], %s, stride=(%lld,%lld), padding=(%lld,%lld), "
           "dilation=(%lld,%lld), groups=%lld)", f->bias ? "X[2]" : "None", (long long)f->sh,
           (long long)f->sw, (long long)f->ph, (long long)f->pw, (long long)f->dh,
           (long long)f->dw, (long long)f->g);
  snprintf(what, sizeof what, "conv2d case seed %llu", (unsigned long long)seed);
  add_case(b, what, y, f->bias ? 3 : 2, l, expr);
}

Test(conv, conv2d_matches_pytorch) {
  th_require_torch();
  static batch b;
  batch_init(&b);
  const conv2_cfg fixed[] = {
      {2, 4, 7, 6, 6, 3, 3, 2, 2, 1, 1, 1, 1, 1, true},  /* stride 2, padding 1 */
      {1, 3, 9, 8, 4, 3, 2, 1, 1, 0, 1, 2, 2, 1, false}, /* dilation 2, batch 1 */
      {3, 4, 5, 5, 6, 3, 3, 1, 1, 1, 1, 1, 1, 2, true},  /* groups 2 */
      {2, 5, 6, 7, 5, 3, 3, 1, 2, 1, 0, 1, 1, 5, true},  /* depthwise */
      {2, 3, 6, 5, 4, 1, 1, 1, 1, 0, 0, 1, 1, 1, true},  /* 1x1 direct path */
      {1, 2, 28, 28, 8, 3, 3, 1, 1, 0, 0, 1, 1, 1, true}, /* MNIST-like */
      {2, 6, 5, 5, 4, 5, 5, 2, 3, 2, 2, 1, 1, 2, false}, /* kernel = padded input */
  };
  uint64_t seed = 10;
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, seed += 10)
    add_conv2d(&b, &fixed[i], seed);
  /* random shapes */
  uint64_t rs = 12345;
  for (int r = 0; r < 8; r++, seed += 10) {
    conv2_cfg f;
    f.g = 1 + (int64_t)(th_rand_u64(&rs) % 3);
    f.c = f.g * (1 + (int64_t)(th_rand_u64(&rs) % 3));
    f.o = f.g * (1 + (int64_t)(th_rand_u64(&rs) % 3));
    f.n = 1 + (int64_t)(th_rand_u64(&rs) % 3);
    f.kh = 1 + (int64_t)(th_rand_u64(&rs) % 3), f.kw = 1 + (int64_t)(th_rand_u64(&rs) % 3);
    f.sh = 1 + (int64_t)(th_rand_u64(&rs) % 2), f.sw = 1 + (int64_t)(th_rand_u64(&rs) % 3);
    f.dh = 1 + (int64_t)(th_rand_u64(&rs) % 2), f.dw = 1 + (int64_t)(th_rand_u64(&rs) % 2);
    f.ph = (int64_t)(th_rand_u64(&rs) % 3), f.pw = (int64_t)(th_rand_u64(&rs) % 2);
    f.h = f.dh * (f.kh - 1) + 1 + (int64_t)(th_rand_u64(&rs) % 6);
    f.w = f.dw * (f.kw - 1) + 1 + (int64_t)(th_rand_u64(&rs) % 6);
    f.bias = th_rand_u64(&rs) % 2;
    add_conv2d(&b, &f, seed);
  }
  batch_run(&b, 1e-10);
  release_leaves(&b);
  th_expect_no_leaks();
}

Test(conv, conv1d_same_and_transpose_match_pytorch) {
  th_require_torch();
  static batch b;
  batch_init(&b);
  tfw_tensor *l[3];
  /* conv1d: stride 2, padding 1, groups 2, bias */
  l[0] = leaf(3, (int64_t[]){2, 4, 11}, 1);
  l[1] = leaf(3, (int64_t[]){6, 2, 3}, 2);
  l[2] = leaf(1, (int64_t[]){6}, 3);
  add_case(&b, "conv1d", tfw_conv1d(l[0], l[1], l[2], 2, 1, 1, 2), 3, l,
           "F.conv1d(X[0], X[1], X[2], stride=2, padding=1, groups=2)");
  /* conv1d dilation 2, depthwise, batch 1 */
  l[0] = leaf(3, (int64_t[]){1, 3, 10}, 4);
  l[1] = leaf(3, (int64_t[]){3, 1, 3}, 5);
  add_case(&b, "conv1d depthwise", tfw_conv1d(l[0], l[1], NULL, 1, 0, 2, 3), 2, l,
           "F.conv1d(X[0], X[1], None, dilation=2, groups=3)");
  /* 'same' with odd and even kernels (even: one-sided extra pad) */
  l[0] = leaf(3, (int64_t[]){2, 3, 9}, 6);
  l[1] = leaf(3, (int64_t[]){4, 3, 4}, 7);
  l[2] = leaf(1, (int64_t[]){4}, 8);
  add_case(&b, "conv1d same even kernel", tfw_conv1d_same(l[0], l[1], l[2], 1, 1), 3, l,
           "F.conv1d(X[0], X[1], X[2], padding='same')");
  l[0] = leaf(4, (int64_t[]){2, 2, 7, 6}, 9);
  l[1] = leaf(4, (int64_t[]){3, 2, 3, 2}, 10);
  add_case(&b, "conv2d same dilation 2", tfw_conv2d_same(l[0], l[1], NULL, (int64_t[]){2, 2}, 1),
           2, l, "F.conv2d(X[0], X[1], None, padding='same', dilation=2)");
  l[0] = leaf(4, (int64_t[]){1, 4, 5, 5}, 11);
  l[1] = leaf(4, (int64_t[]){4, 2, 3, 3}, 12);
  l[2] = leaf(1, (int64_t[]){4}, 13);
  add_case(&b, "conv2d same groups 2", tfw_conv2d_same(l[0], l[1], l[2], NULL, 2), 3, l,
           "F.conv2d(X[0], X[1], X[2], padding='same', groups=2)");
  /* conv_transpose2d: stride 2, padding 1, output_padding 1, groups 2, bias */
  l[0] = leaf(4, (int64_t[]){2, 4, 3, 4}, 14);
  l[1] = leaf(4, (int64_t[]){4, 3, 3, 3}, 15);
  l[2] = leaf(1, (int64_t[]){6}, 16);
  add_case(&b, "conv_transpose2d",
           tfw_conv_transpose2d(l[0], l[1], l[2], (int64_t[]){2, 2}, (int64_t[]){1, 1},
                                (int64_t[]){1, 0}, 2, NULL),
           3, l, "F.conv_transpose2d(X[0], X[1], X[2], stride=2, padding=1, output_padding=(1,0), groups=2)");
  /* dilation 2 with output_padding >= stride (allowed: < dilation) */
  l[0] = leaf(4, (int64_t[]){1, 2, 4, 3}, 17);
  l[1] = leaf(4, (int64_t[]){2, 3, 2, 3}, 18);
  add_case(&b, "conv_transpose2d dilation",
           tfw_conv_transpose2d(l[0], l[1], NULL, NULL, (int64_t[]){0, 1}, (int64_t[]){1, 0}, 1,
                                (int64_t[]){2, 2}),
           2, l, "F.conv_transpose2d(X[0], X[1], None, padding=(0,1), output_padding=(1,0), dilation=2)");
  l[0] = leaf(3, (int64_t[]){2, 3, 5}, 19);
  l[1] = leaf(3, (int64_t[]){3, 2, 4}, 20);
  l[2] = leaf(1, (int64_t[]){2}, 21);
  add_case(&b, "conv_transpose1d", tfw_conv_transpose1d(l[0], l[1], l[2], 3, 1, 2, 1, 1), 3, l,
           "F.conv_transpose1d(X[0], X[1], X[2], stride=3, padding=1, output_padding=2)");
  batch_run(&b, 1e-10);
  release_leaves(&b);
  th_expect_no_leaks();
}

/* ---- pooling --------------------------------------------------------------------------------- */

Test(conv, pooling_matches_pytorch) {
  th_require_torch();
  static batch b;
  batch_init(&b);
  tfw_tensor *l[1];
  const int64_t s4[4] = {2, 3, 7, 8}, s3[3] = {2, 3, 9};
  l[0] = leaf(4, s4, 1);
  add_case(&b, "max_pool2d", tfw_max_pool2d(l[0], (int64_t[]){2, 2}, NULL, NULL, NULL, false, NULL),
           1, l, "F.max_pool2d(X[0], 2)");
  l[0] = leaf(4, s4, 2);
  add_case(&b, "max_pool2d ceil pad dil",
           tfw_max_pool2d(l[0], (int64_t[]){3, 2}, (int64_t[]){2, 2}, (int64_t[]){1, 1},
                          (int64_t[]){2, 1}, true, NULL),
           1, l, "F.max_pool2d(X[0], (3,2), stride=2, padding=1, dilation=(2,1), ceil_mode=True)");
  l[0] = leaf(3, s3, 3);
  add_case(&b, "max_pool1d ceil", tfw_max_pool1d(l[0], 2, 2, 0, 1, true, NULL), 1, l,
           "F.max_pool1d(X[0], 2, stride=2, ceil_mode=True)");
  l[0] = leaf(4, s4, 4);
  add_case(&b, "avg_pool2d", tfw_avg_pool2d(l[0], (int64_t[]){3, 3}, (int64_t[]){2, 2},
                                            (int64_t[]){1, 1}, false, true, 0),
           1, l, "F.avg_pool2d(X[0], 3, stride=2, padding=1)");
  l[0] = leaf(4, s4, 5);
  add_case(&b, "avg_pool2d ceil no pad count",
           tfw_avg_pool2d(l[0], (int64_t[]){3, 2}, (int64_t[]){2, 3}, (int64_t[]){1, 1}, true,
                          false, 0),
           1, l, "F.avg_pool2d(X[0], (3,2), stride=(2,3), padding=1, ceil_mode=True, count_include_pad=False)");
  l[0] = leaf(4, s4, 6);
  add_case(&b, "avg_pool2d divisor",
           tfw_avg_pool2d(l[0], (int64_t[]){2, 2}, NULL, NULL, true, true, 3), 1, l,
           "F.avg_pool2d(X[0], 2, ceil_mode=True, divisor_override=3)");
  l[0] = leaf(3, s3, 7);
  add_case(&b, "avg_pool1d ceil", tfw_avg_pool1d(l[0], 4, 3, 2, true, true), 1, l,
           "F.avg_pool1d(X[0], 4, stride=3, padding=2, ceil_mode=True)");
  l[0] = leaf(4, s4, 8);
  add_case(&b, "adaptive_avg_pool2d", tfw_adaptive_avg_pool2d(l[0], (int64_t[]){3, 5}), 1, l,
           "F.adaptive_avg_pool2d(X[0], (3,5))");
  l[0] = leaf(4, (int64_t[]){1, 2, 3, 4}, 9);
  add_case(&b, "adaptive_avg_pool2d upsampling", tfw_adaptive_avg_pool2d(l[0], (int64_t[]){5, 7}),
           1, l, "F.adaptive_avg_pool2d(X[0], (5,7))");
  batch_run(&b, 1e-12);
  release_leaves(&b);
  th_expect_no_leaks();
}

Test(conv, max_pool_indices_and_nan) {
  th_require_torch();
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 4, (int64_t[]){2, 2, 5, 7}, -1, 1, 3);
  tfw_tensor *idx = NULL;
  tfw_tensor *v = tfw_max_pool2d(x, (int64_t[]){3, 3}, (int64_t[]){2, 2}, (int64_t[]){1, 1}, NULL,
                                 true, &idx);
  cr_assert(v && idx, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(idx), TFW_DTYPE_I64);
  tfw_tensor *ref[2], *in[1] = {x};
  th_torch_run("v, i = F.max_pool2d(x[0], 3, stride=2, padding=1, ceil_mode=True, return_indices=True)\n"
               "out = [v, i]\n", 1, in, 2, ref);
  expect_match(v, ref[0], 0, "values");
  expect_match(idx, ref[1], 0, "indices");
  tfw_release(v), tfw_release(idx), tfw_release(ref[0]), tfw_release(ref[1]);
  /* NaN propagates, like PyTorch */
  cr_assert(tfw_tensor_set(x, (int64_t[]){0, 0, 1, 1}, NAN) == TFW_OK);
  v = tfw_max_pool2d(x, (int64_t[]){2, 2}, NULL, NULL, NULL, false, NULL);
  double got;
  cr_assert(tfw_tensor_get(v, (int64_t[]){0, 0, 0, 0}, &got) == TFW_OK && isnan(got));
  tfw_release(v), tfw_release(x);
  th_expect_no_leaks();
}

/* The 2x2 / stride-2 fast path (pool.c max_plane_2x2): odd sizes (last row and column
 * dropped), ties (first in window order wins, as PyTorch), NaN, f32 and f64, plus the gradient
 * through the indices; against PyTorch. */
Test(conv, max_pool_2x2_fast_path) {
  th_require_torch();
  const tfw_dtype dts[2] = {TFW_DTYPE_F32, TFW_DTYPE_F64};
  for (int k = 0; k < 2; k++) {
    tfw_tensor *x = th_random(dts[k], 4, (int64_t[]){2, 3, 7, 9}, -1, 1, 40 + (uint64_t)k);
    cr_assert(tfw_tensor_set(x, (int64_t[]){0, 0, 2, 3}, 0.75) == TFW_OK); /* a tie: (2,2),(2,3) */
    cr_assert(tfw_tensor_set(x, (int64_t[]){0, 0, 2, 2}, 0.75) == TFW_OK);
    cr_assert(tfw_tensor_set(x, (int64_t[]){1, 2, 5, 7}, NAN) == TFW_OK);
    cr_assert(tfw_tensor_set(x, (int64_t[]){1, 1, 6, 8}, NAN) == TFW_OK); /* dropped column */
    tfw_tensor *idx = NULL;
    tfw_tensor *v = tfw_max_pool2d(x, (int64_t[]){2, 2}, NULL, NULL, NULL, false, &idx);
    cr_assert(v && idx, "%s", tfw_last_error());
    tfw_tensor *ref[2], *in[1] = {x};
    th_torch_run("v, i = F.max_pool2d(x[0], 2, return_indices=True)\nout = [v, i]\n", 1, in, 2,
                 ref);
    expect_match(v, ref[0], 0, "2x2 values");
    expect_match(idx, ref[1], 0, "2x2 indices");
    tfw_release(v), tfw_release(idx), tfw_release(ref[0]), tfw_release(ref[1]), tfw_release(x);
  }
  th_expect_no_leaks();
}

/* ---- errors --------------------------------------------------------------------------------- */

Test(conv, errors_are_clean) {
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 4, (int64_t[]){1, 4, 5, 5}, -1, 1, 1);
  tfw_tensor *w = th_random(TFW_DTYPE_F32, 4, (int64_t[]){2, 3, 3, 3}, -1, 1, 2);
  tfw_tensor *w4 = th_random(TFW_DTYPE_F32, 4, (int64_t[]){2, 4, 3, 3}, -1, 1, 3);
  tfw_tensor *big = th_random(TFW_DTYPE_F32, 4, (int64_t[]){2, 4, 7, 7}, -1, 1, 4);
  tfw_tensor *wd = th_random(TFW_DTYPE_F64, 4, (int64_t[]){2, 4, 3, 3}, -1, 1, 5);
  tfw_tensor *xi = tfw_ones(TFW_DTYPE_I32, 4, (int64_t[]){1, 4, 5, 5});
  th_expect_error(tfw_conv2d(x, w, NULL, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE,
                  "conv2d: weight has 3 input channels per group, input has 4 channels with groups 1",
                  "channel mismatch");
  th_expect_error(tfw_conv2d(x, big, NULL, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "larger than the padded input", "kernel too large");
  th_expect_error(tfw_conv2d(x, w4, NULL, (int64_t[]){0, 1}, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "stride must be positive", "zero stride");
  th_expect_error(tfw_conv2d(x, w4, NULL, NULL, (int64_t[]){-1, 0}, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "padding must be non-negative", "negative padding");
  th_expect_error(tfw_conv2d(x, w4, NULL, NULL, NULL, NULL, 0) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "groups must be positive", "zero groups");
  th_expect_error(tfw_conv2d(x, w4, NULL, NULL, NULL, NULL, 3) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "conv2d", "groups not dividing");
  th_expect_error(tfw_conv2d(x, wd, NULL, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_EDTYPE, "same dtype", "dtype mismatch");
  th_expect_error(tfw_conv2d(xi, w4, NULL, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_EDTYPE, "floating", "integer input");
  th_expect_error(tfw_conv2d(x, w4, w4, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "bias must have shape [2]", "bad bias");
  th_expect_error(tfw_conv2d(NULL, w4, NULL, NULL, NULL, NULL, 1) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "conv2d", "NULL input");
  th_expect_error(tfw_conv1d(x, w4, NULL, 1, 0, 1, 1) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "conv1d: input must be 3-d", "rank");
  tfw_tensor *wt = tfw_transpose(w4, 0, 1); /* [4, 2, 3, 3] */
  th_expect_error(tfw_conv_transpose2d(x, wt, NULL, (int64_t[]){1, 1}, NULL, (int64_t[]){1, 0}, 1,
                                       NULL) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "output_padding", "output_padding >= stride");
  th_expect_error(tfw_max_pool2d(x, (int64_t[]){2, 2}, NULL, (int64_t[]){2, 0}, NULL, false, NULL)
                      ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "at most half of the kernel", "pool padding");
  th_expect_error(tfw_max_pool2d(x, (int64_t[]){7, 2}, NULL, NULL, NULL, false, NULL)
                      ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "output size is too small", "pool kernel too large");
  th_expect_error(tfw_avg_pool2d(x, (int64_t[]){0, 2}, NULL, NULL, false, true, 0)
                      ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "kernel size must be positive", "pool zero kernel");
  th_expect_error(tfw_adaptive_avg_pool2d(x, (int64_t[]){0, 2}) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "output size must be positive", "adaptive zero");
  tfw_release(x), tfw_release(w), tfw_release(w4), tfw_release(big), tfw_release(wd);
  tfw_release(xi), tfw_release(wt);
  th_expect_no_leaks();
}

/* ---- the Winograd F(2x2, 3x3) path (f32, 3x3, stride 1, groups 1; src/ops/conv_winograd.c) --
 * f32 leaves, PyTorch computing in f64 from the same values: our f32 results must be within
 * f32 rounding of the exact ones. Shapes: odd and tiny outputs (ragged tiles), padding 0/1/2,
 * batch 1, rows wider than 16 tiles (several runs per tile-row), blocks of tiles spanning
 * images (the MNIST shape), a non-contiguous input, and the transposed conv. */
static tfw_tensor *leaf32(int nd, const int64_t *shape, uint64_t seed, bool strided) {
  tfw_tensor *t = strided ? th_random_strided(TFW_DTYPE_F32, nd, shape, -1, 1, seed)
                          : th_random(TFW_DTYPE_F32, nd, shape, -1, 1, seed);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

Test(conv, winograd_f32_matches_pytorch) {
  th_require_torch();
  static batch b;
  batch_init(&b);
  const struct {
    int64_t n, c, h, w, o, ph, pw;
    bool bias, strided;
  } cfg[] = {
      {2, 5, 9, 7, 6, 0, 0, true, false},     /* odd output 7x5 */
      {1, 4, 8, 8, 4, 1, 1, false, false},    /* batch 1, padding 1 */
      {3, 8, 11, 40, 5, 2, 1, true, false},   /* padding 2, 20 tiles per row */
      {2, 32, 26, 26, 64, 0, 0, true, false}, /* MNIST conv2: blocks span images */
      {1, 4, 4, 3, 4, 0, 1, true, false},     /* 2x3 output */
      {2, 6, 6, 5, 4, 1, 0, true, true},      /* non-contiguous input */
  };
  uint64_t seed = 500;
  for (size_t i = 0; i < sizeof cfg / sizeof cfg[0]; i++, seed += 10) {
    tfw_tensor *l[3];
    l[0] = leaf32(4, (int64_t[]){cfg[i].n, cfg[i].c, cfg[i].h, cfg[i].w}, seed, cfg[i].strided);
    l[1] = leaf32(4, (int64_t[]){cfg[i].o, cfg[i].c, 3, 3}, seed + 1, false);
    if (cfg[i].bias) l[2] = leaf32(1, (int64_t[]){cfg[i].o}, seed + 2, false);
    tfw_tensor *y = tfw_conv2d(l[0], l[1], cfg[i].bias ? l[2] : NULL, NULL,
                               (int64_t[]){cfg[i].ph, cfg[i].pw}, NULL, 1);
    char expr[160], what[64];
    snprintf(expr, sizeof expr, "F.conv2d(X[0].double(), X[1].double(), %s, padding=(%lld,%lld))",
             cfg[i].bias ? "X[2].double()" : "None", (long long)cfg[i].ph, (long long)cfg[i].pw);
    snprintf(what, sizeof what, "winograd conv2d case %zu", i);
    add_case(&b, what, y, cfg[i].bias ? 3 : 2, l, expr);
  }
  /* conv_transpose2d, stride 1: padding 0, 1, 2 */
  for (int p = 0; p < 3; p++, seed += 10) {
    tfw_tensor *l[3];
    l[0] = leaf32(4, (int64_t[]){2, 6, 7 + p, 9}, seed, false);
    l[1] = leaf32(4, (int64_t[]){6, 5, 3, 3}, seed + 1, false);
    l[2] = leaf32(1, (int64_t[]){5}, seed + 2, false);
    tfw_tensor *y = tfw_conv_transpose2d(l[0], l[1], l[2], NULL, (int64_t[]){p, p}, NULL, 1, NULL);
    char expr[160], what[64];
    snprintf(expr, sizeof expr, "F.conv_transpose2d(X[0].double(), X[1].double(), X[2].double(), "
             "padding=%d)", p);
    snprintf(what, sizeof what, "winograd conv_transpose2d padding %d", p);
    add_case(&b, what, y, 3, l, expr);
  }
  batch_run(&b, 2e-4);
  release_leaves(&b);
  th_expect_no_leaks();
}

/* ---- dtypes, layouts, threads ----------------------------------------------------------------- */

Test(conv, half_precision_strided_and_unbatched) {
  tfw_tensor *x = th_random_strided(TFW_DTYPE_F32, 4, (int64_t[]){2, 4, 6, 5}, -1, 1, 1);
  tfw_tensor *w = th_random(TFW_DTYPE_F32, 4, (int64_t[]){6, 2, 3, 3}, -1, 1, 2);
  tfw_tensor *b = th_random(TFW_DTYPE_F32, 1, (int64_t[]){6}, -1, 1, 3);
  tfw_tensor *ref = tfw_conv2d(x, w, b, (int64_t[]){2, 1}, (int64_t[]){1, 1}, NULL, 2);
  cr_assert(ref, "%s", tfw_last_error());
  double *rv = th_values(ref);
  const tfw_dtype dts[2] = {TFW_DTYPE_F16, TFW_DTYPE_BF16};
  for (int k = 0; k < 2; k++) {
    tfw_tensor *xh = tfw_to_dtype(x, dts[k]), *wh = tfw_to_dtype(w, dts[k]), *bh = tfw_to_dtype(b, dts[k]);
    tfw_tensor *y = tfw_conv2d(xh, wh, bh, (int64_t[]){2, 1}, (int64_t[]){1, 1}, NULL, 2);
    cr_assert(y, "%s", tfw_last_error());
    th_expect_close(y, dts[k], 4, tfw_tensor_shape(ref), rv, 0.05, 0.1, "half conv2d");
    tfw_release(xh), tfw_release(wh), tfw_release(bh), tfw_release(y);
  }
  /* unbatched [C, H, W] */
  tfw_tensor *x0 = tfw_select(x, 0, 0);
  tfw_tensor *y0 = tfw_conv2d(x0, w, b, (int64_t[]){2, 1}, (int64_t[]){1, 1}, NULL, 2);
  cr_assert(y0 && tfw_tensor_ndim(y0) == 3, "%s", tfw_last_error());
  tfw_tensor *r0 = tfw_select(ref, 0, 0);
  expect_match(y0, r0, 1e-6, "unbatched conv2d");
  tfw_tensor *p0 = tfw_max_pool2d(x0, (int64_t[]){2, 2}, NULL, NULL, NULL, false, NULL);
  cr_assert(p0 && tfw_tensor_ndim(p0) == 3, "%s", tfw_last_error());
  free(rv);
  tfw_release(x), tfw_release(w), tfw_release(b), tfw_release(ref), tfw_release(x0);
  tfw_release(y0), tfw_release(r0), tfw_release(p0);
  th_expect_no_leaks();
}

static void mnist_step(tfw_tensor **out) {
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 4, (int64_t[]){16, 1, 28, 28}, -1, 1, 1);
  tfw_tensor *w1 = th_random(TFW_DTYPE_F32, 4, (int64_t[]){32, 1, 3, 3}, -1, 1, 2);
  tfw_tensor *w2 = th_random(TFW_DTYPE_F32, 4, (int64_t[]){64, 32, 3, 3}, -1, 1, 3);
  tfw_tensor_set_requires_grad(w1, true);
  tfw_tensor_set_requires_grad(w2, true);
  tfw_tensor *h = tfw_conv2d(x, w1, NULL, NULL, NULL, NULL, 1);
  tfw_tensor *y = tfw_conv2d(h, w2, NULL, NULL, NULL, NULL, 1);
  tfw_tensor *p = tfw_max_pool2d(y, (int64_t[]){2, 2}, NULL, NULL, NULL, false, NULL);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  cr_assert(s && tfw_backward(s, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  out[0] = y;
  out[1] = tfw_tensor_grad(w1);
  out[2] = tfw_tensor_grad(w2);
  tfw_release(x), tfw_release(w1), tfw_release(w2), tfw_release(h), tfw_release(p), tfw_release(s);
}

Test(conv, bit_identical_for_1_and_2_threads) {
  tfw_tensor *r[2][3];
  for (int t = 0; t < 2; t++) {
    tfw_set_num_threads(t + 1);
    mnist_step(r[t]);
  }
  tfw_set_num_threads(0);
  for (int k = 0; k < 3; k++) {
    bool eq = false;
    cr_assert(tfw_equal(r[0][k], r[1][k], &eq) == TFW_OK && eq, "result %d differs", k);
    tfw_release(r[0][k]), tfw_release(r[1][k]);
  }
  th_expect_no_leaks();
}
