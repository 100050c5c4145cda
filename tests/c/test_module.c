/* Modules: Linear against PyTorch (forward and gradients, same weights), PyTorch's key names
 * and order, state_dict round trips and strict-mode errors, train/eval, hooks, initialisers
 * (bounds, moments, orthogonality, gains and fans as torch.nn.init computes them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(module, linear_matches_pytorch) {
  th_require_torch();
  tfw_manual_seed(5);
  tfw_module *lin = tfw_linear_new(5, 3, true);
  cr_assert(lin);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){4, 5}, -1, 1, 1);
  tfw_tensor *g = th_random(TFW_DTYPE_F32, 2, (int64_t[]){4, 3}, -1, 1, 2);
  tfw_tensor_set_requires_grad(x, true);
  tfw_tensor *y = tfw_module_call(lin, x);
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *yg = tfw_mul(y, g);
  tfw_tensor *loss = tfw_sum(yg, 0, NULL, false);
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *W = tfw_module_get_parameter(lin, "weight"), *b = tfw_module_get_parameter(lin, "bias");
  tfw_tensor *in[4] = {x, W, b, g}, *ref[4];
  th_torch_run("y = F.linear(x[0], x[1], x[2])\n"
               "gx, gw, gb = torch.autograd.grad((y * x[3]).sum(), [x[0], x[1], x[2]])\n"
               "out = [y, gx, gw, gb]\n", 4, in, 4, ref);
  tfw_tensor *gx = tfw_tensor_grad(x), *gw = tfw_tensor_grad(W), *gb = tfw_tensor_grad(b);
  tfw_tensor *got[4] = {y, gx, gw, gb};
  const char *what[4] = {"Linear forward", "grad input", "grad weight", "grad bias"};
  for (int k = 0; k < 4; k++) {
    double *r = th_values(ref[k]);
    th_expect_close(got[k], TFW_DTYPE_F32, tfw_tensor_ndim(ref[k]), tfw_tensor_shape(ref[k]), r, 1e-5, 1e-6, what[k]);
    free(r);
    tfw_release(ref[k]);
  }
  tfw_release(gx), tfw_release(gw), tfw_release(gb);
  tfw_release(x), tfw_release(g), tfw_release(y), tfw_release(yg), tfw_release(loss);
  tfw_module_release(lin);
  th_expect_no_leaks();
}

static tfw_module *mlp(void) {
  tfw_module *parts[3] = {tfw_linear_new(4, 8, true), tfw_activation_new("relu"), tfw_linear_new(8, 2, false)};
  tfw_module *seq = tfw_sequential_new(3, parts);
  for (int i = 0; i < 3; i++) tfw_module_release(parts[i]);
  return seq;
}

Test(module, names_order_and_state_dict) {
  tfw_module *m = mlp();
  cr_assert(m, "%s", tfw_last_error());
  tfw_named_tensor *p;
  int n;
  cr_assert(tfw_module_named_parameters(m, &p, &n) == TFW_OK);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(p[0].name, "0.weight");
  cr_assert_str_eq(p[1].name, "0.bias");
  cr_assert_str_eq(p[2].name, "2.weight");
  cr_assert(tfw_tensor_requires_grad(p[0].tensor));
  tfw_named_tensors_free(p, n);
  cr_assert_eq(tfw_module_num_parameters(m), 4 * 8 + 8 + 8 * 2);
  cr_assert(tfw_module_get_parameter(m, "2.bias") == NULL, "bias=False has no parameter");
  cr_assert(tfw_module_get_parameter(m, "0.weight") != NULL);
  cr_assert(tfw_module_get_child(m, "1") != NULL && !strcmp(tfw_module_type(tfw_module_get_child(m, "1")), "ReLU"));
  /* a buffer, persistent and not */
  tfw_tensor *rm = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){8});
  tfw_tensor *tmp = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){1});
  cr_assert(tfw_module_register_buffer(tfw_module_get_child(m, "0"), "running", rm, true) == TFW_OK);
  cr_assert(tfw_module_register_buffer(m, "scratch", tmp, false) == TFW_OK);
  tfw_release(rm), tfw_release(tmp);
  tfw_named_tensor *sd;
  int ns;
  cr_assert(tfw_module_state_dict(m, &sd, &ns) == TFW_OK);
  cr_assert_eq(ns, 4);
  cr_assert_str_eq(sd[2].name, "0.running"); /* own params, own buffers, then children */
  cr_assert(!tfw_tensor_requires_grad(sd[0].tensor), "state_dict tensors are detached");
  /* load into a fresh model: values equal afterwards */
  tfw_module *m2 = mlp();
  tfw_tensor *rm2 = tfw_ones(TFW_DTYPE_F32, 1, (int64_t[]){8});
  tfw_module_register_buffer(tfw_module_get_child(m2, "0"), "running", rm2, true);
  tfw_release(rm2);
  cr_assert_eq(tfw_module_load_state_dict(m2, ns, sd, true, NULL), TFW_OK, "%s", tfw_last_error());
  bool eq;
  tfw_equal(tfw_module_get_parameter(m2, "2.weight"), tfw_module_get_parameter(m, "2.weight"), &eq);
  cr_assert(eq);
  tfw_equal(tfw_module_get_buffer(m2, "0.running"), tfw_module_get_buffer(m, "0.running"), &eq);
  cr_assert(eq);
  /* strict errors name every offending key */
  tfw_named_tensor bad[2] = {{"0.weight", tfw_zeros(TFW_DTYPE_F32, 2, (int64_t[]){3, 3})},
                             {"extra.thing", tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){1})}};
  tfw_status st = tfw_module_load_state_dict(m2, 2, bad, true, NULL);
  th_expect_error(st, TFW_EVALUE, "missing key(s) [0.bias, 0.running, 2.weight]", "strict load");
  cr_assert(strstr(tfw_last_error(), "unexpected key(s) [extra.thing]"));
  cr_assert(strstr(tfw_last_error(), "0.weight: checkpoint [3, 3], model [8, 4]"));
  char *report = NULL;
  tfw_named_tensor ok1[1] = {{"extra.thing", bad[1].tensor}};
  cr_assert_eq(tfw_module_load_state_dict(m2, 1, ok1, false, &report), TFW_OK);
  cr_assert(report && strstr(report, "unexpected keys: [extra.thing]"));
  tfw_string_free(report);
  tfw_release(bad[0].tensor), tfw_release(bad[1].tensor);
  tfw_named_tensors_free(sd, ns);
  tfw_module_release(m), tfw_module_release(m2);
  th_expect_no_leaks();
}

static int g_fwd, g_pre, g_bwd;
static void fwd_hook(tfw_module *m, int n_in, tfw_tensor *const *in, int n_out, tfw_tensor *const *out, void *ctx) {
  g_fwd++;
  cr_assert_eq(tfw_tensor_shape(out[0])[1], 2);
}
static void pre_hook(tfw_module *m, int n_in, tfw_tensor *const *in, void *ctx) { g_pre++; }
static void bwd_hook(tfw_module *m, int k, const tfw_tensor *g, void *ctx) {
  g_bwd++;
  cr_assert_eq(k, 0);
  cr_assert_eq(tfw_tensor_shape(g)[1], 2);
}

Test(module, train_eval_hooks_errors) {
  tfw_module *m = mlp();
  tfw_module_train(m, false);
  cr_assert(!tfw_module_is_training(m) && !tfw_module_is_training(tfw_module_get_child(m, "0")));
  tfw_module_train(m, true);
  cr_assert(tfw_module_is_training(tfw_module_get_child(m, "2")));
  g_fwd = g_pre = g_bwd = 0;
  tfw_module_register_forward_hook(m, fwd_hook, NULL);
  tfw_module_register_forward_pre_hook(m, pre_hook, NULL);
  tfw_module_register_backward_hook(m, bwd_hook, NULL);
  tfw_tensor *x = tfw_ones(TFW_DTYPE_F32, 2, (int64_t[]){3, 4});
  tfw_tensor *y = tfw_module_call(m, x);
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  cr_assert(g_fwd == 1 && g_pre == 1 && g_bwd == 1, "hooks ran %d %d %d", g_fwd, g_pre, g_bwd);
  tfw_tensor *gw = tfw_tensor_grad(tfw_module_get_parameter(m, "0.weight"));
  cr_assert(gw != NULL);
  tfw_release(gw);
  tfw_module_zero_grad(m);
  cr_assert(tfw_tensor_grad(tfw_module_get_parameter(m, "0.weight")) == NULL);
  /* errors */
  tfw_tensor *bad = tfw_ones(TFW_DTYPE_F32, 2, (int64_t[]){3, 5});
  th_expect_error(tfw_module_call(m, bad) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "Linear: input of shape [3, 5], expected last dimension 4", "wrong features");
  tfw_tensor *i = tfw_ones(TFW_DTYPE_I32, 1, (int64_t[]){2});
  th_expect_error(tfw_module_register_parameter(m, "w", i), TFW_EDTYPE, "must be floating-point", "int param");
  th_expect_error(tfw_module_register_parameter(m, "a.b", x), TFW_EVALUE, "must not contain '.'", "dotted");
  th_expect_error(tfw_module_register_parameter(m, "0", x), TFW_EVALUE, "already a member", "clash");
  cr_assert(tfw_activation_new("nope") == NULL && tfw_last_status() == TFW_EVALUE);
  tfw_release(x), tfw_release(y), tfw_release(s), tfw_release(bad), tfw_release(i);
  tfw_module_release(m);
  th_expect_no_leaks();
}

static void moments(const tfw_tensor *t, double *mean, double *var, double *mn, double *mx) {
  double *v = th_values(t);
  int64_t n = tfw_tensor_numel(t);
  double s = 0, s2 = 0;
  *mn = INFINITY, *mx = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    s += v[i], s2 += v[i] * v[i];
    if (v[i] < *mn) *mn = v[i];
    if (v[i] > *mx) *mx = v[i];
  }
  *mean = s / (double)n;
  *var = s2 / (double)n - *mean * *mean;
  free(v);
}

Test(module, initialisers) {
  tfw_manual_seed(11);
  double mean, var, mn, mx;
  tfw_tensor *w = tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){256, 400});
  /* Linear's default: U(-1/sqrt(in), 1/sqrt(in)) */
  cr_assert(tfw_init_kaiming_uniform_(w, sqrt(5.0), TFW_FAN_IN, "leaky_relu") == TFW_OK);
  moments(w, &mean, &var, &mn, &mx);
  double bound = 1.0 / sqrt(400.0);
  cr_assert(mn >= -bound && mx <= bound && mx > 0.99 * bound, "kaiming_uniform bounds %g %g", mn, mx);
  cr_assert(fabs(var - bound * bound / 3) < 0.03 * bound * bound / 3, "uniform variance %g", var);
  cr_assert(tfw_init_xavier_normal_(w, 1.0) == TFW_OK);
  moments(w, &mean, &var, &mn, &mx);
  cr_assert(fabs(var - 2.0 / 656) < 0.03 * 2.0 / 656 && fabs(mean) < 0.002, "xavier_normal var %g", var);
  cr_assert(tfw_init_kaiming_normal_(w, 0, TFW_FAN_OUT, "relu") == TFW_OK);
  moments(w, &mean, &var, &mn, &mx);
  cr_assert(fabs(var - 2.0 / 256) < 0.03 * 2.0 / 256, "kaiming_normal var %g", var);
  cr_assert(tfw_init_trunc_normal_(w, 0.5, 1.0, -1.0, 1.5) == TFW_OK);
  moments(w, &mean, &var, &mn, &mx);
  cr_assert(mn >= -1.0 && mx <= 1.5, "trunc_normal range %g %g", mn, mx);
  /* truncated N(0.5, 1) on [-1, 1.5]: mean 0.5 + (phi(-1.5) - phi(1)) / (Phi(1) - Phi(-1.5)) */
  double phi_a = exp(-1.125) / sqrt(2 * M_PI), phi_b = exp(-0.5) / sqrt(2 * M_PI);
  double Z = 0.5 * erfc(-1 / sqrt(2.0)) - 0.5 * erfc(1.5 / sqrt(2.0));
  cr_assert(fabs(mean - (0.5 + (phi_a - phi_b) / Z)) < 0.01, "trunc_normal mean %g", mean);
  /* orthogonal: rows orthonormal (256 <= 400) */
  cr_assert(tfw_init_orthogonal_(w, 1.0) == TFW_OK);
  tfw_tensor *wt = tfw_transpose(w, 0, 1);
  tfw_tensor *wwt = tfw_matmul(w, wt);
  tfw_tensor *eye = tfw_eye(256, 256, TFW_DTYPE_F32);
  bool close;
  cr_assert(tfw_allclose(wwt, eye, 0, 1e-4, false, &close) == TFW_OK && close, "W W^T != I");
  /* gains and fans, as torch.nn.init */
  cr_assert(fabs(tfw_init_calculate_gain("relu", 0) - sqrt(2.0)) < 1e-15);
  cr_assert(fabs(tfw_init_calculate_gain("tanh", 0) - 5.0 / 3) < 1e-15);
  cr_assert(fabs(tfw_init_calculate_gain("leaky_relu", 0.2) - sqrt(2.0 / 1.04)) < 1e-15);
  cr_assert(fabs(tfw_init_calculate_gain("selu", 0) - 0.75) < 1e-15);
  tfw_tensor *conv = tfw_empty(TFW_DTYPE_F32, 4, (int64_t[]){8, 4, 3, 3});
  int64_t fi, fo;
  cr_assert(tfw_init_fans(conv, &fi, &fo) == TFW_OK && fi == 36 && fo == 72);
  tfw_tensor *v = tfw_empty(TFW_DTYPE_F32, 1, (int64_t[]){3});
  th_expect_error(tfw_init_fans(v, &fi, &fo), TFW_ESHAPE, "at least 2 dimensions", "1-d fans");
  tfw_release(w), tfw_release(wt), tfw_release(wwt), tfw_release(eye), tfw_release(conv), tfw_release(v);
  th_expect_no_leaks();
}
