// Running a study: each planned run in its own directory under the cache root, named by its id
// (a hash of its settings and the code version), so a finished run is never run again and
// rerunning a study only re-renders. The runner shows progress across the study's runs and
// collects every run's metrics into runs.csv and, averaged over seeds, summary.csv.

import Compute
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
    /// Where run directories go: `<cacheRoot>/<cache group>/<run id>` (the group is the study's
    /// name unless it shares runs with others).
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

    public func directory(of run: PlannedRun) -> String { "\(cacheRoot)/\(study.cacheGroup)/\(run.id)" }

    /// A run is finished when its directory holds `done.json` (written after the executor returned
    /// and its metrics.csv parsed).
    public func isFinished(_ run: PlannedRun) -> Bool { FileManager.default.fileExists(atPath: directory(of: run) + "/done.json") }

    /// Runs every planned run that is not finished, then reads every run's metrics. With `jobs`
    /// above 1, up to that many runs execute at once (the executor is called from that many
    /// threads; the study executable then runs each one as a process of its own), taken in plan
    /// order; progress lines say when each starts and ends, with an ETA over all of them. A failed
    /// run stops the study with its error once the runs under way have ended; finished runs stay
    /// cached.
    public func run(preset: StudyPreset, seeds: Int? = nil, jobs: Int = 1, executor: @escaping RunExecutor) throws -> StudyResults {
        let plan = study.expand(preset: preset, seeds: seeds, codeVersion: codeVersion)
        let todo = plan.filter { !isFinished($0) }
        report("study \(study.name) (\(preset.rawValue)): \(plan.count) runs, \(plan.count - todo.count) cached, \(todo.count) to run"
            + (jobs > 1 && todo.count > 1 ? ", \(min(jobs, todo.count)) at a time" : ""))
        if jobs > 1 && todo.count > 1 {
            try runConcurrently(todo, jobs: jobs, executor: executor)
        } else {
            var spent = 0.0
            for (k, run) in todo.enumerated() {
                let eta = k == 0 ? "" : ", ETA " + Self.duration(spent / Double(k) * Double(todo.count - k))
                report("run \(k + 1)/\(todo.count): \(run.variant), seed \(run.seed) [\(run.id)]\(eta)")
                spent += try execute(run, executor)
            }
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

    /// Runs one planned run in its directory and marks it finished (done.json, after its
    /// metrics.csv parsed); returns its seconds.
    func execute(_ run: PlannedRun, _ executor: RunExecutor) throws -> Double {
        let dir = directory(of: run)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try writeAtomically(run.settings.canonicalJSON + "\n", to: dir + "/settings.json")
        let start = Date()
        do { try executor(run, dir) } catch let stopped as RunStopped {
            throw RunStopped(message: "study \(study.name), run \(run.variant) seed \(run.seed) (\(dir)): \(stopped.message)")
        } catch {
            throw WorkbenchError.malformed(what: "study \(study.name), run \(run.variant) seed \(run.seed) (\(dir))", reason: "\(error)")
        }
        _ = try Self.readMetrics(dir + "/metrics.csv")
        let seconds = Date().timeIntervalSince(start)
        var done: [String: Any] = provenance
        done["id"] = run.id
        done["seconds"] = seconds
        done["code"] = codeVersion
        let json = try JSONSerialization.data(withJSONObject: done, options: [.sortedKeys, .withoutEscapingSlashes])
        try writeAtomically(json + Data("\n".utf8), to: dir + "/done.json")
        return seconds
    }

    /// `jobs` threads take the runs in order, each calling `executor` for one run at a time.
    func runConcurrently(_ todo: [PlannedRun], jobs: Int, executor: @escaping RunExecutor) throws {
        let state = ConcurrentRuns(runner: self, executor: executor, count: todo.count)
        let done = DispatchGroup()
        for _ in 0..<min(jobs, todo.count) {
            done.enter()
            Thread {
                while let k = state.next() {
                    let run = todo[k]
                    state.say("run \(k + 1)/\(todo.count) started: \(run.variant), seed \(run.seed) [\(run.id)]")
                    do {
                        let seconds = try state.runner.execute(run, state.executor)
                        state.finished(k, run: run, seconds: seconds)
                    } catch {
                        state.failed(error)
                    }
                }
                done.leave()
            }.start()
        }
        done.wait()
        if let error = state.error { throw error }
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

/// What the threads of a concurrent study share: the next run to take, the count finished, the
/// first error, and the progress lines (one at a time).
private final class ConcurrentRuns: @unchecked Sendable {
    let runner: StudyRunner
    let executor: RunExecutor
    let count: Int
    let lock = NSLock()
    let start = Date()
    var taken = 0
    var finishedCount = 0
    private(set) var error: Error?

    init(runner: StudyRunner, executor: @escaping RunExecutor, count: Int) {
        self.runner = runner
        self.executor = executor
        self.count = count
    }

    /// The index of the next run, or nil when all are taken or a run failed.
    func next() -> Int? {
        lock.lock()
        defer { lock.unlock() }
        guard error == nil, taken < count else { return nil }
        taken += 1
        return taken - 1
    }

    func say(_ line: String) {
        lock.lock()
        runner.report(line)
        lock.unlock()
    }

    func finished(_ k: Int, run: PlannedRun, seconds: Double) {
        lock.lock()
        finishedCount += 1
        let elapsed = Date().timeIntervalSince(start)
        let left = count - finishedCount
        let eta = left == 0 ? "" : ", ETA " + StudyRunner.duration(elapsed / Double(finishedCount) * Double(left))
        runner.report("run \(k + 1)/\(count) done: \(run.variant), seed \(run.seed) in \(StudyRunner.duration(seconds)); \(finishedCount)/\(count) finished\(eta)")
        lock.unlock()
    }

    func failed(_ e: Error) {
        lock.lock()
        if error == nil { error = e }
        lock.unlock()
    }
}

/// A run that stopped on request (SIGTERM, SIGINT, a time limit) after a checkpoint: not a failure.
/// The study ends (finished runs stay cached) and, started again, resumes the run where it stopped.
public struct RunStopped: Error, CustomStringConvertible {
    public let message: String
    public init(message: String) {
        self.message = message
    }
    public var description: String { message }
}
