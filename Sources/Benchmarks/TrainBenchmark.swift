// `clip bench train`: steady-state training and inference throughput of a preset on random data,
// counted the way the OpenCLIP/PyTorch anchor (shared/anchors/openclip_cpu_bench.py) counts it,
// so the two can be compared as ratios in one invocation.

import CLIP
import Compute
import Foundation
import Layers
import Collective
import Objectives
import TokenReduction
import Training

#if canImport(Glibc)
import Glibc
#endif

/// Analytical matmul FLOPs per sample, as the anchor script counts them.
public struct ModelFlops: Sendable {
    public let forward: Double  // towers + the loss's two B×B products
    public let training: Double  // 3 × forward − patch embedding (images need no gradient)
    public let inference: Double  // towers only

    /// `keptPatches`: the patches per image the encoder sees under an image mask (default: all).
    public init(config: CLIPConfiguration, batch: Int, keptPatches: Int? = nil) {
        let v = config.vision, t = config.text, e = Double(config.embedDimension)
        func tower(_ tokens: Int, _ d: Int, _ layers: Int, _ ratio: Int) -> Double {
            let T = Double(tokens), D = Double(d)
            return Double(layers) * (2 * T * D * 3 * D + 2 * (2 * T * T * D) + 2 * T * D * D + 2 * (2 * T * D * Double(ratio) * D))
        }
        let kept = keptPatches ?? v.grid * v.grid
        let patch = 2 * Double(kept) * Double(3 * v.patchSize * v.patchSize) * Double(v.width)
        let vision = patch + tower(kept + 1, v.width, v.layers, v.mlpRatio) + 2 * Double(v.width) * e
        let text = tower(t.contextLength, t.width, t.layers, t.mlpRatio) + 2 * Double(t.width) * e
        forward = vision + text + 2 * (2 * Double(batch) * e)
        training = 3 * forward - patch
        inference = vision + text
    }
}

/// The result of one benchmark configuration.
public struct TrainBenchResult: Sendable, Codable {
    public var model: String
    public var mode: String
    public var batch: Int
    public var threads: Int
    public var samplesPerSecond: Double
    public var gflopPerSample: Double
    public var gflops: Double
    public var medianStepSeconds: Double
    public var peakRSSMiB: Double
    public var workspaceMiB: Double
    public var parameterMiB: Double
    /// OpenBLAS's kernel family in this run (e.g. "Haswell", "Cooperlake") and the element-wise
    /// kernels' instruction set ("avx512", "avx2", "portable").
    public var blasCore: String = Threads.blasCoreName
    public var vectorISA: String = VectorISA.current.rawValue
    /// What the activations keep: "full", "recompute" (training) or "inference".
    public var activationMemory: String
    /// The objective preset of training steps ("openclip", "fastclip-v3", …).
    public var objective: String = "openclip"
    /// How the step used its threads ("gemm" or "batch-split").
    public var threadMode: String = "gemm"
    /// Precision of the matrix products ("fp32", "bf16", "bf16-emulated").
    public var precision: String = "fp32"
    /// Data-parallel ranks (the global batch is split over them) and the gradient reduction.
    public var ranks: Int = 1
    public var gradientReduction: String = "none"
    /// CLIPA's token reduction of the timed steps: the image strategy, the image and text tokens
    /// the encoders saw per sample (class token included), and forward GMACs per sample.
    public var imageReduction: String = "none"
    public var imageTokens: Int = 0
    public var textTokens: Int = 0
    public var gmacsPerSample: Double = 0
    /// Seconds per step in each phase (median steps' mean), and the rest ("other": residual adds,
    /// pooling, projections, gradient zeroing).
    public var phaseSeconds: [String: Double]
}

/// The peak resident set size of this process so far, in MiB.
public func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// A random batch like the anchor's: normal "normalised pixels"; token rows [sot, random ids…,
/// eot at a random position, 0 after it], sot = V−2, eot = V−1.
public func randomBatch(config: CLIPConfiguration, batch: Int, seed: UInt64) -> (images: AlignedBuffer<Float>, ids: [Int32]) {
    let s = config.vision.imageSize, l = config.text.contextLength, v = config.text.vocabularySize
    let images = AlignedBuffer<Float>(count: batch * 3 * s * s)
    CounterRNG(seed: seed, streamNamed: "bench.images").fillNormal(images.pointer, count: images.count)
    let rng = CounterRNG(seed: seed, streamNamed: "bench.texts")
    var ids = [Int32](repeating: 0, count: batch * l)
    for b in 0..<batch {
        let eot = 1 + rng.integer(below: l - 1, UInt64(b) << 32)
        ids[b * l] = Int32(v - 2)
        for j in 1..<l {
            if j < eot { ids[b * l + j] = Int32(1 + rng.integer(below: v - 3, (UInt64(b) << 32) + UInt64(j))) }
            if j == eot { ids[b * l + j] = Int32(v - 1) }
        }
    }
    return (images, ids)
}

/// Times `steps` training steps (forward, loss, backward, AdamW, clamp) after `warmup` steps, or
/// inference (both towers' embeddings, forward-only activations) when `train` is false; returns
/// the median step time. `memory` chooses full activations or recomputation for training;
/// `objective` the objective preset (FCCO objectives update their per-sample state for the batch's
/// ids 0..<B each step, at γ of epoch 1). With a communicator of K ranks every rank runs b = B/K
/// samples and the gradients are summed over ranks (as `clip train` under mpirun does); the
/// samples/s count the global batch, and the `communication` phase is the time blocked in
/// collectives.
///
/// `threadMode` (resolved like `clip train`'s) picks per-GEMM threading or batch-split shards for
/// training steps (`BatchSplitStep`, the trainer's); inference always threads per GEMM.
public func runTrainBenchmark(
    preset: String, batch: Int, threads: Int, train: Bool, memory: ActivationMemory = .full, objective objectiveName: String = "openclip",
    communicator: any Communicator = SingleProcessCommunicator(), reduction: GradientReduction = .openclip,
    threadMode requestedMode: ThreadMode = .auto, imageReduction: ImageTokenReduction = .none, textLength: Int? = nil,
    visionExperts: MoEPlacement? = nil, textExperts: MoEPlacement? = nil, warmup: Int = 3, steps: Int = 20
) throws -> TrainBenchResult {
    let comm = communicator
    guard batch % comm.size == 0 else { throw ConfigurationError(message: "batch \(batch) does not split over \(comm.size) ranks") }
    let local = batch / comm.size
    guard var config = CLIPConfiguration.preset(preset) else { throw ConfigurationError(message: "unknown preset '\(preset)'") }
    // CLIPA: a resize trains a smaller image; a mask keeps K patches; text may be shorter.
    config.vision.imageSize = imageReduction.trainingImageSize(modelImageSize: config.vision.imageSize)
    if let l = textLength { config.text.contextLength = l }
    config.vision.experts = visionExperts
    config.text.experts = textExperts
    try config.validate()
    let requested: Int?
    do {
        requested = try imageReduction.masks ? imageReduction.keptPatches(grid: config.vision.grid) : nil
    } catch let e as TokenReductionError { throw ConfigurationError(message: "--image-reduction: \(e.message)") }
    // A mask that keeps every patch (ratio 0, grid:1) is no mask.
    let kept = requested.flatMap { $0 < config.vision.grid * config.vision.grid ? $0 : nil }
    if kept != nil && !train {
        throw ConfigurationError(message: "--image-reduction \(imageReduction.name) with --mode infer: image masks apply to training steps only (inference sees whole images)")
    }
    let keptIDs = AlignedBuffer<Int32>(count: max(1, batch * (kept ?? 0)))
    if let k = kept {
        for b in 0..<batch { try imageReduction.fillKept(grid: config.vision.grid, seed: 0, epoch: 0, sample: b, into: keptIDs.pointer + b * k) }
    }
    let reductionFields = { (r: inout TrainBenchResult) in
        r.imageReduction = imageReduction.name
        r.imageTokens = (kept ?? config.vision.grid * config.vision.grid) + 1
        r.textTokens = config.text.contextLength
        r.gmacsPerSample = (ComputeAccounting.imageMACs(config.vision, keptPatches: kept) + ComputeAccounting.textMACs(config.text)) / 1e9
    }
    guard let objectiveConfig = ObjectiveConfiguration.preset(objectiveName) else {
        throw ConfigurationError(message: "unknown objective '\(objectiveName)'; expected one of \(ObjectiveConfiguration.presetNames.joined(separator: ", "))")
    }
    Threads.set(threads)
    let model = try CLIPModel<Float>(config)
    model.initialize(seed: 0)
    let threadMode = try requestedMode.resolved(
        threads: threads, localBatch: local, ranks: comm.size, forwardFlopsPerSample: model.forwardFlopsPerSample)
    if threadMode == .batchSplit {
        var r = train
            ? try runBatchSplitTrainBenchmark(
                model: model, preset: preset, batch: batch, threads: threads, memory: memory, objective: objectiveName, warmup: warmup, steps: steps,
                kept: kept.map { ($0, keptIDs) })
            : try runBatchSplitInferenceBenchmark(model: model, preset: preset, batch: batch, threads: threads, warmup: warmup, steps: steps)
        reductionFields(&r)
        return r
    }
    let acts = model.makeActivations(batch: local, memory: train ? memory : .inference, keptImagePatches: kept)
    let localKept = kept.map { UnsafePointer(keptIDs.pointer + comm.rank * local * $0) }
    let e = config.embedDimension
    let single = comm.size == 1 ? try ContrastiveObjective<Float>(objectiveConfig, batch: batch, dimension: e, datasetCount: batch, epochs: 2, adam: .vit) : nil
    let distributed = comm.size > 1
        ? try DistributedObjective<Float>(
            objectiveConfig, reduction: reduction, communicator: comm, globalBatch: batch, dimension: e, datasetCount: batch, epochs: 2, adam: .vit)
        : nil
    let sampleIDs = Array((comm.rank * local)..<((comm.rank + 1) * local))
    let dImg = AlignedBuffer<Float>(count: local * e), dTxt = AlignedBuffer<Float>(count: local * e)
    var optimizer = Optimizer(kind: .adamw)
    let groups = ParameterGroup.standard(model.store.layout, learningRate: 5e-4, weightDecay: 0.1)
    let (images, ids) = randomBatch(config: config, batch: local, seed: UInt64(comm.rank))
    let store = model.store
    if comm.size > 1 { try comm.broadcast(store.values.pointer, count: store.values.count, root: 0) }
    var objectiveCommunication = 0.0  // seconds blocked in the objective's collectives (moved from `loss`)
    func step() throws {
        if train {
            store.zeroGrads()
            model.forward(images: images.pointer, ids: ids, keptPatches: localKept, activations: acts)
            let prof = Profiler.shared
            try prof.measure(.loss) {
                let before = comm.statistics.blockingSeconds
                let stats = try single?.step(
                    imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures, ids: sampleIDs,
                    logitScale: store.value(model.logitScale).pointee, epoch: 1, dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
                    ?? distributed!.step(
                        imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures, ids: sampleIDs,
                        logitScale: store.value(model.logitScale).pointee, epoch: 1, dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
                if prof.isEnabled { objectiveCommunication += comm.statistics.blockingSeconds - before }
                if comm.isRoot { store.grad(model.logitScale).pointee += Float(stats.logitScaleGradient) }
            }
            // As the trainer: the text tower's bucket (with logit_scale) overlaps the vision backward.
            var pending: PendingCollective?
            var failure: Error?
            let split = model.visionParameterOffset
            if comm.size > 1 {
                model.backward(
                    dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts,
                    textDone: {
                        do { pending = try prof.measure(.communication) { try comm.startAllReduceSum(store.grads.pointer, count: split) } } catch { failure = error }
                    },
                    afterBlock: {
                        guard let p = pending, failure == nil else { return }
                        do { try prof.measure(.communication) { try comm.poll(p) } } catch { failure = error }
                    })
                if let failure { throw failure }
                try prof.measure(.communication) {
                    try comm.allReduceSum(store.grads.pointer + split, count: store.grads.count - split)
                    if let p = pending { try comm.wait(p) }
                }
            } else {
                model.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts)
            }
            prof.measure(.optimizer) { optimizer.update(store, groups: groups) }
            model.clampLogitScale()
        } else {
            _ = model.embedImages(images.pointer, count: local, activations: acts, normalize: true)
            _ = model.embedTexts(ids, count: local, activations: acts, normalize: true)
            if comm.size > 1 { try comm.barrier() }
        }
    }
    var (median, phases) = try timeSteps(warmup: warmup, steps: steps, step)
    phases["loss", default: 0] -= objectiveCommunication / Double(steps)
    phases["communication", default: 0] += objectiveCommunication / Double(steps)
    let flops = ModelFlops(config: config, batch: batch, keptPatches: kept)
    let perSample = train ? flops.training : flops.inference
    var result = TrainBenchResult(
        model: preset, mode: train ? "train" : "infer", batch: batch, threads: threads,
        samplesPerSecond: Double(batch) / median, gflopPerSample: perSample / 1e9,
        gflops: perSample * Double(batch) / median / 1e9, medianStepSeconds: median,
        peakRSSMiB: peakRSSMiB(), workspaceMiB: Double(acts.workspace.totalBytes) / 1_048_576,
        parameterMiB: Double(store.layout.totalCount * 4 * 4) / 1_048_576,
        activationMemory: acts.workspace.memory.rawValue, objective: train ? objectiveName : "none",
        ranks: comm.size, gradientReduction: comm.size > 1 && train ? reduction.rawValue : "none", phaseSeconds: phases)
    reductionFields(&result)
    return result
}

/// Runs `warmup` untimed steps, then `steps` timed ones with the profiler on; returns the median
/// step time and the mean seconds per step of each phase ("other": the time no phase recorded).
func timeSteps(warmup: Int, steps: Int, _ step: () throws -> Void) throws -> (median: Double, phases: [String: Double]) {
    for _ in 0..<warmup { try step() }
    var times: [Double] = []
    let prof = Profiler.shared
    prof.reset()
    prof.enable(true)
    defer { prof.enable(false) }
    for _ in 0..<steps {
        let t0 = ContinuousClock.now
        try step()
        times.append(elapsedSeconds(since: t0))
    }
    var phases: [String: Double] = [:]
    for (phase, s) in prof.totals { phases[phase.name] = s / Double(steps) }
    phases["other"] = max(0, times.reduce(0, +) - prof.totals.values.reduce(0, +)) / Double(steps)
    times.sort()
    return (times[times.count / 2], phases)
}

/// Training steps in batch-split mode, through the trainer's `BatchSplitStep` (T shards, each on
/// its own thread; the phases are shard 0's, which runs on this thread).
func runBatchSplitTrainBenchmark(
    model: CLIPModel<Float>, preset: String, batch: Int, threads: Int, memory: ActivationMemory, objective objectiveName: String,
    warmup: Int, steps: Int, kept: (count: Int, indices: AlignedBuffer<Int32>)? = nil
) throws -> TrainBenchResult {
    let config = model.config, store = model.store
    let objectiveConfig = ObjectiveConfiguration.preset(objectiveName)!
    let split = try BatchSplitStep(
        model: model, threads: threads, batch: batch, memory: memory, objective: objectiveConfig, reduction: .fastclip,
        datasetCount: batch, epochs: 2, adam: .vit, keptImagePatches: kept?.count)
    let keptSource = kept.map { UncheckedSendable(UnsafePointer($0.indices.pointer)) }, keptCount = kept?.count ?? 0
    let (images, ids) = randomBatch(config: config, batch: batch, seed: 0)
    let plane = 3 * config.vision.imageSize * config.vision.imageSize, ctx = config.text.contextLength
    let pixels = UncheckedSendable(UnsafePointer(images.pointer))
    let tokens = ids, sampleIDs = Array(0..<batch)
    var optimizer = Optimizer(kind: .adamw)
    let groups = ParameterGroup.standard(store.layout, learningRate: 5e-4, weightDecay: 0.1)
    let (median, phases) = try withExtendedLifetime(images) {
        try timeSteps(warmup: warmup, steps: steps) {
            let stats = try split.step(ids: sampleIDs[...], epoch: 1) { shard, shardIDs in
                let first = shardIDs.startIndex
                shard.images.pointer.update(from: pixels.value + first * plane, count: shardIDs.count * plane)
                tokens.withUnsafeBufferPointer { shard.tokenIDs.pointer.update(from: $0.baseAddress! + first * ctx, count: shardIDs.count * ctx) }
                if let source = keptSource, let dst = shard.keptPatches {
                    dst.pointer.update(from: source.value + first * keptCount, count: shardIDs.count * keptCount)
                }
            }
            store.grad(model.logitScale).pointee += Float(stats.logitScaleGradient)
            Profiler.shared.measure(.optimizer) { optimizer.update(store, groups: groups) }
            model.clampLogitScale()
        }
    }
    let flops = ModelFlops(config: config, batch: batch, keptPatches: kept?.count)
    return TrainBenchResult(
        model: preset, mode: "train", batch: batch, threads: threads,
        samplesPerSecond: Double(batch) / median, gflopPerSample: flops.training / 1e9,
        gflops: flops.training * Double(batch) / median / 1e9, medianStepSeconds: median,
        peakRSSMiB: peakRSSMiB(), workspaceMiB: Double(split.workspaceBytes) / 1_048_576,
        parameterMiB: Double(store.layout.totalCount * 4 * (4 + threads - 1)) / 1_048_576,
        activationMemory: memory.rawValue, objective: objectiveName, threadMode: ThreadMode.batchSplit.rawValue,
        phaseSeconds: phases)
}

/// Inference in batch-split lanes (`InferenceLanes`): each thread embeds its part of the images and
/// texts in forward-only buffers of its own.
func runBatchSplitInferenceBenchmark(model: CLIPModel<Float>, preset: String, batch: Int, threads: Int, warmup: Int, steps: Int) throws -> TrainBenchResult {
    let config = model.config
    let per = batch / threads
    let lanes = InferenceLanes(model: model, threads: threads, batch: per)
    let (images, ids) = randomBatch(config: config, batch: batch, seed: 0)
    let plane = 3 * config.vision.imageSize * config.vision.imageSize, ctx = config.text.contextLength
    let pixels = UncheckedSendable(UnsafePointer(images.pointer))
    let (median, phases) = try withExtendedLifetime(images) {
        try timeSteps(warmup: warmup, steps: steps) {
            try lanes.forEachLane { lane in
                let first = lane.index * per
                lane.images.update(from: pixels.value + first * plane, count: per * plane)
                _ = lane.model.embedImages(lane.images, count: per, activations: lane.activations, normalize: true)
                _ = ids.withUnsafeBufferPointer { lane.model.embedTexts($0.baseAddress! + first * ctx, count: per, activations: lane.activations, normalize: true) }
            }
        }
    }
    let flops = ModelFlops(config: config, batch: batch)
    return TrainBenchResult(
        model: preset, mode: "infer", batch: batch, threads: threads,
        samplesPerSecond: Double(batch) / median, gflopPerSample: flops.inference / 1e9,
        gflops: flops.inference * Double(batch) / median / 1e9, medianStepSeconds: median,
        peakRSSMiB: peakRSSMiB(), workspaceMiB: Double(lanes.workspaceBytes) / 1_048_576,
        parameterMiB: Double(model.store.layout.totalCount * 4 * 4) / 1_048_576,
        activationMemory: ActivationMemory.inference.rawValue, objective: "none", threadMode: ThreadMode.batchSplit.rawValue,
        phaseSeconds: phases)
}
