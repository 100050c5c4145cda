/* The PyTorch-reference harness itself: round trip of values, dtypes and gradients. */
#include <stdlib.h>

#include "harness.h"

Test(torch_ref, round_trip_and_gradients) {
  th_require_torch();
  tfw_tensor *a = th_random(TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, -1, 1, 1);
  tfw_tensor *i = tfw_arange(0, 3, 1, TFW_DTYPE_I32);
  tfw_tensor *in[2] = {a, i}, *out[2];
  th_torch_run("y = (x[0] * x[0]).sum() + x[1].sum()\n"
               "g, = torch.autograd.grad(y, x[0])\n"
               "out = [y, g]\n", 2, in, 2, out);
  double *v = th_values(a);
  double y = 3, g[6];
  for (int k = 0; k < 6; k++) y += v[k] * v[k], g[k] = 2 * v[k];
  th_expect_close(out[0], TFW_DTYPE_F64, 0, NULL, &y, 1e-12, 1e-12, "sum of squares");
  th_expect_close(out[1], TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, g, 1e-12, 1e-12, "gradient");
  free(v);
  tfw_release(a), tfw_release(i), tfw_release(out[0]), tfw_release(out[1]);
  th_expect_no_leaks();
}
