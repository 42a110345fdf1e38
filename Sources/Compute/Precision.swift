// The precision of Float matrix products: float32 (the default), or bfloat16 operands with float32
// accumulation and float32 master weights, as mixed-precision training runs them.
//
// `bf16` sends every Float product to the BLAS's `cblas_sbgemm` (operands rounded to bf16, packed
// per thread), which is only faster than sgemm on CPUs with AVX-512 BF16 or AMX; it is refused
// elsewhere, and where the linked BLAS does not export `cblas_sbgemm` (Debian's OpenBLAS 0.3.21
// does not). `bf16-emulated` gives the same numbers on any CPU: the product of two bf16 values is
// exact in float32, so sgemm over bf16-rounded operands equals a bf16 GEMM with float32
// accumulation up to the order of its additions. It costs a little more than fp32 (the rounding
// copies are O(m·k + k·n) against the product's O(m·n·k)) and exists to measure what bf16 does
// to a model's metrics. Everything outside the products (LayerNorm, softmax, GELU, the loss's
// exponentials, the optimizer) stays float32. Double products (the gradient checks) never change.

import CBLAS
import CKernels
import Synchronization

/// How Float matrix products round their operands.
public enum MatmulPrecision: String, Sendable, Codable, CaseIterable {
    /// float32 operands and accumulation (OpenBLAS's sgemm).
    case fp32
    /// bf16 operands, float32 accumulation, through the BLAS's `cblas_sbgemm`; needs AVX-512 BF16
    /// or AMX and a BLAS that exports it.
    case bf16
    /// bf16's rounding of the operands on any CPU, computed by sgemm (fp32 speed or a little less).
    case bf16Emulated = "bf16-emulated"

    /// Why this CPU and BLAS cannot run `self`, or nil when they can.
    public func unsupportedReason(cpu: CPUFeatures = .current, sbgemmAvailable: Bool = GEMMPrecision.sbgemmAvailable) -> String? {
        guard self == .bf16 else { return nil }
        var missing: [String] = []
        if !(cpu.avx512bf16 || cpu.amxBF16) {
            missing.append("this CPU (\(cpu)) has neither AVX-512 BF16 nor AMX, so bf16 products would run no faster than fp32")
        }
        if !sbgemmAvailable {
            missing.append("the OpenBLAS loaded (\(Threads.blasConfig)) exports no cblas_sbgemm")
        }
        guard !missing.isEmpty else { return nil }
        return missing.joined(separator: "; and ")
            + ". Use --precision bf16-emulated for bf16's rounding at fp32 speed (to see its effect on a model), or fp32."
    }
}

/// The process-wide precision of Float products (see `MatmulPrecision`). A trainer sets it for its
/// run; it is read by every Float `gemm`.
public enum GEMMPrecision {
    private static let mode = Atomic<UInt8>(0)

    /// The current precision.
    public static var current: MatmulPrecision {
        switch mode.load(ordering: .relaxed) {
        case 1: .bf16
        case 2: .bf16Emulated
        default: .fp32
        }
    }

    /// Sets the precision of every later Float product in this process. `bf16` must be supported
    /// (`MatmulPrecision.unsupportedReason` is nil); otherwise this stops with that reason.
    public static func set(_ precision: MatmulPrecision) {
        if let reason = precision.unsupportedReason() { preconditionFailure("precision bf16: " + reason) }
        let raw: UInt8 = switch precision {
        case .fp32: 0
        case .bf16: 1
        case .bf16Emulated: 2
        }
        mode.store(raw, ordering: .relaxed)
    }

    /// Runs `body` with `precision`, then restores the previous one.
    public static func with<R>(_ precision: MatmulPrecision, _ body: () throws -> R) rethrows -> R {
        let previous = current
        set(precision)
        defer { set(previous) }
        return try body()
    }

    /// A Float product at `precision`, whatever the process-wide setting (the shapes of `gemm`).
    public static func gemm(
        precision: MatmulPrecision, transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int,
        alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if let reason = precision.unsupportedReason() { preconditionFailure("precision bf16: " + reason) }
        if m == 0 || n == 0 { return }
        if precision == .fp32 {
            cblas_sgemm(
                CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
        } else {
            bf16Gemm(
                native: precision == .bf16, transA: transA, transB: transB, m: m, n: n, k: k,
                alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        }
    }

    /// Whether the BLAS in this process exports `cblas_sbgemm`.
    public static let sbgemmAvailable: Bool = cliplab_sbgemm_available() != 0

    /// `C = alpha · op(A) · op(B) + beta · C` with A and B rounded to bf16 (the shapes of `gemm`).
    /// The operands are packed into per-thread scratch; `.bf16` runs `cblas_sbgemm` on them,
    /// `.bf16Emulated` sgemm.
    @usableFromInline
    static func bf16Gemm(
        native: Bool, transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        // The stored shapes: A is (m, k), or (k, m) when transposed; B is (k, n) or (n, k).
        let aRows = transA ? k : m, aCols = transA ? m : k
        let bRows = transB ? n : k, bCols = transB ? k : n
        let ta = transA ? CblasTrans : CblasNoTrans, tb = transB ? CblasTrans : CblasNoTrans
        if native {
            guard let pa = cliplab_bf16_pack_bits(a, aRows, aCols, lda, 0),
                  let pb = cliplab_bf16_pack_bits(b, bRows, bCols, ldb, 1)
            else { fatalError("bf16 gemm: cannot allocate the operand scratch (\(aRows * aCols + bRows * bCols) values)") }
            let status = cliplab_sbgemm(
                Int32(CblasRowMajor.rawValue), Int32(ta.rawValue), Int32(tb.rawValue), Int32(m), Int32(n), Int32(k),
                alpha, pa, Int32(max(1, aCols)), pb, Int32(max(1, bCols)), beta, c, Int32(ldc))
            precondition(status == 0, "bf16 gemm: cblas_sbgemm is not available")
        } else {
            guard let pa = cliplab_bf16_pack_rounded(a, aRows, aCols, lda, 0),
                  let pb = cliplab_bf16_pack_rounded(b, bRows, bCols, ldb, 1)
            else { fatalError("bf16 gemm: cannot allocate the operand scratch (\(aRows * aCols + bRows * bCols) values)") }
            cblas_sgemm(
                CblasRowMajor, ta, tb, blasint(m), blasint(n), blasint(k), alpha,
                pa, blasint(max(1, aCols)), pb, blasint(max(1, bCols)), beta, c, blasint(ldc))
        }
    }
}

/// `x` rounded to the nearest bfloat16 value (ties to even), as a Float.
@inlinable
public func bf16Rounded(_ x: Float) -> Float { cliplab_bf16_round(x) }
