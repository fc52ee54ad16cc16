/* Keras's ModelCheckpoint (tf-keras 2.16 _save_model): save the model at each epoch end, or only
 * when the monitored value improves, to a path formatted from the epoch and the logs. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/file.h"
#include "core/options.h"
#include "tfx/saving.h"
#include "train/callback_internal.h"

#define PATH_MAX_LEN 4096

struct tfx_model_checkpoint_callback {
    tfx_callback hooks;
    tfx_model_checkpoint_options opt;
    char *filepath;
    int key; /* monitored log key */
    int maximize;
    unsigned keys_used; /* log keys the template reads */
    double best;
    char last[PATH_MAX_LEN];
};

static const char fn_name[] = "tfx_model_checkpoint_callback";

TFX__OPTIONS_DESC_V1(checkpoint_options, tfx_model_checkpoint_options, TFX_MODEL_CHECKPOINT_OPTIONS_VERSION,
                     TFX_MODEL_CHECKPOINT_OPTIONS_INIT);

int tfx_model_checkpoint_options_init(tfx_model_checkpoint_options *opts, unsigned version)
{
    return tfx__options_init(&checkpoint_options, opts, version, "tfx_model_checkpoint_options_init");
}

static int on_train_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_model_checkpoint_callback *cb = payload;
    if (cb->opt.save_best_only) {
        int rc = tfx__check_available(fn_name, m, logs, cb->key, "monitor");
        if (rc) return rc;
    }
    for (int k = 0; k < TFX__KEY_COUNT; k++)
        if (cb->keys_used & (1u << k)) {
            int rc = tfx__check_available(fn_name, m, logs, k, "file name field");
            if (rc) return rc;
        }
    return 0;
}

/* The directory part of path (without the file name), or "" when there is none. */
static void dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        dir[0] = '\0';
        return;
    }
    size_t n = (size_t)(slash - path);
    if (n == 0) n = 1; /* "/file" */
    if (n >= cap) n = cap - 1;
    memcpy(dir, path, n);
    dir[n] = '\0';
}

static int save(tfx_model *m, tfx_model_checkpoint_callback *cb, const char *path)
{
    char dir[PATH_MAX_LEN];
    dir_of(path, dir, sizeof dir);
    if (dir[0]) {
        int rc = tfx__file_mkdirs(fn_name, dir);
        if (rc) return rc;
    }
    /* Keras's model.save keeps the optimizer, so a checkpoint resumes training; weights only do not */
    tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
    so.include_optimizer = !cb->opt.save_weights_only;
    int rc = tfx_model_save(m, path, &so);
    if (rc) return tfx__error_prefix("%s: saving to '%.300s'", fn_name, path);
    snprintf(cb->last, sizeof cb->last, "%s", path);
    return TFX_OK;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_model_checkpoint_callback *cb = payload;
    char path[PATH_MAX_LEN];
    int rc = tfx__format_path(fn_name, cb->filepath, logs->epoch, logs, path, sizeof path, NULL);
    if (rc) return rc;
    if (!cb->opt.save_best_only) {
        if (cb->opt.verbose > 0) {
            rc = tfx__callback_print(m, "\nEpoch %d: saving model to %s", logs->epoch + 1, path);
            if (rc) return rc;
        }
        return save(m, cb, path);
    }
    /* on_train_begin made sure the key exists in this fit: a NaN is a value that never improves */
    double current = tfx__log_value(logs, cb->key);
    int better = cb->maximize ? current > cb->best : current < cb->best;
    if (better) {
        if (cb->opt.verbose > 0) {
            rc = tfx__callback_print(m, "\nEpoch %d: %s improved from %.5f to %.5f, saving model to %s",
                                     logs->epoch + 1, tfx__key_names[cb->key], cb->best, current, path);
            if (rc) return rc;
        }
        cb->best = current;
        return save(m, cb, path);
    }
    if (cb->opt.verbose > 0)
        return tfx__callback_print(m, "\nEpoch %d: %s did not improve from %.5f", logs->epoch + 1,
                                   tfx__key_names[cb->key], cb->best);
    return 0;
}

int tfx_model_checkpoint_callback_new(tfx_model_checkpoint_callback **out, const char *filepath,
                                      const tfx_model_checkpoint_options *opts)
{
    static const char fn[] = "tfx_model_checkpoint_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(filepath);
    TFX__CHECK_ARG(filepath[0] != '\0', "%s: filepath is empty", fn);
    TFX__CHECK_ARG(strlen(filepath) < PATH_MAX_LEN, "%s: filepath is longer than %d bytes", fn, PATH_MAX_LEN - 1);
    tfx_model_checkpoint_options o;
    int rc = tfx__options_copy(&checkpoint_options, &o, opts, fn);
    if (rc) return rc;
    int key;
    rc = tfx__check_monitor(fn, o.monitor ? o.monitor : "val_loss", o.mode, &key);
    if (rc) return rc;
    TFX__CHECK_ARG(o.verbose == 0 || o.verbose == 1, "%s: verbose %d must be 0 or 1", fn, o.verbose);
    TFX__CHECK_ARG(!o.has_initial_value_threshold || !isnan(o.initial_value_threshold),
                   "%s: initial_value_threshold is NaN", fn);
    unsigned used;
    rc = tfx__format_path(fn, filepath, 0, NULL, NULL, 0, &used);
    if (rc) return rc;
    /* A directory without fields is made now, so an unusable one is reported before training. */
    char dir[PATH_MAX_LEN];
    dir_of(filepath, dir, sizeof dir);
    if (dir[0] && !strchr(dir, '{') && !strchr(dir, '}')) {
        rc = tfx__file_mkdirs(fn, dir);
        if (rc) return rc;
    }
    tfx_model_checkpoint_callback *cb = tfx__calloc(1, sizeof *cb);
    size_t n = strlen(filepath) + 1;
    char *copy = tfx__malloc(n);
    if (!cb || !copy) {
        tfx__free(cb);
        tfx__free(copy);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(copy, filepath, n);
    cb->filepath = copy;
    cb->opt = o;
    cb->opt.monitor = NULL; /* the caller's string is not kept */
    cb->key = key;
    cb->keys_used = used;
    /* Keras's auto mode for ModelCheckpoint: max when the name contains "acc" */
    cb->maximize = o.mode == TFX_MODE_MAX || (o.mode == TFX_MODE_AUTO && strstr(tfx__key_names[key], "acc"));
    cb->best = o.has_initial_value_threshold ? o.initial_value_threshold : (cb->maximize ? -INFINITY : INFINITY);
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_train_begin = on_train_begin;
    hooks.on_epoch_end = on_epoch_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_model_checkpoint_callback_hooks(const tfx_model_checkpoint_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

const char *tfx_model_checkpoint_callback_last_path(const tfx_model_checkpoint_callback *cb)
{
    return cb ? cb->last : "";
}

double tfx_model_checkpoint_callback_best(const tfx_model_checkpoint_callback *cb) { return cb ? cb->best : NAN; }

void tfx_model_checkpoint_callback_free(tfx_model_checkpoint_callback *cb)
{
    if (!cb) return;
    tfx__free(cb->filepath);
    tfx__free(cb);
}
