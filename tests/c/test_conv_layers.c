/* Conv/pool modules: the MNIST-example CNN (Conv2d 1->32->64, MaxPool2d, Flatten, Linear)
 * against the same network in PyTorch with the same weights, forward and all gradients. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

Test(conv_layers, mnist_cnn_matches_pytorch) {
  th_require_torch();
  tfw_manual_seed(3);
  int64_t k3[2] = {3, 3}, k2[2] = {2, 2};
  tfw_module *parts[8] = {tfw_conv2d_new(1, 4, k3, NULL, NULL, NULL, 1, true, false),
                          tfw_activation_new("relu"),
                          tfw_conv2d_new(4, 6, k3, NULL, (int64_t[]){1, 1}, NULL, 2, true, false),
                          tfw_activation_new("relu"),
                          tfw_max_pool2d_new(k2, NULL, NULL, false),
                          tfw_flatten_new(1, -1),
                          tfw_linear_new(6 * 5 * 5, 3, true),
                          tfw_adaptive_avg_pool2d_new((int64_t[]){1, 1})};
  for (int i = 0; i < 8; i++) cr_assert(parts[i], "layer %d: %s", i, tfw_last_error());
  tfw_module *net = tfw_sequential_new(7, parts);
  cr_assert(net);
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 4, (int64_t[]){2, 1, 12, 12}, -1, 1, 5);
  tfw_tensor *y = tfw_module_call(net, x);
  cr_assert(y, "%s", tfw_last_error());
  tfw_tensor *s = tfw_sum(y, 0, NULL, false);
  cr_assert(tfw_backward(s, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  const char *names[6] = {"0.weight", "0.bias", "2.weight", "2.bias", "6.weight", "6.bias"};
  tfw_tensor *in[7] = {x};
  for (int i = 0; i < 6; i++) in[i + 1] = tfw_module_get_parameter(net, names[i]);
  tfw_tensor *ref[7];
  th_torch_run("import torch.nn as nn\n"
               "m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1, groups=2),\n"
               "                  nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(150, 3)).double()\n"
               "keys = ['0.weight', '0.bias', '2.weight', '2.bias', '6.weight', '6.bias']\n"
               "m.load_state_dict({k: x[i + 1].detach() for i, k in enumerate(keys)})\n"
               "y = m(x[0].detach())\n"
               "y.sum().backward()\n"
               "out = [y] + [dict(m.named_parameters())[k].grad for k in keys]\n", 7, in, 7, ref);
  double *r = th_values(ref[0]);
  th_expect_close(y, TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, r, 1e-4, 1e-5, "CNN forward");
  free(r);
  for (int i = 0; i < 6; i++) {
    tfw_tensor *g = tfw_tensor_grad(in[i + 1]);
    r = th_values(ref[i + 1]);
    th_expect_close(g, TFW_DTYPE_F32, tfw_tensor_ndim(ref[i + 1]), tfw_tensor_shape(ref[i + 1]), r, 1e-4, 1e-5, names[i]);
    free(r);
    tfw_release(g);
  }
  tfw_tensor *p = tfw_module_call(parts[7], x);
  cr_assert(p && tfw_tensor_shape(p)[2] == 1 && tfw_tensor_shape(p)[3] == 1);
  cr_assert(tfw_conv2d_new(3, 4, k3, NULL, NULL, NULL, 2, true, false) == NULL, "groups must divide channels");
  for (int i = 0; i < 7; i++) tfw_release(ref[i]);
  for (int i = 0; i < 8; i++) tfw_module_release(parts[i]);
  tfw_release(x), tfw_release(y), tfw_release(s), tfw_release(p);
  tfw_module_release(net);
  th_expect_no_leaks();
}
