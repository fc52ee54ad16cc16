/* tfx-bench: times the seed ConvNet (CIFAR-10 shape 32x32x3) on this machine through the
 * public API, the same work bench/torch_reference.py does in PyTorch (bench/compare.sh runs
 * both and prints the ratio table).
 *
 *   tfx-bench [mode] [--reps N] [--threads N]
 *   modes: all (default: train, infer, explain), train, infer, explain, engine, rss, floor, layers,
 *          depthwise, graph, graph-check, graph-layers (--net resnet18|mobilenetv2)
 *
 * train:   tfx_model_fit, Adam, batch 50, one epoch over 500 synthetic images (10 batches)
 * infer:   tfx_model_predict of 256 images with batch size 256
 * explain: tfx_explain of every method for 1 and 16 images (class 3; Grad-CAM and
 *          activations on "visualization_layer"; IG 50 steps; SmoothGrad 50 samples;
 *          occlusion patch 4), reported per image
 * engine:  forward (training mode) / backward with parameter gradients at batch 50
 * rss:     trains 10 batches and reports the peak resident set (getrusage ru_maxrss);
 *          run it alone in its own process
 * floor:   one image's input gradient (forward + backward, no parameter gradients) next to a
 *          bare read of the big Dense kernel on the same threads: the memory floor of one
 *          image's gradient methods on this machine
 * layers:  per layer, forward (inference) and backward (input gradient, no parameter
 *          gradients: what explainers run) of --count images (default 1), medians over --reps;
 *          each layer timed alone on the model's own buffers, the previous layers' work in cache
 *          as in a whole pass
 * depthwise: every DepthwiseConv2D shape of MobileNetV2 at 224x224x3 (3x3, pad 1, ReLU6, bias),
 *          one layer alone, forward (inference) and input-gradient backward (no parameter
 *          gradients, as explainers run it) at --batch B (default: 1 and 16), against the
 *          memory floor: the bytes the layer must move (input read, output written, kernel and
 *          bias read; backward: dy and y read, dx written, kernel read) over this machine's
 *          streaming bandwidth measured here on the same threads (a copy of 256 MB buffers, read +
 *          write counted, the faster of memcpy and a copy with streaming stores in each round)
 *          and over the copy bandwidth of a cache-sized working set when
 *          the layer's bytes fit there (L2, L3). Rounds interleave the shapes and the
 *          bandwidth sweeps; per round the median of a few calls (about 2 ms of work), then
 *          medians, min and max over --reps rounds (default 9).
 * graph:   torchvision's resnet18() / mobilenet_v2() (--net) at 224x224x3 built with the graph
 *          API, random weights: predict 1 and 16 images (batch size 16), vanilla gradients and
 *          Grad-CAM (at "layer4" / "features.18") of one image, class 3; medians over --reps
 *          (bench/compare_graph.sh runs it against PyTorch and ONNX Runtime)
 * graph-check: parameter counts against torchvision's; with --weights FILE (written by
 *          bench/torch_graph_reference.py weights) torch's weights and two images: the logits
 *          against torch's (exit status 1 beyond 1e-4 of the largest logit or another top-1)
 * graph-layers: `layers` for the graph networks (--count images), and the sums by layer kind
 * --threads N: tfx_model_set_threads(N) on the model (libtfx's own threads; run with
 *          OPENBLAS_NUM_THREADS=1); default 0, the BLAS's threads.
 * Output: one "name value unit" line per measurement, medians over --reps runs. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#  include <immintrin.h>
#endif

#include "model/model_internal.h"
#include "tfx/tfx.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

#define CHECK(call)                                                                     \
    do {                                                                                \
        if ((call) != TFX_OK) {                                                         \
            fprintf(stderr, "%s: %s\n", #call, tfx_error_last()->message);             \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

enum { H = 32, W = 32, C = 3, IN = H * W * C, CLASSES = 10, TRAIN_N = 500, TRAIN_BATCH = 50, INFER_N = 256 };

static int g_threads = 0; /* --threads */

static tfx_model *seed_model(void)
{
    tfx_model *m;
    CHECK(tfx_model_new(&m, H, W, C));
    CHECK(tfx_model_set_threads(m, g_threads));
    tfx_conv2d_options conv = TFX_CONV2D_OPTIONS_INIT;
    conv.activation = TFX_ACTIVATION_RELU;
    conv.filters = 32;
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 64;
    conv.name = "visualization_layer";
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    conv.filters = 128;
    conv.name = NULL;
    CHECK(tfx_model_add_conv2d(m, &conv, NULL));
    CHECK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options dense = TFX_DENSE_OPTIONS_INIT;
    dense.units = 128;
    dense.activation = TFX_ACTIVATION_RELU;
    CHECK(tfx_model_add_dense(m, &dense, NULL));
    dense.units = CLASSES;
    dense.activation = TFX_ACTIVATION_SOFTMAX;
    CHECK(tfx_model_add_dense(m, &dense, NULL));
    return m;
}

/* Deterministic synthetic images in [0, 1) and labels. */
static float *images(size_t n, uint64_t seed)
{
    float *x = malloc(sizeof(float) * IN * n);
    if (!x) exit(1);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < IN * n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
    }
    return x;
}

static void compile_and_data(tfx_model *m, float **x, int32_t **y)
{
    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT; /* sparse CE, Adam (Keras defaults), accuracy */
    CHECK(tfx_model_compile(m, &co));
    *x = images(TRAIN_N, 1);
    *y = malloc(sizeof(int32_t) * TRAIN_N);
    if (!*y) exit(1);
    for (size_t i = 0; i < TRAIN_N; i++) (*y)[i] = (int32_t)((i * 7) % CLASSES);
}

static double fit_once(tfx_model *m, const float *x, const int32_t *y, size_t n)
{
    tfx_fit_options fo = TFX_FIT_OPTIONS_INIT;
    fo.batch_size = TRAIN_BATCH;
    fo.epochs = 1;
    fo.verbose = 0;
    fo.shuffle = 1;
    double t0 = now_s();
    CHECK(tfx_model_fit(m, x, y, n, &fo, NULL));
    return now_s() - t0;
}

static void bench_train(int reps)
{
    tfx_model *m = seed_model();
    float *x;
    int32_t *y;
    compile_and_data(m, &x, &y);
    fit_once(m, x, y, 2 * TRAIN_BATCH); /* warm-up: buffers, BLAS threads */
    double *t = calloc((size_t)reps, sizeof *t);
    for (int r = 0; r < reps; r++) t[r] = fit_once(m, x, y, TRAIN_N);
    printf("train_b50_images_per_s %.1f images/s\n", TRAIN_N / median(t, reps));
    fflush(stdout);
    free(t);
    free(x);
    free(y);
    tfx_model_free(m);
}

static void bench_rss(void)
{
    tfx_model *m = seed_model();
    float *x;
    int32_t *y;
    compile_and_data(m, &x, &y);
    fit_once(m, x, y, TRAIN_N);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_training_mb %.0f MB\n", (double)ru.ru_maxrss / 1024.0);
    free(x);
    free(y);
    tfx_model_free(m);
}

static void bench_infer(int reps)
{
    tfx_model *m = seed_model();
    float *x = images(INFER_N, 2), *out = malloc(sizeof(float) * CLASSES * INFER_N);
    CHECK(tfx_model_set_batch_size(m, INFER_N));
    CHECK(tfx_model_predict(m, x, INFER_N, out));
    double *t = calloc((size_t)reps, sizeof *t);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        CHECK(tfx_model_predict(m, x, INFER_N, out));
        t[r] = now_s() - t0;
    }
    printf("inference_b256_images_per_s %.1f images/s\n", INFER_N / median(t, reps));
    fflush(stdout);
    free(t);
    free(x);
    free(out);
    tfx_model_free(m);
}

static const char *only;     /* --only: one explainer */
static int only_count;       /* --count: only 1 or only 16 images */
static size_t explain_batch; /* --explain-batch: rows per forward/backward (0: library default) */

static void bench_explain(int reps)
{
    static const struct {
        const char *name;
        int method;
    } methods[] = {
        {"activations", TFX_METHOD_ACTIVATIONS},
        {"vanilla_gradients", TFX_METHOD_VANILLA_GRADIENTS},
        {"gradients_inputs", TFX_METHOD_GRADIENTS_INPUTS},
        {"grad_cam", TFX_METHOD_GRAD_CAM},
        {"smooth_grad", TFX_METHOD_SMOOTH_GRAD},
        {"integrated_gradients", TFX_METHOD_INTEGRATED_GRADIENTS},
        {"occlusion", TFX_METHOD_OCCLUSION},
    };
    static const size_t counts[] = {1, 16};
    tfx_model *m = seed_model();
    float *x = images(16, 3);
    double *t = calloc((size_t)reps, sizeof *t);
    for (size_t k = 0; k < sizeof methods / sizeof methods[0]; k++) {
        if (only && strcmp(only, methods[k].name) != 0) continue;
        for (size_t c = 0; c < 2; c++) {
            if (only_count && (size_t)only_count != counts[c]) continue;
            tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT; /* IG 50 steps, SmoothGrad 50 x 0.15, patch 4 */
            o.method = methods[k].method;
            o.class_index = 3;
            o.batch_size = explain_batch;
            if (o.method == TFX_METHOD_ACTIVATIONS || o.method == TFX_METHOD_GRAD_CAM)
                o.layer_name = "visualization_layer";
            tfx_attribution *a;
            /* Warm-up (buffers, BLAS threads); the many-row methods already grew their buffers
             * to a full chunk with one image. */
            int many_rows = o.method == TFX_METHOD_SMOOTH_GRAD || o.method == TFX_METHOD_INTEGRATED_GRADIENTS ||
                            o.method == TFX_METHOD_OCCLUSION;
            if (c == 0 || !many_rows) {
                CHECK(tfx_explain(m, x, counts[c], &o, &a));
                tfx_attribution_free(a);
            }
            for (int r = 0; r < reps; r++) {
                double t0 = now_s();
                CHECK(tfx_explain(m, x, counts[c], &o, &a));
                t[r] = now_s() - t0;
                tfx_attribution_free(a);
            }
            printf("%s_%zu_ms_per_image %.2f ms\n", methods[k].name, counts[c],
                   1e3 * median(t, reps) / (double)counts[c]);
            fflush(stdout);
        }
    }
    free(t);
    free(x);
    tfx_model_free(m);
}

static void bench_engine(int reps)
{
    tfx_model *m = seed_model();
    const size_t batch = TRAIN_BATCH;
    float *x = images(batch, 4), seed[TRAIN_BATCH * CLASSES];
    for (size_t i = 0; i < batch * CLASSES; i++) seed[i] = (i % CLASSES == 3 ? 1.0f : 0.0f) / (float)batch;
    double *fw = calloc((size_t)reps, sizeof(double)), *bw = calloc((size_t)reps, sizeof(double));
    CHECK(tfx__model_forward(m, x, batch, 1 | TFX__FW_LEAN)); /* warm-up: buffers and BLAS threads */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        CHECK(tfx__model_forward(m, x, batch, 1 | TFX__FW_LEAN));
        double t1 = now_s();
        CHECK(tfx__model_backward(m, batch, m->n_layers - 1, seed, 0, 0, TFX__BW_PARAM_GRADS | TFX__BW_SKIP_ACTIVATION,
                                  NULL, NULL));
        fw[r] = t1 - t0;
        bw[r] = now_s() - t1;
    }
    double f = median(fw, reps), b = median(bw, reps);
    printf("engine_forward_train_b50_ms %.2f ms\n", 1e3 * f);
    printf("engine_backward_b50_ms %.2f ms\n", 1e3 * b);
    free(fw);
    free(bw);
    free(x);
    tfx_model_free(m);
}

/* A plain sum over a slice of the Dense kernel (16 partial sums, so it streams). */
typedef float bench_v16f __attribute__((vector_size(64), aligned(4)));
typedef struct read_slice {
    const float *p;
    size_t n;
    float sum;
} read_slice;

static void read_job(void *arg)
{
    read_slice *s = arg;
    bench_v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    size_t i = 0;
    for (; i + 64 <= s->n; i += 64) {
        a0 += *(const bench_v16f *)(s->p + i), a1 += *(const bench_v16f *)(s->p + i + 16);
        a2 += *(const bench_v16f *)(s->p + i + 32), a3 += *(const bench_v16f *)(s->p + i + 48);
    }
    const bench_v16f acc = (a0 + a1) + (a2 + a3);
    float t = 0.0f;
    for (int l = 0; l < 16; l++) t += acc[l];
    for (; i < s->n; i++) t += s->p[i];
    s->sum = t;
}

/* Per-layer times of one explainer pass (forward, then backward without parameter gradients). */
static void bench_layers(int reps, size_t n)
{
    tfx_model *m = seed_model();
    float *x = images(n, 6), *seed = calloc(n * CLASSES, sizeof(float));
    if (!seed) exit(1);
    for (size_t i = 0; i < n; i++) seed[i * CLASSES + 3] = 1.0f;
    const size_t L = m->n_layers;
    double *fw = calloc(L * (size_t)reps, sizeof(double)), *bw = calloc(L * (size_t)reps, sizeof(double));
    if (!fw || !bw) exit(1);
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    CHECK(tfx__model_forward(m, x, n, TFX__FW_LEAN)); /* buffers, worker threads */
    float *g;
    CHECK(tfx__model_backward(m, n, L - 1, seed, 0, 1, TFX__BW_SKIP_ACTIVATION, NULL, &g));
    size_t maxsz = IN;
    for (size_t i = 0; i < L; i++)
        if (tfx__shape_size(m->layers[i]->out) > maxsz) maxsz = tfx__shape_size(m->layers[i]->out);
    float *dy = malloc(n * maxsz * sizeof(float)), *dx = malloc(n * maxsz * sizeof(float));
    if (!dy || !dx) exit(1);
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    const tfx__layer_run run = tfx__model_run(m, 0);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < L; i++) {
            tfx_layer *l = m->layers[i];
            double t0 = now_s();
            if (!l->ops->alias_output) CHECK(l->ops->forward(l, &run, m->acts[i], m->acts[i + 1], n));
            fw[i * (size_t)reps + (size_t)r] = now_s() - t0;
        }
        memcpy(dy, seed, n * CLASSES * sizeof(float));
        for (size_t i = L; i-- > 0;) {
            tfx_layer *l = m->layers[i];
            double t0 = now_s();
            if (!l->ops->alias_output)
                CHECK(l->ops->backward(l, &run, m->acts[i], m->acts[i + 1], dy, dx, n,
                                       i == L - 1 ? TFX__BW_SKIP_ACTIVATION : 0, &plain));
            bw[i * (size_t)reps + (size_t)r] = now_s() - t0;
            if (!l->ops->alias_output) {
                float *t = dy;
                dy = dx;
                dx = t;
            }
        }
    }
    double tf = 0.0, tb = 0.0;
    for (size_t i = 0; i < L; i++) {
        const tfx_layer *l = m->layers[i];
        double f = median(fw + i * (size_t)reps, reps), b = median(bw + i * (size_t)reps, reps);
        tf += f, tb += b;
        printf("layer_%zu_%s_%zu_forward_ms %.3f ms\n", i, l->ops->type_name, n, 1e3 * f);
        printf("layer_%zu_%s_%zu_backward_ms %.3f ms\n", i, l->ops->type_name, n, 1e3 * b);
    }
    printf("layers_%zu_forward_ms %.3f ms\nlayers_%zu_backward_ms %.3f ms\n", n, 1e3 * tf, n, 1e3 * tb);
    free(fw), free(bw), free(dy), free(dx), free(x), free(seed);
    tfx_model_free(m);
}

static void bench_floor(int reps)
{
    tfx_model *m = seed_model();
    float *x = images(1, 5), seed[CLASSES] = {0};
    seed[3] = 1.0f;
    const tfx_layer *dense = NULL;
    for (size_t i = 0; i < m->n_layers; i++)
        if (m->layers[i]->ops->kind == TFX_LAYER_DENSE && (!dense || m->layers[i]->n_params > dense->n_params))
            dense = m->layers[i];
    const float *w = m->params + dense->param_offset;
    const size_t nw = dense->n_params;
    const int threads = g_threads > 0 ? g_threads : 1;
    double *rd = calloc((size_t)reps, sizeof(double)), *gr = calloc((size_t)reps, sizeof(double));
    float sink = 0.0f;
    CHECK(tfx__model_forward(m, x, 1, TFX__FW_LEAN)); /* warm-up: buffers, worker threads */
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        CHECK(tfx__model_forward(m, x, 1, TFX__FW_LEAN));
        float *g;
        CHECK(tfx__model_backward(m, 1, m->n_layers - 1, seed, 0, 1, TFX__BW_SKIP_ACTIVATION, NULL, &g));
        double t1 = now_s();
        /* the same threads (the model's pool), the kernel split into contiguous slices */
        tfx__threads_own(m->threads);
        tfx__pool_use(&m->pool);
        read_slice sl[TFX__MAX_THREADS];
        for (int t = 0; t < threads; t++)
            sl[t] = (read_slice){w + nw * (size_t)t / (size_t)threads,
                                 nw * (size_t)(t + 1) / (size_t)threads - nw * (size_t)t / (size_t)threads, 0.0f};
        tfx__parallel(threads, read_job, sl, sizeof *sl);
        gr[r] = t1 - t0;
        rd[r] = now_s() - t1;
        for (int t = 0; t < threads; t++) sink += sl[t].sum;
    }
    printf("floor_one_image_gradient_ms %.2f ms\n", 1e3 * median(gr, reps));
    printf("floor_dense_kernel_read_ms %.2f ms (%.1f MB on %d threads, checksum %g)\n", 1e3 * median(rd, reps),
           (double)nw * sizeof(float) / 1e6, threads, (double)sink);
    free(rd);
    free(gr);
    free(x);
    tfx_model_free(m);
}

/* ---- depthwise: MobileNetV2's DepthwiseConv2D layers against the memory floor ---- */

typedef struct dw_shape {
    int h, w, c, stride;
} dw_shape;

/* MobileNetV2 at 224x224x3: the input of each depthwise layer (expansion 6; the first block's
 * expansion is 1). */
static const dw_shape dw_shapes[] = {
    {112, 112, 32, 1}, {112, 112, 96, 2}, {56, 56, 144, 1}, {56, 56, 144, 2}, {28, 28, 192, 1},
    {28, 28, 192, 2},  {14, 14, 384, 1},  {14, 14, 576, 1}, {14, 14, 576, 2}, {7, 7, 960, 1},
};
enum { DW_SHAPES = sizeof dw_shapes / sizeof dw_shapes[0] };

static size_t g_batch; /* --batch: one batch size (0: 1 and 16) */

/* A copy of [src, src + n) to dst on one thread, `times` times: memcpy, or (stream) 16-byte
 * loads and streaming stores (no read of the destination lines before they are written). */
typedef struct copy_slice {
    const char *src;
    char *dst;
    size_t n;
    int times, stream;
} copy_slice;

static void copy_job(void *arg)
{
    const copy_slice *s = arg;
    for (int i = 0; i < s->times; i++) {
#if defined(__x86_64__)
        if (s->stream) {
            for (size_t j = 0; j + 64 <= s->n; j += 64) {
                const float *q = (const float *)(s->src + j);
                const __m128 a = _mm_load_ps(q), b = _mm_load_ps(q + 4), c = _mm_load_ps(q + 8), d = _mm_load_ps(q + 12);
                _mm_stream_ps((float *)(s->dst + j), a);
                _mm_stream_ps((float *)(s->dst + j + 16), b);
                _mm_stream_ps((float *)(s->dst + j + 32), c);
                _mm_stream_ps((float *)(s->dst + j + 48), d);
            }
            _mm_sfence();
            continue;
        }
#endif
        memcpy(s->dst, s->src, s->n);
        __asm__ volatile("" : : "r"(s->dst) : "memory"); /* every copy happens */
    }
}

/* Copy bandwidth (bytes read + bytes written per second) of `threads` threads each copying its
 * own part of src to dst (64-byte aligned), `times` times over. */
static double copy_gbs(char *src, char *dst, size_t bytes, int threads, int times, int stream)
{
    copy_slice sl[TFX__MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        const size_t a = bytes * (size_t)t / (size_t)threads / 64 * 64;
        const size_t b = bytes * (size_t)(t + 1) / (size_t)threads / 64 * 64;
        sl[t] = (copy_slice){src + a, dst + a, b - a, times, stream};
    }
    double t0 = now_s();
    tfx__parallel(threads, copy_job, sl, sizeof *sl);
    return 2.0 * (double)bytes * times / (now_s() - t0) / 1e9;
}

static float *dw_random(size_t n, uint64_t seed)
{
    float *p = tfx__alloc_floats(n, 1);
    if (!p) exit(1);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 7;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((s >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f; /* [-1, 1) */
    }
    return p;
}

typedef struct dw_case {
    tfx_model *m;
    tfx_layer *l;
    size_t n, fw_bytes, bw_bytes, in_sz, out_sz;
    int iters;        /* calls per timed sample (short layers: the mean of several) */
    double *fw, *bw;  /* per round, seconds per call */
} dw_case;

enum { DW_CACHE_NONE = 0, DW_CACHE_L2 = 1, DW_CACHE_L3 = 2 };

static const char *dw_level_name(int level) { return level == DW_CACHE_L2 ? "L2" : level == DW_CACHE_L3 ? "L3" : "-"; }

/* The cache a working set of `bytes` fits in on `threads` cores (3/4 of it: the rest is shared
 * with code, stacks and the other buffers). */
static int dw_level(size_t bytes, int threads, size_t l2, size_t l3)
{
    if (bytes <= l2 * (size_t)threads * 3 / 4) return DW_CACHE_L2;
    if (bytes <= l3 * 3 / 4) return DW_CACHE_L3;
    return DW_CACHE_NONE;
}

static double dw_min(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] < m ? v[i] : m;
    return m;
}

static double dw_max(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

static double dw_median(const double *v, int n)
{
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) exit(1);
    memcpy(c, v, (size_t)n * sizeof *c);
    double r = median(c, n);
    free(c);
    return r;
}

static void bench_depthwise(int reps)
{
    const int threads = g_threads > 0 ? g_threads : 1;
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    /* caches: L2 per core, L3 shared (sysconf; only decides which cache floor a batch-1 layer
     * is compared with: all of them fit 3/4 of a 32 MB L3) */
    long l2s = sysconf(_SC_LEVEL2_CACHE_SIZE), l3s = sysconf(_SC_LEVEL3_CACHE_SIZE);
    const size_t l2 = l2s > 0 ? (size_t)l2s : (size_t)1 << 20, l3 = l3s > 0 ? (size_t)l3s : (size_t)32 << 20;
    /* DRAM: 256 MB to 256 MB (far beyond any L3 here); L3: 8 MB to 8 MB; L2: 256 KB to 256 KB
     * per thread */
    const size_t dram_bytes = (size_t)256 << 20, l3_bytes = (size_t)8 << 20, l2_bytes = (size_t)256 << 10;
    char *src = aligned_alloc(64, dram_bytes), *dst = aligned_alloc(64, dram_bytes);
    if (!src || !dst) exit(1);
    memset(src, 1, dram_bytes);
    memset(dst, 2, dram_bytes);

    size_t batches[2] = {1, 16}, nb = 2;
    if (g_batch) batches[0] = g_batch, nb = 1;
    dw_case cases[2 * DW_SHAPES];
    size_t nc = 0, max_in = 0, max_out = 0;
    for (size_t bi = 0; bi < nb; bi++)
        for (size_t k = 0; k < DW_SHAPES; k++) {
            const dw_shape *s = &dw_shapes[k];
            dw_case *c = &cases[nc++];
            c->n = batches[bi];
            CHECK(tfx_model_new(&c->m, s->h, s->w, s->c));
            CHECK(tfx_model_set_threads(c->m, g_threads));
            tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
            o.stride_h = o.stride_w = s->stride;
            o.padding = TFX_PADDING_EXPLICIT; /* torchvision's pad 1 on every side */
            o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = 1;
            o.activation = TFX_ACTIVATION_RELU6;
            CHECK(tfx_model_add_depthwise_conv2d(c->m, &o, &c->l));
            float *kw = dw_random(9 * (size_t)s->c, k + 11), *kb = dw_random((size_t)s->c, k + 12);
            CHECK(tfx_layer_set_weights(c->l, kw, kb));
            tfx__free(kw);
            tfx__free(kb);
            c->in_sz = tfx__shape_size(c->l->in) * c->n;
            c->out_sz = tfx__shape_size(c->l->out) * c->n;
            const size_t wbytes = 10 * (size_t)s->c * sizeof(float);
            c->fw_bytes = (c->in_sz + c->out_sz) * sizeof(float) + wbytes;
            c->bw_bytes = (2 * c->out_sz + c->in_sz) * sizeof(float) + 9 * (size_t)s->c * sizeof(float);
            /* calls per round: about 2 ms of work at 20 GB/s, timed one by one (their median: a
             * call the scheduler interrupted on a shared machine does not count) */
            c->iters = (int)(4e7 / (double)c->fw_bytes);
            if (c->iters < 1) c->iters = 1;
            c->fw = calloc((size_t)reps, sizeof(double));
            c->bw = calloc((size_t)reps, sizeof(double));
            if (!c->fw || !c->bw) exit(1);
            if (c->in_sz > max_in) max_in = c->in_sz;
            if (c->out_sz > max_out) max_out = c->out_sz;
        }
    /* one set of buffers for all cases (each case's data is its buffers' first part) */
    float *x = dw_random(max_in, 1), *y = dw_random(max_out, 2), *dy0 = dw_random(max_out, 3),
          *dy = dw_random(max_out, 4), *dx = dw_random(max_in, 5);
    double *bw_dram = calloc((size_t)reps, sizeof(double)), *bw_nt = calloc((size_t)reps, sizeof(double)),
           *bw_l3 = calloc((size_t)reps, sizeof(double)), *bw_l2 = calloc((size_t)reps, sizeof(double));
    if (!bw_dram || !bw_nt || !bw_l3 || !bw_l2) exit(1);

    int max_iters = 1;
    for (size_t i = 0; i < nc; i++) max_iters = cases[i].iters > max_iters ? cases[i].iters : max_iters;
    double *calls = calloc((size_t)max_iters, sizeof(double));
    if (!calls) exit(1);
    tfx_model *pm = cases[0].m; /* its worker pool runs the bandwidth sweeps */
    for (int r = -1; r < reps; r++) { /* round -1: warm-up (pools, page faults) */
        tfx__threads_own(pm->threads);
        tfx__pool_use(&pm->pool);
        double d = copy_gbs(src, dst, dram_bytes, threads, 1, 0);
        double nt = copy_gbs(src, dst, dram_bytes, threads, 1, 1);
        double c3 = copy_gbs(src, dst, l3_bytes, threads, 20, 0);
        double c2 = copy_gbs(src, dst, l2_bytes * (size_t)threads, threads, 400, 0);
        if (r >= 0) bw_dram[r] = d > nt ? d : nt, bw_nt[r] = nt, bw_l3[r] = c3, bw_l2[r] = c2;
        for (size_t i = 0; i < nc; i++) {
            dw_case *c = &cases[i];
            tfx__threads_own(c->m->threads);
            tfx__pool_use(&c->m->pool);
            const tfx__layer_run run = tfx__model_run(c->m, 0);
            c->l->preact = NULL; /* inference: y only (ReLU6's backward reads y) */
            CHECK(c->l->ops->forward(c->l, &run, x, y, c->n)); /* this case's data in cache, as in a pass */
            for (int it = 0; it < c->iters; it++) {
                const double t0 = now_s();
                CHECK(c->l->ops->forward(c->l, &run, x, y, c->n));
                calls[it] = now_s() - t0;
            }
            if (r >= 0) c->fw[r] = median(calls, c->iters);
            memcpy(dy, dy0, c->out_sz * sizeof(float));
            CHECK(c->l->ops->backward(c->l, &run, x, y, dy, dx, c->n, 0, &plain));
            for (int it = 0; it < c->iters; it++) {
                const double t0 = now_s();
                CHECK(c->l->ops->backward(c->l, &run, x, y, dy, dx, c->n, 0, &plain));
                calls[it] = now_s() - t0;
            }
            if (r >= 0) c->bw[r] = median(calls, c->iters);
        }
    }
    const double dram = dw_median(bw_dram, reps), cl3 = dw_median(bw_l3, reps), cl2 = dw_median(bw_l2, reps);
    printf("# %d threads, %d rounds (shapes and bandwidth sweeps interleaved); per round the median call; medians "
           "[min, max] over the rounds\n",
           threads, reps);
    printf("depthwise_bandwidth_dram %.1f GB/s [%.1f, %.1f] (copy of %zu MB, read + write: the faster of memcpy "
           "and a streaming-store copy per round)\n",
           dram, dw_min(bw_dram, reps), dw_max(bw_dram, reps), dram_bytes >> 20);
    printf("depthwise_bandwidth_dram_streaming %.1f GB/s [%.1f, %.1f]\n", dw_median(bw_nt, reps), dw_min(bw_nt, reps),
           dw_max(bw_nt, reps));
    printf("depthwise_bandwidth_l3 %.1f GB/s [%.1f, %.1f] (memcpy %zu KB)\n", cl3, dw_min(bw_l3, reps),
           dw_max(bw_l3, reps), l3_bytes >> 10);
    printf("depthwise_bandwidth_l2 %.1f GB/s [%.1f, %.1f] (memcpy %zu KB per thread)\n", cl2, dw_min(bw_l2, reps),
           dw_max(bw_l2, reps), l2_bytes >> 10);
    printf("# %-18s %5s %4s %8s %8s %8s %7s %9s %7s | %5s %9s %7s\n", "shape", "batch", "dir", "ms", "min", "max",
           "GB/s", "dram_ms", "ratio", "cache", "cache_ms", "ratio");
    for (int dir = 0; dir < 2; dir++)
        for (size_t i = 0; i < nc; i++) {
            const dw_case *c = &cases[i];
            const double *t = dir ? c->bw : c->fw;
            const size_t bytes = dir ? c->bw_bytes : c->fw_bytes;
            const double med = dw_median(t, reps), floor_dram = (double)bytes / (dram * 1e9);
            const int lv = c->n == 1 ? dw_level(bytes, threads, l2, l3) : DW_CACHE_NONE;
            char shape[32];
            snprintf(shape, sizeof shape, "%dx%dx%d/s%d", c->l->in.h, c->l->in.w, c->l->in.c, c->l->cfg.stride_h);
            printf("depthwise %-18s %5zu %4s %8.3f %8.3f %8.3f %7.1f %9.3f %7.2f", shape, c->n, dir ? "bwd" : "fwd",
                   1e3 * med, 1e3 * dw_min(t, reps), 1e3 * dw_max(t, reps), (double)bytes / med / 1e9, 1e3 * floor_dram,
                   med / floor_dram);
            if (lv) {
                const double floor_c = (double)bytes / ((lv == DW_CACHE_L2 ? cl2 : cl3) * 1e9);
                printf(" | %5s %9.3f %7.2f\n", dw_level_name(lv), 1e3 * floor_c, med / floor_c);
            } else {
                printf(" | %5s %9s %7s\n", "-", "-", "-");
            }
        }
    fflush(stdout);
    for (size_t i = 0; i < nc; i++) {
        tfx_model_free(cases[i].m);
        free(cases[i].fw);
        free(cases[i].bw);
    }
    tfx__free(x), tfx__free(y), tfx__free(dy0), tfx__free(dy), tfx__free(dx);
    free(bw_dram), free(bw_nt), free(bw_l3), free(bw_l2), free(src), free(dst), free(calls);
}

/* ---- graph networks (issue 17): torchvision 0.14's resnet18() and mobilenet_v2() at
 * 224x224x3, built with the public graph API, layer by layer as torchvision's modules (names
 * are the module paths; bench/torch_graph_reference.py writes weights in this order). ---- */
enum { GH = 224, GW = 224, GC = 3, GIN = GH * GW * GC, GCLASSES = 1000 };

static const char *g_net = "resnet18"; /* --net */
static const char *g_weights;          /* --weights (graph-check) */

static tfx_layer *g_conv(tfx_model *m, const char *name, int filters, int k, int stride, int pad)
{
    tfx_conv2d_options o = TFX_CONV2D_OPTIONS_INIT;
    o.filters = filters;
    o.kernel_h = o.kernel_w = k;
    o.stride_h = o.stride_w = stride;
    o.padding = TFX_PADDING_EXPLICIT;
    o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = pad;
    o.use_bias = 0; /* torchvision: convolutions before a BatchNorm have no bias */
    o.name = name;
    tfx_layer *l;
    CHECK(tfx_model_add_conv2d(m, &o, &l));
    return l;
}

static tfx_layer *g_depthwise(tfx_model *m, const char *name, int stride)
{
    tfx_depthwise_conv2d_options o = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    o.stride_h = o.stride_w = stride;
    o.padding = TFX_PADDING_EXPLICIT;
    o.pad_top = o.pad_bottom = o.pad_left = o.pad_right = 1;
    o.use_bias = 0;
    o.name = name;
    tfx_layer *l;
    CHECK(tfx_model_add_depthwise_conv2d(m, &o, &l));
    return l;
}

static tfx_layer *g_bn(tfx_model *m, const char *name)
{
    tfx_batch_norm_options o = TFX_BATCH_NORM_OPTIONS_INIT;
    o.momentum = 0.9f;   /* PyTorch's momentum 0.1 */
    o.epsilon = 1e-5f;   /* PyTorch's eps */
    o.name = name;
    tfx_layer *l;
    CHECK(tfx_model_add_batch_normalization(m, &o, &l));
    return l;
}

static tfx_layer *g_act(tfx_model *m, int act, const char *name)
{
    tfx_layer *l;
    CHECK(tfx_model_add_activation(m, act, 0.0f, name, &l));
    return l;
}

static tfx_layer *g_add(tfx_model *m, tfx_layer *a, tfx_layer *b, const char *name)
{
    tfx_layer *in[2] = {a, b}, *l;
    CHECK(tfx_model_add_add(m, in, 2, name, &l));
    return l;
}

static void g_head(tfx_model *m, const char *pool, const char *fc)
{
    CHECK(tfx_model_add_global_average_pooling2d(m, pool, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = GCLASSES;
    d.name = fc;
    CHECK(tfx_model_add_dense(m, &d, NULL));
}

/* resnet18(): 7x7/2 stem (pads 3), BN, ReLU, 3x3/2 max pool (pads 1), four stages of two
 * basic blocks (64, 128, 256, 512; the first block of stages 2-4 strides 2 with a 1x1/2
 * projection + BN on the shortcut), global average pooling, fc 1000. Grad-CAM: "layer4". */
static tfx_model *resnet18(void)
{
    tfx_model *m;
    char n[64];
    CHECK(tfx_model_new(&m, GH, GW, GC));
    CHECK(tfx_model_set_threads(m, g_threads));
    g_conv(m, "conv1", 64, 7, 2, 3);
    g_bn(m, "bn1");
    g_act(m, TFX_ACTIVATION_RELU, "relu");
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 3;
    p.stride_h = p.stride_w = 2;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    p.name = "maxpool";
    tfx_layer *in;
    CHECK(tfx_model_add_max_pooling2d(m, &p, &in));
    int in_c = 64;
    for (int s = 1; s <= 4; s++) {
        const int f = 64 << (s - 1);
        for (int b = 0; b < 2; b++) {
            const int stride = s > 1 && b == 0 ? 2 : 1;
#define NAME(suffix) (snprintf(n, sizeof n, "layer%d.%d.%s", s, b, suffix), n)
            CHECK(tfx_model_set_next_input(m, in));
            g_conv(m, NAME("conv1"), f, 3, stride, 1);
            g_bn(m, NAME("bn1"));
            g_act(m, TFX_ACTIVATION_RELU, NAME("relu1"));
            g_conv(m, NAME("conv2"), f, 3, 1, 1);
            tfx_layer *y = g_bn(m, NAME("bn2")), *shortcut = in;
            if (stride != 1 || in_c != f) {
                CHECK(tfx_model_set_next_input(m, in));
                g_conv(m, NAME("downsample.0"), f, 1, stride, 0);
                shortcut = g_bn(m, NAME("downsample.1"));
            }
            g_add(m, y, shortcut, NAME("add"));
            in = g_act(m, TFX_ACTIVATION_RELU, s == 4 && b == 1 ? "layer4" : NAME("relu2"));
#undef NAME
            in_c = f;
        }
    }
    g_head(m, "avgpool", "fc");
    return m;
}

/* mobilenet_v2() (width 1.0): 3x3/2 stem 32 + BN + ReLU6; 17 inverted residual blocks
 * (expansion t: 1x1 conv + BN + ReLU6 when t > 1, 3x3 depthwise + BN + ReLU6, linear 1x1
 * projection + BN, Add when the stride is 1 and the channels stay); 1x1 conv 1280 + BN + ReLU6
 * ("features.18", Grad-CAM's layer); global average pooling, Dropout 0.2, Linear 1000. */
static tfx_model *mobilenetv2(void)
{
    static const int setting[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                                      {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};
    tfx_model *m;
    char n[64];
    CHECK(tfx_model_new(&m, GH, GW, GC));
    CHECK(tfx_model_set_threads(m, g_threads));
    g_conv(m, "features.0.0", 32, 3, 2, 1);
    g_bn(m, "features.0.1");
    tfx_layer *in = g_act(m, TFX_ACTIVATION_RELU6, "features.0.2");
    int in_c = 32, idx = 1;
    for (int k = 0; k < 7; k++) {
        for (int i = 0; i < setting[k][2]; i++, idx++) {
            const int t = setting[k][0], c = setting[k][1], stride = i == 0 ? setting[k][3] : 1;
            int j = 0;
#define NAME(a, b) (b >= 0 ? snprintf(n, sizeof n, "features.%d.conv.%d.%d", idx, a, b) \
                           : snprintf(n, sizeof n, "features.%d.conv.%d", idx, a), n)
            if (t != 1) {
                g_conv(m, NAME(0, 0), in_c * t, 1, 1, 0);
                g_bn(m, NAME(0, 1));
                g_act(m, TFX_ACTIVATION_RELU6, NAME(0, 2));
                j = 1;
            }
            g_depthwise(m, NAME(j, 0), stride);
            g_bn(m, NAME(j, 1));
            g_act(m, TFX_ACTIVATION_RELU6, NAME(j, 2));
            g_conv(m, NAME(j + 1, -1), c, 1, 1, 0);
            tfx_layer *y = g_bn(m, NAME(j + 2, -1));
#undef NAME
            if (stride == 1 && in_c == c) {
                snprintf(n, sizeof n, "features.%d.add", idx);
                y = g_add(m, y, in, n);
            }
            in = y;
            in_c = c;
        }
    }
    g_conv(m, "features.18.0", 1280, 1, 1, 0);
    g_bn(m, "features.18.1");
    g_act(m, TFX_ACTIVATION_RELU6, "features.18");
    CHECK(tfx_model_add_global_average_pooling2d(m, "avgpool", NULL));
    CHECK(tfx_model_add_dropout(m, 0.2f, "classifier.0", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = GCLASSES;
    d.name = "classifier.1";
    CHECK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

static tfx_model *graph_model(const char **cam_layer)
{
    if (strcmp(g_net, "resnet18") == 0) {
        if (cam_layer) *cam_layer = "layer4";
        return resnet18();
    }
    if (strcmp(g_net, "mobilenetv2") == 0) {
        if (cam_layer) *cam_layer = "features.18";
        return mobilenetv2();
    }
    fprintf(stderr, "tfx-bench: unknown --net '%s' (resnet18, mobilenetv2)\n", g_net);
    exit(2);
}

static float *graph_images(size_t n)
{
    float *x = malloc(sizeof(float) * GIN * n);
    if (!x) exit(1);
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < GIN * n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((s >> 40) & 0xFFFFFF) / 16777216.0f;
    }
    return x;
}

/* The work of torch_graph_reference.py bench: predict 1 and 16 images (batch size 16), vanilla
 * gradients and Grad-CAM (at the last block) of one image, class 3; medians over reps. */
static void bench_graph(int reps)
{
    const char *cam_layer;
    tfx_model *m = graph_model(&cam_layer);
    float *x = graph_images(16), *out = malloc(sizeof(float) * GCLASSES * 16);
    double *t = calloc((size_t)reps, sizeof *t);
    if (!out || !t) exit(1);
    CHECK(tfx_model_set_batch_size(m, 16));
    for (int k = 0; k < 4; k++) {
        static const char *names[] = {"infer_b1", "infer_b16", "vanilla_1", "grad_cam_1"};
        tfx_explain_options o = TFX_EXPLAIN_OPTIONS_INIT;
        o.class_index = 3;
        o.method = k == 2 ? TFX_METHOD_VANILLA_GRADIENTS : TFX_METHOD_GRAD_CAM;
        o.layer_name = k == 3 ? cam_layer : NULL;
        for (int r = -1; r < reps; r++) { /* r = -1: warm-up (buffers, worker threads) */
            double t0 = now_s();
            if (k < 2) {
                CHECK(tfx_model_predict(m, x, k == 0 ? 1 : 16, out));
            } else {
                tfx_attribution *a;
                CHECK(tfx_explain(m, x, 1, &o, &a));
                tfx_attribution_free(a);
            }
            if (r >= 0) t[r] = now_s() - t0;
        }
        printf("%s_%s %.2f ms\n", g_net, names[k], 1e3 * median(t, reps));
        fflush(stdout);
    }
    free(t), free(x), free(out);
    tfx_model_free(m);
}

/* Loads the weights torch_graph_reference.py wrote (--weights), predicts its two images and
 * compares with torch's logits; prints the parameter counts next to torchvision's. */
static int bench_graph_check(void)
{
    tfx_model *m = graph_model(NULL);
    size_t total = tfx_model_param_count(m), trainable = tfx_model_trainable_param_count(m);
    const size_t torch_params = strcmp(g_net, "resnet18") == 0 ? 11689512u : 3504872u;
    printf("%s: %zu parameters (%zu trainable; torchvision %zu; %zu BatchNorm moving statistics), %zu layers\n",
           g_net, total, trainable, torch_params, total - trainable, tfx_model_layer_count(m));
    int bad = trainable != torch_params;
    if (!g_weights) {
        tfx_model_free(m);
        return bad;
    }
    FILE *f = fopen(g_weights, "rb");
    char magic[4];
    uint64_t count;
    if (!f || fread(magic, 1, 4, f) != 4 || memcmp(magic, "TFXW", 4) != 0 || fread(&count, 8, 1, f) != 1) {
        fprintf(stderr, "tfx-bench: cannot read %s\n", g_weights);
        exit(1);
    }
    float *w = malloc(sizeof(float) * count);
    if (!w || fread(w, sizeof(float), count, f) != count) exit(1);
    fclose(f);
    size_t at = 0;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks, bs;
        CHECK(tfx_layer_weight_sizes(l, &ks, &bs));
        if (ks + bs == 0) continue;
        if (at + ks + bs > count) break;
        CHECK(tfx_layer_set_weights(l, w + at, bs ? w + at + ks : NULL));
        at += ks + bs;
    }
    if (at + 2 * GIN + 2 * GCLASSES != count) {
        fprintf(stderr, "tfx-bench: %s holds %llu floats, the model's weights and the test data %zu\n", g_weights,
                (unsigned long long)count, at + 2 * GIN + 2 * GCLASSES);
        exit(1);
    }
    const float *x = w + at, *ref = x + 2 * GIN;
    float out[2 * GCLASSES];
    CHECK(tfx_model_predict(m, x, 2, out));
    double maxref = 0.0, maxdiff = 0.0;
    int agree = 1;
    for (int s = 0; s < 2; s++) {
        int a = 0, b = 0;
        for (int k = 0; k < GCLASSES; k++) {
            const double r = ref[s * GCLASSES + k], o = out[s * GCLASSES + k];
            if (fabs(r) > maxref) maxref = fabs(r);
            if (fabs(r - o) > maxdiff) maxdiff = fabs(r - o);
            if (o > out[s * GCLASSES + a]) a = k;
            if (r > ref[s * GCLASSES + b]) b = k;
        }
        agree &= a == b;
    }
    printf("%s: logits of 2 images against torch: max |diff| %.3g, max |logit| %.3g, relative %.3g; top-1 %s\n",
           g_net, maxdiff, maxref, maxdiff / maxref, agree ? "equal" : "DIFFERENT");
    bad |= !(maxdiff <= 1e-4 * maxref) || !agree;
    free(w);
    tfx_model_free(m);
    return bad;
}

/* Per-layer times of the graph networks (like `layers`): each layer's forward (inference) and
 * backward (input gradients only, as explainers run it) timed alone on the model's buffers
 * after a full forward; the backward gets a stand-in output gradient (its time does not depend
 * on the values), multi-input layers one gradient buffer per input. Then the sums by kind. */
static void bench_graph_layers(int reps, size_t n)
{
    tfx_model *m = graph_model(NULL);
    float *x = graph_images(n);
    const size_t L = m->n_layers;
    double *fw = calloc(L * (size_t)reps, sizeof(double)), *bw = calloc(L * (size_t)reps, sizeof(double));
    if (!fw || !bw) exit(1);
    static const tfx__rule plain = {TFX__RULE_GRADIENT, 0, 0, 0, 0, 0};
    CHECK(tfx__model_forward(m, x, n, TFX__FW_LEAN)); /* buffers, worker threads, transformed kernels */
    size_t maxsz = GIN;
    for (size_t i = 0; i < L; i++)
        if (tfx__shape_size(m->layers[i]->out) > maxsz) maxsz = tfx__shape_size(m->layers[i]->out);
    float *dy = malloc(n * maxsz * sizeof(float)), *dxs[4];
    if (!dy) exit(1);
    for (size_t i = 0; i < n * maxsz; i++) dy[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (int j = 0; j < 4; j++)
        if (!(dxs[j] = malloc(n * maxsz * sizeof(float)))) exit(1);
    tfx__threads_own(m->threads);
    tfx__pool_use(&m->pool);
    const tfx__layer_run run = tfx__model_run(m, 0);
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < L; i++) {
            tfx_layer *l = m->layers[i];
            const float *xs[4];
            for (size_t j = 0; j < l->n_inputs && j < 4; j++) xs[j] = m->acts[l->inputs[j]];
            double t0 = now_s();
            if (l->ops->traits & TFX__TRAIT_MULTI_INPUT)
                CHECK(l->ops->forward_n(l, &run, xs, m->acts[i + 1], n));
            else if (!l->ops->alias_output)
                CHECK(l->ops->forward(l, &run, xs[0], m->acts[i + 1], n));
            fw[i * (size_t)reps + (size_t)r] = now_s() - t0;
        }
        for (size_t i = L; i-- > 0;) {
            tfx_layer *l = m->layers[i];
            const float *xs[4];
            for (size_t j = 0; j < l->n_inputs && j < 4; j++) xs[j] = m->acts[l->inputs[j]];
            double t0 = now_s();
            if (l->ops->traits & TFX__TRAIT_MULTI_INPUT)
                CHECK(l->ops->backward_n(l, &run, xs, m->acts[i + 1], dy, dxs, n, 0, &plain));
            else if (!l->ops->alias_output)
                CHECK(l->ops->backward(l, &run, xs[0], m->acts[i + 1], dy, dxs[0], n,
                                       i == L - 1 ? TFX__BW_SKIP_ACTIVATION : 0, &plain));
            bw[i * (size_t)reps + (size_t)r] = now_s() - t0;
            /* a layer may overwrite dy (Conv2D applies its activation's gradient in place) */
            for (size_t k = 0; k < n * tfx__shape_size(l->out); k++) dy[k] = (float)((k * 7919) % 1000) * 1e-3f - 0.5f;
        }
    }
    struct kind_sum {
        const char *kind;
        double f, b;
    } sums[32];
    int ns = 0;
    double tf = 0.0, tb = 0.0;
    for (size_t i = 0; i < L; i++) {
        const tfx_layer *l = m->layers[i];
        double f = median(fw + i * (size_t)reps, reps), b = median(bw + i * (size_t)reps, reps);
        tf += f, tb += b;
        printf("layer_%zu_%s_%s_%dx%dx%d_forward_ms %.3f ms\n", i, l->name, l->ops->type_name, l->out.h, l->out.w,
               l->out.c, 1e3 * f);
        printf("layer_%zu_%s_%s_%dx%dx%d_backward_ms %.3f ms\n", i, l->name, l->ops->type_name, l->out.h, l->out.w,
               l->out.c, 1e3 * b);
        int k = 0;
        while (k < ns && strcmp(sums[k].kind, l->ops->type_name) != 0) k++;
        if (k == ns && ns < 32) sums[ns++] = (struct kind_sum){l->ops->type_name, 0.0, 0.0};
        if (k < 32) sums[k].f += f, sums[k].b += b;
    }
    for (int k = 0; k < ns; k++)
        printf("kind_%s_%zu_forward_ms %.3f ms\nkind_%s_%zu_backward_ms %.3f ms\n", sums[k].kind, n, 1e3 * sums[k].f,
               sums[k].kind, n, 1e3 * sums[k].b);
    printf("layers_%zu_forward_ms %.3f ms\nlayers_%zu_backward_ms %.3f ms\n", n, 1e3 * tf, n, 1e3 * tb);
    free(fw), free(bw), free(dy), free(x);
    for (int j = 0; j < 4; j++) free(dxs[j]);
    tfx_model_free(m);
}

int main(int argc, char **argv)
{
    const char *mode = "all";
    int reps = 5, reps_set = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]), reps_set = 1;
        else if (strcmp(argv[i], "--explain-batch") == 0 && i + 1 < argc)
            explain_batch = (size_t)atol(argv[++i]);
        else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
            only_count = atoi(argv[++i]);
        else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc)
            only = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            g_threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--net") == 0 && i + 1 < argc)
            g_net = argv[++i];
        else if (strcmp(argv[i], "--weights") == 0 && i + 1 < argc)
            g_weights = argv[++i];
        else if (strcmp(argv[i], "--batch") == 0 && i + 1 < argc)
            g_batch = (size_t)atol(argv[++i]);
        else if (argv[i][0] != '-')
            mode = argv[i];
        else {
            fprintf(stderr,
                    "usage: %s [all|train|infer|explain|engine|rss|floor|layers|depthwise|graph|graph-check|\n"
                    "       graph-layers] [--reps N] [--explain-batch N] [--only METHOD] [--count 1|16]\n"
                    "       [--threads N] [--batch B] [--net resnet18|mobilenetv2] [--weights FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;
    int all = strcmp(mode, "all") == 0, done = 0;
    if (all || strcmp(mode, "train") == 0) bench_train(reps), done = 1;
    if (all || strcmp(mode, "infer") == 0) bench_infer(reps), done = 1;
    if (all || strcmp(mode, "explain") == 0) bench_explain(reps), done = 1;
    if (strcmp(mode, "engine") == 0) bench_engine(reps), done = 1;
    if (strcmp(mode, "rss") == 0) bench_rss(), done = 1;
    if (strcmp(mode, "floor") == 0) bench_floor(reps), done = 1;
    if (strcmp(mode, "depthwise") == 0) bench_depthwise(reps_set ? reps : 9), done = 1;
    if (strcmp(mode, "layers") == 0) bench_layers(reps, only_count > 0 ? (size_t)only_count : 1), done = 1;
    if (strcmp(mode, "graph") == 0) bench_graph(reps), done = 1;
    if (strcmp(mode, "graph-check") == 0) return bench_graph_check();
    if (strcmp(mode, "graph-layers") == 0)
        bench_graph_layers(reps, only_count > 0 ? (size_t)only_count : 1), done = 1;
    if (!done) {
        fprintf(stderr, "tfx-bench: unknown mode '%s'\n", mode);
        return 2;
    }
    return 0;
}
