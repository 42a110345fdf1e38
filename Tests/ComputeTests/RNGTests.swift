import Compute
import Testing

@Suite("Counter-based RNG")
struct RNGTests {
    @Test("Philox4x32-10 matches the published known-answer vectors")
    func knownAnswers() {
        // Random123's kat_vectors for philox4x32_10.
        let zero = Philox.block((0, 0, 0, 0), key: (0, 0))
        #expect([zero.0, zero.1, zero.2, zero.3] == [0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8])
        let ones = Philox.block((0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff), key: (0xffff_ffff, 0xffff_ffff))
        #expect([ones.0, ones.1, ones.2, ones.3] == [0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd])
        let pi = Philox.block((0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: (0xa409_3822, 0x299f_31d0))
        #expect([pi.0, pi.1, pi.2, pi.3] == [0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1])
    }

    @Test("Draws are a pure function of (seed, stream, counter)")
    func reproducible() {
        let a = CounterRNG(seed: 42, stream: 7), b = CounterRNG(seed: 42, stream: 7)
        let xs = (0..<1000).map { a.normal(UInt64($0)) }
        // Same draws in reverse order, from a second instance.
        let ys = (0..<1000).reversed().map { b.normal(UInt64($0)) }.reversed()
        #expect(xs == Array(ys))
        var buf = [Float](repeating: 0, count: 10)
        a.fillNormal(&buf, count: 10, start: 5)
        #expect(buf.enumerated().allSatisfy { $0.element == Float(a.normal(UInt64(5 + $0.offset))) })
        #expect(CounterRNG(seed: 1, streamNamed: "visual.conv1.weight") == CounterRNG(seed: 1, streamNamed: "visual.conv1.weight"))
    }

    @Test("Streams and seeds are independent")
    func independence() {
        let n = 20_000
        let s0 = CounterRNG(seed: 3, stream: 0), s1 = CounterRNG(seed: 3, stream: 1), t0 = CounterRNG(seed: 4, stream: 0)
        let a = (0..<n).map { s0.normal(UInt64($0)) }
        let b = (0..<n).map { s1.normal(UInt64($0)) }
        let c = (0..<n).map { t0.normal(UInt64($0)) }
        func corr(_ x: [Double], _ y: [Double]) -> Double {
            let mx = x.reduce(0, +) / Double(n), my = y.reduce(0, +) / Double(n)
            var sxy = 0.0, sxx = 0.0, syy = 0.0
            for i in 0..<n { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my) }
            return sxy / (sxx * syy).squareRoot()
        }
        // Independent samples of 20,000: |corr| < 4/√n = 0.028 with overwhelming probability.
        #expect(abs(corr(a, b)) < 0.028)
        #expect(abs(corr(a, c)) < 0.028)
        #expect(a != b && a != c)
        // Lag-1 autocorrelation within a stream.
        #expect(abs(corr(Array(a.dropLast()) + [0], Array(a.dropFirst()) + [0])) < 0.028)
    }

    @Test("Uniform and normal draws have the right moments")
    func moments() {
        let rng = CounterRNG(seed: 9, stream: 2), n = 50_000
        let u = (0..<n).map { rng.uniform(UInt64($0)) }
        #expect(u.allSatisfy { $0 > 0 && $0 < 1 })
        let mu = u.reduce(0, +) / Double(n)
        #expect(abs(mu - 0.5) < 0.005)  // sd of the mean: 0.289/√n = 0.0013
        let z = (0..<n).map { rng.normal(UInt64($0)) }
        let mz = z.reduce(0, +) / Double(n)
        let vz = z.map { ($0 - mz) * ($0 - mz) }.reduce(0, +) / Double(n)
        #expect(abs(mz) < 0.02 && abs(vz - 1) < 0.03)
        let k = (0..<n).map { rng.integer(below: 10, UInt64($0)) }
        #expect(k.allSatisfy { (0..<10).contains($0) })
        for v in 0..<10 { #expect(abs(Double(k.filter { $0 == v }.count) / Double(n) - 0.1) < 0.01) }
    }

    @Test("Permutations are permutations and depend on the seed")
    func permutation() {
        let p = CounterRNG(seed: 5).permutation(1000)
        #expect(p.sorted() == Array(0..<1000))
        #expect(p != Array(0..<1000))
        #expect(p == CounterRNG(seed: 5).permutation(1000))
        #expect(p != CounterRNG(seed: 6).permutation(1000))
    }
}
