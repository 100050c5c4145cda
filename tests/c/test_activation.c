/* Activations against PyTorch (torch.nn.functional, run at test time): forward values and
 * gradients (float64), f32 and bf16 forward, strided input, and errors. Gradchecks, double
 * backward and JVP are generated from the registry (test_autograd). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

typedef struct {
  const char *name, *torch;
  tfw_tensor *(*f)(const tfw_tensor *x);
} act_case;

static tfw_tensor *leaky(const tfw_tensor *x) { return tfw_leaky_relu(x, 0.2); }
static tfw_tensor *elu(const tfw_tensor *x) { return tfw_elu(x, 1.3); }
static tfw_tensor *celu(const tfw_tensor *x) { return tfw_celu(x, 0.7); }
static tfw_tensor *softplus(const tfw_tensor *x) { return tfw_softplus(x, 2.0, 3.0); }
static tfw_tensor *softplus1(const tfw_tensor *x) { return tfw_softplus(x, 1.0, 20.0); }
static tfw_tensor *glu0(const tfw_tensor *x) { return tfw_glu(x, 0); }
static tfw_tensor *glu1(const tfw_tensor *x) { return tfw_glu(x, -1); }
static tfw_tensor *geglu(const tfw_tensor *x) { return tfw_geglu(x, -1); }
static tfw_tensor *swiglu(const tfw_tensor *x) { return tfw_swiglu(x, -1); }

static const act_case cases[] = {
    {"leaky_relu", "F.leaky_relu(x[0], 0.2)", leaky},
    {"elu", "F.elu(x[0], 1.3)", elu},
    {"selu", "F.selu(x[0])", tfw_selu},
    {"celu", "F.celu(x[0], 0.7)", celu},
    {"gelu_tanh", "F.gelu(x[0], approximate='tanh')", tfw_gelu_tanh},
    {"silu", "F.silu(x[0])", tfw_silu},
    {"mish", "F.mish(x[0])", tfw_mish},
    {"hardswish", "F.hardswish(x[0])", tfw_hardswish},
    {"hardsigmoid", "F.hardsigmoid(x[0])", tfw_hardsigmoid},
    {"softplus", "F.softplus(x[0], 2.0, 3.0)", softplus},
    {"softplus1", "F.softplus(x[0])", softplus1},
    {"softsign", "F.softsign(x[0])", tfw_softsign},
    {"glu0", "F.glu(x[0], 0)", glu0},
    {"glu1", "F.glu(x[0], -1)", glu1},
    {"geglu", "(lambda a, b: a * F.gelu(b))(*x[0].chunk(2, -1))", geglu},
    {"swiglu", "(lambda a, b: a * F.silu(b))(*x[0].chunk(2, -1))", swiglu},
};

Test(activation, forward_and_grad_match_torch) {
  th_require_torch();
  const int64_t shape[2] = {6, 8};
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    for (int strided = 0; strided < 2; strided++) {
      tfw_tensor *x = strided ? th_random_strided(TFW_DTYPE_F64, 2, shape, -5, 5, 10 + k)
                              : th_random(TFW_DTYPE_F64, 2, shape, -5, 5, 10 + k);
      cr_assert(tfw_tensor_set_requires_grad(x, true) == TFW_OK);
      tfw_tensor *y = cases[k].f(x);
      cr_assert(y, "%s: %s", cases[k].name, tfw_last_error());
      tfw_tensor *v = th_random(TFW_DTYPE_F64, tfw_tensor_ndim(y), tfw_tensor_shape(y), -1, 1, 99);
      tfw_tensor *g;
      cr_assert(tfw_grad(1, &y, 1, &x, &v, false, false, false, &g) == TFW_OK, "%s", tfw_last_error());
      char code[512];
      snprintf(code, sizeof code, "y = %s\ng, = torch.autograd.grad(y, x[0], x[1])\nout = [y, g]\n",
               cases[k].torch);
      tfw_tensor *in[2] = {x, v}, *ref[2];
      th_torch_run(code, 2, in, 2, ref);
      double *ry = th_values(ref[0]), *rg = th_values(ref[1]);
      th_expect_close(y, TFW_DTYPE_F64, tfw_tensor_ndim(y), tfw_tensor_shape(y), ry, 1e-10, 1e-12, cases[k].name);
      /* PyTorch's celu gradient rounds 1/alpha to float (derivatives.yaml: 1.0/alpha.toFloat()) */
      /* and hardsigmoid's uses a float 1/6 (1.0f / 6.0f in its CPU kernel) */
      bool f32c = !strcmp(cases[k].name, "celu") || !strcmp(cases[k].name, "hardsigmoid");
      double grtol = f32c ? 1e-6 : 1e-9;
      th_expect_close(g, TFW_DTYPE_F64, 2, shape, rg, grtol, 1e-12, cases[k].name);
      /* f32 forward against the same reference */
      tfw_tensor *x32 = tfw_to_dtype(x, TFW_DTYPE_F32);
      tfw_tensor *y32 = cases[k].f(x32);
      cr_assert(y32, "%s f32: %s", cases[k].name, tfw_last_error());
      th_expect_close(y32, TFW_DTYPE_F32, tfw_tensor_ndim(y), tfw_tensor_shape(y), ry, 2e-6, 2e-6, cases[k].name);
      tfw_tensor *xb = tfw_to_dtype(x, TFW_DTYPE_BF16);
      tfw_tensor *yb = cases[k].f(xb);
      cr_assert(yb, "%s bf16: %s", cases[k].name, tfw_last_error());
      cr_assert_eq(tfw_tensor_dtype(yb), TFW_DTYPE_BF16);
      free(ry), free(rg);
      tfw_release(x), tfw_release(y), tfw_release(v), tfw_release(g), tfw_release(ref[0]);
      tfw_release(ref[1]), tfw_release(x32), tfw_release(y32), tfw_release(xb), tfw_release(yb);
    }
  }
  th_expect_no_leaks();
}

Test(activation, errors) {
  tfw_tensor *i = tfw_arange(0, 4, 1, TFW_DTYPE_I64);
  th_expect_error(i ? (tfw_silu(i) ? TFW_OK : tfw_last_status()) : TFW_OK, TFW_EDTYPE, "silu", "int input");
  tfw_tensor *x = th_random(TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, -1, 1, 1);
  th_expect_error(tfw_glu(x, 1) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "even", "odd glu dim");
  th_expect_error(tfw_glu(x, 5) ? TFW_OK : tfw_last_status(), TFW_EINDEX, "glu", "glu dim");
  th_expect_error(tfw_celu(x, 0) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "alpha", "celu alpha 0");
  th_expect_error(tfw_softplus(x, 0, 20) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "beta", "softplus beta 0");
  th_expect_error(tfw_silu(NULL) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "silu", "NULL");
  tfw_release(i), tfw_release(x);
  th_expect_no_leaks();
}
