#!/usr/bin/python3
"""Reads a CSV log written by tenflower's tfw_csv_log with Python's csv module and compares
it with the rows the C test (tests/c/test_logging.c) logged for a named scenario.
Usage: csv_check.py SCENARIO PATH. Exits non-zero with a message on mismatch."""
import csv
import math
import sys

NAN = float("nan")
SCENARIOS = {
    "basic": (["step", "epoch", "loss", "note"], [
        [1, None, 0.5, 'hello, "world"'],
        [2, 0, 0.1, "line\nbreak"],
        [3, None, NAN, " padded "],
        [4, 1, 1e-300, None],
        [5, None, 1 / 3, ""],
        [6, None, -math.inf, "ünïcödé"],
    ]),
    "auto_columns": (["step", "loss", "lr"], [
        [1, 2.5, 0.1], [2, 2.25, None], [3, None, 0.001],
    ]),
    "append": (["step", "loss"], [[1, 0.5], [2, 0.25], [3, 0.125], [4, 0.0625]]),
    "repair": (["step", "loss"], [[1, 0.5], [2, 0.25]]),
}


def same(got, want):
    if want is None:
        return got == ""
    if isinstance(want, str):
        return got == want
    if got == "":
        return False
    g = float(got)
    return g == want or (math.isnan(g) and math.isnan(want))


def main():
    name, path = sys.argv[1], sys.argv[2]
    header, rows = SCENARIOS[name]
    with open(path, newline="", encoding="utf-8") as f:
        got = list(csv.reader(f, strict=True))
    if got[0] != header:
        sys.exit("csv_check %s: header %r, expected %r" % (name, got[0], header))
    if len(got) - 1 != len(rows):
        sys.exit("csv_check %s: %d rows, expected %d: %r" % (name, len(got) - 1, len(rows), got))
    for i, (g, w) in enumerate(zip(got[1:], rows)):
        if len(g) != len(header) or not all(same(a, b) for a, b in zip(g, w)):
            sys.exit("csv_check %s: row %d is %r, expected %r" % (name, i + 1, g, w))
    print("csv_check %s: ok" % name)


if __name__ == "__main__":
    main()
