# cds: class-data-sharing for CPython. Top-level entry points; the real work
# is in harness/ (see harness/build.sh for the build pipeline and its cache).
SHELL := /bin/bash

# Supported CPython minor versions: the pins in harness/versions.txt, the one
# list (each also needs patches/X.Y/ and harness/pyo3-config-X.Y.txt;
# docs/PORTING.md). all-cds and test cover these; python-X.Y-cds works for
# any X.Y the harness can build, e.g. a port in progress with
# CPYTHON_TARBALL=/path/Python-X.Y.N.tar.xz.
VERSIONS ?= $(shell awk '!/^[[:space:]]*\#/ && NF {print $$1}' harness/versions.txt)
DEMO_VERSION ?= $(firstword $(VERSIONS))

CDS_CACHE ?= $(HOME)/.cache/cds
export CDS_CACHE

# pytest runs inside the cds interpreters (harness/pytest-deps.sh installs
# it once per spec into CDS_CACHE with the pip wheel CPython bundles).
PYTEST_SPEC ?= pytest==9.2.0
PYTEST_ARGS ?= -q
export PYTEST_SPEC PYTEST_ARGS
HOST_PYTHON ?= python3

CDS_TARGETS := $(VERSIONS:%=python-%-cds)
CDS_DEBUG_TARGETS := $(VERSIONS:%=python-%-cds-debug)

.DEFAULT_GOAL := help
.PHONY: help deps versions all-cds all-cds-debug test test-debug lint demo bench fuzz clean check-debian-series check-debian-build FORCE

help:
	@echo "cds make targets:"
	@echo "  deps                  install the Debian packages the builds need (harness/deps.txt)"
	@echo "  python-X.Y-cds        build the patched interpreter -> build/python-X.Y-cds/python"
	@echo "                        (supported: $(VERSIONS))"
	@echo "  python-X.Y-cds-debug  same with --with-pydebug -> build/python-X.Y-cds-debug/python"
	@echo "  all-cds               build every supported version (all-cds-debug: debug builds)"
	@echo "  test                  cargo test, then pytest tests/ under each cds interpreter"
	@echo "  test-debug            pytest tests/ under the --with-pydebug builds"
	@echo "  lint                  cargo fmt --check, cargo clippy (with the python feature against each tree)"
	@echo "  demo                  trace, dump and replay an import-heavy command; time it"
	@echo "  bench                 import/startup/memory/dump benches -> bench/results.md (QUICK=1: fewer runs)"
	@echo "  fuzz                  fuzz the archive reader (FUZZ_SECONDS per target, default 60)"
	@echo "  regrtest-X.Y          CPython's test suite (CI subset) with and without cds; same failures?"
	@echo "  regrtest-full-X.Y     the whole CPython test suite, with and without cds"
	@echo "  install-X.Y           CPython's make install of the patched build (DESTDIR=..., PREFIX=...; altinstall-X.Y too)"
	@echo "  check-debian-series   the series on top of Debian's own patches for each version: applies with offsets only?"
	@echo "  check-debian-build    that tree built with Debian's configure flags (build/python-X.Y-cds-debian), then make demo's run on it"
	@echo "  clean                 remove build/ (this clone's interpreters) and target/; tarballs in $(CDS_CACHE) stay"
	@echo "variables: VERSIONS, CDS_CACHE, CPYTHON_TARBALL, CDS_CONFIGURE_FLAGS, PYTEST_ARGS"

# Always run the harness (FORCE): it decides (quickly) whether anything is
# stale. Pattern rules, not a fixed list, so that a version outside VERSIONS
# (a port in progress) can be built too; the harness rejects what it cannot
# build. (Pattern rules are never tried for .PHONY targets, hence FORCE.)
python-%-cds-debug: FORCE
	@CDS_CONFIGURE_FLAGS="--with-pydebug $(CDS_CONFIGURE_FLAGS)" CDS_BUILD_SUFFIX=-debug harness/build.sh $*

python-%-cds: FORCE
	@harness/build.sh $*

FORCE:

all-cds: $(CDS_TARGETS)

all-cds-debug: $(CDS_DEBUG_TARGETS)

deps:
	@harness/deps.sh

versions:
	@echo $(VERSIONS)

test:
	@harness/test.sh $(VERSIONS)

# The pytest suite under --with-pydebug builds (refcount and assertion
# checks of the interpreter itself; slower, so not part of `make test`).
test-debug:
	@set -e; for v in $(VERSIONS); do \
	  $(MAKE) --no-print-directory python-$$v-cds-debug; \
	  py=build/python-$$v-cds-debug/python; deps=$$(harness/pytest-deps.sh $$py); \
	  echo "== pytest tests/ with $$py"; \
	  CDS_PYTHON=$(CURDIR)/$$py PYTHONPATH=$$deps $$py -m pytest $(PYTEST_ARGS) tests/; \
	done

# fmt, then clippy with warnings denied: the std-only core, and the core with
# its CPython glue against each built tree (what the harness builds).
lint: $(CDS_TARGETS)
	cargo fmt --all --check
	cargo clippy -q --all-targets -p cds-core -- -D warnings
	@set -e; for v in $(VERSIONS); do \
	  echo "== clippy --features python against build/python-$$v-cds"; \
	  CDS_PYTHON_SRC=$(CURDIR)/build/python-$$v-cds PYO3_CONFIG_FILE=$(CURDIR)/harness/pyo3-config-$$v.txt \
	    CARGO_TARGET_DIR=$(CURDIR)/target/python-$$v-cds \
	    cargo clippy -q --all-targets -p cds-core --features python -- -D warnings; \
	done

demo: python-$(DEMO_VERSION)-cds
	@$(HOST_PYTHON) harness/demo.py build/python-$(DEMO_VERSION)-cds/python

# benches/run.py (host python3) times, for each of VERSIONS: import phase cds
# vs off vs ideal, whole process, bare startup, memory of 16 processes,
# whole-stdlib dump; then the criterion benches of the format. Writes
# bench/results.md and plots; QUICK=1 for fewer runs. docs/PERFORMANCE.md.
bench: $(CDS_TARGETS)
	$(HOST_PYTHON) benches/run.py --versions $(VERSIONS) $(if $(QUICK),--quick) --out bench

FUZZ_SECONDS ?= 60
fuzz:
	fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build target

# Installs a patched interpreter as CPython's own `make install` /
# `make altinstall` does (the cds package and the _cds built-in included),
# under DESTDIR if given. The harness configures prefix /usr/local; another
# PREFIX reconfigures and rebuilds the tree with --prefix. Write the default
# archive once the tree is in its final place (docs/PACKAGING.md).
PREFIX ?= /usr/local
cds_prefix_flags = $(if $(filter-out /usr/local,$(PREFIX)),CDS_CONFIGURE_FLAGS="$(strip $(CDS_CONFIGURE_FLAGS) --prefix=$(PREFIX))")
install-%: FORCE
	@$(MAKE) -s python-$*-cds $(cds_prefix_flags)
	$(MAKE) -C build/python-$*-cds install $(if $(DESTDIR),DESTDIR=$(abspath $(DESTDIR)))

altinstall-%: FORCE
	@$(MAKE) -s python-$*-cds $(cds_prefix_flags)
	$(MAKE) -C build/python-$*-cds altinstall $(if $(DESTDIR),DESTDIR=$(abspath $(DESTDIR)))

# Where packagers apply the series: on top of Debian's patched trees
# (apt-get source; harness/debian-series.sh, docs/PACKAGING.md).
check-debian-series:
	@for v in $(VERSIONS); do harness/debian-series.sh $$v || exit 1; done

check-debian-build:
	@for v in $(VERSIONS); do harness/debian-series.sh --build $$v || exit 1; done

# CPython's own regression suite (python -m test) run twice on the patched
# interpreter, without and with PYTHONCDS=<archive of all of Lib/>; fails when
# the sets of failing tests differ (harness/regrtest.sh, docs/RELIABILITY.md).
# regrtest-X.Y: the CI subset, a few minutes; regrtest-full-X.Y: everything.
# (For regrtest-full-X.Y make picks the rule with the shorter stem.)
regrtest-full-%: python-%-cds
	harness/regrtest.sh $* full

regrtest-%: python-%-cds
	harness/regrtest.sh $*
