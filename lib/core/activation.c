/* Activation functions and their backward passes, including the modified ReLU backward
 * of guided backprop and deconvnet. */
#include <math.h>

#include "core/kernels.h"

int tfx__activation_valid(int a) { return a >= TFX_ACTIVATION_LINEAR && a <= TFX_ACTIVATION_HARD_SWISH; }

float tfx__activation_default_alpha(int a, float alpha)
{
    if (alpha != 0.0f) return alpha;
    if (a == TFX_ACTIVATION_LEAKY_RELU) return 0.2f; /* tf.nn.leaky_relu, Keras 'leaky_relu' */
    if (a == TFX_ACTIVATION_ELU) return 1.0f;
    return 0.0f;
}

const char *tfx__activation_name(int a)
{
    static const char *names[] = {"linear", "relu",  "sigmoid",      "tanh",      "softmax", "leaky_relu",
                                  "elu",    "swish", "relu6", "clip", "hard_sigmoid", "hard_swish"};
    return tfx__activation_valid(a) ? names[a] : "unknown";
}

static float sigmoidf(float z)
{
    /* Stable for large |z|. */
    if (z >= 0) return 1.0f / (1.0f + expf(-z));
    float e = expf(z);
    return e / (1.0f + e);
}

/* min(max(z, lo), hi) in PyTorch's order (hardtanh, clamp). */
static inline float clampf(float z, float lo, float hi)
{
    float v = z > lo ? z : lo;
    return v < hi ? v : hi;
}

void tfx__activation_forward(int act, float alpha, float beta, const float *z, float *y, size_t rows, size_t cols)
{
    size_t n = rows * cols;
    switch (act) {
    case TFX_ACTIVATION_RELU6:
        for (size_t i = 0; i < n; i++) y[i] = clampf(z[i], 0.0f, 6.0f);
        break;
    case TFX_ACTIVATION_CLIP:
        for (size_t i = 0; i < n; i++) y[i] = clampf(z[i], alpha, beta);
        break;
    case TFX_ACTIVATION_HARD_SIGMOID: /* PyTorch's arithmetic: min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = clampf(z[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    case TFX_ACTIVATION_HARD_SWISH: /* x * min(max(x + 3, 0), 6) / 6 */
        for (size_t i = 0; i < n; i++) y[i] = z[i] * clampf(z[i] + 3.0f, 0.0f, 6.0f) / 6.0f;
        break;
    case TFX_ACTIVATION_LINEAR:
        if (y != z)
            for (size_t i = 0; i < n; i++) y[i] = z[i];
        break;
    case TFX_ACTIVATION_RELU:
        for (size_t i = 0; i < n; i++) y[i] = z[i] > 0.0f ? z[i] : 0.0f;
        break;
    case TFX_ACTIVATION_SIGMOID:
        for (size_t i = 0; i < n; i++) y[i] = sigmoidf(z[i]);
        break;
    case TFX_ACTIVATION_TANH:
        for (size_t i = 0; i < n; i++) y[i] = tanhf(z[i]);
        break;
    case TFX_ACTIVATION_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) y[i] = z[i] > 0.0f ? z[i] : alpha * z[i];
        break;
    case TFX_ACTIVATION_ELU:
        for (size_t i = 0; i < n; i++) y[i] = z[i] > 0.0f ? z[i] : alpha * expm1f(z[i]);
        break;
    case TFX_ACTIVATION_SWISH:
        for (size_t i = 0; i < n; i++) y[i] = z[i] * sigmoidf(z[i]);
        break;
    case TFX_ACTIVATION_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const float *zr = z + r * cols;
            float *yr = y + r * cols;
            float mx = zr[0];
            for (size_t j = 1; j < cols; j++) mx = zr[j] > mx ? zr[j] : mx;
            double sum = 0.0;
            for (size_t j = 0; j < cols; j++) {
                yr[j] = expf(zr[j] - mx);
                sum += yr[j];
            }
            float inv = (float)(1.0 / sum);
            for (size_t j = 0; j < cols; j++) yr[j] *= inv;
        }
        break;
    default:
        break;
    }
}

void tfx__bias_activation_forward(int act, float alpha, float beta, const float *bias, float *z, float *y, size_t rows,
                                  size_t cols)
{
    if (act == TFX_ACTIVATION_RELU) { /* the common case in one pass */
        for (size_t r = 0; r < rows; r++) {
            float *zr = z + r * cols, *yr = y + r * cols;
            if (bias && zr != yr)
                for (size_t j = 0; j < cols; j++) {
                    float v = zr[j] + bias[j];
                    zr[j] = v;
                    yr[j] = v > 0.0f ? v : 0.0f;
                }
            else if (bias)
                for (size_t j = 0; j < cols; j++) {
                    float v = zr[j] + bias[j];
                    yr[j] = v > 0.0f ? v : 0.0f;
                }
            else
                for (size_t j = 0; j < cols; j++) yr[j] = zr[j] > 0.0f ? zr[j] : 0.0f;
        }
        return;
    }
    /* Row by row, so the row is still in cache for the activation. */
    for (size_t r = 0; r < rows; r++) {
        float *zr = z + r * cols;
        if (bias)
            for (size_t j = 0; j < cols; j++) zr[j] += bias[j];
        tfx__activation_forward(act, alpha, beta, zr, y + r * cols, 1, cols);
    }
}

int tfx__activation_output_suffices(int act, float alpha)
{
    switch (act) {
    case TFX_ACTIVATION_RELU: /* y > 0 exactly where z > 0 */
    case TFX_ACTIVATION_RELU6: /* lo < y < hi exactly where lo < z < hi (y = z there) */
    case TFX_ACTIVATION_CLIP:
    case TFX_ACTIVATION_SIGMOID:
    case TFX_ACTIVATION_TANH:
        return 1;
    case TFX_ACTIVATION_ELU: /* alpha > 0: y > 0 exactly where z > 0; the backward reads y otherwise */
        return alpha > 0.0f;
    default:
        return 0;
    }
}

int tfx__activation_backward(int act, float alpha, float beta, const float *z, const float *y, const float *dy,
                             float *dz, size_t rows, size_t cols, const tfx__rule *rule)
{
    size_t n = rows * cols;
    /* No pre-activation kept (tfx__activation_output_suffices): the output has the same signs. */
    if (!z) z = y;
    int kind = rule ? rule->kind : TFX__RULE_GRADIENT;
    if (act == TFX_ACTIVATION_RELU && kind == TFX__RULE_GUIDED) {
        for (size_t i = 0; i < n; i++) {
            float d = dy[i]; /* unconditional loads let the loop vectorise */
            dz[i] = (z[i] > 0.0f && d > 0.0f) ? d : 0.0f;
        }
        return TFX_OK;
    }
    if (act == TFX_ACTIVATION_RELU && kind == TFX__RULE_DECONVNET) {
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = d > 0.0f ? d : 0.0f;
        }
        return TFX_OK;
    }
    /* ReLU6 and clip are ReLU-like (a linear piece between two flat ones): guided backprop and
     * deconvnet treat them as ReLU; the gradient passes strictly inside (lo, hi), as PyTorch's
     * hardtanh and TensorFlow's Relu6Grad. */
    if (act == TFX_ACTIVATION_RELU6) {
        alpha = 0.0f;
        beta = 6.0f;
    }
    if ((act == TFX_ACTIVATION_RELU6 || act == TFX_ACTIVATION_CLIP) && kind == TFX__RULE_GUIDED) {
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = (z[i] > alpha && z[i] < beta && d > 0.0f) ? d : 0.0f;
        }
        return TFX_OK;
    }
    if ((act == TFX_ACTIVATION_RELU6 || act == TFX_ACTIVATION_CLIP) && kind == TFX__RULE_DECONVNET) {
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = d > 0.0f ? d : 0.0f;
        }
        return TFX_OK;
    }
    if (kind >= TFX__RULE_LRP_0) {
        /* LRP: elementwise activations pass relevance through unchanged. */
        if (dz != dy)
            for (size_t i = 0; i < n; i++) dz[i] = dy[i];
        return TFX_OK;
    }
    switch (act) {
    case TFX_ACTIVATION_LINEAR:
        if (dz != dy)
            for (size_t i = 0; i < n; i++) dz[i] = dy[i];
        break;
    case TFX_ACTIVATION_RELU:
        for (size_t i = 0; i < n; i++) {
            float d = dy[i]; /* unconditional load: vectorises */
            dz[i] = z[i] > 0.0f ? d : 0.0f;
        }
        break;
    case TFX_ACTIVATION_SIGMOID:
        for (size_t i = 0; i < n; i++) dz[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    case TFX_ACTIVATION_TANH:
        for (size_t i = 0; i < n; i++) dz[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case TFX_ACTIVATION_LEAKY_RELU:
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = z[i] > 0.0f ? d : alpha * d;
        }
        break;
    case TFX_ACTIVATION_ELU:
        for (size_t i = 0; i < n; i++) {
            float d = dy[i], yy = y[i];
            dz[i] = z[i] > 0.0f ? d : d * (yy + alpha);
        }
        break;
    case TFX_ACTIVATION_SWISH:
        for (size_t i = 0; i < n; i++) {
            float s = sigmoidf(z[i]);
            dz[i] = dy[i] * (s + z[i] * s * (1.0f - s));
        }
        break;
    case TFX_ACTIVATION_RELU6:
    case TFX_ACTIVATION_CLIP:
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = z[i] > alpha && z[i] < beta ? d : 0.0f;
        }
        break;
    case TFX_ACTIVATION_HARD_SIGMOID: /* PyTorch: grad / 6 on (-3, 3), else 0 */
        for (size_t i = 0; i < n; i++) {
            float d = dy[i];
            dz[i] = z[i] > -3.0f && z[i] < 3.0f ? d / 6.0f : 0.0f;
        }
        break;
    case TFX_ACTIVATION_HARD_SWISH: /* PyTorch: 0 below -3, grad (x / 3 + 0.5) up to 3, grad above */
        for (size_t i = 0; i < n; i++) {
            float d = dy[i], v = z[i];
            dz[i] = v < -3.0f ? 0.0f : v <= 3.0f ? d * (v / 3.0f + 0.5f) : d;
        }
        break;
    case TFX_ACTIVATION_SOFTMAX:
        for (size_t r = 0; r < rows; r++) {
            const float *yr = y + r * cols, *dyr = dy + r * cols;
            float *dzr = dz + r * cols;
            double dot = 0.0;
            for (size_t j = 0; j < cols; j++) dot += (double)dyr[j] * yr[j];
            for (size_t j = 0; j < cols; j++) dzr[j] = yr[j] * (dyr[j] - (float)dot);
        }
        break;
    default:
        return tfx__error(TFX_EINVAL, "unknown activation %d", act);
    }
    return TFX_OK;
}
