// `study` run as a user runs it: a smoke study end to end, its cache, --render-only and errors.

import Data
import Foundation
import Testing
import Workbench

/// Runs the `study` executable built next to this test bundle.
func runStudy(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) { try runExecutable("study", arguments) }

/// A CSV file's rows keyed by column, read with the workbench's parser.
func csvRows(_ path: String) throws -> [[String: String]] {
    let t = try CSV.parse(try String(contentsOfFile: path, encoding: .utf8))
    return t.rows.map { Dictionary(uniqueKeysWithValues: zip(t.columns, $0)) }
}

/// A run directory's metrics.csv rows without the wall-clock columns (`…seconds`).
func metricsWithoutTime(_ directory: String) throws -> [[String: String]] {
    try csvRows(directory + "/metrics.csv").map { $0.filter { !$0.key.hasSuffix("seconds") } }
}

@Suite("study command line", .serialized)
struct StudyTests {
    @Test("A smoke study end to end: CSV, figures that decode, a table with a row per variant; then cache hits and --render-only")
    func smoke() throws {
        let base = NSTemporaryDirectory() + "study-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let args = ["temperature-ablation", "--preset", "smoke", "--out", base + "/out", "--cache", base + "/cache", "--threads", "1"]
        let first = try runStudy(args)
        #expect(first.status == 0, "stderr: \(first.err)")
        #expect(first.out.contains("4 runs, 0 cached, 4 to run"), "\(first.out)")
        for f in ["runs.csv", "summary.csv", "eval-mean.gp", "eval-mean.svg", "eval-mean.pdf", "temperature.png", "table.md", "table.tex", "findings.csv", "findings.md"] {
            #expect(FileManager.default.fileExists(atPath: base + "/out/" + f), "missing \(f)")
        }
        let png = try ImageDecoder.decode(path: base + "/out/eval-mean.png")
        #expect(png.width == 960 && png.height == 600)
        let table = try String(contentsOfFile: base + "/out/table.md", encoding: .utf8)
        for v in ["v0", "v1", "v2", "v3"] { #expect(table.contains("| FastCLIP-\(v) | 0."), "\(table)") }
        let runs = try String(contentsOfFile: base + "/out/runs.csv", encoding: .utf8).split(separator: "\n")
        #expect(runs.count == 1 + 4 * 3, "header + 4 runs × (epoch 0, 1, 2)")
        // One seed: every part of the claim is inconclusive, with no interval.
        let findings = try String(contentsOfFile: base + "/out/findings.md", encoding: .utf8)
        #expect(findings.contains("## 1. FastCLIP-v3 is the best temperature rule: **inconclusive**") && findings.contains("FastCLIP-v3 − FastCLIP-v2 (eval_mean, 1 seeds)"), "\(findings)")
        let summary = try String(contentsOfFile: base + "/out/summary.csv", encoding: .utf8)
        // Rerunning reads every run from the cache and writes the same CSV.
        let second = try runStudy(args)
        #expect(second.status == 0 && second.out.contains("4 runs, 4 cached, 0 to run"), "\(second.out)")
        #expect(try String(contentsOfFile: base + "/out/summary.csv", encoding: .utf8) == summary)
        // --render-only redraws from the CSV.
        try FileManager.default.removeItem(atPath: base + "/out/eval-mean.png")
        let render = try runStudy(args + ["--render-only"])
        #expect(render.status == 0 && !render.out.contains("to run"), "\(render.out) \(render.err)")
        #expect(FileManager.default.fileExists(atPath: base + "/out/eval-mean.png"))
    }

    @Test("--jobs 2 runs two runs at once as clip processes, with the same numbers as one run at a time in this process")
    func concurrentJobs() throws {
        let base = NSTemporaryDirectory() + "study-jobs-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = ["temperature-ablation", "--preset", "smoke", "--threads", "1"]
        let one = try runStudy(common + ["--out", base + "/one", "--cache", base + "/cache-one"])
        #expect(one.status == 0, "stderr: \(one.err)")
        let two = try runStudy(common + ["--jobs", "2", "--out", base + "/two", "--cache", base + "/cache-two"])
        #expect(two.status == 0, "stderr: \(two.err)")
        #expect(two.out.contains("4 to run, 2 at a time") && two.out.contains("4/4 finished"), "\(two.out)")
        #expect(two.out.contains("run 2/4 started") && !two.out.contains("epoch 1/2 step"), "clip's own progress goes to the run directory: \(two.out)")
        // Every run's metrics, but for wall-clock seconds, equal bit for bit.
        let a = try csvRows(base + "/one/runs.csv"), b = try csvRows(base + "/two/runs.csv")
        #expect(a.count == 12 && a.count == b.count)
        for (x, y) in zip(a, b) {
            for (k, v) in x where !k.hasSuffix("seconds") { #expect(y[k] == v, "\(k): \(v) vs \(y[k] ?? "missing")") }
        }
        // Each concurrent run wrote clip's output beside its metrics.
        let dirs = try FileManager.default.contentsOfDirectory(atPath: base + "/cache-two/temperature-ablation")
        #expect(dirs.count == 4)
        for d in dirs {
            let out = try String(contentsOfFile: base + "/cache-two/temperature-ablation/\(d)/stdout.txt", encoding: .utf8)
            #expect(out.contains("ClipLab train"), "\(d): \(out)")
        }
    }

    @Test("--jobs 2: a staged run stopped between its stages continues in the fine-tuning stage and ends as the unbroken run did")
    func stagedRunResumesUnderClip() throws {
        let base = NSTemporaryDirectory() + "study-staged-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let common = ["finetune-masking", "--preset", "smoke", "--threads", "1", "--jobs", "2", "--cache", base + "/cache"]
        let first = try runStudy(common + ["--out", base + "/first"])
        #expect(first.status == 0, "stderr: \(first.err)")
        // Stop one run after its pre-training: its fine-tuning stage, combined metrics and done mark go.
        let group = base + "/cache/clipa"
        let dirs = try FileManager.default.contentsOfDirectory(atPath: group).sorted()
        let run = try #require(dirs.first { FileManager.default.fileExists(atPath: "\(group)/\($0)/finetune") })
        let unbroken = try metricsWithoutTime("\(group)/\(run)/finetune")
        for f in ["finetune", "done.json", "metrics.csv"] { try FileManager.default.removeItem(atPath: "\(group)/\(run)/\(f)") }
        let second = try runStudy(common + ["--out", base + "/second"])
        #expect(second.status == 0 && second.out.contains("1 to run"), "\(second.out)\n\(second.err)")
        let log = try String(contentsOfFile: "\(group)/\(run)/stdout.txt", encoding: .utf8)
        #expect(log.contains("stage 1 (pretrain) finished earlier") && log.contains("stage 2 of 2"), "\(log)")
        #expect(try metricsWithoutTime("\(group)/\(run)/finetune") == unbroken)
        // The study's tables read the same numbers as before the stop.
        #expect(try String(contentsOfFile: base + "/second/masks.csv", encoding: .utf8) == String(contentsOfFile: base + "/first/masks.csv", encoding: .utf8))
    }

    @Test("--plan prints the paper presets' resolved regimes: steps, warm-up fractions, per-scale schedules and the scaled lr_τ")
    func plans() throws {
        let ta = try runStudy(["temperature-ablation", "--preset", "paper", "--plan"])
        #expect(ta.status == 0 && ta.out.contains("12 runs, 4 variants × 3 seeds"), "\(ta.out) \(ta.err)")
        #expect(ta.out.contains("FastCLIP-v3: model micro, data shapes:10240, 37 epochs × batch 128 = 2960 steps, warm-up 296") && ta.out.contains("lr_τ 0.00665"), "\(ta.out)")
        #expect(ta.out.contains("FastCLIP-v2: ") && ta.out.contains("lr_τ 0.0133, E 18"), "v2 keeps its per-visit lr_τ: \(ta.out)")
        let fo = try runStudy(["fastclip-vs-openclip", "--preset", "paper", "--plan"])
        #expect(fo.out.contains("OpenCLIP / B=64: model micro, data shapes:5120, 37 epochs × batch 64 = 2960 steps, warm-up 296"), "\(fo.out)")
        #expect(fo.out.contains("FastCLIP-v3 / B=512: model micro, data shapes:5120, 37 epochs × batch 512 = 370 steps, warm-up 37"), "\(fo.out)")
        let il = try runStudy(["inner-lr-schedule", "--preset", "paper", "--plan"])
        #expect(il.out.contains("Medium / SogCLR: model micro, data shapes:3072, 37 epochs × batch 64 = 1776 steps, warm-up 178, lr 0.001"), "\(il.out)")
        #expect(il.out.contains("Large / FastCLIP-v1: model micro, data shapes:10368, 33 epochs × batch 128 = 2673 steps, warm-up 180, lr 0.0004") && il.out.contains("E 16"), "\(il.out)")
        // The quick preset's Large is Medium's schedule on more data.
        let quick = try runStudy(["inner-lr-schedule", "--plan"])
        #expect(quick.out.contains("Large / SogCLR: model tiny, data shapes:6144, 4 epochs × batch 128 = 192 steps, warm-up 20, lr 0.001"), "\(quick.out)")
    }

    @Test("study findings gathers every paper preset's verdicts into one table and names the studies not yet run")
    func findingsOverview() throws {
        let root = NSTemporaryDirectory() + "study-findings-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root + "/optimizers/paper", withIntermediateDirectories: true)
        let csv = """
            study,claim,source,part,metric,seeds,mean,sd,low,high,verdict,paper
            optimizers,AdamW ends above LAMB under FastCLIP-v3,§8.1,adamw − lamb,eval_mean,3,0.02,0.004,0.01,0.03,reproduced,
            optimizers,AdamW ends above LAMB under FastCLIP-v3,§8.1,all,,nan,nan,nan,nan,nan,reproduced,

            """
        try csv.write(toFile: root + "/optimizers/paper/findings.csv", atomically: true, encoding: .utf8)
        let r = try runStudy(["findings", "--figures", root])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("| optimizers | AdamW ends above LAMB under FastCLIP-v3 | adamw − lamb: +0.020 [+0.010, +0.030] | **reproduced** |"), "\(r.out)")
        #expect(r.out.contains("| temperature-ablation | FastCLIP-v3 is the best temperature rule | paper preset not yet run | – |"), "\(r.out)")
        #expect(FileManager.default.fileExists(atPath: root + "/findings.md"))
    }

    @Test("study list names the studies; an unknown study or preset is refused")
    func listAndErrors() throws {
        let list = try runStudy(["list"])
        #expect(list.status == 0 && list.out.contains("temperature-ablation:"), "\(list.out)")
        let unknown = try runStudy(["no-such-study"])
        #expect(unknown.status != 0 && unknown.err.contains("temperature-ablation"), "\(unknown.err)")
        let preset = try runStudy(["temperature-ablation", "--preset", "huge"])
        #expect(preset.status != 0 && preset.err.contains("--preset"), "\(preset.err)")
        let missing = try runStudy(["temperature-ablation", "--render-only", "--out", "/nonexistent/dir"])
        #expect(missing.status != 0 && missing.err.contains("/nonexistent/dir/summary.csv"), "\(missing.err)")
    }

    @Test("Every declared study runs its smoke preset and writes its figures, provenance and a table row per variant",
          arguments: [
            "inner-lr-schedule", "fastclip-vs-openclip", "gradient-reduction", "optimizers", "fcco-regime", "inverse-scaling", "token-reduction-strategies",
            "finetune-masking", "clip-up",
          ])
    func everyStudySmoke(name: String) throws {
        let base = NSTemporaryDirectory() + "study-\(name)-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        // A timing study runs one at a time even when asked for more.
        let jobs = name == "gradient-reduction" ? ["--jobs", "2"] : []
        let r = try runStudy([name, "--preset", "smoke", "--out", base + "/out", "--cache", base + "/cache", "--threads", "1"] + jobs)
        #expect(r.status == 0, "stderr: \(r.err)")
        if name == "gradient-reduction" {
            #expect(r.out.contains("gradient-reduction times its runs: running them one at a time") && !r.out.contains(", 2 at a time"), "\(r.out)")
        }
        let expected = [
            "inner-lr-schedule": 8, "fastclip-vs-openclip": 8, "gradient-reduction": 6, "optimizers": 2, "fcco-regime": 20, "inverse-scaling": 18,
            "token-reduction-strategies": 18, "finetune-masking": 8, "clip-up": 9,
        ][name]!
        let table = try String(contentsOfFile: base + "/out/table.md", encoding: .utf8)
        #expect(table.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| ---") }.count == 1 + expected, "\(table)")
        let figure = [
            "fastclip-vs-openclip": "speedup", "gradient-reduction": "time-breakdown", "fcco-regime": "gap", "inverse-scaling": "drop",
            "token-reduction-strategies": "image", "finetune-masking": "mask", "clip-up": "load",
        ][name] ?? "eval-mean"
        let png = try ImageDecoder.decode(path: base + "/out/\(figure).png")
        #expect(png.width == 960 && png.height == 600)
        // One provenance row per run, naming the host's CPU and the OpenBLAS build.
        let provenance = try String(contentsOfFile: base + "/out/provenance.csv", encoding: .utf8).split(separator: "\n")
        #expect(provenance.count == 1 + expected && provenance.dropFirst().allSatisfy { $0.contains("OpenBLAS") }, "\(provenance)")
        if name == "inner-lr-schedule" { #expect(table.contains("| Medium / FastCLIP-v1 |") && table.contains("24.87 (0.13)")) }
        // Each study states the paper's claims it mirrors, with a verdict per claim.
        let findings = try String(contentsOfFile: base + "/out/findings.md", encoding: .utf8)
        #expect(findings.contains("## 1. ") && findings.contains("(smoke preset)") && findings.contains("Rule (fixed before the runs)"), "\(findings)")
        if name == "fastclip-vs-openclip" {
            let speedup = try String(contentsOfFile: base + "/out/speedup.md", encoding: .utf8)
            #expect(["| 64 (1) |", "| 512 (8) |", "1.74×"].allSatisfy(speedup.contains), "\(speedup)")
            // One row per batch, the gap equal to the final values' difference in points.
            let rows = try csvRows(base + "/out/speedup.csv")
            #expect(rows.map { $0["batch"] } == ["64", "128", "256", "512"])
            for r in rows {
                let o = Double(r["openclip_final"]!)!, f = Double(r["fastclip_final"]!)!, gap = Double(r["gap_points"]!)!
                #expect(o > 0 && f > 0 && abs(gap - 100 * (f - o)) < 1e-9, "\(r)")
            }
        }
        if name == "fcco-regime" {
            // One gap per pair and epochs level, equal to the paired final eval means' difference in points.
            let gaps = try csvRows(base + "/out/gaps.csv"), runs = try csvRows(base + "/out/runs.csv")
            #expect(gaps.count == 10 && Set(gaps.map { $0["epochs"]! }) == ["2", "4", "8", "16", "32"], "\(gaps)")
            func final(_ variant: String) -> Double { Double(runs.last { $0["variant"] == variant }!["eval_mean"]!)! }
            for g in gaps where g["pair"] == "FastCLIP-v3 − OpenCLIP" {
                let e = g["epochs"]!
                #expect(abs(Double(g["gap_points"]!)! - 100 * (final("FastCLIP-v3 / E=\(e)") - final("OpenCLIP / E=\(e)"))) < 1e-9, "\(g)")
                // Smoke: 4,096 samples at batch 64, so batch/data = epochs · 64 / 4,096.
                #expect(abs(Double(g["batch_over_data"]!)! - Double(e)! * 64 / 4096) < 1e-12, "\(g)")
            }
        }
        if ["inverse-scaling", "token-reduction-strategies"].contains(name) {
            // Each size's drop is its level's final eval mean minus its full-token run's, in points.
            let tokens = try csvRows(base + "/out/tokens.csv"), runs = try csvRows(base + "/out/runs.csv")
            #expect(tokens.count == expected, "\(tokens)")
            func final(_ variant: String) -> Double { Double(runs.last { $0["variant"] == variant }!["eval_mean"]!)! }
            for t in tokens {
                let size = t["size"]!, level = t["level"]!
                #expect(abs(Double(t["drop_points"]!)! - 100 * (final("\(size) / \(level)") - final("\(size) / full"))) < 1e-9, "\(t)")
                // Before fine-tuning: the last eval of stage 1, the pre-training stage.
                func pretrained(_ variant: String) -> Double { Double(runs.last { $0["variant"] == variant && $0["stage"] == "1" }!["eval_mean"]!)! }
                #expect(abs(Double(t["pretrained_eval_mean"]!)! - pretrained("\(size) / \(level)")) < 1e-9, "\(t)")
                #expect(abs(Double(t["pretrained_drop_points"]!)! - 100 * (pretrained("\(size) / \(level)") - pretrained("\(size) / full"))) < 1e-9, "\(t)")
                // The compute of a reduced run is below its full run's.
                if level != "full" { #expect(Double(t["compute_gmacs"]!)! < Double(tokens.first { $0["size"] == size && $0["level"] == "full" }!["compute_gmacs"]!)!) }
            }
        }
        if name == "inverse-scaling" {
            // The paper's drops (§A6.1) beside ours: four points per paper model, 0 at full.
            let curves = try csvRows(base + "/out/curves.csv")
            #expect(curves.filter { $0["series"] == "L/16 (paper)" }.map { $0["drop_points"]! } == ["0", "-0.2", "-0.3", "-3"], "\(curves)")
            #expect(curves.filter { $0["series"] == "clipa-s resize" }.count == 4 && curves.filter { $0["series"] == "clipa-s random" }.count == 2)
        }
        if name == "token-reduction-strategies" {
            let ranking = try String(contentsOfFile: base + "/out/strategies.md", encoding: .utf8)
            #expect(["| resize 16 |", "| grid 16 |", "| text 8 syntax |", "68.9 (1st)"].allSatisfy(ranking.contains), "\(ranking)")
            #expect(try csvRows(base + "/out/strategies.csv").count == 16)
        }
        if name == "finetune-masking" {
            // The change from unmasked fine-tuning, in points; the masked fine-tuning costs fewer GMACs per sample.
            let masks = try csvRows(base + "/out/masks.csv"), runs = try csvRows(base + "/out/runs.csv")
            func final(_ variant: String, _ column: String = "eval_mean") -> Double { Double(runs.last { $0["variant"] == variant }![column]!)! }
            let r75 = try #require(masks.first { $0["series"] == "random" && $0["ratio"] == "75" })
            #expect(abs(Double(r75["change_points"]!)! - 100 * (final("clipa-m / random 75%") - final("clipa-m / none"))) < 1e-9, "\(r75)")
            #expect(final("clipa-m / random 75%", "gmacs_per_sample") < final("clipa-m / none", "gmacs_per_sample"))
            #expect(masks.first { $0["series"] == "block (paper)" && $0["ratio"] == "75" }?["change_points"].flatMap(Double.init).map { abs($0 + 3.6) < 1e-9 } == true)
            // The CLIPA studies share a cache group: inverse-scaling's clipa-m / resize 16 run is this study's unmasked one.
            let plan = try runStudy(["inverse-scaling", "--preset", "smoke", "--cache", base + "/cache", "--plan"])
            #expect(plan.status == 0 && plan.out.contains("18 runs, 18 variants × 1 seeds, 1 already in \(base)/cache/clipa"), "\(plan.out)")
        }
        if name == "clip-up" {
            // B6 step 5's table: the upcycled model holds 8 experts in 2 layers, k = 2 active; the
            // loads of each layer sum to k less what capacity dropped (at most 2, each at most the capacity).
            let models = try csvRows(base + "/out/models.csv")
            #expect(models.count == 9 && models.map { $0["model"]! }.first == "dense continued")
            let dense = try #require(models.first { $0["model"] == "dense continued" }), up = try #require(models.first { $0["model"] == "upcycled" })
            #expect(Double(up["parameters"]!)! > 2 * Double(dense["parameters"]!)! && Double(up["active_parameters"]!)! < Double(up["parameters"]!)! / 2)
            #expect(Double(up["gmacs_per_sample"]!)! > Double(dense["gmacs_per_sample"]!)!)
            let loads = try csvRows(base + "/out/loads.csv")
            #expect(loads.count == 16)
            for layer in ["visual.1", "text.1"] {
                let l = loads.filter { $0["layer"] == layer }.map { Double($0["load"]!)! }
                #expect(l.allSatisfy { $0 >= 0 && $0 <= 0.3 } && l.reduce(0, +) <= 2 + 1e-9 && l.reduce(0, +) > 0.5, "\(layer): \(l)")
            }
            let runs = try String(contentsOfFile: base + "/out/runs.csv", encoding: .utf8)
            #expect(runs.split(separator: "\n").first?.contains("moe_aux_loss") == true)
        }
        if name == "gradient-reduction" {
            // Measured ring volumes beside §7.3's: OpenCLIP's feature collectives move about twice FastCLIP's.
            let volumes = try String(contentsOfFile: base + "/out/volumes.md", encoding: .utf8)
            #expect(volumes.contains("| K=4 / OpenCLIP |") && volumes.contains("| K=2 / FastCLIP |"), "\(volumes)")
            var measured: [String: Double] = [:]
            for r in try csvRows(base + "/out/volumes.csv") {
                let m = Double(r["features_measured"]!)!, a = Double(r["features_analytic"]!)!
                measured[r["variant"]!] = m
                // Measured within 5% of §7.3 (the measured all-gathers carry 3b scalars, §7.3 counts 0 or 4b).
                #expect(abs(m - a) <= 0.05 * a, "\(r)")
                #expect(Double(r["allreduce_measured"]!)! >= Double(r["allreduce_analytic"]!)!, "\(r)")
            }
            for k in [2, 4] {
                let ratio = measured["K=\(k) / OpenCLIP"]! / measured["K=\(k) / FastCLIP"]!
                #expect(abs(ratio - 2) < 0.1, "K=\(k): OpenCLIP moves \(ratio)× FastCLIP's feature elements")
            }
            let projection = try String(contentsOfFile: base + "/out/projection.md", encoding: .utf8)
            #expect(projection.contains("| K=8 / FastCLIP | – |") && projection.contains("all_reduce α ="), "\(projection)")
            for f in ["communication.png", "collectives.svg", "projection.pdf", "fit.csv", "collectives.csv"] {
                #expect(FileManager.default.fileExists(atPath: base + "/out/" + f), "missing \(f)")
            }
        }
    }

    @Test("Nightly: goldens written from two seeds hold for a rerun (stopped once and continued); a shifted golden is drift, and the job fails")
    func nightlyDrift() throws {
        let base = NSTemporaryDirectory() + "nightly-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: base) }  // runs leave hundreds of MB
        let figs = base + "/figures/optimizers"
        let write = try runStudy([
            "optimizers", "--preset", "smoke", "--seeds", "2", "--out", base + "/out", "--figures", base + "/figures", "--cache", base + "/cache", "--threads", "1",
            "--write-goldens",
        ])
        #expect(write.status == 0, "\(write.err)")
        let golden = try String(contentsOfFile: figs + "/golden.csv", encoding: .utf8)
        #expect(golden.hasPrefix("preset,variant,metric,mean,sd\nsmoke,adamw,eval_mean,"), "\(golden)")
        let nightlyArgs = ["nightly", "--preset", "smoke", "--figures", base + "/figures", "--cache", base + "/nightly", "--threads", "1"]
        // Stopped (SIGTERM) with one run finished and another half done, the job continues in its
        // folder when started again: the finished run reused, the half-done one resumed.
        let stopped = try StudyResumeTests().interrupt(nightlyArgs, cache: base + "/nightly", study: "optimizers", signal: SIGTERM, log: base + "/nightly-1.log")
        #expect(stopped.terminationStatus == 75, "status \(stopped.terminationStatus)")
        let ok = try runStudy(nightlyArgs)
        #expect(ok.out.contains("nightly: continuing the unfinished job of") && ok.out.contains("resuming from"), "\(ok.out.prefix(2000))")
        #expect(ok.status == 0 && ok.out.contains("nightly: no drift") && ok.out.contains("Bit-identical rerun of adamw, seed 0: yes"), "\(ok.out)\n\(ok.err)")
        #expect(!FileManager.default.fileExists(atPath: base + "/nightly/unfinished-smoke.txt"))
        #expect(FileManager.default.fileExists(atPath: figs + "/nightly.png") && FileManager.default.fileExists(atPath: figs + "/nightly.md"))
        // Shift adamw's eval_mean golden up by 0.2: far outside its band.
        var lines = golden.split(separator: "\n").map(String.init)
        let i = try #require(lines.firstIndex { $0.hasPrefix("smoke,adamw,eval_mean,") })
        let parts = lines[i].split(separator: ",")
        lines[i] = "smoke,adamw,eval_mean,\(Double(parts[3])! + 0.2),\(parts[4])"
        try (lines.joined(separator: "\n") + "\n").write(toFile: figs + "/golden.csv", atomically: true, encoding: .utf8)
        // Goldens of another preset are not judged: a quick nightly finds none and checks nothing.
        let quick = try runStudy(["nightly", "--preset", "quick", "--figures", base + "/figures", "--cache", base + "/nightly-quick", "--threads", "1"])
        #expect(quick.status == 0 && quick.out.contains("has no quick goldens; skipped") && quick.out.contains("nothing checked"), "\(quick.out)")
        // --write-goldens needs runs, not --render-only.
        let refused = try runStudy(["optimizers", "--render-only", "--write-goldens", "--out", base + "/out"])
        #expect(refused.status != 0 && refused.err.contains("--write-goldens"), "\(refused.err)")
        let drift = try runStudy(nightlyArgs)
        #expect(drift.status != 0, "\(drift.out)")
        #expect(drift.out.contains("| adamw | eval_mean |") && drift.out.contains("**DRIFT**") && drift.out.contains("nightly: DRIFT"), "\(drift.out)")
    }
}
