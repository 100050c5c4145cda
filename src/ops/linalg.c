/* Matrix products: matmul, bmm, addmm, baddbmm, outer, dot, and the batched engine they
 * and einsum (einsum.c) share.
 *
 * Letters: a [batch..., n, k] @ b [batch..., k, m] -> out [batch..., n, m]; nbatch is the
 * product of the batch dims.
 *
 * Floating dtypes go to the packed GEMM of src/cpu/gemm.c: f32 and f64 directly; f16 and
 * bf16 are converted to f32, multiplied, and rounded back once at the end (f32
 * accumulation, DESIGN §5). The GEMM takes any row and column strides, so an operand whose
 * matrix has a unit stride in either dim (row-major, transposed, a column slice) is passed
 * as it is: the GEMM packs panels anyway and reads such a layout at full speed. Any other
 * layout (two large strides) is made contiguous first, because packing from it walks
 * memory a cache line per element. Batch dims are walked with their strides, broadcast
 * dims carrying stride 0, so broadcasting copies nothing.
 *
 * Threads: a matrix at or above the GEMM's own threading floor (64^3 multiply-adds) is
 * threaded inside the GEMM, one batch entry after the other. Smaller matrices are spread
 * over threads by batch entry with tfw__parallel_for; the GEMM sees it is inside a parallel
 * region and stays on its thread. Every result element is reduced in the same order either
 * way, so results are bit-identical for any thread count.
 *
 * Integer dtypes accumulate exactly in int64 (wrapping like PyTorch) with a row-oriented
 * loop: for a row i of a, w[j] += a[i,kk] * b[kk,j] over a block of 256 columns that stays
 * in L1 while kk runs. Rows are spread over threads; integer sums are exact, so the order
 * does not matter. Integer matmuls are rare in training, so this stays simple. Bool is
 * rejected with TFW_EDTYPE, like PyTorch ("not implemented for 'Bool'"). */
#include <math.h>

#include "cpu/gemm.h"
#include "ops/linalg.h"
#include "ops/registry.h"
#include "ops/samples.h"

/* Below this many multiply-adds per matrix the GEMM runs single-threaded (gemm.c's
 * TFW__GEMM_MT_FLOOR), so batches of such matrices are parallelised over the batch. */
#define MM_SMALL (64.0 * 64.0 * 64.0)
/* Work (multiply-adds) per parallel chunk: tens of microseconds. */
#define MM_GRAIN_WORK 65536
/* Integer loop: columns of the output row kept hot while kk runs. */
#define MM_INT_JBLOCK 256

/* ---- the engine ------------------------------------------------------------------------ */

static tfw_dtype compute_dtype(tfw_dtype out) {
  if (out == TFW_DTYPE_F64) return TFW_DTYPE_F64;
  if (tfw_dtype_is_floating(out)) return TFW_DTYPE_F32;
  return TFW_DTYPE_I64;
}

/* t as dtype ct with a unit stride in one of its two matrix dims (a new reference). */
static tfw_tensor *gemm_operand(const tfw_tensor *t, tfw_dtype ct) {
  int r = t->ndim;
  int64_t rows = t->shape[r - 2], cols = t->shape[r - 1];
  int64_t rs = t->strides[r - 2], cs = t->strides[r - 1];
  if (t->dtype == ct && (cs == 1 || rs == 1 || rows <= 1 || cols <= 1))
    return tfw_retain((tfw_tensor *)t);
  return tfw__as_contiguous(t, ct);
}

typedef struct mm_job {
  tfw_dtype ct;
  int nb;                       /* batch dims */
  const int64_t *bshape;        /* [nb] */
  int64_t sa[TFW_MAX_DIMS], sb[TFW_MAX_DIMS], sw[TFW_MAX_DIMS]; /* batch strides */
  char *pa, *pb, *pw;           /* element [0, ...] of A, B, W */
  int64_t n, m, k;
  int64_t rsa, csa, rsb, csb, rsw, csw;
  double alpha, beta;           /* beta is 0 when there is no c */
} mm_job;

static void gemm_one(const mm_job *j, int64_t bi) {
  int64_t oa = 0, ob = 0, ow = 0;
  for (int d = j->nb - 1; d >= 0; d--) {
    int64_t i = bi % j->bshape[d];
    bi /= j->bshape[d];
    oa += i * j->sa[d];
    ob += i * j->sb[d];
    ow += i * j->sw[d];
  }
  if (j->ct == TFW_DTYPE_F32)
    tfw__sgemm(j->n, j->m, j->k, (float)j->alpha, (const float *)j->pa + oa, j->rsa, j->csa,
               (const float *)j->pb + ob, j->rsb, j->csb, (float)j->beta, (float *)j->pw + ow,
               j->rsw, j->csw);
  else
    tfw__dgemm(j->n, j->m, j->k, j->alpha, (const double *)j->pa + oa, j->rsa, j->csa,
               (const double *)j->pb + ob, j->rsb, j->csb, j->beta, (double *)j->pw + ow,
               j->rsw, j->csw);
}

static void gemm_range(int64_t b0, int64_t b1, void *ctx) {
  for (int64_t bi = b0; bi < b1; bi++) gemm_one(ctx, bi);
}

/* Rows [r0, r1) of the flattened [nbatch * n, m] int64 output; A, B, W contiguous. The
 * arithmetic is unsigned so that overflow wraps (defined) like PyTorch's int64. */
static void int_rows(int64_t r0, int64_t r1, void *ctx) {
  const mm_job *j = ctx;
  const int64_t n = j->n, m = j->m, k = j->k;
  const uint64_t ia = (uint64_t)(int64_t)j->alpha, ib = (uint64_t)(int64_t)j->beta;
  for (int64_t r = r0; r < r1; r++) {
    int64_t bi = r / n;
    const int64_t *arow = (const int64_t *)j->pa + r * k;     /* a[bi, i, :] */
    const int64_t *bmat = (const int64_t *)j->pb + bi * k * m; /* b[bi, :, :] */
    uint64_t *w = (uint64_t *)j->pw + r * m;                   /* w[bi, i, :] */
    if (j->beta != 0)
      for (int64_t c = 0; c < m; c++) w[c] *= ib;
    else
      for (int64_t c = 0; c < m; c++) w[c] = 0;
    for (int64_t c0 = 0; c0 < m; c0 += MM_INT_JBLOCK) {
      int64_t c1 = c0 + MM_INT_JBLOCK < m ? c0 + MM_INT_JBLOCK : m;
      for (int64_t kk = 0; kk < k; kk++) {
        uint64_t av = ia * (uint64_t)arow[kk];
        if (av == 0) continue;
        const int64_t *brow = bmat + kk * m;
        for (int64_t c = c0; c < c1; c++) w[c] += av * (uint64_t)brow[c];
      }
    }
  }
}

static int64_t grain_for(double work_per_item) {
  double g = MM_GRAIN_WORK / (work_per_item > 1 ? work_per_item : 1);
  return g < 1 ? 1 : (int64_t)g;
}

tfw_status tfw__matmul_strided(const char *op, const tfw_tensor *a, const tfw_tensor *bm,
                               tfw_tensor *out, const tfw_tensor *c, double alpha, double beta) {
  const int r = out->ndim;
  TFW_ASSERT(r >= 2 && a->ndim == r && bm->ndim == r);
  const int nb = r - 2;
  const int64_t n = out->shape[r - 2], m = out->shape[r - 1], k = a->shape[r - 1];
  const int64_t nbatch = tfw__numel(nb, out->shape);
  const tfw_dtype ct = compute_dtype(out->dtype);
  const bool use_c = c != NULL && beta != 0;
  tfw_tensor *A = NULL, *B = NULL, *W = NULL;
  tfw_status st = TFW_OK;

  /* W: where the product is computed (out itself when its dtype is the compute dtype). */
  const bool direct = out->dtype == ct && (ct != TFW_DTYPE_I64 || tfw__is_contiguous(out));
  W = direct ? tfw_retain(out) : tfw__tensor_new(op, ct, r, out->shape);
  if (!W) return tfw_last_status();
  if (use_c && (st = tfw__copy_cast(W, c)) != TFW_OK) goto done;
  if (nbatch == 0 || n == 0 || m == 0) goto finish;

  if (ct == TFW_DTYPE_I64) {
    A = tfw__as_contiguous(a, ct);
    B = tfw__as_contiguous(bm, ct);
  } else {
    A = gemm_operand(a, ct);
    B = gemm_operand(bm, ct);
  }
  if (!A || !B) {
    st = tfw_last_status();
    goto done;
  }
  mm_job j = {.ct = ct, .nb = nb, .bshape = out->shape, .pa = tfw__data(A), .pb = tfw__data(B),
              .pw = tfw__data(W), .n = n, .m = m, .k = k, .rsa = A->strides[r - 2],
              .csa = A->strides[r - 1], .rsb = B->strides[r - 2], .csb = B->strides[r - 1],
              .rsw = W->strides[r - 2], .csw = W->strides[r - 1], .alpha = alpha,
              .beta = use_c ? beta : 0};
  for (int d = 0; d < nb; d++) {
    /* a dim of size 1 may carry any stride: broadcast it with stride 0 */
    j.sa[d] = A->shape[d] == 1 ? 0 : A->strides[d];
    j.sb[d] = B->shape[d] == 1 ? 0 : B->strides[d];
    j.sw[d] = W->strides[d];
  }
  const double mnk = (double)n * (double)m * (double)k;
  if (ct == TFW_DTYPE_I64)
    tfw__parallel_for(nbatch * n, grain_for((double)m * (double)k), int_rows, &j);
  else if (nbatch == 1)
    gemm_one(&j, 0);
  else if (mnk < MM_SMALL)
    tfw__parallel_for(nbatch, grain_for(mnk > 0 ? mnk : (double)n * (double)m), gemm_range, &j);
  else
    gemm_range(0, nbatch, &j);

finish:
  if (!direct) st = tfw__copy_cast(out, W);
done:
  tfw_release(A);
  tfw_release(B);
  tfw_release(W);
  return st;
}

/* ---- shape inference ------------------------------------------------------------------- */

#define SHAPE(buf, t) tfw__shape_str(buf, sizeof buf, (t)->ndim, (t)->shape)

static tfw_status result_dtype(const tfw__call *c, tfw_dtype *dt) {
  tfw_dtype r = c->in[0]->dtype;
  for (int i = 1; i < c->n_in; i++) r = tfw_promote_types(r, c->in[i]->dtype);
  if (r == TFW_DTYPE_BOOL)
    return tfw__error(TFW_EDTYPE, "%s: not implemented for bool tensors; cast to an integer "
                      "or floating dtype first", c->op->name);
  *dt = r;
  return TFW_OK;
}

static tfw_status need_ndim(const char *op, const char *arg, const tfw_tensor *t, int nd) {
  if (t->ndim == nd) return TFW_OK;
  char b[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: %s must be %d-d, got shape %s", op, arg, nd, SHAPE(b, t));
}

static tfw_status inner_error(const char *op, const tfw_tensor *a, const tfw_tensor *b,
                              int64_t ka, int64_t kb) {
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: inner dimensions differ: a is %s, b is %s (%lld != %lld)",
                    op, SHAPE(b1, a), SHAPE(b2, b), (long long)ka, (long long)kb);
}

/* c must broadcast to the result shape (nd, shape) without growing it. */
static tfw_status check_c(const char *op, const tfw_tensor *c, int nd, const int64_t *shape) {
  bool ok = c->ndim <= nd;
  for (int d = 0; ok && d < c->ndim; d++) {
    int64_t cs = c->shape[c->ndim - 1 - d], rs = shape[nd - 1 - d];
    ok = cs == rs || cs == 1;
  }
  if (ok) return TFW_OK;
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  return tfw__error(TFW_ESHAPE, "%s: c of shape %s cannot be broadcast to the result shape %s",
                    op, SHAPE(b1, c), tfw__shape_str(b2, sizeof b2, nd, shape));
}

/* Integer results need integer alpha and beta (PyTorch's rule). */
static tfw_status check_int_scalars(const char *op, tfw_dtype dt, double beta, double alpha) {
  if (tfw_dtype_is_floating(dt)) return TFW_OK;
  const double lim = 9223372036854775807.0;
  if (!(beta == floor(beta) && fabs(beta) < lim))
    return tfw__error(TFW_EVALUE, "%s: beta must be an integer for %s tensors, got %g", op,
                      tfw_dtype_name(dt), beta);
  if (!(alpha == floor(alpha) && fabs(alpha) < lim))
    return tfw__error(TFW_EVALUE, "%s: alpha must be an integer for %s tensors, got %g", op,
                      tfw_dtype_name(dt), alpha);
  return TFW_OK;
}

/* numpy.matmul shapes: batch dims of a and b (all but their last two) broadcast. */
static tfw_status infer_matmul(const char *op, const tfw_tensor *a, const tfw_tensor *b,
                               tfw__meta *out) {
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  if (a->ndim == 0 || b->ndim == 0)
    return tfw__error(TFW_ESHAPE, "%s: both arguments must be at least 1-d, got a of shape %s "
                      "and b of shape %s", op, SHAPE(b1, a), SHAPE(b2, b));
  int64_t ka = a->shape[a->ndim - 1];
  int64_t kb = b->ndim == 1 ? b->shape[0] : b->shape[b->ndim - 2];
  if (ka != kb) return inner_error(op, a, b, ka, kb);
  int nba = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
  int nb = nba > nbb ? nba : nbb;
  int nd = 0;
  for (int d = 0; d < nb; d++) {
    int da = d - (nb - nba), db = d - (nb - nbb);
    int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      return tfw__error(TFW_ESHAPE, "%s: batch dimensions do not broadcast: a is %s, b is %s "
                        "(%lld vs %lld)", op, SHAPE(b1, a), SHAPE(b2, b), (long long)sa,
                        (long long)sb);
    out->shape[nd++] = sa == 1 ? sb : sa;
  }
  if (a->ndim >= 2) out->shape[nd++] = a->shape[a->ndim - 2];
  if (b->ndim >= 2) out->shape[nd++] = b->shape[b->ndim - 1];
  out->ndim = nd;
  return TFW_OK;
}

tfw_status tfw__infer_linalg(const tfw__call *c, tfw__meta *out) {
  const char *op = c->op->name;
  tfw_status st = result_dtype(c, &out->dtype);
  if (st) return st;
  const tfw_tensor *a = c->in[0], *b = c->in[1];
  if (c->op->id == TFW__OP_addmm || c->op->id == TFW__OP_baddbmm) {
    a = c->in[1];
    b = c->in[2];
  }
  char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
  switch (c->op->id) {
  case TFW__OP_matmul:
    return infer_matmul(op, a, b, out);
  case TFW__OP_addmm:
  case TFW__OP_bmm:
  case TFW__OP_baddbmm: {
    int nd = c->op->id == TFW__OP_addmm ? 2 : 3;
    if ((st = need_ndim(op, "a", a, nd)) || (st = need_ndim(op, "b", b, nd))) return st;
    if (nd == 3 && a->shape[0] != b->shape[0])
      return tfw__error(TFW_ESHAPE, "%s: batch sizes differ: a is %s, b is %s (%lld != %lld)",
                        op, SHAPE(b1, a), SHAPE(b2, b), (long long)a->shape[0],
                        (long long)b->shape[0]);
    if (a->shape[nd - 1] != b->shape[nd - 2])
      return inner_error(op, a, b, a->shape[nd - 1], b->shape[nd - 2]);
    out->ndim = nd;
    if (nd == 3) out->shape[0] = a->shape[0];
    out->shape[nd - 2] = a->shape[nd - 2];
    out->shape[nd - 1] = b->shape[nd - 1];
    if (c->op->id == TFW__OP_bmm) return TFW_OK;
    if ((st = check_c(op, c->in[0], nd, out->shape))) return st;
    return check_int_scalars(op, out->dtype, c->a.f[0], c->a.f[1]);
  }
  case TFW__OP_outer:
    if ((st = need_ndim(op, "a", a, 1)) || (st = need_ndim(op, "b", b, 1))) return st;
    out->ndim = 2;
    out->shape[0] = a->shape[0];
    out->shape[1] = b->shape[0];
    return TFW_OK;
  case TFW__OP_dot:
    if ((st = need_ndim(op, "a", a, 1)) || (st = need_ndim(op, "b", b, 1))) return st;
    if (a->shape[0] != b->shape[0])
      return tfw__error(TFW_ESHAPE, "%s: a and b must have the same length: a is %s, b is %s "
                        "(%lld != %lld)", op, SHAPE(b1, a), SHAPE(b2, b),
                        (long long)a->shape[0], (long long)b->shape[0]);
    out->ndim = 0;
    return TFW_OK;
  default:
    return tfw__error(TFW_EINTERNAL, "%s: not a linalg op", op);
  }
}

/* ---- kernels --------------------------------------------------------------------------- */

/* View of t as [bshape..., rows, cols]: t's leading ndim - nmat dims are its batch dims,
 * right-aligned with bshape (missing or size-1 dims get stride 0); (rs, cs) are the
 * matrix strides. */
static tfw_tensor *batch_view(const tfw_tensor *t, int nb, const int64_t *bshape, int nmat,
                              int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  int tb = t->ndim - nmat;
  for (int d = 0; d < nb; d++) {
    int td = d - (nb - tb);
    shape[d] = bshape[d];
    strides[d] = td >= 0 && t->shape[td] != 1 ? t->strides[td] : 0;
  }
  shape[nb] = rows;
  shape[nb + 1] = cols;
  strides[nb] = rs;
  strides[nb + 1] = cs;
  return tfw__tensor_view(t, nb + 2, shape, strides, t->offset);
}

/* out viewed as the contiguous [bshape..., n, m] it is (1-d squeezes remove size-1 dims). */
static tfw_tensor *out_view(tfw_tensor *out, int nb, const int64_t *bshape, int64_t n, int64_t m) {
  int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
  for (int d = 0; d < nb; d++) shape[d] = bshape[d];
  shape[nb] = n;
  shape[nb + 1] = m;
  tfw__contiguous_strides(nb + 2, shape, strides);
  return tfw__tensor_view(out, nb + 2, shape, strides, out->offset);
}

tfw_status tfw__kernel_linalg(const tfw__call *c, tfw_tensor **outs) {
  const char *op = c->op->name;
  tfw_tensor *out = outs[0];
  const tfw_tensor *a = c->in[0], *b = c->in[1];
  switch (c->op->id) {
  case TFW__OP_bmm:
    return tfw__matmul_strided(op, a, b, out, NULL, 1.0, 0.0);
  case TFW__OP_addmm:
  case TFW__OP_baddbmm:
    return tfw__matmul_strided(op, c->in[1], c->in[2], out, c->in[0], c->a.f[1], c->a.f[0]);
  default:
    break;
  }
  /* matmul, outer, dot: lift the operands to [batch..., n, k] x [batch..., k, m] views. */
  int nb = 0;
  int64_t n = 1, m = 1, k = 1;
  const int64_t *bshape = out->shape;
  tfw_tensor *av = NULL, *bv = NULL, *ov = NULL;
  if (c->op->id == TFW__OP_outer) {
    n = a->shape[0];
    m = b->shape[0];
    av = batch_view(a, 0, NULL, 1, n, 1, a->strides[0], 0);
    bv = batch_view(b, 0, NULL, 1, 1, m, 0, b->strides[0]);
  } else if (c->op->id == TFW__OP_dot) {
    k = a->shape[0];
    av = batch_view(a, 0, NULL, 1, 1, k, 0, a->strides[0]);
    bv = batch_view(b, 0, NULL, 1, k, 1, b->strides[0], 0);
  } else { /* matmul */
    int ra = a->ndim, rb = b->ndim;
    nb = out->ndim - (ra >= 2) - (rb >= 2);
    k = a->shape[ra - 1];
    if (ra == 1) {
      av = batch_view(a, nb, bshape, 1, 1, k, 0, a->strides[0]);
    } else {
      n = a->shape[ra - 2];
      av = batch_view(a, nb, bshape, 2, n, k, a->strides[ra - 2], a->strides[ra - 1]);
    }
    if (rb == 1) {
      bv = batch_view(b, nb, bshape, 1, k, 1, b->strides[0], 0);
    } else {
      m = b->shape[rb - 1];
      bv = batch_view(b, nb, bshape, 2, k, m, b->strides[rb - 2], b->strides[rb - 1]);
    }
  }
  ov = out_view(out, nb, bshape, n, m);
  tfw_status st = av && bv && ov ? tfw__matmul_strided(op, av, bv, ov, NULL, 1.0, 0.0)
                                 : tfw_last_status();
  tfw_release(av);
  tfw_release(bv);
  tfw_release(ov);
  return st;
}

/* ---- samples --------------------------------------------------------------------------- */

typedef struct mm_sample {
  tfw__op_id id;
  tfw_dtype dt;
  tfw__layout layout;
  int n_in;
  int nd[3];
  int64_t shape[3][4];
} mm_sample;

static const mm_sample k_samples[] = {
    {TFW__OP_matmul, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, {2, 2}, {{3, 4}, {4, 5}}},
    {TFW__OP_matmul, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, {3, 2}, {{2, 3, 4}, {4, 2}}},
    {TFW__OP_matmul, TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 2, {4, 3}, {{2, 1, 3, 4}, {5, 4, 2}}},
    {TFW__OP_matmul, TFW_DTYPE_I32, TFW__LAYOUT_CONTIGUOUS, 2, {1, 3}, {{4}, {2, 4, 3}}},
    {TFW__OP_bmm, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, {3, 3}, {{2, 3, 4}, {2, 4, 5}}},
    {TFW__OP_bmm, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, {3, 3}, {{3, 2, 5}, {3, 5, 4}}},
    {TFW__OP_bmm, TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 2, {3, 3}, {{4, 3, 2}, {4, 2, 3}}},
    {TFW__OP_addmm, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, {1, 2, 2}, {{5}, {3, 4}, {4, 5}}},
    {TFW__OP_addmm, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 3, {2, 2, 2}, {{3, 5}, {3, 4}, {4, 5}}},
    {TFW__OP_addmm, TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 3, {2, 2, 2}, {{3, 5}, {3, 4}, {4, 5}}},
    {TFW__OP_baddbmm, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, {3, 3, 3},
     {{2, 3, 5}, {2, 3, 4}, {2, 4, 5}}},
    {TFW__OP_baddbmm, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 3, {3, 3, 3},
     {{2, 3, 5}, {2, 3, 4}, {2, 4, 5}}},
    {TFW__OP_baddbmm, TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 3, {2, 3, 3},
     {{3, 5}, {2, 3, 4}, {2, 4, 5}}},
    {TFW__OP_outer, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, {1, 1}, {{3}, {4}}},
    {TFW__OP_outer, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, {1, 1}, {{5}, {2}}},
    {TFW__OP_outer, TFW_DTYPE_I64, TFW__LAYOUT_BROADCAST, 2, {1, 1}, {{3}, {4}}},
    {TFW__OP_dot, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 2, {1, 1}, {{7}, {7}}},
    {TFW__OP_dot, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 2, {1, 1}, {{5}, {5}}},
    {TFW__OP_dot, TFW_DTYPE_F32, TFW__LAYOUT_BROADCAST, 2, {1, 1}, {{4}, {4}}},
};

int tfw__sample_linalg(const tfw__op_def *op, tfw__call *calls, int cap) {
  int count = 0;
  for (size_t s = 0; s < sizeof k_samples / sizeof k_samples[0] && count < cap; s++) {
    const mm_sample *ms = &k_samples[s];
    if (ms->id != op->id) continue;
    const tfw_tensor *in[3] = {NULL, NULL, NULL};
    bool ok = true;
    for (int i = 0; i < ms->n_in; i++) {
      in[i] = tfw__sample_tensor(ms->dt, ms->nd[i], ms->shape[i], -2, 2,
                                 (uint64_t)count * 16 + (uint64_t)i, ms->layout);
      ok = ok && in[i];
    }
    if (!ok) {
      for (int i = 0; i < ms->n_in; i++) tfw_release((tfw_tensor *)in[i]);
      break;
    }
    tfw__call_init(&calls[count], op->id, ms->n_in, in);
    calls[count].a.f[0] = 0.5; /* beta */
    calls[count].a.f[1] = ms->dt == TFW_DTYPE_F64 ? -1.5 : 2.0; /* alpha */
    count++;
  }
  return count;
}

/* ---- public wrappers ------------------------------------------------------------------- */

tfw_tensor *tfw_matmul(const tfw_tensor *a, const tfw_tensor *b) {
  return tfw__op2(TFW__OP_matmul, a, b);
}

tfw_tensor *tfw_bmm(const tfw_tensor *a, const tfw_tensor *b) {
  return tfw__op2(TFW__OP_bmm, a, b);
}

static tfw_tensor *addmm_call(tfw__op_id id, const tfw_tensor *c, const tfw_tensor *a,
                              const tfw_tensor *b, double beta, double alpha) {
  const tfw_tensor *in[3] = {c, a, b};
  tfw__call call;
  tfw__call_init(&call, id, 3, in);
  call.a.f[0] = beta;
  call.a.f[1] = alpha;
  return tfw__op_run(&call);
}

tfw_tensor *tfw_addmm(const tfw_tensor *c, const tfw_tensor *a, const tfw_tensor *b, double beta,
                      double alpha) {
  return addmm_call(TFW__OP_addmm, c, a, b, beta, alpha);
}

tfw_tensor *tfw_baddbmm(const tfw_tensor *c, const tfw_tensor *a, const tfw_tensor *b,
                        double beta, double alpha) {
  return addmm_call(TFW__OP_baddbmm, c, a, b, beta, alpha);
}

tfw_tensor *tfw_outer(const tfw_tensor *a, const tfw_tensor *b) {
  return tfw__op2(TFW__OP_outer, a, b);
}

tfw_tensor *tfw_dot(const tfw_tensor *a, const tfw_tensor *b) {
  return tfw__op2(TFW__OP_dot, a, b);
}
