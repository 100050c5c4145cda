/* docs/ops.md, generated from the registry. The dtype columns are measured, not declared:
 * each op's first sample is re-run with its first input cast to every dtype, and a cell
 * says whether the op accepted it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "autograd/autograd.h"
#include "ops/registry.h"
#include "ops/samples.h"

typedef struct {
  char *buf;
  size_t len, cap;
} sbuf;

static void put(sbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *s, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    int n = vsnprintf(s->buf ? s->buf + s->len : NULL, s->buf ? s->cap - s->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if (s->buf && s->len + (size_t)n < s->cap) {
      s->len += (size_t)n;
      return;
    }
    size_t cap = (s->cap ? s->cap * 2 : 4096) + (size_t)n;
    char *nb = realloc(s->buf, cap);
    if (!nb) return;
    s->buf = nb;
    s->cap = cap;
  }
}

static bool accepts(const tfw__op_def *op, tfw_dtype dt) {
  tfw__call calls[8];
  int n = op->sample(op, calls, 8);
  if (n == 0) return false;
  tfw__call c = calls[0];
  bool ok = false;
  if (c.n_in == 0) {
    c.a.dtype = dt;
    tfw_tensor *out[TFW__MAX_OUT];
    ok = tfw__op_run_multi(&c, out) == TFW_OK;
    for (int k = 0; ok && k < op->n_out; k++) tfw_release(out[k]);
  } else {
    /* cast every input that has input 0's dtype (both operands of a binary op, but not
     * the index tensor of gather) */
    tfw_tensor *cast[TFW__MAX_IN] = {NULL};
    tfw_dtype orig = c.in[0]->dtype;
    bool made = true;
    for (int k = 0; k < c.n_in; k++) {
      if (c.in[k]->dtype != orig) continue;
      cast[k] = tfw_to_dtype(c.in[k], dt);
      if (!cast[k]) made = false;
      else c.in[k] = cast[k];
    }
    if (made) {
      tfw_tensor *out[TFW__MAX_OUT];
      ok = tfw__op_run_multi(&c, out) == TFW_OK;
      for (int k = 0; ok && k < op->n_out; k++) tfw_release(out[k]);
    }
    for (int k = 0; k < c.n_in; k++) tfw_release(cast[k]);
  }
  tfw__samples_free(calls, n);
  tfw_clear_error();
  return ok;
}

char *tfw__ops_markdown(void) {
  sbuf s = {0};
  put(&s, "# Op coverage\n\n");
  put(&s, "Generated from `src/ops/ops.def` by `make docs` (`tfw_gen_docs`); a test fails when "
          "this file is stale. Dtype columns are measured: the op's first registry sample is run "
          "with its inputs of the first input's dtype cast to that dtype (yes = accepted, - = rejected with "
          "TFW_EDTYPE). f16/bf16 compute in f32 on the CPU.\n\n");
  put(&s, "Autograd columns: `bwd` = reverse-mode rule, `2nd` = double backward (the rule is "
          "built from differentiable ops; both are verified on every sample by "
          "tests/c/test_autograd.c against float64 central differences), `fwd` = forward-mode "
          "(JVP) rule, also checked against finite differences. `-` under `bwd` for an op "
          "marked differentiable means the rule is still missing: reaching it in backward is a "
          "TFW_EUNSUPPORTED error, never a silent zero. The CUDA column fills in with the CUDA "
          "backend.\n\n");
  put(&s, "| op | in | out | f32 | f64 | f16 | bf16 | i8 | u8 | i32 | i64 | bool | CPU | CUDA | diff "
          "| bwd | 2nd | fwd | kind | description |\n");
  put(&s, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int i = 0; i < TFW__OP_COUNT; i++) {
    const tfw__op_def *op = &tfw__ops[i];
    put(&s, "| `%s` | %s | %d |", op->name, op->n_in < 0 ? "n" : (char[]){(char)('0' + op->n_in), 0},
        op->n_out);
    for (int d = 0; d < TFW_DTYPE_COUNT; d++) put(&s, " %s |", accepts(op, (tfw_dtype)d) ? "yes" : "-");
    const char *kind = (op->flags & TFW__OPF_VIEW)        ? "view"
                       : (op->flags & TFW__OPF_ELEMWISE)  ? "elementwise"
                       : (op->flags & TFW__OPF_REDUCTION) ? "reduction"
                       : (op->flags & TFW__OPF_RANDOM)    ? "random"
                                                          : "other";
    bool diff = op->flags & TFW__OPF_DIFF;
    bool bwd = op->backward != tfw__backward_none, fwd = op->jvp != tfw__jvp_none;
    put(&s, " yes | - | %s | %s | %s | %s | %s | %s |\n", diff ? "yes" : "-",
        diff ? (bwd ? "yes" : "**missing**") : "-", diff && bwd ? "yes" : "-",
        diff ? (fwd ? "yes" : "**missing**") : "-", kind, op->doc);
  }
  put(&s, "\n%d ops.\n", (int)TFW__OP_COUNT);
  return s.buf;
}
