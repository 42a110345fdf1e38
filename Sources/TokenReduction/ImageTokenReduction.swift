// CLIPA's image token reduction (§A3 of the spec): which patches of a g×g grid an image keeps in a
// training stage. Masking drops tokens after the positional embedding is added and before the
// encoder, so the encoder runs on the short sequence (the class token is always kept); resizing
// keeps every patch of a smaller image.
//
//   strategy   kept patches of a g×g grid                    matched to a resize of S → S·√(1−r)
//   resize     all (g′)² of the smaller image               —
//   random     ⌊g²·(1−r)⌋, uniformly without replacement     r = mask ratio
//   grid       one per k×k window: (g/k)²                   r = 1 − 1/k²
//   block      one h×w rectangle, h·w = ⌊g²·(1−r)⌋, h ≤ w    r = mask ratio
//
// Draws are keyed by (seed, epoch, sample index), so a resumed run masks exactly as an unbroken one.

import Compute

/// Where grid masking puts its kept patch inside each k×k window. The spec leaves this UNSURE:
/// the paper's figure shows a regular pattern, which suggests one offset shared by all windows of
/// an image; whether that offset is fixed or drawn per image is not stated.
public enum GridMaskOffset: String, Sendable, Hashable, Codable, CaseIterable {
    /// The top-left patch of every window, for every image.
    case fixed
    /// One offset drawn per image and shared by all its windows (the default: the regular
    /// pattern of the figure, while every position is still seen across images).
    case image
    /// An offset drawn independently for every window.
    case window
}

/// How a training stage reduces the image tokens.
public enum ImageTokenReduction: Sendable, Hashable {
    /// Every patch of the full image.
    case none
    /// The image itself is `imageSize` pixels (a multiple of the patch size); every patch kept.
    case resize(imageSize: Int)
    /// FLIP-style random masking: drop the fraction `ratio` of the patches, uniformly per image,
    /// keeping ⌊g²·(1 − ratio)⌋ (OpenCLIP's `int()`).
    case random(ratio: Double)
    /// Keep one patch per `window`×`window` window (the fraction dropped is 1 − 1/window²).
    case grid(window: Int, offset: GridMaskOffset)
    /// Keep one contiguous rectangle of ⌊g²·(1 − ratio)⌋ patches at a uniform place. The spec's
    /// figure shows a square block; counts that are not squares (half of an 8×8 grid) take the
    /// squarest rectangle, transposed with probability ½. Placement is uniform (UNSURE in the spec).
    case block(ratio: Double)

    /// Parses the command-line form: `none`, `resize:PIXELS`, `random:RATIO`, `grid:K[:fixed|image|window]`
    /// or `block:RATIO`, where RATIO is the fraction of patches dropped, in [0, 1).
    public init(parsing text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func fail(_ why: String) -> TokenReductionError {
            TokenReductionError("image token reduction '\(text)': \(why); expected none, resize:PIXELS, random:RATIO, grid:K[:fixed|image|window] or block:RATIO (RATIO = fraction of patches dropped, in [0, 1))")
        }
        func ratio() throws -> Double {
            guard parts.count == 2, let r = Double(parts[1]), r >= 0, r < 1 else { throw fail("RATIO must be a number in [0, 1)") }
            return r
        }
        switch parts[0] {
        case "none" where parts.count == 1: self = .none
        case "resize":
            guard parts.count == 2, let s = Int(parts[1]), s > 0 else { throw fail("PIXELS must be a positive integer") }
            self = .resize(imageSize: s)
        case "random": self = .random(ratio: try ratio())
        case "block": self = .block(ratio: try ratio())
        case "grid":
            guard (2...3).contains(parts.count), let k = Int(parts[1]), k >= 1 else { throw fail("K must be a positive integer") }
            var offset = GridMaskOffset.image
            if parts.count == 3 {
                guard let o = GridMaskOffset(rawValue: parts[2]) else { throw fail("the grid offset must be fixed, image or window") }
                offset = o
            }
            self = .grid(window: k, offset: offset)
        default: throw fail("unknown strategy")
        }
    }

    /// The command-line form (parses back to the same value).
    public var name: String {
        switch self {
        case .none: return "none"
        case .resize(let s): return "resize:\(s)"
        case .random(let r): return "random:\(r)"
        case .grid(let k, let o): return "grid:\(k):\(o.rawValue)"
        case .block(let r): return "block:\(r)"
        }
    }

    /// Whether the encoder sees a subset of the patches of a full-size image (and so needs the
    /// kept indices of every image).
    public var masks: Bool {
        switch self {
        case .random, .grid, .block: return true
        case .none, .resize: return false
        }
    }

    /// The image size the stage trains on for a model of `imageSize` pixels.
    public func trainingImageSize(modelImageSize: Int) -> Int {
        if case .resize(let s) = self { return s }
        return modelImageSize
    }

    /// The kept patches per image of a `grid`×`grid` image (the full grid for `none` and `resize`,
    /// whose grid is the resized one). Throws when the strategy cannot be laid on the grid.
    public func keptPatches(grid g: Int) throws -> Int {
        let n = g * g
        switch self {
        case .none, .resize: return n
        case .random(let r):
            let keep = Int((Double(n) * (1 - r)).rounded(.down))
            guard keep >= 1 else { throw TokenReductionError("image token reduction \(name): keeps no patch of a \(g)×\(g) grid") }
            return keep
        case .grid(let k, _):
            guard g % k == 0 else { throw TokenReductionError("image token reduction \(name): window \(k) does not divide the \(g)×\(g) patch grid") }
            return (g / k) * (g / k)
        case .block:
            return try blockShape(grid: g).rows * blockShape(grid: g).columns
        }
    }

    /// The rectangle of block masking: h×w = ⌊g²·(1 − ratio)⌋ with h ≤ w ≤ g, as square as possible.
    public func blockShape(grid g: Int) throws -> (rows: Int, columns: Int) {
        guard case .block(let r) = self else { return (g, g) }
        let keep = Int((Double(g * g) * (1 - r)).rounded(.down))
        var best: (Int, Int)?
        for h in stride(from: 1, through: g, by: 1) where keep % h == 0 {
            let w = keep / h
            if h <= w && w <= g { best = (h, w) }  // the last such h is the squarest
        }
        guard keep >= 1, let (h, w) = best else {
            let fits = (1...(g * g)).filter { k in (1...g).contains { h in k % h == 0 && k / h <= g && h <= k / h } }
            let near = fits.min { abs($0 - keep) < abs($1 - keep) } ?? 1
            throw TokenReductionError(
                "image token reduction \(name): \(keep) patches do not form a rectangle inside the \(g)×\(g) grid; a ratio of \(1 - Double(near) / Double(g * g)) keeps \(near)")
        }
        return (h, w)
    }

    /// Writes the kept patch indices (row-major on the g×g grid, ascending) of the image of
    /// `sample` in `epoch` to `kept`, which holds `keptPatches(grid:)` values. Order does not
    /// matter to the encoder (attention is permutation-equivariant, pooling is order-free); an
    /// ascending order makes runs reproducible bit for bit.
    public func fillKept(grid g: Int, seed: UInt64, epoch: Int, sample: Int, into kept: UnsafeMutablePointer<Int32>) throws {
        let rng = CounterRNG(seed: seed, stream: Self.stream &+ UInt64(epoch))
        let base = UInt64(sample) << 16
        switch self {
        case .none, .resize:
            for i in 0..<(g * g) { kept[i] = Int32(i) }
        case .random:
            // Partial Fisher–Yates: the first `keep` entries of a uniform permutation, then sorted.
            let n = g * g, keep = try keptPatches(grid: g)
            var order = Array(0..<n)
            for i in 0..<keep {
                let j = i + rng.integer(below: n - i, base + UInt64(i))
                order.swapAt(i, j)
            }
            let chosen = order[0..<keep].sorted()
            for (i, p) in chosen.enumerated() { kept[i] = Int32(p) }
        case .grid(let k, let offset):
            let windows = g / k
            guard g % k == 0 else { throw TokenReductionError("image token reduction \(name): window \(k) does not divide the \(g)×\(g) patch grid") }
            let shared = offset == .image ? rng.integer(below: k * k, base) : 0
            var i = 0
            for wy in 0..<windows {
                for wx in 0..<windows {
                    let o: Int
                    switch offset {
                    case .fixed: o = 0
                    case .image: o = shared
                    case .window: o = rng.integer(below: k * k, base + 1 + UInt64(wy * windows + wx))
                    }
                    kept[i] = Int32((wy * k + o / k) * g + wx * k + o % k)
                    i += 1
                }
            }
        case .block:
            let (h, w) = try blockShape(grid: g)
            // Rows h and columns w, or the transpose, each with probability ½ when h ≠ w.
            let transpose = h != w && rng.integer(below: 2, base) == 1
            let (bh, bw) = transpose ? (w, h) : (h, w)
            let top = rng.integer(below: g - bh + 1, base + 1), left = rng.integer(below: g - bw + 1, base + 2)
            var i = 0
            for y in top..<(top + bh) {
                for x in left..<(left + bw) {
                    kept[i] = Int32(y * g + x)
                    i += 1
                }
            }
        }
    }

    static let stream: UInt64 = 0x6d61_736b_2e69_6d67  // "mask.img"
}

/// A token reduction that cannot be built or applied; the message names the option and value.
public struct TokenReductionError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
