/* fit: the Keras training loop (validation split, shuffling, batches, optimizer steps,
 * validation, progress, history, callbacks). */
#include <math.h>
#include <string.h>

#include "core/options.h"
#include "train/train_internal.h"

#define MAX_BATCH (1u << 20)

TFX__OPTIONS_DESC_V1(fit_options, tfx_fit_options, TFX_FIT_OPTIONS_VERSION, TFX_FIT_OPTIONS_INIT);

int tfx_fit_options_init(tfx_fit_options *opts, unsigned version)
{
    return tfx__options_init(&fit_options, opts, version, "tfx_fit_options_init");
}

enum { HOOK_TRAIN_BEGIN, HOOK_TRAIN_END, HOOK_EPOCH_BEGIN, HOOK_EPOCH_END, HOOK_BATCH_BEGIN, HOOK_BATCH_END };
static tfx_callback_fn hook_of(const tfx_callback *cb, int h)
{
    switch (h) {
    case HOOK_TRAIN_BEGIN: return cb->on_train_begin;
    case HOOK_TRAIN_END: return cb->on_train_end;
    case HOOK_EPOCH_BEGIN: return cb->on_epoch_begin;
    case HOOK_EPOCH_END: return cb->on_epoch_end;
    case HOOK_BATCH_BEGIN: return cb->on_batch_begin;
    default: return cb->on_batch_end;
    }
}

/* Run hook h of callbacks [0, count); the first non-zero return stops (TFX_EUSER). The
 * callback's own libtfx error, if it left one, becomes the message. */
static int run_hooks(tfx_model *m, const tfx_fit_options *o, size_t first, size_t count, int h,
                     const tfx_train_logs *logs)
{
    static const char *const names[] = {"on_train_begin", "on_train_end", "on_epoch_begin",
                                        "on_epoch_end",   "on_batch_begin", "on_batch_end"};
    for (size_t k = first; k < first + count; k++) {
        const tfx_callback *cb = o->callbacks[k];
        tfx_callback_fn fn = hook_of(cb, h);
        if (!fn) continue;
        tfx_error_clear();
        int r = fn(m, logs, cb->payload);
        if (r == 0) continue;
        const tfx_error *e = tfx_error_last();
        if (e->code != TFX_OK && e->message[0]) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", e->message);
            return tfx__error(TFX_EUSER, "callback %zu (%s) stopped training: %s", k, names[h], msg);
        }
        return tfx__error(TFX_EUSER, "callback returned %d (callback %zu, %s)", r, k, names[h]);
    }
    return TFX_OK;
}

typedef struct fit_buffers {
    size_t *idx;
    float *bx, *seed;
    void *by;
} fit_buffers;

static void free_buffers(fit_buffers *b)
{
    tfx__free(b->idx);
    tfx__free(b->bx);
    tfx__free(b->seed);
    tfx__free(b->by);
}

static void *alloc_array(size_t a, size_t b, size_t elem)
{
    size_t n;
    if (tfx__mul_size(a, b, &n) || tfx__mul_size(n, elem, &n)) return NULL;
    return tfx__malloc(n ? n : 1);
}

static int check_options(const tfx_fit_options *o)
{
    TFX__CHECK_ARG(o->batch_size > 0 && o->batch_size <= MAX_BATCH, "tfx_model_fit: batch_size %zu must be in 1..%u",
                   o->batch_size, MAX_BATCH);
    TFX__CHECK_ARG(o->epochs >= 0, "tfx_model_fit: epochs %d must not be negative", o->epochs);
    TFX__CHECK_ARG(o->initial_epoch >= 0, "tfx_model_fit: initial_epoch %d must not be negative", o->initial_epoch);
    TFX__CHECK_ARG(o->validation_split >= 0.0 && o->validation_split < 1.0,
                   "tfx_model_fit: validation_split %g must be in [0, 1)", o->validation_split);
    TFX__CHECK_ARG(o->verbose >= 0 && o->verbose <= 2, "tfx_model_fit: verbose %d must be 0, 1 or 2", o->verbose);
    TFX__CHECK_ARG(o->n_callbacks == 0 || o->callbacks, "tfx_model_fit: %zu callbacks but the array is NULL",
                   o->n_callbacks);
    for (size_t k = 0; k < o->n_callbacks; k++) {
        const tfx_callback *cb = o->callbacks[k];
        TFX__CHECK_ARG(cb != NULL, "tfx_model_fit: callbacks[%zu] is NULL", k);
        if (cb->version == 0 || cb->version > TFX_CALLBACK_VERSION)
            return tfx__error(TFX_EVERSION, "tfx_model_fit: callbacks[%zu] has version %u (this library knows up to %u)",
                              k, cb->version, (unsigned)TFX_CALLBACK_VERSION);
    }
    if (o->validation_n > 0) {
        TFX__CHECK_ARG(o->validation_x && o->validation_y,
                       "tfx_model_fit: validation_n = %zu but validation_x or validation_y is NULL", o->validation_n);
    }
    return TFX_OK;
}

int tfx_model_fit(tfx_model *m, const float *x, const void *y, size_t n, const tfx_fit_options *o,
                  tfx_history *history)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(y);
    tfx_fit_options opt;
    int copy_rc = tfx__options_copy(&fit_options, &opt, o, "tfx_model_fit");
    if (copy_rc) return copy_rc;
    tfx__train *t;
    int rc = tfx__train_get(m, "tfx_model_fit", &t);
    if (rc) return rc;
    TFX__CHECK_ARG(n > 0, "tfx_model_fit: n = 0 samples");
    rc = check_options(&opt);
    if (rc) return rc;

    /* Keras: validation_data wins; otherwise the last fraction, before any shuffling. */
    const size_t in_sz = tfx__shape_size(m->input);
    size_t n_train = n, val_n = 0;
    const float *val_x = NULL;
    const void *val_y = NULL;
    if (opt.validation_n > 0) {
        val_n = opt.validation_n;
        val_x = opt.validation_x;
        val_y = opt.validation_y;
    } else if (opt.validation_split > 0.0) {
        n_train = (size_t)floor((double)n * (1.0 - opt.validation_split));
        if (n_train == 0 || n_train == n)
            return tfx__error(TFX_EINVAL,
                              "tfx_model_fit: validation_split %g of %zu samples leaves %zu for training and %zu for "
                              "validation; both must be non-empty",
                              opt.validation_split, n, n_train, n - n_train);
        val_n = n - n_train;
        val_x = x + n_train * in_sz;
        val_y = tfx__train_y_at(t, y, n_train);
    }
    rc = tfx__train_check_data("tfx_model_fit", "training", t, m, x, y, n_train);
    if (rc) return rc;
    if (val_n) {
        rc = tfx__train_check_data("tfx_model_fit", "validation", t, m, val_x, val_y, val_n);
        if (rc) return rc;
    }

    const int has_acc = (t->metrics & TFX_METRIC_ACCURACY) != 0, has_val = val_n > 0;
    const size_t n_epochs = opt.epochs > opt.initial_epoch ? (size_t)(opt.epochs - opt.initial_epoch) : 0;
    if (history) {
        rc = tfx__history_reset(history, n_epochs, has_acc, has_val);
        if (rc) return rc;
    }

    /* Everything a batch needs, allocated once. */
    const size_t bs = opt.batch_size < n_train ? opt.batch_size : n_train;
    const size_t rows = t->plan.rows, cols = t->plan.cols, L = m->n_layers;
    const int sparse = t->plan.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    const size_t y_per = sparse ? rows : rows * cols;
    const size_t y_elem = sparse ? sizeof(int32_t) : sizeof(float);
    const size_t seed_per = tfx__shape_size(m->layers[t->plan.top]->out);
    fit_buffers b = {0};
    b.idx = alloc_array(n_train, 1, sizeof(size_t));
    b.bx = alloc_array(bs, in_sz, sizeof(float));
    b.by = alloc_array(bs, y_per, y_elem);
    b.seed = alloc_array(bs, seed_per, sizeof(float));
    if (!b.idx || !b.bx || !b.by || !b.seed) {
        free_buffers(&b);
        return tfx__error(TFX_ENOMEM, "tfx_model_fit: out of memory for batches of %zu samples", bs);
    }
    rc = tfx__model_reserve(m, bs);
    if (rc) {
        free_buffers(&b);
        return tfx__error_prefix("tfx_model_fit");
    }

    const size_t steps = (n_train + opt.batch_size - 1) / opt.batch_size;
    tfx__progress prog = {0};
    prog.verbose = opt.verbose;
    prog.file = opt.progress_file;
    prog.write = opt.progress_write;
    prog.payload = opt.progress_payload;
    prog.clock = t->clock;
    prog.has_acc = has_acc;

    tfx_train_logs logs;
    memset(&logs, 0, sizeof logs);
    logs.epochs = opt.epochs;
    logs.steps = steps;
    logs.samples = n_train;
    logs.val_samples = val_n;
    logs.loss = logs.accuracy = logs.val_loss = logs.val_accuracy = logs.batch_loss = NAN;
    logs.epoch = opt.initial_epoch;

    const int bw_flags = TFX__BW_PARAM_GRADS | (t->plan.skip_act ? TFX__BW_SKIP_ACTIVATION : 0);
    size_t begun = 0;
    rc = TFX_OK;
    /* on_train_begin, one callback at a time so that exactly the begun ones get on_train_end. */
    for (size_t k = 0; k < opt.n_callbacks; k++) {
        begun = k + 1;
        rc = run_hooks(m, &opt, k, 1, HOOK_TRAIN_BEGIN, &logs);
        if (rc) break;
    }

    for (int epoch = opt.initial_epoch; rc == TFX_OK && epoch < opt.epochs; epoch++) {
        for (size_t i = 0; i < n_train; i++) b.idx[i] = i;
        if (opt.shuffle)
            for (size_t i = n_train; i > 1; i--) {
                size_t j = (size_t)tfx__rng_below(&m->rng, i);
                size_t tmp = b.idx[i - 1];
                b.idx[i - 1] = b.idx[j];
                b.idx[j] = tmp;
            }
        logs.epoch = epoch;
        logs.batch = logs.batch_size = 0;
        logs.loss = logs.accuracy = logs.val_loss = logs.val_accuracy = logs.batch_loss = NAN;
        rc = run_hooks(m, &opt, 0, opt.n_callbacks, HOOK_EPOCH_BEGIN, &logs);
        if (rc) break;
        rc = tfx__progress_epoch_begin(&prog, epoch, opt.epochs, steps);
        if (rc) break;
        double loss_sum = 0.0, correct_sum = 0.0, seen = 0.0;
        for (size_t s = 0; s < steps; s++) {
            size_t start = s * opt.batch_size;
            size_t cnt = n_train - start < opt.batch_size ? n_train - start : opt.batch_size;
            logs.batch = s;
            logs.batch_size = cnt;
            logs.batch_loss = NAN;
            rc = run_hooks(m, &opt, 0, opt.n_callbacks, HOOK_BATCH_BEGIN, &logs);
            if (rc) break;
            for (size_t k = 0; k < cnt; k++) {
                size_t src = b.idx[start + k];
                memcpy(b.bx + k * in_sz, x + src * in_sz, in_sz * sizeof(float));
                memcpy((char *)b.by + k * y_per * y_elem, tfx__train_y_at(t, y, src), y_per * y_elem);
            }
            /* Forward, loss and backward back to back: a hook may run predict between batches
             * and reuse the forward buffers. */
            rc = tfx__model_forward(m, b.bx, cnt, 1 | TFX__FW_LEAN);
            if (rc) {
                tfx__error_prefix("tfx_model_fit: epoch %d, batch %zu", epoch + 1, s);
                break;
            }
            double correct = 0.0;
            double lsum = tfx__loss_eval(t->plan.loss, t->plan.from_logits, tfx__train_logits(m, t),
                                         tfx__model_layer_output(m, L - 1), b.by, cnt * rows, cols, b.seed, &correct);
            if (!isfinite(lsum)) {
                rc = tfx__error(TFX_ERROR,
                                "tfx_model_fit: the loss became %g at epoch %d, batch %zu; training stopped (learning "
                                "rate too high, or inputs too large?)",
                                lsum, epoch + 1, s);
                break;
            }
            rc = tfx__model_backward(m, cnt, t->plan.top, b.seed, 0, 0, bw_flags, NULL, NULL);
            if (rc) {
                tfx__error_prefix("tfx_model_fit: epoch %d, batch %zu", epoch + 1, s);
                break;
            }
            t->step++;
            tfx__optimizer_step(&t->opt, t->step, m->n_params, m->params, m->grads, t->slot1, t->slot2);
            tfx__model_weights_changed(m);

            /* Keras's running means, weighted by the samples of each batch. */
            loss_sum += lsum;
            correct_sum += correct;
            seen += (double)(cnt * rows);
            logs.batch_loss = lsum / (double)(cnt * rows);
            logs.loss = loss_sum / seen;
            logs.accuracy = has_acc ? correct_sum / seen : NAN;
            rc = tfx__progress_batch(&prog, s + 1, logs.loss, logs.accuracy);
            if (rc) break;
            rc = run_hooks(m, &opt, 0, opt.n_callbacks, HOOK_BATCH_END, &logs);
            if (rc) break;
        }
        if (rc) break;
        logs.batch = logs.batch_size = 0;
        logs.batch_loss = NAN;
        if (has_val) {
            double vl, vc;
            rc = tfx__train_eval_sums(m, t, val_x, val_y, val_n, opt.batch_size, &vl, &vc);
            if (rc) {
                tfx__error_prefix("tfx_model_fit: validation after epoch %d", epoch + 1);
                break;
            }
            logs.val_loss = vl / ((double)val_n * (double)rows);
            logs.val_accuracy = has_acc ? vc / ((double)val_n * (double)rows) : NAN;
        }
        rc = tfx__progress_epoch_end(&prog, logs.loss, logs.accuracy, has_val, logs.val_loss, logs.val_accuracy);
        if (rc) break;
        if (history) tfx__history_append(history, epoch, logs.loss, logs.accuracy, logs.val_loss, logs.val_accuracy);
        rc = run_hooks(m, &opt, 0, opt.n_callbacks, HOOK_EPOCH_END, &logs);
    }

    /* on_train_end runs even after a stop; the first error is the one reported. */
    int saved_code = rc;
    char saved_msg[1024] = "";
    if (rc) snprintf(saved_msg, sizeof saved_msg, "%s", tfx_error_last()->message);
    for (size_t k = 0; k < begun; k++) {
        int r = run_hooks(m, &opt, k, 1, HOOK_TRAIN_END, &logs);
        if (r && !saved_code) {
            saved_code = r;
            snprintf(saved_msg, sizeof saved_msg, "%s", tfx_error_last()->message);
        }
    }
    free_buffers(&b);
    if (saved_code) return tfx__error(saved_code, "%s", saved_msg);
    tfx_error_clear();
    return TFX_OK;
}
