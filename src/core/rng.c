/* Philox4x32-10 and the global generator state (seed, offset); see rng.h.
 *
 * The state is guarded by a mutex rather than two separate atomics so that a reservation
 * always sees a (seed, offset) pair written together by tfw_rng_set_state/tfw_manual_seed.
 * A reservation is one lock per op, negligible next to generating the numbers. */
#include <pthread.h>

#include "core/core.h"
#include "core/cpu.h"
#include "core/rng.h"

#ifdef __x86_64__
#include <immintrin.h>
#endif

#define PHILOX_M0 UINT32_C(0xD2511F53)
#define PHILOX_M1 UINT32_C(0xCD9E8D57)
#define PHILOX_W0 UINT32_C(0x9E3779B9)
#define PHILOX_W1 UINT32_C(0xBB67AE85)

void tfw__philox4x32_10(uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
    uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

#ifdef __x86_64__
/* hi and lo 32 bits of the 16 lane products m * a (unsigned 32 x 32 -> 64). */
__attribute__((target("avx512f"))) static inline void mul_hilo16(__m512i a, __m512i m,
                                                                  __m512i *hi, __m512i *lo) {
  __m512i pe = _mm512_mul_epu32(a, m);                         /* even lanes, 64-bit */
  __m512i po = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);  /* odd lanes, 64-bit */
  *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe, 32), po);
  *lo = _mm512_mask_blend_epi32(0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

/* 16 Philox4x32-10 blocks, one per lane, then a 4 x 16 transpose to element order. */
__attribute__((target("avx512f"))) static void philox_x16_avx512(uint64_t seed, uint64_t c,
                                                                  uint32_t out[64]) {
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0 = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)c), iota);
  /* the high word carries where the low word wrapped (c0 < lane) */
  const __mmask16 carry = _mm512_cmplt_epu32_mask(c0, iota);
  __m512i c1 = _mm512_mask_add_epi32(_mm512_set1_epi32((int)(uint32_t)(c >> 32)), carry,
                                     _mm512_set1_epi32((int)(uint32_t)(c >> 32)),
                                     _mm512_set1_epi32(1));
  __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
  const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    __m512i h0, l0, h1, l1;
    mul_hilo16(c0, m0, &h0, &l0);
    mul_hilo16(c2, m1, &h1, &l1);
    c0 = _mm512_xor_si512(_mm512_xor_si512(h1, c1), _mm512_set1_epi32((int)k0));
    c1 = l1;
    c2 = _mm512_xor_si512(_mm512_xor_si512(h0, c3), _mm512_set1_epi32((int)k1));
    c3 = l0;
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  /* [word j][block l] -> [block l][word j] */
  __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
  __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
  __m512i u0 = _mm512_unpacklo_epi64(t0, t2), u1 = _mm512_unpackhi_epi64(t0, t2);
  __m512i u2 = _mm512_unpacklo_epi64(t1, t3), u3 = _mm512_unpackhi_epi64(t1, t3);
  __m512i v0 = _mm512_shuffle_i32x4(u0, u1, 0x44), v1 = _mm512_shuffle_i32x4(u2, u3, 0x44);
  __m512i v2 = _mm512_shuffle_i32x4(u0, u1, 0xEE), v3 = _mm512_shuffle_i32x4(u2, u3, 0xEE);
  _mm512_storeu_si512(out + 0, _mm512_shuffle_i32x4(v0, v1, 0x88));
  _mm512_storeu_si512(out + 16, _mm512_shuffle_i32x4(v0, v1, 0xDD));
  _mm512_storeu_si512(out + 32, _mm512_shuffle_i32x4(v2, v3, 0x88));
  _mm512_storeu_si512(out + 48, _mm512_shuffle_i32x4(v2, v3, 0xDD));
}
#endif

void tfw__philox_x16(uint64_t seed, uint64_t c, uint32_t out[64]) {
#ifdef __x86_64__
  if (tfw__cpu()->avx512f) {
    philox_x16_avx512(seed, c, out);
    return;
  }
#endif
  for (int l = 0; l < 16; l++) tfw__philox_block(seed, c + (uint64_t)l, out + 4 * l);
}

void tfw__philox_blocks(uint64_t seed, uint64_t first, int64_t n, uint32_t *out) {
  int64_t b = 0;
  for (; b + 16 <= n; b += 16) tfw__philox_x16(seed, first + (uint64_t)b, out + 4 * b);
  for (; b < n; b++) tfw__philox_block(seed, first + (uint64_t)b, out + 4 * b);
}

static pthread_mutex_t g_rng_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t g_seed = TFW__RNG_DEFAULT_SEED;
static uint64_t g_offset = 0;

uint64_t tfw__rng_reserve(uint64_t n_counters, uint64_t *seed_out) {
  pthread_mutex_lock(&g_rng_lock);
  uint64_t first = g_offset;
  g_offset += n_counters; /* wraps after 2^64 blocks: harmless for a counter-based stream */
  *seed_out = g_seed;
  pthread_mutex_unlock(&g_rng_lock);
  return first;
}

void tfw_manual_seed(uint64_t seed) { tfw_rng_set_state(seed, 0); }

uint64_t tfw_initial_seed(void) {
  pthread_mutex_lock(&g_rng_lock);
  uint64_t s = g_seed;
  pthread_mutex_unlock(&g_rng_lock);
  return s;
}

void tfw_rng_get_state(uint64_t *seed, uint64_t *offset) {
  pthread_mutex_lock(&g_rng_lock);
  if (seed) *seed = g_seed;
  if (offset) *offset = g_offset;
  pthread_mutex_unlock(&g_rng_lock);
}

void tfw_rng_set_state(uint64_t seed, uint64_t offset) {
  pthread_mutex_lock(&g_rng_lock);
  g_seed = seed;
  g_offset = offset;
  pthread_mutex_unlock(&g_rng_lock);
}
