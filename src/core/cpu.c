/* Runtime CPU feature detection; see cpu.h.
 *
 * Leaves used: 0 (vendor, max leaf), 1 (SSE4.2/AVX/FMA/F16C/OSXSAVE), 7.0 (AVX2, AVX-512
 * F/DQ/BW/VL, AMX), 7.1 (AVX512_BF16), 4 / 0x8000001D (deterministic cache parameters on
 * Intel / AMD), 0x80000005/6 (AMD legacy cache sizes), 0x80000002-4 (brand string).
 * XCR0 (xgetbv 0) tells which register states the OS saves: bits 1-2 (XMM, YMM) for AVX,
 * bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM) for AVX-512, bits 17-18 (XTILECFG, XTILEDATA) for
 * AMX. (Linux additionally wants arch_prctl(ARCH_REQ_XCOMP_PERM) before the first AMX
 * instruction; that is the AMX kernel's job, not detection's.) */
#include "core/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define TFW__X86 1
#endif

static tfw__cpu_info g_raw; /* what the hardware + OS offer */
static tfw__cpu_info g_cur; /* g_raw masked by TFW_CPU_FORCE / tfw__cpu_force */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

enum { TFW__FALLBACK_L1 = 32 << 10, TFW__FALLBACK_L2 = 1 << 20, TFW__FALLBACK_L3 = 32 << 20 };

#ifdef TFW__X86
static void cpuid2(unsigned leaf, unsigned sub, unsigned r[4]) {
  r[0] = r[1] = r[2] = r[3] = 0;
  __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static uint64_t xgetbv0(void) {
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

/* Walks the deterministic cache-parameter leaf (4 on Intel, 0x8000001D on AMD): each
 * subleaf describes one cache; stop at type 0. */
static void caches_from_leaf(unsigned leaf, tfw__cpu_info *ci) {
  for (unsigned sub = 0; sub < 16; sub++) {
    unsigned r[4];
    cpuid2(leaf, sub, r);
    unsigned type = r[0] & 0x1f;
    if (type == 0) break;
    if (type == 2) continue; /* instruction cache */
    unsigned level = (r[0] >> 5) & 0x7;
    int64_t ways = ((r[1] >> 22) & 0x3ff) + 1;
    int64_t parts = ((r[1] >> 12) & 0x3ff) + 1;
    int64_t line = (r[1] & 0xfff) + 1;
    int64_t sets = (int64_t)r[2] + 1;
    int64_t bytes = ways * parts * line * sets;
    if (level == 1) ci->l1d_bytes = bytes;
    if (level == 2) ci->l2_bytes = bytes;
    if (level == 3) ci->l3_bytes = bytes;
  }
}

static void detect_x86(tfw__cpu_info *ci) {
  unsigned r[4];
  unsigned max_leaf = __get_cpuid_max(0, NULL);
  if (max_leaf == 0) return;
  cpuid2(0, 0, r);
  char vendor[13];
  memcpy(vendor + 0, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  bool amd = !strcmp(vendor, "AuthenticAMD") || !strcmp(vendor, "HygonGenuine");

  cpuid2(1, 0, r);
  unsigned ecx1 = r[2];
  ci->sse42 = (ecx1 >> 20) & 1;
  bool osxsave = (ecx1 >> 27) & 1;
  uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  bool os_avx = (xcr0 & 0x6) == 0x6;
  bool os_avx512 = os_avx && (xcr0 & 0xe0) == 0xe0;
  bool os_amx = (xcr0 & 0x60000) == 0x60000;

  ci->avx = os_avx && ((ecx1 >> 28) & 1);
  ci->fma = ci->avx && ((ecx1 >> 12) & 1);
  ci->f16c = ci->avx && ((ecx1 >> 29) & 1);
  if (max_leaf >= 7) {
    cpuid2(7, 0, r);
    unsigned ebx7 = r[1], edx7 = r[3], max_sub7 = r[0];
    ci->avx2 = ci->avx && ((ebx7 >> 5) & 1);
    ci->avx512f = os_avx512 && ((ebx7 >> 16) & 1);
    ci->avx512dq = ci->avx512f && ((ebx7 >> 17) & 1);
    ci->avx512bw = ci->avx512f && ((ebx7 >> 30) & 1);
    ci->avx512vl = ci->avx512f && ((ebx7 >> 31) & 1);
    ci->amx_bf16 = os_amx && ((edx7 >> 22) & 1);
    ci->amx_tile = os_amx && ((edx7 >> 24) & 1);
    if (max_sub7 >= 1) {
      cpuid2(7, 1, r);
      ci->avx512bf16 = ci->avx512f && ((r[0] >> 5) & 1);
    }
  }

  unsigned max_ext = __get_cpuid_max(0x80000000u, NULL);
  if (max_ext >= 0x80000004u) {
    char b[49];
    for (unsigned i = 0; i < 3; i++) {
      cpuid2(0x80000002u + i, 0, r);
      memcpy(b + 16 * i, r, 16);
    }
    b[48] = 0;
    const char *s = b;
    while (*s == ' ') s++;
    strncpy(ci->brand, s, sizeof ci->brand - 1);
  }

  if (amd) {
    cpuid2(0x80000001u, 0, r);
    bool topoext = (r[2] >> 22) & 1;
    if (topoext && max_ext >= 0x8000001Du) {
      caches_from_leaf(0x8000001Du, ci);
    } else {
      if (max_ext >= 0x80000005u) {
        cpuid2(0x80000005u, 0, r);
        ci->l1d_bytes = (int64_t)(r[2] >> 24) << 10;
      }
      if (max_ext >= 0x80000006u) {
        cpuid2(0x80000006u, 0, r);
        ci->l2_bytes = (int64_t)(r[2] >> 16) << 10;
        ci->l3_bytes = (int64_t)(r[3] >> 18) * (512 << 10);
      }
    }
  } else if (max_leaf >= 4) {
    caches_from_leaf(4, ci);
  }
}
#endif /* TFW__X86 */

static void sanitize_caches(tfw__cpu_info *ci) {
  /* Hypervisors sometimes report zeros or nonsense; keep the blocking code sane. */
  if (ci->l1d_bytes < (8 << 10) || ci->l1d_bytes > (4 << 20)) ci->l1d_bytes = TFW__FALLBACK_L1;
  if (ci->l2_bytes < (64 << 10) || ci->l2_bytes > (256 << 20)) ci->l2_bytes = TFW__FALLBACK_L2;
  if (ci->l3_bytes <= 0 || ci->l3_bytes > ((int64_t)4 << 30)) ci->l3_bytes = TFW__FALLBACK_L3;
}

static void apply_level(tfw__cpu_info *ci, const char *level) {
  if (!level || !*level) return;
  if (!strcmp(level, "generic")) {
    ci->avx = ci->avx2 = ci->fma = ci->f16c = false;
    ci->avx512f = ci->avx512bw = ci->avx512vl = ci->avx512dq = ci->avx512bf16 = false;
    ci->amx_bf16 = ci->amx_tile = false;
  } else if (!strcmp(level, "avx2")) {
    ci->avx512f = ci->avx512bw = ci->avx512vl = ci->avx512dq = ci->avx512bf16 = false;
    ci->amx_bf16 = ci->amx_tile = false;
  } else if (!strcmp(level, "avx512")) {
    ci->amx_bf16 = ci->amx_tile = false;
  }
}

static void init_once(void) {
  tfw__cpu_info ci;
  memset(&ci, 0, sizeof ci);
#ifdef TFW__X86
  detect_x86(&ci);
#endif
  if (!ci.brand[0]) strcpy(ci.brand, "unknown");
  sanitize_caches(&ci);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  ci.cores = n > 0 ? (int)n : 1;
  g_raw = ci;
  g_cur = ci;
  apply_level(&g_cur, getenv("TFW_CPU_FORCE"));
}

const tfw__cpu_info *tfw__cpu(void) {
  pthread_once(&g_once, init_once);
  return &g_cur;
}

void tfw__cpu_force(const char *level) {
  pthread_once(&g_once, init_once);
  tfw__cpu_info ci = g_raw;
  apply_level(&ci, level);
  g_cur = ci;
}
