/* Gradient clipping against torch.nn.utils (PyTorch 1.13); EMA of weights against a naive
 * reference; the loss scaler against a hand-written reference of GradScaler's documented
 * algorithm (PyTorch 1.13's GradScaler needs CUDA), skipped steps included. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

/* Parameters whose gradients are exactly the given values (loss = sum(G * p)). */
static void set_grads(int n, tfw_tensor **ps, tfw_tensor **gs) {
  tfw_tensor *loss = NULL;
  for (int i = 0; i < n; i++) {
    if (!gs[i]) continue;
    tfw_tensor *m = tfw_mul(ps[i], gs[i]), *s = tfw_sum(m, 0, NULL, false);
    tfw_release(m);
    if (loss) {
      tfw_tensor *t = tfw_add(loss, s);
      tfw_release(loss), tfw_release(s);
      loss = t;
    } else {
      loss = s;
    }
  }
  cr_assert(tfw_backward(loss, NULL, false, false) == TFW_OK, "%s", tfw_last_error());
  tfw_release(loss);
}

static tfw_tensor *leaf(tfw_dtype dt, int ndim, const int64_t *shape, uint64_t seed) {
  tfw_tensor *t = th_random(dt, ndim, shape, -1, 1, seed);
  tfw_tensor_set_requires_grad(t, true);
  return t;
}

#define NCLIP 8
static const double CLIP_P[NCLIP] = {2, 2, INFINITY, INFINITY, 1, 3.5, 0.5, 2};
static const double CLIP_MAX[NCLIP] = {0.5, 100, 0.3, 100, 2.0, 0.7, 5.0, 0};

Test(clip, grad_norm_matches_torch) {
  th_require_torch();
  /* three params (one without a gradient), gradients of several scales */
  const int64_t sh[3][2] = {{4, 5}, {7, 0}, {3, 0}};
  const int nd[3] = {2, 1, 1};
  tfw_tensor *G[3];
  for (int i = 0; i < 3; i++) G[i] = th_random(TFW_DTYPE_F64, nd[i], sh[i], -2, 2, 40 + (uint64_t)i);
  char code[4096];
  snprintf(code, sizeof code,
           "ps_list = [0.5, 100, float('inf'), float('inf'), 1.0, 3.5, 0.5, 2.0]\n"
           "mx = [0.5, 100, 0.3, 100, 2.0, 0.7, 5.0, 0.0]\n"
           "out = []\n"
           "for dt in (torch.float64, torch.float32):\n"
           "    for k in range(%d):\n"
           "        ps = [torch.zeros(x[i].shape, dtype=dt, requires_grad=True) for i in range(3)]\n"
           "        ps[0].grad = x[0].detach().to(dt).clone(); ps[1].grad = x[1].detach().to(dt).clone()\n"
           "        p = [2, 2, float('inf'), float('inf'), 1, 3.5, 0.5, 2][k]\n"
           "        t = torch.nn.utils.clip_grad_norm_(ps, mx[k], p)\n"
           "        out.append(torch.cat([t.reshape(1).double(), ps[0].grad.reshape(-1).double(), ps[1].grad.double()]))\n",
           NCLIP);
  tfw_tensor *ref[2 * NCLIP];
  th_torch_run(code, 3, G, 2 * NCLIP, ref);
  for (int d = 0; d < 2; d++) {
    tfw_dtype dt = d ? TFW_DTYPE_F32 : TFW_DTYPE_F64;
    for (int k = 0; k < NCLIP; k++) {
      tfw_tensor *ps[3], *gs[3];
      for (int i = 0; i < 3; i++) {
        ps[i] = tfw_zeros(dt, nd[i], sh[i]);
        tfw_tensor_set_requires_grad(ps[i], true);
        gs[i] = i < 2 ? tfw_to_dtype(G[i], dt) : NULL;
      }
      set_grads(3, ps, gs);
      double total = -1;
      cr_assert(tfw_clip_grad_norm_(3, ps, CLIP_MAX[k], CLIP_P[k], true, &total) == TFW_OK, "%s",
                tfw_last_error());
      double got[1 + 20 + 7];
      got[0] = total;
      for (int i = 0; i < 2; i++) {
        tfw_tensor *g = tfw_tensor_grad(ps[i]);
        double *v = th_values(g);
        memcpy(got + 1 + (i ? 20 : 0), v, (size_t)tfw_tensor_numel(g) * sizeof(double));
        free(v);
        tfw_release(g);
      }
      cr_expect_null(tfw_tensor_grad(ps[2]));
      char what[64];
      snprintf(what, sizeof what, "clip p=%g max=%g %s", CLIP_P[k], CLIP_MAX[k], tfw_dtype_name(dt));
      th_expect_close(ref[d * NCLIP + k], TFW_DTYPE_F64, 1, (int64_t[]){28}, got,
                      d ? 1e-6 : 1e-13, d ? 1e-7 : 1e-15, what);
      for (int i = 0; i < 3; i++) tfw_release(ps[i]), tfw_release(gs[i]);
    }
  }
  for (int i = 0; i < 2 * NCLIP; i++) tfw_release(ref[i]);
  for (int i = 0; i < 3; i++) tfw_release(G[i]);
  th_expect_no_leaks();
}

Test(clip, grad_value_and_errors) {
  tfw_tensor *p = leaf(TFW_DTYPE_F32, 1, (int64_t[]){6}, 1);
  tfw_tensor *g = tfw_from_data(TFW_DTYPE_F32, 1, (int64_t[]){6},
                                (float[]){-3, -0.5f, 0, 0.25f, 1.5f, 9});
  set_grads(1, &p, &g);
  cr_assert(tfw_clip_grad_value_(1, &p, 1.0) == TFW_OK);
  tfw_tensor *got = tfw_tensor_grad(p);
  th_expect_close(got, TFW_DTYPE_F32, 1, (int64_t[]){6}, (double[]){-1, -0.5, 0, 0.25, 1, 1}, 0, 0,
                  "clip value");
  /* the caller's tensor g (handed over as the gradient by backward) is not clipped through
   * an alias */
  double *gv = th_values(g);
  cr_expect_eq(gv[0], -3.0);
  free(gv);
  tfw_release(got);
  th_expect_error(tfw_clip_grad_value_(1, &p, -1), TFW_EVALUE, "clip_value must be >= 0", "neg");
  th_expect_error(tfw_clip_grad_norm_(1, &p, 1, 0, false, NULL), TFW_EVALUE,
                  "norm_type must be > 0", "p=0");
  /* non-finite total with error_if_nonfinite: error, gradients untouched */
  tfw_tensor *q = leaf(TFW_DTYPE_F64, 1, (int64_t[]){2}, 2);
  tfw_tensor *bad = tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){2}, (double[]){INFINITY, 1});
  set_grads(1, &q, &bad);
  double tot = 0;
  th_expect_error(tfw_clip_grad_norm_(1, &q, 1, 2, true, &tot), TFW_EVALUE, "non-finite",
                  "inf norm");
  cr_expect(isinf(tot));
  tfw_tensor *qg = tfw_tensor_grad(q);
  th_expect_close(qg, TFW_DTYPE_F64, 1, (int64_t[]){2}, (double[]){INFINITY, 1}, 0, 0, "untouched");
  tfw_release(qg);
  tfw_release(p), tfw_release(g), tfw_release(q), tfw_release(bad);
  th_expect_no_leaks();
}

/* ---- EMA ------------------------------------------------------------------------------------ */
static void set_values(tfw_module *m, uint64_t seed) {
  tfw_named_tensor *l;
  int n;
  tfw_module_named_parameters(m, &l, &n);
  bool prev = tfw_set_grad_enabled(false);
  for (int i = 0; i < n; i++) {
    tfw_tensor *r = th_random(TFW_DTYPE_F32, tfw_tensor_ndim(l[i].tensor),
                              tfw_tensor_shape(l[i].tensor), -1, 1, seed + (uint64_t)i);
    cr_assert(tfw_copy_(l[i].tensor, r) == TFW_OK, "%s", tfw_last_error());
    tfw_release(r);
  }
  tfw_set_grad_enabled(prev);
  tfw_named_tensors_free(l, n);
}

Test(ema, matches_naive_reference_with_warmup_and_swaps) {
  tfw_module *lin = tfw_linear_new(3, 2, true);
  tfw_module *bn = tfw_batch_norm1d_new(2, 1e-5, 0.1, true, true);
  tfw_module *mods[2] = {lin, bn};
  tfw_module *m = tfw_sequential_new(2, mods);
  tfw_module_release(lin), tfw_module_release(bn);
  for (int warm = 0; warm < 2; warm++) {
    set_values(m, 1);
    tfw_ema *e = tfw_ema_new(m, 0.9, warm, true);
    cr_assert(e, "%s", tfw_last_error());
    /* naive reference: per element, in double */
    double ref[6 + 2];
    double *w = th_values(tfw_module_get_parameter(m, "0.weight"));
    double *b = th_values(tfw_module_get_parameter(m, "0.bias"));
    memcpy(ref, w, 6 * sizeof(double)), memcpy(ref + 6, b, 2 * sizeof(double));
    free(w), free(b);
    for (int k = 1; k <= 12; k++) {
      set_values(m, 100 + (uint64_t)k * 10);
      cr_assert(tfw_ema_update(e, m) == TFW_OK, "%s", tfw_last_error());
      double d = warm ? fmin(0.9, (1.0 + k) / (10.0 + k)) : 0.9;
      w = th_values(tfw_module_get_parameter(m, "0.weight"));
      b = th_values(tfw_module_get_parameter(m, "0.bias"));
      for (int j = 0; j < 6; j++) ref[j] = d * ref[j] + (1 - d) * w[j];
      for (int j = 0; j < 2; j++) ref[6 + j] = d * ref[6 + j] + (1 - d) * b[j];
      free(w), free(b);
    }
    cr_expect_eq(tfw_ema_num_updates(e), 12);
    th_expect_close(tfw_ema_get(e, "0.weight"), TFW_DTYPE_F32, 2, (int64_t[]){2, 3}, ref, 1e-5, 1e-6,
                    "ema weight");
    th_expect_close(tfw_ema_get(e, "0.bias"), TFW_DTYPE_F32, 1, (int64_t[]){2}, ref + 6, 1e-5, 1e-6,
                    "ema bias");
    cr_expect_not_null(tfw_ema_get(e, "1.running_mean"));
    cr_expect_not_null(tfw_ema_get(e, "1.num_batches_tracked"));
    /* swap in for eval, swap back: the module's own values return exactly */
    double *before = th_values(tfw_module_get_parameter(m, "0.weight"));
    cr_assert(tfw_ema_swap(e, m) == TFW_OK, "%s", tfw_last_error());
    th_expect_close(tfw_module_get_parameter(m, "0.weight"), TFW_DTYPE_F32, 2, (int64_t[]){2, 3},
                    ref, 1e-5, 1e-6, "swapped in");
    cr_assert(tfw_ema_swap(e, m) == TFW_OK);
    th_expect_close(tfw_module_get_parameter(m, "0.weight"), TFW_DTYPE_F32, 2, (int64_t[]){2, 3},
                    before, 0, 0, "swapped back");
    free(before);
    /* state dict round trip into a fresh EMA, then copy_to */
    tfw_named_tensor *sd;
    int n;
    cr_assert(tfw_ema_state_dict(e, &sd, &n) == TFW_OK);
    tfw_ema *e2 = tfw_ema_new(m, 0.5, false, true);
    cr_assert(tfw_ema_load_state_dict(e2, n, sd) == TFW_OK, "%s", tfw_last_error());
    th_expect_error(tfw_ema_load_state_dict(e2, n - 1, sd), TFW_EVALUE, "missing key", "missing");
    cr_assert(tfw_ema_copy_to(e2, m) == TFW_OK);
    th_expect_close(tfw_module_get_parameter(m, "0.weight"), TFW_DTYPE_F32, 2, (int64_t[]){2, 3},
                    ref, 1e-5, 1e-6, "copied");
    tfw_named_tensors_free(sd, n);
    tfw_ema_release(e2);
    /* a module of another shape is refused */
    tfw_module *other = tfw_linear_new(3, 4, true);
    th_expect_error(tfw_ema_update(e, other), TFW_EVALUE, "tensors", "other module");
    tfw_module_release(other);
    tfw_ema_release(e);
  }
  th_expect_error(tfw_ema_new(m, 1.5, false, false) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "decay must be in [0, 1]", "decay");
  tfw_module_release(m);
  th_expect_no_leaks();
}

/* ---- loss scaler ------------------------------------------------------------------------------- */
/* Reference: torch.cuda.amp.GradScaler as documented (and _amp_update_scale_): grads are
 * multiplied by float32(1 / scale); any Inf/NaN skips optimizer.step(); update() multiplies
 * the scale by backoff after an overflow (tracker = 0) or by growth after growth_interval
 * clean steps in a row. */
Test(grad_scaler, matches_reference_with_skipped_steps) {
  const int STEPS = 16;
  const bool overflow[16] = {0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1};
  tfw_tensor *p = leaf(TFW_DTYPE_F32, 1, (int64_t[]){4}, 3);
  double pref[4];
  double *pv = th_values(p);
  memcpy(pref, pv, sizeof pref);
  free(pv);
  tfw_optimizer *opt = tfw_sgd_new(1, &p, 0.1, 0, 0, false);
  tfw_grad_scaler *s = tfw_grad_scaler_new(65536, 2, 0.5, 3, true);
  double scale = 65536;
  int tracker = 0;
  for (int t = 0; t < STEPS; t++) {
    /* loss = sum(c * p) with c finite, or Inf when this step overflows */
    float c[4] = {0.5f, -1.0f, 0.25f, 2.0f};
    if (overflow[t]) c[1] = INFINITY;
    tfw_tensor *ct = tfw_from_data(TFW_DTYPE_F32, 1, (int64_t[]){4}, c);
    tfw_tensor *m = tfw_mul(p, ct), *l = tfw_sum(m, 0, NULL, false);
    tfw_tensor *sl = tfw_grad_scaler_scale(s, l);
    double lv, sv;
    tfw_item(l, &lv), tfw_item(sl, &sv);
    if (!overflow[t]) cr_expect_eq((float)sv, (float)(lv * scale));
    tfw_optimizer_zero_grad(opt, true);
    cr_assert(tfw_backward(sl, NULL, false, false) == TFW_OK);
    bool stepped;
    cr_assert(tfw_grad_scaler_step(s, opt, &stepped) == TFW_OK, "%s", tfw_last_error());
    cr_expect_eq(stepped, !overflow[t], "step %d", t);
    cr_expect_eq(tfw_grad_scaler_found_inf(s), overflow[t]);
    if (!overflow[t]) { /* the unscaled gradient is c: reference SGD step */
      float inv = (float)(1.0 / scale);
      for (int j = 0; j < 4; j++) {
        float g = (float)(c[j] * (float)scale) * inv;
        pref[j] = (float)((float)pref[j] - (float)0.1 * g);
      }
    }
    cr_assert(tfw_grad_scaler_update(s) == TFW_OK);
    if (overflow[t]) {
      scale *= 0.5, tracker = 0;
    } else if (++tracker == 3) {
      scale *= 2, tracker = 0;
    }
    cr_expect_eq(tfw_grad_scaler_get_scale(s), scale, "step %d: scale %g, reference %g", t,
                 tfw_grad_scaler_get_scale(s), scale);
    tfw_release(ct), tfw_release(m), tfw_release(l), tfw_release(sl);
  }
  th_expect_close(p, TFW_DTYPE_F32, 1, (int64_t[]){4}, pref, 0, 0, "params after scaled steps");
  /* state dict round trip; misuse */
  tfw_named_tensor *sd;
  int n;
  cr_assert(tfw_grad_scaler_state_dict(s, &sd, &n) == TFW_OK);
  tfw_grad_scaler *s2 = tfw_grad_scaler_new(1, 2, 0.5, 2000, true);
  cr_assert(tfw_grad_scaler_load_state_dict(s2, n, sd) == TFW_OK, "%s", tfw_last_error());
  cr_expect_eq(tfw_grad_scaler_get_scale(s2), scale);
  tfw_named_tensors_free(sd, n);
  th_expect_error(tfw_grad_scaler_update(s2), TFW_ESTATE, "no inf checks", "update first");
  tfw_tensor *l = tfw_sum(p, 0, NULL, false);
  tfw_backward(l, NULL, false, false);
  cr_assert(tfw_grad_scaler_unscale_(s2, opt) == TFW_OK);
  th_expect_error(tfw_grad_scaler_unscale_(s2, opt), TFW_ESTATE, "already been called", "twice");
  cr_assert(tfw_grad_scaler_step(s2, opt, NULL) == TFW_OK);
  th_expect_error(tfw_grad_scaler_step(s2, opt, NULL), TFW_ESTATE, "already been called", "step twice");
  th_expect_error(tfw_grad_scaler_new(0, 2, 0.5, 1, true) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "init_scale", "zero scale");
  tfw_release(l);
  tfw_grad_scaler_release(s), tfw_grad_scaler_release(s2);
  tfw_optimizer_release(opt);
  tfw_release(p);
  th_expect_no_leaks();
}
