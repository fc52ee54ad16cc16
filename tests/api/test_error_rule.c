/* The error rule (include/tfx/common.h, libgit2's): tfx_error_last() holds the failure of the
 * call that just failed, code and whole message; tfx_error_clear() gives TFX_OK / ""; a later
 * failure replaces an earlier message entirely; a message names its function once (no
 * "tfx_x: tfx_x: ..." from tfx__error_prefix). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/internal.h"
#include "tfx/tfx.h"

/* s starts with "fn: " and fn occurs nowhere else in it. */
static void assert_named_once(const char *s, const char *fn)
{
    size_t k = strlen(fn);
    if (strncmp(s, fn, k) != 0 || s[k] != ':' || strstr(s + k, fn) != NULL)
        fail_msg("message \"%s\" must start with \"%s:\" and name it once", s, fn);
}

/* A message may quote the current one (a callback's tfx_error_set, a wrapper adding context):
 * the result is the whole new text, and no overlapping copy happens (valgrind and ASan report
 * one: vsnprintf into the buffer an argument points into). */
static void test_message_quoting_itself(void **state)
{
    (void)state;
    tfx__error(TFX_EIO, "inner reason %d", 7);
    tfx__error(TFX_EFORMAT, "outer: %s", tfx_error_last()->message);
    assert_int_equal(tfx_error_last()->code, TFX_EFORMAT);
    assert_string_equal(tfx_error_last()->message, "outer: inner reason 7");
    assert_int_equal(tfx_error_set(TFX_EUSER, "hook: %s!", tfx_error_last()->message), TFX_EUSER);
    assert_string_equal(tfx_error_last()->message, "hook: outer: inner reason 7!");
}

static void test_failure_then_clear(void **state)
{
    (void)state;
    tfx_model *m = NULL;
    int rc = tfx_model_new(&m, 0, 4, 1);
    assert_int_equal(rc, TFX_EINVAL);
    assert_int_equal(tfx_error_last()->code, TFX_EINVAL);
    assert_string_equal(tfx_error_last()->message, "tfx_model_new: input shape 0x4x1 must be positive");
    tfx_error_clear();
    assert_int_equal(tfx_error_last()->code, TFX_OK);
    assert_string_equal(tfx_error_last()->message, "");
    assert_non_null(tfx_error_last()->message);
}

/* A long message followed by a short one: nothing of the first survives. */
static void test_later_failure_replaces(void **state)
{
    (void)state;
    tfx_model *m;
    assert_int_equal(tfx_model_new(&m, 4, 4, 1), TFX_OK);
    char name[300];
    memset(name, 'q', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_null(tfx_model_find_layer(m, name));
    assert_int_equal(tfx_error_last()->code, TFX_EINVAL);
    assert_true(strlen(tfx_error_last()->message) > 250);
    assert_int_equal(tfx_model_set_threads(m, 99), TFX_EINVAL);
    assert_string_equal(tfx_error_last()->message, "tfx_model_set_threads: threads = 99 must be in 0..16");
    /* a different code replaces the code too */
    assert_int_equal(tfx_model_compile(m, NULL), TFX_ESTATE);
    assert_int_equal(tfx_error_last()->code, TFX_ESTATE);
    assert_string_equal(tfx_error_last()->message, "tfx_model_compile: the model has no layers");
    tfx_model_free(m);
}

/* tfx__error_prefix drops the callee's copy of the same function name, keeps other context. */
static void test_prefix_not_doubled(void **state)
{
    (void)state;
    tfx__error(TFX_EIO, "tfx_x_load: cannot open 'p': gone");
    tfx__error_prefix("tfx_x_load");
    assert_string_equal(tfx_error_last()->message, "tfx_x_load: cannot open 'p': gone");
    tfx__error(TFX_EIO, "tfx_x_load: cannot open 'p': gone");
    tfx__error_prefix("tfx_x_load '%s'", "p");
    assert_string_equal(tfx_error_last()->message, "tfx_x_load 'p': cannot open 'p': gone");
    tfx__error(TFX_EIO, "tfx_x_load_all: short");
    tfx__error_prefix("tfx_x_load"); /* another function whose name is a prefix of the callee's */
    assert_string_equal(tfx_error_last()->message, "tfx_x_load: tfx_x_load_all: short");
    tfx__error(TFX_EINVAL, "bad");
    assert_int_equal(tfx__error_prefix("tfx_y"), TFX_EINVAL);
    assert_string_equal(tfx_error_last()->message, "tfx_y: bad");
}

/* The case: the CIFAR-10 loader's own messages already name it. */
static void test_cifar10_named_once(void **state)
{
    (void)state;
    tfx_dataset *ds = (tfx_dataset *)1;
    const char *paths[1] = {"/nonexistent/libtfx/data_batch_1.bin"};
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.version = 77;
    assert_int_equal(tfx_dataset_load_cifar10(&ds, paths, 1, &o), TFX_EVERSION);
    assert_null(ds);
    assert_named_once(tfx_error_last()->message, "tfx_dataset_load_cifar10");
    o = (tfx_data_options)TFX_DATA_OPTIONS_INIT;
    o.num_classes = 1000;
    assert_int_equal(tfx_dataset_load_cifar10(&ds, paths, 1, &o), TFX_EINVAL);
    assert_named_once(tfx_error_last()->message, "tfx_dataset_load_cifar10");
    assert_int_equal(tfx_dataset_load_cifar10(&ds, paths, 1, NULL), TFX_EIO);
    assert_named_once(tfx_error_last()->message, "tfx_dataset_load_cifar10");
    assert_int_equal(tfx_dataset_load_cifar10_dir(&ds, "/nonexistent/libtfx", TFX_DATA_TEST, &o), TFX_EINVAL);
    assert_named_once(tfx_error_last()->message, "tfx_dataset_load_cifar10_dir");
    assert_int_equal(tfx_dataset_load_idx(&ds, paths[0], paths[0], &o), TFX_EINVAL);
    assert_named_once(tfx_error_last()->message, "tfx_dataset_load_idx");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_quoting_itself),
        cmocka_unit_test(test_failure_then_clear),
        cmocka_unit_test(test_later_failure_replaces),
        cmocka_unit_test(test_prefix_not_doubled),
        cmocka_unit_test(test_cifar10_named_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
