import Foundation
import Testing
import Workbench

/// Counts executor calls from the runner.
final class Calls: @unchecked Sendable {
    var runs: [String] = []
}

/// Counts the runs under way at once (and the most at any moment).
final class Gauge: @unchecked Sendable {
    let lock = NSLock()
    var busy = 0
    var most = 0
    func enter() {
        lock.lock()
        busy += 1
        most = max(most, busy)
        lock.unlock()
    }
}

/// Progress lines, gathered from several threads.
final class Lines: @unchecked Sendable {
    let lock = NSLock()
    private(set) var all: [String] = []
    func add(_ line: String) {
        lock.lock()
        all.append(line)
        lock.unlock()
    }
}

@Suite("Workbench: running a study")
struct RunnerTests {
    let study = Study(
        name: "toy", title: "Toy", mirrors: "none",
        base: ["lr": 0.5],
        factors: [.over("schedule", ["cosine", "constant"])],
        presets: [.smoke: PresetScale(seeds: 2, ["epochs": 2]), .quick: PresetScale(seeds: 2, ["epochs": 3]), .paper: PresetScale(seeds: 3, ["epochs": 9])])

    /// A fake training run: metric = epoch·(1 + seed) + (constant ? 10 : 0), written as metrics.csv.
    func executor(_ calls: Calls) -> RunExecutor {
        { run, dir in
            calls.runs.append(run.id)
            let epochs = run.settings["epochs"]!.intValue!
            let offset = run.settings["schedule"] == "constant" ? 10.0 : 0
            var text = "epoch,eval_mean\n"
            for e in 0...epochs { text += "\(e),\(CSV.format(Double(e) * Double(1 + run.seed) + offset))\n" }
            try text.write(toFile: dir + "/metrics.csv", atomically: true, encoding: .utf8)
        }
    }

    @Test("Runs once, then every run is a cache hit; another code version runs again")
    func cache() throws {
        let root = NSTemporaryDirectory() + "study-cache-\(UUID().uuidString)"
        let calls = Calls()
        var lines: [String] = []
        var runner = StudyRunner(study: study, cacheRoot: root, codeVersion: "v1")
        runner.report = { lines.append($0) }
        let first = try runner.run(preset: .smoke, executor: executor(calls))
        #expect(calls.runs.count == 4)
        #expect(lines.first == "study toy (smoke): 4 runs, 0 cached, 4 to run")
        #expect(lines.contains { $0.hasPrefix("run 2/4: cosine, seed 1 [") && $0.contains("ETA") })
        let again = try runner.run(preset: .smoke, executor: executor(calls))
        #expect(calls.runs.count == 4, "a finished run ran again")
        #expect(lines.last == "study toy (smoke): 4 runs, 4 cached, 0 to run")
        #expect(again.runsCSV() == first.runsCSV())
        // More seeds run only the new ones.
        _ = try runner.run(preset: .smoke, seeds: 3, executor: executor(calls))
        #expect(calls.runs.count == 6)
        let other = StudyRunner(study: study, cacheRoot: root, codeVersion: "v2")
        _ = try other.run(preset: .smoke, executor: executor(calls))
        #expect(calls.runs.count == 10)
    }

    @Test("runs.csv and summary.csv, exactly")
    func csvFiles() throws {
        let root = NSTemporaryDirectory() + "study-csv-\(UUID().uuidString)"
        var runner = StudyRunner(study: study, cacheRoot: root, codeVersion: "v1")
        runner.report = { _ in }
        let results = try runner.run(preset: .smoke, executor: executor(Calls()))
        let runs = try CSV.parse(results.runsCSV())
        #expect(runs.columns == ["study", "variant", "schedule", "seed", "run_id", "epoch", "eval_mean"])
        #expect(runs.rows.count == 4 * 3)
        #expect(runs.rows[4].prefix(4) == ["toy", "cosine", "cosine", "1"] && runs.rows[4][5...] == ["1", "2"])
        let summary = results.summaryCSV(variants: study.variants)
        #expect(summary == """
            study,variant,epoch,eval_mean_mean,eval_mean_sd,seeds
            toy,cosine,0,0,0,2
            toy,cosine,1,1.5,0.7071067811865476,2
            toy,cosine,2,3,1.4142135623730951,2
            toy,constant,0,10,0,2
            toy,constant,1,11.5,0.7071067811865476,2
            toy,constant,2,13,1.4142135623730951,2

            """)
    }

    @Test("With jobs, runs execute at once (never more than asked), give what one at a time gives, and report progress over all")
    func concurrentRuns() throws {
        let root = NSTemporaryDirectory() + "study-jobs-\(UUID().uuidString)"
        let sequential = try StudyRunner(study: study, cacheRoot: root + "-1", codeVersion: "v1")
            .run(preset: .smoke, executor: executor(Calls()))
        var runner = StudyRunner(study: study, cacheRoot: root + "-3", codeVersion: "v1")
        let lines = Lines()
        runner.report = { lines.add($0) }
        let gauge = Gauge(), calls = Calls(), write = executor(calls)
        let results = try runner.run(preset: .smoke, jobs: 3) { run, dir in
            gauge.enter()
            Thread.sleep(forTimeInterval: 0.05)
            gauge.lock.lock()
            defer { gauge.lock.unlock() }
            try write(run, dir)
            gauge.busy -= 1
        }
        #expect(gauge.most >= 2 && gauge.most <= 3, "at most \(gauge.most) runs at once")
        #expect(results.runsCSV() == sequential.runsCSV())
        #expect(lines.all.first == "study toy (smoke): 4 runs, 0 cached, 4 to run, 3 at a time")
        #expect(lines.all.filter { $0.contains("started") }.count == 4 && lines.all.contains { $0.contains("4/4 finished") }, "\(lines.all)")
        // A failure stops the taking of new runs; the finished ones stay cached.
        let failing = StudyRunner(study: study, cacheRoot: root + "-f", codeVersion: "v1")
        let failCalls = Calls(), good = executor(failCalls)
        #expect(throws: WorkbenchError.self) {
            _ = try failing.run(preset: .smoke, jobs: 2) { run, dir in
                if run.settings["schedule"] == "constant" { throw WorkbenchError.missing(what: "the moon") }
                gauge.lock.lock()
                defer { gauge.lock.unlock() }
                try good(run, dir)
            }
        }
        let cached = failing.study.expand(preset: .smoke, codeVersion: "v1").filter { failing.isFinished($0) }
        #expect(cached.allSatisfy { $0.settings["schedule"] == "cosine" } && cached.count == failCalls.runs.count)
    }

    @Test("A failing run stops the study with its error, and the runs before it stay cached")
    func failure() throws {
        let root = NSTemporaryDirectory() + "study-fail-\(UUID().uuidString)"
        var runner = StudyRunner(study: study, cacheRoot: root, codeVersion: "v1")
        runner.report = { _ in }
        let calls = Calls()
        let good = executor(calls)
        do {
            _ = try runner.run(preset: .smoke) { run, dir in
                if run.settings["schedule"] == "constant" { throw WorkbenchError.missing(what: "the moon") }
                try good(run, dir)
            }
            Issue.record("a failing run did not stop the study")
        } catch {
            #expect("\(error)".contains("run constant seed 0") && "\(error)".contains("the moon"))
        }
        #expect(calls.runs.count == 2)
        _ = try runner.run(preset: .smoke, executor: good)
        #expect(calls.runs.count == 4, "the cosine runs ran again")
        // A run whose metrics.csv is malformed is an error naming the file.
        let broken = StudyRunner(study: study, cacheRoot: root + "-b", codeVersion: "v1")
        #expect(throws: WorkbenchError.self) {
            _ = try broken.run(preset: .smoke) { _, dir in try "epoch,x\n0,abc\n".write(toFile: dir + "/metrics.csv", atomically: true, encoding: .utf8) }
        }
    }

    @Test("A clip older than a source is stale, unless its module was compiled since and no object file changed (an edit to comments only)")
    func buildFreshness() throws {
        let fm = FileManager.default
        let root = NSTemporaryDirectory() + "build-freshness-\(UUID().uuidString)"
        defer { try? fm.removeItem(atPath: root) }
        let bin = root + "/x86_64/release"
        try fm.createDirectory(atPath: bin + "/Objectives.build", withIntermediateDirectories: true)
        try fm.createDirectory(atPath: bin + "/Training.build", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: root + "/release", withDestinationPath: bin)
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        func file(_ path: String, at seconds: Double) throws {
            #expect(fm.createFile(atPath: bin + "/" + path, contents: Data([1])))
            try fm.setAttributes([.modificationDate: t0.addingTimeInterval(seconds)], ofItemAtPath: bin + "/" + path)
        }
        // clip linked at t0 + 100; Objectives compiled again at + 300 with its object unchanged;
        // Training compiled at + 300 and its object rewritten at + 300 (not linked into clip).
        try file("clip", at: 100)
        try file("Objectives.build/Objectives.d", at: 300)
        try file("Objectives.build/SampleState.swift.o", at: 50)
        try file("Training.build/Training.d", at: 300)
        try file("Training.build/Trainer.swift.o", at: 300)
        let sources: [(path: String, date: Date)] = [
            ("Sources/Objectives/Old.swift", t0.addingTimeInterval(90)),  // older than clip
            ("Sources/Objectives/SampleState.swift", t0.addingTimeInterval(200)),  // comment edit, compiled since
            ("Sources/Objectives/Later.swift", t0.addingTimeInterval(400)),  // edited after that compile
            ("Sources/Training/Trainer.swift", t0.addingTimeInterval(200)),  // code changed, clip not linked
            ("Sources/Layers/Attention.swift", t0.addingTimeInterval(200)),  // no build folder: dates alone
            ("studies/Execution.swift", t0.addingTimeInterval(200)),  // not a module's source
        ]
        let stale = BuildFreshness.staleSources(sources, executable: root + "/release/clip", built: t0.addingTimeInterval(100)).map(\.path)
        #expect(stale == ["Sources/Objectives/Later.swift", "Sources/Training/Trainer.swift", "Sources/Layers/Attention.swift", "studies/Execution.swift"])
        // Nothing newer than the executable: nothing stale, whatever the build folder holds.
        #expect(BuildFreshness.staleSources(sources, executable: bin + "/clip", built: t0.addingTimeInterval(1000)).isEmpty)
    }
}
