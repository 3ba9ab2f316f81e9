#!/usr/bin/env bash
# The reliability checks that are not plain `cargo test` (issue 7), for
# .ci/run: cargo-deny (licenses, bans, sources), a short soak, and a bounded
# fuzzing run. The crash-loop, hostile-HTTP and
# disk-full tests are integration tests and run with `cargo test`.
#
# The soak runs the binary named by BIRTHDAY_BIN (.ci/run sets it to the
# musl release build, the one that ships) or else target/debug/birthday-api,
# built first.
# SOAK_SECONDS (default 60) and FUZZ_SECONDS (default 15 per target) bound it.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n--- reliability: %s (%ss)\n' "$*" "$SECONDS"; }

step "cargo deny check licenses bans sources"
bash scripts/deny.sh licenses bans sources

# Without BIRTHDAY_BIN the debug build is always brought up to date (a no-op
# when it is), so that a stale binary is never soaked.
if [ -n "${BIRTHDAY_BIN:-}" ]; then
    binary=$BIRTHDAY_BIN
    [ -x "$binary" ] || { echo "BIRTHDAY_BIN=$binary is not an executable file" >&2; exit 1; }
else
    binary=target/debug/birthday-api
    cargo build --locked --bin birthday-api
fi
step "soak, ${SOAK_SECONDS:-60}s on $binary"
python3 scripts/soak/soak.py --binary "$binary" \
    --duration "${SOAK_SECONDS:-60}" --interval 3 --keys 20000 --cache-mb 1 --out target/soak

# FUZZ_SECONDS=0 skips fuzzing, and with it the build of the instrumented
# targets (about 2.5 minutes from nothing), when the CI budget is tight.
if [ "${FUZZ_SECONDS:-15}" -gt 0 ]; then
    step "fuzzing, ${FUZZ_SECONDS:-15}s per target"
    bash fuzz/ci.sh
else
    step "fuzzing SKIPPED (FUZZ_SECONDS=0)"
fi

step "done"
