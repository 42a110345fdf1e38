// LayerNorm over the channel dimension as a layer: parameters `weight` (C) and `bias` (C), eps 1e-5
// (PyTorch's and OpenCLIP's default), and a (rows) mean / rstd cache.

import Compute

/// `y = (x − μ)/√(σ² + ε) · weight + bias` per row; see `layerNormForward` for the formulas.
public struct LayerNorm: Sendable {
    public let width: Int
    public let epsilon: Double
    public let weight: ParameterView  // (C)
    public let bias: ParameterView  // (C)

    /// Registers `prefix.weight` and `prefix.bias`.
    public init(_ prefix: String, width: Int, epsilon: Double = 1e-5, layout: inout ParameterLayout) {
        self.width = width
        self.epsilon = epsilon
        weight = layout.add(prefix + ".weight", shape: [width])
        bias = layout.add(prefix + ".bias", shape: [width])
    }

    /// PyTorch's default: weight 1, bias 0.
    public func initializeDefault<T>(_ store: ParameterStore<T>) {
        store.initialize(weight, .ones, seed: 0)
        store.initialize(bias, .zeros, seed: 0)
    }

    /// Per-row statistics kept for the backward pass.
    public struct Cache<T: Scalar> {
        public let mean: UnsafeMutablePointer<T>  // (rows)
        public let rstd: UnsafeMutablePointer<T>  // (rows)
    }

    /// Cache buffers for up to `rows` rows.
    public func makeCache<T>(rows: Int, workspace: Workspace<T>, label: String) -> Cache<T> {
        Cache(mean: workspace.allocate(rows, label: label + ".mean"), rstd: workspace.allocate(rows, label: label + ".rstd"))
    }

    /// - x, y: (rows, C).
    @inlinable
    public func forward<T: Scalar>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, cache: Cache<T>, params: ParameterStore<T>
    ) {
        layerNormForward(
            x, weight: params.value(weight), bias: params.value(bias), y, mean: cache.mean, rstd: cache.rstd,
            rows: rows, width: width, epsilon: T(epsilon))
    }

    /// Accumulates into `dx` (rows, C) and the weight and bias gradients.
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, rows: Int,
        cache: Cache<T>, params: ParameterStore<T>
    ) {
        layerNormBackward(
            dy, x: x, weight: params.value(weight), mean: cache.mean, rstd: cache.rstd,
            dx: dx, dweight: params.grad(weight), dbias: params.grad(bias), rows: rows, width: width)
    }
}
