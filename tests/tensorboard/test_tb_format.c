/* File-format layer against research/tfevents.md: CRC32C vectors, masking, protobuf encoding,
 * the worked records of §7 byte for byte, and decoding a record TensorFlow itself wrote. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/protobuf.h"
#include "tb_test_util.h"

static void test_crc32c_vectors(void **state)
{
    (void)state;
    uint8_t b[32];
    assert_int_equal(tfx__crc32c("123456789", 9), 0xE3069283u);
    memset(b, 0, 32);
    assert_int_equal(tfx__crc32c(b, 32), 0x8A9136AAu);
    memset(b, 0xFF, 32);
    assert_int_equal(tfx__crc32c(b, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)i;
    assert_int_equal(tfx__crc32c(b, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++) b[i] = (uint8_t)(31 - i);
    assert_int_equal(tfx__crc32c(b, 32), 0x113FDB5Cu);
    assert_int_equal(tfx__crc32c(NULL, 0), 0u);
    assert_int_equal(tfx__masked_crc32c(NULL, 0), 0xA282EAD8u);
}

/* The constant table equals the one built from the polynomial, bit by bit. */
static void test_crc32c_table(void **state)
{
    (void)state;
    assert_int_equal(tfx__crc32c_table[1], 0xF26B8303u);
    assert_int_equal(tfx__crc32c_table[128], 0x82F63B78u);
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        assert_int_equal(tfx__crc32c_table[i], c);
    }
}

/* Incremental updates over any split give the CRC of the whole. */
static void test_crc32c_incremental(void **state)
{
    (void)state;
    const char *s = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = tfx__crc32c(s, n);
    assert_int_equal(whole, 0x22620404u); /* well-known CRC-32C of this sentence */
    for (size_t k = 0; k <= n; k++)
        assert_int_equal(tfx__crc32c_update(tfx__crc32c_update(0, s, k), s + k, n - k), whole);
}

static void test_masking(void **state)
{
    (void)state;
    /* §1.3 vector 1: payload 1A 11 "CRC test, one two". */
    uint8_t p1[19] = {0x1A, 0x11};
    memcpy(p1 + 2, "CRC test, one two", 17);
    assert_int_equal(tfx__crc32c(p1, 19), 0xF2D95A88u);
    assert_int_equal(tfx__masked_crc32c(p1, 19), 0x5794D08Au);
    /* vector 2: length header for L = 24 */
    const uint8_t h24[8] = {0x18, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(tfx__crc32c(h24, 8), 0x4A65BFE4u);
    assert_int_equal(tfx__masked_crc32c(h24, 8), 0x224B7FA3u);
    /* vector 3: a real TF2 file_version payload */
    const uint8_t fv[24] = {0x09, 0x00, 0x00, 0x80, 0x38, 0x99, 0xD6, 0xD7, 0x41, 0x1A, 0x0D, 'b',
                            'r',  'a',  'i',  'n',  '.',  'E',  'v',  'e',  'n',  't',  ':',  '2'};
    assert_int_equal(tfx__crc32c(fv, 24), 0xB01D0459u);
    assert_int_equal(tfx__masked_crc32c(fv, 24), 0xAB364B12u);
    /* §7.2 intermediate values */
    assert_int_equal(tfx__crc32c_mask(0xD81D45AAu), 0x2DD89B12u);
    assert_int_equal(tfx__crc32c_mask(0x8727876Du), 0xB15DF927u);
    /* unmask inverts mask */
    uint32_t x = 1;
    for (int i = 0; i < 1000; i++, x = x * 2654435761u + 12345u) assert_int_equal(tfx__crc32c_unmask(tfx__crc32c_mask(x)), x);
    assert_int_equal(tfx__crc32c_unmask(0x5794D08Au), 0xF2D95A88u);
}

static void expect_varint(uint64_t v, const uint8_t *bytes, size_t n)
{
    uint8_t buf[16];
    tfx__pb b = {buf, 0};
    tfx__pb_varint(&b, v);
    assert_int_equal(b.n, n);
    assert_int_equal(tfx__pb_varint_size(v), n);
    assert_memory_equal(buf, bytes, n);
}

static void test_pb_primitives(void **state)
{
    (void)state;
    expect_varint(0, (const uint8_t[]){0x00}, 1);
    expect_varint(1, (const uint8_t[]){0x01}, 1);
    expect_varint(127, (const uint8_t[]){0x7F}, 1);
    expect_varint(300, (const uint8_t[]){0xAC, 0x02}, 2);
    expect_varint(1000, (const uint8_t[]){0xE8, 0x07}, 2);
    expect_varint(1700000000, (const uint8_t[]){0x80, 0xE2, 0xCF, 0xAA, 0x06}, 5);
    expect_varint(UINT64_MAX, (const uint8_t[]){0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}, 10);

    uint8_t buf[32];
    tfx__pb b = {buf, 0};
    tfx__pb_double(&b, 1, 1.0);
    tfx__pb_float(&b, 2, 0.5f);
    tfx__pb_float(&b, 2, 0.99f);
    tfx__pb_int64(&b, 2, -1);
    const uint8_t want[] = {0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x15, 0, 0, 0, 0x3F, 0x15, 0xA4, 0x70, 0x7D, 0x3F,
                            0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_int_equal(b.n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
    /* counting mode gives the same size */
    tfx__pb c = {NULL, 0};
    tfx__pb_double(&c, 1, 1.0);
    tfx__pb_float(&c, 2, 0.5f);
    tfx__pb_float(&c, 2, 0.99f);
    tfx__pb_int64(&c, 2, -1);
    assert_int_equal(c.n, b.n);
}

static void expect_event(int has_wall, double wall, int64_t step, const char *fv, const tfx__tb_value *v,
                         const uint8_t *want, size_t n)
{
    size_t len = tfx__tb_encode_event(NULL, has_wall, wall, step, fv, v);
    assert_int_equal(len, n);
    uint8_t *buf = malloc(len + 1);
    assert_int_equal(tfx__tb_encode_event(buf, has_wall, wall, step, fv, v), n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

static const uint8_t payload_7_1[26] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x10, 0x01, 0x2A, 0x0D,
                                        0x0A, 0x0B, 0x0A, 0x04, 0x6C, 0x6F, 0x73, 0x73, 0x15, 0x00, 0x00, 0x00, 0x3F};
static const uint8_t record_7_2[42] = {
    0x1A, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x12, 0x9B, 0xD8, 0x2D, 0x09, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x10, 0x01, 0x2A, 0x0D, 0x0A, 0x0B, 0x0A, 0x04, 0x6C,
    0x6F, 0x73, 0x73, 0x15, 0x00, 0x00, 0x00, 0x3F, 0x27, 0xF9, 0x5D, 0xB1};
static const uint8_t record_7_3[40] = {0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xA3, 0x7F, 0x4B, 0x22, 0x09, 0x00,
                                       0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x1A, 0x0D, 0x62, 0x72, 0x61, 0x69, 0x6E,
                                       0x2E, 0x45, 0x76, 0x65, 0x6E, 0x74, 0x3A, 0x32, 0x86, 0xBF, 0x57, 0x7A};

static tfx__tb_value scalar_value(const char *tag, float x)
{
    tfx__tb_value v = {0};
    v.tag = tag;
    v.tag_len = strlen(tag);
    v.kind = TFX__TB_SIMPLE_VALUE;
    v.simple_value = x;
    return v;
}

/* Build a framed record of an event the way the writer does. */
static uint8_t *make_record(double wall, int64_t step, const char *fv, const tfx__tb_value *v, size_t *n)
{
    size_t len = tfx__tb_encode_event(NULL, 1, wall, step, fv, v);
    uint8_t *rec = malloc(len + 16);
    tfx__tb_encode_event(rec + 12, 1, wall, step, fv, v);
    tfx__tfrecord_frame(rec, len);
    *n = len + 16;
    return rec;
}

static void test_worked_records(void **state)
{
    (void)state;
    /* §2.3: first-record payload for wall_time 1.0 */
    expect_event(1, 1.0, 0, "brain.Event:2", NULL, record_7_3 + 12, 24);
    /* §7.1 */
    tfx__tb_value loss = scalar_value("loss", 0.5f);
    expect_event(1, 1.0, 1, NULL, &loss, payload_7_1, sizeof payload_7_1);
    /* §7.2 and §7.3 framed, byte for byte */
    size_t n;
    uint8_t *r = make_record(1.0, 1, NULL, &loss, &n);
    assert_int_equal(n, 42);
    assert_memory_equal(r, record_7_2, 42);
    free(r);
    r = make_record(1.0, 0, "brain.Event:2", NULL, &n);
    assert_int_equal(n, 40);
    assert_memory_equal(r, record_7_3, 40);
    free(r);
    /* §7.5 legacy image with a 3-byte placeholder */
    tfx__tb_value img = {0};
    img.tag = "a";
    img.tag_len = 1;
    img.kind = TFX__TB_IMAGE;
    img.height = 3;
    img.width = 4;
    img.colorspace = 1;
    img.image = (const uint8_t *)"PNG";
    img.image_len = 3;
    const uint8_t want_img[] = {0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x10, 0x01, 0x2A, 0x12, 0x0A, 0x10, 0x0A,
                                0x01, 0x61, 0x22, 0x0B, 0x08, 0x03, 0x10, 0x04, 0x18, 0x01, 0x22, 0x03, 0x50, 0x4E, 0x47};
    expect_event(1, 1.0, 1, NULL, &img, want_img, sizeof want_img);
    /* §7.6 item 3: a zero value is still written (oneof); step 0 and absent wall_time omitted */
    tfx__tb_value acc = scalar_value("accuracy", 0.0f);
    const uint8_t want_zero[] = {0x2A, 0x11, 0x0A, 0x0F, 0x0A, 0x08, 'a', 'c', 'c', 'u',
                                 'r',  'a',  'c',  'y',  0x15, 0x00, 0x00, 0x00, 0x00};
    expect_event(0, 0.0, 0, NULL, &acc, want_zero, sizeof want_zero);
    /* §7.3 + §7.2 = a valid 82-byte event file */
    uint8_t file[82];
    memcpy(file, record_7_3, 40);
    memcpy(file + 40, record_7_2, 42);
    size_t count, end;
    int trunc;
    assert_int_equal(tfx__tfrecord_walk(file, 82, NULL, NULL, &count, &end, &trunc), TFX_OK);
    assert_int_equal(count, 2);
    assert_int_equal(end, 82);
    assert_int_equal(trunc, 0);
}

/* Images larger than 127 bytes need multi-byte lengths at three nesting levels. */
static void test_large_image_lengths(void **state)
{
    (void)state;
    size_t png_n = 20000;
    uint8_t *png = malloc(png_n);
    for (size_t i = 0; i < png_n; i++) png[i] = (uint8_t)(i * 7);
    tfx__tb_value img = {0};
    img.tag = "Grad CAM";
    img.tag_len = 8;
    img.kind = TFX__TB_IMAGE;
    img.height = 300;
    img.width = 200;
    img.colorspace = 3;
    img.image = png;
    img.image_len = png_n;
    size_t n;
    uint8_t *r = make_record(1700000000.5, 12345, NULL, &img, &n);
    tfx__tb_event ev;
    size_t count;
    assert_int_equal(tfx__tfrecord_walk(r, n, NULL, NULL, &count, NULL, NULL), TFX_OK);
    assert_int_equal(count, 1);
    assert_int_equal(tfx__tb_event_decode(r + 12, n - 16, &ev), TFX_OK);
    assert_true(ev.has_wall_time);
    assert_true(ev.wall_time == 1700000000.5);
    assert_int_equal(ev.step, 12345);
    assert_int_equal(ev.n_values, 1);
    assert_int_equal(ev.value.kind, TFX__TB_IMAGE);
    assert_int_equal(ev.value.tag_len, 8);
    assert_memory_equal(ev.value.tag, "Grad CAM", 8);
    assert_int_equal(ev.value.height, 300);
    assert_int_equal(ev.value.width, 200);
    assert_int_equal(ev.value.colorspace, 3);
    assert_int_equal(ev.value.image_len, png_n);
    assert_memory_equal(ev.value.image, png, png_n);
    /* 9 (time) + 3 (step) + 1+3 (summary) + 1+3 (value) + 10 (tag) + 1+3 (image key, len)
     * + 3+3+2 (h, w, cs) + 1+3+20000 (png): every multi-byte length counted exactly. */
    assert_int_equal(n - 16, 20046);
    free(r);
    free(png);
}

/* §1.3 vector 4: a record written by TensorFlow (TF2 tensor form) reads back through our
 * walker (both CRCs) and decoder: step 77, tag accuracy, 0.99f. */
static void test_decode_tf_written_record(void **state)
{
    (void)state;
    const uint8_t rec[66] = {
        0x32, 0, 0, 0, 0, 0, 0, 0, 0x24, 0x19, 0x56, 0xEC,
        0x09, 0xC4, 0x05, 0xB7, 0x3D, 0x99, 0xD6, 0xD7, 0x41, 0x10, 0x4D, 0x2A, 0x25,
        0x0A, 0x23, 0x0A, 0x08, 'a', 'c', 'c', 'u', 'r', 'a', 'c', 'y',
        0x42, 0x0A, 0x08, 0x01, 0x12, 0x00, 0x22, 0x04, 0xA4, 0x70, 0x7D, 0x3F,
        0x4A, 0x0B, 0x0A, 0x09, 0x0A, 0x07, 's', 'c', 'a', 'l', 'a', 'r', 's',
        0xA5, 0x5B, 0x64, 0x33};
    size_t count, end;
    assert_int_equal(tfx__tfrecord_walk(rec, sizeof rec, NULL, NULL, &count, &end, NULL), TFX_OK);
    assert_int_equal(count, 1);
    tfx__tb_event ev;
    assert_int_equal(tfx__tb_event_decode(rec + 12, 50, &ev), TFX_OK);
    assert_int_equal(ev.step, 77);
    assert_true(ev.has_wall_time && ev.wall_time == 1599759606.8597269);
    assert_int_equal(ev.value.tag_len, 8);
    assert_memory_equal(ev.value.tag, "accuracy", 8);
    assert_int_equal(ev.value.kind, TFX__TB_TENSOR_FLOAT);
    assert_true(ev.value.simple_value == 0.99f);
}

/* Defects: a flipped bit anywhere in a record is a CRC error (never "truncated"); a cut is
 * "truncated"; decoding never reads past the payload (ASan/valgrind watch this). */
static void test_walk_defects(void **state)
{
    (void)state;
    uint8_t file[82];
    memcpy(file, record_7_3, 40);
    memcpy(file + 40, record_7_2, 42);
    for (size_t i = 0; i < 82 * 8; i++) {
        file[i / 8] ^= (uint8_t)(1u << (i % 8));
        size_t count, end;
        int trunc;
        int rc = tfx__tfrecord_walk(file, 82, NULL, NULL, &count, &end, &trunc);
        /* a flipped length bit is caught by the length CRC; everything else by a CRC too */
        assert_int_equal(rc, TFX_EFORMAT);
        assert_int_equal(trunc, 0);
        assert_int_equal(count, i / 8 < 40 ? 0 : 1);
        assert_int_equal(end, i / 8 < 40 ? 0 : 40);
        file[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    for (size_t k = 0; k <= 82; k++) {
        size_t count, end;
        int trunc;
        int rc = tfx__tfrecord_walk(file, k, NULL, NULL, &count, &end, &trunc);
        size_t want = k >= 82 ? 2 : k >= 40 ? 1 : 0;
        assert_int_equal(count, want);
        assert_int_equal(end, want == 2 ? 82 : want == 1 ? 40 : 0);
        int whole = (k == 0 || k == 40 || k == 82);
        assert_int_equal(rc, whole ? TFX_OK : TFX_EFORMAT);
        assert_int_equal(trunc, !whole);
    }
    /* every prefix and every single-byte change of a payload decodes or fails cleanly */
    tfx__tb_event ev;
    for (size_t k = 0; k <= 26; k++) {
        uint8_t *p = malloc(k ? k : 1);
        memcpy(p, payload_7_1, k);
        int rc = tfx__tb_event_decode(p, k, &ev);
        assert_true(rc == TFX_OK || rc == TFX_EFORMAT);
        free(p);
    }
    for (size_t i = 0; i < 26; i++) {
        for (int v = 0; v < 256; v += 17) {
            uint8_t p[26];
            memcpy(p, payload_7_1, 26);
            p[i] = (uint8_t)v;
            int rc = tfx__tb_event_decode(p, 26, &ev);
            assert_true(rc == TFX_OK || rc == TFX_EFORMAT);
        }
    }
    /* specific malformed inputs */
    const uint8_t bad_len[] = {0x2A, 0x7F, 0x00};      /* summary longer than the payload */
    const uint8_t bad_varint[] = {0x10, 0xFF, 0xFF};   /* step varint runs off the end */
    const uint8_t bad_wt[] = {0x0B};                   /* wire type 3 (group) */
    assert_int_equal(tfx__tb_event_decode(bad_len, 3, &ev), TFX_EFORMAT);
    assert_int_equal(tfx__tb_event_decode(bad_varint, 3, &ev), TFX_EFORMAT);
    assert_int_equal(tfx__tb_event_decode(bad_wt, 1, &ev), TFX_EFORMAT);
    assert_non_null(strstr(tfx_error_last()->message, "malformed"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),     cmocka_unit_test(test_crc32c_table),
        cmocka_unit_test(test_crc32c_incremental), cmocka_unit_test(test_masking),
        cmocka_unit_test(test_pb_primitives),      cmocka_unit_test(test_worked_records),
        cmocka_unit_test(test_large_image_lengths), cmocka_unit_test(test_decode_tf_written_record),
        cmocka_unit_test(test_walk_defects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
