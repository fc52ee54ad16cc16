/* tfx_dataset_load_image_dir (Keras's image_dataset_from_directory) on a folder the test
 * generates: sorted class folders, ignored non-image and hidden files, pixels scaled and resized
 * as tfx_resize_bilinear does, the seeded shuffle and the Keras split (the last fraction is the
 * validation subset), a corrupt image (an error naming it) and bad options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "data_helpers.h"
#include "tfx/tfx.h"

enum { IH = 6, IW = 8 };

/* Image k of class c: red = 40 c + 3 k, green = column * 20, blue = row * 30. */
static void write_png(const char *rel, int c, int k)
{
    tfx_image *img;
    assert_int_equal(tfx_image_new(&img, IW, IH, 3), 0);
    for (int r = 0; r < IH; r++)
        for (int q = 0; q < IW; q++) {
            uint8_t *p = img->pixels + (size_t)r * img->stride + (size_t)q * 3;
            p[0] = (uint8_t)(40 * c + 3 * k);
            p[1] = (uint8_t)(q * 20);
            p[2] = (uint8_t)(r * 30);
        }
    assert_int_equal(tfx_image_write_png(img, th_path(rel)), 0);
    tfx_image_free(img);
}

static const int per_class[3] = {5, 4, 3}; /* "ant", "bee", "cow" */
static const char *const cls[3] = {"ant", "bee", "cow"};

static void make_folder(void)
{
    mkdir(th_path("imgs"), 0755);
    /* created out of order: the classes still come out sorted */
    for (int c = 2; c >= 0; c--) {
        char rel[64];
        snprintf(rel, sizeof rel, "imgs/%s", cls[c]);
        mkdir(th_path(rel), 0755);
        for (int k = 0; k < per_class[c]; k++) {
            snprintf(rel, sizeof rel, "imgs/%s/im%d.PNG", cls[c], k);
            write_png(rel, c, k);
        }
    }
    th_write("imgs/ant/notes.txt", "not an image", 12); /* ignored: not an image extension */
    th_write("imgs/bee/.hidden.png", "x", 1);           /* ignored: hidden */
    th_write("imgs/README", "top-level file", 14);      /* ignored: not a folder */
}

static void test_load(void **state)
{
    (void)state;
    make_folder();
    tfx_image_dir_options o = TFX_IMAGE_DIR_OPTIONS_INIT;
    o.height = 4;
    o.width = 4;
    o.shuffle = 0;
    tfx_dataset *ds;
    assert_int_equal(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), 0);
    assert_int_equal(tfx_dataset_count(ds), 12);
    assert_int_equal(tfx_dataset_num_classes(ds), 3);
    int shape[3];
    assert_int_equal(tfx_dataset_shape(ds, shape), 0);
    assert_true(shape[0] == 4 && shape[1] == 4 && shape[2] == 3);
    for (int c = 0; c < 3; c++) assert_string_equal(tfx_dataset_class_name(ds, c), cls[c]);
    assert_null(tfx_dataset_class_name(ds, 3));
    /* In order: class by class, files sorted; pixels = bilinear resize of the [0, 1] image. */
    size_t i = 0;
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < per_class[c]; k++, i++) {
            assert_int_equal(tfx_dataset_labels(ds)[i], c);
            float src[IH * IW * 3], want[4 * 4 * 3];
            for (int r = 0; r < IH; r++)
                for (int q = 0; q < IW; q++) {
                    src[(r * IW + q) * 3 + 0] = (float)((40 * c + 3 * k) / 255.0);
                    src[(r * IW + q) * 3 + 1] = (float)((q * 20) / 255.0);
                    src[(r * IW + q) * 3 + 2] = (float)((r * 30) / 255.0);
                }
            assert_int_equal(tfx_resize_bilinear(src, IH, IW, 3, want, 4, 4), 0);
            assert_memory_equal(tfx_dataset_image(ds, i), want, sizeof want);
        }
    tfx_dataset_free(ds);

    /* Grayscale keeps the full size when asked (no resize: exact bytes / 255). */
    o.height = IH;
    o.width = IW;
    o.channels = 1;
    assert_int_equal(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), 0);
    assert_int_equal(tfx_dataset_sample_size(ds), IH * IW);
    tfx_dataset_free(ds);
}

/* Red channel identifies an image: 40 c + 3 k. */
static int id_of(const tfx_dataset *ds, size_t i) { return (int)(tfx_dataset_image(ds, i)[0] * 255.0f + 0.5f); }

static void test_split(void **state)
{
    (void)state;
    make_folder();
    tfx_image_dir_options o = TFX_IMAGE_DIR_OPTIONS_INIT;
    o.height = IH;
    o.width = IW;
    o.seed = 9;
    o.validation_split = 0.25; /* floor(0.25 * 12) = 3 validation images */
    tfx_dataset *tr, *va, *tr2;
    assert_int_equal(tfx_dataset_load_image_dir(&tr, th_path("imgs"), &o), 0);
    o.subset = TFX_DATA_TEST;
    assert_int_equal(tfx_dataset_load_image_dir(&va, th_path("imgs"), &o), 0);
    assert_int_equal(tfx_dataset_count(tr), 9);
    assert_int_equal(tfx_dataset_count(va), 3);
    int seen[256] = {0}, in_order = 1;
    for (size_t i = 0; i < 9; i++) {
        int id = id_of(tr, i);
        seen[id]++;
        assert_int_equal(tfx_dataset_labels(tr)[i], id / 40); /* labels travel with their files */
        if (i && id < id_of(tr, i - 1)) in_order = 0;
    }
    for (size_t i = 0; i < 3; i++) seen[id_of(va, i)]++;
    for (int c = 0; c < 3; c++)
        for (int k = 0; k < per_class[c]; k++) assert_int_equal(seen[40 * c + 3 * k], 1); /* disjoint, complete */
    assert_false(in_order);                                                               /* shuffled */
    /* Same seed: the same subset; another seed: another order. */
    o.subset = TFX_DATA_TRAIN;
    o.seed = 10;
    assert_int_equal(tfx_dataset_load_image_dir(&tr2, th_path("imgs"), &o), 0);
    int same = 1;
    for (size_t i = 0; i < 9; i++) same &= id_of(tr, i) == id_of(tr2, i);
    assert_false(same);
    tfx_dataset_free(tr);
    tfx_dataset_free(va);
    tfx_dataset_free(tr2);
}

static void test_bad(void **state)
{
    (void)state;
    make_folder();
    tfx_dataset *ds = NULL;
    tfx_image_dir_options o = TFX_IMAGE_DIR_OPTIONS_INIT;
    o.height = 4;
    o.width = 4;
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("missing"), &o), TFX_EIO, "missing", NULL);
    th_write("imgs/bee/broken.png", "\x89PNG\r\n\x1a\nnot really", 18);
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), TFX_EFORMAT, "broken.png", NULL);
    assert_null(ds);
    remove(th_path("imgs/bee/broken.png"));
    o.validation_split = 0.05; /* floor(0.6) = 0 validation images */
    o.subset = TFX_DATA_TEST;
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), TFX_EINVAL, "validation subset empty", NULL);
    o.validation_split = 1.0;
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), TFX_EINVAL, "validation_split 1", NULL);
    o.validation_split = 0.0;
    o.subset = TFX_DATA_TRAIN;
    o.channels = 2;
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("imgs"), &o), TFX_EINVAL, "channels 2", NULL);
    o.channels = 3;
    mkdir(th_path("empty"), 0755);
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("empty"), &o), TFX_EINVAL, "0 class folders", NULL);
    mkdir(th_path("empty/a"), 0755);
    EXPECT(tfx_dataset_load_image_dir(&ds, th_path("empty"), &o), TFX_EINVAL, "no .png", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_load, th_tmpdir_create, th_tmpdir_remove),
        cmocka_unit_test_setup_teardown(test_split, th_tmpdir_create, th_tmpdir_remove),
        cmocka_unit_test_setup_teardown(test_bad, th_tmpdir_create, th_tmpdir_remove),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
