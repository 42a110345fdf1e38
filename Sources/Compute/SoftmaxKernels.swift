import RealModule

// Row softmax (with an optional causal mask and a logit scale), its backward pass, and the
// row-wise log-sum-exp. All subtract the row maximum first, so exp never overflows.

/// Softmax of each row of `scale · x`, written to `y`.
///
/// - x, y: (rows, cols); `y` may alias `x`.
/// - causal: when true the rows are read as consecutive (cols × cols) blocks of attention scores,
///   and in block row i (i = row mod cols) only columns 0…i take part; masked entries of y are 0.
///   This is the causal mask OpenCLIP's text tower uses (−inf above the diagonal).
@inlinable
public func softmaxRowsForward<T: Scalar>(
    _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, rows: Int, cols: Int,
    scale: T = 1, causal: Bool = false
) {
    Threads.parallelFor(rows, grain: max(1, 4096 / max(1, cols))) { range in
        for row in range {
            let xr = x + row * cols, yr = y + row * cols
            let valid = causal ? (row % cols) + 1 : cols
            var mx = xr[0]
            for j in 1..<max(1, valid) where xr[j] > mx { mx = xr[j] }
            var sum: T = 0
            var j0 = 0
            if T.self == Float.self {
                // Eight lanes at a time through exp8; the tail below handles the rest.
                let xf = UnsafeRawPointer(xr).assumingMemoryBound(to: Float.self)
                let yf = UnsafeMutableRawPointer(yr).assumingMemoryBound(to: Float.self)
                let m = Float8(repeating: Float(mx)), sc = Float8(repeating: Float(scale))
                var acc = Float8()
                while j0 + 8 <= valid {
                    let e = exp8(sc * (load8(xf + j0) - m))
                    store8(e, yf + j0)
                    acc += e
                    j0 += 8
                }
                sum = T(acc.sum())
            }
            for j in j0..<valid {
                let e = T.exp(scale * (xr[j] - mx))
                yr[j] = e
                sum += e
            }
            let inv = 1 / sum
            for j in 0..<valid { yr[j] *= inv }
            for j in valid..<cols { yr[j] = 0 }
        }
    }
}

/// Softmax backward, in place: on entry `g` holds dL/dy, on return it holds dL/dx, where
/// y = softmax(scale·x) is the forward output:
///   dx_j = scale · y_j · (g_j − Σ_k g_k·y_k).
/// Masked entries (y = 0) come out 0. In-place transforms overwrite; they do not accumulate.
@inlinable
public func softmaxRowsBackwardInPlace<T: Scalar>(
    _ g: UnsafeMutablePointer<T>, y: UnsafePointer<T>, rows: Int, cols: Int, scale: T = 1
) {
    Threads.parallelFor(rows, grain: max(1, 4096 / max(1, cols))) { range in
        for row in range {
            let gr = g + row * cols, yr = y + row * cols
            let s = dot(UnsafePointer(gr), yr, count: cols)
            for j in 0..<cols { gr[j] = scale * yr[j] * (gr[j] - s) }
        }
    }
}

/// `out[row] = log Σ_j exp(x[row, j])`, computed as max + log Σ exp(x − max).
///
/// - x: (rows, cols); out: (rows).
@inlinable
public func logSumExpRows<T: Scalar>(_ x: UnsafePointer<T>, _ out: UnsafeMutablePointer<T>, rows: Int, cols: Int) {
    Threads.parallelFor(rows, grain: max(1, 4096 / max(1, cols))) { range in
        for row in range {
            let xr = x + row * cols
            var mx = xr[0]
            for j in 1..<max(1, cols) where xr[j] > mx { mx = xr[j] }
            var sum: T = 0
            for j in 0..<cols { sum += T.exp(xr[j] - mx) }
            out[row] = mx + T.log(sum)
        }
    }
}
