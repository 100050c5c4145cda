/* tenflower internal: safetensors header model shared by the reader, the header parser and
 * the writer. Internal header — never installed. */
#ifndef TFW_IO_SAFETENSORS_IMPL_H
#define TFW_IO_SAFETENSORS_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tenflower/io.h"

/* Every dtype name the safetensors format defines (0.6), with its size in bits, the
 * tenflower dtype (TFW_DTYPE_COUNT if none) and its rank in the reference `Dtype` enum,
 * which is ordered by alignment: the writer sorts by descending rank, then name. */
typedef struct tfw__st_dtype {
  const char *name;
  int bits;
  tfw_dtype dtype;
  int rank;
} tfw__st_dtype;
extern const tfw__st_dtype tfw__st_dtypes[];
extern const int tfw__st_n_dtypes;
/* Index into tfw__st_dtypes of the entry for a tenflower dtype (-1 if none). */
int tfw__st_dtype_of(tfw_dtype dt);

/* One tensor as the header describes it. */
typedef struct tfw__st_entry {
  const char *name;            /* NUL-terminated, in the header's string arena */
  int dtype;                   /* index into tfw__st_dtypes */
  int ndim;                    /* may exceed TFW_MAX_DIMS (only 8 dims are kept) */
  int64_t shape[TFW_MAX_DIMS];
  uint64_t numel;              /* checked product of all dims */
  uint64_t begin, end;         /* data_offsets, relative to the data section */
} tfw__st_entry;

typedef struct tfw__st_header {
  tfw__st_entry *entries; /* n, in header order until the reader sorts them */
  int n;
  const char **meta;      /* 2 * n_meta: key, value, key, value, ... */
  int n_meta;
  char *arena;            /* every unescaped string (fits in header length + 1 bytes) */
} tfw__st_header;

/* Parses the JSON header json[0, len) (already checked to be UTF-8 and to start with '{')
 * into out: strict RFC 8259 JSON, strings unescaped, duplicate keys inside a tensor entry
 * and a second "__metadata__" rejected, integers exact in 64 bits, every dtype known, every
 * shape product checked. Duplicate tensor names and offsets are checked by the caller.
 * On failure returns TFW_EFORMAT/TFW_ENOMEM with the message set and out freed. */
tfw_status tfw__st_parse_header(const char *json, size_t len, tfw__st_header *out);
void tfw__st_header_free(tfw__st_header *h);
#include "io/json.h" /* tfw__utf8_check */

/* Parses and validates a whole safetensors file held in data[0, len), which the caller
 * keeps alive (unchanged) until the handle and every tensor from it are released. The
 * fuzz target and the replay test use this to stay off the filesystem. */
tfw_safetensors *tfw__safetensors_parse_buffer(const void *data, size_t len);

#endif
