/* Norm family against PyTorch (run at test time on the same inputs): layer_norm, rms_norm,
 * group_norm, batch_norm (train/eval, running stats), embedding (padding_idx, max_norm),
 * dropout (statistics, replay, backward mask); forward values and gradients w.r.t. input,
 * weight and bias; errors; thread-count determinism. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* a matches the float64 reference ref (same shape) within atol + rtol |ref| */
static void expect_match(const tfw_tensor *a, const tfw_tensor *ref, double rtol, double atol,
                         const char *what) {
  cr_assert(a && ref, "%s: missing tensor (%s)", what, tfw_last_error());
  double *r = th_values(ref);
  th_expect_close(a, tfw_tensor_dtype(a), tfw_tensor_ndim(a), tfw_tensor_shape(a), r, rtol, atol, what);
  free(r);
}

static tfw_tensor *leaf(tfw_tensor *t) {
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

/* Gradients of <y, g> w.r.t. the n leaves. */
static void grads_of(tfw_tensor *y, tfw_tensor *g, int n, tfw_tensor **leaves, tfw_tensor **out) {
  cr_assert(y, "forward failed: %s", tfw_last_error());
  cr_assert_eq(tfw_grad(1, &y, n, leaves, &g, false, false, false, out), TFW_OK, "%s",
               tfw_last_error());
}

static void release_n(tfw_tensor **t, int n) {
  for (int i = 0; i < n; i++) tfw_release(t[i]), t[i] = NULL;
}

static void check_layer_norm(int nd, const int64_t *shape, int k, bool w_on, bool b_on,
                             bool strided, tfw_dtype dt, double tol, uint64_t seed) {
  th_require_torch();
  const int64_t *ns = shape + nd - k;
  tfw_tensor *x = leaf(strided ? th_random_strided(dt, nd, shape, -3, 5, seed)
                               : th_random(dt, nd, shape, -3, 5, seed));
  tfw_tensor *w = w_on ? leaf(th_random(dt, k, ns, 0.5, 1.5, seed + 1)) : NULL;
  tfw_tensor *b = b_on ? leaf(th_random(dt, k, ns, -1, 1, seed + 2)) : NULL;
  tfw_tensor *g = th_random(dt, nd, shape, -1, 1, seed + 3);
  tfw_tensor *y = tfw_layer_norm(x, k, ns, w, b, 1e-5);
  tfw_tensor *leaves[3] = {x, w, b}, *gr[3] = {NULL};
  int nl = 1 + (w != NULL);
  if (b) leaves[nl++] = b;
  grads_of(y, g, nl, leaves, gr);
  char code[512];
  snprintf(code, sizeof code,
           "x0 = x[0]; g = x[-1]; w = x[1] if %d else None; b = x[%d] if %d else None\n"
           "y = F.layer_norm(x0, list(x0.shape[-%d:]), w, b, 1e-5)\n"
           "ins = [t for t in (x0, w, b) if t is not None]\n"
           "out = [y] + list(torch.autograd.grad(y, ins, g))\n",
           w_on, w_on ? 2 : 1, b_on, k);
  tfw_tensor *in[4] = {x}, *ref[4];
  int ni = 1;
  if (w) in[ni++] = w;
  if (b) in[ni++] = b;
  in[ni++] = g;
  th_torch_run(code, ni, in, nl + 1, ref);
  expect_match(y, ref[0], tol, tol, "layer_norm forward");
  for (int i = 0; i < nl; i++) expect_match(gr[i], ref[i + 1], tol, tol, "layer_norm gradient");
  release_n(gr, 3), release_n(ref, nl + 1);
  tfw_release(x), tfw_release(w), tfw_release(b), tfw_release(g), tfw_release(y);
  th_expect_no_leaks();
}

Test(norm, layer_norm_matches_torch) {
  check_layer_norm(3, (int64_t[]){4, 5, 6}, 2, true, true, false, TFW_DTYPE_F32, 2e-5, 1);
  check_layer_norm(2, (int64_t[]){7, 9}, 1, false, true, true, TFW_DTYPE_F32, 2e-5, 2);
  check_layer_norm(3, (int64_t[]){2, 3, 8}, 1, true, false, false, TFW_DTYPE_F64, 1e-10, 3);
  /* wide rows (the 256-wide blocks) and several backward row blocks */
  check_layer_norm(2, (int64_t[]){96, 1000}, 1, true, true, false, TFW_DTYPE_F32, 5e-5, 4);
  check_layer_norm(2, (int64_t[]){6, 40}, 1, true, true, false, TFW_DTYPE_BF16, 5e-2, 5);
}

Test(norm, layer_norm_large_mean_is_accurate) {
  /* x = 1e4 + small noise: a one-pass E[x^2] - E[x]^2 would cancel to garbage in f32 */
  tfw_tensor *n = th_random(TFW_DTYPE_F32, 2, (int64_t[]){3, 512}, -1, 1, 9);
  tfw_tensor *x = tfw_add_scalar(n, 1e4);
  tfw_tensor *y = tfw_layer_norm(x, 1, (int64_t[]){512}, NULL, NULL, 0);
  th_require_torch();
  tfw_tensor *ref[1];
  th_torch_run("out = [F.layer_norm(x[0], [512], eps=0.0)]\n", 1, &x, 1, ref);
  expect_match(y, ref[0], 1e-3, 1e-3, "large mean");
  tfw_release(n), tfw_release(x), tfw_release(y), tfw_release(ref[0]);
  th_expect_no_leaks();
}

Test(norm, rms_norm_matches_torch) {
  th_require_torch();
  const int64_t s[3] = {3, 4, 300};
  tfw_tensor *x = leaf(th_random_strided(TFW_DTYPE_F32, 3, s, -2, 2, 11));
  tfw_tensor *w = leaf(th_random(TFW_DTYPE_F32, 1, s + 2, 0.5, 1.5, 12));
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 3, s, -1, 1, 13);
  tfw_tensor *y = tfw_rms_norm(x, 1, s + 2, w, 1e-6);
  tfw_tensor *leaves[2] = {x, w}, *gr[2], *ref[3];
  grads_of(y, g, 2, leaves, gr);
  tfw_tensor *in[3] = {x, w, g};
  th_torch_run("y = x[0] * torch.rsqrt(x[0].pow(2).mean(-1, keepdim=True) + 1e-6) * x[1]\n"
               "out = [y] + list(torch.autograd.grad(y, x[:2], x[2]))\n", 3, in, 3, ref);
  expect_match(y, ref[0], 2e-5, 2e-5, "rms_norm forward");
  expect_match(gr[0], ref[1], 2e-5, 2e-5, "rms_norm grad x");
  expect_match(gr[1], ref[2], 2e-5, 2e-5, "rms_norm grad w");
  release_n(gr, 2), release_n(ref, 3);
  tfw_release(x), tfw_release(w), tfw_release(g), tfw_release(y);
  th_expect_no_leaks();
}

Test(norm, group_norm_matches_torch) {
  th_require_torch();
  const int64_t s[4] = {2, 6, 3, 5};
  tfw_tensor *x = leaf(th_random(TFW_DTYPE_F32, 4, s, -2, 3, 21));
  tfw_tensor *w = leaf(th_random(TFW_DTYPE_F32, 1, s + 1, 0.5, 1.5, 22));
  tfw_tensor *b = leaf(th_random(TFW_DTYPE_F32, 1, s + 1, -1, 1, 23));
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 4, s, -1, 1, 24);
  tfw_tensor *y = tfw_group_norm(x, 3, w, b, 1e-5);
  tfw_tensor *leaves[3] = {x, w, b}, *gr[3], *ref[4];
  grads_of(y, g, 3, leaves, gr);
  tfw_tensor *in[4] = {x, w, b, g};
  th_torch_run("y = F.group_norm(x[0], 3, x[1], x[2], 1e-5)\n"
               "out = [y] + list(torch.autograd.grad(y, x[:3], x[3]))\n", 4, in, 4, ref);
  expect_match(y, ref[0], 2e-5, 2e-5, "group_norm forward");
  for (int i = 0; i < 3; i++) expect_match(gr[i], ref[i + 1], 2e-5, 2e-5, "group_norm gradient");
  release_n(gr, 3), release_n(ref, 4);
  tfw_release(x), tfw_release(w), tfw_release(b), tfw_release(g), tfw_release(y);
  th_expect_no_leaks();
}

Test(norm, batch_norm_train_and_eval_match_torch) {
  th_require_torch();
  const int64_t s[3] = {4, 3, 5}, c[1] = {3};
  tfw_tensor *x = leaf(th_random(TFW_DTYPE_F32, 3, s, -2, 3, 31));
  tfw_tensor *w = leaf(th_random(TFW_DTYPE_F32, 1, c, 0.5, 1.5, 32));
  tfw_tensor *b = leaf(th_random(TFW_DTYPE_F32, 1, c, -1, 1, 33));
  tfw_tensor *rm = th_random(TFW_DTYPE_F32, 1, c, -1, 1, 34);
  tfw_tensor *rv = th_random(TFW_DTYPE_F32, 1, c, 0.5, 2, 35);
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 3, s, -1, 1, 36);
  tfw_tensor *in[6] = {x, w, b, rm, rv, g}, *ref[8];
  /* the reference runs before our call changes rm/rv in place */
  th_torch_run("rm = x[3].detach().clone(); rv = x[4].detach().clone()\n"
               "y = F.batch_norm(x[0], rm, rv, x[1], x[2], True, 0.1, 1e-5)\n"
               "gs = torch.autograd.grad(y, x[:3], x[5])\n"
               "ye = F.batch_norm(x[0], rm, rv, x[1], x[2], False, 0.1, 1e-5)\n"
               "ge = torch.autograd.grad(ye, x[0], x[5])\n"
               "out = [y] + list(gs) + [rm, rv, ye, ge[0]]\n", 6, in, 8, ref);
  tfw_tensor *y = tfw_batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
  tfw_tensor *leaves[3] = {x, w, b}, *gr[3], *ge[1];
  grads_of(y, g, 3, leaves, gr);
  expect_match(y, ref[0], 2e-5, 2e-5, "batch_norm train forward");
  for (int i = 0; i < 3; i++) expect_match(gr[i], ref[i + 1], 2e-5, 2e-5, "batch_norm gradient");
  expect_match(rm, ref[4], 1e-6, 1e-6, "running_mean update");
  expect_match(rv, ref[5], 1e-6, 1e-6, "running_var update (unbiased)");
  tfw_tensor *ye = tfw_batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
  grads_of(ye, g, 1, leaves, ge);
  expect_match(ye, ref[6], 2e-5, 2e-5, "batch_norm eval forward");
  expect_match(ge[0], ref[7], 2e-5, 2e-5, "batch_norm eval gradient");
  expect_match(rm, ref[4], 1e-6, 1e-6, "eval leaves running_mean alone");
  release_n(gr, 3), release_n(ref, 8), release_n(ge, 1);
  tfw_release(x), tfw_release(w), tfw_release(b), tfw_release(rm), tfw_release(rv);
  tfw_release(g), tfw_release(y), tfw_release(ye);
  th_expect_no_leaks();
}

Test(norm, embedding_padding_and_max_norm_match_torch) {
  th_require_torch();
  tfw_tensor *w = leaf(th_random(TFW_DTYPE_F32, 2, (int64_t[]){10, 4}, -2, 2, 41));
  int64_t iv[6] = {1, 3, 3, 9, 0, 3};
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 2, (int64_t[]){2, 3}, iv);
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, -1, 1, 42);
  tfw_tensor *in[3] = {w, idx, g}, *ref[4];
  th_torch_run("w = x[0].detach().clone().requires_grad_()\n"
               "y = F.embedding(x[1], w, padding_idx=3)\n"
               "gw, = torch.autograd.grad(y, w, x[2])\n"
               "w2 = x[0].detach().clone()\n"
               "y2 = F.embedding(x[1], w2, max_norm=1.5)\n"
               "out = [y, gw, y2, w2]\n", 3, in, 4, ref);
  tfw_tensor *y = tfw_embedding(idx, w, 3, 0, 2);
  tfw_tensor *gw[1];
  grads_of(y, g, 1, &w, gw);
  expect_match(y, ref[0], 0, 0, "embedding forward");
  expect_match(gw[0], ref[1], 1e-6, 1e-6, "embedding gradient (padding row zero)");
  tfw_tensor *y2 = tfw_embedding(idx, w, TFW_EMBEDDING_NO_PADDING, 1.5, 2);
  expect_match(y2, ref[2], 1e-6, 1e-6, "embedding max_norm forward");
  expect_match(w, ref[3], 1e-6, 1e-6, "max_norm renormalises weight in place");
  release_n(gw, 1), release_n(ref, 4);
  tfw_release(w), tfw_release(idx), tfw_release(g), tfw_release(y), tfw_release(y2);
  th_expect_no_leaks();
}

Test(norm, dropout_statistics_replay_and_backward) {
  const int64_t s[2] = {200, 500};
  tfw_tensor *x = leaf(th_random(TFW_DTYPE_F32, 2, s, 1, 2, 51)); /* no zeros */
  uint64_t seed, off;
  tfw_manual_seed(7);
  tfw_rng_get_state(&seed, &off);
  tfw_tensor *y = tfw_dropout(x, 0.3, true);
  cr_assert(y, "%s", tfw_last_error());
  /* replay: same state -> same mask, and it is tfw_rand(f32) < 0.7 */
  tfw_rng_set_state(seed, off);
  tfw_tensor *u = tfw_rand(TFW_DTYPE_F32, 2, s);
  tfw_rng_set_state(seed, off);
  tfw_tensor *y2 = tfw_dropout(x, 0.3, true);
  double *yv = th_values(y), *y2v = th_values(y2), *uv = th_values(u), *xv = th_values(x);
  int64_t n = s[0] * s[1], kept = 0;
  for (int64_t i = 0; i < n; i++) {
    bool keep = uv[i] < (double)(float)0.7;
    kept += keep;
    double want = keep ? (double)(float)(xv[i] * (float)(1.0 / 0.7)) : 0.0;
    cr_assert(yv[i] == y2v[i], "replay differs at %lld", (long long)i);
    cr_assert(fabs(yv[i] - want) <= 1e-6 * fabs(want), "element %lld: %g vs %g", (long long)i,
              yv[i], want);
  }
  double frac = (double)kept / (double)n; /* 1e5 draws: sd of the fraction ~0.0015 */
  cr_assert(fabs(frac - 0.7) < 0.01, "kept fraction %g", frac);
  /* backward: the same mask and scale */
  tfw_tensor *g = tfw_ones(TFW_DTYPE_F32, 2, s), *gx[1];
  grads_of(y, g, 1, &x, gx);
  double *gv = th_values(gx[0]);
  for (int64_t i = 0; i < n; i++)
    cr_assert(fabs(gv[i] - (yv[i] != 0 ? 1.0 / 0.7 : 0.0)) < 1e-5, "grad %lld", (long long)i);
  free(yv), free(y2v), free(uv), free(xv), free(gv);
  /* eval and p = 0: the input itself; p = 1: zeros */
  tfw_tensor *e = tfw_dropout(x, 0.5, false), *z = tfw_dropout(x, 0.0, true);
  cr_assert(e == x && z == x);
  tfw_tensor *o = tfw_dropout(x, 1.0, true);
  double mx;
  tfw_tensor *am = tfw_amax(o, 0, NULL, false), *an = tfw_amin(o, 0, NULL, false);
  tfw_item(am, &mx);
  cr_assert(mx == 0);
  tfw_item(an, &mx);
  cr_assert(mx == 0);
  th_expect_error(tfw_dropout(x, 1.5, true) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "dropout: p must be in [0, 1], got 1.5", "p > 1");
  th_expect_error(tfw_dropout(x, -0.1, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "p must be in [0, 1]", "p < 0");
  release_n(gx, 1);
  tfw_release(x), tfw_release(y), tfw_release(y2), tfw_release(u), tfw_release(g);
  tfw_release(e), tfw_release(z), tfw_release(o), tfw_release(am), tfw_release(an);
  th_expect_no_leaks();
}

static tfw_status st_of(tfw_tensor *t) {
  if (t) {
    tfw_release(t);
    return TFW_OK;
  }
  return tfw_last_status();
}

Test(norm, errors) {
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 4, 6}, -1, 1, 61);
  tfw_tensor *w5 = th_random(TFW_DTYPE_F32, 1, (int64_t[]){5}, -1, 1, 62);
  th_expect_error(st_of(tfw_layer_norm(x, 1, (int64_t[]){5}, NULL, NULL, 1e-5)), TFW_ESHAPE,
                  "layer_norm: normalized_shape [5] does not match the last dims of the input of "
                  "shape [2, 4, 6]", "normalized_shape mismatch");
  th_expect_error(st_of(tfw_layer_norm(x, 1, (int64_t[]){6}, w5, NULL, 1e-5)), TFW_ESHAPE,
                  "weight has shape [5], expected normalized_shape [6]", "weight shape");
  th_expect_error(st_of(tfw_layer_norm(x, 1, (int64_t[]){6}, NULL, NULL, -1)), TFW_EVALUE, "eps",
                  "negative eps");
  th_expect_error(st_of(tfw_group_norm(x, 3, NULL, NULL, 1e-5)), TFW_EVALUE,
                  "num_groups (3) must be positive and divide the number of channels (4)", "groups");
  th_expect_error(st_of(tfw_group_norm(x, 0, NULL, NULL, 1e-5)), TFW_EVALUE, "num_groups (0)",
                  "zero groups");
  th_expect_error(st_of(tfw_batch_norm(x, NULL, NULL, w5, NULL, true, 0.1, 1e-5)), TFW_ESHAPE,
                  "batch_norm: weight has shape [5], expected [4]", "bn weight");
  tfw_tensor *one = th_random(TFW_DTYPE_F32, 2, (int64_t[]){1, 4}, -1, 1, 63);
  th_expect_error(st_of(tfw_batch_norm(one, NULL, NULL, NULL, NULL, true, 0.1, 1e-5)), TFW_EVALUE,
                  "more than 1 value per channel", "bn single value");
  tfw_tensor *emb = th_random(TFW_DTYPE_F32, 2, (int64_t[]){10, 3}, -1, 1, 64);
  tfw_tensor *bad = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){1, 12, 2});
  th_expect_error(st_of(tfw_embedding(bad, emb, TFW_EMBEDDING_NO_PADDING, 0, 2)), TFW_EINDEX,
                  "embedding: index 12 out of range for 10 embeddings", "index range");
  th_expect_error(st_of(tfw_embedding(bad, emb, TFW_EMBEDDING_NO_PADDING, 1, 2)), TFW_EINDEX,
                  "embedding: index 12 out of range for 10 embeddings", "index range, max_norm");
  th_expect_error(st_of(tfw_embedding(x, emb, TFW_EMBEDDING_NO_PADDING, 0, 2)), TFW_EDTYPE,
                  "embedding: indices must be int64 or int32", "float indices");
  th_expect_error(st_of(tfw_embedding(bad, emb, 10, 0, 2)), TFW_EVALUE, "padding_idx 10", "pad");
  th_expect_error(st_of(tfw_layer_norm(NULL, 1, (int64_t[]){6}, NULL, NULL, 1e-5)), TFW_EVALUE,
                  "layer_norm", "NULL");
  tfw_release(x), tfw_release(w5), tfw_release(one), tfw_release(emb), tfw_release(bad);
  th_expect_no_leaks();
}

Test(norm, bit_identical_for_1_and_2_threads) {
  tfw_tensor *r[2][3];
  for (int t = 1; t <= 2; t++) {
    tfw_set_num_threads(t);
    const int64_t s[2] = {300, 700};
    tfw_tensor *x = leaf(th_random(TFW_DTYPE_F32, 2, s, -1, 1, 71));
    tfw_tensor *w = leaf(th_random(TFW_DTYPE_F32, 1, s + 1, -1, 1, 72));
    tfw_tensor *g = th_random(TFW_DTYPE_F32, 2, s, -1, 1, 73);
    tfw_tensor *y = tfw_layer_norm(x, 1, s + 1, w, NULL, 1e-5);
    tfw_tensor *leaves[2] = {x, w};
    grads_of(y, g, 2, leaves, &r[t - 1][1]);
    r[t - 1][0] = y;
    tfw_release(x), tfw_release(w), tfw_release(g);
  }
  tfw_set_num_threads(0);
  for (int k = 0; k < 3; k++) {
    bool eq = false;
    cr_assert(tfw_equal(r[0][k], r[1][k], &eq) == TFW_OK && eq, "result %d differs", k);
    tfw_release(r[0][k]), tfw_release(r[1][k]);
  }
  th_expect_no_leaks();
}
