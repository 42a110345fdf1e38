import Compute
import Foundation
import Testing

@Suite("Vectorised exp and erf")
struct FastMathTests {
    @Test("exp8 is within 2 ulp of e^x on [−87, 88], and clamps outside")
    func exp() {
        var worst = 0.0
        var x = -87.0
        while x < 88 {
            let lanes = (0..<8).map { Float(x + Double($0) * 0.0137) }
            let got = exp8(Float8(lanes))
            for i in 0..<8 {
                let exact = Foundation.exp(Double(lanes[i]))
                worst = max(worst, abs(Double(got[i]) - exact) / exact)
            }
            x += 0.1093
        }
        // 2 ulp of Float relative: 2 · 2⁻²³ ≈ 2.4e−7.
        #expect(worst < 2.4e-7, "worst relative error \(worst)")
        let edge = exp8(Float8(-200, -88, 89, 1000, 0, 1, -1, 0.5))
        #expect(edge[0] > 0 && edge[0] < 2e-38 && edge[2].isFinite && edge[3].isFinite && edge[3] > 1e38)
        #expect(edge[4] == 1)
    }

    @Test("erf8 is within 5e-7 of erf on [−6, 6]")
    func erf() {
        var worst = 0.0
        var x = -6.0
        while x < 6 {
            let lanes = (0..<8).map { Float(x + Double($0) * 0.0011) }
            let got = erf8(Float8(lanes)).erf
            for i in 0..<8 { worst = max(worst, abs(Double(got[i]) - Foundation.erf(Double(lanes[i])))) }
            x += 0.0097
        }
        // A&S 7.1.26 (1.5e−7) plus Float rounding of the polynomial and of 1 − p·t·e^(−x²).
        #expect(worst < 5e-7, "worst absolute error \(worst)")
    }

    @Test("The vectorised GELU path and the scalar tail agree with Double GELU", arguments: GELUApproximation.allCases)
    func geluPaths(_ approx: GELUApproximation) {
        // 21 elements: two SIMD blocks and a scalar tail of 5.
        let xs: [Float] = (0..<21).map { Float($0) * 0.43 - 4.5 }
        var y = [Float](repeating: 0, count: 21)
        geluForward(xs, &y, count: 21, approximation: approx)
        var d = [Float](repeating: 0, count: 21)
        geluBackward([Float](repeating: 1, count: 21), x: xs, dx: &d, count: 21, approximation: approx)
        for i in 0..<21 {
            let xd = Double(xs[i])
            // Values to 1e−6; derivatives (built from tanh = 1 − 2/(e^2u + 1) in Float) to 3e−6.
            #expect(abs(Double(y[i]) - gelu(xd, approx)) < 1e-6)
            #expect(abs(Double(d[i]) - geluDerivative(xd, approx)) < 3e-6)
        }
    }
}
