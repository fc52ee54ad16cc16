/* The bounds-checked protobuf reader (lib/core/protobuf.c): round trips through the encoder and
 * every malformed input it must refuse with TFX_EFORMAT and a message naming the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/internal.h"
#include "core/protobuf.h"
#include "tfx/tfx.h"

static void test_round_trip(void **state)
{
    (void)state;
    uint8_t buf[256];
    tfx__pb b = {buf, 0};
    tfx__pb_int64(&b, 1, -5);
    tfx__pb_int64(&b, 2, 300);
    tfx__pb_float(&b, 3, 1.5f);
    tfx__pb_double(&b, 4, 2.25);
    tfx__pb_bytes(&b, 5, "abc", 3);
    tfx__pb_key(&b, 6, TFX__PB_LEN); /* packed int64: 1, 150, -1 */
    tfx__pb_varint(&b, 1 + 2 + 10);
    tfx__pb_varint(&b, 1);
    tfx__pb_varint(&b, 150);
    tfx__pb_varint(&b, UINT64_MAX);
    tfx__pb_key(&b, 7, TFX__PB_LEN); /* packed floats */
    tfx__pb_varint(&b, 8);
    tfx__pb_fixed32(&b, 0x3f800000u);
    tfx__pb_fixed32(&b, 0xc0000000u);

    tfx__pbr r;
    tfx__pbr_init(&r, "t", "", buf, b.n);
    unsigned f, w;
    int64_t v;
    float x;
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(f, 1);
    assert_int_equal(tfx__pbr_int64(&r, w, &v), 0);
    assert_true(v == -5);
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(tfx__pbr_int64(&r, w, &v), 0);
    assert_true(v == 300);
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(tfx__pbr_float(&r, w, &x), 0);
    assert_true(x == 1.5f);
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(w, TFX__PB_FIXED64);
    assert_int_equal(tfx__pbr_skip(&r, w), 0);
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    const uint8_t *d;
    size_t n;
    assert_int_equal(tfx__pbr_bytes(&r, &d, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(d, "abc", 3);
    assert_true(d >= buf && d < buf + b.n); /* in place */
    int64_t *iv = NULL;
    size_t ni = 0, ci = 0;
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(tfx__pbr_append_int64(&r, w, &iv, &ni, &ci, 100), 0);
    assert_int_equal(ni, 3);
    assert_true(iv[0] == 1 && iv[1] == 150 && iv[2] == -1);
    float *fv = NULL;
    size_t nf = 0, cf = 0;
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    assert_int_equal(tfx__pbr_append_float(&r, w, &fv, &nf, &cf, 100), 0);
    assert_int_equal(nf, 2);
    assert_true(fv[0] == 1.0f && fv[1] == -2.0f);
    assert_int_equal(tfx__pbr_left(&r), 0);
    tfx__free(iv);
    tfx__free(fv);
}

static void expect_error(int rc, const char *part)
{
    assert_int_equal(rc, TFX_EFORMAT);
    if (!strstr(tfx_error_last()->message, part)) fail_msg("message '%s' lacks '%s'", tfx_error_last()->message, part);
}

static void test_malformed(void **state)
{
    (void)state;
    tfx__pbr r;
    unsigned f, w;
    uint64_t u;
    const uint8_t *d;
    size_t n;
    /* varint of 11 bytes, of 10 bytes overflowing, cut short */
    uint8_t long_v[11];
    memset(long_v, 0x80, sizeof long_v);
    tfx__pbr_init(&r, "t", "graph", long_v, 11);
    expect_error(tfx__pbr_varint(&r, &u), "varint");
    uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    tfx__pbr_init(&r, "t", "graph", over, 10);
    expect_error(tfx__pbr_varint(&r, &u), "overflows 64 bits");
    uint8_t max[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    tfx__pbr_init(&r, "t", "graph", max, 10);
    assert_int_equal(tfx__pbr_varint(&r, &u), 0);
    assert_true(u == UINT64_MAX);
    tfx__pbr_init(&r, "t", "graph", long_v, 3);
    expect_error(tfx__pbr_varint(&r, &u), "cut short");
    /* a lying length, named with its path and field */
    uint8_t lie[] = {(12 << 3) | 2, 0xa0, 0x1f, 1, 2, 3};
    tfx__pbr_init(&r, "tfx_model_load_onnx", "graph.node[12].attribute[3]", lie, sizeof lie);
    assert_int_equal(tfx__pbr_key(&r, &f, &w), 0);
    expect_error(tfx__pbr_bytes(&r, &d, &n),
                 "graph.node[12].attribute[3] field 12: length 4000 beyond the 3 bytes left");
    assert_non_null(strstr(tfx_error_last()->message, "tfx_model_load_onnx: "));
    /* groups, reserved wire types, field 0 */
    uint8_t grp[] = {(1 << 3) | 3};
    tfx__pbr_init(&r, "t", "", grp, 1);
    expect_error(tfx__pbr_key(&r, &f, &w), "group");
    uint8_t w7[] = {(1 << 3) | 7};
    tfx__pbr_init(&r, "t", "", w7, 1);
    expect_error(tfx__pbr_key(&r, &f, &w), "wire type 7");
    uint8_t f0[] = {0 << 3};
    tfx__pbr_init(&r, "t", "", f0, 1);
    expect_error(tfx__pbr_key(&r, &f, &w), "field number 0");
    /* fixed32/64 cut short, skip of each type cut short */
    uint8_t three[] = {1, 2, 3};
    uint32_t u32;
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_fixed32(&r, &u32), "beyond the 3 bytes left");
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_fixed64(&r, &u), "fixed64");
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_skip(&r, TFX__PB_FIXED64), "fixed64");
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_skip(&r, 3), "wire type 3");
    uint8_t lenlie[] = {9, 0};
    tfx__pbr_init(&r, "t", "", lenlie, 2);
    expect_error(tfx__pbr_skip(&r, TFX__PB_LEN), "length 9 beyond the 1 bytes left");
    /* wire type mismatches */
    int64_t v;
    float x;
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_int64(&r, TFX__PB_FIXED32, &v), "varint");
    tfx__pbr_init(&r, "t", "", three, 3);
    expect_error(tfx__pbr_float(&r, TFX__PB_VARINT, &x), "fixed32");
    /* packed blocks: ending inside a varint, floats not a multiple of 4, over the cap (nothing
     * allocated) */
    int64_t *iv = NULL;
    size_t ni = 0, ci = 0;
    uint8_t bad_end[] = {2, 0x01, 0x80};
    tfx__pbr_init(&r, "t", "", bad_end, sizeof bad_end);
    expect_error(tfx__pbr_append_int64(&r, TFX__PB_LEN, &iv, &ni, &ci, 10), "inside a varint");
    assert_null(iv);
    uint8_t many[] = {5, 1, 2, 3, 4, 5};
    tfx__pbr_init(&r, "t", "", many, sizeof many);
    expect_error(tfx__pbr_append_int64(&r, TFX__PB_LEN, &iv, &ni, &ci, 4), "more than 4 values");
    assert_null(iv);
    float *fv = NULL;
    size_t nf = 0, cf = 0;
    uint8_t odd[] = {3, 0, 0, 0};
    tfx__pbr_init(&r, "t", "", odd, sizeof odd);
    expect_error(tfx__pbr_append_float(&r, TFX__PB_LEN, &fv, &nf, &cf, 10), "not a multiple of 4");
    uint8_t fl[] = {8, 0, 0, 0, 0, 0, 0, 0, 0};
    tfx__pbr_init(&r, "t", "", fl, sizeof fl);
    expect_error(tfx__pbr_append_float(&r, TFX__PB_LEN, &fv, &nf, &cf, 1), "more than 1 values");
    assert_null(fv);
    /* every truncation of a valid message is refused or read to its end, never past it */
    uint8_t msg[64];
    tfx__pb b = {msg, 0};
    tfx__pb_int64(&b, 1, -1);
    tfx__pb_bytes(&b, 2, "hello", 5);
    tfx__pb_float(&b, 3, 2.0f);
    for (size_t cut = 0; cut < b.n; cut++) {
        uint8_t *copy = malloc(cut ? cut : 1);
        memcpy(copy, msg, cut);
        tfx__pbr_init(&r, "t", "", copy, cut);
        int rc = 0;
        while (rc == 0 && tfx__pbr_left(&r) > 0) {
            rc = tfx__pbr_key(&r, &f, &w);
            if (rc == 0) rc = tfx__pbr_skip(&r, w);
        }
        assert_true(rc == 0 || rc == TFX_EFORMAT);
        if (cut == 0 || cut == 11 || cut == 18) assert_int_equal(rc, 0); /* field boundaries */
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_round_trip), cmocka_unit_test(test_malformed)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
