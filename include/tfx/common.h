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

/* ---- batch providers (data larger than memory) ---- */

/* A source of batches that fit, evaluate and predict pull from (tfx_model_fit_provider & co in
 * train.h; the streaming IDX reader in data.h makes one). Every call is on the caller's thread.
 *
 * next: fill up to max samples into x (max * H * W * C floats, NHWC) and, when y is not NULL,
 *   their targets into y, typed as in tfx_model_fit (int32 labels for sparse categorical
 *   cross-entropy, else float targets); set *got to the samples written (1..max), or to 0 at the
 *   end of the pass. y is NULL when only inputs are needed (predict). Return 0, or non-zero to
 *   fail: the call then fails with that code when it is negative (else TFX_EUSER) and with the
 *   message the provider left through tfx_error_set (else "provider returned N").
 * reset: rewind to the start of a pass; called before every pass (each epoch of fit, once for
 *   evaluate and predict); epoch is the 0-based epoch (0 outside fit). Same return convention.
 *   A provider may reorder its samples at each reset (a shuffle buffer).
 * length: samples per pass when known (the progress bar shows n/steps, and fit checks that each
 *   pass delivers exactly that many), 0 when unknown (Keras's "32/Unknown" bar).
 * height, width, channels: the shape of one sample; must equal the model's input shape
 *   (TFX_ESHAPE otherwise). */
#define TFX_BATCH_PROVIDER_VERSION 1
typedef struct tfx_batch_provider {
    unsigned version;
    void *payload; /* passed to next and reset */
    int (*next)(void *payload, float *x, void *y, size_t max, size_t *got);
    int (*reset)(void *payload, int epoch);
    size_t length; /* samples per pass, 0: unknown */
    int height, width, channels;
} tfx_batch_provider;
#define TFX_BATCH_PROVIDER_INIT { TFX_BATCH_PROVIDER_VERSION, NULL, NULL, NULL, 0, 0, 0, 0 }

/* Runtime version: TFX_VERSION_NUMBER of the linked library, and its string. */
TFX_API unsigned tfx_version(void);
TFX_API const char *tfx_version_string(void);

TFX_END_DECLS

#endif
