// CLIPA-v2's fine-tuning mask ablation (V2 Table 2, §A5.4): pre-train at reduced tokens, then
// fine-tune at full resolution with a share of the image patches masked (random, block or grid),
// against fine-tuning unmasked. The regime is CLIPARegime.swift's, on clipa-m (the paper used its
// largest model, H/14; the middle size keeps the study near an hour on 2 cores), pre-trained on 16
// resized tokens (32 px, the inverse-scaling study's "resize 16" run, shared through the cache).
//
// | fine-tuning mask | ours                        | the paper (H/14, IN-1k; unmasked 77.9) |
// | ---------------- | --------------------------- | -------------------------------------- |
// | none             | 64 patches                  | 77.9                                   |
// | random 25/50/75% | 48/32/16 patches            | 78.2 / 77.7 / 76.2                     |
// | block 25/50/75%  | a 6×8, 4×8 or 4×4 rectangle | 78.0 / 77.6 / 74.3                     |
// | grid 75%         | one per 2×2 window          | 76.2 (and 77.9 / 77.6 at 25 / 50%)     |
//
// Grid masking keeps one patch per k×k window, so 75% (k = 2) is its only ratio on an 8×8 grid;
// the paper's 25% and 50% grid cells have no counterpart here.

import Foundation
import Workbench

/// The fine-tuning masks: label, strategy, ratio (percent), setting, and the paper's IN-1k.
let finetuneMasks: [(label: String, strategy: String, ratio: Int, reduction: String?, paper: Double)] = [
    ("none", "none", 0, nil, 77.9),
    ("random 25%", "random", 25, "random:0.25", 78.2), ("random 50%", "random", 50, "random:0.5", 77.7), ("random 75%", "random", 75, "random:0.75", 76.2),
    ("block 25%", "block", 25, "block:0.25", 78.0), ("block 50%", "block", 50, "block:0.5", 77.6), ("block 75%", "block", 75, "block:0.75", 74.3),
    ("grid 75%", "grid", 75, "grid:2", 76.2),
]

let finetuneMaskingSize = "clipa-m"

let finetuneMasking = StudyDefinition(
    study: Study(
        name: "finetune-masking",
        title: "Masking image patches while fine-tuning at full resolution (CLIPA-v2)",
        mirrors: "CLIPA-v2 Table 2 (§A5.4: H/14, fine-tuning masks random/block/grid at 25/50/75%) and §A7 table (d)",
        base: clipaBase.merging(CLIPALevels.resize16.level.settings.values) { _, level in level },
        factors: [
            clipaSizeFactor([finetuneMaskingSize]),
            Factor("finetune mask", finetuneMasks.map { m in Level(m.label, m.reduction.map { ["finetune.imageReduction": .string($0)] } ?? [:]) }),
        ],
        presets: clipaPresets(regime: "Here: clipa-m pre-trained on 16 resized image tokens (32 px) with text 32, then fine-tuned at 64 px with 0, 25, 50 or 75% of its patches masked (random, block; grid at 75% only). The paper: H/14 pre-trained at 84 px with text 8, fine-tuned at 224 px."),
        cacheGroup: clipaCacheGroup),
    figures: { _, _ in
        [
            Figure(
                name: "mask", csv: "masks.csv", title: "Fine-tuning with masked patches: change from unmasked fine-tuning",
                xLabel: "patches masked while fine-tuning (%)", yLabel: "change in eval mean (points; paper: IN-1k points)",
                series: ["random", "block", "grid"].map { Series(title: "\($0)", filterColumn: "series", filterValue: $0, x: "ratio", y: "change_points", error: "change_sd_points") }
                    + ["random", "block", "grid"].map { Series(title: "\($0) (paper)", filterColumn: "series", filterValue: "\($0) (paper)", x: "ratio", y: "change_points").drawn("linespoints dt 2") },
                extra: ["set xtics (0, 25, 50, 75)", "set xrange [-5:80]", "set key bottom left", "set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 3"]),
        ]
    },
    table: ResultsTable(caption: "Final held-out metrics by fine-tuning mask (clipa-m, pre-trained on 16 resized tokens)", columns: clipaColumns),
    claims: [
        Claim(
            "A 25% random mask while fine-tuning costs (almost) nothing", source: "CLIPA-v2 Table 2 (random 25%: 78.2 against 77.9 unmasked), §A3",
            parts: [.costsAtMost(Findings.margin, "clipa-m / random 25%", against: "clipa-m / none", paper: "+0.3 IN-1k points (the difference alone)")]),
        Claim(
            "Random masking beats block masking at 75%", source: "CLIPA-v2 Table 2 (76.2 against 74.3)",
            parts: [.difference("clipa-m / random 75%", minus: "clipa-m / block 75%", paper: "+1.9 IN-1k points")]),
        Claim(
            "Masking 75% while fine-tuning costs more than masking 25%", source: "CLIPA-v2 Table 2 (random 78.2 → 76.2)",
            parts: [.difference("clipa-m / random 25%", minus: "clipa-m / random 75%", paper: "+2.0 IN-1k points")]),
    ],
    derive: { try deriveFinetuneMasks(in: $0) })

/// masks.csv and masks.md: per mask, the seed-paired change of the final eval mean from unmasked
/// fine-tuning (points), the fine-tuning's compute per sample, and the paper's change beside.
func deriveFinetuneMasks(in directory: String) throws -> [String] {
    let path = directory + "/runs.csv"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
    let value = try Findings.finalValues(runsCSV: text, path: path, metric: "eval_mean")
    let perSample = try Findings.finalValues(runsCSV: text, path: path, metric: "gmacs_per_sample")
    guard let base = value["\(finetuneMaskingSize) / none"] else { throw WorkbenchError.malformed(what: path, reason: "no run fine-tuned without a mask") }
    var rows: [[Cell]] = []
    var md = "**Change of the final eval mean from unmasked fine-tuning (points, seed-paired, mean ± sd), the paper's IN-1k change beside**\n\n"
    md += "| mask | strategy | masked | eval mean | change | paper's change | fine-tuning GMACs per sample |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    for m in finetuneMasks {
        guard let x = value["\(finetuneMaskingSize) / \(m.label)"] else { continue }
        let seeds = Set(x.keys).intersection(base.keys).sorted()
        let change = Summary(seeds.map { 100 * (x[$0]! - base[$0]!) })
        let v = Summary(Array(x.values))
        let g = Summary(Array((perSample["\(finetuneMaskingSize) / \(m.label)"] ?? [:]).values))
        let paper = m.paper - 77.9
        for series in m.strategy == "none" ? ["random", "block", "grid"] : [m.strategy] {
            rows.append([.text(series), .number(Double(m.ratio)), .number(change.mean), .number(change.standardDeviation), .number(v.mean), .number(g.mean)])
            rows.append([.text("\(series) (paper)"), .number(Double(m.ratio)), .number(paper), .number(.nan), .number(.nan), .number(.nan)])
        }
        md += "| \(m.label) | \(m.strategy) | \(m.ratio)% | " + String(format: "%.3f ± %.3f", v.mean, v.standardDeviation) + " | "
            + (m.ratio == 0 ? "–" : String(format: "%+.2f ± %.2f", change.mean, change.standardDeviation)) + " | " + String(format: "%+.1f", paper)
            + " | " + String(format: "%.4f", g.mean) + " |\n"
    }
    guard !rows.isEmpty else { throw WorkbenchError.malformed(what: path, reason: "no fine-tuning mask level with a run") }
    rows.sort { a, b in
        guard case .text(let sa) = a[0], case .text(let sb) = b[0], case .number(let ra) = a[1], case .number(let rb) = b[1] else { return false }
        return sa != sb ? sa < sb : ra < rb
    }
    let csv = CSV.render(columns: ["series", "ratio", "change_points", "change_sd_points", "eval_mean", "gmacs_per_sample"], rows: rows)
    return [try write(csv, "masks.csv", in: directory), try write(md, "masks.md", in: directory)]
}
