/* The history of a fit: one entry per completed epoch (Keras's History callback). */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

enum { H_EPOCH, H_LOSS, H_ACC, H_VAL_LOSS, H_VAL_ACC, H_KEYS };
static const char *const key_names[H_KEYS] = {"epoch", "loss", "accuracy", "val_loss", "val_accuracy"};

struct tfx_history {
    size_t len, cap;
    double *v[H_KEYS];
    int has[H_KEYS];
};

int tfx_history_new(tfx_history **out)
{
    TFX__CHECK_NULL(out);
    *out = tfx__calloc(1, sizeof **out);
    if (!*out) return tfx__error(TFX_ENOMEM, "tfx_history_new: out of memory");
    return TFX_OK;
}

void tfx_history_free(tfx_history *h)
{
    if (!h) return;
    for (int k = 0; k < H_KEYS; k++) tfx__free(h->v[k]);
    tfx__free(h);
}

size_t tfx_history_length(const tfx_history *h) { return h ? h->len : 0; }

const double *tfx_history_values(const tfx_history *h, const char *key)
{
    if (!h || !key) {
        tfx__error(TFX_EINVAL, "tfx_history_values: argument '%s' is NULL", h ? "key" : "h");
        return NULL;
    }
    for (int k = 0; k < H_KEYS; k++) {
        if (strcmp(key, key_names[k]) != 0) continue;
        if (!h->has[k]) {
            tfx__error(TFX_EINVAL, "tfx_history_values: '%s' was not recorded by the last fit", key);
            return NULL;
        }
        if (!h->v[k]) { /* no epoch yet: an empty array, not an error */
            static const double empty[1] = {0.0};
            return empty;
        }
        return h->v[k];
    }
    tfx__error(TFX_EINVAL,
               "tfx_history_values: unknown key '%s' (known: epoch, loss, accuracy, val_loss, val_accuracy)", key);
    return NULL;
}

/* Reserve room for every epoch up front, so a fit never fails to record one. */
int tfx__history_reset(tfx_history *h, size_t epochs, int has_acc, int has_val)
{
    h->len = 0;
    for (int k = 0; k < H_KEYS; k++) h->has[k] = 0;
    if (epochs > h->cap) {
        size_t bytes;
        if (tfx__mul_size(epochs, sizeof(double), &bytes))
            return tfx__error(TFX_EINVAL, "history of %zu epochs is too large", epochs);
        for (int k = 0; k < H_KEYS; k++) {
            double *p = tfx__realloc(h->v[k], bytes);
            if (!p) return tfx__error(TFX_ENOMEM, "out of memory for a history of %zu epochs", epochs);
            h->v[k] = p;
        }
        h->cap = epochs;
    }
    h->has[H_EPOCH] = h->has[H_LOSS] = 1;
    h->has[H_ACC] = has_acc;
    h->has[H_VAL_LOSS] = has_val;
    h->has[H_VAL_ACC] = has_val && has_acc;
    return TFX_OK;
}

void tfx__history_append(tfx_history *h, int epoch, double loss, double acc, double val_loss, double val_acc)
{
    if (h->len >= h->cap) return;
    size_t i = h->len++;
    h->v[H_EPOCH][i] = epoch;
    h->v[H_LOSS][i] = loss;
    h->v[H_ACC][i] = acc;
    h->v[H_VAL_LOSS][i] = val_loss;
    h->v[H_VAL_ACC][i] = val_acc;
}
