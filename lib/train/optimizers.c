/* Optimizer steps with Keras's update rules (see the formulas in include/tfx/train.h).
 * Each is a loop over the model's flat (params, grads, state) arrays. */
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "train/train_internal.h"

int tfx__optimizer_slots(const tfx__opt_config *c)
{
    switch (c->kind) {
    case TFX_OPTIMIZER_SGD: return c->momentum > 0.0f ? 1 : 0;
    case TFX_OPTIMIZER_ADAM: return 2;
    case TFX_OPTIMIZER_RMSPROP: return 1;
    default: return 0;
    }
}

static void sgd(const tfx__opt_config *c, size_t n, float *w, const float *g, float *v)
{
    const float lr = c->lr, mu = c->momentum;
    if (mu <= 0.0f) {
        for (size_t i = 0; i < n; i++) w[i] -= lr * g[i];
        return;
    }
    if (c->nesterov) {
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] - lr * g[i];
            w[i] += mu * v[i] - lr * g[i];
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            v[i] = mu * v[i] - lr * g[i];
            w[i] += v[i];
        }
    }
}

/* Keras Adam: the bias corrections are folded into the step size and eps is added to
 * sqrt(v) (not to sqrt(v_hat)). */
static void adam(const tfx__opt_config *c, uint64_t t, size_t n, float *w, const float *g, float *m, float *v)
{
    const float b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon;
    const double td = (double)t;
    const float lr_t = (float)((double)c->lr * sqrt(1.0 - pow((double)b2, td)) / (1.0 - pow((double)b1, td)));
    size_t i = 0;
#if defined(__SSE2__)
    /* The compiler cannot vectorise sqrtf (errno); the same operations in the same order,
     * four at a time (sqrtps/divps round exactly like sqrtss/divss: bit-identical results). */
    const __m128 vb1 = _mm_set1_ps(b1), vc1 = _mm_set1_ps(1.0f - b1), vb2 = _mm_set1_ps(b2),
                 vc2 = _mm_set1_ps(1.0f - b2), vlr = _mm_set1_ps(lr_t), veps = _mm_set1_ps(eps);
    for (; i + 4 <= n; i += 4) {
        __m128 gi = _mm_loadu_ps(g + i);
        __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
        __m128 step = _mm_div_ps(_mm_mul_ps(vlr, mi), _mm_add_ps(_mm_sqrt_ps(vi), veps));
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(w + i, _mm_sub_ps(_mm_loadu_ps(w + i), step));
    }
#endif
    for (; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

static void rmsprop(const tfx__opt_config *c, size_t n, float *w, const float *g, float *ms)
{
    const float rho = c->rho, lr = c->lr, eps = c->epsilon;
    for (size_t i = 0; i < n; i++) {
        ms[i] = rho * ms[i] + (1.0f - rho) * g[i] * g[i];
        w[i] -= lr * g[i] / (sqrtf(ms[i]) + eps);
    }
}

void tfx__optimizer_step(const tfx__opt_config *c, uint64_t t, size_t n, float *w, const float *g, float *s1,
                         float *s2)
{
    switch (c->kind) {
    case TFX_OPTIMIZER_SGD: sgd(c, n, w, g, s1); break;
    case TFX_OPTIMIZER_ADAM: adam(c, t, n, w, g, s1, s2); break;
    case TFX_OPTIMIZER_RMSPROP: rmsprop(c, n, w, g, s1); break;
    default: break;
    }
}
