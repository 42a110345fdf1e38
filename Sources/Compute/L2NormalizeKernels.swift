// Row-wise L2 normalisation, as `torch.nn.functional.normalize(x, dim=-1)`:
//   y = x / max(‖x‖, ε),   backward  dx = (dy − y·⟨y, dy⟩) / ‖x‖   (when ‖x‖ > ε, else dy/ε).

/// Normalises each row of `x` to unit L2 norm.
///
/// - x, y: (rows, cols); norms: (rows) cache of ‖x_row‖ for the backward pass.
@inlinable
public func l2NormalizeForward<T: Scalar>(
    _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, norms: UnsafeMutablePointer<T>,
    rows: Int, cols: Int, epsilon: T = T(1e-12)
) {
    Threads.parallelFor(rows, grain: max(1, 8192 / max(1, cols))) { range in
        for row in range {
            let xr = x + row * cols, yr = y + row * cols
            let n = dot(xr, xr, count: cols).squareRoot()
            norms[row] = n
            let inv = 1 / max(n, epsilon)
            for j in 0..<cols { yr[j] = xr[j] * inv }
        }
    }
}

/// Accumulates the input gradient of `l2NormalizeForward` into `dx`.
///
/// - dy: (rows, cols) gradient of y; y: (rows, cols) the forward output; norms: (rows) its cache.
@inlinable
public func l2NormalizeBackward<T: Scalar>(
    _ dy: UnsafePointer<T>, y: UnsafePointer<T>, norms: UnsafePointer<T>,
    dx: UnsafeMutablePointer<T>, rows: Int, cols: Int, epsilon: T = T(1e-12)
) {
    Threads.parallelFor(rows, grain: max(1, 8192 / max(1, cols))) { range in
        for row in range {
            let dyr = dy + row * cols, yr = y + row * cols, dxr = dx + row * cols
            let n = norms[row]
            if n > epsilon {
                let s = dot(yr, dyr, count: cols)
                let inv = 1 / n
                for j in 0..<cols { dxr[j] += (dyr[j] - yr[j] * s) * inv }
            } else {
                let inv = 1 / epsilon
                for j in 0..<cols { dxr[j] += dyr[j] * inv }
            }
        }
    }
}
