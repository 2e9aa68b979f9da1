#!/usr/bin/env bash
# Adds the deb-src entries the harness needs to fetch pristine CPython tarballs
# (bookworm serves python3.11 3.11.2, trixie serves python3.13 3.13.5) and
# refreshes the package lists. Idempotent; needs root.
set -euo pipefail
list=/etc/apt/sources.list.d/cds-deb-src.sources
if [ ! -f "$list" ]; then
  cat > "$list" <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq
fi
