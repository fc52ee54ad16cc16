/* Reading the golden text files in tests/render/data ('@name count' then numbers), written by
 * gen_golden.py. */
#ifndef TFX_TESTS_RENDER_GOLDEN_H
#define TFX_TESTS_RENDER_GOLDEN_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TFX_SOURCE_ROOT
#  define TFX_SOURCE_ROOT "."
#endif

static char *golden_read(const char *file)
{
    const char *root = getenv("TFX_SOURCE_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/render/data/%s", root ? root : TFX_SOURCE_ROOT, file);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The numbers of entry `name` as doubles (malloc'd), count in *n; NULL if absent. */
static double *golden_get(const char *text, const char *name, size_t *n)
{
    char key[256];
    snprintf(key, sizeof key, "\n@%s ", name);
    const char *p = strstr(text, key);
    if (!p) return NULL;
    p += strlen(key);
    char *end;
    size_t count = strtoul(p, &end, 10);
    double *v = malloc((count ? count : 1) * sizeof *v);
    p = end;
    for (size_t i = 0; i < count; i++) {
        v[i] = strtod(p, &end);
        p = end;
    }
    *n = count;
    return v;
}

static float *golden_getf(const char *text, const char *name, size_t *n)
{
    double *d = golden_get(text, name, n);
    if (!d) return NULL;
    float *f = malloc((*n ? *n : 1) * sizeof *f);
    for (size_t i = 0; i < *n; i++) f[i] = (float)d[i];
    free(d);
    return f;
}

#endif
