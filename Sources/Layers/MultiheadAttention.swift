// Multi-head self-attention laid out like PyTorch's nn.MultiheadAttention (batch_first), which is
// what OpenCLIP's transformer blocks use: one packed input projection for q, k and v, and an
// output projection.
//
//   qkv = x·W_inᵀ + b_in                      (B·T, 3C): columns [q | k | v], head h at h·D…
//   S_bh = Q_bh·K_bhᵀ,  A_bh = softmax(S_bh/√D) (B, H, T, T), causal mask optional
//   ctx_bh = A_bh·V_bh                        (B·T, C): head h at columns h·D…
//   y = ctx·W_outᵀ + b_out                    (B·T, C)
//
// Q, K and V of each (sample, head) are read in place from the packed qkv buffer with leading
// dimension 3C, and each head's context is written in place into ctx with leading dimension C:
// no transposes or copies.

import Compute

public struct MultiheadAttention: Sendable {
    public let width: Int  // C
    public let heads: Int  // H
    public let headWidth: Int  // D = C / H
    public let causal: Bool
    public let inProjWeight: ParameterView  // (3C, C)
    public let inProjBias: ParameterView  // (3C)
    public let outProj: Linear  // (C, C), (C)

    /// Registers `prefix.in_proj_weight`, `prefix.in_proj_bias`, `prefix.out_proj.weight`,
    /// `prefix.out_proj.bias`.
    public init(_ prefix: String, width: Int, heads: Int, causal: Bool, layout: inout ParameterLayout) {
        precondition(heads > 0 && width % heads == 0, "MultiheadAttention: width \(width) is not divisible by heads \(heads)")
        self.width = width
        self.heads = heads
        self.headWidth = width / heads
        self.causal = causal
        inProjWeight = layout.add(prefix + ".in_proj_weight", shape: [3 * width, width])
        inProjBias = layout.add(prefix + ".in_proj_bias", shape: [3 * width])
        outProj = Linear(prefix + ".out_proj", inFeatures: width, outFeatures: width, layout: &layout)
    }

    /// PyTorch's nn.MultiheadAttention initialisation: in_proj_weight Xavier-uniform
    /// (bound √(6/(C + 3C))), out_proj.weight uniform ±1/√C, both biases zero.
    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        store.initialize(inProjWeight, .uniform(bound: (6.0 / Double(4 * width)).squareRoot()), seed: seed)
        store.initialize(inProjBias, .zeros, seed: seed)
        store.initialize(outProj.weight, .uniform(bound: 1 / Double(width).squareRoot()), seed: seed)
        if let b = outProj.bias { store.initialize(b, .zeros, seed: seed) }
    }

    /// Forward activations (kept for backward) and backward scratch for a (B, T) batch.
    public struct Buffers<T: Scalar> {
        public let batch: Int, tokens: Int
        public let qkv: UnsafeMutablePointer<T>  // (B·T, 3C)
        public let probs: UnsafeMutablePointer<T>  // (B, H, T, T)
        public let context: UnsafeMutablePointer<T>  // (B·T, C)
        public let dqkv: UnsafeMutablePointer<T>  // (B·T, 3C) scratch
        public let dprobs: UnsafeMutablePointer<T>  // (B, H, T, T) scratch
        public let dcontext: UnsafeMutablePointer<T>  // (B·T, C) scratch

        /// The same buffers used for a smaller batch (a final partial chunk at inference).
        public func resized(batch newBatch: Int) -> Buffers {
            precondition(newBatch <= batch, "MultiheadAttention.Buffers: batch \(newBatch) exceeds capacity \(batch)")
            return Buffers(batch: newBatch, tokens: tokens, qkv: qkv, probs: probs, context: context, dqkv: dqkv, dprobs: dprobs, dcontext: dcontext)
        }
    }

    /// Buffers for a (B, T) batch. The backward scratch (dqkv, dprobs, dcontext) is only live
    /// during this layer's backward pass, so every attention layer of the workspace shares it
    /// (`Workspace.gradientScratch`).
    public func makeBuffers<T>(batch: Int, tokens: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        let rows = batch * tokens, c = width
        let scores = batch * heads * tokens * tokens
        return Buffers(
            batch: batch, tokens: tokens,
            qkv: workspace.allocate(rows * 3 * c, label: label + ".qkv"),
            probs: workspace.allocate(scores, label: label + ".probs"),
            context: workspace.allocate(rows * c, label: label + ".context"),
            dqkv: workspace.gradientScratch(rows * 3 * c, label: "scratch.dqkv"),
            dprobs: workspace.gradientScratch(scores, label: "scratch.dprobs"),
            dcontext: workspace.gradientScratch(rows * c, label: "scratch.dcontext"))
    }

    /// - x: (B·T, C) input; y: (B·T, C) output, overwritten.
    @inlinable
    public func forward<T: Scalar>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>
    ) {
        let b = buffers.batch, t = buffers.tokens, c = width, d = headWidth, h = heads
        let rows = b * t
        // qkv = x·W_inᵀ + b_in
        gemm(
            transB: true, m: rows, n: 3 * c, k: c, a: x, lda: c, b: params.value(inProjWeight), ldb: c,
            beta: 0, c: buffers.qkv, ldc: 3 * c)
        addBiasRows(buffers.qkv, bias: params.value(inProjBias), rows: rows, width: 3 * c)
        // Scores and context, one (sample, head) at a time. The products are small (T × T × D), so
        // samples are spread over the threads with single-threaded BLAS calls.
        let qkv = buffers.qkv, probs = buffers.probs, context = buffers.context
        Threads.withBLASThreads(1) {
            Threads.parallelFor(b, grain: 1) { range in
                for s in range {
                    for head in 0..<h {
                        let q = UnsafePointer(qkv + s * t * 3 * c + head * d)
                        let p = probs + (s * h + head) * t * t
                        gemm(transB: true, m: t, n: t, k: d, a: q, lda: 3 * c, b: q + c, ldb: 3 * c, beta: 0, c: p, ldc: t)
                    }
                }
            }
        }
        softmaxRowsForward(probs, probs, rows: b * h * t, cols: t, scale: 1 / T(d).squareRoot(), causal: causal)
        Threads.withBLASThreads(1) {
            Threads.parallelFor(b, grain: 1) { range in
                for s in range {
                    for head in 0..<h {
                        let v = UnsafePointer(qkv + s * t * 3 * c + 2 * c + head * d)
                        let p = UnsafePointer(probs + (s * h + head) * t * t)
                        gemm(m: t, n: d, k: t, a: p, lda: t, b: v, ldb: 3 * c, beta: 0, c: context + s * t * c + head * d, ldc: c)
                    }
                }
            }
        }
        outProj.forward(buffers.context, y, rows: rows, params: params)
    }

    /// Backward: accumulates into the four parameter gradients, and adds the input gradient into
    /// `dx` (B·T, C) when `accumulateInput` (the default) or overwrites `dx` with it when false.
    /// - dy: (B·T, C); x: (B·T, C) the forward input.
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers: Buffers<T>,
        params: ParameterStore<T>, accumulateInput: Bool = true
    ) {
        let b = buffers.batch, t = buffers.tokens, c = width, d = headWidth, h = heads
        let rows = b * t
        outProj.backward(dy, x: buffers.context, dx: buffers.dcontext, rows: rows, params: params, accumulateInput: false)
        let qkv = buffers.qkv, probs = buffers.probs, dqkv = buffers.dqkv, dprobs = buffers.dprobs, dcontext = buffers.dcontext
        Threads.withBLASThreads(1) {
            Threads.parallelFor(b, grain: 1) { range in
                for s in range {
                    for head in 0..<h {
                        let base = s * t * 3 * c + head * d
                        let v = UnsafePointer(qkv + base + 2 * c)
                        let p = UnsafePointer(probs + (s * h + head) * t * t)
                        let dctx = UnsafePointer(dcontext + s * t * c + head * d)
                        // dA = dctx·Vᵀ   (T, T)
                        gemm(transB: true, m: t, n: t, k: d, a: dctx, lda: c, b: v, ldb: 3 * c, beta: 0,
                             c: dprobs + (s * h + head) * t * t, ldc: t)
                        // dV = Aᵀ·dctx   (T, D)
                        gemm(transA: true, m: t, n: d, k: t, a: p, lda: t, b: dctx, ldb: c, beta: 0, c: dqkv + base + 2 * c, ldc: 3 * c)
                    }
                }
            }
        }
        softmaxRowsBackwardInPlace(dprobs, y: probs, rows: b * h * t, cols: t, scale: 1 / T(d).squareRoot())
        Threads.withBLASThreads(1) {
            Threads.parallelFor(b, grain: 1) { range in
                for s in range {
                    for head in 0..<h {
                        let base = s * t * 3 * c + head * d
                        let q = UnsafePointer(qkv + base)
                        let ds = UnsafePointer(dprobs + (s * h + head) * t * t)
                        // dQ = dS·K,  dK = dSᵀ·Q   (T, D)
                        gemm(m: t, n: d, k: t, a: ds, lda: t, b: q + c, ldb: 3 * c, beta: 0, c: dqkv + base, ldc: 3 * c)
                        gemm(transA: true, m: t, n: d, k: t, a: ds, lda: t, b: q, ldb: 3 * c, beta: 0, c: dqkv + base + c, ldc: 3 * c)
                    }
                }
            }
        }
        // through the input projection
        gemm(m: rows, n: c, k: 3 * c, a: buffers.dqkv, lda: 3 * c, b: params.value(inProjWeight), ldb: c,
             beta: accumulateInput ? 1 : 0, c: dx, ldc: c)
        gemm(transA: true, m: 3 * c, n: c, k: rows, a: buffers.dqkv, lda: 3 * c, b: x, ldb: c,
             beta: 1, c: params.grad(inProjWeight), ldc: c)
        accumulateColumnSums(buffers.dqkv, into: params.grad(inProjBias), rows: rows, width: 3 * c)
    }

    /// Forward multiply–add count for a (B, T) batch, as the OpenCLIP anchor counts it: the two
    /// projections plus QKᵀ and AV, dense even when causal.
    public func forwardFlops(batch: Int, tokens: Int) -> Double {
        let rows = batch * tokens
        return gemmFlops(m: rows, n: 3 * width, k: width) + outProj.forwardFlops(rows: rows)
            + 2 * Double(batch * heads) * gemmFlops(m: tokens, n: tokens, k: headWidth)
    }
}
