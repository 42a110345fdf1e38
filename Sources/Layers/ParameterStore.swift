// The flat parameter store: all parameters of a model in one contiguous buffer, gradients and the
// optimizer's two moment buffers in three more of the same layout. A parameter is a named view
// (name, offset, shape, weight-decay flag), so the gradient all-reduce is one call, the optimizer
// one loop, and a checkpoint a list of views. Names follow OpenCLIP's state_dict.

import Compute

/// One named parameter tensor inside the flat buffers.
public struct ParameterView: Sendable, Hashable, Codable {
    /// OpenCLIP state_dict name, e.g. `visual.transformer.resblocks.0.attn.in_proj_weight`.
    public let name: String
    /// First element in the flat buffers (a multiple of `ParameterLayout.alignment`).
    public let offset: Int
    /// Row-major shape; `[]` for a scalar such as `logit_scale`.
    public let shape: [Int]
    /// Whether decoupled weight decay applies (see `ParameterLayout.defaultDecay`).
    public let decay: Bool

    /// Number of elements (1 for a scalar).
    public var count: Int { shape.reduce(1, *) }
    /// The flat index range of this parameter.
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The list of parameter views of a model, built once when the layers are constructed.
///
/// Each parameter starts on a 64-byte boundary (16 Floats), so SIMD loads inside one tensor are
/// aligned; the padding between tensors stays zero in values, gradients and moments alike.
public struct ParameterLayout: Sendable {
    /// Parameters start at multiples of this many elements.
    public static let alignment = 16

    public private(set) var views: [ParameterView] = []
    /// Length of the flat buffers, padding included.
    public private(set) var totalCount = 0
    private var indexByName: [String: Int] = [:]

    public init() {}

    /// OpenCLIP's and FastCLIP's rule: no weight decay for tensors of fewer than 2 dimensions,
    /// for normalisation gains and biases, and for `logit_scale`; decay for everything else.
    public static func defaultDecay(name: String, shape: [Int]) -> Bool {
        if shape.count < 2 { return false }
        let leaf = name.split(separator: ".").last.map(String.init) ?? name
        if leaf.contains("bias") || name == "logit_scale" { return false }
        let components = name.split(separator: ".")
        if components.contains(where: { $0.hasPrefix("ln") || $0.hasPrefix("bn") }) { return false }
        return true
    }

    /// Registers a parameter and returns its view. Names must be unique.
    @discardableResult
    public mutating func add(_ name: String, shape: [Int], decay: Bool? = nil) -> ParameterView {
        precondition(indexByName[name] == nil, "ParameterLayout: duplicate parameter name '\(name)'")
        precondition(shape.allSatisfy { $0 > 0 }, "ParameterLayout: '\(name)' has a non-positive dimension in \(shape)")
        let view = ParameterView(
            name: name, offset: totalCount, shape: shape,
            decay: decay ?? Self.defaultDecay(name: name, shape: shape))
        indexByName[name] = views.count
        views.append(view)
        let a = Self.alignment
        totalCount += (view.count + a - 1) / a * a
        return view
    }

    /// The view named `name`, if any.
    public subscript(name: String) -> ParameterView? {
        indexByName[name].map { views[$0] }
    }

    /// Number of parameters (padding excluded).
    public var parameterCount: Int { views.reduce(0) { $0 + $1.count } }
}

/// How a parameter is initialised. Random initialisers draw from a stream named after the
/// parameter, so a parameter's initial values do not depend on the order of the layout.
public enum Initializer: Sendable, Hashable {
    case zeros
    case ones
    case constant(Double)
    /// Normal with mean 0 and the given standard deviation.
    case normal(std: Double)
    /// Uniform on [−bound, bound).
    case uniform(bound: Double)
}

/// Values, gradients and AdamW moments of one model in four flat buffers of equal layout.
public final class ParameterStore<T: Scalar>: @unchecked Sendable {
    public let layout: ParameterLayout
    /// θ: the parameter values, (layout.totalCount).
    public let values: AlignedBuffer<T>
    /// ∂L/∂θ, accumulated by backward passes and zeroed once per step, (layout.totalCount).
    public let grads: AlignedBuffer<T>
    /// Optimizer first moment m, (layout.totalCount).
    public let firstMoment: AlignedBuffer<T>
    /// Optimizer second moment v, (layout.totalCount).
    public let secondMoment: AlignedBuffer<T>

    public init(layout: ParameterLayout) {
        self.layout = layout
        values = AlignedBuffer(count: layout.totalCount)
        grads = AlignedBuffer(count: layout.totalCount)
        firstMoment = AlignedBuffer(count: layout.totalCount)
        secondMoment = AlignedBuffer(count: layout.totalCount)
    }

    /// A store that reads `other`'s values (and moments) and accumulates gradients of its own:
    /// for a replica of a model that runs part of a batch on another thread (batch-split
    /// threading), whose gradients are summed into `other`'s afterwards. Only `grads` is new.
    public init(sharingValuesOf other: ParameterStore<T>) {
        layout = other.layout
        values = other.values
        grads = AlignedBuffer(count: other.layout.totalCount)
        firstMoment = other.firstMoment
        secondMoment = other.secondMoment
    }

    /// The first value of a parameter.
    @inlinable public func value(_ view: ParameterView) -> UnsafeMutablePointer<T> { values.pointer + view.offset }
    /// The first gradient element of a parameter.
    @inlinable public func grad(_ view: ParameterView) -> UnsafeMutablePointer<T> { grads.pointer + view.offset }

    /// Sets every gradient to zero (once per step, before the backward pass).
    public func zeroGrads() { grads.zero() }

    /// The view named `name`; traps with the name when absent (a programming error).
    public func view(_ name: String) -> ParameterView {
        guard let v = layout[name] else { preconditionFailure("ParameterStore: no parameter named '\(name)'") }
        return v
    }

    /// Initialises one parameter. Random draws come from `CounterRNG(seed:, streamNamed: view.name)`.
    public func initialize(_ view: ParameterView, _ initializer: Initializer, seed: UInt64) {
        let p = value(view)
        let rng = CounterRNG(seed: seed, streamNamed: view.name)
        switch initializer {
        case .zeros: p.update(repeating: 0, count: view.count)
        case .ones: p.update(repeating: 1, count: view.count)
        case .constant(let c): p.update(repeating: T(c), count: view.count)
        case .normal(let std): rng.fillNormal(p, count: view.count, mean: 0, std: T(std))
        case .uniform(let bound): rng.fillUniform(p, count: view.count, low: T(-bound), high: T(bound))
        }
    }

    /// A copy of one parameter's values (tests, checkpoints).
    public func values(of view: ParameterView) -> [T] { Array(UnsafeBufferPointer(start: value(view), count: view.count)) }
    /// A copy of one parameter's gradient (tests).
    public func grads(of view: ParameterView) -> [T] { Array(UnsafeBufferPointer(start: grad(view), count: view.count)) }
}
