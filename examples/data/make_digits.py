#!/usr/bin/env python3
"""Write the three MNIST test digits shipped with the ONNX Model Zoo's mnist-8 fixture
(../shared/fixtures/onnx/mnist_8/test_data_set_{0,1,2}/input_0.pb, MIT licence) as 28x28
grayscale PNGs: the pictures the main job explains with models libtfx did not train.
Usage: /usr/bin/python3 examples/data/make_digits.py  (needs python3-onnx)."""
import os
import struct
import zlib

import numpy as np
from onnx import TensorProto, numpy_helper

root = os.path.dirname(os.path.abspath(__file__))
fixtures = os.path.join(root, '..', '..', '..', 'shared', 'fixtures', 'onnx', 'mnist_8')


def png_gray(path, img):
    h, w = img.shape
    raw = b''.join(b'\x00' + bytes(img[y].tolist()) for y in range(h))

    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)

    data = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
    data += chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
    with open(path, 'wb') as f:
        f.write(data)


for k in range(3):
    t = TensorProto()
    with open(os.path.join(fixtures, f'test_data_set_{k}', 'input_0.pb'), 'rb') as f:
        t.ParseFromString(f.read())
    x = numpy_helper.to_array(t).reshape(28, 28).astype(np.float64)
    img = np.clip(np.round(x / max(x.max(), 1e-12) * 255.0), 0, 255).astype(np.uint8)
    png_gray(os.path.join(root, f'digit_{k}.png'), img)
    print(f'digit_{k}.png: input range {x.min():g}..{x.max():g}')
