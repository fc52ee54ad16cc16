/* The real Fashion-MNIST files (Debian package dataset-fashion-mnist; exit 77, skipped, without
 * them). Reference values come from gen_fashion_reference.py, an independent reader (gzip + struct). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "data_helpers.h"
#include "tfx/tfx.h"

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

static int have_fashion(void)
{
    struct stat st;
    return stat(FASHION_DIR "/t10k-images-idx3-ubyte.gz", &st) == 0;
}

static void test_fashion_test_set(void **state)
{
    (void)state;
    tfx_dataset *ds = NULL;
    EXPECT(tfx_dataset_load_idx_dir(&ds, FASHION_DIR, TFX_DATA_TEST, NULL), 0, NULL, NULL);
    assert_int_equal(tfx_dataset_count(ds), 10000);
    int shape[3];
    assert_int_equal(tfx_dataset_shape(ds, shape), 0);
    assert_int_equal(shape[0], 28);
    assert_int_equal(shape[1], 28);
    assert_int_equal(shape[2], 1);
    assert_int_equal(tfx_dataset_num_classes(ds), 10);
    assert_int_equal(tfx_dataset_sample_size(ds), 784);

    static const int first[20] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1, 2, 4, 8, 0};
    static const int last[5] = {9, 1, 8, 1, 5};
    const int32_t *y = tfx_dataset_labels(ds);
    for (int i = 0; i < 20; i++) assert_int_equal(y[i], first[i]);
    for (int i = 0; i < 5; i++) assert_int_equal(y[9995 + i], last[i]);
    int hist[10] = {0};
    for (size_t i = 0; i < 10000; i++) hist[y[i]]++;
    for (int c = 0; c < 10; c++) assert_int_equal(hist[c], 1000);

    /* Exact checksums over the bytes recovered from the floats, and every float must be exactly
     * float(b / 255.0) for its byte (the tutorial's scaling). */
    const float *x = tfx_dataset_images(ds);
    uint64_t bsum = 0, wsum = 0;
    double fsum = 0.0;
    for (size_t i = 0; i < 10000u * 784u; i++) {
        long b = lrintf(x[i] * 255.0f);
        assert_true(b >= 0 && b <= 255);
        assert_true(x[i] == (float)((double)b / 255.0));
        bsum += (uint64_t)b;
        wsum += (uint64_t)b * (uint64_t)(i % 65521 + 1);
        fsum += x[i];
    }
    assert_true(bsum == 573469082u);
    assert_true(wsum == 18731464165863u);
    assert_true(fabs(fsum - 2248898.4019832574) < 1e-4);
    assert_true(x[0] == 0.0f);
    assert_true(tfx_dataset_image(ds, 0)[14 * 28 + 14] == 0.4313725531101227f);
    assert_true(tfx_dataset_image(ds, 0)[20 * 28 + 10] == 0.4941176474094391f);
    assert_true(tfx_dataset_image(ds, 9999)[13 * 28 + 13] == 0.37254902720451355f);
    assert_true(tfx_dataset_image(ds, 1234)[7 * 28 + 21] == 0.21568627655506134f);
    assert_null(tfx_dataset_image(ds, 10000));

    /* offset + limit through the explicit-path loader give the same samples. */
    tfx_data_options o;
    assert_int_equal(tfx_data_options_init(&o, TFX_DATA_OPTIONS_VERSION), 0);
    o.offset = 1234;
    o.limit = 7;
    tfx_dataset *sub = NULL;
    EXPECT(tfx_dataset_load_idx(&sub, FASHION_DIR "/t10k-images-idx3-ubyte.gz",
                                FASHION_DIR "/t10k-labels-idx1-ubyte.gz", &o), 0, NULL, NULL);
    assert_int_equal(tfx_dataset_count(sub), 7);
    assert_memory_equal(tfx_dataset_images(sub), tfx_dataset_image(ds, 1234), 7 * 784 * sizeof(float));
    assert_memory_equal(tfx_dataset_labels(sub), y + 1234, 7 * sizeof(int32_t));
    tfx_dataset_free(sub);
    tfx_dataset_free(ds);
}

/* 60,000 images: decompressing 26 MB and 188 MB of floats; skipped under valgrind. */
static void test_fashion_train_set(void **state)
{
    (void)state;
    if (th_valgrind()) skip();
    tfx_dataset *ds = NULL;
    EXPECT(tfx_dataset_load_idx_dir(&ds, FASHION_DIR, TFX_DATA_TRAIN, NULL), 0, NULL, NULL);
    assert_int_equal(tfx_dataset_count(ds), 60000);
    static const int first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    static const int last[3] = {3, 0, 5};
    const int32_t *y = tfx_dataset_labels(ds);
    for (int i = 0; i < 10; i++) assert_int_equal(y[i], first[i]);
    for (int i = 0; i < 3; i++) assert_int_equal(y[59997 + i], last[i]);
    const float *x = tfx_dataset_images(ds);
    uint64_t bsum = 0;
    for (size_t i = 0; i < 60000u * 784u; i++) bsum += (uint64_t)lrintf(x[i] * 255.0f);
    assert_true(bsum == 3431114169u);
    tfx_dataset_free(ds);
}

int main(void)
{
    if (!have_fashion()) {
        printf("SKIP: no %s\n", FASHION_DIR);
        return 77; /* meson's skipped */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fashion_test_set),
        cmocka_unit_test(test_fashion_train_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
