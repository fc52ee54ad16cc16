/* Keras's LearningRateScheduler: lr = schedule(epoch, lr) at each epoch begin. */
#include <math.h>

#include "core/options.h"
#include "train/callback_internal.h"

struct tfx_learning_rate_scheduler_callback {
    tfx_callback hooks;
    tfx_learning_rate_scheduler_options opt;
    tfx_lr_schedule_fn schedule;
    void *payload;
};

TFX__OPTIONS_DESC_V1(scheduler_options, tfx_learning_rate_scheduler_options,
                     TFX_LEARNING_RATE_SCHEDULER_OPTIONS_VERSION, TFX_LEARNING_RATE_SCHEDULER_OPTIONS_INIT);

int tfx_learning_rate_scheduler_options_init(tfx_learning_rate_scheduler_options *opts, unsigned version)
{
    return tfx__options_init(&scheduler_options, opts, version, "tfx_learning_rate_scheduler_options_init");
}

static int on_epoch_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_learning_rate_scheduler_callback *cb = payload;
    float lr;
    int rc = tfx_model_get_learning_rate(m, &lr);
    if (rc) return rc;
    float next = cb->schedule(logs->epoch, lr, cb->payload);
    if (!isfinite(next) || next < 0.0f)
        return tfx__error(TFX_EINVAL,
                          "tfx_learning_rate_scheduler_callback: the schedule returned %g for epoch %d (a learning "
                          "rate must be finite and >= 0)",
                          (double)next, logs->epoch);
    rc = tfx_model_set_learning_rate(m, next);
    if (rc) return rc;
    if (cb->opt.verbose > 0) {
        char v[48];
        tfx__py_repr((double)next, v, sizeof v);
        return tfx__callback_print(m, "\nEpoch %d: LearningRateScheduler setting learning rate to %s.", logs->epoch + 1,
                                   v);
    }
    return 0;
}

int tfx_learning_rate_scheduler_callback_new(tfx_learning_rate_scheduler_callback **out, tfx_lr_schedule_fn schedule,
                                             void *payload, const tfx_learning_rate_scheduler_options *opts)
{
    static const char fn[] = "tfx_learning_rate_scheduler_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(schedule);
    tfx_learning_rate_scheduler_options o;
    int rc = tfx__options_copy(&scheduler_options, &o, opts, fn);
    if (rc) return rc;
    TFX__CHECK_ARG(o.verbose == 0 || o.verbose == 1, "%s: verbose %d must be 0 or 1", fn, o.verbose);
    tfx_learning_rate_scheduler_callback *cb = tfx__calloc(1, sizeof *cb);
    if (!cb) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    cb->opt = o;
    cb->schedule = schedule;
    cb->payload = payload;
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_epoch_begin = on_epoch_begin;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_learning_rate_scheduler_callback_hooks(const tfx_learning_rate_scheduler_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

void tfx_learning_rate_scheduler_callback_free(tfx_learning_rate_scheduler_callback *cb) { tfx__free(cb); }
