/* dtype properties, PyTorch-compatible promotion, and f16/bf16 conversions.
 *
 * The scalar conversions are written with integer bit manipulation so that rounding
 * (round-to-nearest-even), subnormals, infinities and NaN are exact on every CPU; bulk
 * conversion uses F16C / AVX-512 where present (src/cpu/convert.c). */
#include <math.h>

#include "core/core.h"

size_t tfw_dtype_size(tfw_dtype dt) {
  switch (dt) {
#define X(e, name, ctype, size) \
  case TFW_DTYPE_##e:           \
    return size;
    TFW_DTYPE_MAP(X)
#undef X
  default:
    return 0;
  }
}

const char *tfw_dtype_name(tfw_dtype dt) {
  switch (dt) {
#define X(e, name, ctype, size) \
  case TFW_DTYPE_##e:           \
    return name;
    TFW_DTYPE_MAP(X)
#undef X
  default:
    return "invalid";
  }
}

bool tfw_dtype_is_valid(tfw_dtype dt) { return (unsigned)dt < (unsigned)TFW_DTYPE_COUNT; }

bool tfw_dtype_is_floating(tfw_dtype dt) {
  return dt == TFW_DTYPE_F32 || dt == TFW_DTYPE_F64 || dt == TFW_DTYPE_F16 || dt == TFW_DTYPE_BF16;
}

bool tfw_dtype_is_integral(tfw_dtype dt) {
  return dt == TFW_DTYPE_I8 || dt == TFW_DTYPE_U8 || dt == TFW_DTYPE_I32 || dt == TFW_DTYPE_I64;
}

/* Rank in the promotion lattice; equal ranks with different dtypes are resolved below. */
static int promo_rank(tfw_dtype dt) {
  switch (dt) {
  case TFW_DTYPE_BOOL: return 0;
  case TFW_DTYPE_U8: return 1;
  case TFW_DTYPE_I8: return 1;
  case TFW_DTYPE_I32: return 3;
  case TFW_DTYPE_I64: return 4;
  case TFW_DTYPE_F16: return 5;
  case TFW_DTYPE_BF16: return 5;
  case TFW_DTYPE_F32: return 6;
  case TFW_DTYPE_F64: return 7;
  default: return -1;
  }
}

tfw_dtype tfw_promote_types(tfw_dtype a, tfw_dtype b) {
  if (a == b) return a;
  int ra = promo_rank(a), rb = promo_rank(b);
  if (ra == rb) {
    /* u8 + i8 -> int16 in PyTorch; tenflower has no int16, so the next wider int. */
    if (ra == 1) return TFW_DTYPE_I32;
    return TFW_DTYPE_F32; /* f16 + bf16 */
  }
  return ra > rb ? a : b;
}

static inline uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}
static inline float bits_f32(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}

uint16_t tfw_f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t exp = (x >> 23) & 0xffu;
  uint32_t man = x & 0x7fffffu;
  if (exp == 0xff) { /* inf or NaN */
    if (man) return (uint16_t)(sign | 0x7e00u | (man >> 13));
    return (uint16_t)(sign | 0x7c00u);
  }
  int32_t e = (int32_t)exp - 127 + 15;
  if (e >= 0x1f) return (uint16_t)(sign | 0x7c00u); /* overflow -> inf */
  if (e <= 0) {                                     /* subnormal or zero in f16 */
    if (e < -10) return (uint16_t)sign;             /* too small: rounds to zero */
    man |= 0x800000u;                               /* implicit bit */
    uint32_t shift = (uint32_t)(14 - e);            /* 14..24 */
    uint32_t half = 1u << (shift - 1);
    uint32_t rest = man & ((1u << shift) - 1);
    uint32_t h = man >> shift;
    if (rest > half || (rest == half && (h & 1u))) h++;
    return (uint16_t)(sign | h);
  }
  uint32_t h = ((uint32_t)e << 10) | (man >> 13);
  uint32_t rest = man & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++; /* may carry into exponent: ok */
  return (uint16_t)(sign | h);
}

float tfw_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));
  if (exp == 0) {
    if (man == 0) return bits_f32(sign);
    /* subnormal: value = man * 2^-24 */
    float v = (float)man * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t tfw_f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
  uint32_t lsb = (x >> 16) & 1u;
  x += 0x7fffu + lsb;
  return (uint16_t)(x >> 16);
}

float tfw_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }
