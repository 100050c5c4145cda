#!/usr/bin/python3
"""Slow test (make test-all): renders a tfw-report page in headless Chromium and checks, on
the screenshot, that every plotted series was actually drawn, each in its own plot, in page
order. The PNG is decoded here (zlib + PNG filters), no imaging library needed.
Usage: report_render.py TFW_REPORT_BINARY. Exit 77 (skipped) when chromium is missing."""
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib


def decode_png(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    off, idat, w = 8, b"", None
    while off < len(data):
        (n,) = struct.unpack(">I", data[off:off + 4])
        kind, body = data[off + 4:off + 8], data[off + 8:off + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype in (2, 6), "unsupported PNG %d/%d" % (depth, ctype)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        off += 12 + n
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def main():
    tool = sys.argv[1]
    chrome = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chrome:
        print("report_render: SKIP: chromium not installed (scripts/deps.sh --all)")
        sys.exit(77)
    tmp = tempfile.mkdtemp(prefix="tfw_render_")
    try:
        with open(os.path.join(tmp, "log.csv"), "w") as f:
            f.write("step,loss,eval_loss,accuracy,lr,samples_per_s\n")
            for i in range(1, 3001):
                ev = "%r" % (1.5 / math.sqrt(i)) if i % 300 == 0 else ""
                f.write("%d,%r,%s,%r,%r,%r\n" % (i, 1 / math.sqrt(i), ev, 100 - 50 / math.sqrt(i),
                                                0.1 * (1 + math.cos(math.pi * i / 3000)) / 2,
                                                1000 + 100 * math.sin(i / 50)))
        with open(os.path.join(tmp, "config.txt"), "w") as f:
            f.write("model = mlp\nbatch_size = 64\n")
        html = os.path.join(tmp, "report.html")
        subprocess.run([tool, tmp, "-o", html], check=True)
        page = open(html, encoding="utf-8").read()
        svgs = re.findall(r'<svg\b[^>]*id="([^"]+)".*?</svg>', page, re.S)
        colors = re.findall(r'<polyline class="series" data-col="([^"]+)"[^>]*stroke="#([0-9a-f]{6})"', page)
        assert len(svgs) == 4 and len(colors) == 5, (svgs, colors)
        shot = os.path.join(tmp, "shot.png")
        width, height = 900, 1800
        r = subprocess.run([chrome, "--headless", "--disable-gpu", "--no-sandbox",
                            "--hide-scrollbars", "--screenshot=" + shot,
                            "--window-size=%d,%d" % (width, height), "file://" + html],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=240)
        if not os.path.exists(shot):
            sys.exit("report_render: FAIL: chromium wrote no screenshot:\n" + r.stdout.decode()[-2000:])
        w, h, bpp, rows = decode_png(shot)
        assert (w, h) == (width, height), (w, h)
        found = {}
        for col, hexc in colors:
            rgb = tuple(int(hexc[k:k + 2], 16) for k in (0, 2, 4))
            n, ysum, xs = 0, 0, []
            for y in range(h):
                row = rows[y]
                for x in range(w):
                    p = row[x * bpp:x * bpp + 3]
                    if abs(p[0] - rgb[0]) < 24 and abs(p[1] - rgb[1]) < 24 and abs(p[2] - rgb[2]) < 24:
                        n += 1
                        ysum += y
                        xs.append(x)
            if n < 60:
                sys.exit("report_render: FAIL: series %r (#%s) has %d pixels on screen" % (col, hexc, n))
            found[col] = (n, ysum / n, min(xs), max(xs))
        # each series spans most of its plot's width (a line, not a legend swatch)
        for col, (n, yc, x0, x1) in found.items():
            if col != "eval_loss" and x1 - x0 < 400:
                sys.exit("report_render: FAIL: %r spans only x %d..%d" % (col, x0, x1))
        # plots stacked in page order: loss above accuracy above lr above throughput
        order = [found[c][1] for c in ("loss", "accuracy", "lr", "samples_per_s")]
        if order != sorted(order):
            sys.exit("report_render: FAIL: plot centres not in page order: %r" % order)
        print("report_render: ok " + ", ".join("%s:%dpx@y%.0f" % (c, v[0], v[1]) for c, v in found.items()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
