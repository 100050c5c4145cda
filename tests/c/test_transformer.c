/* TransformerEncoderLayer and TransformerDecoderLayer against torch.nn's on the same state_dict
 * (post-norm and pre-norm, relu and gelu, masks), forward and gradients, dropout off; the KV
 * cache (incremental decoding of MultiheadAttention, a GPT-style encoder stack and the decoder
 * layer, with RoPE offsets, reset and max_len) against torch's full causal forward. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static void check(bool norm_first, const char *act) {
  tfw_manual_seed(7);
  tfw_module *enc = tfw_transformer_encoder_layer_new(8, 2, 16, 0.0, act, 1e-5, true, norm_first);
  cr_assert(enc, "%s", tfw_last_error());
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_module_state_dict(enc, &sd, &n) == TFW_OK);
  cr_assert_eq(n, 12, "%d state entries", n);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, -1, 1, 3);
  tfw_tensor_set_requires_grad(x, true);
  tfw_tensor *y = tfw_module_call(enc, x);
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *y2 = tfw_mul(y, y);
  tfw_tensor *s = tfw_sum(y2, 0, NULL, false);
  cr_assert(tfw_backward(s, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  tfw_tensor *in[13];
  char code[2048];
  int len = snprintf(code, sizeof code,
                     "m = torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, '%s', batch_first=True, "
                     "norm_first=%s).double()\nkeys = [", act, norm_first ? "True" : "False");
  for (int i = 0; i < n; i++) {
    in[i] = sd[i].tensor;
    len += snprintf(code + len, sizeof code - (size_t)len, "'%s', ", sd[i].name);
  }
  in[n] = x;
  snprintf(code + len, sizeof code - (size_t)len,
           "]\nm.load_state_dict({k: x[i].detach() for i, k in enumerate(keys)})\n"
           "xin = x[%d].detach().requires_grad_(True)\n"
           "y = m(xin)\n(y * y).sum().backward()\nout = [y, xin.grad]\n", n);
  tfw_tensor *ref[2];
  th_torch_run(code, n + 1, in, 2, ref);
  double *r = th_values(ref[0]);
  th_expect_close(y, TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, r, 1e-4, 1e-4, "encoder forward");
  free(r);
  tfw_tensor *gx = tfw_tensor_grad(x);
  r = th_values(ref[1]);
  th_expect_close(gx, TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, r, 1e-3, 1e-4, "encoder grad input");
  free(r);
  tfw_release(gx), tfw_release(ref[0]), tfw_release(ref[1]);
  tfw_named_tensors_free(sd, n);
  tfw_release(x), tfw_release(y), tfw_release(y2), tfw_release(s);
  tfw_module_release(enc);
}

Test(transformer, encoder_layer_post_norm_relu) {
  th_require_torch();
  check(false, "relu");
  th_expect_no_leaks();
}

Test(transformer, encoder_layer_pre_norm_gelu) {
  th_require_torch();
  check(true, "gelu");
  cr_assert(tfw_transformer_encoder_layer_new(8, 2, 16, 0, "swish", 1e-5, true, false) == NULL);
  th_expect_no_leaks();
}

/* ---- shared by the decoder and KV-cache tests ------------------------------------------------ */

/* Python that builds `var = ctor` in float64 and loads m's state_dict from x[first ..]; the
 * state_dict goes to *sd / *n and its tensors to in[first ..]. Returns the chars written. */
static int load_code(char *code, size_t cap, const char *var, const char *ctor, const tfw_module *m,
                     tfw_named_tensor **sd, int *n, tfw_tensor **in, int first) {
  cr_assert(tfw_module_state_dict(m, sd, n) == TFW_OK, "%s", tfw_last_error());
  int len = snprintf(code, cap, "%s = %s.double()\nkeys = [", var, ctor);
  for (int i = 0; i < *n; i++) {
    in[first + i] = (*sd)[i].tensor;
    len += snprintf(code + len, cap - (size_t)len, "'%s', ", (*sd)[i].name);
  }
  len += snprintf(code + len, cap - (size_t)len,
                  "]\n%s.load_state_dict({k: x[%d + i].detach() for i, k in enumerate(keys)})\n",
                  var, first);
  cr_assert((size_t)len < cap, "code buffer too small");
  return len;
}

/* got (any float dtype) against ref (float64 from torch), same shape */
static void expect_ref(const tfw_tensor *got, const tfw_tensor *ref, double rtol, double atol,
                       const char *what) {
  cr_assert(got, "%s: %s", what, tfw_last_error());
  double *r = th_values(ref);
  th_expect_close(got, tfw_tensor_dtype(got), tfw_tensor_ndim(ref), tfw_tensor_shape(ref), r, rtol,
                  atol, what);
  free(r);
}

/* ---- TransformerDecoderLayer vs torch.nn.TransformerDecoderLayer ---------------------------- */

/* masks 0: tgt_is_causal (torch gets the causal tgt_mask) + bool memory_key_padding_mask;
 * masks 1: explicit bool tgt_mask + float memory_mask + bool tgt_key_padding_mask. */
static void check_decoder(bool norm_first, const char *act, bool batch_first, int masks) {
  const int64_t N = 2, T = 5, S = 4, E = 8;
  tfw_manual_seed(11);
  tfw_module *dec = tfw_transformer_decoder_layer_new(E, 2, 16, 0.0, act, 1e-5, batch_first, norm_first);
  cr_assert(dec, "%s", tfw_last_error());
  int64_t ts[3] = {T, N, E}, ms[3] = {S, N, E};
  if (batch_first) ts[0] = N, ts[1] = T, ms[0] = N, ms[1] = S;
  tfw_tensor *tgt = th_random(TFW_DTYPE_F32, 3, ts, -1, 1, 21);
  tfw_tensor *mem = th_random(TFW_DTYPE_F32, 3, ms, -1, 1, 22);
  tfw_tensor_set_requires_grad(tgt, true), tfw_tensor_set_requires_grad(mem, true);
  tfw_tensor *tmask = NULL, *mmask = NULL, *tkpm = NULL, *mkpm = NULL;
  if (masks == 0) {
    bool pad[8] = {0, 0, 0, 1, 0, 1, 1, 0}; /* [N, S]: true = ignore */
    mkpm = tfw_from_data(TFW_DTYPE_BOOL, 2, (int64_t[]){N, S}, pad);
  } else {
    tfw_tensor *r = th_random(TFW_DTYPE_F32, 2, (int64_t[]){T, T}, 0, 1, 23);
    tfw_tensor *h = tfw_scalar(TFW_DTYPE_F32, 0.6), *eye = tfw_eye(T, T, TFW_DTYPE_BOOL);
    tfw_tensor *off = tfw_gt(r, h), *ne = tfw_logical_not(eye);
    tfw_tensor *col = tfw_arange(0, (double)T, 1, TFW_DTYPE_I64), *z = tfw_scalar(TFW_DTYPE_I64, 0);
    tfw_tensor *nz = tfw_ne(col, z), *t1 = tfw_logical_and(off, ne);
    tmask = tfw_logical_and(t1, nz); /* key 0 and the diagonal always allowed */
    tfw_release(r), tfw_release(h), tfw_release(eye), tfw_release(off), tfw_release(ne);
    tfw_release(col), tfw_release(z), tfw_release(nz), tfw_release(t1);
    mmask = th_random(TFW_DTYPE_F32, 2, (int64_t[]){T, S}, -1, 1, 24);
    bool pad[10] = {0, 0, 1, 0, 0, 0, 1, 0, 0, 1}; /* [N, T]: key 0 kept */
    tkpm = tfw_from_data(TFW_DTYPE_BOOL, 2, (int64_t[]){N, T}, pad);
  }
  tfw_tensor *y = NULL;
  cr_assert(tfw_transformer_decoder_layer_forward(dec, tgt, mem, tmask, mmask, tkpm, mkpm, masks == 0,
                                                  false, &y) == TFW_OK, "%s", tfw_last_error());
  tfw_tensor *y2 = tfw_mul(y, y), *loss = tfw_sum(y2, 0, NULL, false);
  cr_assert(tfw_backward(loss, NULL, false, false) == TFW_OK, "%s", tfw_last_error());

  tfw_named_tensor *sd;
  int n;
  tfw_tensor *in[32];
  char code[8192], ctor[256];
  snprintf(ctor, sizeof ctor, "torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0, '%s', batch_first=%s, norm_first=%s)",
           act, batch_first ? "True" : "False", norm_first ? "True" : "False");
  int len = load_code(code, sizeof code, "m", ctor, dec, &sd, &n, in, 0);
  cr_assert_eq(n, 18, "%d state entries", n);
  for (int i = 0; i < n; i++) { /* parameters are the whole state_dict, in the same order */
    static const char *names[18] = {
        "self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
        "self_attn.out_proj.bias", "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
        "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "linear1.weight",
        "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
        "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"};
    cr_assert_str_eq(sd[i].name, names[i]);
  }
  int k = n;
  in[k++] = tgt, in[k++] = mem;
  if (masks == 0) in[k++] = mkpm;
  else in[k++] = tmask, in[k++] = mmask, in[k++] = tkpm;
  snprintf(code + len, sizeof code - (size_t)len,
           "t = x[%d].detach().requires_grad_(True)\nmem = x[%d].detach().requires_grad_(True)\n"
           "if %d == 0:\n"
           "    tm = torch.triu(torch.full((%lld, %lld), float('-inf'), dtype=torch.float64), 1)\n"
           "    y = m(t, mem, tgt_mask=tm, memory_key_padding_mask=x[%d])\n"
           "else:\n"
           "    y = m(t, mem, tgt_mask=x[%d], memory_mask=x[%d + 1].detach(), tgt_key_padding_mask=x[%d + 2])\n"
           "(y * y).sum().backward()\n"
           "out = [y, t.grad, mem.grad] + [p.grad for p in m.parameters()]\n",
           n, n + 1, masks, (long long)T, (long long)T, n + 2, n + 2, n + 2, n + 2);
  tfw_tensor *ref[21];
  th_torch_run(code, k, in, 3 + n, ref);
  expect_ref(y, ref[0], 1e-4, 1e-4, "decoder forward");
  tfw_tensor *g[2] = {tfw_tensor_grad(tgt), tfw_tensor_grad(mem)};
  expect_ref(g[0], ref[1], 1e-3, 1e-4, "decoder grad tgt");
  expect_ref(g[1], ref[2], 1e-3, 1e-4, "decoder grad memory");
  tfw_release(g[0]), tfw_release(g[1]);
  tfw_named_tensor *params;
  int np;
  cr_assert(tfw_module_named_parameters(dec, &params, &np) == TFW_OK && np == n);
  for (int i = 0; i < np; i++) {
    cr_assert_str_eq(params[i].name, sd[i].name);
    tfw_tensor *gp = tfw_tensor_grad(params[i].tensor);
    char what[96];
    snprintf(what, sizeof what, "decoder grad %s", params[i].name);
    expect_ref(gp, ref[3 + i], 1e-3, 1e-4, what);
    tfw_release(gp);
  }
  tfw_named_tensors_free(params, np);
  for (int i = 0; i < 3 + n; i++) tfw_release(ref[i]);
  tfw_named_tensors_free(sd, n);
  tfw_release(tgt), tfw_release(mem), tfw_release(tmask), tfw_release(mmask), tfw_release(tkpm),
      tfw_release(mkpm), tfw_release(y), tfw_release(y2), tfw_release(loss);
  tfw_module_release(dec);
}

Test(transformer, decoder_layer_post_norm_relu_causal) {
  th_require_torch();
  check_decoder(false, "relu", true, 0);
  th_expect_no_leaks();
}

Test(transformer, decoder_layer_pre_norm_gelu_masks_seq_first) {
  th_require_torch();
  check_decoder(true, "gelu", false, 1);
  th_expect_no_leaks();
}

Test(transformer, decoder_layer_module_forward_and_errors) {
  tfw_module *dec = tfw_transformer_decoder_layer_new(8, 2, 16, 0.1, NULL, 1e-5, true, false);
  cr_assert(dec, "%s", tfw_last_error());
  tfw_module_train(dec, false); /* eval: dropout off, so the module form equals the full form */
  tfw_tensor *tgt = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 8}, -1, 1, 1);
  tfw_tensor *mem = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 2, 8}, -1, 1, 2);
  tfw_tensor *in[2] = {tgt, mem}, *a = NULL, *b = NULL;
  cr_assert(tfw_module_forward(dec, 2, in, 1, &a) == TFW_OK, "%s", tfw_last_error());
  cr_assert(tfw_transformer_decoder_layer_forward(dec, tgt, mem, NULL, NULL, NULL, NULL, false,
                                                  false, &b) == TFW_OK);
  double *r = th_values(b);
  th_expect_close(a, TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 8}, r, 0, 0, "module form");
  free(r);
  tfw_release(a), tfw_release(b);
  th_expect_error(tfw_module_forward(dec, 1, in, 1, &a), TFW_EVALUE, "2 inputs", "one input");
  th_expect_error(tfw_transformer_decoder_layer_forward(dec, tgt, NULL, NULL, NULL, NULL, NULL,
                                                        false, false, &a),
                  TFW_EVALUE, "memory", "no memory");
  tfw_tensor *bad = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 2, 6}, -1, 1, 3);
  th_expect_error(tfw_transformer_decoder_layer_forward(dec, tgt, bad, NULL, NULL, NULL, NULL,
                                                        false, false, &a),
                  TFW_ESHAPE, "MultiheadAttention", "memory of the wrong width");
  tfw_module *enc = tfw_transformer_encoder_layer_new(8, 2, 16, 0, "relu", 1e-5, true, false);
  th_expect_error(tfw_transformer_decoder_layer_forward(enc, tgt, mem, NULL, NULL, NULL, NULL,
                                                        false, false, &a),
                  TFW_EVALUE, "not a TransformerDecoderLayer", "encoder given");
  cr_assert_null(tfw_transformer_decoder_layer_new(8, 2, 16, 0, "tanh", 1e-5, true, false));
  cr_assert_null(tfw_transformer_decoder_layer_new(8, 3, 16, 0, "relu", 1e-5, true, false));
  tfw_release(tgt), tfw_release(mem), tfw_release(bad);
  tfw_module_release(dec), tfw_module_release(enc);
  th_expect_no_leaks();
}

/* ---- KV cache: incremental decoding against the full causal forward in torch --------------- */

typedef struct {
  tfw_module *m[2];
  tfw_kv_cache *cache[2];
  int kind; /* 0 MultiheadAttention, 1 encoder layers (a GPT stack of n), 2 decoder layer */
  int n;
  const tfw_tensor *memory, *mkpm;
} stepper;

static tfw_status step(stepper *s, const tfw_tensor *x, tfw_tensor **out) {
  if (s->kind == 0) return tfw_multihead_attention_forward_cached(s->m[0], x, s->cache[0], out);
  if (s->kind == 2)
    return tfw_transformer_decoder_layer_forward_cached(s->m[0], x, s->memory, s->mkpm, s->cache[0], out);
  tfw_tensor *h = tfw_retain((tfw_tensor *)x);
  for (int l = 0; l < s->n; l++) {
    tfw_tensor *o = NULL;
    tfw_status st = tfw_transformer_encoder_layer_forward_cached(s->m[l], h, s->cache[l], &o);
    tfw_release(h);
    if (st) return st;
    h = o;
  }
  *out = h;
  return TFW_OK;
}

/* Feeds x's positions (along dim sdim) in chunks of the given sizes; the outputs concatenated. */
static tfw_tensor *run_chunks(stepper *s, const tfw_tensor *x, int sdim, int nc, const int *chunks) {
  tfw_tensor *outs[16];
  int64_t p = 0;
  for (int i = 0; i < nc; i++) {
    tfw_tensor *xc = tfw_narrow(x, sdim, p, chunks[i]);
    cr_assert(step(s, xc, &outs[i]) == TFW_OK, "step %d: %s", i, tfw_last_error());
    tfw_release(xc);
    p += chunks[i];
    cr_assert_eq(tfw_kv_cache_length(s->cache[0]), p);
  }
  tfw_tensor *y = tfw_cat(nc, outs, sdim);
  for (int i = 0; i < nc; i++) tfw_release(outs[i]);
  return y;
}

/* MultiheadAttention, sequence first, chunks 1, 2, 1, 3 (then a reset and token by token on a
 * second sequence) against torch.nn.MultiheadAttention with the causal attn_mask. */
Test(kv_cache, mha_incremental_equals_full_causal) {
  th_require_torch();
  const int64_t T = 7, N = 2, E = 8;
  tfw_manual_seed(3);
  tfw_module *mha = tfw_multihead_attention_new(E, 2, 0.0, true, false);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){T, N, E}, -1, 1, 31);
  tfw_tensor *x2 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){T, N, E}, -1, 1, 32);
  stepper s = {.m = {mha}, .cache = {tfw_kv_cache_new(mha, N, 8)}, .kind = 0};
  cr_assert(s.cache[0], "%s", tfw_last_error());
  cr_assert_eq(tfw_kv_cache_max_len(s.cache[0]), 8);
  tfw_tensor *y = run_chunks(&s, x, 0, 4, (int[]){1, 2, 1, 3});
  tfw_kv_cache_reset(s.cache[0]);
  cr_assert_eq(tfw_kv_cache_length(s.cache[0]), 0);
  tfw_tensor *y2 = run_chunks(&s, x2, 0, 7, (int[]){1, 1, 1, 1, 1, 1, 1});
  /* our own full causal forward agrees too */
  tfw_tensor *yf = NULL;
  cr_assert(tfw_multihead_attention_forward(mha, x, x, x, NULL, false, NULL, true, true, &yf, NULL) == TFW_OK);
  tfw_named_tensor *sd;
  int n;
  tfw_tensor *in[8], *ref[2];
  char code[4096];
  int len = load_code(code, sizeof code, "m", "torch.nn.MultiheadAttention(8, 2)", mha, &sd, &n, in, 0);
  in[n] = x, in[n + 1] = x2;
  snprintf(code + len, sizeof code - (size_t)len,
           "cm = torch.ones(7, 7, dtype=torch.bool).triu(1)\n"
           "out = [m(a, a, a, attn_mask=cm, need_weights=False)[0] for a in (x[%d], x[%d])]\n", n, n + 1);
  th_torch_run(code, n + 2, in, 2, ref);
  expect_ref(y, ref[0], 1e-4, 1e-5, "cached chunks 1,2,1,3");
  expect_ref(y2, ref[1], 1e-4, 1e-5, "cached after reset, token by token");
  expect_ref(yf, ref[0], 1e-4, 1e-5, "full causal forward");
  tfw_release(ref[0]), tfw_release(ref[1]);
  tfw_named_tensors_free(sd, n);
  tfw_release(x), tfw_release(x2), tfw_release(y), tfw_release(y2), tfw_release(yf);
  tfw_kv_cache_free(s.cache[0]);
  tfw_module_release(mha);
  th_expect_no_leaks();
}

/* RoPE: MultiheadAttention with set_rotary, batch_first, against a torch reference written
 * out (projections, rotate_half RoPE at absolute positions, causal softmax, out_proj): the
 * full forward and the cached one, whose chunks start at positions 0, 3, 4, 5. */
Test(kv_cache, mha_rope_positions_offset_by_cache) {
  th_require_torch();
  const int64_t T = 7, N = 2, E = 8;
  tfw_manual_seed(4);
  tfw_module *mha = tfw_multihead_attention_new(E, 2, 0.0, true, true);
  cr_assert(tfw_multihead_attention_set_rotary(mha, 100.0) == TFW_OK, "%s", tfw_last_error());
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){N, T, E}, -1, 1, 41);
  stepper s = {.m = {mha}, .cache = {tfw_kv_cache_new(mha, N, T)}, .kind = 0};
  tfw_tensor *y = run_chunks(&s, x, 1, 4, (int[]){3, 1, 1, 2});
  tfw_tensor *yf = NULL;
  cr_assert(tfw_multihead_attention_forward(mha, x, x, x, NULL, false, NULL, true, true, &yf, NULL) == TFW_OK);
  tfw_named_tensor *sd;
  int n;
  tfw_tensor *in[8], *ref[1];
  char code[4096];
  int len = load_code(code, sizeof code, "m", "torch.nn.MultiheadAttention(8, 2, batch_first=True)", mha, &sd, &n, in, 0);
  in[n] = x;
  snprintf(code + len, sizeof code - (size_t)len,
           "a = x[%d]\nN, T, E, H = 2, 7, 8, 2\nhd = E // H\n"
           "W, b = m.in_proj_weight, m.in_proj_bias\n"
           "def heads(i):\n"
           "    return (a @ W[i*E:(i+1)*E].T + b[i*E:(i+1)*E]).reshape(N, T, H, hd).transpose(1, 2)\n"
           "def rope(h):\n"
           "    inv = 100.0 ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)\n"
           "    th = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]\n"
           "    emb = torch.cat([th, th], -1)\n"
           "    h1, h2 = h[..., :hd // 2], h[..., hd // 2:]\n"
           "    return h * emb.cos() + torch.cat([-h2, h1], -1) * emb.sin()\n"
           "q, k, v = rope(heads(0)), rope(heads(1)), heads(2)\n"
           "sc = (q @ k.transpose(-2, -1)) / hd ** 0.5\n"
           "sc = sc.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float('-inf'))\n"
           "o = (torch.softmax(sc, -1) @ v).transpose(1, 2).reshape(N, T, E)\n"
           "out = [m.out_proj(o)]\n", n);
  th_torch_run(code, n + 1, in, 1, ref);
  expect_ref(yf, ref[0], 1e-4, 1e-5, "RoPE full causal forward");
  expect_ref(y, ref[0], 1e-4, 1e-5, "RoPE cached chunks 3,1,1,2");
  tfw_release(ref[0]);
  tfw_named_tensors_free(sd, n);
  cr_assert(tfw_multihead_attention_set_rotary(mha, 0) == TFW_OK);
  th_expect_error(tfw_multihead_attention_set_rotary(mha, -1), TFW_EVALUE, "base", "negative base");
  tfw_module *odd = tfw_multihead_attention_new(6, 2, 0.0, true, true); /* head dim 3 */
  th_expect_error(tfw_multihead_attention_set_rotary(odd, 10000), TFW_EVALUE, "even", "odd head dim");
  tfw_module_release(odd);
  tfw_release(x), tfw_release(y), tfw_release(yf);
  tfw_kv_cache_free(s.cache[0]);
  tfw_module_release(mha);
  th_expect_no_leaks();
}

/* A GPT-style stack of two pre-norm gelu encoder layers run with caches (chunks 2, 1, 1, 2),
 * then reset and run again on another sequence, against torch's TransformerEncoderLayers
 * with the causal src mask; also an unbatched sequence-first post-norm layer. */
Test(kv_cache, gpt_stack_incremental_and_reset) {
  th_require_torch();
  const int64_t T = 6, N = 2, E = 8;
  tfw_manual_seed(5);
  stepper s = {.kind = 1, .n = 2};
  for (int l = 0; l < 2; l++) {
    s.m[l] = tfw_transformer_encoder_layer_new(E, 2, 16, 0.1, "gelu", 1e-5, true, true);
    s.cache[l] = tfw_kv_cache_new(s.m[l], N, T);
    cr_assert(s.cache[l], "%s", tfw_last_error());
  }
  /* training mode on purpose: the cached forward applies no dropout */
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){N, T, E}, -1, 1, 51);
  tfw_tensor *x2 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){N, T, E}, -1, 1, 52);
  tfw_tensor *y = run_chunks(&s, x, 1, 4, (int[]){2, 1, 1, 2});
  cr_assert_eq(tfw_kv_cache_length(s.cache[1]), T);
  for (int l = 0; l < 2; l++) tfw_kv_cache_reset(s.cache[l]);
  tfw_tensor *y2 = run_chunks(&s, x2, 1, 6, (int[]){1, 1, 1, 1, 1, 1});
  cr_assert(!tfw_tensor_requires_grad(y2), "the cached forward records no history");
  /* unbatched, sequence first, post-norm relu, single layer */
  tfw_module *u = tfw_transformer_encoder_layer_new(E, 2, 16, 0.0, "relu", 1e-5, false, false);
  stepper su = {.m = {u}, .cache = {tfw_kv_cache_new(u, 1, T)}, .kind = 1, .n = 1};
  tfw_tensor *xu = th_random(TFW_DTYPE_F32, 2, (int64_t[]){T, E}, -1, 1, 53);
  tfw_tensor *yu = run_chunks(&su, xu, 0, 3, (int[]){4, 1, 1});

  tfw_named_tensor *sd[3];
  int n[3];
  tfw_tensor *in[48], *ref[3];
  char code[8192];
  const char *ctor = "torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, 'gelu', batch_first=True, norm_first=True)";
  int len = load_code(code, sizeof code, "m0", ctor, s.m[0], &sd[0], &n[0], in, 0);
  len += load_code(code + len, sizeof code - (size_t)len, "m1", ctor, s.m[1], &sd[1], &n[1], in, n[0]);
  int k = n[0] + n[1];
  len += load_code(code + len, sizeof code - (size_t)len, "mu",
                   "torch.nn.TransformerEncoderLayer(8, 2, 16, 0.0, 'relu')", u, &sd[2], &n[2], in, k);
  k += n[2];
  in[k] = x, in[k + 1] = x2, in[k + 2] = xu;
  snprintf(code + len, sizeof code - (size_t)len,
           "cm = torch.triu(torch.full((6, 6), float('-inf'), dtype=torch.float64), 1)\n"
           "out = [m1(m0(a, src_mask=cm), src_mask=cm) for a in (x[%d], x[%d])]\n"
           "out.append(mu(x[%d], src_mask=cm))\n", k, k + 1, k + 2);
  th_torch_run(code, k + 3, in, 3, ref);
  expect_ref(y, ref[0], 1e-4, 1e-4, "GPT stack cached chunks 2,1,1,2");
  expect_ref(y2, ref[1], 1e-4, 1e-4, "GPT stack after reset, token by token");
  expect_ref(yu, ref[2], 1e-4, 1e-4, "unbatched post-norm cached");
  for (int i = 0; i < 3; i++) tfw_release(ref[i]), tfw_named_tensors_free(sd[i], n[i]);
  tfw_release(x), tfw_release(x2), tfw_release(xu), tfw_release(y), tfw_release(y2), tfw_release(yu);
  for (int l = 0; l < 2; l++) tfw_kv_cache_free(s.cache[l]), tfw_module_release(s.m[l]);
  tfw_kv_cache_free(su.cache[0]);
  tfw_module_release(u);
  th_expect_no_leaks();
}

/* Decoder layer with a cache (memory keys/values projected once) against
 * torch.nn.TransformerDecoderLayer with the causal tgt_mask and a memory_key_padding_mask;
 * after a reset, a new memory is taken. */
Test(kv_cache, decoder_incremental_with_memory) {
  th_require_torch();
  const int64_t T = 5, N = 2, S = 4, E = 8;
  tfw_manual_seed(6);
  tfw_module *dec = tfw_transformer_decoder_layer_new(E, 2, 16, 0.0, "relu", 1e-5, false, false);
  tfw_tensor *tgt = th_random(TFW_DTYPE_F32, 3, (int64_t[]){T, N, E}, -1, 1, 61);
  tfw_tensor *mem = th_random(TFW_DTYPE_F32, 3, (int64_t[]){S, N, E}, -1, 1, 62);
  tfw_tensor *mem2 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){S + 2, N, E}, -1, 1, 63);
  bool pad[8] = {0, 0, 1, 0, 0, 1, 0, 1};
  tfw_tensor *mkpm = tfw_from_data(TFW_DTYPE_BOOL, 2, (int64_t[]){N, S}, pad);
  stepper s = {.m = {dec}, .cache = {tfw_kv_cache_new(dec, N, 16)}, .kind = 2, .memory = mem, .mkpm = mkpm};
  tfw_tensor *y = run_chunks(&s, tgt, 0, 3, (int[]){2, 1, 2});
  tfw_kv_cache_reset(s.cache[0]);
  s.memory = mem2, s.mkpm = NULL;
  tfw_tensor *y2 = run_chunks(&s, tgt, 0, 5, (int[]){1, 1, 1, 1, 1});
  tfw_named_tensor *sd;
  int n;
  tfw_tensor *in[32], *ref[2];
  char code[8192];
  int len = load_code(code, sizeof code, "m", "torch.nn.TransformerDecoderLayer(8, 2, 16, 0.0)", dec, &sd, &n, in, 0);
  in[n] = tgt, in[n + 1] = mem, in[n + 2] = mem2, in[n + 3] = mkpm;
  snprintf(code + len, sizeof code - (size_t)len,
           "cm = torch.triu(torch.full((5, 5), float('-inf'), dtype=torch.float64), 1)\n"
           "out = [m(x[%d], x[%d], tgt_mask=cm, memory_key_padding_mask=x[%d]), m(x[%d], x[%d], tgt_mask=cm)]\n",
           n, n + 1, n + 3, n, n + 2);
  th_torch_run(code, n + 4, in, 2, ref);
  expect_ref(y, ref[0], 1e-4, 1e-4, "decoder cached chunks 2,1,2");
  expect_ref(y2, ref[1], 1e-4, 1e-4, "decoder cached after reset with a new memory");
  tfw_release(ref[0]), tfw_release(ref[1]);
  tfw_named_tensors_free(sd, n);
  tfw_release(tgt), tfw_release(mem), tfw_release(mem2), tfw_release(mkpm), tfw_release(y), tfw_release(y2);
  tfw_kv_cache_free(s.cache[0]);
  tfw_module_release(dec);
  th_expect_no_leaks();
}

Test(kv_cache, errors_and_max_len) {
  tfw_module *mha = tfw_multihead_attention_new(8, 2, 0.0, true, true);
  tfw_kv_cache *c = tfw_kv_cache_new(mha, 1, 4);
  cr_assert(c, "%s", tfw_last_error());
  tfw_tensor *x3 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 8}, -1, 1, 71);
  tfw_tensor *x2 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 2, 8}, -1, 1, 72);
  tfw_tensor *o = NULL;
  cr_assert(tfw_multihead_attention_forward_cached(mha, x3, c, &o) == TFW_OK, "%s", tfw_last_error());
  tfw_release(o);
  /* 3 + 2 > 4: a clear error, nothing appended, and the cache still works */
  th_expect_error(tfw_multihead_attention_forward_cached(mha, x2, c, &o), TFW_EINDEX, "max_len 4",
                  "past max_len");
  cr_assert_null(o);
  cr_assert_eq(tfw_kv_cache_length(c), 3);
  tfw_tensor *x1 = tfw_narrow(x2, 1, 0, 1);
  cr_assert(tfw_multihead_attention_forward_cached(mha, x1, c, &o) == TFW_OK, "%s", tfw_last_error());
  tfw_release(o);
  cr_assert_eq(tfw_kv_cache_length(c), 4);
  th_expect_error(tfw_multihead_attention_forward_cached(mha, x1, c, &o), TFW_EINDEX,
                  "holds 4 of max_len 4", "full cache");
  tfw_kv_cache_reset(c);
  cr_assert(tfw_multihead_attention_forward_cached(mha, x1, c, &o) == TFW_OK, "%s", tfw_last_error());
  tfw_release(o);
  /* shapes, batch, modules, NULLs */
  tfw_tensor *xb = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 1, 8}, -1, 1, 73);
  th_expect_error(tfw_multihead_attention_forward_cached(mha, xb, c, &o), TFW_ESHAPE, "batch 2",
                  "wrong batch");
  tfw_tensor *xw = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 1, 6}, -1, 1, 74);
  th_expect_error(tfw_multihead_attention_forward_cached(mha, xw, c, &o), TFW_ESHAPE, "E = 8",
                  "wrong width");
  th_expect_error(tfw_multihead_attention_forward_cached(mha, NULL, c, &o), TFW_EVALUE, "x",
                  "NULL x");
  th_expect_error(tfw_multihead_attention_forward_cached(mha, x1, NULL, &o), TFW_EVALUE, "NULL",
                  "NULL cache");
  tfw_module *other = tfw_multihead_attention_new(8, 4, 0.0, true, true);
  th_expect_error(tfw_multihead_attention_forward_cached(other, x1, c, &o), TFW_EVALUE, "heads",
                  "cache of another module shape");
  tfw_module *lin = tfw_linear_new(8, 8, true);
  cr_assert_null(tfw_kv_cache_new(lin, 1, 4));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "Linear", "kv_cache_new of a Linear");
  cr_assert_null(tfw_kv_cache_new(mha, 1, 0));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "max_len", "max_len 0");
  th_expect_error(tfw_multihead_attention_forward_cached(lin, x1, c, &o), TFW_EVALUE,
                  "not a MultiheadAttention", "Linear as attention");
  /* a decoder step that fails in the cross-attention leaves the cache as it was */
  tfw_module *dec = tfw_transformer_decoder_layer_new(8, 2, 16, 0.0, "relu", 1e-5, true, false);
  tfw_kv_cache *dc = tfw_kv_cache_new(dec, 1, 4);
  tfw_tensor *mem = th_random(TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 8}, -1, 1, 75);
  cr_assert(tfw_transformer_decoder_layer_forward_cached(dec, x1, mem, NULL, dc, &o) == TFW_OK,
            "%s", tfw_last_error());
  tfw_release(o);
  th_expect_error(tfw_transformer_decoder_layer_forward_cached(dec, x1, xw, NULL, dc, &o),
                  TFW_ESHAPE, "memory", "bad memory");
  th_expect_error(tfw_transformer_decoder_layer_forward_cached(dec, x1, x2, NULL, dc, &o),
                  TFW_ESHAPE, "tfw_kv_cache_reset", "memory changed without a reset");
  cr_assert_eq(tfw_kv_cache_length(dc), 1);
  th_expect_error(tfw_transformer_encoder_layer_forward_cached(dec, x1, dc, &o), TFW_EVALUE,
                  "not a TransformerEncoderLayer", "decoder as encoder");
  tfw_kv_cache_free(NULL);
  tfw_kv_cache_reset(NULL);
  tfw_kv_cache_free(dc), tfw_kv_cache_free(c);
  tfw_release(x1), tfw_release(x2), tfw_release(x3), tfw_release(xb), tfw_release(xw), tfw_release(mem);
  tfw_module_release(mha), tfw_module_release(other), tfw_module_release(lin), tfw_module_release(dec);
  th_expect_no_leaks();
}
