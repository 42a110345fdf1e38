// A fully connected layer, y = x·Wᵀ + b, with W stored (out, in) as in PyTorch's nn.Linear.

import Compute

/// `y = x·Wᵀ + b` over `rows` input rows.
///
/// Parameters: `weight` (out, in), `bias` (out) when present. PyTorch's default initialisation
/// (what `nn.Linear` does and what OpenCLIP keeps where it sets nothing) is uniform on
/// ±1/√in for both.
public struct Linear: Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let weight: ParameterView  // (out, in)
    public let bias: ParameterView?  // (out)

    /// Registers `weightName` and, when `bias`, `biasName` in `layout`.
    public init(
        weightName: String, biasName: String?, inFeatures: Int, outFeatures: Int,
        layout: inout ParameterLayout
    ) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        weight = layout.add(weightName, shape: [outFeatures, inFeatures])
        bias = biasName.map { layout.add($0, shape: [outFeatures]) }
    }

    /// Registers `prefix.weight` and `prefix.bias` (nn.Linear's names).
    public init(_ prefix: String, inFeatures: Int, outFeatures: Int, bias: Bool = true, layout: inout ParameterLayout) {
        self.init(
            weightName: prefix + ".weight", biasName: bias ? prefix + ".bias" : nil,
            inFeatures: inFeatures, outFeatures: outFeatures, layout: &layout)
    }

    /// PyTorch's nn.Linear default: weight and bias uniform on ±1/√in.
    public func initializeDefault<T>(_ store: ParameterStore<T>, seed: UInt64) {
        let bound = 1 / Double(inFeatures).squareRoot()
        store.initialize(weight, .uniform(bound: bound), seed: seed)
        if let bias { store.initialize(bias, .uniform(bound: bound), seed: seed) }
    }

    /// y = x·Wᵀ + b; with `addBias: false`, y = x·Wᵀ (for callers that fuse the bias add into
    /// the next element-wise kernel).
    /// - x: (rows, in); y: (rows, out), overwritten.
    @inlinable
    public func forward<T: Scalar>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, params: ParameterStore<T>, addBias: Bool = true
    ) {
        gemm(
            transB: true, m: rows, n: outFeatures, k: inFeatures,
            a: x, lda: inFeatures, b: params.value(weight), ldb: inFeatures,
            beta: 0, c: y, ldc: outFeatures)
        if addBias, let bias { addBiasRows(y, bias: params.value(bias), rows: rows, width: outFeatures) }
    }

    /// Backward pass. Always accumulates dW += dyᵀ·x and db += Σ_rows dy into the store's
    /// gradients. The input gradient dy·W is added into `dx` when `accumulateInput` (the default),
    /// or overwrites it when false (for scratch buffers); `dx = nil` skips it.
    /// - dy: (rows, out); x: (rows, in) the forward input; dx: (rows, in).
    @inlinable
    public func backward<T: Scalar>(
        _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>?, rows: Int,
        params: ParameterStore<T>, accumulateInput: Bool = true
    ) {
        if let dx {
            gemm(
                m: rows, n: inFeatures, k: outFeatures, a: dy, lda: outFeatures,
                b: params.value(weight), ldb: inFeatures, beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
        }
        gemm(
            transA: true, m: outFeatures, n: inFeatures, k: rows, a: dy, lda: outFeatures,
            b: x, ldb: inFeatures, beta: 1, c: params.grad(weight), ldc: inFeatures)
        if let bias { accumulateColumnSums(dy, into: params.grad(bias), rows: rows, width: outFeatures) }
    }

    /// Multiply–add count of the forward pass: 2·rows·in·out.
    public func forwardFlops(rows: Int) -> Double { gemmFlops(m: rows, n: outFeatures, k: inFeatures) }
}
