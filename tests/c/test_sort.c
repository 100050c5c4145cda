/* Tests of sort, argsort and topk against a stable insertion-sort reference written here
 * (double precision, NaN as the largest value, like PyTorch), on contiguous, strided and
 * broadcast inputs in every dtype, with duplicate keys (stability), NaNs, -0.0, long rows
 * (radix path), empty dims, 0-d tensors and error inputs. */
#include "index_ref.h"

static const tfw_dtype ALL_DT[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16,
                                   TFW_DTYPE_I8,  TFW_DTYPE_U8,  TFW_DTYPE_I32, TFW_DTYPE_I64,
                                   TFW_DTYPE_BOOL};
#define N_ALL_DT (int)(sizeof ALL_DT / sizeof ALL_DT[0])

/* -1, 0, 1 for a < b, a == b, a > b with NaN largest (and NaN == NaN). */
static int cmp(double a, double b) {
  if (isnan(a) || isnan(b)) return isnan(a) - isnan(b);
  return a < b ? -1 : a > b;
}

/* Stable insertion sort of one row (v[i*stride]); writes sorted values and indices. */
static void ref_sort_row(const double *v, int64_t n, int64_t stride, bool desc, double *ov,
                         int64_t *oi) {
  for (int64_t i = 0; i < n; i++) {
    double x = v[i * stride];
    int64_t j = i;
    while (j > 0 && (desc ? cmp(ov[j - 1], x) < 0 : cmp(ov[j - 1], x) > 0)) {
      ov[j] = ov[j - 1];
      oi[j] = oi[j - 1];
      j--;
    }
    ov[j] = x;
    oi[j] = i;
  }
}

/* Reference for sort (k == n) and topk (first k of the stable sort; unsorted: by index). */
static void ref_topk(const tfw_tensor *t, int dim, int64_t k, bool desc, bool sorted, double **rv,
                     double **ri, int64_t *oshape) {
  int nd = tfw_tensor_ndim(t);
  const int64_t *ts = tfw_tensor_shape(t);
  double *tv = th_values(t);
  int64_t n = nd ? ts[dim] : 1, inner = 1, outer = 1;
  for (int d = 0; d < nd; d++) {
    oshape[d] = d == dim ? k : ts[d];
    if (d < dim) outer *= ts[d];
    if (d > dim) inner *= ts[d];
  }
  *rv = malloc(sizeof(double) * (size_t)(outer * inner * k + 1));
  *ri = malloc(sizeof(double) * (size_t)(outer * inner * k + 1));
  double *ov = malloc(sizeof(double) * (size_t)(n + 1));
  int64_t *oi = malloc(sizeof(int64_t) * (size_t)(n + 1));
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      ref_sort_row(tv + o * n * inner + in, n, inner, desc, ov, oi);
      if (!sorted) /* the same k elements in ascending index order */
        for (int64_t a = 1; a < k; a++)
          for (int64_t b = a; b > 0 && oi[b - 1] > oi[b]; b--) {
            int64_t ti = oi[b];
            oi[b] = oi[b - 1];
            oi[b - 1] = ti;
            double tvv = ov[b];
            ov[b] = ov[b - 1];
            ov[b - 1] = tvv;
          }
      for (int64_t j = 0; j < k; j++) {
        (*rv)[o * k * inner + j * inner + in] = ov[j];
        (*ri)[o * k * inner + j * inner + in] = (double)oi[j];
      }
    }
  free(tv);
  free(ov);
  free(oi);
}

static void check_sort(const tfw_tensor *t, int dim, bool desc, const char *what) {
  int nd = tfw_tensor_ndim(t);
  int d = dim < 0 ? dim + (nd ? nd : 1) : dim;
  tfw_tensor *v = NULL, *ix = NULL;
  tfw_status st = tfw_sort(t, dim, desc, &v, &ix);
  cr_assert_eq(st, TFW_OK, "%s: %s", what, tfw_last_error());
  double *rv, *ri;
  int64_t os[TFW_MAX_DIMS];
  ref_topk(t, d, nd ? tfw_tensor_shape(t)[d] : 1, desc, true, &rv, &ri, os);
  th_expect_close(v, tfw_tensor_dtype(t), nd, os, rv, 0, 0, what);
  th_expect_close(ix, TFW_DTYPE_I64, nd, os, ri, 0, 0, what);
  tfw_tensor *a = tfw_argsort(t, dim, desc);
  th_expect_close(a, TFW_DTYPE_I64, nd, os, ri, 0, 0, what);
  free(rv);
  free(ri);
  tfw_release(v);
  tfw_release(ix);
  tfw_release(a);
}

static void check_topk(const tfw_tensor *t, int64_t k, int dim, bool largest, bool sorted,
                       const char *what) {
  int nd = tfw_tensor_ndim(t);
  int d = dim < 0 ? dim + (nd ? nd : 1) : dim;
  tfw_tensor *v = NULL, *ix = NULL;
  tfw_status st = tfw_topk(t, k, dim, largest, sorted, &v, &ix);
  cr_assert_eq(st, TFW_OK, "%s: %s", what, tfw_last_error());
  double *rv, *ri;
  int64_t os[TFW_MAX_DIMS];
  ref_topk(t, d, k, largest, sorted, &rv, &ri, os);
  char w2[160];
  snprintf(w2, sizeof w2, "%s (k %lld, dim %d, largest %d, sorted %d)", what, (long long)k, dim,
           largest, sorted);
  th_expect_close(v, tfw_tensor_dtype(t), nd, os, rv, 0, 0, w2);
  th_expect_close(ix, TFW_DTYPE_I64, nd, os, ri, 0, 0, w2);
  free(rv);
  free(ri);
  tfw_release(v);
  tfw_release(ix);
}

/* Small-range values make many duplicates (stability); floats also get NaN and +-0. */
static tfw_tensor *sort_input(tfw_dtype dt, int nd, const int64_t *shape, int layout, bool dups,
                              uint64_t seed) {
  double lo = dt == TFW_DTYPE_U8 ? 0 : dups ? -3 : -100, hi = dups ? 3 : 100;
  if (tfw_dtype_is_floating(dt) && dups) {
    /* integer-valued floats in the requested layout: copy int32 values in */
    tfw_tensor *f = ir_make(dt, nd, shape, layout, lo, hi, seed);
    tfw_tensor *i = th_random(TFW_DTYPE_I32, nd, shape, lo, hi, seed + 1);
    cr_assert_eq(tfw_copy_(f, i), TFW_OK, "%s", tfw_last_error());
    tfw_release(i);
    return f;
  }
  tfw_tensor *t = ir_make(dt, nd, shape, layout, lo, hi, seed);
  if (tfw_dtype_is_floating(dt) && layout != L_BCAST && ir_numel(nd, shape) > 8) {
    ir_set(t, 1, NAN);
    ir_set(t, 4, -0.0);
    ir_set(t, 5, 0.0);
    ir_set(t, 7, NAN);
    ir_set(t, 8, -INFINITY);
  }
  return t;
}

Test(sort, all_dtypes_layouts_dims) {
  const int64_t ts[3] = {5, 6, 7};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int dim = -1; dim < 3; dim++)
        for (int desc = 0; desc < 2; desc++) {
          tfw_dtype dt = ALL_DT[k];
          tfw_tensor *t = sort_input(dt, 3, ts, lt, count % 2, 100 + count);
          char what[96];
          snprintf(what, sizeof what, "sort %s layout %d dim %d desc %d", tfw_dtype_name(dt), lt,
                   dim, desc);
          check_sort(t, dim, desc, what);
          tfw_release(t);
          count++;
        }
  th_expect_no_leaks();
}

Test(sort, long_rows_radix_path) {
  /* rows above the insertion cutoff, with and without duplicates, NaNs, strided */
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_I64, TFW_DTYPE_F16,
                           TFW_DTYPE_I32, TFW_DTYPE_BF16, TFW_DTYPE_U8, TFW_DTYPE_BOOL};
  const int64_t lens[3] = {33, 300, 2500};
  int count = 0;
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++)
    for (int l = 0; l < 3; l++)
      for (int dups = 0; dups < 2; dups++) {
        int64_t shape[2] = {3, lens[l]};
        tfw_tensor *t = sort_input(dts[k], 2, shape, count % 2 ? L_STRIDED : L_CONTIG, dups,
                                   200 + count);
        check_sort(t, 1, count % 3 == 0, tfw_dtype_name(dts[k]));
        tfw_release(t);
        count++;
      }
  /* i64 with large magnitudes: every byte of the key matters */
  int64_t shape[1] = {1000};
  tfw_tensor *t = th_random(TFW_DTYPE_I64, 1, shape, -9e18, 9e18, 5);
  check_sort(t, 0, false, "i64 wide");
  check_sort(t, 0, true, "i64 wide desc");
  tfw_release(t);
  th_expect_no_leaks();
}

Test(sort, stability_and_special_values) {
  /* equal keys keep input order in both directions; -0.0 == 0.0; NaNs last (asc) / first (desc) */
  const float v[8] = {1.0f, NAN, -0.0f, 0.0f, 1.0f, -INFINITY, NAN, -0.0f};
  int64_t n = 8;
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_F32, 1, &n, v);
  tfw_tensor *vals = NULL, *idx = NULL;
  cr_assert_eq(tfw_sort(t, 0, false, &vals, &idx), TFW_OK);
  const double ri[8] = {5, 2, 3, 7, 0, 4, 1, 6};
  th_expect_close(idx, TFW_DTYPE_I64, 1, &n, ri, 0, 0, "ascending indices");
  const double rv[8] = {-INFINITY, -0.0, 0.0, -0.0, 1, 1, NAN, NAN};
  th_expect_close(vals, TFW_DTYPE_F32, 1, &n, rv, 0, 0, "ascending values");
  float *pv = tfw_tensor_data(vals);
  cr_assert(signbit(pv[1]) && !signbit(pv[2]) && signbit(pv[3]), "-0.0 order not stable");
  tfw_release(vals);
  tfw_release(idx);
  cr_assert_eq(tfw_sort(t, -1, true, &vals, &idx), TFW_OK);
  const double rd[8] = {1, 6, 0, 4, 2, 3, 7, 5};
  th_expect_close(idx, TFW_DTYPE_I64, 1, &n, rd, 0, 0, "descending indices");
  tfw_release(vals);
  tfw_release(idx);
  /* NULL out pointers are allowed */
  cr_assert_eq(tfw_sort(t, 0, false, NULL, &idx), TFW_OK);
  th_expect_close(idx, TFW_DTYPE_I64, 1, &n, ri, 0, 0, "indices only");
  tfw_release(idx);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(sort, empty_and_scalar) {
  const int64_t es[3] = {3, 0, 4};
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 3, es);
  for (int d = 0; d < 3; d++) check_sort(t, d, false, "empty");
  tfw_tensor *v = NULL, *ix = NULL;
  cr_assert_eq(tfw_topk(t, 0, 1, true, true, &v, &ix), TFW_OK, "%s", tfw_last_error());
  th_expect_close(v, TFW_DTYPE_F32, 3, es, NULL, 0, 0, "topk empty");
  tfw_release(v);
  tfw_release(ix);
  tfw_release(t);
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F64, -2.5);
  check_sort(s, 0, false, "0-d");
  check_sort(s, -1, true, "0-d desc");
  check_topk(s, 1, 0, true, true, "0-d topk");
  tfw_release(s);
  th_expect_no_leaks();
}

Test(sort, topk_all_dtypes_layouts) {
  const int64_t ts[3] = {4, 9, 5};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int dim = -1; dim < 3; dim++) {
        tfw_dtype dt = ALL_DT[k];
        int d = dim < 0 ? 2 : dim;
        tfw_tensor *t = sort_input(dt, 3, ts, lt, count % 2, 300 + count);
        const int64_t ks[4] = {0, 1, 3, ts[d]};
        for (int kk = 0; kk < 4; kk++)
          check_topk(t, ks[kk], dim, (count + kk) % 2, kk % 3 != 2, tfw_dtype_name(dt));
        tfw_release(t);
        count++;
      }
  th_expect_no_leaks();
}

Test(sort, topk_heap_and_full_paths) {
  /* small k on long rows takes the heap; large k the full sort; both with dups and NaNs */
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_I64, TFW_DTYPE_F16,
                           TFW_DTYPE_I8};
  int count = 0;
  for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++)
    for (int dups = 0; dups < 2; dups++) {
      const int64_t shape[2] = {6, 400};
      tfw_tensor *t = sort_input(dts[k], 2, shape, count % 2 ? L_STRIDED : L_CONTIG, dups, 400 + count);
      const int64_t ks[5] = {1, 7, 50, 51, 300};
      for (int q = 0; q < 5; q++)
        for (int largest = 0; largest < 2; largest++)
          for (int sorted = 0; sorted < 2; sorted++)
            check_topk(t, ks[q], 1, largest, sorted, tfw_dtype_name(dts[k]));
      check_topk(t, 4, 0, true, true, "topk dim 0");
      tfw_release(t);
      count++;
    }
  th_expect_no_leaks();
}

Test(sort, deterministic_across_threads) {
  const int64_t shape[2] = {64, 3000};
  tfw_tensor *t = sort_input(TFW_DTYPE_F32, 2, shape, L_CONTIG, true, 9);
  tfw_tensor *ix[2];
  for (int th = 0; th < 2; th++) {
    tfw_set_num_threads(th + 1);
    ix[th] = tfw_argsort(t, 1, false);
    cr_assert(ix[th], "%s", tfw_last_error());
  }
  tfw_set_num_threads(0);
  cr_assert(memcmp(tfw_tensor_data(ix[0]), tfw_tensor_data(ix[1]), 64 * 3000 * 8) == 0);
  check_sort(t, 1, false, "parallel rows");
  tfw_release(ix[0]);
  tfw_release(ix[1]);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(sort, errors) {
  const int64_t ts[2] = {2, 5};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 1);
  tfw_tensor *v = NULL, *ix = NULL;
  th_expect_error(tfw_topk(t, 6, 1, true, true, &v, &ix), TFW_EINDEX,
                  "topk: k = 6 is out of range for dimension 1 of size 5", "k > n");
  cr_assert(v == NULL && ix == NULL);
  th_expect_error(tfw_topk(t, -1, 1, true, true, &v, &ix), TFW_EINDEX, "k = -1", "k < 0");
  th_expect_error(tfw_topk(t, 1, 2, true, true, &v, &ix), TFW_EINDEX, "dimension 2 out of range",
                  "topk dim");
  th_expect_error(tfw_sort(t, -3, false, &v, &ix), TFW_EINDEX, "sort: dimension -3 out of range",
                  "sort dim");
  cr_assert(tfw_argsort(t, 5, false) == NULL);
  th_expect_error(tfw_last_status(), TFW_EINDEX, "argsort: dimension 5", "argsort dim");
  th_expect_error(tfw_sort(NULL, 0, false, &v, &ix), TFW_EVALUE, "sort", "NULL");
  th_expect_error(tfw_topk(NULL, 1, 0, true, true, &v, &ix), TFW_EVALUE, "topk", "NULL");
  cr_assert(tfw_argsort(NULL, 0, false) == NULL);
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 1);
  th_expect_error(tfw_topk(s, 2, 0, true, true, &v, &ix), TFW_EINDEX, "topk: k = 2", "0-d k");
  tfw_release(s);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(sort, out_of_memory_is_clean) {
  const int64_t shape[2] = {4, 100};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, shape, -1, 1, 1);
  int failures = 0;
  for (int n = 1; n < 8; n++) {
    tfw_tensor *v = NULL, *ix = NULL;
    tfw_memory_fail_at(n, false);
    tfw_status st = tfw_sort(t, 1, false, &v, &ix);
    tfw_memory_fail_at(0, false);
    if (st) {
      th_expect_error(st, TFW_ENOMEM, NULL, "sort oom");
      cr_assert(v == NULL && ix == NULL);
      failures++;
    }
    tfw_release(v);
    tfw_release(ix);
  }
  cr_assert(failures > 0);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(sort, registry_samples_run) {
  static const char *const names[] = {"sort", "argsort", "topk", NULL};
  ir_run_samples(names);
  th_expect_no_leaks();
}
