/* UTF-8 validation (RFC 3629) for strings that go into files whose readers insist on it:
 * protobuf `string` fields (TensorBoard tags), run directory names. */
#include "core/internal.h"

int tfx__utf8_valid(const char *s, size_t *bad_offset)
{
    const unsigned char *p = (const unsigned char *)s, *start = p;
    while (*p) {
        unsigned c = *p;
        int extra;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            extra = 1; /* C0, C1: overlong two-byte forms */
        } else if (c >= 0xE0 && c <= 0xEF) {
            extra = 2;
            if (c == 0xE0) lo = 0xA0; /* overlong */
            if (c == 0xED) hi = 0x9F; /* U+D800..U+DFFF: surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            extra = 3;
            if (c == 0xF0) lo = 0x90; /* overlong */
            if (c == 0xF4) hi = 0x8F; /* above U+10FFFF */
        } else {
            goto bad; /* a continuation byte first, C0, C1, F5..FF */
        }
        if (p[1] < lo || p[1] > hi) goto bad; /* also catches the terminating NUL */
        for (int k = 2; k <= extra; k++)
            if (p[k] < 0x80 || p[k] > 0xBF) goto bad;
        p += 1 + extra;
    }
    return 1;
bad:
    if (bad_offset) *bad_offset = (size_t)(p - start);
    return 0;
}
