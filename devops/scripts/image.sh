#!/usr/bin/env bash
# Build and push the birthday-api container image.
#
#   devops/scripts/image.sh binary            compile the static (musl) binary only
#   devops/scripts/image.sh context DIR       compile the musl binary, lay out the build context
#   devops/scripts/image.sh build IMAGE_REF   context + image (docker build / buildah bud)
#   devops/scripts/image.sh push IMAGE_REF    push a built image
#
# Environment:
#   CONTAINER_CLI        docker (default), buildah or podman
#   REGISTRY_TLS_VERIFY  true (default); false for a plain-HTTP registry on 127.0.0.1
#   BIRTHDAY_BINARY      use this prebuilt static binary instead of running cargo
#   CARGO_TARGET_DIR     where cargo builds (default target/musl in the repository)
#   BUILDAH_ARGS         extra global buildah/podman flags (e.g. --storage-driver vfs)
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
target=x86_64-unknown-linux-musl
cli=${CONTAINER_CLI:-docker}
tls_verify=${REGISTRY_TLS_VERIFY:-true}
read -r -a buildah_args <<<"${BUILDAH_ARGS:-}"

die() { echo "image.sh: $*" >&2; exit 1; }

find_ca_bundle() {
    local f
    for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
        [[ -s $f ]] && { echo "$f"; return; }
    done
    die "no CA bundle found (apt-get install ca-certificates)"
}

build_binary() {
    if [[ -n ${BIRTHDAY_BINARY:-} ]]; then
        echo "$BIRTHDAY_BINARY"
        return
    fi
    rustup target list --installed | grep -qx "$target" || rustup target add "$target" >&2
    # ring and other crates with C parts need a musl C compiler.
    if command -v musl-gcc >/dev/null; then
        export CC_x86_64_unknown_linux_musl=musl-gcc
    fi
    # A target directory of its own inside the clone, target/musl (git-ignored
    # with the rest of target/), apart from the host build's: the musl build
    # shares nothing with it. CARGO_TARGET_DIR wins.
    local target_dir=${CARGO_TARGET_DIR:-$repo_root/target/musl}
    (cd "$repo_root" && CARGO_TARGET_DIR=$target_dir nice cargo build --release --locked --target "$target" --bin birthday-api >&2)
    echo "$target_dir/$target/release/birthday-api"
}

make_context() {
    local dir=$1 bin
    bin=$(build_binary)
    [[ -x $bin ]] || die "no binary at $bin"
    if file "$bin" | grep -q 'dynamically linked'; then
        die "$bin is dynamically linked; a scratch image needs a static binary"
    fi
    rm -rf "$dir"
    mkdir -p "$dir/rootfs/etc/ssl/certs" "$dir/data"
    install -m 0755 "$bin" "$dir/birthday-api"
    install -m 0644 "$(find_ca_bundle)" "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
    printf 'root:x:0:0:root:/:/sbin/nologin\nbirthday:x:65532:65532:birthday-api:/data:/sbin/nologin\n' >"$dir/rootfs/etc/passwd"
    printf 'root:x:0:\nbirthday:x:65532:\n' >"$dir/rootfs/etc/group"
    chmod 0644 "$dir/rootfs/etc/passwd" "$dir/rootfs/etc/group"
    cp "$repo_root/devops/Containerfile" "$dir/Containerfile"
}

cmd=${1:-}
ref=${2:-}
case $cmd in
binary)
    build_binary
    ;;
context)
    [[ -n $ref ]] || die "usage: image.sh context DIR"
    make_context "$ref"
    ;;
build)
    [[ -n $ref ]] || die "usage: image.sh build IMAGE_REF"
    ctx=${IMAGE_CONTEXT:-$repo_root/target/image-context}
    make_context "$ctx"
    case $cli in
    docker) docker build --pull=false -f "$ctx/Containerfile" -t "$ref" "$ctx" ;;
    buildah) buildah "${buildah_args[@]}" bud --isolation chroot --layers=false -f "$ctx/Containerfile" -t "$ref" "$ctx" ;;
    podman) podman "${buildah_args[@]}" build --isolation chroot -f "$ctx/Containerfile" -t "$ref" "$ctx" ;;
    *) die "CONTAINER_CLI must be docker, buildah or podman" ;;
    esac
    ;;
push)
    [[ -n $ref ]] || die "usage: image.sh push IMAGE_REF"
    case $cli in
    docker) docker push "$ref" ;;
    buildah | podman) "$cli" "${buildah_args[@]}" push --tls-verify="$tls_verify" "$ref" "docker://$ref" ;;
    *) die "CONTAINER_CLI must be docker, buildah or podman" ;;
    esac
    ;;
*)
    die "usage: image.sh binary | context DIR | build IMAGE_REF | push IMAGE_REF"
    ;;
esac
