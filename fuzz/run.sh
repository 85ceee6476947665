#!/usr/bin/env bash
# Run the cargo-fuzz targets for a bounded time each (see README.md).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz (crates.io) if missing, builds with the installed
# nightly toolchain, copies the committed seeds (fuzz/seeds/<target>/) into
# the working corpus (fuzz/corpus/<target>/, not committed), runs each
# target for SECONDS (default 60) and prints per-target executions and
# coverage. Exits non-zero if any target crashed, leaked, timed out or ran
# out of memory; the input is in fuzz/artifacts/<target>/.
#
# Environment: FUZZ_NICE (default 10) niceness of the fuzzers;
# FUZZ_SANITIZER (default none: the crates forbid unsafe code, and
# AddressSanitizer costs the RSA-heavy VTS targets most of their speed;
# "address" to check the dependencies' unsafe code too);
# FUZZ_ARGS extra libFuzzer flags (e.g. "-rss_limit_mb=4096").
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "run.sh: no nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
failed=()
summary=()
san="${FUZZ_SANITIZER:-none}"
for t in "${targets[@]}"; do
    # One target directory per sanitizer: switching does not rebuild all.
    cargo +nightly fuzz build -O -s "$san" --target-dir "target/$san" "$t"
    mkdir -p "corpus/$t" "artifacts/$t"
    if [ -d "seeds/$t" ]; then
        cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true
    fi
    echo "=== $t: ${seconds}s"
    log="$logs/$t.log"
    set +e
    # -timeout: one input taking 10 s counts as a hang (a failure).
    nice -n "${FUZZ_NICE:-10}" cargo +nightly fuzz run -O -s "$san" --target-dir "target/$san" "$t" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
        ${FUZZ_ARGS:-} >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    line="$t: executions=${execs:-?} seconds=$seconds cov=${cov:-?} ft=${ft:-?} corpus=${corp:-?}"
    if [ "$rc" -ne 0 ]; then
        line="$line FAILED (exit $rc)"
        failed+=("$t")
        grep -E 'ERROR: libFuzzer|panicked at|SUMMARY|Test unit written' "$log" | head -n 20 || true
    fi
    echo "$line"
    summary+=("$line")
done

echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run.sh: failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
