/* tenflower internal: the strict JSON lexer shared by the safetensors header parser and the
 * JSON / JSONL data formats. Internal header — never installed. */
#ifndef TFW_IO_JSON_H
#define TFW_IO_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct tfw__json {
  const char *s;      /* the text (not NUL-terminated) */
  size_t n, pos;
  char *arena;        /* unescaped strings go here (needs n + 1 bytes at most) */
  size_t arena_pos;
  const char *what;   /* message prefix: "<what>: <problem> at <where> byte N" */
  const char *where;  /* e.g. "header"; NULL: "at byte N" */
  int max_depth;      /* nesting cap for skip_value */
} tfw__json;

/* Sets TFW_EFORMAT "<what>: <msg> at <where> byte <pos> ('<c>')" and returns it. */
tfw_status tfw__json_err(const tfw__json *p, const char *msg);
void tfw__json_ws(tfw__json *p);
/* Consumes c (after whitespace) if it is next; returns whether it did. */
int tfw__json_eat(tfw__json *p, char c);
/* A string (after whitespace), unescaped into the arena: *out NUL-terminated, *len (may
 * contain NUL bytes from \u0000: compare len with strlen to detect them). */
tfw_status tfw__json_str(tfw__json *p, const char **out, size_t *len);
/* Validates an RFC 8259 number at pos and moves past it. */
tfw_status tfw__json_skip_number(tfw__json *p);
/* Validates and skips any value, nesting capped at max_depth (depth: the current level). */
tfw_status tfw__json_skip_value(tfw__json *p, int depth);
/* Index of the first invalid byte of s[0, n) as strict UTF-8, or n if all valid. */
size_t tfw__utf8_check(const uint8_t *s, size_t n);

#endif
