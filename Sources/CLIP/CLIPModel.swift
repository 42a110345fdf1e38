// The CLIP model: both towers and the learnable logit scale over one flat parameter store, with
// OpenCLIP's parameter names, shapes and initialisation. Inference entry points (`embedImages`,
// `embedTexts`, `similarity`) need no training machinery.

import Compute
import Foundation
import Layers

/// OpenCLIP's image normalisation: pixels in [0, 1], then (x − mean)/std per channel.
public enum ImageNormalization {
    public static let mean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public static let std: [Double] = [0.26862954, 0.26130258, 0.27577711]

    /// Normalises (B, 3, S, S) pixels in place (divides by std, as OpenCLIP does).
    @inlinable
    public static func apply<T: Scalar>(_ pixels: UnsafeMutablePointer<T>, batch: Int, size: Int) {
        let plane = size * size
        for b in 0..<batch {
            for c in 0..<3 {
                let p = pixels + (b * 3 + c) * plane
                let m = T(mean[c]), s = T(std[c])
                for i in 0..<plane { p[i] = (p[i] - m) / s }
            }
        }
    }
}

public final class CLIPModel<T: Scalar>: @unchecked Sendable {
    public let config: CLIPConfiguration
    public let vision: VisionTower
    public let text: TextTower
    /// `logit_scale` = ln(1/τ), a scalar; clamped to [0, ln 100] after each step.
    public let logitScale: ParameterView
    public let store: ParameterStore<T>

    /// ln(1/0.07), OpenCLIP's initial logit scale.
    public static var initialLogitScale: Double { Foundation.log(1 / 0.07) }
    /// ln 100, the clamp's upper bound.
    public static var maximumLogitScale: Double { Foundation.log(100) }

    /// Builds the layout for `config` (parameters zero until `initialize` or a checkpoint load).
    public init(_ config: CLIPConfiguration) throws {
        try config.validate()
        self.config = config
        var layout = ParameterLayout()
        text = TextTower(config.text, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        logitScale = layout.add("logit_scale", shape: [])
        vision = VisionTower(config.vision, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        store = ParameterStore(layout: layout)
    }

    /// A replica of `model` that reads its parameter values (no copy) and accumulates gradients
    /// in a buffer of its own: one per extra thread of batch-split training, whose gradients are
    /// then summed into `model`'s. The towers are rebuilt from the same configuration, so their
    /// views are the same.
    public init(replicaOf model: CLIPModel<T>) throws {
        config = model.config
        var layout = ParameterLayout()
        text = TextTower(config.text, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        logitScale = layout.add("logit_scale", shape: [])
        vision = VisionTower(config.vision, embedDimension: config.embedDimension, gelu: config.gelu, layout: &layout)
        precondition(layout.views == model.store.layout.views, "CLIPModel(replicaOf:): the rebuilt layout differs from the model's")
        store = ParameterStore(sharingValuesOf: model.store)
    }

    /// OpenCLIP's initialisation, with every random draw keyed by (seed, parameter name).
    public func initialize(seed: UInt64) {
        vision.initialize(store, seed: seed)
        text.initialize(store, seed: seed)
        store.initialize(logitScale, .constant(Self.initialLogitScale), seed: seed)
    }

    /// Clamps `logit_scale` to [0, ln 100] (after every optimizer step, as OpenCLIP does).
    public func clampLogitScale() {
        let p = store.value(logitScale)
        p.pointee = min(max(p.pointee, 0), T(Self.maximumLogitScale))
    }

    /// The current temperature τ = exp(−logit_scale).
    public var temperature: Double { Foundation.exp(-Double(store.value(logitScale).pointee)) }

    /// Forward FLOPs of one image–text pair, counted like the OpenCLIP anchor (every matrix product).
    public var forwardFlopsPerSample: Double { vision.forwardFlopsPerSample() + text.forwardFlopsPerSample() }

    /// Everything one batch size needs: both towers' activations and the feature buffers.
    public struct Activations: @unchecked Sendable {
        public let batch: Int
        public let workspace: Workspace<T>
        public let vision: VisionTower.Buffers<T>
        public let text: TextTower.Buffers<T>
        public let imageFeatures: UnsafeMutablePointer<T>  // (B, E)
        public let textFeatures: UnsafeMutablePointer<T>  // (B, E)
    }

    /// Allocates the activations for batches of up to `batch` pairs; the workspace is sealed.
    /// `memory` trades speed for memory in training (`.recompute`), or drops everything the
    /// backward pass needs (`.inference`, for embedding and evaluation). `keptImagePatches`
    /// below the patch count makes them for an image mask that keeps that many patches per image
    /// (every `forward` then passes the kept indices).
    public func makeActivations(batch: Int, memory: ActivationMemory = .full, keptImagePatches: Int? = nil) -> Activations {
        let ws = Workspace<T>(memory: memory)
        let e = config.embedDimension
        let a = Activations(
            batch: batch, workspace: ws,
            vision: vision.makeBuffers(batch: batch, keptPatches: keptImagePatches, workspace: ws),
            text: text.makeBuffers(batch: batch, workspace: ws),
            imageFeatures: ws.allocate(batch * e, label: "features.image"),
            textFeatures: ws.allocate(batch * e, label: "features.text"))
        ws.seal()
        return a
    }

    /// Both towers forward on a full batch: images (B, 3, S, S) normalised, ids (B, T), and with
    /// masked activations the kept patch indices (B, K) of each image.
    /// Features land in `activations.imageFeatures` / `textFeatures` (unnormalised).
    @inlinable
    public func forward(images: UnsafePointer<T>, ids: UnsafePointer<Int32>, keptPatches: UnsafePointer<Int32>? = nil, activations a: Activations) {
        vision.forward(images: images, features: a.imageFeatures, batch: a.batch, buffers: a.vision, params: store, kept: keptPatches)
        text.forward(ids: ids, features: a.textFeatures, batch: a.batch, buffers: a.text, params: store)
    }

    /// Both towers backward from dL/d(image features) and dL/d(text features), (B, E) each;
    /// accumulates into `store.grads`.
    ///
    /// The text tower runs first. Its gradients, and `logit_scale`'s, are final once `textDone`
    /// runs: the parameters before `visionParameterOffset` in the flat buffer. A data-parallel
    /// trainer starts their all-reduce there and lets it progress in `afterBlock`, which runs
    /// after each vision block.
    @inlinable
    public func backward(
        dImageFeatures: UnsafePointer<T>, dTextFeatures: UnsafePointer<T>, activations a: Activations,
        textDone: (() -> Void)? = nil, afterBlock: (() -> Void)? = nil
    ) {
        if a.workspace.isForwardOnly { fatalError("CLIPModel.backward: these activations were made for inference (forward only)") }
        text.backward(dTextFeatures, buffers: a.text, params: store)
        textDone?()
        vision.backward(dImageFeatures, buffers: a.vision, params: store, afterBlock: afterBlock)
    }

    /// Whether either tower holds a mixture of experts.
    public var hasMixtures: Bool { config.vision.experts != nil || config.text.experts != nil }

    /// Σ over every mixture block of both towers of its weighted auxiliary loss in the last
    /// forward pass on `a` (w_lb·L_lb + w_z·L_z + …; 0 for a dense model). The gradient of this sum
    /// is already in the blocks' backward; a trainer reports the value beside the objective's loss.
    public func auxiliaryLoss(_ a: Activations) -> Double {
        vision.transformer.auxiliaryLoss(a.vision.transformer) + text.transformer.auxiliaryLoss(a.text.transformer)
    }

    /// Scales every mixture block's auxiliary losses in `a` by `scale`: 1/G when a step routes its
    /// batch as G groups (G = batch-split threads × ranks), so their sum is the groups' mean.
    public func setAuxiliaryScale(_ scale: Double, activations a: Activations) {
        vision.transformer.setAuxiliaryScale(scale, buffers: a.vision.transformer)
        text.transformer.setAuxiliaryScale(scale, buffers: a.text.transformer)
    }

    /// Each mixture block's routing statistics of the last forward pass on `a`, named by its
    /// parameter prefix (`visual.transformer.resblocks.1.mlp`, `transformer.resblocks.1.mlp`).
    public func mixtureStatistics(_ a: Activations) -> [(name: String, statistics: MoEStatistics)] {
        vision.transformer.mixtureStatistics(a.vision.transformer).map { ("visual.transformer.resblocks.\($0.block).mlp", $0.statistics) }
            + text.transformer.mixtureStatistics(a.text.transformer).map { ("transformer.resblocks.\($0.block).mlp", $0.statistics) }
    }

    /// Where the vision tower's parameters start in the flat buffer: the text tower and
    /// `logit_scale` come before it.
    public var visionParameterOffset: Int {
        store.layout.views.filter { $0.name.hasPrefix("visual.") }.map(\.offset).min() ?? store.layout.totalCount
    }
}

// MARK: - Inference

extension CLIPModel {
    /// Image embeddings (count, E), L2-normalised when `normalize`, for `count` normalised images
    /// (count, 3, S, S), computed in chunks of `activations.batch`.
    @inlinable
    public func embedImages(_ images: UnsafePointer<T>, count: Int, activations a: Activations, normalize: Bool = true) -> [T] {
        let s = config.vision.imageSize
        return embedInChunks(count: count, chunk: a.batch, normalize: normalize) { start, n in
            vision.forward(images: images + start * 3 * s * s, features: a.imageFeatures, batch: n, buffers: a.vision, params: store)
            return UnsafePointer(a.imageFeatures)
        }
    }

    /// Text embeddings (count, E) for `count` token rows (count, T), in chunks of `activations.batch`.
    @inlinable
    public func embedTexts(_ ids: UnsafePointer<Int32>, count: Int, activations a: Activations, normalize: Bool = true) -> [T] {
        let t = config.text.contextLength
        return embedInChunks(count: count, chunk: a.batch, normalize: normalize) { start, n in
            text.forward(ids: ids + start * t, features: a.textFeatures, batch: n, buffers: a.text, params: store)
            return UnsafePointer(a.textFeatures)
        }
    }

    /// Runs `forward(start, n)` over chunks of at most `chunk` rows and gathers its (n, E) outputs.
    @inlinable
    public func embedInChunks(count: Int, chunk: Int, normalize: Bool, _ forward: (Int, Int) -> UnsafePointer<T>) -> [T] {
        let e = config.embedDimension
        var out = [T](repeating: 0, count: count * e)
        var start = 0
        while start < count {
            let n = min(chunk, count - start)
            let features = forward(start, n)
            out.withUnsafeMutableBufferPointer { dst in (dst.baseAddress! + start * e).update(from: features, count: n * e) }
            start += n
        }
        if normalize { Self.normalizeRows(&out, width: e) }
        return out
    }

    /// Scaled cosine similarities exp(logit_scale)·u·vᵀ, (images, texts), from normalised embeddings.
    @inlinable
    public func similarity(imageEmbeddings u: [T], textEmbeddings v: [T]) -> [T] {
        let e = config.embedDimension, ni = u.count / e, nt = v.count / e
        var out = [T](repeating: 0, count: ni * nt)
        let scale = T(Foundation.exp(Double(store.value(logitScale).pointee)))
        gemm(transB: true, m: ni, n: nt, k: e, alpha: scale, a: u, lda: e, b: v, ldb: e, c: &out, ldc: nt)
        return out
    }

    /// L2-normalises each row of `x` (rows, width) in place.
    @inlinable
    public static func normalizeRows(_ x: inout [T], width: Int) {
        let rows = x.count / width
        x.withUnsafeMutableBufferPointer { p in
            let norms = [T](repeating: 0, count: rows)
            norms.withUnsafeBufferPointer { n in
                let np = UnsafeMutablePointer(mutating: n.baseAddress!)
                l2NormalizeForward(p.baseAddress!, p.baseAddress!, norms: np, rows: rows, cols: width)
            }
        }
    }
}
