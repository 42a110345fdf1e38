import CKernels
import Compute
import Foundation
import Testing

/// The C element-wise kernels (Sources/CKernels), each build this CPU can run, against Double.
@Suite("AVX2 and AVX-512 GELU kernels")
struct VectorKernelTests {
    typealias Forward = (UnsafeMutablePointer<Float>, UnsafePointer<Float>?, UnsafeMutablePointer<Float>, Int, Int, Int32) -> Void
    typealias Backward = (UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int, Int32) -> Void

    /// The builds this machine supports (the portable path is covered by FastMathTests).
    static var builds: [(VectorISA, Forward, Backward)] {
        var out: [(VectorISA, Forward, Backward)] = []
        if VectorISA.avx2.isSupported() {
            out.append((.avx2, { cliplab_gelu_forward_avx2($0, $1, $2, $3, $4, $5) }, { cliplab_gelu_backward_inplace_avx2($0, $1, $2, $3) }))
        }
        if VectorISA.avx512.isSupported() {
            out.append((.avx512, { cliplab_gelu_forward_avx512($0, $1, $2, $3, $4, $5) }, { cliplab_gelu_backward_inplace_avx512($0, $1, $2, $3) }))
        }
        return out
    }

    @Test("Bias + GELU forward and GELU backward agree with Double, full vectors and tails", arguments: GELUApproximation.allCases)
    func agreesWithDouble(_ approx: GELUApproximation) {
        let builds = Self.builds
        if builds.isEmpty { print("note: this CPU has neither AVX2+FMA nor AVX-512F; only the portable path runs") }
        // Width 37 = two 16-lane (four 8-lane) vectors and a tail of 5; values span ±6.
        let rows = 3, width = 37, n = rows * width
        let x0: [Float] = (0..<n).map { Float(sin(Double($0) * 1.7) * 6) }
        let bias: [Float] = (0..<width).map { Float(cos(Double($0)) * 0.5) }
        let g0: [Float] = (0..<n).map { Float(cos(Double($0) * 0.3)) }
        for (isa, forward, backward) in builds {
            let tanh: Int32 = approx == .tanh ? 1 : 0
            var pre = x0, out = [Float](repeating: .nan, count: n)
            forward(&pre, bias, &out, rows, width, tanh)
            var worstValue = 0.0
            for i in 0..<n {
                let p = Double(x0[i]) + Double(bias[i % width])
                #expect(abs(Double(pre[i]) - p) < 1e-6, "\(isa): pre-activation \(i) keeps the bias")
                worstValue = max(worstValue, abs(Double(out[i]) - gelu(p, approx)))
            }
            // Same bounds as the portable path: values to 1e−6 (absolute, |x| ≤ 6.5).
            #expect(worstValue < 2e-6, "\(isa): worst GELU error \(worstValue)")

            // Without a bias, in place (out = pre).
            var inPlace = x0
            inPlace.withUnsafeMutableBufferPointer { forward($0.baseAddress!, nil, $0.baseAddress!, 1, n, tanh) }
            for i in 0..<n { #expect(abs(Double(inPlace[i]) - gelu(Double(x0[i]), approx)) < 2e-6) }

            var g = g0
            backward(&g, x0, n, tanh)
            var worstDerivative = 0.0
            for i in 0..<n {
                worstDerivative = max(worstDerivative, abs(Double(g[i]) - Double(g0[i]) * geluDerivative(Double(x0[i]), approx)))
            }
            #expect(worstDerivative < 5e-6, "\(isa): worst GELU' error \(worstDerivative)")
        }
    }

    @Test("The fused bias + GELU entry point equals a bias add followed by GELU")
    func fusedEqualsSeparate() {
        let rows = 5, width = 24, n = rows * width
        let x0: [Float] = (0..<n).map { Float(sin(Double($0) * 0.9) * 3) }
        let bias: [Float] = (0..<width).map { Float($0) * 0.05 - 0.6 }
        var fusedPre = x0, fusedOut = [Float](repeating: 0, count: n)
        biasGELUForward(&fusedPre, bias: bias, &fusedOut, rows: rows, width: width)
        for i in 0..<n {
            let p = x0[i] + bias[i % width]
            #expect(fusedPre[i] == p)
            #expect(abs(Double(fusedOut[i]) - gelu(Double(p), .exact)) < 2e-6)
        }
    }
}
