/* Error model: status strings and a fixed-size thread-local message, so reporting an
 * error (even out-of-memory) never allocates. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"

#define TFX__MSG_MAX 512

static _Thread_local char tls_message[TFX__MSG_MAX];
static _Thread_local tfx_error tls_error = {TFX_OK, NULL};

const char *tfx_status_str(int code)
{
    switch (code) {
    case TFX_OK: return "TFX_OK: success";
    case TFX_ERROR: return "TFX_ERROR: generic failure";
    case TFX_EINVAL: return "TFX_EINVAL: invalid argument";
    case TFX_ENOMEM: return "TFX_ENOMEM: out of memory";
    case TFX_ESHAPE: return "TFX_ESHAPE: shape mismatch";
    case TFX_ESTATE: return "TFX_ESTATE: invalid state for this call";
    case TFX_EIO: return "TFX_EIO: input/output error";
    case TFX_EFORMAT: return "TFX_EFORMAT: malformed or truncated data";
    case TFX_EVERSION: return "TFX_EVERSION: unsupported version";
    case TFX_EUSER: return "TFX_EUSER: stopped by a user callback";
    case TFX_ENOTSUP: return "TFX_ENOTSUP: not supported";
    default: return "unknown status code";
    }
}

const tfx_error *tfx_error_last(void)
{
    tls_error.message = tls_message;
    return &tls_error;
}

void tfx_error_clear(void)
{
    tls_error.code = TFX_OK;
    tls_message[0] = '\0';
}

/* Format into a local buffer first: an argument may be the current message itself
 * ("...: %s", tfx_error_last()->message), and vsnprintf's source and destination must not
 * overlap. fmt NULL: an empty message. */
static int set_message(int code, const char *fmt, va_list ap)
{
    char msg[TFX__MSG_MAX];
    msg[0] = '\0';
    if (fmt) vsnprintf(msg, sizeof msg, fmt, ap);
    tls_error.code = code;
    memcpy(tls_message, msg, sizeof msg);
    return code;
}

int tfx__error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_message(code, fmt, ap);
    va_end(ap);
    return code;
}

int tfx_error_set(int code, const char *fmt, ...)
{
    if (code >= 0)
        return tfx__error(TFX_EINVAL, "tfx_error_set: code %d is not an error code (it must be negative)", code);
    va_list ap;
    va_start(ap, fmt);
    set_message(code, fmt, ap);
    va_end(ap);
    return code;
}

int tfx__error_prefix(const char *fmt, ...)
{
    char prefix[TFX__MSG_MAX], old[TFX__MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tls_message, sizeof old);
    /* The callee may already have named the same public function ("tfx_x: ..."): drop that
     * copy so the message names it once ("tfx_x 'path': ..." keeps the richer prefix). */
    const char *rest = old;
    size_t id = 0;
    while (prefix[id] == '_' || (prefix[id] >= 'a' && prefix[id] <= 'z') || (prefix[id] >= 'A' && prefix[id] <= 'Z') ||
           (prefix[id] >= '0' && prefix[id] <= '9'))
        id++;
    if (id > 4 && strncmp(prefix, "tfx_", 4) == 0 && strncmp(old, prefix, id) == 0 && old[id] == ':') {
        rest = old + id + 1;
        while (*rest == ' ') rest++;
    }
    snprintf(tls_message, sizeof tls_message, "%.200s: %.300s", prefix, rest);
    return tls_error.code;
}

const char *tfx__strerror(int e, char *buf, size_t n)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(e, buf, n); /* GNU variant: returns the message (buf or a static string) */
#else
    if (strerror_r(e, buf, n) == 0) return buf; /* XSI variant: fills buf */
    if (n > 0) snprintf(buf, n, "error %d", e);
    return n > 0 ? buf : "unknown error";
#endif
}

unsigned tfx_version(void) { return TFX_VERSION_NUMBER; }
const char *tfx_version_string(void) { return TFX_VERSION_STRING; }

int tfx__callback_failed(const char *fn, const char *what, int r)
{
    const tfx_error *e = tfx_error_last();
    int code = r < 0 ? r : TFX_EUSER;
    if (e->code != TFX_OK && e->message[0]) return tfx__error(code, "%s: %s failed: %s", fn, what, e->message);
    return tfx__error(code, "%s: %s returned %d", fn, what, r);
}
