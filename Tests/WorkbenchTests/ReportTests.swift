import Foundation
import Testing
import Workbench

@Suite("Workbench: tables and drift")
struct ReportTests {
    let table = ResultsTable(
        caption: "Inner-LR schedule (FastCLIP Table 9.1 analogue)",
        columns: [TableColumn("eval_mean", "eval mean"), TableColumn("retrieval_i2t_r1", "i2t R@1", digits: 2)],
        paperHeaders: ["DataComp"], paper: ["FastCLIP-v1": ["24.87"]])
    let rows: [(variant: String, summaries: [String: Summary])] = [
        ("FastCLIP-v1", ["eval_mean": Summary([0.6, 0.62]), "retrieval_i2t_r1": Summary([0.5, 0.52])]),
        ("SogCLR_const", ["eval_mean": Summary([0.59]), "retrieval_i2t_r1": Summary([])]),
    ]

    @Test("Markdown table: mean ± sd, single seeds without sd, paper side column, dashes for missing")
    func markdown() {
        #expect(table.markdown(rows) == """
            **Inner-LR schedule (FastCLIP Table 9.1 analogue)**

            | variant | eval mean | i2t R@1 | paper: DataComp |
            | --- | --- | --- | --- |
            | FastCLIP-v1 | 0.610 ± 0.014 | 0.51 ± 0.01 | 24.87 |
            | SogCLR_const | 0.590 | – | – |

            """)
    }

    @Test("LaTeX table with booktabs and escaped text")
    func latex() {
        let tex = table.latex(rows)
        #expect(tex.contains("\\toprule") && tex.contains("\\midrule") && tex.contains("\\bottomrule"))
        #expect(tex.contains("\\begin{tabular}{lrrr}"))
        #expect(tex.contains("FastCLIP-v1 & 0.610 {\\scriptsize $\\pm$ 0.014} & 0.51 {\\scriptsize $\\pm$ 0.01} & 24.87 \\\\"))
        #expect(tex.contains("SogCLR\\_const & 0.590 & -- & -- \\\\"))
    }

    @Test("Drift: inside the band is fine, outside either way or missing drifts; k and the floor apply")
    func drift() throws {
        let goldens = [
            Golden(variant: "v3", metric: "eval_mean", mean: 0.70, standardDeviation: 0.01),
            Golden(variant: "v3", metric: "loss", mean: 1.0, standardDeviation: 0.0),
            Golden(preset: "smoke", variant: "v1", metric: "eval_mean", mean: 0.60, standardDeviation: 0.002),
        ]
        let rules = ["loss": DriftRule(k: 2, floor: 0.05)]
        func verdicts(_ nightly: [String: [String: Double]]) -> [Bool] { Drift.judge(nightly: nightly, goldens: goldens, rules: rules).map(\.drifted) }
        // v3 eval band ±0.03 (3·0.01), loss band ±0.05 (the floor), v1 band ±0.02 (the default floor).
        #expect(verdicts(["v3": ["eval_mean": 0.72, "loss": 1.04], "v1": ["eval_mean": 0.585]]) == [false, false, false])
        #expect(verdicts(["v3": ["eval_mean": 0.74, "loss": 0.94], "v1": ["eval_mean": 0.575]]) == [true, true, true])
        #expect(verdicts(["v3": ["eval_mean": 0.66]]) == [true, true, true], "a missing value drifts")
        let text = Drift.goldenCSV(goldens)
        #expect(try Drift.readGoldens(text, path: "golden.csv") == goldens)
        #expect(throws: WorkbenchError.self) { try Drift.readGoldens("variant,metric,mean,sd\n", path: "g.csv") }
        #expect(throws: WorkbenchError.self) { try Drift.readGoldens("preset,variant,metric,mean,sd\nquick,v,m,1,-1\n", path: "g.csv") }
        #expect(throws: WorkbenchError.self) { try Drift.readGoldens("preset,variant,metric,mean,sd\nhuge,v,m,1,0\n", path: "g.csv") }
        // Writing a preset's goldens replaces that preset's and keeps the others.
        let smoke = [Golden(preset: "smoke", variant: "v1", metric: "eval_mean", mean: 0.5, standardDeviation: 0.01)]
        let merged = Drift.merge(goldens, smoke)
        #expect(merged.filter { $0.preset == "smoke" } == smoke)
        #expect(merged.filter { $0.preset == "quick" } == goldens.filter { $0.preset == "quick" })
        let md = Drift.markdown(Drift.judge(nightly: ["v3": ["eval_mean": 0.9, "loss": 1]], goldens: goldens))
        #expect(md.contains("| v3 | eval_mean | 0.9000 | [0.6700, 0.7300] | **DRIFT** |"))
        #expect(md.split(separator: "\n")[2].contains("DRIFT"), "drifted rows come first")
    }
}
