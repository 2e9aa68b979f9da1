#!/usr/bin/env bash
# The pytest suite against stock interpreters with the `_cds` extension
# installed, as a user installs it (`pip install .` into a virtual
# environment): every interpreter ext/versions.txt names that this machine
# has (part of `make test`).
#
#   harness/test-stock.sh [PYTHON...]     (default: ext/versions.txt)
#
# Each interpreter gets a venv under build/stock/ (made --without-pip: pip
# runs from the wheel CPython bundles for ensurepip, as harness/pytest-deps.sh
# does, so Debian's python3.X needs no python3-venv) and a cargo target dir
# of its own under target/stock/ (the bindings are generated against its
# headers). Tests that need the patches are skipped, each saying which
# (tests/conftest.py needs_patch). Exit status 1 if any interpreter failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

interpreters() {
  local pyenv_root=
  command -v pyenv >/dev/null 2>&1 && pyenv_root=$(pyenv root)
  awk '!/^[[:space:]]*(#|$)/ {for (i = 2; i <= NF; i++) print $1, $i}' ext/versions.txt |
    while read -r minor spec; do
      case $spec in
        pyenv:*)
          local p=${pyenv_root:-/nonexistent}/versions/${spec#pyenv:}/bin/python$minor
          if [ -x "$p" ]; then echo "$p"; else echo "== stock $spec: not on this machine, skipped" >&2; fi ;;
        /*)
          if [ -x "$spec" ]; then echo "$spec"; else echo "== stock $spec: not on this machine, skipped" >&2; fi ;;
      esac
    done
}

# pip, from the wheel a harness-built tree bundles (any CPython 3.8+ runs it).
pip_wheel=$(ls build/python-*-cds/Lib/ensurepip/_bundled/pip-*.whl 2>/dev/null | tail -n 1)
[ -n "$pip_wheel" ] || { echo "test-stock: no harness-built tree with a bundled pip (make python-3.13-cds)" >&2; exit 2; }
deps=$(harness/pytest-deps.sh "$(ls build/python-*-cds/python | tail -n 1)") || exit 1
export CDS_RESEAL=${CDS_RESEAL:-$root/target/debug/cds-reseal}
[ -x "$CDS_RESEAL" ] || cargo build -q -p cds-testkit --bin cds-reseal || exit 1

if [ $# -gt 0 ]; then list=("$@"); else mapfile -t list < <(interpreters); fi
failed=
for python in "${list[@]}"; do
  tag=$("$python" -c 'import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_config_var("VERSION"))' | tr ' ' '-')
  name=$(printf '%s' "$python" | tr '/' '_')
  venv=build/stock/$name
  echo "== stock $python ($tag): pip install . into $venv"
  rm -rf "$venv"
  if ! "$python" -m venv --without-pip "$venv" ||
     ! CARGO_TARGET_DIR=$root/target/stock/$name "$venv/bin/python" "$pip_wheel/pip" install --quiet \
         --disable-pip-version-check --root-user-action=ignore "$root"; then
    echo "== stock $python: install FAILED"; failed="$failed $python(install)"; continue
  fi
  echo "== pytest tests/ with $venv/bin/python"
  CDS_PYTHON=$root/$venv/bin/python PYTHONPATH=$deps "$venv/bin/python" -m pytest ${PYTEST_ARGS:--q} tests/ ||
    failed="$failed $python(pytest)"
done
if [ -n "$failed" ]; then echo "== test-stock: failed for:$failed"; exit 1; fi
echo "== test-stock: passed for ${list[*]}"
