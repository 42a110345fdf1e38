// bf16 products (Compute/Precision.swift): the rounding against its definition by bit patterns,
// the emulated GEMM against a Double reference over bf16-rounded operands, and the refusal of
// native bf16 where the CPU or the BLAS lacks it.

import Compute
import Foundation
import Testing
import TestSupport

@Suite("bf16 precision")
struct PrecisionTests {
    /// bf16 rounding by its definition: the nearest value with 7 stored mantissa bits, ties to
    /// the even one, computed in Double from the float's bits.
    static func referenceRound(_ x: Float) -> Float {
        if x.isNaN || x.isInfinite || x == 0 { return x }
        let bits = x.bitPattern
        let down = Float(bitPattern: bits & 0xFFFF_0000)
        let up = Float(bitPattern: (bits & 0xFFFF_0000) &+ 0x10000)
        // Past the largest bf16 the next value up is 2¹²⁸ in magnitude, which is +∞ (IEEE overflow).
        let upValue = up.isInfinite ? (x < 0 ? -0x1p128 : 0x1p128) : Double(up)
        let dd = abs(Double(x) - Double(down)), du = abs(upValue - Double(x))
        if dd < du { return down }
        if du < dd { return up }
        return (down.bitPattern >> 16) & 1 == 0 ? down : up
    }

    @Test("rounding to bf16 is to nearest, ties to even; NaN, ±∞ and ±0 are kept")
    func rounding() {
        let specials: [Float] = [
            1, -1, 1.00390625 /* tie, to 1 */, 1.01171875 /* tie, to 1.015625 */, 1.0039063, 3.14159265, -2.7182817,
            Float.leastNonzeroMagnitude, Float.leastNormalMagnitude, Float.greatestFiniteMagnitude, -0.0, 0, .infinity, -.infinity,
        ]
        for x in specials {
            #expect(bf16Rounded(x).bitPattern == Self.referenceRound(x).bitPattern, "x = \(x)")
        }
        #expect(bf16Rounded(1.00390625) == 1)
        #expect(bf16Rounded(1.01171875) == 1.015625)
        #expect(bf16Rounded(.greatestFiniteMagnitude) == .infinity)  // rounds past the largest bf16
        #expect(bf16Rounded(.nan).isNaN)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let x = Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng))
            guard !x.isNaN else { continue }
            #expect(bf16Rounded(x).bitPattern == Self.referenceRound(x).bitPattern, "bits \(String(x.bitPattern, radix: 16))")
        }
    }

    @Test("bf16-emulated gemm equals a Double product of bf16-rounded operands, for every transpose and padded leading dimensions",
          arguments: [(false, false), (false, true), (true, false), (true, true)])
    func emulatedGemm(trans: (Bool, Bool)) {
        let (m, n, k, pad) = (19, 23, 37, 3)
        let (aRows, aCols) = trans.0 ? (k, m) : (m, k)
        let (bRows, bCols) = trans.1 ? (n, k) : (k, n)
        let lda = aCols + pad, ldb = bCols + pad, ldc = n + pad
        let a = randomArray(aRows * lda, seed: 7, stream: "a").map { Float($0) }
        let b = randomArray(bRows * ldb, seed: 7, stream: "b").map { Float($0) }
        let c0 = randomArray(m * ldc, seed: 7, stream: "c").map { Float($0) }
        let (alpha, beta): (Float, Float) = (0.75, 0.5)
        func run(_ p: MatmulPrecision) -> [Float] {
            var c = c0
            GEMMPrecision.gemm(
                precision: p, transA: trans.0, transB: trans.1, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb,
                beta: beta, c: &c, ldc: ldc)
            return c
        }
        let emulated = run(.bf16Emulated), full = run(.fp32)
        var worst = 0.0, differsFromFP32 = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0
                for p in 0..<k {
                    let x = trans.0 ? a[p * lda + i] : a[i * lda + p]
                    let y = trans.1 ? b[j * ldb + p] : b[p * ldb + j]
                    sum += Double(bf16Rounded(x)) * Double(bf16Rounded(y))
                }
                let expected = Double(alpha) * sum + Double(beta) * Double(c0[i * ldc + j])
                worst = max(worst, abs(Double(emulated[i * ldc + j]) - expected))
                differsFromFP32 = max(differsFromFP32, abs(Double(full[i * ldc + j]) - expected))
            }
            // Padding columns of C are never written.
            for j in n..<ldc { #expect(emulated[i * ldc + j] == c0[i * ldc + j]) }
        }
        #expect(worst < 1e-5, "bf16-emulated differs from the bf16 reference by \(worst)")
        // The check has teeth: fp32 operands give a visibly different product (bf16 keeps ~3 digits).
        #expect(differsFromFP32 > 1e-3, "fp32 and bf16 products agree to \(differsFromFP32): the operands were not rounded")
    }

    @Test("native bf16 is refused, with what is missing named, where the CPU lacks AVX-512 BF16/AMX or the BLAS lacks cblas_sbgemm")
    func refusal() {
        let avx2 = CPUFeatures(cpuinfo: "model name : Test CPU\nflags : sse avx2 fma\n")
        let bf16CPU = CPUFeatures(cpuinfo: "model name : Test CPU\nflags : avx2 fma avx512f avx512_bf16\n")
        let noCPU = MatmulPrecision.bf16.unsupportedReason(cpu: avx2, sbgemmAvailable: true)
        #expect(noCPU?.contains("neither AVX-512 BF16 nor AMX") == true)
        #expect(noCPU?.contains("bf16-emulated") == true)
        #expect(noCPU?.contains("cblas_sbgemm") == false)
        let noBLAS = MatmulPrecision.bf16.unsupportedReason(cpu: bf16CPU, sbgemmAvailable: false)
        #expect(noBLAS?.contains("exports no cblas_sbgemm") == true)
        #expect(noBLAS?.contains("AVX-512 BF16 nor") == false)
        #expect(MatmulPrecision.bf16.unsupportedReason(cpu: bf16CPU, sbgemmAvailable: true) == nil)
        #expect(MatmulPrecision.bf16Emulated.unsupportedReason(cpu: avx2, sbgemmAvailable: false) == nil)
        #expect(MatmulPrecision.fp32.unsupportedReason(cpu: avx2, sbgemmAvailable: false) == nil)
        // This machine: the answer follows its own features and BLAS.
        let here = MatmulPrecision.bf16.unsupportedReason()
        #expect((here == nil) == ((CPUFeatures.current.avx512bf16 || CPUFeatures.current.amxBF16) && GEMMPrecision.sbgemmAvailable))
    }
}
