// A study's artefacts in `figures/<study>/`: runs.csv and summary.csv from the results, then,
// from summary.csv alone (so `--render-only` redraws without running anything), a gnuplot script
// plus PNG, SVG and PDF per figure, and table.md / table.tex.

import Compute
import Foundation

public struct StudyOutput {
    public let directory: String
    public init(directory: String) { self.directory = directory }

    /// Writes runs.csv and summary.csv (atomically: Compute's `writeAtomically`).
    public func write(_ results: StudyResults, variants: [String]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try writeAtomically(results.runsCSV(), to: directory + "/runs.csv")
        try writeAtomically(results.summaryCSV(variants: variants), to: directory + "/summary.csv")
    }

    /// Each variant's summaries at its last epoch in summary.csv, in file order.
    public func finalSummaries() throws -> [(variant: String, summaries: [String: Summary])] {
        let path = directory + "/summary.csv"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw WorkbenchError.missing(what: path + " (run the study first; --render-only redraws from it)")
        }
        let t = try CSV.parse(text)
        guard let vi = t.columns.firstIndex(of: "variant"), let ei = t.columns.firstIndex(of: "epoch"), let si = t.columns.firstIndex(of: "seeds") else {
            throw WorkbenchError.malformed(what: path, reason: "needs the columns variant, epoch and seeds")
        }
        var order: [String] = []
        var last: [String: [String]] = [:]
        for row in t.rows {
            let v = row[vi]
            if last[v] == nil { order.append(v) }
            if let old = last[v], (CSV.number(old[ei]) ?? -1) > (CSV.number(row[ei]) ?? -1) { continue }
            last[v] = row
        }
        let metrics = t.columns.filter { $0.hasSuffix("_mean") }.map { String($0.dropLast("_mean".count)) }
        return order.map { v in
            let row = last[v]!
            var out: [String: Summary] = [:]
            for m in metrics {
                guard let mi = t.columns.firstIndex(of: m + "_mean"), let di = t.columns.firstIndex(of: m + "_sd") else { continue }
                out[m] = Summary(mean: CSV.number(row[mi]) ?? .nan, standardDeviation: CSV.number(row[di]) ?? .nan, count: Int(CSV.number(row[si]) ?? 0))
            }
            return (v, out)
        }
    }

    /// Writes and renders every figure, and the table, from summary.csv; returns the files written.
    @discardableResult
    public func render(figures: [Figure], table: ResultsTable) throws -> [String] {
        let rows = try finalSummaries()  // first: nothing is drawn without summary.csv
        var written: [String] = []
        for f in figures {
            try writeAtomically(Gnuplot.script(f), to: directory + "/\(f.name).gp")
            try Gnuplot.render(scriptFile: "\(f.name).gp", in: directory)
            written += ["gp", "png", "svg", "pdf"].map { "\(f.name).\($0)" }
        }
        try writeAtomically(table.markdown(rows), to: directory + "/table.md")
        try writeAtomically(table.latex(rows), to: directory + "/table.tex")
        return written + ["table.md", "table.tex"]
    }
}
