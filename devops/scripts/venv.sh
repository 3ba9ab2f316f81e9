#!/usr/bin/env bash
# Create or reuse the deploy tooling venv for devops/requirements.txt and
# print its path: .venv-devops in the repository (git-ignored by /.venv*), or
# $DEVOPS_VENV when set (e.g. a directory that several clones share). It is
# rebuilt when the requirement lines change: their hash is kept in the venv's
# .complete file, written only after pip succeeded.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
req=$root/devops/requirements.txt
# Keyed by the requirement lines only: editing a comment keeps the venv.
want=$(grep -v '^[[:space:]]*\(#\|$\)' "$req" | sha256sum | cut -c1-16)
venv=${DEVOPS_VENV:-$root/.venv-devops}
if [[ "$(cat "$venv/.complete" 2>/dev/null)" != "$want" ]]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    # --no-compile: byte-compiling every bundled collection costs more than
    # compiling the few modules a run imports.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile -r "$req" >&2
    echo "$want" >"$venv/.complete"
fi
echo "$venv"
