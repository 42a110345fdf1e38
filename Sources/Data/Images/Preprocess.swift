// OpenCLIP's evaluation transform for real images, without the normalisation: resize so the shorter
// side is `size` with bicubic interpolation, centre-crop size×size, to channel-major floats in
// [0, 1]. The resize follows the definition PIL uses (and so torchvision's Resize on PIL images,
// and OpenCLIP): Keys' cubic with a = −0.5, a separable filter whose support is widened by the
// reduction factor when shrinking (anti-aliasing), weights normalised to sum 1 at the borders.
// Unlike PIL, the intermediate result between the horizontal and vertical passes stays in Float
// instead of being rounded to 8 bits, so values can differ from PIL's by about 1/255.

/// Resizes `image` so its shorter side is `size` (bicubic, antialiased when shrinking), takes the
/// centre size×size crop, and writes it to `pixels` as (3, S, S) channel-major Float in [0, 1].
///
/// The longer side becomes ⌊size · long / short⌋ and the crop starts at round((new − size) / 2)
/// (ties to even), as torchvision's `Resize(size)` + `CenterCrop(size)` compute them.
public func preprocess(_ image: RGBImage, size: Int, into pixels: UnsafeMutablePointer<Float>) {
    precondition(size > 0, "preprocess: size must be > 0, got \(size)")
    precondition(image.width > 0 && image.height > 0, "preprocess: empty \(image.width)×\(image.height) image")
    let w = image.width, h = image.height
    let (newW, newH) = w <= h
        ? (size, max(size, Int(Double(size) * Double(h) / Double(w))))
        : (max(size, Int(Double(size) * Double(w) / Double(h))), size)
    let left = Int((Double(newW - size) / 2).rounded(.toNearestOrEven))
    let top = Int((Double(newH - size) / 2).rounded(.toNearestOrEven))
    let columns = BicubicWeights(input: w, output: newW, range: left..<(left + size))
    let rows = BicubicWeights(input: h, output: newH, range: top..<(top + size))

    resample(image, columns: columns, rows: rows, originX: 0, originY: 0, size: size, into: pixels)
}

/// The separable two-pass resample both transforms share: output (x, y) of the size×size result is
/// Σₜ rows.weights[y, t] · Σᵤ columns.weights[x, u] · image(originX + columns.first[x] + u,
/// originY + rows.first[y] + t), scaled to [0, 1], clamped, written channel-major. The horizontal
/// pass runs only over the input rows the vertical pass reads.
func resample(
    _ image: RGBImage, columns: BicubicWeights, rows: BicubicWeights, originX: Int, originY: Int, size: Int,
    into pixels: UnsafeMutablePointer<Float>
) {
    let w = image.width
    // Horizontal pass over the input rows the vertical pass needs: (rowsNeeded, size, 3).
    let firstRow = rows.first.min() ?? 0
    let lastRow = zip(rows.first, rows.taps).map { $0 + $1 }.max() ?? 0
    let band = lastRow - firstRow
    var horizontal = [Float](repeating: 0, count: band * size * 3)
    let cw = columns.weights, cf = columns.first, ct = columns.taps, cs = columns.stride
    let rw = rows.weights, rf = rows.first, rt = rows.taps, rs = rows.stride
    image.pixels.withUnsafeBufferPointer { src in
        horizontal.withUnsafeMutableBufferPointer { dst in
            cw.withUnsafeBufferPointer { cw in
                for y in 0..<band {
                    let row = src.baseAddress! + ((originY + firstRow + y) * w + originX) * 3
                    for x in 0..<size {
                        var r: Float = 0, g: Float = 0, b: Float = 0
                        let p = row + 3 * cf[x]
                        let weights = cw.baseAddress! + x * cs
                        for t in 0..<ct[x] {
                            let weight = weights[t]
                            r += weight * Float(p[3 * t])
                            g += weight * Float(p[3 * t + 1])
                            b += weight * Float(p[3 * t + 2])
                        }
                        let o = (y * size + x) * 3
                        dst[o] = r
                        dst[o + 1] = g
                        dst[o + 2] = b
                    }
                }
            }
        }
    }
    // Vertical pass into the channel planes, scaled to [0, 1] and clamped.
    let plane = size * size
    horizontal.withUnsafeBufferPointer { src in
        rw.withUnsafeBufferPointer { rw in
            for y in 0..<size {
                let start = src.baseAddress! + (rf[y] - firstRow) * size * 3
                let weights = rw.baseAddress! + y * rs
                let taps = rt[y]
                for x in 0..<size {
                    var r: Float = 0, g: Float = 0, b: Float = 0
                    let column = start + 3 * x
                    for t in 0..<taps {
                        let weight = weights[t]
                        let q = column + t * size * 3
                        r += weight * q[0]
                        g += weight * q[1]
                        b += weight * q[2]
                    }
                    let k = y * size + x
                    pixels[k] = min(max(r / 255, 0), 1)
                    pixels[plane + k] = min(max(g / 255, 0), 1)
                    pixels[2 * plane + k] = min(max(b / 255, 0), 1)
                }
            }
        }
    }
}

/// Keys' cubic convolution kernel with a = −0.5 (PIL's and torchvision's BICUBIC).
@inline(__always)
func bicubicKernel(_ x: Double) -> Double {
    let a = -0.5
    let t = abs(x)
    if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
    if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
    return 0
}

/// The taps of a 1-D bicubic resize from `input` to `output` samples, for the output samples in
/// `range`: output j (relative to range) reads input `first[j] ..< first[j] + taps[j]` with
/// `weights[j·stride + t]`.
struct BicubicWeights {
    var first: [Int] = []
    var taps: [Int] = []
    var weights: [Float] = []
    var stride = 0

    init(input: Int, output: Int, range: Range<Int>) {
        let scale = Double(input) / Double(output)
        let filterScale = max(scale, 1)  // widen the kernel when shrinking
        let support = 2 * filterScale
        stride = Int(support.rounded(.up)) * 2 + 1
        weights = [Float](repeating: 0, count: range.count * stride)
        for (j, i) in range.enumerated() {
            let centre = (Double(i) + 0.5) * scale
            let lo = max(Int((centre - support + 0.5).rounded(.down)), 0)
            let hi = min(Int((centre + support + 0.5).rounded(.down)), input)
            var sum: Double = 0
            var local: [Double] = []
            for k in lo..<max(hi, lo + 1) where k < input {
                let wgt = bicubicKernel((Double(k) + 0.5 - centre) / filterScale)
                local.append(wgt)
                sum += wgt
            }
            first.append(lo)
            taps.append(local.count)
            for (t, wgt) in local.enumerated() {
                weights[j * stride + t] = Float(sum != 0 ? wgt / sum : (t == 0 ? 1 : 0))
            }
        }
    }
}
