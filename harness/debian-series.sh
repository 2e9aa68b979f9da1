#!/usr/bin/env bash
# The cds series where a packager applies it: on top of Debian's own patch
# series for the same CPython (apt-get source PACKAGE, the current revision
# of the suite harness/apt-sources.sh lists). Applies Debian's patches in
# their series order, then ours, and fails unless every hunk of ours applies
# with at most an offset (no fuzz, no reject). Usage: debian-series.sh X.Y
# (make check-debian-series runs it for every version). Needs root (apt).
set -euo pipefail
harness=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$harness")
ver=${1:?usage: debian-series.sh X.Y}
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
exit $status
