/* Activation checkpointing (tfw_checkpoint): gradients bit-identical to the plain graph for
 * a 4-layer chain with dropout (masks from tfw_rand, replayed through the saved RNG state),
 * lower peak memory during the forward, the RNG stream left as it was, retain_graph, the
 * plain call without grad, and the errors (tensors captured in ctx, double backward,
 * too many inputs). */
#include <string.h>

#include "harness.h"

#define B 128
#define D 128
#define LAYERS 4
#define KEEP 0.8

/* y = u / (1 + u^2) with u = h @ w, then dropout: y * (rand < KEEP) / KEEP. */
static tfw_tensor *layer(const tfw_tensor *h, const tfw_tensor *w) {
  tfw_tensor *u = tfw_matmul(h, w);
  tfw_tensor *u2 = tfw_mul(u, u);
  tfw_tensor *den = tfw_add_scalar(u2, 1.0);
  tfw_tensor *a = tfw_div(u, den);
  tfw_tensor *r = tfw_rand(tfw_tensor_dtype(h), 2, tfw_tensor_shape(a));
  float keep = (float)KEEP;
  tfw_tensor *p = tfw_from_data(TFW_DTYPE_F32, 0, NULL, &keep);
  tfw_tensor *m = tfw_lt(r, p);
  tfw_tensor *mf = tfw_to_dtype(m, tfw_tensor_dtype(h));
  tfw_tensor *am = tfw_mul(a, mf);
  tfw_tensor *y = tfw_mul_scalar(am, 1.0 / KEEP);
  tfw_release(u), tfw_release(u2), tfw_release(den), tfw_release(a), tfw_release(r);
  tfw_release(p), tfw_release(m), tfw_release(mf), tfw_release(am);
  cr_assert(y != NULL, "layer: %s", tfw_last_error());
  return y;
}

/* in = {x, w0, .., w3}: the chain of layers in[1..n_in). */
static tfw_status chain(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  tfw_tensor *h = tfw_retain(in[0]);
  for (int l = 1; l < n_in; l++) {
    tfw_tensor *y = layer(h, in[l]);
    tfw_release(h);
    h = y;
  }
  out[0] = h;
  if (n_out == 2) out[1] = tfw_mul(h, h); /* a second output */
  return TFW_OK;
}

typedef struct {
  tfw_tensor *x, *w[LAYERS];
} mlp;

static void mlp_init(mlp *m) {
  m->x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){B, D}, -1, 1, 1);
  cr_assert(tfw_tensor_set_requires_grad(m->x, true) == TFW_OK);
  for (int l = 0; l < LAYERS; l++) {
    m->w[l] = th_random(TFW_DTYPE_F32, 2, (int64_t[]){D, D}, -0.2, 0.2, 10 + (uint64_t)l);
    cr_assert(tfw_tensor_set_requires_grad(m->w[l], true) == TFW_OK);
  }
}

static void mlp_free(mlp *m) {
  tfw_release(m->x);
  for (int l = 0; l < LAYERS; l++) tfw_release(m->w[l]);
}

/* mode 0: plain; 1: one checkpoint over the chain; 2: one checkpoint per two layers. */
static tfw_tensor *forward(mlp *m, int mode, int n_out, tfw_tensor **second) {
  tfw_tensor *in[1 + LAYERS] = {m->x, m->w[0], m->w[1], m->w[2], m->w[3]};
  tfw_tensor *out[2] = {NULL, NULL};
  if (mode == 0) {
    cr_assert(chain(NULL, 1 + LAYERS, in, n_out, out) == TFW_OK);
  } else if (mode == 1) {
    cr_assert_eq(tfw_checkpoint(chain, NULL, 1 + LAYERS, in, n_out, out), TFW_OK, "%s", tfw_last_error());
  } else {
    tfw_tensor *h[1];
    tfw_tensor *in1[3] = {m->x, m->w[0], m->w[1]};
    cr_assert_eq(tfw_checkpoint(chain, NULL, 3, in1, 1, h), TFW_OK, "%s", tfw_last_error());
    tfw_tensor *in2[3] = {h[0], m->w[2], m->w[3]};
    cr_assert_eq(tfw_checkpoint(chain, NULL, 3, in2, n_out, out), TFW_OK, "%s", tfw_last_error());
    tfw_release(h[0]);
  }
  if (second) *second = out[1];
  else tfw_release(out[1]);
  return out[0];
}

/* loss = sum(out0) (+ mean(out1) with two outputs); gradients of x and every w. */
static void grads(int mode, int n_out, tfw_tensor **g) {
  mlp m;
  mlp_init(&m);
  tfw_manual_seed(1234);
  tfw_tensor *o2 = NULL;
  tfw_tensor *o = forward(&m, mode, n_out, n_out == 2 ? &o2 : NULL);
  tfw_tensor *loss = tfw_sum(o, 0, NULL, false);
  if (o2) {
    tfw_tensor *l2 = tfw_mean(o2, 0, NULL, false);
    tfw_tensor *t = tfw_add(loss, l2);
    tfw_release(loss), tfw_release(l2);
    loss = t;
  }
  uint64_t s0, o0, s1, o1;
  tfw_rng_get_state(&s0, &o0);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "mode %d: %s", mode, tfw_last_error());
  tfw_rng_get_state(&s1, &o1);
  cr_assert(s0 == s1 && o0 == o1, "backward changed the RNG state (offset %llu -> %llu)",
            (unsigned long long)o0, (unsigned long long)o1);
  g[0] = tfw_tensor_grad(m.x);
  for (int l = 0; l < LAYERS; l++) g[1 + l] = tfw_tensor_grad(m.w[l]);
  tfw_release(loss), tfw_release(o), tfw_release(o2);
  mlp_free(&m);
}

static void expect_identical(tfw_tensor **a, tfw_tensor **b, const char *what) {
  for (int i = 0; i < 1 + LAYERS; i++) {
    cr_assert(a[i] && b[i], "%s: gradient %d missing", what, i);
    bool eq = false;
    cr_assert(tfw_equal(a[i], b[i], &eq) == TFW_OK);
    cr_assert(eq, "%s: gradient %d differs from the plain graph's", what, i);
  }
}

Test(checkpoint, gradients_are_bit_identical_with_dropout) {
  tfw_tensor *plain[1 + LAYERS], *one[1 + LAYERS], *two[1 + LAYERS];
  grads(0, 1, plain);
  grads(1, 1, one);
  grads(2, 1, two);
  expect_identical(plain, one, "one checkpoint");
  expect_identical(plain, two, "two checkpoints");
  /* two outputs (the loss uses both) */
  bool eq = true;
  for (int i = 0; i < 1 + LAYERS; i++) tfw_release(one[i]), tfw_release(two[i]);
  grads(0, 2, one);
  grads(1, 2, two);
  expect_identical(one, two, "two outputs");
  cr_assert(tfw_equal(plain[1], one[1], &eq) == TFW_OK && !eq, "the second output has no effect");
  for (int i = 0; i < 1 + LAYERS; i++) tfw_release(plain[i]), tfw_release(one[i]), tfw_release(two[i]);
  th_expect_no_leaks();
}

/* Peak live bytes during the forward, above what was live before it. */
static int64_t forward_peak(int mode) {
  mlp m;
  mlp_init(&m);
  tfw_manual_seed(7);
  tfw_memory_stats s;
  tfw_memory_stats_get(&s);
  int64_t before = s.live_bytes;
  tfw_memory_reset_peak();
  tfw_tensor *o = forward(&m, mode, 1, NULL);
  tfw_memory_stats_get(&s);
  int64_t peak = s.peak_bytes - before;
  tfw_tensor *loss = tfw_sum(o, 0, NULL, false);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_release(loss), tfw_release(o);
  mlp_free(&m);
  return peak;
}

Test(checkpoint, forward_peak_memory_is_lower) {
  int64_t plain = forward_peak(0), ckpt = forward_peak(1);
  cr_log_info("forward peak bytes: plain %lld, checkpointed %lld", (long long)plain, (long long)ckpt);
  /* plain keeps ~6 [B, D] tensors per layer for backward; checkpointed keeps the output and
   * a few temporaries of the running layer */
  cr_assert(ckpt * 2 < plain, "peak bytes in the forward: checkpointed %lld, plain %lld",
            (long long)ckpt, (long long)plain);
  th_expect_no_leaks();
}

Test(checkpoint, retain_graph_and_plain_call) {
  mlp m;
  mlp_init(&m);
  tfw_manual_seed(3);
  tfw_tensor *o = forward(&m, 1, 1, NULL);
  tfw_tensor *loss = tfw_sum(o, 0, NULL, false);
  cr_assert_eq(tfw_backward(loss, NULL, true, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *g1 = tfw_tensor_grad(m.w[0]);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *g2 = tfw_tensor_grad(m.w[0]);
  tfw_tensor *twice = tfw_mul_scalar(g1, 2.0);
  bool eq = false;
  cr_assert(tfw_equal(twice, g2, &eq) == TFW_OK && eq, "second backward did not accumulate the same gradient");
  tfw_release(g1), tfw_release(g2), tfw_release(twice), tfw_release(loss), tfw_release(o);

  /* with grad mode off checkpoint is a plain call: same values, no history */
  tfw_manual_seed(3);
  bool prev = tfw_set_grad_enabled(false);
  tfw_tensor *p = forward(&m, 1, 1, NULL);
  tfw_manual_seed(3);
  tfw_tensor *q = forward(&m, 0, 1, NULL);
  tfw_set_grad_enabled(prev);
  cr_assert(!tfw_tensor_requires_grad(p), "no-grad checkpoint output has history");
  cr_assert(tfw_equal(p, q, &eq) == TFW_OK && eq, "no-grad checkpoint output differs");
  tfw_release(p), tfw_release(q);
  mlp_free(&m);
  th_expect_no_leaks();
}

/* fn that multiplies by a tensor read from ctx */
static tfw_status scale_by_ctx(void *ctx, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor **out) {
  out[0] = tfw_mul(in[0], (tfw_tensor *)ctx);
  return out[0] ? TFW_OK : tfw_last_status();
}

Test(checkpoint, errors) {
  tfw_tensor *x = th_random(TFW_DTYPE_F64, 1, (int64_t[]){4}, -1, 1, 1);
  tfw_tensor *w = th_random(TFW_DTYPE_F64, 1, (int64_t[]){4}, -1, 1, 2);
  cr_assert(tfw_tensor_set_requires_grad(x, true) == TFW_OK);
  cr_assert(tfw_tensor_set_requires_grad(w, true) == TFW_OK);
  tfw_tensor *y[1];

  /* a tensor that requires grad, captured in ctx instead of passed: no silent zero gradient */
  cr_assert_eq(tfw_checkpoint(scale_by_ctx, w, 1, &x, 1, y), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *s = tfw_sum(y[0], 0, NULL, false);
  th_expect_error(tfw_backward(s, NULL, false, false), TFW_EVALUE, "not among the inputs", "captured leaf");
  tfw_release(s), tfw_release(y[0]);

  /* a captured tensor with history */
  tfw_tensor *w2 = tfw_mul(w, w);
  cr_assert_eq(tfw_checkpoint(scale_by_ctx, w2, 1, &x, 1, y), TFW_OK, "%s", tfw_last_error());
  s = tfw_sum(y[0], 0, NULL, false);
  th_expect_error(tfw_backward(s, NULL, false, false), TFW_EVALUE, "not among the inputs", "captured history");
  tfw_release(s), tfw_release(y[0]), tfw_release(w2);

  /* double backward */
  tfw_tensor *d = tfw_detach(w);
  cr_assert_eq(tfw_checkpoint(scale_by_ctx, d, 1, &x, 1, y), TFW_OK, "%s", tfw_last_error());
  s = tfw_sum(y[0], 0, NULL, false);
  tfw_tensor *g[1];
  th_expect_error(tfw_grad(1, &s, 1, &x, NULL, false, true, false, g), TFW_EUNSUPPORTED, "double backward",
                  "create_graph");
  /* the graph is still usable without create_graph: dy/dx = w */
  cr_assert_eq(tfw_grad(1, &s, 1, &x, NULL, false, false, false, g), TFW_OK, "%s", tfw_last_error());
  bool eq = false;
  tfw_equal(g[0], d, &eq);
  cr_assert(eq, "checkpointed gradient of x * w is not w");
  tfw_release(g[0]), tfw_release(s), tfw_release(y[0]), tfw_release(d);

  /* limits */
  tfw_tensor *many[9] = {x, x, x, x, x, x, x, x, x};
  th_expect_error(tfw_checkpoint(chain, NULL, 9, many, 1, y), TFW_EVALUE, "1 to 8 inputs", "9 inputs");
  th_expect_error(tfw_checkpoint(NULL, NULL, 1, &x, 1, y), TFW_EVALUE, "must be given", "no fn");
  tfw_release(x), tfw_release(w);
  th_expect_no_leaks();
}
