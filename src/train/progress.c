/* Progress display in tqdm's format (RELIABILITY.md §5):
 *   desc:  42%|████▏     | 42/100 [00:01<00:02, 30.52it/s, loss 0.123]
 *   desc: 327it [00:03, 98.12it/s, loss 0.123]              (unknown total)
 * BAR mode redraws one line with '\r' (padding with spaces over a longer previous line; no
 * ANSI codes) at most every 0.1 s; LINES mode prints the same text without the bar as
 * separate lines every 10% and every 30 s, for logs and CI. The rate is the average since
 * the start (n / elapsed: tqdm with smoothing=0), the ETA (total - n) / rate; the percentage
 * is floored, so 100% means done. The bar uses Unicode eighth blocks when the locale
 * (LC_ALL, LC_CTYPE or LANG) is UTF-8, else tqdm's ASCII bar "123456789#". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "train/train_internal.h"

#define TFW__BAR_MININTERVAL 0.1

struct tfw_progress {
  FILE *out;
  char *desc, *postfix;
  int64_t total, n;
  tfw_progress_mode mode; /* resolved: never AUTO */
  tfw_clock_fn clock;
  void *ctx;
  double start, last_draw, last_line_t;
  double line_pct, line_secs;
  int64_t last_bucket, last_line_n;
  int printed_line; /* LINES: at least one line printed */
  int width;        /* 0: ask the terminal */
  int prev_cols;    /* BAR: display width of the line on screen */
  int drawn;
  int utf8;
};

static double default_clock(void *ctx) {
  (void)ctx;
  return tfw__monotonic();
}
static double now(const tfw_progress *p) { return p->clock(p->ctx); }

static char *dupstr(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = tfw__malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

static int locale_utf8(void) {
  const char *vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
  for (int i = 0; i < 3; i++) {
    const char *v = getenv(vars[i]);
    if (v && v[0]) {
      char low[64];
      size_t k = 0;
      for (; v[k] && k < sizeof low - 1; k++) low[k] = (char)(v[k] >= 'A' && v[k] <= 'Z' ? v[k] + 32 : v[k]);
      low[k] = '\0';
      return strstr(low, "utf-8") || strstr(low, "utf8");
    }
  }
  return 0;
}

static tfw_progress_mode resolve(tfw_progress_mode m, FILE *out) {
  if (m != TFW_PROGRESS_AUTO) return m;
  return isatty(fileno(out)) ? TFW_PROGRESS_BAR : TFW_PROGRESS_LINES;
}

tfw_progress *tfw_progress_new(const char *desc, int64_t total, FILE *out) {
  tfw_progress *p = tfw__calloc(1, sizeof *p);
  if (!p || !(p->desc = dupstr(desc ? desc : "")) || !(p->postfix = dupstr(""))) {
    if (p) tfw__free(p->desc);
    tfw__free(p);
    tfw__error(TFW_ENOMEM, "tfw_progress_new: out of memory");
    return NULL;
  }
  p->out = out ? out : stderr;
  p->total = total > 0 ? total : 0;
  p->clock = default_clock;
  p->start = now(p);
  p->last_draw = -INFINITY;
  p->last_line_t = p->start;
  p->line_pct = 10;
  p->line_secs = 30;
  p->utf8 = locale_utf8();
  tfw_progress_mode m = TFW_PROGRESS_AUTO;
  const char *env = getenv("TFW_PROGRESS");
  if (env && strcmp(env, "bar") == 0) m = TFW_PROGRESS_BAR;
  else if (env && strcmp(env, "lines") == 0) m = TFW_PROGRESS_LINES;
  else if (env && strcmp(env, "off") == 0) m = TFW_PROGRESS_OFF;
  p->mode = resolve(m, p->out);
  return p;
}

void tfw_progress_set_mode(tfw_progress *p, tfw_progress_mode mode) {
  if (p && mode >= TFW_PROGRESS_AUTO && mode <= TFW_PROGRESS_OFF) p->mode = resolve(mode, p->out);
}
tfw_progress_mode tfw_progress_get_mode(const tfw_progress *p) {
  return p ? p->mode : TFW_PROGRESS_OFF;
}
void tfw_progress_set_line_interval(tfw_progress *p, double percent, double seconds) {
  if (!p) return;
  p->line_pct = percent;
  p->line_secs = seconds;
}
void tfw_progress_set_width(tfw_progress *p, int columns) {
  if (p) p->width = columns > 0 ? columns : 0;
}
void tfw_progress_set_clock(tfw_progress *p, tfw_clock_fn clock, void *ctx) {
  if (!p) return;
  p->clock = clock ? clock : default_clock;
  p->ctx = clock ? ctx : NULL;
  p->start = now(p);
  p->last_line_t = p->start;
  p->last_draw = -INFINITY;
}

static int term_width(const tfw_progress *p) {
  if (p->width > 0) return p->width;
  struct winsize ws;
  if (ioctl(fileno(p->out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  const char *c = getenv("COLUMNS");
  int w = c ? atoi(c) : 0;
  return w > 0 ? w : 80;
}

/* Display columns of UTF-8 text: one per code point. */
static int cols_of(const char *s) {
  int c = 0;
  for (; *s; s++) c += ((unsigned char)*s & 0xC0) != 0x80;
  return c;
}

static void fmt_time(char *buf, size_t cap, double t) {
  if (!isfinite(t) || t < 0) {
    snprintf(buf, cap, "?");
    return;
  }
  long long s = (long long)t, h = s / 3600;
  if (h) snprintf(buf, cap, "%lld:%02lld:%02lld", h, s / 60 % 60, s % 60);
  else snprintf(buf, cap, "%02lld:%02lld", s / 60, s % 60);
}

/* The text around the bar: *left ends with "|" when a bar follows (known total, with_bar),
 * *right starts with "|". */
static void fmt_parts(const tfw_progress *p, double t, int with_bar, tfw__sbuf *left,
                      tfw__sbuf *right) {
  double el = t - p->start;
  if (el < 0) el = 0;
  double rate = el > 0 && p->n > 0 ? (double)p->n / el : NAN;
  char ebuf[32], rbuf[48], tbuf[32];
  fmt_time(ebuf, sizeof ebuf, el);
  if (!isfinite(rate)) snprintf(rbuf, sizeof rbuf, "?it/s");
  else if (rate >= 1) snprintf(rbuf, sizeof rbuf, "%.2fit/s", rate);
  else snprintf(rbuf, sizeof rbuf, "%.2fs/it", 1 / rate);
  const char *sep = p->postfix[0] ? ", " : "";
  if (p->desc[0]) tfw__sbuf_printf(left, "%s: ", p->desc);
  if (p->total > 0) {
    int pct = (int)floor(100.0 * (double)p->n / (double)p->total);
    double eta = p->n >= p->total ? 0 : (double)(p->total - p->n) / rate;
    fmt_time(tbuf, sizeof tbuf, eta);
    tfw__sbuf_printf(left, "%3d%%%s", pct, with_bar ? "|" : " ");
    tfw__sbuf_printf(right, "%s%lld/%lld [%s<%s, %s%s%s]", with_bar ? "| " : "",
                     (long long)p->n, (long long)p->total, ebuf, tbuf, rbuf, sep, p->postfix);
  } else {
    tfw__sbuf_printf(right, "%lldit [%s, %s%s%s]", (long long)p->n, ebuf, rbuf, sep, p->postfix);
  }
}

static void draw_bar(tfw_progress *p, double t) {
  tfw__sbuf left = {0}, right = {0}, line = {0};
  fmt_parts(p, t, 1, &left, &right);
  tfw__sbuf_put(&line, "\r", 1);
  tfw__sbuf_put(&line, left.p ? left.p : "", left.len);
  int cols = cols_of(left.p ? left.p : "") + cols_of(right.p ? right.p : "");
  if (p->total > 0) {
    int barw = term_width(p) - cols - 1; /* keep the last column free: no auto-wrap */
    if (barw < 3) barw = 3;
    double frac = (double)p->n / (double)p->total;
    frac = frac < 0 ? 0 : frac > 1 ? 1 : frac;
    int eighths = (int)(frac * barw * 8), full = eighths / 8, part = eighths % 8;
    static const char *const ublk[8] = {" ", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    static const char asc[] = " 123456789#";
    for (int i = 0; i < barw; i++) {
      if (i < full) tfw__sbuf_puts(&line, p->utf8 ? "█" : "#");
      else if (i == full && part) {
        if (p->utf8) tfw__sbuf_puts(&line, ublk[part]);
        else tfw__sbuf_put(&line, &asc[(int)(part * 10 / 8)], 1);
      } else tfw__sbuf_put(&line, " ", 1);
    }
    cols += barw;
  }
  tfw__sbuf_put(&line, right.p ? right.p : "", right.len);
  for (int i = cols; i < p->prev_cols; i++) tfw__sbuf_put(&line, " ", 1);
  if (!line.oom) fwrite(line.p, 1, line.len, p->out);
  fflush(p->out);
  p->prev_cols = cols;
  p->drawn = 1;
  p->last_draw = t;
  tfw__sbuf_free(&left);
  tfw__sbuf_free(&right);
  tfw__sbuf_free(&line);
}

static void print_line(tfw_progress *p, double t) {
  tfw__sbuf left = {0}, right = {0};
  fmt_parts(p, t, 0, &left, &right);
  fprintf(p->out, "%s%s\n", left.p ? left.p : "", right.p ? right.p : "");
  fflush(p->out);
  p->printed_line = 1;
  p->last_line_n = p->n;
  p->last_line_t = t;
  tfw__sbuf_free(&left);
  tfw__sbuf_free(&right);
}

void tfw_progress_update(tfw_progress *p, int64_t n, const char *postfix) {
  if (!p) return;
  p->n += n;
  if (postfix && strcmp(postfix, p->postfix) != 0) {
    char *d = dupstr(postfix);
    if (d) {
      tfw__free(p->postfix);
      p->postfix = d;
    }
  }
  if (p->mode == TFW_PROGRESS_OFF) return;
  double t = now(p);
  if (p->mode == TFW_PROGRESS_BAR) {
    if (t - p->last_draw >= TFW__BAR_MININTERVAL) draw_bar(p, t);
    return;
  }
  int due = 0;
  if (p->total > 0 && p->line_pct > 0) {
    int64_t bucket = (int64_t)floor((double)p->n * 100.0 / (p->line_pct * (double)p->total));
    if (bucket > p->last_bucket) {
      p->last_bucket = bucket;
      due = 1;
    }
  }
  if (p->line_secs > 0 && t - p->last_line_t >= p->line_secs) due = 1;
  if (due) print_line(p, t);
}

void tfw_progress_write(tfw_progress *p, const char *text) {
  if (!p || !text) return;
  if (p->mode == TFW_PROGRESS_BAR && p->drawn) {
    fputc('\r', p->out);
    for (int i = 0; i < p->prev_cols; i++) fputc(' ', p->out);
    fprintf(p->out, "\r%s\n", text);
    p->prev_cols = 0;
    draw_bar(p, now(p));
  } else {
    fprintf(p->out, "%s\n", text);
    fflush(p->out);
  }
}

void tfw_progress_close(tfw_progress *p) {
  if (!p) return;
  if (p->mode == TFW_PROGRESS_BAR) {
    draw_bar(p, now(p));
    fputc('\n', p->out);
    fflush(p->out);
  } else if (p->mode == TFW_PROGRESS_LINES && (!p->printed_line || p->last_line_n != p->n)) {
    print_line(p, now(p));
  }
  tfw__free(p->desc);
  tfw__free(p->postfix);
  tfw__free(p);
}
