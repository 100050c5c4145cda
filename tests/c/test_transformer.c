/* TransformerEncoderLayer against torch.nn.TransformerEncoderLayer with the same state_dict
 * (post-norm and pre-norm, relu and gelu), forward and input gradients, dropout off. */
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
