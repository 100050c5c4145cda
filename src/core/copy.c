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
    tfw__iter_run(&it, TFW__GRAIN_EW * 4, copy_same, &es);
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

tfw_status tfw_fill_(tfw_tensor *dst, double value) {
  if (tfw__check_tensor("fill_", "dst", dst)) return TFW_EVALUE;
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
