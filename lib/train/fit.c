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
    int rc = tfx__check_count("tfx_model_fit: callbacks", o->n_callbacks, 1, sizeof(const tfx_callback *));
    if (rc) return rc;
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

/* One fit call: the data split, the buffers a batch needs (allocated once), progress and logs. */
typedef struct fit_run {
    tfx_model *m;
    tfx__train *t;
    const tfx_fit_options *o; /* resolved options */
    tfx_history *history;
    const float *x;
    const void *y;
    const tfx_batch_provider *prov, *val_prov; /* tfx_model_fit_provider: x, y and idx unused */
    size_t n_train, val_n;
    const float *val_x;
    const void *val_y;
    size_t in_sz, rows, cols, y_per, y_elem, steps;
    int has_acc, has_val, bw_flags;
    fit_buffers b;
    tfx__progress prog;
    tfx_train_logs logs;
} fit_run;

static int fit_setup_common(fit_run *r, size_t bs);

/* Validation split, data checks, history, buffers, progress and logs. Nothing to free on failure. */
static int fit_setup(fit_run *r, size_t n)
{
    tfx_model *m = r->m;
    tfx__train *t = r->t;
    const tfx_fit_options *o = r->o;
    /* Keras: validation_data wins; otherwise the last fraction, before any shuffling. */
    r->in_sz = tfx__shape_size(m->input);
    r->n_train = n;
    /* The whole of x and y before splitting them (x + n_train * in_sz must not wrap). */
    int rc = tfx__check_count("tfx_model_fit", n, r->in_sz, sizeof(float));
    if (!rc) rc = tfx__check_count("tfx_model_fit", n, t->plan.rows * t->plan.cols, sizeof(float));
    if (!rc && o->validation_n > 0) {
        rc = tfx__check_count("tfx_model_fit: validation data", o->validation_n, r->in_sz, sizeof(float));
        if (!rc) rc = tfx__check_count("tfx_model_fit: validation data", o->validation_n, t->plan.rows * t->plan.cols,
                                       sizeof(float));
    }
    if (rc) return rc;
    if (o->validation_n > 0) {
        r->val_n = o->validation_n;
        r->val_x = o->validation_x;
        r->val_y = o->validation_y;
    } else if (o->validation_split > 0.0) {
        r->n_train = (size_t)floor((double)n * (1.0 - o->validation_split));
        if (r->n_train == 0 || r->n_train == n)
            return tfx__error(TFX_EINVAL,
                              "tfx_model_fit: validation_split %g of %zu samples leaves %zu for training and %zu for "
                              "validation; both must be non-empty",
                              o->validation_split, n, r->n_train, n - r->n_train);
        r->val_n = n - r->n_train;
        r->val_x = r->x + r->n_train * r->in_sz;
        r->val_y = tfx__train_y_at(t, r->y, r->n_train);
    }
    rc = tfx__train_check_data("tfx_model_fit", "training", t, m, r->x, r->y, r->n_train);
    if (rc) return rc;
    if (r->val_n) {
        rc = tfx__train_check_data("tfx_model_fit", "validation", t, m, r->val_x, r->val_y, r->val_n);
        if (rc) return rc;
    }
    r->steps = (r->n_train + o->batch_size - 1) / o->batch_size;
    return fit_setup_common(r, o->batch_size < r->n_train ? o->batch_size : r->n_train);
}

/* History, the buffers of batches of bs samples, progress and logs. */
static int fit_setup_common(fit_run *r, size_t bs)
{
    tfx_model *m = r->m;
    tfx__train *t = r->t;
    const tfx_fit_options *o = r->o;
    int rc;
    r->has_acc = (t->metrics & TFX_METRIC_ACCURACY) != 0;
    r->has_val = r->val_n > 0;
    const size_t n_epochs = o->epochs > o->initial_epoch ? (size_t)(o->epochs - o->initial_epoch) : 0;
    if (r->history) {
        rc = tfx__history_reset(r->history, n_epochs, r->has_acc, r->has_val);
        if (rc) return rc;
    }

    /* Everything a batch needs, allocated once. */
    r->rows = t->plan.rows;
    r->cols = t->plan.cols;
    const int sparse = t->plan.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    r->y_per = sparse ? r->rows : r->rows * r->cols;
    r->y_elem = sparse ? sizeof(int32_t) : sizeof(float);
    const size_t seed_per = tfx__shape_size(m->layers[t->plan.top]->out);
    fit_buffers *b = &r->b;
    b->idx = r->prov ? NULL : alloc_array(r->n_train, 1, sizeof(size_t));
    b->bx = alloc_array(bs, r->in_sz, sizeof(float));
    b->by = alloc_array(bs, r->y_per, r->y_elem);
    b->seed = alloc_array(bs, seed_per, sizeof(float));
    if ((!r->prov && !b->idx) || !b->bx || !b->by || !b->seed) {
        free_buffers(b);
        return tfx__error(TFX_ENOMEM, "tfx_model_fit: out of memory for batches of %zu samples", bs);
    }
    rc = tfx__model_reserve(m, bs);
    if (rc) {
        free_buffers(b);
        return tfx__error_prefix("tfx_model_fit");
    }

    r->prog.verbose = o->verbose;
    r->prog.file = o->progress_file;
    r->prog.write = o->progress_write;
    r->prog.payload = o->progress_payload;
    r->prog.clock = t->clock;
    r->prog.has_acc = r->has_acc;

    tfx_train_logs *logs = &r->logs;
    memset(logs, 0, sizeof *logs);
    logs->epochs = o->epochs;
    logs->steps = r->steps;
    logs->samples = r->n_train;
    logs->val_samples = r->val_n;
    logs->loss = logs->accuracy = logs->val_loss = logs->val_accuracy = logs->batch_loss = NAN;
    logs->epoch = o->initial_epoch;
    r->bw_flags = TFX__BW_PARAM_GRADS | (t->plan.skip_act ? TFX__BW_SKIP_ACTIVATION : 0);
    return TFX_OK;
}

/* Batch s of an epoch into the batch buffers: *cnt samples, 0 at the end of the epoch. */
static int fit_fill(fit_run *r, int epoch, size_t s, size_t *cnt)
{
    const tfx_fit_options *o = r->o;
    if (r->prov)
        return tfx__provider_next("tfx_model_fit", r->m, r->t, r->prov, epoch, s, r->b.bx, r->b.by, o->batch_size,
                                  cnt);
    size_t start = s * o->batch_size;
    *cnt = 0;
    if (s >= r->steps) return TFX_OK;
    *cnt = r->n_train - start < o->batch_size ? r->n_train - start : o->batch_size;
    for (size_t k = 0; k < *cnt; k++) {
        size_t src = r->b.idx[start + k];
        memcpy(r->b.bx + k * r->in_sz, r->x + src * r->in_sz, r->in_sz * sizeof(float));
        memcpy((char *)r->b.by + k * r->y_per * r->y_elem, tfx__train_y_at(r->t, r->y, src), r->y_per * r->y_elem);
    }
    return TFX_OK;
}

/* Batch s of an epoch (cnt samples, filled): hooks, forward, loss, backward, optimizer step, running means. */
static int fit_batch(fit_run *r, int epoch, size_t s, size_t cnt, double *loss_sum, double *correct_sum,
                     double *seen)
{
    tfx_model *m = r->m;
    tfx__train *t = r->t;
    const tfx_fit_options *o = r->o;
    tfx_train_logs *logs = &r->logs;
    const size_t rows = r->rows;
    logs->batch = s;
    logs->batch_size = cnt;
    logs->batch_loss = NAN;
    int rc = run_hooks(m, o, 0, o->n_callbacks, HOOK_BATCH_BEGIN, logs);
    if (rc) return rc;
    /* Forward, loss and backward back to back: a hook may run predict between batches and
     * reuse the forward buffers. */
    rc = tfx__model_forward(m, r->b.bx, cnt, 1 | TFX__FW_LEAN);
    if (rc) return tfx__error_prefix("tfx_model_fit: epoch %d, batch %zu", epoch + 1, s);
    double correct = 0.0;
    double lsum = tfx__loss_eval(t->plan.loss, t->plan.from_logits, tfx__train_logits(m, t),
                                 tfx__model_layer_output(m, m->n_layers - 1), r->b.by, cnt * rows, r->cols, r->b.seed,
                                 &correct);
    if (!isfinite(lsum))
        return tfx__error(TFX_ERROR,
                          "tfx_model_fit: the loss became %g at epoch %d, batch %zu; training stopped (learning "
                          "rate too high, or inputs too large?)",
                          lsum, epoch + 1, s);
    rc = tfx__model_backward(m, cnt, t->plan.top, r->b.seed, 0, 0, r->bw_flags, NULL, NULL);
    if (rc) return tfx__error_prefix("tfx_model_fit: epoch %d, batch %zu", epoch + 1, s);
    t->step++;
    tfx__optimizer_step(&t->opt, t->step, m->n_params, m->params, m->grads, t->slot1, t->slot2);
    tfx__model_weights_changed(m);

    /* Keras's running means, weighted by the samples of each batch. */
    *loss_sum += lsum;
    *correct_sum += correct;
    *seen += (double)(cnt * rows);
    logs->batch_loss = lsum / (double)(cnt * rows);
    logs->loss = *loss_sum / *seen;
    logs->accuracy = r->has_acc ? *correct_sum / *seen : NAN;
    rc = tfx__progress_batch(&r->prog, s + 1, logs->loss, logs->accuracy);
    if (rc) return rc;
    return run_hooks(m, o, 0, o->n_callbacks, HOOK_BATCH_END, logs);
}

/* Loss and accuracy on the validation data after an epoch, into the logs. */
static int fit_validate(fit_run *r, int epoch)
{
    double vl, vc;
    if (r->val_prov) {
        size_t n;
        int rc = tfx__provider_pass("tfx_model_fit: validation", r->m, r->t, r->val_prov, epoch, r->b.bx, r->b.by,
                                    r->o->batch_size, &vl, &vc, &n);
        if (rc) return rc;
        r->val_n = r->logs.val_samples = n;
    } else {
        int rc = tfx__train_eval_sums(r->m, r->t, r->val_x, r->val_y, r->val_n, r->o->batch_size, &vl, &vc);
        if (rc) return tfx__error_prefix("tfx_model_fit: validation after epoch %d", epoch + 1);
    }
    const double count = (double)r->val_n * (double)r->rows;
    r->logs.val_loss = vl / count;
    r->logs.val_accuracy = r->has_acc ? vc / count : NAN;
    return TFX_OK;
}

/* A provider's pass ended: check it against the announced length; an unknown step count becomes known
 * (Keras's progress bar learns its target after the first epoch). */
static int fit_provider_epoch_done(fit_run *r, int epoch, size_t steps, size_t samples)
{
    if (samples == 0)
        return tfx__error(TFX_EINVAL, "tfx_model_fit: the provider gave no samples in epoch %d", epoch + 1);
    if (r->prov->length && samples != r->prov->length)
        return tfx__error(TFX_EINVAL, "tfx_model_fit: the provider gave %zu samples in epoch %d; its length is %zu",
                          samples, epoch + 1, r->prov->length);
    if (r->steps == 0) {
        r->steps = r->logs.steps = steps;
        r->prog.target = steps;
    }
    if (r->n_train == 0) r->n_train = r->logs.samples = samples;
    return TFX_OK;
}

/* One epoch: shuffle, batches, validation, progress, history and the epoch hooks. */
static int fit_epoch(fit_run *r, int epoch)
{
    tfx_model *m = r->m;
    const tfx_fit_options *o = r->o;
    tfx_train_logs *logs = &r->logs;
    size_t *idx = r->b.idx;
    for (size_t i = 0; idx && i < r->n_train; i++) idx[i] = i;
    if (idx && o->shuffle)
        for (size_t i = r->n_train; i > 1; i--) {
            size_t j = (size_t)tfx__rng_below(&m->rng, i);
            size_t tmp = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = tmp;
        }
    logs->epoch = epoch;
    logs->batch = logs->batch_size = 0;
    logs->loss = logs->accuracy = logs->val_loss = logs->val_accuracy = logs->batch_loss = NAN;
    /* Keras's ProgbarLogger is the first callback: its "Epoch 3/10" comes before the hooks' lines. */
    int rc = tfx__progress_epoch_begin(&r->prog, epoch, o->epochs, r->steps);
    if (rc) return rc;
    if (r->prov) {
        rc = tfx__provider_reset("tfx_model_fit", r->prov, epoch);
        if (rc) return rc;
    }
    rc = run_hooks(m, o, 0, o->n_callbacks, HOOK_EPOCH_BEGIN, logs);
    if (rc) return rc;
    double loss_sum = 0.0, correct_sum = 0.0, seen = 0.0;
    size_t s = 0, samples = 0;
    for (;; s++) {
        size_t cnt;
        rc = fit_fill(r, epoch, s, &cnt);
        if (rc) return rc;
        if (cnt == 0) break;
        samples += cnt;
        rc = fit_batch(r, epoch, s, cnt, &loss_sum, &correct_sum, &seen);
        if (rc) return rc;
        if (r->t->stop_training) break; /* Keras: the rest of the epoch is skipped, validation still runs */
    }
    if (r->prov && !r->t->stop_training) {
        rc = fit_provider_epoch_done(r, epoch, s, samples);
        if (rc) return rc;
    }
    logs->batch = logs->batch_size = 0;
    logs->batch_loss = NAN;
    if (r->has_val) {
        rc = fit_validate(r, epoch);
        if (rc) return rc;
    }
    rc = tfx__progress_epoch_end(&r->prog, logs->loss, logs->accuracy, r->has_val, logs->val_loss,
                                 logs->val_accuracy);
    if (rc) return rc;
    if (r->history)
        tfx__history_append(r->history, epoch, logs->loss, logs->accuracy, logs->val_loss, logs->val_accuracy);
    return run_hooks(m, o, 0, o->n_callbacks, HOOK_EPOCH_END, logs);
}

static int fit_train(fit_run *r);

int tfx_model_fit(tfx_model *m, const float *x, const void *y, size_t n, const tfx_fit_options *o,
                  tfx_history *history)
{
    TFX__CHECK_NULL(m);
    int rc = tfx__model_check_unlocked(m, "tfx_model_fit"); /* a nested fit from a hook */
    if (rc) return rc;
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(y);
    tfx_fit_options opt;
    rc = tfx__options_copy(&fit_options, &opt, o, "tfx_model_fit");
    if (rc) return rc;
    tfx__train *t;
    rc = tfx__train_get(m, "tfx_model_fit", &t);
    if (rc) return rc;
    TFX__CHECK_ARG(n > 0, "tfx_model_fit: n = 0 samples");
    rc = check_options(&opt);
    if (rc) return rc;
    fit_run r = {0};
    r.m = m;
    r.t = t;
    r.o = &opt;
    r.history = history;
    r.x = x;
    r.y = y;
    rc = fit_setup(&r, n);
    if (rc) return rc;
    return fit_train(&r);
}

/* The epochs, between on_train_begin and on_train_end; frees the run's buffers. */
static int fit_train(fit_run *rp)
{
    fit_run r = *rp;
    tfx_model *m = r.m;
    tfx__train *t = r.t;
    const tfx_fit_options opt = *r.o;
    int rc = TFX_OK;
    size_t begun = 0;
    m->fitting = 1; /* from here to the last on_train_end, hooks may only read the model */
    t->stop_training = 0;
    t->sink = &r.prog; /* callbacks' verbose lines */
    /* on_train_begin, one callback at a time so that exactly the begun ones get on_train_end. */
    for (size_t k = 0; k < opt.n_callbacks; k++) {
        begun = k + 1;
        rc = run_hooks(m, &opt, k, 1, HOOK_TRAIN_BEGIN, &r.logs);
        if (rc) break;
    }
    for (int epoch = opt.initial_epoch; rc == TFX_OK && epoch < opt.epochs && !t->stop_training; epoch++)
        rc = fit_epoch(&r, epoch);

    /* on_train_end runs even after a stop; the first error is the one reported. */
    int saved_code = rc;
    char saved_msg[1024] = "";
    if (rc) snprintf(saved_msg, sizeof saved_msg, "%s", tfx_error_last()->message);
    for (size_t k = 0; k < begun; k++) {
        int e = run_hooks(m, &opt, k, 1, HOOK_TRAIN_END, &r.logs);
        if (e && !saved_code) {
            saved_code = e;
            snprintf(saved_msg, sizeof saved_msg, "%s", tfx_error_last()->message);
        }
    }
    m->fitting = 0;
    t->sink = NULL;
    free_buffers(&r.b);
    if (saved_code) return tfx__error(saved_code, "%s", saved_msg);
    tfx_error_clear();
    return TFX_OK;
}

int tfx_model_fit_provider(tfx_model *m, const tfx_batch_provider *train, const tfx_batch_provider *validation,
                           const tfx_fit_options *o, tfx_history *history)
{
    static const char fn[] = "tfx_model_fit_provider";
    TFX__CHECK_NULL(m);
    int rc = tfx__model_check_unlocked(m, fn);
    if (rc) return rc;
    TFX__CHECK_NULL(train);
    tfx_fit_options opt;
    rc = tfx__options_copy(&fit_options, &opt, o, fn);
    if (rc) return rc;
    tfx__train *t;
    rc = tfx__train_get(m, fn, &t);
    if (rc) return rc;
    rc = check_options(&opt);
    if (rc) return rc;
    TFX__CHECK_ARG(opt.validation_split == 0.0 && opt.validation_n == 0,
                   "tfx_model_fit_provider: validation_split %g / validation_n %zu: a provider cannot be split; pass "
                   "a validation provider",
                   opt.validation_split, opt.validation_n);
    rc = tfx__provider_check(fn, "training", m, train);
    if (!rc && validation) rc = tfx__provider_check(fn, "validation", m, validation);
    if (rc) return rc;
    fit_run r = {0};
    r.m = m;
    r.t = t;
    r.o = &opt;
    r.history = history;
    r.prov = train;
    r.val_prov = validation;
    r.in_sz = tfx__shape_size(m->input);
    r.n_train = train->length;
    r.val_n = validation ? 1 : 0; /* the real count is known after the first validation pass */
    r.steps = train->length ? (train->length + opt.batch_size - 1) / opt.batch_size : 0;
    /* Whole batches: the providers are asked for up to batch_size samples (the validation one
     * too, whatever the training provider's length), so the buffers must hold that many. */
    rc = fit_setup_common(&r, opt.batch_size);
    if (rc) return rc;
    /* Unknown validation length: 1 until the first validation pass has counted it (0 would tell
     * the callbacks there is no validation data). */
    r.logs.val_samples = validation ? (validation->length ? validation->length : 1) : 0;
    return fit_train(&r);
}

int tfx_model_stop_training(tfx_model *m)
{
    TFX__CHECK_NULL(m);
    tfx__train *t;
    int rc = tfx__train_get(m, "tfx_model_stop_training", &t);
    if (rc) return rc;
    t->stop_training = 1;
    return TFX_OK;
}
