/* Datasets and the loader. Samples carry their own index (field "id" = i, "x" row = f(i)),
 * so every batch can be checked against what it must hold, with naive loops here as the
 * reference: permutations, sharding coverage, drop_last counts, worker-count independence,
 * resume, padding, and the statistics of the shuffle. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h" /* tfw__error, to fail like a library function */
#include "harness.h"

/* A tensor dataset of n rows: id [n] i64 = i, x [n, 3] f32 = (i, 2i, -i). */
static tfw_dataset *make_ds(int64_t n) {
  tfw_tensor *id = tfw_arange(0, (double)n, 1, TFW_DTYPE_I64);
  tfw_tensor *x = tfw_empty(TFW_DTYPE_F32, 2, (int64_t[]){n, 3});
  float *xp = tfw_tensor_data(x);
  for (int64_t i = 0; i < n; i++) xp[3 * i] = (float)i, xp[3 * i + 1] = 2.0f * i, xp[3 * i + 2] = -(float)i;
  tfw_tensor *ts[2] = {id, x};
  const char *names[2] = {"id", "x"};
  tfw_dataset *ds = tfw_dataset_from_tensors(2, names, ts);
  cr_assert(ds, "%s", tfw_last_error());
  tfw_release(id);
  tfw_release(x);
  return ds;
}

/* Checks a batch's consistency (x rows match ids) and appends its ids to ids[*n]. */
static void take_batch(const tfw_sample *b, int64_t *ids, int64_t *n) {
  tfw_tensor *id = tfw_sample_get(b, "id"), *x = tfw_sample_get(b, "x");
  cr_assert(id && x, "batch lacks fields");
  int64_t bs = tfw_tensor_shape(id)[0];
  cr_assert_eq(tfw_tensor_ndim(x), 2);
  cr_assert_eq(tfw_tensor_shape(x)[0], bs);
  const int64_t *ip = tfw_tensor_data(id);
  const float *xp = tfw_tensor_data(x);
  for (int64_t i = 0; i < bs; i++) {
    cr_assert(xp[3 * i] == (float)ip[i] && xp[3 * i + 1] == 2.0f * ip[i] && xp[3 * i + 2] == -(float)ip[i],
              "row %lld does not belong to id %lld", (long long)i, (long long)ip[i]);
    ids[(*n)++] = ip[i];
  }
}

/* Runs one epoch; returns the ids in order and the batch sizes. */
static int64_t run_epoch(tfw_loader *l, int64_t *ids, int64_t *sizes, int64_t *nbatches) {
  int64_t n = 0, nb = 0;
  tfw_sample b;
  tfw_sample_init(&b);
  for (;;) {
    cr_assert_eq(tfw_loader_next(l, &b), TFW_OK, "%s", tfw_last_error());
    if (b.n == 0) break;
    int64_t before = n;
    take_batch(&b, ids, &n);
    if (sizes) sizes[nb] = n - before;
    nb++;
    tfw_sample_clear(&b);
  }
  if (nbatches) *nbatches = nb;
  return n;
}

static bool is_permutation(const int64_t *ids, int64_t n) {
  char *seen = calloc((size_t)n + 1, 1);
  bool ok = true;
  for (int64_t i = 0; i < n && ok; i++) {
    ok = ids[i] >= 0 && ids[i] < n && !seen[ids[i]];
    if (ok) seen[ids[i]] = 1;
  }
  free(seen);
  return ok;
}

Test(data_loader, sequential_order_and_drop_last) {
  tfw_dataset *ds = make_ds(10);
  for (int dl = 0; dl < 2; dl++)
    for (int w = 0; w < 3; w++) {
      tfw_loader_options o = tfw_loader_options_default();
      o.batch_size = 4, o.drop_last = dl, o.num_workers = w;
      tfw_loader *l = tfw_loader_new(ds, &o);
      cr_assert(l);
      cr_assert_eq(tfw_loader_len(l), dl ? 2 : 3);
      int64_t ids[16], sizes[8], nb;
      int64_t n = run_epoch(l, ids, sizes, &nb);
      cr_assert_eq(n, dl ? 8 : 10);
      cr_assert_eq(nb, dl ? 2 : 3);
      for (int64_t i = 0; i < n; i++) cr_assert_eq(ids[i], i);
      cr_assert_eq(sizes[0], 4);
      if (!dl) cr_assert_eq(sizes[2], 2);
      int64_t e, ix;
      tfw_loader_state(l, &e, &ix);
      cr_assert(e == 1 && ix == 0, "after one epoch: (%lld, %lld)", (long long)e, (long long)ix);
      tfw_loader_free(l);
    }
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

Test(data_loader, shuffle_seeds_epochs_and_workers) {
  const int64_t N = 103;
  tfw_dataset *ds = make_ds(N);
  int64_t ref[3][2][N]; /* [seed][epoch] with 0 workers */
  for (int seed = 0; seed < 3; seed++)
    for (int w = 0; w < 4; w++) {
      tfw_loader_options o = tfw_loader_options_default();
      o.batch_size = 8, o.shuffle = true, o.seed = 1000 + (uint64_t)seed, o.num_workers = w;
      o.prefetch = w == 3 ? 1 : 0;
      tfw_loader *l = tfw_loader_new(ds, &o);
      for (int e = 0; e < 2; e++) {
        int64_t ids[N];
        cr_assert_eq(run_epoch(l, ids, NULL, NULL), N);
        cr_assert(is_permutation(ids, N), "seed %d epoch %d: not a permutation", seed, e);
        if (w == 0) memcpy(ref[seed][e], ids, sizeof ids);
        else cr_assert(memcmp(ref[seed][e], ids, sizeof ids) == 0,
                       "seed %d epoch %d: %d workers give another order", seed, e, w);
      }
      tfw_loader_free(l);
    }
  /* epochs differ, seeds differ, and a shuffle is not the identity */
  for (int s = 0; s < 3; s++) {
    cr_assert(memcmp(ref[s][0], ref[s][1], sizeof ref[s][0]) != 0, "epochs 0 and 1 equal");
    int fixed = 0;
    for (int64_t i = 0; i < N; i++) fixed += ref[s][0][i] == i;
    cr_assert(fixed < 10, "%d fixed points", fixed);
  }
  cr_assert(memcmp(ref[0][0], ref[1][0], sizeof ref[0][0]) != 0, "seeds 1000 and 1001 equal");
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

/* Over 4000 epochs of N = 5, where each value lands in each position: a chi-square test
 * against uniform (20 dof; 60 is far beyond the 0.999 quantile of 45.3). */
Test(data_loader, shuffle_is_uniform) {
  tfw_dataset *ds = make_ds(5);
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 5, o.shuffle = true, o.seed = 7;
  tfw_loader *l = tfw_loader_new(ds, &o);
  int64_t count[5][5] = {{0}};
  const int E = 4000;
  for (int e = 0; e < E; e++) {
    int64_t ids[5];
    run_epoch(l, ids, NULL, NULL);
    for (int p = 0; p < 5; p++) count[ids[p]][p]++;
  }
  double chi = 0, expect = E / 5.0;
  for (int v = 0; v < 5; v++)
    for (int p = 0; p < 5; p++) chi += (count[v][p] - expect) * (count[v][p] - expect) / expect;
  cr_assert(chi < 60, "chi-square %.1f: positions not uniform", chi);
  tfw_loader_free(l);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

Test(data_loader, sharding_covers_every_index_once) {
  for (int64_t N = 0; N <= 23; N += 23) {
    for (int64_t n = (N ? 23 : 0); n <= N; n++) {
      tfw_dataset *ds = make_ds(n ? n : 1);
      int64_t len = tfw_dataset_len(ds);
      for (int W = 1; W <= 4; W++) {
        for (int even = 0; even < 2; even++) {
          int64_t seen[32] = {0}, total = 0, counts[4];
          for (int r = 0; r < W; r++) {
            tfw_loader_options o = tfw_loader_options_default();
            o.batch_size = 3, o.shuffle = true, o.seed = 5, o.rank = r, o.world_size = W;
            o.even_shards = even, o.num_workers = r % 2;
            tfw_loader *l = tfw_loader_new(ds, &o);
            cr_assert(l, "%s", tfw_last_error());
            int64_t ids[64];
            counts[r] = run_epoch(l, ids, NULL, NULL);
            for (int64_t i = 0; i < counts[r]; i++) seen[ids[i]]++;
            total += counts[r];
            tfw_loader_free(l);
          }
          for (int64_t i = 0; i < len; i++)
            cr_assert(even ? seen[i] >= 1 : seen[i] == 1, "N %lld W %d even %d: index %lld seen %lld times",
                      (long long)len, W, even, (long long)i, (long long)seen[i]);
          if (even) {
            for (int r = 0; r < W; r++) cr_assert_eq(counts[r], (len + W - 1) / W);
          } else {
            cr_assert_eq(total, len);
          }
        }
      }
      tfw_dataset_release(ds);
    }
  }
  th_expect_no_leaks();
}

Test(data_loader, resume_mid_epoch_gives_identical_batches) {
  const int64_t N = 50;
  tfw_dataset *ds = make_ds(N);
  for (int w = 0; w < 3; w++) {
    tfw_loader_options o = tfw_loader_options_default();
    o.batch_size = 6, o.shuffle = true, o.seed = 42, o.num_workers = w;
    /* the uninterrupted run: 2 epochs */
    tfw_loader *a = tfw_loader_new(ds, &o);
    int64_t full[2 * N], n = 0;
    for (int e = 0; e < 2; e++) n += run_epoch(a, full + n, NULL, NULL);
    tfw_loader_free(a);
    /* interrupted after 4 batches of epoch 1 (a checkpoint), resumed in a new loader */
    tfw_loader *b = tfw_loader_new(ds, &o);
    int64_t got[2 * N], m = run_epoch(b, got, NULL, NULL);
    tfw_sample s;
    tfw_sample_init(&s);
    for (int k = 0; k < 4; k++) {
      cr_assert_eq(tfw_loader_next(b, &s), TFW_OK);
      take_batch(&s, got, &m);
      tfw_sample_clear(&s);
    }
    int64_t e, ix;
    tfw_loader_state(b, &e, &ix);
    cr_assert(e == 1 && ix == 4);
    tfw_loader_free(b);
    o.num_workers = 2 - w; /* resuming with another worker count changes nothing */
    tfw_loader *c = tfw_loader_new(ds, &o);
    cr_assert_eq(tfw_loader_set_state(c, e, ix), TFW_OK);
    m += run_epoch(c, got + m, NULL, NULL);
    cr_assert_eq(m, n);
    cr_assert(memcmp(full, got, sizeof full) == 0, "resumed run differs (%d workers)", w);
    /* set_state back into the past on a running loader */
    cr_assert_eq(tfw_loader_set_state(c, 0, 2), TFW_OK);
    cr_assert_eq(tfw_loader_next(c, &s), TFW_OK);
    int64_t one[6], k = 0;
    take_batch(&s, one, &k);
    cr_assert(memcmp(one, full + 12, sizeof one) == 0);
    tfw_sample_clear(&s);
    th_expect_error(tfw_loader_set_state(c, 0, 99), TFW_EVALUE, "batch 99", "index > len");
    th_expect_error(tfw_loader_set_state(c, -1, 0), TFW_EVALUE, "epoch -1", "negative epoch");
    tfw_loader_free(c);
  }
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

/* The generic path (get + collate_stack, through an identity map) gives what the gather
 * fast path gives. */
static tfw_status identity(void *ctx, tfw_sample *s) {
  (*(int *)ctx)++; /* not thread-safe, but only used with 0 workers */
  return TFW_OK;
}
Test(data_loader, fast_path_equals_generic_path) {
  tfw_dataset *ds = make_ds(37);
  int calls = 0;
  tfw_dataset *m = tfw_dataset_map(ds, identity, &calls);
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 5, o.shuffle = true, o.seed = 3;
  tfw_loader *a = tfw_loader_new(ds, &o), *b = tfw_loader_new(m, &o);
  for (int k = 0; k < 8; k++) {
    tfw_sample x, y;
    tfw_sample_init(&x);
    tfw_sample_init(&y);
    cr_assert_eq(tfw_loader_next(a, &x), TFW_OK);
    cr_assert_eq(tfw_loader_next(b, &y), TFW_OK, "%s", tfw_last_error());
    cr_assert_eq(x.n, y.n);
    for (int f = 0; f < x.n; f++) {
      bool eq = false;
      cr_assert_str_eq(x.names[f], y.names[f]);
      tfw_equal(x.tensors[f], y.tensors[f], &eq);
      cr_assert(eq, "batch %d field %s differs", k, x.names[f]);
    }
    tfw_sample_clear(&x);
    tfw_sample_clear(&y);
  }
  cr_assert_eq(calls, 37);
  tfw_loader_free(a);
  tfw_loader_free(b);
  tfw_dataset_release(m);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

/* ---- an iterable dataset: the stream 0, 1, ..., n-1 (n = *ctx), each as {"id", "x"}, with
 * the epoch added to ids so epochs are told apart ---------------------------------------- */
typedef struct stream_it { int64_t i, epoch; } stream_it;
static void *st_open(void *ctx, int64_t epoch) {
  stream_it *it = calloc(1, sizeof *it);
  it->epoch = epoch;
  return it;
}
static tfw_status st_next(void *ctx, void *vit, tfw_sample *out) {
  stream_it *it = vit;
  if (it->i >= *(int64_t *)ctx) return TFW_OK;
  int64_t v = it->i++ + 1000 * it->epoch;
  tfw_tensor *id = tfw_scalar(TFW_DTYPE_I64, (double)v);
  float xs[3] = {(float)v, 2.0f * v, -(float)v};
  tfw_tensor *x = tfw_from_data(TFW_DTYPE_F32, 1, (int64_t[]){3}, xs);
  tfw_sample_add(out, "id", id);
  tfw_sample_add(out, "x", x);
  tfw_release(id);
  tfw_release(x);
  return TFW_OK;
}
static void st_close(void *ctx, void *it) { free(it); }
static tfw_dataset *make_stream(int64_t *n) {
  tfw_dataset_vtable vt = {.iter_open = st_open, .iter_next = st_next, .iter_close = st_close};
  return tfw_dataset_new(&vt, n);
}

Test(data_loader, iterable_sharding_drop_last_resume) {
  int64_t n = 17;
  tfw_dataset *ds = make_stream(&n);
  cr_assert(tfw_dataset_is_iterable(ds));
  cr_assert_eq(tfw_dataset_len(ds), -1);
  for (int W = 1; W <= 3; W++) {
    int seen[17] = {0};
    for (int r = 0; r < W; r++) {
      tfw_loader_options o = tfw_loader_options_default();
      o.batch_size = 2, o.rank = r, o.world_size = W;
      tfw_loader *l = tfw_loader_new(ds, &o);
      cr_assert_eq(tfw_loader_len(l), -1);
      int64_t ids[32];
      int64_t k = run_epoch(l, ids, NULL, NULL);
      for (int64_t i = 0; i < k; i++) {
        cr_assert_eq(ids[i] % W, r, "rank %d got %lld", r, (long long)ids[i]);
        seen[ids[i]]++;
      }
      /* epoch 1 follows, with the epoch passed to iter_open */
      k = run_epoch(l, ids, NULL, NULL);
      cr_assert(k > 0 && ids[0] == 1000 + r);
      tfw_loader_free(l);
    }
    for (int i = 0; i < 17; i++) cr_assert_eq(seen[i], 1, "W %d: %d seen %d times", W, i, seen[i]);
  }
  /* drop_last: 17 = 5 x 3 + 2 */
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 3, o.drop_last = true;
  tfw_loader *l = tfw_loader_new(ds, &o);
  int64_t ids[32], nb;
  cr_assert_eq(run_epoch(l, ids, NULL, &nb), 15);
  cr_assert_eq(nb, 5);
  /* resume at (1, 2): the batches that follow */
  cr_assert_eq(tfw_loader_set_state(l, 1, 2), TFW_OK);
  cr_assert_eq(run_epoch(l, ids, NULL, &nb), 9);
  cr_assert_eq(ids[0], 1006);
  tfw_loader_free(l);
  o.shuffle = true;
  th_expect_error(tfw_loader_new(ds, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "shuffle", "shuffle a stream");
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

/* ---- collate with padding: a naive check ---------------------------------------------------- */
Test(data_loader, collate_pads_with_mask) {
  tfw_sample s[3];
  int64_t lens[3] = {2, 4, 1};
  for (int i = 0; i < 3; i++) {
    tfw_sample_init(&s[i]);
    tfw_tensor *tok = tfw_full(TFW_DTYPE_I64, 2, (int64_t[]){lens[i], 2}, 10 * (i + 1));
    tfw_tensor *y = tfw_scalar(TFW_DTYPE_F32, i);
    cr_assert_eq(tfw_sample_add(&s[i], "tokens", tok), TFW_OK);
    cr_assert_eq(tfw_sample_add(&s[i], "y", y), TFW_OK);
    tfw_release(tok);
    tfw_release(y);
  }
  tfw_sample out;
  tfw_sample_init(&out);
  th_expect_error(tfw_collate_stack(s, 3, false, 0, &out), TFW_ESHAPE, "set pad", "no pad");
  cr_assert_eq(tfw_collate_stack(s, 3, true, -1, &out), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(out.n, 3);
  cr_assert_str_eq(out.names[2], "tokens_mask");
  tfw_tensor *tok = tfw_sample_get(&out, "tokens"), *mask = tfw_sample_get(&out, "tokens_mask");
  tfw_tensor *y = tfw_sample_get(&out, "y");
  double ref_tok[3 * 4 * 2], ref_mask[3 * 4];
  for (int i = 0; i < 3; i++)
    for (int t = 0; t < 4; t++) {
      ref_mask[i * 4 + t] = t < lens[i];
      for (int c = 0; c < 2; c++) ref_tok[(i * 4 + t) * 2 + c] = t < lens[i] ? 10 * (i + 1) : -1;
    }
  th_expect_close(tok, TFW_DTYPE_I64, 3, (int64_t[]){3, 4, 2}, ref_tok, 0, 0, "padded tokens");
  th_expect_close(mask, TFW_DTYPE_BOOL, 2, (int64_t[]){3, 4}, ref_mask, 0, 0, "mask");
  th_expect_close(y, TFW_DTYPE_F32, 1, (int64_t[]){3}, (double[]){0, 1, 2}, 0, 0, "y");
  tfw_sample_clear(&out);
  /* dtype mismatch */
  tfw_tensor *f = tfw_zeros(TFW_DTYPE_F32, 2, (int64_t[]){2, 2});
  tfw_sample_clear(&s[1]);
  tfw_sample_add(&s[1], "tokens", f);
  tfw_tensor *y1 = tfw_scalar(TFW_DTYPE_F32, 1);
  tfw_sample_add(&s[1], "y", y1);
  th_expect_error(tfw_collate_stack(s, 3, true, 0, &out), TFW_EDTYPE, "'tokens'", "dtype");
  tfw_release(f);
  tfw_release(y1);
  for (int i = 0; i < 3; i++) tfw_sample_clear(&s[i]);
  th_expect_no_leaks();
}

/* ---- dataset combinators --------------------------------------------------------------------- */
static int64_t id_of(tfw_dataset *ds, int64_t i) {
  tfw_sample s;
  tfw_sample_init(&s);
  cr_assert_eq(tfw_dataset_get(ds, i, &s), TFW_OK, "%s", tfw_last_error());
  int64_t v;
  tfw_item_i64(tfw_sample_get(&s, "id"), &v);
  tfw_sample_clear(&s);
  return v;
}
static tfw_status keep_even(void *ctx, const tfw_sample *s, bool *keep) {
  int64_t v;
  tfw_item_i64(tfw_sample_get(s, "id"), &v);
  *keep = v % 2 == 0;
  return TFW_OK;
}
static tfw_status add_sq(void *ctx, tfw_sample *s) {
  int64_t v;
  tfw_item_i64(tfw_sample_get(s, "id"), &v);
  tfw_tensor *t = tfw_scalar(TFW_DTYPE_I64, (double)(v * v));
  tfw_status st = tfw_sample_add(s, "sq", t);
  tfw_release(t);
  return st;
}

Test(data_loader, subset_concat_split_map_filter) {
  tfw_dataset *a = make_ds(10), *b = make_ds(4);
  tfw_dataset *parts[2] = {a, b};
  tfw_dataset *cat = tfw_dataset_concat(2, parts);
  cr_assert_eq(tfw_dataset_len(cat), 14);
  for (int64_t i = 0; i < 14; i++) cr_assert_eq(id_of(cat, i), i < 10 ? i : i - 10);
  tfw_sample s;
  tfw_sample_init(&s);
  th_expect_error(tfw_dataset_get(cat, 14, &s), TFW_EINDEX, "14", "past the end");
  th_expect_error(tfw_dataset_get(cat, -1, &s), TFW_EINDEX, "-1", "negative");
  int64_t pick[3] = {9, 0, 3};
  tfw_dataset *sub = tfw_dataset_subset(a, 3, pick);
  for (int i = 0; i < 3; i++) cr_assert_eq(id_of(sub, i), pick[i]);
  int64_t badpick[1] = {10};
  th_expect_error(tfw_dataset_subset(a, 1, badpick) ? TFW_OK : tfw_last_status(), TFW_EINDEX,
                  "indices[0] = 10", "bad subset");
  /* subset keeps the fast path: a loader batch is the picked rows */
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 3;
  tfw_loader *l = tfw_loader_new(sub, &o);
  int64_t ids[8];
  cr_assert_eq(run_epoch(l, ids, NULL, NULL), 3);
  cr_assert(ids[0] == 9 && ids[1] == 0 && ids[2] == 3);
  tfw_loader_free(l);
  /* random split: disjoint, covering, deterministic */
  tfw_dataset *sp[3], *sp2[3];
  int64_t lens[3] = {5, 0, 9};
  cr_assert_eq(tfw_dataset_random_split(cat, 3, lens, 11, sp), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_dataset_random_split(cat, 3, lens, 11, sp2), TFW_OK);
  int seen[14] = {0};
  for (int p = 0; p < 3; p++) {
    cr_assert_eq(tfw_dataset_len(sp[p]), lens[p]);
    for (int64_t i = 0; i < lens[p]; i++) {
      tfw_sample x, y;
      tfw_sample_init(&x), tfw_sample_init(&y);
      tfw_dataset_get(sp[p], i, &x);
      tfw_dataset_get(sp2[p], i, &y);
      bool eq = false;
      tfw_equal(x.tensors[1], y.tensors[1], &eq);
      cr_assert(eq, "same seed, other split");
      tfw_sample_clear(&x), tfw_sample_clear(&y);
    }
  }
  /* coverage: concat the parts back and count ids (a has ids 0-9, b 0-3: count pairs) */
  for (int p = 0; p < 3; p++)
    for (int64_t i = 0; i < lens[p]; i++) seen[id_of(sp[p], i)]++;
  for (int i = 0; i < 10; i++) cr_assert_eq(seen[i], i < 4 ? 2 : 1, "id %d seen %d times", i, seen[i]);
  int64_t badlens[2] = {5, 8};
  th_expect_error(tfw_dataset_random_split(cat, 2, badlens, 1, sp2), TFW_EVALUE, "sum", "lengths");
  for (int p = 0; p < 3; p++) tfw_dataset_release(sp[p]), tfw_dataset_release(sp2[p]);
  /* filter (eager for map-style) and map */
  tfw_dataset *ev = tfw_dataset_filter(a, keep_even, NULL);
  cr_assert_eq(tfw_dataset_len(ev), 5);
  for (int64_t i = 0; i < 5; i++) cr_assert_eq(id_of(ev, i), 2 * i);
  tfw_dataset *sq = tfw_dataset_map(ev, add_sq, NULL);
  tfw_sample_init(&s);
  cr_assert_eq(tfw_dataset_get(sq, 3, &s), TFW_OK);
  int64_t v;
  tfw_item_i64(tfw_sample_get(&s, "sq"), &v);
  cr_assert_eq(v, 36);
  tfw_sample_clear(&s);
  /* map + filter + chain on streams */
  int64_t n1 = 5, n2 = 3;
  tfw_dataset *s1 = make_stream(&n1), *s2 = make_stream(&n2);
  tfw_dataset *sparts[2] = {s1, s2};
  tfw_dataset *chain = tfw_dataset_concat(2, sparts);
  tfw_dataset *fe = tfw_dataset_filter(chain, keep_even, NULL);
  tfw_dataset *fm = tfw_dataset_map(fe, add_sq, NULL);
  o.batch_size = 10;
  l = tfw_loader_new(fm, &o);
  tfw_sample_init(&s);
  cr_assert_eq(tfw_loader_next(l, &s), TFW_OK, "%s", tfw_last_error());
  th_expect_close(tfw_sample_get(&s, "id"), TFW_DTYPE_I64, 1, (int64_t[]){5}, (double[]){0, 2, 4, 0, 2}, 0, 0, "chain ids");
  th_expect_close(tfw_sample_get(&s, "sq"), TFW_DTYPE_I64, 1, (int64_t[]){5}, (double[]){0, 4, 16, 0, 4}, 0, 0, "chain sq");
  tfw_sample_clear(&s);
  tfw_loader_free(l);
  tfw_dataset *mixed[2] = {a, s1};
  th_expect_error(tfw_dataset_concat(2, mixed) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "kind", "mixed concat");
  tfw_dataset_release(fm), tfw_dataset_release(fe), tfw_dataset_release(chain);
  tfw_dataset_release(s1), tfw_dataset_release(s2);
  tfw_dataset_release(sq), tfw_dataset_release(ev), tfw_dataset_release(sub);
  tfw_dataset_release(cat), tfw_dataset_release(a), tfw_dataset_release(b);
  th_expect_no_leaks();
}

/* ---- errors ------------------------------------------------------------------------------------ */
static _Atomic int g_fail_at = -1;
static tfw_status fail_some(void *ctx, tfw_sample *s) {
  int64_t v;
  tfw_item_i64(tfw_sample_get(s, "id"), &v);
  if (v == g_fail_at) return tfw__error(TFW_EIO, "test map: sample %lld is unreadable", (long long)v);
  return TFW_OK;
}

Test(data_loader, worker_error_keeps_position_and_retries) {
  tfw_dataset *ds = make_ds(12);
  tfw_dataset *m = tfw_dataset_map(ds, fail_some, NULL);
  for (int w = 0; w < 3; w++) {
    g_fail_at = 6;
    tfw_loader_options o = tfw_loader_options_default();
    o.batch_size = 4, o.num_workers = w;
    tfw_loader *l = tfw_loader_new(m, &o);
    tfw_sample s;
    tfw_sample_init(&s);
    cr_assert_eq(tfw_loader_next(l, &s), TFW_OK);
    tfw_sample_clear(&s);
    th_expect_error(tfw_loader_next(l, &s), TFW_EIO, "sample 6 is unreadable", "worker error");
    cr_assert_eq(s.n, 0);
    int64_t e, ix;
    tfw_loader_state(l, &e, &ix);
    cr_assert(e == 0 && ix == 1, "position moved to (%lld, %lld)", (long long)e, (long long)ix);
    g_fail_at = -1;
    int64_t ids[12], n = 0;
    cr_assert_eq(tfw_loader_next(l, &s), TFW_OK, "%s", tfw_last_error());
    take_batch(&s, ids, &n);
    tfw_sample_clear(&s);
    cr_assert(n == 4 && ids[0] == 4 && ids[3] == 7);
    tfw_loader_free(l);
  }
  tfw_dataset_release(m);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

Test(data_loader, option_errors) {
  tfw_dataset *ds = make_ds(4);
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 0;
  th_expect_error(tfw_loader_new(ds, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "batch_size is 0", "bs 0");
  o.batch_size = 2, o.rank = 2, o.world_size = 2;
  th_expect_error(tfw_loader_new(ds, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "rank 2", "bad rank");
  o.rank = -1;
  th_expect_error(tfw_loader_new(ds, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "rank -1", "neg rank");
  o.rank = 0, o.world_size = 1, o.num_workers = -1;
  th_expect_error(tfw_loader_new(ds, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "num_workers", "neg workers");
  th_expect_error(tfw_loader_new(NULL, &o) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "NULL", "NULL ds");
  tfw_dataset_vtable bad = {.len = NULL, .get = NULL};
  th_expect_error(tfw_dataset_new(&bad, NULL) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "exactly one", "empty vtable");
  tfw_tensor *x = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){3}), *y = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){4});
  tfw_tensor *ts[2] = {x, y};
  const char *names[2] = {"x", "y"};
  th_expect_error(tfw_dataset_from_tensors(2, names, ts) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "4 rows", "rows differ");
  const char *dup[2] = {"x", "x"};
  ts[1] = x;
  th_expect_error(tfw_dataset_from_tensors(2, dup, ts) ? TFW_OK : tfw_last_status(), TFW_EVALUE, "twice", "dup names");
  tfw_release(x), tfw_release(y);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}
