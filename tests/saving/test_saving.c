/* Model files: round trip of every layer kind (bit-identical predictions and bytes), a file
 * assembled by hand from docs/file-format.md, corruption at every byte, every truncation,
 * hostile headers (each rejected with a message naming the problem), atomic writes under an
 * injected write failure, unwritable paths, NULL arguments and allocation failures. */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "core/file.h"
#include "model/model_internal.h"
#include "saving/saving_internal.h"
#include "testing.h"
#include "tfx/tfx.h"

/* ---- helpers ---- */

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

static void check_err_at(int rc, int code, const char *substr, const char *file, int line)
{
    const tfx_error *e = tfx_error_last();
    if (rc != code || e->code != code || strstr(e->message, substr) == NULL) {
        print_error("%s:%d: rc %d (want %d), last code %d, message \"%s\" (want substring \"%s\")\n", file, line,
                    rc, code, e->code, e->message, substr);
        fail_msg("error check failed");
    }
}
#define CHECK_ERR(call, code, substr)                                                              \
    do {                                                                                           \
        tfx_error_clear();                                                                         \
        int rc__ = (call);                                                                         \
        check_err_at(rc__, (code), (substr), __FILE__, __LINE__);                                  \
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
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
    b[2] = (uint8_t)(v >> 16);
    b[3] = (uint8_t)(v >> 24);
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

/* Independent CRC (zlib) over everything before the trailer, written into the trailer. */
static void fix_crc(uint8_t *b, size_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, b, (uInt)(n - 4));
    wr32(b + n - 4, (uint32_t)c);
}

static uint8_t *save_mem(const tfx_model *m, size_t *n)
{
    OK(tfx_model_save_to_memory(m, NULL, NULL, 0, n));
    uint8_t *b = malloc(*n);
    assert_non_null(b);
    size_t n2 = 0;
    OK(tfx_model_save_to_memory(m, NULL, b, *n, &n2));
    assert_int_equal(n2, *n);
    return b;
}

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

/* A fresh directory for file tests, and the number of entries in it. */
static void make_dir(char *dir, size_t len)
{
    const char *t = getenv("TMPDIR");
    snprintf(dir, len, "%s/tfx-saving-XXXXXX", t && *t ? t : "/tmp");
    assert_non_null(mkdtemp(dir));
}
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Randomise all trainable weights and BN statistics so nothing is at its initial value. */
static void randomise(tfx_model *m, uint32_t seed)
{
    fill(m->params, m->n_params, seed, -0.5f, 0.5f);
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        if (l->ops->kind != TFX_LAYER_BATCH_NORMALIZATION) continue;
        size_t C = l->n_state / 2;
        fill(l->state, C, seed + 1 + (uint32_t)i, -0.3f, 0.3f);         /* moving mean */
        fill(l->state + C, C, seed + 50 + (uint32_t)i, 0.2f, 2.0f);     /* moving variance */
    }
}

/* Every layer kind, with the options that change the file: conv SAME stride 2, BN with
 * and without centre, both poolings, activation with alpha, dropout, GAP, flatten, dense
 * with and without bias. */
static tfx_model *every_kind_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 9, 7, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 6;
    c.kernel_h = 3;
    c.kernel_w = 2;
    c.stride_h = c.stride_w = 2;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "conv_same_s2";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_batch_norm_options b = TFX_BATCH_NORM_OPTIONS_INIT;
    b.momentum = 0.9f;
    b.epsilon = 0.01f;
    OK(tfx_model_add_batch_normalization(m, &b, NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.padding = TFX_PADDING_SAME;
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_LEAKY_RELU, 0.1f, "leaky", NULL));
    c.filters = 5;
    c.kernel_h = c.kernel_w = 1;
    c.stride_h = c.stride_w = 1;
    c.padding = TFX_PADDING_VALID;
    c.activation = TFX_ACTIVATION_ELU;
    c.use_bias = 0;
    c.name = NULL;
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_pool2d_options a = TFX_POOL2D_OPTIONS_INIT;
    a.pool_h = 2;
    a.pool_w = 1;
    a.stride_h = 1;
    a.stride_w = 1;
    OK(tfx_model_add_average_pooling2d(m, &a, NULL));
    b.center = 0;
    b.name = "bn_nocenter";
    OK(tfx_model_add_batch_normalization(m, &b, NULL));
    OK(tfx_model_add_dropout(m, 0.25f, NULL, NULL));
    OK(tfx_model_add_global_average_pooling2d(m, NULL, NULL));
    OK(tfx_model_add_flatten(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 7;
    d.activation = TFX_ACTIVATION_TANH;
    d.use_bias = 0;
    OK(tfx_model_add_dense(m, &d, NULL));
    OK(tfx_model_add_dropout(m, 0.5f, "drop2", NULL));
    d.units = 4;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.use_bias = 1;
    d.name = "probs";
    OK(tfx_model_add_dense(m, &d, NULL));
    OK(tfx_model_set_seed(m, 7));
    randomise(m, 99);
    return m;
}

/* The small model the byte loops use: conv, BN, flatten, dense (names "c1" and "d1"). */
static tfx_model *small_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 4, 4, 2));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 2;
    c.kernel_h = c.kernel_w = 3;
    c.stride_h = c.stride_w = 2;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_RELU;
    c.name = "c1";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_batch_normalization(m, NULL, NULL));
    OK(tfx_model_add_flatten(m, "fl", NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_SOFTMAX;
    d.name = "d1";
    OK(tfx_model_add_dense(m, &d, NULL));
    randomise(m, 5);
    return m;
}

/* Byte offsets inside a saved file, found by walking the documented layout. */
static size_t arch_off(void) { return TFX__FILE_HEADER_LEN + 2 * TFX__FILE_ENTRY_LEN; }
static size_t weights_off(const uint8_t *b) { return arch_off() + (size_t)rd64(b + TFX__FILE_HEADER_LEN + 8); }
static size_t layer_off(const uint8_t *b, size_t i)
{
    size_t o = arch_off() + 16;
    for (size_t k = 0; k < i; k++) {
        size_t name_len = (size_t)b[o + 4] | (size_t)b[o + 5] << 8;
        size_t cfg = o + 6 + name_len + 1;
        o = cfg + 2 + ((size_t)b[cfg] | (size_t)b[cfg + 1] << 8);
    }
    return o;
}
static size_t layer_cfg_off(const uint8_t *b, size_t i)
{
    size_t o = layer_off(b, i);
    size_t name_len = (size_t)b[o + 4] | (size_t)b[o + 5] << 8;
    return o + 6 + name_len + 1 + 2;
}
static size_t weights_layer_off(const uint8_t *b, size_t i)
{
    size_t o = weights_off(b) + 4;
    for (size_t k = 0; k < i; k++) o += 16 + 4 * (size_t)(rd64(b + o) + rd64(b + o + 8));
    return o;
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

/* ---- round trip ---- */

static void test_roundtrip_every_kind(void **state)
{
    (void)state;
    tfx_model *m = every_kind_model();
    /* Every kind is present. */
    int seen[16] = {0};
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) seen[tfx_layer_get_kind(tfx_model_layer(m, i))] = 1;
    for (int k = TFX_LAYER_CONV2D; k <= TFX_LAYER_BATCH_NORMALIZATION; k++) assert_true(seen[k]);
    /* BN statistics are not the initial 0 / 1, so a loader that drops them would differ. */
    tfx_layer *bn = tfx_model_find_layer(m, "batch_normalization");
    assert_non_null(bn);
    assert_true(bn->state[0] != 0.0f && bn->state[bn->n_state / 2] != 1.0f);

    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/every.tfx", dir);
    OK(tfx_model_save(m, path, NULL));
    tfx_model *l;
    OK(tfx_model_load(&l, path));
    assert_same_predictions(m, l, 5);

    /* Same structure, names, shapes and counts. */
    assert_int_equal(tfx_model_layer_count(l), tfx_model_layer_count(m));
    assert_int_equal(tfx_model_param_count(l), tfx_model_param_count(m));
    assert_int_equal(tfx_model_trainable_param_count(l), tfx_model_trainable_param_count(m));
    for (size_t i = 0; i < tfx_model_layer_count(m); i++) {
        tfx_layer *a = tfx_model_layer(m, i), *b = tfx_model_layer(l, i);
        assert_string_equal(tfx_layer_name(a), tfx_layer_name(b));
        assert_int_equal(tfx_layer_get_kind(a), tfx_layer_get_kind(b));
        assert_memory_equal(&a->cfg, &b->cfg, sizeof a->cfg);
        int sa[3], sb[3];
        OK(tfx_layer_output_shape(a, sa));
        OK(tfx_layer_output_shape(b, sb));
        assert_memory_equal(sa, sb, sizeof sa);
        if (a->n_state) assert_memory_equal(a->state, b->state, a->n_state * sizeof(float));
    }
    assert_memory_equal(m->params, l->params, m->n_params * sizeof(float));

    /* The file is the memory image, and saving the loaded model gives the same bytes. */
    size_t n1, n2, nf;
    uint8_t *b1 = save_mem(m, &n1), *b2 = save_mem(l, &n2), *bf = read_whole(path, &nf);
    assert_non_null(bf);
    assert_int_equal(n1, nf);
    assert_memory_equal(b1, bf, n1);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    /* Only the model file in the directory: no temporary left behind. */
    assert_int_equal(count_entries(dir), 1);

    /* A loaded model keeps working as a model: training-mode forward updates BN stats. */
    free(b1);
    free(b2);
    free(bf);
    tfx_model_free(l);
    tfx_model_free(m);
    remove_dir(dir);
}

static void test_roundtrip_empty_model(void **state)
{
    (void)state;
    tfx_model *m, *l;
    OK(tfx_model_new(&m, 2, 3, 4));
    size_t n;
    uint8_t *b = save_mem(m, &n);
    OK(tfx_model_load_from_memory(&l, b, n));
    int s[3];
    OK(tfx_model_input_shape(l, s));
    assert_int_equal(s[0], 2);
    assert_int_equal(s[1], 3);
    assert_int_equal(s[2], 4);
    assert_int_equal(tfx_model_layer_count(l), 0);
    free(b);
    tfx_model_free(l);
    tfx_model_free(m);
}

/* A file assembled by hand from docs/file-format.md (not by the writer): Dense(2 -> 1) with
 * kernel {2, -3}, bias 0.5, linear. Loading it must give y = 2 x0 - 3 x1 + 0.5, and saving
 * the loaded model must reproduce the same bytes. */
/* Load skips the random initialisation the file's weights overwrite: the loaded model's RNG has
 * drawn nothing (it is a fresh tfx_model_new's, seed 0). */
static void test_load_skips_init(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *b = save_mem(m, &n);
    tfx_model *l;
    OK(tfx_model_load_from_memory(&l, b, n));
    tfx__rng fresh;
    tfx__rng_seed(&fresh, 0);
    assert_memory_equal(l->rng.s, fresh.s, sizeof fresh.s);
    assert_int_equal(l->skip_init, 0); /* layers added later are initialised again */
    assert_same_predictions(m, l, 2);
    tfx_model_free(l);
    free(b);
    tfx_model_free(m);
}

static void test_handmade_file(void **state)
{
    (void)state;
    uint8_t f[256];
    memset(f, 0xAA, sizeof f);
    size_t o = 0;
    memcpy(f, "\x89TFX\r\n\x1a\n", 8);
    wr32(f + 8, 1);  /* format version */
    wr32(f + 12, 2); /* sections */
    const size_t arch_len = 16 + 4 + 2 + 5 + 1 + 2 + 16, wts_len = 4 + 16 + 4 * 3;
    wr32(f + 16, 1); /* architecture, required */
    wr32(f + 20, 1);
    wr64(f + 24, arch_len);
    wr32(f + 32, 2); /* weights, required */
    wr32(f + 36, 1);
    wr64(f + 40, wts_len);
    o = 48;
    wr32(f + o, 1); /* input 1 x 1 x 2 */
    wr32(f + o + 4, 1);
    wr32(f + o + 8, 2);
    wr32(f + o + 12, 1); /* one layer */
    o += 16;
    wr32(f + o, 2); /* TFX_LAYER_DENSE */
    f[o + 4] = 5;
    f[o + 5] = 0;
    memcpy(f + o + 6, "dense", 6); /* with the NUL */
    o += 12;
    f[o] = 16;
    f[o + 1] = 0;
    o += 2;
    wr32(f + o, 1);        /* units */
    wr32(f + o + 4, 0);    /* linear */
    wrf(f + o + 8, 0.0f);  /* alpha */
    wr32(f + o + 12, 1);   /* use_bias */
    o += 16;
    assert_int_equal(o, 48 + arch_len);
    wr32(f + o, 1); /* weights: one layer */
    wr64(f + o + 4, 3);
    wr64(f + o + 12, 0);
    wrf(f + o + 20, 2.0f);
    wrf(f + o + 24, -3.0f);
    wrf(f + o + 28, 0.5f);
    o += wts_len;
    size_t n = o + 4;
    fix_crc(f, n);
    /* The bytes are the example of docs/file-format.md (its CRC from Python's zlib.crc32). */
    assert_int_equal(n, 130);
    assert_int_equal(rd32(f + n - 4), 0xbfb3f384u);

    tfx_model *m;
    OK(tfx_model_load_from_memory(&m, f, n));
    assert_int_equal(tfx_model_layer_count(m), 1);
    assert_string_equal(tfx_layer_name(tfx_model_layer(m, 0)), "dense");
    float x[4] = {1.0f, 2.0f, -0.5f, 0.25f}, y[2];
    OK(tfx_model_predict(m, x, 2, y));
    assert_true(y[0] == 2.0f * 1.0f - 3.0f * 2.0f + 0.5f);
    assert_true(y[1] == 2.0f * -0.5f - 3.0f * 0.25f + 0.5f);
    size_t n2;
    uint8_t *b = save_mem(m, &n2);
    assert_int_equal(n2, n);
    assert_memory_equal(b, f, n);
    free(b);
    tfx_model_free(m);
}

/* ---- corruption and truncation ---- */

static void expect_rejected(const uint8_t *b, size_t n, const char *what, size_t pos)
{
    tfx_model *m = (tfx_model *)1;
    tfx_error_clear();
    int rc = tfx_model_load_from_memory(&m, b, n);
    if (!(rc == TFX_EFORMAT || rc == TFX_EVERSION) || m != NULL || tfx_error_last()->message[0] == '\0')
        fail_msg("%s at %zu: rc %d, model %p, message \"%s\"", what, pos, rc, (void *)m, tfx_error_last()->message);
}

static void test_corrupt_every_byte(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *orig = save_mem(m, &n), *b = malloc(n);
    assert_non_null(b);
    static const uint8_t masks[] = {0xff, 0x01, 0x80, 0x10};
    size_t n_masks = under_valgrind() ? 1 : sizeof masks;
    for (size_t pos = 0; pos < n; pos++)
        for (size_t k = 0; k < n_masks; k++) {
            memcpy(b, orig, n);
            b[pos] ^= masks[k];
            expect_rejected(b, n, "corrupted byte", pos);
        }
    free(b);
    free(orig);
    tfx_model_free(m);
}

/* Single-byte edits with the checksum recomputed, so the parser itself sees every
 * hostile variant: each is rejected with a format error or gives a model that works. */
static void test_edit_every_byte_with_valid_crc(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *orig = save_mem(m, &n), *b = malloc(n);
    assert_non_null(b);
    static const uint8_t masks[] = {0xff, 0x01, 0x80, 0x40};
    size_t n_masks = under_valgrind() ? 1 : sizeof masks;
    size_t stride = under_valgrind() ? 3 : 1;
    int rejected = 0, loaded = 0;
    float x[4 * 4 * 2 * 2], y[64];
    fill(x, sizeof x / sizeof x[0], 11, -1.0f, 1.0f);
    for (size_t pos = 0; pos + 4 < n; pos += stride)
        for (size_t k = 0; k < n_masks; k++) {
            memcpy(b, orig, n);
            b[pos] ^= masks[k];
            fix_crc(b, n);
            tfx_model *l = NULL;
            tfx_error_clear();
            int rc = tfx_model_load_from_memory(&l, b, n);
            if (rc == TFX_OK) {
                loaded++;
                int in[3], out[3];
                OK(tfx_model_input_shape(l, in));
                OK(tfx_model_output_shape(l, out));
                /* Only weight bytes and name characters can change without breaking the file. */
                assert_int_equal(in[0] * in[1] * in[2], 32);
                assert_true((size_t)out[0] * out[1] * out[2] <= 64 / 2);
                OK(tfx_model_predict(l, x, 2, y));
                tfx_model_free(l);
            } else {
                rejected++;
                if (!(rc == TFX_EFORMAT || rc == TFX_EVERSION) || l != NULL || !tfx_error_last()->message[0])
                    fail_msg("edit at %zu mask %02x: rc %d message \"%s\"", pos, masks[k], rc,
                             tfx_error_last()->message);
            }
        }
    /* Structure bytes must be rejected, weight bytes mostly accepted: both happen. */
    assert_true(rejected > 0 && loaded > 0);
    print_message("    single-byte edits with a valid CRC: %d rejected, %d loaded\n", rejected, loaded);
    free(b);
    free(orig);
    tfx_model_free(m);
}

static void test_every_truncation(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *orig = save_mem(m, &n), *b = malloc(n);
    assert_non_null(b);
    for (size_t len = 0; len < n; len++) {
        memcpy(b, orig, len);
        expect_rejected(b, len, "truncation", len);
        /* Truncated and resealed with a valid checksum: the section table must catch it. */
        if (len >= 20) {
            fix_crc(b, len);
            expect_rejected(b, len, "resealed truncation", len);
        }
    }
    /* Extra bytes after a valid file are rejected too. */
    uint8_t *longer = malloc(n + 8);
    assert_non_null(longer);
    memcpy(longer, orig, n);
    memset(longer + n, 0, 8);
    fix_crc(longer, n + 8);
    tfx_model *l = NULL;
    CHECK_ERR(tfx_model_load_from_memory(&l, longer, n + 8), TFX_EFORMAT, "sections end at byte");
    assert_null(l);
    free(longer);
    free(b);
    free(orig);
    tfx_model_free(m);
}

/* ---- hostile headers, each with its message ---- */

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

static void expect_hostile(hostile h, int code, const char *substr, const char *file, int line)
{
    fix_crc(h.b, h.n);
    tfx_model *m = (tfx_model *)1;
    tfx_error_clear();
    int rc = tfx_model_load_from_memory(&m, h.b, h.n);
    if (m != NULL) fail_msg("%s:%d: model not NULL after failure", file, line);
    check_err_at(rc, code, substr, file, line);
    free(h.b);
}
#define HOSTILE(h, code, substr) expect_hostile((h), (code), (substr), __FILE__, __LINE__)

static void test_hostile_headers(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *o = save_mem(m, &n);
    const size_t A = arch_off();
    hostile h;

    /* Header. */
    h = fresh(o, n), h.b[0] = 'P';
    HOSTILE(h, TFX_EFORMAT, "bad magic");
    h = fresh(o, n), wr32(h.b + 8, TFX_MODEL_FORMAT_VERSION + 1);
    HOSTILE(h, TFX_EVERSION, "format version 3 is newer");
    h = fresh(o, n), wr32(h.b + 8, 0);
    HOSTILE(h, TFX_EFORMAT, "format version 0");
    h = fresh(o, n), wr32(h.b + 12, 0);
    HOSTILE(h, TFX_EFORMAT, "0 sections");
    h = fresh(o, n), wr32(h.b + 12, 0xFFFFFFFFu);
    HOSTILE(h, TFX_EFORMAT, "4294967295 sections");
    h = fresh(o, n), wr32(h.b + 12, 40);
    HOSTILE(h, TFX_EFORMAT, "does not fit");
    /* Section table. */
    h = fresh(o, n), wr64(h.b + 24, (uint64_t)1 << 62);
    HOSTILE(h, TFX_EFORMAT, "section 0 (type 1): length 4611686018427387904 runs past the end");
    h = fresh(o, n), wr64(h.b + 40, UINT64_MAX);
    HOSTILE(h, TFX_EFORMAT, "section 1 (type 2): length 18446744073709551615 runs past");
    h = fresh(o, n), wr64(h.b + 40, rd64(o + 40) - 4);
    HOSTILE(h, TFX_EFORMAT, "sections end at byte");
    h = fresh(o, n), wr32(h.b + 20, 0x101);
    HOSTILE(h, TFX_EFORMAT, "unknown flags");
    h = fresh(o, n), wr32(h.b + 32, 1);
    HOSTILE(h, TFX_EFORMAT, "a second architecture section");
    h = fresh(o, n), wr32(h.b + 32, 77);
    HOSTILE(h, TFX_EFORMAT, "required section type 77 is not known");
    h = fresh(o, n), wr32(h.b + 32, 77), wr32(h.b + 36, 0); /* weights now an unknown optional one */
    HOSTILE(h, TFX_EFORMAT, "no weights section");
    /* Architecture section. */
    h = fresh(o, n), wr32(h.b + A + 12, 0xFFFFFFFFu);
    HOSTILE(h, TFX_EFORMAT, "4294967295 layers (at most 4096)");
    h = fresh(o, n), wr32(h.b + A + 12, 4000);
    HOSTILE(h, TFX_EFORMAT, "4000 layers cannot fit");
    h = fresh(o, n), wr32(h.b + A + 12, 3);
    HOSTILE(h, TFX_EFORMAT, "weights section: 4 layers, the architecture has 3");
    h = fresh(o, n), wr32(h.b + A, 1u << 30);
    HOSTILE(h, TFX_EFORMAT, "input shape 1073741824x4x2 is not valid");
    h = fresh(o, n), wr32(h.b + A + 4, (uint32_t)-5);
    HOSTILE(h, TFX_EFORMAT, "input shape 4x-5x2");
    h = fresh(o, n), wr32(h.b + A + 8, 0);
    HOSTILE(h, TFX_EFORMAT, "input shape 4x4x0");
    size_t L0 = layer_off(o, 0), L3 = layer_off(o, 3), C0 = layer_cfg_off(o, 0), C1 = layer_cfg_off(o, 1),
           C3 = layer_cfg_off(o, 3);
    h = fresh(o, n), wr32(h.b + L0, 99);
    HOSTILE(h, TFX_EFORMAT, "architecture section, layer 0: unknown layer kind 99");
    h = fresh(o, n), wr32(h.b + L3, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 3: unknown layer kind 0");
    h = fresh(o, n), wr32(h.b + L3, TFX_LAYER_CONV2D); /* config length then disagrees */
    HOSTILE(h, TFX_EFORMAT, "layer 3 ('d1'): configuration of 16 bytes, a Conv2D has 36");
    h = fresh(o, n), h.b[L3 + 6] = 'c'; /* "d1" -> "c1", the name of layer 0 */
    HOSTILE(h, TFX_EFORMAT, "layer 3 ('c1'): duplicate layer name 'c1'");
    h = fresh(o, n), h.b[L0 + 8] = 'x'; /* the NUL after "c1" */
    HOSTILE(h, TFX_EFORMAT, "layer 0: name is not NUL-terminated");
    h = fresh(o, n), h.b[L0 + 7] = 0;
    HOSTILE(h, TFX_EFORMAT, "layer 0: name contains a NUL byte");
    h = fresh(o, n), h.b[L0 + 6] = 0x07;
    HOSTILE(h, TFX_EFORMAT, "control character");
    h = fresh(o, n), h.b[L0 + 4] = 0;
    HOSTILE(h, TFX_EFORMAT, "layer 0: name length 0 is not in 1..255");
    h = fresh(o, n), h.b[L0 + 4] = 0xff, h.b[L0 + 5] = 0xff;
    HOSTILE(h, TFX_EFORMAT, "layer 0: name length 65535");
    h = fresh(o, n), h.b[L0 + 4] = 200;
    HOSTILE(h, TFX_EFORMAT, "name of 200 bytes runs past the end");
    /* Configuration fields (conv: filters, kh, kw, sh, sw, padding, activation, alpha, bias). */
    h = fresh(o, n), wr32(h.b + C0, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('c1'): filters = 0 must be in 1..1048576");
    h = fresh(o, n), wr32(h.b + C0, 0x7fffffff);
    HOSTILE(h, TFX_EFORMAT, "filters = 2147483647 must be in");
    h = fresh(o, n), wr32(h.b + C0 + 4, (uint32_t)-3);
    HOSTILE(h, TFX_EFORMAT, "kernel_h = -3");
    h = fresh(o, n), wr32(h.b + C0 + 16, 0);
    HOSTILE(h, TFX_EFORMAT, "stride_w = 0");
    h = fresh(o, n), wr32(h.b + C0 + 20, 7);
    HOSTILE(h, TFX_EFORMAT, "padding = 7");
    h = fresh(o, n), wr32(h.b + C0 + 24, 42);
    HOSTILE(h, TFX_EFORMAT, "unknown activation 42");
    h = fresh(o, n), wrf(h.b + C0 + 28, NAN);
    HOSTILE(h, TFX_EFORMAT, "alpha is not finite");
    h = fresh(o, n), wr32(h.b + C0 + 32, 2);
    HOSTILE(h, TFX_EFORMAT, "use_bias = 2");
    /* Huge kernel with SAME padding: the weight count would overflow size_t; shape inference refuses it. */
    h = fresh(o, n), wr32(h.b + A + 8, 1024), wr32(h.b + C0, 1 << 20), wr32(h.b + C0 + 4, 1 << 20),
    wr32(h.b + C0 + 8, 1 << 20);
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('c1'): kernel 1048576x1048576x1024 with 1048576 filters has too many weights");
    /* Huge but representable: 3*3*2*2^20 + 2^20 bias weights, not what the file holds. */
    h = fresh(o, n), wr32(h.b + C0, 1 << 20);
    HOSTILE(h, TFX_EFORMAT, "weights section, layer 0 ('c1'): 38 trainable and 0 non-trainable weights, the "
                            "architecture needs 19922944");
    /* Valid padding with a kernel larger than the input: shape inference says so. */
    h = fresh(o, n), wr32(h.b + C0 + 4, 9), wr32(h.b + C0 + 20, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('c1'): kernel 9x3 does not fit the 4x4 input");
    /* BN: momentum, epsilon, center, scale. */
    h = fresh(o, n), wrf(h.b + C1, 1.5f);
    HOSTILE(h, TFX_EFORMAT, "layer 1 ('batch_normalization'): momentum 1.5 is not in [0, 1]");
    h = fresh(o, n), wrf(h.b + C1 + 4, 0.0f);
    HOSTILE(h, TFX_EFORMAT, "epsilon 0 is not a positive");
    h = fresh(o, n), wrf(h.b + C1 + 4, -INFINITY);
    HOSTILE(h, TFX_EFORMAT, "epsilon -inf");
    h = fresh(o, n), wr32(h.b + C1 + 12, (uint32_t)-1);
    HOSTILE(h, TFX_EFORMAT, "scale = -1");
    /* Dense. */
    h = fresh(o, n), wr32(h.b + C3, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 3 ('d1'): units = 0");
    h = fresh(o, n), wr32(h.b + C3, (uint32_t)-7);
    HOSTILE(h, TFX_EFORMAT, "units = -7");
    /* Weights section. */
    size_t W0 = weights_layer_off(o, 0), W1 = weights_layer_off(o, 1);
    h = fresh(o, n), wr32(h.b + weights_off(o), 99);
    HOSTILE(h, TFX_EFORMAT, "weights section: 99 layers, the architecture has 4");
    h = fresh(o, n), wr64(h.b + W0, UINT64_MAX);
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('c1'): 18446744073709551615 trainable");
    h = fresh(o, n), wr64(h.b + W1 + 8, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 1 ('batch_normalization'): 4 trainable and 0 non-trainable");
    h = fresh(o, n), wrf(h.b + W0 + 16 + 4 * 5, NAN);
    HOSTILE(h, TFX_EFORMAT, "weights section, layer 0 ('c1'): trainable weight 5 is not finite");
    h = fresh(o, n), wrf(h.b + W1 + 16 + 4 * 4, INFINITY);
    HOSTILE(h, TFX_EFORMAT, "layer 1 ('batch_normalization'): non-trainable weight 0 is not finite");
    h = fresh(o, n), wrf(h.b + W1 + 16 + 4 * 4 + 4 * 2, -1.0f); /* moving variance[0] */
    HOSTILE(h, TFX_EFORMAT, "layer 1 ('batch_normalization'): moving variance 0 is negative");

    free(o);
    tfx_model_free(m);
}

/* ---- the kinds and options added after 0.1 ---- */

/* A model using every layer kind and option added after 0.1 (issue 17). */
static tfx_model *new_options_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 9, 8, 3));
    tfx_conv2d_options c = TFX_CONV2D_OPTIONS_INIT;
    c.filters = 4;
    c.padding = TFX_PADDING_SAME;
    c.activation = TFX_ACTIVATION_CLIP;
    c.clip_min = -0.5f;
    c.clip_max = 0.75f;
    c.name = "conv_clip";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    c.activation = TFX_ACTIVATION_HARD_SWISH;
    c.name = "conv_hswish";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_RELU6, 0.0f, "relu6", NULL));
    OK(tfx_model_add_clip(m, -0.25f, 0.5f, "clip", NULL));
    OK(tfx_model_add_zero_padding2d(m, 2, 0, 1, 3, "zpad", NULL));
    OK(tfx_model_add_activation(m, TFX_ACTIVATION_HARD_SIGMOID, 0.0f, "hsig", NULL));
    c.activation = TFX_ACTIVATION_RELU;
    c.padding = TFX_PADDING_EXPLICIT;
    c.kernel_h = 4;
    c.stride_h = c.stride_w = 2;
    c.pad_top = 3, c.pad_bottom = 1, c.pad_left = 0, c.pad_right = 2;
    c.name = "conv_explicit";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_pool2d_options p = TFX_POOL2D_OPTIONS_INIT;
    p.pool_h = p.pool_w = 3;
    p.stride_h = p.stride_w = 1;
    p.padding = TFX_PADDING_EXPLICIT;
    p.pad_top = 2, p.pad_bottom = 1, p.pad_left = 1, p.pad_right = 0;
    p.name = "max_explicit";
    OK(tfx_model_add_max_pooling2d(m, &p, NULL));
    p.count_include_pad = 1;
    p.name = "avg_explicit_count_pad";
    OK(tfx_model_add_average_pooling2d(m, &p, NULL));
    p.padding = TFX_PADDING_SAME;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 0;
    p.name = "avg_same_count_pad";
    OK(tfx_model_add_average_pooling2d(m, &p, NULL));
    c.padding = TFX_PADDING_VALID;
    c.pad_top = c.pad_bottom = c.pad_left = c.pad_right = 0;
    c.kernel_h = c.kernel_w = 2;
    c.stride_h = c.stride_w = 1;
    c.groups = 2;
    c.filters = 6;
    c.name = "conv_groups";
    OK(tfx_model_add_conv2d(m, &c, NULL));
    tfx_depthwise_conv2d_options dw = TFX_DEPTHWISE_CONV2D_OPTIONS_INIT;
    dw.depth_multiplier = 2;
    dw.padding = TFX_PADDING_EXPLICIT;
    dw.pad_top = dw.pad_right = 1;
    dw.activation = TFX_ACTIVATION_RELU6;
    dw.name = "depthwise";
    OK(tfx_model_add_depthwise_conv2d(m, &dw, NULL));
    OK(tfx_model_add_reshape(m, -1, 3, 4, "reshape", NULL));
    OK(tfx_model_add_global_max_pooling2d(m, NULL, NULL));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    d.activation = TFX_ACTIVATION_CLIP;
    d.clip_min = 0.0f;
    d.clip_max = 0.125f;
    d.name = "dense_clip";
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

/* Configuration record length of layer i in a file. */
static size_t layer_cfg_len(const uint8_t *b, size_t i)
{
    size_t c = layer_cfg_off(b, i) - 2;
    return (size_t)b[c] | (size_t)b[c + 1] << 8;
}

static void test_roundtrip_new_options(void **state)
{
    (void)state;
    tfx_model *m = new_options_model();
    size_t n;
    uint8_t *b = save_mem(m, &n);
    tfx_model *l = NULL;
    OK(tfx_model_load_from_memory(&l, b, n));
    assert_same_predictions(m, l, 3);
    assert_int_equal(tfx_model_layer_count(l), tfx_model_layer_count(m));
    for (size_t i = 0; i < tfx_model_layer_count(m); i++)
        assert_memory_equal(&tfx_model_layer(m, i)->cfg, &tfx_model_layer(l, i)->cfg, sizeof(tfx__layer_config));
    /* Records grow only where a new field is used: 0.1's lengths otherwise (older readers load
     * such files; they refuse the longer records). */
    assert_int_equal(layer_cfg_len(b, 0), 60); /* Conv2D with clip: the appended fields */
    assert_int_equal(layer_cfg_len(b, 1), 36); /* Conv2D hard swish: 0.1's record */
    assert_int_equal(layer_cfg_len(b, 2), 8);  /* Activation relu6 */
    assert_int_equal(layer_cfg_len(b, 3), 12); /* Activation clip */
    assert_int_equal(layer_cfg_len(b, 4), 16); /* ZeroPadding2D */
    assert_int_equal(layer_cfg_len(b, 6), 60); /* Conv2D explicit padding */
    assert_int_equal(layer_cfg_len(b, 7), 40); /* MaxPooling2D explicit padding */
    assert_int_equal(layer_cfg_len(b, 9), 40); /* AveragePooling2D SAME counting the padding */
    assert_int_equal(layer_cfg_len(b, 10), 60); /* Conv2D groups */
    assert_int_equal(layer_cfg_len(b, 11), 56); /* DepthwiseConv2D */
    assert_int_equal(layer_cfg_len(b, 12), 12); /* Reshape */
    assert_int_equal(layer_cfg_len(b, 14), 20); /* Dense clip */
    size_t n2;
    uint8_t *b2 = save_mem(l, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(b, b2, n);
    free(b2);
    tfx_model_free(l);

    /* Hostile records of the new fields. */
    hostile h;
    const size_t C0 = layer_cfg_off(b, 0), C1 = layer_cfg_off(b, 1), C3 = layer_cfg_off(b, 3);
    h = fresh(b, n), wrf(h.b + C0 + 36, -0.5f); /* clip max == min */
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('conv_clip'): clip bounds -0.5..-0.5");
    h = fresh(b, n), wrf(h.b + C0 + 36, NAN);
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('conv_clip'): clip bounds");
    h = fresh(b, n), wr32(h.b + C0 + 24, TFX_ACTIVATION_RELU); /* a clip max without clip */
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('conv_clip'): clip max = 0.75 must be 0 for activation relu");
    h = fresh(b, n), wrf(h.b + C3 + 8, -INFINITY);
    HOSTILE(h, TFX_EFORMAT, "layer 3 ('clip'): clip bounds -0.25..-inf");
    h = fresh(b, n), wr32(h.b + C3, TFX_ACTIVATION_HARD_SWISH + 1);
    HOSTILE(h, TFX_EFORMAT, "layer 3 ('clip'): unknown activation 12");
    h = fresh(b, n), wr32(h.b + C1 + 24, TFX_ACTIVATION_CLIP); /* clip in a short record: max 0 */
    HOSTILE(h, TFX_EFORMAT, "layer 1 ('conv_hswish'): clip bounds 0..0");
    const size_t C4 = layer_cfg_off(b, 4);
    h = fresh(b, n), wr32(h.b + C4 + 12, (uint32_t)-1);
    HOSTILE(h, TFX_EFORMAT, "layer 4 ('zpad'): pad_right = -1 must be in 0..1048576");
    h = fresh(b, n), wr32(h.b + C4, 1 << 20), wr32(h.b + C4 + 4, 1 << 20);
    HOSTILE(h, TFX_EFORMAT, "layer 4 ('zpad'): padding 9x8 to 2097161x12 is larger than 1048576");
    const size_t C6 = layer_cfg_off(b, 6), C7 = layer_cfg_off(b, 7), C8 = layer_cfg_off(b, 8);
    h = fresh(b, n), wr32(h.b + C6 + 20, TFX_PADDING_SAME); /* pads without explicit padding */
    HOSTILE(h, TFX_EFORMAT, "layer 6 ('conv_explicit'): pads (3, 1, 0, 2) must be 0 unless the padding is explicit");
    h = fresh(b, n), wr32(h.b + C6 + 20, 3);
    HOSTILE(h, TFX_EFORMAT, "layer 6 ('conv_explicit'): padding = 3 must be in 0..2");
    h = fresh(b, n), wr32(h.b + C6 + 44, (uint32_t)-2);
    HOSTILE(h, TFX_EFORMAT, "layer 6 ('conv_explicit'): pad_bottom = -2");
    h = fresh(b, n), wr32(h.b + C6 + 40, 0), wr32(h.b + C6 + 44, 0), wr32(h.b + C6 + 4, 12); /* 12 > 11 + 0 */
    HOSTILE(h, TFX_EFORMAT, "layer 6 ('conv_explicit'): kernel 12x3 does not fit the 11x12 input padded by (top 0, "
                            "bottom 0, left 0, right 2)");
    h = fresh(b, n), wr32(h.b + C7 + 20, 3); /* pad top 3 with a 3x3 pool: a window of padding only */
    HOSTILE(h, TFX_EFORMAT, "layer 7 ('max_explicit'): pads (top 3, bottom 1, left 1, right 0) must be smaller");
    h = fresh(b, n), wr32(h.b + C7 + 36, 1);
    HOSTILE(h, TFX_EFORMAT, "layer 7 ('max_explicit'): count_include_pad = 1 must be in 0..0");
    h = fresh(b, n), wr32(h.b + C8 + 36, 2);
    HOSTILE(h, TFX_EFORMAT, "layer 8 ('avg_explicit_count_pad'): count_include_pad = 2 must be in 0..1");
    const size_t C11 = layer_cfg_off(b, 10), C12 = layer_cfg_off(b, 11);
    h = fresh(b, n), wr32(h.b + C11 + 56, 3); /* 4 channels, 6 filters */
    HOSTILE(h, TFX_EFORMAT, "layer 10 ('conv_groups'): groups = 3 must divide the 4 input channels and the 6 filters");
    h = fresh(b, n), wr32(h.b + C11 + 56, -1);
    HOSTILE(h, TFX_EFORMAT, "layer 10 ('conv_groups'): groups = -1 must be in 1..1048576");
    h = fresh(b, n), wr32(h.b + C11 + 56, 1); /* a dense conv: more weights than the file holds */
    HOSTILE(h, TFX_EFORMAT, "layer 10 ('conv_groups'): 54 trainable and 0 non-trainable weights, the architecture "
                            "needs 102");
    h = fresh(b, n), wr32(h.b + C12 + 20, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 11 ('depthwise'): depth_multiplier = 0 must be in 1..1048576");
    h = fresh(b, n), wr32(h.b + C12 + 20, 1 << 20);
    HOSTILE(h, TFX_EFORMAT, "layer 11 ('depthwise'): 6 channels x depth_multiplier 1048576 is more than");
    const size_t C13 = layer_cfg_off(b, 12);
    h = fresh(b, n), wr32(h.b + C13 + 4, 5);
    HOSTILE(h, TFX_EFORMAT, "layer 12 ('reshape'): target shape 12x5x4 has 240 values, the input 6x2x12 has 144");
    h = fresh(b, n), wr32(h.b + C13, 0);
    HOSTILE(h, TFX_EFORMAT, "layer 12 ('reshape'): height = 0 must be in 1..1048576");
    /* Every byte of the new records edited (valid CRC): refused with a message, or a model
     * that predicts. */
    static const uint8_t masks[] = {0xff, 0x01, 0x80, 0x40};
    const size_t first = layer_cfg_off(b, 0) - 2, last = weights_off(b);
    uint8_t *e = malloc(n);
    assert_non_null(e);
    for (size_t pos = first; pos < last; pos += under_valgrind() ? 7 : 1)
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(e, b, n);
            e[pos] ^= masks[k];
            fix_crc(e, n);
            tfx_model *got = NULL;
            tfx_error_clear();
            int rc = tfx_model_load_from_memory(&got, e, n);
            if (rc == TFX_OK) {
                int in[3], out[3];
                OK(tfx_model_input_shape(got, in));
                OK(tfx_model_output_shape(got, out));
                float *xv = calloc((size_t)in[0] * in[1] * in[2], sizeof(float));
                float *yv = calloc((size_t)out[0] * out[1] * out[2], sizeof(float));
                assert_true(xv && yv);
                OK(tfx_model_predict(got, xv, 1, yv));
                free(xv);
                free(yv);
                tfx_model_free(got);
            } else if (rc != TFX_EFORMAT || got || !tfx_error_last()->message[0]) {
                fail_msg("edited byte %zu: rc %d, message \"%s\"", pos, rc, tfx_error_last()->message);
            }
        }
    free(e);
    h = fresh(b, n), wr32(h.b + C0 - 2, 38); /* neither length */
    HOSTILE(h, TFX_EFORMAT, "layer 0 ('conv_clip'): configuration of 38 bytes, a Conv2D has 36 or 60");
    free(b);
    tfx_model_free(m);
}

/* Build a file with an extra section appended after the two standard ones. */
static uint8_t *with_extra_section(const uint8_t *o, size_t n, uint32_t type, uint32_t flags, size_t extra,
                                   size_t *out_n)
{
    size_t body = n - 4 - 48; /* the two payloads */
    *out_n = 16 + 3 * 16 + body + extra + 4;
    uint8_t *b = malloc(*out_n);
    assert_non_null(b);
    memcpy(b, o, 16);
    wr32(b + 12, 3);
    memcpy(b + 16, o + 16, 32);
    wr32(b + 48, type);
    wr32(b + 52, flags);
    wr64(b + 56, extra);
    memcpy(b + 64, o + 48, body);
    memset(b + 64 + body, 0x5a, extra);
    fix_crc(b, *out_n);
    return b;
}

static void test_optional_and_required_sections(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n, n2;
    uint8_t *o = save_mem(m, &n);
    /* Unknown optional sections are skipped. */
    uint32_t skipped[] = {77, 0xFFFFFFFFu};
    for (size_t i = 0; i < 2; i++) {
        uint8_t *b = with_extra_section(o, n, skipped[i], 0, 13, &n2);
        tfx_model *l;
        OK(tfx_model_load_from_memory(&l, b, n2));
        assert_same_predictions(m, l, 2);
        tfx_model_free(l);
        free(b);
    }
    /* Unknown required sections are rejected; the optimizer section (type 3) is known now: a
     * malformed one is rejected, optional or required. */
    uint8_t *b = with_extra_section(o, n, 77, TFX__SECTION_REQUIRED, 13, &n2);
    tfx_model *l = NULL;
    CHECK_ERR(tfx_model_load_from_memory(&l, b, n2), TFX_EFORMAT, "section 2: required section type 77");
    assert_null(l);
    free(b);
    b = with_extra_section(o, n, TFX__SECTION_OPTIMIZER, TFX__SECTION_REQUIRED, 0, &n2);
    CHECK_ERR(tfx_model_load_from_memory(&l, b, n2), TFX_EFORMAT, "optimizer section: 0 bytes, shorter");
    free(b);
    b = with_extra_section(o, n, TFX__SECTION_OPTIMIZER, 0, 13, &n2);
    CHECK_ERR(tfx_model_load_from_memory(&l, b, n2), TFX_EFORMAT, "optimizer section: 13 bytes, shorter");
    assert_null(l);
    free(b);
    free(o);
    tfx_model_free(m);
}

/* ---- atomic writes ---- */

static void test_injected_write_failure(void **state)
{
    (void)state;
    tfx_model *a = small_model(), *bm = small_model();
    randomise(bm, 1234); /* different weights, same size */
    size_t na, nb;
    uint8_t *ba = save_mem(a, &na), *bb = save_mem(bm, &nb);
    assert_int_equal(na, nb);
    assert_memory_not_equal(ba, bb, na);

    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.tfx", dir);
    OK(tfx_model_save(a, path, NULL));
    long cuts[] = {0, 1, 16, 47, (long)na / 2, (long)na - 5, (long)na - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        tfx__file_fail_after_bytes(cuts[i]);
        CHECK_ERR(tfx_model_save(bm, path, NULL), TFX_EIO, path);
        tfx__file_fail_after_bytes(-1);
        assert_non_null(strstr(tfx_error_last()->message, "previous file is unchanged"));
        size_t nf;
        uint8_t *f = read_whole(path, &nf);
        assert_non_null(f);
        assert_int_equal(nf, na);
        assert_memory_equal(f, ba, na);
        free(f);
        assert_int_equal(count_entries(dir), 1);
        tfx_model *l;
        OK(tfx_model_load(&l, path));
        assert_same_predictions(a, l, 1);
        tfx_model_free(l);
    }
    /* With the hook off the new model replaces the old one. */
    OK(tfx_model_save(bm, path, NULL));
    size_t nf;
    uint8_t *f = read_whole(path, &nf);
    assert_non_null(f);
    assert_int_equal(nf, nb);
    assert_memory_equal(f, bb, nb);
    assert_int_equal(count_entries(dir), 1);
    free(f);
    /* A failure when no file existed leaves no file at all. */
    char path2[320];
    snprintf(path2, sizeof path2, "%s/new.tfx", dir);
    tfx__file_fail_after_bytes(10);
    CHECK_ERR(tfx_model_save(a, path2, NULL), TFX_EIO, path2);
    tfx__file_fail_after_bytes(-1);
    assert_int_equal(count_entries(dir), 1);
    free(ba);
    free(bb);
    tfx_model_free(a);
    tfx_model_free(bm);
    remove_dir(dir);
}

static void test_paths(void **state)
{
    (void)state;
    tfx_model *m = small_model(), *l = (tfx_model *)1;
    CHECK_ERR(tfx_model_save(m, "/nonexistent-tfx-dir/sub/model.tfx", NULL), TFX_EIO,
              "'/nonexistent-tfx-dir/sub/model.tfx'");
    CHECK_ERR(tfx_model_load(&l, "/nonexistent-tfx-dir/model.tfx"), TFX_EIO, "cannot open '/nonexistent-tfx-dir/model.tfx'");
    assert_null(l);
    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    /* The target is a directory: the rename fails, the temporary file is removed. */
    snprintf(path, sizeof path, "%s/adir", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    CHECK_ERR(tfx_model_save(m, path, NULL), TFX_EIO, path);
    assert_int_equal(count_entries(dir), 1);
    CHECK_ERR(tfx_model_load(&l, path), TFX_EIO, "is a directory");
    rmdir(path);
    /* A file that is not a model, and an empty one: format errors naming the path. */
    snprintf(path, sizeof path, "%s/text.tfx", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs("hello, this is not a model file at all\n", f);
    fclose(f);
    CHECK_ERR(tfx_model_load(&l, path), TFX_EFORMAT, "bad magic");
    assert_non_null(strstr(tfx_error_last()->message, path));
    f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    CHECK_ERR(tfx_model_load(&l, path), TFX_EFORMAT, "bad magic");
    unlink(path);
    /* Saved files get ordinary permissions (not mkstemp's 0600) under the umask. */
    mode_t old = umask(022);
    snprintf(path, sizeof path, "%s/perm.tfx", dir);
    OK(tfx_model_save(m, path, NULL));
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    umask(old);
    tfx_model_free(m);
    remove_dir(dir);
}

static void test_null_and_bad_args(void **state)
{
    (void)state;
    tfx_model *m = small_model(), *l = (tfx_model *)1;
    size_t n = 0;
    CHECK_ERR(tfx_model_save(NULL, "x.tfx", NULL), TFX_EINVAL, "'m' is NULL");
    CHECK_ERR(tfx_model_save(m, NULL, NULL), TFX_EINVAL, "'path' is NULL");
    CHECK_ERR(tfx_model_save(m, "", NULL), TFX_EINVAL, "path is empty");
    CHECK_ERR(tfx_model_load(NULL, "x.tfx"), TFX_EINVAL, "'out' is NULL");
    CHECK_ERR(tfx_model_load(&l, NULL), TFX_EINVAL, "'path' is NULL");
    assert_null(l);
    l = (tfx_model *)1;
    CHECK_ERR(tfx_model_load_from_memory(&l, NULL, 10), TFX_EINVAL, "'data' is NULL");
    assert_null(l);
    CHECK_ERR(tfx_model_load_from_memory(NULL, "x", 1), TFX_EINVAL, "'out' is NULL");
    CHECK_ERR(tfx_model_save_to_memory(NULL, NULL, NULL, 0, &n), TFX_EINVAL, "'m' is NULL");
    CHECK_ERR(tfx_model_save_to_memory(m, NULL, NULL, 0, NULL), TFX_EINVAL, "'size' is NULL");
    CHECK_ERR(tfx_model_save_to_memory(m, NULL, NULL, 5, &n), TFX_EINVAL, "buf is NULL but capacity is 5");
    uint8_t small[8];
    CHECK_ERR(tfx_model_save_to_memory(m, NULL, small, sizeof small, &n), TFX_EINVAL, "the buffer holds 8 bytes");
    assert_true(n > sizeof small); /* still reports the size */
    tfx_save_options o;
    CHECK_ERR(tfx_save_options_init(NULL, 1), TFX_EINVAL, "'opts' is NULL");
    CHECK_ERR(tfx_save_options_init(&o, 0), TFX_EVERSION, "version 0");
    CHECK_ERR(tfx_save_options_init(&o, 2), TFX_EVERSION, "version 2");
    OK(tfx_save_options_init(&o, 1));
    assert_int_equal(o.version, 1);
    assert_int_equal(o.include_optimizer, 0);
    o.version = 9;
    CHECK_ERR(tfx_model_save_to_memory(m, &o, NULL, 0, &n), TFX_EVERSION, "options version 9");
    o.version = 1;
    o.include_optimizer = 1; /* an uncompiled model has no optimizer state */
    CHECK_ERR(tfx_model_save(m, "x.tfx", &o), TFX_ESTATE, "include_optimizer: the model is not compiled");
    o.include_optimizer = 0;
    OK(tfx_model_save_to_memory(m, &o, NULL, 0, &n));
    tfx_model_free(m);
}

/* Weights the loader would reject are refused at save time, and nothing is written. */
static void test_save_refuses_unloadable_weights(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/nan.tfx", dir);
    size_t n;
    m->params[3] = NAN;
    CHECK_ERR(tfx_model_save(m, path, NULL), TFX_EINVAL, "layer 0 'c1': trainable weight 3 is not finite");
    CHECK_ERR(tfx_model_save_to_memory(m, NULL, NULL, 0, &n), TFX_EINVAL, "not finite");
    m->params[3] = 0.0f;
    tfx_layer *bn = tfx_model_layer(m, 1);
    bn->state[bn->n_state / 2 + 1] = -0.5f;
    CHECK_ERR(tfx_model_save(m, path, NULL), TFX_EINVAL, "moving variance 1 is negative");
    assert_int_equal(count_entries(dir), 0);
    tfx_model_free(m);
    remove_dir(dir);
}

/* ---- allocation failures ---- */

static void test_allocation_failures(void **state)
{
    (void)state;
    tfx_model *m = small_model();
    size_t n;
    uint8_t *b = save_mem(m, &n);
    char dir[256], path[300];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/alloc.tfx", dir);
    OK(tfx_model_save(m, path, NULL));
    int done_mem = 0, done_file = 0, done_save = 0;
    long k;
    for (k = 1; k < 1000 && !(done_mem && done_file && done_save); k++) {
        tfx_model *l = (tfx_model *)1;
        if (!done_mem) {
            tfx__alloc_fail_after(k);
            int rc = tfx_model_load_from_memory(&l, b, n);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                done_mem = 1;
                assert_same_predictions(m, l, 1);
                tfx_model_free(l);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
                assert_null(l);
            }
        }
        if (!done_file) {
            l = (tfx_model *)1;
            tfx__alloc_fail_after(k);
            int rc = tfx_model_load(&l, path);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) {
                done_file = 1;
                tfx_model_free(l);
            } else {
                assert_int_equal(rc, TFX_ENOMEM);
                assert_null(l);
            }
        }
        if (!done_save) {
            tfx__alloc_fail_after(k);
            int rc = tfx_model_save(m, path, NULL);
            tfx__alloc_fail_after(0);
            if (rc == TFX_OK) done_save = 1;
            else assert_int_equal(rc, TFX_ENOMEM);
            assert_int_equal(count_entries(dir), 1);
        }
    }
    assert_true(done_mem && done_file && done_save);
    free(b);
    tfx_model_free(m);
    remove_dir(dir);
}


/* The file holds a Dense kernel in Keras's [inputs][units] order although the model stores it
 * [units][inputs] (lib/layers/dense.c): the bytes of a 3 -> 2 kernel set as 1..6 appear in that
 * order, a non-finite weight is reported at its Keras index, and loading gives the kernel back. */
static void test_dense_kernel_order_in_file(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    assert_int_equal(tfx_model_new(&m, 1, 1, 3), TFX_OK);
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 2;
    tfx_layer *l = NULL;
    assert_int_equal(tfx_model_add_dense(m, &d, &l), TFX_OK);
    const float kernel[6] = {1, 2, 3, 4, 5, 6}, bias[2] = {7, 8};
    assert_int_equal(tfx_layer_set_weights(l, kernel, bias), TFX_OK);
    size_t size = 0;
    assert_int_equal(tfx_model_save_to_memory(m, NULL, NULL, 0, &size), TFX_OK);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    assert_int_equal(tfx_model_save_to_memory(m, NULL, buf, size, &size), TFX_OK);
    uint8_t want[32];
    for (int i = 0; i < 8; i++) {
        float f = i < 6 ? kernel[i] : bias[i - 6];
        uint32_t u;
        memcpy(&u, &f, 4);
        for (int b = 0; b < 4; b++) want[4 * i + b] = (uint8_t)(u >> (8 * b));
    }
    int found = 0;
    for (size_t i = 0; i + sizeof want <= size; i++) found |= memcmp(buf + i, want, sizeof want) == 0;
    assert_true(found);
    tfx_model *back = NULL;
    assert_int_equal(tfx_model_load_from_memory(&back, buf, size), TFX_OK);
    float k2[6], b2[2];
    assert_int_equal(tfx_layer_get_weights(tfx_model_layer(back, 0), k2, b2), TFX_OK);
    assert_memory_equal(k2, kernel, sizeof kernel);
    assert_memory_equal(b2, bias, sizeof bias);
    /* kernel[4] (input 2, unit 0) not finite: named by its Keras index */
    m->params[0 * 3 + 2] = NAN; /* stored [unit 0][input 2] */
    assert_int_equal(tfx_model_save_to_memory(m, NULL, buf, size, &size), TFX_EINVAL);
    assert_non_null(strstr(tfx_error_last()->message, "trainable weight 4 "));
    free(buf);
    tfx_model_free(back);
    tfx_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_kind),
        cmocka_unit_test(test_roundtrip_empty_model),
        cmocka_unit_test(test_roundtrip_new_options),
        cmocka_unit_test(test_handmade_file),
        cmocka_unit_test(test_corrupt_every_byte),
        cmocka_unit_test(test_edit_every_byte_with_valid_crc),
        cmocka_unit_test(test_every_truncation),
        cmocka_unit_test(test_hostile_headers),
        cmocka_unit_test(test_optional_and_required_sections),
        cmocka_unit_test(test_load_skips_init),
        cmocka_unit_test(test_injected_write_failure),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_null_and_bad_args),
        cmocka_unit_test(test_save_refuses_unloadable_weights),
        cmocka_unit_test(test_allocation_failures),
        cmocka_unit_test(test_dense_kernel_order_in_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
