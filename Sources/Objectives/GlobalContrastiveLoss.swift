// FastCLIP's compositional (FCCO) estimators for GCL, RGCL and RGCL-g (FastCLIP §3–§4), over one
// global batch of B pairs with their global sample ids.
//
// Notation (normalised features e1 = image, e2 = text; S_ij = ⟨e1_i, e2_j⟩):
//   side 1 (image anchor i):  z_ij = (S_ij − S_ii)/τ_i,   side 2 (text anchor i):  z_ij = (S_ji − S_ii)/τ_i
//   ĝ_i = (1/(B−1)) Σ_{j≠i} exp(z_ij)                                   (eq. 1, per side)
//   u_i ← (1−γ)·u_i + γ·ĝ_i    (u ← ĝ when γ = 1 or the old u is unset or bad; eq. 2)
// The model gradient (§4.1–4.4) is
//   G_w = c · Σ_i Σ_sides ∇ĝ_i / (ε + u_i),   c = 1/(2B) (GCL, RGCL) or τ/(2B) (RGCL-g),
// i.e. the entries of dS: for j ≠ i, dS_ij = c·exp(z_ij)/((B−1)·τ_i·(ε + u_i)) and dS_ii = −Σ_j dS_ij,
// on S for side 1 and on Sᵀ for side 2. Every exponent is taken as exp(z_ij − L_i) with
// L_i = log(ε + u_i) (u on the true scale), so no exp overflows at τ = 0.01 (§11 note 4); ĝ itself
// is summed with the row's max shifted out.
//
// Individual temperatures (§4.4) store u shifted by a running bound b' = max(b, max_j z_ij):
// u_stored = u·e^−b', so L_i = b'_i + log(ε_i + u_stored,i), with ε_i = ε (reference) or ε·e^−b'.
//
// `backward` builds the closed form directly, dS_total = dS(side 1) + dS(side 2)ᵀ. The per-worker
// two-piece form (each rank's anchors' rows and its samples' columns, with no feature-gradient
// communication) is `DistributedObjective`'s `fastclip` reduction, tested against this closed form.

import Compute
import Foundation
import Layers

/// What one step of an objective reports (all on the global batch).
public struct ObjectiveStepStatistics: Sendable {
    /// The scalar whose feature gradient is the estimator: c·Σ ĝ/(ε+u) (+ ρτ + τ·mean ½Σlog u for
    /// RGCL-g, where it can be negative). It is the analogue of the value the reference code logs
    /// as its "loss" (whose ratio term is twice this one, from its two per-worker pieces), not an
    /// objective value.
    public var surrogate = 0.0
    /// An estimate of the true objective with u in place of g: GCL τ·mean ½Σlog(ε+u);
    /// RGCL-g τ·mean ½Σlog u + ρτ; RGCL mean ½Σ τ_i(log(ε+u_i) + ρ); MBCL its value.
    public var objective = 0.0
    /// OpenCLIP's mini-batch contrastive loss on the batch at the temperatures used (comparable
    /// across objectives): (1/2B) Σ_i Σ_sides log(1 + (B−1)·ĝ_i).
    public var batchContrastive = 0.0
    /// Mean temperature of the batch's rows.
    public var temperature = 0.0
    /// dL/ds for the global logit scale s = ln(1/τ) (0 for constant or individual temperatures).
    public var logitScaleGradient = 0.0
    public init() {}
}

/// The FCCO estimator of one objective (GCL, RGCL or RGCL-g) with buffers sized once.
public final class GlobalContrastiveLoss<T: Scalar>: @unchecked Sendable {
    public let batch: Int
    public let dimension: Int
    public let objective: ObjectiveConfiguration
    /// Adam moments' β and ε of the per-sample temperatures (the model's, as the reference).
    public let temperatureAdam: AdamHyperparameters
    public let workspace: Workspace<T>

    @usableFromInline let e1: UnsafeMutablePointer<T>  // (B, E) normalised image features
    @usableFromInline let e2: UnsafeMutablePointer<T>  // (B, E) normalised text features
    @usableFromInline let norms1: UnsafeMutablePointer<T>  // (B)
    @usableFromInline let norms2: UnsafeMutablePointer<T>  // (B)
    @usableFromInline let s: UnsafeMutablePointer<T>  // (B, B) S_ij = ⟨e1_i, e2_j⟩
    @usableFromInline let st: UnsafeMutablePointer<T>  // (B, B) Sᵀ: rows of side 2
    @usableFromInline let dS: UnsafeMutablePointer<T>  // (B, B) dL/dS (side 1, then + side 2ᵀ)
    @usableFromInline let dS2: UnsafeMutablePointer<T>  // (B, B) dL/dSᵀ of side 2
    @usableFromInline let dE1: UnsafeMutablePointer<T>  // (B, E) dL/de1
    @usableFromInline let dE2: UnsafeMutablePointer<T>  // (B, E) dL/de2
    // Per row and side, kept from forward for backward (in the distributed form these are what
    // a worker gathers): 1/τ_i (the temperature before this step's update), L_i and S_ii.
    @usableFromInline var invTau: [[Double]]  // 2 × (B)
    @usableFromInline var logDenominator: [[Double]]  // 2 × (B)
    @usableFromInline var diagonal: [Double]  // (B)
    /// c of the model gradient (1/(2B), or τ/(2B) for RGCL-g).
    @usableFromInline var gradientScale = 0.0
    @usableFromInline var ids: [Int]

    /// The statistics of the last `forward`.
    public private(set) var statistics = ObjectiveStepStatistics()

    public init(batch: Int, dimension: Int, objective: ObjectiveConfiguration, temperatureAdam: AdamHyperparameters, workspace: Workspace<T>) {
        precondition(objective.loss.usesSampleState, "GlobalContrastiveLoss: \(objective.loss.rawValue) is not an FCCO objective")
        precondition(batch >= 2, "GlobalContrastiveLoss: batch must be ≥ 2")
        self.batch = batch
        self.dimension = dimension
        self.objective = objective
        self.temperatureAdam = temperatureAdam
        self.workspace = workspace
        let be = batch * dimension, bb = batch * batch
        e1 = workspace.allocate(be, label: "objective.e")
        e2 = workspace.allocate(be, label: "objective.e")
        norms1 = workspace.allocate(batch, label: "objective.norms")
        norms2 = workspace.allocate(batch, label: "objective.norms")
        s = workspace.allocate(bb, label: "objective.similarities")
        st = workspace.allocate(bb, label: "objective.similarities")
        dS = workspace.allocate(bb, label: "objective.dS")
        dS2 = workspace.allocate(bb, label: "objective.dS")
        dE1 = workspace.allocate(be, label: "objective.de")
        dE2 = workspace.allocate(be, label: "objective.de")
        invTau = [[Double]](repeating: [Double](repeating: 0, count: batch), count: 2)
        logDenominator = invTau
        diagonal = [Double](repeating: 0, count: batch)
        ids = [Int](repeating: 0, count: batch)
    }

    /// One step's forward: normalises the raw features (B, E), computes ĝ for both sides of
    /// every row, updates the batch's u (and for individual temperatures the bound, τ and its
    /// Adam moments) in `state`, and keeps what backward needs.
    ///
    /// - ids: the B global sample ids; `temperature`: the global τ (ignored for individual
    ///   temperatures); `gamma`: the epoch's inner LR; `epoch`: 0-based (the per-sample Adam uses
    ///   β = 0 in epoch 0 and bias corrections with exponent epoch + 1); `learningRateTau`: the
    ///   per-sample Adam's lr_τ.
    @discardableResult
    public func forward<C: Collection<Int>>(
        imageFeatures: UnsafePointer<T>, textFeatures: UnsafePointer<T>, ids batchIDs: C,
        temperature: Double, gamma: Double, epoch: Int, state: SampleState, learningRateTau: Double = 0
    ) -> ObjectiveStepStatistics {
        let b = batch, e = dimension
        precondition(batchIDs.count == b, "GlobalContrastiveLoss: \(batchIDs.count) ids for a batch of \(b)")
        precondition(state.individual == (objective.loss == .rgcl), "GlobalContrastiveLoss: state kind does not match the loss")
        for (k, id) in batchIDs.enumerated() {
            precondition(id >= 0 && id < state.count, "GlobalContrastiveLoss: sample id \(id) outside 0..<\(state.count)")
            ids[k] = id
        }
        l2NormalizeForward(imageFeatures, e1, norms: norms1, rows: b, cols: e)
        l2NormalizeForward(textFeatures, e2, norms: norms2, rows: b, cols: e)
        gemm(transB: true, m: b, n: b, k: e, alpha: 1, a: e1, lda: e, b: e2, ldb: e, beta: 0, c: s, ldc: b)
        for i in 0..<b {
            for j in 0..<b { st[j * b + i] = s[i * b + j] }
            diagonal[i] = Double(s[i * b + i])
        }
        let update = RowUpdate(
            objective: objective, batch: b, gamma: gamma, temperature: temperature, epoch: epoch,
            learningRateTau: learningRateTau, adam: temperatureAdam)
        gradientScale = update.gradientScale
        var sums = RowSums()
        for side in 0..<2 {
            let rows = side == 0 ? s : st
            for i in 0..<b {
                let r = update.process(side: side, row: rows + i * b, selfIndex: i, positive: diagonal[i], id: ids[i], state: state, sums: &sums)
                invTau[side][i] = r.invTau
                logDenominator[side][i] = r.logDenominator
            }
        }
        let out = update.statistics(sums)
        statistics = out
        return out
    }

    /// The weight dS of candidate value `sv` in row `i` of `side`: c·exp(z − L_i)/((B−1)τ_i).
    @inlinable
    func weight(side: Int, row i: Int, value sv: T) -> T {
        let inv = invTau[side][i]
        let z = (Double(sv) - diagonal[i]) * inv
        return T(gradientScale / Double(batch - 1) * inv * Foundation.exp(z - logDenominator[side][i]))
    }

    /// The closed-form feature gradients of the last `forward`: writes dL/d(raw image features)
    /// and dL/d(raw text features), (B, E) each (overwritten).
    public func backward(dImageFeatures: UnsafeMutablePointer<T>, dTextFeatures: UnsafeMutablePointer<T>) {
        let b = batch, e = dimension
        for side in 0..<2 {
            let rows = side == 0 ? s : st
            let out = side == 0 ? dS : dS2
            for i in 0..<b {
                var diag: T = 0
                for j in 0..<b where j != i {
                    let w = weight(side: side, row: i, value: rows[i * b + j])
                    out[i * b + j] = w
                    diag -= w
                }
                out[i * b + i] = diag
            }
        }
        // dS_total = dS1 + dS2ᵀ; dE1 = dS_total·E2, dE2 = dS_totalᵀ·E1.
        for i in 0..<b { for j in 0..<b { dS[i * b + j] += dS2[j * b + i] } }
        gemm(m: b, n: e, k: b, alpha: 1, a: dS, lda: b, b: e2, ldb: e, beta: 0, c: dE1, ldc: e)
        gemm(transA: true, m: b, n: e, k: b, alpha: 1, a: dS, lda: b, b: e1, ldb: e, beta: 0, c: dE2, ldc: e)
        dImageFeatures.update(repeating: 0, count: b * e)
        dTextFeatures.update(repeating: 0, count: b * e)
        l2NormalizeBackward(dE1, y: e1, norms: norms1, dx: dImageFeatures, rows: b, cols: e)
        l2NormalizeBackward(dE2, y: e2, norms: norms2, dx: dTextFeatures, rows: b, cols: e)
    }
}

/// log(1 + eˣ) without overflow.
@inlinable func softplus(_ x: Double) -> Double {
    x > 30 ? x + Foundation.log1p(Foundation.exp(-x)) : Foundation.log1p(Foundation.exp(x))
}
