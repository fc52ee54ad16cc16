/* The layer vtable (lib/layers/layer.h) is the only place that knows a layer kind, so what the
 * code above it relies on is checked here for every registered kind: the registry maps each
 * kind to its own table, the optional entries come in the pairs their users need, every
 * configuration record reads back into the configuration it was written from (and refuses
 * garbage), the model keeps l->params pointing into its flat arrays as they grow, and a layer
 * runs on a tfx__layer_run alone, without a model behind it. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "model/model_internal.h"
#include "tfx/tfx.h"

#define OK(call) assert_int_equal((call), TFX_OK)
/* The last tfx_layer_kind: every kind up to it is registered and tested here. */
#define LAST_KIND TFX_LAYER_MULTIPLY

static void test_registry_and_entries(void **state)
{
    (void)state;
    int kinds = 0;
    assert_null(tfx__layer_ops_for_kind(0));
    assert_null(tfx__layer_ops_for_kind(-1));
    for (int k = 1; tfx__layer_ops_for_kind(k); k++) {
        const tfx__layer_ops *o = tfx__layer_ops_for_kind(k);
        kinds++;
        assert_int_equal(o->kind, k);
        assert_non_null(o->base_name);
        assert_non_null(o->type_name);
        if (o->traits & TFX__TRAIT_MULTI_INPUT) { /* Add, Concatenate, Multiply: the k-input entries */
            assert_non_null(o->infer_n);
            assert_non_null(o->forward_n);
            assert_non_null(o->backward_n);
            assert_false(o->alias_output);
        } else {
            assert_non_null(o->infer);
            if (!o->alias_output) {
                assert_non_null(o->forward);
                assert_non_null(o->backward);
            }
        }
        /* the public get/set_weights need all three */
        assert_true(!o->weight_sizes == !o->set_weights && !o->set_weights == !o->get_weights);
        /* every kind of this version can be saved; a record with bytes needs its writer */
        assert_non_null(o->config_read);
        assert_true(o->config_bytes == 0 || o->config_write);
        assert_true(o->config_bytes <= TFX__CONFIG_MAX);
        /* a grown record: the older length is shorter, and the writer chooses between them */
        assert_true(o->config_bytes_short < o->config_bytes || !o->config_bytes_short);
        assert_true(!o->config_size == !o->config_bytes_short);
        assert_true(!o->box_scratch || o->box_forward);
        assert_true(!o->box_cost || o->box_forward);
        /* occlusion's Dense merge reads a unit-major kernel: the file must know it too */
        if (o->traits & TFX__TRAIT_FULLY_CONNECTED) assert_non_null(o->transposed_kernel);
        if (o->traits & TFX__TRAIT_FUSED_ACTIVATION) assert_true(o->traits & TFX__TRAIT_WEIGHTED);
        for (int j = 1; j < k; j++) assert_string_not_equal(tfx__layer_ops_for_kind(j)->type_name, o->type_name);
    }
    assert_int_equal(kinds, LAST_KIND);
}

/* One layer of every kind, built through the public API with non-default settings. */
static tfx_model *every_kind(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 9, 9, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4, c.kernel_h = 3, c.kernel_w = 2, c.stride_h = 2, c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_LEAKY_RELU, c.activation_alpha = 0.125f;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_batch_norm_options b = TFX_BATCH_NORM_OPTIONS_INIT;
    b.momentum = 0.5f, b.epsilon = 0.25f, b.center = 0;
    OK(tfx_model_add_batch_normalization(m, &b, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_ELU, 0.0f, NULL, NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = 2, p.pool_w = 3, p.stride_w = 1;
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    p.padding = TFX_PADDING_SAME;
    OK(tfx_model_add_average_pooling2d(m, &p, NULL));
    OK(tfx_model_add_dropout(m, 0.375f, NULL, NULL));
    c.groups = 2, c.padding = TFX_PADDING_EXPLICIT, c.pad_top = c.pad_bottom = 1, c.pad_right = 2, c.stride_h = 1;
    OK(tfx_model_add_conv2d(m, &c, NULL)); /* 4 -> 4 channels in 2 groups */
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.depth_multiplier = 2, dw.padding = TFX_PADDING_SAME, dw.activation = TFX_ACTIVATION_CLIP;
    dw.clip_min = -1.0f, dw.clip_max = 1.5f;
    OK(tfx_model_add_depthwise_conv2d(m, &dw, NULL)); /* 4 -> 8 channels */
    OK(tfx_model_add_zero_padding2d(m, 1, 2, 0, 3, NULL, NULL));
    OK(tfx_model_add_reshape(m, 2, -1, 4, NULL, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    OK(tfx_model_add_clip(m, -0.5f, 2.0f, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 5, d.use_bias = 0, d.activation = TFX_ACTIVATION_CLIP, d.clip_min = -1.0f, d.clip_max = 0.5f;
    OK(tfx_model_add_dense(m, &d, NULL));
    d.units = 4, d.use_bias = 1, d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

/* GlobalAveragePooling2D gives a flat output: a model of its own. */
static tfx_model *global_pooling(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 2));
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    return m;
}

/* GlobalMaxPooling2D: flat too. */
static tfx_model *global_max_pooling(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 3, 5, 2));
    OK(tfx_model_add_global_max_pooling2d(m, NULL, NULL));
    return m;
}

/* The multi-input kinds: a graph. */
static tfx_model *merging(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 2));
    tfx_layer *a, *b, *g;
    OK(tfx_model_add_global_average_pooling2d(m, NULL, &g));
    OK(tfx_model_add_reshape(m, 1, 1, 2, NULL, &g));
    tfx_layer *se[2] = {NULL, g}, *sum[3] = {NULL, NULL, NULL};
    OK(tfx_model_add_multiply(m, se, 2, NULL, &a));
    sum[0] = a; /* a + input + input */
    OK(tfx_model_add_add(m, sum, 3, NULL, &b));
    tfx_layer *cat[2] = {b, a};
    OK(tfx_model_add_concatenate(m, cat, 2, NULL, NULL));
    return m;
}

static void test_config_records_round_trip(void **state)
{
    (void)state;
    tfx_model *models[] = {every_kind(), global_pooling(), global_max_pooling(), merging()};
    int seen[32] = {0};
    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        tfx_model *m = models[mi];
        for (size_t i = 0; i < m->n_layers; i++) {
            const tfx_layer *l = m->layers[i];
            const tfx__layer_ops *o = l->ops;
            seen[o->kind] = 1;
            uint8_t rec[64], junk[64];
            assert_true(o->config_bytes <= sizeof rec);
            memset(rec, 0xa5, sizeof rec);
            if (o->config_write) o->config_write(l, rec);
            for (size_t k = o->config_bytes; k < sizeof rec; k++) assert_int_equal(rec[k], 0xa5); /* no overrun */
            tfx__layer_config back;
            memset(&back, 0, sizeof back);
            OK(o->config_read(rec, &back));
            back.pad_top = l->cfg.pad_top; /* computed by infer, not stored */
            back.pad_left = l->cfg.pad_left;
            back.pad_bottom = l->cfg.pad_bottom;
            back.pad_right = l->cfg.pad_right;
            if (o->kind == TFX_LAYER_DEPTHWISE_CONV2D) { /* from the input channels, by infer */
                back.groups = l->cfg.groups;
                back.filters = l->cfg.filters;
            }
            assert_memory_equal(&back, &l->cfg, sizeof back);
            if (o->config_bytes) { /* all-ones fields: negative sizes, NaN rates, unknown activations */
                memset(junk, 0xff, sizeof junk);
                assert_int_equal(o->config_read(junk, &back), TFX_EFORMAT);
                assert_true(strlen(tfx_error_last()->message) > 0);
            }
        }
        tfx_model_free(m);
    }
    for (int k = 1; k <= LAST_KIND; k++) assert_true(seen[k]);
}

/* The flat arrays are reallocated as layers are added; each layer's view must follow. */
static void test_params_follow_the_model(void **state)
{
    (void)state;
    tfx_model *m = every_kind();
    for (int r = 0; r < 3; r++) {
        for (size_t i = 0; i < m->n_layers; i++) {
            const tfx_layer *l = m->layers[i];
            assert_ptr_equal(l->params, m->params + l->param_offset);
            assert_ptr_equal(l->grads, m->grads + l->param_offset);
        }
        tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
        d.units = 64 << r;
        OK(tfx_model_add_dense(m, &d, NULL));
    }
    tfx_model_free(m);
}

/* A layer needs only its run state: Dropout's mask comes from run->rng, its backward follows
 * run->training, scratch comes from run->ws. */
static void test_layer_runs_without_the_model(void **state)
{
    (void)state;
    tfx_model *m = every_kind();
    tfx_layer *drop = m->layers[5], *conv = m->layers[0];
    assert_int_equal(drop->ops->kind, TFX_LAYER_DROPOUT);
    enum { N = 2 };
    const size_t sz = tfx__shape_size(drop->in);
    float x[N * 64], y[N * 64], dy[N * 64], dx[N * 64], cache[N * 64];
    assert_true(N * sz <= 64);
    for (size_t i = 0; i < N * sz; i++) x[i] = dy[i] = (float)i + 1.0f;
    drop->cache = cache;
    tfx__rng a, b;
    tfx__rng_seed(&a, 7);
    tfx__rng_seed(&b, 7);
    tfx__workspace ws = {NULL, 0};
    tfx__layer_run run = {1, &a, &ws, 1};
    OK(drop->ops->forward(drop, &run, x, y, N));
    for (size_t i = 0; i < N * sz; i++) { /* the same draws as the generator it was given */
        float keep = tfx__rng_uniform(&b) >= (double)drop->cfg.rate ? 1.0f / (1.0f - drop->cfg.rate) : 0.0f;
        assert_float_equal(y[i], x[i] * keep, 0.0f);
    }
    OK(drop->ops->backward(drop, &run, x, y, dy, dx, N, 0, NULL));
    for (size_t i = 0; i < N * sz; i++) assert_float_equal(dx[i], y[i], 0.0f);
    run.training = 0; /* backward after an inference forward: the identity */
    OK(drop->ops->backward(drop, &run, x, y, dy, dx, N, 0, NULL));
    assert_memory_equal(dx, dy, N * sz * sizeof(float));
    float *s = tfx__layer_scratch(conv, &run, 1000);
    assert_ptr_equal(s, ws.data);
    assert_true(ws.cap >= 1000);
    tfx__free(ws.data);
    drop->cache = NULL;
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_and_entries),
        cmocka_unit_test(test_config_records_round_trip),
        cmocka_unit_test(test_params_follow_the_model),
        cmocka_unit_test(test_layer_runs_without_the_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
