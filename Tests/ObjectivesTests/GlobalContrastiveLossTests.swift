import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

/// Brute-force Double versions of FastCLIP's formulas (§2–§4), written from the specification
/// with plain loops, independently of the estimator's matrix form.
enum Brute {
    static func normalized(_ m: [Double], b: Int, e: Int) -> [Double] {
        var out = m
        for i in 0..<b {
            let n = (0..<e).map { m[i * e + $0] * m[i * e + $0] }.reduce(0, +).squareRoot()
            for j in 0..<e { out[i * e + j] = m[i * e + j] / n }
        }
        return out
    }

    static func dot(_ a: [Double], _ i: Int, _ c: [Double], _ j: Int, e: Int) -> Double {
        (0..<e).map { a[i * e + $0] * c[j * e + $0] }.reduce(0, +)
    }

    /// ĝ_i of `side` (0: image anchor, 1: text anchor) at temperature τ:
    /// (1/(B−1)) Σ_{j≠i} exp((⟨a_i, c_j⟩ − ⟨e1_i, e2_i⟩)/τ).
    static func g(_ x: [Double], _ y: [Double], side: Int, row i: Int, tau: Double, b: Int, e: Int) -> Double {
        let e1 = normalized(x, b: b, e: e), e2 = normalized(y, b: b, e: e)
        let (a, c) = side == 0 ? (e1, e2) : (e2, e1)
        let p = dot(e1, i, e2, i, e: e)
        var sum = 0.0
        for j in 0..<b where j != i { sum += Foundation.exp((dot(a, i, c, j, e: e) - p) / tau) }
        return sum / Double(b - 1)
    }

    /// c · Σ_sides Σ_i ĝ_i(τ_i) / d_i with constant denominators d (the surrogate whose gradient
    /// in the features is the estimator).
    static func surrogate(_ x: [Double], _ y: [Double], taus: [[Double]], denominators: [[Double]], scale: Double, b: Int, e: Int) -> Double {
        var total = 0.0
        for side in 0..<2 { for i in 0..<b { total += g(x, y, side: side, row: i, tau: taus[side][i], b: b, e: e) / denominators[side][i] } }
        return scale * total
    }

    /// Central differences of f over every element of `x`.
    static func gradient(_ x: [Double], h: Double = 1e-6, _ f: ([Double]) -> Double) -> [Double] {
        var out = [Double](repeating: 0, count: x.count)
        var xp = x
        for k in x.indices {
            xp[k] = x[k] + h
            let up = f(xp)
            xp[k] = x[k] - h
            let down = f(xp)
            xp[k] = x[k]
            out[k] = (up - down) / (2 * h)
        }
        return out
    }
}

@Suite("FastCLIP estimators against brute force")
struct GlobalContrastiveLossTests {
    let adam = AdamHyperparameters(beta1: 0.9, beta2: 0.98, epsilon: 1e-6)

    /// A loss, a state with some ids visited before (u set, for γ < 1 to matter), raw features.
    func setup(_ config: ObjectiveConfiguration, b: Int, e: Int, seed: UInt64, count: Int = 40)
        -> (GlobalContrastiveLoss<Double>, SampleState, [Double], [Double], [Int])
    {
        let loss = GlobalContrastiveLoss<Double>(batch: b, dimension: e, objective: config, temperatureAdam: adam, workspace: Workspace())
        let state = SampleState(count: count, individual: config.loss == .rgcl, temperatureInit: config.temperatureInit)
        let x = randomArray(b * e, seed: seed, stream: "x"), y = randomArray(b * e, seed: seed, stream: "y")
        let ids = CounterRNG(seed: seed, streamNamed: "ids").permutation(count).prefix(b).map { $0 }
        // Half the ids carry an old u (some in the individual case with a bound and its own τ).
        let olds = uniformArray(count, seed: seed, stream: "u", low: 0.2, high: 3)
        let taus = uniformArray(count, seed: seed, stream: "tau", low: 0.05, high: 0.4)
        for side in 0..<2 {
            for id in 0..<count where id % 2 == 0 {
                state.u[side][id] = olds[id]
                if state.individual {
                    state.bound[side][id] = 0.5 * olds[id]
                    state.tau[side][id] = taus[id]
                }
            }
            // Some ids hold a bad value (below 1e-35), which the update must replace by ĝ.
            for id in 0..<count where id % 6 == 1 {
                state.u[side][id] = 1e-40
                if state.individual { state.bound[side][id] = 2 }
            }
        }
        return (loss, state, x, y, ids)
    }

    func run(_ loss: GlobalContrastiveLoss<Double>, _ x: [Double], _ y: [Double], ids: [Int], tau: Double, gamma: Double,
             state: SampleState, epoch: Int = 1, lrTau: Double = 0.01) -> (ObjectiveStepStatistics, [Double], [Double]) {
        let b = loss.batch, e = loss.dimension
        let stats = loss.forward(imageFeatures: x, textFeatures: y, ids: ids, temperature: tau, gamma: gamma, epoch: epoch, state: state, learningRateTau: lrTau)
        var dx = [Double](repeating: 0, count: b * e), dy = dx
        loss.backward(dImageFeatures: &dx, dTextFeatures: &dy)
        return (stats, dx, dy)
    }

    @Test("GCL and RGCL-g: u update, model gradient and statistics equal brute force", arguments: [LossKind.gcl, .rgclG])
    func globalTemperature(kind: LossKind) {
        let b = 6, e = 5, tau = 0.3, gamma = 0.6
        var config = ObjectiveConfiguration(loss: kind, temperatureRule: kind == .gcl ? .learnable : .rgclG, rho: 0.7, epsilon: 1e-3)
        config.tauDerivativeWeight = 1
        let (loss, state, x, y, ids) = setup(config, b: b, e: e, seed: 11)
        let before = state.u
        let (stats, dx, dy) = run(loss, x, y, ids: ids, tau: tau, gamma: gamma, state: state)
        // u: the moving average, or ĝ on a first visit.
        var den = [[Double]](repeating: [], count: 2)
        for side in 0..<2 {
            for (i, id) in ids.enumerated() {
                let g = Brute.g(x, y, side: side, row: i, tau: tau, b: b, e: e)
                let expected = before[side][id] < 1e-35 ? g : (1 - gamma) * before[side][id] + gamma * g
                #expect(abs(state.u[side][id] - expected) <= 1e-12 * expected, "u[\(side)][\(id)]")
                den[side].append(config.epsilon + expected)
            }
        }
        let scale = (kind == .rgclG ? tau : 1) / Double(2 * b)
        let taus = [[Double]](repeating: [Double](repeating: tau, count: b), count: 2)
        let gx = Brute.gradient(x) { Brute.surrogate($0, y, taus: taus, denominators: den, scale: scale, b: b, e: e) }
        let gy = Brute.gradient(y) { Brute.surrogate(x, $0, taus: taus, denominators: den, scale: scale, b: b, e: e) }
        #expect(scaledMaxError(dx, gx) < 1e-7, "\(describeMismatch(dx, gx, label: "image"))")
        #expect(scaledMaxError(dy, gy) < 1e-7, "\(describeMismatch(dy, gy, label: "text"))")

        // τ-gradient: Q = Σ ∂_τ ĝ_i/(ε+u_i) by finite differences in τ.
        let h = 1e-6
        let q = (Brute.surrogate(x, y, taus: taus.map { $0.map { _ in tau + h } }, denominators: den, scale: 1, b: b, e: e)
            - Brute.surrogate(x, y, taus: taus.map { $0.map { _ in tau - h } }, denominators: den, scale: 1, b: b, e: e)) / (2 * h)
        let logU = ids.map { Foundation.log(state.u[0][$0]) + Foundation.log(state.u[1][$0]) }.reduce(0, +)
        let gTau = kind == .gcl ? q / Double(b) : config.rho + logU / Double(2 * b) + (tau / Double(b)) * q
        #expect(abs(stats.logitScaleGradient - (-tau * gTau)) < 1e-7 * max(1, abs(tau * gTau)))
        // Statistics.
        var mbcl = 0.0
        for side in 0..<2 {
            for i in 0..<b { mbcl += Foundation.log(1 + Double(b - 1) * Brute.g(x, y, side: side, row: i, tau: tau, b: b, e: e)) }
        }
        mbcl /= Double(2 * b)
        #expect(abs(stats.batchContrastive - mbcl) < 1e-12)
        let objective = kind == .gcl
            ? tau * den.flatMap { $0 }.map { Foundation.log($0) }.reduce(0, +) / Double(2 * b)
            : tau * logU / Double(2 * b) + config.rho * tau
        #expect(abs(stats.objective - objective) < 1e-12)
    }

    @Test("The batch contrastive statistic equals OpenCLIP's loss at the same temperature")
    func batchContrastiveIsMBCL() {
        let b = 7, e = 4
        let config = ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant)
        let (loss, state, x, y, ids) = setup(config, b: b, e: e, seed: 5)
        let stats = loss.forward(imageFeatures: x, textFeatures: y, ids: ids, temperature: 0.2, gamma: 1, epoch: 0, state: state)
        let mbcl = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
        let reference = mbcl.forward(imageFeatures: x, textFeatures: y, logitScale: Foundation.log(1 / 0.2))
        #expect(abs(stats.batchContrastive - reference) < 1e-12)
    }

    @Test("With γ = 1 the GCL gradient is the exact gradient of the mini-batch log-objective")
    func gammaOneIsExact() {
        let b = 5, e = 4, tau = 0.25
        let config = ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant, epsilon: 1e-4)
        let (loss, state, x, y, ids) = setup(config, b: b, e: e, seed: 21)
        let (_, dx, dy) = run(loss, x, y, ids: ids, tau: tau, gamma: 1, state: state)
        func objective(_ x: [Double], _ y: [Double]) -> Double {
            var total = 0.0
            for side in 0..<2 { for i in 0..<b { total += Foundation.log(config.epsilon + Brute.g(x, y, side: side, row: i, tau: tau, b: b, e: e)) } }
            return total / Double(2 * b)
        }
        let gx = Brute.gradient(x) { objective($0, y) }, gy = Brute.gradient(y) { objective(x, $0) }
        #expect(scaledMaxError(dx, gx) < 1e-7, "\(describeMismatch(dx, gx, label: "image"))")
        #expect(scaledMaxError(dy, gy) < 1e-7, "\(describeMismatch(dy, gy, label: "text"))")
    }

    @Test("RGCL-g's τ-gradient with weight 0.5 is the exact derivative of the halved objective; 1 doubles that term")
    func rgclGTauDerivativeWeight() {
        let b = 6, e = 4, tau = 0.2, rho = 1.3
        func gradient(weight: Double) -> Double {
            var config = ObjectiveConfiguration(loss: .rgclG, temperatureRule: .rgclG, rho: rho, epsilon: 0)
            config.tauDerivativeWeight = weight
            let (loss, state, x, y, ids) = setup(config, b: b, e: e, seed: 8)
            return run(loss, x, y, ids: ids, tau: tau, gamma: 1, state: state).0.logitScaleGradient
        }
        let (_, _, x, y, _) = setup(ObjectiveConfiguration(loss: .rgclG, temperatureRule: .rgclG), b: b, e: e, seed: 8)
        // F(τ) = τ·(1/2B)Σ log ĝ(τ) + ρτ; with γ = 1, u = ĝ.
        func f(_ t: Double) -> Double {
            var total = 0.0
            for side in 0..<2 { for i in 0..<b { total += Foundation.log(Brute.g(x, y, side: side, row: i, tau: t, b: b, e: e)) } }
            return t * total / Double(2 * b) + rho * t
        }
        let h = 1e-6
        let exact = (f(tau + h) - f(tau - h)) / (2 * h)
        let half = gradient(weight: 0.5), one = gradient(weight: 1)
        #expect(abs(half - (-tau * exact)) < 1e-7)
        // The extra half of the derivative term: weight 1 minus weight 0.5 = ½·τ·(F'(τ) − ρ − mean log ĝ).
        var meanLog = 0.0
        for side in 0..<2 { for i in 0..<b { meanLog += Foundation.log(Brute.g(x, y, side: side, row: i, tau: tau, b: b, e: e)) } }
        meanLog /= Double(2 * b)
        let derivativeTerm = exact - rho - meanLog
        #expect(abs((one - half) - (-tau * derivativeTerm)) < 1e-7)
    }

    @Test("RGCL with individual temperatures: bound, shifted u, model gradient and τ step equal brute force",
          arguments: [EpsilonScale.shifted, .unshifted])
    func individual(scale: EpsilonScale) {
        let b = 6, e = 5, gamma = 0.7, lrTau = 0.02, epoch = 2
        var config = ObjectiveConfiguration(loss: .rgcl, temperatureRule: .individual, rho: 0.9, learningRateTau: lrTau, temperatureInit: 0.1, epsilon: 1e-3)
        config.epsilonScale = scale
        let (loss, state, x, y, ids) = setup(config, b: b, e: e, seed: 31)
        // Give some visited ids Adam history.
        for side in 0..<2 { for id in 0..<state.count where id % 4 == 0 { state.tauMoment1[side][id] = 0.3; state.tauMoment2[side][id] = 0.2 } }
        let (uOld, bOld, tauOld, m1Old, m2Old) = (state.u, state.bound, state.tau, state.tauMoment1, state.tauMoment2)
        let (_, dx, dy) = run(loss, x, y, ids: ids, tau: .nan, gamma: gamma, state: state, epoch: epoch, lrTau: lrTau)

        let e1 = Brute.normalized(x, b: b, e: e), e2 = Brute.normalized(y, b: b, e: e)
        var den = [[Double]](repeating: [], count: 2), taus = den
        for side in 0..<2 {
            let (a, c) = side == 0 ? (e1, e2) : (e2, e1)
            for (i, id) in ids.enumerated() {
                let t = tauOld[side][id]
                let zs = (0..<b).filter { $0 != i }.map { (Brute.dot(a, i, c, $0, e: e) - Brute.dot(e1, i, e2, i, e: e)) / t }
                let bound = max(bOld[side][id], zs.max()!)
                #expect(abs(state.bound[side][id] - bound) < 1e-12)
                let gShift = zs.map { Foundation.exp($0 - bound) }.reduce(0, +) / Double(b - 1)
                let old = uOld[side][id]
                let u = old < 1e-35 ? gShift : (1 - gamma) * old * Foundation.exp(bOld[side][id] - bound) + gamma * gShift
                #expect(abs(state.u[side][id] - u) < 1e-12 * u)
                let eps = scale == .shifted ? config.epsilon : config.epsilon * Foundation.exp(-bound)
                // True-scale denominator ε_eff + u_true.
                den[side].append((eps + u) * Foundation.exp(bound))
                taus[side].append(t)
                // The τ step (§4.4): G = log(ε+u) + b' + ρ − (1/(B−1))Σ exp(z−b')·z/(ε+u), clipped, Adam.
                var grad = Foundation.log(eps + u) + bound + config.rho
                    - zs.map { Foundation.exp($0 - bound) * $0 }.reduce(0, +) / Double(b - 1) / (eps + u)
                grad = min(max(grad, -5), 5)
                let m = 0.9 * m1Old[side][id] + 0.1 * grad, v = 0.98 * m2Old[side][id] + 0.02 * grad * grad
                let mh = m / (1 - Foundation.pow(0.9, Double(epoch + 1))), vh = v / (1 - Foundation.pow(0.98, Double(epoch + 1)))
                let newTau = min(max(t - lrTau * mh / (vh.squareRoot() + 1e-6), 0.01), 1)
                #expect(abs(state.tau[side][id] - newTau) < 1e-12)
                #expect(abs(state.tauMoment1[side][id] - m) < 1e-12 && abs(state.tauMoment2[side][id] - v) < 1e-12)
            }
        }
        let gx = Brute.gradient(x) { Brute.surrogate($0, y, taus: taus, denominators: den, scale: 1 / Double(2 * b), b: b, e: e) }
        let gy = Brute.gradient(y) { Brute.surrogate(x, $0, taus: taus, denominators: den, scale: 1 / Double(2 * b), b: b, e: e) }
        #expect(scaledMaxError(dx, gx) < 1e-7, "\(describeMismatch(dx, gx, label: "image"))")
        #expect(scaledMaxError(dy, gy) < 1e-7, "\(describeMismatch(dy, gy, label: "text"))")
    }

    @Test("With u = g the per-sample τ-gradient is ∂/∂τ_i of τ_i·(log g_i(τ_i) + ρ)")
    func individualGradientIsExact() {
        // In epoch 0 (β = 0) the Adam step is lr·G/(|G| + ε): read G back from the τ move.
        let b = 5, e = 4, rho = 0.4
        let config = ObjectiveConfiguration(loss: .rgcl, temperatureRule: .individual, rho: rho, learningRateTau: 1e-4, temperatureInit: 0.3, epsilon: 0)
        let loss = GlobalContrastiveLoss<Double>(batch: b, dimension: e, objective: config, temperatureAdam: AdamHyperparameters(beta1: 0.9, beta2: 0.98, epsilon: 0), workspace: Workspace())
        let state = SampleState(count: b, individual: true, temperatureInit: 0.3)
        let x = randomArray(b * e, seed: 4, stream: "x"), y = randomArray(b * e, seed: 4, stream: "y")
        loss.forward(imageFeatures: x, textFeatures: y, ids: Array(0..<b), temperature: .nan, gamma: 1, epoch: 0, state: state, learningRateTau: 1e-4)
        for side in 0..<2 {
            for i in 0..<b {
                let h = 1e-6
                func f(_ t: Double) -> Double { t * (Foundation.log(Brute.g(x, y, side: side, row: i, tau: t, b: b, e: e)) + rho) }
                let exact = (f(0.3 + h) - f(0.3 - h)) / (2 * h)
                // Adam with β = 0 and ε = 0 moves τ by exactly lr·sign(G); the stored moment is G.
                #expect(abs(state.tauMoment1[side][i] - max(min(exact, 5), -5)) < 1e-6)
                #expect(abs(state.tau[side][i] - (0.3 - 1e-4 * (exact > 0 ? 1 : -1))) < 1e-12)
            }
        }
    }

    @Test("At τ = 0.01 with large similarity gaps everything stays finite in Float")
    func overflow() {
        let b = 4, e = 3
        // Image 0 is nearly text 1 and far from its own text: Δ ≈ 1.9, Δ/τ ≈ 190 (e^190 ≫ Float.max).
        let x: [Float] = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0]
        let y: [Float] = [-1, 0.05, 0, 1, 0.02, 0, 0, 0, 1, 0, 1, 1]
        for kind in [LossKind.gcl, .rgclG, .rgcl] {
            let config = ObjectiveConfiguration(
                loss: kind, temperatureRule: kind == .rgcl ? .individual : .learnable, learningRateTau: 0.01, temperatureInit: 0.01)
            let loss = GlobalContrastiveLoss<Float>(batch: b, dimension: e, objective: config, temperatureAdam: adam, workspace: Workspace())
            let state = SampleState(count: b, individual: kind == .rgcl, temperatureInit: 0.01)
            var dx = [Float](repeating: 0, count: b * e), dy = dx
            for epoch in 0..<3 {
                let stats = loss.forward(imageFeatures: x, textFeatures: y, ids: Array(0..<b), temperature: 0.01, gamma: epoch == 0 ? 1 : 0.3, epoch: epoch, state: state, learningRateTau: 0.01)
                loss.backward(dImageFeatures: &dx, dTextFeatures: &dy)
                #expect(stats.objective.isFinite && stats.surrogate.isFinite && stats.batchContrastive.isFinite && stats.logitScaleGradient.isFinite, "\(kind)")
                let finite = (dx + dy).allSatisfy { $0.isFinite }, uFinite = state.u.joined().allSatisfy { $0.isFinite }
                #expect(finite, "\(kind) epoch \(epoch): \(dx) \(dy)")
                #expect(uFinite)
            }
            if kind != .rgcl { #expect(state.u[0][0] > 1e80, "u on the true scale holds e^190") }
        }
    }
}

@Suite("FastCLIP schedules, rules, state and presets")
struct ObjectivePiecesTests {
    @Test("γ schedules at chosen epochs")
    func gammaSchedule() {
        let cosine = InnerLRSchedule(kind: .cosine, gammaMin: 0.2, decayEpochs: 4)
        #expect(cosine.gamma(epoch: 0) == 1)
        #expect(abs(cosine.gamma(epoch: 1) - (0.2 + 0.4 * (1 + Foundation.cos(Double.pi / 4)))) < 1e-15)
        #expect(abs(cosine.gamma(epoch: 1) - 0.882842712474619) < 1e-12)
        #expect(abs(cosine.gamma(epoch: 2) - 0.6) < 1e-15)
        #expect(cosine.gamma(epoch: 4) == 0.2 && cosine.gamma(epoch: 9) == 0.2)
        let constant = InnerLRSchedule(kind: .constant, gammaMin: 0.2, decayEpochs: 4)
        #expect(constant.gamma(epoch: 0) == 1 && constant.gamma(epoch: 1) == 0.2 && constant.gamma(epoch: 7) == 0.2)
        // DRRho: γ_min = min(1, 4.177·E^−0.7265), decaying over all E epochs.
        let drrho = InnerLRSchedule(ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant, innerLRSchedule: .drrho), totalEpochs: 10)
        #expect(abs(drrho.gammaMin - 4.177 * Foundation.pow(10, -0.7265)) < 1e-15 && abs(drrho.gammaMin - 0.78405) < 1e-4)
        #expect(drrho.decayEpochs == 10 && drrho.gamma(epoch: 10) == drrho.gammaMin)
        #expect(InnerLRSchedule.drrhoGammaMin(totalEpochs: 1) == 1)
        // Default E is half the epochs.
        #expect(InnerLRSchedule(ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant), totalEpochs: 37).decayEpochs == 18)
    }

    @Test("Moving average: first visit, bad values and γ = 1 take ĝ")
    func movingAverage() {
        #expect(SampleState.movingAverage(old: 0, estimate: 2, gamma: 0.3) == 2)
        #expect(SampleState.movingAverage(old: .nan, estimate: 2, gamma: 0.3) == 2)
        #expect(SampleState.movingAverage(old: .infinity, estimate: 2, gamma: 0.3) == 2)
        #expect(SampleState.movingAverage(old: 1e-36, estimate: 2, gamma: 0.3) == 2)
        #expect(SampleState.movingAverage(old: 4, estimate: 2, gamma: 1) == 2)
        #expect(abs(SampleState.movingAverage(old: 4, estimate: 2, gamma: 0.25) - 3.5) < 1e-15)
        #expect(abs(SampleState.movingAverage(old: 4, estimate: 2, gamma: 0.25, rescale: 0.5) - 2) < 1e-15)
    }

    @Test("step_thresh: lr_τ while τ > 0.03, a third of it below")
    func stepThresh() {
        #expect(stepThreshTemperatureRate(base: 3e-3, temperature: 0.07) == 3e-3)
        #expect(stepThreshTemperatureRate(base: 3e-3, temperature: 0.03) == 1e-3)
        #expect(stepThreshTemperatureRate(base: 3e-3, temperature: 0.011) == 1e-3)
    }

    @Test("A v3 temperature step by hand: the RGCL-g gradient, step_thresh's rate below τ = 0.03, one AdamW step on s")
    func rgclGTemperatureStep() throws {
        let b = 6, e = 4, tau = 0.02
        let config = try #require(ObjectiveConfiguration.preset("fastclip-v3"))
        let objective = try ContrastiveObjective<Double>(config, batch: b, dimension: e, datasetCount: b, epochs: 4, adam: .vit)
        let x = randomArray(b * e, seed: 2, stream: "x"), y = randomArray(b * e, seed: 2, stream: "y")
        var dx = [Double](repeating: 0, count: b * e), dy = dx
        let s0 = Foundation.log(1 / tau)
        let stats = objective.step(imageFeatures: x, textFeatures: y, ids: Array(0..<b), logitScale: s0, epoch: 0, dImageFeatures: &dx, dTextFeatures: &dy)
        // The same gradient by its formula: ds = −τ·(ρ + (1/2B)Σ log u + (τ/B)·Σ ∂τ ĝ/(ε+u)), u = ĝ in epoch 0.
        var sumLog = 0.0, q = 0.0
        let h = 1e-7
        for side in 0..<2 {
            for i in 0..<b {
                let g = Brute.g(x, y, side: side, row: i, tau: tau, b: b, e: e)
                sumLog += Foundation.log(g)
                q += (Brute.g(x, y, side: side, row: i, tau: tau + h, b: b, e: e) - Brute.g(x, y, side: side, row: i, tau: tau - h, b: b, e: e)) / (2 * h) / (config.epsilon + g)
            }
        }
        let ds = -tau * (config.rho + sumLog / Double(2 * b) + (tau / Double(b)) * q)
        #expect(abs(stats.logitScaleGradient - ds) < 1e-6 * abs(ds))
        // One AdamW step (first step: m̂/(√v̂+ε) = g/(|g|+ε)) at lr_τ/3, weight decay 0.
        var layout = ParameterLayout()
        let view = layout.add("logit_scale", shape: [])
        let store = ParameterStore<Double>(layout: layout)
        store.value(view).pointee = s0
        store.grad(view).pointee = stats.logitScaleGradient
        let rate = try #require(objective.logitScaleLearningRate(modelRate: 1e-3, peakModelRate: 1e-3, temperature: tau))
        #expect(abs(rate - 2e-3 / 3) < 1e-15, "step_thresh below 0.03 gives a third of v3's lr_τ = 2e-3")
        var optimizer = Optimizer(kind: .adamw)
        optimizer.update(store, groups: [ParameterGroup(name: "logit_scale", views: [view], learningRate: rate, weightDecay: 0)])
        let g = stats.logitScaleGradient
        #expect(abs(store.value(view).pointee - (s0 - rate * g / (abs(g) + 1e-6))) < 1e-12)
    }

    @Test("The learning rate of the logit scale per rule")
    func logitScaleRates() throws {
        func objective(_ rule: TemperatureRule, lrTau: Double?) throws -> ContrastiveObjective<Float> {
            try ContrastiveObjective(
                ObjectiveConfiguration(loss: rule == .individual ? .rgcl : .gcl, temperatureRule: rule, learningRateTau: lrTau),
                batch: 4, dimension: 2, datasetCount: 8, epochs: 2, adam: .vit)
        }
        #expect(try objective(.learnable, lrTau: nil).logitScaleLearningRate(modelRate: 5e-4, peakModelRate: 1e-3, temperature: 0.07) == 5e-4)
        #expect(try objective(.learnable, lrTau: 1e-2).logitScaleLearningRate(modelRate: 5e-4, peakModelRate: 1e-3, temperature: 0.07) == 5e-3)
        #expect(try objective(.rgclG, lrTau: 3e-3).logitScaleLearningRate(modelRate: 0, peakModelRate: 1e-3, temperature: 0.02) == 1e-3)
        #expect(try objective(.constant, lrTau: nil).logitScaleLearningRate(modelRate: 1e-3, peakModelRate: 1e-3, temperature: 0.07) == nil)
        #expect(try objective(.individual, lrTau: 0.01).logitScaleLearningRate(modelRate: 1e-3, peakModelRate: 1e-3, temperature: 0.07) == nil)
    }

    @Test("Presets map to FastCLIP §6's table")
    func presets() throws {
        let expected: [String: (LossKind, TemperatureRule, InnerLRScheduleKind)] = [
            "openclip": (.mbcl, .learnable, .cosine), "sogclr": (.gcl, .constant, .constant), "isogclr": (.rgcl, .individual, .constant),
            "fastclip-v0": (.gcl, .learnable, .cosine), "fastclip-v1": (.gcl, .constant, .cosine),
            "fastclip-v2": (.rgcl, .individual, .cosine), "fastclip-v3": (.rgclG, .rgclG, .cosine),
        ]
        #expect(Set(expected.keys) == Set(ObjectiveConfiguration.presetNames))
        for (name, parts) in expected {
            let c = try #require(ObjectiveConfiguration.preset(name))
            #expect(c.loss == parts.0 && c.temperatureRule == parts.1 && c.preset == name, "\(name)")
            if c.loss != .mbcl { #expect(c.innerLRSchedule == parts.2, "\(name)") }
            try c.validate()
        }
        #expect(ObjectiveConfiguration.preset("fastclip-v3", dataScale: "cc12m-mini")?.rho == 8.5)
        #expect(ObjectiveConfiguration.preset("fastclip-v2")?.temperatureInit == 0.03)
        #expect(ObjectiveConfiguration.preset("nope") == nil)
    }

    @Test("Invalid combinations name the option")
    func validation() {
        #expect(throws: ObjectiveError.self) { try ObjectiveConfiguration(loss: .rgcl, temperatureRule: .learnable).validate() }
        #expect(throws: ObjectiveError.self) { try ObjectiveConfiguration(loss: .gcl, temperatureRule: .individual).validate() }
        do {
            try ObjectiveConfiguration(loss: .rgcl, temperatureRule: .individual).validate()
            Issue.record("individual τ without lr_τ accepted")
        } catch let e as ObjectiveError {
            #expect(e.option == "--lr-tau")
        } catch { Issue.record("\(error)") }
        do {
            try ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant, gammaMin: 0).validate()
            Issue.record("γ_min 0 accepted")
        } catch let e as ObjectiveError {
            #expect(e.option == "--gamma-min")
        } catch { Issue.record("\(error)") }
        var c = ObjectiveConfiguration(loss: .rgclG, temperatureRule: .rgclG)
        c.tauDerivativeWeight = 0.7
        #expect(throws: ObjectiveError.self) { try c.validate() }
    }

    @Test("State tables round-trip by name and reject a wrong size")
    func stateTables() throws {
        let a = SampleState(count: 5, individual: true, temperatureInit: 0.03)
        a.u[1][3] = 2.5
        a.tau[0][2] = 0.2
        a.bound[1][4] = 7
        a.tauMoment1[1][0] = 0.3
        a.tauMoment2[0][1] = 0.5
        let b = SampleState(count: 5, individual: true, temperatureInit: 0.5)
        for (name, values) in a.tables() { try b.restore(name, values: values) }
        #expect(b.u == a.u && b.tau == a.tau && b.bound == a.bound && b.tauMoment1 == a.tauMoment1 && b.tauMoment2 == a.tauMoment2)
        #expect(a.tables().map(\.name).count == 10)
        #expect(throws: ObjectiveError.self) { try b.restore("u.image", values: [1, 2]) }
        let global = SampleState(count: 5, individual: false, temperatureInit: 0.07)
        #expect(throws: ObjectiveError.self) { try global.restore("tau.image", values: [Double](repeating: 0, count: 5)) }
    }

    @Test("copy(from:) gives equal tables in storage of the state's own, so shards can write them on separate threads")
    func stateCopyOwnsStorage() {
        let a = SampleState(count: 6, individual: true, temperatureInit: 0.03)
        for side in 0..<2 {
            for i in 0..<6 {
                a.u[side][i] = Double(10 * side + i) + 0.5
                a.tau[side][i] = 0.01 * Double(i + 1)
                a.bound[side][i] = Double(i)
                a.tauMoment1[side][i] = -Double(i)
                a.tauMoment2[side][i] = Double(i * i)
            }
        }
        let b = SampleState(count: 6, individual: true, temperatureInit: 0.5)
        b.copy(from: a)
        #expect(b.u == a.u && b.tau == a.tau && b.bound == a.bound && b.tauMoment1 == a.tauMoment1 && b.tauMoment2 == a.tauMoment2)
        // No buffer is shared, outer or inner: an assignment would share every one of them.
        func addresses(_ s: SampleState) -> [UnsafeRawPointer?] {
            [s.u, s.tau, s.bound, s.tauMoment1, s.tauMoment2].flatMap { tables in
                [tables.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }]
                    + tables.map { t in t.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } }
            }
        }
        let shared = Set(addresses(a).compactMap { $0 }).intersection(addresses(b).compactMap { $0 })
        #expect(shared.isEmpty, "\(shared.count) buffers shared")
        let global = SampleState(count: 3, individual: false, temperatureInit: 0.07), copy = SampleState(count: 3, individual: false, temperatureInit: 0.07)
        global.u[1][2] = 4
        copy.copy(from: global)
        #expect(copy.u == global.u && copy.tau == [[], []])
    }

    @Test("The MBCL objective equals OpenCLIP's loss and its logit-scale gradient")
    func mbclWrapper() throws {
        let b = 6, e = 4
        let x = randomArray(b * e, seed: 9, stream: "x").map(Float.init), y = randomArray(b * e, seed: 9, stream: "y").map(Float.init)
        let objective = try ContrastiveObjective<Float>(try #require(ObjectiveConfiguration.preset("openclip")), batch: b, dimension: e, datasetCount: 10, epochs: 1, adam: .vit)
        var dx = [Float](repeating: 0, count: b * e), dy = dx
        let stats = objective.step(imageFeatures: x, textFeatures: y, ids: Array(0..<b), logitScale: 2, epoch: 0, dImageFeatures: &dx, dTextFeatures: &dy)
        let reference = MiniBatchContrastiveLoss<Float>(batch: b, dimension: e, workspace: Workspace())
        let value = reference.forward(imageFeatures: x, textFeatures: y, logitScale: 2)
        var rx = [Float](repeating: 0, count: b * e), ry = rx
        let dt = reference.backward(dImageFeatures: &rx, dTextFeatures: &ry)
        #expect(stats.objective == value && stats.logitScaleGradient == Double(dt) && dx == rx && dy == ry)
        #expect(objective.state == nil)
    }
}
