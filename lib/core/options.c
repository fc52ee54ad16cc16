/* The one copy of a caller's options struct (core/options.h). */
#include <string.h>

#include "core/internal.h"
#include "core/options.h"

size_t tfx__options_size(const tfx__options_desc *d, unsigned version)
{
    if (version == 0 || version > d->version) return 0;
    return version == d->version ? d->size : d->older[version - 1];
}

int tfx__options_copy(const tfx__options_desc *d, void *dst, const void *src, const char *fn)
{
    memcpy(dst, d->defaults, d->size);
    if (src == NULL) return TFX_OK;
    unsigned version;
    memcpy(&version, src, sizeof version); /* every options struct starts with `unsigned version` */
    size_t n = tfx__options_size(d, version);
    if (n == 0)
        return tfx__error(TFX_EVERSION, "%s: options version %u is not supported (this library knows up to %u)", fn,
                          version, d->version);
    memcpy(dst, src, n); /* only the prefix the caller's version has */
    return TFX_OK;
}

int tfx__options_init(const tfx__options_desc *d, void *opts, unsigned version, const char *fn)
{
    if (opts == NULL) return tfx__error(TFX_EINVAL, "%s: argument 'opts' is NULL", fn);
    size_t n = tfx__options_size(d, version);
    if (n == 0)
        return tfx__error(TFX_EVERSION, "%s: version %u is not supported (this library knows up to %u)", fn, version,
                          d->version);
    memcpy(opts, d->defaults, n); /* an older caller's struct is shorter */
    memcpy(opts, &version, sizeof version);
    return TFX_OK;
}
