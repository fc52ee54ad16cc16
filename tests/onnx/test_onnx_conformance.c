/* ONNX's own conformance suite: the backend node tests of Debian's libonnx-testdata whose
 * operator libtfx supports (docs/onnx.md). tests/onnx/conformance.py rewrites each single-node
 * model so that its inputs 1..k are initializers (input_0 stays the one graph input) and writes
 * the input and expected output as raw float32; this test loads each model, predicts and
 * compares at 1e-4 relative to the largest expected value. A refusal (TFX_ENOTSUP / TFX_EFORMAT)
 * is honest and recorded with its message; a model that loads and computes something else fails
 * the test unless it is in known_failures below. Prints the per-operator table (and writes it
 * to $TFX_CONFORMANCE_TABLE when set). Exit 77 (skip) without /usr/bin/python3 + onnx or the
 * test data. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx_test_util.h"

#define DATA "/usr/share/libonnx-testdata/data/node"
#define TOL 1e-4

/* Tests that load but do not match, with the reason (none may hide a bug we can fix). */
static const char *const known_failures[][2] = {
    {NULL, NULL},
};

static const char *known_failure(const char *name)
{
    for (size_t i = 0; known_failures[i][0]; i++)
        if (!strcmp(known_failures[i][0], name)) return known_failures[i][1];
    return NULL;
}

typedef struct op_row {
    char op[64];
    int passed, failed, known, refused, notrun;
    char reasons[2048]; /* "test: reason" of refusals, not-run tests and failures */
} op_row;

static op_row rows[64];
static int n_rows;

static op_row *row_for(const char *op)
{
    for (int i = 0; i < n_rows; i++)
        if (!strcmp(rows[i].op, op)) return &rows[i];
    op_row *r = &rows[n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->op, sizeof r->op, "%s", op);
    return r;
}

static void add_reason(op_row *r, const char *name, const char *why)
{
    size_t len = strlen(r->reasons);
    const char *short_name = strncmp(name, "test_", 5) ? name : name + 5;
    snprintf(r->reasons + len, sizeof r->reasons - len, "%s%s: %s", len ? "; " : "", short_name, why);
}

/* The message without the "tfx_model_load_onnx_from_memory: " / path prefix. */
static const char *strip_fn(const char *msg)
{
    const char *p = strstr(msg, ".onnx': ");
    if (p) return p + 8;
    p = strstr(msg, ": ");
    return p && p - msg < 40 ? p + 2 : msg;
}

static float *read_floats(const char *path, size_t count)
{
    size_t n;
    unsigned char *b = util_read_file(path, &n);
    if (!b || n != count * sizeof(float)) {
        free(b);
        return NULL;
    }
    return (float *)b;
}

/* Runs one manifest entry; returns 1 when it failed unexpectedly. */
static int run_one(const char *dir, const char *name, op_row *r, int in_rank, const long long *in_dims, int out_rank,
                   const long long *out_dims)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, name);
    tfx_model *m = NULL;
    int rc = tfx_model_load_onnx(&m, path, NULL);
    if (rc == TFX_ENOTSUP || rc == TFX_EFORMAT) {
        r->refused++;
        add_reason(r, name, strip_fn(tfx_error_last()->message));
        return 0;
    }
    if (rc) {
        r->failed++;
        add_reason(r, name, tfx_error_last()->message);
        printf("FAIL %s: load returned %d (%s)\n", name, rc, tfx_error_last()->message);
        return 1;
    }
    size_t n_in = 1, n_out = 1;
    for (int k = 0; k < in_rank; k++) n_in *= (size_t)in_dims[k];
    for (int k = 0; k < out_rank; k++) n_out *= (size_t)out_dims[k];
    size_t batch = (size_t)in_dims[0];
    int ish[3], osh[3];
    tfx_model_input_shape(m, ish);
    tfx_model_output_shape(m, osh);
    const char *bad = NULL;
    char why[256];
    float *x = NULL, *xn = NULL, *want = NULL, *y = NULL, *got = NULL;
    snprintf(path, sizeof path, "%s/%s.in", dir, name);
    x = read_floats(path, n_in);
    snprintf(path, sizeof path, "%s/%s.out", dir, name);
    want = read_floats(path, n_out);
    xn = malloc(n_in * sizeof *xn);
    size_t per_out = (size_t)osh[0] * osh[1] * osh[2];
    y = malloc((batch * per_out > 0 ? batch * per_out : 1) * sizeof *y);
    got = malloc((n_out ? n_out : 1) * sizeof *got);
    if (!x || !want || !xn || !y || !got) {
        bad = "cannot read the prepared data";
        goto done;
    }
    /* NCHW (rank 4) or NCL (rank 3, a 1 x L map) to the model's NHWC; rank 2 as is. */
    if (in_rank == 4)
        tfx_tensor_nchw_to_nhwc(x, xn, batch, (int)in_dims[1], (int)in_dims[2], (int)in_dims[3]);
    else if (in_rank == 3)
        tfx_tensor_nchw_to_nhwc(x, xn, batch, (int)in_dims[1], 1, (int)in_dims[2]);
    else
        memcpy(xn, x, n_in * sizeof *xn);
    if (n_in != batch * (size_t)ish[0] * ish[1] * ish[2]) {
        snprintf(why, sizeof why, "model input %dx%dx%d against the test's %zu values", ish[0], ish[1], ish[2], n_in);
        bad = why;
        goto done;
    }
    if (batch * per_out != n_out) {
        snprintf(why, sizeof why, "model output %dx%dx%d against the test's %zu values", osh[0], osh[1], osh[2],
                 n_out);
        bad = why;
        goto done;
    }
    rc = tfx_model_predict(m, xn, batch, y);
    if (rc) {
        snprintf(why, sizeof why, "predict: %s", tfx_error_last()->message);
        bad = why;
        goto done;
    }
    /* Back to the ONNX layout: NHWC to NCHW when the output is [N, C, H, W] = [N, c, h, w] (a
     * Transpose may have left it [N, H, W, C], which is the model's own order), NLC to NCL. */
    if (out_rank == 4 && out_dims[1] == osh[2] && out_dims[2] == osh[0] && out_dims[3] == osh[1])
        tfx_tensor_nhwc_to_nchw(y, got, batch, osh[0], osh[1], osh[2]);
    else if (out_rank == 3 && osh[0] == 1 && out_dims[1] == osh[2] && out_dims[2] == osh[1])
        tfx_tensor_nhwc_to_nchw(y, got, batch, 1, osh[1], osh[2]);
    else
        memcpy(got, y, n_out * sizeof *got);
    double err = util_rel_err(got, want, n_out);
    if (!(err <= TOL)) {
        snprintf(why, sizeof why, "relative error %.3g", err);
        bad = why;
    }
done:
    tfx_model_free(m);
    free(x);
    free(xn);
    free(want);
    free(y);
    free(got);
    if (!bad) {
        r->passed++;
        return 0;
    }
    const char *known = known_failure(name);
    char text[512];
    snprintf(text, sizeof text, "%s%s%s", bad, known ? ", known: " : "", known ? known : "");
    add_reason(r, name, text);
    if (known) {
        r->known++;
        return 0;
    }
    r->failed++;
    printf("FAIL %s: %s\n", name, bad);
    return 1;
}

static int cmp_rows(const void *a, const void *b) { return strcmp(((const op_row *)a)->op, ((const op_row *)b)->op); }

int main(void)
{
    if (access(DATA, R_OK) != 0 || system("/usr/bin/python3 -c 'import onnx, numpy' >/dev/null 2>&1") != 0) {
        printf("skipped: needs %s (libonnx-testdata) and /usr/bin/python3 with onnx (python3-onnx)\n", DATA);
        return 77;
    }
    char dir[] = "/tmp/tfx_conformance_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/tests/onnx/conformance.py' '%s' '%s' >/dev/null", TFX_SOURCE_ROOT,
             dir, DATA);
    if (system(cmd) != 0) {
        printf("conformance.py failed: %s\n", cmd);
        return 1;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/manifest.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    char line[1024];
    int failures = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char name[256], op[64], kind[16];
        int used = 0;
        if (sscanf(line, "%255s %63s %15s %n", name, op, kind, &used) != 3) continue;
        op_row *r = row_for(op);
        if (strcmp(kind, "run")) {
            r->notrun++;
            add_reason(r, name, line + used);
            continue;
        }
        long long in_dims[8] = {0}, out_dims[8] = {0};
        int in_rank = 0, out_rank = 0, k = 0;
        char *p = line + used;
        in_rank = (int)strtol(p, &p, 10);
        for (k = 0; k < in_rank && k < 8; k++) in_dims[k] = strtoll(p, &p, 10);
        out_rank = (int)strtol(p, &p, 10);
        for (k = 0; k < out_rank && k < 8; k++) out_dims[k] = strtoll(p, &p, 10);
        if (in_rank < 1 || in_rank > 8 || out_rank > 8) continue;
        failures += run_one(dir, name, r, in_rank, in_dims, out_rank, out_dims);
    }
    fclose(f);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);

    qsort(rows, (size_t)n_rows, sizeof rows[0], cmp_rows);
    const char *table_path = getenv("TFX_CONFORMANCE_TABLE");
    FILE *t = table_path && *table_path ? fopen(table_path, "w") : NULL;
    FILE *outs[2] = {stdout, t};
    int tot[5] = {0};
    for (int o = 0; o < 2; o++) {
        if (!outs[o]) continue;
        fprintf(outs[o], "| operator | passed | failed | refused | not run | refusals, failures, tests not run |\n");
        fprintf(outs[o], "|---|---|---|---|---|---|\n");
        for (int i = 0; i < n_rows; i++) {
            op_row *r = &rows[i];
            fprintf(outs[o], "| %s | %d | %d%s | %d | %d | %s |\n", r->op, r->passed, r->failed + r->known,
                    r->known ? " (known)" : "", r->refused, r->notrun, r->reasons);
            if (o == 0) {
                tot[0] += r->passed, tot[1] += r->failed, tot[2] += r->known, tot[3] += r->refused;
                tot[4] += r->notrun;
            }
        }
        fprintf(outs[o], "\nTotal: %d passed, %d failed (%d known), %d refused, %d not run\n", tot[0],
                tot[1] + tot[2], tot[2], tot[3], tot[4]);
    }
    if (t) fclose(t);
    return failures ? 1 : 0;
}
