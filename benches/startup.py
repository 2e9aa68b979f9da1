#!/usr/bin/env python3
"""Whole-process wall time with and without cds, interleaved, medians.

    python3 benches/startup.py [--runs N] [--versions 3.11 3.13]

For each version and workload (`-c pass`, `import json`, `import asyncio`)
it traces the workload, dumps its archive, then alternates runs of
`./python -c CODE` and `./python -X cds=IMG -c CODE`, and prints the medians
and their ratio. Run on a quiet machine; the stdlib .pyc files must be up to
date (the harness compiles them), and PYTHONDONTWRITEBYTECODE is unset.
"""
import argparse
import os
import statistics
import subprocess
import tempfile
import time

WORKLOADS = {"pass": "pass", "json": "import json", "asyncio": "import asyncio"}


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PYCDS"))}
    return e


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--versions", nargs="+", default=["3.11", "3.13"])
    args = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"| version | workload | off ms (median) | cds ms (median) | cds/off | served |")
    print(f"|---|---|---|---|---|---|")
    for v in args.versions:
        py = os.path.join(root, "build", f"python-{v}-cds", "python")
        with tempfile.TemporaryDirectory() as tmp:
            for name, code in WORKLOADS.items():
                lst, img = os.path.join(tmp, f"{name}.lst"), os.path.join(tmp, f"{name}.img")
                subprocess.run([py, f"-Xcds_trace={lst}", "-c", code], env=env(), check=True, cwd=tmp)
                subprocess.run([py, "-m", "cds", "dump", lst, img], env=env(), check=True, cwd=tmp, capture_output=True)
                served = subprocess.run([py, f"-Xcds={img}", "-c", code + "\nimport cds; print(len(cds.stats()['served']))"],
                                        env=env(), check=True, cwd=tmp, capture_output=True, text=True).stdout.split()[-1]
                cmds = {"off": [py, "-c", code], "cds": [py, f"-Xcds={img}", "-c", code]}
                times = {k: [] for k in cmds}
                for _ in range(3):  # warm-up
                    for c in cmds.values():
                        subprocess.run(c, env=env(), cwd=tmp, check=True)
                for _ in range(args.runs):
                    for k, c in cmds.items():
                        t = time.perf_counter()
                        subprocess.run(c, env=env(), cwd=tmp, check=True)
                        times[k].append((time.perf_counter() - t) * 1000)
                off, cds = statistics.median(times["off"]), statistics.median(times["cds"])
                print(f"| {v} | {name} | {off:.2f} | {cds:.2f} | {cds / off:.3f} | {served} |", flush=True)


if __name__ == "__main__":
    main()
