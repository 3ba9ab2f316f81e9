#!/usr/bin/env bash
# Print the revision being deployed as JSON:
#   {"sha": "<HEAD>", "dirty": false, "diff_hash": ""}
# dirty is true when tracked files differ from HEAD; diff_hash then names
# those changes (the first 12 hex digits of the diff's SHA-256), so that the
# same uncommitted state always gets the same image tag.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
sha=$(git rev-parse HEAD)
if [[ -z $(git status --porcelain --untracked-files=no) ]]; then
    printf '{"sha": "%s", "dirty": false, "diff_hash": ""}\n' "$sha"
else
    hash=$(git diff HEAD | sha256sum | cut -c1-12)
    printf '{"sha": "%s", "dirty": true, "diff_hash": "%s"}\n' "$sha" "$hash"
fi
