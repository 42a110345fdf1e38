// CLIPA's two stages in one run (§A5): pre-train at reduced image and text tokens, then fine-tune
// at full length from the pre-training's last checkpoint, with the positional tables resized
// between them. The run directory holds
//
//   config.json          the whole run's configuration (with its `finetune` stage)
//   pretrain/            stage 1: an ordinary run directory (metrics, log, checkpoints)
//   finetune/            stage 2: likewise, initialised from pretrain/'s last checkpoint
//   metrics.csv          both stages' rows, the second's epochs, steps, samples and compute
//                        continuing the first's, with a `stage` column (1, 2)
//
// A stopped run resumes in whichever stage it stopped (each stage resumes from its own
// checkpoints), and gives the numbers of an unbroken run.

import CLIP
import Collective
import Compute
import Foundation

/// Runs a configuration whose `finetune` is set as two `Trainer` runs.
public enum StagedTraining {
    /// Stage names and their subdirectories, in order.
    public static let stages = ["pretrain", "finetune"]

    /// The two stages' configurations for the run `config` (whose `finetune` must be set).
    public static func stageConfigurations(_ config: TrainingConfiguration) throws -> [TrainingConfiguration] {
        guard let finetune = config.finetune else {
            throw TrainingError.invalid(option: "--finetune-epochs", reason: "a staged run needs a fine-tuning stage")
        }
        var pretrain = config
        pretrain.finetune = nil
        pretrain.checkpoints = true  // the fine-tuning starts from the last one
        pretrain.output = config.output + "/pretrain"
        let last = pretrain.output + "/checkpoints/epoch_\(pretrain.epochs).safetensors"
        // An upcycling stage starts from the upcycled copy of that checkpoint, in its own directory.
        let start = finetune.upcycle == nil ? last : upcycledCheckpoint(config)
        let tune = finetune.configuration(after: pretrain, checkpoint: start, output: config.output + "/finetune")
        return [pretrain, tune]
    }

    /// Where an upcycling run keeps its upcycled pre-trained model.
    public static func upcycledCheckpoint(_ config: TrainingConfiguration) -> String { config.output + "/upcycled.safetensors" }

    /// Runs (or, with `resume`, continues) both stages; returns the fine-tuning's summary with
    /// the steps, samples and wall time of both, and the trainer of the last stage run.
    public static func run(
        _ config: TrainingConfiguration, resume: Bool = false, threads: Int? = nil, communicator: any Communicator = SingleProcessCommunicator(),
        announce: (String) -> Void = { _ in }
    ) throws -> (trainer: Trainer?, summary: TrainingSummary) {
        var config = config
        if let t = threads { config.threads = t }
        try config.validate()
        let stageConfigs = try stageConfigurations(config)
        if !resume, stageConfigs.contains(where: { FileManager.default.fileExists(atPath: $0.output) }) {
            throw TrainingError.invalid(
                option: "--out", reason: "\(config.output) already holds a staged run; continue it with --resume \(config.output), or choose another directory")
        }
        if communicator.isRoot {
            try FileManager.default.createDirectory(atPath: config.output, withIntermediateDirectories: true)
            if !resume { try writeConfiguration(config) }
        }
        var summaries: [TrainingSummary] = []
        var last: Trainer?
        for (index, stage) in stageConfigs.enumerated() {
            let name = stages[index]
            if let done = TrainingState.latestCheckpoint(runDirectory: stage.output), done.epoch == stage.epochs,
                let summary = try? finishedSummary(stage)
            {
                announce("stage \(index + 1) (\(name)) finished earlier; skipping it")
                summaries.append(summary)
                continue
            }
            let partial = TrainingState.latestCheckpoint(runDirectory: stage.output) != nil
            if index == 1, let spec = config.finetune?.upcycle, !partial {
                // Upcycled once, by rank 0, before the stage (again after a stop before the stage began).
                let path = upcycledCheckpoint(config)
                if communicator.isRoot {
                    let moe = try spec.write(from: stageConfigs[0].output + "/checkpoints/epoch_\(stageConfigs[0].epochs).safetensors", to: path,
                                             routerSeed: spec.routerSeed ?? config.seed).model
                    announce("upcycled the pre-trained model: \(moe.vision.transformer.mixtureBlocks.count + moe.text.transformer.mixtureBlocks.count) "
                             + "mixture layers of \(spec.placement.configuration.experts) experts → \(path)")
                }
                try communicator.barrier()
            }
            announce("stage \(index + 1) of \(stageConfigs.count): \(name)" + (partial ? " (resumed)" : ""))
            let trainer = try Trainer(stage, resume: partial, communicator: communicator)
            summaries.append(try trainer.run())
            last = trainer
            if communicator.isRoot { try writeCombinedMetrics(config) }
        }
        if communicator.isRoot { try writeCombinedMetrics(config) }
        let s = summaries.last!
        let samples = summaries.reduce(0) { $0 + $1.samplesSeen }
        let trainSeconds = summaries.reduce(0.0) { $0 + $1.trainSecondsPerSample * Double($1.samplesSeen) }
        return (last, TrainingSummary(
            steps: summaries.reduce(0) { $0 + $1.steps }, samplesSeen: samples, wallSeconds: summaries.reduce(0) { $0 + $1.wallSeconds },
            trainSecondsPerSample: trainSeconds / Double(max(samples, 1)), finalMetrics: s.finalMetrics))
    }

    /// The configuration a run directory's config.json records (a staged run's has `finetune`
    /// set), with `output` set to the directory.
    public static func recordedConfiguration(runDirectory directory: String) throws -> TrainingConfiguration {
        let path = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.io(path: path, reason: "not found: --resume needs a run directory written by clip train")
        }
        struct Recorded: Decodable { let training: TrainingConfiguration }
        do {
            var c = try JSONDecoder().decode(Recorded.self, from: data).training
            c.output = directory
            return c
        } catch {
            throw TrainingError.io(path: path, reason: "does not hold a training configuration this version reads: \(error)")
        }
    }

    static func writeConfiguration(_ config: TrainingConfiguration) throws {
        struct Staged: Encodable {
            let training: TrainingConfiguration
            let stages: [String]
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try enc.encode(Staged(training: config, stages: stages)), to: config.output + "/config.json")
    }

    /// A finished stage's summary, from its metrics.csv.
    static func finishedSummary(_ stage: TrainingConfiguration) throws -> TrainingSummary {
        let (columns, rows) = try MetricsCSV.read(path: stage.output + "/metrics.csv")
        guard let lastRow = rows.last else { throw TrainingError.io(path: stage.output + "/metrics.csv", reason: "has no rows") }
        let row = Dictionary(uniqueKeysWithValues: zip(columns, lastRow))
        let steps = Int(row["step"] ?? 0)
        let perEpoch = Double(max(1, steps / max(1, stage.epochs)) * stage.batchSize)
        let rate = row["train_seconds"].flatMap { $0.isFinite ? $0 / perEpoch : nil } ?? 0
        return TrainingSummary(
            steps: steps, samplesSeen: steps * stage.batchSize, wallSeconds: row["seconds"] ?? 0, trainSecondsPerSample: rate,
            finalMetrics: row)
    }

    /// Writes `metrics.csv` of the run: the stages' rows in order, with epoch, step, samples,
    /// compute and seconds continuing across the boundary, and the stage number.
    public static func writeCombinedMetrics(_ config: TrainingConfiguration) throws {
        let stageConfigs = try stageConfigurations(config)
        // A stage's own extra columns (an upcycled stage's routing) follow, NaN in the other stage.
        var extra: [String] = []
        for stage in stageConfigs where FileManager.default.fileExists(atPath: stage.output + "/metrics.csv") {
            for c in try MetricsCSV.read(path: stage.output + "/metrics.csv").columns where !Trainer.metricColumns.contains(c) && !extra.contains(c) {
                extra.append(c)
            }
        }
        let columns = ["stage"] + Trainer.metricColumns + extra
        var lines = [columns.joined(separator: ",")]
        var offsets = ["epoch": 0.0, "step": 0.0, "samples_seen": 0.0, "compute_gmacs": 0.0, "seconds": 0.0]
        for (index, stage) in stageConfigs.enumerated() {
            let path = stage.output + "/metrics.csv"
            guard FileManager.default.fileExists(atPath: path) else { break }
            let (names, rows) = try MetricsCSV.read(path: path)
            var lastValues = offsets
            for (r, values) in rows.enumerated() {
                // One row per epoch: the fine-tuning's row before training (the loaded model at full
                // size with its resized tables: CLIPA's "before fine-tuning" number) stays in
                // finetune/metrics.csv.
                if index > 0 && r == 0 { continue }
                let row = Dictionary(uniqueKeysWithValues: zip(names, values))
                var out = ["\(index + 1)"]
                for c in Trainer.metricColumns + extra {
                    var v = row[c] ?? .nan
                    if let o = offsets[c] {
                        v += o
                        lastValues[c] = v
                    }
                    out.append(MetricsCSV.format(v))
                }
                lines.append(out.joined(separator: ","))
            }
            offsets = lastValues
        }
        try writeAtomically(Data((lines.joined(separator: "\n") + "\n").utf8), to: config.output + "/metrics.csv")
    }
}
