/* Image kernels for the transform pipeline: to-tensor/normalize, resize, crop, flip, rotate,
 * Gaussian blur, colour adjustments and RGB <-> gray/HSV. Semantics are torchvision's tensor
 * transforms, formula for formula (tests compare with PyTorch). Letters: C channels, H rows,
 * W columns; CHW f32 unless said.
 *
 * Vectorisation: the per-pixel loops (u8 -> f32 normalise, colour conversions, blends) are
 * plain loops over contiguous planes, compiled by TFW_CLONES for AVX-512, AVX2 and baseline
 * x86-64 and chosen at load time from cpuid (the same mechanism as normalize_u8). No
 * -ffast-math: divisions stay IEEE, so to_tensor_normalize equals ToTensor + Normalize bit for
 * bit. The HWC -> CHW de-interleave is specialised for C = 1, 3, 4 so the compiler sees a
 * constant stride (it emits shuffles instead of gathers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

/* ---- image shape helpers ------------------------------------------------------------------ */
typedef struct img_geom {
  int64_t C, H, W;
  bool hwc; /* u8 rank 3 */
} img_geom;

static tfw_status geom_of(const char *op, const tfw_tensor *t, img_geom *g) {
  memset(g, 0, sizeof *g);
  if (tfw__check_tensor(op, "img", t)) return tfw_last_status();
  char sh[TFW__SHAPE_BUF];
  if (t->ndim == 2) {
    g->C = 1, g->H = t->shape[0], g->W = t->shape[1], g->hwc = false;
  } else if (t->ndim == 3) {
    g->hwc = t->dtype == TFW_DTYPE_U8;
    if (g->hwc) g->H = t->shape[0], g->W = t->shape[1], g->C = t->shape[2];
    else g->C = t->shape[0], g->H = t->shape[1], g->W = t->shape[2];
  } else {
    return tfw__error(TFW_ESHAPE, "%s: img is %s, expected [C, H, W], u8 [H, W, C] or [H, W]", op,
                      tfw__shape_str(sh, sizeof sh, t->ndim, t->shape));
  }
  return TFW_OK;
}

/* f32 CHW input as a contiguous tensor (or an error naming op). */
static tfw_tensor *f32_chw(const char *op, const tfw_tensor *t, img_geom *g) {
  if (geom_of(op, t, g)) return NULL;
  if (t->dtype != TFW_DTYPE_F32) {
    tfw__error(TFW_EDTYPE, "%s: img is %s, expected float32 [C, H, W] (apply to_tensor first)", op,
               tfw_dtype_name(t->dtype));
    return NULL;
  }
  return tfw__as_contiguous(t, TFW_DTYPE_F32);
}

static tfw_tensor *new_like_chw(const char *op, const tfw_tensor *in, int64_t C, int64_t H,
                                int64_t W) {
  if (in->ndim == 2) return tfw__tensor_new(op, TFW_DTYPE_F32, 2, (int64_t[]){H, W});
  return tfw__tensor_new(op, TFW_DTYPE_F32, 3, (int64_t[]){C, H, W});
}

/* ---- to-tensor and normalize ------------------------------------------------------------------ */
#define DEINTERLEAVE(CC)                                                                   \
  TFW_CLONES static void deint_norm_##CC(const uint8_t *restrict x, float *restrict out,   \
                                         int64_t n, const float *mean, const float *std) { \
    for (int c = 0; c < CC; c++) {                                                         \
      float m = mean[c], s = std[c];                                                       \
      float *restrict o = out + (int64_t)c * n;                                            \
      for (int64_t i = 0; i < n; i++) o[i] = ((float)x[i * CC + c] / 255.0f - m) / s;      \
    }                                                                                      \
  }
DEINTERLEAVE(1)
DEINTERLEAVE(3)
DEINTERLEAVE(4)

static void deint_norm_any(const uint8_t *x, float *out, int64_t n, int64_t C, const float *mean,
                           const float *std) {
  for (int64_t c = 0; c < C; c++)
    for (int64_t i = 0; i < n; i++) out[c * n + i] = ((float)x[i * C + c] / 255.0f - mean[c]) / std[c];
}

static tfw_tensor *to_tensor_impl(const char *op, const tfw_tensor *img, const float *mean,
                                  const float *std) {
  img_geom g;
  if (geom_of(op, img, &g)) return NULL;
  if (img->dtype != TFW_DTYPE_U8) {
    tfw__error(TFW_EDTYPE, "%s: img is %s, expected uint8 [H, W, C] or [H, W]", op,
               tfw_dtype_name(img->dtype));
    return NULL;
  }
  if (g.C > 4096) {
    tfw__error(TFW_ESHAPE, "%s: %lld channels", op, (long long)g.C);
    return NULL;
  }
  float zeros[4096], ones[4096];
  if (!mean) {
    for (int64_t c = 0; c < g.C; c++) zeros[c] = 0.0f, ones[c] = 1.0f;
    mean = zeros, std = ones;
  }
  for (int64_t c = 0; c < g.C; c++)
    if (std[c] == 0.0f || std[c] != std[c]) {
      tfw__error(TFW_EVALUE, "%s: std[%lld] is %g", op, (long long)c, (double)std[c]);
      return NULL;
    }
  tfw_tensor *x = tfw__as_contiguous(img, TFW_DTYPE_U8);
  if (!x) return NULL;
  tfw_tensor *out = tfw__tensor_new(op, TFW_DTYPE_F32, 3, (int64_t[]){g.C, g.H, g.W});
  if (out) {
    const uint8_t *px = (const uint8_t *)tfw__data(x);
    float *po = (float *)tfw__data(out);
    int64_t n = g.H * g.W;
    /* x / 255 - 0 divided by 1 is x / 255 exactly: one kernel for both entry points */
    if (g.C == 1) deint_norm_1(px, po, n, mean, std);
    else if (g.C == 3) deint_norm_3(px, po, n, mean, std);
    else if (g.C == 4) deint_norm_4(px, po, n, mean, std);
    else deint_norm_any(px, po, n, g.C, mean, std);
  }
  tfw_release(x);
  return out;
}

tfw_tensor *tfw_image_to_tensor(const tfw_tensor *img) {
  return to_tensor_impl("image_to_tensor", img, NULL, NULL);
}

tfw_tensor *tfw_image_to_tensor_normalize(const tfw_tensor *img, const float *mean,
                                          const float *std) {
  if (!mean || !std) {
    tfw__error(TFW_EVALUE, "image_to_tensor_normalize: mean or std is NULL");
    return NULL;
  }
  return to_tensor_impl("image_to_tensor_normalize", img, mean, std);
}

TFW_CLONES static void norm_plane(float *restrict o, const float *restrict x, int64_t n, float m,
                                  float s) {
  for (int64_t i = 0; i < n; i++) o[i] = (x[i] - m) / s;
}

tfw_tensor *tfw_image_normalize(const tfw_tensor *img, const float *mean, const float *std) {
  const char *op = "image_normalize";
  img_geom g;
  if (!mean || !std) {
    tfw__error(TFW_EVALUE, "%s: mean or std is NULL", op);
    return NULL;
  }
  tfw_tensor *x = f32_chw(op, img, &g);
  if (!x) return NULL;
  tfw_tensor *out = NULL;
  for (int64_t c = 0; c < g.C; c++)
    if (std[c] == 0.0f || std[c] != std[c]) {
      tfw__error(TFW_EVALUE, "%s: std[%lld] is %g", op, (long long)c, (double)std[c]);
      goto done;
    }
  out = new_like_chw(op, img, g.C, g.H, g.W);
  if (out)
    for (int64_t c = 0; c < g.C; c++)
      norm_plane((float *)tfw__data(out) + c * g.H * g.W, (const float *)tfw__data(x) + c * g.H * g.W,
                 g.H * g.W, mean[c], std[c]);
done:
  tfw_release(x);
  return out;
}

/* ---- resize --------------------------------------------------------------------------------- */
/* PyTorch's area_pixel_compute_source_index for align_corners=False, in float as its CPU
 * kernel computes for f32: src = max(scale * (dst + 0.5) - 0.5, 0). */
static void bilinear_weights(int64_t in, int64_t out, int64_t *i0, int64_t *i1, float *l0,
                             float *l1) {
  float scale = (float)in / (float)out;
  for (int64_t d = 0; d < out; d++) {
    float src = scale * ((float)d + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int64_t a = (int64_t)src;
    if (a > in - 1) a = in - 1;
    i0[d] = a, i1[d] = a + (a < in - 1 ? 1 : 0);
    l1[d] = src - (float)a, l0[d] = 1.0f - l1[d];
  }
}

tfw_tensor *tfw_image_resize(const tfw_tensor *img, int64_t h, int64_t w, tfw_resize_mode mode) {
  const char *op = "image_resize";
  img_geom g;
  if (h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20)) {
    tfw__error(TFW_EVALUE, "%s: output size %lld x %lld, expected 1..2^20", op, (long long)h,
               (long long)w);
    return NULL;
  }
  if (mode != TFW_RESIZE_BILINEAR && mode != TFW_RESIZE_AREA && mode != TFW_RESIZE_NEAREST) {
    tfw__error(TFW_EVALUE, "%s: unknown mode %d", op, (int)mode);
    return NULL;
  }
  tfw_tensor *x = f32_chw(op, img, &g);
  if (!x) return NULL;
  if (g.H < 1 || g.W < 1) {
    tfw__error(TFW_ESHAPE, "%s: empty image (%lld x %lld)", op, (long long)g.H, (long long)g.W);
    tfw_release(x);
    return NULL;
  }
  tfw_tensor *out = new_like_chw(op, img, g.C, h, w);
  int64_t *iy0 = tfw__malloc(sizeof(int64_t) * (size_t)(2 * (h + w)));
  float *ly = tfw__malloc(sizeof(float) * (size_t)(2 * (h + w)));
  if (!out || !iy0 || !ly) {
    if (out && (!iy0 || !ly)) tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    tfw_release(out), out = NULL;
    goto done;
  }
  int64_t *iy1 = iy0 + h, *ix0 = iy0 + 2 * h, *ix1 = ix0 + w;
  float *ly0 = ly, *ly1 = ly + h, *lx0 = ly + 2 * h, *lx1 = lx0 + w;
  const float *src = (const float *)tfw__data(x);
  float *dst = (float *)tfw__data(out);
  if (mode == TFW_RESIZE_BILINEAR) {
    bilinear_weights(g.H, h, iy0, iy1, ly0, ly1);
    bilinear_weights(g.W, w, ix0, ix1, lx0, lx1);
    for (int64_t c = 0; c < g.C; c++) {
      const float *p = src + c * g.H * g.W;
      for (int64_t y = 0; y < h; y++) {
        const float *r0 = p + iy0[y] * g.W, *r1 = p + iy1[y] * g.W;
        float *o = dst + (c * h + y) * w;
        for (int64_t xx = 0; xx < w; xx++)
          o[xx] = ly0[y] * (lx0[xx] * r0[ix0[xx]] + lx1[xx] * r0[ix1[xx]]) +
                  ly1[y] * (lx0[xx] * r1[ix0[xx]] + lx1[xx] * r1[ix1[xx]]);
      }
    }
  } else if (mode == TFW_RESIZE_NEAREST) {
    float sy = (float)g.H / (float)h, sx = (float)g.W / (float)w;
    for (int64_t y = 0; y < h; y++) {
      int64_t v = (int64_t)floorf((float)y * sy);
      iy0[y] = v < g.H - 1 ? v : g.H - 1;
    }
    for (int64_t xx = 0; xx < w; xx++) {
      int64_t v = (int64_t)floorf((float)xx * sx);
      ix0[xx] = v < g.W - 1 ? v : g.W - 1;
    }
    for (int64_t c = 0; c < g.C; c++)
      for (int64_t y = 0; y < h; y++)
        for (int64_t xx = 0; xx < w; xx++)
          dst[(c * h + y) * w + xx] = src[(c * g.H + iy0[y]) * g.W + ix0[xx]];
  } else { /* adaptive average pooling: bin [floor(i*in/out), ceil((i+1)*in/out)) */
    for (int64_t y = 0; y < h; y++) iy0[y] = y * g.H / h, iy1[y] = ((y + 1) * g.H + h - 1) / h;
    for (int64_t xx = 0; xx < w; xx++)
      ix0[xx] = xx * g.W / w, ix1[xx] = ((xx + 1) * g.W + w - 1) / w;
    for (int64_t c = 0; c < g.C; c++)
      for (int64_t y = 0; y < h; y++)
        for (int64_t xx = 0; xx < w; xx++) {
          float sum = 0;
          for (int64_t a = iy0[y]; a < iy1[y]; a++)
            for (int64_t b = ix0[xx]; b < ix1[xx]; b++) sum += src[(c * g.H + a) * g.W + b];
          dst[(c * h + y) * w + xx] = sum / (float)((iy1[y] - iy0[y]) * (ix1[xx] - ix0[xx]));
        }
  }
done:
  tfw__free(iy0);
  tfw__free(ly);
  tfw_release(x);
  return out;
}

/* ---- crop and flip (any dtype, HWC or CHW) ---------------------------------------------------- */
tfw_tensor *tfw_image_crop(const tfw_tensor *img, int64_t top, int64_t left, int64_t h, int64_t w) {
  const char *op = "image_crop";
  img_geom g;
  if (geom_of(op, img, &g)) return NULL;
  if (h < 1 || w < 1 || h > (1 << 20) || w > (1 << 20) || llabs(top) > (1 << 20) ||
      llabs(left) > (1 << 20)) {
    tfw__error(TFW_EVALUE, "%s: crop %lld x %lld at (%lld, %lld) is out of range", op,
               (long long)h, (long long)w, (long long)top, (long long)left);
    return NULL;
  }
  tfw_tensor *x = tfw_contiguous(img);
  if (!x) return NULL;
  int64_t shape[3];
  if (img->ndim == 2) shape[0] = h, shape[1] = w;
  else if (g.hwc) shape[0] = h, shape[1] = w, shape[2] = g.C;
  else shape[0] = g.C, shape[1] = h, shape[2] = w;
  tfw_tensor *out = tfw_zeros(img->dtype, img->ndim, shape);
  if (out) {
    size_t es = tfw_dtype_size(img->dtype);
    int64_t pc = g.hwc ? g.C : 1, planes = g.hwc ? 1 : g.C; /* elements per pixel, planes */
    int64_t x0 = left > 0 ? left : 0, x1 = left + w < g.W ? left + w : g.W;
    const char *s = tfw__data(x);
    char *d = tfw__data(out);
    if (x1 > x0)
      for (int64_t p = 0; p < planes; p++)
        for (int64_t y = 0; y < h; y++) {
          int64_t sy = top + y;
          if (sy < 0 || sy >= g.H) continue;
          memcpy(d + (((p * h + y) * w + (x0 - left)) * pc) * (int64_t)es,
                 s + (((p * g.H + sy) * g.W + x0) * pc) * (int64_t)es, (size_t)((x1 - x0) * pc) * es);
        }
  }
  tfw_release(x);
  return out;
}

tfw_tensor *tfw_image_center_crop(const tfw_tensor *img, int64_t h, int64_t w) {
  img_geom g;
  if (geom_of("image_center_crop", img, &g)) return NULL;
  /* Python's round(): half to even, as nearbyint in the default rounding mode */
  int64_t top = (int64_t)nearbyint((double)(g.H - h) / 2.0);
  int64_t left = (int64_t)nearbyint((double)(g.W - w) / 2.0);
  return tfw_image_crop(img, top, left, h, w);
}

tfw_tensor *tfw_image_flip(const tfw_tensor *img, bool horizontal) {
  img_geom g;
  if (geom_of("image_flip", img, &g)) return NULL;
  tfw_tensor *x = tfw_contiguous(img);
  if (!x) return NULL;
  tfw_tensor *out = tfw__tensor_new("image_flip", img->dtype, img->ndim, img->shape);
  if (out) {
    size_t es = tfw_dtype_size(img->dtype);
    int64_t pc = g.hwc ? g.C : 1, planes = g.hwc ? 1 : g.C;
    size_t px = (size_t)pc * es, row = px * (size_t)g.W;
    const char *s = tfw__data(x);
    char *d = tfw__data(out);
    for (int64_t p = 0; p < planes; p++)
      for (int64_t y = 0; y < g.H; y++) {
        const char *sr = s + (size_t)(p * g.H + y) * row;
        char *dr = d + (size_t)(p * g.H + (horizontal ? y : g.H - 1 - y)) * row;
        if (!horizontal) memcpy(dr, sr, row);
        else
          for (int64_t xx = 0; xx < g.W; xx++) memcpy(dr + (size_t)(g.W - 1 - xx) * px, sr + (size_t)xx * px, px);
      }
  }
  tfw_release(x);
  return out;
}

/* ---- rotate ------------------------------------------------------------------------------------ */
tfw_tensor *tfw_image_rotate(const tfw_tensor *img, double degrees, float fill) {
  const char *op = "image_rotate";
  img_geom g;
  if (!isfinite(degrees)) {
    tfw__error(TFW_EVALUE, "%s: degrees is %g", op, degrees);
    return NULL;
  }
  tfw_tensor *x = f32_chw(op, img, &g);
  if (!x) return NULL;
  tfw_tensor *out = new_like_chw(op, img, g.C, g.H, g.W);
  if (out) {
    /* output pixel centre (xc, yc) relative to the image centre maps to the input point
     * (cos a xc - sin a yc, sin a xc + cos a yc): torchvision's inverse affine matrix for
     * rotate(angle) fed to grid_sample(align_corners=False) */
    double a = degrees * M_PI / 180.0, ca = cos(a), sa = sin(a);
    const float *src = (const float *)tfw__data(x);
    float *dst = (float *)tfw__data(out);
    for (int64_t y = 0; y < g.H; y++)
      for (int64_t xx = 0; xx < g.W; xx++) {
        double xc = (double)xx - g.W * 0.5 + 0.5, yc = (double)y - g.H * 0.5 + 0.5;
        double ix = ca * xc - sa * yc + g.W * 0.5 - 0.5, iy = sa * xc + ca * yc + g.H * 0.5 - 0.5;
        double fx = floor(ix), fy = floor(iy);
        int64_t x0 = (int64_t)fx, y0 = (int64_t)fy;
        double wx1 = ix - fx, wy1 = iy - fy, w[4] = {(1 - wx1) * (1 - wy1), wx1 * (1 - wy1),
                                                     (1 - wx1) * wy1, wx1 * wy1};
        int64_t cx[4] = {x0, x0 + 1, x0, x0 + 1}, cy[4] = {y0, y0, y0 + 1, y0 + 1};
        double mask = 0;
        for (int k = 0; k < 4; k++)
          if (cx[k] >= 0 && cx[k] < g.W && cy[k] >= 0 && cy[k] < g.H) mask += w[k];
        for (int64_t c = 0; c < g.C; c++) {
          double v = 0;
          for (int k = 0; k < 4; k++)
            if (cx[k] >= 0 && cx[k] < g.W && cy[k] >= 0 && cy[k] < g.H)
              v += w[k] * src[(c * g.H + cy[k]) * g.W + cx[k]];
          /* torchvision with a fill: img * mask + (1 - mask) * fill, mask being the bilinear
           * sample of an all-ones channel (so edge pixels are scaled twice, as there) */
          dst[(c * g.H + y) * g.W + xx] =
              fill != 0.0f ? (float)(v * mask + (1 - mask) * fill) : (float)v;
        }
      }
  }
  tfw_release(x);
  return out;
}

/* ---- Gaussian blur ------------------------------------------------------------------------------- */
static int64_t reflect(int64_t i, int64_t n) {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

tfw_tensor *tfw_image_gaussian_blur(const tfw_tensor *img, int ksize, double sigma) {
  const char *op = "image_gaussian_blur";
  img_geom g;
  if (ksize < 1 || ksize % 2 == 0 || ksize > 1001 || !(sigma > 0) || !isfinite(sigma)) {
    tfw__error(TFW_EVALUE, "%s: ksize %d (odd, 1..1001) and sigma %g (> 0) expected", op, ksize,
               sigma);
    return NULL;
  }
  tfw_tensor *x = f32_chw(op, img, &g);
  if (!x) return NULL;
  int64_t r = ksize / 2;
  if (r >= g.H || r >= g.W) {
    tfw__error(TFW_ESHAPE, "%s: kernel %d needs reflect padding %lld < H and W, image is %lld x %lld",
               op, ksize, (long long)r, (long long)g.H, (long long)g.W);
    tfw_release(x);
    return NULL;
  }
  tfw_tensor *out = new_like_chw(op, img, g.C, g.H, g.W);
  float *k = tfw__malloc(sizeof(float) * (size_t)ksize);
  float *tmp = tfw__malloc(sizeof(float) * (size_t)(g.H * g.W));
  if (!out || !k || !tmp) {
    if (out) tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    tfw_release(out), out = NULL;
    goto done;
  }
  /* torchvision _get_gaussian_kernel1d: x = linspace(-(k-1)/2, (k-1)/2, k), pdf / sum (f32) */
  float sum = 0;
  for (int i = 0; i < ksize; i++) {
    float t = (float)(i - r) / (float)sigma;
    k[i] = expf(-0.5f * t * t);
    sum += k[i];
  }
  for (int i = 0; i < ksize; i++) k[i] /= sum;
  const float *src = (const float *)tfw__data(x);
  float *dst = (float *)tfw__data(out);
  for (int64_t c = 0; c < g.C; c++) {
    const float *p = src + c * g.H * g.W;
    for (int64_t y = 0; y < g.H; y++) /* vertical pass */
      for (int64_t xx = 0; xx < g.W; xx++) {
        float v = 0;
        for (int i = 0; i < ksize; i++) v += k[i] * p[reflect(y + i - r, g.H) * g.W + xx];
        tmp[y * g.W + xx] = v;
      }
    for (int64_t y = 0; y < g.H; y++) /* horizontal pass */
      for (int64_t xx = 0; xx < g.W; xx++) {
        float v = 0;
        for (int i = 0; i < ksize; i++) v += k[i] * tmp[y * g.W + reflect(xx + i - r, g.W)];
        dst[(c * g.H + y) * g.W + xx] = v;
      }
  }
done:
  tfw__free(k);
  tfw__free(tmp);
  tfw_release(x);
  return out;
}

/* ---- colour ----------------------------------------------------------------------------------------- */
TFW_CLONES static void gray_plane(float *restrict o, const float *restrict r, const float *restrict g,
                                  const float *restrict b, int64_t n) {
  for (int64_t i = 0; i < n; i++) o[i] = 0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i];
}

TFW_CLONES static void blend_plane(float *restrict o, const float *restrict a, const float *restrict b,
                                   float bconst, bool use_b, float ratio, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float v = ratio * a[i] + (1.0f - ratio) * (use_b ? b[i] : bconst);
    o[i] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
  }
}

static tfw_tensor *rgb_input(const char *op, const tfw_tensor *img, img_geom *g) {
  tfw_tensor *x = f32_chw(op, img, g);
  if (x && (img->ndim != 3 || g->C != 3)) {
    char sh[TFW__SHAPE_BUF];
    tfw__error(TFW_ESHAPE, "%s: img is %s, expected [3, H, W] (RGB)", op,
               tfw__shape_str(sh, sizeof sh, img->ndim, img->shape));
    tfw_release(x);
    return NULL;
  }
  return x;
}

tfw_tensor *tfw_image_rgb_to_gray(const tfw_tensor *img) {
  img_geom g;
  tfw_tensor *x = rgb_input("image_rgb_to_gray", img, &g);
  if (!x) return NULL;
  int64_t n = g.H * g.W;
  tfw_tensor *out = tfw__tensor_new("image_rgb_to_gray", TFW_DTYPE_F32, 3, (int64_t[]){1, g.H, g.W});
  const float *p = (const float *)tfw__data(x);
  if (out) gray_plane((float *)tfw__data(out), p, p + n, p + 2 * n, n);
  tfw_release(x);
  return out;
}

static tfw_tensor *adjust(const char *op, const tfw_tensor *img, double factor, int kind) {
  img_geom g;
  if (!(factor >= 0) || !isfinite(factor)) {
    tfw__error(TFW_EVALUE, "%s: factor %g, expected >= 0", op, factor);
    return NULL;
  }
  tfw_tensor *x = kind == 0 ? f32_chw(op, img, &g) : rgb_input(op, img, &g);
  if (!x) return NULL;
  int64_t n = g.H * g.W;
  tfw_tensor *out = new_like_chw(op, img, g.C, g.H, g.W);
  float *gray = kind ? tfw__malloc(sizeof(float) * (size_t)(n ? n : 1)) : NULL;
  if (!out || (kind && !gray)) {
    if (out) tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    tfw_release(out), out = NULL;
    goto done;
  }
  const float *p = (const float *)tfw__data(x);
  float *o = (float *)tfw__data(out);
  float mean = 0;
  if (kind) gray_plane(gray, p, p + n, p + 2 * n, n);
  if (kind == 1) { /* contrast: the mean of the grayscale image (torch.mean, f32; summed in f64) */
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += gray[i];
    mean = n ? (float)(s / (double)n) : 0.0f;
  }
  for (int64_t c = 0; c < g.C; c++)
    blend_plane(o + c * n, p + c * n, gray, kind == 1 ? mean : 0.0f, kind == 2, (float)factor, n);
done:
  tfw__free(gray);
  tfw_release(x);
  return out;
}

tfw_tensor *tfw_image_adjust_brightness(const tfw_tensor *img, double factor) {
  return adjust("image_adjust_brightness", img, factor, 0);
}
tfw_tensor *tfw_image_adjust_contrast(const tfw_tensor *img, double factor) {
  return adjust("image_adjust_contrast", img, factor, 1);
}
tfw_tensor *tfw_image_adjust_saturation(const tfw_tensor *img, double factor) {
  return adjust("image_adjust_saturation", img, factor, 2);
}

/* torchvision _rgb2hsv, element for element */
TFW_CLONES static void rgb2hsv_plane(float *restrict oh, float *restrict os, float *restrict ov,
                                     const float *restrict r, const float *restrict g,
                                     const float *restrict b, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float R = r[i], G = g[i], B = b[i];
    float maxc = fmaxf(R, fmaxf(G, B)), minc = fminf(R, fminf(G, B));
    bool eqc = maxc == minc;
    float cr = maxc - minc;
    float s = cr / (eqc ? 1.0f : maxc);
    float crd = eqc ? 1.0f : cr;
    float rc = (maxc - R) / crd, gc = (maxc - G) / crd, bc = (maxc - B) / crd;
    float hr = maxc == R ? bc - gc : 0.0f;
    float hg = (maxc == G && maxc != R) ? 2.0f + rc - bc : 0.0f;
    float hb = (maxc != G && maxc != R) ? 4.0f + gc - rc : 0.0f;
    float h = hr + hg + hb;
    h = fmodf(h / 6.0f + 1.0f, 1.0f);
    oh[i] = h, os[i] = s, ov[i] = maxc;
  }
}

/* torchvision _hsv2rgb */
TFW_CLONES static void hsv2rgb_plane(float *restrict orr, float *restrict og, float *restrict ob,
                                     const float *restrict hh, const float *restrict ss,
                                     const float *restrict vv, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    float h = hh[i], s = ss[i], v = vv[i];
    float fi = floorf(h * 6.0f), f = h * 6.0f - fi;
    int k = ((int)fi % 6 + 6) % 6;
    float p = fminf(fmaxf(v * (1.0f - s), 0.0f), 1.0f);
    float q = fminf(fmaxf(v * (1.0f - s * f), 0.0f), 1.0f);
    float t = fminf(fmaxf(v * (1.0f - s * (1.0f - f)), 0.0f), 1.0f);
    float R, G, B;
    switch (k) {
    case 0: R = v, G = t, B = p; break;
    case 1: R = q, G = v, B = p; break;
    case 2: R = p, G = v, B = t; break;
    case 3: R = p, G = q, B = v; break;
    case 4: R = t, G = p, B = v; break;
    default: R = v, G = p, B = q; break;
    }
    orr[i] = R, og[i] = G, ob[i] = B;
  }
}

static tfw_tensor *hsv_convert(const char *op, const tfw_tensor *img, bool to_hsv) {
  img_geom g;
  tfw_tensor *x = rgb_input(op, img, &g);
  if (!x) return NULL;
  int64_t n = g.H * g.W;
  tfw_tensor *out = new_like_chw(op, img, 3, g.H, g.W);
  if (out) {
    const float *p = (const float *)tfw__data(x);
    float *o = (float *)tfw__data(out);
    if (to_hsv) rgb2hsv_plane(o, o + n, o + 2 * n, p, p + n, p + 2 * n, n);
    else hsv2rgb_plane(o, o + n, o + 2 * n, p, p + n, p + 2 * n, n);
  }
  tfw_release(x);
  return out;
}

tfw_tensor *tfw_image_rgb_to_hsv(const tfw_tensor *img) {
  return hsv_convert("image_rgb_to_hsv", img, true);
}
tfw_tensor *tfw_image_hsv_to_rgb(const tfw_tensor *img) {
  return hsv_convert("image_hsv_to_rgb", img, false);
}
