// CLIPA's regime for its three studies (inverse-scaling, token-reduction-strategies,
// finetune-masking): CLIPA-v1's TPU recipe (§A5.1 of ../shared/papers/clipa_clipup.md, the runs
// behind its scaling figures) scaled to the clipa-* ladder on 2 cores by the ratios that govern it,
// fixed before any CLIPA study ran:
//
// | quantity                  | paper (CLIPA-v1, LAION-400M)                 | miniature (paper preset)                     |
// | ------------------------- | -------------------------------------------- | -------------------------------------------- |
// | models                    | S/16, B/16, L/16 (depth and width grow)      | clipa-s, clipa-m, clipa-l (W 64/96/128, L = W/32) |
// | full image tokens         | 224 px / 16 → 196 patches + class            | 64 px / 8 → 64 patches + class               |
// | reduced image tokens      | 160 / 112 / 64 px → 51% / 25% / 8% of them   | 48 / 32 / 16 px → 56% / 25% / 6% (36/16/4)   |
// | text context              | 32, reduced to 16 or 8                       | 32, reduced to 8 (6 content slots)           |
// | pre-training              | 2.56B samples = 6.4 epochs                   | 49,152 samples = 6 epochs of 8,192 pairs     |
// | batch (batch/data)        | 32,768 (1/12,200)                            | 128 (1/64)                                   |
// | steps, warm-up            | 78,125, 1,600 (2.0%), cosine to 0            | 384, 8 (2%), cosine to 0                     |
// | lr, optimizer             | 1.024e-3, AdamW(0.9, 0.95), wd 0.2           | 1e-3, AdamW(0.9, 0.95), wd 0.2               |
// | fine-tuning               | 131M samples (5.1%) at full tokens, lr ×0.1, | 2,560 samples (5.2%: one epoch of the first  |
// |                           | warm-up 800 of 4,000 steps (20%)             | 2,560 pairs, 20 steps) at full tokens, lr ×0.1, warm-up 4 (20%) |
// | positional tables         | learned, interpolated for fine-tuning        | the same (bicubic, antialiased)              |
// | temperature               | learned, from 0.07                           | the same (OpenCLIP's objective)              |
// | metric                    | zero-shot IN-1k top-1                        | eval mean of shapes zero-shot and retrieval  |
// | seeds                     | 1                                            | 3                                            |
//
// The studies share this regime and their levels' settings (each level is declared once below), and
// one cache group: a run two studies both need (say clipa-l at 16 resized tokens) is trained once.

import Foundation
import Workbench

/// The model ladder, smallest first.
let clipaSizes = ["clipa-s", "clipa-m", "clipa-l"]

/// The ladder as a study factor (or a part of it).
func clipaSizeFactor(_ sizes: [String] = clipaSizes) -> Factor {
    Factor("size", sizes.map { Level($0, ["model": .string($0)]) })
}

/// A pre-training token level: its label, settings, strategy (for figures), image and text tokens
/// kept (patches without the class token; text slots including start and end).
struct CLIPALevel: Sendable {
    let level: Level
    let strategy: String
    let imageTokens: Int
    let textTokens: Int
    init(_ label: String, strategy: String, imageTokens: Int = 64, textTokens: Int = 32, _ settings: [String: ConfigValue]) {
        level = Level(label, settings)
        self.strategy = strategy
        self.imageTokens = imageTokens
        self.textTokens = textTokens
    }
    var label: String { level.label }
}

/// Every pre-training level of the CLIPA studies, each declared once so that equal levels have
/// equal settings (and share runs across studies).
enum CLIPALevels {
    static let full = CLIPALevel("full", strategy: "full", [:])
    static let resize36 = CLIPALevel("resize 36", strategy: "resize", imageTokens: 36, ["imageReduction": "resize:48"])
    static let resize16 = CLIPALevel("resize 16", strategy: "resize", imageTokens: 16, ["imageReduction": "resize:32"])
    static let resize4 = CLIPALevel("resize 4", strategy: "resize", imageTokens: 4, ["imageReduction": "resize:16"])
    static let random16 = CLIPALevel("random 16", strategy: "random", imageTokens: 16, ["imageReduction": "random:0.75"])
    static let grid16 = CLIPALevel("grid 16", strategy: "grid", imageTokens: 16, ["imageReduction": "grid:2"])
    static let block16 = CLIPALevel("block 16", strategy: "block", imageTokens: 16, ["imageReduction": "block:0.75"])
    static func text8(_ strategy: String) -> CLIPALevel {
        CLIPALevel("text 8 \(strategy)", strategy: strategy, textTokens: 8, ["textLength": 8, "textReduction": .string(strategy)])
    }
}

/// The settings every CLIPA study shares (the paper preset's scale; the other presets shrink it).
let clipaBase: [String: ConfigValue] = [
    "tokenizer": "trained", "vocabSize": 1024, "objective.preset": "openclip", "batchSize": 128, "lr": 1e-3, "lrMin": 0.0, "wd": 0.2,
    "beta1": 0.9, "beta2": 0.95, "warmupFraction": 0.02, "evalEvery": 0,
    "finetune.epochs": 1, "finetune.lrFactor": 0.1, "finetune.warmupFraction": 0.2,
]

/// The regime of the paper preset in words, for findings.md; `study` adds what is particular to it.
func clipaRegime(_ study: String) -> String {
    """
    **Regime** (fixed before the runs; CLIPA-v1 §A5.1 → miniature): models S/16, B/16, L/16 → clipa-s, clipa-m, clipa-l \
    (ViT widths 64/96/128 with depth width/32, text towers about 2/3 as wide); images 224 px / 16 (196 patches) → 64 px / 8 \
    (64 patches); pre-training 2.56B samples = 6.4 epochs → 49,152 = 6 epochs of 8,192 shapes pairs; batch 32,768 → 128 \
    (batch/data 1/12,200 → 1/64); warm-up 1,600 of 78,125 steps (2%) → 8 of 384 (2%), cosine to 0; lr 1.024e-3 → 1e-3; \
    AdamW(0.9, 0.95), wd 0.2 → the same; fine-tuning 131M samples (5.1%) at full tokens, lr × 0.1, warm-up 20% → one epoch \
    of the first 2,560 pairs (5.2%, 20 steps) at full tokens, lr × 0.1, warm-up 4 steps; learned positional tables \
    interpolated between the stages; every level is fine-tuned, the full-token one too (so all see the same samples; \
    the paper's 224 px point has no fine-tuning); 3 seeds (the paper: 1). \(study) What differs: synthetic shapes data evaluated on \
    held-out zero-shot shape, colour, count and position and 1,000-pair retrieval (eval mean) instead of ImageNet; \
    models 10⁴× smaller; a batch holding 190× more of the data.
    """
}

/// The paper preset's scale: 6 epochs of 8,192 pairs, fine-tuning on the first 2,560.
let clipaPaperScale: [String: ConfigValue] = ["data": "shapes:8192", "epochs": 6, "finetune.data": "shapes:2560"]

/// The presets of a CLIPA study: smoke (seconds), quick (the paper's regime with one seed, a
/// quarter to a third of an hour) and paper (the regime above, 3 seeds), with `regime` saying
/// what the study adds.
func clipaPresets(regime: String) -> [StudyPreset: PresetScale] {
    [
        // Seconds: 256 pairs, one epoch at batch 64, fine-tuning on 64 pairs, a small held-out set.
        .smoke: PresetScale(
            seeds: 1,
            [
                "data": "shapes:256", "epochs": 1, "batchSize": 64, "vocabSize": 600, "evalExamples": 5, "retrievalSize": 50,
                "finetune.data": "shapes:64",
            ]),
        // The paper's regime with one seed: its runs are the paper preset's seed 0 (the same settings,
        // so the same cache entries either way). A shorter quick preset (3 epochs of 2,048 pairs,
        // 48 steps) left every size at chance, which shows nothing about token reduction.
        .quick: PresetScale(seeds: 1, clipaPaperScale),
        .paper: PresetScale(seeds: 3, clipaPaperScale, regime: clipaRegime(regime)),
    ]
}

/// The CLIPA studies' cache group.
let clipaCacheGroup = "clipa"

/// The held-out columns of the CLIPA tables: the standard ones and the run's compute.
let clipaColumns = standardColumns + [TableColumn("compute_gmacs", "compute (GMACs)")]

/// `(a_reduced − a_full) − (b_reduced − b_full)`: model a loses less than model b at `level`.
func smallerDrop(_ a: String, than b: String, at level: String, metric: String = "eval_mean", paper: String = "") -> Contrast {
    .differenceOfDifferences(
        "\(a) / \(level)", "\(a) / full", "\(b) / \(level)", "\(b) / full", metric: metric, label: "drop of \(a) − drop of \(b) at \(level)",
        paper: paper)
}

/// tokens.csv and drops.md: per size and level, the final eval mean (mean ± sd over seeds), the
/// seed-paired drop from the same size's full-token run in points, the compute, the tokens kept,
/// and the paper's drop where it gives one (`paperDrops[size][level]`, points, for the paper's
/// model `paperNames[size]`), and the same eval mean and drop at the end of pre-training (before
/// the full-token fine-tuning; a resized run is evaluated there at its own resolution). curves.csv: per size and image strategy, the drop against the
/// fraction of image tokens kept (the full run at 1), and the paper's drops against its own
/// fractions (`paperFractions[level]`).
func deriveCLIPATokens(
    in directory: String, sizes: [String], levels: [CLIPALevel], paperDrops: [String: [String: Double]] = [:], paperNames: [String: String] = [:],
    paperFractions: [String: Double] = [:]
) throws -> [String] {
    let path = directory + "/runs.csv"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
    let value = try Findings.finalValues(runsCSV: text, path: path, metric: "eval_mean")
    let compute = try Findings.finalValues(runsCSV: text, path: path, metric: "compute_gmacs")
    // The eval mean at the end of pre-training, before the full-token fine-tuning (a resized run
    // is evaluated at its own resolution there; masked and text-reduced runs at full tokens).
    let pretrained = try Findings.finalValues(runsCSV: text, path: path, metric: "eval_mean", stage: "1")
    var rows: [[Cell]] = []
    var md = "**Final eval mean by size and pre-training tokens, and the drop from full tokens (points, seed-paired; mean ± sd); before fine-tuning: the same at the end of pre-training, a resized run evaluated at its own resolution**\n\n"
    md += "| size | level | image tokens | text tokens | eval mean | drop | paper's drop | before fine-tuning | its drop | compute (GMACs) |\n"
    md += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for size in sizes {
        guard let base = value["\(size) / full"] else { continue }
        for l in levels {
            guard let x = value["\(size) / \(l.label)"] else { continue }
            // Mean, drop and compute over the same seeds: those with a full-token run too.
            let seeds = Set(x.keys).intersection(base.keys).sorted()
            let v = Summary(seeds.map { x[$0]! })
            let drop = Summary(seeds.map { 100 * (x[$0]! - base[$0]!) })
            let c = Summary(seeds.compactMap { compute["\(size) / \(l.label)"]?[$0] })
            let pre = pretrained["\(size) / \(l.label)"], preBase = pretrained["\(size) / full"]
            let preSeeds = seeds.filter { pre?[$0] != nil && preBase?[$0] != nil }
            let p = Summary(preSeeds.map { pre![$0]! })
            let preDrop = Summary(preSeeds.map { 100 * (pre![$0]! - preBase![$0]!) })
            let paper = paperDrops[size]?[l.label]
            rows.append([
                .text(size), .text(l.label), .text("\(size) \(l.imageTokens < 64 ? "image" : l.textTokens < 32 ? "text" : "full") \(l.strategy)"), .text(l.strategy), .number(Double(l.imageTokens)), .number(Double(l.imageTokens) / 64),
                .number(Double(l.textTokens)), .number(v.mean), .number(v.standardDeviation), .number(drop.mean), .number(drop.standardDeviation),
                .number(c.mean), .number(Double(v.count)), .number(p.mean), .number(p.standardDeviation), .number(preDrop.mean), .number(preDrop.standardDeviation),
            ])
            md += "| \(size) | \(l.label) | \(l.imageTokens) | \(l.textTokens) | " + String(format: "%.3f ± %.3f", v.mean, v.standardDeviation) + " | "
            md += (l.label == "full" ? "–" : String(format: "%+.2f ± %.2f", drop.mean, drop.standardDeviation)) + " | "
            md += (paper.map { String(format: "%+.1f", $0) + " (\(paperNames[size] ?? "paper"))" } ?? "–") + " | "
            md += (preSeeds.isEmpty ? "– | –" : String(format: "%.3f ± %.3f | ", p.mean, p.standardDeviation)
                + (l.label == "full" ? "–" : String(format: "%+.2f ± %.2f", preDrop.mean, preDrop.standardDeviation)))
            md += " | " + String(format: "%.0f", c.mean) + " |\n"
        }
    }
    guard !rows.isEmpty else { throw WorkbenchError.malformed(what: path, reason: "no size has a full-token run to measure drops from") }
    let csv = CSV.render(
        columns: [
            "size", "level", "series", "strategy", "image_tokens", "image_fraction", "text_tokens", "eval_mean", "eval_mean_sd", "drop_points", "drop_sd_points",
            "compute_gmacs", "seeds", "pretrained_eval_mean", "pretrained_eval_mean_sd", "pretrained_drop_points", "pretrained_drop_sd_points",
        ], rows: rows)
    // The curves: ours per size and image strategy, then the paper's.
    var curves: [[Cell]] = []
    let byLabel = Dictionary(uniqueKeysWithValues: rows.map { r -> (String, [Cell]) in
        guard case .text(let size) = r[0], case .text(let label) = r[1] else { return ("", r) }
        return ("\(size) / \(label)", r)
    })
    let imageLevels = levels.filter { $0.imageTokens < 64 }
    let imageStrategies = imageLevels.map(\.strategy).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    for size in sizes {
        for strategy in imageStrategies {
            let members = [CLIPALevels.full] + imageLevels.filter { $0.strategy == strategy }.sorted { $0.imageTokens > $1.imageTokens }
            for l in members {
                guard let r = byLabel["\(size) / \(l.label)"] else { continue }
                curves.append([.text("\(size) \(strategy)"), .number(Double(l.imageTokens) / 64), r[7], r[8], r[9], r[10]])
            }
        }
    }
    for size in sizes {
        guard let name = paperNames[size], let drops = paperDrops[size] else { continue }
        curves.append([.text("\(name) (paper)"), .number(1), .number(.nan), .number(.nan), .number(0), .number(.nan)])
        for l in levels.sorted(by: { $0.imageTokens > $1.imageTokens }) {
            guard let d = drops[l.label], let f = paperFractions[l.label] else { continue }
            curves.append([.text("\(name) (paper)"), .number(f), .number(.nan), .number(.nan), .number(d), .number(.nan)])
        }
    }
    let curvesCSV = CSV.render(columns: ["series", "image_fraction", "eval_mean", "eval_mean_sd", "drop_points", "drop_sd_points"], rows: curves)
    return [try write(csv, "tokens.csv", in: directory), try write(md, "drops.md", in: directory), try write(curvesCSV, "curves.csv", in: directory)]
}
