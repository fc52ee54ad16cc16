/* libFuzzer target for picture input (tfx_image_decode: stb_image behind libtfx's size limits;
 * tfx_image_load reads the file and calls it). Input: 1 byte choosing the channels argument
 * (0..4, or an invalid -1/5), then the PNG/JPEG bytes. A decoded picture is re-encoded
 * as PNG and decoded again: the pixels must survive. Seeds: tests/fuzz/corpus/image/. */
#include <stdlib.h>

#include "tfx/tfx.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int channels = (int)(data[0] % 7) - 1; /* -1..5 */
    tfx_image *img = NULL;
    int rc = tfx_image_decode(&img, data + 1, size - 1, channels);
    if (channels < 0 || channels > 4) {
        if (rc != TFX_EINVAL || img) abort();
        return 0;
    }
    if (rc != TFX_OK) {
        /* ENOMEM: a header within the limits whose picture still did not fit (stb's own cap) */
        if (img || (rc != TFX_EFORMAT && rc != TFX_ENOMEM)) abort();
        return 0;
    }
    if (img->width < 1 || img->height < 1 || img->width > TFX_IMAGE_MAX_SIDE || img->height > TFX_IMAGE_MAX_SIDE ||
        img->channels < 1 || img->channels > 4 || (channels && img->channels != channels) ||
        img->stride < (size_t)img->width * (size_t)img->channels)
        abort();
    /* Small pictures only: the round trip is the expensive part. */
    if ((size_t)img->width * (size_t)img->height <= 4096) {
        unsigned char *png = NULL;
        size_t n = 0;
        if (tfx_image_encode_png(img, &png, &n) != TFX_OK) abort();
        tfx_image *back = NULL;
        if (tfx_image_decode(&back, png, n, img->channels) != TFX_OK) abort();
        for (int r = 0; r < img->height; r++)
            if (memcmp(img->pixels + (size_t)r * img->stride, back->pixels + (size_t)r * back->stride,
                       (size_t)img->width * (size_t)img->channels) != 0)
                abort();
        tfx_image_free(back);
        tfx_image_png_free(png);
    } else {
        /* touch the first and the last row so a short buffer is seen */
        volatile uint8_t s = img->pixels[0];
        s ^= img->pixels[(size_t)(img->height - 1) * img->stride + (size_t)img->width * (size_t)img->channels - 1];
        (void)s;
    }
    tfx_image_free(img);
    return 0;
}
