#!/usr/bin/env bash
# Bounded fuzzing run, for CI and `just fuzz`: builds the cargo-fuzz targets
# and runs each for FUZZ_SECONDS (default 15) from the committed seeds.
# A panic, a failed assertion or a 5xx in any target fails the run, and
# libFuzzer leaves the input in fuzz/artifacts/<target>/.
#
# Needs the nightly toolchain (libFuzzer's instrumentation); cargo-fuzz
# comes from scripts/reliability-tools.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-15}

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: SKIPPED: no nightly toolchain (rustup toolchain install nightly), which libFuzzer needs"
    exit 0
fi
source scripts/reliability-tools.sh

cd fuzz
# No sanitizer: the targets and the service are safe Rust, so AddressSanitizer
# would only slow the run down; debug assertions (overflow checks) stay on.
cargo +nightly fuzz build --sanitizer none
for target in $(cargo +nightly fuzz list); do
    mkdir -p "corpus/$target"
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
    echo "fuzz: $target for ${seconds}s"
    log="artifacts/$target.log"
    mkdir -p artifacts
    if ! cargo +nightly fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/"
        exit 1
    fi
    grep -E "^Done [0-9]+ runs|^stat::(number_of_executed_units|new_units_added)" "$log" || true
done
echo "fuzz: all targets ran ${seconds}s each without a failure"
