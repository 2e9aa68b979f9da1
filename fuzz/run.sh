#!/usr/bin/env bash
# Runs each fuzz target of the archive reader for SECONDS (default 60), one
# libFuzzer process at a time, and prints how many inputs each executed.
#
#   fuzz/run.sh [SECONDS] [TARGET...]      (make fuzz FUZZ_SECONDS=...)
#
# cargo-fuzz needs nightly-only rustc flags (-Zsanitizer=address, ...); on a
# stable toolchain RUSTC_BOOTSTRAP=1 unlocks them. cargo-fuzz itself is
# installed from crates.io on first use. Corpora live in fuzz/corpus/TARGET
# (kept between runs, not committed), crashes in fuzz/artifacts/TARGET, logs
# in fuzz/target/logs. Exits 1 if any target crashed, 2 if they do not build.
set -euo pipefail

cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(archive_reader mutated_archive)
# Extra libFuzzer flags, e.g. FUZZ_FLAGS="-seed=1".
FUZZ_FLAGS=${FUZZ_FLAGS:-}

export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

# Seed corpus of archive_reader: valid archives from the builder. (The
# mutated_archive input describes an archive, so it starts from nothing.)
cargo run --quiet --example gen_seeds -- corpus/archive_reader

mkdir -p target/logs
# Build the targets first, so that a build failure is not taken for a crash.
if ! cargo fuzz build >target/logs/build.log 2>&1; then
    tail -n 40 target/logs/build.log >&2
    echo "fuzz: building the targets failed (fuzz/target/logs/build.log)" >&2
    exit 2
fi
status=0
summary=()
for t in "${TARGETS[@]}"; do
    case $t in
    archive_reader) max_len=32768 ;;
    *) max_len=4096 ;;
    esac
    mkdir -p "corpus/$t"
    log=target/logs/$t.log
    echo "fuzz: $t for ${SECONDS_EACH}s (log: fuzz/$log)" >&2
    rc=0
    # shellcheck disable=SC2086
    cargo fuzz run "$t" -- -max_total_time="$SECONDS_EACH" -max_len="$max_len" \
        -timeout=10 -print_final_stats=1 $FUZZ_FLAGS >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*\(DONE\|pulse\|NEW\|REDUCE\).*/\1/p' "$log" | tail -n 1)
    files=$(find "corpus/$t" -type f | wc -l)
    kib=$(du -sk --apparent-size "corpus/$t" | cut -f1)
    if [ "$rc" -ne 0 ]; then
        status=1
        verdict="CRASHED (exit $rc): see fuzz/$log and fuzz/artifacts/$t/"
        grep -E "panicked at|SUMMARY|Test unit written" "$log" >&2 || tail -n 30 "$log" >&2
    else
        verdict="no crashes"
    fi
    summary+=("fuzz: $t: ${execs:-?} executions in ${SECONDS_EACH}s, corpus $files files (${kib} KiB), $verdict")
done
printf '%s\n' "${summary[@]}"
exit $status
