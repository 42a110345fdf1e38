// FastCLIP §9.2: FastCLIP-v3 against OpenCLIP as the global batch grows (standing in for the
// paper's 1, 2, 4 and 8 nodes at a fixed per-GPU batch). The paper's IN & Variants numbers for
// the Medium setting stand beside ours.

import Workbench

let fastclipVsOpenclip = StudyDefinition(
    study: Study(
        name: "fastclip-vs-openclip",
        title: "FastCLIP-v3 against OpenCLIP across global batch sizes",
        mirrors: "FastCLIP §9.2 (Figure 4(b)(c)) and §9.3",
        base: ["model": "tiny", "data": "shapes:cc3m-mini", "lr": 1e-3, "warmup": 500, "evalEvery": 1],
        factors: [
            Factor("algorithm", [Level("OpenCLIP", ["objective.preset": "openclip"]), Level("FastCLIP-v3", ["objective.preset": "fastclip-v3"])]),
            Factor("batch", [64, 128, 256, 512].map { Level("B=\($0)", ["batchSize": .int($0)]) }),
        ],
        presets: [
            .smoke: smokePreset(["data": "shapes:1024", "epochs": 1, "warmup": 5]),
            .quick: PresetScale(seeds: 1, ["data": "shapes:4096", "epochs": 3, "warmup": 20]),
            .full: PresetScale(seeds: 3, ["epochs": 10]),
        ]),
    figures: { variants in
        [perEpochFigure(name: "eval-mean", metric: "eval_mean", title: "Held-out eval mean by algorithm and global batch", yLabel: "eval_mean", variants: variants)]
    },
    table: ResultsTable(
        caption: "FastCLIP-v3 and OpenCLIP by global batch at the last epoch; the paper's Medium IN & Variants at 1, 2, 4, 8 nodes beside",
        columns: standardColumns, paperHeaders: ["IN & Variants (nodes)"],
        paper: [
            "OpenCLIP / B=64": ["14.20 (1)"], "OpenCLIP / B=128": ["14.75 (2)"], "OpenCLIP / B=256": ["15.24 (4)"], "OpenCLIP / B=512": ["15.99 (8)"],
            "FastCLIP-v3 / B=64": ["18.41 (1)"], "FastCLIP-v3 / B=128": ["19.08 (2)"], "FastCLIP-v3 / B=256": ["19.21 (4)"],
            "FastCLIP-v3 / B=512": ["19.21 (8)"],
        ]))
