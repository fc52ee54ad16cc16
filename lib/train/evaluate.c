/* evaluate, and the input checks and inference-mode loss sums fit shares with it. */
#include <math.h>
#include <stdio.h>

#include "train/train_internal.h"

const float *tfx__train_logits(tfx_model *m, const tfx__train *t)
{
    if (!t->plan.from_logits) return NULL;
    return t->plan.skip_act ? tfx__model_layer_preactivation(m, t->plan.top) : tfx__model_layer_output(m, t->plan.top);
}

const void *tfx__train_y_at(const tfx__train *t, const void *y, size_t i)
{
    if (t->plan.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) return (const int32_t *)y + i * t->plan.rows;
    return (const float *)y + i * t->plan.rows * t->plan.cols;
}

int tfx__train_check_data(const char *fn, const char *what, const tfx__train *t, const tfx_model *m,
                          const float *x, const void *y, size_t n)
{
    size_t in_sz = tfx__shape_size(m->input), total = n * in_sz;
    size_t rows = t->plan.rows, cols = t->plan.cols;
    /* Counts in bytes: a float count that fits can still wrap when multiplied by 4. */
    int rc = tfx__check_count(fn, n, in_sz, sizeof(float));
    if (!rc) rc = tfx__check_count(fn, n, rows * cols, sizeof(float));
    if (rc) return rc;
    char name[32];
    snprintf(name, sizeof name, "%s x", what);
    rc = tfx__check_finite(fn, name, x, total, in_sz);
    if (rc) return rc;
    if (t->plan.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) {
        const int32_t *lab = y;
        total = n * rows;
        for (size_t i = 0; i < total; i++)
            if (lab[i] < 0 || (size_t)lab[i] >= cols)
                return tfx__error(TFX_EINVAL, "%s: %s label y[%zu] = %d (sample %zu) is out of range [0, %zu)", fn,
                                  what, i, (int)lab[i], i / rows, cols);
    } else {
        const float *tg = y;
        total = n * rows * cols;
        for (size_t i = 0; i < total; i++)
            if (!isfinite(tg[i]))
                return tfx__error(TFX_EINVAL, "%s: %s target y[%zu] (sample %zu) is not finite", fn, what, i,
                                  i / (rows * cols));
    }
    return TFX_OK;
}

int tfx__train_eval_sums(tfx_model *m, const tfx__train *t, const float *x, const void *y, size_t n, size_t bs,
                         double *loss_sum, double *correct)
{
    size_t in_sz = tfx__shape_size(m->input), L = m->n_layers;
    double ls = 0.0, ok = 0.0;
    for (size_t start = 0; start < n; start += bs) {
        size_t b = n - start < bs ? n - start : bs;
        int rc = tfx__model_forward(m, x + start * in_sz, b, TFX__FW_RELEASE);
        if (rc) return rc;
        double c = 0.0;
        ls += tfx__loss_eval(t->plan.loss, t->plan.from_logits, tfx__train_logits(m, t), tfx__model_layer_output(m, L - 1),
                             tfx__train_y_at(t, y, start), b * t->plan.rows, t->plan.cols, NULL, &c);
        ok += c;
    }
    *loss_sum = ls;
    *correct = ok;
    return TFX_OK;
}

int tfx_model_evaluate(tfx_model *m, const float *x, const void *y, size_t n, double *loss, double *accuracy)
{
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_NULL(y);
    TFX__CHECK_NULL(loss);
    TFX__CHECK_ARG(n > 0, "tfx_model_evaluate: n = 0 samples");
    tfx__train *t;
    int rc = tfx__train_get(m, "tfx_model_evaluate", &t);
    if (rc) return rc;
    rc = tfx__train_check_data("tfx_model_evaluate", "input", t, m, x, y, n);
    if (rc) return rc;
    double ls, ok;
    rc = tfx__train_eval_sums(m, t, x, y, n, m->batch_size, &ls, &ok);
    if (rc) return tfx__error_prefix("tfx_model_evaluate");
    double rows = (double)n * (double)t->plan.rows;
    *loss = ls / rows;
    if (accuracy) *accuracy = ok / rows;
    return TFX_OK;
}
