/* tenflower — run logging: progress bar, CSV metrics log, TensorBoard event files, HTML run
 * report, and the TFRecord record reader.
 *
 * A training run writes into one directory (RUN_DIR): log.csv (tfw_csv_log), config.txt
 * (tfw_run_config_write), events.out.tfevents.* (tfw_summary_writer) and report.html
 * (tfw_report_write). docs/logging.md describes every file and shows a whole loop.
 * None of these objects is thread-safe: use each from one thread at a time. */
#ifndef TENFLOWER_LOGGING_H
#define TENFLOWER_LOGGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- progress bar -------------------------------------------------------------------- */
typedef struct tfw_progress tfw_progress;

typedef enum tfw_progress_mode {
  TFW_PROGRESS_AUTO = 0, /* BAR if out is a terminal, else LINES */
  TFW_PROGRESS_BAR,      /* one line redrawn with '\r' at most every 0.1 s (tqdm's look) */
  TFW_PROGRESS_LINES,    /* plain lines: every 10% of total and every 30 s; no '\r' */
  TFW_PROGRESS_OFF       /* nothing (tfw_progress_write still prints) */
} tfw_progress_mode;

/* Starts a progress display for total items (total <= 0: unknown) written to out (NULL:
 * stderr); desc may be NULL. The mode is AUTO unless the environment variable
 * TFW_PROGRESS is "bar", "lines" or "off". Returns NULL only on TFW_ENOMEM. */
TFW_API tfw_progress *tfw_progress_new(const char *desc, int64_t total, FILE *out);
/* Advances by n items (n may be 0, to change only the postfix). postfix is shown after the
 * rate, e.g. "loss 0.123 acc 98.1%"; NULL keeps the previous one, "" clears it. */
TFW_API void tfw_progress_update(tfw_progress *p, int64_t n, const char *postfix);
/* Prints text on its own line (above the bar in BAR mode), then redraws the bar. */
TFW_API void tfw_progress_write(tfw_progress *p, const char *text);
/* Draws the final state (and a newline in BAR mode) and frees p. NULL is a no-op. */
TFW_API void tfw_progress_close(tfw_progress *p);

/* Overrides the mode (also the one TFW_PROGRESS chose). */
TFW_API void tfw_progress_set_mode(tfw_progress *p, tfw_progress_mode mode);
/* LINES mode: a line every `percent` of total (<= 0: never by count) and every `seconds`
 * (<= 0: never by time). Defaults 10 and 30. */
TFW_API void tfw_progress_set_line_interval(tfw_progress *p, double percent, double seconds);
/* BAR mode: the line width in columns (default: the terminal's width, else $COLUMNS,
 * else 80). */
TFW_API void tfw_progress_set_width(tfw_progress *p, int columns);
/* Replaces the clock (seconds, any origin; default CLOCK_MONOTONIC) and restarts the
 * elapsed time from its current reading. For tests and for callers with their own clock. */
typedef double (*tfw_clock_fn)(void *ctx);
TFW_API void tfw_progress_set_clock(tfw_progress *p, tfw_clock_fn clock, void *ctx);
/* The mode in effect (AUTO already resolved to BAR or LINES). */
TFW_API tfw_progress_mode tfw_progress_get_mode(const tfw_progress *p);

/* ---- CSV metrics log ------------------------------------------------------------------ */
typedef struct tfw_csv_log tfw_csv_log;

#define TFW_CSV_APPEND 1u /* keep an existing file and its header (resumed runs) */

/* Opens path for writing (truncating it, or appending with TFW_CSV_APPEND). Columns are
 * the n names in cols, or (n == 0) the names set before the first tfw_csv_log_row_end, in
 * the order first set. When appending to a non-empty file its header line gives the
 * columns; if cols are also given they must equal it. Errors: TFW_EIO (with strerror),
 * TFW_EVALUE (empty/duplicate names, header mismatch), TFW_EFORMAT (unreadable header),
 * TFW_ENOMEM. */
TFW_API tfw_csv_log *tfw_csv_log_open(const char *path, int n, const char *const *cols,
                                      unsigned flags);
/* Sets a column of the current row (numbers are written in the shortest form that reads
 * back to the same double; NaN as "nan", infinities as "inf"/"-inf"). Once the columns are
 * fixed an unknown name is TFW_EVALUE (the message lists the columns). */
TFW_API tfw_status tfw_csv_log_set(tfw_csv_log *log, const char *col, double value);
TFW_API tfw_status tfw_csv_log_set_str(tfw_csv_log *log, const char *col, const char *value);
/* Writes the current row (the header first if not yet written; unset columns are empty
 * fields; RFC 4180 quoting) and flushes it to the OS. TFW_EIO on write failure. */
TFW_API tfw_status tfw_csv_log_row_end(tfw_csv_log *log);
/* Closes the file; a row that was started but not ended is dropped. NULL is a no-op. */
TFW_API void tfw_csv_log_close(tfw_csv_log *log);

/* ---- TensorBoard event files ---------------------------------------------------------- */
typedef struct tfw_summary_writer tfw_summary_writer;

/* Creates run_dir (one level) if needed and a new event file in it,
 * events.out.tfevents.<10-digit unix time>.<hostname>.<pid>.<counter>, starting with the
 * file_version "brain.Event:2" record. Errors: TFW_EIO, TFW_EVALUE, TFW_ENOMEM. */
TFW_API tfw_summary_writer *tfw_summary_writer_open(const char *run_dir);
/* Appends one scalar (TensorBoard's Summary.Value.simple_value, a float) at step with
 * the current wall time. The file is flushed at most every 5 s and on flush/close. */
TFW_API tfw_status tfw_summary_writer_add_scalar(tfw_summary_writer *w, const char *tag,
                                                 double value, int64_t step);
TFW_API tfw_status tfw_summary_writer_flush(tfw_summary_writer *w);
/* The event file's path (borrowed, valid until close). */
TFW_API const char *tfw_summary_writer_path(const tfw_summary_writer *w);
TFW_API void tfw_summary_writer_close(tfw_summary_writer *w); /* NULL is a no-op */

/* ---- TFRecord reader ------------------------------------------------------------------- */
/* Records framed as uint64 length | masked CRC-32C of the length | data | masked CRC-32C
 * of the data (TensorFlow's record_writer.cc). Hostile input gives TFW_EFORMAT. */
typedef struct tfw_tfrecord_reader tfw_tfrecord_reader;
#define TFW_TFRECORD_MAX_RECORD ((uint64_t)1 << 30) /* longer records are TFW_EFORMAT */

TFW_API tfw_tfrecord_reader *tfw_tfrecord_reader_open(const char *path); /* NULL + TFW_EIO */
/* Reads the next record: *data (borrowed, valid until the next call or close) and *len.
 * At the clean end of the input returns TFW_OK with *data = NULL and *len = 0. A truncated
 * header or record, a bad CRC or a length above TFW_TFRECORD_MAX_RECORD is TFW_EFORMAT
 * (the message has the record index and byte offset); the error repeats on later calls. */
TFW_API tfw_status tfw_tfrecord_reader_next(tfw_tfrecord_reader *r, const uint8_t **data,
                                            size_t *len);
TFW_API void tfw_tfrecord_reader_close(tfw_tfrecord_reader *r); /* NULL is a no-op */

/* ---- run configuration and report ------------------------------------------------------ */
/* Writes run_dir/config.txt: one "key = value" line per pair, in order (atomically: temp
 * file + rename). Keys: non-empty, no '=', no newline, no leading/trailing space; values:
 * no newline. Errors: TFW_EVALUE, TFW_EIO. */
TFW_API tfw_status tfw_run_config_write(const char *run_dir, int n, const char *const *keys,
                                        const char *const *values);
/* Writes a self-contained HTML report (inline CSS and SVG, no scripts, no external
 * resources) of run_dir/log.csv and run_dir/config.txt (optional) to out_path (NULL:
 * run_dir/report.html): SVG line plots per step of loss, accuracy, learning rate,
 * throughput and any other numeric column, and the configuration. Errors: TFW_EIO
 * (missing/unreadable log.csv, unwritable output), TFW_EFORMAT (malformed CSV: message
 * has the line), TFW_EVALUE (no rows), TFW_ENOMEM. */
TFW_API tfw_status tfw_report_write(const char *run_dir, const char *out_path);

#ifdef __cplusplus
}
#endif
#endif
