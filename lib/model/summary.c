/* Keras-like model.summary() as a string the caller prints: Sequential's table for a chain,
 * the functional one ("Connected to") for a graph. */
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

/* ---- Keras's functional summary (a graph model) ----
 * Keras 2.11's print_summary for a model that is not sequential-like: 98 columns, column ends
 * int(98 * [.33, .55, .67, 1.0]), each cell cut to its width less 2 (the last: its width) and
 * at the first "),", "},", "]," or "'," (so a connection list puts one input per line); what is
 * left of a cell continues on the next line. Widths count code points, as Python's len. */

#define FN_LINE 98
static const int fn_pos[4] = {32, 53, 65, 98};

static int is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

static size_t cp_count(const char *s, size_t bytes)
{
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++) n += !is_continuation((unsigned char)s[i]);
    return n;
}

/* Bytes of the first n code points of s (all of s when shorter). */
static size_t cp_prefix(const char *s, size_t n)
{
    size_t i = 0;
    while (s[i] && n) {
        i++;
        while (s[i] && is_continuation((unsigned char)s[i])) i++;
        n--;
    }
    return i;
}

static void spaces(strbuf *b, int n)
{
    if (n > 0) sb_printf(b, "%*s", n, "");
}

static void fn_row(strbuf *b, const char *const fields[4])
{
    static const char *const breaks[] = {"),", "},", "],", "',"};
    const char *left[4] = {fields[0], fields[1], fields[2], fields[3]};
    while (*left[0] || *left[1] || *left[2] || *left[3]) {
        int len = 0; /* code points on this line */
        for (int col = 0; col < 4; col++) {
            int space = col < 3 ? 2 : 0;
            int cutoff = fn_pos[col] - (col ? fn_pos[col - 1] : 0) - space;
            size_t fit = cp_prefix(left[col], (size_t)cutoff);
            for (size_t k = 0; k < sizeof breaks / sizeof breaks[0]; k++) {
                for (size_t i = 0; i + 1 < fit; i++)
                    if (left[col][i] == breaks[k][0] && left[col][i + 1] == breaks[k][1]) {
                        if (i + 2 < fit) fit = i + 2;
                        break;
                    }
            }
            if (col == 0) {
                sb_printf(b, " ");
                len++;
            }
            sb_printf(b, "%.*s", (int)fit, left[col]);
            len += (int)cp_count(left[col], fit);
            spaces(b, space);
            len += space;
            left[col] += fit;
            spaces(b, fn_pos[col] - len);
            if (len < fn_pos[col]) len = fn_pos[col];
        }
        sb_printf(b, "\n");
    }
}

/* Python's repr of a string: single quotes unless it holds one and no double quote; a backslash
 * and the chosen quote escaped (names hold no control characters). */
static void py_repr(strbuf *b, const char *s)
{
    char q = strchr(s, '\'') && !strchr(s, '"') ? '"' : '\'';
    sb_printf(b, "%c", q);
    for (const char *p = s; *p; p++) {
        if (*p == '\\' || *p == q) sb_printf(b, "\\");
        sb_printf(b, "%c", *p);
    }
    sb_printf(b, "%c", q);
}

#define FN_INPUT_NAME "input_1"

static void functional_summary(strbuf *b, const tfx_model *m)
{
    static const char *const head[4] = {"Layer (type)", "Output Shape", "Param #", "Connected to"};
    char line[FN_LINE + 1];
    memset(line, ' ', FN_LINE);
    line[FN_LINE] = '\0';
    sb_printf(b, "Model: \"model\"\n");
    rule(b, '_', FN_LINE);
    fn_row(b, head);
    rule(b, '=', FN_LINE);
    char col1[64], col2[32];
    snprintf(col1, sizeof col1, "[(None, %d, %d, %d)]", m->input.h, m->input.w, m->input.c);
    const char *in_row[4] = {FN_INPUT_NAME " (InputLayer)", col1, "0", "[]"};
    fn_row(b, in_row);
    sb_printf(b, "%s\n", line);
    for (size_t i = 0; i < m->n_layers && !b->failed; i++) {
        const tfx_layer *l = m->layers[i];
        char col0[TFX__NAME_MAX + 40];
        snprintf(col0, sizeof col0, "%s (%s)", l->name, l->ops->type_name);
        shape_str(l->out, col1, sizeof col1);
        snprintf(col2, sizeof col2, "%zu", l->n_params + l->n_state);
        /* Python's str of the list of connections: ['conv2d[0][0]', 'add[0][0]'] */
        strbuf conn = {0};
        sb_printf(&conn, "[");
        for (size_t j = 0; j < l->n_inputs; j++) {
            int t = l->inputs[j];
            char entry[TFX__NAME_MAX + 16];
            snprintf(entry, sizeof entry, "%s[0][0]", t == 0 ? FN_INPUT_NAME : m->layers[t - 1]->name);
            if (j) sb_printf(&conn, ", ");
            py_repr(&conn, entry);
        }
        sb_printf(&conn, "]");
        if (conn.failed) {
            b->failed = 1;
        } else {
            const char *row[4] = {col0, col1, col2, conn.p};
            fn_row(b, row);
            sb_printf(b, "%s\n", line);
        }
        tfx__free(conn.p);
    }
    rule(b, '=', FN_LINE);
}

static void totals(strbuf *b, const tfx_model *m, int width)
{
    char t[40], tr[40], nt[40];
    thousands(tfx_model_param_count(m), t, sizeof t);
    thousands(m->n_params, tr, sizeof tr);
    thousands(tfx_model_param_count(m) - m->n_params, nt, sizeof nt);
    sb_printf(b, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n", t, tr, nt);
    rule(b, '_', width);
}

static const char *finish(tfx_model *m, strbuf *b)
{
    if (b->failed) {
        tfx__free(b->p);
        tfx__error(TFX_ENOMEM, "tfx_model_summary: out of memory");
        return NULL;
    }
    tfx__free(m->summary);
    m->summary = b->p;
    return m->summary;
}

const char *tfx_model_summary(tfx_model *m)
{
    if (!m) {
        tfx__error(TFX_EINVAL, "tfx_model_summary: argument 'm' is NULL");
        return NULL;
    }
    if (!tfx__model_is_chain(m)) {
        strbuf fb = {0};
        functional_summary(&fb, m);
        totals(&fb, m, FN_LINE);
        return finish(m, &fb);
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
    totals(&b, m, width);
    return finish(m, &b);
}
