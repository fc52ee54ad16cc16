#!/usr/bin/env python3
"""Golden maps for tests/explain/test_explain_methods.c from an independent implementation (PyTorch, float64):
guided backprop and DeconvNet through backward hooks on the ReLU modules (the way Captum and
pytorch-grad-cam implement them), Guided Grad-CAM, Grad-CAM++ (the three alpha variants), Score-CAM
(both weightings), Layer-CAM, XGrad-CAM, HiResCAM, Eigen-CAM (numpy SVD) and the noise tunnel's
VarGrad / SmoothGrad^2 with injected noise, all with the formulas of docs/methods.md.

Model (NHWC in libtfx, NCHW here; conversions explicit):
  input 10x10x3
  Conv2D(4, 3x3, relu, same)   "conv1"
  Conv2D(6, 3x3, relu, valid)  "visualization_layer"   -> 8x8x6
  MaxPooling2D(2x2)            "pool"                  -> 4x4x6
  Flatten (h, w, c)            -> 96
  Dense(8, relu)               "fc"
  Dense(5, softmax)            "out"   (scores: the logits)
Weights are random (seeded) with small positive biases; the generator checks that no pooling
window has a tied maximum (tie-breaking would make DeconvNet implementation-defined).

Format as tests/explain/gen_golden_explain.py: b"TFXG", uint32 count, per array: uint32 name
length, name, uint32 ndim, uint32 dims, float32 data.
Run: /usr/bin/python3 tests/explain/gen_golden_methods.py
"""
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
f32 = np.float32
N, H, W, C, K = 3, 10, 10, 3, 5
arrays = {}


def put(name, a):
    arrays[name] = np.ascontiguousarray(np.asarray(a, dtype=f32))


T = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))


def glorot(rng, shape, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-lim, lim, size=shape).astype(f32)


class Net(nn.Module):
    """ReLUs are modules so that backward hooks can replace their gradient."""

    def __init__(self, P):
        super().__init__()
        w1, b1, w2, b2, w3, b3, w4, b4 = [T(p) for p in P]
        self.W1, self.B1 = w1.permute(3, 2, 0, 1), b1  # HWIO -> OIHW
        self.W2, self.B2 = w2.permute(3, 2, 0, 1), b2
        self.W3, self.B3, self.W4, self.B4 = w3, b3, w4, b4
        self.r1, self.r2, self.r3 = nn.ReLU(), nn.ReLU(), nn.ReLU()

    def features(self, xn):
        h = xn.permute(0, 3, 1, 2)
        h = self.r1(F.conv2d(h, self.W1, self.B1, padding=1))
        return self.r2(F.conv2d(h, self.W2, self.B2))  # A: N x 6 x 8 x 8

    def head(self, a):
        p = F.max_pool2d(a, 2)
        flat = p.permute(0, 2, 3, 1).reshape(p.shape[0], -1)
        return self.r3(flat @ self.W3 + self.B3) @ self.W4 + self.B4  # logits

    def forward(self, xn):
        return self.head(self.features(xn))


rng = np.random.default_rng(7)
for attempt in range(100):
    P = [glorot(rng, (3, 3, 3, 4), 27, 36), rng.uniform(0.02, 0.1, 4).astype(f32),
         glorot(rng, (3, 3, 4, 6), 36, 54), rng.uniform(0.02, 0.1, 6).astype(f32),
         glorot(rng, (96, 8), 96, 8), rng.uniform(0.02, 0.1, 8).astype(f32),
         glorot(rng, (8, K), 8, K), rng.uniform(-0.1, 0.1, K).astype(f32)]
    x = rng.uniform(0.0, 1.0, (N, H, W, C)).astype(f32)
    net = Net(P)
    a = net.features(T(x))
    win = a.reshape(N, 6, 4, 2, 4, 2).permute(0, 1, 2, 4, 3, 5).reshape(N, 6, 4, 4, 4)
    top2 = torch.topk(win, 2, dim=-1).values
    if (top2[..., 0] - top2[..., 1]).min().item() > 1e-6:
        break
else:
    raise SystemExit("no tie-free weights found")
cls = np.array([0, 2, 4])
for k, v in zip(["w1", "b1", "w2", "b2", "w3", "b3", "w4", "b4"], P):
    put(k, v)
put("x", x)
put("classes", cls)
X = T(x)
put("logits", net(X).detach().numpy())


def hooked_grad(mode):
    """Input gradient of the logits at cls with ReLU backward replaced by hooks."""
    hooks = []
    for r in (net.r1, net.r2, net.r3):
        if mode == "guided":  # grad_input = [x > 0] g; keep its positive part
            hooks.append(r.register_full_backward_hook(lambda m, gi, go: (torch.clamp(gi[0], min=0.0),)))
        elif mode == "deconvnet":  # ignore the forward mask: positive part of the incoming gradient
            hooks.append(r.register_full_backward_hook(lambda m, gi, go: (torch.clamp(go[0], min=0.0),)))
    xn = X.clone().requires_grad_(True)
    s = net(xn)[torch.arange(N), torch.as_tensor(cls)].sum()
    (g,) = torch.autograd.grad(s, xn)
    for h in hooks:
        h.remove()
    return g.detach()


gb = hooked_grad("guided")
put("guided_backprop", gb.numpy())
put("deconvnet", hooked_grad("deconvnet").numpy())
put("vanilla", hooked_grad("plain").numpy())


def layer_grad(xn, c):
    a = net.features(xn).detach().requires_grad_(True)
    s = net.head(a)[torch.arange(len(c)), torch.as_tensor(c)].sum()
    (g,) = torch.autograd.grad(s, a)
    return a.detach(), g.detach()  # N x k x h x w


A, G = layer_grad(X, cls)
up = lambda m: F.interpolate(m[:, None], size=(H, W), mode="bilinear", align_corners=False)[:, 0]


def cam_from_weights(w):
    return (w[:, :, None, None] * A).sum(1)


def put_cam(name, pre_relu):
    put(name, F.relu(pre_relu).numpy())
    put(name + "_up", up(F.relu(pre_relu)).numpy())


# Grad-CAM (for Guided Grad-CAM).
gradcam = F.relu(cam_from_weights(G.mean(dim=(2, 3))))
put("guided_grad_cam", (gb * up(gradcam)[:, :, :, None]).numpy())  # NHWC * (N, H, W, 1)

# Grad-CAM++: a = g^2 / (2 g^2 + sum(A) g^3), 0 where the denominator is 0.
sumA = A.sum(dim=(2, 3), keepdim=True)
g2, g3 = G ** 2, G ** 3
den = 2 * g2 + sumA * g3
alpha = torch.where(den != 0, g2 / torch.where(den != 0, den, torch.ones_like(den)), torch.zeros_like(den))
pos = (G > 0).double()
w_pp = (alpha * F.relu(G)).sum(dim=(2, 3))
put_cam("gradcampp", cam_from_weights(w_pp))
# Renormalised alphas, left as they are where the sum is 0: over all cells (the authors' image
# code and tf-keras-vis), over the cells with g > 0 (the authors' video code).
for name, mask in (("gradcampp_norm", torch.ones_like(pos)), ("gradcampp_normpos", pos)):
    norm = (alpha * mask).sum(dim=(2, 3))
    w_ppn = torch.where(norm != 0, w_pp / torch.where(norm != 0, norm, torch.ones_like(norm)), w_pp)
    put_cam(name, cam_from_weights(w_ppn))

# Layer-CAM, HiResCAM, XGrad-CAM.
put_cam("layercam", (F.relu(G) * A).sum(1))
put_cam("hirescam", (G * A).sum(1))
sA = A.sum(dim=(2, 3))
w_x = torch.where(sA != 0, (A * G).sum(dim=(2, 3)) / torch.where(sA != 0, sA, torch.ones_like(sA)),
                  torch.zeros_like(sA))
put_cam("xgradcam", cam_from_weights(w_x))

# Eigen-CAM: centred (hw x k), first right singular vector, sign: largest magnitude positive.
eig = []
for i in range(N):
    M = A[i].permute(1, 2, 0).reshape(-1, 6).numpy()
    M = M - M.mean(axis=0)
    _, _, VT = np.linalg.svd(M, full_matrices=False)
    p = M @ VT[0]
    if abs(p.min()) > abs(p.max()):
        p = -p
    eig.append(p.reshape(8, 8))
put_cam("eigencam", T(np.array(eig)))

# Score-CAM: masks from the upsampled channels, min-max normalised; skipped when constant.
Aup = F.interpolate(A, size=(H, W), mode="bilinear", align_corners=False)  # N x k x H x W
for variant in ("classes", "channels"):
    pre, pre_up = [], []
    for i in range(N):
        sc, used = np.zeros(6), np.zeros(6, dtype=bool)
        for q in range(6):
            mp = Aup[i, q]
            lo, hi = mp.min(), mp.max()
            if hi <= lo:
                continue
            mk = (mp - lo) / (hi - lo)
            z = net(X[i:i + 1] * mk[None, :, :, None])[0]
            sc[q] = torch.softmax(z, 0)[cls[i]].item() if variant == "classes" else z[cls[i]].item()
            used[q] = True
        if variant == "channels":
            e = np.where(used, np.exp(sc - sc[used].max()), 0.0)
            sc = e / e.sum()
        wts = T(sc)
        pre.append((wts[:, None, None] * A[i]).sum(0))
        pre_up.append((wts[:, None, None] * Aup[i]).sum(0))
    put("scorecam_" + variant, F.relu(torch.stack(pre)).numpy())
    put("scorecam_" + variant + "_up", F.relu(torch.stack(pre_up)).numpy())

# Noise tunnel over vanilla gradients with injected noise: S = 4, sigma = 0.2 (max - min).
S = 4
eps = rng.standard_normal((N, S, H, W, C)).astype(f32)
put("nt_eps", eps)
grads = []
for s in range(S):
    sig = np.array([f32(0.2) * (x[i].max() - x[i].min()) for i in range(N)], dtype=f32)
    noisy = (X + T(sig)[:, None, None, None] * T(eps[:, s])).requires_grad_(True)
    z = net(noisy)[torch.arange(N), torch.as_tensor(cls)].sum()
    (g,) = torch.autograd.grad(z, noisy)
    grads.append(g.detach())
gs = torch.stack(grads)
put("nt_smoothgrad", gs.mean(0).numpy())
put("nt_smoothgrad_sq", (gs ** 2).mean(0).numpy())
put("nt_vargrad", ((gs ** 2).mean(0) - gs.mean(0) ** 2).numpy())

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden_methods.bin")
with open(out, "wb") as f:
    f.write(b"TFXG" + struct.pack("<I", len(arrays)))
    for name, a in arrays.items():
        nb = name.encode()
        f.write(struct.pack("<I", len(nb)) + nb + struct.pack("<I", a.ndim))
        f.write(struct.pack("<%dI" % a.ndim, *a.shape))
        f.write(a.astype("<f4").tobytes())
print("wrote", out, os.path.getsize(out), "bytes; attempt", attempt, "logits",
      np.round(net(X).detach().numpy(), 3))
