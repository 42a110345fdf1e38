// Findings: the t interval against brute-force formulas and tabulated quantiles, the verdict rule
// at its edges, and claims judged from a runs.csv whose seeds come in any order.

import Foundation
import Testing
import Workbench

@Suite("Findings")
struct FindingsTests {
    @Test("t quantiles: the table, and the expansion beyond it within 1e-3 of published values")
    func quantiles() {
        #expect(Findings.tQuantile975(degreesOfFreedom: 1) == 12.7062)
        #expect(Findings.tQuantile975(degreesOfFreedom: 2) == 4.3027)
        #expect(Findings.tQuantile975(degreesOfFreedom: 30) == 2.0423)
        for (df, t) in [(40, 2.0211), (60, 2.0003), (120, 1.9799), (1000, 1.9623)] {
            #expect(abs(Findings.tQuantile975(degreesOfFreedom: df) - t) < 1e-3, "df \(df)")
        }
        // Decreasing in the degrees of freedom, towards the normal quantile.
        let qs = (1...200).map { Findings.tQuantile975(degreesOfFreedom: $0) }
        #expect(zip(qs, qs.dropFirst()).allSatisfy { $0 > $1 } && qs.last! > 1.959964)
    }

    @Test("The interval is mean ± t·sd/√n, computed by hand")
    func interval() {
        let i = Findings.tInterval([1, 2, 3])
        let half = 4.3027 * 1 / 3.0.squareRoot()
        #expect(abs(i.low - (2 - half)) < 1e-12 && abs(i.high - (2 + half)) < 1e-12)
        let one = Findings.tInterval([0.5])
        #expect(one.low.isNaN && one.high.isNaN)
        let same = Findings.tInterval([0.2, 0.2, 0.2])
        #expect(abs(same.low - 0.2) < 1e-15 && abs(same.high - 0.2) < 1e-15)
    }

    @Test("Verdicts: above 0 reproduced, below the margin not reproduced, else inconclusive")
    func verdicts() {
        #expect(Findings.verdict((0.001, 0.03)) == .reproduced)
        #expect(Findings.verdict((0.001, 0.002)) == .reproduced, "a small but established effect is still the claimed direction")
        #expect(Findings.verdict((-0.03, -0.01)) == .notReproduced)
        #expect(Findings.verdict((-0.01, 0.004)) == .notReproduced, "an effect of the margin or more is excluded")
        #expect(Findings.verdict((-0.01, 0.006)) == .inconclusive)
        #expect(Findings.verdict((-0.01, 0.006), margin: 0.01) == .notReproduced)
        #expect(Findings.verdict((.nan, .nan)) == .inconclusive)
        #expect(Findings.verdict((0, 0.02)) == .inconclusive, "0 itself is not above 0")
    }

    /// runs.csv with two epochs per run; only the last epoch counts. Seeds in scrambled order.
    let runs = """
        study,variant,seed,epoch,eval_mean
        s,A,2,0,0.1
        s,B,0,1,0.40
        s,A,0,0,0.1
        s,A,0,1,0.50
        s,B,2,1,0.42
        s,A,1,1,0.47
        s,B,1,1,0.41
        s,A,2,1,0.49
        s,B,2,0,0.2
        s,C,0,1,0.30
        """

    @Test("Claims are judged on each run's last epoch, paired by seed; missing seeds drop out; unknown variants are named")
    func evaluate() throws {
        let claims = [
            Claim("A beats B", source: "test", parts: [.difference("A", minus: "B")]),
            Claim("A beats C and B beats C", source: "test", parts: [.difference("A", minus: "C"), .difference("B", minus: "C")]),
            Claim("A's lead over B exceeds B's over A", source: "test", parts: [.differenceOfDifferences("A", "B", "B", "A", label: "dd")]),
        ]
        let f = try Findings.evaluate(claims, runsCSV: runs, path: "runs.csv")
        // Seeds 0, 1, 2: A − B = 0.10, 0.06, 0.07.
        let p = f[0].parts[0]
        #expect(p.values.count == 3)
        for (v, e) in zip(p.values, [0.10, 0.06, 0.07]) { #expect(abs(v - e) < 1e-12) }
        let brute = Findings.tInterval([0.10, 0.06, 0.07])
        #expect(abs(p.interval.low - brute.low) < 1e-12 && p.verdict == .reproduced && f[0].verdict == .reproduced)
        #expect(abs(p.variants["A"]!.mean - (0.50 + 0.47 + 0.49) / 3) < 1e-12)
        // C has seed 0 only: one paired value, inconclusive; so is the claim.
        #expect(f[1].parts.allSatisfy { $0.values.count == 1 && $0.verdict == .inconclusive } && f[1].verdict == .inconclusive)
        // (A − B) − (B − A) = 2(A − B).
        for (v, e) in zip(f[2].parts[0].values, [0.20, 0.12, 0.14]) { #expect(abs(v - e) < 1e-12) }
        #expect(throws: WorkbenchError.self) {
            try Findings.evaluate([Claim("x", source: "t", parts: [.difference("A", minus: "Z")])], runsCSV: runs, path: "runs.csv")
        }
        do {
            _ = try Findings.evaluate([Claim("x", source: "t", parts: [.difference("A", minus: "Z")])], runsCSV: runs, path: "runs.csv")
        } catch { #expect("\(error)".contains("'Z'") && "\(error)".contains("runs.csv")) }
        #expect(throws: WorkbenchError.self) {
            try Findings.evaluate([Claim("x", source: "t", parts: [.difference("A", minus: "B", metric: "nope")])], runsCSV: runs, path: "runs.csv")
        }
    }

    @Test("A claim is not reproduced when any part is not, even if another part is")
    func compositeVerdict() throws {
        let text = "variant,seed,epoch,m\nA,0,1,0.5\nA,1,1,0.6\nA,2,1,0.55\nB,0,1,0.4\nB,1,1,0.5\nB,2,1,0.45\n"
        let f = try Findings.evaluate(
            [Claim("A beats B and B beats A", source: "t", parts: [.difference("A", minus: "B", metric: "m"), .difference("B", minus: "A", metric: "m")])],
            runsCSV: text, path: "runs.csv")
        #expect(f[0].parts.map(\.verdict) == [.reproduced, .notReproduced] && f[0].verdict == .notReproduced)
    }

    @Test("Non-inferiority: candidate − baseline + tolerance, reproduced above −tolerance, not reproduced below it, else inconclusive")
    func nonInferiority() throws {
        // B − A per seed: −0.002, −0.003, −0.001 (a loss of 0.2 points, well under 0.005);
        // C − A: −0.020, −0.022, −0.021 (a loss of 2 points); D − A: −0.004, +0.003, −0.012 (spread over −0.005).
        let text = """
            variant,seed,epoch,m
            A,0,1,0.500
            A,1,1,0.600
            A,2,1,0.550
            B,0,1,0.498
            B,1,1,0.597
            B,2,1,0.549
            C,0,1,0.480
            C,1,1,0.578
            C,2,1,0.529
            D,0,1,0.496
            D,1,1,0.603
            D,2,1,0.538
            """
        let parts = ["B", "C", "D"].map { Contrast.costsAtMost(0.005, $0, against: "A", metric: "m") }
        let f = try Findings.evaluate([Claim("costs little", source: "t", parts: parts)], runsCSV: text, path: "runs.csv")
        let p = f[0].parts
        for (v, e) in zip(p[0].values, [-0.002, -0.003, -0.001]) { #expect(abs(v - (e + 0.005)) < 1e-12) }
        // By hand: the interval of B − A is −0.002 ± 4.303 · 0.001 / √3 = [−0.0045, +0.0005]: above
        // −0.005, so the loss is under the tolerance, while the plain difference is inconclusive.
        let raw = Findings.tInterval([-0.002, -0.003, -0.001])
        #expect(abs(p[0].interval.low - (raw.low + 0.005)) < 1e-12 && raw.low > -0.005 && raw.high > 0)
        #expect(abs(raw.low - (-0.002 - 4.3027 * 0.001 / 3.0.squareRoot())) < 1e-4)
        #expect(p.map(\.verdict) == [.reproduced, .notReproduced, .inconclusive], "\(p.map(\.verdict))")
        #expect(p[0].contrast.margin == 0 && p[0].contrast.label.contains("loses less than 0.005"))
    }

    @Test("findings.csv and findings.md carry each part, its interval and verdict; the overview gathers claims across files")
    func outputs() throws {
        let f = try Findings.evaluate(
            [Claim("A beats B", source: "Paper §1", parts: [.difference("A", minus: "B", paper: "+1.0")])], runsCSV: runs, path: "runs.csv")
        let csv = Findings.csv(f, study: "demo")
        let rows = try CSV.parse(csv)
        #expect(rows.columns == ["study", "claim", "source", "part", "metric", "seeds", "mean", "sd", "low", "high", "verdict", "paper"])
        #expect(rows.rows.count == 2 && rows.rows[0][3] == "A − B" && rows.rows[0][10] == "reproduced" && rows.rows[1][3] == "all")
        let md = Findings.markdown(f, study: "demo", preset: "paper", regime: "**Regime**: tiny.")
        #expect(md.contains("## 1. A beats B: **reproduced**") && md.contains("**Regime**: tiny.") && md.contains("| +1.0 | reproduced |"), "\(md)")
        #expect(md.contains("+0.077 ± 0.021"), "\(md)")
        let overview = try Findings.overview(csvFiles: [("a/findings.csv", csv), ("b/findings.csv", csv.replacingOccurrences(of: "demo", with: "other"))])
        #expect(overview.contains("| demo | A beats B | A − B: +0.077 [") && overview.contains("| other | A beats B |") && overview.contains("**reproduced**"), "\(overview)")
        #expect(throws: WorkbenchError.self) { try Findings.overview(csvFiles: [("bad.csv", "study,claim\nx,y\n")]) }
    }
}
