// OpenCLIP's mini-batch contrastive loss (MBCL, `ClipLoss`), with the learnable logit scale:
//
//   u_i = x_i/‖x_i‖, v_i = y_i/‖y_i‖ (image and text features), s = exp(t), L = s·U·Vᵀ   (B, B)
//   loss = ½·[ (1/B)·Σ_i (LSE_j L_ij − L_ii) + (1/B)·Σ_j (LSE_i L_ij − L_jj) ]
//
// Gradients (P_row = row softmax of L, P_col = column softmax of L):
//   dL/dL_ij = (P_row,ij + P_col,ij − 2·δ_ij) / (2B)
//   dU = s·dL·V,  dV = s·dLᵀ·U,  dt = Σ_ij dL_ij · L_ij,
// then back through the L2 normalisation to the raw features.

import Compute
import Layers
import RealModule

/// The OpenCLIP objective over one batch of B pairs, with buffers sized once.
public final class MiniBatchContrastiveLoss<T: Scalar>: @unchecked Sendable {
    public let batch: Int
    public let dimension: Int
    /// Owns every buffer below; kept alive as long as the loss.
    public let workspace: Workspace<T>
    // Forward state, kept for backward.
    @usableFromInline let u: UnsafeMutablePointer<T>  // (B, E) normalised image features
    @usableFromInline let v: UnsafeMutablePointer<T>  // (B, E) normalised text features
    @usableFromInline let uNorms: UnsafeMutablePointer<T>  // (B)
    @usableFromInline let vNorms: UnsafeMutablePointer<T>  // (B)
    @usableFromInline let logits: UnsafeMutablePointer<T>  // (B, B)
    @usableFromInline let logitsT: UnsafeMutablePointer<T>  // (B, B) transposed
    @usableFromInline let probsRow: UnsafeMutablePointer<T>  // (B, B) row softmax
    @usableFromInline let probsColT: UnsafeMutablePointer<T>  // (B, B) column softmax, transposed
    @usableFromInline let lse: UnsafeMutablePointer<T>  // (B) scratch
    @usableFromInline let dLogits: UnsafeMutablePointer<T>  // (B, B)
    @usableFromInline let dU: UnsafeMutablePointer<T>  // (B, E)
    @usableFromInline let dV: UnsafeMutablePointer<T>  // (B, E)
    @usableFromInline var scale: T = 1

    /// The value of the last `forward`.
    public var loss: Double = 0

    public init(batch: Int, dimension: Int, workspace: Workspace<T>) {
        self.batch = batch
        self.dimension = dimension
        self.workspace = workspace
        let be = batch * dimension, bb = batch * batch
        u = workspace.allocate(be, label: "loss.u")
        v = workspace.allocate(be, label: "loss.v")
        uNorms = workspace.allocate(batch, label: "loss.norms")
        vNorms = workspace.allocate(batch, label: "loss.norms")
        logits = workspace.allocate(bb, label: "loss.logits")
        logitsT = workspace.allocate(bb, label: "loss.logits")
        probsRow = workspace.allocate(bb, label: "loss.probs")
        probsColT = workspace.allocate(bb, label: "loss.probs")
        lse = workspace.allocate(batch, label: "loss.lse")
        dLogits = workspace.allocate(bb, label: "loss.dlogits")
        dU = workspace.allocate(be, label: "loss.du")
        dV = workspace.allocate(be, label: "loss.dv")
    }

    /// Computes the loss for raw features (B, E) each and logit scale t; returns it.
    @discardableResult @inlinable
    public func forward(imageFeatures: UnsafePointer<T>, textFeatures: UnsafePointer<T>, logitScale t: T) -> Double {
        let b = batch, e = dimension
        l2NormalizeForward(imageFeatures, u, norms: uNorms, rows: b, cols: e)
        l2NormalizeForward(textFeatures, v, norms: vNorms, rows: b, cols: e)
        scale = T.exp(t)
        gemm(transB: true, m: b, n: b, k: e, alpha: scale, a: u, lda: e, b: v, ldb: e, beta: 0, c: logits, ldc: b)
        for i in 0..<b { for j in 0..<b { logitsT[j * b + i] = logits[i * b + j] } }
        var total = 0.0
        logSumExpRows(logits, lse, rows: b, cols: b)
        for i in 0..<b { total += Double(lse[i] - logits[i * b + i]) }
        logSumExpRows(logitsT, lse, rows: b, cols: b)
        for j in 0..<b { total += Double(lse[j] - logits[j * b + j]) }
        loss = total / Double(2 * b)
        softmaxRowsForward(logits, probsRow, rows: b, cols: b)
        softmaxRowsForward(logitsT, probsColT, rows: b, cols: b)
        return loss
    }

    /// Writes dL/d(image features) and dL/d(text features), (B, E) each (overwritten, not
    /// accumulated), and returns dL/dt for the logit scale. Call after `forward`.
    @discardableResult @inlinable
    public func backward(dImageFeatures: UnsafeMutablePointer<T>, dTextFeatures: UnsafeMutablePointer<T>) -> T {
        let b = batch, e = dimension
        let inv = 1 / T(2 * b)
        var dt: T = 0
        for i in 0..<b {
            for j in 0..<b {
                var g = probsRow[i * b + j] + probsColT[j * b + i]
                if i == j { g -= 2 }
                g *= inv
                dLogits[i * b + j] = g
                dt += g * logits[i * b + j]
            }
        }
        gemm(m: b, n: e, k: b, alpha: scale, a: dLogits, lda: b, b: v, ldb: e, beta: 0, c: dU, ldc: e)
        gemm(transA: true, m: b, n: e, k: b, alpha: scale, a: dLogits, lda: b, b: u, ldb: e, beta: 0, c: dV, ldc: e)
        dImageFeatures.update(repeating: 0, count: b * e)
        dTextFeatures.update(repeating: 0, count: b * e)
        l2NormalizeBackward(dU, y: u, norms: uNorms, dx: dImageFeatures, rows: b, cols: e)
        l2NormalizeBackward(dV, y: v, norms: vNorms, dx: dTextFeatures, rows: b, cols: e)
        return dt
    }

    /// The scaled logits s·u_i·v_j of the last forward, (B, B) row-major (for tests and metrics).
    public func logitMatrix() -> [T] { Array(UnsafeBufferPointer(start: logits, count: batch * batch)) }
}
