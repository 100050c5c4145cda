/* Philox4x32-10 and the global generator state (seed, offset); see rng.h.
 *
 * The state is guarded by a mutex rather than two separate atomics so that a reservation
 * always sees a (seed, offset) pair written together by tfw_rng_set_state/tfw_manual_seed.
 * A reservation is one lock per op, negligible next to generating the numbers. */
#include <pthread.h>

#include "core/core.h"
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
