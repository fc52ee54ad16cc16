/* TensorBoard event files: a writer for scalars and PNG images that `tensorboard --logdir`
 * displays. File format: docs/tensorboard.md (TFRecords of tensorboard.Event protobufs). */
#ifndef TFX_TENSORBOARD_H
#define TFX_TENSORBOARD_H

#include "common.h"
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
 * tag: non-empty UTF-8; '/' groups tags in the UI ("train/epoch_loss"). step: usually the epoch. */
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

TFX_END_DECLS

#endif
