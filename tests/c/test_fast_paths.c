/* The MNIST-step fast paths of branch h-conv2, each against an independent truth:
 *   - max_pool2d 2x2 / stride 2 on AVX-512 (forward values + indices) and the fused max-pool
 *     backward (recomputed argmax, no scatter): against PyTorch on widths that cover one, two
 *     and three vectors of output columns with ragged ends, odd sizes, ties and NaN; and the
 *     fused gradient against the registered-op path (scatter_add, used under create_graph)
 *     bit for bit, for the 2x2 and general geometries, f32, f64 and f16;
 *   - dropout's vectorised Philox (16 blocks per call): the mask equals tfw_rand's values
 *     (scalar Philox) compared with 1 - p, element by element, for sizes around the 64-element
 *     step, counters that wrap the low 32-bit word, and 1 vs 2 threads. */
#include <math.h>
#include <stdlib.h>

#include "harness.h"

static void expect_match(const tfw_tensor *ours, const tfw_tensor *ref, double tol,
                         const char *what) {
  double *v = th_values(ref);
  th_expect_close(ours, tfw_tensor_dtype(ours), tfw_tensor_ndim(ref), tfw_tensor_shape(ref), v,
                  tol, tol, what);
  free(v);
}

static void expect_equal(const tfw_tensor *a, const tfw_tensor *b, const char *what) {
  bool eq = false;
  cr_assert(tfw_equal(a, b, &eq) == TFW_OK, "%s: %s", what, tfw_last_error());
  cr_assert(eq, "%s: not bit-identical", what);
}

/* ---- max pooling --------------------------------------------------------------------------- */

Test(fast_paths, max_pool_2x2_forward_and_backward_match_pytorch) {
  th_require_torch();
  /* W: 2, 3 (one column dropped), 24 (MNIST, 12 columns), 33 (16 + ragged), 70 (35: three
   * vectors); H odd and even. One Python run for all (starting torch dominates). */
  enum { NS = 5 };
  const int64_t shapes[NS][4] = {{1, 1, 2, 2}, {2, 3, 5, 3}, {3, 2, 24, 24}, {2, 2, 7, 33},
                                 {1, 2, 4, 70}};
  tfw_tensor *x[NS], *gy[NS], *v[NS], *idx[NS], *in[2 * NS], *ref[3 * NS];
  for (int s = 0; s < NS; s++) {
    const int64_t *sh = shapes[s];
    x[s] = th_random(TFW_DTYPE_F32, 4, sh, -1, 1, 100 + (uint64_t)s);
    int64_t gshape[4] = {sh[0], sh[1], sh[2] / 2, sh[3] / 2};
    gy[s] = th_random(TFW_DTYPE_F32, 4, gshape, -1, 1, 200 + (uint64_t)s);
    if (sh[2] >= 4 && sh[3] >= 4) {
      /* a tie in one window (first in window order wins), NaN in another (last NaN wins) */
      cr_assert(tfw_tensor_set(x[s], (int64_t[]){0, 0, 2, 2}, 0.875) == TFW_OK);
      cr_assert(tfw_tensor_set(x[s], (int64_t[]){0, 0, 3, 3}, 0.875) == TFW_OK);
      cr_assert(tfw_tensor_set(x[s], (int64_t[]){0, 1, 1, 2}, NAN) == TFW_OK);
      cr_assert(tfw_tensor_set(x[s], (int64_t[]){0, 1, 1, 3}, NAN) == TFW_OK);
    }
    tfw_tensor_set_requires_grad(x[s], true);
    v[s] = tfw_max_pool2d(x[s], (int64_t[]){2, 2}, NULL, NULL, NULL, false, &idx[s]);
    cr_assert(v[s] && idx[s], "%s", tfw_last_error());
    cr_assert(tfw_backward(v[s], gy[s], false, false) == TFW_OK, "%s", tfw_last_error());
    in[2 * s] = x[s], in[2 * s + 1] = gy[s];
  }
  th_torch_run("out = []\n"
               "for k in range(0, len(x), 2):\n"
               "    v, i = F.max_pool2d(x[k], 2, return_indices=True)\n"
               "    v.backward(x[k + 1])\n"
               "    out += [v, i, x[k].grad]\n", 2 * NS, in, 3 * NS, ref);
  for (int s = 0; s < NS; s++) {
    char w[64];
    snprintf(w, sizeof w, "shape %d values", s);
    expect_match(v[s], ref[3 * s], 0, w);
    snprintf(w, sizeof w, "shape %d indices", s);
    expect_match(idx[s], ref[3 * s + 1], 0, w);
    snprintf(w, sizeof w, "shape %d gradient", s);
    tfw_tensor *g = tfw_tensor_grad(x[s]);
    expect_match(g, ref[3 * s + 2], 0, w);
    for (int k = 0; k < 3; k++) tfw_release(ref[3 * s + k]);
    tfw_release(g), tfw_release(v[s]), tfw_release(idx[s]), tfw_release(x[s]), tfw_release(gy[s]);
  }
  th_expect_no_leaks();
}

/* The fused gradient (plain backward) equals the recorded one (create_graph: forward
 * recompute + scatter_add), bit for bit. */
static void fused_vs_recorded(tfw_dtype dt, const int64_t *shape, const int64_t *k,
                              const int64_t *s, const int64_t *p, const int64_t *d, bool ceil,
                              uint64_t seed) {
  tfw_tensor *x = th_random(dt, 4, shape, -1, 1, seed);
  /* duplicates, so overlapping windows share maxima and gradients add up */
  tfw_tensor *x3 = tfw_mul_scalar(x, 3);
  tfw_tensor *xr = tfw_to_dtype(x3, TFW_DTYPE_I64); /* integers in [-2, 2]: many ties */
  tfw_tensor *xx = tfw_to_dtype(xr, dt);
  cr_assert(xx, "%s", tfw_last_error());
  tfw_tensor_set_requires_grad(xx, true);
  tfw_tensor *y = tfw_max_pool2d(xx, k, s, p, d, ceil, NULL);
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *gy = th_random(dt, 4, tfw_tensor_shape(y), -1, 1, seed + 1);
  tfw_tensor *g[2];
  for (int create = 0; create < 2; create++) {
    g[create] = NULL;
    cr_assert(tfw_grad(1, &y, 1, &xx, &gy, true, create, false, &g[create]) == TFW_OK, "%s",
              tfw_last_error());
  }
  expect_equal(g[0], g[1], "fused vs recorded max-pool gradient");
  tfw_release(g[0]), tfw_release(g[1]), tfw_release(y), tfw_release(gy);
  tfw_release(x), tfw_release(x3), tfw_release(xr), tfw_release(xx);
}

Test(fast_paths, fused_max_pool_gradient_equals_recorded_path) {
  const int64_t one[2] = {1, 1}, two[2] = {2, 2}, three[2] = {3, 3}, zero[2] = {0, 0};
  const tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16};
  for (int t = 0; t < 3; t++) {
    fused_vs_recorded(dts[t], (int64_t[]){2, 3, 9, 37}, two, NULL, zero, one, false, 1);
    fused_vs_recorded(dts[t], (int64_t[]){2, 3, 8, 8}, two, NULL, zero, one, false, 2);
    fused_vs_recorded(dts[t], (int64_t[]){1, 2, 9, 11}, three, two, one, one, true, 3);
    fused_vs_recorded(dts[t], (int64_t[]){1, 2, 7, 10}, (int64_t[]){3, 2}, (int64_t[]){1, 2},
                      (int64_t[]){1, 0}, (int64_t[]){2, 1}, false, 4);
  }
  /* 1-d pooling goes through the same code */
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 3, 11}, -1, 1, 9);
  tfw_tensor_set_requires_grad(x, true);
  tfw_tensor *y = tfw_max_pool1d(x, 3, 2, 1, 1, true, NULL);
  tfw_tensor *gy = th_random(TFW_DTYPE_F32, 3, tfw_tensor_shape(y), -1, 1, 10);
  tfw_tensor *g[2] = {NULL, NULL};
  for (int create = 0; create < 2; create++)
    cr_assert(tfw_grad(1, &y, 1, &x, &gy, true, create, false, &g[create]) == TFW_OK);
  expect_equal(g[0], g[1], "max_pool1d fused vs recorded");
  tfw_release(g[0]), tfw_release(g[1]), tfw_release(y), tfw_release(gy), tfw_release(x);
  th_expect_no_leaks();
}

/* The fused gradient of a strided (non-contiguous) input and of a double backward through
 * max-pool (which must take the recorded path) still agree with PyTorch. */
Test(fast_paths, max_pool_gradient_strided_and_second_order) {
  th_require_torch();
  tfw_tensor *x = th_random_strided(TFW_DTYPE_F64, 4, (int64_t[]){2, 2, 6, 6}, -1, 1, 21);
  tfw_tensor_set_requires_grad(x, true);
  tfw_tensor *y = tfw_max_pool2d(x, (int64_t[]){2, 2}, NULL, NULL, NULL, false, NULL);
  tfw_tensor *y2 = tfw_mul(y, y);
  tfw_tensor *l = tfw_sum(y2, 0, NULL, false);
  tfw_tensor *g = NULL;
  cr_assert(tfw_grad(1, &l, 1, &x, NULL, true, true, false, &g) == TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gs = g ? tfw_sum(g, 0, NULL, false) : NULL;
  tfw_tensor *gg = NULL;
  cr_assert(gs && tfw_grad(1, &gs, 1, &x, NULL, false, false, false, &gg) == TFW_OK, "%s",
            tfw_last_error());
  tfw_tensor *ref[2], *in[1] = {x};
  th_torch_run("y = F.max_pool2d(x[0], 2)\n"
               "g, = torch.autograd.grad((y * y).sum(), x[0], create_graph=True)\n"
               "gg, = torch.autograd.grad(g.sum(), x[0])\nout = [g, gg]\n", 1, in, 2, ref);
  expect_match(g, ref[0], 1e-12, "first order");
  expect_match(gg, ref[1], 1e-12, "second order");
  tfw_release(ref[0]), tfw_release(ref[1]), tfw_release(g), tfw_release(gg), tfw_release(gs);
  tfw_release(l), tfw_release(y2), tfw_release(y), tfw_release(x);
  th_expect_no_leaks();
}

/* ---- dropout ------------------------------------------------------------------------------- */

/* dropout(x) == (rand < 1 - p ? x / (1 - p) : 0) with tfw_rand drawn from the same state. */
static void dropout_vs_rand(int64_t n, uint64_t seed, uint64_t offset, double p) {
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 1, &n, -2, 2, 7 + (uint64_t)n);
  tfw_rng_set_state(seed, offset);
  tfw_tensor *r = tfw_rand(TFW_DTYPE_F32, 1, &n);
  tfw_tensor *y[2];
  for (int t = 0; t < 2; t++) {
    tfw_set_num_threads(t + 1);
    tfw_rng_set_state(seed, offset);
    y[t] = tfw_dropout(x, p, true);
    cr_assert(y[t], "%s", tfw_last_error());
  }
  tfw_set_num_threads(0);
  expect_equal(y[0], y[1], "dropout 1 vs 2 threads");
  double *xv = th_values(x), *rv = th_values(r), *yv = th_values(y[0]);
  const float keep = (float)(1.0 - p), scale = (float)(1.0 / (1.0 - p));
  for (int64_t i = 0; i < n; i++) {
    const float want = (float)rv[i] < keep ? (float)xv[i] * scale : 0.0f;
    cr_assert(yv[i] == (double)want, "n %lld offset %llu: element %lld is %g, want %g",
              (long long)n, (unsigned long long)offset, (long long)i, yv[i], (double)want);
  }
  free(xv), free(rv), free(yv);
  tfw_release(x), tfw_release(r), tfw_release(y[0]), tfw_release(y[1]);
}

Test(fast_paths, dropout_mask_equals_rand) {
  const int64_t sizes[] = {1, 3, 63, 64, 65, 127, 128, 1000, 4099, 70001};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    dropout_vs_rand(sizes[i], 42, 5, 0.25);
    dropout_vs_rand(sizes[i], UINT64_C(0x123456789abcdef), 0, 0.5);
  }
  /* counters crossing 2^32 inside a 16-block group: the high word must carry per lane */
  dropout_vs_rand(1000, 3, (UINT64_C(1) << 32) - 7, 0.3);
  dropout_vs_rand(1000, 3, UINT64_MAX - 20, 0.7);
  th_expect_no_leaks();
}

/* The backward of dropout replays the same mask: gradient = mask * scale. */
Test(fast_paths, dropout_backward_replays_the_mask) {
  const int64_t n = 4099;
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 1, &n, 0.5, 2, 3);
  tfw_tensor_set_requires_grad(x, true);
  tfw_manual_seed(17);
  tfw_tensor *y = tfw_dropout(x, 0.4, true);
  tfw_tensor *l = tfw_sum(y, 0, NULL, false);
  cr_assert(l && tfw_backward(l, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gx = tfw_tensor_grad(x);
  double *yv = th_values(y), *gv = th_values(gx);
  const float scale = (float)(1.0 / 0.6);
  for (int64_t i = 0; i < n; i++)
    cr_assert(gv[i] == (yv[i] != 0 ? (double)scale : 0.0), "element %lld", (long long)i);
  free(yv), free(gv);
  tfw_release(gx), tfw_release(l), tfw_release(y), tfw_release(x);
  th_expect_no_leaks();
}
