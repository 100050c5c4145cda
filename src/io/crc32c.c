/* CRC-32C (Castagnoli), as TFRecord framing needs it.
 *
 * Hand-written (no library in DESIGN.md's list has it without pulling in a codec) and small:
 * a byte-wise table for baseline CPUs, and the SSE4.2 crc32 instruction, 8 bytes per
 * instruction, chosen at run time from cpuid (src/core/cpu.c). Event records are tens of
 * bytes, so the table alone would do for TensorBoard; the data pipeline reads gigabytes of
 * TFRecords, where the instruction is ~20x faster. */
#include <string.h>

#include "core/cpu.h"
#include "io/tfrecord.h"

#if defined(__x86_64__) || defined(__i386__)
#include <nmmintrin.h>
#define TFW__HAVE_SSE42_PATH 1
#endif

static uint32_t g_table[256];
static _Atomic int g_table_ready;

static void table_init(void) {
  if (atomic_load_explicit(&g_table_ready, memory_order_acquire)) return;
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    g_table[i] = c; /* racing initialisers write identical values */
  }
  atomic_store_explicit(&g_table_ready, 1, memory_order_release);
}

uint32_t tfw__crc32c_sw(uint32_t crc, const void *p, size_t n) {
  table_init();
  const uint8_t *s = p;
  crc = ~crc;
  for (size_t i = 0; i < n; i++) crc = g_table[(crc ^ s[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

#ifdef TFW__HAVE_SSE42_PATH
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *p,
                                                             size_t n) {
  const uint8_t *s = p;
  uint64_t c = ~crc;
  for (; n >= 8; n -= 8, s += 8) {
    uint64_t w;
    memcpy(&w, s, 8); /* unaligned-safe; the instruction takes little-endian words */
    c = _mm_crc32_u64(c, w);
  }
  uint32_t c32 = (uint32_t)c;
  for (; n > 0; n--, s++) c32 = _mm_crc32_u8(c32, *s);
  return ~c32;
}
#endif

uint32_t tfw__crc32c(uint32_t crc, const void *p, size_t n) {
#ifdef TFW__HAVE_SSE42_PATH
  if (tfw__cpu()->sse42) return crc32c_hw(crc, p, n);
#endif
  return tfw__crc32c_sw(crc, p, n);
}
