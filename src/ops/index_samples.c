/* Sample calls of the index op family for the registry-driven tests: each op gets three
 * calls covering contiguous, strided and broadcast inputs. Index tensors hold values in
 * range (tfw__sample_tensor floors into [lo, hi) for integer dtypes). */
#include "ops/index_internal.h"
#include "ops/samples.h"

#define C TFW__LAYOUT_CONTIGUOUS
#define S TFW__LAYOUT_STRIDED
#define B TFW__LAYOUT_BROADCAST

static tfw_tensor *mk(tfw_dtype dt, int64_t d0, int64_t d1, double lo, double hi, uint64_t seed,
                      tfw__layout layout) {
  int64_t shape[2] = {d0, d1};
  return tfw__sample_tensor(dt, d1 < 0 ? 1 : 2, shape, lo, hi, seed, layout);
}

/* Appends a call with up to three inputs (NULL-terminated) and dim; on a failed tensor or
 * a full array releases the inputs and adds nothing. */
static int push(const tfw__op_def *op, tfw__call *calls, int cap, int n, int64_t dim,
                tfw_tensor *a, tfw_tensor *b, tfw_tensor *c) {
  tfw_tensor *in[3] = {a, b, c};
  int nin = op->n_in;
  bool ok = n < cap;
  for (int j = 0; j < nin; j++) ok = ok && in[j];
  if (!ok) {
    for (int j = 0; j < 3; j++) tfw_release(in[j]);
    return n;
  }
  tfw__call_init(&calls[n], op->id, nin, (const tfw_tensor *const *)in);
  calls[n].a.i[0] = dim;
  return n + 1;
}

int tfw__sample_index_select(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 4, 5, -1, 1, 0, C),
           mk(TFW_DTYPE_I64, 3, -1, 0, 4, 1, C), NULL);
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_F32, 3, 6, -1, 1, 2, S),
           mk(TFW_DTYPE_I32, 4, -1, 0, 6, 3, S), NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F64, 5, 3, -1, 1, 4, B),
           mk(TFW_DTYPE_I64, 2, -1, 0, 5, 5, B), NULL);
  return n;
}

int tfw__sample_gather(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_F32, 4, 5, -1, 1, 0, C),
           mk(TFW_DTYPE_I64, 4, 3, 0, 5, 1, C), NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 5, 4, -1, 1, 2, S),
           mk(TFW_DTYPE_I64, 3, 4, 0, 5, 3, S), NULL);
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_I32, 3, 4, -9, 9, 4, B),
           mk(TFW_DTYPE_I32, 3, 2, 0, 4, 5, B), NULL);
  return n;
}

int tfw__sample_take_along_dim(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_F32, 4, 5, -1, 1, 0, C),
           mk(TFW_DTYPE_I64, 4, 2, 0, 5, 1, C), NULL);
  /* index [4, 1] broadcasts over t's 6 columns */
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 3, 6, -1, 1, 2, S),
           mk(TFW_DTYPE_I64, 4, 1, 0, 3, 3, C), NULL);
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_F64, 4, 3, -1, 1, 4, B),
           mk(TFW_DTYPE_I32, 4, 3, 0, 3, 5, B), NULL);
  return n;
}

/* scatter and scatter_add */
int tfw__sample_scatter(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 4, 5, -1, 1, 0, C),
           mk(TFW_DTYPE_I64, 2, 5, 0, 4, 1, C), mk(TFW_DTYPE_F32, 3, 5, -1, 1, 2, C));
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_F32, 5, 4, -1, 1, 3, S),
           mk(TFW_DTYPE_I64, 5, 3, 0, 4, 4, S), mk(TFW_DTYPE_F64, 5, 3, -1, 1, 5, S));
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_I32, 3, 4, -9, 9, 6, B),
           mk(TFW_DTYPE_I32, 3, 4, 0, 4, 7, B), mk(TFW_DTYPE_I32, 3, 4, -9, 9, 8, B));
  return n;
}

int tfw__sample_index_add(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 5, 3, -1, 1, 0, C),
           mk(TFW_DTYPE_I64, 4, -1, 0, 5, 1, C), mk(TFW_DTYPE_F32, 4, 3, -1, 1, 2, C));
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_F32, 3, 6, -1, 1, 3, S),
           mk(TFW_DTYPE_I32, 4, -1, 0, 6, 4, S), mk(TFW_DTYPE_F32, 3, 4, -1, 1, 5, S));
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_F64, 4, 3, -1, 1, 6, B),
           mk(TFW_DTYPE_I64, 2, -1, 0, 3, 7, C), mk(TFW_DTYPE_F64, 4, 2, -1, 1, 8, B));
  return n;
}

int tfw__sample_masked_select(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 4, 5, -1, 1, 0, C),
           mk(TFW_DTYPE_BOOL, 4, 5, 0, 2, 1, C), NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 3, 4, -1, 1, 2, S),
           mk(TFW_DTYPE_BOOL, 4, -1, 0, 2, 3, C), NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_I64, 4, 3, -9, 9, 4, B),
           mk(TFW_DTYPE_BOOL, 4, 1, 0, 2, 5, C), NULL);
  return n;
}

int tfw__sample_nonzero(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_I32, 4, 5, -1, 2, 0, C), NULL, NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_BOOL, 3, 4, 0, 2, 1, S), NULL, NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 3, 4, -1, 1, 2, B), NULL, NULL);
  return n;
}

/* sort and argsort */
int tfw__sample_sort(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_F32, 4, 7, -1, 1, 0, C), NULL, NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F64, 6, 5, -1, 1, 1, S), NULL, NULL);
  if (n == 2) calls[1].a.b[0] = true; /* descending */
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_I64, 3, 9, 0, 3, 2, B), NULL, NULL);
  return n;
}

int tfw__sample_topk(const tfw__op_def *op, tfw__call *calls, int cap) {
  int n = 0;
  /* (dim, k, largest, sorted) */
  static const int64_t cfg[3][4] = {{-1, 3, 1, 1}, {0, 2, 0, 1}, {1, 4, 1, 0}};
  n = push(op, calls, cap, n, -1, mk(TFW_DTYPE_F32, 4, 9, -1, 1, 0, C), NULL, NULL);
  n = push(op, calls, cap, n, 0, mk(TFW_DTYPE_F32, 6, 5, -1, 1, 1, S), NULL, NULL);
  n = push(op, calls, cap, n, 1, mk(TFW_DTYPE_I32, 3, 8, -3, 3, 2, B), NULL, NULL);
  for (int i = 0; i < n; i++) {
    calls[i].a.i[1] = cfg[i][1];
    calls[i].a.b[0] = cfg[i][2];
    calls[i].a.b[1] = cfg[i][3];
  }
  return n;
}
