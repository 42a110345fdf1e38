// What a training run optimises: the loss, the temperature rule and the inner-LR (γ) schedule,
// with their hyper-parameters, and the named presets that map the papers' algorithms onto them
// (FastCLIP §6's table, with §8.2's defaults scaled to this workbench).

import Foundation

/// The contrastive objective.
public enum LossKind: String, Codable, Sendable, CaseIterable {
    /// OpenCLIP's mini-batch contrastive loss (symmetric cross-entropy over the global batch):
    ///   L = (1/2B) Σ_i [log(1 + (B−1)·ĝ1_i) + log(1 + (B−1)·ĝ2_i)].
    case mbcl
    /// Global contrastive loss (SogCLR; FastCLIP-v0/v1), one global τ:
    ///   GCL = (τ/n) Σ_i [log(ε + g1_i) + log(ε + g2_i)], g over the whole data set.
    case gcl
    /// Robust GCL with individual temperatures (iSogCLR; FastCLIP-v2):
    ///   (1/n) Σ_i [τ1_i·(log(ε + g1_i(τ1_i)) + ρ) + τ2_i·(log(ε + g2_i(τ2_i)) + ρ)].
    case rgcl
    /// Robust GCL with a global learnable temperature (FastCLIP-v3):
    ///   (τ/n) Σ_i [log(ε + g1_i) + log(ε + g2_i)] + 2ρτ (implemented halved, as the reference code).
    case rgclG = "rgcl-g"

    /// Whether the loss keeps the per-sample moving averages u (all but MBCL).
    public var usesSampleState: Bool { self != .mbcl }
}

/// How the temperature moves.
public enum TemperatureRule: String, Codable, Sendable, CaseIterable {
    /// τ stays at its initial value (FastCLIP-v1, SogCLR).
    case constant
    /// AdamW on s = ln(1/τ) with the objective's τ-gradient, weight decay 0, and the model's
    /// schedule (warm-up and cosine) scaled to lr_τ (OpenCLIP, FastCLIP-v0).
    case learnable
    /// One temperature per sample and side, each moved by its own Adam step on every visit
    /// (FastCLIP-v2, iSogCLR; §4.4). Only with the `rgcl` loss.
    case individual
    /// AdamW on s with the `step_thresh` schedule: lr_τ while τ > 0.03, lr_τ/3 otherwise, no
    /// warm-up (FastCLIP-v3, §5).
    case rgclG = "rgcl-g"
}

/// The schedule of the inner learning rate γ of the moving averages u (FastCLIP §3.2). Every
/// schedule uses γ = 1 in epoch 0 (so u = ĝ on the first visit), as the reference code does.
public enum InnerLRScheduleKind: String, Codable, Sendable, CaseIterable {
    /// γ = γ_min in every epoch after the first (SogCLR, iSogCLR).
    case constant
    /// γ = γ_min + (1 − γ_min)·½(1 + cos(π·e/E)) for 0 < e < E, then γ_min (FastCLIP).
    case cosine
    /// The cosine schedule decaying over all epochs with γ_min = min(1, 4.177·E^−0.7265), the rule
    /// of a later paper of the same group (DRRho-CLIP), meant for runs with few epochs.
    case drrho
}

/// Where ε is added in the individual-temperature loss, whose u is stored shifted by a running
/// bound b (u_stored = u·e^−b, FastCLIP §4.4 and §4.6).
public enum EpsilonScale: String, Codable, Sendable, CaseIterable {
    /// ε + u_stored, as the reference code does: the effective ε is ε·e^b (default, for reproduction).
    case shifted
    /// ε + u on the true scale: ε·e^−b + u_stored in the stored scale (the formula of §2.4).
    case unshifted
}

/// An error in an objective's options; names the option and what was expected.
public struct ObjectiveError: Error, CustomStringConvertible, Equatable {
    public let option: String
    public let reason: String
    public init(option: String, reason: String) {
        self.option = option
        self.reason = reason
    }
    public var description: String { "\(option): \(reason)" }
}

/// The objective of a run: every part resolved, as written to config.json.
public struct ObjectiveConfiguration: Codable, Sendable, Hashable {
    /// The preset it started from, if any (informational; the fields below are what runs).
    public var preset: String?
    public var loss: LossKind
    public var temperatureRule: TemperatureRule
    public var innerLRSchedule: InnerLRScheduleKind
    /// γ_min of the constant and cosine schedules (FastCLIP's `--gamma`; 0.2 in the CC3M and CC12M
    /// scripts). For `drrho` it is derived from the epoch count instead.
    public var gammaMin: Double
    /// Epochs E of the cosine decay; nil means half the run's epochs (the FastCLIP README's advice,
    /// and 18 of 37 in its CC3M script).
    public var gammaDecayEpochs: Int?
    /// ρ of RGCL and RGCL-g (the KL-DRO radius).
    public var rho: Double
    /// lr_τ; nil means the model's learning rate (OpenCLIP's and FastCLIP's default for the
    /// `learnable` and `rgcl-g` rules). The `individual` rule needs it given (its per-sample
    /// Adam has no model schedule to follow).
    public var learningRateTau: Double?
    /// Initial temperature (global, or of every sample for `individual`).
    public var temperatureInit: Double
    /// ε of log(ε + g) and of the denominators ε + u (FastCLIP's `--fastclip_eps`).
    public var epsilon: Double
    /// Weight of the τ·∂_τ ĝ term in RGCL-g's τ-gradient: 1 reproduces the reference code (whose
    /// two per-worker pieces both carry the τ dependence), 0.5 is the exact derivative of the
    /// halved objective (FastCLIP §4.3). The default is the reference's.
    public var tauDerivativeWeight: Double
    /// Where ε applies for individual temperatures (§4.6); the reference's `shifted` by default.
    /// In both modes the first-visit/bad-value test (u < 1e-35) looks at the stored, shifted u,
    /// as the reference does: once a sample's bound exceeds log u by about 80, its u is reset to
    /// ĝ on every visit (γ = 1 for that sample).
    public var epsilonScale: EpsilonScale
    /// Clip of the per-sample τ-gradient (individual rule), ±5 in the reference code.
    public var tauGradientClip: Double
    /// Bounds of the per-sample τ of the `individual` rule ([0.01, 1] as the reference). A global τ
    /// is clamped by the model instead, through s = ln(1/τ) ∈ [0, ln 100], i.e. τ ∈ [0.01, 1].
    public var temperatureMin: Double
    public var temperatureMax: Double

    public init(
        loss: LossKind, temperatureRule: TemperatureRule, innerLRSchedule: InnerLRScheduleKind = .cosine,
        gammaMin: Double = 0.2, gammaDecayEpochs: Int? = nil, rho: Double = 6.5, learningRateTau: Double? = nil,
        temperatureInit: Double = 0.07, epsilon: Double = 1e-14, tauDerivativeWeight: Double = 1,
        epsilonScale: EpsilonScale = .shifted, tauGradientClip: Double = 5,
        temperatureMin: Double = 0.01, temperatureMax: Double = 1, preset: String? = nil
    ) {
        self.preset = preset
        self.loss = loss
        self.temperatureRule = temperatureRule
        self.innerLRSchedule = innerLRSchedule
        self.gammaMin = gammaMin
        self.gammaDecayEpochs = gammaDecayEpochs
        self.rho = rho
        self.learningRateTau = learningRateTau
        self.temperatureInit = temperatureInit
        self.epsilon = epsilon
        self.tauDerivativeWeight = tauDerivativeWeight
        self.epsilonScale = epsilonScale
        self.tauGradientClip = tauGradientClip
        self.temperatureMin = temperatureMin
        self.temperatureMax = temperatureMax
    }

    /// The preset names, in the order of FastCLIP §6's table.
    public static let presetNames = ["openclip", "sogclr", "isogclr", "fastclip-v0", "fastclip-v1", "fastclip-v2", "fastclip-v3"]

    /// ρ for RGCL-g by data scale: the FastCLIP README's values for CC3M, CC12M and LAION-315M,
    /// carried over to the miniature scales named after them.
    public static func rgclGRho(dataScale: String?) -> Double {
        switch dataScale {
        case "cc12m-mini": 8.5
        case "laion315m-mini": 16.0
        default: 6.5
        }
    }

    /// A named preset (FastCLIP §6), with §8.2's CC3M settings scaled to this workbench:
    ///
    /// | preset | loss | τ rule | γ schedule | τ_init | lr_τ | ρ |
    /// | --- | --- | --- | --- | --- | --- | --- |
    /// | openclip | mbcl | learnable | – | 0.07 | = lr | – |
    /// | sogclr | gcl | constant | constant | 0.07 | – | – |
    /// | isogclr | rgcl | individual | constant | 0.03 | 0.0133 | 7.0 |
    /// | fastclip-v0 | gcl | learnable | cosine | 0.07 | = lr | – |
    /// | fastclip-v1 | gcl | constant | cosine | 0.07 | – | – |
    /// | fastclip-v2 | rgcl | individual | cosine | 0.03 | 0.0133 | 7.0 |
    /// | fastclip-v3 | rgcl-g | rgcl-g | cosine | 0.07 | 2e-3 | 6.5 (by scale) |
    ///
    /// γ_min = 0.2 and E = half the epochs for every FCCO preset. The constant-γ baselines
    /// (SogCLR, iSogCLR) use the same γ_min as the cosine ones, so that the inner-LR ablation
    /// changes only the schedule; the paper's value for those rows is UNSURE (§3.2: the reference
    /// code's default is 0.8), so it stays an option (`--gamma-min`).
    /// v3's lr_τ is 10× the CC3M script's 2e-4: a workbench run has about 1/100 of the paper's
    /// ~98k steps, and Adam moves s by at most about lr_τ per step, so 2e-4 would keep τ within
    /// 0.2 of its start in s. v2's per-sample lr_τ needs no scaling (one update per visit, and
    /// the epoch counts are comparable).
    public static func preset(_ name: String, dataScale: String? = nil) -> ObjectiveConfiguration? {
        var c: ObjectiveConfiguration
        switch name {
        case "openclip":
            c = ObjectiveConfiguration(loss: .mbcl, temperatureRule: .learnable)
        case "sogclr":
            c = ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant, innerLRSchedule: .constant)
        case "isogclr":
            c = ObjectiveConfiguration(
                loss: .rgcl, temperatureRule: .individual, innerLRSchedule: .constant, rho: 7.0,
                learningRateTau: 0.0133, temperatureInit: 0.03)
        case "fastclip-v0":
            c = ObjectiveConfiguration(loss: .gcl, temperatureRule: .learnable)
        case "fastclip-v1":
            c = ObjectiveConfiguration(loss: .gcl, temperatureRule: .constant)
        case "fastclip-v2":
            c = ObjectiveConfiguration(loss: .rgcl, temperatureRule: .individual, rho: 7.0, learningRateTau: 0.0133, temperatureInit: 0.03)
        case "fastclip-v3":
            c = ObjectiveConfiguration(
                loss: .rgclG, temperatureRule: .rgclG, rho: rgclGRho(dataScale: dataScale), learningRateTau: 2e-3)
        default:
            return nil
        }
        c.preset = name
        return c
    }

    /// Checks the parts fit together and every value is in range.
    public func validate() throws {
        func check(_ ok: Bool, _ option: String, _ reason: String) throws {
            if !ok { throw ObjectiveError(option: option, reason: reason) }
        }
        try check(
            (loss == .rgcl) == (temperatureRule == .individual), "--temperature-rule",
            loss == .rgcl ? "the rgcl loss needs the individual rule, got \(temperatureRule.rawValue)"
                : "the individual rule needs the rgcl loss, got --loss \(loss.rawValue)")
        try check(gammaMin > 0 && gammaMin <= 1, "--gamma-min", "must be in (0, 1], got \(gammaMin)")
        if let e = gammaDecayEpochs { try check(e >= 1, "--gamma-decay-epochs", "must be ≥ 1, got \(e)") }
        try check(rho >= 0 && rho.isFinite, "--rho", "must be ≥ 0, got \(rho)")
        if let l = learningRateTau { try check(l > 0 && l <= 10, "--lr-tau", "must be in (0, 10], got \(l)") }
        try check(temperatureRule != .individual || learningRateTau != nil, "--lr-tau",
                  "the individual rule needs an explicit per-sample lr_τ (FastCLIP-v2 uses 0.0133)")
        try check(temperatureMin > 0 && temperatureMin < temperatureMax && temperatureMax <= 100, "temperature bounds",
                  "need 0 < min < max ≤ 100, got [\(temperatureMin), \(temperatureMax)]")
        try check(temperatureInit >= temperatureMin && temperatureInit <= temperatureMax, "--tau-init",
                  "must be in [\(temperatureMin), \(temperatureMax)], got \(temperatureInit)")
        try check(epsilon >= 0 && epsilon < 1, "--fastclip-eps", "must be in [0, 1), got \(epsilon)")
        try check(tauDerivativeWeight == 1 || tauDerivativeWeight == 0.5, "--tau-derivative-weight",
                  "must be 1 (reference code) or 0.5 (exact derivative), got \(tauDerivativeWeight)")
        try check(tauGradientClip > 0, "tau gradient clip", "must be > 0, got \(tauGradientClip)")
    }

    /// A one-line description for logs.
    public var summary: String {
        var parts = ["loss \(loss.rawValue)", "τ rule \(temperatureRule.rawValue)", "τ_init \(temperatureInit)"]
        if loss.usesSampleState {
            parts.append("γ \(innerLRSchedule.rawValue)" + (innerLRSchedule == .drrho ? "" : " (γ_min \(gammaMin))"))
            parts.append("ε \(epsilon)")
        }
        if loss == .rgcl || loss == .rgclG { parts.append("ρ \(rho)") }
        if temperatureRule != .constant { parts.append("lr_τ " + (learningRateTau.map { "\($0)" } ?? "= lr")) }
        if loss == .rgclG { parts.append("τ-derivative weight \(tauDerivativeWeight)") }
        return (preset.map { "\($0): " } ?? "") + parts.joined(separator: ", ")
    }
}
