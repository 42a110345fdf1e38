// Real `mpirun` jobs of the `clip` executable: every collective at K = 1, 2 and 4 ranks
// (oversubscribed on a 2-core machine), and a dying rank ending the whole job quickly.

import CLIP
import Collective
import Foundation
import Testing

/// Runs `clip` under `mpirun` with the flags `MPILaunch` builds; kills it after `timeout` seconds
/// (a hung job then fails the test instead of stalling the suite). Returns (status, output, seconds).
func runMPI(ranks: Int, _ arguments: [String], timeout: Double = 120) throws -> (status: Int32, output: String, seconds: Double, timedOut: Bool) {
    let clip = try clipExecutable()
    let mpirun = try #require(MPILaunch.mpirunPath(), "mpirun is not installed (scripts/bootstrap.sh installs openmpi-bin)")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: mpirun)
    p.arguments = MPILaunch(ranks: ranks, threadsPerRank: 1).arguments(program: clip.path, programArguments: arguments)
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = pipe
    let start = Date()
    try p.run()
    let killer = DispatchWorkItem { if p.isRunning { p.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    killer.cancel()
    let seconds = Date().timeIntervalSince(start)
    return (p.terminationStatus, String(decoding: data, as: UTF8.self), seconds, seconds >= timeout)
}

/// The largest difference between two safetensors files, relative to the largest magnitude:
/// over all tensors together, or (with `names`) tensor by tensor for the named ones only.
/// Per-tensor comparison of all parameters would mislead: Adam turns the rounding noise of a
/// gradient that is zero in exact arithmetic (a key bias) into lr-sized steps.
func checkpointDifference(_ a: String, _ b: String, names: Set<String>? = nil) throws -> Double {
    let fa = try SafetensorsFile(path: a), fb = try SafetensorsFile(path: b)
    #expect(Set(fa.entries.keys) == Set(fb.entries.keys))
    var worst = 0.0, globalDiff = 0.0, globalScale = 0.0
    for name in fa.entries.keys where names?.contains(name) ?? true {
        let x = try fa.doubles(name), y = try fb.doubles(name)
        var diff = 0.0, scale = 0.0
        for (u, v) in zip(x, y) {
            diff = max(diff, abs(u - v))
            scale = max(scale, abs(u))
        }
        worst = max(worst, diff / max(scale, 1e-30))
        globalDiff = max(globalDiff, diff)
        globalScale = max(globalScale, scale)
    }
    return names == nil ? globalDiff / max(globalScale, 1e-30) : worst
}

/// Checks that the run in `run` ended (after epoch 2) where the one-process run in `reference`
/// did, to rounding: every parameter relative to the largest, the logit scale on its own, the
/// optimizer moments and the u tables, each on its own scale. The bounds of every data-parallel
/// equality test (mpirun ranks and batch-split threads).
func expectSameTraining(preset: String, reference: String, run: String, label: String) throws {
    let refModel = reference + "/checkpoints/epoch_2.safetensors", refState = reference + "/checkpoints/epoch_2.state.safetensors"
    let model = run + "/checkpoints/epoch_2.safetensors", state = run + "/checkpoints/epoch_2.state.safetensors"
    // Individual temperatures move by ±lr_τ·sign(G) in epoch 0 (Adam with β = 0), so a rounding
    // difference in a G near 0 moves one τ differently: a looser, still tight, bound.
    let individual = preset.hasSuffix("v2") || preset == "isogclr"
    let d = try checkpointDifference(refModel, model)
    #expect(d < (individual ? 1e-4 : 2e-5), "\(preset) \(label): parameters differ by \(d) of their scale")
    // The logit scale on its own (its gradient is the objective's, not rounding noise).
    let t = try checkpointDifference(refModel, model, names: ["logit_scale"])
    #expect(t < 1e-4, "\(preset) \(label): logit_scale differs by \(t)")
    let moments = try checkpointDifference(refState, state, names: ["optimizer.first_moment", "optimizer.second_moment"])
    #expect(moments < 1e-3, "\(preset) \(label): optimizer moments differ by \(moments)")
    let tables = try checkpointDifference(refState, state, names: ["samples.u.image", "samples.u.text"])
    #expect(tables < (individual ? 1e-2 : 1e-4), "\(preset) \(label): u tables differ by \(tables)")
}

@Suite("mpirun jobs", .serialized)
struct MPITests {
    @Test("Every collective gives the values each rank expects", arguments: [1, 2, 4])
    func collectives(ranks: Int) throws {
        let r = try runMPI(ranks: ranks, ["selftest", "collectives"])
        #expect(r.status == 0, "output: \(r.output)")
        for rank in 0..<ranks { #expect(r.output.contains("rank \(rank)/\(ranks) ok: Open MPI"), "output: \(r.output)") }
    }

    @Test("A rank that dies ends the whole job with a non-zero status, naming the rank, within seconds")
    func rankDeath() throws {
        let r = try runMPI(ranks: 3, ["selftest", "die", "--rank", "1"], timeout: 60)
        #expect(!r.timedOut, "the job hung: \(r.output)")
        #expect(r.status != 0)
        #expect(r.seconds < 30, "took \(r.seconds) s")
        #expect(r.output.contains("rank 1: dying on purpose"), "output: \(r.output)")
        #expect(r.output.contains("],1]"), "mpirun's report names process 1: \(r.output)")
        #expect(!r.output.contains("must not"), "a surviving rank got past the all-reduce: \(r.output)")
    }

    @Test("The launcher's mpirun flags")
    func launchArguments() {
        let plain = MPILaunch(ranks: 2, threadsPerRank: 1, asRoot: false, cores: 2).arguments(program: "clip", programArguments: ["train"])
        #expect(plain == ["-np", "2", "--bind-to", "none", "--mca", "odls_base_sigkill_timeout", "10", "--oversubscribe", "-x", "OPENBLAS_NUM_THREADS=1", "-x", "CLIPLAB_THREADS=1",
                          "-x", "OMPI_MCA_btl_vader_single_copy_mechanism=none", "clip", "train"])
        let root = MPILaunch(ranks: 4, threadsPerRank: 1, asRoot: true, cores: 2).arguments(program: "clip", programArguments: [])
        #expect(root.contains("--allow-run-as-root") && !plain.contains("--allow-run-as-root"))
        let hosts = MPILaunch(ranks: 8, threadsPerRank: 2, hostfile: "hosts.txt", asRoot: false, cores: 2).arguments(program: "clip", programArguments: [])
        #expect(!hosts.contains("--oversubscribe") && hosts.contains("hosts.txt") && hosts.contains("OPENBLAS_NUM_THREADS=2"))
    }

    @Test("K = 1, 2 and 4 ranks with either gradient reduction reach one process's parameters (to rounding), for every objective preset",
          arguments: ["openclip", "sogclr", "isogclr", "fastclip-v0", "fastclip-v1", "fastclip-v2", "fastclip-v3"])
    func dataParallelEqualsSingleProcess(preset: String) throws {
        let base = NSTemporaryDirectory() + "mpi-\(preset)-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = [
            "train", "--model", "nano", "--data", "shapes:512", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--eval-every", "0", "--warmup", "5",
            "--objective", preset, "--threads", "1",
        ]
        let single = try runClip(common + ["--out", base + "/single"])
        #expect(single.status == 0, "single process: \(single.err)")
        for (ranks, reduction) in [(1, "openclip"), (2, "openclip"), (2, "fastclip"), (4, "openclip"), (4, "fastclip")] {
            let out = base + "/k\(ranks)-\(reduction)"
            let r = try runMPI(ranks: ranks, common + ["--gradient-reduction", reduction, "--out", out])
            #expect(r.status == 0 && !r.timedOut, "K = \(ranks) \(reduction): \(r.output)")
            guard r.status == 0 else { continue }
            try expectSameTraining(preset: preset, reference: base + "/single", run: out, label: "K = \(ranks) \(reduction)")
            // Rank 0 alone wrote the files, and the log names the ranks.
            if ranks > 1 {
                let log = try String(contentsOfFile: out + "/log.txt", encoding: .utf8)
                #expect(log.contains("× \(ranks) ranks") && log.contains("gradient reduction \(reduction)"), "log: \(log)")
                // Every rank ended each epoch with rank 0's parameters, bit for bit.
                #expect(log.components(separatedBy: "parameters identical on all \(ranks) ranks").count == 3, "log: \(log)")
            }
        }
    }

    @Test("An upcycled model trains under mpirun: 2 ranks reach what one process reaches with the same 2 routing groups (2 batch-split threads)")
    func upcycledDataParallel() throws {
        let base = NSTemporaryDirectory() + "mpi-moe-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = [
            "train", "--model", "nano", "--data", "shapes:512", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--eval-every", "0", "--warmup", "5",
        ]
        let dense = try runClip(common + ["--epochs", "2", "--threads", "1", "--out", base + "/dense"])
        #expect(dense.status == 0, "dense: \(dense.err)")
        let up = try runClip([
            "upcycle", "--checkpoint", base + "/dense/checkpoints/epoch_2.safetensors", "--experts", "4", "--top-k", "2", "--every", "1",
            "--first-block", "0", "--towers", "both", "--out", base + "/moe.safetensors",
        ])
        #expect(up.status == 0 && up.out.contains("2 mixture layers (visual.0, text.0), 4 experts, top-2"), "upcycle: \(up.out)\n\(up.err)")
        let moe = common + ["--epochs", "2", "--init-from", base + "/moe.safetensors", "--lr", "2e-4"]
        let single = try runClip(moe + ["--threads", "2", "--thread-mode", "batch-split", "--out", base + "/single"])
        #expect(single.status == 0, "single process: \(single.err)")
        let r = try runMPI(ranks: 2, moe + ["--threads", "1", "--out", base + "/k2"])
        #expect(r.status == 0 && !r.timedOut, "K = 2: \(r.output)")
        guard r.status == 0, single.status == 0 else { return }
        // The experts (replicated on both ranks) are covered by the gradient all-reduce.
        try expectSameTraining(preset: "openclip", reference: base + "/single", run: base + "/k2", label: "upcycled, K = 2")
        let experts = try checkpointDifference(
            base + "/single/checkpoints/epoch_2.safetensors", base + "/k2/checkpoints/epoch_2.safetensors",
            names: ["visual.transformer.resblocks.0.mlp.router.weight", "transformer.resblocks.0.mlp.experts.3.c_fc.weight"])
        #expect(experts < 2e-5, "routers and experts differ by \(experts) of their scale")
        let steps = try String(contentsOfFile: base + "/k2/steps.csv", encoding: .utf8)
        #expect(steps.hasPrefix("epoch,step") && steps.contains("moe_aux_loss"))
    }

    @Test("clip train --ranks 2 re-launches itself under mpirun and trains")
    func relaunch() throws {
        let out = NSTemporaryDirectory() + "mpi-relaunch-\(UUID().uuidString)"
        let r = try runClip([
            "train", "--model", "nano", "--data", "shapes:256", "--epochs", "1", "--batch-size", "64", "--tokenizer", "trained",
            "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "20", "--objective", "fastclip-v3", "--ranks", "2",
            "--threads", "2", "--no-checkpoints", "--out", out,
        ])
        #expect(r.status == 0, "stderr: \(r.err)")
        #expect(r.out.contains("launching 2 ranks × 1 thread(s) with mpirun -np 2"), "stdout: \(r.out)")
        let m = try String(contentsOfFile: out + "/metrics.csv", encoding: .utf8)
        #expect(m.split(separator: "\n").count == 3, "metrics.csv: \(m)")
        #expect(m.contains("communication_seconds") && m.contains("all_gather_elements"))
    }

    @Test("clip bench train --ranks 2 reports the figures one process reports, with communication in the profile")
    func benchRanks() throws {
        let args = ["bench", "train", "--model", "nano", "--batch-size", "64", "--steps", "3", "--warmup", "1", "--objective", "fastclip-v3"]
        let one = try runClip(args + ["--threads", "1"])
        let two = try runClip(args + ["--threads", "2", "--ranks", "2", "--gradient-reduction", "openclip"])
        #expect(one.status == 0 && two.status == 0, "\(one.err) \(two.err)")
        for line in ["samples/s", "GFLOP/sample", "peak RSS", "per-phase profile", "optimizer"] {
            #expect(one.out.contains(line) && two.out.contains(line), "missing '\(line)': \(two.out)")
        }
        #expect(two.out.contains("data parallel: 2 ranks × 1 thread(s), local batch 32, gradient reduction openclip"), "\(two.out)")
        #expect(two.out.contains("communication") && !one.out.contains("communication "), "\(one.out)\n\(two.out)")
    }
}
