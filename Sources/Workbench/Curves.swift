// Comparing learning curves by the samples each needs to reach a value, as FastCLIP §9.3 states
// its speedups.

import Foundation

/// A learning curve: (samples seen, value) per evaluation, in increasing samples.
public typealias Curve = [(samples: Double, value: Double)]

public enum LearningCurves {
    /// The samples at which `curve` first reaches `target` (value ≥ target), linear between
    /// evaluations; nil if it never does.
    public static func samplesToReach(_ target: Double, _ curve: Curve) -> Double? {
        guard let i = curve.firstIndex(where: { $0.value >= target }) else { return nil }
        if i == 0 { return curve[0].samples }
        let (a, b) = (curve[i - 1], curve[i])
        return a.samples + (target - a.value) / (b.value - a.value) * (b.samples - a.samples)
    }

    /// §9.3's speedup of `candidate` over `baseline`, generalised to both signs: with target = the
    /// lower of the two final values, speedup = samples the baseline needs to reach it ÷ samples
    /// the candidate needs. When the candidate ends higher this is the paper's definition (the
    /// target is the baseline's final value); when it ends lower the speedup is below 1 (the
    /// baseline reaches the candidate's final value first). Nil when either curve is empty or the
    /// candidate's samples to the target are 0 (it starts there).
    public static func speedup(baseline: Curve, candidate: Curve) -> (target: Double, baselineSamples: Double, candidateSamples: Double, speedup: Double)? {
        guard let o = baseline.last, let f = candidate.last else { return nil }
        let target = min(o.value, f.value)
        guard let so = samplesToReach(target, baseline), let sf = samplesToReach(target, candidate), sf > 0 else { return nil }
        return (target, so, sf, so / sf)
    }
}
