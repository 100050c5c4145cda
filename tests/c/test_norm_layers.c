/* Normalisation, embedding and dropout modules: PyTorch's names, defaults and behaviour
 * (forward against torch.nn modules with the same state, running statistics, eval mode). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(norm_layers, layer_norm_matches_torch) {
  th_require_torch();
  tfw_module *ln = tfw_layer_norm_new(1, (int64_t[]){6}, 1e-5, true);
  cr_assert(ln, "%s", tfw_last_error());
  tfw_tensor *w = tfw_module_get_parameter(ln, "weight"), *b = tfw_module_get_parameter(ln, "bias");
  cr_assert(w && b);
  tfw_init_uniform_(w, 0.5, 1.5);
  tfw_init_uniform_(b, -0.5, 0.5);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){4, 6}, -2, 2, 3);
  tfw_tensor *y = tfw_module_call(ln, x);
  tfw_tensor *in[3] = {x, w, b}, *ref;
  th_torch_run("m = torch.nn.LayerNorm(6).double()\n"
               "m.load_state_dict({'weight': x[1].detach(), 'bias': x[2].detach()})\n"
               "out = [m(x[0])]\n", 3, in, 1, &ref);
  double *r = th_values(ref);
  th_expect_close(y, TFW_DTYPE_F32, 2, (int64_t[]){4, 6}, r, 1e-5, 1e-5, "LayerNorm");
  free(r);
  tfw_release(ref), tfw_release(x), tfw_release(y);
  tfw_module_release(ln);
  th_expect_no_leaks();
}

Test(norm_layers, batch_norm_state_and_modes) {
  th_require_torch();
  tfw_module *bn = tfw_batch_norm2d_new(3, 1e-5, 0.1, true, true);
  cr_assert(bn, "%s", tfw_last_error());
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_module_state_dict(bn, &sd, &n) == TFW_OK && n == 5);
  const char *names[5] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
  for (int i = 0; i < 5; i++) cr_assert_str_eq(sd[i].name, names[i]);
  tfw_named_tensors_free(sd, n);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 4, (int64_t[]){4, 3, 5, 5}, -1, 3, 9);
  tfw_tensor *y = tfw_module_call(bn, x); /* training: batch stats, running stats updated */
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *in[1] = {x}, *ref[4];
  th_torch_run("m = torch.nn.BatchNorm2d(3).double()\n"
               "y = m(x[0])\n"
               "m.eval()\n"
               "out = [y, m.running_mean, m.running_var, m(x[0])]\n", 1, in, 4, ref);
  double *r = th_values(ref[0]);
  th_expect_close(y, TFW_DTYPE_F32, 4, (int64_t[]){4, 3, 5, 5}, r, 1e-4, 1e-4, "BatchNorm2d train");
  free(r);
  r = th_values(ref[1]);
  th_expect_close(tfw_module_get_buffer(bn, "running_mean"), TFW_DTYPE_F32, 1, (int64_t[]){3}, r, 1e-5, 1e-6, "running_mean");
  free(r);
  r = th_values(ref[2]);
  th_expect_close(tfw_module_get_buffer(bn, "running_var"), TFW_DTYPE_F32, 1, (int64_t[]){3}, r, 1e-5, 1e-6, "running_var");
  free(r);
  int64_t nbt = 0;
  tfw_item_i64(tfw_module_get_buffer(bn, "num_batches_tracked"), &nbt);
  cr_assert_eq(nbt, 1);
  tfw_module_train(bn, false);
  tfw_tensor *ye = tfw_module_call(bn, x);
  r = th_values(ref[3]);
  th_expect_close(ye, TFW_DTYPE_F32, 4, (int64_t[]){4, 3, 5, 5}, r, 1e-4, 1e-4, "BatchNorm2d eval");
  free(r);
  tfw_tensor *bad = tfw_ones(TFW_DTYPE_F32, 2, (int64_t[]){2, 3});
  th_expect_error(tfw_module_call(bn, bad) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "BatchNorm2d: expected a 4-d", "2-d into BatchNorm2d");
  for (int i = 0; i < 4; i++) tfw_release(ref[i]);
  tfw_release(x), tfw_release(y), tfw_release(ye), tfw_release(bad);
  tfw_module_release(bn);
  th_expect_no_leaks();
}

Test(norm_layers, embedding_dropout_group_rms) {
  tfw_manual_seed(2);
  tfw_module *e = tfw_embedding_new(10, 4, 3, 0);
  tfw_tensor *w = tfw_module_get_parameter(e, "weight");
  double v;
  for (int j = 0; j < 4; j++) {
    tfw_tensor_get(w, (int64_t[]){3, j}, &v);
    cr_assert(v == 0, "padding row must start at zero");
  }
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){1, 3, 9});
  tfw_tensor *y = tfw_module_call(e, idx);
  cr_assert(y && tfw_tensor_shape(y)[0] == 3 && tfw_tensor_shape(y)[1] == 4);
  cr_assert(tfw_embedding_new(10, 4, 12, 0) == NULL && tfw_last_status() == TFW_EINDEX);
  tfw_module *d = tfw_dropout_new(0.5);
  tfw_tensor *ones = tfw_ones(TFW_DTYPE_F32, 1, (int64_t[]){1000});
  tfw_tensor *dt = tfw_module_call(d, ones);
  double *dv = th_values(dt);
  int zeros = 0;
  for (int i = 0; i < 1000; i++) {
    cr_assert(dv[i] == 0 || dv[i] == 2);
    zeros += dv[i] == 0;
  }
  cr_assert(zeros > 400 && zeros < 600, "%d zeros", zeros);
  free(dv);
  tfw_module_train(d, false);
  tfw_tensor *de = tfw_module_call(d, ones);
  bool eq;
  cr_assert(tfw_equal(de, ones, &eq) == TFW_OK && eq, "eval dropout is the identity");
  cr_assert(tfw_dropout_new(1.5) == NULL);
  tfw_module *gn = tfw_group_norm_new(2, 4, 1e-5, true);
  tfw_module *rn = tfw_rms_norm_new(1, (int64_t[]){4}, 1e-6, true);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 3, (int64_t[]){2, 4, 3}, -1, 1, 4);
  tfw_tensor *g = tfw_module_call(gn, x);
  cr_assert(g, "%s", tfw_last_error());
  tfw_tensor *xt = tfw_transpose(x, 1, 2);
  tfw_tensor *rr = tfw_module_call(rn, xt);
  cr_assert(rr, "%s", tfw_last_error());
  cr_assert(tfw_group_norm_new(3, 4, 1e-5, true) == NULL);
  tfw_release(idx), tfw_release(y), tfw_release(ones), tfw_release(dt), tfw_release(de);
  tfw_release(x), tfw_release(g), tfw_release(xt), tfw_release(rr);
  tfw_module_release(e), tfw_module_release(d), tfw_module_release(gn), tfw_module_release(rn);
  th_expect_no_leaks();
}
