#!/usr/bin/env bash
# `just deploy-test`: prove the deploy without AWS.
#
#  1. installs what it needs (apt: buildah, podman, runc, docker-registry,
#     musl-tools; the pinned Python tools into a venv, see venv.sh) and starts
#     the release build of the static binary in the background;
#  2. lints the templates (cfn-lint) and the playbook (ansible-lint);
#  3. starts moto (AWS APIs) and a container registry, both on 127.0.0.1;
#  4. runs devops/ansible/deploy.yml for staging against moto, building the
#     image with buildah (vfs storage, chroot isolation) and pushing it to the
#     local registry; runs it again and requires changed=0; makes a run fail
#     on purpose and requires the stack events in its output;
#  5. checks the stacks' outputs and what moto holds (check_stacks.py); with a
#     clean work tree, deploys prod once too and checks its shape;
#  6. pulls the image from the registry into a fresh podman store, runs it
#     (runc, cgroupfs), runs the playbook's smoke-test tasks against it, and
#     stops it with SIGTERM, expecting exit code 0.
# Every process it starts is stopped on exit, failed or not.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
scripts=$root/devops/scripts
started=$(date +%s)
work=$(mktemp -d /tmp/birthday-deploy-test.XXXXXX)
pids=()
container=""

log() { printf '\n== deploy-test [%3ds] %s\n' "$(($(date +%s) - started))" "$*"; }
die() { echo "deploy-test: FAILED: $*" >&2; exit 1; }

cleanup() {
    local rc=$?
    set +e
    if [[ -n $container ]]; then
        podman "${podman_args[@]}" rm -f "$container" >/dev/null 2>&1
    fi
    for pid in "${pids[@]}"; do
        # The cargo build runs in a session of its own: stop its whole group.
        if [[ $pid == "${cargo_pid:-}" ]]; then
            kill -- -"$pid" 2>/dev/null
        else
            kill "$pid" 2>/dev/null
        fi
        wait "$pid" 2>/dev/null
    done
    if [[ $rc -ne 0 ]]; then
        echo "deploy-test: logs kept in $work" >&2
        for f in "$work"/*.log; do
            [[ -f $f ]] || continue
            echo "---- tail of $f" >&2
            tail -n 40 "$f" >&2
        done
    else
        # vfs layers are plain directories: unmount anything left, then remove.
        buildah "${storage_args[@]}" rm --all >/dev/null 2>&1
        rm -rf "$work"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL SECONDS
    local i
    for ((i = 0; i < $2 * 5; i++)); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "deploy-test: nothing answered at $1 within $2 s" >&2
    return 1
}

# --- 1. tools -----------------------------------------------------------------
log "tools"
need_apt=()
for pair in buildah:buildah podman:podman runc:runc docker-registry:docker-registry \
    musl-gcc:musl-tools file:file curl:curl; do
    command -v "${pair%%:*}" >/dev/null || need_apt+=("${pair#*:}")
done
[[ -s /etc/ssl/certs/ca-certificates.crt ]] || need_apt+=(ca-certificates)
if ((${#need_apt[@]})); then
    echo "apt-get install ${need_apt[*]}"
    bash "$root/scripts/apt-install.sh" --no-install-recommends "${need_apt[@]}"
fi
# The release build of the static binary is the longest step: start it now,
# beside the tool installation and the linters. The playbook's image build
# runs the same cargo command later and finds it done (or waits for it).
if [[ -z ${BIRTHDAY_BINARY:-} ]]; then
    setsid bash "$scripts/image.sh" binary >"$work/cargo.log" 2>&1 &
    pids+=($!)
    cargo_pid=$!
fi
venv=$("$scripts/venv.sh")
export PATH=$venv/bin:$PATH

# --- 2. lint ------------------------------------------------------------------
log "cfn-lint and ansible-lint"
(cd "$root" && cfn-lint devops/cloudformation/*.yml)
(cd "$root" && ansible-lint --nocolor -q devops/ansible)

# --- 3. moto and registry -----------------------------------------------------
log "start moto and the registry on 127.0.0.1"
moto_port=$(free_port)
python "$scripts/moto_server.py" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
registry_port=$(free_port)
cat >"$work/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$registry_port
YAML
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
# Generous limits: moto imports every service model at start, slowly on a busy machine.
wait_http "http://127.0.0.1:$moto_port/moto-api/" 120 || die "moto did not start"
wait_http "http://127.0.0.1:$registry_port/v2/" 60 || die "the registry did not start"

export AWS_ENDPOINT_URL=http://127.0.0.1:$moto_port
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_DEFAULT_PROFILE

storage_args=(--storage-driver vfs --root "$work/build-store" --runroot "$work/build-run")
podman_args=(--storage-driver vfs --root "$work/run-store" --runroot "$work/run-run"
    --runtime runc --cgroup-manager cgroupfs)
repository=127.0.0.1:$registry_port/birthday-api-staging

# The tag is read once: other work in this tree during the test must not
# change it between the two runs (the playbook derives the same tag itself).
revision=$("$scripts/git-revision.sh")
image_tag=$(python3 -c 'import json, sys; r = json.loads(sys.argv[1]); print(r["sha"] + ("-dirty-" + r["diff_hash"] if r["dirty"] else ""))' "$revision")

cat >"$work/vars.yml" <<YAML
image_tag: $image_tag
container_cli: buildah
image_buildah_args: "${storage_args[*]}"
image_repository_uri: $repository
image_registry_login: none
image_registry_scheme: http
image_registry_tls_verify: false
allow_dirty: true
service_wait_seconds: 60
YAML

playbook() { # LOGFILE ARGS...
    local logfile=$1
    shift
    (cd "$root/devops/ansible" &&
        ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 ansible-playbook -i inventories/staging deploy.yml \
            -e env=staging -e "@$work/vars.yml" "$@") >"$logfile" 2>&1 ||
        { tail -n 60 "$logfile" >&2; die "ansible-playbook $* (log: $logfile)"; }
}

recap() { grep -E '^localhost +:' "$1" | tail -n 1; }

# --- 4. the playbook, twice ---------------------------------------------------
log "deploy staging against moto (first run: builds and pushes the image)"
playbook "$work/deploy-1.log" --skip-tags smoke
recap "$work/deploy-1.log"
log "deploy staging again (must change nothing)"
playbook "$work/deploy-2.log" --skip-tags smoke
recap "$work/deploy-2.log"
recap "$work/deploy-2.log" | grep -qE 'changed=0 .*failed=0' ||
    { grep -E '^(changed|TASK)' "$work/deploy-2.log" | grep -B1 '^changed' >&2; die "second run changed something"; }

log "a failing deploy prints the stack events and fails"
dead_port=$(free_port)
if (cd "$root/devops/ansible" &&
    ANSIBLE_NOCOLOR=1 ansible-playbook -i inventories/staging deploy.yml -e env=staging -e "@$work/vars.yml" \
        --tags smoke -e smoke_wait_retries=1 \
        -e "smoke_base_url=http://127.0.0.1:$dead_port" \
        -e "smoke_health_url=http://127.0.0.1:$dead_port/healthz") >"$work/failing.log" 2>&1; then
    die "the playbook passed a smoke test against a closed port"
fi
grep -q "TASK \[Show the stacks' recent events\]" "$work/failing.log" &&
    grep -q "CREATE_COMPLETE" "$work/failing.log" &&
    grep -q "The deploy failed at 'Wait for /healthz'" "$work/failing.log" ||
    { tail -n 40 "$work/failing.log" >&2; die "the failing run did not report stack events"; }
echo "failed as it should, with the stack events"

# --- 5. what moto holds --------------------------------------------------------
log "check stack outputs"
image=$(python "$scripts/check_stacks.py" --env staging --region eu-west-1 --repository "$repository")
echo "the service runs $image"


# --- 5b. prod, once ---------------------------------------------------------
# Exercises prod's inventory: HTTPS listener and redirect, DNS record, the DR
# backup vault stack in the copy region, Multi-AZ. The playbook refuses to
# deploy prod from a dirty tree (CI's fresh clone is clean).
if [[ $(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["dirty"])' "$revision") == False ]]; then
    sed -e 's/birthday-api-staging/birthday-api-prod/' -e '/^allow_dirty/d' "$work/vars.yml" >"$work/prod-vars.yml"
    log "prod refuses its inventory's placeholder certificate and hosted zone"
    if (cd "$root/devops/ansible" &&
        ANSIBLE_NOCOLOR=1 ansible-playbook -i inventories/prod deploy.yml -e env=prod \
            -e "@$work/prod-vars.yml" --skip-tags smoke) >"$work/deploy-prod-placeholders.log" 2>&1; then
        die "prod deployed with the placeholder certificate and hosted zone"
    fi
    grep -q "placeholder certificate or hosted zone" "$work/deploy-prod-placeholders.log" ||
        { tail -n 40 "$work/deploy-prod-placeholders.log" >&2; die "prod failed, but not at the placeholder check"; }
    echo "refused, as it should"
    log "deploy prod against moto (once)"
    python "$scripts/check_stacks.py" --env prod --region eu-west-1 --prepare >"$work/prod-vars.json"
    (cd "$root/devops/ansible" &&
        ANSIBLE_NOCOLOR=1 ansible-playbook -i inventories/prod deploy.yml -e env=prod \
            -e "@$work/prod-vars.yml" -e "@$work/prod-vars.json" --skip-tags smoke) >"$work/deploy-prod.log" 2>&1 ||
        { tail -n 60 "$work/deploy-prod.log" >&2; die "prod deploy against moto"; }
    recap "$work/deploy-prod.log"
    python "$scripts/check_stacks.py" --env prod --region eu-west-1 \
        --repository "127.0.0.1:$registry_port/birthday-api-prod" >/dev/null
else
    log "prod run skipped: the work tree has uncommitted changes (prod refuses them)"
fi

# --- 6. run the pushed image ---------------------------------------------------
log "pull $image into a fresh store and run it with podman"
api_port=$(free_port)
admin_port=$(free_port)
container=birthday-deploy-test-$$
podman "${podman_args[@]}" pull --quiet --tls-verify=false "$image" >/dev/null
size=$(podman "${podman_args[@]}" image inspect --format '{{.Size}}' "$image")
user=$(podman "${podman_args[@]}" image inspect --format '{{.Config.User}}' "$image")
echo "image size $size bytes ($((size / 1000)) kB, as podman counts it unpacked), user $user"
((size <= 15000000)) || die "image is $size bytes, over 15 MB"
[[ $user == 65532:65532 ]] || die "image user is '$user', not 65532:65532"

# podman's default rlimits exceed what this sandbox may set: use lower ones.
# Read-only root as on ECS; the sled directory is a bind mount owned by the
# image's user.
mkdir -p "$work/data"
chown 65532:65532 "$work/data"
podman "${podman_args[@]}" run -d --name "$container" \
    --ulimit "nofile=4096:4096" --ulimit "nproc=4096:4096" \
    --read-only -v "$work/data:/data" -e BIRTHDAY_LOG_FORMAT=json \
    -p "127.0.0.1:$api_port:8080" -p "127.0.0.1:$admin_port:9090" \
    "$image" >/dev/null
wait_http "http://127.0.0.1:$admin_port/healthz" 60 ||
    { podman "${podman_args[@]}" logs "$container" >&2; die "the container did not become healthy"; }

log "smoke-test the container with the playbook's smoke-test tasks"
playbook "$work/smoke.log" --tags smoke \
    -e "smoke_base_url=http://127.0.0.1:$api_port" \
    -e "smoke_health_url=http://127.0.0.1:$admin_port/healthz"
recap "$work/smoke.log"

log "operations port"
curl -fsS "http://127.0.0.1:$admin_port/readyz" >/dev/null || die "/readyz is not 200"
metrics=$(curl -fsS "http://127.0.0.1:$admin_port/metrics") || die "/metrics is not 200"
grep -q '^# TYPE' <<<"$metrics" || die "/metrics is not Prometheus text"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/healthz")
[[ $code == 404 ]] || die "/healthz answered $code on the public port"

log "SIGTERM"
t0=$(date +%s)
podman "${podman_args[@]}" stop --time 20 "$container" >/dev/null
stopped_in=$(($(date +%s) - t0))
rc=$(podman "${podman_args[@]}" inspect --format '{{.State.ExitCode}}' "$container")
podman "${podman_args[@]}" logs "$container" >"$work/container.log" 2>&1 || true
[[ $rc == 0 ]] || die "container exited $rc after SIGTERM"
((stopped_in < 20)) || die "container needed the SIGKILL (did not stop within 20 s)"
echo "stopped in ${stopped_in}s, exit code 0"

log "passed: deploy-test in $(($(date +%s) - started)) s, image $size bytes"
