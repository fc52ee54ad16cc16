/* The large "light" architectures of ../shared/fixtures/onnx/light (slow suite: 8 to 144 million
 * weights made by ConstantOfShape at load): each reproduces its expected output for
 * np.arange(n) / n within 1e-4 of the largest value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "onnx_test_util.h"

static void test_densenet121(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    light_check("densenet121", NULL);
}
static void test_inception_v2(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    light_check("inception_v2", NULL);
}
static void test_resnet50(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    light_check("resnet50", NULL);
}
static void test_vgg19(void **state)
{
    (void)state;
    if (!have_fixtures()) skip();
    light_check("vgg19", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_densenet121),
        cmocka_unit_test(test_inception_v2),
        cmocka_unit_test(test_resnet50),
        cmocka_unit_test(test_vgg19),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
