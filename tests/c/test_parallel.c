/* The thread pool behind tfw__parallel_for (src/core/parallel.c): every index of [0, n) is
 * visited exactly once, chunk boundaries are those of tfw__parallel_chunks for any thread
 * count, nested loops run inline, several user threads may start loops at once, a forked
 * child gets a working pool, and a loop finishes when workers are kept off the CPUs (more
 * busy threads than cores: the caller then does the chunks itself). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"
#include "harness.h"

typedef struct {
  int64_t n, chunks;
  _Atomic int *seen;       /* visits per index */
  _Atomic int bad_bounds;  /* a range that is not a chunk of tfw__parallel_chunks */
  _Atomic int nested_bad;  /* nested loop results */
  bool nest;
} cover;

static void nested_fn(int64_t a, int64_t b, void *ctx) {
  int64_t *sum = ctx;
  for (int64_t i = a; i < b; i++) *sum += i; /* not atomic: must run on this thread */
}

static void cover_fn(int64_t a, int64_t b, void *ctx) {
  cover *c = ctx;
  /* [a, b) must be exactly some chunk i: a = i * n / chunks, b = (i + 1) * n / chunks */
  bool ok = false;
  for (int64_t i = 0; i < c->chunks && !ok; i++)
    ok = a == i * c->n / c->chunks && b == (i + 1) * c->n / c->chunks;
  if (!ok) atomic_fetch_add(&c->bad_bounds, 1);
  for (int64_t i = a; i < b; i++) atomic_fetch_add(&c->seen[i], 1);
  if (c->nest) {
    int64_t sum = 0;
    tfw__parallel_for(1000, 1, nested_fn, &sum);
    if (sum != 999 * 1000 / 2) atomic_fetch_add(&c->nested_bad, 1);
  }
}

static void check_cover(int64_t n, int64_t grain, bool nest) {
  cover c = {.n = n, .chunks = tfw__parallel_chunks(n, grain), .nest = nest};
  c.seen = calloc((size_t)(n > 0 ? n : 1), sizeof *c.seen);
  tfw__parallel_for(n, grain, cover_fn, &c);
  for (int64_t i = 0; i < n; i++)
    cr_assert_eq(atomic_load(&c.seen[i]), 1, "n %lld grain %lld: index %lld visited %d times",
                 (long long)n, (long long)grain, (long long)i, atomic_load(&c.seen[i]));
  cr_assert_eq(atomic_load(&c.bad_bounds), 0, "n %lld grain %lld: a range is not a chunk",
               (long long)n, (long long)grain);
  cr_assert_eq(atomic_load(&c.nested_bad), 0, "nested loop gave a wrong sum");
  free(c.seen);
}

Test(parallel, every_index_once_for_any_thread_count) {
  const int64_t ns[] = {0, 1, 2, 3, 7, 64, 255, 256, 257, 1000, 100003};
  const int64_t grains[] = {1, 3, 64, 5000};
  for (int t = 1; t <= 5; t++) {
    tfw_set_num_threads(t);
    for (size_t i = 0; i < sizeof ns / sizeof *ns; i++)
      for (size_t g = 0; g < sizeof grains / sizeof *grains; g++)
        check_cover(ns[i], grains[g], false);
    check_cover(64, 1, true); /* a loop inside a chunk runs inline */
  }
  tfw_set_num_threads(0);
}

static void *user_thread(void *arg) {
  (void)arg;
  for (int r = 0; r < 200; r++) check_cover(1000 + r, 7, false);
  return NULL;
}

Test(parallel, concurrent_callers) {
  tfw_set_num_threads(3);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) cr_assert_eq(pthread_create(&th[i], NULL, user_thread, NULL), 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  tfw_set_num_threads(0);
}

Test(parallel, works_in_a_forked_child) {
  tfw_set_num_threads(2);
  check_cover(10000, 10, false); /* start the parent's workers */
  pid_t pid = fork();
  cr_assert(pid >= 0);
  if (pid == 0) {
    cover c = {.n = 10000, .chunks = tfw__parallel_chunks(10000, 10)};
    c.seen = calloc(10000, sizeof *c.seen);
    tfw__parallel_for(10000, 10, cover_fn, &c);
    int bad = atomic_load(&c.bad_bounds) != 0;
    for (int i = 0; i < 10000; i++) bad |= atomic_load(&c.seen[i]) != 1;
    _exit(bad);
  }
  int status = 0;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child's loop failed");
  tfw_set_num_threads(0);
}

/* Spinners on every core: the pool's worker rarely gets a CPU, yet 2000 loops finish in a
 * bounded time (each is a few microseconds of work; a loop that waited a scheduler slice
 * for an absent worker would take milliseconds, 2000 of them seconds). */
static _Atomic bool g_stop;
static void *spinner(void *arg) {
  (void)arg;
  while (!atomic_load(&g_stop)) {
  }
  return NULL;
}

static void tiny(int64_t a, int64_t b, void *ctx) {
  _Atomic int64_t *s = ctx;
  atomic_fetch_add(s, b - a);
}

Test(parallel, progress_when_oversubscribed) {
  tfw_set_num_threads(2);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  int ns = (int)(cores > 0 ? 2 * cores : 4);
  pthread_t th[64];
  if (ns > 64) ns = 64;
  atomic_store(&g_stop, false);
  for (int i = 0; i < ns; i++) cr_assert_eq(pthread_create(&th[i], NULL, spinner, NULL), 0);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  _Atomic int64_t s = 0;
  for (int r = 0; r < 2000; r++) tfw__parallel_for(64, 1, tiny, &s);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  atomic_store(&g_stop, true);
  for (int i = 0; i < ns; i++) pthread_join(th[i], NULL);
  double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  cr_assert_eq(atomic_load(&s), 2000 * 64);
  cr_assert(sec < 5.0, "2000 tiny loops took %.2f s with %d spinning threads", sec, ns);
  tfw_set_num_threads(0);
}

/* Back-to-back loops with different functions and chunk counts (a smoke test: the race it
 * targets needs a worker to load the ticket in a window of a few stores, and did not show
 * up in 200000 rounds on the loaded 2-core VM with the fix removed): a worker that loaded the
 * ticket of one loop must never run a chunk of the next with stale fields (this once let a
 * worker run a max-pool chunk inside the following dropout loop). */
typedef struct {
  int tag;
  int64_t n;
  _Atomic int64_t sum;
  _Atomic int wrong;
} tagged;

static void tag_a(int64_t a, int64_t b, void *ctx) {
  tagged *t = ctx;
  if (t->tag != 1 || b > t->n) atomic_fetch_add(&t->wrong, 1);
  atomic_fetch_add(&t->sum, b - a);
}

static void tag_b(int64_t a, int64_t b, void *ctx) {
  tagged *t = ctx;
  if (t->tag != 2 || b > t->n) atomic_fetch_add(&t->wrong, 1);
  atomic_fetch_add(&t->sum, b - a);
}

Test(parallel, alternating_loops_never_mix) {
  tfw_set_num_threads(2);
  for (int r = 0; r < 20000; r++) {
    tagged a = {.tag = 1, .n = 3}, b = {.tag = 2, .n = 200};
    tfw__parallel_for(a.n, 1, tag_a, &a);
    tfw__parallel_for(b.n, 1, tag_b, &b);
    cr_assert(atomic_load(&a.wrong) == 0 && atomic_load(&b.wrong) == 0, "round %d: mixed", r);
    cr_assert(atomic_load(&a.sum) == 3 && atomic_load(&b.sum) == 200, "round %d: sums", r);
  }
  tfw_set_num_threads(0);
}
