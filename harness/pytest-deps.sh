#!/usr/bin/env bash
# Installs pytest (PYTEST_SPEC, default pytest==9.2.0) for the cds
# interpreters and prints the directory to put on PYTHONPATH:
#
#   harness/pytest-deps.sh build/python-3.11-cds/python
#
# The cds interpreters have no pip of their own and the host python may have
# none either (Debian's python3 without python3-pip), so the pip wheel CPython
# bundles for ensurepip runs straight from its zip. pytest is pure Python:
# one directory per spec in CDS_CACHE serves every version.
set -euo pipefail
die() { echo "pytest-deps: error: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: harness/pytest-deps.sh PYTHON"
py=$1
spec=${PYTEST_SPEC:-pytest==9.2.0}
dir=${CDS_CACHE:-$HOME/.cache/cds}/pytest-deps/${spec//==/-}
if [ ! -f "$dir/.installed" ]; then
  tree=$(dirname "$(readlink -f "$py")")
  wheel=$(ls "$tree"/Lib/ensurepip/_bundled/pip-*.whl 2>/dev/null | head -n 1)
  [ -n "$wheel" ] || die "no bundled pip wheel under $tree/Lib/ensurepip/_bundled"
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  flock 9
  if [ ! -f "$dir/.installed" ]; then
    echo "pytest-deps: installing $spec into $dir" >&2
    rm -rf "$dir" "$dir.tmp"
    "$py" -E -s "$wheel/pip" install --quiet --disable-pip-version-check --root-user-action=ignore \
      --no-compile --target "$dir.tmp" "$spec" >&2 || die "pip install $spec failed"
    touch "$dir.tmp/.installed"
    mv "$dir.tmp" "$dir"
  fi
fi
echo "$dir"
