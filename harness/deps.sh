#!/usr/bin/env bash
# What cds needs from the system, from the one list harness/deps.txt:
#
#   harness/deps.sh              install what is missing (root: apt-get;
#                                otherwise print the sudo command, exit 2),
#                                then check every cmd:/lib: entry
#   harness/deps.sh modules      "module package" for each module a build
#                                must have (mod:, and mod?: while installed)
#   harness/deps.sh fingerprint  "package version" per line (version "none"
#                                when not installed): part of the build key
#                                (but the `stock` packages, which only the
#                                stock-interpreter tests need)
#
# Supported platforms: Debian 12 (bookworm) and 13 (trixie) on x86_64. On a
# system without dpkg nothing is installed: the cmd:/lib: checks name what
# is missing, and the build is not held to Debian's optional modules.
# CDS_SKIP_DEPS=1 skips installing (the checks still run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
list=$here/deps.txt

die() { echo "deps: error: $*" >&2; exit 2; }
[ -f "$list" ] || die "$list is missing"

packages() { awk '!/^[[:space:]]*(#|$)/ {print $1}' "$list"; }
# provides KIND: "package NAME" for every KIND:NAME entry.
provides() {
  awk -v kind="$1:" '!/^[[:space:]]*(#|$)/ {
    n = split($2, items, ",")
    for (i = 1; i <= n; i++) if (index(items[i], kind) == 1) print $1, substr(items[i], length(kind) + 1)
  }' "$list"
}
have_dpkg() { command -v dpkg-query >/dev/null 2>&1; }
installed_version() {  # prints the version, or nothing when not installed
  dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null |
    awk '$1 == "install" && $3 == "installed" {print $4}'
}
is_installed() { [ -n "$(installed_version "$1")" ]; }

has_lib() {  # the dynamic loader (or LIBCLANG_PATH, which bindgen honours) finds lib$1
  local name=$1
  if [ "$name" = libclang ] && [ -n "${LIBCLANG_PATH:-}" ] && compgen -G "$LIBCLANG_PATH/libclang*.so*" >/dev/null; then
    return 0
  fi
  /sbin/ldconfig -p 2>/dev/null | grep -q "[[:space:]]$name[.-]" && return 0
  # Debian keeps libclang under /usr/lib/llvm-N/lib, which bindgen also searches.
  compgen -G "/usr/lib/llvm-*/lib/$name.so*" >/dev/null || compgen -G "/usr/lib/*/$name.so*" >/dev/null
}

install_missing() {
  have_dpkg || return 0
  local missing=() p
  for p in $(packages); do is_installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ -n "${CDS_SKIP_DEPS:-}" ]; then
    echo "deps: warning: CDS_SKIP_DEPS is set; not installing ${missing[*]}" >&2
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing Debian packages; install them with: sudo apt-get update && sudo $cmd" >&2
    exit 2
  fi
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2 || die "apt-get update failed"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 || die "$cmd failed"
}

check_tools() {
  local bad=() pkg name
  while read -r pkg name; do
    command -v "$name" >/dev/null 2>&1 || bad+=("command $name (Debian package $pkg)")
  done < <(provides cmd)
  while read -r pkg name; do
    has_lib "$name" || bad+=("library $name (Debian package $pkg)")
  done < <(provides lib)
  command -v cargo >/dev/null 2>&1 || bad+=("command cargo (the Rust toolchain: https://rustup.rs)")
  command -v python3 >/dev/null 2>&1 || bad+=("command python3 (Debian package python3)")
  if [ ${#bad[@]} -gt 0 ]; then
    local b
    for b in "${bad[@]}"; do echo "deps: missing $b" >&2; done
    have_dpkg || echo "deps: this is not a Debian system (no dpkg); supported: Debian 12 and 13, see README.md" >&2
    exit 2
  fi
}

case "${1:-install}" in
  install)
    install_missing
    check_tools
    ;;
  modules)
    have_dpkg || exit 0
    provides mod | while read -r pkg name; do echo "$name $pkg"; done
    provides 'mod?' | while read -r pkg name; do
      if is_installed "$pkg"; then echo "$name $pkg"; fi
    done
    ;;
  fingerprint)
    for p in $(packages | grep -vxF -f <(awk '!/^[[:space:]]*(#|$)/ && $2 == "stock" {print $1}' "$list")); do
      v=
      have_dpkg && v=$(installed_version "$p")
      echo "$p ${v:-none}"
    done
    ;;
  *) die "usage: harness/deps.sh [install | modules | fingerprint]" ;;
esac
