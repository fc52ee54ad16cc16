/* Forward outputs of Conv2D, (Flatten+)Dense, MaxPooling2D, AveragePooling2D and
 * GlobalAveragePooling2D against golden values from PyTorch (tests/engine/gen_golden_layers.py,
 * float64 reference, explicit NHWC/NCHW and HWIO/OIHW conversions, TF-style SAME padding).
 * Each case builds a one-layer model through the public API, sets the golden weights with
 * tfx_layer_set_weights and runs tfx_model_predict.
 * Pass: every element |a - b| <= 1e-5 * max(1, |b|). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tfx/tfx.h"

#define TOL 1e-5

enum { K_CONV2D = 1, K_DENSE = 2, K_MAX_POOL = 4, K_AVG_POOL = 5, K_GAP = 6 };

typedef struct golden_case {
    char name[128];
    int kind, n, h, w, c, units, kh, kw, sh, sw, padding, use_bias, flatten;
    int oh, ow, oc;
    float *x, *kernel, *bias, *y;
    size_t nx, nk, nb, ny;
} golden_case;

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

static uint32_t rd_u32(reader *r)
{
    assert_true(r->left >= 4);
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    r->left -= 4;
    return v;
}

static int rd_i32(reader *r)
{
    uint32_t u = rd_u32(r);
    int v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Little-endian float32 array, independent of the host's byte order. */
static float *rd_f32s(reader *r, size_t count)
{
    if (count == 0) return NULL;
    float *a = malloc(count * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < count; i++) {
        uint32_t u = rd_u32(r);
        memcpy(&a[i], &u, sizeof u);
    }
    return a;
}

static unsigned char *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        print_error("cannot open golden file %s (regenerate: /usr/bin/python3 tests/engine/gen_golden_layers.py)\n",
                    path);
        fail();
    }
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    unsigned char *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *size = (size_t)len;
    return buf;
}

static golden_case *load_cases(size_t *count)
{
    char path[4096];
    const char *root = getenv("TFX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/engine/golden_layers.bin", root && *root ? root : TFX_SOURCE_ROOT);
    size_t size;
    unsigned char *buf = read_file(path, &size);
    reader r = {buf, size};
    assert_true(size >= 12);
    assert_memory_equal(buf, "TFXGOLD1", 8);
    r.p += 8;
    r.left -= 8;
    uint32_t n = rd_u32(&r);
    assert_true(n > 0 && n < 1000);
    golden_case *cases = calloc(n, sizeof *cases);
    assert_non_null(cases);
    for (uint32_t i = 0; i < n; i++) {
        golden_case *g = &cases[i];
        uint32_t len = rd_u32(&r);
        assert_true(len < sizeof g->name && r.left >= len);
        memcpy(g->name, r.p, len);
        g->name[len] = '\0';
        r.p += len;
        r.left -= len;
        int *fields[] = {&g->kind, &g->n,  &g->h,  &g->w,       &g->c,         &g->units,  &g->kh, &g->kw,
                         &g->sh,   &g->sw, &g->padding, &g->use_bias, &g->flatten, &g->oh, &g->ow, &g->oc};
        for (size_t k = 0; k < sizeof fields / sizeof fields[0]; k++) *fields[k] = rd_i32(&r);
        g->nx = (size_t)g->n * g->h * g->w * g->c;
        if (g->kind == K_CONV2D) g->nk = (size_t)g->kh * g->kw * g->c * g->units;
        if (g->kind == K_DENSE) g->nk = (size_t)(g->flatten ? g->h * g->w * g->c : g->c) * g->units;
        g->nb = g->use_bias ? (size_t)g->units : 0;
        g->ny = (size_t)g->n * g->oh * g->ow * g->oc;
        g->x = rd_f32s(&r, g->nx);
        g->kernel = rd_f32s(&r, g->nk);
        g->bias = rd_f32s(&r, g->nb);
        g->y = rd_f32s(&r, g->ny);
    }
    assert_int_equal(r.left, 0);
    free(buf);
    *count = n;
    return cases;
}

static void free_cases(golden_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        free(cases[i].x);
        free(cases[i].kernel);
        free(cases[i].bias);
        free(cases[i].y);
    }
    free(cases);
}

/* Build the one-layer model of a case. */
static tfx_model *build(const golden_case *g, tfx_layer **layer)
{
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, g->h, g->w, g->c), TFX_OK);
    *layer = NULL;
    switch (g->kind) {
    case K_CONV2D: {
        tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
        o.filters = g->units;
        o.kernel_h = g->kh;
        o.kernel_w = g->kw;
        o.stride_h = g->sh;
        o.stride_w = g->sw;
        o.padding = g->padding;
        o.use_bias = g->use_bias;
        assert_int_equal(tfx_model_add_conv2d(m, &o, layer), TFX_OK);
        break;
    }
    case K_DENSE: {
        if (g->flatten) assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), TFX_OK);
        tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
        o.units = g->units;
        o.use_bias = g->use_bias;
        assert_int_equal(tfx_model_add_dense(m, &o, layer), TFX_OK);
        break;
    }
    case K_MAX_POOL:
    case K_AVG_POOL: {
        tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
        o.pool_h = g->kh;
        o.pool_w = g->kw;
        o.stride_h = g->sh;
        o.stride_w = g->sw;
        o.padding = g->padding;
        if (g->kind == K_MAX_POOL)
            assert_int_equal(tfx_model_add_max_pooling2d(m, &o, layer), TFX_OK);
        else
            assert_int_equal(tfx_model_add_average_pooling2d(m, &o, layer), TFX_OK);
        break;
    }
    case K_GAP:
        assert_int_equal(tfx_model_add_global_average_pooling2d(m, NULL, layer), TFX_OK);
        break;
    default:
        fail_msg("unknown kind %d in golden file", g->kind);
    }
    assert_non_null(*layer);
    return m;
}

/* Runs every case of one kind; returns the number of cases run. */
static size_t run_kind(int kind)
{
    size_t count;
    golden_case *cases = load_cases(&count);
    size_t ran = 0;
    for (size_t i = 0; i < count; i++) {
        const golden_case *g = &cases[i];
        if (g->kind != kind) continue;
        tfx_layer *l;
        tfx_model *m = build(g, &l);
        int shape[3];
        assert_int_equal(tfx_model_output_shape(m, shape), TFX_OK);
        if (shape[0] != g->oh || shape[1] != g->ow || shape[2] != g->oc)
            fail_msg("%s: output shape %dx%dx%d, golden %dx%dx%d", g->name, shape[0], shape[1], shape[2], g->oh, g->ow,
                     g->oc);
        if (g->nk) {
            size_t ks = 0, bs = 0;
            assert_int_equal(tfx_layer_weight_sizes(l, &ks, &bs), TFX_OK);
            assert_int_equal(ks, g->nk);
            assert_int_equal(bs, g->nb);
            assert_int_equal(tfx_layer_set_weights(l, g->kernel, g->bias), TFX_OK);
        }
        float *y = malloc(g->ny * sizeof *y);
        assert_non_null(y);
        /* Batch size 1 too, so the predict chunking is exercised as well. */
        for (int bs = 0; bs < 2; bs++) {
            if (bs) assert_int_equal(tfx_model_set_batch_size(m, 1), TFX_OK);
            memset(y, 0xff, g->ny * sizeof *y);
            assert_int_equal(tfx_model_predict(m, g->x, (size_t)g->n, y), TFX_OK);
            double worst = 0.0;
            size_t bad = 0;
            for (size_t j = 0; j < g->ny; j++) {
                double ref = g->y[j], err = fabs((double)y[j] - ref) / fmax(1.0, fabs(ref));
                if (!(err <= TOL)) {
                    if (bad++ < 5)
                        print_error("%s: y[%zu] = %.9g, golden %.9g (err %.3g)\n", g->name, j, (double)y[j], ref,
                                    err);
                    err = isnan(err) ? INFINITY : err;
                }
                if (err > worst) worst = err;
            }
            if (!bs) printf("golden %-58s max err %.2e (%zu values)\n", g->name, worst, g->ny);
            assert_int_equal(bad, 0);
        }
        free(y);
        tfx_model_free(m);
        ran++;
    }
    free_cases(cases, count);
    return ran;
}

static void test_golden_conv2d(void **state)
{
    (void)state;
    assert_true(run_kind(K_CONV2D) >= 10);
}

static void test_golden_dense(void **state)
{
    (void)state;
    assert_true(run_kind(K_DENSE) >= 4);
}

static void test_golden_max_pooling(void **state)
{
    (void)state;
    assert_true(run_kind(K_MAX_POOL) >= 6);
}

static void test_golden_average_pooling(void **state)
{
    (void)state;
    assert_true(run_kind(K_AVG_POOL) >= 6);
}

static void test_golden_global_average_pooling(void **state)
{
    (void)state;
    assert_true(run_kind(K_GAP) >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_conv2d),
        cmocka_unit_test(test_golden_dense),
        cmocka_unit_test(test_golden_max_pooling),
        cmocka_unit_test(test_golden_average_pooling),
        cmocka_unit_test(test_golden_global_average_pooling),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
