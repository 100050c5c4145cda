/* Helpers shared by the bench programs (each bench/*.c is its own executable, so these are
 * header-only): a monotonic clock, the common --threads/--min-time/--only flags, the
 * repetition count, the timing loop and the JSON lines bench/run.py reads. */
#ifndef TFW_BENCH_COMMON_H
#define TFW_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tenflower/tenflower.h"

/* Seconds on the monotonic clock. */
static inline double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* qsort comparator for doubles, ascending. */
static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The flags every bench program takes. */
typedef struct bench_args {
  int threads;       /* --threads N */
  double min_time;   /* --min-time S: seconds of timed repetitions per case */
  const char *only;  /* --only: which cases (each program says how it matches) */
} bench_args;

/* If argv[*i] is --threads, --min-time or --only with a value after it, stores the value,
 * advances *i past it and returns 1; else returns 0 (the caller handles the flag). */
static inline int bench_parse_arg(bench_args *a, int argc, char **argv, int *i) {
  if (*i + 1 >= argc) return 0;
  const char *f = argv[*i];
  if (!strcmp(f, "--threads")) a->threads = atoi(argv[++*i]);
  else if (!strcmp(f, "--min-time")) a->min_time = atof(argv[++*i]);
  else if (!strcmp(f, "--only")) a->only = argv[++*i];
  else return 0;
  return 1;
}

/* Repetitions so that the case runs at least min_time seconds when one call takes est
 * seconds: at least min_reps, at most 100000. */
static inline int bench_reps(double min_time, double est, int min_reps) {
  int reps = (int)(min_time / (est > 1e-7 ? est : 1e-7)) + 1;
  if (reps < min_reps) reps = min_reps;
  if (reps > 100000) reps = 100000;
  return reps;
}

/* Writes s as a JSON string literal (quotes, backslashes and control characters escaped). */
static inline void bench_print_json_str(const char *s) {
  putchar('"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* {"case":name,"error":msg} */
static inline void bench_print_error(const char *name, const char *msg) {
  printf("{\"case\":\"%s\",\"error\":", name);
  bench_print_json_str(msg);
  printf("}\n");
  fflush(stdout);
}

/* Sorts the reps times t (seconds) and prints
 * {"case":..,"ours_ms":min,"ours_median_ms":median,"reps":..,"threads":..}. */
static inline void bench_print_times(const char *name, double *t, int reps, int threads) {
  qsort(t, (size_t)reps, sizeof(double), bench_cmp_double);
  printf("{\"case\":\"%s\",\"ours_ms\":%.5f,\"ours_median_ms\":%.5f,\"reps\":%d,\"threads\":%d}\n",
         name, t[0] * 1e3, t[reps / 2] * 1e3, reps, threads);
  fflush(stdout);
}

/* A benchmark step: 0 on success, -1 on failure (tfw_last_error() says why). */
typedef int (*bench_step_fn)(void);

/* Warm-up: two calls of step. On a failure prints the error line and returns -1. */
static inline int bench_warm_up(const char *name, bench_step_fn step) {
  if (step() || step()) {
    bench_print_error(name, tfw_last_error());
    return -1;
  }
  return 0;
}

/* Times step after the warm-up: one call estimates the time, then R timed calls (R from
 * bench_reps, at least 5); prints the minimum and the median. */
static inline void bench_time_steps(const char *name, bench_step_fn step, double min_time,
                                    int threads) {
  double t0 = bench_now_s();
  step();
  int reps = bench_reps(min_time, bench_now_s() - t0, 5);
  double *ts = malloc(sizeof(double) * (size_t)reps);
  if (!ts) {
    bench_print_error(name, "out of memory");
    return;
  }
  for (int r = 0; r < reps; r++) {
    t0 = bench_now_s();
    step();
    ts[r] = bench_now_s() - t0;
  }
  bench_print_times(name, ts, reps, threads);
  free(ts);
}

/* bench_warm_up, then bench_time_steps. */
static inline void bench_run_case(const char *name, bench_step_fn step, double min_time,
                                  int threads) {
  if (!bench_warm_up(name, step)) bench_time_steps(name, step, min_time, threads);
}

/* A case of a program whose cases are setup + step: setup makes the inputs once. */
typedef struct bench_step_case {
  const char *name;
  void (*setup)(void);
  bench_step_fn step;
} bench_step_case;

/* Runs (setup, then bench_run_case) every case whose name is a substring of a->only (every
 * case when there is no --only). */
static inline void bench_run_cases(const bench_step_case *cases, size_t n, const bench_args *a) {
  for (size_t c = 0; c < n; c++) {
    if (a->only && !strstr(a->only, cases[c].name)) continue;
    cases[c].setup();
    bench_run_case(cases[c].name, cases[c].step, a->min_time, a->threads);
  }
}


/* Forward of an n-layer MLP: h = relu(h W[l] + B[l]) for every layer but the last, which
 * has no relu. Returns the logits (new reference) or NULL. */
static inline tfw_tensor *bench_mlp_forward(tfw_tensor *x, int n, tfw_tensor *const *W,
                                            tfw_tensor *const *B) {
  tfw_tensor *h = tfw_retain(x);
  for (int l = 0; l < n; l++) {
    tfw_tensor *m = tfw_matmul(h, W[l]);
    tfw_tensor *a = m ? tfw_add(m, B[l]) : NULL;
    tfw_release(m);
    tfw_release(h);
    if (!a || l == n - 1) return a;
    h = tfw_relu(a);
    tfw_release(a);
    if (!h) return NULL;
  }
  return h;
}

#endif
