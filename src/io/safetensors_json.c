/* safetensors header parser: a strict JSON reader for the one schema the format uses.
 *
 * Written by hand rather than with cJSON (a Debian package DESIGN.md lists) because the
 * header is untrusted input on the load path and cJSON gets the points that matter here
 * wrong or leaves them to us: it keeps numbers as double (offsets and dims must be exact
 * 64-bit integers, or overflow checks are meaningless), accepts duplicate keys, does not
 * validate UTF-8 or reject lone surrogates, allocates one node per value outside our
 * allocator (a 100 MB header of tiny values becomes gigabytes of nodes) and recurses to a
 * compile-time depth. This parser makes two passes over the text: the first validates the
 * syntax and counts the top-level entries, the second fills an array of exactly that size;
 * all strings go into one arena of header-length bytes, so memory is bounded by a small
 * multiple of the header size, itself bounded by the file size and 100 MB. Values of
 * unknown keys inside a tensor entry are skipped (the reference ignores them too), with
 * nesting capped at TFW_SAFETENSORS_MAX_DEPTH. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors_impl.h"

const tfw__st_dtype tfw__st_dtypes[] = {
    {"BOOL", 8, TFW_DTYPE_BOOL, 0},        {"F4", 4, TFW_DTYPE_COUNT, 1},
    {"F6_E2M3", 6, TFW_DTYPE_COUNT, 2},    {"F6_E3M2", 6, TFW_DTYPE_COUNT, 3},
    {"U8", 8, TFW_DTYPE_U8, 4},            {"I8", 8, TFW_DTYPE_I8, 5},
    {"F8_E5M2", 8, TFW_DTYPE_COUNT, 6},    {"F8_E4M3", 8, TFW_DTYPE_COUNT, 7},
    {"F8_E8M0", 8, TFW_DTYPE_COUNT, 8},    {"I16", 16, TFW_DTYPE_COUNT, 9},
    {"U16", 16, TFW_DTYPE_COUNT, 10},      {"F16", 16, TFW_DTYPE_F16, 11},
    {"BF16", 16, TFW_DTYPE_BF16, 12},      {"I32", 32, TFW_DTYPE_I32, 13},
    {"U32", 32, TFW_DTYPE_COUNT, 14},      {"F32", 32, TFW_DTYPE_F32, 15},
    {"C64", 64, TFW_DTYPE_COUNT, 16},      {"F64", 64, TFW_DTYPE_F64, 17},
    {"I64", 64, TFW_DTYPE_I64, 18},        {"U64", 64, TFW_DTYPE_COUNT, 19},
};
const int tfw__st_n_dtypes = (int)(sizeof tfw__st_dtypes / sizeof tfw__st_dtypes[0]);

int tfw__st_dtype_of(tfw_dtype dt) {
  for (int i = 0; i < tfw__st_n_dtypes; i++)
    if (tfw__st_dtypes[i].dtype == dt && dt != TFW_DTYPE_COUNT) return i;
  return -1;
}

/* ---- the reader: the shared lexer (io/json.c) under short names ------------------------- */
typedef tfw__json jp;
#define jerr tfw__json_err
#define ws tfw__json_ws
#define eat tfw__json_eat
#define str tfw__json_str
#define skip_number tfw__json_skip_number
#define skip_value tfw__json_skip_value
#define NAMEFMT "%.*s"
#define NAMEARG(p) (int)(strlen(p) > 80 ? 80 : strlen(p)), (p) /* names in messages */

/* A string used as a name or metadata text: no NUL inside, length capped. */
static tfw_status name_str(jp *p, const char **out, const char *what, size_t cap) {
  size_t len, at = p->pos;
  if (str(p, out, &len)) return TFW_EFORMAT;
  if (strlen(*out) != len)
    return tfw__error(TFW_EFORMAT, "safetensors: %s at header byte %zu contains a NUL character",
                      what, at);
  if (len > cap)
    return tfw__error(TFW_EFORMAT, "safetensors: %s at header byte %zu is %zu bytes long (cap %zu)",
                      what, at, len, cap);
  return TFW_OK;
}

/* A non-negative integer that must be exact: no sign, fraction or exponent. */
static tfw_status uint_val(jp *p, uint64_t *v, const char *name, const char *field) {
  ws(p);
  size_t at = p->pos;
  if (p->pos < p->n && p->s[p->pos] == '-')
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' %s has a negative value "
                      "at header byte %zu", NAMEARG(name), field, at);
  if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' %s: expected a "
                      "non-negative integer at header byte %zu", NAMEARG(name), field, at);
  uint64_t x = 0;
  int overflow = 0;
  if (p->s[p->pos] == '0') p->pos++;
  else
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
      unsigned d = (unsigned)(p->s[p->pos] - '0');
      if (x > (UINT64_MAX - d) / 10) overflow = 1;
      x = x * 10 + d;
      p->pos++;
    }
  if (p->pos < p->n && strchr(".eE0123456789", p->s[p->pos]) && p->s[p->pos])
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' %s: '%.*s...' at header "
                      "byte %zu is not a plain integer", NAMEARG(name), field,
                      (int)(p->pos + 1 - at > 40 ? 40 : p->pos + 1 - at), p->s + at, at);
  if (overflow || x > (uint64_t)INT64_MAX)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' %s: '%.*s' at header "
                      "byte %zu is larger than 2^63-1", NAMEARG(name), field,
                      (int)(p->pos - at > 40 ? 40 : p->pos - at), p->s + at, at);
  *v = x;
  return TFW_OK;
}

static tfw_status parse_shape(jp *p, tfw__st_entry *e) {
  if (!eat(p, '['))
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' shape is not an array "
                      "(header byte %zu)", NAMEARG(e->name), p->pos);
  e->ndim = 0;
  e->numel = 1;
  if (eat(p, ']')) return TFW_OK;
  do {
    uint64_t d;
    if (uint_val(p, &d, e->name, "shape")) return TFW_EFORMAT;
    if (d != 0 && e->numel > UINT64_MAX / d)
      return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' shape overflows: the "
                        "product of its dims exceeds 2^64 at dim %d (%" PRIu64 ")",
                        NAMEARG(e->name), e->ndim, d);
    e->numel *= d;
    if (e->ndim < TFW_MAX_DIMS) e->shape[e->ndim] = (int64_t)d;
    if (e->ndim == INT32_MAX - 1) return jerr(p, "too many dims");
    e->ndim++;
  } while (eat(p, ','));
  if (!eat(p, ']')) return jerr(p, "expected ',' or ']' in shape");
  return TFW_OK;
}

static tfw_status parse_entry(jp *p, tfw__st_entry *e) {
  if (!eat(p, '{'))
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' is not a JSON object "
                      "(header byte %zu)", NAMEARG(e->name), p->pos);
  int seen_dtype = 0, seen_shape = 0, seen_off = 0;
  if (!eat(p, '}')) {
    do {
      const char *key;
      size_t len, mark = p->arena_pos;
      if (str(p, &key, &len)) return TFW_EFORMAT;
      p->arena_pos = mark; /* keys are compared, not kept */
      if (!eat(p, ':')) return jerr(p, "expected ':'");
      int *seen = !strcmp(key, "dtype") ? &seen_dtype : !strcmp(key, "shape") ? &seen_shape
                : !strcmp(key, "data_offsets") ? &seen_off : NULL;
      if (seen && (*seen)++)
        return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' has a duplicate "
                          "'%s' field", NAMEARG(e->name), key);
      if (seen == &seen_dtype) {
        const char *dt;
        size_t at = p->pos;
        ws(p);
        if (p->pos >= p->n || p->s[p->pos] != '"')
          return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' dtype is not a "
                            "string (header byte %zu)", NAMEARG(e->name), at);
        if (str(p, &dt, &len)) return TFW_EFORMAT;
        p->arena_pos = mark;
        e->dtype = -1;
        for (int i = 0; i < tfw__st_n_dtypes; i++)
          if (strlen(tfw__st_dtypes[i].name) == len && !strcmp(dt, tfw__st_dtypes[i].name))
            e->dtype = i;
        if (e->dtype < 0)
          return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' has unknown dtype "
                            "'%.40s'", NAMEARG(e->name), dt);
      } else if (seen == &seen_shape) {
        if (parse_shape(p, e)) return TFW_EFORMAT;
      } else if (seen == &seen_off) {
        const char *bad = "data_offsets is not an array of two integers";
        if (!eat(p, '[')) goto bad_offsets;
        if (uint_val(p, &e->begin, e->name, "data_offsets")) return TFW_EFORMAT;
        if (!eat(p, ',')) goto bad_offsets;
        if (uint_val(p, &e->end, e->name, "data_offsets")) return TFW_EFORMAT;
        if (!eat(p, ']')) goto bad_offsets;
        continue;
      bad_offsets:
        return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' %s (header byte %zu)",
                          NAMEARG(e->name), bad, p->pos);
      } else if (skip_value(p, 1)) {
        return TFW_EFORMAT;
      }
    } while (eat(p, ','));
    if (!eat(p, '}')) return jerr(p, "expected ',' or '}' in tensor entry");
  }
  if (!seen_dtype || !seen_shape || !seen_off)
    return tfw__error(TFW_EFORMAT, "safetensors: tensor '" NAMEFMT "' lacks the '%s' field",
                      NAMEARG(e->name), !seen_dtype ? "dtype" : !seen_shape ? "shape"
                                                                   : "data_offsets");
  return TFW_OK;
}

static tfw_status parse_metadata(jp *p, tfw__st_header *h, int *seen_meta) {
  if ((*seen_meta)++)
    return tfw__error(TFW_EFORMAT, "safetensors: duplicate '__metadata__' key");
  ws(p);
  if (p->n - p->pos >= 4 && memcmp(p->s + p->pos, "null", 4) == 0) {
    p->pos += 4;
    return TFW_OK;
  }
  if (!eat(p, '{')) return jerr(p, "'__metadata__' must be an object of strings");
  if (eat(p, '}')) return TFW_OK;
  do {
    const char **kv = h->meta + 2 * h->n_meta;
    if (name_str(p, &kv[0], "metadata key", TFW_SAFETENSORS_MAX_NAME)) return TFW_EFORMAT;
    if (!eat(p, ':')) return jerr(p, "expected ':'");
    ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"')
      return tfw__error(TFW_EFORMAT, "safetensors: metadata value of '" NAMEFMT "' is not a "
                        "string (header byte %zu): __metadata__ maps strings to strings",
                        NAMEARG(kv[0]), p->pos);
    if (name_str(p, &kv[1], "metadata value", (size_t)-1)) return TFW_EFORMAT;
    h->n_meta++;
  } while (eat(p, ','));
  return eat(p, '}') ? TFW_OK : jerr(p, "expected ',' or '}' in __metadata__");
}

/* Pass 1 counts top-level members (an upper bound for both tensors and metadata pairs:
 * metadata members are counted inside the object too); pass 2 fills. */
static tfw_status count_pass(jp *p, int *members) {
  int n = 0;
  p->pos = 0;
  if (!eat(p, '{')) return jerr(p, "the header must be a JSON object");
  if (!eat(p, '}')) {
    do {
      const char *key;
      size_t len, mark = p->arena_pos;
      if (str(p, &key, &len)) return TFW_EFORMAT;
      int is_meta = len == 12 && !strcmp(key, "__metadata__");
      p->arena_pos = mark;
      if (!eat(p, ':')) return jerr(p, "expected ':'");
      ws(p);
      size_t start = p->pos;
      if (skip_value(p, 1)) return TFW_EFORMAT;
      if (is_meta && p->s[start] == '{') { /* count its members */
        size_t end = p->pos;
        jp q = *p;
        q.pos = start + 1;
        if (!eat(&q, '}')) do {
            if (str(&q, &key, &len) || !eat(&q, ':') || skip_value(&q, 2)) return TFW_EFORMAT;
            q.arena_pos = mark;
            n++;
          } while (eat(&q, ',') && q.pos < end);
      }
      if (++n > TFW_SAFETENSORS_MAX_TENSORS)
        return tfw__error(TFW_EFORMAT, "safetensors: header has more than %d entries",
                          TFW_SAFETENSORS_MAX_TENSORS);
    } while (eat(p, ','));
    if (!eat(p, '}')) return jerr(p, "expected ',' or '}' after a top-level entry");
  }
  ws(p);
  if (p->pos != p->n) return jerr(p, "trailing characters after the header object");
  *members = n;
  return TFW_OK;
}

void tfw__st_header_free(tfw__st_header *h) {
  tfw__free(h->entries);
  tfw__free((void *)h->meta);
  tfw__free(h->arena);
  memset(h, 0, sizeof *h);
}

tfw_status tfw__st_parse_header(const char *json, size_t len, tfw__st_header *out) {
  memset(out, 0, sizeof *out);
  int members = 0;
  jp p = {.s = json, .n = len, .what = "safetensors: header JSON", .where = "header",
          .max_depth = TFW_SAFETENSORS_MAX_DEPTH};
  p.arena = tfw__malloc(len + 1);
  if (!p.arena) return tfw__error(TFW_ENOMEM, "safetensors: out of memory for a %zu-byte header", len);
  out->arena = p.arena;
  if (count_pass(&p, &members)) goto fail;
  out->entries = tfw__calloc((size_t)members + 1, sizeof *out->entries);
  out->meta = tfw__calloc(2 * (size_t)members + 2, sizeof *out->meta);
  if (!out->entries || !out->meta) {
    tfw__error(TFW_ENOMEM, "safetensors: out of memory for %d header entries", members);
    goto fail;
  }
  p.pos = 0;
  p.arena_pos = 0;
  int seen_meta = 0;
  (void)eat(&p, '{');
  if (!eat(&p, '}')) do {
      const char *key;
      if (name_str(&p, &key, "tensor name", TFW_SAFETENSORS_MAX_NAME)) goto fail;
      (void)eat(&p, ':');
      if (!strcmp(key, "__metadata__")) {
        if (parse_metadata(&p, out, &seen_meta)) goto fail;
        continue;
      }
      TFW_ASSERT(out->n < members);
      tfw__st_entry *e = &out->entries[out->n++];
      e->name = key;
      if (parse_entry(&p, e)) goto fail;
    } while (eat(&p, ','));
  return TFW_OK;
fail:
  tfw__st_header_free(out);
  return tfw_last_status() == TFW_ENOMEM ? TFW_ENOMEM : TFW_EFORMAT;
}
