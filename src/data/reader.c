/* The unified reader: input loading (read, mmap, gunzip), format detection over the backend
 * table (reader_backends.def), field selection and stacking, records, columns, and the
 * dataset wrapper. Backends only parse; everything generic lives here. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TFW_HAVE_ZLIB
#include <zlib.h>
#endif

#include "data/reader_internal.h"

#define OP "reader"

/* ---- the backend table --------------------------------------------------------------------- */
#define TFW_READER_BACKEND(name) &tfw__backend_##name,
static const tfw__reader_backend *const k_backends[] = {
#include "data/reader_backends.def"
};
#undef TFW_READER_BACKEND
#define N_BACKENDS ((int)(sizeof k_backends / sizeof k_backends[0]))

const char *const *tfw_reader_formats(int *n) {
  static const char *names[N_BACKENDS + 1];
  static _Atomic int ready = 0;
  if (!atomic_load(&ready)) { /* idempotent: every thread writes the same values */
    for (int i = 0; i < N_BACKENDS; i++) names[i] = k_backends[i]->name;
    atomic_store(&ready, 1);
  }
  if (n) *n = N_BACKENDS;
  return names;
}

static void list_formats(char *buf, size_t cap) {
  size_t k = 0;
  buf[0] = '\0';
  for (int i = 0; i < N_BACKENDS && k < cap; i++)
    k += (size_t)snprintf(buf + k, cap - k, "%s%s", i ? " " : "", k_backends[i]->name);
}

/* ---- blobs ---------------------------------------------------------------------------------- */
struct tfw__blob {
  _Atomic int64_t refcount;
  uint8_t *data;
  size_t size;
  bool mapped;
};

static tfw__blob *blob_new(uint8_t *data, size_t size, bool mapped) {
  tfw__blob *b = tfw__malloc(sizeof *b);
  if (!b) return NULL;
  atomic_init(&b->refcount, 1);
  b->data = data, b->size = size, b->mapped = mapped;
  return b;
}

const uint8_t *tfw__blob_data(const tfw__blob *b) { return b->data; }
size_t tfw__blob_size(const tfw__blob *b) { return b->size; }
tfw__blob *tfw__blob_from_heap(uint8_t *data, size_t size) {
  tfw__blob *b = blob_new(data, size, false);
  if (!b) {
    tfw__free(data);
    tfw__error(TFW_ENOMEM, OP ": out of memory");
  }
  return b;
}

tfw__blob *tfw__blob_retain(tfw__blob *b) {
  if (b) atomic_fetch_add(&b->refcount, 1);
  return b;
}

void tfw__blob_release(tfw__blob *b) {
  if (!b) return;
  int64_t left = atomic_fetch_sub(&b->refcount, 1) - 1;
  TFW_ASSERT(left >= 0);
  if (left) return;
  if (b->mapped) munmap(b->data, b->size);
  else tfw__free(b->data);
  tfw__free(b);
}

static void blob_release_cb(void *ctx, void *data) {
  (void)data;
  tfw__blob_release(ctx);
}

tfw_tensor *tfw__blob_tensor(tfw__blob *b, size_t byte_offset, tfw_dtype dt, int ndim,
                             const int64_t *shape, const int64_t *strides) {
  size_t es = tfw_dtype_size(dt);
  uint8_t *p = b->data + byte_offset;
  if (es > 1 && ((uintptr_t)p % es) != 0) {
    /* misaligned: copy (strided sources are contiguous here by construction of callers:
     * a misaligned view is only ever made of C or Fortran-order whole arrays) */
    int64_t numel = tfw__numel(ndim, shape);
    tfw_tensor *t = tfw__tensor_new("reader", dt, ndim, shape);
    if (!t) return NULL;
    if (!strides) {
      memcpy(tfw__data(t), p, (size_t)numel * es);
      return t;
    }
    tfw_tensor *v = tfw__tensor_new("reader", dt, 1, &numel);
    if (!v) return tfw_release(t), NULL;
    memcpy(tfw__data(v), p, (size_t)numel * es);
    tfw_tensor *sv = tfw__tensor_view(v, ndim, shape, strides, 0);
    tfw_release(v);
    if (!sv || tfw__copy_cast(t, sv)) {
      tfw_release(sv), tfw_release(t);
      return NULL;
    }
    tfw_release(sv);
    return t;
  }
  tfw__blob_retain(b);
  tfw_tensor *t = tfw_from_buffer(dt, ndim, shape, strides, p, blob_release_cb, b);
  if (!t) tfw__blob_release(b);
  return t;
}

/* ---- the reader ------------------------------------------------------------------------------ */
struct tfw_reader {
  const tfw__reader_backend *backend;
  char *name;
  tfw__blob *blob;
  /* full schema, as the backend set it */
  int n_full;
  tfw_field *full;
  /* access: a table, or ops */
  bool has_table;
  int64_t rows;
  tfw_column *cols; /* n_full */
  bool has_ops;
  tfw__reader_ops ops;
  void *impl;
  /* the view users see: selection and stacking */
  int n_view;
  tfw_field *view;
  int *src;         /* per view field: index into full, or -1 for the stacked "features" */
  int n_stack;
  int *stack_src;   /* full indices stacked into "features" */
  tfw_dtype stack_dtype;
  tfw_schema schema;
  /* sequential position */
  int64_t pos;
  _Atomic int iter_busy;
};

tfw_reader_options tfw_reader_options_default(void) {
  tfw_reader_options o;
  memset(&o, 0, sizeof o);
  o.stack_dtype = TFW_DTYPE_F32;
  o.header = 1;
  return o;
}

static void free_fields(tfw_field *f, int n) {
  if (!f) return;
  for (int i = 0; i < n; i++) tfw__free((char *)f[i].name);
  tfw__free(f);
}

void tfw_column_clear(tfw_column *c) {
  if (!c) return;
  tfw_release(c->values);
  tfw_release(c->offsets);
  tfw_release(c->mask);
  c->values = c->offsets = c->mask = NULL;
}

void tfw_reader_close(tfw_reader *r) {
  if (!r) return;
  if (r->has_ops && r->ops.close) r->ops.close(r->impl);
  if (r->cols)
    for (int i = 0; i < r->n_full; i++) tfw_column_clear(&r->cols[i]);
  tfw__free(r->cols);
  free_fields(r->full, r->n_full);
  free_fields(r->view, r->n_view);
  tfw__free(r->src);
  tfw__free(r->stack_src);
  tfw__blob_release(r->blob);
  tfw__free(r->name);
  tfw__free(r);
}

static char *dupstr(const char *s) {
  size_t n = strlen(s);
  char *d = tfw__malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

static tfw_status copy_fields(const tfw_field *in, int n, tfw_field **out) {
  tfw_field *f = tfw__calloc(n > 0 ? (size_t)n : 1, sizeof *f);
  if (!f) return tfw__error(TFW_ENOMEM, OP ": out of memory");
  for (int i = 0; i < n; i++) {
    f[i] = in[i];
    f[i].name = dupstr(in[i].name);
    if (!f[i].name) {
      free_fields(f, i);
      return tfw__error(TFW_ENOMEM, OP ": out of memory");
    }
  }
  *out = f;
  return TFW_OK;
}

tfw_status tfw__reader_set_schema(tfw_reader *r, int n, const tfw_field *fields) {
  if (n < 0 || (n > 0 && !fields))
    return tfw__error(TFW_EINTERNAL, "%s: bad schema from the backend", r->backend->name);
  for (int i = 0; i < n; i++) {
    if (!fields[i].name || !fields[i].name[0])
      return tfw__error(TFW_EFORMAT, "%s: '%s': field %d has an empty name", r->backend->name,
                        r->name, i);
    if (fields[i].ndim < 0 || fields[i].ndim > TFW_MAX_DIMS ||
        !tfw_dtype_is_valid(fields[i].dtype))
      return tfw__error(TFW_EINTERNAL, "%s: bad field %d from the backend", r->backend->name, i);
    for (int j = 0; j < i; j++)
      if (!strcmp(fields[i].name, fields[j].name))
        return tfw__error(TFW_EFORMAT, "%s: '%s': duplicate field name '%.64s' (fields %d and %d)",
                          r->backend->name, r->name, fields[i].name, j, i);
  }
  free_fields(r->full, r->n_full);
  r->full = NULL, r->n_full = 0;
  if (copy_fields(fields, n, &r->full)) return TFW_ENOMEM;
  r->n_full = n;
  return TFW_OK;
}

static bool field_variable(const tfw_field *f) {
  return f->is_string || (f->ndim > 0 && f->shape[0] < 0);
}

tfw_status tfw__reader_set_table(tfw_reader *r, int64_t rows, tfw_column *cols) {
  r->cols = tfw__calloc(r->n_full > 0 ? (size_t)r->n_full : 1, sizeof *cols);
  if (!r->cols) {
    for (int i = 0; i < r->n_full; i++) tfw_column_clear(&cols[i]);
    return tfw__error(TFW_ENOMEM, OP ": out of memory");
  }
  for (int i = 0; i < r->n_full; i++) r->cols[i] = cols[i], memset(&cols[i], 0, sizeof cols[i]);
  r->has_table = true;
  r->rows = rows;
  for (int i = 0; i < r->n_full; i++) {
    const tfw_field *f = &r->full[i];
    const tfw_column *c = &r->cols[i];
    bool ok = c->values && tfw_tensor_dtype(c->values) == f->dtype;
    if (ok && field_variable(f)) {
      ok = c->offsets && tfw_tensor_dtype(c->offsets) == TFW_DTYPE_I64 &&
           tfw_tensor_ndim(c->offsets) == 1 && tfw_tensor_shape(c->offsets)[0] == rows + 1 &&
           tfw__is_contiguous(c->offsets) && tfw_tensor_ndim(c->values) == f->ndim;
      if (ok) {
        const int64_t *o = (const int64_t *)(void *)tfw__data(c->offsets);
        ok = o[0] == 0 && o[rows] == tfw_tensor_shape(c->values)[0];
        for (int64_t k = 0; ok && k < rows; k++) ok = o[k] <= o[k + 1];
      }
    } else if (ok) {
      ok = !c->offsets && tfw_tensor_ndim(c->values) == f->ndim + 1 &&
           tfw_tensor_shape(c->values)[0] == rows;
    }
    if (ok && c->mask)
      ok = tfw_tensor_dtype(c->mask) == TFW_DTYPE_BOOL && tfw_tensor_ndim(c->mask) == 1 &&
           tfw_tensor_shape(c->mask)[0] == rows && tfw__is_contiguous(c->mask) && f->nullable;
    if (!ok)
      return tfw__error(TFW_EINTERNAL, "%s: '%s': column %d ('%.64s') does not match its field",
                        r->backend->name, r->name, i, f->name);
  }
  return TFW_OK;
}

void tfw__reader_set_ops(tfw_reader *r, const tfw__reader_ops *ops, void *impl) {
  r->ops = *ops;
  r->impl = impl;
  r->has_ops = true;
}

tfw_tensor *tfw__missing_value(const tfw_field *f) {
  int64_t shape[TFW_MAX_DIMS];
  for (int i = 0; i < f->ndim; i++) shape[i] = f->shape[i] < 0 ? 0 : f->shape[i];
  double v = tfw_dtype_is_floating(f->dtype) ? NAN : 0.0;
  return tfw_full(f->dtype, f->ndim, shape, v);
}

/* ---- selection and stacking --------------------------------------------------------------- */
static tfw_status build_view(tfw_reader *r, const tfw_reader_options *o) {
  int n_sel = o->columns ? o->n_columns : r->n_full;
  if (o->columns && o->n_columns <= 0)
    return tfw__error(TFW_EVALUE, OP ": '%s': columns is set but n_columns is %d", r->name,
                      o->n_columns);
  int *sel = tfw__calloc((size_t)n_sel + 1, sizeof *sel);
  int *view_src = tfw__calloc((size_t)n_sel + 1, sizeof *view_src);
  int *stack = tfw__calloc((size_t)n_sel + 1, sizeof *stack);
  tfw_field *view = tfw__calloc((size_t)n_sel + 1, sizeof *view);
  tfw_status s = TFW_OK;
  if (!sel || !view_src || !stack || !view) {
    s = tfw__error(TFW_ENOMEM, OP ": out of memory");
    goto out;
  }
  for (int i = 0; i < n_sel; i++) {
    if (!o->columns) {
      sel[i] = i;
      continue;
    }
    const char *want = o->columns[i];
    tfw_schema full = {r->n_full, r->full};
    sel[i] = want ? tfw_schema_find(&full, want) : -1;
    if (sel[i] < 0) {
      char buf[512];
      tfw_schema_format(&full, buf, sizeof buf);
      s = tfw__error(TFW_EVALUE, OP ": '%s': no field '%.64s' to select (the schema is %s)",
                     r->name, want ? want : "(null)", buf);
      goto out;
    }
    for (int j = 0; j < i; j++)
      if (sel[j] == sel[i]) {
        s = tfw__error(TFW_EVALUE, OP ": '%s': field '%.64s' selected twice", r->name, want);
        goto out;
      }
  }
  int nv = 0, ns = 0, features_at = -1;
  for (int i = 0; i < n_sel; i++) {
    const tfw_field *f = &r->full[sel[i]];
    if (o->stack_numeric && !f->is_string && f->ndim == 0) {
      stack[ns++] = sel[i];
      if (features_at >= 0) continue;
      features_at = nv;
      view_src[nv] = -1;
      view[nv] = (tfw_field){.name = "features", .dtype = o->stack_dtype, .ndim = 1};
      nv++;
      continue;
    }
    view_src[nv] = sel[i];
    view[nv++] = *f;
  }
  if (o->stack_numeric) {
    if (!tfw_dtype_is_valid(o->stack_dtype)) {
      s = tfw__error(TFW_EVALUE, OP ": stack_dtype %d is not a dtype", (int)o->stack_dtype);
      goto out;
    }
    if (features_at >= 0) {
      view[features_at].shape[0] = ns;
      for (int k = 0; k < ns; k++) view[features_at].nullable |= r->full[stack[k]].nullable;
      for (int i = 0; i < nv; i++)
        if (i != features_at && !strcmp(view[i].name, "features")) {
          s = tfw__error(TFW_EVALUE, OP ": '%s': stack_numeric makes a field 'features', but the "
                         "file already has one (select fewer columns)", r->name);
          goto out;
        }
    }
  }
  tfw_field *copy;
  if ((s = copy_fields(view, nv, &copy))) goto out;
  r->view = copy;
  r->n_view = nv;
  r->src = view_src, view_src = NULL;
  r->stack_src = stack, stack = NULL;
  r->n_stack = ns;
  r->stack_dtype = o->stack_dtype;
  r->schema.n = nv;
  r->schema.fields = r->view;
out:
  tfw__free(sel);
  tfw__free(view_src);
  tfw__free(stack);
  tfw__free(view);
  return s;
}

/* ---- input ----------------------------------------------------------------------------------- */
static const tfw__reader_backend *backend_by_name(const char *name) {
  for (int i = 0; i < N_BACKENDS; i++)
    if (!strcmp(k_backends[i]->name, name)) return k_backends[i];
  return NULL;
}

/* The extension match: the lower-cased name, with a trailing ".gz" removed, ends with one of
 * the backend's extensions. */
static const tfw__reader_backend *backend_by_ext(const char *name) {
  if (!name) return NULL;
  const char *base = strrchr(name, '/');
  base = base ? base + 1 : name;
  char low[256];
  size_t n = strlen(base);
  if (n >= sizeof low) base += n - (sizeof low - 1), n = sizeof low - 1;
  for (size_t i = 0; i <= n; i++)
    low[i] = (char)(base[i] >= 'A' && base[i] <= 'Z' ? base[i] + 32 : base[i]);
  if (n > 3 && !strcmp(low + n - 3, ".gz")) low[n -= 3] = '\0';
  for (int i = 0; i < N_BACKENDS; i++) {
    const char *e = k_backends[i]->extensions;
    while (e && *e) {
      while (*e == ' ') e++;
      size_t k = strcspn(e, " ");
      if (k > 0 && k <= n && !memcmp(low + n - k, e, k)) return k_backends[i];
      e += k;
    }
  }
  return NULL;
}

static const tfw__reader_backend *backend_by_sniff(const uint8_t *d, size_t n) {
  const tfw__reader_backend *best = NULL;
  int score = 0;
  if (n > 4096) n = 4096;
  for (int i = 0; i < N_BACKENDS; i++) {
    if (!k_backends[i]->sniff) continue;
    int s = k_backends[i]->sniff(d, n);
    if (s > score) score = s, best = k_backends[i];
  }
  return best;
}

tfw_status tfw__inflate(const char *fmt, const char *what, const uint8_t *in, size_t n,
                        int wbits, size_t expect, size_t cap, uint8_t **out, size_t *out_n) {
  *out = NULL, *out_n = 0;
#ifdef TFW_HAVE_ZLIB
  /* deflate cannot exceed ~1032:1; a bigger claim is a lie we need not allocate for */
  size_t ratio_cap = n > SIZE_MAX / 1032 ? SIZE_MAX : n * 1032 + 64;
  if (cap > ratio_cap) cap = ratio_cap;
  if (expect > cap)
    return tfw__error(TFW_EFORMAT, "%s: '%s': claims %zu uncompressed bytes, more than the "
                      "limit of %zu for %zu compressed bytes", fmt, what, expect, cap, n);
  size_t alloc = expect ? expect : (n < cap / 4 ? n * 4 : cap);
  if (alloc < 64) alloc = 64;
  uint8_t *buf = tfw__malloc(alloc);
  if (!buf) return tfw__error(TFW_ENOMEM, "%s: '%s': out of memory (%zu bytes)", fmt, what, alloc);
  z_stream z;
  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, wbits) != Z_OK) {
    tfw__free(buf);
    return tfw__error(TFW_ENOMEM, "%s: '%s': zlib init failed", fmt, what);
  }
  size_t done = 0, in_pos = 0;
  tfw_status s = TFW_OK;
  for (;;) {
    if (done == alloc) {
      if (alloc >= cap) {
        /* full at the cap: fine only if the stream ends exactly here */
        uint8_t probe;
        z.next_out = &probe, z.avail_out = 1;
        size_t chunk_in = n - in_pos > (1u << 30) ? (1u << 30) : n - in_pos;
        z.next_in = (Bytef *)(uintptr_t)(in + in_pos), z.avail_in = (uInt)chunk_in;
        int rr = inflate(&z, Z_NO_FLUSH);
        in_pos += chunk_in - z.avail_in;
        if (z.avail_out == 0) {
          s = tfw__error(TFW_EFORMAT, "%s: '%s': decompresses to more than %zu bytes (the limit)",
                         fmt, what, cap);
          break;
        }
        if (rr == Z_STREAM_END) break;
        if (rr != Z_OK && rr != Z_BUF_ERROR) {
          s = tfw__error(TFW_EFORMAT, "%s: '%s': corrupt compressed data (%s)", fmt, what,
                         z.msg ? z.msg : "zlib error");
          break;
        }
        if (in_pos == n && z.avail_in == 0) {
          s = tfw__error(TFW_EFORMAT, "%s: '%s': truncated compressed stream", fmt, what);
          break;
        }
        continue;
      }
      size_t na = alloc > cap / 2 ? cap : alloc * 2;
      uint8_t *nb = tfw__realloc(buf, na);
      if (!nb) {
        s = tfw__error(TFW_ENOMEM, "%s: '%s': out of memory (%zu bytes)", fmt, what, na);
        break;
      }
      buf = nb, alloc = na;
    }
    size_t chunk_in = n - in_pos > (1u << 30) ? (1u << 30) : n - in_pos;
    size_t chunk_out = alloc - done > (1u << 30) ? (1u << 30) : alloc - done;
    z.next_in = (Bytef *)(uintptr_t)(in + in_pos), z.avail_in = (uInt)chunk_in;
    z.next_out = buf + done, z.avail_out = (uInt)chunk_out;
    int rr = inflate(&z, Z_NO_FLUSH);
    in_pos += chunk_in - z.avail_in;
    done += chunk_out - z.avail_out;
    if (rr == Z_STREAM_END) {
      /* gzip allows concatenated members (gzip -d reads them all) */
      if (wbits > 15 + 8 && in_pos + 2 <= n && in[in_pos] == 0x1f && in[in_pos + 1] == 0x8b) {
        if (inflateReset(&z) != Z_OK) {
          s = tfw__error(TFW_EINTERNAL, "%s: '%s': inflateReset failed", fmt, what);
          break;
        }
        continue;
      }
      if (in_pos != n)
        s = tfw__error(TFW_EFORMAT, "%s: '%s': %zu bytes of trailing garbage after the "
                       "compressed stream", fmt, what, n - in_pos);
      break;
    }
    if (rr == Z_MEM_ERROR) {
      s = tfw__error(TFW_ENOMEM, "%s: '%s': out of memory in zlib", fmt, what);
      break;
    }
    if (rr != Z_OK && rr != Z_BUF_ERROR) {
      s = tfw__error(TFW_EFORMAT, "%s: '%s': corrupt compressed data (%s)", fmt, what,
                     z.msg ? z.msg : "zlib error");
      break;
    }
    if (in_pos == n && z.avail_in == 0 && done < alloc) {
      s = tfw__error(TFW_EFORMAT, "%s: '%s': truncated compressed stream (%zu bytes end "
                     "before the stream does)", fmt, what, n);
      break;
    }
  }
  inflateEnd(&z);
  if (s) {
    tfw__free(buf);
    return s;
  }
  if (expect && done != expect) {
    tfw__free(buf);
    return tfw__error(TFW_EFORMAT, "%s: '%s': decompresses to %zu bytes, expected %zu", fmt,
                      what, done, expect);
  }
  *out = buf, *out_n = done;
  return TFW_OK;
#else
  (void)in, (void)n, (void)wbits, (void)expect, (void)cap;
  return tfw__error(TFW_EUNSUPPORTED, "%s: '%s' is compressed, but tenflower was built without "
                    "zlib (install zlib1g-dev and rebuild)", fmt, what);
#endif
}

static int64_t resolve_cap(const tfw_reader_options *o) {
  return o->max_bytes > 0 ? o->max_bytes : TFW_READER_DEFAULT_MAX_BYTES;
}

/* Replaces *b by its inflated contents (gzip). */
static tfw_status gunzip_blob(tfw__blob **b, const char *name, int64_t cap) {
  uint8_t *raw;
  size_t raw_n;
  tfw_status s = tfw__inflate("gzip", name, (*b)->data, (*b)->size, 15 + 16, 0, (size_t)cap,
                              &raw, &raw_n);
  if (s) return s;
  tfw__blob *nb = tfw__blob_from_heap(raw, raw_n);
  if (!nb) return TFW_ENOMEM;
  tfw__blob_release(*b);
  *b = nb;
  return TFW_OK;
}

/* Detects the backend, gunzips, opens. Takes over blob (released on failure). */
static tfw_reader *open_blob(tfw__blob *blob, const char *name, const tfw_reader_options *opt) {
  tfw_reader_options o = opt ? *opt : tfw_reader_options_default();
  tfw_reader *r = tfw__calloc(1, sizeof *r);
  if (!r) {
    tfw__blob_release(blob);
    tfw__error(TFW_ENOMEM, OP ": out of memory");
    return NULL;
  }
  r->blob = blob;
  r->name = dupstr(name ? name : "<memory>");
  if (!r->name) {
    tfw__error(TFW_ENOMEM, OP ": out of memory");
    goto fail;
  }
  tfw__input in = {.name = r->name, .data = blob->data, .size = blob->size,
                   .mapped = blob->mapped, .blob = blob, .max_bytes = resolve_cap(&o)};
  if ((int64_t)in.size > in.max_bytes) {
    tfw__error(TFW_EFORMAT, OP ": '%s' is %zu bytes, above max_bytes (%lld)", r->name, in.size,
               (long long)in.max_bytes);
    goto fail;
  }
  if (in.size >= 2 && in.data[0] == 0x1f && in.data[1] == 0x8b) {
    if (gunzip_blob(&r->blob, r->name, in.max_bytes)) goto fail;
    in.data = r->blob->data, in.size = r->blob->size, in.gzip = true, in.mapped = false;
    in.blob = r->blob;
  }
  if (o.format) {
    r->backend = backend_by_name(o.format);
    if (!r->backend) {
      char known[256];
      list_formats(known, sizeof known);
      tfw__error(TFW_EUNSUPPORTED, OP ": unknown format '%.40s' (known: %s)", o.format, known);
      goto fail;
    }
  } else {
    r->backend = backend_by_ext(name);
    if (!r->backend) r->backend = backend_by_sniff(in.data, in.size);
    if (!r->backend) {
      char known[256];
      list_formats(known, sizeof known);
      tfw__error(TFW_EUNSUPPORTED, OP ": '%s': format not recognised from the name or the "
                 "first bytes (known: %s); set tfw_reader_options.format", r->name, known);
      goto fail;
    }
  }
  if (o.delimiter == '\n' || o.delimiter == '\r' || o.delimiter == '"') {
    tfw__error(TFW_EVALUE, OP ": delimiter 0x%02x is not allowed", (unsigned char)o.delimiter);
    goto fail;
  }
  if (r->backend->open(r, &in, &o)) goto fail;
  if (!r->has_table && !r->has_ops) {
    tfw__error(TFW_EINTERNAL, "%s: backend set no access", r->backend->name);
    goto fail;
  }
  if (build_view(r, &o)) goto fail;
  return r;
fail:
  tfw_reader_close(r);
  return NULL;
}

tfw_reader *tfw__reader_open_buffer(const void *data, size_t size, const char *name,
                                    const tfw_reader_options *opt) {
  uint8_t *copy = tfw__malloc(size ? size : 1);
  if (!copy) {
    tfw__error(TFW_ENOMEM, OP ": out of memory (%zu bytes)", size);
    return NULL;
  }
  if (size) memcpy(copy, data, size);
  tfw__blob *b = blob_new(copy, size, false);
  if (!b) {
    tfw__free(copy);
    tfw__error(TFW_ENOMEM, OP ": out of memory");
    return NULL;
  }
  return open_blob(b, name, opt);
}

tfw_reader *tfw_reader_open_memory(const void *data, size_t size, const char *name,
                                   const tfw_reader_options *opt) {
  if (!data && size) {
    tfw__error(TFW_EVALUE, OP ": data is NULL");
    return NULL;
  }
  return tfw__reader_open_buffer(data, size, name, opt);
}

static tfw__blob *load_file(const char *path, const tfw_reader_options *opt);

tfw_reader *tfw_reader_open(const char *path, const tfw_reader_options *opt) {
  tfw_reader_options o = opt ? *opt : tfw_reader_options_default();
  tfw__blob *b = load_file(path, &o);
  return b ? open_blob(b, path, &o) : NULL;
}

tfw_status tfw__input_load(const char *path, const tfw_reader_options *opt, tfw__blob **out) {
  tfw_reader_options o = opt ? *opt : tfw_reader_options_default();
  *out = load_file(path, &o);
  if (!*out) return tfw_last_status();
  if ((*out)->size >= 2 && (*out)->data[0] == 0x1f && (*out)->data[1] == 0x8b) {
    tfw_status s = gunzip_blob(out, path, resolve_cap(&o));
    if (s) {
      tfw__blob_release(*out);
      *out = NULL;
      return s;
    }
  }
  return TFW_OK;
}

/* The file's bytes: mapped or read (gzip is left to the caller). */
static tfw__blob *load_file(const char *path, const tfw_reader_options *opt) {
  if (!path) {
    tfw__error(TFW_EVALUE, OP ": path is NULL");
    return NULL;
  }
  tfw_reader_options o = *opt;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    tfw__error(TFW_EIO, OP ": cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    tfw__error(TFW_EIO, OP ": '%s' is not a regular file", path);
    close(fd);
    return NULL;
  }
  size_t size = (size_t)st.st_size;
  int64_t cap = resolve_cap(&o);
  if ((int64_t)size > cap) {
    close(fd);
    tfw__error(TFW_EFORMAT, OP ": '%s' is %zu bytes, above max_bytes (%lld)", path, size,
               (long long)cap);
    return NULL;
  }
  uint8_t head[2] = {0, 0};
  bool gz = pread(fd, head, 2, 0) == 2 && head[0] == 0x1f && head[1] == 0x8b;
  bool map = size > 0 && !gz && o.mmap >= 0 &&
             (o.mmap > 0 || (int64_t)size >= TFW_READER_MMAP_THRESHOLD);
  tfw__blob *b = NULL;
  if (map) {
    void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m != MAP_FAILED) b = blob_new(m, size, true);
    if (m != MAP_FAILED && !b) munmap(m, size);
  }
  if (!b) {
    uint8_t *buf = tfw__malloc(size ? size : 1);
    if (!buf) {
      close(fd);
      tfw__error(TFW_ENOMEM, OP ": out of memory reading '%s' (%zu bytes)", path, size);
      return NULL;
    }
    size_t got = 0;
    while (got < size) {
      ssize_t k = pread(fd, buf + got, size - got > (1u << 30) ? (1u << 30) : size - got,
                        (off_t)got);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        tfw__error(TFW_EIO, OP ": read of '%s' failed: %s", path, k < 0 ? strerror(errno)
                                                                        : "file shrank");
        tfw__free(buf);
        close(fd);
        return NULL;
      }
      got += (size_t)k;
    }
    b = blob_new(buf, size, false);
    if (!b) {
      tfw__free(buf);
      close(fd);
      tfw__error(TFW_ENOMEM, OP ": out of memory");
      return NULL;
    }
  }
  close(fd);
  return b;
}

/* ---- queries ------------------------------------------------------------------------------- */
const char *tfw_reader_format(const tfw_reader *r) { return r ? r->backend->name : NULL; }
const tfw_schema *tfw_reader_schema(const tfw_reader *r) { return r ? &r->schema : NULL; }

int64_t tfw_reader_num_records(const tfw_reader *r) {
  if (!r) return -1;
  if (r->has_table) return r->rows;
  return r->ops.num_records ? r->ops.num_records(r->impl) : -1;
}

bool tfw_reader_seekable(const tfw_reader *r) {
  return r && (r->has_table || (r->ops.get && r->ops.num_records &&
                                r->ops.num_records(r->impl) >= 0));
}

/* ---- records ---------------------------------------------------------------------------------- */
static tfw_status table_get(tfw_reader *r, int64_t index, tfw_tensor **vals) {
  for (int i = 0; i < r->n_full; i++) {
    const tfw_column *c = &r->cols[i];
    if (c->mask && !((const bool *)(const void *)tfw__data(c->mask))[index]) {
      vals[i] = NULL;
      continue;
    }
    const tfw_tensor *v = c->values;
    int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
    if (c->offsets) {
      const int64_t *o = (const int64_t *)(const void *)tfw__data(c->offsets);
      memcpy(shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
      memcpy(strides, v->strides, sizeof(int64_t) * (size_t)v->ndim);
      shape[0] = o[index + 1] - o[index];
      vals[i] = tfw__tensor_view(v, v->ndim, shape, strides, v->offset + o[index] * v->strides[0]);
    } else {
      vals[i] = tfw__tensor_view(v, v->ndim - 1, v->shape + 1, v->strides + 1,
                                 v->offset + index * v->strides[0]);
    }
    if (!vals[i]) return TFW_ENOMEM;
  }
  return TFW_OK;
}

static tfw_status check_sample_fits(const tfw_reader *r) {
  if (r->n_view > TFW_SAMPLE_MAX_FIELDS)
    return tfw__error(TFW_EVALUE, OP ": '%s' has %d fields, a record (tfw_sample) holds at most "
                      "%d: select fields (tfw_reader_options.columns), stack the numeric ones "
                      "(.stack_numeric) or use tfw_reader_read_columns", r->name, r->n_view,
                      TFW_SAMPLE_MAX_FIELDS);
  for (int i = 0; i < r->n_view; i++)
    if (strlen(r->view[i].name) >= TFW_SAMPLE_NAME_MAX)
      return tfw__error(TFW_EVALUE, OP ": '%s': field name '%.64s' is %zu bytes, a record holds "
                        "names of at most %d: use tfw_reader_read_columns", r->name,
                        r->view[i].name, strlen(r->view[i].name), TFW_SAMPLE_NAME_MAX - 1);
  return TFW_OK;
}

/* Turns the full record vals (owned; released here) into the view sample out. */
static tfw_status make_sample(tfw_reader *r, tfw_tensor **vals, tfw_sample *out) {
  tfw_status s = TFW_OK;
  for (int i = 0; i < r->n_view && !s; i++) {
    tfw_tensor *t = NULL;
    if (r->src[i] >= 0) {
      t = vals[r->src[i]] ? tfw_retain(vals[r->src[i]]) : tfw__missing_value(&r->view[i]);
    } else {
      int64_t k = r->n_stack;
      t = tfw__tensor_new(OP, r->stack_dtype, 1, &k);
      for (int j = 0; t && j < r->n_stack; j++) {
        const tfw_tensor *v = vals[r->stack_src[j]];
        double x = v ? tfw__load_f64(tfw__data(v), v->dtype) : NAN;
        if (!v && !tfw_dtype_is_floating(r->stack_dtype)) x = 0;
        tfw__store_f64(tfw__data(t) + (size_t)j * tfw_dtype_size(r->stack_dtype),
                       r->stack_dtype, x);
      }
    }
    if (!t) s = tfw_last_status() ? tfw_last_status() : TFW_ENOMEM;
    else {
      s = tfw_sample_add(out, r->view[i].name, t);
      tfw_release(t);
    }
  }
  for (int i = 0; i < r->n_full; i++) tfw_release(vals[i]);
  if (s) tfw_sample_clear(out);
  return s;
}

static tfw_status get_full(tfw_reader *r, int64_t index, tfw_tensor **vals) {
  memset(vals, 0, sizeof(*vals) * (size_t)r->n_full);
  tfw_status s = r->has_table ? table_get(r, index, vals) : r->ops.get(r->impl, index, vals);
  if (s)
    for (int i = 0; i < r->n_full; i++) tfw_release(vals[i]), vals[i] = NULL;
  return s;
}

tfw_status tfw_reader_get(tfw_reader *r, int64_t index, tfw_sample *out) {
  if (!r || !out) return tfw__error(TFW_EVALUE, OP "_get: NULL argument");
  tfw_sample_clear(out);
  if (!tfw_reader_seekable(r))
    return tfw__error(TFW_EUNSUPPORTED, OP "_get: '%s' (%s) has no random access; read it "
                      "with tfw_reader_next", r->name, r->backend->name);
  int64_t n = tfw_reader_num_records(r);
  if (index < 0 || index >= n)
    return tfw__error(TFW_EINDEX, OP "_get: '%s': record %lld out of range [0, %lld)", r->name,
                      (long long)index, (long long)n);
  if (check_sample_fits(r)) return TFW_EVALUE;
  tfw_tensor *stackbuf[64], **vals = r->n_full <= 64 ? stackbuf
                                     : tfw__calloc((size_t)r->n_full, sizeof *vals);
  if (!vals) return tfw__error(TFW_ENOMEM, OP "_get: out of memory");
  tfw_status s = get_full(r, index, vals);
  if (!s) s = make_sample(r, vals, out);
  if (vals != stackbuf) tfw__free(vals);
  return s;
}

tfw_status tfw_reader_rewind(tfw_reader *r) {
  if (!r) return tfw__error(TFW_EVALUE, OP "_rewind: NULL reader");
  r->pos = 0;
  if (r->has_ops && r->ops.rewind) return r->ops.rewind(r->impl);
  return TFW_OK;
}

tfw_status tfw_reader_next(tfw_reader *r, tfw_sample *out) {
  if (!r || !out) return tfw__error(TFW_EVALUE, OP "_next: NULL argument");
  tfw_sample_clear(out);
  if (check_sample_fits(r)) return TFW_EVALUE;
  bool seq = r->has_ops && r->ops.next;
  if (!seq && r->pos >= tfw_reader_num_records(r)) return TFW_OK;
  tfw_tensor *stackbuf[64], **vals = r->n_full <= 64 ? stackbuf
                                     : tfw__calloc((size_t)r->n_full, sizeof *vals);
  if (!vals) return tfw__error(TFW_ENOMEM, OP "_next: out of memory");
  tfw_status s;
  bool end = false;
  if (seq) {
    memset(vals, 0, sizeof(*vals) * (size_t)r->n_full);
    s = r->ops.next(r->impl, vals, &end);
    if (s || end)
      for (int i = 0; i < r->n_full; i++) tfw_release(vals[i]);
  } else {
    s = get_full(r, r->pos, vals);
  }
  if (!s && !end) {
    s = make_sample(r, vals, out);
    if (!s) r->pos++;
  }
  if (vals != stackbuf) tfw__free(vals);
  return s;
}

/* ---- columns ------------------------------------------------------------------------------------ */
static tfw_status slice_column(const tfw_column *c, int64_t start, int64_t count, tfw_column *out) {
  memset(out, 0, sizeof *out);
  const tfw_tensor *v = c->values;
  int64_t shape[TFW_MAX_DIMS];
  memcpy(shape, v->shape, sizeof(int64_t) * (size_t)v->ndim);
  if (c->offsets) {
    const int64_t *o = (const int64_t *)(const void *)tfw__data(c->offsets);
    int64_t n1 = count + 1;
    out->offsets = tfw__tensor_new(OP, TFW_DTYPE_I64, 1, &n1);
    if (!out->offsets) return TFW_ENOMEM;
    int64_t *no = (int64_t *)(void *)tfw__data(out->offsets);
    for (int64_t k = 0; k <= count; k++) no[k] = o[start + k] - o[start];
    shape[0] = no[count];
    out->values = tfw__tensor_view(v, v->ndim, shape, v->strides,
                                   v->offset + o[start] * v->strides[0]);
  } else {
    shape[0] = count;
    out->values = tfw__tensor_view(v, v->ndim, shape, v->strides, v->offset + start * v->strides[0]);
  }
  if (c->mask) out->mask = tfw__tensor_view(c->mask, 1, &count, c->mask->strides,
                                            c->mask->offset + start);
  if (!out->values || (c->mask && !out->mask)) {
    tfw_column_clear(out);
    return tfw__error(TFW_ENOMEM, OP ": out of memory");
  }
  return TFW_OK;
}

/* Column of a full field built record by record through get (formats with their own ops). */
static tfw_status gather_column(tfw_reader *r, int fi, int64_t start, int64_t count,
                                tfw_column *out) {
  memset(out, 0, sizeof *out);
  const tfw_field *f = &r->full[fi];
  tfw_tensor **vals = tfw__calloc((size_t)r->n_full, sizeof *vals);
  tfw_tensor **parts = tfw__calloc(count > 0 ? (size_t)count : 1, sizeof *parts);
  tfw_status s = TFW_OK;
  if (!vals || !parts) {
    s = tfw__error(TFW_ENOMEM, OP ": out of memory");
    goto out;
  }
  int64_t n1 = count + 1, total = 0;
  if (f->nullable && !(out->mask = tfw_zeros(TFW_DTYPE_BOOL, 1, &count))) goto nomem;
  for (int64_t k = 0; k < count && !s; k++) {
    if ((s = get_full(r, start + k, vals))) break;
    parts[k] = vals[fi], vals[fi] = NULL;
    for (int i = 0; i < r->n_full; i++) tfw_release(vals[i]), vals[i] = NULL;
    if (out->mask) ((bool *)(void *)tfw__data(out->mask))[k] = parts[k] != NULL;
    if (!parts[k] && !(parts[k] = tfw__missing_value(f))) goto nomem;
    if (parts[k]->dtype != f->dtype || parts[k]->ndim != f->ndim) {
      s = tfw__error(TFW_EINTERNAL, "%s: record %lld field '%.64s' disagrees with the schema",
                     r->backend->name, (long long)(start + k), f->name);
      break;
    }
    total += f->ndim ? parts[k]->shape[0] : 1;
  }
  if (s) goto out;
  int64_t shape[TFW_MAX_DIMS + 1];
  bool var = field_variable(f);
  if (var) {
    if (!(out->offsets = tfw__tensor_new(OP, TFW_DTYPE_I64, 1, &n1))) goto nomem;
    int64_t *o = (int64_t *)(void *)tfw__data(out->offsets);
    o[0] = 0;
    for (int64_t k = 0; k < count; k++) o[k + 1] = o[k] + parts[k]->shape[0];
    for (int d = 0; d < f->ndim; d++) shape[d] = f->shape[d] < 0 ? 0 : f->shape[d];
    shape[0] = total;
    for (int64_t k = 0; k < count && f->ndim > 1; k++)
      for (int d = 1; d < f->ndim; d++)
        if (parts[k]->shape[d] != shape[d]) {
          s = tfw__error(TFW_EUNSUPPORTED, OP ": field '%.64s' varies in dim %d, a column only "
                         "handles variable dim 0", f->name, d);
          goto out;
        }
    if (!(out->values = tfw__tensor_new(OP, f->dtype, f->ndim, shape))) goto nomem;
  } else {
    shape[0] = count;
    for (int d = 0; d < f->ndim; d++) shape[d + 1] = f->shape[d];
    if (!(out->values = tfw__tensor_new(OP, f->dtype, f->ndim + 1, shape))) goto nomem;
  }
  size_t es = tfw_dtype_size(f->dtype);
  char *dst = tfw__data(out->values);
  for (int64_t k = 0; k < count; k++) {
    tfw_tensor *pc = tfw__as_contiguous(parts[k], f->dtype);
    if (!pc) goto nomem;
    int64_t ne = tfw__numel(pc->ndim, pc->shape);
    if (!var && ne != tfw__numel(f->ndim, f->shape)) {
      tfw_release(pc);
      s = tfw__error(TFW_EINTERNAL, "%s: record %lld field '%.64s' has the wrong shape",
                     r->backend->name, (long long)(start + k), f->name);
      goto out;
    }
    memcpy(dst, tfw__data(pc), (size_t)ne * es);
    dst += (size_t)ne * es;
    tfw_release(pc);
  }
  goto out;
nomem:
  s = tfw_last_status() == TFW_ENOMEM ? TFW_ENOMEM : tfw__error(TFW_ENOMEM, OP ": out of memory");
out:
  if (parts)
    for (int64_t k = 0; k < count; k++) tfw_release(parts[k]);
  tfw__free(parts);
  tfw__free(vals);
  if (s) tfw_column_clear(out);
  return s;
}

static tfw_status full_column(tfw_reader *r, int fi, int64_t start, int64_t count,
                              tfw_column *out) {
  if (r->has_table) return slice_column(&r->cols[fi], start, count, out);
  return gather_column(r, fi, start, count, out);
}

tfw_status tfw_reader_read_columns(tfw_reader *r, int64_t start, int64_t count, tfw_column *out) {
  if (!r || !out) return tfw__error(TFW_EVALUE, OP "_read_columns: NULL argument");
  for (int i = 0; i < r->n_view; i++) memset(&out[i], 0, sizeof out[i]);
  if (!tfw_reader_seekable(r))
    return tfw__error(TFW_EUNSUPPORTED, OP "_read_columns: '%s' (%s) has no random access",
                      r->name, r->backend->name);
  int64_t n = tfw_reader_num_records(r);
  if (count == -1 && start >= 0 && start <= n) count = n - start;
  if (start < 0 || count < 0 || start > n || count > n - start)
    return tfw__error(TFW_EINDEX, OP "_read_columns: '%s': records [%lld, %lld + %lld) are "
                      "outside [0, %lld)", r->name, (long long)start, (long long)start,
                      (long long)count, (long long)n);
  tfw_status s = TFW_OK;
  for (int i = 0; i < r->n_view && !s; i++) {
    if (r->src[i] >= 0) {
      s = full_column(r, r->src[i], start, count, &out[i]);
      continue;
    }
    /* the stacked features: [count, k] */
    int64_t shape[2] = {count, r->n_stack};
    out[i].values = tfw__tensor_new(OP, r->stack_dtype, 2, shape);
    if (!out[i].values) {
      s = TFW_ENOMEM;
      break;
    }
    if (r->view[i].nullable && !(out[i].mask = tfw_ones(TFW_DTYPE_BOOL, 1, &count))) {
      s = TFW_ENOMEM;
      break;
    }
    for (int j = 0; j < r->n_stack && !s; j++) {
      tfw_column c;
      if ((s = full_column(r, r->stack_src[j], start, count, &c))) break;
      tfw_tensor *dst = tfw__tensor_view(out[i].values, 1, &count,
                                         (int64_t[]){r->n_stack}, j);
      if (!dst || (s = tfw__copy_cast(dst, c.values))) s = s ? s : TFW_ENOMEM;
      tfw_release(dst);
      if (!s && c.mask) {
        bool *m = (bool *)(void *)tfw__data(out[i].mask);
        const bool *cm = (const bool *)(const void *)tfw__data(c.mask);
        size_t es = tfw_dtype_size(r->stack_dtype);
        for (int64_t k = 0; k < count; k++)
          if (!cm[k]) {
            m[k] = false;
            double x = tfw_dtype_is_floating(r->stack_dtype) ? NAN : 0.0;
            tfw__store_f64(tfw__data(out[i].values) + (size_t)(k * r->n_stack + j) * es,
                           r->stack_dtype, x);
          }
      }
      tfw_column_clear(&c);
    }
  }
  if (s)
    for (int i = 0; i < r->n_view; i++) tfw_column_clear(&out[i]);
  return s;
}

/* ---- the dataset wrapper ------------------------------------------------------------------------ */
static int64_t ds_len(void *ctx) { return tfw_reader_num_records(ctx); }
static tfw_status ds_get(void *ctx, int64_t index, tfw_sample *out) {
  return tfw_reader_get(ctx, index, out);
}
static void *ds_iter_open(void *ctx, int64_t epoch) {
  tfw_reader *r = ctx;
  int expect = 0;
  if (!atomic_compare_exchange_strong(&r->iter_busy, &expect, 1)) {
    tfw__error(TFW_ESTATE, OP ": '%s' is a stream and already has an open iterator", r->name);
    return NULL;
  }
  if (tfw_reader_rewind(r)) {
    atomic_store(&r->iter_busy, 0);
    return NULL;
  }
  return r;
}
static tfw_status ds_iter_next(void *ctx, void *it, tfw_sample *out) {
  return tfw_reader_next(ctx, out);
}
static void ds_iter_close(void *ctx, void *it) { atomic_store(&((tfw_reader *)ctx)->iter_busy, 0); }
static void ds_destroy(void *ctx) { tfw_reader_close(ctx); }

tfw_dataset *tfw_dataset_from_reader(tfw_reader *r) {
  if (!r) {
    tfw__error(TFW_EVALUE, "dataset_from_reader: reader is NULL");
    return NULL;
  }
  if (check_sample_fits(r)) return NULL;
  tfw_dataset_vtable vt = {.destroy = ds_destroy};
  if (tfw_reader_seekable(r)) vt.len = ds_len, vt.get = ds_get;
  else vt.iter_open = ds_iter_open, vt.iter_next = ds_iter_next, vt.iter_close = ds_iter_close;
  return tfw_dataset_new(&vt, r);
}

tfw_dataset *tfw_dataset_open(const char *path, const tfw_reader_options *opt) {
  tfw_reader *r = tfw_reader_open(path, opt);
  if (!r) return NULL;
  tfw_dataset *ds = tfw_dataset_from_reader(r);
  if (!ds) tfw_reader_close(r);
  return ds;
}
