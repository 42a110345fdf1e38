import ArgumentParser
import CLIP
import Compute
import Foundation
import Layers
import Training

/// `clip train`: single-process training. Option names follow OpenCLIP's where one exists.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a CLIP model.",
        discussion: """
            Writes the run directory given by --out: config.json (the resolved configuration),
            metrics.csv (one row before training and one per epoch), log.txt, and
            checkpoints/epoch_N.safetensors (OpenCLIP parameter names).
            Example: clip train --model tiny --data shapes:cc3m-mini --epochs 10 --batch-size 256 --lr 1e-3 --wd 0.1 --warmup 500 --seed 0 --out runs/tiny
            """)

    @Option(help: "Model preset: nano, tiny or small.") var model = "tiny"
    @Option(name: [.customLong("data"), .customLong("train-data")], help: "shapes:<scale> (cc3m-mini, cc12m-mini, laion315m-mini) or shapes:<count>.")
    var data = "shapes:cc3m-mini"
    @Option(help: "Seed of the synthetic data.") var dataSeed: UInt64 = 0
    @Option(help: "Epochs.") var epochs = 10
    @Option(help: "Global batch size.") var batchSize = 256
    @Option(help: "Peak learning rate.") var lr = 1e-3
    @Option(help: "Floor of the cosine schedule.") var lrMin = 0.0
    @Option(help: "Decoupled weight decay (not on gains, biases or logit_scale).") var wd = 0.1
    @Option(help: "Linear warm-up steps.") var warmup = 500
    @Option(help: "Training seed (initialisation and data order).") var seed: UInt64 = 0
    @Option(help: "Optimizer: adamw or lamb.") var optimizer = "adamw"
    @Option(help: "Adam β₁.") var beta1 = 0.9
    @Option(help: "Adam β₂.") var beta2 = 0.98
    @Option(help: "Adam ε.") var eps = 1e-6
    @Option(help: "Clip gradients to this global norm (default: no clipping).") var gradClipNorm: Double?
    @Option(help: "Threads (default: all cores).") var threads = Threads.available
    @Option(help: "Activations kept for backward: full (fastest) or recompute (activation checkpointing: less memory, about +25% compute, same results).")
    var activationMemory = "full"
    @Option(help: "Tokenizer: auto, clip or trained.") var tokenizer = "auto"
    @Option(help: "Vocabulary size of a trained tokenizer.") var vocabSize = 2048
    @Option(help: "Held-out zero-shot examples per class.") var evalExamples = 50
    @Option(help: "Held-out retrieval pairs.") var retrievalSize = 1000
    @Option(help: "Evaluate every N epochs (0: only after the last).") var evalEvery = 1
    @Flag(help: "Do not write per-epoch checkpoints.") var noCheckpoints = false
    @Option(name: [.customLong("out"), .customShort("o")], help: "Run directory.") var out = "runs/default"

    func configuration() throws -> TrainingConfiguration {
        var c = TrainingConfiguration()
        c.model = model
        c.data = data
        c.dataSeed = dataSeed
        c.epochs = epochs
        c.batchSize = batchSize
        c.learningRate = lr
        c.learningRateFloor = lrMin
        c.weightDecay = wd
        c.warmupSteps = warmup
        c.seed = seed
        guard let kind = OptimizerKind(rawValue: optimizer) else {
            throw ValidationError("--optimizer: expected adamw or lamb, got '\(optimizer)'")
        }
        c.optimizer = kind
        c.beta1 = beta1
        c.beta2 = beta2
        c.epsilon = eps
        c.gradientClipNorm = gradClipNorm
        c.threads = threads
        guard let memory = ActivationMemory(rawValue: activationMemory), memory != .inference else {
            throw ValidationError("--activation-memory: expected full or recompute, got '\(activationMemory)'")
        }
        c.activationMemory = memory
        c.tokenizer = tokenizer
        c.trainedVocabularySize = vocabSize
        c.evalExamplesPerClass = evalExamples
        c.retrievalCount = retrievalSize
        c.evalEvery = evalEvery
        c.checkpoints = !noCheckpoints
        c.output = out
        return c
    }

    func validate() throws {
        do { try configuration().validate() } catch let e as TrainingError { throw ValidationError(e.description) }
    }

    func run() throws {
        let trainer = try Trainer(configuration())
        let summary = try trainer.run()
        print(MetricsReport.table(summary.finalMetrics, title: "held-out metrics after \(summary.steps) steps (chance in brackets)",
                                  chance: trainer.chanceLevels))
        print(String(format: "wall time %@, %.1f samples/s while training; run directory %@",
                     ProgressLine.duration(summary.wallSeconds), 1 / summary.trainSecondsPerSample, out))
    }
}
