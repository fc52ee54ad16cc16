/* Keras's TerminateOnNaN: stop at the first batch whose loss is NaN or infinite. */
#include <math.h>

#include "core/options.h"
#include "train/callback_internal.h"

struct tfx_terminate_on_nan_callback {
    tfx_callback hooks;
};

TFX__OPTIONS_DESC_V1(nan_options, tfx_terminate_on_nan_options, TFX_TERMINATE_ON_NAN_OPTIONS_VERSION,
                     TFX_TERMINATE_ON_NAN_OPTIONS_INIT);

int tfx_terminate_on_nan_options_init(tfx_terminate_on_nan_options *opts, unsigned version)
{
    return tfx__options_init(&nan_options, opts, version, "tfx_terminate_on_nan_options_init");
}

static int on_batch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)payload;
    /* Keras reads logs["loss"] (the running mean); a bad batch makes it bad too */
    if (isnan(logs->loss) || isinf(logs->loss) || isnan(logs->batch_loss) || isinf(logs->batch_loss)) {
        int rc = tfx__callback_print(m, "Batch %zu: Invalid loss, terminating training", logs->batch);
        if (rc) return rc;
        return tfx_model_stop_training(m);
    }
    return 0;
}

int tfx_terminate_on_nan_callback_new(tfx_terminate_on_nan_callback **out, const tfx_terminate_on_nan_options *opts)
{
    static const char fn[] = "tfx_terminate_on_nan_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    tfx_terminate_on_nan_options o;
    int rc = tfx__options_copy(&nan_options, &o, opts, fn);
    if (rc) return rc;
    tfx_terminate_on_nan_callback *cb = tfx__calloc(1, sizeof *cb);
    if (!cb) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_batch_end = on_batch_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_terminate_on_nan_callback_hooks(const tfx_terminate_on_nan_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

void tfx_terminate_on_nan_callback_free(tfx_terminate_on_nan_callback *cb) { tfx__free(cb); }
