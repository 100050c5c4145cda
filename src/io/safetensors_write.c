/* safetensors writer: header JSON, data layout, atomic and durable file replacement.
 *
 * Layout follows the reference writer (safetensors `prepare`): tensors sorted by descending
 * dtype alignment (the order of its Dtype enum), then by name in byte order, packed back to
 * back from offset 0; the header is the JSON object followed by spaces up to a multiple of
 * 8 bytes, so the data section starts 8-byte aligned and every tensor is aligned for its
 * dtype. "__metadata__" comes first, in the caller's order. The file is written to a
 * unique temporary file beside the target, fsynced, renamed over it, and the directory is
 * fsynced (POSIX durable rename; RELIABILITY.md §2.5; tfw__atomic_* in core/fileio.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors_impl.h"

/* A JSON string literal (the text is valid UTF-8, checked by the caller). */
static void put_json_str(tfw__sbuf *b, const char *s) {
  tfw__sbuf_put(b, "\"", 1);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') esc[0] = '\\', esc[1] = (char)c, tfw__sbuf_put(b, esc, 2);
    else if (c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c), tfw__sbuf_put(b, esc, 6);
    else tfw__sbuf_put(b, (const char *)&c, 1);
  }
  tfw__sbuf_put(b, "\"", 1);
}

typedef struct item {
  const char *name;
  tfw_tensor *t; /* contiguous (a new reference) */
  int dt;        /* index into tfw__st_dtypes */
  uint64_t nbytes;
} item;

static int cmp_items(const void *a, const void *b) {
  const item *x = a, *y = b;
  int rx = tfw__st_dtypes[x->dt].rank, ry = tfw__st_dtypes[y->dt].rank;
  if (rx != ry) return rx > ry ? -1 : 1;
  return strcmp(x->name, y->name);
}
static int cmp_names(const void *a, const void *b) {
  return strcmp(((const item *)a)->name, ((const item *)b)->name);
}
static int cmp_strp(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static tfw_status check_text(const char *what, int i, const char *s) {
  if (!s) return tfw__error(TFW_EVALUE, "safetensors_save: %s %d is NULL", what, i);
  size_t len = strlen(s);
  if (tfw__utf8_check((const uint8_t *)s, len) != len)
    return tfw__error(TFW_EVALUE, "safetensors_save: %s %d is not valid UTF-8", what, i);
  return TFW_OK;
}

/* Writes the file bytes to a temporary beside path and renames it into place. */
static tfw_status write_file(const char *path, const tfw__sbuf *hdr, const item *items, int n) {
  tfw__atomic_file f;
  tfw_status s = tfw__atomic_begin(&f, "safetensors_save", path);
  if (s) return s;
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hdr->len >> (8 * i));
  s = tfw__atomic_write(&f, len8, 8);
  if (!s) s = tfw__atomic_write(&f, hdr->p, hdr->len);
  for (int i = 0; i < n && !s; i++) {
    const uint8_t *data = tfw_tensor_data(items[i].t);
    if (__BYTE_ORDER__ == __ORDER_BIG_ENDIAN__ && tfw_dtype_size(tfw_tensor_dtype(items[i].t)) > 1)
      s = tfw__error(TFW_EUNSUPPORTED, "safetensors_save: big-endian hosts are not supported");
    else if (items[i].nbytes) s = tfw__atomic_write(&f, data, (size_t)items[i].nbytes);
  }
  return tfw__atomic_end(&f, s);
}

tfw_status tfw_safetensors_save(const char *path, int n, const char *const *names,
                                tfw_tensor *const *tensors, int n_meta,
                                const char *const *meta_keys, const char *const *meta_values) {
  if (!path) return tfw__error(TFW_EVALUE, "safetensors_save: path is NULL");
  if (n < 0 || n > TFW_SAFETENSORS_MAX_TENSORS || n_meta < 0 ||
      n_meta > TFW_SAFETENSORS_MAX_TENSORS - n)
    return tfw__error(TFW_EVALUE, "safetensors_save: %d tensors and %d metadata entries "
                      "(each must be >= 0, together <= %d)", n, n_meta,
                      TFW_SAFETENSORS_MAX_TENSORS);
  if ((n && (!names || !tensors)) || (n_meta && (!meta_keys || !meta_values)))
    return tfw__error(TFW_EVALUE, "safetensors_save: NULL %s array",
                      n && !names ? "names" : n && !tensors ? "tensors" : "metadata");
  for (int i = 0; i < n; i++) {
    if (check_text("name", i, names[i])) return TFW_EVALUE;
    if (!strcmp(names[i], "__metadata__"))
      return tfw__error(TFW_EVALUE, "safetensors_save: name %d is '__metadata__', which the "
                        "format reserves", i);
    if (!tensors[i]) return tfw__error(TFW_EVALUE, "safetensors_save: tensor %d ('%.80s') is "
                                       "NULL", i, names[i]);
  }
  for (int i = 0; i < n_meta; i++)
    if (check_text("metadata key", i, meta_keys[i]) ||
        check_text("metadata value", i, meta_values[i]))
      return TFW_EVALUE;
  item *items = tfw__calloc((size_t)n + 1, sizeof *items);
  const char **keys = tfw__calloc((size_t)n_meta + 1, sizeof *keys);
  tfw__sbuf hdr = {0};
  tfw_status s = TFW_OK;
  if (!items || !keys) {
    s = tfw__error(TFW_ENOMEM, "safetensors_save: out of memory");
    goto done;
  }
  for (int i = 0; i < n; i++) {
    items[i].name = names[i];
    items[i].dt = tfw__st_dtype_of(tfw_tensor_dtype(tensors[i]));
    if (items[i].dt < 0) {
      s = tfw__error(TFW_EDTYPE, "safetensors_save: tensor '%.80s' has an invalid dtype",
                     names[i]);
      goto done;
    }
    items[i].t = tfw__as_contiguous(tensors[i], tfw_tensor_dtype(tensors[i]));
    if (!items[i].t) {
      s = tfw_last_status();
      goto done;
    }
    items[i].nbytes = (uint64_t)tfw_tensor_numel(items[i].t) * tfw_dtype_size(tfw_tensor_dtype(items[i].t));
  }
  /* unique names and keys */
  qsort(items, (size_t)n, sizeof *items, cmp_names);
  for (int i = 1; i < n; i++)
    if (!strcmp(items[i].name, items[i - 1].name)) {
      s = tfw__error(TFW_EVALUE, "safetensors_save: duplicate tensor name '%.80s'", items[i].name);
      goto done;
    }
  for (int i = 0; i < n_meta; i++) keys[i] = meta_keys[i];
  qsort(keys, (size_t)n_meta, sizeof *keys, cmp_strp);
  for (int i = 1; i < n_meta; i++)
    if (!strcmp(keys[i], keys[i - 1])) {
      s = tfw__error(TFW_EVALUE, "safetensors_save: duplicate metadata key '%.80s'", keys[i]);
      goto done;
    }
  qsort(items, (size_t)n, sizeof *items, cmp_items);
  /* header */
  tfw__sbuf_puts(&hdr, "{");
  if (n_meta) {
    tfw__sbuf_puts(&hdr, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) tfw__sbuf_puts(&hdr, ",");
      put_json_str(&hdr, meta_keys[i]);
      tfw__sbuf_puts(&hdr, ":");
      put_json_str(&hdr, meta_values[i]);
    }
    tfw__sbuf_puts(&hdr, n ? "}," : "}");
  }
  uint64_t off = 0;
  for (int i = 0; i < n; i++) {
    char num[64];
    if (i) tfw__sbuf_puts(&hdr, ",");
    put_json_str(&hdr, items[i].name);
    tfw__sbuf_puts(&hdr, ":{\"dtype\":\"");
    tfw__sbuf_puts(&hdr, tfw__st_dtypes[items[i].dt].name);
    tfw__sbuf_puts(&hdr, "\",\"shape\":[");
    for (int d = 0; d < tfw_tensor_ndim(items[i].t); d++) {
      snprintf(num, sizeof num, d ? ",%" PRId64 : "%" PRId64, tfw_tensor_shape(items[i].t)[d]);
      tfw__sbuf_puts(&hdr, num);
    }
    if (items[i].nbytes > (uint64_t)INT64_MAX - off) {
      s = tfw__error(TFW_EVALUE, "safetensors_save: total size exceeds 2^63 bytes");
      goto done;
    }
    snprintf(num, sizeof num, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off,
             off + items[i].nbytes);
    tfw__sbuf_puts(&hdr, num);
    off += items[i].nbytes;
  }
  tfw__sbuf_puts(&hdr, "}");
  while (hdr.len % 8) tfw__sbuf_puts(&hdr, " ");
  if (hdr.oom) {
    s = tfw__error(TFW_ENOMEM, "safetensors_save: out of memory for the header");
    goto done;
  }
  if (hdr.len > TFW_SAFETENSORS_MAX_HEADER) {
    s = tfw__error(TFW_EVALUE, "safetensors_save: the header would be %zu bytes, above the "
                   "%d-byte cap readers enforce", hdr.len, TFW_SAFETENSORS_MAX_HEADER);
    goto done;
  }
  s = write_file(path, &hdr, items, n);
done:
  if (items)
    for (int i = 0; i < n; i++) tfw_release(items[i].t);
  tfw__free(items);
  tfw__free((void *)keys);
  tfw__free(hdr.p);
  return s;
}
