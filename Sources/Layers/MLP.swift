// The transformer's feed-forward network, OpenCLIP's `mlp`: c_fc (C → 4C), GELU, c_proj (4C → C).

import Compute

public struct MLP: Sendable {
    public let width: Int  // C
    public let hiddenWidth: Int  // ratio·C
    public let approximation: GELUApproximation
    public let fc: Linear  // c_fc: (4C, C), (4C)
    public let proj: Linear  // c_proj: (C, 4C), (C)

    /// Registers `prefix.c_fc.*` and `prefix.c_proj.*`.
    public init(
        _ prefix: String, width: Int, ratio: Int = 4, approximation: GELUApproximation = .exact,
        layout: inout ParameterLayout
    ) {
        self.width = width
        self.hiddenWidth = ratio * width
        self.approximation = approximation
        fc = Linear(prefix + ".c_fc", inFeatures: width, outFeatures: ratio * width, layout: &layout)
        proj = Linear(prefix + ".c_proj", inFeatures: ratio * width, outFeatures: width, layout: &layout)
    }

    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        fc.initializeDefault(store, seed: seed)
        proj.initializeDefault(store, seed: seed)
    }

    public struct Buffers<T: Scalar> {
        public let rows: Int
        public let preActivation: UnsafeMutablePointer<T>  // (rows, 4C) kept for backward (bias included)
        public let activation: UnsafeMutablePointer<T>  // (rows, 4C) scratch: GELU's output, recomputed in backward
        public let dHidden: UnsafeMutablePointer<T>  // (rows, 4C) scratch

        /// The same buffers used for fewer rows.
        public func resized(rows newRows: Int) -> Buffers {
            precondition(newRows <= rows, "MLP.Buffers: \(newRows) rows exceed capacity \(rows)")
            return Buffers(rows: newRows, preActivation: preActivation, activation: activation, dHidden: dHidden)
        }
    }

    /// Buffers for `rows` rows. Only the pre-activation is the layer's own: GELU's output is shared
    /// scratch (every MLP of the workspace writes it in forward and recomputes it in backward, one
    /// GELU pass instead of keeping rows × 4C per block), and so is the backward scratch.
    public func makeBuffers<T>(rows: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        Buffers(
            rows: rows,
            preActivation: workspace.allocate(rows * hiddenWidth, label: label + ".fc"),
            activation: workspace.scratch(rows * hiddenWidth, label: "scratch.gelu"),
            dHidden: workspace.gradientScratch(rows * hiddenWidth, label: "scratch.dhidden"))
    }

    /// - x: (rows, C); y: (rows, C), overwritten.
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>) {
        if let bias = fc.bias {
            fc.forward(x, buffers.preActivation, rows: buffers.rows, params: params, addBias: false)
            biasGELUForward(
                buffers.preActivation, bias: params.value(bias), buffers.activation,
                rows: buffers.rows, width: hiddenWidth, approximation: approximation)
        } else {
            fc.forward(x, buffers.preActivation, rows: buffers.rows, params: params)
            geluForward(buffers.preActivation, buffers.activation, count: buffers.rows * hiddenWidth, approximation: approximation)
        }
        proj.forward(buffers.activation, y, rows: buffers.rows, params: params)
    }

    /// Accumulates into `dx` (rows, C) and the parameter gradients.
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers: Buffers<T>,
        params: ParameterStore<T>, accumulateInput: Bool = true, scratchFresh: Bool = false
    ) {
        // GELU's output again (the scratch holds another block's by now): c_proj's weight gradient
        // needs it. `scratchFresh`: this MLP's forward has just run (recompute mode), so the
        // scratch still holds its output.
        if !scratchFresh {
            geluForward(UnsafePointer(buffers.preActivation), buffers.activation, count: buffers.rows * hiddenWidth, approximation: approximation)
        }
        proj.backward(dy, x: buffers.activation, dx: buffers.dHidden, rows: buffers.rows, params: params, accumulateInput: false)
        geluBackwardInPlace(buffers.dHidden, x: buffers.preActivation, count: buffers.rows * hiddenWidth, approximation: approximation)
        fc.backward(buffers.dHidden, x: x, dx: dx, rows: buffers.rows, params: params, accumulateInput: accumulateInput)
    }

    public func forwardFlops(rows: Int) -> Double { fc.forwardFlops(rows: rows) + proj.forwardFlops(rows: rows) }
}
