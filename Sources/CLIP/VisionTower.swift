// The vision tower, laid out as OpenCLIP's `VisionTransformer`:
//   patches = conv1(image)                       (B, P, W)
//   x = [class_embedding; patches] + positional  (B, T = P + 1, W)
//   x = ln_pre(x); x = resblocks(x)
//   features = ln_post(x[:, 0]) · proj          (B, E)

import Compute
import Layers

public struct VisionTower: Sendable {
    public let config: VisionConfiguration
    public let embedDimension: Int
    public let patch: PatchEmbedding  // visual.conv1.weight (W, 3, p, p)
    public let classEmbedding: ParameterView  // visual.class_embedding (W)
    public let positional: PositionalEmbedding  // visual.positional_embedding (T, W)
    public let lnPre: LayerNorm  // visual.ln_pre
    public let transformer: Transformer  // visual.transformer.resblocks.N
    public let lnPost: LayerNorm  // visual.ln_post
    public let projection: ParameterView  // visual.proj (W, E), applied as x·proj

    public init(_ config: VisionConfiguration, embedDimension: Int, gelu: GELUApproximation, layout: inout ParameterLayout) {
        self.config = config
        self.embedDimension = embedDimension
        let w = config.width
        classEmbedding = layout.add("visual.class_embedding", shape: [w])
        positional = PositionalEmbedding("visual.positional_embedding", tokens: config.tokens, width: w, layout: &layout)
        projection = layout.add("visual.proj", shape: [w, embedDimension])
        patch = PatchEmbedding("visual.conv1.weight", imageSize: config.imageSize, patchSize: config.patchSize, width: w, layout: &layout)
        lnPre = LayerNorm("visual.ln_pre", width: w, layout: &layout)
        transformer = Transformer(
            "visual.transformer", width: w, layers: config.layers, heads: config.heads, causal: false,
            mlpRatio: config.mlpRatio, approximation: gelu, layout: &layout)
        lnPost = LayerNorm("visual.ln_post", width: w, layout: &layout)
    }

    /// OpenCLIP's initialisation of `VisionTransformer`: class and positional embeddings and the
    /// projection are scale·N(0, 1) with scale = W^−½; conv1 and every block keep PyTorch's
    /// defaults (OpenCLIP defines no other init for the vision tower).
    public func initialize<T>(_ store: ParameterStore<T>, seed: UInt64) {
        let scale = 1 / Double(config.width).squareRoot()
        store.initialize(classEmbedding, .normal(std: scale), seed: seed)
        store.initialize(positional.weight, .normal(std: scale), seed: seed)
        store.initialize(projection, .normal(std: scale), seed: seed)
        patch.initializeDefault(store, seed: seed)
        lnPre.initializeDefault(store)
        transformer.initializeDefault(store, seed: seed)
        lnPost.initializeDefault(store)
    }

    /// Activations and scratch for a batch of B images.
    public struct Buffers<T: Scalar> {
        public let batch: Int
        public let columns: UnsafeMutablePointer<T>  // (B·P, 3·p·p)
        public let patchOut: UnsafeMutablePointer<T>  // (B·P, W)
        public let tokens: UnsafeMutablePointer<T>  // (B·T, W) embeddings + positional
        public let lnPreOut: UnsafeMutablePointer<T>  // (B·T, W)
        public let lnPreCache: LayerNorm.Cache<T>
        public let transformer: Transformer.Buffers<T>
        public let pooled: UnsafeMutablePointer<T>  // (B, W) class-token rows
        public let pooledLN: UnsafeMutablePointer<T>  // (B, W)
        public let lnPostCache: LayerNorm.Cache<T>
        public let dPooled: UnsafeMutablePointer<T>  // (B, W) scratch
        public let dPooledLN: UnsafeMutablePointer<T>  // (B, W) scratch
        public let dTokens: UnsafeMutablePointer<T>  // (B·T, W) scratch
        public let dPatch: UnsafeMutablePointer<T>  // (B·P, W) scratch
    }

    public func makeBuffers<T>(batch: Int, workspace: Workspace<T>) -> Buffers<T> {
        let w = config.width, t = config.tokens, rows = batch * t
        return Buffers(
            batch: batch,
            columns: patch.makeColumns(batch: batch, workspace: workspace, label: "visual.patch"),
            patchOut: workspace.allocate(batch * patch.patches * w, label: "visual.patch_out"),
            tokens: workspace.allocate(rows * w, label: "visual.tokens"),
            lnPreOut: workspace.allocate(rows * w, label: "visual.ln_pre"),
            lnPreCache: lnPre.makeCache(rows: rows, workspace: workspace, label: "visual.ln_pre"),
            transformer: transformer.makeBuffers(batch: batch, tokens: t, workspace: workspace, label: "visual"),
            pooled: workspace.allocate(batch * w, label: "visual.pooled"),
            pooledLN: workspace.allocate(batch * w, label: "visual.ln_post"),
            lnPostCache: lnPost.makeCache(rows: batch, workspace: workspace, label: "visual.ln_post"),
            dPooled: workspace.allocateGradient(batch * w, label: "scratch.visual.dpooled"),
            dPooledLN: workspace.allocateGradient(batch * w, label: "scratch.visual.dpooled_ln"),
            dTokens: workspace.allocateGradient(rows * w, label: "scratch.visual.dtokens"),
            dPatch: workspace.allocateGradient(batch * patch.patches * w, label: "scratch.visual.dpatch"))
    }

    /// - images: (B, 3, S, S) normalised pixels; features: (B, E) output, overwritten.
    /// `batch` may be smaller than the buffers' batch (the last, partial chunk of an inference run).
    @inlinable
    public func forward<T: Scalar>(
        images: UnsafePointer<T>, features: UnsafeMutablePointer<T>, batch: Int, buffers: Buffers<T>, params: ParameterStore<T>
    ) {
        precondition(batch <= buffers.batch, "VisionTower: batch \(batch) exceeds the buffers' \(buffers.batch)")
        let w = config.width, t = config.tokens, np = patch.patches, rows = batch * t
        let prof = Profiler.shared
        prof.measure(.embedding) {
            patch.forward(images: images, columns: buffers.columns, buffers.patchOut, batch: batch, params: params)
        }
        // Assemble [class; patches] per image.
        let cls = params.value(classEmbedding)
        for b in 0..<batch {
            let dst = buffers.tokens + b * t * w
            dst.update(from: cls, count: w)
            (dst + w).update(from: buffers.patchOut + b * np * w, count: np * w)
        }
        positional.forward(buffers.tokens, batch: batch, params: params)
        prof.measure(.layerNorm) { lnPre.forward(buffers.tokens, buffers.lnPreOut, rows: rows, cache: buffers.lnPreCache, params: params) }
        let x = transformer.forward(buffers.lnPreOut, batch: batch, buffers: buffers.transformer, params: params)
        for b in 0..<batch { (buffers.pooled + b * w).update(from: x + b * t * w, count: w) }
        lnPost.forward(buffers.pooled, buffers.pooledLN, rows: batch, cache: buffers.lnPostCache, params: params)
        gemm(m: batch, n: embedDimension, k: w, a: buffers.pooledLN, lda: w, b: params.value(projection), ldb: embedDimension,
             beta: 0, c: features, ldc: embedDimension)
    }

    /// Accumulates every parameter gradient of the tower from dL/dfeatures (B, E). Needs the
    /// buffers of the forward pass with the full batch.
    @inlinable
    public func backward<T: Scalar>(_ dFeatures: UnsafePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>, afterBlock: (() -> Void)? = nil) {
        let batch = buffers.batch, w = config.width, t = config.tokens, np = patch.patches, rows = batch * t
        let e = embedDimension
        // features = pooledLN · proj
        gemm(transA: true, m: w, n: e, k: batch, a: buffers.pooledLN, lda: w, b: dFeatures, ldb: e,
             beta: 1, c: params.grad(projection), ldc: e)
        gemm(transB: true, m: batch, n: w, k: e, a: dFeatures, lda: e, b: params.value(projection), ldb: e,
             beta: 0, c: buffers.dPooledLN, ldc: w)
        buffers.dPooled.update(repeating: 0, count: batch * w)
        lnPost.backward(buffers.dPooledLN, x: buffers.pooled, dx: buffers.dPooled, rows: batch, cache: buffers.lnPostCache, params: params)
        // Only the class-token rows of the last hidden state receive gradient.
        let dOut = buffers.transformer.zeroedOutputGradient()
        for b in 0..<batch { (dOut + b * t * w).update(from: buffers.dPooled + b * w, count: w) }
        let dy = transformer.backward(input: buffers.lnPreOut, buffers: buffers.transformer, params: params, afterBlock: afterBlock)
        let dx = buffers.dTokens
        dx.update(repeating: 0, count: rows * w)
        Profiler.shared.measure(.layerNorm) {
            lnPre.backward(dy, x: buffers.tokens, dx: dx, rows: rows, cache: buffers.lnPreCache, params: params)
        }
        positional.backward(dx, batch: batch, params: params)
        let dcls = params.grad(classEmbedding)
        for b in 0..<batch {
            let src = dx + b * t * w
            for j in 0..<w { dcls[j] += src[j] }
            (buffers.dPatch + b * np * w).update(from: src + w, count: np * w)
        }
        Profiler.shared.measure(.embedding) { patch.backward(buffers.dPatch, columns: buffers.columns, batch: batch, params: params) }
    }

    /// Forward FLOPs per image as the OpenCLIP anchor counts them (every matrix product).
    public func forwardFlopsPerSample() -> Double {
        transformer.forwardFlops(batch: 1, tokens: config.tokens)
            + patch.forwardFlops(batch: 1) + gemmFlops(m: 1, n: embedDimension, k: config.width)
    }
}
