/* Keras's CSVLogger: one row per epoch through Python's csv.DictWriter (excel dialect: "\r\n"
 * line ends, floats as repr, "NA" for a missing value). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/options.h"
#include "train/callback_internal.h"

struct tfx_csv_logger_callback {
    tfx_callback hooks;
    tfx_csv_logger_options opt;
    char *filename;
    FILE *file;
    int append_header; /* Keras's flag: set at construction, re-read at train begin with append */
    int header_done;   /* Keras's writer exists: the header (if any) is written for this fit */
    int have_keys;     /* Keras keeps its keys across fits */
    int keys[TFX__KEY_COUNT];
    int n_keys;
};

static const char fn_name[] = "tfx_csv_logger_callback";

TFX__OPTIONS_DESC_V1(csv_options, tfx_csv_logger_options, TFX_CSV_LOGGER_OPTIONS_VERSION, TFX_CSV_LOGGER_OPTIONS_INIT);

int tfx_csv_logger_options_init(tfx_csv_logger_options *opts, unsigned version)
{
    return tfx__options_init(&csv_options, opts, version, "tfx_csv_logger_options_init");
}

static int io_error(const tfx_csv_logger_callback *cb, const char *what, int e)
{
    char buf[128];
    return tfx__error(TFX_EIO, "%s: %s '%.300s': %s", fn_name, what, cb->filename, tfx__strerror(e, buf, sizeof buf));
}

static int on_train_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    (void)logs;
    tfx_csv_logger_callback *cb = payload;
    if (cb->file) fclose(cb->file); /* a previous fit that never reached on_train_end */
    cb->file = NULL;
    cb->header_done = 0;
    if (cb->opt.append) {
        FILE *f = fopen(cb->filename, "rb");
        if (f) {
            /* Keras: a header only when the file's first line is empty */
            cb->append_header = fgetc(f) == EOF;
            fclose(f);
        }
    }
    cb->file = fopen(cb->filename, cb->opt.append ? "ab" : "wb");
    if (!cb->file) return io_error(cb, "cannot open", errno);
    return 0;
}

static int put_value(tfx_csv_logger_callback *cb, double v, int present)
{
    char s[48];
    if (present)
        tfx__py_repr(v, s, sizeof s);
    else
        snprintf(s, sizeof s, "NA");
    return fprintf(cb->file, "%c%s", cb->opt.separator, s) < 0;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    tfx_csv_logger_callback *cb = payload;
    if (!cb->file) return tfx__error(TFX_ESTATE, "%s: on_epoch_end before on_train_begin", fn_name);
    if (!cb->have_keys) {
        /* sorted(logs.keys()), then val_ copies when the first epoch had no validation */
        int has_acc = !isnan(logs->accuracy);
        int has_val = logs->val_samples > 0;
        cb->n_keys = 0;
        if (has_acc) cb->keys[cb->n_keys++] = TFX__KEY_ACCURACY;
        cb->keys[cb->n_keys++] = TFX__KEY_LOSS;
        (void)has_val; /* with or without validation, the val_ columns follow */
        if (has_acc) cb->keys[cb->n_keys++] = TFX__KEY_VAL_ACCURACY;
        cb->keys[cb->n_keys++] = TFX__KEY_VAL_LOSS;
        cb->have_keys = 1;
    }
    int bad = 0;
    if (!cb->header_done && cb->append_header) {
        bad |= fprintf(cb->file, "epoch") < 0;
        for (int k = 0; k < cb->n_keys; k++)
            bad |= fprintf(cb->file, "%c%s", cb->opt.separator, tfx__key_names[cb->keys[k]]) < 0;
        bad |= fputs("\r\n", cb->file) < 0;
    }
    cb->header_done = 1;
    bad |= fprintf(cb->file, "%d", logs->epoch) < 0;
    for (int k = 0; k < cb->n_keys; k++) {
        int key = cb->keys[k];
        int is_val = key == TFX__KEY_VAL_LOSS || key == TFX__KEY_VAL_ACCURACY;
        double v = tfx__log_value(logs, key);
        /* Keras: logs.get(key, "NA"); a later fit may lack a column the first one had */
        int present = is_val ? logs->val_samples > 0 && !(key == TFX__KEY_VAL_ACCURACY && isnan(v))
                             : !(key == TFX__KEY_ACCURACY && isnan(v));
        bad |= put_value(cb, v, present);
    }
    bad |= fputs("\r\n", cb->file) < 0;
    if (bad || fflush(cb->file) != 0) return io_error(cb, "cannot write", errno);
    return 0;
}

static int on_train_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)m;
    (void)logs;
    tfx_csv_logger_callback *cb = payload;
    if (!cb->file) return 0;
    int rc = fclose(cb->file);
    cb->file = NULL;
    if (rc != 0) return io_error(cb, "cannot close", errno);
    return 0;
}

int tfx_csv_logger_callback_new(tfx_csv_logger_callback **out, const char *filename, const tfx_csv_logger_options *opts)
{
    static const char fn[] = "tfx_csv_logger_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(filename);
    TFX__CHECK_ARG(filename[0] != '\0', "%s: filename is empty", fn);
    tfx_csv_logger_options o;
    int rc = tfx__options_copy(&csv_options, &o, opts, fn);
    if (rc) return rc;
    TFX__CHECK_ARG(o.separator != '\0' && o.separator != '"' && o.separator != '\r' && o.separator != '\n',
                   "%s: separator %d must be one character other than '\"', '\\r', '\\n' and '\\0'", fn,
                   (int)o.separator);
    tfx_csv_logger_callback *cb = tfx__calloc(1, sizeof *cb);
    size_t n = strlen(filename) + 1;
    char *copy = tfx__malloc(n);
    if (!cb || !copy) {
        tfx__free(cb);
        tfx__free(copy);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(copy, filename, n);
    cb->filename = copy;
    cb->opt = o;
    cb->append_header = 1;
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_train_begin = on_train_begin;
    hooks.on_epoch_end = on_epoch_end;
    hooks.on_train_end = on_train_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

const tfx_callback *tfx_csv_logger_callback_hooks(const tfx_csv_logger_callback *cb) { return cb ? &cb->hooks : NULL; }

void tfx_csv_logger_callback_free(tfx_csv_logger_callback *cb)
{
    if (!cb) return;
    if (cb->file) fclose(cb->file);
    tfx__free(cb->filename);
    tfx__free(cb);
}
