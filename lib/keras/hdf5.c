/* HDF5 side of the Keras importer: root string attributes (model_config, keras_version) and the
 * weight arrays, through libhdf5. libhdf5 is not hardened against hostile files, so HDF5 input
 * is trusted input (docs/security.md); what this file checks is what the JSON side relies on:
 * every array's type, rank and shape against what the config says. libhdf5 prints its error
 * stack by default: it is silenced while a file is open and the caller's handler restored. */
#include <hdf5.h>
#include <stdio.h>
#include <string.h>

#include "core/internal.h"
#include "keras/keras_internal.h"

struct tfx__keras_h5 {
    hid_t file;
    H5E_auto2_t old_fn;
    void *old_data;
    int keras3;
};

int tfx__keras_h5_open(tfx__keras_h5 **out, const char *path, const void *image, size_t size)
{
    *out = NULL;
    tfx__keras_h5 *h = tfx__calloc(1, sizeof *h);
    if (!h) return tfx__error(TFX_ENOMEM, "out of memory");
    H5Eget_auto2(H5E_DEFAULT, &h->old_fn, &h->old_data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    int ok = fapl >= 0;
    /* Read-only use: no lock (a lock fails on read-only or network file systems). */
    if (ok) ok = H5Pset_file_locking(fapl, 0, 1) >= 0;
    if (ok && image) {
        ok = H5Pset_fapl_core(fapl, 1 << 16, 0) >= 0 && H5Pset_file_image(fapl, (void *)image, size) >= 0;
    }
    h->file = ok ? H5Fopen(image ? "model.weights.h5" : path, H5F_ACC_RDONLY, fapl) : -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (h->file < 0) {
        tfx__keras_h5_close(h);
        return tfx__error(TFX_EFORMAT, "%s is not a readable HDF5 file", image ? "the archive's model.weights.h5" : "the file");
    }
    *out = h;
    return TFX_OK;
}

void tfx__keras_h5_close(tfx__keras_h5 *h)
{
    if (!h) return;
    if (h->file >= 0) H5Fclose(h->file);
    H5Eset_auto2(H5E_DEFAULT, h->old_fn, h->old_data);
    tfx__free(h);
}

int tfx__keras_h5_has_root_attr(tfx__keras_h5 *h, const char *name) { return H5Aexists(h->file, name) > 0; }

/* The strings of an attribute (a scalar or a 1-D array of variable or fixed-length strings):
 * *out is one tfx__malloc'd block of n pointers followed by the text. A numeric attribute
 * with no elements (h5py's empty weight_names) is n = 0. */
static int attr_strings(hid_t obj, const char *name, const char *where, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = TFX_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return tfx__error(TFX_EFORMAT, "%s has no attribute '%s'", where, name);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a), mt = -1;
    hssize_t np = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    int rank = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
    if (t < 0 || np < 0 || rank < 0 || rank > 1) {
        rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' is not a list of strings", where, name);
        goto done;
    }
    if (H5Tget_class(t) != H5T_STRING) {
        if (np != 0) rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' is not a string", where, name);
        goto done;
    }
    if (np == 0) goto done;
    if ((size_t)np > (size_t)TFX__KERAS_MAX_LAYERS * 64) {
        rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' has %lld strings", where, name, (long long)np);
        goto done;
    }
    const size_t cnt = (size_t)np;
    htri_t vlen = H5Tis_variable_str(t);
    mt = H5Tcopy(H5T_C_S1);
    if (mt < 0 || vlen < 0 || H5Tset_cset(mt, H5Tget_cset(t)) < 0) {
        rc = tfx__error(TFX_EFORMAT, "%s attribute '%s': unreadable string type", where, name);
        goto done;
    }
    if (vlen) {
        char **v = tfx__calloc(cnt, sizeof *v);
        if (!v || H5Tset_size(mt, H5T_VARIABLE) < 0 || H5Aread(a, mt, v) < 0) {
            rc = v ? tfx__error(TFX_EFORMAT, "%s attribute '%s' cannot be read", where, name)
                   : tfx__error(TFX_ENOMEM, "out of memory");
            tfx__free(v);
            goto done;
        }
        size_t total = 0;
        for (size_t i = 0; i < cnt; i++) {
            size_t l = v[i] ? strlen(v[i]) : 0;
            if (l > TFX__KERAS_MAX_CONFIG_BYTES || total > TFX__KERAS_MAX_CONFIG_BYTES) {
                rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' is longer than %zu bytes", where, name,
                                TFX__KERAS_MAX_CONFIG_BYTES);
                break;
            }
            total += l + 1;
        }
        char **res = rc ? NULL : tfx__malloc(cnt * sizeof(char *) + total);
        if (!rc && !res) rc = tfx__error(TFX_ENOMEM, "out of memory");
        if (res) {
            char *p = (char *)(res + cnt);
            for (size_t i = 0; i < cnt; i++) {
                size_t l = v[i] ? strlen(v[i]) : 0;
                res[i] = p;
                memcpy(p, v[i] ? v[i] : "", l + 1);
                p += l + 1;
            }
            *out = res;
            *n = cnt;
        }
        H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
        tfx__free(v);
    } else {
        size_t sz = H5Tget_size(t);
        if (sz == 0 || sz > TFX__KERAS_MAX_CONFIG_BYTES / cnt || H5Tset_size(mt, sz) < 0 ||
            H5Tset_strpad(mt, H5Tget_strpad(t)) < 0) {
            rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' has strings of %zu bytes", where, name, sz);
            goto done;
        }
        char *raw = tfx__malloc(cnt * sz);
        char **res = tfx__malloc(cnt * sizeof(char *) + cnt * (sz + 1));
        if (!raw || !res) {
            rc = tfx__error(TFX_ENOMEM, "out of memory");
        } else if (H5Aread(a, mt, raw) < 0) {
            rc = tfx__error(TFX_EFORMAT, "%s attribute '%s' cannot be read", where, name);
        } else {
            char *p = (char *)(res + cnt);
            for (size_t i = 0; i < cnt; i++) {
                memcpy(p, raw + i * sz, sz);
                p[sz] = '\0';
                res[i] = p;
                p += sz + 1;
            }
            *out = res;
            *n = cnt;
            res = NULL;
        }
        tfx__free(raw);
        tfx__free(res);
    }
done:
    if (mt >= 0) H5Tclose(mt);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    H5Aclose(a);
    return rc;
}

int tfx__keras_h5_root_string(tfx__keras_h5 *h, const char *name, char **out, size_t *len)
{
    *out = NULL;
    char **v;
    size_t n;
    int rc = attr_strings(h->file, name, "the file", &v, &n);
    if (rc) return rc;
    if (n != 1) {
        tfx__free(v);
        return tfx__error(TFX_EFORMAT, "the file's attribute '%s' is not one string", name);
    }
    size_t l = strlen(v[0]);
    char *s = tfx__malloc(l + 1);
    if (!s) {
        tfx__free(v);
        return tfx__error(TFX_ENOMEM, "out of memory");
    }
    memcpy(s, v[0], l + 1);
    tfx__free(v);
    *out = s;
    *len = l;
    return TFX_OK;
}

/* The group holding a layer's arrays; -1 when the file has none (no error set). Keras 3 files
 * it by its class key (keras_internal.h), Keras 2.13's .keras under another container name. */
static hid_t layer_group(tfx__keras_h5 *h, const char *layer)
{
    static const char *const k2[] = {"model_weights/%s", NULL};
    static const char *const k3[] = {"layers/%s/vars", "_layer_checkpoint_dependencies/%s/vars", NULL};
    for (const char *const *f = h->keras3 ? k3 : k2; *f; f++) {
        char path[2 * TFX__KERAS_MAX_NAME + 64];
        snprintf(path, sizeof path, *f, layer);
        /* H5Lexists fails on a missing middle component: check each level. */
        int exists = 1;
        for (char *p = path;; p++) {
            if (*p == '/' || *p == '\0') {
                char c = *p;
                *p = '\0';
                exists = H5Lexists(h->file, path, H5P_DEFAULT) > 0;
                *p = c;
                if (!exists || c == '\0') break;
            }
        }
        if (exists) {
            hid_t g = H5Gopen2(h->file, path, H5P_DEFAULT);
            if (g >= 0) return g;
        }
    }
    return -1;
}

static int k2_count(void *ctx, const char *layer, size_t *n)
{
    tfx__keras_h5 *h = ctx;
    *n = 0;
    hid_t g = layer_group(h, layer);
    if (g < 0) return TFX_OK;
    int rc = TFX_OK;
    if (H5Aexists(g, "weight_names") > 0) {
        char **names;
        char where[TFX__KERAS_MAX_NAME + 32];
        snprintf(where, sizeof where, "layer '%s'", layer);
        rc = attr_strings(g, "weight_names", where, &names, n);
        tfx__free(names);
    }
    H5Gclose(g);
    return rc;
}

static int k3_count(void *ctx, const char *layer, size_t *n)
{
    tfx__keras_h5 *h = ctx;
    *n = 0;
    hid_t g = layer_group(h, layer);
    if (g < 0) return TFX_OK;
    H5G_info_t info;
    int rc = H5Gget_info(g, &info) < 0 ? tfx__error(TFX_EFORMAT, "unreadable weights group")
                                       : TFX_OK;
    if (!rc) *n = (size_t)info.nlinks;
    H5Gclose(g);
    return rc;
}

static void shape_text(char *buf, size_t cap, const size_t *d, int rank)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "(");
    for (int i = 0; i < rank && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, i ? ", %zu" : "%zu", d[i]);
    if (o < cap) snprintf(buf + o, cap - o, rank == 1 ? ",)" : ")");
}

/* Array i of the layer's group g: named by weight_names (Keras 2) or "i" (Keras 3). */
static int read_array(tfx__keras_h5 *h, const char *layer, size_t i, const char *what, const size_t *dims, int rank,
                      float *dst)
{
    hid_t g = layer_group(h, layer);
    if (g < 0) return tfx__error(TFX_EFORMAT, "weight %zu (%s) is missing (no weights group)", i, what);
    char num[32], **names = NULL;
    const char *dname = num;
    int rc = TFX_OK;
    if (h->keras3) {
        snprintf(num, sizeof num, "%zu", i);
    } else {
        size_t n = 0;
        char where[TFX__KERAS_MAX_NAME + 32];
        snprintf(where, sizeof where, "layer '%s'", layer);
        rc = attr_strings(g, "weight_names", where, &names, &n);
        if (!rc && i >= n) rc = tfx__error(TFX_EFORMAT, "weight %zu (%s) is missing", i, what);
        if (!rc) dname = names[i];
    }
    hid_t d = -1, t = -1, s = -1;
    if (!rc) {
        d = H5Lexists(g, dname, H5P_DEFAULT) > 0 ? H5Dopen2(g, dname, H5P_DEFAULT) : -1;
        if (d < 0) rc = tfx__error(TFX_EFORMAT, "weight %zu (%s, '%s') is missing", i, what, dname);
    }
    if (!rc) {
        t = H5Dget_type(d);
        if (t < 0 || H5Tget_class(t) != H5T_FLOAT || H5Tget_size(t) != 4)
            rc = tfx__error(TFX_ENOTSUP, "weight %zu (%s) is not float32", i, what);
    }
    if (!rc) {
        s = H5Dget_space(d);
        int r = s >= 0 ? H5Sget_simple_extent_ndims(s) : -1;
        hsize_t hd[TFX__KERAS_MAX_RANK];
        size_t got[TFX__KERAS_MAX_RANK];
        int same = r == rank && r >= 0 && r <= TFX__KERAS_MAX_RANK && H5Sget_simple_extent_dims(s, hd, NULL) == r;
        for (int k = 0; same && k < r; k++) same = hd[k] == (hsize_t)dims[k];
        if (!same) {
            char want[128], have[128] = "(unreadable)";
            if (r >= 0 && r <= TFX__KERAS_MAX_RANK && H5Sget_simple_extent_dims(s, hd, NULL) == r) {
                for (int k = 0; k < r; k++) got[k] = (size_t)hd[k];
                shape_text(have, sizeof have, got, r);
            }
            shape_text(want, sizeof want, dims, rank);
            rc = tfx__error(TFX_ESHAPE, "weight %zu (%s) has shape %s, the config needs %s", i,
                            what, have, want);
        }
    }
    if (!rc && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
        rc = tfx__error(TFX_EFORMAT, "weight %zu (%s) cannot be read", i, what);
    if (s >= 0) H5Sclose(s);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    H5Gclose(g);
    tfx__free(names);
    return rc;
}

static int h5_read(void *ctx, const char *layer, size_t i, const char *what, const size_t *dims, int rank, float *dst)
{
    return read_array(ctx, layer, i, what, dims, rank, dst);
}

void tfx__keras_h5_weights(tfx__keras_h5 *h, int keras3, tfx__keras_weights *w)
{
    h->keras3 = keras3;
    w->ctx = h;
    w->count = keras3 ? k3_count : k2_count;
    w->read = h5_read;
    w->by_class_key = keras3;
}
