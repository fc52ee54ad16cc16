#!/usr/bin/env python3
"""Golden raw maps for tests/explain: an independent implementation of every explainer with
PyTorch autograd (float64) on a small random ConvNet, written to golden_explain.bin.

Model (NHWC in libtfx, NCHW here; conversions are explicit below):
  input 10x10x3
  Conv2D(4, 3x3, relu, same)   "conv1"
  Conv2D(6, 3x3, relu, valid)  "visualization_layer"   -> 8x8x6
  MaxPooling2D(2x2)            "pool"                  -> 4x4x6
  Flatten (NHWC order h, w, c) -> 96
  Dense(8, relu)               "fc"
  Dense(5, softmax)            "out"

File format (little endian): b"TFXG", uint32 count, then per array: uint32 name length, name
bytes, uint32 ndim, uint32 dims[ndim], float32 data (row-major).
Run: /usr/bin/python3 tests/explain/gen_golden_explain.py  (writes next to this script).
"""
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(20240607)
f32 = np.float32

N, H, W, C, K = 3, 10, 10, 3, 5
arrays = {}


def put(name, a):
    arrays[name] = np.ascontiguousarray(np.asarray(a, dtype=f32))


def glorot(shape, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=shape).astype(f32)


# Keras layouts: conv HWIO, dense [in][out]. Random init, then a short training run on a toy task
# (class k = a bright 4x4 blob at place k on a noisy background), so that class scores are well
# separated as in a real classifier (IG completeness is measured relative to S(x) - S(x')).
w1 = glorot((3, 3, 3, 4), 27, 36); b1 = rng.uniform(0.0, 0.2, 4).astype(f32)
w2 = glorot((3, 3, 4, 6), 36, 54); b2 = rng.uniform(0.0, 0.2, 6).astype(f32)
w3 = glorot((96, 8), 96, 8); b3 = rng.uniform(0.0, 0.2, 8).astype(f32)
w4 = glorot((8, K), 8, K); b4 = np.zeros(K, dtype=f32)
PLACES = [(0, 0), (0, 6), (6, 0), (6, 6), (3, 3)]


def toy(count):
    xs = rng.uniform(0.0, 0.4, (count, H, W, C)).astype(f32)
    ys = rng.integers(0, K, count)
    for i, y in enumerate(ys):
        r, q = PLACES[y]
        xs[i, r:r + 4, q:q + 4, :] += rng.uniform(0.4, 0.6)
    return xs, ys


T = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))
params = [T(a).requires_grad_(True) for a in (w1, b1, w2, b2, w3, b3, w4, b4)]


def net(xn, P):
    q1, c1, q2, c2, q3, c3, q4, c4 = P
    h = xn.permute(0, 3, 1, 2)  # NHWC -> NCHW
    h = F.relu(F.conv2d(h, q1.permute(3, 2, 0, 1), c1, padding=1))  # HWIO -> OIHW; 'same' 3x3
    a = F.relu(F.conv2d(h, q2.permute(3, 2, 0, 1), c2))
    p = F.max_pool2d(a, 2)
    flat = p.permute(0, 2, 3, 1).reshape(p.shape[0], -1)  # Keras Flatten: (h, w, c) order
    return a, p, F.relu(flat @ q3 + c3) @ q4 + c4


torch.manual_seed(0)
opt = torch.optim.Adam(params, lr=0.01)
for step in range(20):
    xs, ys = toy(32)
    loss = F.cross_entropy(net(T(xs), params)[2], torch.as_tensor(ys))
    opt.zero_grad()
    loss.backward()
    opt.step()
w1, b1, w2, b2, w3, b3, w4, b4 = [p.detach().numpy().astype(f32) for p in params]
x, ytrue = toy(N)
cls = np.array([0, 2, 4])  # image 0: its label (predicted); 1: another class; 2: its label, not predicted
for k, v in [("w1", w1), ("b1", b1), ("w2", w2), ("b2", b2), ("w3", w3), ("b3", b3), ("w4", w4),
             ("b4", b4), ("x", x), ("classes", cls)]:
    put(k, v)

W1 = T(w1).permute(3, 2, 0, 1)  # HWIO -> OIHW
W2 = T(w2).permute(3, 2, 0, 1)
B1, B2, W3, B3, W4, B4 = T(b1), T(b2), T(w3), T(b3), T(w4), T(b4)


def features(xn):
    """NHWC input -> (visualization_layer output NCHW, pool output NCHW)."""
    h = xn.permute(0, 3, 1, 2)  # NHWC -> NCHW
    h = F.relu(F.conv2d(h, W1, B1, padding=1))  # 'same' for 3x3 stride 1
    a = F.relu(F.conv2d(h, W2, B2))
    return a, F.max_pool2d(a, 2)


def head(p):
    flat = p.permute(0, 2, 3, 1).reshape(p.shape[0], -1)  # Keras Flatten: (h, w, c) order
    h = F.relu(flat @ W3 + B3)
    return h @ W4 + B4  # logits


def logits(xn):
    return head(features(xn)[1])


def grad_of(xn, target, c):
    xn = xn.clone().requires_grad_(True)
    z = logits(xn)
    s = target(z)[torch.arange(len(c)), torch.as_tensor(c)].sum()
    (g,) = torch.autograd.grad(s, xn)
    return g


LOGIT = lambda z: z
PROB = lambda z: torch.softmax(z, 1)

X = T(x)
z = logits(X)
put("logits", z.detach().numpy())
pred = z.argmax(1).numpy()
put("pred", pred)

# Vanilla gradients and gradients x inputs (default: logit).
g = grad_of(X, LOGIT, cls)
put("vanilla", g.numpy())
put("grad_inputs", (g * X).numpy())
# compat: tf-explain differentiates the softmax output (Dense(softmax) is not split) and takes |.|.
put("vanilla_compat", grad_of(X, PROB, cls).abs().numpy())
put("vanilla_pred", grad_of(X, LOGIT, pred).numpy())


# Grad-CAM.
def grad_cam(xn, c, layer, target, guided, relu):
    a, p = features(xn)
    A = (a if layer == "visualization_layer" else p)
    A = A.detach().requires_grad_(True)
    pp = F.max_pool2d(A, 2) if layer == "visualization_layer" else A
    s = target(head(pp))[torch.arange(len(c)), torch.as_tensor(c)].sum()
    (G,) = torch.autograd.grad(s, A)
    if guided:
        G = G * (A > 0) * (G > 0)
    w = G.mean(dim=(2, 3), keepdim=True)
    cam = (w * A).sum(1)
    return (F.relu(cam) if relu else cam).detach()


cam = grad_cam(X, cls, "visualization_layer", LOGIT, False, True)
put("gradcam_vis", cam.numpy())  # N x 8 x 8
put("gradcam_pool", grad_cam(X, cls, "pool", LOGIT, False, True).numpy())  # N x 4 x 4
up = F.interpolate(cam[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
put("gradcam_vis_up", up.numpy())
put("gradcam_vis_compat", grad_cam(X, cls, "visualization_layer", PROB, True, False).numpy())

# Integrated Gradients, m = 8: right Riemann sum, black baseline, times (x - x').
m = 8
acc = torch.zeros_like(X)
for k in range(1, m + 1):
    acc += grad_of(X * (k / m), LOGIT, cls)
put("ig8", (X * acc / m).numpy())
# compat: alpha = k/(m-1), k = 0..m-1, softmax output, no multiplication, |.|.
m = 5
acc = torch.zeros_like(X)
for k in range(m):
    acc += grad_of(X * (k / (m - 1)), PROB, cls)
put("ig5_compat", (acc / m).abs().numpy())

# SmoothGrad with injected standard-normal noise: S = 4 samples, sigma = 0.2 (max - min) per image.
S = 4
eps = rng.standard_normal((N, S, H, W, C)).astype(f32)
put("sg_eps", eps)
acc = torch.zeros_like(X)
for s in range(S):
    sig = np.array([f32(0.2) * (x[i].max() - x[i].min()) for i in range(N)], dtype=f32)
    noisy = X + T(sig)[:, None, None, None] * T(eps[:, s])
    acc += grad_of(noisy, LOGIT, cls)
put("smoothgrad", (acc / S).numpy())
# compat: cross-entropy from the logits, absolute sigma 0.5, |mean|.
acc = torch.zeros_like(X)
for s in range(S):
    noisy = (X + 0.5 * T(eps[:, s])).clone().requires_grad_(True)
    loss = F.cross_entropy(logits(noisy), torch.as_tensor(cls), reduction="sum")
    (gg,) = torch.autograd.grad(loss, noisy)
    acc += gg
put("smoothgrad_compat", (acc / S).abs().numpy())


# Occlusion: windows of 3 with stride 2; starts 0, 2, ... until a window reaches the border.
def starts(size, p, st):
    out, s = [], 0
    while True:
        out.append(s)
        if s + p >= size:
            return out
        s += st


def occlusion(p, st, fill):
    prob = torch.softmax(logits(X), 1).detach()
    res = np.zeros((N, H, W))
    for i in range(N):
        accm, cov = np.zeros((H, W)), np.zeros((H, W))
        for y0 in starts(H, p, st):
            for x0 in starts(W, p, st):
                xo = X[i:i + 1].clone()
                xo[:, y0:y0 + p, x0:x0 + p, :] = fill
                po = torch.softmax(logits(xo), 1)[0, cls[i]].item()
                accm[y0:y0 + p, x0:x0 + p] += prob[i, cls[i]].item() - po
                cov[y0:y0 + p, x0:x0 + p] += 1
        res[i] = accm / cov
    return res


put("occlusion", occlusion(3, 2, 0.0))
# compat: stride = patch = 3, fill 127.5, cell = 1 - p, cells resized bilinearly to H x W.
p = 3
nr = -(-H // p)
cells = np.zeros((N, nr, nr))
for i in range(N):
    for r in range(nr):
        for q in range(nr):
            xo = X[i:i + 1].clone()
            xo[:, r * p:r * p + p, q * p:q * p + p, :] = 127.5
            cells[i, r, q] = 1 - torch.softmax(logits(xo), 1)[0, cls[i]].item()
up = F.interpolate(T(cells)[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]
put("occlusion_compat", up.numpy())

# Activations of visualization_layer, NHWC.
put("act_vis", features(X)[0].permute(0, 2, 3, 1).detach().numpy())


# Integrated Gradients per integration rule (o->ig_rule), m = 8, with Captum's nodes and step sizes
# (captum/attr/_utils/approximation_methods.py): (x - x') * sum_k w_k grad S(x' + alpha_k (x - x')).
# Appended after every older array, so those stay byte-identical.
def ig_rule(alphas, weights):
    acc = torch.zeros_like(X)
    for a, w in zip(alphas, weights):
        acc += float(w) * grad_of(X * float(a), LOGIT, cls)
    return (X * acc).numpy()


m = 8
leg_t, leg_v = np.polynomial.legendre.leggauss(m)
put("ig8_right", ig_rule(np.linspace(1 / m, 1, m), [1 / m] * m))
put("ig8_left", ig_rule(np.linspace(0, 1 - 1 / m, m), [1 / m] * m))
put("ig8_middle", ig_rule(np.linspace(1 / (2 * m), 1 - 1 / (2 * m), m), [1 / m] * m))
# The composite trapezoid rule on Captum's nodes k/(m-1): weights 1/(m-1), halved at both ends.
put("ig8_trapezoid", ig_rule(np.linspace(0, 1, m), [0.5 / (m - 1)] + [1 / (m - 1)] * (m - 2) + [0.5 / (m - 1)]))
# Captum's riemann_trapezoid itself: step sizes 1/m halved at both ends, summing to (m-1)/m.
put("ig8_trapezoid_captum", ig_rule(np.linspace(0, 1, m), [0.5 / m] + [1 / m] * (m - 2) + [0.5 / m]))
put("ig8_gausslegendre", ig_rule(0.5 * (1 + leg_t), 0.5 * leg_v))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_explain.bin")
with open(out, "wb") as f:
    f.write(b"TFXG" + struct.pack("<I", len(arrays)))
    for name, a in arrays.items():
        nb = name.encode()
        f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.ndim))
        f.write(struct.pack("<%dI" % a.ndim, *a.shape))
        f.write(a.astype("<f4").tobytes())
print("wrote", out, os.path.getsize(out), "bytes;", "labels", ytrue, "pred", pred, "probs",
      np.round(torch.softmax(z, 1).detach().numpy(), 4))
