/* Slow suite: torchvision's full-size resnet18 and mobilenet_v2 (224x224, random weights and
 * BatchNorm statistics) exported and compared with torch autograd as test_onnx_torch.c does
 * for the small variants. The generator draws resnet's images so that no max-pooling window
 * holds two values closer than 1e-5 (relative): float32 could pick either winner and the input
 * gradient would differ locally from float64's (seen at 1.2e-7: 2 % of the largest value over
 * 67 pixels); integrated gradients' path points near the black baseline are full of such ties (ig_kinks
 * in torch_golden.h). The files (47 + 14 MB) are generated at test time by
 * gen_onnx_torch.py --full with Debian's /usr/bin/python3 (torch, torchvision, onnx); without
 * them the test is skipped. Also reports the load time of the 47 MB resnet18 file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>
#include <unistd.h>

#include "torch_golden.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    if (system("/usr/bin/python3 -c 'import torch, torchvision, onnx' >/dev/null 2>&1") != 0) return 0;
    snprintf(dir, sizeof dir, "/tmp/tfx-onnx-full-%ld", (long)getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s/tests/onnx/gen_onnx_torch.py --full %s >/dev/null 2>&1",
             TFX_SOURCE_ROOT, dir);
    if (system(cmd) != 0) dir[0] = '\0';
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (dir[0]) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) return 0;
    }
    return 0;
}

static void test_resnet18(void **state)
{
    (void)state;
    if (!dir[0]) skip();
    char onnx[512], gold[512];
    snprintf(onnx, sizeof onnx, "%s/resnet18.onnx", dir);
    snprintf(gold, sizeof gold, "%s/resnet18_golden.bin", dir);
    struct timespec t0, t1;
    tfx_model *m = NULL;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(tfx_model_load_onnx(&m, onnx, NULL), TFX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    print_message("resnet18.onnx (47 MB) loaded in %.3f s\n",
                  (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    tfx_model_free(m);
    ig_kinks = 1;
    run_model(onnx, gold, 1, "/layer4/layer4.1/relu_1/Relu_output_0");
    ig_kinks = 0;
}

static void test_mobilenet_v2(void **state)
{
    (void)state;
    if (!dir[0]) skip();
    char onnx[512], gold[512];
    snprintf(onnx, sizeof onnx, "%s/mobilenet_v2.onnx", dir);
    snprintf(gold, sizeof gold, "%s/mobilenet_v2_golden.bin", dir);
    run_model(onnx, gold, 1, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_resnet18), cmocka_unit_test(test_mobilenet_v2)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
