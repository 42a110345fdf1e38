// FastCLIP §7.3 and §7.4: the per-iteration time of OpenCLIP's and FastCLIP's gradient reductions
// at K = 1, 2, 4 ranks with a fixed per-rank batch (the paper's fixed per-GPU batch), split into
// compute, pure (blocking) communication, other work and communication overlapped with compute;
// the elements each collective moved beside §7.3's analytic ring volumes; and a projection to the
// paper's 8 workers from latency–bandwidth models fitted to collectives timed on the same ranks.
//
// On one 2-core machine K = 4 runs two ranks per core, so its compute time nearly doubles; the ranks talk
// through shared memory, so the fitted α and β describe that transport, not a network.

import Foundation
import Workbench

/// Per-rank batch of every run (the global batch is K times it).
let reductionLocalBatch = 64
let reductionRanks = [1, 2, 4]

let gradientReductionStudy = StudyDefinition(
    study: Study(
        name: "gradient-reduction",
        title: "Per-iteration time of OpenCLIP's and FastCLIP's gradient reductions at K = 1, 2, 4 ranks",
        mirrors: "FastCLIP §7.3 (communication volumes) and §7.4 (the per-iteration time figure)",
        base: ["model": "tiny", "data": "shapes:cc3m-mini", "objective.preset": "fastclip-v3", "lr": 1e-3, "warmup": 100, "threads": 1,
               "evalEvery": 0, "probeCollectives": true],
        factors: [
            Factor("ranks", reductionRanks.map { Level("K=\($0)", ["ranks": .int($0), "batchSize": .int(reductionLocalBatch * $0)]) }),
            Factor("strategy", [Level("OpenCLIP", ["gradientReduction": "openclip"]), Level("FastCLIP", ["gradientReduction": "fastclip"])]),
        ],
        presets: [
            .smoke: smokePreset(["data": "shapes:512", "epochs": 1, "warmup": 2]),
            // Minutes: tiny on 2,048 pairs, 2 epochs; the time breakdown is the last epoch's mean per step.
            .quick: PresetScale(seeds: 1, ["data": "shapes:2048", "epochs": 2, "warmup": 10]),
            // A timing study: the quick preset's runs at 3 seeds (epochs do not change a step's time).
            .paper: PresetScale(
                seeds: 3, ["data": "shapes:2048", "epochs": 2, "warmup": 10],
                regime: "**Regime**: tiny at a per-rank batch of \(reductionLocalBatch) (the paper: 128 per GPU) on 2,048 pairs for 2 epochs, K = 1, 2, 4 ranks of one 2-core machine (the paper: 1, 2, 4 nodes of 4 GPUs); the last epoch's mean per step, 3 seeds. What differs: ranks share a machine and talk through shared memory, not a network."),
        ]),
    figures: { _, _ in
        let bars = ["set key below"]
        return [
            Figure(
                name: "time-breakdown", csv: "breakdown.csv", title: "Per-iteration time (last epoch's mean), per-rank batch \(reductionLocalBatch)",
                xLabel: "", yLabel: "ms per iteration",
                series: [.segment("others", "other_ms"), .segment("pure communication", "communication_ms"), .segment("computation", "compute_ms")],
                extra: bars, style: .stackedBars(labelColumn: "label")),
            Figure(
                name: "communication", csv: "breakdown.csv", title: "Communication per iteration: blocking, and overlapped with compute",
                xLabel: "", yLabel: "ms per iteration",
                series: [.segment("pure communication", "communication_ms"), .segment("overlapped with compute", "overlapped_ms")],
                extra: bars, style: .stackedBars(labelColumn: "label")),
            Figure(
                name: "collectives", csv: "fit.csv", title: "Timed collectives (points) and the latency–bandwidth model fitted at the smallest K (lines)",
                xLabel: "bytes moved per rank", yLabel: "seconds",
                series: fitSeries(), extra: ["set logscale xy", "set format x \"10^{%T}\"", "set format y \"10^{%T}\"", "set key below maxrows 4"]),
            Figure(
                name: "projection", csv: "projection.csv",
                title: "Modelled communication per iteration to K = 8 (computation and totals in projection.md)",
                xLabel: "", yLabel: "ms per iteration",
                series: [
                    .segment("feature collectives: OpenCLIP all-gather + reduce-scatter, FastCLIP all-gather", "feature_ms"),
                    .segment("gradient all-reduce (overlaps the backward)", "allreduce_ms"),
                ],
                extra: bars, style: .stackedBars(labelColumn: "label")),
        ]
    },
    table: ResultsTable(
        caption: "Seconds per iteration (last epoch's mean) by ranks and strategy; the paper's Medium total and pure communication (ms) at 1, 2, 4 nodes beside",
        columns: [
            TableColumn("compute_seconds", "compute (s)"), TableColumn("communication_seconds", "pure comm. (s)", digits: 4),
            TableColumn("overlapped_seconds", "overlapped (s)", digits: 4), TableColumn("other_seconds", "other (s)", digits: 4),
            TableColumn("all_gather_elements", "all-gather n", digits: 0), TableColumn("reduce_scatter_elements", "reduce-scatter n", digits: 0),
            TableColumn("all_reduce_elements", "all-reduce n", digits: 0),
        ],
        paperHeaders: ["total ms (nodes)", "pure comm. ms"],
        paper: [
            "K=1 / OpenCLIP": ["868 (1)", "27"], "K=1 / FastCLIP": ["865 (1)", "26"], "K=2 / OpenCLIP": ["880 (2)", "68"],
            "K=2 / FastCLIP": ["879 (2)", "64"], "K=4 / OpenCLIP": ["925 (4)", "127"], "K=4 / FastCLIP": ["917 (4)", "116"],
        ]),
    claims: [
        Claim(
            "FastCLIP's reduction spends less pure communication per iteration than OpenCLIP's", source: "FastCLIP §7.3 and §7.4 (Medium: 68 vs 64 ms at 2 nodes, 127 vs 116 at 4)",
            parts: [2, 4].map { k in
                .difference("K=\(k) / OpenCLIP", minus: "K=\(k) / FastCLIP", metric: "communication_seconds", label: "K=\(k): OpenCLIP − FastCLIP (s per iteration)",
                            paper: k == 2 ? "+0.004 s" : "+0.011 s", margin: 0)
            })
    ],
    collect: { runs, output in try collectCollectives(runs, output: output) },
    derive: { try deriveGradientReduction(in: $0) },
    timesRuns: true)

/// fit.csv's series: measured points and model lines per collective and rank count.
func fitSeries() -> [Series] {
    RingCollective.allCases.flatMap { kind in
        reductionRanks.filter { $0 > 1 }.flatMap { k -> [Series] in
            let key = "\(kind.rawValue) K=\(k)"
            return [Series(title: key, filterColumn: "series", filterValue: key, x: "bytes_moved", y: "seconds").drawn("points"),
                    Series(title: key + " fit", filterColumn: "series", filterValue: key, x: "bytes_moved", y: "model_seconds").drawn("lines")]
        }
    }
}

/// collectives.csv: every multi-rank run's timed collectives (its run directory's collectives.csv),
/// with the run's variant.
func collectCollectives(_ runs: [(run: PlannedRun, directory: String)], output: String) throws -> [String] {
    var rows: [[Cell]] = []
    for (run, dir) in runs where (run.settings["ranks"]?.intValue ?? 1) > 1 {
        let path = dir + "/collectives.csv"
        for r in try readTable(path) {
            rows.append([.text(run.variant), .text(r["kind"] ?? ""), .number(try number(r, "ranks", in: path)), .number(try number(r, "elements", in: path)),
                         .number(try number(r, "seconds", in: path))])
        }
    }
    return [try write(CSV.render(columns: ["variant", "kind", "ranks", "elements", "seconds"], rows: rows), "collectives.csv", in: output)]
}

/// FastCLIP §7.3's elements moved per rank and iteration by the feature collectives (features
/// and their gradients for OpenCLIP; features, u and ids for FastCLIP v0/v1/v3) and by the
/// gradient all-reduce of P parameters.
func analyticVolume(strategy: String, ranks k: Int, localBatch b: Int, embed d: Int, parameters p: Int) -> (features: Double, allReduce: Double) {
    let k1 = Double(k - 1), b = Double(b), d = Double(d)
    let features = strategy == "OpenCLIP" ? 4 * k1 * b * d : 2 * k1 * b * d + 4 * k1 * b
    return (features, 2 * k1 * Double(p) / Double(k))
}

/// breakdown.csv, volumes.csv + volumes.md, fit.csv, projection.csv + projection.md from
/// summary.csv, provenance.csv and collectives.csv.
func deriveGradientReduction(in directory: String) throws -> [String] {
    let summaryPath = directory + "/summary.csv", provenancePath = directory + "/provenance.csv", collectivesPath = directory + "/collectives.csv"
    // Each variant's summaries at its last epoch.
    var last: [String: [String: Summary]] = [:]
    for r in try StudyOutput(directory: directory).finalSummaries() { last[r.variant] = r.summaries }
    var shape: [String: (b: Int, d: Int, p: Int)] = [:]
    for row in try readTable(provenancePath) {
        guard let v = row["variant"] else { continue }
        shape[v] = (try integer(row, "local_batch", in: provenancePath), try integer(row, "embed_dim", in: provenancePath),
                    try integer(row, "parameters", in: provenancePath))
    }
    let strategies = ["OpenCLIP", "FastCLIP"]
    /// A metric's mean over the seeds at the last epoch.
    func mean(_ row: [String: Summary], _ c: String) throws -> Double {
        guard let m = row[c]?.mean else { throw WorkbenchError.malformed(what: summaryPath, reason: "no column '\(c)_mean'") }
        return m
    }
    func ms(_ row: [String: Summary], _ c: String) throws -> Double { 1000 * (try mean(row, c)) }

    // Measured breakdown and volumes.
    var breakdown: [[Cell]] = [], volumes: [[Cell]] = []
    var md = "**Elements moved per rank and iteration: measured (from the collectives' payloads) against FastCLIP §7.3's ring formulas**\n\n"
    md += "| ranks / strategy | all-gather n | reduce-scatter n | all-reduce n | feature collectives: measured | §7.3 | gradient all-reduce: measured | §7.3 |\n"
    md += "| --- | --- | --- | --- | --- | --- | --- | --- |\n"
    var payload: [String: (allGather: Double, reduceScatter: Double, allReduce: Double)] = [:]
    for k in reductionRanks {
        for s in strategies {
            let v = "K=\(k) / \(s)"
            guard let row = last[v] else { continue }
            let compute = try ms(row, "compute_seconds"), comm = try ms(row, "communication_seconds"), other = try ms(row, "other_seconds")
            let overlapped = try ms(row, "overlapped_seconds")
            breakdown.append([.text("K=\(k) \(s)"), .number(Double(k)), .text(s), .number(compute), .number(comm), .number(other), .number(overlapped),
                              .number(compute + comm + other)])
            guard k > 1, let sh = shape[v] else { continue }
            let ag = try mean(row, "all_gather_elements"), rs = try mean(row, "reduce_scatter_elements"), ar = try mean(row, "all_reduce_elements")
            payload[s] = (ag, rs, ar)
            let measuredFeatures = RingCollective.allGather.moved(elements: ag, ranks: k) + RingCollective.reduceScatter.moved(elements: rs, ranks: k)
            let measuredAllReduce = RingCollective.allReduce.moved(elements: ar, ranks: k)
            let a = analyticVolume(strategy: s, ranks: k, localBatch: sh.b, embed: sh.d, parameters: sh.p)
            volumes.append([.text(v), .number(Double(k)), .text(s), .number(ag), .number(rs), .number(ar), .number(measuredFeatures), .number(a.features),
                            .number(measuredAllReduce), .number(a.allReduce)])
            md += "| \(v) | " + [ag, rs, ar, measuredFeatures, a.features, measuredAllReduce, a.allReduce].map { $0.isFinite ? String(format: "%.0f", $0) : "–" }
                .joined(separator: " | ") + " |\n"
        }
    }
    guard !breakdown.isEmpty else { throw WorkbenchError.malformed(what: summaryPath, reason: "no variant of the form K=<ranks> / <strategy>") }
    if let sh = shape["K=1 / OpenCLIP"] ?? shape.values.first {
        md += "\nb = \(sh.b) per rank, d = \(sh.d), P = \(sh.p). §7.3: OpenCLIP 4(K−1)bd + 2(K−1)P/K; FastCLIP v0/v1/v3 2(K−1)bd + 4(K−1)b + 2(K−1)P/K. "
            + "Measured: (K−1)·n per all-gather and reduce-scatter, 2(K−1)·n/K per all-reduce, n the payload each rank passed.\n"
    }
    var files = [
        try write(CSV.render(columns: ["label", "ranks", "strategy", "compute_ms", "communication_ms", "other_ms", "overlapped_ms", "total_ms"], rows: breakdown),
                  "breakdown.csv", in: directory),
        try write(CSV.render(columns: ["variant", "ranks", "strategy", "all_gather_n", "reduce_scatter_n", "all_reduce_n", "features_measured",
                                       "features_analytic", "allreduce_measured", "allreduce_analytic"], rows: volumes), "volumes.csv", in: directory),
        try write(md, "volumes.md", in: directory),
    ]

    // Latency–bandwidth fits per collective, over every timed rank count.
    var samples: [LatencyBandwidthModel.Sample] = []
    for r in try readTable(collectivesPath) {
        guard let kind = RingCollective(rawValue: r["kind"] ?? "") else {
            throw WorkbenchError.malformed(what: collectivesPath, reason: "unknown collective '\(r["kind"] ?? "")'")
        }
        samples.append(.init(kind: kind, ranks: try integer(r, "ranks", in: collectivesPath), elements: try number(r, "elements", in: collectivesPath),
                             seconds: try number(r, "seconds", in: collectivesPath)))
    }
    // Each collective is fitted on the smallest timed rank count (there every rank has a core of
    // its own, as every worker of the paper's setting has; larger counts on this machine share
    // cores, and their points show how far that departs), and only on the payloads near the ones
    // the projection needs: the timed message sizes per round that bracket the step's (a
    // two-parameter model does not span the switches between Open MPI's protocols, which the timed
    // sizes cross).
    guard let fitRanks = samples.map(\.ranks).filter({ $0 > 1 }).min() else {
        throw WorkbenchError.malformed(what: collectivesPath, reason: "no collective timed over ≥ 2 ranks")
    }
    let parameters = Double(shape.values.first?.p ?? 0)
    let largestPayload: [RingCollective: Double] = [
        .allGather: payload.values.map(\.allGather).max() ?? 0, .reduceScatter: payload.values.map(\.reduceScatter).max() ?? 0,
    ]
    /// Bytes per message round the projection needs, as (smallest, largest).
    func neededRound(_ kind: RingCollective) -> (Double, Double)? {
        switch kind {
        case .allGather, .reduceScatter: largestPayload[kind].flatMap { $0 > 0 ? (4 * $0, 4 * $0) : nil }
        case .allReduce: parameters > 0 ? (4 * parameters / 8, 4 * parameters / 2) : nil
        }
    }
    func round(_ s: LatencyBandwidthModel.Sample) -> Double { s.kind.moved(elements: s.elements, ranks: s.ranks) * 4 / s.kind.steps(ranks: s.ranks) }
    var models: [RingCollective: LatencyBandwidthModel] = [:]
    var windows: [RingCollective: (Double, Double)] = [:]
    var extrapolated: [String] = []  // collectives the step needs beyond the largest timed size
    for kind in RingCollective.allCases {
        let timed = samples.filter { $0.kind == kind && $0.ranks == fitRanks }
        guard let (lo, hi) = neededRound(kind) else { continue }
        // The timed sizes that bracket the needed ones: the largest at or below, the smallest above.
        let sizes = Set(timed.map(round)).sorted()
        guard let first = sizes.first, let last = sizes.last else { continue }
        let a = sizes.last { $0 <= lo } ?? first
        let b = sizes.first { $0 > max(hi, a) } ?? last
        if hi > last { extrapolated.append(kind.rawValue) }
        windows[kind] = (a, b)
        let near = timed.filter { round($0) >= a && round($0) <= b }
        models[kind] = try LatencyBandwidthModel.fit(near)
    }
    var fit: [[Cell]] = []
    // The probe runs once per strategy and rank count; the fit uses all, the figure the medians.
    var grouped: [String: [Double]] = [:]
    var order: [(RingCollective, Int, Double)] = []
    for s in samples {
        let key = "\(s.kind.rawValue) K=\(s.ranks) \(s.elements)"
        if grouped[key] == nil { order.append((s.kind, s.ranks, s.elements)) }
        grouped[key, default: []].append(s.seconds)
    }
    /// The model's time where it was fitted (NaN elsewhere, so the figure draws it only there).
    func modelled(_ kind: RingCollective, _ n: Double, _ k: Int) -> Double {
        guard let m = models[kind], let (lo, hi) = windows[kind] else { return .nan }
        let perRound = kind.moved(elements: n, ranks: k) * 4 / kind.steps(ranks: k)
        return perRound >= lo && perRound <= hi ? m.seconds(kind, elements: n, ranks: k) : .nan
    }
    for (kind, k, n) in order {
        let times = grouped["\(kind.rawValue) K=\(k) \(n)"]!.sorted()
        fit.append([.text("\(kind.rawValue) K=\(k)"), .text(kind.rawValue), .number(Double(k)), .number(n), .number(kind.moved(elements: n, ranks: k) * 4),
                    .number(times[times.count / 2]), .number(modelled(kind, n, k))])
    }
    files.append(try write(CSV.render(columns: ["series", "kind", "ranks", "elements", "bytes_moved", "seconds", "model_seconds"], rows: fit), "fit.csv", in: directory))

    // Projection: compute and other work as measured at K = 1 (a fixed per-rank batch keeps them
    // per rank), communication from the fitted models at the payloads measured at the largest K.
    var projection: [[Cell]] = []
    var pmd = "**Per-iteration time (ms): measured at K ≤ 4, and modelled from K = 1's compute plus fitted collectives**\n\n"
    pmd += "| ranks / strategy | measured total | model: compute + other | feature collectives | gradient all-reduce | model total |\n| --- | --- | --- | --- | --- | --- |\n"
    for k in reductionRanks + [8] {
        for s in strategies {
            guard let base = last["K=1 / \(s)"], let n = payload[s] else { continue }
            let compute = try ms(base, "compute_seconds"), other = try ms(base, "other_seconds")
            let feature = 1000 * ((models[.allGather]?.seconds(.allGather, elements: n.allGather, ranks: k) ?? 0)
                + (models[.reduceScatter]?.seconds(.reduceScatter, elements: n.reduceScatter, ranks: k) ?? 0))
            let allReduce = 1000 * (models[.allReduce]?.seconds(.allReduce, elements: n.allReduce, ranks: k) ?? 0)
            let measured = try last["K=\(k) / \(s)"].map { try ms($0, "compute_seconds") + ms($0, "communication_seconds") + ms($0, "other_seconds") }
            projection.append([.text("K=\(k) \(s)"), .number(Double(k)), .text(s), .number(compute), .number(other),
                               .number(feature), .number(allReduce), .number(compute + other + feature + allReduce), .number(measured ?? .nan)])
            pmd += "| K=\(k) / \(s) | " + (measured.map { String(format: "%.1f", $0) } ?? "–")
                + String(format: " | %.1f | %.2f | %.2f | %.1f |\n", compute + other, feature, allReduce, compute + other + feature + allReduce)
        }
    }
    pmd += "\nFits (t = rounds·α + bytes·β, per collective, on the collectives timed over K = \(fitRanks), where each rank had a core, "
        + "on the timed message sizes that bracket the step's): "
        + RingCollective.allCases.compactMap { kind in
            models[kind].map { String(format: "%@ α = %.2f µs, β = %.3f ns/B", kind.rawValue, $0.alpha * 1e6, $0.beta * 1e9) }
        }.joined(separator: "; ") + ".\n"
    pmd += "\nThe model total adds the whole gradient all-reduce to the step; in training it overlaps the vision tower's backward "
        + "(two buckets), so the total is an upper bound. The measured total leaves the overlapped time out.\n"
    if !extrapolated.isEmpty {
        pmd += "\n**Extrapolated:** the step's \(extrapolated.joined(separator: ", ")) messages are larger than the largest timed one; "
            + "time larger payloads with `clip bench collectives --max-log2`.\n"
    }
    files += [
        try write(CSV.render(columns: ["label", "ranks", "strategy", "compute_ms", "other_ms", "feature_ms", "allreduce_ms", "model_total_ms", "measured_total_ms"],
                             rows: projection), "projection.csv", in: directory),
        try write(pmd, "projection.md", in: directory),
    ]
    return files
}
