/* Internal interface of the reduction family (src/ops/reduce*.c, scan.c, softmax.c).
 *
 * The engine (reduce_engine.c) reduces a strided tensor over a set of dims with a "kind"
 * (a row kernel, a column kernel and a combine rule) and hands each finished accumulator to
 * a finaliser that writes the outputs. Three drivers, chosen from the shape only (so the
 * floating-point order never depends on the thread count):
 *   row    the innermost reduced dim has the smallest stride: each output reduces its own
 *          rows (vectorised over the row), outputs in parallel;
 *   column a kept dim has the smallest stride: out[j] (+)= x[r, j] vectorised over j, blocks
 *          of j in parallel (no transposed copy of the input);
 *   split  one output: the reduced range is cut into fixed blocks (tfw__parallel_for
 *          chunks, a pure function of the size), partials combined in block order.
 * Other families may use the row kernels declared at the end. */
#ifndef TFW_OPS_REDUCE_H
#define TFW_OPS_REDUCE_H

#include "ops/registry.h"

/* An accumulator value: double for floating kinds, int64 for integer kinds. */
typedef union tfw__rval {
  double d;
  int64_t i;
} tfw__rval;

/* Reduce n elements at p (byte stride s) into (*v, *idx). i0 is the linear reduced index of
 * the first element (arg kinds record it); prm points at this output's parameter (mean for
 * squared deviations, max for sum-of-exp, p for p-norms) or is NULL. */
typedef void (*tfw__red_row_fn)(const char *p, int64_t n, int64_t s, tfw__rval *v,
                                int64_t *idx, int64_t i0, const double *prm);
/* Column step: for j < n, (v[j], idx[j]) absorbs the element at p + j * s, whose reduced
 * index is i; prm is NULL or an array of n per-column parameters. */
typedef void (*tfw__red_col_fn)(const char *p, int64_t n, int64_t s, tfw__rval *v,
                                int64_t *idx, int64_t i, const double *prm);
/* Optional multi-row column step for sum kinds: rows r < nrows at p + r * rs, each of n
 * columns with byte stride s, added into v[j]. */
typedef void (*tfw__red_cols_fn)(const char *p, int64_t n, int64_t s, int64_t nrows, int64_t rs,
                                 tfw__rval *v);
/* Absorbs the partial (v2, i2) of a later block into (v, idx). */
typedef void (*tfw__red_comb_fn)(tfw__rval *v, int64_t *idx, tfw__rval v2, int64_t i2);

typedef struct tfw__red_kind {
  tfw__red_row_fn row;
  tfw__red_col_fn col;
  tfw__red_comb_fn comb;
  tfw__rval init;
  tfw__red_cols_fn cols; /* NULL: the driver calls col once per reduced index */
} tfw__red_kind;

/* The kinds the engine knows, for the native dtypes (f16/bf16: compute on an f32 copy). */
typedef enum tfw__red_op {
  TFW__R_SUM,     /* floats -> double, integers/bool -> int64 (wrapping) */
  TFW__R_PROD,
  TFW__R_ASUM,    /* sum |x| (floats) */
  TFW__R_SSQ,     /* sum x^2 (floats) */
  TFW__R_PSUM,    /* sum |x|^p, p = *prm (floats) */
  TFW__R_SQDEV,   /* sum (x - m)^2, m = *prm (floats) */
  TFW__R_SEXP,    /* sum exp(x - m), m = *prm (floats) */
  TFW__R_MAX,     /* NaN propagates; floats -> double, integers -> int64 */
  TFW__R_MIN,
  TFW__R_AMAXABS, /* max |x| (floats) */
  TFW__R_AMINABS,
  TFW__R_ALL,     /* int64 0/1 */
  TFW__R_ANY,
  TFW__R_ARGMAX,  /* value + first index; NaN counts as the largest (first NaN wins) */
  TFW__R_ARGMIN,
  TFW__R_COUNT
} tfw__red_op;

/* The kind for (op, dt), or NULL when that combination has no kernel. */
const tfw__red_kind *tfw__red_kind_get(tfw__red_op op, tfw_dtype dt);
/* True for kinds whose accumulator is int64 for dtype dt. */
bool tfw__red_is_int(tfw__red_op op, tfw_dtype dt);

/* Called once per output o (row-major index into the output) with its accumulator. */
typedef void (*tfw__red_fin_fn)(tfw__rval v, int64_t idx, int64_t o, void *ctx);

/* Reduces x over the dims marked in mask with kind k and calls fin for every output.
 * prm: NULL, or one double per output (in output order) passed to the kernels.
 * nout (the product of the kept sizes) may be 0; a 0-size reduced dim gives init. */
void tfw__reduce_run(const tfw_tensor *x, const bool *mask, const tfw__red_kind *k,
                     const double *prm, tfw__red_fin_fn fin, void *ctx);

/* Reusable row kernels for other families (contiguous f32 rows; any thread count gives the
 * same bits). y may equal x. */
/* out[r] = sum_j x[r * n + j], accumulated in f32 blocks of 256 combined in double. */
void tfw__sum_rows_f32(const float *x, int64_t rows, int64_t n, float *out);
/* y[r, :] = softmax(x[r, :]) (log_softmax when log_space), stable (max subtracted). */
void tfw__softmax_rows_f32(const float *x, float *y, int64_t rows, int64_t n, bool log_space);
/* One row of the above (serial). */
void tfw__softmax_row_f32(const float *x, float *y, int64_t n, bool log_space);
/* exp(x) for f32 with a vectorisable polynomial (max error ~2 ulp, subnormals included). */
float tfw__expf_fast(float x);

#endif
