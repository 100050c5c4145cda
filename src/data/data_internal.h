/* tenflower data pipeline internals. Internal header — never installed. */
#ifndef TFW_DATA_INTERNAL_H
#define TFW_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tenflower/data.h"
#include "tenflower/data_media.h"

/* Parses an IDX file held in memory (plain or gzip). name is used in messages. The fuzz
 * target and tfw_idx_read share it. */
tfw_tensor *tfw__idx_parse_buffer(const uint8_t *data, size_t size, const char *name);

/* splitmix64: the loader's and random_split's permutation generator. A pure function of
 * its state, so orders depend only on (seed, epoch). */
static inline uint64_t tfw__splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/* Fills perm[0..n) with a uniformly random permutation of 0..n-1 (Fisher-Yates with
 * unbiased bounded draws) from the generator state *s. */
void tfw__random_permutation(int64_t *perm, int64_t n, uint64_t *s);

/* The dataset's vtable and context (for the loader's direct calls). */
const tfw_dataset_vtable *tfw__dataset_vt(const tfw_dataset *ds);
void *tfw__dataset_ctx(const tfw_dataset *ds);

/* Reads a whole file into a new tfw__malloc'd buffer (*size bytes; one extra NUL byte after
 * them). Files above max_bytes are TFW_EFORMAT; unreadable ones TFW_EIO. op names the
 * caller in messages. */
tfw_status tfw__data_read_file(const char *op, const char *path, size_t max_bytes, uint8_t **data,
                          size_t *size);

/* tfw_image_decode with a name for messages (WebDataset members, image folders). */
tfw_tensor *tfw__image_decode_named(const void *data, size_t size, const char *name,
                                    const tfw_image_options *opt);

/* tfw_audio_decode with a name for messages. */
tfw_tensor *tfw__audio_decode_named(const void *data, size_t size, const char *name,
                                    int64_t max_samples, int *sample_rate);

/* The loader's context of the batch a thread is building (set around the dataset calls,
 * collate and batch_map of a map-style batch; for a stream only epoch is set, indices NULL).
 * Outside a loader: epoch 0, indices NULL, n 0. */
typedef struct tfw__batch_ctx {
  int64_t epoch;
  const int64_t *indices; /* dataset indices of the batch's samples, n of them */
  int64_t n;
} tfw__batch_ctx;
const tfw__batch_ctx *tfw__batch_ctx_get(void);
void tfw__batch_ctx_set(int64_t epoch, const int64_t *indices, int64_t n);

#endif
