/* The strided N-operand iterator behind every elementwise kernel, casts and copies.
 *
 * Operands are broadcast to a common shape (stride 0 on broadcast dims), size-1 dims are
 * dropped and adjacent dims merged where every operand allows it, so a contiguous problem
 * becomes a single 1-d loop. The work is split into linear ranges (tfw__parallel_for), and
 * the callback sees runs of the innermost dimension: n elements at ptrs[k] with byte stride
 * strides[k] for operand k. */
#ifndef TFW_ITER_H
#define TFW_ITER_H

#include "core/core.h"

#define TFW__ITER_MAX_OPS 6

typedef struct tfw__iter {
  int nops;
  int ndim; /* >= 1 after coalescing; dim ndim-1 is the innermost */
  int64_t numel;
  int64_t shape[TFW_MAX_DIMS];
  int64_t strides[TFW__ITER_MAX_OPS][TFW_MAX_DIMS]; /* bytes */
  char *base[TFW__ITER_MAX_OPS];
} tfw__iter;

typedef void (*tfw__loop_fn)(int64_t n, char **ptrs, const int64_t *strides, void *ctx);

/* ops[k] must be broadcastable to (ndim, shape); the caller has checked that. */
void tfw__iter_init(tfw__iter *it, int nops, const tfw_tensor *const *ops, int ndim,
                    const int64_t *shape);
/* Runs fn over the whole iteration space in parallel (chunks of >= grain elements). */
void tfw__iter_run(const tfw__iter *it, int64_t grain, tfw__loop_fn fn, void *ctx);
/* Serial run over the linear range [begin, end). */
void tfw__iter_range(const tfw__iter *it, int64_t begin, int64_t end, tfw__loop_fn fn, void *ctx);

/* Broadcast shape of n shapes (NumPy rules). Returns TFW_ESHAPE naming op on mismatch. */
tfw_status tfw__broadcast_shapes(const char *op, int n, const tfw_tensor *const *ts, int *ndim,
                                 int64_t *shape);

/* Default grain for cheap elementwise work (elements per chunk). Chosen so that a chunk
 * costs tens of microseconds: below it, OpenMP's fork/join overhead dominates. */
#define TFW__GRAIN_EW 32768

#endif
