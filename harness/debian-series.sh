#!/usr/bin/env bash
# The cds series where a packager applies it: on top of Debian's own patch
# series for the same CPython (apt-get source PACKAGE, the current revision
# of the suite harness/apt-sources.sh lists). Applies Debian's patches in
# their series order, then ours, and fails unless every hunk of ours applies
# with at most an offset (no fuzz, no reject). Usage: debian-series.sh
# [--build] X.Y (make check-debian-series runs it for every version). Needs
# root (apt).
#
# --build then builds that tree (build/python-X.Y-cds-debian: Debian's
# series, ours, Debian's configure flags from harness/debian-configure.txt)
# and runs harness/demo.py on it: trace, dump and replay through the
# packager's interpreter (make check-debian-build).
set -euo pipefail
harness=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$harness")
build=
if [ "${1:-}" = --build ]; then build=1; shift; fi
ver=${1:?usage: debian-series.sh [--build] X.Y}
read -r _ deb_pkg _ < <(awk -v v="$ver" '$1 == v' "$harness/versions.txt")
[ -n "${deb_pkg:-}" ] || { echo "debian-series: no version $ver in harness/versions.txt" >&2; exit 2; }
command -v patch >/dev/null || "$harness/deps.sh"
"$harness/apt-sources.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source -qq --download-only "$deb_pkg" >/dev/null 2>&1) ||
  { echo "debian-series: apt-get source --download-only $deb_pkg failed" >&2; exit 1; }
dsc=$(ls "$work"/*.dsc)
revision=$(basename "$dsc" .dsc)
mkdir "$work/tree"
tar -xf "$(ls "$work"/*.orig.tar.* | grep -v "\.asc$")" -C "$work/tree" --strip-components=1
tar -xf "$work"/*.debian.tar.* -C "$work/tree"
cd "$work/tree"
applied=0
while read -r name opts; do
  case "$name" in ''|'#'*) continue ;; esac
  patch -s -p1 ${opts:-} --no-backup-if-mismatch < "debian/patches/$name" ||
    { echo "debian-series: Debian's own $name does not apply to $revision" >&2; exit 1; }
  applied=$((applied + 1))
done < debian/patches/series
echo "debian-series: $revision: $applied Debian patches applied"
status=0
while read -r name; do
  case "$name" in ''|'#'*) continue ;; esac
  out=$(patch -p1 --forward --no-backup-if-mismatch < "$root/patches/$ver/$name" 2>&1) || status=1
  if grep -qE 'FAILED|fuzz|Reversed|malformed' <<<"$out"; then
    status=1
  fi
  offsets=$(grep -c 'offset' <<<"$out" || true)
  verdict=$([ $status = 0 ] && echo "applies" || echo "DOES NOT APPLY cleanly")
  [ "$offsets" = 0 ] && at="" || at=" ($offsets hunks at an offset)"
  echo "debian-series: $name: $verdict$at"
  [ $status = 0 ] || { echo "$out" | sed 's/^/  /' >&2; break; }
done < <(grep -v '^#' "$root/patches/$ver/series")
[ $status = 0 ] && [ -n "$build" ] || exit $status

# The tree a packager builds: kept under CDS_CACHE, keyed by the revision,
# so that build.sh (which keys its tree on these patches) reuses it.
cache=${CDS_CACHE:-$HOME/.cache/cds}/debian/$revision
if [ ! -f "$cache/patches/series" ]; then
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  tar -xf "$work"/*.debian.tar.* -C "$cache.tmp" --strip-components=1
  mv "$cache.tmp" "$cache"
fi
flags=$(awk -v v="$ver" '$1 == v {$1 = ""; print substr($0, 2)}' "$harness/debian-configure.txt")
[ -n "$flags" ] || { echo "debian-series: no configure flags for $ver in harness/debian-configure.txt" >&2; exit 2; }
echo "debian-series: building $revision with Debian's flags: $flags"
py=$(cd "$root" && CDS_DEBIAN_DIR=$cache CDS_BUILD_SUFFIX=-debian CDS_CONFIGURE_FLAGS="$flags" "$harness/build.sh" "$ver")
# Built in as Debian builds them (build.sh checks the other modules
# deps.txt names), _cds among them.
"$root/$py" -c '
import sys, xml.etree.ElementTree
missing = {"_cds", "pyexpat", "_elementtree", "zlib", "_socket"} - set(sys.builtin_module_names)
sys.exit(f"not built in: {sorted(missing)}" if missing else 0)' ||
  { echo "debian-series: the $revision build is not laid out as Debian builds it" >&2; exit 1; }
python3 "$harness/demo.py" "$root/$py"
