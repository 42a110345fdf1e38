// Held-out evaluation on the shapes world's tasks: zero-shot top-1 of shape, colour, count and
// position with prompt ensembles, and image↔text retrieval R@1/5/10 both ways.
//
// What does not change between evaluations of one run (the held-out scenes and labels, the
// prompts' and retrieval captions' token ids) is prepared once; each evaluation renders the
// scenes and runs both towers forward. The forward passes run either in one set of buffers with
// every product threaded, or, when the trainer splits its batch, one contiguous part per shard on
// the shards' threads, in the shards' own buffers.

import CLIP
import Collective
import Compute
import Data
import Foundation
import Layers

/// Held-out evaluation of a model on the shapes world's tasks.
public final class Evaluator {
    public let model: CLIPModel<Float>
    public let world: ShapesWorld
    public let examplesPerClass: Int
    public let retrievalCount: Int

    /// One zero-shot task with its prompts tokenised.
    struct PreparedTask {
        let task: ZeroShotTask
        let promptIDs: [Int32]  // (classes · prompts per class, T), class-major
    }
    let tasks: [PreparedTask]
    let retrievalScenes: [Scene]
    let retrievalIDs: [Int32]  // (retrievalCount, T)

    /// Where the forward passes run.
    public enum Buffers {
        /// One set of activations, chunks of `batch`; every product uses the thread budget.
        case single(CLIPModel<Float>.Activations)
        /// One contiguous part per lane, each on its own thread: the shards of a batch-split
        /// trainer, or `InferenceLanes`.
        case lanes(any EmbeddingLanes)
    }

    /// Prepares the tasks of `world`: `examplesPerClass` held-out scenes per class, `retrievalCount`
    /// retrieval pairs, and the token ids of every prompt and caption (tokenised once here).
    public init(model: CLIPModel<Float>, world: ShapesWorld, tokenizer: any Tokenizer, examplesPerClass: Int, retrievalCount: Int) {
        self.model = model
        self.world = world
        self.examplesPerClass = examplesPerClass
        self.retrievalCount = retrievalCount
        let ctx = model.config.text.contextLength
        func tokenize(_ texts: [String]) -> [Int32] { texts.flatMap { tokenizer.tokenize($0, contextLength: ctx) } }
        tasks = world.zeroShotTasks(examplesPerClass: examplesPerClass).map { task in
            PreparedTask(task: task, promptIDs: tokenize(task.classNames.indices.flatMap { task.prompts(for: $0) }))
        }
        let set = world.retrievalSet(count: retrievalCount)
        retrievalScenes = set.map(\.scene)
        retrievalIDs = tokenize(set.map(\.caption))
    }

    /// Zero-shot top-1 per task, retrieval R@1/5/10 both ways, and their mean (`eval_mean`).
    public func run(in buffers: Buffers) throws -> [String: Double] {
        let e = model.config.embedDimension
        var out: [String: Double] = [:]
        for prepared in tasks {
            let task = prepared.task
            let textEmb = try embedTexts(prepared.promptIDs, in: buffers).map(Double.init)
            let w = EvaluationMetrics.classifier(templateEmbeddings: textEmb, classes: task.classNames.count, templates: task.promptsPerClass, dimension: e)
            let imgEmb = try embedScenes(task.scenes, in: buffers).map(Double.init)
            out["zeroshot_\(task.name)_top1"] = EvaluationMetrics.zeroShotTop1(imageEmbeddings: imgEmb, classifier: w, labels: task.labels, dimension: e)
        }
        let u = try embedScenes(retrievalScenes, in: buffers).map(Double.init)
        let v = try embedTexts(retrievalIDs, in: buffers).map(Double.init)
        let r = EvaluationMetrics.retrievalRecall(imageEmbeddings: u, textEmbeddings: v, dimension: e, ks: [1, 5, 10])
        for (i, k) in [1, 5, 10].enumerated() {
            out["retrieval_i2t_r\(k)"] = r.imageToText[i]
            out["retrieval_t2i_r\(k)"] = r.textToImage[i]
        }
        let names = Trainer.evalMetricNames
        out["eval_mean"] = names.compactMap { out[$0] }.reduce(0, +) / Double(names.count)
        return out
    }

    /// Evaluates in new forward-only buffers for chunks of `batch` samples: one set threaded per
    /// product, or, where `ThreadMode.rule` picks batch-split for the thread budget, one set of
    /// `batch ÷ threads` per thread.
    public func run(batch: Int) throws -> [String: Double] {
        let t = Threads.count
        if ThreadMode.rule(threads: t, localBatch: batch, ranks: 1, forwardFlopsPerSample: model.forwardFlopsPerSample) == .batchSplit {
            return try run(in: .lanes(InferenceLanes(model: model, threads: t, batch: batch / t)))
        }
        return try run(in: .single(model.makeActivations(batch: batch, memory: .inference)))
    }

    /// Runs `embed(model, activations, range, pixels)` over contiguous parts of `0..<count` that
    /// cover it, and returns the (count, E) rows each part wrote through `write`. One part in the
    /// single buffers; one per shard, on the shards' threads, otherwise. `pixels` holds one chunk
    /// of images (the shard's input buffer, or a new one).
    func embedParts(
        count: Int, in buffers: Buffers,
        _ embed: @escaping @Sendable (CLIPModel<Float>, CLIPModel<Float>.Activations, Range<Int>, UnsafeMutablePointer<Float>) -> [Float]
    ) throws -> [Float] {
        let e = model.config.embedDimension
        var out = [Float](repeating: 0, count: count * e)
        try out.withUnsafeMutableBufferPointer { dst in
            let target = UncheckedSendable(dst.baseAddress!)
            /// Embeds `range` in chunks of the activations' batch and copies the rows out.
            @Sendable func part(_ m: CLIPModel<Float>, _ a: CLIPModel<Float>.Activations, _ range: Range<Int>, _ pixels: UnsafeMutablePointer<Float>) {
                var start = range.lowerBound
                while start < range.upperBound {
                    let n = min(a.batch, range.upperBound - start)
                    let rows = embed(m, a, start..<(start + n), pixels)
                    rows.withUnsafeBufferPointer { (target.value + start * e).update(from: $0.baseAddress!, count: n * e) }
                    start += n
                }
            }
            switch buffers {
            case .single(let a):
                let s = model.config.vision.imageSize
                let pixels = AlignedBuffer<Float>(count: a.batch * 3 * s * s)
                withExtendedLifetime(pixels) { part(model, a, 0..<count, pixels.pointer) }
            case .lanes(let lanes):
                let t = lanes.threads, per = (count + t - 1) / t
                try lanes.forEachLane { lane in
                    let lo = min(count, lane.index * per), hi = min(count, lo + per)
                    if lo < hi { part(lane.model, lane.activations, lo..<hi, lane.images) }
                }
            }
        }
        return out
    }

    /// L2-normalised text embeddings (n, E) of n token rows (n, T).
    public func embedTexts(_ ids: [Int32], in buffers: Buffers) throws -> [Float] {
        let ctx = model.config.text.contextLength
        return try embedParts(count: ids.count / ctx, in: buffers) { m, a, range, _ in
            ids.withUnsafeBufferPointer { m.embedTexts($0.baseAddress! + range.lowerBound * ctx, count: range.count, activations: a) }
        }
    }

    /// L2-normalised image embeddings (n, E) of n scenes, rendered and normalised chunk by chunk.
    public func embedScenes(_ scenes: [Scene], in buffers: Buffers) throws -> [Float] {
        let s = model.config.vision.imageSize, plane = 3 * s * s
        let w = world
        return try embedParts(count: scenes.count, in: buffers) { m, a, range, pixels in
            let base = UncheckedSendable(pixels)
            Threads.parallelFor(range.count, grain: 8) { r in
                for i in r { w.render(scenes[range.lowerBound + i], size: s, into: base.value + i * plane) }
            }
            ImageNormalization.apply(pixels, batch: range.count, size: s)
            return m.embedImages(pixels, count: range.count, activations: a)
        }
    }
}
