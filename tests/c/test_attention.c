/* Scaled dot-product attention against PyTorch (an explicit softmax(q k^T * scale + mask) v
 * reference computed in float64 by torch 1.13, forward and gradients), odd sizes that are no
 * multiple of the kernel's 64-blocks, causal / bool / float masks, Lq != Lk, dropout
 * (the mask sent to torch), f16, determinism across thread counts, linear memory, errors.
 * Then MultiheadAttention vs torch.nn.MultiheadAttention on the same state_dict, rotary and
 * positional encodings. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"

typedef struct {
  tfw_dtype dt;
  int nb;
  int64_t bd[2];
  int64_t Lq, Lk, E, Ev;
  bool causal;
  int mask; /* 0 none, 1 bool [Lq, Lk], 2 float [B0, 1, Lk] or [Lq, Lk], 3 float full (needs grad) */
  double scale; /* 0: default */
} sd_case;

static tfw_tensor *leaf_(tfw_tensor *t) {
  tfw_tensor_set_requires_grad(t, true);
  return t;
}

static void shape_of(const sd_case *c, int64_t L, int64_t W, int64_t *s) {
  for (int d = 0; d < c->nb; d++) s[d] = c->bd[d];
  s[c->nb] = L, s[c->nb + 1] = W;
}

static void run_case(const sd_case *c, uint64_t seed) {
  int nd = c->nb + 2;
  int64_t sq[4], sk[4], sv[4], so[4];
  shape_of(c, c->Lq, c->E, sq), shape_of(c, c->Lk, c->E, sk), shape_of(c, c->Lk, c->Ev, sv);
  shape_of(c, c->Lq, c->Ev, so);
  tfw_tensor *q = leaf_(th_random(c->dt, nd, sq, -2, 2, seed));
  tfw_tensor *k = leaf_(th_random(c->dt, nd, sk, -2, 2, seed + 1));
  tfw_tensor *v = leaf_(th_random(c->dt, nd, sv, -1, 1, seed + 2));
  tfw_tensor *go = th_random(c->dt, nd, so, -1, 1, seed + 3);
  tfw_tensor *mask = NULL;
  if (c->mask == 1) {
    tfw_tensor *r = th_random(TFW_DTYPE_F32, 2, (int64_t[]){c->Lq, c->Lk}, 0, 1, seed + 4);
    tfw_tensor *h = tfw_scalar(TFW_DTYPE_F32, 0.3);
    tfw_tensor *keep = tfw_gt(r, h);
    /* keep the first key of every row so no row is empty */
    tfw_tensor *col = tfw_arange(0, (double)c->Lk, 1, TFW_DTYPE_I64), *z = tfw_scalar(TFW_DTYPE_I64, 0);
    tfw_tensor *first = tfw_eq(col, z);
    mask = tfw_logical_or(keep, first);
    tfw_release(r), tfw_release(h), tfw_release(keep), tfw_release(col), tfw_release(z), tfw_release(first);
  } else if (c->mask == 2) {
    mask = th_random(c->dt, 3, (int64_t[]){c->bd[0], 1, c->Lk}, -2, 2, seed + 4);
  } else if (c->mask == 3) {
    mask = leaf_(th_random(c->dt, 2, (int64_t[]){c->Lq, c->Lk}, -1, 1, seed + 4));
  }
  double scale = c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->E);
  tfw_tensor *o = tfw_scaled_dot_product_attention(q, k, v, mask, 0, c->causal, c->scale);
  cr_assert(o, "sdpa: %s", tfw_last_error());
  cr_assert_eq(tfw_backward(o, go, false, false), TFW_OK, "backward: %s", tfw_last_error());
  char code[1024];
  snprintf(code, sizeof code,
           "q, k, v, go = x[0], x[1], x[2], x[3]\n"
           "s = q @ k.transpose(-2, -1) * %.17g\n"
           "m = x[4] if len(x) > 4 else None\n"
           "if m is not None and m.dtype == torch.bool: s = s.masked_fill(~m, float('-inf'))\n"
           "elif m is not None: s = s + m\n"
           "if %d: s = s.masked_fill(~torch.ones(%lld, %lld, dtype=torch.bool).tril(), float('-inf'))\n"
           "o = torch.softmax(s, -1) @ v\n"
           "ins = [q, k, v] + ([m] if m is not None and m.requires_grad and %d == 3 else [])\n"
           "out = [o] + list(torch.autograd.grad(o, ins, go))\n",
           scale, c->causal ? 1 : 0, (long long)c->Lq, (long long)c->Lk, c->mask);
  tfw_tensor *in[5] = {q, k, v, go, mask}, *ref[5] = {NULL};
  int n_ref = c->mask == 3 ? 5 : 4;
  th_torch_run(code, mask ? 5 : 4, in, n_ref, ref);
  double tol = c->dt == TFW_DTYPE_F64 ? 1e-10 : c->dt == TFW_DTYPE_F32 ? 2e-5 : 2e-2;
  tfw_tensor *got[5] = {o, tfw_tensor_grad(q), tfw_tensor_grad(k), tfw_tensor_grad(v),
                        c->mask == 3 ? tfw_tensor_grad(mask) : NULL};
  const char *names[5] = {"out", "dq", "dk", "dv", "dmask"};
  for (int i = 0; i < n_ref; i++) {
    cr_assert(got[i], "%s missing", names[i]);
    double *r = th_values(ref[i]);
    char what[128];
    snprintf(what, sizeof what, "%s (Lq %lld Lk %lld E %lld Ev %lld causal %d mask %d dtype %s)",
             names[i], (long long)c->Lq, (long long)c->Lk, (long long)c->E, (long long)c->Ev,
             c->causal, c->mask, tfw_dtype_name(c->dt));
    th_expect_close(got[i], c->dt, tfw_tensor_ndim(ref[i]), tfw_tensor_shape(ref[i]), r, tol, tol, what);
    free(r);
  }
  for (int i = 0; i < 5; i++) tfw_release(ref[i]);
  for (int i = 1; i < 5; i++) tfw_release(got[i]);
  tfw_release(q), tfw_release(k), tfw_release(v), tfw_release(go), tfw_release(mask), tfw_release(o);
}

Test(attention, matches_torch_forward_and_gradients) {
  th_require_torch();
  const sd_case cases[] = {
      {TFW_DTYPE_F32, 1, {3}, 100, 77, 24, 40, false, 0, 0},
      {TFW_DTYPE_F64, 2, {2, 3}, 70, 130, 16, 8, false, 0, 0.3},
      {TFW_DTYPE_F32, 2, {2, 2}, 130, 130, 32, 32, true, 0, 0},
      {TFW_DTYPE_F64, 1, {2}, 150, 70, 8, 12, true, 0, 0}, /* Lq > Lk causal */
      {TFW_DTYPE_F32, 1, {2}, 65, 129, 20, 20, false, 1, 0},
      {TFW_DTYPE_F64, 2, {2, 2}, 33, 90, 12, 10, true, 1, 0},
      {TFW_DTYPE_F32, 1, {2}, 66, 67, 16, 16, false, 2, 0},
      {TFW_DTYPE_F64, 1, {1}, 20, 70, 8, 4, false, 3, 0}, /* float mask with a gradient */
      {TFW_DTYPE_F64, 1, {1}, 1, 1, 1, 1, false, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i], 100 + 10 * i);
  th_expect_no_leaks();
}

Test(attention, f16_and_bf16_compute_in_f32) {
  th_require_torch();
  const sd_case cases[] = {
      {TFW_DTYPE_F16, 1, {2}, 70, 66, 16, 8, true, 0, 0},
      {TFW_DTYPE_BF16, 1, {2}, 20, 30, 8, 8, false, 1, 0},
  };
  /* forward only, loose tolerance: compare with the f32 result on the same rounded inputs */
  for (size_t i = 0; i < 2; i++) {
    const sd_case *c = &cases[i];
    int nd = c->nb + 2;
    int64_t sq[4], sk[4], sv[4];
    shape_of(c, c->Lq, c->E, sq), shape_of(c, c->Lk, c->E, sk), shape_of(c, c->Lk, c->Ev, sv);
    tfw_tensor *q = th_random(c->dt, nd, sq, -2, 2, 7), *k = th_random(c->dt, nd, sk, -2, 2, 8);
    tfw_tensor *v = th_random(c->dt, nd, sv, -1, 1, 9);
    tfw_tensor *q32 = tfw_to_dtype(q, TFW_DTYPE_F32), *k32 = tfw_to_dtype(k, TFW_DTYPE_F32),
               *v32 = tfw_to_dtype(v, TFW_DTYPE_F32);
    tfw_tensor *o = tfw_scaled_dot_product_attention(q, k, v, NULL, 0, c->causal, 0);
    tfw_tensor *o32 = tfw_scaled_dot_product_attention(q32, k32, v32, NULL, 0, c->causal, 0);
    cr_assert(o && o32 && tfw_tensor_dtype(o) == c->dt, "%s", tfw_last_error());
    tfw_tensor *ref = tfw_to_dtype(o32, c->dt); /* one rounding of the f32 result */
    double *r = th_values(ref);
    th_expect_close(o, c->dt, nd, tfw_tensor_shape(o32), r, 0, 0, "f16/bf16 = rounded f32");
    free(r);
    tfw_release(q), tfw_release(k), tfw_release(v), tfw_release(q32), tfw_release(k32);
    tfw_release(v32), tfw_release(o), tfw_release(o32), tfw_release(ref);
  }
  th_expect_no_leaks();
}

Test(attention, dropout_matches_torch_with_the_same_mask) {
  th_require_torch();
  const int64_t B = 2, Lq = 70, Lk = 90, E = 16;
  const double p = 0.25;
  tfw_manual_seed(1234);
  tfw_tensor *q = leaf_(th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, Lq, E}, -2, 2, 1));
  tfw_tensor *k = leaf_(th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, Lk, E}, -2, 2, 2));
  tfw_tensor *v = leaf_(th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, Lk, E}, -1, 1, 3));
  tfw_tensor *go = th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, Lq, E}, -1, 1, 4);
  tfw_tensor *o = tfw_scaled_dot_product_attention(q, k, v, NULL, p, true, 0);
  cr_assert(o, "%s", tfw_last_error());
  cr_assert_eq(tfw_backward(o, go, false, false), TFW_OK, "%s", tfw_last_error());
  /* the mask the call used: the same (seed, offset) as recorded in the node's attrs */
  tfw_manual_seed(1234);
  uint64_t seed;
  extern uint64_t tfw__rng_reserve(uint64_t n, uint64_t *seed_out);
  uint64_t first = tfw__rng_reserve(0, &seed);
  tfw__call mc;
  tfw__call_init(&mc, TFW__OP_sdpa_dropout_mask, 0, NULL);
  mc.a.n_ints = 3, mc.a.ints[0] = B, mc.a.ints[1] = Lq, mc.a.ints[2] = Lk;
  mc.a.dtype = TFW_DTYPE_F64, mc.a.f[0] = p, mc.a.i[0] = (int64_t)seed, mc.a.i[1] = (int64_t)first;
  tfw_tensor *M = tfw__op_run(&mc);
  cr_assert(M, "%s", tfw_last_error());
  double *mv = th_values(M);
  int64_t dropped = 0;
  for (int64_t i = 0; i < B * Lq * Lk; i++) dropped += mv[i] == 0;
  free(mv);
  double frac = (double)dropped / (double)(B * Lq * Lk);
  cr_assert(fabs(frac - p) < 0.02, "dropped fraction %g, expected about %g", frac, p);
  tfw_tensor *in[5] = {q, k, v, go, M}, *ref[4];
  th_torch_run("q, k, v, go, M = x\n"
               "s = (q @ k.transpose(-2, -1) * 0.25).masked_fill(~torch.ones(70, 90, dtype=torch.bool).tril(), float('-inf'))\n"
               "o = (torch.softmax(s, -1) * M) @ v\n"
               "out = [o] + list(torch.autograd.grad(o, [q, k, v], go))\n", 5, in, 4, ref);
  tfw_tensor *got[4] = {o, tfw_tensor_grad(q), tfw_tensor_grad(k), tfw_tensor_grad(v)};
  for (int i = 0; i < 4; i++) {
    double *r = th_values(ref[i]);
    th_expect_close(got[i], TFW_DTYPE_F64, 3, tfw_tensor_shape(ref[i]), r, 1e-10, 1e-10, "dropout");
    free(r);
    tfw_release(ref[i]);
    if (i) tfw_release(got[i]);
  }
  tfw_release(q), tfw_release(k), tfw_release(v), tfw_release(go), tfw_release(o), tfw_release(M);
  th_expect_no_leaks();
}

static void fwd_bwd(int64_t T, tfw_tensor **o_out, tfw_tensor **dq_out, uint64_t seed) {
  int64_t s[4] = {1, 2, T, 32};
  tfw_tensor *q = leaf_(th_random(TFW_DTYPE_F32, 4, s, -2, 2, seed));
  tfw_tensor *k = leaf_(th_random(TFW_DTYPE_F32, 4, s, -2, 2, seed + 1));
  tfw_tensor *v = leaf_(th_random(TFW_DTYPE_F32, 4, s, -1, 1, seed + 2));
  tfw_tensor *go = th_random(TFW_DTYPE_F32, 4, s, -1, 1, seed + 3);
  tfw_tensor *o = tfw_scaled_dot_product_attention(q, k, v, NULL, 0, true, 0);
  cr_assert(o && tfw_backward(o, go, false, false) == TFW_OK, "%s", tfw_last_error());
  *o_out = o;
  *dq_out = tfw_tensor_grad(q);
  tfw_release(q), tfw_release(k), tfw_release(v), tfw_release(go);
}

Test(attention, memory_is_linear_in_sequence_length) {
  int64_t peak[2];
  for (int r = 0; r < 2; r++) {
    int64_t T = r ? 2048 : 1024;
    tfw_memory_stats st;
    tfw_memory_stats_get(&st);
    tfw_memory_reset_peak();
    tfw_memory_stats_get(&st);
    int64_t base = st.live_bytes;
    tfw_tensor *o, *dq;
    fwd_bwd(T, &o, &dq, 5);
    tfw_memory_stats_get(&st);
    peak[r] = st.peak_bytes - base;
    tfw_release(o), tfw_release(dq);
  }
  /* inputs and grads are 2 x 32 x T floats each: ~a dozen such tensors; one T x T score
   * matrix per head would be 2 x 2048^2 x 4 = 32 MiB */
  cr_assert(peak[1] < 3 * peak[0], "peak extra bytes: %lld at T=1024, %lld at T=2048 (not linear)",
            (long long)peak[0], (long long)peak[1]);
  cr_assert(peak[1] < 8 << 20, "peak extra bytes at T=2048: %lld", (long long)peak[1]);
  th_expect_no_leaks();
}

Test(attention, deterministic_across_thread_counts) {
  tfw_tensor *o[2], *dq[2];
  int prev = tfw_get_num_threads();
  for (int r = 0; r < 2; r++) {
    tfw_set_num_threads(r ? 2 : 1);
    fwd_bwd(200, &o[r], &dq[r], 9);
  }
  tfw_set_num_threads(prev);
  for (int i = 0; i < 2; i++) {
    tfw_tensor *a = i ? dq[0] : o[0], *b = i ? dq[1] : o[1];
    double *x = th_values(a), *y = th_values(b);
    for (int64_t j = 0; j < tfw_tensor_numel(a); j++)
      cr_assert(x[j] == y[j], "%s[%lld]: %.9g (1 thread) vs %.9g (2 threads)", i ? "dq" : "out",
                (long long)j, x[j], y[j]);
    free(x), free(y);
  }
  for (int r = 0; r < 2; r++) tfw_release(o[r]), tfw_release(dq[r]);
  th_expect_no_leaks();
}

Test(attention, errors) {
  tfw_tensor *q = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 4, 8}, -1, 1, 1);
  tfw_tensor *k = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, -1, 1, 2);
  tfw_tensor *k6 = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 6}, -1, 1, 2);
  tfw_tensor *kd = th_random(TFW_DTYPE_F64, 3, (int64_t[]){2, 5, 8}, -1, 1, 2);
  tfw_tensor *qi = tfw_zeros(TFW_DTYPE_I32, 3, (int64_t[]){2, 4, 8});
  tfw_tensor *bad_mask = tfw_zeros(TFW_DTYPE_BOOL, 2, (int64_t[]){3, 5});
  tfw_tensor *imask = tfw_zeros(TFW_DTYPE_I32, 2, (int64_t[]){4, 5});
  tfw_tensor *r;
  r = tfw_scaled_dot_product_attention(q, k6, k, NULL, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "[2, 5, 6]", "E differs");
  r = tfw_scaled_dot_product_attention(q, kd, kd, NULL, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "one dtype", "dtypes differ");
  r = tfw_scaled_dot_product_attention(qi, qi, qi, NULL, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "'query' must be a floating", "int");
  r = tfw_scaled_dot_product_attention(q, k, k, bad_mask, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "attn_mask of shape [3, 5]", "mask");
  r = tfw_scaled_dot_product_attention(q, k, k, imask, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "bool or floating", "int mask");
  r = tfw_scaled_dot_product_attention(q, k, k, NULL, 1.5, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_EVALUE, "dropout_p", "p");
  r = tfw_scaled_dot_product_attention(q, NULL, k, NULL, 0, false, 0);
  th_expect_error(r ? TFW_OK : tfw_last_status(), TFW_EVALUE, "key", "NULL");
  tfw_release(q), tfw_release(k), tfw_release(k6), tfw_release(kd), tfw_release(qi);
  tfw_release(bad_mask), tfw_release(imask);
  th_expect_no_leaks();
}

/* ---- MultiheadAttention against torch.nn.MultiheadAttention (same state_dict) ----------- */

typedef struct {
  bool batch_first, need_weights;
  int64_t N, L, S, E, H;
  int masks; /* 0 none, 1 bool kpm + bool attn_mask [L, S], 2 bool kpm + float [N*H, L, S] */
} mha_case;

static void run_mha(const mha_case *c, uint64_t seed) {
  int64_t N = c->N, L = c->L, S = c->S, E = c->E, H = c->H;
  int64_t sq[3], sk[3];
  if (c->batch_first) sq[0] = N, sq[1] = L, sk[0] = N, sk[1] = S;
  else sq[0] = L, sq[1] = N, sk[0] = S, sk[1] = N;
  sq[2] = sk[2] = E;
  tfw_tensor *q = leaf_(th_random(TFW_DTYPE_F32, 3, sq, -1, 1, seed));
  tfw_tensor *k = leaf_(th_random(TFW_DTYPE_F32, 3, sk, -1, 1, seed + 1));
  tfw_tensor *v = leaf_(th_random(TFW_DTYPE_F32, 3, sk, -1, 1, seed + 2));
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 3, sq, -1, 1, seed + 3);
  tfw_tensor *kpm = NULL, *am = NULL;
  if (c->masks == 1) {
    tfw_tensor *r = th_random(TFW_DTYPE_F32, 2, (int64_t[]){N, S}, 0, 1, seed + 4);
    tfw_tensor *h = tfw_scalar(TFW_DTYPE_F32, 0.7);
    kpm = tfw_gt(r, h); /* true = padding */
    tfw_release(r);
    r = th_random(TFW_DTYPE_F32, 2, (int64_t[]){L, S}, 0, 1, seed + 5);
    am = tfw_gt(r, h);
    tfw_release(r), tfw_release(h);
    /* key 0 is always allowed so no row is empty */
    tfw_tensor *col = tfw_arange(0, (double)S, 1, TFW_DTYPE_I64), *z = tfw_scalar(TFW_DTYPE_I64, 0);
    tfw_tensor *notfirst = tfw_ne(col, z);
    tfw_tensor *k2 = tfw_logical_and(kpm, notfirst), *a2 = tfw_logical_and(am, notfirst);
    tfw_release(kpm), tfw_release(am), tfw_release(col), tfw_release(z), tfw_release(notfirst);
    kpm = k2, am = a2;
  } else if (c->masks == 2) {
    /* bool padding with a float attn_mask: torch 1.13 applies a float key_padding_mask as
     * masked_fill (nonzero = masked) while 2.x adds it (as we do), so keep it bool here */
    tfw_tensor *r = th_random(TFW_DTYPE_F32, 2, (int64_t[]){N, S}, 0, 1, seed + 4);
    tfw_tensor *h = tfw_scalar(TFW_DTYPE_F32, 0.7), *col = tfw_arange(0, (double)S, 1, TFW_DTYPE_I64);
    tfw_tensor *z = tfw_scalar(TFW_DTYPE_I64, 0), *pad = tfw_gt(r, h), *nf = tfw_ne(col, z);
    kpm = tfw_logical_and(pad, nf);
    tfw_release(r), tfw_release(h), tfw_release(col), tfw_release(z), tfw_release(pad), tfw_release(nf);
    am = th_random(TFW_DTYPE_F32, 3, (int64_t[]){N * H, L, S}, -1, 1, seed + 5);
  }
  char code[1400];
  snprintf(code, sizeof code,
           "torch.manual_seed(%d)\n"
           "m = torch.nn.MultiheadAttention(%lld, %lld, batch_first=%s).double()\n"
           "with torch.no_grad():\n"
           "    m.in_proj_bias.normal_(); m.out_proj.bias.normal_()\n"
           "q, k, v, g = x[0], x[1], x[2], x[3]\n"
           "kpm = x[4] if len(x) > 4 else None\n"
           "am = x[5] if len(x) > 5 else None\n"
           "o, w = m(q, k, v, key_padding_mask=kpm, need_weights=%s, attn_mask=am)\n"
           "ps = [m.in_proj_weight, m.in_proj_bias, m.out_proj.weight, m.out_proj.bias]\n"
           "gr = torch.autograd.grad((o * g).sum(), [q, k, v] + ps)\n"
           "out = [p.detach() for p in ps] + [o, w if w is not None else torch.zeros(1)] + list(gr)\n",
           (int)seed, (long long)E, (long long)H, c->batch_first ? "True" : "False",
           c->need_weights ? "True" : "False");
  tfw_tensor *in[6] = {q, k, v, g, kpm, am}, *ref[13];
  th_torch_run(code, kpm ? 6 : 4, in, 13, ref);
  tfw_module *m = tfw_multihead_attention_new(E, H, 0, true, c->batch_first);
  cr_assert(m, "%s", tfw_last_error());
  tfw_named_tensor sd[4] = {{"in_proj_weight", ref[0]}, {"in_proj_bias", ref[1]},
                            {"out_proj.weight", ref[2]}, {"out_proj.bias", ref[3]}};
  cr_assert_eq(tfw_module_load_state_dict(m, 4, sd, true, NULL), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *o, *w = NULL;
  cr_assert_eq(tfw_multihead_attention_forward(m, q, k, v, kpm, c->need_weights, am, true, false,
                                               &o, c->need_weights ? &w : NULL),
               TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_backward(o, g, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *got[9] = {o, w, tfw_tensor_grad(q), tfw_tensor_grad(k), tfw_tensor_grad(v),
                        tfw_tensor_grad(tfw_module_get_parameter(m, "in_proj_weight")),
                        tfw_tensor_grad(tfw_module_get_parameter(m, "in_proj_bias")),
                        tfw_tensor_grad(tfw_module_get_parameter(m, "out_proj.weight")),
                        tfw_tensor_grad(tfw_module_get_parameter(m, "out_proj.bias"))};
  const char *names[9] = {"out", "weights", "dq", "dk", "dv", "d in_proj_weight", "d in_proj_bias",
                          "d out_proj.weight", "d out_proj.bias"};
  for (int i = 0; i < 9; i++) {
    if (i == 1 && !c->need_weights) continue;
    cr_assert(got[i], "MHA %s missing", names[i]);
    double *r = th_values(ref[4 + i]);
    char what[96];
    snprintf(what, sizeof what, "MHA %s (batch_first %d, masks %d, need_weights %d)", names[i],
             c->batch_first, c->masks, c->need_weights);
    th_expect_close(got[i], TFW_DTYPE_F32, tfw_tensor_ndim(ref[4 + i]), tfw_tensor_shape(ref[4 + i]),
                    r, 1e-4, 1e-5, what);
    free(r);
  }
  for (int i = 0; i < 13; i++) tfw_release(ref[i]);
  for (int i = 0; i < 9; i++) tfw_release(got[i]);
  tfw_module_release(m);
  tfw_release(q), tfw_release(k), tfw_release(v), tfw_release(g), tfw_release(kpm), tfw_release(am);
}

Test(attention, multihead_attention_matches_torch) {
  th_require_torch();
  const mha_case cases[] = {
      {true, false, 2, 5, 5, 8, 2, 0},
      {false, true, 3, 4, 6, 12, 3, 1},
      {true, false, 2, 7, 9, 16, 4, 1},
      {true, true, 2, 3, 5, 8, 2, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_mha(&cases[i], 20 + 5 * i);
  th_expect_no_leaks();
}

Test(attention, rotary_matches_torch_reference) {
  th_require_torch();
  tfw_tensor *q = leaf_(th_random(TFW_DTYPE_F64, 4, (int64_t[]){2, 3, 7, 8}, -1, 1, 1));
  tfw_tensor *k = leaf_(th_random(TFW_DTYPE_F64, 4, (int64_t[]){2, 1, 7, 8}, -1, 1, 2));
  tfw_tensor *pos = tfw_arange(5, 12, 1, TFW_DTYPE_I64);
  tfw_tensor *qo, *ko;
  cr_assert_eq(tfw_apply_rotary(q, k, pos, 500, &qo, &ko), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *s1 = tfw_sum(qo, 0, NULL, false), *k2 = tfw_mul(ko, ko), *s2 = tfw_sum(k2, 0, NULL, false);
  tfw_tensor *s = tfw_add(s1, s2);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *in[3] = {q, k, pos}, *ref[4];
  th_torch_run("q, k, pos = x\n"
               "D = q.shape[-1]\n"
               "inv = 1.0 / (500.0 ** (torch.arange(0, D, 2).double() / D))\n"
               "emb = torch.cat([torch.outer(pos.double(), inv)] * 2, -1)\n"
               "rh = lambda t: torch.cat([-t[..., D // 2:], t[..., :D // 2]], -1)\n"
               "qo = q * emb.cos() + rh(q) * emb.sin()\n"
               "ko = k * emb.cos() + rh(k) * emb.sin()\n"
               "out = [qo, ko] + list(torch.autograd.grad(qo.sum() + (ko * ko).sum(), [q, k]))\n",
               3, in, 4, ref);
  tfw_tensor *got[4] = {qo, ko, tfw_tensor_grad(q), tfw_tensor_grad(k)};
  for (int i = 0; i < 4; i++) {
    double *r = th_values(ref[i]);
    th_expect_close(got[i], TFW_DTYPE_F64, tfw_tensor_ndim(ref[i]), tfw_tensor_shape(ref[i]), r, 1e-12,
                    1e-12, "rotary");
    free(r);
    tfw_release(ref[i]), tfw_release(got[i]);
  }
  /* the module: positions 0 .. L-1 */
  tfw_module *rm = tfw_rotary_embedding_new(8, 10000);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, -1, 1, 3);
  tfw_tensor *y = tfw_module_call(rm, x), *y2;
  cr_assert(y && tfw_apply_rotary(x, NULL, NULL, 10000, &y2, NULL) == TFW_OK);
  double *a = th_values(y2);
  th_expect_close(y, TFW_DTYPE_F32, 3, (int64_t[]){2, 5, 8}, a, 0, 0, "rotary module");
  free(a);
  tfw_release(y2);
  tfw_tensor *odd = th_random(TFW_DTYPE_F32, 2, (int64_t[]){3, 5}, 0, 1, 1);
  th_expect_error(tfw_apply_rotary(odd, NULL, NULL, 10000, &y2, NULL), TFW_ESHAPE, "D even", "odd D");
  tfw_release(odd), tfw_release(q), tfw_release(k);
  tfw_release(x), tfw_release(y), tfw_module_release(rm);
  tfw_release(pos), tfw_release(s1), tfw_release(k2), tfw_release(s2), tfw_release(s);
  th_expect_no_leaks();
}

Test(attention, positional_encodings) {
  th_require_torch();
  tfw_module *sm = tfw_sinusoidal_positional_encoding_new(6, 50);
  tfw_module *lm = tfw_learned_positional_encoding_new(20, 6);
  cr_assert(sm && lm, "%s", tfw_last_error());
  tfw_tensor *pe = tfw_module_get_buffer(sm, "pe"), *ref;
  th_torch_run("import math\n"
               "pos = torch.arange(50).unsqueeze(1)\n"
               "div = torch.exp(torch.arange(0, 6, 2) * (-math.log(10000.0) / 6))\n"
               "pe = torch.zeros(50, 6)\n"
               "pe[:, 0::2] = torch.sin(pos * div)\n"
               "pe[:, 1::2] = torch.cos(pos * div)\n"
               "out = [pe]\n", 0, NULL, 1, &ref);
  double *r = th_values(ref);
  th_expect_close(pe, TFW_DTYPE_F32, 2, (int64_t[]){50, 6}, r, 1e-6, 1e-6, "sinusoidal table");
  free(r), tfw_release(ref);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 9, 6}, -1, 1, 4);
  tfw_tensor *y = tfw_module_call(lm, x);
  cr_assert(y, "%s", tfw_last_error());
  double *xv = th_values(x), *wv = th_values(tfw_module_get_parameter(lm, "weight")), *e = malloc(sizeof(double) * 108);
  for (int b = 0; b < 2; b++)
    for (int i = 0; i < 54; i++) e[b * 54 + i] = (double)(float)(xv[b * 54 + i] + wv[i]);
  th_expect_close(y, TFW_DTYPE_F32, 3, (int64_t[]){2, 9, 6}, e, 1e-6, 1e-6, "learned");
  free(xv), free(wv), free(e), tfw_release(y);
  tfw_tensor *xl = th_random(TFW_DTYPE_F32, 2, (int64_t[]){21, 6}, -1, 1, 4);
  th_expect_error(tfw_module_call(lm, xl) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "L <= 20", "too long");
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_module_state_dict(sm, &sd, &n) == TFW_OK && n == 1 && !strcmp(sd[0].name, "pe"));
  tfw_named_tensors_free(sd, n);
  tfw_release(x), tfw_release(xl);
  tfw_module_release(sm), tfw_module_release(lm);
  th_expect_no_leaks();
}
