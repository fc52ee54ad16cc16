/* Training internals shared by compile, losses, optimizers, fit, evaluate, progress and
 * history (and readable by saving, for the optimizer state). */
#ifndef TFX_MODEL_TRAIN_INTERNAL_H
#define TFX_MODEL_TRAIN_INTERNAL_H

#include "model/model_internal.h"
#include "tfx/train.h"

/* Resolved optimizer hyper-parameters. */
typedef struct tfx__opt_config {
    int kind; /* tfx_optimizer */
    float lr, momentum;
    int nesterov;
    float beta_1, beta_2, rho, epsilon;
} tfx__opt_config;

/* How the loss reads the model output. */
typedef struct tfx__loss_plan {
    int loss;        /* tfx_loss */
    int from_logits; /* 1: the loss reads logits and seeds their gradient */
    size_t top;      /* layer whose output (or pre-activation, skip_act) the seed belongs to */
    int skip_act;    /* seed is the gradient of layer top's pre-activation */
    size_t rows, cols; /* per sample: output positions (h*w) and units per position (c) */
} tfx__loss_plan;

/* The compiled state, m->train (freed through m->train_free). */
typedef struct tfx__train {
    tfx__opt_config opt;
    int metrics;
    tfx__loss_plan plan;
    size_t n_params, n_layers; /* model size at compile: a change needs a new compile */
    float *slot1, *slot2;      /* optimizer state: SGD velocity | Adam m, v | RMSprop ms */
    uint64_t step;             /* optimizer steps taken (Keras iterations) */
    double (*clock)(void);     /* seconds, monotonic; tests replace it */
    struct tfx__progress *sink; /* the running fit's progress output (callbacks' verbose lines), else NULL */
    int stop_training;          /* tfx_model_stop_training: Keras's model.stop_training */
} tfx__train;

/* The compiled state, or TFX_ESTATE (message naming fn) when not compiled / model changed. */
int tfx__train_get(tfx_model *m, const char *fn, tfx__train **out);

/* One optimizer step over n parameters; t is the 1-based step number. */
void tfx__optimizer_step(const tfx__opt_config *c, uint64_t t, size_t n, float *w, const float *g, float *s1,
                         float *s2);
/* Slots the optimizer keeps per parameter (0, 1 or 2). */
int tfx__optimizer_slots(const tfx__opt_config *c);

/* Loss over `rows` rows of `cols` units. z: logits when from_logits, else unused (may be
 * NULL); p: the model output (probabilities). y: int32 labels (one per row) for sparse CE,
 * else float targets (rows * cols). Returns the SUM of per-row losses. grad (optional,
 * rows * cols): d(mean of per-row losses)/d(z or p), i.e. already divided by rows.
 * correct (optional): number of rows the accuracy counts as right. */
double tfx__loss_eval(int loss, int from_logits, const float *z, const float *p, const void *y, size_t rows,
                      size_t cols, float *grad, double *correct);

/* Input validation shared by fit and evaluate: x finite, y finite / labels in range. */
int tfx__train_check_data(const char *fn, const char *what, const tfx__train *t, const tfx_model *m,
                          const float *x, const void *y, size_t n);

/* Logits of the last forward when the plan reads them, else NULL. */
const float *tfx__train_logits(tfx_model *m, const tfx__train *t);
/* Target data of sample i (y typed by the loss). */
const void *tfx__train_y_at(const tfx__train *t, const void *y, size_t i);

/* Inference-mode loss sum and correct count over n contiguous samples in chunks of bs. */
int tfx__train_eval_sums(tfx_model *m, const tfx__train *t, const float *x, const void *y, size_t n, size_t bs,
                         double *loss_sum, double *correct);

/* Progress output (Keras ProgbarLogger). */
typedef struct tfx__progress {
    int verbose;
    FILE *file;
    tfx_write_fn write;
    void *payload;
    double (*clock)(void);
    int has_acc;
    size_t target;
    double start, last_update;
    size_t prev_width;
    char line[1024];
} tfx__progress;
int tfx__progress_epoch_begin(tfx__progress *p, int epoch, int epochs, size_t steps);
int tfx__progress_batch(tfx__progress *p, size_t current, double loss, double acc);
/* Text as it is (callbacks' verbose lines) to the sink, if any. */
int tfx__progress_write(tfx__progress *p, const char *s, size_t len);
int tfx__progress_epoch_end(tfx__progress *p, double loss, double acc, int has_val, double val_loss,
                            double val_acc);

/* History filled by fit. */
int tfx__history_reset(tfx_history *h, size_t epochs, int has_acc, int has_val);
void tfx__history_append(tfx_history *h, int epoch, double loss, double acc, double val_loss, double val_acc);

/* Batch providers (provider.c). fn names the public call in messages. */
/* Version, callbacks and sample shape against the model's input. */
/* p->reset(epoch), its failure turned into fn's error. */
int tfx__provider_reset(const char *fn, const tfx_batch_provider *p, int epoch);
/* p->next into x (and y unless NULL): *got samples (0: end of the pass), at most max, checked like
 * fit's input (finite x and targets, labels in range). */
int tfx__provider_next(const char *fn, const tfx_model *m, const tfx__train *t, const tfx_batch_provider *p,
                       int epoch, size_t batch, float *x, void *y, size_t max, size_t *got);
/* One inference-mode pass (reset, then batches of at most bs into x, y): loss sum, correct count and
 * samples (an empty pass is TFX_EINVAL). */
int tfx__provider_pass(const char *fn, tfx_model *m, const tfx__train *t, const tfx_batch_provider *p, int epoch,
                       float *x, void *y, size_t bs, double *loss_sum, double *correct, size_t *n);

#endif
