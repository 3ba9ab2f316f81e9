#!/usr/bin/env bash
# `just deploy env=staging|prod [ansible-playbook options]`: run the deploy
# playbook with the environment's inventory. AWS credentials come from the
# usual places (AWS_PROFILE, environment, SSO); the image is built with
# CONTAINER_CLI (docker by default).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=${1:-}
target=${target#env=}
case $target in
staging | prod) shift ;;
*)
    echo "usage: just deploy env=staging|prod [ansible-playbook options]" >&2
    exit 2
    ;;
esac
venv=$("$root/devops/scripts/venv.sh")
cd "$root/devops/ansible"
exec "$venv/bin/ansible-playbook" -i "inventories/$target" deploy.yml -e "env=$target" "$@"
