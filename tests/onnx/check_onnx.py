#!/usr/bin/python3
"""ONNX checker for files written by tfx_model_save_onnx (tests/onnx/test_onnx_export.c).

usage: check_onnx.py MODEL.onnx VERSION LAYER_NAME...

onnx.checker.check_model(full_check=True) (the checker and strict shape inference), then what
libtfx promises about the file: ir_version 7, opset 13, producer "libtfx" VERSION, input "input"
NCHW [N, C, H, W] with a symbolic batch, output "output", unique node and tensor names, and a node
named after every layer whose output tensor carries the layer's name (the last one's: "output";
a layer named "input" or "output" writes "<name>_<k>").
Exit 0: passed; 1: a check failed (printed); 77: python3-onnx is missing.
"""
import sys

try:
    import onnx
except ImportError:
    print("python3-onnx is not installed")
    sys.exit(77)


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def main():
    path, version, layers = sys.argv[1], sys.argv[2], sys.argv[3:]
    onnx.checker.check_model(path, full_check=True)
    m = onnx.load(path)
    if m.ir_version != 7:
        fail("ir_version %d" % m.ir_version)
    ops = [(o.domain, o.version) for o in m.opset_import]
    if ops != [("", 13)]:
        fail("opset_import %r" % ops)
    if m.producer_name != "libtfx" or m.producer_version != version:
        fail("producer %r %r" % (m.producer_name, m.producer_version))
    g = m.graph
    if [i.name for i in g.input] != ["input"] or [o.name for o in g.output] != ["output"]:
        fail("inputs %r outputs %r" % ([i.name for i in g.input], [o.name for o in g.output]))
    dims = g.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or dims[0].dim_param != "N" or any(d.dim_value <= 0 for d in dims[1:]):
        fail("input shape %r" % dims)
    names = [n.name for n in g.node]
    if len(set(names)) != len(names):
        fail("node names repeat")
    outs = [o for n in g.node for o in n.output]
    inits = [t.name for t in g.initializer]
    if len(set(outs + inits + ["input"])) != len(outs) + len(inits) + 1:
        fail("tensor names repeat")
    by_name = {n.name: n for n in g.node}
    for i, name in enumerate(layers):
        n = by_name.get(name)
        if n is None:
            fail("layer %r: no node of that name" % name)
        if i == len(layers) - 1:
            want = n.output[0] == "output"
        elif name in ("input", "output"):  # the graph's names: the layer's tensor is suffixed
            want = n.output[0].startswith(name + "_")
        else:
            want = n.output[0] == name
        if not want:
            fail("layer %r: its node writes %r" % (name, n.output[0]))
    print("ok: %d nodes, %d initializers, ops %s" % (len(g.node), len(inits), sorted({n.op_type for n in g.node})))


if __name__ == "__main__":
    main()
