/* safetensors reader: open (mmap), validate, look up, borrow or copy tensors.
 *
 * Validation follows the reference (huggingface/safetensors `tensor.rs`, `read_metadata`
 * and `Metadata::validate`) and is stricter where it leaves gaps (RELIABILITY.md §1.3):
 *   length:  file >= 8 bytes; N <= 100 MB; N + 8 <= file size; header starts with '{'
 *   text:    the header is strict UTF-8 and strict JSON (safetensors_json.c), nothing but
 *            whitespace after the object, entries <= 1M, ignored values nested <= 64
 *   names:   unique, no NUL, <= 64 KiB; "__metadata__" at most once, string -> string,
 *            unique keys
 *   tensor:  known dtype; every dim <= 2^63-1; checked product of dims and of bits;
 *            a whole number of bytes; end >= begin; end - begin == the size the shape gives
 *   layout:  sorted by offsets, the first begins at 0, each begins where the previous ends
 *            (no hole, no overlap), and the last ends exactly at the end of the file.
 * Nothing is allocated from a size the file claims before that size is checked against the
 * bytes that exist: the header arena is N + 1 bytes with N <= file size, and the entry
 * arrays are sized by counting the entries actually present. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors_impl.h"

struct tfw_safetensors {
  _Atomic int64_t refcount; /* the handle + one per borrowing tensor */
  const uint8_t *base;      /* the whole file */
  size_t size;
  void *map; /* munmap(map, size) on free; NULL for a caller's buffer */
  const uint8_t *data; /* base + 8 + N */
  tfw__st_header h;    /* entries sorted by data offset */
  int *by_name;        /* entry indices sorted by name */
};

#define NAMEFMT "%.*s"
#define NAMEARG(p) (int)(strlen(p) > 80 ? 80 : strlen(p)), (p)

/* qsort has no context argument: the comparators read the entries through this. Only
 * used inside one validation call, on a private array, so it needs no lock... except that
 * two threads may open files at once: hence thread-local. */
static _Thread_local const tfw__st_entry *g_sort_entries;

static int cmp_offsets(const void *a, const void *b) {
  const tfw__st_entry *x = &g_sort_entries[*(const int *)a], *y = &g_sort_entries[*(const int *)b];
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return 0;
}
static int cmp_names(const void *a, const void *b) {
  return strcmp(g_sort_entries[*(const int *)a].name, g_sort_entries[*(const int *)b].name);
}
static _Thread_local const char *const *g_sort_meta;
static int cmp_meta(const void *a, const void *b) {
  return strcmp(g_sort_meta[2 * *(const int *)a], g_sort_meta[2 * *(const int *)b]);
}

static void st_free(tfw_safetensors *st) {
  if (st->map) munmap(st->map, st->size);
  tfw__st_header_free(&st->h);
  tfw__free(st->by_name);
  tfw__free(st);
}

void tfw_safetensors_close(tfw_safetensors *st) {
  if (!st) return;
  int64_t r = atomic_fetch_sub(&st->refcount, 1) - 1;
  TFW_ASSERT(r >= 0); /* below zero is a double close */
  if (r == 0) st_free(st);
}

/* Per-tensor size check: the bytes the shape and dtype give must equal end - begin. */
static tfw_status check_entry(const tfw__st_entry *e) {
  const tfw__st_dtype *d = &tfw__st_dtypes[e->dtype];
  char sh[TFW__SHAPE_BUF + 32];
  int nd = e->ndim < TFW_MAX_DIMS ? e->ndim : TFW_MAX_DIMS;
  tfw__shape_str(sh, TFW__SHAPE_BUF, nd, e->shape);
  size_t sl = strlen(sh);
  if (e->ndim > TFW_MAX_DIMS && sl > 0)
    snprintf(sh + sl - 1, sizeof sh - (sl - 1), ", ... (%d dims)]", e->ndim);
  if (e->numel > UINT64_MAX / (uint64_t)d->bits)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' shape %s x %s overflows "
                      "64 bits", NAMEARG(e->name), sh, d->name);
  uint64_t bits = e->numel * (uint64_t)d->bits;
  if (bits % 8)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' shape %s x %s is %llu "
                      "bits, not a whole number of bytes", NAMEARG(e->name), sh, d->name,
                      (unsigned long long)bits);
  if (e->end < e->begin)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' data_offsets [%llu, %llu) "
                      "end before they begin", NAMEARG(e->name), (unsigned long long)e->begin,
                      (unsigned long long)e->end);
  if (e->end - e->begin != bits / 8)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' data_offsets [%llu, %llu) "
                      "do not match shape %s x %s = %llu bytes", NAMEARG(e->name),
                      (unsigned long long)e->begin, (unsigned long long)e->end, sh, d->name,
                      (unsigned long long)(bits / 8));
  return TFW_OK;
}

/* Sorts the entries by offset, checks layout, names and metadata keys; builds by_name. */
static tfw_status validate(tfw_safetensors *st, uint64_t data_len) {
  tfw__st_header *h = &st->h;
  for (int i = 0; i < h->n; i++)
    if (check_entry(&h->entries[i])) return TFW_EFORMAT;
  int n = h->n;
  int *idx = tfw__malloc(((size_t)n + 1) * sizeof *idx);
  tfw__st_entry *sorted = tfw__malloc(((size_t)n + 1) * sizeof *sorted);
  st->by_name = tfw__malloc(((size_t)n + 1) * sizeof *st->by_name);
  int *midx = tfw__malloc(((size_t)h->n_meta + 1) * sizeof *midx);
  tfw_status s = TFW_OK;
  if (!idx || !sorted || !st->by_name || !midx) {
    s = tfw__error(TFW_ENOMEM, "safetensors: out of memory for %d tensors", n);
    goto done;
  }
  /* layout, in offset order */
  for (int i = 0; i < n; i++) idx[i] = i;
  g_sort_entries = h->entries;
  qsort(idx, (size_t)n, sizeof *idx, cmp_offsets);
  uint64_t at = 0;
  const char *prev = NULL;
  for (int i = 0; i < n; i++) {
    const tfw__st_entry *e = &h->entries[idx[i]];
    if (e->begin > at) {
      s = tfw__error(TFW_EFORMAT, "safetensors: hole in the data: bytes [%llu, %llu) before "
                     "tensor '" NAMEFMT "' belong to no tensor", (unsigned long long)at,
                     (unsigned long long)e->begin, NAMEARG(e->name));
      goto done;
    }
    if (e->begin < at) {
      s = tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' data_offsets [%llu, %llu) "
                     "overlap tensor '" NAMEFMT "', which ends at %llu", NAMEARG(e->name),
                     (unsigned long long)e->begin, (unsigned long long)e->end, NAMEARG(prev),
                     (unsigned long long)at);
      goto done;
    }
    if (e->end > data_len) {
      s = tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' data_offsets [%llu, %llu) "
                     "run past the end of the data (%llu bytes; the file is %zu bytes, "
                     "truncated?)", NAMEARG(e->name), (unsigned long long)e->begin,
                     (unsigned long long)e->end, (unsigned long long)data_len, st->size);
      goto done;
    }
    at = e->end;
    prev = e->name;
  }
  if (at != data_len) {
    s = tfw__error(TFW_EFORMAT, "safetensors: %llu trailing bytes after the last tensor (data "
                   "section is %llu bytes, tensors end at %llu)",
                   (unsigned long long)(data_len - at), (unsigned long long)data_len,
                   (unsigned long long)at);
    goto done;
  }
  for (int i = 0; i < n; i++) sorted[i] = h->entries[idx[i]];
  if (n) memcpy(h->entries, sorted, (size_t)n * sizeof *sorted);
  /* unique names */
  for (int i = 0; i < n; i++) st->by_name[i] = i;
  qsort(st->by_name, (size_t)n, sizeof *st->by_name, cmp_names);
  for (int i = 1; i < n; i++)
    if (!strcmp(h->entries[st->by_name[i]].name, h->entries[st->by_name[i - 1]].name)) {
      s = tfw__error(TFW_EFORMAT, "safetensors: duplicate tensor name '" NAMEFMT "'",
                     NAMEARG(h->entries[st->by_name[i]].name));
      goto done;
    }
  /* unique metadata keys */
  for (int i = 0; i < h->n_meta; i++) midx[i] = i;
  g_sort_meta = h->meta;
  qsort(midx, (size_t)h->n_meta, sizeof *midx, cmp_meta);
  for (int i = 1; i < h->n_meta; i++)
    if (!strcmp(h->meta[2 * midx[i]], h->meta[2 * midx[i - 1]])) {
      s = tfw__error(TFW_EFORMAT, "safetensors: duplicate metadata key '" NAMEFMT "'",
                     NAMEARG(h->meta[2 * midx[i]]));
      goto done;
    }
done:
  tfw__free(idx);
  tfw__free(sorted);
  tfw__free(midx);
  return s;
}

/* Parses and validates base[0, size); on success st owns nothing but the header. */
static tfw_safetensors *parse(const uint8_t *base, size_t size, void *map) {
  if (size < 8) {
    tfw__error(TFW_EFORMAT, "safetensors: the file is %zu bytes, shorter than the 8-byte "
               "header length", size);
    return NULL;
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = (n << 8) | base[i];
  if (n > TFW_SAFETENSORS_MAX_HEADER) {
    tfw__error(TFW_EFORMAT, "safetensors: header length %llu exceeds the %d-byte cap",
               (unsigned long long)n, TFW_SAFETENSORS_MAX_HEADER);
    return NULL;
  }
  if (n > size - 8) {
    tfw__error(TFW_EFORMAT, "safetensors: header length %llu runs past the end of the file "
               "(%zu bytes)", (unsigned long long)n, size);
    return NULL;
  }
  const uint8_t *json = base + 8;
  if (n < 2 || json[0] != '{') {
    tfw__error(TFW_EFORMAT, "safetensors: the header (%llu bytes) does not start with '{'",
               (unsigned long long)n);
    return NULL;
  }
  size_t bad = tfw__utf8_check(json, (size_t)n);
  if (bad != n) {
    tfw__error(TFW_EFORMAT, "safetensors: the header is not valid UTF-8 at header byte %zu "
               "(0x%02x)", bad, json[bad]);
    return NULL;
  }
  tfw_safetensors *st = tfw__calloc(1, sizeof *st);
  if (!st) {
    tfw__error(TFW_ENOMEM, "safetensors: out of memory");
    return NULL;
  }
  atomic_init(&st->refcount, 1);
  st->base = base;
  st->size = size;
  st->data = json + n;
  if (tfw__st_parse_header((const char *)json, (size_t)n, &st->h) ||
      validate(st, (uint64_t)(size - 8 - n))) {
    st_free(st); /* st->map is still NULL: the caller unmaps */
    return NULL;
  }
  st->map = map;
  return st;
}

tfw_safetensors *tfw__safetensors_parse_buffer(const void *data, size_t len) {
  if (!data && len) {
    tfw__error(TFW_EVALUE, "safetensors: data is NULL");
    return NULL;
  }
  static const uint8_t empty[1];
  return parse(data ? data : empty, len, NULL);
}

tfw_safetensors *tfw_safetensors_open(const char *path) {
  if (!path) {
    tfw__error(TFW_EVALUE, "safetensors_open: path is NULL");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    tfw__error(TFW_EIO, "safetensors_open: cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    tfw__error(TFW_EIO, "safetensors_open: cannot stat '%s': %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  if (!S_ISREG(sb.st_mode)) {
    tfw__error(TFW_EIO, "safetensors_open: '%s' is not a regular file", path);
    close(fd);
    return NULL;
  }
  size_t size = (size_t)sb.st_size;
  if (size < 8) { /* mmap of 0 bytes fails; report the format error instead */
    close(fd);
    tfw__error(TFW_EFORMAT, "safetensors: '%s' is %zu bytes, shorter than the 8-byte header "
               "length", path, size);
    return NULL;
  }
  /* Private and writable: a tensor borrowing the mapping may be written in place (copy on
   * write); the file never changes. */
  void *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  close(fd);
  if (map == MAP_FAILED) {
    tfw__error(TFW_EIO, "safetensors_open: cannot map '%s' (%zu bytes): %s", path, size,
               strerror(err));
    return NULL;
  }
  tfw_safetensors *st = parse(map, size, map);
  if (!st) {
    munmap(map, size);
    char msg[1024];
    tfw_status code = tfw_last_status();
    tfw_last_error_copy(msg, sizeof msg);
    tfw__error(code, "%s (in '%s')", msg, path);
  }
  return st;
}

/* ---- lookups ------------------------------------------------------------------------------ */
int tfw_safetensors_count(const tfw_safetensors *st) { return st ? st->h.n : 0; }

const char *tfw_safetensors_name(const tfw_safetensors *st, int i) {
  if (!st || i < 0 || i >= st->h.n) {
    tfw__error(TFW_EINDEX, "safetensors_name: index %d out of range [0, %d)", i,
               st ? st->h.n : 0);
    return NULL;
  }
  return st->h.entries[i].name;
}

int tfw_safetensors_find(const tfw_safetensors *st, const char *name) {
  if (!st || !name) return -1;
  int lo = 0, hi = st->h.n;
  while (lo < hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(st->h.entries[st->by_name[mid]].name, name);
    if (c == 0) return st->by_name[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return -1;
}

tfw_status tfw_safetensors_tensor_info(const tfw_safetensors *st, int i,
                                       tfw_safetensors_info *out) {
  if (!st || !out) return tfw__error(TFW_EVALUE, "safetensors_tensor_info: NULL argument");
  if (i < 0 || i >= st->h.n)
    return tfw__error(TFW_EINDEX, "safetensors_tensor_info: index %d out of range [0, %d)", i,
                      st->h.n);
  const tfw__st_entry *e = &st->h.entries[i];
  memset(out, 0, sizeof *out);
  out->name = e->name;
  out->dtype_name = tfw__st_dtypes[e->dtype].name;
  out->dtype = tfw__st_dtypes[e->dtype].dtype;
  out->ndim = e->ndim;
  for (int d = 0; d < e->ndim && d < TFW_MAX_DIMS; d++) out->shape[d] = e->shape[d];
  out->nbytes = (int64_t)(e->end - e->begin);
  out->file_offset = (int64_t)(st->data - st->base) + (int64_t)e->begin;
  return TFW_OK;
}

static void unref_cb(void *ctx, void *data) {
  (void)data;
  tfw_safetensors_close(ctx);
}

tfw_tensor *tfw_safetensors_get(tfw_safetensors *st, const char *name) {
  if (!st || !name) {
    tfw__error(TFW_EVALUE, "safetensors_get: %s is NULL", st ? "name" : "file");
    return NULL;
  }
  int i = tfw_safetensors_find(st, name);
  if (i < 0) {
    tfw__error(TFW_EINDEX, "safetensors_get: no tensor named '" NAMEFMT "' (the file has %d)",
               NAMEARG(name), st->h.n);
    return NULL;
  }
  const tfw__st_entry *e = &st->h.entries[i];
  const tfw__st_dtype *d = &tfw__st_dtypes[e->dtype];
  if (d->dtype == TFW_DTYPE_COUNT) {
    tfw__error(TFW_EUNSUPPORTED, "safetensors_get: tensor '" NAMEFMT "' has dtype %s, which "
               "tenflower does not support", NAMEARG(name), d->name);
    return NULL;
  }
  if (e->ndim > TFW_MAX_DIMS) {
    tfw__error(TFW_EUNSUPPORTED, "safetensors_get: tensor '" NAMEFMT "' has %d dims (%s); "
               "tenflower supports at most %d", NAMEARG(name), e->ndim, d->name, TFW_MAX_DIMS);
    return NULL;
  }
  const uint8_t *src = st->data + e->begin;
  size_t elsize = tfw_dtype_size(d->dtype), nbytes = (size_t)(e->end - e->begin);
  int big_endian = __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__, odd_bool = 0;
  if (d->dtype == TFW_DTYPE_BOOL) /* a C bool must hold 0 or 1: normalise in a copy */
    for (size_t k = 0; k < nbytes && !odd_bool; k++) odd_bool = src[k] > 1;
  if ((uintptr_t)src % elsize == 0 && !big_endian && !odd_bool) { /* zero-copy: borrow the bytes */
    atomic_fetch_add(&st->refcount, 1);
    tfw_tensor *t = tfw_from_buffer(d->dtype, e->ndim, e->shape, NULL, (void *)src, unref_cb, st);
    if (!t) tfw_safetensors_close(st);
    return t;
  }
  tfw_tensor *t = tfw_empty(d->dtype, e->ndim, e->shape);
  if (!t) return NULL;
  uint8_t *dst = tfw_tensor_data(t);
  if (nbytes) memcpy(dst, src, nbytes);
  if (big_endian && elsize > 1) /* the file is little-endian */
    for (size_t k = 0; k < nbytes; k += elsize)
      for (size_t a = 0, b = elsize - 1; a < b; a++, b--) {
        uint8_t x = dst[k + a];
        dst[k + a] = dst[k + b], dst[k + b] = x;
      }
  if (d->dtype == TFW_DTYPE_BOOL) /* any nonzero byte is true; keep C bool 0/1 */
    for (size_t k = 0; k < nbytes; k++) dst[k] = dst[k] != 0;
  return t;
}

/* ---- metadata ---------------------------------------------------------------------------- */
int tfw_safetensors_metadata_count(const tfw_safetensors *st) { return st ? st->h.n_meta : 0; }

static const char *meta_at(const tfw_safetensors *st, int i, int which) {
  if (!st || i < 0 || i >= st->h.n_meta) {
    tfw__error(TFW_EINDEX, "safetensors_metadata: index %d out of range [0, %d)", i,
               st ? st->h.n_meta : 0);
    return NULL;
  }
  return st->h.meta[2 * i + which];
}
const char *tfw_safetensors_metadata_key(const tfw_safetensors *st, int i) {
  return meta_at(st, i, 0);
}
const char *tfw_safetensors_metadata_value(const tfw_safetensors *st, int i) {
  return meta_at(st, i, 1);
}
const char *tfw_safetensors_metadata_get(const tfw_safetensors *st, const char *key) {
  if (!st || !key) return NULL;
  for (int i = 0; i < st->h.n_meta; i++)
    if (!strcmp(st->h.meta[2 * i], key)) return st->h.meta[2 * i + 1];
  return NULL;
}
