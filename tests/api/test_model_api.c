/* Public model API: the seed model of the tf-explain tutorial, Keras names and shapes,
 * summary, lookup, Keras weight layouts (checked by hand on tiny layers), seeding,
 * batching, and every bad-input path with its exact code and message. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"
#include "testing.h"
#include "tfx/tfx.h"

/* ---- helpers ---- */

/* rc must be `code`, the thread's last error must carry the same code, and its message
 * must contain `substr` (so the message names the problem, not just "error"). */
static void check_err_at(int rc, int code, const char *substr, const char *file, int line)
{
    const tfx_error *e = tfx_error_last();
    if (rc != code || e->code != code || strstr(e->message, substr) == NULL) {
        print_error("%s:%d: rc %d (want %d), last code %d, message \"%s\" (want substring \"%s\")\n", file,
                    line, rc, code, e->code, e->message, substr);
        fail_msg("error check failed");
    }
}
#define CHECK_ERR(call, code, substr)                                                              \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        int rc__ = (call);                                                                         \
        check_err_at(rc__, (code), (substr), __FILE__, __LINE__);                                  \
    } while (0)
/* For functions returning a pointer or a count: `bad` must hold and the message be set. */
#define CHECK_ERR_IF(expr, bad_cond, code, substr)                                                 \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        (void)(expr);                                                                              \
        assert_true(bad_cond);                                                                     \
        check_err_at(code, (code), (substr), __FILE__, __LINE__);                                  \
    } while (0)
#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

static int under_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

/* Deterministic inputs independent of the library's RNG. */
static void fill(float *x, size_t n, uint32_t seed, float lo, float hi)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)((s >> 8) / 16777216.0);
    }
}

static tfx_conv2d_options conv_opts(int filters, int k, int act, const char *name)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = o.kernel_w = k;
    o.activation = act;
    o.name = name;
    return o;
}

static tfx_dense_options dense_opts(int units, int act, const char *name)
{
    tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
    o.units = units;
    o.activation = act;
    o.name = name;
    return o;
}

/* The tutorial's model, exactly as its Keras code builds it (names left automatic except
 * the one the tutorial sets). Returns the first failing code. */
static int build_seed_model(tfx_model **out)
{
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, 32, 32, 3);
    if (rc) return rc;
    tfx_conv2d_options c1 = conv_opts(32, 3, TFX_ACTIVATION_RELU, NULL);
    tfx_conv2d_options c2 = conv_opts(64, 3, TFX_ACTIVATION_RELU, "visualization_layer");
    tfx_conv2d_options c3 = conv_opts(128, 3, TFX_ACTIVATION_RELU, NULL);
    tfx_dense_options d1 = dense_opts(128, TFX_ACTIVATION_RELU, NULL);
    tfx_dense_options d2 = dense_opts(10, TFX_ACTIVATION_SOFTMAX, NULL);
    if ((rc = tfx_model_add_conv2d(m, &c1, NULL)) || (rc = tfx_model_add_conv2d(m, &c2, NULL)) ||
        (rc = tfx_model_add_conv2d(m, &c3, NULL)) || (rc = tfx_model_add_flatten(m, NULL, NULL)) ||
        (rc = tfx_model_add_dense(m, &d1, NULL)) || (rc = tfx_model_add_dense(m, &d2, NULL))) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

/* A small model with every weighted kind we need for seeding and failure tests. */
static int build_small_model(tfx_model **out)
{
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, 6, 5, 2);
    if (rc) return rc;
    tfx_conv2d_options c1 = conv_opts(3, 3, TFX_ACTIVATION_RELU, NULL);
    tfx_dense_options d1 = dense_opts(4, TFX_ACTIVATION_SOFTMAX, NULL);
    if ((rc = tfx_model_add_conv2d(m, &c1, NULL)) || (rc = tfx_model_add_flatten(m, NULL, NULL)) ||
        (rc = tfx_model_add_dense(m, &d1, NULL))) {
        tfx_model_free(m);
        return rc;
    }
    *out = m;
    return TFX_OK;
}

/* ---- the seed model ---- */

static const struct {
    const char *name, *type;
    int shape[3];
    size_t params;
    const char *keras_shape;
} seed_layers[] = {
    {"conv2d", "Conv2D", {30, 30, 32}, 896, "(None, 30, 30, 32)"},
    {"visualization_layer", "Conv2D", {28, 28, 64}, 18496, "(None, 28, 28, 64)"},
    {"conv2d_1", "Conv2D", {26, 26, 128}, 73856, "(None, 26, 26, 128)"},
    {"flatten", "Flatten", {1, 1, 86528}, 0, "(None, 86528)"},
    {"dense", "Dense", {1, 1, 128}, 11075712, "(None, 128)"},
    {"dense_1", "Dense", {1, 1, 10}, 1290, "(None, 10)"},
};

static void test_seed_model_structure(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_seed_model(&m));
    assert_int_equal(tfx_model_param_count(m), 11170250);
    assert_int_equal(tfx_model_trainable_param_count(m), 11170250);
    assert_int_equal(tfx_model_layer_count(m), 6);
    int shape[3];
    OK(tfx_model_input_shape(m, shape));
    assert_int_equal(shape[0], 32);
    assert_int_equal(shape[1], 32);
    assert_int_equal(shape[2], 3);
    OK(tfx_model_output_shape(m, shape));
    assert_int_equal(shape[0] * shape[1] * shape[2], 10);
    assert_int_equal(shape[2], 10);

    int prev[3] = {32, 32, 3};
    static const int kinds[] = {TFX_LAYER_CONV2D, TFX_LAYER_CONV2D, TFX_LAYER_CONV2D,
                                TFX_LAYER_FLATTEN, TFX_LAYER_DENSE, TFX_LAYER_DENSE};
    for (size_t i = 0; i < 6; i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        assert_non_null(l);
        assert_string_equal(tfx_layer_name(l), seed_layers[i].name);
        assert_string_equal(tfx_layer_type_name(l), seed_layers[i].type);
        assert_int_equal(tfx_layer_get_kind(l), kinds[i]);
        assert_int_equal(tfx_layer_index(l), (int)i);
        assert_int_equal(tfx_layer_param_count(l), seed_layers[i].params);
        /* lookup by name gives the same object as lookup by index */
        assert_ptr_equal(tfx_model_find_layer(m, seed_layers[i].name), l);
        OK(tfx_layer_output_shape(l, shape));
        assert_memory_equal(shape, seed_layers[i].shape, sizeof shape);
        OK(tfx_layer_input_shape(l, shape));
        assert_memory_equal(shape, prev, sizeof shape);
        memcpy(prev, seed_layers[i].shape, sizeof prev);
        size_t ks = 0, bs = 0;
        OK(tfx_layer_weight_sizes(l, &ks, &bs));
        assert_int_equal(ks + bs, seed_layers[i].params);
    }
    /* Keras sizes: kernel 3*3*32*64 for visualization_layer, bias 64 */
    size_t ks = 0, bs = 0;
    OK(tfx_layer_weight_sizes(tfx_model_find_layer(m, "visualization_layer"), &ks, &bs));
    assert_int_equal(ks, 3 * 3 * 32 * 64);
    assert_int_equal(bs, 64);

    /* glorot_uniform kernel within its limit and not degenerate; zero bias */
    tfx_layer *d = tfx_model_find_layer(m, "dense_1");
    float k[1280], b[10];
    OK(tfx_layer_get_weights(d, k, b));
    double limit = sqrt(6.0 / (128 + 10)), maxabs = 0;
    for (int i = 0; i < 1280; i++) {
        assert_true(fabs(k[i]) <= limit);
        if (fabs(k[i]) > maxabs) maxabs = fabs(k[i]);
    }
    assert_true(maxabs > 0.9 * limit);
    for (int i = 0; i < 10; i++) assert_true(b[i] == 0.0f);
    tfx_model_free(m);
}

/* The whitespace-separated tokens of the summary line for `name (Type)`. */
static void check_summary_line(const char *s, const char *name, const char *type, const char *shape,
                               size_t params)
{
    char head[300], num[32];
    snprintf(head, sizeof head, " %s (%s) ", name, type);
    const char *p = strstr(s, head);
    if (!p) fail_msg("summary has no line for %s:\n%s", head, s);
    const char *eol = strchr(p, '\n');
    assert_non_null(eol);
    char line[400];
    size_t len = (size_t)(eol - p);
    assert_true(len < sizeof line);
    memcpy(line, p, len);
    line[len] = '\0';
    const char *sh = strstr(line, shape);
    if (!sh) fail_msg("line \"%s\" lacks shape %s", line, shape);
    snprintf(num, sizeof num, "%zu", params);
    const char *q = sh + strlen(shape);
    while (*q == ' ') q++;
    if (strncmp(q, num, strlen(num)) != 0 || (q[strlen(num)] != ' ' && q[strlen(num)] != '\0'))
        fail_msg("line \"%s\": param count is not %s", line, num);
}

static void test_seed_model_summary(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_seed_model(&m));
    const char *s = tfx_model_summary(m);
    assert_non_null(s);
    for (size_t i = 0; i < 6; i++)
        check_summary_line(s, seed_layers[i].name, seed_layers[i].type, seed_layers[i].keras_shape,
                           seed_layers[i].params);
    assert_non_null(strstr(s, "Total params: 11,170,250\n"));
    assert_non_null(strstr(s, "Trainable params: 11,170,250\n"));
    assert_non_null(strstr(s, "Non-trainable params: 0\n"));
    /* layer lines appear in model order */
    const char *prev = s;
    for (size_t i = 0; i < 6; i++) {
        char head[64];
        snprintf(head, sizeof head, " %s (", seed_layers[i].name);
        const char *p = strstr(prev, head);
        assert_non_null(p);
        prev = p;
    }
    tfx_model_free(m);
}

static void test_seed_model_predict_batch(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_seed_model(&m));
    enum { N = 5, IN = 32 * 32 * 3 };
    float *x = malloc(sizeof(float) * N * IN);
    assert_non_null(x);
    fill(x, (size_t)N * IN, 7, 0.0f, 1.0f);
    float batch[N * 10], chunked[N * 10], single[N * 10];
    OK(tfx_model_predict(m, x, N, batch));
    for (int i = 0; i < N; i++) {
        double sum = 0;
        for (int j = 0; j < 10; j++) {
            float p = batch[i * 10 + j];
            assert_true(p > 0.0f && p < 1.0f);
            sum += p;
        }
        assert_true(fabs(sum - 1.0) < 1e-5);
    }
    /* the images differ, so the rows differ: catches a batch where every row is image 0 */
    double diff = 0;
    for (int j = 0; j < 10; j++) diff += fabs(batch[j] - batch[40 + j]);
    assert_true(diff > 1e-7);
    for (int i = 0; i < N; i++) OK(tfx_model_predict(m, x + (size_t)i * IN, 1, single + i * 10));
    /* chunks of 2: 2 + 2 + 1 forward passes (skipped under valgrind: the singles cover it) */
    if (under_valgrind()) {
        memcpy(chunked, batch, sizeof chunked);
    } else {
        OK(tfx_model_set_batch_size(m, 2));
        OK(tfx_model_predict(m, x, N, chunked));
    }
    double worst = 0;
    for (int i = 0; i < N * 10; i++) {
        double d1 = fabs(batch[i] - single[i]), d2 = fabs(batch[i] - chunked[i]);
        if (d1 > worst) worst = d1;
        if (d2 > worst) worst = d2;
    }
    print_message("seed model: batch vs single/chunked max |diff| = %.3g\n", worst);
    assert_true(worst <= 1e-6);
    free(x);
    tfx_model_free(m);
}

/* ---- Keras weight layouts, checked by hand ---- */

static void test_dense_layout_by_hand(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    tfx_layer *d = NULL;
    OK(tfx_model_new(&m, 1, 1, 3));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options o = dense_opts(2, TFX_ACTIVATION_LINEAR, "d");
    OK(tfx_model_add_dense(m, &o, &d));
    assert_non_null(d);
    /* kernel[in][out]: row i holds the weights from input i */
    const float k[3 * 2] = {1, 2, /* in 0 */ 3, 4, /* in 1 */ 5, 6 /* in 2 */};
    const float b[2] = {0.5f, -1.0f};
    OK(tfx_layer_set_weights(d, k, b));
    const float x[3] = {1, 10, 100};
    float y[2];
    OK(tfx_model_predict(m, x, 1, y));
    /* y0 = 1*1 + 10*3 + 100*5 + 0.5 = 531.5; y1 = 1*2 + 10*4 + 100*6 - 1 = 641 */
    assert_float_equal(y[0], 531.5f, 1e-4);
    assert_float_equal(y[1], 641.0f, 1e-4);
    /* round trip */
    float k2[6], b2[2];
    OK(tfx_layer_get_weights(d, k2, b2));
    assert_memory_equal(k, k2, sizeof k);
    assert_memory_equal(b, b2, sizeof b);
    tfx_model_free(m);
}

/* Naive NHWC x HWIO valid convolution, stride 1: the definition of the layout. */
static void conv_ref(const float *x, int H, int W, int C, const float *k, int KH, int KW, int F, const float *b,
                     float *y)
{
    int OH = H - KH + 1, OW = W - KW + 1;
    for (int i = 0; i < OH; i++)
        for (int j = 0; j < OW; j++)
            for (int f = 0; f < F; f++) {
                double s = b ? b[f] : 0;
                for (int a = 0; a < KH; a++)
                    for (int bb = 0; bb < KW; bb++)
                        for (int c = 0; c < C; c++)
                            s += (double)x[((i + a) * W + (j + bb)) * C + c] * k[((a * KW + bb) * C + c) * F + f];
                y[(i * OW + j) * F + f] = (float)s;
            }
}

static void test_conv2d_layout_by_hand(void **state)
{
    (void)state;
    enum { H = 3, W = 4, C = 2, KH = 2, KW = 3, F = 3, OH = 2, OW = 2 };
    tfx_model *m = NULL;
    tfx_layer *l = NULL;
    OK(tfx_model_new(&m, H, W, C));
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = F;
    o.kernel_h = KH;
    o.kernel_w = KW;
    OK(tfx_model_add_conv2d(m, &o, &l));
    int shape[3];
    OK(tfx_layer_output_shape(l, shape));
    assert_int_equal(shape[0], OH);
    assert_int_equal(shape[1], OW);
    assert_int_equal(shape[2], F);

    /* x[h][w][c] = 100*h + 10*w + c: each output tells which input it read */
    float x[H * W * C];
    for (int h = 0; h < H; h++)
        for (int w = 0; w < W; w++)
            for (int c = 0; c < C; c++) x[(h * W + w) * C + c] = (float)(100 * h + 10 * w + c);

    /* One-hot kernel: K[kh=1][kw=2][in=1][out=2] = 1. Output channel 2 at (i, j) must be
     * x[i+1][j+2][1] = 100(i+1) + 10(j+2) + 1; channels 0 and 1 get only their bias. */
    float k[KH * KW * C * F] = {0};
    k[((1 * KW + 2) * C + 1) * F + 2] = 1.0f;
    const float b[F] = {0.25f, -0.5f, 0.0f};
    OK(tfx_layer_set_weights(l, k, b));
    float y[OH * OW * F];
    OK(tfx_model_predict(m, x, 1, y));
    const float want_c2[OH * OW] = {121, 131, 221, 231};
    for (int p = 0; p < OH * OW; p++) {
        assert_float_equal(y[p * F + 0], 0.25f, 1e-6);
        assert_float_equal(y[p * F + 1], -0.5f, 1e-6);
        assert_float_equal(y[p * F + 2], want_c2[p], 1e-4);
    }

    /* A second one-hot: K[0][1][0][0] = 2 -> y[i][j][0] = 2 * x[i][j+1][0] + bias */
    memset(k, 0, sizeof k);
    k[((0 * KW + 1) * C + 0) * F + 0] = 2.0f;
    OK(tfx_layer_set_weights(l, k, b));
    OK(tfx_model_predict(m, x, 1, y));
    const float want_c0[OH * OW] = {20.25f, 40.25f, 220.25f, 240.25f};
    for (int p = 0; p < OH * OW; p++) assert_float_equal(y[p * F + 0], want_c0[p], 1e-4);

    /* Dense random kernel against the naive reference, batch of 2. */
    float kr[KH * KW * C * F], br[F], x2[2 * H * W * C], y2[2 * OH * OW * F], ref[OH * OW * F];
    fill(kr, sizeof kr / sizeof *kr, 3, -1, 1);
    fill(br, F, 4, -1, 1);
    fill(x2, sizeof x2 / sizeof *x2, 5, -2, 2);
    OK(tfx_layer_set_weights(l, kr, br));
    OK(tfx_model_predict(m, x2, 2, y2));
    for (int n = 0; n < 2; n++) {
        conv_ref(x2 + n * H * W * C, H, W, C, kr, KH, KW, F, br, ref);
        for (int i = 0; i < OH * OW * F; i++) assert_float_equal(y2[n * OH * OW * F + i], ref[i], 1e-5);
    }
    float kg[KH * KW * C * F], bg[F];
    OK(tfx_layer_get_weights(l, kg, bg));
    assert_memory_equal(kg, kr, sizeof kr);
    assert_memory_equal(bg, br, sizeof br);
    tfx_model_free(m);
}

/* Flatten is Keras's (h, w, c) order: a Dense after it reads x[h][w][c] at row (h*W+w)*C+c. */
static void test_flatten_order_by_hand(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    tfx_layer *d = NULL;
    OK(tfx_model_new(&m, 2, 3, 2));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options o = dense_opts(1, TFX_ACTIVATION_LINEAR, NULL);
    o.use_bias = 0;
    OK(tfx_model_add_dense(m, &o, &d));
    size_t ks = 9, bs = 9;
    OK(tfx_layer_weight_sizes(d, &ks, &bs));
    assert_int_equal(ks, 12);
    assert_int_equal(bs, 0);
    float k[12] = {0};
    k[(1 * 3 + 2) * 2 + 0] = 1.0f; /* picks x[h=1][w=2][c=0] */
    OK(tfx_layer_set_weights(d, k, NULL));
    float x[12], y;
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    OK(tfx_model_predict(m, x, 1, &y));
    assert_float_equal(y, 10.0f, 0);
    tfx_model_free(m);
}

static void test_weights_round_trip_seed_model(void **state)
{
    (void)state;
    tfx_model *a = NULL, *b = NULL;
    OK(build_seed_model(&a));
    OK(build_seed_model(&b));
    OK(tfx_model_set_seed(b, 99));
    /* copy a's weights into b layer by layer through the public Keras-layout API */
    for (size_t i = 0; i < 6; i++) {
        tfx_layer *la = tfx_model_layer(a, i), *lb = tfx_model_layer(b, i);
        size_t ks, bs;
        OK(tfx_layer_weight_sizes(la, &ks, &bs));
        if (ks + bs == 0) continue;
        float *k = malloc(ks * sizeof(float)), *bi = malloc((bs ? bs : 1) * sizeof(float));
        float *k2 = malloc(ks * sizeof(float)), *b2 = malloc((bs ? bs : 1) * sizeof(float));
        assert_true(k && bi && k2 && b2);
        OK(tfx_layer_get_weights(la, k, bi));
        fill(bi, bs, (uint32_t)i, -0.1f, 0.1f); /* non-zero biases so they are exercised */
        OK(tfx_layer_set_weights(la, k, bi));
        OK(tfx_layer_set_weights(lb, k, bi));
        OK(tfx_layer_get_weights(lb, k2, b2));
        assert_memory_equal(k, k2, ks * sizeof(float));
        assert_memory_equal(bi, b2, bs * sizeof(float));
        free(k);
        free(bi);
        free(k2);
        free(b2);
    }
    enum { N = 2, IN = 32 * 32 * 3 };
    const size_t n = under_valgrind() ? 1 : N; /* the seed model is slow under valgrind */
    float *x = malloc(sizeof(float) * N * IN);
    assert_non_null(x);
    fill(x, (size_t)N * IN, 11, 0, 1);
    float ya[N * 10], yb[N * 10];
    OK(tfx_model_predict(a, x, n, ya));
    OK(tfx_model_predict(b, x, n, yb));
    assert_memory_equal(ya, yb, n * 10 * sizeof(float));
    free(x);
    tfx_model_free(a);
    tfx_model_free(b);
}

/* ---- seeding ---- */

static void all_weights(tfx_model *m, float *out, size_t cap, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks, bs;
        OK(tfx_layer_weight_sizes(l, &ks, &bs));
        if (ks + bs == 0) continue;
        assert_true(*n + ks + bs <= cap);
        OK(tfx_layer_get_weights(l, out + *n, out + *n + ks));
        *n += ks + bs;
    }
}

static void test_set_seed(void **state)
{
    (void)state;
    enum { CAP = 1000 };
    static float w1[CAP], w2[CAP], w3[CAP], w0[CAP];
    size_t n1, n2, n3, n0;
    tfx_model *a = NULL, *b = NULL;
    OK(build_small_model(&a));
    OK(build_small_model(&b));
    /* the default seed is 0 */
    all_weights(a, w0, CAP, &n0);
    OK(tfx_model_set_seed(a, 0));
    all_weights(a, w1, CAP, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(w0, w1, n1 * sizeof(float));
    /* same seed, two models -> identical weights, even after a detour through another seed */
    OK(tfx_model_set_seed(a, 1234));
    OK(tfx_model_set_seed(b, 77));
    OK(tfx_model_set_seed(b, 1234));
    all_weights(a, w1, CAP, &n1);
    all_weights(b, w2, CAP, &n2);
    assert_int_equal(n1, tfx_model_param_count(a));
    assert_int_equal(n1, n2);
    assert_memory_equal(w1, w2, n1 * sizeof(float));
    /* a different seed -> different kernels (most entries differ) */
    OK(tfx_model_set_seed(b, 1235));
    all_weights(b, w3, CAP, &n3);
    size_t differ = 0, nonzero = 0;
    for (size_t i = 0; i < n1; i++) {
        differ += w1[i] != w3[i];
        nonzero += w1[i] != 0.0f;
    }
    assert_true(nonzero > 0);
    assert_true(differ * 10 >= nonzero * 9);
    /* re-seeding resets biases that were set by hand */
    tfx_layer *d = tfx_model_find_layer(a, "dense");
    float k[3 * 3 * 3 * 4 * 3], bias[4] = {1, 2, 3, 4}; /* 3x1x3 flat -> 4 units */
    size_t ks, bs;
    OK(tfx_layer_weight_sizes(d, &ks, &bs));
    assert_true(ks <= sizeof k / sizeof *k);
    OK(tfx_layer_get_weights(d, k, bias + 0));
    float ones[4] = {1, 1, 1, 1};
    OK(tfx_layer_set_weights(d, k, ones));
    OK(tfx_model_set_seed(a, 1234));
    all_weights(a, w2, CAP, &n2);
    assert_memory_equal(w1, w2, n1 * sizeof(float));
    tfx_model_free(a);
    tfx_model_free(b);
}

/* ---- bad input ---- */

static void test_null_pointers(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_small_model(&m));
    tfx_layer *l = tfx_model_layer(m, 0), *out = (tfx_layer *)1;
    int shape[3];
    float buf[1000] = {0};
    size_t sz;
    tfx_conv2d_options co = conv_opts(2, 1, TFX_ACTIVATION_LINEAR, NULL);
    tfx_dense_options dn = dense_opts(2, TFX_ACTIVATION_LINEAR, NULL);
    tfx_pool2d_options po = TFX_POOL2D_OPTIONS_INIT;
    tfx_batch_norm_options bo = TFX_BATCH_NORM_OPTIONS_INIT;

    CHECK_ERR(tfx_model_new(NULL, 1, 1, 1), TFX_EINVAL, "'out' is NULL");
    tfx_model_free(NULL); /* no-op */
    CHECK_ERR(tfx_model_set_seed(NULL, 1), TFX_EINVAL, "tfx_model_set_seed: argument 'm");
    CHECK_ERR(tfx_model_add_conv2d(NULL, &co, &out), TFX_EINVAL, "tfx_model_add_conv2d: argument 'm' is NULL");
    assert_null(out);
    out = (tfx_layer *)1;
    CHECK_ERR(tfx_model_add_conv2d(m, NULL, &out), TFX_EINVAL, "tfx_model_add_conv2d: argument 'o' is NULL");
    assert_null(out);
    CHECK_ERR(tfx_model_add_dense(NULL, &dn, NULL), TFX_EINVAL, "tfx_model_add_dense: argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_dense(m, NULL, NULL), TFX_EINVAL, "tfx_model_add_dense: argument 'o' is NULL");
    CHECK_ERR(tfx_model_add_flatten(NULL, NULL, NULL), TFX_EINVAL, "tfx_model_add_flatten: argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_max_pooling2d(NULL, &po, NULL), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_average_pooling2d(NULL, &po, NULL), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_global_average_pooling2d(NULL, NULL, NULL), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_dropout(NULL, 0.5f, NULL, NULL), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_activation(NULL, TFX_ACTIVATION_RELU, 0, NULL, NULL), TFX_EINVAL,
              "argument 'm' is NULL");
    CHECK_ERR(tfx_model_add_batch_normalization(NULL, &bo, NULL), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR_IF(sz = tfx_model_layer_count(NULL), sz == 0, TFX_EINVAL, "tfx_model_layer_count");
    CHECK_ERR_IF(out = tfx_model_layer(NULL, 0), out == NULL, TFX_EINVAL, "tfx_model_layer: argument 'm'");
    CHECK_ERR_IF(out = tfx_model_find_layer(NULL, "dense"), out == NULL, TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR_IF(out = tfx_model_find_layer(m, NULL), out == NULL, TFX_EINVAL, "argument 'name' is NULL");
    CHECK_ERR(tfx_model_input_shape(NULL, shape), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_input_shape(m, NULL), TFX_EINVAL, "argument 'shape' is NULL");
    CHECK_ERR(tfx_model_output_shape(NULL, shape), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_output_shape(m, NULL), TFX_EINVAL, "argument 'shape' is NULL");
    CHECK_ERR_IF(sz = tfx_model_param_count(NULL), sz == 0, TFX_EINVAL, "tfx_model_param_count");
    CHECK_ERR_IF(sz = tfx_model_trainable_param_count(NULL), sz == 0, TFX_EINVAL,
                 "tfx_model_trainable_param_count");
    const char *s = "x";
    CHECK_ERR_IF(s = tfx_layer_name(NULL), s == NULL, TFX_EINVAL, "tfx_layer_name");
    s = "x";
    CHECK_ERR_IF(s = tfx_layer_type_name(NULL), s == NULL, TFX_EINVAL, "tfx_layer_type_name");
    CHECK_ERR(tfx_layer_get_kind(NULL), TFX_EINVAL, "tfx_layer_get_kind: argument 'l' is NULL");
    CHECK_ERR(tfx_layer_index(NULL), TFX_EINVAL, "tfx_layer_index: argument 'l' is NULL");
    CHECK_ERR_IF(sz = tfx_layer_param_count(NULL), sz == 0, TFX_EINVAL, "tfx_layer_param_count");
    CHECK_ERR(tfx_layer_output_shape(NULL, shape), TFX_EINVAL, "argument 'l' is NULL");
    CHECK_ERR(tfx_layer_output_shape(l, NULL), TFX_EINVAL, "argument 'shape' is NULL");
    CHECK_ERR(tfx_layer_input_shape(NULL, shape), TFX_EINVAL, "argument 'l' is NULL");
    CHECK_ERR(tfx_layer_input_shape(l, NULL), TFX_EINVAL, "argument 'shape' is NULL");
    CHECK_ERR(tfx_layer_weight_sizes(NULL, &sz, &sz), TFX_EINVAL, "argument 'l' is NULL");
    CHECK_ERR(tfx_layer_set_weights(NULL, buf, buf), TFX_EINVAL, "argument 'l' is NULL");
    CHECK_ERR(tfx_layer_set_weights(l, NULL, buf), TFX_EINVAL, "needs a kernel of 54 floats");
    CHECK_ERR(tfx_layer_set_weights(l, buf, NULL), TFX_EINVAL, "needs a bias of 3 floats");
    CHECK_ERR(tfx_layer_get_weights(NULL, buf, buf), TFX_EINVAL, "argument 'l' is NULL");
    CHECK_ERR(tfx_layer_get_weights(l, NULL, buf), TFX_EINVAL, "needs a kernel buffer of 54 floats");
    CHECK_ERR(tfx_layer_get_weights(l, buf, NULL), TFX_EINVAL, "needs a bias buffer of 3 floats");
    CHECK_ERR(tfx_model_predict(NULL, buf, 1, buf), TFX_EINVAL, "tfx_model_predict: argument 'm' is NULL");
    CHECK_ERR(tfx_model_predict(m, NULL, 1, buf), TFX_EINVAL, "tfx_model_predict: argument 'x' is NULL");
    CHECK_ERR(tfx_model_predict(m, buf, 1, NULL), TFX_EINVAL, "tfx_model_predict: argument 'out' is NULL");
    CHECK_ERR(tfx_model_set_batch_size(NULL, 4), TFX_EINVAL, "argument 'm' is NULL");
    CHECK_ERR(tfx_model_set_threads(NULL, 2), TFX_EINVAL, "tfx_model_set_threads: argument 'm' is NULL");
    CHECK_ERR_IF(s = tfx_model_summary(NULL), s == NULL, TFX_EINVAL, "tfx_model_summary: argument 'm' is NULL");
    CHECK_ERR(tfx_conv2d_options_init(NULL, 1), TFX_EINVAL, "argument 'opts' is NULL");
    CHECK_ERR(tfx_dense_options_init(NULL, 1), TFX_EINVAL, "argument 'opts' is NULL");
    CHECK_ERR(tfx_pool2d_options_init(NULL, 1), TFX_EINVAL, "argument 'opts' is NULL");
    CHECK_ERR(tfx_batch_norm_options_init(NULL, 1), TFX_EINVAL, "argument 'opts' is NULL");
    /* nothing above changed the model */
    assert_int_equal(tfx_model_layer_count(m), 3);
    tfx_model_free(m);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    tfx_model *m = (tfx_model *)1;
    CHECK_ERR(tfx_model_new(&m, 0, 32, 3), TFX_EINVAL, "input shape 0x32x3 must be positive");
    assert_null(m);
    CHECK_ERR(tfx_model_new(&m, 32, -1, 3), TFX_EINVAL, "input shape 32x-1x3 must be positive");
    CHECK_ERR(tfx_model_new(&m, 32, 32, 0), TFX_EINVAL, "input shape 32x32x0 must be positive");
    CHECK_ERR(tfx_model_new(&m, -5, -5, -5), TFX_EINVAL, "must be positive");
    CHECK_ERR(tfx_model_new(&m, 1 << 16, 1 << 16, 1 << 10), TFX_EINVAL, "too large");
    assert_null(m);

    OK(tfx_model_new(&m, 8, 8, 3));
    tfx_conv2d_options c = conv_opts(0, 3, TFX_ACTIVATION_RELU, NULL);
    tfx_layer *out = (tfx_layer *)1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, &out), TFX_EINVAL, "filters = 0");
    assert_null(out);
    c.filters = -4;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "filters = -4");
    c.filters = 4;
    c.kernel_h = 0;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "kernel 0x3 must be positive");
    c.kernel_h = 3;
    c.kernel_w = -2;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "kernel 3x-2 must be positive");
    c.kernel_w = 3;
    c.stride_w = 0;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "strides 1x0 must be positive");
    c.stride_w = 1;
    /* kernel larger than the 8x8 input with valid padding: a shape error naming both */
    c.kernel_h = 9;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_ESHAPE, "kernel 9x3 does not fit the 8x8 input");
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_ESHAPE, "layer 'conv2d' (Conv2D)");
    /* ... but with same padding it fits */
    c.padding = TFX_PADDING_SAME;
    OK(tfx_model_add_conv2d(m, &c, &out));
    int shape[3];
    OK(tfx_layer_output_shape(out, shape));
    assert_int_equal(shape[0], 8);
    assert_int_equal(shape[1], 8);
    c.kernel_h = 3; /* from here on only the checked field is wrong */
    c.padding = 7;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "unknown padding 7");
    c.padding = -1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "unknown padding -1");
    c.padding = TFX_PADDING_VALID;
    c.activation = 42;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "unknown activation 42");
    c.activation = -1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "unknown activation -1");
    c.activation = TFX_ACTIVATION_LEAKY_RELU;
    c.activation_alpha = NAN;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "alpha");

    tfx_dense_options d = dense_opts(0, TFX_ACTIVATION_RELU, NULL);
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "units = 0");
    d.units = -3;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "units = -3");
    d.units = 3;
    d.activation = TFX_ACTIVATION_HARD_SWISH + 1;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "unknown activation 12");
    d.activation = TFX_ACTIVATION_CLIP;
    d.clip_min = 1.0f;
    d.clip_max = 1.0f;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "tfx_model_add_dense: clip bounds 1..1");
    d.clip_max = NAN;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "clip bounds");
    c.activation = TFX_ACTIVATION_CLIP;
    c.activation_alpha = 0.0f;
    c.clip_min = 2.0f;
    c.clip_max = -INFINITY;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "tfx_model_add_conv2d: clip bounds 2..-inf");
    CHECK_ERR(tfx_model_add_clip(m, 3.0f, 2.0f, NULL, NULL), TFX_EINVAL, "tfx_model_add_clip: clip bounds 3..2");
    CHECK_ERR(tfx_model_add_clip(m, NAN, 2.0f, NULL, NULL), TFX_EINVAL, "clip bounds");
    CHECK_ERR(tfx_model_add_activation(m, TFX_ACTIVATION_CLIP, 0, NULL, NULL), TFX_EINVAL, "use tfx_model_add_clip");
    d.activation = TFX_ACTIVATION_ELU;
    d.activation_alpha = INFINITY;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "alpha");
    CHECK_ERR(tfx_model_add_activation(m, 99, 0, NULL, NULL), TFX_EINVAL, "unknown activation 99");
    CHECK_ERR(tfx_model_add_dropout(m, 1.0f, NULL, NULL), TFX_EINVAL, "rate 1 must be in [0, 1)");
    CHECK_ERR(tfx_model_add_dropout(m, -0.1f, NULL, NULL), TFX_EINVAL, "rate -0.1 must be in [0, 1)");
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_w = 0;
    CHECK_ERR(tfx_model_add_max_pooling2d(m, &p, NULL), TFX_EINVAL, "pool size 2x0 must be positive");
    p.pool_w = 2;
    p.padding = 3;
    CHECK_ERR(tfx_model_add_average_pooling2d(m, &p, NULL), TFX_EINVAL, "unknown padding 3");
    p.padding = TFX_PADDING_VALID;
    p.pool_h = p.pool_w = 9;
    CHECK_ERR(tfx_model_add_max_pooling2d(m, &p, NULL), TFX_ESHAPE, "max_pooling2d");
    assert_int_equal(tfx_model_layer_count(m), 1); /* failed adds changed nothing */

    float x[8 * 8 * 3] = {0}, y[8 * 8 * 4];
    CHECK_ERR(tfx_model_predict(m, x, 0, y), TFX_EINVAL, "n = 0");
    CHECK_ERR(tfx_model_set_batch_size(m, 0), TFX_EINVAL, "batch size 0");
    CHECK_ERR(tfx_model_set_threads(m, -1), TFX_EINVAL, "threads = -1 must be in 0..16");
    CHECK_ERR(tfx_model_set_threads(m, 17), TFX_EINVAL, "threads = 17 must be in 0..16");
    assert_int_equal(tfx_model_set_threads(m, 16), TFX_OK);
    assert_int_equal(tfx_model_set_threads(m, 0), TFX_OK);
    tfx_model_free(m);

    /* predict on a model without layers */
    OK(tfx_model_new(&m, 2, 2, 1));
    CHECK_ERR(tfx_model_predict(m, x, 1, y), TFX_ESTATE, "no layers");
    tfx_model_free(m);
}

static void test_bad_names(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(tfx_model_new(&m, 4, 4, 1));
    tfx_conv2d_options c = conv_opts(2, 1, TFX_ACTIVATION_LINEAR, "features");
    OK(tfx_model_add_conv2d(m, &c, NULL));
    /* the same name again, in another layer kind too */
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "duplicate layer name 'features'");
    CHECK_ERR(tfx_model_add_flatten(m, "features", NULL), TFX_EINVAL, "duplicate layer name 'features'");
    CHECK_ERR(tfx_model_add_flatten(m, "", NULL), TFX_EINVAL, "name is empty");
    CHECK_ERR(tfx_model_add_flatten(m, "a\nb", NULL), TFX_EINVAL, "control character");
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_ERR(tfx_model_add_flatten(m, longname, NULL), TFX_EINVAL, "299 characters");
    /* an explicit name taken by a later automatic one is skipped, as in Keras */
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU, 0, "conv2d", NULL));
    tfx_layer *l = NULL;
    c.name = NULL;
    OK(tfx_model_add_conv2d(m, &c, &l));
    assert_string_equal(tfx_layer_name(l), "conv2d_1");
    OK(tfx_model_add_conv2d(m, &c, &l));
    assert_string_equal(tfx_layer_name(l), "conv2d_2");
    assert_int_equal(tfx_model_layer_count(m), 4);

    /* lookups that miss: the message names the missing layer and the choices */
    CHECK_ERR_IF(l = tfx_model_find_layer(m, "visualisation_layer"), l == NULL, TFX_EINVAL,
                 "no layer named 'visualisation_layer'");
    assert_non_null(strstr(tfx_error_last()->message, "'features'"));
    CHECK_ERR_IF(l = tfx_model_layer(m, 4), l == NULL, TFX_EINVAL, "index 4 out of range (model has 4 layers)");
    tfx_model_free(m);
}

static void test_bad_weights(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_small_model(&m));
    tfx_layer *f = tfx_model_find_layer(m, "flatten"), *d = tfx_model_find_layer(m, "dense");
    assert_non_null(f);
    assert_non_null(d);
    float k[200], b[4];
    size_t ks = 1, bs = 1;
    OK(tfx_layer_weight_sizes(f, &ks, &bs));
    assert_int_equal(ks + bs, 0);
    OK(tfx_layer_weight_sizes(f, NULL, NULL));
    CHECK_ERR(tfx_layer_set_weights(f, k, b), TFX_EINVAL, "layer 'flatten' (Flatten) has no weights");
    CHECK_ERR(tfx_layer_get_weights(f, k, b), TFX_EINVAL, "layer 'flatten' (Flatten) has no weights");

    OK(tfx_layer_weight_sizes(d, &ks, &bs));
    assert_int_equal(ks, 4 * 3 * 3 * 4); /* 4x3x3 conv output flattened -> 4 units */
    float before[200], bb[4], after[200], ba[4];
    OK(tfx_layer_get_weights(d, before, bb));
    memcpy(k, before, sizeof before);
    memcpy(b, bb, sizeof bb);
    k[7] = NAN;
    CHECK_ERR(tfx_layer_set_weights(d, k, b), TFX_EINVAL, "kernel[7] is not finite");
    k[7] = 0;
    b[3] = -INFINITY;
    CHECK_ERR(tfx_layer_set_weights(d, k, b), TFX_EINVAL, "bias[3] is not finite");
    /* a rejected set leaves the weights untouched */
    OK(tfx_layer_get_weights(d, after, ba));
    assert_memory_equal(before, after, ks * sizeof(float));
    assert_memory_equal(bb, ba, sizeof bb);
    tfx_model_free(m);
}

static void test_options_versions(void **state)
{
    (void)state;
    tfx_conv2d_options c;
    tfx_dense_options d;
    tfx_pool2d_options p;
    tfx_batch_norm_options bn;
    memset(&c, 0xff, sizeof c);
    OK(tfx_conv2d_options_init(&c, TFX_CONV2D_OPTIONS_VERSION));
    tfx_conv2d_options cdef = TFX_CONV2D_OPTIONS_INIT;
    assert_int_equal(c.version, TFX_CONV2D_OPTIONS_VERSION);
    assert_int_equal(c.kernel_h, cdef.kernel_h);
    assert_int_equal(c.stride_w, 1);
    assert_int_equal(c.use_bias, 1);
    assert_null(c.name);
    OK(tfx_dense_options_init(&d, TFX_DENSE_OPTIONS_VERSION));
    assert_int_equal(d.version, TFX_DENSE_OPTIONS_VERSION);
    assert_int_equal(d.use_bias, 1);
    assert_int_equal(d.activation, TFX_ACTIVATION_LINEAR);
    OK(tfx_pool2d_options_init(&p, TFX_POOL2D_OPTIONS_VERSION));
    assert_int_equal(p.pool_h, 2);
    assert_int_equal(p.stride_h, 0);
    OK(tfx_batch_norm_options_init(&bn, TFX_BATCH_NORM_OPTIONS_VERSION));
    assert_float_equal(bn.momentum, 0.99f, 0);
    assert_float_equal(bn.epsilon, 0.001f, 0);

    CHECK_ERR(tfx_conv2d_options_init(&c, 0), TFX_EVERSION, "version 0");
    CHECK_ERR(tfx_conv2d_options_init(&c, TFX_CONV2D_OPTIONS_VERSION + 1), TFX_EVERSION, "version 3");
    CHECK_ERR(tfx_dense_options_init(&d, 0), TFX_EVERSION, "tfx_dense_options_init: version 0");
    CHECK_ERR(tfx_dense_options_init(&d, 1000), TFX_EVERSION, "version 1000");
    CHECK_ERR(tfx_pool2d_options_init(&p, 0), TFX_EVERSION, "version 0");
    CHECK_ERR(tfx_pool2d_options_init(&p, 5), TFX_EVERSION, "version 5");
    CHECK_ERR(tfx_batch_norm_options_init(&bn, 0), TFX_EVERSION, "version 0");
    CHECK_ERR(tfx_batch_norm_options_init(&bn, 2), TFX_EVERSION, "version 2");

    tfx_model *m = NULL;
    OK(tfx_model_new(&m, 8, 8, 1));
    c = conv_opts(2, 3, TFX_ACTIVATION_RELU, NULL);
    c.version = 0;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EVERSION, "tfx_model_add_conv2d: options version 0");
    c.version = TFX_CONV2D_OPTIONS_VERSION + 1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EVERSION, "options version 3 is not supported");
    d = dense_opts(2, TFX_ACTIVATION_RELU, NULL);
    d.version = 0;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EVERSION, "tfx_model_add_dense: options version 0");
    d.version = 77;
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EVERSION, "options version 77");
    p.version = 0;
    CHECK_ERR(tfx_model_add_max_pooling2d(m, &p, NULL), TFX_EVERSION, "options version 0");
    p.version = 9;
    CHECK_ERR(tfx_model_add_average_pooling2d(m, &p, NULL), TFX_EVERSION, "options version 9");
    bn.version = 0;
    CHECK_ERR(tfx_model_add_batch_normalization(m, &bn, NULL), TFX_EVERSION, "options version 0");
    bn.version = 3;
    CHECK_ERR(tfx_model_add_batch_normalization(m, &bn, NULL), TFX_EVERSION, "options version 3");
    assert_int_equal(tfx_model_layer_count(m), 0);
    /* NULL options mean defaults where the defaults are complete */
    OK(tfx_model_add_max_pooling2d(m, NULL, NULL));
    OK(tfx_model_add_batch_normalization(m, NULL, NULL));
    int shape[3];
    OK(tfx_model_output_shape(m, shape));
    assert_int_equal(shape[0], 4);
    tfx_model_free(m);
}

/* ---- errors: strings, never NULL, thread-local ---- */

static void test_status_strings(void **state)
{
    (void)state;
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        {TFX_OK, "TFX_OK"},         {TFX_ERROR, "TFX_ERROR"},     {TFX_EINVAL, "TFX_EINVAL"},
        {TFX_ENOMEM, "TFX_ENOMEM"}, {TFX_ESHAPE, "TFX_ESHAPE"},   {TFX_ESTATE, "TFX_ESTATE"},
        {TFX_EIO, "TFX_EIO"},       {TFX_EFORMAT, "TFX_EFORMAT"}, {TFX_EVERSION, "TFX_EVERSION"},
        {TFX_EUSER, "TFX_EUSER"},   {TFX_ENOTSUP, "TFX_ENOTSUP"},
    };
    /* the values are fixed forever */
    for (int i = 0; i < 11; i++) assert_int_equal(codes[i].code, -i);
    for (int i = 0; i < 11; i++) {
        const char *s = tfx_status_str(codes[i].code);
        assert_non_null(s);
        /* "TFX_E...:" exactly, so TFX_E does not match TFX_EIO's prefix by accident */
        assert_int_equal(strncmp(s, codes[i].name, strlen(codes[i].name)), 0);
        assert_int_equal(s[strlen(codes[i].name)], ':');
        for (int j = 0; j < i; j++) assert_string_not_equal(s, tfx_status_str(codes[j].code));
    }
    const int unknown[] = {1, -11, 12345, -100000, INT32_MIN};
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        const char *s = tfx_status_str(unknown[i]);
        assert_non_null(s);
        assert_non_null(strstr(s, "unknown"));
    }
}

static void test_error_last_never_null(void **state)
{
    (void)state;
    tfx_error_clear();
    const tfx_error *e = tfx_error_last();
    assert_non_null(e);
    assert_non_null(e->message);
    assert_int_equal(e->code, TFX_OK);
    assert_string_equal(e->message, "");
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, 0, 1, 1), TFX_EINVAL);
    e = tfx_error_last();
    assert_non_null(e->message);
    assert_int_equal(e->code, TFX_EINVAL);
    assert_true(strlen(e->message) > 10);
    tfx_error_clear();
    assert_int_equal(tfx_error_last()->code, TFX_OK);
    assert_string_equal(tfx_error_last()->message, "");
}

/* A fresh thread starts with no error, and each thread sees only its own message. */
static pthread_barrier_t barrier;
typedef struct {
    int height;
    int ok;
    int started_clean;
    char seen[200];
} thread_arg;

static void *error_thread(void *p)
{
    thread_arg *a = p;
    const tfx_error *e = tfx_error_last();
    a->started_clean = e != NULL && e->message != NULL && e->code == TFX_OK && e->message[0] == '\0';
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, a->height, 4, 4);
    pthread_barrier_wait(&barrier); /* both threads have now set their error */
    pthread_barrier_wait(&barrier);
    e = tfx_error_last();
    snprintf(a->seen, sizeof a->seen, "%s", e->message);
    char want[64];
    snprintf(want, sizeof want, "input shape %dx4x4", a->height);
    a->ok = rc == TFX_EINVAL && e->code == TFX_EINVAL && strstr(e->message, want) != NULL;
    return NULL;
}

static void test_error_thread_local(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    tfx_error_clear();
    assert_int_equal(tfx_model_new(&m, 1, 1, -7), TFX_EINVAL);
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 2), 0);
    thread_arg a = {.height = -1}, b = {.height = -2};
    pthread_t ta, tb;
    assert_int_equal(pthread_create(&ta, NULL, error_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, error_thread, &b), 0);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    pthread_barrier_destroy(&barrier);
    if (!a.ok || !b.ok) fail_msg("thread messages: \"%s\" / \"%s\"", a.seen, b.seen);
    assert_true(a.started_clean);
    assert_true(b.started_clean);
    /* the main thread's message is still its own */
    assert_non_null(strstr(tfx_error_last()->message, "1x1x-7"));
}

/* tfx__strerror (strerror_r, GNU or XSI): the message in the caller's buffer or a static
 * string, never NULL, also for an unknown value and a buffer too short. */
static void test_strerror(void **state)
{
    (void)state;
    char buf[128], tiny[4];
    const char *s = tfx__strerror(ENOENT, buf, sizeof buf);
    assert_non_null(s);
    assert_string_equal(s, "No such file or directory"); /* POSIX's wording, glibc's and musl's */
    s = tfx__strerror(123456, buf, sizeof buf);
    assert_non_null(s);
    assert_true(s[0] != '\0');
    s = tfx__strerror(EACCES, tiny, sizeof tiny);
    assert_non_null(s);
    assert_true(strlen(s) < sizeof tiny || s != tiny);
}

/* ---- failure paths do not leak (run under valgrind / ASan) ---- */

static int small_model_workload(void)
{
    tfx_model *m = NULL;
    int rc = build_small_model(&m);
    if (rc) return rc;
    float x[2 * 6 * 5 * 2], y[2 * 4];
    fill(x, sizeof x / sizeof *x, 1, 0, 1);
    if ((rc = tfx_model_set_seed(m, 3)) || (rc = tfx_model_predict(m, x, 2, y))) {
        tfx_model_free(m);
        return rc;
    }
    if (!tfx_model_summary(m)) rc = tfx_error_last()->code;
    tfx_model_free(m);
    return rc;
}

static void test_alloc_failures(void **state)
{
    (void)state;
    /* Fail the k-th allocation for every k until the workload no longer allocates that many:
     * each failure must be TFX_ENOMEM with a message, and leave nothing behind. */
    int k, failures = 0;
    for (k = 1; k < 10000; k++) {
        tfx__alloc_fail_after(k);
        int rc = small_model_workload();
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) break;
        if (rc != TFX_ENOMEM) fail_msg("k=%d: rc %d: %s", k, rc, tfx_error_last()->message);
        assert_int_equal(tfx_error_last()->code, TFX_ENOMEM);
        assert_non_null(strstr(tfx_error_last()->message, "memory"));
        failures++;
    }
    print_message("allocation failure injected at %d points\n", failures);
    assert_true(failures >= 5);
    assert_int_equal(small_model_workload(), TFX_OK);
}

/* Failed adds leave the model intact and usable. */
static void test_failed_add_keeps_model(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    OK(build_small_model(&m));
    float x[6 * 5 * 2], y1[4], y2[4];
    fill(x, sizeof x / sizeof *x, 9, 0, 1);
    OK(tfx_model_predict(m, x, 1, y1));
    tfx_dense_options d = dense_opts(3, TFX_ACTIVATION_RELU, "dense"); /* duplicate */
    CHECK_ERR(tfx_model_add_dense(m, &d, NULL), TFX_EINVAL, "duplicate");
    d.name = NULL;
    for (int k = 1; k < 6; k++) {
        tfx__alloc_fail_after(k);
        int rc = tfx_model_add_dense(m, &d, NULL);
        tfx__alloc_fail_after(0);
        if (rc == TFX_OK) break;
        assert_int_equal(rc, TFX_ENOMEM);
        assert_int_equal(tfx_model_layer_count(m), 3);
        assert_int_equal(tfx_model_param_count(m), 3 * 3 * 2 * 3 + 3 + 4 * 3 * 3 * 4 + 4);
        OK(tfx_model_predict(m, x, 1, y2));
        assert_memory_equal(y1, y2, sizeof y1);
    }
    tfx_model_free(m);
}

/* The options of the kinds and fields added after 0.1 (issue 17): each bad value refused with a
 * message naming the function and the value; the model unchanged. */
static void test_new_layer_options_refused(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    tfx_layer *none = (tfx_layer *)1;
    CHECK_ERR(tfx_model_add_clip(NULL, 0, 1, NULL, &none), TFX_EINVAL, "'m' is NULL");
    assert_null(none);
    CHECK_ERR(tfx_model_add_global_max_pooling2d(NULL, NULL, NULL), TFX_EINVAL, "NULL");
    CHECK_ERR(tfx_model_add_zero_padding2d(NULL, 1, 1, 1, 1, NULL, NULL), TFX_EINVAL, "NULL");
    CHECK_ERR(tfx_model_add_reshape(NULL, 1, 1, 1, NULL, NULL), TFX_EINVAL, "NULL");
    CHECK_ERR(tfx_model_add_depthwise_conv2d(NULL, NULL, NULL), TFX_EINVAL, "NULL");
    OK(tfx_model_new(&m, 6, 5, 2));
    CHECK_ERR(tfx_model_add_depthwise_conv2d(m, NULL, NULL), TFX_EINVAL, "'o' is NULL");
    tfx_conv2d_options c = conv_opts(2, 3, TFX_ACTIVATION_RELU, NULL);
    c.pad_top = 1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL,
              "tfx_model_add_conv2d: pads (top 1, bottom 0, left 0, right 0) need padding = TFX_PADDING_EXPLICIT");
    c.padding = TFX_PADDING_EXPLICIT;
    c.pad_right = -1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "tfx_model_add_conv2d: pads (top 1, bottom 0, left 0, "
                                                             "right -1) must be in 0..1048576");
    c.padding = 3;
    c.pad_top = c.pad_right = 0;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "tfx_model_add_conv2d: unknown padding 3");
    c.padding = TFX_PADDING_EXPLICIT;
    c.kernel_h = 9;
    c.pad_top = 1, c.pad_bottom = 1;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_ESHAPE,
              "kernel 9x3 does not fit the 6x5 input padded by (top 1, bottom 1, left 0, right 0)");
    c.pad_bottom = 2; /* 6 + 3 = 9: fits, one output row */
    tfx_layer *l = NULL;
    OK(tfx_model_add_conv2d(m, &c, &l));
    int s[3];
    OK(tfx_layer_output_shape(l, s));
    assert_true(s[0] == 1 && s[1] == 3 && s[2] == 2);
    c = conv_opts(3, 1, TFX_ACTIVATION_LINEAR, NULL);
    c.groups = 0;
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_EINVAL, "tfx_model_add_conv2d: groups = 0 must be in 1..1048576");
    c.groups = 2; /* 2 input channels, 3 filters */
    CHECK_ERR(tfx_model_add_conv2d(m, &c, NULL), TFX_ESHAPE, "groups = 2 must divide the 2 input channels and the 3 "
                                                            "filters");
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.depth_multiplier = 0;
    CHECK_ERR(tfx_model_add_depthwise_conv2d(m, &dw, NULL), TFX_EINVAL,
              "tfx_model_add_depthwise_conv2d: depth_multiplier = 0 must be in 1..1048576");
    dw.depth_multiplier = 1;
    dw.kernel_h = 2; /* the 1x3x2 map: 2 rows do not fit */
    CHECK_ERR(tfx_model_add_depthwise_conv2d(m, &dw, NULL), TFX_ESHAPE, "kernel 2x3 does not fit the 1x3 input");
    dw.kernel_h = 1;
    dw.version = 2;
    CHECK_ERR(tfx_model_add_depthwise_conv2d(m, &dw, NULL), TFX_EVERSION, "options version 2 is not supported");
    tfx_model_free(m);

    OK(tfx_model_new(&m, 6, 5, 2));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.count_include_pad = 1;
    CHECK_ERR(tfx_model_add_max_pooling2d(m, &p, NULL), TFX_EINVAL,
              "tfx_model_add_max_pooling2d: count_include_pad = 1 is for average pooling");
    p.count_include_pad = 0;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_left = 2; /* a 2-wide window of padding only */
    CHECK_ERR(tfx_model_add_average_pooling2d(m, &p, NULL), TFX_ESHAPE,
              "pads (top 0, bottom 0, left 2, right 0) must be smaller than the pool 2x2");
    p.padding = TFX_PADDING_SAME;
    CHECK_ERR(tfx_model_add_average_pooling2d(m, &p, NULL), TFX_EINVAL,
              "tfx_model_add_average_pooling2d: pads (top 0, bottom 0, left 2, right 0) need padding");
    CHECK_ERR(tfx_model_add_zero_padding2d(m, 0, -1, 0, 0, NULL, NULL), TFX_EINVAL,
              "tfx_model_add_zero_padding2d: padding (top 0, bottom -1, left 0, right 0) must be in 0..1048576");
    CHECK_ERR(tfx_model_add_zero_padding2d(m, 1 << 20, 1, 0, 0, NULL, NULL), TFX_ESHAPE,
              "padding 6x5 to 1048583x5 is larger than 1048576");
    assert_int_equal(tfx_model_layer_count(m), 0);
    OK(tfx_model_add_flatten(m, NULL, NULL));
    CHECK_ERR(tfx_model_add_global_max_pooling2d(m, NULL, NULL), TFX_ESHAPE,
              "GlobalMaxPooling2D needs an image input (h, w, c), got a flat tensor of 60");
    CHECK_ERR(tfx_model_add_zero_padding2d(m, 1, 1, 1, 1, NULL, NULL), TFX_ESHAPE, "ZeroPadding2D needs an image");
    CHECK_ERR(tfx_model_add_reshape(m, -1, -1, 6, NULL, NULL), TFX_EINVAL,
              "tfx_model_add_reshape: target shape -1x-1x6: only one size may be -1");
    CHECK_ERR(tfx_model_add_reshape(m, 0, 2, 6, NULL, NULL), TFX_EINVAL, "each size must be in 1..1048576");
    CHECK_ERR(tfx_model_add_reshape(m, 7, -1, 1, NULL, NULL), TFX_ESHAPE,
              "tfx_model_add_reshape: target shape 7x-1x1: the input's 60 values do not give the -1 size");
    CHECK_ERR(tfx_model_add_reshape(m, 7, 2, 4, NULL, NULL), TFX_ESHAPE,
              "target shape 7x2x4 has 56 values, the input 1x1x60 has 60");
    tfx_layer *r = NULL;
    OK(tfx_model_add_reshape(m, 5, -1, 3, NULL, &r)); /* a flat tensor back to an image */
    OK(tfx_layer_output_shape(r, s));
    assert_true(s[0] == 5 && s[1] == 4 && s[2] == 3);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_layer_options_refused),
        cmocka_unit_test(test_seed_model_structure),
        cmocka_unit_test(test_seed_model_summary),
        cmocka_unit_test(test_seed_model_predict_batch),
        cmocka_unit_test(test_dense_layout_by_hand),
        cmocka_unit_test(test_conv2d_layout_by_hand),
        cmocka_unit_test(test_flatten_order_by_hand),
        cmocka_unit_test(test_weights_round_trip_seed_model),
        cmocka_unit_test(test_set_seed),
        cmocka_unit_test(test_null_pointers),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_options_versions),
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_error_last_never_null),
        cmocka_unit_test(test_error_thread_local),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_alloc_failures),
        cmocka_unit_test(test_failed_add_keeps_model),
    };
    return cmocka_run_group_tests_name("model_api", tests, NULL, NULL);
}
