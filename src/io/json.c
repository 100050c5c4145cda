/* A strict RFC 8259 JSON lexer shared by every JSON reader in tenflower: the safetensors
 * header parser (src/io/safetensors_json.c) and the JSON / JSONL data formats
 * (src/data/fmt_json.c). Moved here from safetensors_json.c rather than written twice; the
 * reasons for a hand-written lexer (exact integers, duplicate keys, UTF-8 and surrogate
 * checks, bounded memory and depth) are given in that file's header. No allocation: strings
 * unescape into the caller's arena (never longer than their source). */
#include <stdio.h>
#include <string.h>

#include "io/json.h"

size_t tfw__utf8_check(const uint8_t *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    uint8_t c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) k = 1, cp = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) k = 2, cp = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) k = 3, cp = c & 0x07, min = 0x10000;
    else return i;
    if (n - i <= k) return i;
    for (size_t j = 1; j <= k; j++) {
      if ((s[i + j] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + j] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += k + 1;
  }
  return n;
}

tfw_status tfw__json_err(const tfw__json *p, const char *what) {
  if (p->pos >= p->n)
    return tfw__error(TFW_EFORMAT, "%s: %s at end of %s (byte %zu)", p->what, what,
                      p->where ? p->where : "input", p->pos);
  unsigned char c = (unsigned char)p->s[p->pos];
  if (c >= 0x20 && c < 0x7F)
    return tfw__error(TFW_EFORMAT, "%s: %s at %s%sbyte %zu ('%c')", p->what, what,
                      p->where ? p->where : "", p->where ? " " : "", p->pos, c);
  return tfw__error(TFW_EFORMAT, "%s: %s at %s%sbyte %zu (0x%02x)", p->what, what,
                    p->where ? p->where : "", p->where ? " " : "", p->pos, c);
}

void tfw__json_ws(tfw__json *p) {
  while (p->pos < p->n) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

/* Consumes c (after whitespace) if it is next. */
int tfw__json_eat(tfw__json *p, char c) {
  tfw__json_ws(p);
  if (p->pos < p->n && p->s[p->pos] == c) {
    p->pos++;
    return 1;
  }
  return 0;
}

static int hex4(const tfw__json *p, size_t at, uint32_t *v) {
  if (at > p->n || p->n - at < 4) return 0;
  uint32_t x = 0;
  for (int i = 0; i < 4; i++) {
    char c = p->s[at + (size_t)i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return 0;
    x = x * 16 + (uint32_t)d;
  }
  *v = x;
  return 1;
}

/* Parses a string (after whitespace) into the arena: *out (NUL-terminated), *len. The
 * unescaped text is never longer than the quoted source, so the arena cannot overflow. */
tfw_status tfw__json_str(tfw__json *p, const char **out, size_t *len) {
  tfw__json_ws(p);
  if (p->pos >= p->n || p->s[p->pos] != '"') return tfw__json_err(p, "expected a string");
  p->pos++;
  char *o = p->arena + p->arena_pos, *w = o;
  for (;;) {
    if (p->pos >= p->n) return tfw__json_err(p, "unterminated string");
    unsigned char c = (unsigned char)p->s[p->pos];
    if (c == '"') break;
    if (c < 0x20) return tfw__json_err(p, "control character in string");
    if (c != '\\') {
      *w++ = (char)c;
      p->pos++;
      continue;
    }
    if (p->n - p->pos < 2) return tfw__json_err(p, "unterminated escape");
    char e = p->s[p->pos + 1];
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      static const char map[] = "\"\\/\b\f\n\r\t";
      *w++ = map[simple - "\"\\/bfnrt"];
      p->pos += 2;
      continue;
    }
    if (e != 'u') return tfw__json_err(p, "invalid escape");
    uint32_t cp, lo;
    if (!hex4(p, p->pos + 2, &cp)) return tfw__json_err(p, "invalid \\u escape");
    p->pos += 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return tfw__json_err(p, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (p->n - p->pos < 6 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u' ||
          !hex4(p, p->pos + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
        return tfw__json_err(p, "high surrogate not followed by a low surrogate");
      p->pos += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    /* 6 (or 12) source bytes give at most 3 (or 4) output bytes */
    if (cp < 0x80) *w++ = (char)cp;
    else if (cp < 0x800) *w++ = (char)(0xC0 | cp >> 6), *w++ = (char)(0x80 | (cp & 0x3F));
    else if (cp < 0x10000)
      *w++ = (char)(0xE0 | cp >> 12), *w++ = (char)(0x80 | ((cp >> 6) & 0x3F)),
      *w++ = (char)(0x80 | (cp & 0x3F));
    else
      *w++ = (char)(0xF0 | cp >> 18), *w++ = (char)(0x80 | ((cp >> 12) & 0x3F)),
      *w++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *w++ = (char)(0x80 | (cp & 0x3F));
  }
  p->pos++; /* closing quote */
  *w++ = '\0';
  *out = o;
  *len = (size_t)(w - o) - 1;
  p->arena_pos += (size_t)(w - o);
  return TFW_OK;
}

tfw_status tfw__json_skip_number(tfw__json *p) {
  size_t s = p->pos;
  if (p->pos < p->n && p->s[p->pos] == '-') p->pos++;
  if (p->pos >= p->n) return tfw__json_err(p, "invalid number");
  if (p->s[p->pos] == '0') p->pos++;
  else if (p->s[p->pos] >= '1' && p->s[p->pos] <= '9')
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  else return tfw__json_err(p, "invalid number");
  if (p->pos < p->n && p->s[p->pos] == '.') {
    p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
      return tfw__json_err(p, "invalid number");
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  }
  if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
    p->pos++;
    if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
      return tfw__json_err(p, "invalid number");
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') p->pos++;
  }
  return p->pos > s ? TFW_OK : tfw__json_err(p, "invalid number");
}

/* Skips any JSON value (iteratively bounded by the depth cap). */
tfw_status tfw__json_skip_value(tfw__json *p, int depth) {
  if (depth > p->max_depth) {
    char what[64];
    snprintf(what, sizeof what, "nesting deeper than %d levels", p->max_depth);
    return tfw__json_err(p, what);
  }
  tfw__json_ws(p);
  if (p->pos >= p->n) return tfw__json_err(p, "expected a value");
  char c = p->s[p->pos];
  const char *dummy;
  size_t len;
  if (c == '"') {
    size_t mark = p->arena_pos;
    tfw_status s = tfw__json_str(p, &dummy, &len);
    p->arena_pos = mark; /* skipped text is not kept */
    return s;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    p->pos++;
    if (tfw__json_eat(p, close)) return TFW_OK;
    do {
      if (c == '{') {
        size_t mark = p->arena_pos;
        tfw_status s = tfw__json_str(p, &dummy, &len);
        p->arena_pos = mark;
        if (s) return s;
        if (!tfw__json_eat(p, ':')) return tfw__json_err(p, "expected ':'");
      }
      if (tfw__json_skip_value(p, depth + 1)) return TFW_EFORMAT;
    } while (tfw__json_eat(p, ','));
    return tfw__json_eat(p, close) ? TFW_OK : tfw__json_err(p, c == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
  }
  static const char *const words[] = {"true", "false", "null"};
  for (int i = 0; i < 3; i++) {
    size_t k = strlen(words[i]);
    if (p->n - p->pos >= k && memcmp(p->s + p->pos, words[i], k) == 0) {
      p->pos += k;
      return TFW_OK;
    }
  }
  if (c == '-' || (c >= '0' && c <= '9')) return tfw__json_skip_number(p);
  return tfw__json_err(p, "expected a value");
}

