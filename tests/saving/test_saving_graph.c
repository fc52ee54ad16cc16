/* Model files of graph models (issue 17): format version 2 with a graph section (type 4) holding
 * each layer's input tensors. Round trips of four graphs (two branches into Add, then
 * Concatenate; the model input read by a merge layer and a tensor read twice; squeeze-and-
 * excitation with Multiply): bit-identical predictions, names and inputs, the same bytes again;
 * chain files unchanged byte for byte (0.1's files in the fuzz corpus), a version 2 file
 * assembled by hand from docs/file-format.md, hostile graph sections (cycles, forward
 * references, dangling inputs, bad counts, truncation, kinds with the wrong number of inputs,
 * unreachable layers), every byte of the section edited, allocation failures.
 * TFX_GRAPH_SEED_OUT=<dir> writes the fuzz seeds graph*.tfx into <dir>. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "model/model_internal.h"
#include "saving/saving_internal.h"
#include "testing.h"
#include "tfx/tfx.h"

#define OK(call)                                                                              \
    do {                                                                                      \
        int rc__ = (call);                                                                    \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message); \
    } while (0)

static int under_valgrind(void) { return getenv("RUNNING_VALGRIND") != NULL; }

static void fill(float *x, size_t n, uint32_t seed, float lo, float hi)
{
    uint32_t s = seed * 2654435761u + 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = lo + (hi - lo) * (float)((s >> 8) / 16777216.0);
    }
}

static uint32_t rd32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static uint64_t rd64(const uint8_t *b) { return (uint64_t)rd32(b) | (uint64_t)rd32(b + 4) << 32; }
static void wr32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *b, uint64_t v)
{
    wr32(b, (uint32_t)v);
    wr32(b + 4, (uint32_t)(v >> 32));
}
static void wrf(uint8_t *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    wr32(b, u);
}

static void fix_crc(uint8_t *b, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, b, (uInt)(n - 4));
    wr32(b + n - 4, (uint32_t)c);
}

static uint8_t *save_mem_opts(const tfx_model *m, const tfx_save_options *o, size_t *n)
{
    OK(tfx_model_save_to_memory(m, o, NULL, 0, n));
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    size_t n2 = 0;
    OK(tfx_model_save_to_memory(m, o, b, *n, &n2));
    assert_int_equal(n2, *n);
    return b;
}
static uint8_t *save_mem(const tfx_model *m, size_t *n) { return save_mem_opts(m, NULL, n); }

static uint8_t *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(sz ? (size_t)sz : 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Every trainable weight and BN statistic away from its initial value. */
static void randomise(tfx_model *m, uint32_t seed)
{
    fill(m->params, m->n_params, seed, -0.5f, 0.5f);
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->kind != TFX_LAYER_BATCH_NORMALIZATION) continue;
        size_t C = l->n_state / 2;
        fill(l->state, C, seed + 1 + (uint32_t)i, -0.3f, 0.3f);
        fill(l->state + C, C, seed + 50 + (uint32_t)i, 0.2f, 2.0f);
    }
    tfx__model_weights_changed(m);
}

static tfx_conv2d_options conv(int filters, int k, int activation, const char *name)
{
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = filters;
    c.kernel_h = c.kernel_w = k;
    c.padding = TFX_PADDING_SAME;
    c.activation = activation;
    c.name = name;
    return c;
}

/* Conv -> two branches (conv, BN, conv | 1x1 conv) -> Add [-> Concatenate with the stem] -> GAP
 * -> Dense. Layers and their input tensors, without / with the Concatenate:
 *   0 stem [0]  1 a1 [1]  2 bn [2]  3 a2 [3]  4 b1 [1]  5 add [4, 5]  6 gap [6]  7 out [7]
 *   0 stem [0]  1 a1 [1]  2 bn [2]  3 a2 [3]  4 b1 [1]  5 add [4, 5]  6 cat [6, 1]  7 gap [7]
 *   8 out [8] */
static tfx_model *branchy_model(int with_cat)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 8, 8, 3));
    tfx_layer *stem, *a2, *b1, *add;
    tfx_conv2d_options c = conv(4, 3, TFX_ACTIVATION_RELU, "stem");
    OK(tfx_model_add_conv2d(m, &c, &stem));
    c = conv(4, 3, TFX_ACTIVATION_RELU, "a1");
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_batch_norm_options bn = TFX_BATCH_NORM_OPTIONS_INIT;
    bn.name = "bn";
    OK(tfx_model_add_batch_normalization(m, &bn, NULL));
    c = conv(4, 3, TFX_ACTIVATION_LINEAR, "a2");
    OK(tfx_model_add_conv2d(m, &c, &a2));
    OK(tfx_model_set_next_input(m, stem));
    c = conv(4, 1, TFX_ACTIVATION_LINEAR, "b1");
    OK(tfx_model_add_conv2d(m, &c, &b1));
    tfx_layer *sum_in[2] = {a2, b1};
    OK(tfx_model_add_add(m, sum_in, 2, "add", &add));
    if (with_cat) {
        tfx_layer *cat_in[2] = {add, stem};
        OK(tfx_model_add_concatenate(m, cat_in, 2, "cat", NULL));
    }
    OK(tfx_model_add_global_average_pooling2d(m, "gap", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "out";
    OK(tfx_model_add_dense(m, &d, NULL));
    randomise(m, 17);
    return m;
}

/* The model input read by a merge layer, and one tensor read twice by one layer:
 *   0 c [0]  1 res [1, 0]  2 twice [2, 2]  3 flat [3]  4 logits [4] */
static tfx_model *input_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 5, 4, 2));
    tfx_layer *c_l, *res;
    tfx_conv2d_options c = conv(2, 3, TFX_ACTIVATION_TANH, "c");
    OK(tfx_model_add_conv2d(m, &c, &c_l));
    tfx_layer *res_in[2] = {c_l, NULL};
    OK(tfx_model_add_add(m, res_in, 2, "res", &res));
    tfx_layer *twice_in[2] = {res, res};
    OK(tfx_model_add_add(m, twice_in, 2, "twice", NULL));
    OK(tfx_model_add_flatten(m, "flat", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.name = "logits";
    OK(tfx_model_add_dense(m, &d, NULL));
    randomise(m, 29);
    return m;
}

/* Squeeze-and-excitation with a flat gate, and a Concatenate that reads the model input:
 *   0 c [0]  1 squeeze [1]  2 gate [2]  3 excite [1, 3]  4 with_input [4, 0]  5 flat [5]
 *   6 logits [6] */
static tfx_model *se_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 6, 6, 2));
    tfx_layer *c_l, *gate, *ex;
    tfx_conv2d_options c = conv(4, 3, TFX_ACTIVATION_RELU, "c");
    OK(tfx_model_add_conv2d(m, &c, &c_l));
    OK(tfx_model_add_global_average_pooling2d(m, "squeeze", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 4;
    d.activation = TFX_ACTIVATION_SIGMOID;
    d.name = "gate";
    OK(tfx_model_add_dense(m, &d, &gate));
    tfx_layer *mul_in[2] = {c_l, gate};
    OK(tfx_model_add_multiply(m, mul_in, 2, "excite", &ex));
    tfx_layer *cat_in[2] = {ex, NULL};
    OK(tfx_model_add_concatenate(m, cat_in, 2, "with_input", NULL));
    OK(tfx_model_add_flatten(m, "flat", NULL));
    d.units = 2;
    d.activation = TFX_ACTIVATION_LINEAR;
    d.name = "logits";
    OK(tfx_model_add_dense(m, &d, NULL));
    randomise(m, 23);
    return m;
}

static void assert_same_predictions(tfx_model *a, tfx_model *b, size_t n)
{
    int in[3], out[3];
    OK(tfx_model_input_shape(a, in));
    OK(tfx_model_output_shape(a, out));
    size_t isz = (size_t)in[0] * in[1] * in[2], osz = (size_t)out[0] * out[1] * out[2];
    float *x = malloc(n * isz * sizeof(float)), *ya = malloc(n * osz * sizeof(float)),
          *yb = malloc(n * osz * sizeof(float));
    assert_true(x && ya && yb);
    fill(x, n * isz, 3, -1.0f, 1.0f);
    OK(tfx_model_predict(a, x, n, ya));
    OK(tfx_model_predict(b, x, n, yb));
    assert_memory_equal(ya, yb, n * osz * sizeof(float));
    free(x);
    free(ya);
    free(yb);
}

/* Same layers, names, kinds, configurations, weights and inputs (by name, through the public
 * tfx_layer_inputs). */
static void assert_same_graph(tfx_model *a, tfx_model *b)
{
    assert_int_equal(tfx_model_layer_count(a), tfx_model_layer_count(b));
    assert_int_equal(tfx_model_param_count(a), tfx_model_param_count(b));
    for (size_t i = 0; i < tfx_model_layer_count(a); i++) {
        tfx_layer *la = tfx_model_layer(a, i), *lb = tfx_model_layer(b, i);
        assert_string_equal(tfx_layer_name(la), tfx_layer_name(lb));
        assert_int_equal(tfx_layer_get_kind(la), tfx_layer_get_kind(lb));
        assert_memory_equal(&la->cfg, &lb->cfg, sizeof la->cfg);
        if (la->n_state) assert_memory_equal(la->state, lb->state, la->n_state * sizeof(float));
        const tfx_layer *ia[8], *ib[8];
        size_t na = 0, nb = 0;
        OK(tfx_layer_inputs(la, ia, 8, &na));
        OK(tfx_layer_inputs(lb, ib, 8, &nb));
        assert_int_equal(na, nb);
        for (size_t j = 0; j < na; j++) {
            if (!ia[j])
                assert_null(ib[j]);
            else
                assert_string_equal(tfx_layer_name(ia[j]), tfx_layer_name(ib[j]));
        }
    }
    if (a->n_params) assert_memory_equal(a->params, b->params, a->n_params * sizeof(float));
}

/* The file's layout: header, 3 or 4 table entries, payloads in table order. */
static size_t payload_off(const uint8_t *b, size_t section)
{
    size_t o = TFX__FILE_HEADER_LEN + (size_t)rd32(b + 12) * TFX__FILE_ENTRY_LEN;
    for (size_t k = 0; k < section; k++) o += (size_t)rd64(b + TFX__FILE_HEADER_LEN + 16 * k + 8);
    return o;
}
/* The graph section is the third (after the architecture and the weights). */
static size_t graph_off(const uint8_t *b) { return payload_off(b, 2); }
static size_t graph_rec(const uint8_t *b, size_t i)
{
    size_t o = graph_off(b) + 4;
    for (size_t k = 0; k < i; k++) o += 4 + 4 * (size_t)rd32(b + o);
    return o;
}

static void write_seed(const char *name, const uint8_t *b, size_t n)
{
    const char *dir = getenv("TFX_GRAPH_SEED_OUT");
    if (!dir) return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* ---- round trips ---- */

static void roundtrip(tfx_model *m, const int (*inputs)[2], const char *seed_name)
{
    size_t n;
    uint8_t *b = save_mem(m, &n);
    write_seed(seed_name, b, n);
    /* Version 2, three sections: architecture, weights, graph (required). */
    assert_int_equal(rd32(b + 8), 2);
    assert_int_equal(rd32(b + 12), 3);
    assert_int_equal(rd32(b + 16 + 32), TFX__SECTION_GRAPH);
    assert_int_equal(rd32(b + 16 + 36), TFX__SECTION_REQUIRED);
    /* The section holds the inputs the model was built with. */
    size_t L = tfx_model_layer_count(m);
    assert_int_equal(rd32(b + graph_off(b)), L);
    for (size_t i = 0; i < L; i++) {
        size_t o = graph_rec(b, i), k = rd32(b + o);
        assert_int_equal(k, inputs[i][1] < 0 ? 1 : 2);
        for (size_t j = 0; j < k; j++) assert_int_equal(rd32(b + o + 4 + 4 * j), inputs[i][j]);
    }
    assert_int_equal(graph_rec(b, L), n - 4); /* the section ends before the CRC */

    tfx_model *l = NULL;
    OK(tfx_model_load_from_memory(&l, b, n));
    assert_same_graph(m, l);
    assert_same_predictions(m, l, 4);
    assert_false(tfx__model_is_chain(l));
    size_t n2;
    uint8_t *b2 = save_mem(l, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    tfx_model_free(l);
    free(b);
}

static void test_graph_roundtrip(void **state)
{
    (void)state;
    static const int branchy_in[8][2] = {{0, -1}, {1, -1}, {2, -1}, {3, -1}, {1, -1}, {4, 5}, {6, -1}, {7, -1}};
    static const int input_in[5][2] = {{0, -1}, {1, 0}, {2, 2}, {3, -1}, {4, -1}};
    tfx_model *m = branchy_model(0);
    roundtrip(m, branchy_in, "graph.tfx");

    /* Through a file too, and with the optimizer section after the graph section. */
    char path[] = "/tmp/tfx_graph_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    OK(tfx_model_save(m, path, NULL));
    tfx_model *l = NULL;
    OK(tfx_model_load(&l, path));
    assert_same_predictions(m, l, 3);
    tfx_model_free(l);
    size_t nf, nm;
    uint8_t *bf = read_whole(path, &nf), *bm = save_mem(m, &nm);
    assert_int_equal(nf, nm);
    assert_memory_equal(bf, bm, nm);
    free(bf);
    free(bm);
    remove(path);

    tfx_compile_options co = TFX_COMPILE_OPTIONS_INIT;
    OK(tfx_model_compile(m, &co));
    tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
    so.include_optimizer = 1;
    size_t n;
    uint8_t *b = save_mem_opts(m, &so, &n);
    assert_int_equal(rd32(b + 12), 4);
    assert_int_equal(rd32(b + 16 + 48), TFX__SECTION_OPTIMIZER);
    OK(tfx_model_load_from_memory(&l, b, n));
    assert_same_graph(m, l);
    size_t n2;
    uint8_t *b2 = save_mem_opts(l, &so, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    free(b);
    tfx_model_free(l);
    tfx_model_free(m);

    m = input_model();
    roundtrip(m, input_in, "graph-input.tfx");
    tfx_model_free(m);
}

/* The model (Conv -> two branches -> Add -> Concatenate -> GAP -> Dense) and a
 * squeeze-and-excitation block (Multiply with a flat gate, Concatenate with the model input). */
static void test_graph_roundtrip_merge_kinds(void **state)
{
    (void)state;
    static const int cat_in[9][2] = {{0, -1}, {1, -1}, {2, -1}, {3, -1}, {1, -1}, {4, 5}, {6, 1}, {7, -1}, {8, -1}};
    static const int se_in[7][2] = {{0, -1}, {1, -1}, {2, -1}, {1, 3}, {4, 0}, {5, -1}, {6, -1}};
    tfx_model *m = branchy_model(1), *se = se_model();
    roundtrip(m, cat_in, "graph-concatenate.tfx");
    roundtrip(se, se_in, "graph-se.tfx");
    tfx_model_free(se);
    tfx_model_free(m);
}

/* ---- chains: 0.1's bytes ---- */

/* Files in the fuzz corpus written by libtfx before graphs (0.1 and the issue-17/20 kinds and
 * optimizer section): each loads and is written back byte for byte, as version 1. */
static void test_chain_files_unchanged(void **state)
{
    (void)state;
    static const char *const files[] = {"dense.tfx", "every.tfx", "new-kinds.tfx", "optimizer.tfx"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/tests/fuzz/corpus/model_load/%s", TFX_SOURCE_ROOT, files[i]);
        size_t n;
        uint8_t *orig = read_whole(path, &n);
        if (!orig) fail_msg("cannot read %s", path);
        assert_int_equal(rd32(orig + 8), 1);
        tfx_model *m = NULL;
        OK(tfx_model_load_from_memory(&m, orig, n));
        assert_true(tfx__model_is_chain(m));
        tfx_save_options so = TFX_SAVE_OPTIONS_INIT;
        so.include_optimizer = rd32(orig + 12) == 3;
        size_t n2;
        uint8_t *again = save_mem_opts(m, &so, &n2);
        if (n2 != n || memcmp(orig, again, n) != 0) fail_msg("%s: written back differently", files[i]);
        free(again);
        free(orig);
        tfx_model_free(m);
    }

    /* A chain built with explicit set_next_input calls is still a chain: the same version 1 bytes. */
    tfx_model *a, *b;
    OK(tfx_model_new(&a, 5, 5, 2));
    OK(tfx_model_new(&b, 5, 5, 2));
    tfx_conv2d_options c = conv(3, 3, TFX_ACTIVATION_RELU, "c");
    tfx_layer *ca, *cb;
    OK(tfx_model_add_conv2d(a, &c, &ca));
    OK(tfx_model_set_next_input(b, NULL));
    OK(tfx_model_add_conv2d(b, &c, &cb));
    OK(tfx_model_set_next_input(b, cb));
    OK(tfx_model_add_flatten(a, "f", NULL));
    OK(tfx_model_add_flatten(b, "f", NULL));
    randomise(a, 3);
    randomise(b, 3);
    size_t na, nb;
    uint8_t *ba = save_mem(a, &na), *bb = save_mem(b, &nb);
    assert_int_equal(rd32(ba + 8), 1);
    assert_int_equal(rd32(ba + 12), 2);
    assert_int_equal(na, nb);
    assert_memory_equal(ba, bb, na);
    free(ba);
    free(bb);
    tfx_model_free(a);
    tfx_model_free(b);
}

/* ---- a version 2 file by hand ---- */

/* docs/file-format.md's graph example, assembled from its tables: input 1x1x2, Conv2D "conv"
 * (1x1, 2 filters, linear, no bias, kernel {1, 2, 3, 4}), Add "add" of conv and the model input:
 * y = x K + x. */
static size_t handmade_graph(uint8_t *f)
{
    memset(f, 0xAA, 256);
    memcpy(f, "\x89TFX\r\n\x1a\n", 8);
    wr32(f + 8, 2);  /* format version 2 */
    wr32(f + 12, 3); /* sections */
    const size_t arch_len = 16 + (6 + 5 + 2 + 36) + (6 + 4 + 2), wts_len = 4 + (16 + 16) + 16,
                 graph_len = 4 + (4 + 4) + (4 + 8);
    const uint32_t types[3] = {1, 2, 4};
    const size_t lens[3] = {arch_len, wts_len, graph_len};
    for (int i = 0; i < 3; i++) {
        wr32(f + 16 + 16 * i, types[i]);
        wr32(f + 20 + 16 * i, 1); /* required */
        wr64(f + 24 + 16 * i, lens[i]);
    }
    size_t o = 64;
    wr32(f + o, 1), wr32(f + o + 4, 1), wr32(f + o + 8, 2), wr32(f + o + 12, 2); /* 1x1x2, 2 layers */
    o += 16;
    wr32(f + o, TFX_LAYER_CONV2D), f[o + 4] = 4, f[o + 5] = 0;
    memcpy(f + o + 6, "conv", 5);
    o += 11;
    f[o] = 36, f[o + 1] = 0;
    o += 2;
    static const int32_t cfg[9] = {2, 1, 1, 1, 1,
                                   0, 0, 0, 0}; /* filters, kh, kw, sh, sw, valid, linear, alpha, no bias */
    for (int i = 0; i < 9; i++) wr32(f + o + 4 * i, (uint32_t)cfg[i]);
    o += 36;
    wr32(f + o, 14), f[o + 4] = 3, f[o + 5] = 0; /* TFX_LAYER_ADD */
    memcpy(f + o + 6, "add", 4);
    o += 10;
    f[o] = 0, f[o + 1] = 0;
    o += 2;
    assert_int_equal(o, 64 + arch_len);
    wr32(f + o, 2); /* weights: 2 layers */
    wr64(f + o + 4, 4), wr64(f + o + 12, 0);
    for (int i = 0; i < 4; i++) wrf(f + o + 20 + 4 * i, (float)(i + 1));
    wr64(f + o + 36, 0), wr64(f + o + 44, 0);
    o += wts_len;
    wr32(f + o, 2);      /* graph: 2 layers */
    wr32(f + o + 4, 1);  /* conv: 1 input, */
    wr32(f + o + 8, 0);  /* the model input */
    wr32(f + o + 12, 2); /* add: 2 inputs, */
    wr32(f + o + 16, 1); /* conv's output */
    wr32(f + o + 20, 0); /* and the model input */
    o += graph_len;
    fix_crc(f, o + 4);
    return o + 4;
}

static void test_graph_handmade_file(void **state)
{
    (void)state;
    uint8_t f[256];
    size_t n = handmade_graph(f);
    /* The example of docs/file-format.md (its CRC from Python's zlib.crc32). */
    assert_int_equal(n, 221);
    assert_int_equal(rd32(f + n - 4), 0x31b0e4d7u);
    tfx_model *m;
    OK(tfx_model_load_from_memory(&m, f, n));
    assert_int_equal(tfx_model_layer_count(m), 2);
    assert_string_equal(tfx_layer_name(tfx_model_layer(m, 1)), "add");
    assert_int_equal(tfx_layer_get_kind(tfx_model_layer(m, 1)), TFX_LAYER_ADD);
    float x[4] = {1.0f, -2.0f, 0.5f, 0.25f}, y[4];
    OK(tfx_model_predict(m, x, 2, y));
    /* Keras kernel [in][out] = {{1, 2}, {3, 4}}: y = (x0 + 3 x1, 2 x0 + 4 x1) + x */
    assert_true(y[0] == 1.0f * 1.0f + 3.0f * -2.0f + 1.0f);
    assert_true(y[1] == 2.0f * 1.0f + 4.0f * -2.0f - 2.0f);
    assert_true(y[2] == 1.0f * 0.5f + 3.0f * 0.25f + 0.5f);
    assert_true(y[3] == 2.0f * 0.5f + 4.0f * 0.25f + 0.25f);
    size_t n2;
    uint8_t *b = save_mem(m, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(b, f, n);
    free(b);
    tfx_model_free(m);
}

/* ---- hostile graph sections ---- */

typedef struct hostile {
    uint8_t *b;
    size_t n;
} hostile;

static hostile fresh(const uint8_t *orig, size_t n)
{
    hostile h = {malloc(n + 64), n};
    assert_non_null(h.b);
    memcpy(h.b, orig, n);
    return h;
}

/* Insert (delta > 0, zeros) or remove (delta < 0) bytes at off inside section sec, whose table
 * length follows. */
static void resize_at(hostile *h, size_t sec, size_t off, long delta)
{
    size_t e = TFX__FILE_HEADER_LEN + 16 * sec + 8;
    wr64(h->b + e, (uint64_t)((long)rd64(h->b + e) + delta));
    if (delta > 0) {
        memmove(h->b + off + delta, h->b + off, h->n - off);
        memset(h->b + off, 0, (size_t)delta);
    } else {
        memmove(h->b + off, h->b + off - delta, h->n - off + delta);
    }
    h->n = (size_t)((long)h->n + delta);
}

static void expect_hostile(hostile h, int code, const char *substr, const char *file, int line)
{
    fix_crc(h.b, h.n);
    tfx_model *m = (tfx_model *)1;
    tfx_error_clear();
    int rc = tfx_model_load_from_memory(&m, h.b, h.n);
    const tfx_error *e = tfx_error_last();
    if (m != NULL || rc != code || e->code != code || !strstr(e->message, substr))
        fail_msg("%s:%d: rc %d (want %d), model %p, message \"%s\" (want \"%s\")", file, line, rc, code, (void *)m,
                 e->message, substr);
    free(h.b);
}
#define HOSTILE(h, code, substr) expect_hostile((h), (code), (substr), __FILE__, __LINE__)

static void test_graph_hostile(void **state)
{
    (void)state;
    tfx_model *m = branchy_model(0);
    size_t n;
    uint8_t *o = save_mem(m, &n);
    const size_t G = graph_off(o), R1 = graph_rec(o, 1), R5 = graph_rec(o, 5), R7 = graph_rec(o, 7);
    hostile h;

    /* Inputs that are not earlier tensors. */
    h = fresh(o, n), wr32(h.b + R1 + 4, 4); /* a1 reads a2, which reads a1 through bn */
    HOSTILE(h, TFX_EFORMAT,
            "graph section, layer 1 ('a1'): input 0 is tensor 4, the output of layer 3, which comes "
            "later: a cycle or a forward reference");
    h = fresh(o, n), wr32(h.b + R1 + 4, 2);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 1 ('a1'): input 0 is tensor 2, the layer's own output: a cycle");
    h = fresh(o, n), wr32(h.b + R5 + 8, 9);
    HOSTILE(h, TFX_EFORMAT,
            "graph section, layer 5 ('add'): input 1 is tensor 9, beyond the model's 8 layers "
            "(tensors 0..8): a dangling input");
    h = fresh(o, n), wr32(h.b + R5 + 8, 0xFFFFFFFFu);
    HOSTILE(h, TFX_EFORMAT, "input 1 is tensor 4294967295, beyond the model's 8 layers");
    h = fresh(o, n), wr32(h.b + R5 + 4, 8); /* the last layer's output, read before it exists */
    HOSTILE(h, TFX_EFORMAT, "layer 5 ('add'): input 0 is tensor 8, the output of layer 7, which comes later");

    /* Input counts. */
    h = fresh(o, n), wr32(h.b + R1, 0);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 1 ('a1'): 0 inputs (must be 1..1024)");
    h = fresh(o, n), wr32(h.b + R5, 1025);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 5 ('add'): 1025 inputs (must be 1..1024)");
    h = fresh(o, n), wr32(h.b + R5, 0xFFFFFFFFu);
    HOSTILE(h, TFX_EFORMAT, "layer 5 ('add'): 4294967295 inputs (must be 1..1024)");
    h = fresh(o, n), wr32(h.b + R5, 1000); /* a valid count, not that many bytes */
    HOSTILE(h, TFX_EFORMAT, "layer 5 ('add'): a list of 1000 inputs runs past the end of the section");
    h = fresh(o, n), wr32(h.b + R1, 2);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 1 ('a1'): 2 inputs, but Conv2D layers read one");
    /* A multi-input kind with one input: the record shrunk by its second input. */
    h = fresh(o, n), wr32(h.b + R5, 1), resize_at(&h, 2, R5 + 8, -4);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 5 ('add'): 1 input, but Add layers read at least 2");
    /* Shapes that do not fit: the Add of a2, b1 and the model input (3 channels, not 4). */
    h = fresh(o, n), wr32(h.b + R5, 3), resize_at(&h, 2, R5 + 12, 4), wr32(h.b + R5 + 12, 0);
    HOSTILE(h, TFX_EFORMAT,
            "architecture section, layer 5 ('add'): input 2 has shape 8x8x3, input 0 has 8x8x4: Add needs "
            "equal shapes (reading 'a2' (8x8x4), 'b1' (8x8x4), the model input (8x8x3))");
    /* The Dense reads the model input (3 channels) instead of the pooled 4: its weights no longer fit. */
    h = fresh(o, n), wr32(h.b + R7 + 4, 0);
    HOSTILE(h, TFX_EFORMAT,
            "weights section, layer 7 ('out'): 15 trainable and 0 non-trainable weights, the "
            "architecture needs 12");

    /* The section's own counts and length. */
    h = fresh(o, n), wr32(h.b + G, 7);
    HOSTILE(h, TFX_EFORMAT, "graph section: 7 layers, the architecture has 8");
    h = fresh(o, n), resize_at(&h, 2, R7 + 4, -4); /* the last input cut off */
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 7 ('out'): a list of 1 inputs runs past the end of the section");
    /* The Add reads b1 twice more (its shape fits) and the last record is cut off: the layer
     * count still fits the section, the last record does not. */
    h = fresh(o, n), wr32(h.b + R5, 3), resize_at(&h, 2, R5 + 12, 4), wr32(h.b + R5 + 12, 5);
    resize_at(&h, 2, R7 + 4, -8);
    HOSTILE(h, TFX_EFORMAT, "graph section, layer 7 ('out'): record truncated (input count)");
    h = fresh(o, n), resize_at(&h, 2, R7, -8);
    HOSTILE(h, TFX_EFORMAT, "graph section: 8 layers cannot fit in 64 bytes");
    h = fresh(o, n), resize_at(&h, 2, G + 4, -(long)(R7 + 8 - G - 4)); /* only the layer count left */
    HOSTILE(h, TFX_EFORMAT, "graph section: 8 layers cannot fit in 4 bytes");
    h = fresh(o, n), resize_at(&h, 2, G, -(long)(R7 + 8 - G)); /* empty */
    HOSTILE(h, TFX_EFORMAT, "graph section: 0 bytes, too short for the layer count");
    h = fresh(o, n), resize_at(&h, 2, R7 + 8, 4);
    HOSTILE(h, TFX_EFORMAT, "graph section: 4 bytes left after the last layer");

    /* Versions and sections. */
    h = fresh(o, n), wr32(h.b + 16 + 32, 77), wr32(h.b + 16 + 36, 0); /* now an unknown optional section */
    HOSTILE(h, TFX_EFORMAT, "a version 2 file must have a graph section");
    h = fresh(o, n), wr32(h.b + 8, 1);
    HOSTILE(h, TFX_EFORMAT, "section 2: a graph section in a version 1 file (graphs are version 2)");
    h = fresh(o, n), wr32(h.b + 8, 3);
    HOSTILE(h, TFX_EVERSION, "format version 3 is newer than this libtfx reads (2)");
    /* As a version 1 file (the section skipped as unknown and optional), the layers chain: b1
     * reads a2, and the Add has nothing to name its two inputs. */
    h = fresh(o, n), wr32(h.b + 8, 1), wr32(h.b + 16 + 32, 77), wr32(h.b + 16 + 36, 0);
    HOSTILE(h, TFX_EFORMAT,
            "architecture section, layer 5 ('add'): Add layers read at least 2 inputs, a version 1 "
            "file has no graph section to name them");
    /* A second graph section: the table grows by one entry and the payload is repeated. */
    {
        size_t glen = n - 4 - G;
        hostile d = {malloc(n + 16 + glen), n + 16 + glen};
        assert_non_null(d.b);
        memcpy(d.b, o, 64);
        wr32(d.b + 12, 4);
        memcpy(d.b + 64, o + 48, 16); /* the graph entry again */
        memcpy(d.b + 80, o + 64, n - 4 - 64);
        memcpy(d.b + 80 + n - 4 - 64, o + G, glen);
        HOSTILE(d, TFX_EFORMAT, "section 3: a second graph section");
    }

    /* Unreachable layers: the Add reads b1 twice (the same shape), so the a1..a2 branch leads
     * nowhere: refused naming its first layer. */
    h = fresh(o, n), wr32(h.b + R5 + 4, 5);
    HOSTILE(h, TFX_EFORMAT, "graph section: layer 'a1' (Conv2D) does not lead to the model's output");

    free(o);
    tfx_model_free(m);
}

/* Every byte of the graph section edited (valid CRC): refused with TFX_EFORMAT and a message, or
 * a model that predicts; every truncation of a graph file refused. */
static void test_graph_every_byte(void **state)
{
    (void)state;
    tfx_model *m = input_model();
    size_t n;
    uint8_t *o = save_mem(m, &n), *b = malloc(n);
    assert_non_null(b);
    static const uint8_t masks[] = {0xff, 0x01, 0x02, 0x04, 0x80};
    int rejected = 0, loaded = 0;
    float x[5 * 4 * 2], y[16];
    fill(x, sizeof x / sizeof x[0], 5, -1.0f, 1.0f);
    for (size_t pos = graph_off(o); pos + 4 < n; pos++)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(b, o, n);
            b[pos] ^= masks[k];
            fix_crc(b, n);
            tfx_model *l = NULL;
            tfx_error_clear();
            int rc = tfx_model_load_from_memory(&l, b, n);
            if (rc == TFX_OK) {
                loaded++;
                int out[3];
                OK(tfx_model_output_shape(l, out));
                assert_true((size_t)out[0] * out[1] * out[2] <= 16);
                OK(tfx_model_predict(l, x, 1, y));
                tfx_model_free(l);
            } else {
                rejected++;
                if (rc != TFX_EFORMAT || l || !tfx_error_last()->message[0])
                    fail_msg("edit at %zu mask %02x: rc %d message \"%s\"", pos, masks[k], rc,
                             tfx_error_last()->message);
            }
        }
    /* Rewiring to another tensor of the right shape loads (res reading c twice). */
    print_message("    graph-section edits: %d rejected, %d loaded\n", rejected, loaded);
    assert_true(rejected > 0);
    size_t step = under_valgrind() ? 7 : 1;
    for (size_t len = 0; len < n; len += step) {
        memcpy(b, o, len);
        if (len >= 20) fix_crc(b, len);
        tfx_model *l = (tfx_model *)1;
        int rc = tfx_model_load_from_memory(&l, b, len);
        if (rc != TFX_EFORMAT || l) fail_msg("truncation to %zu: rc %d", len, rc);
    }
    free(b);
    free(o);
    tfx_model_free(m);
}

/* ---- writing ---- */

/* A layer that leads nowhere: save refuses the model (TFX_ESTATE naming it), nothing written. */
static void test_save_refuses_unreachable(void **state)
{
    (void)state;
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 1));
    tfx_conv2d_options c = conv(2, 3, TFX_ACTIVATION_RELU, "dead_end");
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_set_next_input(m, NULL));
    c.name = "used";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    size_t n = 7;
    tfx_error_clear();
    assert_int_equal(tfx_model_save_to_memory(m, NULL, NULL, 0, &n), TFX_ESTATE);
    assert_non_null(strstr(tfx_error_last()->message, "dead_end"));
    assert_int_equal(n, 0);
    tfx_model_free(m);
}

/* ---- allocation failures ---- */

static void test_graph_allocation_failures(void **state)
{
    (void)state;
    tfx_model *m = branchy_model(0);
    size_t n;
    uint8_t *b = save_mem(m, &n);
    int done_load = 0, done_save = 0;
    for (long k = 1; k < 2000 && !(done_load && done_save); k++) {
        if (!done_load) {
            tfx_model *l = (tfx_model *)1;
            tfx__alloc_fail_after(k);
            int rc = tfx_model_load_from_memory(&l, b, n);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                done_load = 1;
                assert_same_predictions(m, l, 1);
                tfx_model_free(l);
            } else {
                if (rc != TFX_ENOMEM) fail_msg("allocation %ld: rc %d \"%s\"", k, rc, tfx_error_last()->message);
                assert_null(l);
            }
        }
        if (!done_save) {
            size_t got = 0;
            uint8_t *out = malloc(n);
            assert_non_null(out);
            tfx__alloc_fail_after(k);
            int rc = tfx_model_save_to_memory(m, NULL, out, n, &got);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                done_save = 1;
                assert_memory_equal(out, b, n);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
            }
            free(out);
        }
    }
    assert_true(done_load && done_save);
    free(b);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graph_roundtrip),
        cmocka_unit_test(test_graph_roundtrip_merge_kinds),
        cmocka_unit_test(test_chain_files_unchanged),
        cmocka_unit_test(test_graph_handmade_file),
        cmocka_unit_test(test_graph_hostile),
        cmocka_unit_test(test_graph_every_byte),
        cmocka_unit_test(test_save_refuses_unreachable),
        cmocka_unit_test(test_graph_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
