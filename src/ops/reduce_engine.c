/* The reduction engine: typed row/column kernels for every reduction kind, and the three
 * drivers (row, column, split) described in ops/reduce.h.
 *
 * Kernel shapes and why:
 * - Contiguous rows are reduced with 16 (or 32) independent lanes so that gcc vectorises the
 *   loop without -ffast-math (the lane order is fixed, so results are reproducible). f32
 *   sums accumulate 256-element blocks in f32 lanes and carry the block sums in f64 lanes:
 *   the f32 pass keeps the loop at full SIMD width, the f64 carry keeps the error of a long
 *   sum near the error of one 8-term block (the 1e6-element test is within 1e-6 relative).
 * - Column reductions (a kept dim is innermost) accumulate out[j] += x[r, j] over the
 *   reduced index r, vectorised over j in blocks of 1024 columns, with f64 accumulators for
 *   f32 input; the f32 sum adds 8 rows in f32 before each f64 add (sum over dim 0 of a
 *   4096x4096 f32 went from 11.7 to 5 ms on one core; 512-column blocks were slower: more
 *   row restarts per page). The input is never transposed or copied.
 * - A reduction to a single output is split into tfw__parallel_chunks(nred, 32768) blocks,
 *   a pure function of the size, and the block partials are combined in block order, so
 *   1 and N threads give the same bits.
 * The hot functions carry target_clones so x86-64-v3/v4 machines get AVX2/AVX-512 code
 * from a baseline build. */
#include <math.h>

#include "ops/reduce.h"

/* Typed loops are generated for every dtype and not all are used; clang refuses
 * `unused` together with target_clones, so silence the warning for the file instead. */
#pragma GCC diagnostic ignored "-Wunused-function"
#define HOT TFW_CLONES
#define MAYBE_UNUSED __attribute__((unused))
#define UNUSED(x) (void)(x)

/* ---- kernels ------------------------------------------------------------------------- */

static double hsum16(const double *l) {
  double t[16];
  for (int j = 0; j < 16; j++) t[j] = l[j];
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; j++) t[j] += t[j + w];
  return t[0];
}

/* f32 sum: see the file comment. */
HOT static double sum_f32_contig(const float *x, int64_t n) {
  double dl[32] = {0};
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    float fl[32] = {0};
    for (int k = 0; k < 256; k += 32)
      for (int j = 0; j < 32; j++) fl[j] += x[i + k + j];
    for (int j = 0; j < 32; j++) dl[j] += (double)fl[j];
  }
  double t = 0;
  for (; i < n; i++) t += (double)x[i];
  for (int j = 0; j < 16; j++) dl[j] += dl[j + 16];
  return hsum16(dl) + t;
}

static void row_sum_f32(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,
                        int64_t i0, const double *prm) {
  UNUSED(idx), UNUSED(i0), UNUSED(prm);
  if (s == (int64_t)sizeof(float)) {
    v->d += sum_f32_contig((const float *)p, n);
    return;
  }
  double acc = 0;
  for (int64_t i = 0; i < n; i++) acc += (double)*(const float *)(p + i * s);
  v->d += acc;
}

void tfw__sum_rows_f32(const float *x, int64_t rows, int64_t n, float *out) {
  for (int64_t r = 0; r < rows; r++) out[r] = (float)sum_f32_contig(x + r * n, n);
}

#define COL_BLOCK 1024 /* columns per task in the column driver */

/* Column f32 sum over many rows: 8 rows at a time summed in f32 (full SIMD width, one add
 * per element), each 8-row partial added into the f64 accumulators. */
HOT static void cols_sum_f32(const char *p, int64_t n, int64_t s, int64_t nrows, int64_t rs,
                             tfw__rval *v) {
  double *a = (double *)v;
  if (s != (int64_t)sizeof(float)) {
    for (int64_t r = 0; r < nrows; r++)
      for (int64_t j = 0; j < n; j++) a[j] += (double)*(const float *)(p + r * rs + j * s);
    return;
  }
  float t[COL_BLOCK];
  for (int64_t r0 = 0; r0 < nrows; r0 += 8) {
    int64_t r1 = r0 + 8 < nrows ? r0 + 8 : nrows;
    const float *x = (const float *)(p + r0 * rs);
    for (int64_t j = 0; j < n; j++) t[j] = x[j];
    for (int64_t r = r0 + 1; r < r1; r++) {
      x = (const float *)(p + r * rs);
      for (int64_t j = 0; j < n; j++) t[j] += x[j];
    }
    for (int64_t j = 0; j < n; j++) a[j] += (double)t[j];
  }
}

/* Floating sums of a transform F(xv, m) accumulated in f64 (m: the per-output parameter). */
#define F_ID(xv, m) (xv)
#define F_ABS(xv, m) fabs(xv)
#define F_SQ(xv, m) ((xv) * (xv))
#define F_POW(xv, m) pow(fabs(xv), (m))
#define F_SQDEV(xv, m) (((xv) - (m)) * ((xv) - (m)))
#define F_EXP(xv, m) exp((xv) - (m))

#define DEF_FSUM(NAME, T, F, HASP)                                                            \
  HOT static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0);                                                                  \
    const double m = (HASP && prm) ? *prm : 0.0;                                              \
    UNUSED(m);                                                                                \
    double acc = 0;                                                                           \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      double l[16] = {0};                                                                     \
      int64_t i = 0;                                                                          \
      for (; i + 16 <= n; i += 16)                                                            \
        for (int j = 0; j < 16; j++) {                                                        \
          double xv = (double)x[i + j];                                                       \
          l[j] += F(xv, m);                                                                   \
        }                                                                                     \
      for (; i < n; i++) {                                                                    \
        double xv = (double)x[i];                                                             \
        acc += F(xv, m);                                                                      \
      }                                                                                       \
      acc += hsum16(l);                                                                       \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                       \
        double xv = (double)*(const T *)(p + i * s);                                          \
        acc += F(xv, m);                                                                      \
      }                                                                                       \
    }                                                                                         \
    v->d += acc;                                                                              \
  }                                                                                           \
  HOT static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t ri, const double *prm) {                                \
    UNUSED(idx), UNUSED(ri);                                                                  \
    double *a = (double *)v;                                                                  \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      for (int64_t j = 0; j < n; j++) {                                                       \
        const double m = HASP ? prm[j] : 0.0;                                                 \
        double xv = (double)x[j];                                                             \
        UNUSED(m);                                                                            \
        a[j] += F(xv, m);                                                                     \
      }                                                                                       \
    } else {                                                                                  \
      for (int64_t j = 0; j < n; j++) {                                                       \
        const double m = HASP ? prm[j] : 0.0;                                                 \
        double xv = (double)*(const T *)(p + j * s);                                          \
        UNUSED(m);                                                                            \
        a[j] += F(xv, m);                                                                     \
      }                                                                                       \
    }                                                                                         \
  }

/* f32 SUM uses row_sum_f32 above; its column kernel comes from the template. */
DEF_FSUM(fsum_f32, float, F_ID, 0)
DEF_FSUM(fsum_f64, double, F_ID, 0)
DEF_FSUM(asum_f32, float, F_ABS, 0)
DEF_FSUM(asum_f64, double, F_ABS, 0)
DEF_FSUM(ssq_f32, float, F_SQ, 0)
DEF_FSUM(ssq_f64, double, F_SQ, 0)
DEF_FSUM(psum_f32, float, F_POW, 1)
DEF_FSUM(psum_f64, double, F_POW, 1)
DEF_FSUM(sqdev_f32, float, F_SQDEV, 1)
DEF_FSUM(sqdev_f64, double, F_SQDEV, 1)
DEF_FSUM(sexp_f32, float, F_EXP, 1)
DEF_FSUM(sexp_f64, double, F_EXP, 1)

/* Floating product in f64 lanes. */
#define DEF_FPROD(NAME, T)                                                                    \
  MAYBE_UNUSED static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,     \
                         int64_t i0, const double *prm) {                                    \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    double acc = 1;                                                                           \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      double l[16];                                                                           \
      for (int j = 0; j < 16; j++) l[j] = 1;                                                  \
      int64_t i = 0;                                                                          \
      for (; i + 16 <= n; i += 16)                                                            \
        for (int j = 0; j < 16; j++) l[j] *= (double)x[i + j];                                \
      for (; i < n; i++) acc *= (double)x[i];                                                 \
      for (int j = 0; j < 16; j++) acc *= l[j];                                               \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) acc *= (double)*(const T *)(p + i * s);                 \
    }                                                                                         \
    v->d *= acc;                                                                              \
  }                                                                                           \
  MAYBE_UNUSED static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,     \
                         int64_t ri, const double *prm) {                                    \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    double *a = (double *)v;                                                                  \
    for (int64_t j = 0; j < n; j++) a[j] *= (double)*(const T *)(p + j * s);                  \
  }
DEF_FPROD(fprod_f32, float)
DEF_FPROD(fprod_f64, double)

/* Integer sums and products wrap in uint64 (two's complement, like PyTorch's int64). CV
 * converts an element: bool is x != 0. */
#define CV_INT(x) ((uint64_t)(int64_t)(x))
#define CV_BOOL(x) ((uint64_t)((x) != 0))
#define OP_ADD(a, b) ((a) + (b))
#define OP_MUL(a, b) ((a) * (b))
#define DEF_IRED(NAME, T, CV, OP, ID)                                                         \
  HOT static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    uint64_t acc = ID;                                                                        \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      uint64_t l[16];                                                                         \
      for (int j = 0; j < 16; j++) l[j] = ID;                                                 \
      int64_t i = 0;                                                                          \
      for (; i + 16 <= n; i += 16)                                                            \
        for (int j = 0; j < 16; j++) l[j] = OP(l[j], CV(x[i + j]));                           \
      for (; i < n; i++) acc = OP(acc, CV(x[i]));                                             \
      for (int j = 0; j < 16; j++) acc = OP(acc, l[j]);                                       \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) acc = OP(acc, CV(*(const T *)(p + i * s)));             \
    }                                                                                         \
    v->i = (int64_t)OP((uint64_t)v->i, acc);                                                  \
  }                                                                                           \
  HOT static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t ri, const double *prm) {                                \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    uint64_t *a = (uint64_t *)v;                                                              \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      for (int64_t j = 0; j < n; j++) a[j] = OP(a[j], CV(x[j]));                              \
    } else {                                                                                  \
      for (int64_t j = 0; j < n; j++) a[j] = OP(a[j], CV(*(const T *)(p + j * s)));           \
    }                                                                                         \
  }
#define DEF_IRED_ALL(OPN, OP, ID)                                                             \
  DEF_IRED(OPN##_i8, int8_t, CV_INT, OP, ID)                                                  \
  DEF_IRED(OPN##_u8, uint8_t, CV_INT, OP, ID)                                                 \
  DEF_IRED(OPN##_i32, int32_t, CV_INT, OP, ID)                                                \
  DEF_IRED(OPN##_i64, int64_t, CV_INT, OP, ID)                                                \
  DEF_IRED(OPN##_bool, uint8_t, CV_BOOL, OP, ID)
DEF_IRED_ALL(isum, OP_ADD, 0)
DEF_IRED_ALL(iprod, OP_MUL, 1)

/* Floating extrema: lanes in the input type, NaN sticky (once a NaN is seen it stays).
 * BETTER(a, b): b replaces a. */
#define MAXB(a, b) ((b) > (a) || (b) != (b))
#define MINB(a, b) ((b) < (a) || (b) != (b))
#define DEF_FEXT(NAME, T, F, B, INIT)                                                         \
  HOT static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    T acc = (T)(INIT);                                                                        \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      T l[32];                                                                                \
      for (int j = 0; j < 32; j++) l[j] = (T)(INIT);                                          \
      int64_t i = 0;                                                                          \
      for (; i + 32 <= n; i += 32)                                                            \
        for (int j = 0; j < 32; j++) {                                                        \
          T xv = F(x[i + j]);                                                                 \
          l[j] = B(l[j], xv) ? xv : l[j];                                                     \
        }                                                                                     \
      for (; i < n; i++) {                                                                    \
        T xv = F(x[i]);                                                                       \
        acc = B(acc, xv) ? xv : acc;                                                          \
      }                                                                                       \
      for (int j = 0; j < 32; j++) acc = B(acc, l[j]) ? l[j] : acc;                           \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                       \
        T xv = F(*(const T *)(p + i * s));                                                    \
        acc = B(acc, xv) ? xv : acc;                                                          \
      }                                                                                       \
    }                                                                                         \
    double r = (double)acc;                                                                   \
    if (B(v->d, r)) v->d = r;                                                                 \
  }                                                                                           \
  HOT static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t ri, const double *prm) {                                \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    double *a = (double *)v;                                                                  \
    for (int64_t j = 0; j < n; j++) {                                                         \
      double xv = (double)F(*(const T *)(p + j * s));                                         \
      a[j] = B(a[j], xv) ? xv : a[j];                                                         \
    }                                                                                         \
  }
#define NOF(x) (x)
DEF_FEXT(fmax_f32, float, NOF, MAXB, -INFINITY)
DEF_FEXT(fmax_f64, double, NOF, MAXB, -INFINITY)
DEF_FEXT(fmin_f32, float, NOF, MINB, INFINITY)
DEF_FEXT(fmin_f64, double, NOF, MINB, INFINITY)
DEF_FEXT(amaxabs_f32, float, fabsf, MAXB, -INFINITY)
DEF_FEXT(amaxabs_f64, double, fabs, MAXB, -INFINITY)
DEF_FEXT(aminabs_f32, float, fabsf, MINB, INFINITY)
DEF_FEXT(aminabs_f64, double, fabs, MINB, INFINITY)

/* Integer extrema in int64 lanes. */
#define IMAXB(a, b) ((b) > (a))
#define IMINB(a, b) ((b) < (a))
#define DEF_IEXT(NAME, T, CV, B, INIT)                                                        \
  HOT static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,  \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    int64_t acc = INIT;                                                                       \
    if (s == (int64_t)sizeof(T)) {                                                            \
      const T *x = (const T *)p;                                                              \
      int64_t l[16];                                                                          \
      for (int j = 0; j < 16; j++) l[j] = INIT;                                               \
      int64_t i = 0;                                                                          \
      for (; i + 16 <= n; i += 16)                                                            \
        for (int j = 0; j < 16; j++) {                                                        \
          int64_t xv = (int64_t)CV(x[i + j]);                                                 \
          l[j] = B(l[j], xv) ? xv : l[j];                                                     \
        }                                                                                     \
      for (; i < n; i++) {                                                                    \
        int64_t xv = (int64_t)CV(x[i]);                                                       \
        acc = B(acc, xv) ? xv : acc;                                                          \
      }                                                                                       \
      for (int j = 0; j < 16; j++) acc = B(acc, l[j]) ? l[j] : acc;                           \
    } else {                                                                                  \
      for (int64_t i = 0; i < n; i++) {                                                       \
        int64_t xv = (int64_t)CV(*(const T *)(p + i * s));                                    \
        acc = B(acc, xv) ? xv : acc;                                                          \
      }                                                                                       \
    }                                                                                         \
    if (B(v->i, acc)) v->i = acc;                                                             \
  }                                                                                           \
  MAYBE_UNUSED static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,     \
                         int64_t ri, const double *prm) {                                    \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    int64_t *a = (int64_t *)v;                                                                \
    for (int64_t j = 0; j < n; j++) {                                                         \
      int64_t xv = (int64_t)CV(*(const T *)(p + j * s));                                      \
      a[j] = B(a[j], xv) ? xv : a[j];                                                         \
    }                                                                                         \
  }
#define DEF_IEXT_ALL(OPN, B, INIT)                                                            \
  DEF_IEXT(OPN##_i8, int8_t, CV_INT, B, INIT)                                                 \
  DEF_IEXT(OPN##_u8, uint8_t, CV_INT, B, INIT)                                                \
  DEF_IEXT(OPN##_i32, int32_t, CV_INT, B, INIT)                                               \
  DEF_IEXT(OPN##_i64, int64_t, CV_INT, B, INIT)                                               \
  DEF_IEXT(OPN##_bool, uint8_t, CV_BOOL, B, INIT)
DEF_IEXT_ALL(imax, IMAXB, INT64_MIN)
DEF_IEXT_ALL(imin, IMINB, INT64_MAX)

/* all / any over any dtype: x != 0 (NaN counts as true). */
#define DEF_LOGIC(NAME, T)                                                                    \
  MAYBE_UNUSED static void row_all_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx, \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    if (!v->i) return;                                                                        \
    for (int64_t i = 0; i < n; i++)                                                           \
      if (!(*(const T *)(p + i * s) != 0)) {                                                  \
        v->i = 0;                                                                             \
        return;                                                                               \
      }                                                                                       \
  }                                                                                           \
  MAYBE_UNUSED static void row_any_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx, \
                             int64_t i0, const double *prm) {                                \
    UNUSED(idx), UNUSED(i0), UNUSED(prm);                                                     \
    if (v->i) return;                                                                         \
    for (int64_t i = 0; i < n; i++)                                                           \
      if (*(const T *)(p + i * s) != 0) {                                                     \
        v->i = 1;                                                                             \
        return;                                                                               \
      }                                                                                       \
  }                                                                                           \
  MAYBE_UNUSED static void col_all_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx, \
                             int64_t ri, const double *prm) {                                \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    int64_t *a = (int64_t *)v;                                                                \
    for (int64_t j = 0; j < n; j++) a[j] &= (int64_t)(*(const T *)(p + j * s) != 0);          \
  }                                                                                           \
  MAYBE_UNUSED static void col_any_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx, \
                             int64_t ri, const double *prm) {                                \
    UNUSED(idx), UNUSED(ri), UNUSED(prm);                                                     \
    int64_t *a = (int64_t *)v;                                                                \
    for (int64_t j = 0; j < n; j++) a[j] |= (int64_t)(*(const T *)(p + j * s) != 0);          \
  }
DEF_LOGIC(f32, float)
DEF_LOGIC(f64, double)
DEF_LOGIC(i8, int8_t)
DEF_LOGIC(u8, uint8_t)
DEF_LOGIC(i32, int32_t)
DEF_LOGIC(i64, int64_t)

/* argmax / argmin: the first index of the best value; for floats NaN beats everything and
 * the first NaN wins (PyTorch). A (the accumulator field) is d or i. */
#define AMAXB(a, b) ((b) > (a) || ((b) != (b) && (a) == (a)))
#define AMINB(a, b) ((b) < (a) || ((b) != (b) && (a) == (a)))
#define DEF_ARG(NAME, T, CV, AT, A, B)                                                        \
  MAYBE_UNUSED static void row_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,     \
                         int64_t i0, const double *prm) {                                    \
    UNUSED(prm);                                                                              \
    AT best = v->A;                                                                           \
    int64_t bi = *idx;                                                                        \
    for (int64_t i = 0; i < n; i++) {                                                         \
      AT xv = (AT)CV(*(const T *)(p + i * s));                                                \
      if (bi < 0 || B(best, xv)) {                                                            \
        best = xv;                                                                            \
        bi = i0 + i;                                                                          \
      }                                                                                       \
    }                                                                                         \
    v->A = best;                                                                              \
    *idx = bi;                                                                                \
  }                                                                                           \
  MAYBE_UNUSED static void col_##NAME(const char *p, int64_t n, int64_t s, tfw__rval *v, int64_t *idx,     \
                         int64_t ri, const double *prm) {                                    \
    UNUSED(prm);                                                                              \
    for (int64_t j = 0; j < n; j++) {                                                         \
      AT xv = (AT)CV(*(const T *)(p + j * s));                                                \
      if (idx[j] < 0 || B(v[j].A, xv)) {                                                      \
        v[j].A = xv;                                                                          \
        idx[j] = ri;                                                                          \
      }                                                                                       \
    }                                                                                         \
  }
#define CV_NONE(x) (x)
#define CV_B01(x) ((x) != 0)
#define DEF_ARG_ALL(OPN, FB, IB)                                                              \
  DEF_ARG(OPN##_f32, float, CV_NONE, double, d, FB)                                           \
  DEF_ARG(OPN##_f64, double, CV_NONE, double, d, FB)                                          \
  DEF_ARG(OPN##_i8, int8_t, CV_NONE, int64_t, i, IB)                                          \
  DEF_ARG(OPN##_u8, uint8_t, CV_NONE, int64_t, i, IB)                                         \
  DEF_ARG(OPN##_i32, int32_t, CV_NONE, int64_t, i, IB)                                        \
  DEF_ARG(OPN##_i64, int64_t, CV_NONE, int64_t, i, IB)                                        \
  DEF_ARG(OPN##_bool, uint8_t, CV_B01, int64_t, i, IB)
DEF_ARG_ALL(argmax, AMAXB, IMAXB)
DEF_ARG_ALL(argmin, AMINB, IMINB)

/* ---- combine rules (split partials, in block order) ------------------------------------ */
static void comb_fadd(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) { v->d += v2.d; }
static void comb_fmul(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) { v->d *= v2.d; }
static void comb_iadd(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  v->i = (int64_t)((uint64_t)v->i + (uint64_t)v2.i);
}
static void comb_imul(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  v->i = (int64_t)((uint64_t)v->i * (uint64_t)v2.i);
}
static void comb_fmax(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  if (MAXB(v->d, v2.d)) v->d = v2.d;
}
static void comb_fmin(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  if (MINB(v->d, v2.d)) v->d = v2.d;
}
static void comb_imax(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  if (v2.i > v->i) v->i = v2.i;
}
static void comb_imin(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {
  if (v2.i < v->i) v->i = v2.i;
}
static void comb_and(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) { v->i &= v2.i; }
static void comb_or(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) { v->i |= v2.i; }
#define DEF_ARGCOMB(NAME, A, B)                                                               \
  static void comb_##NAME(tfw__rval *v, int64_t *i, tfw__rval v2, int64_t i2) {               \
    if (i2 >= 0 && (*i < 0 || B(v->A, v2.A))) {                                               \
      *v = v2;                                                                                \
      *i = i2;                                                                                \
    }                                                                                         \
  }
DEF_ARGCOMB(fargmax, d, AMAXB)
DEF_ARGCOMB(fargmin, d, AMINB)
DEF_ARGCOMB(iargmax, i, IMAXB)
DEF_ARGCOMB(iargmin, i, IMINB)

/* ---- the kind table -------------------------------------------------------------------- */
#define K(ROW, COL, COMB, INIT) {row_##ROW, col_##COL, comb_##COMB, INIT, NULL}
#define D0 {.d = 0}
#define D1 {.d = 1}
#define I0 {.i = 0}
#define I1 {.i = 1}
#define DNINF {.d = -INFINITY}
#define DPINF {.d = INFINITY}
#define IMINV {.i = INT64_MIN}
#define IMAXV {.i = INT64_MAX}
#define F32 [TFW_DTYPE_F32]
#define F64 [TFW_DTYPE_F64]
#define INTS(OP, COMB, INIT)                                                                  \
  [TFW_DTYPE_I8] = K(OP##_i8, OP##_i8, COMB, INIT),                                           \
  [TFW_DTYPE_U8] = K(OP##_u8, OP##_u8, COMB, INIT),                                           \
  [TFW_DTYPE_I32] = K(OP##_i32, OP##_i32, COMB, INIT),                                        \
  [TFW_DTYPE_I64] = K(OP##_i64, OP##_i64, COMB, INIT),                                        \
  [TFW_DTYPE_BOOL] = K(OP##_bool, OP##_bool, COMB, INIT)
#define LOGIC(OP, COMB, INIT)                                                                 \
  F32 = K(OP##_f32, OP##_f32, COMB, INIT), F64 = K(OP##_f64, OP##_f64, COMB, INIT),           \
  [TFW_DTYPE_I8] = K(OP##_i8, OP##_i8, COMB, INIT),                                           \
  [TFW_DTYPE_U8] = K(OP##_u8, OP##_u8, COMB, INIT),                                           \
  [TFW_DTYPE_I32] = K(OP##_i32, OP##_i32, COMB, INIT),                                        \
  [TFW_DTYPE_I64] = K(OP##_i64, OP##_i64, COMB, INIT),                                        \
  [TFW_DTYPE_BOOL] = K(OP##_u8, OP##_u8, COMB, INIT)

static const tfw__red_kind kinds[TFW__R_COUNT][TFW_DTYPE_COUNT] = {
    [TFW__R_SUM] = {F32 = {row_sum_f32, col_fsum_f32, comb_fadd, D0, cols_sum_f32}, F64 = K(fsum_f64, fsum_f64, fadd, D0),
                    INTS(isum, iadd, I0)},
    [TFW__R_PROD] = {F32 = K(fprod_f32, fprod_f32, fmul, D1),
                     F64 = K(fprod_f64, fprod_f64, fmul, D1), INTS(iprod, imul, I1)},
    [TFW__R_ASUM] = {F32 = K(asum_f32, asum_f32, fadd, D0), F64 = K(asum_f64, asum_f64, fadd, D0)},
    [TFW__R_SSQ] = {F32 = K(ssq_f32, ssq_f32, fadd, D0), F64 = K(ssq_f64, ssq_f64, fadd, D0)},
    [TFW__R_PSUM] = {F32 = K(psum_f32, psum_f32, fadd, D0), F64 = K(psum_f64, psum_f64, fadd, D0)},
    [TFW__R_SQDEV] = {F32 = K(sqdev_f32, sqdev_f32, fadd, D0),
                      F64 = K(sqdev_f64, sqdev_f64, fadd, D0)},
    [TFW__R_SEXP] = {F32 = K(sexp_f32, sexp_f32, fadd, D0), F64 = K(sexp_f64, sexp_f64, fadd, D0)},
    [TFW__R_MAX] = {F32 = K(fmax_f32, fmax_f32, fmax, DNINF),
                    F64 = K(fmax_f64, fmax_f64, fmax, DNINF), INTS(imax, imax, IMINV)},
    [TFW__R_MIN] = {F32 = K(fmin_f32, fmin_f32, fmin, DPINF),
                    F64 = K(fmin_f64, fmin_f64, fmin, DPINF), INTS(imin, imin, IMAXV)},
    [TFW__R_AMAXABS] = {F32 = K(amaxabs_f32, amaxabs_f32, fmax, DNINF),
                        F64 = K(amaxabs_f64, amaxabs_f64, fmax, DNINF)},
    [TFW__R_AMINABS] = {F32 = K(aminabs_f32, aminabs_f32, fmin, DPINF),
                        F64 = K(aminabs_f64, aminabs_f64, fmin, DPINF)},
    [TFW__R_ALL] = {LOGIC(all, and, I1)},
    [TFW__R_ANY] = {LOGIC(any, or, I0)},
    [TFW__R_ARGMAX] = {F32 = K(argmax_f32, argmax_f32, fargmax, DNINF),
                       F64 = K(argmax_f64, argmax_f64, fargmax, DNINF),
                       INTS(argmax, iargmax, IMINV)},
    [TFW__R_ARGMIN] = {F32 = K(argmin_f32, argmin_f32, fargmin, DPINF),
                       F64 = K(argmin_f64, argmin_f64, fargmin, DPINF),
                       INTS(argmin, iargmin, IMAXV)},
};
_Static_assert(TFW_DTYPE_COUNT == 9, "the kind table lists every dtype");

const tfw__red_kind *tfw__red_kind_get(tfw__red_op op, tfw_dtype dt) {
  if ((int)op < 0 || op >= TFW__R_COUNT || !tfw_dtype_is_valid(dt)) return NULL;
  const tfw__red_kind *k = &kinds[op][dt];
  return k->row ? k : NULL;
}

bool tfw__red_is_int(tfw__red_op op, tfw_dtype dt) {
  if (op == TFW__R_ALL || op == TFW__R_ANY) return true;
  return !tfw_dtype_is_floating(dt);
}

/* ---- drivers ----------------------------------------------------------------------------- */

#define SPLIT_BLOCK 32768 /* elements per block of a single-output reduction */
#define COL_MIN 8         /* a kept dim narrower than this is not worth the column driver */
#define WORK_GRAIN 32768  /* elements of work per parallel chunk */

typedef struct plan {
  const tfw__red_kind *k;
  const double *prm;
  tfw__red_fin_fn fin;
  void *ctx;
  char *base;
  int nk;                                 /* kept dims, logical order, coalesced */
  int64_t ksh[TFW_MAX_DIMS], kst[TFW_MAX_DIMS], kost[TFW_MAX_DIMS]; /* in bytes / out elems */
  int nr;                                 /* reduced dims, outer -> inner, coalesced */
  int64_t rsh[TFW_MAX_DIMS], rst[TFW_MAX_DIMS];
  int64_t nout, nred;
  int col;                                /* column driver: index into the kept dims, or -1 */
  int64_t nblk;                           /* column blocks per row of other kept dims */
} plan;

/* Reduces the reduced-space range [b, e) at base p into (v, idx). */
static void reduce_range(const plan *P, const char *p, int64_t b, int64_t e, tfw__rval *v,
                         int64_t *idx, const double *prm) {
  const int nr = P->nr;
  int64_t ri[TFW_MAX_DIMS];
  int64_t rem = b, off = 0;
  for (int d = nr - 1; d >= 0; d--) {
    ri[d] = rem % P->rsh[d];
    rem /= P->rsh[d];
    off += ri[d] * P->rst[d];
  }
  const int64_t inner = P->rsh[nr - 1], ist = P->rst[nr - 1];
  int64_t pos = b;
  while (pos < e) {
    int64_t n = inner - ri[nr - 1];
    if (n > e - pos) n = e - pos;
    P->k->row(p + off, n, ist, v, idx, pos, prm);
    pos += n;
    if (pos >= e) break;
    ri[nr - 1] += n;
    off += n * ist;
    for (int d = nr - 1; d > 0 && ri[d] == P->rsh[d]; d--) {
      off -= ri[d] * P->rst[d];
      ri[d] = 0;
      ri[d - 1]++;
      off += P->rst[d - 1];
    }
  }
}

/* Input byte offset of the kept multi-index of output o (kept dims except skip). */
static int64_t kept_offset(const plan *P, int64_t o, int skip, int64_t *oout) {
  int64_t off = 0, oo = 0;
  for (int d = P->nk - 1; d >= 0; d--) {
    if (d == skip) continue;
    int64_t i = o % P->ksh[d];
    o /= P->ksh[d];
    off += i * P->kst[d];
    oo += i * P->kost[d];
  }
  if (oout) *oout = oo;
  return off;
}

static void row_chunk(int64_t b, int64_t e, void *vp) {
  const plan *P = vp;
  for (int64_t o = b; o < e; o++) {
    int64_t off = kept_offset(P, o, -1, NULL);
    tfw__rval v = P->k->init;
    int64_t idx = -1;
    reduce_range(P, P->base + off, 0, P->nred, &v, &idx, P->prm ? &P->prm[o] : NULL);
    P->fin(v, idx, o, P->ctx);
  }
}

typedef struct split_ctx {
  const plan *P;
  int64_t nblocks;
  tfw__rval *v;
  int64_t *idx;
} split_ctx;

static void split_chunk(int64_t b, int64_t e, void *vp) {
  split_ctx *S = vp;
  const plan *P = S->P;
  for (int64_t c = b; c < e; c++) {
    int64_t lo = c * P->nred / S->nblocks, hi = (c + 1) * P->nred / S->nblocks;
    S->v[c] = P->k->init;
    S->idx[c] = -1;
    reduce_range(P, P->base, lo, hi, &S->v[c], &S->idx[c], P->prm);
  }
}

static void col_chunk(int64_t b, int64_t e, void *vp) {
  const plan *P = vp;
  tfw__rval v[COL_BLOCK];
  int64_t idx[COL_BLOCK];
  double prm[COL_BLOCK];
  const int c = P->col;
  const int64_t nb = P->ksh[c], sb = P->kst[c], ob = P->kost[c];
  for (int64_t t = b; t < e; t++) {
    int64_t other = t / P->nblk, blk = t % P->nblk;
    int64_t oo;
    int64_t off = kept_offset(P, other, c, &oo);
    int64_t j0 = blk * COL_BLOCK, nj = nb - j0 < COL_BLOCK ? nb - j0 : COL_BLOCK;
    for (int64_t j = 0; j < nj; j++) {
      v[j] = P->k->init;
      idx[j] = -1;
      if (P->prm) prm[j] = P->prm[oo + (j0 + j) * ob];
    }
    const char *p = P->base + off + j0 * sb;
    /* odometer over the reduced dims; the innermost one goes to cols when the kind has it */
    int64_t ri[TFW_MAX_DIMS] = {0};
    int64_t roff = 0;
    const int last = P->k->cols ? P->nr - 2 : P->nr - 1;
    const int64_t step = P->k->cols ? P->rsh[P->nr - 1] : 1;
    for (int64_t r = 0; r < P->nred; r += step) {
      if (P->k->cols) P->k->cols(p + roff, nj, sb, step, P->rst[P->nr - 1], v);
      else P->k->col(p + roff, nj, sb, v, idx, r, P->prm ? prm : NULL);
      for (int d = last; d >= 0; d--) {
        roff += P->rst[d];
        if (++ri[d] < P->rsh[d]) break;
        roff -= ri[d] * P->rst[d];
        ri[d] = 0;
      }
    }
    for (int64_t j = 0; j < nj; j++) P->fin(v[j], idx[j], oo + (j0 + j) * ob, P->ctx);
  }
}

static int64_t grain_for(int64_t work_per_item) {
  if (work_per_item < 1) work_per_item = 1;
  int64_t g = WORK_GRAIN / work_per_item;
  return g < 1 ? 1 : g;
}

void tfw__reduce_run(const tfw_tensor *x, const bool *mask, const tfw__red_kind *k,
                     const double *prm, tfw__red_fin_fn fin, void *ctx) {
  plan P;
  memset(&P, 0, sizeof P);
  P.k = k, P.prm = prm, P.fin = fin, P.ctx = ctx, P.base = tfw__data(x);
  const int64_t es = (int64_t)tfw_dtype_size(x->dtype);
  P.nout = 1, P.nred = 1;
  for (int d = 0; d < x->ndim; d++) *(mask[d] ? &P.nred : &P.nout) *= x->shape[d];
  if (P.nout == 0) return;
  if (P.nred == 0) {
    for (int64_t o = 0; o < P.nout; o++) fin(k->init, -1, o, ctx);
    return;
  }
  /* kept dims in logical order: output strides, then coalesce neighbours */
  int64_t ostride = 1;
  int nk = 0;
  int64_t ksh[TFW_MAX_DIMS], kst[TFW_MAX_DIMS], kost[TFW_MAX_DIMS];
  for (int d = x->ndim - 1; d >= 0; d--) {
    if (mask[d] || x->shape[d] == 1) continue;
    ksh[nk] = x->shape[d], kst[nk] = x->strides[d] * es, kost[nk] = ostride;
    ostride *= x->shape[d];
    nk++;
  }
  /* ksh is inner -> outer here; merge, then reverse into P (outer -> inner) */
  int m = 0;
  for (int i = 0; i < nk; i++) {
    if (m > 0 && kst[i] == kst[m - 1] * ksh[m - 1]) {
      ksh[m - 1] *= ksh[i];
      continue;
    }
    ksh[m] = ksh[i], kst[m] = kst[i], kost[m] = kost[i];
    m++;
  }
  P.nk = m;
  for (int i = 0; i < m; i++)
    P.ksh[i] = ksh[m - 1 - i], P.kst[i] = kst[m - 1 - i], P.kost[i] = kost[m - 1 - i];
  /* reduced dims sorted by decreasing |stride| (stride 0 first), then coalesced */
  int nr = 0;
  int64_t rsh[TFW_MAX_DIMS], rst[TFW_MAX_DIMS];
  for (int d = 0; d < x->ndim; d++) {
    if (!mask[d] || x->shape[d] == 1) continue;
    int64_t s = x->strides[d] * es;
    uint64_t key = s == 0 ? UINT64_MAX : (uint64_t)(s < 0 ? -s : s);
    int i = nr++;
    while (i > 0) {
      int64_t sp = rst[i - 1];
      uint64_t kp = sp == 0 ? UINT64_MAX : (uint64_t)(sp < 0 ? -sp : sp);
      if (kp >= key) break;
      rsh[i] = rsh[i - 1], rst[i] = rst[i - 1];
      i--;
    }
    rsh[i] = x->shape[d], rst[i] = s;
  }
  if (nr == 0) rsh[nr] = 1, rst[nr] = 0, nr = 1;
  m = 0;
  for (int i = 0; i < nr; i++) {
    if (m > 0 && rst[m - 1] == rst[i] * rsh[i]) {
      rsh[m - 1] *= rsh[i];
      rst[m - 1] = rst[i];
      continue;
    }
    rsh[m] = rsh[i], rst[m] = rst[i];
    m++;
  }
  P.nr = m;
  for (int i = 0; i < m; i++) P.rsh[i] = rsh[i], P.rst[i] = rst[i];

  if (P.nout == 1) {
    split_ctx S = {&P, tfw__parallel_chunks(P.nred, SPLIT_BLOCK), NULL, NULL};
    tfw__rval vb[256];
    int64_t ib[256];
    TFW_ASSERT(S.nblocks <= 256);
    S.v = vb, S.idx = ib;
    tfw__parallel_for(S.nblocks, 1, split_chunk, &S);
    tfw__rval v = k->init;
    int64_t idx = -1;
    for (int64_t c = 0; c < S.nblocks; c++) k->comb(&v, &idx, vb[c], ib[c]);
    fin(v, idx, 0, ctx);
    return;
  }
  /* column driver when a wide kept dim has a smaller stride than the innermost reduced dim */
  P.col = -1;
  int64_t rin = P.rst[P.nr - 1];
  uint64_t rkey = rin == 0 ? UINT64_MAX : (uint64_t)(rin < 0 ? -rin : rin);
  uint64_t best = UINT64_MAX;
  for (int d = 0; d < P.nk; d++) {
    int64_t s = P.kst[d];
    uint64_t key = (uint64_t)(s < 0 ? -s : s);
    if (s != 0 && P.ksh[d] >= COL_MIN && key < rkey && key < best) best = key, P.col = d;
  }
  if (P.col >= 0) {
    P.nblk = (P.ksh[P.col] + COL_BLOCK - 1) / COL_BLOCK;
    int64_t tasks = P.nout / P.ksh[P.col] * P.nblk;
    tfw__parallel_for(tasks, grain_for(P.nred * COL_BLOCK), col_chunk, &P);
    return;
  }
  tfw__parallel_for(P.nout, grain_for(P.nred), row_chunk, &P);
}
