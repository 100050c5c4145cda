/* CPU kernels of the convolution family: im2col / col2im + the packed GEMM (src/cpu/gemm.h).
 *
 * Letters (conv.h): big [N, C, H, W], small [N, O, Ho, Wo], weight [O, C/G, kh, kw];
 * Cg = C/G, Og = O/G, K = kh*kw, P = Ho*Wo. A column buffer col [C*K, P] holds, at row
 * (c*kh + i)*kw + j and column (oh, ow), big[c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0
 * outside the input). Per batch entry n and group g:
 *   conv:            small[n, g] (Og x P)   = W_g (Og x CgK) @ col_g (CgK x P)
 *   conv_transpose:  col_g (CgK x P)        = W_g^T @ small[n, g], then col2im into big[n]
 *   weight grad:     W_g (Og x CgK)        += small[n, g] @ col_g^T
 * 1x1 kernels with stride 1 and no padding skip im2col (col is the input itself).
 *
 * Why im2col + GEMM: the GEMM is the tuned part of the library (AVX-512/AVX2 micro-kernels)
 * and im2col is a streaming copy; on the MNIST shapes (1->32->64 channels, 3x3, 28x28) the
 * GEMMs are 32-64 rows by 576-676 columns, where this beats a direct loop by a wide margin.
 *
 * Threads: conv and conv_transpose are independent per batch entry, so batches are spread
 * over threads with tfw__parallel_for (each thread has its own column buffer; the GEMM sees
 * the parallel region and stays serial). A batch of one instead lets the GEMM thread itself.
 * The weight gradient sums over the batch: the batch is cut into at most 8 ranges (a
 * function of the shapes only), each summed by one task into its own partial (entries taken
 * a few at a time with their columns side by side: one GEMM with K = nb*P), and the
 * partials are added in range order: bit-identical for any thread count. This keeps a single
 * parallel region per op: on a loaded 2-core machine the GEMM's own threading (barriers per
 * block) spent 70% of the backward time spinning in libgomp.
 *
 * Dtypes: f32 via tfw__sgemm, f64 via tfw__dgemm; f16/bf16 are converted to f32, computed,
 * and rounded once at the end. Inputs of any strides are made contiguous first. */
#include <string.h>

#include "cpu/gemm.h"
#include "ops/conv.h"

/* Column buffer budget for one weight-gradient chunk (elements): ~4 MB of f32. */
#define COL_BUDGET ((int64_t)1 << 20)
/* Weight gradient: at most this many partial sums, of at most this many elements in all. */
#define WG_MAX_CHUNKS 8
#define WG_PARTIAL_BUDGET ((int64_t)1 << 21)
/* Multiply-adds per parallel chunk of batch entries. */
#define CONV_GRAIN_WORK ((int64_t)1 << 18)

typedef struct conv_job {
  const tfw__conv_geom *g;
  tfw_dtype ct;
  size_t es;
  const char *big, *small, *w, *bias; /* contiguous, compute dtype (bias may be NULL) */
  char *out;                         /* contiguous, compute dtype */
  bool direct;                       /* 1x1, stride 1, no padding: col == big[n] */
  bool fail;                         /* scratch allocation failed in a worker */
} conv_job;

static void gemm(tfw_dtype ct, int64_t M, int64_t N, int64_t K, const void *A, int64_t rsa,
                 int64_t csa, const void *B, int64_t rsb, int64_t csb, double beta, void *C,
                 int64_t rsc) {
  if (ct == TFW_DTYPE_F32)
    tfw__sgemm(M, N, K, 1.0f, A, rsa, csa, B, rsb, csb, (float)beta, C, rsc, 1);
  else
    tfw__dgemm(M, N, K, 1.0, A, rsa, csa, B, rsb, csb, beta, C, rsc, 1);
}

/* Valid output range [*o0, *o1) of positions o with 0 <= o*s + off < L. */
static void valid_range(int64_t P, int64_t L, int64_t s, int64_t off, int64_t *o0, int64_t *o1) {
  int64_t a = off < 0 ? (-off + s - 1) / s : 0;
  int64_t b = L - off <= 0 ? 0 : (L - off - 1) / s + 1;
  *o0 = a < P ? a : P;
  *o1 = b < P ? b : P;
  if (*o1 < *o0) *o1 = *o0;
}

/* im2col of channels [0, C) of x [C, H, W] into col (row stride ld), and its adjoint col2im
 * (accumulates into x). Written once per element type. */
#define IM2COL_DEFS(T, SUF)                                                                    \
  static void im2col_##SUF(const tfw__conv_geom *g, const T *x, T *col, int64_t ld) {         \
    const int64_t H = g->L[0], W = g->L[1], Ho = g->P[0], Wo = g->P[1];                       \
    for (int64_t c = 0; c < g->C; c++)                                                         \
      for (int64_t i = 0; i < g->k[0]; i++)                                                    \
        for (int64_t j = 0; j < g->k[1]; j++) {                                                \
          T *row = col + ((c * g->k[0] + i) * g->k[1] + j) * ld;                               \
          const int64_t offh = i * g->d[0] - g->p[0], offw = j * g->d[1] - g->p[1];            \
          int64_t w0, w1;                                                                      \
          valid_range(Wo, W, g->s[1], offw, &w0, &w1);                                         \
          for (int64_t oh = 0; oh < Ho; oh++) {                                                \
            T *r = row + oh * Wo;                                                              \
            const int64_t ih = oh * g->s[0] + offh;                                            \
            if (ih < 0 || ih >= H) {                                                           \
              memset(r, 0, (size_t)Wo * sizeof(T));                                            \
              continue;                                                                        \
            }                                                                                  \
            const T *xr = x + (c * H + ih) * W + offw;                                         \
            for (int64_t ow = 0; ow < w0; ow++) r[ow] = 0;                                     \
            if (g->s[1] == 1)                                                                  \
              memcpy(r + w0, xr + w0, (size_t)(w1 - w0) * sizeof(T));                          \
            else                                                                               \
              for (int64_t ow = w0; ow < w1; ow++) r[ow] = xr[ow * g->s[1]];                   \
            for (int64_t ow = w1; ow < Wo; ow++) r[ow] = 0;                                    \
          }                                                                                    \
        }                                                                                      \
  }                                                                                            \
  static void col2im_##SUF(const tfw__conv_geom *g, const T *col, int64_t ld, int64_t C, T *x) { \
    const int64_t H = g->L[0], W = g->L[1], Ho = g->P[0], Wo = g->P[1];                       \
    for (int64_t c = 0; c < C; c++)                                                            \
      for (int64_t i = 0; i < g->k[0]; i++)                                                    \
        for (int64_t j = 0; j < g->k[1]; j++) {                                                \
          const T *row = col + ((c * g->k[0] + i) * g->k[1] + j) * ld;                         \
          const int64_t offh = i * g->d[0] - g->p[0], offw = j * g->d[1] - g->p[1];            \
          int64_t w0, w1;                                                                      \
          valid_range(Wo, W, g->s[1], offw, &w0, &w1);                                         \
          for (int64_t oh = 0; oh < Ho; oh++) {                                                \
            const int64_t ih = oh * g->s[0] + offh;                                            \
            if (ih < 0 || ih >= H) continue;                                                   \
            const T *r = row + oh * Wo;                                                        \
            T *xr = x + (c * H + ih) * W + offw;                                               \
            for (int64_t ow = w0; ow < w1; ow++) xr[ow * g->s[1]] += r[ow];                    \
          }                                                                                    \
        }                                                                                      \
  }
IM2COL_DEFS(float, f32)
IM2COL_DEFS(double, f64)

static void im2col(const conv_job *j, const void *x, void *col, int64_t ld) {
  if (j->ct == TFW_DTYPE_F32) im2col_f32(j->g, x, col, ld);
  else im2col_f64(j->g, x, col, ld);
}

static void col2im(const conv_job *j, const void *col, int64_t ld, int64_t C, void *x) {
  if (j->ct == TFW_DTYPE_F32) col2im_f32(j->g, col, ld, C, x);
  else col2im_f64(j->g, col, ld, C, x);
}

/* dst[c, :] = bias[c] (or 0) for c < C, each row of length P. */
static void fill_rows(const conv_job *j, char *dst, int64_t C, int64_t P) {
  for (int64_t c = 0; c < C; c++) {
    if (j->ct == TFW_DTYPE_F32) {
      float v = j->bias ? ((const float *)j->bias)[c] : 0.0f, *d = (float *)dst + c * P;
      for (int64_t p = 0; p < P; p++) d[p] = v;
    } else {
      double v = j->bias ? ((const double *)j->bias)[c] : 0.0, *d = (double *)dst + c * P;
      for (int64_t p = 0; p < P; p++) d[p] = v;
    }
  }
}

static int64_t spatial(const int64_t *v) { return v[0] * v[1]; }

/* conv: small[n] for n in [n0, n1). */
static void conv_fwd_range(int64_t n0, int64_t n1, void *ctx) {
  conv_job *j = ctx;
  const tfw__conv_geom *g = j->g;
  const int64_t K = spatial(g->k), P = spatial(g->P), L = spatial(g->L);
  const int64_t Cg = g->C / g->G, Og = g->O / g->G;
  char *col = NULL;
  if (!j->direct && !(col = tfw__malloc((size_t)(g->C * K * P) * j->es))) {
    j->fail = true;
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    const char *x = j->big + (size_t)(n * g->C * L) * j->es;
    char *y = j->out + (size_t)(n * g->O * P) * j->es;
    if (!j->direct) im2col(j, x, col, P);
    const char *cb = j->direct ? x : col;
    fill_rows(j, y, g->O, P);
    for (int64_t gi = 0; gi < g->G; gi++)
      gemm(j->ct, Og, P, Cg * K, j->w + (size_t)(gi * Og * Cg * K) * j->es, Cg * K, 1,
           cb + (size_t)(gi * Cg * K * P) * j->es, P, 1, j->bias ? 1.0 : 0.0,
           y + (size_t)(gi * Og * P) * j->es, P);
  }
  tfw__free(col);
}

/* conv_transpose: big[n] for n in [n0, n1). */
static void conv_tr_range(int64_t n0, int64_t n1, void *ctx) {
  conv_job *j = ctx;
  const tfw__conv_geom *g = j->g;
  const int64_t K = spatial(g->k), P = spatial(g->P), L = spatial(g->L);
  const int64_t Cg = g->C / g->G, Og = g->O / g->G;
  char *col = tfw__malloc((size_t)(Cg * K * P) * j->es);
  if (!col) {
    j->fail = true;
    return;
  }
  for (int64_t n = n0; n < n1; n++) {
    const char *x = j->small + (size_t)(n * g->O * P) * j->es;
    char *y = j->out + (size_t)(n * g->C * L) * j->es;
    fill_rows(j, y, g->C, L);
    for (int64_t gi = 0; gi < g->G; gi++) {
      /* col (CgK x P) = W_g^T (CgK x Og) @ x_g (Og x P); W_g is [Og, CgK] row-major */
      char *yg = y + (size_t)(gi * Cg * L) * j->es;
      if (j->direct) {
        gemm(j->ct, Cg * K, P, Og, j->w + (size_t)(gi * Og * Cg * K) * j->es, 1, Cg * K,
             x + (size_t)(gi * Og * P) * j->es, P, 1, 1.0, yg, P);
        continue;
      }
      gemm(j->ct, Cg * K, P, Og, j->w + (size_t)(gi * Og * Cg * K) * j->es, 1, Cg * K,
           x + (size_t)(gi * Og * P) * j->es, P, 1, 0.0, col, P);
      col2im(j, col, P, Cg, yg);
    }
  }
  tfw__free(col);
}

/* Weight gradient: the batch is cut into `chunks` ranges (a function of the shapes only);
 * task t sums its range into its own partial W_t, taking its entries `nb` at a time with
 * their columns side by side (one GEMM with K = nb*P per group); the partials are then
 * added in task order. One parallel region and single-threaded GEMMs: no barriers inside. */
typedef struct wg_job {
  conv_job *j;
  int64_t chunks, nb;
  char *partial; /* [chunks, O * Cg * K] */
} wg_job;

static void wg_task(int64_t t0, int64_t t1, void *ctx) {
  wg_job *w = ctx;
  conv_job *j = w->j;
  const tfw__conv_geom *g = j->g;
  const int64_t K = spatial(g->k), P = spatial(g->P), L = spatial(g->L);
  const int64_t Cg = g->C / g->G, Og = g->O / g->G, wsize = g->O * Cg * K;
  const int64_t ld = w->nb * P;
  char *col = tfw__malloc((size_t)(g->C * K * ld) * j->es);
  char *gyc = tfw__malloc((size_t)(g->O * ld) * j->es);
  if (!col || !gyc) {
    j->fail = true;
    goto done;
  }
  for (int64_t t = t0; t < t1; t++) {
    char *part = w->partial + (size_t)(t * wsize) * j->es;
    const int64_t n0 = t * g->N / w->chunks, n1 = (t + 1) * g->N / w->chunks;
    if (n0 == n1) memset(part, 0, (size_t)wsize * j->es);
    for (int64_t m0 = n0; m0 < n1; m0 += w->nb) {
      const int64_t cnt = n1 - m0 < w->nb ? n1 - m0 : w->nb;
      for (int64_t b = 0; b < cnt; b++) {
        const char *x = j->big + (size_t)((m0 + b) * g->C * L) * j->es;
        if (j->direct)
          for (int64_t c = 0; c < g->C; c++)
            memcpy(col + (size_t)(c * ld + b * P) * j->es, x + (size_t)(c * P) * j->es,
                   (size_t)P * j->es);
        else
          im2col(j, x, col + (size_t)(b * P) * j->es, ld);
        const char *gy = j->small + (size_t)((m0 + b) * g->O * P) * j->es;
        for (int64_t o = 0; o < g->O; o++)
          memcpy(gyc + (size_t)(o * ld + b * P) * j->es, gy + (size_t)(o * P) * j->es,
                 (size_t)P * j->es);
      }
      /* W_g (Og x CgK) (+)= gyc_g (Og x cnt*P) @ col_g^T (cnt*P x CgK) */
      for (int64_t gi = 0; gi < g->G; gi++)
        gemm(j->ct, Og, Cg * K, cnt * P, gyc + (size_t)(gi * Og * ld) * j->es, ld, 1,
             col + (size_t)(gi * Cg * K * ld) * j->es, 1, ld, m0 == n0 ? 0.0 : 1.0,
             part + (size_t)(gi * Og * Cg * K) * j->es, Cg * K);
    }
  }
done:
  tfw__free(col);
  tfw__free(gyc);
}

static tfw_status weight_grad(conv_job *j) {
  const tfw__conv_geom *g = j->g;
  const int64_t K = spatial(g->k), P = spatial(g->P);
  const int64_t wsize = g->O * (g->C / g->G) * K;
  if (g->N == 0 || wsize == 0) {
    memset(j->out, 0, (size_t)wsize * j->es);
    return TFW_OK;
  }
  /* up to WG_MAX_CHUNKS ranges, fewer when the partials would be large */
  int64_t chunks = WG_PARTIAL_BUDGET / wsize;
  chunks = chunks < 1 ? 1 : chunks > WG_MAX_CHUNKS ? WG_MAX_CHUNKS : chunks;
  chunks = chunks > g->N ? g->N : chunks;
  const int64_t per = (g->C * K + g->O) * P > 0 ? (g->C * K + g->O) * P : 1;
  int64_t nb = COL_BUDGET / per;
  nb = nb < 1 ? 1 : nb;
  wg_job w = {.j = j, .chunks = chunks, .nb = nb};
  w.partial = chunks == 1 ? j->out : tfw__malloc((size_t)(chunks * wsize) * j->es);
  if (!w.partial) return tfw__error(TFW_ENOMEM, "conv_weight_grad: out of memory");
  tfw__parallel_for(chunks, 1, wg_task, &w);
  if (chunks > 1) {
    for (int64_t e = 0; e < wsize; e++) {
      if (j->ct == TFW_DTYPE_F32) {
        const float *p = (const float *)w.partial + e;
        float acc = p[0];
        for (int64_t t = 1; t < chunks; t++) acc += p[t * wsize];
        ((float *)j->out)[e] = acc;
      } else {
        const double *p = (const double *)w.partial + e;
        double acc = p[0];
        for (int64_t t = 1; t < chunks; t++) acc += p[t * wsize];
        ((double *)j->out)[e] = acc;
      }
    }
    tfw__free(w.partial);
  }
  return j->fail ? tfw__error(TFW_ENOMEM, "conv_weight_grad: out of memory for the column "
                              "buffer") : TFW_OK;
}

tfw_status tfw__conv_compute(const tfw__call *c, const tfw__conv_geom *g, tfw_tensor *out) {
  const tfw__op_id id = c->op->id;
  const tfw_dtype ct = out->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  const bool tr = id == TFW__OP_conv_transpose1d || id == TFW__OP_conv_transpose2d;
  const bool wgrad = id == TFW__OP_conv_weight_grad;
  tfw_tensor *in[3] = {NULL, NULL, NULL}, *W = NULL;
  tfw_status st = TFW_OK;
  for (int i = 0; i < c->n_in; i++)
    if (!(in[i] = tfw__as_contiguous(c->in[i], ct))) {
      st = tfw_last_status();
      goto done;
    }
  const bool direct_out = out->dtype == ct;
  W = direct_out ? tfw_retain(out) : tfw__tensor_new(c->op->name, ct, out->ndim, out->shape);
  if (!W) {
    st = tfw_last_status();
    goto done;
  }
  conv_job j = {.g = g, .ct = ct, .es = tfw_dtype_size(ct), .out = tfw__data(W)};
  j.direct = g->k[0] == 1 && g->k[1] == 1 && g->s[0] == 1 && g->s[1] == 1 && g->p[0] == 0 &&
             g->p[1] == 0;
  const int64_t K = spatial(g->k), P = spatial(g->P);
  if (tfw__conv_winograd_ok(g, ct)) {
    const float *a = (const float *)tfw__data(in[0]), *b = (const float *)tfw__data(in[1]);
    if (wgrad) st = tfw__conv_winograd_wgrad(g, a, b, (float *)tfw__data(W));
    else st = tfw__conv_winograd(g, tr, a, b, in[2] ? (const float *)tfw__data(in[2]) : NULL,
                                 (float *)tfw__data(W));
  } else if (wgrad) {
    j.big = tfw__data(in[0]);
    j.small = tfw__data(in[1]);
    st = weight_grad(&j);
  } else {
    j.w = tfw__data(in[1]);
    j.bias = in[2] ? tfw__data(in[2]) : NULL;
    if (tr) j.small = tfw__data(in[0]);
    else j.big = tfw__data(in[0]);
    /* work per batch entry: the GEMM multiply-adds */
    const int64_t work = (g->O / g->G) * (g->C / g->G) * K * P * g->G + 1;
    int64_t grain = CONV_GRAIN_WORK / work;
    grain = grain < 1 ? 1 : grain;
    if (g->N == 1) (tr ? conv_tr_range : conv_fwd_range)(0, 1, &j);
    else tfw__parallel_for(g->N, grain, tr ? conv_tr_range : conv_fwd_range, &j);
    if (j.fail) st = tfw__error(TFW_ENOMEM, "%s: out of memory for the column buffer",
                                c->op->name);
  }
  if (!st && !direct_out) st = tfw__copy_cast(out, W);
done:
  for (int i = 0; i < 3; i++) tfw_release(in[i]);
  tfw_release(W);
  return st;
}
