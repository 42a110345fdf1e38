// A verdict per finding: the claims of a paper that a study mirrors, each tested as one or more
// contrasts of the variants' final metric, paired by seed, with a t interval over the seeds and a
// verdict fixed by a rule stated before any result is seen. Written as findings.csv and
// findings.md beside a study's table; `study findings` gathers every study's into one table.

import Foundation

/// A linear contrast of the variants' final values of one metric, read so that a positive value
/// supports the claim: for seed s, d_s = Σ_v w_v · x_{v,s} (x at each run's last epoch).
public struct Contrast: Sendable, Hashable {
    /// What the part says, e.g. "Medium: FastCLIP-v1 − SogCLR".
    public let label: String
    /// The metric column of runs.csv, e.g. "eval_mean".
    public let metric: String
    /// Variants with their weights.
    public let terms: [Term]
    /// The paper's value of the same contrast, as text ("+1.46 DataComp points"), or "" where
    /// the paper has none.
    public let paper: String
    /// The effect in the claimed direction that a *not reproduced* verdict must exclude (see
    /// `Findings.verdict`), in the metric's units: `Findings.margin` for accuracies and recalls.
    /// *Reproduced* needs only the direction.
    public let margin: Double
    /// A constant added to every d_s: a non-inferiority part (`costsAtMost`) adds its tolerance so
    /// that "above 0" reads "loses less than the tolerance".
    public var offset: Double = 0

    public struct Term: Sendable, Hashable {
        public let variant: String
        public let weight: Double
        public init(_ variant: String, _ weight: Double) {
            self.variant = variant
            self.weight = weight
        }
    }

    public init(label: String, metric: String, terms: [Term], paper: String = "", margin: Double = Findings.margin) {
        precondition(!terms.isEmpty, "Contrast \(label): no terms")
        precondition(margin >= 0, "Contrast \(label): margin must be ≥ 0")
        self.label = label
        self.metric = metric
        self.terms = terms
        self.paper = paper
        self.margin = margin
    }

    /// `candidate − baseline`: the claim that the candidate ends higher.
    public static func difference(
        _ candidate: String, minus baseline: String, metric: String = "eval_mean", label: String? = nil, paper: String = "",
        margin: Double = Findings.margin
    ) -> Contrast {
        Contrast(label: label ?? "\(candidate) − \(baseline)", metric: metric, terms: [Term(candidate, 1), Term(baseline, -1)], paper: paper, margin: margin)
    }

    /// `candidate − baseline + tolerance`: the claim that the candidate loses less than
    /// `tolerance` against the baseline (non-inferiority). With margin 0 the rule reads: *reproduced*
    /// when the interval of candidate − baseline lies above −tolerance, *not reproduced* when it lies
    /// below −tolerance (a loss of more than the tolerance is established).
    public static func costsAtMost(
        _ tolerance: Double, _ candidate: String, against baseline: String, metric: String = "eval_mean", paper: String = ""
    ) -> Contrast {
        precondition(tolerance >= 0, "Contrast.costsAtMost: tolerance must be ≥ 0")
        var c = Contrast(
            label: "\(candidate) − \(baseline) + \(tolerance) (loses less than \(tolerance))", metric: metric,
            terms: [Term(candidate, 1), Term(baseline, -1)], paper: paper, margin: 0)
        c.offset = tolerance
        return c
    }

    /// `(a − b) − (c − d)`: the claim that a's lead over b is larger than c's over d.
    public static func differenceOfDifferences(
        _ a: String, _ b: String, _ c: String, _ d: String, metric: String = "eval_mean", label: String, paper: String = ""
    ) -> Contrast {
        Contrast(label: label, metric: metric, terms: [Term(a, 1), Term(b, -1), Term(c, -1), Term(d, 1)], paper: paper)
    }
}

/// A paper's claim that a study mirrors: a statement, where the paper makes it, and the contrasts
/// that must all come out positive for it to hold.
public struct Claim: Sendable, Hashable {
    public let statement: String
    /// Where in the paper (or its spec) the claim is made.
    public let source: String
    public let parts: [Contrast]
    public init(_ statement: String, source: String, parts: [Contrast]) {
        precondition(!parts.isEmpty, "Claim '\(statement)': no parts")
        self.statement = statement
        self.source = source
        self.parts = parts
    }
}

/// The verdict on a contrast or a claim.
public enum Verdict: String, Sendable, Hashable, Codable {
    case reproduced, notReproduced = "not reproduced", inconclusive
}

/// One contrast measured: its values per seed, their mean, sd and 95% interval, and the verdict.
public struct FindingPart: Sendable, Hashable {
    public let contrast: Contrast
    /// d_s for the seeds at which every variant of the contrast has a final value, in seed order.
    public let values: [Double]
    /// Each variant's final value over the seeds: mean, sd and count.
    public let variants: [String: Summary]
    public var summary: Summary { Summary(values) }
    /// The 95% t interval of the mean of `values` (NaN with fewer than 2 seeds).
    public var interval: (low: Double, high: Double) { Findings.tInterval(values) }
    public var verdict: Verdict { Findings.verdict(interval, margin: contrast.margin) }
}

/// A claim measured: its parts and the claim's verdict.
public struct Finding: Sendable, Hashable {
    public let claim: Claim
    public let parts: [FindingPart]
    /// Reproduced when every part is, not reproduced when any part is not, else inconclusive.
    public var verdict: Verdict {
        let v = parts.map(\.verdict)
        if v.allSatisfy({ $0 == .reproduced }) { return .reproduced }
        if v.contains(.notReproduced) { return .notReproduced }
        return .inconclusive
    }
}

public enum Findings {
    /// The default margin of the verdict rule: an interval entirely below it (0.005 = half a point
    /// of accuracy or recall) excludes an effect of that size and reads *not reproduced*; an
    /// interval entirely above 0 reads *reproduced* however small the effect.
    public static let margin = 0.005

    /// The rule, fixed before any study was run at its paper preset:
    /// - *reproduced*: the 95% interval of the paired difference lies above 0 (the claimed
    ///   direction is established);
    /// - *not reproduced*: the interval lies below `margin` (an effect in the claimed direction
    ///   of `margin` or more is excluded: reversed, or too small to matter);
    /// - *inconclusive*: otherwise, or with fewer than 2 seeds.
    public static func verdict(_ interval: (low: Double, high: Double), margin: Double = margin) -> Verdict {
        guard interval.low.isFinite && interval.high.isFinite else { return .inconclusive }
        if interval.low > 0 { return .reproduced }
        if interval.high < margin { return .notReproduced }
        return .inconclusive
    }

    /// mean ± t_{0.975, n−1} · sd / √n (Student's t over the seeds; NaN for n < 2).
    public static func tInterval(_ values: [Double]) -> (low: Double, high: Double) {
        let s = Summary(values)
        guard s.count >= 2 else { return (.nan, .nan) }
        let half = tQuantile975(degreesOfFreedom: s.count - 1) * s.standardDeviation / Double(s.count).squareRoot()
        return (s.mean - half, s.mean + half)
    }

    /// The 0.975 quantile of Student's t with `df` degrees of freedom: tabulated for 1…30, then
    /// the Cornish–Fisher expansion around the normal quantile (error below 1e-4 for df > 30).
    public static func tQuantile975(degreesOfFreedom df: Int) -> Double {
        precondition(df >= 1, "tQuantile975: degrees of freedom must be ≥ 1")
        let table = [
            12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604, 2.1448, 2.1314,
            2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
        ]
        if df <= table.count { return table[df - 1] }
        let z = 1.959964, n = Double(df)
        let g1 = (z * z * z + z) / 4, g2 = (5 * pow(z, 5) + 16 * z * z * z + 3 * z) / 96
        let g3 = (3 * pow(z, 7) + 19 * pow(z, 5) + 17 * z * z * z - 15 * z) / 384
        return z + g1 / n + g2 / (n * n) + g3 / (n * n * n)
    }

    /// Each run's value of `metric` at its last epoch, by variant and seed, from runs.csv
    /// (columns `variant`, `seed`, `epoch` and the metric).
    /// With `stage`, only the rows of that stage of a staged run count (its `stage` column; a
    /// runs.csv without one has a single stage, "1").
    public static func finalValues(runsCSV text: String, path: String, metric: String, stage: String? = nil) throws -> [String: [Int: Double]] {
        let t: (columns: [String], rows: [[String]])
        do { t = try CSV.parse(text) } catch { throw WorkbenchError.malformed(what: path, reason: "\(error)") }
        guard let vi = t.columns.firstIndex(of: "variant"), let si = t.columns.firstIndex(of: "seed"), let ei = t.columns.firstIndex(of: "epoch") else {
            throw WorkbenchError.malformed(what: path, reason: "needs the columns variant, seed and epoch")
        }
        guard let mi = t.columns.firstIndex(of: metric) else { throw WorkbenchError.malformed(what: path, reason: "no column '\(metric)' (a finding's metric)") }
        let stageIndex = t.columns.firstIndex(of: "stage")
        var last: [String: [Int: (epoch: Double, value: Double)]] = [:]
        for (n, r) in t.rows.enumerated() {
            if let stage, (stageIndex.map { r[$0] } ?? "1") != stage { continue }
            guard let seed = CSV.number(r[si]).flatMap({ Int(exactly: $0) }), let epoch = CSV.number(r[ei]) else {
                throw WorkbenchError.malformed(what: path, reason: "row \(n + 1): seed and epoch must be numbers")
            }
            let value = CSV.number(r[mi]) ?? .nan
            if let old = last[r[vi]]?[seed], old.epoch > epoch { continue }
            last[r[vi], default: [:]][seed] = (epoch, value)
        }
        return last.mapValues { $0.mapValues(\.value) }
    }

    /// Measures every claim over the runs.csv text; throws naming a variant no run has.
    public static func evaluate(_ claims: [Claim], runsCSV text: String, path: String) throws -> [Finding] {
        var cache: [String: [String: [Int: Double]]] = [:]
        return try claims.map { claim in
            let parts = try claim.parts.map { c -> FindingPart in
                if cache[c.metric] == nil { cache[c.metric] = try finalValues(runsCSV: text, path: path, metric: c.metric) }
                let table = cache[c.metric]!
                for term in c.terms where table[term.variant] == nil {
                    throw WorkbenchError.malformed(what: path, reason: "claim part '\(c.label)': no run of variant '\(term.variant)'")
                }
                var seeds = Set(table[c.terms[0].variant]!.keys)
                for term in c.terms.dropFirst() { seeds.formIntersection(table[term.variant]!.keys) }
                let values = seeds.sorted().map { s in c.terms.reduce(c.offset) { $0 + $1.weight * table[$1.variant]![s]! } }
                var variants: [String: Summary] = [:]
                for term in c.terms { variants[term.variant] = Summary(seeds.sorted().map { table[term.variant]![$0]! }) }
                return FindingPart(contrast: c, values: values, variants: variants)
            }
            return Finding(claim: claim, parts: parts)
        }
    }

    /// findings.csv: one row per part (claim, source, part, metric, seeds, mean, sd, low, high,
    /// verdict, paper) and one per claim (part "all", its verdict).
    public static func csv(_ findings: [Finding], study: String) -> String {
        var rows: [[Cell]] = []
        for f in findings {
            for p in f.parts {
                let s = p.summary, i = p.interval
                rows.append([.text(study), .text(f.claim.statement), .text(f.claim.source), .text(p.contrast.label), .text(p.contrast.metric),
                             .number(Double(s.count)), .number(s.mean), .number(s.standardDeviation), .number(i.low), .number(i.high),
                             .text(p.verdict.rawValue), .text(p.contrast.paper)])
            }
            rows.append([.text(study), .text(f.claim.statement), .text(f.claim.source), .text("all"), .text(""), .number(.nan), .number(.nan),
                         .number(.nan), .number(.nan), .number(.nan), .text(f.verdict.rawValue), .text("")])
        }
        return CSV.render(
            columns: ["study", "claim", "source", "part", "metric", "seeds", "mean", "sd", "low", "high", "verdict", "paper"], rows: rows)
    }

    /// findings.md: per claim, its verdict and a table of its parts (each variant's mean ± sd, the
    /// paired difference with its 95% interval, the paper's value, the part's verdict); then the
    /// rule. `regime` describes the preset (what was matched, what differs).
    public static func markdown(_ findings: [Finding], study: String, preset: String, regime: String) -> String {
        func f(_ v: Double) -> String { v.isFinite ? String(format: "%.3f", v) : "–" }
        func signed(_ v: Double) -> String { v.isFinite ? String(format: "%+.3f", v) : "–" }
        var out = "# Findings: \(study) (\(preset) preset)\n\n"
        if !regime.isEmpty { out += regime + "\n\n" }
        for (k, finding) in findings.enumerated() {
            out += "## \(k + 1). \(finding.claim.statement): **\(finding.verdict.rawValue)**\n\n_\(finding.claim.source)_\n\n"
            out += "| part | ours: each variant, mean ± sd | paired difference, mean ± sd | 95% interval | paper | verdict |\n"
            out += "| --- | --- | --- | --- | --- | --- |\n"
            for p in finding.parts {
                let values = p.contrast.terms.map { t in
                    let s = p.variants[t.variant]!
                    return "\(t.variant) \(f(s.mean)) ± \(f(s.standardDeviation))"
                }.joined(separator: "; ")
                let s = p.summary, i = p.interval
                out += "| \(p.contrast.label) (\(p.contrast.metric), \(s.count) seeds) | \(values) | \(signed(s.mean)) ± \(f(s.standardDeviation)) | "
                    + "[\(signed(i.low)), \(signed(i.high))] | \(p.contrast.paper.isEmpty ? "–" : p.contrast.paper) | \(p.verdict.rawValue) |\n"
            }
            out += "\n"
        }
        out += "Rule (fixed before the runs): a part is *reproduced* when the 95% t interval of its paired difference over seeds lies "
            + "above 0, *not reproduced* when it lies below the part's margin (+\(margin) for accuracies and recalls: an effect of that size "
            + "in the claimed direction is excluded; 0 for a part that loses less than a tolerance, whose difference includes the tolerance), "
            + "else *inconclusive*; a claim is reproduced when all its parts are and not reproduced when any part is not.\n"
        return out
    }

    /// A Markdown table of every claim in the findings.csv files given (study, claim, parts'
    /// differences, verdict), for the top of docs/studies.md.
    public static func overview(csvFiles: [(path: String, text: String)]) throws -> String {
        var out = "| study | claim | parts: difference [95% interval] | verdict |\n| --- | --- | --- | --- |\n"
        for (path, text) in csvFiles {
            let t: (columns: [String], rows: [[String]])
            do { t = try CSV.parse(text) } catch { throw WorkbenchError.malformed(what: path, reason: "\(error)") }
            let need = ["study", "claim", "part", "mean", "low", "high", "verdict"]
            let index = Dictionary(uniqueKeysWithValues: t.columns.enumerated().map { ($1, $0) })
            for c in need where index[c] == nil { throw WorkbenchError.malformed(what: path, reason: "no column '\(c)'") }
            var order: [String] = []
            var parts: [String: [String]] = [:]
            var verdicts: [String: String] = [:]
            var studies: [String: String] = [:]
            for r in t.rows {
                let claim = r[index["claim"]!]
                if studies[claim] == nil { order.append(claim); studies[claim] = r[index["study"]!] }
                if r[index["part"]!] == "all" {
                    verdicts[claim] = r[index["verdict"]!]
                } else {
                    let m = CSV.number(r[index["mean"]!]) ?? .nan, lo = CSV.number(r[index["low"]!]) ?? .nan, hi = CSV.number(r[index["high"]!]) ?? .nan
                    let fmt = { (v: Double) in v.isFinite ? String(format: "%+.3f", v) : "–" }
                    parts[claim, default: []].append("\(r[index["part"]!]): \(fmt(m)) [\(fmt(lo)), \(fmt(hi))]")
                }
            }
            for claim in order {
                out += "| \(studies[claim]!) | \(claim) | \(parts[claim, default: []].joined(separator: "; ")) | **\(verdicts[claim] ?? "–")** |\n"
            }
        }
        return out
    }
}
