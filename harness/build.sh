#!/usr/bin/env bash
# Builds the cds-patched CPython for one minor version, in this clone:
#
#   harness/build.sh 3.11
#
# system packages (harness/deps.sh) -> pristine tarball (pinned sha256,
# cached) -> patched, configured tree build/python-3.11-cds (keyed) -> Rust
# core built against that tree -> make -> check of the optional modules.
# The last line printed is the interpreter path, build/python-3.11-cds/python.
#
# The tree belongs to this clone: two clones or worktrees never share an
# interpreter, core library or Lib/cds. Only the pristine tarballs are shared,
# in CDS_CACHE (default ~/.cache/cds). Re-running with nothing changed is a
# cargo no-op plus a make no-op; a change under core/ rebuilds the static
# library and relinks python only; a change of anything in the build key
# (below) rebuilds the tree from scratch, saying what changed.
#
# Environment:
#   CDS_CACHE            cache root (tarballs/)
#   CPYTHON_TARBALL      use this tarball instead of fetching Debian's; for a
#                        version with no pin in versions.txt (a port in
#                        progress, docs/PORTING.md) it is the only source,
#                        used unpinned with a warning
#   CDS_CONFIGURE_FLAGS  extra ./configure flags (e.g. --with-pydebug); part
#                        of the build key
#   CDS_BUILD_SUFFIX     suffix of the tree's name (e.g. -debug)
#   CDS_PIE              1: link python as a position-independent executable
#                        (ASLR for the interpreter's own data). Default: not,
#                        as Debian links its python3.X; then types and
#                        singletons sit at the same address in every process
#                        and an archive mapped at its preferred base needs no
#                        relocation writes (docs/DESIGN.md, "Address layout").
#                        Part of the build key
#   CDS_SKIP_DEPS        do not install missing system packages (deps.sh)
#   CDS_DEBIAN_DIR       a Debian source package's unpacked debian/ directory:
#                        its patches/series is applied before ours and, after
#                        configure, the extensions debian/rules builds into
#                        the interpreter go into Modules/Setup.local (its
#                        __post_configure), as a packager's tree has them
#                        (harness/debian-series.sh --build); part of the key
set -euo pipefail

die() { echo "build.sh: error: $*" >&2; exit 1; }
say() { echo "build.sh: $*" >&2; }

[ $# -eq 1 ] || die "usage: harness/build.sh VERSION   (e.g. 3.11)"
ver=$1
[[ $ver =~ ^3\.[0-9]+$ ]] || die "VERSION must be a CPython minor version such as 3.13, not '$ver'"
root=$(cd "$(dirname "$0")/.." && pwd)
harness=$root/harness
patches=$root/patches/$ver
CDS_CACHE=${CDS_CACHE:-$HOME/.cache/cds}
configure_flags=${CDS_CONFIGURE_FLAGS:-}
debian_dir=${CDS_DEBIAN_DIR:-}
debian_patches=${debian_dir:+$debian_dir/patches}
[ -z "$debian_dir" ] || [ -f "$debian_patches/series" ] ||
  die "CDS_DEBIAN_DIR=$debian_dir has no patches/series file"
# Debian's series, in order, with each patch's options (`name -p1`).
debian_series() { awk '!/^[[:space:]]*(#|$)/' "$debian_patches/series"; }
# LINKFORSHARED is what configure puts on the python executable's link line
# only (not on extension modules'): Linux's default plus -no-pie.
case ${CDS_PIE:-0} in
  1) link_for_shared= pie_mode=pie ;;
  0) link_for_shared="-Xlinker -export-dynamic -no-pie" pie_mode=no-pie ;;
  *) die "CDS_PIE must be 0 or 1, not '${CDS_PIE}'" ;;
esac
tree=$root/build/python-$ver-cds${CDS_BUILD_SUFFIX:-}
jobs=$(nproc 2>/dev/null || echo 2)

# --- what a version needs ------------------------------------------------------
# patches/X.Y/series and harness/pyo3-config-X.Y.txt always (docs/PORTING.md);
# a pin in versions.txt unless CPYTHON_TARBALL names the source.
[ -f "$patches/series" ] ||
  die "no patch series for CPython $ver: patches/$ver/series does not exist (porting to a new version starts there, see docs/PORTING.md)"
[ -f "$harness/pyo3-config-$ver.txt" ] ||
  die "missing harness/pyo3-config-$ver.txt (copy another version's and change version=, see docs/PORTING.md)"

# --- pins -------------------------------------------------------------------
# One line per version in versions.txt; nothing else in the harness hardcodes
# a release, so moving to a new point release is a one-line change.
pin=$(awk -v v="$ver" '$1 == v' "$harness/versions.txt")
if [ -n "$pin" ]; then
  read -r _ deb_pkg orig_name upstream_name pin_sha src_dir <<<"$pin"
elif [ -n "${CPYTHON_TARBALL:-}" ]; then
  deb_pkg= orig_name= upstream_name= pin_sha= src_dir=
  # A port in progress: cpython-sys refuses versions not in versions.txt
  # unless told this is one.
  export CDS_ALLOW_UNSUPPORTED=1
else
  die "CPython $ver is not pinned in harness/versions.txt; pin it, or set CPYTHON_TARBALL=/path/to/Python-$ver.N.tar.xz to build from an unpinned tarball"
fi

# --- system packages ------------------------------------------------------------
# Installs what harness/deps.txt lists and is missing (or says how, exit 2),
# so that a missing tool is named here rather than failing a later step.
"$harness/deps.sh" || exit $?

mkdir -p "$CDS_CACHE/tarballs" "$root/build"

# Two builds of one tree at once would race on it and on its cargo target
# dir; two fetches of one tarball would race in the cache. Serialise both.
exec 9>"$root/build/.lock-$(basename "$tree")"
flock 9
exec 8>"$CDS_CACHE/.lock-fetch-$ver"
flock 8

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# --- 1. pristine tarball ----------------------------------------------------
if [ -n "${CPYTHON_TARBALL:-}" ]; then
  tarball=$(realpath "$CPYTHON_TARBALL")
  [ -f "$tarball" ] || die "CPYTHON_TARBALL=$CPYTHON_TARBALL does not exist"
  tar_sha=$(sha256 "$tarball")
  if [ -z "$pin" ]; then
    say "warning: UNPINNED: CPython $ver has no pin in harness/versions.txt; building from $tarball as given (sha256 $tar_sha), nothing verifies it is a pristine release"
  else
    case "$(basename "$tarball")" in
      "$orig_name"|"$upstream_name")
        [ "$tar_sha" = "$pin_sha" ] ||
          die "sha256 mismatch for $tarball: got $tar_sha, pinned $pin_sha (harness/versions.txt)" ;;
      *)
        [ "$tar_sha" = "$pin_sha" ] ||
          say "warning: UNPINNED: $tarball is not the pinned release ($upstream_name); using it unpinned (sha256 $tar_sha)" ;;
    esac
  fi
else
  tarball=$CDS_CACHE/tarballs/$orig_name
  if [ -f "$tarball" ] && [ "$(sha256 "$tarball")" != "$pin_sha" ]; then
    say "cached $tarball does not match its pin; fetching it again"
    rm -f "$tarball"
  fi
  if [ ! -f "$tarball" ]; then
    # Debian's orig tarball is the upstream release, fetched from a signed
    # archive; deb-src lines are needed for apt-get source.
    [ "$(id -u)" = 0 ] || die "need root to fetch $deb_pkg sources with apt (or set CPYTHON_TARBALL=/path/to/$upstream_name)"
    "$harness/apt-sources.sh"
    dl=$(mktemp -d)
    say "fetching $orig_name (apt-get source --download-only $deb_pkg)"
    (cd "$dl" && apt-get source -qq --download-only "$deb_pkg" >/dev/null 2>&1) ||
      { rm -rf "$dl"; die "apt-get source --download-only $deb_pkg failed"; }
    [ -f "$dl/$orig_name" ] || { ls "$dl" >&2; rm -rf "$dl"; die "apt did not deliver $orig_name (did the Debian version change? update harness/versions.txt)"; }
    mv "$dl/$orig_name" "$tarball.part"
    rm -rf "$dl"
    mv "$tarball.part" "$tarball"
  fi
  tar_sha=$(sha256 "$tarball")
  [ "$tar_sha" = "$pin_sha" ] ||
    die "sha256 mismatch for $tarball: got $tar_sha, pinned $pin_sha (harness/versions.txt)"
fi
flock -u 8

# --- 2. patched, configured tree --------------------------------------------
# The key is everything that changes what the build produces: the source, the
# patches (series order and content), the configure flags, the compiler and
# the build dependencies present (a configure that ran before libgdbm-dev was
# installed must not be reused after). Rust and pylib/cds changes are not in
# it; they are synced into the tree below. Kept as text in the tree, so that
# a rebuild can say what changed.
series=$(grep -v '^[[:space:]]*#' "$patches/series" | awk 'NF {print $1}')
key_text=$( {
  echo "version $ver"
  echo "tarball $tar_sha"
  echo "configure $configure_flags"
  echo "link $pie_mode"
  echo "compiler $(cc --version 2>/dev/null | head -n 1)"
  echo "patches $( { cat "$patches/series"; for p in $series; do echo "patch $p"; cat "$patches/$p"; done; } | sha256sum | cut -c1-16)"
  [ -z "$debian_patches" ] ||
    echo "debian $( { debian_series; debian_series | while read -r p _; do cat "$debian_patches/$p"; done
                      cat "$debian_dir/PVER-minimal.README.Debian.in"; } | sha256sum | cut -c1-16)"
  "$harness/deps.sh" fingerprint | sed 's/^/package /'
} )
key_file=$tree/.cds-key

if [ -L "$tree" ]; then
  # The layout before trees moved into the clone: a link into CDS_CACHE.
  rm -f "$tree"
elif [ -d "$tree" ] && [ "$(cat "$key_file" 2>/dev/null)" != "$key_text" ]; then
  if [ -f "$key_file" ]; then
    say "rebuilding $(basename "$tree"): $(diff <(cat "$key_file") <(echo "$key_text") | sed -n 's/^> //p' | head -n 3 | paste -sd ';' -) changed"
  else
    say "rebuilding $(basename "$tree"): its last build did not finish"
  fi
  rm -rf "$tree"
fi

if [ ! -d "$tree" ]; then
  # Unpack and patch in a scratch dir next to the final one, then rename: an
  # interrupted run leaves only a .tmp dir, never a half-patched tree.
  tmp=$(mktemp -d "$root/build/.tmp-python-$ver-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  say "unpacking $(basename "$tarball")"
  tar -xf "$tarball" -C "$tmp"
  top=$(ls "$tmp")
  [ "$(echo "$top" | wc -l)" = 1 ] && [ -d "$tmp/$top" ] || die "$tarball does not unpack to one directory"
  # The patches are per minor version: refuse a tarball of another one
  # (matters when CPYTHON_TARBALL is unpinned).
  tar_ver=$(awk '$1 == "#define" && $2 == "PY_MAJOR_VERSION" {M=$3}
                 $1 == "#define" && $2 == "PY_MINOR_VERSION" {m=$3}
                 END {if (M != "" && m != "") print M "." m}' "$tmp/$top/Include/patchlevel.h" 2>/dev/null || true)
  [ "$tar_ver" = "$ver" ] ||
    die "$(basename "$tarball") is CPython ${tar_ver:-(unknown version)}, not $ver"
  if [ -n "$debian_patches" ]; then
    say "applying Debian's series ($(debian_series | wc -l) patches from $debian_patches)"
    while read -r p opts; do
      # shellcheck disable=SC2086  # a patch's options are meant to word-split
      (cd "$tmp/$top" && patch -s -p1 ${opts:-} --no-backup-if-mismatch < "$debian_patches/$p") >&2 ||
        die "Debian's patch $p does not apply to $(basename "$tarball")"
    done < <(debian_series)
  fi
  for p in $series; do
    [ -f "$patches/$p" ] || die "series names $p but $patches/$p does not exist"
    (cd "$tmp/$top" && patch -p1 --forward --batch --fuzz=0 --quiet < "$patches/$p") >&2 ||
      die "patch $p (patches/$ver) does not apply to $(basename "$tarball")"
  done
  mv "$tmp/$top" "$tree"
  rm -rf "$tmp"
  trap - EXIT
  say "patched tree: $tree"
fi

# configure runs in the final location (the Makefile records absolute paths);
# the key is written only once it succeeded, so an interrupted configure
# means a fresh tree next time.
if [ ! -f "$key_file" ]; then
  say "configuring $ver${configure_flags:+ ($configure_flags)}, $pie_mode ..."
  # shellcheck disable=SC2086  # flags are meant to word-split
  (cd "$tree" && ${link_for_shared:+env LINKFORSHARED="$link_for_shared"} ./configure -q $configure_flags >cds-configure.log 2>&1) ||
    { tail -n 30 "$tree/cds-configure.log" >&2; die "configure failed (log: $tree/cds-configure.log)"; }
  if [ -n "$debian_dir" ]; then
    # debian/rules' __post_configure, in the tree: the extensions its
    # minimal package lists are built in (Modules/Setup.local).
    builtin=$(awk -v ORS='|' '$2 ~ /^extension$/ {print $1}' "$debian_dir/PVER-minimal.README.Debian.in")
    say "Debian's built-in extensions: $(tr '|' ' ' <<<"$builtin")"
    (cd "$tree" &&
      grep -E "^#(${builtin}XX)" Modules/Setup | sed -e 's/^#//' -e 's/-Wl,-Bdynamic//;s/-Wl,-Bstatic//' >> Modules/Setup.local &&
      ./Modules/makesetup -c Modules/config.c.in -s Modules \
        Modules/Setup.local Modules/Setup.bootstrap Modules/Setup.stdlib Modules/Setup >>cds-configure.log 2>&1 &&
      mv config.c Modules/ &&
      make Makefile Modules/config.c >>cds-configure.log 2>&1 &&
      sed '/^Modules\/_math.o: .*PY_STDMODULE_CFLAGS/d' Makefile > Makefile.fixed &&
      touch -r Makefile Makefile.fixed && mv -f Makefile.fixed Makefile) ||
      die "Debian's Setup.local step failed (log: $tree/cds-configure.log)"
  fi
  echo "$key_text" > "$key_file"
fi

# --- 3. pylib/cds -> Lib/cds ------------------------------------------------
# Copy only files whose content differs, so their mtimes (and make, and the
# .pyc files) stay put when nothing changed. Files removed from pylib/cds are
# removed from the tree too.
sync_dir() {  # sync_dir SRC DST
  local src=$1 dst=$2 rel
  mkdir -p "$dst"
  [ -d "$src" ] || return 0
  (cd "$src" && find . -name '__pycache__' -prune -o -type f -name '*.py' -print) |
  while read -r rel; do
    mkdir -p "$dst/$(dirname "$rel")"
    cmp -s "$src/$rel" "$dst/$rel" || cp "$src/$rel" "$dst/$rel"
  done
  (cd "$dst" && find . -name '__pycache__' -prune -o -type f -name '*.py' -print) |
  while read -r rel; do
    [ -f "$src/$rel" ] || rm -f "$dst/$rel"
  done
}
sync_dir "$root/pylib/cds" "$tree/Lib/cds"

# --- 4. Rust core -------------------------------------------------------------
# One cargo target dir per tree: the bindings depend on the tree's headers and
# pyconfig.h, so sharing one would rebuild cpython-sys on every switch.
target=$root/target/$(basename "$tree")
say "building Rust core (cargo, target $target)"
(cd "$root" &&
  CDS_PYTHON_SRC=$tree \
  PYO3_CONFIG_FILE=$harness/pyo3-config-$ver.txt \
  CARGO_TARGET_DIR=$target \
  cargo build --release --quiet -p cds-core --features python) ||
  die "cargo build of cds-core failed"
mkdir -p "$tree/Modules/cds"
# Copy only when it changed: the python link depends on this file's mtime.
if ! cmp -s "$target/release/libcds_core.a" "$tree/Modules/cds/libcds_core.a"; then
  cp "$target/release/libcds_core.a" "$tree/Modules/cds/libcds_core.a"
  say "core library updated; python will be relinked"
fi

# --- 5. make ------------------------------------------------------------------
# The build runs the fresh interpreter (setup.py, sysconfig, compileall): keep
# the caller's cds settings (an archive, a trace, a bad value) out of it.
while read -r var; do unset "$var"; done < <(compgen -e | grep -E '^(PYTHONCDS|PYCDS)')
say "make -j$jobs in $tree"
(cd "$tree" && make -j"$jobs" >cds-make.log 2>&1) ||
  { tail -n 40 "$tree/cds-make.log" >&2; die "make failed (log: $tree/cds-make.log)"; }

# --- 6. byte-compile the stdlib once per tree ------------------------------------
# So benchmarks compare cds against up-to-date .pyc files rather than against
# a first run that compiles. Failures come from deliberately broken test files.
# Absolute paths, as an installed interpreter's .pyc files have: a .pyc that
# records another path gets its co_filename replaced at every import
# (_imp._fix_co_filename), by a str that is not interned.
if [ ! -f "$tree/.cds-compiled-abs" ]; then
  say "byte-compiling Lib (once per tree)"
  (cd "$tree" && env -u PYTHONDONTWRITEBYTECODE ./python -E -m compileall -q -j0 -f \
      -x 'bad_coding|badsyntax|lib2to3/tests/data' "$tree/Lib" >/dev/null 2>&1) || true
  touch "$tree/.cds-compiled-abs"
fi

# --- 7. optional modules ------------------------------------------------------------
# CPython skips an optional module quietly when its library is missing. Say
# what it skipped, and fail when a module a default Debian build has is
# missing (harness/deps.txt names them and their packages).
skipped=$(awk '/^The necessary bits to build these optional modules were not found:/ {grab = 1; next}
               /^Failed to build these modules:/ {grab = 1; next}
               grab && (/^$/ || /^To find/ || /:$/) {grab = 0}
               grab {print}' "$tree/cds-make.log" | xargs -r -n1 | sort -u | paste -sd ' ' -)
[ -z "$skipped" ] || say "CPython did not build these optional modules: $skipped"
missing=$("$harness/deps.sh" modules | (cd "$tree" && ./python -E -s -c '
import importlib, sys
for line in sys.stdin:
    module, package = line.split()
    try:
        importlib.import_module(module)
    except ImportError as e:
        print(f"{module} (from Debian package {package})")
') | paste -sd ',' -)
[ -z "$missing" ] ||
  die "CPython $ver was built without modules a Debian build has: $missing; with the package installed the next build starts afresh (make log: $tree/cds-make.log)"

echo "build/$(basename "$tree")/python"
