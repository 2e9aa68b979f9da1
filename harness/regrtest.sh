#!/usr/bin/env bash
# CPython's own regression suite (`python -m test`) with and without cds:
#
#   harness/regrtest.sh 3.11           the CI subset (REGRTEST_SUBSET below)
#   harness/regrtest.sh 3.11 full      the whole suite
#   harness/regrtest.sh 3.11 test_json test_gc ...   just these tests
#
# (`make regrtest-3.11` / `make regrtest-full-3.11` build the interpreter first.)
#
# 1. archive: every module of the tree's Lib/ (the test package included:
#    the suite imports test.support, test.libregrtest and the test modules
#    themselves, so they are served too), listed as `name<TAB>path` and dumped
#    once into stdlib.img. Modules that do not compile (the suite's bad-syntax
#    fixtures) are skipped by the dump. Cached under $CDS_CACHE/regrtest/,
#    keyed by the interpreter binary (sha256) and the module listing.
# 2. runs: `python -m test -jN --timeout T --junit-xml NAME.xml TESTS` twice
#    from a snapshot of the build tree, once with no cds setting, once with
#    PYTHONCDS=stdlib.img exported (so the regrtest main process, every
#    worker and every child a test spawns serve from it; checked before the
#    run). Each test file's outcome (passed, failed, error, skipped, crashed,
#    timed out, ...) is read from the JUnit report by
#    harness/regrtest_outcomes.py, not from regrtest's human summary, into
#    NAME.sum.
# 3. compare: the sets of failed test files (failures, errors, crashes,
#    timeouts and files without any result all count as failed) must be
#    equal. A test file that differs is run again, alone, in both modes, with
#    the shorter REGRTEST_RERUN_TIMEOUT (so a hang costs minutes); a
#    difference that does not reproduce is reported as flaky and does not
#    fail the comparison. Differences in "env changed" / skipped / "ran no
#    tests" are printed as warnings.
#
# Exit status: 0 when the failing sets are equal, 1 when they differ, 2 on a
# setup error. Logs, JUnit reports and per-run outcomes go to $REGRTEST_OUT
# (default build/regrtest-X.Y[-full]/).
#
# Environment: REGRTEST_JOBS (2), REGRTEST_TIMEOUT (per test file: 240 s for
# the subset or given tests, 900 s for the full suite), REGRTEST_RERUN_TIMEOUT
# (per test file re-run alone: 120 s), REGRTEST_ARGS (extra arguments to
# every run, e.g. -uall,-network), REGRTEST_OUT, CDS_CACHE.
set -euo pipefail

die() { echo "regrtest.sh: error: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: harness/regrtest.sh VERSION [full | TEST...]"
ver=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
link=$root/build/python-$ver-cds
[ -x "$link/python" ] || die "$link/python is not built; run: make python-$ver-cds"
src=$(readlink -f "$link")

# The CI subset: the modules that know most about code objects, imports and
# module metadata (json .. doctest: the issue's list), plus what exercises
# the same paths from other angles (compile, module, sys, types, functools,
# dataclasses, typing, enum, zipimport, site, cmd_line_script, import,
# marshal, ast, linecache, tokenize, subprocess startup, reprlib, abc,
# contextlib, copy, collections). Kept to a few minutes for both runs on two
# cores; docs/RELIABILITY.md has the measured time.
REGRTEST_SUBSET="test_json test_inspect test_traceback test_dis test_code
test_importlib test_pkgutil test_runpy test_pickle test_gc test_weakref
test_threading test_unittest test_doctest test_compile test_module test_sys
test_types test_functools test_dataclasses test_typing test_enum
test_zipimport test_site test_cmd_line_script test_import test_marshal
test_ast test_linecache test_warnings test_abc test_contextlib test_copy
test_collections test_reprlib test_argparse test_logging test_pdb
test_modulefinder test_pyclbr test_frame test_sys_settrace test_pydoc
test_embed test_cmd_line test_compileall test_py_compile test_source_encoding
test_trace test_profile test_cprofile test_zipimport_support test_coroutines
test_generators test_exceptions test_bdb test_code_module test_sysconfig
test_venv test_tracemalloc test_faulthandler test_peepholer
test_opcache test_copyreg test_string test_textwrap test_tempfile"

mode=subset
tests=()
if [ $# -eq 1 ] && [ "$1" = full ]; then
  mode=full
elif [ $# -ge 1 ]; then
  mode=selected; tests=("$@")
else
  read -r -a tests <<<"$(echo $REGRTEST_SUBSET)"
fi

jobs=${REGRTEST_JOBS:-2}
# A test file of the subset takes well under a minute on two cores; one
# that hangs (3.13's test_threading, 3.11's test_logging have, on fresh
# machines) should cost minutes, not regrtest's quarter of an hour per run.
# The full suite has legitimately slow files (test_concurrent_futures, ...).
default_timeout=240; [ "$mode" = full ] && default_timeout=900
timeout=${REGRTEST_TIMEOUT:-$default_timeout}
rerun_timeout=${REGRTEST_RERUN_TIMEOUT:-120}
extra=(${REGRTEST_ARGS:-})
suffix=; [ "$mode" = full ] && suffix=-full
out=${REGRTEST_OUT:-$root/build/regrtest-$ver$suffix}
cache=${CDS_CACHE:-$HOME/.cache/cds}/regrtest
mkdir -p "$out" "$cache"

# The suite runs on a snapshot of the build tree: copies of the interpreter
# binary and of Lib/ (with its .pyc files; cp -a keeps the mtimes they are
# checked against) next to symlinks to everything else (build/, Modules/,
# Include/, ...). The copy finds its stdlib exactly as the tree's own python
# does (pybuilddir.txt). A rebuild of the tree while the suite runs (make
# python-X.Y-cds from another shell; the full suite takes long) then neither
# changes the interpreter under the runs nor makes the archive foreign to it.
# Lib/ is copied, not linked, because tests compare realpath()s of module
# files with their __file__ (unittest discovery, pdb, compileall).
tree=$out/tree
rm -rf "$tree"; mkdir -p "$tree"
for e in "$src"/*; do
  case ${e##*/} in python|Lib|Programs) ;; *) ln -s "$e" "$tree/" ;; esac
done
cp -p "$src/python" "$tree/python"
cp -a "$src/Lib" "$tree/Lib"
# Programs/_testembed (test_embed) links the same core as python: copied
# with it, so the two binaries always carry the same build id.
mkdir -p "$tree/Programs"
for e in "$src"/Programs/*; do
  case ${e##*/} in _testembed) cp -p "$e" "$tree/Programs/" ;; *) ln -s "$e" "$tree/Programs/" ;; esac
done
py=$tree/python

# No inherited cds settings (the baseline really is plain CPython) and no
# inherited PYTHON* settings at all: the suite expects a clean environment
# (PYTHONUNBUFFERED fails test_cmd_line, PYTHONDONTWRITEBYTECODE changes
# what test_compileall and test_import see), as on CPython's own CI.
unset PYCDSMODE PYCDSLIST PYCDSARCHIVE
for v in $(compgen -e); do case $v in PYTHON*) unset "$v" ;; esac; done

# ---- 1. the stdlib archive ------------------------------------------------
list=$out/stdlib.lst
"$py" -I -S - "$tree/Lib" >"$list" <<'EOF'
import os, sys
lib = sys.argv[1]
def walk(d, prefix):
    for e in sorted(os.listdir(d)):
        p = os.path.join(d, e)
        if os.path.isdir(p):
            if e in ("site-packages", "__pycache__") or not e.isidentifier():
                continue
            init = os.path.join(p, "__init__.py")
            if os.path.isfile(init):        # regular packages only
                print(f"{prefix}{e}\t{init}")
                walk(p, f"{prefix}{e}.")
        elif e.endswith(".py") and e != "__init__.py" and e[:-3].isidentifier():
            print(f"{prefix}{e[:-3]}\t{p}")
walk(lib, "")
EOF
key=$( { sha256sum "$py" | cut -d' ' -f1; sha256sum "$list"; } | sha256sum | cut -c1-16)
tag=${out##*/}
img=$cache/stdlib-$tag-$key.img
if [ -s "$img" ]; then
  echo "== archive: $img (cached, $(wc -l <"$list") modules listed)"
else
  echo "== archive: dumping $(wc -l <"$list") modules of $tree/Lib"
  (cd "$tree" && env -u PYTHONDONTWRITEBYTECODE "$py" -m cds dump "$list" "$img.tmp" 2>"$out/dump-skipped.txt") \
    || { cat "$out/dump-skipped.txt" >&2; die "dump failed"; }
  mv "$img.tmp" "$img"
  # This output dir's archives of earlier builds are of no further use.
  find "$cache" -maxdepth 1 -name "stdlib-$tag-*.img" ! -path "$img" -delete
  echo "   $(grep -c '^cds: skipped' "$out/dump-skipped.txt" || true) skipped (see $out/dump-skipped.txt)"
fi
ls -l "$img" | awk '{print "   " $5 " bytes"}'
# Some tests run children as another user (test_subprocess: user=nobody);
# the cache may sit in a private home directory, so the runs use a
# world-readable copy in the (build/) output directory.
cp -p "$img" "$out/stdlib.img"
chmod a+r "$out/stdlib.img"
img=$out/stdlib.img

# Does a grandchild of a process started with PYTHONCDS serve from it?
probe='import subprocess, sys
code = "import json, test.support, cds; s = cds.stats(); print(len(s[\"served\"]), \"json\" in s[\"served\"], \"test.support\" in s[\"served\"], len(s[\"rejected\"]))"
print(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())'
read -r n_served json_ok support_ok n_rejected < <(cd "$tree" && PYTHONCDS=$img PYTHONCDSMODE=on "$py" -c "$probe")
[ "$json_ok" = True ] && [ "$support_ok" = True ] && [ "$n_rejected" = 0 ] \
  || die "a child under PYTHONCDS=$img does not serve json/test.support (served $n_served, rejected $n_rejected)"
echo "   check: a grandchild under PYTHONCDS serves $n_served modules (json, test.support among them), rejects none"

# ---- 2. the two runs --------------------------------------------------------
# The whole suite, as regrtest itself lists it (3.13 splits test_asyncio
# and others into their modules): the test files a run without names runs.
if [ "$mode" = full ]; then
  (cd "$tree" && "$py" -m test --list-tests "${extra[@]}") >"$out/suite.txt" \
    || die "python -m test --list-tests failed"
fi

# NAME OUTCOME: the test files of run NAME with that outcome (see
# harness/regrtest_outcomes.py); "failed" stands for every failing outcome:
# failures, errors, crashes, timeouts and test files without a result.
set_of() {
  if [ "$2" = failed ]; then
    awk -F'\t' '$1 ~ /^(failed|error|crashed|timed_out|no_result)$/ {print $2}' "$out/$1.sum"
  else
    awk -F'\t' -v c="$2" '$1==c{print $2}' "$out/$1.sum"
  fi | sort -u
}
count() { set_of "$1" "$2" | wc -l; }
outcome_of() { awk -F'\t' -v t="$2" '$2==t && $1!="env_changed" {print $1; exit}' "$out/$1.sum"; }  # NAME TEST

# run NAME TIMEOUT [env assignments...] -- TEST...: writes $out/NAME.log, the
# JUnit report $out/NAME.xml and the outcomes $out/NAME.sum.
run() {
  local name=$1 secs=$2; shift 2
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done; shift
  local t0=$SECONDS rc=0
  rm -f "$out/$name.xml"
  (cd "$tree" && env "${envs[@]}" "$py" -m test -j"$jobs" --timeout "$secs" --junit-xml "$out/$name.xml" \
    "${extra[@]}" "$@") >"$out/$name.log" 2>&1 || rc=$?
  # 0: all passed; 2: a test failed; 3: env changed; 4: no tests ran; 5: a
  # re-run failed (3.13). Anything else (130: interrupted, a traceback of
  # regrtest itself, killed) leaves no trustworthy result.
  case $rc in 0|2|3|4|5) ;; *) tail -n 20 "$out/$name.log" >&2; die "$name: python -m test exited $rc (see $out/$name.log)" ;; esac
  if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cat "$out/suite.txt"; fi >"$out/$name.tests"
  "$py" -I -S "$root/harness/regrtest_outcomes.py" "$out/$name.tests" "$out/$name.xml" "$out/$name.log" >"$out/$name.sum" \
    || die "$name: cannot read the results of $out/$name.log"
  # An archive unusable for the interpreter (a foreign build): every process
  # warns and imports normally, and tests that check stderr fail. That is no
  # cds result.
  ! grep -q '^cds: warning: cannot use archive' "$out/$name.log" \
    || die "$name: processes could not use the archive: $(grep -m1 '^cds: warning' "$out/$name.log")"
  echo "$name: exit $rc, $((SECONDS - t0)) s: $(count "$name" passed) passed, $(count "$name" failed) failed" \
    "($(count "$name" timed_out) timed out, $(count "$name" crashed) crashed, $(count "$name" no_result) without result)," \
    "$(count "$name" skipped) skipped, $(count "$name" no_tests) ran no tests"
}

what="${#tests[@]} tests"; [ "$mode" = full ] && what="the full suite"
echo "== python -m test -j$jobs --timeout $timeout ${extra[*]:-} ($what) in $tree"
run nocds "$timeout" -- "${tests[@]}"
run cds "$timeout" PYTHONCDS="$img" -- "${tests[@]}"

# ---- 3. compare ---------------------------------------------------------------
status=0
differs() {  # OUTCOME: prints "only with cds|only without|in both" (space-separated test files)
  local a b
  a=$(set_of nocds "$1"); b=$(set_of cds "$1")
  echo "$(comm -13 <(echo "$a") <(echo "$b") | xargs)|$(comm -23 <(echo "$a") <(echo "$b") | xargs)|$(comm -12 <(echo "$a") <(echo "$b") | xargs)"
}
IFS='|' read -r only_cds only_nocds both < <(differs failed)
echo "failed in both runs: ${both:-none}"
for t in $both; do
  echo "   $t: $(outcome_of nocds "$t") without cds, $(outcome_of cds "$t") with cds"
done
if [ -n "$only_cds$only_nocds" ]; then
  echo "failed only with cds: ${only_cds:-none}; only without: ${only_nocds:-none}"
  echo "== re-running the differing tests alone, in both modes (--timeout $rerun_timeout)"
  for t in $only_cds $only_nocds; do
    run "nocds-$t" "$rerun_timeout" -- "$t" >/dev/null; run "cds-$t" "$rerun_timeout" PYTHONCDS="$img" -- "$t" >/dev/null
    a=$(outcome_of "nocds-$t" "$t"); b=$(outcome_of "cds-$t" "$t")
    if [ "$(count "nocds-$t" failed)" = "$(count "cds-$t" failed)" ]; then
      echo "   $t: same result alone ($a without cds, $b with cds) -> flaky, not counted"
    else
      echo "   $t: DIFFERS alone ($a without cds, $b with cds); logs: $out/nocds-$t.log $out/cds-$t.log"
      status=1
    fi
  done
fi
for outcome in env_changed skipped no_tests; do
  IFS='|' read -r only_cds only_nocds both < <(differs "$outcome")
  [ -z "$only_cds$only_nocds" ] || echo "warning: $outcome differs: only with cds: ${only_cds:-none}; only without: ${only_nocds:-none}"
done
if [ $status = 0 ]; then
  echo "== regrtest $ver ($mode): the failing sets are equal"
else
  echo "== regrtest $ver ($mode): the failing sets DIFFER"
fi
exit $status
