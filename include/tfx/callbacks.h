/* Keras's built-in training callbacks (tf.keras.callbacks.*): ModelCheckpoint, EarlyStopping,
 * ReduceLROnPlateau, LearningRateScheduler, CSVLogger, TerminateOnNaN. Each is an object whose
 * hooks go into tfx_fit_options.callbacks:
 *
 *     tfx_early_stopping_callback *es;
 *     tfx_early_stopping_options eo = TFX_EARLY_STOPPING_OPTIONS_INIT;
 *     eo.patience = 3;
 *     tfx_early_stopping_callback_new(&es, &eo);
 *     const tfx_callback *cbs[] = { tfx_early_stopping_callback_hooks(es) };
 *     fo.callbacks = cbs; fo.n_callbacks = 1;
 *     tfx_model_fit(m, x, y, n, &fo, hist);
 *     tfx_early_stopping_callback_free(es);
 *
 * Semantics follow tf-keras 2.16+ (the Keras 2 line; docs/training.md says where libtfx differs).
 * Monitored quantities are the keys of the logs: "loss", "accuracy", "val_loss",
 * "val_accuracy". A monitor the fit cannot produce (val_* without validation data, accuracy
 * without the metric) stops the fit at on_train_begin (Keras only warns; libtfx never prints on
 * its own). Stopping requested by a callback (EarlyStopping, TerminateOnNaN) is Keras's
 * model.stop_training = True (tfx_model_stop_training): fit returns TFX_OK. Errors inside a
 * callback (a checkpoint that cannot be written) stop fit with TFX_EUSER and the reason.
 * Verbose lines ("\nEpoch 3: val_loss improved from ...") go to the fit's progress sink
 * (progress_file / progress_write), whatever fit's own verbose level; nowhere without a sink.
 * A callback object may be used by one fit at a time; it can be reused by later fits. */
#ifndef TFX_CALLBACKS_H
#define TFX_CALLBACKS_H

#include "common.h"
#include "model.h"
#include "train.h"

TFX_BEGIN_DECLS

/* Keras's mode: "auto" (max for accuracy, min otherwise), "min", "max". */
typedef enum tfx_monitor_mode {
    TFX_MODE_AUTO = 0,
    TFX_MODE_MIN = 1,
    TFX_MODE_MAX = 2
} tfx_monitor_mode;

/* ---- ModelCheckpoint ---- */

/* At the end of every epoch, save the model to filepath formatted with Python's str.format
 * rules: {epoch} (1-based, as Keras), {loss}, {accuracy}, {val_loss}, {val_accuracy}, each with
 * an optional format spec ([[fill]align][sign][0][width][.precision][type], types d for epoch,
 * e E f F g G % for any, none), "{{" and "}}" for braces; e.g. "ckpt/model-{epoch:02d}-
 * {val_loss:.2f}.tfx". With save_best_only, only when the monitored value improves on the best
 * so far (strictly; no min_delta, as Keras). Files are written with tfx_model_save (atomic);
 * missing directories are created. As Keras's model.save, a checkpoint includes the optimizer
 * state (tfx_save_options.include_optimizer): load it and fit with initial_epoch to resume.
 * libtfx has no weights-only file: save_weights_only writes the whole model without the
 * optimizer state (architecture + weights, loadable by tfx_model_load). */
typedef struct tfx_model_checkpoint_callback tfx_model_checkpoint_callback;

#define TFX_MODEL_CHECKPOINT_OPTIONS_VERSION 1
typedef struct tfx_model_checkpoint_options {
    unsigned version;
    const char *monitor;       /* NULL: "val_loss" */
    int verbose;               /* 0 or 1 */
    int save_best_only;
    int save_weights_only;     /* the model without its optimizer state (see above) */
    int mode;                  /* tfx_monitor_mode */
    int has_initial_value_threshold; /* non-zero: the best starts at initial_value_threshold */
    double initial_value_threshold;
} tfx_model_checkpoint_options;
#define TFX_MODEL_CHECKPOINT_OPTIONS_INIT \
    { TFX_MODEL_CHECKPOINT_OPTIONS_VERSION, NULL, 0, 0, 0, TFX_MODE_AUTO, 0, 0.0 }
TFX_API int tfx_model_checkpoint_options_init(tfx_model_checkpoint_options *opts, unsigned version);

/* The template is checked now (TFX_EINVAL naming the field), and the directory of filepath is
 * created now when it has no {field} (TFX_EIO naming it when it cannot be). */
TFX_API int tfx_model_checkpoint_callback_new(tfx_model_checkpoint_callback **out, const char *filepath,
                                              const tfx_model_checkpoint_options *opts);
TFX_API const tfx_callback *tfx_model_checkpoint_callback_hooks(const tfx_model_checkpoint_callback *cb);
/* The last file written ("" before the first; borrowed, lives as long as cb). */
TFX_API const char *tfx_model_checkpoint_callback_last_path(const tfx_model_checkpoint_callback *cb);
/* Keras's `best`: the best monitored value so far (+-inf before any). */
TFX_API double tfx_model_checkpoint_callback_best(const tfx_model_checkpoint_callback *cb);
TFX_API void tfx_model_checkpoint_callback_free(tfx_model_checkpoint_callback *cb);

/* ---- EarlyStopping ---- */

/* Stop training when the monitored value stops improving (tf-keras 2.16+):
 * at each epoch end (from start_from_epoch on) wait += 1; an improvement (current - min_delta
 * better than best, min_delta counted toward the mode) sets best, best_epoch and, with
 * restore_best_weights, copies the weights; wait goes back to 0 only if the value also beats
 * the baseline (when set). Otherwise, when wait >= patience and epoch > 0, training stops.
 * restore_best_weights: at train end the weights of the best epoch are put back (all weights,
 * BatchNormalization's moving statistics included), whether the callback stopped training or
 * the epochs ran out; the first epoch's weights count as best if nothing ever improves. */
typedef struct tfx_early_stopping_callback tfx_early_stopping_callback;

#define TFX_EARLY_STOPPING_OPTIONS_VERSION 1
typedef struct tfx_early_stopping_options {
    unsigned version;
    const char *monitor;  /* NULL: "val_loss" */
    double min_delta;     /* >= 0 */
    int patience;         /* >= 0 */
    int verbose;          /* 0 or 1 */
    int mode;             /* tfx_monitor_mode */
    int has_baseline;     /* non-zero: baseline is used */
    double baseline;
    int restore_best_weights;
    int start_from_epoch; /* >= 0 */
} tfx_early_stopping_options;
#define TFX_EARLY_STOPPING_OPTIONS_INIT \
    { TFX_EARLY_STOPPING_OPTIONS_VERSION, NULL, 0.0, 0, 0, TFX_MODE_AUTO, 0, 0.0, 0, 0 }
TFX_API int tfx_early_stopping_options_init(tfx_early_stopping_options *opts, unsigned version);

TFX_API int tfx_early_stopping_callback_new(tfx_early_stopping_callback **out, const tfx_early_stopping_options *opts);
TFX_API const tfx_callback *tfx_early_stopping_callback_hooks(const tfx_early_stopping_callback *cb);
/* Keras's stopped_epoch: the 0-based epoch at which it stopped the last fit, 0 if it did not. */
TFX_API int tfx_early_stopping_callback_stopped_epoch(const tfx_early_stopping_callback *cb);
/* Keras's best_epoch: the 0-based epoch of the best value (0 before any). */
TFX_API int tfx_early_stopping_callback_best_epoch(const tfx_early_stopping_callback *cb);
TFX_API void tfx_early_stopping_callback_free(tfx_early_stopping_callback *cb);

/* ---- ReduceLROnPlateau ---- */

/* At each epoch end: during cooldown, cooldown counts down and wait is 0. An improvement
 * (min: current < best - min_delta; max: current > best + min_delta) sets best and wait = 0;
 * otherwise, outside cooldown, wait += 1 and when wait >= patience and lr > min_lr:
 * lr = max(lr * factor, min_lr), cooldown starts, wait = 0. */
typedef struct tfx_reduce_lr_on_plateau_callback tfx_reduce_lr_on_plateau_callback;

#define TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_VERSION 1
typedef struct tfx_reduce_lr_on_plateau_options {
    unsigned version;
    const char *monitor; /* NULL: "val_loss" */
    double factor;       /* in (0, 1) */
    int patience;        /* >= 0 */
    int verbose;         /* 0 or 1 */
    int mode;            /* tfx_monitor_mode */
    double min_delta;    /* >= 0 */
    int cooldown;        /* >= 0 */
    double min_lr;       /* >= 0 */
} tfx_reduce_lr_on_plateau_options;
#define TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT \
    { TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_VERSION, NULL, 0.1, 10, 0, TFX_MODE_AUTO, 1e-4, 0, 0.0 }
TFX_API int tfx_reduce_lr_on_plateau_options_init(tfx_reduce_lr_on_plateau_options *opts, unsigned version);

TFX_API int tfx_reduce_lr_on_plateau_callback_new(tfx_reduce_lr_on_plateau_callback **out,
                                                  const tfx_reduce_lr_on_plateau_options *opts);
TFX_API const tfx_callback *tfx_reduce_lr_on_plateau_callback_hooks(const tfx_reduce_lr_on_plateau_callback *cb);
TFX_API void tfx_reduce_lr_on_plateau_callback_free(tfx_reduce_lr_on_plateau_callback *cb);

/* ---- LearningRateScheduler ---- */

/* The schedule: the new learning rate for 0-based `epoch`, given the current one. It must be
 * finite and >= 0, or fit stops (TFX_EUSER, the value in the message). */
typedef float (*tfx_lr_schedule_fn)(int epoch, float lr, void *payload);

#define TFX_LEARNING_RATE_SCHEDULER_OPTIONS_VERSION 1
typedef struct tfx_learning_rate_scheduler_options {
    unsigned version;
    int verbose; /* 0 or 1 */
} tfx_learning_rate_scheduler_options;
#define TFX_LEARNING_RATE_SCHEDULER_OPTIONS_INIT { TFX_LEARNING_RATE_SCHEDULER_OPTIONS_VERSION, 0 }
TFX_API int tfx_learning_rate_scheduler_options_init(tfx_learning_rate_scheduler_options *opts, unsigned version);

/* At each epoch begin: lr = schedule(epoch, lr, payload). */
typedef struct tfx_learning_rate_scheduler_callback tfx_learning_rate_scheduler_callback;
TFX_API int tfx_learning_rate_scheduler_callback_new(tfx_learning_rate_scheduler_callback **out,
                                                     tfx_lr_schedule_fn schedule, void *payload,
                                                     const tfx_learning_rate_scheduler_options *opts);
TFX_API const tfx_callback *tfx_learning_rate_scheduler_callback_hooks(
    const tfx_learning_rate_scheduler_callback *cb);
TFX_API void tfx_learning_rate_scheduler_callback_free(tfx_learning_rate_scheduler_callback *cb);

/* ---- CSVLogger ---- */

/* One row per epoch, as Keras's csv.DictWriter writes it: a header "epoch,accuracy,loss,
 * val_accuracy,val_loss" (the sorted keys of the first epoch's logs, then val_ columns if there
 * were none), rows with the 0-based epoch and Python's repr of each value ("NA" when absent),
 * lines ending in "\r\n", flushed each epoch. The file is opened at train begin: truncated, or
 * with append, appended to (header only if the file is empty). */
typedef struct tfx_csv_logger_callback tfx_csv_logger_callback;

#define TFX_CSV_LOGGER_OPTIONS_VERSION 1
typedef struct tfx_csv_logger_options {
    unsigned version;
    char separator; /* ','; not '"', '\r', '\n' or '\0' */
    int append;
} tfx_csv_logger_options;
#define TFX_CSV_LOGGER_OPTIONS_INIT { TFX_CSV_LOGGER_OPTIONS_VERSION, ',', 0 }
TFX_API int tfx_csv_logger_options_init(tfx_csv_logger_options *opts, unsigned version);

TFX_API int tfx_csv_logger_callback_new(tfx_csv_logger_callback **out, const char *filename,
                                        const tfx_csv_logger_options *opts);
TFX_API const tfx_callback *tfx_csv_logger_callback_hooks(const tfx_csv_logger_callback *cb);
TFX_API void tfx_csv_logger_callback_free(tfx_csv_logger_callback *cb);

/* ---- TerminateOnNaN ---- */

/* At each batch end, a NaN or infinite loss writes "Batch N: Invalid loss, terminating
 * training" and stops training. (fit itself already stops with TFX_ERROR when a batch's loss is
 * not finite, before the callbacks see it; this callback catches what reaches the logs.) */
typedef struct tfx_terminate_on_nan_callback tfx_terminate_on_nan_callback;

#define TFX_TERMINATE_ON_NAN_OPTIONS_VERSION 1
typedef struct tfx_terminate_on_nan_options {
    unsigned version;
} tfx_terminate_on_nan_options;
#define TFX_TERMINATE_ON_NAN_OPTIONS_INIT { TFX_TERMINATE_ON_NAN_OPTIONS_VERSION }
TFX_API int tfx_terminate_on_nan_options_init(tfx_terminate_on_nan_options *opts, unsigned version);

TFX_API int tfx_terminate_on_nan_callback_new(tfx_terminate_on_nan_callback **out,
                                              const tfx_terminate_on_nan_options *opts);
TFX_API const tfx_callback *tfx_terminate_on_nan_callback_hooks(const tfx_terminate_on_nan_callback *cb);
TFX_API void tfx_terminate_on_nan_callback_free(tfx_terminate_on_nan_callback *cb);

TFX_END_DECLS

#endif
