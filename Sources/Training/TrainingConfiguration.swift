// A training run's configuration: every option of `clip train`, validated, and written (resolved)
// to the run's config.json.

import CLIP
import Compute
import Foundation
import Layers
import Objectives

public struct TrainingConfiguration: Codable, Sendable, Hashable {
    /// Model preset (nano, micro, tiny, small).
    public var model: String = "tiny"
    /// Data source: `shapes:<scale>` (cc3m-mini, cc12m-mini, laion315m-mini) or `shapes:<count>`.
    public var data: String = "shapes:cc3m-mini"
    /// Seed of the synthetic data (the world), separate from the training seed.
    public var dataSeed: UInt64 = 0
    public var epochs: Int = 10
    /// Global batch size.
    public var batchSize: Int = 256
    public var learningRate: Double = 1e-3
    /// Floor of the cosine schedule.
    public var learningRateFloor: Double = 0
    public var weightDecay: Double = 0.1
    public var warmupSteps: Int = 500
    public var seed: UInt64 = 0
    public var optimizer: OptimizerKind = .adamw
    public var beta1: Double = 0.9
    public var beta2: Double = 0.98
    public var epsilon: Double = 1e-6
    /// Global-norm gradient clipping; nil (the default, as in OpenCLIP) for none.
    public var gradientClipNorm: Double? = nil
    /// The objective: loss, temperature rule, inner-LR schedule and their hyper-parameters
    /// (OpenCLIP's by default; `clip train --objective NAME` picks a preset).
    public var objective: ObjectiveConfiguration = ObjectiveConfiguration.preset("openclip")!
    /// How feature gradients reach their owners when several ranks train (FastCLIP §7):
    /// `openclip` (all-gather + reduce-scatter) or `fastclip` (all-gather of per-sample scalars).
    public var gradientReduction: GradientReduction = .openclip
    /// Overlap the parameter-gradient all-reduce with the backward pass (two buckets: the text
    /// tower's starts while the vision tower's backward runs).
    public var overlapCommunication: Bool = true
    /// Threads for OpenBLAS and the element-wise kernels.
    public var threads: Int = 1
    /// How the step uses its threads: `gemm` (every product and kernel threaded), `batch-split`
    /// (a shard of the batch per thread, see `BatchSplitStep`), or nil for `auto` (the rule of
    /// `ThreadMode.rule`). Optional so that config.json files written before it existed still load.
    public var threadMode: ThreadMode? = nil
    /// What the training step keeps for backward: `full` (fastest) or `recompute` (activation
    /// checkpointing: about half the activation memory for tiny, +25% FLOPs; same results).
    public var activationMemory: ActivationMemory = .full
    /// Tokenizer: `auto` (CLIP's BPE when its merges file is installed, else one trained on the
    /// captions), `clip`, or `trained`.
    public var tokenizer: String = "auto"
    /// Vocabulary size of a trained BPE.
    public var trainedVocabularySize: Int = 2048
    /// Held-out zero-shot examples per class, and the size of the retrieval set.
    public var evalExamplesPerClass: Int = 50
    public var retrievalCount: Int = 1000
    /// Evaluate every this many epochs (and always after the last); 0 for only the last.
    public var evalEvery: Int = 1
    /// Write a checkpoint after every epoch.
    public var checkpoints: Bool = true
    /// The run directory.
    public var output: String = "runs/default"

    public init() {}

    /// Checks every option; the error names the option and the allowed range.
    public func validate() throws {
        func check(_ ok: Bool, _ option: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalid(option: option, reason: reason) }
        }
        try check(CLIPConfiguration.preset(model) != nil, "--model", "unknown preset '\(model)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
        if case .shapes(let count, _) = try DataSource(data) {
            try check(batchSize <= count, "--batch-size", "must not exceed the data set's \(count) pairs, got \(batchSize)")
        }
        try check((1...100_000).contains(epochs), "--epochs", "must be in 1...100000, got \(epochs)")
        try check((2...65_536).contains(batchSize), "--batch-size", "must be in 2...65536, got \(batchSize)")
        try check(learningRate > 0 && learningRate <= 1, "--lr", "must be in (0, 1], got \(learningRate)")
        try check(learningRateFloor >= 0 && learningRateFloor <= learningRate, "--lr-min", "must be in [0, lr], got \(learningRateFloor)")
        try check(weightDecay >= 0 && weightDecay < 10, "--wd", "must be in [0, 10), got \(weightDecay)")
        try check(warmupSteps >= 0, "--warmup", "must be ≥ 0, got \(warmupSteps)")
        try check(beta1 >= 0 && beta1 < 1, "--beta1", "must be in [0, 1), got \(beta1)")
        try check(beta2 >= 0 && beta2 < 1, "--beta2", "must be in [0, 1), got \(beta2)")
        try check(epsilon > 0, "--eps", "must be > 0, got \(epsilon)")
        if let c = gradientClipNorm { try check(c > 0, "--grad-clip-norm", "must be > 0, got \(c)") }
        try check((1...256).contains(threads), "--threads", "must be in 1...256, got \(threads)")
        try check(["auto", "clip", "trained"].contains(tokenizer), "--tokenizer", "must be auto, clip or trained, got '\(tokenizer)'")
        try check((514...100_000).contains(trainedVocabularySize), "--vocab-size", "must be in 514...100000, got \(trainedVocabularySize)")
        try check((1...10_000).contains(evalExamplesPerClass), "--eval-examples", "must be in 1...10000, got \(evalExamplesPerClass)")
        try check((10...100_000).contains(retrievalCount), "--retrieval-size", "must be in 10...100000, got \(retrievalCount)")
        try check(evalEvery >= 0, "--eval-every", "must be ≥ 0, got \(evalEvery)")
        try check(!output.isEmpty, "--out", "must name a directory")
        do { try objective.validate() } catch let e as ObjectiveError { throw TrainingError.invalid(option: e.option, reason: e.reason) }
    }
}

/// A parsed `--data` value.
public enum DataSource: Sendable, Hashable, CustomStringConvertible {
    case shapes(count: Int, name: String)

    public init(_ text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] == "shapes" else {
            throw TrainingError.invalid(option: "--data", reason: "expected shapes:<scale> (cc3m-mini, cc12m-mini, laion315m-mini) or shapes:<count>, got '\(text)'")
        }
        if let n = Int(parts[1]) {
            guard n >= 2 && n <= 100_000_000 else {
                throw TrainingError.invalid(option: "--data", reason: "shapes:<count> needs a count in 2...100000000, got \(n)")
            }
            self = .shapes(count: n, name: parts[1])
        } else {
            let scales = ["cc3m-mini": 27_000, "cc12m-mini": 91_000, "laion315m-mini": 3_150_000]
            guard let n = scales[parts[1]] else {
                throw TrainingError.invalid(option: "--data", reason: "unknown shapes scale '\(parts[1])'; expected cc3m-mini, cc12m-mini, laion315m-mini or a count")
            }
            self = .shapes(count: n, name: parts[1])
        }
    }

    public var description: String {
        switch self {
        case .shapes(_, let name): "shapes:\(name)"
        }
    }
}
