/* Status codes, the thread-local error message, and the internal assertion handler. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

#define TFW__MSG_CAP 1024
static _Thread_local char g_msg[TFW__MSG_CAP];
static _Thread_local tfw_status g_status = TFW_OK;

const char *tfw_status_name(tfw_status s) {
  switch (s) {
#define X(name, value, desc) \
  case TFW_##name:           \
    return "TFW_" #name;
    TFW_STATUS_MAP(X)
#undef X
  }
  return "TFW_UNKNOWN";
}

const char *tfw_status_str(tfw_status s) {
  switch (s) {
#define X(name, value, desc) \
  case TFW_##name:           \
    return desc;
    TFW_STATUS_MAP(X)
#undef X
  }
  return "unknown status";
}

const char *tfw_last_error(void) { return g_msg; }
tfw_status tfw_last_status(void) { return g_status; }

size_t tfw_last_error_copy(char *buf, size_t cap) {
  size_t n = strlen(g_msg);
  if (buf && cap > 0) {
    size_t k = n < cap - 1 ? n : cap - 1;
    memcpy(buf, g_msg, k);
    buf[k] = '\0';
  }
  return n;
}

void tfw_clear_error(void) {
  g_msg[0] = '\0';
  g_status = TFW_OK;
}

tfw_status tfw__error(tfw_status code, const char *fmt, ...) {
  /* formatted into a local buffer first, so that a message may quote the previous one
   * (tfw_last_error() as an argument) without an overlapping vsnprintf */
  char buf[TFW__MSG_CAP];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  memcpy(g_msg, buf, strlen(buf) + 1);
  g_status = code;
  return code;
}

char *tfw__shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t pos = 0;
  pos += (size_t)snprintf(buf, cap, "[");
  for (int i = 0; i < ndim && pos < cap; i++)
    pos += (size_t)snprintf(buf + pos, cap - pos, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (pos < cap) snprintf(buf + pos, cap - pos, "]");
  return buf;
}

void tfw__assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "tenflower: internal invariant violated: %s (%s:%d)\n", expr, file, line);
  abort();
}
