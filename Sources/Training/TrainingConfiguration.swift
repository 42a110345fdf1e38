// A training run's configuration: every option of `clip train`, validated, and written (resolved)
// to the run's config.json.

import CLIP
import Compute
import Data
import Foundation
import Layers
import Objectives
import TokenReduction

public struct TrainingConfiguration: Codable, Sendable, Hashable {
    /// Model preset (`CLIPConfiguration.presetNames`).
    public var model: String = "tiny"
    /// An architecture given in full instead of the preset (`clip train --model-config FILE`, an
    /// OpenCLIP model config read by `OpenCLIPConfig`); its vocabulary must be the tokenizer's.
    /// Optional, so config.json files written before it existed still load.
    public var modelArchitecture: CLIPConfiguration? = nil
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
    /// Precision of the matrix products: fp32, bf16 (needs AVX-512 BF16 or AMX and a BLAS with
    /// `cblas_sbgemm`) or bf16-emulated (bf16's rounding at fp32 speed, on any CPU); see
    /// `MatmulPrecision`. Optional so that config.json files written before it existed still load
    /// (nil = fp32).
    public var precision: MatmulPrecision? = nil
    /// Real data (`--data wds:…` or `csv:…`): what happens to a sample that cannot be used
    /// (nil = skip), and the CSV/TSV separator and columns (nil = tab, `filepath`, `title`, as
    /// OpenCLIP's defaults). Optional so that older config.json files still load.
    public var badSamples: BadSamplePolicy? = nil
    public var csvSeparator: String? = nil
    public var csvImageKey: String? = nil
    public var csvCaptionKey: String? = nil
    /// A held-out real data set (wds:… or csv:…) evaluated every `evalEvery` epochs instead of the
    /// shapes world's tasks (retrieval; zero-shot with `zeroShotClasses`, a classes.json), or nil.
    public var evalData: String? = nil
    public var zeroShotClasses: String? = nil
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

    // Reliability (optional, so older config.json files still load). None of them changes a
    // result, so a run may be resumed with other values (`operational` fields).

    /// Also checkpoint every this many global steps inside an epoch (`step_S.safetensors` and its
    /// state file, enough to continue bit for bit); nil or 0 for epoch checkpoints only.
    public var saveEverySteps: Int? = nil
    /// How many of the newest step checkpoints to keep (default 2); epoch checkpoints all stay.
    public var keepStepCheckpoints: Int? = nil
    /// Stop as on SIGTERM (a checkpoint at the next step boundary, then `TrainingError.stopped`)
    /// once this invocation has run this many seconds.
    public var timeLimitSeconds: Double? = nil
    /// Stop after this many epochs of this invocation (after their checkpoints), unless the run ends first.
    public var stopAfterEpochs: Int? = nil
    /// What a NaN or infinity in the loss, the gradients, u or τ does: `stop` (the default) ends the
    /// run naming the step, the tensor and the last good checkpoint; `rollback` reloads that
    /// checkpoint, multiplies the learning rate by `rollbackLRFactor` (default 0.5) and goes on, at
    /// most `maxRollbacks` times (default 3). Under MPI the ranks agree on a divergence at the end
    /// of its step (one all-reduce of a flag), and all stop, or all roll back, there.
    public var onDivergence: DivergencePolicy? = nil
    public var rollbackLRFactor: Double? = nil
    public var maxRollbacks: Int? = nil
    /// The run directory.
    public var output: String = "runs/default"

    // CLIPA (optional, so config.json files written before they existed still load).

    /// How the run reduces image tokens (`ImageTokenReduction`'s command-line form: none,
    /// resize:PIXELS, random:RATIO, grid:K[:fixed|image|window], block:RATIO); nil for none.
    public var imageReduction: String? = nil
    /// How captions are shortened to `textLength` (truncate, random, shuffle, block, syntax); nil
    /// for truncate.
    public var textReduction: String? = nil
    /// The text tower's context length in this run (nil: the model preset's).
    public var textLength: Int? = nil
    /// The vision tower's pooling and positional table (nil: class token, learned).
    public var visionPool: VisionPooling? = nil
    public var visionPositional: VisionPositional? = nil
    /// CLIP-UP: the mixtures of experts of each tower (nil: dense, or whatever the `initFrom`
    /// checkpoint holds; given here, they must equal the checkpoint's). A run with them and no
    /// `initFrom` trains a mixture-of-experts model from scratch.
    public var visionExperts: MoEPlacement? = nil
    public var textExperts: MoEPlacement? = nil
    /// Start from this checkpoint's parameters instead of the initialisation; positional tables
    /// of another grid or length are resized (`CLIPModel.load(from:resizingPositional:)`).
    public var initFrom: String? = nil
    /// With `initFrom`, also start from the optimizer moments of its state file (tensors whose
    /// shape changed start from zero moments). Off: every moment starts at zero.
    public var initOptimizerState: Bool? = nil
    /// CLIPA's second stage: after `epochs`, fine-tune at full tokens (see `FinetuneStage`).
    public var finetune: FinetuneStage? = nil

    public init() {}

    /// This configuration with the fields that do not change a result (threads, the run
    /// directory, checkpoint cadence and stop conditions) taken from `other`: two runs whose
    /// configurations differ only in these may continue each other.
    public func withOperationalFields(of other: TrainingConfiguration) -> TrainingConfiguration {
        var c = self
        c.threads = other.threads
        c.output = other.output
        c.saveEverySteps = other.saveEverySteps
        c.keepStepCheckpoints = other.keepStepCheckpoints
        c.timeLimitSeconds = other.timeLimitSeconds
        c.stopAfterEpochs = other.stopAfterEpochs
        return c
    }

    /// The image token reduction, parsed.
    public func parsedImageReduction() throws -> ImageTokenReduction {
        do { return try imageReduction.map(ImageTokenReduction.init(parsing:)) ?? .none } catch let e as TokenReductionError {
            throw TrainingError.invalid(option: "--image-reduction", reason: e.message)
        }
    }

    /// The text token reduction, parsed.
    public func parsedTextReduction() throws -> TextTokenReduction {
        do { return try textReduction.map(TextTokenReduction.init(parsing:)) ?? .truncate } catch let e as TokenReductionError {
            throw TrainingError.invalid(option: "--text-reduction", reason: e.message)
        }
    }

    /// The architecture this run trains: the preset (or `modelArchitecture`) with the run's image
    /// size (a resize), text length, pooling and positional table.
    public func modelConfiguration(vocabularySize: Int) throws -> CLIPConfiguration {
        var m: CLIPConfiguration
        if let given = modelArchitecture {
            guard given.text.vocabularySize == vocabularySize else {
                throw TrainingError.invalid(
                    option: "--model-config",
                    reason: "text_cfg.vocab_size is \(given.text.vocabularySize) but the tokenizer has \(vocabularySize) tokens"
                        + (given.text.vocabularySize == CLIPConfiguration.clipVocabularySize ? " (--tokenizer clip gives CLIP's BPE of \(CLIPConfiguration.clipVocabularySize))" : ""))
            }
            m = given
        } else {
            guard let preset = CLIPConfiguration.preset(model, vocabularySize: vocabularySize) else {
                throw TrainingError.invalid(option: "--model", reason: "unknown preset '\(model)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
            }
            m = preset
        }
        let image = try parsedImageReduction()
        let size = image.trainingImageSize(modelImageSize: m.vision.imageSize)
        guard size % m.vision.patchSize == 0, size <= m.vision.imageSize else {
            throw TrainingError.invalid(
                option: "--image-reduction",
                reason: "\(image.name): the image size must be a multiple of the patch size \(m.vision.patchSize) and at most the model's \(m.vision.imageSize) px")
        }
        m.vision.imageSize = size
        if let l = textLength { m.text.contextLength = l }
        if let p = visionPool { m.vision.pool = p }
        if let p = visionPositional { m.vision.positional = p }
        if let e = visionExperts { m.vision.experts = e }
        if let e = textExperts { m.text.experts = e }
        do { try m.validate() } catch let e as ConfigurationError {
            throw TrainingError.invalid(option: e.message.contains(".experts") ? "--experts / --every / --first-block" : "--model", reason: e.message)
        }
        do { _ = try image.keptPatches(grid: m.vision.grid) } catch let e as TokenReductionError {
            throw TrainingError.invalid(option: "--image-reduction", reason: e.message)
        }
        return m
    }

    /// Checks every option; the error names the option and the allowed range.
    public func validate() throws {
        func check(_ ok: Bool, _ option: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalid(option: option, reason: reason) }
        }
        try check(modelArchitecture != nil || CLIPConfiguration.preset(model) != nil, "--model",
                  "unknown preset '\(model)'; expected one of \(CLIPConfiguration.presetNames.joined(separator: ", "))")
        if case .shapes(let count, _) = try DataSource(data) {
            try check(batchSize <= count, "--batch-size", "must not exceed the data set's \(count) pairs, got \(batchSize)")
        }
        try check((1...100_000).contains(epochs), "--epochs", "must be in 1...100000, got \(epochs)")
        try check(zeroShotClasses == nil || evalData != nil, "--zero-shot", "needs --eval-data (the shapes world has its own zero-shot tasks)")
        if let reason = (precision ?? .fp32).unsupportedReason() { try check(false, "--precision", reason) }
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
        try check((saveEverySteps ?? 0) >= 0, "--save-every-steps", "must be ≥ 0, got \(saveEverySteps ?? 0)")
        try check((keepStepCheckpoints ?? 2) >= 1, "--keep-step-checkpoints", "must be ≥ 1, got \(keepStepCheckpoints ?? 2)")
        try check((timeLimitSeconds ?? 1) > 0, "--time-limit", "must be > 0 seconds, got \(timeLimitSeconds ?? 0)")
        try check((stopAfterEpochs ?? 1) >= 1, "--stop-after-epochs", "must be ≥ 1, got \(stopAfterEpochs ?? 0)")
        try check((rollbackLRFactor ?? 0.5) > 0 && (rollbackLRFactor ?? 0.5) < 1, "--rollback-lr-factor", "must be in (0, 1), got \(rollbackLRFactor ?? 0)")
        try check((maxRollbacks ?? 3) >= 1, "--max-rollbacks", "must be ≥ 1, got \(maxRollbacks ?? 0)")
        try check(checkpoints || (saveEverySteps ?? 0) == 0, "--save-every-steps", "needs checkpoints (it writes step checkpoints beside the epoch ones)")
        try check(!output.isEmpty, "--out", "must name a directory")
        if let l = textLength { try check((2...1024).contains(l), "--text-length", "must be in 2...1024, got \(l)") }
        _ = try parsedTextReduction()
        let vocabulary = modelArchitecture?.text.vocabularySize ?? CLIPConfiguration.clipVocabularySize
        _ = try modelConfiguration(vocabularySize: vocabulary)
        if let u = finetune?.upcycle {
            // The upcycling's placement must fit the model before the pre-training runs.
            if visionExperts != nil || textExperts != nil {
                throw TrainingError.invalid(option: "--finetune-upcycle", reason: "the pre-training already trains mixtures of experts; upcycle a dense model")
            }
            var m = try modelConfiguration(vocabularySize: vocabulary)
            if u.towers != .text { m.vision.experts = u.placement }
            if u.towers != .vision { m.text.experts = u.placement }
            do { try m.validate() } catch let e as ConfigurationError { throw TrainingError.invalid(option: "--experts / --every / --first-block", reason: e.message) }
        }
        if let f = finetune {
            // Every option of the second stage is checked now, not after the pre-training.
            try f.validate()
            var base = self
            base.finetune = nil
            do { try f.configuration(after: base, checkpoint: "", output: output).validate() } catch TrainingError.invalid(let option, let reason) {
                let renamed = ["--image-reduction": "--finetune-image-reduction", "--text-reduction": "--finetune-text-reduction",
                               "--text-length": "--finetune-text-length", "--data": "--finetune-data", "--batch-size": "--finetune-batch-size",
                               "--lr": "--finetune-lr", "--warmup": "--finetune-warmup", "--epochs": "--finetune-epochs"]
                throw TrainingError.invalid(option: renamed[option] ?? option, reason: reason)
            }
        }
        do { try objective.validate() } catch let e as ObjectiveError { throw TrainingError.invalid(option: e.option, reason: e.reason) }
    }
}

/// What a diverging run does (`TrainingConfiguration.onDivergence`).
public enum DivergencePolicy: String, Codable, Sendable, CaseIterable {
    case stop, rollback
}

/// CLIPA's second stage (§A5): after pre-training at reduced tokens, fine-tune at full length for a
/// fraction of the samples with its own learning rate, warm-up and epochs. Image and text
/// reductions default to none and truncation at the model's length; CLIPA-v2 fine-tunes with a
/// light random mask (`imageReduction: "random:0.3"`).
public struct FinetuneStage: Codable, Sendable, Hashable {
    public var epochs: Int
    public var learningRate: Double
    public var warmupSteps: Int
    public var imageReduction: String? = nil
    public var textReduction: String? = nil
    public var textLength: Int? = nil
    /// The fine-tuning's data (default: the pre-training's). A shapes world of fewer pairs with the
    /// same data seed holds the first pairs of the larger one, so `shapes:N` fine-tunes on a
    /// subset: CLIPA fine-tunes on about 5% of its samples, which one epoch of a 5% subset gives.
    public var data: String? = nil
    /// The fine-tuning's global batch (default: the pre-training's; CLIPA's GPU recipes fine-tune
    /// at a smaller batch than they pre-train).
    public var batchSize: Int? = nil
    /// The fine-tuning's vision positional table (default: the pre-training's). `learned` after a
    /// `sincos` pre-training is the PyTorch CLIPA path: the fixed table, resized bicubically to the
    /// full grid, becomes a learned one.
    public var visionPositional: VisionPositional? = nil
    /// Carry the optimizer moments of the pre-training's last state into the fine-tuning: tensors
    /// whose shape changed (the resized positional tables) start from zero moments, and the step
    /// count carries on, so their first updates are smaller than a fresh start's (the bias
    /// correction is already near 1). CLIPA restarts the optimizer: off by default.
    public var carryOptimizerState: Bool = false
    /// CLIP-UP: upcycle the pre-trained model before this stage, which then trains the mixture
    /// model (`UpcycleSpec`; the upcycled checkpoint lands in the stage's directory). nil: the
    /// stage continues the model as it is (the dense-continued baseline).
    public var upcycle: UpcycleSpec? = nil

    public init(epochs: Int, learningRate: Double, warmupSteps: Int) {
        self.epochs = epochs
        self.learningRate = learningRate
        self.warmupSteps = warmupSteps
    }

    public func validate() throws {
        func check(_ ok: Bool, _ option: String, _ reason: String) throws {
            if !ok { throw TrainingError.invalid(option: option, reason: reason) }
        }
        try check((1...100_000).contains(epochs), "--finetune-epochs", "must be in 1...100000, got \(epochs)")
        try check(learningRate > 0 && learningRate <= 1, "--finetune-lr", "must be in (0, 1], got \(learningRate)")
        try check(warmupSteps >= 0, "--finetune-warmup", "must be ≥ 0, got \(warmupSteps)")
        if let d = data {
            do { _ = try DataSource(d) } catch TrainingError.invalid(_, let reason) { throw TrainingError.invalid(option: "--finetune-data", reason: reason) }
        }
    }

    /// The fine-tuning run's configuration: `base` (the pre-training's) with this stage's epochs,
    /// rate, warm-up and reductions, starting from `checkpoint`, writing to `output`.
    public func configuration(after base: TrainingConfiguration, checkpoint: String, output: String) -> TrainingConfiguration {
        var c = base
        c.epochs = epochs
        c.learningRate = learningRate
        c.learningRateFloor = min(base.learningRateFloor, learningRate)
        c.warmupSteps = warmupSteps
        c.imageReduction = imageReduction
        c.textReduction = textReduction
        c.textLength = textLength
        if let d = data { c.data = d }
        if let b = batchSize { c.batchSize = b }
        if let p = visionPositional { c.visionPositional = p == .learned ? nil : p }
        c.initFrom = checkpoint
        c.initOptimizerState = carryOptimizerState || upcycle?.copyOptimizerState == true
        c.finetune = nil
        c.output = output
        return c
    }
}

/// A parsed `--data` value.
public enum DataSource: Sendable, Hashable, CustomStringConvertible {
    case shapes(count: Int, name: String)
    /// WebDataset tar shards: a brace pattern (`data/train-{000000..000009}.tar`).
    case webDataset(pattern: String)
    /// A CSV/TSV table of image paths and captions.
    case csv(path: String)

    public init(_ text: String) throws {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        let expected = "expected shapes:<scale> (cc3m-mini, cc12m-mini, laion315m-mini), shapes:<count>, wds:<shard pattern> or csv:<file>"
        guard parts.count == 2, !parts[1].isEmpty else {
            throw TrainingError.invalid(option: "--data", reason: "\(expected), got '\(text)'")
        }
        switch parts[0] {
        case "wds":
            self = .webDataset(pattern: parts[1])
            return
        case "csv", "tsv":
            self = .csv(path: parts[1])
            return
        case "shapes": break
        default: throw TrainingError.invalid(option: "--data", reason: "\(expected), got '\(text)'")
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
        case .webDataset(let pattern): "wds:\(pattern)"
        case .csv(let path): "csv:\(path)"
        }
    }
}

extension TrainingConfiguration {
    /// The real data set `data` names (nil for the shapes world), with the CSV options.
    public func realDataSource() throws -> RealDataSource? {
        switch try DataSource(data) {
        case .shapes: return nil
        case .webDataset(let pattern): return .webDataset(pattern: pattern)
        case .csv(let path):
            let separator = csvSeparator ?? "\t"
            let characters = separator == "\\t" ? ["\t"] : Array(separator)
            guard characters.count == 1, characters[0].isASCII, !"\"\r\n".contains(characters[0]) else {
                throw TrainingError.invalid(option: "--csv-separator", reason: "expected one ASCII character other than a quote or a line end (or \\t), got '\(separator)'")
            }
            return .csv(path: path, options: CSVOptions(
                separator: characters[0], imageColumn: csvImageKey ?? "filepath", captionColumn: csvCaptionKey ?? "title"))
        }
    }
}
