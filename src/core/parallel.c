/* The library's thread pool, sized by tfw_set_num_threads() or the TFW_NUM_THREADS
 * environment variable (default: the number of cores).
 *
 * tfw__parallel_for splits [0, n) into a number of chunks that depends only on n and the
 * grain, so kernels that reduce per chunk and combine chunk results in order give the same
 * bits for 1 or N threads.
 *
 * Why not OpenMP's `parallel for`: a training step of a small network runs a few hundred
 * short parallel loops. With libgomp's static schedule the calling thread waits at the end
 * of each loop for every team member to arrive, and on a machine with more runnable
 * processes than cores (CI runs two test processes on two cores; shared VMs) a team member
 * that is not on a CPU stalls the loop for a scheduler time slice: the MNIST CNN step took
 * 2-4x longer on 2 threads than on 1 on a loaded 2-core VM. Here chunks are claimed
 * dynamically from one atomic ticket, the calling thread claims chunks too, and it waits
 * only for chunks that were actually claimed, never for a worker to show up: a worker that
 * is not running costs nothing, so the worst case is the 1-thread time.
 *
 * Protocol. ticket = (generation << 32) | next chunk. The caller (one region at a time,
 * under g_region; a second user thread that finds a region running runs its loop serially)
 * writes the job fields, zeroes `done`, then publishes ticket = (gen + 1, 0). A worker loads
 * the ticket, reads the job fields, and claims chunk i with a CAS from (gen, i) to
 * (gen, i + 1); a successful CAS proves the fields it read belong to that generation: at
 * the end of a region the caller closes the ticket to (gen, 2^32 - 1) before it may rewrite
 * the fields, so a CAS from any value loaded before fails. The caller returns
 * once `done` (chunks finished) reaches the chunk count. Idle workers spin ~50 us, then
 * sleep on a futex; the caller wakes them only when some are asleep (a Dekker pair on
 * g_sleepers / the ticket, both sequentially consistent). Threads start lazily, at the
 * first parallel loop, and are never joined (they sleep between loops); a forked child
 * starts with no workers. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifdef TFW_HAVE_OPENMP
#include <omp.h>
#endif
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#include "core/core.h"

static _Atomic int g_threads = 0;

static int default_threads(void) {
  const char *e = getenv("TFW_NUM_THREADS");
  if (e && atoi(e) > 0) return atoi(e);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int tfw__num_threads(void) {
  int n = atomic_load(&g_threads);
  if (n <= 0) {
    n = default_threads();
    atomic_store(&g_threads, n);
  }
  return n;
}

void tfw_set_num_threads(int n) { atomic_store(&g_threads, n > 0 ? n : default_threads()); }
int tfw_get_num_threads(void) { return tfw__num_threads(); }

/* Upper bound on chunks so that scheduling overhead stays small. */
#define TFW__MAX_CHUNKS 256
/* Workers at most (threads beyond this run nothing). */
#define MAX_WORKERS 255
/* How long an idle worker spins before it sleeps, and how long the caller spins waiting
 * for claimed chunks before it starts yielding its CPU. */
#define SPIN_NS 50000

int64_t tfw__parallel_chunks(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  if (grain < 1) grain = 1;
  int64_t c = n / grain;
  if (c < 1) c = 1;
  if (c > TFW__MAX_CHUNKS) c = TFW__MAX_CHUNKS;
  return c;
}

/* ---- the pool ---------------------------------------------------------------------------- */

static pthread_mutex_t g_region = PTHREAD_MUTEX_INITIALIZER; /* one region at a time */
static _Atomic uint64_t g_ticket;                          /* (gen << 32) | next chunk */
static _Atomic int64_t g_done;                             /* chunks finished this gen */
static _Atomic(tfw__range_fn) g_fn;
static _Atomic(void *) g_ctx;
static _Atomic int64_t g_n, g_chunks;
static _Atomic int g_max_worker; /* workers with id < this may claim chunks */
static _Atomic uint32_t g_wake;  /* futex word */
static _Atomic int g_sleepers;
static int g_nworkers; /* started (under g_region) */
static _Thread_local bool t_in_region;

bool tfw__in_parallel(void) {
#ifdef TFW_HAVE_OPENMP
  if (omp_in_parallel()) return true;
#endif
  return t_in_region;
}

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs chunks of the current generation while there are any; returns whether
 * it ran at least one. */
static bool run_chunks(int id) {
  bool ran = false;
  for (;;) {
    uint64_t t = atomic_load(&g_ticket);
    const int64_t i = (int64_t)(uint32_t)t;
    const int64_t chunks = atomic_load(&g_chunks);
    const int64_t n = atomic_load(&g_n);
    tfw__range_fn fn = atomic_load(&g_fn);
    void *ctx = atomic_load(&g_ctx);
    if ((t >> 32) == 0 || i >= chunks || id >= atomic_load(&g_max_worker)) return ran;
    if (!atomic_compare_exchange_weak(&g_ticket, &t, t + 1)) continue;
    fn(i * n / chunks, (i + 1) * n / chunks, ctx);
    atomic_fetch_add(&g_done, 1);
    ran = true;
  }
}

static bool work_available(int id) {
  uint64_t t = atomic_load(&g_ticket);
  return (t >> 32) != 0 && (int64_t)(uint32_t)t < atomic_load(&g_chunks) &&
         id < atomic_load(&g_max_worker);
}

static void *worker_main(void *arg) {
  const int id = (int)(intptr_t)arg;
  t_in_region = true; /* nested loops inside a chunk run serially */
  for (;;) {
    int64_t start = now_ns();
    for (int spin = 0;; spin++) {
      if (run_chunks(id)) start = now_ns(), spin = 0;
      CPU_RELAX();
      if ((spin & 63) == 63 && now_ns() - start > SPIN_NS) break;
    }
    const uint32_t w = atomic_load(&g_wake);
    atomic_fetch_add(&g_sleepers, 1);
    if (!work_available(id))
      syscall(SYS_futex, (uint32_t *)&g_wake, FUTEX_WAIT_PRIVATE, w, NULL, NULL, 0);
    atomic_fetch_sub(&g_sleepers, 1);
  }
  return NULL;
}

static void after_fork_child(void) {
  g_nworkers = 0; /* the parent's workers do not exist here */
  atomic_store(&g_ticket, 0);
  atomic_store(&g_sleepers, 0);
  pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
  g_region = m;
}

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static void register_fork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

/* Starts workers up to `want` (under g_region); returns how many exist. */
static int grow_workers(int want) {
  pthread_once(&g_once, register_fork);
  if (want > MAX_WORKERS) want = MAX_WORKERS;
  while (g_nworkers < want) {
    pthread_attr_t a;
    pthread_t th;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&a, (size_t)8 << 20);
    int rc = pthread_create(&th, &a, worker_main, (void *)(intptr_t)g_nworkers);
    pthread_attr_destroy(&a);
    if (rc) break; /* fewer workers: the caller does the rest */
    g_nworkers++;
  }
  return g_nworkers;
}

static void serial(int64_t n, int64_t chunks, tfw__range_fn fn, void *ctx) {
  for (int64_t c = 0; c < chunks; c++) fn(c * n / chunks, (c + 1) * n / chunks, ctx);
}

void tfw__parallel_for(int64_t n, int64_t grain, tfw__range_fn fn, void *ctx) {
  int64_t chunks = tfw__parallel_chunks(n, grain);
  if (chunks == 0) return;
  int threads = tfw__num_threads();
  if (chunks == 1 || threads == 1 || tfw__in_parallel() || pthread_mutex_trylock(&g_region)) {
    serial(n, chunks, fn, ctx);
    return;
  }
  int want = (int)(chunks < threads ? chunks : threads) - 1;
  int workers = grow_workers(want);
  if (workers < 1) {
    pthread_mutex_unlock(&g_region);
    serial(n, chunks, fn, ctx);
    return;
  }
  t_in_region = true;
  /* the ticket is closed (see the end), so no CAS of an earlier load can succeed while the
   * fields change; all sequentially consistent */
  atomic_store(&g_fn, fn);
  atomic_store(&g_ctx, ctx);
  atomic_store(&g_n, n);
  atomic_store(&g_chunks, chunks);
  atomic_store(&g_max_worker, want < workers ? want : workers);
  atomic_store(&g_done, 0);
  const uint64_t gen = (atomic_load(&g_ticket) >> 32) + 1;
  atomic_store(&g_ticket, (gen & 0xFFFFFFFFu ? gen : 1) << 32); /* publish; gen 0 = none */
  if (atomic_load(&g_sleepers) > 0) {
    atomic_fetch_add(&g_wake, 1);
    syscall(SYS_futex, (uint32_t *)&g_wake, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
  }
  run_chunks(-1);
  /* wait for chunks that workers claimed; yield if one of them is not making progress
   * (it may be waiting for this very CPU) */
  const int64_t start = now_ns();
  for (int spin = 0; atomic_load(&g_done) < chunks; spin++) {
    if ((spin & 63) == 63 && now_ns() - start > SPIN_NS) sched_yield();
    else CPU_RELAX();
  }
  /* Close the generation: a worker that loaded (gen, chunks) and then reads the next job's
   * fields (more chunks, another fn) must not be able to claim "chunk `chunks`" of it. */
  atomic_store(&g_ticket, (atomic_load(&g_ticket) & ~(uint64_t)0xFFFFFFFFu) | 0xFFFFFFFFu);
  t_in_region = false;
  pthread_mutex_unlock(&g_region);
}
