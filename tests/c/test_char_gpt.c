/* The GPT of examples/char_gpt.c (src/nn/gpt.c) in a tiny configuration:
 *   - forward logits, loss and every parameter's gradient equal PyTorch's on the same
 *     weights (the same GPT written with torch.nn: Embedding, TransformerEncoderLayer with
 *     norm_first and a causal mask, LayerNorm, tied or untied head), weights copied by name;
 *   - training on a tiny text (AdamW, clipping) drives the loss down;
 *   - generation with the KV cache equals generation with a full causal forward per token,
 *     token for token (greedy and sampled), and runs past the context;
 *   - bad arguments give errors. */
#include <string.h>

#include "harness.h"

static tfw_gpt_config tiny(int64_t V, bool tie) {
  tfw_gpt_config c = tfw_gpt_config_default(V);
  c.context = 16, c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.dropout = 0, c.tie_weights = tie;
  return c;
}

static const char *TORCH_GPT =
    "import torch.nn as nn\n"
    "V, CTX, L, H, C, TIE = %lld, %lld, %lld, %lld, %lld, %s\n"
    "names = '%s'.split(',')\n"
    "class GPT(nn.Module):\n"
    "    def __init__(s):\n"
    "        super().__init__()\n"
    "        s.tok_emb = nn.Embedding(V, C)\n"
    "        s.pos_emb = nn.Embedding(CTX, C)\n"
    "        s.blocks = nn.Sequential(*[nn.TransformerEncoderLayer(C, H, 4 * C, 0.0, activation='gelu',\n"
    "                                   batch_first=True, norm_first=True) for _ in range(L)])\n"
    "        s.norm = nn.LayerNorm(C)\n"
    "        if not TIE: s.lm_head = nn.Linear(C, V, bias=False)\n"
    "    def forward(s, idx):\n"
    "        T = idx.shape[1]\n"
    "        h = s.tok_emb(idx) + s.pos_emb(torch.arange(T))\n"
    "        mask = torch.triu(torch.full((T, T), float('-inf'), dtype=h.dtype), 1)\n"
    "        for b in s.blocks: h = b(h, src_mask=mask)\n"
    "        h = s.norm(h)\n"
    "        return h @ s.tok_emb.weight.t() if TIE else s.lm_head(h)\n"
    "m = GPT().double().train()\n"
    "m.load_state_dict({n: t.detach() for n, t in zip(names, x[2:])}, strict=True)\n"
    "logits = m(x[0])\n"
    "loss = F.cross_entropy(logits.reshape(-1, V), x[1].reshape(-1))\n"
    "loss.backward()\n"
    "ps = dict(m.named_parameters())\n"
    "out = [logits, loss] + [ps[n].grad for n in names]\n";

static void expect_ref(const tfw_tensor *t, const tfw_tensor *ref, double rtol, double atol,
                       const char *what) {
  double *r = th_values(ref);
  th_expect_close(t, TFW_DTYPE_F32, tfw_tensor_ndim(ref), tfw_tensor_shape(ref), r, rtol, atol, what);
  free(r);
}

static void check_against_torch(bool tie) {
  const int64_t V = 11, B = 2, T = 9;
  tfw_gpt_config c = tiny(V, tie);
  tfw_manual_seed(5);
  tfw_module *m = tfw_gpt_new(&c);
  cr_assert(m, "%s", tfw_last_error());
  tfw_tensor *idx = th_random(TFW_DTYPE_I64, 2, (int64_t[]){B, T}, 0, (double)V, 1);
  tfw_tensor *tgt = th_random(TFW_DTYPE_I64, 2, (int64_t[]){B, T}, 0, (double)V, 2);
  tfw_tensor *logits = tfw_gpt_forward(m, idx);
  cr_assert(logits, "%s", tfw_last_error());
  tfw_tensor *flat = tfw_reshape(logits, 2, (int64_t[]){-1, V});
  tfw_tensor *tflat = tfw_reshape(tgt, 1, (int64_t[]){B * T});
  tfw_tensor *loss = tfw_cross_entropy(flat, tflat, NULL, "mean", -100, 0.0);
  cr_assert(loss && tfw_backward(loss, NULL, false, false) == TFW_OK, "%s", tfw_last_error());

  tfw_named_tensor *ps;
  int n;
  cr_assert(tfw_module_named_parameters(m, &ps, &n) == TFW_OK);
  cr_assert_eq(n, tie ? 2 + 12 * 2 + 2 : 2 + 12 * 2 + 3, "parameter count %d", n);
  char names[4096] = "", code[8192];
  tfw_tensor *in[64] = {idx, tgt}, *ref[66];
  for (int i = 0; i < n; i++) {
    strcat(names, ps[i].name);
    if (i + 1 < n) strcat(names, ",");
    in[2 + i] = ps[i].tensor;
  }
  snprintf(code, sizeof code, TORCH_GPT, (long long)V, (long long)c.context, (long long)c.n_layer,
           (long long)c.n_head, (long long)c.n_embd, tie ? "True" : "False", names);
  th_torch_run(code, 2 + n, in, 2 + n, ref);
  expect_ref(logits, ref[0], 1e-4, 1e-4, "logits");
  expect_ref(loss, ref[1], 1e-5, 1e-5, "loss");
  for (int i = 0; i < n; i++) {
    tfw_tensor *g = tfw_tensor_grad(ps[i].tensor);
    cr_assert(g, "no gradient for %s", ps[i].name);
    char what[128];
    snprintf(what, sizeof what, "grad %s", ps[i].name);
    expect_ref(g, ref[2 + i], 1e-3, 1e-5, what);
    tfw_release(g);
  }
  for (int i = 0; i < 2 + n; i++) tfw_release(ref[i]);
  tfw_named_tensors_free(ps, n);
  tfw_release(idx), tfw_release(tgt), tfw_release(logits), tfw_release(flat), tfw_release(loss);
  tfw_release(tflat);
  tfw_module_release(m);
}

Test(char_gpt, forward_and_grads_match_torch_tied) {
  th_require_torch();
  check_against_torch(true);
  th_expect_no_leaks();
}

Test(char_gpt, forward_and_grads_match_torch_untied) {
  th_require_torch();
  check_against_torch(false);
  th_expect_no_leaks();
}

/* ---- training on a tiny text, then generation -------------------------------------------------- */

static const char TEXT[] = "the cat sat on the mat. the dog sat on the log. ";

/* ids of TEXT over the vocabulary of its sorted distinct bytes; returns V */
static int64_t encode(int64_t *ids, int64_t *n) {
  int map[256], V = 0;
  for (int c = 0; c < 256; c++) map[c] = strchr(TEXT, c) && c ? 1 : 0;
  for (int c = 0; c < 256; c++) map[c] = map[c] ? V++ : -1;
  *n = (int64_t)strlen(TEXT);
  for (int64_t i = 0; i < *n; i++) ids[i] = map[(unsigned char)TEXT[i]];
  return V;
}

/* Mean loss of one batch of windows (starts s[0 .. B)), with backward when train. */
static double batch_loss(tfw_module *m, const int64_t *ids, int64_t n, const int64_t *s, int64_t B,
                         int64_t T, bool train) {
  int64_t *x = malloc((size_t)(B * T) * sizeof *x), *y = malloc((size_t)(B * T) * sizeof *y);
  for (int64_t b = 0; b < B; b++)
    for (int64_t t = 0; t < T; t++)
      x[b * T + t] = ids[(s[b] + t) % n], y[b * T + t] = ids[(s[b] + t + 1) % n];
  tfw_tensor *xi = tfw_from_data(TFW_DTYPE_I64, 2, (int64_t[]){B, T}, x);
  tfw_tensor *yi = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){B * T}, y);
  tfw_tensor *lg = tfw_gpt_forward(m, xi);
  cr_assert(lg, "%s", tfw_last_error());
  tfw_tensor *flat = tfw_reshape(lg, 2, (int64_t[]){B * T, -1});
  tfw_tensor *loss = tfw_cross_entropy(flat, yi, NULL, "mean", -100, 0.0);
  double v = NAN;
  cr_assert(loss && tfw_item(loss, &v) == TFW_OK);
  if (train) cr_assert(tfw_backward(loss, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  tfw_release(xi), tfw_release(yi), tfw_release(lg), tfw_release(flat), tfw_release(loss);
  free(x), free(y);
  return v;
}

/* A tiny GPT trained for 60 AdamW steps on TEXT: the loss must fall well below its start. */
static tfw_module *trained(int64_t *ids, int64_t *n, int64_t *V) {
  *V = encode(ids, n);
  tfw_gpt_config c = tiny(*V, true);
  c.dropout = 0.1; /* exercised in training; generation runs without it */
  tfw_manual_seed(3);
  tfw_module *m = tfw_gpt_new(&c);
  cr_assert(m);
  tfw_optim_options oo = tfw_optim_defaults(TFW_OPTIM_ADAMW);
  oo.lr = 1e-2, oo.weight_decay = 0.1, oo.beta1 = 0.9, oo.beta2 = 0.95;
  tfw_optimizer *opt = tfw_optimizer_new(TFW_OPTIM_ADAMW, &oo);
  cr_assert(opt && tfw_optimizer_add_module_params(opt, m, &oo, NULL, NULL) == TFW_OK);
  int np;
  tfw_named_tensor *ps;
  cr_assert(tfw_module_named_parameters(m, &ps, &np) == TFW_OK);
  tfw_tensor *params[64];
  for (int i = 0; i < np; i++) params[i] = ps[i].tensor;
  const int64_t B = 4, T = 16, probe[4] = {0, 5, 11, 30};
  tfw_module_train(m, false);
  double first = batch_loss(m, ids, *n, probe, B, T, false);
  tfw_module_train(m, true);
  uint64_t rng = 7;
  for (int step = 0; step < 60; step++) {
    int64_t s[4];
    for (int b = 0; b < 4; b++) s[b] = (int64_t)(th_rand_u64(&rng) % (uint64_t)*n);
    batch_loss(m, ids, *n, s, B, T, true);
    double norm;
    cr_assert(tfw_clip_grad_norm_(np, params, 1.0, 2.0, false, &norm) == TFW_OK, "%s", tfw_last_error());
    cr_assert(tfw_optimizer_step(opt) == TFW_OK);
    tfw_optimizer_zero_grad(opt, true);
  }
  tfw_module_train(m, false);
  double last = batch_loss(m, ids, *n, probe, B, T, false);
  cr_assert(first > 2.0 && last < 0.5 * first, "loss %g -> %g after 60 steps", first, last);
  tfw_named_tensors_free(ps, np);
  tfw_optimizer_release(opt);
  return m;
}

Test(char_gpt, loss_decreases_and_cached_generation_equals_full_forward) {
  int64_t ids[128], n, V;
  tfw_module *m = trained(ids, &n, &V);
  const int64_t prompt[3] = {ids[0], ids[1], ids[2]}, n_new = 16 + 1 - 3; /* fills the context */
  int64_t a[64], b[64];
  tfw_gpt_sampling s = tfw_gpt_sampling_default();
  s.temperature = 0; /* greedy */
  s.use_cache = true;
  cr_assert(tfw_gpt_generate(m, 3, prompt, n_new, &s, a) == TFW_OK, "%s", tfw_last_error());
  s.use_cache = false;
  cr_assert(tfw_gpt_generate(m, 3, prompt, n_new, &s, b) == TFW_OK, "%s", tfw_last_error());
  int distinct = 0;
  for (int64_t i = 0; i < n_new; i++) {
    cr_assert_eq(a[i], b[i], "greedy token %lld: cached %lld, full forward %lld", (long long)i,
                 (long long)a[i], (long long)b[i]);
    distinct += i == 0 || a[i] != a[i - 1];
  }
  /* the model learnt the text: greedy decoding continues it ("the cat sat on ...") */
  int64_t matches = 0;
  for (int64_t i = 0; i < n_new; i++) matches += a[i] == ids[3 + i];
  cr_assert(matches >= n_new / 2 && distinct > 3, "greedy continuation matches the text at %lld of "
            "%lld positions", (long long)matches, (long long)n_new);

  /* sampled: the same seed gives the same tokens with and without the cache */
  s.temperature = 1.0, s.top_k = 4, s.seed = 42;
  s.use_cache = true;
  cr_assert(tfw_gpt_generate(m, 3, prompt, n_new, &s, a) == TFW_OK);
  s.use_cache = false;
  cr_assert(tfw_gpt_generate(m, 3, prompt, n_new, &s, b) == TFW_OK);
  for (int64_t i = 0; i < n_new; i++) cr_assert_eq(a[i], b[i], "sampled token %lld", (long long)i);

  /* past the context (the cache is rebuilt from the tail): valid ids, and the mode and grad
   * setting are left as they were */
  tfw_module_train(m, true);
  s.use_cache = true;
  cr_assert(tfw_gpt_generate(m, 3, prompt, 50, &s, a) == TFW_OK, "%s", tfw_last_error());
  for (int i = 0; i < 50; i++) cr_assert(a[i] >= 0 && a[i] < V);
  cr_assert(tfw_module_is_training(m) && tfw_grad_enabled());
  /* a prompt longer than the context */
  int64_t longp[40];
  for (int i = 0; i < 40; i++) longp[i] = ids[i];
  cr_assert(tfw_gpt_generate(m, 40, longp, 5, &s, a) == TFW_OK, "%s", tfw_last_error());
  s.use_cache = false;
  cr_assert(tfw_gpt_generate(m, 40, longp, 5, &s, b) == TFW_OK, "%s", tfw_last_error());
  tfw_module_release(m);
  th_expect_no_leaks();
}

Test(char_gpt, errors) {
  tfw_gpt_config c = tiny(10, true);
  c.n_head = 3;
  th_expect_error(tfw_gpt_new(&c) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "multiple of n_head", "heads");
  c = tiny(0, true);
  th_expect_error(tfw_gpt_new(&c) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "vocab_size", "vocab");
  c = tiny(10, true);
  c.dropout = 1.0;
  th_expect_error(tfw_gpt_new(&c) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "dropout", "dropout");
  c = tiny(10, true);
  tfw_module *m = tfw_gpt_new(&c);
  cr_assert(m);
  tfw_tensor *longer = tfw_zeros(TFW_DTYPE_I64, 2, (int64_t[]){1, 17});
  th_expect_error(tfw_gpt_forward(m, longer) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "context", "T > context");
  tfw_tensor *bad = tfw_full(TFW_DTYPE_I64, 2, (int64_t[]){1, 4}, 10);
  th_expect_error(tfw_gpt_forward(m, bad) ? TFW_OK : tfw_last_status(), TFW_EINDEX, "out of range", "id >= V");
  tfw_tensor *fl = tfw_zeros(TFW_DTYPE_F32, 2, (int64_t[]){1, 4});
  th_expect_error(tfw_gpt_forward(m, fl) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "int64", "float ids");
  tfw_module *lin = tfw_linear_new(2, 2, true);
  th_expect_error(tfw_gpt_forward(lin, bad) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "not a GPT", "module");
  int64_t p[2] = {1, 12}, out[4];
  tfw_gpt_sampling s = tfw_gpt_sampling_default();
  th_expect_error(tfw_gpt_generate(m, 2, p, 4, &s, out), TFW_EINDEX, "prompt[1] = 12", "prompt id");
  th_expect_error(tfw_gpt_generate(m, 0, p, 4, &s, out), TFW_EVALUE, "n_prompt", "empty prompt");
  tfw_release(longer), tfw_release(bad), tfw_release(fl);
  tfw_module_release(lin);
  tfw_module_release(m);
  th_expect_no_leaks();
}

/* gelu's backward (the fused gelu_backward op on the hot path of the GPT's MLP) against the
 * formula gelu'(x) = Phi(x) + x phi(x) evaluated in double here, f32 and f64, over
 * [-12, 12] including the tails; and the composite rule still runs under create_graph. */
Test(char_gpt, gelu_backward_matches_formula) {
  const int64_t n = 4001;
  for (int f = 0; f < 2; f++) {
    tfw_dtype dt = f ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
    tfw_tensor *x = tfw_linspace(-12, 12, n, dt), *g = th_random(dt, 1, &n, -2, 2, 9);
    tfw_tensor_set_requires_grad(x, true);
    tfw_tensor *y = tfw_gelu(x), *yg = tfw_mul(y, g), *s = tfw_sum(yg, 0, NULL, false);
    cr_assert(s && tfw_backward(s, NULL, true, false) == TFW_OK, "%s", tfw_last_error());
    double *xv = th_values(x), *gv = th_values(g), *ref = malloc(sizeof(double) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
      ref[i] = gv[i] * (0.5 * (1 + erf(xv[i] / sqrt(2.0))) + xv[i] * exp(-0.5 * xv[i] * xv[i]) / sqrt(2 * M_PI));
    tfw_tensor *gx = tfw_tensor_grad(x);
    th_expect_close(gx, dt, 1, &n, ref, f ? 1e-12 : 2e-6, f ? 1e-14 : 1e-7, "gelu grad");
    tfw_release(gx);
    tfw_tensor_zero_grad(x);
    /* create_graph: the recorded (composite) rule gives the same values */
    cr_assert(tfw_backward(s, NULL, true, true) == TFW_OK, "%s", tfw_last_error());
    gx = tfw_tensor_grad(x);
    th_expect_close(gx, dt, 1, &n, ref, f ? 1e-12 : 2e-6, f ? 1e-14 : 1e-6, "gelu grad (create_graph)");
    tfw_release(gx);
    tfw_tensor_zero_grad(x); /* the recorded gradient refers back to x */
    free(xv), free(gv), free(ref);
    tfw_release(x), tfw_release(g), tfw_release(y), tfw_release(yg), tfw_release(s);
  }
  th_expect_no_leaks();
}
