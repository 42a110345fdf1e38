// Vector kernels over flat buffers: add, axpy, scale, fill and the reductions (sum, dot) that the
// row-wise kernels build on. Written once generically; the compiler specialises and vectorises
// them for Float and Double.
//
// Dimension vocabulary used in shape comments across ClipLab:
//   B batch, T tokens (text context), P patches (+1 for the class token), C width, H heads,
//   D head width, V vocabulary, E embedding dimension, N global batch across ranks.

/// Minimum elements per thread for the simple vector kernels, so short vectors run inline.
@usableFromInline let vectorGrain = 1 << 15

/// `out[i] = x[i] + y[i]` for i in 0..<count. `out` may alias `x` or `y`.
@inlinable
public func vectorAdd<T: Scalar>(
    _ x: UnsafePointer<T>, _ y: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, count: Int
) {
    Threads.parallelFor(count, grain: vectorGrain) { r in
        for i in r { out[i] = x[i] + y[i] }
    }
}

/// `y[i] += alpha · x[i]` (BLAS axpy) for i in 0..<count.
@inlinable
public func axpy<T: Scalar>(_ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int) {
    Threads.parallelFor(count, grain: vectorGrain) { r in
        for i in r { y[i] += alpha * x[i] }
    }
}

/// `x[i] *= alpha` for i in 0..<count.
@inlinable
public func vectorScale<T: Scalar>(_ alpha: T, _ x: UnsafeMutablePointer<T>, count: Int) {
    Threads.parallelFor(count, grain: vectorGrain) { r in
        for i in r { x[i] *= alpha }
    }
}

/// `out[i] = alpha · x[i]` for i in 0..<count.
@inlinable
public func vectorScale<T: Scalar>(
    _ alpha: T, _ x: UnsafePointer<T>, into out: UnsafeMutablePointer<T>, count: Int
) {
    Threads.parallelFor(count, grain: vectorGrain) { r in
        for i in r { out[i] = alpha * x[i] }
    }
}

/// `x[i] = value` for i in 0..<count.
@inlinable
public func vectorFill<T: Scalar>(_ value: T, _ x: UnsafeMutablePointer<T>, count: Int) {
    Threads.parallelFor(count, grain: vectorGrain) { r in
        (x + r.lowerBound).update(repeating: value, count: r.count)
    }
}

/// Σ x[i], accumulated in 16 SIMD lanes (so the order of additions, and hence the rounding, is
/// fixed for a given count).
@inlinable
public func vectorSum<T: Scalar>(_ x: UnsafePointer<T>, count: Int) -> T {
    let raw = UnsafeRawPointer(x)
    var a0 = SIMD8<T>(), a1 = SIMD8<T>()
    var i = 0
    let stride = MemoryLayout<T>.stride
    while i + 16 <= count {
        a0 += raw.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<T>.self)
        a1 += raw.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<T>.self)
        i += 16
    }
    var s = (a0 + a1).sum()
    while i < count { s += x[i]; i += 1 }
    return s
}

/// Σ x[i]·y[i], accumulated in 16 SIMD lanes.
@inlinable
public func dot<T: Scalar>(_ x: UnsafePointer<T>, _ y: UnsafePointer<T>, count: Int) -> T {
    let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
    var a0 = SIMD8<T>(), a1 = SIMD8<T>()
    var i = 0
    let stride = MemoryLayout<T>.stride
    while i + 16 <= count {
        a0 += rx.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<T>.self)
            * ry.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<T>.self)
        a1 += rx.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<T>.self)
            * ry.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<T>.self)
        i += 16
    }
    var s = (a0 + a1).sum()
    while i < count { s += x[i] * y[i]; i += 1 }
    return s
}

/// Σ (x[i] − shift)², accumulated in 16 SIMD lanes.
@inlinable
public func sumOfSquaredDeviations<T: Scalar>(_ x: UnsafePointer<T>, shift: T, count: Int) -> T {
    let rx = UnsafeRawPointer(x)
    let m = SIMD8<T>(repeating: shift)
    var a0 = SIMD8<T>(), a1 = SIMD8<T>()
    var i = 0
    let stride = MemoryLayout<T>.stride
    while i + 16 <= count {
        let d0 = rx.loadUnaligned(fromByteOffset: i * stride, as: SIMD8<T>.self) - m
        let d1 = rx.loadUnaligned(fromByteOffset: (i + 8) * stride, as: SIMD8<T>.self) - m
        a0 += d0 * d0
        a1 += d1 * d1
        i += 16
    }
    var s = (a0 + a1).sum()
    while i < count { let d = x[i] - shift; s += d * d; i += 1 }
    return s
}

/// Adds the row vector `bias` (C) to every row of `x` (rows, C), in place.
@inlinable
public func addBiasRows<T: Scalar>(_ x: UnsafeMutablePointer<T>, bias: UnsafePointer<T>, rows: Int, width: Int) {
    Threads.parallelFor(rows, grain: max(1, vectorGrain / max(1, width))) { r in
        for row in r {
            let p = x + row * width
            for j in 0..<width { p[j] += bias[j] }
        }
    }
}

/// Adds the column sums of `dy` (rows, C) into `dbias` (C): the bias gradient of a linear layer.
@inlinable
public func accumulateColumnSums<T: Scalar>(
    _ dy: UnsafePointer<T>, into dbias: UnsafeMutablePointer<T>, rows: Int, width: Int
) {
    for row in 0..<rows {
        let p = dy + row * width
        for j in 0..<width { dbias[j] += p[j] }
    }
}

/// Whether all `count` floats at `x` are finite: Σᵢ (xᵢ − xᵢ) is exactly 0 when every xᵢ is finite
/// and NaN when any is NaN or ±∞ (one vectorised pass; the divergence guard runs it on the
/// gradients every step).
@inlinable
public func allFinite(_ x: UnsafePointer<Float>, count: Int) -> Bool {
    var acc = SIMD16<Float>()
    let raw = UnsafeRawPointer(x)
    var i = 0
    while i + 16 <= count {
        let v = raw.loadUnaligned(fromByteOffset: 4 * i, as: SIMD16<Float>.self)
        acc += v - v
        i += 16
    }
    var tail: Float = 0
    while i < count {
        tail += x[i] - x[i]
        i += 1
    }
    return acc.sum() + tail == 0
}
