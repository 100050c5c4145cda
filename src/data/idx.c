/* IDX reader and writer (the MNIST format), plain or gzip.
 *
 * Hand-written: the format is a 4-byte magic, big-endian u32 dims and raw big-endian data,
 * nothing a library would add to; gzip goes through zlib. Hostile-input rules:
 *   header:  >= 4 bytes; bytes 0-1 zero; a known type code; rank <= TFW_MAX_DIMS
 *            (TFW_EUNSUPPORTED beyond); 4 * rank bytes of dims present
 *   size:    the product of dims and of the element size is computed with overflow checks
 *   data:    plain files must hold exactly that many bytes after the header (truncated or
 *            trailing data is an error); a gzip file must decompress to exactly the header
 *            plus that many bytes, with valid CRCs, and may not claim more than deflate's
 *            maximum ratio (1032:1) allows for its compressed size — so nothing of the
 *            claimed size is allocated before it is known to be possible. Concatenated gzip
 *            members are read as one stream (as gzip -d does).
 * Everything is decoded straight into the result tensor's storage and converted in place
 * (byte swap; i16 -> i32 widens forward from the back half of the buffer). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TFW_HAVE_ZLIB
#include <zlib.h>
#endif

#include "data/data_internal.h"

#define OP "idx_read"

typedef struct idx_type {
  uint8_t code;
  int file_size; /* bytes per element in the file */
  tfw_dtype dtype;
  const char *name;
} idx_type;

static const idx_type k_types[] = {
    {0x08, 1, TFW_DTYPE_U8, "u8"},   {0x09, 1, TFW_DTYPE_I8, "i8"},
    {0x0B, 2, TFW_DTYPE_I32, "i16"}, {0x0C, 4, TFW_DTYPE_I32, "i32"},
    {0x0D, 4, TFW_DTYPE_F32, "f32"}, {0x0E, 8, TFW_DTYPE_F64, "f64"},
};

static const idx_type *type_of_code(uint8_t code) {
  for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
    if (k_types[i].code == code) return &k_types[i];
  return NULL;
}

/* ---- a byte source: the buffer itself or an inflate stream over it -------------------- */
typedef struct src {
  const uint8_t *p;
  size_t size, pos; /* plain: position in p */
  const char *name;
  bool gz;
#ifdef TFW_HAVE_ZLIB
  z_stream z;
  bool z_live, z_done;
#endif
} src;

/* Reads up to n bytes into dst; *got < n only at the end of the data. */
static tfw_status src_read(src *s, void *dst, size_t n, size_t *got) {
  if (!s->gz) {
    size_t k = s->size - s->pos < n ? s->size - s->pos : n;
    if (k) memcpy(dst, s->p + s->pos, k);
    s->pos += k;
    *got = k;
    return TFW_OK;
  }
#ifdef TFW_HAVE_ZLIB
  size_t done = 0;
  while (done < n && !s->z_done) {
    size_t want = n - done;
    if (want > (1u << 30)) want = 1u << 30; /* avail_out is a 32-bit uInt */
    s->z.next_out = (Bytef *)dst + done;
    s->z.avail_out = (uInt)want;
    int r = inflate(&s->z, Z_NO_FLUSH);
    done += want - s->z.avail_out;
    if (r == Z_STREAM_END) {
      if (s->z.avail_in == 0) {
        s->z_done = true;
      } else if (s->z.avail_in >= 2 && s->z.next_in[0] == 0x1f && s->z.next_in[1] == 0x8b) {
        if (inflateReset(&s->z) != Z_OK)
          return tfw__error(TFW_EINTERNAL, OP ": '%s': inflateReset failed", s->name);
      } else {
        return tfw__error(TFW_EFORMAT, OP ": '%s': %u bytes of trailing garbage after the gzip "
                          "stream", s->name, (unsigned)s->z.avail_in);
      }
    } else if (r == Z_MEM_ERROR) {
      return tfw__error(TFW_ENOMEM, OP ": '%s': out of memory in zlib", s->name);
    } else if (r == Z_NEED_DICT || r == Z_DATA_ERROR || r == Z_STREAM_ERROR) {
      return tfw__error(TFW_EFORMAT, OP ": '%s': corrupt gzip data (%s)", s->name,
                        s->z.msg ? s->z.msg : "zlib error");
    } else if (r == Z_BUF_ERROR || (r == Z_OK && s->z.avail_in == 0 && s->z.avail_out > 0)) {
      if (s->z.avail_in == 0)
        return tfw__error(TFW_EFORMAT, OP ": '%s': truncated gzip stream (%zu compressed "
                          "bytes end before the stream does)", s->name, s->size);
    }
  }
  *got = done;
  return TFW_OK;
#else
  *got = 0;
  return tfw__error(TFW_EUNSUPPORTED, OP ": '%s' is gzip-compressed, but tenflower was built "
                    "without zlib (install zlib1g-dev and rebuild)", s->name);
#endif
}

static void src_close(src *s) {
#ifdef TFW_HAVE_ZLIB
  if (s->z_live) inflateEnd(&s->z);
  s->z_live = false;
#else
  (void)s;
#endif
}

/* In-place big-endian -> host conversion of n elements of the file type, which lie in the
 * last n * file_size bytes of out (out holds n elements of the tensor dtype). */
static void convert_in_place(const idx_type *ty, uint8_t *out, int64_t n) {
  if (ty->file_size == 1) return;
  if (ty->code == 0x0B) { /* i16 in [2n, 4n) -> i32 in [0, 4n): forward is safe, see top */
    const uint8_t *in = out + 2 * n;
    int32_t *o = (int32_t *)(void *)out;
    for (int64_t i = 0; i < n; i++) {
      int16_t v = (int16_t)(uint16_t)((uint16_t)in[2 * i] << 8 | in[2 * i + 1]);
      o[i] = v;
    }
    return;
  }
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  if (ty->file_size == 4) {
    uint32_t *w = (uint32_t *)(void *)out;
    for (int64_t i = 0; i < n; i++) w[i] = __builtin_bswap32(w[i]);
  } else {
    uint64_t *w = (uint64_t *)(void *)out;
    for (int64_t i = 0; i < n; i++) w[i] = __builtin_bswap64(w[i]);
  }
#endif
}

tfw_tensor *tfw__idx_parse_buffer(const uint8_t *data, size_t size, const char *name) {
  if (!name) name = "<memory>";
  src s = {.p = data, .size = size, .name = name};
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    s.gz = true;
#ifdef TFW_HAVE_ZLIB
    if (inflateInit2(&s.z, 15 + 16) != Z_OK) { /* 15 + 16: gzip wrapper only */
      tfw__error(TFW_ENOMEM, OP ": '%s': cannot start zlib", name);
      return NULL;
    }
    s.z_live = true;
    s.z.next_in = (Bytef *)(uintptr_t)data;
    /* size_t -> uInt: files over 4 GiB compressed would need chunked input */
    if (size > UINT32_MAX) {
      src_close(&s);
      tfw__error(TFW_EUNSUPPORTED, OP ": '%s': gzip files over 4 GiB are not supported", name);
      return NULL;
    }
    s.z.avail_in = (uInt)size;
#endif
  }
  tfw_tensor *t = NULL;
  uint8_t hdr[4 + 4 * TFW_MAX_DIMS];
  size_t got = 0;
  if (src_read(&s, hdr, 4, &got)) goto fail;
  if (got < 4) {
    tfw__error(TFW_EFORMAT, OP ": '%s': %zu bytes, shorter than the 4-byte IDX header", name,
               got);
    goto fail;
  }
  if (hdr[0] != 0 || hdr[1] != 0) {
    tfw__error(TFW_EFORMAT, OP ": '%s': bad magic 0x%02x%02x%02x%02x (IDX files start with two "
               "zero bytes, a type code and the rank)", name, hdr[0], hdr[1], hdr[2], hdr[3]);
    goto fail;
  }
  const idx_type *ty = type_of_code(hdr[2]);
  if (!ty) {
    tfw__error(TFW_EFORMAT, OP ": '%s': unknown type code 0x%02x (known: 0x08 u8, 0x09 i8, "
               "0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64)", name, hdr[2]);
    goto fail;
  }
  int ndim = hdr[3];
  if (ndim > TFW_MAX_DIMS) {
    tfw__error(TFW_EUNSUPPORTED, OP ": '%s': rank %d is above tenflower's maximum of %d", name,
               ndim, TFW_MAX_DIMS);
    goto fail;
  }
  if (src_read(&s, hdr + 4, 4 * (size_t)ndim, &got)) goto fail;
  if (got < 4 * (size_t)ndim) {
    tfw__error(TFW_EFORMAT, OP ": '%s': truncated header: rank %d needs %d bytes of dims, only "
               "%zu present", name, ndim, 4 * ndim, got);
    goto fail;
  }
  int64_t shape[TFW_MAX_DIMS];
  uint64_t numel = 1;
  bool overflow = false;
  for (int d = 0; d < ndim; d++) {
    const uint8_t *q = hdr + 4 + 4 * d;
    uint64_t v = (uint64_t)q[0] << 24 | (uint64_t)q[1] << 16 | (uint64_t)q[2] << 8 | q[3];
    shape[d] = (int64_t)v;
    if (v && numel > UINT64_MAX / v) overflow = true;
    else numel *= v;
  }
  char sh[TFW__SHAPE_BUF];
  tfw__shape_str(sh, sizeof sh, ndim, shape);
  if (overflow || numel > (uint64_t)INT64_MAX / 8) {
    tfw__error(TFW_EFORMAT, OP ": '%s': dims %s: the element count overflows", name, sh);
    goto fail;
  }
  uint64_t need = numel * (uint64_t)ty->file_size, hdr_len = 4 + 4 * (uint64_t)ndim;
  if (!s.gz) {
    uint64_t have = size - hdr_len;
    if (have != need) {
      tfw__error(TFW_EFORMAT, OP ": '%s': %s dims %s need %llu data bytes, the file has %llu "
                 "(%s)", name, ty->name, sh, (unsigned long long)need, (unsigned long long)have,
                 have < need ? "truncated" : "trailing bytes");
      goto fail;
    }
  } else if (need > (uint64_t)size * 1032u + 1024u) {
    tfw__error(TFW_EFORMAT, OP ": '%s': %s dims %s need %llu bytes, more than %zu gzip bytes "
               "can hold (truncated or hostile file)", name, ty->name, sh,
               (unsigned long long)need, size);
    goto fail;
  }
  t = tfw__tensor_new(OP, ty->dtype, ndim, shape);
  if (!t) goto fail;
  uint8_t *out = (uint8_t *)tfw__data(t);
  size_t out_bytes = (size_t)numel * tfw_dtype_size(ty->dtype);
  if (src_read(&s, out + (out_bytes - need), (size_t)need, &got)) goto fail;
  if (got < need) {
    tfw__error(TFW_EFORMAT, OP ": '%s': %s dims %s need %llu data bytes, the decompressed data "
               "has %zu (truncated)", name, ty->name, sh, (unsigned long long)need, got);
    goto fail;
  }
  if (s.gz) { /* exactly the end: also makes zlib check the trailing CRC and length */
    uint8_t extra[64];
    if (src_read(&s, extra, sizeof extra, &got)) goto fail;
    if (got) {
      tfw__error(TFW_EFORMAT, OP ": '%s': trailing bytes after the %llu data bytes that dims %s "
                 "need", name, (unsigned long long)need, sh);
      goto fail;
    }
  }
  src_close(&s);
  convert_in_place(ty, out, (int64_t)numel);
  return t;
fail:
  src_close(&s);
  tfw_release(t);
  return NULL;
}

tfw_tensor *tfw_idx_read(const char *path) {
  if (!path) {
    tfw__error(TFW_EVALUE, OP ": path is NULL");
    return NULL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    tfw__error(TFW_EIO, OP ": cannot open '%s': %s", path, strerror(errno));
    return NULL;
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    tfw__error(TFW_EIO, OP ": '%s' is not a regular file", path);
    close(fd);
    return NULL;
  }
  size_t size = (size_t)sb.st_size;
  void *map = NULL;
  if (size > 0) {
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      tfw__error(TFW_EIO, OP ": cannot map '%s': %s", path, strerror(errno));
      close(fd);
      return NULL;
    }
    (void)madvise(map, size, MADV_SEQUENTIAL);
  }
  close(fd);
  static const uint8_t empty[1] = {0};
  tfw_tensor *t = tfw__idx_parse_buffer(map ? (const uint8_t *)map : empty, size, path);
  if (map) munmap(map, size);
  return t;
}

/* ---- writer --------------------------------------------------------------------------- */
static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

tfw_status tfw_idx_write(const char *path, const tfw_tensor *t) {
  if (!path) return tfw__error(TFW_EVALUE, "idx_write: path is NULL");
  if (tfw__check_tensor("idx_write", "t", t)) return TFW_EVALUE;
  uint8_t code;
  switch (t->dtype) {
  case TFW_DTYPE_U8: code = 0x08; break;
  case TFW_DTYPE_I8: code = 0x09; break;
  case TFW_DTYPE_I32: code = 0x0C; break;
  case TFW_DTYPE_F32: code = 0x0D; break;
  case TFW_DTYPE_F64: code = 0x0E; break;
  default:
    return tfw__error(TFW_EDTYPE, "idx_write: '%s': dtype %s has no IDX type code (u8, i8, i32, "
                      "f32, f64 do)", path, tfw_dtype_name(t->dtype));
  }
  for (int d = 0; d < t->ndim; d++)
    if ((uint64_t)t->shape[d] > UINT32_MAX)
      return tfw__error(TFW_ESHAPE, "idx_write: '%s': dim %d is %lld, IDX dims are 32-bit", path,
                        d, (long long)t->shape[d]);
  bool gz = ends_with(path, ".gz");
#ifndef TFW_HAVE_ZLIB
  if (gz)
    return tfw__error(TFW_EUNSUPPORTED, "idx_write: '%s': gzip output needs tenflower built "
                      "with zlib", path);
#endif
  tfw_tensor *c = tfw__as_contiguous(t, t->dtype);
  if (!c) return tfw_last_status();
  size_t es = tfw_dtype_size(t->dtype), n = (size_t)tfw_tensor_numel(c);
  size_t hdr = 4 + 4 * (size_t)t->ndim, total = hdr + n * es;
  uint8_t *buf = tfw__malloc(total ? total : 1);
  if (!buf) {
    tfw_release(c);
    return tfw__error(TFW_ENOMEM, "idx_write: out of memory for %zu bytes", total);
  }
  buf[0] = buf[1] = 0;
  buf[2] = code;
  buf[3] = (uint8_t)t->ndim;
  for (int d = 0; d < t->ndim; d++) {
    uint32_t v = (uint32_t)t->shape[d];
    buf[4 + 4 * d] = (uint8_t)(v >> 24), buf[5 + 4 * d] = (uint8_t)(v >> 16);
    buf[6 + 4 * d] = (uint8_t)(v >> 8), buf[7 + 4 * d] = (uint8_t)v;
  }
  const uint8_t *src_p = (const uint8_t *)tfw__data(c);
  for (size_t i = 0; i < n; i++) /* big-endian: bytes in reverse order on this host */
    for (size_t b = 0; b < es; b++)
      buf[hdr + i * es + b] = src_p[i * es + (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                                                  ? es - 1 - b : b)];
  tfw_release(c);
  tfw_status st;
#ifdef TFW_HAVE_ZLIB
  if (gz) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      tfw__free(buf);
      return tfw__error(TFW_ENOMEM, "idx_write: cannot start zlib");
    }
    size_t cap = deflateBound(&z, (uLong)total);
    uint8_t *zb = tfw__malloc(cap);
    if (!zb || total > UINT32_MAX || cap > UINT32_MAX) {
      deflateEnd(&z);
      tfw__free(buf), tfw__free(zb);
      return tfw__error(zb ? TFW_EUNSUPPORTED : TFW_ENOMEM,
                        "idx_write: '%s': cannot compress %zu bytes", path, total);
    }
    z.next_in = buf, z.avail_in = (uInt)total, z.next_out = zb, z.avail_out = (uInt)cap;
    int r = deflate(&z, Z_FINISH);
    size_t zlen = cap - z.avail_out;
    deflateEnd(&z);
    tfw__free(buf);
    if (r != Z_STREAM_END) {
      tfw__free(zb);
      return tfw__error(TFW_EINTERNAL, "idx_write: deflate did not finish (%d)", r);
    }
    st = tfw__write_file_atomic("idx_write", path, zb, zlen);
    tfw__free(zb);
    return st;
  }
#endif
  st = tfw__write_file_atomic("idx_write", path, buf, total);
  tfw__free(buf);
  return st;
}
