// The inner learning rate γ of FastCLIP's moving averages (§3.2), set once per epoch, and the
// `step_thresh` rule for lr_τ of FastCLIP-v3 (§5).

import Foundation

/// γ per epoch. `gamma(epoch: 0)` is 1 for every kind: on its first visit a sample's u becomes ĝ.
public struct InnerLRSchedule: Sendable, Hashable, Codable {
    public let kind: InnerLRScheduleKind
    /// γ_min (for `drrho`, derived from `totalEpochs`).
    public let gammaMin: Double
    /// E, the epochs of the cosine decay (for `drrho`, all epochs).
    public let decayEpochs: Int

    /// Resolves the schedule of an objective for a run of `totalEpochs` epochs.
    public init(_ objective: ObjectiveConfiguration, totalEpochs: Int) {
        kind = objective.innerLRSchedule
        switch kind {
        case .drrho:
            gammaMin = Self.drrhoGammaMin(totalEpochs: totalEpochs)
            decayEpochs = max(1, totalEpochs)
        case .constant, .cosine:
            gammaMin = objective.gammaMin
            decayEpochs = objective.gammaDecayEpochs ?? max(1, totalEpochs / 2)
        }
    }

    public init(kind: InnerLRScheduleKind, gammaMin: Double, decayEpochs: Int) {
        self.kind = kind
        self.gammaMin = gammaMin
        self.decayEpochs = decayEpochs
    }

    /// DRRho-CLIP's rule γ_min = min(1, 4.177·E^−0.7265) for a run of E epochs.
    public static func drrhoGammaMin(totalEpochs: Int) -> Double {
        min(1, 4.177 * Foundation.pow(Double(max(1, totalEpochs)), -0.7265))
    }

    /// γ for 0-based epoch `epoch`:
    ///   1 if epoch = 0; else constant: γ_min; cosine/drrho: γ_min + (1−γ_min)·½(1 + cos(π·epoch/E))
    ///   while epoch < E, and γ_min from E on.
    public func gamma(epoch: Int) -> Double {
        if epoch <= 0 { return 1 }
        switch kind {
        case .constant:
            return gammaMin
        case .cosine, .drrho:
            if epoch >= decayEpochs { return gammaMin }
            return gammaMin + (1 - gammaMin) * 0.5 * (1 + Foundation.cos(Double.pi * Double(epoch) / Double(decayEpochs)))
        }
    }
}

/// FastCLIP-v3's `step_thresh` learning rate of s = ln(1/τ): `base` while τ > 0.03, base/3
/// otherwise, re-checked every step, with no warm-up.
@inlinable
public func stepThreshTemperatureRate(base: Double, temperature: Double, threshold: Double = 0.03) -> Double {
    temperature > threshold ? base : base / 3
}
