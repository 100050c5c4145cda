/* libFuzzer target: op-argument fuzzing over the whole registry (TensorFlow's raw-op
 * fuzzers are the model). The input bytes choose an op, the dtype, shape and layout of each
 * input, and every attribute; the only acceptable outcomes are success or a clean error
 * status with a message. Sizes are kept small so that each run is fast. */
#include <stdint.h>
#include <string.h>

#include "ops/registry.h"
#include "ops/samples.h"

typedef struct {
  const uint8_t *p;
  size_t n;
} rd;

static uint64_t take(rd *r, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) {
    v = (v << 8) | (r->n ? *r->p : 0);
    if (r->n) r->p++, r->n--;
  }
  return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  tfw_memory_set_limit((int64_t)256 << 20); /* large outputs must fail cleanly, not page */
  rd r = {data, size};
  const tfw__op_def *op = &tfw__ops[take(&r, 1) % TFW__OP_COUNT];
  int n_in = op->n_in >= 0 ? op->n_in : (int)(take(&r, 1) % 4);
  const tfw_tensor *in[TFW__MAX_IN] = {NULL};
  for (int k = 0; k < n_in; k++) {
    tfw_dtype dt = (tfw_dtype)(take(&r, 1) % TFW_DTYPE_COUNT);
    int nd = (int)(take(&r, 1) % 5);
    int64_t shape[TFW_MAX_DIMS];
    for (int d = 0; d < nd; d++) shape[d] = (int64_t)(take(&r, 1) % 6);
    tfw__layout layout = (tfw__layout)(take(&r, 1) % 3);
    in[k] = tfw__sample_tensor(dt, nd, shape, -4, 4, take(&r, 1), layout);
    if (!in[k]) goto done;
  }
  tfw__call c;
  tfw__call_init(&c, op->id, n_in, in);
  int n_ints = (int)(take(&r, 1) % 10) - 1;
  c.a.n_ints = n_ints;
  for (int k = 0; k < TFW_MAX_DIMS; k++) c.a.ints[k] = (int64_t)(int8_t)take(&r, 1);
  for (int k = 0; k < 4; k++) c.a.i[k] = (int64_t)(int8_t)take(&r, 1);
  for (int k = 0; k < 4; k++) {
    uint8_t b = (uint8_t)take(&r, 1);
    c.a.f[k] = b == 255 ? __builtin_nan("") : ((double)(int8_t)b) / 4.0;
  }
  c.a.b[0] = take(&r, 1) & 1;
  c.a.b[1] = take(&r, 1) & 1;
  c.a.dtype = (tfw_dtype)(take(&r, 1) % (TFW_DTYPE_COUNT + 1));
  for (int k = 0; k < (int)sizeof c.a.str - 1 && r.n; k++) c.a.str[k] = (char)take(&r, 1);
  tfw_tensor *out[TFW__MAX_OUT];
  if (tfw__op_run_multi(&c, out) == TFW_OK) {
    for (int k = 0; k < op->n_out; k++) tfw_release(out[k]);
  } else if (tfw_last_status() == TFW_EINTERNAL || tfw_last_error()[0] == '\0') {
    __builtin_trap(); /* an internal error or a silent failure is a bug */
  }
done:
  for (int k = 0; k < n_in; k++) tfw_release((tfw_tensor *)in[k]);
  return 0;
}
