/* Option fields outside their enum are TFX_EINVAL everywhere (issue 16: guided = 5 was accepted
 * silently). One table: each enum-like or flag-like int field of every public options struct
 * (and enum-valued arguments), set to out-of-range values (refused, the message naming the
 * field and the value) and to the valid boundary values (accepted). Booleans documented as
 * "non-zero" (use_bias, nesterov, shuffle, center, scale, upsample, use_logit, stop_on_error)
 * take any int and are not listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define H 8

static tfx_model *model;
static float images[2 * H * H * 3];
static int32_t labels[2] = {0, 1};

/* Conv -> Conv("top") -> Flatten -> Dense(3, softmax): every method runs on it. */
static int setup(void **state)
{
    (void)state;
    if (tfx_model_new(&model, H, H, 3)) return -1;
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.activation = TFX_ACTIVATION_RELU;
    if (tfx_model_add_conv2d(model, &c, NULL)) return -1;
    c.name = "top";
    if (tfx_model_add_conv2d(model, &c, NULL)) return -1;
    if (tfx_model_add_flatten(model, NULL, NULL)) return -1;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if (tfx_model_add_dense(model, &d, NULL)) return -1;
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++) images[i] = (float)((i * 37) % 101) / 101.0f;
    return 0;
}
static int teardown(void **state)
{
    (void)state;
    tfx_model_free(model);
    return 0;
}

/* Each case sets one field to v and makes the call that copies those options. */
typedef int (*call_fn)(int v);

static int explain_with(tfx_explain_options *o)
{
    tfx_attribution *a = NULL;
    int rc = tfx_explain(model, images, 1, o, &a);
    tfx_attribution_free(a);
    return rc;
}
/* The explain options go through every function that copies them. */
#define EXPLAIN_FIELD(field, method_)                                                              \
    static int explain_##field(int v)                                                              \
    {                                                                                              \
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;                                          \
        o.method = (method_);                                                                      \
        o.steps = o.samples = 2;                                                                   \
        o.field = v;                                                                               \
        return explain_with(&o);                                                                   \
    }                                                                                              \
    static int picture_##field(int v)                                                              \
    {                                                                                              \
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;                                          \
        o.field = v;                                                                               \
        tfx_image *img = NULL;                                                                     \
        int rc = tfx_vanilla_gradients(model, images, 1, -1, &o, &img);                            \
        tfx_image_free(img);                                                                       \
        return rc;                                                                                 \
    }                                                                                              \
    static int sanity_##field(int v)                                                               \
    {                                                                                              \
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;                                          \
        o.field = v;                                                                               \
        double rho[4];                                                                             \
        size_t count;                                                                              \
        return tfx_sanity_check(model, images, 1, &o, TFX_RANK_SUM, 1, rho, 4, &count);            \
    }
EXPLAIN_FIELD(guided, TFX_METHOD_GRAD_CAM)
EXPLAIN_FIELD(compat, TFX_METHOD_VANILLA_GRADIENTS)
EXPLAIN_FIELD(patch_fill, TFX_METHOD_OCCLUSION)
EXPLAIN_FIELD(lrp_rule, TFX_METHOD_LRP)
EXPLAIN_FIELD(base_method, TFX_METHOD_NOISE_TUNNEL)
EXPLAIN_FIELD(tunnel, TFX_METHOD_NOISE_TUNNEL)
EXPLAIN_FIELD(cam_alpha_normalize, TFX_METHOD_GRAD_CAM_PLUS_PLUS)
EXPLAIN_FIELD(score_cam_weights, TFX_METHOD_SCORE_CAM)
EXPLAIN_FIELD(ig_rule, TFX_METHOD_INTEGRATED_GRADIENTS)

static int explain_method(int v)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = v;
    o.steps = o.samples = 2;
    o.layer_name = "top";
    return explain_with(&o);
}
static int explain_lrp_rules(int v)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    int rules[4] = {TFX_LRP_DEFAULT, TFX_LRP_DEFAULT, v, TFX_LRP_DEFAULT};
    o.method = TFX_METHOD_LRP;
    o.lrp_rules = rules;
    return explain_with(&o);
}

#define RENDER_FIELD(field)                                                                        \
    static int render_##field(int v)                                                               \
    {                                                                                              \
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT;                                            \
        o.field = v;                                                                               \
        tfx_image *img = NULL;                                                                     \
        int rc = tfx_render_saliency(images, 2, H, H, 3, &o, &img);                                \
        tfx_image_free(img);                                                                       \
        return rc;                                                                                 \
    }
RENDER_FIELD(compat)
RENDER_FIELD(colormap)
RENDER_FIELD(per_image)
RENDER_FIELD(reduce)
RENDER_FIELD(saturate)
/* The version-2 scaling fields: each given with its partner (a mode with a size), so only the
 * field under test can be wrong. */
#define RENDER_SCALE_FIELD(field, mode, factor)                                                    \
    static int render_##field(int v)                                                               \
    {                                                                                              \
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT;                                            \
        o.scale_mode = (mode);                                                                     \
        o.scale = (factor);                                                                        \
        o.field = v;                                                                               \
        tfx_image *img = NULL;                                                                     \
        int rc = tfx_render_saliency(images, 2, H, H, 3, &o, &img);                                \
        tfx_image_free(img);                                                                       \
        return rc;                                                                                 \
    }
RENDER_SCALE_FIELD(scale_mode, TFX_SCALE_NONE, 2)
RENDER_SCALE_FIELD(scale, TFX_SCALE_NEAREST, 0)
RENDER_SCALE_FIELD(tile_height, TFX_SCALE_BILINEAR, 0)
RENDER_SCALE_FIELD(tile_width, TFX_SCALE_NEAREST, 0)

static int colormap_table(int v)
{
    const uint8_t *rgb;
    return tfx_colormap_table(v, &rgb);
}

/* compile / fit on a copy of the model, so the shared one stays uncompiled. */
static int compile_field(int field, int v)
{
    tfx_model *m;
    tfx_model_new(&m, 1, 1, 2);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    tfx_model_add_dense(m, &d, NULL);
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    if (field == 0) o.loss = v;
    if (field == 1) o.optimizer = v;
    if (field == 2) o.metrics = v;
    int rc = tfx_model_compile(m, &o);
    if (field == 3 && rc == TFX_OK) {
        float x[4] = {0.1f, 0.2f, 0.3f, 0.4f};
        tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
        f.verbose = v;
        rc = tfx_model_fit(m, x, labels, 2, &f, NULL);
    }
    tfx_model_free(m);
    return rc;
}
static int compile_loss(int v) { return compile_field(0, v); }
static int compile_optimizer(int v) { return compile_field(1, v); }
static int compile_metrics(int v) { return compile_field(2, v); }
static int fit_verbose(int v) { return compile_field(3, v); }

static int layer_field(int field, int v)
{
    tfx_model *m;
    tfx_model_new(&m, 4, 4, 1);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 1;
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 1;
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    int rc = TFX_OK;
    switch (field) {
    case 0: c.padding = v; rc = tfx_model_add_conv2d(m, &c, NULL); break;
    case 1: c.activation = v; rc = tfx_model_add_conv2d(m, &c, NULL); break;
    case 2: d.activation = v; rc = tfx_model_add_dense(m, &d, NULL); break;
    case 3: p.padding = v; rc = tfx_model_add_max_pooling2d(m, &p, NULL); break;
    case 4: p.padding = v; rc = tfx_model_add_average_pooling2d(m, &p, NULL); break;
    default: rc = tfx_model_add_activation(m, v, 0.0f, NULL, NULL); break;
    }
    tfx_model_free(m);
    return rc;
}
static int conv_padding(int v) { return layer_field(0, v); }
static int conv_activation(int v) { return layer_field(1, v); }
static int dense_activation(int v) { return layer_field(2, v); }
static int max_pool_padding(int v) { return layer_field(3, v); }
static int avg_pool_padding(int v) { return layer_field(4, v); }
static int activation_layer(int v) { return layer_field(5, v); }

static int faithfulness_field(int field, int v)
{
    tfx_attribution *a = NULL;
    tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
    if (tfx_explain(model, images, 1, &eo, &a)) return TFX_ERROR;
    tfx_faithfulness_options o = TFX_FAITHFULNESS_OPTIONS_INIT;
    o.blur_size = 3;
    if (field == 0) o.deletion_substrate = v;
    if (field == 1) o.insertion_substrate = v;
    if (field == 2) o.reduce = v;
    double del, ins;
    int rc = tfx_deletion_insertion(model, images, 1, a, &o, &del, &ins);
    tfx_attribution_free(a);
    return rc;
}
static int deletion_substrate(int v) { return faithfulness_field(0, v); }
static int insertion_substrate(int v) { return faithfulness_field(1, v); }
static int faithfulness_reduce(int v) { return faithfulness_field(2, v); }
static int sanity_reduce(int v)
{
    double rho[4];
    size_t count;
    return tfx_sanity_check(model, images, 1, NULL, v, 1, rho, 4, &count);
}

static int data_num_classes(int v)
{
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.num_classes = v;
    tfx_dataset *ds = NULL;
    /* valid options then fail on the missing file (TFX_EIO) */
    int rc = tfx_dataset_load_cifar10_dir(&ds, "/nonexistent/libtfx-option-ranges", TFX_DATA_TEST, &o);
    tfx_dataset_free(ds);
    return rc == TFX_EIO ? TFX_OK : rc;
}

static int explainer_callback_method(int v)
{
    tfx_explainer_callback *cb = NULL;
    /* an invalid method fails before anything is created; valid ones stop at the empty output_dir */
    int rc = tfx_explainer_callback_new(&cb, model, v, images, 1, -1, "top", "", NULL, NULL);
    tfx_explainer_callback_free(cb);
    return rc;
}

static int checkpoint_mode(int v)
{
    tfx_model_checkpoint_options o = TFX_MODEL_CHECKPOINT_OPTIONS_INIT;
    o.mode = v;
    tfx_model_checkpoint_callback *cb = NULL;
    int rc = tfx_model_checkpoint_callback_new(&cb, "libtfx-option-ranges.tfx", &o); /* no directory made */
    tfx_model_checkpoint_callback_free(cb);
    return rc;
}
static int early_stopping_mode(int v)
{
    tfx_early_stopping_options o = TFX_EARLY_STOPPING_OPTIONS_INIT;
    o.mode = v;
    tfx_early_stopping_callback *cb = NULL;
    int rc = tfx_early_stopping_callback_new(&cb, &o);
    tfx_early_stopping_callback_free(cb);
    return rc;
}
static int reduce_lr_mode(int v)
{
    tfx_reduce_lr_on_plateau_options o = TFX_REDUCE_LR_ON_PLATEAU_OPTIONS_INIT;
    o.mode = v;
    tfx_reduce_lr_on_plateau_callback *cb = NULL;
    int rc = tfx_reduce_lr_on_plateau_callback_new(&cb, &o);
    tfx_reduce_lr_on_plateau_callback_free(cb);
    return rc;
}

typedef struct range_case {
    const char *what;  /* the field (must appear in the message) */
    call_fn call;
    int bad[4];        /* out-of-range values (terminated by the sentinel 0x7fff0000 when fewer) */
    int good[4];       /* valid boundary values */
    int good_rc;       /* what the valid values give (TFX_OK, or a later unrelated check's code) */
} range_case;
#define END 0x7fff0000

static const range_case cases[] = {
    {"guided", explain_guided, {5, -2, END}, {-1, 1, END}, TFX_OK},
    {"guided", picture_guided, {5, END}, {-1, 1, END}, TFX_OK},
    {"guided", sanity_guided, {5, END}, {0, END}, TFX_OK},
    {"compat", explain_compat, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"compat", picture_compat, {2, END}, {1, END}, TFX_OK},
    {"patch_fill", explain_patch_fill, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"patch_fill", picture_patch_fill, {3, END}, {2, END}, TFX_OK},
    {"patch_fill", sanity_patch_fill, {3, END}, {2, END}, TFX_OK},
    {"lrp_rule", explain_lrp_rule, {0, 8, END}, {1, 7, END}, TFX_OK},
    {"lrp_rule", picture_lrp_rule, {0, 8, END}, {1, 7, END}, TFX_OK},
    {"lrp_rules[2]", explain_lrp_rules, {6, -1, END}, {0, 5, END}, TFX_OK},
    {"base_method", explain_base_method, {5, 1, 17}, {2, 16, END}, TFX_OK},
    {"base_method", picture_base_method, {0, END}, {14, END}, TFX_OK},
    {"tunnel", explain_tunnel, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"tunnel", sanity_tunnel, {3, END}, {2, END}, TFX_OK},
    {"cam_alpha_normalize", explain_cam_alpha_normalize, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"cam_alpha_normalize", picture_cam_alpha_normalize, {3, END}, {2, END}, TFX_OK},
    {"score_cam_weights", explain_score_cam_weights, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"score_cam_weights", picture_score_cam_weights, {2, END}, {1, END}, TFX_OK},
    {"ig_rule", explain_ig_rule, {5, -1, END}, {0, 4, END}, TFX_OK},
    {"ig_rule", picture_ig_rule, {5, END}, {4, END}, TFX_OK},
    {"ig_rule", sanity_ig_rule, {-2, END}, {3, END}, TFX_OK},
    {"tunnel", picture_tunnel, {3, END}, {1, END}, TFX_OK},
    {"compat", sanity_compat, {7, END}, {1, END}, TFX_OK},
    {"lrp_rule", sanity_lrp_rule, {9, END}, {4, END}, TFX_OK},
    {"base_method", sanity_base_method, {7, END}, {3, END}, TFX_OK},
    {"cam_alpha_normalize", sanity_cam_alpha_normalize, {-3, END}, {1, END}, TFX_OK},
    {"score_cam_weights", sanity_score_cam_weights, {-2, END}, {0, END}, TFX_OK},
    {"method", explain_method, {0, 20, END}, {1, 19, END}, TFX_OK},
    {"compat", render_compat, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"colormap", render_colormap, {4, -1, END}, {0, 3, END}, TFX_OK},
    {"per_image", render_per_image, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"reduce", render_reduce, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"saturate", render_saturate, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"scale_mode", render_scale_mode, {3, -1, END}, {1, 2, END}, TFX_OK},
    {"scale", render_scale, {-1, 32769, END}, {1, 5, END}, TFX_OK},
    {"tile_height", render_tile_height, {-1, 32769, END}, {1, 40, END}, TFX_OK},
    {"tile_width", render_tile_width, {-1, 32769, END}, {1, 40, END}, TFX_OK},
    {"colormap", colormap_table, {4, -1, END}, {1, 3, END}, TFX_OK},
    {"loss", compile_loss, {0, 5, END}, {1, 4, END}, TFX_OK},
    {"optimizer", compile_optimizer, {0, 4, END}, {1, 3, END}, TFX_OK},
    {"metric", compile_metrics, {2, -1, END}, {0, 1, END}, TFX_OK},
    {"verbose", fit_verbose, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"padding", conv_padding, {3, -1, END}, {0, 1, 2, END}, TFX_OK},
    {"activation", conv_activation, {12, -1, END}, {0, 11, END}, TFX_OK},
    {"activation", dense_activation, {12, -1, END}, {0, 11, END}, TFX_OK},
    {"padding", max_pool_padding, {3, -1, END}, {0, 1, 2, END}, TFX_OK},
    {"padding", avg_pool_padding, {3, -1, END}, {0, 1, 2, END}, TFX_OK},
    {"activation", activation_layer, {12, -1, END}, {0, 11, END}, TFX_OK},
    {"deletion_substrate", deletion_substrate, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"insertion_substrate", insertion_substrate, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"reduce", faithfulness_reduce, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"reduce", sanity_reduce, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"num_classes", data_num_classes, {257, -1, END}, {1, 256, END}, TFX_OK},
    {"method", explainer_callback_method, {0, 20, END}, {1, 19, END}, TFX_EINVAL},
    {"mode", checkpoint_mode, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"mode", early_stopping_mode, {3, -1, END}, {0, 2, END}, TFX_OK},
    {"mode", reduce_lr_mode, {3, -1, END}, {0, 2, END}, TFX_OK},
};

static void test_option_ranges(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const range_case *c = &cases[i];
        for (int k = 0; k < 4 && c->bad[k] != END; k++) {
            tfx_error_clear();
            int rc = c->call(c->bad[k]);
            const char *msg = tfx_error_last()->message;
            char value[24];
            snprintf(value, sizeof value, "%d", c->bad[k]);
            if (rc != TFX_EINVAL || !strstr(msg, c->what) || !strstr(msg, value)) {
                print_error("case %zu: %s = %d: rc %d, message \"%s\" (want TFX_EINVAL naming '%s' and %s)\n", i,
                            c->what, c->bad[k], rc, msg, c->what, value);
                failures++;
            }
        }
        for (int k = 0; k < 4 && c->good[k] != END; k++) {
            int rc = c->call(c->good[k]);
            const char *msg = tfx_error_last()->message;
            /* a valid value may still fail a later, unrelated check, but never on this field */
            if (rc != c->good_rc || (rc && strstr(msg, c->what))) {
                print_error("case %zu: %s = %d (valid): rc %d (want %d), message \"%s\"\n", i, c->what, c->good[k],
                            rc, c->good_rc, msg);
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_option_ranges)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
