/* Image folders: root/<class>/<...>/<file>.{png,jpg,jpeg} as a map-style dataset of
 * {"image", "label"} (torchvision's ImageFolder layout and class order). The directory tree
 * is listed once at creation (sorted, so the order does not depend on the file system);
 * images are decoded on get. Recursion is capped at 32 levels (symlink loops). */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data_internal.h"

#define OP "image_folder_new"
#define MAX_DEPTH 32

typedef struct strvec {
  char **v;
  int64_t n, cap;
} strvec;

static tfw_status sv_push(strvec *s, const char *a, const char *b) {
  if (s->n == s->cap) {
    int64_t cap = s->cap ? s->cap * 2 : 16;
    char **nv = tfw__realloc(s->v, sizeof *nv * (size_t)cap);
    if (!nv) return tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
    s->v = nv, s->cap = cap;
  }
  size_t la = strlen(a), lb = b ? strlen(b) : 0;
  char *p = tfw__malloc(la + lb + 2);
  if (!p) return tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
  memcpy(p, a, la);
  if (b) p[la] = '/', memcpy(p + la + 1, b, lb + 1);
  else p[la] = '\0';
  s->v[s->n++] = p;
  return TFW_OK;
}

static void sv_free(strvec *s) {
  for (int64_t i = 0; i < s->n; i++) tfw__free(s->v[i]);
  tfw__free(s->v);
  s->v = NULL, s->n = s->cap = 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot) return false;
  char ext[8];
  size_t n = strlen(dot + 1);
  if (n == 0 || n > 4) return false;
  for (size_t i = 0; i < n; i++) ext[i] = (char)tolower((unsigned char)dot[1 + i]);
  ext[n] = '\0';
  return !strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg");
}

/* Appends the image files under dir (recursively) to out. */
static tfw_status scan(const char *dir, int depth, strvec *out) {
  if (depth > MAX_DEPTH) return TFW_OK;
  DIR *d = opendir(dir);
  if (!d) return tfw__error(TFW_EIO, "%s: cannot list '%s': %s", OP, dir, strerror(errno));
  tfw_status s = TFW_OK;
  struct dirent *e;
  strvec sub = {0};
  while (!s && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t len = strlen(dir) + strlen(e->d_name) + 2;
    char *p = tfw__malloc(len);
    if (!p) {
      s = tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
      break;
    }
    snprintf(p, len, "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0) { /* follows symlinks, as torchvision does */
      if (S_ISDIR(st.st_mode)) s = sv_push(&sub, p, NULL);
      else if (S_ISREG(st.st_mode) && is_image_name(e->d_name)) s = sv_push(out, p, NULL);
    }
    tfw__free(p);
  }
  closedir(d);
  for (int64_t i = 0; i < sub.n && !s; i++) s = scan(sub.v[i], depth + 1, out);
  sv_free(&sub);
  return s;
}

typedef struct folder {
  strvec classes; /* names */
  strvec files;   /* paths, grouped by class, sorted within */
  int64_t *labels;
  tfw_image_options opt;
} folder;

static void folder_destroy(void *vctx) {
  folder *f = vctx;
  sv_free(&f->classes);
  sv_free(&f->files);
  tfw__free(f->labels);
  tfw__free(f);
}

static int64_t folder_len(void *vctx) { return ((folder *)vctx)->files.n; }

static tfw_status folder_get(void *vctx, int64_t i, tfw_sample *out) {
  folder *f = vctx;
  tfw_tensor *img = tfw_image_read(f->files.v[i], &f->opt);
  if (!img) return tfw_last_status();
  tfw_tensor *lab = tfw__tensor_new("image_folder", TFW_DTYPE_I64, 0, NULL);
  tfw_status s = lab ? TFW_OK : tfw_last_status();
  if (lab) *(int64_t *)tfw__data(lab) = f->labels[i];
  if (!s) s = tfw_sample_add(out, "image", img);
  if (!s) s = tfw_sample_add(out, "label", lab);
  tfw_release(img);
  tfw_release(lab);
  return s;
}

tfw_dataset *tfw_image_folder_new(const char *root, const tfw_image_options *opt) {
  if (!root) {
    tfw__error(TFW_EVALUE, "%s: root is NULL", OP);
    return NULL;
  }
  folder *f = tfw__calloc(1, sizeof *f);
  if (!f) {
    tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
    return NULL;
  }
  f->opt = opt ? *opt : tfw_image_options_default();
  tfw_status s = TFW_OK;
  DIR *d = opendir(root);
  if (!d) {
    tfw__error(TFW_EIO, "%s: cannot list '%s': %s", OP, root, strerror(errno));
    folder_destroy(f);
    return NULL;
  }
  struct dirent *e;
  while (!s && (e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    size_t len = strlen(root) + strlen(e->d_name) + 2;
    char *p = tfw__malloc(len);
    if (!p) {
      s = tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
      break;
    }
    snprintf(p, len, "%s/%s", root, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) s = sv_push(&f->classes, e->d_name, NULL);
    tfw__free(p);
  }
  closedir(d);
  if (!s && f->classes.n == 0)
    s = tfw__error(TFW_EVALUE, "%s: '%s' has no class sub-directories", OP, root);
  if (!s) qsort(f->classes.v, (size_t)f->classes.n, sizeof(char *), cmp_str);
  int64_t lab_cap = 0;
  for (int64_t c = 0; c < f->classes.n && !s; c++) {
    int64_t before = f->files.n;
    size_t len = strlen(root) + strlen(f->classes.v[c]) + 2;
    char *dir = tfw__malloc(len);
    if (!dir) {
      s = tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
      break;
    }
    snprintf(dir, len, "%s/%s", root, f->classes.v[c]);
    s = scan(dir, 0, &f->files);
    tfw__free(dir);
    if (s) break;
    qsort(f->files.v + before, (size_t)(f->files.n - before), sizeof(char *), cmp_str);
    if (f->files.n > lab_cap) {
      int64_t cap = f->files.n * 2;
      int64_t *nl = tfw__realloc(f->labels, sizeof *nl * (size_t)cap);
      if (!nl) {
        s = tfw__error(TFW_ENOMEM, "%s: out of memory", OP);
        break;
      }
      f->labels = nl, lab_cap = cap;
    }
    for (int64_t i = before; i < f->files.n; i++) f->labels[i] = c;
  }
  if (!s && f->files.n == 0)
    s = tfw__error(TFW_EVALUE, "%s: no .png/.jpg/.jpeg files under the %lld class folders of '%s'",
                   OP, (long long)f->classes.n, root);
  if (s) {
    folder_destroy(f);
    return NULL;
  }
  tfw_dataset_vtable vt = {0};
  vt.len = folder_len, vt.get = folder_get, vt.destroy = folder_destroy;
  tfw_dataset *ds = tfw_dataset_new(&vt, f);
  if (!ds) folder_destroy(f);
  return ds;
}

static folder *as_folder(const tfw_dataset *ds, const char *op) {
  if (!ds || tfw__dataset_vt(ds)->get != folder_get) {
    tfw__error(TFW_EVALUE, "%s: not an image folder dataset", op);
    return NULL;
  }
  return tfw__dataset_ctx(ds);
}

int64_t tfw_image_folder_num_classes(const tfw_dataset *ds) {
  folder *f = as_folder(ds, "image_folder_num_classes");
  return f ? f->classes.n : -1;
}

const char *tfw_image_folder_class_name(const tfw_dataset *ds, int64_t i) {
  folder *f = as_folder(ds, "image_folder_class_name");
  if (!f) return NULL;
  if (i < 0 || i >= f->classes.n) {
    tfw__error(TFW_EVALUE, "image_folder_class_name: class %lld outside [0, %lld)", (long long)i,
               (long long)f->classes.n);
    return NULL;
  }
  return f->classes.v[i];
}

const char *tfw_image_folder_path(const tfw_dataset *ds, int64_t i) {
  folder *f = as_folder(ds, "image_folder_path");
  if (!f) return NULL;
  if (i < 0 || i >= f->files.n) {
    tfw__error(TFW_EVALUE, "image_folder_path: sample %lld outside [0, %lld)", (long long)i,
               (long long)f->files.n);
    return NULL;
  }
  return f->files.v[i];
}
