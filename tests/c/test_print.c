/* Tests for tensor printing (tfw_tensor_format / tfw_print).
 *
 * Truth: the expected strings were printed by PyTorch 1.13 (python3-torch) for the same
 * values, with "torch." removed from the dtype suffix, e.g.
 *   /usr/bin/python3 -c "import torch; print(torch.arange(24.).reshape(2, 3, 4))" */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static tfw_tensor *mk(tfw_dtype dt, int ndim, const int64_t *shape, const double *v) {
  tfw_tensor *t = tfw_empty(dt, ndim, shape);
  cr_assert(t, "%s", tfw_last_error());
  int64_t n = tfw_tensor_numel(t), idx[TFW_MAX_DIMS] = {0};
  for (int64_t i = 0; i < n; i++) {
    int64_t r = i;
    for (int d = ndim - 1; d >= 0; d--) {
      idx[d] = r % shape[d];
      r /= shape[d];
    }
    cr_assert_eq(tfw_tensor_set(t, idx, v[i]), TFW_OK);
  }
  return t;
}

/* arange(n) * scale (+ offset), with f32 rounding of i / div like torch's f32 division */
static tfw_tensor *mk_range(tfw_dtype dt, int ndim, const int64_t *shape, double scale,
                            double offset, double div) {
  int64_t n = 1;
  for (int d = 0; d < ndim; d++) n *= shape[d];
  double *v = malloc(sizeof(double) * (size_t)n);
  for (int64_t i = 0; i < n; i++) {
    v[i] = (double)i * scale + offset;
    if (div != 1) v[i] = (double)((float)i / (float)div);
  }
  tfw_tensor *t = mk(dt, ndim, shape, v);
  free(v);
  return t;
}

static const struct {
  const char *name, *text;
} expected[] = {
  {"f32_2x2_int", "tensor([[1., 2.],\n"
    "        [3., 4.]])"},
  {"f32_frac", "tensor([[  1.5000,  -2.2500],\n"
    "        [  3.0000, 400.1250]])"},
  {"f64_vec", "tensor([ 1.5000, -2.2500,  0.1000], dtype=float64)"},
  {"f32_scalar", "tensor(3.)"},
  {"f32_scalar_frac", "tensor(-0.5000)"},
  {"i64_scalar", "tensor(7)"},
  {"empty_0x3", "tensor([], size=(0, 3))"},
  {"empty_1d", "tensor([])"},
  {"empty_i64", "tensor([], dtype=int64)"},
  {"empty_i32_2d", "tensor([], size=(2, 0), dtype=int32)"},
  {"bool", "tensor([ True, False,  True])"},
  {"i64", "tensor([  1, -20, 300])"},
  {"i32", "tensor([[  1, -20],\n"
    "        [300,   4]], dtype=int32)"},
  {"u8", "tensor([  0, 255,   7], dtype=uint8)"},
  {"i8", "tensor([-128,    5], dtype=int8)"},
  {"sci_small", "tensor([1.0000e-05, 1.0000e+00, 2.5000e+00])"},
  {"sci_big", "tensor([1.0000e+09, 1.5000e+00])"},
  {"sci_int", "tensor([1.0000e+10, 1.0000e+00])"},
  {"int_ratio", "tensor([1.0000e+00, 2.0000e+03])"},
  {"nan_inf", "tensor([   nan,    inf,   -inf, 1.5000])"},
  {"nan_int", "tensor([nan, 1., -inf])"},
  {"zeros", "tensor([0., 0.])"},
  {"negzero", "tensor([-0., 1.])"},
  {"negzero_frac", "tensor([-0.0000, 1.5000])"},
  {"all_nan", "tensor([nan, nan])"},
  {"f16", "tensor([ 0.5000,  1.2500, -3.0000], dtype=float16)"},
  {"bf16", "tensor([[ 0.5000,  1.2500],\n"
    "        [-3.0000,  8.0000]], dtype=bfloat16)"},
  {"wrap", "tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n"
    "        12.0000, 13.5000, 15.0000, 16.5000, 18.0000, 19.5000, 21.0000, 22.5000,\n"
    "        24.0000, 25.5000, 27.0000, 28.5000, 30.0000, 31.5000, 33.0000, 34.5000,\n"
    "        36.0000, 37.5000, 39.0000, 40.5000, 42.0000, 43.5000])"},
  {"wrap_f64", "tensor([ 0.0000,  1.2500,  2.5000,  3.7500,  5.0000,  6.2500,  7.5000,  8.7500,\n"
    "        10.0000, 11.2500, 12.5000, 13.7500, 15.0000, 16.2500, 17.5000, 18.7500,\n"
    "        20.0000, 21.2500, 22.5000, 23.7500, 25.0000, 26.2500, 27.5000, 28.7500,\n"
    "        30.0000], dtype=float64)"},
  {"arange3d", "tensor([[[ 0.,  1.,  2.,  3.],\n"
    "         [ 4.,  5.,  6.,  7.],\n"
    "         [ 8.,  9., 10., 11.]],\n"
    "\n"
    "        [[12., 13., 14., 15.],\n"
    "         [16., 17., 18., 19.],\n"
    "         [20., 21., 22., 23.]]])"},
  {"sum1d", "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
    "        1.9990e+03])"},
  {"sum2d", "tensor([[   0,    1,    2,  ...,   27,   28,   29],\n"
    "        [  30,   31,   32,  ...,   57,   58,   59],\n"
    "        [  60,   61,   62,  ...,   87,   88,   89],\n"
    "        ...,\n"
    "        [1110, 1111, 1112,  ..., 1137, 1138, 1139],\n"
    "        [1140, 1141, 1142,  ..., 1167, 1168, 1169],\n"
    "        [1170, 1171, 1172,  ..., 1197, 1198, 1199]])"},
  {"sum3d", "tensor([[[0.0000e+00, 1.4286e-01, 2.8571e-01,  ..., 3.8571e+00,\n"
    "          4.0000e+00, 4.1429e+00],\n"
    "         [4.2857e+00, 4.4286e+00, 4.5714e+00,  ..., 8.1429e+00,\n"
    "          8.2857e+00, 8.4286e+00],\n"
    "         [8.5714e+00, 8.7143e+00, 8.8571e+00,  ..., 1.2429e+01,\n"
    "          1.2571e+01, 1.2714e+01],\n"
    "         ...,\n"
    "         [3.0000e+01, 3.0143e+01, 3.0286e+01,  ..., 3.3857e+01,\n"
    "          3.4000e+01, 3.4143e+01],\n"
    "         [3.4286e+01, 3.4429e+01, 3.4571e+01,  ..., 3.8143e+01,\n"
    "          3.8286e+01, 3.8429e+01],\n"
    "         [3.8571e+01, 3.8714e+01, 3.8857e+01,  ..., 4.2429e+01,\n"
    "          4.2571e+01, 4.2714e+01]],\n"
    "\n"
    "        [[4.2857e+01, 4.3000e+01, 4.3143e+01,  ..., 4.6714e+01,\n"
    "          4.6857e+01, 4.7000e+01],\n"
    "         [4.7143e+01, 4.7286e+01, 4.7429e+01,  ..., 5.1000e+01,\n"
    "          5.1143e+01, 5.1286e+01],\n"
    "         [5.1429e+01, 5.1571e+01, 5.1714e+01,  ..., 5.5286e+01,\n"
    "          5.5429e+01, 5.5571e+01],\n"
    "         ...,\n"
    "         [7.2857e+01, 7.3000e+01, 7.3143e+01,  ..., 7.6714e+01,\n"
    "          7.6857e+01, 7.7000e+01],\n"
    "         [7.7143e+01, 7.7286e+01, 7.7429e+01,  ..., 8.1000e+01,\n"
    "          8.1143e+01, 8.1286e+01],\n"
    "         [8.1429e+01, 8.1571e+01, 8.1714e+01,  ..., 8.5286e+01,\n"
    "          8.5429e+01, 8.5571e+01]],\n"
    "\n"
    "        [[8.5714e+01, 8.5857e+01, 8.6000e+01,  ..., 8.9571e+01,\n"
    "          8.9714e+01, 8.9857e+01],\n"
    "         [9.0000e+01, 9.0143e+01, 9.0286e+01,  ..., 9.3857e+01,\n"
    "          9.4000e+01, 9.4143e+01],\n"
    "         [9.4286e+01, 9.4429e+01, 9.4571e+01,  ..., 9.8143e+01,\n"
    "          9.8286e+01, 9.8429e+01],\n"
    "         ...,\n"
    "         [1.1571e+02, 1.1586e+02, 1.1600e+02,  ..., 1.1957e+02,\n"
    "          1.1971e+02, 1.1986e+02],\n"
    "         [1.2000e+02, 1.2014e+02, 1.2029e+02,  ..., 1.2386e+02,\n"
    "          1.2400e+02, 1.2414e+02],\n"
    "         [1.2429e+02, 1.2443e+02, 1.2457e+02,  ..., 1.2814e+02,\n"
    "          1.2829e+02, 1.2843e+02]],\n"
    "\n"
    "        ...,\n"
    "\n"
    "        [[2.1429e+02, 2.1443e+02, 2.1457e+02,  ..., 2.1814e+02,\n"
    "          2.1829e+02, 2.1843e+02],\n"
    "         [2.1857e+02, 2.1871e+02, 2.1886e+02,  ..., 2.2243e+02,\n"
    "          2.2257e+02, 2.2271e+02],\n"
    "         [2.2286e+02, 2.2300e+02, 2.2314e+02,  ..., 2.2671e+02,\n"
    "          2.2686e+02, 2.2700e+02],\n"
    "         ...,\n"
    "         [2.4429e+02, 2.4443e+02, 2.4457e+02,  ..., 2.4814e+02,\n"
    "          2.4829e+02, 2.4843e+02],\n"
    "         [2.4857e+02, 2.4871e+02, 2.4886e+02,  ..., 2.5243e+02,\n"
    "          2.5257e+02, 2.5271e+02],\n"
    "         [2.5286e+02, 2.5300e+02, 2.5314e+02,  ..., 2.5671e+02,\n"
    "          2.5686e+02, 2.5700e+02]],\n"
    "\n"
    "        [[2.5714e+02, 2.5729e+02, 2.5743e+02,  ..., 2.6100e+02,\n"
    "          2.6114e+02, 2.6129e+02],\n"
    "         [2.6143e+02, 2.6157e+02, 2.6171e+02,  ..., 2.6529e+02,\n"
    "          2.6543e+02, 2.6557e+02],\n"
    "         [2.6571e+02, 2.6586e+02, 2.6600e+02,  ..., 2.6957e+02,\n"
    "          2.6971e+02, 2.6986e+02],\n"
    "         ...,\n"
    "         [2.8714e+02, 2.8729e+02, 2.8743e+02,  ..., 2.9100e+02,\n"
    "          2.9114e+02, 2.9129e+02],\n"
    "         [2.9143e+02, 2.9157e+02, 2.9171e+02,  ..., 2.9529e+02,\n"
    "          2.9543e+02, 2.9557e+02],\n"
    "         [2.9571e+02, 2.9586e+02, 2.9600e+02,  ..., 2.9957e+02,\n"
    "          2.9971e+02, 2.9986e+02]],\n"
    "\n"
    "        [[3.0000e+02, 3.0014e+02, 3.0029e+02,  ..., 3.0386e+02,\n"
    "          3.0400e+02, 3.0414e+02],\n"
    "         [3.0429e+02, 3.0443e+02, 3.0457e+02,  ..., 3.0814e+02,\n"
    "          3.0829e+02, 3.0843e+02],\n"
    "         [3.0857e+02, 3.0871e+02, 3.0886e+02,  ..., 3.1243e+02,\n"
    "          3.1257e+02, 3.1271e+02],\n"
    "         ...,\n"
    "         [3.3000e+02, 3.3014e+02, 3.3029e+02,  ..., 3.3386e+02,\n"
    "          3.3400e+02, 3.3414e+02],\n"
    "         [3.3429e+02, 3.3443e+02, 3.3457e+02,  ..., 3.3814e+02,\n"
    "          3.3829e+02, 3.3843e+02],\n"
    "         [3.3857e+02, 3.3871e+02, 3.3886e+02,  ..., 3.4243e+02,\n"
    "          3.4257e+02, 3.4271e+02]]])"},
  {"sum_i32", "tensor([   0,    1,    2,  ..., 1097, 1098, 1099], dtype=int32)"},
  {"small_sum_rows", "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00, 3.0000e+00, 4.0000e+00],\n"
    "        [5.0000e+00, 6.0000e+00, 7.0000e+00, 8.0000e+00, 9.0000e+00],\n"
    "        [1.0000e+01, 1.1000e+01, 1.2000e+01, 1.3000e+01, 1.4000e+01],\n"
    "        ...,\n"
    "        [9.9000e+02, 9.9100e+02, 9.9200e+02, 9.9300e+02, 9.9400e+02],\n"
    "        [9.9500e+02, 9.9600e+02, 9.9700e+02, 9.9800e+02, 9.9900e+02],\n"
    "        [1.0000e+03, 1.0010e+03, 1.0020e+03, 1.0030e+03, 1.0040e+03]])"},
  {"neg_frac_2d", "tensor([[-1.2500e+00,  1.0500e+01,  1.0006e+02],\n"
    "        [ 1.0000e-03, -5.0000e-01,  3.0000e+00]])"},
  {"big_ints_f64", "tensor([1.2346e+08, 1.0000e+00], dtype=float64)"},
  {"sci_neg", "tensor([-1.0000e-07,  3.0000e+00])"},
  {"suffix_newline", "tensor([100.0000, 101.5000, 103.0000, 104.5000, 106.0000, 107.5000, 109.0000],\n"
    "       dtype=float64)"},
  {"transposed", "tensor([[1.0000, 4.0000],\n"
    "        [2.0000, 5.0000],\n"
    "        [3.0000, 6.5000]])"},
};

static const char *expect_of(const char *name) {
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    if (strcmp(expected[i].name, name) == 0) return expected[i].text;
  cr_assert_fail("no expected string for %s", name);
  return NULL;
}

static void check(const char *name, tfw_tensor *t) {
  char *s = tfw_tensor_format(t);
  cr_assert(s, "%s: %s", name, tfw_last_error());
  const char *want = expect_of(name);
  cr_expect_str_eq(s, want, "%s:\n--- got ---\n%s\n--- expected ---\n%s", name, s, want);
  tfw_string_free(s);
  tfw_release(t);
}

#define V(...) ((const double[]){__VA_ARGS__})
#define S(...) ((const int64_t[]){__VA_ARGS__})
static const double NaN = NAN, Inf = INFINITY;

Test(print, small_tensors) {
  check("f32_2x2_int", mk(TFW_DTYPE_F32, 2, S(2, 2), V(1, 2, 3, 4)));
  check("f32_frac", mk(TFW_DTYPE_F32, 2, S(2, 2), V(1.5, -2.25, 3, 400.125)));
  check("f64_vec", mk(TFW_DTYPE_F64, 1, S(3), V(1.5, -2.25, 0.1)));
  check("neg_frac_2d", mk(TFW_DTYPE_F32, 2, S(2, 3), V(-1.25, 10.5, 100.0625, 0.001, -0.5, 3.0)));
  check("f16", mk(TFW_DTYPE_F16, 1, S(3), V(0.5, 1.25, -3.0)));
  check("bf16", mk(TFW_DTYPE_BF16, 2, S(2, 2), V(0.5, 1.25, -3.0, 8.0)));
  check("arange3d", mk_range(TFW_DTYPE_F32, 3, S(2, 3, 4), 1, 0, 1));
  th_expect_no_leaks();
}

Test(print, scalars_and_empty) {
  check("f32_scalar", mk(TFW_DTYPE_F32, 0, NULL, V(3)));
  check("f32_scalar_frac", mk(TFW_DTYPE_F32, 0, NULL, V(-0.5)));
  check("i64_scalar", mk(TFW_DTYPE_I64, 0, NULL, V(7)));
  check("empty_0x3", mk(TFW_DTYPE_F32, 2, S(0, 3), NULL));
  check("empty_1d", mk(TFW_DTYPE_F32, 1, S(0), NULL));
  check("empty_i64", mk(TFW_DTYPE_I64, 1, S(0), NULL));
  check("empty_i32_2d", mk(TFW_DTYPE_I32, 2, S(2, 0), NULL));
  th_expect_no_leaks();
}

Test(print, integers_and_bool) {
  check("bool", mk(TFW_DTYPE_BOOL, 1, S(3), V(1, 0, 1)));
  check("i64", mk(TFW_DTYPE_I64, 1, S(3), V(1, -20, 300)));
  check("i32", mk(TFW_DTYPE_I32, 2, S(2, 2), V(1, -20, 300, 4)));
  check("u8", mk(TFW_DTYPE_U8, 1, S(3), V(0, 255, 7)));
  check("i8", mk(TFW_DTYPE_I8, 1, S(2), V(-128, 5)));
  /* int64 beyond 2^53 prints exactly */
  int64_t big[2] = {INT64_C(9007199254740993), INT64_MIN};
  tfw_tensor *t = tfw_from_data(TFW_DTYPE_I64, 1, S(2), big);
  char *s = tfw_tensor_format(t);
  cr_assert_str_eq(s, "tensor([    9007199254740993, -9223372036854775808])");
  tfw_string_free(s);
  tfw_release(t);
  th_expect_no_leaks();
}

Test(print, modes_and_special_values) {
  check("sci_small", mk(TFW_DTYPE_F32, 1, S(3), V(1e-5, 1.0, 2.5)));
  check("sci_big", mk(TFW_DTYPE_F32, 1, S(2), V(1e9, 1.5)));
  check("sci_int", mk(TFW_DTYPE_F32, 1, S(2), V(1e10, 1.0)));
  check("sci_neg", mk(TFW_DTYPE_F32, 1, S(2), V(-1e-7, 3.0)));
  check("int_ratio", mk(TFW_DTYPE_F32, 1, S(2), V(1.0, 2000.0)));
  check("big_ints_f64", mk(TFW_DTYPE_F64, 1, S(2), V(123456789.0, 1.0)));
  check("nan_inf", mk(TFW_DTYPE_F32, 1, S(4), V(NaN, Inf, -Inf, 1.5)));
  check("nan_int", mk(TFW_DTYPE_F32, 1, S(3), V(NaN, 1.0, -Inf)));
  check("all_nan", mk(TFW_DTYPE_F32, 1, S(2), V(NaN, -NaN)));
  check("zeros", mk(TFW_DTYPE_F32, 1, S(2), V(0, 0)));
  check("negzero", mk(TFW_DTYPE_F32, 1, S(2), V(-0.0, 1.0)));
  check("negzero_frac", mk(TFW_DTYPE_F32, 1, S(2), V(-0.0, 1.5)));
  th_expect_no_leaks();
}

Test(print, wrapping_and_suffix_line) {
  check("wrap", mk_range(TFW_DTYPE_F32, 1, S(30), 1.5, 0, 1));
  check("wrap_f64", mk_range(TFW_DTYPE_F64, 1, S(25), 1.25, 0, 1));
  check("suffix_newline", mk_range(TFW_DTYPE_F64, 1, S(7), 1.5, 100, 1));
  th_expect_no_leaks();
}

Test(print, summarised) {
  check("sum1d", mk_range(TFW_DTYPE_F32, 1, S(2000), 1, 0, 1));
  check("sum2d", mk_range(TFW_DTYPE_I64, 2, S(40, 30), 1, 0, 1));
  check("sum3d", mk_range(TFW_DTYPE_F32, 3, S(8, 10, 30), 1, 0, 7));
  check("sum_i32", mk_range(TFW_DTYPE_I32, 1, S(1100), 1, 0, 1));
  check("small_sum_rows", mk_range(TFW_DTYPE_F32, 2, S(201, 5), 1, 0, 1));
  th_expect_no_leaks();
}

Test(print, strided_view) {
  /* the transpose of [[1, 2, 3], [4, 5, 6.5]] as a strided view of the same buffer */
  float buf[6] = {1, 2, 3, 4, 5, 6.5f};
  tfw_tensor *t = tfw_from_buffer(TFW_DTYPE_F32, 2, S(3, 2), S(1, 3), buf, NULL, NULL);
  cr_assert(t, "%s", tfw_last_error());
  check("transposed", t);
  th_expect_no_leaks();
}

Test(print, print_and_errors) {
  tfw_tensor *t = mk(TFW_DTYPE_F32, 1, S(2), V(1, 2));
  cr_assert_eq(tfw_print(t), TFW_OK);
  cr_assert_null(tfw_tensor_format(NULL));
  th_expect_error(tfw_last_status(), TFW_EVALUE, "format", "NULL tensor");
  th_expect_error(tfw_print(NULL), TFW_EVALUE, "format", "print NULL");
  tfw_string_free(NULL);
  /* allocation failure: a clean ENOMEM, nothing leaked */
  tfw_memory_fail_at(1, true);
  char *s = tfw_tensor_format(t);
  tfw_memory_fail_at(0, false);
  cr_assert_null(s);
  th_expect_error(tfw_last_status(), TFW_ENOMEM, "format", "OOM");
  tfw_release(t);
  th_expect_no_leaks();
}

/* ---- comparisons: tfw_allclose / tfw_equal --------------------------------------------- */
/* Reference: PyTorch's isclose rule evaluated per element in double here. */
static bool ref_close(double a, double b, double rtol, double atol, bool equal_nan) {
  if (a == b) return true;
  if (isnan(a) || isnan(b)) return equal_nan && isnan(a) && isnan(b);
  double err = fabs(a - b);
  return isfinite(err) && err <= atol + rtol * fabs(b);
}

Test(compare, allclose_against_reference) {
  int64_t shape[2] = {17, 23}, row[1] = {23};
  tfw_dtype dts[3] = {TFW_DTYPE_F32, TFW_DTYPE_F64, TFW_DTYPE_BF16};
  for (int k = 0; k < 3; k++) {
    for (int layout = 0; layout < 3; layout++) {
      tfw_tensor *a = layout == 1 ? th_random_strided(dts[k], 2, shape, -2, 2, 1)
                                  : th_random(dts[k], 2, shape, -2, 2, 1);
      /* b: a plus a small perturbation; broadcast case uses a row */
      tfw_tensor *b = layout == 2 ? th_random(TFW_DTYPE_F64, 1, row, -2, 2, 2)
                                  : th_random(TFW_DTYPE_F64, 2, shape, -2, 2, 3);
      double *va = th_values(a), *vb = th_values(b);
      int64_t nb = tfw_tensor_numel(b);
      for (int64_t i = 0; i < nb; i++) { /* b[i] = a[i] + 1e-3 * noise (the row: a's first row) */
        int64_t idx[2] = {layout == 2 ? i : i / 23, layout == 2 ? 0 : i % 23};
        cr_assert_eq(tfw_tensor_set(b, idx, va[i] + vb[i] * 1e-3), TFW_OK);
      }
      free(vb);
      vb = th_values(b);
      double tols[3] = {1e-2, 1e-3, 1e-4};
      for (int t = 0; t < 3; t++) {
        bool want = true;
        for (int64_t i = 0; i < 17 * 23; i++) {
          double bb = layout == 2 ? vb[i % 23] : vb[i];
          want = want && ref_close(va[i], bb, tols[t], 1e-5, false);
        }
        bool got = !want;
        cr_assert_eq(tfw_allclose(a, b, tols[t], 1e-5, false, &got), TFW_OK, "%s",
                     tfw_last_error());
        cr_expect_eq(got, want, "%s layout %d rtol %g: got %d", tfw_dtype_name(dts[k]), layout,
                     tols[t], got);
      }
      free(va);
      free(vb);
      tfw_release(a);
      tfw_release(b);
    }
  }
  th_expect_no_leaks();
}

Test(compare, allclose_special_values_and_dtypes) {
  const double NaN_ = NAN, Inf_ = INFINITY;
  tfw_tensor *a = mk(TFW_DTYPE_F32, 1, S(4), V(NaN_, Inf_, -Inf_, 1.0));
  tfw_tensor *b = mk(TFW_DTYPE_F64, 1, S(4), V(NaN_, Inf_, -Inf_, 1.0 + 1e-9));
  tfw_tensor *c = mk(TFW_DTYPE_F64, 1, S(4), V(NaN_, -Inf_, -Inf_, 1.0));
  bool r = false;
  cr_assert_eq(tfw_allclose(a, b, 1e-5, 1e-8, true, &r), TFW_OK);
  cr_expect(r, "equal_nan: NaN vs NaN, inf vs inf");
  cr_assert_eq(tfw_allclose(a, b, 1e-5, 1e-8, false, &r), TFW_OK);
  cr_expect(!r, "NaN without equal_nan");
  cr_assert_eq(tfw_allclose(a, c, 1e-5, 1e-8, true, &r), TFW_OK);
  cr_expect(!r, "inf vs -inf");
  /* integers vs floats by value; huge rtol does not make inf close to a finite value */
  tfw_tensor *i = mk(TFW_DTYPE_I32, 2, S(2, 2), V(1, 2, 3, 4));
  tfw_tensor *f = mk(TFW_DTYPE_F16, 2, S(2, 2), V(1, 2, 3, 4.01)); /* f16: 4.0078125 */
  cr_assert_eq(tfw_allclose(i, f, 3e-3, 0, false, &r), TFW_OK);
  cr_expect(r, "4 vs 4.0078 with rtol 3e-3");
  cr_assert_eq(tfw_allclose(i, f, 1e-3, 0, false, &r), TFW_OK);
  cr_expect(!r, "4 vs 4.0078 with rtol 1e-3");
  tfw_release(a);
  tfw_release(b);
  tfw_release(c);
  tfw_release(i);
  tfw_release(f);
  th_expect_no_leaks();
}

Test(compare, equal) {
  tfw_tensor *a = mk(TFW_DTYPE_I64, 2, S(2, 3), V(1, 2, 3, 4, 5, 6));
  tfw_tensor *b = mk(TFW_DTYPE_F32, 2, S(2, 3), V(1, 2, 3, 4, 5, 6));
  tfw_tensor *c = mk(TFW_DTYPE_F32, 2, S(3, 2), V(1, 2, 3, 4, 5, 6));
  tfw_tensor *d = mk(TFW_DTYPE_F32, 2, S(2, 3), V(1, 2, 3, 4, 5, 6.5));
  tfw_tensor *n1 = mk(TFW_DTYPE_F32, 1, S(1), V(NAN));
  /* strided b: transpose view of c's buffer equals a's transpose? use from_buffer */
  float buf[6] = {1, 4, 2, 5, 3, 6};
  tfw_tensor *bt = tfw_from_buffer(TFW_DTYPE_F32, 2, S(2, 3), S(1, 2), buf, NULL, NULL);
  /* int64 values beyond 2^53 compare exactly */
  int64_t big1[1] = {INT64_C(9007199254740993)}, big2[1] = {INT64_C(9007199254740992)};
  tfw_tensor *g1 = tfw_from_data(TFW_DTYPE_I64, 1, S(1), big1);
  tfw_tensor *g2 = tfw_from_data(TFW_DTYPE_I64, 1, S(1), big2);
  bool r;
  cr_assert_eq(tfw_equal(a, b, &r), TFW_OK);
  cr_expect(r, "int64 vs float32 by value");
  cr_assert_eq(tfw_equal(a, bt, &r), TFW_OK);
  cr_expect(r, "strided view");
  cr_assert_eq(tfw_equal(b, c, &r), TFW_OK);
  cr_expect(!r, "different shapes are not equal");
  cr_assert_eq(tfw_equal(b, d, &r), TFW_OK);
  cr_expect(!r);
  cr_assert_eq(tfw_equal(n1, n1, &r), TFW_OK);
  cr_expect(!r, "NaN != NaN");
  cr_assert_eq(tfw_equal(g1, g2, &r), TFW_OK);
  cr_expect(!r, "2^53 + 1 vs 2^53");
  tfw_tensor *e1 = tfw_zeros(TFW_DTYPE_F32, 2, S(0, 3)), *e2 = tfw_zeros(TFW_DTYPE_BOOL, 2, S(0, 3));
  cr_assert_eq(tfw_equal(e1, e2, &r), TFW_OK);
  cr_expect(r, "empty tensors of the same shape");
  cr_assert_eq(tfw_allclose(e1, e2, 0, 0, false, &r), TFW_OK);
  cr_expect(r);
  tfw_tensor *s1 = tfw_scalar(TFW_DTYPE_F64, 2.0), *s2 = tfw_scalar(TFW_DTYPE_U8, 2);
  cr_assert_eq(tfw_equal(s1, s2, &r), TFW_OK);
  cr_expect(r, "0-d");
  tfw_tensor *objs[] = {a, b, c, d, n1, bt, g1, g2, e1, e2, s1, s2};
  for (size_t k = 0; k < sizeof objs / sizeof objs[0]; k++) tfw_release(objs[k]);
  th_expect_no_leaks();
}

Test(compare, errors) {
  tfw_tensor *a = tfw_zeros(TFW_DTYPE_F32, 2, S(2, 3)), *b = tfw_zeros(TFW_DTYPE_F32, 2, S(3, 2));
  bool r;
  th_expect_error(tfw_allclose(a, b, 1e-5, 1e-8, false, &r), TFW_ESHAPE,
                  "allclose: shapes [2, 3] and [3, 2] cannot be broadcast", "broadcast");
  th_expect_error(tfw_allclose(NULL, b, 1e-5, 1e-8, false, &r), TFW_EVALUE, "allclose", "NULL a");
  th_expect_error(tfw_allclose(a, a, -1, 1e-8, false, &r), TFW_EVALUE, "rtol must be >= 0, got -1",
                  "rtol");
  th_expect_error(tfw_allclose(a, a, 0, NAN, false, &r), TFW_EVALUE, "atol must be >= 0", "atol");
  th_expect_error(tfw_allclose(a, a, 0, 0, false, NULL), TFW_EVALUE, "result", "NULL result");
  th_expect_error(tfw_equal(a, NULL, &r), TFW_EVALUE, "equal", "NULL b");
  th_expect_error(tfw_equal(a, a, NULL), TFW_EVALUE, "result", "NULL result");
  tfw_release(a);
  tfw_release(b);
  th_expect_no_leaks();
}
