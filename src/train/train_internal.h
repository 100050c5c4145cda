/* tenflower internal: helpers shared by the run-logging files of src/train (progress bar,
 * CSV log, event files, report). Internal header — never installed. */
#ifndef TFW_TRAIN_INTERNAL_H
#define TFW_TRAIN_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tenflower/logging.h"

/* Seconds from CLOCK_MONOTONIC. */
double tfw__monotonic(void);
/* Creates directory path (one level) unless it exists as a directory; TFW_EIO naming op. */
tfw_status tfw__mkdir(const char *path, const char *op);
/* Writes v into buf (>= 32 bytes) in the shortest "%.{15,16,17}g" form that strtod reads
 * back to exactly v; "nan", "inf", "-inf" otherwise. Returns buf. */
char *tfw__fmt_double(char *buf, double v);

/* tfw__sbuf (a growable text buffer) is in core/core.h. */

/* A CSV file read whole: RFC 4180 (quoted fields with "" escapes, CRLF or LF), first row is
 * the header. Every row has ncols cells (short rows are padded with empty cells). */
typedef struct tfw__csv_table {
  int ncols;
  int64_t nrows;      /* data rows */
  char **header;      /* ncols names */
  char **cells;       /* nrows * ncols, row-major; "" for empty */
  char *arena;        /* all the strings */
} tfw__csv_table;
/* Parses text[0, len). TFW_EFORMAT (message has what and the line number) on an unclosed
 * quote, a row with more cells than the header, an empty header or a duplicate column;
 * TFW_ENOMEM. what names the source in messages. */
tfw_status tfw__csv_parse(const char *text, size_t len, const char *what, tfw__csv_table *out);
void tfw__csv_free(tfw__csv_table *t);
/* Reads a whole file (at most max bytes) into a NUL-terminated buffer from tfw__malloc. */
tfw_status tfw__read_file(const char *path, size_t max, char **out, size_t *len, const char *op);

/* Deletes all but the newest `keep` files ckpt-<step>.safetensors in dir (ckpt_file.c). */
void tfw__ckpt_prune(const char *dir, int keep);

#endif

/* ---- report plots (report_plot.c) ---- */
typedef struct tfw__series {
  const char *name; /* the CSV column */
  int64_t n;        /* points with both x and y present, in row order */
  const double *x, *y;
  int color;        /* index into tfw__palette */
} tfw__series;
extern const char *const tfw__palette[10];
#define TFW__PLOT_W 680
#define TFW__PLOT_H 300
#define TFW__PLOT_BUCKETS 560 /* pixel columns of the plot area: downsampling buckets */
/* Appends one <svg> line plot of the series over x in [xmin, xmax] (the whole x column's
 * range, which also defines the downsampling buckets). */
void tfw__plot_svg(tfw__sbuf *b, const char *id, const char *title, const char *xlabel,
                   int nseries, const tfw__series *s, double xmin, double xmax);
/* Appends s with &, <, >, " and ' escaped. */
void tfw__html_escape(tfw__sbuf *b, const char *s);
