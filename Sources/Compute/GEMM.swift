// The single entry point for matrix products: row-major GEMM, generic over Float and Double,
// dispatched to OpenBLAS's sgemm / dgemm, plus a strided-batch form.

/// Row-major general matrix product `C = alpha · op(A) · op(B) + beta · C`.
///
/// Shapes, with op(X) = X or Xᵀ:
/// - op(A) is (m, k): A is stored (m, k) with `lda ≥ k`, or, when `transA`, (k, m) with `lda ≥ m`;
/// - op(B) is (k, n): B is stored (k, n) with `ldb ≥ n`, or, when `transB`, (n, k) with `ldb ≥ k`;
/// - C is (m, n) with `ldc ≥ n`.
///
/// `beta = 0` overwrites C (its old contents may be anything, even NaN); `beta = 1` accumulates,
/// which is how layers add weight gradients. A linear layer `y = x·Wᵀ` with W stored (out, in) is
/// `gemm(transB: true, m: rows, n: out, k: in, a: x, lda: in, b: W, ldb: in, c: y, ldc: out)`.
@inlinable
public func gemm<T: Scalar>(
    transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: T = 1, a: UnsafePointer<T>, lda: Int,
    b: UnsafePointer<T>, ldb: Int,
    beta: T = 0, c: UnsafeMutablePointer<T>, ldc: Int
) {
    precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative dimension m=\(m) n=\(n) k=\(k)")
    precondition(lda >= max(1, transA ? m : k), "gemm: lda=\(lda) too small for op(A) (\(m), \(k)), transA=\(transA)")
    precondition(ldb >= max(1, transB ? k : n), "gemm: ldb=\(ldb) too small for op(B) (\(k), \(n)), transB=\(transB)")
    precondition(ldc >= max(1, n), "gemm: ldc=\(ldc) too small for C (\(m), \(n))")
    if m == 0 || n == 0 { return }
    T.blasGemm(
        transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
        b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
}

/// `batch` independent row-major GEMMs whose operands sit at fixed strides:
/// `C_i = alpha · op(A_i) · op(B_i) + beta · C_i` with `A_i = a + i·strideA` and so on.
///
/// Shapes and leading dimensions are those of `gemm`, the same for every member of the batch.
/// Used for per-(sample, head) attention products, whose operands live at regular offsets in
/// the packed QKV buffer.
@inlinable
public func gemmStridedBatched<T: Scalar>(
    batch: Int, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
    alpha: T = 1, a: UnsafePointer<T>, lda: Int, strideA: Int,
    b: UnsafePointer<T>, ldb: Int, strideB: Int,
    beta: T = 0, c: UnsafeMutablePointer<T>, ldc: Int, strideC: Int
) {
    precondition(batch >= 0, "gemmStridedBatched: negative batch \(batch)")
    for i in 0..<batch {
        gemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
            a: a + i * strideA, lda: lda, b: b + i * strideB, ldb: ldb,
            beta: beta, c: c + i * strideC, ldc: ldc)
    }
}

/// The number of floating-point operations of one GEMM of these dimensions, 2·m·n·k, as the
/// benchmarks and the OpenCLIP anchor count them.
@inlinable
public func gemmFlops(m: Int, n: Int, k: Int) -> Double { 2 * Double(m) * Double(n) * Double(k) }
