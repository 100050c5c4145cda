/* tenflower — element types and type promotion. */
#ifndef TENFLOWER_DTYPE_H
#define TENFLOWER_DTYPE_H

#include <stdbool.h>
#include <stdint.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(ENUM, name, c type, size) */
#define TFW_DTYPE_MAP(X)                 \
  X(F32, "float32", float, 4)            \
  X(F64, "float64", double, 8)           \
  X(F16, "float16", uint16_t, 2)         \
  X(BF16, "bfloat16", uint16_t, 2)       \
  X(I8, "int8", int8_t, 1)               \
  X(U8, "uint8", uint8_t, 1)             \
  X(I32, "int32", int32_t, 4)            \
  X(I64, "int64", int64_t, 8)            \
  X(BOOL, "bool", bool, 1)

typedef enum tfw_dtype {
#define TFW__DTYPE_ENUM(e, name, ctype, size) TFW_DTYPE_##e,
  TFW_DTYPE_MAP(TFW__DTYPE_ENUM)
#undef TFW__DTYPE_ENUM
  TFW_DTYPE_COUNT
} tfw_dtype;

TFW_API size_t tfw_dtype_size(tfw_dtype dt);         /* bytes per element; 0 if invalid */
TFW_API const char *tfw_dtype_name(tfw_dtype dt);    /* "float32", ...; "invalid" */
TFW_API bool tfw_dtype_is_valid(tfw_dtype dt);
TFW_API bool tfw_dtype_is_floating(tfw_dtype dt);    /* f32 f64 f16 bf16 */
TFW_API bool tfw_dtype_is_integral(tfw_dtype dt);    /* i8 u8 i32 i64 (not bool) */
/* PyTorch's promotion lattice for two dtypes of the same priority (docs/dtypes.md):
 * bool < u8/i8 < i32 < i64 < f16/bf16 < f32 < f64; u8+i8 -> i16 is not a tenflower
 * dtype, so it promotes to i32; f16+bf16 -> f32. */
TFW_API tfw_dtype tfw_promote_types(tfw_dtype a, tfw_dtype b);

/* Conversions between f32 and the 16-bit float formats: round to nearest even, with
 * subnormals, infinities and NaN preserved (NaN stays quiet NaN). */
TFW_API uint16_t tfw_f32_to_f16(float f);
TFW_API float tfw_f16_to_f32(uint16_t h);
TFW_API uint16_t tfw_f32_to_bf16(float f);
TFW_API float tfw_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif
