// Positional tables for sequences whose length changes between training stages (CLIPA): the fixed
// 2-D sine–cosine code computed for any patch grid, and the resizing of a learned table when a
// checkpoint moves to another grid (bicubic, as OpenCLIP's `resize_pos_embed`) or another text
// length (linear, as CLIPA's `resize_text_pos_embed`).
//
// Tables here are row-major Double arrays: (rows, width). They are built once per stage, never in
// a training step.

import Foundation

public enum PositionalTables {
    /// The fixed 2-D sine–cosine code of a `grid`×`grid` patch grid (CLIPA's JAX `posemb_sincos_2d`,
    /// MoCo v3), (grid², width), patches in row-major order. With x the column and y the row of a
    /// patch and D = width,
    ///
    ///     ω_k = 1 / temperature^(k / (D/4 − 1)),  k = 0 … D/4 − 1
    ///     PE(x, y) = [sin(x·ω), cos(x·ω), sin(y·ω), cos(y·ω)]      (D/4 values each)
    ///
    /// Coordinates are integers, so the same region of an image gets a different code at another
    /// resolution (the table is recomputed for the new grid, not interpolated). The class token's
    /// row is zero and is not part of this table.
    public static func sinCos2D(grid: Int, width: Int, temperature: Double = 10_000) -> [Double] {
        precondition(grid >= 1, "sinCos2D: grid must be ≥ 1, got \(grid)")
        precondition(width % 4 == 0 && width >= 8, "sinCos2D: width must be a multiple of 4 and ≥ 8, got \(width)")
        let quarter = width / 4
        let omega = (0..<quarter).map { 1 / pow(temperature, Double($0) / Double(quarter - 1)) }
        var table = [Double](repeating: 0, count: grid * grid * width)
        for y in 0..<grid {
            for x in 0..<grid {
                let row = (y * grid + x) * width
                for k in 0..<quarter {
                    table[row + k] = sin(Double(x) * omega[k])
                    table[row + quarter + k] = cos(Double(x) * omega[k])
                    table[row + 2 * quarter + k] = sin(Double(y) * omega[k])
                    table[row + 3 * quarter + k] = cos(Double(y) * omega[k])
                }
            }
        }
        return table
    }

    /// Resizes a (from², width) grid table to (to², width) by separable bicubic resampling with
    /// antialiasing, the convention of PyTorch's `F.interpolate(mode: "bicubic", antialias: true,
    /// align_corners: false)` that OpenCLIP and CLIPA use on positional tables:
    ///
    /// - output pixel i samples the input at centre c = (i + ½)·s, s = from/to;
    /// - the cubic kernel (a = −½) is stretched by max(s, 1), so a downscale averages over the
    ///   footprint instead of aliasing;
    /// - input pixels outside the grid are left out and the remaining weights renormalised to sum 1.
    ///
    /// Rows first, then columns (the order does not change the result in exact arithmetic).
    public static func resizeBicubic(_ table: [Double], from: Int, to: Int, width: Int) -> [Double] {
        precondition(table.count == from * from * width, "resizeBicubic: table has \(table.count) values, expected \(from)²·\(width)")
        if from == to { return table }
        let weights = antialiasedCubicWeights(from: from, to: to)
        // Along x: (from, from, W) → (from, to, W).
        var mid = [Double](repeating: 0, count: from * to * width)
        for y in 0..<from {
            for (x, taps) in weights.enumerated() {
                let out = (y * to + x) * width
                for (j, w) in taps {
                    let src = (y * from + j) * width
                    for c in 0..<width { mid[out + c] += w * table[src + c] }
                }
            }
        }
        // Along y: (from, to, W) → (to, to, W).
        var result = [Double](repeating: 0, count: to * to * width)
        for (y, taps) in weights.enumerated() {
            for x in 0..<to {
                let out = (y * to + x) * width
                for (j, w) in taps {
                    let src = (j * to + x) * width
                    for c in 0..<width { result[out + c] += w * mid[src + c] }
                }
            }
        }
        return result
    }

    /// Resizes a (from, width) sequence table to (to, width) by linear interpolation with
    /// `align_corners: false` (PyTorch's `F.interpolate(mode: "linear")`, CLIPA's text table):
    /// output row i reads the input at c = (i + ½)·from/to − ½, clamped to [0, from − 1].
    public static func resizeLinear(_ table: [Double], from: Int, to: Int, width: Int) -> [Double] {
        precondition(table.count == from * width, "resizeLinear: table has \(table.count) values, expected \(from)·\(width)")
        if from == to { return table }
        var result = [Double](repeating: 0, count: to * width)
        let scale = Double(from) / Double(to)
        for i in 0..<to {
            let c = max(0, (Double(i) + 0.5) * scale - 0.5)
            let j0 = min(Int(c), from - 1), j1 = min(j0 + 1, from - 1)
            let t = c - Double(j0)
            for k in 0..<width {
                result[i * width + k] = (1 - t) * table[j0 * width + k] + t * table[j1 * width + k]
            }
        }
        return result
    }

    /// The taps (input index, weight) of each output index of a 1-D antialiased bicubic resize.
    static func antialiasedCubicWeights(from: Int, to: Int) -> [[(Int, Double)]] {
        let scale = Double(from) / Double(to)
        let stretch = max(scale, 1)
        let support = 2 * stretch
        return (0..<to).map { i in
            let centre = (Double(i) + 0.5) * scale
            let lo = max(0, Int((centre - support + 0.5).rounded(.down)))
            let hi = min(from, Int((centre + support + 0.5).rounded(.down)))
            var taps: [(Int, Double)] = []
            var total = 0.0
            for j in lo..<hi {
                let w = cubic((Double(j) - centre + 0.5) / stretch)
                taps.append((j, w))
                total += w
            }
            return taps.map { ($0.0, total != 0 ? $0.1 / total : 0) }
        }
    }

    /// Keys' cubic convolution kernel with a = −½ (the antialiased resampler's choice).
    static func cubic(_ x: Double) -> Double {
        let a = -0.5, t = abs(x)
        if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
        if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
        return 0
    }
}
