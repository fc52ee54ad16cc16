/* The graph engine through the public API: a graph that computes exactly what a chain computes
 * gives the same predictions and the same maps for every method; inference forwards share
 * buffers (a deep chain needs a few, not one per layer); the graph-building calls refuse
 * unreachable layers, foreign layers, mismatched merges and bad counts with clear messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model_internal.h"
#include "tfx/tfx.h"

#define OK(x) assert_int_equal((x), TFX_OK)

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 40) / (double)(1ULL << 24)) * 2.0f - 1.0f;
}

enum { H = 10, W = 9, C = 2, F = 4, K = 5 };

/* conv(W, b) -> ReLU 'act' -> max pool 2x2 -> Flatten -> Dense(K, softmax): as a chain with the
 * convolution's weights doubled, or as a graph whose two convolutions (W, b) both read the input
 * and meet in an Add. 2 * (Wx + b) == (2W)x + 2b exactly in float (scaling by 2 is exact), and
 * y + y == 2y, so both compute bit-identical activations. */
static tfx_model *build(int graph, const float *kw, const float *kb, const float *dw, const float *db)
{
    tfx_model *m;
    OK(tfx_model_new(&m, H, W, C));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = F;
    c.padding = TFX_PADDING_SAME;
    tfx_layer *a, *b;
    float k2[3 * 3 * C * F], b2[F];
    if (graph) {
        OK(tfx_model_add_conv2d(m, &c, &a));
        OK(tfx_layer_set_weights(a, kw, kb));
        OK(tfx_model_set_next_input(m, NULL));
        OK(tfx_model_add_conv2d(m, &c, &b));
        OK(tfx_layer_set_weights(b, kw, kb));
        tfx_layer *ab[2] = {a, b};
        OK(tfx_model_add_add(m, ab, 2, "sum", NULL));
    } else {
        for (int i = 0; i < 3 * 3 * C * F; i++) k2[i] = 2.0f * kw[i];
        for (int i = 0; i < F; i++) b2[i] = 2.0f * kb[i];
        OK(tfx_model_add_conv2d(m, &c, &a));
        OK(tfx_layer_set_weights(a, k2, b2));
    }
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0.0f, "act", NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = K;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    tfx_layer *dl;
    OK(tfx_model_add_dense(m, &d, &dl));
    OK(tfx_layer_set_weights(dl, dw, db));
    return m;
}

static double max_abs(const float *v, size_t n)
{
    double r = 0.0;
    for (size_t i = 0; i < n; i++) r = fmax(r, fabs(v[i]));
    return r;
}

static void test_graph_equals_chain(void **state)
{
    (void)state;
    uint64_t s = 42;
    enum { D = (H / 2) * (W / 2) * F, N = 3 };
    static float kw[3 * 3 * C * F], kb[F], dw[D * K], db[K], x[N * H * W * C];
    for (size_t i = 0; i < sizeof kw / sizeof kw[0]; i++) kw[i] = 0.5f * frand(&s);
    for (size_t i = 0; i < F; i++) kb[i] = 0.1f * frand(&s);
    for (size_t i = 0; i < D * K; i++) dw[i] = 0.3f * frand(&s);
    for (size_t i = 0; i < K; i++) db[i] = 0.1f * frand(&s);
    for (size_t i = 0; i < N * H * W * C; i++) x[i] = frand(&s);
    tfx_model *g = build(1, kw, kb, dw, db), *c = build(0, kw, kb, dw, db);
    float pg[N * K], pc[N * K];
    OK(tfx_model_predict(g, x, N, pg));
    OK(tfx_model_predict(c, x, N, pc));
    assert_memory_equal(pg, pc, sizeof pg);

    static const int methods[] = {TFX_METHOD_ACTIVATIONS, TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRADIENTS_INPUTS,
                                  TFX_METHOD_OCCLUSION, TFX_METHOD_GRAD_CAM, TFX_METHOD_SMOOTH_GRAD,
                                  TFX_METHOD_INTEGRATED_GRADIENTS, TFX_METHOD_GRAD_CAM_PLUS_PLUS,
                                  TFX_METHOD_SCORE_CAM, TFX_METHOD_LAYER_CAM, TFX_METHOD_XGRAD_CAM,
                                  TFX_METHOD_HIRES_CAM, TFX_METHOD_EIGEN_CAM, TFX_METHOD_GUIDED_BACKPROP,
                                  TFX_METHOD_GUIDED_GRAD_CAM, TFX_METHOD_DECONVNET, TFX_METHOD_GUIDED_SMOOTH_GRAD,
                                  TFX_METHOD_NOISE_TUNNEL};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.method = methods[k];
        o.layer_name = "act";
        o.samples = 8;
        o.steps = 8;
        o.patch_size = 3;
        tfx_attribution *ag, *ac;
        OK(tfx_explain(g, x, N, &o, &ag));
        OK(tfx_explain(c, x, N, &o, &ac));
        int sg[3], sc[3];
        OK(tfx_attribution_shape(ag, sg));
        OK(tfx_attribution_shape(ac, sc));
        assert_memory_equal(sg, sc, sizeof sg);
        size_t per = (size_t)sg[0] * sg[1] * sg[2];
        for (size_t i = 0; i < N; i++) {
            const float *a = tfx_attribution_data(ag, i), *b = tfx_attribution_data(ac, i);
            double scale = fmax(max_abs(b, per), 1e-12), err = 0.0;
            for (size_t j = 0; j < per; j++) err = fmax(err, fabs((double)a[j] - b[j]));
            if (err > 1e-5 * scale) fprintf(stderr, "method %d image %zu: max error %g (scale %g)\n", methods[k], i, err, scale);
            assert_true(err <= 1e-5 * scale);
        }
        tfx_attribution_free(ag);
        tfx_attribution_free(ac);
    }

    /* Deletion/insertion on the same function: the same curves. */
    tfx_explain_options vo = TFX_EXPLAIN_OPTIONS_INIT;
    vo.method = TFX_METHOD_VANILLA_GRADIENTS;
    tfx_attribution *vg, *vc;
    OK(tfx_explain(g, x, N, &vo, &vg));
    OK(tfx_explain(c, x, N, &vo, &vc));
    double dg[N], ig[N], dc[N], ic[N];
    OK(tfx_deletion_insertion(g, x, N, vg, NULL, dg, ig));
    OK(tfx_deletion_insertion(c, x, N, vc, NULL, dc, ic));
    for (size_t i = 0; i < N; i++) {
        assert_true(fabs(dg[i] - dc[i]) <= 1e-5 && fabs(ig[i] - ic[i]) <= 1e-5);
    }
    tfx_attribution_free(vg);
    tfx_attribution_free(vc);
    /* The cascading sanity check walks the graph's weighted layers from the top (two
     * convolutions and the Dense here) and restores every weight. */
    double rho[8];
    size_t nrho = 0;
    OK(tfx_sanity_check(g, x, N, &vo, TFX_RANK_SUM, 5, rho, 8, &nrho));
    assert_int_equal(nrho, 3);
    for (size_t k = 0; k < nrho; k++) assert_true(rho[k] >= -1.0 && rho[k] <= 1.0);
    float again[N * K];
    OK(tfx_model_predict(g, x, N, again));
    assert_memory_equal(again, pg, sizeof again);

    /* LRP-0 through the graph conserves relevance: Add splits it in proportion to its inputs. */
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_LRP;
    o.lrp_rule = TFX_LRP_0;
    tfx_attribution *a;
    OK(tfx_explain(g, x, N, &o, &a));
    double sums[16];
    size_t count = 0;
    OK(tfx_attribution_relevance_sums(a, 0, sums, 16, &count));
    assert_int_equal(count, g->n_layers + 1);
    tfx_attribution_free(a);
    tfx_model_free(g);
    tfx_model_free(c);
}

/* A chain of 24 convolutions: predict's buffers do not grow with the depth. */
static void test_release_plan_width(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 8, 8, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_TANH;
    tfx_layer *prev = NULL, *cur;
    for (int i = 0; i < 24; i++) { /* residual blocks: conv, then Add(conv, block input) */
        OK(tfx_model_add_conv2d(m, &c, &cur));
        tfx_layer *in2[2] = {cur, prev};
        OK(tfx_model_add_add(m, in2, 2, NULL, &prev));
    }
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    float x[2 * 8 * 8 * 3], y1[2 * 3], y2[2 * 3];
    uint64_t s = 7;
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = frand(&s);
    OK(tfx_model_predict(m, x, 2, y1));
    assert_true(m->n_rel_bufs <= 4);
    assert_false(m->full_ready);
    /* the same numbers through the full forward (one buffer per layer) */
    OK(tfx__model_forward(m, x, 2, 0));
    memcpy(y2, tfx__model_layer_output(m, m->n_layers - 1), sizeof y2);
    assert_memory_equal(y1, y2, sizeof y1);
    tfx_model_free(m);
}

static void test_bad_graphs(void **state)
{
    (void)state;
    tfx_model *m, *other;
    OK(tfx_model_new(&m, 6, 6, 2));
    OK(tfx_model_new(&other, 6, 6, 2));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.name = "left";
    tfx_layer *a, *b, *foreign;
    OK(tfx_model_add_conv2d(m, &c, &a));
    OK(tfx_model_add_conv2d(other, &c, &foreign));
    /* a layer of another model */
    assert_int_equal(tfx_model_set_next_input(m, foreign), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "not a layer of this model"));
    tfx_layer *fa[2] = {a, foreign};
    assert_int_equal(tfx_model_add_add(m, fa, 2, NULL, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "inputs[1]"));
    /* counts and NULLs */
    assert_int_equal(tfx_model_add_add(m, fa, 1, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_add_add(m, NULL, 2, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_add_add(m, fa, SIZE_MAX, NULL, NULL), TFX_EINVAL);
    assert_int_equal(tfx_model_set_next_input(NULL, a), TFX_EINVAL);
    /* mismatched shapes: both layers and both shapes named */
    OK(tfx_model_set_next_input(m, NULL));
    c.name = "right";
    c.kernel_h = c.kernel_w = 1;
    OK(tfx_model_add_conv2d(m, &c, &b)); /* 6x6x3 against left's 4x4x3 */
    tfx_layer *ab[2] = {a, b};
    assert_int_equal(tfx_model_add_add(m, ab, 2, "sum", NULL), TFX_ESHAPE);
    const char *msg = tfx_error_last()->message;
    assert_non_null(strstr(msg, "'left'"));
    assert_non_null(strstr(msg, "'right'"));
    assert_non_null(strstr(msg, "4x4x3"));
    assert_non_null(strstr(msg, "6x6x3"));
    assert_int_equal(tfx_model_layer_count(m), 2); /* nothing added */
    /* a layer that does not lead to the output: 'left' */
    float x[6 * 6 * 2] = {0}, y[6 * 6 * 3];
    assert_int_equal(tfx_model_predict(m, x, 1, y), TFX_ESTATE);
    assert_non_null(strstr(tfx_error_last()->message, "'left'"));
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    co.loss = TFX_LOSS_MEAN_SQUARED_ERROR;
    assert_int_equal(tfx_model_compile(m, &co), TFX_ESTATE);
    /* a duplicate name */
    c.name = "left";
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "duplicate layer name 'left'"));
    /* inputs of a layer */
    const tfx_layer *in[3] = {a, a, a};
    size_t count = 0;
    OK(tfx_layer_inputs(b, in, 3, &count));
    assert_int_equal(count, 1);
    assert_null(in[0]); /* the model input */
    assert_int_equal(tfx_layer_inputs(b, NULL, 1, &count), TFX_EINVAL);
    tfx_model_free(m);
    tfx_model_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_equals_chain),
        cmocka_unit_test(test_release_plan_width),
        cmocka_unit_test(test_bad_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
