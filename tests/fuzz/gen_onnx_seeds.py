#!/usr/bin/python3
"""Seeds of the onnx_load fuzz target (tests/fuzz/corpus/onnx_load/): small models of every
operator the importer supports, written with python3-onnx's helper, plus copies of two freely
licensed real files (../shared/fixtures/onnx: mnist-8, MIT; the PyTorch 1.7 MNIST export).
Run: /usr/bin/python3 tests/fuzz/gen_onnx_seeds.py (from the repository root)."""
import os
import shutil

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "onnx_load")
FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "fixtures", "onnx")
rng = np.random.default_rng(18)


def w(name, *shape):
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def save(name, nodes, inits, in_shape, out_shape, opset=13, in_name="x"):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    with open(os.path.join(OUT, name + ".onnx"), "wb") as f:
        f.write(m.SerializeToString())


def main():
    os.makedirs(OUT, exist_ok=True)
    N = "N"
    x4 = [N, 3, 8, 8]
    save("conv_relu", [helper.make_node("Conv", ["x", "W", "B"], ["c"], "conv", pads=[1, 1, 1, 1]),
                       helper.make_node("Relu", ["c"], ["y"], "relu")], [w("W", 4, 3, 3, 3), w("B", 4)], x4, [N, 4, 8, 8])
    save("conv_same_bn_clip", [
        helper.make_node("Conv", ["x", "W"], ["c"], "conv", auto_pad="SAME_UPPER", strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["n"], "bn", epsilon=1e-3),
        helper.make_node("Clip", ["n", "lo", "hi"], ["y"], "clip")],
        [w("W", 4, 3, 3, 3), w("g", 4), w("b", 4), w("m", 4),
         numpy_helper.from_array(np.ones(4, np.float32), "v"),
         numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi")],
        x4, [N, 4, 4, 4])
    save("depthwise_pool", [
        helper.make_node("Conv", ["x", "W"], ["c"], "dw", group=3, pads=[1, 1, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("AveragePool", ["p"], ["y"], "avg", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         count_include_pad=1)],
        [w("W", 6, 1, 3, 3)], x4, [N, 6, 4, 4])
    save("gap_flatten_gemm_softmax", [
        helper.make_node("GlobalAveragePool", ["x"], ["g"], "gap"),
        helper.make_node("Flatten", ["g"], ["f"], "flat"),
        helper.make_node("Gemm", ["f", "W", "B"], ["z"], "fc", transB=1, alpha=0.5),
        helper.make_node("Softmax", ["z"], ["y"], "sm")], [w("W", 5, 3), w("B", 5)], x4, [N, 5])
    save("flatten_matmul_add", [
        helper.make_node("Flatten", ["x"], ["f"], "flat"),
        helper.make_node("MatMul", ["f", "W"], ["z"], "mm"),
        helper.make_node("Add", ["z", "B"], ["y"], "bias")], [w("W", 192, 4), w("B", 4)], x4, [N, 4])
    save("residual_concat", [
        helper.make_node("Conv", ["x", "W"], ["a"], "a", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["a", "x"], ["s"], "add"),
        helper.make_node("Concat", ["s", "x"], ["c"], "cat", axis=1),
        helper.make_node("Mul", ["c", "c"], ["y"], "mul")], [w("W", 3, 3, 3, 3)], x4, [N, 6, 8, 8])
    save("pad_reshape_const", [
        helper.make_node("Constant", [], ["shape"], "k", value=numpy_helper.from_array(np.array([0, -1], np.int64))),
        helper.make_node("Pad", ["x", "pads"], ["p"], "pad"),
        helper.make_node("Reshape", ["p", "shape"], ["r"], "reshape"),
        helper.make_node("Gemm", ["r", "W"], ["y"], "fc")],
        [numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64), "pads"), w("W", 300, 2)], x4, [N, 2])
    save("nhwc_transposes", [
        helper.make_node("Transpose", ["x"], ["t"], "to_nchw", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "W"], ["c"], "conv"),
        helper.make_node("HardSigmoid", ["c"], ["h"], "hs", alpha=1.0 / 6, beta=0.5),
        helper.make_node("Transpose", ["h"], ["y"], "to_nhwc", perm=[0, 2, 3, 1])],
        [w("W", 2, 3, 1, 1)], [N, 8, 8, 3], [N, 8, 8, 2])
    save("folding", [
        helper.make_node("ConstantOfShape", ["s"], ["k"], "cos", value=numpy_helper.from_array(np.array([0.5], np.float32))),
        helper.make_node("Unsqueeze", ["b", "axes"], ["bu"], "unsq"),
        helper.make_node("Transpose", ["k"], ["kt"], "kt", perm=[1, 0, 2, 3]),
        helper.make_node("Conv", ["x", "kt"], ["c"], "conv"),
        helper.make_node("Mul", ["c", "bu"], ["m"], "scale"),
        helper.make_node("LeakyRelu", ["m"], ["y"], "lrelu", alpha=0.1)],
        [numpy_helper.from_array(np.array([3, 2, 1, 1], np.int64), "s"), w("b", 2),
         numpy_helper.from_array(np.array([1, 2], np.int64), "axes")], x4, [N, 2, 8, 8])
    save("opset9_clip_attrs", [
        helper.make_node("Clip", ["x"], ["c"], "clip", min=-1.0, max=1.0),
        helper.make_node("Sigmoid", ["c"], ["s"], "sig"),
        helper.make_node("Tanh", ["s"], ["y"], "tanh")], [], x4, x4, opset=9)
    for name in ["mnist_8/model.onnx", "mnist_simplified_torch17.onnx"]:
        src = os.path.join(FIX, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(OUT, name.replace("/", "_")))


if __name__ == "__main__":
    main()
