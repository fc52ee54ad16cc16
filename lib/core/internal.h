/* Private helpers shared across libtfx's implementation files. Never installed. */
#ifndef TFX_CORE_INTERNAL_H
#define TFX_CORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "tfx/common.h"

#if defined(__GNUC__)
#  define TFX__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define TFX__PRINTF(a, b)
#endif

/* Hot loops compiled for AVX-512, AVX2 and baseline x86-64, one picked at load time (ifunc):
 * the library itself is built for baseline x86-64. Off under sanitizers (the ifunc resolvers
 * run before the sanitizer runtime is ready: TSan crashed before main) and off the platforms
 * without ifunc. */
#if defined(__has_feature)
#  if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer)
#    define TFX__SANITIZED 1
#  endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#  define TFX__SANITIZED 1
#endif
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(TFX__SANITIZED)
#  define TFX__CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#  define TFX__CLONES
#endif

/* Set this thread's error (code + printf message) and return code, so callers can
 * write `return tfx__error(TFX_EINVAL, "...")`. */
int tfx__error(int code, const char *fmt, ...) TFX__PRINTF(2, 3);
/* Prefix the current message with context ("loading model: ..."); returns the current code. */
int tfx__error_prefix(const char *fmt, ...) TFX__PRINTF(1, 2);

/* The message of errno value e, thread-safe (strerror is not): in buf (n bytes; 128 are plenty)
 * or a static string; never NULL. */
const char *tfx__strerror(int e, char *buf, size_t n);

/* 1 when the NUL-terminated s is well-formed UTF-8 (no overlong forms, no surrogates, nothing
 * above U+10FFFF, no truncated sequence); else 0 and, when bad_offset is not NULL, the byte
 * offset of the first sequence that is not. */
int tfx__utf8_valid(const char *s, size_t *bad_offset);

/* A user callback (a batch provider, a sink) returned r != 0: the error is r when negative, else
 * TFX_EUSER, with the message the callback set (tfx_error_set) or "fn: what returned r". */
int tfx__callback_failed(const char *fn, const char *what, int r);

/* Argument checks that set a message naming the argument. */
#define TFX__CHECK_ARG(cond, ...) \
    do { if (!(cond)) return tfx__error(TFX_EINVAL, __VA_ARGS__); } while (0)
#define TFX__CHECK_NULL(ptr) \
    do { if ((ptr) == NULL) return tfx__error(TFX_EINVAL, "%s: argument '%s' is NULL", __func__, #ptr); } while (0)

/* The one allocator. Every allocation in the library goes through these, so tests can
 * inject failures (core/hooks.h). They set no error; callers report TFX_ENOMEM. */
void *tfx__malloc(size_t size);
void *tfx__calloc(size_t count, size_t size);
void *tfx__realloc(void *ptr, size_t size);
void tfx__free(void *ptr);
char *tfx__strdup(const char *s);
/* Multiply with overflow check: returns 0 and sets *out, or -1 on overflow. */
int tfx__mul_size(size_t a, size_t b, size_t *out);
/* TFX_EINVAL naming fn unless n items of per_item values of elem_size bytes fit in a size_t
 * (check before reading a caller's array). */
int tfx__check_count(const char *fn, size_t n, size_t per_item, size_t elem_size);
/* TFX_EINVAL "fn: what[i] (sample i / per_item) is not finite (NaN)" at the first non-finite of count floats
 * (a vectorised scan: about 0.1 ns a float). */
int tfx__check_finite(const char *fn, const char *what, const float *x, size_t count, size_t per_item);
/* a * b floats (at least one), NULL when the size overflows or memory runs out. */
float *tfx__alloc_floats(size_t a, size_t b);
/* a * b zeroed floats (at least one) for arrays read or written whole at every step (the
 * parameters, their gradients, the optimizer's slots; activations measured no faster in them
 * and cost 13 MB more at batch 50): from 4 MiB up, 2 MiB-aligned and marked for transparent
 * huge pages before the first touch (Linux; Debian's default THP mode is "madvise"). Freed
 * with tfx__free. NULL when the size overflows or memory runs out. */
float *tfx__alloc_streamed(size_t a, size_t b);

/* Random numbers: xoshiro256** seeded through splitmix64. State is owned by its user
 * (a model, an explainer run); there is no global generator. */
typedef struct tfx__rng {
    uint64_t s[4];
    int has_spare;
    double spare;
} tfx__rng;
void tfx__rng_seed(tfx__rng *r, uint64_t seed);
uint64_t tfx__rng_next(tfx__rng *r);
double tfx__rng_uniform(tfx__rng *r);             /* [0, 1) with 53 bits */
double tfx__rng_normal(tfx__rng *r);              /* standard normal (Box-Muller) */
uint64_t tfx__rng_below(tfx__rng *r, uint64_t n); /* uniform in [0, n), n > 0, unbiased */

#endif
