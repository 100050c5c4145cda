/* Samples and datasets: the handle, tensor datasets (with a row-gather batch fast path),
 * subset, concat / chain, random split, map and filter. */
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* ---- samples ---------------------------------------------------------------------------- */
void tfw_sample_init(tfw_sample *s) {
  if (s) memset(s, 0, sizeof *s);
}

tfw_status tfw_sample_add(tfw_sample *s, const char *name, tfw_tensor *t) {
  if (!s || !name || !t) return tfw__error(TFW_EVALUE, "sample_add: NULL sample, name or tensor");
  size_t len = strlen(name);
  if (len == 0 || len >= TFW_SAMPLE_NAME_MAX)
    return tfw__error(TFW_EVALUE, "sample_add: name '%.40s' must have 1 to %d bytes", name,
                      TFW_SAMPLE_NAME_MAX - 1);
  if (s->n >= TFW_SAMPLE_MAX_FIELDS)
    return tfw__error(TFW_EVALUE, "sample_add: '%s': a sample holds at most %d fields", name,
                      TFW_SAMPLE_MAX_FIELDS);
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0)
      return tfw__error(TFW_EVALUE, "sample_add: field '%s' is already present", name);
  memcpy(s->names[s->n], name, len + 1);
  s->tensors[s->n++] = tfw_retain(t);
  return TFW_OK;
}

tfw_tensor *tfw_sample_get(const tfw_sample *s, const char *name) {
  if (!s || !name) return NULL;
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0) return s->tensors[i];
  return NULL;
}

void tfw_sample_clear(tfw_sample *s) {
  if (!s) return;
  for (int i = 0; i < s->n && i < TFW_SAMPLE_MAX_FIELDS; i++) tfw_release(s->tensors[i]);
  s->n = 0;
}

/* ---- the handle --------------------------------------------------------------------------- */
struct tfw_dataset {
  _Atomic int64_t refcount;
  tfw_dataset_vtable vt;
  void *ctx;
};

tfw_dataset *tfw_dataset_new(const tfw_dataset_vtable *vt, void *ctx) {
  if (!vt) {
    tfw__error(TFW_EVALUE, "dataset_new: vtable is NULL");
    return NULL;
  }
  bool map = vt->len && vt->get, it = vt->iter_open && vt->iter_next && vt->iter_close;
  if (map == it) {
    tfw__error(TFW_EVALUE, "dataset_new: the vtable must give either len + get (map-style) or "
               "iter_open + iter_next + iter_close (iterable), exactly one of them");
    return NULL;
  }
  tfw_dataset *ds = tfw__calloc(1, sizeof *ds);
  if (!ds) {
    tfw__error(TFW_ENOMEM, "dataset_new: out of memory");
    return NULL;
  }
  ds->refcount = 1;
  ds->vt = *vt;
  ds->ctx = ctx;
  return ds;
}

tfw_dataset *tfw_dataset_retain(tfw_dataset *ds) {
  if (ds) atomic_fetch_add(&ds->refcount, 1);
  return ds;
}

void tfw_dataset_release(tfw_dataset *ds) {
  if (!ds) return;
  int64_t r = atomic_fetch_sub(&ds->refcount, 1) - 1;
  TFW_ASSERT(r >= 0);
  if (r == 0) {
    if (ds->vt.destroy) ds->vt.destroy(ds->ctx);
    tfw__free(ds);
  }
}

bool tfw_dataset_is_iterable(const tfw_dataset *ds) { return ds && ds->vt.iter_open; }

int64_t tfw_dataset_len(const tfw_dataset *ds) {
  return ds && ds->vt.len ? ds->vt.len(ds->ctx) : -1;
}

tfw_status tfw_dataset_get(tfw_dataset *ds, int64_t index, tfw_sample *out) {
  if (!ds || !out) return tfw__error(TFW_EVALUE, "dataset_get: NULL dataset or output");
  tfw_sample_clear(out);
  if (!ds->vt.get)
    return tfw__error(TFW_EUNSUPPORTED, "dataset_get: an iterable dataset has no get(index)");
  int64_t n = ds->vt.len(ds->ctx);
  if (index < 0 || index >= n)
    return tfw__error(TFW_EINDEX, "dataset_get: index %lld is outside [0, %lld)",
                      (long long)index, (long long)n);
  tfw_status s = ds->vt.get(ds->ctx, index, out);
  if (s) {
    tfw_sample_clear(out);
    if (tfw_last_status() == TFW_OK) tfw__error(s, "dataset_get: the dataset's get failed");
  }
  return s;
}

/* Internal accessors for the loader. */
const tfw_dataset_vtable *tfw__dataset_vt(const tfw_dataset *ds) { return &ds->vt; }
void *tfw__dataset_ctx(const tfw_dataset *ds) { return ds->ctx; }

/* ---- tensor dataset ---------------------------------------------------------------------- */
typedef struct tensor_ds {
  int n;
  int64_t len;
  char names[TFW_SAMPLE_MAX_FIELDS][TFW_SAMPLE_NAME_MAX];
  tfw_tensor *t[TFW_SAMPLE_MAX_FIELDS]; /* contiguous */
} tensor_ds;

static int64_t tds_len(void *ctx) { return ((tensor_ds *)ctx)->len; }

static tfw_status tds_get(void *ctx, int64_t index, tfw_sample *out) {
  tensor_ds *d = ctx;
  for (int k = 0; k < d->n; k++) {
    tfw_tensor *row = tfw_select(d->t[k], 0, index); /* a view */
    if (!row) return tfw_last_status();
    tfw_status s = tfw_sample_add(out, d->names[k], row);
    tfw_release(row);
    if (s) return s;
  }
  return TFW_OK;
}

/* The fast path: one allocation per field, rows copied with memcpy. */
static tfw_status tds_get_batch(void *ctx, const int64_t *idx, int64_t n, tfw_sample *out) {
  tensor_ds *d = ctx;
  for (int64_t i = 0; i < n; i++)
    if (idx[i] < 0 || idx[i] >= d->len)
      return tfw__error(TFW_EINDEX, "dataset get_batch: index %lld is outside [0, %lld)",
                        (long long)idx[i], (long long)d->len);
  for (int k = 0; k < d->n; k++) {
    const tfw_tensor *src = d->t[k];
    int64_t shape[TFW_MAX_DIMS];
    memcpy(shape, src->shape, sizeof shape);
    shape[0] = n;
    tfw_tensor *b = tfw__tensor_new("dataset get_batch", src->dtype, src->ndim, shape);
    if (!b) return tfw_last_status();
    size_t row = tfw_dtype_size(src->dtype);
    for (int dd = 1; dd < src->ndim; dd++) row *= (size_t)src->shape[dd];
    const char *sp = tfw__data(src);
    char *dp = tfw__data(b);
    for (int64_t i = 0; i < n; i++) memcpy(dp + (size_t)i * row, sp + (size_t)idx[i] * row, row);
    tfw_status s = tfw_sample_add(out, d->names[k], b);
    tfw_release(b);
    if (s) return s;
  }
  return TFW_OK;
}

static void tds_destroy(void *ctx) {
  tensor_ds *d = ctx;
  for (int k = 0; k < d->n; k++) tfw_release(d->t[k]);
  tfw__free(d);
}

tfw_dataset *tfw_dataset_from_tensors(int n, const char *const *names,
                                      tfw_tensor *const *tensors) {
  const char *op = "dataset_from_tensors";
  if (n < 1 || n > TFW_SAMPLE_MAX_FIELDS || !names || !tensors) {
    tfw__error(TFW_EVALUE, "%s: need 1 to %d named tensors, got %d", op, TFW_SAMPLE_MAX_FIELDS, n);
    return NULL;
  }
  tensor_ds *d = tfw__calloc(1, sizeof *d);
  if (!d) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    return NULL;
  }
  for (int k = 0; k < n; k++) {
    const tfw_tensor *t = tensors[k];
    size_t len = names[k] ? strlen(names[k]) : 0;
    if (!t || len == 0 || len >= TFW_SAMPLE_NAME_MAX) {
      tfw__error(TFW_EVALUE, "%s: field %d: NULL tensor or a name not of 1 to %d bytes", op, k,
                 TFW_SAMPLE_NAME_MAX - 1);
      goto fail;
    }
    for (int j = 0; j < k; j++)
      if (strcmp(names[j], names[k]) == 0) {
        tfw__error(TFW_EVALUE, "%s: field name '%s' appears twice", op, names[k]);
        goto fail;
      }
    if (t->ndim < 1) {
      tfw__error(TFW_ESHAPE, "%s: field '%s' is 0-d; samples are rows of dim 0", op, names[k]);
      goto fail;
    }
    if (k > 0 && t->shape[0] != d->len) {
      tfw__error(TFW_ESHAPE, "%s: field '%s' has %lld rows, field '%s' has %lld", op, names[k],
                 (long long)t->shape[0], names[0], (long long)d->len);
      goto fail;
    }
    d->len = t->shape[0];
    memcpy(d->names[k], names[k], len + 1);
    d->t[k] = tfw__as_contiguous(t, t->dtype);
    if (!d->t[k]) goto fail;
    d->n = k + 1;
  }
  tfw_dataset_vtable vt = {.len = tds_len, .get = tds_get, .get_batch = tds_get_batch,
                           .destroy = tds_destroy};
  tfw_dataset *ds = tfw_dataset_new(&vt, d);
  if (ds) return ds;
fail:
  tds_destroy(d);
  return NULL;
}

/* ---- subset --------------------------------------------------------------------------------- */
typedef struct subset_ds {
  tfw_dataset *base;
  int64_t n;
  int64_t *idx;
} subset_ds;

static int64_t sub_len(void *ctx) { return ((subset_ds *)ctx)->n; }
static tfw_status sub_get(void *ctx, int64_t i, tfw_sample *out) {
  subset_ds *d = ctx;
  return d->base->vt.get(d->base->ctx, d->idx[i], out);
}
static tfw_status sub_get_batch(void *ctx, const int64_t *idx, int64_t n, tfw_sample *out) {
  subset_ds *d = ctx;
  int64_t *m = tfw__malloc(((size_t)n + 1) * sizeof *m);
  if (!m) return tfw__error(TFW_ENOMEM, "subset get_batch: out of memory");
  for (int64_t i = 0; i < n; i++) m[i] = d->idx[idx[i]];
  tfw_status s = d->base->vt.get_batch(d->base->ctx, m, n, out);
  tfw__free(m);
  return s;
}
static void sub_destroy(void *ctx) {
  subset_ds *d = ctx;
  tfw_dataset_release(d->base);
  tfw__free(d->idx);
  tfw__free(d);
}

/* Takes ownership of idx (freed on failure too). */
static tfw_dataset *subset_take(tfw_dataset *base, int64_t n, int64_t *idx) {
  subset_ds *d = tfw__calloc(1, sizeof *d);
  if (!d) {
    tfw__free(idx);
    tfw__error(TFW_ENOMEM, "dataset_subset: out of memory");
    return NULL;
  }
  d->base = tfw_dataset_retain(base);
  d->n = n;
  d->idx = idx;
  tfw_dataset_vtable vt = {.len = sub_len, .get = sub_get,
                           .get_batch = base->vt.get_batch ? sub_get_batch : NULL,
                           .destroy = sub_destroy};
  tfw_dataset *ds = tfw_dataset_new(&vt, d);
  if (!ds) sub_destroy(d);
  return ds;
}

static tfw_status need_map(const char *op, const tfw_dataset *ds) {
  if (!ds) return tfw__error(TFW_EVALUE, "%s: dataset is NULL", op);
  if (!ds->vt.get)
    return tfw__error(TFW_EUNSUPPORTED, "%s: needs a map-style dataset, got an iterable one", op);
  return TFW_OK;
}

tfw_dataset *tfw_dataset_subset(tfw_dataset *ds, int64_t n, const int64_t *indices) {
  if (need_map("dataset_subset", ds)) return NULL;
  if (n < 0 || (n > 0 && !indices)) {
    tfw__error(TFW_EVALUE, "dataset_subset: %lld indices (NULL array?)", (long long)n);
    return NULL;
  }
  int64_t len = tfw_dataset_len(ds);
  for (int64_t i = 0; i < n; i++)
    if (indices[i] < 0 || indices[i] >= len) {
      tfw__error(TFW_EINDEX, "dataset_subset: indices[%lld] = %lld is outside [0, %lld)",
                 (long long)i, (long long)indices[i], (long long)len);
      return NULL;
    }
  int64_t *idx = tfw__malloc(((size_t)n + 1) * sizeof *idx);
  if (!idx) {
    tfw__error(TFW_ENOMEM, "dataset_subset: out of memory for %lld indices", (long long)n);
    return NULL;
  }
  if (n) memcpy(idx, indices, (size_t)n * sizeof *idx);
  return subset_take(ds, n, idx);
}

tfw_status tfw_dataset_random_split(tfw_dataset *ds, int n, const int64_t *lengths,
                                    uint64_t seed, tfw_dataset **out) {
  if (need_map("dataset_random_split", ds)) return tfw_last_status();
  if (n < 1 || !lengths || !out)
    return tfw__error(TFW_EVALUE, "dataset_random_split: need n >= 1 lengths and outputs");
  int64_t len = tfw_dataset_len(ds), sum = 0;
  for (int i = 0; i < n; i++) {
    if (lengths[i] < 0 || lengths[i] > len - sum)
      return tfw__error(TFW_EVALUE, "dataset_random_split: lengths do not sum to the dataset's "
                        "%lld samples (lengths[%d] = %lld)", (long long)len, i,
                        (long long)lengths[i]);
    sum += lengths[i];
  }
  if (sum != len)
    return tfw__error(TFW_EVALUE, "dataset_random_split: lengths sum to %lld, the dataset has "
                      "%lld samples", (long long)sum, (long long)len);
  int64_t *perm = tfw__malloc(((size_t)len + 1) * sizeof *perm);
  if (!perm) return tfw__error(TFW_ENOMEM, "dataset_random_split: out of memory");
  uint64_t st = seed;
  tfw__random_permutation(perm, len, &st);
  for (int i = 0; i < n; i++) out[i] = NULL;
  int64_t at = 0;
  for (int i = 0; i < n; i++) {
    out[i] = tfw_dataset_subset(ds, lengths[i], perm + at);
    if (!out[i]) {
      for (int j = 0; j < i; j++) tfw_dataset_release(out[j]), out[j] = NULL;
      tfw__free(perm);
      return tfw_last_status();
    }
    at += lengths[i];
  }
  tfw__free(perm);
  return TFW_OK;
}

/* ---- concat (map-style) and chain (iterable) ------------------------------------------------ */
typedef struct concat_ds {
  int n;
  tfw_dataset **parts;
  int64_t *ends; /* cumulative lengths (map-style) */
} concat_ds;

static int64_t cat_len(void *ctx) {
  concat_ds *d = ctx;
  return d->n ? d->ends[d->n - 1] : 0;
}
static tfw_status cat_get(void *ctx, int64_t i, tfw_sample *out) {
  concat_ds *d = ctx;
  int lo = 0, hi = d->n - 1; /* first part whose end is > i */
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (d->ends[mid] > i) hi = mid;
    else lo = mid + 1;
  }
  int64_t begin = lo ? d->ends[lo - 1] : 0;
  return d->parts[lo]->vt.get(d->parts[lo]->ctx, i - begin, out);
}
typedef struct chain_it {
  int part;
  int64_t epoch;
  void *it;
} chain_it;
static void *chain_open(void *ctx, int64_t epoch) {
  concat_ds *d = ctx;
  chain_it *c = tfw__calloc(1, sizeof *c);
  if (!c) {
    tfw__error(TFW_ENOMEM, "dataset chain: out of memory");
    return NULL;
  }
  c->epoch = epoch;
  c->it = d->parts[0]->vt.iter_open(d->parts[0]->ctx, epoch);
  if (!c->it) {
    tfw__free(c);
    return NULL;
  }
  return c;
}
static tfw_status chain_next(void *ctx, void *vit, tfw_sample *out) {
  concat_ds *d = ctx;
  chain_it *c = vit;
  while (c->part < d->n) {
    tfw_dataset *p = d->parts[c->part];
    tfw_status s = p->vt.iter_next(p->ctx, c->it, out);
    if (s || out->n > 0) return s;
    p->vt.iter_close(p->ctx, c->it);
    c->it = NULL;
    if (++c->part < d->n) {
      p = d->parts[c->part];
      c->it = p->vt.iter_open(p->ctx, c->epoch);
      if (!c->it) {
        c->part = d->n;
        return tfw_last_status() ? tfw_last_status() : TFW_EINTERNAL;
      }
    }
  }
  return TFW_OK;
}
static void chain_close(void *ctx, void *vit) {
  concat_ds *d = ctx;
  chain_it *c = vit;
  if (c->it && c->part < d->n) d->parts[c->part]->vt.iter_close(d->parts[c->part]->ctx, c->it);
  tfw__free(c);
}
static void cat_destroy(void *ctx) {
  concat_ds *d = ctx;
  for (int i = 0; i < d->n; i++) tfw_dataset_release(d->parts[i]);
  tfw__free(d->parts);
  tfw__free(d->ends);
  tfw__free(d);
}

tfw_dataset *tfw_dataset_concat(int n, tfw_dataset *const *parts) {
  if (n < 1 || !parts) {
    tfw__error(TFW_EVALUE, "dataset_concat: need at least one dataset, got %d", n);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!parts[i] || tfw_dataset_is_iterable(parts[i]) != tfw_dataset_is_iterable(parts[0])) {
      tfw__error(TFW_EVALUE, "dataset_concat: part %d is NULL or not of the same kind as part 0 "
                 "(map-style and iterable datasets do not mix)", i);
      return NULL;
    }
  concat_ds *d = tfw__calloc(1, sizeof *d);
  if (d) {
    d->parts = tfw__calloc((size_t)n, sizeof *d->parts);
    d->ends = tfw__calloc((size_t)n, sizeof *d->ends);
  }
  if (!d || !d->parts || !d->ends) {
    if (d) tfw__free(d->parts), tfw__free(d->ends);
    tfw__free(d);
    tfw__error(TFW_ENOMEM, "dataset_concat: out of memory");
    return NULL;
  }
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    d->parts[i] = tfw_dataset_retain(parts[i]);
    d->n = i + 1;
    if (!tfw_dataset_is_iterable(parts[i])) total += tfw_dataset_len(parts[i]);
    d->ends[i] = total;
  }
  tfw_dataset_vtable vt = {.destroy = cat_destroy};
  if (tfw_dataset_is_iterable(parts[0])) {
    vt.iter_open = chain_open, vt.iter_next = chain_next, vt.iter_close = chain_close;
  } else {
    vt.len = cat_len, vt.get = cat_get;
  }
  tfw_dataset *ds = tfw_dataset_new(&vt, d);
  if (!ds) cat_destroy(d);
  return ds;
}

/* ---- map and filter ------------------------------------------------------------------------ */
typedef struct map_ds {
  tfw_dataset *base;
  tfw_sample_map_fn fn;
  tfw_sample_pred_fn pred; /* iterable filter */
  void *fctx;
} map_ds;

static int64_t map_len(void *ctx) { return tfw_dataset_len(((map_ds *)ctx)->base); }
static tfw_status map_get(void *ctx, int64_t i, tfw_sample *out) {
  map_ds *d = ctx;
  tfw_status s = d->base->vt.get(d->base->ctx, i, out);
  return s ? s : d->fn(d->fctx, out);
}
static void *map_open(void *ctx, int64_t epoch) {
  map_ds *d = ctx;
  return d->base->vt.iter_open(d->base->ctx, epoch);
}
static tfw_status map_next(void *ctx, void *it, tfw_sample *out) {
  map_ds *d = ctx;
  for (;;) {
    tfw_status s = d->base->vt.iter_next(d->base->ctx, it, out);
    if (s || out->n == 0) return s;
    if (d->fn) return d->fn(d->fctx, out);
    bool keep = false;
    s = d->pred(d->fctx, out, &keep);
    if (s || keep) return s;
    tfw_sample_clear(out);
  }
}
static void map_close(void *ctx, void *it) {
  map_ds *d = ctx;
  d->base->vt.iter_close(d->base->ctx, it);
}
static void map_destroy(void *ctx) {
  map_ds *d = ctx;
  tfw_dataset_release(d->base);
  tfw__free(d);
}

static tfw_dataset *map_new(tfw_dataset *ds, tfw_sample_map_fn fn, tfw_sample_pred_fn pred,
                            void *fctx) {
  map_ds *d = tfw__calloc(1, sizeof *d);
  if (!d) {
    tfw__error(TFW_ENOMEM, "dataset_map: out of memory");
    return NULL;
  }
  d->base = tfw_dataset_retain(ds);
  d->fn = fn, d->pred = pred, d->fctx = fctx;
  tfw_dataset_vtable vt = {.destroy = map_destroy};
  if (tfw_dataset_is_iterable(ds)) {
    vt.iter_open = map_open, vt.iter_next = map_next, vt.iter_close = map_close;
  } else {
    vt.len = map_len, vt.get = map_get;
  }
  tfw_dataset *out = tfw_dataset_new(&vt, d);
  if (!out) map_destroy(d);
  return out;
}

tfw_dataset *tfw_dataset_map(tfw_dataset *ds, tfw_sample_map_fn fn, void *ctx) {
  if (!ds || !fn) {
    tfw__error(TFW_EVALUE, "dataset_map: NULL dataset or function");
    return NULL;
  }
  return map_new(ds, fn, NULL, ctx);
}

tfw_dataset *tfw_dataset_filter(tfw_dataset *ds, tfw_sample_pred_fn pred, void *ctx) {
  if (!ds || !pred) {
    tfw__error(TFW_EVALUE, "dataset_filter: NULL dataset or predicate");
    return NULL;
  }
  if (tfw_dataset_is_iterable(ds)) return map_new(ds, NULL, pred, ctx);
  int64_t len = tfw_dataset_len(ds), kept = 0;
  int64_t *idx = tfw__malloc(((size_t)len + 1) * sizeof *idx);
  if (!idx) {
    tfw__error(TFW_ENOMEM, "dataset_filter: out of memory for %lld indices", (long long)len);
    return NULL;
  }
  tfw_sample s;
  tfw_sample_init(&s);
  for (int64_t i = 0; i < len; i++) {
    bool keep = false;
    tfw_status st = ds->vt.get(ds->ctx, i, &s);
    if (!st) st = pred(ctx, &s, &keep);
    tfw_sample_clear(&s);
    if (st) {
      tfw__free(idx);
      return NULL;
    }
    if (keep) idx[kept++] = i;
  }
  return subset_take(ds, kept, idx);
}
