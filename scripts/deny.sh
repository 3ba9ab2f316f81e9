#!/usr/bin/env bash
# cargo-deny with the committed deny.toml. Arguments: the checks to run
# (default: licenses bans sources). Installs cargo-deny into .tools/cargo
# (git-ignored) when it is missing; that compile takes 5-10 minutes once.
#
# `advisories` fetches the RustSec database from GitHub, which CI here cannot
# reach; docs/security.md says how that check is run instead.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deny="$root/.tools/cargo/bin/cargo-deny"
if ! [ -x "$deny" ]; then
    cargo install cargo-deny --locked --version 0.20.2 --root "$root/.tools/cargo"
fi
if [ "$#" -eq 0 ]; then
    set -- licenses bans sources
fi
# Duplicate versions are warnings only; errors are what fail the check.
"$deny" --log-level error check --show-stats "$@"
