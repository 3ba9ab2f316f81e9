# birthday-api command runner. `just --list` shows every recipe.
set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# --- build, lint, test -------------------------------------------------------

# Run the service on the embedded sled store.
run *args:
    cargo run --release -- {{args}}

# rustfmt and clippy, warnings are errors.
lint:
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings

# The README's test command (PostgreSQL tests run when TEST_DATABASE_URL is set).
test:
    cargo test

# Everything CI runs, locally.
ci:
    bash .ci/run

# --- OpenAPI document and SDKs (owner: spec/SDK work) --------------------------

# Write openapi/openapi.json and openapi/openapi.yaml from the code.
spec:
    cargo build -q --bin birthday-api
    target/debug/birthday-api spec --format json > openapi/openapi.json
    target/debug/birthday-api spec --format yaml > openapi/openapi.yaml

# Fail when openapi/ differs from what the code generates (fix: just spec).
spec-check:
    cargo build -q --bin birthday-api
    diff -u openapi/openapi.json <(target/debug/birthday-api spec --format json)
    diff -u openapi/openapi.yaml <(target/debug/birthday-api spec --format yaml)

# Spectral (spectral:oas, warnings fail) and openapi-spec-validator on openapi/.
lint-spec:
    bash sdk/ci.sh lint

# Generate the Python and TypeScript clients into target/sdk/ and build the Rust one (sdk/rust).
sdk:
    bash sdk/ci.sh generate

# Spec lint, schemathesis, the three SDK drivers and Swagger UI in chromium, against a release server.
sdk-check:
    bash sdk/ci.sh

# --- benchmarks (owner: benchmark work) -----------------------------------------

# Load benchmark of the service vs the bare-poem baseline (benches/baseline), results into
# docs/benchmarks.md. N users via BENCH_USERS (default 1000000); BENCH_QUICK=1 for a smoke run.
# Other knobs: see benches/load/bench.py.
bench:
    python3 benches/load/bench.py

# Quick smoke run of the load benchmark (small N, short points; writes target/bench/benchmarks-quick.md).
bench-quick:
    BENCH_QUICK=1 python3 benches/load/bench.py

# Instructions per GET and PUT under callgrind: exact and repeatable, unlike wall clock on a
# shared machine (needs valgrind). Profiles stay in target/instructions/.
# INSTR_SERVERS=service,bare-sled also measures bare-sled: the difference is the service's own layers.
bench-instructions:
    python3 benches/load/instructions.py

# Criterion microbenchmarks: birthday arithmetic, username/date parsing, sled get/put.
bench-micro *args:
    nice cargo bench --bench domain --bench store -- {{args}}

# --- reliability (owner: reliability work) ---------------------------------------

# Reliability tests: 20 kill -9 cycles, hostile HTTP clients, full disk (tmpfs needs root).
reliability:
    cargo test --test crash_loop --test hostile_http --test disk_full -- --nocapture

# Soak: mixed load on the release binary for SOAK_SECONDS (default 600), RSS and latency
# over time into docs/soak/ (CSV, JSON, SVG); fails if RSS grows 10 % or more after warm-up.
soak:
    cargo build --release --bin birthday-api
    python3 scripts/soak/soak.py --binary target/release/birthday-api --duration "${SOAK_SECONDS:-600}" --out docs/soak

# Bounded fuzzing of username, date, body and whole-request parsing (stable; FUZZ_SECONDS each, default 15; FUZZ_BUILD=release for long runs).
fuzz:
    bash fuzz/ci.sh

# cargo-deny: advisories, licenses, bans, sources (advisories need GitHub for the RustSec database).
deny:
    bash scripts/deny.sh all

# --- deploy (owner: devops work) --------------------------------------------------

# Deploy to AWS with Ansible: `just deploy env=staging` or `just deploy env=prod` (devops/README.md).
[positional-arguments]
deploy *args:
    bash devops/scripts/deploy.sh "$@"

# Prove the deploy here without AWS: moto, a local registry, buildah and podman (devops/README.md).
deploy-test:
    bash devops/scripts/deploy-test.sh

# Lint the CloudFormation templates and the playbook (cfn-lint; ansible-lint, production profile).
deploy-lint:
    #!/usr/bin/env bash
    set -euo pipefail
    venv=$(devops/scripts/venv.sh)
    "$venv/bin/cfn-lint" devops/cloudformation/*.yml
    "$venv/bin/ansible-lint" devops/ansible

# Build the runtime image locally (CONTAINER_CLI=docker|buildah|podman).
image tag="birthday-api:dev":
    bash devops/scripts/image.sh build {{tag}}
