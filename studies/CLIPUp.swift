// CLIP-UP (spec B4–B6): upcycle a converged dense CLIP into mixtures of experts and keep training,
// against continuing the dense model and against mixtures trained from scratch, with the capacity
// factor, top-1 against top-2 and the auxiliary losses as ablations. The regime, fixed before any
// run of this study, follows B6's plan scaled to the shapes world:
//
// | quantity                 | CLIP-UP / sparse upcycling (B2, B4, B6)           | paper preset                                   |
// | ------------------------ | ------------------------------------------------- | ---------------------------------------------- |
// | dense model              | B/16 (also B/32, L/14), trained to convergence     | clipa-s (ViT 64 × 2, text 48 × 2), 12 epochs of 8,192 pairs (768 steps), where its eval mean levels off (0.63 at 98k samples in a pilot) |
// | upcycled blocks          | every other MLP, both towers (separated backbone)  | block 1 of each tower (every other from block 1) |
// | experts, routing         | 8, top-2 token choice, capacity factor 2 (UNSURE)  | the same; renormalised gates                   |
// | router init              | N(0, 0.02²), no noise                              | the same                                       |
// | auxiliary losses         | load balance + router z, 0.01 / 0.001 (UNSURE)     | the same                                       |
// | extra training           | 0.25–0.5 of the dense budget                       | 0.5: 6 epochs (384 steps)                      |
// | its learning rate        | 0.1–0.5 × the dense peak, short warm-up, cosine    | 0.3 × (3e-4), warm-up 5%, cosine to 0; moments restarted |
// | MoE from scratch         | the same total steps as dense + extra              | 18 epochs (1,152 steps) at the dense recipe    |
// | dense continued          | the same extra steps at the same rate              | the same 6 epochs at 3e-4                      |
// | seeds                    | 1                                                  | 3                                              |
//
// Ablations on the upcycled model (each changes one thing): capacity factor 1.0 and 1.25; top-1
// (renormalised gates: its gate is 1, so the router learns only from the auxiliary losses; the
// choice keeps the step-0 equality); no auxiliary loss; load balance alone; LIMoE's entropies
// instead (local 0.01, global 0.01, no threshold). A shared-backbone variant (B3, LIMoE: one
// transformer for both modalities) is not built: ClipLab's towers are separate transformers of
// different widths (clipa-s: 64 and 48) and contexts, and a shared one is an architecture of its own.

import CLIP
import Foundation
import Layers
import Workbench

/// The variants: label, settings, and the paper's COCO t→i R@1 beside (B5, B/16) where it has one.
let clipUpVariants: [(label: String, settings: [String: ConfigValue], paper: String)] = [
    ("dense continued", [:], "44.9 (dense B/16, derived: 52.1 − 7.2)"),
    ("upcycled", ["moe.experts": 8, "moe.at": "upcycle"], "52.1 (CLIP-UP B/16)"),
    ("MoE from scratch", ["moe.experts": 8, "moe.at": "scratch", "finetune.epochs": 0, "epochs": "@vars.scratchEpochs"], "– (below upcycled, B2)"),
    ("upcycled cf 1", ["moe.experts": 8, "moe.at": "upcycle", "moe.capacityFactor": 1.0], "–"),
    ("upcycled cf 1.25", ["moe.experts": 8, "moe.at": "upcycle", "moe.capacityFactor": 1.25], "–"),
    ("upcycled top-1", ["moe.experts": 8, "moe.at": "upcycle", "moe.topK": 1], "–"),
    ("upcycled no aux", ["moe.experts": 8, "moe.at": "upcycle", "moe.lbWeight": 0.0, "moe.zWeight": 0.0], "–"),
    ("upcycled lb only", ["moe.experts": 8, "moe.at": "upcycle", "moe.zWeight": 0.0], "–"),
    (
        "upcycled entropy", ["moe.experts": 8, "moe.at": "upcycle", "moe.lbWeight": 0.0, "moe.zWeight": 0.0, "moe.localEntropyWeight": 0.01, "moe.globalEntropyWeight": 0.01],
        "–"
    ),
]

/// The dense recipe and the second stage, shared by every variant (CLIPA's optimizer settings).
let clipUpBase: [String: ConfigValue] = [
    "model": "clipa-s", "tokenizer": "trained", "vocabSize": 1024, "objective.preset": "openclip", "batchSize": 128, "lr": 1e-3, "lrMin": 0.0,
    "wd": 0.2, "beta1": 0.9, "beta2": 0.95, "warmupFraction": 0.02, "evalEvery": 0,
    "finetune.epochs": "@vars.extraEpochs", "finetune.lrFactor": 0.3, "finetune.warmupFraction": 0.05,
]

let clipUpRegime = """
    **Regime** (fixed before the runs; CLIP-UP / sparse upcycling, spec B4 and B6 → miniature): dense B/16 trained to convergence → \
    clipa-s for 12 epochs of 8,192 shapes pairs (768 steps at batch 128, warm-up 2%, lr 1e-3, AdamW(0.9, 0.95), wd 0.2), where its eval \
    mean levels off; every other MLP of both towers → block 1 of each tower; 8 experts, top-2 token choice, capacity factor 2, renormalised \
    gates, router N(0, 0.02²) → the same; load-balance 0.01 + z-loss 0.001 → the same; extra training 0.25–0.5 of the dense budget at \
    0.1–0.5 × its peak lr → 6 epochs (0.5) at 0.3 × (3e-4), warm-up 5%, cosine to 0, moments restarted; dense continued: the same extra \
    epochs and rate; MoE from scratch: the same total steps (18 epochs) at the dense recipe; 3 seeds (the paper: 1). What differs: shapes \
    data and a 1,000-pair held-out retrieval instead of COCO and Flickr30k; models 10⁴× smaller; 2 mixture layers instead of 12 or more.
    """

let clipUpStudy = StudyDefinition(
    study: Study(
        name: "clip-up",
        title: "Sparse upcycling of a dense CLIP into mixtures of experts (CLIP-UP)",
        mirrors: "CLIP-UP (arXiv 2502.00965): upcycled vs dense-continued vs MoE from scratch; capacity factor, top-k and auxiliary-loss ablations (spec B5, B6)",
        base: clipUpBase,
        factors: [Factor("model", clipUpVariants.map { Level($0.label, $0.settings) })],
        presets: [
            // Seconds: one epoch of 256 pairs, then one more (the mixtures' stage); from scratch two.
            .smoke: PresetScale(
                seeds: 1,
                ["data": "shapes:256", "epochs": 1, "batchSize": 64, "vocabSize": 600, "evalExamples": 5, "retrievalSize": 50,
                 "vars.extraEpochs": 1, "vars.scratchEpochs": 2]),
            // The paper's regime with one seed (its runs are the paper preset's seed 0).
            .quick: PresetScale(seeds: 1, ["data": "shapes:8192", "epochs": 12, "vars.extraEpochs": 6, "vars.scratchEpochs": 18]),
            .paper: PresetScale(seeds: 3, ["data": "shapes:8192", "epochs": 12, "vars.extraEpochs": 6, "vars.scratchEpochs": 18], regime: clipUpRegime),
        ]),
    figures: { _, _ in
        [
            Figure(
                name: "load", csv: "loads.csv", title: "Expert load in the last epoch (upcycled: top-2 of 8, capacity factor 2)",
                xLabel: "expert", yLabel: "share of the layer's tokens kept on the expert",
                series: ["visual.1", "text.1"].map {
                    Series(title: "\($0) (mean over seeds)", filterColumn: "layer", filterValue: $0, x: "x", y: "load").drawn("boxes fill solid 0.6")
                },
                extra: ["set xrange [-0.6:7.6]", "set yrange [0:0.3]", "set xtics 1", "set boxwidth 0.38", "set key top right",
                        "set label \"capacity (cf 2)\" at graph 0.02, first 0.255", "set arrow from graph 0, first 0.25 to graph 1, first 0.25 nohead dt 3"]),
            Figure(
                name: "models", csv: "models.csv", title: "Held-out retrieval and eval mean by model",
                xLabel: "model (see models.md)", yLabel: "final value (mean ± sd over seeds)",
                series: [
                    Series(title: "t→i R@1", x: "index", y: "t2i_r1", error: "t2i_r1_sd"), Series(title: "i→t R@1", x: "index", y: "i2t_r1", error: "i2t_r1_sd"),
                    Series(title: "eval mean", x: "index", y: "eval_mean", error: "eval_mean_sd"),
                ],
                extra: ["set xtics 1", "set xrange [-0.5:\(clipUpVariants.count)]", "set key top right"]),
        ]
    },
    table: ResultsTable(caption: "Final held-out metrics by model (clipa-s dense 12 epochs, then 6 more)", columns: standardColumns + [TableColumn("compute_gmacs", "training GMACs"), TableColumn("gmacs_per_sample", "GMACs per sample")]),
    claims: [
        Claim(
            "Upcycling beats continuing the dense model at the same extra training", source: "CLIP-UP abstract (B/16: +7.2 COCO, +6.6 Flickr30k t→i R@1), B5",
            parts: [
                .difference("upcycled", minus: "dense continued", metric: "retrieval_t2i_r1", paper: "+7.2 COCO t→i R@1 points"),
                .difference("upcycled", minus: "dense continued", paper: "– (IN-1k not given for the dense B/16)"),
            ]),
        Claim(
            "Upcycling beats training the mixtures from scratch for the same total steps", source: "Sparse upcycling (B2), CLIP-UP's baseline (ii)",
            parts: [
                .difference("upcycled", minus: "MoE from scratch", metric: "retrieval_t2i_r1", paper: "– (the table is not recovered)"),
                .difference("upcycled", minus: "MoE from scratch", paper: "–"),
            ]),
        Claim(
            "A larger capacity factor buys quality: 2 beats 1", source: "CLIP-UP (capacity factor as the quality/FLOPs knob), B4",
            parts: [.difference("upcycled", minus: "upcycled cf 1", paper: "– (the table is not recovered)")]),
        Claim(
            "Top-2 routing beats top-1", source: "B4 (CLIP-UP's top-2), B6 step 4(e)",
            parts: [.difference("upcycled", minus: "upcycled top-1", paper: "–")]),
        Claim(
            "Load balance + z-loss costs nothing against no auxiliary loss", source: "CLIP-UP: lb + z is its recipe and is stable (B4, B6 step 5)",
            parts: [.costsAtMost(Findings.margin, "upcycled", against: "upcycled no aux", paper: "–")]),
    ],
    derive: { try deriveClipUp(in: $0) })

/// models.csv and models.md (B6 step 5's table: parameters, compute, zero-shot and both retrieval
/// directions, the paper's COCO t→i beside), and loads.csv (each mixture layer's final expert load
/// in the upcycled run, mean ± sd over seeds).
func deriveClipUp(in directory: String) throws -> [String] {
    let path = directory + "/runs.csv"
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw WorkbenchError.missing(what: path) }
    func final(_ metric: String) throws -> [String: [Int: Double]] {
        (try? Findings.finalValues(runsCSV: text, path: path, metric: metric)) ?? [:]
    }
    let metrics = ["eval_mean", "retrieval_t2i_r1", "retrieval_i2t_r1", "zeroshot_shape_top1", "zeroshot_colour_top1", "zeroshot_count_top1",
                   "zeroshot_position_top1", "compute_gmacs", "gmacs_per_sample"]
    var values: [String: [String: [Int: Double]]] = [:]
    for m in metrics { values[m] = try final(m) }
    var rows: [[Cell]] = []
    var md = "**Models after the extra training (clipa-s; mean ± sd over seeds), the paper's COCO t→i R@1 beside (B/16)**\n\n"
    md += "| # | model | parameters (total / active per token) | training GMACs | GMACs per sample | zero-shot (mean of 4) | t→i R@1 | i→t R@1 | eval mean | paper t→i |\n"
    md += "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
    for (index, v) in clipUpVariants.enumerated() {
        guard let evals = values["eval_mean"]?[v.label], !evals.isEmpty else { continue }
        func summary(_ m: String) -> Summary { Summary(Array((values[m]?[v.label] ?? [:]).values)) }
        let zeroShot = Summary(evals.keys.sorted().map { seed in
            ["shape", "colour", "count", "position"].map { values["zeroshot_\($0)_top1"]?[v.label]?[seed] ?? .nan }.reduce(0, +) / 4
        })
        let counts = try clipUpParameterCounts(v.settings)
        let (e, t, i, c, g) = (summary("eval_mean"), summary("retrieval_t2i_r1"), summary("retrieval_i2t_r1"), summary("compute_gmacs"), summary("gmacs_per_sample"))
        rows.append([
            .number(Double(index)), .text(v.label), .number(Double(counts.total)), .number(Double(counts.active)), .number(c.mean), .number(g.mean),
            .number(zeroShot.mean), .number(t.mean), .number(t.standardDeviation), .number(i.mean), .number(i.standardDeviation), .number(e.mean),
            .number(e.standardDeviation),
        ])
        md += "| \(index) | \(v.label) | " + String(format: "%.3fM / %.3fM", Double(counts.total) / 1e6, Double(counts.active) / 1e6) + " | "
            + String(format: "%.0f | %.4f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f | %.3f ± %.3f", c.mean, g.mean, zeroShot.mean, zeroShot.standardDeviation,
                     t.mean, t.standardDeviation, i.mean, i.standardDeviation, e.mean, e.standardDeviation)
            + " | \(v.paper) |\n"
    }
    guard !rows.isEmpty else { throw WorkbenchError.malformed(what: path, reason: "no clip-up variant has a run") }
    md += "\nParameters count a vocabulary of 1,024 tokens; active parameters count the routers and k of the 8 experts of each mixture "
        + "layer. Training GMACs add the dense stage's and the extra stage's forward multiply–adds over the samples seen; GMACs per sample "
        + "are the final model's forward pass, a mixture layer counting its router and k experts per token (none for capacity padding).\n"
    let csv = CSV.render(
        columns: ["index", "model", "parameters", "active_parameters", "training_gmacs", "gmacs_per_sample", "zeroshot_mean", "t2i_r1", "t2i_r1_sd",
                  "i2t_r1", "i2t_r1_sd", "eval_mean", "eval_mean_sd"], rows: rows)
    // Expert loads of the upcycled run's layers.
    var loads: [[Cell]] = []
    for layer in ["visual.1", "text.1"] {
        for expert in 0..<8 {
            let byRun = try final("moe.\(layer).load_\(expert)")["upcycled"] ?? [:]
            guard !byRun.isEmpty else { continue }
            let s = Summary(Array(byRun.values))
            // Bars side by side: the vision layer's left of the expert's tick, the text layer's right.
            let x = Double(expert) + (layer.hasPrefix("visual") ? -0.2 : 0.2)
            loads.append([.text(layer), .number(Double(expert)), .number(x), .number(s.mean), .number(s.standardDeviation)])
        }
    }
    var files = [try write(csv, "models.csv", in: directory), try write(md, "models.md", in: directory)]
    if !loads.isEmpty { files.append(try write(CSV.render(columns: ["layer", "expert", "x", "load", "load_sd"], rows: loads), "loads.csv", in: directory)) }
    return files
}

/// Total and active (per token) parameters of a variant's final model, at a vocabulary of 1,024.
func clipUpParameterCounts(_ settings: [String: ConfigValue]) throws -> (total: Int, active: Int) {
    guard var config = CLIPConfiguration.preset("clipa-s", vocabularySize: 1024) else { return (0, 0) }
    if let e = settings["moe.experts"]?.intValue, e > 0 {
        let m = MoEConfiguration(
            experts: e, topK: settings["moe.topK"]?.intValue ?? 2, capacityFactor: settings["moe.capacityFactor"]?.doubleValue ?? 2)
        config.vision.experts = MoEPlacement(m)
        config.text.experts = MoEPlacement(m)
    }
    return try CLIPModel<Float>(config).parameterCounts
}
