// Batch-split threading: with T threads, a step's batch is cut into T contiguous shards and each
// shard runs on a thread of its own through the whole step (its images and tokens, both towers
// forward, the objective, both towers backward) with single-threaded BLAS and element-wise
// kernels. The objective is computed as T ranks would compute it under MPI (`DistributedObjective`
// over a `LocalGroup`: features and per-sample scalars gathered through shared memory), and the
// shards' parameter gradients are summed into the model's flat buffer. The mathematics is that of
// T data-parallel ranks, so the results equal one thread's to rounding.
//
// Why: the other way to use T threads ("gemm": every matrix product and element-wise kernel split
// T ways) hands work between threads hundreds of times per step, and tiny's and small's products
// are too small to keep two cores busy that way. Shards synchronise three times per step.

import CLIP
import Collective
import Compute
import Foundation
import Layers
import Objectives

/// How a training step uses its threads (`clip train --thread-mode`).
public enum ThreadMode: String, Codable, Sendable, CaseIterable {
    /// `batchSplit` where `ThreadMode.rule` says it pays, else `gemm`.
    case auto
    /// One batch; every matrix product (OpenBLAS's threads) and element-wise kernel split over the threads.
    case gemm
    /// T shards of the batch, one per thread, each through the whole model single-threaded.
    case batchSplit = "batch-split"

    /// Fewest samples per shard for which `auto` splits the batch.
    public static let minimumShardBatch = 16

    /// Fewest forward FLOPs per sample (both towers, counted like the OpenCLIP anchor) for which
    /// `auto` splits the batch. Each shard computes its rows of the objective against the whole
    /// batch and waits for the others three times a step; that costs about as much as nano's
    /// whole model (1.0 MFLOP per sample forward: batch-split 6.1–7.6k samples/s against gemm's
    /// 7.6–9.6k at batch 256 on 2 AVX2 cores), and little beside tiny's (164 MFLOP: 234–240
    /// against 206–218, +10%) or small's (952 MFLOP: 50.7 against 41.7–45.7, +11–22%). The
    /// threshold sits between nano and tiny (docs/performance.md).
    public static let minimumForwardFlopsPerSample = 10e6

    /// The mode `auto` resolves to: `batchSplit` when there are ≥ 2 threads in a single process,
    /// the batch splits into equal shards of at least `minimumShardBatch` samples and the model
    /// costs at least `minimumForwardFlopsPerSample`; else `gemm`. Under MPI each rank keeps
    /// `gemm` (its threads are the cores ÷ ranks, usually 1).
    public static func rule(threads: Int, localBatch: Int, ranks: Int, forwardFlopsPerSample: Double) -> ThreadMode {
        guard threads >= 2, ranks == 1, localBatch % threads == 0, localBatch / threads >= minimumShardBatch,
              forwardFlopsPerSample >= minimumForwardFlopsPerSample
        else { return .gemm }
        return .batchSplit
    }

    /// This mode resolved for a run (never `.auto`); throws naming `--thread-mode` when
    /// `batch-split` was asked for where it cannot run.
    public func resolved(threads: Int, localBatch: Int, ranks: Int, forwardFlopsPerSample: Double) throws -> ThreadMode {
        switch self {
        case .auto: return Self.rule(threads: threads, localBatch: localBatch, ranks: ranks, forwardFlopsPerSample: forwardFlopsPerSample)
        case .gemm: return .gemm
        case .batchSplit:
            guard ranks == 1 else {
                throw TrainingError.invalid(option: "--thread-mode", reason: "batch-split runs in a single process; under MPI each rank uses gemm threading (got \(ranks) ranks)")
            }
            guard localBatch % threads == 0, localBatch / threads >= 1 else {
                throw TrainingError.invalid(option: "--thread-mode", reason: "batch-split needs the batch (\(localBatch)) to split evenly over \(threads) threads")
            }
            return threads == 1 ? .gemm : .batchSplit
        }
    }
}

/// The batch-split step of one model: T shards, each with its own activations, inputs, feature
/// gradients and share of the objective; shard 0 runs on the model itself, the others on
/// replicas that read the same parameter values and keep their own gradients.
public final class BatchSplitStep: EmbeddingLanes, @unchecked Sendable {
    /// One shard's model, buffers and objective.
    public final class Shard: @unchecked Sendable {
        public let index: Int
        public let model: CLIPModel<Float>
        public let activations: CLIPModel<Float>.Activations
        public let objective: DistributedObjective<Float>
        /// Where `fill` puts the shard's inputs: (b, 3, S, S) normalised images and (b, T) token ids.
        public let images: AlignedBuffer<Float>
        public let tokenIDs: AlignedBuffer<Int32>
        /// (b, K) the kept patches of each image, when the step masks images.
        public let keptPatches: AlignedBuffer<Int32>?
        let dImage: AlignedBuffer<Float>  // (b, E)
        let dText: AlignedBuffer<Float>  // (b, E)
        var statistics = ObjectiveStepStatistics()

        init(
            index: Int, model: CLIPModel<Float>, batch: Int, memory: ActivationMemory, objective: DistributedObjective<Float>,
            keptImagePatches: Int?
        ) {
            self.index = index
            self.model = model
            self.objective = objective
            activations = model.makeActivations(batch: batch, memory: memory, keptImagePatches: keptImagePatches)
            keptPatches = keptImagePatches.map { AlignedBuffer(count: batch * $0) }
            let c = model.config, e = c.embedDimension, s = c.vision.imageSize
            images = AlignedBuffer(count: batch * 3 * s * s)
            tokenIDs = AlignedBuffer(count: batch * c.text.contextLength)
            dImage = AlignedBuffer(count: batch * e)
            dText = AlignedBuffer(count: batch * e)
        }
    }

    public let threads: Int
    /// Samples per shard: the step's batch ÷ threads.
    public let shardBatch: Int
    public let shards: [Shard]
    let group: LocalGroup
    /// The group's communicators in rank order (held by the shards' objectives).
    let communicators: [LocalGroupCommunicator]
    /// Seconds shard 0 spent in the last step's `fill` (loading its inputs).
    public private(set) var lastFillSeconds = 0.0

    /// - model: the model whose gradients receive the sum (shard 0 runs on it);
    /// - batch: samples per step, split into `threads` equal shards;
    /// - objective, reduction, datasetCount, epochs, adam: as for `DistributedObjective`;
    /// - keptImagePatches: the patches an image mask keeps (nil: no mask).
    public init(
        model: CLIPModel<Float>, threads: Int, batch: Int, memory: ActivationMemory, objective: ObjectiveConfiguration,
        reduction: GradientReduction, datasetCount: Int, epochs: Int, adam: AdamHyperparameters, keptImagePatches: Int? = nil
    ) throws {
        precondition(threads >= 2 && batch % threads == 0, "BatchSplitStep: \(batch) samples do not split over \(threads) threads")
        self.threads = threads
        shardBatch = batch / threads
        group = LocalGroup(size: threads)
        let comms = group.communicators()
        communicators = comms
        var shards: [Shard] = []
        for t in 0..<threads {
            let m = t == 0 ? model : try CLIPModel<Float>(replicaOf: model)
            let o = try DistributedObjective<Float>(
                objective, reduction: reduction, communicator: comms[t], globalBatch: batch, dimension: model.config.embedDimension,
                datasetCount: datasetCount, epochs: epochs, adam: adam)
            shards.append(Shard(index: t, model: m, batch: batch / threads, memory: memory, objective: o, keptImagePatches: keptImagePatches))
        }
        self.shards = shards
    }

    /// The model (shard 0's).
    public var model: CLIPModel<Float> { shards[0].model }

    /// Bytes of activations over all shards.
    public var workspaceBytes: Int { shards.reduce(0) { $0 + $1.activations.workspace.totalBytes } }

    /// Makes every shard's per-sample tables equal to shard 0's (after a resume restored them).
    public func synchronizeSampleStates() {
        guard let first = shards[0].objective.state else { return }
        for s in shards.dropFirst() { s.objective.state?.copy(from: first) }
    }

    /// Runs `body(lane)` for every shard at once, each on its shard's thread (shard 0 on the
    /// calling thread) in the shard's buffers, with the process's thread budget 1 meanwhile;
    /// rethrows the first error.
    public func forEachLane(_ body: @escaping @Sendable (EmbeddingLane) throws -> Void) throws {
        let shards = self.shards
        try Threads.withBudget(1) {
            try group.run(communicators: communicators, rootOnCallingThread: true) { t, _ in
                let s = shards[t]
                try body(EmbeddingLane(index: t, model: s.model, activations: s.activations, images: s.images.pointer))
            }
        }
    }

    /// One step's forward, objective and backward over `ids` (the batch's global sample ids, in
    /// order; shard t takes positions t·b ..< (t+1)·b). `fill(shard, ids)` writes the shard's
    /// normalised images and token ids into `shard.images` / `shard.tokenIDs` (and with a mask the
    /// kept patches into `shard.keptPatches`); it runs on the
    /// shard's thread. On return the model's gradients hold the sum over shards of the parameter
    /// gradients (zeroed first), without the logit scale's objective gradient, which the result's
    /// `logitScaleGradient` gives (global, to be added once). Statistics are global.
    ///
    /// The process's thread budget is 1 while the shards run (so kernels and OpenBLAS stay on
    /// the shard's thread) and `threads` again afterwards.
    public func step(
        ids: ArraySlice<Int>, epoch: Int, fill: @escaping @Sendable (Shard, ArraySlice<Int>) throws -> Void
    ) throws -> ObjectiveStepStatistics {
        precondition(ids.count == shardBatch * threads, "BatchSplitStep: \(ids.count) ids for \(threads) shards of \(shardBatch)")
        let logitScale = model.store.value(model.logitScale).pointee
        let clock = ShardClock()
        try Threads.withBudget(1) { try runShards(ids: ids, epoch: epoch, logitScale: logitScale, clock: clock, fill: fill) }
        lastFillSeconds = clock.fill
        return shards[0].statistics
    }

    /// The shards' part of `step`, on their threads.
    private func runShards(
        ids: ArraySlice<Int>, epoch: Int, logitScale: Float, clock: ShardClock, fill: @escaping @Sendable (Shard, ArraySlice<Int>) throws -> Void
    ) throws {
        let shards = self.shards, b = shardBatch, count = model.store.grads.count, threads = self.threads
        // Each thread sums a contiguous slice of the flat gradient buffer, cut at 16-element bounds.
        let slice = (count / threads + 15) / 16 * 16
        try group.run(communicators: communicators, rootOnCallingThread: true) { t, comm in
            let shard = shards[t]
            let first = ids.startIndex + t * b
            let mine = ids[first..<(first + b)]
            let m = shard.model, a = shard.activations
            m.store.zeroGrads()
            let filling = ContinuousClock.now
            try fill(shard, mine)
            if t == 0 { clock.fill = elapsedSeconds(since: filling) }
            m.forward(images: shard.images.pointer, ids: shard.tokenIDs.pointer, keptPatches: shard.keptPatches.map { UnsafePointer($0.pointer) }, activations: a)
            shard.statistics = try Profiler.shared.measure(.loss) {
                try shard.objective.step(
                    imageFeatures: a.imageFeatures, textFeatures: a.textFeatures, ids: mine, logitScale: logitScale, epoch: epoch,
                    dImageFeatures: shard.dImage.pointer, dTextFeatures: shard.dText.pointer)
            }
            m.backward(dImageFeatures: shard.dImage.pointer, dTextFeatures: shard.dText.pointer, activations: a)
            // Every shard's gradients are complete: thread t adds slice t of shards 1… into shard 0's.
            try comm.barrier()
            let lo = min(count, t * slice), hi = min(count, lo + slice)
            if lo < hi {
                Profiler.shared.measure(.communication) {
                    let target = shards[0].model.store.grads.pointer + lo
                    for other in shards.dropFirst() {
                        let source = other.model.store.grads.pointer + lo
                        for i in 0..<(hi - lo) { target[i] += source[i] }
                    }
                }
            }
        }
    }
}

/// Shard 0's loading time, written on its thread and read after the threads joined.
private final class ShardClock: @unchecked Sendable {
    var fill = 0.0
}

/// One thread's buffers for embedding: a model (replicas share the values), activations for
/// chunks of `activations.batch`, and room for that many images.
public struct EmbeddingLane: @unchecked Sendable {
    public let index: Int
    public let model: CLIPModel<Float>
    public let activations: CLIPModel<Float>.Activations
    public let images: UnsafeMutablePointer<Float>  // (activations.batch, 3, S, S)
}

/// Sets of buffers that embed on several threads at once, one contiguous part per lane: the
/// shards of a batch-split trainer, or forward-only `InferenceLanes`.
public protocol EmbeddingLanes: AnyObject, Sendable {
    var threads: Int { get }
    /// Runs `body` for every lane at once, each on a thread of its own, with the process's thread
    /// budget 1 meanwhile; rethrows the first error.
    func forEachLane(_ body: @escaping @Sendable (EmbeddingLane) throws -> Void) throws
}

/// Forward-only lanes for inference with batch-split threads: T sets of inference buffers of
/// one model, one per thread (the model's values are only read).
public final class InferenceLanes: EmbeddingLanes, @unchecked Sendable {
    public let threads: Int
    let lanes: [EmbeddingLane]
    let images: [AlignedBuffer<Float>]
    let group: LocalGroup

    /// `threads` lanes of `batch` samples each.
    public init(model: CLIPModel<Float>, threads: Int, batch: Int) {
        precondition(threads >= 1 && batch >= 1, "InferenceLanes: \(threads) threads of \(batch)")
        self.threads = threads
        let s = model.config.vision.imageSize
        let pixels = (0..<threads).map { _ in AlignedBuffer<Float>(count: batch * 3 * s * s) }
        images = pixels
        lanes = (0..<threads).map { t in
            EmbeddingLane(index: t, model: model, activations: model.makeActivations(batch: batch, memory: .inference), images: pixels[t].pointer)
        }
        group = LocalGroup(size: threads)
    }

    /// Bytes of activations over all lanes.
    public var workspaceBytes: Int { lanes.reduce(0) { $0 + $1.activations.workspace.totalBytes } }

    public func forEachLane(_ body: @escaping @Sendable (EmbeddingLane) throws -> Void) throws {
        let lanes = self.lanes
        try Threads.withBudget(1) { try group.run(rootOnCallingThread: true) { t, _ in try body(lanes[t]) } }
    }
}
