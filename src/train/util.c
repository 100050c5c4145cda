/* Small helpers shared by the run-logging files: clock, mkdir, number formatting, whole-file
 * reads (the text buffer tfw__sbuf is in core/fileio.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "train/train_internal.h"

double tfw__monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

tfw_status tfw__mkdir(const char *path, const char *op) {
  if (mkdir(path, 0777) == 0) return TFW_OK;
  int e = errno;
  struct stat st;
  if (e == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return TFW_OK;
  return tfw__error(TFW_EIO, "%s: cannot create directory '%s': %s", op, path,
                    e == EEXIST ? "exists and is not a directory" : strerror(e));
}

char *tfw__fmt_double(char *buf, double v) {
  if (isnan(v)) return strcpy(buf, "nan");
  if (isinf(v)) return strcpy(buf, v > 0 ? "inf" : "-inf");
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, 32, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  return buf;
}

tfw_status tfw__read_file(const char *path, size_t max, char **out, size_t *len, const char *op) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return tfw__error(TFW_EIO, "%s: cannot open '%s': %s", op, path, strerror(errno));
  tfw__sbuf b = {0};
  char chunk[65536];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + k > max) {
      fclose(f);
      tfw__sbuf_free(&b);
      return tfw__error(TFW_EFORMAT, "%s: '%s' is larger than %zu bytes", op, path, max);
    }
    tfw__sbuf_put(&b, chunk, k);
  }
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (err) {
    tfw__sbuf_free(&b);
    return tfw__error(TFW_EIO, "%s: read error on '%s': %s", op, path, strerror(err));
  }
  if (b.oom) {
    tfw__sbuf_free(&b);
    return tfw__error(TFW_ENOMEM, "%s: out of memory reading '%s'", op, path);
  }
  if (!b.p) tfw__sbuf_put(&b, "", 0);
  if (b.oom) return tfw__error(TFW_ENOMEM, "%s: out of memory reading '%s'", op, path);
  *out = b.p;
  *len = b.len;
  return TFW_OK;
}
