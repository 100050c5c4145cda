/* TFRecord framing (TensorFlow `core/lib/io/record_writer.cc`): each record is
 *   uint64 length (little-endian) | uint32 masked_crc32c(length bytes) | data[length] |
 *   uint32 masked_crc32c(data)
 * The reader treats its input as hostile: every CRC is checked, a length above
 * TFW_TFRECORD_MAX_RECORD or beyond the bytes that remain (when the size is known) is
 * rejected before anything is allocated, and on inputs of unknown size (pipes) the buffer
 * grows only as data actually arrives, so a lying length costs at most twice the input. */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "io/tfrecord.h"

struct tfw_tfrecord_reader {
  FILE *f;              /* NULL for a memory reader */
  const uint8_t *mem;   /* memory reader: the input */
  size_t mem_len;
  uint64_t offset;      /* bytes consumed */
  int64_t size;         /* total input size, -1 if unknown */
  int64_t index;        /* records read */
  uint8_t *buf;
  size_t cap;
  tfw_status err;       /* sticky: a failed reader stays failed */
  char errmsg[256];
};

static void put_le64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_le32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint32_t get_le32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

tfw_status tfw__tfrecord_write(FILE *f, const void *data, size_t len) {
  uint8_t head[12], tail[4];
  put_le64(head, (uint64_t)len);
  put_le32(head + 8, tfw__crc32c_mask(tfw__crc32c(0, head, 8)));
  put_le32(tail, tfw__crc32c_mask(tfw__crc32c(0, data, len)));
  if (fwrite(head, 1, 12, f) != 12 || (len && fwrite(data, 1, len, f) != len) ||
      fwrite(tail, 1, 4, f) != 4)
    return tfw__error(TFW_EIO, "tfrecord: write of a %zu-byte record failed: %s", len,
                      strerror(errno));
  return TFW_OK;
}

static tfw_tfrecord_reader *reader_new(void) {
  tfw_tfrecord_reader *r = tfw__calloc(1, sizeof *r);
  if (!r) tfw__error(TFW_ENOMEM, "tfrecord: out of memory for the reader");
  return r;
}

tfw_tfrecord_reader *tfw_tfrecord_reader_open(const char *path) {
  if (!path) {
    tfw__error(TFW_EVALUE, "tfw_tfrecord_reader_open: path is NULL");
    return NULL;
  }
  FILE *f = fopen(path, "rb");
  if (!f) {
    tfw__error(TFW_EIO, "tfw_tfrecord_reader_open: cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  tfw_tfrecord_reader *r = reader_new();
  if (!r) {
    fclose(f);
    return NULL;
  }
  struct stat st;
  r->f = f;
  r->size = (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) ? (int64_t)st.st_size : -1;
  return r;
}

tfw_tfrecord_reader *tfw__tfrecord_reader_memory(const void *data, size_t len) {
  tfw_tfrecord_reader *r = reader_new();
  if (!r) return NULL;
  r->mem = data;
  r->mem_len = len;
  r->size = (int64_t)len;
  return r;
}

void tfw_tfrecord_reader_close(tfw_tfrecord_reader *r) {
  if (!r) return;
  if (r->f) fclose(r->f);
  tfw__free(r->buf);
  tfw__free(r);
}

/* Reads up to n bytes into dst; returns the count (short only at the end of the input or
 * on a read error, which sets *ioerr). */
static size_t rd(tfw_tfrecord_reader *r, uint8_t *dst, size_t n, int *ioerr) {
  if (!r->f) {
    size_t left = r->mem_len - (size_t)r->offset;
    size_t k = n < left ? n : left;
    memcpy(dst, r->mem + r->offset, k);
    r->offset += k;
    return k;
  }
  size_t k = fread(dst, 1, n, r->f);
  if (k < n && ferror(r->f)) *ioerr = errno ? errno : EIO;
  r->offset += k;
  return k;
}

static tfw_status fail(tfw_tfrecord_reader *r, tfw_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tfw_status fail(tfw_tfrecord_reader *r, tfw_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->errmsg, sizeof r->errmsg, fmt, ap);
  va_end(ap);
  r->err = code;
  return tfw__error(code, "%s", r->errmsg);
}

static int grow(tfw_tfrecord_reader *r, size_t need) {
  if (need <= r->cap) return 1;
  size_t cap = r->cap ? r->cap : 256;
  while (cap < need) cap *= 2;
  uint8_t *p = tfw__realloc(r->buf, cap);
  if (!p) return 0;
  r->buf = p, r->cap = cap;
  return 1;
}

tfw_status tfw_tfrecord_reader_next(tfw_tfrecord_reader *r, const uint8_t **data, size_t *len) {
  if (!r || !data || !len)
    return tfw__error(TFW_EVALUE, "tfw_tfrecord_reader_next: NULL argument");
  *data = NULL;
  *len = 0;
  if (r->err) return tfw__error(r->err, "%s", r->errmsg);
  uint64_t at = r->offset;
  int64_t idx = r->index;
  int ioerr = 0;
  uint8_t head[12];
  size_t got = rd(r, head, 12, &ioerr);
  if (ioerr)
    return fail(r, TFW_EIO, "tfrecord: read error at offset %" PRIu64 ": %s", at, strerror(ioerr));
  if (got == 0) return TFW_OK; /* clean end */
  if (got < 12)
    return fail(r, TFW_EFORMAT,
                "tfrecord: record %" PRId64 " at offset %" PRIu64
                ": truncated header (%zu of 12 bytes)", idx, at, got);
  uint64_t n = get_le64(head);
  uint32_t want = get_le32(head + 8), have = tfw__crc32c_mask(tfw__crc32c(0, head, 8));
  if (want != have)
    return fail(r, TFW_EFORMAT,
                "tfrecord: record %" PRId64 " at offset %" PRIu64
                ": length CRC mismatch (stored 0x%08x, computed 0x%08x)", idx, at, want, have);
  if (n > TFW_TFRECORD_MAX_RECORD)
    return fail(r, TFW_EFORMAT,
                "tfrecord: record %" PRId64 " at offset %" PRIu64
                ": length %" PRIu64 " exceeds the limit %" PRIu64, idx, at, n,
                (uint64_t)TFW_TFRECORD_MAX_RECORD);
  if (r->size >= 0 && n + 4 > (uint64_t)r->size - r->offset)
    return fail(r, TFW_EFORMAT,
                "tfrecord: record %" PRId64 " at offset %" PRIu64
                ": truncated (length %" PRIu64 " + 4-byte CRC, but only %" PRIu64 " bytes remain)",
                idx, at, n, (uint64_t)r->size - r->offset);
  /* data + CRC, read in chunks that grow only as bytes arrive */
  size_t total = (size_t)n + 4, have_bytes = 0;
  while (have_bytes < total) {
    size_t chunk = total - have_bytes;
    size_t lim = have_bytes < 65536 ? 65536 : have_bytes;
    if (chunk > lim) chunk = lim;
    if (!grow(r, have_bytes + chunk))
      return fail(r, TFW_ENOMEM, "tfrecord: out of memory for a %" PRIu64 "-byte record", n);
    size_t k = rd(r, r->buf + have_bytes, chunk, &ioerr);
    have_bytes += k;
    if (ioerr)
      return fail(r, TFW_EIO, "tfrecord: read error at offset %" PRIu64 ": %s", r->offset,
                  strerror(ioerr));
    if (k < chunk)
      return fail(r, TFW_EFORMAT,
                  "tfrecord: record %" PRId64 " at offset %" PRIu64
                  ": truncated (length %" PRIu64 ", input ends after %zu more bytes)",
                  idx, at, n, have_bytes);
  }
  want = get_le32(r->buf + n);
  have = tfw__crc32c_mask(tfw__crc32c(0, r->buf, (size_t)n));
  if (want != have)
    return fail(r, TFW_EFORMAT,
                "tfrecord: record %" PRId64 " at offset %" PRIu64
                ": data CRC mismatch (stored 0x%08x, computed 0x%08x)", idx, at, want, have);
  r->index++;
  *data = r->buf;
  *len = (size_t)n;
  return TFW_OK;
}
