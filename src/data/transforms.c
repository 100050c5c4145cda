/* The transform pipeline: a list of steps over named sample fields, with random parameters
 * drawn from a generator seeded by (seed, epoch, sample index) only — never by thread or call
 * order — so augmentations are reproducible for any number of loader workers. Also the label
 * and text transforms (one-hot, text -> ids). */
#include <math.h>
#include <string.h>

#include "data/data_internal.h"

typedef enum step_kind {
  ST_TO_TENSOR, ST_NORMALIZE, ST_RESIZE, ST_CENTER_CROP, ST_RANDOM_CROP, ST_FLIP, ST_ROTATE,
  ST_JITTER, ST_BLUR, ST_NOISE, ST_ONE_HOT, ST_TEXT,
} step_kind;

#define MAX_CH 16

typedef struct step {
  step_kind kind;
  char field[TFW_SAMPLE_NAME_MAX];
  int64_t h, w, pad, n;       /* sizes; n: channels / classes / max_len */
  double a, b, c;             /* probabilities, degree range, jitter, sigma range, std */
  int mode, ksize;
  float fill;
  float mean[MAX_CH], std[MAX_CH];
  char *vocab;                /* text: owned copy */
  int64_t unk;
} step;

struct tfw_transform {
  uint64_t seed;
  int n, cap;
  step *steps;
};

tfw_transform *tfw_transform_new(uint64_t seed) {
  tfw_transform *tr = tfw__calloc(1, sizeof *tr);
  if (!tr) tfw__error(TFW_ENOMEM, "transform_new: out of memory");
  else tr->seed = seed;
  return tr;
}

void tfw_transform_free(tfw_transform *tr) {
  if (!tr) return;
  for (int i = 0; i < tr->n; i++) tfw__free(tr->steps[i].vocab);
  tfw__free(tr->steps);
  tfw__free(tr);
}

static step *push(tfw_transform *tr, const char *op, const char *field, step_kind kind) {
  if (!tr) {
    tfw__error(TFW_EVALUE, "%s: transform is NULL", op);
    return NULL;
  }
  if (!field || !field[0] || strlen(field) >= TFW_SAMPLE_NAME_MAX) {
    tfw__error(TFW_EVALUE, "%s: field name missing or longer than %d bytes", op,
               TFW_SAMPLE_NAME_MAX - 1);
    return NULL;
  }
  if (tr->n == tr->cap) {
    int cap = tr->cap ? tr->cap * 2 : 8;
    step *ns = tfw__realloc(tr->steps, sizeof *ns * (size_t)cap);
    if (!ns) {
      tfw__error(TFW_ENOMEM, "%s: out of memory", op);
      return NULL;
    }
    tr->steps = ns, tr->cap = cap;
  }
  step *s = &tr->steps[tr->n++];
  memset(s, 0, sizeof *s);
  s->kind = kind;
  strcpy(s->field, field);
  return s;
}

#define PUSH_OR_FAIL(op, kind) \
  step *s = push(tr, op, field, kind); \
  if (!s) return tfw_last_status()

static tfw_status bad(step *s, tfw_transform *tr, tfw_status st) {
  (void)s;
  tr->n--; /* drop the half-made step */
  return st;
}

tfw_status tfw_transform_to_tensor(tfw_transform *tr, const char *field) {
  PUSH_OR_FAIL("transform_to_tensor", ST_TO_TENSOR);
  return TFW_OK;
}

tfw_status tfw_transform_normalize(tfw_transform *tr, const char *field, int channels,
                                   const float *mean, const float *std) {
  const char *op = "transform_normalize";
  PUSH_OR_FAIL(op, ST_NORMALIZE);
  if (channels < 1 || channels > MAX_CH || !mean || !std)
    return bad(s, tr, tfw__error(TFW_EVALUE, "%s: channels %d (1..%d) with mean and std expected",
                                 op, channels, MAX_CH));
  for (int c = 0; c < channels; c++) {
    if (std[c] == 0.0f || std[c] != std[c])
      return bad(s, tr, tfw__error(TFW_EVALUE, "%s: std[%d] is %g", op, c, (double)std[c]));
    s->mean[c] = mean[c], s->std[c] = std[c];
  }
  s->n = channels;
  return TFW_OK;
}

static bool size_ok(int64_t h, int64_t w) { return h >= 1 && w >= 1 && h <= (1 << 20) && w <= (1 << 20); }

tfw_status tfw_transform_resize(tfw_transform *tr, const char *field, int64_t h, int64_t w,
                                tfw_resize_mode mode) {
  PUSH_OR_FAIL("transform_resize", ST_RESIZE);
  if (!size_ok(h, w) || mode < TFW_RESIZE_BILINEAR || mode > TFW_RESIZE_NEAREST)
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_resize: size %lld x %lld or mode %d",
                                 (long long)h, (long long)w, (int)mode));
  s->h = h, s->w = w, s->mode = mode;
  return TFW_OK;
}

tfw_status tfw_transform_center_crop(tfw_transform *tr, const char *field, int64_t h, int64_t w) {
  PUSH_OR_FAIL("transform_center_crop", ST_CENTER_CROP);
  if (!size_ok(h, w))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_center_crop: size %lld x %lld",
                                 (long long)h, (long long)w));
  s->h = h, s->w = w;
  return TFW_OK;
}

tfw_status tfw_transform_random_crop(tfw_transform *tr, const char *field, int64_t h, int64_t w,
                                     int64_t padding) {
  PUSH_OR_FAIL("transform_random_crop", ST_RANDOM_CROP);
  if (!size_ok(h, w) || padding < 0 || padding > (1 << 16))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_random_crop: size %lld x %lld, padding %lld",
                                 (long long)h, (long long)w, (long long)padding));
  s->h = h, s->w = w, s->pad = padding;
  return TFW_OK;
}

static bool prob_ok(double p) { return p >= 0 && p <= 1; }

tfw_status tfw_transform_random_flip(tfw_transform *tr, const char *field, double p_horizontal,
                                     double p_vertical) {
  PUSH_OR_FAIL("transform_random_flip", ST_FLIP);
  if (!prob_ok(p_horizontal) || !prob_ok(p_vertical))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_random_flip: probabilities %g, %g not in "
                                 "[0, 1]", p_horizontal, p_vertical));
  s->a = p_horizontal, s->b = p_vertical;
  return TFW_OK;
}

tfw_status tfw_transform_rotate(tfw_transform *tr, const char *field, double min_degrees,
                                double max_degrees, float fill) {
  PUSH_OR_FAIL("transform_rotate", ST_ROTATE);
  if (!isfinite(min_degrees) || !isfinite(max_degrees) || min_degrees > max_degrees)
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_rotate: degree range [%g, %g]",
                                 min_degrees, max_degrees));
  s->a = min_degrees, s->b = max_degrees, s->fill = fill;
  return TFW_OK;
}

tfw_status tfw_transform_color_jitter(tfw_transform *tr, const char *field, double brightness,
                                      double contrast, double saturation) {
  PUSH_OR_FAIL("transform_color_jitter", ST_JITTER);
  if (!(brightness >= 0) || !(contrast >= 0) || !(saturation >= 0) || !isfinite(brightness) ||
      !isfinite(contrast) || !isfinite(saturation))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_color_jitter: %g, %g, %g (each >= 0)",
                                 brightness, contrast, saturation));
  s->a = brightness, s->b = contrast, s->c = saturation;
  return TFW_OK;
}

tfw_status tfw_transform_gaussian_blur(tfw_transform *tr, const char *field, int ksize,
                                       double sigma_min, double sigma_max) {
  PUSH_OR_FAIL("transform_gaussian_blur", ST_BLUR);
  if (ksize < 1 || ksize % 2 == 0 || ksize > 1001 || !(sigma_min > 0) || !(sigma_max >= sigma_min) ||
      !isfinite(sigma_max))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_gaussian_blur: ksize %d (odd) and sigma "
                                 "range [%g, %g] (> 0)", ksize, sigma_min, sigma_max));
  s->ksize = ksize, s->a = sigma_min, s->b = sigma_max;
  return TFW_OK;
}

tfw_status tfw_transform_gaussian_noise(tfw_transform *tr, const char *field, double std) {
  PUSH_OR_FAIL("transform_gaussian_noise", ST_NOISE);
  if (!(std >= 0) || !isfinite(std))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_gaussian_noise: std %g", std));
  s->a = std;
  return TFW_OK;
}

tfw_status tfw_transform_one_hot(tfw_transform *tr, const char *field, int64_t num_classes) {
  PUSH_OR_FAIL("transform_one_hot", ST_ONE_HOT);
  if (num_classes < 1 || num_classes > (1 << 24))
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_one_hot: num_classes %lld",
                                 (long long)num_classes));
  s->n = num_classes;
  return TFW_OK;
}

tfw_status tfw_transform_text_to_ids(tfw_transform *tr, const char *field, tfw_text_mode mode,
                                     const char *vocab, int64_t unk_id, int64_t max_len) {
  PUSH_OR_FAIL("transform_text_to_ids", ST_TEXT);
  if ((mode != TFW_TEXT_BYTES && mode != TFW_TEXT_CHARS) || max_len < 0)
    return bad(s, tr, tfw__error(TFW_EVALUE, "transform_text_to_ids: mode %d, max_len %lld",
                                 (int)mode, (long long)max_len));
  if (vocab) {
    size_t n = strlen(vocab);
    if (!(s->vocab = tfw__malloc(n + 1)))
      return bad(s, tr, tfw__error(TFW_ENOMEM, "transform_text_to_ids: out of memory"));
    memcpy(s->vocab, vocab, n + 1);
  }
  s->mode = mode, s->unk = unk_id, s->n = max_len;
  return TFW_OK;
}

/* ---- labels and text -------------------------------------------------------------------------- */
tfw_tensor *tfw_one_hot_f32(const tfw_tensor *labels, int64_t num_classes) {
  const char *op = "one_hot_f32";
  if (tfw__check_tensor(op, "labels", labels)) return NULL;
  tfw_dtype dt = labels->dtype;
  if (dt != TFW_DTYPE_U8 && dt != TFW_DTYPE_I8 && dt != TFW_DTYPE_I32 && dt != TFW_DTYPE_I64) {
    tfw__error(TFW_EDTYPE, "%s: labels are %s, expected an integer dtype", op, tfw_dtype_name(dt));
    return NULL;
  }
  if (num_classes < 1 || labels->ndim >= TFW_MAX_DIMS) {
    tfw__error(TFW_EVALUE, "%s: num_classes %lld (>= 1), labels rank %d (< %d)", op,
               (long long)num_classes, labels->ndim, TFW_MAX_DIMS);
    return NULL;
  }
  tfw_tensor *l = tfw__as_contiguous(labels, TFW_DTYPE_I64);
  if (!l) return NULL;
  int64_t shape[TFW_MAX_DIMS];
  memcpy(shape, labels->shape, sizeof(int64_t) * (size_t)labels->ndim);
  shape[labels->ndim] = num_classes;
  int64_t n = tfw_tensor_numel(l);
  const int64_t *v = (const int64_t *)tfw__data(l);
  for (int64_t i = 0; i < n; i++)
    if (v[i] < 0 || v[i] >= num_classes) {
      tfw__error(TFW_EINDEX, "%s: label %lld at %lld is outside [0, %lld)", op, (long long)v[i],
                 (long long)i, (long long)num_classes);
      tfw_release(l);
      return NULL;
    }
  tfw_tensor *out = tfw_zeros(TFW_DTYPE_F32, labels->ndim + 1, shape);
  if (out)
    for (int64_t i = 0; i < n; i++) ((float *)tfw__data(out))[i * num_classes + v[i]] = 1.0f;
  tfw_release(l);
  return out;
}

/* Decodes one UTF-8 character at p (n bytes left): code point, or -1 if invalid (overlong,
 * surrogate, > U+10FFFF, truncated). *len gets its byte count. */
static int64_t utf8_next(const uint8_t *p, int64_t n, int *len) {
  uint8_t b = p[0];
  int k;
  uint32_t cp;
  if (b < 0x80) return *len = 1, b;
  if (b >= 0xC2 && b <= 0xDF) k = 2, cp = b & 0x1F;
  else if (b >= 0xE0 && b <= 0xEF) k = 3, cp = b & 0x0F;
  else if (b >= 0xF0 && b <= 0xF4) k = 4, cp = b & 0x07;
  else return -1;
  if (n < k) return -1;
  for (int i = 1; i < k; i++) {
    if ((p[i] & 0xC0) != 0x80) return -1;
    cp = cp << 6 | (p[i] & 0x3F);
  }
  if ((k == 3 && cp < 0x800) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return -1;
  *len = k;
  return cp;
}

tfw_tensor *tfw_text_to_ids(const tfw_tensor *text, tfw_text_mode mode, const char *vocab,
                            int64_t unk_id, int64_t max_len) {
  const char *op = "text_to_ids";
  if (tfw__check_tensor(op, "text", text)) return NULL;
  if (text->dtype != TFW_DTYPE_U8 || text->ndim != 1) {
    tfw__error(TFW_EDTYPE, "%s: text must be u8 [n] (UTF-8 bytes), got %s of rank %d", op,
               tfw_dtype_name(text->dtype), text->ndim);
    return NULL;
  }
  if ((mode != TFW_TEXT_BYTES && mode != TFW_TEXT_CHARS) || max_len < 0) {
    tfw__error(TFW_EVALUE, "%s: mode %d, max_len %lld", op, (int)mode, (long long)max_len);
    return NULL;
  }
  tfw_tensor *t = tfw_contiguous(text);
  if (!t) return NULL;
  const uint8_t *p = (const uint8_t *)tfw__data(t);
  int64_t n = text->shape[0];
  int64_t *ids = tfw__malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
  int64_t *vcp = NULL, nv = 0;
  tfw_tensor *out = NULL;
  if (!ids) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", op);
    goto done;
  }
  if (mode == TFW_TEXT_CHARS && vocab) { /* the vocabulary's code points, in order */
    int64_t vl = (int64_t)strlen(vocab);
    if (!(vcp = tfw__malloc(sizeof(int64_t) * (size_t)(vl ? vl : 1)))) {
      tfw__error(TFW_ENOMEM, "%s: out of memory", op);
      goto done;
    }
    for (int64_t i = 0; i < vl;) {
      int len;
      int64_t cp = utf8_next((const uint8_t *)vocab + i, vl - i, &len);
      if (cp < 0) {
        tfw__error(TFW_EVALUE, "%s: vocab is not valid UTF-8 at byte %lld", op, (long long)i);
        goto done;
      }
      vcp[nv++] = cp, i += len;
    }
  }
  int64_t m = 0;
  for (int64_t i = 0; i < n && (!max_len || m < max_len);) {
    if (mode == TFW_TEXT_BYTES) {
      ids[m++] = p[i++];
      continue;
    }
    int len;
    int64_t cp = utf8_next(p + i, n - i, &len);
    if (cp < 0) {
      tfw__error(TFW_EFORMAT, "%s: invalid UTF-8 at byte %lld (0x%02x)", op, (long long)i, p[i]);
      goto done;
    }
    i += len;
    if (vcp) {
      int64_t id = unk_id;
      for (int64_t k = 0; k < nv; k++)
        if (vcp[k] == cp) {
          id = k;
          break;
        }
      cp = id;
    }
    ids[m++] = cp;
  }
  out = tfw_from_data(TFW_DTYPE_I64, 1, (int64_t[]){m}, ids);
done:
  tfw__free(ids);
  tfw__free(vcp);
  tfw_release(t);
  return out;
}

/* ---- applying ------------------------------------------------------------------------------------ */
typedef struct rng {
  uint64_t s;
} rng;
static double rng_uniform(rng *r) { return (double)(tfw__splitmix64(&r->s) >> 11) * 0x1.0p-53; }
static double rng_range(rng *r, double lo, double hi) { return lo + (hi - lo) * rng_uniform(r); }
static int64_t rng_int(rng *r, int64_t n) { /* [0, n) */
  return n <= 1 ? 0 : (int64_t)(((__uint128_t)tfw__splitmix64(&r->s) * (uint64_t)n) >> 64);
}

static int field_index(const tfw_sample *s, const char *name) {
  for (int i = 0; i < s->n; i++)
    if (strcmp(s->names[i], name) == 0) return i;
  return -1;
}

static tfw_tensor *add_noise(const tfw_tensor *img, double std, rng *r) {
  if (img->dtype != TFW_DTYPE_F32) {
    tfw__error(TFW_EDTYPE, "transform gaussian_noise: img is %s, expected float32",
               tfw_dtype_name(img->dtype));
    return NULL;
  }
  tfw_tensor *out = tfw_clone(img);
  if (!out) return NULL;
  float *p = (float *)tfw__data(out);
  int64_t n = tfw_tensor_numel(out);
  for (int64_t i = 0; i < n; i += 2) { /* Box-Muller: two normals per pair of uniforms */
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    double rad = sqrt(-2.0 * log(1.0 - u1)), th = 2.0 * M_PI * u2;
    p[i] += (float)(std * rad * cos(th));
    if (i + 1 < n) p[i + 1] += (float)(std * rad * sin(th));
  }
  return out;
}

static tfw_tensor *run_step(const step *s, const tfw_tensor *x, rng *r) {
  switch (s->kind) {
  case ST_TO_TENSOR: return tfw_image_to_tensor(x);
  case ST_NORMALIZE: {
    int64_t C = x->ndim == 3 ? x->shape[0] : 1;
    if (C != s->n) {
      tfw__error(TFW_ESHAPE, "transform normalize: '%s' has %lld channels, the step %lld",
                 s->field, (long long)C, (long long)s->n);
      return NULL;
    }
    return tfw_image_normalize(x, s->mean, s->std);
  }
  case ST_RESIZE: return tfw_image_resize(x, s->h, s->w, (tfw_resize_mode)s->mode);
  case ST_CENTER_CROP: return tfw_image_center_crop(x, s->h, s->w);
  case ST_RANDOM_CROP: {
    bool hwc = x->ndim == 3 && x->dtype == TFW_DTYPE_U8;
    int64_t H = x->ndim == 2 || hwc ? x->shape[0] : x->shape[1];
    int64_t W = x->ndim == 2 || hwc ? x->shape[1] : x->shape[2];
    if (x->ndim < 2) return tfw_image_crop(x, 0, 0, s->h, s->w); /* reports the shape */
    int64_t Hp = H + 2 * s->pad, Wp = W + 2 * s->pad;
    if (Hp < s->h || Wp < s->w) {
      tfw__error(TFW_ESHAPE, "transform random_crop: '%s' is %lld x %lld (padded %lld x %lld), "
                 "smaller than the crop %lld x %lld", s->field, (long long)H, (long long)W,
                 (long long)Hp, (long long)Wp, (long long)s->h, (long long)s->w);
      return NULL;
    }
    int64_t top = rng_int(r, Hp - s->h + 1), left = rng_int(r, Wp - s->w + 1);
    return tfw_image_crop(x, top - s->pad, left - s->pad, s->h, s->w);
  }
  case ST_FLIP: {
    bool hf = rng_uniform(r) < s->a, vf = rng_uniform(r) < s->b;
    tfw_tensor *t = hf ? tfw_image_flip(x, true) : tfw_retain((tfw_tensor *)x);
    if (t && vf) {
      tfw_tensor *u = tfw_image_flip(t, false);
      tfw_release(t);
      t = u;
    }
    return t;
  }
  case ST_ROTATE: return tfw_image_rotate(x, rng_range(r, s->a, s->b), s->fill);
  case ST_JITTER: {
    double fb = rng_range(r, fmax(0, 1 - s->a), 1 + s->a);
    double fc = rng_range(r, fmax(0, 1 - s->b), 1 + s->b);
    double fs = rng_range(r, fmax(0, 1 - s->c), 1 + s->c);
    tfw_tensor *t = tfw_retain((tfw_tensor *)x), *u;
    if (s->a > 0 && t) u = tfw_image_adjust_brightness(t, fb), tfw_release(t), t = u;
    if (s->b > 0 && t) u = tfw_image_adjust_contrast(t, fc), tfw_release(t), t = u;
    if (s->c > 0 && t) u = tfw_image_adjust_saturation(t, fs), tfw_release(t), t = u;
    return t;
  }
  case ST_BLUR: return tfw_image_gaussian_blur(x, s->ksize, rng_range(r, s->a, s->b));
  case ST_NOISE: return add_noise(x, s->a, r);
  case ST_ONE_HOT: return tfw_one_hot_f32(x, s->n);
  case ST_TEXT: return tfw_text_to_ids(x, (tfw_text_mode)s->mode, s->vocab, s->unk, s->n);
  }
  tfw__error(TFW_EINTERNAL, "transform: unknown step");
  return NULL;
}

tfw_status tfw_transform_apply(const tfw_transform *tr, tfw_sample *sample, int64_t index,
                               int64_t epoch) {
  if (!tr || !sample) return tfw__error(TFW_EVALUE, "transform_apply: NULL transform or sample");
  /* one generator per (seed, epoch, index): two splitmix rounds mix the three */
  rng r = {tr->seed ^ 0x6A09E667F3BCC909ull};
  r.s = tfw__splitmix64(&r.s) ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull);
  r.s = tfw__splitmix64(&r.s) ^ ((uint64_t)index * 0x9E3779B97F4A7C15ull);
  for (int i = 0; i < tr->n; i++) {
    const step *s = &tr->steps[i];
    int k = field_index(sample, s->field);
    if (k < 0)
      return tfw__error(TFW_EVALUE, "transform_apply: step %d needs field '%s', which the sample "
                        "lacks", i, s->field);
    tfw_tensor *y = run_step(s, sample->tensors[k], &r);
    if (!y) return tfw_last_status() ? tfw_last_status() : TFW_EINTERNAL;
    tfw_release(sample->tensors[k]);
    sample->tensors[k] = y;
  }
  return TFW_OK;
}

tfw_status tfw_transform_sample_fn(void *tr, tfw_sample *sample) {
  const tfw__batch_ctx *bc = tfw__batch_ctx_get();
  return tfw_transform_apply(tr, sample, bc->indices && bc->n ? bc->indices[0] : 0, bc->epoch);
}

tfw_status tfw_transform_batch_fn(void *vtr, tfw_sample *batch) {
  const tfw_transform *tr = vtr;
  if (!tr || !batch) return tfw__error(TFW_EVALUE, "transform_batch_fn: NULL argument");
  if (batch->n == 0) return TFW_OK;
  int64_t B = batch->tensors[0]->ndim ? batch->tensors[0]->shape[0] : 0;
  for (int f = 0; f < batch->n; f++)
    if (batch->tensors[f]->ndim < 1 || batch->tensors[f]->shape[0] != B)
      return tfw__error(TFW_ESHAPE, "transform_batch_fn: field '%s' does not have the batch's "
                        "dim 0 of %lld", batch->names[f], (long long)B);
  const tfw__batch_ctx *bc = tfw__batch_ctx_get();
  tfw_sample *items = tfw__calloc((size_t)(B ? B : 1), sizeof *items);
  if (!items) return tfw__error(TFW_ENOMEM, "transform_batch_fn: out of memory");
  tfw_status st = TFW_OK;
  for (int64_t k = 0; k < B && !st; k++) {
    for (int f = 0; f < batch->n && !st; f++) {
      tfw_tensor *row = tfw_select(batch->tensors[f], 0, k);
      st = row ? tfw_sample_add(&items[k], batch->names[f], row) : tfw_last_status();
      tfw_release(row);
    }
    int64_t index = bc->indices && k < bc->n ? bc->indices[k] : k;
    if (!st) st = tfw_transform_apply(tr, &items[k], index, bc->epoch);
  }
  tfw_sample out = {0};
  if (!st) st = tfw_collate_stack(items, B, false, 0, &out);
  for (int64_t k = 0; k < B; k++) tfw_sample_clear(&items[k]);
  tfw__free(items);
  if (!st) {
    tfw_sample_clear(batch);
    *batch = out;
  }
  return st;
}

/* ---- dataset wrapper ---------------------------------------------------------------------------- */
typedef struct tds {
  tfw_dataset *ds;
  const tfw_transform *tr;
} tds;

static int64_t tds_len(void *c) { return tfw_dataset_len(((tds *)c)->ds); }
static tfw_status tds_get(void *vc, int64_t i, tfw_sample *out) {
  tds *c = vc;
  tfw_status s = tfw_dataset_get(c->ds, i, out);
  if (!s) s = tfw_transform_apply(c->tr, out, i, tfw__batch_ctx_get()->epoch);
  return s;
}
static void tds_destroy(void *vc) {
  tds *c = vc;
  tfw_dataset_release(c->ds);
  tfw__free(c);
}

tfw_dataset *tfw_dataset_transform(tfw_dataset *ds, const tfw_transform *tr) {
  if (!ds || !tr) {
    tfw__error(TFW_EVALUE, "dataset_transform: NULL dataset or transform");
    return NULL;
  }
  if (tfw_dataset_is_iterable(ds)) {
    tfw__error(TFW_EVALUE, "dataset_transform: needs a map-style dataset (sample indices seed "
               "the augmentations); use tfw_dataset_map with tfw_transform_sample_fn for streams");
    return NULL;
  }
  tds *c = tfw__calloc(1, sizeof *c);
  if (!c) {
    tfw__error(TFW_ENOMEM, "dataset_transform: out of memory");
    return NULL;
  }
  c->ds = tfw_dataset_retain(ds), c->tr = tr;
  tfw_dataset_vtable vt = {0};
  vt.len = tds_len, vt.get = tds_get, vt.destroy = tds_destroy;
  tfw_dataset *out = tfw_dataset_new(&vt, c);
  if (!out) tds_destroy(c);
  return out;
}
