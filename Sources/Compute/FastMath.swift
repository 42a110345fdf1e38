// Vectorised exp and erf for Float, eight lanes at a time, for the element-wise kernels' Float
// paths (GELU, softmax). Double keeps the scalar libm functions: it is the reference precision.
//
// exp: x = n·ln2 + r with n = round(x·log₂e) and |r| ≤ ½ln2 (ln2 split in two constants so the
//      reduction is exact), e^r by a degree-6 minimax polynomial (Cephes' expf coefficients),
//      then 2ⁿ assembled in the exponent bits. Relative error ≤ 2 ulp on [−87.3, 88.3]; inputs are
//      clamped to that range, so results never overflow to ∞ (the smallest output is ≈ 1.2e−38).
// erf: Abramowitz & Stegun 7.1.26, erf(x) = 1 − (a₁t + … + a₅t⁵)·e^(−x²), t = 1/(1 + p|x|), odd in x;
//      the formula's error is ≤ 1.5e−7, and evaluated in Float the measured absolute error is
//      ≤ 5e−7 (about four Float ulp near 1; FastMathTests checks it on [−6, 6]).

public typealias Float8 = SIMD8<Float>

/// e^x for eight Floats (see the file header for accuracy).
@inlinable @inline(__always)
public func exp8(_ x: Float8) -> Float8 {
    // Written with `replacing` and bit casts only: SIMD `clamped`, `rounded` and float→int
    // conversions compile to per-lane library calls here and were measured 10–100× slower.
    var v = x.replacing(with: 88.37, where: x .> 88.37)
    v = v.replacing(with: -87.33, where: v .< -87.33)
    // Round x·log₂e to the nearest integer n by adding 1.5·2²³: the sum's low mantissa bits hold n.
    let t = v * 1.442_695_04 + 12_582_912
    let n = t - 12_582_912
    let r = v - n * 0.693_359_375 - n * -2.121_944_4e-4
    var p = Float8(repeating: 1.987_569_15e-4)
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_907e-3
    p = p * r + 4.166_579_589e-2
    p = p * r + 1.666_666_546e-1
    p = p * r + 5.000_000_12e-1
    let y = p * (r * r) + r + 1
    let bits = (unsafeBitCast(t, to: SIMD8<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return y * unsafeBitCast(bits, to: Float8.self)
}

/// erf(x) for eight Floats, and e^(−x²) as a by-product (GELU's derivative needs it).
@inlinable @inline(__always)
public func erf8(_ x: Float8) -> (erf: Float8, expMinusSquare: Float8) {
    let ax = unsafeBitCast(unsafeBitCast(x, to: SIMD8<UInt32>.self) & 0x7FFF_FFFF, to: Float8.self)
    let t = 1 / (1 + 0.327_591_1 * ax)
    var p = Float8(repeating: 1.061_405_429)
    p = p * t - 1.453_152_027
    p = p * t + 1.421_413_741
    p = p * t - 0.284_496_736
    p = p * t + 0.254_829_592
    let e = exp8(-(x * x))
    let y = 1 - p * t * e
    return (y.replacing(with: -y, where: x .< 0), e)
}

/// Loads eight Floats from `p` (no alignment needed).
@inlinable @inline(__always)
public func load8(_ p: UnsafePointer<Float>) -> Float8 {
    UnsafeRawPointer(p).loadUnaligned(as: Float8.self)
}

/// Stores eight Floats at `p`.
@inlinable @inline(__always)
public func store8(_ v: Float8, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Float8.self)
}

/// GELU and its derivative for eight Floats.
@inlinable @inline(__always)
public func gelu8(_ x: Float8, _ approximation: GELUApproximation) -> (value: Float8, derivative: Float8) {
    switch approximation {
    case .exact:
        // cdf = ½(1 + erf(x/√2)), pdf = e^(−x²/2)/√(2π); erf8 of x/√2 returns e^(−x²/2).
        let (erf, e) = erf8(x * 0.707_106_781_186_547_52)
        let cdf = 0.5 * (1 + erf)
        return (x * cdf, cdf + x * e * 0.398_942_280_401_432_68)
    case .tanh:
        let c: Float = 0.797_884_560_802_865_36
        let x2: Float8 = x * x
        let inner: Float8 = x + 0.044_715 * x2 * x
        let u: Float8 = c * inner
        let th: Float8 = 1 - 2 / (exp8(2 * u) + 1)  // tanh(u)
        let half: Float8 = 0.5 * (1 + th)
        let value: Float8 = x * half
        let slope: Float8 = c * (1 + 0.134_145 * x2)  // du/dx
        let derivative: Float8 = half + 0.5 * x * (1 - th * th) * slope
        return (value, derivative)
    }
}
