// The pre-LN transformer block OpenCLIP builds (`ResidualAttentionBlock`):
//   x₁ = x + attn(ln_1(x))
//   y  = x₁ + mlp(ln_2(x₁))
// where mlp is the dense MLP or, in an upcycled block, a mixture of experts (`FeedForward`).

import Compute

public struct ResidualBlock: Sendable {
    public let width: Int
    public let ln1: LayerNorm
    public let attention: MultiheadAttention
    public let ln2: LayerNorm
    public let mlp: FeedForward

    /// Registers `prefix.ln_1.*`, `prefix.attn.*`, `prefix.ln_2.*`, `prefix.mlp.*` (a mixture of
    /// experts' names under `prefix.mlp` when `experts` is given).
    public init(
        _ prefix: String, width: Int, heads: Int, causal: Bool, mlpRatio: Int = 4,
        approximation: GELUApproximation = .exact, experts: MoEConfiguration? = nil, layout: inout ParameterLayout
    ) {
        self.width = width
        ln1 = LayerNorm(prefix + ".ln_1", width: width, layout: &layout)
        attention = MultiheadAttention(prefix + ".attn", width: width, heads: heads, causal: causal, layout: &layout)
        ln2 = LayerNorm(prefix + ".ln_2", width: width, layout: &layout)
        mlp = FeedForward(prefix + ".mlp", width: width, ratio: mlpRatio, approximation: approximation, experts: experts, layout: &layout)
    }

    /// PyTorch's defaults for every part (OpenCLIP overrides some of them per tower).
    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        ln1.initializeDefault(store)
        attention.initializeDefault(store, seed: seed)
        ln2.initializeDefault(store)
        mlp.initializeDefault(store, seed: seed)
    }

    public struct Buffers<T: Scalar> {
        public let rows: Int
        public let ln1Out: UnsafeMutablePointer<T>  // (rows, C) scratch, recomputed in backward
        public let ln1Cache: LayerNorm.Cache<T>
        public let attention: MultiheadAttention.Buffers<T>
        public let x1: UnsafeMutablePointer<T>  // (rows, C) after the attention residual
        public let ln2Out: UnsafeMutablePointer<T>  // (rows, C) scratch (the same as ln1Out), recomputed in backward
        public let ln2Cache: LayerNorm.Cache<T>
        public let mlp: FeedForward.Buffers<T>
        public let branchOut: UnsafeMutablePointer<T>  // (rows, C) scratch: attention or MLP output before the residual add
        public let dx1: UnsafeMutablePointer<T>  // (rows, C) scratch
        public let dln: UnsafeMutablePointer<T>  // (rows, C) scratch

        /// The same buffers used for a smaller batch (a final partial chunk at inference).
        public func resized(batch: Int) -> Buffers {
            if batch == attention.batch { return self }
            let newRows = batch * attention.tokens
            return Buffers(
                rows: newRows, ln1Out: ln1Out, ln1Cache: ln1Cache, attention: attention.resized(batch: batch), x1: x1,
                ln2Out: ln2Out, ln2Cache: ln2Cache, mlp: mlp.resized(rows: newRows), branchOut: branchOut, dx1: dx1, dln: dln)
        }
    }

    /// Buffers for a (B, T) batch. What backward reads and cannot cheaply rebuild (the LayerNorm
    /// statistics, x₁, the attention's activations, the MLP's pre-activation) is per block. The
    /// LayerNorm outputs (rebuilt in backward from x or x₁ by one LayerNorm pass), GELU's output
    /// and the scratch live only inside one block's forward or backward are shared by every block
    /// of the workspace (`Workspace.scratch`), so L blocks of two towers hold one set, not 2L.
    public func makeBuffers<T>(batch: Int, tokens: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        let rows = batch * tokens, c = width
        let lnOut = workspace.scratch(rows * c, label: "scratch.ln_out")
        return Buffers(
            rows: rows,
            ln1Out: lnOut,
            ln1Cache: ln1.makeCache(rows: rows, workspace: workspace, label: label + ".ln_1"),
            attention: attention.makeBuffers(batch: batch, tokens: tokens, workspace: workspace, label: label + ".attn"),
            x1: workspace.allocate(rows * c, label: label + ".x1"),
            ln2Out: lnOut,
            ln2Cache: ln2.makeCache(rows: rows, workspace: workspace, label: label + ".ln_2"),
            mlp: mlp.makeBuffers(rows: rows, workspace: workspace, label: label + ".mlp"),
            branchOut: workspace.scratch(rows * c, label: "scratch.branch_out"),
            dx1: workspace.gradientScratch(rows * c, label: "scratch.dx1"),
            dln: workspace.gradientScratch(rows * c, label: "scratch.dln"))
    }

    /// - x: (B·T, C) input, kept by the caller for backward; y: (B·T, C) output, overwritten.
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>) {
        let n = buffers.rows * width
        let prof = Profiler.shared
        prof.measure(.layerNorm) { ln1.forward(x, buffers.ln1Out, rows: buffers.rows, cache: buffers.ln1Cache, params: params) }
        prof.measure(.attention) { attention.forward(buffers.ln1Out, buffers.branchOut, buffers: buffers.attention, params: params) }
        vectorAdd(x, buffers.branchOut, buffers.x1, count: n)
        prof.measure(.layerNorm) { ln2.forward(buffers.x1, buffers.ln2Out, rows: buffers.rows, cache: buffers.ln2Cache, params: params) }
        prof.measure(.mlp) { mlp.forward(buffers.ln2Out, buffers.branchOut, buffers: buffers.mlp, params: params) }
        vectorAdd(buffers.x1, buffers.branchOut, y, count: n)
    }

    /// Accumulates into `dx` (B·T, C) and every parameter gradient of the block.
    /// - dy: (B·T, C); x: (B·T, C) the forward input.
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers: Buffers<T>,
        params: ParameterStore<T>, scratchFresh: Bool = false
    ) {
        let rows = buffers.rows, n = rows * width
        // y = x₁ + mlp(ln_2(x₁)):  dx₁ = dy + ln_2ᵀ(mlpᵀ(dy))
        let prof = Profiler.shared
        buffers.dx1.update(from: dy, count: n)
        // ln_2(x₁) again: the scratch holds another block's LayerNorm output by now, unless this
        // block's forward has just run (`scratchFresh`, recompute mode): its last writes to the
        // shared scratch were ln_2's output and the MLP's GELU output.
        if !scratchFresh {
            prof.measure(.layerNorm) { ln2.forward(UnsafePointer(buffers.x1), buffers.ln2Out, rows: rows, cache: buffers.ln2Cache, params: params) }
        }
        prof.measure(.mlp) {
            mlp.backward(dy, x: buffers.ln2Out, dx: buffers.dln, buffers: buffers.mlp, params: params, accumulateInput: false, scratchFresh: scratchFresh)
        }
        prof.measure(.layerNorm) {
            ln2.backward(buffers.dln, x: buffers.x1, dx: buffers.dx1, rows: rows, cache: buffers.ln2Cache, params: params)
        }
        // x₁ = x + attn(ln_1(x)):  dx += dx₁ + ln_1ᵀ(attnᵀ(dx₁))
        prof.measure(.layerNorm) { ln1.forward(x, buffers.ln1Out, rows: rows, cache: buffers.ln1Cache, params: params) }
        prof.measure(.attention) {
            attention.backward(
                buffers.dx1, x: buffers.ln1Out, dx: buffers.dln, buffers: buffers.attention, params: params, accumulateInput: false)
        }
        axpy(1, buffers.dx1, dx, count: n)
        prof.measure(.layerNorm) { ln1.backward(buffers.dln, x: x, dx: dx, rows: rows, cache: buffers.ln1Cache, params: params) }
    }

    public func forwardFlops(batch: Int, tokens: Int) -> Double {
        attention.forwardFlops(batch: batch, tokens: tokens) + mlp.forwardFlops(rows: batch * tokens)
    }
}
