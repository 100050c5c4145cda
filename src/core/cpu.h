/* Runtime CPU feature detection (cpuid + xgetbv), computed once and cached.
 *
 * Kernels are compiled for baseline x86-64 and pick their SIMD path at run time from
 * tfw__cpu(). A feature is reported only when the CPU has it AND the OS saves its register
 * state (OSXSAVE/XCR0), so a true flag means the instructions are safe to execute.
 *
 * The environment variable TFW_CPU_FORCE=generic|avx2|avx512 masks the reported features
 * down to that level (read once, at the first tfw__cpu() call); tests use tfw__cpu_force()
 * to switch level inside one process. */
#ifndef TFW_CORE_CPU_H
#define TFW_CORE_CPU_H

#include <stdbool.h>
#include <stdint.h>

typedef struct tfw__cpu_info {
  bool sse42, avx, avx2, fma, f16c;
  bool avx512f, avx512bw, avx512vl, avx512dq, avx512bf16;
  bool amx_bf16, amx_tile;
  int64_t l1d_bytes; /* per core */
  int64_t l2_bytes;  /* per core (or per the group of cores that shares it) */
  int64_t l3_bytes;  /* per L3 slice the calling core sits in (CCX on AMD) */
  int cores;         /* logical CPUs online */
  char brand[64];
} tfw__cpu_info;

/* The (possibly masked) features of this CPU. Thread-safe; never NULL; the pointee lives
 * for the whole process. */
const tfw__cpu_info *tfw__cpu(void);

/* For tests and benchmarks: re-derives tfw__cpu()'s features masked to level ("generic",
 * "avx2", "avx512"); NULL or "" restores the unmasked detection (ignoring TFW_CPU_FORCE).
 * Unknown levels are ignored. Not safe to call while other threads run kernels. */
void tfw__cpu_force(const char *level);

#endif /* TFW_CORE_CPU_H */
