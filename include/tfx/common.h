/* libtfx common definitions: export macro, status codes, error reporting, version queries. */
#ifndef TFX_COMMON_H
#define TFX_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "version.h"

#if defined(_WIN32) && !defined(TFX_STATIC)
#  if defined(TFX_BUILDING)
#    define TFX_API __declspec(dllexport)
#  else
#    define TFX_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define TFX_API __attribute__((visibility("default")))
#else
#  define TFX_API
#endif

#ifdef __cplusplus
#  define TFX_BEGIN_DECLS extern "C" {
#  define TFX_END_DECLS }
#else
#  define TFX_BEGIN_DECLS
#  define TFX_END_DECLS
#endif

TFX_BEGIN_DECLS

/* Status codes. Values are fixed forever; new codes are only appended. */
typedef enum tfx_status {
    TFX_OK = 0,
    TFX_ERROR = -1,    /* generic failure */
    TFX_EINVAL = -2,   /* invalid argument */
    TFX_ENOMEM = -3,   /* allocation failed */
    TFX_ESHAPE = -4,   /* shapes do not fit together */
    TFX_ESTATE = -5,   /* call not valid in the object's current state */
    TFX_EIO = -6,      /* file or stream error */
    TFX_EFORMAT = -7,  /* malformed, truncated or hostile file */
    TFX_EVERSION = -8, /* unknown options-struct or file version */
    TFX_EUSER = -9,    /* a user callback asked to stop */
    TFX_ENOTSUP = -10  /* valid request that libtfx does not support */
} tfx_status;

/* Details of the last error on the calling thread. */
typedef struct tfx_error {
    int code;            /* a tfx_status value */
    const char *message; /* never NULL; "" when there is no error */
} tfx_error;

/* Static name of a status code ("TFX_EINVAL: invalid argument"). Never NULL. */
TFX_API const char *tfx_status_str(int code);

/* Last error set on this thread. Never NULL; valid until the next libtfx call on the thread.
 * libgit2's rule: it is meaningful only right after a call returned a negative code (or a
 * NULL / 0 a getter documents as a failure), and then holds that failure's code and whole
 * message. A successful call does not necessarily clear it: after a success it may still show
 * an earlier failure, so do not read it to find out whether a call failed (check the return
 * value). */
TFX_API const tfx_error *tfx_error_last(void);

/* Reset this thread's last error to TFX_OK / "" (for callers who want a clean slate, e.g.
 * before a getter whose failure value is also a valid result). */
TFX_API void tfx_error_clear(void);

/* Set this thread's last error: code (negative: a tfx_status or a code of your own) and a
 * printf-style message (NULL: ""). For callbacks and other user code called by libtfx: a hook
 * that returns non-zero after tfx_error_set(TFX_EIO, "cannot write %s", path) makes fit fail
 * with TFX_EUSER and a message that ends with this one. Returns code, so
 * `return tfx_error_set(...)` stops training. A code >= 0 is refused: TFX_EINVAL is set and
 * returned. */
#if defined(__GNUC__)
#  define TFX_PRINTF_LIKE(fmt_arg, first_arg) __attribute__((format(printf, fmt_arg, first_arg)))
#else
#  define TFX_PRINTF_LIKE(fmt_arg, first_arg)
#endif
TFX_API int tfx_error_set(int code, const char *fmt, ...) TFX_PRINTF_LIKE(2, 3);

/* Runtime version: TFX_VERSION_NUMBER of the linked library, and its string. */
TFX_API unsigned tfx_version(void);
TFX_API const char *tfx_version_string(void);

TFX_END_DECLS

#endif
