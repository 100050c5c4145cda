/* tenflower — tensors: creation, views, inspection, copies.
 *
 * A tfw_tensor is an opaque, reference-counted handle to a strided view of a storage.
 * Ownership: every function that returns a tfw_tensor * returns a new reference that the
 * caller releases with tfw_release(); functions that take tensors borrow them. On error a
 * function returns NULL (or a status) and sets tfw_last_error(). */
#ifndef TENFLOWER_TENSOR_H
#define TENFLOWER_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dtype.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TFW_MAX_DIMS 8

typedef struct tfw_tensor tfw_tensor;

/* ---- lifetime ---------------------------------------------------------------------- */
TFW_API tfw_tensor *tfw_retain(tfw_tensor *t); /* returns t; NULL-safe */
TFW_API void tfw_release(tfw_tensor *t);       /* NULL is a no-op */

/* ---- inspection (borrowing; valid while t is alive) ---------------------------------- */
TFW_API int tfw_tensor_ndim(const tfw_tensor *t);
TFW_API const int64_t *tfw_tensor_shape(const tfw_tensor *t);
TFW_API const int64_t *tfw_tensor_strides(const tfw_tensor *t); /* in elements */
TFW_API int64_t tfw_tensor_size(const tfw_tensor *t, int dim);  /* dim may be negative */
TFW_API int64_t tfw_tensor_numel(const tfw_tensor *t);
TFW_API int64_t tfw_tensor_offset(const tfw_tensor *t);         /* in elements */
TFW_API tfw_dtype tfw_tensor_dtype(const tfw_tensor *t);
TFW_API bool tfw_tensor_is_contiguous(const tfw_tensor *t);
/* Address of element [0, 0, ...] (the storage base plus the offset). */
TFW_API void *tfw_tensor_data(const tfw_tensor *t);
/* Reads one element as double at a multi-index (len ndim). Returns TFW_EINDEX if outside. */
TFW_API tfw_status tfw_tensor_get(const tfw_tensor *t, const int64_t *index, double *out);
TFW_API tfw_status tfw_tensor_set(tfw_tensor *t, const int64_t *index, double value);
/* The value of a one-element tensor. */
TFW_API tfw_status tfw_item(const tfw_tensor *t, double *out);
TFW_API tfw_status tfw_item_i64(const tfw_tensor *t, int64_t *out);
/* True if the two tensors share a storage. */
TFW_API bool tfw_tensor_shares_storage(const tfw_tensor *a, const tfw_tensor *b);

/* ---- creation ------------------------------------------------------------------------ */
TFW_API tfw_tensor *tfw_empty(tfw_dtype dt, int ndim, const int64_t *shape);
TFW_API tfw_tensor *tfw_zeros(tfw_dtype dt, int ndim, const int64_t *shape);
TFW_API tfw_tensor *tfw_ones(tfw_dtype dt, int ndim, const int64_t *shape);
TFW_API tfw_tensor *tfw_full(tfw_dtype dt, int ndim, const int64_t *shape, double value);
TFW_API tfw_tensor *tfw_scalar(tfw_dtype dt, double value); /* 0-d tensor */
TFW_API tfw_tensor *tfw_zeros_like(const tfw_tensor *t);
TFW_API tfw_tensor *tfw_ones_like(const tfw_tensor *t);
TFW_API tfw_tensor *tfw_full_like(const tfw_tensor *t, double value);
/* [start, end) in steps of step (step != 0); length ceil((end - start) / step). */
TFW_API tfw_tensor *tfw_arange(double start, double end, double step, tfw_dtype dt);
TFW_API tfw_tensor *tfw_linspace(double start, double end, int64_t steps, tfw_dtype dt);
TFW_API tfw_tensor *tfw_eye(int64_t n, int64_t m, tfw_dtype dt);
/* Copies numel(shape) contiguous elements of dtype dt from data. */
TFW_API tfw_tensor *tfw_from_data(tfw_dtype dt, int ndim, const int64_t *shape, const void *data);
/* Wraps a user buffer without copying. strides may be NULL (contiguous). release (may be
 * NULL) is called with (ctx, data) once the last tensor using the buffer is gone. */
typedef void (*tfw_release_fn)(void *ctx, void *data);
TFW_API tfw_tensor *tfw_from_buffer(tfw_dtype dt, int ndim, const int64_t *shape,
                                    const int64_t *strides, void *data, tfw_release_fn release,
                                    void *ctx);

/* ---- random (Philox4x32-10; same numbers for any thread count) ------------------------ */
TFW_API void tfw_manual_seed(uint64_t seed);
TFW_API uint64_t tfw_initial_seed(void);
/* The global generator state is (seed, offset); each random op consumes offsets. */
TFW_API void tfw_rng_get_state(uint64_t *seed, uint64_t *offset);
TFW_API void tfw_rng_set_state(uint64_t seed, uint64_t offset);
TFW_API tfw_tensor *tfw_rand(tfw_dtype dt, int ndim, const int64_t *shape);  /* U[0, 1) */
TFW_API tfw_tensor *tfw_randn(tfw_dtype dt, int ndim, const int64_t *shape); /* N(0, 1) */
TFW_API tfw_tensor *tfw_randint(int64_t low, int64_t high, tfw_dtype dt, int ndim,
                                const int64_t *shape); /* [low, high) */
TFW_API tfw_tensor *tfw_bernoulli(const tfw_tensor *p); /* 1 with probability p, same dtype */
/* Op-local randomness: the same draws from an explicit Philox (seed, offset) (offset in
 * 128-bit counter blocks) instead of the global generator, which is left untouched. The
 * global-generator forms above reserve their (seed, offset) up front and record it in the
 * op's call, so any recorded random op can be replayed exactly (checkpointing, graphs). */
TFW_API tfw_tensor *tfw_rand_at(uint64_t seed, uint64_t offset, tfw_dtype dt, int ndim,
                                const int64_t *shape);
TFW_API tfw_tensor *tfw_randn_at(uint64_t seed, uint64_t offset, tfw_dtype dt, int ndim,
                                 const int64_t *shape);
TFW_API tfw_tensor *tfw_bernoulli_at(uint64_t seed, uint64_t offset, const tfw_tensor *p);

/* ---- copies and casts ---------------------------------------------------------------- */
TFW_API tfw_tensor *tfw_contiguous(const tfw_tensor *t); /* t itself (retained) if contiguous */
TFW_API tfw_tensor *tfw_clone(const tfw_tensor *t);      /* always a new contiguous copy */
TFW_API tfw_tensor *tfw_to_dtype(const tfw_tensor *t, tfw_dtype dt); /* cast (copy) */
/* dst[...] = src, broadcasting src to dst's shape and casting to dst's dtype. */
TFW_API tfw_status tfw_copy_(tfw_tensor *dst, const tfw_tensor *src);
TFW_API tfw_status tfw_fill_(tfw_tensor *dst, double value);

/* ---- printing and comparison ----------------------------------------------------------- */
/* PyTorch-style text, e.g. "tensor([[1.5000, 2.0000],\n        [3.0000, 4.0000]])": a dtype
 * suffix (", dtype=float64") for every dtype but float32, int64 and bool; integral float
 * values print as "1."; more than 1000 elements are summarised with "...". The returned
 * string is owned by the caller: free it with tfw_string_free(). */
TFW_API char *tfw_tensor_format(const tfw_tensor *t);
TFW_API void tfw_string_free(char *s);
TFW_API tfw_status tfw_print(const tfw_tensor *t); /* to stdout */
/* |a - b| <= atol + rtol * |b| elementwise (with broadcasting). */
TFW_API tfw_status tfw_allclose(const tfw_tensor *a, const tfw_tensor *b, double rtol,
                                double atol, bool equal_nan, bool *result);
/* Same shape and all elements equal. */
TFW_API tfw_status tfw_equal(const tfw_tensor *a, const tfw_tensor *b, bool *result);

/* ---- library-wide settings ------------------------------------------------------------ */
TFW_API const char *tfw_version(void);  /* "0.1.0" */
TFW_API void tfw_set_num_threads(int n); /* n <= 0: the default (TFW_NUM_THREADS or cores) */
TFW_API int tfw_get_num_threads(void);

typedef struct tfw_memory_stats {
  int64_t live_tensors;     /* tfw_tensor handles alive */
  int64_t live_bytes;       /* bytes in storages in use */
  int64_t peak_bytes;       /* max of live_bytes since start or the last reset */
  int64_t live_allocations; /* storages in use */
  int64_t total_allocations;/* allocations served, cache hits included */
  int64_t cached_bytes;     /* bytes held by the caching allocator for reuse */
  int64_t cache_hits;
} tfw_memory_stats;
TFW_API void tfw_memory_stats_get(tfw_memory_stats *out);
TFW_API void tfw_memory_reset_peak(void);
TFW_API void tfw_memory_empty_cache(void); /* returns cached blocks to the system */
/* Caps the bytes of live tensor storage: an allocation that would exceed it fails with
 * TFW_ENOMEM. bytes <= 0 removes the cap (the default). For embedders and fuzzing. */
TFW_API void tfw_memory_set_limit(int64_t bytes);
/* Test hook: the Nth allocation from now (1-based) fails with TFW_ENOMEM; 0 disables.
 * With persist, every allocation from the Nth on fails. */
TFW_API void tfw_memory_fail_at(int64_t n, bool persist);

#ifdef __cplusplus
}
#endif
#endif
