#!/usr/bin/env python3
"""PyTorch reference for bench/: the same seed ConvNet and the same work as tfx-bench.

Prints "name value unit" lines like tfx-bench. Threads: --threads (default: all cores), so
both sides use the same count. Run through bench/compare.sh to get the ratio table.
"""
import argparse
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Seed(nn.Module):
    """Conv2D 32 -> Conv2D 64 -> Conv2D 128 (3x3 valid, relu) -> Flatten -> Dense 128 relu -> Dense 10."""

    def __init__(self, c=3, hw=32):
        super().__init__()
        self.c1 = nn.Conv2d(c, 32, 3)
        self.c2 = nn.Conv2d(32, 64, 3)
        self.c3 = nn.Conv2d(64, 128, 3)
        self.d1 = nn.Linear(128 * (hw - 6) ** 2, 128)
        self.d2 = nn.Linear(128, 10)

    def forward(self, x):  # logits
        x = F.relu(self.c1(x))
        x = F.relu(self.c2(x))
        x = F.relu(self.c3(x))
        x = F.relu(self.d1(torch.flatten(x, 1)))
        return self.d2(x)


def timeit(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    m = Seed()
    opt = torch.optim.Adam(m.parameters(), lr=1e-3, eps=1e-7)
    xb = torch.rand(50, 3, 32, 32)
    yb = torch.randint(0, 10, (50,))

    def train_step():
        opt.zero_grad()
        loss = F.cross_entropy(m(xb), yb)
        loss.backward()
        opt.step()

    t = timeit(train_step, a.reps)
    print(f"train_b50_images_per_s {50 / t:.1f}")

    xi = torch.rand(256, 3, 32, 32)
    with torch.no_grad():
        t = timeit(lambda: m(xi), a.reps)
    print(f"inference_b256_images_per_s {256 / t:.1f}")

    x1 = torch.rand(1, 3, 32, 32)

    def vanilla():
        x = x1.clone().requires_grad_(True)
        m(x)[0, 3].backward()
        return x.grad

    for p in m.parameters():
        p.requires_grad_(False)  # explainers need no parameter gradients (fair to torch)
    print(f"vanilla_gradients_1_ms {1e3 * timeit(vanilla, a.reps):.2f}")

    def integrated(steps=50):
        alphas = torch.arange(1, steps + 1, dtype=torch.float32).view(-1, 1, 1, 1) / steps
        x = (alphas * x1).requires_grad_(True)
        m(x)[:, 3].sum().backward()
        return x1 * x.grad.mean(0, keepdim=True)

    print(f"integrated_gradients_50_ms {1e3 * timeit(integrated, a.reps):.2f}")

    def occlusion(patch=4):
        copies = []
        for i in range(0, 32, patch):
            for j in range(0, 32, patch):
                c = x1.clone()
                c[:, :, i:i + patch, j:j + patch] = 0.5
                copies.append(c)
        with torch.no_grad():
            p = F.softmax(m(torch.cat(copies)), dim=1)[:, 3]
        return 1 - p

    print(f"occlusion_patch4_ms {1e3 * timeit(occlusion, a.reps):.2f}")

    for p in m.parameters():
        p.requires_grad_(True)
    for _ in range(3):
        train_step()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak_rss_training_mb {rss_mb:.0f}")
    print(f"threads {a.threads}")


if __name__ == "__main__":
    main()
