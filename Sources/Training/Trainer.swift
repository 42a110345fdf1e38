// The single-process trainer: a deterministic loader over a dataset, both towers forward, the
// objective (OpenCLIP's loss or a FastCLIP one, with its per-sample state and temperature rule),
// backward, AdamW (or LAMB) with a cosine schedule, the logit-scale clamp, held-out evaluation
// every epoch, metrics.csv, steps.csv, config.json, log.txt and a checkpoint (model + training
// state) per epoch, from which a run resumes exactly. Every random choice is keyed by the seeds,
// so the same command gives the same numbers.

import CLIP
import Collective
import Compute
import Data
import Foundation
import Layers
import Objectives
import TokenReduction

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
    /// The shapes world (synthetic data; the held-out evaluation comes from it), or nil when the
    /// run trains on a user's data set.
    public let world: ShapesWorld?
    /// The pairs the run trains on: the shapes world or `realData`.
    public let data: any ImageTextDataset
    /// A user's data set (`--data wds:…` or `csv:…`), checked and numbered; nil for shapes.
    public let realData: RealImageTextData?
    public let tokenizer: any Tokenizer
    public let tokenizerKind: String
    public let model: CLIPModel<Float>
    public let loader: EpochLoader
    /// The step's buffers (shard 0's in batch-split mode); evaluation runs in them too.
    let activations: CLIPModel<Float>.Activations
    /// How the step uses its threads, resolved from the configuration (never `.auto`).
    public let threadMode: ThreadMode
    /// The batch-split step (nil in gemm mode): T shards of the batch, one per thread.
    let split: BatchSplitStep?
    /// The objective: the single-process closed form, or this rank's share of it (K > 1).
    let objective: TrainingObjective
    /// The processes of the run (one, or the ranks of an MPI job); rank 0 writes every file.
    public let communicator: any Communicator
    /// Samples per step on this rank (the global batch divided by the ranks).
    public let localBatch: Int
    var rank: Int { communicator.rank }
    var optimizer: Optimizer
    /// The model's groups, then `logit_scale` alone when the temperature rule learns it.
    var groups: [ParameterGroup]
    let logitScaleGroup: Int?
    let schedule: CosineSchedule
    /// The training captions at this run's text length, reduced by its strategy (CLIPA).
    let captions: TrainingCaptions
    /// The image mask of this run (CLIPA, FLIP) and the patches it keeps per image (nil: every
    /// patch of the training image, which a resize makes smaller).
    let imageReduction: ImageTokenReduction
    let keptPatches: Int?
    /// The routing report of a mixture-of-experts model (nil for a dense one).
    var mixtureReport: MixtureReport?
    let keptIDs: AlignedBuffer<Int32>  // (b, K) kept patch indices of this rank's samples (gemm mode)
    /// Forward GMACs per training sample (CLIPA's convention) at this run's geometry.
    public let trainingGMACsPerSample: Double
    /// Evaluation sees whole images: a masked run evaluates in unmasked buffers of its own.
    lazy var unmaskedActivations = model.makeActivations(batch: localBatch, memory: .inference)
    // Gemm mode's inputs and feature gradients (batch-split shards hold their own; then these
    // are one element each).
    let images: AlignedBuffer<Float>  // (b, 3, S, S) this rank's images
    let dImage: AlignedBuffer<Float>  // (b, E)
    let dText: AlignedBuffer<Float>  // (b, E)
    let batchIDs: AlignedBuffer<Int32>  // (b, T) token ids of this rank's samples
    let log: RunLog
    /// The held-out tasks, prepared at the first evaluation (rank 0 only).
    /// The held-out real data set of `--eval-data` and its zero-shot classes (nil: none; then
    /// shapes runs evaluate on the shapes world's tasks and real-data runs not at all).
    let heldOut: (data: RealImageTextData, classes: ZeroShotClasses?)?
    /// Whether the run has a held-out evaluation at all.
    public var evaluates: Bool { heldOut != nil || world != nil }
    lazy var evaluator = Evaluator(
        model: model, world: world!, tokenizer: tokenizer, examplesPerClass: config.evalExamplesPerClass, retrievalCount: config.retrievalCount)
    /// Where `run()` starts: 0, or the epoch and step of the checkpoint resumed from.
    public private(set) var startEpoch = 0
    var startStep = 0
    /// Resumed from a step checkpoint: the steps of epoch `startEpoch` already done, and that
    /// epoch's running sums (`EpochSums.encoded`); nil otherwise.
    var resumedInsideEpoch: (steps: Int, sums: EpochSums)?
    /// Whether `run()` continues a checkpoint.
    var resumed = false
    /// The factor on the learning-rate schedule: 1, times `rollbackLRFactor` per rollback after a
    /// divergence (recorded in the state files, so a resumed run keeps it).
    var learningRateScale = 1.0
    var rollbacks = 0
    /// Test hook: `CLIPLAB_FAULT_NAN_STEP=S[:tensor][@rank]` makes one gradient element of
    /// `tensor` (default: the first parameter) NaN at global step S, after the gradients' sum
    /// over ranks, once per process and on `rank` alone if given, so that the divergence guard
    /// (and the ranks' agreement on it) can be tested.
    var injectedFault: (step: Int, tensor: String?, rank: Int?)? = {
        guard var spec = ProcessInfo.processInfo.environment["CLIPLAB_FAULT_NAN_STEP"] else { return nil }
        var rank: Int?
        if let at = spec.lastIndex(of: "@") {
            guard let r = Int(spec[spec.index(after: at)...]) else { return nil }
            rank = r
            spec = String(spec[..<at])
        }
        let parts = spec.split(separator: ":", maxSplits: 1)
        guard let step = parts.first.flatMap({ Int($0) }) else { return nil }
        return (step, parts.count > 1 ? String(parts[1]) : nil, rank)
    }()

    /// Names of the evaluation metrics, in the order of metrics.csv.
    public static let evalMetricNames: [String] = {
        let tasks = ["shape", "colour", "count", "position"].map { "zeroshot_\($0)_top1" }
        let retrieval = ["i2t", "t2i"].flatMap { d in [1, 5, 10].map { "retrieval_\(d)_r\($0)" } }
        return tasks + retrieval
    }()

    /// The columns of metrics.csv (one row per epoch). Training columns are means over the
    /// epoch's steps: `loss` the objective's estimate (MBCL for OpenCLIP; for FCCO objectives u
    /// stands in for g, see `ObjectiveStepStatistics`), `surrogate` the scalar whose gradient is
    /// the estimator, `batch_contrastive` OpenCLIP's loss on each batch (comparable across
    /// objectives). Then γ of the epoch, τ (mean, min, max over the per-sample table for
    /// individual temperatures) and log u on the true scale over the visited ids. `eval_seconds`
    /// is the wall time of the row's held-out evaluation (NaN when the row has none).
    public static let metricColumns = ["epoch", "step", "samples_seen", "loss", "surrogate", "batch_contrastive"] + evalMetricNames
        + ["eval_mean", "temperature", "temperature_min", "temperature_max", "gamma", "log_u_mean", "log_u_min", "log_u_max",
           "lr", "lr_tau"] + timingColumns + computeColumns + ["eval_seconds", "seconds"]

    /// CLIPA's compute accounting (`ComputeAccounting`): forward multiply–accumulates per
    /// training sample at this run's image geometry and text length (GMACs), their total over the
    /// samples seen, and the epoch's training wall time without its evaluation (`train_seconds`,
    /// NaN before training; samples/s = batch × steps per epoch / train_seconds).
    public static let computeColumns = ["gmacs_per_sample", "compute_gmacs", "train_seconds"]

    /// The columns of steps.csv (one row per optimizer step).
    public static let stepColumns = ["epoch", "step", "loss", "surrogate", "batch_contrastive", "temperature", "gamma", "lr", "lr_tau"]
        + timingColumns

    /// The per-iteration time breakdown (seconds) and the elements each kind of collective moved
    /// per iteration (its per-rank input), in steps.csv and, as epoch means, in metrics.csv:
    /// `compute` forward, objective and backward less the communication inside them;
    /// `communication` time blocked in collectives; `overlapped` non-blocking communication
    /// running beside computation; `other` the rest (data loading, optimizer, bookkeeping).
    public static let timingColumns = ["compute_seconds", "communication_seconds", "overlapped_seconds", "other_seconds"]
        + ["all_gather", "reduce_scatter", "all_reduce"].map { $0 + "_elements" }

    /// Sets up a run: validates the configuration, creates the run directory, builds the data,
    /// tokenizer, model, objective and optimizer, and writes config.json. With `resume`, the run
    /// continues from the latest complete checkpoint in its directory (model, optimizer moments,
    /// per-sample tables), and gives the same numbers as an unbroken run.
    ///
    /// Under MPI (`communicator` of K > 1 ranks) every rank builds the same model (rank 0's
    /// parameters are broadcast), takes its b = B/K samples of every global batch, and rank 0
    /// alone writes files and evaluates.
    public init(_ config: TrainingConfiguration, resume: Bool = false, communicator: any Communicator = SingleProcessCommunicator()) throws {
        try config.validate()
        guard config.batchSize % communicator.size == 0 else {
            throw TrainingError.invalid(option: "--batch-size", reason: "the global batch \(config.batchSize) must split evenly over \(communicator.size) ranks")
        }
        self.config = config
        self.communicator = communicator
        localBatch = config.batchSize / communicator.size
        Threads.set(config.threads)
        if communicator.isRoot {
            try FileManager.default.createDirectory(atPath: config.output + "/checkpoints", withIntermediateDirectories: true)
        }
        var resumeFrom: TrainingState.Resumable?
        if resume {
            guard let latest = TrainingState.latestCheckpoint(runDirectory: config.output) else {
                throw TrainingError.invalid(
                    option: "--resume", reason: "\(config.output)/checkpoints holds no epoch_N.safetensors or step_S.safetensors with its .state.safetensors file")
            }
            resumeFrom = latest
        }
        log = communicator.isRoot ? try RunLog(path: config.output + "/log.txt", append: resume) : RunLog.silent

        let world: ShapesWorld?
        if let source = try config.realDataSource() {
            let opened = try TrainingData.openReal(source, config: config, log: log, isRoot: communicator.isRoot)
            (world, realData, data) = (nil, opened, opened)
        } else {
            guard case .shapes(let count, _) = try DataSource(config.data) else { fatalError("unreachable") }
            let shapes = ShapesWorld(ShapesWorld.Configuration(seed: config.dataSeed, count: count))
            (world, realData, data) = (shapes, nil, shapes)
        }
        self.world = world
        if let eval = config.evalData {
            var c = config
            c.data = eval
            guard let source = try c.realDataSource() else {
                throw TrainingError.invalid(option: "--eval-data", reason: "expected wds:PATTERN or csv:FILE, got '\(eval)'")
            }
            let set = try TrainingData.openReal(source, config: c, log: log, isRoot: communicator.isRoot)
            heldOut = (set, try config.zeroShotClasses.map { try ZeroShotClasses.load(path: $0) })
        } else {
            heldOut = nil
        }
        let count = data.count
        guard config.batchSize <= count else {
            throw TrainingError.invalid(option: "--batch-size", reason: "must not exceed the data set's \(count) usable pairs (\(config.data)), got \(config.batchSize)")
        }
        let data = self.data

        // Tokenizer: the checkpoint's when starting from one (a fine-tuning stage must read captions
        // as its pre-training did), else CLIP's BPE when installed (or required), else one trained
        // on the captions.
        let merges = TokenizerFiles.defaultMergesFile()
        if let source = config.initFrom {
            let file = try SafetensorsFile(path: source)
            tokenizer = try TokenizerMetadata.tokenizer(
                from: file.metadata, path: source, vocabularySize: file.entries["token_embedding.weight"]?.shape.first ?? 0)
            tokenizerKind = TokenizerMetadata.kind(of: file.metadata)
        } else if config.tokenizer == "clip" || (config.tokenizer == "auto" && merges != nil) {
            guard let merges else {
                throw TrainingError.invalid(option: "--tokenizer", reason: "clip needs \(TokenizerFiles.mergesFileName); run scripts/bootstrap.sh or set CLIPLAB_BPE_PATH")
            }
            tokenizer = try CLIPTokenizer(mergesFile: merges)
            tokenizerKind = "clip"
        } else {
            let sample = (0..<min(count, 20_000)).map { data.caption($0) }
            tokenizer = try CLIPTokenizer.trainBPE(captions: sample, vocabularySize: config.trainedVocabularySize)
            tokenizerKind = "trained"
        }

        var modelConfig = try config.modelConfiguration(vocabularySize: tokenizer.vocabularySize)
        (modelConfig.vision.experts, modelConfig.text.experts) = try MixtureReport.placements(for: config)
        model = try CLIPModel<Float>(modelConfig)
        model.initialize(seed: config.seed)
        // s = ln(1/τ_init) (OpenCLIP's 0.07 unless the objective says otherwise).
        model.store.value(model.logitScale).pointee = Float(Foundation.log(1 / config.objective.temperatureInit))
        if let source = config.initFrom, resumeFrom == nil {
            let resized = try model.load(from: source, resizingPositional: true)
            log.say("initialised from \(source)" + (resized.isEmpty ? "" : " (resized: \(resized.joined(separator: ", ")))"))
            let file = try SafetensorsFile(path: source)
            if file.metadata[CLIPModel<Float>.configurationKey] == nil {
                // An OpenCLIP checkpoint: say what was assumed.
                log.say("\(source) has no ClipLab metadata: read as an OpenCLIP checkpoint into \(modelConfig.name) "
                        + "(\(modelConfig.vision.heads) vision and \(modelConfig.text.heads) text heads: the heads are not stored in the file), tokenizer \(tokenizerKind)")
            }
            for note in CLIPModel<Float>.conversionNotes(file) { log.say(note) }
        }
        imageReduction = try config.parsedImageReduction()
        // A mask that keeps every patch (ratio 0, grid:1) is no mask.
        let kept = imageReduction.masks ? try imageReduction.keptPatches(grid: modelConfig.vision.grid) : nil
        keptPatches = kept.flatMap { $0 < modelConfig.vision.grid * modelConfig.vision.grid ? $0 : nil }
        trainingGMACsPerSample = (ComputeAccounting.imageMACs(modelConfig.vision, keptPatches: keptPatches)
            + ComputeAccounting.textMACs(modelConfig.text)) / 1e9
        loader = EpochLoader(datasetCount: count, batchSize: config.batchSize, seed: config.seed)
        let adam = AdamHyperparameters(beta1: config.beta1, beta2: config.beta2, epsilon: config.epsilon)
        threadMode = try (config.threadMode ?? .auto).resolved(
            threads: config.threads, localBatch: localBatch, ranks: communicator.size, forwardFlopsPerSample: model.forwardFlopsPerSample)
        if threadMode == .batchSplit {
            // FastCLIP's reduction between the shards: it moves no feature gradients, and gives
            // the same numbers as OpenCLIP's to rounding.
            let s = try BatchSplitStep(
                model: model, threads: config.threads, batch: localBatch, memory: config.activationMemory, objective: config.objective,
                reduction: .fastclip, datasetCount: count, epochs: config.epochs, adam: adam, keptImagePatches: keptPatches)
            split = s
            activations = s.shards[0].activations
            objective = .distributed(s.shards[0].objective)
        } else if communicator.size == 1 {
            split = nil
            activations = model.makeActivations(batch: localBatch, memory: config.activationMemory, keptImagePatches: keptPatches)
            objective = .single(try ContrastiveObjective(
                config.objective, batch: config.batchSize, dimension: modelConfig.embedDimension, datasetCount: count,
                epochs: config.epochs, adam: adam))
        } else {
            split = nil
            activations = model.makeActivations(batch: localBatch, memory: config.activationMemory, keptImagePatches: keptPatches)
            objective = .distributed(try DistributedObjective(
                config.objective, reduction: config.gradientReduction, communicator: communicator, globalBatch: config.batchSize,
                dimension: modelConfig.embedDimension, datasetCount: count, epochs: config.epochs, adam: adam))
        }
        optimizer = Optimizer(kind: config.optimizer, hyper: adam)
        // logit_scale leaves OpenCLIP's no-decay group for a group of its own (its own learning
        // rate), or is left out entirely when τ is constant or per-sample.
        let scaleName = model.logitScale.name
        groups = ParameterGroup.standard(model.store.layout, learningRate: config.learningRate, weightDecay: config.weightDecay)
            .map { ParameterGroup(name: $0.name, views: $0.views.filter { $0.name != scaleName }, learningRate: $0.learningRate, weightDecay: $0.weightDecay) }
            .filter { !$0.views.isEmpty }
        if config.objective.learnsLogitScale {
            groups.append(ParameterGroup(name: "logit_scale", views: [model.logitScale], learningRate: 0, weightDecay: 0))
            logitScaleGroup = groups.count - 1
        } else {
            logitScaleGroup = nil
        }
        schedule = CosineSchedule(
            baseRate: config.learningRate, warmupSteps: config.warmupSteps,
            totalSteps: config.epochs * loader.stepsPerEpoch, floor: config.learningRateFloor)
        let s = modelConfig.vision.imageSize, e = modelConfig.embedDimension
        let b = split == nil ? localBatch : 0
        images = AlignedBuffer(count: max(1, b * 3 * s * s))
        dImage = AlignedBuffer(count: max(1, b * e))
        dText = AlignedBuffer(count: max(1, b * e))
        batchIDs = AlignedBuffer(count: max(1, b * modelConfig.text.contextLength))
        keptIDs = AlignedBuffer(count: max(1, b * (keptPatches ?? 0)))

        do {
            // Syntax masking tags words with the shapes grammar's own tags, or on real captions
            // with the WordNet tagger (when its data is installed).
            captions = try TrainingCaptions(
                count: count, caption: { data.caption($0) }, tokenizer: tokenizer, length: modelConfig.text.contextLength,
                reduction: try config.parsedTextReduction(), tagger: world != nil ? ShapesWorld.Tagger() : try? WordNetTagger(), seed: config.seed)
        } catch let e as TokenReductionError { throw TrainingError.invalid(option: "--text-reduction", reason: e.message) }

        if let from = resumeFrom {
            try restore(from: from)
        } else {
            if let source = config.initFrom, config.initOptimizerState == true {
                optimizer.restore(step: try TrainingState.carryMoments(fromCheckpoint: source, into: model.store))
            }
            if communicator.isRoot { try writeConfigJSON() }
        }
        // A mixture's auxiliary losses are means over the step's routing groups (threads × ranks).
        mixtureReport = MixtureReport(model)
        let routingGroups = Double((split?.threads ?? 1) * communicator.size)
        for (m, a) in routedReplicas { m.setAuxiliaryScale(1 / routingGroups, activations: a) }
        // Identical parameters on every rank: rank 0's.
        if communicator.size > 1 {
            try communicator.broadcast(model.store.values.pointer, count: model.store.values.count, root: 0)
        }
    }

    /// Loads checkpoint `from` (model, optimizer moments and step, per-sample tables, and for a
    /// step checkpoint the position and running sums of its epoch): `run()` then continues there.
    func restore(from: TrainingState.Resumable) throws {
        try model.load(from: from.path)
        let restored = try TrainingState.load(
            from: TrainingState.path(forCheckpoint: from.path), store: model.store, sampleState: objective.state, configuration: config)
        guard restored.epoch == from.epoch, restored.epoch <= config.epochs else {
            throw TrainingError.io(path: from.path, reason: "state file says epoch \(restored.epoch); expected \(from.epoch) of at most \(config.epochs)")
        }
        optimizer.restore(step: restored.optimizerStep)
        split?.synchronizeSampleStates()
        startEpoch = restored.epoch
        startStep = restored.step
        resumed = true
        resumedInsideEpoch = nil
        learningRateScale = restored.learningRateScale
        if from.insideEpoch {
            guard let done = restored.resume["epoch_step"].flatMap({ Int($0) }), done > 0,
                  let sums = EpochSums(encoded: restored.resume["sums"] ?? "") else {
                throw TrainingError.io(path: TrainingState.path(forCheckpoint: from.path), reason: "a step checkpoint without resume.epoch_step and resume.sums")
            }
            resumedInsideEpoch = (done, sums)
        }
    }

    /// Continues the run in `directory` from its latest checkpoint, with the configuration its
    /// config.json records (`threads` may differ; results are then equal only up to rounding).
    public convenience init(resuming directory: String, threads: Int? = nil, communicator: any Communicator = SingleProcessCommunicator()) throws {
        let path = directory + "/config.json"
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TrainingError.io(path: path, reason: "not found: --resume needs a run directory written by clip train")
        }
        struct Recorded: Decodable { let training: TrainingConfiguration }
        var config: TrainingConfiguration
        do { config = try JSONDecoder().decode(Recorded.self, from: data).training } catch {
            throw TrainingError.io(path: path, reason: "does not hold a training configuration this version reads: \(error)")
        }
        config.output = directory
        if let t = threads { config.threads = t }
        try self.init(config, resume: true, communicator: communicator)
    }

    func writeConfigJSON() throws {
        struct Resolved: Encodable {
            let training: TrainingConfiguration
            let modelArchitecture: CLIPConfiguration
            let parameters: Int
            let data: ShapesWorld.Configuration?
            let realData: RealDataSummary?
            let tokenizer: String
            let vocabularySize: Int
            let stepsPerEpoch: Int
            let totalSteps: Int
            let objective: String
            let innerLRSchedule: InnerLRSchedule?
            let ranks: Int
            let localBatch: Int
            let provenance: [String: String]
        }
        let cpu = CPUFeatures.current
        let resolved = Resolved(
            training: config, modelArchitecture: model.config, parameters: model.store.layout.parameterCount,
            data: world?.configuration, realData: realData.map(RealDataSummary.init), tokenizer: tokenizerKind, vocabularySize: tokenizer.vocabularySize,
            stepsPerEpoch: loader.stepsPerEpoch, totalSteps: config.epochs * loader.stepsPerEpoch,
            objective: config.objective.summary,
            innerLRSchedule: config.objective.loss.usesSampleState ? objective.innerLRSchedule : nil,
            ranks: communicator.size, localBatch: localBatch,
            provenance: [
                "communication": communicator.summary,
                "cpu": cpu.modelName, "cpu_features": cpu.summary, "threads": "\(config.threads)", "thread_mode": threadMode.rawValue,
                "precision": (config.precision ?? .fp32).rawValue,
                "openblas": Threads.blasConfig, "host": ProcessInfo.processInfo.hostName, "swift": swiftCompilerVersion,
                "started": ISO8601DateFormatter().string(from: Date()),
            ])
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        try writeAtomically(try enc.encode(resolved), to: config.output + "/config.json")
    }

    /// Writes the normalised images of `ids` into `pixels`, (ids.count, 3, S, S); rendering runs
    /// over the threads, one image per task. Real images get their training crop for `epoch`.
    func loadImages(_ ids: ArraySlice<Int>, epoch: Int, into pixels: UnsafeMutablePointer<Float>) throws {
        let s = model.config.vision.imageSize, plane = 3 * s * s
        let base = UncheckedSendable(pixels)
        let w = data, seed = config.seed
        let first = ids.startIndex
        // A failed image stops the run with the dataset's error (never a silent zero image).
        let failures = FirstError()
        Threads.parallelFor(ids.count, grain: 8) { range in
            for k in range {
                let i = ids[first + k]
                do { try w.loadTrainingImage(i, size: s, seed: seed, epoch: epoch, into: base.value + k * plane) } catch { failures.record(error) }
            }
        }
        if let error = failures.error { throw error }
        ImageNormalization.apply(pixels, batch: ids.count, size: s)
    }

    /// Writes the caption rows of `ids` in `epoch` into `tokens`, (ids.count, T), and with an
    /// image mask the kept patches of each image into `kept`, (ids.count, K).
    func fillTokens(_ ids: ArraySlice<Int>, epoch: Int, into tokens: UnsafeMutablePointer<Int32>, kept: UnsafeMutablePointer<Int32>?) throws {
        captions.fill(ids, epoch: epoch, into: tokens)
        if let kept, let k = keptPatches {
            for (j, i) in ids.enumerated() {
                try imageReduction.fillKept(grid: model.config.vision.grid, seed: config.seed, epoch: epoch, sample: i, into: kept + j * k)
            }
        }
    }

    /// What one step reports (steps.csv).
    struct StepRecord {
        var stats: ObjectiveStepStatistics
        var lr: Double
        var lrTau: Double
        /// compute, communication, overlapped, other (seconds), then elements per collective kind.
        var timing: [String: Double]
    }

    /// One optimizer step on global batch `ids` (global sample ids) in 0-based `epoch`: this rank
    /// takes its b samples, and the parameter gradients are summed over the ranks.
    func step(_ ids: ArraySlice<Int>, epoch: Int, globalStep: Int) throws -> StepRecord {
        let comm = communicator
        let before = comm.statistics.snapshot()
        let start = ContinuousClock.now
        let first = ids.startIndex + rank * localBatch
        let local = ids[first..<(first + localBatch)]
        let store = model.store
        let stats: ObjectiveStepStatistics
        var computeStart = ContinuousClock.now
        if let split {
            // Each shard loads its own images and tokens on its thread, then runs the whole step;
            // the gradients arrive summed in the store.
            let me = UncheckedSendable(self)
            stats = try split.step(ids: local, epoch: epoch) { shard, ids in
                try me.value.loadImages(ids, epoch: epoch, into: shard.images.pointer)
                try me.value.fillTokens(ids, epoch: epoch, into: shard.tokenIDs.pointer, kept: shard.keptPatches?.pointer)
            }
        } else {
            try loadImages(local, epoch: epoch, into: images.pointer)
            try fillTokens(local, epoch: epoch, into: batchIDs.pointer, kept: keptPatches == nil ? nil : keptIDs.pointer)
            store.zeroGrads()
            computeStart = ContinuousClock.now
            model.forward(
                images: images.pointer, ids: batchIDs.pointer, keptPatches: keptPatches == nil ? nil : keptIDs.pointer, activations: activations)
            stats = try objective.step(
                imageFeatures: activations.imageFeatures, textFeatures: activations.textFeatures, ids: local,
                logitScale: store.value(model.logitScale).pointee, epoch: epoch,
                dImageFeatures: dImage.pointer, dTextFeatures: dText.pointer)
        }
        // The divergence guard. In one process a non-finite loss stops the step at once; under MPI
        // the step goes on through its collectives (a NaN reaches every rank's gradients through
        // the sum) and the ranks agree at its end, so that all stop or roll back at the same step.
        var divergence: String?
        if !(stats.surrogate.isFinite && stats.batchContrastive.isFinite && stats.logitScaleGradient.isFinite) {
            divergence = "the loss: objective \(config.objective.loss.rawValue) gave surrogate \(stats.surrogate), "
                + "batch loss \(stats.batchContrastive), logit-scale gradient \(stats.logitScaleGradient) at τ \(model.temperature)"
            if comm.size == 1 { throw diverged(step: globalStep, divergence!) }
        }
        // The s-gradient is global: added once, on rank 0, before the sum over ranks.
        if logitScaleGroup != nil && comm.isRoot { store.grad(model.logitScale).pointee += Float(stats.logitScaleGradient) }
        // Every rank's objective is normalised by the global batch: the gradients add up (one sum
        // over the flat buffer). Overlapped: the text tower's bucket (with logit_scale) starts as
        // soon as its backward is done and progresses after each vision block; the vision bucket
        // follows the backward.
        var pending: PendingCollective?
        var failure: Error?
        let textBucket = model.visionParameterOffset
        if self.split != nil {
            // Backward and the gradient sum ran in the shards.
        } else if comm.size > 1 && config.overlapCommunication {
            model.backward(
                dImageFeatures: dImage.pointer, dTextFeatures: dText.pointer, activations: activations,
                textDone: {
                    do { pending = try comm.startAllReduceSum(store.grads.pointer, count: textBucket) } catch { failure = error }
                },
                afterBlock: {
                    guard let p = pending, failure == nil else { return }
                    do { try comm.poll(p) } catch { failure = error }
                })
        } else {
            model.backward(dImageFeatures: dImage.pointer, dTextFeatures: dText.pointer, activations: activations)
        }
        if let failure { throw failure }
        // Batch-split shards load their inputs inside the timed region: shard 0's loading is taken out.
        let computeSeconds = elapsedSeconds(since: computeStart) - (self.split?.lastFillSeconds ?? 0)
        let inCompute = comm.statistics.blockingSeconds - before.values.reduce(0) { $0 + $1.blockingSeconds }
        if let p = pending {
            try comm.allReduceSum(store.grads.pointer + textBucket, count: store.grads.count - textBucket)
            try comm.wait(p)
        } else if comm.size > 1 {
            try comm.allReduceSum(store.grads.pointer, count: store.grads.count)
        }
        if let fault = injectedFault, fault.step == globalStep, fault.rank.map({ $0 == rank }) ?? true {
            injectedFault = nil
            let view = fault.tensor.flatMap { name in store.layout.views.first { $0.name == name } } ?? store.layout.views[0]
            store.grads.pointer[view.offset] = .nan
        }
        if divergence == nil { divergence = nonFinite(ids: ids) }
        if comm.size == 1, let divergence { throw diverged(step: globalStep, divergence) }
        if let c = config.gradientClipNorm { clipGradientNorm(store, maxNorm: c) }
        let lr = schedule(globalStep) * learningRateScale
        for g in groups.indices { groups[g].learningRate = lr }
        var lrTau = 0.0
        if let g = logitScaleGroup {
            lrTau = config.objective.logitScaleLearningRate(modelRate: lr, peakModelRate: config.learningRate, temperature: model.temperature) ?? 0
            groups[g].learningRate = lrTau
        } else if config.objective.temperatureRule == .individual {
            lrTau = config.objective.learningRateTau ?? 0
        }
        optimizer.update(store, groups: groups)
        model.clampLogitScale()

        let total = elapsedSeconds(since: start)
        let after = comm.statistics.snapshot()
        func delta(_ k: CollectiveKind, _ f: (CollectiveTotals) -> Double) -> Double {
            (after[k].map(f) ?? 0) - (before[k].map(f) ?? 0)
        }
        let blocking = CollectiveKind.allCases.reduce(0) { $0 + delta($1) { $0.blockingSeconds } }
        let overlapped = CollectiveKind.allCases.reduce(0) { $0 + delta($1) { $0.overlappedSeconds } }
        let compute = max(0, computeSeconds - inCompute)
        let timing: [String: Double] = [
            "compute_seconds": compute, "communication_seconds": blocking, "overlapped_seconds": overlapped,
            "other_seconds": max(0, total - compute - blocking),
            "all_gather_elements": delta(.allGather) { Double($0.elements) },
            "reduce_scatter_elements": delta(.reduceScatter) { Double($0.elements) },
            "all_reduce_elements": delta(.allReduce) { Double($0.elements) } + delta(.allReduceAsync) { Double($0.elements) },
        ]
        if comm.size > 1 {
            // Agreement (after the step's statistics, so steps.csv counts the step's own
            // collectives): any rank's divergence stops every rank. A rank that diverged has
            // updated with non-finite values like the others; the stop or the rollback's reload
            // discards them.
            var flag: Float = divergence == nil ? 0 : 1
            try comm.allReduceSum(&flag, count: 1)
            if flag > 0 {
                throw diverged(step: globalStep, divergence ?? "NaN or ∞ on \(Int(flag)) of the \(comm.size) ranks (rank 0's values were finite; the others' messages name the tensor)")
            }
        }
        return StepRecord(stats: stats, lr: lr, lrTau: lrTau, timing: timing)
    }

    /// With several ranks: whether every rank's parameters are still bit-identical to rank 0's
    /// (MPI does not promise equal bits from an all-reduce on every rank). Compares checksums; on a
    /// difference, copies rank 0's parameters and moments to all. Returns a line for the log.
    func checkRanksAgree() throws -> String? {
        let comm = communicator
        guard comm.size > 1 else { return nil }
        let store = model.store
        var sums = [0.0, 0.0]
        for i in 0..<store.values.count {
            let v = Double(store.values.pointer[i])
            sums[0] += v
            sums[1] += v * Double(i % 977 + 1)
        }
        var all = [Double](repeating: 0, count: 2 * comm.size)
        try sums.withUnsafeBufferPointer { s in try all.withUnsafeMutableBufferPointer { try comm.allGather(s.baseAddress!, count: 2, into: $0.baseAddress!) } }
        let agree = (1..<comm.size).allSatisfy { all[2 * $0] == all[0] && all[2 * $0 + 1] == all[1] }
        if agree { return "parameters identical on all \(comm.size) ranks" }
        for buffer in [store.values, store.firstMoment, store.secondMoment] {
            try comm.broadcast(buffer.pointer, count: buffer.count, root: 0)
        }
        return "parameters differed between ranks (checksums \(all)); re-synchronised from rank 0"
    }

    /// Runs every epoch (from `startEpoch` when resuming); returns the summary. metrics.csv gets a
    /// row before training (epoch 0) and one per epoch, steps.csv one per step; each row is
    /// flushed as written, and a resumed run keeps the rows of the epochs it had finished.
    /// Runs `count` optimizer steps of epoch 0 (the first `count` batches of its order, wrapping
    /// around) and returns each step's wall time in seconds, data loading included; writes no
    /// metrics or checkpoints (`clip bench train --data`).
    public func timeSteps(_ count: Int) throws -> [Double] {
        try GEMMPrecision.with(config.precision ?? .fp32) {
            let order = loader.order(epoch: 0)
            var seconds: [Double] = []
            for s in 0..<count {
                let start = ContinuousClock.now
                _ = try step(loader.batch(s % loader.stepsPerEpoch, of: order), epoch: 0, globalStep: s)
                seconds.append(elapsedSeconds(since: start))
            }
            return seconds
        }
    }

    public func run() throws -> TrainingSummary {
        try GEMMPrecision.with(config.precision ?? .fp32) {
            while true {
                do { return try runAtPrecision() } catch TrainingError.diverged(let step, let reason) where config.onDivergence == .rollback {
                    try rollBack(divergedAt: step, reason: reason)
                }
            }
        }
    }

    /// `--on-divergence rollback`: reloads the last good checkpoint and lowers the learning rate,
    /// or rethrows the divergence when there is none or the rollbacks are used up.
    func rollBack(divergedAt step: Int, reason: String) throws {
        let limit = config.maxRollbacks ?? 3
        guard rollbacks < limit else {
            throw TrainingError.diverged(step: step, reason: reason + " (after \(rollbacks) rollbacks, the most --max-rollbacks allows)")
        }
        guard let good = TrainingState.checkpoints(runDirectory: config.output).last(where: { $0.step < step }) else {
            throw TrainingError.diverged(step: step, reason: reason + " (no checkpoint before it to roll back to)")
        }
        try restore(from: good)
        rollbacks += 1
        learningRateScale *= config.rollbackLRFactor ?? 0.5
        log.say("diverged at step \(step) (\(reason)); rolled back to \(good.path) (step \(good.step)) with the learning rate × \(learningRateScale) "
                + "(rollback \(rollbacks) of at most \(limit))")
    }

    /// The last checkpoint written, for messages ("none yet" before the first).
    var lastGoodCheckpoint: String {
        TrainingState.latestCheckpoint(runDirectory: config.output)?.path ?? "none yet (the first is written after epoch 1, or --save-every-steps)"
    }

    /// The divergence error for `step`: what was not finite, the last good checkpoint, and (when
    /// the run stops) how to continue.
    func diverged(step: Int, _ what: String) -> TrainingError {
        .diverged(step: step, reason: "\(what); last good checkpoint: \(lastGoodCheckpoint)"
                  + (config.onDivergence == .rollback ? "" : " (continue from it with clip train --resume \(config.output), or train with --on-divergence rollback)"))
    }

    /// The divergence guard after a step's gradients are final: the gradients, τ, and the batch's
    /// u (and per-sample τ) must be finite; returns what is not (naming the tensor), or nil. One
    /// pass over the gradient buffer (a NaN or ∞ anywhere makes the sum of g − g NaN); the tensor
    /// is looked up only on failure.
    func nonFinite(ids: ArraySlice<Int>) -> String? {
        let store = model.store
        if !allFinite(store.grads.pointer, count: store.grads.count) {
            let bad = store.layout.views.first { v in !allFinite(store.grads.pointer + v.offset, count: v.count) }
            return "the gradient of '\(bad?.name ?? "?")' holds NaN or ∞"
        }
        guard model.temperature.isFinite else { return "τ is \(model.temperature)" }
        if let state = objective.state {
            for side in 0..<2 {
                for id in ids where !state.u[side][id].isFinite {
                    return "u[\(side == 0 ? "image" : "text")][\(id)] is \(state.u[side][id])"
                }
                if state.individual {
                    for id in ids where !state.tau[side][id].isFinite {
                        return "τ[\(side == 0 ? "image" : "text")][\(id)] is \(state.tau[side][id])"
                    }
                }
            }
        }
        return nil
    }

    private func runAtPrecision() throws -> TrainingSummary {
        let root = communicator.isRoot
        let invocationStart = Date()
        if let inside = resumedInsideEpoch {
            guard startStep == startEpoch * loader.stepsPerEpoch + inside.steps, inside.steps < loader.stepsPerEpoch else {
                throw TrainingError.io(
                    path: config.output + "/checkpoints", reason: "the step checkpoint of global step \(startStep) says \(inside.steps) steps into epoch \(startEpoch + 1), "
                        + "which does not fit \(loader.stepsPerEpoch) steps an epoch")
            }
        }
        // Rank 0 alone writes files and evaluates; the other ranks train.
        let metricColumns = Self.metricColumns + (mixtureReport?.metricColumns ?? []) + (realData == nil ? [] : RealDataSummary.metricColumns)
            + (heldOut == nil ? [] : ["zeroshot_top1"])
        let stepColumns = Self.stepColumns + (mixtureReport?.stepColumns ?? [])
        let metrics = root ? try MetricsCSV(path: config.output + "/metrics.csv", columns: metricColumns, keepingRowsThroughEpoch: resumed ? startEpoch : nil) : nil
        let steps = root
            ? try MetricsCSV(path: config.output + "/steps.csv", columns: stepColumns, keepingRowsThrough: resumed ? ("step", startStep) : nil, syncEveryRow: false)
            : nil
        let gammaSchedule = objective.innerLRSchedule
        let resumedAt = resumedInsideEpoch.map { "step \(startStep) (\($0.steps) of epoch \(startEpoch + 1)'s \(loader.stepsPerEpoch))" } ?? "epoch \(startEpoch)"
        log.say((resumed ? "ClipLab train, resumed after \(resumedAt): " : "ClipLab train: ")
            + "\(config.modelArchitecture.map { "\($0.name) (--model-config)" } ?? config.model) (\(model.store.layout.parameterCount) parameters) on \(config.data) "
            + "(\(data.count) pairs), batch \(config.batchSize), \(config.epochs) epochs × \(loader.stepsPerEpoch) steps, "
            + "\(config.threads) thread(s)" + (config.threads > 1 ? " (\(threadMode.rawValue))" : "") + (communicator.size > 1 ? " per rank × \(communicator.size) ranks (\(communicator.summary), "
                + "local batch \(localBatch), gradient reduction \(config.gradientReduction.rawValue))" : "")
            + ", tokenizer \(tokenizerKind) (\(tokenizer.vocabularySize) tokens)")
        log.say("objective: " + config.objective.summary)
        let start = Date()
        var row: [String: Double] = [:]
        if !resumed && root {
            row = try evaluationRow(epoch: 0, step: 0, means: nil, gamma: .nan, lr: 0, lrTau: 0, seconds: 0)
            try metrics?.append(row.merging(mixtureReport?.emptyRow ?? [:]) { a, _ in a })
        }
        var globalStep = startStep
        var trainSeconds = 0.0
        for epoch in startEpoch..<config.epochs {
            let order = loader.order(epoch: epoch)
            let gamma = config.objective.loss.usesSampleState ? gammaSchedule.gamma(epoch: epoch) : Double.nan
            let progress = root ? ProgressLine(total: loader.stepsPerEpoch, label: "epoch \(epoch + 1)/\(config.epochs)") : nil
            // A run resumed inside this epoch starts after the steps done, with their sums.
            let continued = epoch == startEpoch ? resumedInsideEpoch : nil
            var sums = continued?.sums ?? EpochSums()
            if let m = sums.mixture { mixtureReport?.accumulated = m }
            var last = StepRecord(stats: ObjectiveStepStatistics(), lr: 0, lrTau: 0, timing: [:])
            let epochStart = Date()
            var stopAtEpochEnd: String?
            for s in (continued?.steps ?? 0)..<loader.stepsPerEpoch {
                let r = try step(loader.batch(s, of: order), epoch: epoch, globalStep: globalStep)
                last = r
                sums.loss += r.stats.objective
                sums.surrogate += r.stats.surrogate
                sums.batch += r.stats.batchContrastive
                for (k, v) in r.timing { sums.timing[k, default: 0] += v }
                globalStep += 1
                let routing = mixtureReport?.step(
                    groups: routedReplicas.map { $0.0.mixtureStatistics($0.1) },
                    // Each group's loss is scaled by 1/(threads × ranks): × ranks gives rank 0's groups' mean.
                    auxiliaryLoss: routedReplicas.reduce(0) { $0 + $1.0.auxiliaryLoss($1.1) } * Double(communicator.size)) ?? [:]
                try steps?.append([
                    "epoch": Double(epoch + 1), "step": Double(globalStep), "loss": r.stats.objective, "surrogate": r.stats.surrogate,
                    "batch_contrastive": r.stats.batchContrastive, "temperature": r.stats.temperature, "gamma": gamma,
                    "lr": r.lr, "lr_tau": r.lrTau,
                ].merging(r.timing) { a, _ in a }.merging(routing) { a, _ in a })
                let elapsed = Date().timeIntervalSince(epochStart)
                progress?.update(s + 1, samplesPerSecond: Double((s + 1 - (continued?.steps ?? 0)) * config.batchSize) / max(elapsed, 1e-9),
                                fields: [("loss", String(format: "%.4f", r.stats.objective)), ("τ", String(format: "%.4f", r.stats.temperature))])
                // The step boundary: a stop request (agreed by every rank) or the cadence writes a
                // step checkpoint; at an epoch's end the epoch checkpoint below does.
                let stop = try stopRequest(since: invocationStart)
                let epochEnd = s + 1 == loader.stepsPerEpoch
                let cadence = (config.saveEverySteps ?? 0) > 0 && globalStep % config.saveEverySteps! == 0
                if !epochEnd && (stop != nil || cadence) && config.checkpoints {
                    sums.mixture = mixtureReport?.accumulated
                    let path = try saveStepCheckpoint(epoch: epoch, stepsDone: s + 1, globalStep: globalStep, sums: sums)
                    if let stop {
                        progress?.finish()
                        try steps?.synchronize()
                        log.say("stopped at step \(globalStep) (\(stop)); checkpoint \(path); continue with: clip train --resume \(config.output)")
                        throw TrainingError.stopped(reason: stop, step: globalStep, checkpoint: path)
                    }
                } else if let stop {
                    stopAtEpochEnd = stop
                }
            }
            progress?.finish()
            let epochTrainSeconds = Date().timeIntervalSince(epochStart)
            trainSeconds += epochTrainSeconds
            try steps?.synchronize()
            let consistency = try checkRanksAgree()
            guard root else {
                // The other ranks go on to the next epoch; rank 0's evaluation and checkpoint
                // happen while they wait in the next step's first collective.
                continue
            }
            let n = Double(loader.stepsPerEpoch)
            let isLast = epoch == config.epochs - 1
            let evaluate = evaluates && (isLast || (config.evalEvery > 0 && (epoch + 1) % config.evalEvery == 0))
            row = try evaluationRow(
                epoch: epoch + 1, step: globalStep, means: (sums.loss / n, sums.surrogate / n, sums.batch / n), gamma: gamma,
                lr: last.lr, lrTau: last.lrTau, seconds: Date().timeIntervalSince(start), evaluate: evaluate)
            for k in Self.timingColumns { row[k] = (sums.timing[k] ?? 0) / n }
            row["train_seconds"] = epochTrainSeconds
            if var report = mixtureReport {
                row.merge(report.epochMeans()) { a, _ in a }
                mixtureReport = report
            }
            try metrics?.append(row)
            var line = String(format: "epoch %d/%d: loss %.4f, batch contrastive %.4f, τ %.4f", epoch + 1, config.epochs,
                              row["loss"]!, row["batch_contrastive"]!, row["temperature"]!)
            if !gamma.isNaN { line += String(format: ", γ %.3f, mean log u %.3f", gamma, row["log_u_mean"]!) }
            if evaluate { line += String(format: ", eval_mean %.4f", row["eval_mean"]!) }
            log.say(line)
            if let consistency { log.say(consistency) }
            if config.checkpoints {
                try writeCheckpoint(config.output + "/checkpoints/epoch_\(epoch + 1).safetensors", epochsDone: epoch + 1, globalStep: globalStep)
                if (config.saveEverySteps ?? 0) > 0 {
                    // Step checkpoints of this epoch are older than its epoch checkpoint.
                    TrainingState.pruneStepCheckpoints(runDirectory: config.output, keep: 0)
                }
            }
            let stopAfter = config.stopAfterEpochs.map { epoch + 1 - startEpoch >= $0 } ?? false
            if epoch + 1 < config.epochs, let stop = stopAtEpochEnd ?? (stopAfter ? "--stop-after-epochs \(config.stopAfterEpochs!)" : nil) {
                let path = config.checkpoints ? config.output + "/checkpoints/epoch_\(epoch + 1).safetensors" : "no checkpoint (--no-checkpoints)"
                log.say("stopped after epoch \(epoch + 1) (\(stop)); checkpoint \(path); continue with: clip train --resume \(config.output)")
                throw TrainingError.stopped(reason: stop, step: globalStep, checkpoint: path)
            }
        }
        let samples = (globalStep - startStep) * config.batchSize
        try communicator.barrier()
        return TrainingSummary(
            steps: globalStep, samplesSeen: globalStep * config.batchSize, wallSeconds: Date().timeIntervalSince(start),
            trainSecondsPerSample: trainSeconds / Double(max(samples, 1)),
            finalMetrics: row)
    }

    /// Why the run should stop at this step boundary ("SIGTERM", "--time-limit 3600 s"), agreed by
    /// every rank (one all-reduce of a flag per step under MPI), or nil.
    func stopRequest(since invocationStart: Date) throws -> String? {
        var reason = Preemption.requestName
        if reason == nil, let limit = config.timeLimitSeconds, Date().timeIntervalSince(invocationStart) >= limit {
            reason = "--time-limit \(limit) s"
        }
        guard communicator.size > 1 else { return reason }
        // Any rank's request stops them all at the same step.
        var flag: Float = reason == nil ? 0 : 1
        try communicator.allReduceSum(&flag, count: 1)
        return flag > 0 ? (reason ?? "another rank's stop request") : nil
    }

    /// Writes the model checkpoint `path` (with the tokenizer, epochs done, global step and data
    /// seed in its metadata) and its state file; `resume` marks a step checkpoint.
    func writeCheckpoint(_ path: String, epochsDone: Int, globalStep: Int, resume: [String: String] = [:]) throws {
        var meta = TokenizerMetadata.entries(kind: tokenizerKind, tokenizer: tokenizer)
        meta["epoch"] = "\(epochsDone)"
        meta["step"] = "\(globalStep)"
        meta["data_seed"] = "\(config.dataSeed)"
        try model.save(to: path, metadata: meta)
        try TrainingState.save(
            to: TrainingState.path(forCheckpoint: path), epoch: epochsDone, step: globalStep, optimizer: optimizer,
            store: model.store, sampleState: objective.state, configuration: config, learningRateScale: learningRateScale, resume: resume)
    }

    /// Writes `checkpoints/step_S.safetensors` and its state file (rank 0), removing step
    /// checkpoints beyond the newest `keepStepCheckpoints`; returns the model file's path.
    func saveStepCheckpoint(epoch: Int, stepsDone: Int, globalStep: Int, sums: EpochSums) throws -> String {
        let path = config.output + "/checkpoints/step_\(globalStep).safetensors"
        guard communicator.isRoot else { return path }
        try writeCheckpoint(path, epochsDone: epoch, globalStep: globalStep, resume: ["epoch_step": "\(stepsDone)", "sums": sums.encoded])
        TrainingState.pruneStepCheckpoints(runDirectory: config.output, keep: config.keepStepCheckpoints ?? 2)
        return path
    }

    /// A metrics.csv row; the evaluation columns are NaN when `evaluate` is false, the training
    /// means NaN before training.
    func evaluationRow(
        epoch: Int, step: Int, means: (loss: Double, surrogate: Double, batch: Double)?, gamma: Double, lr: Double, lrTau: Double,
        seconds: Double, evaluate: Bool = true
    ) throws -> [String: Double] {
        var row: [String: Double] = [
            "epoch": Double(epoch), "step": Double(step), "samples_seen": Double(step * config.batchSize),
            "loss": means?.loss ?? .nan, "surrogate": means?.surrogate ?? .nan, "batch_contrastive": means?.batch ?? .nan,
            "gamma": gamma, "lr": lr, "lr_tau": lrTau, "seconds": seconds,
            "gmacs_per_sample": trainingGMACsPerSample, "compute_gmacs": Double(step * config.batchSize) * trainingGMACsPerSample,
        ]
        for k in Self.timingColumns + ["eval_seconds", "train_seconds"] { row[k] = .nan }
        if let state = objective.state {
            let s = state.statistics()
            row["log_u_mean"] = s.logUMean
            row["log_u_min"] = s.logUMin
            row["log_u_max"] = s.logUMax
            if state.individual {
                row["temperature"] = s.tauMean
                row["temperature_min"] = s.tauMin
                row["temperature_max"] = s.tauMax
            }
        }
        for key in ["log_u_mean", "log_u_min", "log_u_max"] where row[key] == nil { row[key] = .nan }
        if row["temperature"] == nil {
            row["temperature"] = model.temperature
            row["temperature_min"] = model.temperature
            row["temperature_max"] = model.temperature
        }
        var m: [String: Double] = [:]
        if evaluate, let heldOut {
            let start = ContinuousClock.now
            m = try RealDataEvaluation.run(
                model: model, tokenizer: tokenizer, data: heldOut.data, retrievalCount: config.retrievalCount, classes: heldOut.classes)
            row["eval_seconds"] = elapsedSeconds(since: start)
            row["zeroshot_top1"] = m["zeroshot_top1"] ?? .nan
        } else if evaluate && world != nil {
            let start = ContinuousClock.now
            m = try evaluator.run(in: keptPatches != nil ? .single(unmaskedActivations) : split.map { .lanes($0) } ?? .single(activations))
            row["eval_seconds"] = elapsedSeconds(since: start)
        }
        for name in Self.evalMetricNames { row[name] = m[name] ?? .nan }
        if heldOut != nil && row["zeroshot_top1"] == nil { row["zeroshot_top1"] = .nan }
        row["eval_mean"] = m["eval_mean"] ?? .nan
        if let realData {
            for reason in SkipReason.allCases { row["skipped_" + reason.rawValue] = Double(realData.skipped[reason] ?? 0) }
        }
        return row
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
public final class RunLog: @unchecked Sendable {
    let handle: FileHandle?
    /// A log that says nothing (the ranks other than 0).
    public static var silent: RunLog { RunLog() }
    private init() { handle = nil }
    /// Creates (or truncates) the log, or with `append` adds to an existing one.
    public init(path: String, append: Bool = false) throws {
        let exists = append && FileManager.default.fileExists(atPath: path)
        guard exists || FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot create the log file")
        }
        handle = h
        if exists { h.seekToEndOfFile() }
    }
    deinit { try? handle?.close() }
    public func say(_ line: String) {
        guard let handle else { return }
        print(line)
        // `write(_:)` traps on a write error (a full disk); the line is on standard output anyway,
        // and the next checkpoint or metrics write reports the disk by name.
        try? handle.write(contentsOf: Data((line + "\n").utf8))
    }
}

/// The trainer's objective: the single-process closed form, or this rank's share (K > 1).
enum TrainingObjective {
    case single(ContrastiveObjective<Float>)
    case distributed(DistributedObjective<Float>)

    var state: SampleState? {
        switch self {
        case .single(let o): o.state
        case .distributed(let o): o.state
        }
    }

    var innerLRSchedule: InnerLRSchedule {
        switch self {
        case .single(let o): o.innerLRSchedule
        case .distributed(let o): o.innerLRSchedule
        }
    }

    func step(
        imageFeatures: UnsafePointer<Float>, textFeatures: UnsafePointer<Float>, ids: ArraySlice<Int>, logitScale: Float, epoch: Int,
        dImageFeatures: UnsafeMutablePointer<Float>, dTextFeatures: UnsafeMutablePointer<Float>
    ) throws -> ObjectiveStepStatistics {
        switch self {
        case .single(let o):
            o.step(imageFeatures: imageFeatures, textFeatures: textFeatures, ids: ids, logitScale: logitScale, epoch: epoch,
                   dImageFeatures: dImageFeatures, dTextFeatures: dTextFeatures)
        case .distributed(let o):
            try o.step(imageFeatures: imageFeatures, textFeatures: textFeatures, ids: ids, logitScale: logitScale, epoch: epoch,
                       dImageFeatures: dImageFeatures, dTextFeatures: dTextFeatures)
        }
    }
}

/// The Swift compiler this build came from (for a run's provenance).
let swiftCompilerVersion: String = {
    #if compiler(>=6.4)
        return "≥ 6.4"
    #elseif compiler(>=6.3)
        return "6.3"
    #elseif compiler(>=6.2)
        return "6.2"
    #elseif compiler(>=6.1)
        return "6.1"
    #else
        return "< 6.1"
    #endif
}()
