/* NPY (NumPy's array file, format versions 1.0, 2.0, 3.0): reader, writer, and the shared
 * parser the NPZ backend uses for its members.
 *
 * Hand-written: the format is a magic string, a little-endian header length and a Python
 * dict literal of three keys, then raw data; no Debian package offers a C reader (cnpy is
 * C++ and trusts its input). Only the literal forms NumPy writes are accepted:
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * (keys in any order, single or double quotes, optional trailing commas and 'L' suffixes
 * from Python 2). Hostile-input rules: the header length is capped (1 MiB) and must lie in
 * the file; every key exactly once; descr a simple type (structured dtypes, strings and
 * object arrays are refused: no pickles, ever); rank <= TFW_MAX_DIMS; the product of the
 * dims and the item size is overflow-checked and must equal the bytes left in the file
 * exactly (truncated or trailing data are errors); bool bytes must be 0 or 1; u64 values
 * must fit in i64. Native-order data of a tenflower dtype is viewed without a copy (from a
 * mapped file: no read at all); the rest is converted (byte swap, widening). */
#include <stdio.h>
#include <string.h>

#include "data/data_internal.h"
#include "data/reader_internal.h"

#define NPY_MAX_HEADER (1u << 20)

typedef struct npy_type {
  char kind;       /* 'f', 'i', 'u', 'b' */
  int size;        /* bytes in the file */
  tfw_dtype dtype; /* what it becomes */
} npy_type;

static const npy_type k_types[] = {
    {'f', 2, TFW_DTYPE_F16}, {'f', 4, TFW_DTYPE_F32}, {'f', 8, TFW_DTYPE_F64},
    {'i', 1, TFW_DTYPE_I8},  {'i', 2, TFW_DTYPE_I32}, {'i', 4, TFW_DTYPE_I32},
    {'i', 8, TFW_DTYPE_I64}, {'u', 1, TFW_DTYPE_U8},  {'u', 2, TFW_DTYPE_I32},
    {'u', 4, TFW_DTYPE_I64}, {'u', 8, TFW_DTYPE_I64}, {'b', 1, TFW_DTYPE_BOOL},
};

/* ---- the header's dict literal ---------------------------------------------------------- */
typedef struct hp {
  const char *s;
  size_t n, pos;
} hp;

static void hws(hp *p) {
  while (p->pos < p->n && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' ||
                           p->s[p->pos] == '\r'))
    p->pos++;
}
static bool heat(hp *p, char c) {
  hws(p);
  if (p->pos < p->n && p->s[p->pos] == c) return p->pos++, true;
  return false;
}
/* A quoted string without escapes (all NumPy writes); *out points into the header. */
static bool hstr(hp *p, const char **out, size_t *len) {
  hws(p);
  if (p->pos >= p->n || (p->s[p->pos] != '\'' && p->s[p->pos] != '"')) return false;
  char q = p->s[p->pos++];
  size_t start = p->pos;
  while (p->pos < p->n && p->s[p->pos] != q) {
    if (p->s[p->pos] == '\\' || (unsigned char)p->s[p->pos] < 0x20) return false;
    p->pos++;
  }
  if (p->pos >= p->n) return false;
  *out = p->s + start, *len = p->pos - start;
  p->pos++;
  return true;
}

static tfw_status herr(const char *fmt, const char *name, const hp *p, const char *what) {
  return tfw__error(TFW_EFORMAT, "%s: '%s': header: %s at header byte %zu", fmt, name, what,
                    p->pos);
}

tfw_status tfw__npy_parse(const char *fmt, const char *name, tfw__blob *blob, size_t off,
                          size_t size, tfw_tensor **out) {
  *out = NULL;
  const uint8_t *d = (const uint8_t *)tfw__blob_data(blob) + off;
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  if (size < 10 || memcmp(d, magic, 6) != 0)
    return tfw__error(TFW_EFORMAT, "%s: '%s': not an NPY file (bad magic; %zu bytes)", fmt, name,
                      size);
  uint8_t major = d[6];
  size_t hlen, hstart;
  if (major == 1) {
    hlen = (size_t)d[8] | (size_t)d[9] << 8;
    hstart = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12)
      return tfw__error(TFW_EFORMAT, "%s: '%s': truncated header (%zu bytes)", fmt, name, size);
    hlen = (size_t)d[8] | (size_t)d[9] << 8 | (size_t)d[10] << 16 | (size_t)d[11] << 24;
    hstart = 12;
  } else {
    return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': NPY format version %u.%u (known: 1.0, 2.0, "
                      "3.0)", fmt, name, major, d[7]);
  }
  if (hlen > NPY_MAX_HEADER)
    return tfw__error(TFW_EFORMAT, "%s: '%s': header length %zu above the cap of %u bytes", fmt,
                      name, hlen, NPY_MAX_HEADER);
  if (hlen > size - hstart)
    return tfw__error(TFW_EFORMAT, "%s: '%s': header of %zu bytes runs past the end of the "
                      "file (%zu bytes; truncated)", fmt, name, hlen, size);
  hp p = {(const char *)d + hstart, hlen, 0};
  const char *descr = NULL;
  size_t descr_len = 0;
  int fortran = -1, ndim = -1;
  int64_t shape[TFW_MAX_DIMS];
  if (!heat(&p, '{')) return herr(fmt, name, &p, "expected '{'");
  while (!heat(&p, '}')) {
    const char *key;
    size_t klen;
    if (!hstr(&p, &key, &klen)) return herr(fmt, name, &p, "expected a quoted key or '}'");
    if (!heat(&p, ':')) return herr(fmt, name, &p, "expected ':'");
    if (klen == 5 && !memcmp(key, "descr", 5)) {
      if (descr) return herr(fmt, name, &p, "duplicate key 'descr'");
      hws(&p);
      if (p.pos < p.n && p.s[p.pos] == '[')
        return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': structured dtypes (a descr list) are not "
                          "supported", fmt, name);
      if (!hstr(&p, &descr, &descr_len)) return herr(fmt, name, &p, "descr is not a string");
    } else if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
      if (fortran >= 0) return herr(fmt, name, &p, "duplicate key 'fortran_order'");
      hws(&p);
      if (p.n - p.pos >= 4 && !memcmp(p.s + p.pos, "True", 4)) fortran = 1, p.pos += 4;
      else if (p.n - p.pos >= 5 && !memcmp(p.s + p.pos, "False", 5)) fortran = 0, p.pos += 5;
      else return herr(fmt, name, &p, "fortran_order is not True or False");
    } else if (klen == 5 && !memcmp(key, "shape", 5)) {
      if (ndim >= 0) return herr(fmt, name, &p, "duplicate key 'shape'");
      if (!heat(&p, '(')) return herr(fmt, name, &p, "shape is not a tuple");
      ndim = 0;
      while (!heat(&p, ')')) {
        hws(&p);
        if (p.pos >= p.n || p.s[p.pos] < '0' || p.s[p.pos] > '9')
          return herr(fmt, name, &p, "expected a non-negative integer in shape");
        uint64_t v = 0;
        while (p.pos < p.n && p.s[p.pos] >= '0' && p.s[p.pos] <= '9') {
          v = v * 10 + (uint64_t)(p.s[p.pos++] - '0');
          if (v > (uint64_t)INT64_MAX) return herr(fmt, name, &p, "dim larger than 2^63-1");
        }
        if (p.pos < p.n && p.s[p.pos] == 'L') p.pos++;
        if (ndim == TFW_MAX_DIMS)
          return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': more than %d dims", fmt, name,
                            TFW_MAX_DIMS);
        shape[ndim++] = (int64_t)v;
        if (!heat(&p, ',')) {
          if (!heat(&p, ')')) return herr(fmt, name, &p, "expected ',' or ')' in shape");
          break;
        }
      }
    } else {
      return tfw__error(TFW_EFORMAT, "%s: '%s': header: unknown key '%.*s'", fmt, name,
                        (int)(klen > 40 ? 40 : klen), key);
    }
    if (!heat(&p, ',')) {
      if (!heat(&p, '}')) return herr(fmt, name, &p, "expected ',' or '}'");
      break;
    }
  }
  hws(&p);
  if (p.pos != p.n) return herr(fmt, name, &p, "unexpected text after the dict");
  if (!descr || fortran < 0 || ndim < 0)
    return tfw__error(TFW_EFORMAT, "%s: '%s': header lacks '%s'", fmt, name,
                      !descr ? "descr" : fortran < 0 ? "fortran_order" : "shape");
  /* descr: byte order, kind, size */
  char bo = descr_len ? descr[0] : 0, kind = descr_len > 1 ? descr[1] : 0;
  int isz = 0;
  for (size_t i = 2; i < descr_len && i < 6; i++)
    isz = descr[i] >= '0' && descr[i] <= '9' ? isz * 10 + (descr[i] - '0') : -1000;
  if (kind == 'O' || (descr_len >= 2 && descr[0] == 'O'))
    return tfw__error(TFW_EFORMAT, "%s: '%s': object arrays (dtype 'O', pickled Python objects) "
                      "are refused: they can carry code", fmt, name);
  const npy_type *ty = NULL;
  if (descr_len >= 3 && descr_len <= 4 && strchr("<>|=", bo) && bo)
    for (size_t i = 0; i < sizeof k_types / sizeof k_types[0]; i++)
      if (k_types[i].kind == kind && k_types[i].size == isz) ty = &k_types[i];
  if (!ty)
    return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': dtype '%.*s' is not supported (bool, int8-64, "
                      "uint8-64, float16/32/64)", fmt, name, (int)(descr_len > 20 ? 20 : descr_len),
                      descr);
  bool swap = isz > 1 && bo == '>'; /* '=' and '|' are native (little-endian hosts only) */
  if (isz > 1 && bo == '|')
    return tfw__error(TFW_EFORMAT, "%s: '%s': dtype '%.*s' needs a byte order", fmt, name,
                      (int)descr_len, descr);
  uint64_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] != 0 && numel > UINT64_MAX / (uint64_t)shape[i])
      return tfw__error(TFW_EFORMAT, "%s: '%s': shape overflows", fmt, name);
    numel *= (uint64_t)shape[i];
  }
  size_t data_off = hstart + hlen, left = size - data_off;
  if (numel > left / (uint64_t)isz || numel * (uint64_t)isz != left) {
    char b[TFW__SHAPE_BUF], need[48];
    tfw__shape_str(b, sizeof b, ndim, shape);
    bool more = numel > left / (uint64_t)isz;
    if (more && numel > UINT64_MAX / (uint64_t)isz) snprintf(need, sizeof need, "more than 2^64");
    else snprintf(need, sizeof need, "%llu", (unsigned long long)(numel * (uint64_t)isz));
    return tfw__error(TFW_EFORMAT, "%s: '%s': %.*s %s needs %s data bytes, the file has %zu (%s)",
                      fmt, name, (int)descr_len, descr, b, need, left,
                      more ? "truncated" : "trailing data");
  }
  const uint8_t *src = d + data_off;
  if (ty->kind == 'b')
    for (uint64_t i = 0; i < numel; i++)
      if (src[i] > 1)
        return tfw__error(TFW_EFORMAT, "%s: '%s': bool element %llu is %u (not 0 or 1)", fmt,
                          name, (unsigned long long)i, src[i]);
  int64_t strides[TFW_MAX_DIMS];
  int64_t acc = 1;
  for (int i = 0; i < ndim; i++) { /* Fortran: first dim fastest */
    int k = fortran ? i : ndim - 1 - i;
    strides[k] = acc;
    acc *= shape[k] > 0 ? shape[k] : 1;
  }
  bool same = (int)tfw_dtype_size(ty->dtype) == isz && !swap && !(ty->kind == 'u' && isz == 8);
  if (same) {
    *out = tfw__blob_tensor(blob, off + data_off, ty->dtype, ndim, shape, strides);
    return *out ? TFW_OK : tfw_last_status();
  }
  /* convert into a new buffer laid out in file order, then view it with the same strides */
  int64_t n = (int64_t)numel;
  tfw_tensor *flat = tfw__tensor_new(fmt, ty->dtype, 1, &n);
  if (!flat) return tfw_last_status();
  uint8_t *dst = (uint8_t *)tfw__data(flat);
  for (int64_t i = 0; i < n; i++) {
    const uint8_t *e = src + (size_t)i * (size_t)isz;
    uint64_t v = 0;
    for (int b = 0; b < isz; b++) v |= (uint64_t)e[swap ? isz - 1 - b : b] << (8 * b);
    if (ty->kind == 'f') { /* f16 with swap only: same size */
      memcpy(dst + (size_t)i * (size_t)isz, &v, (size_t)isz);
    } else if (ty->kind == 'i') {
      int64_t x = isz == 1 ? (int8_t)v : isz == 2 ? (int16_t)v : isz == 4 ? (int32_t)v : (int64_t)v;
      if (ty->dtype == TFW_DTYPE_I32) ((int32_t *)(void *)dst)[i] = (int32_t)x;
      else ((int64_t *)(void *)dst)[i] = x;
    } else { /* 'u' */
      if (isz == 8 && v > (uint64_t)INT64_MAX) {
        tfw_release(flat);
        return tfw__error(TFW_EUNSUPPORTED, "%s: '%s': uint64 element %lld is %llu, above "
                          "int64's range (tenflower has no uint64)", fmt, name, (long long)i,
                          (unsigned long long)v);
      }
      if (ty->dtype == TFW_DTYPE_I32) ((int32_t *)(void *)dst)[i] = (int32_t)v;
      else ((int64_t *)(void *)dst)[i] = (int64_t)v;
    }
  }
  *out = tfw__tensor_view(flat, ndim, shape, strides, 0);
  tfw_release(flat);
  return *out ? TFW_OK : tfw__error(TFW_ENOMEM, "%s: out of memory", fmt);
}

/* ---- arrays as records ----------------------------------------------------------------------- */
tfw_status tfw__arrays_to_table(tfw_reader *r, int n, const char *const *names, tfw_tensor **arrays) {
  bool rows = n > 0;
  for (int i = 0; i < n; i++)
    if (tfw_tensor_ndim(arrays[i]) == 0 ||
        tfw_tensor_shape(arrays[i])[0] != tfw_tensor_shape(arrays[0])[0])
      rows = false;
  tfw_field *f = tfw__calloc(n > 0 ? (size_t)n : 1, sizeof *f);
  tfw_column *c = tfw__calloc(n > 0 ? (size_t)n : 1, sizeof *c);
  tfw_status s = TFW_OK;
  if (!f || !c) {
    s = tfw__error(TFW_ENOMEM, "npy: out of memory");
    goto out;
  }
  for (int i = 0; i < n; i++) {
    const tfw_tensor *a = arrays[i];
    f[i].name = names[i];
    f[i].dtype = a->dtype;
    f[i].ndim = rows ? a->ndim - 1 : a->ndim;
    for (int d = 0; d < f[i].ndim; d++) f[i].shape[d] = a->shape[d + (rows ? 1 : 0)];
    if (rows) {
      c[i].values = tfw_retain(arrays[i]);
    } else { /* one record: [1, shape...] */
      int64_t shape[TFW_MAX_DIMS], strides[TFW_MAX_DIMS];
      if (a->ndim == TFW_MAX_DIMS) {
        s = tfw__error(TFW_EUNSUPPORTED, "npy: '%s' has %d dims, and as one whole record needs "
                       "one more", names[i], a->ndim);
        goto out;
      }
      shape[0] = 1, strides[0] = 1;
      for (int d = 0; d < a->ndim; d++) shape[d + 1] = a->shape[d], strides[d + 1] = a->strides[d];
      c[i].values = tfw__tensor_view(a, a->ndim + 1, shape, strides, a->offset);
      if (!c[i].values) {
        s = tfw__error(TFW_ENOMEM, "npy: out of memory");
        goto out;
      }
    }
  }
  if ((s = tfw__reader_set_schema(r, n, f))) goto out;
  s = tfw__reader_set_table(r, rows ? tfw_tensor_shape(arrays[0])[0] : n > 0 ? 1 : 0, c);
out:
  if (c)
    for (int i = 0; i < n; i++) tfw_column_clear(&c[i]);
  tfw__free(c);
  tfw__free(f);
  return s;
}

static int npy_sniff(const uint8_t *h, size_t n) {
  return n >= 6 && !memcmp(h, "\x93NUMPY", 6) ? 100 : 0;
}

static tfw_status npy_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  tfw_tensor *t;
  tfw_status s = tfw__npy_parse("npy", in->name, in->blob, 0, in->size, &t);
  if (s) return s;
  const char *name = "array";
  s = tfw__arrays_to_table(r, 1, &name, &t);
  tfw_release(t);
  return s;
}

const tfw__reader_backend tfw__backend_npy = {"npy", ".npy", npy_sniff, npy_open};

tfw_tensor *tfw_npy_read(const char *path, const tfw_reader_options *opt) {
  tfw__blob *b;
  if (tfw__input_load(path, opt, &b)) return NULL;
  tfw_tensor *t = NULL;
  tfw__npy_parse("npy", path, b, 0, tfw__blob_size(b), &t);
  tfw__blob_release(b);
  return t;
}

/* ---- writer ------------------------------------------------------------------------------------ */
tfw_status tfw_npy_write(const char *path, const tfw_tensor *t) {
  if (!path || !t) return tfw__error(TFW_EVALUE, "npy_write: NULL argument");
  const char *descr;
  switch (t->dtype) {
  case TFW_DTYPE_F32: descr = "<f4"; break;
  case TFW_DTYPE_F64: descr = "<f8"; break;
  case TFW_DTYPE_F16: descr = "<f2"; break;
  case TFW_DTYPE_I8: descr = "|i1"; break;
  case TFW_DTYPE_U8: descr = "|u1"; break;
  case TFW_DTYPE_I32: descr = "<i4"; break;
  case TFW_DTYPE_I64: descr = "<i8"; break;
  case TFW_DTYPE_BOOL: descr = "|b1"; break;
  default:
    return tfw__error(TFW_EDTYPE, "npy_write: '%s': dtype %s has no NumPy equivalent", path,
                      tfw_dtype_name(t->dtype));
  }
  char hdr[512];
  int k = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < t->ndim; i++) /* NumPy writes (3, 4), (3,) and () */
    k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
  k += snprintf(hdr + k, sizeof hdr - (size_t)k, "%s), }", t->ndim == 1 ? "," : "");
  size_t total = 10 + (size_t)k + 1, pad = (64 - total % 64) % 64;
  size_t hlen = (size_t)k + pad + 1;
  tfw_tensor *c = tfw__as_contiguous(t, t->dtype);
  if (!c) return tfw_last_status();
  size_t nbytes = (size_t)tfw__numel(t->ndim, t->shape) * tfw_dtype_size(t->dtype);
  uint8_t *buf = tfw__malloc(10 + hlen + nbytes);
  if (!buf) {
    tfw_release(c);
    return tfw__error(TFW_ENOMEM, "npy_write: out of memory");
  }
  memcpy(buf, "\x93NUMPY\x01\x00", 8);
  buf[8] = (uint8_t)(hlen & 0xFF), buf[9] = (uint8_t)(hlen >> 8);
  memcpy(buf + 10, hdr, (size_t)k);
  memset(buf + 10 + k, ' ', pad);
  buf[10 + hlen - 1] = '\n';
  if (nbytes) memcpy(buf + 10 + hlen, tfw__data(c), nbytes);
  tfw_release(c);
  tfw_status s = tfw__write_file_atomic("npy_write", path, buf, 10 + hlen + nbytes);
  tfw__free(buf);
  return s;
}
