/* Winograd F(2x2, 3x3) convolution for f32 on AVX-512: forward, transposed (the input
 * gradient) and the weight gradient of 3x3, stride 1, dilation 1, ungrouped convolutions.
 *
 * Why: on the MNIST-example shapes (32->64 channels, 3x3, 26x26 -> 24x24, batch 64) the three
 * GEMMs of a conv step (forward, input grad, weight grad) are 1.36 GFLOP each; direct
 * (im2col) GEMMs at the FMA peak would still be ~18 ms per step on 2 Zen 4 cores. Winograd
 * F(2x2, 3x3) computes each 2x2 output tile from a 4x4 input tile with 16 multiplies per
 * channel pair instead of 36 (2.25x fewer), and its transforms only add, subtract and halve
 * (no error growth to speak of: F(4x4, 3x3) would save 4x but its 1/4..8 coefficients cost
 * ~2 more digits in f32).
 *
 * Letters (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015):
 *   input tile d (4x4), filter g (3x3), output tile y (2x2), a = 16 positions ("alpha")
 *   V = B^T d B,  U = G g G^T,  y = A^T (sum_c U (.) V) A
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * The weight gradient is the adjoint in g of the same formula:
 *   dg = G^T (sum over tiles (A dy A^T) (.) V) G
 * Per block of T tiles, the sums over channels (forward) or tiles (weight gradient) are 16
 * GEMMs, one per alpha, done by the packed GEMM (src/cpu/gemm.h) on the calling thread:
 *   forward   Y_a (Co x T) = U_a (Co x Ci) @ V_a (Ci x T)
 *   wgrad     M_a (O x C) += Z_a (O x T) @ V_a^T (T x C),   Z = A dy A^T
 *
 * Tiles: output tile (th, tw) covers rows 2th, 2th+1 and columns 2tw, 2tw+1; tiles are
 * numbered t = (n*TH + th)*TW + tw and processed in fixed blocks of T consecutive tiles.
 * The transforms run on 16 tiles of one tile-row at a time (vectors over tw): the input
 * rows are first copied into a zero-padded row buffer, so that padding and the ragged right
 * edge are plain zeros, and even/odd columns come out of two permutes.
 *
 * Determinism: the forward and transposed paths compute every output from its own tile with
 * a fixed operation order (blocks do not interact); the weight gradient sums fixed ranges of
 * tiles (a function of the shapes only) into partials that are added in range order. So the
 * results are bit-identical for any thread count.
 *
 * The transposed conv (stride 1, dilation 1, 3x3) is a forward conv of the small tensor with
 * the flipped, channel-swapped kernel w'[c, o, i, j] = w[o, c, 2-i, 2-j] and padding 2-p. */
#include <string.h>

#include "core/cpu.h"
#include "cpu/gemm.h"
#include "ops/conv.h"

#ifdef __x86_64__
#include <immintrin.h>
#define WINO_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma")))
#define WINO_HAVE 1
#else
#define WINO_HAVE 0
#endif

/* Bytes of transformed data (V and Y, or V and Z) per block: ~half of Zen 4's 1 MiB L2. */
#define WINO_BLOCK_BYTES ((int64_t)512 << 10)
/* Weight gradient: at most this many partial sums (each 16 * O * C floats). */
#define WINO_WG_CHUNKS 8

bool tfw__conv_winograd_ok(const tfw__conv_geom *g, tfw_dtype ct) {
#if WINO_HAVE
  if (ct != TFW_DTYPE_F32 || !tfw__cpu()->avx512f) return false;
  if (g->G != 1 || g->k[0] != 3 || g->k[1] != 3 || g->s[0] != 1 || g->s[1] != 1 ||
      g->d[0] != 1 || g->d[1] != 1 || g->p[0] > 2 || g->p[1] > 2)
    return false;
  /* one input channel (or output): the GEMMs have K = 1 (or M = 1), im2col is better */
  return g->C >= 4 && g->O >= 4 && g->P[0] >= 2 && g->P[1] >= 2 && g->N >= 1;
#else
  (void)g, (void)ct;
  return false;
#endif
}

#if WINO_HAVE

/* A forward problem: x [N, Ci, Hi, Wi] (*) 3x3 -> y [N, Co, Ho, Wo], padding ph, pw. */
typedef struct wino {
  int64_t N, Ci, Co, Hi, Wi, Ho, Wo, ph, pw;
  int64_t TH, TW, tiles, T, nblocks; /* tile grid, tiles per block, blocks */
  int64_t ld, asi, aso; /* row stride of the transformed tiles; alpha strides (in, out) */
  const float *x, *bias;
  const float *U; /* [16, Co, Ci] transformed filters (forward) */
  float *y;
  bool fail;
  /* weight gradient */
  const float *gy; /* [N, Co=O, Ho, Wo] */
  float *partial;  /* [chunks, 16, O, C] */
  int64_t chunks;
} wino;

static void wino_tiles(wino *w, int64_t per_tile_floats) {
  w->TH = (w->Ho + 1) / 2, w->TW = (w->Wo + 1) / 2;
  w->tiles = w->N * w->TH * w->TW;
  int64_t T = WINO_BLOCK_BYTES / (per_tile_floats * 4);
  T = T / 16 * 16;
  T = T < 16 ? 16 : T > 512 ? 512 : T;
  w->T = T;
  w->nblocks = (w->tiles + T - 1) / T;
  /* alpha strides off a multiple of 4 KiB: 16 streams 4 KiB apart share one L1 set */
  w->ld = T + 16;
  w->asi = w->Ci * w->ld + 16, w->aso = w->Co * w->ld + 16;
}

WINO_AVX512 static inline __m512 even16(__m512 a, __m512 b) {
  const __m512i ix = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  return _mm512_permutex2var_ps(a, ix, b);
}
WINO_AVX512 static inline __m512 odd16(__m512 a, __m512 b) {
  const __m512i ix = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  return _mm512_permutex2var_ps(a, ix, b);
}

/* Lanes l in [0, 16) with 0 <= q + l < W. */
static __mmask16 col_mask(int64_t q, int64_t W) {
  const int64_t lo = q < 0 ? -q : 0, hi = W - q < 16 ? W - q : 16;
  if (hi <= lo) return 0;
  return (__mmask16)((((uint32_t)1 << hi) - 1) & ~(((uint32_t)1 << lo) - 1));
}

/* x + off as an address for masked loads, which never touch masked-off lanes (off may
 * point before the row when padding is on the left). */
static const float *at(const float *x, int64_t off) {
  return (const float *)((uintptr_t)x + (uintptr_t)(off * (int64_t)sizeof(float)));
}

/* Visits the tiles [t0, t1) as runs of at most 16 consecutive tiles of one tile-row:
 * fn(n, th, tw0, cnt, slot) with slot = index of the first tile in the block. */
#define FOR_RUNS(w, t0, t1, ...)                                                               \
  for (int64_t t_ = (t0); t_ < (t1);) {                                                        \
    const int64_t n = t_ / ((w)->TH * (w)->TW), th = t_ / (w)->TW % (w)->TH;                   \
    const int64_t tw0 = t_ % (w)->TW;                                                          \
    int64_t cnt = (w)->TW - tw0 < 16 ? (w)->TW - tw0 : 16;                                     \
    if (cnt > (t1) - t_) cnt = (t1) - t_;                                                      \
    const int64_t slot = t_ - (t0);                                                            \
    __VA_ARGS__                                                                                \
    t_ += cnt;                                                                                 \
  }

/* V [16][C, ld] (alpha stride as; slots [0, t1-t0)) = B^T d B of the tiles [t0, t1) of x
 * [N, C, Hi, Wi]. Input columns outside the row (padding, ragged edge) come from masked
 * loads as zeros. A run's 16 lanes are stored whole; lanes past cnt are overwritten by the
 * next run or lie past the block's last slot (the buffers have 16 floats of slack). */
WINO_AVX512 static void input_transform(const wino *w, const float *x, int64_t C, int64_t t0,
                                        int64_t t1, float *V, int64_t ld, int64_t as) {
  const int64_t plane = w->Hi * w->Wi, Wi = w->Wi;
  /* channel-major: the runs of one channel walk down its planes row after row */
  for (int64_t c = 0; c < C; c++) FOR_RUNS(w, t0, t1, {
    const int64_t q0 = 2 * tw0 - w->pw, r0 = 2 * th - w->ph;
    const __mmask16 ma = col_mask(q0, Wi), mb = col_mask(q0 + 16, Wi);
    const __mmask16 ma2 = col_mask(q0 + 2, Wi), mb2 = col_mask(q0 + 18, Wi);
    const float *xp = x + (n * C + c) * plane;
    __m512 t[4][4];
    for (int r = 0; r < 4; r++) {
      const int64_t ih = r0 + r;
      const bool in = ih >= 0 && ih < w->Hi;
      const int64_t off = ih * Wi + q0;
      __m512 a = _mm512_maskz_loadu_ps(in ? ma : 0, at(xp, off));
      __m512 b = _mm512_maskz_loadu_ps(in ? mb : 0, at(xp, off + 16));
      __m512 a2 = _mm512_maskz_loadu_ps(in ? ma2 : 0, at(xp, off + 2));
      __m512 b2 = _mm512_maskz_loadu_ps(in ? mb2 : 0, at(xp, off + 18));
      __m512 d0 = even16(a, b), d1 = odd16(a, b), d2 = even16(a2, b2), d3 = odd16(a2, b2);
      t[r][0] = _mm512_sub_ps(d0, d2);
      t[r][1] = _mm512_add_ps(d1, d2);
      t[r][2] = _mm512_sub_ps(d2, d1);
      t[r][3] = _mm512_sub_ps(d1, d3);
    }
    float *v = V + c * ld + slot;
    for (int j = 0; j < 4; j++) {
      _mm512_storeu_ps(v + (0 * 4 + j) * as, _mm512_sub_ps(t[0][j], t[2][j]));
      _mm512_storeu_ps(v + (1 * 4 + j) * as, _mm512_add_ps(t[1][j], t[2][j]));
      _mm512_storeu_ps(v + (2 * 4 + j) * as, _mm512_sub_ps(t[2][j], t[1][j]));
      _mm512_storeu_ps(v + (3 * 4 + j) * as, _mm512_sub_ps(t[1][j], t[3][j]));
    }
  })
}

/* y tiles [t0, t1) = A^T Y A (+ bias) from Y [16, Co, ld]. */
WINO_AVX512 static void output_transform(const wino *w, const float *Y, int64_t t0, int64_t t1) {
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                       15, 31);
  const int64_t ld = w->ld, as = w->aso, plane = w->Ho * w->Wo;
  for (int64_t o = 0; o < w->Co; o++) FOR_RUNS(w, t0, t1, {
    /* valid output columns of the run: [2*tw0, min(Wo, 2*(tw0+cnt))) */
    int64_t nc = w->Wo - 2 * tw0;
    nc = nc < 2 * cnt ? nc : 2 * cnt;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1);
    const __mmask16 m1 = (__mmask16)(nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
    const bool row1 = 2 * th + 1 < w->Ho;
    const float *ys = Y + o * ld + slot;
    __m512 s0[4], s1[4];
    for (int j = 0; j < 4; j++) {
      __m512 m0v = _mm512_loadu_ps(ys + (0 * 4 + j) * as);
      __m512 m1v = _mm512_loadu_ps(ys + (1 * 4 + j) * as);
      __m512 m2v = _mm512_loadu_ps(ys + (2 * 4 + j) * as);
      __m512 m3v = _mm512_loadu_ps(ys + (3 * 4 + j) * as);
      s0[j] = _mm512_add_ps(_mm512_add_ps(m0v, m1v), m2v);
      s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1v, m2v), m3v);
    }
    const __m512 bv = _mm512_set1_ps(w->bias ? w->bias[o] : 0.0f);
    float *yp = w->y + (n * w->Co + o) * plane + 2 * th * w->Wo + 2 * tw0;
    for (int r = 0; r < (row1 ? 2 : 1); r++) {
      const __m512 *sr = r == 0 ? s0 : s1;
      __m512 e = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(sr[0], sr[1]), sr[2]), bv);
      __m512 f = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(sr[1], sr[2]), sr[3]), bv);
      _mm512_mask_storeu_ps(yp + r * w->Wo, m0, _mm512_permutex2var_ps(e, lo, f));
      if (m1) _mm512_mask_storeu_ps(yp + r * w->Wo + 16, m1, _mm512_permutex2var_ps(e, hi, f));
    }
  })
}

static float *scratch(wino *w, size_t floats) {
  float *p = tfw__malloc(floats * sizeof(float));
  if (!p) w->fail = true;
  return p;
}

static void fwd_blocks(int64_t b0, int64_t b1, void *ctx) {
  wino *w = ctx;
  const int64_t ld = w->ld;
  float *V = scratch(w, (size_t)(16 * w->asi)), *Y = scratch(w, (size_t)(16 * w->aso));
  if (V && Y)
    for (int64_t b = b0; b < b1; b++) {
      const int64_t t0 = b * w->T, t1 = t0 + w->T < w->tiles ? t0 + w->T : w->tiles;
      input_transform(w, w->x, w->Ci, t0, t1, V, ld, w->asi);
      for (int a = 0; a < 16; a++)
        tfw__sgemm(w->Co, t1 - t0, w->Ci, 1.0f, w->U + a * w->Co * w->Ci, w->Ci, 1,
                   V + a * w->asi, ld, 1, 0.0f, Y + a * w->aso, ld, 1);
      output_transform(w, Y, t0, t1);
    }
  tfw__free(V), tfw__free(Y);
}

/* U [16, Co, Ci] = G g G^T of the 3x3 filters; transposed: g[co, ci] = w[ci, co] flipped. */
static void filter_transform(const float *wt, int64_t Co, int64_t Ci, bool transposed,
                             float *U) {
  for (int64_t o = 0; o < Co; o++)
    for (int64_t c = 0; c < Ci; c++) {
      float g[3][3], t[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          g[i][j] = transposed ? wt[((c * Co + o) * 3 + 2 - i) * 3 + 2 - j]
                               : wt[((o * Ci + c) * 3 + i) * 3 + j];
      for (int j = 0; j < 3; j++) {
        t[0][j] = g[0][j];
        t[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        t[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        t[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        float u[4] = {t[i][0], 0.5f * (t[i][0] + t[i][1] + t[i][2]),
                      0.5f * (t[i][0] - t[i][1] + t[i][2]), t[i][2]};
        for (int j = 0; j < 4; j++) U[((i * 4 + j) * Co + o) * Ci + c] = u[j];
      }
    }
}

tfw_status tfw__conv_winograd(const tfw__conv_geom *g, bool transposed, const float *x,
                              const float *wt, const float *bias, float *y) {
  wino w = {.N = g->N, .x = x, .bias = bias, .y = y};
  if (transposed) { /* small [N, O, P] -> big [N, C, L], padding 2 - p */
    w.Ci = g->O, w.Co = g->C, w.Hi = g->P[0], w.Wi = g->P[1], w.Ho = g->L[0], w.Wo = g->L[1];
    w.ph = 2 - g->p[0], w.pw = 2 - g->p[1];
  } else {
    w.Ci = g->C, w.Co = g->O, w.Hi = g->L[0], w.Wi = g->L[1], w.Ho = g->P[0], w.Wo = g->P[1];
    w.ph = g->p[0], w.pw = g->p[1];
  }
  wino_tiles(&w, 16 * (w.Ci + w.Co));
  float *U = tfw__malloc((size_t)(16 * w.Co * w.Ci) * sizeof(float));
  if (!U) return tfw__error(TFW_ENOMEM, "conv2d: out of memory for the Winograd filters");
  filter_transform(wt, w.Co, w.Ci, transposed, U);
  w.U = U;
  tfw__parallel_for(w.nblocks, 1, fwd_blocks, &w);
  tfw__free(U);
  return w.fail ? tfw__error(TFW_ENOMEM, "conv2d: out of memory for the Winograd scratch")
                : TFW_OK;
}

/* Z [16, O, ld] = A dy A^T of the gy tiles [t0, t1) (zeros outside gy). */
WINO_AVX512 static void grad_transform(const wino *w, int64_t t0, int64_t t1, float *Z) {
  const int64_t plane = w->Ho * w->Wo, ld = w->ld, as = w->aso;
  for (int64_t o = 0; o < w->Co; o++) FOR_RUNS(w, t0, t1, {
    int64_t nc = w->Wo - 2 * tw0;
    nc = nc < 2 * cnt ? nc : 2 * cnt;
    const __mmask16 m0 = (__mmask16)(nc >= 16 ? 0xFFFF : (1u << nc) - 1);
    const __mmask16 m1 = (__mmask16)(nc <= 16 ? 0 : (1u << (nc - 16)) - 1);
    const bool row1 = 2 * th + 1 < w->Ho;
    const float *gp = w->gy + (n * w->Co + o) * plane + 2 * th * w->Wo + 2 * tw0;
    __m512 r[2][4];
    for (int i = 0; i < 2; i++) {
      __m512 a = _mm512_setzero_ps(), b = _mm512_setzero_ps();
      if (i == 0 || row1) {
        a = _mm512_maskz_loadu_ps(m0, gp + i * w->Wo);
        b = _mm512_maskz_loadu_ps(m1, gp + i * w->Wo + 16);
      }
      __m512 y0 = even16(a, b), y1 = odd16(a, b);
      r[i][0] = y0;
      r[i][1] = _mm512_add_ps(y0, y1);
      r[i][2] = _mm512_sub_ps(y0, y1);
      r[i][3] = _mm512_sub_ps(_mm512_setzero_ps(), y1);
    }
    float *z = Z + o * ld + slot;
    for (int j = 0; j < 4; j++) {
      _mm512_storeu_ps(z + (0 * 4 + j) * as, r[0][j]);
      _mm512_storeu_ps(z + (1 * 4 + j) * as, _mm512_add_ps(r[0][j], r[1][j]));
      _mm512_storeu_ps(z + (2 * 4 + j) * as, _mm512_sub_ps(r[0][j], r[1][j]));
      _mm512_storeu_ps(z + (3 * 4 + j) * as, _mm512_sub_ps(_mm512_setzero_ps(), r[1][j]));
    }
  })
}

static void wg_chunks(int64_t c0, int64_t c1, void *ctx) {
  wino *w = ctx;
  const int64_t ld = w->ld, msize = 16 * w->Co * w->Ci;
  float *V = scratch(w, (size_t)(16 * w->asi)), *Z = scratch(w, (size_t)(16 * w->aso));
  if (V && Z)
    for (int64_t ch = c0; ch < c1; ch++) {
      float *M = w->partial + ch * msize;
      const int64_t b0 = ch * w->nblocks / w->chunks, b1 = (ch + 1) * w->nblocks / w->chunks;
      if (b0 == b1) memset(M, 0, (size_t)msize * sizeof(float));
      for (int64_t b = b0; b < b1; b++) {
        const int64_t t0 = b * w->T, t1 = t0 + w->T < w->tiles ? t0 + w->T : w->tiles;
        input_transform(w, w->x, w->Ci, t0, t1, V, ld, w->asi);
        grad_transform(w, t0, t1, Z);
        /* M_a (O x C) (+)= Z_a (O x T) @ V_a^T (T x C) */
        for (int a = 0; a < 16; a++)
          tfw__sgemm(w->Co, w->Ci, t1 - t0, 1.0f, Z + a * w->aso, ld, 1, V + a * w->asi, 1, ld,
                     b == b0 ? 0.0f : 1.0f, M + a * w->Co * w->Ci, w->Ci, 1);
      }
    }
  tfw__free(V), tfw__free(Z);
}

tfw_status tfw__conv_winograd_wgrad(const tfw__conv_geom *g, const float *x, const float *gy,
                                    float *dw) {
  wino w = {.N = g->N, .x = x, .gy = gy};
  w.Ci = g->C, w.Co = g->O, w.Hi = g->L[0], w.Wi = g->L[1], w.Ho = g->P[0], w.Wo = g->P[1];
  w.ph = g->p[0], w.pw = g->p[1];
  wino_tiles(&w, 16 * (w.Ci + w.Co));
  const int64_t msize = 16 * w.Co * w.Ci;
  w.chunks = w.nblocks < WINO_WG_CHUNKS ? w.nblocks : WINO_WG_CHUNKS;
  w.partial = tfw__malloc((size_t)(w.chunks * msize) * sizeof(float));
  if (!w.partial) return tfw__error(TFW_ENOMEM, "conv_weight_grad: out of memory");
  tfw__parallel_for(w.chunks, 1, wg_chunks, &w);
  if (w.fail) {
    tfw__free(w.partial);
    return tfw__error(TFW_ENOMEM, "conv_weight_grad: out of memory for the Winograd scratch");
  }
  float *M = w.partial; /* partials added in chunk order into the first */
  for (int64_t ch = 1; ch < w.chunks; ch++)
    for (int64_t e = 0; e < msize; e++) M[e] += w.partial[ch * msize + e];
  /* dw[o, c] = G^T M[:, o, c] G */
  for (int64_t o = 0; o < w.Co; o++)
    for (int64_t c = 0; c < w.Ci; c++) {
      float m[4][4], t[3][4];
      for (int a = 0; a < 16; a++) m[a / 4][a % 4] = M[(a * w.Co + o) * w.Ci + c];
      for (int j = 0; j < 4; j++) {
        t[0][j] = m[0][j] + 0.5f * (m[1][j] + m[2][j]);
        t[1][j] = 0.5f * (m[1][j] - m[2][j]);
        t[2][j] = 0.5f * (m[1][j] + m[2][j]) + m[3][j];
      }
      float *d = dw + (o * w.Ci + c) * 9;
      for (int i = 0; i < 3; i++) {
        d[i * 3 + 0] = t[i][0] + 0.5f * (t[i][1] + t[i][2]);
        d[i * 3 + 1] = 0.5f * (t[i][1] - t[i][2]);
        d[i * 3 + 2] = 0.5f * (t[i][1] + t[i][2]) + t[i][3];
      }
    }
  tfw__free(w.partial);
  return TFW_OK;
}

#else /* no x86-64: never chosen (tfw__conv_winograd_ok is false) */

tfw_status tfw__conv_winograd(const tfw__conv_geom *g, bool transposed, const float *x,
                              const float *wt, const float *bias, float *y) {
  (void)g, (void)transposed, (void)x, (void)wt, (void)bias, (void)y;
  return tfw__error(TFW_EINTERNAL, "conv2d: Winograd path without AVX-512");
}

tfw_status tfw__conv_winograd_wgrad(const tfw__conv_geom *g, const float *x, const float *gy,
                                    float *dw) {
  (void)g, (void)x, (void)gy, (void)dw;
  return tfw__error(TFW_EINTERNAL, "conv_weight_grad: Winograd path without AVX-512");
}

#endif
