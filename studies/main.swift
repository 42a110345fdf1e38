// `swift run study NAME`: runs a study (each run cached by its settings and the code version),
// writes figures/<study>/runs.csv and summary.csv, draws the figures and writes the table.
// `study list` names the studies; `--render-only` redraws from the existing CSV.

import ArgumentParser
import Compute
import Foundation
import Training
import Workbench

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Run a study and draw its figures and tables.",
        discussion: "Examples:\n  swift run -c release study list\n  swift run -c release study temperature-ablation --preset smoke")

    @Argument(help: "A study's name, `list`, `nightly` (rerun every study with goldens and judge drift) or `findings` (one table of every study's paper-preset verdicts, into <figures>/findings.md).")
    var name: String
    @Option(help: "smoke (seconds), quick (minutes; the default) or paper (the paper's regime scaled by its ratios, ≥ 3 seeds; about an hour).") var preset = "quick"
    @Option(help: "Seeds per variant (default: the preset's).") var seeds: Int?
    @Option(help: "Ranks per run where the study does not set them (> 1 runs clip train under mpirun).") var ranks = 1
    @Option(help: "Threads per run (per rank with --ranks; default: the cores divided among the ranks and jobs).") var threads: Int?
    @Option(help: "Runs at once, each a clip process of its own (default 1: one run at a time, in this process).") var jobs = 1
    @Option(help: "Precision of every run's matrix products: fp32, bf16 (needs AVX-512 BF16 or AMX) or bf16-emulated (bf16's rounding at fp32 speed). Other than fp32 it is part of each run's settings, and the default output gains a -PRECISION suffix.")
    var precision = "fp32"
    @Option(help: "Output directory (default figures/<study>, or figures/<study>/paper for the paper preset).") var out: String?
    @Option(help: "Where run directories are cached.") var cache = "runs/studies"
    @Flag(help: "Redraw figures and tables from the existing CSV; run nothing.") var renderOnly = false
    @Flag(help: "Print each variant's resolved training configuration (data, epochs, batch, steps, warm-up, rates, objective) and the runs planned; run nothing.")
    var plan = false
    @Flag(help: "Also write the preset's goldens (final-epoch mean and sd over the seeds) into <figures>/<study>/golden.csv for the nightly check.")
    var writeGoldens = false
    @Option(help: "resilience: the seed of the disturbance points.") var resilienceSeed = 1
    @Option(help: "The figures root: where goldens are written and `nightly` reads <study>/golden.csv and writes nightly.md.") var figures = "figures"

    func validate() throws {
        guard ["list", "nightly", "findings", "resilience"].contains(name) || registry.contains(where: { $0.study.name == name }) else {
            throw ValidationError("unknown study '\(name)'; known: \(registry.map(\.study.name).joined(separator: ", "))")
        }
        guard StudyPreset(rawValue: preset) != nil else { throw ValidationError("--preset: expected smoke, quick or paper, got '\(preset)'") }
        if let s = seeds, s < 1 { throw ValidationError("--seeds: must be ≥ 1, got \(s)") }
        guard (1...1024).contains(ranks) else { throw ValidationError("--ranks: must be in 1...1024, got \(ranks)") }
        guard (1...256).contains(jobs) else { throw ValidationError("--jobs: must be in 1...256, got \(jobs)") }
        if let t = threads, !(1...256).contains(t) { throw ValidationError("--threads: must be in 1...256, got \(t)") }
        guard let p = MatmulPrecision(rawValue: precision) else {
            throw ValidationError("--precision: expected \(MatmulPrecision.allCases.map(\.rawValue).joined(separator: ", ")), got '\(precision)'")
        }
        if let reason = p.unsupportedReason() { throw ValidationError("--precision bf16: " + reason) }
        if p != .fp32 && ["list", "nightly", "findings", "resilience"].contains(name) { throw ValidationError("--precision applies to a study's runs, not to \(name)") }
        if writeGoldens && renderOnly {
            throw ValidationError("--write-goldens with --render-only: goldens come from runs of the given --preset; drop --render-only")
        }
    }

    func run() throws {
        // SIGTERM / SIGINT: the run under way checkpoints at its next step and the study stops
        // (status 75); the same command started again reuses finished runs and resumes that one.
        Preemption.install()
        do { try runStudy() } catch let stopped as RunStopped {
            FileHandle.standardError.write(Data("\(stopped.message)\nthe study stopped on request; finished runs stay cached: run the same command again to continue\n".utf8))
            throw ExitCode(Preemption.exitStatus)
        }
    }

    func runStudy() throws {
        _ = clipExecutable  // found now, before a rebuild could replace either executable
        if name == "list" {
            for d in registry {
                print("\(d.study.name): \(d.study.title)\n    mirrors \(d.study.mirrors); \(d.study.variants.count) variants")
            }
            return
        }
        if name == "resilience" {
            // Runs killed and stopped at random steps, resumed, against undisturbed runs.
            let held = try resilience(output: out ?? "\(figures)/resilience", seed: UInt64(resilienceSeed), scratch: cache == "runs/studies" ? "runs/resilience" : cache)
            print(held ? "resilience: every disturbed run ended equal to its undisturbed run" : "resilience: DIFFERENCES (see the report)")
            if !held { throw ExitCode(1) }
            return
        }
        if name == "nightly" {
            let drifted = try nightly(
                preset: StudyPreset(rawValue: preset)!, figuresRoot: figures, cacheRoot: cache == "runs/studies" ? "runs/nightly" : cache,
                threads: threads, jobs: jobs, codeVersion: codeVersion())
            if drifted {
                print("nightly: DRIFT (see the tables above)")
                throw ExitCode(1)
            }
            print("nightly: no drift")
            return
        }
        if name == "findings" {
            var files: [(path: String, text: String)] = []
            var pending = ""
            for d in registry where !d.claims.isEmpty {
                let path = "\(figures)/\(d.study.name)/paper/findings.csv"
                if let text = try? String(contentsOfFile: path, encoding: .utf8) {
                    files.append((path, text))
                } else {
                    for c in d.claims { pending += "| \(d.study.name) | \(c.statement) | paper preset not yet run | – |\n" }
                }
            }
            let table = try Findings.overview(csvFiles: files) + pending
            try write("**Every finding of the paper presets** (from \(files.map(\.path).joined(separator: ", ")))\n\n" + table, "findings.md", in: figures)
            print(table)
            return
        }
        var d = registry.first { $0.study.name == name }!
        if precision != MatmulPrecision.fp32.rawValue { d.study.overrides = Settings(["precision": .string(precision)]) }
        if plan {
            try printPlan(d.study, preset: StudyPreset(rawValue: preset)!)
            return
        }
        let output = StudyOutput(directory: out ?? defaultOutput(study: name, preset: StudyPreset(rawValue: preset)!))
        var kept: [String] = []  // the files written from the runs (none with --render-only)
        if !renderOnly {
            var runner = StudyRunner(study: d.study, cacheRoot: cache, codeVersion: codeVersion())
            runner.report = { line in
                print(line)
                fflush(nil)  // a progress line reaches a log file when it happens
            }
            runner.provenance = ["commit": git(["rev-parse", "HEAD"]) ?? "unknown"]
            let (runJobs, note) = d.jobs(requested: jobs)
            if let note { print(note) }
            let executor = studyExecutor(defaultRanks: ranks, threads: threads, jobs: runJobs)
            let plan = d.study.expand(preset: StudyPreset(rawValue: preset)!, seeds: seeds, codeVersion: runner.codeVersion)
            try d.prepare?(StudyPreset(rawValue: preset)!)
            let results = try runner.run(preset: StudyPreset(rawValue: preset)!, seeds: seeds, jobs: runJobs, executor: executor)
            try output.write(results, variants: d.study.variants)
            let runs = plan.map { (run: $0, directory: runner.directory(of: $0)) }
            kept = ["runs.csv", "summary.csv"] + (try writeProvenance(runs, output: output.directory)) + (try d.collect?(runs, output.directory) ?? [])
        }
        let derived = try d.derive?(output.directory) ?? []
        var files = derived + (try output.render(figures: d.figures(d.study.variants, StudyPreset(rawValue: preset)!), table: d.table))
        if !d.claims.isEmpty {
            let path = output.directory + "/runs.csv"
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
            let findings = try Findings.evaluate(d.claims, runsCSV: text, path: path)
            let scale = d.study.presets[StudyPreset(rawValue: preset)!]!
            files.append(try write(Findings.csv(findings, study: name), "findings.csv", in: output.directory))
            files.append(try write(Findings.markdown(findings, study: name, preset: preset, regime: scale.regime), "findings.md", in: output.directory))
        }
        if writeGoldens {
            // Replaces this preset's goldens and keeps the other presets'.
            let path = "\(figures)/\(name)/golden.csv"
            try FileManager.default.createDirectory(atPath: "\(figures)/\(name)", withIntermediateDirectories: true)
            let existing = try (try? String(contentsOfFile: path, encoding: .utf8)).map { try Drift.readGoldens($0, path: path) } ?? []
            let new = goldens(preset: StudyPreset(rawValue: preset)!, from: try output.finalSummaries())
            try writeAtomically(Drift.goldenCSV(Drift.merge(existing, new)), to: path)
            print("wrote \(path) (\(preset) goldens over \(new.first.map { _ in "the study's seeds" } ?? "no variants"))")
        }
        print("wrote \(output.directory)/: " + (kept + files).joined(separator: ", "))
        print(try String(contentsOfFile: output.directory + "/table.md", encoding: .utf8))
        if !d.claims.isEmpty { print(try String(contentsOfFile: output.directory + "/findings.md", encoding: .utf8)) }
    }

    /// One line per variant of the resolved configuration of its seed-0 run, then the run count.
    func printPlan(_ study: Study, preset: StudyPreset) throws {
        let runs = study.expand(preset: preset, seeds: seeds, codeVersion: codeVersion())
        let runner = StudyRunner(study: study, cacheRoot: cache, codeVersion: codeVersion())
        let cached = runs.filter(runner.isFinished).count
        print(
            "study \(study.name) (\(preset.rawValue)): \(runs.count) runs, \(study.variants.count) variants × \(runs.count / study.variants.count) seeds, "
                + "\(cached) already in \(cache)/\(study.cacheGroup)" + (study.cacheGroup == study.name ? "" : " (shared with the other studies of that group)"))
        var samples = 0, realDataRuns = 0
        for run in runs {
            let c = try trainingConfiguration(run.settings, directory: "-")
            // Real data: the pair count is known once the shards are read, so steps are not counted here.
            let count: Int? = if case .shapes(let n, _) = try DataSource(c.data) { n } else { nil }
            if let count { samples += c.epochs * (count / c.batchSize) * c.batchSize } else { realDataRuns += 1 }
            guard run.seed == 0 else { continue }
            let steps = count.map { "\(c.epochs * ($0 / c.batchSize)) steps" } ?? "(steps: the data's pairs ÷ \(c.batchSize) per epoch)"
            print("  \(run.variant): model \(c.model), data \(c.data), \(c.epochs) epochs × batch \(c.batchSize) = \(steps), warm-up \(c.warmupSteps), "
                  + "lr \(c.learningRate), wd \(c.weightDecay), \(c.optimizer.rawValue) β \(c.beta1)/\(c.beta2), \(c.objective.summary)"
                  + (c.objective.loss.usesSampleState ? ", E \(c.objective.gammaDecayEpochs.map(String.init) ?? "epochs/2")" : "")
                  + (clipaArguments(c).isEmpty ? "" : ", stages and mixtures: " + clipaArguments(c).joined(separator: " ")))
        }
        print("  \(samples) training samples in all" + (realDataRuns > 0 ? ", plus \(realDataRuns) runs on real data (counted when their data is read)" : ""))
    }

    /// <figures>/<study> for the smoke and quick presets, <figures>/<study>/paper for the paper preset.
    func defaultOutput(study: String, preset: StudyPreset) -> String {
        let suffix = precision == MatmulPrecision.fp32.rawValue ? "" : "-\(precision)"
        return preset == .paper ? "\(figures)/\(study)/paper\(suffix)" : "\(figures)/\(study)\(suffix == "" ? "" : "/\(preset.rawValue)\(suffix)")"
    }

    /// The code version runs are cached under: $CLIPLAB_CODE_VERSION, else git's tree ids of the
    /// code a run's results depend on (`trainingCodePaths`: Sources/ but for the figure and table
    /// code of Workbench and the benchmarks, studies/Execution.swift, which maps settings onto the
    /// trainer, and Package.swift, whose flags the numerics depend on), with "-dirty-<hash>" when
    /// those paths have uncommitted changes (the hash of the diff and of untracked files' names, so
    /// two different sets of edits never share a cache entry); "unversioned" outside git. So commits
    /// that touch only docs, figures, tables, findings or a study's declaration keep the cache (a
    /// declaration's settings are in each run's id already).
    func codeVersion() -> String {
        if let v = ProcessInfo.processInfo.environment["CLIPLAB_CODE_VERSION"], !v.isEmpty { return v }
        guard let paths = trainingCodePaths(), let trees = git(["rev-parse"] + paths.map { "HEAD:" + $0 }) else { return "unversioned" }
        let pathspecs = paths.map { ":/" + $0 }
        let status = git(["status", "--porcelain", "--"] + pathspecs) ?? "unknown"
        let version = trees.split(separator: "\n").joined(separator: "+")
        guard !status.isEmpty else { return version }
        let diff = (git(["diff", "HEAD", "--"] + pathspecs) ?? "") + "\n" + status
        return version + "-dirty-" + Settings().runID(codeVersion: diff)
    }

    /// The paths of the code runs depend on, relative to the repository's root: each committed
    /// folder of Sources/ but Workbench and Benchmarks, studies/Execution.swift and Package.swift;
    /// nil outside git or when Sources/ lists nothing.
    func trainingCodePaths() -> [String]? {
        guard let listing = git(["ls-tree", "--full-tree", "--name-only", "HEAD", "Sources/"]) else { return nil }
        let folders = listing.split(separator: "\n").map(String.init).filter { !["Sources/Workbench", "Sources/Benchmarks"].contains($0) }
        guard !folders.isEmpty else { return nil }
        return folders + ["studies/Execution.swift", "Package.swift"]
    }

    func git(_ arguments: [String]) -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/git")
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        p.waitUntilExit()
        return p.terminationStatus == 0 ? text : nil
    }
}

// As in clip: a write past the file-size limit fails with EFBIG ("File too large") and an error
// naming the file, instead of SIGXFSZ ending the process with a temporary file left behind.
signal(SIGXFSZ, SIG_IGN)
StudyCommand.main()
