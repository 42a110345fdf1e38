// Every study `swift run study NAME` knows: its declaration, figures and table.

import Compute
import Workbench

/// A study with what it draws.
struct StudyDefinition: Sendable {
    var study: Study
    /// Figures over the output directory's CSV files, given the variants in order and the preset.
    let figures: @Sendable ([String], StudyPreset) -> [Figure]
    let table: ResultsTable
    /// The paper's claims the study mirrors, each judged from runs.csv (findings.csv, findings.md).
    var claims: [Claim] = []
    /// After the runs: files the study keeps from its run directories, written into the output
    /// directory (so `--render-only` needs no cache). Gets each run with its directory.
    var collect: (@Sendable (_ runs: [(run: PlannedRun, directory: String)], _ output: String) throws -> [String])? = nil
    /// Before the figures: CSV files and tables derived from the output directory's CSV files
    /// (runs.csv, summary.csv, and what `collect` kept). Returns the files written.
    var derive: (@Sendable (_ output: String) throws -> [String])? = nil
    /// Before any run (not for `--plan` or `--render-only`): makes what the runs need that the study
    /// can make itself, such as imported real data, or throws saying what is missing.
    var prepare: (@Sendable (_ preset: StudyPreset) throws -> Void)? = nil
    /// Whether the study's results are timings: its runs then go one at a time whatever `--jobs`
    /// says, since runs side by side share the cores and skew every time they measure.
    var timesRuns = false

    /// The runs at once for a requested `jobs`, and the note to print when that is fewer.
    func jobs(requested: Int) -> (jobs: Int, note: String?) {
        guard timesRuns && requested > 1 else { return (requested, nil) }
        return (1, "\(study.name) times its runs: running them one at a time (--jobs \(requested) would share the cores between runs and skew the timings)")
    }
}

let registry: [StudyDefinition] = [
    innerLRScheduleStudy, temperatureAblation, fastclipVsOpenclip, gradientReductionStudy, optimizersStudy, fccoRegime, inverseScaling, tokenReductionStrategies,
    finetuneMasking, clipUpStudy, realDataStudy,
]

/// A figure of `metric` (mean ± sd over seeds) against epochs, one line per variant: a tic per
/// epoch for the short presets, every 5 epochs for the paper's 30+.
func perEpochFigure(name: String, metric: String, title: String, yLabel: String, variants: [String], preset: StudyPreset, extra: [String] = []) -> Figure {
    let step = preset == .paper ? 5 : 1
    return Figure(
        name: name, csv: "summary.csv", title: title, xLabel: "epoch", yLabel: yLabel,
        series: variants.map { Series(title: $0, filterColumn: "variant", filterValue: $0, x: "epoch", y: "\(metric)_mean", error: "\(metric)_sd") },
        extra: ["set xtics \(step)", "set mxtics \(step)"] + extra)
}

/// The held-out columns every study's table shows.
let standardColumns = [
    TableColumn("eval_mean", "eval mean"), TableColumn("zeroshot_shape_top1", "shape"), TableColumn("zeroshot_colour_top1", "colour"),
    TableColumn("zeroshot_count_top1", "count"), TableColumn("retrieval_i2t_r1", "i2t R@1"), TableColumn("retrieval_t2i_r1", "t2i R@1"),
]

/// Every study's smoke preset: nano with a small trained tokenizer and a small held-out set
/// (seconds per run), one seed, plus the study's own data and schedule.
func smokePreset(_ settings: [String: ConfigValue]) -> PresetScale {
    let nano: [String: ConfigValue] = ["model": "nano", "tokenizer": "trained", "vocabSize": 600, "evalExamples": 5, "retrievalSize": 50]
    return PresetScale(seeds: 1, nano.merging(settings) { _, study in study })
}

/// A CSV file of a study's output directory as rows keyed by column.
func readTable(_ path: String) throws -> [[String: String]] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
        throw WorkbenchError.missing(what: path + " (run the study first; --render-only redraws from it)")
    }
    let t: (columns: [String], rows: [[String]])
    do { t = try CSV.parse(text) } catch { throw WorkbenchError.malformed(what: path, reason: "\(error)") }
    if let d = t.columns.first(where: { c in t.columns.filter { $0 == c }.count > 1 }) {
        throw WorkbenchError.malformed(what: path, reason: "column '\(d)' appears twice in the header")
    }
    return t.rows.map { Dictionary(uniqueKeysWithValues: zip(t.columns, $0)) }
}

/// A whole, finite number of a row read by `readTable`, as an Int; throws naming the file and column.
func integer(_ row: [String: String], _ column: String, in path: String) throws -> Int {
    let v = try number(row, column, in: path)
    guard let i = Int(exactly: v) else { throw WorkbenchError.malformed(what: path, reason: "column '\(column)': expected a whole number, got \(v)") }
    return i
}

/// A number of a row read by `readTable`; throws naming the file and column when it is not one.
func number(_ row: [String: String], _ column: String, in path: String) throws -> Double {
    guard let s = row[column] else { throw WorkbenchError.malformed(what: path, reason: "no column '\(column)'") }
    guard let v = CSV.number(s) else { throw WorkbenchError.malformed(what: path, reason: "column '\(column)': '\(s)' is not a number") }
    return v
}

/// Writes `text` to `<directory>/<name>` (atomically: Compute's `writeAtomically`) and returns the name.
func write(_ text: String, _ name: String, in directory: String) throws -> String {
    try writeAtomically(text, to: directory + "/" + name)
    return name
}
