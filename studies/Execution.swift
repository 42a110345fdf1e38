// How a study's settings become a training run: the key paths this executable understands, mapped
// onto `TrainingConfiguration`, and the executors (in this process, or `clip train` under mpirun).

import CLIP
import Collective
import Compute
import Foundation
import Layers
import Objectives
import Training
import Workbench

/// The key paths a study may set, and what they mean.
let settingKeys: [String: String] = [
    "model": "model preset (nano, tiny, small)", "data": "shapes:<scale> or shapes:<count>, wds:PATTERN or csv:FILE (real data), or @KEY for the value of KEY",
    "evalData": "wds:PATTERN or csv:FILE: a held-out real set evaluated instead of the shapes world's tasks",
    "zeroShotClasses": "a classes.json for zero-shot top-1 over evalData's .cls labels",
    "dataSmall": "the data a level's @dataSmall stands for", "dataLarge": "the data a level's @dataLarge stands for", "dataSeed": "data seed",
    "epochs": "epochs", "batchSize": "global batch", "lr": "peak learning rate", "lrMin": "cosine floor", "wd": "weight decay",
    "sampleBudget": "samples a run sees: when > 0 the data is shapes:<sampleBudget ÷ epochs>",
    "warmup": "warm-up steps", "warmupFraction": "warm-up as a fraction of the run's steps (overrides warmup when > 0)", "seed": "training seed", "optimizer": "adamw or lamb", "beta1": "Adam β₁", "beta2": "Adam β₂", "threads": "threads per rank", "precision": "matrix products: fp32, bf16 or bf16-emulated (study --precision)",
    "tokenizer": "auto, clip or trained", "vocabSize": "trained BPE size", "evalExamples": "zero-shot examples per class",
    "retrievalSize": "retrieval pairs", "evalEvery": "evaluate every N epochs", "gradientReduction": "openclip or fastclip",
    "objective.preset": "objective preset", "objective.innerLRSchedule": "constant, cosine or drrho",
    "objective.gammaMin": "γ_min", "objective.gammaDecayEpochs": "E", "objective.rho": "ρ", "objective.lrTau": "lr_τ",
    "objective.tauInit": "τ_init", "objective.lrTauRGCLG": "lr_τ of the RGCL-g rule (FastCLIP-v3) only; other rules keep theirs", "objective.loss": "mbcl, gcl, rgcl, rgcl-g", "objective.temperatureRule": "temperature rule",
    "ranks": "data-parallel ranks of the run (> 1 runs clip train under mpirun)",
    "probeCollectives": "true: after the run, time the collectives over its ranks (collectives.csv in the run directory)",
    // CLIPA
    "imageReduction": "none, resize:PIXELS, random:RATIO, grid:K[:offset] or block:RATIO", "textLength": "text context while training",
    "textReduction": "truncate, random, shuffle, block or syntax", "visionPool": "class, average or average-with-class",
    "visionPositional": "learned or sincos",
    "finetune.epochs": "epochs of CLIPA's second stage at full tokens (> 0 adds it)", "finetune.lr": "its peak learning rate",
    "finetune.lrFactor": "its peak learning rate as a multiple of lr (when finetune.lr is not set; default 0.1)",
    "finetune.warmup": "its warm-up steps", "finetune.warmupFraction": "its warm-up as a fraction of its steps (default 0.1)",
    "finetune.data": "its data (shapes:N, a subset of the same world)", "finetune.imageReduction": "its image token reduction",
    "finetune.textReduction": "its caption reduction", "finetune.textLength": "its text length",
    "finetune.carryOptimizer": "true: carry the Adam moments into it",
    // CLIP-UP
    "moe.at": "where the mixtures come in: scratch (trained from the start) or upcycle (the second stage upcycles the first's model)",
    "moe.experts": "experts per mixture layer (> 0 adds mixtures)", "moe.topK": "experts per token (token choice)",
    "moe.capacityFactor": "capacity factor", "moe.routing": "tokenChoice or expertChoice", "moe.gates": "renormalized or probability",
    "moe.every": "a mixture every N blocks", "moe.first": "from this block", "moe.towers": "both, vision or text",
    "moe.lbWeight": "load-balance loss weight", "moe.zWeight": "router z-loss weight", "moe.localEntropyWeight": "LIMoE local entropy weight",
    "moe.globalEntropyWeight": "LIMoE global entropy weight",
]

struct SettingsError: Error, CustomStringConvertible {
    let key: String
    let reason: String
    var description: String { "setting '\(key)': \(reason)" }
}

/// `settings` with every "@KEY" text value replaced by the value of KEY (which may itself be a
/// reference, up to 8 deep): so a level can name a value each preset sets ("data": "@dataLarge",
/// "epochs": "@vars.largeEpochs"). Keys under "vars." hold such values and mean nothing else.
func resolvingReferences(_ settings: Settings) throws -> Settings {
    var out = settings
    for (key, value) in settings.values {
        var v = value, hops = 0
        while let t = v.stringValue, t.hasPrefix("@") {
            let target = String(t.dropFirst())
            guard let next = settings[target] else { throw SettingsError(key: key, reason: "\(t) names '\(target)', which is not set") }
            hops += 1
            guard hops <= 8 else { throw SettingsError(key: key, reason: "references more than 8 deep (a cycle?) from \(value)") }
            v = next
        }
        out[key] = v
    }
    return out
}

/// The training configuration of a run's settings (output directory `directory`).
func trainingConfiguration(_ unresolved: Settings, directory: String) throws -> TrainingConfiguration {
    let s = try resolvingReferences(unresolved)
    for key in s.values.keys where settingKeys[key] == nil && !key.hasPrefix("vars.") {
        throw SettingsError(key: key, reason: "unknown; known keys: \(settingKeys.keys.sorted().joined(separator: ", ")) and vars.*")
    }
    func int(_ k: String) throws -> Int? {
        guard let v = s[k] else { return nil }
        guard let i = v.intValue else { throw SettingsError(key: k, reason: "expected an integer, got \(v)") }
        return i
    }
    func double(_ k: String) throws -> Double? {
        guard let v = s[k] else { return nil }
        guard let d = v.doubleValue else { throw SettingsError(key: k, reason: "expected a number, got \(v)") }
        return d
    }
    func string(_ k: String) throws -> String? {
        guard let v = s[k] else { return nil }
        guard let t = v.stringValue else { throw SettingsError(key: k, reason: "expected text, got \(v)") }
        return t
    }
    /// One of an enum's raw values; the error lists them.
    func choice<E: RawRepresentable & CaseIterable>(_ k: String, _: E.Type) throws -> E? where E.RawValue == String {
        guard let v = try string(k) else { return nil }
        guard let e = E(rawValue: v) else {
            throw SettingsError(key: k, reason: "expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got \(v)")
        }
        return e
    }
    var c = TrainingConfiguration()
    c.output = directory
    c.threads = ProcessInfo.processInfo.activeProcessorCount
    if let v = try string("model") { c.model = v }
    if let v = try string("data") { c.data = v }
    if let v = try int("dataSeed") { c.dataSeed = UInt64(v) }
    if let v = try int("epochs") { c.epochs = v }
    if let b = try int("sampleBudget"), b > 0 {
        guard c.epochs >= 1, b % c.epochs == 0 else { throw SettingsError(key: "sampleBudget", reason: "\(b) is not a whole number of epochs of \(c.epochs)") }
        let batch = try int("batchSize") ?? c.batchSize
        guard b / c.epochs >= batch, (b / c.epochs) % batch == 0 else {
            throw SettingsError(key: "sampleBudget", reason: "\(b) ÷ \(c.epochs) epochs = \(b / c.epochs) pairs is not a whole number of batches of \(batch)")
        }
        c.data = "shapes:\(b / c.epochs)"
    }
    if let v = try int("batchSize") { c.batchSize = v }
    if let v = try double("lr") { c.learningRate = v }
    if let v = try double("lrMin") { c.learningRateFloor = v }
    if let v = try double("wd") { c.weightDecay = v }
    if let v = try int("warmup") { c.warmupSteps = v }
    if let f = try double("warmupFraction"), f > 0 {
        guard f < 1, case .shapes(let count, _) = try DataSource(c.data) else {
            throw SettingsError(key: "warmupFraction", reason: "expected a fraction in [0, 1) of a shapes run's steps, got \(f) with data \(c.data)")
        }
        c.warmupSteps = Int((f * Double(c.epochs * (count / c.batchSize))).rounded())
    }
    if let v = try int("seed") { c.seed = UInt64(v) }
    if let v = try choice("optimizer", OptimizerKind.self) { c.optimizer = v }
    if let v = try double("beta1") { c.beta1 = v }
    if let v = try double("beta2") { c.beta2 = v }
    if let v = try int("threads") { c.threads = v }
    if let v = try choice("precision", MatmulPrecision.self) { c.precision = v == .fp32 ? nil : v }
    if let v = try string("tokenizer") { c.tokenizer = v }
    if let v = try int("vocabSize") { c.trainedVocabularySize = v }
    if let v = try int("evalExamples") { c.evalExamplesPerClass = v }
    if let v = try int("retrievalSize") { c.retrievalCount = v }
    if let v = try int("evalEvery") { c.evalEvery = v }
    if let v = try string("evalData") { c.evalData = v }
    if let v = try string("zeroShotClasses") { c.zeroShotClasses = v }
    let scale = c.data.hasPrefix("shapes:") ? String(c.data.dropFirst("shapes:".count)) : nil
    let presetName = try string("objective.preset") ?? "openclip"
    guard var o = ObjectiveConfiguration.preset(presetName, dataScale: scale) else {
        throw SettingsError(key: "objective.preset", reason: "unknown preset \(presetName)")
    }
    if let v = try choice("objective.loss", LossKind.self) { o.loss = v }
    if let v = try choice("objective.temperatureRule", TemperatureRule.self) { o.temperatureRule = v }
    if let v = try choice("objective.innerLRSchedule", InnerLRScheduleKind.self) { o.innerLRSchedule = v }
    if let v = try double("objective.gammaMin") { o.gammaMin = v }
    if let v = try int("objective.gammaDecayEpochs") { o.gammaDecayEpochs = v }
    if let v = try double("objective.rho") { o.rho = v }
    if let v = try double("objective.lrTau") { o.learningRateTau = v }
    if let v = try double("objective.tauInit") { o.temperatureInit = v }
    if let v = try double("objective.lrTauRGCLG"), o.temperatureRule == .rgclG { o.learningRateTau = v }
    c.objective = o
    c.gradientReduction = try choice("gradientReduction", GradientReduction.self) ?? (o.loss == .mbcl ? .openclip : .fastclip)
    // CLIPA
    c.imageReduction = try string("imageReduction").flatMap { $0 == "none" ? nil : $0 }
    c.textReduction = try string("textReduction").flatMap { $0 == "truncate" ? nil : $0 }
    c.textLength = try int("textLength")
    if let v = try choice("visionPool", VisionPooling.self), v != .classToken { c.visionPool = v }
    if let v = try choice("visionPositional", VisionPositional.self), v != .learned { c.visionPositional = v }
    if let n = try int("finetune.epochs"), n > 0 {
        let data = try string("finetune.data") ?? c.data
        let warmup: Int
        if let w = try int("finetune.warmup") {
            warmup = w  // real data: the pair count is known only once the data is read, so the study gives the steps
        } else {
            guard case .shapes(let count, _) = try? DataSource(data) else {
                throw SettingsError(key: "finetune.data", reason: "expected shapes:N (or set finetune.warmup in steps for real data), got \(data)")
            }
            warmup = Int(((try double("finetune.warmupFraction") ?? 0.1) * Double(n * (count / c.batchSize))).rounded())
        }
        var f = FinetuneStage(epochs: n, learningRate: try double("finetune.lr") ?? c.learningRate * (try double("finetune.lrFactor") ?? 0.1), warmupSteps: warmup)
        f.data = try string("finetune.data")
        f.imageReduction = try string("finetune.imageReduction").flatMap { $0 == "none" ? nil : $0 }
        f.textReduction = try string("finetune.textReduction").flatMap { $0 == "truncate" ? nil : $0 }
        f.textLength = try int("finetune.textLength")
        if let v = s["finetune.carryOptimizer"] {
            guard case .bool(let b) = v else { throw SettingsError(key: "finetune.carryOptimizer", reason: "expected true or false, got \(v)") }
            f.carryOptimizerState = b
        }
        c.finetune = f
    }
    if let e = try int("moe.experts"), e > 0 {
        let m = MoEConfiguration(
            experts: e, topK: try int("moe.topK") ?? 2, capacityFactor: try double("moe.capacityFactor") ?? 2,
            routing: try choice("moe.routing", MoEConfiguration.Routing.self) ?? .tokenChoice, gates: try choice("moe.gates", MoEConfiguration.Gates.self) ?? .renormalized,
            loadBalanceWeight: try double("moe.lbWeight") ?? 0.01, zLossWeight: try double("moe.zWeight") ?? 0.001,
            localEntropyWeight: try double("moe.localEntropyWeight") ?? 0, globalEntropyWeight: try double("moe.globalEntropyWeight") ?? 0)
        let placement = MoEPlacement(m, every: try int("moe.every") ?? 2, first: try int("moe.first") ?? 1)
        let towers = try choice("moe.towers", UpcycledTowers.self) ?? .both
        switch try string("moe.at") ?? "upcycle" {
        case "scratch":
            if towers != .text { c.visionExperts = placement }
            if towers != .vision { c.textExperts = placement }
        case "upcycle":
            guard var f = c.finetune else { throw SettingsError(key: "moe.at", reason: "upcycle needs a second stage (finetune.epochs > 0)") }
            f.upcycle = UpcycleSpec(placement: placement, towers: towers, copyOptimizerState: f.carryOptimizerState)
            f.carryOptimizerState = false
            c.finetune = f
        case let other: throw SettingsError(key: "moe.at", reason: "expected scratch or upcycle, got \(other)")
        }
    }
    try c.validate()
    return c
}

/// The executor of each run: in this process for one rank, else `clip train` under mpirun. The
/// ranks are the run's `ranks` setting, else `defaultRanks` (`study --ranks`); the threads per rank
/// are `threads` (`study --threads`), else the run's `threads` setting, else the cores divided
/// among the ranks and the `jobs` running at once. With `jobs` above 1 a one-rank run is a `clip
/// train` process of its own (the thread budget is per process), its output in the run directory's
/// `stdout.txt`. With `probeCollectives` a multi-rank run also times the collectives.
func studyExecutor(defaultRanks: Int, threads: Int?, jobs: Int = 1) -> RunExecutor {
    { run, directory in
        let ranks = run.settings["ranks"]?.intValue ?? defaultRanks
        guard ranks >= 1 else { throw SettingsError(key: "ranks", reason: "expected ≥ 1, got \(ranks)") }
        let perRank = threads ?? run.settings["threads"]?.intValue ?? max(1, ProcessInfo.processInfo.activeProcessorCount / (ranks * jobs))
        if ranks == 1 && jobs == 1 {
            try inProcessExecutor(threads: perRank)(run, directory)
            return
        }
        try clipExecutor(ranks: ranks, threads: perRank, output: jobs > 1 ? directory + "/stdout.txt" : nil)(run, directory)
        if run.settings["probeCollectives"] == .bool(true) {
            // Up to 2²³ floats: the all-reduce of tiny's P ≈ 8M parameters at K = 2 sends P/2 per round.
            try runClip(["bench", "collectives", "--ranks", "\(ranks)", "--max-log2", "23", "--csv", directory + "/collectives.csv"], what: "probeCollectives")
        }
    }
}

/// The `clip` executable beside this one, and its modification date, found at the first use: the
/// `study` command reads it when it starts, since once a rebuild replaces this executable's file
/// /proc/self/exe names a deleted file (`…/study (deleted)`).
let clipExecutable: (path: String, modified: Date?) = {
    var own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    if own.hasSuffix(" (deleted)") { own.removeLast(" (deleted)".count) }
    let path = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent("clip").path
    return (path, modificationDate(path))
}()

/// The Swift and C files of the training code under ./Sources (all but Workbench and Benchmarks)
/// with their modification dates, when the study runs in a checkout; empty elsewhere.
func trainingSources() -> [(path: String, date: Date)] {
    let fm = FileManager.default
    guard let folders = try? fm.contentsOfDirectory(atPath: "Sources") else { return [] }
    var sources: [(path: String, date: Date)] = []
    for folder in folders where !["Workbench", "Benchmarks"].contains(folder) {
        guard let files = fm.enumerator(atPath: "Sources/" + folder) else { continue }
        for case let f as String in files where f.hasSuffix(".swift") || f.hasSuffix(".c") || f.hasSuffix(".h") {
            let path = "Sources/\(folder)/\(f)"
            if let d = modificationDate(path) { sources.append((path, d)) }
        }
    }
    return sources
}

func modificationDate(_ path: String) -> Date? { (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date }

/// Runs the `clip` executable next to this one (its standard output and error into the file
/// `output` when given); throws naming `what` on failure.
func runClip(_ arguments: [String], what: String, output: String? = nil) throws {
    let clip = clipExecutable.path
    guard FileManager.default.isExecutableFile(atPath: clip) else { throw SettingsError(key: what, reason: "\(clip) not found: runs under mpirun or --jobs need the clip executable next to study; build it with `swift build --product clip` (or `swift build -c release` for .build/release)") }
    guard let started = clipExecutable.modified else {
        throw SettingsError(key: what, reason: "\(clip) was not there when this study started; rerun the study (its finished runs stay cached)")
    }
    guard modificationDate(clip) == started else {
        throw SettingsError(
            key: what, reason: "\(clip) changed since this study started (rebuilt?), so its next runs would come from another build than its first; "
                + "rerun the study (its finished runs stay cached), or run studies from a copy of the executables when rebuilding beside them")
    }
    // A source newer than clip is stale unless the build shows it changed no code (BuildFreshness).
    let stale = BuildFreshness.staleSources(trainingSources(), executable: clip, built: started)
    if let file = stale.max(by: { $0.date < $1.date })?.path {
        throw SettingsError(
            key: what, reason: "\(clip) is older than \(file), so it would train with other code than this study's cache ids name; "
                + "rebuild it: `swift build -c release --product clip` (or `swift build --product clip` for a debug study)")
    }
    let p = Process()
    p.executableURL = URL(fileURLWithPath: clip)
    p.arguments = arguments
    var log: FileHandle?
    if let output {
        guard FileManager.default.createFile(atPath: output, contents: nil), let h = FileHandle(forWritingAtPath: output) else {
            throw SettingsError(key: what, reason: "cannot create \(output)")
        }
        p.standardOutput = h
        p.standardError = h
        log = h
    }
    try p.run()
    p.waitUntilExit()
    try log?.close()
    if p.terminationStatus == Preemption.exitStatus {
        throw RunStopped(message: "clip \(arguments.first ?? "") stopped on request after a checkpoint (status \(Preemption.exitStatus))"
                         + (output.map { "; its output is in \($0)" } ?? ""))
    }
    guard p.terminationStatus == 0 else {
        throw SettingsError(key: what, reason: "clip \(arguments.first ?? "") exited with \(p.terminationStatus)" + (output.map { "; its output is in \($0)" } ?? ""))
    }
}

/// Runs in this process (one rank).
func inProcessExecutor(threads: Int?) -> RunExecutor {
    { run, directory in
        do { try trainInProcess(run, directory: directory, threads: threads) } catch TrainingError.stopped(let reason, let step, let checkpoint) {
            throw RunStopped(message: "stopped at step \(step) (\(reason)) after writing \(checkpoint)")
        }
    }
}

/// One run of `inProcessExecutor`.
func trainInProcess(_ run: PlannedRun, directory: String, threads: Int?) throws {
    var c = try trainingConfiguration(run.settings, directory: directory)
    if let t = threads { c.threads = t }
    if c.finetune != nil {
        // CLIPA's two stages; a run stopped between them continues where it stopped.
        let resume = FileManager.default.fileExists(atPath: directory + "/config.json")
        _ = try StagedTraining.run(c, resume: resume, announce: { print($0); fflush(nil) })
    } else {
        // A run stopped part-way (killed, preempted) continues from its last checkpoint.
        let latest = TrainingState.latestCheckpoint(runDirectory: directory)
        if let latest { print("resuming from \(latest.path)") }
        _ = try Trainer(c, resume: latest != nil).run()
    }
}

/// Runs `clip train` (next to this executable) with `--ranks K`, which re-launches under mpirun
/// when K > 1, with `threads` per rank (on one machine clip's `--threads` is the total it splits).
func clipExecutor(ranks: Int, threads: Int, output: String? = nil) -> RunExecutor {
    { run, directory in
        let c = try trainingConfiguration(run.settings, directory: directory)
        let stagedPartway = c.finetune != nil && FileManager.default.fileExists(atPath: directory + "/config.json")
        if stagedPartway || (c.finetune == nil && TrainingState.latestCheckpoint(runDirectory: directory) != nil) {
            // A run stopped part-way (as the in-process executor does): it continues (in the stage
            // it stopped) from its last checkpoint, with its recorded configuration.
            let args = ["train", "--resume", directory, "--ranks", "\(ranks)", "--threads", "\(threads * ranks)"]
            try runClip(args, what: ranks > 1 ? "ranks" : "jobs", output: output)
            return
        }
        var args = [
            "train", "--model", c.model, "--data", c.data, "--data-seed", "\(c.dataSeed)", "--epochs", "\(c.epochs)", "--batch-size", "\(c.batchSize)",
            "--lr", "\(c.learningRate)", "--lr-min", "\(c.learningRateFloor)", "--wd", "\(c.weightDecay)", "--warmup", "\(c.warmupSteps)",
            "--seed", "\(c.seed)", "--optimizer", c.optimizer.rawValue, "--beta1", "\(c.beta1)", "--beta2", "\(c.beta2)", "--tokenizer", c.tokenizer, "--vocab-size", "\(c.trainedVocabularySize)",
            "--eval-examples", "\(c.evalExamplesPerClass)", "--retrieval-size", "\(c.retrievalCount)", "--eval-every", "\(c.evalEvery)",
            "--objective", c.objective.preset ?? "openclip", "--loss", c.objective.loss.rawValue,
            "--temperature-rule", c.objective.temperatureRule.rawValue, "--inner-lr-schedule", c.objective.innerLRSchedule.rawValue,
            "--gamma-min", "\(c.objective.gammaMin)", "--rho", "\(c.objective.rho)", "--tau-init", "\(c.objective.temperatureInit)",
            "--gradient-reduction", c.gradientReduction.rawValue, "--ranks", "\(ranks)", "--threads", "\(threads * ranks)", "--out", directory,
        ]
        if let e = c.objective.gammaDecayEpochs { args += ["--gamma-decay-epochs", "\(e)"] }
        if let l = c.objective.learningRateTau { args += ["--lr-tau", "\(l)"] }
        if let p = c.precision { args += ["--precision", p.rawValue] }
        args += clipaArguments(c)
        try runClip(args, what: ranks > 1 ? "ranks" : "jobs", output: output)
    }
}

/// `clip train`'s CLIPA stage and CLIP-UP mixture options for the configuration `c` (none for a plain run).
func clipaArguments(_ c: TrainingConfiguration) -> [String] {
    var args: [String] = []
    if let v = c.imageReduction { args += ["--image-reduction", v] }
    if let v = c.textReduction { args += ["--text-reduction", v] }
    if let v = c.textLength { args += ["--text-length", "\(v)"] }
    if let v = c.visionPool { args += ["--vision-pool", v.rawValue] }
    if let v = c.visionPositional { args += ["--vision-positional", v.rawValue] }
    if let f = c.finetune {
        args += ["--finetune-epochs", "\(f.epochs)", "--finetune-lr", "\(f.learningRate)", "--finetune-warmup", "\(f.warmupSteps)"]
        if let v = f.data { args += ["--finetune-data", v] }
        if let v = f.imageReduction { args += ["--finetune-image-reduction", v] }
        if let v = f.textReduction { args += ["--finetune-text-reduction", v] }
        if let v = f.textLength { args += ["--finetune-text-length", "\(v)"] }
        if f.carryOptimizerState || f.upcycle?.copyOptimizerState == true { args.append("--finetune-carry-optimizer") }
        if let u = f.upcycle { args += ["--finetune-upcycle"] + mixtureArguments(u.placement, u.towers) }
    }
    let scratch = c.visionExperts ?? c.textExperts
    if let p = scratch {
        args += mixtureArguments(p, c.visionExperts == nil ? .text : c.textExperts == nil ? .vision : .both)
    }
    return args
}

/// `clip train`'s mixture options for `placement` in `towers`.
func mixtureArguments(_ p: MoEPlacement, _ towers: UpcycledTowers) -> [String] {
    let m = p.configuration
    return [
        "--experts", "\(m.experts)", "--top-k", "\(m.topK)", "--capacity-factor", "\(m.capacityFactor)", "--every", "\(p.every)",
        "--first-block", "\(p.first)", "--towers", towers.rawValue, "--routing", m.routing == .tokenChoice ? "token-choice" : "expert-choice",
        "--gates", m.gates.rawValue, "--lb-weight", "\(m.loadBalanceWeight)", "--z-weight", "\(m.zLossWeight)",
        "--local-entropy-weight", "\(m.localEntropyWeight)", "--global-entropy-weight", "\(m.globalEntropyWeight)",
    ]
}
