/* Internal file and text helpers shared across the library: atomic, durable file
 * replacement (a unique temporary beside the target, fsync, rename over it, fsync of the
 * directory: the POSIX durable rename of RELIABILITY.md §2.5) and a growable byte buffer. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* ---- atomic file replacement ------------------------------------------------------------ */

static void atomic_free(tfw__atomic_file *f) {
  tfw__free(f->tmp);
  tfw__free(f->dir);
  f->tmp = f->dir = NULL;
  f->fd = -1;
}

tfw_status tfw__atomic_begin(tfw__atomic_file *f, const char *op, const char *path) {
  size_t plen = strlen(path);
  f->op = op, f->path = path, f->fd = -1;
  f->tmp = tfw__malloc(plen + 16), f->dir = tfw__malloc(plen + 2);
  if (!f->tmp || !f->dir) {
    atomic_free(f);
    return tfw__error(TFW_ENOMEM, "%s: out of memory", op);
  }
  snprintf(f->tmp, plen + 16, "%s.tmp.XXXXXX", path);
  const char *slash = strrchr(path, '/');
  if (!slash) strcpy(f->dir, ".");
  else if (slash == path) strcpy(f->dir, "/");
  else memcpy(f->dir, path, (size_t)(slash - path)), f->dir[slash - path] = '\0';
  f->fd = mkstemp(f->tmp);
  if (f->fd < 0) {
    tfw_status s = tfw__error(TFW_EIO, "%s: cannot create a temporary file beside '%s': %s", op,
                              path, strerror(errno));
    atomic_free(f);
    return s;
  }
  /* mkstemp gives 0600; use the usual 0644 (reading the umask means setting it, which
   * races with other threads). A failure is not fatal: the file just stays private. */
  (void)fchmod(f->fd, 0644);
  return TFW_OK;
}

tfw_status tfw__atomic_write(tfw__atomic_file *f, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(f->fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      return tfw__error(TFW_EIO, "%s: cannot write '%s': %s", f->op, f->tmp,
                        w < 0 ? strerror(errno) : "short write");
    c += w, n -= (size_t)w;
  }
  return TFW_OK;
}

tfw_status tfw__atomic_end(tfw__atomic_file *f, tfw_status s) {
  const char *op = f->op;
  if (!s && fsync(f->fd) != 0)
    s = tfw__error(TFW_EIO, "%s: fsync of '%s' failed: %s", op, f->tmp, strerror(errno));
  if (close(f->fd) != 0 && !s)
    s = tfw__error(TFW_EIO, "%s: close of '%s' failed: %s", op, f->tmp, strerror(errno));
  if (!s && rename(f->tmp, f->path) != 0)
    s = tfw__error(TFW_EIO, "%s: cannot rename '%s' to '%s': %s", op, f->tmp, f->path,
                   strerror(errno));
  if (s) {
    unlink(f->tmp);
  } else {
    int dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
      s = tfw__error(TFW_EIO, "%s: fsync of directory '%s' failed: %s", op, f->dir,
                     strerror(errno));
    if (dfd >= 0) close(dfd);
  }
  atomic_free(f);
  return s;
}

tfw_status tfw__write_file_atomic(const char *op, const char *path, const void *buf, size_t n) {
  tfw__atomic_file f;
  tfw_status s = tfw__atomic_begin(&f, op, path);
  if (s) return s;
  return tfw__atomic_end(&f, tfw__atomic_write(&f, buf, n));
}

/* ---- growable byte buffer ----------------------------------------------------------------- */

void tfw__sbuf_put(tfw__sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *q = tfw__realloc(b->p, cap);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q, b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void tfw__sbuf_puts(tfw__sbuf *b, const char *s) { tfw__sbuf_put(b, s, strlen(s)); }

void tfw__sbuf_printf(tfw__sbuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof small) {
    tfw__sbuf_put(b, small, (size_t)n);
    return;
  }
  char *big = tfw__malloc((size_t)n + 1);
  if (!big) {
    b->oom = 1;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  tfw__sbuf_put(b, big, (size_t)n);
  tfw__free(big);
}

void tfw__sbuf_free(tfw__sbuf *b) {
  tfw__free(b->p);
  memset(b, 0, sizeof *b);
}
