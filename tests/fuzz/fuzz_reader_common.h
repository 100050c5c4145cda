/* Shared body of the unified reader's fuzz targets: open arbitrary bytes as one format, then
 * walk every record and read every column. Acceptable outcomes: a clean TFW_EFORMAT /
 * TFW_EUNSUPPORTED / TFW_ENOMEM with a message naming the input (or TFW_EVALUE from the
 * record API for files wider than a sample), or a reader whose records and columns agree
 * in count and can be read byte by byte. Anything else traps. */
#ifndef TFW_FUZZ_READER_COMMON_H
#define TFW_FUZZ_READER_COMMON_H
#include <stdint.h>
#include <string.h>

#include "data/reader_internal.h"

static void fuzz_touch(const tfw_tensor *t) {
  if (!t) return;
  tfw_tensor *c = tfw_contiguous(t);
  if (!c) __builtin_trap();
  const volatile uint8_t *p = tfw_tensor_data(c);
  size_t n = (size_t)tfw_tensor_numel(c) * tfw_dtype_size(tfw_tensor_dtype(c));
  uint8_t acc = 0;
  for (size_t k = 0; k < n; k++) acc ^= p[k];
  (void)acc;
  tfw_release(c);
}

static int fuzz_reader(const uint8_t *data, size_t size, const char *format, const char *name,
                       const tfw_reader_options *base) {
  tfw_memory_set_limit((int64_t)256 << 20);
  tfw_reader_options o = base ? *base : tfw_reader_options_default();
  o.format = format;
  o.max_bytes = 64 << 20;
  tfw_reader *r = tfw__reader_open_buffer(data, size, name, &o);
  if (!r) {
    tfw_status s = tfw_last_status();
    if ((s != TFW_EFORMAT && s != TFW_EUNSUPPORTED && s != TFW_ENOMEM) ||
        (s != TFW_ENOMEM && strstr(tfw_last_error(), name) == NULL))
      __builtin_trap();
    return 0;
  }
  const tfw_schema *sc = tfw_reader_schema(r);
  int64_t n = tfw_reader_num_records(r);
  int64_t seen = 0;
  tfw_sample rec = {0};
  for (;;) {
    tfw_status s = tfw_reader_next(r, &rec);
    if (s == TFW_EVALUE && (sc->n > TFW_SAMPLE_MAX_FIELDS || seen == 0)) break; /* too wide */
    if (s) __builtin_trap();
    if (rec.n == 0) break;
    if (rec.n != sc->n) __builtin_trap();
    for (int i = 0; i < rec.n; i++) fuzz_touch(rec.tensors[i]);
    tfw_sample_clear(&rec);
    seen++;
  }
  /* a record of zero fields reads as the end: only check files with fields */
  if (n >= 0 && seen != n && sc->n > 0 && sc->n <= TFW_SAMPLE_MAX_FIELDS) {
    int too_long = 0;
    for (int i = 0; i < sc->n; i++) too_long |= strlen(sc->fields[i].name) >= TFW_SAMPLE_NAME_MAX;
    if (!too_long) __builtin_trap();
  }
  if (tfw_reader_seekable(r) && sc->n <= 4096) {
    tfw_column *cols = tfw__calloc((size_t)sc->n + 1, sizeof *cols);
    if (cols && tfw_reader_read_columns(r, 0, -1, cols) == TFW_OK) {
      for (int i = 0; i < sc->n; i++) {
        const tfw_tensor *v = cols[i].values;
        if (!v) __builtin_trap();
        if (!cols[i].offsets && tfw_tensor_ndim(v) >= 1 && tfw_tensor_shape(v)[0] != n)
          __builtin_trap();
        fuzz_touch(v);
        fuzz_touch(cols[i].offsets);
        fuzz_touch(cols[i].mask);
        tfw_column_clear(&cols[i]);
      }
    }
    tfw__free(cols);
  }
  tfw_reader_close(r);
  return 0;
}
#endif
