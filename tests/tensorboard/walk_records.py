#!/usr/bin/env python3
"""Independent TFRecord / tensorboard.Event checker for libtfx's tests (stdlib only).

It shares no code with libtfx: its own CRC32C (bitwise, from the polynomial), its own masking
and its own protobuf parser. Usage:

  walk_records.py FILE            walk FILE strictly: every length and both CRCs of every record
                                  must check and the last record must end exactly at the end of
                                  the file; print one line per record (format below); exit 0,
                                  or 1 with a message on stderr.
  walk_records.py --prefixes FILE for every cut k = 0..size, walk FILE[:k] leniently and check
                                  that it yields exactly the records that end at or before k,
                                  identical to those of the whole file; print "prefixes N ok".

Record line: "record <i> offset=<o> len=<L>" then space-separated fields that are present:
wall_time=<float.hex> step=<int> file_version=<str> values=<count> tag=<str>
simple_value=<float32 as %.9g> height=<h> width=<w> colorspace=<c> png=<hex> png_ihdr=<w>x<h>
Strings are printed as their UTF-8 text.
"""
import struct
import sys

POLY = 0x82F63B78


def _entry(i):
    for _ in range(8):
        i = (i >> 1) ^ POLY if i & 1 else i >> 1
    return i


TABLE = [_entry(i) for i in range(256)]


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


class Bad(Exception):
    pass


def varint(b, i):
    x = 0
    s = 0
    while True:
        if i >= len(b):
            raise Bad("varint runs past the end")
        c = b[i]
        i += 1
        x |= (c & 0x7F) << s
        if not c & 0x80:
            return x, i
        s += 7
        if s > 63:
            raise Bad("varint too long")


def fields(b):
    """Yield (field number, wire type, value) where value is int or bytes."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if f == 0:
            raise Bad("field number 0")
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            if i + 8 > len(b):
                raise Bad("fixed64 past the end")
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            if i + 4 > len(b):
                raise Bad("fixed32 past the end")
            v = b[i:i + 4]
            i += 4
        elif wt == 2:
            n, i = varint(b, i)
            if i + n > len(b):
                raise Bad("length-delimited field past the end")
            v = b[i:i + n]
            i += n
        else:
            raise Bad("wire type %d" % wt)
        yield f, wt, v


def int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def describe_event(payload):
    out = []
    values = []
    for f, wt, v in fields(payload):
        if f == 1 and wt == 1:
            out.append("wall_time=" + struct.unpack("<d", v)[0].hex())
        elif f == 2 and wt == 0:
            out.append("step=%d" % int64(v))
        elif f == 3 and wt == 2:
            out.append("file_version=" + v.decode("utf-8"))
        elif f == 5 and wt == 2:
            for g, gwt, gv in fields(v):
                if g == 1 and gwt == 2:
                    values.append(gv)
                else:
                    raise Bad("unexpected field %d in Summary" % g)
        else:
            raise Bad("unexpected field %d (wire type %d) in Event" % (f, wt))
    if values:
        out.append("values=%d" % len(values))
    for val in values[:1]:
        for f, wt, v in fields(val):
            if f == 1 and wt == 2:
                out.append("tag=" + v.decode("utf-8"))
            elif f == 2 and wt == 5:
                out.append("simple_value=%.9g" % struct.unpack("<f", v)[0])
            elif f == 4 and wt == 2:
                for g, gwt, gv in fields(v):
                    if gwt == 0 and g in (1, 2, 3):
                        out.append("%s=%d" % (("height", "width", "colorspace")[g - 1], int64(gv)))
                    elif g == 4 and gwt == 2:
                        out.append("png=" + gv.hex())
                        if gv[:8] != b"\x89PNG\r\n\x1a\n" or gv[12:16] != b"IHDR":
                            raise Bad("image is not a PNG")
                        w, h = struct.unpack(">II", gv[16:24])
                        out.append("png_ihdr=%dx%d" % (w, h))
                    else:
                        raise Bad("unexpected field %d in Summary.Image" % g)
            else:
                raise Bad("unexpected field %d (wire type %d) in Summary.Value" % (f, wt))
    return " ".join(out)


def walk(data, strict, cache=None):
    """Return [(offset, payload)] of whole records. strict: any defect raises Bad;
    lenient: a record cut by the end of data ends the walk (a CRC error still raises).
    cache maps (start, end) to the masked CRC of data[start:end]; only valid across calls
    whose data are prefixes of one another."""
    def mcrc(a, b):
        if cache is None:
            return masked(data[a:b])
        if (a, b) not in cache:
            cache[(a, b)] = masked(data[a:b])
        return cache[(a, b)]

    recs = []
    off = 0
    while off < len(data):
        if len(data) - off < 12:
            if strict:
                raise Bad("offset %d: header cut" % off)
            break
        (n,) = struct.unpack("<Q", data[off:off + 8])
        (lcrc,) = struct.unpack("<I", data[off + 8:off + 12])
        if lcrc != mcrc(off, off + 8):
            raise Bad("offset %d: bad length crc" % off)
        if off + 12 + n + 4 > len(data):
            if strict:
                raise Bad("offset %d: record of %d bytes cut" % (off, n))
            break
        payload = data[off + 12:off + 12 + n]
        (dcrc,) = struct.unpack("<I", data[off + 12 + n:off + 16 + n])
        if dcrc != mcrc(off + 12, off + 12 + n):
            raise Bad("offset %d: bad data crc" % off)
        recs.append((off, payload))
        off += 16 + n
    return recs


def main(argv):
    if len(argv) == 2:
        data = open(argv[1], "rb").read()
        try:
            for i, (off, p) in enumerate(walk(data, True)):
                print("record %d offset=%d len=%d %s" % (i, off, len(p), describe_event(p)))
        except Bad as e:
            print("walk_records: %s: %s" % (argv[1], e), file=sys.stderr)
            return 1
        return 0
    if len(argv) == 3 and argv[1] == "--prefixes":
        data = open(argv[2], "rb").read()
        try:
            cache = {}
            full = walk(data, True, cache)
            for p in full:
                describe_event(p[1])
            ends = [off + 16 + len(p) for off, p in full]
            for k in range(len(data) + 1):
                got = walk(data[:k], False, cache)
                want = [r for r, e in zip(full, ends) if e <= k]
                if got != want:
                    raise Bad("cut at %d: %d records, expected %d" % (k, len(got), len(want)))
        except Bad as e:
            print("walk_records: %s: %s" % (argv[2], e), file=sys.stderr)
            return 1
        print("prefixes %d ok" % (len(data) + 1))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
