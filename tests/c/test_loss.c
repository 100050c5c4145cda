/* Losses against PyTorch (torch.nn.functional, run at test time): forward and gradients in
 * float64 for every loss and option (weights, ignore_index, label smoothing, probability
 * targets, reductions, higher-dim cross-entropy), f32 cross-entropy, and error messages.
 * Gradchecks, double backward and JVP of the registered ops come from test_autograd. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* Runs ours (loss of inputs in[0..n_in), differentiable ones marked by diff[]) and torch's
 * `expr` (a function of x[...]), comparing loss and gradients. */
static void compare(const char *what, tfw_tensor *loss, int n_in, tfw_tensor **in, const bool *diff,
                    const char *expr) {
  cr_assert(loss, "%s: %s", what, tfw_last_error());
  tfw_tensor *leaves[6], *grads[6];
  int nl = 0;
  for (int i = 0; i < n_in; i++)
    if (diff[i]) leaves[nl++] = in[i];
  tfw_tensor *v = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(loss), tfw_tensor_shape(loss), 0.5, 1.5, 77);
  cr_assert(tfw_grad(1, &loss, nl, leaves, &v, false, false, true, grads) == TFW_OK, "%s: %s", what,
            tfw_last_error());
  char code[1200];
  int o = snprintf(code, sizeof code, "y = %s\nv = torch.tensor(%s)\nleaves = [", expr, "0.0");
  for (int i = 0; i < n_in; i++)
    if (diff[i]) o += snprintf(code + o, sizeof code - (size_t)o, "x[%d],", i);
  snprintf(code + o, sizeof code - (size_t)o,
           "]\ngs = torch.autograd.grad(y, leaves, x[%d].reshape(y.shape))\nout = [y] + list(gs)\n", n_in);
  tfw_tensor *all[8], *ref[8];
  for (int i = 0; i < n_in; i++) all[i] = in[i];
  all[n_in] = v;
  th_torch_run(code, n_in + 1, all, nl + 1, ref);
  double *r = th_values(ref[0]);
  th_expect_close(loss, TFW_DTYPE_F64, tfw_tensor_ndim(loss), tfw_tensor_shape(loss), r, 1e-9, 1e-11, what);
  free(r);
  for (int l = 0; l < nl; l++) {
    r = th_values(ref[l + 1]);
    cr_assert(grads[l], "%s: no gradient for leaf %d", what, l);
    th_expect_close(grads[l], TFW_DTYPE_F64, tfw_tensor_ndim(leaves[l]), tfw_tensor_shape(leaves[l]), r,
                    1e-8, 1e-11, what);
    free(r);
    tfw_release(grads[l]), tfw_release(ref[l + 1]);
  }
  tfw_release(ref[0]), tfw_release(v), tfw_release(loss);
}

static tfw_tensor *leaf(int nd, const int64_t *s, double lo, double hi, uint64_t seed, bool strided) {
  tfw_tensor *t = strided ? th_random_strided(TFW_DTYPE_F64, nd, s, lo, hi, seed)
                          : th_random(TFW_DTYPE_F64, nd, s, lo, hi, seed);
  tfw_tensor_set_requires_grad(t, true);
  return t;
}

static const char *reds[3] = {"none", "mean", "sum"};

Test(loss, cross_entropy_matches_torch) {
  th_require_torch();
  struct { int nd; int64_t xs[4]; bool probs, weight; int64_t ignore; double eps; } cs[] = {
      {2, {6, 5}, false, false, -100, 0.0}, {2, {6, 5}, false, true, 2, 0.0},
      {2, {6, 5}, false, false, 1, 0.1},    {2, {6, 5}, false, true, 3, 0.25},
      {3, {3, 4, 5}, false, true, 0, 0.1},  {4, {2, 3, 2, 3}, false, false, -100, 0.0},
      {2, {6, 5}, true, false, -100, 0.0},  {2, {6, 5}, true, true, -100, 0.2},
      {3, {2, 4, 3}, true, true, -100, 0.0}, {1, {7}, false, true, -100, 0.1},
  };
  for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
    for (int r = 0; r < 3; r++) {
      int nd = cs[k].nd;
      int64_t C = cs[k].xs[nd == 1 ? 0 : 1];
      tfw_tensor *x = leaf(nd, cs[k].xs, -4, 4, 3 + k, k % 2);
      tfw_tensor *t;
      if (cs[k].probs) {
        t = leaf(nd, cs[k].xs, 0, 1, 30 + k, false);
      } else {
        int64_t ts[4];
        int tnd = 0;
        for (int d = 0; d < nd; d++) if (d != (nd == 1 ? 0 : 1)) ts[tnd++] = cs[k].xs[d];
        t = th_random(TFW_DTYPE_I64, tnd, ts, 0, (double)C, 30 + k);
      }
      tfw_tensor *w = cs[k].weight ? th_random(TFW_DTYPE_F64, 1, &C, 0.2, 2, 60 + k) : NULL;
      char expr[300], what[64];
      snprintf(expr, sizeof expr,
               "F.cross_entropy(x[0], x[1], weight=%s, reduction='%s', ignore_index=%lld, "
               "label_smoothing=%g)", w ? "x[2].detach()" : "None", reds[r],
               (long long)cs[k].ignore, cs[k].eps);
      snprintf(what, sizeof what, "cross_entropy case %zu %s", k, reds[r]);
      tfw_tensor *l = tfw_cross_entropy(x, t, w, reds[r], cs[k].ignore, cs[k].eps);
      tfw_tensor *in[3] = {x, t, w};
      bool diff[3] = {true, cs[k].probs, false};
      compare(what, l, w ? 3 : 2, in, diff, expr);
      /* f32 forward */
      tfw_tensor *x32 = tfw_to_dtype(x, TFW_DTYPE_F32), *t32 = cs[k].probs ? tfw_to_dtype(t, TFW_DTYPE_F32) : tfw_retain(t);
      tfw_tensor *l32 = tfw_cross_entropy(x32, t32, w, reds[r], cs[k].ignore, cs[k].eps);
      tfw_tensor *l64 = tfw_cross_entropy(x32, t32, w, reds[r], cs[k].ignore, cs[k].eps);
      cr_assert(l32 && l64);
      tfw_tensor *xd = tfw_to_dtype(x32, TFW_DTYPE_F64), *td = cs[k].probs ? tfw_to_dtype(t32, TFW_DTYPE_F64) : tfw_retain(t);
      tfw_tensor *ld = tfw_cross_entropy(xd, td, w, reds[r], cs[k].ignore, cs[k].eps);
      double *rv = th_values(ld);
      th_expect_close(l32, TFW_DTYPE_F32, tfw_tensor_ndim(ld), tfw_tensor_shape(ld), rv, 1e-5, 1e-6, what);
      free(rv);
      tfw_release(x32), tfw_release(t32), tfw_release(l32), tfw_release(l64), tfw_release(xd);
      tfw_release(td), tfw_release(ld), tfw_release(x), tfw_release(t), tfw_release(w);
    }
  th_expect_no_leaks();
}

Test(loss, nll_and_pointwise_losses_match_torch) {
  th_require_torch();
  const int64_t s2[2] = {5, 4}, n5[1] = {5};
  for (int r = 0; r < 3; r++) {
    char expr[300], what[64];
    /* nll_loss with weights and ignore_index */
    {
      tfw_tensor *x = leaf(2, s2, -3, 0, 1, r == 1);
      tfw_tensor *t = th_random(TFW_DTYPE_I64, 1, n5, 0, 4, 2);
      int64_t C = 4;
      tfw_tensor *w = th_random(TFW_DTYPE_F64, 1, &C, 0.5, 2, 3);
      snprintf(expr, sizeof expr, "F.nll_loss(x[0], x[1], weight=x[2].detach(), reduction='%s', ignore_index=1)", reds[r]);
      snprintf(what, sizeof what, "nll_loss %s", reds[r]);
      tfw_tensor *in[3] = {x, t, w};
      compare(what, tfw_nll_loss(x, t, w, reds[r], 1), 3, in, (bool[]){true, false, false}, expr);
      tfw_release(x), tfw_release(t), tfw_release(w);
    }
    struct { const char *name, *torch; int kind; double lo, hi, tlo, thi; } pw[] = {
        {"mse", "F.mse_loss(x[0], x[1], reduction='%s')", 0, -2, 2, -2, 2},
        {"l1", "F.l1_loss(x[0], x[1], reduction='%s')", 1, -2, 2, -2, 2},
        {"smooth_l1", "F.smooth_l1_loss(x[0], x[1], reduction='%s', beta=0.7)", 2, -2, 2, -2, 2},
        {"huber", "F.huber_loss(x[0], x[1], reduction='%s', delta=0.8)", 3, -2, 2, -2, 2},
        {"bce", "F.binary_cross_entropy(x[0], x[1], weight=x[2].detach(), reduction='%s')", 4, 0.05, 0.95, 0, 1},
        {"bce_logits", "F.binary_cross_entropy_with_logits(x[0], x[1], weight=x[2].detach(), pos_weight=x[3].detach(), reduction='%s')", 5, -30, 30, 0, 1},
        {"kl_div", "F.kl_div(x[0], x[1], reduction='%s')", 6, -3, 0, 0.05, 1},
        {"kl_div_log", "F.kl_div(x[0], x[1], reduction='%s', log_target=True)", 7, -3, 0, -3, 0},
        {"kl_div_bm", "F.kl_div(x[0], x[1], reduction='batchmean')", 8, -3, 0, 0.05, 1},
    };
    for (size_t k = 0; k < sizeof pw / sizeof pw[0]; k++) {
      tfw_tensor *x = leaf(2, s2, pw[k].lo, pw[k].hi, 10 + k, k % 2);
      tfw_tensor *t = leaf(2, s2, pw[k].tlo, pw[k].thi, 20 + k, false);
      tfw_tensor *w = leaf(2, s2, 0.5, 2, 30 + k, false);
      int64_t C = 4;
      tfw_tensor *pwt = leaf(1, &C, 0.5, 3, 40 + k, false);
      tfw_tensor *l = NULL;
      const char *rd = reds[r];
      switch (pw[k].kind) {
      case 0: l = tfw_mse_loss(x, t, rd); break;
      case 1: l = tfw_l1_loss(x, t, rd); break;
      case 2: l = tfw_smooth_l1_loss(x, t, rd, 0.7); break;
      case 3: l = tfw_huber_loss(x, t, rd, 0.8); break;
      case 4: l = tfw_binary_cross_entropy(x, t, w, rd); break;
      case 5: l = tfw_binary_cross_entropy_with_logits(x, t, w, pwt, rd); break;
      case 6: l = tfw_kl_div(x, t, rd, false); break;
      case 7: l = tfw_kl_div(x, t, rd, true); break;
      case 8: l = tfw_kl_div(x, t, "batchmean", false); break;
      }
      snprintf(expr, sizeof expr, pw[k].torch, reds[r]);
      snprintf(what, sizeof what, "%s %s", pw[k].name, reds[r]);
      tfw_tensor *in[4] = {x, t, w, pwt};
      bool diff[4] = {true, true, false, false}; /* torch: weights are not differentiable */
      compare(what, l, pw[k].kind == 5 ? 4 : pw[k].kind == 4 ? 3 : 2, in, diff, expr);
      tfw_release(x), tfw_release(t), tfw_release(w), tfw_release(pwt);
    }
  }
  th_expect_no_leaks();
}

Test(loss, embedding_losses_match_torch) {
  th_require_torch();
  const int64_t s2[2] = {6, 5}, n6[1] = {6};
  for (int r = 0; r < 3; r++) {
    char expr[300], what[64];
    tfw_tensor *a = leaf(2, s2, -2, 2, 1, false), *b = leaf(2, s2, -2, 2, 2, true);
    tfw_tensor *c = leaf(2, s2, -2, 2, 3, false);
    tfw_tensor *y = tfw_from_data(TFW_DTYPE_F64, 1, n6, (double[]){1, -1, 1, -1, -1, 1});
    tfw_tensor *yi = tfw_from_data(TFW_DTYPE_F64, 1, n6, (double[]){1, -1, -1, 1, 1, -1});
    tfw_tensor *x1 = leaf(1, n6, -2, 2, 4, false), *x2 = leaf(1, n6, -2, 2, 5, false);
    tfw_tensor_set_requires_grad(yi, true);
    tfw_tensor *in[3] = {a, b, y};
    snprintf(expr, sizeof expr, "F.cosine_embedding_loss(x[0], x[1], x[2], margin=0.1, reduction='%s')", reds[r]);
    snprintf(what, sizeof what, "cosine_embedding %s", reds[r]);
    compare(what, tfw_cosine_embedding_loss(a, b, y, 0.1, reds[r]), 3, in, (bool[]){true, true, false}, expr);
    tfw_tensor *in2[3] = {x1, x2, yi};
    snprintf(expr, sizeof expr, "F.margin_ranking_loss(x[0], x[1], x[2], margin=0.3, reduction='%s')", reds[r]);
    snprintf(what, sizeof what, "margin_ranking %s", reds[r]);
    compare(what, tfw_margin_ranking_loss(x1, x2, yi, 0.3, reds[r]), 3, in2, (bool[]){true, true, true}, expr);
    for (int swap = 0; swap < 2; swap++) {
      tfw_tensor *in3[3] = {a, b, c};
      snprintf(expr, sizeof expr, "F.triplet_margin_loss(x[0], x[1], x[2], margin=1.5, p=%d, eps=1e-6, swap=%s, reduction='%s')",
               swap ? 3 : 2, swap ? "True" : "False", reds[r]);
      snprintf(what, sizeof what, "triplet %s swap %d", reds[r], swap);
      compare(what, tfw_triplet_margin_loss(a, b, c, 1.5, swap ? 3 : 2, 1e-6, swap, reds[r]), 3, in3,
              (bool[]){true, true, true}, expr);
    }
    tfw_release(a), tfw_release(b), tfw_release(c), tfw_release(y), tfw_release(yi);
    tfw_release(x1), tfw_release(x2);
  }
  th_expect_no_leaks();
}

Test(loss, errors) {
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){4, 5}, -1, 1, 1);
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){4}, (int64_t[]){0, 1, 2, 7});
  tfw_tensor *l = tfw_cross_entropy(x, t, NULL, "mean", -100, 0);
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_EINDEX,
                  "cross_entropy: target 7 out of range for 5 classes at index 3", "range");
  tfw_tensor *t3 = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){0, 1, 2});
  l = tfw_cross_entropy(x, t3, NULL, "mean", -100, 0);
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "cross_entropy: target [3]", "shape");
  l = tfw_cross_entropy(x, t3, NULL, "avg", -100, 0);
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_EVALUE, "reduction must be 'none', 'mean' or 'sum', got 'avg'", "reduction");
  l = tfw_cross_entropy(x, t3, NULL, "mean", -100, 1.5);
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_EVALUE, "label_smoothing must be in [0, 1], got 1.5", "smoothing");
  l = tfw_nll_loss(x, t, NULL, "mean", -100);
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_EINDEX, "nll_loss: target 7 out of range", "nll range");
  tfw_tensor *y = th_random(TFW_DTYPE_F32, 2, (int64_t[]){4, 4}, -1, 1, 2);
  l = tfw_mse_loss(x, y, "mean");
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "mse_loss: target [4, 4]", "mse shape");
  l = tfw_mse_loss(x, x, "bogus");
  th_expect_error(l ? TFW_OK : tfw_last_status(), TFW_EVALUE, "mse_loss: reduction", "mse reduction");
  l = tfw_kl_div(x, x, "batchmean", false);
  cr_assert(l, "%s", tfw_last_error());
  tfw_release(l);
  tfw_release(x), tfw_release(t), tfw_release(t3), tfw_release(y);
  th_expect_no_leaks();
}
