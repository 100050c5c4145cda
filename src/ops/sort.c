/* sort, argsort and topk along one dimension.
 *
 * Every element becomes an unsigned key whose unsigned order is the wanted order:
 *   floats: sign-magnitude bits flipped into two's-complement-like order, -0.0 folded onto
 *           +0.0 (they compare equal, so stability keeps their input order, as PyTorch does),
 *           every NaN mapped to the largest key (NaN sorts as the largest value, like PyTorch);
 *   signed ints: sign bit flipped; unsigned / bool: as is;
 *   descending (or topk largest): the key complemented.
 * 32-bit keys for f32 f16 bf16 i32 i8 u8 bool, 64-bit keys for f64 i64. Values are then
 * moved as raw bytes by the resulting permutation, so every dtype shares one code path and
 * f16/bf16 need no conversion of the output.
 *
 * A row is sorted as (key, index) pairs by an LSD radix sort with 8-bit digits: O(n) per
 * pass, stable by construction (so equal keys keep increasing index order in both
 * directions), passes whose digit is the same for the whole row are skipped (small integers
 * in i64 cost 1-2 passes, not 8). 32-bit keys are packed with their index into one 64-bit
 * word (key << 32 | index) so a pass moves one array, not two. Rows of <= 32 elements use
 * insertion sort, which beats the 256-bucket histograms there. Rows are independent and run
 * in parallel.
 *
 * topk with k <= n/8 keeps a max-heap of the k best (key, index) pairs while scanning the
 * row once (O(n log k)); a new element enters only if its key is strictly better than the
 * heap's worst, so among equal keys the lower index wins. Larger k uses the full stable sort
 * and takes its first k. sorted=false returns the same k elements in ascending index order. */
#include "core/iter.h"
#include "ops/index_internal.h"

/* ---- keys ---------------------------------------------------------------------------- */

static inline uint32_t key_f32(float f) {
  if (f != f) return 0xFFFFFFFFu;
  if (f == 0) f = 0.0f;
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

static inline uint64_t key_f64(double f) {
  if (f != f) return ~(uint64_t)0;
  if (f == 0) f = 0.0;
  uint64_t b;
  memcpy(&b, &f, sizeof b);
  return (b >> 63) ? ~b : (b | ((uint64_t)1 << 63));
}

static bool wide_key(tfw_dtype dt) { return dt == TFW_DTYPE_F64 || dt == TFW_DTYPE_I64; }

#define LOAD_KEYS(KT, EXPR)                              \
  for (int64_t i = 0; i < n; i++) {                       \
    const char *p = row + i * stride;                     \
    k[i] = (KT)(EXPR) ^ flip;                             \
  }

/* Keys of one strided row (stride in bytes). */
static void load_keys32(const char *row, int64_t stride, int64_t n, tfw_dtype dt, bool desc,
                        uint32_t *k) {
  const uint32_t flip = desc ? 0xFFFFFFFFu : 0;
  switch (dt) {
  case TFW_DTYPE_F32: LOAD_KEYS(uint32_t, key_f32(*(const float *)p)); break;
  case TFW_DTYPE_F16: LOAD_KEYS(uint32_t, key_f32(tfw_f16_to_f32(*(const uint16_t *)p))); break;
  case TFW_DTYPE_BF16: LOAD_KEYS(uint32_t, key_f32(tfw_bf16_to_f32(*(const uint16_t *)p))); break;
  case TFW_DTYPE_I32: LOAD_KEYS(uint32_t, (uint32_t) * (const int32_t *)p ^ 0x80000000u); break;
  case TFW_DTYPE_I8: LOAD_KEYS(uint32_t, (uint32_t)(int32_t) * (const int8_t *)p ^ 0x80000000u); break;
  case TFW_DTYPE_U8: LOAD_KEYS(uint32_t, *(const uint8_t *)p); break;
  default: LOAD_KEYS(uint32_t, *(const uint8_t *)p != 0); break; /* bool */
  }
}

static void load_keys64(const char *row, int64_t stride, int64_t n, tfw_dtype dt, bool desc,
                        uint64_t *k) {
  const uint64_t flip = desc ? ~(uint64_t)0 : 0;
  if (dt == TFW_DTYPE_F64) {
    LOAD_KEYS(uint64_t, key_f64(*(const double *)p));
  } else {
    LOAD_KEYS(uint64_t, (uint64_t) * (const int64_t *)p ^ ((uint64_t)1 << 63));
  }
}

/* ---- stable sorts of (key, index) pairs, ascending ------------------------------------- */

#define INSERTION_CUTOFF 32

/* Defines insertion_S, radix_S (LSD, 8-bit digits, NB bytes), sort_pairs_S and topk_heap_S
 * for key type KT. sort_pairs sorts (k, ix) using the scratch (k2, ix2) and returns in *rk,
 * *rix whichever buffers hold the result. */
#define DEF_SORT(S, KT, NB)                                                                    \
  static void insertion_##S(KT *k, int64_t *ix, int64_t n) {                                    \
    for (int64_t i = 1; i < n; i++) {                                                           \
      KT kv = k[i];                                                                             \
      int64_t iv = ix[i], j = i;                                                                \
      for (; j > 0 && k[j - 1] > kv; j--) {                                                     \
        k[j] = k[j - 1];                                                                        \
        ix[j] = ix[j - 1];                                                                      \
      }                                                                                         \
      k[j] = kv;                                                                                \
      ix[j] = iv;                                                                               \
    }                                                                                           \
  }                                                                                             \
  static void sort_pairs_##S(KT *k, int64_t *ix, KT *k2, int64_t *ix2, int64_t n, KT **rk,      \
                             int64_t **rix) {                                                   \
    if (n <= INSERTION_CUTOFF) {                                                                \
      insertion_##S(k, ix, n);                                                                  \
      *rk = k;                                                                                  \
      *rix = ix;                                                                                \
      return;                                                                                   \
    }                                                                                           \
    int64_t hist[NB][256];                                                                      \
    memset(hist, 0, sizeof hist);                                                               \
    for (int64_t i = 0; i < n; i++)                                                             \
      for (int b = 0; b < NB; b++) hist[b][(k[i] >> (8 * b)) & 255]++;                          \
    for (int b = 0; b < NB; b++) {                                                              \
      int64_t *h = hist[b];                                                                     \
      if (h[(k[0] >> (8 * b)) & 255] == n) continue; /* same digit everywhere */                \
      int64_t sum = 0;                                                                          \
      for (int d = 0; d < 256; d++) {                                                           \
        int64_t c = h[d];                                                                       \
        h[d] = sum;                                                                             \
        sum += c;                                                                               \
      }                                                                                         \
      for (int64_t i = 0; i < n; i++) {                                                         \
        int64_t at = h[(k[i] >> (8 * b)) & 255]++;                                              \
        k2[at] = k[i];                                                                          \
        ix2[at] = ix[i];                                                                        \
      }                                                                                         \
      KT *tk = k;                                                                               \
      k = k2;                                                                                   \
      k2 = tk;                                                                                  \
      int64_t *ti = ix;                                                                         \
      ix = ix2;                                                                                 \
      ix2 = ti;                                                                                 \
    }                                                                                           \
    *rk = k;                                                                                    \
    *rix = ix;                                                                                  \
  }                                                                                             \
  /* max-heap on (key, index): the root is the worst of the kept elements */                    \
  static void sift_##S(KT *hk, int64_t *hi, int64_t size, int64_t i) {                          \
    for (;;) {                                                                                  \
      int64_t l = 2 * i + 1, c = l;                                                             \
      if (l >= size) return;                                                                    \
      if (l + 1 < size && (hk[l + 1] > hk[l] || (hk[l + 1] == hk[l] && hi[l + 1] > hi[l])))     \
        c = l + 1;                                                                              \
      if (!(hk[c] > hk[i] || (hk[c] == hk[i] && hi[c] > hi[i]))) return;                        \
      KT tk = hk[c];                                                                            \
      hk[c] = hk[i];                                                                            \
      hk[i] = tk;                                                                               \
      int64_t ti = hi[c];                                                                       \
      hi[c] = hi[i];                                                                            \
      hi[i] = ti;                                                                               \
      i = c;                                                                                    \
    }                                                                                           \
  }                                                                                             \
  /* The kk smallest (key, index) pairs of keys[0..n), ascending, into (hk, hi). */             \
  static void topk_heap_##S(const KT *keys, int64_t n, int64_t kk, KT *hk, int64_t *hi) {       \
    for (int64_t i = 0; i < kk; i++) {                                                          \
      hk[i] = keys[i];                                                                          \
      hi[i] = i;                                                                                \
    }                                                                                           \
    for (int64_t i = kk / 2 - 1; i >= 0; i--) sift_##S(hk, hi, kk, i);                          \
    for (int64_t i = kk; i < n; i++)                                                            \
      if (keys[i] < hk[0]) {                                                                    \
        hk[0] = keys[i];                                                                        \
        hi[0] = i;                                                                              \
        sift_##S(hk, hi, kk, 0);                                                                \
      }                                                                                         \
    for (int64_t end = kk - 1; end > 0; end--) {                                                \
      KT tk = hk[0];                                                                            \
      hk[0] = hk[end];                                                                          \
      hk[end] = tk;                                                                             \
      int64_t ti = hi[0];                                                                       \
      hi[0] = hi[end];                                                                          \
      hi[end] = ti;                                                                             \
      sift_##S(hk, hi, end, 0);                                                                 \
    }                                                                                           \
  }

DEF_SORT(32, uint32_t, 4)
DEF_SORT(64, uint64_t, 8)

/* 32-bit keys of rows shorter than 2^32: sort (key << 32 | index) words, radix passes on
 * the key bytes only. One 8-byte array moves per pass instead of a 4-byte key array plus an
 * 8-byte index array; index order breaks ties, so the result is the stable order.
 * Returns whichever of a / tmp holds the result. */
static uint64_t *sort_packed(uint64_t *a, uint64_t *tmp, int64_t n) {
  if (n <= INSERTION_CUTOFF) {
    for (int64_t i = 1; i < n; i++) {
      uint64_t v = a[i];
      int64_t j = i;
      for (; j > 0 && a[j - 1] > v; j--) a[j] = a[j - 1];
      a[j] = v;
    }
    return a;
  }
  int64_t hist[4][256];
  memset(hist, 0, sizeof hist);
  for (int64_t i = 0; i < n; i++)
    for (int b = 0; b < 4; b++) hist[b][(a[i] >> (32 + 8 * b)) & 255]++;
  for (int b = 0; b < 4; b++) {
    int64_t *h = hist[b];
    int sh = 32 + 8 * b;
    if (h[(a[0] >> sh) & 255] == n) continue;
    int64_t sum = 0;
    for (int d = 0; d < 256; d++) {
      int64_t c = h[d];
      h[d] = sum;
      sum += c;
    }
    for (int64_t i = 0; i < n; i++) tmp[h[(a[i] >> sh) & 255]++] = a[i];
    uint64_t *t = a;
    a = tmp;
    tmp = t;
  }
  return a;
}

/* ---- the row kernel ------------------------------------------------------------------- */

typedef struct sort_ctx {
  tfw__walk w;        /* rows (every dim but dim): off[0] t bytes, off[1] output elements */
  const char *src;
  int64_t sst;        /* t bytes along dim */
  tfw_dtype dt;
  size_t es;
  int64_t n;          /* row length */
  int64_t k;          /* outputs per row (n for sort) */
  int64_t ost;        /* output elements along dim */
  bool topk, desc, sorted;
  char *vals;         /* NULL for argsort */
  int64_t *inds;
  _Atomic int failed;
} sort_ctx;

static inline void copy_elem(char *d, const char *s, size_t es) {
  switch (es) {
  case 1: *(uint8_t *)d = *(const uint8_t *)s; break;
  case 2: *(uint16_t *)d = *(const uint16_t *)s; break;
  case 4: *(uint32_t *)d = *(const uint32_t *)s; break;
  default: *(uint64_t *)d = *(const uint64_t *)s; break;
  }
}

/* Sorts a[0..k) (row indices) ascending; scratch holds 2k keys and k indices. */
static void sort_indices(int64_t *a, int64_t k, uint64_t *keys, int64_t *scratch) {
  for (int64_t i = 0; i < k; i++) keys[i] = (uint64_t)a[i];
  uint64_t *rk;
  int64_t *rix;
  sort_pairs_64(keys, a, keys + k, scratch, k, &rk, &rix);
  if (rix != a) memcpy(a, rix, (size_t)k * sizeof *a);
}

static void sort_rows(int64_t begin, int64_t end, void *ctx) {
  sort_ctx *s = ctx;
  const int64_t n = s->n, kk = s->k;
  bool wide = wide_key(s->dt);
  /* keys: 2n (row keys + radix scratch); idx: 2n; heap/selection: 2k keys, 2k indices */
  uint64_t *kbuf = tfw__malloc((size_t)(2 * n + 2 * kk) * sizeof(uint64_t));
  int64_t *ibuf = tfw__malloc((size_t)(2 * n + 2 * kk) * sizeof(int64_t));
  if (!kbuf || !ibuf) {
    atomic_store(&s->failed, 1);
    tfw__free(kbuf);
    tfw__free(ibuf);
    return;
  }
  uint64_t *hk = kbuf + 2 * n;
  int64_t *hi = ibuf + 2 * n;
  tfw__walk w = s->w;
  tfw__walk_seek(&w, begin);
  for (int64_t r = begin; r < end; r++, tfw__walk_next(&w)) {
    const char *row = s->src + w.off[0];
    int64_t *ix = ibuf;
    for (int64_t i = 0; i < n; i++) ix[i] = i;
    const int64_t *res; /* kk row indices in output order */
    bool heap = s->topk && kk * 8 <= n;
    if (wide) {
      uint64_t *k = kbuf, *rk;
      load_keys64(row, s->sst, n, s->dt, s->desc, k);
      if (heap) {
        topk_heap_64(k, n, kk, hk, hi);
        res = hi;
      } else {
        int64_t *rix;
        sort_pairs_64(k, ix, k + n, ibuf + n, n, &rk, &rix);
        res = rix;
      }
    } else {
      uint32_t *k = (uint32_t *)kbuf, *rk;
      load_keys32(row, s->sst, n, s->dt, s->desc, k);
      if (heap) {
        topk_heap_32(k, n, kk, (uint32_t *)hk, hi);
        res = hi;
      } else if (n < ((int64_t)1 << 32)) {
        /* keys were loaded into the upper half of kbuf; pack into the lower half */
        uint32_t *k2 = (uint32_t *)(kbuf + n);
        memcpy(k2, k, (size_t)n * sizeof *k2);
        for (int64_t i = 0; i < n; i++) kbuf[i] = ((uint64_t)k2[i] << 32) | (uint64_t)i;
        uint64_t *sorted = sort_packed(kbuf, kbuf + n, n);
        for (int64_t i = 0; i < n; i++) ix[i] = (int64_t)(sorted[i] & 0xFFFFFFFFu);
        res = ix;
      } else {
        int64_t *rix;
        sort_pairs_32(k, ix, k + n, ibuf + n, n, &rk, &rix);
        res = rix;
      }
    }
    if (s->topk && !s->sorted) {
      if (res != hi) memcpy(hi, res, (size_t)kk * sizeof *hi);
      sort_indices(hi, kk, hk, hi + kk);
      res = hi;
    }
    int64_t o = w.off[1];
    for (int64_t i = 0; i < kk; i++) {
      int64_t at = o + i * s->ost;
      if (s->inds) s->inds[at] = res[i];
      if (s->vals) copy_elem(s->vals + at * (int64_t)s->es, row + res[i] * s->sst, s->es);
    }
  }
  tfw__free(kbuf);
  tfw__free(ibuf);
}

/* ---- inference and kernels ------------------------------------------------------------- */

static tfw_status infer_common(const tfw__call *c, tfw__meta *out, int64_t *k) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0];
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  int64_t n = t->ndim > 0 ? t->shape[dim] : 1;
  *k = n;
  if (c->op->id == TFW__OP_topk) {
    *k = c->a.i[1];
    if (*k < 0 || *k > n || (t->ndim == 0 && *k != 1))
      return tfw__error(TFW_EINDEX, "topk: k = %lld is out of range for dimension %d of size %lld "
                        "(expected %s)", (long long)*k, dim, (long long)n,
                        t->ndim == 0 ? "k = 1 for a 0-d tensor" : "0 <= k <= size");
  }
  for (int j = 0; j < c->op->n_out; j++) {
    out[j].ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) out[j].shape[d] = d == dim ? *k : t->shape[d];
    out[j].dtype = TFW_DTYPE_I64;
  }
  if (c->op->id != TFW__OP_argsort) out[0].dtype = t->dtype;
  return TFW_OK;
}

tfw_status tfw__infer_sort(const tfw__call *c, tfw__meta *out) {
  int64_t k;
  return infer_common(c, out, &k);
}

tfw_status tfw__infer_topk(const tfw__call *c, tfw__meta *out) {
  int64_t k;
  return infer_common(c, out, &k);
}

static tfw_status run_sort(const tfw__call *c, tfw_tensor **out) {
  const char *op = c->op->name;
  const tfw_tensor *t = c->in[0];
  int dim = tfw__index_wrap_dim(op, c->a.i[0], t->ndim);
  if (dim < 0) return TFW_EINDEX;
  bool topk = c->op->id == TFW__OP_topk;
  int nd = t->ndim > 0 ? t->ndim : 1;
  int64_t shape[TFW_MAX_DIMS], ost[TFW_MAX_DIMS];
  for (int d = 0; d < nd; d++) shape[d] = t->ndim > 0 ? t->shape[d] : 1;
  sort_ctx s = {.src = tfw__data(t), .dt = t->dtype, .es = tfw_dtype_size(t->dtype),
                .n = shape[dim], .topk = topk, .desc = c->a.b[0], .sorted = !topk || c->a.b[1]};
  s.sst = (t->ndim > 0 ? t->strides[dim] : 0) * (int64_t)s.es;
  s.k = topk ? c->a.i[1] : s.n;
  if (c->op->id == TFW__OP_argsort) {
    s.inds = (int64_t *)tfw__data(out[0]);
  } else {
    s.vals = tfw__data(out[0]);
    s.inds = (int64_t *)tfw__data(out[1]);
  }
  shape[dim] = s.k;
  tfw__contiguous_strides(nd, shape, ost);
  s.ost = ost[dim];
  int64_t rows = 1;
  s.w.n = 0;
  for (int d = 0; d < nd; d++) {
    if (d == dim) continue;
    s.w.size[s.w.n] = shape[d];
    s.w.st[0][s.w.n] = t->strides[d] * (int64_t)s.es;
    s.w.st[1][s.w.n] = ost[d];
    s.w.n++;
    rows *= shape[d];
  }
  if (rows == 0 || s.k == 0) return TFW_OK;
  atomic_init(&s.failed, 0);
  /* rows are independent; ~4k elements per chunk keeps small problems serial */
  int64_t grain = 4096 / s.n;
  tfw__parallel_for(rows, grain > 0 ? grain : 1, sort_rows, &s);
  if (atomic_load(&s.failed)) return tfw__error(TFW_ENOMEM, "%s: out of memory for sort buffers", op);
  return TFW_OK;
}

tfw_status tfw__kernel_sort(const tfw__call *c, tfw_tensor **out) { return run_sort(c, out); }
tfw_status tfw__kernel_topk(const tfw__call *c, tfw_tensor **out) { return run_sort(c, out); }

/* ---- public wrappers -------------------------------------------------------------------- */

static tfw_status run_pair(tfw__call *c, tfw_tensor **values, tfw_tensor **indices) {
  if (values) *values = NULL;
  if (indices) *indices = NULL;
  tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
  tfw_status st = tfw__op_run_multi(c, out);
  if (st) return st;
  if (values) *values = out[0];
  else tfw_release(out[0]);
  if (indices) *indices = out[1];
  else tfw_release(out[1]);
  return TFW_OK;
}

tfw_status tfw_sort(const tfw_tensor *t, int dim, bool descending, tfw_tensor **values,
                    tfw_tensor **indices) {
  if (values) *values = NULL;
  if (indices) *indices = NULL;
  if (tfw__check_tensor("sort", "t", t)) return TFW_EVALUE;
  tfw__call c;
  tfw__call_init(&c, TFW__OP_sort, 1, &t);
  c.a.i[0] = dim;
  c.a.b[0] = descending;
  return run_pair(&c, values, indices);
}

tfw_tensor *tfw_argsort(const tfw_tensor *t, int dim, bool descending) {
  if (tfw__check_tensor("argsort", "t", t)) return NULL;
  tfw__call c;
  tfw__call_init(&c, TFW__OP_argsort, 1, &t);
  c.a.i[0] = dim;
  c.a.b[0] = descending;
  return tfw__op_run(&c);
}

tfw_status tfw_topk(const tfw_tensor *t, int64_t k, int dim, bool largest, bool sorted,
                    tfw_tensor **values, tfw_tensor **indices) {
  if (values) *values = NULL;
  if (indices) *indices = NULL;
  if (tfw__check_tensor("topk", "t", t)) return TFW_EVALUE;
  tfw__call c;
  tfw__call_init(&c, TFW__OP_topk, 1, &t);
  c.a.i[0] = dim;
  c.a.i[1] = k;
  c.a.b[0] = largest;
  c.a.b[1] = sorted;
  return run_pair(&c, values, indices);
}
