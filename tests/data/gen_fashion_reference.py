#!/usr/bin/env python3
"""Reference values for test_data.c's Fashion-MNIST test, read independently of libtfx.

Run: /usr/bin/python3 tests/data/gen_fashion_reference.py [dir]
It parses the t10k IDX files with gzip + struct only (numpy only for the float32 sums) and
prints the constants that test_data.c hard-codes.
"""
import gzip
import struct
import sys

import numpy as np

d = sys.argv[1] if len(sys.argv) > 1 else '/usr/share/datasets/fashion-mnist'
with gzip.open(f'{d}/t10k-images-idx3-ubyte.gz') as f:
    raw = f.read()
magic, n, h, w = struct.unpack('>IIII', raw[:16])
assert magic == 0x803 and len(raw) == 16 + n * h * w
px = raw[16:]
with gzip.open(f'{d}/t10k-labels-idx1-ubyte.gz') as f:
    lraw = f.read()
lmagic, ln = struct.unpack('>II', lraw[:8])
assert lmagic == 0x801 and ln == n and len(lraw) == 8 + n
labels = list(lraw[8:])

# Exact integer checksums over the bytes, in the order libtfx stores them (NHWC, c = 1).
byte_sum = sum(px)
# Position-weighted: sum over i of byte[i] * (i % 65521 + 1), mod 2^64.
wsum = 0
for i, b in enumerate(px):
    wsum += b * (i % 65521 + 1)
wsum %= 1 << 64
# Float checksum as the tutorial scales: float32(x / 255.0), summed in float64.
x = (np.frombuffer(px, dtype=np.uint8) / 255.0).astype(np.float32)
fsum = float(x.astype(np.float64).sum())
hist = [labels.count(c) for c in range(10)]

print(f'n={n} h={h} w={w}')
print('first_labels =', ', '.join(str(v) for v in labels[:20]))
print('last_labels =', ', '.join(str(v) for v in labels[-5:]))
print('hist =', ', '.join(str(v) for v in hist))
print(f'byte_sum = {byte_sum}')
print(f'weighted_sum = {wsum}u')
print(f'float_sum = {fsum!r}')
# A few pixels of image 0 and image 9999 (row, col) -> float32 bits.
for img, r, c in [(0, 0, 0), (0, 14, 14), (0, 20, 10), (9999, 13, 13), (1234, 7, 21)]:
    b = px[img * h * w + r * w + c]
    print(f'pixel[{img}][{r}][{c}] byte={b} float={float(np.float32(b / 255.0))!r}')

# The training set (slow suite): counts, first/last labels and the byte sum.
with gzip.open(f'{d}/train-images-idx3-ubyte.gz') as f:
    traw = f.read()
tmagic, tn, th, tw = struct.unpack('>IIII', traw[:16])
assert tmagic == 0x803 and len(traw) == 16 + tn * th * tw
with gzip.open(f'{d}/train-labels-idx1-ubyte.gz') as f:
    tl = f.read()[8:]
print(f'train n={tn} h={th} w={tw}')
print('train_first_labels =', ', '.join(str(v) for v in tl[:10]))
print('train_last_labels =', ', '.join(str(v) for v in tl[-3:]))
print(f'train_byte_sum = {sum(traw[16:])}')
