/* tenflower — data pipeline: file formats (IDX), MNIST, datasets and the batch loader.
 *
 * Ownership follows the rest of the API: functions returning a tfw_tensor * or a
 * tfw_dataset * / tfw_loader * return a new reference the caller releases; functions taking
 * them borrow (and retain internally what they keep). A tfw_sample is a small value type:
 * it owns one reference on each of its tensors, dropped by tfw_sample_clear().
 * Errors: NULL / a status, with tfw_last_error() naming the function, the file and the
 * problem. docs/data.md has examples and the exact semantics. */
#ifndef TENFLOWER_DATA_H
#define TENFLOWER_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "dtype.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX (the MNIST file format) ---------------------------------------------------------
 * Layout: 2 zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32,
 * 0x0E f64), the rank, rank big-endian u32 dims, then the elements big-endian in C order.
 * The reader accepts plain or gzip-compressed files (recognised by their magic bytes, not
 * the name; gzip needs tenflower built with zlib, else TFW_EUNSUPPORTED). Dtypes: u8 -> u8,
 * i8 -> i8, i32 -> i32, f32 -> f32, f64 -> f64, and i16 -> i32 (tenflower has no i16; the
 * values are exact). Ranks above TFW_MAX_DIMS are TFW_EUNSUPPORTED. Every file is treated
 * as hostile: wrong magic, unknown type code, dims whose product overflows, data shorter
 * or longer than the dims say, corrupt gzip -> TFW_EFORMAT with a message naming the file
 * and the problem, before anything of the claimed size is allocated. TFW_EIO when the file
 * cannot be opened or read, TFW_ENOMEM. Returns a new contiguous tensor. */
TFW_API tfw_tensor *tfw_idx_read(const char *path);
/* Writes t (any strides; dtypes u8 i8 i32 f32 f64, rank 0..8, every dim < 2^32) as IDX,
 * gzip-compressed when path ends in ".gz". Atomic: a temporary beside path, fsync, rename.
 * Errors: TFW_EVALUE (NULL arguments), TFW_EDTYPE (other dtypes), TFW_ESHAPE (a dim too
 * large), TFW_EIO (with strerror), TFW_EUNSUPPORTED (".gz" without zlib), TFW_ENOMEM. */
TFW_API tfw_status tfw_idx_write(const char *path, const tfw_tensor *t);

/* ---- MNIST ------------------------------------------------------------------------------
 * Reads the four MNIST IDX files from dir: {train,t10k}-images-idx3-ubyte and
 * {train,t10k}-labels-idx1-ubyte (a ".gz" variant of each name is also accepted). dir NULL
 * means $TFW_MNIST_DIR. *images gets u8 [N, 28, 28], *labels u8 [N] (N = 60000 for train,
 * 10000 for test in the real files; any N is accepted). Checks that the shapes agree and
 * every label is < 10 (TFW_EFORMAT otherwise). scripts/fetch_mnist.sh downloads the files.
 * On error both outputs are NULL. */
TFW_API tfw_status tfw_mnist_load(const char *dir, bool train, tfw_tensor **images,
                                  tfw_tensor **labels);

/* ---- u8 image normalisation ---------------------------------------------------------------
 * out = (x / 255 - mean[c]) / std[c] as f32, computed in f32 exactly as torchvision's
 * ToTensor + Normalize (so results match PyTorch bit for bit), in one vectorised pass.
 * x: u8, any shape and strides. n_channels == 1: mean[0]/std[0] apply to every element;
 * n_channels > 1: the channel dim is dim -3 (CHW / NCHW layouts) and must have that size.
 * Errors: TFW_EDTYPE (x not u8), TFW_ESHAPE (channel dim), TFW_EVALUE (std == 0, NULL). */
TFW_API tfw_tensor *tfw_normalize_u8(const tfw_tensor *x, int n_channels, const float *mean,
                                     const float *std);

/* ---- samples: a small set of named tensors ---------------------------------------------- */
#define TFW_SAMPLE_MAX_FIELDS 8
#define TFW_SAMPLE_NAME_MAX 32 /* bytes, with the NUL */
typedef struct tfw_sample {
  int n;                                                /* fields in use */
  char names[TFW_SAMPLE_MAX_FIELDS][TFW_SAMPLE_NAME_MAX]; /* copied: no lifetime to track */
  tfw_tensor *tensors[TFW_SAMPLE_MAX_FIELDS];           /* owned references */
} tfw_sample;
/* An empty sample (n = 0). A tfw_sample on the stack may also be zero-initialised. */
TFW_API void tfw_sample_init(tfw_sample *s);
/* Appends (name, t); retains t (the caller keeps its own reference). TFW_EVALUE if the name
 * is empty, too long or already present, or the sample is full. */
TFW_API tfw_status tfw_sample_add(tfw_sample *s, const char *name, tfw_tensor *t);
/* The tensor called name (borrowed; valid while s holds it), or NULL (no error set). */
TFW_API tfw_tensor *tfw_sample_get(const tfw_sample *s, const char *name);
/* Releases every tensor and sets n = 0. Safe on an empty or cleared sample. */
TFW_API void tfw_sample_clear(tfw_sample *s);

/* ---- datasets ----------------------------------------------------------------------------
 * A dataset is a reference-counted handle over a vtable and a context pointer. Map-style
 * datasets give len + get(index); iterable (stream) datasets give iter_open/next/close.
 * The loader calls get / get_batch from several worker threads at once: they must be
 * thread-safe (pure functions of the index are). Iterators are used by one thread at a
 * time. */
typedef struct tfw_dataset tfw_dataset;
typedef struct tfw_dataset_vtable {
  /* map-style: both set */
  int64_t (*len)(void *ctx);
  /* Fills out (empty on entry) with sample index, 0 <= index < len. */
  tfw_status (*get)(void *ctx, int64_t index, tfw_sample *out);
  /* Optional fast path: samples indices[0..n) already collated (each field stacked on a
   * new dim 0). The loader uses it when there is no custom collate. */
  tfw_status (*get_batch)(void *ctx, const int64_t *indices, int64_t n, tfw_sample *out);
  /* iterable: all three set. iter_open returns an iterator for the given epoch (NULL with
   * the error set on failure); iter_next fills out, or leaves it empty at the end. */
  void *(*iter_open)(void *ctx, int64_t epoch);
  tfw_status (*iter_next)(void *ctx, void *it, tfw_sample *out);
  void (*iter_close)(void *ctx, void *it);
  /* Called once with ctx when the last reference goes (may be NULL). */
  void (*destroy)(void *ctx);
} tfw_dataset_vtable;

/* Wraps a vtable (copied) and ctx. Exactly one of {len+get} or {iter_open+iter_next+
 * iter_close} must be complete (TFW_EVALUE otherwise). From success on, the dataset owns ctx
 * (destroy is called when it goes); on failure ctx stays the caller's. */
TFW_API tfw_dataset *tfw_dataset_new(const tfw_dataset_vtable *vt, void *ctx);
TFW_API tfw_dataset *tfw_dataset_retain(tfw_dataset *ds); /* NULL-safe; returns ds */
TFW_API void tfw_dataset_release(tfw_dataset *ds);        /* NULL is a no-op */
TFW_API bool tfw_dataset_is_iterable(const tfw_dataset *ds);
/* Number of samples of a map-style dataset; -1 for an iterable one. */
TFW_API int64_t tfw_dataset_len(const tfw_dataset *ds);
/* Sample index of a map-style dataset into out (cleared first). TFW_EINDEX when out of
 * range, TFW_EUNSUPPORTED for an iterable dataset. */
TFW_API tfw_status tfw_dataset_get(tfw_dataset *ds, int64_t index, tfw_sample *out);

/* Samples are rows: sample i is {names[k]: tensors[k][i]} (views, no copies). The tensors
 * (1 <= n <= TFW_SAMPLE_MAX_FIELDS, rank >= 1) must agree on dim 0 (TFW_ESHAPE otherwise);
 * the dataset keeps a reference on each (a contiguous copy if one is not contiguous).
 * Batches are gathered row by row into one tensor per field (no per-sample tensors). */
TFW_API tfw_dataset *tfw_dataset_from_tensors(int n, const char *const *names,
                                              tfw_tensor *const *tensors);
/* Map-style concatenation (sample indices run through parts in order) of map-style parts,
 * or a chain (one stream after the other) of iterable parts; mixing is TFW_EVALUE. */
TFW_API tfw_dataset *tfw_dataset_concat(int n, tfw_dataset *const *parts);
/* Samples indices[0..n) of a map-style dataset (copied; each in range, TFW_EINDEX). */
TFW_API tfw_dataset *tfw_dataset_subset(tfw_dataset *ds, int64_t n, const int64_t *indices);
/* Splits a map-style dataset into n disjoint subsets of lengths[i] samples (the lengths sum
 * to len), over a permutation drawn from seed (the same seed gives the same split; not
 * PyTorch's generator). out[0..n) receive new references. */
TFW_API tfw_status tfw_dataset_random_split(tfw_dataset *ds, int n, const int64_t *lengths,
                                            uint64_t seed, tfw_dataset **out);
/* Transforms a sample in place (may replace, add or remove fields). Must be thread-safe. */
typedef tfw_status (*tfw_sample_map_fn)(void *ctx, tfw_sample *sample);
/* Sets *keep for a sample. */
typedef tfw_status (*tfw_sample_pred_fn)(void *ctx, const tfw_sample *sample, bool *keep);
/* A dataset whose samples are fn(sample) (lazily, on get / next). ctx must outlive it. */
TFW_API tfw_dataset *tfw_dataset_map(tfw_dataset *ds, tfw_sample_map_fn fn, void *ctx);
/* The samples for which pred says keep. Iterable: lazy. Map-style: pred runs over every
 * sample once, now, and the result is the subset of kept indices (ctx only used now). */
TFW_API tfw_dataset *tfw_dataset_filter(tfw_dataset *ds, tfw_sample_pred_fn pred, void *ctx);

/* ---- collate ---------------------------------------------------------------------------
 * Stacks n samples with the same field names (in the same order) into out: each field
 * becomes [n, ...]. Fields whose shapes differ are TFW_ESHAPE unless pad is set; then they
 * must have the same rank, dtype and dims but dim 0, are padded at the end of dim 0 to the
 * longest with pad_value, and a bool field "<name>_mask" [n, longest] (true at real
 * positions) is added after them. */
TFW_API tfw_status tfw_collate_stack(const tfw_sample *samples, int64_t n, bool pad,
                                     double pad_value, tfw_sample *out);
typedef tfw_status (*tfw_collate_fn)(void *ctx, const tfw_sample *samples, int64_t n,
                                     tfw_sample *out);

/* ---- loader -------------------------------------------------------------------------------
 * Batches of a dataset, epoch after epoch. For a map-style dataset, epoch e's order is a
 * permutation drawn from (seed, e) when shuffle is set (else 0..N-1); rank r of world_size
 * takes positions r, r + W, r + 2W, ... of it; batch b is that list's items [bB, bB + B).
 * So each batch is a pure function of (seed, epoch, rank, world_size, b): the same for any
 * num_workers, and resumable from (epoch, b). An iterable dataset is read as a stream;
 * rank r keeps its k-th sample when k % W == r; shuffle is TFW_EVALUE for it. */
typedef struct tfw_loader_options {
  int64_t batch_size; /* >= 1 */
  bool shuffle;
  uint64_t seed;
  bool drop_last;    /* drop the final, smaller batch of an epoch */
  int num_workers;   /* threads making batches (map-style); 0: in tfw_loader_next's thread */
  int prefetch;      /* batches in flight per worker; 0 means 2 */
  int rank;          /* 0 <= rank < world_size */
  int world_size;    /* 0 means 1 */
  bool even_shards;  /* map-style: wrap the order so every rank gets ceil(N / W) samples
                      * (as PyTorch's DistributedSampler); else each index goes to exactly
                      * one rank and counts differ by at most one */
  bool pad;          /* default collate: pad variable-length fields (see collate) */
  double pad_value;
  tfw_collate_fn collate; /* optional custom collate (then get_batch is not used) */
  void *collate_ctx;
  tfw_sample_map_fn batch_map; /* optional, applied to each collated batch in the worker */
  void *batch_map_ctx;
} tfw_loader_options;
typedef struct tfw_loader tfw_loader;

/* batch_size 1, no shuffle, seed 0, one rank, no workers. */
TFW_API tfw_loader_options tfw_loader_options_default(void);
/* Retains ds. Errors: TFW_EVALUE (batch_size < 1, rank outside [0, world_size), negative
 * workers/prefetch, shuffle on an iterable dataset), TFW_ENOMEM. */
TFW_API tfw_loader *tfw_loader_new(tfw_dataset *ds, const tfw_loader_options *opt);
TFW_API void tfw_loader_free(tfw_loader *l); /* stops workers; NULL is a no-op */
/* The next batch into out (cleared first). At the end of an epoch returns TFW_OK with
 * out->n == 0 and moves to the next epoch. On a failure (a dataset error, ...) the
 * position stays at the failing batch. */
TFW_API tfw_status tfw_loader_next(tfw_loader *l, tfw_sample *out);
/* Batches per epoch on this rank; -1 for an iterable dataset. */
TFW_API int64_t tfw_loader_len(const tfw_loader *l);
/* The position of the next batch: epoch and batch index within it. Store it in a
 * checkpoint; tfw_loader_set_state on a loader with the same dataset and options resumes
 * with exactly the batches that would have followed. */
TFW_API void tfw_loader_state(const tfw_loader *l, int64_t *epoch, int64_t *index);
/* TFW_EVALUE for a negative epoch or index outside [0, len] (map-style). */
TFW_API tfw_status tfw_loader_set_state(tfw_loader *l, int64_t epoch, int64_t index);

#ifdef __cplusplus
}
#endif
#endif
