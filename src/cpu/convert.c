/* Bulk f32 <-> f16/bf16 conversion.
 *
 * f16 uses the F16C instructions (vcvtps2ph / vcvtph2ps: round to nearest even, exact
 * subnormals, NaN quieted — the same results as the scalar tfw_f32_to_f16, which
 * test_core checks bit for bit) when the CPU has them, else the scalar code.
 * bf16 is written as branch-free integer code that gcc vectorises; the AVX512_BF16
 * instruction vcvtneps2bf16 is deliberately not used: it flushes subnormal inputs to zero,
 * which would break the "subnormals are kept" guarantee of docs/dtypes.md. */
#include <immintrin.h>
#include <string.h>

#include "core/core.h"
#include "core/cpu.h"
#include "cpu/convert.h"

#define CLONES TFW_CLONES

__attribute__((target("avx,f16c"))) static void f32_to_f16_f16c(const float *s, uint16_t *d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(s + i);
    _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
  }
  for (; i < n; i++) d[i] = tfw_f32_to_f16(s[i]);
}

__attribute__((target("avx,f16c"))) static void f16_to_f32_f16c(const uint16_t *s, float *d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m128i h = _mm_loadu_si128((const __m128i *)(s + i));
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(h));
  }
  for (; i < n; i++) d[i] = tfw_f16_to_f32(s[i]);
}

static bool has_f16c(void) {
  const tfw__cpu_info *c = tfw__cpu();
  return c->f16c && c->avx;
}

void tfw__f32_to_f16_n(const float *src, uint16_t *dst, int64_t n) {
  if (has_f16c()) {
    f32_to_f16_f16c(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; i++) dst[i] = tfw_f32_to_f16(src[i]);
}

void tfw__f16_to_f32_n(const uint16_t *src, float *dst, int64_t n) {
  if (has_f16c()) {
    f16_to_f32_f16c(src, dst, n);
    return;
  }
  for (int64_t i = 0; i < n; i++) dst[i] = tfw_f16_to_f32(src[i]);
}

/* target_clones on static functions only: clang 14 does not emit the resolver for
 * external multiversioned definitions. */
CLONES static void f32_to_bf16_loop(const float *src, uint16_t *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u;
    memcpy(&u, &src[i], 4);
    uint32_t nan = (u & 0x7fffffffu) > 0x7f800000u;
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    dst[i] = (uint16_t)(nan ? ((u >> 16) | 0x40u) : r);
  }
}

CLONES static void bf16_to_f32_loop(const uint16_t *src, float *dst, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    uint32_t u = (uint32_t)src[i] << 16;
    memcpy(&dst[i], &u, 4);
  }
}

void tfw__f32_to_bf16_n(const float *src, uint16_t *dst, int64_t n) { f32_to_bf16_loop(src, dst, n); }
void tfw__bf16_to_f32_n(const uint16_t *src, float *dst, int64_t n) { bf16_to_f32_loop(src, dst, n); }
