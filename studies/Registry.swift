// Every study `swift run study NAME` knows: its declaration, figures and table.

import Workbench

/// A study with what it draws.
struct StudyDefinition: Sendable {
    let study: Study
    /// Figures over summary.csv, given the variants in order.
    let figures: @Sendable ([String]) -> [Figure]
    let table: ResultsTable
}

let registry: [StudyDefinition] = [innerLRScheduleStudy, temperatureAblation, fastclipVsOpenclip, optimizersStudy]

/// A figure of `metric` (mean ± sd over seeds) against epochs, one line per variant.
func perEpochFigure(name: String, metric: String, title: String, yLabel: String, variants: [String], extra: [String] = []) -> Figure {
    Figure(
        name: name, csv: "summary.csv", title: title, xLabel: "epoch", yLabel: yLabel,
        series: variants.map { Series(title: $0, filterColumn: "variant", filterValue: $0, x: "epoch", y: "\(metric)_mean", error: "\(metric)_sd") },
        extra: ["set xtics 1", "set mxtics 1"] + extra)
}

/// The held-out columns every study's table shows.
let standardColumns = [
    TableColumn("eval_mean", "eval mean"), TableColumn("zeroshot_shape_top1", "shape"), TableColumn("zeroshot_colour_top1", "colour"),
    TableColumn("zeroshot_count_top1", "count"), TableColumn("retrieval_i2t_r1", "i2t R@1"), TableColumn("retrieval_t2i_r1", "t2i R@1"),
]

/// Every study's smoke preset: nano with a small trained tokenizer and a small held-out set
/// (seconds per run), one seed, plus the study's own data and schedule.
func smokePreset(_ settings: [String: ConfigValue]) -> PresetScale {
    let nano: [String: ConfigValue] = ["model": "nano", "tokenizer": "trained", "vocabSize": 600, "evalExamples": 5, "retrievalSize": 50]
    return PresetScale(seeds: 1, nano.merging(settings) { _, study in study })
}
