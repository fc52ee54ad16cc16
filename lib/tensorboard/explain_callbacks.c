/* tf-explain's callbacks (research/tf-explain.md §C, research/tfevents.md §5): at the end of
 * every epoch, run an explainer on a few stored validation images and write its picture as one
 * image summary, step = epoch. One implementation for every method; the seven tf-explain names
 * are thin wrappers. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/options.h"
#include "explain/explain_internal.h"
#include "tensorboard/tensorboard_internal.h"

struct tfx_explainer_callback {
    tfx_callback hooks;
    tfx_model *model;         /* the model the checks ran against (borrowed) */
    int method;
    int class_index;
    int has_layer;
    char layer[TFX__NAME_MAX];
    tfx_explain_options eo;   /* resolved; layer_name points into `layer`, class_indices NULL */
    float *x;                 /* own copy of the validation images */
    size_t n;
    char *tag;
    tfx_explainer_callback_options opt;
    tfx_event_writer *w;
    char *run_dir;            /* the directory of the event file */
    int status;               /* first error during training, or TFX_OK */
    char message[512];
    double seconds;
    size_t images, png_bytes;
};

/* tf-explain's tag and default output directory per method (index = tfx_method). */
static const char *const method_tags[] = {NULL,
                                          "Activations Visualization",
                                          "VanillaGradients",
                                          "GradientsInputs",
                                          "Occlusion Sensitivity",
                                          "Grad CAM",
                                          "SmoothGrad",
                                          "IntegratedGradients",
                                          /* roadmap methods (tf-explain never shipped them) */
                                          "Grad CAM++",
                                          "Score CAM",
                                          "Layer CAM",
                                          "XGrad CAM",
                                          "HiRes CAM",
                                          "Eigen CAM",
                                          "Guided Backprop",
                                          "Guided Grad CAM",
                                          "DeconvNet",
                                          "Guided SmoothGrad",
                                          "LRP",
                                          "Noise Tunnel"};
static const char *const method_dirs[] = {NULL,
                                          "logs/activations_visualizations",
                                          "logs/vanilla_gradients",
                                          "logs/gradients_inputs",
                                          "logs/occlusion_sensitivity",
                                          "logs/grad_cam",
                                          "logs/smoothgrad",
                                          "logs/integrated_gradients",
                                          "logs/grad_cam_plus_plus",
                                          "logs/score_cam",
                                          "logs/layer_cam",
                                          "logs/xgrad_cam",
                                          "logs/hires_cam",
                                          "logs/eigen_cam",
                                          "logs/guided_backprop",
                                          "logs/guided_grad_cam",
                                          "logs/deconvnet",
                                          "logs/guided_smoothgrad",
                                          "logs/lrp",
                                          "logs/noise_tunnel"};
#define N_KNOWN ((int)(sizeof method_tags / sizeof method_tags[0]))
_Static_assert(sizeof method_tags == sizeof method_dirs, "one directory per tag");

TFX__OPTIONS_DESC_V1(explainer_callback_options, tfx_explainer_callback_options, TFX_EXPLAINER_CALLBACK_OPTIONS_VERSION,
                     TFX_EXPLAINER_CALLBACK_OPTIONS_INIT);

int tfx_explainer_callback_options_init(tfx_explainer_callback_options *opts, unsigned version)
{
    return tfx__options_init(&explainer_callback_options, opts, version, "tfx_explainer_callback_options_init");
}

static double monotonic(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Any method's picture: the seven named picture calls, and for the others (the roadmap's) the
 * raw maps through tfx_attribution_render (heatmaps for CAM-like maps, saliency for gradient-like
 * ones), in the mode the explain options ask for. */
static int render(tfx_explainer_callback *cb, tfx_model *m, tfx_image **img)
{
    const tfx_explain_options *o = &cb->eo;
    const char *layer = cb->has_layer ? cb->layer : NULL;
    switch (cb->method) {
    case TFX_METHOD_ACTIVATIONS: return tfx_extract_activations(m, cb->x, cb->n, layer, o, img);
    case TFX_METHOD_VANILLA_GRADIENTS: return tfx_vanilla_gradients(m, cb->x, cb->n, cb->class_index, o, img);
    case TFX_METHOD_GRADIENTS_INPUTS: return tfx_gradients_inputs(m, cb->x, cb->n, cb->class_index, o, img);
    case TFX_METHOD_OCCLUSION: return tfx_occlusion_sensitivity(m, cb->x, cb->n, cb->class_index, o, img);
    case TFX_METHOD_GRAD_CAM: return tfx_grad_cam(m, cb->x, cb->n, cb->class_index, o, img);
    case TFX_METHOD_SMOOTH_GRAD: return tfx_smooth_grad(m, cb->x, cb->n, cb->class_index, o, img);
    case TFX_METHOD_INTEGRATED_GRADIENTS:
        return tfx_integrated_gradients(m, cb->x, cb->n, cb->class_index, o, img);
    default: break;
    }
    tfx_attribution *a;
    int rc = tfx_explain(m, cb->x, cb->n, o, &a); /* o->method, class_index, layer_name set at construction */
    if (rc) return rc;
    tfx_render_options ro = TFX_RENDER_OPTIONS_INIT;
    ro.compat = o->compat;
    ro.image_weight = o->image_weight;
    switch (cb->method) {
    case TFX_METHOD_GUIDED_BACKPROP:
    case TFX_METHOD_DECONVNET:
    case TFX_METHOD_GUIDED_SMOOTH_GRAD:
    case TFX_METHOD_NOISE_TUNNEL:
        ro.reduce = TFX_REDUCE_MAX_ABS; /* gradients: as tfx_attribution_render's default */
        break;
    default: break;
    }
    rc = tfx_attribution_render(a, cb->x, &ro, img);
    tfx_attribution_free(a);
    return rc;
}

/* Remember the first failure; the hook's return value decides whether fit goes on. */
static int failed(tfx_explainer_callback *cb, int rc)
{
    if (cb->status == TFX_OK) {
        cb->status = rc;
        snprintf(cb->message, sizeof cb->message, "%s: %s", cb->tag, tfx_error_last()->message);
    }
    if (cb->opt.stop_on_error) {
        tfx__error(cb->status, "%s", cb->message); /* fit reports this message with TFX_EUSER */
        return 1;
    }
    return 0;
}

static int on_train_begin(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    (void)logs;
    tfx_explainer_callback *cb = payload;
    if (m != cb->model) {
        /* the construction-time checks were for another model: refuse rather than fail later */
        tfx__error(TFX_EINVAL, "explainer callback '%s': created for another model than the one being fit", cb->tag);
        return 1;
    }
    return 0;
}

static int on_epoch_end(tfx_model *m, const tfx_train_logs *logs, void *payload)
{
    tfx_explainer_callback *cb = payload;
    if (cb->status) return cb->opt.stop_on_error ? failed(cb, cb->status) : 0;
    double t0 = monotonic();
    tfx_image *img = NULL;
    int rc = render(cb, m, &img);
    unsigned char *png = NULL;
    size_t png_size = 0;
    if (!rc) rc = tfx_image_encode_png(img, &png, &png_size);
    if (!rc)
        rc = tfx_event_writer_add_image_png(cb->w, cb->tag, logs->epoch, img->width, img->height, img->channels, png,
                                            png_size);
    if (!rc) rc = tfx_event_writer_flush(cb->w);
    if (!rc) {
        cb->images++;
        cb->png_bytes += png_size;
    }
    tfx_image_png_free(png);
    tfx_image_free(img);
    cb->seconds += monotonic() - t0;
    return rc ? failed(cb, rc) : 0;
}

/* A run name is one directory name inside output_dir (the docs call it a subdirectory): no
 * separator, no "." or ".." that would put the event file elsewhere, and UTF-8 as TensorBoard
 * shows it. NULL (a time stamp) and "" (output_dir itself) are the documented defaults. */
static int check_run_name(const char *fn, const char *run)
{
    if (!run || !run[0]) return TFX_OK;
    const char *slash = strchr(run, '/');
    if (slash)
        return tfx__error(TFX_EINVAL, "%s: run_name '%s' holds a '/' at byte %zu (it names one subdirectory of "
                                      "output_dir)", fn, run, (size_t)(slash - run));
    if (strcmp(run, ".") == 0 || strcmp(run, "..") == 0)
        return tfx__error(TFX_EINVAL, "%s: run_name '%s' is not a subdirectory of output_dir", fn, run);
    size_t bad;
    if (!tfx__utf8_valid(run, &bad))
        return tfx__error(TFX_EINVAL, "%s: run_name is not valid UTF-8 (at byte %zu)", fn, bad);
    return TFX_OK;
}

/* "<output_dir>/<run>" with run = the options' name or tf-explain's local-time stamp, made
 * unique among existing entries. */
static int run_dir(const tfx_explainer_callback_options *o, const char *output_dir, char **out)
{
    static const char fn[] = "tfx_explainer_callback_new";
    char stamp[96];
    const char *run = o->run_name;
    if (!run) {
        double t;
        if (o->clock) {
            t = o->clock(o->clock_user);
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        }
        if (!isfinite(t) || t < 0 || t >= 1e12)
            return tfx__error(TFX_EINVAL, "%s: the clock returned %g (need Unix seconds in [0, 1e12))", fn, t);
        time_t sec = (time_t)t;
        long usec = (long)((t - (double)sec) * 1e6);
        if (usec > 999999) usec = 999999;
        struct tm tm;
        if (!localtime_r(&sec, &tm)) return tfx__error(TFX_ERROR, "%s: localtime failed for %g", fn, t);
        size_t k = strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(stamp + k, sizeof stamp - k, ".%06ld", usec);
        run = stamp;
    }
    size_t len = strlen(output_dir) + strlen(run) + 32;
    char *p = tfx__malloc(len);
    if (!p) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    if (!run[0]) {
        snprintf(p, len, "%s", output_dir);
    } else {
        snprintf(p, len, "%s/%s", output_dir, run);
        struct stat st;
        /* a stamp taken twice in one microsecond (or a fixed test clock) must not share a run */
        for (int k = 1; !o->run_name && stat(p, &st) == 0 && k < 1000000; k++)
            snprintf(p, len, "%s/%s-%d", output_dir, run, k);
    }
    *out = p;
    return TFX_OK;
}

void tfx_explainer_callback_free(tfx_explainer_callback *cb)
{
    if (!cb) return;
    tfx_event_writer_free(cb->w);
    tfx__free(cb->run_dir);
    tfx__free(cb->x);
    tfx__free(cb->tag);
    tfx__free(cb);
}

int tfx_explainer_callback_new(tfx_explainer_callback **out, tfx_model *m, int method, const float *x, size_t n,
                               int class_index, const char *layer_name, const char *output_dir,
                               const tfx_explain_options *explain, const tfx_explainer_callback_options *opts)
{
    static const char fn[] = "tfx_explainer_callback_new";
    TFX__CHECK_NULL(out);
    *out = NULL;
    TFX__CHECK_NULL(m);
    TFX__CHECK_NULL(x);
    TFX__CHECK_ARG(method >= TFX_METHOD_ACTIVATIONS && method <= TFX_METHOD_NOISE_TUNNEL,
                   "%s: unknown method %d (must be %d..%d)", fn, method, TFX_METHOD_ACTIVATIONS,
                   TFX_METHOD_NOISE_TUNNEL);
    TFX__CHECK_ARG(n > 0, "%s: n = 0 validation images", fn);
    TFX__CHECK_ARG(class_index >= -1, "%s: class_index = %d (need -1 or a class)", fn, class_index);
    if (method == TFX_METHOD_ACTIVATIONS && !layer_name)
        return tfx__error(TFX_EINVAL, "%s: activations need a layer name", fn);
    if (layer_name && strlen(layer_name) >= TFX__NAME_MAX)
        return tfx__error(TFX_EINVAL, "%s: layer name of %zu bytes is longer than any layer's", fn,
                          strlen(layer_name));
    if (!output_dir) {
        if (method >= N_KNOWN)
            return tfx__error(TFX_EINVAL, "%s: output_dir is NULL and method %d has no default directory", fn,
                              method);
        output_dir = method_dirs[method];
    }
    TFX__CHECK_ARG(output_dir[0] != '\0', "%s: output_dir is empty", fn);

    tfx_explainer_callback_options o;
    int rc = tfx__options_copy(&explainer_callback_options, &o, opts, fn);
    if (rc) return rc;
    if (o.tag && !o.tag[0]) return tfx__error(TFX_EINVAL, "%s: tag is empty", fn);
    size_t bad;
    if (o.tag && !tfx__utf8_valid(o.tag, &bad))
        return tfx__error(TFX_EINVAL, "%s: tag is not valid UTF-8 (at byte %zu); TensorBoard's readers reject it",
                          fn, bad);
    rc = check_run_name(fn, o.run_name);
    if (rc) return rc;
    size_t cap = o.max_images ? o.max_images : TFX_EXPLAINER_CALLBACK_MAX_IMAGES;
    if (n > cap)
        return tfx__error(TFX_EINVAL, "%s: %zu validation images, more than max_images = %zu (a picture per epoch "
                                      "costs time and space; pass a few images or raise "
                                      "tfx_explainer_callback_options.max_images)",
                          fn, n, cap);

    /* The explain options: defaults as tf-explain's callbacks (5 steps, 5 samples) unless given. */
    tfx_explain_options eo;
    if (explain) {
        rc = tfx__explain_copy_options(explain, &eo, fn);
        if (rc) return rc;
    } else {
        tfx_explain_options def = TFX_EXPLAIN_OPTIONS_INIT;
        eo = def;
        eo.steps = 5;
        eo.samples = 5;
    }

    int shape[3];
    rc = tfx_model_input_shape(m, shape);
    if (rc) return tfx__error_prefix("%s", fn);
    size_t in_sz = (size_t)shape[0] * (size_t)shape[1] * (size_t)shape[2];
    rc = tfx__check_count(fn, n, in_sz, sizeof(float));
    if (!rc) rc = tfx__check_finite(fn, "validation image x", x, n * in_sz, in_sz);
    if (rc) return rc;
    const size_t bytes = n * in_sz * sizeof(float); /* checked above */

    tfx_explainer_callback *cb = tfx__calloc(1, sizeof *cb);
    if (!cb) return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    cb->model = m;
    cb->method = method;
    cb->class_index = method == TFX_METHOD_ACTIVATIONS ? -1 : class_index;
    cb->n = n;
    cb->opt = o;
    cb->opt.tag = NULL; /* caller strings are not kept */
    cb->opt.run_name = NULL;
    if (layer_name) {
        cb->has_layer = 1;
        snprintf(cb->layer, sizeof cb->layer, "%s", layer_name);
    }
    char def_tag[32];
    snprintf(def_tag, sizeof def_tag, "Method %d", method);
    cb->tag = tfx__strdup(o.tag ? o.tag : method < N_KNOWN ? method_tags[method] : def_tag);
    cb->x = tfx__malloc(bytes);
    if (!cb->tag || !cb->x) {
        tfx_explainer_callback_free(cb);
        return tfx__error(TFX_ENOMEM, "%s: out of memory", fn);
    }
    memcpy(cb->x, x, bytes);
    eo.method = method;
    eo.class_index = cb->class_index;
    eo.class_indices = NULL;
    eo.layer_name = cb->has_layer ? cb->layer : NULL;
    cb->eo = eo;

    /* Run the method once now: a bad layer name, class or option is reported here, not in the
     * middle of training. The model is only read (its forward buffers are scratch). */
    tfx_image *img = NULL;
    rc = render(cb, m, &img);
    tfx_image_free(img);
    if (rc) {
        tfx__error_prefix("%s ('%s')", fn, cb->tag);
        tfx_explainer_callback_free(cb);
        return rc;
    }

    char *dir = NULL;
    rc = run_dir(&o, output_dir, &dir);
    if (!rc) {
        tfx_event_writer_options wo = TFX_EVENT_WRITER_OPTIONS_INIT;
        wo.clock = o.clock;
        wo.clock_user = o.clock_user;
        rc = tfx_event_writer_new(&cb->w, dir, &wo);
        if (rc) tfx__error_prefix("%s", fn);
    }
    cb->run_dir = dir;
    if (rc) {
        tfx_explainer_callback_free(cb);
        return rc;
    }
    tfx_callback hooks = TFX_CALLBACK_INIT;
    hooks.payload = cb;
    hooks.on_train_begin = on_train_begin;
    hooks.on_epoch_end = on_epoch_end;
    cb->hooks = hooks;
    *out = cb;
    return TFX_OK;
}

int tfx_activations_visualization_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                               const char *layers_name, const char *output_dir,
                                               const tfx_explain_options *explain,
                                               const tfx_explainer_callback_options *opts)
{
    if (out) *out = NULL;
    TFX__CHECK_NULL(layers_name);
    return tfx_explainer_callback_new(out, m, TFX_METHOD_ACTIVATIONS, x, n, -1, layers_name, output_dir, explain,
                                      opts);
}

int tfx_grad_cam_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n, int class_index,
                              const char *layer_name, const char *output_dir, const tfx_explain_options *explain,
                              const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_GRAD_CAM, x, n, class_index, layer_name, output_dir,
                                      explain, opts);
}

int tfx_occlusion_sensitivity_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                           int class_index, const char *output_dir,
                                           const tfx_explain_options *explain,
                                           const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_OCCLUSION, x, n, class_index, NULL, output_dir, explain,
                                      opts);
}

int tfx_vanilla_gradients_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                       int class_index, const char *output_dir, const tfx_explain_options *explain,
                                       const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_VANILLA_GRADIENTS, x, n, class_index, NULL, output_dir,
                                      explain, opts);
}

int tfx_gradients_inputs_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                      int class_index, const char *output_dir, const tfx_explain_options *explain,
                                      const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_GRADIENTS_INPUTS, x, n, class_index, NULL, output_dir,
                                      explain, opts);
}

int tfx_smooth_grad_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                 int class_index, const char *output_dir, const tfx_explain_options *explain,
                                 const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_SMOOTH_GRAD, x, n, class_index, NULL, output_dir, explain,
                                      opts);
}

int tfx_integrated_gradients_callback_new(tfx_explainer_callback **out, tfx_model *m, const float *x, size_t n,
                                          int class_index, const char *output_dir,
                                          const tfx_explain_options *explain,
                                          const tfx_explainer_callback_options *opts)
{
    return tfx_explainer_callback_new(out, m, TFX_METHOD_INTEGRATED_GRADIENTS, x, n, class_index, NULL, output_dir,
                                      explain, opts);
}

const tfx_callback *tfx_explainer_callback_hooks(const tfx_explainer_callback *cb)
{
    return cb ? &cb->hooks : NULL;
}

const char *tfx_explainer_callback_path(const tfx_explainer_callback *cb)
{
    return cb ? tfx_event_writer_path(cb->w) : NULL;
}

const char *tfx_explainer_callback_run_dir(const tfx_explainer_callback *cb)
{
    return cb ? cb->run_dir : NULL;
}

const char *tfx_explainer_callback_tag(const tfx_explainer_callback *cb)
{
    return cb ? cb->tag : NULL;
}

int tfx_explainer_callback_status(const tfx_explainer_callback *cb, const char **message)
{
    if (message) *message = "";
    TFX__CHECK_NULL(cb);
    if (message) *message = cb->message;
    return cb->status;
}

int tfx_explainer_callback_stats(const tfx_explainer_callback *cb, double *seconds, size_t *images,
                                 size_t *png_bytes)
{
    TFX__CHECK_NULL(cb);
    if (seconds) *seconds = cb->seconds;
    if (images) *images = cb->images;
    if (png_bytes) *png_bytes = cb->png_bytes;
    return TFX_OK;
}
