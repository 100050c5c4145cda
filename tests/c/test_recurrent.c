/* LSTM and GRU against torch.nn.LSTM / torch.nn.GRU (python3-torch at test time, float64) with
 * the same weights and inputs: outputs, final states, and the gradients of a random linear
 * functional of them w.r.t. the input, the initial states and every parameter. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct rnn_case {
  bool lstm;
  int64_t T, N, I, H;
  int layers;
  bool bias, batch_first, bidir, with_state;
} rnn_case;

static tfw_tensor *leaf(int ndim, const int64_t *shape, uint64_t seed) {
  tfw_tensor *t = th_random(TFW_DTYPE_F32, ndim, shape, -1, 1, seed);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

/* sum(a * b) as a 0-d tensor */
static tfw_tensor *dot(const tfw_tensor *a, const tfw_tensor *b) {
  tfw_tensor *p = tfw_mul(a, b), *s = tfw_sum(p, 0, NULL, false);
  tfw_release(p);
  return s;
}

static void expect_like(const tfw_tensor *t, const tfw_tensor *ref, double tol, const char *what) {
  cr_assert(t, "%s: missing", what);
  double *v = th_values(ref);
  th_expect_close(t, tfw_tensor_dtype(t), tfw_tensor_ndim(ref), tfw_tensor_shape(ref), v, tol, tol, what);
  free(v);
}

static void run_case(const rnn_case *k) {
  th_require_torch();
  tfw_manual_seed(7);
  tfw_module *m = k->lstm ? tfw_lstm_new(k->I, k->H, k->layers, k->bias, k->batch_first, 0.0, k->bidir)
                          : tfw_gru_new(k->I, k->H, k->layers, k->bias, k->batch_first, 0.0, k->bidir);
  cr_assert(m, "%s", tfw_last_error());
  const int dirs = k->bidir ? 2 : 1;
  const int64_t xs[3] = {k->batch_first ? k->N : k->T, k->batch_first ? k->T : k->N, k->I};
  const int64_t ss[3] = {k->layers * dirs, k->N, k->H};
  tfw_tensor *x = leaf(3, xs, 1), *h0 = leaf(3, ss, 2), *c0 = leaf(3, ss, 3);
  tfw_tensor *in[3] = {x, k->with_state ? h0 : NULL, k->with_state ? c0 : NULL};
  int n_io = k->lstm ? 3 : 2;
  tfw_tensor *out[3] = {NULL, NULL, NULL};
  cr_assert_eq(tfw_module_forward(m, n_io, in, n_io, out), TFW_OK, "%s", tfw_last_error());
  /* cotangents */
  tfw_tensor *g[3];
  for (int i = 0; i < n_io; i++)
    g[i] = th_random(TFW_DTYPE_F32, tfw_tensor_ndim(out[i]), tfw_tensor_shape(out[i]), -1, 1, 10 + (uint64_t)i);
  tfw_tensor *loss = NULL;
  for (int i = 0; i < n_io; i++) {
    tfw_tensor *d = dot(out[i], g[i]), *s = loss ? tfw_add(loss, d) : tfw_retain(d);
    tfw_release(d), tfw_release(loss);
    loss = s;
  }
  cr_assert_eq(tfw_backward(loss, NULL, false, false), TFW_OK, "%s", tfw_last_error());

  tfw_named_tensor *ps;
  int np;
  cr_assert(tfw_module_named_parameters(m, &ps, &np) == TFW_OK);
  tfw_tensor *tin[64];
  int n = 0;
  tin[n++] = x, tin[n++] = h0, tin[n++] = c0;
  for (int i = 0; i < n_io; i++) tin[n++] = g[i];
  for (int i = n_io; i < 3; i++) tin[n++] = g[0]; /* GRU: an unused slot */
  for (int i = 0; i < np; i++) tin[n++] = ps[i].tensor;
  char code[2048];
  snprintf(code, sizeof code,
           "m = torch.nn.%s(%lld, %lld, %d, bias=%s, batch_first=%s, bidirectional=%s).double()\n"
           "ps = list(m.parameters())\n"
           "names = [nm for nm, _ in m.named_parameters()]\n"
           "with torch.no_grad():\n"
           "  for p, v in zip(ps, x[6:]): p.copy_(v)\n"
           "lstm = %d\n"
           "st = None\n"
           "if %d: st = (x[1], x[2]) if lstm else x[1]\n"
           "o = m(x[0], st)\n"
           "outs = [o[0], o[1][0], o[1][1]] if lstm else [o[0], o[1]]\n"
           "L = sum((a * b).sum() for a, b in zip(outs, x[3:6]))\n"
           "gs = torch.autograd.grad(L, [x[0], x[1], x[2]] + ps, allow_unused=True)\n"
           "gs = [torch.zeros(1) if v is None else v for v in gs]\n"
           "out = outs + list(gs)\n",
           k->lstm ? "LSTM" : "GRU", (long long)k->I, (long long)k->H, k->layers, k->bias ? "True" : "False",
           k->batch_first ? "True" : "False", k->bidir ? "True" : "False", k->lstm, k->with_state);
  int n_ref = n_io + 3 + np;
  tfw_tensor **ref = calloc((size_t)n_ref, sizeof *ref);
  th_torch_run(code, n, tin, n_ref, ref);
  const double tol = 2e-5;
  const char *onames[3] = {"output", "h_n", "c_n"};
  for (int i = 0; i < n_io; i++) expect_like(out[i], ref[i], tol, onames[i]);
  tfw_tensor *gx = tfw_tensor_grad(x);
  expect_like(gx, ref[n_io], tol, "grad x");
  tfw_release(gx);
  if (k->with_state) {
    tfw_tensor *gh = tfw_tensor_grad(h0);
    expect_like(gh, ref[n_io + 1], tol, "grad h0");
    tfw_release(gh);
    if (k->lstm) {
      tfw_tensor *gc = tfw_tensor_grad(c0);
      expect_like(gc, ref[n_io + 2], tol, "grad c0");
      tfw_release(gc);
    }
  }
  for (int i = 0; i < np; i++) {
    tfw_tensor *gp = tfw_tensor_grad(ps[i].tensor);
    char what[96];
    snprintf(what, sizeof what, "grad %s", ps[i].name);
    expect_like(gp, ref[n_io + 3 + i], tol, what);
    tfw_release(gp);
  }
  for (int i = 0; i < n_ref; i++) tfw_release(ref[i]);
  free(ref);
  tfw_named_tensors_free(ps, np);
  for (int i = 0; i < n_io; i++) tfw_release(out[i]), tfw_release(g[i]);
  tfw_release(loss), tfw_release(x), tfw_release(h0), tfw_release(c0);
  tfw_module_release(m);
  th_expect_no_leaks();
}

Test(recurrent, lstm_matches_torch) {
  run_case(&(rnn_case){.lstm = true, .T = 5, .N = 3, .I = 4, .H = 6, .layers = 1, .bias = true, .with_state = true});
}

Test(recurrent, lstm_two_layers_bidirectional_batch_first) {
  run_case(&(rnn_case){.lstm = true, .T = 4, .N = 2, .I = 3, .H = 5, .layers = 2, .bias = true,
                       .batch_first = true, .bidir = true, .with_state = true});
}

Test(recurrent, lstm_no_bias_zero_state) {
  run_case(&(rnn_case){.lstm = true, .T = 6, .N = 2, .I = 3, .H = 4, .layers = 3, .bias = false});
}

Test(recurrent, gru_matches_torch) {
  run_case(&(rnn_case){.lstm = false, .T = 5, .N = 3, .I = 4, .H = 6, .layers = 1, .bias = true, .with_state = true});
}

Test(recurrent, gru_two_layers_bidirectional_batch_first) {
  run_case(&(rnn_case){.lstm = false, .T = 4, .N = 2, .I = 3, .H = 5, .layers = 2, .bias = true,
                       .batch_first = true, .bidir = true, .with_state = true});
}

Test(recurrent, gru_no_bias_zero_state) {
  run_case(&(rnn_case){.lstm = false, .T = 6, .N = 2, .I = 3, .H = 4, .layers = 2, .bias = false});
}

Test(recurrent, parameter_names_shapes_and_init) {
  tfw_module *m = tfw_lstm_new(3, 5, 2, true, false, 0.0, true);
  tfw_named_tensor *ps;
  int np;
  cr_assert(tfw_module_named_parameters(m, &ps, &np) == TFW_OK);
  cr_assert_eq(np, 16);
  cr_assert_str_eq(ps[0].name, "weight_ih_l0");
  cr_assert_str_eq(ps[4].name, "weight_ih_l0_reverse");
  cr_assert_str_eq(ps[8].name, "weight_ih_l1");
  cr_assert_eq(tfw_tensor_shape(ps[0].tensor)[0], 20);
  cr_assert_eq(tfw_tensor_shape(ps[0].tensor)[1], 3);
  cr_assert_eq(tfw_tensor_shape(ps[8].tensor)[1], 10); /* 2 directions * H */
  cr_assert_str_eq(ps[3].name, "bias_hh_l0");
  for (int i = 0; i < np; i++) {
    double *v = th_values(ps[i].tensor);
    for (int64_t j = 0; j < tfw_tensor_numel(ps[i].tensor); j++)
      cr_assert(fabs(v[j]) <= 1 / sqrt(5.0), "%s out of U(-1/sqrt(H), 1/sqrt(H))", ps[i].name);
    free(v);
  }
  tfw_named_tensors_free(ps, np);
  tfw_module_release(m);
  tfw_module *g = tfw_gru_new(3, 5, 1, true, false, 0.0, false);
  cr_assert_eq(tfw_tensor_shape(tfw_module_get_parameter(g, "weight_hh_l0"))[0], 15);
  tfw_module_release(g);
  th_expect_no_leaks();
}

Test(recurrent, dropout_between_layers_and_unbatched) {
  tfw_manual_seed(3);
  tfw_module *m = tfw_gru_new(4, 3, 2, true, false, 0.5, false);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){5, 4}, -1, 1, 1); /* unbatched [T, I] */
  tfw_tensor *in[1] = {x}, *out[2];
  cr_assert_eq(tfw_module_forward(m, 1, in, 2, out), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_tensor_ndim(out[0]), 2);
  cr_assert_eq(tfw_tensor_shape(out[1])[0], 2);
  cr_assert_eq(tfw_tensor_shape(out[1])[1], 3);
  /* eval mode: dropout off, deterministic; train mode differs from eval */
  tfw_tensor *tr = tfw_retain(out[0]);
  tfw_release(out[0]), tfw_release(out[1]);
  tfw_module_train(m, false);
  tfw_tensor *e1 = tfw_module_call(m, x), *e2 = tfw_module_call(m, x);
  bool same = false;
  cr_assert(tfw_equal(e1, e2, &same) == TFW_OK && same, "eval is deterministic");
  cr_assert(tfw_equal(e1, tr, &same) == TFW_OK && !same, "training applies dropout");
  tfw_release(tr), tfw_release(e1), tfw_release(e2);
  tfw_module_release(m);
  tfw_release(x);
  th_expect_no_leaks();
}

Test(recurrent, bad_input_gives_clean_errors) {
  cr_assert_null(tfw_lstm_new(3, 0, 1, true, false, 0, false));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "hidden_size", "H = 0");
  cr_assert_null(tfw_gru_new(3, 4, 1, true, false, 1.5, false));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "dropout", "p > 1");
  tfw_module *m = tfw_lstm_new(3, 4, 1, true, false, 0, false);
  tfw_tensor *x = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){2, 2, 5});
  cr_assert_null(tfw_module_call(m, x));
  th_expect_error(tfw_last_status(), TFW_ESHAPE, "LSTM: input of shape [2, 2, 5]", "wrong I");
  tfw_tensor *x2 = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){2, 2, 3});
  tfw_tensor *h0 = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){1, 3, 4});
  tfw_tensor *in[3] = {x2, h0, NULL}, *out[3];
  th_expect_error(tfw_module_forward(m, 3, in, 3, out), TFW_ESHAPE, "h0 has shape [1, 3, 4], expected [1, 2, 4]",
                  "wrong h0");
  tfw_release(x), tfw_release(x2), tfw_release(h0);
  tfw_module_release(m);
  th_expect_no_leaks();
}
