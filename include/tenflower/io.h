/* tenflower — file formats: safetensors.
 *
 * safetensors (https://github.com/huggingface/safetensors): an 8-byte little-endian length
 * N, N bytes of UTF-8 JSON {name: {"dtype", "shape", "data_offsets": [begin, end)}} with an
 * optional "__metadata__" object of string -> string, then the raw little-endian, C-order
 * tensor bytes. The reader treats every file as hostile (docs/io.md lists each check);
 * any corrupt or hostile file gives TFW_EFORMAT with a message naming the field, the tensor
 * and the offending values, never a crash and never an allocation larger than the file. */
#ifndef TENFLOWER_IO_H
#define TENFLOWER_IO_H

#include <stdint.h>
#include "dtype.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- limits (the reader rejects files beyond them with TFW_EFORMAT) -------------------- */
#define TFW_SAFETENSORS_MAX_HEADER 100000000 /* bytes of JSON header, as the reference */
#define TFW_SAFETENSORS_MAX_TENSORS 1048576  /* entries in one file (tensors + metadata) */
#define TFW_SAFETENSORS_MAX_NAME 65536       /* bytes of one tensor name / metadata key */
#define TFW_SAFETENSORS_MAX_DEPTH 64         /* JSON nesting depth of ignored values */

/* An opened, validated safetensors file. Reference-counted: tensors returned by
 * tfw_safetensors_get() that borrow the file's bytes keep it alive after close. */
typedef struct tfw_safetensors tfw_safetensors;

/* Opens and validates path, mapping it into memory (private, copy-on-write: writing into a
 * borrowed tensor never changes the file). Returns NULL and sets the error on failure:
 * TFW_EIO (cannot open/stat/map, not a regular file; message has strerror), TFW_EFORMAT
 * (corrupt or hostile file), TFW_ENOMEM. Release with tfw_safetensors_close().
 * Like every mmap reader, the file must not be truncated while it is open (SIGBUS). */
TFW_API tfw_safetensors *tfw_safetensors_open(const char *path);
/* Drops the caller's reference; the mapping goes once no borrowed tensor uses it.
 * NULL is a no-op. */
TFW_API void tfw_safetensors_close(tfw_safetensors *st);

/* Number of tensors; tensor i's name in data-offset order (0 <= i < count). The name is
 * borrowed and valid until close. NULL (TFW_EINDEX) if i is out of range. */
TFW_API int tfw_safetensors_count(const tfw_safetensors *st);
TFW_API const char *tfw_safetensors_name(const tfw_safetensors *st, int i);
/* Index of the tensor called name, or -1 (no error set) if there is none. */
TFW_API int tfw_safetensors_find(const tfw_safetensors *st, const char *name);

/* What the header says about tensor i, without touching its data. */
typedef struct tfw_safetensors_info {
  const char *name;       /* borrowed, valid until close */
  const char *dtype_name; /* as in the file: "F32", "BF16", "F8_E4M3", ... (static) */
  tfw_dtype dtype;        /* TFW_DTYPE_COUNT when tenflower has no such dtype */
  int ndim;               /* may exceed TFW_MAX_DIMS: then only shape[0..7] is filled */
  int64_t shape[TFW_MAX_DIMS];
  int64_t nbytes;
  int64_t file_offset; /* of the first byte, from the start of the file */
} tfw_safetensors_info;
/* Fills *out. TFW_EINDEX if i is out of range, TFW_EVALUE if an argument is NULL. */
TFW_API tfw_status tfw_safetensors_tensor_info(const tfw_safetensors *st, int i,
                                               tfw_safetensors_info *out);

/* The tensor called name: a new reference the caller releases. Zero-copy when the data is
 * aligned for its dtype (always so for files written by tenflower or the reference
 * writer): the tensor borrows the mapping and keeps the file open. Otherwise (or on a
 * big-endian host) a contiguous copy. Errors: TFW_EINDEX (no such tensor; message names
 * it), TFW_EUNSUPPORTED (dtype tenflower lacks, e.g. F8_E4M3, I16, U16, U32, U64, or rank
 * above TFW_MAX_DIMS; message names the tensor and the dtype), TFW_ENOMEM. */
TFW_API tfw_tensor *tfw_safetensors_get(tfw_safetensors *st, const char *name);

/* "__metadata__" entries in file order; key and value are borrowed until close. */
TFW_API int tfw_safetensors_metadata_count(const tfw_safetensors *st);
TFW_API const char *tfw_safetensors_metadata_key(const tfw_safetensors *st, int i);
TFW_API const char *tfw_safetensors_metadata_value(const tfw_safetensors *st, int i);
/* The value for key, or NULL (no error set) if absent. */
TFW_API const char *tfw_safetensors_metadata_get(const tfw_safetensors *st, const char *key);

/* Writes n tensors (any strides, any of tenflower's dtypes) with their names, and n_meta
 * metadata pairs (may be 0 with NULL arrays), to path. The file is written atomically: a
 * unique temporary file in the same directory, fsync, rename over path, fsync of the
 * directory; on failure path is untouched and no temporary is left. Tensors are laid out
 * like the reference writer (descending dtype alignment, then name in byte order) so that
 * every tensor is aligned for its dtype; the header is padded with spaces to a multiple of
 * 8. Names and metadata must be valid UTF-8 without NUL, names unique and not
 * "__metadata__", metadata keys unique. Errors: TFW_EVALUE (bad arguments; message names
 * the index), TFW_EIO (with strerror), TFW_ENOMEM. */
TFW_API tfw_status tfw_safetensors_save(const char *path, int n, const char *const *names,
                                        tfw_tensor *const *tensors, int n_meta,
                                        const char *const *meta_keys,
                                        const char *const *meta_values);

#ifdef __cplusplus
}
#endif
#endif
