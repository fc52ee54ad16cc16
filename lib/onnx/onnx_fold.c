/* Constant folding: nodes whose inputs are all constants (initializers, Constant nodes, what
 * earlier folds made) compute their output at load, so weights reshaped, transposed, cast or
 * made by ConstantOfShape reach the layers as plain constants. Results live in the builder's
 * arena. */
#include <math.h>
#include <string.h>

#include "onnx/onnx_build.h"

const tfx__onnx_attr *tfx__onnx_attr_find(const tfx__onnx_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t tfx__onnx_attr_int(const tfx__onnx_node *n, const char *name, int64_t def)
{
    const tfx__onnx_attr *a = tfx__onnx_attr_find(n, name);
    return a ? a->i : def;
}

float tfx__onnx_attr_float(const tfx__onnx_node *n, const char *name, float def)
{
    const tfx__onnx_attr *a = tfx__onnx_attr_find(n, name);
    return a ? a->f : def;
}

tfx__onnx_tensor *tfx__onnx_new_const(tfx__onnx_ctx *c, const char *name, int is_int, int rank, const int64_t *dims)
{
    size_t count = 1;
    for (int k = 0; k < rank; k++) {
        if (dims[k] < 0 || dims[k] > TFX__ONNX_MAX_ELEMS ||
            (dims[k] && count > (size_t)(TFX__ONNX_MAX_ELEMS / dims[k]))) {
            tfx__error(TFX_ENOTSUP, "constant '%s' of dimension %lld: more than 2^31 elements or negative", name,
                       (long long)dims[k]);
            return NULL;
        }
        count *= (size_t)dims[k];
    }
    if (count > TFX__ONNX_MAX_FOLDED - c->const_elems) {
        tfx__error(TFX_ENOTSUP, "constant '%s' of %zu elements: the constants made at load would pass 2^28 elements",
                   name, count);
        return NULL;
    }
    c->const_elems += count;
    tfx__onnx_tensor *t = tfx__onnx_arena_alloc(&c->arena, sizeof *t);
    void *data = tfx__onnx_arena_alloc(&c->arena, count * (is_int ? sizeof(int64_t) : sizeof(float)));
    if (!t || !data) {
        tfx__error(TFX_ENOMEM, "out of memory for constant '%s' (%zu elements)", name, count);
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->name = name;
    t->data_type = is_int ? TFX__ONNX_INT64 : TFX__ONNX_FLOAT;
    t->rank = rank;
    for (int k = 0; k < rank; k++) t->dims[k] = dims[k];
    t->count = count;
    if (is_int)
        t->i = data;
    else
        t->f = data;
    return t;
}

/* A constant a node reads: float or integer, with its values in the file. */
int tfx__onnx_const_check(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_tensor *t)
{
    if (t->external)
        return tfx__onnx_unsup(c, n, "tensor '%s' keeps its data in an external file, which libtfx does not open",
                               t->name);
    if (t->data_type != TFX__ONNX_FLOAT && t->data_type != TFX__ONNX_INT64 && t->data_type != TFX__ONNX_INT32)
        return tfx__onnx_unsup(c, n, "tensor '%s' has data type %d; float32, int64 and int32 are supported", t->name,
                               t->data_type);
    if (t->count && !t->raw && !t->f && !t->i)
        return tfx__onnx_fail(c, n, TFX_EFORMAT, "tensor '%s' of %zu elements holds no values", t->name, t->count);
    return TFX_OK;
}

/* A constant could not be made: name the node in front of new_const's message. */
static int const_fail(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    return tfx__error_prefix("%s: node '%s' (%s)", c->fn, tfx__onnx_node_label(n), n->op_type);
}

static int is_int(const tfx__onnx_tensor *t) { return t->data_type != TFX__ONNX_FLOAT; }

static int set_out(tfx__onnx_ctx *c, const tfx__onnx_node *n, size_t k, const tfx__onnx_tensor *t)
{
    if (k >= n->n_outputs || !n->outputs[k][0]) return TFX_OK;
    tfx__onnx_val *v = tfx__onnx_find(c, n->outputs[k]);
    v->kind = TFX__ONNX_CONST;
    v->k = t;
    return TFX_OK;
}

/* A copy of src under new dims (same count; checked by the callers). */
static int reshaped(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_tensor *src, int rank,
                    const int64_t *dims)
{
    tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], is_int(src), rank, dims);
    if (!t) return const_fail(c, n);
    if (t->count != src->count)
        return tfx__onnx_fail(c, n, TFX_ESHAPE, "%zu elements reshaped to %zu", src->count, t->count);
    for (size_t i = 0; i < t->count; i++) {
        if (t->i)
            ((int64_t *)t->i)[i] = tfx__onnx_tensor_int(src, i);
        else
            ((float *)t->f)[i] = tfx__onnx_tensor_float(src, i);
    }
    return set_out(c, n, 0, t);
}

/* axes from an attribute (opset < 13) or the second input */
static int get_axes(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_tensor *const *in, size_t n_in,
                    int64_t *axes, size_t *count)
{
    *count = 0;
    const tfx__onnx_attr *a = tfx__onnx_attr_find(n, "axes");
    if (a) {
        if (a->n_ints > TFX__ONNX_MAX_RANK) return tfx__onnx_unsup(c, n, "%zu axes", a->n_ints);
        for (size_t i = 0; i < a->n_ints; i++) axes[i] = a->ints[i];
        *count = a->n_ints;
    } else if (n_in > 1 && in[1]) {
        if (in[1]->count > TFX__ONNX_MAX_RANK) return tfx__onnx_unsup(c, n, "%zu axes", in[1]->count);
        for (size_t i = 0; i < in[1]->count; i++) axes[i] = tfx__onnx_tensor_int(in[1], i);
        *count = in[1]->count;
    }
    return TFX_OK;
}

static int fold_binary(tfx__onnx_ctx *c, const tfx__onnx_node *n, const tfx__onnx_tensor *a, const tfx__onnx_tensor *b)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    int64_t dims[TFX__ONNX_MAX_RANK];
    for (int k = 0; k < rank; k++) {
        int ia = k - (rank - a->rank), ib = k - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return tfx__onnx_fail(c, n, TFX_ESHAPE, "dimensions %lld and %lld do not broadcast", (long long)da,
                                  (long long)db);
        dims[k] = da == 1 ? db : da;
    }
    int integer = is_int(a) && is_int(b);
    tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], integer, rank, dims);
    if (!t) return const_fail(c, n);
    int op = n->op_type[0]; /* A(dd), S(ub), M(ul), D(iv) */
    for (size_t i = 0; i < t->count; i++) {
        size_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
        for (int k = rank - 1; k >= 0; k--) {
            size_t idx = rem % (size_t)dims[k];
            rem /= (size_t)dims[k];
            int ka = k - (rank - a->rank), kb = k - (rank - b->rank);
            if (ka >= 0) {
                if (a->dims[ka] != 1) ia += idx * sa;
                sa *= (size_t)a->dims[ka];
            }
            if (kb >= 0) {
                if (b->dims[kb] != 1) ib += idx * sb;
                sb *= (size_t)b->dims[kb];
            }
        }
        if (integer) {
            int64_t x = tfx__onnx_tensor_int(a, ia), y = tfx__onnx_tensor_int(b, ib), r;
            if (op == 'A')
                r = (int64_t)((uint64_t)x + (uint64_t)y);
            else if (op == 'S')
                r = (int64_t)((uint64_t)x - (uint64_t)y);
            else if (op == 'M')
                r = (int64_t)((uint64_t)x * (uint64_t)y);
            else
                r = (y == 0 || (x == INT64_MIN && y == -1)) ? 0 : x / y;
            ((int64_t *)t->i)[i] = r;
        } else {
            float x = tfx__onnx_tensor_float(a, ia), y = tfx__onnx_tensor_float(b, ib), r;
            if (op == 'A')
                r = x + y;
            else if (op == 'S')
                r = x - y;
            else if (op == 'M')
                r = x * y;
            else
                r = x / y;
            ((float *)t->f)[i] = r;
        }
    }
    return set_out(c, n, 0, t);
}

int tfx__onnx_fold(tfx__onnx_ctx *c, const tfx__onnx_node *n)
{
    const tfx__onnx_tensor *in[8] = {0};
    size_t n_in = n->n_inputs < 8 ? n->n_inputs : 8;
    for (size_t k = 0; k < n_in; k++) {
        if (!n->inputs[k][0]) continue;
        in[k] = tfx__onnx_find(c, n->inputs[k])->k;
        int rc = tfx__onnx_const_check(c, n, in[k]);
        if (rc) return rc;
    }
    const char *op = n->op_type;
    int64_t dims[TFX__ONNX_MAX_RANK];
    if (strcmp(op, "Constant") == 0) {
        const tfx__onnx_attr *a = tfx__onnx_attr_find(n, "value");
        if (a && a->t) {
            int rc = tfx__onnx_const_check(c, n, a->t);
            return rc ? rc : set_out(c, n, 0, a->t);
        }
        if ((a = tfx__onnx_attr_find(n, "value_float")) || (a = tfx__onnx_attr_find(n, "value_int"))) {
            int integer = strcmp(a->name, "value_int") == 0;
            tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], integer, 0, dims);
            if (!t) return const_fail(c, n);
            if (integer)
                ((int64_t *)t->i)[0] = a->i;
            else
                ((float *)t->f)[0] = a->f;
            return set_out(c, n, 0, t);
        }
        if ((a = tfx__onnx_attr_find(n, "value_floats")) || (a = tfx__onnx_attr_find(n, "value_ints"))) {
            int integer = strcmp(a->name, "value_ints") == 0;
            dims[0] = (int64_t)(integer ? a->n_ints : a->n_floats);
            tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], integer, 1, dims);
            if (!t) return const_fail(c, n);
            for (int64_t i = 0; i < dims[0]; i++) {
                if (integer)
                    ((int64_t *)t->i)[i] = a->ints[i];
                else
                    ((float *)t->f)[i] = a->floats[i];
            }
            return set_out(c, n, 0, t);
        }
        return tfx__onnx_unsup(c, n, "no value, value_float(s) or value_int(s) attribute (sparse or string constants)");
    }
    if (n_in == 0 || !in[0]) return tfx__onnx_unsup(c, n, "constant folding of this operator without its first input");
    const tfx__onnx_tensor *x = in[0];
    if (!strcmp(op, "Identity") || !strcmp(op, "Dropout")) return set_out(c, n, 0, x);
    if (!strcmp(op, "Cast")) {
        int64_t to = tfx__onnx_attr_int(n, "to", 0);
        if (to != TFX__ONNX_FLOAT && to != TFX__ONNX_INT64 && to != TFX__ONNX_INT32)
            return tfx__onnx_unsup(c, n, "cast to data type %lld", (long long)to);
        tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], to != TFX__ONNX_FLOAT, x->rank, x->dims);
        if (!t) return const_fail(c, n);
        for (size_t i = 0; i < t->count; i++) {
            if (t->i) {
                float f = tfx__onnx_tensor_float(x, i);
                ((int64_t *)t->i)[i] =
                    is_int(x) ? tfx__onnx_tensor_int(x, i) : (isfinite(f) && fabsf(f) < 9.2e18f ? (int64_t)f : 0);
            } else {
                ((float *)t->f)[i] = tfx__onnx_tensor_float(x, i);
            }
        }
        return set_out(c, n, 0, t);
    }
    if (!strcmp(op, "Reshape")) {
        if (!in[1] || !is_int(in[1]) || in[1]->rank != 1 || in[1]->count > TFX__ONNX_MAX_RANK)
            return tfx__onnx_unsup(c, n, "the shape must be a constant int64 vector of at most %d values",
                                   TFX__ONNX_MAX_RANK);
        int rank = (int)in[1]->count, minus = -1;
        size_t known = 1;
        for (int k = 0; k < rank; k++) {
            int64_t d = tfx__onnx_tensor_int(in[1], (size_t)k);
            if (d == 0 && !tfx__onnx_attr_int(n, "allowzero", 0)) {
                if (k >= x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "0 at axis %d beyond the input's rank", k);
                d = x->dims[k];
            }
            if (d == -1) {
                if (minus >= 0) return tfx__onnx_fail(c, n, TFX_ESHAPE, "two -1 in the shape");
                minus = k;
                d = 1;
            } else if (d < 0 || d > TFX__ONNX_MAX_ELEMS) {
                return tfx__onnx_fail(c, n, TFX_ESHAPE, "dimension %lld", (long long)d);
            }
            dims[k] = d;
            if (d && known > (size_t)TFX__ONNX_MAX_ELEMS / (size_t)d)
                return tfx__onnx_fail(c, n, TFX_ESHAPE, "shape of more than 2^31 elements");
            known *= (size_t)d;
        }
        if (minus >= 0) {
            if (known == 0 || x->count % known)
                return tfx__onnx_fail(c, n, TFX_ESHAPE, "%zu elements do not fill the shape", x->count);
            dims[minus] = (int64_t)(x->count / known);
        }
        return reshaped(c, n, x, rank, dims);
    }
    if (!strcmp(op, "Flatten")) {
        int64_t axis = tfx__onnx_attr_int(n, "axis", 1);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis > x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "axis %lld", (long long)axis);
        dims[0] = dims[1] = 1;
        for (int k = 0; k < x->rank; k++) dims[k >= axis] *= x->dims[k];
        return reshaped(c, n, x, 2, dims);
    }
    if (!strcmp(op, "Unsqueeze") || !strcmp(op, "Squeeze")) {
        int64_t axes[TFX__ONNX_MAX_RANK];
        size_t na;
        int rc = get_axes(c, n, in, n_in, axes, &na);
        if (rc) return rc;
        int squeeze = op[0] == 'S';
        int rank = squeeze ? x->rank - (na ? (int)na : 0) : x->rank + (int)na;
        if (squeeze && !na) { /* all the 1s */
            rank = 0;
            for (int k = 0; k < x->rank; k++)
                if (x->dims[k] != 1) dims[rank++] = x->dims[k];
            return reshaped(c, n, x, rank, dims);
        }
        if (rank < 0 || rank > TFX__ONNX_MAX_RANK) return tfx__onnx_unsup(c, n, "result of rank %d", rank);
        int mark[TFX__ONNX_MAX_RANK] = {0};
        int base = squeeze ? x->rank : rank;
        for (size_t i = 0; i < na; i++) {
            int64_t a = axes[i] < 0 ? axes[i] + base : axes[i];
            if (a < 0 || a >= base || mark[a]) return tfx__onnx_fail(c, n, TFX_ESHAPE, "axis %lld", (long long)axes[i]);
            mark[a] = 1;
        }
        int j = 0;
        if (squeeze) {
            for (int k = 0; k < x->rank; k++) {
                if (mark[k] && x->dims[k] != 1)
                    return tfx__onnx_fail(c, n, TFX_ESHAPE, "axis %d of size %lld squeezed", k, (long long)x->dims[k]);
                if (!mark[k]) dims[j++] = x->dims[k];
            }
        } else {
            for (int k = 0; k < rank; k++) dims[k] = mark[k] ? 1 : x->dims[j++];
        }
        return reshaped(c, n, x, rank, dims);
    }
    if (!strcmp(op, "Transpose")) {
        const tfx__onnx_attr *a = tfx__onnx_attr_find(n, "perm");
        int perm[TFX__ONNX_MAX_RANK], used[TFX__ONNX_MAX_RANK] = {0};
        if (a && (int)a->n_ints != x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "perm of %zu axes", a->n_ints);
        for (int k = 0; k < x->rank; k++) {
            int64_t p = a ? a->ints[k] : x->rank - 1 - k;
            if (p < 0 || p >= x->rank || used[p]) return tfx__onnx_fail(c, n, TFX_ESHAPE, "perm is not a permutation");
            used[p] = 1;
            perm[k] = (int)p;
            dims[k] = x->dims[p];
        }
        tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], is_int(x), x->rank, dims);
        if (!t) return const_fail(c, n);
        size_t in_stride[TFX__ONNX_MAX_RANK];
        size_t s = 1;
        for (int k = x->rank - 1; k >= 0; k--) {
            in_stride[k] = s;
            s *= (size_t)x->dims[k];
        }
        for (size_t i = 0; i < t->count; i++) {
            size_t rem = i, src = 0;
            for (int k = x->rank - 1; k >= 0; k--) {
                size_t idx = rem % (size_t)dims[k];
                rem /= (size_t)dims[k];
                src += idx * in_stride[perm[k]];
            }
            if (t->i)
                ((int64_t *)t->i)[i] = tfx__onnx_tensor_int(x, src);
            else
                ((float *)t->f)[i] = tfx__onnx_tensor_float(x, src);
        }
        return set_out(c, n, 0, t);
    }
    if (!strcmp(op, "ConstantOfShape")) {
        if (!is_int(x) || x->rank != 1 || x->count > TFX__ONNX_MAX_RANK)
            return tfx__onnx_unsup(c, n, "the shape must be an int64 vector of at most %d values", TFX__ONNX_MAX_RANK);
        for (size_t k = 0; k < x->count; k++) dims[k] = tfx__onnx_tensor_int(x, k);
        const tfx__onnx_attr *a = tfx__onnx_attr_find(n, "value");
        int integer = 0;
        float fv = 0.0f;
        int64_t iv = 0;
        if (a && a->t) {
            int rc = tfx__onnx_const_check(c, n, a->t);
            if (rc) return rc;
            if (a->t->count != 1) return tfx__onnx_fail(c, n, TFX_EFORMAT, "value of %zu elements", a->t->count);
            integer = is_int(a->t);
            fv = tfx__onnx_tensor_float(a->t, 0);
            iv = tfx__onnx_tensor_int(a->t, 0);
        }
        tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], integer, (int)x->count, dims);
        if (!t) return const_fail(c, n);
        for (size_t i = 0; i < t->count; i++) {
            if (integer)
                ((int64_t *)t->i)[i] = iv;
            else
                ((float *)t->f)[i] = fv;
        }
        return set_out(c, n, 0, t);
    }
    if (!strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div")) {
        if (n_in != 2 || !in[1]) return tfx__onnx_fail(c, n, TFX_EFORMAT, "%zu inputs", n->n_inputs);
        return fold_binary(c, n, x, in[1]);
    }
    if (!strcmp(op, "Concat")) {
        if (n->n_inputs > 8) return tfx__onnx_unsup(c, n, "constant folding of more than 8 inputs");
        int64_t axis = tfx__onnx_attr_int(n, "axis", 0);
        if (axis < 0) axis += x->rank;
        if (axis < 0 || axis >= x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "axis %lld", (long long)axis);
        for (int k = 0; k < x->rank; k++) dims[k] = x->dims[k];
        dims[axis] = 0;
        for (size_t j = 0; j < n_in; j++) {
            if (!in[j] || in[j]->rank != x->rank) return tfx__onnx_fail(c, n, TFX_ESHAPE, "inputs of different ranks");
            for (int k = 0; k < x->rank; k++)
                if (k != axis && in[j]->dims[k] != x->dims[k])
                    return tfx__onnx_fail(c, n, TFX_ESHAPE, "inputs differ on axis %d", k);
            dims[axis] += in[j]->dims[axis];
        }
        int integer = is_int(x);
        tfx__onnx_tensor *t = tfx__onnx_new_const(c, n->outputs[0], integer, x->rank, dims);
        if (!t) return const_fail(c, n);
        size_t outer = 1, inner = 1, o = 0;
        for (int k = 0; k < axis; k++) outer *= (size_t)dims[k];
        for (int k = (int)axis + 1; k < x->rank; k++) inner *= (size_t)dims[k];
        for (size_t p = 0; p < outer; p++)
            for (size_t j = 0; j < n_in; j++) {
                size_t len = (size_t)in[j]->dims[axis] * inner;
                for (size_t q = 0; q < len; q++, o++) {
                    if (integer)
                        ((int64_t *)t->i)[o] = tfx__onnx_tensor_int(in[j], p * len + q);
                    else
                        ((float *)t->f)[o] = tfx__onnx_tensor_float(in[j], p * len + q);
                }
            }
        return set_out(c, n, 0, t);
    }
    return tfx__onnx_unsup(c, n, "constant folding of this operator is not supported");
}
