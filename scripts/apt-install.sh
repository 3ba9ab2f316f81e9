#!/usr/bin/env bash
# Installs Debian packages for the CI and tool scripts, quietly and without
# questions: `bash scripts/apt-install.sh [apt-get install options] PACKAGE...`.
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
