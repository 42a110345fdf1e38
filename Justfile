# ClipLab tasks. Every recipe runs the bootstrap first, so each works on a fresh machine.
set shell := ["bash", "-euo", "pipefail", "-c"]

# List the recipes.
default:
    @just --list

# Install the system packages and tools ClipLab uses (idempotent, quiet when all is present).
setup:
    @scripts/bootstrap.sh

# Build everything in release mode (what performance is measured on).
build: setup
    swift build -c release

# Run the whole test suite (release build: the trainer tests train real models).
test: setup
    swift test -c release --no-parallel

# Kernel benchmark: GEMM GFLOP/s on the preset shapes and element-wise GB/s at 1 and 2 threads.
bench *ARGS: setup
    swift build -c release --product clip
    .build/release/clip bench kernels {{ARGS}}
