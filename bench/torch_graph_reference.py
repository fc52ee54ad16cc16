#!/usr/bin/env python3
"""PyTorch reference for the graph benchmarks (issue 17): torchvision 0.14's resnet18() and
mobilenet_v2() at 224x224x3, random weights, doing the same work as `tfx-bench graph`.

    torch_graph_reference.py bench --net resnet18|mobilenetv2 [--reps N] [--threads T]
    torch_graph_reference.py onnx --net NET --out FILE        (opset 13, dynamic batch)
    torch_graph_reference.py weights --net NET --out FILE     (for `tfx-bench graph-check`)
    torch_graph_reference.py layers --net NET [--count N]     (per-module forward times)

bench prints "NET_WORK value ms" lines (medians over --reps after a warm-up), WORK one of
  infer_b1 / infer_b16   eval mode, no_grad forward of 1 / 16 images (tfx_model_predict with
                         batch size 16), reported per call (not per image)
  vanilla_1              one image: input requires_grad, parameters requires_grad=False,
                         backward of the class-3 logit (TFX_METHOD_VANILLA_GRADIENTS)
  grad_cam_1             one image at the last block's output (resnet18: layer4; mobilenetv2:
                         features[18], the last 1x1 conv + BN + ReLU6): a forward hook hands the
                         rest of the network a detached copy that requires grad, the class-3
                         logit is backpropagated to it, weights = mean over h, w of the gradient,
                         map = ReLU(sum_k w_k A_k) (TFX_METHOD_GRAD_CAM at that layer)
Threads: --threads (default $OPENBLAS_NUM_THREADS, else all cores) -> torch.set_num_threads.

layers times each leaf module's forward (inference, no_grad, --count images) with forward
hooks, medians over --reps after 2 warm-ups, and sums them by kind (Conv2d by kernel/stride and
depthwise, BatchNorm2d, ReLU/ReLU6, ...): the profile to set against `tfx-bench graph-layers`.

weights writes, for the model with BatchNorm statistics randomised (so the check exercises them),
every libtfx layer's weights in the order `tfx-bench graph` adds the layers, in Keras layout
(Conv2D [kh][kw][in][out], DepthwiseConv2D [kh][kw][c][1], BatchNormalization gamma, beta,
moving mean, moving variance, Dense [in][out] then bias), followed by 2 test images (NHWC) and
torch's logits for them; all float32 little-endian. Header: "TFXW", count of floats (uint64).
"""
import argparse
import os
import statistics
import struct
import sys
import time

import torch
import torchvision

H = W = 224
C = 3
TARGET = 3


def build(net):
    torch.manual_seed(0)
    if net == "resnet18":
        return torchvision.models.resnet18()
    if net == "mobilenetv2":
        return torchvision.models.mobilenet_v2()
    raise SystemExit(f"unknown net {net}")


def cam_module(m, net):
    return m.layer4 if net == "resnet18" else m.features[18]


def timeit(fn, reps):
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(net, reps):
    m = build(net).eval()
    for p in m.parameters():
        p.requires_grad_(False)  # no parameter gradients (libtfx's explainers compute none)
    g = torch.Generator().manual_seed(3)
    x16 = torch.rand(16, C, H, W, generator=g)
    x1 = x16[:1].contiguous()

    def infer(x):
        with torch.no_grad():
            return m(x)

    def vanilla(x):
        x = x.clone().requires_grad_(True)
        m(x)[:, TARGET].sum().backward()
        return x.grad

    held = {}

    def hook(_mod, _inp, out):
        a = out.detach().requires_grad_(True)
        held["a"] = a
        return a

    def grad_cam(x):
        h = cam_module(m, net).register_forward_hook(hook)
        try:
            logit = m(x)[:, TARGET].sum()
        finally:
            h.remove()
        a = held.pop("a")
        logit.backward()
        w = a.grad.mean(dim=(2, 3), keepdim=True)
        return torch.relu((w * a.detach()).sum(1))

    for name, fn in (("infer_b1", lambda: infer(x1)), ("infer_b16", lambda: infer(x16)),
                     ("vanilla_1", lambda: vanilla(x1)), ("grad_cam_1", lambda: grad_cam(x1))):
        print(f"{net}_{name} {1e3 * timeit(fn, reps):.2f} ms", flush=True)


def export_onnx(net, out):
    m = build(net).eval()
    torch.onnx.export(m, torch.rand(1, C, H, W), out, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})


def conv_w(conv):  # [out][in][kh][kw] -> [kh][kw][in][out]
    return conv.weight.detach().permute(2, 3, 1, 0)


def dw_w(conv):  # [c][1][kh][kw] -> [kh][kw][c][1]
    return conv.weight.detach().permute(2, 3, 0, 1)


def bn_w(bn):
    return torch.cat([bn.weight.detach(), bn.bias.detach(), bn.running_mean, bn.running_var])


def libtfx_order(m, net):
    """The weight tensors in the order tfx-bench's builder adds the layers (bench/tfx_bench.c)."""
    out = []
    if net == "resnet18":
        out += [conv_w(m.conv1), bn_w(m.bn1)]
        for layer in (m.layer1, m.layer2, m.layer3, m.layer4):
            for blk in layer:
                out += [conv_w(blk.conv1), bn_w(blk.bn1), conv_w(blk.conv2), bn_w(blk.bn2)]
                if blk.downsample is not None:
                    out += [conv_w(blk.downsample[0]), bn_w(blk.downsample[1])]
        out += [m.fc.weight.detach().t(), m.fc.bias.detach()]
        return out
    for f in m.features:
        if isinstance(f, torchvision.ops.misc.Conv2dNormActivation):  # stem and the last 1x1
            out += [conv_w(f[0]), bn_w(f[1])]
            continue
        for mod in f.conv:  # InvertedResidual: [expand ConvBNReLU6], dw ConvBNReLU6, project conv, BN
            if isinstance(mod, torchvision.ops.misc.Conv2dNormActivation):
                out += [dw_w(mod[0]) if mod[0].groups > 1 else conv_w(mod[0]), bn_w(mod[1])]
            elif isinstance(mod, torch.nn.Conv2d):
                out.append(conv_w(mod))
            else:
                out.append(bn_w(mod))
    out += [m.classifier[1].weight.detach().t(), m.classifier[1].bias.detach()]
    return out


def export_weights(net, out):
    m = build(net).eval()
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.bias.copy_(0.2 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.2 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
    x = torch.rand(2, C, H, W, generator=g)
    with torch.no_grad():
        logits = m(x)
    tensors = libtfx_order(m, net) + [x.permute(0, 2, 3, 1), logits]
    flat = torch.cat([t.contiguous().reshape(-1) for t in tensors]).numpy().astype("<f4")
    with open(out, "wb") as f:
        f.write(b"TFXW" + struct.pack("<Q", flat.size))
        f.write(flat.tobytes())
    params = sum(p.numel() for p in m.parameters())
    print(f"{net}: {params} parameters, {flat.size} floats written to {out}", file=sys.stderr)


def layers(net, reps, count):
    m = build(net).eval()
    times = {}
    names = {}

    def pre(mod, _inp):
        mod._t0 = time.perf_counter()

    def post(mod, _inp, _out):
        times.setdefault(names[mod], []).append(time.perf_counter() - mod._t0)

    kinds = {}
    for name, mod in m.named_modules():
        if next(mod.children(), None) is None:
            names[mod] = name
            kind = type(mod).__name__
            if isinstance(mod, torch.nn.Conv2d):
                kind += f"_{mod.kernel_size[0]}x{mod.kernel_size[1]}s{mod.stride[0]}" + ("_dw" if mod.groups > 1 else "")
            kinds[name] = kind
            mod.register_forward_pre_hook(pre)
            mod.register_forward_hook(post)
    x = torch.rand(count, C, H, W)
    with torch.no_grad():
        for _ in range(reps + 2):
            m(x)
    sums = {}
    for name, v in times.items():
        t = statistics.median(v[2:])
        print(f"module_{name}_{kinds[name]}_{count}_forward_ms {1e3 * t:.3f} ms")
        sums[kinds[name]] = sums.get(kinds[name], 0.0) + t
    for kind, t in sorted(sums.items(), key=lambda kv: -kv[1]):
        print(f"kind_{kind}_{count}_forward_ms {1e3 * t:.3f} ms")
    print(f"modules_{count}_forward_ms {1e3 * sum(sums.values()):.3f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["bench", "onnx", "weights", "layers"])
    ap.add_argument("--net", required=True, choices=["resnet18", "mobilenetv2"])
    env_threads = os.environ.get("OPENBLAS_NUM_THREADS")
    ap.add_argument("--threads", type=int, default=int(env_threads) if env_threads else os.cpu_count())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out")
    ap.add_argument("--count", type=int, default=1, help="images (layers)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.what == "bench":
        bench(a.net, a.reps)
    elif a.what == "layers":
        layers(a.net, a.reps, a.count)
    elif not a.out:
        ap.error("--out is required")
    elif a.what == "onnx":
        export_onnx(a.net, a.out)
    else:
        export_weights(a.net, a.out)


if __name__ == "__main__":
    main()
