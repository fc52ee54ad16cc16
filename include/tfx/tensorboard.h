/* TensorBoard event files: a writer for scalars and PNG images that `tensorboard --logdir`
 * displays. File format: docs/tensorboard.md (TFRecords of tensorboard.Event protobufs). */
#ifndef TFX_TENSORBOARD_H
#define TFX_TENSORBOARD_H

#include "common.h"
#include "explain.h"
#include "image.h"
#include "train.h"

TFX_BEGIN_DECLS

/* One event file in one run directory. Used by one thread at a time. */
typedef struct tfx_event_writer tfx_event_writer;

/* Wall-clock source: Unix time in seconds (finite). Used for every Event.wall_time and for the
 * <seconds> part of the file name; tests pass a fixed clock to get deterministic bytes. */
typedef double (*tfx_clock_fn)(void *user);

#define TFX_EVENT_WRITER_OPTIONS_VERSION 1
typedef struct tfx_event_writer_options {
    unsigned version;
    tfx_clock_fn clock; /* NULL: the system clock (gettimeofday) */
    void *clock_user;   /* passed to clock */
} tfx_event_writer_options;
#define TFX_EVENT_WRITER_OPTIONS_INIT { TFX_EVENT_WRITER_OPTIONS_VERSION, NULL, NULL }
TFX_API int tfx_event_writer_options_init(tfx_event_writer_options *opts, unsigned version);

/* Create `logdir` (and its parents) if needed and a new file in it named
 * events.out.tfevents.<seconds, 10 digits>.<host>.<pid>.<n>.v2
 * (n counts writers in this process, so two writers never share a file), then write the first
 * record Event{wall_time, file_version = "brain.Event:2"}. `logdir` is one TensorBoard "run":
 * use one directory per training session.
 * Errors: TFX_EINVAL (NULL or empty logdir), TFX_EVERSION (options), TFX_ENOMEM, and TFX_EIO
 * with the path in the message when the directory cannot be created or the file cannot be
 * created or written (e.g. a path component is a regular file, no permission, disk full).
 * On failure *out is NULL and no file is left behind. */
TFX_API int tfx_event_writer_new(tfx_event_writer **out, const char *logdir,
                                 const tfx_event_writer_options *opts);

/* Path of the event file (borrowed; valid until tfx_event_writer_free). */
TFX_API const char *tfx_event_writer_path(const tfx_event_writer *w);

/* Append Event{wall_time, step, summary{value{tag, simple_value}}}. The value is stored as
 * float32 (TensorBoard's simple_value); NaN and infinities are stored as they are.
 * tag: non-empty UTF-8 (else TFX_EINVAL with the offset of the first bad byte); '/' groups tags in
 * the UI ("train/epoch_loss"). step: usually the epoch. */
TFX_API int tfx_event_writer_add_scalar(tfx_event_writer *w, const char *tag, int64_t step,
                                        double value);

/* Append an image summary from an encoded PNG: Summary.Image{height, width,
 * colorspace = channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), encoded_image_string = png}.
 * The PNG bytes are stored unchanged; its signature and IHDR must match width, height and
 * channels (TFX_EINVAL otherwise). At most 1 GiB. */
TFX_API int tfx_event_writer_add_image_png(tfx_event_writer *w, const char *tag, int64_t step,
                                           int width, int height, int channels,
                                           const unsigned char *png, size_t png_size);

/* Append an image summary of a tfx_image, PNG-encoded with tfx_image_encode_png. */
TFX_API int tfx_event_writer_add_image(tfx_event_writer *w, const char *tag, int64_t step,
                                       const tfx_image *img);

/* Each add_* call writes its whole record to the file before returning (one write), so
 * TensorBoard sees it at once. flush additionally asks the OS to put the file on disk
 * (fdatasync), so the records survive a power loss; callbacks call it at the end of each epoch. */
TFX_API int tfx_event_writer_flush(tfx_event_writer *w);

/* Flush and close the file; returns the first error. Later add_* calls give TFX_ESTATE.
 * Closing twice is allowed (no-op). */
TFX_API int tfx_event_writer_close(tfx_event_writer *w);

/* Close (ignoring errors; call tfx_event_writer_close first to see them) and free. NULL: no-op. */
TFX_API void tfx_event_writer_free(tfx_event_writer *w);

/* Write errors (disk full, I/O error) make the failing add_* call return TFX_EIO with the path
 * in the message. The writer then cuts the file back to its last whole record (ftruncate), so
 * the file always holds only whole, CRC-valid records and stays readable; if even that cut
 * fails, the file ends in one partial record, which TensorBoard treats as "not yet written"
 * and ignores. After a write error the writer is failed: every later add_* and flush returns
 * TFX_EIO naming the first error; close and free still release it. Training code decides
 * whether to continue without the log (libtfx's callbacks document their choice). */

/* ---- Keras's TensorBoard callback (scalars) ---- */

/* Writes what Keras's TensorBoard callback writes for loss and accuracy:
 *   <log_dir>/train       epoch_loss, epoch_accuracy         step = epoch (from 0)
 *   <log_dir>/validation  epoch_loss, epoch_accuracy         (val_loss, val_accuracy), step = epoch
 * and with update_freq = N > 0 also batch_loss (this batch's mean loss) and batch_accuracy (the
 * epoch's running accuracy) every N batches in the train run, step = optimizer steps so far.
 * Accuracy is written only when the metric is compiled, validation only when fit has
 * validation data (the validation run is created at the first such epoch). Each epoch ends
 * with a flush. The values are the ones fit puts in the history (stored as float32). */
typedef struct tfx_tensorboard_callback tfx_tensorboard_callback;

#define TFX_TENSORBOARD_OPTIONS_VERSION 1
typedef struct tfx_tensorboard_options {
    unsigned version;
    int update_freq;    /* 0: epoch summaries only (Keras "epoch"); N > 0: also every N batches */
    int stop_on_error;  /* 0: a write error (disk full) stops the logging, training continues;
                           non-zero: it stops fit, which returns TFX_EUSER with the I/O message */
    tfx_clock_fn clock; /* as in tfx_event_writer_options */
    void *clock_user;
} tfx_tensorboard_options;
#define TFX_TENSORBOARD_OPTIONS_INIT { TFX_TENSORBOARD_OPTIONS_VERSION, 0, 0, NULL, NULL }
TFX_API int tfx_tensorboard_options_init(tfx_tensorboard_options *opts, unsigned version);

/* Creates <log_dir>/train and its event file now, so an unusable log_dir is reported here
 * (TFX_EIO with the path), not in the middle of training. */
TFX_API int tfx_tensorboard_callback_new(tfx_tensorboard_callback **out, const char *log_dir,
                                         const tfx_tensorboard_options *opts);
/* The hooks to put in tfx_fit_options.callbacks (borrowed; lives as long as cb). */
TFX_API const tfx_callback *tfx_tensorboard_callback_hooks(const tfx_tensorboard_callback *cb);
/* TFX_OK, or the first write error (its message in *message when message is not NULL; the
 * string lives as long as cb). */
TFX_API int tfx_tensorboard_callback_status(const tfx_tensorboard_callback *cb, const char **message);
/* Closes the files. NULL: no-op. */
TFX_API void tfx_tensorboard_callback_free(tfx_tensorboard_callback *cb);

/* ---- tf-explain's callbacks: an explainer's picture in TensorBoard every epoch ---- */

/* At the end of every epoch the callback runs one explainer on its own copy of a few
 * validation images with the model as it is then, renders tf-explain's picture (a grid: one
 * tile per image; activations: one tile per feature map) and writes it as one image summary,
 * step = the epoch (from 0), then flushes. Nothing is written per batch or at train begin/end.
 * Tags (tf-explain 0.3.1's, spaces included):
 *   activations "Activations Visualization", Grad-CAM "Grad CAM", occlusion "Occlusion
 *   Sensitivity", vanilla gradients "VanillaGradients", gradients*inputs "GradientsInputs",
 *   SmoothGrad "SmoothGrad", integrated gradients "IntegratedGradients";
 *   other methods "Method <id>" unless a tag is given.
 * The event file goes into <output_dir>/<run_name> (see the options). Explainers leave the
 * model's weights, optimizer state and random generator alone (SmoothGrad draws from its own
 * generator seeded by tfx_explain_options.seed), so training with or without these callbacks
 * gives bit-identical weights. */
typedef struct tfx_explainer_callback tfx_explainer_callback;

/* Default cap on validation images per callback: more are refused at construction
 * (TFX_EINVAL) unless max_images is raised. Keeps the per-epoch cost and the picture small. */
#define TFX_EXPLAINER_CALLBACK_MAX_IMAGES 16

#define TFX_EXPLAINER_CALLBACK_OPTIONS_VERSION 1
typedef struct tfx_explainer_callback_options {
    unsigned version;
    const char *tag;      /* NULL: tf-explain's tag for the method (above); else UTF-8 */
    const char *run_name; /* subdirectory of output_dir for the event file: one name, UTF-8,
                             without '/' and not "." or ".." (TFX_EINVAL). NULL: the local time
                             at construction as "%Y%m%d-%H%M%S.<microseconds>" (tf-explain's
                             run directory; "-1", "-2", ... appended if it exists); "": output_dir
                             itself. tfx_explainer_callback_run_dir tells which it was. */
    size_t max_images;    /* 0: TFX_EXPLAINER_CALLBACK_MAX_IMAGES */
    int stop_on_error;    /* 0: a failure during training (disk full, out of memory) stops this
                             callback's logging and training continues; non-zero: fit stops
                             and returns TFX_EUSER with the message */
    tfx_clock_fn clock;   /* as in tfx_event_writer_options (also dates run_name) */
    void *clock_user;
} tfx_explainer_callback_options;
#define TFX_EXPLAINER_CALLBACK_OPTIONS_INIT                                                       \
    { TFX_EXPLAINER_CALLBACK_OPTIONS_VERSION, NULL, NULL, 0, 0, NULL, NULL }
TFX_API int tfx_explainer_callback_options_init(tfx_explainer_callback_options *opts, unsigned version);

/* The generic callback. method: a tfx_method; x: n validation images (n*H*W*C floats, NHWC,
 * finite), copied (the caller's array is not kept); class_index: target class (-1: each
 * image's predicted class; ignored by activations); layer_name: the layer for activations
 * (required) and CAM methods (NULL: the default layer), ignored by the others; output_dir:
 * NULL gives tf-explain's default "logs/<method>" (relative to the working directory).
 * explain: the method's options (NULL: the defaults, except that steps = 5 and samples = 5 as
 * in tf-explain's callbacks); its method, class_index and layer_name fields are ignored.
 * m: the model the callback will be given to (fit with another model stops at train begin).
 *
 * Everything is checked now, not in the middle of training: the options, the image count
 * (max_images), the images, and the method itself (the explainer runs once on the images:
 * an unknown layer name gives TFX_EINVAL listing the model's layers, a flat layer for a CAM
 * method, a class out of range...), then the run directory and its event file are created:
 * TFX_EIO with the path when they cannot be. *out is NULL on failure. */
TFX_API int tfx_explainer_callback_new(tfx_explainer_callback **out, tfx_model *m, int method,
                                       const float *x, size_t n, int class_index,
                                       const char *layer_name, const char *output_dir,
                                       const tfx_explain_options *explain,
                                       const tfx_explainer_callback_options *opts);

/* tf-explain's seven callbacks (ActivationsVisualizationCallback, GradCAMCallback, ...):
 * tfx_explainer_callback_new with the method set. */
TFX_API int tfx_activations_visualization_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                                       const float *x, size_t n,
                                                       const char *layers_name,
                                                       const char *output_dir,
                                                       const tfx_explain_options *explain,
                                                       const tfx_explainer_callback_options *opts);
TFX_API int tfx_grad_cam_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x,
                                      size_t n, int class_index, const char *layer_name,
                                      const char *output_dir, const tfx_explain_options *explain,
                                      const tfx_explainer_callback_options *opts);
TFX_API int tfx_occlusion_sensitivity_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                                   const float *x, size_t n, int class_index,
                                                   const char *output_dir,
                                                   const tfx_explain_options *explain,
                                                   const tfx_explainer_callback_options *opts);
TFX_API int tfx_vanilla_gradients_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                               const float *x, size_t n, int class_index,
                                               const char *output_dir,
                                               const tfx_explain_options *explain,
                                               const tfx_explainer_callback_options *opts);
TFX_API int tfx_gradients_inputs_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                              const float *x, size_t n, int class_index,
                                              const char *output_dir,
                                              const tfx_explain_options *explain,
                                              const tfx_explainer_callback_options *opts);
TFX_API int tfx_smooth_grad_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                         const float *x, size_t n, int class_index,
                                         const char *output_dir,
                                         const tfx_explain_options *explain,
                                         const tfx_explainer_callback_options *opts);
TFX_API int tfx_integrated_gradients_callback_new(tfx_explainer_callback **out, tfx_model *m,
                                                  const float *x, size_t n, int class_index,
                                                  const char *output_dir,
                                                  const tfx_explain_options *explain,
                                                  const tfx_explainer_callback_options *opts);

/* The hooks to put in tfx_fit_options.callbacks (borrowed; lives as long as cb). */
TFX_API const tfx_callback *tfx_explainer_callback_hooks(const tfx_explainer_callback *cb);
/* Path of the event file (borrowed; lives as long as cb); NULL for NULL. */
TFX_API const char *tfx_explainer_callback_path(const tfx_explainer_callback *cb);
/* The run directory the event file is in: <output_dir>/<run_name>, the time stamp chosen for
 * run_name = NULL, or output_dir for "" (borrowed; lives as long as cb); NULL for NULL. */
TFX_API const char *tfx_explainer_callback_run_dir(const tfx_explainer_callback *cb);
/* The tag the images are written under (borrowed); NULL for NULL. */
TFX_API const char *tfx_explainer_callback_tag(const tfx_explainer_callback *cb);
/* TFX_OK, or the first error during training (its message in *message when not NULL; the
 * string lives as long as cb). */
TFX_API int tfx_explainer_callback_status(const tfx_explainer_callback *cb, const char **message);
/* Cost so far: wall-clock seconds spent in the epoch hook (explain + render + PNG + write +
 * flush), images written and their PNG bytes. Any pointer may be NULL. */
TFX_API int tfx_explainer_callback_stats(const tfx_explainer_callback *cb, double *seconds,
                                         size_t *images, size_t *png_bytes);
/* Closes the file. NULL: no-op. */
TFX_API void tfx_explainer_callback_free(tfx_explainer_callback *cb);

TFX_END_DECLS

#endif
