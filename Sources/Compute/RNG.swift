// A counter-based random number generator: Philox4x32-10 (Salmon et al., "Parallel random
// numbers: as easy as 1, 2, 3", SC'11). A draw is a pure function of (seed, stream, counter), so
// any sample, parameter or step can draw its numbers independently of order and thread count, and
// a resumed run draws exactly what an unbroken one would.
//
// Layout: the 64-bit seed is Philox's key; the 128-bit counter block is (counter low, counter
// high, stream low, stream high). Each block yields four 32-bit words.

/// Philox4x32 with 10 rounds.
public enum Philox {
    @usableFromInline static let m0: UInt32 = 0xD251_1F53
    @usableFromInline static let m1: UInt32 = 0xCD9E_8D57
    @usableFromInline static let w0: UInt32 = 0x9E37_79B9
    @usableFromInline static let w1: UInt32 = 0xBB67_AE85

    /// The Philox4x32-10 bijection of the counter block `c` under the key `k`.
    @inlinable
    public static func block(
        _ c: (UInt32, UInt32, UInt32, UInt32), key k: (UInt32, UInt32)
    ) -> (UInt32, UInt32, UInt32, UInt32) {
        var (c0, c1, c2, c3) = c
        var (k0, k1) = k
        for round in 0..<10 {
            if round > 0 { k0 &+= w0; k1 &+= w1 }
            let p0 = UInt64(m0) * UInt64(c0)
            let p1 = UInt64(m1) * UInt64(c2)
            let hi0 = UInt32(truncatingIfNeeded: p0 >> 32), lo0 = UInt32(truncatingIfNeeded: p0)
            let hi1 = UInt32(truncatingIfNeeded: p1 >> 32), lo1 = UInt32(truncatingIfNeeded: p1)
            (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
        }
        return (c0, c1, c2, c3)
    }
}

/// A random stream keyed by (seed, stream): draw `i` of the stream depends only on those and `i`.
///
/// Streams separate purposes (initialisation of each parameter, data order, augmentation, …);
/// use `stream(named:)` or an explicit number. Two streams of one seed are independent.
public struct CounterRNG: Sendable, Hashable {
    public let seed: UInt64
    public let stream: UInt64

    public init(seed: UInt64, stream: UInt64 = 0) {
        self.seed = seed
        self.stream = stream
    }

    /// The stream whose number is a hash (FNV-1a, 64-bit) of `name`, e.g. the parameter's name:
    /// stable across runs, platforms and parameter orderings.
    public init(seed: UInt64, streamNamed name: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in name.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        self.init(seed: seed, stream: h)
    }

    /// The four 32-bit words of counter block `counter`.
    @inlinable
    public func words(at counter: UInt64) -> (UInt32, UInt32, UInt32, UInt32) {
        Philox.block(
            (UInt32(truncatingIfNeeded: counter), UInt32(truncatingIfNeeded: counter >> 32),
             UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)),
            key: (UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32)))
    }

    /// Two uniform doubles in (0, 1) from counter block `counter` (53 random bits each, never 0).
    @inlinable
    public func uniformPair(at counter: UInt64) -> (Double, Double) {
        let (a, b, c, d) = words(at: counter)
        let u0 = (UInt64(a) << 21) ^ UInt64(b >> 11)  // 53 bits
        let u1 = (UInt64(c) << 21) ^ UInt64(d >> 11)
        let scale = 1.0 / 9_007_199_254_740_992.0  // 2⁻⁵³
        return ((Double(u0) + 0.5) * scale, (Double(u1) + 0.5) * scale)
    }

    /// Uniform draw `index` of the stream in (0, 1).
    @inlinable
    public func uniform(_ index: UInt64) -> Double {
        let pair = uniformPair(at: index / 2)
        return index % 2 == 0 ? pair.0 : pair.1
    }

    /// Standard normal draw `index` of the stream (Box–Muller on the pair of block index/2).
    @inlinable
    public func normal(_ index: UInt64) -> Double {
        let (u0, u1) = uniformPair(at: index / 2)
        let radius = (-2 * _log(u0)).squareRoot()
        let angle = 2 * Double.pi * u1
        return index % 2 == 0 ? radius * _cos(angle) : radius * _sin(angle)
    }

    /// A uniform integer in 0..<bound from draw `index` (multiply-shift on 64 random bits; the bias
    /// is below 2⁻³² for any bound under 2³²).
    @inlinable
    public func integer(below bound: Int, _ index: UInt64) -> Int {
        precondition(bound > 0, "CounterRNG.integer: bound must be > 0, got \(bound)")
        let (a, b, _, _) = words(at: index)
        let r = (UInt64(a) << 32) | UInt64(b)
        return Int(r.multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Fills `x` (count) with uniform draws in [low, high): element i is draw `start + i`.
    @inlinable
    public func fillUniform<T: Scalar>(
        _ x: UnsafeMutablePointer<T>, count: Int, low: T = 0, high: T = 1, start: UInt64 = 0
    ) {
        let lo = Double(low), width = Double(high) - Double(low)
        for i in 0..<count { x[i] = T(lo + width * uniform(start + UInt64(i))) }
    }

    /// Fills `x` (count) with normal draws of the given mean and standard deviation: element i is
    /// draw `start + i`.
    @inlinable
    public func fillNormal<T: Scalar>(
        _ x: UnsafeMutablePointer<T>, count: Int, mean: T = 0, std: T = 1, start: UInt64 = 0
    ) {
        let m = Double(mean), s = Double(std)
        for i in 0..<count { x[i] = T(m + s * normal(start + UInt64(i))) }
    }

    /// A random permutation of 0..<n (Fisher–Yates driven by draws `start`, `start+1`, …).
    public func permutation(_ n: Int, start: UInt64 = 0) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) {
            let j = integer(below: i + 1, start + UInt64(n - 1 - i))
            p.swapAt(i, j)
        }
        return p
    }
}

// Elementary functions for Double without Foundation, via RealModule's Double conformance.
import RealModule
@usableFromInline func _log(_ x: Double) -> Double { Double.log(x) }
@usableFromInline func _cos(_ x: Double) -> Double { Double.cos(x) }
@usableFromInline func _sin(_ x: Double) -> Double { Double.sin(x) }
