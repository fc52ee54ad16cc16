/* The library's only allocator, with a thread-local failure injector for tests (core/hooks.h). */
#include <stdlib.h>
#include <string.h>
#if defined(__linux__)
#  include <sys/mman.h>
#endif

#include "core/hooks.h"
#include "core/internal.h"

_Thread_local long tfx__hook_alloc_fail_after; /* 0: never fail */
_Thread_local long tfx__hook_alloc_count;

static int should_fail(void)
{
    tfx__hook_alloc_count++;
    return tfx__hook_alloc_fail_after > 0 && tfx__hook_alloc_count >= tfx__hook_alloc_fail_after;
}

void *tfx__malloc(size_t size)
{
    if (should_fail()) return NULL;
    return malloc(size ? size : 1);
}

void *tfx__calloc(size_t count, size_t size)
{
    if (should_fail()) return NULL;
    if (count == 0 || size == 0) count = size = 1;
    return calloc(count, size);
}

float *tfx__alloc_floats(size_t a, size_t b)
{
    size_t n;
    if (tfx__mul_size(a, b, &n) || tfx__mul_size(n, sizeof(float), &n)) return NULL;
    return tfx__malloc(n ? n : sizeof(float));
}

/* Reading the seed model's 44 MB Dense kernel on two threads took a median 2.6-2.7 ms in
 * 4 KiB pages and 1.8-2.0 ms in 2 MiB pages here (the TLB misses, and the prefetchers stopping
 * at every 4 KiB page). */
#define HUGE_PAGE ((size_t)2 << 20)

float *tfx__alloc_streamed(size_t a, size_t b)
{
    size_t n, bytes;
    if (tfx__mul_size(a, b, &n) || tfx__mul_size(n ? n : 1, sizeof(float), &bytes)) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (bytes >= 2 * HUGE_PAGE && bytes <= SIZE_MAX - HUGE_PAGE) {
        if (should_fail()) return NULL;
        const size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        void *p = NULL;
        if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) return NULL;
        (void)madvise(p, rounded, MADV_HUGEPAGE); /* a hint: without it, ordinary pages */
        memset(p, 0, bytes);
        return p;
    }
#endif
    return tfx__calloc(n ? n : 1, sizeof(float));
}

void *tfx__realloc(void *ptr, size_t size)
{
    if (should_fail()) return NULL;
    return realloc(ptr, size ? size : 1);
}

void tfx__free(void *ptr) { free(ptr); }

char *tfx__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tfx__malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int tfx__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) return -1;
    *out = a * b;
    return 0;
}
