#!/usr/bin/python3
"""PyTorch oracle for the ONNX importer (tests/onnx/test_onnx_torch.c).

Builds small variants of torchvision 0.14's resnet18 and mobilenet_v2 (random weights, random
BatchNorm statistics, eval mode), exports them with torch.onnx.export (opset 13), and writes
goldens computed by torch autograd in float64 on the same float32 weights:

  resnet_small.onnx      ResNet-18's structure (BasicBlock, [2, 2, 2, 2], conv1 7x7/2, maxpool,
                         avgpool, fc) with widths 4, 8, 16, 32 instead of 64..512, 48x48 input (layer4: 2x2),
                         10 classes; default export (torch folds the BatchNorms into the convs)
  resnet_small_bn.onnx   the same model exported with do_constant_folding=False and
                         training=TrainingMode.PRESERVE: BatchNormalization nodes stay
  mobilenet_small.onnx   torchvision MobileNetV2(width_mult=0.25) with a shortened block list and
                         a 128-channel last conv (the full one has 1280), 32x32 input, 10 classes

and for each <model>_golden.bin (little-endian): int32 N, H, W, C, K, h, w (h, w: layer4's output,
0 for mobilenet), then float32 x (N x H x W x C, NHWC), logits (N x K), int32 class (N, argmax),
vanilla gradients d logit_class / d x (NHWC), Grad-CAM at layer4's output (N x h x w; libtfx's
definition: ReLU(sum_k alpha_k A_k), alpha_k the spatial mean of d logit / d A_k; resnet only),
integrated gradients (NHWC; black baseline, right Riemann sum alpha = k/16, k = 1..16, times x).

Run: /usr/bin/python3 tests/onnx/gen_onnx_torch.py [outdir] (default: this script's folder);
     /usr/bin/python3 tests/onnx/gen_onnx_torch.py --full outdir: the full-size resnet18 and
     mobilenet_v2 at 224x224 (slow suite, generated at test time, not committed).
Also prints the ONNX names of layer4's output (what the C test asks libtfx for).
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models.resnet import BasicBlock

torch.manual_seed(18)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
STEPS = 16
N = 2


def randomise_bn(model):
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.1
            m.running_mean.data = torch.randn(c, generator=g) * 0.1
            m.running_var.data = torch.rand(c, generator=g) + 0.5


def small_resnet():
    m = torchvision.models.ResNet(BasicBlock, [2, 2, 2, 2], num_classes=10)
    widths = [4, 8, 16, 32]
    m.inplanes = widths[0]
    m.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
    m.bn1 = nn.BatchNorm2d(widths[0])
    m.layer1 = m._make_layer(BasicBlock, widths[0], 2)
    m.layer2 = m._make_layer(BasicBlock, widths[1], 2, stride=2)
    m.layer3 = m._make_layer(BasicBlock, widths[2], 2, stride=2)
    m.layer4 = m._make_layer(BasicBlock, widths[3], 2, stride=2)
    m.fc = nn.Linear(widths[3], 10)
    randomise_bn(m)
    return m.eval()


def small_mobilenet():
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 2, 2], [6, 64, 1, 2], [6, 96, 1, 1]]
    m = torchvision.models.MobileNetV2(num_classes=10, width_mult=0.25, inverted_residual_setting=setting)
    last_in = m.features[-1][0].in_channels
    m.features[-1] = torchvision.ops.misc.Conv2dNormActivation(
        last_in, 128, kernel_size=1, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU6)
    m.classifier[1] = nn.Linear(128, 10)
    randomise_bn(m)
    return m.eval()


def export(model, path, keep_bn, H, W):
    x = torch.randn(1, 3, H, W)
    kw = dict(opset_version=13, input_names=["input"], output_names=["logits"],
              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if keep_bn:
        kw.update(do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    torch.onnx.export(model, x, path, **kw)


def nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def pool_gap(model, x):
    """Smallest relative gap between the two largest values of a positive max-pooling window
    after ResNet's stem: below float32's resolution, float32 and float64 may pick different
    winners, and the input gradient differs locally (a kink, not an error)."""
    with torch.no_grad():
        a = model.relu(model.bn1(model.conv1(x)))
        p = F.pad(a, (1, 1, 1, 1), value=-1.0)
        win = p.unfold(2, 3, 2).unfold(3, 3, 2).reshape(*p.shape[:2], -1, 9)
        top = win.topk(2, dim=-1).values
        gap = (top[..., 0] - top[..., 1]) / top[..., 0].clamp(min=1e-30)
        return gap[top[..., 0] > 0].min().item()


def goldens(model, path, cam_layer, H, W, avoid_ties=False):
    md = model.double()
    seed = 3
    while True:
        x = (torch.rand(N, 3, H, W, generator=torch.Generator().manual_seed(seed)) * 2 - 1).double()
        x = x.float().double()  # float32 values, computed in float64
        # (integrated gradients' path points near the black baseline are full of near-ties:
        # tests/onnx/torch_golden.h, ig_kinks)
        if not avoid_ties or pool_gap(md, x) > 1e-5:
            break
        seed += 1
    feats = {}
    if cam_layer is not None:
        cam_layer.register_forward_hook(lambda mod, i, o: feats.__setitem__("A", o))
    xg = x.clone().requires_grad_(True)
    logits = md(xg)
    cls = logits.argmax(1)
    score = logits.gather(1, cls[:, None]).sum()
    if cam_layer is not None:
        A = feats["A"]
        gA, gx = torch.autograd.grad(score, [A, xg])
        alpha = gA.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((alpha * A).sum(1)).detach().numpy()  # N x h x w
        h, w = A.shape[2], A.shape[3]
    else:
        (gx,) = torch.autograd.grad(score, [xg])
        cam, h, w = np.zeros((N, 0, 0)), 0, 0
    ig = torch.zeros_like(x)
    for k in range(1, STEPS + 1):
        p = (x * (k / STEPS)).requires_grad_(True)
        s = md(p).gather(1, cls[:, None]).sum()
        (g,) = torch.autograd.grad(s, [p])
        ig += g
    ig = ig / STEPS * x
    model.float()
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", N, H, W, 3, logits.shape[1], h, w))
        f.write(nhwc(x).astype("<f4").tobytes())
        f.write(logits.detach().numpy().astype("<f4").tobytes())
        f.write(cls.numpy().astype("<i4").tobytes())
        f.write(nhwc(gx).astype("<f4").tobytes())
        f.write(np.asarray(cam).astype("<f4").tobytes())
        f.write(nhwc(ig).astype("<f4").tobytes())


def main_full(out):
    """--full: torchvision's resnet18 and mobilenet_v2 at 224x224 (random weights and BN
    statistics), for the slow suite (tests/onnx/test_onnx_torch_full.c); files in out."""
    os.makedirs(out, exist_ok=True)
    r = torchvision.models.resnet18(num_classes=1000)
    randomise_bn(r)
    r.eval()
    export(r, os.path.join(out, "resnet18.onnx"), False, 224, 224)
    goldens(r, os.path.join(out, "resnet18_golden.bin"), r.layer4, 224, 224, avoid_ties=True)
    m = torchvision.models.mobilenet_v2(num_classes=1000)
    randomise_bn(m)
    m.eval()
    export(m, os.path.join(out, "mobilenet_v2.onnx"), False, 224, 224)
    goldens(m, os.path.join(out, "mobilenet_v2_golden.bin"), None, 224, 224)


def main():
    import onnx
    if len(sys.argv) > 2 and sys.argv[1] == "--full":
        return main_full(sys.argv[2])
    os.makedirs(OUT, exist_ok=True)
    r = small_resnet()
    export(r, os.path.join(OUT, "resnet_small.onnx"), False, 48, 48)
    export(r, os.path.join(OUT, "resnet_small_bn.onnx"), True, 48, 48)
    goldens(r, os.path.join(OUT, "resnet_small_golden.bin"), r.layer4, 48, 48)
    m = small_mobilenet()
    export(m, os.path.join(OUT, "mobilenet_small.onnx"), False, 32, 32)
    goldens(m, os.path.join(OUT, "mobilenet_small_golden.bin"), None, 32, 32)
    for name in ["resnet_small.onnx", "resnet_small_bn.onnx"]:
        g = onnx.load(os.path.join(OUT, name)).graph
        ops = sorted({n.op_type for n in g.node})
        last = [n for n in g.node if n.name.startswith("/layer4/layer4.1/") and n.op_type == "Relu"][-1]
        print(name, ops, "layer4 output:", last.name, last.output[0])


if __name__ == "__main__":
    main()
