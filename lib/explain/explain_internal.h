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

/* Largest o->batch_size (rows per chunk; tfx_explain_provider: images per batch). */
#define TFX__MAX_BATCH ((size_t)1 << 20)

/* Internal requests (tests, the picture calls); tfx_explain passes none. */
typedef struct tfx__explain_hooks {
    const float *noise; /* SmoothGrad: standard-normal draws, n * samples * H*W*C, replacing the
                           generator (scaled by sigma inside, exactly as the generator's) */
    size_t max_tiles;   /* activations: refuse more than this many n * k tiles (0: no limit) */
    tfx__rng *rng;      /* noise tunnels: draw from this generator (seeded by the caller and left
                           where the call stops) instead of one seeded with o->seed, so batches
                           of a provider continue one stream (explain_provider.c) */
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
    const tfx__rule *rule;      /* backward rule; NULL: the plain gradient (methods such
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
/* After a forward: the target score (LOGIT, OUTPUT or LAST_INPUT target) of class cls in row r. */
double tfx__explain_score(const tfx__xctx *c, size_t r, int cls);
/* Probability-like final output of the last forward, row r (K floats). */
const float *tfx__explain_output(const tfx__xctx *c, size_t r);

/* ---- the row driver (engine.c) ----
 * Every method is rows through the model: the images themselves, noisy copies, path points,
 * occluded or masked copies. Rows are made image by image, row j of image i in order, go through
 * the model batch_size at a time, and are handed back one by one, then per image. A callback
 * returns 0 (or 1 from make: a row was made), a negative tfx_status with the error set. */
#define TFX__LEAD_ROW ((size_t)-1) /* the image index of a lead row */

enum {
    TFX__PASS_FORWARD = 0,    /* forward (or the forward callback) */
    TFX__PASS_FORWARD_TO = 1, /* forward of layers 0..layer only */
    TFX__PASS_GRADIENT = 2    /* forward, seed the row's class, backward to the input of layer */
};

typedef struct tfx__chunk {
    const float *rows;   /* nb * in_sz model inputs */
    size_t nb;
    const size_t *image; /* image of each row (TFX__LEAD_ROW for lead rows) */
    const size_t *index; /* the row's j within its image */
    const int *cls;      /* class of each row: c->classes[image], -1 for lead rows or no classes */
    const float *grad;   /* gradient pass: nb rows of the gradient at the input of `layer` (model-owned) */
} tfx__chunk;

typedef struct tfx__rows {
    size_t n;            /* images (0: c->n) */
    size_t per_image;    /* rows per image at most (0 or 1: one) */
    size_t lead;         /* rows made before the images' (image TFX__LEAD_ROW, class -1: scored only) */
    int pass;            /* TFX__PASS_* */
    size_t layer;        /* FORWARD_TO: the last layer run; GRADIENT: where the backward stops */
    const tfx__rule *rule; /* GRADIENT: the rule (NULL: c->rule) */
    int image_chunks;    /* a chunk holds rows of one image only (begin may then run the model) */
    const char *fn;      /* error prefix (NULL: "tfx_explain") */
    void *u;             /* the callbacks' state */
    /* Before image i's first row is made. */
    int (*begin)(void *u, size_t i);
    /* Row j of image i into row (in_sz floats): 1 made, 0 skipped. NULL: the row is image i of
     * c->x, read in place (per_image 1, no lead). */
    int (*make)(void *u, size_t i, size_t j, float *row);
    /* Replaces the model forward of a FORWARD pass (incremental occlusion). */
    int (*forward)(void *u, const tfx__chunk *ch);
    /* After the pass, before the rows. */
    int (*chunk)(void *u, const tfx__chunk *ch);
    /* Row b of the chunk: outputs (tfx__explain_output(c, b)), scores, ch->grad + b * size. */
    int (*row)(void *u, const tfx__chunk *ch, size_t b);
    /* After image i's last row (also for an image whose rows were all skipped). */
    int (*end)(void *u, size_t i);
} tfx__rows;

int tfx__explain_rows(tfx__xctx *c, const tfx__rows *d);

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

/* Methods (one file or family each), dispatched by the table in engine.c. Each reads its variant
 * from c->o.method. */
int tfx__explain_activations(tfx__xctx *c);
int tfx__explain_gradients(tfx__xctx *c);          /* vanilla gradients, gradients x inputs */
int tfx__explain_noise_tunnel(tfx__xctx *c);       /* SmoothGrad, Guided SmoothGrad, the noise tunnel */
int tfx__explain_integrated_gradients(tfx__xctx *c);
/* Integrated Gradients' integration rules (integrated_gradients.c). The m-point Gauss-Legendre
 * nodes x (ascending) and weights w on [-1, 1], m >= 1, in double. */
void tfx__gauss_legendre(size_t m, double *x, double *w);
/* Nodes alpha and weights w (m each, sum w = 1) on [0, 1] of a tfx_ig_rule; TFX_EINVAL for an
 * unknown rule, m = 0, or m = 1 with the trapezoid. */
int tfx__ig_rule_nodes(int rule, size_t m, double *alpha, double *w);
int tfx__explain_occlusion(tfx__xctx *c);
int tfx__explain_grad_cam(tfx__xctx *c);
int tfx__explain_grad_cam_plus_plus(tfx__xctx *c);
int tfx__explain_score_cam(tfx__xctx *c);
int tfx__explain_layer_cam(tfx__xctx *c);
int tfx__explain_xgrad_cam(tfx__xctx *c);
int tfx__explain_hires_cam(tfx__xctx *c);
int tfx__explain_eigen_cam(tfx__xctx *c);
int tfx__explain_guided(tfx__xctx *c);             /* guided backprop, DeconvNet */
int tfx__explain_guided_grad_cam(tfx__xctx *c);
int tfx__explain_lrp(tfx__xctx *c);

/* Input gradients under a rule (guided.c): TFX__RULE_GUIDED for guided backprop, DECONVNET,
 * GRADIENT for the plain gradient. */
const tfx__rule *tfx__explain_rule(int rule_kind);

/* Ranking maps (faithfulness.c; the sanity check uses them too). */
typedef struct tfx__ranked {
    float v;
    size_t i;
} tfx__ranked;
int tfx__ranked_desc(const void *a, const void *b); /* qsort order: value descending, then index */
/* One value per pixel of a (h, w, c) map by how (tfx_rank_reduce) into out (hw). NaN ranks last. */
void tfx__reduce_map(const float *map, size_t hw, int c, int how, float *out);
/* Spearman rank correlation of a and b (cnt values, ties get their mean rank; sanity_check.c);
 * 0 when either is constant, NaN when out of memory. */
double tfx__spearman(const float *a, const float *b, size_t cnt);

/* The picture calls (attribution.c): run method with the options and render the result. */
int tfx__explain_picture(tfx_model *m, const float *x, size_t n, int method, int class_index,
                         const char *layer, const tfx_explain_options *o, tfx_image **out);

#endif
