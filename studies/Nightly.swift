// The nightly drift check: rerun every study that has goldens (figures/<study>/golden.csv, written
// by `study NAME --write-goldens` over several seeds) with fresh run directories, judge each
// variant's final value of each golden metric against mean ± max(k·sd, floor), rerun one run to
// check it is bit-identical, print and write the drift table, draw nightly values over their
// bands, and fail on drift. A nightly job that was killed or stopped continues, when started
// again, in the folder of runs it had begun.

import Compute
import Foundation
import Workbench

/// The metrics goldens hold, and their drift rules: eval_mean and R@1 within 3 sd or 3 points;
/// the batch loss within 3 sd or 0.05.
let goldenMetrics = ["eval_mean", "retrieval_i2t_r1", "batch_contrastive"]
let driftRules: [String: DriftRule] = [
    "eval_mean": DriftRule(k: 3, floor: 0.03), "retrieval_i2t_r1": DriftRule(k: 3, floor: 0.03), "batch_contrastive": DriftRule(k: 3, floor: 0.05),
]

/// golden.csv from a study's final-epoch summaries (mean and sd over its seeds).
func goldens(preset: StudyPreset, from rows: [(variant: String, summaries: [String: Summary])]) -> [Golden] {
    rows.flatMap { r in
        goldenMetrics.compactMap { m in
            r.summaries[m].map { Golden(preset: preset.rawValue, variant: r.variant, metric: m, mean: $0.mean, standardDeviation: $0.standardDeviation) }
        }
    }
}

/// A run's metrics.csv without the wall-clock columns, as text (for the bit-identity check).
func metricsWithoutTime(_ directory: String) throws -> String {
    let t = try CSV.parse(try String(contentsOfFile: directory + "/metrics.csv", encoding: .utf8))
    let keep = t.columns.indices.filter { !t.columns[$0].hasSuffix("seconds") }
    return CSV.render(columns: keep.map { t.columns[$0] }, rows: t.rows.map { r in keep.map { Cell.text(r[$0]) } })
}

/// Runs the nightly check; returns whether anything drifted (or was not bit-identical).
/// With `jobs` above 1 that many runs go at once (`study --jobs`). The drift table and figure go to
/// figures/<study>/ (figures/<study>/paper/ for the paper preset, beside its outputs).
func nightly(preset: StudyPreset, figuresRoot: String, cacheRoot: String, threads: Int?, jobs: Int = 1, codeVersion: String) throws -> Bool {
    var failed = false
    var checked = 0
    // One folder of fresh runs per nightly job, named by its start. A job that was killed or
    // stopped leaves a note naming its folder; the next job continues there (finished runs
    // reused, a half-done one resumed from its checkpoint) and removes the note when it is done.
    let note = "\(cacheRoot)/unfinished-\(preset.rawValue).txt"
    let stamp: String
    if let previous = try? String(contentsOfFile: note, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !previous.isEmpty,
        FileManager.default.fileExists(atPath: "\(cacheRoot)/\(previous)")
    {
        stamp = previous
        print("nightly: continuing the unfinished job of \(stamp) in \(cacheRoot)/\(stamp) (remove \(note) to start afresh)")
    } else {
        stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "-")
        try FileManager.default.createDirectory(atPath: "\(cacheRoot)/\(stamp)", withIntermediateDirectories: true)
        try writeAtomically(stamp + "\n", to: note)
    }
    for d in registry {
        let dir = figuresRoot + "/" + d.study.name
        guard let text = try? String(contentsOfFile: dir + "/golden.csv", encoding: .utf8) else {
            print("\(d.study.name): no golden.csv in \(dir); skipped (write one with `study \(d.study.name) --write-goldens --seeds 3`)")
            continue
        }
        let goldenValues = try Drift.readGoldens(text, path: dir + "/golden.csv").filter { $0.preset == preset.rawValue }
        guard !goldenValues.isEmpty else {
            print("\(d.study.name): \(dir)/golden.csv has no \(preset.rawValue) goldens; skipped (write them with "
                  + "`study \(d.study.name) --preset \(preset.rawValue) --write-goldens --seeds 3`)")
            continue
        }
        checked += 1
        // Fresh run directories: the nightly job retrains rather than reading the study cache.
        var runner = StudyRunner(study: d.study, cacheRoot: "\(cacheRoot)/\(stamp)", codeVersion: codeVersion)
        runner.report = { line in
            print(line)
            fflush(nil)  // a progress line reaches a log file when it happens
        }
        let (runJobs, note) = d.jobs(requested: jobs)
        if let note { print(note) }
        try d.prepare?(preset)
        let results = try runner.run(preset: preset, seeds: 1, jobs: runJobs, executor: studyExecutor(defaultRanks: 1, threads: threads, jobs: runJobs))
        let out = StudyOutput(directory: "\(cacheRoot)/\(stamp)/\(d.study.name)-summary")
        try out.write(results, variants: d.study.variants)
        var values: [String: [String: Double]] = [:]
        for r in try out.finalSummaries() { values[r.variant] = r.summaries.mapValues(\.mean) }
        let verdicts = Drift.judge(nightly: values, goldens: goldenValues, rules: driftRules)
        // Bit-identical rerun of the first run.
        let first = d.study.expand(preset: preset, seeds: 1, codeVersion: codeVersion)[0]
        let again = "\(cacheRoot)/\(stamp)/\(d.study.name)-rerun"
        try FileManager.default.createDirectory(atPath: again, withIntermediateDirectories: true)
        try studyExecutor(defaultRanks: 1, threads: threads, jobs: runJobs)(first, again)  // as the first ran: bit-identical needs the same threads
        let identical = try metricsWithoutTime(runner.directory(of: first)) == metricsWithoutTime(again)
        let table = Drift.markdown(verdicts) + "\nBit-identical rerun of \(first.variant), seed 0: " + (identical ? "yes" : "**NO**") + "\n"
        let outDir = preset == .paper ? dir + "/paper" : dir
        try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        try writeAtomically(table, to: outDir + "/nightly.md")
        print("\(d.study.name):\n" + table)
        try drawNightly(verdicts, study: d.study.name, directory: outDir)
        if verdicts.contains(where: \.drifted) || !identical { failed = true }
    }
    if checked == 0 { print("no study has \(preset.rawValue) goldens; nothing checked") }
    try? FileManager.default.removeItem(atPath: note)
    return failed
}

/// nightly.csv and a figure of each nightly value placed in its golden band: position =
/// (value − band centre) / band half-width, so every check shares one axis and the band is [−1, 1]
/// whatever the metric's scale.
func drawNightly(_ verdicts: [DriftResult], study: String, directory: String) throws {
    var rows: [[Cell]] = []
    for (i, v) in verdicts.enumerated() {
        let mid = (v.low + v.high) / 2, half = (v.high - v.low) / 2
        rows.append([.text(v.metric), .number(Double(i)), .text(v.variant), .number(mid), .number(half), .number(v.value),
                     .number(half > 0 ? (v.value - mid) / half : .nan)])
    }
    try writeAtomically(CSV.render(columns: ["metric", "index", "variant", "band_mid", "band_half", "nightly", "position"], rows: rows),
                        to: directory + "/nightly.csv")
    let metrics = Array(Set(verdicts.map(\.metric))).sorted()
    let series = metrics.map { m in Series(title: m, filterColumn: "metric", filterValue: m, x: "index", y: "position").drawn("points pointsize 1.5") }
    let tics = verdicts.enumerated().map { i, v in "\(Gnuplot.quoted(v.variant)) \(i)" }.joined(separator: ", ")
    let figure = Figure(
        name: "nightly", csv: "nightly.csv", title: "\(study): nightly values in their golden bands (±1 = the band's edge)", xLabel: "",
        yLabel: "(nightly − golden mean) / band half-width", series: series,
        extra: [
            "set xtics (\(tics)) rotate by -45 left noenhanced", "set offsets 0.5, 0.5, 0, 0", "set yrange [*<-3:3<*]", "set key below",
            "set object 1 rect from graph 0, first -1 to graph 1, first 1 fc rgb \"#d8f0d8\" fs solid 0.6 behind",
        ])
    try writeAtomically(Gnuplot.script(figure), to: directory + "/nightly.gp")
    try Gnuplot.render(scriptFile: "nightly.gp", in: directory)
}
