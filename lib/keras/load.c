/* tfx_model_load_keras's file side: tell HDF5 from zip by the first bytes, find the config and
 * the Keras version, hand them to the builder with the matching weight reader. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "keras/keras_internal.h"

/* The major version of "2.6.0" / "3.3.3"; 2 when unknown. */
static int major_of(const char *v)
{
    if (!v || v[0] < '0' || v[0] > '9') return 2;
    long m = strtol(v, NULL, 10);
    return m >= 3 && m < 100 ? 3 : 2;
}

static int load_h5(tfx_model **out, const char *path, const tfx_keras_options *o)
{
    tfx__keras_h5 *h;
    int rc = tfx__keras_h5_open(&h, path, NULL, 0);
    if (rc) return rc;
    char *cfg = NULL, *ver = NULL;
    size_t len = 0, vlen = 0;
    if (!tfx__keras_h5_has_root_attr(h, "model_config")) {
        rc = tfx__error(TFX_EFORMAT, "the file has no 'model_config' attribute (a weights-only file: save the whole model with "
                                     "model.save)");
    } else {
        rc = tfx__keras_h5_root_string(h, "model_config", &cfg, &len);
    }
    if (!rc && tfx__keras_h5_has_root_attr(h, "keras_version") && tfx__keras_h5_root_string(h, "keras_version", &ver, &vlen))
        ver = NULL; /* unreadable version: Keras 2 semantics (the strictest) */
    if (!rc) {
        tfx__keras_weights w;
        tfx__keras_h5_weights(h, 0, &w);
        rc = tfx__keras_build(out, cfg, len, &w, major_of(ver), o);
    }
    tfx__free(cfg);
    tfx__free(ver);
    tfx__keras_h5_close(h);
    return rc;
}

static int load_zip(tfx_model **out, const char *path, const tfx_keras_options *o)
{
    tfx__keras_archive a;
    int rc = tfx__keras_archive_read(path, &a);
    if (rc) return rc;
    int major = 3;
    if (a.metadata) {
        json_t *meta = json_loadb(a.metadata, a.metadata_len, JSON_REJECT_DUPLICATES, NULL);
        json_t *v = json_is_object(meta) ? json_object_get(meta, "keras_version") : NULL;
        if (json_is_string(v)) major = major_of(json_string_value(v));
        json_decref(meta);
    }
    tfx__keras_h5 *h;
    rc = tfx__keras_h5_open(&h, NULL, a.weights, a.weights_len);
    if (!rc) {
        tfx__keras_weights w;
        tfx__keras_h5_weights(h, 1, &w);
        rc = tfx__keras_build(out, a.config, a.config_len, &w, major, o);
        tfx__keras_h5_close(h);
    }
    tfx__keras_archive_free(&a);
    return rc;
}

int tfx__keras_load_file(tfx_model **out, const char *path, const tfx_keras_options *o)
{
    unsigned char magic[8] = {0};
    char buf[128];
    /* Non-blocking open: a FIFO without a writer must not hang the caller; only regular files. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return tfx__error(TFX_EIO, "tfx_model_load_keras: cannot open %s: %s", path, tfx__strerror(errno, buf, sizeof buf));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tfx__error(TFX_EIO, "tfx_model_load_keras: '%s' is not a regular file", path);
    }
    ssize_t r = read(fd, magic, sizeof magic);
    close(fd);
    const size_t n = r > 0 ? (size_t)r : 0;
    static const unsigned char hdf5[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    int rc;
    if (n == 8 && !memcmp(magic, hdf5, 8)) rc = load_h5(out, path, o);
    else if (n >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) rc = load_zip(out, path, o);
    else
        return tfx__error(TFX_EFORMAT, "tfx_model_load_keras: %s is neither an HDF5 file (.h5) nor a zip archive (.keras)",
                          path);
    if (rc) tfx__error_prefix("tfx_model_load_keras '%s'", path);
    return rc;
}
