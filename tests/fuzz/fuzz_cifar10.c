/* libFuzzer target for the CIFAR-10 batch reader (tfx__cifar10_from_memory, behind
 * tfx_dataset_load_cifar10). Input: 1 options byte, then the batch bytes.
 * Seeds: tests/fuzz/corpus/cifar10/. */
#include <stdlib.h>

#include "data/data_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    unsigned mode = data[0];
    tfx_data_options o = TFX_DATA_OPTIONS_INIT;
    o.max_bytes = (size_t)1 << 22;
    o.num_classes = (mode & 3) == 0 ? 0 : (mode & 3) == 1 ? 1 : (mode & 3) == 2 ? 10 : 256;
    o.offset = (mode >> 2) & 3;
    o.limit = (mode >> 4) & 3;
    tfx_dataset *ds = NULL;
    int rc = tfx__cifar10_from_memory(data + 1, size - 1, "batch", &o, &ds);
    if (rc == TFX_OK) {
        int shape[3];
        if (!ds || tfx_dataset_shape(ds, shape) != TFX_OK || shape[0] != 32 || shape[1] != 32 || shape[2] != 3)
            abort();
        size_t n = tfx_dataset_count(ds);
        if (n == 0 || n > (size - 1) / 3073) abort();
        const float *px = tfx_dataset_images(ds);
        const int32_t *lb = tfx_dataset_labels(ds);
        for (size_t i = 0; i < n * 3072; i++)
            if (!(px[i] >= 0.0f && px[i] <= 1.0f)) abort();
        for (size_t i = 0; i < n; i++)
            if (lb[i] < 0 || lb[i] >= tfx_dataset_num_classes(ds)) abort();
        tfx_dataset_free(ds);
    } else if (ds != NULL || (rc != TFX_EFORMAT && rc != TFX_EINVAL)) {
        abort();
    }
    return 0;
}
