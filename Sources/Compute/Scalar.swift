// The floating-point element types the numerical core is generic over.
//
// Training runs in Float; every layer, block and objective is also instantiated in Double so that
// gradients can be checked against central finite differences with tight tolerances. The only
// operation that differs by type is the matrix product, which goes to `cblas_sgemm` or
// `cblas_dgemm`; everything else is written once, generically, and specialised by the compiler.

import CBLAS
import RealModule

/// A scalar type ClipLab computes in: `Float` (training) or `Double` (reference and gradient checks).
///
/// Besides the elementary functions of `Real` (exp, log, tanh, erf, …) it provides the BLAS
/// matrix product for its precision.
public protocol Scalar: Real, BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    /// Row-major `C = alpha · op(A) · op(B) + beta · C` through OpenBLAS (see `gemm`).
    static func blasGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)

    /// "f32" or "f64", as safetensors and the benchmark tables spell the dtype.
    static var dtypeName: String { get }
}

extension Float: Scalar {
    @inlinable
    public static func blasGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        let precision = GEMMPrecision.current
        if precision != .fp32 {
            GEMMPrecision.bf16Gemm(
                native: precision == .bf16, transA: transA, transB: transB, m: m, n: n, k: k,
                alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
            return
        }
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
    public static var dtypeName: String { "f32" }
}

extension Double: Scalar {
    @inlinable
    public static func blasGemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        cblas_dgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb),
            beta, c, blasint(ldc))
    }
    public static var dtypeName: String { "f64" }
}
