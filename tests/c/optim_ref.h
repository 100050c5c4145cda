/* Shared by test_optim.c and test_lr_scheduler.c: a small problem with parameters of several
 * shapes (one never gets a gradient) and a fixed sequence of gradients
 *   grad_k(t) = G[t]_k + A_k * p_k   (loss = sum(G[t] p) + 1/2 sum(A p^2)),
 * computed by tenflower's autograd here and by PyTorch's in the reference scripts. */
#ifndef TFW_TEST_OPTIM_REF_H
#define TFW_TEST_OPTIM_REF_H

#include "harness.h"

#define OR_NP 4     /* parameters: [3, 4], [5], [] and [2] (the last never has a gradient) */
#define OR_NG 18    /* elements of the parameters with gradients */
#define OR_NALL 20  /* all elements */
#define OR_STEPS 20

static const int or_ndim[OR_NP] = {2, 1, 0, 1};
static const int64_t or_shape[OR_NP][2] = {{3, 4}, {5, 0}, {0, 0}, {2, 0}};

typedef struct or_problem {
  tfw_tensor *init[OR_NP]; /* f64 initial values */
  tfw_tensor *G;           /* [OR_STEPS, OR_NG] f64 */
  tfw_tensor *A;           /* [OR_NG] f64 */
} or_problem;

static void or_problem_make(or_problem *pb, uint64_t seed) {
  for (int k = 0; k < OR_NP; k++)
    pb->init[k] = th_random(TFW_DTYPE_F64, or_ndim[k], or_shape[k], -1, 1, seed + (uint64_t)k);
  pb->G = th_random(TFW_DTYPE_F64, 2, (int64_t[]){OR_STEPS, OR_NG}, -1, 1, seed + 10);
  pb->A = th_random(TFW_DTYPE_F64, 1, (int64_t[]){OR_NG}, 0.1, 2, seed + 11);
}

static void or_problem_free(or_problem *pb) {
  for (int k = 0; k < OR_NP; k++) tfw_release(pb->init[k]);
  tfw_release(pb->G);
  tfw_release(pb->A);
}

/* Fresh leaf parameters of dtype dt with the initial values. */
static void or_params(const or_problem *pb, tfw_dtype dt, tfw_tensor **ps) {
  for (int k = 0; k < OR_NP; k++) {
    ps[k] = tfw_to_dtype(pb->init[k], dt);
    cr_assert(ps[k]);
    cr_assert(tfw_tensor_set_requires_grad(ps[k], true) == TFW_OK);
  }
}

/* Sets the gradients of step t (parameters 0..2) through backward. */
static void or_grads(const or_problem *pb, tfw_tensor **ps, int t) {
  const double *G = tfw_tensor_data(pb->G), *A = tfw_tensor_data(pb->A);
  tfw_tensor *loss = NULL;
  int off = 0;
  for (int k = 0; k < 3; k++) {
    tfw_dtype dt = tfw_tensor_dtype(ps[k]);
    int64_t n = tfw_tensor_numel(ps[k]);
    tfw_tensor *g64 = tfw_from_data(TFW_DTYPE_F64, or_ndim[k], or_shape[k], G + t * OR_NG + off);
    tfw_tensor *a64 = tfw_from_data(TFW_DTYPE_F64, or_ndim[k], or_shape[k], A + off);
    tfw_tensor *g = tfw_to_dtype(g64, dt), *a = tfw_to_dtype(a64, dt);
    tfw_tensor *gp = tfw_mul(g, ps[k]), *ap = tfw_mul(a, ps[k]), *app = tfw_mul(ap, ps[k]);
    tfw_tensor *h = tfw_mul_scalar(app, 0.5), *s = tfw_add(gp, h);
    tfw_tensor *l = tfw_sum(s, 0, NULL, false);
    cr_assert(l, "loss: %s", tfw_last_error());
    if (loss) {
      tfw_tensor *nl = tfw_add(loss, l);
      tfw_release(loss);
      tfw_release(l);
      loss = nl;
    } else {
      loss = l;
    }
    tfw_release(g64), tfw_release(a64), tfw_release(g), tfw_release(a), tfw_release(gp);
    tfw_release(ap), tfw_release(app), tfw_release(h), tfw_release(s);
    off += (int)n;
  }
  cr_assert(tfw_backward(loss, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  tfw_release(loss);
}

/* Python: the same problem; `make_params(dtype)` and `grads(ps, t)` for the reference code.
 * Inputs: x[0..3] the initial values, x[4] G, x[5] A. */
#define OR_PY_PRELUDE                                                                        \
  "def make_params(dtype):\n"                                                                \
  "    return [x[k].detach().clone().to(dtype).requires_grad_(True) for k in range(4)]\n"    \
  "def grads(ps, t):\n"                                                                      \
  "    G = x[4].detach().to(ps[0].dtype); A = x[5].detach().to(ps[0].dtype)\n"               \
  "    loss = 0; off = 0\n"                                                                  \
  "    for k in range(3):\n"                                                                 \
  "        n = ps[k].numel(); sh = ps[k].shape\n"                                            \
  "        g = G[t, off:off+n].reshape(sh); a = A[off:off+n].reshape(sh)\n"                  \
  "        loss = loss + (g * ps[k] + (a * ps[k] * ps[k]) * 0.5).sum()\n"                   \
  "        off += n\n"                                                                       \
  "    loss.backward()\n"                                                                    \
  "def flat(ps):\n"                                                                          \
  "    return torch.cat([p.detach().reshape(-1).double() for p in ps])\n"

#endif
