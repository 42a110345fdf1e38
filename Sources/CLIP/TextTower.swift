// The text tower, laid out as OpenCLIP's text transformer (top-level names):
//   x = token_embedding[ids] + positional_embedding   (B, T, W)
//   x = resblocks(x)  with a causal mask
//   features = ln_final(x[b, eot_b]) · text_projection (B, E), eot_b = argmax_t ids[b, t]
//
// ln_final is applied to the pooled rows only: LayerNorm acts per row, so this equals OpenCLIP's
// ln_final over all tokens followed by pooling, at 1/T of the cost.

import Compute
import Layers

public struct TextTower: Sendable {
    public let config: TextConfiguration
    public let embedDimension: Int
    public let tokenEmbedding: TokenEmbedding  // token_embedding.weight (V, W)
    public let positional: PositionalEmbedding  // positional_embedding (T, W)
    public let transformer: Transformer  // transformer.resblocks.N
    public let lnFinal: LayerNorm  // ln_final
    public let projection: ParameterView  // text_projection (W, E), applied as x·proj

    public init(_ config: TextConfiguration, embedDimension: Int, gelu: GELUApproximation, layout: inout ParameterLayout) {
        self.config = config
        self.embedDimension = embedDimension
        let w = config.width
        positional = PositionalEmbedding("positional_embedding", tokens: config.contextLength, width: w, layout: &layout)
        projection = layout.add("text_projection", shape: [w, embedDimension])
        tokenEmbedding = TokenEmbedding("token_embedding.weight", vocabularySize: config.vocabularySize, width: w, layout: &layout)
        transformer = Transformer(
            "transformer", width: w, layers: config.layers, heads: config.heads, causal: true,
            mlpRatio: config.mlpRatio, approximation: gelu, experts: config.experts, layout: &layout)
        lnFinal = LayerNorm("ln_final", width: w, layout: &layout)
    }

    /// OpenCLIP's `TextTransformer.init_parameters`: token embedding N(0, 0.02²), positional
    /// N(0, 0.01²); per block in_proj N(0, W⁻¹), out_proj and c_proj N(0, W⁻¹·(2L)⁻¹), c_fc
    /// N(0, (2W)⁻¹); text_projection N(0, W⁻¹). Biases and LayerNorms keep PyTorch's defaults.
    public func initialize<T>(_ store: ParameterStore<T>, seed: UInt64) {
        let w = Double(config.width), l = Double(config.layers)
        let attnStd = 1 / w.squareRoot(), projStd = attnStd / (2 * l).squareRoot(), fcStd = 1 / (2 * w).squareRoot()
        store.initialize(tokenEmbedding.weight, .normal(std: 0.02), seed: seed)
        store.initialize(positional.weight, .normal(std: 0.01), seed: seed)
        transformer.initializeDefault(store, seed: seed)
        for b in transformer.blocks {
            store.initialize(b.attention.inProjWeight, .normal(std: attnStd), seed: seed)
            store.initialize(b.attention.outProj.weight, .normal(std: projStd), seed: seed)
            for m in b.mlp.mlps {  // the dense MLP, or each expert of a mixture
                store.initialize(m.fc.weight, .normal(std: fcStd), seed: seed)
                store.initialize(m.proj.weight, .normal(std: projStd), seed: seed)
            }
        }
        lnFinal.initializeDefault(store)
        store.initialize(projection, .normal(std: attnStd), seed: seed)
    }

    public struct Buffers<T: Scalar> {
        public let batch: Int
        public let ids: AlignedBuffer<Int32>  // (B, T) copy of the token ids, for backward
        public let poolIndex: AlignedBuffer<Int32>  // (B) position of each text's end-of-text token
        public let routedRows: AlignedBuffer<Int32>  // (B·T) rows up to each end-of-text token: what mixture layers route
        public let tokens: UnsafeMutablePointer<T>  // (B·T, W)
        public let transformer: Transformer.Buffers<T>
        public let pooled: UnsafeMutablePointer<T>  // (B, W)
        public let pooledLN: UnsafeMutablePointer<T>  // (B, W)
        public let lnFinalCache: LayerNorm.Cache<T>
        public let dPooled: UnsafeMutablePointer<T>  // (B, W) scratch
        public let dPooledLN: UnsafeMutablePointer<T>  // (B, W) scratch
    }

    public func makeBuffers<T>(batch: Int, workspace: Workspace<T>) -> Buffers<T> {
        let w = config.width, t = config.contextLength, rows = batch * t
        return Buffers(
            batch: batch, ids: AlignedBuffer(count: rows), poolIndex: AlignedBuffer(count: batch), routedRows: AlignedBuffer(count: rows),
            tokens: workspace.allocate(rows * w, label: "text.tokens"),
            transformer: transformer.makeBuffers(batch: batch, tokens: t, workspace: workspace, label: "text"),
            pooled: workspace.allocate(batch * w, label: "text.pooled"),
            pooledLN: workspace.allocate(batch * w, label: "text.ln_final"),
            lnFinalCache: lnFinal.makeCache(rows: batch, workspace: workspace, label: "text.ln_final"),
            dPooled: workspace.allocateGradient(batch * w, label: "scratch.text.dpooled"),
            dPooledLN: workspace.allocateGradient(batch * w, label: "scratch.text.dpooled_ln"))
    }

    /// - ids: (B, T) token ids (context length T), end-of-text = the highest id in each row;
    ///   features: (B, E) output, overwritten.
    @inlinable
    public func forward<T: Scalar>(
        ids: UnsafePointer<Int32>, features: UnsafeMutablePointer<T>, batch: Int, buffers: Buffers<T>, params: ParameterStore<T>
    ) {
        precondition(batch <= buffers.batch, "TextTower: batch \(batch) exceeds the buffers' \(buffers.batch)")
        let w = config.width, t = config.contextLength, rows = batch * t
        buffers.ids.pointer.update(from: ids, count: rows)
        for b in 0..<batch {
            var best = 0
            for j in 1..<t where ids[b * t + j] > ids[b * t + best] { best = j }
            buffers.poolIndex[b] = Int32(best)
        }
        if transformer.hasMixtures {
            // Mixture layers route each text's tokens up to its end-of-text token: the padding after
            // it never reaches the pooled feature (causal attention) and takes no expert's capacity.
            var n = 0
            for b in 0..<batch {
                for j in 0...Int(buffers.poolIndex[b]) {
                    buffers.routedRows.pointer[n] = Int32(b * t + j)
                    n += 1
                }
            }
            transformer.setRoutedRows(buffers.routedRows.pointer, count: n, buffers: buffers.transformer)
        }
        Profiler.shared.measure(.embedding) {
            tokenEmbedding.forward(tokens: ids, buffers.tokens, count: rows, params: params)
            positional.forward(buffers.tokens, batch: batch, params: params)
        }
        let x = transformer.forward(buffers.tokens, batch: batch, buffers: buffers.transformer, params: params)
        for b in 0..<batch {
            (buffers.pooled + b * w).update(from: x + (b * t + Int(buffers.poolIndex[b])) * w, count: w)
        }
        lnFinal.forward(buffers.pooled, buffers.pooledLN, rows: batch, cache: buffers.lnFinalCache, params: params)
        gemm(m: batch, n: embedDimension, k: w, a: buffers.pooledLN, lda: w, b: params.value(projection), ldb: embedDimension,
             beta: 0, c: features, ldc: embedDimension)
    }

    /// Accumulates every parameter gradient of the tower from dL/dfeatures (B, E).
    @inlinable
    public func backward<T: Scalar>(_ dFeatures: UnsafePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>) {
        let batch = buffers.batch, w = config.width, t = config.contextLength, rows = batch * t, e = embedDimension
        gemm(transA: true, m: w, n: e, k: batch, a: buffers.pooledLN, lda: w, b: dFeatures, ldb: e,
             beta: 1, c: params.grad(projection), ldc: e)
        gemm(transB: true, m: batch, n: w, k: e, a: dFeatures, lda: e, b: params.value(projection), ldb: e,
             beta: 0, c: buffers.dPooledLN, ldc: w)
        buffers.dPooled.update(repeating: 0, count: batch * w)
        lnFinal.backward(buffers.dPooledLN, x: buffers.pooled, dx: buffers.dPooled, rows: batch, cache: buffers.lnFinalCache, params: params)
        let dOut = buffers.transformer.zeroedOutputGradient()
        for b in 0..<batch {
            (dOut + (b * t + Int(buffers.poolIndex[b])) * w).update(from: buffers.dPooled + b * w, count: w)
        }
        let dy = transformer.backward(input: buffers.tokens, buffers: buffers.transformer, params: params)
        Profiler.shared.measure(.embedding) {
            positional.backward(dy, batch: batch, params: params)
            tokenEmbedding.backward(dy, tokens: buffers.ids.pointer, count: rows, params: params)
        }
    }

    /// Forward FLOPs per text as the OpenCLIP anchor counts them (attention counted dense).
    public func forwardFlopsPerSample() -> Double {
        transformer.forwardFlops(batch: 1, tokens: config.contextLength)
            + gemmFlops(m: 1, n: embedDimension, k: config.width)
    }
}
