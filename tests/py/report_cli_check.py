#!/usr/bin/python3
"""Checks the tfw-report command line: usage errors (exit 2), a missing log (exit 1 with a
message naming the file), and a report written to the default and to an -o path that
report_check.py accepts. Usage: report_cli_check.py TFW_REPORT_BINARY."""
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
tool = sys.argv[1]
tmp = tempfile.mkdtemp(prefix="tfw_cli_")
try:
    r = subprocess.run([tool], capture_output=True, text=True)
    assert r.returncode == 2 and "usage: tfw-report" in r.stderr, r
    r = subprocess.run([tool, tmp, "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown option" in r.stderr, r
    r = subprocess.run([tool, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "usage" in r.stdout, r
    r = subprocess.run([tool, tmp], capture_output=True, text=True)
    assert r.returncode == 1 and "TFW_EIO" in r.stderr and "log.csv" in r.stderr, r
    with open(os.path.join(tmp, "log.csv"), "w") as f:
        f.write("step,loss,accuracy\n" + "".join("%d,%r,%r\n" % (i, 1 / i, 90 + i / 10) for i in range(1, 50)))
    r = subprocess.run([tool, tmp], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == tmp + "/report.html", r
    out = os.path.join(tmp, "other.html")
    r = subprocess.run([tool, tmp, "-o", out], capture_output=True, text=True)
    assert r.returncode == 0 and os.path.exists(out), r
    subprocess.run([sys.executable, os.path.join(here, "report_check.py"), tmp, out], check=True)
    print("report_cli_check: ok")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
