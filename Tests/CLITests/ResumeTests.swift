// Kill anywhere, resume exactly: `clip train` killed with SIGKILL at several points (with step
// checkpoints), or stopped by SIGTERM, `--time-limit` or `--stop-after-epochs`, then resumed, ends
// with the final checkpoint, metrics.csv and steps.csv of an unbroken run (wall-clock columns
// aside), for OpenCLIP, FastCLIP-v2 and FastCLIP-v3, in one process and under mpirun at 2 ranks;
// likewise two-stage runs (CLIPA, CLIP-UP's upcycled mixtures) killed at and around the boundary.

import CLIP
import Foundation
import Testing
import Workbench

/// Starts `clip` with `arguments`; returns the process (its output goes to `log`).
func startClip(_ arguments: [String], log: String) throws -> Process {
    let p = Process()
    p.executableURL = try clipExecutable()
    p.arguments = arguments
    FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    p.standardOutput = handle
    p.standardError = handle
    try p.run()
    return p
}

/// Waits until the run in `directory` has `rows` step rows (or `p` ended), then sends `signal`;
/// returns whether the signal reached a running process.
@discardableResult
func signalAfter(_ p: Process, directory: String, rows: Int, signal: Int32) -> Bool {
    signalWhen(p, signal: signal) { stepRows(directory) >= rows }
}

/// Waits until `condition` holds (or `p` ended, or 120 s passed), then sends `signal`; returns
/// whether it reached a running process.
func signalWhen(_ p: Process, signal: Int32 = SIGKILL, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(120)
    while p.isRunning && !condition() && Date() < deadline { usleep(1000) }
    guard p.isRunning else { return false }
    kill(p.processIdentifier, signal)
    p.waitUntilExit()
    return true
}

/// Waits until the run in `directory` has `rows` step rows (or `p` ended), then runs `pkill` with
/// `arguments` (a job's processes by command line) and waits for `p`; returns whether `p` was
/// still running when the signal went out.
func pkillAfter(_ p: Process, directory: String, rows: Int, _ arguments: [String]) throws -> Bool {
    let deadline = Date().addingTimeInterval(120)
    while p.isRunning && stepRows(directory) < rows && Date() < deadline { usleep(2000) }
    let running = p.isRunning
    let pkill = Process()
    pkill.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
    pkill.arguments = arguments
    try pkill.run()
    pkill.waitUntilExit()
    p.waitUntilExit()
    return running
}

@Suite(.serialized) struct ResumeTests {
    /// 2 epochs of 16 steps: micro on 1,024 shapes pairs at batch 64, one thread, eval every epoch.
    static func common(_ objective: String) -> [String] {
        ["train", "--model", "micro", "--data", "shapes:1024", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600",
         "--eval-examples", "5", "--retrieval-size", "64", "--objective", objective, "--warmup", "4"]
    }

    /// Asserts that `b`'s final checkpoint, state tensors, metrics.csv and steps.csv equal `a`'s.
    func expectSameRun(_ a: String, _ b: String, _ label: String) throws {
        let ca = a + "/checkpoints/epoch_2.safetensors", cb = b + "/checkpoints/epoch_2.safetensors"
        #expect(FileManager.default.contents(atPath: ca) == FileManager.default.contents(atPath: cb), "\(label): final checkpoints differ")
        #expect(try SafetensorsFile(path: a + "/checkpoints/epoch_2.state.safetensors").tensorBitPatterns() == SafetensorsFile(path: b + "/checkpoints/epoch_2.state.safetensors").tensorBitPatterns(),
                "\(label): optimizer and per-sample state differ")
        #expect(try csvWithoutWallClock(a + "/metrics.csv") == csvWithoutWallClock(b + "/metrics.csv"), "\(label): metrics.csv differs")
        let sa = try csvWithoutWallClock(a + "/steps.csv"), sb = try csvWithoutWallClock(b + "/steps.csv")
        #expect(sa.count == 33 && sa == sb, "\(label): steps.csv differs (\(sa.count) and \(sb.count) rows)")
    }

    @Test("SIGKILL at three points (mid-epoch, just past the boundary, late), resumed each time: the unbroken run's results",
          arguments: ["openclip", "fastclip-v2", "fastclip-v3"])
    func killAnywhere(objective: String) throws {
        let base = NSTemporaryDirectory() + "resume-\(objective)-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let args = Self.common(objective) + ["--threads", "1"]
        let unbroken = try runClip(args + ["--out", base + "/a"])
        #expect(unbroken.status == 0, "\(unbroken.err)")
        // Step checkpoints every 3 steps, 2 kept: a kill lands between checkpoints, so the resumed
        // run redoes the steps since the last one.
        let first = try startClip(args + ["--out", base + "/b", "--save-every-steps", "3"], log: base + "/b1.log")
        #expect(signalAfter(first, directory: base + "/b", rows: 7, signal: SIGKILL), "the run ended before the first kill")
        for (k, rows) in [17, 27].enumerated() {
            let p = try startClip(["train", "--resume", base + "/b", "--threads", "1"], log: base + "/b\(k + 2).log")
            #expect(signalAfter(p, directory: base + "/b", rows: rows, signal: SIGKILL), "the run ended before kill \(k + 2)")
        }
        let last = try runClip(["train", "--resume", base + "/b", "--threads", "1"])
        #expect(last.status == 0, "\(last.err)")
        #expect(last.out.contains("held-out metrics after 32 steps"), "\(last.out)")
        try expectSameRun(base + "/a", base + "/b", objective)
        // Step checkpoints are gone once their epoch's checkpoint exists.
        let left = try FileManager.default.contentsOfDirectory(atPath: base + "/b/checkpoints").filter { $0.hasPrefix("step_") }
        #expect(left.isEmpty, "\(left)")
    }

    @Test("SIGTERM stops at the next step after a step checkpoint with status 75; --time-limit and --stop-after-epochs likewise; each resumes exactly")
    func preemption() throws {
        let base = NSTemporaryDirectory() + "preempt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let args = Self.common("fastclip-v3") + ["--threads", "1"]
        #expect(try runClip(args + ["--out", base + "/a"]).status == 0)
        let p = try startClip(args + ["--out", base + "/b"], log: base + "/b.log")
        #expect(signalAfter(p, directory: base + "/b", rows: 5, signal: SIGTERM))
        let log = try String(contentsOfFile: base + "/b.log", encoding: .utf8)
        #expect(p.terminationStatus == 75, "status \(p.terminationStatus): \(log)")
        #expect(log.contains("stopped at step") && log.contains("(SIGTERM)") && log.contains("clip train --resume \(base)/b"), "\(log)")
        let steps = try FileManager.default.contentsOfDirectory(atPath: base + "/b/checkpoints").filter { $0.hasPrefix("step_") && !$0.contains("state") }
        #expect(steps.count == 1, "\(steps)")
        // Then a time limit inside epoch 1 or 2, then one epoch at most, then to the end.
        let timed = try runClip(["train", "--resume", base + "/b", "--threads", "1", "--time-limit", "0.5"])
        #expect(timed.status == 75 && timed.err.contains("--time-limit 0.5 s"), "\(timed.status): \(timed.err)")
        let rest = try runClip(["train", "--resume", base + "/b", "--threads", "1"])
        #expect(rest.status == 0, "\(rest.err)")
        try expectSameRun(base + "/a", base + "/b", "SIGTERM + --time-limit")
        // --stop-after-epochs 1 on a fresh run: status 75 after epoch 1's checkpoint, no step checkpoint.
        let c = try runClip(args + ["--out", base + "/c", "--stop-after-epochs", "1"])
        #expect(c.status == 75 && c.err.contains("--stop-after-epochs 1"), "\(c.err)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/c/checkpoints").sorted() == ["epoch_1.safetensors", "epoch_1.state.safetensors"])
        #expect(try runClip(["train", "--resume", base + "/c", "--threads", "1"]).status == 0)
        try expectSameRun(base + "/a", base + "/c", "--stop-after-epochs")
    }

    @Test("Under mpirun at 2 ranks: SIGKILL of the whole job mid-epoch, then SIGTERM to the ranks (they stop at one step; the launcher exits 75), each resumed: the unbroken 2-rank run's results")
    func mpiKillAndPreempt() throws {
        let base = NSTemporaryDirectory() + "resume-mpi-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let args = Self.common("fastclip-v3") + ["--ranks", "2", "--threads", "2"]
        let a = try runClip(args + ["--out", base + "/a"])
        #expect(a.status == 0, "\(a.err)")
        // SIGKILL to every process of the job (launcher, mpirun, ranks) after step 9.
        let p = try startClip(args + ["--out", base + "/b", "--save-every-steps", "4"], log: base + "/b1.log")
        #expect(try pkillAfter(p, directory: base + "/b", rows: 9, ["-KILL", "-f", "--", "--out \(base)/b"]), "the run ended before the kill")
        // Resumed, then preempted through mpirun.
        let q = try startClip(["train", "--resume", base + "/b", "--ranks", "2", "--threads", "2"], log: base + "/b2.log")
        // SIGTERM to every rank, as Slurm delivers it to each task (the ranks' own command lines
        // carry --threads 1, the launcher's --threads 2).
        #expect(try pkillAfter(q, directory: base + "/b", rows: 20, ["-TERM", "-f", "--", "--resume \(base)/b --threads 1"]),
                "the resumed run ended before SIGTERM")
        let log = try String(contentsOfFile: base + "/b2.log", encoding: .utf8)
        #expect(q.terminationStatus == 75, "status \(q.terminationStatus): \(log.suffix(800))")
        let last = try runClip(["train", "--resume", base + "/b", "--ranks", "2", "--threads", "2"])
        #expect(last.status == 0, "\(last.err)")
        try expectSameRun(base + "/a", base + "/b", "2 ranks")
    }
}

/// Two-stage runs (CLIPA's reduced-token pre-training then full-length fine-tuning, and CLIP-UP's
/// dense stage then an upcycled mixture-of-experts stage) killed in the first stage, at the
/// boundary between the stages and in the second stage, each time resumed: the unbroken run's
/// results.
@Suite(.serialized) struct StagedResumeTests {
    /// 1 + 1 epochs of 16 steps: micro on 1,024 shapes pairs at batch 64, one thread.
    static func common(_ extra: [String]) -> [String] {
        ["train", "--model", "micro", "--data", "shapes:1024", "--epochs", "1", "--finetune-epochs", "1", "--batch-size", "64",
         "--tokenizer", "trained", "--vocab-size", "600", "--eval-examples", "5", "--retrieval-size", "64", "--warmup", "4",
         "--threads", "1"] + extra
    }

    /// Kills a staged run three times (after `firstRows` steps of stage 1, once `boundary` exists,
    /// after `secondRows` steps of stage 2), resuming it each time, and compares it with an
    /// unbroken run: the last stage's final checkpoint and state, both stages' steps.csv and the
    /// run's metrics.csv.
    func killAndResume(_ label: String, extra: [String], boundary: String, secondRows: Int) throws {
        let base = NSTemporaryDirectory() + "resume-\(label)-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let args = Self.common(extra)
        let unbroken = try runClip(args + ["--out", base + "/a"])
        #expect(unbroken.status == 0, "\(unbroken.err)")
        let b = base + "/b"
        let first = try startClip(args + ["--out", b, "--save-every-steps", "3"], log: base + "/b1.log")
        #expect(signalWhen(first) { stepRows(b + "/pretrain") >= 8 }, "\(label): the run ended before the kill in stage 1")
        let second = try startClip(["train", "--resume", b, "--threads", "1"], log: base + "/b2.log")
        #expect(signalWhen(second) { FileManager.default.fileExists(atPath: b + "/" + boundary) }, "\(label): the run ended before the kill at the boundary")
        let third = try startClip(["train", "--resume", b, "--threads", "1"], log: base + "/b3.log")
        #expect(signalWhen(third) { stepRows(b + "/finetune") >= secondRows }, "\(label): the run ended before the kill in stage 2")
        let last = try runClip(["train", "--resume", b, "--threads", "1"])
        #expect(last.status == 0, "\(label): \(last.err)")
        #expect(last.out.contains("stage 1 (pretrain) finished earlier") && last.out.contains("stage 2 of 2: finetune (resumed)"), "\(label): \(last.out)")
        let ca = base + "/a/finetune/checkpoints/epoch_1.safetensors", cb = b + "/finetune/checkpoints/epoch_1.safetensors"
        #expect(FileManager.default.contents(atPath: ca) == FileManager.default.contents(atPath: cb), "\(label): final checkpoints differ")
        #expect(try SafetensorsFile(path: base + "/a/finetune/checkpoints/epoch_1.state.safetensors").tensorBitPatterns()
                == SafetensorsFile(path: b + "/finetune/checkpoints/epoch_1.state.safetensors").tensorBitPatterns(), "\(label): state differs")
        #expect(try csvWithoutWallClock(base + "/a/metrics.csv") == csvWithoutWallClock(b + "/metrics.csv"), "\(label): metrics.csv differs")
        for stage in ["pretrain", "finetune"] {
            let sa = try csvWithoutWallClock(base + "/a/\(stage)/steps.csv"), sb = try csvWithoutWallClock(b + "/\(stage)/steps.csv")
            #expect(sa.count == 17 && sa == sb, "\(label): \(stage)/steps.csv differs (\(sa.count) and \(sb.count) rows)")
        }
    }

    @Test("CLIPA: random image-token and caption reduction, then full length; killed in stage 1, at the stage boundary and in stage 2, resumed each time")
    func clipaStageBoundary() throws {
        try killAndResume("clipa", extra: ["--image-reduction", "random:0.5", "--text-length", "8", "--text-reduction", "random"],
                          boundary: "pretrain/checkpoints/epoch_1.safetensors", secondRows: 5)
    }

    @Test("CLIP-UP: a dense stage, upcycled, then the mixture-of-experts stage; killed in stage 1, once the upcycled model is written and in the MoE stage, resumed each time")
    func upcycledMixture() throws {
        try killAndResume("moe", extra: ["--finetune-upcycle", "--experts", "4", "--top-k", "2"], boundary: "upcycled.safetensors", secondRows: 7)
    }
}

@Suite(.serialized) struct StudyResumeTests {
    /// The run directories of `study` in a cache (or in a nightly job's dated folders inside it):
    /// (path, finished).
    static func runDirectories(_ cache: String, study: String = "temperature-ablation") -> [(path: String, finished: Bool)] {
        let fm = FileManager.default
        var folders = [cache + "/" + study]
        for name in (try? fm.contentsOfDirectory(atPath: cache)) ?? [] { folders.append(cache + "/" + name + "/" + study) }
        var runs: [(path: String, finished: Bool)] = []
        for folder in folders {
            for name in (try? fm.contentsOfDirectory(atPath: folder)) ?? [] {
                let path = folder + "/" + name
                runs.append((path, fm.fileExists(atPath: path + "/done.json")))
            }
        }
        return runs
    }

    /// Starts `study` with `arguments`, waits until one run of `study` is finished and another has
    /// its epoch 1 checkpoint, then sends `signal`; returns the process.
    func interrupt(_ arguments: [String], cache: String, study: String = "temperature-ablation", signal: Int32, log: String) throws -> Process {
        let p = Process()
        p.executableURL = try clipExecutable().deletingLastPathComponent().appendingPathComponent("study")
        p.arguments = arguments
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = handle
        p.standardError = handle
        try p.run()
        let deadline = Date().addingTimeInterval(300)
        while p.isRunning && Date() < deadline {
            let runs = Self.runDirectories(cache, study: study)
            if runs.contains(where: \.finished),
               runs.contains(where: { !$0.finished && FileManager.default.fileExists(atPath: $0.path + "/checkpoints/epoch_1.state.safetensors") }) { break }
            usleep(2000)
        }
        #expect(p.isRunning, "the study ended before it could be interrupted")
        kill(p.processIdentifier, signal)
        p.waitUntilExit()
        return p
    }

    @Test("A study killed (SIGKILL) or stopped (SIGTERM, status 75) mid-run and started again reuses its finished runs, resumes the half-done one and ends with an undisturbed study's runs.csv")
    func studyResumes() throws {
        let base = NSTemporaryDirectory() + "study-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        // 4 epochs so that a run is caught between its epochs.
        let common = ["temperature-ablation", "--preset", "smoke", "--threads", "1"]
        let a = try runStudy(common + ["--out", base + "/a", "--cache", base + "/ca"])
        #expect(a.status == 0, "\(a.err)")
        for (label, signal) in [("kill", SIGKILL), ("term", SIGTERM)] {
            let args = common + ["--out", base + "/\(label)", "--cache", base + "/c\(label)"]
            let p = try interrupt(args, cache: base + "/c\(label)", signal: signal, log: base + "/\(label).log")
            let log = try String(contentsOfFile: base + "/\(label).log", encoding: .utf8)
            if signal == SIGTERM {
                #expect(p.terminationStatus == 75, "status \(p.terminationStatus): \(log.suffix(600))")
                #expect(log.contains("the study stopped on request") && log.contains("run the same command again"), "\(log.suffix(600))")
            } else {
                #expect(p.terminationReason == .uncaughtSignal)
            }
            let again = try runStudy(args)
            #expect(again.status == 0, "\(again.err)")
            #expect(again.out.contains("resuming from") && again.out.contains("/checkpoints/"), "\(label): \(again.out.prefix(1500))")
            #expect(try csvWithoutWallClock(base + "/a/runs.csv") == csvWithoutWallClock(base + "/\(label)/runs.csv"), "\(label): runs.csv differs")
        }
    }
}

@Suite(.serialized) struct DivergenceTests {
    @Test("A NaN gradient stops the run naming the step, the tensor and the last good checkpoint; with --on-divergence rollback the run reloads it, halves the learning rate and finishes")
    func divergence() throws {
        let base = NSTemporaryDirectory() + "diverge-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        // Step 20 is in epoch 2 (16 steps an epoch), after epoch 1's checkpoint and step 18's.
        let args = ResumeTests.common("fastclip-v3") + ["--threads", "1", "--save-every-steps", "6"]
        let fault = ["CLIPLAB_FAULT_NAN_STEP": "20:token_embedding.weight"]
        let stop = try runClip(args + ["--out", base + "/stop"], environment: fault)
        #expect(stop.status != 0 && stop.status != 75, "\(stop.status)")
        #expect(stop.err.contains("training diverged at step 20") && stop.err.contains("the gradient of 'token_embedding.weight' holds NaN or ∞")
                && stop.err.contains("last good checkpoint: \(base)/stop/checkpoints/step_18.safetensors"), "\(stop.err)")
        // Resuming from the named checkpoint (without the fault) finishes like an unbroken run.
        let unbroken = try runClip(args + ["--out", base + "/a"])
        #expect(unbroken.status == 0, "\(unbroken.err)")
        #expect(try runClip(["train", "--resume", base + "/stop", "--threads", "1"]).status == 0)
        try ResumeTests().expectSameRun(base + "/a", base + "/stop", "resumed after a divergence")

        let rolled = try runClip(args + ["--out", base + "/roll", "--on-divergence", "rollback"], environment: fault)
        #expect(rolled.status == 0, "\(rolled.err)")
        try expectRolledBack(base + "/roll", unbroken: base + "/a")
        // Rollback needs a checkpoint before the divergence.
        let early = try runClip(args + ["--out", base + "/early", "--on-divergence", "rollback"], environment: ["CLIPLAB_FAULT_NAN_STEP": "3"])
        #expect(early.status != 0 && early.err.contains("no checkpoint before it to roll back to"), "\(early.err)")
    }

    /// Asserts that the run in `directory` diverged at step 20, rolled back to step 18's checkpoint
    /// and finished: steps 1–18 are the `unbroken` run's, steps 19 on ran at half its learning rate.
    func expectRolledBack(_ directory: String, unbroken: String) throws {
        let log = try String(contentsOfFile: directory + "/log.txt", encoding: .utf8)
        #expect(log.contains("diverged at step 20") && log.contains("rolled back to \(directory)/checkpoints/step_18.safetensors (step 18) with the learning rate × 0.5"), "\(log)")
        let a = try csvRows(unbroken + "/steps.csv"), r = try csvRows(directory + "/steps.csv")
        #expect(a.count == 32 && r.count == 32, "\(a.count) \(r.count)")
        for (x, y) in zip(a, r) {
            let step = Int(x["step"]!)!, la = Double(x["lr"]!)!, lr = Double(y["lr"]!)!
            if step <= 18 { #expect(x["loss"] == y["loss"] && la == lr, "step \(step)") } else { #expect(abs(lr - la / 2) <= 1e-15 * la, "step \(step): \(lr) vs \(la)") }
        }
    }

    @Test("Under mpirun at 2 ranks a NaN on rank 1 alone stops both ranks at its step, or rolls both back to the last checkpoint and finishes")
    func divergenceUnderMPI() throws {
        let base = NSTemporaryDirectory() + "diverge-mpi-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }
        let args = ResumeTests.common("fastclip-v3") + ["--ranks", "2", "--threads", "2", "--save-every-steps", "6"]
        // After the gradients' sum, on rank 1 only: rank 0 learns of it through the agreement.
        let fault = ["CLIPLAB_FAULT_NAN_STEP": "20:token_embedding.weight@1"]
        let stop = try runClip(args + ["--out", base + "/stop"], environment: fault)
        #expect(stop.status != 0 && stop.status != 75, "\(stop.status)")
        #expect(stop.err.contains("training diverged at step 20") && stop.err.contains("NaN or ∞ on 1 of the 2 ranks")
                && stop.err.contains("last good checkpoint: \(base)/stop/checkpoints/step_18.safetensors"), "\(stop.err)")
        let unbroken = try runClip(args + ["--out", base + "/a"])
        #expect(unbroken.status == 0, "\(unbroken.err)")
        let rolled = try runClip(args + ["--out", base + "/roll", "--on-divergence", "rollback"], environment: fault)
        #expect(rolled.status == 0, "\(rolled.err)")
        try expectRolledBack(base + "/roll", unbroken: base + "/a")
    }
}
