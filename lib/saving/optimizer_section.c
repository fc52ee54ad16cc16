/* The optimizer section (type 3, docs/file-format.md): the compile configuration, the optimizer
 * state and the model's RNG, so that a loaded model resumes training bit for bit. Saving only
 * reads and writes the neutral tfx__train_snapshot (model_internal.h): train fills it through
 * m->train_export and takes a loaded one over from m->resume; saving never calls train. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "saving/format.h"
#include "tfx/train.h"

#define LAYOUT 1 /* the payload's own layout version */

/* What section 3 would hold for m: a pending (loaded) snapshot, or the compiled state. */
int tfx__opt_section_source(const tfx_model *m, tfx__train_snapshot *s, const char *fn)
{
    if (m->resume) {
        *s = *m->resume;
        return TFX_OK;
    }
    if (!m->train || !m->train_export)
        return tfx__error(TFX_ESTATE, "%s: include_optimizer: the model is not compiled, it has no optimizer state",
                          fn);
    int rc = m->train_export(m, s);
    if (rc) return tfx__error_prefix("%s: include_optimizer", fn);
    return TFX_OK;
}

int tfx__opt_section_size(const tfx__train_snapshot *s, size_t *len)
{
    size_t floats, bytes;
    if (tfx__mul_size(s->n_params, (size_t)s->slots, &floats) || tfx__mul_size(floats, 4, &bytes) ||
        bytes > SIZE_MAX - TFX__OPT_FIXED_LEN)
        return tfx__error(TFX_ENOMEM, "the optimizer state of %zu parameters is too large for one file", s->n_params);
    *len = TFX__OPT_FIXED_LEN + bytes;
    return TFX_OK;
}

void tfx__opt_section_put(tfx__writer *w, const tfx__train_snapshot *s, const tfx_model *m)
{
    tfx__put_u32(w, LAYOUT);
    tfx__put_u32(w, (uint32_t)s->loss);
    tfx__put_u32(w, (uint32_t)s->optimizer);
    tfx__put_u32(w, (uint32_t)s->metrics);
    tfx__put_float(w, s->lr);
    tfx__put_float(w, s->momentum);
    tfx__put_u32(w, (uint32_t)s->nesterov);
    tfx__put_float(w, s->beta_1);
    tfx__put_float(w, s->beta_2);
    tfx__put_float(w, s->rho);
    tfx__put_float(w, s->epsilon);
    tfx__put_u64(w, s->step);
    tfx__put_u64(w, m->seed);
    for (int i = 0; i < 4; i++) tfx__put_u64(w, m->rng.s[i]);
    tfx__put_u32(w, (uint32_t)m->rng.has_spare);
    uint64_t spare;
    memcpy(&spare, &m->rng.spare, 8);
    tfx__put_u64(w, spare);
    tfx__put_u64(w, s->n_params);
    tfx__put_u32(w, (uint32_t)s->slots);
    for (int k = 0; k < s->slots; k++) tfx__put_floats(w, s->slot[k], s->n_params);
}

static int bad(const char *fmt, ...) TFX__PRINTF(1, 2);
static int bad(const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return tfx__error(TFX_EFORMAT, "optimizer section: %s", msg);
}

static int in_unit(float v) { return v >= 0.0f && v < 1.0f; }

/* The slots each optimizer keeps (as train's tfx__optimizer_slots; the format fixes them). */
static int slots_for(int optimizer, float momentum)
{
    return optimizer == TFX_OPTIMIZER_ADAM ? 2 : optimizer == TFX_OPTIMIZER_RMSPROP ? 1 : momentum > 0.0f ? 1 : 0;
}

/* Everything compile would refuse, and a state the update rules would turn into NaN. */
static int check_config(const tfx__train_snapshot *s)
{
    if (s->loss < TFX_LOSS_SPARSE_CATEGORICAL_CROSSENTROPY || s->loss > TFX_LOSS_MEAN_SQUARED_ERROR)
        return bad("unknown loss %d", s->loss);
    if (s->optimizer < TFX_OPTIMIZER_SGD || s->optimizer > TFX_OPTIMIZER_RMSPROP)
        return bad("unknown optimizer %d", s->optimizer);
    if (s->metrics & ~TFX_METRIC_ACCURACY) return bad("unknown metric flags 0x%x", (unsigned)s->metrics);
    if (s->nesterov != 0 && s->nesterov != 1) return bad("nesterov %d is not 0 or 1", s->nesterov);
    if (!(isfinite(s->lr) && s->lr >= 0.0f)) return bad("learning rate %g must be finite and >= 0", (double)s->lr);
    if (!in_unit(s->momentum)) return bad("momentum %g must be in [0, 1)", (double)s->momentum);
    if (!in_unit(s->beta_1)) return bad("beta_1 %g must be in [0, 1)", (double)s->beta_1);
    if (!in_unit(s->beta_2)) return bad("beta_2 %g must be in [0, 1)", (double)s->beta_2);
    if (!in_unit(s->rho)) return bad("rho %g must be in [0, 1)", (double)s->rho);
    if (!(isfinite(s->epsilon) && s->epsilon > 0.0f)) return bad("epsilon %g must be positive", (double)s->epsilon);
    return TFX_OK;
}

int tfx__opt_section_read(tfx_model *m, const uint8_t *p, size_t len)
{
    if (len < TFX__OPT_FIXED_LEN)
        return bad("%zu bytes, shorter than its fixed part (%d bytes)", len, TFX__OPT_FIXED_LEN);
    uint32_t layout = tfx__get_le32(p);
    if (layout != LAYOUT) return bad("layout %lu is not known to this libtfx (%d)", (unsigned long)layout, LAYOUT);
    if (m->n_layers == 0) return bad("the model has no layers, it cannot be compiled");
    tfx__train_snapshot s;
    memset(&s, 0, sizeof s);
    s.loss = tfx__get_i32(p + 4);
    s.optimizer = tfx__get_i32(p + 8);
    s.metrics = tfx__get_i32(p + 12);
    s.lr = tfx__get_f32(p + 16);
    s.momentum = tfx__get_f32(p + 20);
    s.nesterov = tfx__get_i32(p + 24);
    s.beta_1 = tfx__get_f32(p + 28);
    s.beta_2 = tfx__get_f32(p + 32);
    s.rho = tfx__get_f32(p + 36);
    s.epsilon = tfx__get_f32(p + 40);
    s.step = tfx__get_le64(p + 44);
    int rc = check_config(&s);
    if (rc) return rc;
    uint64_t seed = tfx__get_le64(p + 52);
    tfx__rng rng;
    memset(&rng, 0, sizeof rng);
    for (int i = 0; i < 4; i++) rng.s[i] = tfx__get_le64(p + 60 + 8 * i);
    uint32_t has_spare = tfx__get_le32(p + 92);
    uint64_t spare = tfx__get_le64(p + 96);
    memcpy(&rng.spare, &spare, 8);
    if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) == 0) return bad("random generator state is all zero");
    if (has_spare > 1) return bad("random generator spare flag %lu is not 0 or 1", (unsigned long)has_spare);
    if (!isfinite(rng.spare) || (!has_spare && rng.spare != 0.0))
        return bad("random generator spare value %g is not valid", rng.spare);
    rng.has_spare = (int)has_spare;
    uint64_t n = tfx__get_le64(p + 104);
    uint32_t slots = tfx__get_le32(p + 112);
    if (n != m->n_params)
        return bad("state for %llu parameters, the model has %zu", (unsigned long long)n, m->n_params);
    int want = slots_for(s.optimizer, s.momentum);
    if (slots != (uint32_t)want)
        return bad("%lu state arrays, optimizer %d keeps %d", (unsigned long)slots, s.optimizer, want);
    s.n_params = m->n_params;
    s.n_layers = m->n_layers;
    s.slots = want;
    size_t need = 0;
    rc = tfx__opt_section_size(&s, &need);
    if (rc || need != len)
        return bad("%zu bytes, %d arrays of %zu parameters need %zu", len, want, m->n_params, rc ? 0 : need);
    tfx__train_snapshot *own = tfx__calloc(1, sizeof *own);
    if (!own) return tfx__error(TFX_ENOMEM, "optimizer section: out of memory");
    *own = s;
    const uint8_t *b = p + TFX__OPT_FIXED_LEN;
    for (int k = 0; k < want; k++) {
        /* sized as compile sizes its slots (at least one float) */
        own->slot[k] = tfx__alloc_streamed(m->n_params ? m->n_params : 1, 1);
        if (!own->slot[k]) {
            tfx__train_snapshot_free(own);
            return tfx__error(TFX_ENOMEM, "optimizer section: out of memory for %zu parameters", m->n_params);
        }
        own->slot[k][0] = 0.0f;
        /* Adam's v and RMSprop's mean square are under a square root: never negative */
        const int squares = (s.optimizer == TFX_OPTIMIZER_ADAM && k == 1) || s.optimizer == TFX_OPTIMIZER_RMSPROP;
        for (size_t i = 0; i < m->n_params; i++, b += 4) {
            float f = tfx__get_f32(b);
            if (!isfinite(f) || (squares && f < 0.0f)) {
                tfx__train_snapshot_free(own);
                return bad("array %d, parameter %zu: %g is not a valid %s", k, i, (double)f,
                           squares ? "mean square (finite, >= 0)" : "state value (finite)");
            }
            own->slot[k][i] = f;
        }
    }
    tfx__train_snapshot_free(m->resume);
    m->resume = own;
    m->seed = seed;
    m->rng = rng;
    return TFX_OK;
}
