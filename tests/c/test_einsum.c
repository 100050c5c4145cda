/* Tests of einsum against a naive nested-loop evaluator written here (double precision,
 * one odometer over every label), on contiguous, strided and broadcast inputs, plus the
 * equation errors. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ops/registry.h"
#include "ops/samples.h"

/* ---- reference ------------------------------------------------------------------------- */

/* Evaluates a letters-only explicit equation ("ij,jk->ik") in double. A label's size is
 * the largest over its occurrences; an operand dim of size 1 broadcasts (index 0), which
 * lets "...": written as capital letters here, be checked too. */
static double *ref_einsum(const char *eq, int n, tfw_tensor *const *ops, int *ond,
                          int64_t *oshape, double *bound) {
  int64_t size[128];
  for (int i = 0; i < 128; i++) size[i] = -1;
  const char *terms[8];
  int tlen[8];
  const char *p = eq;
  for (int k = 0; k < n; k++) {
    terms[k] = p;
    while (*p != ',' && *p != '-') p++;
    tlen[k] = (int)(p - terms[k]);
    cr_assert_eq(tlen[k], tfw_tensor_ndim(ops[k]), "reference: bad test equation %s", eq);
    for (int d = 0; d < tlen[k]; d++) {
      int64_t s = tfw_tensor_shape(ops[k])[d];
      int l = terms[k][d];
      if (size[l] < 0 || size[l] == 1) size[l] = s;
    }
    p++;
  }
  cr_assert(p[-1] == '-' && p[0] == '>', "reference: equation %s needs '->'", eq);
  const char *out = p + 1;
  int no = (int)strlen(out);
  /* all labels: the output's first, then the summed ones */
  int labs[64], nl = 0;
  bool used[128] = {false};
  for (int i = 0; i < no; i++) {
    labs[nl++] = out[i];
    used[(int)out[i]] = true;
  }
  for (int k = 0; k < n; k++)
    for (int d = 0; d < tlen[k]; d++)
      if (!used[(int)terms[k][d]]) {
        used[(int)terms[k][d]] = true;
        labs[nl++] = terms[k][d];
      }
  *ond = no;
  int64_t onumel = 1, total = 1;
  for (int i = 0; i < no; i++) onumel *= oshape[i] = size[(int)out[i]];
  for (int i = 0; i < nl; i++) total *= size[labs[i]];
  double *vals[8];
  for (int k = 0; k < n; k++) vals[k] = th_values(ops[k]);
  double *res = calloc((size_t)(onumel + 1), sizeof(double));
  double *absum = calloc((size_t)(onumel + 1), sizeof(double));
  int64_t idx[128] = {0};
  int64_t cur[64] = {0};
  for (int64_t e = 0; e < total; e++) {
    for (int i = 0; i < nl; i++) idx[labs[i]] = cur[i];
    double prod = 1;
    for (int k = 0; k < n; k++) {
      const int64_t *sh = tfw_tensor_shape(ops[k]);
      int64_t off = 0;
      for (int d = 0; d < tlen[k]; d++)
        off = off * sh[d] + (sh[d] == 1 ? 0 : idx[(int)terms[k][d]]);
      prod *= vals[k][off];
    }
    int64_t oo = 0;
    for (int i = 0; i < no; i++) oo = oo * oshape[i] + idx[(int)out[i]];
    res[oo] += prod;
    absum[oo] += fabs(prod);
    for (int i = nl - 1; i >= 0 && ++cur[i] == size[labs[i]]; i--) cur[i] = 0;
  }
  for (int k = 0; k < n; k++) free(vals[k]);
  *bound = 0;
  for (int64_t i = 0; i < onumel; i++)
    if (absum[i] > *bound) *bound = absum[i];
  free(absum);
  return res;
}

static double tol(tfw_dtype dt, double scale) {
  return tfw_dtype_is_floating(dt) ? 8 * th_eps(dt) * scale : 0;
}

typedef enum { L_CONTIG, L_STRIDED, L_BROADCAST } layout;

static tfw_tensor *make(tfw_dtype dt, int nd, const int64_t *shape, layout l, uint64_t seed) {
  double lo = tfw_dtype_is_floating(dt) ? -1 : -4, hi = -lo;
  if (l == L_STRIDED && nd > 0) return th_random_strided(dt, nd, shape, lo, hi, seed);
  if (l == L_BROADCAST && nd > 0) {
    int64_t s[8];
    memcpy(s, shape, sizeof(int64_t) * (size_t)nd);
    s[nd - 1] = 1;
    tfw_tensor *t = th_random(dt, nd, s, lo, hi, seed);
    tfw_tensor *v = tfw_expand(t, nd, shape);
    cr_assert(v, "expand: %s", tfw_last_error());
    tfw_release(t);
    return v;
  }
  return th_random(dt, nd, shape, lo, hi, seed);
}

typedef struct ecase {
  const char *eq;  /* what einsum gets */
  const char *ref; /* the same, letters only and explicit, for the reference */
  int n;
  int nd[4];
  int64_t shape[4][6];
} ecase;

static const ecase k_cases[] = {
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{3, 4}, {4, 5}}},
    {"ij->ji", "ij->ji", 1, {2}, {{3, 5}}},
    {"ii->i", "ii->i", 1, {2}, {{4, 4}}},
    {"ii", "ii->", 1, {2}, {{5, 5}}},
    {"ij->", "ij->", 1, {2}, {{3, 7}}},
    {"bij,bjk->bik", "bij,bjk->bik", 2, {3, 3}, {{2, 3, 4}, {2, 4, 5}}},
    {"i,i->", "i,i->", 2, {1, 1}, {{9}, {9}}},
    {"i,j->ij", "i,j->ij", 2, {1, 1}, {{3}, {4}}},
    {"...ij,...jk->...ik", "XYij,Yjk->XYik", 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}},
    {"ijk,ikl->jl", "ijk,ikl->jl", 2, {3, 3}, {{3, 4, 5}, {3, 5, 2}}},
    {"ij,jk,kl->il", "ij,jk,kl->il", 3, {2, 2, 2}, {{2, 3}, {3, 4}, {4, 5}}},
    /* implicit outputs, uppercase before lowercase, spaces */
    {"ij,jk", "ij,jk->ik", 2, {2, 2}, {{3, 4}, {4, 2}}},
    {"ba", "ba->ab", 1, {2}, {{3, 2}}},
    {"bA, Ac", "bA,Ac->bc", 2, {2, 2}, {{2, 3}, {3, 4}}},
    {"aB,Bc", "aB,Bc->ac", 2, {2, 2}, {{2, 3}, {3, 4}}},
    {"zA", "zA->Az", 1, {2}, {{2, 3}}},
    /* diagonals inside a contraction, batch-only (Hadamard), private sums */
    {"iij,jk->ik", "iij,jk->ik", 2, {3, 2}, {{3, 3, 4}, {4, 2}}},
    {"ij,ij->ij", "ij,ij->ij", 2, {2, 2}, {{3, 4}, {3, 4}}},
    {"ijk,jl->l", "ijk,jl->l", 2, {3, 2}, {{2, 3, 4}, {3, 5}}},
    {"ij,kl->ijkl", "ij,kl->ijkl", 2, {2, 2}, {{2, 3}, {2, 2}}},
    {"i,i,i->i", "i,i,i->i", 3, {1, 1, 1}, {{5}, {5}, {5}}},
    {"iji->j", "iji->j", 1, {3}, {{3, 4, 3}}},
    /* "..." forms */
    {"...ii->...i", "Xii->Xi", 1, {3}, {{2, 3, 3}}},
    {"i...->...", "iX->X", 1, {2}, {{3, 4}}},
    {"...,...->...", "XY,Y->XY", 2, {2, 1}, {{2, 3}, {3}}},
    {"...ij,...jk", "XYij,Yjk->XYik", 2, {4, 3}, {{2, 1, 2, 3}, {4, 3, 2}}},
    {"ij...->ij", "ijX->ij", 1, {3}, {{2, 3, 4}}},
    {"...ij->ij", "ij->ij", 1, {2}, {{2, 3}}},
    /* 0-d and empty operands */
    {",i->i", ",i->i", 2, {0, 1}, {{0}, {4}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{2, 0}, {0, 3}}},
    {"ij,jk->ik", "ij,jk->ik", 2, {2, 2}, {{0, 3}, {3, 2}}},
    {"ij->", "ij->", 1, {2}, {{0, 3}}},
    /* more than 8 dims in an intermediate; groups that must be copied */
    {"abcde,fghij,acegi,bdfhj->", "abcde,fghij,acegi,bdfhj->", 4, {5, 5, 5, 5},
     {{2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}}},
    {"abcde,fghij,acegi->bdfhj", "abcde,fghij,acegi->bdfhj", 3, {5, 5, 5},
     {{2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}, {2, 2, 2, 2, 2}}},
    {"ikj,kjl->il", "ikj,kjl->il", 2, {3, 3}, {{3, 4, 5}, {4, 5, 2}}},
};

static void run_case(const ecase *c, tfw_dtype dt, layout l, uint64_t seed) {
  tfw_tensor *ops[4];
  for (int k = 0; k < c->n; k++)
    ops[k] = make(dt, c->nd[k], c->shape[k], c->nd[k] > 0 ? (layout)((l + k) % 3) : L_CONTIG,
                  seed + k);
  int ond;
  int64_t os[8];
  double bound;
  double *ref = ref_einsum(c->ref, c->n, ops, &ond, os, &bound);
  tfw_tensor *o = tfw_einsum(c->eq, c->n, ops);
  char what[128];
  snprintf(what, sizeof what, "einsum \"%s\" %s layout %d", c->eq, tfw_dtype_name(dt), l);
  if (!tfw_dtype_is_floating(dt)) { /* the result wraps like the dtype */
    int64_t on = 1;
    for (int d = 0; d < ond; d++) on *= os[d];
    for (int64_t i = 0; i < on && dt == TFW_DTYPE_I32; i++)
      ref[i] = (int32_t)(uint32_t)(uint64_t)(int64_t)ref[i];
  }
  th_expect_close(o, dt, ond, os, ref, 0, tol(dt, bound + 1e-3), what);
  tfw_release(o);
  free(ref);
  for (int k = 0; k < c->n; k++) tfw_release(ops[k]);
}

Test(einsum, cases_all_dtypes_and_layouts) {
  const tfw_dtype dts[] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_F16, TFW_DTYPE_BF16,
                           TFW_DTYPE_I32, TFW_DTYPE_I64};
  for (size_t c = 0; c < sizeof k_cases / sizeof k_cases[0]; c++)
    for (int di = 0; di < 6; di++)
      for (int l = 0; l < 3; l++) run_case(&k_cases[c], dts[di], (layout)l, 100 * c + l);
  th_expect_no_leaks();
}

Test(einsum, mixed_dtypes_promote) {
  int64_t s1[2] = {3, 4}, s2[2] = {4, 2};
  tfw_tensor *ops[2] = {th_random(TFW_DTYPE_I32, 2, s1, -3, 3, 1),
                        th_random(TFW_DTYPE_F16, 2, s2, -1, 1, 2)};
  int ond;
  int64_t os[8];
  double bound;
  double *ref = ref_einsum("ij,jk->ik", 2, ops, &ond, os, &bound);
  tfw_tensor *o = tfw_einsum("ij,jk->ik", 2, ops);
  th_expect_close(o, TFW_DTYPE_F16, ond, os, ref, 0, 0.05, "i32 x f16 -> f16");
  tfw_release(o);
  free(ref);
  tfw_release(ops[0]);
  tfw_release(ops[1]);
  th_expect_no_leaks();
}

Test(einsum, results_identical_for_any_thread_count) {
  int64_t s1[3] = {30, 12, 17}, s2[3] = {30, 17, 9};
  tfw_tensor *ops[2] = {th_random(TFW_DTYPE_F32, 3, s1, -1, 1, 1),
                        th_random_strided(TFW_DTYPE_F32, 3, s2, -1, 1, 2)};
  const char *eqs[] = {"bij,bjk->bik", "bij,bjk->k", "bij->j"};
  for (int e = 0; e < 3; e++) {
    int n = e == 2 ? 1 : 2;
    tfw_set_num_threads(1);
    tfw_tensor *r1 = tfw_einsum(eqs[e], n, ops);
    tfw_set_num_threads(3);
    tfw_tensor *r3 = tfw_einsum(eqs[e], n, ops);
    tfw_set_num_threads(0);
    cr_assert(r1 && r3, "%s: %s", eqs[e], tfw_last_error());
    size_t nb = (size_t)tfw_tensor_numel(r1) * 4;
    cr_assert(memcmp(tfw_tensor_data(r1), tfw_tensor_data(r3), nb) == 0,
              "%s differs between 1 and 3 threads", eqs[e]);
    tfw_release(r1);
    tfw_release(r3);
  }
  tfw_release(ops[0]);
  tfw_release(ops[1]);
  th_expect_no_leaks();
}

/* ---- errors ---------------------------------------------------------------------------- */

static void expect_einsum_error(const char *eq, int n, tfw_tensor *const *ops, tfw_status code,
                                const char *needle) {
  tfw_tensor *o = tfw_einsum(eq, n, ops);
  cr_assert(o == NULL, "einsum \"%s\": expected an error", eq ? eq : "(null)");
  th_expect_error(tfw_last_status(), code, needle, eq ? eq : "(null)");
}

Test(einsum, errors) {
  int64_t s23[2] = {2, 3}, s45[2] = {4, 5}, s34[2] = {3, 4}, s3[1] = {3}, s4[1] = {4};
  tfw_tensor *a = tfw_zeros(TFW_DTYPE_F32, 2, s23), *b = tfw_zeros(TFW_DTYPE_F32, 2, s45);
  tfw_tensor *c = tfw_zeros(TFW_DTYPE_F32, 2, s34), *v3 = tfw_zeros(TFW_DTYPE_F32, 1, s3);
  tfw_tensor *v4 = tfw_zeros(TFW_DTYPE_F32, 1, s4), *bo = tfw_zeros(TFW_DTYPE_BOOL, 2, s23);
  tfw_tensor *ab[2] = {a, b}, *ac[2] = {a, c}, *aac[3] = {a, a, c}, *v34[2] = {v3, v4};

  expect_einsum_error("ij,jk->ik", 2, ab, TFW_ESHAPE,
                      "einsum: subscript 'j' has size 3 in operand 0 and size 4 in operand 1");
  expect_einsum_error("ij,jk->ik", 3, aac, TFW_EVALUE,
                      "has subscripts for 2 operands but 3 tensors were given");
  expect_einsum_error("ij,jk,kl->il", 2, ac, TFW_EVALUE,
                      "has subscripts for 3 operands but 2 tensors were given");
  expect_einsum_error("ij;jk->ik", 2, ac, TFW_EVALUE, "invalid character ';' at position 2");
  expect_einsum_error("i1,jk->ik", 2, ac, TFW_EVALUE, "invalid character '1'");
  expect_einsum_error("ij,jk-ik", 2, ac, TFW_EVALUE, "invalid character '-'");
  expect_einsum_error("ij,jk>ik", 2, ac, TFW_EVALUE, "invalid character '>'");
  expect_einsum_error("ij,jk->i,k", 2, ac, TFW_EVALUE, "invalid character ','");
  expect_einsum_error("ij,jk->ik->i", 2, ac, TFW_EVALUE, "more than one '->'");
  expect_einsum_error("ii", 1, &a, TFW_ESHAPE,
                      "subscript 'i' has size 2 in operand 0 and size 3 in operand 0");
  expect_einsum_error("ijk", 1, &a, TFW_ESHAPE,
                      "einsum: operand 0 has 2 dimensions but its subscripts \"ijk\" name 3");
  expect_einsum_error("i", 1, &a, TFW_ESHAPE, "name 1");
  expect_einsum_error("...ijk", 1, &a, TFW_ESHAPE, "name at least 3");
  expect_einsum_error("ij->k", 1, &a, TFW_EVALUE,
                      "output subscript 'k' of \"ij->k\" does not appear in any operand");
  expect_einsum_error("ij->ii", 1, &a, TFW_EVALUE, "output subscript 'i' appears more than once");
  expect_einsum_error("i.j", 1, &a, TFW_EVALUE, "is not part of a single '...'");
  expect_einsum_error("......", 1, &a, TFW_EVALUE, "is not part of a single '...'");
  expect_einsum_error("..", 1, &a, TFW_EVALUE, "is not part of a single '...'");
  expect_einsum_error("...,...->...", 2, v34, TFW_ESHAPE,
                      "do not broadcast over '...': size 3 in operand 0 and size 4 in operand 1");
  expect_einsum_error("ij,kj->ik", 2, (tfw_tensor *[]){bo, bo}, TFW_EDTYPE, "bool");
  expect_einsum_error("i\x01j", 1, &a, TFW_EVALUE, "invalid byte 0x01");
  char longeq[80];
  memset(longeq, 'i', 70);
  longeq[70] = 0;
  expect_einsum_error(longeq, 1, &a, TFW_EVALUE, "70 characters long; at most 63");
  expect_einsum_error(NULL, 1, &a, TFW_EVALUE, "equation");
  expect_einsum_error("ij", 0, &a, TFW_EVALUE, "0 operands given");
  expect_einsum_error("ij", 9, &a, TFW_EVALUE, "9 operands given");
  expect_einsum_error("ij", 1, NULL, TFW_EVALUE, "operands");
  expect_einsum_error("ij", 1, (tfw_tensor *[]){NULL}, TFW_EVALUE, "NULL");
  expect_einsum_error("abcdefghi", 1, (tfw_tensor *[]){a}, TFW_ESHAPE, "name 9");
  /* too many output dims: 9 letters from operands of at most 8 */
  int64_t s5[5] = {1, 1, 1, 1, 1};
  tfw_tensor *f5 = tfw_zeros(TFW_DTYPE_F32, 5, s5);
  expect_einsum_error("abcde,fghij", 2, (tfw_tensor *[]){f5, f5}, TFW_ESHAPE,
                      "would have 10 dimensions; at most 8");
  tfw_release(f5);

  tfw_tensor *all[] = {a, b, c, v3, v4, bo};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tfw_release(all[i]);
  th_expect_no_leaks();
}

Test(einsum, huge_results_fail_cleanly) {
  /* expanded views cost no memory; results of 2^60 or 2^90 elements must fail */
  int64_t one[2] = {1, 1}, big[2] = {1ll << 30, 1ll << 30};
  tfw_tensor *base = tfw_zeros(TFW_DTYPE_F32, 2, one);
  tfw_tensor *m = tfw_expand(base, 2, big);
  tfw_tensor *v = tfw_select(m, 0, 0);
  cr_assert(m && v, "%s", tfw_last_error());
  const char *eqs[] = {"i,j->ij", "i,j,ij->", "ij,k->ijk"};
  const int ns[] = {2, 3, 2};
  for (int e = 0; e < 3; e++) {
    tfw_tensor *o = tfw_einsum(eqs[e], ns[e], (tfw_tensor *[]){e == 2 ? m : v, v, m});
    cr_assert(o == NULL, "%s: a huge result must fail", eqs[e]);
    cr_assert(tfw_last_status() == TFW_ESHAPE || tfw_last_status() == TFW_ENOMEM, "%s: %s",
              eqs[e], tfw_last_error());
  }
  tfw_release(v);
  tfw_release(m);
  tfw_release(base);
  th_expect_no_leaks();
}

Test(einsum, out_of_memory_is_clean) {
  int64_t s1[3] = {2, 3, 4}, s2[2] = {4, 3};
  tfw_tensor *ops[3] = {th_random_strided(TFW_DTYPE_BF16, 3, s1, -1, 1, 1),
                        th_random(TFW_DTYPE_F32, 2, s2, -1, 1, 2),
                        th_random_strided(TFW_DTYPE_I64, 2, s2, -3, 3, 3)};
  const char *eqs[] = {"bij,jk->bk", "bij,jk,jl->bkl", "bij->jb"};
  const int ns[] = {2, 3, 1};
  for (int e = 0; e < 3; e++)
    for (int n = 1; n < 16; n++) {
      tfw_memory_fail_at(n, false);
      tfw_tensor *o = tfw_einsum(eqs[e], ns[e], ops);
      tfw_memory_fail_at(0, false);
      if (!o) th_expect_error(tfw_last_status(), TFW_ENOMEM, "out of memory", eqs[e]);
      tfw_release(o);
    }
  for (int k = 0; k < 3; k++) tfw_release(ops[k]);
  th_expect_no_leaks();
}

Test(einsum, registry_samples_run) {
  const tfw__op_def *op = &tfw__ops[TFW__OP_einsum];
  tfw__call calls[8];
  int n = op->sample(op, calls, 8);
  cr_assert(n >= 2, "einsum: only %d samples", n);
  for (int s = 0; s < n; s++) {
    tfw_tensor *out[TFW__MAX_OUT] = {NULL, NULL};
    cr_assert_eq(tfw__op_run_multi(&calls[s], out), TFW_OK, "einsum sample %d (%s): %s", s,
                 calls[s].a.str, tfw_last_error());
    tfw_release(out[0]);
  }
  tfw__samples_free(calls, n);
  /* a capped call writes no more than cap */
  n = op->sample(op, calls, 1);
  cr_assert_eq(n, 1);
  tfw__samples_free(calls, n);
  th_expect_no_leaks();
}
