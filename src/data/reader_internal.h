/* tenflower internal: the unified reader's backend interface. Internal header — never
 * installed.
 *
 * A format is ONE struct and ONE line:
 *
 *   // src/data/fmt_foo.c
 *   static int foo_sniff(const uint8_t *head, size_t n) { return n >= 4 && !memcmp(head, "FOO!", 4) ? 100 : 0; }
 *   static tfw_status foo_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
 *     ... parse in->data[0, in->size) ...
 *     tfw__reader_set_schema(r, n, fields);            // full schema, names copied
 *     then EITHER tfw__reader_set_table(r, table)      // whole columns in memory: records,
 *                                                      // random access, columns come free
 *     OR     tfw__reader_set_ops(r, &foo_ops, impl)    // own record access (streams, row
 *                                                      // groups, lazily decoded files)
 *   }
 *   const tfw__reader_backend tfw__backend_foo = {"foo", ".foo .fo", foo_sniff, foo_open};
 *
 *   // src/data/reader_backends.def
 *   TFW_READER_BACKEND(foo)
 *
 * The order of reader_backends.def is the order of extension and sniff matching (the highest
 * sniff score wins; ties go to the earlier line). Every error a backend raises must be
 * TFW_EFORMAT (malformed input), TFW_EUNSUPPORTED (valid but not handled), TFW_ENOMEM or
 * TFW_EVALUE (bad options), with a message that starts with the format name and names the
 * input (in->name) and the place. */
#ifndef TFW_DATA_READER_INTERNAL_H
#define TFW_DATA_READER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tenflower/data_formats.h"

/* ---- the input bytes ----------------------------------------------------------------------
 * A reference-counted byte buffer: a read-only mapping of the file, a heap copy, or the
 * decompressed bytes of a gzip file. Tensors may wrap it without copying
 * (tfw__blob_tensor); each such tensor holds a reference. */
typedef struct tfw__blob tfw__blob;
tfw__blob *tfw__blob_retain(tfw__blob *b);
void tfw__blob_release(tfw__blob *b);
/* A tensor viewing blob bytes [byte_offset, ...) with the given shape and (element) strides
 * (NULL: contiguous). The caller has checked that the bytes lie inside the blob. If the
 * address is not aligned to the element size the data is copied instead (UB otherwise). */
tfw_tensor *tfw__blob_tensor(tfw__blob *b, size_t byte_offset, tfw_dtype dt, int ndim,
                             const int64_t *shape, const int64_t *strides);

const uint8_t *tfw__blob_data(const tfw__blob *b);
size_t tfw__blob_size(const tfw__blob *b);
/* A new blob owning a tfw__malloc'd buffer (freed with the blob; also on failure). */
tfw__blob *tfw__blob_from_heap(uint8_t *data, size_t size);

typedef struct tfw__input {
  const char *name;      /* the path or the caller's name: use it in every message */
  const uint8_t *data;   /* the whole (decompressed) input */
  size_t size;
  bool gzip;             /* the file was gzip-compressed (data is the inflated bytes) */
  bool mapped;           /* data is a mapping of the file (no copy was made) */
  tfw__blob *blob;       /* owner of data (borrowed: retain it to keep data alive) */
  int64_t max_bytes;     /* the resolved cap (opt->max_bytes or the default) */
} tfw__input;

/* ---- the backend --------------------------------------------------------------------------- */
typedef struct tfw__reader_backend {
  const char *name;        /* lower case, as in tfw_reader_options.format */
  const char *extensions;  /* space-separated, lower case, with the dot: ".csv .tsv" */
  /* Score 0..100 for how surely head[0, n) (the first <= 4096 bytes, after gunzip) is this
   * format; 0 = not it. NULL: recognised only by name or extension. */
  int (*sniff)(const uint8_t *head, size_t n);
  /* Parses in, then sets the schema and the access (see the top). On failure, returns the
   * status with the message set; the reader frees what was set. */
  tfw_status (*open)(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt);
} tfw__reader_backend;

#define TFW_READER_BACKEND(name) extern const tfw__reader_backend tfw__backend_##name;
#include "data/reader_backends.def"
#undef TFW_READER_BACKEND

/* ---- what open sets ------------------------------------------------------------------------ */
/* Copies the n fields (names included) as the reader's full schema. TFW_EFORMAT for an
 * empty or duplicate name (message names the format and input), TFW_ENOMEM. */
tfw_status tfw__reader_set_schema(tfw_reader *r, int n, const tfw_field *fields);

/* An in-memory table: rows records, one full column per schema field (tfw_column layout of
 * data_formats.h; mask may be NULL for a non-nullable field). set_table takes the columns
 * over (also on failure) and checks them against the schema (an inconsistency is
 * TFW_EINTERNAL: a backend bug). */
tfw_status tfw__reader_set_table(tfw_reader *r, int64_t rows, tfw_column *cols);

/* Own access. vals has one slot per schema field; fill each with a new reference (a NULL
 * slot means a missing value; the generic layer substitutes the documented default).
 * get and read_columns must be thread-safe if set; next/rewind are called by one thread. */
typedef struct tfw__reader_ops {
  int64_t (*num_records)(void *impl);                              /* -1: unknown */
  tfw_status (*get)(void *impl, int64_t index, tfw_tensor **vals); /* NULL: not seekable */
  tfw_status (*next)(void *impl, tfw_tensor **vals, bool *end);    /* NULL: uses get */
  tfw_status (*rewind)(void *impl);                                /* NULL: uses get */
  void (*close)(void *impl);
} tfw__reader_ops;
void tfw__reader_set_ops(tfw_reader *r, const tfw__reader_ops *ops, void *impl);

/* ---- helpers for backends ------------------------------------------------------------------ */
/* Opens over bytes with a format forced by name (NULL: sniffed); for fuzz targets. */
tfw_reader *tfw__reader_open_buffer(const void *data, size_t size, const char *name,
                                    const tfw_reader_options *opt);
/* Inflates a gzip (or zlib: wbits) stream in[0, n) into a new heap buffer of at most cap
 * bytes (TFW_EFORMAT "... decompresses to more than cap bytes" beyond), for backends with
 * compressed members (NPZ). what names the input in messages. */
tfw_status tfw__inflate(const char *fmt, const char *what, const uint8_t *in, size_t n,
                        int wbits, size_t expect, size_t cap, uint8_t **out, size_t *out_n);
/* The column form of a missing-value default: NaN / 0 / empty. */
tfw_tensor *tfw__missing_value(const tfw_field *f);

/* Reads (or maps) path and inflates it if it is gzip, as tfw_reader_open does, into *out (a
 * new blob). For format-specific entry points that bypass the record model. */
tfw_status tfw__input_load(const char *path, const tfw_reader_options *opt, tfw__blob **out);

/* ---- shared between backends --------------------------------------------------------------- */
/* Parses the NPY bytes blob[off, off + size) into *out (a view of the blob when the data is
 * native, else a converted copy). fmt and name go into messages. */
tfw_status tfw__npy_parse(const char *fmt, const char *name, tfw__blob *blob, size_t off,
                          size_t size, tfw_tensor **out);
/* Sets schema and table for named arrays (borrowed; names copied): one record per row of
 * dim 0 when every array has ndim >= 1 and the same dim 0, else one record of the whole
 * arrays. */
tfw_status tfw__arrays_to_table(tfw_reader *r, int n, const char *const *names,
                                tfw_tensor **arrays);

#endif
