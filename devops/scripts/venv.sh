#!/usr/bin/env bash
# Create or reuse the deploy tooling venv for devops/requirements.txt and
# print its path. The venv lives outside the work tree, keyed by the
# requirements' hash (DEVOPS_VENV overrides), so that fresh clones on the same
# machine (CI) reuse it: `ansible` alone is tens of thousands of files.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
req=$root/devops/requirements.txt
# Keyed by the requirement lines only: editing a comment keeps the venv.
want=$(grep -v '^[[:space:]]*\(#\|$\)' "$req" | sha256sum | cut -c1-16)
venv=${DEVOPS_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/birthday-api/devops-venv-$want}
if [[ ! -f $venv/.complete ]]; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    # --no-compile: byte-compiling every bundled collection costs more than
    # compiling the few modules a run imports.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-compile -r "$req" >&2
    touch "$venv/.complete"
fi
echo "$venv"
