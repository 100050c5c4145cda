/* TensorBoard event files: TFRecord-framed, hand-encoded protobuf `Event` messages
 * (tensorboard/compat/proto/event.proto, summary.proto). Only the fields a scalar needs:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3;
 *             Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * A protobuf library would be a dependency for three messages; the encoding is a dozen
 * lines (key = field << 3 | wire type; varints; little-endian fixed64/fixed32). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "io/tfrecord.h"
#include "train/train_internal.h"

struct tfw_summary_writer {
  FILE *f;
  char *path;
  double last_flush; /* monotonic seconds */
};

#define TFW__FLUSH_SECS 5.0

/* A small fixed-capacity protobuf encoder: tags are capped so one event always fits. */
typedef struct pb {
  uint8_t b[1100];
  size_t n;
} pb;

static void pb_byte(pb *p, uint8_t v) { p->b[p->n++] = v; }
static void pb_varint(pb *p, uint64_t v) {
  while (v >= 0x80) {
    pb_byte(p, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  pb_byte(p, (uint8_t)v);
}
static void pb_fixed(pb *p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; i++) pb_byte(p, (uint8_t)(v >> (8 * i)));
}
static void pb_bytes(pb *p, int field, const void *s, size_t n) {
  pb_varint(p, (uint64_t)field << 3 | 2);
  pb_varint(p, n);
  memcpy(p->b + p->n, s, n);
  p->n += n;
}
static void pb_double(pb *p, int field, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  pb_varint(p, (uint64_t)field << 3 | 1);
  pb_fixed(p, u, 8);
}
static void pb_float(pb *p, int field, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  pb_varint(p, (uint64_t)field << 3 | 5);
  pb_fixed(p, u, 4);
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static tfw_status write_event(tfw_summary_writer *w, const pb *ev) {
  tfw_status s = tfw__tfrecord_write(w->f, ev->b, ev->n);
  if (s) return tfw__error(s, "summary_writer: '%s': %s", w->path, tfw_last_error());
  double now = tfw__monotonic();
  if (now - w->last_flush >= TFW__FLUSH_SECS) return tfw_summary_writer_flush(w);
  return TFW_OK;
}

tfw_summary_writer *tfw_summary_writer_open(const char *run_dir) {
  static _Atomic int counter;
  if (!run_dir || !run_dir[0]) {
    tfw__error(TFW_EVALUE, "tfw_summary_writer_open: run_dir is NULL or empty");
    return NULL;
  }
  if (tfw__mkdir(run_dir, "tfw_summary_writer_open")) return NULL;
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "localhost");
  host[sizeof host - 1] = '\0';
  for (char *c = host; *c; c++)
    if (*c == '/') *c = '_';
  tfw_summary_writer *w = tfw__calloc(1, sizeof *w);
  size_t cap = strlen(run_dir) + strlen(host) + 96;
  char *path = tfw__malloc(cap);
  if (!w || !path) {
    tfw__free(w);
    tfw__free(path);
    tfw__error(TFW_ENOMEM, "tfw_summary_writer_open: out of memory");
    return NULL;
  }
  snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s.%ld.%d", run_dir,
           (long long)time(NULL), host, (long)getpid(), atomic_fetch_add(&counter, 1));
  w->path = path;
  w->f = fopen(path, "wbx"); /* x: never clobber another writer's file */
  if (!w->f) {
    tfw__error(TFW_EIO, "tfw_summary_writer_open: cannot create '%s': %s", path, strerror(errno));
    tfw__free(path);
    tfw__free(w);
    return NULL;
  }
  w->last_flush = tfw__monotonic();
  pb ev = {.n = 0};
  pb_double(&ev, 1, wall_now());
  pb_bytes(&ev, 3, "brain.Event:2", 13);
  if (write_event(w, &ev) || tfw_summary_writer_flush(w)) {
    tfw_status s = tfw_last_status();
    char msg[512];
    tfw_last_error_copy(msg, sizeof msg);
    tfw_summary_writer_close(w);
    tfw__error(s, "%s", msg);
    return NULL;
  }
  return w;
}

tfw_status tfw_summary_writer_add_scalar(tfw_summary_writer *w, const char *tag, double value,
                                         int64_t step) {
  if (!w || !tag)
    return tfw__error(TFW_EVALUE, "tfw_summary_writer_add_scalar: %s is NULL", w ? "tag" : "w");
  size_t tl = strlen(tag);
  if (tl == 0 || tl > 1024)
    return tfw__error(TFW_EVALUE,
                      "tfw_summary_writer_add_scalar: tag length %zu (must be 1..1024)", tl);
  pb v = {.n = 0};
  pb_bytes(&v, 1, tag, tl);
  pb_float(&v, 2, (float)value);
  pb s = {.n = 0};
  pb_bytes(&s, 1, v.b, v.n);
  pb ev = {.n = 0};
  pb_double(&ev, 1, wall_now());
  if (step != 0) { /* proto3 omits the default, as TensorBoard's own writer does */
    pb_varint(&ev, 2 << 3 | 0);
    pb_varint(&ev, (uint64_t)step); /* negative steps: 10-byte two's complement */
  }
  pb_bytes(&ev, 5, s.b, s.n);
  return write_event(w, &ev);
}

tfw_status tfw_summary_writer_flush(tfw_summary_writer *w) {
  if (!w) return tfw__error(TFW_EVALUE, "tfw_summary_writer_flush: w is NULL");
  w->last_flush = tfw__monotonic();
  if (fflush(w->f) != 0)
    return tfw__error(TFW_EIO, "summary_writer: flush of '%s' failed: %s", w->path,
                      strerror(errno));
  return TFW_OK;
}

const char *tfw_summary_writer_path(const tfw_summary_writer *w) { return w ? w->path : NULL; }

void tfw_summary_writer_close(tfw_summary_writer *w) {
  if (!w) return;
  fclose(w->f);
  tfw__free(w->path);
  tfw__free(w);
}
