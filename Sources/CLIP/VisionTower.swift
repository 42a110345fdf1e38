// The vision tower, laid out as OpenCLIP's `VisionTransformer`:
//   patches = conv1(image)                       (B, P, W)
//   x = [class_embedding; patches] + positional  (B, T = P + 1, W)
//   x = x[:, [0] + 1 + kept]                     (B, T′ = K + 1, W)  only when masking (CLIPA, FLIP)
//   x = ln_pre(x); x = resblocks(x)
//   features = ln_post(pool(x)) · proj           (B, E)
//
// pool takes the class token (OpenCLIP's default) or averages over tokens (CLIPA's GAP). With a
// mask, only the kept patches are unfolded and embedded, so dropped tokens cost nothing.

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
        positional = PositionalEmbedding(
            "visual.positional_embedding", tokens: config.tokens, width: w, decay: config.positional == .learned ? nil : false,
            layout: &layout)
        projection = layout.add("visual.proj", shape: [w, embedDimension])
        patch = PatchEmbedding("visual.conv1.weight", imageSize: config.imageSize, patchSize: config.patchSize, width: w, layout: &layout)
        lnPre = LayerNorm("visual.ln_pre", width: w, layout: &layout)
        transformer = Transformer(
            "visual.transformer", width: w, layers: config.layers, heads: config.heads, causal: false,
            mlpRatio: config.mlpRatio, approximation: gelu, experts: config.experts, layout: &layout)
        lnPost = LayerNorm("visual.ln_post", width: w, layout: &layout)
    }

    /// OpenCLIP's initialisation of `VisionTransformer`: class and positional embeddings and the
    /// projection are scale·N(0, 1) with scale = W^−½; conv1 and every block keep PyTorch's
    /// defaults (OpenCLIP defines no other init for the vision tower).
    public func initialize<T>(_ store: ParameterStore<T>, seed: UInt64) {
        let scale = 1 / Double(config.width).squareRoot()
        store.initialize(classEmbedding, .normal(std: scale), seed: seed)
        switch config.positional {
        case .learned: store.initialize(positional.weight, .normal(std: scale), seed: seed)
        case .sinCos2D: writeSinCosTable(store)
        }
        store.initialize(projection, .normal(std: scale), seed: seed)
        patch.initializeDefault(store, seed: seed)
        lnPre.initializeDefault(store)
        transformer.initializeDefault(store, seed: seed)
        lnPost.initializeDefault(store)
    }

    /// Fills the positional parameter with the fixed 2-D sine–cosine code of the patch grid, a
    /// zero row for the class token (CLIPA's JAX tower). The table takes no gradient.
    public func writeSinCosTable<T>(_ store: ParameterStore<T>) {
        let table = PositionalTables.sinCos2D(grid: config.grid, width: config.width)
        let p = store.value(positional.weight), w = config.width
        for j in 0..<w { p[j] = 0 }
        for i in 0..<table.count { p[w + i] = T(table[i]) }
    }

    /// Activations and scratch for a batch of B images, of which the encoder sees K patches each
    /// (K = P without a mask) and T′ = K + 1 tokens.
    public struct Buffers<T: Scalar> {
        public let batch: Int
        public let keptPatches: Int  // K
        public let kept: AlignedBuffer<Int32>?  // (B, K) kept patch indices of the last forward, when masking
        public let columns: UnsafeMutablePointer<T>  // (B·K, 3·p·p)
        public let patchOut: UnsafeMutablePointer<T>  // (B·K, W)
        public let tokens: UnsafeMutablePointer<T>  // (B·T′, W) embeddings + positional
        public let lnPreOut: UnsafeMutablePointer<T>  // (B·T′, W)
        public let lnPreCache: LayerNorm.Cache<T>
        public let transformer: Transformer.Buffers<T>
        public let pooled: UnsafeMutablePointer<T>  // (B, W) class-token rows or token means
        public let pooledLN: UnsafeMutablePointer<T>  // (B, W)
        public let lnPostCache: LayerNorm.Cache<T>
        public let dPooled: UnsafeMutablePointer<T>  // (B, W) scratch
        public let dPooledLN: UnsafeMutablePointer<T>  // (B, W) scratch
        public let dTokens: UnsafeMutablePointer<T>  // (B·T′, W) scratch
        public let dPatch: UnsafeMutablePointer<T>  // (B·K, W) scratch

        /// Tokens per image the encoder sees: the kept patches and the class token.
        public var sequence: Int { keptPatches + 1 }
    }

    /// Buffers for batches of up to `batch` images; `keptPatches` below the grid's P makes them
    /// for a mask that keeps that many patches per image (every forward then passes `kept`).
    public func makeBuffers<T>(batch: Int, keptPatches: Int? = nil, workspace: Workspace<T>) -> Buffers<T> {
        let k = keptPatches ?? patch.patches
        precondition(k >= 1 && k <= patch.patches, "VisionTower: keptPatches \(k) outside 1...\(patch.patches)")
        let w = config.width, t = k + 1, rows = batch * t
        return Buffers(
            batch: batch, keptPatches: k, kept: k < patch.patches ? AlignedBuffer(count: batch * k) : nil,
            columns: patch.makeColumns(batch: batch, keptPatches: k, workspace: workspace, label: "visual.patch"),
            patchOut: workspace.allocate(batch * k * w, label: "visual.patch_out"),
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
            dPatch: workspace.allocateGradient(batch * k * w, label: "scratch.visual.dpatch"))
    }

    /// - images: (B, 3, S, S) normalised pixels; features: (B, E) output, overwritten.
    /// - kept: (B, K) the patch indices each image keeps, when the buffers were made for a mask
    ///   (K < P); nil otherwise.
    /// `batch` may be smaller than the buffers' batch (the last, partial chunk of an inference run).
    @inlinable
    public func forward<T: Scalar>(
        images: UnsafePointer<T>, features: UnsafeMutablePointer<T>, batch: Int, buffers: Buffers<T>, params: ParameterStore<T>,
        kept: UnsafePointer<Int32>? = nil
    ) {
        precondition(batch <= buffers.batch, "VisionTower: batch \(batch) exceeds the buffers' \(buffers.batch)")
        let w = config.width, k = buffers.keptPatches, t = buffers.sequence, rows = batch * t
        if let store = buffers.kept {
            guard let kept else { preconditionFailure("VisionTower: buffers made for \(k) of \(patch.patches) patches need the kept indices") }
            store.pointer.update(from: kept, count: batch * k)
        } else {
            precondition(kept == nil, "VisionTower: kept indices given to buffers made for every patch")
        }
        let keptIndices = buffers.kept.map { UnsafePointer($0.pointer) }
        let prof = Profiler.shared
        prof.measure(.embedding) {
            patch.forward(images: images, columns: buffers.columns, buffers.patchOut, batch: batch, params: params, kept: keptIndices, keptPatches: k)
        }
        // Assemble [class; kept patches] + their positional rows per image.
        let cls = params.value(classEmbedding), pos = params.value(positional.weight)
        for b in 0..<batch {
            let dst = buffers.tokens + b * t * w
            for j in 0..<w { dst[j] = cls[j] + pos[j] }
            for i in 0..<k {
                let p = 1 + (keptIndices.map { Int($0[b * k + i]) } ?? i)
                let row = dst + (1 + i) * w, src = buffers.patchOut + (b * k + i) * w, pr = pos + p * w
                for j in 0..<w { row[j] = src[j] + pr[j] }
            }
        }
        prof.measure(.layerNorm) { lnPre.forward(buffers.tokens, buffers.lnPreOut, rows: rows, cache: buffers.lnPreCache, params: params) }
        let x = transformer.forward(buffers.lnPreOut, batch: batch, buffers: buffers.transformer, params: params)
        pool(x, into: buffers.pooled, batch: batch, sequence: t)
        lnPost.forward(buffers.pooled, buffers.pooledLN, rows: batch, cache: buffers.lnPostCache, params: params)
        gemm(m: batch, n: embedDimension, k: w, a: buffers.pooledLN, lda: w, b: params.value(projection), ldb: embedDimension,
             beta: 0, c: features, ldc: embedDimension)
    }

    /// The rows `config.pool` averages: the class token alone, the patches, or every token.
    @inlinable
    func pooledRows(sequence t: Int) -> Range<Int> {
        switch config.pool {
        case .classToken: return 0..<1
        case .average: return 1..<t
        case .averageWithClass: return 0..<t
        }
    }

    /// pooled[b] = mean of x[b, r] over `pooledRows`. x: (B, T′, W); pooled: (B, W).
    @inlinable
    func pool<T: Scalar>(_ x: UnsafePointer<T>, into pooled: UnsafeMutablePointer<T>, batch: Int, sequence t: Int) {
        let w = config.width, rows = pooledRows(sequence: t), scale = T(1) / T(rows.count)
        for b in 0..<batch {
            let dst = pooled + b * w
            dst.update(from: x + (b * t + rows.lowerBound) * w, count: w)
            if rows.count == 1 { continue }
            for r in rows.dropFirst() {
                let src = x + (b * t + r) * w
                for j in 0..<w { dst[j] += src[j] }
            }
            for j in 0..<w { dst[j] *= scale }
        }
    }

    /// Accumulates every parameter gradient of the tower from dL/dfeatures (B, E). Needs the
    /// buffers of the forward pass with the full batch.
    @inlinable
    public func backward<T: Scalar>(_ dFeatures: UnsafePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>, afterBlock: (() -> Void)? = nil) {
        let batch = buffers.batch, w = config.width, k = buffers.keptPatches, t = buffers.sequence, rows = batch * t
        let e = embedDimension
        // features = pooledLN · proj
        gemm(transA: true, m: w, n: e, k: batch, a: buffers.pooledLN, lda: w, b: dFeatures, ldb: e,
             beta: 1, c: params.grad(projection), ldc: e)
        gemm(transB: true, m: batch, n: w, k: e, a: dFeatures, lda: e, b: params.value(projection), ldb: e,
             beta: 0, c: buffers.dPooledLN, ldc: w)
        buffers.dPooled.update(repeating: 0, count: batch * w)
        lnPost.backward(buffers.dPooledLN, x: buffers.pooled, dx: buffers.dPooled, rows: batch, cache: buffers.lnPostCache, params: params)
        // Only the pooled rows of the last hidden state receive gradient, each 1/(rows pooled).
        let dOut = buffers.transformer.zeroedOutputGradient()
        let pooledRows = pooledRows(sequence: t), scale = T(1) / T(pooledRows.count)
        for b in 0..<batch {
            let src = buffers.dPooled + b * w
            for r in pooledRows {
                let dst = dOut + (b * t + r) * w
                if pooledRows.count == 1 { dst.update(from: src, count: w) } else { for j in 0..<w { dst[j] = src[j] * scale } }
            }
        }
        let dy = transformer.backward(input: buffers.lnPreOut, buffers: buffers.transformer, params: params, afterBlock: afterBlock)
        let dx = buffers.dTokens
        dx.update(repeating: 0, count: rows * w)
        Profiler.shared.measure(.layerNorm) {
            lnPre.backward(dy, x: buffers.tokens, dx: dx, rows: rows, cache: buffers.lnPreCache, params: params)
        }
        // Scatter to the class embedding, the positional rows of the kept patches (a learned
        // table only) and the patch embedding.
        let dcls = params.grad(classEmbedding), dpos = params.grad(positional.weight)
        let learned = config.positional == .learned
        let kept = buffers.kept.map { UnsafePointer($0.pointer) }
        for b in 0..<batch {
            let src = dx + b * t * w
            for j in 0..<w { dcls[j] += src[j] }
            if learned { for j in 0..<w { dpos[j] += src[j] } }
            for i in 0..<k {
                let row = src + (1 + i) * w
                if learned {
                    let p = 1 + (kept.map { Int($0[b * k + i]) } ?? i)
                    let d = dpos + p * w
                    for j in 0..<w { d[j] += row[j] }
                }
                (buffers.dPatch + (b * k + i) * w).update(from: row, count: w)
            }
        }
        Profiler.shared.measure(.embedding) {
            patch.backward(buffers.dPatch, columns: buffers.columns, batch: batch, params: params, keptPatches: k)
        }
    }

    /// Forward FLOPs per image as the OpenCLIP anchor counts them (every matrix product), for
    /// `keptPatches` patches per image (default: all).
    public func forwardFlopsPerSample(keptPatches: Int? = nil) -> Double {
        let k = keptPatches ?? patch.patches
        return transformer.forwardFlops(batch: 1, tokens: k + 1)
            + gemmFlops(m: k, n: config.width, k: patch.patchDimension) + gemmFlops(m: 1, n: embedDimension, k: config.width)
    }
}
