// FastCLIP §5 and §9.5: the temperature rules v0 (global, learnable through the GCL gradient),
// v1 (global, constant), v2 (individual, RGCL) and v3 (global, RGCL-g with step_thresh), all in the
// same framework with the cosine γ schedule. The paper's table is not available (§9.5); the study
// reports ClipLab's numbers alone.

import Workbench

let temperatureAblation = StudyDefinition(
    study: Study(
        name: "temperature-ablation",
        title: "Temperature rules: FastCLIP-v0, v1, v2, v3 (cosine γ)",
        mirrors: "FastCLIP §5 and the temperature ablation of §9.5 (the paper's numbers are not available)",
        base: ["model": "tiny", "data": "shapes:cc3m-mini", "batchSize": 256, "lr": 1e-3, "warmup": 500, "evalEvery": 1],
        factors: [
            Factor("version", ["v0", "v1", "v2", "v3"].map { Level("FastCLIP-\($0)", ["objective.preset": .string("fastclip-\($0)")]) })
        ],
        presets: [
            // Seconds: nano on 512 pairs, 2 epochs of 8 steps.
            .smoke: smokePreset(["data": "shapes:512", "epochs": 2, "batchSize": 64, "warmup": 10]),
            // Minutes: tiny on 8,192 pairs, 4 epochs of 32 steps (139–178 s per run measured here, 10.4 min in all).
            .quick: PresetScale(seeds: 1, ["data": "shapes:8192", "epochs": 4, "warmup": 50]),
            // The paper's Medium regime (FastCLIP §8.2, CC3M) by its ratios; `mediumRegime` gives each
            // value beside the paper's.
            .paper: PresetScale(seeds: 3, mediumPaperSettings, regime: mediumRegime),
        ]),
    figures: { variants, preset in
        [
            perEpochFigure(name: "eval-mean", metric: "eval_mean", title: "Held-out eval mean by temperature rule", yLabel: "eval_mean", variants: variants, preset: preset),
            perEpochFigure(name: "temperature", metric: "temperature", title: "Temperature (mean over samples for v2)", yLabel: "τ",
                           variants: variants, preset: preset, extra: ["set logscale y"]),
        ]
    },
    table: ResultsTable(
        caption: "Temperature rules at the last epoch (mean ± sd over seeds)",
        columns: standardColumns + [TableColumn("temperature", "τ", digits: 4)]),
    claims: [
        Claim(
            "FastCLIP-v3 is the best temperature rule", source: "FastCLIP §5 and §9.5 (the ablation's table is not available; v3 was the version scaled up)",
            parts: ["FastCLIP-v0", "FastCLIP-v1", "FastCLIP-v2"].map { Contrast.difference("FastCLIP-v3", minus: $0) })
    ])
