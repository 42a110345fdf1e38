// The per-anchor-row work of FastCLIP's FCCO objectives, shared by the single-process estimator
// and the per-rank distributed one: ĝ of one anchor row against all B candidates of the global
// batch, the moving average u (and for individual temperatures the bound and the per-sample τ
// step), and the sums the step's statistics and the global τ-gradient are built from.

import Compute
import Foundation
import Layers

/// Sums over anchor rows (both sides). Additive over disjoint sets of rows, so ranks sum theirs.
struct RowSums {
    /// Σ D_i, D_i = Σ_j z_ij·exp(z_ij − L_i).
    var derivative = 0.0
    /// Σ log u_i (global τ; true scale).
    var logU = 0.0
    /// Σ L_i = Σ log(ε + u_i) (true scale).
    var logDenominator = 0.0
    /// Σ ĝ_i/(ε + u_i).
    var ratio = 0.0
    /// Σ log(1 + (B−1)ĝ_i): OpenCLIP's per-row cross-entropy.
    var crossEntropy = 0.0
    /// Σ τ_i.
    var tau = 0.0
    /// Σ τ_i(L_i + ρ) (individual temperatures).
    var robust = 0.0

    static let count = 7
    func write(to p: UnsafeMutablePointer<Double>) {
        for (k, v) in [derivative, logU, logDenominator, ratio, crossEntropy, tau, robust].enumerated() { p[k] = v }
    }
    init() {}
    init(from p: UnsafePointer<Double>) {
        (derivative, logU, logDenominator, ratio, crossEntropy, tau, robust) = (p[0], p[1], p[2], p[3], p[4], p[5], p[6])
    }
}

/// What one step's rows share: the objective, the global batch size, γ, the global τ and the
/// per-sample Adam constants of the epoch.
struct RowUpdate {
    let objective: ObjectiveConfiguration
    let batch: Int
    let gamma: Double
    let individual: Bool
    /// The global τ (unused for individual temperatures).
    let tau: Double
    let learningRateTau: Double
    let adamEpsilon: Double
    let beta1: Double, beta2: Double, bc1: Double, bc2: Double
    /// c of the model gradient: 1/(2B), or τ/(2B) for RGCL-g.
    let gradientScale: Double

    init(objective: ObjectiveConfiguration, batch: Int, gamma: Double, temperature: Double, epoch: Int, learningRateTau: Double, adam: AdamHyperparameters) {
        self.objective = objective
        self.batch = batch
        self.gamma = gamma
        individual = objective.loss == .rgcl
        tau = individual ? 0 : temperature
        self.learningRateTau = learningRateTau
        adamEpsilon = adam.epsilon
        // Per-sample Adam (§4.4): β = 0 in epoch 0; bias corrections with exponent epoch + 1.
        beta1 = epoch == 0 ? 0 : adam.beta1
        beta2 = epoch == 0 ? 0 : adam.beta2
        bc1 = 1 - Foundation.pow(beta1, Double(epoch + 1))
        bc2 = 1 - Foundation.pow(beta2, Double(epoch + 1))
        gradientScale = (objective.loss == .rgclG ? tau : 1) / Double(2 * batch)
    }

    /// Processes anchor `row` (its B similarities to the candidates, the anchor's own at index
    /// `selfIndex`, whose value is the positive `p`) of `side` for sample `id`: updates u (and
    /// the bound, τ and its moments) in `state`, adds to `sums`, and returns 1/τ_i (before the
    /// update) and L_i, the log of the true-scale denominator ε + u_i.
    @inlinable
    func process<T: Scalar>(side: Int, row: UnsafePointer<T>, selfIndex i: Int, positive p: Double, id: Int,
                            state: SampleState, sums: inout RowSums) -> (invTau: Double, logDenominator: Double) {
        let b = batch
        let tauI = individual ? state.tau[side][id] : tau
        let inv = 1 / tauI
        // Pass 1: the row's largest scaled difference.
        var mx = -Double.infinity
        for j in 0..<b where j != i { mx = max(mx, (Double(row[j]) - p) * inv) }
        let shift = individual ? max(state.bound[side][id], mx) : mx
        // Pass 2: ĝ·e^−shift.
        var sum = 0.0
        for j in 0..<b where j != i { sum += Foundation.exp((Double(row[j]) - p) * inv - shift) }
        let gShifted = sum / Double(b - 1)
        let logG = shift + Foundation.log(gShifted)
        // The moving average, and L_i = log(ε + u_i) on the true scale.
        let eps = objective.epsilon
        let L: Double
        if individual {
            let oldBound = state.bound[side][id]
            let u = SampleState.movingAverage(old: state.u[side][id], estimate: gShifted, gamma: gamma, rescale: Foundation.exp(oldBound - shift))
            state.u[side][id] = u
            state.bound[side][id] = shift
            let epsI = objective.epsilonScale == .shifted ? eps : eps * Foundation.exp(-shift)
            L = shift + Foundation.log(epsI + u)
        } else {
            let u = SampleState.movingAverage(old: state.u[side][id], estimate: Foundation.exp(logG), gamma: gamma)
            state.u[side][id] = u
            L = Foundation.log(eps + u)
            sums.logU += Foundation.log(u)
        }
        // Pass 3: D_i = Σ_j z_ij·exp(z_ij − L_i).
        var d = 0.0
        for j in 0..<b where j != i {
            let z = (Double(row[j]) - p) * inv
            d += z * Foundation.exp(z - L)
        }
        sums.derivative += d
        sums.logDenominator += L
        sums.ratio += Foundation.exp(logG - L)
        sums.crossEntropy += softplus(logG + Foundation.log(Double(b - 1)))
        sums.tau += tauI
        if individual {
            sums.robust += tauI * (L + objective.rho)
            // The per-sample τ step (§4.4): G = L + ρ − D/(B−1), clipped; Adam; clamp.
            let clip = objective.tauGradientClip
            let g = min(max(L + objective.rho - d / Double(b - 1), -clip), clip)
            let m = beta1 * state.tauMoment1[side][id] + (1 - beta1) * g
            let v = beta2 * state.tauMoment2[side][id] + (1 - beta2) * g * g
            state.tauMoment1[side][id] = m
            state.tauMoment2[side][id] = v
            let step = learningRateTau * (m / bc1) / ((v / bc2).squareRoot() + adamEpsilon)
            state.tau[side][id] = min(max(tauI - step, objective.temperatureMin), objective.temperatureMax)
        }
        return (inv, L)
    }

    /// The step's statistics and s-gradient from the sums over all 2B anchor rows.
    func statistics(_ s: RowSums) -> ObjectiveStepStatistics {
        var out = ObjectiveStepStatistics()
        let n2 = Double(2 * batch)
        out.temperature = s.tau / n2
        out.batchContrastive = s.crossEntropy / n2
        // Σ_sides Σ_i ∂_τ ĝ_i/(ε+u_i) = −(Σ D)/(τ(B−1)).
        let q = individual ? 0 : -s.derivative / (tau * Double(batch - 1))
        switch objective.loss {
        case .gcl:
            out.objective = tau * s.logDenominator / n2
            out.surrogate = gradientScale * s.ratio
            // v0: ∂/∂τ of (1/B)Σ_i Σ_sides ĝ_i/(ε+u_i) (§4.2).
            if objective.temperatureRule != .constant { out.logitScaleGradient = -tau * (q / Double(batch)) }
        case .rgclG:
            out.objective = tau * s.logU / n2 + objective.rho * tau
            out.surrogate = gradientScale * s.ratio + objective.rho * tau + tau * s.logU / n2
            // §4.3: G_τ = ρ + (1/2B)Σ log u + w·(τ/B)·Σ ∂_τĝ/(ε+u); ds = −τ·G_τ.
            let gTau = objective.rho + s.logU / n2 + objective.tauDerivativeWeight * (tau / Double(batch)) * q
            if objective.temperatureRule != .constant { out.logitScaleGradient = -tau * gTau }
        case .rgcl:
            out.objective = s.robust / n2
            out.surrogate = gradientScale * s.ratio
        case .mbcl:
            fatalError("RowUpdate: MBCL has no FCCO rows")
        }
        return out
    }
}
