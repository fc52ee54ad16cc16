/* IDX (plain and gzip) round trips of generated files, CIFAR-10 planar -> NHWC mapping,
 * multi-file and directory loading, options and getters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "data/data_internal.h"
#include "data_helpers.h"
#include "tfx/tfx.h"

enum { N = 7, H = 5, W = 3 };

/* Every pixel and label of ds equals generated sample first + i. */
static void check_idx(const tfx_dataset *ds, size_t first, size_t n)
{
    assert_int_equal(tfx_dataset_count(ds), n);
    int shape[3];
    assert_int_equal(tfx_dataset_shape(ds, shape), 0);
    assert_int_equal(shape[0], H);
    assert_int_equal(shape[1], W);
    assert_int_equal(shape[2], 1);
    for (size_t i = 0; i < n; i++) {
        const float *img = tfx_dataset_image(ds, i);
        assert_int_equal(tfx_dataset_labels(ds)[i], th_idx_label(first + i));
        for (int r = 0; r < H; r++)
            for (int c = 0; c < W; c++)
                assert_true(img[r * W + c] == (float)(th_idx_byte(first + i, r, c) / 255.0));
    }
}

static void test_idx_roundtrip(void **state)
{
    (void)state;
    size_t il, ll, gil, gll;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *gimg = th_gzip(img, il, &gil), *glab = th_gzip(lab, ll, &gll);
    th_write("img", img, il);
    th_write("lab", lab, ll);
    th_write("img.gz", gimg, gil);
    th_write("lab.gz", glab, gll);
    tfx_dataset *ds = NULL;
    /* Every plain/gzip combination; gzip is found by its magic, not the name. */
    const char *ip[2] = {"img", "img.gz"}, *lp[2] = {"lab", "lab.gz"};
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) {
            char i_path[512], l_path[512];
            strcpy(i_path, th_path(ip[a]));
            strcpy(l_path, th_path(lp[b]));
            EXPECT(tfx_dataset_load_idx(&ds, i_path, l_path, NULL), 0, NULL, NULL);
            check_idx(ds, 0, N);
            tfx_dataset_free(ds);
        }
    th_write("gz-named-plain.gz", img, il);
    char p1[512];
    strcpy(p1, th_path("gz-named-plain.gz"));
    EXPECT(tfx_dataset_load_idx(&ds, p1, th_path("lab.gz"), NULL), 0, NULL, NULL);
    check_idx(ds, 0, N);
    tfx_dataset_free(ds);

    /* offset/limit select samples first..first+k-1; a limit past the end is clamped. */
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.offset = 2;
    o.limit = 3;
    EXPECT(tfx__idx_from_memory(gimg, gil, lab, ll, NULL, NULL, &o, &ds), 0, NULL, NULL);
    check_idx(ds, 2, 3);
    tfx_dataset_free(ds);
    o.offset = 5;
    o.limit = 100;
    EXPECT(tfx__idx_from_memory(img, il, glab, gll, NULL, NULL, &o, &ds), 0, NULL, NULL);
    check_idx(ds, 5, 2);
    tfx_dataset_free(ds);
    o.offset = N;
    EXPECT(tfx__idx_from_memory(img, il, lab, ll, "imgname", NULL, &o, &ds), TFX_EINVAL, "offset 7", "imgname");
    assert_null(ds);

    /* Two gzip members (as `cat a.gz b.gz` makes) decompress to their concatenation. */
    size_t g1, g2;
    unsigned char *m1 = th_gzip(img, 40, &g1), *m2 = th_gzip(img + 40, il - 40, &g2);
    unsigned char *cat = malloc(g1 + g2);
    memcpy(cat, m1, g1);
    memcpy(cat + g1, m2, g2);
    EXPECT(tfx__idx_from_memory(cat, g1 + g2, lab, ll, NULL, NULL, NULL, &ds), 0, NULL, NULL);
    check_idx(ds, 0, N);
    tfx_dataset_free(ds);
    free(m1);
    free(m2);
    free(cat);

    /* tfx_dataset_load_idx_dir prefers .gz and falls back to the plain name. */
    mkdir(th_path("mnist"), 0700);
    th_write("mnist/t10k-images-idx3-ubyte.gz", gimg, gil);
    th_write("mnist/t10k-labels-idx1-ubyte", lab, ll);
    EXPECT(tfx_dataset_load_idx_dir(&ds, th_path("mnist"), TFX_DATA_TEST, NULL), 0, NULL, NULL);
    check_idx(ds, 0, N);
    tfx_dataset_free(ds);
    EXPECT(tfx_dataset_load_idx_dir(&ds, th_path("mnist"), TFX_DATA_TRAIN, NULL), TFX_EIO,
           "train-images-idx3-ubyte", "No such file");
    EXPECT(tfx_dataset_load_idx_dir(&ds, th_path("mnist"), 2, NULL), TFX_EINVAL, "split", NULL);
    free(img);
    free(lab);
    free(gimg);
    free(glab);
}

/* num_classes: labels must be below it; 256 accepts every byte. */
static void test_idx_num_classes(void **state)
{
    (void)state;
    size_t il, ll;
    unsigned char *img = th_idx_images(3, 2, 2, &il), *lab = th_idx_labels(3, &ll);
    lab[8 + 1] = 200;
    tfx_dataset *ds = NULL;
    EXPECT(tfx__idx_from_memory(img, il, lab, ll, NULL, "labfile", NULL, &ds), TFX_EFORMAT, "label 200 of sample 1",
           "labfile");
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.num_classes = 256;
    EXPECT(tfx__idx_from_memory(img, il, lab, ll, NULL, NULL, &o, &ds), 0, NULL, NULL);
    assert_int_equal(tfx_dataset_labels(ds)[1], 200);
    assert_int_equal(tfx_dataset_num_classes(ds), 256);
    tfx_dataset_free(ds);
    o.num_classes = 257;
    EXPECT(tfx__idx_from_memory(img, il, lab, ll, NULL, NULL, &o, &ds), TFX_EINVAL, "num_classes", NULL);
    o.num_classes = -1;
    EXPECT(tfx__idx_from_memory(img, il, lab, ll, NULL, NULL, &o, &ds), TFX_EINVAL, "num_classes", NULL);
    free(img);
    free(lab);
}

/* One hand-made record: a single lit pixel per plane at known positions. */
static void test_cifar_planar_to_nhwc(void **state)
{
    (void)state;
    unsigned char rec[3073];
    memset(rec, 0, sizeof rec);
    rec[0] = 7;
    rec[1 + 0 * 1024 + 0 * 32 + 1] = 255;  /* red   at row 0,  col 1 */
    rec[1 + 1 * 1024 + 0 * 32 + 31] = 51;  /* green at row 0,  col 31 */
    rec[1 + 2 * 1024 + 31 * 32 + 0] = 102; /* blue  at row 31, col 0 */
    rec[1 + 0 * 1024 + 5 * 32 + 9] = 1;    /* red   at row 5,  col 9 */
    tfx_dataset *ds = NULL;
    EXPECT(tfx__cifar10_from_memory(rec, sizeof rec, NULL, NULL, &ds), 0, NULL, NULL);
    int shape[3];
    assert_int_equal(tfx_dataset_shape(ds, shape), 0);
    assert_int_equal(shape[0], 32);
    assert_int_equal(shape[1], 32);
    assert_int_equal(shape[2], 3);
    assert_int_equal(tfx_dataset_labels(ds)[0], 7);
    const float *x = tfx_dataset_images(ds);
    size_t lit[4] = {(0 * 32 + 1) * 3 + 0, (0 * 32 + 31) * 3 + 1, (31 * 32 + 0) * 3 + 2, (5 * 32 + 9) * 3 + 0};
    float val[4] = {1.0f, 0.2f, 0.4f, (float)(1 / 255.0)};
    for (size_t i = 0; i < 3072; i++) {
        float want = 0.0f;
        for (int k = 0; k < 4; k++)
            if (i == lit[k]) want = val[k];
        if (x[i] != want) fail_msg("NHWC index %zu: %g, expected %g", i, (double)x[i], (double)want);
    }
    tfx_dataset_free(ds);
}

static void check_cifar(const tfx_dataset *ds, size_t first, size_t n)
{
    assert_int_equal(tfx_dataset_count(ds), n);
    assert_int_equal(tfx_dataset_sample_size(ds), 3072);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(tfx_dataset_labels(ds)[i], th_cifar_label(first + i));
        const float *img = tfx_dataset_image(ds, i);
        for (int y = 0; y < 32; y++)
            for (int x = 0; x < 32; x++)
                for (int c = 0; c < 3; c++)
                    assert_true(img[(y * 32 + x) * 3 + c] == (float)(th_cifar_byte(first + i, c, y * 32 + x) / 255.0));
    }
}

static void test_cifar_files(void **state)
{
    (void)state;
    /* Three files of 2, 3 and 1 records hold global records 0..5. */
    size_t sizes[3] = {2, 3, 1}, first = 0, len;
    char paths[3][512];
    for (int f = 0; f < 3; f++) {
        unsigned char *b = th_cifar(first, sizes[f], &len);
        char name[32];
        snprintf(name, sizeof name, "c%d.bin", f);
        th_write(name, b, len);
        strcpy(paths[f], th_path(name));
        first += sizes[f];
        free(b);
    }
    const char *pp[3] = {paths[0], paths[1], paths[2]};
    tfx_dataset *ds = NULL;
    EXPECT(tfx_dataset_load_cifar10(&ds, pp, 3, NULL), 0, NULL, NULL);
    check_cifar(ds, 0, 6);
    assert_int_equal(tfx_dataset_num_classes(ds), 10);
    tfx_dataset_free(ds);
    /* A window across the file boundaries. */
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.offset = 1;
    o.limit = 4;
    EXPECT(tfx_dataset_load_cifar10(&ds, pp, 3, &o), 0, NULL, NULL);
    check_cifar(ds, 1, 4);
    tfx_dataset_free(ds);
    o.offset = 6;
    o.limit = 0;
    EXPECT(tfx_dataset_load_cifar10(&ds, pp, 3, &o), TFX_EINVAL, "offset 6", NULL);
    assert_null(ds);
    /* Once the limit is reached, later files are not opened (a missing one is no error). */
    const char *pm[3] = {paths[0], paths[1], th_path("missing.bin")};
    o.offset = 0;
    o.limit = 5;
    EXPECT(tfx_dataset_load_cifar10(&ds, pm, 3, &o), 0, NULL, NULL);
    check_cifar(ds, 0, 5);
    tfx_dataset_free(ds);
    o.limit = 6;
    EXPECT(tfx_dataset_load_cifar10(&ds, pm, 3, &o), TFX_EIO, "missing.bin", "tfx_dataset_load_cifar10");
    EXPECT(tfx_dataset_load_cifar10(&ds, pp, 0, NULL), TFX_EINVAL, NULL, NULL);
    const char *pn[2] = {paths[0], NULL};
    EXPECT(tfx_dataset_load_cifar10(&ds, pn, 2, NULL), TFX_EINVAL, "paths[1]", NULL);
}

static void test_cifar_dir(void **state)
{
    (void)state;
    mkdir(th_path("cifar-10-batches-bin"), 0700);
    size_t len;
    for (int f = 1; f <= 5; f++) {
        unsigned char *b = th_cifar((size_t)(f - 1) * 2, 2, &len);
        char name[64];
        snprintf(name, sizeof name, "cifar-10-batches-bin/data_batch_%d.bin", f);
        th_write(name, b, len);
        free(b);
    }
    unsigned char *t = th_cifar(100, 3, &len);
    th_write("cifar-10-batches-bin/test_batch.bin", t, len);
    free(t);
    char dir[512];
    strcpy(dir, th_path("cifar-10-batches-bin"));
    tfx_dataset *ds = NULL;
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, dir, TFX_DATA_TRAIN, NULL), 0, NULL, NULL);
    check_cifar(ds, 0, 10);
    tfx_dataset_free(ds);
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, dir, TFX_DATA_TEST, NULL), 0, NULL, NULL);
    check_cifar(ds, 100, 3);
    tfx_dataset_free(ds);
    remove(th_path("cifar-10-batches-bin/data_batch_3.bin"));
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, dir, TFX_DATA_TRAIN, NULL), TFX_EIO, "data_batch_3.bin",
           "No such file");
    assert_null(ds);
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, dir, -1, NULL), TFX_EINVAL, "split", NULL);
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, NULL, 0, NULL), TFX_EINVAL, "dir", NULL);
}

static void test_getters_and_options(void **state)
{
    (void)state;
    tfx_dataset_free(NULL);
    assert_int_equal(tfx_dataset_count(NULL), 0);
    assert_int_equal(tfx_dataset_sample_size(NULL), 0);
    assert_int_equal(tfx_dataset_num_classes(NULL), 0);
    assert_null(tfx_dataset_images(NULL));
    assert_null(tfx_dataset_labels(NULL));
    assert_null(tfx_dataset_image(NULL, 0));
    int shape[3];
    EXPECT(tfx_dataset_shape(NULL, shape), TFX_EINVAL, "ds", NULL);
    float oh[4];
    EXPECT(tfx_dataset_one_hot(NULL, oh), TFX_EINVAL, NULL, NULL);

    tfx_data_options o;
    EXPECT(tfx_data_options_init(&o, 0), TFX_EVERSION, NULL, NULL);
    EXPECT(tfx_data_options_init(&o, 2), TFX_EVERSION, NULL, NULL);
    EXPECT(tfx_data_options_init(NULL, 1), TFX_EINVAL, NULL, NULL);
    assert_int_equal(tfx_data_options_init(&o, 1), 0);
    assert_int_equal(o.version, 1);
    assert_int_equal(o.offset, 0);
    assert_int_equal(o.limit, 0);
    assert_int_equal(o.num_classes, 0);
    assert_int_equal(o.max_bytes, 0);

    tfx_dataset *ds = (tfx_dataset *)&o; /* must be reset to NULL on failure */
    o.version = 0;
    EXPECT(tfx_dataset_load_idx(&ds, "a", "b", &o), TFX_EVERSION, "tfx_dataset_load_idx", NULL);
    assert_null(ds);
    o.version = 9;
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, "x", 0, &o), TFX_EVERSION, NULL, NULL);
    EXPECT(tfx_dataset_load_idx(NULL, "a", "b", NULL), TFX_EINVAL, "out", NULL);
    EXPECT(tfx_dataset_load_idx(&ds, NULL, "b", NULL), TFX_EINVAL, "images_path", NULL);
    EXPECT(tfx_dataset_load_idx(&ds, "a", NULL, NULL), TFX_EINVAL, "labels_path", NULL);
    EXPECT(tfx_dataset_load_cifar10(&ds, NULL, 1, NULL), TFX_EINVAL, "paths", NULL);

    /* one_hot: row i has a single 1 at its label. */
    unsigned char rec[2 * 3073];
    memset(rec, 0, sizeof rec);
    rec[0] = 3;
    rec[3073] = 9;
    EXPECT(tfx__cifar10_from_memory(rec, sizeof rec, NULL, NULL, &ds), 0, NULL, NULL);
    float hot[20];
    assert_int_equal(tfx_dataset_one_hot(ds, hot), 0);
    for (int i = 0; i < 20; i++) assert_true(hot[i] == ((i == 3 || i == 19) ? 1.0f : 0.0f));
    tfx_dataset_free(ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_roundtrip),
        cmocka_unit_test(test_idx_num_classes),
        cmocka_unit_test(test_cifar_planar_to_nhwc),
        cmocka_unit_test(test_cifar_files),
        cmocka_unit_test(test_cifar_dir),
        cmocka_unit_test(test_getters_and_options),
    };
    return cmocka_run_group_tests(tests, th_tmpdir_create, th_tmpdir_remove);
}
