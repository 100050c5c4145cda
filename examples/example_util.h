/* Small helpers shared by the example programs. Define EXAMPLE_NAME (a string: the program's
 * name, which starts its error messages) before including this header. */
#ifndef TFW_EXAMPLE_UTIL_H
#define TFW_EXAMPLE_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "tenflower/tenflower.h"

#ifndef EXAMPLE_NAME
#error "define EXAMPLE_NAME before including example_util.h"
/* Writes $XDG_CACHE_HOME/tenflower/<rel> (else ~/.cache/tenflower/<rel>) into buf: where the
 * fetch scripts put the data sets. Returns buf. */
static inline char *example_cache_path(char *buf, size_t cap, const char *rel) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(buf, cap, "%s/tenflower/%s", xdg, rel);
  else snprintf(buf, cap, "%s/.cache/tenflower/%s", home ? home : ".", rel);
  return buf;
}

#endif

/* Exits with the library's error message when x is false (a NULL tensor, a nonzero status
 * compared by the caller, ...). */
#define CHECK(x)                                                                   \
  do {                                                                             \
    if (!(x)) {                                                                    \
      fprintf(stderr, EXAMPLE_NAME ": %s\n  failed: %s (%s)\n", #x, tfw_last_error(), \
              tfw_status_name(tfw_last_status()));                                 \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

/* Seconds on the monotonic clock. */
static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Writes $XDG_CACHE_HOME/tenflower/<rel> (else ~/.cache/tenflower/<rel>) into buf: where the
 * fetch scripts put the data sets. Returns buf. */
static inline char *example_cache_path(char *buf, size_t cap, const char *rel) {
  const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
  if (xdg && *xdg) snprintf(buf, cap, "%s/tenflower/%s", xdg, rel);
  else snprintf(buf, cap, "%s/.cache/tenflower/%s", home ? home : ".", rel);
  return buf;
}

#endif
