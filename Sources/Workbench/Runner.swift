// Running a study: each planned run in its own directory under the cache root, named by its id
// (a hash of its settings and the code version), so a finished run is never run again and
// rerunning a study only re-renders. The runner shows progress across the study's runs and
// collects every run's metrics into runs.csv and, averaged over seeds, summary.csv.

import Foundation

/// Runs one planned run, writing `metrics.csv` (a header with `epoch`, then one row per epoch)
/// into `directory`. The `study` executable supplies it: in process, or under mpirun.
public typealias RunExecutor = (_ run: PlannedRun, _ directory: String) throws -> Void

/// A study's results: one row per run and epoch.
public struct StudyResults: Sendable {
    public let study: String
    /// The factor names (one column each in runs.csv), then the metric columns.
    public let factorNames: [String]
    public let metricColumns: [String]
    public let rows: [(run: PlannedRun, metrics: [String: Double])]

    /// runs.csv: `study, variant, <factor columns>, seed, run_id, <metric columns>`.
    public func runsCSV() -> String {
        let columns = ["study", "variant"] + factorNames + ["seed", "run_id"] + metricColumns
        let cells = rows.map { r -> [Cell] in
            [.text(study), .text(r.run.variant)] + r.run.levels.map { .text($0) } + [.number(Double(r.run.seed)), .text(r.run.id)]
                + metricColumns.map { .number(r.metrics[$0] ?? .nan) }
        }
        return CSV.render(columns: columns, rows: cells)
    }

    /// summary.csv: per variant and epoch (in the study's order), `<metric>_mean`, `<metric>_sd`
    /// over seeds, and `seeds`.
    public func summaryCSV(variants: [String]) -> String {
        let metrics = metricColumns.filter { $0 != "epoch" }
        var keys: [(variant: String, epoch: Double)] = []
        var groups: [String: [[String: Double]]] = [:]
        for r in rows {
            let epoch = r.metrics["epoch"] ?? .nan
            let key = r.run.variant + "\u{1}" + CSV.format(epoch)
            if groups[key] == nil { keys.append((r.run.variant, epoch)) }
            groups[key, default: []].append(r.metrics)
        }
        let rank = { (v: String) in variants.firstIndex(of: v) ?? Int.max }
        keys.sort { rank($0.variant) != rank($1.variant) ? rank($0.variant) < rank($1.variant) : $0.epoch < $1.epoch }
        let columns = ["study", "variant", "epoch"] + metrics.flatMap { ["\($0)_mean", "\($0)_sd"] } + ["seeds"]
        let cells = keys.map { k -> [Cell] in
            let group = groups[k.variant + "\u{1}" + CSV.format(k.epoch)]!
            let summaries = metrics.map { m in Summary(group.compactMap { $0[m] }) }
            return [.text(study), .text(k.variant), .number(k.epoch)]
                + summaries.flatMap { [.number($0.mean), .number($0.standardDeviation)] } + [.number(Double(group.count))]
        }
        return CSV.render(columns: columns, rows: cells)
    }
}

public struct StudyRunner {
    public let study: Study
    /// Where run directories go: `<cacheRoot>/<study>/<run id>`.
    public let cacheRoot: String
    public let codeVersion: String
    /// Receives progress lines ("run 3/8 …"); standard output by default.
    public var report: (String) -> Void = { print($0) }
    /// Written into each finished run's done.json beside its id, seconds and code version (for
    /// example the git commit).
    public var provenance: [String: String] = [:]

    public init(study: Study, cacheRoot: String, codeVersion: String) {
        self.study = study
        self.cacheRoot = cacheRoot
        self.codeVersion = codeVersion
    }

    public func directory(of run: PlannedRun) -> String { "\(cacheRoot)/\(study.name)/\(run.id)" }

    /// A run is finished when its directory holds `done.json` (written after the executor returned
    /// and its metrics.csv parsed).
    public func isFinished(_ run: PlannedRun) -> Bool { FileManager.default.fileExists(atPath: directory(of: run) + "/done.json") }

    /// Runs every planned run that is not finished (in order), then reads every run's metrics.
    /// A failed run stops the study with its error; finished runs stay cached.
    public func run(preset: StudyPreset, seeds: Int? = nil, executor: RunExecutor) throws -> StudyResults {
        let plan = study.expand(preset: preset, seeds: seeds, codeVersion: codeVersion)
        let todo = plan.filter { !isFinished($0) }
        report("study \(study.name) (\(preset.rawValue)): \(plan.count) runs, \(plan.count - todo.count) cached, \(todo.count) to run")
        var spent = 0.0
        for (k, run) in todo.enumerated() {
            let dir = directory(of: run)
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try (run.settings.canonicalJSON + "\n").write(toFile: dir + "/settings.json", atomically: true, encoding: .utf8)
            let eta = k == 0 ? "" : ", ETA " + Self.duration(spent / Double(k) * Double(todo.count - k))
            report("run \(k + 1)/\(todo.count): \(run.variant), seed \(run.seed) [\(run.id)]\(eta)")
            let start = Date()
            do { try executor(run, dir) } catch {
                throw WorkbenchError.malformed(what: "study \(study.name), run \(run.variant) seed \(run.seed) (\(dir))", reason: "\(error)")
            }
            _ = try Self.readMetrics(dir + "/metrics.csv")
            let seconds = Date().timeIntervalSince(start)
            spent += seconds
            var done: [String: Any] = provenance
            done["id"] = run.id
            done["seconds"] = seconds
            done["code"] = codeVersion
            let json = try JSONSerialization.data(withJSONObject: done, options: [.sortedKeys, .withoutEscapingSlashes])
            try (json + Data("\n".utf8)).write(to: URL(fileURLWithPath: dir + "/done.json"), options: .atomic)
        }
        var rows: [(run: PlannedRun, metrics: [String: Double])] = []
        var columns: [String] = []
        for run in plan {
            let m = try Self.readMetrics(directory(of: run) + "/metrics.csv")
            for c in m.columns where !columns.contains(c) { columns.append(c) }
            rows += m.rows.map { (run, $0) }
        }
        return StudyResults(study: study.name, factorNames: study.factors.map(\.name), metricColumns: columns, rows: rows)
    }

    /// A run's metrics.csv as rows keyed by column; it must have an `epoch` column.
    public static func readMetrics(_ path: String) throws -> (columns: [String], rows: [[String: Double]]) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
        let t = try CSV.parse(text)
        guard t.columns.contains("epoch") else { throw WorkbenchError.malformed(what: path, reason: "no 'epoch' column") }
        let rows = try t.rows.enumerated().map { n, r -> [String: Double] in
            var d: [String: Double] = [:]
            for (c, f) in zip(t.columns, r) {
                guard let v = CSV.number(f) else { throw WorkbenchError.malformed(what: path, reason: "row \(n + 1), column \(c): '\(f)' is not a number") }
                d[c] = v
            }
            return d
        }
        return (t.columns, rows)
    }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? "\(t / 3600)h\(String(format: "%02d", t % 3600 / 60))m" : t >= 60 ? "\(t / 60)m\(String(format: "%02d", t % 60))s" : "\(t)s"
    }
}
