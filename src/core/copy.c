/* Element loads/stores, dtype casts and strided copies.
 *
 * Casts follow PyTorch where it is defined; where C leaves a conversion undefined
 * (float -> int out of range or NaN) tenflower saturates and maps NaN to 0, so no input
 * can trigger undefined behaviour. Float -> bool is x != 0 (NaN -> true). */
#include <math.h>

#include "core/core.h"
#include "core/iter.h"
#include "cpu/convert.h"

/* ---- typed loads/stores ------------------------------------------------------------ */
#define LD_F32(p) ((double)*(const float *)(p))
#define LD_F64(p) (*(const double *)(p))
#define LD_F16(p) ((double)tfw_f16_to_f32(*(const uint16_t *)(p)))
#define LD_BF16(p) ((double)tfw_bf16_to_f32(*(const uint16_t *)(p)))
#define LD_I8(p) ((int64_t)*(const int8_t *)(p))
#define LD_U8(p) ((int64_t)*(const uint8_t *)(p))
#define LD_I32(p) ((int64_t)*(const int32_t *)(p))
#define LD_I64(p) (*(const int64_t *)(p))
#define LD_BOOL(p) ((int64_t)(*(const uint8_t *)(p) != 0))

static inline int64_t sat_i64(double v, double lo, double hi) {
  if (v != v) return 0;
  if (v <= lo) return (int64_t)lo;
  if (v >= hi) return (int64_t)hi;
  return (int64_t)v;
}

/* From double */
#define STD_F32(p, v) (*(float *)(p) = (float)(v))
#define STD_F64(p, v) (*(double *)(p) = (v))
#define STD_F16(p, v) (*(uint16_t *)(p) = tfw_f32_to_f16((float)(v)))
#define STD_BF16(p, v) (*(uint16_t *)(p) = tfw_f32_to_bf16((float)(v)))
#define STD_I8(p, v) (*(int8_t *)(p) = (int8_t)sat_i64((v), -128.0, 127.0))
#define STD_U8(p, v) (*(uint8_t *)(p) = (uint8_t)sat_i64((v), 0.0, 255.0))
#define STD_I32(p, v) (*(int32_t *)(p) = (int32_t)sat_i64((v), -2147483648.0, 2147483647.0))
#define STD_I64(p, v) \
  (*(int64_t *)(p) = sat_i64((v), -9223372036854775808.0, 9223372036854774784.0))
#define STD_BOOL(p, v) (*(uint8_t *)(p) = (uint8_t)((v) != 0))
/* From int64: integer conversions wrap like C's (two's complement), as PyTorch does. */
#define STI_F32(p, v) (*(float *)(p) = (float)(v))
#define STI_F64(p, v) (*(double *)(p) = (double)(v))
#define STI_F16(p, v) (*(uint16_t *)(p) = tfw_f32_to_f16((float)(v)))
#define STI_BF16(p, v) (*(uint16_t *)(p) = tfw_f32_to_bf16((float)(v)))
#define STI_I8(p, v) (*(int8_t *)(p) = (int8_t)(uint8_t)(uint64_t)(v))
#define STI_U8(p, v) (*(uint8_t *)(p) = (uint8_t)(uint64_t)(v))
#define STI_I32(p, v) (*(int32_t *)(p) = (int32_t)(uint32_t)(uint64_t)(v))
#define STI_I64(p, v) (*(int64_t *)(p) = (v))
#define STI_BOOL(p, v) (*(uint8_t *)(p) = (uint8_t)((v) != 0))

#define KIND_F32 D
#define KIND_F64 D
#define KIND_F16 D
#define KIND_BF16 D
#define KIND_I8 I
#define KIND_U8 I
#define KIND_I32 I
#define KIND_I64 I
#define KIND_BOOL I
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define ST(K, D) CAT(CAT(ST, K), CAT(_, D))

double tfw__load_f64(const void *p, tfw_dtype dt) {
  switch (dt) {
#define X(e, name, ctype, size) \
  case TFW_DTYPE_##e:           \
    return (double)LD_##e(p);
    TFW_DTYPE_MAP(X)
#undef X
  default:
    return 0;
  }
}

int64_t tfw__load_i64(const void *p, tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_F32: case TFW_DTYPE_F64: case TFW_DTYPE_F16: case TFW_DTYPE_BF16:
    return sat_i64(tfw__load_f64(p, dt), -9223372036854775808.0, 9223372036854774784.0);
  case TFW_DTYPE_I8: return LD_I8(p);
  case TFW_DTYPE_U8: return LD_U8(p);
  case TFW_DTYPE_I32: return LD_I32(p);
  case TFW_DTYPE_I64: return LD_I64(p);
  case TFW_DTYPE_BOOL: return LD_BOOL(p);
  default: return 0;
  }
}

void tfw__store_f64(void *p, tfw_dtype dt, double v) {
  switch (dt) {
#define X(e, name, ctype, size) \
  case TFW_DTYPE_##e:           \
    STD_##e(p, v);              \
    break;
    TFW_DTYPE_MAP(X)
#undef X
  default:
    break;
  }
}

/* One loop per (src, dst) pair: 81 small functions generated from the dtype list. The
 * intermediate is double for float sources and int64 for integer sources, so i64 -> i64 and
 * i64 -> f64 are exact where the destination can hold the value. */
typedef void (*cast_fn)(int64_t n, char **p, const int64_t *s, void *ctx);
#define CAST_FN(S, D)                                                             \
  static void cast_##S##_##D(int64_t n, char **p, const int64_t *s, void *ctx) {  \
    char *d = p[0];                                                               \
    const char *src = p[1];                                                       \
    for (int64_t i = 0; i < n; i++) ST(KIND_##S, D)(d + i * s[0], LD_##S(src + i * s[1])); \
  }
#define CAST_ROW(S) CAST_FN(S, F32) CAST_FN(S, F64) CAST_FN(S, F16) CAST_FN(S, BF16) \
  CAST_FN(S, I8) CAST_FN(S, U8) CAST_FN(S, I32) CAST_FN(S, I64) CAST_FN(S, BOOL)
CAST_ROW(F32)
CAST_ROW(F64)
CAST_ROW(F16)
CAST_ROW(BF16)
CAST_ROW(I8)
CAST_ROW(U8)
CAST_ROW(I32)
CAST_ROW(I64)
CAST_ROW(BOOL)

#define CAST_ENTRY(S, D) cast_##S##_##D,
#define CAST_TROW(S) {CAST_ENTRY(S, F32) CAST_ENTRY(S, F64) CAST_ENTRY(S, F16) CAST_ENTRY(S, BF16) \
  CAST_ENTRY(S, I8) CAST_ENTRY(S, U8) CAST_ENTRY(S, I32) CAST_ENTRY(S, I64) CAST_ENTRY(S, BOOL)},
static const cast_fn cast_table[TFW_DTYPE_COUNT][TFW_DTYPE_COUNT] = {
    CAST_TROW(F32) CAST_TROW(F64) CAST_TROW(F16) CAST_TROW(BF16) CAST_TROW(I8) CAST_TROW(U8)
        CAST_TROW(I32) CAST_TROW(I64) CAST_TROW(BOOL)};
_Static_assert(TFW_DTYPE_COUNT == 9, "cast_table must list every dtype in TFW_DTYPE_MAP order");

/* Same-dtype copy: memcpy per contiguous run, else an element loop by size. */
static void copy_same(int64_t n, char **p, const int64_t *s, void *ctx) {
  size_t es = *(const size_t *)ctx;
  if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
    memcpy(p[0], p[1], (size_t)n * es);
    return;
  }
  switch (es) {
  case 1: for (int64_t i = 0; i < n; i++) *(uint8_t *)(p[0] + i * s[0]) = *(const uint8_t *)(p[1] + i * s[1]); break;
  case 2: for (int64_t i = 0; i < n; i++) *(uint16_t *)(p[0] + i * s[0]) = *(const uint16_t *)(p[1] + i * s[1]); break;
  case 4: for (int64_t i = 0; i < n; i++) *(uint32_t *)(p[0] + i * s[0]) = *(const uint32_t *)(p[1] + i * s[1]); break;
  default: for (int64_t i = 0; i < n; i++) *(uint64_t *)(p[0] + i * s[0]) = *(const uint64_t *)(p[1] + i * s[1]); break;
  }
}

/* ---- tiled transpose ----------------------------------------------------------------------
 * A same-dtype copy whose destination is contiguous along the innermost dim while the source
 * is contiguous along the next one (x.t().contiguous(), permutes that swap the last two dims)
 * walks the source with a large stride. Worse, with power-of-two row lengths every source
 * line of a naive tile maps to the same L1 set, so tiles thrash (measured: a 32 x 32 tiled
 * loop still ran a 4096 x 4096 f32 transpose at 2.7 GB/s). Each tile here is one cache line
 * square (T = 64 / element size): the source lines are read whole into a small buffer, then
 * the destination lines are written whole, so every line is touched once and set conflicts
 * stop mattering. Tiles are grouped into blocks of 16 x 16 tiles (256 x 256 f32) so that the
 * pages a block touches stay in the TLB: walking all columns of a 16-row strip touched 4096
 * pages and cost a TLB miss per line. */
#define LINE 64
#define BLOCK_TILES 16

typedef struct {
  const tfw__iter *it;
  size_t es;
  int64_t rows, cols, rblocks, cblocks, T;
} tr_ctx;

#define TR_TILE(TY)                                                                     \
  {                                                                                     \
    TY buf[LINE][LINE];                                                                 \
    for (int64_t c = c0; c < c1; c++)                                                   \
      for (int64_t r = r0; r < r1; r++) buf[c - c0][r - r0] = *(const TY *)(s + r * sr + c * sc); \
    for (int64_t r = r0; r < r1; r++)                                                   \
      for (int64_t c = c0; c < c1; c++) *(TY *)(d + r * dr + c * dc) = buf[c - c0][r - r0]; \
  }

static void transpose_tiles(int64_t b, int64_t e, void *p) {
  const tr_ctx *t = p;
  const tfw__iter *it = t->it;
  const int nd = it->ndim;
  const int64_t T = t->T;
  const int64_t dr = it->strides[0][nd - 2], dc = it->strides[0][nd - 1];
  const int64_t sr = it->strides[1][nd - 2], sc = it->strides[1][nd - 1];
  const int64_t B = T * BLOCK_TILES;
  for (int64_t task = b; task < e; task++) {
    int64_t o = task / (t->rblocks * t->cblocks), rem = task % (t->rblocks * t->cblocks);
    int64_t rb0 = (rem / t->cblocks) * B, cb0 = (rem % t->cblocks) * B;
    int64_t rb1 = rb0 + B < t->rows ? rb0 + B : t->rows, cb1 = cb0 + B < t->cols ? cb0 + B : t->cols;
    char *d = it->base[0];
    const char *s = it->base[1];
    for (int i = nd - 3; i >= 0; i--) { /* offset of outer index o */
      int64_t k = o % it->shape[i];
      o /= it->shape[i];
      d += k * it->strides[0][i];
      s += k * it->strides[1][i];
    }
    for (int64_t r0 = rb0; r0 < rb1; r0 += T) {
      int64_t r1 = r0 + T < rb1 ? r0 + T : rb1;
      for (int64_t c0 = cb0; c0 < cb1; c0 += T) {
        int64_t c1 = c0 + T < cb1 ? c0 + T : cb1;
        switch (t->es) {
        case 1: TR_TILE(uint8_t) break;
        case 2: TR_TILE(uint16_t) break;
        case 4: TR_TILE(uint32_t) break;
        default: TR_TILE(uint64_t) break;
        }
      }
    }
  }
}

/* Takes the tiled path when it applies; returns false otherwise. */
static bool try_transpose(const tfw__iter *it, size_t es) {
  const int nd = it->ndim;
  if (nd < 2) return false;
  const int64_t rows = it->shape[nd - 2], cols = it->shape[nd - 1];
  const int64_t T = LINE / (int64_t)es;
  if (rows < T || cols < T) return false;
  if (it->strides[0][nd - 1] != (int64_t)es || it->strides[1][nd - 2] != (int64_t)es) return false;
  int64_t outer = it->numel / (rows * cols);
  const int64_t B = T * BLOCK_TILES;
  tr_ctx t = {it, es, rows, cols, (rows + B - 1) / B, (cols + B - 1) / B, T};
  /* a task is one block; blocks are 64K elements, so every block is a chunk of its own */
  tfw__parallel_for(outer * t.rblocks * t.cblocks, 1, transpose_tiles, &t);
  return true;
}

static void cast_loop(int64_t n, char **p, const int64_t *s, void *ctx) {
  cast_fn fn = *(cast_fn *)ctx;
  /* contiguous f32 <-> f16/bf16 runs take the vectorised converters */
  if (s[0] == (fn == cast_F32_F16 || fn == cast_F32_BF16 ? 2 : 4) &&
      s[1] == (fn == cast_F32_F16 || fn == cast_F32_BF16 ? 4 : 2)) {
    if (fn == cast_F32_F16) return tfw__f32_to_f16_n((const float *)p[1], (uint16_t *)p[0], n);
    if (fn == cast_F32_BF16) return tfw__f32_to_bf16_n((const float *)p[1], (uint16_t *)p[0], n);
    if (fn == cast_F16_F32) return tfw__f16_to_f32_n((const uint16_t *)p[1], (float *)p[0], n);
    if (fn == cast_BF16_F32) return tfw__bf16_to_f32_n((const uint16_t *)p[1], (float *)p[0], n);
  }
  fn(n, p, s, NULL);
}

tfw_status tfw__copy_cast(tfw_tensor *dst, const tfw_tensor *src) {
  const tfw_tensor *ops[2] = {dst, src};
  int nd;
  int64_t shape[TFW_MAX_DIMS];
  tfw_status st = tfw__broadcast_shapes("copy", 2, ops, &nd, shape);
  if (st) return st;
  if (nd != dst->ndim || memcmp(shape, dst->shape, sizeof(int64_t) * (size_t)nd) != 0) {
    char b1[TFW__SHAPE_BUF], b2[TFW__SHAPE_BUF];
    return tfw__error(TFW_ESHAPE, "copy: source of shape %s cannot be broadcast to destination %s",
                      tfw__shape_str(b1, sizeof b1, src->ndim, src->shape),
                      tfw__shape_str(b2, sizeof b2, dst->ndim, dst->shape));
  }
  tfw__iter it;
  tfw__iter_init(&it, 2, ops, dst->ndim, dst->shape);
  if (dst->dtype == src->dtype) {
    size_t es = tfw_dtype_size(dst->dtype);
    if (!try_transpose(&it, es)) tfw__iter_run(&it, TFW__GRAIN_EW * 4, copy_same, &es);
  } else {
    cast_fn fn = cast_table[src->dtype][dst->dtype];
    tfw__iter_run(&it, TFW__GRAIN_EW, cast_loop, &fn);
  }
  return TFW_OK;
}

tfw_tensor *tfw__as_contiguous(const tfw_tensor *t, tfw_dtype dt) {
  if (t->dtype == dt && tfw__is_contiguous(t)) return tfw_retain((tfw_tensor *)t);
  tfw_tensor *o = tfw__tensor_new("contiguous", dt, t->ndim, t->shape);
  if (!o) return NULL;
  if (tfw__copy_cast(o, t)) {
    tfw_release(o);
    return NULL;
  }
  return o;
}

/* Set by src/autograd: refuses in-place writes into tensors autograd tracks. */
tfw_status (*tfw__inplace_check_hook)(const char *op, const tfw_tensor *dst) = NULL;

static tfw_status inplace_begin(const char *op, tfw_tensor *dst) {
  if (tfw__inplace_check_hook) {
    tfw_status st = tfw__inplace_check_hook(op, dst);
    if (st) return st;
  }
  atomic_fetch_add(&dst->storage->version, 1); /* saved-for-backward checks see the write */
  return TFW_OK;
}

tfw_status tfw_fill_(tfw_tensor *dst, double value) {
  if (tfw__check_tensor("fill_", "dst", dst)) return TFW_EVALUE;
  tfw_status ist = inplace_begin("fill_", dst);
  if (ist) return ist;
  /* a 0-d tensor holding the value, broadcast over dst */
  unsigned char buf[8];
  tfw__store_f64(buf, dst->dtype, value);
  tfw__storage s = {.data = buf, .nbytes = sizeof buf};
  atomic_init(&s.refcount, 1);
  tfw_tensor src = {.storage = &s, .dtype = dst->dtype, .ndim = 0};
  return tfw__copy_cast(dst, &src);
}

tfw_status tfw_copy_(tfw_tensor *dst, const tfw_tensor *src) {
  if (tfw__check_tensor("copy_", "dst", dst) || tfw__check_tensor("copy_", "src", src))
    return TFW_EVALUE;
  tfw_status ist = inplace_begin("copy_", dst);
  if (ist) return ist;
  if (dst->storage == src->storage) {
    /* Overlap-safe: go through a temporary. */
    tfw_tensor *tmp = tfw_clone(src);
    if (!tmp) return tfw_last_status();
    tfw_status s = tfw__copy_cast(dst, tmp);
    tfw_release(tmp);
    return s;
  }
  return tfw__copy_cast(dst, src);
}
