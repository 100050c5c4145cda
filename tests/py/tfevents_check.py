#!/usr/bin/python3
"""Independent TensorBoard event-file reader for the tests (no TensorFlow, no tenflower code).

Checks the TFRecord framing (length CRC and data CRC, with its own bitwise CRC-32C and
TensorFlow's mask) and decodes Event / Summary / Value protobuf messages by hand.

  tfevents_check.py selftest PYTORCH_FILE EXPECTED_JSON
      decodes the event file PyTorch's SummaryWriter wrote and compares with its JSON
      ({"tag": ..., "values": [[step, value], ...]}); also checks the CRC-32C test vectors.
  tfevents_check.py check OUR_FILE EXPECTED_JSON
      EXPECTED_JSON: [[tag, step, value], ...] in file order; values compared as float32.
Exits non-zero with a message on any mismatch.
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(blob):
    off = 0
    while off < len(blob):
        if len(blob) - off < 12:
            raise ValueError("truncated header at %d" % off)
        (n,) = struct.unpack_from("<Q", blob, off)
        (lcrc,) = struct.unpack_from("<I", blob, off + 8)
        if masked(crc32c(blob[off:off + 8])) != lcrc:
            raise ValueError("length crc mismatch at %d" % off)
        data = blob[off + 12:off + 12 + n]
        if len(data) != n or off + 16 + n > len(blob):
            raise ValueError("truncated record at %d" % off)
        (dcrc,) = struct.unpack_from("<I", blob, off + 12 + n)
        if masked(crc32c(data)) != dcrc:
            raise ValueError("data crc mismatch at %d" % off)
        yield data
        off += 16 + n


def varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return v, i


def fields(b):
    """Yields (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        elif wt == 2:
            n, i = varint(b, i)
            v = b[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)
        yield f, wt, v


def decode_event(data):
    ev = {"step": 0, "values": []}
    for f, wt, v in fields(data):
        if f == 1 and wt == 1:
            ev["wall_time"] = struct.unpack("<d", v)[0]
        elif f == 2 and wt == 0:
            ev["step"] = v - (1 << 64) if v >= 1 << 63 else v
        elif f == 3 and wt == 2:
            ev["file_version"] = v.decode()
        elif f == 5 and wt == 2:
            for sf, swt, sv in fields(v):
                if sf == 1 and swt == 2:
                    val = {}
                    for vf, vwt, vv in fields(sv):
                        if vf == 1 and vwt == 2:
                            val["tag"] = vv.decode()
                        elif vf == 2 and vwt == 5:
                            val["simple_value"] = struct.unpack("<f", vv)[0]
                    ev["values"].append(val)
    return ev


def read_events(path):
    with open(path, "rb") as f:
        blob = f.read()
    return [decode_event(r) for r in records(blob)]


def fail(msg):
    print("tfevents_check: FAIL: " + msg)
    sys.exit(1)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def main():
    mode, path, expected = sys.argv[1], sys.argv[2], json.load(open(sys.argv[3]))
    evs = read_events(path)
    if not evs or evs[0].get("file_version") != "brain.Event:2":
        fail("first event is not file_version brain.Event:2: %r" % (evs[:1],))
    if mode == "selftest":
        # RFC 3720 B.4 vectors, so the parser's CRC is itself checked
        for data, want in [(bytes(32), 0x8A9136AA), (b"\xff" * 32, 0x62A8AB43),
                           (bytes(range(32)), 0x46DD794E), (bytes(range(31, -1, -1)), 0x113FDB5C),
                           (b"123456789", 0xE3069283)]:
            if crc32c(data) != want:
                fail("crc32c vector %r" % data[:4])
        got = [[e["step"], v["simple_value"]] for e in evs[1:] for v in e["values"]
               if v.get("tag") == expected["tag"]]
        want = [[s, f32(v)] for s, v in expected["values"]]
        if got != want:
            fail("pytorch file decodes to %r, expected %r" % (got, want))
        print("tfevents_check: pytorch file ok (%d scalars)" % len(got))
        return
    got = [[v["tag"], e["step"], v["simple_value"]] for e in evs[1:] for v in e["values"]]
    want = [[t, s, f32(v)] for t, s, v in expected]
    if len(got) != len(want):
        fail("%d scalars, expected %d" % (len(got), len(want)))
    for g, w in zip(got, want):
        if g[:2] != w[:2] or not (g[2] == w[2] or (g[2] != g[2] and w[2] != w[2])):
            fail("scalar %r, expected %r" % (g, w))
    for e in evs:
        if not (1.5e9 < e["wall_time"] < 4e9):
            fail("wall_time %r" % e["wall_time"])
    if any(evs[i]["wall_time"] > evs[i + 1]["wall_time"] for i in range(len(evs) - 1)):
        fail("wall times go backwards")
    print("tfevents_check: %s ok (%d scalars)" % (path, len(got)))


if __name__ == "__main__":
    main()
