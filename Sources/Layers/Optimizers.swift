// Optimizers over the flat parameter store: AdamW (decoupled weight decay, bias correction) and
// LAMB as FastCLIP's code implements it, both driven by parameter groups; and global-norm gradient
// clipping.

import Compute

/// A set of parameters sharing a learning rate and a weight decay.
///
/// The trainer sets `learningRate` from the group's schedule before each step (FastCLIP gives
/// `logit_scale` a schedule of its own); the optimizer only reads it.
public struct ParameterGroup: Sendable {
    public let name: String
    public let views: [ParameterView]
    public var learningRate: Double
    public var weightDecay: Double

    public init(name: String, views: [ParameterView], learningRate: Double, weightDecay: Double) {
        self.name = name
        self.views = views
        self.learningRate = learningRate
        self.weightDecay = weightDecay
    }

    /// OpenCLIP's grouping: `decay` (views whose `decay` flag is set) with `weightDecay`, and
    /// `no_decay` (gains, biases, 1-D tensors, `logit_scale`) with 0. Empty groups are dropped.
    public static func standard(_ layout: ParameterLayout, learningRate: Double, weightDecay: Double) -> [ParameterGroup] {
        let decay = layout.views.filter(\.decay)
        let rest = layout.views.filter { !$0.decay }
        return [
            ParameterGroup(name: "decay", views: decay, learningRate: learningRate, weightDecay: weightDecay),
            ParameterGroup(name: "no_decay", views: rest, learningRate: learningRate, weightDecay: 0),
        ].filter { !$0.views.isEmpty }
    }
}

/// Adam's moment hyper-parameters, shared by AdamW and LAMB.
public struct AdamHyperparameters: Sendable, Hashable, Codable {
    public var beta1: Double
    public var beta2: Double
    public var epsilon: Double

    /// OpenCLIP's and FastCLIP's defaults for ViT towers: β = (0.9, 0.98), ε = 1e-6.
    public static let vit = AdamHyperparameters(beta1: 0.9, beta2: 0.98, epsilon: 1e-6)

    public init(beta1: Double, beta2: Double, epsilon: Double) {
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
    }
}

/// Which update rule `Optimizer` applies.
public enum OptimizerKind: String, Sendable, Codable, CaseIterable {
    /// AdamW (Loshchilov & Hutter), PyTorch's `torch.optim.AdamW`:
    ///   θ ← θ·(1 − lr·wd);  m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;
    ///   θ ← θ − lr · m̂ / (√v̂ + ε),  m̂ = m/(1−β₁ᵗ),  v̂ = v/(1−β₂ᵗ).
    case adamw
    /// LAMB as in FastCLIP's `optimizer.py`: with the same m̂, v̂,
    ///   u = m̂/(√v̂ + ε) + wd·θ;   θ ← θ − lr · r · u,
    /// where the trust ratio r = ‖θ‖/‖u‖ per tensor (1 if either norm is 0) applies only in
    /// groups with wd ≠ 0; the other groups (gains, biases, logit_scale) take r = 1.
    case lamb
}

/// The optimizer state (step count) and update over a `ParameterStore`'s moment buffers.
public struct Optimizer: Sendable, Codable {
    public let kind: OptimizerKind
    public let hyper: AdamHyperparameters
    /// Number of updates applied so far (t in the bias corrections); set it when resuming.
    public var step: Int = 0

    public init(kind: OptimizerKind, hyper: AdamHyperparameters = .vit) {
        self.kind = kind
        self.hyper = hyper
    }

    /// Restores the step counter (checkpoint resume).
    public mutating func restore(step: Int) { self.step = step }

    /// Applies one update to every parameter of `groups`, reading `store.grads` and updating
    /// `store.values`, `store.firstMoment` and `store.secondMoment`. `@inlinable` so that it is
    /// specialised for Float in the caller's module (unspecialised, it ran ~30× slower).
    @inlinable
    public mutating func update<T: Scalar>(_ store: ParameterStore<T>, groups: [ParameterGroup]) {
        step += 1
        let b1 = hyper.beta1, b2 = hyper.beta2
        let bc1 = 1 - pow(b1, step), bc2 = 1 - pow(b2, step)
        for group in groups {
            for view in group.views {
                switch kind {
                case .adamw:
                    adamWUpdate(store, view, lr: group.learningRate, wd: group.weightDecay, bc1: bc1, bc2: bc2)
                case .lamb:
                    lambUpdate(store, view, lr: group.learningRate, wd: group.weightDecay, bc1: bc1, bc2: bc2)
                }
            }
        }
    }

    @inlinable
    func adamWUpdate<T: Scalar>(_ store: ParameterStore<T>, _ view: ParameterView, lr: Double, wd: Double, bc1: Double, bc2: Double) {
        let p = store.value(view), g = store.grad(view)
        let m = store.firstMoment.pointer + view.offset, v = store.secondMoment.pointer + view.offset
        let b1 = T(hyper.beta1), b2 = T(hyper.beta2), eps = T(hyper.epsilon)
        let decayFactor = T(1 - lr * wd)
        let stepSize = T(lr / bc1)
        let invSqrtBC2 = T(1 / bc2.squareRoot())
        Threads.parallelFor(view.count, grain: 1 << 14) { r in
            for i in r {
                let gi = g[i]
                let mi = b1 * m[i] + (1 - b1) * gi
                let vi = b2 * v[i] + (1 - b2) * gi * gi
                m[i] = mi
                v[i] = vi
                p[i] = p[i] * decayFactor - stepSize * mi / (vi.squareRoot() * invSqrtBC2 + eps)
            }
        }
    }

    @inlinable
    func lambUpdate<T: Scalar>(_ store: ParameterStore<T>, _ view: ParameterView, lr: Double, wd: Double, bc1: Double, bc2: Double) {
        let p = store.value(view), g = store.grad(view)
        let m = store.firstMoment.pointer + view.offset, v = store.secondMoment.pointer + view.offset
        let b1 = T(hyper.beta1), b2 = T(hyper.beta2), eps = T(hyper.epsilon)
        let invBC1 = T(1 / bc1), invSqrtBC2 = T(1 / bc2.squareRoot()), w = T(wd)
        let n = view.count
        // Pass 1: moments, and the norms of θ and of the update direction u (in Double).
        var weightNormSq = 0.0, updateNormSq = 0.0
        for i in 0..<n {
            let gi = g[i]
            let mi = b1 * m[i] + (1 - b1) * gi
            let vi = b2 * v[i] + (1 - b2) * gi * gi
            m[i] = mi
            v[i] = vi
            let u = mi * invBC1 / (vi.squareRoot() * invSqrtBC2 + eps) + w * p[i]
            weightNormSq += Double(p[i]) * Double(p[i])
            updateNormSq += Double(u) * Double(u)
        }
        var trust = 1.0
        if wd != 0, weightNormSq > 0, updateNormSq > 0 {
            trust = (weightNormSq / updateNormSq).squareRoot()
        }
        // Pass 2: θ ← θ − lr·r·u (u recomputed from the new moments; θ unchanged since pass 1).
        let scale = T(lr * trust)
        for i in 0..<n {
            let u = m[i] * invBC1 / (v[i].squareRoot() * invSqrtBC2 + eps) + w * p[i]
            p[i] -= scale * u
        }
    }
}

/// Rescales all gradients so that their global L2 norm is at most `maxNorm`, as
/// `torch.nn.utils.clip_grad_norm_` does (factor maxNorm/(norm + 1e-6) when norm > maxNorm).
/// Returns the norm before clipping.
@discardableResult
public func clipGradientNorm<T: Scalar>(_ store: ParameterStore<T>, maxNorm: Double) -> Double {
    let n = store.grads.count
    let g = store.grads.pointer
    var sq = 0.0
    var i = 0
    let chunk = 1 << 14
    while i < n {
        let c = min(chunk, n - i)
        sq += Double(dot(g + i, g + i, count: c))
        i += c
    }
    let norm = sq.squareRoot()
    if norm > maxNorm {
        vectorScale(T(maxNorm / (norm + 1e-6)), g, count: n)
    }
    return norm
}

@inlinable func pow(_ base: Double, _ exponent: Int) -> Double {
    var r = 1.0
    for _ in 0..<exponent { r *= base }
    return r
}
