// Shared helpers for ClipLab's tests: deterministic random fills, a central-difference gradient
// checker in Double, and error measures with readable failure reports.

import Compute

/// Deterministic random values for tests, never all zero.
public func randomArray(_ count: Int, seed: UInt64, stream: String, std: Double = 1) -> [Double] {
    let rng = CounterRNG(seed: seed, streamNamed: stream)
    return (0..<count).map { std * rng.normal(UInt64($0)) }
}

/// Uniform random values in [low, high).
public func uniformArray(_ count: Int, seed: UInt64, stream: String, low: Double, high: Double) -> [Double] {
    let rng = CounterRNG(seed: seed, streamNamed: stream)
    return (0..<count).map { low + (high - low) * rng.uniform(UInt64($0)) }
}

/// An aligned Double buffer filled with normal draws.
public func randomBuffer(_ count: Int, seed: UInt64, stream: String, std: Double = 1) -> AlignedBuffer<Double> {
    AlignedBuffer(randomArray(count, seed: seed, stream: stream, std: std))
}

/// max_i |a_i − b_i| / max(max_i |b_i|, floor): the worst deviation relative to the reference's
/// scale. Elementwise relative error is meaningless where a gradient is near zero; this measure
/// is not, and it still catches any wrong element of non-negligible size.
public func scaledMaxError(_ a: [Double], _ b: [Double], floor: Double = 1e-12) -> Double {
    precondition(a.count == b.count, "scaledMaxError: \(a.count) vs \(b.count) elements")
    var worst = 0.0, scale = 0.0
    for i in a.indices {
        worst = max(worst, abs(a[i] - b[i]))
        scale = max(scale, abs(b[i]))
    }
    return worst / max(scale, floor)
}

/// A short description of the largest mismatches, for failure messages.
public func describeMismatch(_ a: [Double], _ b: [Double], label: String, limit: Int = 5) -> String {
    let order = a.indices.sorted { abs(a[$0] - b[$0]) > abs(a[$1] - b[$1]) }
    let worst = order.prefix(limit).map { "[\($0)] got \(a[$0]) expected \(b[$0])" }
    return "\(label): scaled error \(scaledMaxError(a, b)); worst: " + worst.joined(separator: ", ")
}

/// One tensor whose gradient is checked: its values, the analytic gradient buffer the backward
/// pass accumulates into, and its length.
public struct CheckedTensor {
    public let name: String
    public let values: UnsafeMutablePointer<Double>
    public let gradient: UnsafeMutablePointer<Double>
    public let count: Int

    public init(name: String, values: UnsafeMutablePointer<Double>, gradient: UnsafeMutablePointer<Double>, count: Int) {
        self.name = name
        self.values = values
        self.gradient = gradient
        self.count = count
    }
}

/// The result for one tensor: the scaled error of the analytic against the numeric gradient, and
/// of the second accumulated backward against twice the first.
public struct GradientReport: CustomStringConvertible {
    public let name: String
    public let error: Double
    public let accumulationError: Double
    public let checkedElements: Int
    public let detail: String
    public var description: String {
        "\(name): error \(error), accumulation error \(accumulationError) over \(checkedElements) elements. \(detail)"
    }
}

/// Checks the backward pass of a differentiable computation against central finite differences.
///
/// - `loss()` runs the forward pass and returns a scalar L (typically Σ dy ⊙ y for a fixed random
///   dy, so every output element matters).
/// - `backward()` runs the backward pass for that L, *adding* into each tensor's gradient buffer.
/// The checker zeroes the gradient buffers, runs loss + backward, and compares each tensor's
/// gradient with (L(x + h·eᵢ) − L(x − h·eᵢ)) / 2h for every element (or `maxElements` of them,
/// spread evenly). It then runs loss + backward once more without zeroing and checks that the
/// gradients doubled: backward must accumulate, never overwrite.
public func checkGradients(
    _ tensors: [CheckedTensor], h: Double = 1e-5, maxElements: Int = 120,
    loss: () -> Double, backward: () -> Void
) -> [GradientReport] {
    for t in tensors { t.gradient.update(repeating: 0, count: t.count) }
    _ = loss()
    backward()
    let analytic = tensors.map { Array(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) }
    _ = loss()
    backward()
    let doubled = tensors.map { Array(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) }

    var reports: [GradientReport] = []
    for (ti, t) in tensors.enumerated() {
        let stride = max(1, t.count / maxElements)
        var indices = Array(Swift.stride(from: 0, to: t.count, by: stride))
        if indices.last != t.count - 1 { indices.append(t.count - 1) }
        var numeric: [Double] = [], picked: [Double] = []
        for i in indices {
            let saved = t.values[i]
            t.values[i] = saved + h
            let up = loss()
            t.values[i] = saved - h
            let down = loss()
            t.values[i] = saved
            numeric.append((up - down) / (2 * h))
            picked.append(analytic[ti][i])
        }
        let twice = analytic[ti].map { 2 * $0 }
        reports.append(
            GradientReport(
                name: t.name, error: scaledMaxError(picked, numeric),
                accumulationError: scaledMaxError(doubled[ti], twice),
                checkedElements: indices.count,
                detail: describeMismatch(picked, numeric, label: t.name)))
    }
    return reports
}

/// Naive triple-loop row-major GEMM in Double: the reference `gemm` is tested against.
public func naiveGemm(
    transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Double, a: [Double], lda: Int,
    b: [Double], ldb: Int, beta: Double, c: inout [Double], ldc: Int
) {
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0
            for p in 0..<k {
                let aip = transA ? a[p * lda + i] : a[i * lda + p]
                let bpj = transB ? b[j * ldb + p] : b[p * ldb + j]
                s += aip * bpj
            }
            c[i * ldc + j] = alpha * s + (beta == 0 ? 0 : beta * c[i * ldc + j])
        }
    }
}
