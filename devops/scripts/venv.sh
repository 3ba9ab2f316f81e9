#!/usr/bin/env bash
# Create or refresh the deploy tooling venv (.venv-devops at the repository
# root) from devops/requirements.txt; print its path. Does nothing when the
# venv already matches the requirements.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${DEVOPS_VENV:-$root/.venv-devops}
req=$root/devops/requirements.txt
stamp=$venv/.requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req" >&2
    echo "$want" >"$stamp"
fi
echo "$venv"
