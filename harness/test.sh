#!/usr/bin/env bash
# `make test`: the Rust tests of the core, then for each version the patched
# interpreter (built if needed) runs the pytest suite, then every stock
# interpreter of ext/versions.txt on this machine with the `_cds` extension
# installed (harness/test-stock.sh):
#
#   harness/test.sh 3.11 3.13
#
# Every version is built and tested even when an earlier one fails; the exit
# status is 1 at the end, naming the versions that did.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ $# -ge 1 ] || { echo "usage: harness/test.sh VERSION..." >&2; exit 2; }
harness/deps.sh || exit $?
# The suite sets every cds variable its runs need; none may come from the caller.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(PYTHONCDS|PYCDS)')

echo "== cargo test (core, without a CPython tree)"
cargo test -q -p cds-core || { echo "== test: cargo test failed"; exit 1; }
# The forged-archive tests edit archives and recompute their checksums with it.
cargo build -q -p cds-testkit --bin cds-reseal || { echo "== test: cannot build cds-reseal"; exit 1; }
export CDS_RESEAL=$root/target/debug/cds-reseal

failed= deps=
for v in "$@"; do
  echo "== CPython $v: build"
  if ! py=$(harness/build.sh "$v" | tail -n 1); then
    echo "== CPython $v: build FAILED"; failed="$failed $v(build)"; continue
  fi
  if [ -z "$deps" ]; then
    deps=$(harness/pytest-deps.sh "$py") || { echo "== test: cannot install pytest"; exit 1; }
  fi
  echo "== pytest tests/ with $py"
  CDS_PYTHON=$root/$py PYTHONPATH=$deps "$py" -m pytest ${PYTEST_ARGS:--q} tests/ ||
    failed="$failed $v(pytest)"
done
harness/test-stock.sh || failed="$failed stock"
if [ -n "$failed" ]; then echo "== test: failed for:$failed"; exit 1; fi
echo "== test: passed for $* and the stock interpreters"
