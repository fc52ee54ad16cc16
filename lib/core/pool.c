/* tfx__parallel: run fn on jobs[0..threads) with jobs[0] in the caller.
 *
 * Inside a model's forward or backward the other slices go to that model's worker threads
 * (tfx__pool_use; started on first need, joined by tfx_model_free). Starting threads per call
 * cost 30-50 us here, as much as a one-image convolution's share of work, so one image could
 * not be split at all. Idle workers spin about 50 us (back-to-back calls of one forward), then
 * sleep on a condition variable: no busy-waiting between calls, unlike OpenBLAS's 0.1 s.
 * Without a pool (no model, or it could not start) threads are started per call; a thread that
 * cannot start has its slice run by the caller, so there is no failure path.
 *
 * A call from inside a slice (a Winograd block's GEMM large enough for tfx__sgemm to split it,
 * on the caller's thread, which has the model's thread count) runs its slices one after the
 * other in that thread: handing them to the pool would overwrite the running call's jobs, and
 * its workers are busy anyway. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/internal.h"
#include "core/kernels.h"

typedef struct worker {
    pthread_t tid;
    struct tfx__pool *pool;
    int index;     /* slice index: 1..TFX__MAX_THREADS-1 */
    unsigned seen; /* the call generation it last took part in */
} worker;

struct tfx__pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_uint gen;     /* bumped per call; workers wait for a change */
    atomic_int pending;  /* workers that have not yet finished the current call */
    int active;          /* slices of the current call (workers 1..active-1 take part) */
    int sleepers, quit;  /* under mu */
    void (*fn)(void *job);
    char *jobs;
    size_t job_size;
    int n_workers;
    pid_t pid; /* a forked child has none of the workers */
    worker w[TFX__MAX_THREADS];
};

static _Thread_local tfx__pool **g_slot; /* the current model's pool (tfx__pool_use) */
static _Thread_local int g_in_slice;     /* this thread is running a slice */


static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

enum { SPIN = 4000 }; /* pause loops before sleeping: ~50 us */

static void *worker_main(void *arg)
{
    worker *me = arg;
    tfx__pool *p = me->pool;
    g_in_slice = 1;
    unsigned seen = me->seen;
    for (;;) {
        unsigned g = atomic_load_explicit(&p->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN; i++) {
            cpu_relax();
            g = atomic_load_explicit(&p->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen && !p->quit) {
                p->sleepers++;
                pthread_cond_wait(&p->cv, &p->mu);
                p->sleepers--;
            }
            int quit = p->quit;
            pthread_mutex_unlock(&p->mu);
            if (quit) return NULL;
        }
        seen = g;
        /* fn, jobs and active were written before gen was released; every worker reports
         * back, so none can still be reading them when the next call writes them */
        if (me->index < p->active) p->fn(p->jobs + (size_t)me->index * p->job_size);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

static tfx__pool *pool_new(void)
{
    tfx__pool *p = tfx__calloc(1, sizeof *p);
    if (!p) return NULL;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        tfx__free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        tfx__free(p);
        return NULL;
    }
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    p->pid = getpid();
    return p;
}

/* Workers up to slice want - 1; how many there are. */
static int pool_grow(tfx__pool *p, int want)
{
    while (p->n_workers + 1 < want) {
        worker *w = &p->w[p->n_workers + 1];
        w->pool = p;
        w->index = p->n_workers + 1;
        w->seen = atomic_load(&p->gen);
        if (pthread_create(&w->tid, NULL, worker_main, w) != 0) break;
        p->n_workers++;
    }
    return p->n_workers;
}

static void pool_free(tfx__pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->pid == getpid())
        for (int i = 1; i <= p->n_workers; i++) pthread_join(p->w[i].tid, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    tfx__free(p);
}

typedef struct par_start {
    void (*fn)(void *);
    void *job;
} par_start;

static void *par_entry(void *arg)
{
    par_start *s = arg;
    g_in_slice = 1;
    s->fn(s->job);
    return NULL;
}

static void spawn(int threads, void (*fn)(void *job), char *jobs, size_t job_size, int first)
{
    pthread_t tid[TFX__MAX_THREADS];
    par_start st[TFX__MAX_THREADS];
    int started[TFX__MAX_THREADS] = {0};
    for (int i = first; i < threads; i++) {
        st[i] = (par_start){fn, jobs + (size_t)i * job_size};
        started[i] = pthread_create(&tid[i], NULL, par_entry, &st[i]) == 0;
    }
    if (first == 1) fn(jobs);
    for (int i = first; i < threads; i++) { /* a thread that could not start runs here instead */
        if (started[i])
            pthread_join(tid[i], NULL);
        else
            fn(jobs + (size_t)i * job_size);
    }
}

/* Slices 1.. to the pool (or fresh threads), slice 0 here; returns when all are done. */
static void run_slices(int threads, void (*fn)(void *job), char *j, size_t job_size)
{
    tfx__pool *p = NULL;
    if (g_slot) {
        if (!*g_slot) *g_slot = pool_new();
        p = *g_slot;
        if (p && p->pid != getpid()) p = NULL;
    }
    int have = p ? pool_grow(p, threads) : 0;
    if (have == 0) {
        spawn(threads, fn, j, job_size, 1);
        return;
    }
    const int use = have + 1 < threads ? have + 1 : threads;
    p->fn = fn;
    p->jobs = j;
    p->job_size = job_size;
    p->active = use;
    atomic_store_explicit(&p->pending, have, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    if (p->sleepers) pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    fn(j);
    /* slices beyond the workers (they could not all start): on fresh threads */
    if (use < threads) spawn(threads, fn, j, job_size, use);
    for (int i = 0; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if (i >= SPIN) sched_yield(); /* a worker may be waiting for this core */
    }
}

void tfx__parallel(int threads, void (*fn)(void *job), void *jobs, size_t job_size)
{
    char *j = jobs;
    if (threads > TFX__MAX_THREADS) threads = TFX__MAX_THREADS;
    if (threads <= 1 || g_in_slice) {
        for (int i = 0; i < (threads < 1 ? 1 : threads); i++) fn(j + (size_t)i * job_size);
        return;
    }
    g_in_slice = 1;
    run_slices(threads, fn, j, job_size);
    g_in_slice = 0;
}

void tfx__pool_use(tfx__pool **slot) { g_slot = slot; }

void tfx__pool_free(tfx__pool **slot)
{
    if (g_slot == slot) g_slot = NULL; /* the model goes away: no dangling pointer on this thread */
    pool_free(*slot);
    *slot = NULL;
}
