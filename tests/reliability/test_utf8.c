/* core/utf8.c: the UTF-8 check for TensorBoard tags and run names (RFC 3629: no overlong forms,
 * no surrogates, nothing above U+10FFFF, no truncated sequence), with the offset of the first
 * bad sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"

static void valid(const char *s)
{
    size_t off = 12345;
    if (!tfx__utf8_valid(s, &off)) fail_msg("refused a valid string at byte %zu", off);
    assert_int_equal(off, 12345); /* untouched */
}

static void invalid(const char *s, size_t want)
{
    size_t off = 12345;
    if (tfx__utf8_valid(s, &off)) fail_msg("accepted an invalid string (want byte %zu)", want);
    if (off != want) fail_msg("offset %zu, want %zu", off, want);
    assert_int_equal(tfx__utf8_valid(s, NULL), 0);
}

static void test_valid(void **state)
{
    (void)state;
    valid("");
    valid("epoch_loss");
    valid("Grad CAM/caf\xc3\xa9");
    valid("\xc2\x80");             /* U+0080, the first two-byte value */
    valid("\xdf\xbf");             /* U+07FF */
    valid("\xe0\xa0\x80");         /* U+0800 */
    valid("\xed\x9f\xbf");         /* U+D7FF, just below the surrogates */
    valid("\xee\x80\x80");         /* U+E000, just above */
    valid("\xef\xbf\xbf");         /* U+FFFF */
    valid("\xf0\x90\x80\x80");     /* U+10000 */
    valid("\xf4\x8f\xbf\xbf");     /* U+10FFFF, the last */
    valid("\xe2\x82\xac \xf0\x9f\x98\x80"); /* euro, emoji */
}

static void test_invalid(void **state)
{
    (void)state;
    /* overlong forms */
    invalid("\xc0\xaf", 0);
    invalid("a\xc1\xbf", 1);
    invalid("ab\xe0\x80\xaf", 2);
    invalid("\xe0\x9f\xbf", 0);
    invalid("\xf0\x80\x80\xaf", 0);
    invalid("\xf0\x8f\xbf\xbf", 0);
    /* surrogates U+D800..U+DFFF */
    invalid("x\xed\xa0\x80", 1);
    invalid("\xed\xbf\xbf", 0);
    /* above U+10FFFF */
    invalid("\xf4\x90\x80\x80", 0);
    invalid("\xf5\x80\x80\x80", 0);
    invalid("\xf7\xbf\xbf\xbf", 0);
    invalid("\xf8\x88\x80\x80\x80", 0);
    invalid("\xff", 0);
    invalid("\xfe", 0);
    /* truncated sequences: at the end, and followed by ASCII */
    invalid("ok\xc3", 2);
    invalid("ok\xe2\x82", 2);
    invalid("\xf0\x9f\x98", 0);
    invalid("\xe2\x82x", 0);
    invalid("\xf0\x9f\x98x", 0);
    /* a continuation byte with no lead */
    invalid("abc\x80", 3);
    invalid("\xbf", 0);
    /* the first bad sequence is the one reported */
    invalid("\xc3\xa9\xc3\xa9\xff\xff", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests_name("utf8", tests, NULL, NULL);
}
