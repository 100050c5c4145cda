/* The global counter-based random generator: Philox4x32-10 (Salmon et al., "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11), as in Random123, cuRAND and PyTorch's GPU backend.
 *
 * The state is (seed, offset). A random op reserves a contiguous range of counters with
 * tfw__rng_reserve(); its element i then depends only on (seed, offset + i / per) where per is
 * the number of elements one 128-bit Philox block feeds (4 for 32-bit draws, 2 for 64-bit
 * draws). So the numbers do not depend on the thread count or the chunking, and a GPU
 * kernel given the same (seed, offset) reproduces them. Internal header — never installed.
 *
 * Counter layout (the GPU backend must use the same): ctr = {lo32(c), hi32(c), 0, 0} with
 * c = offset + block index; key = {lo32(seed), hi32(seed)}. */
#ifndef TFW_RNG_H
#define TFW_RNG_H

#include <stdint.h>

/* The seed in effect before any tfw_manual_seed(): PyTorch's default_rng_seed_val. */
#define TFW__RNG_DEFAULT_SEED UINT64_C(67280421310721)

/* One Philox4x32-10 block: out = philox(ctr, key). */
void tfw__philox4x32_10(uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Reserves n_counters consecutive counters from the global generator (thread-safe): returns
 * the first counter and stores the current seed in *seed_out. */
uint64_t tfw__rng_reserve(uint64_t n_counters, uint64_t *seed_out);

/* Block c (absolute counter) of the stream of seed: out[4]. */
static inline void tfw__philox_block(uint64_t seed, uint64_t c, uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)c, (uint32_t)(c >> 32), 0, 0};
  const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  tfw__philox4x32_10(ctr, key, out);
}

/* 16 consecutive blocks c, c+1, ..., c+15 of the stream of seed: out[4*l + j] = word j of
 * block c + l, i.e. the same 64 words as 16 tfw__philox_block calls, in element order.
 * AVX-512 computes the 16 blocks in the 16 lanes of a vector (bit-identical to the scalar
 * generator); other CPUs loop over tfw__philox_block. */
void tfw__philox_x16(uint64_t seed, uint64_t c, uint32_t out[64]);
/* Blocks first .. first + n - 1 of the stream of seed: out[4 * b + w] = word w of block
 * first + b (the same bits as tfw__philox_block; 16 at a time through tfw__philox_x16). */
void tfw__philox_blocks(uint64_t seed, uint64_t first, int64_t n, uint32_t *out);

/* ---- bits -> floats ------------------------------------------------------------------ */
/* U[0, 1) with the top `bits` bits of x (bits <= 24): k * 2^-bits, exact in f32, and exact
 * in f16 (bits = 11) and bf16 (bits = 8), so casting never rounds up to 1. */
static inline float tfw__u32_to_unit_bits(uint32_t x, int bits) {
  return (float)(x >> (32 - bits)) * (1.0f / (float)(UINT32_C(1) << bits));
}
/* U[0, 1) in f32 with 24 random bits. */
static inline float tfw__u32_to_unit_f32(uint32_t x) {
  return (float)(x >> 8) * 0x1p-24f;
}
/* U[0, 1) in f64 with 53 random bits. */
static inline double tfw__u64_to_unit_f64(uint64_t x) {
  return (double)(x >> 11) * 0x1p-53;
}
/* U(0, 1] in double from 32 bits (never 0: safe for log in Box-Muller). */
static inline double tfw__u32_to_open_unit(uint32_t x) {
  return ((double)x + 1.0) * 0x1p-32;
}
/* U(0, 1] in double from 64 bits (53 used). */
static inline double tfw__u64_to_open_unit(uint64_t x) {
  return ((double)(x >> 11) + 1.0) * 0x1p-53;
}

#endif
