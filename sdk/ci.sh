#!/usr/bin/env bash
# Spec quality, conformance, client SDKs and Swagger UI, against a live server.
#
#   bash sdk/ci.sh [STEP...]     STEP: spec lint python typescript rust browser conformance
#                                (default: all of them, in that order), or generate
#                                (only write the clients, no server)
#
# Installs what it needs into git-ignored folders of the clone: Python tools
# into .venv-sdk, npm tools into sdk/node_modules; with apt-get, Debian's
# chromium when /usr/bin/chromium is missing and nodejs and npm when `npm` is.
# The server is $BIRTHDAY_BIN, or else target/release/birthday-api, which
# `cargo build --release` first brings up to date; it is started on free
# loopback ports with a fresh data directory and a random write token, and
# always stopped on exit. Generated clients and the browser screenshot go to
# target/sdk/.
#
# Knobs: SCHEMATHESIS_EXAMPLES (examples per operation and phase, default 150),
# SCHEMATHESIS_SEED (default 20260714).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BIN=${BIRTHDAY_BIN:-target/release/birthday-api}
OUT=target/sdk
VENV=.venv-sdk
NODE_BIN=sdk/node_modules/.bin
STEPS=("$@")
started=$SECONDS
[ ${#STEPS[@]} -gt 0 ] || STEPS=(spec lint python typescript rust browser conformance)

log() { printf '\n==> sdk/ci.sh [%3d s]: %s\n' "$((SECONDS - started))" "$*" >&2; }
wants() { local step; for step in "${STEPS[@]}"; do [ "$step" = "$1" ] && return 0; done; return 1; }
wants_any() { local step; for step in "$@"; do wants "$step" && return 0; done; return 1; }

# --- tools -----------------------------------------------------------------

# Reinstalls only when the pinned list changed, so a warm run costs nothing.
install_python_tools() {
  local stamp=$VENV/.requirements.sha256 want
  want=$(sha256sum sdk/requirements.txt | cut -d' ' -f1)
  if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing Python tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r sdk/requirements.txt
  echo "$want" >"$stamp"
}

# node and npm: Debian's when missing. Bookworm's nodejs is 18, older than
# the >= 20 that playwright-core and a few other pinned tools declare.
install_node() {
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    log "installing Debian's nodejs and npm"
    bash scripts/apt-install.sh nodejs npm
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    log "WARNING: node $(node --version) is older than 20, which the pinned npm tools declare"
  fi
}

install_node_tools() {
  local stamp=sdk/node_modules/.package-lock.sha256 want
  install_node
  want=$(sha256sum sdk/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then return; fi
  log "installing npm tools into sdk/node_modules"
  # --ignore-scripts: no dependency needs an install script, and one of them
  # only phones home.
  (cd sdk && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  echo "$want" >"$stamp"
}

install_chromium() {
  [ -x /usr/bin/chromium ] && return
  log "installing Debian's chromium"
  bash scripts/apt-install.sh chromium
}

wants_any lint generate python conformance && install_python_tools
wants_any lint generate typescript browser && install_node_tools
wants browser && install_chromium
export PATH="$ROOT/$VENV/bin:$PATH"

# Always built (a no-op when up to date), so that a stale binary is never
# tested; a BIRTHDAY_BIN the caller names is used as it is.
if wants_any spec python typescript rust browser conformance; then
  if [ -n "${BIRTHDAY_BIN:-}" ]; then
    [ -x "$BIN" ] || { echo "BIRTHDAY_BIN=$BIN is not an executable file" >&2; exit 1; }
  else
    log "building $BIN (cargo build --release)"
    nice cargo build --release --locked --bin birthday-api
  fi
fi

# --- the document itself ---------------------------------------------------

if wants spec; then
  log "openapi/ matches what the server serves ($BIN spec)"
  diff -u openapi/openapi.json <("$BIN" spec --format json)
  diff -u openapi/openapi.yaml <("$BIN" spec --format yaml)
fi

if wants lint; then
  log "spectral (spectral:oas, warnings fail) and openapi-spec-validator"
  "$NODE_BIN/spectral" lint --ruleset .spectral.yaml --fail-severity=warn \
    openapi/openapi.json openapi/openapi.yaml
  openapi-spec-validator openapi/openapi.json openapi/openapi.yaml
fi

# --- a live server ---------------------------------------------------------

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

SERVER_PID=
DATA_DIR=
stop_server() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true; fi
  SERVER_PID=
  if [ -n "$DATA_DIR" ]; then rm -rf "$DATA_DIR"; fi
  DATA_DIR=
}
trap stop_server EXIT

# Starts a fresh server (empty store) and exports its address and token.
start_server() {
  stop_server
  local port admin
  port=$(free_port)
  admin=$(free_port)
  DATA_DIR=$(mktemp -d)
  mkdir -p "$OUT"
  BIRTHDAY_API_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  export BIRTHDAY_API_TOKEN BIRTHDAY_API_URL="http://127.0.0.1:$port"
  ADMIN_URL="http://127.0.0.1:$admin"
  BIRTHDAY_WRITE_TOKEN=$BIRTHDAY_API_TOKEN RUST_LOG=${RUST_LOG:-warn} "$BIN" serve \
    --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" --data-dir "$DATA_DIR" \
    2>>"$OUT/server.log" &
  SERVER_PID=$!
  local tries
  for tries in $(seq 100); do
    if curl -fsS -o /dev/null "$ADMIN_URL/readyz" 2>/dev/null; then return; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "the server exited; see $OUT/server.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "the server was not ready after 10 s; see $OUT/server.log" >&2
  exit 1
}

if wants_any python typescript rust browser conformance; then
  start_server
fi

# --- client SDKs -----------------------------------------------------------

generate_python() {
  rm -rf "$OUT/python"
  mkdir -p "$OUT/python"
  openapi-python-client generate --path openapi/openapi.json --meta none \
    --output-path "$OUT/python/birthday_api_client"
}

generate_typescript() {
  rm -rf "$OUT/typescript"
  "$NODE_BIN/openapi-typescript" openapi/openapi.json --output "$OUT/typescript/schema.d.ts"
}

if wants generate; then
  log "generating the clients from openapi/openapi.json into $OUT/ (Rust: progenitor in sdk/rust/build.rs)"
  generate_python
  generate_typescript
  cargo build -q --locked -p birthday-api-client
  echo "Python: $OUT/python/birthday_api_client  TypeScript: $OUT/typescript/schema.d.ts  Rust: crate birthday-api-client (sdk/rust)"
fi

if wants python; then
  log "Python client (openapi-python-client) against $BIRTHDAY_API_URL"
  generate_python
  PYTHONPATH="$OUT/python" python -m pytest -q -p no:cacheprovider sdk/python
fi

if wants typescript; then
  log "TypeScript client (openapi-typescript + openapi-fetch) against $BIRTHDAY_API_URL"
  generate_typescript
  rm -rf sdk/typescript/out
  "$NODE_BIN/tsc" -p sdk/typescript
  node --test sdk/typescript/out/
fi

if wants rust; then
  log "Rust client (progenitor) against $BIRTHDAY_API_URL"
  cargo run -q --locked -p birthday-api-client --example drive
fi

if wants browser; then
  log "Swagger UI in chromium (playwright-core) against $BIRTHDAY_API_URL"
  mkdir -p "$OUT"
  node --test sdk/browser/
fi

# --- conformance -----------------------------------------------------------

if wants conformance; then
  start_server
  log "schemathesis against $BIRTHDAY_API_URL"
  rm -rf "$OUT/schemathesis"
  mkdir -p "$OUT/schemathesis"
  # Run inside target/ because schemathesis keeps a crash cache in
  # ./.schemathesis; with no example database either, the seed alone decides
  # what is sent. Hypothesis' health checks are off: they judge how fast
  # examples are generated, which a loaded CI machine cannot promise.
  (cd "$OUT/schemathesis" && schemathesis run "$ROOT/openapi/openapi.json" \
    --url "$BIRTHDAY_API_URL" \
    --header "Authorization: Bearer $BIRTHDAY_API_TOKEN" \
    --checks all \
    --exclude-checks positive_data_acceptance \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-150}" \
    --seed "${SCHEMATHESIS_SEED:-20260714}" \
    --suppress-health-check all \
    --generation-database none \
    --no-color \
    --report junit --report-dir .)
  # The server's own request counter, so the total includes every request
  # of the stateful phase.
  requests=$(curl -fsS "$ADMIN_URL/metrics" | python3 -c '
import re, sys
print(sum(float(m.group(2)) for m in re.finditer(r"^http_requests_total\{(.*)\} (\S+)$", sys.stdin.read(), re.M)
          if not re.search(r"route=\"/(healthz|readyz|metrics)\"", m.group(1))))')
  echo "schemathesis sent ${requests%.*} requests to the public port"
  if [ "${requests%.*}" -lt 1000 ]; then
    echo "fewer than 1000 requests: raise SCHEMATHESIS_EXAMPLES" >&2
    exit 1
  fi
fi

log "passed: ${STEPS[*]} in $((SECONDS - started)) s"
