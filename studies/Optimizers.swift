// FastCLIP §8.1: the model's update rule under FastCLIP-v3, AdamW against LAMB (the code has no
// Lion or SGD-momentum; the paper's numbers are not available).

import Workbench

let optimizersStudy = StudyDefinition(
    study: Study(
        name: "optimizers",
        title: "AdamW against LAMB under FastCLIP-v3",
        mirrors: "FastCLIP §8.1 (the optimizer ablation; the paper's numbers are not available)",
        base: ["model": "tiny", "data": "shapes:cc3m-mini", "batchSize": 256, "lr": 1e-3, "warmup": 500, "evalEvery": 1,
               "objective.preset": "fastclip-v3"],
        factors: [Factor.over("optimizer", ["adamw", "lamb"])],
        presets: [
            .smoke: smokePreset(["data": "shapes:512", "epochs": 2, "batchSize": 64, "warmup": 10]),
            .quick: PresetScale(seeds: 1, ["data": "shapes:8192", "epochs": 4, "warmup": 50]),
            // The paper's Medium regime by its ratios (PaperRegime.swift).
            .paper: PresetScale(seeds: 3, mediumPaperSettings, regime: mediumRegime),
        ]),
    figures: { variants, preset in
        [perEpochFigure(name: "eval-mean", metric: "eval_mean", title: "Held-out eval mean: AdamW vs LAMB (FastCLIP-v3)", yLabel: "eval_mean", variants: variants, preset: preset)]
    },
    table: ResultsTable(caption: "Optimizers under FastCLIP-v3 at the last epoch", columns: standardColumns),
    claims: [
        Claim(
            "AdamW ends above LAMB under FastCLIP-v3",
            source: "FastCLIP §8.1 (the ablation's numbers are not available; the spec recalls AdamW best or tied, UNSURE)",
            parts: [.difference("adamw", minus: "lamb")])
    ])
