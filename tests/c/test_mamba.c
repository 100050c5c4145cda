/* The selective scan and the Mamba block: forward and gradients against a sequential scan
 * and a re-implementation of mamba_simple.py's forward in PyTorch (python3-torch, float64, at
 * test time); the one-step recurrence against the parallel scan; stability at 32K tokens
 * against a double-precision sequential loop; determinism across thread counts; errors. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* mamba's selective_scan_ref without delta_bias/softplus/z: a plain loop over time. */
#define TORCH_SCAN_REF                                                                      \
  "def scan_ref(u, delta, A, B, C, D):\n"                                                   \
  "  h = torch.zeros(u.shape[0], u.shape[1], A.shape[1], dtype=u.dtype)\n"                   \
  "  ys = []\n"                                                                             \
  "  for t in range(u.shape[2]):\n"                                                         \
  "    h = torch.exp(delta[:, :, t, None] * A) * h + (delta[:, :, t] * u[:, :, t])[:, :, None] * B[:, None, :, t]\n" \
  "    ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])\n"                         \
  "  return torch.stack(ys, -1), h\n"

static void expect_like(const tfw_tensor *t, const tfw_tensor *ref, double tol, const char *what) {
  cr_assert(t, "%s: missing", what);
  double *v = th_values(ref);
  th_expect_close(t, tfw_tensor_dtype(t), tfw_tensor_ndim(ref), tfw_tensor_shape(ref), v, tol, tol, what);
  free(v);
}

static tfw_tensor *leaf(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi, uint64_t seed,
                        bool strided) {
  tfw_tensor *t = strided ? th_random_strided(dt, ndim, shape, lo, hi, seed) : th_random(dt, ndim, shape, lo, hi, seed);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

static tfw_tensor *dot(const tfw_tensor *a, const tfw_tensor *b) {
  tfw_tensor *p = tfw_mul(a, b), *s = tfw_sum(p, 0, NULL, false);
  tfw_release(p);
  return s;
}

/* The six scan inputs: u, delta (> 0), A (< 0), B, C, D. */
static void scan_inputs(tfw_dtype dt, int64_t B, int64_t D, int64_t L, int64_t N, bool strided, tfw_tensor **in) {
  in[0] = leaf(dt, 3, (int64_t[]){B, D, L}, -1, 1, 1, strided);
  in[1] = leaf(dt, 3, (int64_t[]){B, D, L}, 0.01, 0.5, 2, strided);
  in[2] = leaf(dt, 2, (int64_t[]){D, N}, -3, -0.1, 3, strided);
  in[3] = leaf(dt, 3, (int64_t[]){B, N, L}, -1, 1, 4, strided);
  in[4] = leaf(dt, 3, (int64_t[]){B, N, L}, -1, 1, 5, strided);
  in[5] = leaf(dt, 1, (int64_t[]){D}, -1, 1, 6, false);
}

static void scan_vs_torch(tfw_dtype dt, int64_t B, int64_t D, int64_t L, int64_t N, bool strided, double tol) {
  th_require_torch();
  tfw_tensor *in[6];
  scan_inputs(dt, B, D, L, N, strided, in);
  tfw_tensor *y, *hl;
  cr_assert_eq(tfw_selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], &y, &hl), TFW_OK, "%s", tfw_last_error());
  cr_assert_str_eq(tfw_tensor_grad_fn_name(y), "selective_scan");
  tfw_tensor *gy = th_random(dt, 3, (int64_t[]){B, D, L}, -1, 1, 7), *gh = th_random(dt, 3, (int64_t[]){B, D, N}, -1, 1, 8);
  tfw_tensor *l1 = dot(y, gy), *l2 = dot(hl, gh), *loss = tfw_add(l1, l2);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *tin[8] = {in[0], in[1], in[2], in[3], in[4], in[5], gy, gh}, *ref[8];
  th_torch_run(TORCH_SCAN_REF
               "y, h = scan_ref(*x[:6])\n"
               "L = (y * x[6]).sum() + (h * x[7]).sum()\n"
               "out = [y, h] + list(torch.autograd.grad(L, x[:6]))\n",
               8, tin, 8, ref);
  expect_like(y, ref[0], tol, "y");
  expect_like(hl, ref[1], tol, "last state");
  const char *names[6] = {"grad u", "grad delta", "grad A", "grad B", "grad C", "grad D"};
  for (int i = 0; i < 6; i++) {
    tfw_tensor *g = tfw_tensor_grad(in[i]);
    expect_like(g, ref[2 + i], tol, names[i]);
    tfw_release(g);
  }
  for (int i = 0; i < 8; i++) tfw_release(ref[i]);
  for (int i = 0; i < 6; i++) tfw_release(in[i]);
  tfw_release(y), tfw_release(hl), tfw_release(gy), tfw_release(gh), tfw_release(l1), tfw_release(l2);
  tfw_release(loss);
  th_expect_no_leaks();
}

Test(mamba, selective_scan_matches_sequential_reference_f64) { scan_vs_torch(TFW_DTYPE_F64, 2, 3, 7, 4, false, 1e-10); }
/* 300 steps cross two chunk boundaries; strided inputs */
Test(mamba, selective_scan_across_chunks_strided) { scan_vs_torch(TFW_DTYPE_F64, 2, 3, 300, 5, true, 1e-9); }
Test(mamba, selective_scan_f32) { scan_vs_torch(TFW_DTYPE_F32, 1, 4, 260, 16, false, 1e-4); }

/* Double backward through the scan (create_graph, the composite rule) and forward mode,
 * against torch's sequential reference: the gradient of <grad_inputs L, v> (a Hessian-vector
 * product of L = <y, gy> + <h, gh>) w.r.t. all six inputs, and the tangent of y for random
 * input tangents (torch's double-backward trick for a JVP). L = 9 and 140 (two chunks for
 * the first-order fused kernel). */
static void scan_second_order_vs_torch(int64_t L, bool strided) {
  th_require_torch();
  const int64_t B = 2, D = 3, N = 4;
  tfw_tensor *in[6];
  scan_inputs(TFW_DTYPE_F64, B, D, L, N, strided, in);
  tfw_tensor *y, *hl;
  cr_assert_eq(tfw_selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], &y, &hl), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *gy = th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, D, L}, -1, 1, 7);
  tfw_tensor *gh = th_random(TFW_DTYPE_F64, 3, (int64_t[]){B, D, N}, -1, 1, 8);
  tfw_tensor *l1 = dot(y, gy), *l2 = dot(hl, gh), *loss = tfw_add(l1, l2);
  tfw_tensor *g[6] = {NULL}, *v[6], *gg = NULL;
  cr_assert_eq(tfw_grad(1, &loss, 6, in, NULL, false, true, false, g), TFW_OK, "%s", tfw_last_error());
  for (int i = 0; i < 6; i++) {
    v[i] = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(in[i]), tfw_tensor_shape(in[i]), -1, 1, 20 + (uint64_t)i);
    cr_assert(tfw_tensor_requires_grad(g[i]), "grad %d is recorded", i);
    tfw_tensor *d = dot(g[i], v[i]);
    if (gg) {
      tfw_tensor *t = tfw_add(gg, d);
      tfw_release(gg), tfw_release(d);
      gg = t;
    } else {
      gg = d;
    }
  }
  tfw_tensor *hv[6] = {NULL};
  cr_assert_eq(tfw_grad(1, &gg, 6, in, NULL, false, false, false, hv), TFW_OK, "%s", tfw_last_error());
  /* forward mode: tangents v on detached copies */
  tfw_tensor *xd[6];
  for (int i = 0; i < 6; i++) {
    xd[i] = tfw_detach(in[i]);
    cr_assert(tfw_tensor_set_tangent(xd[i], v[i]) == TFW_OK);
  }
  tfw_tensor *yd, *hd;
  cr_assert_eq(tfw_selective_scan(xd[0], xd[1], xd[2], xd[3], xd[4], xd[5], &yd, &hd), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *ty = tfw_tensor_tangent(yd), *th = tfw_tensor_tangent(hd);
  tfw_tensor *tin[14] = {in[0], in[1], in[2], in[3], in[4], in[5], gy, gh, v[0], v[1], v[2], v[3], v[4], v[5]};
  tfw_tensor *ref[10];
  th_torch_run(TORCH_SCAN_REF
               "xs = x[:6]\n"
               "y, h = scan_ref(*xs)\n"
               "L = (y * x[6]).sum() + (h * x[7]).sum()\n"
               "g = torch.autograd.grad(L, xs, create_graph=True)\n"
               "hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, x[8:])), xs, retain_graph=True)\n"
               "w = [torch.zeros_like(y, requires_grad=True), torch.zeros_like(h, requires_grad=True)]\n"
               "vj = torch.autograd.grad([y, h], xs, w, create_graph=True)\n"
               "jv = torch.autograd.grad(vj, w, x[8:])\n"
               "out = list(hv) + [jv[0], jv[1]] + [y, h]\n",
               14, tin, 10, ref);
  const char *names[6] = {"hvp u", "hvp delta", "hvp A", "hvp B", "hvp C", "hvp D"};
  for (int i = 0; i < 6; i++) expect_like(hv[i], ref[i], 1e-9, names[i]);
  expect_like(ty, ref[6], 1e-9, "tangent y");
  expect_like(th, ref[7], 1e-9, "tangent state");
  for (int i = 0; i < 10; i++) tfw_release(ref[i]);
  for (int i = 0; i < 6; i++) tfw_release(in[i]), tfw_release(g[i]), tfw_release(v[i]), tfw_release(hv[i]), tfw_release(xd[i]);
  tfw_release(y), tfw_release(hl), tfw_release(gy), tfw_release(gh), tfw_release(l1), tfw_release(l2), tfw_release(loss);
  tfw_release(gg), tfw_release(yd), tfw_release(hd), tfw_release(ty), tfw_release(th);
  th_expect_no_leaks();
}

Test(mamba, selective_scan_double_backward_and_jvp) { scan_second_order_vs_torch(9, false); }
Test(mamba, selective_scan_double_backward_across_chunks_strided) { scan_second_order_vs_torch(140, true); }

/* The one-step form reproduces the scan token by token (y_t and the final state). */
Test(mamba, state_update_reproduces_the_scan) {
  const int64_t B = 2, D = 3, L = 9, N = 4;
  tfw_tensor *in[6];
  scan_inputs(TFW_DTYPE_F64, B, D, L, N, false, in);
  tfw_tensor *y, *hl;
  cr_assert_eq(tfw_selective_scan(in[0], in[1], in[2], in[3], in[4], in[5], &y, &hl), TFW_OK);
  tfw_tensor *state = tfw_zeros(TFW_DTYPE_F64, 3, (int64_t[]){B, D, N});
  for (int64_t t = 0; t < L; t++) {
    tfw_tensor *x = tfw_select(in[0], 2, t), *dt = tfw_select(in[1], 2, t), *Bt = tfw_select(in[3], 2, t);
    tfw_tensor *Ct = tfw_select(in[4], 2, t), *yt, *s2, *yref = tfw_select(y, 2, t);
    cr_assert_eq(tfw_selective_state_update(state, x, dt, in[2], Bt, Ct, in[5], &yt, &s2), TFW_OK, "%s",
                 tfw_last_error());
    expect_like(yt, yref, 1e-12, "step y");
    tfw_release(state);
    state = s2;
    tfw_release(x), tfw_release(dt), tfw_release(Bt), tfw_release(Ct), tfw_release(yt), tfw_release(yref);
  }
  expect_like(state, hl, 1e-12, "step state");
  tfw_release(state), tfw_release(y), tfw_release(hl);
  for (int i = 0; i < 6; i++) tfw_release(in[i]);
  th_expect_no_leaks();
}

/* T = 32768, dt = softplus(N(0,1) - 4): finite, and within 1e-4 (relative to the output's
 * scale) of a sequential scan in double precision; same bits with 1 and 2 threads. */
Test(mamba, stable_at_32k_tokens) {
  const int64_t B = 1, D = 4, L = 32768, N = 16;
  tfw_manual_seed(11);
  tfw_tensor *z = tfw_randn(TFW_DTYPE_F32, 3, (int64_t[]){B, D, L}), *z4 = tfw_add_scalar(z, -4.0);
  tfw_tensor *delta = tfw_softplus(z4, 1.0, 20.0);
  tfw_tensor *u = tfw_randn(TFW_DTYPE_F32, 3, (int64_t[]){B, D, L});
  tfw_tensor *Bm = tfw_randn(TFW_DTYPE_F32, 3, (int64_t[]){B, N, L}), *Cm = tfw_randn(TFW_DTYPE_F32, 3, (int64_t[]){B, N, L});
  tfw_tensor *ar = tfw_arange(1, N + 1, 1, TFW_DTYPE_F32), *ar2 = tfw_expand(ar, 2, (int64_t[]){D, N});
  tfw_tensor *A = tfw_neg(ar2), *Dv = tfw_ones(TFW_DTYPE_F32, 1, (int64_t[]){D});
  tfw_tensor *y, *hl;
  cr_assert_eq(tfw_selective_scan(u, delta, A, Bm, Cm, Dv, &y, &hl), TFW_OK, "%s", tfw_last_error());
  double *uv = th_values(u), *dv = th_values(delta), *av = th_values(A), *bv = th_values(Bm), *cv = th_values(Cm);
  double *yv = th_values(y), *ref = malloc(sizeof(double) * (size_t)(D * L)), scale = 0;
  for (int64_t d = 0; d < D; d++) {
    double h[16] = {0};
    for (int64_t t = 0; t < L; t++) {
      double acc = 0, dt = dv[d * L + t];
      for (int64_t n = 0; n < N; n++) {
        h[n] = exp(dt * av[d * N + n]) * h[n] + dt * bv[n * L + t] * uv[d * L + t];
        acc += cv[n * L + t] * h[n];
      }
      ref[d * L + t] = acc + uv[d * L + t];
      scale = fmax(scale, fabs(ref[d * L + t]));
    }
  }
  double worst = 0;
  for (int64_t i = 0; i < D * L; i++) {
    cr_assert(isfinite(yv[i]), "y[%lld] is not finite", (long long)i);
    worst = fmax(worst, fabs(yv[i] - ref[i]) / (1e-6 + fabs(ref[i]) + 1e-3 * scale));
  }
  cr_assert(worst <= 1e-4, "relative error %g", worst);
  /* deterministic for any thread count */
  int prev = tfw_get_num_threads();
  tfw_set_num_threads(1);
  tfw_tensor *y1;
  cr_assert_eq(tfw_selective_scan(u, delta, A, Bm, Cm, Dv, &y1, NULL), TFW_OK);
  tfw_set_num_threads(prev);
  bool same = false;
  cr_assert(tfw_equal(y, y1, &same) == TFW_OK && same, "same bits with 1 thread");
  free(uv), free(dv), free(av), free(bv), free(cv), free(yv), free(ref);
  tfw_release(z), tfw_release(z4), tfw_release(delta), tfw_release(u), tfw_release(Bm), tfw_release(Cm);
  tfw_release(ar), tfw_release(ar2), tfw_release(A), tfw_release(Dv), tfw_release(y), tfw_release(hl);
  tfw_release(y1);
  th_expect_no_leaks();
}

static const char *k_mamba_params[9] = {"in_proj.weight", "conv1d.weight", "conv1d.bias", "x_proj.weight",
                                        "dt_proj.weight", "dt_proj.bias", "A_log", "D", "out_proj.weight"};

static void mamba_vs_torch(int64_t Bt, int64_t L) {
  th_require_torch();
  tfw_manual_seed(5);
  const int64_t M = 8, N = 4, K = 4;
  tfw_module *m = tfw_mamba_new(M, N, K, 2, 0);
  cr_assert(m, "%s", tfw_last_error());
  tfw_tensor *x = leaf(TFW_DTYPE_F32, 3, (int64_t[]){Bt, L, M}, -1, 1, 1, false);
  tfw_tensor *y = tfw_module_call(m, x);
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *gy = th_random(TFW_DTYPE_F32, 3, (int64_t[]){Bt, L, M}, -1, 1, 2), *loss = dot(y, gy);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *tin[11] = {x, gy};
  for (int i = 0; i < 9; i++) tin[2 + i] = tfw_module_get_parameter(m, k_mamba_params[i]);
  tfw_tensor *ref[11];
  th_torch_run(TORCH_SCAN_REF
               "xin, gy, W_in, cw, cb, W_x, W_dt, b_dt, A_log, Dp, W_out = x\n"
               "E, K, N = cw.shape[0], cw.shape[2], A_log.shape[1]\n"
               "R = W_dt.shape[1]\n"
               "Lq = xin.shape[1]\n"
               "xz = xin @ W_in.t()\n"
               "xs, z = xz.chunk(2, dim=-1)\n"
               "xs = F.conv1d(xs.transpose(1, 2), cw, cb, padding=K - 1, groups=E)[..., :Lq]\n"
               "xs = F.silu(xs)\n"
               "xdbl = xs.transpose(1, 2) @ W_x.t()\n"
               "dt, Bm, Cm = torch.split(xdbl, [R, N, N], dim=-1)\n"
               "delta = F.softplus(dt @ W_dt.t() + b_dt).transpose(1, 2)\n"
               "A = -torch.exp(A_log)\n"
               "y, _ = scan_ref(xs, delta, A, Bm.transpose(1, 2), Cm.transpose(1, 2), Dp)\n"
               "y = y * F.silu(z.transpose(1, 2))\n"
               "o = y.transpose(1, 2) @ W_out.t()\n"
               "L = (o * gy).sum()\n"
               "g = torch.autograd.grad(L, [xin, W_in, cw, cb, W_x, W_dt, b_dt, A_log, Dp, W_out])\n"
               "out = [o] + list(g)\n",
               11, tin, 11, ref);
  expect_like(y, ref[0], 1e-5, "Mamba output");
  tfw_tensor *gx = tfw_tensor_grad(x);
  expect_like(gx, ref[1], 1e-5, "grad x");
  tfw_release(gx);
  for (int i = 0; i < 9; i++) {
    tfw_tensor *g = tfw_tensor_grad(tin[2 + i]);
    char what[64];
    snprintf(what, sizeof what, "grad %s", k_mamba_params[i]);
    expect_like(g, ref[2 + i], 1e-5, what);
    tfw_release(g);
  }
  for (int i = 0; i < 11; i++) tfw_release(ref[i]);
  tfw_release(x), tfw_release(y), tfw_release(gy), tfw_release(loss);
  tfw_module_release(m);
  th_expect_no_leaks();
}

Test(mamba, block_matches_torch) { mamba_vs_torch(2, 7); }
Test(mamba, block_matches_torch_across_chunks) { mamba_vs_torch(1, 150); }

Test(mamba, parameter_names_and_init) {
  tfw_module *m = tfw_mamba_new(20, 16, 4, 2, 0);
  tfw_named_tensor *ps;
  int np;
  cr_assert(tfw_module_named_parameters(m, &ps, &np) == TFW_OK);
  cr_assert_eq(np, 9);
  for (int i = 0; i < 9; i++) {
    bool found = false;
    for (int j = 0; j < np; j++) found = found || !strcmp(ps[j].name, k_mamba_params[i]);
    cr_assert(found, "%s missing", k_mamba_params[i]);
  }
  const int64_t E = 40, R = 2;
  cr_assert_eq(tfw_tensor_shape(tfw_module_get_parameter(m, "in_proj.weight"))[0], 2 * E);
  cr_assert_eq(tfw_tensor_shape(tfw_module_get_parameter(m, "x_proj.weight"))[0], R + 32);
  cr_assert_eq(tfw_tensor_shape(tfw_module_get_parameter(m, "conv1d.weight"))[2], 4);
  double *al = th_values(tfw_module_get_parameter(m, "A_log")), *bd = th_values(tfw_module_get_parameter(m, "dt_proj.bias"));
  cr_assert(fabs(al[E * 16 - 1] - log(16.0)) < 1e-6);
  for (int64_t e = 0; e < E; e++) { /* softplus(bias) in [dt_min, dt_max] */
    double dt = log1p(exp(bd[e]));
    cr_assert(dt >= 0.999e-3 && dt <= 0.1001, "dt %g", dt);
  }
  free(al), free(bd);
  tfw_named_tensors_free(ps, np);
  tfw_module_release(m);
  th_expect_no_leaks();
}

/* tfw_mamba_step, token by token from zero states, gives the block's forward output. */
Test(mamba, step_reproduces_forward) {
  tfw_manual_seed(9);
  const int64_t Bt = 2, L = 6, M = 8, N = 4, K = 4, E = 16;
  tfw_module *m = tfw_mamba_new(M, N, K, 2, 0);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){Bt, L, M}, -1, 1, 3);
  tfw_tensor *y = tfw_module_call(m, x);
  tfw_tensor *cs = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){Bt, E, K}), *ss = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){Bt, E, N});
  for (int64_t t = 0; t < L; t++) {
    tfw_tensor *xt = tfw_select(x, 1, t), *yref = tfw_select(y, 1, t), *yt, *cs2, *ss2;
    cr_assert_eq(tfw_mamba_step(m, xt, cs, ss, &yt, &cs2, &ss2), TFW_OK, "%s", tfw_last_error());
    expect_like(yt, yref, 1e-5, "step output");
    tfw_release(cs), tfw_release(ss), tfw_release(xt), tfw_release(yref), tfw_release(yt);
    cs = cs2, ss = ss2;
  }
  tfw_release(cs), tfw_release(ss), tfw_release(x), tfw_release(y);
  tfw_module_release(m);
  th_expect_no_leaks();
}

Test(mamba, bad_input_gives_clean_errors) {
  tfw_tensor *in[6], *y = NULL;
  scan_inputs(TFW_DTYPE_F32, 1, 2, 4, 3, false, in);
  th_expect_error(tfw_selective_scan(in[0], in[1], in[2], in[4], in[4], in[0], &y, NULL), TFW_ESHAPE,
                  "selective_scan: D has shape [1, 2, 4], expected [2]", "D shape");
  th_expect_error(tfw_selective_scan(in[0], in[0], in[1], in[3], in[4], in[5], &y, NULL), TFW_ESHAPE,
                  "selective_scan: A must be [channels, d_state]", "A shape");
  th_expect_error(tfw_selective_scan(NULL, in[1], in[2], in[3], in[4], in[5], &y, NULL), TFW_EVALUE,
                  "selective_scan", "NULL u");
  tfw_tensor *ui = tfw_zeros(TFW_DTYPE_I32, 3, (int64_t[]){1, 2, 4});
  th_expect_error(tfw_selective_scan(ui, in[1], in[2], in[3], in[4], in[5], &y, NULL), TFW_EDTYPE,
                  "selective_scan", "int u");
  cr_assert_null(tfw_mamba_new(0, 16, 4, 2, 0));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "Mamba", "d_model 0");
  tfw_module *m = tfw_mamba_new(4, 2, 3, 2, 0);
  tfw_tensor *x = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 5});
  cr_assert_null(tfw_module_call(m, x));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "Mamba: input of shape [1, 3, 5]", "wrong d_model");
  tfw_release(x), tfw_release(ui);
  tfw_module_release(m);
  for (int i = 0; i < 6; i++) tfw_release(in[i]);
  th_expect_no_leaks();
}
