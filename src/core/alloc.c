/* Allocation: one place for every byte tenflower takes from the system.
 *
 * Storage buffers go through a caching allocator: sizes are rounded up to a size class
 * (four classes per power of two, so at most 19% is wasted) and freed blocks are kept on a
 * per-class free list for reuse, up to TFW__CACHE_CAP bytes in all. Statistics
 * (live/peak bytes, counts) are kept under one mutex; allocation is not on the per-element
 * hot path, so a mutex is cheap enough and keeps the numbers exact.
 * TFW_TRACE_ALLOC=1 prints every storage allocation and free to stderr.
 * tfw_memory_fail_at() makes the Nth allocation fail, for out-of-memory tests (sqlite's
 * OOM loop). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

#define TFW__ALIGN 64
#define TFW__NCLASS 256
#define TFW__CACHE_CAP ((int64_t)1 << 30)

typedef struct block {
  struct block *next;
} block;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static block *g_free[TFW__NCLASS];
static tfw_memory_stats g_stats;
static int64_t g_fail_countdown; /* 0: off */
static bool g_fail_persist;
static int g_trace = -1;
static int64_t g_limit = INT64_MAX; /* tfw_memory_set_limit */

static bool should_fail(void) {
  bool fail = false;
  pthread_mutex_lock(&g_lock);
  if (g_fail_countdown > 0) {
    if (--g_fail_countdown == 0) {
      fail = true;
      if (g_fail_persist) g_fail_countdown = 1;
    }
  }
  pthread_mutex_unlock(&g_lock);
  return fail;
}

void tfw_memory_fail_at(int64_t n, bool persist) {
  pthread_mutex_lock(&g_lock);
  g_fail_countdown = n > 0 ? n : 0;
  g_fail_persist = persist;
  pthread_mutex_unlock(&g_lock);
}

void *tfw__malloc(size_t n) {
  if (should_fail()) return NULL;
  return malloc(n ? n : 1);
}

void *tfw__calloc(size_t n, size_t size) {
  if (should_fail()) return NULL;
  return calloc(n ? n : 1, size ? size : 1);
}

void *tfw__realloc(void *p, size_t n) {
  if (should_fail()) return NULL;
  return realloc(p, n ? n : 1);
}

void tfw__free(void *p) { free(p); }

/* Size class of n: index and rounded size. Classes below 256 bytes are one class. */
static int size_class(size_t n, size_t *rounded) {
  if (n <= 256) {
    *rounded = 256;
    return 0;
  }
  int lg = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^lg < n <= 2^(lg+1) */
  size_t base = (size_t)1 << lg;
  size_t quarter = base / 4;
  size_t k = (n - base + quarter - 1) / quarter; /* 1..4 */
  *rounded = base + k * quarter;
  int cls = (lg - 8) * 4 + (int)k;
  return cls < TFW__NCLASS ? cls : -1;
}

static bool trace_on(void) {
  if (g_trace < 0) {
    const char *e = getenv("TFW_TRACE_ALLOC");
    g_trace = (e && e[0] && e[0] != '0') ? 1 : 0;
  }
  return g_trace == 1;
}

void *tfw__storage_alloc(size_t nbytes) {
  size_t rounded;
  int cls = size_class(nbytes, &rounded);
  if (cls < 0 || rounded > (size_t)INT64_MAX / 2) return NULL;
  if (should_fail()) return NULL;
  pthread_mutex_lock(&g_lock);
  bool over = g_stats.live_bytes + (int64_t)rounded > g_limit;
  pthread_mutex_unlock(&g_lock);
  if (over) return NULL;
  void *p = NULL;
  pthread_mutex_lock(&g_lock);
  if (g_free[cls]) {
    block *b = g_free[cls];
    g_free[cls] = b->next;
    g_stats.cached_bytes -= (int64_t)rounded;
    g_stats.cache_hits++;
    p = b;
  }
  pthread_mutex_unlock(&g_lock);
  if (!p) {
    if (posix_memalign(&p, TFW__ALIGN, rounded) != 0) {
      tfw_memory_empty_cache(); /* free the cache and retry once */
      if (posix_memalign(&p, TFW__ALIGN, rounded) != 0) return NULL;
    }
  }
  pthread_mutex_lock(&g_lock);
  g_stats.live_bytes += (int64_t)rounded;
  if (g_stats.live_bytes > g_stats.peak_bytes) g_stats.peak_bytes = g_stats.live_bytes;
  g_stats.live_allocations++;
  g_stats.total_allocations++;
  pthread_mutex_unlock(&g_lock);
  if (trace_on()) fprintf(stderr, "tfw alloc %p %zu (class %zu)\n", p, nbytes, rounded);
  return p;
}

void tfw__storage_free(void *p, size_t nbytes) {
  if (!p) return;
  size_t rounded;
  int cls = size_class(nbytes, &rounded);
  TFW_ASSERT(cls >= 0);
  if (trace_on()) fprintf(stderr, "tfw free %p %zu\n", p, nbytes);
  pthread_mutex_lock(&g_lock);
  g_stats.live_bytes -= (int64_t)rounded;
  g_stats.live_allocations--;
  TFW_ASSERT(g_stats.live_bytes >= 0 && g_stats.live_allocations >= 0);
  bool keep = g_stats.cached_bytes + (int64_t)rounded <= TFW__CACHE_CAP;
  if (keep) {
    block *b = p;
    b->next = g_free[cls];
    g_free[cls] = b;
    g_stats.cached_bytes += (int64_t)rounded;
  }
  pthread_mutex_unlock(&g_lock);
  if (!keep) free(p);
}

void tfw_memory_empty_cache(void) {
  pthread_mutex_lock(&g_lock);
  for (int c = 0; c < TFW__NCLASS; c++) {
    block *b = g_free[c];
    while (b) {
      block *n = b->next;
      free(b);
      b = n;
    }
    g_free[c] = NULL;
  }
  g_stats.cached_bytes = 0;
  pthread_mutex_unlock(&g_lock);
}

void tfw__stats_tensor(int delta) {
  pthread_mutex_lock(&g_lock);
  g_stats.live_tensors += delta;
  TFW_ASSERT(g_stats.live_tensors >= 0);
  pthread_mutex_unlock(&g_lock);
}

void tfw_memory_stats_get(tfw_memory_stats *out) {
  if (!out) return;
  pthread_mutex_lock(&g_lock);
  *out = g_stats;
  pthread_mutex_unlock(&g_lock);
}

void tfw_memory_set_limit(int64_t bytes) {
  pthread_mutex_lock(&g_lock);
  g_limit = bytes > 0 ? bytes : INT64_MAX;
  pthread_mutex_unlock(&g_lock);
}

void tfw_memory_reset_peak(void) {
  pthread_mutex_lock(&g_lock);
  g_stats.peak_bytes = g_stats.live_bytes;
  pthread_mutex_unlock(&g_lock);
}
