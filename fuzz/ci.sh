#!/usr/bin/env bash
# Bounded fuzzing run, for CI and `just fuzz`: builds the cargo-fuzz targets
# and runs each for FUZZ_SECONDS (default 15) from the committed seeds, two
# targets at a time (FUZZ_JOBS). A panic, a failed assertion or a 5xx in any
# target fails the run, and libFuzzer leaves the input in
# fuzz/artifacts/<target>/.
#
# Runs on the stable toolchain: without a sanitizer (`--sanitizer none`)
# cargo-fuzz needs no -Z flag, and libFuzzer's coverage instrumentation
# (-Cpasses=sancov-module) is a stable codegen option. cargo-fuzz comes from
# scripts/reliability-tools.sh.
#
# FUZZ_BUILD picks the build: `dev` (default, what CI runs) is unoptimised,
# about 2.5 min of build from nothing on 2 cores, and runs 8-25x fewer
# inputs per second than `release`, which takes about 3.5 min to build and
# suits longer local runs (FUZZ_BUILD=release FUZZ_SECONDS=600 just fuzz).
# Each keeps its own directory under fuzz/target/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-15}
jobs=${FUZZ_JOBS:-2}
case ${FUZZ_BUILD:-dev} in
dev) build=(--dev) ;;
release) build=(--release) ;;
*) echo "fuzz: FUZZ_BUILD must be dev or release" >&2; exit 2 ;;
esac
source scripts/reliability-tools.sh
# libfuzzer-sys compiles libFuzzer, which is C++.
if ! command -v c++ >/dev/null; then
    echo "fuzz: installing Debian's g++ (libFuzzer is C++)"
    bash scripts/apt-install.sh g++
fi

# No sanitizer: the targets and the service are safe Rust, so AddressSanitizer
# would only slow the run down; cargo-fuzz keeps debug assertions (overflow
# checks) on. cargo-fuzz compiles a release build as one codegen unit; 16
# (appended to its flags, so they win) build in 3.5 instead of 5.5 min on two
# cores, and libFuzzer still loads as many PC-table entries as counters.
if [ "${FUZZ_BUILD:-dev}" = release ]; then
    export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-Ccodegen-units=16"
fi
fuzz() { cargo fuzz "$1" --sanitizer none "${build[@]}" "${@:2}"; }

cd fuzz
echo "fuzz: building the targets (${FUZZ_BUILD:-dev}, $(rustc --version))"
fuzz build
mkdir -p artifacts

run_target() {
    local target=$1 log="artifacts/$1.log"
    mkdir -p "corpus/$target"
    cp -n seeds/"$target"/* "corpus/$target/" 2>/dev/null || true
    if ! fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "fuzz: $target FAILED; the input is in fuzz/artifacts/$target/"
        return 1
    fi
    echo "fuzz: $target ran ${seconds}s: $(grep -E '^Done [0-9]+ runs' "$log" || echo "no summary, see fuzz/$log")"
}

failed=0
running=0
for target in $(cargo fuzz list); do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    echo "fuzz: $target for ${seconds}s"
    run_target "$target" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done
if [ "$failed" -ne 0 ]; then
    echo "fuzz: FAILED (see above)"
    exit 1
fi
echo "fuzz: all targets ran ${seconds}s each without a failure"
