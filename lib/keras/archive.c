/* .keras archives through libzip: every entry name is checked (no absolute path, no ".."
 * component, no backslash), the members libtfx reads are read whole under caps, and a member
 * whose data does not match its stated size or CRC is refused (libzip checks the CRC at the end
 * of the data, so each member is read to its end). */
#include <string.h>
#include <zip.h>

#include "core/internal.h"
#include "keras/keras_internal.h"

#define MAX_ENTRIES 100000
#define MAX_WEIGHTS_BYTES ((zip_uint64_t)4 << 30)

static int name_safe(const char *n)
{
    if (n[0] == '\0' || n[0] == '/' || n[0] == '\\' || strchr(n, '\\') || (n[0] && n[1] == ':')) return 0;
    for (const char *p = n; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.') return 0;
        if (!e) break;
        p = e + 1;
    }
    return 1;
}

/* Read entry idx (stated size st) whole into a new buffer with a trailing NUL. */
static int read_member(zip_t *z, zip_uint64_t idx, const char *name, zip_uint64_t cap, unsigned char **out, size_t *len)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z, idx, 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE))
        return tfx__error(TFX_EFORMAT, "archive member '%s' has no size", name);
    if (st.size > cap)
        return tfx__error(TFX_EFORMAT, "archive member '%s' states %llu bytes, more than the %llu allowed", name,
                          (unsigned long long)st.size, (unsigned long long)cap);
    const size_t n = (size_t)st.size;
    unsigned char *buf = tfx__malloc(n + 1);
    if (!buf) return tfx__error(TFX_ENOMEM, "out of memory for archive member '%s' (%zu bytes)", name, n);
    zip_file_t *f = zip_fopen_index(z, idx, 0);
    if (!f) {
        tfx__free(buf);
        return tfx__error(TFX_EFORMAT, "archive member '%s' cannot be opened: %s", name, zip_strerror(z));
    }
    int rc = TFX_OK;
    size_t got = 0;
    while (got < n) {
        zip_int64_t r = zip_fread(f, buf + got, n - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    unsigned char extra;
    zip_int64_t more = got == n ? zip_fread(f, &extra, 1) : -1;
    if (got != n || more != 0) {
        zip_error_t *ze = zip_file_get_error(f);
        if (zip_error_code_zip(ze))
            rc = tfx__error(TFX_EFORMAT, "archive member '%s' is damaged: %s", name, zip_error_strerror(ze));
        else
            rc = tfx__error(TFX_EFORMAT, "archive member '%s' does not hold the %zu bytes it states (%s)", name, n,
                            got != n ? "its data ends early" : "its data goes on");
    }
    zip_fclose(f);
    if (rc) {
        tfx__free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return TFX_OK;
}

int tfx__keras_archive_read(const char *path, tfx__keras_archive *a)
{
    memset(a, 0, sizeof *a);
    int zerr = 0;
    zip_t *z = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!z) {
        zip_error_t e;
        zip_error_init_with_code(&e, zerr);
        int rc = tfx__error(TFX_EFORMAT, "not a readable zip archive: %s", zip_error_strerror(&e));
        zip_error_fini(&e);
        return rc;
    }
    int rc = TFX_OK;
    zip_int64_t n = zip_get_num_entries(z, 0);
    if (n < 0 || n > MAX_ENTRIES) rc = tfx__error(TFX_EFORMAT, "%lld archive entries", (long long)n);
    zip_int64_t icfg = -1, imeta = -1, iw = -1;
    for (zip_int64_t i = 0; !rc && i < n; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, ZIP_FL_ENC_RAW);
        if (!name) {
            rc = tfx__error(TFX_EFORMAT, "archive entry %lld has no name", (long long)i);
            break;
        }
        if (!name_safe(name)) {
            rc = tfx__error(TFX_EFORMAT, "archive entry '%s' points outside the archive", name);
            break;
        }
        zip_int64_t *slot = !strcmp(name, "config.json")        ? &icfg
                            : !strcmp(name, "metadata.json")    ? &imeta
                            : !strcmp(name, "model.weights.h5") ? &iw
                                                                 : NULL;
        if (slot && *slot >= 0) rc = tfx__error(TFX_EFORMAT, "archive holds '%s' twice", name);
        else if (slot) *slot = i;
    }
    if (!rc && icfg < 0) rc = tfx__error(TFX_EFORMAT, "archive has no config.json");
    if (!rc && iw < 0) rc = tfx__error(TFX_EFORMAT, "archive has no model.weights.h5");
    unsigned char *buf = NULL;
    if (!rc && !(rc = read_member(z, (zip_uint64_t)icfg, "config.json", TFX__KERAS_MAX_CONFIG_BYTES, &buf, &a->config_len)))
        a->config = (char *)buf;
    if (!rc && imeta >= 0 && !(rc = read_member(z, (zip_uint64_t)imeta, "metadata.json", 1 << 20, &buf, &a->metadata_len)))
        a->metadata = (char *)buf;
    if (!rc) rc = read_member(z, (zip_uint64_t)iw, "model.weights.h5", MAX_WEIGHTS_BYTES, &a->weights, &a->weights_len);
    zip_discard(z);
    if (rc) tfx__keras_archive_free(a);
    return rc;
}

void tfx__keras_archive_free(tfx__keras_archive *a)
{
    tfx__free(a->config);
    tfx__free(a->metadata);
    tfx__free(a->weights);
    memset(a, 0, sizeof *a);
}
