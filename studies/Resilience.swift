// `study resilience`: trains a few quick runs twice, once undisturbed and once while disturbing
// them at random steps (SIGKILL, SIGTERM, a rank killed under mpirun) and resuming after each
// disturbance, and reports whether every final artefact of the disturbed run equals the
// undisturbed run's: the final checkpoint byte for byte, the optimizer and per-sample state
// tensors, metrics.csv and steps.csv without their wall-clock columns.
//
// Besides OpenCLIP and FastCLIP-v2/v3 (in one process and at 2 ranks), two two-stage runs: CLIPA
// (reduced tokens, then full length) and CLIP-UP (dense, then upcycled mixtures of experts), each
// also killed at the boundary between its stages.
//
// The disturbance points are drawn from --seed, so a report can be reproduced; they are global
// steps counted from steps.csv, so the signal lands while the step after them runs (a kill can
// fall inside a checkpoint write, which the atomic writes must survive).

import CLIP
import Foundation
import Training
import Workbench

/// One configuration of the resilience check.
struct ResilienceCase {
    let name: String
    /// `clip train` options (without --out).
    let arguments: [String]
    let ranks: Int
    /// The disturbances, in order.
    let disturbances: [Disturbance]
    /// For a two-stage run (CLIPA, CLIP-UP), the file whose appearance marks the boundary between
    /// the stages (where a `.boundaryKill` lands); nil for a one-stage run.
    var boundary: String? = nil

    /// The stage directories whose steps.csv hold the run's steps, relative to the run directory.
    var stageDirectories: [String] { boundary == nil ? [""] : ["/pretrain", "/finetune"] }
    /// The final checkpoint (without `.safetensors`), relative to the run directory.
    var finalCheckpoint: String { boundary == nil ? "/checkpoints/epoch_2" : "/finetune/checkpoints/epoch_1" }

    /// The steps the run in `directory` has taken, over its stages.
    func progress(_ directory: String) -> Int { stageDirectories.reduce(0) { $0 + stepRows(directory + $1) } }

    /// The newest checkpoint of the run in `directory` (the later stage's first), if any.
    func latestCheckpoint(_ directory: String) -> String? {
        stageDirectories.reversed().lazy.compactMap { TrainingState.latestCheckpoint(runDirectory: directory + $0)?.path }.first
    }

    /// Whether the run in `directory` can be continued with --resume: a one-stage run once it has
    /// a checkpoint, a staged one once its configuration is written (a stage without a checkpoint
    /// then starts again in place).
    func resumable(_ directory: String) -> Bool {
        boundary == nil ? latestCheckpoint(directory) != nil : FileManager.default.fileExists(atPath: directory + "/config.json")
    }
}

enum Disturbance: String {
    case sigkill = "SIGKILL", sigterm = "SIGTERM", rankKilled = "rank SIGKILL"
    /// SIGKILL as soon as the case's boundary file appears (e.g. just after the first stage's last
    /// checkpoint, possibly before its state file).
    case boundaryKill = "SIGKILL at the stage boundary"
}

/// What happened to one case.
struct ResilienceResult {
    let name: String
    var events: [(kind: Disturbance, atStep: Int, status: Int32, resumedFrom: String)] = []
    var equalCheckpoint = false
    var equalState = false
    var equalMetrics = false
    var equalSteps = false
    var allEqual: Bool { equalCheckpoint && equalState && equalMetrics && equalSteps }
}

/// Runs the check; writes resilience.csv and report.md into `output`; returns whether all held.
func resilience(output: String, seed: UInt64, scratch: String) throws -> Bool {
    let steps = 32  // 2 epochs × 16 steps: micro on 1,024 shapes pairs at batch 64
    func common(_ objective: String) -> [String] {
        ["train", "--model", "micro", "--data", "shapes:1024", "--epochs", "2", "--batch-size", "64", "--tokenizer", "trained", "--vocab-size", "600",
         "--eval-examples", "5", "--retrieval-size", "64", "--objective", objective, "--warmup", "4", "--save-every-steps", "5"]
    }
    // Two-stage runs: 1 epoch at reduced tokens (CLIPA) or dense (CLIP-UP), then 1 epoch at full
    // tokens or with the upcycled mixtures; the same 32 steps.
    func staged(_ extra: [String]) -> [String] {
        var a = common("openclip") + ["--threads", "1", "--finetune-epochs", "1"] + extra
        a[a.firstIndex(of: "--epochs")! + 1] = "1"
        return a
    }
    let cases = [
        ResilienceCase(name: "OpenCLIP", arguments: common("openclip") + ["--threads", "1"], ranks: 1, disturbances: [.sigkill, .sigterm, .sigkill]),
        ResilienceCase(name: "FastCLIP-v2", arguments: common("fastclip-v2") + ["--threads", "1"], ranks: 1, disturbances: [.sigterm, .sigkill, .sigkill]),
        ResilienceCase(name: "FastCLIP-v3", arguments: common("fastclip-v3") + ["--threads", "1"], ranks: 1, disturbances: [.sigkill, .sigkill, .sigterm]),
        ResilienceCase(name: "FastCLIP-v3, 2 ranks", arguments: common("fastclip-v3") + ["--ranks", "2", "--threads", "2"], ranks: 2,
                       disturbances: [.rankKilled, .sigterm]),
        ResilienceCase(name: "CLIPA (random:0.5 image tokens, 8-token captions; then full length)",
                       arguments: staged(["--image-reduction", "random:0.5", "--text-length", "8", "--text-reduction", "random"]), ranks: 1,
                       disturbances: [.sigkill, .boundaryKill, .sigterm], boundary: "/pretrain/checkpoints/epoch_1.safetensors"),
        ResilienceCase(name: "CLIP-UP (dense, then upcycled to 4 experts, top-2)", arguments: staged(["--finetune-upcycle", "--experts", "4", "--top-k", "2"]),
                       ranks: 1, disturbances: [.sigterm, .boundaryKill, .sigkill], boundary: "/upcycled.safetensors"),
    ]
    var rng = SplitMix(seed: seed)
    var results: [ResilienceResult] = []
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    for (k, c) in cases.enumerated() {
        let a = "\(scratch)/\(k)-undisturbed", b = "\(scratch)/\(k)-disturbed"
        for d in [a, b] { try? FileManager.default.removeItem(atPath: d) }
        print("resilience: \(c.name): the undisturbed run")
        fflush(nil)
        let reference = try launchClip(c.arguments + ["--out", a], log: a + ".log")
        reference.waitUntilExit()
        guard reference.terminationStatus == 0 else { throw SettingsError(key: "resilience", reason: "\(c.name): the undisturbed run failed; see \(a).log") }
        // Disturbance points: increasing, spread over the run, drawn from the seed.
        var points: [Int] = []
        let share = steps / (c.disturbances.count + 1)
        for i in 0..<c.disturbances.count { points.append(i * share + 2 + Int(rng.next() % UInt64(max(1, share - 2)))) }
        var result = ResilienceResult(name: c.name)
        var arguments = c.arguments + ["--out", b]
        for (i, kind) in c.disturbances.enumerated() {
            let before = c.latestCheckpoint(b) ?? "the start"
            let p = try launchClip(arguments, log: "\(b)-\(i).log")
            if kind == .boundaryKill, let boundary = c.boundary {
                while p.isRunning && !FileManager.default.fileExists(atPath: b + boundary) { usleep(500) }
            } else {
                while p.isRunning && c.progress(b) < points[i] { usleep(2000) }
            }
            guard p.isRunning else { throw SettingsError(key: "resilience", reason: "\(c.name): the run ended before disturbance \(i + 1)") }
            let at = c.progress(b)
            switch kind {
            case .sigkill, .boundaryKill: try signalProcesses("-KILL", pattern: "--out \(b)|--resume \(b)")
            case .sigterm: try signalProcesses("-TERM", pattern: c.ranks > 1 ? "--resume \(b) --threads 1|--out \(b) --threads 1" : "--out \(b)|--resume \(b)")
            case .rankKilled: try signalProcesses("-KILL", pattern: "--out \(b) --threads 1|--resume \(b) --threads 1", oneOnly: true)
            }
            p.waitUntilExit()
            print("resilience: \(c.name): \(kind.rawValue) after step \(at) (status \(p.terminationStatus)); resuming from \(c.latestCheckpoint(b) ?? "nothing")")
            fflush(nil)
            if kind == .rankKilled {
                // The dead rank's job is ended by mpirun; wait for its other processes to go.
                usleep(500_000)
            }
            result.events.append((kind, at, p.terminationReason == .uncaughtSignal ? 128 + p.terminationStatus : p.terminationStatus, before))
            // A stop before the first checkpoint leaves nothing to resume: start again, as a user would.
            arguments = !c.resumable(b)
                ? c.arguments + ["--out", b]
                : ["train", "--resume", b, "--threads", c.ranks > 1 ? "2" : "1"] + (c.ranks > 1 ? ["--ranks", "\(c.ranks)"] : [])
        }
        let last = try launchClip(arguments, log: "\(b)-last.log")
        last.waitUntilExit()
        guard last.terminationStatus == 0 else { throw SettingsError(key: "resilience", reason: "\(c.name): the last resume failed; see \(b)-last.log") }
        let final = c.finalCheckpoint
        result.equalCheckpoint = FileManager.default.contents(atPath: a + final + ".safetensors") == FileManager.default.contents(atPath: b + final + ".safetensors")
        result.equalState = try SafetensorsFile(path: a + final + ".state.safetensors").tensorBitPatterns() == SafetensorsFile(path: b + final + ".state.safetensors").tensorBitPatterns()
        result.equalMetrics = try csvWithoutWallClock(a + "/metrics.csv") == csvWithoutWallClock(b + "/metrics.csv")
        result.equalSteps = try c.stageDirectories.allSatisfy { try csvWithoutWallClock(a + $0 + "/steps.csv") == csvWithoutWallClock(b + $0 + "/steps.csv") }
        print("resilience: \(c.name): " + (result.allEqual ? "every artefact equals the undisturbed run's" : "DIFFERS"))
        results.append(result)
    }
    var rows: [[Cell]] = []
    var md = "**Resilience: runs disturbed at random steps and resumed, against undisturbed runs** (seed \(seed))\n\n"
    md += "| run | disturbances (after step → status, resumed from) | final checkpoint | state tensors | metrics.csv | steps.csv |\n| --- | --- | --- | --- | --- | --- |\n"
    func mark(_ ok: Bool) -> String { ok ? "equal" : "**differs**" }
    for r in results {
        let events = r.events.map { "\($0.kind.rawValue) after step \($0.atStep) → \($0.status), had resumed from \(($0.resumedFrom as NSString).lastPathComponent)" }.joined(separator: "; ")
        md += "| \(r.name) | \(events) | \(mark(r.equalCheckpoint)) | \(mark(r.equalState)) | \(mark(r.equalMetrics)) | \(mark(r.equalSteps)) |\n"
        for e in r.events {
            rows.append([.text(r.name), .text(e.kind.rawValue), .number(Double(e.atStep)), .number(Double(e.status)),
                         .number(r.allEqual ? 1 : 0)])
        }
    }
    md += "\nEach run: micro, 1,024 shapes pairs, batch 64, 2 epochs (32 steps), step checkpoints every 5 steps (2 kept); the two-stage runs (CLIPA, CLIP-UP) "
        + "train 1 epoch in each stage, compare both stages' steps.csv and the second stage's final checkpoint, and are killed once at the boundary between the stages "
        + "(as soon as the first stage's last checkpoint, or the upcycled model, is on disk). "
        + "Status 75 is a stop after a checkpoint; 137 a SIGKILL (a killed rank's job ends with mpirun's status); a kill before the first checkpoint means starting again. "
        + "\"Had resumed from\" names the checkpoint the disturbed invocation had started from. Wall-clock columns (`*_seconds`) are left out of the CSV comparison; "
        + "the state files' metadata (which records the run directory and the invocation's options) is compared tensor by tensor.\n"
    try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    _ = try write(CSV.render(columns: ["run", "disturbance", "after_step", "status", "all_equal"], rows: rows), "resilience.csv", in: output)
    _ = try write(md, "report.md", in: output)
    print(md)
    return results.allSatisfy(\.allEqual)
}

/// Starts the `clip` next to this executable with `arguments`, its output into `log`.
func launchClip(_ arguments: [String], log: String) throws -> Process {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: clipExecutable.path)
    p.arguments = arguments
    FileManager.default.createFile(atPath: log, contents: nil)
    let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
    p.standardOutput = handle
    p.standardError = handle
    try p.run()
    return p
}

/// Sends a signal (pkill's `-KILL`/`-TERM`) to the processes whose command line matches one of the
/// `|`-separated fixed strings; with `oneOnly`, to the newest match alone.
func signalProcesses(_ signal: String, pattern: String, oneOnly: Bool = false) throws {
    for fixed in pattern.split(separator: "|") {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/pkill")
        p.arguments = [signal, "-f"] + (oneOnly ? ["-n"] : []) + ["--", String(fixed)]
        try p.run()
        p.waitUntilExit()
        if oneOnly && p.terminationStatus == 0 { return }
    }
}

/// SplitMix64, for the disturbance points.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
