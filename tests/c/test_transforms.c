/* Transforms: every image op against PyTorch run at test time (F.interpolate, grid_sample,
 * conv2d with reflect padding, torch.flip/rot90/slicing, torchvision's formulas written in
 * torch ops), label/text ops against naive truths, and the pipeline's reproducibility: the
 * same (seed, epoch, index) gives the same augmentation for any number of loader workers.
 * One PyTorch process computes all references (importing torch dominates the time). */
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define H 13
#define W 17

/* x[0]: u8 [H, W, 3]; x[1]: f32 [3, H, W] in [0, 1]; x[2]: f32 [3, 16, 16] */
static const char *REF_PY =
    "import math\n"
    "u8 = x[0].to(torch.uint8); xf = x[1].float(); sq = x[2].float()\n"
    "mean = torch.tensor([0.485, 0.456, 0.406]).view(3,1,1); std = torch.tensor([0.229, 0.224, 0.225]).view(3,1,1)\n"
    "tt = u8.permute(2,0,1).float().div(255)\n"
    "out = [tt, (tt - mean) / std, (xf - mean) / std]\n"
    "for (h, w) in [(7, 9), (26, 40), (13, 5), (4, 4)]:\n"
    "    b = xf.unsqueeze(0)\n"
    "    out.append(F.interpolate(b, size=(h, w), mode='bilinear', align_corners=False, antialias=False)[0])\n"
    "    out.append(F.interpolate(b, size=(h, w), mode='area')[0])\n"
    "    out.append(F.interpolate(b, size=(h, w), mode='nearest')[0])\n"
    /* crops: torchvision center_crop offsets with Python's round */
    "for (h, w) in [(8, 10), (12, 17), (4, 3)]:\n"
    "    t = int(round((13 - h) / 2.0)); l = int(round((17 - w) / 2.0))\n"
    "    out.append(xf[:, t:t+h, l:l+w])\n"
    "out.append(F.pad(xf, (2, 2, 2, 2))[:, 1:1+10, 3:3+12])\n" /* crop at (-1, 1) of size 10x12 */
    "out += [torch.flip(xf, [2]), torch.flip(xf, [1]), torch.flip(u8, [1]), torch.flip(u8, [0])]\n"
    /* rotate: torchvision's inverse matrix and affine grid, then grid_sample */
    "def rot(img, ang, fill=0.0):\n"
    "    c, h, w = img.shape; a = math.radians(ang)\n"
    "    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]], dtype=torch.float64)\n"
    "    xs = torch.linspace(-w * 0.5 + 0.5, w * 0.5 - 0.5, w, dtype=torch.float64)\n"
    "    ys = torch.linspace(-h * 0.5 + 0.5, h * 0.5 - 0.5, h, dtype=torch.float64)\n"
    "    base = torch.stack([xs.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w), torch.ones(h, w, dtype=torch.float64)], -1)\n"
    "    grid = base.view(1, h * w, 3) @ (theta.T / torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float64))\n"
    "    im = torch.cat([img.double(), torch.ones(1, h, w, dtype=torch.float64)]).unsqueeze(0)\n"
    "    o = F.grid_sample(im, grid.view(1, h, w, 2), mode='bilinear', padding_mode='zeros', align_corners=False)[0]\n"
    "    m = o[-1:]; o = o[:-1]\n"
    "    return o * m + (1 - m) * fill if fill != 0 else o\n"
    "out += [rot(xf, 30.0), rot(xf, -123.5), rot(xf, 17.0, 0.5), torch.rot90(sq, 1, [1, 2])]\n"
    /* gaussian blur: torchvision's 1-D kernel, reflect pad, conv2d */
    "def blur(img, k, s):\n"
    "    half = (k - 1) * 0.5\n"
    "    xk = torch.linspace(-half, half, k)\n"
    "    pdf = torch.exp(-0.5 * (xk / s).pow(2)); k1 = pdf / pdf.sum()\n"
    "    k2 = torch.mm(k1[:, None], k1[None, :]).expand(img.shape[0], 1, k, k)\n"
    "    p = F.pad(img.unsqueeze(0), [k // 2] * 4, mode='reflect')\n"
    "    return F.conv2d(p, k2, groups=img.shape[0])[0]\n"
    "out += [blur(xf, 3, 0.8), blur(xf, 5, 1.7), blur(xf, 9, 3.0)]\n"
    /* colour (torchvision.transforms.functional_tensor) */
    "gray = (0.2989 * xf[0] + 0.587 * xf[1] + 0.114 * xf[2]).unsqueeze(0)\n"
    "blend = lambda a, b, r: (r * a + (1.0 - r) * b).clamp(0, 1.0)\n"
    "out += [gray, blend(xf, torch.zeros_like(xf), 1.3), blend(xf, torch.mean(gray, dim=(-3, -2, -1), keepdim=True), 0.6),\n"
    "        blend(xf, gray, 1.7), blend(xf, gray, 0.2)]\n"
    "def rgb2hsv(img):\n"
    "    r, g, b = img.unbind(0)\n"
    "    maxc = torch.max(img, 0)[0]; minc = torch.min(img, 0)[0]; eqc = maxc == minc\n"
    "    cr = maxc - minc; ones = torch.ones_like(maxc)\n"
    "    s = cr / torch.where(eqc, ones, maxc); crd = torch.where(eqc, ones, cr)\n"
    "    rc = (maxc - r) / crd; gc = (maxc - g) / crd; bc = (maxc - b) / crd\n"
    "    hr = (maxc == r) * (bc - gc); hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)\n"
    "    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)\n"
    "    h = torch.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)\n"
    "    return torch.stack((h, s, maxc))\n"
    "out += [rgb2hsv(xf)]\n";

Test(transforms, image_ops_match_pytorch) {
  th_require_torch();
  tfw_tensor *u8 = th_random(TFW_DTYPE_U8, 3, (int64_t[]){H, W, 3}, 0, 256, 1);
  tfw_tensor *xf = th_random(TFW_DTYPE_F32, 3, (int64_t[]){3, H, W}, 0, 1, 2);
  tfw_tensor *sq = th_random(TFW_DTYPE_F32, 3, (int64_t[]){3, 16, 16}, 0, 1, 3);
  /* grays and saturated colours make the HSV branches meet: put some in */
  float *pf = tfw_tensor_data(xf);
  for (int i = 0; i < 20; i++) pf[i] = pf[H * W + i] = pf[2 * H * W + i] = 0.25f * (float)(i % 5);
  pf[30] = 1, pf[H * W + 30] = 0, pf[2 * H * W + 30] = 0;
  enum { NOUT = 3 + 12 + 4 + 4 + 4 + 3 + 5 + 1 };
  tfw_tensor *ref[NOUT];
  th_torch_run(REF_PY, 3, (tfw_tensor *[]){u8, xf, sq}, NOUT, ref);
  tfw_tensor *got[NOUT];
  int k = 0;
  const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
  got[k++] = tfw_image_to_tensor(u8);
  got[k++] = tfw_image_to_tensor_normalize(u8, mean, std);
  got[k++] = tfw_image_normalize(xf, mean, std);
  int64_t sizes[4][2] = {{7, 9}, {26, 40}, {13, 5}, {4, 4}};
  for (int i = 0; i < 4; i++) {
    got[k++] = tfw_image_resize(xf, sizes[i][0], sizes[i][1], TFW_RESIZE_BILINEAR);
    got[k++] = tfw_image_resize(xf, sizes[i][0], sizes[i][1], TFW_RESIZE_AREA);
    got[k++] = tfw_image_resize(xf, sizes[i][0], sizes[i][1], TFW_RESIZE_NEAREST);
  }
  got[k++] = tfw_image_center_crop(xf, 8, 10);
  got[k++] = tfw_image_center_crop(xf, 12, 17);
  got[k++] = tfw_image_center_crop(xf, 4, 3);
  got[k++] = tfw_image_crop(xf, -1, 1, 10, 12);
  got[k++] = tfw_image_flip(xf, true);
  got[k++] = tfw_image_flip(xf, false);
  got[k++] = tfw_image_flip(u8, true);
  got[k++] = tfw_image_flip(u8, false);
  got[k++] = tfw_image_rotate(xf, 30.0, 0);
  got[k++] = tfw_image_rotate(xf, -123.5, 0);
  got[k++] = tfw_image_rotate(xf, 17.0, 0.5f);
  got[k++] = tfw_image_rotate(sq, 90.0, 0);
  got[k++] = tfw_image_gaussian_blur(xf, 3, 0.8);
  got[k++] = tfw_image_gaussian_blur(xf, 5, 1.7);
  got[k++] = tfw_image_gaussian_blur(xf, 9, 3.0);
  got[k++] = tfw_image_rgb_to_gray(xf);
  got[k++] = tfw_image_adjust_brightness(xf, 1.3);
  got[k++] = tfw_image_adjust_contrast(xf, 0.6);
  got[k++] = tfw_image_adjust_saturation(xf, 1.7);
  got[k++] = tfw_image_adjust_saturation(xf, 0.2);
  got[k++] = tfw_image_rgb_to_hsv(xf);
  cr_assert_eq(k, NOUT);
  const char *names[NOUT] = {"to_tensor", "to_tensor_normalize", "normalize"};
  for (int i = 0; i < NOUT; i++) {
    char what[64];
    snprintf(what, sizeof what, "output %d (%s)", i, names[i] ? names[i] : "");
    cr_assert(got[i], "%s: %s", what, tfw_last_error());
    double *rv = th_values(ref[i]);
    tfw_dtype dt = tfw_tensor_dtype(got[i]);
    /* to-tensor/normalize and index ops are exact; interpolation/blur/colour to f32 rounding
     * (rotate: the 90-degree case to 1e-6 because cos(pi/2) is not 0 in floating point) */
    double atol = i < 3 || (i >= 15 && i < 23) ? 0 : 2e-6;
    th_expect_close(got[i], dt, tfw_tensor_ndim(ref[i]), tfw_tensor_shape(ref[i]), rv, 0, atol, what);
    free(rv);
  }
  /* HSV round trip */
  tfw_tensor *back = tfw_image_hsv_to_rgb(got[NOUT - 1]);
  double *xv = th_values(xf);
  th_expect_close(back, TFW_DTYPE_F32, 3, (int64_t[]){3, H, W}, xv, 0, 2e-6, "hsv -> rgb");
  free(xv);
  tfw_release(back);
  for (int i = 0; i < NOUT; i++) tfw_release(got[i]), tfw_release(ref[i]);
  tfw_release(u8), tfw_release(xf), tfw_release(sq);
  th_expect_no_leaks();
}

/* to_tensor_normalize on sizes that exercise the vector loops' tails, 1 and 4 channels and a
 * non-contiguous input, against the naive formula. */
Test(transforms, to_tensor_normalize_naive) {
  int64_t cs[] = {1, 3, 4, 5};
  float mean[5] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f}, std[5] = {0.5f, 0.25f, 0.3f, 0.7f, 1.1f};
  for (int ci = 0; ci < 4; ci++)
    for (int64_t hw = 1; hw < 80; hw += 13) {
      int64_t C = cs[ci];
      tfw_tensor *x = th_random_strided(TFW_DTYPE_U8, 3, (int64_t[]){hw, 7, C}, 0, 256, (uint64_t)hw);
      tfw_tensor *y = tfw_image_to_tensor_normalize(x, mean, std);
      cr_assert(y, "%s", tfw_last_error());
      double *xv = th_values(x);
      double *ref = malloc(sizeof *ref * (size_t)(hw * 7 * C));
      for (int64_t c = 0; c < C; c++)
        for (int64_t i = 0; i < hw * 7; i++)
          ref[c * hw * 7 + i] = ((float)xv[i * C + c] / 255.0f - mean[c]) / std[c];
      th_expect_close(y, TFW_DTYPE_F32, 3, (int64_t[]){C, hw, 7}, ref, 0, 0, "naive normalize");
      free(xv), free(ref);
      tfw_release(x), tfw_release(y);
    }
  th_expect_no_leaks();
}

Test(transforms, one_hot_and_text) {
  tfw_tensor *lab = tfw_from_data(TFW_DTYPE_I64, 2, (int64_t[]){2, 2}, (int64_t[]){0, 3, 2, 3});
  tfw_tensor *oh = tfw_one_hot_f32(lab, 4);
  double ref[16] = {1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1};
  th_expect_close(oh, TFW_DTYPE_F32, 3, (int64_t[]){2, 2, 4}, ref, 0, 0, "one_hot");
  th_expect_error(tfw_one_hot_f32(lab, 3) ? TFW_OK : tfw_last_status(), TFW_EINDEX,
                  "label 3 at 1 is outside [0, 3)", "one_hot range");
  const char *s = "h\xc3\xa9llo \xe2\x82\xac!"; /* "héllo €!" */
  tfw_tensor *txt = tfw_from_data(TFW_DTYPE_U8, 1, (int64_t[]){(int64_t)strlen(s)}, s);
  tfw_tensor *b = tfw_text_to_ids(txt, TFW_TEXT_BYTES, NULL, 0, 0);
  double rb[11];
  for (int i = 0; i < 11; i++) rb[i] = (unsigned char)s[i];
  th_expect_close(b, TFW_DTYPE_I64, 1, (int64_t[]){11}, rb, 0, 0, "bytes");
  tfw_tensor *c = tfw_text_to_ids(txt, TFW_TEXT_CHARS, NULL, 0, 0);
  double rc[] = {'h', 0xE9, 'l', 'l', 'o', ' ', 0x20AC, '!'};
  th_expect_close(c, TFW_DTYPE_I64, 1, (int64_t[]){8}, rc, 0, 0, "chars");
  tfw_tensor *v = tfw_text_to_ids(txt, TFW_TEXT_CHARS, "lo\xe2\x82\xac" "h", -1, 6);
  double rv[] = {3, -1, 0, 0, 1, -1};
  th_expect_close(v, TFW_DTYPE_I64, 1, (int64_t[]){6}, rv, 0, 0, "vocab");
  const char *bad[] = {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"};
  for (int i = 0; i < 5; i++) {
    tfw_tensor *t = tfw_from_data(TFW_DTYPE_U8, 1, (int64_t[]){(int64_t)strlen(bad[i])}, bad[i]);
    th_expect_error(tfw_text_to_ids(t, TFW_TEXT_CHARS, NULL, 0, 0) ? TFW_OK : tfw_last_status(),
                    TFW_EFORMAT, "invalid UTF-8 at byte 0", "bad utf-8");
    tfw_release(t);
  }
  tfw_release(lab), tfw_release(oh), tfw_release(txt), tfw_release(b), tfw_release(c), tfw_release(v);
  th_expect_no_leaks();
}

static tfw_transform *make_aug(uint64_t seed) {
  tfw_transform *tr = tfw_transform_new(seed);
  const float mean[3] = {0.5f, 0.5f, 0.5f}, std[3] = {0.25f, 0.25f, 0.25f};
  cr_assert(tr);
  cr_assert_eq(tfw_transform_random_crop(tr, "image", 12, 12, 2), TFW_OK);
  cr_assert_eq(tfw_transform_random_flip(tr, "image", 0.5, 0.5), TFW_OK);
  cr_assert_eq(tfw_transform_to_tensor(tr, "image"), TFW_OK);
  cr_assert_eq(tfw_transform_rotate(tr, "image", -20, 20, 0), TFW_OK);
  cr_assert_eq(tfw_transform_color_jitter(tr, "image", 0.3, 0.3, 0.3), TFW_OK);
  cr_assert_eq(tfw_transform_gaussian_blur(tr, "image", 3, 0.1, 1.0), TFW_OK);
  cr_assert_eq(tfw_transform_resize(tr, "image", 8, 8, TFW_RESIZE_AREA), TFW_OK);
  cr_assert_eq(tfw_transform_normalize(tr, "image", 3, mean, std), TFW_OK);
  cr_assert_eq(tfw_transform_gaussian_noise(tr, "image", 0.05), TFW_OK);
  cr_assert_eq(tfw_transform_one_hot(tr, "label", 10), TFW_OK);
  return tr;
}

static tfw_dataset *make_ds(tfw_tensor **imgs, tfw_tensor **labs) {
  *imgs = th_random(TFW_DTYPE_U8, 4, (int64_t[]){40, 14, 14, 3}, 0, 256, 9);
  *labs = th_random(TFW_DTYPE_I64, 1, (int64_t[]){40}, 0, 10, 10);
  return tfw_dataset_from_tensors(2, (const char *[]){"image", "label"}, (tfw_tensor *[]){*imgs, *labs});
}

/* All batches of two epochs, concatenated per field into one f64 array. */
static double *run_loader(tfw_dataset *ds, tfw_transform *tr, bool as_batch_map, int workers,
                          int64_t *count) {
  tfw_loader_options o = tfw_loader_options_default();
  o.batch_size = 8, o.shuffle = true, o.seed = 3, o.num_workers = workers;
  tfw_dataset *use = ds;
  if (as_batch_map) o.batch_map = tfw_transform_batch_fn, o.batch_map_ctx = tr;
  else use = tfw_dataset_transform(ds, tr);
  cr_assert(use, "%s", tfw_last_error());
  tfw_loader *l = tfw_loader_new(use, &o);
  cr_assert(l, "%s", tfw_last_error());
  double *all = NULL;
  int64_t n = 0;
  tfw_sample b = {0};
  for (int e = 0; e < 2; e++)
    for (;;) {
      tfw_status st = tfw_loader_next(l, &b);
      cr_assert_eq(st, TFW_OK, "%s", tfw_last_error());
      if (b.n == 0) break;
      for (int f = 0; f < b.n; f++) {
        double *v = th_values(b.tensors[f]);
        int64_t m = tfw_tensor_numel(b.tensors[f]);
        all = realloc(all, sizeof *all * (size_t)(n + m));
        memcpy(all + n, v, sizeof *v * (size_t)m);
        n += m;
        free(v);
      }
      tfw_sample_clear(&b);
    }
  tfw_loader_free(l);
  if (use != ds) tfw_dataset_release(use);
  *count = n;
  return all;
}

Test(transforms, pipeline_reproducible_for_any_worker_count) {
  tfw_tensor *imgs, *labs;
  tfw_dataset *ds = make_ds(&imgs, &labs);
  tfw_transform *tr = make_aug(42);
  int64_t n0, n2, nd, nd2;
  double *a0 = run_loader(ds, tr, true, 0, &n0);
  double *a2 = run_loader(ds, tr, true, 2, &n2);
  double *d0 = run_loader(ds, tr, false, 0, &nd);
  double *d2 = run_loader(ds, tr, false, 3, &nd2);
  cr_assert(n0 == n2 && n0 == nd && n0 == nd2 && n0 > 0);
  /* batch_map and the dataset wrapper see the same (index, epoch): identical results */
  cr_assert(memcmp(a0, a2, sizeof *a0 * (size_t)n0) == 0, "batch_map: 0 vs 2 workers differ");
  cr_assert(memcmp(a0, d0, sizeof *a0 * (size_t)n0) == 0, "batch_map vs dataset_transform differ");
  cr_assert(memcmp(d0, d2, sizeof *a0 * (size_t)n0) == 0, "dataset_transform: 0 vs 3 workers");
  free(a0), free(a2), free(d0), free(d2);
  /* direct application: same (index, epoch) -> same; another epoch or seed -> different */
  tfw_sample s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0};
  tfw_dataset_get(ds, 5, &s1), tfw_dataset_get(ds, 5, &s2), tfw_dataset_get(ds, 5, &s3);
  tfw_dataset_get(ds, 5, &s4);
  tfw_transform *other = make_aug(43);
  cr_assert_eq(tfw_transform_apply(tr, &s1, 5, 1), TFW_OK, "%s", tfw_last_error());
  cr_assert_eq(tfw_transform_apply(tr, &s2, 5, 1), TFW_OK);
  cr_assert_eq(tfw_transform_apply(tr, &s3, 5, 2), TFW_OK);
  cr_assert_eq(tfw_transform_apply(other, &s4, 5, 1), TFW_OK);
  tfw_tensor *i1 = tfw_sample_get(&s1, "image");
  cr_assert_eq(tfw_tensor_dtype(i1), TFW_DTYPE_F32);
  cr_assert(tfw_tensor_shape(i1)[0] == 3 && tfw_tensor_shape(i1)[1] == 8 && tfw_tensor_shape(i1)[2] == 8);
  bool eq12 = false, eq13 = true, eq14 = true;
  tfw_equal(i1, tfw_sample_get(&s2, "image"), &eq12);
  tfw_equal(i1, tfw_sample_get(&s3, "image"), &eq13);
  tfw_equal(i1, tfw_sample_get(&s4, "image"), &eq14);
  cr_assert(eq12 && !eq13 && !eq14, "same %d, other epoch %d, other seed %d", eq12, eq13, eq14);
  tfw_sample_clear(&s1), tfw_sample_clear(&s2), tfw_sample_clear(&s3), tfw_sample_clear(&s4);
  tfw_transform_free(tr), tfw_transform_free(other);
  tfw_dataset_release(ds);
  tfw_release(imgs), tfw_release(labs);
  th_expect_no_leaks();
}

/* The random steps' draws: crop positions cover every offset, flips happen about p of the
 * time, noise has the requested std. */
Test(transforms, random_step_statistics) {
  tfw_tensor *img = tfw_zeros(TFW_DTYPE_U8, 3, (int64_t[]){6, 6, 1});
  uint8_t *p = tfw_tensor_data(img);
  for (int i = 0; i < 36; i++) p[i] = (uint8_t)(i + 1);
  tfw_transform *crop = tfw_transform_new(1);
  tfw_transform_random_crop(crop, "x", 4, 4, 0);
  tfw_transform *flip = tfw_transform_new(2);
  tfw_transform_random_flip(flip, "x", 0.3, 0);
  int seen[9] = {0}, flips = 0;
  for (int64_t i = 0; i < 2000; i++) {
    tfw_sample s = {0};
    tfw_sample_add(&s, "x", img);
    cr_assert_eq(tfw_transform_apply(crop, &s, i, 0), TFW_OK);
    uint8_t first = ((uint8_t *)tfw_tensor_data(s.tensors[0]))[0];
    int top = (first - 1) / 6, left = (first - 1) % 6;
    cr_assert(top <= 2 && left <= 2);
    seen[top * 3 + left]++;
    tfw_sample_clear(&s);
    tfw_sample_add(&s, "x", img);
    tfw_transform_apply(flip, &s, i, 0);
    flips += ((uint8_t *)tfw_tensor_data(s.tensors[0]))[0] == 6;
    tfw_sample_clear(&s);
  }
  for (int k = 0; k < 9; k++) cr_assert(seen[k] > 150 && seen[k] < 300, "offset %d seen %d times", k, seen[k]);
  cr_assert(flips > 520 && flips < 680, "%d flips of 2000 at p = 0.3", flips);
  tfw_transform *noise = tfw_transform_new(3);
  tfw_transform_gaussian_noise(noise, "x", 0.5);
  tfw_tensor *z = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){3, 64, 64});
  tfw_sample s = {0};
  tfw_sample_add(&s, "x", z);
  tfw_transform_apply(noise, &s, 0, 0);
  double *v = th_values(s.tensors[0]), m = 0, m2 = 0;
  for (int i = 0; i < 3 * 64 * 64; i++) m += v[i], m2 += v[i] * v[i];
  m /= 3 * 64 * 64, m2 /= 3 * 64 * 64;
  cr_assert(fabs(m) < 0.03 && fabs(sqrt(m2 - m * m) - 0.5) < 0.02, "noise mean %g std %g", m,
            sqrt(m2 - m * m));
  free(v);
  tfw_sample_clear(&s);
  tfw_transform_free(crop), tfw_transform_free(flip), tfw_transform_free(noise);
  tfw_release(img), tfw_release(z);
  th_expect_no_leaks();
}

Test(transforms, errors) {
  tfw_tensor *u8 = tfw_zeros(TFW_DTYPE_U8, 3, (int64_t[]){4, 4, 3});
  tfw_tensor *f = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){3, 4, 4});
  th_expect_error(tfw_image_resize(u8, 2, 2, TFW_RESIZE_BILINEAR) ? TFW_OK : tfw_last_status(),
                  TFW_EDTYPE, "apply to_tensor first", "resize u8");
  th_expect_error(tfw_image_resize(f, 0, 2, TFW_RESIZE_BILINEAR) ? TFW_OK : tfw_last_status(),
                  TFW_EVALUE, "output size 0 x 2", "resize 0");
  th_expect_error(tfw_image_gaussian_blur(f, 9, 1.0) ? TFW_OK : tfw_last_status(), TFW_ESHAPE,
                  "reflect padding", "blur too big");
  th_expect_error(tfw_image_gaussian_blur(f, 4, 1.0) ? TFW_OK : tfw_last_status(), TFW_EVALUE,
                  "ksize 4", "blur even");
  th_expect_error(tfw_image_to_tensor(f) ? TFW_OK : tfw_last_status(), TFW_EDTYPE, "expected uint8",
                  "to_tensor f32");
  tfw_tensor *f1 = tfw_zeros(TFW_DTYPE_F32, 3, (int64_t[]){1, 4, 4});
  th_expect_error(tfw_image_rgb_to_hsv(f1) ? TFW_OK : tfw_last_status(), TFW_ESHAPE, "[3, H, W]",
                  "hsv 1 channel");
  tfw_transform *tr = tfw_transform_new(0);
  th_expect_error(tfw_transform_random_flip(tr, "image", 1.5, 0), TFW_EVALUE, "not in [0, 1]", "p");
  th_expect_error(tfw_transform_normalize(tr, "image", 3, (float[]){0, 0, 0}, (float[]){1, 0, 1}),
                  TFW_EVALUE, "std[1] is 0", "std 0");
  th_expect_error(tfw_transform_resize(tr, "", 2, 2, TFW_RESIZE_AREA), TFW_EVALUE, "field name",
                  "empty field");
  cr_assert_eq(tfw_transform_random_crop(tr, "image", 8, 8, 1), TFW_OK);
  tfw_sample s = {0};
  tfw_sample_add(&s, "label", u8);
  th_expect_error(tfw_transform_apply(tr, &s, 0, 0), TFW_EVALUE, "needs field 'image'", "missing");
  tfw_sample_clear(&s);
  tfw_sample_add(&s, "image", u8);
  th_expect_error(tfw_transform_apply(tr, &s, 0, 0), TFW_ESHAPE, "smaller than the crop", "crop");
  tfw_sample_clear(&s);
  tfw_transform_free(tr);
  tfw_release(u8), tfw_release(f), tfw_release(f1);
  th_expect_no_leaks();
}
