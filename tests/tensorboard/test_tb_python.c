/* Files written by libtfx, checked by an independent decoder: tests/tensorboard/walk_records.py
 * (its own CRC32C, masking and protobuf parser; Python stdlib only). Skips (77) without
 * /usr/bin/python3. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tb_test_util.h"

#define PYTHON "/usr/bin/python3"

static char walker[4096];

static char *run_walker(const char *args, const char *path, int *status)
{
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s '%s' %s '%s' 2>/dev/null", PYTHON, walker, args, path);
    return tb_run(cmd, status);
}

/* Python's float.hex() for a positive normal double. */
static void py_float_hex(double x, char *out, size_t cap)
{
    uint64_t u;
    memcpy(&u, &x, 8);
    int e = (int)((u >> 52) & 0x7FF) - 1023;
    snprintf(out, cap, "0x1.%013llxp%+d", (unsigned long long)(u & ((1ull << 52) - 1)), e);
}

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

/* The exact text walk_records.py must print for the sample. */
static char *expected_text(const tb_sample_record *rec)
{
    size_t cap = 1 << 20, left = cap;
    char *text = malloc(cap), *p = text;
    char wt[64];
    py_float_hex(TB_SAMPLE_T0, wt, sizeof wt);
    size_t off = 0;
    size_t len = tfx__tb_encode_event(NULL, 1, TB_SAMPLE_T0, 0, "brain.Event:2", NULL);
    append(&p, &left, "record 0 offset=0 len=%zu wall_time=%s file_version=brain.Event:2\n", len, wt);
    off += len + 16;
    for (int i = 0; i < TB_SAMPLE_N; i++) {
        const tb_sample_record *r = &rec[i];
        tfx__tb_value v = {0};
        v.tag = r->tag;
        v.tag_len = strlen(r->tag);
        v.kind = r->kind ? TFX__TB_IMAGE : TFX__TB_SIMPLE_VALUE;
        v.simple_value = r->value;
        v.width = r->width;
        v.height = r->height;
        v.colorspace = r->channels;
        v.image = r->png;
        v.image_len = r->png_size;
        len = tfx__tb_encode_event(NULL, 1, TB_SAMPLE_T0, r->step, NULL, &v);
        append(&p, &left, "record %d offset=%zu len=%zu wall_time=%s", i + 1, off, len, wt);
        if (r->step) append(&p, &left, " step=%lld", (long long)r->step);
        append(&p, &left, " values=1 tag=%s", r->tag);
        if (!r->kind) {
            append(&p, &left, " simple_value=%.9g\n", (double)r->value);
        } else {
            append(&p, &left, " height=%d width=%d colorspace=%d png=", r->height, r->width, r->channels);
            for (size_t b = 0; b < r->png_size; b++) append(&p, &left, "%02x", r->png[b]);
            append(&p, &left, " png_ihdr=%dx%d\n", r->width, r->height);
        }
        off += len + 16;
    }
    return text;
}

static void test_walker_reads_sample(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    tb_sample_record rec[TB_SAMPLE_N];
    char path[4096];
    unsigned char *rgb;
    assert_int_equal(tb_write_sample(tmp, rec, path, sizeof path, &rgb), 0);
    int st;
    char *out = run_walker("", path, &st);
    assert_int_equal(st, 0);
    char *want = expected_text(rec);
    assert_string_equal(out, want);
    free(want);
    free(out);

    /* every cut of the file, checked by the walker itself */
    size_t n;
    free(tb_read_all(path, &n));
    char ok[64];
    snprintf(ok, sizeof ok, "prefixes %zu ok\n", n + 1);
    out = run_walker("--prefixes", path, &st);
    assert_int_equal(st, 0);
    assert_string_equal(out, ok);
    free(out);

    /* the walker is not vacuous: a flipped byte in the last record or a cut file fails */
    unsigned char *bytes = tb_read_all(path, &n);
    char bad[4096];
    snprintf(bad, sizeof bad, "%s/bad.tfevents", tmp);
    bytes[n - 10] ^= 0x01;
    tb_write_all(bad, bytes, n);
    free(run_walker("", bad, &st));
    assert_int_equal(st, 1);
    bytes[n - 10] ^= 0x01;
    tb_write_all(bad, bytes, n - 1);
    free(run_walker("", bad, &st));
    assert_int_equal(st, 1);
    free(bytes);
    free(rgb);
    tb_rmtree(tmp);
    free(tmp);
}

/* Disk full in the middle of an image: what is left is whole records only, by the walker. */
static void test_walker_after_disk_full(void **state)
{
    (void)state;
    char *tmp = tb_tmpdir();
    const double t0 = TB_SAMPLE_T0;
    tfx_event_writer_options o = TFX_EVENT_WRITER_OPTIONS_INIT;
    o.clock = tb_fixed_clock;
    o.clock_user = (void *)&t0;
    size_t rgb_n;
    unsigned char *rgb = tb_make_png(37, 23, 3, &rgb_n);
    tfx_event_writer *w;
    assert_int_equal(tfx_event_writer_new(&w, tmp, &o), TFX_OK);
    assert_int_equal(tfx_event_writer_add_scalar(w, "loss", 1, 0.5), TFX_OK);
    tfx__tb_fail_write_after((long long)(rgb_n / 2));
    assert_int_equal(tfx_event_writer_add_image_png(w, "Grad CAM", 1, 37, 23, 3, rgb, rgb_n), TFX_EIO);
    tfx__tb_fail_write_after(-1);
    assert_int_equal(tfx_event_writer_add_scalar(w, "loss", 2, 0.25), TFX_EIO);
    char path[4096];
    snprintf(path, sizeof path, "%s", tfx_event_writer_path(w));
    tfx_event_writer_free(w);
    int st;
    char *out = run_walker("", path, &st);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "record 1 "));
    assert_non_null(strstr(out, "tag=loss simple_value=0.5\n"));
    assert_null(strstr(out, "record 2 "));
    free(out);
    free(rgb);
    tb_rmtree(tmp);
    free(tmp);
}

int main(void)
{
    if (access(PYTHON, X_OK) != 0) return 77;
    const char *root = getenv("TFX_SOURCE_ROOT");
    snprintf(walker, sizeof walker, "%s/tests/tensorboard/walk_records.py", root ? root : TFX_SOURCE_ROOT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walker_reads_sample),
        cmocka_unit_test(test_walker_after_disk_full),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
