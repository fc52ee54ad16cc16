/* tfx_explain over a batch provider: one pass, batch by batch, each batch through the engine
 * (tfx__explain_run) and its maps to the caller's sink, so memory is bounded by one batch.
 * The provider conventions (return codes, messages) are those of lib/train/provider.c, which
 * explain may not include (tests/layout/check_includes.py); the helper below mirrors it. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "explain/explain_internal.h"

/* One pass; x holds bs images. rng carries the noise tunnels' stream from batch to batch. */
static int pass(const char *fn, tfx_model *m, const tfx_batch_provider *data, tfx_explain_options *opt, float *x,
                size_t bs, size_t in_sz, tfx_attribution_sink_fn sink, void *payload, size_t *n)
{
    const int *classes = opt->class_indices;
    tfx__rng rng;
    tfx__rng_seed(&rng, opt->seed);
    tfx__explain_hooks hooks = {NULL, 0, &rng};
    tfx_error_clear();
    int r = data->reset(data->payload, 0);
    if (r) return tfx__callback_failed(fn, "provider reset", r);
    size_t total = 0;
    for (size_t b = 0;; b++) {
        size_t got = 0;
        tfx_error_clear();
        r = data->next(data->payload, x, NULL, bs, &got);
        if (r) return tfx__callback_failed(fn, "provider next", r);
        if (got == 0) break;
        if (got > bs)
            return tfx__error(TFX_EINVAL, "%s: provider gave %zu images for a batch of at most %zu (batch %zu)", fn,
                              got, bs, b);
        if (got > SIZE_MAX - total || (data->length && total + got > data->length))
            return tfx__error(TFX_EINVAL, "%s: the provider gave more than its length %zu images (batch %zu)", fn,
                              data->length, b);
        if (classes) opt->class_indices = classes + total; /* the entries of this batch's images */
        tfx_attribution *a = NULL; /* tfx__explain_run scans x for NaN/Inf, as tfx_explain does */
        int rc = tfx__explain_run(m, x, got, opt, &hooks, &a);
        if (rc) return tfx__error_prefix("%s: batch %zu (first image %zu)", fn, b, total);
        tfx_error_clear();
        r = sink(a, total, payload);
        tfx_attribution_free(a);
        if (r) return tfx__callback_failed(fn, "the attribution sink", r);
        total += got;
    }
    if (data->length && total != data->length)
        return tfx__error(TFX_EINVAL, "%s: the provider gave %zu images; its length is %zu", fn, total, data->length);
    if (n) *n = total;
    return TFX_OK;
}

int tfx_explain_provider(tfx_model *m, const tfx_batch_provider *data, const tfx_explain_options *o,
                         tfx_attribution_sink_fn sink, void *payload, size_t *n)
{
    static const char fn[] = "tfx_explain_provider";
    if (n) *n = 0;
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(data);
    TFX__CHECK_NULL(sink);
    tfx_explain_options opt;
    int rc = tfx__explain_copy_options(o, &opt, fn);
    if (rc) return rc;
    TFX__CHECK_ARG(opt.batch_size <= TFX__MAX_BATCH, "%s: batch_size %zu is larger than %zu", fn, opt.batch_size,
                   TFX__MAX_BATCH);
    if (m->n_layers == 0) return tfx__error(TFX_ESTATE, "%s: the model has no layers", fn);
    rc = tfx__provider_check(fn, "the", m, data);
    if (rc) return rc;
    if (opt.class_indices && data->length == 0)
        return tfx__error(TFX_EINVAL, "%s: class_indices needs a provider with a known length (length is 0)", fn);
    const size_t bs = opt.batch_size ? opt.batch_size : m->batch_size ? m->batch_size : 1;
    const size_t in_sz = tfx__shape_size(m->input);
    rc = tfx__check_count(fn, bs, in_sz, sizeof(float));
    if (rc) return rc;
    float *x = tfx__malloc(bs * in_sz * sizeof(float));
    if (!x) return tfx__error(TFX_ENOMEM, "%s: out of memory for batches of %zu images", fn, bs);
    rc = pass(fn, m, data, &opt, x, bs, in_sz, sink, payload, n);
    tfx__free(x);
    return rc;
}
