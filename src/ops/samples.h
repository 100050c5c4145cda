/* Helpers for the registry's sample-input generators (used by the generated tests). */
#ifndef TFW_SAMPLES_H
#define TFW_SAMPLES_H

#include "ops/registry.h"

typedef enum tfw__layout {
  TFW__LAYOUT_CONTIGUOUS = 0,
  TFW__LAYOUT_STRIDED = 1,   /* a transposed, step-2 slice of a larger buffer */
  TFW__LAYOUT_BROADCAST = 2, /* an expanded view (stride 0 on the first non-unit dim) */
} tfw__layout;

/* A deterministic tensor (hash of seed and index; no RNG state touched) with values in
 * [lo, hi) (integers: floor; bool: 0/1) and the given memory layout. NULL on error. */
tfw_tensor *tfw__sample_tensor(tfw_dtype dt, int ndim, const int64_t *shape, double lo, double hi,
                               uint64_t seed, tfw__layout layout);
/* Releases the inputs of n calls. */
void tfw__samples_free(tfw__call *calls, int n);

#endif
