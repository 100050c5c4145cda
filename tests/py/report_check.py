#!/usr/bin/python3
"""Checks a tenflower HTML run report against the run directory's log.csv and config.txt,
independently of the C code: parses the CSV with the csv module and each inline <svg> with
xml.etree, and checks that every plotted series holds exactly the CSV's (step, value) pairs
(or, for long series, exactly the documented min/max-per-bucket downsampling of them), that
the drawn points map linearly from the values, that every plottable column is drawn in the
right plot, that the configuration table matches config.txt, and that the page loads
nothing external. Usage: report_check.py RUN_DIR REPORT [MAX_BYTES]."""
import csv
import math
import os
import re
import sys
import xml.etree.ElementTree as ET

BUCKETS = 560
SVG = "{http://www.w3.org/2000/svg}"


def fail(msg):
    sys.exit("report_check: FAIL: " + msg)


def num(s):
    try:
        v = float(s)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def group(c):
    if c in ("step", "epoch", "time", "wall_time"):
        return None
    if c == "loss" or c.endswith("_loss"):
        return "plot-loss"
    if "acc" in c:
        return "plot-accuracy"
    if c == "lr" or c.startswith("lr_") or c == "learning_rate":
        return "plot-lr"
    if c == "samples_per_s" or c.endswith("_per_s"):
        return "plot-throughput"
    return "other"


def downsample(pts, xmin, xmax):
    n = len(pts)
    if n <= 2 * BUCKETS or not xmax > xmin:
        return pts
    lo, hi = {}, {}
    for i, (x, y) in enumerate(pts):
        k = min(BUCKETS - 1, max(0, math.floor((x - xmin) / (xmax - xmin) * BUCKETS)))
        if k not in lo or y < pts[lo[k]][1]:
            lo[k] = i
        if k not in hi or y > pts[hi[k]][1]:
            hi[k] = i
    keep = {0, n - 1} | set(lo.values()) | set(hi.values())
    return [pts[i] for i in sorted(keep)]


def main():
    run_dir, report = sys.argv[1], sys.argv[2]
    max_bytes = int(sys.argv[3]) if len(sys.argv) > 3 else None
    with open(os.path.join(run_dir, "log.csv"), newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r + [""] * (len(rows[0]) - len(r)) for r in rows[1:] if r]
    html = open(report, encoding="utf-8").read()
    if max_bytes and len(html.encode()) > max_bytes:
        fail("report is %d bytes, limit %d" % (len(html.encode()), max_bytes))
    low = html.lower()
    for bad in ("<script", "src=", "href=", "url(", "@import", "<link"):
        if bad in low:
            fail("page has %r (must be self-contained)" % bad)
    xi = header.index("step") if "step" in header else None
    xs = [num(r[xi]) if xi is not None else float(i) for i, r in enumerate(body)]
    xmin, xmax = min(x for x in xs if x is not None), max(x for x in xs if x is not None)
    numeric = [c for j, c in enumerate(header)
               if all(r[j] == "" or num(r[j]) is not None or r[j].lower() == "nan" for r in body)
               and any(num(r[j]) is not None for r in body)]
    expected = {}
    for c in numeric:
        if c == "step" or group(c) is None:
            continue
        j = header.index(c)
        pts = [(xs[i], num(r[j])) for i, r in enumerate(body)
               if xs[i] is not None and num(r[j]) is not None]
        expected[c] = pts
    seen = {}
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    if not svgs:
        fail("no <svg> in the report")
    for text in svgs:
        svg = ET.fromstring(text)
        a = {k: float(svg.get("data-" + k)) for k in
             ("xlo", "xhi", "ylo", "yhi", "px0", "px1", "py0", "py1")}
        if not (a["xlo"] <= xmin and a["xhi"] >= xmax):
            fail("%s: x axis [%g, %g] misses data [%g, %g]" % (svg.get("id"), a["xlo"], a["xhi"], xmin, xmax))
        ticks = [t.text for t in svg.iter(SVG + "text")]
        if len(ticks) < 6:
            fail("%s: only %d text labels" % (svg.get("id"), len(ticks)))
        for pl in svg.iter(SVG + "polyline"):
            c = pl.get("data-col")
            if c not in expected:
                fail("plotted column %r is not a plottable CSV column" % c)
            g = group(c)
            if g != "other" and svg.get("id") != g:
                fail("column %r is in %s, expected %s" % (c, svg.get("id"), g))
            full = expected[c]
            if int(pl.get("data-n-source")) != len(full):
                fail("%s: data-n-source %s, CSV has %d values" % (c, pl.get("data-n-source"), len(full)))
            px = [float(v) for v in pl.get("data-x").split()]
            py = [float(v) for v in pl.get("data-y").split()]
            want = downsample(full, xmin, xmax)
            if list(zip(px, py)) != want:
                fail("%s: plotted %d points differ from the CSV's %d (first %r vs %r)" %
                     (c, len(px), len(want), list(zip(px, py))[:3], want[:3]))
            pts = [tuple(map(float, p.split(","))) for p in pl.get("points").split()]
            if len(pts) != len(px):
                fail("%s: %d points but %d data values" % (c, len(pts), len(px)))
            for (x, y), (sx, sy) in zip(zip(px, py), pts):
                ex = a["px0"] + (x - a["xlo"]) / (a["xhi"] - a["xlo"]) * (a["px1"] - a["px0"])
                ey = a["py1"] - (y - a["ylo"]) / (a["yhi"] - a["ylo"]) * (a["py1"] - a["py0"])
                if abs(ex - sx) > 0.006 or abs(ey - sy) > 0.006:
                    fail("%s: (%r, %r) drawn at (%r, %r), expected (%.3f, %.3f)" % (c, x, y, sx, sy, ex, ey))
                if not (a["px0"] - 0.01 <= sx <= a["px1"] + 0.01 and a["py0"] - 0.01 <= sy <= a["py1"] + 0.01):
                    fail("%s: point (%r, %r) outside the plot area" % (c, sx, sy))
            seen[c] = len(px)
    missing = set(expected) - set(seen)
    if missing:
        fail("columns not plotted: %r" % sorted(missing))
    # configuration table
    cfg = os.path.join(run_dir, "config.txt")
    if os.path.exists(cfg):
        want = []
        for line in open(cfg, encoding="utf-8"):
            line = line.rstrip("\n")
            k, _, v = line.partition("=")
            if k.strip() and not k.strip().startswith("#"):
                want.append((k.strip(), v.strip()))
        m = re.search(r'<table class="kv" id="config">(.*?)</table>', html, re.S)
        if not m:
            fail("no configuration table")
        tab = ET.fromstring("<t>" + m.group(1) + "</t>")
        got = [tuple((td.text or "") for td in tr.findall("td")) for tr in tab.findall("tr")[1:]]
        if got != want:
            fail("config table %r, expected %r" % (got, want))
    print("report_check: ok (%d plots, %s)" % (len(svgs), ", ".join("%s:%d" % kv for kv in sorted(seen.items()))))


if __name__ == "__main__":
    main()
