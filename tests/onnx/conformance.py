#!/usr/bin/python3
"""Prepare ONNX's backend node tests (Debian libonnx-testdata) for libtfx's conformance test.

Usage: /usr/bin/python3 conformance.py OUTDIR [DATADIR]

For every node test whose single node's operator libtfx supports (docs/onnx.md), graph inputs
1..k become initializers holding the test's input_1..k values (libtfx models take one input and
the importer wants weights as initializers); input_0 stays the only graph input. Writes
OUTDIR/<name>.onnx, <name>.in and <name>.out (raw little-endian float32 of input_0 and of the
expected output_0) and OUTDIR/manifest.txt, one line per test:
  <name> <op_type> run <in rank> <in dims...> <out rank> <out dims...>
  <name> <op_type> notrun <reason...>
"""
import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

SUPPORTED = {
    'Conv', 'Gemm', 'MatMul', 'Add', 'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'Tanh', 'HardSigmoid',
    'HardSwish', 'Softmax', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool',
    'BatchNormalization', 'Mul', 'Concat', 'Flatten', 'Reshape', 'Dropout', 'Identity', 'Pad',
    'Transpose', 'Elu', 'Sum', 'Sub', 'Div',
}


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, 'rb') as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def main():
    out_dir = sys.argv[1]
    data_dir = sys.argv[2] if len(sys.argv) > 2 else '/usr/share/libonnx-testdata/data/node'
    os.makedirs(out_dir, exist_ok=True)
    lines = []
    for d in sorted(glob.glob(os.path.join(data_dir, 'test_*'))):
        name = os.path.basename(d)
        path = os.path.join(d, 'model.onnx')
        if not os.path.exists(path):
            continue
        model = onnx.load(path)
        g = model.graph
        if len(g.node) != 1 or g.node[0].op_type not in SUPPORTED:
            continue
        op = g.node[0].op_type
        ds = os.path.join(d, 'test_data_set_0')
        ins = [os.path.join(ds, 'input_%d.pb' % i) for i in range(len(g.input))]
        if len(g.output) != 1:
            lines.append('%s %s notrun %d outputs' % (name, op, len(g.output)))
            continue
        if not all(os.path.exists(p) for p in ins) or not os.path.exists(os.path.join(ds, 'output_0.pb')):
            lines.append('%s %s notrun missing test data' % (name, op))
            continue
        kinds = [vi.type.WhichOneof('value') for vi in g.input]
        if any(k != 'tensor_type' for k in kinds):
            lines.append('%s %s notrun refused: input of type %s' % (name, op, [k for k in kinds if k != 'tensor_type'][0]))
            continue
        vals = [load_pb(p) for p in ins]
        expected = load_pb(os.path.join(ds, 'output_0.pb'))
        if vals[0].dtype != np.float32 or expected.dtype != np.float32:
            lines.append('%s %s notrun refused: dtype %s' % (name, op, vals[0].dtype if vals[0].dtype != np.float32
                                                             else expected.dtype))
            continue
        # Inputs 1..k become initializers (whatever their type: int64 shapes/pads stay int64).
        inits = []
        for vi, v in zip(list(g.input)[1:], vals[1:]):
            inits.append(numpy_helper.from_array(v, vi.name))
        keep = g.input[0]
        del g.input[:]
        g.input.append(keep)
        g.initializer.extend(inits)
        onnx.save(model, os.path.join(out_dir, name + '.onnx'))
        vals[0].astype('<f4').tofile(os.path.join(out_dir, name + '.in'))
        expected.astype('<f4').tofile(os.path.join(out_dir, name + '.out'))
        lines.append('%s %s run %d %s %d %s' % (name, op, vals[0].ndim, ' '.join(str(x) for x in vals[0].shape),
                                                expected.ndim, ' '.join(str(x) for x in expected.shape)))
    with open(os.path.join(out_dir, 'manifest.txt'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    print('%d tests prepared in %s' % (len(lines), out_dir))


if __name__ == '__main__':
    main()
