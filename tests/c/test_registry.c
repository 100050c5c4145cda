/* Tests generated from the op registry: every op has samples that run; every op survives
 * hostile inputs (NULL tensors, wrong dtypes, wrong shapes, out-of-range and huge
 * attributes) with a clean status and a message naming the op; docs/ops.md is current. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

char *tfw__ops_markdown(void);

static void release_out(const tfw__op_def *op, tfw_tensor **out) {
  for (int k = 0; k < op->n_out; k++) tfw_release(out[k]);
}

Test(registry, every_op_has_samples_that_run) {
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    cr_assert_eq(op->id, id, "table order broken at %s", op->name);
    cr_assert(op->doc && op->doc[0], "%s has no doc line", op->name);
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 1, "%s has no samples", op->name);
    for (int s = 0; s < n; s++) {
      tfw_tensor *out[TFW__MAX_OUT];
      tfw_status st = tfw__op_run_multi(&calls[s], out);
      cr_assert_eq(st, TFW_OK, "%s sample %d: %s", op->name, s, tfw_last_error());
      for (int k = 0; k < op->n_out; k++) cr_assert(out[k] != NULL, "%s output %d NULL", op->name, k);
      release_out(op, out);
    }
    tfw__samples_free(calls, n);
  }
  th_expect_no_leaks();
}

/* A failed call must report a real code (not internal) and a message that names the op. */
static void expect_clean(const tfw__call *c, const char *what, int s) {
  tfw_tensor *out[TFW__MAX_OUT];
  tfw_clear_error();
  tfw_status st = tfw__op_run_multi(c, out);
  if (st == TFW_OK) {
    release_out(c->op, out);
    return;
  }
  for (int k = 0; k < c->op->n_out; k++) cr_assert(out[k] == NULL, "%s: output left on error", c->op->name);
  cr_assert(st != TFW_EINTERNAL, "%s sample %d, %s: internal error: %s", c->op->name, s, what,
            tfw_last_error());
  cr_assert_eq(st, tfw_last_status(), "%s sample %d, %s: status/last_status mismatch", c->op->name, s, what);
  const char *msg = tfw_last_error();
  cr_assert(msg[0] != '\0', "%s sample %d, %s: empty error message", c->op->name, s, what);
}

Test(registry, hostile_inputs_give_clean_errors) {
  const int64_t ivals[] = {-1, -9, 9, 1000, INT64_MAX, INT64_MIN, 0};
  const double fvals[] = {NAN, INFINITY, -INFINITY, -1e300, 0};
  for (int id = 0; id < TFW__OP_COUNT; id++) {
    const tfw__op_def *op = &tfw__ops[id];
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    for (int s = 0; s < n; s++) {
      const tfw__call base = calls[s];
      /* NULL inputs */
      for (int k = 0; k < base.n_in; k++) {
        tfw__call c = base;
        c.in[k] = NULL;
        tfw_tensor *out[TFW__MAX_OUT];
        tfw_status st = tfw__op_run_multi(&c, out);
        cr_assert_eq(st, TFW_EVALUE, "%s: NULL input %d gave %s", op->name, k, tfw_status_name(st));
        cr_assert(strstr(tfw_last_error(), op->name) != NULL, "%s: message '%s'", op->name,
                  tfw_last_error());
      }
      /* integer attributes */
      for (int slot = 0; slot < 4; slot++)
        for (size_t v = 0; v < sizeof ivals / sizeof ivals[0]; v++) {
          tfw__call c = base;
          c.a.i[slot] = ivals[v];
          expect_clean(&c, "int attr", s);
        }
      /* list attributes */
      for (int k = 0; k < TFW_MAX_DIMS; k++)
        for (size_t v = 0; v < sizeof ivals / sizeof ivals[0]; v++) {
          tfw__call c = base;
          c.a.ints[k] = ivals[v];
          if (c.a.n_ints <= k) c.a.n_ints = k + 1;
          expect_clean(&c, "list attr", s);
        }
      {
        tfw__call c = base;
        c.a.n_ints = TFW_MAX_DIMS + 1;
        expect_clean(&c, "n_ints too large", s);
      }
      /* float attributes */
      for (int slot = 0; slot < 4; slot++)
        for (size_t v = 0; v < sizeof fvals / sizeof fvals[0]; v++) {
          tfw__call c = base;
          c.a.f[slot] = fvals[v];
          expect_clean(&c, "float attr", s);
        }
      /* dtype attribute */
      {
        tfw__call c = base;
        c.a.dtype = (tfw_dtype)77;
        expect_clean(&c, "bad dtype attr", s);
      }
      /* every input in every dtype, and in odd shapes */
      for (int k = 0; k < base.n_in; k++) {
        for (int d = 0; d < TFW_DTYPE_COUNT; d++) {
          tfw__call c = base;
          tfw_tensor *t = tfw_to_dtype(base.in[k], (tfw_dtype)d);
          cr_assert(t);
          c.in[k] = t;
          expect_clean(&c, "dtype", s);
          tfw_release(t);
        }
        const int64_t odd[3][3] = {{7, 1, 3}, {0, 2, 1}, {1, 1, 1}};
        const int nds[3] = {3, 3, 0};
        for (int o = 0; o < 3; o++) {
          tfw__call c = base;
          tfw_tensor *t = tfw_ones(base.in[k]->dtype, nds[o], odd[o]);
          c.in[k] = t;
          expect_clean(&c, "shape", s);
          tfw_release(t);
        }
      }
    }
    tfw__samples_free(calls, n);
  }
  th_expect_no_leaks();
}

Test(registry, docs_ops_md_is_current) {
  char *md = tfw__ops_markdown();
  cr_assert(md);
  FILE *f = fopen(TFW_SOURCE_DIR "/docs/ops.md", "rb");
  if (!f) free(md);
  cr_assert(f, "docs/ops.md is missing: run `make docs`");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *file = malloc((size_t)n + 1);
  cr_assert(fread(file, 1, (size_t)n, f) == (size_t)n);
  file[n] = '\0';
  fclose(f);
  bool same = strcmp(md, file) == 0;
  free(md);
  free(file);
  cr_assert(same, "docs/ops.md is stale: run `make docs`");
  th_expect_no_leaks();
}
