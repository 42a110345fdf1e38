// LayerNorm over the last dimension, forward and backward (llm.c's formulation).
//
// For one row x of width C:
//   μ = Σx/C,  σ² = Σ(x−μ)²/C,  r = 1/√(σ² + ε),  x̂ = (x−μ)·r,  y = x̂·w + b.
// Backward, with g = dy·w:
//   dx = r·(g − mean(g) − x̂·mean(g·x̂)),  dw = Σ_rows dy·x̂,  db = Σ_rows dy.

/// LayerNorm forward over `rows` rows of width `width`.
///
/// - x: (rows, C) input; y: (rows, C) output (may not alias x).
/// - weight, bias: (C).
/// - mean, rstd: (rows) cache written for the backward pass.
@inlinable
public func layerNormForward<T: Scalar>(
    _ x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
    _ y: UnsafeMutablePointer<T>, mean: UnsafeMutablePointer<T>, rstd: UnsafeMutablePointer<T>,
    rows: Int, width: Int, epsilon: T = T(1e-5)
) {
    let c = width
    Threads.parallelFor(rows, grain: max(1, 8192 / max(1, c))) { range in
        for row in range {
            let xr = x + row * c
            let yr = y + row * c
            let mu = vectorSum(xr, count: c) / T(c)
            let variance = sumOfSquaredDeviations(xr, shift: mu, count: c) / T(c)
            let r = 1 / (variance + epsilon).squareRoot()
            for j in 0..<c { yr[j] = (xr[j] - mu) * r * weight[j] + bias[j] }
            mean[row] = mu
            rstd[row] = r
        }
    }
}

/// LayerNorm backward: accumulates into `dx` (rows, C), `dweight` (C) and `dbias` (C).
///
/// - dy: (rows, C) gradient of the output; x: (rows, C) the forward input;
///   mean, rstd: (rows) the forward cache.
@inlinable
public func layerNormBackward<T: Scalar>(
    _ dy: UnsafePointer<T>, x: UnsafePointer<T>, weight: UnsafePointer<T>,
    mean: UnsafePointer<T>, rstd: UnsafePointer<T>,
    dx: UnsafeMutablePointer<T>, dweight: UnsafeMutablePointer<T>, dbias: UnsafeMutablePointer<T>,
    rows: Int, width: Int
) {
    let c = width
    // Input gradient: rows are independent.
    Threads.parallelFor(rows, grain: max(1, 8192 / max(1, c))) { range in
        for row in range {
            let xr = x + row * c, dyr = dy + row * c, dxr = dx + row * c
            let mu = mean[row], r = rstd[row]
            var sumG: T = 0, sumGX: T = 0
            for j in 0..<c {
                let g = dyr[j] * weight[j]
                sumG += g
                sumGX += g * (xr[j] - mu) * r
            }
            let meanG = sumG / T(c), meanGX = sumGX / T(c)
            for j in 0..<c {
                let xhat = (xr[j] - mu) * r
                dxr[j] += r * (dyr[j] * weight[j] - meanG - xhat * meanGX)
            }
        }
    }
    // Parameter gradients: a reduction over rows, vectorised across the width.
    for row in 0..<rows {
        let xr = x + row * c, dyr = dy + row * c
        let mu = mean[row], r = rstd[row]
        for j in 0..<c {
            dweight[j] += dyr[j] * (xr[j] - mu) * r
            dbias[j] += dyr[j]
        }
    }
}
