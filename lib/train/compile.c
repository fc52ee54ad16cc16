/* compile: loss plan (logits or probabilities), optimizer configuration and state. */
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/options.h"
#include "train/train_internal.h"

static double monotonic_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void train_free(void *p)
{
    tfx__train *t = p;
    if (!t) return;
    tfx__free(t->slot1);
    tfx__free(t->slot2);
    tfx__free(t);
}

static int train_export(const tfx_model *m, tfx__train_snapshot *s);
static int adopt(tfx_model *m);

int tfx__train_get(tfx_model *m, const char *fn, tfx__train **out)
{
    *out = NULL;
    if (m->resume) { /* a loaded optimizer section: the model is compiled with it now */
        int rc = adopt(m);
        if (rc) return tfx__error_prefix("%s: restoring the loaded optimizer state", fn);
    }
    if (!m->train || m->train_free != train_free)
        return tfx__error(TFX_ESTATE, "%s: the model is not compiled (call tfx_model_compile first)", fn);
    tfx__train *t = m->train;
    if (t->n_params != m->n_params || t->n_layers != m->n_layers)
        return tfx__error(TFX_ESTATE, "%s: layers were added after tfx_model_compile; compile again", fn);
    *out = t;
    return TFX_OK;
}

TFX__OPTIONS_DESC_V1(compile_options, tfx_compile_options, TFX_COMPILE_OPTIONS_VERSION, TFX_COMPILE_OPTIONS_INIT);

int tfx_compile_options_init(tfx_compile_options *opts, unsigned version)
{
    return tfx__options_init(&compile_options, opts, version, "tfx_compile_options_init");
}

/* Cross-entropy on a softmax (sigmoid for BCE) output reads the logits, as Keras does when
 * the output tensor comes from a Softmax/Sigmoid op: fused in the last Dense/Conv2D, or a
 * final Activation layer (then the logits are the previous layer's output). */
static void make_plan(const tfx_model *m, int loss, tfx__loss_plan *p)
{
    size_t L = m->n_layers;
    const tfx_layer *last = m->layers[L - 1];
    memset(p, 0, sizeof *p);
    p->loss = loss;
    p->rows = (size_t)last->out.h * (size_t)last->out.w;
    p->cols = (size_t)last->out.c;
    p->top = L - 1;
    int want = -1;
    if (loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || loss == TFX_LOSS_CATEGORICAL_CROSSENTROPY)
        want = TFX_ACTIVATION_SOFTMAX;
    else if (loss == TFX_LOSS_BINARY_CROSSENTROPY)
        want = TFX_ACTIVATION_SIGMOID;
    if (want < 0) return;
    tfx__model_head h;
    tfx__model_get_head(m, &h);
    if (h.activation != want) return;
    if (!h.standalone) {
        p->from_logits = 1;
        p->skip_act = 1;
    } else if (last->inputs[0] > 0) { /* the logits are the Activation layer's input */
        p->from_logits = 1;
        p->top = (size_t)last->inputs[0] - 1;
    }
}

static int in_unit(float v) { return v >= 0.0f && v < 1.0f; }

int tfx_model_compile(tfx_model *m, const tfx_compile_options *o)
{
    TFX__CHECK_NULL(m);
    /* fit keeps pointers to the compiled state and its optimizer slots */
    int lock_rc = tfx__model_check_unlocked(m, "tfx_model_compile");
    if (lock_rc) return lock_rc;
    tfx_compile_options opt;
    int copy_rc = tfx__options_copy(&compile_options, &opt, o, "tfx_model_compile");
    if (copy_rc) return copy_rc;
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "tfx_model_compile: the model has no layers");
    int graph_rc = tfx__model_check_graph(m);
    if (graph_rc) return tfx__error_prefix("tfx_model_compile");
    TFX__CHECK_ARG(opt.loss >= TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && opt.loss <= TFX_LOSS_MEAN_SQUARED_ERROR,
                   "tfx_model_compile: unknown loss %d", opt.loss);
    TFX__CHECK_ARG(opt.optimizer >= TFX_OPTIMIZER_SGD && opt.optimizer <= TFX_OPTIMIZER_RMSPROP,
                   "tfx_model_compile: unknown optimizer %d", opt.optimizer);
    TFX__CHECK_ARG(isfinite(opt.learning_rate) && opt.learning_rate >= 0.0f,
                   "tfx_model_compile: learning_rate %g must be positive (0: default)", (double)opt.learning_rate);
    TFX__CHECK_ARG(in_unit(opt.momentum), "tfx_model_compile: momentum %g must be in [0, 1)", (double)opt.momentum);
    TFX__CHECK_ARG(in_unit(opt.beta_1), "tfx_model_compile: beta_1 %g must be in [0, 1)", (double)opt.beta_1);
    TFX__CHECK_ARG(in_unit(opt.beta_2), "tfx_model_compile: beta_2 %g must be in [0, 1)", (double)opt.beta_2);
    TFX__CHECK_ARG(in_unit(opt.rho), "tfx_model_compile: rho %g must be in [0, 1)", (double)opt.rho);
    TFX__CHECK_ARG(isfinite(opt.epsilon) && opt.epsilon > 0.0f, "tfx_model_compile: epsilon %g must be positive",
                   (double)opt.epsilon);
    TFX__CHECK_ARG((opt.metrics & ~TFX_METRIC_ACCURACY) == 0,
                   "tfx_model_compile: unknown metric flags 0x%x (metrics = %d)", (unsigned)opt.metrics, opt.metrics);

    tfx__train *t = tfx__calloc(1, sizeof *t);
    if (!t) return tfx__error(TFX_ENOMEM, "tfx_model_compile: out of memory");
    t->opt.kind = opt.optimizer;
    t->opt.lr = opt.learning_rate > 0.0f ? opt.learning_rate : (opt.optimizer == TFX_OPTIMIZER_SGD ? 0.01f : 0.001f);
    t->opt.momentum = opt.momentum;
    t->opt.nesterov = opt.nesterov != 0;
    t->opt.beta_1 = opt.beta_1;
    t->opt.beta_2 = opt.beta_2;
    t->opt.rho = opt.rho;
    t->opt.epsilon = opt.epsilon;
    t->metrics = opt.metrics;
    t->n_params = m->n_params;
    t->n_layers = m->n_layers;
    t->clock = monotonic_clock;
    make_plan(m, opt.loss, &t->plan);
    int slots = tfx__optimizer_slots(&t->opt);
    size_t n = m->n_params ? m->n_params : 1;
    if (slots >= 1 && !(t->slot1 = tfx__alloc_streamed(n, 1))) goto nomem;
    if (slots >= 2 && !(t->slot2 = tfx__alloc_streamed(n, 1))) goto nomem;
    if (m->train && m->train_free) m->train_free(m->train);
    tfx__train_snapshot_free(m->resume); /* a new compile resets the optimizer, as in Keras */
    m->resume = NULL;
    m->train = t;
    m->train_free = train_free;
    m->train_export = train_export;
    return TFX_OK;
nomem:
    train_free(t);
    return tfx__error(TFX_ENOMEM, "tfx_model_compile: out of memory for the optimizer state of %zu parameters",
                      m->n_params);
}

/* The compiled state as the model file stores it (slots borrowed). */
static int train_export(const tfx_model *m, tfx__train_snapshot *s)
{
    tfx__train *t;
    int rc = tfx__train_get((tfx_model *)m, "saving the optimizer", &t);
    if (rc) return rc;
    memset(s, 0, sizeof *s);
    s->loss = t->plan.loss;
    s->optimizer = t->opt.kind;
    s->metrics = t->metrics;
    s->nesterov = t->opt.nesterov;
    s->lr = t->opt.lr;
    s->momentum = t->opt.momentum;
    s->beta_1 = t->opt.beta_1;
    s->beta_2 = t->opt.beta_2;
    s->rho = t->opt.rho;
    s->epsilon = t->opt.epsilon;
    s->step = t->step;
    s->n_params = t->n_params;
    s->n_layers = t->n_layers;
    s->slots = tfx__optimizer_slots(&t->opt);
    s->slot[0] = t->slot1;
    s->slot[1] = t->slot2;
    return TFX_OK;
}

/* Compile with a loaded snapshot's configuration (the loader checked it as compile checks its
 * options) and take over its optimizer state. */
static int adopt(tfx_model *m)
{
    tfx__train_snapshot *s = m->resume;
    if (s->n_params != m->n_params || s->n_layers != m->n_layers) { /* as a compiled model would */
        tfx__train_snapshot_free(s);
        m->resume = NULL;
        return tfx__error(TFX_ESTATE, "layers were added after tfx_model_load; compile again");
    }
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    o.loss = s->loss;
    o.optimizer = s->optimizer;
    o.learning_rate = s->lr > 0.0f ? s->lr : 1.0f; /* the real rate (0 allowed) is set below */
    o.momentum = s->momentum;
    o.nesterov = s->nesterov;
    o.beta_1 = s->beta_1;
    o.beta_2 = s->beta_2;
    o.rho = s->rho;
    o.epsilon = s->epsilon;
    o.metrics = s->metrics;
    m->resume = NULL; /* compile would free it */
    int rc = tfx_model_compile(m, &o);
    if (rc) {
        m->resume = s;
        return rc;
    }
    tfx__train *t = m->train;
    t->opt.lr = s->lr;
    t->step = s->step;
    float **dst[2] = {&t->slot1, &t->slot2}; /* the loader checked the count against the optimizer */
    for (int k = 0; k < s->slots && k < tfx__optimizer_slots(&t->opt); k++) {
        tfx__free(*dst[k]);
        *dst[k] = s->slot[k];
        s->slot[k] = NULL;
    }
    tfx__train_snapshot_free(s);
    return TFX_OK;
}

uint64_t tfx_model_train_steps(const tfx_model *m)
{
    if (m && m->resume) return m->resume->step;
    if (!m || !m->train || m->train_free != train_free) return 0;
    return ((const tfx__train *)m->train)->step;
}

int tfx_model_get_learning_rate(const tfx_model *m, float *lr)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(lr);
    tfx__train *t;
    int rc = tfx__train_get((tfx_model *)m, "tfx_model_get_learning_rate", &t);
    if (rc) return rc;
    *lr = t->opt.lr;
    return TFX_OK;
}

/* Not behind tfx__model_check_unlocked: changing the rate between batches is what Keras's
 * schedulers do, and fit reads it afresh at each step. */
int tfx_model_set_learning_rate(tfx_model *m, float lr)
{
    TFX__CHECK_NULL(m);
    tfx__train *t;
    int rc = tfx__train_get(m, "tfx_model_set_learning_rate", &t);
    if (rc) return rc;
    TFX__CHECK_ARG(isfinite(lr) && lr >= 0.0f, "tfx_model_set_learning_rate: lr %g must be finite and >= 0",
                   (double)lr);
    t->opt.lr = lr;
    return TFX_OK;
}
