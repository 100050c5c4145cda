/* Op benchmarks through tenflower's public API, the "ours" side of bench/run.py.
 *
 *   bench_ops [--threads N] [--min-time S] [--only case[,case...]] [--list]
 *
 * Prints one JSON line per case:
 *   {"case":"add_16M","ours_ms":..,"ours_median_ms":..,"reps":..,"threads":N}
 * or, when the op fails (returns NULL), {"case":"add_16M","error":"<tfw_last_error()>"}.
 *
 * Each case calls exactly what a user would call (tfw_matmul on contiguous f32 tensors, tfw_add,
 * tfw_sum with dims {-1}, tfw_contiguous(tfw_transpose(..)), ...). Method: inputs are made once
 * (N(0,1) from tfw_randn); the op runs once or twice as warm-up, then R timed repetitions with R
 * chosen so that the case runs for at least --min-time seconds (at least 5, or 3 when one
 * call takes over 0.2 s). Only the op call is
 * inside the timed region; its output is released right after each call, so the caching
 * allocator serves the next call as it would in a training loop. The minimum and the median of
 * the R times are printed. bench/run.py runs the same cases in PyTorch with the same method; the
 * byte and flop counts used for GB/s and GFLOP/s live there, next to the case list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tenflower/tenflower.h"

#include "bench_common.h"

#define M16 (16ll << 20)

/* ---- cases --------------------------------------------------------------------------------- */
typedef struct {
  tfw_tensor *in[2];
} bench_inputs;

typedef tfw_tensor *(*op_fn)(const bench_inputs *x);

typedef struct {
  const char *name;
  int nin;
  int64_t shape[2][2]; /* per input: up to 2 dims; 0 = dim absent */
  op_fn run;
} bench_case;

static tfw_tensor *op_matmul(const bench_inputs *x) { return tfw_matmul(x->in[0], x->in[1]); }
static tfw_tensor *op_add(const bench_inputs *x) { return tfw_add(x->in[0], x->in[1]); }
static tfw_tensor *op_mul(const bench_inputs *x) { return tfw_mul(x->in[0], x->in[1]); }
static tfw_tensor *op_gelu(const bench_inputs *x) { return tfw_gelu(x->in[0]); }
static tfw_tensor *op_sum_last(const bench_inputs *x) {
  const int dims[1] = {-1};
  return tfw_sum(x->in[0], 1, dims, false);
}
static tfw_tensor *op_softmax_last(const bench_inputs *x) { return tfw_softmax(x->in[0], -1); }
static tfw_tensor *op_transpose_copy(const bench_inputs *x) {
  tfw_tensor *v = tfw_transpose(x->in[0], 0, 1);
  if (!v) return NULL;
  tfw_tensor *out = tfw_contiguous(v);
  tfw_release(v);
  return out;
}
static tfw_tensor *op_clone(const bench_inputs *x) { return tfw_clone(x->in[0]); }

static const bench_case CASES[] = {
    {"sgemm_n256", 2, {{256, 256}, {256, 256}}, op_matmul},
    {"sgemm_n512", 2, {{512, 512}, {512, 512}}, op_matmul},
    {"sgemm_n1024", 2, {{1024, 1024}, {1024, 1024}}, op_matmul},
    {"sgemm_n2048", 2, {{2048, 2048}, {2048, 2048}}, op_matmul},
    {"add_16M", 2, {{M16, 0}, {M16, 0}}, op_add},
    {"mul_16M", 2, {{M16, 0}, {M16, 0}}, op_mul},
    {"gelu_16M", 1, {{M16, 0}}, op_gelu},
    {"sum_lastdim_4096x4096", 1, {{4096, 4096}}, op_sum_last},
    {"softmax_lastdim_4096x4096", 1, {{4096, 4096}}, op_softmax_last},
    {"transpose_copy_4096x4096", 1, {{4096, 4096}}, op_transpose_copy},
    {"broadcast_add_1024x1024_1024", 2, {{1024, 1024}, {1024, 0}}, op_add},
    {"clone_64M", 1, {{64ll << 20, 0}}, op_clone},
};
#define NCASES (int)(sizeof CASES / sizeof CASES[0])

static void report_error(const char *name, const char *what) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, tfw_last_error());
  bench_print_error(name, msg);
}

static void run_case(const bench_case *c, double min_time, int threads) {
  bench_inputs x = {{NULL, NULL}};
  tfw_manual_seed(1234);
  for (int i = 0; i < c->nin; i++) {
    int nd = c->shape[i][1] ? 2 : 1;
    x.in[i] = tfw_randn(TFW_DTYPE_F32, nd, c->shape[i]);
    if (!x.in[i]) {
      report_error(c->name, "making the input");
      goto done;
    }
  }
  /* warm-up: one call, and a second one when the op is fast, which also estimates the time */
  double t0 = bench_now_s();
  tfw_tensor *out = c->run(&x);
  double est = bench_now_s() - t0;
  if (!out) {
    report_error(c->name, "op failed");
    goto done;
  }
  tfw_release(out);
  if (est < 0.2) {
    t0 = bench_now_s();
    out = c->run(&x);
    est = bench_now_s() - t0;
    if (!out) {
      report_error(c->name, "op failed");
      goto done;
    }
    tfw_release(out);
  }
  int reps = bench_reps(min_time, est, est < 0.2 ? 5 : 3); /* slow cases: 3 reps suffice */
  double *t = malloc(sizeof(double) * (size_t)reps);
  if (!t) {
    bench_print_error(c->name, "out of memory");
    goto done;
  }
  for (int r = 0; r < reps; r++) {
    t0 = bench_now_s();
    out = c->run(&x);
    t[r] = bench_now_s() - t0;
    if (!out) {
      free(t);
      report_error(c->name, "op failed");
      goto done;
    }
    tfw_release(out);
  }
  bench_print_times(c->name, t, reps, threads);
  free(t);
done:
  for (int i = 0; i < 2; i++) tfw_release(x.in[i]);
}

/* True if name is one of the comma-separated entries of list. */
static int in_list(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && !strncmp(p, name, n)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  bench_args a = {.threads = 0, .min_time = 0.3};
  int list = 0;
  for (int i = 1; i < argc; i++) {
    if (bench_parse_arg(&a, argc, argv, &i)) continue;
    if (!strcmp(argv[i], "--list")) list = 1;
    else {
      fprintf(stderr, "usage: %s [--threads N] [--min-time S] [--only a,b,..] [--list]\n", argv[0]);
      return 2;
    }
  }
  if (list) {
    for (int i = 0; i < NCASES; i++) printf("%s\n", CASES[i].name);
    return 0;
  }
  if (a.min_time <= 0) a.min_time = 0.3;
  if (a.threads > 0) tfw_set_num_threads(a.threads); /* else TFW_NUM_THREADS or the core count */
  int threads = tfw_get_num_threads();
  int found = 0;
  for (int i = 0; i < NCASES; i++) {
    if (a.only && !in_list(a.only, CASES[i].name)) continue;
    found++;
    run_case(&CASES[i], a.min_time, threads);
  }
  if (a.only && !found) {
    fprintf(stderr, "bench_ops: no case matches --only %s (see --list)\n", a.only);
    return 2;
  }
  return 0;
}
