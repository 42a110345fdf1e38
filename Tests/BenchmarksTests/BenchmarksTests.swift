import Benchmarks
import Compute
import Testing

@Suite("Kernel benchmark bookkeeping")
struct BenchmarksTests {
    @Test("Preset towers have DESIGN.md's dimensions")
    func presets() throws {
        let tiny = try #require(TowerShape.preset("tiny", batch: 256))
        #expect(tiny[0].tokens == 65 && tiny[0].width == 128 && tiny[0].layers == 4 && tiny[0].patchInputs == 48)
        #expect(tiny[1].tokens == 32 && tiny[1].width == 128 && tiny[1].heads == 4)
        let small = try #require(TowerShape.preset("small", batch: 256))
        #expect(small[0].tokens == 65 && small[0].width == 256 && small[0].layers == 6 && small[0].patchInputs == 192)
        #expect(TowerShape.preset("huge", batch: 1) == nil)
    }

    @Test("A step's GEMM FLOPs are three times the forward FLOPs (forward, dX, dW)")
    func flopAccounting() throws {
        // Forward FLOPs of one tower by hand: per layer 24·R·C² for the four projections plus
        // 4·B·H·T²·D for attention; the patch embedding once.
        let v = try #require(TowerShape.preset("tiny", batch: 8))[0]
        let r = Double(v.batch * v.tokens), c = Double(v.width), t = Double(v.tokens), d = c / Double(v.heads)
        let perLayer = 24 * r * c * c + 4 * Double(v.batch * v.heads) * t * t * d
        let patch = 2 * Double(v.batch * 64) * c * 48
        let forward = Double(v.layers) * perLayer + patch
        let step = v.gemmCases.reduce(0.0) { $0 + $1.flops * Double($1.perStep) }
        // Backward of every product costs twice its forward, except that the patch embedding
        // skips the image gradient (dW only): 3·forward − patch.
        #expect(abs(step - (3 * forward - patch)) / step < 1e-12)
    }

    @Test("The step rate is the FLOP-weighted harmonic mean of the measured rates")
    func stepRate() {
        let a = GemmCase(label: "a", m: 10, n: 10, k: 10, transA: false, transB: false, batch: 1, perStep: 1)
        let b = GemmCase(label: "b", m: 10, n: 10, k: 10, transA: false, transB: false, batch: 1, perStep: 3)
        // 1 unit at 100 and 3 units at 50: time 1/100 + 3/50 = 0.07, rate 4/0.07.
        #expect(abs(stepGemmRate([a, b], rates: ["a": 100, "b": 50]) - 4 / 0.07) < 1e-9)
    }

    @Test("measureGemm returns a positive rate")
    func measures() {
        let g = GemmCase(label: "x", m: 64, n: 32, k: 16, transA: true, transB: true, batch: 2, perStep: 1)
        let (gf, s) = measureGemm(g, minTime: 0.001)
        #expect(gf > 0 && s > 0 && gf.isFinite)
    }
}
