/* Dynamic loss scaling with torch.cuda.amp.GradScaler's algorithm (PyTorch 1.13): the scale
 * is kept as a float32 value (as PyTorch's scale tensor), gradients are multiplied by the
 * float32 reciprocal of the scale, and _amp_update_scale_'s rule adjusts it. */
#include <math.h>

#include "autograd/autograd.h"
#include "optim/optimizer.h"

#define MAX_OPTS 8

typedef struct opt_rec {
  const tfw_optimizer *opt;
  bool unscaled, stepped, found_inf;
} opt_rec;

struct tfw_grad_scaler {
  double scale, growth, backoff;
  int64_t interval, tracker;
  bool enabled;
  opt_rec rec[MAX_OPTS];
  int n_rec;
};

tfw_grad_scaler *tfw_grad_scaler_new(double init_scale, double growth_factor,
                                     double backoff_factor, int64_t growth_interval, bool enabled) {
  const char *op = "grad_scaler_new";
  if (!(init_scale > 0) || !isfinite((float)init_scale)) {
    tfw__error(TFW_EVALUE, "%s: init_scale must be a finite float32 value > 0, got %g", op, init_scale);
    return NULL;
  }
  if (!(growth_factor > 1.0) || !isfinite(growth_factor)) {
    tfw__error(TFW_EVALUE, "%s: growth_factor must be > 1, got %g", op, growth_factor);
    return NULL;
  }
  if (!(backoff_factor > 0 && backoff_factor < 1.0)) {
    tfw__error(TFW_EVALUE, "%s: backoff_factor must be in (0, 1), got %g", op, backoff_factor);
    return NULL;
  }
  if (growth_interval < 1) {
    tfw__error(TFW_EVALUE, "%s: growth_interval must be >= 1, got %lld", op, (long long)growth_interval);
    return NULL;
  }
  tfw_grad_scaler *s = tfw__calloc(1, sizeof *s);
  if (!s) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    return NULL;
  }
  s->scale = (float)init_scale, s->growth = growth_factor, s->backoff = backoff_factor;
  s->interval = growth_interval, s->enabled = enabled;
  return s;
}

void tfw_grad_scaler_release(tfw_grad_scaler *s) { tfw__free(s); }

double tfw_grad_scaler_get_scale(const tfw_grad_scaler *s) {
  return s ? (s->enabled ? s->scale : 1.0) : NAN;
}

bool tfw_grad_scaler_found_inf(const tfw_grad_scaler *s) {
  if (!s) return false;
  for (int i = 0; i < s->n_rec; i++)
    if (s->rec[i].found_inf) return true;
  return false;
}

tfw_tensor *tfw_grad_scaler_scale(const tfw_grad_scaler *s, const tfw_tensor *loss) {
  if (!s || !loss) {
    tfw__error(TFW_EVALUE, "grad_scaler_scale: %s is NULL", s ? "loss" : "scaler");
    return NULL;
  }
  if (!s->enabled) return tfw_retain((tfw_tensor *)loss);
  return tfw_mul_scalar(loss, s->scale);
}

static opt_rec *rec_for(tfw_grad_scaler *s, const tfw_optimizer *opt) {
  for (int i = 0; i < s->n_rec; i++)
    if (s->rec[i].opt == opt) return &s->rec[i];
  if (s->n_rec == MAX_OPTS) return NULL;
  s->rec[s->n_rec] = (opt_rec){opt, false, false, false};
  return &s->rec[s->n_rec++];
}

tfw_status tfw_grad_scaler_unscale_(tfw_grad_scaler *s, tfw_optimizer *opt) {
  const char *op = "grad_scaler_unscale_";
  if (!s || !opt) return tfw__error(TFW_EVALUE, "%s: %s is NULL", op, s ? "optimizer" : "scaler");
  if (!s->enabled) return TFW_OK;
  opt_rec *r = rec_for(s, opt);
  if (!r) return tfw__error(TFW_EVALUE, "%s: at most %d optimizers per iteration", op, MAX_OPTS);
  if (r->unscaled)
    return tfw__error(TFW_ESTATE, "%s: unscale_() has already been called on this optimizer "
                                  "since the last update()", op);
  if (r->stepped)
    return tfw__error(TFW_ESTATE, "%s: unscale_() is being called after step()", op);
  float inv = (float)(1.0 / s->scale); /* PyTorch: scale.double().reciprocal().float() */
  bool found = false;
  for (int i = 0; i < opt->n_params; i++) {
    tfw_tensor *p = opt->params[i].p, *g = tfw__param_grad(p);
    if (!g) continue;
    /* an exclusively owned contiguous gradient is changed in place, any other replaced */
    if (!(tfw__is_contiguous(g) && atomic_load(&g->refcount) == 1 &&
          atomic_load(&g->storage->refcount) == 1 && g->storage->owned)) {
      tfw_tensor *c = tfw__as_contiguous(g, p->dtype);
      tfw_tensor *own = c && c == g ? tfw_clone(g) : c;
      if (c && c == g) tfw_release(c);
      if (!own) return tfw_last_status();
      tfw__param_set_grad(p, own);
      tfw_release(own);
      g = own;
    }
    int64_t n = tfw_tensor_numel(g);
    if (g->dtype == TFW_DTYPE_F32) {
      float *d = (float *)tfw__data(g);
      for (int64_t k = 0; k < n; k++) {
        found |= !isfinite(d[k]);
        d[k] *= inv;
      }
    } else if (g->dtype == TFW_DTYPE_F64) {
      double *d = (double *)tfw__data(g);
      for (int64_t k = 0; k < n; k++) {
        found |= !isfinite(d[k]);
        d[k] *= (double)inv;
      }
    } else {
      return tfw__error(TFW_EDTYPE, "%s: gradient of parameter %d has dtype %s", op, i,
                        tfw_dtype_name(g->dtype));
    }
    tfw__bump_version(g);
  }
  r->unscaled = true;
  r->found_inf = found;
  return TFW_OK;
}

tfw_status tfw_grad_scaler_step(tfw_grad_scaler *s, tfw_optimizer *opt, bool *stepped) {
  const char *op = "grad_scaler_step";
  if (stepped) *stepped = false;
  if (!s || !opt) return tfw__error(TFW_EVALUE, "%s: %s is NULL", op, s ? "optimizer" : "scaler");
  if (!s->enabled) {
    tfw_status st = tfw_optimizer_step(opt);
    if (!st && stepped) *stepped = true;
    return st;
  }
  opt_rec *r = rec_for(s, opt);
  if (!r) return tfw__error(TFW_EVALUE, "%s: at most %d optimizers per iteration", op, MAX_OPTS);
  if (r->stepped)
    return tfw__error(TFW_ESTATE, "%s: step() has already been called since the last update()", op);
  if (!r->unscaled) {
    tfw_status st = tfw_grad_scaler_unscale_(s, opt);
    if (st) return st;
  }
  r->stepped = true;
  if (r->found_inf) return TFW_OK;
  tfw_status st = tfw_optimizer_step(opt);
  if (!st && stepped) *stepped = true;
  return st;
}

tfw_status tfw_grad_scaler_update(tfw_grad_scaler *s) {
  if (!s) return tfw__error(TFW_EVALUE, "grad_scaler_update: scaler is NULL");
  if (!s->enabled) return TFW_OK;
  bool any = false, found = false;
  for (int i = 0; i < s->n_rec; i++) any |= s->rec[i].unscaled, found |= s->rec[i].found_inf;
  if (!any)
    return tfw__error(TFW_ESTATE, "grad_scaler_update: no inf checks were recorded prior to "
                                  "update() (call step() or unscale_() first)");
  if (found) {
    s->scale = (float)(s->scale * s->backoff);
    s->tracker = 0;
  } else if (s->tracker + 1 == s->interval) {
    float ns = (float)(s->scale * s->growth);
    if (isfinite(ns)) s->scale = ns;
    s->tracker = 0;
  } else {
    s->tracker += 1;
  }
  s->n_rec = 0;
  return TFW_OK;
}

tfw_status tfw_grad_scaler_state_dict(const tfw_grad_scaler *s, tfw_named_tensor **out, int *count) {
  if (!out || !count) return tfw__error(TFW_EVALUE, "grad_scaler_state_dict: out and count are required");
  *out = NULL;
  *count = 0;
  if (!s) return tfw__error(TFW_EVALUE, "grad_scaler_state_dict: scaler is NULL");
  tfw__sd_builder b = {0};
  tfw__sd_add_scalar(&b, s->scale, "scale");
  tfw__sd_add_scalar(&b, s->growth, "growth_factor");
  tfw__sd_add_scalar(&b, s->backoff, "backoff_factor");
  tfw__sd_add_scalar(&b, (double)s->interval, "growth_interval");
  tfw__sd_add_scalar(&b, (double)s->tracker, "growth_tracker");
  return tfw__sd_finish(&b, out, count);
}

tfw_status tfw_grad_scaler_load_state_dict(tfw_grad_scaler *s, int n, const tfw_named_tensor *sd) {
  const char *op = "grad_scaler_load_state_dict";
  if (!s) return tfw__error(TFW_EVALUE, "%s: scaler is NULL", op);
  tfw__sd_reader r;
  double v[5];
  const char *names[5] = {"scale", "growth_factor", "backoff_factor", "growth_interval",
                          "growth_tracker"};
  tfw_status st = tfw__sd_reader_init(&r, op, n, sd);
  for (int i = 0; i < 5 && !st; i++) st = tfw__sd_scalar(&r, &v[i], "%s", names[i]);
  if (!st) st = tfw__sd_check_unused(&r);
  if (!st && !(v[0] > 0 && v[1] > 1 && v[2] > 0 && v[2] < 1 && v[3] >= 1 && v[4] >= 0 &&
               v[4] < v[3] && v[3] == floor(v[3]) && v[4] == floor(v[4]) && v[3] < 9e15))
    st = tfw__error(TFW_EVALUE, "%s: invalid values (scale %g, growth_factor %g, backoff_factor "
                                "%g, growth_interval %g, growth_tracker %g)", op, v[0], v[1],
                    v[2], v[3], v[4]);
  if (!st) {
    s->scale = (float)v[0], s->growth = v[1], s->backoff = v[2];
    s->interval = (int64_t)v[3], s->tracker = (int64_t)v[4];
  }
  tfw__sd_reader_free(&r);
  return st;
}
