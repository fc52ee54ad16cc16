/* What the built-in Keras callbacks share (callback_internal.h). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/callback_internal.h"

const char *const tfx__key_names[TFX__KEY_COUNT] = {"loss", "accuracy", "val_loss", "val_accuracy"};

int tfx__log_key(const char *name)
{
    for (int k = 0; k < TFX__KEY_COUNT; k++)
        if (strcmp(name, tfx__key_names[k]) == 0) return k;
    return -1;
}

double tfx__log_value(const tfx_train_logs *logs, int key)
{
    double v;
    switch (key) {
    case TFX__KEY_LOSS: v = logs->loss; break;
    case TFX__KEY_ACCURACY: v = logs->accuracy; break;
    case TFX__KEY_VAL_LOSS: v = logs->val_loss; break;
    default: v = logs->val_accuracy; break;
    }
    /* Keras's metrics are float32, widened to Python floats for the callbacks: the same values
     * in comparisons, file names and CSV rows ("0.6931471824645996", not 17 digits of a double) */
    return (double)(float)v;
}

int tfx__check_monitor(const char *fn, const char *monitor, int mode, int *key)
{
    *key = tfx__log_key(monitor);
    TFX__CHECK_ARG(*key >= 0, "%s: monitor '%.100s' is not a log key (loss, accuracy, val_loss, val_accuracy)", fn,
                   monitor);
    TFX__CHECK_ARG(mode == TFX_MODE_AUTO || mode == TFX_MODE_MIN || mode == TFX_MODE_MAX,
                   "%s: mode %d must be TFX_MODE_AUTO, TFX_MODE_MIN or TFX_MODE_MAX", fn, mode);
    return TFX_OK;
}

int tfx__check_available(const char *fn, tfx_model *m, const tfx_train_logs *logs, int key, const char *what)
{
    tfx__train *t;
    int rc = tfx__train_get(m, fn, &t);
    if (rc) return rc;
    int has_acc = (t->metrics & TFX_METRIC_ACCURACY) != 0;
    int is_val = key == TFX__KEY_VAL_LOSS || key == TFX__KEY_VAL_ACCURACY;
    int is_acc = key == TFX__KEY_ACCURACY || key == TFX__KEY_VAL_ACCURACY;
    if (is_val && logs->val_samples == 0)
        return tfx__error(TFX_EINVAL, "%s: %s '%s' is not available: this fit has no validation data", fn, what,
                          tfx__key_names[key]);
    if (is_acc && !has_acc)
        return tfx__error(TFX_EINVAL,
                          "%s: %s '%s' is not available: the model was compiled without the accuracy "
                          "metric",
                          fn, what, tfx__key_names[key]);
    return TFX_OK;
}

int tfx__callback_print(tfx_model *m, const char *fmt, ...)
{
    tfx__train *t = m ? m->train : NULL;
    /* m->train is the compiled state whenever a fit runs; outside fit there is no sink */
    if (!t || !m->fitting || !t->sink) return TFX_OK;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (k < 0) return TFX_OK;
    size_t n = (size_t)k < sizeof line - 2 ? (size_t)k : sizeof line - 2;
    line[n++] = '\n';
    return tfx__progress_write(t->sink, line, n);
}

void tfx__py_repr(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v < 0 ? "-inf" : "inf");
        return;
    }
    if (v == 0.0) {
        snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    /* The shortest digits that read back as v (Python's repr), then its layout rules. */
    char buf[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (strtod(buf, NULL) == v) break;
    }
    const char *s = buf;
    int neg = *s == '-';
    if (neg) s++;
    char digits[24];
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && nd < sizeof digits - 1) digits[nd++] = *s;
    digits[nd] = '\0';
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = '\0';
    int x = atoi(s + 1);
    char res[64];
    size_t u = 0;
    if (neg) res[u++] = '-';
    if (x >= -4 && x < 16) {
        if (x >= 0) {
            for (int i = 0; i <= x; i++) res[u++] = (size_t)i < nd ? digits[i] : '0';
            res[u++] = '.';
            if ((size_t)x + 1 < nd)
                for (size_t i = (size_t)x + 1; i < nd; i++) res[u++] = digits[i];
            else
                res[u++] = '0';
        } else {
            res[u++] = '0';
            res[u++] = '.';
            for (int i = 0; i < -x - 1; i++) res[u++] = '0';
            for (size_t i = 0; i < nd; i++) res[u++] = digits[i];
        }
        res[u] = '\0';
    } else {
        res[u++] = digits[0];
        if (nd > 1) {
            res[u++] = '.';
            for (size_t i = 1; i < nd; i++) res[u++] = digits[i];
        }
        snprintf(res + u, sizeof res - u, "e%c%02d", x < 0 ? '-' : '+', abs(x));
    }
    snprintf(out, cap, "%s", res);
}

/* ---- str.format for file names ---- */

typedef struct fmt_spec {
    char fill, align, sign, type;
    int zero, width, precision; /* precision -1: none */
} fmt_spec;

static int parse_spec(const char *fn, const char *spec, size_t len, int is_int, fmt_spec *f)
{
    memset(f, 0, sizeof *f);
    f->fill = ' ';
    f->precision = -1;
    size_t i = 0;
    const char *aligns = "<>=^";
    if (len >= 2 && strchr(aligns, spec[1])) {
        f->fill = spec[0];
        f->align = spec[1];
        i = 2;
    } else if (len >= 1 && strchr(aligns, spec[0])) {
        f->align = spec[0];
        i = 1;
    }
    if (i < len && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) f->sign = spec[i++];
    if (i < len && spec[i] == '0') {
        f->zero = 1;
        i++;
    }
    while (i < len && spec[i] >= '0' && spec[i] <= '9') {
        f->width = f->width * 10 + (spec[i++] - '0');
        if (f->width > 200)
            return tfx__error(TFX_EINVAL, "%s: width in format spec '%.*s' is too large", fn, (int)len, spec);
    }
    if (i < len && spec[i] == '.') {
        i++;
        if (i >= len || spec[i] < '0' || spec[i] > '9')
            return tfx__error(TFX_EINVAL, "%s: format spec '%.*s': '.' without a precision", fn, (int)len, spec);
        f->precision = 0;
        while (i < len && spec[i] >= '0' && spec[i] <= '9') {
            f->precision = f->precision * 10 + (spec[i++] - '0');
            if (f->precision > 60)
                return tfx__error(TFX_EINVAL, "%s: precision in format spec '%.*s' is too large", fn, (int)len, spec);
        }
    }
    if (i < len) f->type = spec[i++];
    if (i < len)
        return tfx__error(TFX_EINVAL,
                          "%s: format spec '%.*s' is not supported ([[fill]align][sign][0][width]"
                          "[.precision][type])",
                          fn, (int)len, spec);
    if (f->type && !strchr("deEfFgG%", f->type))
        return tfx__error(TFX_EINVAL, "%s: format type '%c' is not supported (d e E f F g G %%)", fn, f->type);
    if (f->type == 'd' && !is_int) return tfx__error(TFX_EINVAL, "%s: unknown format code 'd' for a float field", fn);
    if (is_int && f->precision >= 0 && (f->type == 0 || f->type == 'd'))
        return tfx__error(TFX_EINVAL, "%s: precision not allowed in an integer format spec", fn);
    if (f->zero && !f->align) {
        f->fill = '0';
        f->align = '=';
    }
    return TFX_OK;
}

/* Python's float formatting of one value under a spec, without padding. */
static void format_number(const fmt_spec *f, int is_int, long iv, double v, char *out, size_t cap)
{
    char body[128];
    double a = fabs(v);
    int neg = is_int ? iv < 0 : (signbit(v) && !isnan(v));
    char type = f->type;
    if (is_int && (type == 0 || type == 'd')) {
        snprintf(body, sizeof body, "%ld", iv < 0 ? -iv : iv);
    } else {
        if (is_int) a = fabs((double)iv);
        int upper = type == 'E' || type == 'F' || type == 'G';
        if (isnan(a) || isinf(a)) {
            snprintf(body, sizeof body, "%s%s", isnan(a) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf"),
                     type == '%' ? "%" : "");
        } else if (type == 0 && f->precision < 0) {
            tfx__py_repr(a, body, sizeof body);
        } else if (type == 0) {
            /* like 'g', switching to exponents at exp >= p - 1, at least one digit after '.' */
            int p = f->precision ? f->precision : 1;
            char t[80];
            snprintf(t, sizeof t, "%.*e", p - 1, a);
            int x = atoi(strchr(t, 'e') + 1);
            if (x < -4 || x >= p - 1) {
                char *e = strchr(t, 'e');
                char mant[64];
                snprintf(mant, sizeof mant, "%.*s", (int)(e - t), t);
                if (strchr(mant, '.')) {
                    size_t n = strlen(mant);
                    while (mant[n - 1] == '0') mant[--n] = '\0';
                    if (mant[n - 1] == '.') mant[--n] = '\0';
                }
                snprintf(body, sizeof body, "%se%c%02d", mant, x < 0 ? '-' : '+', abs(x));
            } else {
                snprintf(body, sizeof body, "%.*f", p - 1 - x, a);
                if (strchr(body, '.')) {
                    size_t n = strlen(body);
                    while (body[n - 1] == '0') body[--n] = '\0';
                    if (body[n - 1] == '.') body[--n] = '\0';
                }
                if (!strchr(body, '.')) strcat(body, ".0");
            }
        } else {
            int p = f->precision >= 0 ? f->precision : 6;
            char cf[8];
            if (type == '%') {
                snprintf(body, sizeof body, "%.*f%%", p, a * 100.0);
            } else {
                snprintf(cf, sizeof cf, "%%.*%c", type);
                snprintf(body, sizeof body, cf, p, a);
            }
        }
    }
    const char *sg = neg ? "-" : f->sign == '+' ? "+" : f->sign == ' ' ? " " : "";
    size_t bl = strlen(body), sl = strlen(sg);
    size_t w = (size_t)f->width;
    char align = f->align ? f->align : '>';
    size_t pad = w > bl + sl ? w - bl - sl : 0;
    size_t u = 0;
    char res[400];
    if (align == '=') {
        u += (size_t)snprintf(res + u, sizeof res - u, "%s", sg);
        for (size_t i = 0; i < pad; i++) res[u++] = f->fill;
        snprintf(res + u, sizeof res - u, "%s", body);
    } else {
        size_t left = align == '<' ? 0 : align == '^' ? pad / 2 : pad;
        for (size_t i = 0; i < left; i++) res[u++] = f->fill;
        u += (size_t)snprintf(res + u, sizeof res - u, "%s%s", sg, body);
        for (size_t i = left; i < pad; i++) res[u++] = f->fill;
        res[u] = '\0';
    }
    snprintf(out, cap, "%s", res);
}

int tfx__format_path(const char *fn, const char *tmpl, int epoch, const tfx_train_logs *logs, char *out, size_t cap,
                     unsigned *keys_used)
{
    size_t u = 0;
    if (keys_used) *keys_used = 0;
#define PUT(c)                                                                                                      \
    do {                                                                                                            \
        if (out) {                                                                                                  \
            if (u + 1 >= cap)                                                                                       \
                return tfx__error(TFX_EINVAL, "%s: the formatted file name is longer than %zu bytes", fn, cap - 1); \
            out[u] = (c);                                                                                           \
        }                                                                                                           \
        u++;                                                                                                        \
    } while (0)
    for (const char *s = tmpl; *s; s++) {
        if (*s == '{' && s[1] == '{') {
            PUT('{');
            s++;
            continue;
        }
        if (*s == '}') {
            if (s[1] != '}') return tfx__error(TFX_EINVAL, "%s: single '}' in the file name template '%s'", fn, tmpl);
            PUT('}');
            s++;
            continue;
        }
        if (*s != '{') {
            PUT(*s);
            continue;
        }
        const char *end = strchr(s, '}');
        if (!end) return tfx__error(TFX_EINVAL, "%s: '{' without '}' in the file name template '%s'", fn, tmpl);
        const char *colon = memchr(s + 1, ':', (size_t)(end - s - 1));
        size_t nlen = (size_t)((colon ? colon : end) - s - 1);
        char name[32];
        if (nlen == 0 || nlen >= sizeof name)
            return tfx__error(TFX_EINVAL,
                              "%s: field '{%.*s}' in the file name template: epoch, loss, accuracy, "
                              "val_loss or val_accuracy",
                              fn, (int)(end - s - 1), s + 1);
        memcpy(name, s + 1, nlen);
        name[nlen] = '\0';
        int is_int = strcmp(name, "epoch") == 0;
        int key = is_int ? -1 : tfx__log_key(name);
        if (!is_int && key < 0)
            return tfx__error(TFX_EINVAL,
                              "%s: unknown field '{%s}' in the file name template (epoch, loss, accuracy, "
                              "val_loss, val_accuracy)",
                              fn, name);
        fmt_spec f;
        const char *spec = colon ? colon + 1 : end;
        int rc = parse_spec(fn, spec, (size_t)(end - spec), is_int, &f);
        if (rc) return rc;
        if (key >= 0 && keys_used) *keys_used |= 1u << key;
        if (out) {
            char val[400];
            format_number(&f, is_int, (long)epoch + 1, key >= 0 ? tfx__log_value(logs, key) : 0.0, val, sizeof val);
            for (const char *v = val; *v; v++) PUT(*v);
        }
        s = end;
    }
    if (out) {
        if (u >= cap) return tfx__error(TFX_EINVAL, "%s: the formatted file name is too long", fn);
        out[u] = '\0';
    }
#undef PUT
    return TFX_OK;
}

/* ---- weights ---- */

int tfx__weights_save(const tfx_model *m, tfx__weights_copy *w, const char *fn)
{
    size_t n = m->n_params;
    for (size_t i = 0; i < m->n_layers; i++) n += m->layers[i]->n_state;
    if (!w->data || w->n != n) {
        tfx__free(w->data);
        w->n = 0;
        w->data = tfx__malloc((n ? n : 1) * sizeof(float));
        if (!w->data) return tfx__error(TFX_ENOMEM, "%s: out of memory for a copy of %zu weights", fn, n);
        w->n = n;
    }
    if (m->n_params) memcpy(w->data, m->params, m->n_params * sizeof(float));
    size_t at = m->n_params;
    for (size_t i = 0; i < m->n_layers; i++) {
        const tfx_layer *l = m->layers[i];
        if (l->n_state) memcpy(w->data + at, l->state, l->n_state * sizeof(float));
        at += l->n_state;
    }
    return TFX_OK;
}

void tfx__weights_restore(tfx_model *m, const tfx__weights_copy *w)
{
    if (m->n_params) memcpy(m->params, w->data, m->n_params * sizeof(float));
    size_t at = m->n_params;
    for (size_t i = 0; i < m->n_layers; i++) {
        tfx_layer *l = m->layers[i];
        if (l->n_state) memcpy(l->state, w->data + at, l->n_state * sizeof(float));
        at += l->n_state;
    }
    tfx__model_weights_changed(m);
}

void tfx__weights_free(tfx__weights_copy *w)
{
    tfx__free(w->data);
    w->data = NULL;
    w->n = 0;
}
