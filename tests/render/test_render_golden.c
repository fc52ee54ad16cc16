/* Golden values from independent implementations (tests/render/gen_golden.py): OpenCV 4.6
 * colormaps, cv2.resize (bit-exact) and torch bilinear (tolerance), tf-explain's heatmap_display
 * and ExtractActivations post-processing re-run with numpy + OpenCV (bit-exact), and the U6
 * float32 emulation. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "render/render.h"
#include "golden.h"
#include "tfx/image.h"

static char *load(const char *file)
{
    char *t = golden_read(file);
    if (!t) fail_msg("cannot read tests/render/data/%s (TFX_SOURCE_ROOT?)", file);
    return t;
}

static void colormaps_every_entry(void **state)
{
    (void)state;
    char *t = load("colormaps.txt");
    const char *names[2] = {"viridis", "jet"};
    int cms[2] = {TFX_COLORMAP_VIRIDIS, TFX_COLORMAP_JET};
    for (int m = 0; m < 2; m++) {
        size_t n = 0;
        double *ref = golden_get(t, names[m], &n);
        assert_non_null(ref);
        assert_int_equal(n, 768);
        const uint8_t *lut = NULL;
        assert_int_equal(tfx_colormap_table(cms[m], &lut), TFX_OK);
        for (size_t i = 0; i < 768; i++) {
            if (lut[i] != (uint8_t)ref[i]) fail_msg("%s entry %zu channel %zu: %d != %d", names[m], i / 3, i % 3, lut[i], (int)ref[i]);
        }
        free(ref);
    }
    free(t);
    /* Appendix A spot values: 0 = (68,1,84), 128 = (33,145,140), 255 = (253,231,37); row 5
     * column 3 (index 83) = 31668E. */
    const uint8_t *v = NULL;
    tfx_colormap_table(TFX_COLORMAP_VIRIDIS, &v);
    assert_memory_equal(v + 0, ((uint8_t[]){68, 1, 84}), 3);
    assert_memory_equal(v + 3 * 128, ((uint8_t[]){33, 145, 140}), 3);
    assert_memory_equal(v + 3 * 255, ((uint8_t[]){253, 231, 37}), 3);
    assert_memory_equal(v + 3 * 83, ((uint8_t[]){0x31, 0x66, 0x8E}), 3);
    const uint8_t *g = NULL;
    tfx_colormap_table(TFX_COLORMAP_GRAY, &g);
    for (int i = 0; i < 256; i++) assert_memory_equal(g + 3 * i, ((uint8_t[]){(uint8_t)i, (uint8_t)i, (uint8_t)i}), 3);
}

static void resize_cv2_exact(void **state)
{
    (void)state;
    char *t = load("resize_cv2.txt");
    size_t nc = 0;
    double *cases = golden_get(t, "cases", &nc);
    assert_non_null(cases);
    for (size_t i = 0; i < nc / 5; i++) {
        int sh = (int)cases[5 * i], sw = (int)cases[5 * i + 1], c = (int)cases[5 * i + 2];
        int dh = (int)cases[5 * i + 3], dw = (int)cases[5 * i + 4];
        char name[32];
        size_t n1, n2;
        snprintf(name, sizeof name, "src%zu", i);
        float *src = golden_getf(t, name, &n1);
        snprintf(name, sizeof name, "out%zu", i);
        float *ref = golden_getf(t, name, &n2);
        assert_int_equal(n1, (size_t)sh * sw * c);
        assert_int_equal(n2, (size_t)dh * dw * c);
        float *out = malloc(n2 * sizeof *out);
        assert_int_equal(tfx_resize_bilinear(src, sh, sw, c, out, dh, dw), TFX_OK);
        for (size_t k = 0; k < n2; k++)
            if (memcmp(&out[k], &ref[k], sizeof(float)) != 0)
                fail_msg("case %zu (%dx%dx%d -> %dx%d) element %zu: %.9g != cv2 %.9g", i, sh, sw, c, dh, dw, k,
                         (double)out[k], (double)ref[k]);
        /* float64 maps (occlusion) */
        snprintf(name, sizeof name, "src64_%zu", i);
        double *s64 = golden_get(t, name, &n1);
        snprintf(name, sizeof name, "out64_%zu", i);
        double *r64 = golden_get(t, name, &n2);
        double *o64 = malloc(n2 * sizeof *o64);
        assert_int_equal(tfx__resize_f64(s64, sh, sw, c, o64, dh, dw), TFX_OK);
        for (size_t k = 0; k < n2; k++)
            if (o64[k] != r64[k])
                fail_msg("f64 case %zu element %zu: %.17g != cv2 %.17g", i, k, o64[k], r64[k]);
        free(src);
        free(ref);
        free(out);
        free(s64);
        free(r64);
        free(o64);
    }
    free(cases);
    free(t);
}

static void resize_torch_close(void **state)
{
    (void)state;
    char *t = load("resize_torch.txt");
    size_t nc = 0;
    double *cases = golden_get(t, "cases", &nc);
    assert_non_null(cases);
    double worst = 0.0;
    for (size_t i = 0; i < nc / 5; i++) {
        int sh = (int)cases[5 * i], sw = (int)cases[5 * i + 1], c = (int)cases[5 * i + 2];
        int dh = (int)cases[5 * i + 3], dw = (int)cases[5 * i + 4];
        char name[32];
        size_t n1, n2;
        snprintf(name, sizeof name, "src%zu", i);
        float *src = golden_getf(t, name, &n1);
        snprintf(name, sizeof name, "out%zu", i);
        double *ref = golden_get(t, name, &n2);
        float *out = malloc(n2 * sizeof *out);
        assert_int_equal(tfx_resize_bilinear(src, sh, sw, c, out, dh, dw), TFX_OK);
        for (size_t k = 0; k < n2; k++) {
            /* OpenCV (and so libtfx) rounds source coordinates to float32: ~1e-6 of a pixel step. */
            double err = fabs((double)out[k] - ref[k]) / (1.0 + fabs(ref[k]));
            if (err > worst) worst = err;
            if (err > 1e-5) fail_msg("case %zu element %zu: %.9g vs torch %.9g", i, k, (double)out[k], ref[k]);
        }
        free(src);
        free(ref);
        free(out);
    }
    print_message("resize vs torch: worst relative error %.3g\n", worst);
    free(cases);
    free(t);
}

static void heatmap_tf_explain_exact(void **state)
{
    (void)state;
    char *t = load("heatmap.txt");
    size_t nc = 0, nw = 0;
    double *cases = golden_get(t, "cases", &nc);
    double *weights = golden_get(t, "weights", &nw);
    assert_non_null(cases);
    for (size_t i = 0; i < nc / 7; i++) {
        int mh = (int)cases[7 * i], mw = (int)cases[7 * i + 1], f64 = (int)cases[7 * i + 2];
        int h = (int)cases[7 * i + 3], w = (int)cases[7 * i + 4], c = (int)cases[7 * i + 5];
        int cm = (int)cases[7 * i + 6];
        char name[32];
        size_t n1, n2, n3;
        snprintf(name, sizeof name, "map%zu", i);
        double *map = golden_get(t, name, &n1);
        snprintf(name, sizeof name, "img%zu", i);
        float *img = golden_getf(t, name, &n2);
        snprintf(name, sizeof name, "out%zu", i);
        double *ref = golden_get(t, name, &n3);
        assert_int_equal(n3, (size_t)h * w * 3);
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
        o.compat = TFX_COMPAT_TF_EXPLAIN;
        o.colormap = cm;
        o.image_weight = (float)weights[2 * i];
        o.heatmap_weight = (float)weights[2 * i + 1];
        tfx_image *out = NULL;
        if (f64) {
            assert_int_equal(tfx__render_heatmap_f64(map, 1, mh, mw, img, h, w, c, &o, &out), TFX_OK);
        } else {
            float *mf = malloc(n1 * sizeof *mf);
            for (size_t k = 0; k < n1; k++) mf[k] = (float)map[k];
            assert_int_equal(tfx_render_heatmap(mf, 1, mh, mw, img, h, w, c, &o, &out), TFX_OK);
            free(mf);
        }
        size_t bad = 0;
        for (size_t k = 0; k < n3; k++)
            if (out->pixels[k] != (uint8_t)ref[k]) {
                if (!bad) print_error("case %zu: pixel %zu channel %zu: %d != %d\n", i, k / 3, k % 3, out->pixels[k], (int)ref[k]);
                bad++;
            }
        if (bad) fail_msg("heatmap case %zu: %zu of %zu bytes differ from tf-explain", i, bad, n3);
        tfx_image_free(out);
        free(map);
        free(img);
        free(ref);
    }
    free(cases);
    free(weights);
    free(t);
}

static void filters_tf_explain_exact(void **state)
{
    (void)state;
    char *t = load("filters.txt");
    size_t nc = 0;
    double *cases = golden_get(t, "cases", &nc);
    for (size_t i = 0; i < nc / 4; i++) {
        int n = (int)cases[4 * i], h = (int)cases[4 * i + 1], w = (int)cases[4 * i + 2], k = (int)cases[4 * i + 3];
        char name[32];
        size_t n1, n2;
        snprintf(name, sizeof name, "acts%zu", i);
        float *acts = golden_getf(t, name, &n1);
        snprintf(name, sizeof name, "out%zu", i);
        double *ref = golden_get(t, name, &n2);
        tfx_render_options o = TFX_RENDER_OPTIONS_INIT;
        o.compat = TFX_COMPAT_TF_EXPLAIN;
        tfx_image *g = NULL;
        assert_int_equal(tfx_render_filters(acts, (size_t)n, h, w, k, &o, &g), TFX_OK);
        assert_int_equal((size_t)g->width * g->height, n2);
        for (size_t p = 0; p < n2; p++)
            if (g->pixels[p] != (uint8_t)ref[p]) fail_msg("filters case %zu pixel %zu: %d != %d", i, p, g->pixels[p], (int)ref[p]);
        tfx_image_free(g);
        free(acts);
        free(ref);
    }
    free(cases);
    free(t);
}

static void grayscale_emulation(void **state)
{
    (void)state;
    char *t = load("grayscale.txt");
    size_t nc = 0;
    double *cases = golden_get(t, "cases", &nc);
    for (size_t i = 0; i < nc / 4; i++) {
        int n = (int)cases[4 * i], h = (int)cases[4 * i + 1], w = (int)cases[4 * i + 2], c = (int)cases[4 * i + 3];
        char name[32];
        size_t n1, n2, n3;
        snprintf(name, sizeof name, "t%zu", i);
        float *x = golden_getf(t, name, &n1);
        snprintf(name, sizeof name, "wrap%zu", i);
        double *wrap = golden_get(t, name, &n2);
        snprintf(name, sizeof name, "sat%zu", i);
        double *sat = golden_get(t, name, &n3);
        uint8_t *out = malloc(n2);
        tfx__tfe_normalized_grayscale(x, (size_t)n, (size_t)h * w, c, 0, out);
        for (size_t p = 0; p < n2; p++) assert_int_equal(out[p], (int)wrap[p]);
        tfx__tfe_normalized_grayscale(x, (size_t)n, (size_t)h * w, c, 1, out);
        for (size_t p = 0; p < n3; p++) assert_int_equal(out[p], (int)sat[p]);
        free(out);
        free(x);
        free(wrap);
        free(sat);
    }
    free(cases);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(colormaps_every_entry),   cmocka_unit_test(resize_cv2_exact),
        cmocka_unit_test(resize_torch_close),      cmocka_unit_test(heatmap_tf_explain_exact),
        cmocka_unit_test(filters_tf_explain_exact), cmocka_unit_test(grayscale_emulation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
