/* Tests of the gather/scatter family, masked_select and nonzero against naive reference
 * loops written here over row-major double copies (th_values), on contiguous, strided and
 * broadcast inputs in every dtype, plus edge cases, determinism and error inputs. */
#include "index_ref.h"

static const tfw_dtype ALL_DT[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16,
                                   TFW_DTYPE_I8,  TFW_DTYPE_U8,  TFW_DTYPE_I32, TFW_DTYPE_I64,
                                   TFW_DTYPE_BOOL};
#define N_ALL_DT (int)(sizeof ALL_DT / sizeof ALL_DT[0])

static double lo_of(tfw_dtype dt) { return dt == TFW_DTYPE_U8 ? 0 : -20; }

/* A random index tensor with values in [0, hi), int64 or int32, given layout. */
static tfw_tensor *rand_index(int nd, const int64_t *shape, int64_t hi, bool i32, int layout,
                              uint64_t seed) {
  return ir_make(i32 ? TFW_DTYPE_I32 : TFW_DTYPE_I64, nd, shape, layout, 0, (double)hi, seed);
}

static tfw_tensor *idx_from(int nd, const int64_t *shape, const int64_t *v) {
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_I64, nd, shape, v);
  cr_assert(t);
  return t;
}

/* ---- gather / index_select / take_along_dim ----------------------------------------------- */

/* out[p] = t[p with dim := index[p]] (gather reference, index shape may be smaller). */
static double *ref_gather(const tfw_tensor *t, const tfw_tensor *index, int dim) {
  int nd = tfw_tensor_ndim(index);
  const int64_t *is = tfw_tensor_shape(index), *ts = tfw_tensor_shape(t);
  double *tv = th_values(t), *iv = th_values(index);
  int64_t n = ir_numel(nd, is);
  double *r = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t p = 0; p < n; p++) {
    int64_t pos[TFW_MAX_DIMS];
    ir_unravel(p, nd, is, pos);
    if (nd > 0) pos[dim] = (int64_t)iv[p];
    r[p] = tv[ir_ravel(tfw_tensor_ndim(t), ts, pos)];
  }
  free(tv);
  free(iv);
  return r;
}

Test(index, gather_all_dtypes_layouts_dims) {
  const int64_t ts[3] = {4, 5, 6};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int dim = -1; dim < 3; dim++) {
        tfw_dtype dt = ALL_DT[k];
        int d = dim < 0 ? dim + 3 : dim;
        tfw_tensor *t = ir_make(dt, 3, ts, lt, lo_of(dt), 20, 100 + count);
        int64_t is[3];
        for (int q = 0; q < 3; q++) is[q] = q == d ? 7 : ts[q] - (q % 2); /* <= on other dims */
        tfw_tensor *index = rand_index(3, is, ts[d], count % 2, (lt + 1) % 3, 200 + count);
        tfw_tensor *o = tfw_gather(t, dim, index);
        double *r = ref_gather(t, index, d);
        char what[64];
        snprintf(what, sizeof what, "gather %s layout %d dim %d", tfw_dtype_name(dt), lt, dim);
        th_expect_close(o, dt, 3, is, r, 0, 0, what);
        free(r);
        tfw_release(o);
        tfw_release(t);
        tfw_release(index);
        count++;
      }
  th_expect_no_leaks();
}

Test(index, index_select_all_dtypes_layouts) {
  const int64_t ts[3] = {5, 3, 4};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int d = 0; d < 3; d++) {
        tfw_dtype dt = ALL_DT[k];
        tfw_tensor *t = ir_make(dt, 3, ts, lt, lo_of(dt), 20, 300 + count);
        int64_t m = 6;
        tfw_tensor *index = rand_index(1, &m, ts[d], count % 2, lt == 1 ? 1 : 0, 400 + count);
        tfw_tensor *o = tfw_index_select(t, d - 3 * (count % 2), index); /* negative dims too */
        double *tv = th_values(t), *iv = th_values(index);
        int64_t os[3] = {ts[0], ts[1], ts[2]};
        os[d] = m;
        int64_t n = ir_numel(3, os);
        double *r = malloc(sizeof(double) * (size_t)n);
        for (int64_t p = 0; p < n; p++) {
          int64_t pos[3];
          ir_unravel(p, 3, os, pos);
          pos[d] = (int64_t)iv[pos[d]];
          r[p] = tv[ir_ravel(3, ts, pos)];
        }
        th_expect_close(o, dt, 3, os, r, 0, 0, "index_select");
        free(r);
        free(tv);
        free(iv);
        tfw_release(o);
        tfw_release(t);
        tfw_release(index);
        count++;
      }
  th_expect_no_leaks();
}

Test(index, take_along_dim_broadcasts) {
  /* t [4, 1, 6] and index [1, 5, 3] along dim 2 -> [4, 5, 3]; along dim 0 with index [2, 5, 1] */
  const int64_t ts[3] = {4, 1, 6};
  const tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_I64, TFW_DTYPE_F16};
  for (int k = 0; k < 3; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int d = 0; d < 3; d += 2) {
        tfw_dtype dt = dts[k];
        tfw_tensor *t = ir_make(dt, 3, ts, lt, -20, 20, 500 + k * 10 + lt);
        int64_t is[3] = {1, 5, 3};
        if (d == 0) {
          is[0] = 2;
          is[2] = 1;
        }
        tfw_tensor *index = rand_index(3, is, ts[d], k == 1, L_CONTIG, 600 + k + lt);
        tfw_tensor *o = tfw_take_along_dim(t, index, d);
        int64_t os[3];
        for (int q = 0; q < 3; q++)
          os[q] = q == d ? is[q] : (ts[q] > is[q] ? ts[q] : is[q]);
        double *tv = th_values(t), *iv = th_values(index);
        int64_t n = ir_numel(3, os);
        double *r = malloc(sizeof(double) * (size_t)n);
        for (int64_t p = 0; p < n; p++) {
          int64_t pos[3], ip[3], tp[3];
          ir_unravel(p, 3, os, pos);
          for (int q = 0; q < 3; q++) {
            ip[q] = (q != d && is[q] == 1) ? 0 : pos[q];
            tp[q] = (q != d && ts[q] == 1) ? 0 : pos[q];
          }
          tp[d] = (int64_t)iv[ir_ravel(3, is, ip)];
          r[p] = tv[ir_ravel(3, ts, tp)];
        }
        th_expect_close(o, dt, 3, os, r, 0, 0, "take_along_dim");
        free(r);
        free(tv);
        free(iv);
        tfw_release(o);
        tfw_release(t);
        tfw_release(index);
      }
  th_expect_no_leaks();
}

Test(index, gather_embedding_rows_large) {
  /* index_select on dim 0 of a [1000, 64] table: the row-memcpy path, parallel */
  const int64_t ts[2] = {1000, 64};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 1);
  int64_t m = 3000;
  tfw_tensor *index = rand_index(1, &m, 1000, false, L_CONTIG, 2);
  tfw_tensor *o = tfw_index_select(t, 0, index);
  double *tv = th_values(t), *iv = th_values(index);
  double *r = malloc(sizeof(double) * 3000 * 64);
  for (int64_t j = 0; j < m; j++)
    for (int c = 0; c < 64; c++) r[j * 64 + c] = tv[(int64_t)iv[j] * 64 + c];
  const int64_t os[2] = {3000, 64};
  th_expect_close(o, TFW_DTYPE_F32, 2, os, r, 0, 0, "embedding");
  free(r);
  free(tv);
  free(iv);
  tfw_release(o);
  tfw_release(t);
  tfw_release(index);
  th_expect_no_leaks();
}

Test(index, gather_edge_cases) {
  /* 0-d t and 0-d index */
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 3.5);
  int64_t zero = 0;
  tfw_tensor *i0 = idx_from(0, NULL, &zero);
  tfw_tensor *o = tfw_gather(s, 0, i0);
  double r = 3.5;
  th_expect_close(o, TFW_DTYPE_F32, 0, NULL, &r, 0, 0, "gather 0-d");
  tfw_release(o);
  o = tfw_index_select(s, -1, i0);
  th_expect_close(o, TFW_DTYPE_F32, 0, NULL, &r, 0, 0, "index_select 0-d");
  tfw_release(o);
  /* empty index */
  const int64_t ts[2] = {3, 4}, es[2] = {3, 0};
  tfw_tensor *t = th_random(TFW_DTYPE_F64, 2, ts, -1, 1, 3);
  tfw_tensor *ie = tfw_zeros(TFW_DTYPE_I64, 2, es);
  o = tfw_gather(t, 1, ie);
  th_expect_close(o, TFW_DTYPE_F64, 2, es, NULL, 0, 0, "gather empty index");
  tfw_release(o);
  int64_t m0 = 0;
  tfw_tensor *ie1 = tfw_zeros(TFW_DTYPE_I64, 1, &m0);
  o = tfw_index_select(t, 0, ie1);
  const int64_t os[2] = {0, 4};
  th_expect_close(o, TFW_DTYPE_F64, 2, os, NULL, 0, 0, "index_select empty");
  tfw_release(o);
  /* t with an empty dim, empty index along it */
  const int64_t ts0[2] = {0, 4};
  tfw_tensor *t0 = tfw_zeros(TFW_DTYPE_F32, 2, ts0);
  o = tfw_index_select(t0, 1, ie1);
  const int64_t os0[2] = {0, 0};
  th_expect_close(o, TFW_DTYPE_F32, 2, os0, NULL, 0, 0, "index_select empty t");
  tfw_release(o);
  /* indexing an empty dim with a value is out of range */
  int64_t one = 1;
  tfw_tensor *i1 = idx_from(1, &one, &zero);
  th_expect_error(tfw_index_select(t0, 0, i1) ? TFW_OK : tfw_last_status(), TFW_EINDEX,
                  "index 0 out of range for dimension 0 of size 0", "empty dim");
  /* size-1 dims */
  const int64_t t1s[3] = {1, 4, 1};
  tfw_tensor *t1 = th_random(TFW_DTYPE_I32, 3, t1s, -9, 9, 4);
  const int64_t i1s[3] = {1, 2, 1};
  const int64_t iv[2] = {3, 0};
  tfw_tensor *ix = idx_from(3, i1s, iv);
  o = tfw_gather(t1, 1, ix);
  double *tv = th_values(t1);
  double rr[2] = {tv[3], tv[0]};
  th_expect_close(o, TFW_DTYPE_I32, 3, i1s, rr, 0, 0, "size-1 dims");
  free(tv);
  tfw_release(o);
  tfw_release(s);
  tfw_release(i0);
  tfw_release(t);
  tfw_release(ie);
  tfw_release(ie1);
  tfw_release(t0);
  tfw_release(i1);
  tfw_release(t1);
  tfw_release(ix);
  th_expect_no_leaks();
}

/* ---- scatter / scatter_add / index_add -------------------------------------------------- */

/* Reference over row-major copies; src values are first cast to t's dtype by the core cast. */
static double *ref_scatter(const tfw_tensor *t, const tfw_tensor *index, const tfw_tensor *src,
                           int dim, bool add) {
  tfw_tensor *sc = tfw_to_dtype(src, tfw_tensor_dtype(t));
  double *out = th_values(t), *iv = th_values(index), *sv = th_values(sc);
  int nd = tfw_tensor_ndim(index);
  const int64_t *is = tfw_tensor_shape(index);
  const int64_t *ss = tfw_tensor_shape(src);
  for (int64_t p = 0; p < ir_numel(nd, is); p++) {
    int64_t pos[TFW_MAX_DIMS];
    ir_unravel(p, nd, is, pos);
    double v = sv[ir_ravel(nd, ss, pos)];
    pos[dim] = (int64_t)iv[p];
    int64_t at = ir_ravel(nd, tfw_tensor_shape(t), pos);
    if (!add) out[at] = v;
    else if (tfw_tensor_dtype(t) == TFW_DTYPE_BOOL) out[at] = (out[at] != 0 || v != 0);
    else out[at] += v;
  }
  free(iv);
  free(sv);
  tfw_release(sc);
  return out;
}

static void tol_for(tfw_dtype dt, double *rtol, double *atol) {
  *rtol = th_eps(dt) * 4;
  *atol = dt == TFW_DTYPE_BF16 ? 0.3 : dt == TFW_DTYPE_F16 ? 0.05 : th_eps(dt) * 100;
}

/* Integer results of adds wrap like C; compare modulo the dtype width. */
static void wrap_ref(double *r, int64_t n, tfw_dtype dt) {
  for (int64_t i = 0; i < n; i++) {
    if (dt == TFW_DTYPE_I8) r[i] = (double)(int8_t)(int64_t)r[i];
    if (dt == TFW_DTYPE_U8) r[i] = (double)(uint8_t)(int64_t)r[i];
  }
}

Test(index, scatter_and_scatter_add_all_dtypes) {
  const int64_t ts[3] = {4, 5, 3};
  int count = 0;
  for (int add = 0; add < 2; add++)
    for (int k = 0; k < N_ALL_DT; k++)
      for (int lt = 0; lt < 3; lt++)
        for (int d = 0; d < 3; d++) {
          tfw_dtype dt = ALL_DT[k];
          tfw_tensor *t = ir_make(dt, 3, ts, lt, lo_of(dt), 20, 700 + count);
          int64_t is[3], ss[3];
          for (int q = 0; q < 3; q++) {
            is[q] = q == d ? 6 : ts[q] - (q == 2); /* duplicates along dim: 6 > size */
            ss[q] = is[q] + (q == 1);             /* src may be larger than index */
          }
          tfw_tensor *index = rand_index(3, is, ts[d], count % 2, (lt + 2) % 3, 800 + count);
          tfw_dtype sdt = count % 3 == 0 ? TFW_DTYPE_F64 : dt; /* src cast to t's dtype */
          tfw_tensor *src = ir_make(sdt, 3, ss, (lt + 1) % 3, lo_of(dt), 20, 900 + count);
          tfw_tensor *o = add ? tfw_scatter_add(t, d, index, src) : tfw_scatter(t, d, index, src);
          double *r = ref_scatter(t, index, src, d, add);
          wrap_ref(r, ir_numel(3, ts), dt);
          double rtol, atol;
          tol_for(dt, &rtol, &atol);
          char what[80];
          snprintf(what, sizeof what, "%s %s layout %d dim %d", add ? "scatter_add" : "scatter",
                   tfw_dtype_name(dt), lt, d);
          th_expect_close(o, dt, 3, ts, r, add ? rtol : 0, add ? atol : 0, what);
          free(r);
          tfw_release(o);
          tfw_release(t);
          tfw_release(index);
          tfw_release(src);
          count++;
        }
  th_expect_no_leaks();
}

Test(index, index_add_all_dtypes) {
  const int64_t ts[3] = {4, 5, 3};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int d = 0; d < 3; d++) {
        tfw_dtype dt = ALL_DT[k];
        tfw_tensor *t = ir_make(dt, 3, ts, lt, lo_of(dt), 20, 1000 + count);
        int64_t m = 7; /* more entries than the dim: duplicates */
        tfw_tensor *index = rand_index(1, &m, ts[d], count % 2, lt == 1 ? 1 : 0, 1100 + count);
        int64_t ss[3] = {ts[0], ts[1], ts[2]};
        ss[d] = m;
        tfw_tensor *src = ir_make(dt, 3, ss, (lt + 1) % 3, lo_of(dt), 20, 1200 + count);
        tfw_tensor *o = tfw_index_add(t, d - 3, index, src);
        double *r = th_values(t), *iv = th_values(index), *sv = th_values(src);
        for (int64_t p = 0; p < ir_numel(3, ss); p++) {
          int64_t pos[3];
          ir_unravel(p, 3, ss, pos);
          pos[d] = (int64_t)iv[pos[d]];
          int64_t at = ir_ravel(3, ts, pos);
          r[at] = dt == TFW_DTYPE_BOOL ? (r[at] != 0 || sv[p] != 0) : r[at] + sv[p];
        }
        wrap_ref(r, ir_numel(3, ts), dt);
        double rtol, atol;
        tol_for(dt, &rtol, &atol);
        th_expect_close(o, dt, 3, ts, r, rtol, atol, "index_add");
        free(r);
        free(iv);
        free(sv);
        tfw_release(o);
        tfw_release(t);
        tfw_release(index);
        tfw_release(src);
        count++;
      }
  th_expect_no_leaks();
}

Test(index, scatter_last_write_wins_in_index_order) {
  const int64_t ts[1] = {3};
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 1, ts);
  const int64_t m[1] = {4};
  const int64_t iv[4] = {1, 1, 2, 1};
  tfw_tensor *index = idx_from(1, m, iv);
  const float sv[4] = {10, 20, 30, 40};
  tfw_tensor *src = tfw_from_data(TFW_DTYPE_F32, 1, m, sv);
  tfw_tensor *o = tfw_scatter(t, 0, index, src);
  const double r[3] = {0, 40, 30};
  th_expect_close(o, TFW_DTYPE_F32, 1, ts, r, 0, 0, "last write");
  tfw_release(o);
  o = tfw_scatter_add(t, 0, index, src);
  const double ra[3] = {0, 70, 30};
  th_expect_close(o, TFW_DTYPE_F32, 1, ts, ra, 0, 0, "scatter_add dups");
  tfw_release(o);
  /* t is unchanged (functional) */
  const double z[3] = {0, 0, 0};
  th_expect_close(t, TFW_DTYPE_F32, 1, ts, z, 0, 0, "t unchanged");
  tfw_release(t);
  tfw_release(index);
  tfw_release(src);
  th_expect_no_leaks();
}

/* Bit-identical results for 1 and 2 threads on problems big enough to run in parallel. */
Test(index, scatter_add_and_index_add_deterministic_across_threads) {
  const int64_t ts[2] = {64, 3000}, is[2] = {512, 3000};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 5);
  tfw_tensor *index = rand_index(2, is, 64, false, L_CONTIG, 6);
  tfw_tensor *src = th_random(TFW_DTYPE_F32, 2, is, -1, 1, 7);
  int64_t m = 512;
  tfw_tensor *index1 = rand_index(1, &m, 64, true, L_CONTIG, 8);
  tfw_tensor *res[2][2];
  for (int th = 0; th < 2; th++) {
    tfw_set_num_threads(th + 1);
    res[th][0] = tfw_scatter_add(t, 0, index, src);
    res[th][1] = tfw_index_add(t, 0, index1, src);
    cr_assert(res[th][0] && res[th][1], "%s", tfw_last_error());
  }
  tfw_set_num_threads(0);
  for (int k = 0; k < 2; k++)
    cr_assert(memcmp(tfw_tensor_data(res[0][k]), tfw_tensor_data(res[1][k]), 64 * 3000 * 4) == 0,
              "op %d differs between 1 and 2 threads", k);
  /* and matches the reference (index order, double accumulation) */
  double *r = ref_scatter(t, index, src, 0, true);
  th_expect_close(res[0][0], TFW_DTYPE_F32, 2, ts, r, 1e-5, 1e-4, "scatter_add big");
  free(r);
  for (int th = 0; th < 2; th++)
    for (int k = 0; k < 2; k++) tfw_release(res[th][k]);
  tfw_release(t);
  tfw_release(index);
  tfw_release(src);
  tfw_release(index1);
  th_expect_no_leaks();
}

Test(index, scatter_edge_cases) {
  /* 0-d t, 0-d index, 0-d src */
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F64, 1.0), *v = tfw_scalar(TFW_DTYPE_F64, 2.5);
  int64_t zero = 0;
  tfw_tensor *i0 = idx_from(0, NULL, &zero);
  tfw_tensor *o = tfw_scatter_add(s, 0, i0, v);
  double r = 3.5;
  th_expect_close(o, TFW_DTYPE_F64, 0, NULL, &r, 0, 0, "scatter_add 0-d");
  tfw_release(o);
  o = tfw_index_add(s, 0, i0, v);
  th_expect_close(o, TFW_DTYPE_F64, 0, NULL, &r, 0, 0, "index_add 0-d");
  tfw_release(o);
  /* empty index leaves t as is */
  const int64_t ts[2] = {2, 3}, es[2] = {2, 0};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 9);
  tfw_tensor *ie = tfw_zeros(TFW_DTYPE_I64, 2, es);
  tfw_tensor *src = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 10);
  o = tfw_scatter(t, 1, ie, src);
  double *tv = th_values(t);
  th_expect_close(o, TFW_DTYPE_F32, 2, ts, tv, 0, 0, "scatter empty");
  free(tv);
  tfw_release(o);
  tfw_release(s);
  tfw_release(v);
  tfw_release(i0);
  tfw_release(t);
  tfw_release(ie);
  tfw_release(src);
  th_expect_no_leaks();
}

/* ---- masked_select / nonzero --------------------------------------------------------------- */

Test(index, masked_select_broadcast_all_dtypes) {
  const int64_t ts[3] = {3, 4, 5};
  const int64_t ms[2][3] = {{3, 4, 5}, {1, 4, 1}};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++)
      for (int mv = 0; mv < 2; mv++) {
        tfw_dtype dt = ALL_DT[k];
        tfw_tensor *t = ir_make(dt, 3, ts, lt, lo_of(dt), 20, 1300 + count);
        /* mask [4, 1] broadcasts against t; t [1,4,1]-shaped broadcast also covered via lt */
        tfw_tensor *mask = ir_make(TFW_DTYPE_BOOL, mv ? 2 : 3, mv ? ms[1] + 1 : ms[0],
                                   (lt + 1) % 3, 0, 2, 1400 + count);
        tfw_tensor *o = tfw_masked_select(t, mask);
        double *tv = th_values(t), *mv_ = th_values(mask);
        double *r = malloc(sizeof(double) * 60);
        int64_t n = 0;
        for (int64_t p = 0; p < 60; p++) {
          int64_t pos[3];
          ir_unravel(p, 3, ts, pos);
          double mk = mv ? mv_[pos[1]] : mv_[p];
          if (mk != 0) r[n++] = tv[p];
        }
        th_expect_close(o, dt, 1, &n, r, 0, 0, "masked_select");
        free(r);
        free(tv);
        free(mv_);
        tfw_release(o);
        tfw_release(t);
        tfw_release(mask);
        count++;
      }
  /* mask larger than t: output follows the broadcast shape */
  int64_t one = 3, two[2] = {2, 3};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 1, &one, -1, 1, 11);
  tfw_tensor *mask = tfw_ones(TFW_DTYPE_BOOL, 2, two);
  tfw_tensor *o = tfw_masked_select(t, mask);
  double *tv = th_values(t);
  double r[6] = {tv[0], tv[1], tv[2], tv[0], tv[1], tv[2]};
  int64_t six = 6;
  th_expect_close(o, TFW_DTYPE_F32, 1, &six, r, 0, 0, "masked_select mask broadcast");
  free(tv);
  tfw_release(o);
  tfw_release(t);
  tfw_release(mask);
  /* empty */
  int64_t e2[2] = {0, 3};
  t = tfw_zeros(TFW_DTYPE_F32, 2, e2);
  mask = tfw_ones(TFW_DTYPE_BOOL, 1, &one);
  o = tfw_masked_select(t, mask);
  int64_t zero = 0;
  th_expect_close(o, TFW_DTYPE_F32, 1, &zero, NULL, 0, 0, "masked_select empty");
  tfw_release(o);
  tfw_release(t);
  tfw_release(mask);
  th_expect_no_leaks();
}

static void check_nonzero(const tfw_tensor *t, const char *what) {
  tfw_tensor *o = tfw_nonzero(t);
  int nd = tfw_tensor_ndim(t);
  const int64_t *ts = tfw_tensor_shape(t);
  int64_t n = ir_numel(nd, ts);
  double *tv = th_values(t);
  double *r = malloc(sizeof(double) * (size_t)(n * (nd ? nd : 1) + 1));
  int64_t cnt = 0;
  for (int64_t p = 0; p < n; p++) {
    if (tv[p] == 0) continue; /* NaN != 0 counts */
    int64_t pos[TFW_MAX_DIMS];
    ir_unravel(p, nd, ts, pos);
    for (int d = 0; d < nd; d++) r[cnt * nd + d] = (double)pos[d];
    cnt++;
  }
  int64_t os[2] = {cnt, nd};
  th_expect_close(o, TFW_DTYPE_I64, 2, os, r, 0, 0, what);
  free(r);
  free(tv);
  tfw_release(o);
}

Test(index, nonzero_all_dtypes_layouts) {
  const int64_t ts[3] = {3, 4, 5};
  int count = 0;
  for (int k = 0; k < N_ALL_DT; k++)
    for (int lt = 0; lt < 3; lt++) {
      tfw_dtype dt = ALL_DT[k];
      tfw_tensor *t = ir_make(dt, 3, ts, lt, dt == TFW_DTYPE_U8 ? 0 : -1, 2, 1500 + count++);
      if (tfw_dtype_is_floating(dt) && lt == L_CONTIG) {
        ir_set(t, 1, NAN);
        ir_set(t, 2, -0.0);
        ir_set(t, 3, 0.25);
      }
      check_nonzero(t, tfw_dtype_name(dt));
      tfw_release(t);
    }
  /* 0-d, empty, large (parallel chunks) */
  tfw_tensor *s = tfw_scalar(TFW_DTYPE_F32, 2);
  check_nonzero(s, "0-d nonzero");
  tfw_release(s);
  s = tfw_scalar(TFW_DTYPE_I32, 0);
  check_nonzero(s, "0-d zero");
  tfw_release(s);
  const int64_t es[2] = {4, 0};
  s = tfw_zeros(TFW_DTYPE_F32, 2, es);
  check_nonzero(s, "empty");
  tfw_release(s);
  const int64_t big[2] = {300, 700};
  s = th_random_strided(TFW_DTYPE_I32, 2, big, -2, 2, 77);
  check_nonzero(s, "big");
  tfw_release(s);
  th_expect_no_leaks();
}

/* ---- errors -------------------------------------------------------------------------------- */

#define EXPECT_NULL_ERR(expr, code, needle)                                   \
  do {                                                                        \
    tfw_tensor *r_ = (expr);                                                  \
    cr_assert(r_ == NULL, "%s: expected an error", #expr);                    \
    th_expect_error(tfw_last_status(), code, needle, #expr);                  \
  } while (0)

Test(index, errors) {
  const int64_t ts[2] = {2, 5};
  tfw_tensor *t = th_random(TFW_DTYPE_F32, 2, ts, -1, 1, 1);
  const int64_t is[2] = {2, 4};
  tfw_tensor *fidx = tfw_zeros(TFW_DTYPE_F32, 2, is);
  EXPECT_NULL_ERR(tfw_gather(t, 1, fidx), TFW_EDTYPE,
                  "gather: index must be an integer tensor, got float32");
  tfw_tensor *i8 = tfw_zeros(TFW_DTYPE_I8, 2, is);
  EXPECT_NULL_ERR(tfw_gather(t, 1, i8), TFW_EDTYPE, "got int8");
  const int64_t bad[8] = {0, 1, 2, 3, 4, 0, 1, 7};
  const int64_t bad2[8] = {0, 0, 0, 7, 0, 0, 0, 0};
  tfw_tensor *ib = idx_from(2, is, bad2);
  EXPECT_NULL_ERR(tfw_gather(t, 1, ib), TFW_EINDEX,
                  "gather: index 7 out of range for dimension 1 of size 5 (at index position [0, 3])");
  tfw_tensor *ib2 = idx_from(2, is, bad);
  EXPECT_NULL_ERR(tfw_gather(t, 1, ib2), TFW_EINDEX, "at index position [1, 3]");
  const int64_t neg[8] = {0, 0, -1, 0, 0, 0, 0, 0};
  tfw_tensor *in = idx_from(2, is, neg);
  EXPECT_NULL_ERR(tfw_gather(t, 1, in), TFW_EINDEX, "index -1 out of range");
  /* int32 index out of range too */
  tfw_tensor *ib32 = tfw_to_dtype(ib, TFW_DTYPE_I32);
  EXPECT_NULL_ERR(tfw_gather(t, 1, ib32), TFW_EINDEX, "index 7 out of range");
  /* shapes */
  const int64_t big[2] = {3, 1};
  tfw_tensor *ibig = tfw_zeros(TFW_DTYPE_I64, 2, big);
  EXPECT_NULL_ERR(tfw_gather(t, 1, ibig), TFW_ESHAPE, "dimension 0 (3 > 2)");
  int64_t three = 3;
  tfw_tensor *i1 = tfw_zeros(TFW_DTYPE_I64, 1, &three);
  EXPECT_NULL_ERR(tfw_gather(t, 1, i1), TFW_ESHAPE, "as many dimensions");
  EXPECT_NULL_ERR(tfw_gather(t, 2, ib), TFW_EINDEX, "dimension 2 out of range");
  EXPECT_NULL_ERR(tfw_gather(t, -3, ib), TFW_EINDEX, "out of range");
  EXPECT_NULL_ERR(tfw_gather(NULL, 0, ib), TFW_EVALUE, "gather");
  EXPECT_NULL_ERR(tfw_gather(t, 0, NULL), TFW_EVALUE, "index");
  /* index_select */
  EXPECT_NULL_ERR(tfw_index_select(t, 0, ib), TFW_ESHAPE, "index must be 0-d or 1-d");
  const int64_t sel[3] = {1, 5, 0};
  tfw_tensor *isel = idx_from(1, &three, sel);
  EXPECT_NULL_ERR(tfw_index_select(t, -1, isel), TFW_EINDEX,
                  "index_select: index 5 out of range for dimension 1 of size 5 (at index position [1])");
  EXPECT_NULL_ERR(tfw_index_select(t, 0, fidx), TFW_EDTYPE, "index must be an integer tensor");
  /* scatter family */
  tfw_tensor *src_small = tfw_zeros(TFW_DTYPE_F32, 2, big);
  EXPECT_NULL_ERR(tfw_scatter(t, 1, ib, src_small), TFW_ESHAPE, "larger than src");
  tfw_tensor *src = tfw_zeros(TFW_DTYPE_F32, 2, is);
  EXPECT_NULL_ERR(tfw_scatter(t, 1, ib, src), TFW_EINDEX,
                  "scatter: index 7 out of range for dimension 1 of size 5 (at index position [0, 3])");
  EXPECT_NULL_ERR(tfw_scatter_add(t, 1, in, src), TFW_EINDEX, "index -1 out of range");
  EXPECT_NULL_ERR(tfw_scatter_add(t, 1, fidx, src), TFW_EDTYPE, "scatter_add: index must be an integer");
  const int64_t wide[2] = {2, 6};
  tfw_tensor *iwide = tfw_zeros(TFW_DTYPE_I64, 2, wide), *swide = tfw_zeros(TFW_DTYPE_F32, 2, wide);
  EXPECT_NULL_ERR(tfw_scatter(t, 0, iwide, swide), TFW_ESHAPE,
                  "larger than t [2, 5] at dimension 1 (6 > 5)");
  EXPECT_NULL_ERR(tfw_scatter(t, 1, ib, NULL), TFW_EVALUE, "src");
  EXPECT_NULL_ERR(tfw_index_add(t, 1, isel, src), TFW_ESHAPE, "src has size 4 at dimension 1 but index has 3");
  const int64_t ss[2] = {3, 3};
  tfw_tensor *src33 = tfw_zeros(TFW_DTYPE_F32, 2, ss);
  EXPECT_NULL_ERR(tfw_index_add(t, 1, isel, src33), TFW_ESHAPE, "differ at dimension 0");
  const int64_t ss2[2] = {2, 3};
  tfw_tensor *src23 = tfw_zeros(TFW_DTYPE_F32, 2, ss2);
  EXPECT_NULL_ERR(tfw_index_add(t, 1, isel, src23), TFW_EINDEX, "index_add: index 5 out of range");
  /* take_along_dim */
  const int64_t tb[2] = {3, 2};
  tfw_tensor *itb = tfw_zeros(TFW_DTYPE_I64, 2, tb);
  EXPECT_NULL_ERR(tfw_take_along_dim(t, itb, 1), TFW_ESHAPE, "cannot be broadcast at dimension 0");
  EXPECT_NULL_ERR(tfw_take_along_dim(t, i1, 1), TFW_ESHAPE, "same number of dimensions");
  EXPECT_NULL_ERR(tfw_take_along_dim(t, ib, 1), TFW_EINDEX, "take_along_dim: index 7 out of range");
  /* masked_select */
  EXPECT_NULL_ERR(tfw_masked_select(t, fidx), TFW_EDTYPE, "mask must be a bool tensor, got float32");
  tfw_tensor *m3 = tfw_ones(TFW_DTYPE_BOOL, 1, &three);
  EXPECT_NULL_ERR(tfw_masked_select(t, m3), TFW_ESHAPE, "cannot be broadcast");
  EXPECT_NULL_ERR(tfw_masked_select(NULL, m3), TFW_EVALUE, "masked_select");
  EXPECT_NULL_ERR(tfw_nonzero(NULL), TFW_EVALUE, "nonzero");
  tfw_tensor *all[] = {t, fidx, i8, ib, ib2, in, ib32, ibig, i1, isel, src_small, src, src33,
                       src23, itb, m3, iwide, swide};
  for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) tfw_release(all[k]);
  th_expect_no_leaks();
}

Test(index, out_of_memory_is_clean) {
  const int64_t ts[2] = {8, 9};
  tfw_tensor *t = th_random(TFW_DTYPE_F16, 2, ts, -1, 1, 1);
  tfw_tensor *index = rand_index(2, ts, 8, true, L_CONTIG, 2);
  tfw_tensor *src = th_random(TFW_DTYPE_F64, 2, ts, -1, 1, 3);
  tfw_tensor *mask = th_random(TFW_DTYPE_BOOL, 2, ts, 0, 2, 4);
  int failures = 0;
  for (int n = 1; n < 16; n++) {
    tfw_memory_fail_at(n, false);
    tfw_tensor *o = tfw_scatter_add(t, 0, index, src);
    tfw_memory_fail_at(0, false);
    if (!o) {
      th_expect_error(tfw_last_status(), TFW_ENOMEM, NULL, "scatter_add oom");
      failures++;
    }
    tfw_release(o);
    tfw_memory_fail_at(n, false);
    o = tfw_masked_select(t, mask);
    tfw_memory_fail_at(0, false);
    if (!o) th_expect_error(tfw_last_status(), TFW_ENOMEM, NULL, "masked_select oom");
    tfw_release(o);
  }
  cr_assert(failures > 0, "the allocation-failure hook never hit scatter_add");
  tfw_release(t);
  tfw_release(index);
  tfw_release(src);
  tfw_release(mask);
  th_expect_no_leaks();
}

Test(index, registry_samples_run) {
  static const char *const names[] = {"index_select", "gather", "take_along_dim", "scatter",
                                      "scatter_add", "index_add", "masked_select", "nonzero",
                                      NULL};
  ir_run_samples(names);
  th_expect_no_leaks();
}
