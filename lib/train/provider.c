/* Batch providers: the checks fit, evaluate and predict share, and evaluate / predict over a
 * provider (fit's own loop is in fit.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "train/train_internal.h"

int tfx__provider_reset(const char *fn, const tfx_batch_provider *p, int epoch)
{
    tfx_error_clear();
    int r = p->reset(p->payload, epoch);
    return r ? tfx__callback_failed(fn, "provider reset", r) : TFX_OK;
}

int tfx__provider_next(const char *fn, const tfx_model *m, const tfx__train *t, const tfx_batch_provider *p, int epoch,
                       size_t batch, float *x, void *y, size_t max, size_t *got)
{
    size_t n = 0;
    tfx_error_clear();
    int r = p->next(p->payload, x, y, max, &n);
    *got = 0;
    if (r) return tfx__callback_failed(fn, "provider next", r);
    if (n > max)
        return tfx__error(TFX_EINVAL, "%s: provider gave %zu samples for a batch of at most %zu (epoch %d, batch %zu)",
                          fn, n, max, epoch + 1, batch);
    if (n == 0) return TFX_OK;
    char what[64];
    snprintf(what, sizeof what, "epoch %d, batch %zu", epoch + 1, batch);
    int rc = y ? tfx__train_check_data(fn, what, t, m, x, y, n)
               : tfx__check_finite(fn, what, x, n * tfx__shape_size(m->input), tfx__shape_size(m->input));
    if (rc) return rc;
    *got = n;
    return TFX_OK;
}

int tfx__provider_pass(const char *fn, tfx_model *m, const tfx__train *t, const tfx_batch_provider *p, int epoch,
                       float *x, void *y, size_t bs, double *loss_sum, double *correct, size_t *n)
{
    int rc = tfx__provider_reset(fn, p, epoch);
    if (rc) return rc;
    double ls = 0.0, ok = 0.0;
    size_t total = 0;
    for (size_t s = 0;; s++) {
        size_t got;
        rc = tfx__provider_next(fn, m, t, p, epoch, s, x, y, bs, &got);
        if (rc) return rc;
        if (got == 0) break;
        double l, c;
        rc = tfx__train_eval_sums(m, t, x, y, got, bs, &l, &c);
        if (rc) return tfx__error_prefix("%s", fn);
        ls += l;
        ok += c;
        total += got;
    }
    if (total == 0) return tfx__error(TFX_EINVAL, "%s: the provider gave no samples", fn);
    if (p->length && total != p->length)
        return tfx__error(TFX_EINVAL, "%s: the provider gave %zu samples; its length is %zu", fn, total, p->length);
    *loss_sum = ls;
    *correct = ok;
    *n = total;
    return TFX_OK;
}

static void *alloc_batch(size_t bs, size_t per, size_t elem)
{
    size_t b;
    if (tfx__mul_size(bs, per, &b) || tfx__mul_size(b, elem, &b)) return NULL;
    return tfx__malloc(b ? b : 1);
}

int tfx_model_evaluate_provider(tfx_model *m, const tfx_batch_provider *data, double *loss, double *accuracy)
{
    static const char fn[] = "tfx_model_evaluate_provider";
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(data);
    TFX__CHECK_NULL(loss);
    tfx__train *t;
    int rc = tfx__train_get(m, fn, &t);
    if (rc) return rc;
    rc = tfx__provider_check(fn, "the", m, data);
    if (rc) return rc;
    const size_t bs = m->batch_size;
    const int sparse = t->plan.loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY;
    float *x = alloc_batch(bs, tfx__shape_size(m->input), sizeof(float));
    void *y =
        alloc_batch(bs, sparse ? t->plan.rows : t->plan.rows * t->plan.cols, sparse ? sizeof(int32_t) : sizeof(float));
    if (!x || !y) {
        tfx__free(x);
        tfx__free(y);
        return tfx__error(TFX_ENOMEM, "%s: out of memory for batches of %zu samples", fn, bs);
    }
    double ls, ok;
    size_t n;
    rc = tfx__provider_pass(fn, m, t, data, 0, x, y, bs, &ls, &ok, &n);
    tfx__free(x);
    tfx__free(y);
    if (rc) return rc;
    double rows = (double)n * (double)t->plan.rows;
    *loss = ls / rows;
    if (accuracy) *accuracy = ok / rows;
    return TFX_OK;
}

int tfx_model_predict_provider(tfx_model *m, const tfx_batch_provider *data, tfx_predict_sink_fn sink, void *payload,
                               size_t *n)
{
    static const char fn[] = "tfx_model_predict_provider";
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(data);
    TFX__CHECK_NULL(sink);
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "%s: the model has no layers", fn);
    int rc = tfx__provider_check(fn, "the", m, data);
    if (rc) return rc;
    const size_t bs = m->batch_size, in_sz = tfx__shape_size(m->input);
    float *x = alloc_batch(bs, in_sz, sizeof(float));
    if (!x) return tfx__error(TFX_ENOMEM, "%s: out of memory for batches of %zu samples", fn, bs);
    rc = tfx__provider_reset(fn, data, 0);
    size_t total = 0;
    for (size_t s = 0; !rc; s++) {
        size_t got;
        rc = tfx__provider_next(fn, m, NULL, data, 0, s, x, NULL, bs, &got);
        if (rc || got == 0) break;
        rc = tfx__model_forward(m, x, got, TFX__FW_LEAN | TFX__FW_RELEASE);
        if (rc) {
            rc = tfx__error_prefix("%s", fn);
            break;
        }
        tfx_error_clear();
        int r = sink(m->acts[m->n_layers], total, got, payload);
        if (r) {
            rc = tfx__callback_failed(fn, "the output sink", r);
            break;
        }
        total += got;
    }
    tfx__free(x);
    if (rc) return rc;
    if (data->length && total != data->length)
        return tfx__error(TFX_EINVAL, "%s: the provider gave %zu samples; its length is %zu", fn, total, data->length);
    if (n) *n = total;
    return TFX_OK;
}
