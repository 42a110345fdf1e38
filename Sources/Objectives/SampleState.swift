// The per-sample state of the FCCO objectives, indexed by global sample id (FastCLIP §3.1, §4.4):
// the moving averages u of both sides and, for individual temperatures, each sample's τ, its Adam
// moments and the log-shift bound. It is part of a checkpoint, so a resumed run continues exactly.

import Foundation

/// The tables of one run, each of length `count` (the data set's id range), side 0 = image
/// anchors (g1), side 1 = text anchors (g2).
///
/// u is kept in Double: on the true scale (global τ) ĝ = mean exp(Δ/τ) reaches e^200 at τ = 0.01,
/// beyond Float's range but well inside Double's. With individual temperatures u is stored shifted,
/// u_stored = u·e^−bound, as the reference code does.
public final class SampleState: @unchecked Sendable {
    public let count: Int
    public let individual: Bool
    /// u per side, (count) each; 0 until the sample's first visit.
    public var u: [[Double]]
    /// τ per side (individual only), initialised to τ_init.
    public var tau: [[Double]]
    /// Adam moments of the per-sample τ (individual only).
    public var tauMoment1: [[Double]]
    public var tauMoment2: [[Double]]
    /// The running log-shift bound b (individual only), initialised to 0; never decreases.
    public var bound: [[Double]]

    public init(count: Int, individual: Bool, temperatureInit: Double) {
        precondition(count > 0, "SampleState: count must be positive")
        self.count = count
        self.individual = individual
        u = [[Double]](repeating: [Double](repeating: 0, count: count), count: 2)
        let n = individual ? count : 0
        tau = [[Double]](repeating: [Double](repeating: temperatureInit, count: n), count: 2)
        tauMoment1 = [[Double]](repeating: [Double](repeating: 0, count: n), count: 2)
        tauMoment2 = [[Double]](repeating: [Double](repeating: 0, count: n), count: 2)
        bound = [[Double]](repeating: [Double](repeating: 0, count: n), count: 2)
    }

    /// Makes every table equal to `other`'s (same count and kind): the per-sample tables of the
    /// shards of batch-split training, after a resume restored one of them.
    ///
    /// The values are copied into this state's own storage. Assigning the arrays (`u = other.u`)
    /// would leave both states on one buffer until each one's first write, and the shards make
    /// those writes on different threads at once, ordered only by the buffer's reference count
    /// (ThreadSanitizer, which does not see that count, reported them in a batch-split resume).
    public func copy(from other: SampleState) {
        precondition(other.count == count && other.individual == individual, "SampleState.copy: the tables differ in size or kind")
        Self.overwrite(&u, with: other.u)
        Self.overwrite(&tau, with: other.tau)
        Self.overwrite(&tauMoment1, with: other.tauMoment1)
        Self.overwrite(&tauMoment2, with: other.tauMoment2)
        Self.overwrite(&bound, with: other.bound)
    }

    /// Writes `source`'s values into `tables`' own buffers, side by side (equal sizes).
    private static func overwrite(_ tables: inout [[Double]], with source: [[Double]]) {
        for side in tables.indices {
            tables[side].withUnsafeMutableBufferPointer { target in
                source[side].withUnsafeBufferPointer { values in _ = target.update(fromContentsOf: values) }
            }
        }
    }

    /// The reference's test for a u that must be replaced by ĝ rather than averaged: never set
    /// (0), below 1e-35, infinite or NaN.
    @inlinable
    public static func isBad(_ u: Double) -> Bool { !(u >= 1e-35) || !u.isFinite }

    /// The moving-average step of §3.1 (eq. 2): u ← (1−γ)·u + γ·ĝ, or u ← ĝ when γ = 1 or the
    /// old u is bad. `rescale` multiplies the old u first (the e^(b−b') of §4.4).
    @inlinable
    public static func movingAverage(old: Double, estimate: Double, gamma: Double, rescale: Double = 1) -> Double {
        if gamma >= 1 || isBad(old) { return estimate }
        return (1 - gamma) * old * rescale + gamma * estimate
    }

    /// The tables under stable names, for checkpoints: `u.image`, `u.text`, and for individual
    /// temperatures `tau.*`, `tau_m.*`, `tau_v.*`, `bound.*`.
    public func tables() -> [(name: String, values: [Double])] {
        let sides = ["image", "text"]
        var out: [(String, [Double])] = (0..<2).map { ("u.\(sides[$0])", u[$0]) }
        if individual {
            for s in 0..<2 {
                out.append(("tau.\(sides[s])", tau[s]))
                out.append(("tau_m.\(sides[s])", tauMoment1[s]))
                out.append(("tau_v.\(sides[s])", tauMoment2[s]))
                out.append(("bound.\(sides[s])", bound[s]))
            }
        }
        return out
    }

    /// Restores one table by the name `tables()` gives it; the error says what did not fit.
    public func restore(_ name: String, values: [Double]) throws {
        guard values.count == count else {
            throw ObjectiveError(option: name, reason: "has \(values.count) entries; the data set has \(count) ids")
        }
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 2, let side = ["image", "text"].firstIndex(of: parts[1]) else {
            throw ObjectiveError(option: name, reason: "is not a per-sample table name")
        }
        if parts[0] != "u" && !individual {
            throw ObjectiveError(option: name, reason: "belongs to individual temperatures, which this objective does not use")
        }
        switch parts[0] {
        case "u": u[side] = values
        case "tau": tau[side] = values
        case "tau_m": tauMoment1[side] = values
        case "tau_v": tauMoment2[side] = values
        case "bound": bound[side] = values
        default: throw ObjectiveError(option: name, reason: "is not a per-sample table name")
        }
    }

    /// Summary statistics over the visited ids (u > 0): the mean, min and max of log u on the true
    /// scale (log u + bound for individual temperatures), and of τ for individual temperatures.
    public func statistics() -> SampleStatistics {
        var s = SampleStatistics()
        var sum = 0.0, n = 0
        for side in 0..<2 {
            for i in 0..<count where u[side][i] > 0 && u[side][i].isFinite {
                let l = _log(u[side][i]) + (individual ? bound[side][i] : 0)
                sum += l
                n += 1
                s.logUMin = min(s.logUMin, l)
                s.logUMax = max(s.logUMax, l)
            }
        }
        s.visitedFraction = Double(n) / Double(2 * count)
        s.logUMean = n > 0 ? sum / Double(n) : .nan
        if n == 0 { (s.logUMin, s.logUMax) = (.nan, .nan) }
        if individual {
            var tsum = 0.0
            for side in 0..<2 {
                for t in tau[side] {
                    tsum += t
                    s.tauMin = min(s.tauMin, t)
                    s.tauMax = max(s.tauMax, t)
                }
            }
            s.tauMean = tsum / Double(2 * count)
        } else {
            (s.tauMin, s.tauMax) = (.nan, .nan)
        }
        return s
    }
}

/// What `SampleState.statistics()` reports; τ fields are NaN for a global temperature.
public struct SampleStatistics: Sendable {
    public var visitedFraction = 0.0
    public var logUMean = Double.nan
    public var logUMin = Double.infinity
    public var logUMax = -Double.infinity
    public var tauMean = Double.nan
    public var tauMin = Double.infinity
    public var tauMax = -Double.infinity
    public init() {}
}

@usableFromInline func _log(_ x: Double) -> Double { x > 0 ? Foundation.log(x) : -.infinity }
