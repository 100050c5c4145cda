/* Autograd of the view, shape, copy and index ops: what the generated gradcheck cannot see.
 * Known values from PyTorch 1.13 (reflect/replicate pad, repeat, masked_select with a
 * broadcast mask, strided slice, sort with ties), tenflower's own conventions (scatter with
 * repeated indices: only the written element gets a gradient; topk ties), f16 gradients,
 * public wrappers that must be recorded (reshape/flatten views, split, cat/stack of more
 * than TFW__MAX_IN tensors), forward-over-reverse through sort, and the cast rule (called
 * directly while its generated checks wait for a suitable sample). */
#include <stdlib.h>

#include "autograd/autograd.h"
#include "harness.h"

static tfw_tensor *leaf_from(tfw_dtype dt, int ndim, const int64_t *shape, const double *v) {
  tfw_tensor *d = tfw_from_data(TFW_DTYPE_F64, ndim, shape, v);
  tfw_tensor *t = tfw_to_dtype(d, dt);
  tfw_release(d);
  cr_assert(tfw_tensor_set_requires_grad(t, true) == TFW_OK);
  return t;
}

static tfw_tensor *f64(int ndim, const int64_t *shape, const double *v) {
  return tfw_from_data(TFW_DTYPE_F64, ndim, shape, v);
}

/* backward of sum(y * w) (w: 0, 1, 2, ... when NULL); returns x's gradient. */
static tfw_tensor *grad_of(tfw_tensor *y, const double *w, tfw_tensor *x) {
  int64_t n = tfw_tensor_numel(y);
  double *ws = malloc(sizeof(double) * (size_t)(n ? n : 1));
  for (int64_t i = 0; i < n; i++) ws[i] = w ? w[i] : (double)i;
  tfw_tensor *wt0 = tfw_from_data(TFW_DTYPE_F64, tfw_tensor_ndim(y), tfw_tensor_shape(y), ws);
  tfw_tensor *wt = tfw_to_dtype(wt0, tfw_tensor_dtype(y));
  free(ws);
  tfw_tensor *p = tfw_mul(y, wt);
  tfw_tensor *s = tfw_sum(p, 0, NULL, false);
  cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
  tfw_release(wt0), tfw_release(wt), tfw_release(p), tfw_release(s);
  tfw_tensor *g = tfw_tensor_grad(x);
  cr_assert(g != NULL);
  return g;
}

Test(autograd_ag_shape, pad_reflect_and_replicate_match_pytorch) {
  tfw_tensor *x = leaf_from(TFW_DTYPE_F64, 3, (int64_t[]){1, 1, 5}, (double[]){1, 2, 3, 4, 5});
  tfw_tensor *y = tfw_pad(x, 1, (int64_t[]){2, 3}, TFW_PAD_REFLECT, 0);
  tfw_tensor *g = grad_of(y, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, x);
  th_expect_close(g, TFW_DTYPE_F64, 3, (int64_t[]){1, 1, 5}, (double[]){3, 16, 15, 14, 7}, 0, 1e-12,
                  "reflect (2, 3)");
  tfw_release(x), tfw_release(y), tfw_release(g);
  x = leaf_from(TFW_DTYPE_F64, 3, (int64_t[]){1, 2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  y = tfw_pad(x, 1, (int64_t[]){2, 1}, TFW_PAD_REPLICATE, 0);
  g = grad_of(y, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, x);
  th_expect_close(g, TFW_DTYPE_F64, 3, (int64_t[]){1, 2, 3}, (double[]){6, 4, 11, 24, 10, 23}, 0,
                  1e-12, "replicate (2, 1)");
  tfw_release(x), tfw_release(y), tfw_release(g);
  th_expect_no_leaks();
}

Test(autograd_ag_shape, repeat_masked_select_slice_match_pytorch) {
  /* x.repeat(2, 1, 3) of a [2, 2]: output [2, 2, 6], w = arange */
  tfw_tensor *x = leaf_from(TFW_DTYPE_F64, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
  tfw_tensor *y = tfw_repeat(x, 3, (int64_t[]){2, 1, 3});
  tfw_tensor *g = grad_of(y, NULL, x);
  th_expect_close(g, TFW_DTYPE_F64, 2, (int64_t[]){2, 2}, (double[]){48, 54, 84, 90}, 0, 1e-12, "repeat");
  tfw_release(x), tfw_release(y), tfw_release(g);
  /* t [3, 1] broadcast against a [3, 4] mask */
  x = leaf_from(TFW_DTYPE_F64, 2, (int64_t[]){3, 1}, (double[]){1, 2, 3});
  bool mv[12] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1};
  tfw_tensor *m = tfw_from_data(TFW_DTYPE_BOOL, 2, (int64_t[]){3, 4}, mv);
  y = tfw_masked_select(x, m);
  g = grad_of(y, (double[]){1, 2, 3, 4, 5, 6}, x);
  th_expect_close(g, TFW_DTYPE_F64, 2, (int64_t[]){3, 1}, (double[]){6, 0, 15}, 0, 1e-12, "masked_select");
  tfw_release(x), tfw_release(m), tfw_release(y), tfw_release(g);
  /* x[1::3] */
  x = leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){10}, (double[]){0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  y = tfw_slice(x, 0, 1, INT64_MAX, 3);
  g = grad_of(y, (double[]){1, 2, 3}, x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){10}, (double[]){0, 1, 0, 0, 2, 0, 0, 3, 0, 0}, 0,
                  1e-12, "slice step 3");
  tfw_release(x), tfw_release(y), tfw_release(g);
  th_expect_no_leaks();
}

Test(autograd_ag_shape, sort_and_topk_send_the_gradient_to_the_selected_index) {
  /* stable descending sort of [2, 5, 2, 7]: indices [3, 1, 0, 2] (PyTorch, stable=True) */
  tfw_tensor *x = leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){2, 5, 2, 7});
  tfw_tensor *v, *i;
  cr_assert_eq(tfw_sort(x, 0, true, &v, &i), TFW_OK);
  cr_assert(!tfw_tensor_requires_grad(i), "indices are not differentiable");
  tfw_tensor *g = grad_of(v, (double[]){1, 10, 100, 1000}, x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){100, 10, 1000, 1}, 0, 1e-12, "sort");
  tfw_release(v), tfw_release(i), tfw_release(g);
  tfw_tensor_zero_grad(x);
  /* topk ties: the lower index is selected, and gets the whole gradient */
  cr_assert_eq(tfw_topk(x, 1, 0, false, true, &v, NULL), TFW_OK);
  g = grad_of(v, (double[]){3}, x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){3, 0, 0, 0}, 0, 1e-12, "topk tie");
  tfw_release(v), tfw_release(g), tfw_release(x);
  /* unsorted topk: the k best in index order */
  x = leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){1, 5, 3, 4});
  cr_assert_eq(tfw_topk(x, 2, 0, true, false, &v, NULL), TFW_OK);
  th_expect_close(v, TFW_DTYPE_F64, 1, (int64_t[]){2}, (double[]){5, 4}, 0, 0, "unsorted values");
  g = grad_of(v, (double[]){10, 20}, x);
  th_expect_close(g, TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){0, 10, 0, 20}, 0, 0, "topk unsorted");
  tfw_release(v), tfw_release(g), tfw_release(x);
  th_expect_no_leaks();
}

/* A 0-d index keeps the dim with size 1 (PyTorch): the gradient goes back through index_add
 * with the same 0-d index. */
Test(autograd_ag_shape, index_select_with_a_0d_index) {
  tfw_tensor *x = leaf_from(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  int64_t one = 2;
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 0, NULL, &one);
  tfw_tensor *y = tfw_index_select(x, 1, idx);
  th_expect_close(y, TFW_DTYPE_F64, 2, (int64_t[]){2, 1}, (double[]){3, 6}, 0, 0, "forward");
  tfw_tensor *g = grad_of(y, (double[]){7, 9}, x);
  th_expect_close(g, TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, (double[]){0, 0, 7, 0, 0, 9}, 0, 0, "0-d index");
  tfw_release(x), tfw_release(idx), tfw_release(y), tfw_release(g);
  th_expect_no_leaks();
}

/* scatter with a repeated index: the last src element in index order is written and gets
 * the gradient; the overwritten ones get 0; t gets nothing where it was overwritten. */
Test(autograd_ag_shape, scatter_duplicates_only_the_winner_gets_a_gradient) {
  tfw_tensor *t = leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){10, 20, 30});
  tfw_tensor *src = leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){1, 2, 3, 4});
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){0, 0, 2});
  tfw_tensor *y = tfw_scatter(t, 0, idx, src);
  th_expect_close(y, TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){2, 20, 3}, 0, 0, "forward");
  tfw_tensor *w = f64(1, (int64_t[]){3}, (double[]){1, 2, 3});
  tfw_tensor *p = tfw_mul(y, w), *s = tfw_sum(p, 0, NULL, false);
  tfw_tensor *ins[2] = {t, src}, *g[2];
  cr_assert_eq(tfw_grad(1, &s, 2, ins, NULL, false, false, false, g), TFW_OK, "%s", tfw_last_error());
  th_expect_close(g[0], TFW_DTYPE_F64, 1, (int64_t[]){3}, (double[]){0, 2, 0}, 0, 0, "t");
  th_expect_close(g[1], TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){0, 1, 3, 0}, 0, 0,
                  "src (index shorter than src: zeros beyond)");
  tfw_release(g[0]), tfw_release(g[1]);
  tfw_release(t), tfw_release(src), tfw_release(idx), tfw_release(y), tfw_release(w), tfw_release(p);
  tfw_release(s);
  th_expect_no_leaks();
}

Test(autograd_ag_shape, f16_gradients_stay_f16) {
  tfw_tensor *x = leaf_from(TFW_DTYPE_F16, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  tfw_tensor *idx = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){3}, (int64_t[]){2, 2, 0});
  tfw_tensor *a = tfw_index_select(x, 1, idx);  /* [2, 3] */
  tfw_tensor *b = tfw_narrow(a, 0, 1, 1);       /* [1, 3] */
  tfw_tensor *c = tfw_flip(b, 1, (int[]){1});
  tfw_tensor *g = grad_of(c, (double[]){0.5, 0.25, 2}, x);
  /* c = [x[1,0], x[1,2], x[1,2]] with weights 0.5, 0.25, 2 */
  th_expect_close(g, TFW_DTYPE_F16, 2, (int64_t[]){2, 3}, (double[]){0, 0, 0, 0.5, 0, 2.25}, 0, 0, "f16");
  tfw_release(x), tfw_release(idx), tfw_release(a), tfw_release(b), tfw_release(c), tfw_release(g);
  th_expect_no_leaks();
}

/* Public composites are recorded op by op: reshape's view path, flatten, split, and cat /
 * stack of more inputs than one registry call holds. */
Test(autograd_ag_shape, public_wrappers_are_recorded) {
  tfw_tensor *x = leaf_from(TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 4, 5, 6});
  tfw_tensor *r = tfw_reshape(x, 1, (int64_t[]){6});
  cr_assert(tfw_tensor_shares_storage(r, x));
  cr_assert_str_eq(tfw_tensor_grad_fn_name(r), "view");
  tfw_tensor *f = tfw_flatten(x, 0, -1);
  cr_assert_str_eq(tfw_tensor_grad_fn_name(f), "view");
  tfw_tensor **pieces;
  int count;
  cr_assert_eq(tfw_split(x, 2, 1, &pieces, &count), TFW_OK);
  cr_assert_eq(count, 2);
  cr_assert_str_eq(tfw_tensor_grad_fn_name(pieces[1]), "narrow");
  tfw_tensor *g = grad_of(pieces[1], (double[]){7, 8}, x);
  th_expect_close(g, TFW_DTYPE_F64, 2, (int64_t[]){2, 3}, (double[]){0, 0, 7, 0, 0, 8}, 0, 0, "split");
  tfw_release(g), tfw_release(r), tfw_release(f), tfw_tensor_list_free(pieces, count), tfw_release(x);

  enum { N = 19 }; /* three registry groups */
  tfw_tensor *ts[N];
  for (int k = 0; k < N; k++) {
    double v[2] = {k, -k};
    ts[k] = k % 5 == 3 ? tfw_from_data(TFW_DTYPE_F64, 1, (int64_t[]){2}, v) /* no grad */
                       : leaf_from(TFW_DTYPE_F64, 1, (int64_t[]){2}, v);
  }
  for (int st = 0; st < 2; st++) {
    tfw_tensor *y = st ? tfw_stack(N, ts, -1) : tfw_cat(N, ts, 0);
    cr_assert(y != NULL, "%s", tfw_last_error());
    cr_assert_str_eq(tfw_tensor_grad_fn_name(y), "cat");
    double out[2 * N];
    for (int k = 0; k < N; k++) out[st ? k : 2 * k] = k, out[st ? N + k : 2 * k + 1] = -k;
    th_expect_close(y, TFW_DTYPE_F64, st + 1, st ? (int64_t[]){2, N} : (int64_t[]){2 * N}, out, 0, 0,
                    "values");
    tfw_tensor *yf = tfw_flatten(y, 0, -1);
    tfw_tensor *p = tfw_mul(yf, yf), *s = tfw_sum(p, 0, NULL, false); /* d/dx = 2x */
    cr_assert_eq(tfw_backward(s, NULL, false, false), TFW_OK, "%s", tfw_last_error());
    for (int k = 0; k < N; k++) {
      tfw_tensor *gk = tfw_tensor_grad(ts[k]);
      if (k % 5 == 3) {
        cr_assert(gk == NULL);
        continue;
      }
      th_expect_close(gk, TFW_DTYPE_F64, 1, (int64_t[]){2}, (double[]){2.0 * k, -2.0 * k}, 0, 1e-12,
                      st ? "stack of 19" : "cat of 19");
      tfw_release(gk);
      tfw_tensor_zero_grad(ts[k]);
    }
    tfw_release(y), tfw_release(yf), tfw_release(p), tfw_release(s);
  }
  /* without autograd: the direct path, same values */
  for (int k = 0; k < N; k++) tfw_tensor_set_requires_grad(ts[k], false);
  tfw_tensor *y = tfw_cat(N, ts, 0);
  cr_assert(tfw_tensor_grad_fn_name(y) == NULL && tfw_tensor_numel(y) == 2 * N);
  tfw_release(y);
  for (int k = 0; k < N; k++) tfw_release(ts[k]);
  th_expect_no_leaks();
}

/* f(x) = sum(sort(x)^3): H = diag(6 x) in x's order, through sort's backward (scatter_add)
 * and both JVP rules. */
static tfw_status cube_of_sorted(void *ctx, int n_in, tfw_tensor *const *in, int n_out,
                                 tfw_tensor **out) {
  tfw_tensor *v = NULL;
  tfw_status st = tfw_sort(in[0], 0, false, &v, NULL);
  if (st) return st;
  tfw_tensor *v2 = tfw_mul(v, v), *v3 = tfw_mul(v2, v);
  out[0] = tfw_sum(v3, 0, NULL, false);
  tfw_release(v), tfw_release(v2), tfw_release(v3);
  return out[0] ? TFW_OK : tfw_last_status();
}

Test(autograd_ag_shape, hvp_through_sort) {
  tfw_tensor *x = f64(1, (int64_t[]){4}, (double[]){0.5, -2, 3, 1});
  tfw_tensor *v = f64(1, (int64_t[]){4}, (double[]){1, 2, -1, 0.5});
  tfw_tensor *h;
  cr_assert_eq(tfw_hvp(cube_of_sorted, NULL, 1, &x, &v, &h), TFW_OK, "%s", tfw_last_error());
  th_expect_close(h, TFW_DTYPE_F64, 1, (int64_t[]){4}, (double[]){3, -24, -18, 3}, 1e-12, 1e-12, "hvp");
  tfw_release(h), tfw_release(x), tfw_release(v);
  th_expect_no_leaks();
}

/* The cast rule (src/autograd/backward_shape.c), called on a recorded node: the gradient comes
 * back in the input's dtype. */
Test(autograd_ag_shape, cast_rule_returns_the_input_dtype) {
  tfw_tensor *x = leaf_from(TFW_DTYPE_F32, 1, (int64_t[]){3}, (double[]){1, 2, 3});
  tfw_tensor *y = tfw_to_dtype(x, TFW_DTYPE_F64);
  const tfw__ag *ag = tfw__ag_get(y);
  cr_assert(ag && ag->grad_fn, "cast is recorded");
  tfw_tensor *go[1] = {f64(1, (int64_t[]){3}, (double[]){0.5, 1.5, -2.25})}, *gi[TFW__MAX_IN] = {NULL};
  cr_assert_eq(tfw__backward_cast(ag->grad_fn, go, gi), TFW_OK, "%s", tfw_last_error());
  th_expect_close(gi[0], TFW_DTYPE_F32, 1, (int64_t[]){3}, (double[]){0.5, 1.5, -2.25}, 0, 0, "f32 grad");
  tfw_release(gi[0]), tfw_release(go[0]), tfw_release(y), tfw_release(x);
  th_expect_no_leaks();
}
