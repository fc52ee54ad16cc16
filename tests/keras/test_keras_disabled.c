/* libtfx built without the `keras` feature: the header, the options and the entry still exist
 * (the ABI does not depend on the build) and loading says plainly why it cannot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tfx/tfx.h"

static void test_disabled(void **state)
{
    (void)state;
    tfx_keras_options o;
    assert_int_equal(tfx_keras_options_init(&o, TFX_KERAS_OPTIONS_VERSION), 0);
    tfx_model *m = (tfx_model *)&m;
    assert_int_equal(tfx_model_load_keras(&m, "model.h5", &o), TFX_ENOTSUP);
    assert_null(m);
    assert_non_null(strstr(tfx_error_last()->message, "built without Keras support"));
    assert_int_equal(tfx_model_load_keras(NULL, "model.h5", NULL), TFX_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_disabled)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
