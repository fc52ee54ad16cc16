#!/usr/bin/python3
"""Reference outputs of ../shared/fixtures/onnx/mnist_simplified_torch17.onnx (PyTorch 1.7 export:
Conv 5x5/2, Relu, Conv 3x3, Reshape, Gemm transB) by a numpy forward over the weights read with
python3-onnx's numpy_helper (Debian has no onnxruntime), written as tests/onnx/fixture_ref.h.
Inputs: np.arange(196).reshape(1, 1, 14, 14) / 196 and a seeded uniform [0, 1) image.
Run: /usr/bin/python3 tests/onnx/gen_onnx_fixture_ref.py (from the repository root)."""
import os

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = os.path.dirname(os.path.abspath(__file__))
PATH = os.path.join(ROOT, "..", "..", "..", "shared", "fixtures", "onnx", "mnist_simplified_torch17.onnx")


def conv(x, w, stride):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return y


def forward(m, x):
    w = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in m.graph.initializer}
    y = np.maximum(conv(x, w["cnn1.weight"], 2), 0)
    y = conv(y, w["cnn2.weight"], 1)
    y = y.reshape(y.shape[0], -1)
    return y @ w["linear.weight"].T + w["linear.bias"]


def main():
    m = onnx.load(PATH)
    xs = [np.arange(196).reshape(1, 1, 14, 14) / 196.0,
          np.random.default_rng(17).random((1, 1, 14, 14)).astype(np.float32).astype(np.float64)]
    with open(os.path.join(ROOT, "fixture_ref.h"), "w") as f:
        f.write("/* Written by tests/onnx/gen_onnx_fixture_ref.py: mnist_simplified_torch17.onnx by a numpy forward. */\n")
        f.write("static const float torch17_random_input[196] = {%s};\n" %
                ", ".join("%.9gf" % v for v in xs[1].ravel()))
        for name, x in zip(["arange", "random"], xs):
            y = forward(m, x).ravel()
            f.write("static const float torch17_%s_output[10] = {%s};\n" % (name, ", ".join("%.9gf" % v for v in y)))


if __name__ == "__main__":
    main()
