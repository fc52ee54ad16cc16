#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/seed-*).
Run from anywhere: /usr/bin/python3 tests/fuzz/gen_seeds.py. Deterministic; needs PIL
(Debian python3-pil) for the image seeds. corpus/model_load/ holds files written by libtfx
itself (tests/saving) and is not generated here. Files named crash-*, leak-*, timeout-*
or regress-* are regression inputs found by fuzzing and are never overwritten."""
import gzip
import io
import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def out(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def gz(b):
    return gzip.compress(b, compresslevel=9, mtime=0)


def idx_images(n, h, w, seed):
    r = random.Random(seed)
    return struct.pack(">IIII", 0x803, n, h, w) + bytes(r.randrange(256) for _ in range(n * h * w))


def idx_labels(n, seed, classes=10):
    r = random.Random(seed)
    return struct.pack(">II", 0x801, n) + bytes(r.randrange(classes) for _ in range(n))


def idx_input(mode, img, lab):
    return bytes([mode]) + struct.pack("<H", len(img)) + img + lab


# IDX: mode bit 0/1 = the fuzzer gzips images/labels; raw gzip streams reach tfx__gunzip.
img, lab = idx_images(3, 4, 5, 1), idx_labels(3, 2)
out("idx", "plain", idx_input(0, img, lab))
out("idx", "fuzzer-gzips-both", idx_input(3, img, lab))
out("idx", "raw-gzip-both", idx_input(0, gz(img), gz(lab)))
out("idx", "raw-gzip-images", idx_input(2, gz(img), lab))
out("idx", "options", idx_input(0x04 | 0x08 | 0x20, img, lab))
img1, lab1 = idx_images(1, 1, 1, 3), idx_labels(1, 4)
out("idx", "one-pixel", idx_input(0, img1, lab1))
out("idx", "two-member-gzip", idx_input(0, gz(img[:10]) + gz(img[10:]), lab))

# CIFAR-10: 1 options byte + 3073-byte records (label, R, G, B planes of 32x32).
r = random.Random(5)
rec = lambda label: bytes([label]) + bytes(r.randrange(256) for _ in range(3072))
out("cifar10", "two-records", bytes([0]) + rec(3) + rec(9))
out("cifar10", "one-record-256-classes", bytes([3]) + rec(200))
out("cifar10", "offset-limit", bytes([0x04 | 0x10]) + rec(1) + rec(2))

# Images: 1 channels byte (value % 7 - 1 = requested channels) + the file.
try:
    from PIL import Image
except ImportError:
    Image = None
if Image is not None:
    def pic(mode, size=(4, 3), seed=7):
        rr = random.Random(seed)
        im = Image.new(mode, size)
        bands = len(im.getbands())
        im.putdata([tuple(rr.randrange(256) for _ in range(bands)) if bands > 1 else rr.randrange(256)
                    for _ in range(size[0] * size[1])])
        return im

    def save(im, fmt, **kw):
        b = io.BytesIO()
        im.save(b, fmt, **kw)
        return b.getvalue()

    out("image", "gray.png", bytes([1]) + save(pic("L"), "PNG"))
    out("image", "gray-alpha.png", bytes([1]) + save(pic("LA"), "PNG"))
    out("image", "rgb.png", bytes([4]) + save(pic("RGB"), "PNG"))
    out("image", "rgba.png", bytes([5]) + save(pic("RGBA"), "PNG"))
    out("image", "palette.png", bytes([1]) + save(pic("RGB").convert("P"), "PNG"))
    out("image", "rgb-9x7.png", bytes([1]) + save(pic("RGB", (9, 7)), "PNG"))
    out("image", "gray16.png", bytes([2]) + save(pic("I;16"), "PNG"))
    out("image", "one-bit.png", bytes([1]) + save(pic("1", (9, 5)), "PNG"))
    out("image", "rgb.jpg", bytes([4]) + save(pic("RGB", (16, 8)), "JPEG", quality=80))
    out("image", "gray.jpg", bytes([2]) + save(pic("L", (8, 8)), "JPEG", quality=50))
    out("image", "progressive.jpg", bytes([1]) + save(pic("RGB", (16, 16)), "JPEG", progressive=True))

# Options: any bytes are a valid program; a few random ones with every part switched on.
r = random.Random(11)
for i in range(12):
    out("options", "random-%02d" % i, bytes([0x3F if i % 2 else 0x1C]) + bytes(r.randrange(256) for _ in range(400)))
