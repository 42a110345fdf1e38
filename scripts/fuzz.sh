#!/usr/bin/env bash
# Fuzzes ClipLab's parsers of untrusted input with libFuzzer (README, "Fuzzing").
#
#   scripts/fuzz.sh SECONDS [TARGET...]    (what `just fuzz SECONDS [TARGET...]` runs)
#
# Targets: safetensors tokenizer images csv tar zip config (default: all, one after another).
# Builds the Fuzz/ executables (the package declares them only when CLIPLAB_FUZZ is set) in
# .build-fuzz, in the debug configuration: the package optimises its debug builds (-O) and keeps
# every bounds, overflow and precondition check, which release's -Ounchecked drops, so a bad
# index traps instead of reading past an array. Swift code is also built with AddressSanitizer.
# Each target runs for SECONDS on a working corpus, .fuzz-work/corpus/<target>/, which starts as
# a copy of the committed seeds in Fuzz/corpus/<target>/ and keeps what libFuzzer adds between
# runs; Fuzz/dictionaries/<target>.dict, where there is one, gives libFuzzer the format's
# keywords. Crashes, timeouts (an input that takes over 10 s) and out-of-memory inputs (over
# 2 GB) are saved in .fuzz-work/crashes/<target>/, the log in .fuzz-work/logs/<target>.log.
# The summary gives each target's wall and CPU seconds (user + system, what "CPU-minutes" counts;
# less than wall time when other work shares the cores), and .fuzz-work/minutes.log keeps a line
# per target and run, to add up the minutes across runs.
# Exits 1 when any target found something. CLIPLAB_FUZZ_JOBS=N builds with -j N.
#
# LeakSanitizer is off (-detect_leaks=0, and in ASAN_OPTIONS for the check at exit): Foundation's
# FileManager.contents(atPath:) leaks a 4 KiB buffer on every empty file with this toolchain
# (Swift 6.3.1), which would stop the config target at once.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(safetensors tokenizer images csv tar zip config)
product() {
    case "$1" in
        safetensors) echo FuzzSafetensors ;;
        tokenizer) echo FuzzTokenizer ;;
        images) echo FuzzImages ;;
        csv) echo FuzzCSV ;;
        tar) echo FuzzTar ;;
        zip) echo FuzzZip ;;
        config) echo FuzzConfig ;;
        *) return 1 ;;
    esac
}

usage() { echo "usage: just fuzz SECONDS [TARGET...]; targets: ${all_targets[*]}" >&2; exit 2; }
[ $# -ge 1 ] || usage
seconds=$1
shift
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive whole number, got '$seconds'" >&2; usage; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    product "$t" >/dev/null || { echo "fuzz: unknown target '$t'" >&2; usage; }
done

# -sanitize=fuzzer,address as one flag: of two -sanitize= flags swiftc keeps only the last, and
# `--sanitize fuzzer --sanitize address` would build without the coverage libFuzzer is guided by.
# `--sanitize fuzzer` is still given: it makes SwiftPM link the executables with libFuzzer's main.
build=(swift build -c debug --scratch-path .build-fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address)
[ -z "${CLIPLAB_FUZZ_JOBS:-}" ] || build+=(-j "$CLIPLAB_FUZZ_JOBS")
for t in "${targets[@]}"; do
    echo "fuzz: building $(product "$t")" >&2
    CLIPLAB_FUZZ=1 "${build[@]}" --product "$(product "$t")" 2>&1 | grep -v "Cannot export local symbol" >&2
done
bin=$(CLIPLAB_FUZZ=1 "${build[@]}" --show-bin-path)

work=.fuzz-work
trap 'rm -f "$work/.times.$$"' EXIT

# Sets cpu_now to the CPU seconds (user + system) of this shell's finished children so far.
# `times` must run in this shell: in a subshell, such as $(...), the children's counters start at
# zero. It writes to a file of this process's own (two fuzz runs can share the work folder).
child_cpu_seconds() {
    times >"$work/.times.$$"
    cpu_now=$(awk 'NR == 2 { n = 0; for (i = 1; i <= 2; i++) { split($i, p, /[ms]/); n += p[1] * 60 + p[2] } printf "%.1f", n }' "$work/.times.$$")
}
summary=()
found=0
for t in "${targets[@]}"; do
    corpus=$work/corpus/$t crashes=$work/crashes/$t log=$work/logs/$t.log
    mkdir -p "$corpus" "$crashes" "$work/logs"
    cp -n Fuzz/corpus/"$t"/* "$corpus"/ 2>/dev/null || true
    echo "fuzz: $t for ${seconds}s (log: $log)" >&2
    start=$(date +%s)
    child_cpu_seconds
    before=$cpu_now
    status=0
    dict=()
    [ ! -f Fuzz/dictionaries/"$t".dict ] || dict=(-dict=Fuzz/dictionaries/"$t".dict)
    # SWIFT_BACKTRACE=enable=no: the Swift runtime's backtracer would catch a trap before
    # libFuzzer does, and the crashing input would not be saved.
    SWIFT_BACKTRACE=enable=no ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" "$bin/$(product "$t")" "$corpus" \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -detect_leaks=0 -print_final_stats=1 \
        -artifact_prefix="$crashes/" "${dict[@]}" >"$log" 2>&1 || status=$?
    elapsed=$(( $(date +%s) - start ))
    child_cpu_seconds
    cpu=$(awk -v a="$before" -v b="$cpu_now" 'BEGIN { printf "%.0f", b - a }')
    echo "$(date -u +%FT%TZ) $t wall=${elapsed}s cpu=${cpu}s" >>"$work/minutes.log"
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    artifact=$(sed -n 's/.*Test unit written to //p' "$log" | tail -n 1)
    if [ -n "$artifact" ]; then
        kind=$(grep -m 1 -o 'ERROR: libFuzzer: [a-z -]*\|ERROR: AddressSanitizer: [a-z-]*\|deadly signal' "$log" || true)
        result="FOUND ${kind:-a failure}: $artifact"
        found=1
    elif [ "$status" -ne 0 ]; then
        result="FAILED (exit $status; see $log)"
        found=1
    else
        result="nothing found"
    fi
    summary+=("$(printf '%-12s %6ss %6ss %12s  %s' "$t" "$elapsed" "$cpu" "${runs:-?}" "$result")")
done

echo
printf '%-12s %7s %7s %12s  %s\n' target wall cpu executions result
printf '%s\n' "${summary[@]}"
exit "$found"
