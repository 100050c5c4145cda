/* SVG line plots for the run report. Each plot is a standalone <svg> element:
 *   <svg class="plot" data-xlo data-xhi data-ylo data-yhi      axis domains
 *        data-px0 data-px1 data-py0 data-py1 ...>             plot area in SVG units
 *     <polyline class="series" data-col="loss" data-n-source="1000"
 *               data-x="..." data-y="..." points="..."/>      one per column
 * A point (x, y) is drawn at px = px0 + (x - xlo) / (xhi - xlo) * (px1 - px0),
 * py = py1 - (y - ylo) / (yhi - ylo) * (py1 - py0), rounded to 0.01; data-x/data-y hold
 * the plotted values in their shortest exact decimal form (docs/logging.md).
 *
 * Downsampling (so a million-row log stays a small file): a series with more than
 * 2 * TFW__PLOT_BUCKETS points keeps its first and last point and, in each of
 * TFW__PLOT_BUCKETS equal-width buckets of [xmin, xmax] (bucket = min(B - 1,
 * floor((x - xmin) / (xmax - xmin) * B))), the points with the smallest and the largest y
 * (the first such in row order on ties), in row order. Min/max per pixel column keeps
 * spikes visible, which averaging would hide. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/train_internal.h"

const char *const tfw__palette[10] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                      "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"};

#define PX0 72.0
#define PX1 (PX0 + TFW__PLOT_BUCKETS)
#define PY0 36.0
#define PY1 (TFW__PLOT_H - 48.0)

void tfw__html_escape(tfw__sbuf *b, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '&': tfw__sbuf_puts(b, "&amp;"); break;
    case '<': tfw__sbuf_puts(b, "&lt;"); break;
    case '>': tfw__sbuf_puts(b, "&gt;"); break;
    case '"': tfw__sbuf_puts(b, "&quot;"); break;
    case '\'': tfw__sbuf_puts(b, "&#39;"); break;
    default:
      if ((unsigned char)*s < 0x20) tfw__sbuf_put(b, " ", 1); /* no control chars in XML */
      else tfw__sbuf_put(b, s, 1);
    }
  }
}

/* A "nice" tick step (1, 2 or 5 times a power of ten) giving about 5 intervals. */
static double nice_step(double span) {
  double raw = span / 5, p = pow(10, floor(log10(raw))), f = raw / p;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
}

/* Expands [lo, hi] to tick multiples; degenerate ranges get a unit-ish width. */
static double axis(double *lo, double *hi) {
  if (!(*hi > *lo)) {
    double d = *lo == 0 ? 1 : fabs(*lo) * 0.1;
    *lo -= d, *hi += d;
  }
  double st = nice_step(*hi - *lo);
  *lo = floor(*lo / st) * st;
  *hi = ceil(*hi / st) * st;
  return st;
}

static void tick_label(char *buf, double v, double step) {
  if (fabs(v) < step * 1e-9) v = 0;
  snprintf(buf, 32, "%.6g", v);
}

/* Indices of the points to draw (see the file comment). keep has room for n entries. */
static int64_t downsample(const tfw__series *s, double xmin, double xmax, int64_t *keep) {
  int64_t n = s->n;
  if (n <= 2 * TFW__PLOT_BUCKETS || !(xmax > xmin)) {
    for (int64_t i = 0; i < n; i++) keep[i] = i;
    return n;
  }
  enum { B = TFW__PLOT_BUCKETS };
  int64_t lo[B], hi[B];
  for (int k = 0; k < B; k++) lo[k] = hi[k] = -1;
  for (int64_t i = 0; i < n; i++) {
    double f = floor((s->x[i] - xmin) / (xmax - xmin) * B);
    int k = f < 0 ? 0 : f > B - 1 ? B - 1 : (int)f;
    if (lo[k] < 0 || s->y[i] < s->y[lo[k]]) lo[k] = i;
    if (hi[k] < 0 || s->y[i] > s->y[hi[k]]) hi[k] = i;
  }
  /* mark, then collect in row order */
  int64_t m = 0;
  for (int64_t i = 0; i < n; i++) keep[i] = 0;
  keep[0] = keep[n - 1] = 1;
  for (int k = 0; k < B; k++)
    if (lo[k] >= 0) keep[lo[k]] = keep[hi[k]] = 1;
  for (int64_t i = 0; i < n; i++)
    if (keep[i]) keep[m++] = i;
  return m;
}

void tfw__plot_svg(tfw__sbuf *b, const char *id, const char *title, const char *xlabel,
                   int nseries, const tfw__series *s, double xmin, double xmax) {
  double xlo = xmin, xhi = xmax, ylo = INFINITY, yhi = -INFINITY;
  for (int k = 0; k < nseries; k++)
    for (int64_t i = 0; i < s[k].n; i++) {
      if (s[k].y[i] < ylo) ylo = s[k].y[i];
      if (s[k].y[i] > yhi) yhi = s[k].y[i];
    }
  if (!isfinite(ylo)) ylo = 0, yhi = 1;
  double xst = axis(&xlo, &xhi), yst = axis(&ylo, &yhi);
  char a[32], c[32], d[32], e[32];
  tfw__sbuf_printf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" id=\"%s\" "
                   "width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" ",
                   id, TFW__PLOT_W, TFW__PLOT_H, TFW__PLOT_W, TFW__PLOT_H);
  tfw__sbuf_printf(b, "data-xlo=\"%s\" data-xhi=\"%s\" data-ylo=\"%s\" data-yhi=\"%s\" ",
                   tfw__fmt_double(a, xlo), tfw__fmt_double(c, xhi), tfw__fmt_double(d, ylo),
                   tfw__fmt_double(e, yhi));
  tfw__sbuf_printf(b, "data-px0=\"%g\" data-px1=\"%g\" data-py0=\"%g\" data-py1=\"%g\">\n",
                   PX0, PX1, PY0, PY1);
  tfw__sbuf_puts(b, "<title>");
  tfw__html_escape(b, title);
  tfw__sbuf_puts(b, "</title>\n");
  tfw__sbuf_printf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n",
                   TFW__PLOT_W, TFW__PLOT_H);
  tfw__sbuf_printf(b, "<text x=\"%g\" y=\"20\" class=\"ttl\">", PX0);
  tfw__html_escape(b, title);
  tfw__sbuf_puts(b, "</text>\n<g class=\"grid\" stroke=\"#e4e4e4\" stroke-width=\"1\">\n");
  /* ticks and grid */
  tfw__sbuf s_lab = {0};
  for (int i = 0; i <= 100; i++) {
    double v = xlo + i * xst;
    if (v > xhi + xst * 1e-9) break;
    double px = PX0 + (v - xlo) / (xhi - xlo) * (PX1 - PX0);
    tick_label(a, v, xst);
    tfw__sbuf_printf(b, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\"/>\n", px, PY0, px, PY1);
    tfw__sbuf_printf(&s_lab, "<line x1=\"%.2f\" y1=\"%g\" x2=\"%.2f\" y2=\"%g\" stroke=\"#444\"/>"
                     "<text x=\"%.2f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n",
                     px, PY1, px, PY1 + 5, px, PY1 + 18, a);
  }
  for (int i = 0; i <= 100; i++) {
    double v = ylo + i * yst;
    if (v > yhi + yst * 1e-9) break;
    double py = PY1 - (v - ylo) / (yhi - ylo) * (PY1 - PY0);
    tick_label(a, v, yst);
    tfw__sbuf_printf(b, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\"/>\n", PX0, py, PX1, py);
    tfw__sbuf_printf(&s_lab, "<line x1=\"%g\" y1=\"%.2f\" x2=\"%g\" y2=\"%.2f\" stroke=\"#444\"/>"
                     "<text x=\"%g\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                     PX0 - 5, py, PX0, py, PX0 - 8, py + 4, a);
  }
  tfw__sbuf_puts(b, "</g>\n<g class=\"axes\" font-size=\"11\" fill=\"#333\">\n");
  if (s_lab.p) tfw__sbuf_put(b, s_lab.p, s_lab.len);
  tfw__sbuf_free(&s_lab);
  tfw__sbuf_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
                   "stroke=\"#444\"/>\n", PX0, PY0, PX1 - PX0, PY1 - PY0);
  tfw__sbuf_printf(b, "<text x=\"%g\" y=\"%d\" text-anchor=\"middle\" class=\"lbl\">",
                   (PX0 + PX1) / 2, TFW__PLOT_H - 10);
  tfw__html_escape(b, xlabel);
  tfw__sbuf_puts(b, "</text>\n</g>\n");
  /* legend */
  double lx = PX1;
  for (int k = nseries - 1; k >= 0; k--) {
    lx -= 14 + 7.0 * (double)strlen(s[k].name) + 10;
    tfw__sbuf_printf(b, "<g class=\"legend\"><rect x=\"%.1f\" y=\"12\" width=\"12\" height=\"4\" "
                     "fill=\"%s\"/><text x=\"%.1f\" y=\"19\" font-size=\"12\">",
                     lx, tfw__palette[s[k].color % 10], lx + 16);
    tfw__html_escape(b, s[k].name);
    tfw__sbuf_puts(b, "</text></g>\n");
  }
  /* series */
  for (int k = 0; k < nseries; k++) {
    int64_t *keep = tfw__malloc((size_t)(s[k].n ? s[k].n : 1) * sizeof *keep);
    if (!keep) {
      b->oom = 1;
      return;
    }
    int64_t m = downsample(&s[k], xmin, xmax, keep);
    const char *col = tfw__palette[s[k].color % 10];
    tfw__sbuf_puts(b, "<polyline class=\"series\" data-col=\"");
    tfw__html_escape(b, s[k].name);
    tfw__sbuf_printf(b, "\" data-n-source=\"%lld\" fill=\"none\" stroke=\"%s\" "
                     "stroke-width=\"2\" stroke-linejoin=\"round\" data-x=\"", (long long)s[k].n, col);
    for (int64_t j = 0; j < m; j++)
      tfw__sbuf_printf(b, "%s%s", j ? " " : "", tfw__fmt_double(a, s[k].x[keep[j]]));
    tfw__sbuf_puts(b, "\" data-y=\"");
    for (int64_t j = 0; j < m; j++)
      tfw__sbuf_printf(b, "%s%s", j ? " " : "", tfw__fmt_double(a, s[k].y[keep[j]]));
    tfw__sbuf_puts(b, "\" points=\"");
    for (int64_t j = 0; j < m; j++) {
      double x = s[k].x[keep[j]], y = s[k].y[keep[j]];
      double px = PX0 + (x - xlo) / (xhi - xlo) * (PX1 - PX0);
      double py = PY1 - (y - ylo) / (yhi - ylo) * (PY1 - PY0);
      tfw__sbuf_printf(b, "%s%.2f,%.2f", j ? " " : "", px, py);
    }
    tfw__sbuf_puts(b, "\"/>\n");
    if (m <= 60) /* few points (eval every N steps): markers, so one point still shows */
      for (int64_t j = 0; j < m; j++) {
        double x = s[k].x[keep[j]], y = s[k].y[keep[j]];
        tfw__sbuf_printf(b, "<circle class=\"marker\" cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%s\"/>\n",
                         PX0 + (x - xlo) / (xhi - xlo) * (PX1 - PX0),
                         PY1 - (y - ylo) / (yhi - ylo) * (PY1 - PY0), col);
      }
    tfw__free(keep);
  }
  tfw__sbuf_puts(b, "</svg>\n");
}
