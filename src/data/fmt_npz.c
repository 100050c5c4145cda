/* NPZ (numpy.savez / savez_compressed): a zip archive of .npy members, stored or deflated.
 *
 * The zip container is read with libzip (Debian libzip-dev; fuzzed on OSS-Fuzz) rather than
 * by hand: central directory, local headers, ZIP64 and CRC checks are where hand-written zip
 * readers go wrong. libzip opens the archive from our in-memory buffer with ZIP_CHECKCONS
 * (central directory and local headers must agree). Our own checks on top: at most
 * NPZ_MAX_MEMBERS members; only the stored and deflate methods; each member's claimed size
 * within max_bytes, the running total too, and for deflate within 1032x its compressed size
 * (no bombs: nothing is allocated before the claim is plausible); a member must decompress
 * to exactly its claimed size with a good CRC; member names end in ".npy" (stripped to give
 * the field name, as numpy.load does) and are unique. Each member is then parsed by the NPY
 * parser (fmt_npy.c). Records: see tfw__arrays_to_table. */
#include <stdio.h>
#include <string.h>

#ifdef TFW_HAVE_LIBZIP
#include <zip.h>
#endif

#include "data/reader_internal.h"

#define NPZ_MAX_MEMBERS 4096

static int npz_sniff(const uint8_t *h, size_t n) {
  /* a zip whose first member is a .npy: "PK\3\4", name length at 26, name at 30 */
  if (n < 30 || memcmp(h, "PK\x03\x04", 4) != 0) return 0;
  size_t nl = (size_t)h[26] | (size_t)h[27] << 8;
  if (nl >= 4 && 30 + nl <= n && !memcmp(h + 30 + nl - 4, ".npy", 4)) return 90;
  return 10; /* some other zip */
}

#ifdef TFW_HAVE_LIBZIP
static tfw_status zerr(const tfw__input *in, const char *what, zip_error_t *e) {
  return tfw__error(TFW_EFORMAT, "npz: '%s': %s: %s", in->name, what, zip_error_strerror(e));
}

static tfw_status npz_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  zip_error_t ze;
  zip_error_init(&ze);
  zip_source_t *src = zip_source_buffer_create(in->data, in->size, 0, &ze);
  if (!src) {
    tfw_status s = tfw__error(TFW_ENOMEM, "npz: '%s': %s", in->name, zip_error_strerror(&ze));
    zip_error_fini(&ze);
    return s;
  }
  zip_t *z = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
  if (!z) {
    zip_source_free(src);
    tfw_status s = zerr(in, "not a valid zip archive", &ze);
    zip_error_fini(&ze);
    return s;
  }
  zip_error_fini(&ze);
  tfw_status s = TFW_OK;
  zip_int64_t n = zip_get_num_entries(z, 0);
  tfw_tensor **arrays = NULL;
  char **names = NULL;
  int na = 0;
  if (n < 0 || n > NPZ_MAX_MEMBERS) {
    s = tfw__error(TFW_EFORMAT, "npz: '%s': %lld members (the cap is %d)", in->name,
                   (long long)n, NPZ_MAX_MEMBERS);
    goto out;
  }
  arrays = tfw__calloc((size_t)n + 1, sizeof *arrays);
  names = tfw__calloc((size_t)n + 1, sizeof *names);
  if (!arrays || !names) {
    s = tfw__error(TFW_ENOMEM, "npz: out of memory");
    goto out;
  }
  uint64_t total = 0;
  for (zip_int64_t i = 0; i < n && !s; i++) {
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, (zip_uint64_t)i, 0, &st) != 0) {
      s = zerr(in, "cannot read a member's entry", zip_get_error(z));
      break;
    }
    const char *nm = (st.valid & ZIP_STAT_NAME) && st.name ? st.name : "";
    size_t nl = strlen(nm);
    if (nl > 0 && nm[nl - 1] == '/') continue; /* a directory entry */
    if (nl < 5 || strcmp(nm + nl - 4, ".npy") != 0) {
      s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s' is not a .npy file", in->name, nm);
      break;
    }
    if (!(st.valid & ZIP_STAT_SIZE) || !(st.valid & ZIP_STAT_COMP_SIZE) ||
        !(st.valid & ZIP_STAT_COMP_METHOD)) {
      s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s' lacks its sizes", in->name, nm);
      break;
    }
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE) {
      s = tfw__error(TFW_EUNSUPPORTED, "npz: '%s': member '%.80s' uses compression method %d "
                     "(stored and deflate are supported)", in->name, nm, (int)st.comp_method);
      break;
    }
    uint64_t cap = (uint64_t)in->max_bytes;
    uint64_t ratio = st.comp_method == ZIP_CM_STORE ? st.comp_size
                     : st.comp_size > UINT64_MAX / 1032 ? UINT64_MAX : st.comp_size * 1032 + 64;
    if (st.size > ratio || st.size > cap || total + st.size > cap) {
      s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s' claims %llu bytes from %llu "
                     "compressed (limit %llu; max_bytes %llu, %llu used)", in->name, nm,
                     (unsigned long long)st.size, (unsigned long long)st.comp_size,
                     (unsigned long long)ratio, (unsigned long long)cap,
                     (unsigned long long)total);
      break;
    }
    total += st.size;
    uint8_t *buf = tfw__malloc(st.size ? (size_t)st.size : 1);
    if (!buf) {
      s = tfw__error(TFW_ENOMEM, "npz: '%s': out of memory (%llu bytes for '%.80s')", in->name,
                     (unsigned long long)st.size, nm);
      break;
    }
    zip_file_t *f = zip_fopen_index(z, (zip_uint64_t)i, 0);
    if (!f) {
      tfw__free(buf);
      s = zerr(in, "cannot open a member", zip_get_error(z));
      break;
    }
    uint64_t got = 0;
    while (!s && got < st.size) {
      zip_int64_t k = zip_fread(f, buf + got, st.size - got);
      if (k < 0) s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s': %s", in->name, nm,
                                zip_error_strerror(zip_file_get_error(f)));
      else if (k == 0) s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s' ends after %llu "
                                      "of %llu bytes", in->name, nm, (unsigned long long)got,
                                      (unsigned long long)st.size);
      else got += (uint64_t)k;
    }
    if (!s) { /* reading to the end makes libzip check the CRC */
      uint8_t extra;
      zip_int64_t k = zip_fread(f, &extra, 1);
      if (k != 0)
        s = tfw__error(TFW_EFORMAT, "npz: '%s': member '%.80s': %s", in->name, nm,
                       k < 0 ? zip_error_strerror(zip_file_get_error(f))
                             : "longer than its stated size");
    }
    zip_fclose(f);
    if (s) {
      tfw__free(buf);
      break;
    }
    tfw__blob *b = tfw__blob_from_heap(buf, (size_t)st.size);
    if (!b) {
      s = TFW_ENOMEM;
      break;
    }
    names[na] = tfw__malloc(nl - 3);
    if (!names[na]) {
      tfw__blob_release(b);
      s = tfw__error(TFW_ENOMEM, "npz: out of memory");
      break;
    }
    memcpy(names[na], nm, nl - 4);
    names[na][nl - 4] = '\0';
    char what[160];
    snprintf(what, sizeof what, "%s:%s", in->name, nm);
    s = tfw__npy_parse("npz", what, b, 0, (size_t)st.size, &arrays[na]);
    tfw__blob_release(b);
    na++;
  }
  if (!s) s = tfw__arrays_to_table(r, na, (const char *const *)names, arrays);
out:
  for (int i = 0; i < na; i++) tfw_release(arrays[i]), tfw__free(names[i]);
  tfw__free(arrays);
  tfw__free(names);
  zip_discard(z);
  return s;
}
#else
static tfw_status npz_open(tfw_reader *r, const tfw__input *in, const tfw_reader_options *opt) {
  return tfw__error(TFW_EUNSUPPORTED, "npz: '%s': tenflower was built without libzip (install "
                    "libzip-dev and rebuild)", in->name);
}
#endif

const tfw__reader_backend tfw__backend_npz = {"npz", ".npz", npz_sniff, npz_open};
