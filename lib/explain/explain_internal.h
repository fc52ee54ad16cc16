/* The explain engine shared by every method (DESIGN decision 5): resolved options, the class
 * score each mode differentiates, chunked forward/backward through the model engine, layer
 * resolution, and the attribution object. Methods are short files on top of it. */
#ifndef TFX_EXPLAIN_INTERNAL_H
#define TFX_EXPLAIN_INTERNAL_H

#include "model/model_internal.h"
#include "tfx/explain.h"

/* What the backward pass differentiates. */
typedef enum tfx__target_kind {
    TFX__TARGET_LOGIT = 0,   /* pre-softmax class score (default mode) */
    TFX__TARGET_OUTPUT = 1,  /* the model's final output (post-activation) */
    TFX__TARGET_LAST_INPUT = 2, /* input of a standalone last Activation layer, else the output
                                   (tf-explain's "score model", compat vanilla / grad*inputs) */
    TFX__TARGET_XENT = 3     /* categorical cross-entropy vs one-hot (compat SmoothGrad) */
} tfx__target_kind;

/* Where the seed enters the model and how the score is read back after a forward. */
typedef struct tfx__target {
    int kind;
    size_t top;       /* layer index receiving the seed */
    int flags;        /* TFX__BW_SKIP_ACTIVATION when the seed is a pre-activation gradient */
    int softmax_last; /* the model ends in a softmax (fused or standalone) */
    int xent_logits;  /* XENT computed from logits (Keras's path for a softmax output) */
} tfx__target;

/* Internal requests (tests, the picture calls); tfx_explain passes none. */
typedef struct tfx__explain_hooks {
    const float *noise; /* SmoothGrad: standard-normal draws, n * samples * H*W*C, replacing the
                           generator (scaled by sigma inside, exactly as the generator's) */
    size_t max_tiles;   /* activations: refuse more than this many n * k tiles (0: no limit) */
} tfx__explain_hooks;

struct tfx_attribution {
    int method;
    size_t n;
    int h, w, c;
    float *data;      /* n * h*w*c */
    int *classes;     /* n */
    double *ig_delta; /* n, Integrated Gradients only */
    double *ig_diff;  /* n */
    double *cells;    /* compat occlusion: n * cells_h * cells_w scores 1 - p (float64 as in
                         tf-explain), the map its picture resizes */
    int cells_h, cells_w;
    char layer[TFX__NAME_MAX];
    double *relevance; /* LRP: n * (layers + 1) relevance sums per layer boundary */
    size_t n_relevance; /* values per image */
    int in_h, in_w, in_c; /* the model input the maps were made for */
};

/* Everything a method needs for one call. */
typedef struct tfx__xctx {
    tfx_model *m;
    tfx_explain_options o;      /* resolved copy */
    const tfx__explain_hooks *hooks;
    const float *x;
    size_t n;
    tfx__shape in;
    size_t in_sz;               /* H*W*C */
    size_t n_layers;
    size_t K;                   /* classes = model output size */
    size_t batch;               /* rows per chunk */
    tfx__target t;
    const tfx__rule *rule;      /* backward rule; NULL: the plain gradient (roadmap methods such
                                   as guided backprop or LRP set it) */
    int *classes;               /* n resolved targets (owned by the attribution) */
    float *seed;                /* batch * size of the seeded tensor */
    size_t seed_sz;             /* per-row size of the seeded tensor */
    tfx_attribution *a;
} tfx__xctx;

/* Engine (engine.c). */
int tfx__explain_run(tfx_model *m, const float *x, size_t n, const tfx_explain_options *o,
                     const tfx__explain_hooks *hooks, tfx_attribution **out);
/* Copy caller options over the defaults (version checks). */
int tfx__explain_copy_options(const tfx_explain_options *src, tfx_explain_options *dst, const char *fn);
/* Choose the target for kind (sets c->t, allocates the seed buffer). */
int tfx__explain_set_target(tfx__xctx *c, int kind);
/* Resolve the classes: -1 entries become the argmax of the model's output on the clean
 * images (one chunked forward pass, only if needed); checks the range. */
int tfx__explain_resolve_classes(tfx__xctx *c);
/* Allocate the result maps (n * h*w*ch). */
int tfx__explain_alloc_maps(tfx__xctx *c, int h, int w, int ch);
/* Layer by name (NULL: the default CAM layer). need_spatial: refuse flat outputs. */
int tfx__explain_find_layer(tfx__xctx *c, const char *name, int need_spatial, size_t *index);
/* After a forward over nb rows: the target score of each row into scores[nb]. */
void tfx__explain_scores(const tfx__xctx *c, size_t nb, const int *cls, double *scores);
/* The same for rows first .. first + nb - 1 of the last forward. */
void tfx__explain_scores_at(const tfx__xctx *c, size_t first, size_t nb, const int *cls, double *scores);
/* Forward rows (nb * in_sz floats), seed each row's class cls[r] (< 0: a zero seed, the row is
 * only scored), backward down to the
 * input of layer `stop` (0: the model input). *grad: model-owned, nb * size of that input. */
int tfx__explain_gradient(tfx__xctx *c, const float *rows, size_t nb, const int *cls, size_t stop,
                          float **grad);
/* Probability-like final output of the last forward, row r (K floats). */
const float *tfx__explain_output(const tfx__xctx *c, size_t r);

/* Incremental forward of copies of one image that differ from it only inside a box_h x box_w
 * box (incremental.c). depth = 0 after init: the model gains nothing from it (use the full
 * forward). Otherwise: set_image once per image, then forward rows (full copies) with each
 * row's box origin; the outputs land where tfx__model_forward puts them. */
typedef struct tfx__incr {
    tfx_model *m;
    size_t rows;       /* rows per call at most */
    size_t depth;      /* leading layers recomputed inside boxes */
    int *bh, *bw;      /* box size of acts[i], i = 0..depth (the model input first) */
    int *oy, *ox;      /* box origin of acts[i] for row b: [i * rows + b] */
    float **box;       /* output box values of layer i, rows * bh[i+1] * bw[i+1] * C */
    float *gather, *col;
    float **clean;     /* clean activations: clean[0] the image (borrowed), clean[i+1] layer i's output */
    size_t dense;      /* index of a Dense layer fed by the boxes (0: none) */
    float *dense_clean, *dense_pre, *delta, *dense_t;
    size_t *order;
} tfx__incr;
int tfx__incr_init(tfx__incr *p, tfx_model *m, int box_h, int box_w, size_t rows);
int tfx__incr_set_image(tfx__incr *p, const float *x);
int tfx__incr_forward(tfx__incr *p, const float *rows, size_t nb, const int *y0, const int *x0);
void tfx__incr_free(tfx__incr *p);

/* Methods (one file each). */
int tfx__explain_activations(tfx__xctx *c);
int tfx__explain_gradients(tfx__xctx *c, int times_input);
int tfx__explain_smooth_grad(tfx__xctx *c);
int tfx__explain_integrated_gradients(tfx__xctx *c);
int tfx__explain_occlusion(tfx__xctx *c);
int tfx__explain_grad_cam(tfx__xctx *c);
/* Roadmap methods (TFX_METHOD_GRAD_CAM_PLUS_PLUS and later), dispatched in roadmap.c. */
int tfx__explain_roadmap(tfx__xctx *c);

/* The picture calls (attribution.c): run method with the options and render the result. */
int tfx__explain_picture(tfx_model *m, const float *x, size_t n, int method, int class_index,
                         const char *layer, const tfx_explain_options *o, tfx_image **out);

#endif
