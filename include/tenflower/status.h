/* tenflower — status codes and error messages.
 *
 * Every fallible call returns a tfw_status (constructors return NULL instead) and sets a
 * thread-local message. The message text returned by tfw_last_error() stays valid until
 * the next tenflower call on the same thread that fails; copy it out with
 * tfw_last_error_copy() if you need it longer. */
#ifndef TENFLOWER_STATUS_H
#define TENFLOWER_STATUS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TFW_BUILDING)
#define TFW_API __attribute__((visibility("default")))
#else
#define TFW_API
#endif

/* X(name, value, description) — the single list that generates the enum, the names and
 * the descriptions. */
#define TFW_STATUS_MAP(X)                                                                  \
  X(OK, 0, "success")                                                                      \
  X(ESHAPE, 1, "shape mismatch or invalid shape")                                          \
  X(EDTYPE, 2, "unsupported or mismatched dtype")                                          \
  X(EDEVICE, 3, "tensors on different or unavailable devices")                             \
  X(EVALUE, 4, "invalid argument value")                                                   \
  X(EINDEX, 5, "index out of range")                                                       \
  X(ENOMEM, 6, "out of memory")                                                            \
  X(EIO, 7, "input/output error")                                                          \
  X(EFORMAT, 8, "corrupt or malformed file")                                               \
  X(EUNSUPPORTED, 9, "operation not supported")                                            \
  X(ESTATE, 10, "invalid state")                                                           \
  X(EINTERNAL, 11, "internal error")

typedef enum tfw_status {
#define TFW__STATUS_ENUM(name, value, desc) TFW_##name = value,
  TFW_STATUS_MAP(TFW__STATUS_ENUM)
#undef TFW__STATUS_ENUM
} tfw_status;

/* "TFW_ESHAPE" etc.; "TFW_UNKNOWN" for values outside the enum. */
TFW_API const char *tfw_status_name(tfw_status s);
/* A one-line description of the code. */
TFW_API const char *tfw_status_str(tfw_status s);

/* The message of the last failed call on this thread ("" if none). Valid until the next
 * failing call on this thread. */
TFW_API const char *tfw_last_error(void);
/* The code of the last failed call on this thread (TFW_OK if none). */
TFW_API tfw_status tfw_last_status(void);
/* Copies the last message into buf (always NUL-terminated when cap > 0); returns the full
 * length of the message, like snprintf. */
TFW_API size_t tfw_last_error_copy(char *buf, size_t cap);
/* Forgets the last error on this thread. */
TFW_API void tfw_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
