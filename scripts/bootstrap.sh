#!/usr/bin/env bash
# Installs everything ClipLab needs on a Debian 12 machine that already has the Swift toolchain.
# Idempotent: it checks before it installs, and prints nothing when all is present.
# Run as root (or with sudo available). Used by the README's commands, the Justfile and .ci/run.
set -euo pipefail

# Debian packages the project uses, with what each is for.
apt_packages=(
    pkg-config        # SwiftPM resolves the C targets' flags through it
    libopenblas-dev   # CBLAS: every matrix product (pkg-config openblas)
    libopenmpi-dev    # CMPI: data-parallel training (pkg-config ompi-c)
    openmpi-bin       # mpirun
    gnuplot-nox       # figures (pngcairo, svg, pdfcairo)
    zlib1g-dev        # CZlib: gzip (BPE merges file) and deflate (PNG writing)
    libpng-dev        # CPNG: decoding PNG images
    libjpeg62-turbo-dev  # CJPEG: decoding JPEG images (libjpeg-turbo)
)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "bootstrap: need root to run: $*" >&2; exit 1
    fi
}

missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing ${missing[*]}" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# `just` runs the project's recipes; PyPI ships it as rust-just.
if ! command -v just >/dev/null 2>&1; then
    echo "bootstrap: installing just (PyPI rust-just)" >&2
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore rust-just >/dev/null
    # pyenv-managed Pythons expose new console scripts only after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash >/dev/null 2>&1 || true; fi
    hash -r
    if ! command -v just >/dev/null 2>&1; then
        echo "bootstrap: 'just' was installed but is not on PATH ($(python3 -m site --user-base 2>/dev/null)/bin?)" >&2
        exit 1
    fi
fi

command -v swift >/dev/null 2>&1 || { echo "bootstrap: the Swift toolchain (swift) is not on PATH" >&2; exit 1; }
pkg-config --exists openblas || { echo "bootstrap: pkg-config cannot find openblas after install" >&2; exit 1; }
pkg-config --exists ompi-c || { echo "bootstrap: pkg-config cannot find ompi-c after install" >&2; exit 1; }
