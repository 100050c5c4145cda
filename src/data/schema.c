/* Schemas: lookup, formatting, and the validator (expected vs actual, naming the field). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "data/reader_internal.h"

int tfw_schema_find(const tfw_schema *s, const char *name) {
  if (!s || !name) return -1;
  for (int i = 0; i < s->n; i++)
    if (s->fields[i].name && !strcmp(s->fields[i].name, name)) return i;
  return -1;
}

/* "float64 [3, -1]" / "string" / "any", with '?' for nullable. */
static size_t field_type_str(const tfw_field *f, char *buf, size_t cap) {
  size_t k = 0;
#define PUT(...) k += (size_t)snprintf(buf + (k < cap ? k : cap), k < cap ? cap - k : 0, __VA_ARGS__)
  if (f->is_string) PUT("string");
  else {
    PUT("%s", f->dtype == TFW_DTYPE_COUNT ? "any" : tfw_dtype_name(f->dtype));
    if (f->ndim < 0) PUT(" [...]");
    else if (f->ndim > 0) {
      PUT(" [");
      for (int d = 0; d < f->ndim && d < TFW_MAX_DIMS; d++) PUT("%s%lld", d ? ", " : "", (long long)f->shape[d]);
      PUT("]");
    }
  }
  if (f->nullable) PUT("?");
#undef PUT
  return k;
}

size_t tfw_schema_format(const tfw_schema *s, char *buf, size_t cap) {
  char tmp[256];
  size_t k = 0;
#define PUT(...) k += (size_t)snprintf(buf + (k < cap ? k : cap), k < cap ? cap - k : 0, __VA_ARGS__)
  if (!s) {
    PUT("(null)");
    return k;
  }
  PUT("{");
  for (int i = 0; i < s->n; i++) {
    field_type_str(&s->fields[i], tmp, sizeof tmp);
    PUT("%s%.64s: %s", i ? ", " : "", s->fields[i].name ? s->fields[i].name : "(null)", tmp);
  }
  PUT("}");
#undef PUT
  if (cap > 4 && k >= cap) memcpy(buf + cap - 4, "...", 4);
  return k;
}

static tfw_status mismatch(tfw_status code, const tfw_field *e, const tfw_field *a,
                           const char *what) {
  char es[256], as[256];
  field_type_str(e, es, sizeof es);
  field_type_str(a, as, sizeof as);
  return tfw__error(code, "schema: field '%.64s': expected %s, got %s%s%s", e->name, es, as,
                    what ? " " : "", what ? what : "");
}

tfw_status tfw_schema_validate(const tfw_schema *expected, const tfw_schema *actual,
                               unsigned flags) {
  if (!expected || !actual || (expected->n > 0 && !expected->fields) ||
      (actual->n > 0 && !actual->fields) || expected->n < 0 || actual->n < 0)
    return tfw__error(TFW_EVALUE, "schema_validate: NULL or malformed schema");
  for (int i = 0; i < expected->n; i++) {
    const tfw_field *e = &expected->fields[i];
    if (!e->name || !e->name[0])
      return tfw__error(TFW_EVALUE, "schema_validate: expected field %d has no name", i);
    int j = tfw_schema_find(actual, e->name);
    if (j < 0) {
      char got[512];
      tfw_schema_format(actual, got, sizeof got);
      return tfw__error(TFW_EVALUE, "schema: field '%.64s' is missing (got %s)", e->name, got);
    }
    const tfw_field *a = &actual->fields[j];
    if (e->is_string != a->is_string)
      return mismatch(TFW_EDTYPE, e, a, e->is_string ? "(not text)" : "(text)");
    if (e->dtype != TFW_DTYPE_COUNT && e->dtype != a->dtype)
      return mismatch(TFW_EDTYPE, e, a, NULL);
    if (e->ndim >= 0 && e->ndim != a->ndim)
      return mismatch(TFW_ESHAPE, e, a, "(rank differs)");
    if (e->ndim >= 0)
      for (int d = 0; d < e->ndim && d < TFW_MAX_DIMS; d++) {
        if (e->shape[d] < 0 || e->shape[d] == a->shape[d]) continue;
        char what[96];
        snprintf(what, sizeof what, a->shape[d] < 0 ? "(dim %d varies between records)"
                                                     : "(dim %d differs)", d);
        return mismatch(TFW_ESHAPE, e, a, what);
      }
    if (a->nullable && !e->nullable)
      return mismatch(TFW_EVALUE, e, a, "(the file's field may be missing; expected a "
                                        "required field)");
  }
  if (!(flags & TFW_SCHEMA_ALLOW_EXTRA))
    for (int j = 0; j < actual->n; j++)
      if (tfw_schema_find(expected, actual->fields[j].name) < 0) {
        char want[512];
        tfw_schema_format(expected, want, sizeof want);
        return tfw__error(TFW_EVALUE, "schema: unexpected field '%.64s' (expected %s; pass "
                          "TFW_SCHEMA_ALLOW_EXTRA to allow more fields)",
                          actual->fields[j].name, want);
      }
  return TFW_OK;
}
