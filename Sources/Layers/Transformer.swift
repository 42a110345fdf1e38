// A stack of pre-LN residual blocks, OpenCLIP's `Transformer` (`<prefix>.resblocks.N`): the part the
// vision and text towers share. It keeps every block's output for the backward pass, shares one set
// of backward scratch across its blocks, and runs backward with two ping-pong gradient buffers.

import Compute

public struct Transformer: Sendable {
    public let width: Int
    public let blocks: [ResidualBlock]

    /// Registers `prefix.resblocks.0 …` (OpenCLIP: `visual.transformer` and `transformer`). With
    /// `experts`, the blocks it places (every other one from block 1 by default) hold a mixture of
    /// experts in place of the dense MLP.
    public init(
        _ prefix: String, width: Int, layers: Int, heads: Int, causal: Bool, mlpRatio: Int = 4,
        approximation: GELUApproximation = .exact, experts: MoEPlacement? = nil, layout: inout ParameterLayout
    ) {
        self.width = width
        blocks = (0..<layers).map { l in
            ResidualBlock("\(prefix).resblocks.\(l)", width: width, heads: heads, causal: causal,
                          mlpRatio: mlpRatio, approximation: approximation,
                          experts: experts.flatMap { $0.contains(block: l) ? $0.configuration : nil }, layout: &layout)
        }
    }

    /// Whether any block holds a mixture of experts.
    public var hasMixtures: Bool { blocks.contains { $0.mlp.mixture != nil } }

    /// Makes every mixture block route only `rows` of its input (`MixtureOfExperts.setRoutedRows`;
    /// nil: every row), for the following passes on `buffers`.
    public func setRoutedRows<T>(_ rows: UnsafePointer<Int32>?, count: Int, buffers: Buffers<T>) {
        for (l, b) in blocks.enumerated() {
            if let m = b.mlp.mixture, let mb = buffers.blocks[l].mlp.mixture { m.setRoutedRows(rows, count: count, buffers: mb) }
        }
    }

    /// The indices of the blocks that hold a mixture of experts.
    public var mixtureBlocks: [Int] { blocks.indices.filter { blocks[$0].mlp.mixture != nil } }

    /// Σ over the mixture blocks of their weighted auxiliary loss in the last forward pass (0 for a
    /// dense stack). Allocates nothing.
    public func auxiliaryLoss<T>(_ buffers: Buffers<T>) -> Double {
        var total = 0.0
        for (l, b) in blocks.enumerated() {
            if let m = b.mlp.mixture, let mb = buffers.blocks[l].mlp.mixture { total += m.auxiliaryLoss(mb) }
        }
        return total
    }

    /// Sets every mixture block's auxiliary scale in `buffers` (`MixtureOfExperts.setAuxiliaryScale`).
    public func setAuxiliaryScale<T>(_ scale: Double, buffers: Buffers<T>) {
        for (l, b) in blocks.enumerated() {
            if let m = b.mlp.mixture, let mb = buffers.blocks[l].mlp.mixture { m.setAuxiliaryScale(scale, buffers: mb) }
        }
    }

    /// Each mixture block's routing statistics of the last forward pass, by block index.
    public func mixtureStatistics<T>(_ buffers: Buffers<T>) -> [(block: Int, statistics: MoEStatistics)] {
        blocks.indices.compactMap { l in
            guard let m = blocks[l].mlp.mixture, let mb = buffers.blocks[l].mlp.mixture else { return nil }
            return (l, m.statistics(mb))
        }
    }

    public struct Buffers<T: Scalar> {
        public let batch: Int, tokens: Int
        public let hidden: [UnsafeMutablePointer<T>]  // L × (B·T, C): the output of block l
        public let blocks: [ResidualBlock.Buffers<T>]
        /// Backward re-runs each block's forward first (`ActivationMemory.recompute`).
        public let recompute: Bool
        public let dA: UnsafeMutablePointer<T>  // (B·T, C) scratch
        public let dB: UnsafeMutablePointer<T>  // (B·T, C) scratch

        /// The buffer `backward` reads dL/d(output) from, zeroed: callers add into it.
        public func zeroedOutputGradient() -> UnsafeMutablePointer<T> {
            dA.update(repeating: 0, count: batch * tokens * width)
            return dA
        }
        public let width: Int
    }

    /// Buffers for a (B, T) batch, by the workspace's `ActivationMemory`:
    /// - `.full`: every block its own activations, every block's output kept;
    /// (A mixture-of-experts block keeps its own activations in every mode.)
    /// - `.recompute`: one set of block activations shared by all blocks (backward re-runs each
    ///   block's forward), every block's output kept (it is the next block's input);
    /// - `.inference`: one shared set of block activations and two ping-pong outputs.
    public func makeBuffers<T>(batch: Int, tokens: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        let rows = batch * tokens
        var blockBuffers: [ResidualBlock.Buffers<T>] = []
        let shared = workspace.memory != .full
        for (l, b) in blocks.enumerated() {
            // Dense blocks share one set; a mixture block keeps its own (its routing, auxiliary
            // loss and statistics are read per block after the pass).
            if shared, b.mlp.mixture == nil, let first = blockBuffers.indices.first(where: { blocks[$0].mlp.mixture == nil }) {
                blockBuffers.append(blockBuffers[first])
            } else {
                blockBuffers.append(b.makeBuffers(batch: batch, tokens: tokens, workspace: workspace, label: "\(label).block\(l)"))
            }
        }
        var hidden: [UnsafeMutablePointer<T>] = []
        for l in 0..<blocks.count {
            if workspace.isForwardOnly && l >= 2 {
                hidden.append(hidden[l - 2])
            } else {
                hidden.append(workspace.allocate(rows * width, label: "\(label).hidden\(l)"))
            }
        }
        return Buffers(
            batch: batch, tokens: tokens,
            hidden: hidden,
            blocks: blockBuffers,
            recompute: workspace.memory == .recompute,
            dA: workspace.gradientScratch(rows * width, label: "scratch.dA"),
            dB: workspace.gradientScratch(rows * width, label: "scratch.dB"),
            width: width)
    }

    /// Runs every block on `x` (B·T, C), `batch` ≤ the buffers' batch; returns the last block's
    /// output. The caller keeps `x` alive and unchanged for `backward`.
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafePointer<T>, batch: Int, buffers: Buffers<T>, params: ParameterStore<T>) -> UnsafePointer<T> {
        var input = x
        for (l, block) in blocks.enumerated() {
            block.forward(input, buffers.hidden[l], buffers: buffers.blocks[l].resized(batch: batch), params: params)
            input = UnsafePointer(buffers.hidden[l])
        }
        return input
    }

    /// Backpropagates dL/d(output), which the caller has added into `zeroedOutputGradient()`,
    /// through every block (accumulating the parameter gradients); returns dL/dx, (B·T, C), in one
    /// of the scratch buffers (valid until the next backward). `x` is the forward input.
    @inlinable
    /// `afterBlock` runs after each block's backward (a data-parallel trainer lets a non-blocking
    /// gradient all-reduce progress there).
    public func backward<T: Scalar>(
        input x: UnsafePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>, afterBlock: (() -> Void)? = nil
    ) -> UnsafePointer<T> {
        let n = buffers.batch * buffers.tokens * width
        var dy = buffers.dA, dx = buffers.dB
        for l in stride(from: blocks.count - 1, through: 0, by: -1) {
            let blockInput = l == 0 ? x : UnsafePointer(buffers.hidden[l - 1])
            let rebuilt = buffers.recompute && l < blocks.count - 1
            if rebuilt {
                // The shared activations hold block l+1's; rebuild block l's. Its output lands
                // in hidden[l] again, with the same values (the forward is deterministic).
                blocks[l].forward(blockInput, buffers.hidden[l], buffers: buffers.blocks[l], params: params)
            }
            dx.update(repeating: 0, count: n)
            // After a rebuild the shared scratch still holds this block's LayerNorm and GELU
            // outputs, which backward would otherwise compute again.
            blocks[l].backward(dy, x: blockInput, dx: dx, buffers: buffers.blocks[l], params: params, scratchFresh: rebuilt)
            swap(&dy, &dx)
            afterBlock?()
        }
        return UnsafePointer(dy)
    }

    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        for b in blocks { b.initializeDefault(store, seed: seed) }
    }

    public func forwardFlops(batch: Int, tokens: Int) -> Double {
        blocks.reduce(0) { $0 + $1.forwardFlops(batch: batch, tokens: tokens) }
    }
}
