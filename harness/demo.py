#!/usr/bin/env python3
"""The cds round trip on an import-heavy one-liner, then what it buys:

    python3 harness/demo.py build/python-3.11-cds/python     (`make demo` builds it first)

1. trace:  python -X cds_trace=mod.lst -c CODE   records what gets imported
2. dump:   python -m cds dump mod.lst mod.img     writes the archive
3. replay: python -X cds=mod.img -c CODE          serves code from it
then wall time and peak RSS of CODE without and with cds: medians of
interleaved runs (CDS_DEMO_RUNS, default 20), each process measured alone
(os.wait4). Runs in a scratch directory with no cds setting inherited, so
the baseline really is the plain interpreter.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

CODE = "import json, argparse, email.message, http.client"
CDS_ENVIRONMENT = ("PYTHONCDS", "PYCDS")  # prefixes of every cds variable


def run(cmd, **kw):
    """Runs cmd, returning its stdout; exits with its stderr when it fails."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed (exit {done.returncode}):\n{done.stderr.strip()}")
    return done.stdout


def measure(cmd):
    """Wall seconds and peak RSS (KiB) of one run of cmd, which prints nothing."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"demo: {' '.join(cmd)} failed (exit {proc.returncode})")
    return wall, usage.ru_maxrss


def step(number, name, options, result):
    print(f"{number}. {name:<8}{options:<31}{result}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: harness/demo.py PYTHON")
    py = os.path.abspath(sys.argv[1])
    if not os.access(py, os.X_OK):
        sys.exit(f"demo: {sys.argv[1]} is not built; run: make python-X.Y-cds")
    runs = int(os.environ.get("CDS_DEMO_RUNS", "20"))
    for var in [v for v in os.environ if v.startswith(CDS_ENVIRONMENT)]:
        del os.environ[var]
    version = run([py, "-c", "import platform; print(platform.python_version())"]).strip()
    print(f"cds demo: CPython {version} ({sys.argv[1]})")
    print(f"program:  python -c '{CODE}'\n")

    with tempfile.TemporaryDirectory(prefix="cds-demo-") as work:
        os.chdir(work)
        run([py, "-X", "cds_trace=mod.lst", "-c", CODE])
        with open("mod.lst") as f:
            traced = sum(1 for line in f if line.strip())
        step(1, "trace", "-X cds_trace=mod.lst", f"{traced} modules recorded in mod.lst")

        run([py, "-m", "cds", "dump", "-q", "mod.lst", "mod.img"])
        stats = "import cds; s = cds.stats(); print(s['modules'], len(s['served']))"
        archived = int(run([py, "-X", "cds=mod.img", "-c", stats]).split()[0])
        size = os.path.getsize("mod.img") / 2**20
        step(2, "dump", "-m cds dump mod.lst mod.img", f"{archived} modules archived, {size:.1f} MiB")

        # cds_mode=on: an unusable archive is an error here, not a fallback.
        served = int(run([py, "-X", "cds=mod.img", "-X", "cds_mode=on", "-c", f"{CODE}\n{stats}"]).split()[1])
        step(3, "replay", "-X cds=mod.img", f"{served} of {archived} modules served from the archive")
        print()

        commands = {"without cds": [py, "-c", CODE], "with cds": [py, "-X", "cds=mod.img", "-c", CODE]}
        for cmd in commands.values():  # warm the page cache
            for _ in range(3):
                measure(cmd)
        samples = {label: [] for label in commands}
        for _ in range(runs):
            for label, cmd in commands.items():
                samples[label].append(measure(cmd))

    medians = {label: (statistics.median(w for w, _ in s), statistics.median(r for _, r in s))
               for label, s in samples.items()}
    load = os.getloadavg()[0]
    print(f"{runs} interleaved runs each, medians (load average {load:.2f}):")
    print(f"{'':14}{'wall ms':>10}{'peak RSS MiB':>15}")
    for label, (wall, rss) in medians.items():
        print(f"{label:14}{wall * 1e3:>10.2f}{rss / 1024:>15.1f}")
    (off_wall, off_rss), (cds_wall, cds_rss) = medians["without cds"], medians["with cds"]
    print(f"{'with / without':14}{cds_wall / off_wall:>9.2f}x{cds_rss / off_rss:>14.2f}x")


if __name__ == "__main__":
    main()
