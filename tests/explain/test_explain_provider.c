/* tfx_explain_provider: the maps delivered batch by batch equal one tfx_explain call on all the
 * images bit for bit (vanilla gradients, Grad-CAM, SmoothGrad's noise stream, IG, occlusion;
 * batches of 1, 3, the model's and more than the data; known and unknown lengths; class_indices),
 * and bad passes: a provider error mid-pass, a sink that stops, a wrong sample shape, NaN in a
 * batch, too many samples, a wrong length; an allocation failure at every step (ENOMEM, no leak
 * under ASan). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "testing.h"
#include "tfx/tfx.h"

enum { N = 7, H = 8, W = 8, C = 2, PX = H * W * C, K = 3 };

#define OK(call)                                                                              \
    do {                                                                                      \
        int rc__ = (call);                                                                    \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message); \
    } while (0)

static float xs[N * PX];

static void make_data(void)
{
    unsigned s = 3;
    for (size_t i = 0; i < N * PX; i++) {
        s = s * 1103515245u + 12345u;
        xs[i] = (float)((s >> 8) & 0xffff) / 65535.0f;
    }
}

static tfx_model *make_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, H, W, C));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.activation = TFX_ACTIVATION_RELU;
    c.padding = TFX_PADDING_SAME;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    c.filters = 5;
    c.padding = TFX_PADDING_VALID;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = K;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    OK(tfx_model_add_dense(m, &d, NULL));
    OK(tfx_model_set_seed(m, 11));
    tfx_compile_options o = TFX_COMPILE_OPTIONS_INIT;
    OK(tfx_model_compile(m, &o));
    OK(tfx_model_set_batch_size(m, 4));
    return m;
}

/* A provider over xs, in order, with knobs for the bad cases. */
typedef struct arr {
    size_t n, pos, batch, extra;
    int resets;
    int fail_batch; /* >= 0: next fails at this batch */
    int nan_batch;  /* >= 0: a NaN in this batch */
} arr;

static int arr_reset(void *p, int epoch)
{
    arr *a = p;
    assert_int_equal(epoch, 0);
    a->pos = 0;
    a->batch = 0;
    a->resets++;
    return 0;
}

static int arr_next(void *p, float *x, void *y, size_t max, size_t *got)
{
    arr *a = p;
    assert_null(y); /* explain never asks for targets */
    if ((int)a->batch == a->fail_batch) return tfx_error_set(TFX_EIO, "disk went away");
    size_t k = a->n - a->pos < max ? a->n - a->pos : max;
    memcpy(x, xs + a->pos * PX, k * PX * sizeof(float));
    if (k && (int)a->batch == a->nan_batch) x[PX + 5 < k * PX ? PX + 5 : 5] = NAN;
    a->pos += k;
    a->batch++;
    *got = k ? k + a->extra : 0;
    return 0;
}

static tfx_batch_provider provider(arr *a, size_t length)
{
    memset(a, 0, sizeof *a);
    a->n = N;
    a->fail_batch = -1;
    a->nan_batch = -1;
    tfx_batch_provider p = TFX_BATCH_PROVIDER_INIT;
    p.payload = a;
    p.next = arr_next;
    p.reset = arr_reset;
    p.length = length;
    p.height = H;
    p.width = W;
    p.channels = C;
    return p;
}

/* Collects the maps into one array of N maps and checks that batches arrive in order. */
typedef struct sink_state {
    float *maps;
    int classes[N];
    size_t next, calls, max_count;
    int shape[3];
    int stop_at; /* >= 0: return stop_rc at this call */
    int stop_rc;
} sink_state;

static int collect(const tfx_attribution *a, size_t first, void *payload)
{
    sink_state *s = payload;
    if ((int)s->calls++ == s->stop_at) return s->stop_rc < 0 ? tfx_error_set(s->stop_rc, "sink is full") : s->stop_rc;
    assert_int_equal(first, s->next);
    size_t cnt = tfx_attribution_count(a);
    assert_true(cnt >= 1 && first + cnt <= N && cnt <= s->max_count);
    OK(tfx_attribution_shape(a, s->shape));
    size_t per = (size_t)s->shape[0] * (size_t)s->shape[1] * (size_t)s->shape[2];
    for (size_t i = 0; i < cnt; i++) {
        memcpy(s->maps + (first + i) * per, tfx_attribution_data(a, i), per * sizeof(float));
        s->classes[first + i] = tfx_attribution_class_index(a, i);
    }
    s->next = first + cnt;
    return 0;
}

static void check_same(tfx_model *m, const tfx_explain_options *o, size_t bs, size_t length)
{
    tfx_attribution *ref;
    OK(tfx_explain(m, xs, N, o, &ref));
    int shape[3];
    OK(tfx_attribution_shape(ref, shape));
    size_t per = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];

    arr a;
    tfx_batch_provider p = provider(&a, length);
    sink_state s = {.stop_at = -1, .max_count = bs ? bs : 4};
    s.maps = calloc(N * per, sizeof(float));
    assert_non_null(s.maps);
    size_t n = 0;
    OK(tfx_explain_provider(m, &p, o, collect, &s, &n));
    assert_int_equal(n, N);
    assert_int_equal(s.next, N);
    assert_int_equal(a.resets, 1);
    assert_memory_equal(s.shape, shape, sizeof shape);
    for (size_t i = 0; i < N; i++) {
        if (memcmp(s.maps + i * per, tfx_attribution_data(ref, i), per * sizeof(float)))
            fail_msg("method %d, batch %zu, length %zu: map %zu differs", o->method, bs, length, i);
        assert_int_equal(s.classes[i], tfx_attribution_class_index(ref, i));
    }
    free(s.maps);
    tfx_attribution_free(ref);
}

static void test_same_as_explain(void **state)
{
    (void)state;
    make_data();
    tfx_model *m = make_model();
    static const int methods[] = {TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRAD_CAM, TFX_METHOD_SMOOTH_GRAD,
                                  TFX_METHOD_INTEGRATED_GRADIENTS, TFX_METHOD_OCCLUSION};
    static const size_t sizes[] = {1, 3, 0, N + 5}; /* 0: the model's batch size (4) */
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++)
        for (size_t b = 0; b < sizeof sizes / sizeof sizes[0]; b++)
            for (int known = 0; known < 2; known++) {
                tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
                o.method = methods[k];
                o.batch_size = sizes[b];
                o.samples = 5;
                o.steps = 8;
                o.seed = 42;
                o.upsample = b % 2;
                check_same(m, &o, sizes[b], known ? N : 0);
            }
    /* Per-image targets follow the images across batches. */
    static const int targets[N] = {2, 0, -1, 1, 1, 0, 2};
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = TFX_METHOD_GRAD_CAM;
    o.class_indices = targets;
    o.batch_size = 3;
    check_same(m, &o, 3, N);
    tfx_model_free(m);
}

static int run(tfx_model *m, arr *a, tfx_batch_provider *p, sink_state *s, size_t *n)
{
    static float maps[N * PX];
    s->maps = maps;
    s->max_count = 3;
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.batch_size = 3;
    (void)a;
    return tfx_explain_provider(m, p, &o, collect, s, n);
}

static void test_bad_passes(void **state)
{
    (void)state;
    make_data();
    tfx_model *m = make_model();
    arr a;
    tfx_batch_provider p;
    size_t n = 99;

    /* A provider error mid-pass: its code and message, after the first batch reached the sink. */
    p = provider(&a, N);
    a.fail_batch = 1;
    sink_state s = {.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, &n), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "disk went away"));
    assert_int_equal(s.calls, 1);
    assert_int_equal(n, 0);

    /* A sink that stops: TFX_EUSER, or its own negative code and message. */
    p = provider(&a, N);
    s = (sink_state){.stop_at = 1, .stop_rc = 1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EUSER);
    assert_int_equal(s.calls, 2);
    assert_int_equal(a.batch, 2); /* no batch read after the stop */
    p = provider(&a, N);
    s = (sink_state){.stop_at = 0, .stop_rc = TFX_EIO};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EIO);
    assert_non_null(strstr(tfx_error_last()->message, "sink is full"));

    /* A wrong sample shape: refused before the pass. */
    p = provider(&a, N);
    p.channels = 1;
    s = (sink_state){.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_ESHAPE);
    assert_int_equal(a.resets, 0);
    assert_int_equal(s.calls, 0);

    /* NaN in the second batch (its image 1 = image 4 of the pass). */
    p = provider(&a, N);
    a.nan_batch = 1;
    s = (sink_state){.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "batch 1 (first image 3)"));
    assert_non_null(strstr(tfx_error_last()->message, "NaN"));
    assert_int_equal(s.calls, 1);

    /* More samples than asked for; a pass shorter or longer than the length. */
    p = provider(&a, N);
    a.extra = 1;
    s = (sink_state){.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EINVAL);
    assert_int_equal(s.calls, 0);
    p = provider(&a, N + 1);
    s = (sink_state){.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "its length is 8"));
    p = provider(&a, N - 2);
    s = (sink_state){.stop_at = -1};
    assert_int_equal(run(m, &a, &p, &s, NULL), TFX_EINVAL);
    assert_int_equal(s.calls, 1); /* the second batch (images 3..5) would pass length 5 */

    /* class_indices need a known length; bad options fail before the pass. */
    static const int targets[N] = {0};
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.class_indices = targets;
    p = provider(&a, 0);
    s = (sink_state){.stop_at = -1};
    assert_int_equal(tfx_explain_provider(m, &p, &o, collect, &s, NULL), TFX_EINVAL);
    o = (tfx_explain_options)TFX_EXPLAIN_OPTIONS_INIT;
    o.compat = 77;
    assert_int_equal(tfx_explain_provider(m, &p, &o, collect, &s, NULL), TFX_EINVAL);
    assert_int_equal(a.resets, 0);
    assert_int_equal(tfx_explain_provider(m, &p, NULL, NULL, NULL, NULL), TFX_EINVAL);

    /* An empty pass explains nothing and is not an error. */
    p = provider(&a, 0);
    a.n = 0;
    s = (sink_state){.stop_at = -1};
    n = 99;
    OK(run(m, &a, &p, &s, &n));
    assert_int_equal(n, 0);
    assert_int_equal(s.calls, 0);
    tfx_model_free(m);
}

/* Every allocation failing in turn: ENOMEM (no other code), until the pass succeeds. */
static void test_alloc_failures(void **state)
{
    (void)state;
    make_data();
    static const int methods[] = {TFX_METHOD_VANILLA_GRADIENTS, TFX_METHOD_GRAD_CAM, TFX_METHOD_SMOOTH_GRAD};
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        int ok = 0;
        for (long f = 1; f < 400 && !ok; f++) {
            tfx_model *m = make_model(); /* fresh buffers, so the model's allocations are exercised too */
            arr a;
            tfx_batch_provider p = provider(&a, N);
            static float maps[N * PX];
            sink_state s = {.stop_at = -1, .maps = maps, .max_count = 3};
            tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
            o.method = methods[k];
            o.batch_size = 3;
            o.samples = 2;
            tfx__alloc_fail_after(f);
            int rc = tfx_explain_provider(m, &p, &o, collect, &s, NULL);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK)
                ok = 1;
            else
                assert_int_equal(rc, TFX_ENOMEM);
            tfx_model_free(m);
        }
        assert_true(ok);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_as_explain),
        cmocka_unit_test(test_bad_passes),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
