/* Unified-reader backends for the media decoders of image.c and audio.c: a PNG or JPEG file
 * is one record {"image": u8 (16-bit PNG: i32) [H, W, C]}; an audio file is one record
 * {"audio": f32 [frames, channels], "sample_rate": i64}. The decoders' defaults and caps
 * apply (tfw_image_options_default, 1 << 28 samples). */
#include <string.h>

#include "data/data_internal.h"
#include "data/reader_internal.h"

/* One record whose fields are the given tensors (taken over), as a table. */
static tfw_status one_record(tfw_reader *r, int n, const char *const *names, tfw_tensor **ts) {
  tfw_field f[4];
  tfw_column c[4];
  memset(c, 0, sizeof c);
  tfw_status s = TFW_OK;
  for (int i = 0; i < n; i++) {
    memset(&f[i], 0, sizeof f[i]);
    f[i].name = names[i], f[i].dtype = tfw_tensor_dtype(ts[i]), f[i].ndim = tfw_tensor_ndim(ts[i]);
    int64_t shape[TFW_MAX_DIMS + 1] = {1};
    for (int d = 0; d < f[i].ndim; d++) f[i].shape[d] = shape[d + 1] = tfw_tensor_shape(ts[i])[d];
    if (!s && !(c[i].values = tfw_reshape(ts[i], f[i].ndim + 1, shape))) s = tfw_last_status();
  }
  for (int i = 0; i < n; i++) tfw_release(ts[i]);
  if (!s) s = tfw__reader_set_schema(r, n, f);
  if (s) {
    for (int i = 0; i < n; i++) tfw_column_clear(&c[i]);
    return s;
  }
  return tfw__reader_set_table(r, 1, c);
}

static int image_sniff(const uint8_t *head, size_t n) {
  return tfw_image_detect(head, n) != TFW_IMAGE_FORMAT_UNKNOWN ? 100 : 0;
}
static tfw_status image_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  tfw_tensor *img = tfw__image_decode_named(in->data, in->size, in->name, NULL);
  if (!img) return tfw_last_status();
  return one_record(r, 1, (const char *[]){"image"}, &img);
}

static int audio_sniff(const uint8_t *head, size_t n) {
  if (n >= 12 && !memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WAVE", 4)) return 100;
  if (n >= 4 && !memcmp(head, "fLaC", 4)) return 90;
  return 0;
}
static tfw_status audio_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  int rate = 0;
  tfw_tensor *a = tfw__audio_decode_named(in->data, in->size, in->name, 0, &rate);
  if (!a) return tfw_last_status();
  tfw_tensor *sr = tfw__tensor_new("wav", TFW_DTYPE_I64, 0, NULL);
  if (!sr) {
    tfw_release(a);
    return tfw_last_status();
  }
  *(int64_t *)(void *)tfw__data(sr) = rate;
  return one_record(r, 2, (const char *[]){"audio", "sample_rate"}, (tfw_tensor *[]){a, sr});
}

const tfw__reader_backend tfw__backend_image = {"image", ".png .jpg .jpeg", image_sniff, image_open};
const tfw__reader_backend tfw__backend_audio = {"audio", ".wav .flac", audio_sniff, audio_open};
