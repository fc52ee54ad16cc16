/* Streaming IDX reader: same pixels and labels as the in-memory loader (plain and gzip, two
 * passes), the bounded shuffle buffer (a permutation, displacement below K, seeded, new order
 * per epoch), fit on a stream == in-memory fit, and hostile files (truncated or padded gzip, size
 * mismatch, bad labels) failing the pass, or fit, with their own code. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "data_helpers.h"
#include "tfx/tfx.h"

enum { N = 50, H = 6, W = 6 };

static void write_pair(const char *img, const char *lab, uint32_t n, int gz)
{
    size_t il, ll;
    unsigned char *i = th_idx_images(n, H, W, &il), *l = th_idx_labels(n, &ll);
    if (gz) {
        size_t gl;
        unsigned char *g = th_gzip(i, il, &gl);
        th_write(img, g, gl);
        free(g);
        g = th_gzip(l, ll, &gl);
        th_write(lab, g, gl);
        free(g);
    } else {
        th_write(img, i, il);
        th_write(lab, l, ll);
    }
    free(i);
    free(l);
}

/* One whole pass in batches of bs into x / y. */
static int pass(const tfx_batch_provider *p, int epoch, size_t bs, float *x, void *y, size_t y_per, size_t y_elem,
                size_t *n)
{
    int rc = p->reset(p->payload, epoch);
    if (rc) return rc;
    size_t total = 0, got;
    for (;;) {
        rc = p->next(p->payload, x + total * H * W, (char *)y + total * y_per * y_elem, bs, &got);
        if (rc) return rc;
        if (!got) break;
        assert_true(got <= bs);
        total += got;
    }
    *n = total;
    return 0;
}

static void in_order(int gz)
{
    write_pair("i", "l", N, gz);
    tfx_dataset *ds;
    assert_int_equal(tfx_dataset_load_idx(&ds, th_path("i"), th_path("l"), NULL), 0);
    tfx_stream *s;
    assert_int_equal(tfx_stream_open_idx(&s, th_path("i"), th_path("l"), NULL), 0);
    assert_int_equal(tfx_stream_count(s), N);
    tfx_batch_provider p;
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    assert_int_equal(p.length, N);
    assert_true(p.height == H && p.width == W && p.channels == 1);
    static float x[N * H * W];
    int32_t y[N];
    for (int e = 0; e < 2; e++) {
        size_t n;
        memset(x, 0, sizeof x);
        assert_int_equal(pass(&p, e, 7, x, y, 1, sizeof(int32_t), &n), 0);
        assert_int_equal(n, N);
        assert_memory_equal(x, tfx_dataset_images(ds), sizeof x);
        assert_memory_equal(y, tfx_dataset_labels(ds), sizeof y);
    }
    tfx_stream_free(s);

    /* one-hot rows */
    tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
    o.one_hot = 1;
    assert_int_equal(tfx_stream_open_idx(&s, th_path("i"), th_path("l"), &o), 0);
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    static float oh[N * 10], ref[N * 10];
    size_t n;
    assert_int_equal(pass(&p, 0, 16, x, oh, 10, sizeof(float), &n), 0);
    assert_int_equal(tfx_dataset_one_hot(ds, ref), 0);
    assert_memory_equal(oh, ref, sizeof oh);
    tfx_stream_free(s);
    tfx_dataset_free(ds);
}

static void test_plain(void **state)
{
    (void)state;
    in_order(0);
}

static void test_gzip(void **state)
{
    (void)state;
    in_order(1);
}

/* Images whose first pixel is their index, to follow each sample through the shuffle. */
static void write_indexed(uint32_t n)
{
    size_t il, ll;
    unsigned char *i = th_idx_images(n, H, W, &il), *l = th_idx_labels(n, &ll);
    for (uint32_t k = 0; k < n; k++) i[16 + (size_t)k * H * W] = (unsigned char)k;
    th_write("si", i, il);
    th_write("sl", l, ll);
    free(i);
    free(l);
}

static void order_of(tfx_stream *s, int epoch, int *order, size_t n)
{
    tfx_batch_provider p;
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    static float x[200 * H * W];
    int32_t y[200];
    size_t got;
    assert_int_equal(pass(&p, epoch, 9, x, y, 1, sizeof(int32_t), &got), 0);
    assert_int_equal(got, n);
    for (size_t k = 0; k < n; k++) {
        order[k] = (int)lrintf(x[k * H * W] * 255.0f);
        assert_int_equal(y[k], th_idx_label((size_t)order[k])); /* the label travels with its image */
    }
}

static void test_shuffle_buffer(void **state)
{
    (void)state;
    enum { SN = 200, K = 16 };
    write_indexed(SN);
    tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
    o.shuffle_buffer = K;
    o.seed = 5;
    tfx_stream *s, *s2;
    assert_int_equal(tfx_stream_open_idx(&s, th_path("si"), th_path("sl"), &o), 0);
    assert_int_equal(tfx_stream_open_idx(&s2, th_path("si"), th_path("sl"), &o), 0);
    int a[SN], b[SN], c[SN];
    order_of(s, 0, a, SN);
    order_of(s, 1, b, SN);
    order_of(s2, 0, c, SN);
    assert_memory_equal(a, c, sizeof a);     /* seeded */
    assert_memory_not_equal(a, b, sizeof a); /* a new order each epoch */
    int seen[SN] = {0}, moved = 0;
    for (int k = 0; k < SN; k++) {
        seen[a[k]]++;
        assert_true(a[k] <= k + K - 1); /* at most K - 1 places earlier than in the file */
        moved += a[k] != k;
    }
    for (int k = 0; k < SN; k++) assert_int_equal(seen[k], 1); /* a permutation */
    assert_true(moved > SN / 2);
    tfx_stream_free(s);
    tfx_stream_free(s2);

    /* K >= n: a buffer of the whole set (clamped to n). */
    o.shuffle_buffer = 10000;
    assert_int_equal(tfx_stream_open_idx(&s, th_path("si"), th_path("sl"), &o), 0);
    order_of(s, 0, a, SN);
    memset(seen, 0, sizeof seen);
    for (int k = 0; k < SN; k++) seen[a[k]]++;
    for (int k = 0; k < SN; k++) assert_int_equal(seen[k], 1);
    tfx_stream_free(s);
}

static tfx_model *small_model(void)
{
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, H, W, 1), 0);
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 3;
    c.activation = TFX_ACTIVATION_RELU;
    assert_int_equal(tfx_model_add_conv2d(m, &c, NULL), 0);
    assert_int_equal(tfx_model_add_flatten(m, NULL, NULL), 0);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    assert_int_equal(tfx_model_add_dense(m, &d, NULL), 0);
    assert_int_equal(tfx_model_set_seed(m, 3), 0);
    assert_int_equal(tfx_model_compile(m, NULL), 0);
    return m;
}

static void weights(tfx_model *m, float *out, size_t cap)
{
    size_t used = 0;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks, bs;
        assert_int_equal(tfx_layer_weight_sizes(l, &ks, &bs), 0);
        if (ks + bs == 0) continue;
        assert_true(used + ks + bs <= cap);
        assert_int_equal(tfx_layer_get_weights(l, out + used, out + used + ks), 0);
        used += ks + bs;
    }
}

static void test_fit_on_stream(void **state)
{
    (void)state;
    write_pair("fi", "fl", N, 1);
    tfx_dataset *ds;
    assert_int_equal(tfx_dataset_load_idx(&ds, th_path("fi"), th_path("fl"), NULL), 0);
    tfx_stream *s;
    assert_int_equal(tfx_stream_open_idx(&s, th_path("fi"), th_path("fl"), NULL), 0);
    tfx_batch_provider p;
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = 8;
    f.epochs = 2;
    f.verbose = 0;
    f.shuffle = 0;
    tfx_model *a = small_model(), *b = small_model();
    assert_int_equal(tfx_model_fit(a, tfx_dataset_images(ds), tfx_dataset_labels(ds), N, &f, NULL), 0);
    assert_int_equal(tfx_model_fit_provider(b, &p, &p, &f, NULL), 0);
    static float wa[4096], wb[4096];
    weights(a, wa, 4096);
    weights(b, wb, 4096);
    assert_memory_equal(wa, wb, sizeof wa);
    double l1, l2;
    assert_int_equal(tfx_model_evaluate(a, tfx_dataset_images(ds), tfx_dataset_labels(ds), N, &l1, NULL), 0);
    assert_int_equal(tfx_model_evaluate_provider(b, &p, &l2, NULL), 0);
    assert_true(l1 == l2);
    tfx_model_free(a);
    tfx_model_free(b);
    tfx_stream_free(s);
    tfx_dataset_free(ds);
}

static void test_hostile(void **state)
{
    (void)state;
    tfx_stream *s;
    tfx_batch_provider p;
    static float x[N * H * W];
    int32_t y[N];
    size_t n, il, ll, gl;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);

    /* Missing file; plain file shorter than its header says. */
    EXPECT(tfx_stream_open_idx(&s, th_path("nope"), th_path("nope"), NULL), TFX_EIO, "nope", NULL);
    assert_null(s);
    th_write("hi", img, il - 1);
    th_write("hl", lab, ll);
    EXPECT(tfx_stream_open_idx(&s, th_path("hi"), th_path("hl"), NULL), TFX_EFORMAT, "header announces", NULL);
    /* Image and label counts differ. */
    th_write("hi", img, il);
    th_write("hl2", lab, ll - 1);
    lab[7] = N - 1; /* the labels file now claims N - 1 */
    th_write("hl2", lab, ll - 1);
    EXPECT(tfx_stream_open_idx(&s, th_path("hi"), th_path("hl2"), NULL), TFX_EFORMAT, "labels", NULL);
    lab[7] = N;

    /* gzip cut short: the header opens, the pass fails where the data ends; fit stops with it. */
    unsigned char *g = th_gzip(img, il - 100, &gl);
    th_write("gi", g, gl);
    free(g);
    th_write("hl", lab, ll);
    assert_int_equal(tfx_stream_open_idx(&s, th_path("gi"), th_path("hl"), NULL), 0);
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    EXPECT(pass(&p, 0, 8, x, y, 1, sizeof(int32_t), &n), TFX_EFORMAT, "truncated", NULL);
    tfx_model *m = small_model();
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.verbose = 0;
    f.batch_size = 8;
    EXPECT(tfx_model_fit_provider(m, &p, NULL, &f, NULL), TFX_EFORMAT, "provider next failed", "truncated");
    tfx_stream_free(s);

    /* gzip with bytes after the announced samples. */
    unsigned char *big = malloc(il + 5);
    memcpy(big, img, il);
    memset(big + il, 1, 5);
    g = th_gzip(big, il + 5, &gl);
    free(big);
    th_write("gi", g, gl);
    free(g);
    assert_int_equal(tfx_stream_open_idx(&s, th_path("gi"), th_path("hl"), NULL), 0);
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    EXPECT(pass(&p, 0, 8, x, y, 1, sizeof(int32_t), &n), TFX_EFORMAT, "unexpected bytes", NULL);
    tfx_stream_free(s);

    /* A label beyond num_classes, found in the pass (also under the shuffle buffer). */
    lab[8 + 30] = 12;
    th_write("hl", lab, ll);
    for (int k = 0; k < 2; k++) {
        tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
        o.shuffle_buffer = k ? 4 : 0;
        assert_int_equal(tfx_stream_open_idx(&s, th_path("hi"), th_path("hl"), &o), 0);
        assert_int_equal(tfx_stream_provider(s, &p), 0);
        EXPECT(pass(&p, 0, 8, x, y, 1, sizeof(int32_t), &n), TFX_EFORMAT, "label 12 of sample 30", NULL);
        tfx_stream_free(s);
    }
    /* Bad options. */
    tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
    o.num_classes = 300;
    EXPECT(tfx_stream_open_idx(&s, th_path("hi"), th_path("hl"), &o), TFX_EINVAL, "num_classes 300", NULL);
    tfx_model_free(m);
    free(img);
    free(lab);
}

static void test_cifar10(void **state)
{
    (void)state;
    size_t l1, l2;
    unsigned char *a = th_cifar(0, 30, &l1), *b = th_cifar(30, 25, &l2);
    th_write("c1", a, l1);
    th_write("c2", b, l2);
    const char *paths[2] = {NULL, NULL};
    char p1[512], p2[512];
    snprintf(p1, sizeof p1, "%s", th_path("c1"));
    snprintf(p2, sizeof p2, "%s", th_path("c2"));
    paths[0] = p1;
    paths[1] = p2;
    tfx_dataset *ds;
    assert_int_equal(tfx_dataset_load_cifar10(&ds, paths, 2, NULL), 0);
    tfx_stream *s;
    assert_int_equal(tfx_stream_open_cifar10(&s, paths, 2, NULL), 0);
    assert_int_equal(tfx_stream_count(s), 55);
    tfx_batch_provider p;
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    assert_true(p.height == 32 && p.width == 32 && p.channels == 3 && p.length == 55);
    static float x[55 * 3072];
    int32_t y[55];
    for (int e = 0; e < 2; e++) {
        int rc = p.reset(p.payload, e);
        assert_int_equal(rc, 0);
        size_t total = 0, got;
        do { /* batches of 8 cross the file boundary at 30 */
            assert_int_equal(p.next(p.payload, x + total * 3072, y + total, 8, &got), 0);
            total += got;
        } while (got);
        assert_int_equal(total, 55);
        assert_memory_equal(x, tfx_dataset_images(ds), sizeof x);
        assert_memory_equal(y, tfx_dataset_labels(ds), sizeof y);
    }
    tfx_stream_free(s);

    /* Not a whole number of records; gzip; a label past num_classes. */
    th_write("c3", a, l1 - 1);
    const char *bad[1] = {NULL};
    char p3[512];
    snprintf(p3, sizeof p3, "%s", th_path("c3"));
    bad[0] = p3;
    EXPECT(tfx_stream_open_cifar10(&s, bad, 1, NULL), TFX_EFORMAT, "3073-byte", NULL);
    size_t gl;
    unsigned char *g = th_gzip(a, l1, &gl);
    th_write("c3", g, gl);
    free(g);
    EXPECT(tfx_stream_open_cifar10(&s, bad, 1, NULL), TFX_ENOTSUP, "gzip", NULL);
    a[3073 * 4] = 200;
    th_write("c3", a, l1);
    assert_int_equal(tfx_stream_open_cifar10(&s, bad, 1, NULL), 0);
    assert_int_equal(tfx_stream_provider(s, &p), 0);
    assert_int_equal(p.reset(p.payload, 0), 0);
    size_t got;
    EXPECT(p.next(p.payload, x, y, 8, &got), TFX_EFORMAT, "label 200 of record 4", NULL);
    tfx_stream_free(s);
    free(a);
    free(b);
    tfx_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),         cmocka_unit_test(test_gzip),    cmocka_unit_test(test_shuffle_buffer),
        cmocka_unit_test(test_fit_on_stream), cmocka_unit_test(test_hostile), cmocka_unit_test(test_cifar10),
    };
    return cmocka_run_group_tests(tests, th_tmpdir_create, th_tmpdir_remove);
}
