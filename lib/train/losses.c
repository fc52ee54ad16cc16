/* Losses (Keras formulas, "sum over batch size" reduction) with their gradients, and the
 * accuracy metric. Cross-entropy on logits uses log-sum-exp; on probabilities it clips
 * to [eps, 1 - eps] exactly where Keras/TF 2 do. */
#include <math.h>
#include <string.h>

#include "train/train_internal.h"

#define EPS 1e-7 /* Keras backend epsilon() */

static size_t argmax(const float *v, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (v[j] > v[best]) best = j;
    return best;
}

/* Keras "accuracy", resolved by shapes as compile_utils does. */
static int row_correct(int loss, const float *p, const void *y, size_t r, size_t cols)
{
    if (cols == 1) {
        double truth = loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY ? (double)((const int32_t *)y)[r]
                                                                        : (double)((const float *)y)[r];
        double pred = p[0] > 0.5f ? 1.0 : 0.0;
        return pred == truth;
    }
    if (loss == TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY) return argmax(p, cols) == (size_t)((const int32_t *)y)[r];
    return argmax(p, cols) == argmax((const float *)y + r * cols, cols);
}

static double clipd(double v) { return v < EPS ? EPS : (v > 1.0 - EPS ? 1.0 - EPS : v); }
/* tf.clip_by_value passes the gradient where min <= v <= max. */
static double clip_pass(double v) { return v >= EPS && v <= 1.0 - EPS ? 1.0 : 0.0; }

static double sparse_row(int from_logits, const float *z, const float *p, int32_t label, size_t cols, float *g,
                         double inv)
{
    size_t y = (size_t)label;
    double loss = 0.0;
    if (from_logits) {
        double mx = z[0];
        for (size_t j = 1; j < cols; j++) mx = z[j] > mx ? z[j] : mx;
        double s = 0.0;
        for (size_t j = 0; j < cols; j++) s += exp((double)z[j] - mx);
        double lse = mx + log(s);
        loss = lse - (double)z[y];
        if (g)
            for (size_t j = 0; j < cols; j++)
                g[j] = (float)((exp((double)z[j] - lse) - (j == y ? 1.0 : 0.0)) * inv);
        return loss;
    }
    /* TF 2: logits = log(clip(p)), then softmax cross-entropy: -log(c_y / sum c). */
    double s = 0.0;
    for (size_t j = 0; j < cols; j++) s += clipd(p[j]);
    double cy = clipd(p[y]);
    loss = -log(cy) + log(s);
    if (g)
        for (size_t j = 0; j < cols; j++)
            g[j] = (float)(clip_pass(p[j]) * (1.0 / s - (j == y ? 1.0 / cy : 0.0)) * inv);
    return loss;
}

static double categorical_row(int from_logits, const float *z, const float *p, const float *t, size_t cols,
                              float *g, double inv)
{
    double loss = 0.0;
    if (from_logits) {
        double lse = 0.0, st = 0.0;
        double mx = z[0];
        for (size_t j = 1; j < cols; j++) mx = z[j] > mx ? z[j] : mx;
        double s = 0.0;
        for (size_t j = 0; j < cols; j++) s += exp((double)z[j] - mx);
        lse = mx + log(s);
        for (size_t j = 0; j < cols; j++) {
            loss += (double)t[j] * (lse - (double)z[j]);
            st += t[j];
        }
        if (g)
            for (size_t j = 0; j < cols; j++) g[j] = (float)((st * exp((double)z[j] - lse) - (double)t[j]) * inv);
        return loss;
    }
    /* TF 2: q = p / sum(p), c = clip(q), loss = -sum t log c. */
    double S = 0.0;
    for (size_t j = 0; j < cols; j++) S += p[j];
    double aq = 0.0;
    for (size_t j = 0; j < cols; j++) {
        double q = p[j] / S, c = clipd(q);
        loss -= (double)t[j] * log(c);
        aq += clip_pass(q) * (-(double)t[j] / c) * q;
    }
    if (g)
        for (size_t j = 0; j < cols; j++) {
            double q = p[j] / S, a = clip_pass(q) * (-(double)t[j] / clipd(q));
            g[j] = (float)((a - aq) / S * inv);
        }
    return loss;
}

static double binary_row(int from_logits, const float *z, const float *p, const float *t, size_t cols, float *g,
                         double inv)
{
    double loss = 0.0;
    for (size_t j = 0; j < cols; j++) {
        double tj = t[j];
        if (from_logits) {
            double zj = z[j];
            loss += (zj > 0 ? zj : 0.0) - zj * tj + log1p(exp(-fabs(zj)));
            if (g) {
                double sg = zj >= 0 ? 1.0 / (1.0 + exp(-zj)) : exp(zj) / (1.0 + exp(zj));
                g[j] = (float)((sg - tj) * inv / (double)cols);
            }
        } else {
            /* TF 2 backend: clip, then the logs get another + eps. */
            double c = clipd(p[j]);
            loss -= tj * log(c + EPS) + (1.0 - tj) * log(1.0 - c + EPS);
            if (g) g[j] = (float)(clip_pass(p[j]) * (-tj / (c + EPS) + (1.0 - tj) / (1.0 - c + EPS)) * inv / (double)cols);
        }
    }
    return loss / (double)cols;
}

static double mse_row(const float *p, const float *t, size_t cols, float *g, double inv)
{
    double loss = 0.0;
    for (size_t j = 0; j < cols; j++) {
        double d = (double)p[j] - (double)t[j];
        loss += d * d;
        if (g) g[j] = (float)(2.0 * d * inv / (double)cols);
    }
    return loss / (double)cols;
}

double tfx__loss_eval(int loss, int from_logits, const float *z, const float *p, const void *y, size_t rows,
                      size_t cols, float *grad, double *correct)
{
    double sum = 0.0, ok = 0.0, inv = 1.0 / (double)rows;
    for (size_t r = 0; r < rows; r++) {
        const float *zr = z ? z + r * cols : NULL, *pr = p + r * cols;
        float *gr = grad ? grad + r * cols : NULL;
        switch (loss) {
        case TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY:
            sum += sparse_row(from_logits, zr, pr, ((const int32_t *)y)[r], cols, gr, inv);
            break;
        case TFX_LOSS_CATEGORICAL_CROSSENTROPY:
            sum += categorical_row(from_logits, zr, pr, (const float *)y + r * cols, cols, gr, inv);
            break;
        case TFX_LOSS_BINARY_CROSSENTROPY:
            sum += binary_row(from_logits, zr, pr, (const float *)y + r * cols, cols, gr, inv);
            break;
        default:
            sum += mse_row(pr, (const float *)y + r * cols, cols, gr, inv);
            break;
        }
        if (correct) ok += row_correct(loss, pr, y, r, cols);
    }
    if (correct) *correct = ok;
    return sum;
}
