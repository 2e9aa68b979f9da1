#!/usr/bin/env bash
# The cds round trip on an import-heavy one-liner, then its start-up time
# with and without the archive:
#
#   harness/demo.sh 3.11        (after `make python-3.11-cds`; `make demo` does both)
#
# 1. trace:  python -X cds_trace=mod.lst -c CODE   (records what gets imported)
# 2. dump:   python -m cds dump mod.lst mod.img     (writes the archive)
# 3. replay: python -X cds=mod.img -c CODE          (serves code from it)
# 4. time both with hyperfine when installed, else a plain timing loop.
set -euo pipefail

die() { echo "demo.sh: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: harness/demo.sh VERSION   (e.g. 3.11)"
ver=$1
root=$(cd "$(dirname "$0")/.." && pwd)
py=$root/build/python-$ver-cds/python
[ -x "$py" ] || die "$py is not built; run: make python-$ver-cds"
code='import json, argparse, email.message, http.client'
runs=${CDS_DEMO_RUNS:-20}

# A scratch dir, so the demo neither reads nor leaves files in the clone; and
# no inherited cds settings, so the baseline really is plain CPython.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
unset PYTHONCDS PYTHONCDSTRACE PYTHONCDSMODE PYCDSMODE PYCDSLIST PYCDSARCHIVE

echo "== trace: $code"
"$py" -X cds_trace=mod.lst -c "$code"
echo "   $(wc -l < mod.lst) modules recorded in mod.lst"

echo "== dump"
"$py" -m cds dump mod.lst mod.img
echo "   mod.img: $(stat -c %s mod.img) bytes"

echo "== replay (cds_mode=on: fail instead of falling back)"
"$py" -X cds=mod.img -X cds_mode=on -c "$code
import _cds
stats = getattr(_cds, 'stats', None)
print('   stats:', stats() if stats else 'n/a')"

echo "== start-up time ($runs runs each)"
if command -v hyperfine >/dev/null; then
  # -N: no intermediate shell, so only the interpreter is measured.
  hyperfine -N --warmup 3 --runs "$runs" --export-json times.json \
    --command-name 'without cds' "$py -c '$code'" \
    --command-name 'with cds' "$py -X cds=mod.img -c '$code'" >/dev/null
  python3 - times.json <<'EOF'
import json, sys
res = {r["command"]: r for r in json.load(open(sys.argv[1]))["results"]}
base, cds = res["without cds"]["median"], res["with cds"]["median"]
print(f"   without cds: median {base * 1e3:.2f} ms")
print(f"   with cds:    median {cds * 1e3:.2f} ms")
print(f"   ratio (without/with): {base / cds:.2f}x")
EOF
else
  python3 - "$py" "$code" "$runs" <<'EOF'
import statistics, subprocess, sys, time
py, code, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def median(cmd):
    for _ in range(3):  # warm-up
        subprocess.run(cmd, check=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)
base = median([py, "-c", code])
cds = median([py, "-X", "cds=mod.img", "-c", code])
print(f"   without cds: median {base * 1e3:.2f} ms")
print(f"   with cds:    median {cds * 1e3:.2f} ms")
print(f"   ratio (without/with): {base / cds:.2f}x  (hyperfine not installed; plain loop)")
EOF
fi
