#!/usr/bin/python3
"""Golden forward outputs for libtfx's Conv2D, Dense, Flatten+Dense, MaxPooling2D,
AveragePooling2D and GlobalAveragePooling2D, computed with PyTorch (Debian's python3-torch,
run with /usr/bin/python3) as an independent implementation.

libtfx is NHWC with Keras weight layouts (Conv2D kernel HWIO, Dense kernel [in][out]); PyTorch
is NCHW / OIHW, so every conversion is done explicitly here. TensorFlow's SAME padding puts the
extra pixel at the bottom/right; PyTorch's symmetric padding cannot express that, so SAME is
an explicit F.pad with (left, right, top, bottom) computed the TensorFlow way. TF's SAME
average pooling divides by the number of valid (unpadded) cells: reproduced as a zero-padded
window sum divided by the window sum of a zero-padded tensor of ones. Max pooling pads with
-inf (padding never wins). References are computed in float64 from the float32 inputs.

Output: tests/engine/golden_layers.bin (little-endian), read by test_golden_layers.c:
  "TFXGOLD1", u32 case count, then per case:
    u32 name length, name bytes,
    i32 x 13: kind, n, h, w, c, units_or_filters, kh, kw, sh, sw, padding, use_bias, flatten
    i32 x 3: output h, w, c (flat outputs: 1, 1, c)
    f32 x: n*h*w*c inputs (NHWC)
    f32 kernel (Conv2D: kh*kw*c*f HWIO; Dense: in*units), f32 bias (if use_bias)
    f32 y: n*oh*ow*oc outputs (NHWC)
Regenerate: /usr/bin/python3 tests/engine/gen_golden_layers.py
"""
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

CONV2D, DENSE, MAX_POOL, AVG_POOL, GAP = 1, 2, 4, 5, 6  # tfx_layer_kind values
VALID, SAME = 0, 1

rng = np.random.RandomState(20261125)


def out_and_pads(size, k, s, padding):
    """TensorFlow/Keras output size and (before, after) padding along one axis."""
    if padding == VALID:
        return (size - k) // s + 1, 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return out, total // 2, total - total // 2


def nhwc_to_nchw(t):
    return t.permute(0, 3, 1, 2).contiguous()


def nchw_to_nhwc(t):
    return t.permute(0, 2, 3, 1).contiguous()


def tf_pad(x_nchw, h, w, kh, kw, sh, sw, padding, value=0.0):
    oh, top, bottom = out_and_pads(h, kh, sh, padding)
    ow, left, right = out_and_pads(w, kw, sw, padding)
    return F.pad(x_nchw, (left, right, top, bottom), value=value), oh, ow


def conv2d_ref(x, kernel, bias, sh, sw, padding):
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    xt = nhwc_to_nchw(torch.from_numpy(x).double())
    wt = torch.from_numpy(kernel).double().permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
    bt = torch.from_numpy(bias).double() if bias is not None else None
    xt, oh, ow = tf_pad(xt, h, w, kh, kw, sh, sw, padding)
    y = F.conv2d(xt, wt, bt, stride=(sh, sw))
    assert y.shape[2] == oh and y.shape[3] == ow
    return nchw_to_nhwc(y).numpy()


def dense_ref(x2d, kernel, bias):
    # Keras kernel is [in][out]; F.linear wants [out][in].
    xt = torch.from_numpy(x2d).double()
    wt = torch.from_numpy(kernel).double().t()
    bt = torch.from_numpy(bias).double() if bias is not None else None
    return F.linear(xt, wt, bt).numpy()


def max_pool_ref(x, kh, kw, sh, sw, padding):
    n, h, w, c = x.shape
    xt = nhwc_to_nchw(torch.from_numpy(x).double())
    xt, oh, ow = tf_pad(xt, h, w, kh, kw, sh, sw, padding, value=float("-inf"))
    y = F.max_pool2d(xt, (kh, kw), (sh, sw))
    assert y.shape[2] == oh and y.shape[3] == ow
    return nchw_to_nhwc(y).numpy()


def avg_pool_ref(x, kh, kw, sh, sw, padding):
    n, h, w, c = x.shape
    xt = nhwc_to_nchw(torch.from_numpy(x).double())
    xp, oh, ow = tf_pad(xt, h, w, kh, kw, sh, sw, padding)
    ones, _, _ = tf_pad(torch.ones_like(xt), h, w, kh, kw, sh, sw, padding)
    # Window sums (divisor 1) of the zero-padded input and of the padded ones.
    total = F.avg_pool2d(xp, (kh, kw), (sh, sw), divisor_override=1)
    count = F.avg_pool2d(ones, (kh, kw), (sh, sw), divisor_override=1)
    y = total / count
    assert y.shape[2] == oh and y.shape[3] == ow
    return nchw_to_nhwc(y).numpy()


def gap_ref(x):
    return torch.from_numpy(x).double().mean(dim=(1, 2)).numpy()


def f32(a):
    return np.ascontiguousarray(a, dtype="<f4")


def uniform(shape, lo, hi):
    return rng.uniform(lo, hi, size=shape).astype(np.float32)


cases = []


def add(name, kind, n, h, w, c, units, kh, kw, sh, sw, padding, use_bias, flatten, x, kernel, bias, y):
    oshape = y.shape
    if y.ndim == 2:
        oh, ow, oc = 1, 1, oshape[1]
    else:
        oh, ow, oc = oshape[1], oshape[2], oshape[3]
    cases.append((name, [kind, n, h, w, c, units, kh, kw, sh, sw, padding, use_bias, flatten], [oh, ow, oc],
                  f32(x), None if kernel is None else f32(kernel), None if bias is None else f32(bias), f32(y)))


def conv_case(name, n, h, w, c, f, kh, kw, sh, sw, padding, use_bias):
    x = uniform((n, h, w, c), -1, 1)
    kernel = uniform((kh, kw, c, f), -0.5, 0.5)
    bias = uniform((f,), -0.5, 0.5) if use_bias else None
    y = conv2d_ref(x, kernel, bias, sh, sw, padding)
    add(name, CONV2D, n, h, w, c, f, kh, kw, sh, sw, padding, int(use_bias), 0, x, kernel, bias, y)


def dense_case(name, n, h, w, c, units, use_bias, flatten):
    x = uniform((n, h, w, c), -1, 1)
    fan_in = h * w * c if flatten else c
    kernel = uniform((fan_in, units), -0.5, 0.5)
    bias = uniform((units,), -0.5, 0.5) if use_bias else None
    if flatten:
        # Keras Flatten of NHWC: (h, w, c) order, which is the NHWC memory order.
        y = dense_ref(x.reshape(n, -1), kernel, bias)
    else:
        # Dense on a 4D tensor acts on the last axis.
        y = dense_ref(x.reshape(-1, c), kernel, bias).reshape(n, h, w, units)
    add(name, DENSE, n, h, w, c, units, 0, 0, 0, 0, 0, int(use_bias), int(flatten), x, kernel, bias, y)


def pool_case(name, kind, n, h, w, c, kh, kw, sh, sw, padding, shift=0.0):
    x = uniform((n, h, w, c), -1, 1) + np.float32(shift)
    ref = max_pool_ref if kind == MAX_POOL else avg_pool_ref
    y = ref(x, kh, kw, sh, sw, padding)
    add(name, kind, n, h, w, c, 0, kh, kw, sh, sw, padding, 0, 0, x, None, None, y)


# Conv2D: valid and same, strides 1 and 2, even and odd kernels, with and without bias,
# several channel counts, non-square shapes, batch 1 and 7.
conv_case("conv 7x6x3 f4 k3x3 s1 valid bias", 2, 7, 6, 3, 4, 3, 3, 1, 1, VALID, True)
conv_case("conv 5x5x2 f5 k3x3 s1 same nobias", 1, 5, 5, 2, 5, 3, 3, 1, 1, SAME, False)
conv_case("conv 6x5x3 f2 k2x2 s1 same bias (pad bottom/right)", 2, 6, 5, 3, 2, 2, 2, 1, 1, SAME, True)
conv_case("conv 7x9x2 f3 k4x4 s2 same bias", 3, 7, 9, 2, 3, 4, 4, 2, 2, SAME, True)
conv_case("conv 5x7x2 f3 k4x4 s1 same bias (pad 1 top, 2 bottom)", 1, 5, 7, 2, 3, 4, 4, 1, 1, SAME, True)
conv_case("conv 9x8x1 f2 k4x4 s2 valid nobias", 1, 9, 8, 1, 2, 4, 4, 2, 2, VALID, False)
conv_case("conv 8x8x4 f8 k3x3 s2 same bias (even input)", 2, 8, 8, 4, 8, 3, 3, 2, 2, SAME, True)
conv_case("conv 5x5x3 f3 k1x1 s2 same bias", 2, 5, 5, 3, 3, 1, 1, 2, 2, SAME, True)
conv_case("conv 4x3x5 f7 k1x1 s1 valid bias (pointwise)", 2, 4, 3, 5, 7, 1, 1, 1, 1, VALID, True)
conv_case("conv 7x6x2 f4 k5x3 s2x1 same bias", 1, 7, 6, 2, 4, 5, 3, 2, 1, SAME, True)
conv_case("conv 5x7x3 f1 k2x3 s1x2 valid bias batch 7", 7, 5, 7, 3, 1, 2, 3, 1, 2, VALID, True)
conv_case("conv 7x7x2 f2 k2x2 s3 same nobias (stride > kernel)", 1, 7, 7, 2, 2, 2, 2, 3, 3, SAME, False)
conv_case("conv 4x4x16 f16 k3x3 s1 same bias", 1, 4, 4, 16, 16, 3, 3, 1, 1, SAME, True)
conv_case("conv 6x6x3 f32 k3x3 s1 valid bias (seed-model first layer)", 1, 6, 6, 3, 32, 3, 3, 1, 1, VALID, True)

# Dense: flat (through Flatten, checking its (h, w, c) order) and on a 4D input.
dense_case("flatten+dense 2x3x4 -> 5 bias", 2, 2, 3, 4, 5, True, True)
dense_case("flatten+dense 1x1x7 -> 3 nobias batch 7", 7, 1, 1, 7, 3, False, True)
dense_case("dense on 4D 3x4x5 -> 6 bias (last axis)", 2, 3, 4, 5, 6, True, False)
dense_case("dense on 4D 2x2x3 -> 2 nobias", 1, 2, 2, 3, 2, False, False)

# Pooling: valid and same, overlapping strides, non-square windows and strides.
for kind, label in ((MAX_POOL, "max"), (AVG_POOL, "avg")):
    pool_case(label + " 6x5x2 p2x2 s2 valid", kind, 2, 6, 5, 2, 2, 2, 2, 2, VALID)
    pool_case(label + " 7x5x3 p3x3 s2 same (overlapping)", kind, 2, 7, 5, 3, 3, 3, 2, 2, SAME)
    pool_case(label + " 5x5x2 p2x2 s2 same (pad bottom/right)", kind, 1, 5, 5, 2, 2, 2, 2, 2, SAME)
    pool_case(label + " 6x6x2 p3x3 s1 valid (overlapping)", kind, 1, 6, 6, 2, 3, 3, 1, 1, VALID)
    pool_case(label + " 5x6x3 p2x3 s1 same", kind, 1, 5, 6, 3, 2, 3, 1, 1, SAME)
    pool_case(label + " 7x6x1 p4x4 s3x2 same", kind, 7, 7, 6, 1, 4, 4, 3, 2, SAME)
    # All inputs negative: padding must never count as a value (max) or a cell (avg).
    pool_case(label + " 5x4x2 p3x3 s1 same negative inputs", kind, 1, 5, 4, 2, 3, 3, 1, 1, SAME, shift=-2.0)

# GlobalAveragePooling2D.
x = uniform((3, 5, 3, 4), -1, 1)
add("global average pooling 5x3x4 batch 3", GAP, 3, 5, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, x, None, None, gap_ref(x))


# ---- Forward and backward of small models (golden_layer_grads.bin) ----
#
# Layer kinds added after 0.1 are checked forward and backward: a model of a few layers built
# from specs (kind, 16 ints, 2 floats, Keras-layout weights), input x, output y, a seed r, and
# the gradients of L = sum(r * y): with respect to x and to every weight (Keras layout).
#
# Format (little-endian): "TFXGRAD1", u32 case count, then per case:
#   u32 name length, name bytes, i32 n, h, w, c, u32 layer count, per layer:
#     i32 kind, i32 x 16 parameters, f32 x 2 parameters, u32 + f32 kernel, u32 + f32 bias
#   u32 + f32 x (NHWC), u32 + f32 y, f32 r (as many as y), f32 dx (as many as x),
#   u32 + f32 weight gradients (each layer's kernel then bias, in layer order, Keras layout)
# Parameters per kind: Conv2D (1): filters, kh, kw, sh, sw, padding, activation, use_bias,
# pad top, bottom, left, right, groups; floats: clip min, max. Dense (2): units, activation,
# use_bias; floats as Conv2D. Flatten (3): none. Activation (8): activation; floats: clip
# min, max (alpha for others).
ACT = {"linear": 0, "relu": 1, "relu6": 8, "clip": 9, "hard_sigmoid": 10, "hard_swish": 11}
ACTIVATION, FLATTEN, GMP, ZERO_PADDING, DEPTHWISE, RESHAPE = 8, 3, 10, 11, 12, 13


def act_ref(t, act, lo=0.0, hi=6.0):
    if act == ACT["linear"]:
        return t
    if act == ACT["relu"]:
        return F.relu(t)
    if act == ACT["relu6"]:
        return F.relu6(t)
    if act == ACT["clip"]:
        return F.hardtanh(t, lo, hi)  # the gradient strictly inside (lo, hi), as libtfx
    if act == ACT["hard_sigmoid"]:
        return F.hardsigmoid(t)
    if act == ACT["hard_swish"]:
        return F.hardswish(t)
    raise ValueError(act)


class Spec:
    def __init__(self, kind, ints=(), floats=(0.0, 0.0), kernel=None, bias=None):
        self.kind, self.ints = kind, list(ints) + [0] * (16 - len(ints))
        self.floats, self.kernel, self.bias = list(floats), kernel, bias


def conv_spec(c, f, kh, kw, sh=1, sw=1, padding=VALID, act=0, use_bias=True, pads=(0, 0, 0, 0), groups=1,
              clip=(0.0, 6.0), scale=0.5):
    kernel = uniform((kh, kw, c // groups, f), -scale, scale)
    bias = uniform((f,), -scale, scale) if use_bias else None
    return Spec(CONV2D, [f, kh, kw, sh, sw, padding, act, int(use_bias)] + list(pads) + [groups], clip, kernel, bias)


def run_specs(x_nhwc, specs):
    """Forward in float64 with autograd; returns y (NHWC or flat) as a leaf-connected tensor."""
    t = nhwc_to_nchw(x_nhwc)
    flat = False
    for s in specs:
        p = s.ints
        if s.kind == DEPTHWISE:  # Keras [kh][kw][c][mult] = a grouped conv's [kh][kw][1][c * mult]
            kh, kw, sh, sw, padding, mult, act, use_bias = p[:8]
            c = t.shape[1]
            p = [c * mult, kh, kw, sh, sw, padding, act, use_bias] + p[8:12] + [c]
            s.wt = s.wt.reshape(kh, kw, 1, c * mult)
        if s.kind in (CONV2D, DEPTHWISE):
            f, kh, kw, sh, sw, padding, act, use_bias = p[:8]
            h, w = t.shape[2], t.shape[3]
            if padding == 2:  # explicit
                top, bottom, left, right = p[8:12]
            else:
                _, top, bottom = out_and_pads(h, kh, sh, padding)
                _, left, right = out_and_pads(w, kw, sw, padding)
            t = F.pad(t, (left, right, top, bottom))
            wt = s.wt.permute(3, 2, 0, 1)  # HWIO -> OIHW
            t = F.conv2d(t, wt, s.bt, stride=(sh, sw), groups=max(p[12], 1))
            t = act_ref(t, act, *s.floats)
        elif s.kind == DENSE:
            units, act, use_bias = p[:3]
            t = F.linear(t, s.wt.t(), s.bt) if flat else nhwc_to_nchw(F.linear(nchw_to_nhwc(t), s.wt.t(), s.bt))
            t = act_ref(t, act, *s.floats)
        elif s.kind == FLATTEN:
            t = nchw_to_nhwc(t).reshape(t.shape[0], -1)
            flat = True
        elif s.kind == ACTIVATION:
            t = act_ref(t, p[0], *s.floats)
        elif s.kind in (MAX_POOL, AVG_POOL):  # kh, kw, sh, sw, padding, pads, count_include_pad
            kh, kw, sh, sw, padding = p[:5]
            h, w = t.shape[2], t.shape[3]
            if padding == 2:
                top, bottom, left, right = p[5:9]
            else:
                _, top, bottom = out_and_pads(h, kh, sh, padding)
                _, left, right = out_and_pads(w, kw, sw, padding)
            if s.kind == MAX_POOL:  # padding never wins
                t = F.max_pool2d(F.pad(t, (left, right, top, bottom), value=float("-inf")), (kh, kw), (sh, sw))
            elif p[9]:  # the whole window (PyTorch's count_include_pad)
                t = F.avg_pool2d(F.pad(t, (left, right, top, bottom)), (kh, kw), (sh, sw))
            else:  # the valid cells (Keras)
                total = F.avg_pool2d(F.pad(t, (left, right, top, bottom)), (kh, kw), (sh, sw), divisor_override=1)
                ones = F.pad(torch.ones_like(t), (left, right, top, bottom))
                t = total / F.avg_pool2d(ones, (kh, kw), (sh, sw), divisor_override=1)
        elif s.kind == RESHAPE:  # Keras's Reshape of the NHWC tensor
            t = nhwc_to_nchw(nchw_to_nhwc(t).reshape(t.shape[0], p[0], p[1], p[2]))
        elif s.kind == ZERO_PADDING:  # top, bottom, left, right
            t = F.pad(t, (p[2], p[3], p[0], p[1]))
        elif s.kind == GMP:  # the gradient to the first maximum (max_pool2d's indices)
            t = F.adaptive_max_pool2d(t, 1).reshape(t.shape[0], -1)
            flat = True
        else:
            raise ValueError(s.kind)
    return t if flat else nchw_to_nhwc(t)


grad_cases = []


def grad_case(name, n, h, w, c, specs, lo=-1.0, hi=1.0, quantize=0.0):
    x = uniform((n, h, w, c), lo, hi)
    if quantize:
        x = (np.round(x / quantize) * quantize).astype(np.float32)
    xt = torch.from_numpy(x).double().requires_grad_(True)
    params = []
    for s in specs:
        s.wt = torch.from_numpy(s.kernel).double().requires_grad_(True) if s.kernel is not None else None
        s.bt = torch.from_numpy(s.bias).double().requires_grad_(True) if s.bias is not None else None
        params += [q for q in (s.wt, s.bt) if q is not None]
    y = run_specs(xt, specs)
    r = uniform(tuple(y.shape), -1, 1)
    (y * torch.from_numpy(r).double()).sum().backward()
    grads = [q.grad.numpy().ravel() for q in params]
    grad_cases.append((name, [n, h, w, c], specs, f32(x), f32(y.detach().numpy()), f32(r), f32(xt.grad.numpy()),
                       f32(np.concatenate(grads)) if grads else f32(np.zeros(0))))


# ReLU6, clip, hard sigmoid, hard swish: fused in Conv2D and Dense, and as Activation layers,
# on inputs wide enough to reach every piece (|x| up to 4, weights up to 1).
for a in ("relu6", "clip", "hard_sigmoid", "hard_swish"):
    clip = (-0.75, 1.25)
    grad_case("conv 5x6x3 f4 k3x3 same fused " + a, 2, 5, 6, 3,
              [conv_spec(3, 4, 3, 3, padding=SAME, act=ACT[a], clip=clip, scale=1.0)], -4, 4)
    grad_case("flatten+dense 2x2x3 -> 5 fused " + a, 3, 2, 2, 3,
              [Spec(FLATTEN), Spec(DENSE, [5, ACT[a], 1], clip, uniform((12, 5), -1, 1), uniform((5,), -1, 1))], -4, 4)
    grad_case("conv 4x4x2 f3 k2x2 -> Activation " + a, 1, 4, 4, 2,
              [conv_spec(2, 3, 2, 2, scale=1.0), Spec(ACTIVATION, [ACT[a]], clip if a == "clip" else (0.0, 0.0))],
              -4, 4)

# GlobalMaxPooling2D, alone (distinct inputs) and after a conv, then a Dense head.
grad_case("global max pooling 4x5x3", 2, 4, 5, 3, [Spec(GMP)])
# Ties (inputs on a grid of 3 values): the gradient goes to the first maximum, as PyTorch's.
grad_case("global max pooling 3x4x2 with ties", 2, 3, 4, 2, [Spec(GMP)], quantize=1.0)
grad_case("conv 6x5x2 f4 k3x3 s2 same relu -> global max pooling -> dense", 2, 6, 5, 2,
          [conv_spec(2, 4, 3, 3, 2, 2, SAME, ACT["relu"]), Spec(GMP),
           Spec(DENSE, [3, 0, 1], (0.0, 0.0), uniform((4, 3), -1, 1), uniform((3,), -1, 1))])

# ZeroPadding2D, alone and around a strided conv (asymmetric pads).
grad_case("zero padding (1, 2, 0, 3) 4x3x2", 2, 4, 3, 2, [Spec(ZERO_PADDING, [1, 2, 0, 3])])
grad_case("zero padding (3, 3, 3, 3) -> conv 7x7 s2 valid relu (ResNet stem)", 1, 9, 8, 3,
          [Spec(ZERO_PADDING, [3, 3, 3, 3]), conv_spec(3, 4, 7, 7, 2, 2, VALID, ACT["relu"])])

# Explicit padding: Conv2D (pads beyond the kernel; the ResNet stem as one layer), pooling
# (padding never wins a max; averages over the valid cells or the whole window), and SAME
# average pooling counting the padding.
EX = 2
grad_case("conv 9x8x3 f4 k7x7 s2 explicit (3 3 3 3) relu", 1, 9, 8, 3,
          [conv_spec(3, 4, 7, 7, 2, 2, EX, ACT["relu"], pads=(3, 3, 3, 3))])
grad_case("conv 4x5x2 f3 k2x3 s1 explicit (3 0 1 4)", 2, 4, 5, 2, [conv_spec(2, 3, 2, 3, 1, 1, EX, pads=(3, 0, 1, 4))])
grad_case("conv 6x6x16 f16 k3x3 s1 explicit (1 2 0 1) (Winograd)", 1, 6, 6, 16,
          [conv_spec(16, 16, 3, 3, 1, 1, EX, pads=(1, 2, 0, 1), scale=0.25)])
grad_case("conv 5x7x1 f16 k3x3 s2 explicit (2 0 1 1) (direct)", 2, 5, 7, 1,
          [conv_spec(1, 16, 3, 3, 2, 2, EX, pads=(2, 0, 1, 1))])
for kind, label in ((MAX_POOL, "max"), (AVG_POOL, "avg")):
    for count in ((0, 1) if kind == AVG_POOL else (0,)):
        tag = " count_include_pad" if count else ""
        grad_case("%s pool 7x6x2 p3x3 s2 explicit (1 1 1 1)%s (ResNet)" % (label, tag), 2, 7, 6, 2,
                  [Spec(kind, [3, 3, 2, 2, EX, 1, 1, 1, 1, count])])
        grad_case("%s pool 6x7x2 p3x2 s1x2 explicit (2 0 0 1)%s" % (label, tag), 1, 6, 7, 2,
                  [Spec(kind, [3, 2, 1, 2, EX, 2, 0, 0, 1, count])], -2, -1)  # negative: padding must not win
grad_case("avg pool 7x5x3 p3x3 s2 same count_include_pad", 2, 7, 5, 3, [Spec(AVG_POOL, [3, 3, 2, 2, SAME, 0, 0, 0, 0, 1])])

# Grouped Conv2D and DepthwiseConv2D (PyTorch's groups; Keras's depthwise kernel layout).


def dw_spec(c, mult, kh, kw, sh=1, sw=1, padding=VALID, act=0, use_bias=True, pads=(0, 0, 0, 0), clip=(0.0, 6.0)):
    kernel = uniform((kh, kw, c, mult), -0.5, 0.5)
    bias = uniform((c * mult,), -0.5, 0.5) if use_bias else None
    return Spec(DEPTHWISE, [kh, kw, sh, sw, padding, mult, act, int(use_bias)] + list(pads), clip, kernel, bias)


grad_case("conv 6x5x4 f6 k3x3 s1 same groups 2 relu", 2, 6, 5, 4,
          [conv_spec(4, 6, 3, 3, 1, 1, SAME, ACT["relu"], groups=2)])
grad_case("conv 7x7x6 f9 k2x3 s2x1 valid groups 3 nobias", 1, 7, 7, 6,
          [conv_spec(6, 9, 2, 3, 2, 1, VALID, use_bias=False, groups=3)])
grad_case("conv 5x6x8 f8 k3x3 s2 explicit (1 1 1 1) groups 8", 2, 5, 6, 8,
          [conv_spec(8, 8, 3, 3, 2, 2, EX, pads=(1, 1, 1, 1), groups=8)])
grad_case("depthwise 6x5x3 x1 k3x3 s1 same relu6 -> 1x1 conv (MobileNet)", 2, 6, 5, 3,
          [dw_spec(3, 1, 3, 3, 1, 1, SAME, ACT["relu6"]), conv_spec(3, 4, 1, 1)], -2, 2)
grad_case("depthwise 7x6x2 x3 k3x3 s2 same", 1, 7, 6, 2, [dw_spec(2, 3, 3, 3, 2, 2, SAME)])
grad_case("depthwise 6x7x4 x2 k5x3 s1 explicit (2 1 0 1) hard_swish nobias", 2, 6, 7, 4,
          [dw_spec(4, 2, 5, 3, 1, 1, EX, ACT["hard_swish"], False, (2, 1, 0, 1))], -3, 3)
grad_case("depthwise 9x9x16 x1 k3x3 s2 explicit (0 1 0 1) (MobileNetV2 stride 2)", 1, 9, 9, 16,
          [dw_spec(16, 1, 3, 3, 2, 2, EX, pads=(0, 1, 0, 1))])

# Reshape between two convs (the second sees the NHWC values regrouped).
grad_case("conv 4x6x2 f3 same -> reshape 6x2x6 -> conv 2x2", 2, 4, 6, 2,
          [conv_spec(2, 3, 3, 3, 1, 1, SAME, ACT["relu"]), Spec(RESHAPE, [6, 2, 6]), conv_spec(6, 2, 2, 2)])


def write_grads(path):
    def arr(f, a, counted=True):
        if counted:
            f.write(struct.pack("<I", a.size))
        f.write(a.tobytes())

    with open(path, "wb") as f:
        f.write(b"TFXGRAD1")
        f.write(struct.pack("<I", len(grad_cases)))
        for name, dims, specs, x, y, r, dx, g in grad_cases:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<4i", *dims))
            f.write(struct.pack("<I", len(specs)))
            for s in specs:
                f.write(struct.pack("<17i", s.kind, *s.ints))
                f.write(struct.pack("<2f", *s.floats))
                arr(f, f32(s.kernel) if s.kernel is not None else f32(np.zeros(0)))
                arr(f, f32(s.bias) if s.bias is not None else f32(np.zeros(0)))
            arr(f, x)
            arr(f, y)
            arr(f, r, False)
            arr(f, dx, False)
            arr(f, g)
    print("wrote %d cases to %s (%d bytes)" % (len(grad_cases), path, os.path.getsize(path)))


def main():
    write_grads(os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_layer_grads.bin"))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_layers.bin")
    with open(path, "wb") as f:
        f.write(b"TFXGOLD1")
        f.write(struct.pack("<I", len(cases)))
        for name, ints, oshape, x, kernel, bias, y in cases:
            nb = name.encode()
            f.write(struct.pack("<I", len(nb)))
            f.write(nb)
            f.write(struct.pack("<13i", *ints))
            f.write(struct.pack("<3i", *oshape))
            for arr in (x, kernel, bias, y):
                if arr is not None:
                    f.write(arr.tobytes())
    print("wrote %d cases to %s (%d bytes, torch %s)" % (len(cases), path, os.path.getsize(path), torch.__version__))


if __name__ == "__main__":
    main()
