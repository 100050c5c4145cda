/* Anomaly mode: finds the first op that produced NaN/Inf, forward or backward.
 *
 * Forward: the recorder (tfw__autograd_record, called by the dispatcher after every kernel)
 * asks tfw__anomaly_check_forward to scan the op's floating outputs. An op is the offender
 * when an output holds NaN while no input did, or Inf while no input did: an -inf mask
 * added to attention scores passes, the softmax of an all -inf row (NaN from Inf) fails.
 * Ops without tensor inputs (full, arange, rand) are not checked: their values are the
 * caller's choice. Backward: the engine runs every rule through tfw__run_backward_rule,
 * which scans the gradients the rule returns (any NaN/Inf fails, as in PyTorch). The ops a
 * rule runs internally are not checked one by one (a rule may compute Inf and mask it
 * away); its results are.
 *
 * Scans read every element (a debugging mode); the flag is one relaxed atomic load when off. */
#include <math.h>
#include <stdio.h>

#include "autograd/autograd.h"

enum { BAD_NAN = 1, BAD_INF = 2 };

static _Atomic bool g_anomaly;
static _Thread_local int g_in_rule; /* >0 while a backward rule runs on this thread */

void tfw_set_anomaly_mode(bool on) { atomic_store(&g_anomaly, on); }
bool tfw_anomaly_mode(void) { return atomic_load_explicit(&g_anomaly, memory_order_relaxed); }

static unsigned classify(double v) { return isnan(v) ? BAD_NAN : isinf(v) ? BAD_INF : 0; }

/* BAD_NAN | BAD_INF for the non-finite values t holds (0 for non-floating tensors). */
static unsigned scan(const tfw_tensor *t) {
  if (!t || !tfw_dtype_is_floating(t->dtype)) return 0;
  int64_t n = tfw__numel(t->ndim, t->shape);
  if (n <= 0) return 0;
  unsigned bad = 0;
  const char *base = tfw__data(t);
  size_t es = tfw_dtype_size(t->dtype);
  if (tfw__is_contiguous(t) && t->dtype == TFW_DTYPE_F32) {
    const float *p = (const float *)base;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(p[i])) bad |= classify(p[i]);
    return bad;
  }
  if (tfw__is_contiguous(t) && t->dtype == TFW_DTYPE_F64) {
    const double *p = (const double *)base;
    for (int64_t i = 0; i < n; i++)
      if (!isfinite(p[i])) bad |= classify(p[i]);
    return bad;
  }
  int64_t idx[TFW_MAX_DIMS] = {0}, off = 0; /* odometer over any strides, f16/bf16 too */
  for (int64_t i = 0; i < n; i++) {
    bad |= classify(tfw__load_f64(base + off * (int64_t)es, t->dtype));
    for (int d = t->ndim - 1; d >= 0; d--) {
      off += t->strides[d];
      if (++idx[d] < t->shape[d]) break;
      off -= t->strides[d] * t->shape[d];
      idx[d] = 0;
    }
  }
  return bad;
}

static const char *bad_name(unsigned bad) {
  return bad == (BAD_NAN | BAD_INF) ? "NaN and Inf" : bad == BAD_NAN ? "NaN" : "Inf";
}

/* "[3, 4], [4]": the shapes of n tensors. */
static void shapes_str(char *buf, size_t cap, int n, const tfw_tensor *const *t) {
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < n && len + 1 < cap; i++) {
    char b[TFW__SHAPE_BUF];
    int w = snprintf(buf + len, cap - len, "%s%s", i ? ", " : "",
                     t[i] ? tfw__shape_str(b, sizeof b, t[i]->ndim, t[i]->shape) : "(none)");
    if (w < 0) break;
    len += (size_t)w;
  }
}

tfw_status tfw__anomaly_check_forward(const tfw__call *c, tfw_tensor **out) {
  if (!tfw_anomaly_mode() || g_in_rule || c->n_in == 0) return TFW_OK;
  for (int k = 0; k < c->op->n_out; k++) {
    unsigned bad = scan(out[k]);
    if (!bad) continue;
    unsigned had = 0;
    for (int i = 0; i < c->n_in; i++) had |= scan(c->in[i]);
    if (!(bad & ~had)) continue;
    char shapes[512];
    shapes_str(shapes, sizeof shapes, c->n_in, c->in);
    return tfw__error(TFW_EVALUE, "anomaly: %s (forward) produced NaN/Inf from inputs of shape "
                      "%s (output %d holds %s)", c->op->name, shapes, k, bad_name(bad & ~had));
  }
  return TFW_OK;
}

tfw_status tfw__run_backward_rule(const tfw__node *n, tfw_tensor *const *gout, tfw_tensor **gin) {
  g_in_rule++;
  tfw_status st = n->op->backward(n, gout, gin);
  g_in_rule--;
  if (st || !tfw_anomaly_mode()) return st;
  for (int i = 0; i < n->call.n_in; i++) {
    unsigned bad = scan(gin[i]);
    if (!bad) continue;
    char shapes[512];
    shapes_str(shapes, sizeof shapes, n->call.n_in, (const tfw_tensor *const *)n->saved);
    return tfw__error(TFW_EVALUE, "anomaly: %s (backward) produced NaN/Inf in the gradient of "
                      "input %d (it holds %s) from inputs of shape %s", n->op->name, i,
                      bad_name(bad), shapes);
  }
  return TFW_OK;
}
