/* Issue 16: every public function taking a count refuses one whose size in bytes does not fit
 * (n = SIZE_MAX, and the n for which n x sample bytes just wraps) with TFX_EINVAL, before
 * reading anything and without hanging. Every caller array passed here is the start of a
 * PROT_NONE mapping, so any read or write is a SIGSEGV; each call runs in a child process
 * under alarm(10), so one failure does not hide the others.
 * check_counts.py (run with the suite) compares the `cases` and `exempt` lists below with the
 * size_t parameters of the public headers, so a new count-taking function must be added here. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "render/render.h"
#include "tfx/tfx.h"

/* The model every call gets: 4x4x1 in (16 floats, 64 bytes a sample), 3 classes out. */
#define IN_FLOATS 16
#define SAMPLE_BYTES (IN_FLOATS * sizeof(float))

static tfx_model *model;
static tfx_attribution *attribution; /* made from one clean image */
static tfx_event_writer *writer;
static void *guard; /* PROT_NONE: touching it is SIGSEGV */
static char tmpdir[64];
static const char *volatile current; /* the case running, for the signal handlers */

static void on_signal(int sig)
{
    char msg[256];
    int len = snprintf(msg, sizeof msg, "%s: %s\n", current ? current : "?",
                       sig == SIGALRM ? "hung (no answer within 10 s)" : "touched the caller's memory (SIGSEGV)");
    if (write(2, msg, (size_t)len) < 0) _exit(2);
    _exit(1);
}

static tfx_fit_options quiet_fit(void)
{
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.verbose = 0;
    return fo;
}

static tfx_explain_options ex(int method)
{
    tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
    o.method = method;
    return o;
}

static tfx_explainer_callback_options uncapped(void)
{
    tfx_explainer_callback_options co = TFX_EXPLAINER_CALLBACK_OPTIONS_INIT;
    co.max_images = SIZE_MAX; /* so the byte count, not the image cap, is what refuses */
    return co;
}

#define X ((const float *)guard)
#define NOWHERE "/dev/null/tfx-run" /* mkdir fails (ENOTDIR), even as root */

/* One wrapper per walked (function, parameter): everything but the count is valid. */
static int c_predict(size_t n) { return tfx_model_predict(model, X, n, (float *)guard); }
static int c_evaluate(size_t n)
{
    double loss;
    return tfx_model_evaluate(model, X, guard, n, &loss, NULL);
}
static int c_fit(size_t n)
{
    tfx_fit_options fo = quiet_fit();
    return tfx_model_fit(model, X, guard, n, &fo, NULL);
}
static int c_fit_validation(size_t n)
{
    static const float x1[IN_FLOATS];
    static const int32_t y1[1];
    tfx_fit_options fo = quiet_fit();
    fo.validation_x = X;
    fo.validation_y = guard;
    fo.validation_n = n;
    return tfx_model_fit(model, x1, y1, 1, &fo, NULL);
}
static int c_fit_callbacks(size_t n)
{
    static const float x1[IN_FLOATS];
    static const int32_t y1[1];
    tfx_fit_options fo = quiet_fit();
    fo.callbacks = guard;
    fo.n_callbacks = n;
    return tfx_model_fit(model, x1, y1, 1, &fo, NULL);
}
static int c_explain(size_t n)
{
    tfx_attribution *a = NULL;
    tfx_explain_options o = ex(TFX_METHOD_INTEGRATED_GRADIENTS);
    int rc = tfx_explain(model, X, n, &o, &a);
    tfx_attribution_free(a);
    return rc;
}
static int c_deletion(size_t n)
{
    return tfx_deletion_insertion(model, X, n, attribution, NULL, (double *)guard, (double *)guard);
}
static int c_sanity(size_t n)
{
    size_t count;
    return tfx_sanity_check(model, X, n, NULL, TFX_RANK_SUM, 1, (double *)guard, 1, &count);
}
#define PICTURE(name, call)    \
    static int name(size_t n)  \
    {                          \
        tfx_image *img = NULL; \
        int rc = call;         \
        tfx_image_free(img);   \
        return rc;             \
    }
PICTURE(c_activations, tfx_extract_activations(model, X, n, "c1", NULL, &img))
PICTURE(c_vanilla, tfx_vanilla_gradients(model, X, n, -1, NULL, &img))
PICTURE(c_grad_inputs, tfx_gradients_inputs(model, X, n, -1, NULL, &img))
PICTURE(c_occlusion, tfx_occlusion_sensitivity(model, X, n, -1, NULL, &img))
PICTURE(c_grad_cam, tfx_grad_cam(model, X, n, -1, NULL, &img))
PICTURE(c_smooth_grad, tfx_smooth_grad(model, X, n, -1, NULL, &img))
PICTURE(c_ig, tfx_integrated_gradients(model, X, n, -1, NULL, &img))
PICTURE(c_grid, tfx_render_grid(guard, n, 4, 4, 1, 0, 0, &img))
PICTURE(c_filters, tfx_render_filters(X, n, 4, 4, 1, NULL, &img))
PICTURE(c_saliency, tfx_render_saliency(X, n, 4, 4, 1, NULL, &img))
PICTURE(c_heatmap, tfx_render_heatmap(X, n, 2, 2, X, 4, 4, 1, NULL, &img))
static int c_normalize(size_t n) { return tfx_normalize_minmax(X, n, (float *)guard); }
static int c_colormap_u8(size_t n) { return tfx_colormap_apply_u8(TFX_COLORMAP_VIRIDIS, guard, n, guard); }
static int c_colormap(size_t n) { return tfx_colormap_apply(TFX_COLORMAP_VIRIDIS, X, n, guard); }
/* src and dst both the guard page: the count must be refused before the overlap check reads
 * them as ranges (an overlap message would hide a missing count check: the test reads it). */
static int c_nchw(size_t n) { return tfx_tensor_nchw_to_nhwc(X, (float *)guard + 1, n, 2, 2, 4); }
static int c_nhwc(size_t n) { return tfx_tensor_nhwc_to_nchw(X, (float *)guard + 1, n, 2, 4, 2); }
static int c_cifar10(size_t n)
{
    tfx_dataset *ds = NULL;
    int rc = tfx_dataset_load_cifar10(&ds, guard, n, NULL);
    tfx_dataset_free(ds);
    return rc;
}
static int c_stream_cifar10(size_t n)
{
    tfx_stream *st = NULL;
    int rc = tfx_stream_open_cifar10(&st, guard, n, NULL);
    tfx_stream_free(st);
    return rc;
}
static int c_batch_size(size_t n) { return tfx_model_set_batch_size(model, n); }
static int c_png(size_t n) { return tfx_event_writer_add_image_png(writer, "t", 0, 4, 4, 1, guard, n); }
#define CALLBACK(name, call)                            \
    static int name(size_t n)                           \
    {                                                   \
        tfx_explainer_callback *cb = NULL;              \
        tfx_explainer_callback_options co = uncapped(); \
        int rc = call;                                  \
        tfx_explainer_callback_free(cb);                \
        return rc;                                      \
    }
CALLBACK(c_cb, tfx_explainer_callback_new(&cb, model, TFX_METHOD_VANILLA_GRADIENTS, X, n, -1, NULL, NOWHERE, NULL, &co))
CALLBACK(c_cb_act, tfx_activations_visualization_callback_new(&cb, model, X, n, "c1", NOWHERE, NULL, &co))
CALLBACK(c_cb_gc, tfx_grad_cam_callback_new(&cb, model, X, n, -1, NULL, NOWHERE, NULL, &co))
CALLBACK(c_cb_occ, tfx_occlusion_sensitivity_callback_new(&cb, model, X, n, -1, NOWHERE, NULL, &co))
CALLBACK(c_cb_vg, tfx_vanilla_gradients_callback_new(&cb, model, X, n, -1, NOWHERE, NULL, &co))
CALLBACK(c_cb_gi, tfx_gradients_inputs_callback_new(&cb, model, X, n, -1, NOWHERE, NULL, &co))
CALLBACK(c_cb_sg, tfx_smooth_grad_callback_new(&cb, model, X, n, -1, NOWHERE, NULL, &co))
CALLBACK(c_cb_ig, tfx_integrated_gradients_callback_new(&cb, model, X, n, -1, NOWHERE, NULL, &co))

typedef struct count_case {
    const char *fn;    /* the public function */
    const char *param; /* its count (a parameter, or an options field) */
    size_t unit_bytes; /* bytes one unit of the count reads or writes (the largest array);
                          0: a byte count or a capped one, only SIZE_MAX and `wrap` below */
    size_t wrap;       /* with unit_bytes 0: another refused count (0: none) */
    int (*call)(size_t n);
} count_case;

static const count_case cases[] = {
    {"tfx_model_predict", "n", SAMPLE_BYTES, 0, c_predict},
    {"tfx_model_evaluate", "n", SAMPLE_BYTES, 0, c_evaluate},
    {"tfx_model_fit", "n", SAMPLE_BYTES, 0, c_fit},
    {"tfx_model_fit", "validation_n", SAMPLE_BYTES, 0, c_fit_validation},
    {"tfx_model_fit", "n_callbacks", sizeof(void *), 0, c_fit_callbacks},
    {"tfx_explain", "n", SAMPLE_BYTES, 0, c_explain},
    {"tfx_deletion_insertion", "n", SAMPLE_BYTES, 0, c_deletion},
    {"tfx_sanity_check", "n", SAMPLE_BYTES, 0, c_sanity},
    {"tfx_extract_activations", "n", SAMPLE_BYTES, 0, c_activations},
    {"tfx_vanilla_gradients", "n", SAMPLE_BYTES, 0, c_vanilla},
    {"tfx_gradients_inputs", "n", SAMPLE_BYTES, 0, c_grad_inputs},
    {"tfx_occlusion_sensitivity", "n", SAMPLE_BYTES, 0, c_occlusion},
    {"tfx_grad_cam", "n", SAMPLE_BYTES, 0, c_grad_cam},
    {"tfx_smooth_grad", "n", SAMPLE_BYTES, 0, c_smooth_grad},
    {"tfx_integrated_gradients", "n", SAMPLE_BYTES, 0, c_ig},
    {"tfx_render_grid", "n", 16, 0, c_grid},
    {"tfx_render_filters", "n", SAMPLE_BYTES, 0, c_filters},
    {"tfx_render_saliency", "n", SAMPLE_BYTES, 0, c_saliency},
    {"tfx_render_heatmap", "n", SAMPLE_BYTES, 0, c_heatmap},
    {"tfx_normalize_minmax", "count", sizeof(float), 0, c_normalize},
    {"tfx_colormap_apply_u8", "count", 3, 0, c_colormap_u8},
    {"tfx_colormap_apply", "count", sizeof(float), 0, c_colormap},
    {"tfx_tensor_nchw_to_nhwc", "n", SAMPLE_BYTES, 0, c_nchw},
    {"tfx_tensor_nhwc_to_nchw", "n", SAMPLE_BYTES, 0, c_nhwc},
    {"tfx_dataset_load_cifar10", "n_paths", sizeof(char *), 0, c_cifar10},
    {"tfx_stream_open_cifar10", "n_paths", sizeof(char *), 0, c_stream_cifar10},
    {"tfx_model_set_batch_size", "batch_size", 0, ((size_t)1 << 20) + 1, c_batch_size},
    {"tfx_event_writer_add_image_png", "png_size", 0, ((size_t)1 << 30) + 1, c_png},
    {"tfx_explainer_callback_new", "n", SAMPLE_BYTES, 0, c_cb},
    {"tfx_activations_visualization_callback_new", "n", SAMPLE_BYTES, 0, c_cb_act},
    {"tfx_grad_cam_callback_new", "n", SAMPLE_BYTES, 0, c_cb_gc},
    {"tfx_occlusion_sensitivity_callback_new", "n", SAMPLE_BYTES, 0, c_cb_occ},
    {"tfx_vanilla_gradients_callback_new", "n", SAMPLE_BYTES, 0, c_cb_vg},
    {"tfx_gradients_inputs_callback_new", "n", SAMPLE_BYTES, 0, c_cb_gi},
    {"tfx_smooth_grad_callback_new", "n", SAMPLE_BYTES, 0, c_cb_sg},
    {"tfx_integrated_gradients_callback_new", "n", SAMPLE_BYTES, 0, c_cb_ig},
};

/* The public size_t parameters that are not a count of caller items (check_counts.py reads
 * these strings: "function.param: why"). */
static const char *const exempt[] = {
    "tfx_dataset_image.i: an index, checked against the dataset's count",
    "tfx_attribution_data.i: an index, checked against the attribution's count",
    "tfx_attribution_class_index.i: an index, checked against the attribution's count",
    "tfx_attribution_ig_delta.i: an index, checked against the attribution's count",
    "tfx_attribution_relevance_sums.i: an index, checked against the attribution's count",
    "tfx_attribution_relevance_sums.cap: at most min(cap, layer count) doubles are written",
    "tfx_sanity_check.cap: at most min(cap, layer count) doubles are written",
    "tfx_model_layer.index: an index, checked against the layer count",
    "tfx_image_decode.size: a byte count; nothing multiplies it",
    "tfx_model_save_to_memory.capacity: a byte count; writes stop at the file's size",
    "tfx_model_load_from_memory.size: a byte count; nothing multiplies it",
    "tfx_layer_inputs.cap: at most min(cap, input count) pointers are written",
    "tfx_model_add_add.n: bounded to 2..1024 before inputs is read",
    "tfx_model_add_concatenate.n: bounded to 2..1024 before inputs is read",
    "tfx_model_add_multiply.n: bounded to 2..1024 before inputs is read",
    "tfx_model_load_onnx_from_memory.size: a byte count; the protobuf reader checks every length against it",
};

/* Runs one call in a child: 0 when it answered TFX_EINVAL. */
static int run_case(const count_case *c, size_t n, const char *label)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        /* cmocka's own handlers would longjmp back into the test loop inside the child */
        signal(SIGSEGV, on_signal);
        signal(SIGBUS, on_signal);
        current = label;
        alarm(10);
        int rc = c->call(n);
        alarm(0);
        if (rc == TFX_EINVAL) _exit(0);
        fprintf(stderr, "%s -> %d \"%s\" (want TFX_EINVAL)\n", label, rc, tfx_error_last()->message);
        _exit(1);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_counts_refused(void **state)
{
    (void)state;
    size_t runs = 0, failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const count_case *c = &cases[i];
        size_t ns[2] = {SIZE_MAX, c->unit_bytes ? SIZE_MAX / c->unit_bytes + 1 : c->wrap};
        for (int k = 0; k < 2; k++) {
            if (ns[k] == 0) continue;
            char label[160];
            snprintf(label, sizeof label, "%s(%s = %zu)", c->fn, c->param, ns[k]);
            runs++;
            if (run_case(c, ns[k], label)) failed++;
        }
    }
    if (failed) fail_msg("%zu of %zu calls did not answer TFX_EINVAL cleanly (listed above)", failed, runs);
    assert_true(runs >= 2 * 30);
    (void)exempt;
}

/* The grid's integer square root for every n up to SIZE_MAX: the old loop never ended above
 * (2^32 - 1)^2 (r * r wrapped). */
static void test_ceil_sqrt_total(void **state)
{
    (void)state;
    current = "tfx__ceil_sqrt";
    signal(SIGALRM, on_signal);
    alarm(10);
    static const size_t small[][2] = {{0, 0}, {1, 1}, {2, 2}, {4, 2}, {5, 3}, {9, 3}, {10, 4}, {65536, 256}};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++)
        assert_int_equal(tfx__ceil_sqrt(small[i][0]), small[i][1]);
    const size_t big[] = {SIZE_MAX,
                          SIZE_MAX - 1,
                          SIZE_MAX / 2,
                          (size_t)1 << 63,
                          ((size_t)1 << 63) + 1,
                          (size_t)UINT32_MAX * UINT32_MAX,
                          (size_t)UINT32_MAX * UINT32_MAX + 1,
                          (size_t)UINT32_MAX * UINT32_MAX - 1,
                          (size_t)1 << 62,
                          999999999999999999u};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
        size_t n = big[i], r = tfx__ceil_sqrt(n);
        /* r is the smallest with r^2 >= n, checked in 128-bit arithmetic */
        assert_true((unsigned __int128)r * r >= n);
        assert_true(r == 0 || (unsigned __int128)(r - 1) * (r - 1) < n);
    }
    assert_int_equal(tfx__ceil_sqrt(SIZE_MAX), (size_t)1 << 32);
    /* and the grid refuses such counts instead of looping */
    int rows, cols;
    assert_int_equal(tfx__grid_shape("t", SIZE_MAX, 1, 1, 0, 0, &rows, &cols), TFX_EINVAL);
    alarm(0);
    current = NULL;
}

static int setup(void **state)
{
    (void)state;
    signal(SIGSEGV, on_signal);
    signal(SIGBUS, on_signal);
    signal(SIGALRM, on_signal);
    long page = sysconf(_SC_PAGESIZE);
    guard = mmap(NULL, (size_t)page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (guard == MAP_FAILED) return -1;
    if (tfx_model_new(&model, 4, 4, 1)) return -1;
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    c.name = "c1";
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    if (tfx_model_add_conv2d(model, &c, NULL) || tfx_model_add_flatten(model, NULL, NULL) ||
        tfx_model_add_dense(model, &d, NULL) || tfx_model_compile(model, NULL))
        return -1;
    float x1[IN_FLOATS];
    for (int i = 0; i < IN_FLOATS; i++) x1[i] = (float)i / IN_FLOATS;
    if (tfx_explain(model, x1, 1, NULL, &attribution)) return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tfx-counts-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    if (tfx_event_writer_new(&writer, tmpdir, NULL)) return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[512];
    if (writer) {
        snprintf(path, sizeof path, "%s", tfx_event_writer_path(writer));
        tfx_event_writer_free(writer);
        remove(path);
    }
    rmdir(tmpdir);
    tfx_attribution_free(attribution);
    tfx_model_free(model);
    munmap(guard, (size_t)sysconf(_SC_PAGESIZE));
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_refused),
        cmocka_unit_test(test_ceil_sqrt_total),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
