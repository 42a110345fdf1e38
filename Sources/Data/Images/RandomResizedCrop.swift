// OpenCLIP's training transform for real images, without the normalisation: torchvision's
// `RandomResizedCrop(size, scale=(0.9, 1.0), ratio=(3/4, 4/3), interpolation=BICUBIC)`, drawn
// from a counter-based generator so that a sample's crop depends only on (seed, epoch, index)
// and a resumed or data-parallel run crops exactly as an unbroken single-process one.

import Compute
import Foundation

/// A crop box in pixels of the source image.
public struct CropBox: Sendable, Hashable {
    public let left: Int, top: Int, width: Int, height: Int
    public init(left: Int, top: Int, width: Int, height: Int) {
        self.left = left
        self.top = top
        self.width = width
        self.height = height
    }
}

/// The parameters of a random-resized crop (OpenCLIP's training defaults).
public struct RandomResizedCrop: Sendable, Hashable {
    /// The crop's area as a fraction of the image's, drawn uniformly (OpenCLIP: 0.9 … 1.0).
    public var scale: ClosedRange<Double>
    /// The crop's aspect ratio w/h, drawn log-uniformly (torchvision: 3/4 … 4/3).
    public var ratio: ClosedRange<Double>

    public init(scale: ClosedRange<Double> = 0.9...1.0, ratio: ClosedRange<Double> = (3.0 / 4.0)...(4.0 / 3.0)) {
        self.scale = scale
        self.ratio = ratio
    }

    /// The box torchvision's algorithm picks for a `width`×`height` image, with its random
    /// numbers from `rng` at counters `counter·16 …`: up to 10 attempts of area
    /// `A·U(scale)` and ratio `exp(U(log ratio))`, w = round(√(area·ratio)), h = round(√(area/ratio)),
    /// accepted when it fits, at a uniform position; otherwise the largest centred box whose ratio
    /// is clamped into `ratio`.
    public func box(width: Int, height: Int, rng: CounterRNG, counter: UInt64) -> CropBox {
        let area = Double(width * height)
        let logLow = Foundation.log(ratio.lowerBound), logHigh = Foundation.log(ratio.upperBound)
        for attempt in 0..<10 {
            let base = counter &* 16 &+ UInt64(attempt) &* 2
            let (u1, u2) = rng.uniformPair(at: base)
            let (u3, u4) = rng.uniformPair(at: base &+ 1)
            let target = area * (scale.lowerBound + u1 * (scale.upperBound - scale.lowerBound))
            let aspect = Foundation.exp(logLow + u2 * (logHigh - logLow))
            let w = Int((target * aspect).squareRoot().rounded(.toNearestOrEven))
            let h = Int((target / aspect).squareRoot().rounded(.toNearestOrEven))
            if w > 0 && h > 0 && w <= width && h <= height {
                let top = min(height - h, Int(u3 * Double(height - h + 1)))
                let left = min(width - w, Int(u4 * Double(width - w + 1)))
                return CropBox(left: left, top: top, width: w, height: h)
            }
        }
        // Fallback: a centred crop of the whole image, its ratio clamped.
        let inRatio = Double(width) / Double(height)
        var w = width, h = height
        if inRatio < ratio.lowerBound {
            h = Int((Double(w) / ratio.lowerBound).rounded(.toNearestOrEven))
        } else if inRatio > ratio.upperBound {
            w = Int((Double(h) * ratio.upperBound).rounded(.toNearestOrEven))
        }
        return CropBox(left: (width - w) / 2, top: (height - h) / 2, width: w, height: h)
    }
}

/// Resizes the `box` of `image` to size×size (bicubic, antialiased when shrinking, as PIL's
/// `resize` after `crop`) and writes it as (3, S, S) channel-major Float in [0, 1].
public func preprocessCrop(_ image: RGBImage, box: CropBox, size: Int, into pixels: UnsafeMutablePointer<Float>) {
    precondition(size > 0, "preprocessCrop: size must be > 0, got \(size)")
    precondition(box.width > 0 && box.height > 0 && box.left >= 0 && box.top >= 0
                 && box.left + box.width <= image.width && box.top + box.height <= image.height,
                 "preprocessCrop: box \(box) outside the \(image.width)×\(image.height) image")
    let columns = BicubicWeights(input: box.width, output: size, range: 0..<size)
    let rows = BicubicWeights(input: box.height, output: size, range: 0..<size)
    resample(image, columns: columns, rows: rows, originX: box.left, originY: box.top, size: size, into: pixels)
}
