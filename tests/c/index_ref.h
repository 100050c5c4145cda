/* Shared helpers of test_index.c and test_sort.c: layouts, multi-index arithmetic. */
#ifndef TFW_TEST_INDEX_REF_H
#define TFW_TEST_INDEX_REF_H

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

enum { L_CONTIG = 0, L_STRIDED = 1, L_BCAST = 2 };

/* A random tensor with the given layout (broadcast: stride 0 on the first non-unit dim). */
static inline tfw_tensor *ir_make(tfw_dtype dt, int nd, const int64_t *shape, int layout, double lo,
                                  double hi, uint64_t seed) {
  if (layout == L_STRIDED && nd > 0) {
    bool empty = false;
    for (int d = 0; d < nd; d++) empty = empty || shape[d] == 0;
    if (!empty) return th_random_strided(dt, nd, shape, lo, hi, seed);
  }
  if (layout == L_BCAST && nd > 0) {
    int64_t small[TFW_MAX_DIMS];
    bool done = false;
    for (int d = 0; d < nd; d++) {
      small[d] = shape[d];
      if (!done && shape[d] > 1) {
        small[d] = 1;
        done = true;
      }
    }
    tfw_tensor *s = th_random(dt, nd, small, lo, hi, seed);
    tfw_tensor *e = tfw_expand(s, nd, shape);
    cr_assert(e, "expand: %s", tfw_last_error());
    tfw_release(s);
    return e;
  }
  return th_random(dt, nd, shape, lo, hi, seed);
}

static inline void ir_unravel(int64_t i, int nd, const int64_t *shape, int64_t *pos) {
  for (int d = nd - 1; d >= 0; d--) {
    pos[d] = shape[d] ? i % shape[d] : 0;
    i = shape[d] ? i / shape[d] : 0;
  }
}

static inline int64_t ir_ravel(int nd, const int64_t *shape, const int64_t *pos) {
  int64_t r = 0;
  for (int d = 0; d < nd; d++) r = r * shape[d] + pos[d];
  return r;
}

static inline int64_t ir_numel(int nd, const int64_t *shape) {
  int64_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  return n;
}

/* Sets element i (row-major) of a tensor of any layout. */
static inline void ir_set(tfw_tensor *t, int64_t i, double v) {
  int64_t pos[TFW_MAX_DIMS];
  ir_unravel(i, tfw_tensor_ndim(t), tfw_tensor_shape(t), pos);
  cr_assert_eq(tfw_tensor_set(t, pos, v), TFW_OK, "%s", tfw_last_error());
}

/* Runs every registry sample of the ops named (NULL-terminated). */
static inline void ir_run_samples(const char *const *names) {
  for (int k = 0; names[k]; k++) {
    const tfw__op_def *op = tfw__op_find(names[k]);
    cr_assert(op, "op %s is not registered", names[k]);
    tfw__call calls[8];
    int n = op->sample(op, calls, 8);
    cr_assert(n >= 2, "%s: only %d samples", op->name, n);
    for (int s = 0; s < n; s++) {
      tfw_tensor *out[TFW__MAX_OUT];
      tfw_status st = tfw__op_run_multi(&calls[s], out);
      cr_assert_eq(st, TFW_OK, "%s sample %d: %s", op->name, s, tfw_last_error());
      for (int o = 0; o < op->n_out; o++) {
        cr_assert(out[o] != NULL);
        tfw_release(out[o]);
      }
    }
    tfw__samples_free(calls, n);
  }
}

#endif
