/* A tour of the tenflower tensor engine — what `make demo` runs until the training demo
 * lands. Every step prints what it did; any failure prints the library's message and
 * exits non-zero. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <tenflower/tenflower.h>

/* Checks a result: on NULL, print the error and stop. */
static tfw_tensor *ok(tfw_tensor *t, const char *what) {
  if (!t) {
    fprintf(stderr, "%s failed: %s: %s\n", what, tfw_status_name(tfw_last_status()), tfw_last_error());
    exit(1);
  }
  return t;
}

static void show(const char *title, const tfw_tensor *t) {
  char *s = tfw_tensor_format(t);
  printf("%s\n%s\n\n", title, s ? s : tfw_last_error());
  tfw_string_free(s);
}

int main(void) {
  printf("tenflower %s — tensor engine tour (%d threads)\n\n", tfw_version(), tfw_get_num_threads());
  tfw_manual_seed(42);

  /* 1. Creation and views: no copies */
  tfw_tensor *x = ok(tfw_arange(0, 12, 1, TFW_DTYPE_F32), "arange");
  tfw_tensor *m = ok(tfw_reshape(x, 2, (int64_t[]){3, 4}), "reshape");
  tfw_tensor *mt = ok(tfw_transpose(m, 0, 1), "transpose");
  show("m = arange(12).reshape(3, 4):", m);
  show("m.T (a view sharing m's storage):", mt);
  printf("m.T shares storage with m: %s, contiguous: %s\n\n",
         tfw_tensor_shares_storage(m, mt) ? "yes" : "no", tfw_tensor_is_contiguous(mt) ? "yes" : "no");
  tfw_tensor *col = ok(tfw_slice(m, 1, 0, 4, 2), "slice");
  show("m[:, ::2]:", col);

  /* 2. Broadcasting and type promotion */
  tfw_tensor *row = ok(tfw_linspace(-1, 1, 4, TFW_DTYPE_F64), "linspace");
  tfw_tensor *sum = ok(tfw_add(m, row), "add");
  show("m + linspace(-1, 1, 4) (float32 + float64 -> float64, [3,4] + [4] -> [3,4]):", sum);
  tfw_tensor *half = ok(tfw_to_dtype(m, TFW_DTYPE_BF16), "to bf16");
  tfw_tensor *hs = ok(tfw_mul_scalar(half, 0.5), "mul_scalar");
  show("bf16(m) * 0.5 (the scalar does not widen bfloat16):", hs);

  /* 3. Math, reductions */
  tfw_tensor *g = ok(tfw_gelu(sum), "gelu");
  tfw_tensor *sm = ok(tfw_softmax(g, -1), "softmax");
  show("softmax(gelu(m + row), dim=-1):", sm);
  tfw_tensor *rs = ok(tfw_sum(sm, 1, (int[]){-1}, false), "sum");
  show("... each row sums to 1:", rs);
  tfw_tensor *mean = ok(tfw_mean(m, 1, (int[]){0}, true), "mean");
  tfw_tensor *sd = ok(tfw_std(m, 1, (int[]){0}, 1, true), "std");
  show("mean over dim 0 (keepdim):", mean);
  show("std over dim 0 (unbiased):", sd);

  /* 4. Linear algebra */
  tfw_tensor *a = ok(tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){2, 3}), "randn");
  tfw_tensor *b = ok(tfw_randn(TFW_DTYPE_F32, 2, (int64_t[]){3, 2}), "randn");
  tfw_tensor *ab = ok(tfw_matmul(a, b), "matmul");
  tfw_tensor *ops2[2] = {a, b};
  tfw_tensor *ein = ok(tfw_einsum("ij,jk->ik", 2, ops2), "einsum");
  bool same = false;
  tfw_allclose(ab, ein, 1e-5, 1e-6, false, &same);
  show("a @ b with a, b ~ N(0, 1) (seed 42):", ab);
  printf("einsum(\"ij,jk->ik\", a, b) matches matmul: %s\n\n", same ? "yes" : "NO");

  /* 5. Indexing and sorting */
  tfw_tensor *vals = NULL, *idx = NULL;
  if (tfw_topk(sum, 2, -1, true, true, &vals, &idx) != TFW_OK) ok(NULL, "topk");
  show("top-2 per row of m + row: values", vals);
  show("... and their indices:", idx);

  /* 6. Errors are values, never crashes */
  tfw_tensor *bad = tfw_matmul(m, m);
  printf("m @ m -> %s\n  %s: %s\n\n", bad ? "??" : "NULL", tfw_status_name(tfw_last_status()),
         tfw_last_error());

  tfw_tensor *all[] = {x, m, mt, col, row, sum, half, hs, g, sm, rs, mean, sd, a, b, ab, ein, vals, idx};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) tfw_release(all[i]);

  tfw_memory_stats st;
  tfw_memory_stats_get(&st);
  printf("memory: %lld live tensors, %lld live bytes, peak %lld bytes, %lld allocations "
         "(%lld served from the cache)\n", (long long)st.live_tensors, (long long)st.live_bytes,
         (long long)st.peak_bytes, (long long)st.total_allocations, (long long)st.cache_hits);
  return st.live_tensors == 0 ? 0 : 1;
}
