#!/usr/bin/env bash
# cargo-deny with the committed deny.toml. Arguments: the checks to run
# (default: licenses bans sources). cargo-deny comes from
# scripts/reliability-tools.sh.
#
# `advisories` fetches the RustSec database from GitHub, which CI here cannot
# reach; docs/security.md says how that check is run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/reliability-tools.sh
if [ "$#" -eq 0 ]; then
    set -- licenses bans sources
fi
# Duplicate versions are warnings only; errors are what fail the check.
cargo-deny --log-level error check --show-stats "$@"
