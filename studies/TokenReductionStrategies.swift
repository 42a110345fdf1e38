// CLIPA's token-reduction strategies at matched token counts (§A3, §A4): the four image strategies
// at 16 of 64 patches (25%: resize to 32 px, 75% random masking, one patch per 2×2 grid window,
// one 4×4 block) and the four text strategies at a context of 8 (6 content slots: truncation,
// random with the order kept, one random block, syntax masking), on the smallest and largest
// models of the ladder. The regime is CLIPARegime.swift's; the full, resize, random and syntax
// runs are the inverse-scaling study's, shared through the cache.
//
// The paper's rankings, fixed beside ours: image at 75% on L/16 resize 68.9 > block 68.5 > random
// 67.6 > grid 67.3 (§A3, secondary source, UNSURE); text at the shortest lengths syntax best (B/16
// at length 4: syntax ≈ −3.0 points, the others −4 to −5; §A4, UNSURE).

import Foundation
import Workbench

let imageStrategyLevels = [CLIPALevels.resize16, CLIPALevels.random16, CLIPALevels.grid16, CLIPALevels.block16]
let textStrategyLevels = ["truncate", "random", "block", "syntax"].map(CLIPALevels.text8)
let strategySizes = ["clipa-s", "clipa-l"]

/// The paper's values beside each strategy: L/16 zero-shot at 75% fewer image tokens, and the
/// drops of B/16 at text length 4.
let strategyPaper: [String: String] = [
    "resize 16": "68.9 (1st)", "block 16": "68.5 (2nd)", "random 16": "67.6 (3rd)", "grid 16": "67.3 (4th)",
    "text 8 syntax": "≈ −3.0 (1st)", "text 8 truncate": "−4 to −5", "text 8 random": "−4 to −5", "text 8 block": "−4 to −5",
]

let tokenReductionStrategies = StudyDefinition(
    study: Study(
        name: "token-reduction-strategies",
        title: "Image and text token-reduction strategies at matched token counts",
        mirrors: "CLIPA §A3 (image strategies at 75% reduction), §A4 (text strategies at the shortest lengths), §A7 tables (a)–(b)",
        base: clipaBase,
        factors: [clipaSizeFactor(strategySizes), Factor("tokens", ([CLIPALevels.full] + imageStrategyLevels + textStrategyLevels).map(\.level))],
        presets: clipaPresets(regime: "Levels: 16 of 64 image patches by resize (32 px), random masking (75%), grid (one per 2×2) and block (one 4×4 square); text 8 by truncation, random (order kept), block and syntax masking; clipa-s and clipa-l."),
        cacheGroup: clipaCacheGroup),
    figures: { _, _ in
        [
            Figure(
                name: "image", csv: "strategies.csv", title: "Image strategies at 16 of 64 patches: drop from full tokens",
                xLabel: "strategy (the paper's order on L/16: resize > block > random > grid)", yLabel: "drop from full tokens (points)",
                series: strategySizes.map { Series(title: $0, filterColumn: "series", filterValue: "\($0) image", x: "index", y: "drop_points", error: "drop_sd_points") },
                extra: ["set xtics (\"resize\" 1, \"block\" 2, \"random\" 3, \"grid\" 4)", "set xrange [0.5:4.5]", "set key bottom left"]),
            Figure(
                name: "text", csv: "strategies.csv", title: "Text strategies at a context of 8: drop from full length",
                xLabel: "strategy (the paper: syntax best at the shortest lengths)", yLabel: "drop from full length (points)",
                series: strategySizes.map { Series(title: $0, filterColumn: "series", filterValue: "\($0) text", x: "index", y: "drop_points", error: "drop_sd_points") },
                extra: ["set xtics (\"syntax\" 1, \"truncate\" 2, \"random\" 3, \"block\" 4)", "set xrange [0.5:4.5]", "set key bottom left"]),
        ]
    },
    table: ResultsTable(caption: "Final held-out metrics by model size and token-reduction strategy (after fine-tuning at full tokens)", columns: clipaColumns),
    claims: [
        Claim(
            "Resize is the best image strategy at 25% of the tokens", source: "CLIPA §A1, §A3 (L/16 at 75%: resize 68.9, block 68.5, random 67.6, grid 67.3)",
            parts: [
                .difference("clipa-l / resize 16", minus: "clipa-l / block 16", paper: "+0.4 IN-1k points"),
                .difference("clipa-l / resize 16", minus: "clipa-l / random 16", paper: "+1.3 IN-1k points"),
                .difference("clipa-l / resize 16", minus: "clipa-l / grid 16", paper: "+1.6 IN-1k points"),
            ]),
        Claim(
            "Syntax masking is the best text strategy at the shortest length", source: "CLIPA §A1, §A4 (B/16 at length 4: syntax ≈ −3.0, others −4 to −5)",
            parts: ["truncate", "random", "block"].map { .difference("clipa-l / text 8 syntax", minus: "clipa-l / text 8 \($0)", paper: "+1 to +2 IN-1k points (B/16, length 4)") }),
        Claim(
            "Inverse scaling appears under every image strategy", source: "CLIPA §A3 (secondary source)",
            parts: imageStrategyLevels.map { smallerDrop("clipa-l", than: "clipa-s", at: $0.label) }),
    ],
    derive: { directory in
        try deriveCLIPATokens(in: directory, sizes: strategySizes, levels: [CLIPALevels.full] + imageStrategyLevels + textStrategyLevels)
            + (try deriveStrategyRanking(in: directory))
    })

/// strategies.csv (per size and kind, each strategy's drop at its index on the figures' axis) and
/// strategies.md (each size's ranking by final eval mean beside the paper's), from tokens.csv.
func deriveStrategyRanking(in directory: String) throws -> [String] {
    let path = directory + "/tokens.csv"
    let rows = try readTable(path)
    var byKey: [String: [String: String]] = [:]
    for r in rows { byKey["\(r["size"] ?? "") / \(r["level"] ?? "")"] = r }
    let axes: [(kind: String, labels: [String])] = [
        ("image", ["resize 16", "block 16", "random 16", "grid 16"]), ("text", ["text 8 syntax", "text 8 truncate", "text 8 random", "text 8 block"]),
    ]
    var csv: [[Cell]] = []
    var md = "**Strategies ranked by final eval mean (mean ± sd over seeds; drop from full tokens in points), the paper's value beside**\n\n"
    for (kind, labels) in axes {
        md += "| \(kind) strategy | " + strategySizes.map { "\($0) eval mean | \($0) drop | \($0) rank" }.joined(separator: " | ") + " | paper |\n"
        md += "| --- |" + String(repeating: " --- | --- | --- |", count: strategySizes.count) + " --- |\n"
        var cells: [String: [String]] = [:]
        for size in strategySizes {
            let present = labels.compactMap { l in byKey["\(size) / \(l)"].map { (l, $0) } }
            let ranked = try present.map { ($0.0, try number($0.1, "eval_mean", in: path)) }.sorted { $0.1 > $1.1 }.map(\.0)
            for (i, l) in labels.enumerated() {
                guard let r = byKey["\(size) / \(l)"] else {
                    cells[l, default: []] += ["–", "–", "–"]
                    continue
                }
                let mean = try number(r, "eval_mean", in: path), sd = try number(r, "eval_mean_sd", in: path)
                let drop = try number(r, "drop_points", in: path), dropSD = try number(r, "drop_sd_points", in: path)
                csv.append([.text("\(size) \(kind)"), .text(l), .number(Double(i + 1)), .number(mean), .number(sd), .number(drop), .number(dropSD)])
                cells[l, default: []] += [
                    String(format: "%.3f ± %.3f", mean, sd), String(format: "%+.2f ± %.2f", drop, dropSD), "\((ranked.firstIndex(of: l) ?? -1) + 1)",
                ]
            }
        }
        for l in labels { md += "| \(l) | " + (cells[l] ?? []).joined(separator: " | ") + " | \(strategyPaper[l] ?? "–") |\n" }
        md += "\n"
    }
    guard !csv.isEmpty else { throw WorkbenchError.malformed(what: path, reason: "no strategy level with a run") }
    let columns = ["series", "level", "index", "eval_mean", "eval_mean_sd", "drop_points", "drop_sd_points"]
    return [try write(CSV.render(columns: columns, rows: csv), "strategies.csv", in: directory), try write(md, "strategies.md", in: directory)]
}
