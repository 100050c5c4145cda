/* tfw-report: writes the HTML run report of a run directory (docs/logging.md).
 *   tfw-report RUN_DIR [-o OUT.html]      default OUT: RUN_DIR/report.html
 * Exit status: 0 on success, 1 on error (message on stderr), 2 on bad usage. */
#include <stdio.h>
#include <string.h>

#include "tenflower/tenflower.h"

static int usage(FILE *f) {
  fprintf(f, "usage: tfw-report RUN_DIR [-o OUT.html]\n"
             "Writes an HTML report (plots of RUN_DIR/log.csv, the settings in\n"
             "RUN_DIR/config.txt) to OUT.html, by default RUN_DIR/report.html.\n");
  return f == stdout ? 0 : 2;
}

int main(int argc, char **argv) {
  const char *run_dir = NULL, *out = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return usage(stdout);
    if (!strcmp(argv[i], "-o")) {
      if (++i >= argc) return usage(stderr);
      out = argv[i];
    } else if (argv[i][0] == '-' && argv[i][1]) {
      fprintf(stderr, "tfw-report: unknown option '%s'\n", argv[i]);
      return usage(stderr);
    } else if (!run_dir) {
      run_dir = argv[i];
    } else {
      return usage(stderr);
    }
  }
  if (!run_dir) return usage(stderr);
  if (tfw_report_write(run_dir, out) != TFW_OK) {
    fprintf(stderr, "tfw-report: %s: %s\n", tfw_status_name(tfw_last_status()), tfw_last_error());
    return 1;
  }
  if (out) printf("%s\n", out);
  else printf("%s/report.html\n", run_dir);
  return 0;
}
