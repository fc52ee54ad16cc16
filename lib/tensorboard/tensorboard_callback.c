/* Keras's TensorBoard callback for loss and accuracy: train/ and validation/ runs with
 * epoch_* tags (research/tfevents.md §5, Keras _log_epoch_metrics). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/options.h"
#include "tensorboard/tensorboard_internal.h"

struct tfx_tensorboard_callback {
    tfx_callback hooks;
    tfx_tensorboard_options opt;
    tfx_event_writer *train, *val;
    char *val_dir;
    int status;          /* first write error, or TFX_OK */
    char message[512];
};

TFX__OPTIONS_DESC_V1(tensorboard_options, tfx_tensorboard_options, TFX_TENSORBOARD_OPTIONS_VERSION,
                     TFX_TENSORBOARD_OPTIONS_INIT);

int tfx_tensorboard_options_init(tfx_tensorboard_options *opts, unsigned version)
{
    return tfx__options_init(&tensorboard_options, opts, version, "tfx_tensorboard_options_init");
}

/* Remember the first error; the hook's return value decides whether fit goes on. */
static int failed(tfx_tensorboard_callback *cb, int rc)
{
    if (cb->status == TFX_OK) {
        cb->status = rc;
        snprintf(cb->message, sizeof cb->message, "%s", tfx_error_last()->message);
    }
    if (cb->opt.stop_on_error) {
        tfx__error(rc, "%s", cb->message); /* fit reports this message with TFX_EUSER */
        return 1;
    }
    return 0;
}

static int write_pair(tfx_tensorboard_callback *cb, tfx_event_writer *w, const char *loss_tag, const char *acc_tag,
                      int64_t step, double loss, double acc)
{
    int rc = TFX_OK;
    if (!isnan(loss)) rc = tfx_event_writer_add_scalar(w, loss_tag, step, loss);
    if (!rc && !isnan(acc)) rc = tfx_event_writer_add_scalar(w, acc_tag, step, acc);
    return rc;
}

static tfx_event_writer_options writer_options(const tfx_tensorboard_callback *cb)
{
    tfx_event_writer_options o = TFX_EVENT_WRITER_OPTIONS_INIT;
    o.clock = cb->opt.clock;
    o.clock_user = cb->opt.clock_user;
    return o;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    tfx_tensorboard_callback *cb = payload;
    if (cb->status) return cb->opt.stop_on_error ? failed(cb, cb->status) : 0;
    int rc = write_pair(cb, cb->train, "epoch_loss", "epoch_accuracy", logs->epoch, logs->loss, logs->accuracy);
    if (!rc && logs->val_samples > 0 && !(isnan(logs->val_loss) && isnan(logs->val_accuracy))) {
        if (!cb->val) {
            tfx_event_writer_options o = writer_options(cb);
            rc = tfx_event_writer_new(&cb->val, cb->val_dir, &o);
        }
        if (!rc)
            rc = write_pair(cb, cb->val, "epoch_loss", "epoch_accuracy", logs->epoch, logs->val_loss,
                            logs->val_accuracy);
        if (!rc) rc = tfx_event_writer_flush(cb->val);
    }
    if (!rc) rc = tfx_event_writer_flush(cb->train);
    return rc ? failed(cb, rc) : 0;
}

static int on_batch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_tensorboard_callback *cb = payload;
    if (cb->status || cb->opt.update_freq <= 0) return 0;
    if ((logs->batch + 1) % (size_t)cb->opt.update_freq != 0) return 0;
    int64_t step = (int64_t)tfx_model_train_steps(m);
    int rc = write_pair(cb, cb->train, "batch_loss", "batch_accuracy", step, logs->batch_loss, logs->accuracy);
    return rc ? failed(cb, rc) : 0;
}

int tfx_tensorboard_callback_new(tfx_tensorboard_callback **out, const char *log_dir,
                                 const tfx_tensorboard_options *opts)
{
    static const char fn[] = "tfx_tensorboard_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(log_dir);
    TFX__CHECK_ARG(log_dir[0] != '\0', "%s: log_dir is empty", fn);
    tfx_tensorboard_options o;
    int copy_rc = tfx__options_copy(&tensorboard_options, &o, opts, fn);
    if (copy_rc) return copy_rc;
    TFX__CHECK_ARG(o.update_freq >= 0, "%s: update_freq = %d must be >= 0", fn, o.update_freq);
    tfx_tensorboard_callback *cb = tfx__calloc(1, sizeof *cb);
    size_t n = strlen(log_dir) + 16;
    char *train_dir = tfx__malloc(n);
    if (cb) cb->val_dir = tfx__malloc(n);
    if (!cb || !train_dir || !cb->val_dir) {
        if (cb) tfx__free(cb->val_dir);
        tfx__free(cb);
        tfx__free(train_dir);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    snprintf(train_dir, n, "%s/train", log_dir);
    snprintf(cb->val_dir, n, "%s/validation", log_dir);
    cb->opt = o;
    tfx_event_writer_options wo = writer_options(cb);
    int rc = tfx_event_writer_new(&cb->train, train_dir, &wo);
    tfx__free(train_dir);
    if (rc) {
        tfx__free(cb->val_dir);
        tfx__free(cb);
        return tfx__error_prefix("%s", fn);
    }
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_epoch_end = on_epoch_end;
    hooks.on_batch_end = on_batch_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_tensorboard_callback_hooks(const tfx_tensorboard_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

int tfx_tensorboard_callback_status(const tfx_tensorboard_callback *cb, const char **message)
{
    if (message) *message = "";
    TFX__CHECK_NULL(cb);
    if (message) *message = cb->message;
    return cb->status;
}

void tfx_tensorboard_callback_free(tfx_tensorboard_callback *cb)
{
    if (!cb) return;
    tfx_event_writer_free(cb->train);
    tfx_event_writer_free(cb->val);
    tfx__free(cb->val_dir);
    tfx__free(cb);
}
