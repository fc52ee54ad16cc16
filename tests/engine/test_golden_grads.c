/* Forward and backward of the layer kinds and options added after 0.1 against PyTorch
 * (tests/engine/gen_golden_layers.py -> golden_layer_grads.bin, float64 autograd): each case
 * is a small model built through the public API with the golden weights; the output (predict),
 * then the gradients of L = sum(r * y) with respect to the input and every weight (the
 * model's backward, Keras layout through tfx_layer_get_weights' order).
 * Pass: every element |a - b| <= 1e-5 * max(1, max |b| of the tensor). */
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
#include "testing.h"

#define TOL 1e-5
#define MAX_SPECS 8

typedef struct spec {
    int kind, p[16];
    float f[2];
    float *kernel, *bias;
    size_t nk, nb;
} spec;

typedef struct grad_case {
    char name[128];
    int n, h, w, c;
    size_t nspecs;
    spec s[MAX_SPECS];
    float *x, *y, *r, *dx, *g;
    size_t nx, ny, ng;
} grad_case;

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

static float rd_f32(reader *r)
{
    uint32_t u = rd_u32(r);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static float *rd_f32s(reader *r, size_t count)
{
    float *a = malloc((count ? count : 1) * sizeof *a);
    assert_non_null(a);
    for (size_t i = 0; i < count; i++) a[i] = rd_f32(r);
    return a;
}

static float *rd_counted(reader *r, size_t *count)
{
    *count = rd_u32(r);
    assert_true(*count <= r->left / 4);
    return rd_f32s(r, *count);
}

static grad_case *load_cases(size_t *count)
{
    char path[4096];
    const char *root = getenv("TFX_SOURCE_ROOT");
    snprintf(path, sizeof path, "%s/tests/engine/golden_layer_grads.bin", root && *root ? root : TFX_SOURCE_ROOT);
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s (regenerate: /usr/bin/python3 tests/engine/gen_golden_layers.py)", path);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long len = ftell(fp);
    assert_true(len > 12);
    rewind(fp);
    unsigned char *buf = malloc((size_t)len);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    reader r = {buf + 8, (size_t)len - 8};
    assert_memory_equal(buf, "TFXGRAD1", 8);
    uint32_t n = rd_u32(&r);
    assert_true(n > 0 && n < 1000);
    grad_case *cases = calloc(n, sizeof *cases);
    assert_non_null(cases);
    for (uint32_t i = 0; i < n; i++) {
        grad_case *g = &cases[i];
        uint32_t nl = rd_u32(&r);
        assert_true(nl < sizeof g->name && r.left >= nl);
        memcpy(g->name, r.p, nl);
        r.p += nl;
        r.left -= nl;
        g->n = rd_i32(&r);
        g->h = rd_i32(&r);
        g->w = rd_i32(&r);
        g->c = rd_i32(&r);
        g->nspecs = rd_u32(&r);
        assert_true(g->nspecs >= 1 && g->nspecs <= MAX_SPECS);
        for (size_t k = 0; k < g->nspecs; k++) {
            spec *s = &g->s[k];
            s->kind = rd_i32(&r);
            for (int j = 0; j < 16; j++) s->p[j] = rd_i32(&r);
            s->f[0] = rd_f32(&r);
            s->f[1] = rd_f32(&r);
            s->kernel = rd_counted(&r, &s->nk);
            s->bias = rd_counted(&r, &s->nb);
        }
        g->x = rd_counted(&r, &g->nx);
        g->y = rd_counted(&r, &g->ny);
        g->r = rd_f32s(&r, g->ny);
        g->dx = rd_f32s(&r, g->nx);
        g->g = rd_counted(&r, &g->ng);
    }
    assert_int_equal(r.left, 0);
    free(buf);
    *count = n;
    return cases;
}

static void free_cases(grad_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0; k < cases[i].nspecs; k++) {
            free(cases[i].s[k].kernel);
            free(cases[i].s[k].bias);
        }
        free(cases[i].x);
        free(cases[i].y);
        free(cases[i].r);
        free(cases[i].dx);
        free(cases[i].g);
    }
    free(cases);
}

static tfx_layer *add_spec(tfx_model *m, const spec *s)
{
    tfx_layer *l = NULL;
    const int *p = s->p;
    switch (s->kind) {
    case TFX_LAYER_CONV2D: {
        tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
        o.filters = p[0];
        o.kernel_h = p[1];
        o.kernel_w = p[2];
        o.stride_h = p[3];
        o.stride_w = p[4];
        o.padding = p[5];
        o.activation = p[6];
        o.use_bias = p[7];
        o.clip_min = s->f[0];
        o.clip_max = s->f[1];
        o.pad_top = p[8], o.pad_bottom = p[9], o.pad_left = p[10], o.pad_right = p[11];
        o.groups = p[12] ? p[12] : 1;
        assert_int_equal(tfx_model_add_conv2d(m, &o, &l), TFX_OK);
        break;
    }
    case TFX_LAYER_DEPTHWISE_CONV2D: {
        tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
        o.kernel_h = p[0];
        o.kernel_w = p[1];
        o.stride_h = p[2];
        o.stride_w = p[3];
        o.padding = p[4];
        o.depth_multiplier = p[5];
        o.activation = p[6];
        o.use_bias = p[7];
        o.pad_top = p[8], o.pad_bottom = p[9], o.pad_left = p[10], o.pad_right = p[11];
        o.clip_min = s->f[0];
        o.clip_max = s->f[1];
        assert_int_equal(tfx_model_add_depthwise_conv2d(m, &o, &l), TFX_OK);
        break;
    }
    case TFX_LAYER_DENSE: {
        tfx_dense_options o = TFX_DENSE_OPTIONS_INIT;
        o.units = p[0];
        o.activation = p[1];
        o.use_bias = p[2];
        o.clip_min = s->f[0];
        o.clip_max = s->f[1];
        assert_int_equal(tfx_model_add_dense(m, &o, &l), TFX_OK);
        break;
    }
    case TFX_LAYER_FLATTEN:
        assert_int_equal(tfx_model_add_flatten(m, NULL, &l), TFX_OK);
        break;
    case TFX_LAYER_MAX_POOLING2D:
    case TFX_LAYER_AVERAGE_POOLING2D: {
        tfx_pool2d_options o = TFX_POOL2D_OPTIONS_INIT;
        o.pool_h = p[0];
        o.pool_w = p[1];
        o.stride_h = p[2];
        o.stride_w = p[3];
        o.padding = p[4];
        o.pad_top = p[5], o.pad_bottom = p[6], o.pad_left = p[7], o.pad_right = p[8];
        o.count_include_pad = p[9];
        if (s->kind == TFX_LAYER_MAX_POOLING2D)
            assert_int_equal(tfx_model_add_max_pooling2d(m, &o, &l), TFX_OK);
        else
            assert_int_equal(tfx_model_add_average_pooling2d(m, &o, &l), TFX_OK);
        break;
    }
    case TFX_LAYER_RESHAPE:
        assert_int_equal(tfx_model_add_reshape(m, p[0], p[1], p[2], NULL, &l), TFX_OK);
        break;
    case TFX_LAYER_ZERO_PADDING2D:
        assert_int_equal(tfx_model_add_zero_padding2d(m, p[0], p[1], p[2], p[3], NULL, &l), TFX_OK);
        break;
    case TFX_LAYER_GLOBAL_MAX_POOLING2D:
        assert_int_equal(tfx_model_add_global_max_pooling2d(m, NULL, &l), TFX_OK);
        break;
    case TFX_LAYER_ACTIVATION:
        if (p[0] == TFX_ACTIVATION_CLIP)
            assert_int_equal(tfx_model_add_clip(m, s->f[0], s->f[1], NULL, &l), TFX_OK);
        else
            assert_int_equal(tfx_model_add_activation(m, p[0], s->f[0], NULL, &l), TFX_OK);
        break;
    default:
        fail_msg("unknown kind %d in the golden file", s->kind);
    }
    size_t ks = 0, bs = 0;
    assert_int_equal(tfx_layer_weight_sizes(l, &ks, &bs), TFX_OK);
    assert_int_equal(ks, s->nk);
    assert_int_equal(bs, s->nb);
    if (ks) assert_int_equal(tfx_layer_set_weights(l, s->kernel, s->nb ? s->bias : NULL), TFX_OK);
    return l;
}

/* Worst |a - b| / max(1, max |b|) over a tensor; prints the first few misses. */
static double compare(const char *name, const char *what, const float *a, const float *b, size_t count)
{
    double scale = 1.0, worst = 0.0;
    for (size_t i = 0; i < count; i++) scale = fmax(scale, fabs((double)b[i]));
    size_t bad = 0;
    for (size_t i = 0; i < count; i++) {
        double err = fabs((double)a[i] - (double)b[i]) / scale;
        if (!(err <= TOL)) {
            if (bad++ < 5) print_error("%s: %s[%zu] = %.9g, golden %.9g\n", name, what, i, (double)a[i], (double)b[i]);
            err = INFINITY;
        }
        if (err > worst) worst = err;
    }
    if (bad) fail_msg("%s: %zu of %zu %s values off", name, bad, count, what);
    return worst;
}

static void test_golden_grads(void **state)
{
    (void)state;
    size_t count;
    grad_case *cases = load_cases(&count);
    for (size_t i = 0; i < count; i++) {
        const grad_case *g = &cases[i];
        tfx_model *m = NULL;
        assert_int_equal(tfx_model_new(&m, g->h, g->w, g->c), TFX_OK);
        tfx_layer *layers[MAX_SPECS];
        for (size_t k = 0; k < g->nspecs; k++) layers[k] = add_spec(m, &g->s[k]);
        assert_int_equal(g->nx, (size_t)g->n * g->h * g->w * g->c);
        assert_int_equal(g->ny, (size_t)g->n * tfx__shape_size(m->layers[m->n_layers - 1]->out));

        float *y = malloc(g->ny * sizeof *y);
        assert_non_null(y);
        assert_int_equal(tfx_model_predict(m, g->x, (size_t)g->n, y), TFX_OK);
        double ey = compare(g->name, "y", y, g->y, g->ny);

        assert_int_equal(tfx__model_forward(m, g->x, (size_t)g->n, 0), TFX_OK);
        float *gin = NULL;
        assert_int_equal(tfx__model_backward(m, (size_t)g->n, m->n_layers - 1, g->r, 0, 1, TFX__BW_PARAM_GRADS, NULL,
                                             &gin),
                         TFX_OK);
        double ex = compare(g->name, "dx", gin, g->dx, g->nx);
        /* The parameter gradients in Keras layout: set them as a layer's weights and read them
         * back with tfx_layer_get_weights (Dense keeps its kernel transposed). */
        float *got = malloc((g->ng ? g->ng : 1) * sizeof *got);
        assert_non_null(got);
        size_t off = 0;
        for (size_t k = 0; k < g->nspecs; k++) {
            tfx_layer *l = layers[k];
            if (!l->n_params) continue;
            float *keep = malloc(l->n_params * sizeof *keep);
            assert_non_null(keep);
            memcpy(keep, l->params, l->n_params * sizeof *keep);
            memcpy(l->params, l->grads, l->n_params * sizeof *keep);
            size_t ks = 0, bs = 0;
            assert_int_equal(tfx_layer_weight_sizes(l, &ks, &bs), TFX_OK);
            assert_true(off + ks + bs <= g->ng);
            assert_int_equal(tfx_layer_get_weights(l, got + off, bs ? got + off + ks : NULL), TFX_OK);
            memcpy(l->params, keep, l->n_params * sizeof *keep);
            free(keep);
            off += ks + bs;
        }
        assert_int_equal(off, g->ng);
        double eg = g->ng ? compare(g->name, "dw", got, g->g, g->ng) : 0.0;
        printf("golden %-56s y %.1e dx %.1e dw %.1e\n", g->name, ey, ex, eg);
        free(got);
        free(y);
        tfx_model_free(m);
    }
    free_cases(cases, count);
}

/* The grouped kernels split lines over threads: forward, input and kernel gradients are the
 * same bits for every thread count. */
static void test_grouped_thread_counts(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, 9, 7, 6), TFX_OK);
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.depth_multiplier = 2;
    dw.stride_h = 2;
    dw.padding = TFX_PADDING_SAME;
    dw.activation = TFX_ACTIVATION_RELU6;
    assert_int_equal(tfx_model_add_depthwise_conv2d(m, &dw, NULL), TFX_OK);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 6;
    c.groups = 3;
    c.padding = TFX_PADDING_EXPLICIT;
    c.pad_top = c.pad_left = 2;
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), TFX_OK);
    const size_t n = 3, nx = n * 9 * 7 * 6, ny = n * tfx__shape_size(m->layers[1]->out);
    float *x = malloc(nx * sizeof *x), *r = malloc(ny * sizeof *r), *ref = malloc((ny + nx + m->n_params) * sizeof *ref);
    assert_true(x && r && ref);
    for (size_t i = 0; i < nx; i++) x[i] = (float)((i * 37) % 23) / 11.0f - 1.0f;
    for (size_t i = 0; i < ny; i++) r[i] = (float)((i * 13) % 7) / 3.0f - 1.0f;
    static const int counts[] = {1, 2, 3, 5};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        tfx__threads_force(counts[k]);
        assert_int_equal(tfx__model_forward(m, x, n, 0), TFX_OK);
        float *gin = NULL;
        assert_int_equal(tfx__model_backward(m, n, 1, r, 0, 1, TFX__BW_PARAM_GRADS, NULL, &gin), TFX_OK);
        const float *parts[3] = {tfx__model_layer_output(m, 1), gin, m->grads};
        const size_t sizes[3] = {ny, nx, m->n_params};
        for (size_t p = 0, off = 0; p < 3; off += sizes[p], p++) {
            if (k == 0)
                memcpy(ref + off, parts[p], sizes[p] * sizeof(float));
            else if (memcmp(ref + off, parts[p], sizes[p] * sizeof(float)) != 0)
                fail_msg("%d threads: part %zu differs from one thread", counts[k], p);
        }
    }
    tfx__threads_force(0);
    free(x);
    free(r);
    free(ref);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_grads),
        cmocka_unit_test(test_grouped_thread_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
