/* Every Event payload libtfx writes, decoded by `protoc --decode_raw` (Debian's
 * protobuf-compiler): tags, steps, values, width/height/colorspace and the PNG bytes must come
 * back exactly. Skips (77) when /usr/bin/protoc is absent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test_util.h"

#define PROTOC "/usr/bin/protoc"

static void append(char **p, size_t *left, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(*p, *left, fmt, ap);
    va_end(ap);
    assert_true(k >= 0 && (size_t)k < *left);
    *p += k;
    *left -= (size_t)k;
}

/* Undo protobuf's CEscape (\n \r \t \" \' \\, octal \ooo, hex \xHH). Returns the length. */
static size_t unescape(const char *s, const char *e, unsigned char *out)
{
    size_t n = 0;
    while (s < e) {
        if (*s != '\\') {
            out[n++] = (unsigned char)*s++;
            continue;
        }
        s++;
        assert_true(s < e);
        char c = *s++;
        if (c >= '0' && c <= '7') {
            int v = c - '0';
            for (int k = 0; k < 2 && s < e && *s >= '0' && *s <= '7'; k++) v = v * 8 + (*s++ - '0');
            out[n++] = (unsigned char)v;
        } else if (c == 'x') {
            int v = 0;
            for (int k = 0; k < 2 && s < e && strchr("0123456789abcdefABCDEF", *s); k++)
                v = v * 16 + (*s <= '9' ? *s - '0' : (*s | 0x20) - 'a' + 10), s++;
            out[n++] = (unsigned char)v;
        } else {
            out[n++] = (unsigned char)(c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c);
        }
    }
    return n;
}

typedef struct {
    const char *dir;
    int index;
    const tb_sample_record *rec;
} walk_ctx;

static uint64_t dbits(double x)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    return u;
}

/* Decode one payload with protoc and compare with the text it must print. */
static int check_payload(void *user, const uint8_t *payload, size_t len)
{
    walk_ctx *c = user;
    char in[4096], cmd[8192];
    snprintf(in, sizeof in, "%s/payload.bin", c->dir);
    tb_write_all(in, payload, len);
    snprintf(cmd, sizeof cmd, "%s --decode_raw < '%s' 2>&1", PROTOC, in);
    int st;
    char *out = tb_run(cmd, &st);
    assert_int_equal(st, 0);

    size_t left = 1 << 16;
    char *want = malloc(left), *p = want;
    append(&p, &left, "1: 0x%016llx\n", (unsigned long long)dbits(TB_SAMPLE_T0));
    if (c->index == 0) {
        append(&p, &left, "3: \"brain.Event:2\"\n");
    } else {
        const tb_sample_record *r = &c->rec[c->index - 1];
        if (r->step) append(&p, &left, "2: %lld\n", (long long)r->step);
        append(&p, &left, "5 {\n  1 {\n    1: \"%s\"\n", r->tag);
        if (!r->kind) {
            uint32_t u;
            memcpy(&u, &r->value, 4);
            append(&p, &left, "    2: 0x%08x\n", u);
        } else {
            append(&p, &left, "    4 {\n      1: %d\n      2: %d\n      3: %d\n      4: <png>\n    }\n", r->height,
                   r->width, r->channels);
            /* cut the PNG string out of protoc's text and compare its bytes */
            const char *key = "      4: \"";
            char *s = strstr(out, key);
            assert_non_null(s);
            /* escaped text holds no raw newline, so the line's end is the string's end */
            char *q = s + strlen(key), *nl = strchr(q, '\n');
            assert_non_null(nl);
            assert_true(nl > q && nl[-1] == '"');
            char *e = nl - 1;
            unsigned char *bytes = malloc((size_t)(e - q) + 1);
            size_t n = unescape(q, e, bytes);
            assert_int_equal(n, r->png_size);
            assert_memory_equal(bytes, r->png, n);
            free(bytes);
            /* out = text before the string + "<png>" + the rest from the newline */
            memcpy(s + 9, "<png>", 5);
            memmove(s + 14, nl, strlen(nl) + 1);
        }
        append(&p, &left, "  }\n}\n");
    }
    assert_string_equal(out, want);
    free(want);
    free(out);
    c->index++;
    return 0;
}

static void test_protoc_decodes_sample(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tb_sample_record rec[TB_SAMPLE_N];
    char path[4096];
    unsigned char *rgb;
    assert_int_equal(tb_write_sample(tmp, rec, path, sizeof path, &rgb), 0);
    size_t n;
    unsigned char *bytes = tb_read_all(path, &n);
    walk_ctx c = {tmp, 0, rec};
    size_t count;
    assert_int_equal(tfx__tfrecord_walk(bytes, n, check_payload, &c, &count, NULL, NULL), TFX_OK);
    assert_int_equal(count, TB_SAMPLE_N + 1);
    assert_int_equal(c.index, TB_SAMPLE_N + 1);
    free(bytes);
    free(rgb);
    tb_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    if (access(PROTOC, X_OK) != 0) return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_protoc_decodes_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
