/* What the built-in Keras callbacks share: monitored keys and modes, the verbose lines (to the
 * running fit's progress sink), Python's float formatting, and a snapshot of the weights. */
#ifndef TFX_TRAIN_CALLBACK_INTERNAL_H
#define TFX_TRAIN_CALLBACK_INTERNAL_H

#include "tfx/callbacks.h"
#include "train/train_internal.h"

/* The quantities a callback can monitor or put in a file name. */
enum { TFX__KEY_LOSS, TFX__KEY_ACCURACY, TFX__KEY_VAL_LOSS, TFX__KEY_VAL_ACCURACY, TFX__KEY_COUNT };
extern const char *const tfx__key_names[TFX__KEY_COUNT];

/* Index of a log key ("loss", "accuracy", "val_loss", "val_accuracy"), or -1. */
int tfx__log_key(const char *name);
/* Its value in logs as Keras's callbacks see it: rounded to float32 (NaN: not available). */
double tfx__log_value(const tfx_train_logs *logs, int key);

/* The monitor and mode of a callback, checked: TFX_EINVAL naming fn and the field. On success
 * *key is the key index. */
int tfx__check_monitor(const char *fn, const char *monitor, int mode, int *key);
/* Whether the key can have a value in this fit (on_train_begin's logs: validation data,
 * accuracy compiled); TFX_EINVAL "fn: monitor 'val_loss' is not available ..." if not. */
int tfx__check_available(const char *fn, tfx_model *m, const tfx_train_logs *logs, int key, const char *what);

/* A verbose line as Keras's io_utils.print_msg writes it: the text and "\n", to the running
 * fit's progress sink (FILE* or write function); nothing when there is none. */
int tfx__callback_print(tfx_model *m, const char *fmt, ...) TFX__PRINTF(2, 3);

/* Python's repr(float) (shortest round trip: "0.1", "1e-05", "inf", "nan"). cap >= 32. */
void tfx__py_repr(double v, char *out, size_t cap);

/* Python's str.format for a file name template: "{epoch:02d}", "{val_loss:.2f}", "{{", ...
 * epoch is an int field, the log keys float fields. check: only parse (values unused) and
 * report the first problem as TFX_EINVAL naming fn; keys_used gets a bit per log key used. */
int tfx__format_path(const char *fn, const char *tmpl, int epoch, const tfx_train_logs *logs, char *out, size_t cap,
                     unsigned *keys_used);

/* A copy of every weight of the model (trainable and non-trainable: BN moving statistics). */
typedef struct tfx__weights_copy {
    float *data;
    size_t n;
} tfx__weights_copy;
int tfx__weights_save(const tfx_model *m, tfx__weights_copy *w, const char *fn);
void tfx__weights_restore(tfx_model *m, const tfx__weights_copy *w);
void tfx__weights_free(tfx__weights_copy *w);

#endif
