/* Keras's ReduceLROnPlateau (tf-keras 2.16): lower the learning rate when the monitored value
 * stops improving, then wait `cooldown` epochs. */
#include <math.h>
#include <string.h>

#include "core/options.h"
#include "train/callback_internal.h"

struct tfx_reduce_lr_on_plateau_callback {
    tfx_callback hooks;
    tfx_reduce_lr_on_plateau_options opt;
    int key, maximize;
    int wait, cooldown_counter;
    double best;
};

static const char fn_name[] = "tfx_reduce_lr_on_plateau_callback";

TFX__OPTIONS_DESC_V1(plateau_options, tfx_reduce_lr_on_plateau_options, TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_VERSION,
                     TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT);

int tfx_reduce_lr_on_plateau_options_init(tfx_reduce_lr_on_plateau_options *opts, unsigned version)
{
    return tfx__options_init(&plateau_options, opts, version, "tfx_reduce_lr_on_plateau_options_init");
}

static void reset(tfx_reduce_lr_on_plateau_callback *cb)
{
    cb->best = cb->maximize ? -INFINITY : INFINITY;
    cb->cooldown_counter = 0;
    cb->wait = 0;
}

static int on_train_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_reduce_lr_on_plateau_callback *cb = payload;
    int rc = tfx__check_available(fn_name, m, logs, cb->key, "monitor");
    if (rc) return rc;
    reset(cb);
    return 0;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_reduce_lr_on_plateau_callback *cb = payload;
    /* on_train_begin made sure the key exists in this fit: a NaN is a value (never an improvement) */
    double current = tfx__log_value(logs, cb->key);
    if (cb->cooldown_counter > 0) {
        cb->cooldown_counter--;
        cb->wait = 0;
    }
    int better = cb->maximize ? current > cb->best + cb->opt.min_delta : current < cb->best - cb->opt.min_delta;
    if (better) {
        cb->best = current;
        cb->wait = 0;
    } else if (cb->cooldown_counter <= 0) {
        cb->wait++;
        if (cb->wait >= cb->opt.patience) {
            float old_lr;
            int rc = tfx_model_get_learning_rate(m, &old_lr);
            if (rc) return rc;
            if (old_lr > (float)cb->opt.min_lr) {
                /* Keras: float32 lr times a Python float, in double; max with min_lr; stored as float32 */
                double new_lr = (double)old_lr * cb->opt.factor;
                if (new_lr < cb->opt.min_lr) new_lr = cb->opt.min_lr;
                rc = tfx_model_set_learning_rate(m, (float)new_lr);
                if (rc) return rc;
                if (cb->opt.verbose > 0) {
                    char v[48];
                    tfx__py_repr(new_lr, v, sizeof v);
                    rc = tfx__callback_print(m, "\nEpoch %d: ReduceLROnPlateau reducing learning rate to %s.",
                                             logs->epoch + 1, v);
                    if (rc) return rc;
                }
                cb->cooldown_counter = cb->opt.cooldown;
                cb->wait = 0;
            }
        }
    }
    return 0;
}

int tfx_reduce_lr_on_plateau_callback_new(tfx_reduce_lr_on_plateau_callback **out,
                                          const tfx_reduce_lr_on_plateau_options *opts)
{
    static const char fn[] = "tfx_reduce_lr_on_plateau_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    tfx_reduce_lr_on_plateau_options o;
    int rc = tfx__options_copy(&plateau_options, &o, opts, fn);
    if (rc) return rc;
    int key;
    rc = tfx__check_monitor(fn, o.monitor ? o.monitor : "val_loss", o.mode, &key);
    if (rc) return rc;
    TFX__CHECK_ARG(o.factor > 0.0 && o.factor < 1.0, "%s: factor %g must be in (0, 1) (Keras refuses >= 1)", fn,
                   o.factor);
    TFX__CHECK_ARG(o.patience >= 0, "%s: patience %d must be >= 0", fn, o.patience);
    TFX__CHECK_ARG(o.verbose == 0 || o.verbose == 1, "%s: verbose %d must be 0 or 1", fn, o.verbose);
    TFX__CHECK_ARG(isfinite(o.min_delta) && o.min_delta >= 0.0, "%s: min_delta %g must be finite and >= 0", fn,
                   o.min_delta);
    TFX__CHECK_ARG(o.cooldown >= 0, "%s: cooldown %d must be >= 0", fn, o.cooldown);
    TFX__CHECK_ARG(isfinite(o.min_lr) && o.min_lr >= 0.0, "%s: min_lr %g must be finite and >= 0", fn, o.min_lr);
    tfx_reduce_lr_on_plateau_callback *cb = tfx__calloc(1, sizeof *cb);
    if (!cb) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    cb->opt = o;
    cb->opt.monitor = NULL;
    cb->key = key;
    /* Keras's auto mode here: min unless the name contains "acc" */
    cb->maximize = o.mode == TFX_MODE_MAX || (o.mode == TFX_MODE_AUTO && strstr(tfx__key_names[key], "acc"));
    reset(cb);
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_train_begin = on_train_begin;
    hooks.on_epoch_end = on_epoch_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_reduce_lr_on_plateau_callback_hooks(const tfx_reduce_lr_on_plateau_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

void tfx_reduce_lr_on_plateau_callback_free(tfx_reduce_lr_on_plateau_callback *cb) { tfx__free(cb); }
