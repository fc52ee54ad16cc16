/* The model worker pool (lib/core/pool.c): every slice of a tfx__parallel call has run when
 * it returns, with the pool in use or without one, and a call made from inside a slice runs
 * all of its own slices before it returns (in that thread) instead of handing them to workers
 * that are busy with the outer call. The ThreadSanitizer run checks the same for races. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <time.h>

#include "layers/layer.h"

enum { OUTER = 3, INNER = 4, ROUNDS = 50 };

typedef struct inner_job {
    atomic_int *ran;
} inner_job;

typedef struct outer_job {
    atomic_int ran[INNER];
    int seen[INNER]; /* the inner slices' counts when the inner call returned */
} outer_job;

static void pause_briefly(void)
{
    struct timespec t = {0, 20000}; /* 20 us: a worker that was handed a slice is still at it */
    nanosleep(&t, NULL);
}

static void inner_fn(void *arg)
{
    inner_job *j = arg;
    pause_briefly();
    atomic_fetch_add(j->ran, 1);
}

static void outer_fn(void *arg)
{
    outer_job *o = arg;
    inner_job jobs[INNER];
    for (int i = 0; i < INNER; i++) jobs[i].ran = &o->ran[i];
    tfx__parallel(INNER, inner_fn, jobs, sizeof *jobs);
    for (int i = 0; i < INNER; i++) o->seen[i] = atomic_load(&o->ran[i]);
}

static void check_nested(int with_pool)
{
    tfx__pool *pool = NULL;
    tfx__pool_use(with_pool ? &pool : NULL);
    for (int r = 0; r < ROUNDS; r++) {
        outer_job jobs[OUTER];
        for (int k = 0; k < OUTER; k++)
            for (int i = 0; i < INNER; i++) atomic_init(&jobs[k].ran[i], 0), jobs[k].seen[i] = -1;
        tfx__parallel(OUTER, outer_fn, jobs, sizeof *jobs);
        for (int k = 0; k < OUTER; k++)
            for (int i = 0; i < INNER; i++) {
                assert_int_equal(atomic_load(&jobs[k].ran[i]), 1);
                assert_int_equal(jobs[k].seen[i], 1);
            }
    }
    tfx__pool_free(&pool);
    tfx__pool_use(NULL);
}

static void test_nested_with_pool(void **state)
{
    (void)state;
    check_nested(1);
}

static void test_nested_without_pool(void **state)
{
    (void)state;
    check_nested(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_with_pool),
        cmocka_unit_test(test_nested_without_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
