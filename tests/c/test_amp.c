/* Autocast (include/tenflower/amp.h) against PyTorch's CPU autocast (torch.autocast('cpu',
 * bfloat16), run at test time): a two-layer MLP with cross-entropy gives the same dtypes,
 * loss and float32 gradients within bfloat16 tolerance. Plus the policy table (lower
 * precision / float32 / untouched), float16 mode, backward inside a region, composite losses,
 * checkpoint recomputation under autocast, and errors. */
#include <string.h>

#include "harness.h"

static tfw_tensor *linear(const tfw_tensor *x, const tfw_tensor *w, const tfw_tensor *b) {
  tfw_tensor *wt = tfw_transpose(w, 0, 1);
  tfw_tensor *y = tfw_addmm(b, x, wt, 1.0, 1.0);
  tfw_release(wt);
  return y;
}

static tfw_tensor *mlp_loss(tfw_tensor *const *p, const tfw_tensor *x, const tfw_tensor *t) {
  tfw_tensor *h0 = linear(x, p[0], p[1]);
  tfw_tensor *h = tfw_relu(h0);
  tfw_tensor *lg = linear(h, p[2], p[3]);
  tfw_tensor *loss = tfw_cross_entropy(lg, t, NULL, "mean", -100, 0.0);
  tfw_release(h0), tfw_release(h), tfw_release(lg);
  return loss;
}

Test(amp, mlp_matches_torch_autocast_bf16) {
  th_require_torch();
  int64_t xs[2] = {8, 16}, w1s[2] = {32, 16}, b1s[1] = {32}, w2s[2] = {10, 32}, b2s[1] = {10};
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, xs, -1, 1, 1);
  tfw_tensor *p[4] = {th_random(TFW_DTYPE_F32, 2, w1s, -0.3, 0.3, 2),
                      th_random(TFW_DTYPE_F32, 1, b1s, -0.1, 0.1, 3),
                      th_random(TFW_DTYPE_F32, 2, w2s, -0.3, 0.3, 4),
                      th_random(TFW_DTYPE_F32, 1, b2s, -0.1, 0.1, 5)};
  int64_t ts[1] = {8};
  tfw_tensor *t = th_random(TFW_DTYPE_I64, 1, ts, 0, 10, 6);
  for (int i = 0; i < 4; i++) tfw_tensor_set_requires_grad(p[i], true);

  tfw_autocast_state prev;
  cr_assert_eq(tfw_autocast_set(true, TFW_DTYPE_BF16, &prev), TFW_OK);
  tfw_tensor *h = linear(x, p[0], p[1]);
  cr_assert_eq(tfw_tensor_dtype(h), TFW_DTYPE_BF16, "linear under autocast runs in bfloat16");
  tfw_release(h);
  tfw_tensor *loss = mlp_loss(p, x, t);
  tfw_autocast_restore(prev);
  cr_assert(loss, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_dtype(loss), TFW_DTYPE_F32, "the loss is computed in float32");
  tfw_tensor *g[4];
  cr_assert_eq(tfw_grad(1, &loss, 4, p, NULL, false, false, false, g), TFW_OK, "%s", tfw_last_error());
  for (int i = 0; i < 4; i++) cr_assert_eq(tfw_tensor_dtype(g[i]), TFW_DTYPE_F32);

  const char *code =
      "P = [x[i].detach().float().requires_grad_() for i in range(1, 5)]\n"
      "with torch.autocast('cpu', dtype=torch.bfloat16):\n"
      "    h = F.relu(F.linear(x[0].detach().float(), P[0], P[1]))\n"
      "    lg = F.linear(h, P[2], P[3])\n"
      "    loss = F.cross_entropy(lg, x[5].long())\n"
      "assert lg.dtype == torch.bfloat16 and loss.dtype == torch.float32\n"
      "gs = torch.autograd.grad(loss, P)\n"
      "out = [loss.detach().double()] + [q.double() for q in gs]\n";
  tfw_tensor *in[6] = {x, p[0], p[1], p[2], p[3], t}, *ref[5];
  th_torch_run(code, 6, in, 5, ref);
  double *r = th_values(ref[0]);
  th_expect_close(loss, TFW_DTYPE_F32, 0, NULL, r, 2e-2, 1e-3, "loss");
  free(r);
  for (int i = 0; i < 4; i++) {
    r = th_values(ref[i + 1]);
    th_expect_close(g[i], TFW_DTYPE_F32, tfw_tensor_ndim(p[i]), tfw_tensor_shape(p[i]), r, 5e-2,
                    2e-3, "gradient");
    free(r);
    tfw_release(ref[i + 1]), tfw_release(g[i]);
  }
  tfw_release(ref[0]), tfw_release(loss), tfw_release(x), tfw_release(t);
  for (int i = 0; i < 4; i++) tfw_release(p[i]);
  th_expect_no_leaks();
}

Test(amp, policy_table) {
  int64_t s[2] = {4, 4};
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, s, -1, 1, 1);
  tfw_tensor *d = th_random(TFW_DTYPE_F64, 2, s, -1, 1, 2);
  tfw_tensor *hb = tfw_to_dtype(a, TFW_DTYPE_BF16);
  tfw_autocast_state prev;
  cr_assert_eq(tfw_autocast_set(true, TFW_DTYPE_F16, &prev), TFW_OK);
  cr_assert(tfw_autocast_get().enabled);
  tfw_tensor *m = tfw_matmul(a, a);
  cr_assert_eq(tfw_tensor_dtype(m), TFW_DTYPE_F16, "matmul of f32 in float16 mode");
  tfw_tensor *md = tfw_matmul(d, d);
  cr_assert_eq(tfw_tensor_dtype(md), TFW_DTYPE_F64, "float64 inputs are left alone");
  tfw_tensor *sm = tfw_softmax(hb, 1);
  cr_assert_eq(tfw_tensor_dtype(sm), TFW_DTYPE_F32, "softmax computes in float32");
  tfw_tensor *su = tfw_sum(m, 0, NULL, false);
  cr_assert_eq(tfw_tensor_dtype(su), TFW_DTYPE_F32, "reductions compute in float32");
  tfw_tensor *ex = tfw_exp(hb);
  cr_assert_eq(tfw_tensor_dtype(ex), TFW_DTYPE_BF16, "other ops keep their input dtype");
  tfw_tensor *ms = tfw_mse_loss(hb, hb, "mean");
  cr_assert_eq(tfw_tensor_dtype(ms), TFW_DTYPE_F32, "composite losses compute in float32");
  tfw_autocast_restore(prev);
  cr_assert(!tfw_autocast_get().enabled);
  tfw_tensor *m2 = tfw_matmul(a, a);
  cr_assert_eq(tfw_tensor_dtype(m2), TFW_DTYPE_F32, "off again after restore");
  tfw_tensor *all[] = {a, d, hb, m, md, sm, su, ex, ms, m2};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tfw_release(all[i]);
  th_expect_error(tfw_autocast_set(true, TFW_DTYPE_I32, NULL), TFW_EVALUE, "bfloat16 or float16",
                  "autocast int32");
  cr_assert(!tfw_autocast_get().enabled, "a failed set leaves the state alone");
  th_expect_no_leaks();
}

/* backward started inside a region runs with autocast off: gradients equal those of a
 * backward started outside, bit for bit */
Test(amp, backward_inside_region) {
  int64_t s[2] = {6, 5};
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, s, -1, 1, 1);
  tfw_tensor *w = th_random(TFW_DTYPE_F32, 2, (int64_t[]){5, 3}, -1, 1, 2);
  tfw_tensor_set_requires_grad(w, true);
  tfw_tensor *g[2];
  for (int k = 0; k < 2; k++) {
    tfw_autocast_state prev;
    tfw_autocast_set(true, TFW_DTYPE_BF16, &prev);
    tfw_tensor *y = tfw_matmul(a, w);
    tfw_tensor *l = tfw_sum(y, 0, NULL, false);
    if (k == 0) tfw_autocast_restore(prev);
    cr_assert_eq(tfw_grad(1, &l, 1, &w, NULL, false, false, false, &g[k]), TFW_OK, "%s",
                 tfw_last_error());
    if (k == 1) tfw_autocast_restore(prev);
    tfw_release(y), tfw_release(l);
  }
  bool eq = false;
  cr_assert_eq(tfw_equal(g[0], g[1], &eq), TFW_OK);
  cr_assert(eq, "backward inside the region gives the same gradient");
  cr_assert_eq(tfw_tensor_dtype(g[0]), TFW_DTYPE_F32);
  tfw_release(g[0]), tfw_release(g[1]), tfw_release(a), tfw_release(w);
  th_expect_no_leaks();
}

static tfw_status block(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  (void)ctx, (void)n_in, (void)n_out;
  tfw_tensor *y = tfw_matmul(in[0], in[1]);
  out[0] = y ? tfw_tanh(y) : NULL;
  tfw_release(y);
  return out[0] ? TFW_OK : tfw_last_status();
}

/* a checkpointed block recomputes under the policy of its forward */
Test(amp, checkpoint_recomputes_under_autocast) {
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, (int64_t[]){6, 5}, -1, 1, 1);
  tfw_tensor *w = th_random(TFW_DTYPE_F32, 2, (int64_t[]){5, 3}, -1, 1, 2);
  tfw_tensor_set_requires_grad(w, true);
  tfw_tensor *g[2];
  for (int k = 0; k < 2; k++) {
    tfw_autocast_state prev;
    tfw_autocast_set(true, TFW_DTYPE_BF16, &prev);
    tfw_tensor *in[2] = {a, w}, *y;
    cr_assert_eq(k ? tfw_checkpoint(block, NULL, 2, in, 1, &y) : block(NULL, 2, in, 1, &y), TFW_OK,
                 "%s", tfw_last_error());
    cr_assert_eq(tfw_tensor_dtype(y), TFW_DTYPE_BF16);
    tfw_tensor *l = tfw_sum(y, 0, NULL, false);
    tfw_autocast_restore(prev);
    cr_assert_eq(tfw_grad(1, &l, 1, &w, NULL, false, false, false, &g[k]), TFW_OK, "%s",
                 tfw_last_error());
    tfw_release(y), tfw_release(l);
  }
  bool eq = false;
  cr_assert_eq(tfw_equal(g[0], g[1], &eq), TFW_OK);
  cr_assert(eq, "checkpointed gradients equal the plain run's");
  tfw_release(g[0]), tfw_release(g[1]), tfw_release(a), tfw_release(w);
  th_expect_no_leaks();
}
