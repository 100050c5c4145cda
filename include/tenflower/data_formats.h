/* tenflower — the unified reader: one API over every data file format (NPY, NPZ, CSV, JSON,
 * JSONL, plain text, ...), its schema, its records and columns, and a schema validator.
 *
 *   tfw_reader *r = tfw_reader_open("table.csv.gz", NULL);       // format from the name
 *   const tfw_schema *s = tfw_reader_schema(r);                   // borrowed
 *   tfw_sample rec = {0};
 *   while (tfw_reader_next(r, &rec) == TFW_OK && rec.n > 0) { ...; tfw_sample_clear(&rec); }
 *   tfw_dataset *ds = tfw_dataset_from_reader(r);                 // takes r over; loader-ready
 *
 * Model. A file is a sequence of records; every record has the same fields, described by the
 * schema (name, dtype, per-record shape with -1 for a dim that varies between records,
 * nullability, and whether the field holds text). Tables (CSV, JSONL) have one record per
 * row and one field per column; tensor files (NPY, NPZ) have one record per row of dim 0
 * (see docs/data.md, "Formats", for each format's mapping).
 *
 * Strings. Tensors have no string dtype: a text field (is_string) is, per record, a u8 tensor
 * [nbytes] of UTF-8 bytes (no NUL terminator); as a column, one u8 tensor of all the bytes
 * plus i64 offsets. A variable-length numeric field (shape[0] == -1, e.g. JSON arrays of
 * different lengths) uses the same offsets form as a column.
 *
 * Missing values. A nullable field's missing value is NaN in a floating field, 0 in an
 * integer or bool field and an empty u8 tensor in a text field; the column form carries a
 * bool mask (true = present), which is the only way to tell a missing 0 from a real one.
 *
 * More than TFW_SAMPLE_MAX_FIELDS (8) fields. Records are tfw_samples, so at most 8 fields
 * each: select the fields you need with tfw_reader_options.columns (or stack the numeric
 * columns of a table into one field with .stack_numeric), or read whole columns, for any
 * number of fields, with tfw_reader_read_columns.
 *
 * Every reader treats its input as hostile: malformed, truncated, oversized or inconsistent
 * input is TFW_EFORMAT with a message naming the format, the file and the place (line,
 * byte offset, field), before anything of a claimed size is allocated; input larger than
 * tfw_reader_options.max_bytes (also after decompression) is TFW_EFORMAT too. No format can
 * carry code (NPY object arrays / pickles are rejected).
 *
 * Adding a format (for implementers): write src/data/fmt_<name>.c defining
 *   const tfw__reader_backend tfw__backend_<name> = {"<name>", ".ext1 .ext2", sniff, open};
 * (src/data/reader_internal.h documents the struct and the helpers, e.g. the in-memory table
 * that gives records, random access and columns for free), add ONE line
 * TFW_READER_BACKEND(<name>) to src/data/reader_backends.def, and a fuzz target
 * tests/fuzz/fuzz_<name>.c calling tfw__reader_open_buffer. Nothing else changes. */
#ifndef TENFLOWER_DATA_FORMATS_H
#define TENFLOWER_DATA_FORMATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "data.h"
#include "dtype.h"
#include "status.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- schema ---------------------------------------------------------------------------- */
/* A field of a record. In a reader's schema every member is filled and name is owned by the
 * reader. In an expected schema (tfw_schema_validate) you own name, and wildcards are
 * allowed: dtype TFW_DTYPE_COUNT (any dtype), ndim -1 (any rank), shape[i] -1 (any size). */
typedef struct tfw_field {
  const char *name;
  tfw_dtype dtype;              /* u8 for text fields */
  int ndim;                     /* per-record rank (0: a scalar per record) */
  int64_t shape[TFW_MAX_DIMS];  /* per-record dims; -1: varies between records */
  bool nullable;                /* records may lack a value (see "Missing values") */
  bool is_string;               /* UTF-8 text: dtype u8, ndim 1, shape {-1} */
} tfw_field;

typedef struct tfw_schema {
  int n;                    /* fields */
  const tfw_field *fields;  /* n of them, in file order */
} tfw_schema;

/* Index of the field called name, or -1 (no error set). */
TFW_API int tfw_schema_find(const tfw_schema *s, const char *name);
/* Formats s as "{id: int64, x: float64 [3, -1], name: string?}" into buf (cap bytes,
 * always NUL-terminated, truncated with "..." if needed; '?' marks nullable fields).
 * Returns the length the whole text needs (as snprintf). */
TFW_API size_t tfw_schema_format(const tfw_schema *s, char *buf, size_t cap);
/* Checks actual against expected. Every expected field must be present in actual (matched
 * by name, in any order) with the same dtype, rank, dims and string-ness (wildcards in
 * expected match anything), and a nullable actual field needs a nullable expected field.
 * Fields of actual that expected lacks are an error unless TFW_SCHEMA_ALLOW_EXTRA is set.
 * The first mismatch is reported, naming the field, e.g.
 *   schema: field 'x': expected float32 [3], got float64 [3]          (TFW_EDTYPE)
 *   schema: field 'img': expected uint8 [28, 28], got uint8 [32, 32]  (TFW_ESHAPE)
 *   schema: field 'label' is missing (got {id: int64, x: float64})    (TFW_EVALUE)
 * TFW_EVALUE also for NULL arguments, unnamed expected fields and other mismatches. */
#define TFW_SCHEMA_ALLOW_EXTRA 1u
TFW_API tfw_status tfw_schema_validate(const tfw_schema *expected, const tfw_schema *actual,
                                       unsigned flags);

/* ---- opening -------------------------------------------------------------------------- */
typedef struct tfw_reader tfw_reader;

typedef struct tfw_reader_options {
  /* Format name ("npy", "npz", "csv", "json", "jsonl", "text", ...); NULL: from the file
   * name's extension (a trailing ".gz" is looked through), else from the magic bytes. */
  const char *format;
  /* Field selection: only these n_columns fields, in this order (NULL: all). An unknown
   * name is TFW_EVALUE listing the schema. */
  const char *const *columns;
  int n_columns;
  /* Tables: put every numeric column into one field "features" of dtype stack_dtype and
   * shape [k] (text columns stay separate fields). Lets wide tables pass through samples. */
  bool stack_numeric;
  tfw_dtype stack_dtype;   /* default f32 */
  /* Cap on the (decompressed) input size and on any one allocation a file asks for;
   * 0 means TFW_READER_DEFAULT_MAX_BYTES. */
  int64_t max_bytes;
  /* NPY: map the file instead of reading it (zero copy; the default for plain files of at
   * least TFW_READER_MMAP_THRESHOLD bytes in native byte order and C order). -1: never,
   * 0: auto, 1: always when possible. Note: a file truncated by another process while
   * mapped raises SIGBUS on access, as with any mmap. */
  int mmap;
  /* CSV: delimiter (0: ',' or '\t' for .tsv); header: 1 the first line names the columns
   * (default), -1 no header (columns are named "c0", "c1", ...). */
  char delimiter;
  int header;
  /* CSV/JSON(L): column types given instead of inferred (fields matched by name; other
   * fields are still inferred). Wildcards are not allowed here. */
  const tfw_schema *types;
  /* Plain text: false (default) one record per line (field "line", no line terminator),
   * true one record holding the whole file (field "text"). */
  bool text_whole;
} tfw_reader_options;

#define TFW_READER_DEFAULT_MAX_BYTES ((int64_t)16 << 30) /* 16 GiB */
#define TFW_READER_MMAP_THRESHOLD ((int64_t)64 << 20)    /* 64 MiB */

/* Everything zero/NULL except stack_dtype = f32 and header = 1. */
TFW_API tfw_reader_options tfw_reader_options_default(void);

/* Opens path (opt may be NULL for defaults). Errors: TFW_EIO (cannot open/read, with
 * strerror), TFW_EUNSUPPORTED (unknown format name or none recognised: the message lists
 * the known formats; gzip without zlib), TFW_EFORMAT (malformed file), TFW_EVALUE (bad
 * options), TFW_ENOMEM. Free with tfw_reader_close. */
TFW_API tfw_reader *tfw_reader_open(const char *path, const tfw_reader_options *opt);
/* Same over bytes in memory (copied if the reader needs them later); name is used in
 * messages and for the extension (may be NULL). */
TFW_API tfw_reader *tfw_reader_open_memory(const void *data, size_t size, const char *name,
                                           const tfw_reader_options *opt);
TFW_API void tfw_reader_close(tfw_reader *r); /* NULL is a no-op */

/* The format's name ("csv", ...), borrowed from a static table. */
TFW_API const char *tfw_reader_format(const tfw_reader *r);
/* The schema (borrowed; valid until close). Reflects columns/stack_numeric. */
TFW_API const tfw_schema *tfw_reader_schema(const tfw_reader *r);
/* Number of records, or -1 when the format cannot tell without reading to the end. */
TFW_API int64_t tfw_reader_num_records(const tfw_reader *r);
/* Whether tfw_reader_get works (random access). */
TFW_API bool tfw_reader_seekable(const tfw_reader *r);
/* Names of the formats compiled in, in registration order; *n receives the count. */
TFW_API const char *const *tfw_reader_formats(int *n);

/* ---- records ---------------------------------------------------------------------------- */
/* The next record into out (cleared first), or out->n == 0 at the end (TFW_OK). Tensors are
 * new references (often views of the file's data, no copies). More than 8 selected fields
 * or a name of 32 bytes or more is TFW_EVALUE (select fewer; or read columns). */
TFW_API tfw_status tfw_reader_next(tfw_reader *r, tfw_sample *out);
/* Goes back to the first record. */
TFW_API tfw_status tfw_reader_rewind(tfw_reader *r);
/* Record index into out (cleared first). TFW_EINDEX out of range, TFW_EUNSUPPORTED when the
 * format has no random access. Thread-safe (the dataset wrapper calls it from workers). */
TFW_API tfw_status tfw_reader_get(tfw_reader *r, int64_t index, tfw_sample *out);

/* ---- columns ----------------------------------------------------------------------------- */
/* A run of count records of one field.
 *   fixed-shape field: values [count, shape...]; offsets NULL
 *   text or variable-length field (shape[0] == -1): values holds the records one after the
 *     other along dim 0 (u8 [total bytes] for text); offsets is i64 [count + 1] and record
 *     i is values[offsets[i] : offsets[i+1]] along dim 0
 *   mask: bool [count], true where the record has a value; NULL if the field is not
 *     nullable. */
typedef struct tfw_column {
  tfw_tensor *values;
  tfw_tensor *offsets;
  tfw_tensor *mask;
} tfw_column;
/* Records [start, start + count) of every selected field into out[0 .. schema->n) (each
 * owning its tensors; free with tfw_column_clear). count -1: to the end. Needs random
 * access (TFW_EUNSUPPORTED otherwise); TFW_EINDEX for a range outside the file. */
TFW_API tfw_status tfw_reader_read_columns(tfw_reader *r, int64_t start, int64_t count,
                                           tfw_column *out);
TFW_API void tfw_column_clear(tfw_column *c); /* releases the tensors, zeroes c */

/* ---- datasets ------------------------------------------------------------------------------ */
/* A dataset over the reader's records: map-style when it is seekable (get is thread-safe,
 * so loader workers read in parallel), else iterable (each epoch rewinds; one iterator at a
 * time, a second concurrent one is TFW_ESTATE). On success the dataset owns r (closed with
 * the last reference); on failure r stays the caller's. */
TFW_API tfw_dataset *tfw_dataset_from_reader(tfw_reader *r);
/* tfw_reader_open + tfw_dataset_from_reader. */
TFW_API tfw_dataset *tfw_dataset_open(const char *path, const tfw_reader_options *opt);

/* ---- format-specific entry points ---------------------------------------------------------- */
/* NPY: the whole array of a .npy file as one tensor (dtype mapping in docs/data.md; C or
 * Fortran order, either byte order; mapped without a copy when opt allows). */
TFW_API tfw_tensor *tfw_npy_read(const char *path, const tfw_reader_options *opt);
/* Writes t (any strides; any dtype but bf16, which NumPy lacks: TFW_EDTYPE) as a version 1.0
 * .npy file (little-endian, C order), atomically. TFW_EIO, TFW_EVALUE, TFW_ENOMEM. */
TFW_API tfw_status tfw_npy_write(const char *path, const tfw_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
