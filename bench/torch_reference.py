#!/usr/bin/env python3
"""PyTorch reference for bench/: the seed ConvNet doing the same work as tfx-bench.

    torch_reference.py [all|train|infer|explain|rss] [--reps N] [--threads T]

Prints "name value unit" lines with the names tfx-bench uses (medians over --reps runs).
Threads: --threads (default: $OPENBLAS_NUM_THREADS, else all cores) for torch's intra-op pool;
OpenBLAS (which torch's Linear layers call) reads OPENBLAS_NUM_THREADS itself, so run both
programs with the same environment (bench/compare.sh does).

Each measurement mirrors libtfx's definition (docs/methods.md, include/tfx/explain.h):
  train      one epoch of 500 synthetic images, shuffled, batch 50, Adam, sparse cross-entropy
             on the logits, accuracy counted (tfx_model_fit)
  infer      256 images in one batch, softmax output, no autograd (tfx_model_predict)
  explain    class 3, pre-softmax logit as the score, no parameter gradients:
             activations: the sub-model up to "visualization_layer" (conv2, as tf-explain);
             vanilla gradients / gradients*inputs: one forward + backward of the n images;
             Grad-CAM at conv2: weights = spatial mean of d logit / d A, ReLU(sum w A), 28x28;
             SmoothGrad: 50 noisy copies per image, sigma = 0.15 (max x - min x);
             Integrated Gradients: black baseline scored once, alphas k/50 (k = 1..50) of each
             image in one batch, attribution x * mean gradient, completeness gap;
             occlusion: clean image + 64 copies with a zero 4x4 patch, softmax probability
             drop averaged over the windows covering each pixel;
             reported per image for 1 and 16 images
  rss        trains 10 batches in a fresh process and reports ru_maxrss
"""
import argparse
import os
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

H = W = 32
C = 3
CLASSES = 10
TARGET = 3


class Seed(nn.Module):
    """Conv2D 32 -> Conv2D 64 -> Conv2D 128 (3x3 valid, relu) -> Flatten -> Dense 128 relu -> Dense 10."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(C, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)  # "visualization_layer"
        self.c3 = nn.Conv2d(64, 128, 3)
        self.d1 = nn.Linear(128 * (H - 6) * (W - 6), 128)
        self.d2 = nn.Linear(128, CLASSES)

    def features(self, x):  # output of visualization_layer
        return F.relu(self.c2(F.relu(self.c1(x))))

    def head(self, a):  # logits from visualization_layer's output
        a = F.relu(self.c3(a))
        a = F.relu(self.d1(torch.flatten(a, 1)))
        return self.d2(a)

    def forward(self, x):  # logits
        return self.head(self.features(x))


def timeit(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_data(n=500):
    g = torch.Generator().manual_seed(1)
    x = torch.rand(n, C, H, W, generator=g)
    y = torch.tensor([(i * 7) % CLASSES for i in range(n)])
    return x, y


def make_trainer(m, x, y, batch=50):
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)

    def epoch(n=None):
        n = len(x) if n is None else n
        m.train()
        idx = torch.randperm(n)
        correct = 0
        for s in range(0, n, batch):
            b = idx[s:s + batch]
            xb, yb = x[b], y[b]
            opt.zero_grad()
            logits = m(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            opt.step()
            correct += (logits.detach().argmax(1) == yb).sum().item()
        return correct

    return epoch


def bench_train(reps):
    m = Seed()
    x, y = train_data()
    epoch = make_trainer(m, x, y)
    epoch(100)  # warm-up, as tfx-bench
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    print(f"train_b50_images_per_s {len(x) / statistics.median(times):.1f} images/s", flush=True)


def bench_rss():
    m = Seed()
    x, y = train_data()
    make_trainer(m, x, y)()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_training_mb {rss_mb:.0f} MB", flush=True)


def bench_infer(reps):
    m = Seed().eval()
    xi = torch.rand(256, C, H, W)

    def predict():
        with torch.no_grad():
            return F.softmax(m(xi), dim=1)

    print(f"inference_b256_images_per_s {256 / timeit(predict, reps):.1f} images/s", flush=True)


def explainers(m):
    def activations(x):
        with torch.no_grad():
            return m.features(x)

    def gradients(x):
        x = x.clone().requires_grad_(True)
        m(x)[:, TARGET].sum().backward()
        return x.grad

    def gradients_inputs(x):
        return gradients(x) * x

    def grad_cam(x):
        with torch.no_grad():
            a0 = m.features(x)
        a = a0.clone().requires_grad_(True)
        m.head(a)[:, TARGET].sum().backward()
        w = a.grad.mean(dim=(2, 3), keepdim=True)
        return F.relu((w * a0).sum(1))

    def smooth_grad(x, samples=50, noise=0.15):
        out = []
        for xi in x:
            sigma = noise * (xi.max() - xi.min())
            xs = (xi.unsqueeze(0) + sigma * torch.randn(samples, *xi.shape)).requires_grad_(True)
            m(xs)[:, TARGET].sum().backward()
            out.append(xs.grad.mean(0))
        return torch.stack(out)

    def integrated_gradients(x, steps=50):
        with torch.no_grad():
            base = m(torch.zeros(1, C, H, W))[0, TARGET]
        alphas = torch.arange(1, steps + 1, dtype=torch.float32).view(-1, 1, 1, 1) / steps
        out, gaps = [], []
        for xi in x:
            xs = (alphas * xi.unsqueeze(0)).requires_grad_(True)
            logits = m(xs)[:, TARGET]
            logits.sum().backward()
            attr = xi * xs.grad.mean(0)
            out.append(attr)
            gaps.append(abs(attr.sum().item() - (logits[-1].item() - base.item())))
        return torch.stack(out), gaps

    def occlusion(x, patch=4):
        out = []
        cover = torch.zeros(H, W)
        for i in range(0, H, patch):
            for j in range(0, W, patch):
                cover[i:i + patch, j:j + patch] += 1
        for xi in x:
            copies = [xi.unsqueeze(0)]
            for i in range(0, H, patch):
                for j in range(0, W, patch):
                    c = xi.clone().unsqueeze(0)
                    c[:, :, i:i + patch, j:j + patch] = 0.0
                    copies.append(c)
            with torch.no_grad():
                p = F.softmax(m(torch.cat(copies)), dim=1)[:, TARGET]
            drop = p[0] - p[1:]
            acc = torch.zeros(H, W)
            k = 0
            for i in range(0, H, patch):
                for j in range(0, W, patch):
                    acc[i:i + patch, j:j + patch] += drop[k]
                    k += 1
            out.append(acc / cover)
        return torch.stack(out)

    return [("activations", activations), ("vanilla_gradients", gradients),
            ("gradients_inputs", gradients_inputs), ("grad_cam", grad_cam), ("smooth_grad", smooth_grad),
            ("integrated_gradients", integrated_gradients), ("occlusion", occlusion)]


def bench_explain(reps, only=None):
    m = Seed().eval()
    for p in m.parameters():
        p.requires_grad_(False)  # explainers compute no parameter gradients (libtfx neither)
    x16 = torch.rand(16, C, H, W)
    for name, fn in explainers(m):
        if only and name != only:
            continue
        for n in (1, 16):
            xb = x16[:n].contiguous()
            t = timeit(lambda: fn(xb), reps)
            print(f"{name}_{n}_ms_per_image {1e3 * t / n:.2f} ms", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="all", choices=["all", "train", "infer", "explain", "rss"])
    env_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    ap.add_argument("--threads", type=int, default=int(env_threads) if env_threads else os.cpu_count())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--only", help="one explainer (explain mode)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.mode in ("all", "train"):
        bench_train(a.reps)
    if a.mode in ("all", "infer"):
        bench_infer(a.reps)
    if a.mode in ("all", "explain"):
        bench_explain(a.reps, a.only)
    if a.mode == "rss":
        bench_rss()


if __name__ == "__main__":
    main()
