/* Keras's progress output (tf.keras ProgbarLogger / Progbar, TF 2.x): verbose 1 redraws a
 * 30-character bar with '\r' at most every 0.05 s and finishes each epoch with
 *   "n/n [==============================] - 12s 3ms/step - loss: 0.5123 - accuracy: ..."
 * verbose 2 prints only "n/n - 12s - loss: ... - val_accuracy: ..." per epoch. Text goes to
 * the caller's FILE* or write callback, never anywhere else. */
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "train/train_internal.h"

#define BAR_WIDTH 30
#define INTERVAL 0.05

static int emit(tfx__progress *p, const char *s, size_t len)
{
    if (len == 0) return TFX_OK;
    if (p->write) {
        int rc = p->write(s, len, p->payload);
        if (rc) return tfx__error(TFX_EIO, "progress writer returned %d", rc);
        return TFX_OK;
    }
    if (p->file) {
        if (fwrite(s, 1, len, p->file) != len || fflush(p->file) != 0)
            return tfx__error(TFX_EIO, "writing the progress output failed");
    }
    return TFX_OK;
}

int tfx__progress_write(tfx__progress *p, const char *s, size_t len)
{
    int rc = emit(p, s, len);
    p->prev_width = 0; /* a bar being redrawn continues on a new line, not over this text */
    return rc;
}

static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...) TFX__PRINTF(4, 5);
static void append(char *buf, size_t cap, size_t *used, const char *fmt, ...)
{
    if (*used >= cap - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *used, cap - *used, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    *used += (size_t)k < cap - *used ? (size_t)k : cap - 1 - *used;
}

/* Keras: ' %.4f' unless |v| <= 1e-3, then ' %.4e'. */
static void append_value(char *buf, size_t cap, size_t *used, const char *key, double v)
{
    if (fabs(v) > 1e-3)
        append(buf, cap, used, " - %s: %.4f", key, v);
    else
        append(buf, cap, used, " - %s: %.4e", key, v);
}

static void append_time_per_step(char *buf, size_t cap, size_t *used, double t)
{
    if (t >= 1 || t == 0)
        append(buf, cap, used, " %.0fs/step", t);
    else if (t >= 1e-3)
        append(buf, cap, used, " %.0fms/step", t * 1e3);
    else
        append(buf, cap, used, " %.0fus/step", t * 1e6);
}

static int digits(size_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

int tfx__progress_epoch_begin(tfx__progress *p, int epoch, int epochs, size_t steps)
{
    p->target = steps;
    p->start = p->clock();
    p->last_update = -1e300;
    p->prev_width = 0;
    if (p->verbose <= 0 || (!p->file && !p->write)) return TFX_OK;
    if (epochs > 1) {
        char head[64];
        int k = snprintf(head, sizeof head, "Epoch %d/%d\n", epoch + 1, epochs);
        return emit(p, head, (size_t)k);
    }
    return TFX_OK;
}

/* One verbose-1 line: bar, then ETA (running) or elapsed time and time per step (final). */
static int draw(tfx__progress *p, size_t current, int final, double loss, double acc, int has_val, double val_loss,
                double val_acc)
{
    double now = p->clock();
    char *b = p->line;
    size_t cap = sizeof p->line, used = 0;
    if (p->prev_width) append(b, cap, &used, "\r");
    size_t bar_start = used;
    double elapsed = now - p->start;
    double per_step = current ? elapsed / (double)current : 0.0;
    if (p->target == 0) {
        /* Unknown length (a provider's first epoch): Keras's "%7d/Unknown", elapsed time and time per step. */
        append(b, cap, &used, "%7zu/Unknown - %.0fs", current, elapsed);
        append_time_per_step(b, cap, &used, per_step);
        goto values;
    }
    int nd = digits(p->target);
    append(b, cap, &used, "%*zu/%zu [", nd, current, p->target);
    size_t width = (size_t)((double)BAR_WIDTH * (double)current / (double)(p->target ? p->target : 1));
    if (width > BAR_WIDTH) width = BAR_WIDTH;
    for (size_t i = 0; i + 1 < width; i++) append(b, cap, &used, "=");
    if (width > 0) append(b, cap, &used, current < p->target ? ">" : "=");
    for (size_t i = width; i < BAR_WIDTH; i++) append(b, cap, &used, ".");
    append(b, cap, &used, "]");
    if (final) {
        append(b, cap, &used, " - %.0fs", elapsed);
        append_time_per_step(b, cap, &used, per_step);
    } else {
        double eta = per_step * (double)(p->target - current);
        long e = (long)eta;
        if (eta > 3600)
            append(b, cap, &used, " - ETA: %ld:%02ld:%02ld", e / 3600, (e % 3600) / 60, e % 60);
        else if (eta > 60)
            append(b, cap, &used, " - ETA: %ld:%02ld", e / 60, e % 60);
        else
            append(b, cap, &used, " - ETA: %lds", e);
    }
values:
    append_value(b, cap, &used, "loss", loss);
    if (p->has_acc) append_value(b, cap, &used, "accuracy", acc);
    if (has_val) {
        append_value(b, cap, &used, "val_loss", val_loss);
        if (p->has_acc) append_value(b, cap, &used, "val_accuracy", val_acc);
    }
    size_t width_now = used - bar_start;
    /* Blank out the rest of a longer previous line, as Keras pads with spaces. */
    for (size_t i = width_now; i < p->prev_width; i++) append(b, cap, &used, " ");
    if (final) append(b, cap, &used, "\n");
    p->prev_width = final ? 0 : width_now;
    p->last_update = now;
    return emit(p, b, used);
}

int tfx__progress_batch(tfx__progress *p, size_t current, double loss, double acc)
{
    if (p->verbose != 1 || (!p->file && !p->write)) return TFX_OK;
    double now = p->clock();
    if (now - p->last_update < INTERVAL) return TFX_OK;
    return draw(p, current, 0, loss, acc, 0, 0.0, 0.0);
}

int tfx__progress_epoch_end(tfx__progress *p, double loss, double acc, int has_val, double val_loss, double val_acc)
{
    if (p->verbose <= 0 || (!p->file && !p->write)) return TFX_OK;
    if (p->verbose == 1) return draw(p, p->target, 1, loss, acc, has_val, val_loss, val_acc);
    char *b = p->line;
    size_t cap = sizeof p->line, used = 0;
    int nd = digits(p->target);
    append(b, cap, &used, "%*zu/%zu - %.0fs", nd, p->target, p->target, p->clock() - p->start);
    append_value(b, cap, &used, "loss", loss);
    if (p->has_acc) append_value(b, cap, &used, "accuracy", acc);
    if (has_val) {
        append_value(b, cap, &used, "val_loss", val_loss);
        if (p->has_acc) append_value(b, cap, &used, "val_accuracy", val_acc);
    }
    append(b, cap, &used, "\n");
    return emit(p, b, used);
}
