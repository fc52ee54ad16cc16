/* Keras's EarlyStopping, as tf-keras 2.16+ has it (the best weights are restored at train end,
 * whether this callback stopped training or not). */
#include <math.h>
#include <string.h>

#include "core/options.h"
#include "train/callback_internal.h"

struct tfx_early_stopping_callback {
    tfx_callback hooks;
    tfx_early_stopping_options opt;
    int key, maximize;
    double min_delta; /* signed as Keras: + for max, - for min */
    int wait, stopped_epoch, best_epoch;
    double best;
    int have_best_weights;
    tfx__weights_copy best_weights;
};

static const char fn_name[] = "tfx_early_stopping_callback";

TFX__OPTIONS_DESC_V1(early_stopping_options, tfx_early_stopping_options, TFX_EARLY_STOPPING_OPTIONS_VERSION,
                     TFX_EARLY_STOPPING_OPTIONS_INIT);

int tfx_early_stopping_options_init(tfx_early_stopping_options *opts, unsigned version)
{
    return tfx__options_init(&early_stopping_options, opts, version, "tfx_early_stopping_options_init");
}

/* Keras's _is_improvement: monitor_op(value - min_delta, reference). */
static int improves(const tfx_early_stopping_callback *cb, double value, double reference)
{
    double v = value - cb->min_delta;
    return cb->maximize ? v > reference : v < reference;
}

static int on_train_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_early_stopping_callback *cb = payload;
    int rc = tfx__check_available(fn_name, m, logs, cb->key, "monitor");
    if (rc) return rc;
    cb->wait = 0;
    cb->stopped_epoch = 0;
    cb->best = cb->maximize ? -INFINITY : INFINITY;
    cb->have_best_weights = 0;
    cb->best_epoch = 0;
    return 0;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_early_stopping_callback *cb = payload;
    /* on_train_begin made sure the key exists in this fit: a NaN is a value (never an improvement) */
    double current = tfx__log_value(logs, cb->key);
    if (logs->epoch < cb->opt.start_from_epoch) return 0;
    if (cb->opt.restore_best_weights && !cb->have_best_weights) {
        /* the first epoch's weights, in case nothing ever improves */
        int rc = tfx__weights_save(m, &cb->best_weights, fn_name);
        if (rc) return rc;
        cb->have_best_weights = 1;
        cb->best_epoch = logs->epoch;
    }
    cb->wait++;
    if (improves(cb, current, cb->best)) {
        cb->best = current;
        cb->best_epoch = logs->epoch;
        if (cb->opt.restore_best_weights) {
            int rc = tfx__weights_save(m, &cb->best_weights, fn_name);
            if (rc) return rc;
        }
        /* wait restarts only when the value beats both the previous best and the baseline */
        if (!cb->opt.has_baseline || improves(cb, current, cb->opt.baseline)) cb->wait = 0;
        return 0;
    }
    if (cb->wait >= cb->opt.patience && logs->epoch > 0) {
        cb->stopped_epoch = logs->epoch;
        return tfx_model_stop_training(m);
    }
    return 0;
}

static int on_train_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)logs;
    tfx_early_stopping_callback *cb = payload;
    int rc = 0;
    if (cb->stopped_epoch > 0 && cb->opt.verbose > 0)
        rc = tfx__callback_print(m, "Epoch %d: early stopping", cb->stopped_epoch + 1);
    if (cb->opt.restore_best_weights && cb->have_best_weights) {
        if (!rc && cb->opt.verbose > 0)
            rc = tfx__callback_print(m, "Restoring model weights from the end of the best epoch: %d.",
                                     cb->best_epoch + 1);
        size_t n = m->n_params;
        for (size_t i = 0; i < m->n_layers; i++) n += m->layers[i]->n_state;
        if (n == cb->best_weights.n) tfx__weights_restore(m, &cb->best_weights);
    }
    return rc;
}

int tfx_early_stopping_callback_new(tfx_early_stopping_callback **out, const tfx_early_stopping_options *opts)
{
    static const char fn[] = "tfx_early_stopping_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    tfx_early_stopping_options o;
    int rc = tfx__options_copy(&early_stopping_options, &o, opts, fn);
    if (rc) return rc;
    int key;
    rc = tfx__check_monitor(fn, o.monitor ? o.monitor : "val_loss", o.mode, &key);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(o.min_delta) && o.min_delta >= 0.0, "%s: min_delta %g must be finite and >= 0", fn,
                   o.min_delta);
    TFX__CHECK_ARG(o.patience >= 0, "%s: patience %d must be >= 0", fn, o.patience);
    TFX__CHECK_ARG(o.verbose == 0 || o.verbose == 1, "%s: verbose %d must be 0 or 1", fn, o.verbose);
    TFX__CHECK_ARG(!o.has_baseline || !isnan(o.baseline), "%s: baseline is NaN", fn);
    TFX__CHECK_ARG(o.start_from_epoch >= 0, "%s: start_from_epoch %d must be >= 0", fn, o.start_from_epoch);
    tfx_early_stopping_callback *cb = tfx__calloc(1, sizeof *cb);
    if (!cb) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    cb->opt = o;
    cb->opt.monitor = NULL; /* the caller's string is not kept */
    cb->key = key;
    /* Keras's auto mode for EarlyStopping: max when the name ends in acc/accuracy/auc */
    size_t kl = strlen(tfx__key_names[key]);
    cb->maximize = o.mode == TFX_MODE_MAX ||
        (o.mode == TFX_MODE_AUTO && kl >= 8 && strcmp(tfx__key_names[key] + kl - 8, "accuracy") == 0);
    cb->min_delta = cb->maximize ? o.min_delta : -o.min_delta;
    cb->best = cb->maximize ? -INFINITY : INFINITY;
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_train_begin = on_train_begin;
    hooks.on_epoch_end = on_epoch_end;
    hooks.on_train_end = on_train_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_early_stopping_callback_hooks(const tfx_early_stopping_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

int tfx_early_stopping_callback_stopped_epoch(const tfx_early_stopping_callback *cb)
{
    return cb ? cb->stopped_epoch : 0;
}

int tfx_early_stopping_callback_best_epoch(const tfx_early_stopping_callback *cb) { return cb ? cb->best_epoch : 0; }

void tfx_early_stopping_callback_free(tfx_early_stopping_callback *cb)
{
    if (!cb) return;
    tfx__weights_free(&cb->best_weights);
    tfx__free(cb);
}
