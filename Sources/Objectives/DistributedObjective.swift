// Rank k's share of an objective over a global batch of B = K·b pairs split into K contiguous local
// batches (FastCLIP §3.1 and §7), with either gradient reduction:
//
//   openclip: all-gather the features; each rank computes its anchors' rows of dS against every
//             candidate and the gradient of *all* B features from them; a reduce-scatter sums the
//             feature gradients back to their owners (§7.1).
//   fastclip: all-gather the features and the per-sample scalars (u and ids; for individual τ the
//             old and new τ, the bounds and the Adam moments; for MBCL the rows' log-sum-exp); each
//             rank computes its own features' gradient with the two-piece form, with no
//             feature-gradient communication (§4.1, §7.2).
//
// Either way the per-sample tables stay equal on every rank (the gathered u are written by all,
// §3.1 step 5), and the statistics and the logit-scale gradient are global (a small all-reduce).
// Every anchor row's dS entry has one form (j ≠ i; the diagonal is −Σ of its row):
//   w_ij = k_i · exp((v_ij − S_ii)·invτ_i − L_i)
//   FCCO: k_i = c·invτ_i/(B−1), L_i = log of the true-scale ε + u_i   (see GlobalContrastiveLoss)
//   MBCL: k_i = s/(2B), invτ_i = s = 1/τ, L_i = LSE_j(s·S_ij) − s·S_ii  (softmax weights)
// so a rank needs only (invτ_i, L_i) of remote rows to weigh them as candidates' anchors.

import Collective
import Compute
import Foundation
import Layers

/// How feature gradients reach their owners in data-parallel training (§7).
public enum GradientReduction: String, Codable, Sendable, CaseIterable {
    /// OpenCLIP's: all-gather features, reduce-scatter the feature gradients.
    case openclip
    /// FastCLIP's: all-gather features and per-sample scalars; no feature-gradient communication.
    case fastclip
}

public final class DistributedObjective<T: Scalar & CollectiveScalar>: @unchecked Sendable {
    public let configuration: ObjectiveConfiguration
    public let reduction: GradientReduction
    public let communicator: any Communicator
    public let globalBatch: Int
    public let localBatch: Int
    public let dimension: Int
    public let innerLRSchedule: InnerLRSchedule
    /// The per-sample tables (nil for MBCL), equal on every rank after each step.
    public let state: SampleState?
    let adam: AdamHyperparameters
    let workspace = Workspace<T>()
    var rank: Int { communicator.rank }
    var isMBCL: Bool { configuration.loss == .mbcl }
    /// Per-row scalars gathered for the fastclip reduction and the table update.
    let scalarsPerRow: Int

    let e1: UnsafeMutablePointer<T>  // (b, E) normalised local image features
    let e2: UnsafeMutablePointer<T>  // (b, E) normalised local text features
    let norms1: UnsafeMutablePointer<T>  // (b)
    let norms2: UnsafeMutablePointer<T>  // (b)
    let send: UnsafeMutablePointer<T>  // (2bE): [e1; e2] to gather; then the reduce-scatter result
    let gathered: UnsafeMutablePointer<T>  // (K·2bE) rank-major [e1_q; e2_q]
    let all1: UnsafeMutablePointer<T>  // (B, E) every rank's e1
    let all2: UnsafeMutablePointer<T>  // (B, E) every rank's e2
    let r1: UnsafeMutablePointer<T>  // (b, B) e1_k·E2ᵀ: side-1 rows of the local anchors
    let r2: UnsafeMutablePointer<T>  // (b, B) e2_k·E1ᵀ: side-2 rows of the local anchors
    let m1: UnsafeMutablePointer<T>  // (b, B) weights (A1, or A1 + C2)
    let m2: UnsafeMutablePointer<T>  // (b, B) weights (A2, or A2 + C1)
    let dAll: UnsafeMutablePointer<T>  // (K·2bE) openclip: rank-major [dE1_q; dE2_q] to reduce-scatter
    let dE1: UnsafeMutablePointer<T>  // (b, E)
    let dE2: UnsafeMutablePointer<T>  // (b, E)
    var invTau: [[Double]]  // 2 × (B)
    var logDenominator: [[Double]]  // 2 × (B)
    var coefficient: [[Double]]  // 2 × (B): k_i
    var diagonal: [Double]  // (B) S_ii
    var scalars: [Double]  // (b·w) this rank's per-row scalars
    var gatheredScalars: [Double]  // (B·w)
    var sums: [Double]  // RowSums.count + 1: the rows' sums, then MBCL's Σ dL/ds

    /// - datasetCount: the id range of the per-sample state; epochs: the run's length (γ);
    ///   adam: the model's Adam β and ε (the per-sample τ rule reuses them).
    public init(
        _ configuration: ObjectiveConfiguration, reduction: GradientReduction, communicator: any Communicator,
        globalBatch: Int, dimension: Int, datasetCount: Int, epochs: Int, adam: AdamHyperparameters
    ) throws {
        try configuration.validate()
        let k = communicator.size
        guard globalBatch % k == 0, globalBatch / k >= 1, globalBatch >= 2 else {
            throw ObjectiveError(option: "--batch-size", reason: "the global batch \(globalBatch) must split evenly over \(k) ranks")
        }
        self.configuration = configuration
        self.reduction = reduction
        self.communicator = communicator
        self.globalBatch = globalBatch
        localBatch = globalBatch / k
        self.dimension = dimension
        self.adam = adam
        innerLRSchedule = InnerLRSchedule(configuration, totalEpochs: epochs)
        state = configuration.loss.usesSampleState
            ? SampleState(count: datasetCount, individual: configuration.loss == .rgcl, temperatureInit: configuration.temperatureInit) : nil
        scalarsPerRow = configuration.loss == .mbcl ? 2 : (configuration.loss == .rgcl ? 13 : 3)
        let b = localBatch, bb = globalBatch, e = dimension
        e1 = workspace.allocate(b * e, label: "distributed.e")
        e2 = workspace.allocate(b * e, label: "distributed.e")
        norms1 = workspace.allocate(b, label: "distributed.norms")
        norms2 = workspace.allocate(b, label: "distributed.norms")
        send = workspace.allocate(2 * b * e, label: "distributed.send")
        gathered = workspace.allocate(2 * bb * e, label: "distributed.gathered")
        all1 = workspace.allocate(bb * e, label: "distributed.all")
        all2 = workspace.allocate(bb * e, label: "distributed.all")
        r1 = workspace.allocate(b * bb, label: "distributed.rows")
        r2 = workspace.allocate(b * bb, label: "distributed.rows")
        m1 = workspace.allocate(b * bb, label: "distributed.weights")
        m2 = workspace.allocate(b * bb, label: "distributed.weights")
        dAll = workspace.allocate(reduction == .openclip ? 2 * bb * e : 1, label: "distributed.dAll")
        dE1 = workspace.allocate(b * e, label: "distributed.de")
        dE2 = workspace.allocate(b * e, label: "distributed.de")
        invTau = [[Double]](repeating: [Double](repeating: 0, count: bb), count: 2)
        logDenominator = invTau
        coefficient = invTau
        diagonal = [Double](repeating: 0, count: bb)
        scalars = [Double](repeating: 0, count: b * scalarsPerRow)
        gatheredScalars = [Double](repeating: 0, count: bb * scalarsPerRow)
        sums = [Double](repeating: 0, count: RowSums.count + 1)
    }

    /// The weight of value `v` in anchor row `i` of `side` (the header's w_ij).
    @inline(__always)
    func weight(_ side: Int, _ i: Int, _ v: T) -> T {
        let inv = invTau[side][i]
        return T(coefficient[side][i] * Foundation.exp((Double(v) - diagonal[i]) * inv - logDenominator[side][i]))
    }

    /// One step of this rank: raw local features (b, E) each and the local samples' global ids;
    /// writes dL/d(local raw features), (b, E) each (overwritten). Collective: every rank calls
    /// it with its own slice. The result's statistics are global, and so is its
    /// `logitScaleGradient` (add it on one rank only before summing parameter gradients).
    public func step<C: Collection<Int>>(
        imageFeatures: UnsafePointer<T>, textFeatures: UnsafePointer<T>, ids localIDs: C, logitScale: T, epoch: Int,
        dImageFeatures: UnsafeMutablePointer<T>, dTextFeatures: UnsafeMutablePointer<T>
    ) throws -> ObjectiveStepStatistics {
        let b = localBatch, bb = globalBatch, e = dimension, k = communicator.size, lo = rank * b
        precondition(localIDs.count == b, "DistributedObjective: \(localIDs.count) ids for a local batch of \(b)")
        // Normalise and gather the features.
        l2NormalizeForward(imageFeatures, e1, norms: norms1, rows: b, cols: e)
        l2NormalizeForward(textFeatures, e2, norms: norms2, rows: b, cols: e)
        send.update(from: e1, count: b * e)
        (send + b * e).update(from: e2, count: b * e)
        try communicator.allGather(UnsafePointer(send), count: 2 * b * e, into: gathered)
        for q in 0..<k {
            all1.advanced(by: q * b * e).update(from: gathered + q * 2 * b * e, count: b * e)
            all2.advanced(by: q * b * e).update(from: gathered + q * 2 * b * e + b * e, count: b * e)
        }
        gemm(transB: true, m: b, n: bb, k: e, alpha: 1, a: e1, lda: e, b: all2, ldb: e, beta: 0, c: r1, ldc: bb)
        gemm(transB: true, m: b, n: bb, k: e, alpha: 1, a: e2, lda: e, b: all1, ldb: e, beta: 0, c: r2, ldc: bb)
        for i in 0..<bb { diagonal[i] = Double(dot(all1 + i * e, all2 + i * e, count: e)) }

        // The local anchors' rows, and the scalars other ranks need.
        let w = scalarsPerRow
        var rowSums = RowSums()
        var update: RowUpdate?
        let s = Foundation.exp(Double(logitScale))
        if isMBCL {
            for side in 0..<2 {
                let rows = side == 0 ? r1 : r2
                for r in 0..<b {
                    let g = lo + r, row = rows + r * bb
                    var mx = -Double.infinity
                    for j in 0..<bb { mx = max(mx, s * Double(row[j])) }
                    var sum = 0.0
                    for j in 0..<bb { sum += Foundation.exp(s * Double(row[j]) - mx) }
                    let L = mx + Foundation.log(sum) - s * diagonal[g]  // the row's cross-entropy
                    rowSums.crossEntropy += L
                    scalars[r * w + side] = L
                }
            }
        } else {
            let state = state!
            let u = RowUpdate(
                objective: configuration, batch: bb, gamma: innerLRSchedule.gamma(epoch: epoch), temperature: Foundation.exp(-Double(logitScale)),
                epoch: epoch, learningRateTau: configuration.learningRateTau ?? 0, adam: adam)
            update = u
            for (r, id) in localIDs.enumerated() {
                precondition(id >= 0 && id < state.count, "DistributedObjective: sample id \(id) outside 0..<\(state.count)")
                let g = lo + r
                let base = r * w
                scalars[base] = Double(id)
                if state.individual {
                    scalars[base + 3] = state.tau[0][id]
                    scalars[base + 4] = state.tau[1][id]
                }
                for side in 0..<2 {
                    _ = u.process(side: side, row: (side == 0 ? r1 : r2) + r * bb, selfIndex: g, positive: diagonal[g], id: id, state: state, sums: &rowSums)
                }
                scalars[base + 1] = state.u[0][id]
                scalars[base + 2] = state.u[1][id]
                if state.individual {
                    for side in 0..<2 {
                        scalars[base + 5 + side] = state.bound[side][id]
                        scalars[base + 7 + side] = state.tau[side][id]
                        scalars[base + 9 + side] = state.tauMoment1[side][id]
                        scalars[base + 11 + side] = state.tauMoment2[side][id]
                    }
                }
            }
        }
        // Gather the per-row scalars (the table update needs them under either reduction).
        if !(isMBCL && reduction == .openclip) {
            try scalars.withUnsafeBufferPointer { src in
                try gatheredScalars.withUnsafeMutableBufferPointer { try communicator.allGather(src.baseAddress!, count: b * w, into: $0.baseAddress!) }
            }
        }
        // Every row's weights (invτ, L, k), and the tables of the other ranks' samples.
        let eps = configuration.epsilon
        for i in 0..<bb {
            let mine = i >= lo && i < lo + b
            let base = i * w
            for side in 0..<2 {
                if isMBCL {
                    invTau[side][i] = s
                    coefficient[side][i] = s / Double(2 * bb)
                    if mine || reduction == .fastclip {
                        logDenominator[side][i] = mine ? scalars[(i - lo) * w + side] : gatheredScalars[base + side]
                    }
                    continue
                }
                let state = state!, u = update!
                let id = Int(gatheredScalars[base])
                let uValue = gatheredScalars[base + 1 + side]
                if state.individual {
                    let oldTau = gatheredScalars[base + 3 + side], bound = gatheredScalars[base + 5 + side]
                    invTau[side][i] = 1 / oldTau
                    let epsI = configuration.epsilonScale == .shifted ? eps : eps * Foundation.exp(-bound)
                    logDenominator[side][i] = bound + Foundation.log(epsI + uValue)
                    if !mine {
                        state.bound[side][id] = bound
                        state.tau[side][id] = gatheredScalars[base + 7 + side]
                        state.tauMoment1[side][id] = gatheredScalars[base + 9 + side]
                        state.tauMoment2[side][id] = gatheredScalars[base + 11 + side]
                    }
                } else {
                    invTau[side][i] = 1 / u.tau
                    logDenominator[side][i] = Foundation.log(eps + uValue)
                }
                if !mine { state.u[side][id] = uValue }
                coefficient[side][i] = u.gradientScale * invTau[side][i] / Double(bb - 1)
            }
        }

        // Local anchors' rows of dS (A1, A2, with their diagonals).
        for r in 0..<b {
            let g = lo + r
            var d1: T = 0, d2: T = 0
            for j in 0..<bb where j != g {
                let a1 = weight(0, g, r1[r * bb + j]), a2 = weight(1, g, r2[r * bb + j])
                m1[r * bb + j] = a1
                m2[r * bb + j] = a2
                d1 -= a1
                d2 -= a2
            }
            m1[r * bb + g] = d1
            m2[r * bb + g] = d2
        }
        // MBCL's s-gradient: Σ_ij dL/dlogit_ij·logit_ij = Σ (w_ij/s)·s·S_ij over the local rows.
        var scaleGradient = 0.0
        if isMBCL {
            for r in 0..<b { for j in 0..<bb { scaleGradient += Double(m1[r * bb + j]) * Double(r1[r * bb + j]) + Double(m2[r * bb + j]) * Double(r2[r * bb + j]) } }
        }

        switch reduction {
        case .openclip:
            // Gradients of every feature from the local rows, summed back to their owners.
            let dAll1 = gathered, dAll2 = gathered + bb * e  // (B, E) each; the gathered copy is no longer needed
            gemm(transA: true, m: bb, n: e, k: b, alpha: 1, a: m2, lda: bb, b: e2, ldb: e, beta: 0, c: dAll1, ldc: e)
            gemm(transA: true, m: bb, n: e, k: b, alpha: 1, a: m1, lda: bb, b: e1, ldb: e, beta: 0, c: dAll2, ldc: e)
            gemm(m: b, n: e, k: bb, alpha: 1, a: m1, lda: bb, b: all2, ldb: e, beta: 1, c: dAll1 + lo * e, ldc: e)
            gemm(m: b, n: e, k: bb, alpha: 1, a: m2, lda: bb, b: all1, ldb: e, beta: 1, c: dAll2 + lo * e, ldc: e)
            for q in 0..<k {
                (dAll + q * 2 * b * e).update(from: dAll1 + q * b * e, count: b * e)
                (dAll + q * 2 * b * e + b * e).update(from: dAll2 + q * b * e, count: b * e)
            }
            try communicator.reduceScatterSum(UnsafePointer(dAll), into: send, countPerRank: 2 * b * e)
            dE1.update(from: send, count: b * e)
            dE2.update(from: send + b * e, count: b * e)
        case .fastclip:
            // Piece 2: the local samples as candidates of every anchor (C1 from R2, C2 from R1).
            for r in 0..<b {
                let g = lo + r
                for i in 0..<bb where i != g {
                    m1[r * bb + i] += weight(1, i, r1[r * bb + i])
                    m2[r * bb + i] += weight(0, i, r2[r * bb + i])
                }
            }
            gemm(m: b, n: e, k: bb, alpha: 1, a: m1, lda: bb, b: all2, ldb: e, beta: 0, c: dE1, ldc: e)
            gemm(m: b, n: e, k: bb, alpha: 1, a: m2, lda: bb, b: all1, ldb: e, beta: 0, c: dE2, ldc: e)
            for r in 0..<b {
                let g = lo + r
                let a1 = m1[r * bb + g], a2 = m2[r * bb + g]
                for c in 0..<e {
                    dE1[r * e + c] += a2 * e2[r * e + c]
                    dE2[r * e + c] += a1 * e1[r * e + c]
                }
            }
        }
        dImageFeatures.update(repeating: 0, count: b * e)
        dTextFeatures.update(repeating: 0, count: b * e)
        l2NormalizeBackward(dE1, y: e1, norms: norms1, dx: dImageFeatures, rows: b, cols: e)
        l2NormalizeBackward(dE2, y: e2, norms: norms2, dx: dTextFeatures, rows: b, cols: e)

        // Global statistics: sum the rows' sums over ranks.
        rowSums.write(to: &sums)
        sums[RowSums.count] = scaleGradient
        try sums.withUnsafeMutableBufferPointer { try communicator.allReduceSum($0.baseAddress!, count: $0.count) }
        if isMBCL {
            var out = ObjectiveStepStatistics()
            let value = sums[4] / Double(2 * bb)
            out.surrogate = value
            out.objective = value
            out.batchContrastive = value
            out.temperature = 1 / s
            let rule = configuration.temperatureRule
            out.logitScaleGradient = rule == .learnable || rule == .rgclG ? sums[RowSums.count] : 0
            return out
        }
        return update!.statistics(sums.withUnsafeBufferPointer { RowSums(from: $0.baseAddress!) })
    }
}
