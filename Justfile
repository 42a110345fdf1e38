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

# The main job: train tiny on the shapes world's cc3m-mini scale and print the held-out metrics.
train: setup
    swift build -c release --product clip
    .build/release/clip train --model tiny --data shapes:cc3m-mini --epochs 3 --batch-size 256 --lr 1e-3 --wd 0.1 --warmup 100 --seed 0 --out runs/tiny-cc3m-mini

# ClipLab against the OpenCLIP/PyTorch anchor, alternating, with ratios per configuration
# (tiny and small; 1 and 2 threads; training and inference). Options: --save-baseline FILE,
# --compare FILE, --rounds N, --models, --threads, --modes. First use installs the anchor's
# environment (torch + open-clip-torch, ~5 GB) in .venv-anchor.
bench *ARGS: setup
    swift build -c release --product clip
    python3 scripts/bench_compare.py {{ARGS}}

# Kernel benchmark: GEMM GFLOP/s on the preset shapes and element-wise GB/s at 1 and 2 threads.
bench-kernels *ARGS: setup
    swift build -c release --product clip
    .build/release/clip bench kernels {{ARGS}}

# Run a study and draw its figures and table: just study temperature-ablation [--preset smoke|quick|full].
study NAME *ARGS: setup
    swift build -c release --product clip
    swift build -c release --product study
    .build/release/study {{NAME}} {{ARGS}}

# Nightly drift check: rerun every study that has PRESET goldens in figures/<study>/golden.csv
# (smoke for all; quick for temperature-ablation, optimizers, gradient-reduction), judge drift, fail on it.
nightly PRESET="smoke" JOBS="1": setup
    swift build -c release --product clip
    swift build -c release --product study
    .build/release/study nightly --preset {{PRESET}} --jobs {{JOBS}}

# Targets: safetensors tokenizer images csv tar zip config (default all); crashes, timeouts and
# out-of-memory inputs land in .fuzz-work/crashes/<target>/ (README, "Fuzzing").
# Fuzz the parsers of untrusted input with libFuzzer, SECONDS per target: just fuzz 180 [TARGET...].
fuzz SECONDS *TARGETS: setup
    scripts/fuzz.sh {{SECONDS}} {{TARGETS}}
