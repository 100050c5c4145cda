/* Core: creation, element access, conversions at the edges, allocator statistics, the
 * out-of-memory loop, size overflow, user buffers, errors and status names. */
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "core/cpu.h"

Test(core, creation_values) {
  int64_t s[2] = {2, 3};
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_I64, 2, s), *o = tfw_ones(TFW_DTYPE_BF16, 2, s);
  tfw_tensor *f = tfw_full(TFW_DTYPE_F64, 2, s, -2.25);
  double zr[6] = {0}, orr[6] = {1, 1, 1, 1, 1, 1}, fr[6] = {-2.25, -2.25, -2.25, -2.25, -2.25, -2.25};
  th_expect_close(z, TFW_DTYPE_I64, 2, s, zr, 0, 0, "zeros");
  th_expect_close(o, TFW_DTYPE_BF16, 2, s, orr, 0, 0, "ones");
  th_expect_close(f, TFW_DTYPE_F64, 2, s, fr, 0, 0, "full");
  tfw_tensor *a = tfw_arange(1, 2, 0.25, TFW_DTYPE_F32);
  double ar[4] = {1, 1.25, 1.5, 1.75};
  th_expect_close(a, TFW_DTYPE_F32, 1, (int64_t[]){4}, ar, 0, 0, "arange");
  tfw_tensor *ai = tfw_arange(5, 0, -2, TFW_DTYPE_I32);
  th_expect_close(ai, TFW_DTYPE_I32, 1, (int64_t[]){3}, (double[]){5, 3, 1}, 0, 0, "arange down");
  tfw_tensor *l = tfw_linspace(0, 1, 5, TFW_DTYPE_F64);
  th_expect_close(l, TFW_DTYPE_F64, 1, (int64_t[]){5}, (double[]){0, .25, .5, .75, 1}, 0, 0, "linspace");
  tfw_tensor *e = tfw_eye(2, 3, TFW_DTYPE_U8);
  th_expect_close(e, TFW_DTYPE_U8, 2, s, (double[]){1, 0, 0, 0, 1, 0}, 0, 0, "eye");
  tfw_tensor *sc = tfw_scalar(TFW_DTYPE_I8, -5);
  double v;
  cr_assert(tfw_tensor_ndim(sc) == 0 && tfw_item(sc, &v) == TFW_OK && v == -5);
  int64_t iv;
  cr_assert(tfw_item_i64(sc, &iv) == TFW_OK && iv == -5);
  th_expect_error(tfw_item(f, &v), TFW_ESHAPE, "tfw_item: a tensor with 6 elements", "item");
  tfw_release(z), tfw_release(o), tfw_release(f), tfw_release(a), tfw_release(ai);
  tfw_release(l), tfw_release(e), tfw_release(sc);
  th_expect_no_leaks();
}

Test(core, creation_errors) {
  int64_t neg[2] = {2, -3};
  th_expect_error(tfw_empty(TFW_DTYPE_F32, 2, neg) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "empty: negative dimension -3 at index 1 in shape [2, -3]", "negative dim");
  int64_t huge[2] = {(int64_t)1 << 40, (int64_t)1 << 40};
  th_expect_error(tfw_zeros(TFW_DTYPE_F32, 2, huge) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "more elements than fit", "numel overflow");
  int64_t bytes_overflow[1] = {(int64_t)1 << 62};
  th_expect_error(tfw_ones(TFW_DTYPE_F64, 1, bytes_overflow) ? TFW_OK : tfw_last_status(),
                  TFW_ESHAPE, "more elements than fit", "byte overflow");
  int64_t too_big[2] = {(int64_t)1 << 40, (int64_t)1 << 20};
  th_expect_error(tfw_empty(TFW_DTYPE_F32, 2, too_big) ? TFW_OK : tfw_last_status(), TFW_ENOMEM,
                  "out of memory", "4 EiB allocation");
  int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  th_expect_error(tfw_empty(TFW_DTYPE_F32, 9, s9) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "ndim must be in [0, 8], got 9", "ndim 9");
  th_expect_error(tfw_empty((tfw_dtype)42, 1, s9) ? TFW_OK : tfw_last_status(), TFW_EDTYPE,
                  "invalid dtype 42", "dtype");
  th_expect_error(tfw_arange(0, 1, 0, TFW_DTYPE_F32) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "step must be nonzero", "arange step");
  th_expect_error(tfw_arange(0, 1, -1, TFW_DTYPE_F32) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "wrong way", "arange dir");
  th_expect_error(tfw_arange(0, NAN, 1, TFW_DTYPE_F32) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "finite", "arange nan");
  th_expect_error(tfw_linspace(0, 1, -1, TFW_DTYPE_F32) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "steps", "linspace");
  int64_t s2[1] = {2};
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 1, s2);
  th_expect_error(tfw_tensor_get(t, (int64_t[]){2}, NULL), TFW_EINDEX, "index 2 out of range", "get");
  th_expect_error(tfw_tensor_set(t, (int64_t[]){-3}, 1), TFW_EINDEX, "out of range", "set");
  cr_assert(tfw_tensor_set(t, (int64_t[]){-1}, 4) == TFW_OK);
  double v;
  cr_assert(tfw_tensor_get(t, (int64_t[]){1}, &v) == TFW_OK && v == 4);
  tfw_release(t);
  tfw_release(NULL);
  th_expect_no_leaks();
}

Test(core, status_names) {
  cr_assert_str_eq(tfw_status_name(TFW_ESHAPE), "TFW_ESHAPE");
  cr_assert_str_eq(tfw_status_name(TFW_EINTERNAL), "TFW_EINTERNAL");
  cr_assert_str_eq(tfw_status_name((tfw_status)99), "TFW_UNKNOWN");
  cr_assert_str_eq(tfw_status_str(TFW_ENOMEM), "out of memory");
  tfw_empty(TFW_DTYPE_F32, -1, NULL);
  char small[8];
  size_t n = tfw_last_error_copy(small, sizeof small);
  cr_assert(n > 8 && strlen(small) == 7);
  tfw_clear_error();
  cr_assert_str_eq(tfw_last_error(), "");
  cr_assert_eq(tfw_last_status(), TFW_OK);
  cr_assert_str_eq(tfw_version(), "0.1.0");
}

/* Reference f16 -> double by the definition: (-1)^s * 2^(e-15) * (1 + m/1024). */
static double f16_ref(uint16_t h) {
  int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 31) v = m ? NAN : INFINITY;
  else if (e == 0) v = ldexp(m, -24);
  else v = ldexp(1024 + m, e - 25);
  return s ? -v : v;
}

__attribute__((target("f16c"))) static uint16_t hw_f16(float f) {
  return (uint16_t)_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0);
}

Test(core, f16_conversions_exact) {
  for (uint32_t h = 0; h < 65536; h++) {
    float f = tfw_f16_to_f32((uint16_t)h);
    double r = f16_ref((uint16_t)h);
    if (isnan(r)) {
      cr_assert(isnan(f), "h=%04x", h);
      cr_assert(tfw_f32_to_f16(f) & 0x200, "quiet NaN kept for h=%04x", h);
    } else {
      cr_assert((double)f == r && !!signbit(f) == !!signbit(r), "h=%04x: %g vs %g", h, f, r);
      cr_assert_eq(tfw_f32_to_f16(f), h, "round trip h=%04x", h);
    }
  }
  if (tfw__cpu()->f16c) {
    /* every float of a dense sweep, including the f16 subnormal range, against F16C */
    uint64_t st = 1;
    for (int i = 0; i < 2000000; i++) {
      uint32_t bits = (uint32_t)th_rand_u64(&st);
      if (i % 2) bits = (bits & 0x80000000u) | (0x33000000u + (bits % 0x0c800000u)); /* |x| < 2^17 */
      float f;
      memcpy(&f, &bits, 4);
      if (isnan(f)) continue;
      cr_assert_eq(tfw_f32_to_f16(f), hw_f16(f), "f32 %08x", bits);
    }
  }
}

Test(core, bf16_conversions_exact) {
  /* ties to even, overflow to inf, NaN stays NaN, subnormals kept */
  struct { uint32_t in; uint16_t out; } c[] = {
    {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, {0x3f818000, 0x3f82}, {0x3f808001, 0x3f81},
    {0x7f7fffff, 0x7f80}, {0xff7fffff, 0xff80}, {0x00000001, 0x0000}, {0x00018000, 0x0002},
    {0x80000000, 0x8000}, {0x7f800000, 0x7f80},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    float f;
    memcpy(&f, &c[i].in, 4);
    cr_assert_eq(tfw_f32_to_bf16(f), c[i].out, "bf16(%08x) = %04x, want %04x", c[i].in,
                 tfw_f32_to_bf16(f), c[i].out);
  }
  cr_assert(isnan(tfw_bf16_to_f32(tfw_f32_to_bf16(NAN))));
  for (uint32_t h = 0; h < 65536; h++) {
    float f = tfw_bf16_to_f32((uint16_t)h);
    if (!isnan(f)) cr_assert_eq(tfw_f32_to_bf16(f), h, "round trip %04x", h);
  }
  /* against the definition: nearest representable, ties to even */
  uint64_t st = 7;
  for (int i = 0; i < 1000000; i++) {
    uint32_t bits = (uint32_t)th_rand_u64(&st);
    float f;
    memcpy(&f, &bits, 4);
    if (isnan(f) || isinf(f) || (bits & 0x7f7f0000u) == 0x7f7f0000u) continue; /* overflow: above */
    uint32_t lo = bits & 0xffff0000u, hi = lo + 0x10000u;
    float flo, fhi;
    memcpy(&flo, &lo, 4);
    memcpy(&fhi, &hi, 4);
    double dlo = fabs((double)f - flo), dhi = fabs((double)fhi - f);
    uint16_t want = (uint16_t)(lo >> 16);
    if (dhi < dlo || (dhi == dlo && (want & 1))) want = (uint16_t)(hi >> 16);
    cr_assert_eq(tfw_f32_to_bf16(f), want, "bf16(%08x)", bits);
  }
}

Test(core, casts_saturate_and_wrap) {
  int64_t s[1] = {6};
  double in[6] = {NAN, INFINITY, -INFINITY, 300.7, -300.2, 1e30};
  tfw_tensor *d = tfw_from_data(TFW_DTYPE_F64, 1, s, in);
  tfw_tensor *i8 = tfw_to_dtype(d, TFW_DTYPE_I8), *u8 = tfw_to_dtype(d, TFW_DTYPE_U8);
  tfw_tensor *i64 = tfw_to_dtype(d, TFW_DTYPE_I64), *b = tfw_to_dtype(d, TFW_DTYPE_BOOL);
  th_expect_close(i8, TFW_DTYPE_I8, 1, s, (double[]){0, 127, -128, 127, -128, 127}, 0, 0, "i8");
  th_expect_close(u8, TFW_DTYPE_U8, 1, s, (double[]){0, 255, 0, 255, 0, 255}, 0, 0, "u8");
  th_expect_close(b, TFW_DTYPE_BOOL, 1, s, (double[]){1, 1, 1, 1, 1, 1}, 0, 0, "bool");
  int64_t *iv = tfw_tensor_data(i64);
  cr_assert(iv[0] == 0 && iv[1] == INT64_MAX - 1023 && iv[2] == INT64_MIN && iv[3] == 300);
  int64_t big[1] = {1};
  int64_t bv = 300;
  tfw_tensor *bi = tfw_from_data(TFW_DTYPE_I64, 1, big, &bv);
  tfw_tensor *w = tfw_to_dtype(bi, TFW_DTYPE_U8);
  cr_assert_eq(*(uint8_t *)tfw_tensor_data(w), 44); /* integer casts wrap, like PyTorch */
  tfw_release(d), tfw_release(i8), tfw_release(u8), tfw_release(i64), tfw_release(b);
  tfw_release(bi), tfw_release(w);
  th_expect_no_leaks();
}

static int g_released;
static void on_release(void *ctx, void *data) {
  g_released++;
  cr_assert_eq(ctx, (void *)0x1234);
  (void)data;
}

Test(core, borrowed_buffers) {
  float buf[6] = {1, 2, 3, 4, 5, 6};
  int64_t s[2] = {3, 2}, st[2] = {1, 3}; /* column-major view of buf */
  g_released = 0;
  tfw_tensor *t = tfw_from_buffer(TFW_DTYPE_F32, 2, s, st, buf, on_release, (void *)0x1234);
  cr_assert(t);
  th_expect_close(t, TFW_DTYPE_F32, 2, s, (double[]){1, 4, 2, 5, 3, 6}, 0, 0, "strided borrow");
  tfw_tensor *c = tfw_contiguous(t);
  cr_assert(!tfw_tensor_shares_storage(c, t) && tfw_tensor_is_contiguous(c));
  tfw_tensor *r = tfw_retain(t);
  tfw_release(t);
  cr_assert_eq(g_released, 0);
  tfw_release(r);
  cr_assert_eq(g_released, 1);
  buf[0] = 9; /* still ours */
  tfw_release(c);
  th_expect_no_leaks();
}

Test(core, memory_stats_and_cache) {
  tfw_memory_empty_cache();
  tfw_memory_stats a, b, c;
  tfw_memory_stats_get(&a);
  int64_t s[1] = {1000};
  tfw_tensor *t = tfw_zeros(TFW_DTYPE_F32, 1, s);
  tfw_memory_stats_get(&b);
  cr_assert_eq(b.live_tensors, a.live_tensors + 1);
  cr_assert(b.live_bytes >= a.live_bytes + 4000 && b.live_bytes <= a.live_bytes + 4000 * 1.25);
  cr_assert(b.peak_bytes >= b.live_bytes);
  tfw_release(t);
  tfw_memory_stats_get(&c);
  cr_assert_eq(c.live_bytes, a.live_bytes);
  cr_assert(c.cached_bytes > 0, "freed block kept for reuse");
  tfw_tensor *t2 = tfw_zeros(TFW_DTYPE_F32, 1, s);
  tfw_memory_stats_get(&b);
  cr_assert_eq(b.cache_hits, c.cache_hits + 1);
  tfw_release(t2);
  tfw_memory_empty_cache();
  tfw_memory_stats_get(&c);
  cr_assert_eq(c.cached_bytes, 0);
  th_expect_no_leaks();
}

/* sqlite's OOM loop: fail allocation N for N = 1, 2, ... until the operation succeeds; every
 * failure must be a clean TFW_ENOMEM with nothing leaked. */
Test(core, out_of_memory_loop) {
  int64_t s[2] = {3, 4}, s2[1] = {4};
  tfw_tensor *a = tfw_ones(TFW_DTYPE_F16, 2, s), *b = tfw_ones(TFW_DTYPE_I32, 1, s2);
  int failures = 0;
  for (int64_t n = 1; n < 100; n++) {
    tfw_memory_fail_at(n, false);
    tfw_tensor *r = tfw_add(a, b);
    tfw_memory_fail_at(0, false);
    if (r) {
      tfw_release(r);
      break;
    }
    cr_assert_eq(tfw_last_status(), TFW_ENOMEM, "n=%lld: %s", (long long)n, tfw_last_error());
    failures++;
  }
  cr_assert(failures >= 2, "the operation allocates several times (f16 -> f32 casts)");
  /* persistent failure */
  tfw_memory_fail_at(1, true);
  cr_assert(tfw_zeros(TFW_DTYPE_F32, 1, s2) == NULL && tfw_last_status() == TFW_ENOMEM);
  cr_assert(tfw_zeros(TFW_DTYPE_F32, 1, s2) == NULL);
  tfw_memory_fail_at(0, false);
  tfw_release(a), tfw_release(b);
  th_expect_no_leaks();
}

Test(core, memory_limit) {
  int64_t s[1] = {1 << 20};
  tfw_memory_set_limit(1 << 20);
  th_expect_error(tfw_zeros(TFW_DTYPE_F32, 1, s) ? TFW_OK : tfw_last_status(), TFW_ENOMEM,
                  "out of memory allocating 4194304 bytes", "over the limit");
  tfw_tensor *small = tfw_zeros(TFW_DTYPE_F32, 1, (int64_t[]){1000});
  cr_assert(small != NULL);
  tfw_memory_set_limit(0);
  tfw_tensor *big = tfw_zeros(TFW_DTYPE_F32, 1, s);
  cr_assert(big != NULL);
  tfw_release(small), tfw_release(big);
  th_expect_no_leaks();
}

Test(core, threads_setting) {
  tfw_set_num_threads(3);
  cr_assert_eq(tfw_get_num_threads(), 3);
  tfw_set_num_threads(0);
  cr_assert(tfw_get_num_threads() >= 1);
}

/* The tiled transpose path of copies (x.t().contiguous()) against naive indexing, for every
 * element size, edge tiles and batched (outer) dims. */
Test(core, transpose_copy_tiled) {
  const tfw_dtype dts[4] = {TFW_DTYPE_U8, TFW_DTYPE_F16, TFW_DTYPE_F32, TFW_DTYPE_F64};
  const int64_t shapes[3][3] = {{1, 70, 133}, {3, 64, 64}, {2, 257, 65}};
  for (int d = 0; d < 4; d++)
    for (int k = 0; k < 3; k++) {
      tfw_tensor *a = th_random(dts[d], 3, shapes[k], -100, 100, (uint64_t)(d * 3 + k));
      tfw_tensor *t = tfw_transpose(a, 1, 2);
      tfw_tensor *c = tfw_contiguous(t);
      cr_assert(c && tfw_tensor_is_contiguous(c));
      int64_t B = shapes[k][0], R = shapes[k][1], C = shapes[k][2];
      double *va = th_values(a);
      double *ref = malloc(sizeof(double) * (size_t)(B * R * C));
      for (int64_t b = 0; b < B; b++)
        for (int64_t j = 0; j < C; j++)
          for (int64_t i = 0; i < R; i++) ref[(b * C + j) * R + i] = va[(b * R + i) * C + j];
      th_expect_close(c, dts[d], 3, (int64_t[]){B, C, R}, ref, 0, 0, "tiled transpose");
      free(va);
      free(ref);
      tfw_release(a), tfw_release(t), tfw_release(c);
    }
  th_expect_no_leaks();
}
