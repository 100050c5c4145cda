/* Audio decoding (WAV and whatever else libsndfile reads) to f32 [frames, channels].
 *
 * libsndfile parses the container and converts samples (its normalised float conversion is
 * torchaudio's default: u8 (x - 128) / 128, i16 x / 32768, ...). It reads from our buffer
 * through its virtual-I/O interface, so memory and files take one path. Hostile-input
 * policy added here: channels <= 1024 and frames * channels <= max_samples, checked on the
 * header's claim; samples are read in chunks into a buffer that grows with what was really
 * decoded (never allocated from the claim alone); fewer frames than the header declares is
 * "truncated", an error, not a silently short clip. */
#include <sndfile.h>
#include <string.h>

#include "data/data_internal.h"

#define OP "audio_decode"
#define DEFAULT_MAX_SAMPLES ((int64_t)1 << 28)
#define MAX_CHANNELS 1024
#define CHUNK_FRAMES 16384

typedef struct vbuf {
  const uint8_t *p;
  sf_count_t size, pos;
} vbuf;

static sf_count_t v_len(void *u) { return ((vbuf *)u)->size; }
static sf_count_t v_seek(sf_count_t off, int whence, void *u) {
  vbuf *b = u;
  sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? b->pos : b->size;
  if (off > b->size - base || base + off < 0) return -1; /* no overflow: both within [0, size] */
  b->pos = base + off;
  return b->pos;
}
static sf_count_t v_read(void *dst, sf_count_t n, void *u) {
  vbuf *b = u;
  if (n <= 0) return 0;
  sf_count_t k = b->size - b->pos < n ? b->size - b->pos : n;
  if (k > 0) memcpy(dst, b->p + b->pos, (size_t)k), b->pos += k;
  return k > 0 ? k : 0;
}
static sf_count_t v_write(const void *p, sf_count_t n, void *u) { return 0; }
static sf_count_t v_tell(void *u) { return ((vbuf *)u)->pos; }

static uint32_t le32(const uint8_t *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* libsndfile reads a WAV whose data chunk is cut short as a shorter clip; we call that
 * truncated. Walks the RIFF chunks (bounded by the buffer) to the "data" chunk and checks
 * that its declared size is present (0xFFFFFFFF, "unknown" from streaming writers, passes). */
static tfw_status check_riff(const uint8_t *p, size_t size, const char *name) {
  if (size < 12 || memcmp(p, "RIFF", 4) != 0 || memcmp(p + 8, "WAVE", 4) != 0) return TFW_OK;
  size_t off = 12;
  while (off + 8 <= size) {
    uint32_t len = le32(p + off + 4);
    size_t left = size - off - 8;
    if (memcmp(p + off, "data", 4) == 0) {
      if (len != 0xFFFFFFFFu && len > left)
        return tfw__error(TFW_EFORMAT, "%s: '%s': data chunk declares %u bytes, %zu are present "
                          "(truncated)", OP, name, len, left);
      return TFW_OK;
    }
    if (len > left)
      return tfw__error(TFW_EFORMAT, "%s: '%s': chunk '%.4s' declares %u bytes, %zu are present "
                        "(truncated)", OP, name, (const char *)(p + off), len, left);
    off += 8 + (size_t)len + (len & 1); /* chunks are padded to even sizes */
  }
  return tfw__error(TFW_EFORMAT, "%s: '%s': WAV without a data chunk (truncated)", OP, name);
}

tfw_tensor *tfw__audio_decode_named(const void *data, size_t size, const char *name,
                                    int64_t max_samples, int *sample_rate) {
  if (sample_rate) *sample_rate = 0;
  if (max_samples < 0) {
    tfw__error(TFW_EVALUE, "%s: max_samples is %lld, expected >= 0 (0: default)", OP,
               (long long)max_samples);
    return NULL;
  }
  if (!data && size) {
    tfw__error(TFW_EVALUE, "%s: data is NULL", OP);
    return NULL;
  }
  int64_t cap = max_samples ? max_samples : DEFAULT_MAX_SAMPLES;
  if (data && check_riff(data, size, name)) return NULL;
  static const uint8_t empty = 0;
  vbuf vb = {data ? data : &empty, (sf_count_t)size, 0};
  SF_VIRTUAL_IO vio = {v_len, v_seek, v_read, v_write, v_tell};
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *sf = sf_open_virtual(&vio, SFM_READ, &info, &vb);
  if (!sf) {
    tfw__error(TFW_EFORMAT, "%s: '%s': not a readable audio file: %s", OP, name,
               sf_error_number(sf_error(NULL)));
    return NULL;
  }
  tfw_tensor *t = NULL;
  float *buf = NULL;
  int64_t ch = info.channels, frames = info.frames, got = 0, room = 0;
  if (ch < 1 || ch > MAX_CHANNELS) {
    tfw__error(TFW_EFORMAT, "%s: '%s': %lld channels (expected 1..%d)", OP, name, (long long)ch,
               MAX_CHANNELS);
    goto out;
  }
  if (info.samplerate <= 0) {
    tfw__error(TFW_EFORMAT, "%s: '%s': sample rate %d", OP, name, info.samplerate);
    goto out;
  }
  if (frames < 0 || (frames != SF_COUNT_MAX && frames > cap / ch)) {
    tfw__error(TFW_EFORMAT, "%s: '%s': %lld frames x %lld channels exceed the cap of %lld "
               "samples", OP, name, (long long)frames, (long long)ch, (long long)cap);
    goto out;
  }
  sf_command(sf, SFC_SET_NORM_FLOAT, NULL, SF_TRUE);
  for (;;) {
    if (got + CHUNK_FRAMES > room) { /* grow by doubling, capped */
      int64_t want = room ? room * 2 : CHUNK_FRAMES;
      if (frames != SF_COUNT_MAX && want > frames + CHUNK_FRAMES) want = frames + CHUNK_FRAMES;
      if (want > cap / ch + CHUNK_FRAMES) want = cap / ch + CHUNK_FRAMES;
      if (want < got + CHUNK_FRAMES) want = got + CHUNK_FRAMES;
      float *nb = tfw__realloc(buf, (size_t)(want * ch) * sizeof *buf);
      if (!nb) {
        tfw__error(TFW_ENOMEM, "%s: '%s': out of memory (%lld samples)", OP, name,
                   (long long)(want * ch));
        goto out;
      }
      buf = nb, room = want;
    }
    sf_count_t r = sf_readf_float(sf, buf + got * ch, CHUNK_FRAMES);
    if (r < 0) r = 0;
    got += r;
    if (got > cap / ch) {
      tfw__error(TFW_EFORMAT, "%s: '%s': more than the cap of %lld samples", OP, name,
                 (long long)cap);
      goto out;
    }
    if (r < CHUNK_FRAMES) break;
  }
  if (sf_error(sf) != SF_ERR_NO_ERROR) {
    tfw__error(TFW_EFORMAT, "%s: '%s': corrupt audio data: %s", OP, name, sf_strerror(sf));
    goto out;
  }
  if (frames != SF_COUNT_MAX && got != frames) {
    tfw__error(TFW_EFORMAT, "%s: '%s': the header declares %lld frames, the data holds %lld "
               "(truncated)", OP, name, (long long)frames, (long long)got);
    goto out;
  }
  t = tfw__tensor_new(OP, TFW_DTYPE_F32, 2, (int64_t[]){got, ch});
  if (!t) goto out;
  if (got) memcpy(tfw__data(t), buf, (size_t)(got * ch) * sizeof *buf);
  if (sample_rate) *sample_rate = info.samplerate;
out:
  tfw__free(buf);
  sf_close(sf);
  return t;
}

tfw_tensor *tfw_audio_decode(const void *data, size_t size, int64_t max_samples,
                             int *sample_rate) {
  return tfw__audio_decode_named(data, size, "<memory>", max_samples, sample_rate);
}

tfw_tensor *tfw_audio_read(const char *path, int64_t max_samples, int *sample_rate) {
  if (sample_rate) *sample_rate = 0;
  uint8_t *buf;
  size_t n;
  if (tfw__data_read_file("audio_read", path, (size_t)1 << 32, &buf, &n)) return NULL;
  tfw_tensor *t = tfw__audio_decode_named(buf, n, path, max_samples, sample_rate);
  tfw__free(buf);
  return t;
}
