/* WebDataset tar shards: samples are runs of consecutive members named <key>.<ext>.
 *
 * libarchive reads the tar (ustar, pax, GNU) and the compression filters we enable
 * explicitly (gzip, bzip2, xz, zstd: no external programs, no other archive formats). Hostile
 * input: a member's size is checked against max_member_bytes before it is read, and its data
 * is read in chunks into a buffer that grows with what really came out (a compressed shard
 * may claim any size); malformed tar headers, bad checksums and corrupt compressed streams
 * are libarchive errors, reported as TFW_EFORMAT with its message. */
#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

#define OP "wds"
#define DEFAULT_MAX_MEMBER ((int64_t)256 << 20)
#define KEY_MAX 4096

tfw_wds_options tfw_wds_options_default(void) {
  tfw_wds_options o;
  memset(&o, 0, sizeof o);
  o.decode_images = true;
  o.image = tfw_image_options_default();
  return o;
}

typedef struct member {
  char key[KEY_MAX];
  char ext[TFW_SAMPLE_NAME_MAX];
  uint8_t *data;
  size_t size;
  bool live;
} member;

struct tfw_wds_reader {
  struct archive *a;
  char name[512];
  tfw_wds_options o;
  uint8_t *file_buf; /* tfw_wds_open: the shard read by libarchive from a file */
  member pending;    /* read ahead: the first member of the next sample */
  bool eof, failed;
};

static tfw_wds_reader *open_common(const char *name, const tfw_wds_options *opt) {
  tfw_wds_options o = opt ? *opt : tfw_wds_options_default();
  if (o.max_member_bytes < 0) {
    tfw__error(TFW_EVALUE, "%s: max_member_bytes is %lld, expected >= 0 (0: 256 MiB)", OP,
               (long long)o.max_member_bytes);
    return NULL;
  }
  if (!o.max_member_bytes) o.max_member_bytes = DEFAULT_MAX_MEMBER;
  tfw_wds_reader *r = tfw__calloc(1, sizeof *r);
  if (!r) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
    return NULL;
  }
  r->o = o;
  snprintf(r->name, sizeof r->name, "%s", name ? name : "<memory>");
  r->a = archive_read_new();
  if (!r->a) {
    tfw__free(r);
    tfw__error(TFW_ENOMEM, "%s: out of memory (archive)", OP);
    return NULL;
  }
  archive_read_support_format_tar(r->a);
  archive_read_support_filter_gzip(r->a);
  archive_read_support_filter_bzip2(r->a);
  archive_read_support_filter_xz(r->a);
  archive_read_support_filter_zstd(r->a);
  return r;
}

tfw_wds_reader *tfw_wds_open_memory(const void *data, size_t size, const char *name,
                                    const tfw_wds_options *opt) {
  if (!data && size) {
    tfw__error(TFW_EVALUE, "%s: data is NULL", OP);
    return NULL;
  }
  tfw_wds_reader *r = open_common(name, opt);
  if (!r) return NULL;
  static const uint8_t empty = 0;
  if (archive_read_open_memory(r->a, data ? data : &empty, size) != ARCHIVE_OK) {
    tfw__error(TFW_EFORMAT, "%s: '%s': not a tar shard: %s", OP, r->name,
               archive_error_string(r->a) ? archive_error_string(r->a) : "unknown error");
    tfw_wds_close(r);
    return NULL;
  }
  return r;
}

tfw_wds_reader *tfw_wds_open(const char *path, const tfw_wds_options *opt) {
  uint8_t *buf;
  size_t n;
  /* shards are typically 100 MB - 1 GB; read whole so that errors are about content */
  if (tfw__data_read_file("wds_open", path, (size_t)1 << 34, &buf, &n)) return NULL;
  tfw_wds_reader *r = tfw_wds_open_memory(buf, n, path, opt);
  if (!r) {
    tfw__free(buf);
    return NULL;
  }
  r->file_buf = buf;
  return r;
}

void tfw_wds_close(tfw_wds_reader *r) {
  if (!r) return;
  if (r->a) archive_read_free(r->a);
  tfw__free(r->pending.data);
  tfw__free(r->file_buf);
  tfw__free(r);
}

/* Reads the next regular member into m (skipping directories, links, files without an
 * extension). m->live false at the end. */
static tfw_status read_member(tfw_wds_reader *r, member *m) {
  m->live = false;
  for (;;) {
    struct archive_entry *e;
    int rc = archive_read_next_header(r->a, &e);
    if (rc == ARCHIVE_EOF) return TFW_OK;
    if (rc != ARCHIVE_OK && rc != ARCHIVE_WARN)
      return tfw__error(TFW_EFORMAT, "%s: '%s': corrupt shard: %s", OP, r->name,
                        archive_error_string(r->a) ? archive_error_string(r->a) : "read error");
    const char *path = archive_entry_pathname(e);
    if (!path) path = archive_entry_pathname_utf8(e);
    if (archive_entry_filetype(e) != AE_IFREG || !path) continue;
    size_t plen = strlen(path);
    if (plen >= KEY_MAX)
      return tfw__error(TFW_EFORMAT, "%s: '%s': member name of %zu bytes (max %d)", OP, r->name,
                        plen, KEY_MAX - 1);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strchr(base, '.');
    if (!dot || dot == base || !dot[1]) continue; /* no key or no extension: not a field */
    size_t elen = strlen(dot + 1);
    if (elen >= TFW_SAMPLE_NAME_MAX)
      return tfw__error(TFW_EFORMAT, "%s: '%s': member '%s': extension longer than %d bytes", OP,
                        r->name, path, TFW_SAMPLE_NAME_MAX - 1);
    memcpy(m->key, path, (size_t)(dot - path));
    m->key[dot - path] = '\0';
    for (size_t i = 0; i <= elen; i++) m->ext[i] = (char)tolower((unsigned char)dot[1 + i]);
    int64_t claimed = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    if (claimed < 0 || claimed > r->o.max_member_bytes)
      return tfw__error(TFW_EFORMAT, "%s: '%s': member '%s' is %lld bytes, above the cap of %lld "
                        "(tfw_wds_options.max_member_bytes)", OP, r->name, path,
                        (long long)claimed, (long long)r->o.max_member_bytes);
    size_t room = claimed < (1 << 20) ? (size_t)claimed + 1 : (size_t)1 << 20, got = 0;
    uint8_t *buf = tfw__malloc(room);
    if (!buf) return tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
    for (;;) {
      if (got == room) {
        if ((int64_t)room > r->o.max_member_bytes) {
          tfw__free(buf);
          return tfw__error(TFW_EFORMAT, "%s: '%s': member '%s' holds more than the cap of %lld "
                            "bytes", OP, r->name, path, (long long)r->o.max_member_bytes);
        }
        uint8_t *nb = tfw__realloc(buf, room * 2);
        if (!nb) {
          tfw__free(buf);
          return tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
        }
        buf = nb, room *= 2;
      }
      la_ssize_t k = archive_read_data(r->a, buf + got, room - got);
      if (k < 0) {
        tfw__free(buf);
        return tfw__error(TFW_EFORMAT, "%s: '%s': member '%s': %s", OP, r->name, path,
                          archive_error_string(r->a) ? archive_error_string(r->a) : "read error");
      }
      if (k == 0) break;
      got += (size_t)k;
    }
    m->data = buf, m->size = got, m->live = true;
    return TFW_OK;
  }
}

static bool ext_is(const char *ext, const char *const *list) {
  const char *last = strrchr(ext, '.');
  last = last ? last + 1 : ext;
  for (; *list; list++)
    if (strcmp(last, *list) == 0) return true;
  return false;
}

/* Converts member m into a tensor per its extension. */
static tfw_tensor *member_tensor(tfw_wds_reader *r, const member *m) {
  static const char *const images[] = {"png", "jpg", "jpeg", NULL};
  static const char *const ints[] = {"cls", "cls2", "index", "label", "id", NULL};
  char what[KEY_MAX + 600];
  snprintf(what, sizeof what, "%s:%s.%s", r->name, m->key, m->ext);
  if (r->o.decode_images && ext_is(m->ext, images))
    return tfw__image_decode_named(m->data, m->size, what, &r->o.image);
  if (ext_is(m->ext, ints)) {
    char tmp[64];
    size_t n = m->size;
    while (n && isspace(m->data[n - 1])) n--;
    size_t b = 0;
    while (b < n && isspace(m->data[b])) b++;
    if (n - b == 0 || n - b >= sizeof tmp) {
      tfw__error(TFW_EFORMAT, "%s: '%s': expected a decimal integer of 1..63 bytes, got %zu",
                 OP, what, n - b);
      return NULL;
    }
    memcpy(tmp, m->data + b, n - b);
    tmp[n - b] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (*end || errno) {
      tfw__error(TFW_EFORMAT, "%s: '%s': '%s' is not a decimal integer in range", OP, what, tmp);
      return NULL;
    }
    tfw_tensor *t = tfw__tensor_new(OP, TFW_DTYPE_I64, 0, NULL);
    if (t) *(int64_t *)tfw__data(t) = v;
    return t;
  }
  return tfw_from_data(TFW_DTYPE_U8, 1, (int64_t[]){(int64_t)m->size}, m->data);
}

static tfw_status add_field(tfw_wds_reader *r, tfw_sample *out, const char *name, tfw_tensor *t,
                            const char *key) {
  if (!t) return tfw_last_status();
  tfw_status s = TFW_OK;
  if (tfw_sample_get(out, name))
    s = tfw__error(TFW_EFORMAT, "%s: '%s': sample '%s' has two '%s' members", OP, r->name, key,
                   name);
  else if (out->n >= TFW_SAMPLE_MAX_FIELDS)
    s = tfw__error(TFW_EFORMAT, "%s: '%s': sample '%s' has more than %d fields", OP, r->name,
                   key, TFW_SAMPLE_MAX_FIELDS - 1);
  else s = tfw_sample_add(out, name, t);
  tfw_release(t);
  return s;
}

tfw_status tfw_wds_next(tfw_wds_reader *r, tfw_sample *out) {
  tfw_sample_clear(out);
  if (!r) return tfw__error(TFW_EVALUE, "%s: reader is NULL", OP);
  if (r->failed) return tfw__error(TFW_ESTATE, "%s: '%s': the reader failed earlier", OP, r->name);
  tfw_status s = TFW_OK;
  char key[KEY_MAX] = {0};
  bool have = false;
  while (!s) {
    member m = {0};
    if (r->pending.live) m = r->pending, r->pending.live = false, r->pending.data = NULL;
    else if (!r->eof) {
      s = read_member(r, &m);
      if (!s && !m.live) r->eof = true;
    }
    if (s || !m.live) break;
    if (have && strcmp(m.key, key) != 0) {
      r->pending = m; /* first member of the next sample */
      break;
    }
    if (!have) {
      memcpy(key, m.key, sizeof key);
      have = true;
      tfw_tensor *kt = tfw_from_data(TFW_DTYPE_U8, 1, (int64_t[]){(int64_t)strlen(key)}, key);
      s = add_field(r, out, "__key__", kt, key);
    }
    if (!s) {
      tfw_tensor *t = member_tensor(r, &m);
      s = add_field(r, out, m.ext, t, key);
    }
    tfw__free(m.data);
  }
  if (s) {
    tfw_sample_clear(out);
    r->failed = true;
  }
  return s;
}

/* ---- iterable dataset over shards ---------------------------------------------------------- */
typedef struct wds_ds {
  int n;
  char **paths;
  tfw_wds_options o;
} wds_ds;

typedef struct wds_it {
  int64_t *order;
  int pos;
  tfw_wds_reader *r;
} wds_it;

static void wds_destroy(void *vctx) {
  wds_ds *c = vctx;
  for (int i = 0; i < c->n; i++) tfw__free(c->paths[i]);
  tfw__free(c->paths);
  tfw__free(c);
}

static void wds_iter_close(void *vctx, void *vit) {
  wds_it *it = vit;
  if (!it) return;
  tfw_wds_close(it->r);
  tfw__free(it->order);
  tfw__free(it);
}

static void *wds_iter_open(void *vctx, int64_t epoch) {
  wds_ds *c = vctx;
  wds_it *it = tfw__calloc(1, sizeof *it);
  int64_t *order = tfw__malloc(sizeof *order * (size_t)c->n);
  if (!it || !order) {
    tfw__free(it), tfw__free(order);
    tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
    return NULL;
  }
  if (c->o.shuffle_shards) {
    uint64_t st = c->o.seed ^ ((uint64_t)epoch * 0xD1B54A32D192ED03ull + 0x2545F4914F6CDD1Dull);
    tfw__random_permutation(order, c->n, &st);
  } else {
    for (int i = 0; i < c->n; i++) order[i] = i;
  }
  it->order = order;
  return it;
}

static tfw_status wds_iter_next(void *vctx, void *vit, tfw_sample *out) {
  wds_ds *c = vctx;
  wds_it *it = vit;
  tfw_sample_clear(out);
  while (it->pos < c->n) {
    if (!it->r) {
      it->r = tfw_wds_open(c->paths[it->order[it->pos]], &c->o);
      if (!it->r) return tfw_last_status();
    }
    tfw_status s = tfw_wds_next(it->r, out);
    if (s || out->n > 0) return s;
    tfw_wds_close(it->r);
    it->r = NULL;
    it->pos++;
  }
  return TFW_OK;
}

tfw_dataset *tfw_wds_dataset_new(int n, const char *const *paths, const tfw_wds_options *opt) {
  if (n < 1 || !paths) {
    tfw__error(TFW_EVALUE, "wds_dataset_new: need n >= 1 shard paths, got %d", n);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (!paths[i]) {
      tfw__error(TFW_EVALUE, "wds_dataset_new: paths[%d] is NULL", i);
      return NULL;
    }
  tfw_wds_options o = opt ? *opt : tfw_wds_options_default();
  if (o.max_member_bytes < 0) {
    tfw__error(TFW_EVALUE, "wds_dataset_new: max_member_bytes is %lld", (long long)o.max_member_bytes);
    return NULL;
  }
  wds_ds *c = tfw__calloc(1, sizeof *c);
  char **ps = tfw__calloc((size_t)n, sizeof *ps);
  if (!c || !ps) goto oom;
  c->paths = ps, c->o = o;
  for (int i = 0; i < n; i++) {
    size_t len = strlen(paths[i]);
    if (!(ps[i] = tfw__malloc(len + 1))) goto oom;
    memcpy(ps[i], paths[i], len + 1);
    c->n = i + 1;
  }
  tfw_dataset_vtable vt = {0};
  vt.iter_open = wds_iter_open, vt.iter_next = wds_iter_next, vt.iter_close = wds_iter_close;
  vt.destroy = wds_destroy;
  tfw_dataset *ds = tfw_dataset_new(&vt, c);
  if (!ds) wds_destroy(c);
  return ds;
oom:
  if (c) {
    c->paths = ps;
    wds_destroy(c);
  } else {
    tfw__free(ps);
  }
  tfw__error(TFW_ENOMEM, "wds_dataset_new: out of memory");
  return NULL;
}
