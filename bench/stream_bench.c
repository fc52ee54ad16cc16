/* tfx-stream-bench: one epoch of Fashion-MNIST training (60,000 images) read from disk through
 * a tfx_stream provider, or loaded in memory first, then the test-set accuracy, a checksum of the
 * trained weights and the peak resident set (getrusage ru_maxrss). Run each mode in its own
 * process:
 *
 *   tfx-stream-bench stream|memory [--dir D] [--shuffle K] [--batch B]
 *
 * With --shuffle 0 (default) both modes see the same order, so the weights (and the checksum)
 * must be bit-identical. Output: "name value unit" lines. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tfx/tfx.h"

#define CHECK(call)                                                        \
    do {                                                                   \
        if ((call) != TFX_OK) {                                            \
            fprintf(stderr, "%s: %s\n", #call, tfx_error_last()->message); \
            exit(1);                                                       \
        }                                                                  \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static tfx_model *make_model(void)
{
    tfx_model *m;
    CHECK(tfx_model_new(&m, 28, 28, 1));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 8;
    c.activation = TFX_ACTIVATION_RELU;
    CHECK(tfx_model_add_conv2d(m, &c, NULL));
    CHECK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 10;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    CHECK(tfx_model_add_dense(m, &d, NULL));
    CHECK(tfx_model_set_seed(m, 1));
    CHECK(tfx_model_compile(m, NULL));
    return m;
}

/* FNV-1a over the weights' bytes. */
static uint64_t checksum(tfx_model *m)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *l = tfx_model_layer(m, i);
        size_t ks, bs;
        CHECK(tfx_layer_weight_sizes(l, &ks, &bs));
        if (ks + bs == 0) continue;
        float *w = malloc((ks + bs) * sizeof(float));
        CHECK(tfx_layer_get_weights(l, w, w + ks));
        const unsigned char *b = (const unsigned char *)w;
        for (size_t k = 0; k < (ks + bs) * sizeof(float); k++) h = (h ^ b[k]) * 1099511628211u;
        free(w);
    }
    return h;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist";
    size_t shuffle = 0, batch = 64;
    int stream = argc > 1 && strcmp(argv[1], "stream") == 0;
    if (argc < 2 || (!stream && strcmp(argv[1], "memory") != 0)) {
        fprintf(stderr, "usage: %s stream|memory [--dir D] [--shuffle K] [--batch B]\n", argv[0]);
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--shuffle"))
            shuffle = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = (size_t)atol(argv[i + 1]);
    }
    char ti[512], tl[512], vi[512], vl[512];
    snprintf(ti, sizeof ti, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(tl, sizeof tl, "%s/train-labels-idx1-ubyte.gz", dir);
    snprintf(vi, sizeof vi, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(vl, sizeof vl, "%s/t10k-labels-idx1-ubyte.gz", dir);
    tfx_model *m = make_model();
    tfx_fit_options f = TFX_FIT_OPTIONS_INIT;
    f.batch_size = batch;
    f.epochs = 1;
    f.shuffle = 0;
    f.verbose = 0;
    double t0 = now_s(), loss, acc;
    if (stream) {
        tfx_stream_options o = TFX_STREAM_OPTIONS_INIT;
        o.shuffle_buffer = shuffle;
        o.seed = 1;
        tfx_stream *tr, *te;
        tfx_batch_provider ptr, pte;
        CHECK(tfx_stream_open_idx(&tr, ti, tl, &o));
        CHECK(tfx_stream_open_idx(&te, vi, vl, NULL));
        CHECK(tfx_stream_provider(tr, &ptr));
        CHECK(tfx_stream_provider(te, &pte));
        CHECK(tfx_model_fit_provider(m, &ptr, NULL, &f, NULL));
        printf("fit_seconds %.1f s\n", now_s() - t0);
        CHECK(tfx_model_evaluate_provider(m, &pte, &loss, &acc));
        tfx_stream_free(tr);
        tfx_stream_free(te);
    } else {
        tfx_dataset *tr, *te;
        CHECK(tfx_dataset_load_idx(&tr, ti, tl, NULL));
        CHECK(tfx_model_fit(m, tfx_dataset_images(tr), tfx_dataset_labels(tr), tfx_dataset_count(tr), &f, NULL));
        printf("fit_seconds %.1f s\n", now_s() - t0);
        tfx_dataset_free(tr);
        CHECK(tfx_dataset_load_idx(&te, vi, vl, NULL));
        CHECK(
            tfx_model_evaluate(m, tfx_dataset_images(te), tfx_dataset_labels(te), tfx_dataset_count(te), &loss, &acc));
        tfx_dataset_free(te);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("test_loss %.6f\ntest_accuracy %.4f\nweights_fnv1a %016llx\npeak_rss %.1f MB\n", loss, acc,
           (unsigned long long)checksum(m), (double)ru.ru_maxrss / 1024.0);
    tfx_model_free(m);
    return 0;
}
