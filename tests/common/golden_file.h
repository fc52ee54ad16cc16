/* Reader for the tests' golden files ("TFXG": u32 count, then per array u32 name length, name,
 * u32 ndim, u32 dims, float32 data; little-endian), written by the tests' gen_golden_*.py.
 * Header-only, for cmocka tests: failures are test failures. */
#ifndef TFX_TESTS_GOLDEN_FILE_H
#define TFX_TESTS_GOLDEN_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct garr {
    char name[64];
    int ndim, dims[6];
    size_t count;
    float *data;
} garr;

/* Read relpath (under TFX_SOURCE_ROOT) into g[0..cap); returns the number of arrays. */
static inline int golden_file_load(const char *relpath, garr *g, int cap)
{
    const char *root = getenv("TFX_SOURCE_ROOT");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root ? root : TFX_SOURCE_ROOT, relpath);
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    char magic[4];
    uint32_t cnt;
    assert_int_equal(fread(magic, 1, 4, f), 4);
    assert_memory_equal(magic, "TFXG", 4);
    assert_int_equal(fread(&cnt, 4, 1, f), 1);
    assert_true(cnt <= (uint32_t)cap);
    for (uint32_t i = 0; i < cnt; i++) {
        garr *a = &g[i];
        uint32_t len, nd;
        assert_int_equal(fread(&len, 4, 1, f), 1);
        assert_true(len < sizeof a->name);
        assert_int_equal(fread(a->name, 1, len, f), len);
        a->name[len] = 0;
        assert_int_equal(fread(&nd, 4, 1, f), 1);
        assert_true(nd <= 6);
        a->ndim = (int)nd;
        a->count = 1;
        for (uint32_t d = 0; d < nd; d++) {
            uint32_t v;
            assert_int_equal(fread(&v, 4, 1, f), 1);
            a->dims[d] = (int)v;
            a->count *= v;
        }
        a->data = malloc((a->count ? a->count : 1) * sizeof(float));
        assert_int_equal(fread(a->data, sizeof(float), a->count, f), a->count);
    }
    fclose(f);
    return (int)cnt;
}

static inline const garr *golden_file_find(const garr *g, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(g[i].name, name) == 0) return &g[i];
    fail_msg("golden array %s missing", name);
    return NULL;
}

static inline void golden_file_free(garr *g, int n)
{
    for (int i = 0; i < n; i++) free(g[i].data);
}

#endif
