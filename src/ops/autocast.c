/* Autocast: the per-thread mixed-precision policy applied by the dispatcher
 * (include/tenflower/amp.h). Which ops run in lower precision and which in float32 is a
 * table by op name, resolved against the registry once, so the op definitions in the .def
 * files stay free of policy. Casts go through the registered cast op, so autograd sees
 * them and gradients reach float32 parameters in float32. */
#include <pthread.h>
#include <string.h>

#include "ops/registry.h"
#include "tenflower/amp.h"

static const char *const k_lower[] = {"matmul", "bmm", "addmm", "baddbmm", "outer", "dot",
                                      "einsum", "conv1d", "conv2d", "conv_transpose1d",
                                      "conv_transpose2d"};
static const char *const k_f32[] = {
    "sum", "mean", "var", "std", "prod", "norm", "logsumexp", "cumsum", "cumprod", "amax",
    "amin", "softmax", "log_softmax", "layer_norm", "rms_norm", "cross_entropy"};

static _Thread_local tfw_autocast_state g_state; /* {false, 0} */
static _Thread_local int g_suspended;             /* >0 while backward runs */
static _Thread_local int g_f32_region;            /* >0 inside a composite loss */
static signed char g_class[TFW__OP_COUNT];         /* 0 none, 1 lower, 2 f32 */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
  for (size_t i = 0; i < sizeof k_lower / sizeof *k_lower; i++) {
    const tfw__op_def *op = tfw__op_find(k_lower[i]);
    if (op) g_class[op->id] = 1;
  }
  for (size_t i = 0; i < sizeof k_f32 / sizeof *k_f32; i++) {
    const tfw__op_def *op = tfw__op_find(k_f32[i]);
    if (op) g_class[op->id] = 2;
  }
  g_class[TFW__OP_cast] = -1; /* the casts autocast itself makes */
}

tfw_status tfw_autocast_set(bool enabled, tfw_dtype dtype, tfw_autocast_state *prev) {
  if (enabled && dtype != TFW_DTYPE_BF16 && dtype != TFW_DTYPE_F16)
    return tfw__error(TFW_EVALUE, "tfw_autocast_set: dtype %s; autocast runs in bfloat16 or "
                      "float16", tfw_dtype_name(dtype));
  if (prev) *prev = g_state;
  pthread_once(&g_once, build_table);
  g_state.enabled = enabled;
  g_state.dtype = enabled ? dtype : TFW_DTYPE_BF16;
  return TFW_OK;
}

void tfw_autocast_restore(tfw_autocast_state prev) {
  pthread_once(&g_once, build_table);
  g_state = prev;
}

tfw_autocast_state tfw_autocast_get(void) { return g_state; }

void tfw__autocast_suspend(bool on) { g_suspended += on ? 1 : -1; }

void tfw__autocast_f32_region(bool on) { g_f32_region += on ? 1 : -1; }

int tfw__autocast_prepare(const tfw__call *c, tfw__call *cc, tfw_tensor **casts) {
  if (!g_state.enabled || g_suspended) return 0;
  int cls = g_class[c->op->id];
  if (cls == 0 && g_f32_region) cls = 2;
  if (cls <= 0) return 0;
  int n = 0;
  for (int i = 0; i < c->n_in && i < TFW__MAX_IN; i++) {
    const tfw_tensor *t = c->in[i];
    casts[i] = NULL;
    if (!t) continue;
    tfw_dtype want = t->dtype;
    if (cls == 1 && t->dtype == TFW_DTYPE_F32) want = g_state.dtype;
    if (cls == 2 && (t->dtype == TFW_DTYPE_BF16 || t->dtype == TFW_DTYPE_F16))
      want = TFW_DTYPE_F32;
    if (want == t->dtype) continue;
    if (n == 0) *cc = *c;
    casts[i] = tfw_to_dtype(t, want);
    if (!casts[i]) {
      for (int k = 0; k < i; k++) tfw_release(casts[k]);
      return -1;
    }
    cc->in[i] = casts[i];
    n++;
  }
  return n;
}

tfw__autocast_saved tfw__autocast_enter(tfw_autocast_state s) {
  tfw__autocast_saved old = {g_state, g_suspended, g_f32_region};
  g_state = s;
  g_suspended = 0;
  g_f32_region = 0;
  return old;
}

void tfw__autocast_leave(tfw__autocast_saved old) {
  g_state = old.state;
  g_suspended = old.suspended;
  g_f32_region = old.f32_region;
}
