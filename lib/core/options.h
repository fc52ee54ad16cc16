/* Versioned options structs (libgit2's pattern): the caller's struct is as long as the version
 * it was compiled against, so the library reads and writes only that version's prefix and
 * takes the newer fields from its own defaults. Every public options struct goes through
 * these two functions; nothing copies a caller's options struct by assignment. */
#ifndef TFX_CORE_OPTIONS_H
#define TFX_CORE_OPTIONS_H

#include <stddef.h>

/* One options struct type: its defaults and the size each version has. */
typedef struct tfx__options_desc {
    const void *defaults; /* the current version's defaults (TFX_X_OPTIONS_INIT), size bytes */
    size_t size;          /* sizeof the struct: the current version's size */
    unsigned version;     /* the current version (TFX_X_OPTIONS_VERSION) */
    const size_t *older;  /* older[v - 1]: bytes version v < version has; NULL while version is 1 */
} tfx__options_desc;

/* Define `static const tfx__options_desc desc` for a struct that has one version so far. When
 * the struct reaches version 2 this fails to compile: use TFX__OPTIONS_DESC_VERSIONS. */
#define TFX__OPTIONS_DESC_V1(desc, type, VERSION, INIT)                                              \
    _Static_assert((VERSION) == 1, #type " has several versions: use TFX__OPTIONS_DESC_VERSIONS"); \
    static const type desc##_defaults = INIT;                                                       \
    static const tfx__options_desc desc = {&desc##_defaults, sizeof(type), (VERSION), NULL}

/* The same for a struct with versions 1..VERSION; `older` is a static const size_t array of
 * VERSION - 1 sizes (offsetof the first field each later version appended). */
#define TFX__OPTIONS_DESC_VERSIONS(desc, type, VERSION, INIT, older_sizes)                               \
    _Static_assert(sizeof(older_sizes) / sizeof((older_sizes)[0]) == (VERSION) - 1,                     \
                   #type ": one older size per version before the current one");                       \
    static const type desc##_defaults = INIT;                                                           \
    static const tfx__options_desc desc = {&desc##_defaults, sizeof(type), (VERSION), (older_sizes)}

/* Bytes of a version's struct; 0 for version 0 or one newer than this library knows. */
size_t tfx__options_size(const tfx__options_desc *d, unsigned version);

/* dst (a full current struct) = the defaults, then the prefix of src its version knows (src
 * NULL: defaults only). TFX_EVERSION (message "fn: options version ...") for a version 0 or
 * newer than this library; dst then holds the defaults. */
int tfx__options_copy(const tfx__options_desc *d, void *dst, const void *src, const char *fn);

/* *_options_init: write the defaults for `version` into the caller's struct, no byte beyond
 * that version's size, and set its version field. TFX_EINVAL for NULL, TFX_EVERSION for an
 * unknown version (nothing written). fn names the init function in messages. */
int tfx__options_init(const tfx__options_desc *d, void *opts, unsigned version, const char *fn);

#endif
