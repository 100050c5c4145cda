/* Run report: RUN_DIR/log.csv (+ RUN_DIR/config.txt) -> one self-contained HTML file.
 *
 * Columns become plots by name (docs/logging.md): x is "step" (else the row number);
 * "Loss" collects "loss" and every "*_loss"; "Accuracy" every column containing "acc";
 * "Learning rate" "lr", "lr_*" and "learning_rate"; "Throughput" "samples_per_s" and every
 * "*_per_s"; every other numeric column except epoch/time/wall_time gets its own plot. A
 * column is numeric when each non-empty cell parses as a number; empty and NaN cells are
 * gaps (a series keeps the rows where it has a value, so eval metrics logged every N
 * steps plot at their steps). The page has no scripts and no external resources. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_internal.h"

#define TFW__REPORT_MAX_CSV ((size_t)1 << 30)

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && strcmp(s + n - k, suf) == 0;
}

enum { G_LOSS, G_ACC, G_LR, G_TPUT, G_OTHER, G_SKIP };
static int group_of(const char *c) {
  if (!strcmp(c, "step") || !strcmp(c, "epoch") || !strcmp(c, "time") || !strcmp(c, "wall_time"))
    return G_SKIP;
  if (!strcmp(c, "loss") || ends_with(c, "_loss")) return G_LOSS;
  if (strstr(c, "acc")) return G_ACC;
  if (!strcmp(c, "lr") || !strncmp(c, "lr_", 3) || !strcmp(c, "learning_rate")) return G_LR;
  if (!strcmp(c, "samples_per_s") || ends_with(c, "_per_s")) return G_TPUT;
  return G_OTHER;
}

static int parse_num(const char *s, double *v) {
  if (!s[0]) return 0;
  char *end;
  errno = 0;
  *v = strtod(s, &end);
  while (*end == ' ') end++;
  return *end == '\0' && end != s;
}

static void append_config(tfw__sbuf *b, const char *run_dir) {
  size_t cap = strlen(run_dir) + 16;
  char *path = tfw__malloc(cap);
  if (!path) return;
  snprintf(path, cap, "%s/config.txt", run_dir);
  char *text = NULL;
  size_t len = 0;
  tfw_status s = tfw__read_file(path, (size_t)16 << 20, &text, &len, "tfw_report_write");
  tfw__free(path);
  tfw__sbuf_puts(b, "<h2>Configuration</h2>\n");
  if (s) {
    tfw_clear_error();
    tfw__sbuf_puts(b, "<p class=\"note\">No config.txt in the run directory.</p>\n");
    return;
  }
  tfw__sbuf_puts(b, "<table class=\"kv\" id=\"config\">\n<tr><th>key</th><th>value</th></tr>\n");
  char *line = text;
  while (line && *line) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = '\0';
    char *eq = strchr(line, '=');
    char *k = line, *v = eq ? eq + 1 : line + strlen(line);
    if (eq) *eq = '\0';
    while (*k == ' ' || *k == '\t') k++;
    char *ke = k + strlen(k);
    while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t' || ke[-1] == '\r')) *--ke = '\0';
    while (*v == ' ' || *v == '\t') v++;
    char *ve = v + strlen(v);
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r')) *--ve = '\0';
    if (k[0] && k[0] != '#') {
      tfw__sbuf_puts(b, "<tr><td>");
      tfw__html_escape(b, k);
      tfw__sbuf_puts(b, "</td><td>");
      tfw__html_escape(b, v);
      tfw__sbuf_puts(b, "</td></tr>\n");
    }
    line = nl ? nl + 1 : NULL;
  }
  tfw__sbuf_puts(b, "</table>\n");
  tfw__free(text);
}

static const char *const g_css =
    "body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}"
    "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
    "figure{margin:12px 0;display:block}svg.plot{background:#fff;border:1px solid #ddd}"
    "svg .ttl{font-size:14px;font-weight:bold;fill:#222}svg .lbl{font-size:12px;fill:#222}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:left}th{background:#eee}td.num{text-align:right;font-family:monospace}"
    ".note{color:#666}";

tfw_status tfw_report_write(const char *run_dir, const char *out_path) {
  if (!run_dir) return tfw__error(TFW_EVALUE, "tfw_report_write: run_dir is NULL");
  size_t cap = strlen(run_dir) + 32;
  char *csv_path = tfw__malloc(cap), *def_out = tfw__malloc(cap);
  if (!csv_path || !def_out) {
    tfw__free(csv_path);
    tfw__free(def_out);
    return tfw__error(TFW_ENOMEM, "tfw_report_write: out of memory");
  }
  snprintf(csv_path, cap, "%s/log.csv", run_dir);
  snprintf(def_out, cap, "%s/report.html", run_dir);
  if (!out_path) out_path = def_out;

  char *text = NULL;
  size_t len = 0;
  tfw__csv_table t = {0};
  double *num = NULL;
  unsigned char *isnum = NULL;
  tfw__sbuf b = {0};
  tfw_status s = tfw__read_file(csv_path, TFW__REPORT_MAX_CSV, &text, &len, "tfw_report_write");
  if (!s) s = tfw__csv_parse(text, len, csv_path, &t);
  if (s) goto done;
  if (t.nrows == 0) {
    s = tfw__error(TFW_EVALUE, "tfw_report_write: %s has a header but no rows", csv_path);
    goto done;
  }
  int nc = t.ncols;
  int64_t nr = t.nrows;
  num = tfw__malloc((size_t)nr * (size_t)nc * sizeof *num);
  isnum = tfw__calloc((size_t)nc, 1);
  if (!num || !isnum) {
    s = tfw__error(TFW_ENOMEM, "tfw_report_write: out of memory for %lld rows", (long long)nr);
    goto done;
  }
  /* numeric columns; missing/NaN cells become NaN */
  for (int c = 0; c < nc; c++) {
    int ok = 1, any = 0;
    for (int64_t r = 0; r < nr; r++) {
      const char *cell = t.cells[r * nc + c];
      double v = NAN;
      if (cell[0]) {
        if (parse_num(cell, &v)) any = 1;
        else ok = 0;
      }
      num[r * nc + c] = v;
    }
    isnum[c] = (unsigned char)(ok && any);
  }
  int xcol = -1;
  for (int c = 0; c < nc; c++)
    if (!strcmp(t.header[c], "step")) xcol = c;
  if (xcol >= 0 && !isnum[xcol]) {
    int64_t r = 0;
    double v;
    while (r < nr && (!t.cells[r * nc + xcol][0] || parse_num(t.cells[r * nc + xcol], &v))) r++;
    if (r == nr)
      s = tfw__error(TFW_EFORMAT, "tfw_report_write: %s: the step column is empty", csv_path);
    else
      s = tfw__error(TFW_EFORMAT, "tfw_report_write: %s: row %lld (line %lld): step '%.40s' is "
                     "not a number", csv_path, (long long)r + 1, (long long)r + 2,
                     t.cells[r * nc + xcol]);
    goto done;
  }
  const char *xlabel = xcol >= 0 ? "step" : "row";
  double xmin = INFINITY, xmax = -INFINITY;
  for (int64_t r = 0; r < nr; r++) {
    double x = xcol >= 0 ? num[r * nc + xcol] : (double)r;
    if (isfinite(x)) xmin = fmin(xmin, x), xmax = fmax(xmax, x);
  }
  if (!isfinite(xmin)) {
    s = tfw__error(TFW_EFORMAT, "tfw_report_write: %s: the step column has no numbers", csv_path);
    goto done;
  }

  const char *base = strrchr(run_dir, '/');
  base = base && base[1] ? base + 1 : run_dir;
  tfw__sbuf_puts(&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>");
  tfw__html_escape(&b, base);
  tfw__sbuf_printf(&b, " - tenflower run report</title>\n<style>%s</style>\n</head><body>\n<h1>",
                   g_css);
  tfw__html_escape(&b, base);
  tfw__sbuf_printf(&b, " &#8212; tenflower run report</h1>\n<p class=\"note\">%lld rows from "
                   "log.csv, %s %s..%s</p>\n", (long long)nr, xlabel,
                   tfw__fmt_double((char[32]){0}, xmin), tfw__fmt_double((char[32]){0}, xmax));

  static const char *const titles[] = {"Loss", "Accuracy", "Learning rate",
                                       "Throughput (samples/s)"};
  static const char *const ids[] = {"plot-loss", "plot-accuracy", "plot-lr", "plot-throughput"};
  int color = 0;
  tfw__series ser[16];
  /* the four named groups, then one plot per other numeric column */
  for (int g = 0; g <= G_OTHER + nc; g++) {
    int grp = g < G_OTHER ? g : G_OTHER;
    int ns = 0;
    for (int c = 0; c < nc; c++) {
      if (!isnum[c] || c == xcol || group_of(t.header[c]) != grp) continue;
      if (grp == G_OTHER && c != g - G_OTHER) continue;
      if (ns == 16) break;
      int64_t m = 0;
      double *sx = tfw__malloc((size_t)nr * 2 * sizeof *sx);
      if (!sx) {
        s = tfw__error(TFW_ENOMEM, "tfw_report_write: out of memory");
        break;
      }
      for (int64_t r = 0; r < nr; r++) {
        double x = xcol >= 0 ? num[r * nc + xcol] : (double)r, y = num[r * nc + c];
        if (isfinite(x) && isfinite(y)) sx[m] = x, sx[nr + m] = y, m++;
      }
      if (m == 0) {
        tfw__free(sx);
        continue;
      }
      ser[ns++] = (tfw__series){t.header[c], m, sx, sx + nr, color++};
    }
    if (!s && ns > 0) {
      char id[64];
      if (grp < G_OTHER) snprintf(id, sizeof id, "%s", ids[grp]);
      else snprintf(id, sizeof id, "plot-col%d", g - G_OTHER);
      tfw__sbuf_puts(&b, "<figure>\n");
      tfw__plot_svg(&b, id, grp < G_OTHER ? titles[grp] : ser[0].name, xlabel, ns, ser, xmin,
                    xmax);
      tfw__sbuf_puts(&b, "</figure>\n");
    }
    for (int k = 0; k < ns; k++) tfw__free((void *)ser[k].x);
    if (s) goto done;
  }

  /* summary table of every numeric column */
  tfw__sbuf_puts(&b, "<h2>Summary</h2>\n<table id=\"summary\">\n<tr><th>column</th><th>last</th>"
                 "<th>min</th><th>max</th><th>values</th></tr>\n");
  for (int c = 0; c < nc; c++) {
    if (!isnum[c]) continue;
    double last = NAN, lo = INFINITY, hi = -INFINITY;
    int64_t cnt = 0;
    for (int64_t r = 0; r < nr; r++) {
      double v = num[r * nc + c];
      if (isnan(v)) continue;
      last = v, lo = fmin(lo, v), hi = fmax(hi, v), cnt++;
    }
    char l1[32], l2[32], l3[32];
    snprintf(l1, sizeof l1, "%.6g", last), snprintf(l2, sizeof l2, "%.6g", lo);
    snprintf(l3, sizeof l3, "%.6g", hi);
    tfw__sbuf_puts(&b, "<tr><td>");
    tfw__html_escape(&b, t.header[c]);
    tfw__sbuf_printf(&b, "</td><td class=\"num\">%s</td><td class=\"num\">%s</td>"
                     "<td class=\"num\">%s</td><td class=\"num\">%lld</td></tr>\n",
                     l1, l2, l3,
                     (long long)cnt);
  }
  tfw__sbuf_puts(&b, "</table>\n");
  append_config(&b, run_dir);
  tfw__sbuf_puts(&b, "</body></html>\n");
  if (b.oom) {
    s = tfw__error(TFW_ENOMEM, "tfw_report_write: out of memory building the page");
    goto done;
  }
  /* write a temporary beside out_path, then rename: a reader never sees half a page */
  {
    size_t pc = strlen(out_path) + 16;
    char *tmp = tfw__malloc(pc);
    if (!tmp) {
      s = tfw__error(TFW_ENOMEM, "tfw_report_write: out of memory");
      goto done;
    }
    snprintf(tmp, pc, "%s.tmp", out_path);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(b.p, 1, b.len, f) == b.len;
    int err = errno;
    if (f && fclose(f) != 0 && ok) ok = 0, err = errno;
    if (ok && rename(tmp, out_path) != 0) ok = 0, err = errno;
    if (!ok) {
      if (f) remove(tmp);
      s = tfw__error(TFW_EIO, "tfw_report_write: cannot write '%s': %s", out_path, strerror(err));
    }
    tfw__free(tmp);
  }
done:
  tfw__sbuf_free(&b);
  tfw__free(num);
  tfw__free(isnum);
  tfw__csv_free(&t);
  tfw__free(text);
  tfw__free(csv_path);
  tfw__free(def_out);
  return s;
}
