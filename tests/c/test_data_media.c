/* Media formats: PNG, JPEG, WAV, WebDataset shards, image folders. The truth is the files in
 * ../shared/testdata/formats (written by other tools) and their expected values
 * (expected.npz / expected.json), read at test time by /usr/bin/python3 + numpy and handed
 * over as raw float64. Hostile files are made here: truncations, bit flips, headers that claim
 * huge sizes (with valid CRCs, so only the size policy can stop them). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define TD "/work/shared/testdata/formats"

/* Loads array `key` of an .npz (or, with key starting '{', runs that python expression over
 * json j) as float64: returns values, sets ndim/shape. */
static double *py_array(const char *npz, const char *key, int *ndim, int64_t *shape) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "/usr/bin/python3 -c \"import sys,numpy as np; a=np.load('%s')['%s'].astype(np.float64);"
           "sys.stdout.write(str(a.ndim)+' '+' '.join(map(str,a.shape))+'\\n'); sys.stdout.flush();"
           "sys.stdout.buffer.write(a.tobytes())\"",
           npz, key);
  FILE *p = popen(cmd, "r");
  cr_assert(p, "popen failed");
  char line[256];
  cr_assert(fgets(line, sizeof line, p), "python gave no header for %s", key);
  char *s = line;
  *ndim = (int)strtol(s, &s, 10);
  int64_t n = 1;
  for (int i = 0; i < *ndim; i++) shape[i] = strtoll(s, &s, 10), n *= shape[i];
  double *v = malloc(sizeof *v * (size_t)(n ? n : 1));
  cr_assert(fread(v, sizeof *v, (size_t)n, p) == (size_t)n, "short read from python (%s)", key);
  cr_assert(pclose(p) == 0);
  return v;
}


static uint32_t crc32_ref(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
static void put_be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Compares an image tensor [H, W, C] with expected [H, W] or [H, W, C]. */
static void expect_image(tfw_tensor *t, tfw_dtype dt, const char *file, double atol) {
  int nd;
  int64_t sh[8];
  double *ref = py_array(TD "/images/expected.npz", file, &nd, sh);
  int64_t shape[3] = {sh[0], sh[1], nd == 3 ? sh[2] : 1};
  th_expect_close(t, dt, 3, shape, ref, 0, atol, file);
  free(ref);
}

Test(media, png_files_match_expected) {
  const char *files[] = {"gray.png", "rgb.png", "rgb_interlaced.png", "rgba.png", "palette.png"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[256];
    snprintf(path, sizeof path, TD "/images/%s", files[i]);
    tfw_tensor *t = tfw_image_read(path, NULL);
    cr_assert(t, "%s: %s", files[i], tfw_last_error());
    expect_image(t, TFW_DTYPE_U8, files[i], 0);
    /* the same from memory */
    size_t n;
    uint8_t *buf = th_read_file(path, &n);
    tfw_tensor *m = tfw_image_decode(buf, n, NULL);
    cr_assert(m, "%s", tfw_last_error());
    bool eq = false;
    cr_assert_eq(tfw_equal(t, m, &eq), TFW_OK);
    cr_assert(eq, "%s: memory and file decodes differ", files[i]);
    free(buf);
    tfw_release(m);
    tfw_release(t);
  }
  th_expect_no_leaks();
}

Test(media, png16_is_exact_i32_or_top_byte) {
  tfw_tensor *t = tfw_image_read(TD "/images/gray16.png", NULL);
  cr_assert(t, "%s", tfw_last_error());
  expect_image(t, TFW_DTYPE_I32, "gray16.png", 0);
  tfw_image_options o = tfw_image_options_default();
  o.force_u8 = true;
  tfw_tensor *u = tfw_image_read(TD "/images/gray16.png", &o);
  cr_assert(u, "%s", tfw_last_error());
  int nd;
  int64_t sh[8];
  double *ref = py_array(TD "/images/expected.npz", "gray16.png", &nd, sh);
  for (int64_t i = 0; i < sh[0] * sh[1]; i++) ref[i] = (double)((int)ref[i] >> 8);
  th_expect_close(u, TFW_DTYPE_U8, 3, (int64_t[]){sh[0], sh[1], 1}, ref, 0, 0, "gray16 u8");
  free(ref);
  int64_t w, h;
  int c, bd;
  tfw_image_format f;
  size_t n;
  uint8_t *buf = th_read_file(TD "/images/gray16.png", &n);
  cr_assert_eq(tfw_image_info(buf, n, &w, &h, &c, &bd, &f), TFW_OK);
  cr_assert(w == sh[1] && h == sh[0] && c == 1 && bd == 16 && f == TFW_IMAGE_FORMAT_PNG);
  free(buf);
  tfw_release(t);
  tfw_release(u);
  th_expect_no_leaks();
}

Test(media, jpeg_files_match_expected) {
  const char *files[] = {"baseline444.jpg", "baseline420.jpg", "progressive.jpg", "gray.jpg"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[256];
    snprintf(path, sizeof path, TD "/images/%s", files[i]);
    tfw_tensor *t = tfw_image_read(path, NULL);
    cr_assert(t, "%s: %s", files[i], tfw_last_error());
    expect_image(t, TFW_DTYPE_U8, files[i], 0);
    tfw_release(t);
  }
  th_expect_no_leaks();
}

Test(media, channel_conversion) {
  /* rgb -> gray: PIL's L = (19595 R + 38470 G + 7471 B + 32768) >> 16, by a naive loop */
  int nd;
  int64_t sh[8];
  double *rgb = py_array(TD "/images/expected.npz", "rgb.png", &nd, sh);
  int64_t H = sh[0], W = sh[1];
  double *gray = malloc(sizeof *gray * (size_t)(H * W));
  for (int64_t i = 0; i < H * W; i++)
    gray[i] = (double)(((int64_t)rgb[3 * i] * 19595 + (int64_t)rgb[3 * i + 1] * 38470 +
                        (int64_t)rgb[3 * i + 2] * 7471 + 32768) >> 16);
  tfw_image_options o = tfw_image_options_default();
  o.channels = 1;
  tfw_tensor *g = tfw_image_read(TD "/images/rgb.png", &o);
  cr_assert(g, "%s", tfw_last_error());
  th_expect_close(g, TFW_DTYPE_U8, 3, (int64_t[]){H, W, 1}, gray, 0, 0, "rgb -> gray");
  /* rgb -> rgba: alpha 255 */
  o.channels = 4;
  tfw_tensor *a = tfw_image_read(TD "/images/rgb.png", &o);
  cr_assert(a);
  double *rgba = malloc(sizeof *rgba * (size_t)(H * W * 4));
  for (int64_t i = 0; i < H * W; i++)
    for (int c = 0; c < 4; c++) rgba[4 * i + c] = c < 3 ? rgb[3 * i + c] : 255;
  th_expect_close(a, TFW_DTYPE_U8, 3, (int64_t[]){H, W, 4}, rgba, 0, 0, "rgb -> rgba");
  /* gray jpeg -> rgb: replicated */
  o.channels = 3;
  tfw_tensor *j = tfw_image_read(TD "/images/gray.jpg", &o);
  cr_assert(j);
  double *gj = py_array(TD "/images/expected.npz", "gray.jpg", &nd, sh);
  double *gj3 = malloc(sizeof *gj3 * (size_t)(sh[0] * sh[1] * 3));
  for (int64_t i = 0; i < sh[0] * sh[1]; i++) gj3[3 * i] = gj3[3 * i + 1] = gj3[3 * i + 2] = gj[i];
  th_expect_close(j, TFW_DTYPE_U8, 3, (int64_t[]){sh[0], sh[1], 3}, gj3, 0, 0, "gray -> rgb");
  /* rgba -> rgb drops alpha */
  tfw_tensor *r3 = tfw_image_read(TD "/images/rgba.png", &o);
  double *ra = py_array(TD "/images/expected.npz", "rgba.png", &nd, sh);
  double *ra3 = malloc(sizeof *ra3 * (size_t)(sh[0] * sh[1] * 3));
  for (int64_t i = 0; i < sh[0] * sh[1]; i++)
    for (int c = 0; c < 3; c++) ra3[3 * i + c] = ra[4 * i + c];
  th_expect_close(r3, TFW_DTYPE_U8, 3, (int64_t[]){sh[0], sh[1], 3}, ra3, 0, 0, "rgba -> rgb");
  o.channels = 2;
  th_expect_error(tfw_image_read(TD "/images/rgb.png", &o) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "channels is 2", "channels 2");
  free(rgb), free(gray), free(rgba), free(gj), free(gj3), free(ra), free(ra3);
  tfw_release(g), tfw_release(a), tfw_release(j), tfw_release(r3);
  th_expect_no_leaks();
}

Test(media, chw_round_trip) {
  tfw_tensor *t = tfw_image_read(TD "/images/rgb.png", NULL);
  tfw_tensor *c = tfw_image_hwc_to_chw(t);
  cr_assert(c);
  const int64_t *s = tfw_tensor_shape(c);
  cr_assert(s[0] == 3 && s[1] == 17 && s[2] == 29);
  double v1, v2;
  tfw_tensor_get(t, (int64_t[]){5, 7, 2}, &v1);
  tfw_tensor_get(c, (int64_t[]){2, 5, 7}, &v2);
  cr_assert_eq(v1, v2);
  tfw_tensor *b = tfw_image_chw_to_hwc(c);
  bool eq = false;
  tfw_equal(t, b, &eq);
  cr_assert(eq);
  tfw_release(t), tfw_release(c), tfw_release(b);
  th_expect_no_leaks();
}

/* Every prefix of every image file (a truncation) and single-byte corruptions: a clean error
 * or (for a corruption a decoder cannot see) an image, never a crash. */
Test(media, truncated_and_corrupt_images) {
  const char *files[] = {"gray.png", "rgb_interlaced.png", "palette.png", "gray16.png",
                         "baseline420.jpg", "progressive.jpg", "gray.jpg"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    char path[256];
    snprintf(path, sizeof path, TD "/images/%s", files[i]);
    size_t n;
    uint8_t *buf = th_read_file(path, &n);
    for (size_t cut = 0; cut < n; cut += (cut < 64 ? 1 : 7)) {
      uint8_t *p = malloc(cut ? cut : 1);
      memcpy(p, buf, cut);
      tfw_tensor *t = tfw_image_decode(p, cut, NULL);
      cr_assert(t == NULL, "%s cut at %zu of %zu decoded", files[i], cut, n);
      cr_assert(tfw_last_status() == TFW_EFORMAT, "%s cut %zu: %s (%s)", files[i], cut,
                tfw_status_name(tfw_last_status()), tfw_last_error());
      free(p);
    }
    uint64_t rng = 99;
    for (int k = 0; k < 200; k++) {
      uint8_t *p = malloc(n);
      memcpy(p, buf, n);
      p[th_rand_u64(&rng) % n] ^= (uint8_t)(1 + th_rand_u64(&rng) % 255);
      tfw_tensor *t = tfw_image_decode(p, n, NULL);
      if (!t) cr_assert(tfw_last_status() == TFW_EFORMAT || tfw_last_status() == TFW_EUNSUPPORTED,
                        "%s: %s", files[i], tfw_last_error());
      tfw_release(t);
      free(p);
    }
    free(buf);
  }
  th_expect_error(tfw_image_decode("GIF89a", 6, NULL) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                  "not a PNG or JPEG", "gif");
  th_expect_error(tfw_image_read("/nonexistent/x.png", NULL) ? TFW_OK : tfw_last_status(),
                  TFW_EIO, "/nonexistent/x.png", "missing");
  th_expect_no_leaks();
}

/* A valid-CRC PNG header claiming 60000 x 60000 pixels in a ~100-byte file. */
Test(media, png_decompression_bomb) {
  size_t n;
  uint8_t *buf = th_read_file(TD "/images/gray.png", &n);
  put_be32(buf + 16, 60000), put_be32(buf + 20, 60000);
  put_be32(buf + 29, crc32_ref(buf + 12, 17));
  th_expect_error(tfw_image_decode(buf, n, NULL) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                  "exceed the cap", "bomb, default cap");
  tfw_image_options o = tfw_image_options_default();
  o.max_pixels = (int64_t)1 << 40;
  th_expect_error(tfw_image_decode(buf, n, &o) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                  "decompression bomb", "bomb, no cap");
  o.max_pixels = 100;
  th_expect_error(tfw_image_read(TD "/images/rgb.png", &o) ? TFW_OK : tfw_last_status(),
                  TFW_EFORMAT, "exceed the cap of 100", "small cap");
  free(buf);
  /* a bad header CRC */
  buf = th_read_file(TD "/images/rgb.png", &n);
  buf[29] ^= 1;
  th_expect_error(tfw_image_decode(buf, n, NULL) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                  "checksum", "crc");
  free(buf);
  th_expect_no_leaks();
}

Test(media, jpeg_huge_dimensions) {
  size_t n;
  uint8_t *buf = th_read_file(TD "/images/baseline420.jpg", &n);
  size_t i = 2;
  bool found = false;
  while (i + 9 < n) { /* walk the markers to SOF0/SOF2 */
    cr_assert_eq(buf[i], 0xFF);
    uint8_t m = buf[i + 1];
    size_t len = (size_t)buf[i + 2] << 8 | buf[i + 3];
    if (m == 0xC0 || m == 0xC2) {
      buf[i + 5] = 0x7F, buf[i + 6] = 0x00, buf[i + 7] = 0x7F, buf[i + 8] = 0x00;
      found = true;
      break;
    }
    i += 2 + len;
  }
  cr_assert(found);
  th_expect_error(tfw_image_decode(buf, n, NULL) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                  "exceed the cap", "32512^2 jpeg");
  free(buf);
  th_expect_no_leaks();
}

/* ---- audio ---------------------------------------------------------------------------------- */
Test(media, wav_files_match_expected) {
  struct { const char *file, *key; double scale, offset; int ch; } cases[] = {
      {"stereo_pcm16.wav", "stereo_pcm16", 1.0 / 32768, 0, 2},
      {"mono_u8.wav", "mono_u8", 1.0 / 128, -128, 1},
      {"mono_f32.wav", "mono_f32", 1.0, 0, 1},
  };
  int nd;
  int64_t sh[8];
  double *sr = py_array(TD "/audio/expected.npz", "sample_rate", &nd, sh);
  for (size_t k = 0; k < 3; k++) {
    char path[256];
    snprintf(path, sizeof path, TD "/audio/%s", cases[k].file);
    int rate = 0;
    tfw_tensor *t = tfw_audio_read(path, 0, &rate);
    cr_assert(t, "%s: %s", cases[k].file, tfw_last_error());
    cr_assert_eq(rate, (int)sr[0], "%s: rate %d, expected %g", cases[k].file, rate, sr[0]);
    double *ref = py_array(TD "/audio/expected.npz", cases[k].key, &nd, sh);
    int64_t frames = sh[0];
    for (int64_t i = 0; i < frames * cases[k].ch; i++)
      ref[i] = (ref[i] + cases[k].offset) * cases[k].scale;
    th_expect_close(t, TFW_DTYPE_F32, 2, (int64_t[]){frames, cases[k].ch}, ref, 0, 1e-7,
                    cases[k].file);
    free(ref);
    tfw_release(t);
    /* truncations: a clean error, never a short clip */
    size_t n;
    uint8_t *buf = th_read_file(path, &n);
    for (size_t cut = 0; cut < n; cut += (cut < 80 ? 1 : 97)) {
      uint8_t *p = malloc(cut ? cut : 1);
      memcpy(p, buf, cut);
      tfw_tensor *u = tfw_audio_decode(p, cut, 0, NULL);
      cr_assert(u == NULL, "%s cut at %zu of %zu decoded", cases[k].file, cut, n);
      cr_assert_eq(tfw_last_status(), TFW_EFORMAT, "%s", tfw_last_error());
      free(p);
    }
    th_expect_error(tfw_audio_decode(buf, n, 100, NULL) ? TFW_OK : tfw_last_status(), TFW_EFORMAT,
                    "cap of 100", "sample cap");
    free(buf);
  }
  free(sr);
  th_expect_no_leaks();
}

/* ---- WebDataset ------------------------------------------------------------------------------ */
Test(media, webdataset_shards_match_expected) {
  FILE *p = popen("/usr/bin/python3 -c \"import json; d=json.load(open('" TD
                  "/webdataset/expected.json'));"
                  "[print(s['key'], s['cls'], s['png_pixel_sum']) for s in d['samples']]\"",
                  "r");
  cr_assert(p);
  char keys[64][32];
  long long cls[64], sums[64];
  int n = 0;
  while (n < 64 && fscanf(p, "%31s %lld %lld", keys[n], &cls[n], &sums[n]) == 3) n++;
  pclose(p);
  cr_assert(n == 24, "expected.json has %d samples", n);
  const char *shards[] = {TD "/webdataset/shard-000000.tar", TD "/webdataset/shard-000001.tar"};
  tfw_dataset *ds = tfw_wds_dataset_new(2, shards, NULL);
  cr_assert(ds, "%s", tfw_last_error());
  cr_assert(tfw_dataset_is_iterable(ds));
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 1;
  tfw_loader *l = tfw_loader_new(ds, &o);
  cr_assert(l, "%s", tfw_last_error());
  tfw_sample b = {0};
  int i = 0;
  while (tfw_loader_next(l, &b) == TFW_OK && b.n > 0) {
    cr_assert(i < n);
    tfw_tensor *key = tfw_sample_get(&b, "__key__"), *c = tfw_sample_get(&b, "cls");
    tfw_tensor *img = tfw_sample_get(&b, "png"), *js = tfw_sample_get(&b, "json");
    cr_assert(key && c && img && js, "sample %d lacks a field", i);
    int64_t kl = tfw_tensor_size(key, 1);
    cr_assert(kl == (int64_t)strlen(keys[i]) && !memcmp(tfw_tensor_data(key), keys[i], (size_t)kl),
              "sample %d key differs from %s", i, keys[i]);
    cr_assert_eq(tfw_tensor_dtype(c), TFW_DTYPE_I64);
    cr_assert_eq(((int64_t *)tfw_tensor_data(c))[0], cls[i], "sample %d cls", i);
    double *v = th_values(img);
    double sum = 0;
    for (int64_t k = 0; k < tfw_tensor_numel(img); k++) sum += v[k];
    free(v);
    cr_assert_eq((long long)sum, sums[i], "sample %d pixel sum %g, expected %lld", i, sum, sums[i]);
    cr_assert_eq(tfw_tensor_dtype(js), TFW_DTYPE_U8);
    cr_assert_eq(((uint8_t *)tfw_tensor_data(js))[0], '{');
    tfw_sample_clear(&b);
    i++;
  }
  cr_assert_eq(i, n, "read %d samples: %s", i, tfw_last_error());
  tfw_loader_free(l);
  tfw_dataset_release(ds);
  th_expect_no_leaks();
}

Test(media, webdataset_hostile_shards) {
  size_t n;
  uint8_t *buf = th_read_file(TD "/webdataset/shard-000000.tar", &n);
  /* truncations and corruptions: a clean error or fewer samples, never a crash */
  uint64_t rng = 5;
  for (int k = 0; k < 300; k++) {
    size_t cut = k < 100 ? (size_t)(th_rand_u64(&rng) % n) : n;
    uint8_t *p = malloc(n);
    memcpy(p, buf, n);
    if (k >= 100) p[th_rand_u64(&rng) % n] ^= (uint8_t)(1 + th_rand_u64(&rng) % 255);
    tfw_wds_reader *r = tfw_wds_open_memory(p, cut, "mut.tar", NULL);
    if (r) {
      tfw_sample s = {0};
      tfw_status st;
      int guard = 0;
      while ((st = tfw_wds_next(r, &s)) == TFW_OK && s.n > 0 && guard++ < 100) tfw_sample_clear(&s);
      if (st) cr_assert(strstr(tfw_last_error(), "mut.tar") != NULL, "%s", tfw_last_error());
      tfw_sample_clear(&s);
      tfw_wds_close(r);
    }
    free(p);
  }
  /* a member larger than the cap */
  tfw_wds_options o = tfw_wds_options_default();
  o.max_member_bytes = 100;
  tfw_wds_reader *r = tfw_wds_open_memory(buf, n, "cap.tar", &o);
  cr_assert(r);
  tfw_sample s = {0};
  th_expect_error(tfw_wds_next(r, &s), TFW_EFORMAT, "above the cap of 100", "member cap");
  tfw_wds_close(r);
  /* a garbage file */
  r = tfw_wds_open_memory("hello world, not a tar", 22, "junk.tar", NULL);
  if (r) {
    th_expect_error(tfw_wds_next(r, &s), TFW_EFORMAT, "junk.tar", "junk");
    tfw_wds_close(r);
  } else {
    cr_assert_eq(tfw_last_status(), TFW_EFORMAT);
  }
  free(buf);
  th_expect_no_leaks();
}

/* ---- image folder ---------------------------------------------------------------------------- */
Test(media, image_folder) {
  char dir[64] = "/tmp/tfw_imf_XXXXXX";
  cr_assert(mkdtemp(dir));
  char cmd[1024];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s/zebra %s/apple/sub %s/Mango %s/.hidden && cp " TD "/images/rgb.png %s/zebra/b.png"
           " && cp " TD "/images/baseline420.jpg %s/zebra/a.JPG && cp " TD "/images/gray.png "
           "%s/apple/sub/c.png && cp " TD "/images/palette.png %s/apple/x.png && echo hi > %s/apple/notes.txt"
           " && cp " TD "/images/rgba.png %s/Mango/m.jpeg.png && cp " TD "/images/rgb.png %s/.hidden/h.png",
           dir, dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
  cr_assert(system(cmd) == 0);
  tfw_image_options io = tfw_image_options_default();
  io.channels = 3;
  tfw_dataset *ds = tfw_image_folder_new(dir, &io);
  cr_assert(ds, "%s", tfw_last_error());
  cr_assert_eq(tfw_image_folder_num_classes(ds), 3);
  /* byte order: uppercase first, as Python's sorted() */
  cr_assert_str_eq(tfw_image_folder_class_name(ds, 0), "Mango");
  cr_assert_str_eq(tfw_image_folder_class_name(ds, 1), "apple");
  cr_assert_str_eq(tfw_image_folder_class_name(ds, 2), "zebra");
  cr_assert_eq(tfw_dataset_len(ds), 5);
  const char *want[] = {"Mango/m.jpeg.png", "apple/sub/c.png", "apple/x.png", "zebra/a.JPG",
                        "zebra/b.png"};
  int64_t labels[] = {0, 1, 1, 2, 2};
  for (int64_t i = 0; i < 5; i++) {
    const char *pth = tfw_image_folder_path(ds, i);
    cr_assert(strstr(pth, want[i]), "sample %lld is %s, expected %s", (long long)i, pth, want[i]);
    tfw_sample s = {0};
    cr_assert_eq(tfw_dataset_get(ds, i, &s), TFW_OK, "%s", tfw_last_error());
    int64_t lab;
    cr_assert_eq(tfw_item_i64(tfw_sample_get(&s, "label"), &lab), TFW_OK);
    cr_assert_eq(lab, labels[i]);
    tfw_tensor *ref = tfw_image_read(pth, &io);
    bool eq = false;
    tfw_equal(ref, tfw_sample_get(&s, "image"), &eq);
    cr_assert(eq && tfw_tensor_size(ref, 2) == 3);
    tfw_release(ref);
    tfw_sample_clear(&s);
  }
  cr_assert_null(tfw_image_folder_class_name(ds, 3));
  tfw_dataset_release(ds);
  /* a corrupt image fails on get, with its path */
  snprintf(cmd, sizeof cmd, "head -c 40 " TD "/images/rgb.png > %s/zebra/b.png", dir);
  cr_assert(system(cmd) == 0);
  ds = tfw_image_folder_new(dir, NULL);
  tfw_sample s = {0};
  th_expect_error(tfw_dataset_get(ds, 4, &s), TFW_EFORMAT, "zebra/b.png", "corrupt member");
  tfw_dataset_release(ds);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  cr_assert(system(cmd) == 0);
  th_expect_error(tfw_image_folder_new(dir, NULL) ? TFW_OK : tfw_last_status(), TFW_EIO, dir,
                  "missing root");
  th_expect_no_leaks();
}

/* ---- the unified reader's media backends ------------------------------------------------------ */
Test(media, unified_reader_backends) {
  tfw_reader *r = tfw_reader_open(TD "/images/palette.png", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_assert_str_eq(tfw_reader_format(r), "image");
  cr_assert_eq(tfw_reader_num_records(r), 1);
  tfw_sample s = {0};
  cr_assert_eq(tfw_reader_get(r, 0, &s), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *ref = tfw_image_read(TD "/images/palette.png", NULL);
  bool eq = false;
  tfw_equal(ref, tfw_sample_get(&s, "image"), &eq);
  cr_assert(eq);
  tfw_release(ref);
  tfw_sample_clear(&s);
  tfw_reader_close(r);
  /* found by magic bytes under another name */
  size_t n;
  uint8_t *buf = th_read_file(TD "/audio/stereo_pcm16.wav", &n);
  r = tfw_reader_open_memory(buf, n, "clip.bin", NULL);
  cr_assert(r, "%s", tfw_last_error());
  cr_assert_str_eq(tfw_reader_format(r), "audio");
  cr_assert_eq(tfw_reader_get(r, 0, &s), TFW_OK, "%s", tfw_last_error());
  tfw_tensor *a = tfw_sample_get(&s, "audio");
  cr_assert(tfw_tensor_shape(a)[0] == 2000 && tfw_tensor_shape(a)[1] == 2);
  int64_t rate;
  tfw_item_i64(tfw_sample_get(&s, "sample_rate"), &rate);
  int nd;
  int64_t sh[8];
  double *sr = py_array(TD "/audio/expected.npz", "sample_rate", &nd, sh);
  cr_assert_eq(rate, (int64_t)sr[0]);
  free(sr);
  tfw_sample_clear(&s);
  tfw_reader_close(r);
  /* a truncated image through the reader: the decoder's error */
  r = tfw_reader_open_memory(buf, 30, "cut.wav", NULL);
  cr_assert_null(r);
  cr_assert_eq(tfw_last_status(), TFW_EFORMAT, "%s", tfw_last_error());
  free(buf);
  th_expect_no_leaks();
}

/* PNG variants the shared files lack, written by Python's zlib + struct (tests/fuzz/corpus/
 * fuzz_image/ok_*.png): 1-bit gray, gray+alpha, palette with tRNS, 16-bit RGBA. The expected
 * pixels follow from the bytes written. */
Test(media, png_variants) {
  const char *dir = TFW_SOURCE_DIR "/tests/fuzz/corpus/fuzz_image/";
  char p[512];
  snprintf(p, sizeof p, "%sok_gray1.png", dir); /* rows a5 80 / 5a 00, 9 pixels */
  tfw_tensor *t = tfw_image_read(p, NULL);
  double g1[18];
  for (int i = 0; i < 9; i++) {
    int b0 = (i < 8 ? 0xa5 >> (7 - i) : 0x80 >> 7) & 1, b1 = (i < 8 ? 0x5a >> (7 - i) : 0) & 1;
    g1[i] = b0 * 255, g1[9 + i] = b1 * 255;
  }
  th_expect_close(t, TFW_DTYPE_U8, 3, (int64_t[]){2, 9, 1}, g1, 0, 0, "1-bit gray");
  tfw_release(t);
  snprintf(p, sizeof p, "%sok_ga8.png", dir);
  t = tfw_image_read(p, NULL);
  th_expect_close(t, TFW_DTYPE_U8, 3, (int64_t[]){2, 2, 2},
                  (double[]){0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80}, 0, 0, "gray+alpha");
  tfw_release(t);
  snprintf(p, sizeof p, "%sok_pal_trns.png", dir);
  t = tfw_image_read(p, NULL);
  th_expect_close(t, TFW_DTYPE_U8, 3, (int64_t[]){1, 2, 4}, (double[]){255, 0, 0, 128, 0, 255, 0, 255},
                  0, 0, "palette + tRNS");
  tfw_release(t);
  snprintf(p, sizeof p, "%sok_rgba16.png", dir); /* bytes 0..47 as big-endian u16 */
  t = tfw_image_read(p, NULL);
  double r16[24];
  for (int i = 0; i < 24; i++) r16[i] = (2 * i) * 256 + 2 * i + 1;
  th_expect_close(t, TFW_DTYPE_I32, 3, (int64_t[]){2, 3, 4}, r16, 0, 0, "16-bit rgba");
  tfw_release(t);
  th_expect_no_leaks();
}
