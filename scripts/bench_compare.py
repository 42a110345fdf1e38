#!/usr/bin/env python3
"""ClipLab against the OpenCLIP/PyTorch anchor, side by side in one invocation.

For each configuration (model x threads x mode) it runs the anchor script and `clip bench train`
alternately, one measurement per process (so each peak RSS is that run's alone), and prints the
samples/s of both, their ratio, GFLOP/s and peak RSS. The machine is shared: only the ratios of one
invocation mean anything.

  scripts/bench_compare.py [--models tiny small] [--threads 1 2] [--modes train infer] [--rounds 1]
                           [--blas-autodetect] [--save-baseline FILE] [--compare FILE]

OpenBLAS picks its kernels from the CPU unless OPENBLAS_CORETYPE names them; some machines set
that variable (with OPENBLAS_L2_SIZE) system-wide to an older family, e.g. Haswell's AVX2 kernels on
an AVX-512 CPU. By default ClipLab runs with the environment as it is; --blas-autodetect removes both
variables for ClipLab's runs only, so OpenBLAS uses the kernels it detects. Each row names the
kernel family that ran.

The anchor's environment (torch + open-clip-torch, about 5 GB) is created on first use in
$CLIPLAB_ANCHOR_VENV (default .venv-anchor). A baseline file stores ClipLab's samples/s per
configuration; --compare prints the change against it and exits 1 when a configuration is more than
--tolerance (default 10%) slower.
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHOR = os.path.join(ROOT, "..", "shared", "anchors", "openclip_cpu_bench.py")
CLIP = os.path.join(ROOT, ".build", "release", "clip")


def ensure_venv(venv):
    py = os.path.join(venv, "bin", "python")
    if os.path.exists(py):
        ok = subprocess.run([py, "-c", "import torch, open_clip"], capture_output=True).returncode == 0
        if ok:
            return py
    print(f"bench: setting up the anchor environment in {venv} (torch + open-clip-torch, ~5 GB)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([py, "-m", "pip", "install", "--quiet", "torch", "open-clip-torch"], check=True)
    return py


def result_line(text, who):
    for line in text.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise SystemExit(f"bench: {who} printed no RESULT line:\n{text[-2000:]}")


def run_anchor(py, model, threads, mode):
    p = subprocess.run([py, ANCHOR, "--config", model, "--threads", str(threads), "--mode", mode],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"bench: the anchor failed ({model}, {threads} threads, {mode}):\n{p.stderr[-2000:]}")
    r = result_line(p.stdout, "the anchor")
    return dict(samples=r["samples_per_s"], gflops=r["gflops"], rss=r["peak_rss_mb"], core="torch")


def run_cliplab(model, threads, mode, autodetect):
    env = dict(os.environ)
    if autodetect:
        env.pop("OPENBLAS_CORETYPE", None)
        env.pop("OPENBLAS_L2_SIZE", None)
    p = subprocess.run([CLIP, "bench", "train", "--model", model, "--threads", str(threads), "--mode", mode, "--json"],
                       capture_output=True, text=True, env=env)
    if p.returncode != 0:
        raise SystemExit(f"bench: clip bench train failed ({model}, {threads} threads, {mode}):\n{p.stderr[-2000:]}")
    r = result_line(p.stdout, "clip bench train")
    return dict(samples=r["samplesPerSecond"], gflops=r["gflops"], rss=r["peakRSSMiB"], core=r.get("blasCore", "?"),
                mode=r.get("threadMode", "gemm"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny", "small"], choices=["nano", "tiny", "small"],
                    help="nano is measured for ClipLab alone (the anchor has no nano config)")
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    ap.add_argument("--rounds", type=int, default=1, help="alternating measurements per configuration (median kept)")
    ap.add_argument("--no-anchor", action="store_true", help="measure ClipLab only (for baselines)")
    ap.add_argument("--save-baseline", metavar="FILE")
    ap.add_argument("--compare", metavar="FILE")
    ap.add_argument("--tolerance", type=float, default=0.10)
    ap.add_argument("--blas-autodetect", action="store_true",
                    help="unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for ClipLab's runs (OpenBLAS detects the CPU)")
    args = ap.parse_args()
    if not os.path.exists(CLIP):
        raise SystemExit(f"bench: {CLIP} is missing; run `swift build -c release` first")
    py = None if args.no_anchor else ensure_venv(os.environ.get("CLIPLAB_ANCHOR_VENV", os.path.join(ROOT, ".venv-anchor")))

    rows = []
    for model in args.models:
        for threads in args.threads:
            for mode in args.modes:
                ours, theirs = [], []
                for _ in range(args.rounds):  # alternate: anchor, ClipLab, anchor, ClipLab, ...
                    if py and model != "nano":
                        theirs.append(run_anchor(py, model, threads, mode))
                    ours.append(run_cliplab(model, threads, mode, args.blas_autodetect))
                med = lambda runs: {k: (statistics.median(r[k] for r in runs) if k not in ("core", "mode") else runs[0][k]) for k in runs[0]}
                o = med(ours)
                t = med(theirs) if theirs else None
                rows.append((model, threads, mode, o, t))
                ratio = f"{o['samples'] / t['samples']:.2f}x" if t else "-"
                print(f"{model:5} {threads} thr {mode:5}  ClipLab {o['samples']:7.1f} samples/s [{o['mode']}] "
                      f"({o['gflops']:5.1f} GFLOP/s, {o['rss']:5.0f} MiB, OpenBLAS {o['core']})"
                      + (f"  OpenCLIP {t['samples']:7.1f} ({t['gflops']:5.1f} GFLOP/s, {t['rss']:5.0f} MiB)  ratio {ratio}" if t else ""),
                      flush=True)

    cores = sorted({o["core"] for *_, o, _ in rows})
    print(f"\nClipLab's OpenBLAS kernels: {', '.join(cores)}"
          + (" (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset)" if args.blas_autodetect
             else f" (OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})"))
    print("\n| model | threads | mode | ClipLab threads as | ClipLab samples/s | OpenCLIP samples/s | ratio | ClipLab RSS MiB | OpenCLIP RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, threads, mode, o, t in rows:
        how = o["mode"] if threads > 1 else "-"
        if t:
            print(f"| {model} | {threads} | {mode} | {how} | {o['samples']:.1f} | {t['samples']:.1f} | {o['samples'] / t['samples']:.2f} | {o['rss']:.0f} | {t['rss']:.0f} |")
        else:
            print(f"| {model} | {threads} | {mode} | {how} | {o['samples']:.1f} | - | - | {o['rss']:.0f} | - |")

    # Thread scaling: the largest thread count against one thread, per model and mode.
    by = {(m, th, mo): (o, t) for m, th, mo, o, t in rows}
    scaling = [(m, mo, th) for m, th, mo, _, _ in rows if th > 1 and (m, 1, mo) in by]
    if scaling:
        print("\n| model | mode | threads | ClipLab scaling | OpenCLIP scaling |")
        print("| --- | --- | --- | --- | --- |")
        for m, mo, th in scaling:
            (o, t), (o1, t1) = by[(m, th, mo)], by[(m, 1, mo)]
            theirs = f"{t['samples'] / t1['samples']:.2f}x" if t and t1 else "-"
            print(f"| {m} | {mo} | {th} vs 1 | {o['samples'] / o1['samples']:.2f}x | {theirs} |")

    key = lambda m, th, mo: f"{m}/{th}/{mo}"
    if args.save_baseline:
        with open(args.save_baseline, "w") as f:
            json.dump({key(m, th, mo): o["samples"] for m, th, mo, o, _ in rows}, f, indent=2, sort_keys=True)
        print(f"\nsaved baseline {args.save_baseline}")
    if args.compare:
        base = json.load(open(args.compare))
        worse = False
        print(f"\nagainst baseline {args.compare}:")
        for m, th, mo, o, _ in rows:
            b = base.get(key(m, th, mo))
            if b is None:
                print(f"  {key(m, th, mo)}: not in the baseline")
                continue
            change = o["samples"] / b - 1
            flag = "  SLOWER" if change < -args.tolerance else ""
            worse |= change < -args.tolerance
            print(f"  {key(m, th, mo)}: {o['samples']:.1f} vs {b:.1f} samples/s ({change:+.1%}){flag}")
        if worse:
            sys.exit(1)


if __name__ == "__main__":
    main()
