// A study no paper has: when do per-sample estimators pay off? At a fixed budget of samples seen,
// FastCLIP-v3 against OpenCLIP (RGCL-g with u against the mini-batch loss) and FastCLIP-v1
// against SogCLR (cosine against constant γ for the same u) as the data shrinks and the epochs per
// sample grow (2 … 32). Each sample's u_i is refreshed once per epoch (FastCLIP §3.1), so at 2
// epochs u is at most one visit old and γ barely decays; at 32 it has been averaged over many
// visits. At a fixed budget B·steps and batch, the batch/data ratio grows with the epochs (ratio =
// batch · epochs / budget), so one axis carries both.

import Foundation
import Workbench

let fccoEpochs = [2, 4, 8, 16, 32]
let fccoPairs = [("FastCLIP-v3", "OpenCLIP"), ("FastCLIP-v1", "SogCLR")]

let fccoRegime = StudyDefinition(
    study: Study(
        name: "fcco-regime",
        title: "Per-sample estimators against epochs per sample at a fixed sample budget",
        mirrors: "no paper (ClipLab's question: FastCLIP §3.1's u_i is refreshed once per epoch)",
        base: [
            "model": "micro", "tokenizer": "trained", "vocabSize": 1024, "batchSize": 128, "lr": 1e-3, "wd": 0.1, "warmupFraction": 0.1,
            "objective.gammaMin": 0.2, "evalEvery": 0,
        ],
        factors: [
            Factor("algorithm", ["OpenCLIP", "FastCLIP-v3", "SogCLR", "FastCLIP-v1"].map { Level($0, ["objective.preset": .string($0.lowercased())]) }),
            Factor("epochs", fccoEpochs.map { Level("E=\($0)", ["epochs": .int($0)]) }),
        ],
        presets: [
            .smoke: smokePreset(["sampleBudget": 4096, "batchSize": 64]),
            // Minutes: micro, 32,768 samples a run (E=2: 16,384 pairs; E=32: 1,024), one seed.
            .quick: PresetScale(seeds: 1, ["sampleBudget": 32_768]),
            // 65,536 samples a run at batch 128 (512 steps; E=2: 32,768 pairs, E=32: 2,048), warm-up 10%, γ over
            // half the epochs to 0.2 and v3's lr_τ scaled by steps as in PaperRegime.swift; 3 seeds.
            .paper: PresetScale(
                seeds: 3, ["sampleBudget": 65_536, "objective.lrTauRGCLG": .double(scaledRGCLGLearningRateTau(steps: 65_536 / 128))],
                regime: """
                    **Regime**: micro, 65,536 samples a run at batch 128 (512 steps), epochs per sample 2, 4, 8, 16, 32 on \
                    32,768 … 2,048 pairs (batch/data 1/256 … 1/16); warm-up 10%, lr 1e-3, wd 0.1, γ cosine over half the \
                    epochs to 0.2 (SogCLR: constant 0.2), v3 ρ 6.5 and lr_τ 2e-4 × 98.4k / 512 (lr_τ × steps as the paper's \
                    Medium run); 3 seeds. No paper ran this; the claims are ClipLab's hypotheses, fixed before the runs.
                    """),
        ]),
    figures: { _, _ in
        [
            Figure(
                name: "gap", csv: "gaps.csv", title: "Final eval mean gained by the per-sample estimator at a fixed sample budget",
                xLabel: "epochs per sample (batch/data grows with them)", yLabel: "gap (points of eval mean)",
                series: fccoPairs.map { a, b in Series(title: "\(a) − \(b)", filterColumn: "pair", filterValue: "\(a) − \(b)", x: "epochs", y: "gap_points", error: "gap_sd_points") },
                extra: ["set logscale x 2", "set xtics (2, 4, 8, 16, 32)", "set xrange [1.6:40]", "set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2"]),
        ]
    },
    table: ResultsTable(caption: "Final held-out metrics by algorithm and epochs per sample at a fixed sample budget", columns: standardColumns),
    claims: fccoPairs.map { a, b in
        Claim(
            "\(a)'s gain over \(b) grows with the epochs per sample", source: "ClipLab hypothesis (no paper): u_i is refreshed once per epoch",
            parts: [.differenceOfDifferences("\(a) / E=32", "\(b) / E=32", "\(a) / E=2", "\(b) / E=2", label: "gap at E=32 − gap at E=2")])
    },
    derive: { try deriveFCCOGaps(in: $0) })

/// gaps.csv and gaps.md: per pair and epochs, the paired gap (mean and sd over seeds, in points)
/// and the batch/data ratio, from runs.csv's last epochs.
func deriveFCCOGaps(in directory: String) throws -> [String] {
    let path = directory + "/runs.csv"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
    // Each run's last epoch, as the findings read it.
    let value = try Findings.finalValues(runsCSV: text, path: path, metric: "eval_mean")
    let steps = try Findings.finalValues(runsCSV: text, path: path, metric: "step")
    var rows: [[Cell]] = []
    var md = "**Gain of the per-sample estimator at a fixed sample budget (points of final eval mean, mean ± sd of the seed-paired gap)**\n\n"
    md += "| epochs per sample | batch/data | " + fccoPairs.map { "\($0.0) − \($0.1)" }.joined(separator: " | ") + " |\n"
    md += "| --- | --- |" + String(repeating: " --- |", count: fccoPairs.count) + "\n"
    for e in fccoEpochs {
        var cells: [String] = []
        var ratio = Double.nan
        for (a, b) in fccoPairs {
            guard let x = value["\(a) / E=\(e)"], let y = value["\(b) / E=\(e)"] else { cells.append("–"); continue }
            let seeds = Set(x.keys).intersection(y.keys).sorted()
            let gaps = seeds.map { 100 * (x[$0]! - y[$0]!) }
            let s = Summary(gaps)
            // At the last epoch samples = steps × batch and data = samples / epochs (whole batches), so
            // batch/data = epochs · samples / (steps · samples) = epochs / steps.
            if let any = seeds.first, let n = steps["\(a) / E=\(e)"]?[any] { ratio = Double(e) / n }
            rows.append([.text("\(a) − \(b)"), .number(Double(e)), .number(ratio), .number(s.mean), .number(s.standardDeviation), .number(Double(s.count))])
            cells.append(String(format: "%+.2f ± %.2f", s.mean, s.standardDeviation))
        }
        md += "| \(e) | " + (ratio.isFinite ? String(format: "1/%.0f", 1 / ratio) : "–") + " | " + cells.joined(separator: " | ") + " |\n"
    }
    guard !rows.isEmpty else { throw WorkbenchError.malformed(what: path, reason: "no pair of variants with runs at any epochs level") }
    let csv = CSV.render(columns: ["pair", "epochs", "batch_over_data", "gap_points", "gap_sd_points", "seeds"], rows: rows)
    return [try write(csv, "gaps.csv", in: directory), try write(md, "gaps.md", in: directory)]
}
