/* Pooling: max_pool1d/2d (values + int64 indices), avg_pool1d/2d and its adjoint
 * avg_pool_backward, adaptive_avg_pool2d and its adjoint. Inference, kernels, samples and
 * the public wrappers.
 *
 * Letters: x [N, C, H, W] (1-d ops: H = 1), out [N, C, Ho, Wo]; a plane is one (n, c).
 * Window of output (oh, ow): rows oh*sh - ph + i*dh (i < kh), likewise columns; positions in
 * the padding are skipped (max) or counted by count_include_pad (avg), as PyTorch's CPU
 * kernels do, including its rules for ceil_mode (the last window must start inside the input
 * or the left padding) and for the avg divisor (window clipped to input + padding first).
 * max: NaN wins (and the last NaN's index is kept), ties keep the first index; indices are
 * flat positions in the H*W plane, like PyTorch.
 *
 * Kernels are direct loops over planes (pooling windows are small and strided; there is
 * nothing GEMM-shaped here), one plane per task with tfw__parallel_for. Every output element
 * and every adjoint element is produced by one task in a fixed order, so results are
 * bit-identical for any thread count. f16/bf16 compute in f32; inputs of any strides are
 * made contiguous first.
 *
 * Backward: max pooling's is a scatter_add of the gradient at the indices (registered ops,
 * src/autograd/backward_conv.c); avg and adaptive avg pooling are linear, with dedicated
 * adjoint ops whose own adjoints are the forward ops. */
#include <math.h>
#include <string.h>
#ifdef __x86_64__
#include <immintrin.h>
#endif

#include "core/cpu.h"
#include "ops/conv.h"
#include "ops/samples.h"
#include "tenflower/nn_functional_conv.h"

#define SHAPE(buf, t) tfw__shape_str(buf, sizeof buf, (t)->ndim, (t)->shape)

typedef struct pool_geom {
  int S;
  int64_t planes;
  int64_t L[2], P[2], k[2], s[2], p[2], d[2];
  bool ceil_mode, count_include_pad;
  int64_t divisor;
} pool_geom;

int64_t tfw__pool_out_size(int64_t L, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  int64_t num = L + 2 * p - d * (k - 1) - 1 + (ceil_mode ? s - 1 : 0);
  int64_t q = num >= 0 ? num / s : -((-num + s - 1) / s); /* floor division */
  int64_t out = q + 1;
  if (ceil_mode && (out - 1) * s >= L + p) out--;
  return out;
}

static tfw_status read_list(const tfw__call *c, int S, int q, const char *what, int64_t lo,
                            int64_t fill, int64_t *v) {
  v[0] = fill;
  for (int j = 0; j < S; j++) {
    int64_t x = c->a.ints[q * S + j];
    if (x < lo || x > TFW__CONV_ATTR_MAX)
      return tfw__error(TFW_EVALUE, "%s: %s must be %s and at most %lld, got %lld", c->op->name,
                        what, lo > 0 ? "positive" : "non-negative",
                        (long long)TFW__CONV_ATTR_MAX, (long long)x);
    v[2 - S + j] = x;
  }
  return TFW_OK;
}

static tfw_status geometry(const tfw__call *c, pool_geom *g) {
  const char *op = c->op->name;
  const tfw__op_id id = c->op->id;
  const tfw_tensor *x = c->in[0];
  tfw_status st = tfw__check_float(op, "input", x);
  if (st) return st;
  memset(g, 0, sizeof *g);
  char b[TFW__SHAPE_BUF];
  int S;
  switch (id) {
  case TFW__OP_max_pool1d:
  case TFW__OP_avg_pool1d:
    S = 1;
    break;
  case TFW__OP_max_pool2d:
  case TFW__OP_avg_pool2d:
  case TFW__OP_adaptive_avg_pool2d:
  case TFW__OP_adaptive_avg_pool2d_backward:
    S = 2;
    break;
  default: /* avg_pool_backward */
    S = x->ndim - 2;
    if (S < 1 || S > 2)
      return tfw__error(TFW_ESHAPE, "%s: gy must be 3-d or 4-d, got shape %s", op, SHAPE(b, x));
  }
  if (x->ndim != S + 2)
    return tfw__error(TFW_ESHAPE, "%s: input must be %d-d ([N, C%s]), got shape %s", op, S + 2,
                      S == 1 ? ", L" : ", H, W", SHAPE(b, x));
  g->S = S;
  g->planes = x->shape[0] * x->shape[1];
  g->L[0] = g->P[0] = g->k[0] = g->s[0] = g->d[0] = g->d[1] = 1;
  const bool adaptive = id == TFW__OP_adaptive_avg_pool2d || id == TFW__OP_adaptive_avg_pool2d_backward;
  if (adaptive) {
    if (c->a.n_ints != 2)
      return tfw__error(TFW_EVALUE, "%s: expects 2 sizes, got %d", op, c->a.n_ints);
    int64_t sz[2] = {1, 1};
    if ((st = read_list(c, 2, 0, id == TFW__OP_adaptive_avg_pool2d ? "output size" : "input size",
                        1, 1, sz)))
      return st;
    for (int i = 0; i < 2; i++) {
      if (id == TFW__OP_adaptive_avg_pool2d) g->L[i] = x->shape[2 + i], g->P[i] = sz[i];
      else g->P[i] = x->shape[2 + i], g->L[i] = sz[i];
      if (g->L[i] < 1)
        return tfw__error(TFW_ESHAPE, "%s: input spatial sizes must be positive, got %s", op,
                          SHAPE(b, x));
    }
    return TFW_OK;
  }
  const bool maxp = id == TFW__OP_max_pool1d || id == TFW__OP_max_pool2d;
  const bool back = id == TFW__OP_avg_pool_backward;
  const int nparams = maxp || back ? 4 : 3;
  if (c->a.n_ints != nparams * S)
    return tfw__error(TFW_EVALUE, "%s: expects %d attribute values (%d per spatial dim), got %d",
                      op, nparams * S, nparams, c->a.n_ints);
  if ((st = read_list(c, S, 0, "kernel size", 1, 1, g->k)) ||
      (st = read_list(c, S, 1, "stride", 1, 1, g->s)) ||
      (st = read_list(c, S, 2, "padding", 0, 0, g->p)))
    return st;
  if (maxp && (st = read_list(c, S, 3, "dilation", 1, 1, g->d))) return st;
  if (back && (st = read_list(c, S, 3, "input size", 1, 1, g->L))) return st;
  g->ceil_mode = c->a.b[0];
  g->count_include_pad = c->a.b[1];
  g->divisor = maxp ? 0 : c->a.i[0];
  if (g->divisor < 0 || g->divisor > TFW__CONV_ATTR_MAX)
    return tfw__error(TFW_EVALUE, "%s: divisor_override must be positive (or 0 for none), got "
                      "%lld", op, (long long)g->divisor);
  for (int j = 0; j < S; j++) {
    int i = 2 - S + j;
    if (g->p[i] * 2 > g->k[i])
      return tfw__error(TFW_EVALUE, "%s: padding (%lld) should be at most half of the kernel "
                        "size (%lld)", op, (long long)g->p[i], (long long)g->k[i]);
    if (!back) g->L[i] = x->shape[2 + j];
    int64_t out = tfw__pool_out_size(g->L[i], g->k[i], g->s[i], g->p[i], g->d[i], g->ceil_mode);
    if (out < 1)
      return tfw__error(TFW_ESHAPE, "%s: output size is too small: input %s, kernel %lld, "
                        "stride %lld, padding %lld, dilation %lld give %lld in spatial dim %d",
                        op, SHAPE(b, x), (long long)g->k[i], (long long)g->s[i],
                        (long long)g->p[i], (long long)g->d[i], (long long)out, j);
    if (back && out != x->shape[2 + j])
      return tfw__error(TFW_ESHAPE, "%s: gy %s does not match the pooled size %lld of input "
                        "size %lld in spatial dim %d", op, SHAPE(b, x), (long long)out,
                        (long long)g->L[i], j);
    g->P[i] = out;
  }
  return TFW_OK;
}

tfw_status tfw__infer_pool(const tfw__call *c, tfw__meta *out) {
  pool_geom g;
  tfw_status st = geometry(c, &g);
  if (st) return st;
  const tfw__op_id id = c->op->id;
  const bool back = id == TFW__OP_avg_pool_backward || id == TFW__OP_adaptive_avg_pool2d_backward;
  const tfw_tensor *x = c->in[0];
  for (int k = 0; k < c->op->n_out; k++) {
    out[k].dtype = k == 0 ? x->dtype : TFW_DTYPE_I64;
    out[k].ndim = x->ndim;
    out[k].shape[0] = x->shape[0];
    out[k].shape[1] = x->shape[1];
    for (int j = 0; j < g.S; j++) out[k].shape[2 + j] = back ? g.L[2 - g.S + j] : g.P[2 - g.S + j];
  }
  return TFW_OK;
}

/* ---- kernels --------------------------------------------------------------------------- */

typedef struct pool_job {
  const pool_geom *g;
  tfw__op_id id;
  const void *x;
  void *y;
  int64_t *idx;
  const void *gy; /* fused max-pool gradient: the output gradient; y is then gx */
  bool fast2x2; /* max pool with 2x2 windows inside the plane, stride 2 (max_plane_2x2) */
} pool_job;

/* Window of output o along internal dim i, clipped to [0, L): [*a, *b) plus the unclipped
 * size used as the count_include_pad divisor. (avg: dilation 1) */
static int64_t avg_window(const pool_geom *g, int i, int64_t o, int64_t *a, int64_t *b) {
  int64_t s0 = o * g->s[i] - g->p[i];
  int64_t e0 = s0 + g->k[i] < g->L[i] + g->p[i] ? s0 + g->k[i] : g->L[i] + g->p[i];
  int64_t size = e0 - s0;
  *a = s0 < 0 ? 0 : s0;
  *b = e0 > g->L[i] ? g->L[i] : e0;
  return size;
}

static void adaptive_window(int64_t o, int64_t P, int64_t L, int64_t *a, int64_t *b) {
  *a = o * L / P;
  *b = ((o + 1) * L + P - 1) / P;
}

/* ---- 2x2 / stride 2 max pooling on AVX-512 (f32) ----------------------------------------
 * 16 output columns per step: the two input rows are loaded as 32 + 32 floats (masked at the
 * ragged end), split into even and odd columns with permutes, and the window's first maximum
 * (NaN wins, as in max_plane_2x2) is picked with compare masks and blends; k in [0, 4) is
 * its position in window order (r0 even, r0 odd, r1 even, r1 odd). Forward writes values
 * and int64 indices; the fused backward writes g at the argmax and 0 at the other three
 * positions, so it needs neither the index tensor nor a zero fill nor a scatter. Index
 * arithmetic is in int32: the caller makes sure a plane has < 2^31 elements. */
#ifdef __x86_64__
#define POOL_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq")))
POOL_AVX512 static inline __m512i max4_avx512(const float *r0, const float *r1, int cnt,
                                              __m512 *best) {
  const __m512i ev = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i od = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const int m2 = 2 * cnt;
  const __mmask16 ma = (__mmask16)(m2 >= 16 ? 0xFFFF : (1u << m2) - 1);
  const __mmask16 mb = (__mmask16)(m2 <= 16 ? 0 : m2 >= 32 ? 0xFFFF : (1u << (m2 - 16)) - 1);
  __m512 a0 = _mm512_maskz_loadu_ps(ma, r0), b0 = _mm512_maskz_loadu_ps(mb, r0 + 16);
  __m512 a1 = _mm512_maskz_loadu_ps(ma, r1), b1 = _mm512_maskz_loadu_ps(mb, r1 + 16);
  __m512 v[4] = {_mm512_permutex2var_ps(a0, ev, b0), _mm512_permutex2var_ps(a0, od, b0),
                 _mm512_permutex2var_ps(a1, ev, b1), _mm512_permutex2var_ps(a1, od, b1)};
  __m512 bst = v[0];
  __m512i k = _mm512_setzero_si512();
  for (int q = 1; q < 4; q++) {
    const __mmask16 take = _mm512_cmp_ps_mask(v[q], bst, _CMP_GT_OQ) |
                           _mm512_cmp_ps_mask(v[q], v[q], _CMP_UNORD_Q);
    bst = _mm512_mask_mov_ps(bst, take, v[q]);
    k = _mm512_mask_mov_epi32(k, take, _mm512_set1_epi32(q));
  }
  *best = bst;
  return k;
}

POOL_AVX512 static void max_plane_2x2_fwd_avx512(const float *x, int64_t W, int64_t Ph,
                                                 int64_t Pw, float *y, int64_t *ix) {
  const __m512i iota2 = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                          28, 30);
  const __m512i one = _mm512_set1_epi32(1), vw = _mm512_set1_epi32((int)W);
  for (int64_t oh = 0; oh < Ph; oh++) {
    const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
    for (int64_t q = 0; q < Pw; q += 16) {
      const int cnt = Pw - q < 16 ? (int)(Pw - q) : 16;
      const __mmask16 m = (__mmask16)(cnt == 16 ? 0xFFFF : (1u << cnt) - 1);
      __m512 best;
      const __m512i k = max4_avx512(r0 + 2 * q, r1 + 2 * q, cnt, &best);
      _mm512_mask_storeu_ps(y + oh * Pw + q, m, best);
      /* (2 oh + (k >> 1)) W + 2 (q + lane) + (k & 1) */
      __m512i id = _mm512_add_epi32(_mm512_set1_epi32((int)(2 * oh * W + 2 * q)), iota2);
      id = _mm512_add_epi32(id, _mm512_and_si512(k, one));
      id = _mm512_add_epi32(id, _mm512_mullo_epi32(_mm512_srli_epi32(k, 1), vw));
      int64_t *io = ix + oh * Pw + q;
      _mm512_mask_storeu_epi64(io, (__mmask8)m, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(id)));
      if (cnt > 8)
        _mm512_mask_storeu_epi64(io + 8, (__mmask8)(m >> 8),
                                 _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(id, 1)));
    }
  }
}

/* gx plane [H, W] from g [Ph, Pw]; covers rows < 2 Ph and columns < 2 Pw only. */
POOL_AVX512 static void max_plane_2x2_bwd_avx512(const float *x, int64_t W, int64_t Ph,
                                                 int64_t Pw, const float *g, float *gx) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                       15, 31);
  for (int64_t oh = 0; oh < Ph; oh++) {
    const float *r0 = x + 2 * oh * W, *r1 = r0 + W;
    float *d0 = gx + 2 * oh * W, *d1 = d0 + W;
    for (int64_t q = 0; q < Pw; q += 16) {
      const int cnt = Pw - q < 16 ? (int)(Pw - q) : 16, m2 = 2 * cnt;
      const __mmask16 m = (__mmask16)(cnt == 16 ? 0xFFFF : (1u << cnt) - 1);
      const __mmask16 ma = (__mmask16)(m2 >= 16 ? 0xFFFF : (1u << m2) - 1);
      const __mmask16 mb = (__mmask16)(m2 <= 16 ? 0 : m2 >= 32 ? 0xFFFF : (1u << (m2 - 16)) - 1);
      __m512 best;
      const __m512i k = max4_avx512(r0 + 2 * q, r1 + 2 * q, cnt, &best);
      const __m512 gv = _mm512_maskz_loadu_ps(m, g + oh * Pw + q);
      __m512 e[4];
      for (int j = 0; j < 4; j++)
        e[j] = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(j)), gv);
      _mm512_mask_storeu_ps(d0 + 2 * q, ma, _mm512_permutex2var_ps(e[0], lo, e[1]));
      _mm512_mask_storeu_ps(d1 + 2 * q, ma, _mm512_permutex2var_ps(e[2], lo, e[3]));
      if (mb) {
        _mm512_mask_storeu_ps(d0 + 2 * q + 16, mb, _mm512_permutex2var_ps(e[0], hi, e[1]));
        _mm512_mask_storeu_ps(d1 + 2 * q + 16, mb, _mm512_permutex2var_ps(e[2], hi, e[3]));
      }
    }
  }
}
#endif

#define POOL_DEFS(T, SUF)                                                                       \
  static void max_plane_##SUF(const pool_job *j, const T *x, T *y, int64_t *ix) {               \
    const pool_geom *g = j->g;                                                                  \
    const int64_t H = g->L[0], W = g->L[1];                                                     \
    for (int64_t oh = 0; oh < g->P[0]; oh++)                                                    \
      for (int64_t ow = 0; ow < g->P[1]; ow++) {                                                \
        const int64_t h0 = oh * g->s[0] - g->p[0], w0 = ow * g->s[1] - g->p[1];                 \
        T best = (T)-INFINITY;                                                                  \
        int64_t bi = -1;                                                                        \
        for (int64_t i = 0; i < g->k[0]; i++) {                                                 \
          const int64_t ih = h0 + i * g->d[0];                                                  \
          if (ih < 0 || ih >= H) continue;                                                      \
          for (int64_t jj = 0; jj < g->k[1]; jj++) {                                            \
            const int64_t iw = w0 + jj * g->d[1];                                               \
            if (iw < 0 || iw >= W) continue;                                                    \
            const T v = x[ih * W + iw];                                                         \
            if (bi < 0 || v > best || isnan(v)) best = v, bi = ih * W + iw;                     \
          }                                                                                     \
        }                                                                                       \
        y[oh * g->P[1] + ow] = best;                                                            \
        ix[oh * g->P[1] + ow] = bi < 0 ? 0 : bi;                                                \
      }                                                                                         \
  }                                                                                             \
  static void avg_plane_##SUF(const pool_job *j, const T *x, T *y, bool adjoint) {              \
    const pool_geom *g = j->g;                                                                  \
    const int64_t W = g->L[1];                                                                  \
    if (adjoint) memset(y, 0, (size_t)(g->L[0] * g->L[1]) * sizeof(T));                         \
    for (int64_t oh = 0; oh < g->P[0]; oh++)                                                    \
      for (int64_t ow = 0; ow < g->P[1]; ow++) {                                                \
        int64_t ha, hb, wa, wb, div;                                                            \
        if (j->id == TFW__OP_adaptive_avg_pool2d || j->id == TFW__OP_adaptive_avg_pool2d_backward) { \
          adaptive_window(oh, g->P[0], g->L[0], &ha, &hb);                                      \
          adaptive_window(ow, g->P[1], g->L[1], &wa, &wb);                                      \
          div = (hb - ha) * (wb - wa);                                                          \
        } else {                                                                                \
          int64_t sz = avg_window(g, 0, oh, &ha, &hb) * avg_window(g, 1, ow, &wa, &wb);         \
          div = g->divisor ? g->divisor : g->count_include_pad ? sz : (hb - ha) * (wb - wa);    \
        }                                                                                       \
        T *yo = adjoint ? NULL : &y[oh * g->P[1] + ow];                                         \
        if (ha >= hb || wa >= wb) {                                                             \
          if (yo) *yo = 0;                                                                      \
          continue;                                                                             \
        }                                                                                       \
        if (adjoint) {                                                                          \
          const T v = x[oh * g->P[1] + ow] / (T)div;                                            \
          for (int64_t ih = ha; ih < hb; ih++)                                                  \
            for (int64_t iw = wa; iw < wb; iw++) y[ih * W + iw] += v;                           \
        } else {                                                                                \
          T acc = 0;                                                                            \
          for (int64_t ih = ha; ih < hb; ih++)                                                  \
            for (int64_t iw = wa; iw < wb; iw++) acc += x[ih * W + iw];                         \
          *yo = acc / (T)div;                                                                   \
        }                                                                                       \
      }                                                                                         \
  }                                                                                             \
  /* 2x2 windows, stride 2, no padding or dilation, all inside the plane (MNIST's pool): the  \
   * generic rule (first maximum in window order wins, NaN propagates) without bounds checks. */ \
  static void max_plane_2x2_##SUF(const pool_job *j, const T *x, T *y, int64_t *ix) {          \
    const pool_geom *g = j->g;                                                                  \
    const int64_t W = g->L[1], Po = g->P[1];                                                    \
    for (int64_t oh = 0; oh < g->P[0]; oh++) {                                                  \
      const T *r0 = x + 2 * oh * W, *r1 = r0 + W;                                               \
      T *yo = y + oh * Po;                                                                      \
      int64_t *io = ix + oh * Po;                                                               \
      for (int64_t ow = 0; ow < Po; ow++) {                                                     \
        const T v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};                \
        T best = v[0];                                                                          \
        int k = 0;                                                                              \
        for (int q = 1; q < 4; q++) { /* selects, not branches: random data mispredicts */    \
          const bool take = (v[q] > best) | (v[q] != v[q]);                                     \
          best = take ? v[q] : best;                                                            \
          k = take ? q : k;                                                                     \
        }                                                                                       \
        yo[ow] = best;                                                                          \
        io[ow] = (2 * oh + (k >> 1)) * W + 2 * ow + (k & 1);                                    \
      }                                                                                         \
    }                                                                                           \
  }                                                                                             \
  /* Fused gradient of one plane: gx = 0, then g added at each window's argmax (the rule of   \
   * max_plane: first maximum, NaN wins). 2x2/stride 2 windows never overlap: each covered    \
   * element is written once, the rest (odd sizes) zeroed. */                                  \
  static void max_grad_plane_##SUF(const pool_job *j, const T *x, const T *gy, T *gx) {        \
    const pool_geom *g = j->g;                                                                  \
    const int64_t H = g->L[0], W = g->L[1], Po = g->P[1];                                       \
    if (j->fast2x2) {                                                                           \
      if (2 * g->P[0] != H || 2 * Po != W) memset(gx, 0, (size_t)(H * W) * sizeof(T));          \
      for (int64_t oh = 0; oh < g->P[0]; oh++) {                                                \
        const T *r0 = x + 2 * oh * W, *r1 = r0 + W;                                             \
        for (int64_t ow = 0; ow < Po; ow++) {                                                   \
          const T v[4] = {r0[2 * ow], r0[2 * ow + 1], r1[2 * ow], r1[2 * ow + 1]};              \
          T best = v[0];                                                                        \
          int k = 0;                                                                            \
          for (int q = 1; q < 4; q++) {                                                         \
            const bool take = (v[q] > best) | (v[q] != v[q]);                                   \
            best = take ? v[q] : best;                                                          \
            k = take ? q : k;                                                                   \
          }                                                                                     \
          const T gv = gy[oh * Po + ow];                                                        \
          T *d = gx + 2 * oh * W + 2 * ow;                                                      \
          d[0] = k == 0 ? gv : 0, d[1] = k == 1 ? gv : 0;                                       \
          d[W] = k == 2 ? gv : 0, d[W + 1] = k == 3 ? gv : 0;                                   \
        }                                                                                       \
      }                                                                                         \
      return;                                                                                   \
    }                                                                                           \
    memset(gx, 0, (size_t)(H * W) * sizeof(T));                                                 \
    for (int64_t oh = 0; oh < g->P[0]; oh++)                                                    \
      for (int64_t ow = 0; ow < Po; ow++) {                                                     \
        const int64_t h0 = oh * g->s[0] - g->p[0], w0 = ow * g->s[1] - g->p[1];                 \
        T best = (T)-INFINITY;                                                                  \
        int64_t bi = -1;                                                                        \
        for (int64_t i = 0; i < g->k[0]; i++) {                                                 \
          const int64_t ih = h0 + i * g->d[0];                                                  \
          if (ih < 0 || ih >= H) continue;                                                      \
          for (int64_t jj = 0; jj < g->k[1]; jj++) {                                            \
            const int64_t iw = w0 + jj * g->d[1];                                               \
            if (iw < 0 || iw >= W) continue;                                                    \
            const T v = x[ih * W + iw];                                                         \
            if (bi < 0 || v > best || isnan(v)) best = v, bi = ih * W + iw;                     \
          }                                                                                     \
        }                                                                                       \
        gx[bi < 0 ? 0 : bi] += gy[oh * Po + ow];                                                \
      }                                                                                         \
  }                                                                                             \
  static void grad_planes_##SUF(int64_t p0, int64_t p1, void *ctx) {                            \
    const pool_job *j = ctx;                                                                    \
    const pool_geom *g = j->g;                                                                  \
    const int64_t Lp = g->L[0] * g->L[1], Pp = g->P[0] * g->P[1];                               \
    for (int64_t pl = p0; pl < p1; pl++)                                                        \
      max_grad_plane_##SUF(j, (const T *)j->x + pl * Lp, (const T *)j->gy + pl * Pp,             \
                           (T *)j->y + pl * Lp);                                                \
  }                                                                                             \
  static void planes_##SUF(int64_t p0, int64_t p1, void *ctx) {                                 \
    const pool_job *j = ctx;                                                                    \
    const pool_geom *g = j->g;                                                                  \
    const int64_t Lp = g->L[0] * g->L[1], Pp = g->P[0] * g->P[1];                               \
    const bool adjoint = j->id == TFW__OP_avg_pool_backward ||                                  \
                         j->id == TFW__OP_adaptive_avg_pool2d_backward;                         \
    const int64_t xin = adjoint ? Pp : Lp, yout = adjoint ? Lp : Pp;                            \
    for (int64_t pl = p0; pl < p1; pl++) {                                                      \
      const T *x = (const T *)j->x + pl * xin;                                                  \
      T *y = (T *)j->y + pl * yout;                                                             \
      if (j->idx && j->fast2x2) max_plane_2x2_##SUF(j, x, y, j->idx + pl * Pp);                 \
      else if (j->idx) max_plane_##SUF(j, x, y, j->idx + pl * Pp);                              \
      else avg_plane_##SUF(j, x, y, adjoint);                                                   \
    }                                                                                           \
  }
POOL_DEFS(float, f32)
POOL_DEFS(double, f64)

#ifdef __x86_64__
static void planes_2x2_avx512(int64_t p0, int64_t p1, void *ctx) {
  const pool_job *j = ctx;
  const pool_geom *g = j->g;
  const int64_t Lp = g->L[0] * g->L[1], Pp = g->P[0] * g->P[1];
  for (int64_t pl = p0; pl < p1; pl++)
    max_plane_2x2_fwd_avx512((const float *)j->x + pl * Lp, g->L[1], g->P[0], g->P[1],
                             (float *)j->y + pl * Pp, j->idx + pl * Pp);
}

static void grad_planes_2x2_avx512(int64_t p0, int64_t p1, void *ctx) {
  const pool_job *j = ctx;
  const pool_geom *g = j->g;
  const int64_t Lp = g->L[0] * g->L[1], Pp = g->P[0] * g->P[1];
  for (int64_t pl = p0; pl < p1; pl++) {
    float *gx = (float *)j->y + pl * Lp;
    if (2 * g->P[0] != g->L[0] || 2 * g->P[1] != g->L[1]) memset(gx, 0, (size_t)Lp * sizeof(float));
    max_plane_2x2_bwd_avx512((const float *)j->x + pl * Lp, g->L[1], g->P[0], g->P[1],
                             (const float *)j->gy + pl * Pp, gx);
  }
}
#endif

/* The 2x2 / stride 2 AVX-512 kernels apply (f32, plane small enough for int32 indices). */
static bool use_2x2_avx512(const pool_job *j, tfw_dtype ct) {
#ifdef __x86_64__
  return j->fast2x2 && ct == TFW_DTYPE_F32 && j->g->L[0] * j->g->L[1] < ((int64_t)1 << 31) &&
         tfw__cpu()->avx512f && tfw__cpu()->avx512bw && tfw__cpu()->avx512dq &&
         tfw__cpu()->avx512vl;
#else
  (void)j, (void)ct;
  return false;
#endif
}

static bool is_fast2x2(const pool_geom *g) {
  return g->k[0] == 2 && g->k[1] == 2 && g->s[0] == 2 && g->s[1] == 2 && g->p[0] == 0 &&
         g->p[1] == 0 && g->d[0] == 1 && g->d[1] == 1 && 2 * g->P[0] <= g->L[0] &&
         2 * g->P[1] <= g->L[1];
}

/* Grain of the plane loop: ~32K elements of work per chunk. */
static int64_t plane_grain(const pool_geom *g) {
  const int64_t work = g->L[0] * g->L[1] + g->P[0] * g->P[1] * g->k[0] * g->k[1] + 1;
  const int64_t grain = 32768 / work;
  return grain < 1 ? 1 : grain;
}

tfw_status tfw__max_pool_grad(const tfw__call *c, const tfw_tensor *gy, tfw_tensor **gx) {
  *gx = NULL;
  pool_geom g;
  tfw_status st = geometry(c, &g);
  if (st) return st;
  const tfw_tensor *x0 = c->in[0];
  if (gy->ndim != x0->ndim || gy->shape[0] != x0->shape[0] || gy->shape[1] != x0->shape[1] ||
      tfw__numel(gy->ndim, gy->shape) != g.planes * g.P[0] * g.P[1])
    return tfw__error(TFW_ESHAPE, "%s backward: the output gradient does not match the pooled "
                      "output", c->op->name);
  const tfw_dtype ct = x0->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  tfw_tensor *x = tfw__as_contiguous(x0, ct), *g1 = x ? tfw__as_contiguous(gy, ct) : NULL;
  tfw_tensor *r = g1 ? tfw__tensor_new(c->op->name, ct, x0->ndim, x0->shape) : NULL;
  if (!r) {
    st = tfw_last_status();
    goto done;
  }
  pool_job j = {.g = &g, .id = c->op->id, .x = tfw__data(x), .y = tfw__data(r),
                .gy = tfw__data(g1), .fast2x2 = is_fast2x2(&g)};
  tfw__range_fn fn = ct == TFW_DTYPE_F32 ? grad_planes_f32 : grad_planes_f64;
#ifdef __x86_64__
  if (use_2x2_avx512(&j, ct)) fn = grad_planes_2x2_avx512;
#endif
  tfw__parallel_for(g.planes, plane_grain(&g), fn, &j);
  if (x0->dtype != ct) {
    tfw_tensor *o = tfw__tensor_new(c->op->name, x0->dtype, x0->ndim, x0->shape);
    st = o ? tfw__copy_cast(o, r) : tfw_last_status();
    tfw_release(r);
    r = st ? (tfw_release(o), NULL) : o;
  }
  *gx = r;
done:
  tfw_release(x), tfw_release(g1);
  return st;
}

tfw_status tfw__kernel_pool(const tfw__call *c, tfw_tensor **out) {
  pool_geom g;
  tfw_status st = geometry(c, &g);
  if (st) return st;
  const tfw_dtype ct = out[0]->dtype == TFW_DTYPE_F64 ? TFW_DTYPE_F64 : TFW_DTYPE_F32;
  tfw_tensor *x = tfw__as_contiguous(c->in[0], ct);
  tfw_tensor *y = !x ? NULL : out[0]->dtype == ct ? tfw_retain(out[0])
                                : tfw__tensor_new(c->op->name, ct, out[0]->ndim, out[0]->shape);
  if (!x || !y) {
    st = tfw_last_status();
    goto done;
  }
  const bool maxp = c->op->id == TFW__OP_max_pool1d || c->op->id == TFW__OP_max_pool2d;
  pool_job j = {.g = &g, .id = c->op->id, .x = tfw__data(x), .y = tfw__data(y),
                .idx = maxp ? (int64_t *)tfw__data(out[1]) : NULL};
  j.fast2x2 = maxp && is_fast2x2(&g);
  tfw__range_fn fn = ct == TFW_DTYPE_F32 ? planes_f32 : planes_f64;
#ifdef __x86_64__
  if (maxp && use_2x2_avx512(&j, ct)) fn = planes_2x2_avx512;
#endif
  tfw__parallel_for(g.planes, plane_grain(&g), fn, &j);
  if (y != out[0]) st = tfw__copy_cast(out[0], y);
done:
  tfw_release(x);
  tfw_release(y);
  return st;
}

/* ---- samples --------------------------------------------------------------------------- */

typedef struct pool_sample {
  tfw__op_id id;
  tfw_dtype dt;
  tfw__layout layout;
  int nd;
  int64_t shape[4];
  int n_ints;
  int64_t ints[8];
  bool ceil_mode, cip;
  int64_t divisor;
} pool_sample;

static const pool_sample k_samples[] = {
    {TFW__OP_max_pool2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 4, {2, 3, 5, 6}, 8,
     {2, 3, 2, 2, 1, 1, 1, 1}, false, false, 0},
    {TFW__OP_max_pool2d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 4, {1, 2, 7, 5}, 8,
     {3, 2, 2, 2, 1, 0, 2, 1}, true, false, 0},
    {TFW__OP_max_pool1d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, {2, 3, 9}, 4, {3, 2, 1, 1},
     true, false, 0},
    {TFW__OP_avg_pool2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 4, {2, 3, 5, 6}, 6,
     {3, 2, 2, 2, 1, 1}, true, false, 0},
    {TFW__OP_avg_pool2d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 4, {1, 2, 6, 5}, 6,
     {2, 3, 2, 1, 1, 1}, false, true, 0},
    {TFW__OP_avg_pool1d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 3, {2, 3, 8}, 3, {3, 2, 1},
     true, true, 0},
    {TFW__OP_avg_pool_backward, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 4, {2, 3, 3, 4}, 8,
     {3, 2, 2, 2, 1, 1, 5, 6}, true, false, 0},
    {TFW__OP_avg_pool_backward, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 3, {2, 2, 4}, 4,
     {3, 2, 1, 8}, false, true, 2},
    {TFW__OP_adaptive_avg_pool2d, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 4, {2, 3, 7, 5}, 2,
     {3, 2}, false, false, 0},
    {TFW__OP_adaptive_avg_pool2d, TFW_DTYPE_F64, TFW__LAYOUT_STRIDED, 4, {1, 2, 4, 6}, 2,
     {5, 4}, false, false, 0},
    {TFW__OP_adaptive_avg_pool2d_backward, TFW_DTYPE_F32, TFW__LAYOUT_CONTIGUOUS, 4,
     {2, 2, 3, 2}, 2, {7, 5}, false, false, 0},
};

int tfw__sample_pool(const tfw__op_def *op, tfw__call *calls, int cap) {
  int count = 0;
  for (size_t s = 0; s < sizeof k_samples / sizeof k_samples[0] && count < cap; s++) {
    const pool_sample *ps = &k_samples[s];
    if (ps->id != op->id) continue;
    const tfw_tensor *x = tfw__sample_tensor(ps->dt, ps->nd, ps->shape, -2, 2, (uint64_t)s * 7 + 3,
                                             ps->layout);
    if (!x) break;
    tfw__call_init(&calls[count], op->id, 1, &x);
    calls[count].a.n_ints = ps->n_ints;
    memcpy(calls[count].a.ints, ps->ints, sizeof ps->ints);
    calls[count].a.b[0] = ps->ceil_mode;
    calls[count].a.b[1] = ps->cip;
    calls[count].a.i[0] = ps->divisor;
    count++;
  }
  return count;
}

/* ---- public wrappers ------------------------------------------------------------------- */

/* Runs a pooling call, first adding a batch dim to an unbatched input ([C, L...]). */
static tfw_status pool_run(tfw__call *c, int S, const tfw_tensor *x, tfw_tensor **out) {
  out[0] = out[1] = NULL;
  if (tfw__check_tensor(c->op->name, "input", x)) return TFW_EVALUE;
  tfw_tensor *xb = NULL;
  const bool unbatched = x->ndim == S + 1;
  if (unbatched && !(xb = tfw_unsqueeze(x, 0))) return tfw_last_status();
  c->n_in = 1;
  c->in[0] = unbatched ? xb : x;
  tfw_status st = tfw__op_run_multi(c, out);
  tfw_release(xb);
  for (int k = 0; !st && unbatched && k < c->op->n_out; k++) {
    tfw_tensor *sq = tfw_squeeze(out[k], 0);
    tfw_release(out[k]);
    out[k] = sq;
    if (!sq) st = tfw_last_status();
  }
  if (st)
    for (int k = 0; k < c->op->n_out; k++) tfw_release(out[k]), out[k] = NULL;
  return st;
}

static void set_lists(tfw__call *c, int S, int n, const int64_t *const *lists,
                      const int64_t *fills) {
  c->a.n_ints = n * S;
  for (int q = 0; q < n; q++)
    for (int j = 0; j < S; j++) c->a.ints[q * S + j] = lists[q] ? lists[q][j] : fills[q];
}

static tfw_tensor *max_pool(tfw__op_id id, int S, const tfw_tensor *x, const int64_t *kernel,
                            const int64_t *stride, const int64_t *padding,
                            const int64_t *dilation, bool ceil_mode, tfw_tensor **indices) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &x);
  if (!kernel) {
    tfw__error(TFW_EVALUE, "%s: kernel_size is NULL", c.op->name);
    if (indices) *indices = NULL;
    return NULL;
  }
  /* stride NULL (or 0 entries in the 1-d form) means stride = kernel_size, like PyTorch */
  const int64_t *lists[4] = {kernel, stride ? stride : kernel, padding, dilation};
  const int64_t fills[4] = {1, 1, 0, 1};
  set_lists(&c, S, 4, lists, fills);
  c.a.b[0] = ceil_mode;
  tfw_tensor *out[2];
  tfw_status st = pool_run(&c, S, x, out);
  if (indices) *indices = st ? NULL : out[1];
  else tfw_release(out[1]);
  return st ? NULL : out[0];
}

tfw_tensor *tfw_max_pool2d(const tfw_tensor *input, const int64_t *kernel_size,
                           const int64_t *stride, const int64_t *padding, const int64_t *dilation,
                           bool ceil_mode, tfw_tensor **indices) {
  return max_pool(TFW__OP_max_pool2d, 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                  indices);
}

tfw_tensor *tfw_max_pool1d(const tfw_tensor *input, int64_t kernel_size, int64_t stride,
                           int64_t padding, int64_t dilation, bool ceil_mode,
                           tfw_tensor **indices) {
  return max_pool(TFW__OP_max_pool1d, 1, input, &kernel_size, stride ? &stride : NULL, &padding,
                  &dilation, ceil_mode, indices);
}

static tfw_tensor *avg_pool(tfw__op_id id, int S, const tfw_tensor *x, const int64_t *kernel,
                            const int64_t *stride, const int64_t *padding, bool ceil_mode,
                            bool count_include_pad, int64_t divisor_override) {
  tfw__call c;
  tfw__call_init(&c, id, 1, &x);
  if (!kernel) {
    tfw__error(TFW_EVALUE, "%s: kernel_size is NULL", c.op->name);
    return NULL;
  }
  const int64_t *lists[3] = {kernel, stride ? stride : kernel, padding};
  const int64_t fills[3] = {1, 1, 0};
  set_lists(&c, S, 3, lists, fills);
  c.a.b[0] = ceil_mode;
  c.a.b[1] = count_include_pad;
  c.a.i[0] = divisor_override;
  tfw_tensor *out[2];
  return pool_run(&c, S, x, out) ? NULL : out[0];
}

tfw_tensor *tfw_avg_pool2d(const tfw_tensor *input, const int64_t *kernel_size,
                           const int64_t *stride, const int64_t *padding, bool ceil_mode,
                           bool count_include_pad, int64_t divisor_override) {
  return avg_pool(TFW__OP_avg_pool2d, 2, input, kernel_size, stride, padding, ceil_mode,
                  count_include_pad, divisor_override);
}

tfw_tensor *tfw_avg_pool1d(const tfw_tensor *input, int64_t kernel_size, int64_t stride,
                           int64_t padding, bool ceil_mode, bool count_include_pad) {
  return avg_pool(TFW__OP_avg_pool1d, 1, input, &kernel_size, stride ? &stride : NULL, &padding,
                  ceil_mode, count_include_pad, 0);
}

tfw_tensor *tfw_adaptive_avg_pool2d(const tfw_tensor *input, const int64_t *output_size) {
  tfw__call c;
  tfw__call_init(&c, TFW__OP_adaptive_avg_pool2d, 1, &input);
  if (!output_size) {
    tfw__error(TFW_EVALUE, "adaptive_avg_pool2d: output_size is NULL");
    return NULL;
  }
  const int64_t *lists[1] = {output_size}, fills[1] = {1};
  set_lists(&c, 2, 1, lists, fills);
  tfw_tensor *out[2];
  return pool_run(&c, 2, input, out) ? NULL : out[0];
}
