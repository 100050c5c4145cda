/* Philox4x32-10 and the global generator state (seed, offset); see rng.h.
 *
 * The state is guarded by a mutex rather than two separate atomics so that a reservation
 * always sees a (seed, offset) pair written together by tfw_rng_set_state/tfw_manual_seed.
 * A reservation is one lock per op, negligible next to generating the numbers. */
#include <pthread.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "core/core.h"
#include "core/cpu.h"
#include "core/rng.h"

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

/* ---- many consecutive blocks at once --------------------------------------------------------
 * Dropout draws one block per 4 elements; the scalar block above costs ~60 cycles (10 rounds
 * of two dependent 32x32->64 multiplies), which made dropout ~20% of a small GPT's training
 * step. The AVX-512 path runs 16 counters per zmm: vpmuludq gives the 64-bit products of the
 * even lanes, and of the odd lanes after a 32-bit shift; hi/lo halves are blended back into
 * 16 x u32. 1M blocks: 2.3 ms against 17-25 ms scalar on Zen 4 (gcc does not vectorize the
 * plain loop: the 32-bit high products defeat it). The results are the same bits. */
static void philox_blocks_scalar(uint64_t seed, uint64_t first, int64_t n, uint32_t *out) {
  for (int64_t b = 0; b < n; b++) tfw__philox_block(seed, first + (uint64_t)b, out + 4 * b);
}

#if defined(__x86_64__)
__attribute__((target("avx512f"))) static void philox_blocks_avx512(uint64_t seed, uint64_t first,
                                                                     int64_t n, uint32_t *out) {
  const __m512i m0 = _mm512_set1_epi64(PHILOX_M0), m1 = _mm512_set1_epi64(PHILOX_M1);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i i_lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i i_hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  const __m512i q_lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
  const __m512i q_hi = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
  int64_t b0 = 0;
  for (; b0 + 16 <= n; b0 += 16) {
    uint64_t c = first + (uint64_t)b0;
    __m512i base_lo = _mm512_set1_epi32((int)(uint32_t)c), base_hi = _mm512_set1_epi32((int)(uint32_t)(c >> 32));
    __m512i c0 = _mm512_add_epi32(base_lo, lane);
    __mmask16 wrap = _mm512_cmplt_epu32_mask(c0, base_lo); /* the low word wrapped: carry */
    __m512i c1 = _mm512_mask_add_epi32(base_hi, wrap, base_hi, _mm512_set1_epi32(1));
    __m512i c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512();
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
      __m512i pe0 = _mm512_mul_epu32(c0, m0), po0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
      __m512i pe1 = _mm512_mul_epu32(c2, m1), po1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
      __m512i hi0 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe0, 32), po0);
      __m512i lo0 = _mm512_mask_blend_epi32(0xAAAA, pe0, _mm512_slli_epi64(po0, 32));
      __m512i hi1 = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(pe1, 32), po1);
      __m512i lo1 = _mm512_mask_blend_epi32(0xAAAA, pe1, _mm512_slli_epi64(po1, 32));
      __m512i n0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
      __m512i n2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
      c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
      k0 += PHILOX_W0, k1 += PHILOX_W1;
    }
    /* to block order: out[4 l + w] = c_w[l] */
    __m512i a01 = _mm512_permutex2var_epi32(c0, i_lo, c1), b01 = _mm512_permutex2var_epi32(c0, i_hi, c1);
    __m512i a23 = _mm512_permutex2var_epi32(c2, i_lo, c3), b23 = _mm512_permutex2var_epi32(c2, i_hi, c3);
    uint32_t *o = out + 4 * b0;
    _mm512_storeu_si512(o, _mm512_permutex2var_epi64(a01, q_lo, a23));
    _mm512_storeu_si512(o + 16, _mm512_permutex2var_epi64(a01, q_hi, a23));
    _mm512_storeu_si512(o + 32, _mm512_permutex2var_epi64(b01, q_lo, b23));
    _mm512_storeu_si512(o + 48, _mm512_permutex2var_epi64(b01, q_hi, b23));
  }
  philox_blocks_scalar(seed, first + (uint64_t)b0, n - b0, out + 4 * b0);
}
#endif

void tfw__philox_blocks(uint64_t seed, uint64_t first, int64_t n, uint32_t *out) {
#if defined(__x86_64__)
  if (n >= 16 && tfw__cpu()->avx512f) {
    philox_blocks_avx512(seed, first, n, out);
    return;
  }
#endif
  philox_blocks_scalar(seed, first, n, out);
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
