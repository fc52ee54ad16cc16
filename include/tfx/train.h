/* Keras-style training: compile (loss, optimizer, metric), fit with callbacks and a history,
 * evaluate. */
#ifndef TFX_TRAIN_H
#define TFX_TRAIN_H

#include <stdio.h>

#include "common.h"
#include "model.h"

TFX_BEGIN_DECLS

/* Losses (Keras names). The reduction is Keras's "sum over batch size": the mean over the
 * samples (and over the output positions when the output is spatial). */
typedef enum tfx_loss {
    /* Targets: one int32 class label per output position (y: int32_t[n * h * w]). On a softmax
     * output (fused in the last Dense/Conv2D or a final Activation layer) it is computed from
     * the logits (log-sum-exp); on other outputs from probabilities clipped to [1e-7, 1 - 1e-7]
     * as Keras does. */
    TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY = 1,
    /* Targets: float distributions (usually one-hot), y: float[n * output size]. Logits on a
     * softmax output; otherwise Keras's p / sum(p), clipped to [1e-7, 1 - 1e-7]. */
    TFX_LOSS_CATEGORICAL_CROSSENTROPY = 2,
    /* Targets: float in [0, 1] per output unit. Logits on a sigmoid output (stable form
     * max(z,0) - z t + log(1 + e^-|z|)); otherwise Keras's clipped probabilities with the
     * extra + 1e-7 inside the logs. Mean over the last axis. */
    TFX_LOSS_BINARY_CROSSENTROPY = 3,
    /* Targets: float per output unit. mean((p - t)^2) over the last axis. */
    TFX_LOSS_MEAN_SQUARED_ERROR = 4
} tfx_loss;

/* Optimizers, with Keras's update rules (t counts steps from 1, g is the batch gradient):
 *   SGD:      momentum 0: w -= lr g.  Otherwise v = momentum v - lr g, then
 *             w += v (classic) or w += momentum v - lr g (nesterov).  Defaults: lr 0.01.
 *   Adam:     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *             lr_t = lr sqrt(1 - b2^t) / (1 - b1^t);  w -= lr_t m / (sqrt(v) + eps).
 *             Note Keras's epsilon placement: eps is added to sqrt(v), not to the bias-corrected
 *             sqrt(v_hat) as in the Adam paper / PyTorch (PyTorch's eps equals Keras's eps
 *             divided by sqrt(1 - b2^t)).  Defaults: lr 1e-3, b1 0.9, b2 0.999, eps 1e-7.
 *   RMSprop:  ms = rho ms + (1 - rho) g^2;  w -= lr g / (sqrt(ms) + eps)  (Keras 2.x, not
 *             centered, no momentum).  Defaults: lr 1e-3, rho 0.9, eps 1e-7. */
typedef enum tfx_optimizer {
    TFX_OPTIMIZER_SGD = 1,
    TFX_OPTIMIZER_ADAM = 2,
    TFX_OPTIMIZER_RMSPROP = 3
} tfx_optimizer;

/* Metrics (bit flags). Keras's "accuracy" picks its form from the shapes, as Keras does:
 * sparse labels: argmax(p) == label; output of 1 unit: (p > 0.5) == (t > 0.5) (binary
 * accuracy); otherwise argmax(p) == argmax(t) (categorical accuracy). */
typedef enum tfx_metric {
    TFX_METRIC_NONE = 0,
    TFX_METRIC_ACCURACY = 1
} tfx_metric;

#define TFX_COMPILE_OPTIONS_VERSION 1
typedef struct tfx_compile_options {
    unsigned version;
    int loss;            /* tfx_loss */
    int optimizer;       /* tfx_optimizer */
    float learning_rate; /* > 0; 0 means the optimizer's Keras default (SGD 0.01, others 1e-3) */
    float momentum;      /* SGD, in [0, 1) */
    int nesterov;        /* SGD: non-zero for Nesterov momentum */
    float beta_1;        /* Adam, in [0, 1) */
    float beta_2;        /* Adam, in [0, 1) */
    float rho;           /* RMSprop, in [0, 1) */
    float epsilon;       /* Adam and RMSprop, > 0 */
    int metrics;         /* tfx_metric flags */
} tfx_compile_options;
/* Defaults: sparse categorical cross-entropy, Adam with Keras's defaults, accuracy (the
 * tutorial's compile call). */
#define TFX_COMPILE_OPTIONS_INIT                                                                   \
    { TFX_COMPILE_OPTIONS_VERSION, TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY, TFX_OPTIMIZER_ADAM,   \
      0.0f, 0.0f, 0, 0.9f, 0.999f, 0.9f, 1e-7f, TFX_METRIC_ACCURACY }
TFX_API int tfx_compile_options_init(tfx_compile_options *opts, unsigned version);

/* Configure the model for training (NULL options: the defaults above). Checks that the
 * loss fits the output layer and allocates the optimizer state (zeroed, step count 0).
 * Compiling again replaces the configuration and resets the optimizer state, as a new Keras
 * optimizer would. Adding layers after compiling requires compiling again (TFX_ESTATE). */
TFX_API int tfx_model_compile(tfx_model *m, const tfx_compile_options *o);

/* Number of optimizer steps taken since compile (Keras's optimizer.iterations). */
TFX_API uint64_t tfx_model_train_steps(const tfx_model *m);

/* The optimizer's learning rate (Keras's optimizer.learning_rate): read it, or set it (finite,
 * >= 0; 0 stops the updates). Setting is allowed while fit runs (from a callback: Keras's
 * LearningRateScheduler and ReduceLROnPlateau do it); the next optimizer step uses it.
 * TFX_ESTATE when the model is not compiled. Compiling again resets it to the compiled value. */
TFX_API int tfx_model_get_learning_rate(const tfx_model *m, float *lr);
TFX_API int tfx_model_set_learning_rate(tfx_model *m, float lr);

/* Keras's model.stop_training = True, for a callback: the running fit stops cleanly where Keras
 * looks at the flag, after the current batch's on_batch_end hooks (the rest of the epoch is
 * skipped; the epoch is still validated and gets its on_epoch_end hooks and history entry) or
 * after the current epoch's on_epoch_end hooks, whichever comes first; requested from
 * on_train_begin, no epoch starts. on_train_end runs as usual and fit returns TFX_OK. fit clears
 * the request when it starts, so a call outside fit has no effect on later fits. TFX_ESTATE
 * when the model is not compiled. */
TFX_API int tfx_model_stop_training(tfx_model *m);

/* ---- callbacks ---- */

/* What callbacks see. Fields that do not apply to a hook are 0 (counts) or NaN (values). */
typedef struct tfx_train_logs {
    int epoch;           /* 0-based epoch index (Keras's epoch argument) */
    int epochs;          /* the fit's final epoch index + 1 (options.epochs) */
    size_t batch;        /* 0-based batch index in the epoch (batch hooks) */
    size_t batch_size;   /* samples in this batch (batch hooks; the last one may be smaller) */
    size_t steps;        /* batches per epoch */
    size_t samples;      /* training samples per epoch */
    size_t val_samples;  /* validation samples (0: no validation; a validation provider of unknown
                            length: 1 until its first pass has counted it) */
    double loss;         /* running mean over the epoch so far (on_batch_end, on_epoch_end) */
    double accuracy;     /* same, NaN when the accuracy metric is not compiled */
    double val_loss;     /* on_epoch_end (and on_train_end) with validation, else NaN */
    double val_accuracy;
    double batch_loss;   /* on_batch_end: this batch's mean loss */
} tfx_train_logs;

/* A hook returns 0 to continue; any other value stops training cleanly: no further batch
 * or epoch starts (a stop from on_batch_begin skips that batch; an interrupted epoch gets no
 * on_epoch_end and no history entry), on_train_end still runs for every callback whose
 * on_train_begin ran, and fit returns TFX_EUSER. The
 * message is the libtfx error the callback left (e.g. from a failed tfx_model_predict) or
 * "callback returned N". Hooks may use the model read-only between batches
 * (tfx_model_predict, tfx_model_evaluate, explainers, save, summary): fit does not rely on the
 * model's forward buffers across a hook call, and the trained weights come out bit-identical.
 * While fit runs (hooks and the progress sink included), calls that change the model's layers,
 * optimizer or weights (tfx_model_add_*, tfx_model_compile, tfx_model_fit, tfx_model_set_seed,
 * tfx_model_set_threads, tfx_layer_set_weights, tfx_sanity_check) return TFX_ESTATE ("...: model
 * is being trained by tfx_model_fit; ..."); tfx_model_set_learning_rate and
 * tfx_model_stop_training are allowed. Hooks must not free the model. A hook that fails can
 * say why with tfx_error_set (common.h) before returning non-zero: fit's TFX_EUSER message then
 * reads "callback K (on_epoch_end) stopped training: <that message>". Keras's built-in
 * callbacks are in callbacks.h. */
typedef int (*tfx_callback_fn)(tfx_model *m, const tfx_train_logs *logs, void *payload);

#define TFX_CALLBACK_VERSION 1
typedef struct tfx_callback {
    unsigned version;
    void *payload; /* passed to every hook */
    tfx_callback_fn on_train_begin, on_train_end;
    tfx_callback_fn on_epoch_begin, on_epoch_end;
    tfx_callback_fn on_batch_begin, on_batch_end; /* NULL hooks are skipped */
} tfx_callback;
#define TFX_CALLBACK_INIT { TFX_CALLBACK_VERSION, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/* Progress sink alternative to a FILE*: receives text (not NUL-terminated); non-zero stops
 * training with TFX_EIO. */
typedef int (*tfx_write_fn)(const char *text, size_t len, void *payload);

/* ---- history ---- */

typedef struct tfx_history tfx_history;
TFX_API int tfx_history_new(tfx_history **out);
TFX_API void tfx_history_free(tfx_history *h);
/* Number of epochs recorded by the last fit that used this history. */
TFX_API size_t tfx_history_length(const tfx_history *h);
/* Per-epoch values of a key ("loss", "accuracy", "val_loss", "val_accuracy", "epoch"):
 * borrowed array of tfx_history_length values, valid until the history is reused or freed.
 * NULL with TFX_EINVAL for an unknown key or one the fit did not record (val_* without
 * validation data, accuracy without the metric). */
TFX_API const double *tfx_history_values(const tfx_history *h, const char *key);

/* ---- fit ---- */

#define TFX_FIT_OPTIONS_VERSION 1
typedef struct tfx_fit_options {
    unsigned version;
    size_t batch_size;       /* > 0; a last smaller batch takes the remainder (n < batch_size
                                is fine: one smaller batch per epoch, as Keras) */
    int epochs;              /* >= 0; Keras semantics: the index at which training stops, so
                                epochs - initial_epoch epochs run (none if initial_epoch >= epochs) */
    int initial_epoch;       /* >= 0 */
    double validation_split; /* in [0, 1): the LAST fraction of x/y (taken before shuffling)
                                is held out: n_train = floor(n * (1 - split)) */
    const float *validation_x; /* validation_data (overrides validation_split when n > 0) */
    const void *validation_y;  /* typed like fit's y */
    size_t validation_n;
    int shuffle;             /* non-zero: shuffle the training samples every epoch (model RNG) */
    int verbose;             /* 0 silent, 1 progress bar, 2 one line per epoch */
    FILE *progress_file;     /* where progress goes; with neither sink, nothing is written */
    tfx_write_fn progress_write;
    void *progress_payload;
    const tfx_callback *const *callbacks; /* array of n_callbacks pointers (pointers, so each
                                             struct's version can grow on its own) */
    size_t n_callbacks;
} tfx_fit_options;
#define TFX_FIT_OPTIONS_INIT                                                                       \
    { TFX_FIT_OPTIONS_VERSION, 32, 1, 0, 0.0, NULL, NULL, 0, 1, 1, NULL, NULL, NULL, NULL, 0 }
TFX_API int tfx_fit_options_init(tfx_fit_options *opts, unsigned version);

/* Train the compiled model on n samples x (n * H * W * C floats, NHWC).
 *
 * y is typed by the compiled loss (one pointer, like Keras's fit(x, y), so validation data,
 * evaluate and callbacks use one convention instead of two parallel APIs):
 *   sparse categorical cross-entropy: const int32_t *, n * h * w labels in [0, classes);
 *   every other loss:                 const float *,   n * output-size targets.
 *
 * Forward passes run in training mode (dropout, batch statistics); one optimizer step per
 * batch. Buffers are allocated once per call, never per batch. history (optional) is
 * cleared and receives one entry per completed epoch.
 *
 * Errors: TFX_ESTATE before compile (or after layers changed since); TFX_EINVAL for bad
 * options, labels out of range (naming the index), or any non-finite value in x, y or the
 * validation data (naming the first index: fit checks before training starts); TFX_ERROR
 * when the loss becomes non-finite during training (training stops at that batch; the
 * weights are those after the previous step); TFX_EUSER when a callback stops training;
 * TFX_EIO when the progress sink fails. Epochs completed before a stop stay in history.
 *
 * Determinism: the same seed, data and options give bit-identical weights, provided the
 * BLAS library computes identically across runs (OpenBLAS with a fixed thread count does). */
TFX_API int tfx_model_fit(tfx_model *m, const float *x, const void *y, size_t n,
                          const tfx_fit_options *o, tfx_history *history);

/* Loss and accuracy over n samples in inference mode, batched by tfx_model_set_batch_size.
 * y as for fit. accuracy (optional) is filled whether or not the metric was compiled.
 * Same input checks as fit. */
TFX_API int tfx_model_evaluate(tfx_model *m, const float *x, const void *y, size_t n, double *loss,
                               double *accuracy);

/* ---- batch providers (common.h): data larger than memory ---- */

/* fit on batches pulled from a provider instead of arrays. Each epoch calls train->reset(epoch),
 * then train->next(max = batch_size) until it reports 0 samples; every provided batch is one
 * optimizer step (a provider may return fewer than batch_size samples). validation (optional)
 * is evaluated after each epoch as validation_data is. Options as for tfx_model_fit except:
 * validation_split and validation_x/y/n must be 0/NULL (TFX_EINVAL: a stream cannot be split;
 * pass a second provider), and shuffle is ignored (the order is the provider's: see the shuffle
 * buffer of tfx_idx_stream). Callbacks, progress (with "Unknown" totals when length is 0 until
 * the first epoch ends, as Keras), history, the fit guard and the errors are those of
 * tfx_model_fit; each provided batch is checked like fit's input (non-finite x or targets,
 * labels out of range: TFX_EINVAL naming the epoch, batch and index) before it is used, so a bad
 * batch leaves the weights of the previous step. Also TFX_EINVAL when next reports more than
 * max samples or a pass differs from a non-zero length; a provider error stops fit with its
 * code (see tfx_batch_provider). With the same samples in the same order and the same batch
 * sizes, the weights equal tfx_model_fit's with shuffle = 0, bit for bit. */
TFX_API int tfx_model_fit_provider(tfx_model *m, const tfx_batch_provider *train, const tfx_batch_provider *validation,
                                   const tfx_fit_options *o, tfx_history *history);

/* evaluate over one pass of a provider (batches of at most tfx_model_set_batch_size samples).
 * Same checks as tfx_model_fit_provider; an empty pass is TFX_EINVAL. */
TFX_API int tfx_model_evaluate_provider(tfx_model *m, const tfx_batch_provider *data, double *loss,
                                        double *accuracy);

/* Receives predictions: count samples' outputs (count * output size floats, borrowed for the
 * call) for samples first .. first + count - 1 of the pass. Non-zero stops predict with
 * TFX_EUSER (or the negative code it returned, with its tfx_error_set message). */
typedef int (*tfx_predict_sink_fn)(const float *out, size_t first, size_t count, void *payload);

/* predict over one pass of a provider (next is called with y = NULL), the outputs going to sink
 * batch by batch, so no output buffer of the pass's size is needed. n (optional) receives the
 * number of samples predicted. */
TFX_API int tfx_model_predict_provider(tfx_model *m, const tfx_batch_provider *data, tfx_predict_sink_fn sink,
                                       void *payload, size_t *n);

TFX_END_DECLS

#endif
