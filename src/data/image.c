/* PNG and JPEG decoding to [H, W, C] tensors.
 *
 * The codecs are libraries (DESIGN §10: prefer a maintained, fuzzed decoder): libspng for
 * PNG (CRCs checked, chunk sizes capped), libjpeg-turbo's TurboJPEG API for JPEG (ISLOW DCT
 * and fancy upsampling, the libjpeg defaults, so the pixels equal PIL's; every libjpeg
 * warning — "premature end of data", corrupt Huffman data, ... — is an error here, and
 * progressive files are limited to 500 scans against the scan-count DoS). What this file
 * adds is the hostile-input policy:
 *   - W * H is capped (opt.max_pixels) before the pixel buffer is allocated;
 *   - a PNG's raw pixel bytes must fit deflate's maximum ratio (1032:1, rounded up to 1100)
 *     over the file's size, so a tiny file cannot make us allocate gigabytes;
 *   - channel conversion and 16-bit widening happen in the result tensor's buffer.
 * 16-bit PNG samples become i32 (exact; there is no u16 dtype) or u8 (top byte). */
#define _GNU_SOURCE /* memmem */
#include <spng.h>
#include <stdio.h>
#include <string.h>
#include <turbojpeg.h>

#include "data/data_internal.h"

#define OP "image_decode"
#define DEFAULT_MAX_PIXELS ((int64_t)1 << 26)
#define MAX_FILE_BYTES ((size_t)1 << 30)

tfw_image_options tfw_image_options_default(void) {
  tfw_image_options o = {0, false, 0};
  return o;
}

tfw_image_format tfw_image_detect(const void *data, size_t size) {
  const uint8_t *p = data;
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (!p) return TFW_IMAGE_FORMAT_UNKNOWN;
  if (size >= 8 && memcmp(p, png_sig, 8) == 0) return TFW_IMAGE_FORMAT_PNG;
  if (size >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return TFW_IMAGE_FORMAT_JPEG;
  return TFW_IMAGE_FORMAT_UNKNOWN;
}

/* ---- channel conversion -----------------------------------------------------------------
 * In place in a buffer sized for max(cin, cout) channels: growing conversions run from the
 * last pixel backwards, shrinking ones forwards, so no pixel is overwritten before read.
 * Luma is ITU-R 601 in 16.16 fixed point, as PIL's RGB -> L. */
#define CONVERT_BODY(T, MAXV)                                                                 \
  do {                                                                                        \
    T *px = buf;                                                                              \
    if (cout > cin) {                                                                         \
      for (int64_t i = npix - 1; i >= 0; i--) {                                               \
        T v[4] = {0};                                                                         \
        for (int c = 0; c < cin; c++) v[c] = px[i * cin + c];                                 \
        T r, g, b, a = (T)(MAXV);                                                             \
        if (cin <= 2) r = g = b = v[0], a = cin == 2 ? v[1] : a;                              \
        else r = v[0], g = v[1], b = v[2], a = cin == 4 ? v[3] : a;                           \
        T *o = px + i * cout;                                                                 \
        if (cout == 3) o[0] = r, o[1] = g, o[2] = b;                                          \
        else if (cout == 4) o[0] = r, o[1] = g, o[2] = b, o[3] = a;                           \
        else o[0] = v[0], o[1] = a; /* cout 2 from 1 */                                       \
      }                                                                                       \
    } else {                                                                                  \
      for (int64_t i = 0; i < npix; i++) {                                                    \
        const T *s = px + i * cin;                                                            \
        T o[4];                                                                               \
        if (cout == 1)                                                                        \
          o[0] = cin <= 2 ? s[0]                                                              \
                          : (T)(((int64_t)s[0] * 19595 + (int64_t)s[1] * 38470 +              \
                                 (int64_t)s[2] * 7471 + 32768) >> 16);                        \
        else for (int c = 0; c < cout; c++) o[c] = s[c];                                      \
        for (int c = 0; c < cout; c++) px[i * cout + c] = o[c];                               \
      }                                                                                       \
    }                                                                                         \
  } while (0)

static void convert_channels(void *buf, tfw_dtype dt, int64_t npix, int cin, int cout) {
  if (cin == cout) return;
  if (dt == TFW_DTYPE_U8) CONVERT_BODY(uint8_t, 255);
  else CONVERT_BODY(int32_t, 65535);
}

static tfw_status check_opts(const tfw_image_options *o) {
  if (o->channels != 0 && o->channels != 1 && o->channels != 3 && o->channels != 4)
    return tfw__error(TFW_EVALUE, "%s: channels is %d, expected 0 (as stored), 1, 3 or 4", OP,
                      o->channels);
  if (o->max_pixels < 0)
    return tfw__error(TFW_EVALUE, "%s: max_pixels is %lld, expected >= 0 (0: default)", OP,
                      (long long)o->max_pixels);
  return TFW_OK;
}

static tfw_status check_pixels(const char *name, int64_t w, int64_t h, const tfw_image_options *o) {
  int64_t cap = o->max_pixels ? o->max_pixels : DEFAULT_MAX_PIXELS;
  if (w <= 0 || h <= 0)
    return tfw__error(TFW_EFORMAT, "%s: '%s': image is %lld x %lld pixels", OP, name,
                      (long long)w, (long long)h);
  if (w > cap || h > cap || w * h > cap)
    return tfw__error(TFW_EFORMAT, "%s: '%s': %lld x %lld pixels exceed the cap of %lld "
                      "(tfw_image_options.max_pixels)", OP, name, (long long)w, (long long)h,
                      (long long)cap);
  return TFW_OK;
}

/* The result tensor [h, w, cout] of dtype dt, with room for max(cin, cout) channels of
 * `decode_es` bytes per sample to decode into. */
static tfw_tensor *alloc_image(int64_t h, int64_t w, int cin, int cout, tfw_dtype dt) {
  int cmax = cin > cout ? cin : cout;
  int64_t shape[3] = {h, w, cmax};
  tfw_tensor *t = tfw__tensor_new(OP, dt, 3, shape);
  if (t) t->shape[2] = cout, tfw__contiguous_strides(3, t->shape, t->strides);
  return t;
}

/* ---- PNG ---------------------------------------------------------------------------------- */
static int png_channels(const struct spng_ihdr *ih, bool has_trns) {
  switch (ih->color_type) {
  case SPNG_COLOR_TYPE_GRAYSCALE: return 1;
  case SPNG_COLOR_TYPE_GRAYSCALE_ALPHA: return 2;
  case SPNG_COLOR_TYPE_TRUECOLOR: return 3;
  case SPNG_COLOR_TYPE_TRUECOLOR_ALPHA: return 4;
  case SPNG_COLOR_TYPE_INDEXED: return has_trns ? 4 : 3;
  default: return 0;
  }
}

static tfw_status png_open(const uint8_t *data, size_t size, const char *name, spng_ctx **out,
                           struct spng_ihdr *ih, bool *has_trns) {
  *out = NULL;
  spng_ctx *ctx = spng_ctx_new(0);
  if (!ctx) return tfw__error(TFW_ENOMEM, "%s: '%s': out of memory (spng context)", OP, name);
  /* chunk sizes and the ancillary-chunk cache: a PNG cannot make libspng hold more */
  spng_set_chunk_limits(ctx, (size_t)1 << 26, (size_t)1 << 26);
  spng_set_image_limits(ctx, 1u << 24, 1u << 24);
  int r = spng_set_png_buffer(ctx, data, size);
  if (!r) r = spng_get_ihdr(ctx, ih);
  if (r) {
    spng_ctx_free(ctx);
    return tfw__error(r == SPNG_EMEM ? TFW_ENOMEM : TFW_EFORMAT, "%s: '%s': bad PNG header: %s",
                      OP, name, spng_strerror(r));
  }
  struct spng_trns trns;
  r = spng_get_trns(ctx, &trns); /* reads the chunks before IDAT: CRC errors show here */
  if (r && r != SPNG_ECHUNKAVAIL) {
    spng_ctx_free(ctx);
    return tfw__error(r == SPNG_EMEM ? TFW_ENOMEM : TFW_EFORMAT, "%s: '%s': corrupt PNG: %s", OP,
                      name, spng_strerror(r));
  }
  *has_trns = r == 0;
  *out = ctx;
  return TFW_OK;
}

static tfw_tensor *png_decode(const uint8_t *data, size_t size, const char *name,
                              const tfw_image_options *o) {
  spng_ctx *ctx;
  struct spng_ihdr ih;
  bool has_trns;
  if (png_open(data, size, name, &ctx, &ih, &has_trns)) return NULL;
  tfw_tensor *t = NULL;
  int cin = png_channels(&ih, has_trns);
  int64_t w = ih.width, h = ih.height;
  bool wide = ih.bit_depth == 16;
  if (check_pixels(name, w, h, o)) goto out;
  /* deflate expands at most 1032:1; the pixels' packed bytes must fit that over the file */
  int file_ch = ih.color_type == SPNG_COLOR_TYPE_INDEXED ? 1 : png_channels(&ih, false);
  double packed = (double)w * (double)h * file_ch * ih.bit_depth / 8.0;
  if (packed > 1100.0 * (double)size + 4096.0) {
    tfw__error(TFW_EFORMAT, "%s: '%s': %lld x %lld pixels cannot be stored in a %zu-byte PNG "
               "(above deflate's maximum ratio): corrupt or a decompression bomb", OP, name,
               (long long)w, (long long)h, size);
    goto out;
  }
  int fmt, flags = 0;
  if (wide) fmt = SPNG_FMT_PNG, cin = png_channels(&ih, false); /* host-endian u16 samples */
  else if (ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE) fmt = SPNG_FMT_G8;
  else if (ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA) fmt = SPNG_FMT_RGBA8; /* no GA8 decode in libspng 0.7 */
  else if (cin == 4) fmt = SPNG_FMT_RGBA8, flags = SPNG_DECODE_TRNS;
  else fmt = SPNG_FMT_RGB8;
  int cout = o->channels ? o->channels : cin;
  size_t need = 0;
  int r = spng_decoded_image_size(ctx, fmt, &need);
  if (r) {
    tfw__error(TFW_EFORMAT, "%s: '%s': %s", OP, name, spng_strerror(r));
    goto out;
  }
  int cdec = fmt == SPNG_FMT_RGBA8 ? 4 : cin; /* channels decoded */
  TFW_ASSERT(need == (size_t)(w * h * cdec * (wide ? 2 : 1)));
  /* i32 result for 16-bit: decode the u16 samples into the first half of its buffer */
  t = alloc_image(h, w, cdec, cout, wide && !o->force_u8 ? TFW_DTYPE_I32 : TFW_DTYPE_U8);
  if (!t) goto out;
  uint16_t *tmp16 = NULL;
  void *dst = tfw__data(t);
  if (wide && o->force_u8) { /* u8 result is smaller than the u16 samples */
    tmp16 = tfw__malloc(need);
    if (!tmp16) {
      tfw__error(TFW_ENOMEM, "%s: '%s': out of memory (%zu bytes)", OP, name, need);
      tfw_release(t), t = NULL;
      goto out;
    }
    dst = tmp16;
  }
  r = spng_decode_image(ctx, dst, need, fmt, flags);
  if (r) {
    tfw__error(r == SPNG_EMEM ? TFW_ENOMEM : TFW_EFORMAT, "%s: '%s': corrupt PNG: %s", OP, name,
               spng_strerror(r));
    tfw__free(tmp16);
    tfw_release(t), t = NULL;
    goto out;
  }
  /* the chunks after the image, up to IEND: a file cut after its pixels is truncated too */
  static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  r = spng_decode_chunks(ctx);
  if (!r && !memmem(data, size, iend, sizeof iend)) r = SPNG_EOF; /* libspng skips IEND's CRC */
  if (r) {
    tfw__error(TFW_EFORMAT, "%s: '%s': corrupt or truncated PNG after the image data: %s", OP,
               name, spng_strerror(r));
    tfw__free(tmp16);
    tfw_release(t), t = NULL;
    goto out;
  }
  if (cdec == 4 && cin == 2) { /* gray+alpha decoded as RGBA: keep (G, A), in place */
    uint8_t *px = (uint8_t *)tfw__data(t);
    for (int64_t i = 0; i < w * h; i++) px[2 * i] = px[4 * i], px[2 * i + 1] = px[4 * i + 3];
  }
  int64_t n = w * h * cin;
  if (wide && o->force_u8) {
    uint8_t *d8 = (uint8_t *)tfw__data(t);
    for (int64_t i = 0; i < n; i++) d8[i] = (uint8_t)(tmp16[i] >> 8);
    tfw__free(tmp16);
  } else if (wide) { /* widen u16 -> i32 in place, from the back */
    const uint16_t *s16 = (const uint16_t *)tfw__data(t);
    int32_t *d32 = (int32_t *)tfw__data(t);
    for (int64_t i = n - 1; i >= 0; i--) d32[i] = s16[i];
  }
  convert_channels(tfw__data(t), t->dtype, w * h, cin, cout);
out:
  spng_ctx_free(ctx);
  return t;
}

/* ---- JPEG ---------------------------------------------------------------------------------- */
static tfw_status jpeg_header(tjhandle tj, const uint8_t *data, size_t size, const char *name,
                              int *w, int *h, int *cin) {
  int subsamp = 0, cs = 0;
  if (tjDecompressHeader3(tj, data, (unsigned long)size, w, h, &subsamp, &cs) != 0)
    return tfw__error(TFW_EFORMAT, "%s: '%s': bad JPEG header: %s", OP, name, tjGetErrorStr2(tj));
  if (cs == TJCS_CMYK || cs == TJCS_YCCK)
    return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': CMYK/YCCK JPEGs are not supported", OP, name);
  *cin = cs == TJCS_GRAY ? 1 : 3;
  return TFW_OK;
}

static tfw_tensor *jpeg_decode(const uint8_t *data, size_t size, const char *name,
                               const tfw_image_options *o) {
  tjhandle tj = tjInitDecompress();
  if (!tj) {
    tfw__error(TFW_ENOMEM, "%s: '%s': cannot create a JPEG decoder", OP, name);
    return NULL;
  }
  tfw_tensor *t = NULL;
  int w = 0, h = 0, cin = 0;
  if (jpeg_header(tj, data, size, name, &w, &h, &cin) || check_pixels(name, w, h, o)) goto out;
  int cout = o->channels ? o->channels : cin;
  /* decode straight to the requested gray/RGB; RGBA adds the alpha afterwards */
  int cdec = cout == 1 ? 1 : 3;
  t = alloc_image(h, w, cdec, cout, TFW_DTYPE_U8);
  if (!t) goto out;
  if (tjDecompress2(tj, data, (unsigned long)size, (unsigned char *)tfw__data(t), w, 0, h,
                    cdec == 1 ? TJPF_GRAY : TJPF_RGB,
                    TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0) {
    tfw__error(TFW_EFORMAT, "%s: '%s': corrupt JPEG: %s", OP, name, tjGetErrorStr2(tj));
    tfw_release(t), t = NULL;
    goto out;
  }
  convert_channels(tfw__data(t), TFW_DTYPE_U8, (int64_t)w * h, cdec, cout);
out:
  tjDestroy(tj);
  return t;
}

static tfw_tensor *decode_named(const void *data, size_t size, const char *name,
                                const tfw_image_options *opt) {
  tfw_image_options o = opt ? *opt : tfw_image_options_default();
  if (check_opts(&o)) return NULL;
  if (!data && size) {
    tfw__error(TFW_EVALUE, "%s: data is NULL", OP);
    return NULL;
  }
  switch (tfw_image_detect(data, size)) {
  case TFW_IMAGE_FORMAT_PNG: return png_decode(data, size, name, &o);
  case TFW_IMAGE_FORMAT_JPEG: return jpeg_decode(data, size, name, &o);
  default:
    tfw__error(TFW_EFORMAT, "%s: '%s': not a PNG or JPEG (%zu bytes, unknown magic)", OP, name,
               size);
    return NULL;
  }
}

tfw_tensor *tfw__image_decode_named(const void *data, size_t size, const char *name,
                                    const tfw_image_options *opt) {
  return decode_named(data, size, name, opt);
}

tfw_tensor *tfw_image_decode(const void *data, size_t size, const tfw_image_options *opt) {
  return decode_named(data, size, "<memory>", opt);
}

tfw_tensor *tfw_image_read(const char *path, const tfw_image_options *opt) {
  uint8_t *buf;
  size_t n;
  if (tfw__data_read_file("image_read", path, MAX_FILE_BYTES, &buf, &n)) return NULL;
  tfw_tensor *t = decode_named(buf, n, path, opt);
  tfw__free(buf);
  return t;
}

tfw_status tfw_image_info(const void *data, size_t size, int64_t *width, int64_t *height,
                          int *channels, int *bit_depth, tfw_image_format *format) {
  tfw_image_format f = tfw_image_detect(data, size);
  int64_t w = 0, h = 0;
  int c = 0, bd = 8;
  if (f == TFW_IMAGE_FORMAT_PNG) {
    spng_ctx *ctx;
    struct spng_ihdr ih;
    bool trns;
    if (png_open(data, size, "<memory>", &ctx, &ih, &trns)) return tfw_last_status();
    w = ih.width, h = ih.height, c = png_channels(&ih, trns && ih.bit_depth != 16);
    bd = ih.bit_depth == 16 ? 16 : 8;
    spng_ctx_free(ctx);
  } else if (f == TFW_IMAGE_FORMAT_JPEG) {
    tjhandle tj = tjInitDecompress();
    if (!tj) return tfw__error(TFW_ENOMEM, "image_info: cannot create a JPEG decoder");
    int wi, hi;
    tfw_status s = jpeg_header(tj, data, size, "<memory>", &wi, &hi, &c);
    tjDestroy(tj);
    if (s) return s;
    w = wi, h = hi;
  } else {
    return tfw__error(TFW_EFORMAT, "image_info: not a PNG or JPEG (%zu bytes)", size);
  }
  if (width) *width = w;
  if (height) *height = h;
  if (channels) *channels = c;
  if (bit_depth) *bit_depth = bd;
  if (format) *format = f;
  return TFW_OK;
}

/* ---- layout ----------------------------------------------------------------------------------- */
static tfw_tensor *permute3(const tfw_tensor *img, const char *op, int d0, int d1, int d2) {
  if (tfw__check_tensor(op, "img", img)) return NULL;
  if (img->ndim != 3) {
    char sh[TFW__SHAPE_BUF];
    tfw__error(TFW_ESHAPE, "%s: img is %s, expected rank 3", op,
               tfw__shape_str(sh, sizeof sh, img->ndim, img->shape));
    return NULL;
  }
  int64_t shape[3] = {img->shape[d0], img->shape[d1], img->shape[d2]};
  int64_t strides[3] = {img->strides[d0], img->strides[d1], img->strides[d2]};
  tfw_tensor *v = tfw__tensor_view(img, 3, shape, strides, img->offset);
  if (!v) return NULL;
  tfw_tensor *c = tfw_clone(v);
  tfw_release(v);
  return c;
}

tfw_tensor *tfw_image_hwc_to_chw(const tfw_tensor *img) {
  return permute3(img, "image_hwc_to_chw", 2, 0, 1);
}
tfw_tensor *tfw_image_chw_to_hwc(const tfw_tensor *img) {
  return permute3(img, "image_chw_to_hwc", 1, 2, 0);
}
