/* CSV reader for the report: RFC 4180 with the usual leniencies (LF, CRLF or CR line
 * ends; blank lines skipped; a quote inside an unquoted field is literal). All strings go
 * into one arena of at most 2 * len + 2 bytes (each cell's text is no longer than its
 * source, plus one NUL per cell, and there are at most len + 1 cells). */
#include <stdio.h>
#include <string.h>

#include "train/train_internal.h"

static char g_empty[1] = "";

void tfw__csv_free(tfw__csv_table *t) {
  tfw__free(t->header);
  tfw__free(t->cells);
  tfw__free(t->arena);
  memset(t, 0, sizeof *t);
}

tfw_status tfw__csv_parse(const char *text, size_t len, const char *what, tfw__csv_table *out) {
  memset(out, 0, sizeof *out);
  char *arena = tfw__malloc(2 * len + 2);
  size_t ncap = 64, n = 0; /* cells collected so far, row-major, header first */
  char **cells = tfw__malloc(ncap * sizeof *cells);
  if (!arena || !cells) {
    tfw__free(arena);
    tfw__free(cells);
    return tfw__error(TFW_ENOMEM, "csv: out of memory reading %s", what);
  }
  size_t a = 0, i = 0;
  int64_t line = 1, rows = 0;
  int ncols = -1;
  tfw_status s = TFW_OK;
  while (i < len && !s) {
    if (text[i] == '\n' || text[i] == '\r') { /* blank line */
      if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') i++;
      i++, line++;
      continue;
    }
    int64_t rec_line = line;
    int fields = 0, eor = 0;
    while (!eor && !s) {
      char *cell = arena + a;
      if (i < len && text[i] == '"') {
        i++;
        for (;;) {
          if (i >= len) {
            s = tfw__error(TFW_EFORMAT, "csv: %s: line %lld: unclosed quote", what,
                           (long long)rec_line);
            break;
          }
          if (text[i] == '"') {
            if (i + 1 < len && text[i + 1] == '"') {
              arena[a++] = '"', i += 2;
              continue;
            }
            i++;
            break;
          }
          if (text[i] == '\n') line++;
          arena[a++] = text[i++];
        }
        if (!s && i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          s = tfw__error(TFW_EFORMAT, "csv: %s: line %lld: unexpected '%c' after a closing quote",
                         what, (long long)line, text[i]);
      } else {
        while (i < len && text[i] != ',' && text[i] != '\n' && text[i] != '\r')
          arena[a++] = text[i++];
      }
      if (s) break;
      arena[a++] = '\0';
      if (n == ncap) {
        char **c = tfw__realloc(cells, 2 * ncap * sizeof *c);
        if (!c) {
          s = tfw__error(TFW_ENOMEM, "csv: out of memory reading %s", what);
          break;
        }
        cells = c, ncap *= 2;
      }
      cells[n++] = cell;
      fields++;
      if (ncols >= 0 && fields > ncols) {
        s = tfw__error(TFW_EFORMAT, "csv: %s: line %lld: more than %d fields (the header has %d)",
                       what, (long long)rec_line, ncols, ncols);
        break;
      }
      if (i < len && text[i] == ',') {
        i++;
        continue;
      }
      eor = 1; /* newline or end of input */
      if (i < len) {
        if (text[i] == '\r' && i + 1 < len && text[i + 1] == '\n') i++;
        i++, line++;
      }
    }
    if (s) break;
    if (ncols < 0) {
      ncols = fields;
      for (int c = 0; c < ncols && !s; c++) {
        if (!cells[c][0])
          s = tfw__error(TFW_EFORMAT, "csv: %s: header column %d has an empty name", what, c + 1);
        for (int d = 0; d < c && !s; d++)
          if (strcmp(cells[c], cells[d]) == 0)
            s = tfw__error(TFW_EFORMAT, "csv: %s: header names column '%s' twice", what, cells[c]);
      }
      continue;
    }
    for (; fields < ncols && !s; fields++) { /* pad a short row */
      if (n == ncap) {
        char **c = tfw__realloc(cells, 2 * ncap * sizeof *c);
        if (!c) {
          s = tfw__error(TFW_ENOMEM, "csv: out of memory reading %s", what);
          break;
        }
        cells = c, ncap *= 2;
      }
      cells[n++] = g_empty;
    }
    rows++;
  }
  if (!s && ncols < 0) s = tfw__error(TFW_EFORMAT, "csv: %s: empty file (no header line)", what);
  if (s) {
    tfw__free(arena);
    tfw__free(cells);
    return s;
  }
  /* split: header[] and cells[] are separate allocations so both can be freed */
  char **header = tfw__malloc((size_t)ncols * sizeof *header);
  char **body = tfw__malloc(((size_t)rows * (size_t)ncols + 1) * sizeof *body);
  if (!header || !body) {
    tfw__free(header);
    tfw__free(body);
    tfw__free(arena);
    tfw__free(cells);
    return tfw__error(TFW_ENOMEM, "csv: out of memory reading %s", what);
  }
  memcpy(header, cells, (size_t)ncols * sizeof *header);
  memcpy(body, cells + ncols, (size_t)rows * (size_t)ncols * sizeof *body);
  tfw__free(cells);
  out->ncols = ncols;
  out->nrows = rows;
  out->header = header;
  out->cells = body;
  out->arena = arena;
  return TFW_OK;
}
