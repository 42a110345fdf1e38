// The single-process trainer: a deterministic loader over a dataset, both towers forward, the
// OpenCLIP contrastive loss, backward, AdamW (or LAMB) with a cosine schedule, the logit-scale
// clamp, held-out evaluation every epoch, metrics.csv, config.json, log.txt and a checkpoint per
// epoch. Every random choice is keyed by the seeds, so the same command gives the same numbers.

import CLIP
import Compute
import Data
import Foundation
import Layers
import Objectives

/// What a finished run reports.
public struct TrainingSummary: Sendable {
    public var steps: Int
    public var samplesSeen: Int
    public var wallSeconds: Double
    public var trainSecondsPerSample: Double
    public var finalMetrics: [String: Double]
}

public final class Trainer {
    public let config: TrainingConfiguration
    public let world: ShapesWorld
    public let tokenizer: any Tokenizer
    public let tokenizerKind: String
    public let model: CLIPModel<Float>
    public let loader: EpochLoader
    let activations: CLIPModel<Float>.Activations
    let loss: MiniBatchContrastiveLoss<Float>
    var optimizer: Optimizer
    var groups: [ParameterGroup]
    let schedule: CosineSchedule
    /// Pre-tokenised training captions, (count, context).
    let captionIDs: [Int32]
    let images: AlignedBuffer<Float>  // (B, 3, S, S)
    let dImage: AlignedBuffer<Float>  // (B, E)
    let dText: AlignedBuffer<Float>  // (B, E)
    let batchIDs: AlignedBuffer<Int32>  // (B, T) token ids of the current batch
    let log: RunLog

    /// Names of the evaluation metrics, in the order of metrics.csv.
    public static let evalMetricNames: [String] = {
        let tasks = ["shape", "colour", "count", "position"].map { "zeroshot_\($0)_top1" }
        let retrieval = ["i2t", "t2i"].flatMap { d in [1, 5, 10].map { "retrieval_\(d)_r\($0)" } }
        return tasks + retrieval
    }()

    /// The columns of metrics.csv.
    public static let metricColumns = ["epoch", "step", "samples_seen", "loss"] + evalMetricNames + ["eval_mean", "temperature", "lr", "seconds"]

    /// Sets up a run: validates the configuration, creates the run directory, builds the data,
    /// tokenizer, model, loss and optimizer, and writes config.json.
    public init(_ config: TrainingConfiguration) throws {
        try config.validate()
        self.config = config
        Threads.set(config.threads)
        try FileManager.default.createDirectory(atPath: config.output + "/checkpoints", withIntermediateDirectories: true)
        log = try RunLog(path: config.output + "/log.txt")

        guard case .shapes(let count, _) = try DataSource(config.data) else { fatalError("unreachable") }
        let world = ShapesWorld(ShapesWorld.Configuration(seed: config.dataSeed, count: count))
        self.world = world

        // Tokenizer: CLIP's BPE when installed (or required), else one trained on the captions.
        let merges = TokenizerFiles.defaultMergesFile()
        if config.tokenizer == "clip" || (config.tokenizer == "auto" && merges != nil) {
            guard let merges else {
                throw TrainingError.invalid(option: "--tokenizer", reason: "clip needs \(TokenizerFiles.mergesFileName); run scripts/bootstrap.sh or set CLIPLAB_BPE_PATH")
            }
            tokenizer = try CLIPTokenizer(mergesFile: merges)
            tokenizerKind = "clip"
        } else {
            let sample = (0..<min(count, 20_000)).map { world.caption($0) }
            tokenizer = try CLIPTokenizer.trainBPE(captions: sample, vocabularySize: config.trainedVocabularySize)
            tokenizerKind = "trained"
        }

        let modelConfig = CLIPConfiguration.preset(config.model, vocabularySize: tokenizer.vocabularySize)!
        model = try CLIPModel<Float>(modelConfig)
        model.initialize(seed: config.seed)
        loader = EpochLoader(datasetCount: count, batchSize: config.batchSize, seed: config.seed)
        activations = model.makeActivations(batch: config.batchSize, memory: config.activationMemory)
        loss = MiniBatchContrastiveLoss(batch: config.batchSize, dimension: modelConfig.embedDimension, workspace: Workspace())
        optimizer = Optimizer(kind: config.optimizer, hyper: AdamHyperparameters(beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon))
        groups = ParameterGroup.standard(model.store.layout, learningRate: config.learningRate, weightDecay: config.weightDecay)
        schedule = CosineSchedule(
            baseRate: config.learningRate, warmupSteps: config.warmupSteps,
            totalSteps: config.epochs * loader.stepsPerEpoch, floor: config.learningRateFloor)
        let s = modelConfig.vision.imageSize, e = modelConfig.embedDimension
        images = AlignedBuffer(count: config.batchSize * 3 * s * s)
        dImage = AlignedBuffer(count: config.batchSize * e)
        dText = AlignedBuffer(count: config.batchSize * e)
        batchIDs = AlignedBuffer(count: config.batchSize * modelConfig.text.contextLength)

        let ctx = modelConfig.text.contextLength
        var ids = [Int32](repeating: 0, count: count * ctx)
        let tok = tokenizer
        let w = world
        ids.withUnsafeMutableBufferPointer { buf in
            let p = UncheckedSendable(buf.baseAddress!)
            Threads.parallelFor(count, grain: 256) { range in
                for i in range {
                    let row = tok.tokenize(w.caption(i), contextLength: ctx)
                    for j in 0..<ctx { p.value[i * ctx + j] = row[j] }
                }
            }
        }
        captionIDs = ids
        try writeConfigJSON()
    }

    func writeConfigJSON() throws {
        struct Resolved: Encodable {
            let training: TrainingConfiguration
            let modelArchitecture: CLIPConfiguration
            let parameters: Int
            let data: ShapesWorld.Configuration
            let tokenizer: String
            let vocabularySize: Int
            let stepsPerEpoch: Int
            let totalSteps: Int
            let objective: String
            let provenance: [String: String]
        }
        let cpu = CPUFeatures.current
        let resolved = Resolved(
            training: config, modelArchitecture: model.config, parameters: model.store.layout.parameterCount,
            data: world.configuration, tokenizer: tokenizerKind, vocabularySize: tokenizer.vocabularySize,
            stepsPerEpoch: loader.stepsPerEpoch, totalSteps: config.epochs * loader.stepsPerEpoch,
            objective: "openclip (mini-batch contrastive loss, learnable logit scale)",
            provenance: [
                "cpu": cpu.modelName, "cpu_features": cpu.summary, "threads": "\(config.threads)",
                "openblas": Threads.blasConfig, "host": ProcessInfo.processInfo.hostName,
                "started": ISO8601DateFormatter().string(from: Date()),
            ])
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try enc.encode(resolved), to: config.output + "/config.json")
    }

    /// Fills `images` with the normalised images of `ids` and returns nothing; rendering runs over
    /// the threads, one image per task.
    func loadBatch(_ ids: ArraySlice<Int>) throws {
        let s = model.config.vision.imageSize, plane = 3 * s * s
        let base = UncheckedSendable(images.pointer)
        let w = world
        let first = ids.startIndex
        // A failed image stops the run with the dataset's error (never a silent zero image).
        let failures = FirstError()
        Threads.parallelFor(ids.count, grain: 8) { range in
            for k in range {
                let i = ids[first + k]
                do { try w.loadImage(i, size: s, into: base.value + k * plane) } catch { failures.record(error) }
            }
        }
        if let error = failures.error { throw error }
        ImageNormalization.apply(images.pointer, batch: ids.count, size: s)
    }

    /// One optimizer step on the batch `ids`; returns the loss.
    func step(_ ids: ArraySlice<Int>, globalStep: Int) throws -> Double {
        try loadBatch(ids)
        let ctx = model.config.text.contextLength
        let batchIDs = self.batchIDs.pointer  // preallocated: the step allocates no arrays
        for (k, i) in ids.enumerated() {
            for j in 0..<ctx { batchIDs[k * ctx + j] = captionIDs[i * ctx + j] }
        }
        let store = model.store
        store.zeroGrads()
        model.forward(images: images.pointer, ids: batchIDs, activations: activations)
        let value = loss.forward(
            imageFeatures: activations.imageFeatures, textFeatures: activations.textFeatures,
            logitScale: store.value(model.logitScale).pointee)
        guard value.isFinite else { throw TrainingError.diverged(step: globalStep, reason: "loss is \(value)") }
        let dt = loss.backward(dImageFeatures: dImage.pointer, dTextFeatures: dText.pointer)
        store.grad(model.logitScale).pointee += dt
        model.backward(dImageFeatures: dImage.pointer, dTextFeatures: dText.pointer, activations: activations)
        if let c = config.gradientClipNorm { clipGradientNorm(store, maxNorm: c) }
        let lr = schedule(globalStep)
        for g in groups.indices { groups[g].learningRate = lr }
        optimizer.update(store, groups: groups)
        model.clampLogitScale()
        return value
    }

    /// Runs every epoch; returns the summary. metrics.csv gets a row before training (epoch 0) and
    /// one per epoch; each row is flushed as written.
    public func run() throws -> TrainingSummary {
        let metrics = try MetricsCSV(path: config.output + "/metrics.csv", columns: Self.metricColumns)
        log.say("ClipLab train: \(config.model) (\(model.store.layout.parameterCount) parameters) on \(config.data) "
            + "(\(world.count) pairs), batch \(config.batchSize), \(config.epochs) epochs × \(loader.stepsPerEpoch) steps, "
            + "\(config.threads) thread(s), tokenizer \(tokenizerKind) (\(tokenizer.vocabularySize) tokens)")
        let start = Date()
        var row = try evaluationRow(epoch: 0, step: 0, loss: .nan, lr: 0, seconds: 0)
        try metrics.append(row)
        var globalStep = 0
        var trainSeconds = 0.0
        for epoch in 0..<config.epochs {
            let order = loader.order(epoch: epoch)
            let progress = ProgressLine(total: loader.stepsPerEpoch, label: "epoch \(epoch + 1)/\(config.epochs)")
            var lossSum = 0.0
            let epochStart = Date()
            for s in 0..<loader.stepsPerEpoch {
                let value = try step(loader.batch(s, of: order), globalStep: globalStep)
                lossSum += value
                globalStep += 1
                let elapsed = Date().timeIntervalSince(epochStart)
                progress.update(s + 1, samplesPerSecond: Double((s + 1) * config.batchSize) / max(elapsed, 1e-9),
                                fields: [("loss", String(format: "%.4f", value)), ("τ", String(format: "%.4f", model.temperature))])
            }
            progress.finish()
            trainSeconds += Date().timeIntervalSince(epochStart)
            let meanLoss = lossSum / Double(loader.stepsPerEpoch)
            let isLast = epoch == config.epochs - 1
            let evaluate = isLast || (config.evalEvery > 0 && (epoch + 1) % config.evalEvery == 0)
            row = try evaluationRow(
                epoch: epoch + 1, step: globalStep, loss: meanLoss, lr: schedule(max(0, globalStep - 1)),
                seconds: Date().timeIntervalSince(start), evaluate: evaluate)
            try metrics.append(row)
            log.say(String(format: "epoch %d/%d: loss %.4f, τ %.4f", epoch + 1, config.epochs, meanLoss, model.temperature)
                + (evaluate ? String(format: ", eval_mean %.4f", row["eval_mean"]!) : ""))
            if config.checkpoints {
                let path = config.output + "/checkpoints/epoch_\(epoch + 1).safetensors"
                var meta = TokenizerMetadata.entries(kind: tokenizerKind, tokenizer: tokenizer)
                meta["epoch"] = "\(epoch + 1)"
                meta["step"] = "\(globalStep)"
                meta["data_seed"] = "\(config.dataSeed)"
                try model.save(to: path, metadata: meta)
            }
        }
        let samples = globalStep * config.batchSize
        return TrainingSummary(
            steps: globalStep, samplesSeen: samples, wallSeconds: Date().timeIntervalSince(start),
            trainSecondsPerSample: trainSeconds / Double(max(samples, 1)),
            finalMetrics: row)
    }

    /// A metrics.csv row; the evaluation columns are NaN when `evaluate` is false.
    func evaluationRow(epoch: Int, step: Int, loss: Double, lr: Double, seconds: Double, evaluate: Bool = true) throws -> [String: Double] {
        var row: [String: Double] = [
            "epoch": Double(epoch), "step": Double(step), "samples_seen": Double(step * config.batchSize), "loss": loss,
            "temperature": model.temperature, "lr": lr, "seconds": seconds,
        ]
        let m = evaluate ? try Evaluator(model: model, world: world, tokenizer: tokenizer, activations: activations)
            .run(examplesPerClass: config.evalExamplesPerClass, retrievalCount: config.retrievalCount) : [:]
        for name in Self.evalMetricNames { row[name] = m[name] ?? .nan }
        row["eval_mean"] = m["eval_mean"] ?? .nan
        return row
    }
}

/// Held-out evaluation of a model on the shapes world's tasks.
public struct Evaluator {
    public let model: CLIPModel<Float>
    public let world: ShapesWorld
    public let tokenizer: any Tokenizer
    /// The buffers inference runs in: the trainer's own (no second workspace), or new ones.
    let activations: CLIPModel<Float>.Activations

    /// Evaluates in new, forward-only buffers for chunks of `batch` samples.
    public init(model: CLIPModel<Float>, world: ShapesWorld, tokenizer: any Tokenizer, batch: Int) {
        self.init(model: model, world: world, tokenizer: tokenizer, activations: model.makeActivations(batch: batch, memory: .inference))
    }

    /// Evaluates in existing buffers (the trainer's), so evaluation allocates no second workspace.
    public init(model: CLIPModel<Float>, world: ShapesWorld, tokenizer: any Tokenizer, activations: CLIPModel<Float>.Activations) {
        self.model = model
        self.world = world
        self.tokenizer = tokenizer
        self.activations = activations
    }

    /// Zero-shot top-1 per task, retrieval R@1/5/10 both ways, and their mean (`eval_mean`).
    public func run(examplesPerClass: Int, retrievalCount: Int) throws -> [String: Double] {
        let acts = activations
        let e = model.config.embedDimension
        var out: [String: Double] = [:]
        for task in world.zeroShotTasks(examplesPerClass: examplesPerClass) {
            let prompts = task.classNames.indices.flatMap { task.prompts(for: $0) }
            let textEmb = embedTexts(prompts, acts).map(Double.init)
            let w = EvaluationMetrics.classifier(templateEmbeddings: textEmb, classes: task.classNames.count, templates: task.templates.count, dimension: e)
            let imgEmb = embedScenes(task.scenes, acts).map(Double.init)
            out["zeroshot_\(task.name)_top1"] = EvaluationMetrics.zeroShotTop1(imageEmbeddings: imgEmb, classifier: w, labels: task.labels, dimension: e)
        }
        let set = world.retrievalSet(count: retrievalCount)
        let u = embedScenes(set.map(\.scene), acts).map(Double.init)
        let v = embedTexts(set.map(\.caption), acts).map(Double.init)
        let r = EvaluationMetrics.retrievalRecall(imageEmbeddings: u, textEmbeddings: v, dimension: e, ks: [1, 5, 10])
        for (i, k) in [1, 5, 10].enumerated() {
            out["retrieval_i2t_r\(k)"] = r.imageToText[i]
            out["retrieval_t2i_r\(k)"] = r.textToImage[i]
        }
        let names = Trainer.evalMetricNames
        out["eval_mean"] = names.compactMap { out[$0] }.reduce(0, +) / Double(names.count)
        return out
    }

    func embedTexts(_ texts: [String], _ acts: CLIPModel<Float>.Activations) -> [Float] {
        let ctx = model.config.text.contextLength
        let ids = texts.flatMap { tokenizer.tokenize($0, contextLength: ctx) }
        return model.embedTexts(ids, count: texts.count, activations: acts)
    }

    func embedScenes(_ scenes: [Scene], _ acts: CLIPModel<Float>.Activations) -> [Float] {
        let s = model.config.vision.imageSize, plane = 3 * s * s
        let pixels = AlignedBuffer<Float>(count: scenes.count * plane)
        let base = UncheckedSendable(pixels.pointer)
        let w = world
        Threads.parallelFor(scenes.count, grain: 8) { range in
            for i in range { w.render(scenes[i], size: s, into: base.value + i * plane) }
        }
        ImageNormalization.apply(pixels.pointer, batch: scenes.count, size: s)
        // `pixels` must outlive the call, which sees only its raw pointer.
        return withExtendedLifetime(pixels) { model.embedImages(pixels.pointer, count: scenes.count, activations: acts) }
    }
}

/// Keeps the first error thrown by any of several threads.
final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    func record(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
}

/// Writes every line to standard output and appends it to log.txt.
public final class RunLog {
    let handle: FileHandle
    public init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot create the log file")
        }
        handle = h
    }
    deinit { try? handle.close() }
    public func say(_ line: String) {
        print(line)
        handle.write(Data((line + "\n").utf8))
    }
}
