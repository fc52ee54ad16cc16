/* Distinct models on distinct threads at once (DESIGN decision 11): each worker builds its own
 * model, trains it (tfx_model_fit, 2 epochs), explains it with every method, renders a picture,
 * saves it to memory and logs to its own TensorBoard run. Run first one after the other on the
 * main thread, then all at once on NT threads (twice): every byte of every result must be the
 * same. Error messages must stay on their own thread. The ThreadSanitizer build of this test
 * (docs/security.md) checks that no memory is shared without synchronisation. */
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "tfx/tfx.h"

#define NT 4
#define H 8
#define W 8
#define C 3
#define CLASSES 3
#define NX 12

typedef struct result {
    unsigned char *p;
    size_t n;
    char failure[512]; /* set by a worker instead of calling cmocka off the main thread */
} result;

typedef struct job {
    int id;
    const char *tmp;
    int round;
    pthread_barrier_t *start; /* parallel rounds: all workers begin together, so they overlap */
    result res;
} job;

static void put(result *r, const void *p, size_t n)
{
    unsigned char *q = realloc(r->p, r->n + n + 1);
    if (!q) abort();
    memcpy(q + r->n, p, n);
    r->p = q;
    r->n += n;
}

#define TRY(call)                                                                                  \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) {                                                                      \
            snprintf(j->res.failure, sizeof j->res.failure, "worker %d: %s -> %d: %s", j->id, #call, \
                     rc__, tfx_error_last()->message);                                             \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static double fixed_clock(void *user)
{
    (void)user;
    return 1600000000.5;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void *worker(void *arg)
{
    job *j = arg;
    if (j->start) pthread_barrier_wait(j->start);
    tfx_model *m = NULL;
    tfx_history *h = NULL;
    tfx_event_writer *w = NULL;
    tfx_image *img = NULL;
    unsigned char *saved = NULL;
    float *x = malloc(NX * H * W * C * sizeof *x);
    int32_t y[NX];
    if (!x) abort();
    /* each worker its own data and seed */
    uint32_t s = 1000u + (uint32_t)j->id;
    for (size_t i = 0; i < NX * H * W * C; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
    for (int i = 0; i < NX; i++) y[i] = (i + j->id) % CLASSES;

    /* thread-local errors: this thread's message, whatever the others do meanwhile */
    char want[64];
    snprintf(want, sizeof want, "%d", -(j->id + 100));
    if (tfx_model_new(&m, -(j->id + 100), W, C) != TFX_EINVAL || strstr(tfx_error_last()->message, want) == NULL) {
        snprintf(j->res.failure, sizeof j->res.failure, "worker %d: error message \"%s\" lacks %s", j->id,
                 tfx_error_last()->message, want);
        goto out;
    }

    TRY(tfx_model_new(&m, H, W, C));
    TRY(tfx_model_set_seed(m, 40u + (uint64_t)j->id));
    tfx_conv2d_options c1 = TFX_CONV2D_OPTIONS_INIT;
    c1.filters = 4;
    c1.activation = TFX_ACTIVATION_RELU;
    c1.padding = TFX_PADDING_SAME;
    tfx_pool2d_options mp = TFX_POOL2D_OPTIONS_INIT;
    tfx_conv2d_options c2 = TFX_CONV2D_OPTIONS_INIT;
    c2.filters = 3;
    c2.activation = TFX_ACTIVATION_RELU;
    c2.name = "vis";
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = CLASSES;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    TRY(tfx_model_add_conv2d(m, &c1, NULL));
    TRY(tfx_model_add_batch_normalization(m, NULL, NULL));
    TRY(tfx_model_add_max_pooling2d(m, &mp, NULL));
    TRY(tfx_model_add_dropout(m, 0.2f, NULL, NULL));
    TRY(tfx_model_add_conv2d(m, &c2, NULL));
    TRY(tfx_model_add_flatten(m, NULL, NULL));
    TRY(tfx_model_add_dense(m, &d, NULL));
    TRY(tfx_model_compile(m, NULL));
    TRY(tfx_history_new(&h));
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = 4;
    fo.epochs = 2;
    fo.validation_split = 0.25;
    fo.verbose = 0;
    TRY(tfx_model_fit(m, x, y, NX, &fo, h));
    put(&j->res, tfx_history_values(h, "loss"), 2 * sizeof(double));
    put(&j->res, tfx_history_values(h, "val_loss"), 2 * sizeof(double));

    for (int method = TFX_METHOD_ACTIVATIONS; method <= TFX_METHOD_INTEGRATED_GRADIENTS; method++) {
        tfx_explain_options eo = TFX_EXPLAIN_OPTIONS_INIT;
        eo.method = method;
        eo.steps = 4;
        eo.samples = 4;
        eo.seed = 9;
        eo.patch_size = 3;
        eo.layer_name = method == TFX_METHOD_ACTIVATIONS || method == TFX_METHOD_GRAD_CAM ? "vis" : NULL;
        tfx_attribution *a = NULL;
        TRY(tfx_explain(m, x, 2, &eo, &a));
        int sh[3];
        tfx_attribution_shape(a, sh);
        for (size_t i = 0; i < 2; i++) put(&j->res, tfx_attribution_data(a, i), (size_t)sh[0] * sh[1] * sh[2] * sizeof(float));
        tfx_attribution_free(a);
    }
    TRY(tfx_grad_cam(m, x, 3, 1, NULL, &img));
    for (int r = 0; r < img->height; r++) put(&j->res, img->pixels + (size_t)r * img->stride, (size_t)img->width * img->channels);

    size_t size = 0;
    TRY(tfx_model_save_to_memory(m, NULL, NULL, 0, &size));
    saved = malloc(size);
    if (!saved) abort();
    TRY(tfx_model_save_to_memory(m, NULL, saved, size, &size));
    put(&j->res, saved, size);

    char dir[4200];
    snprintf(dir, sizeof dir, "%s/run%d_%d", j->tmp, j->round, j->id);
    tfx_event_writer_options wo = TFX_EVENT_WRITER_OPTIONS_INIT;
    wo.clock = fixed_clock;
    TRY(tfx_event_writer_new(&w, dir, &wo));
    const double *loss = tfx_history_values(h, "loss");
    for (int e = 0; e < 2; e++) TRY(tfx_event_writer_add_scalar(w, "epoch_loss", e, loss[e]));
    TRY(tfx_event_writer_add_image(w, "grad_cam", 1, img));
    TRY(tfx_event_writer_close(w));
    FILE *f = fopen(tfx_event_writer_path(w), "rb");
    if (f) {
        unsigned char buf[65536];
        size_t got = fread(buf, 1, sizeof buf, f);
        fclose(f);
        put(&j->res, buf, got);
    }
out:
    tfx_event_writer_free(w);
    tfx_image_free(img);
    tfx_history_free(h);
    tfx_model_free(m);
    free(saved);
    free(x);
    return NULL;
}

static char *make_tmp(void)
{
    const char *base = getenv("TMPDIR");
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/tfx_threads_XXXXXX", base && *base ? base : "/tmp");
    if (!p || !mkdtemp(p)) fail_msg("mkdtemp");
    return p;
}

static void test_threads_match_sequential(void **state)
{
    (void)state;
    char *tmp = make_tmp();
    job seq[NT], par[NT];
    memset(seq, 0, sizeof seq);
    for (int i = 0; i < NT; i++) {
        seq[i].id = i;
        seq[i].tmp = tmp;
        seq[i].round = 0;
        worker(&seq[i]);
        if (seq[i].res.failure[0]) fail_msg("%s", seq[i].res.failure);
        assert_true(seq[i].res.n > 1000);
    }
    /* distinct seeds and data really give distinct results */
    for (int i = 1; i < NT; i++)
        assert_false(seq[i].res.n == seq[0].res.n && memcmp(seq[i].res.p, seq[0].res.p, seq[0].res.n) == 0);
    int rounds = getenv("RUNNING_VALGRIND") ? 1 : 2;
    for (int round = 1; round <= rounds; round++) {
        memset(par, 0, sizeof par);
        pthread_t th[NT];
        pthread_barrier_t start;
        assert_int_equal(pthread_barrier_init(&start, NULL, NT), 0);
        for (int i = 0; i < NT; i++) {
            par[i].id = i;
            par[i].tmp = tmp;
            par[i].round = round;
            par[i].start = &start;
            assert_int_equal(pthread_create(&th[i], NULL, worker, &par[i]), 0);
        }
        for (int i = 0; i < NT; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
        pthread_barrier_destroy(&start);
        for (int i = 0; i < NT; i++) {
            if (par[i].res.failure[0]) fail_msg("round %d: %s", round, par[i].res.failure);
            if (par[i].res.n != seq[i].res.n || memcmp(par[i].res.p, seq[i].res.p, seq[i].res.n) != 0) {
                size_t k = 0;
                while (k < par[i].res.n && k < seq[i].res.n && par[i].res.p[k] == seq[i].res.p[k]) k++;
                fail_msg("round %d, worker %d: %zu bytes vs %zu sequentially, first difference at byte %zu", round,
                         i, par[i].res.n, seq[i].res.n, k);
            }
            free(par[i].res.p);
        }
    }
    for (int i = 0; i < NT; i++) free(seq[i].res.p);
    nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_match_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
