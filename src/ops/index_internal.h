/* Helpers shared by the index op family (index.c, index_mask.c, sort.c, index_samples.c).
 * Internal header — never installed. */
#ifndef TFW_INDEX_INTERNAL_H
#define TFW_INDEX_INTERNAL_H

#include "ops/registry.h"

/* Wraps the int64 dim attribute against ndim (0-d tensors accept 0 and -1). Returns the
 * wrapped dim, or -1 with TFW_EINDEX set naming op. */
int tfw__index_wrap_dim(const char *op, int64_t dim, int ndim);

/* Index tensors must be int64 or int32: TFW_EDTYPE naming op otherwise. */
tfw_status tfw__index_check_dtype(const char *op, const tfw_tensor *index);

/* An odometer over a subset of a shape's dims (row-major over dims[0..n)), carrying up to
 * three running offsets (each in its own unit: bytes or elements). It lets a kernel visit
 * "rows" or "lines" of an N-d strided problem in O(1) per step. */
#define TFW__WALK_OFFS 3
typedef struct tfw__walk {
  int n;
  int64_t size[TFW_MAX_DIMS];
  int64_t st[TFW__WALK_OFFS][TFW_MAX_DIMS];
  int64_t pos[TFW_MAX_DIMS];
  int64_t off[TFW__WALK_OFFS];
} tfw__walk;

/* Positions the walk at linear position start (row-major over the n sizes). */
static inline void tfw__walk_seek(tfw__walk *w, int64_t start) {
  for (int o = 0; o < TFW__WALK_OFFS; o++) w->off[o] = 0;
  for (int k = w->n - 1; k >= 0; k--) {
    w->pos[k] = w->size[k] > 0 ? start % w->size[k] : 0;
    start = w->size[k] > 0 ? start / w->size[k] : 0;
    for (int o = 0; o < TFW__WALK_OFFS; o++) w->off[o] += w->pos[k] * w->st[o][k];
  }
}

static inline void tfw__walk_next(tfw__walk *w) {
  for (int k = w->n - 1; k >= 0; k--) {
    if (++w->pos[k] < w->size[k]) {
      for (int o = 0; o < TFW__WALK_OFFS; o++) w->off[o] += w->st[o][k];
      return;
    }
    w->pos[k] = 0;
    for (int o = 0; o < TFW__WALK_OFFS; o++) w->off[o] -= (w->size[k] - 1) * w->st[o][k];
  }
}

#endif
