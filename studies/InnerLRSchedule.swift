// FastCLIP §9.1: cosine γ (FastCLIP-v1, v2) against constant γ (SogCLR, iSogCLR) on two data
// scales. The paper's DataComp, Retrieval and IN & Variants numbers stand beside ours.

import Workbench

let innerLRScheduleStudy = StudyDefinition(
    study: Study(
        name: "inner-lr-schedule",
        title: "Inner-LR schedule: cosine (FastCLIP-v1, v2) against constant γ (SogCLR, iSogCLR)",
        mirrors: "FastCLIP §9.1 (the γ-schedule table)",
        base: ["model": "tiny", "batchSize": 256, "lr": 1e-3, "warmup": 500, "evalEvery": 1, "dataSmall": "shapes:cc3m-mini", "dataLarge": "shapes:cc12m-mini"],
        factors: [
            Factor("scale", [Level("Medium", ["data": "@dataSmall"]), Level("Large", ["data": "@dataLarge"])]),
            Factor("algorithm", [
                Level("SogCLR", ["objective.preset": "sogclr"]), Level("FastCLIP-v1", ["objective.preset": "fastclip-v1"]),
                Level("iSogCLR", ["objective.preset": "isogclr"]), Level("FastCLIP-v2", ["objective.preset": "fastclip-v2"]),
            ]),
        ],
        presets: [
            .smoke: smokePreset(["dataSmall": "shapes:512", "dataLarge": "shapes:1024", "epochs": 2, "batchSize": 64, "warmup": 10]),
            // Minutes: tiny for 4 epochs on 2,048 (Medium) and 6,144 (Large) pairs at batch 128, 16 and 48
            // steps per epoch. (At batch 256 the Medium runs, 32 steps in all, stayed near chance.)
            .quick: PresetScale(seeds: 1, ["dataSmall": "shapes:2048", "dataLarge": "shapes:6144", "epochs": 4, "batchSize": 128, "warmup": 20]),
            .full: PresetScale(seeds: 3, ["epochs": 10]),
        ]),
    figures: { variants in
        [perEpochFigure(name: "eval-mean", metric: "eval_mean", title: "Held-out eval mean: cosine vs constant γ", yLabel: "eval_mean", variants: variants)]
    },
    table: ResultsTable(
        caption: "Cosine against constant inner-LR schedules at the last epoch; the paper's CC3M (Medium) and CC12M (Large) numbers beside",
        columns: standardColumns, paperHeaders: ["DataComp", "Retrieval", "IN & Variants"],
        paper: [
            "Medium / SogCLR": ["23.41 (0.34)", "27.48 (0.24)", "16.90 (0.01)"],
            "Medium / FastCLIP-v1": ["24.87 (0.13)", "29.28 (0.30)", "18.86 (0.09)"],
            "Medium / iSogCLR": ["23.35 (0.63)", "27.92 (0.34)", "17.05 (0.14)"],
            "Medium / FastCLIP-v2": ["24.10 (0.34)", "29.32 (1.29)", "18.52 (0.37)"],
            "Large / SogCLR": ["29.91 (0.23)", "30.16 (0.36)", "22.98 (0.07)"],
            "Large / FastCLIP-v1": ["30.65 (0.11)", "32.66 (0.12)", "24.26 (0.06)"],
            "Large / iSogCLR": ["30.32 (0.18)", "30.27 (0.41)", "24.96 (0.09)"],
            "Large / FastCLIP-v2": ["30.94 (0.20)", "31.84 (0.17)", "25.52 (0.17)"],
        ]))
