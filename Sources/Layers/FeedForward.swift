// The feed-forward half of a residual block: OpenCLIP's dense `mlp`, or a mixture of experts in
// its place (CLIP-UP's sparse upcycling). The block calls one of the two through this type; the
// parameter names stay under `<block>.mlp` either way.

import Compute

/// A block's feed-forward network: the dense `MLP` or a `MixtureOfExperts`.
public enum FeedForward: Sendable {
    case dense(MLP)
    case experts(MixtureOfExperts)

    /// Registers `prefix.c_fc.*` and `prefix.c_proj.*` (dense), or the router and the experts
    /// (`MixtureOfExperts`'s names) when `experts` is given.
    public init(
        _ prefix: String, width: Int, ratio: Int, approximation: GELUApproximation, experts: MoEConfiguration?,
        layout: inout ParameterLayout
    ) {
        if let experts {
            self = .experts(MixtureOfExperts(prefix, width: width, ratio: ratio, approximation: approximation, configuration: experts, layout: &layout))
        } else {
            self = .dense(MLP(prefix, width: width, ratio: ratio, approximation: approximation, layout: &layout))
        }
    }

    /// The dense MLP, or nil for a mixture.
    public var dense: MLP? { if case .dense(let m) = self { m } else { nil } }

    /// The mixture of experts, or nil for a dense MLP.
    public var mixture: MixtureOfExperts? { if case .experts(let m) = self { m } else { nil } }

    /// Every dense MLP computation inside: the MLP itself, or each expert (for per-tower
    /// initialisation rules that set c_fc / c_proj standard deviations).
    public var mlps: [MLP] {
        switch self {
        case .dense(let m): [m]
        case .experts(let m): m.experts
        }
    }

    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        switch self {
        case .dense(let m): m.initializeDefault(store, seed: seed)
        case .experts(let m): m.initializeDefault(store, seed: seed)
        }
    }

    public enum Buffers<T: Scalar> {
        case dense(MLP.Buffers<T>)
        case experts(MixtureOfExperts.Buffers<T>)

        /// The same buffers for fewer rows (a mixture recomputes its capacity for the smaller group).
        public func resized(rows: Int) -> Buffers {
            switch self {
            case .dense(let b): .dense(b.resized(rows: rows))
            case .experts(let b): b.rows == rows ? self : .experts(b.resized(rows: rows))
            }
        }

        /// The dense MLP's buffers (nil for a mixture).
        public var dense: MLP.Buffers<T>? { if case .dense(let b) = self { b } else { nil } }
        /// The mixture's buffers (nil for a dense MLP).
        public var mixture: MixtureOfExperts.Buffers<T>? { if case .experts(let b) = self { b } else { nil } }
    }

    public func makeBuffers<T>(rows: Int, workspace: Workspace<T>, label: String) -> Buffers<T> {
        switch self {
        case .dense(let m): .dense(m.makeBuffers(rows: rows, workspace: workspace, label: label))
        case .experts(let m): .experts(m.makeBuffers(rows: rows, workspace: workspace, label: label))
        }
    }

    /// - x: (rows, C); y: (rows, C), overwritten. A mixture routes the rows as one group.
    @inlinable
    public func forward<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, buffers: Buffers<T>, params: ParameterStore<T>) {
        switch (self, buffers) {
        case (.dense(let m), .dense(let b)): m.forward(x, y, buffers: b, params: params)
        case (.experts(let m), .experts(let b)): m.forward(x, y, buffers: b, params: params)
        default: fatalError("FeedForward.forward: buffers of the other kind")
        }
    }

    /// Accumulates into `dx` (or overwrites it when `accumulateInput` is false) and the parameter
    /// gradients; a mixture adds its auxiliary losses' gradients too.
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, buffers: Buffers<T>,
        params: ParameterStore<T>, accumulateInput: Bool = true, scratchFresh: Bool = false
    ) {
        switch (self, buffers) {
        case (.dense(let m), .dense(let b)):
            m.backward(dy, x: x, dx: dx, buffers: b, params: params, accumulateInput: accumulateInput, scratchFresh: scratchFresh)
        case (.experts(let m), .experts(let b)): m.backward(dy, x: x, dx: dx, buffers: b, params: params, accumulateInput: accumulateInput)
        default: fatalError("FeedForward.backward: buffers of the other kind")
        }
    }

    /// Forward FLOPs for `rows` tokens; a mixture counts its nominal assignments
    /// (`MixtureOfExperts.forwardFlops(rows:)`).
    public func forwardFlops(rows: Int) -> Double {
        switch self {
        case .dense(let m): m.forwardFlops(rows: rows)
        case .experts(let m): m.forwardFlops(rows: rows)
        }
    }
}

/// Which blocks of a transformer get a mixture of experts: blocks `first`, `first + every`, …
/// (sparse upcycling's "every other MLP", blocks 1, 3, 5, … counting from 0, by default; spec B2,
/// B6 step 2: the choice the spec calls most likely, UNSURE for CLIP-UP itself).
public struct MoEPlacement: Codable, Sendable, Hashable {
    public var configuration: MoEConfiguration
    public var every: Int
    public var first: Int

    public init(_ configuration: MoEConfiguration, every: Int = 2, first: Int = 1) {
        self.configuration = configuration
        self.every = every
        self.first = first
    }

    /// Whether block `index` (0-based) holds a mixture.
    public func contains(block index: Int) -> Bool { every >= 1 && index >= first && (index - first) % every == 0 }

    /// The blocks of an `layers`-block stack that hold a mixture.
    public func blocks(layers: Int) -> [Int] { every >= 1 && first >= 0 ? Array(stride(from: first, to: layers, by: every)) : [] }
}
