import CKernels
import RealModule

// GELU activation, exact (erf) and tanh-approximated, with derivatives.
//
//   exact: gelu(x) = ½·x·(1 + erf(x/√2)),      gelu'(x) = ½·(1 + erf(x/√2)) + x·φ(x),
//          φ(x) = exp(−x²/2)/√(2π)
//   tanh:  gelu(x) = ½·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³),
//          gelu'(x) = ½·(1 + tanh u) + ½·x·(1 − tanh²u)·√(2/π)·(1 + 3·0.044715·x²)
//
// OpenCLIP's ViT blocks use the exact form (`nn.GELU()`), which is ClipLab's default.

/// Which GELU formula a layer uses.
public enum GELUApproximation: String, Sendable, Codable, CaseIterable {
    /// ½·x·(1 + erf(x/√2)) — PyTorch's `nn.GELU()` default and OpenCLIP's choice.
    case exact
    /// ½·x·(1 + tanh(√(2/π)(x + 0.044715x³))) — `nn.GELU(approximate="tanh")`.
    case tanh
}

@usableFromInline let activationGrain = 1 << 13

/// The value of GELU at one point.
@inlinable
public func gelu<T: Scalar>(_ x: T, _ approximation: GELUApproximation) -> T {
    switch approximation {
    case .exact:
        return T(1) / 2 * x * (1 + T.erf(x * T(0.70710678118654752440)))
    case .tanh:
        let u = T(0.79788456080286535588) * (x + T(0.044715) * x * x * x)
        return T(1) / 2 * x * (1 + T.tanh(u))
    }
}

/// The derivative of GELU at one point.
@inlinable
public func geluDerivative<T: Scalar>(_ x: T, _ approximation: GELUApproximation) -> T {
    switch approximation {
    case .exact:
        let cdf = T(1) / 2 * (1 + T.erf(x * T(0.70710678118654752440)))
        let pdf = T.exp(-x * x / 2) * T(0.39894228040143267794)
        return cdf + x * pdf
    case .tanh:
        let c = T(0.79788456080286535588)
        let u = c * (x + T(0.044715) * x * x * x)
        let t = T.tanh(u)
        return T(1) / 2 * (1 + t) + T(1) / 2 * x * (1 - t * t) * c * (1 + 3 * T(0.044715) * x * x)
    }
}

/// `y[i] = gelu(x[i])` for i in 0..<count. `y` may alias `x`.
@inlinable
public func geluForward<T: Scalar>(
    _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int,
    approximation: GELUApproximation = .exact
) {
    if T.self == Float.self {
        let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
        let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
        if VectorISA.current != .portable {
            Threads.parallelFor(count, grain: activationGrain) { r in
                vectorGELUForward(
                    UnsafeMutablePointer(mutating: xf + r.lowerBound), bias: nil, yf + r.lowerBound,
                    rows: 1, width: r.count, approximation)
            }
            return
        }
        Threads.parallelFor(count, grain: activationGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                store8(gelu8(load8(xf + i), approximation).value, yf + i)
                i += 8
            }
            while i < r.upperBound { yf[i] = gelu(xf[i], approximation); i += 1 }
        }
        return
    }
    Threads.parallelFor(count, grain: activationGrain) { r in
        for i in r { y[i] = gelu(x[i], approximation) }
    }
}

/// Accumulates `dx[i] += gelu'(x[i]) · dy[i]`, where `x` is the forward input.
@inlinable
public func geluBackward<T: Scalar>(
    _ dy: UnsafePointer<T>, x: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, count: Int,
    approximation: GELUApproximation = .exact
) {
    if T.self == Float.self {
        let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
        let gf = UnsafeRawPointer(dy).assumingMemoryBound(to: Float.self)
        let df = UnsafeMutableRawPointer(dx).assumingMemoryBound(to: Float.self)
        Threads.parallelFor(count, grain: activationGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                store8(load8(df + i) + gelu8(load8(xf + i), approximation).derivative * load8(gf + i), df + i)
                i += 8
            }
            while i < r.upperBound { df[i] += geluDerivative(xf[i], approximation) * gf[i]; i += 1 }
        }
        return
    }
    Threads.parallelFor(count, grain: activationGrain) { r in
        for i in r { dx[i] += geluDerivative(x[i], approximation) * dy[i] }
    }
}

/// GELU backward, in place: on entry `g` holds dL/dy, on return dL/dx = gelu'(x)·g, where `x` is
/// the forward input. In-place transforms overwrite; they do not accumulate.
@inlinable
public func geluBackwardInPlace<T: Scalar>(
    _ g: UnsafeMutablePointer<T>, x: UnsafePointer<T>, count: Int,
    approximation: GELUApproximation = .exact
) {
    if T.self == Float.self {
        let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
        let gf = UnsafeMutableRawPointer(g).assumingMemoryBound(to: Float.self)
        if VectorISA.current != .portable {
            Threads.parallelFor(count, grain: activationGrain) { r in
                vectorGELUBackwardInPlace(gf + r.lowerBound, x: xf + r.lowerBound, count: r.count, approximation)
            }
            return
        }
        Threads.parallelFor(count, grain: activationGrain) { r in
            var i = r.lowerBound
            while i + 8 <= r.upperBound {
                store8(load8(gf + i) * gelu8(load8(xf + i), approximation).derivative, gf + i)
                i += 8
            }
            while i < r.upperBound { gf[i] *= geluDerivative(xf[i], approximation); i += 1 }
        }
        return
    }
    Threads.parallelFor(count, grain: activationGrain) { r in
        for i in r { g[i] *= geluDerivative(x[i], approximation) }
    }
}

/// The C kernel for the current `VectorISA` (never `.portable`): see `cliplab_gelu_forward_*`.
@inlinable
func vectorGELUForward(
    _ pre: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, _ out: UnsafeMutablePointer<Float>,
    rows: Int, width: Int, _ approximation: GELUApproximation
) {
    let tanh: Int32 = approximation == .tanh ? 1 : 0
    if VectorISA.current == .avx512 {
        cliplab_gelu_forward_avx512(pre, bias, out, rows, width, tanh)
    } else {
        cliplab_gelu_forward_avx2(pre, bias, out, rows, width, tanh)
    }
}

/// The C kernel for the current `VectorISA` (never `.portable`): see `cliplab_gelu_backward_inplace_*`.
@inlinable
func vectorGELUBackwardInPlace(
    _ g: UnsafeMutablePointer<Float>, x: UnsafePointer<Float>, count: Int, _ approximation: GELUApproximation
) {
    let tanh: Int32 = approximation == .tanh ? 1 : 0
    if VectorISA.current == .avx512 {
        cliplab_gelu_backward_inplace_avx512(g, x, count, tanh)
    } else {
        cliplab_gelu_backward_inplace_avx2(g, x, count, tanh)
    }
}

/// A linear layer's bias add fused with the GELU that follows it, one pass over the rows:
/// `pre[r, j] += bias[j]`, then `out[r, j] = gelu(pre[r, j])`. `pre` keeps the biased
/// pre-activation for the backward pass.
/// - pre: (rows, width), updated in place; bias: (width); out: (rows, width), overwritten.
@inlinable
public func biasGELUForward<T: Scalar>(
    _ pre: UnsafeMutablePointer<T>, bias: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>,
    rows: Int, width: Int, approximation: GELUApproximation = .exact
) {
    if T.self == Float.self && VectorISA.current != .portable {
        let pf = UnsafeMutableRawPointer(pre).assumingMemoryBound(to: Float.self)
        let bf = UnsafeRawPointer(bias).assumingMemoryBound(to: Float.self)
        let of = UnsafeMutableRawPointer(out).assumingMemoryBound(to: Float.self)
        Threads.parallelFor(rows, grain: max(1, activationGrain / max(1, width))) { r in
            vectorGELUForward(pf + r.lowerBound * width, bias: bf, of + r.lowerBound * width, rows: r.count, width: width, approximation)
        }
        return
    }
    addBiasRows(pre, bias: bias, rows: rows, width: width)
    geluForward(UnsafePointer(pre), out, count: rows * width, approximation: approximation)
}
