/* The explain engine's row driver (tfx__explain_rows) against its contract, for every batch size
 * 1..9, with and without image-sized chunks and lead rows, and images whose rows are partly or
 * all skipped: rows are made in (image, j) order and handed back in that order with their own
 * contents, class and model output; a chunk never exceeds the batch (nor, with image_chunks,
 * spans two images); begin(i) precedes image i's rows; end(i) runs once per image, after its
 * last row and before any later image's row; a failing callback stops the run with its code. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "explain/explain_internal.h"
#include "tfx/tfx.h"

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != TFX_OK) fail_msg("%s -> %d: %s", #call, rc__, tfx_error_last()->message);       \
    } while (0)

#define N_IMAGES 6
#define PER 4
#define MAX_EVENTS 256

/* Row j of image i is made unless skipped: image 2 has no rows, image 4 only its even rows. */
static int skipped(size_t i, size_t j) { return i == 2 || (i == 4 && j % 2); }

static size_t made_rows(size_t i)
{
    size_t cnt = 0;
    for (size_t j = 0; j < PER; j++) cnt += !skipped(i, j);
    return cnt;
}

typedef struct ev {
    char kind; /* 'b' begin, 'r' row, 'e' end, 'c' chunk */
    size_t i, j, nb;
} ev;

typedef struct rec {
    tfx__xctx *c;
    tfx_model *ref; /* the same weights: predicting on the driven model would overwrite its outputs */
    ev e[MAX_EVENTS];
    size_t n;
    int fail_at; /* event index whose callback fails (-1: none) */
} rec;

static int log_ev(rec *r, char kind, size_t i, size_t j, size_t nb)
{
    assert_true(r->n < MAX_EVENTS);
    r->e[r->n] = (ev){kind, i, j, nb};
    return (int)r->n++ == r->fail_at ? tfx__error(TFX_EINVAL, "row driver test: failing on purpose") : TFX_OK;
}

static int begin(void *u, size_t i) { return log_ev(u, 'b', i, 0, 0); }

static int make(void *u, size_t i, size_t j, float *row)
{
    if (i != TFX__LEAD_ROW && skipped(i, j)) return 0;
    row[0] = i == TFX__LEAD_ROW ? -1.0f - (float)j : (float)i;
    row[1] = (float)j;
    return 1;
}

static int chunk(void *u, const tfx__chunk *ch) { return log_ev(u, 'c', 0, 0, ch->nb); }

static int row(void *u, const tfx__chunk *ch, size_t b)
{
    rec *r = u;
    size_t i = ch->image[b], j = ch->index[b];
    const float *x = ch->rows + b * 2;
    /* The row's own contents, class and output. */
    assert_true(x[0] == (i == TFX__LEAD_ROW ? -1.0f - (float)j : (float)i) && x[1] == (float)j);
    assert_int_equal(ch->cls[b], i == TFX__LEAD_ROW ? -1 : (int)(10 + i));
    float want[3];
    OK(tfx_model_predict(r->ref, x, 1, want));
    const float *got = tfx__explain_output(r->c, b);
    for (int k = 0; k < 3; k++) assert_true(fabsf(got[k] - want[k]) <= 1e-6f * (1.0f + fabsf(want[k])));
    return log_ev(r, 'r', i, j, 0);
}

static int end(void *u, size_t i) { return log_ev(u, 'e', i, 0, 0); }

static tfx_model *tiny_model(void)
{
    tfx_model *m;
    OK(tfx_model_new(&m, 1, 1, 2));
    tfx_dense_options d = TFX_DENSE_OPTIONS_INIT;
    d.units = 3;
    OK(tfx_model_add_dense(m, &d, NULL));
    return m;
}

/* What the driver reads of a method's context: the model, N_IMAGES images of 2 floats (never
 * read: every row is made), the batch, classes 10 + i. */
static tfx__xctx context(tfx_model *m, size_t batch, int *classes)
{
    static const float x0[2] = {0};
    for (int i = 0; i < N_IMAGES; i++) classes[i] = 10 + i;
    tfx__xctx c;
    memset(&c, 0, sizeof c);
    c.m = m;
    c.x = x0;
    c.n = N_IMAGES;
    c.in_sz = 2;
    c.K = 3;
    c.n_layers = 1;
    c.batch = batch;
    c.classes = classes;
    return c;
}

/* One run; checks the event sequence. */
static void run(tfx_model *m, tfx_model *ref, size_t batch, int image_chunks, size_t lead)
{
    int classes[N_IMAGES];
    tfx__xctx c = context(m, batch, classes);
    rec r = {&c, ref, {{0}}, 0, -1};
    tfx__rows d = {.per_image = PER, .lead = lead, .pass = TFX__PASS_FORWARD, .image_chunks = image_chunks, .u = &r,
                   .begin = begin, .make = make, .chunk = chunk, .row = row, .end = end};
    OK(tfx__explain_rows(&c, &d));

    size_t next_i = 0, next_j = 0, lead_seen = 0, begun = 0, ended = 0, chunk_left = 0;
    size_t chunk_image = TFX__LEAD_ROW, seen[N_IMAGES] = {0};
    int chunk_first = 0;
    for (size_t k = 0; k < r.n; k++) {
        const ev *e = &r.e[k];
        switch (e->kind) {
        case 'c':
            assert_int_equal(chunk_left, 0); /* the previous chunk's rows all came back */
            assert_true(e->nb >= 1 && e->nb <= batch);
            chunk_left = e->nb;
            chunk_first = 1;
            break;
        case 'b':
            assert_int_equal(e->i, begun); /* in order, once */
            if (image_chunks) assert_int_equal(ended, begun); /* the previous image is done */
            begun++;
            break;
        case 'r':
            assert_true(chunk_left > 0);
            chunk_left--;
            if (e->i == TFX__LEAD_ROW) {
                assert_int_equal(e->j, lead_seen++);
                break;
            }
            assert_int_equal(lead_seen, lead);
            while (next_i < N_IMAGES && (next_j == PER || skipped(next_i, next_j))) {
                if (++next_j >= PER) {
                    next_i++;
                    next_j = 0;
                }
            }
            assert_int_equal(e->i, next_i);
            assert_int_equal(e->j, next_j);
            next_j++;
            assert_true(e->i < begun);        /* made after its begin */
            assert_int_equal(ended, e->i);    /* every earlier image has ended, this one not */
            seen[e->i]++;
            if (image_chunks && !chunk_first) assert_int_equal(e->i, chunk_image);
            chunk_image = e->i;
            chunk_first = 0;
            break;
        case 'e':
            assert_int_equal(e->i, ended); /* in order, once */
            assert_int_equal(seen[e->i], made_rows(e->i)); /* after its last row */
            ended++;
            break;
        default: fail();
        }
    }
    assert_int_equal(chunk_left, 0);
    assert_int_equal(lead_seen, lead);
    assert_int_equal(begun, N_IMAGES);
    assert_int_equal(ended, N_IMAGES);
    /* Every made row came back: 6 + 2 (image 4) + 4 * 3 others. */
    size_t rows = 0;
    for (size_t k = 0; k < r.n; k++) rows += r.e[k].kind == 'r';
    assert_int_equal(rows, lead + 4 * PER + PER / 2);
    /* Rows fill the chunks: a chunk is short only before an image boundary (image_chunks) or at
     * the end. */
    if (!image_chunks) {
        size_t full = 0, chunks = 0;
        for (size_t k = 0; k < r.n; k++)
            if (r.e[k].kind == 'c') {
                chunks++;
                full += r.e[k].nb == batch;
            }
        assert_true(full >= chunks - 1);
    }
}

static void test_contract(void **state)
{
    (void)state;
    tfx_model *m = tiny_model(), *ref = tiny_model();
    for (size_t batch = 1; batch <= 9; batch++)
        for (int image_chunks = 0; image_chunks < 2; image_chunks++)
            for (size_t lead = 0; lead < 3; lead += 2) run(m, ref, batch, image_chunks, lead);
    tfx_model_free(m);
    tfx_model_free(ref);
}

/* A callback's error stops the run and comes back unchanged, at every event of a run. */
static void test_errors_stop(void **state)
{
    (void)state;
    tfx_model *m = tiny_model(), *ref = tiny_model();
    int classes[N_IMAGES];
    tfx__xctx c = context(m, 3, classes);
    for (int at = 0;; at++) {
        rec r = {&c, ref, {{0}}, 0, at};
        tfx__rows d = {.per_image = PER, .pass = TFX__PASS_FORWARD, .u = &r, .begin = begin, .make = make,
                       .chunk = chunk, .row = row, .end = end};
        tfx_error_clear();
        int rc = tfx__explain_rows(&c, &d);
        if ((int)r.n <= at) { /* the run had fewer events: done */
            assert_int_equal(rc, TFX_OK);
            assert_true(at > 20);
            break;
        }
        assert_int_equal(rc, TFX_EINVAL);
        assert_int_equal((int)r.n, at + 1); /* nothing ran after the failing callback */
        assert_non_null(strstr(tfx_error_last()->message, "failing on purpose"));
    }
    tfx_model_free(m);
    tfx_model_free(ref);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contract),
        cmocka_unit_test(test_errors_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
