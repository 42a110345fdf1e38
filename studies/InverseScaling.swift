// CLIPA's inverse scaling law (§A1, §A6.1): pre-train each size of the ladder on fewer image tokens
// (resized images, or random masking at a matched count) or fewer text tokens, fine-tune briefly at
// full length, and compare each size's accuracy with its own full-token run. The claim: the larger
// the model, the less accuracy it loses as the tokens shrink. The regime is CLIPARegime.swift's.
//
// | level      | pre-training input                        | image tokens (of 64) | the paper's level (tokens of 196) |
// | ---------- | ----------------------------------------- | -------------------- | --------------------------------- |
// | full       | 64 px, text 32                            | 64 (100%)            | 224 px (100%)                     |
// | resize 36  | 48 px                                     | 36 (56%)             | 160 px (51%)                      |
// | resize 16  | 32 px                                     | 16 (25%)             | 112 px (25%)                      |
// | resize 4   | 16 px                                     | 4 (6%)               | 64 px (8%)                        |
// | random 16  | 64 px, 75% of the patches dropped         | 16 (25%)             | 75% random masking (25%)          |
// | text 8     | text 8 by syntax masking (6 words kept)   | 64                   | text 8, syntax (CLIPA-L/16 I37,T8)|

import Foundation
import Workbench

let inverseScalingLevels = [
    CLIPALevels.full, CLIPALevels.resize36, CLIPALevels.resize16, CLIPALevels.resize4, CLIPALevels.random16, CLIPALevels.text8("syntax"),
]

/// The paper's drops from full resolution (§A6.1, read from CLIPA's accuracy–compute figure),
/// by our level with the paper's fraction of image tokens beside it.
let inverseScalingPaperDrops: [String: [String: Double]] = [
    "clipa-s": ["resize 36": -0.7, "resize 16": -2.0, "resize 4": -6.2],
    "clipa-m": ["resize 36": -0.5, "resize 16": -1.3, "resize 4": -4.2],
    "clipa-l": ["resize 36": -0.2, "resize 16": -0.3, "resize 4": -3.0],
]
let clipaPaperNames = ["clipa-s": "S/16", "clipa-m": "B/16", "clipa-l": "L/16"]
let inverseScalingPaperFractions = ["resize 36": 100.0 / 196, "resize 16": 49.0 / 196, "resize 4": 16.0 / 196]

let inverseScaling = StudyDefinition(
    study: Study(
        name: "inverse-scaling",
        title: "CLIPA's inverse scaling law: accuracy lost to fewer tokens, by model size",
        mirrors: "CLIPA §A6.1 (accuracy against image tokens and compute for S/16, B/16, L/16) and §A7 tables (a)–(c)",
        base: clipaBase,
        factors: [clipaSizeFactor(), Factor("tokens", inverseScalingLevels.map(\.level))],
        presets: clipaPresets(regime: "Levels: 64 image tokens (full), 36, 16 and 4 by resizing to 48, 32 and 16 px (the paper's 160, 112 and 64 px: 51%, 25%, 8% of its tokens), 16 by 75% random masking, and text 8 by syntax masking."),
        cacheGroup: clipaCacheGroup),
    figures: { _, _ in
        [
            Figure(
                name: "drop", csv: "curves.csv", title: "Eval mean lost to fewer image tokens (pre-training), by model size",
                xLabel: "fraction of image tokens kept in pre-training", yLabel: "drop from full tokens (points)",
                series: clipaSizes.map { Series(title: "\($0) resize", filterColumn: "series", filterValue: "\($0) resize", x: "image_fraction", y: "drop_points", error: "drop_sd_points") }
                    + clipaSizes.map { Series(title: "\($0) random", filterColumn: "series", filterValue: "\($0) random", x: "image_fraction", y: "drop_points").drawn("points") }
                    + clipaSizes.compactMap { s in clipaPaperNames[s].map { Series(title: "\($0) (paper, resize)", filterColumn: "series", filterValue: "\($0) (paper)", x: "image_fraction", y: "drop_points").drawn("lines dt 2") } },
                extra: ["set logscale x 2", "set xrange [0.05:1.1]", "set key bottom right", "set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 3"]),
            Figure(
                name: "compute", csv: "tokens.csv", title: "Eval mean against training compute (pre-training + fine-tuning)",
                xLabel: "compute (GMACs, multiply–accumulates)", yLabel: "final eval mean",
                series: clipaSizes.map { Series(title: $0, filterColumn: "size", filterValue: $0, x: "compute_gmacs", y: "eval_mean", error: "eval_mean_sd") },
                extra: ["set logscale x 2", "set key bottom right"]),
        ]
    },
    table: ResultsTable(caption: "Final held-out metrics by model size and pre-training tokens (after fine-tuning at full tokens)", columns: clipaColumns),
    claims: [
        Claim(
            "Larger models lose less accuracy when pre-trained on fewer image tokens (resize)", source: "CLIPA §A1, §A6.1",
            parts: [
                smallerDrop("clipa-l", than: "clipa-s", at: "resize 16", paper: "L/16 −0.3 vs S/16 −2.0 at 112 px: +1.7 IN-1k points"),
                smallerDrop("clipa-l", than: "clipa-s", at: "resize 4", paper: "L/16 −3.0 vs S/16 −6.2 at 64 px: +3.2 IN-1k points"),
            ]),
        Claim(
            "The drop shrinks at every step up the ladder (resize)", source: "CLIPA §A6.1 (S/16 → B/16 → L/16)",
            parts: [
                smallerDrop("clipa-m", than: "clipa-s", at: "resize 16", paper: "B/16 −1.3 vs S/16 −2.0: +0.7 IN-1k points"),
                smallerDrop("clipa-l", than: "clipa-m", at: "resize 16", paper: "L/16 −0.3 vs B/16 −1.3: +1.0 IN-1k points"),
                smallerDrop("clipa-m", than: "clipa-s", at: "resize 4", paper: "B/16 −4.2 vs S/16 −6.2: +2.0 IN-1k points"),
                smallerDrop("clipa-l", than: "clipa-m", at: "resize 4", paper: "L/16 −3.0 vs B/16 −4.2: +1.2 IN-1k points"),
            ]),
        Claim(
            "The same holds under random masking", source: "CLIPA §A3 (inverse scaling under all four strategies)",
            parts: [smallerDrop("clipa-l", than: "clipa-s", at: "random 16")]),
        Claim(
            "The same holds for fewer text tokens", source: "CLIPA §A1 (the law for text length)",
            parts: [smallerDrop("clipa-l", than: "clipa-s", at: "text 8 syntax")]),
        Claim(
            "A larger model on 4 image tokens beats the next smaller one on all 64", source: "CLIPA §A6.1 (S/16 full → B/16 @64 px: +3.2; B/16 full → L/16 @64 px: +2.1 to +2.5)",
            parts: [
                .difference("clipa-m / resize 4", minus: "clipa-s / full", paper: "+3.2 IN-1k points (B/16 @64 px − S/16 full)"),
                .difference("clipa-l / resize 4", minus: "clipa-m / full", paper: "+2.1 to +2.5 IN-1k points (L/16 @64 px − B/16 full)"),
            ]),
    ],
    derive: {
        try deriveCLIPATokens(
            in: $0, sizes: clipaSizes, levels: inverseScalingLevels, paperDrops: inverseScalingPaperDrops, paperNames: clipaPaperNames,
            paperFractions: inverseScalingPaperFractions)
    })
