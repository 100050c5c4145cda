/* The batch loader: epoch orders, sharding, collate, worker threads with bounded prefetch,
 * resumable position.
 *
 * Determinism: for a map-style dataset, batch b of epoch e is a pure function of (dataset,
 * options, e, b): the order comes from tfw__random_permutation seeded with mix(seed, e),
 * the shard is every W-th position from rank r, and the batch is positions [bB, bB + B) of
 * it. Workers only change who computes a batch, never what it is, and batches come out in
 * order (slot b % capacity holds batch b), so any worker count gives the same batches,
 * and (e, b) is all a checkpoint needs to resume.
 *
 * Workers: threads claim batch numbers in order, at most `capacity` ahead of the one the
 * consumer waits for (bounded prefetch: memory is at most capacity batches). They run for
 * one epoch and are joined at its end, on set_state and on free. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* ---- collate -------------------------------------------------------------------------------- */
tfw_status tfw_collate_stack(const tfw_sample *samples, int64_t n, bool pad, double pad_value,
                             tfw_sample *out) {
  const char *op = "collate_stack";
  if (!samples || !out || n < 1)
    return tfw__error(TFW_EVALUE, "%s: need n >= 1 samples and an output (n = %lld)", op,
                      (long long)n);
  tfw_sample_clear(out);
  const tfw_sample *s0 = &samples[0];
  for (int64_t i = 1; i < n; i++) {
    bool same = samples[i].n == s0->n;
    for (int k = 0; same && k < s0->n; k++) same = strcmp(samples[i].names[k], s0->names[k]) == 0;
    if (!same)
      return tfw__error(TFW_EVALUE, "%s: sample %lld has other fields than sample 0", op,
                        (long long)i);
  }
  tfw_status st = TFW_OK;
  char masks[TFW_SAMPLE_MAX_FIELDS][TFW_SAMPLE_NAME_MAX];
  tfw_tensor *mask_t[TFW_SAMPLE_MAX_FIELDS];
  int n_masks = 0;
  for (int k = 0; k < s0->n && !st; k++) {
    const tfw_tensor *f0 = s0->tensors[k];
    bool same_shape = true;
    int64_t longest = f0->ndim ? f0->shape[0] : 0;
    for (int64_t i = 1; i < n; i++) {
      const tfw_tensor *f = samples[i].tensors[k];
      if (f->dtype != f0->dtype) {
        st = tfw__error(TFW_EDTYPE, "%s: field '%s': sample %lld is %s, sample 0 is %s", op,
                        s0->names[k], (long long)i, tfw_dtype_name(f->dtype),
                        tfw_dtype_name(f0->dtype));
        break;
      }
      bool rest_same = f->ndim == f0->ndim;
      for (int d = 1; rest_same && d < f->ndim; d++) rest_same = f->shape[d] == f0->shape[d];
      if (rest_same && f->ndim && f->shape[0] != f0->shape[0]) same_shape = false;
      if (!rest_same || (!same_shape && !pad)) {
        char a[TFW__SHAPE_BUF], b[TFW__SHAPE_BUF];
        tfw__shape_str(a, sizeof a, f->ndim, f->shape);
        tfw__shape_str(b, sizeof b, f0->ndim, f0->shape);
        st = tfw__error(TFW_ESHAPE, "%s: field '%s': sample %lld is %s, sample 0 is %s%s", op,
                        s0->names[k], (long long)i, a, b,
                        rest_same ? " (set pad to pad variable lengths)" : "");
        break;
      }
      if (f->ndim && f->shape[0] > longest) longest = f->shape[0];
    }
    if (st) break;
    int64_t shape[TFW_MAX_DIMS + 1];
    if (f0->ndim + 1 > TFW_MAX_DIMS) {
      st = tfw__error(TFW_ESHAPE, "%s: field '%s' has rank %d; stacking would exceed %d", op,
                      s0->names[k], f0->ndim, TFW_MAX_DIMS);
      break;
    }
    shape[0] = n;
    for (int d = 0; d < f0->ndim; d++) shape[d + 1] = f0->shape[d];
    if (!same_shape) shape[1] = longest;
    tfw_tensor *b = tfw__tensor_new(op, f0->dtype, f0->ndim + 1, shape);
    if (!b) {
      st = tfw_last_status();
      break;
    }
    size_t es = tfw_dtype_size(f0->dtype), inner = es; /* bytes per dim-0 row of a sample */
    for (int d = 1; d < f0->ndim; d++) inner *= (size_t)f0->shape[d];
    size_t stride = (size_t)(f0->ndim ? longest : 1) * inner;
    char *dp = tfw__data(b);
    if (!same_shape && tfw_fill_(b, pad_value)) {
      tfw_release(b);
      st = tfw_last_status();
      break;
    }
    for (int64_t i = 0; i < n && !st; i++) {
      tfw_tensor *c = tfw__as_contiguous(samples[i].tensors[k], f0->dtype);
      if (!c) {
        st = tfw_last_status();
        break;
      }
      size_t bytes = (size_t)tfw_tensor_numel(c) * es;
      if (bytes) memcpy(dp + (size_t)i * stride, tfw__data(c), bytes);
      tfw_release(c);
    }
    if (!st) st = tfw_sample_add(out, s0->names[k], b);
    tfw_release(b);
    if (st || same_shape) continue;
    /* the mask: true where a sample has data */
    size_t nl = strlen(s0->names[k]);
    if (nl + 5 >= TFW_SAMPLE_NAME_MAX) {
      st = tfw__error(TFW_EVALUE, "%s: field name '%s' is too long for its '_mask' field", op,
                      s0->names[k]);
      break;
    }
    memcpy(masks[n_masks], s0->names[k], nl);
    memcpy(masks[n_masks] + nl, "_mask", 6);
    tfw_tensor *m = tfw_zeros(TFW_DTYPE_BOOL, 2, (int64_t[]){n, longest});
    if (!m) {
      st = tfw_last_status();
      break;
    }
    bool *mp = tfw_tensor_data(m);
    for (int64_t i = 0; i < n; i++)
      for (int64_t t = 0; t < samples[i].tensors[k]->shape[0]; t++) mp[i * longest + t] = true;
    mask_t[n_masks++] = m;
  }
  for (int j = 0; j < n_masks; j++) {
    if (!st) st = tfw_sample_add(out, masks[j], mask_t[j]);
    tfw_release(mask_t[j]);
  }
  if (st) tfw_sample_clear(out);
  return st;
}

/* ---- the loader ----------------------------------------------------------------------------- */
typedef struct slot {
  bool ready;
  tfw_status st;
  char msg[512];
  tfw_sample batch;
} slot;

struct tfw_loader {
  tfw_dataset *ds;
  tfw_loader_options o;
  bool iterable;
  int64_t epoch, index; /* position of the next batch */
  /* map-style plan for `plan_epoch` */
  int64_t plan_epoch;
  int64_t *idx, m, nbatches;
  /* workers */
  pthread_mutex_t mu;
  pthread_cond_t cv_ready, cv_space;
  pthread_t *threads;
  int nthreads;
  bool running, stop;
  slot *slots;
  int64_t cap, next_claim, next_out;
  /* iterable stream */
  void *it;
  int64_t it_epoch, it_pos, stream_k;
  bool it_done;
};

tfw_loader_options tfw_loader_options_default(void) {
  tfw_loader_options o;
  memset(&o, 0, sizeof o);
  o.batch_size = 1;
  o.world_size = 1;
  return o;
}

static int64_t shard_len(const tfw_loader *l, int64_t n) {
  int64_t w = l->o.world_size, r = l->o.rank;
  if (l->o.even_shards) return (n + w - 1) / w;
  return r < n ? (n - r + w - 1) / w : 0;
}

static int64_t batches_for(const tfw_loader *l, int64_t m) {
  int64_t b = l->o.batch_size;
  return l->o.drop_last ? m / b : (m + b - 1) / b;
}

/* Builds this rank's index list for l->epoch. */
static tfw_status plan(tfw_loader *l) {
  if (l->plan_epoch == l->epoch && l->idx) return TFW_OK;
  int64_t n = tfw_dataset_len(l->ds), m = shard_len(l, n);
  int64_t *perm = NULL, *idx = tfw__malloc(((size_t)m + 1) * sizeof *idx);
  if (l->o.shuffle) perm = tfw__malloc(((size_t)n + 1) * sizeof *perm);
  if (!idx || (l->o.shuffle && !perm)) {
    tfw__free(idx), tfw__free(perm);
    return tfw__error(TFW_ENOMEM, "loader: out of memory for an order of %lld samples",
                      (long long)n);
  }
  if (perm) { /* epoch-mixed seed: one splitmix step of seed + epoch * an odd constant */
    uint64_t st = l->o.seed ^ ((uint64_t)l->epoch * 0xD1B54A32D192ED03ull + 0x8CB92BA72F3D8DD7ull);
    tfw__random_permutation(perm, n, &st);
  }
  for (int64_t j = 0; j < m; j++) {
    int64_t pos = l->o.rank + j * l->o.world_size;
    if (pos >= n) pos %= n; /* even_shards: wrap around, as DistributedSampler pads */
    idx[j] = perm ? perm[pos] : pos;
  }
  tfw__free(perm);
  tfw__free(l->idx);
  l->idx = idx, l->m = m, l->nbatches = batches_for(l, m), l->plan_epoch = l->epoch;
  return TFW_OK;
}

/* Batch b of the current plan into out. Thread-safe (reads only the plan). */
static tfw_status make_batch(tfw_loader *l, int64_t b, tfw_sample *out) {
  tfw_sample_init(out);
  int64_t begin = b * l->o.batch_size, n = l->m - begin;
  if (n > l->o.batch_size) n = l->o.batch_size;
  const int64_t *ix = l->idx + begin;
  const tfw_dataset_vtable *vt = tfw__dataset_vt(l->ds);
  void *ctx = tfw__dataset_ctx(l->ds);
  tfw_status st;
  tfw__batch_ctx_set(l->plan_epoch, ix, n); /* transforms seed from (epoch, index) */
  if (!l->o.collate && vt->get_batch) {
    st = vt->get_batch(ctx, ix, n, out);
  } else {
    tfw_sample *ss = tfw__calloc((size_t)n, sizeof *ss);
    if (!ss) {
      tfw__batch_ctx_set(0, NULL, 0);
      return tfw__error(TFW_ENOMEM, "loader: out of memory for %lld samples", (long long)n);
    }
    st = TFW_OK;
    for (int64_t i = 0; i < n && !st; i++) st = tfw_dataset_get(l->ds, ix[i], &ss[i]);
    if (!st)
      st = l->o.collate ? l->o.collate(l->o.collate_ctx, ss, n, out)
                        : tfw_collate_stack(ss, n, l->o.pad, l->o.pad_value, out);
    for (int64_t i = 0; i < n; i++) tfw_sample_clear(&ss[i]);
    tfw__free(ss);
  }
  if (!st && l->o.batch_map) st = l->o.batch_map(l->o.batch_map_ctx, out);
  tfw__batch_ctx_set(0, NULL, 0);
  if (st) {
    tfw_sample_clear(out);
    if (tfw_last_status() == TFW_OK) tfw__error(st, "loader: batch %lld failed", (long long)b);
  }
  return st;
}

static void *worker_main(void *arg) {
  tfw_loader *l = arg;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && l->next_claim < l->nbatches && l->next_claim >= l->next_out + l->cap)
      pthread_cond_wait(&l->cv_space, &l->mu);
    if (l->stop || l->next_claim >= l->nbatches) break;
    int64_t b = l->next_claim++;
    pthread_mutex_unlock(&l->mu);
    tfw_sample batch;
    tfw_status st = make_batch(l, b, &batch);
    pthread_mutex_lock(&l->mu);
    slot *s = &l->slots[b % l->cap];
    s->batch = batch;
    s->st = st;
    if (st) tfw_last_error_copy(s->msg, sizeof s->msg);
    s->ready = true;
    pthread_cond_broadcast(&l->cv_ready);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void stop_workers(tfw_loader *l) {
  if (!l->running) return;
  pthread_mutex_lock(&l->mu);
  l->stop = true;
  pthread_cond_broadcast(&l->cv_space);
  pthread_mutex_unlock(&l->mu);
  for (int i = 0; i < l->nthreads; i++) pthread_join(l->threads[i], NULL);
  for (int64_t i = 0; i < l->cap; i++) {
    tfw_sample_clear(&l->slots[i].batch);
    l->slots[i].ready = false;
  }
  l->nthreads = 0;
  l->running = false;
  l->stop = false;
}

static tfw_status start_workers(tfw_loader *l) {
  l->next_claim = l->next_out = l->index;
  l->stop = false;
  l->running = true;
  for (int i = 0; i < l->o.num_workers; i++) {
    if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0) {
      stop_workers(l);
      return tfw__error(TFW_ENOMEM, "loader: cannot start worker thread %d", i);
    }
    l->nthreads = i + 1;
  }
  return TFW_OK;
}

tfw_loader *tfw_loader_new(tfw_dataset *ds, const tfw_loader_options *opt) {
  const char *op = "loader_new";
  if (!ds || !opt) {
    tfw__error(TFW_EVALUE, "%s: dataset or options is NULL", op);
    return NULL;
  }
  tfw_loader_options o = *opt;
  if (o.world_size == 0) o.world_size = 1;
  if (o.prefetch == 0) o.prefetch = 2;
  if (o.batch_size < 1) {
    tfw__error(TFW_EVALUE, "%s: batch_size is %lld, must be >= 1", op, (long long)o.batch_size);
    return NULL;
  }
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    tfw__error(TFW_EVALUE, "%s: rank %d is outside [0, world_size %d)", op, o.rank, o.world_size);
    return NULL;
  }
  if (o.num_workers < 0 || o.num_workers > 256 || o.prefetch < 0 || o.prefetch > 1024) {
    tfw__error(TFW_EVALUE, "%s: num_workers %d (0..256) or prefetch %d (0..1024) out of range",
               op, o.num_workers, o.prefetch);
    return NULL;
  }
  bool iterable = tfw_dataset_is_iterable(ds);
  if (iterable && o.shuffle) {
    tfw__error(TFW_EVALUE, "%s: shuffle needs a map-style dataset (a stream has no random "
               "access); shuffle the stream itself", op);
    return NULL;
  }
  if (!iterable && o.even_shards && tfw_dataset_len(ds) == 0 && o.world_size > 1) {
    tfw__error(TFW_EVALUE, "%s: even_shards on an empty dataset", op);
    return NULL;
  }
  tfw_loader *l = tfw__calloc(1, sizeof *l);
  if (!l) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    return NULL;
  }
  l->o = o;
  l->iterable = iterable;
  l->plan_epoch = -1;
  l->it_epoch = -1;
  if (!iterable && o.num_workers > 0) {
    l->cap = (int64_t)o.num_workers * o.prefetch;
    l->threads = tfw__calloc((size_t)o.num_workers, sizeof *l->threads);
    l->slots = tfw__calloc((size_t)l->cap, sizeof *l->slots);
    if (!l->threads || !l->slots) {
      tfw__free(l->threads), tfw__free(l->slots), tfw__free(l);
      tfw__error(TFW_ENOMEM, "%s: out of memory", op);
      return NULL;
    }
  }
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_ready, NULL);
  pthread_cond_init(&l->cv_space, NULL);
  l->ds = tfw_dataset_retain(ds);
  return l;
}

static void close_stream(tfw_loader *l) {
  if (l->it) tfw__dataset_vt(l->ds)->iter_close(tfw__dataset_ctx(l->ds), l->it);
  l->it = NULL;
  l->it_epoch = -1;
}

void tfw_loader_free(tfw_loader *l) {
  if (!l) return;
  stop_workers(l);
  close_stream(l);
  pthread_mutex_destroy(&l->mu);
  pthread_cond_destroy(&l->cv_ready);
  pthread_cond_destroy(&l->cv_space);
  tfw__free(l->threads);
  tfw__free(l->slots);
  tfw__free(l->idx);
  tfw_dataset_release(l->ds);
  tfw__free(l);
}

int64_t tfw_loader_len(const tfw_loader *l) {
  if (!l || l->iterable) return -1;
  return batches_for(l, shard_len(l, tfw_dataset_len(l->ds)));
}

void tfw_loader_state(const tfw_loader *l, int64_t *epoch, int64_t *index) {
  if (epoch) *epoch = l ? l->epoch : 0;
  if (index) *index = l ? l->index : 0;
}

tfw_status tfw_loader_set_state(tfw_loader *l, int64_t epoch, int64_t index) {
  if (!l) return tfw__error(TFW_EVALUE, "loader_set_state: loader is NULL");
  int64_t len = tfw_loader_len(l);
  if (epoch < 0 || index < 0 || (len >= 0 && index > len))
    return tfw__error(TFW_EVALUE, "loader_set_state: position (epoch %lld, batch %lld) is "
                      "outside epoch >= 0, 0 <= batch <= %lld", (long long)epoch,
                      (long long)index, (long long)len);
  stop_workers(l);
  close_stream(l);
  l->epoch = epoch, l->index = index;
  return TFW_OK;
}

static void end_epoch(tfw_loader *l) {
  stop_workers(l);
  close_stream(l);
  l->epoch++;
  l->index = 0;
}

/* The next sample of this rank from the stream; out->n == 0 at its end. */
static tfw_status stream_next(tfw_loader *l, tfw_sample *out) {
  const tfw_dataset_vtable *vt = tfw__dataset_vt(l->ds);
  void *ctx = tfw__dataset_ctx(l->ds);
  while (!l->it_done) {
    tfw_status st = vt->iter_next(ctx, l->it, out);
    if (st) {
      tfw_sample_clear(out);
      return st;
    }
    if (out->n == 0) {
      l->it_done = true;
      break;
    }
    if (l->stream_k++ % l->o.world_size == l->o.rank) return TFW_OK;
    tfw_sample_clear(out);
  }
  return TFW_OK;
}

static tfw_status next_iterable(tfw_loader *l, tfw_sample *out) {
  const tfw_dataset_vtable *vt = tfw__dataset_vt(l->ds);
  void *ctx = tfw__dataset_ctx(l->ds);
  int64_t B = l->o.batch_size;
  tfw_status st = TFW_OK;
  if (!l->it || l->it_epoch != l->epoch || l->it_pos != l->index) {
    close_stream(l);
    l->it = vt->iter_open(ctx, l->epoch);
    if (!l->it) return tfw_last_status() ? tfw_last_status() : TFW_EINTERNAL;
    l->it_epoch = l->epoch, l->it_pos = 0, l->stream_k = 0, l->it_done = false;
    tfw_sample skip;
    tfw_sample_init(&skip);
    for (int64_t k = 0; k < l->index * B && !st; k++) { /* resume: replay the stream */
      st = stream_next(l, &skip);
      tfw_sample_clear(&skip);
    }
    if (st) {
      close_stream(l);
      return st;
    }
    l->it_pos = l->index;
  }
  tfw_sample *ss = tfw__calloc((size_t)B, sizeof *ss);
  if (!ss) return tfw__error(TFW_ENOMEM, "loader: out of memory for %lld samples", (long long)B);
  tfw__batch_ctx_set(l->epoch, NULL, 0);
  int64_t got = 0;
  while (got < B && !st) {
    st = stream_next(l, &ss[got]);
    if (!st && ss[got].n == 0) break;
    if (!st) got++;
  }
  if (!st && (got == 0 || (l->o.drop_last && got < B))) {
    end_epoch(l);
  } else if (!st) {
    st = l->o.collate ? l->o.collate(l->o.collate_ctx, ss, got, out)
                      : tfw_collate_stack(ss, got, l->o.pad, l->o.pad_value, out);
    if (!st && l->o.batch_map) st = l->o.batch_map(l->o.batch_map_ctx, out);
    if (!st) l->index++, l->it_pos++;
  }
  if (st) {
    tfw_sample_clear(out);
    close_stream(l); /* the position stays: a retry reopens and replays */
  }
  for (int64_t i = 0; i < got; i++) tfw_sample_clear(&ss[i]);
  tfw__free(ss);
  tfw__batch_ctx_set(0, NULL, 0);
  return st;
}

tfw_status tfw_loader_next(tfw_loader *l, tfw_sample *out) {
  if (!l || !out) return tfw__error(TFW_EVALUE, "loader_next: loader or output is NULL");
  tfw_sample_clear(out);
  if (l->iterable) return next_iterable(l, out);
  if (!l->running || l->plan_epoch != l->epoch) {
    tfw_status st = plan(l);
    if (st) return st;
  }
  if (l->index >= l->nbatches) {
    end_epoch(l);
    return TFW_OK;
  }
  if (l->o.num_workers == 0) {
    tfw_status st = make_batch(l, l->index, out);
    if (!st) l->index++;
    return st;
  }
  if (!l->running) {
    tfw_status st = start_workers(l);
    if (st) return st;
  }
  pthread_mutex_lock(&l->mu);
  slot *s = &l->slots[l->index % l->cap];
  while (!s->ready) pthread_cond_wait(&l->cv_ready, &l->mu);
  tfw_status st = s->st;
  *out = s->batch;
  tfw_sample_init(&s->batch);
  s->ready = false;
  if (!st) {
    l->index++;
    l->next_out++;
    pthread_cond_broadcast(&l->cv_space);
  }
  pthread_mutex_unlock(&l->mu);
  if (st) {
    char msg[512];
    memcpy(msg, s->msg, sizeof msg);
    stop_workers(l); /* the position stays at the failing batch; a retry restarts there */
    return tfw__error(st, "%s", msg);
  }
  return TFW_OK;
}
