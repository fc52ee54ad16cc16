/* Keras-like model.summary() as a string the caller prints. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"

typedef struct strbuf {
    char *p;
    size_t len, cap;
    int failed;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...) TFX__PRINTF(2, 3);
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    if (b->failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->len + (size_t)k < b->cap) {
            b->len += (size_t)k;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 1024) + (size_t)k;
        char *np = tfx__realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static void shape_str(tfx__shape s, char *out, size_t size)
{
    if (s.flat) snprintf(out, size, "(None, %d)", s.c);
    else snprintf(out, size, "(None, %d, %d, %d)", s.h, s.w, s.c);
}

/* 1234567 -> "1,234,567" as Keras prints totals. */
static void thousands(size_t v, char *out, size_t size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v), o = 0;
    for (int i = 0; i < n && (size_t)o + 2 < size; i++) {
        if (i && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

static void rule(strbuf *b, char c, int width)
{
    char line[600];
    if (width > (int)sizeof line - 1) width = (int)sizeof line - 1;
    memset(line, c, (size_t)width);
    line[width] = '\0';
    sb_printf(b, "%s\n", line);
}

const char *tfx_model_summary(tfx_model *m)
{
    if (!m) {
        tfx__error(TFX_EINVAL, "tfx_model_summary: argument 'm' is NULL");
        return NULL;
    }
    /* Column widths as Keras (29/26/10), the first widened for long names. */
    int w1 = 29, w2 = 26, w3 = 10;
    for (size_t i = 0; i < m->n_layers; i++) {
        int len = (int)strlen(m->layers[i]->name) + (int)strlen(m->layers[i]->ops->type_name) + 5;
        if (len > w1) w1 = len > 270 ? 270 : len;
    }
    int width = w1 + w2 + w3;
    strbuf b = {0};
    sb_printf(&b, "Model: \"sequential\"\n");
    rule(&b, '_', width);
    sb_printf(&b, " %-*s%-*s%-*s\n", w1 - 1, "Layer (type)", w2, "Output Shape", w3, "Param #");
    rule(&b, '=', width);
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        char col1[512], col2[64];
        snprintf(col1, sizeof col1, "%.255s (%s)", l->name, l->ops->type_name);
        shape_str(l->out, col2, sizeof col2);
        sb_printf(&b, " %-*s%-*s%-*zu\n", w1 - 1, col1, w2, col2, w3, l->n_params + l->n_state);
        if (i + 1 < m->n_layers) sb_printf(&b, "\n");
    }
    rule(&b, '=', width);
    char t[40], tr[40], nt[40];
    thousands(tfx_model_param_count(m), t, sizeof t);
    thousands(m->n_params, tr, sizeof tr);
    thousands(tfx_model_param_count(m) - m->n_params, nt, sizeof nt);
    sb_printf(&b, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", t, tr, nt);
    rule(&b, '_', width);
    if (b.failed) {
        tfx__free(b.p);
        tfx__error(TFX_ENOMEM, "tfx_model_summary: out of memory");
        return NULL;
    }
    tfx__free(m->summary);
    m->summary = b.p;
    return m->summary;
}
