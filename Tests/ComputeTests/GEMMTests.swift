import Compute
import Testing
import TestSupport

struct GEMMShape: CustomStringConvertible, Sendable {
    let m: Int, n: Int, k: Int, pad: Int
    var description: String { "m\(m) n\(n) k\(k) pad\(pad)" }
}

@Suite("GEMM")
struct GEMMTests {
    static let shapes = [
        GEMMShape(m: 1, n: 1, k: 1, pad: 0), GEMMShape(m: 3, n: 5, k: 7, pad: 0),
        GEMMShape(m: 17, n: 13, k: 9, pad: 3), GEMMShape(m: 33, n: 1, k: 65, pad: 1),
        GEMMShape(m: 2, n: 31, k: 1, pad: 5), GEMMShape(m: 65, n: 48, k: 33, pad: 2),
    ]
    static let transposes = [(false, false), (false, true), (true, false), (true, true)].map { TransposeCase(a: $0.0, b: $0.1) }

    struct TransposeCase: CustomStringConvertible, Sendable {
        let a: Bool, b: Bool
        var description: String { "\(a ? "T" : "N")\(b ? "T" : "N")" }
    }

    /// Runs gemm<T> and the naive reference on the same operands, with padded leading dimensions.
    func compare<T: Scalar>(_: T.Type, shape s: GEMMShape, trans: TransposeCase, alpha: Double, beta: Double) -> Double {
        let (aRows, aCols) = trans.a ? (s.k, s.m) : (s.m, s.k)
        let (bRows, bCols) = trans.b ? (s.n, s.k) : (s.k, s.n)
        let lda = aCols + s.pad, ldb = bCols + s.pad, ldc = s.n + s.pad
        let a = randomArray(aRows * lda, seed: 1, stream: "a")
        let b = randomArray(bRows * ldb, seed: 1, stream: "b")
        var cRef = randomArray(s.m * ldc, seed: 1, stream: "c")
        var cGot = cRef.map { T($0) }
        if beta == 0 { for i in cGot.indices { cGot[i] = .nan } }  // beta = 0 must not read C
        let aT = a.map { T($0) }, bT = b.map { T($0) }
        aT.withUnsafeBufferPointer { pa in
            bT.withUnsafeBufferPointer { pb in
                cGot.withUnsafeMutableBufferPointer { pc in
                    gemm(
                        transA: trans.a, transB: trans.b, m: s.m, n: s.n, k: s.k, alpha: T(alpha),
                        a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb, beta: T(beta),
                        c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
        naiveGemm(
            transA: trans.a, transB: trans.b, m: s.m, n: s.n, k: s.k, alpha: alpha, a: a, lda: lda,
            b: b, ldb: ldb, beta: beta, c: &cRef, ldc: ldc)
        // Compare only the m × n block; padding columns must be untouched.
        var got: [Double] = [], want: [Double] = []
        for i in 0..<s.m {
            for j in 0..<s.n {
                got.append(Double(cGot[i * ldc + j]))
                want.append(cRef[i * ldc + j])
            }
        }
        return scaledMaxError(got, want, floor: 1)
    }

    @Test("Double GEMM equals the naive loop", arguments: shapes, transposes)
    func doubleMatchesNaive(shape: GEMMShape, trans: TransposeCase) {
        for (alpha, beta) in [(1.0, 0.0), (0.7, 1.0), (-1.3, -0.5)] {
            let e = compare(Double.self, shape: shape, trans: trans, alpha: alpha, beta: beta)
            #expect(e < 1e-13, "alpha \(alpha) beta \(beta): error \(e)")
        }
    }

    @Test("Float GEMM agrees with the Double reference", arguments: shapes, transposes)
    func floatMatchesNaive(shape: GEMMShape, trans: TransposeCase) {
        for (alpha, beta) in [(1.0, 0.0), (0.7, 1.0)] {
            let e = compare(Float.self, shape: shape, trans: trans, alpha: alpha, beta: beta)
            // k ≤ 65 products of unit-normal values: Float rounding stays below 1e-5 of the scale.
            #expect(e < 1e-5, "alpha \(alpha) beta \(beta): error \(e)")
        }
    }

    @Test("Strided batched GEMM equals one GEMM per member")
    func stridedBatched() {
        let batch = 3, m = 4, n = 5, k = 6
        let a = randomArray(batch * m * k, seed: 2, stream: "a")
        let b = randomArray(batch * k * n, seed: 2, stream: "b")
        var c = [Double](repeating: 0, count: batch * m * n)
        gemmStridedBatched(
            batch: batch, m: m, n: n, k: k, a: a, lda: k, strideA: m * k, b: b, ldb: n, strideB: k * n,
            c: &c, ldc: n, strideC: m * n)
        for i in 0..<batch {
            var ref = [Double](repeating: 0, count: m * n)
            naiveGemm(
                transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: Array(a[(i * m * k)..<((i + 1) * m * k)]), lda: k,
                b: Array(b[(i * k * n)..<((i + 1) * k * n)]), ldb: n, beta: 0, c: &ref, ldc: n)
            #expect(scaledMaxError(Array(c[(i * m * n)..<((i + 1) * m * n)]), ref) < 1e-13)
        }
    }

    @Test("GEMM results do not depend on the thread count")
    func threadIndependence() {
        let m = 300, n = 200, k = 150
        let a = randomArray(m * k, seed: 3, stream: "a").map(Float.init)
        let b = randomArray(k * n, seed: 3, stream: "b").map(Float.init)
        var results: [[Float]] = []
        for threads in [1, 2] {
            Threads.set(threads)
            var c = [Float](repeating: 0, count: m * n)
            gemm(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: n, c: &c, ldc: n)
            results.append(c)
        }
        Threads.set(1)
        let diff = zip(results[0], results[1]).map { abs(Double($0) - Double($1)) }.max() ?? 0
        #expect(diff < 1e-4, "1 vs 2 threads differ by \(diff)")
    }
}
