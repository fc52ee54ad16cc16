/* Hostile inputs for the IDX and CIFAR-10 readers: truncation sweeps, lying headers, wrong
 * magic, gzip garbage, empty files, directories, missing files, random mutations and
 * allocation failures. Every one must give TFX_EFORMAT / TFX_EIO / TFX_ENOMEM with a message
 * naming the file, never a crash, a leak or an allocation sized from a header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "core/internal.h"
#include "data/data_internal.h"
#include "data_helpers.h"
#include "testing.h"
#include "tfx/tfx.h"

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Load images file `iname` with the valid labels file "lab" (or the reverse). */
static int load_named(const char *iname, const char *lname)
{
    char ip[512], lp[512];
    strcpy(ip, th_path(iname));
    strcpy(lp, th_path(lname));
    tfx_dataset *ds = NULL;
    int rc = tfx_dataset_load_idx(&ds, ip, lp, NULL);
    if (rc == 0) assert_non_null(ds);
    else assert_null(ds);
    tfx_dataset_free(ds);
    return rc;
}

static int load_img(const void *b, size_t len)
{
    th_write("bad-img", b, len);
    return load_named("bad-img", "lab");
}

static int load_lab(const void *b, size_t len)
{
    th_write("bad-lab", b, len);
    return load_named("img", "bad-lab");
}

static int load_cifar(const void *b, size_t len)
{
    th_write("bad.bin", b, len);
    const char *p = th_path("bad.bin");
    tfx_dataset *ds = NULL;
    int rc = tfx_dataset_load_cifar10(&ds, &p, 1, NULL);
    if (rc == 0) assert_non_null(ds);
    else assert_null(ds);
    tfx_dataset_free(ds);
    return rc;
}

enum { N = 3, H = 4, W = 5 };

static void write_valid_pair(void)
{
    size_t il, ll;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    th_write("img", img, il);
    th_write("lab", lab, ll);
    free(img);
    free(lab);
}

static void test_idx_headers(void **state)
{
    (void)state;
    write_valid_pair();
    size_t il, ll;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *b = malloc(il + 64);
    EXPECT(load_img(img, 0), TFX_EFORMAT, "bad-img", "too short");
    EXPECT(load_lab(lab, 0), TFX_EFORMAT, "bad-lab", "too short");

    /* Wrong magic: a labels file as images, an images file as labels, a PNG, a float IDX. */
    EXPECT(load_img(lab, ll), TFX_EFORMAT, "bad-img", "1 dimensions");
    EXPECT(load_lab(img, il), TFX_EFORMAT, "bad-lab", "3 dimensions");
    static const unsigned char png[16] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    EXPECT(load_img(png, sizeof png), TFX_EFORMAT, "bad-img", "not an IDX file");
    memcpy(b, img, il);
    b[2] = 0x0D;
    EXPECT(load_img(b, il), TFX_EFORMAT, "bad-img", "element type 0x0d");

    /* Lying counts: n larger than the data, n smaller (trailing bytes), n = 0, n over the limit. */
    const uint32_t counts[4] = {N + 1, N - 1, 0, TFX_DATA_MAX_SAMPLES + 1};
    const char *words[4] = {"truncated", "unexpected bytes", "must be 1..", "must be 1.."};
    for (int k = 0; k < 4; k++) {
        memcpy(b, img, il);
        put_be32(b + 4, counts[k]);
        EXPECT(load_img(b, il), TFX_EFORMAT, "bad-img", words[k]);
    }
    /* Huge n / dims that would overflow or exhaust memory: rejected before any allocation. */
    const uint32_t dims[][3] = {{0xffffffffu, 0xffffffffu, 0xffffffffu}, {60000, 0, 28}, {60000, 28, 0},
                                {1, TFX_DATA_MAX_DIM + 1, 1}, {TFX_DATA_MAX_SAMPLES, TFX_DATA_MAX_DIM, TFX_DATA_MAX_DIM},
                                {60000, 28, 28}};
    for (size_t k = 0; k < sizeof dims / sizeof dims[0]; k++) {
        memcpy(b, img, il);
        for (int j = 0; j < 3; j++) put_be32(b + 4 + 4 * j, dims[k][j]);
        tfx_dataset *ds = NULL;
        tfx__alloc_fail_after(0);
        int rc = tfx__idx_from_memory(b, il, lab, ll, "hdr", NULL, NULL, &ds);
        EXPECT(rc, TFX_EFORMAT, "hdr", NULL);
        assert_int_equal(tfx__alloc_count(), 0); /* not one allocation for a plain file */
    }
    /* Truncated header (magic only). */
    EXPECT(load_img(img, 10), TFX_EFORMAT, "bad-img", "truncated IDX header");

    /* Labels: count lies, count differs from the images, label beyond the classes. */
    memcpy(b, lab, ll);
    put_be32(b + 4, N + 5);
    EXPECT(load_lab(b, ll), TFX_EFORMAT, "bad-lab", "truncated");
    put_be32(b + 4, N - 1);
    EXPECT(load_lab(b, ll), TFX_EFORMAT, "bad-lab", "unexpected bytes");
    size_t l2;
    unsigned char *lab2 = th_idx_labels(N + 1, &l2);
    EXPECT(load_lab(lab2, l2), TFX_EFORMAT, "holds 4 labels", "holds 3 images");
    memcpy(b, lab, ll);
    b[8 + 2] = 10;
    EXPECT(load_lab(b, ll), TFX_EFORMAT, "bad-lab", "label 10 of sample 2");
    free(lab2);
    free(b);
    free(img);
    free(lab);
}

static void test_gzip_garbage(void **state)
{
    (void)state;
    write_valid_pair();
    size_t il, ll, gl;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *gz = th_gzip(img, il, &gl);
    unsigned char *b = malloc(gl + 64);

    static const unsigned char junk[12] = {0x1f, 0x8b, 0x08, 0x00, 1, 2, 3, 4, 5, 6, 7, 8};
    EXPECT(load_img(junk, sizeof junk), TFX_EFORMAT, "bad-img", "gzip");
    static const unsigned char magic_only[2] = {0x1f, 0x8b};
    EXPECT(load_img(magic_only, 2), TFX_EFORMAT, "bad-img", "truncated");
    memcpy(b, gz, gl);
    b[3] = 0xE0; /* reserved flag bits */
    EXPECT(load_img(b, gl), TFX_EFORMAT, "bad-img", "corrupt gzip");
    memcpy(b, gz, gl);
    b[gl - 8] ^= 0x55; /* CRC32 of the data */
    EXPECT(load_img(b, gl), TFX_EFORMAT, "bad-img", "corrupt gzip");
    memcpy(b, gz, gl);
    b[gl - 4] ^= 0x01; /* ISIZE */
    EXPECT(load_img(b, gl), TFX_EFORMAT, "bad-img", "corrupt gzip");
    memcpy(b, gz, gl);
    b[12] ^= 0xff; /* inside the deflate data */
    int rc = load_img(b, gl);
    assert_int_equal(rc, TFX_EFORMAT);
    memcpy(b, gz, gl);
    memcpy(b + gl, "TRAILING", 8);
    EXPECT(load_img(b, gl + 8), TFX_EFORMAT, "bad-img", "trailing garbage");

    /* A lying header inside valid gzip. */
    unsigned char *liar = malloc(il);
    memcpy(liar, img, il);
    put_be32(liar + 4, 1000000);
    size_t ll2;
    unsigned char *gliar = th_gzip(liar, il, &ll2);
    EXPECT(load_img(gliar, ll2), TFX_EFORMAT, "bad-img", "truncated");

    /* A gzip bomb: 8 MB of zeros in a few kB; with a 1 MB cap it stops at the cap. */
    size_t big = (size_t)8 << 20, bl;
    unsigned char *zeros = calloc(1, big);
    unsigned char *bomb = th_gzip(zeros, big, &bl);
    assert_true(bl < 20000);
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.max_bytes = (size_t)1 << 20;
    tfx_dataset *ds = NULL;
    EXPECT(tfx__idx_from_memory(bomb, bl, lab, ll, "bomb", NULL, &o, &ds), TFX_EFORMAT, "bomb", "limit");
    /* The same cap applies to plain files read from disk. */
    th_write("zeros", zeros, ((size_t)1 << 20) + 1);
    char zp[512], lp[512];
    strcpy(zp, th_path("zeros"));
    strcpy(lp, th_path("lab"));
    EXPECT(tfx_dataset_load_idx(&ds, zp, lp, &o), TFX_EFORMAT, "zeros", "limit");
    /* And the gunzip buffer never grows beyond twice the real output. */
    unsigned char *out = NULL;
    size_t olen = 0;
    EXPECT(tfx__gunzip(gz, gl, 1 << 20, "x", &out, &olen), 0, NULL, NULL);
    assert_int_equal(olen, il);
    assert_memory_equal(out, img, il);
    tfx__free(out);
    free(zeros);
    free(bomb);
    free(liar);
    free(gliar);
    free(b);
    free(gz);
    free(img);
    free(lab);
}

static void test_files_and_dirs(void **state)
{
    (void)state;
    write_valid_pair();
    mkdir(th_path("adir"), 0700);
    EXPECT(load_named("adir", "lab"), TFX_EIO, "adir", "is a directory");
    EXPECT(load_named("img", "adir"), TFX_EIO, "adir", "is a directory");
    EXPECT(load_named("nope", "lab"), TFX_EIO, "nope", "No such file");
    EXPECT(load_named("img", "nope"), TFX_EIO, "nope", "No such file");
    EXPECT(load_named("img", "lab"), 0, NULL, NULL);

    const char *p = th_path("adir");
    tfx_dataset *ds = NULL;
    EXPECT(tfx_dataset_load_cifar10(&ds, &p, 1, NULL), TFX_EIO, "adir", "is a directory");
    p = th_path("nope.bin");
    EXPECT(tfx_dataset_load_cifar10(&ds, &p, 1, NULL), TFX_EIO, "nope.bin", "No such file");
    /* A directory given where a dataset directory's file should be. */
    mkdir(th_path("cdir"), 0700);
    mkdir(th_path("cdir/test_batch.bin"), 0700);
    EXPECT(tfx_dataset_load_cifar10_dir(&ds, th_path("cdir"), TFX_DATA_TEST, NULL), TFX_EIO, "test_batch.bin",
           "directory");
}

static void test_cifar_hostile(void **state)
{
    (void)state;
    size_t len;
    unsigned char *c = th_cifar(0, 2, &len);
    EXPECT(load_cifar(c, 0), TFX_EFORMAT, "bad.bin", "empty");
    EXPECT(load_cifar(c, 3072), TFX_EFORMAT, "bad.bin", "not a whole number");
    EXPECT(load_cifar(c, 3074), TFX_EFORMAT, "bad.bin", "1 records and 1 bytes over");
    unsigned char save = c[3073];
    c[3073] = 10;
    EXPECT(load_cifar(c, len), TFX_EFORMAT, "bad.bin", "label 10 of record 1");
    c[3073] = 255;
    EXPECT(load_cifar(c, len), TFX_EFORMAT, "bad.bin", "label 255");
    c[3073] = save;
    EXPECT(load_cifar(c, len), 0, NULL, NULL);
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.max_bytes = 3073;
    tfx_dataset *ds = NULL;
    EXPECT(tfx__cifar10_from_memory(c, len, "capped", &o, &ds), TFX_EFORMAT, "capped", "limit");
    o.max_bytes = 0;
    o.offset = 2;
    EXPECT(tfx__cifar10_from_memory(c, len, "capped", &o, &ds), TFX_EINVAL, "offset 2", NULL);
    EXPECT(tfx__cifar10_from_memory(NULL, 3073, NULL, NULL, &ds), TFX_EINVAL, NULL, NULL);
    free(c);
}

/* Every proper prefix of a valid file is TFX_EFORMAT; the whole file loads. Through the memory
 * parsers for every length, and through the file loaders (every length, or a stride under
 * valgrind). */
static void sweep_idx(const unsigned char *img, size_t il, const unsigned char *lab, size_t ll, int which)
{
    const unsigned char *f = which == 0 ? img : lab;
    size_t flen = which == 0 ? il : ll;
    size_t step = th_valgrind() ? 7 : 1;
    for (size_t k = 0; k <= flen; k++) {
        tfx_dataset *ds = NULL;
        int want = k == flen ? 0 : TFX_EFORMAT;
        int rc = which == 0 ? tfx__idx_from_memory(img, k, lab, ll, "I", "L", NULL, &ds)
                            : tfx__idx_from_memory(img, il, lab, k, "I", "L", NULL, &ds);
        if (rc != want) fail_msg("prefix %zu of %zu (%s): rc %d: %s", k, flen, which ? "labels" : "images", rc,
                                 tfx_error_last()->message);
        if (rc == 0) assert_int_equal(tfx_dataset_count(ds), N);
        else assert_true(strstr(tfx_error_last()->message, which ? "'L'" : "'I'") != NULL);
        tfx_dataset_free(ds);
        if (k % step == 0 || k == flen) {
            rc = which == 0 ? load_img(f, k) : load_lab(f, k);
            if (rc != want) fail_msg("file prefix %zu of %zu: rc %d: %s", k, flen, rc, tfx_error_last()->message);
        }
    }
}

static void test_truncation_sweep_idx(void **state)
{
    (void)state;
    write_valid_pair();
    size_t il, ll, gil, gll;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *gimg = th_gzip(img, il, &gil), *glab = th_gzip(lab, ll, &gll);
    sweep_idx(img, il, lab, ll, 0);
    sweep_idx(img, il, lab, ll, 1);
    /* gzip: the valid partner file stays plain, the swept one is gzip. */
    sweep_idx(gimg, gil, lab, ll, 0);
    write_valid_pair();
    sweep_idx(img, il, glab, gll, 1);
    free(img);
    free(lab);
    free(gimg);
    free(glab);
}

static void test_truncation_sweep_cifar(void **state)
{
    (void)state;
    size_t len;
    unsigned char *c = th_cifar(0, 2, &len);
    size_t step = th_valgrind() ? 61 : 1;
    for (size_t k = 0; k <= len; k++) {
        tfx_dataset *ds = NULL;
        int want = (k == len || k == 3073) ? 0 : TFX_EFORMAT;
        int rc = tfx__cifar10_from_memory(c, k, "C", NULL, &ds);
        if (rc != want) fail_msg("prefix %zu: rc %d: %s", k, rc, tfx_error_last()->message);
        if (rc == 0) assert_int_equal(tfx_dataset_count(ds), k / 3073);
        else assert_non_null(strstr(tfx_error_last()->message, "'C'"));
        tfx_dataset_free(ds);
        if (k % step == 0 || k == len) {
            rc = load_cifar(c, k);
            if (rc != want) fail_msg("file prefix %zu: rc %d: %s", k, rc, tfx_error_last()->message);
        }
    }
    free(c);
}

/* Seeded random byte mutations of valid inputs: the answer is OK (with a sane dataset) or
 * TFX_EFORMAT / TFX_EINVAL, never anything else. A miniature of issue 8's fuzzers. */
static void test_mutations(void **state)
{
    (void)state;
    size_t il, ll, gil, cl;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *gimg = th_gzip(img, il, &gil);
    unsigned char *cif = th_cifar(0, 1, &cl);
    tfx__rng rng;
    tfx__rng_seed(&rng, 12345);
    int rounds = th_valgrind() ? 300 : 3000, ok = 0, bad = 0;
    for (int r = 0; r < rounds; r++) {
        int which = r % 4;
        const unsigned char *src = which == 0 ? img : which == 1 ? lab : which == 2 ? gimg : cif;
        size_t len = which == 0 ? il : which == 1 ? ll : which == 2 ? gil : cl;
        unsigned char *m = malloc(len);
        memcpy(m, src, len);
        int flips = 1 + (int)tfx__rng_below(&rng, 4);
        /* Headers are where the interesting bugs live: bias positions towards the front. */
        for (int k = 0; k < flips; k++) {
            size_t pos = tfx__rng_below(&rng, 2) ? tfx__rng_below(&rng, len < 24 ? len : 24) : tfx__rng_below(&rng, len);
            m[pos] = (unsigned char)tfx__rng_next(&rng);
        }
        size_t mlen = tfx__rng_below(&rng, 8) == 0 ? tfx__rng_below(&rng, len + 1) : len;
        tfx_dataset *ds = NULL;
        int rc;
        if (which == 0 || which == 2) rc = tfx__idx_from_memory(m, mlen, lab, ll, NULL, NULL, NULL, &ds);
        else if (which == 1) rc = tfx__idx_from_memory(img, il, m, mlen, NULL, NULL, NULL, &ds);
        else rc = tfx__cifar10_from_memory(m, mlen, NULL, NULL, &ds);
        if (rc == 0) {
            ok++;
            assert_true(tfx_dataset_count(ds) >= 1);
            size_t per = tfx_dataset_sample_size(ds);
            const float *x = tfx_dataset_images(ds);
            for (size_t i = 0; i < tfx_dataset_count(ds) * per; i++) assert_true(x[i] >= 0.0f && x[i] <= 1.0f);
            for (size_t i = 0; i < tfx_dataset_count(ds); i++)
                assert_true(tfx_dataset_labels(ds)[i] >= 0 && tfx_dataset_labels(ds)[i] < 10);
        } else {
            bad++;
            if (rc != TFX_EFORMAT) fail_msg("round %d: rc %d: %s", r, rc, tfx_error_last()->message);
            assert_null(ds);
        }
        tfx_dataset_free(ds);
        free(m);
    }
    assert_true(ok > 0 && bad > 0);
    free(img);
    free(lab);
    free(gimg);
    free(cif);
}

/* Allocation failure at every step: TFX_ENOMEM, *out NULL, nothing leaked (ASan/valgrind). */
static void test_alloc_failures(void **state)
{
    (void)state;
    size_t il, ll, gil, gll, cl;
    unsigned char *img = th_idx_images(N, H, W, &il), *lab = th_idx_labels(N, &ll);
    unsigned char *gimg = th_gzip(img, il, &gil), *glab = th_gzip(lab, ll, &gll);
    th_write("g-img", gimg, gil);
    th_write("g-lab", glab, gll);
    unsigned char *c = th_cifar(0, 2, &cl);
    th_write("c1.bin", c, cl);
    th_write("c2.bin", c, cl);
    char gi[512], gla[512], c1[512], c2[512];
    strcpy(gi, th_path("g-img"));
    strcpy(gla, th_path("g-lab"));
    strcpy(c1, th_path("c1.bin"));
    strcpy(c2, th_path("c2.bin"));
    const char *cp[2] = {c1, c2};
    for (int target = 0; target < 3; target++) {
        long k;
        for (k = 1; k < 1000; k++) {
            tfx_dataset *ds = (tfx_dataset *)c; /* must come back NULL on failure */
            tfx__alloc_fail_after(k);
            int rc = target == 0   ? tfx_dataset_load_idx(&ds, gi, gla, NULL)
                     : target == 1 ? tfx_dataset_load_cifar10(&ds, cp, 2, NULL)
                                   : tfx__idx_from_memory(gimg, gil, glab, gll, NULL, NULL, NULL, &ds);
            tfx__alloc_fail_after(0);
            if (rc == 0) {
                assert_non_null(ds);
                tfx_dataset_free(ds);
                break;
            }
            if (rc != TFX_ENOMEM) fail_msg("target %d, k = %ld: rc %d: %s", target, k, rc, tfx_error_last()->message);
            assert_null(ds);
        }
        assert_true(k > 2 && k < 1000);
    }
    free(img);
    free(lab);
    free(gimg);
    free(glab);
    free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_headers),
        cmocka_unit_test(test_gzip_garbage),
        cmocka_unit_test(test_files_and_dirs),
        cmocka_unit_test(test_cifar_hostile),
        cmocka_unit_test(test_truncation_sweep_idx),
        cmocka_unit_test(test_truncation_sweep_cifar),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_alloc_failures),
    };
    return cmocka_run_group_tests(tests, th_tmpdir_create, th_tmpdir_remove);
}
