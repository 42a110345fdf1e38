// Stacked-bar figures, the latency–bandwidth fit and learning-curve speedups.

import Data
import Foundation
import Testing

import Workbench

@Suite("Bars, collective models and speedups")
struct AnalysisTests {
    static let bars = Figure(
        name: "time", csv: "breakdown.csv", title: "Per-iteration time", xLabel: "ranks", yLabel: "ms",
        series: [.segment("compute", "compute_ms"), .segment("communication", "communication_ms")], extra: ["set key below"],
        style: .stackedBars(labelColumn: "label"))

    @Test("A stacked-bar figure's gnuplot script, as text, and its rendering, reproducible to the byte")
    func stackedBars() throws {
        let script = Gnuplot.script(Self.bars)
        let plot = """
            set style data histograms
            set style histogram rowstacked
            set style fill solid 0.85 border -1
            set boxwidth 0.75
            set xtics rotate by -30 left
            set yrange [0:*]
            set key below
            set terminal pngcairo size 960,600 font ",11"
            set output "time.png"
            plot "breakdown.csv" using (column("compute_ms")):xtic(strcol("label")) title "compute", \\
                 "breakdown.csv" using (column("communication_ms")) title "communication"

            """
        #expect(script.contains(plot), "\(script)")
        let dir = NSTemporaryDirectory() + "bars-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try CSV.render(columns: ["label", "compute_ms", "communication_ms"], rows: [[.text("K=1"), .number(800), .number(0)], [.text("K=2"), .number(790), .number(40)]])
            .write(toFile: dir + "/breakdown.csv", atomically: true, encoding: .utf8)
        try script.write(toFile: dir + "/time.gp", atomically: true, encoding: .utf8)
        try Gnuplot.render(scriptFile: "time.gp", in: dir)
        let png = try ImageDecoder.decode(path: dir + "/time.png")
        #expect(png.width == 960 && png.height == 600)
        // Rendering again a second later writes the same PDF bytes (its creation date is fixed).
        let first = try Data(contentsOf: URL(fileURLWithPath: dir + "/time.pdf"))
        Thread.sleep(forTimeInterval: 1.1)
        try Gnuplot.render(scriptFile: "time.gp", in: dir)
        let same = try Data(contentsOf: URL(fileURLWithPath: dir + "/time.pdf")) == first
        #expect(same && first.starts(with: Array("%PDF".utf8)))
    }

    @Test("An unfiltered series plots every row; `drawn` changes its style")
    func unfilteredSeries() {
        let f = Figure(name: "f", csv: "s.csv", title: "t", xLabel: "x", yLabel: "y", series: [Series(title: "a", x: "batch", y: "speedup").drawn("points")])
        #expect(Gnuplot.script(f).contains("plot \"s.csv\" using (column(\"batch\")):(column(\"speedup\")) with points title \"a\""))
    }

    @Test("Ring volumes follow §7.3, and the fit recovers α and β from exact model times")
    func latencyBandwidth() throws {
        #expect(RingCollective.allGather.moved(elements: 100, ranks: 4) == 300)
        #expect(RingCollective.reduceScatter.moved(elements: 100, ranks: 4) == 300)
        #expect(RingCollective.allReduce.moved(elements: 100, ranks: 4) == 150)
        #expect(RingCollective.allReduce.steps(ranks: 4) == 6 && RingCollective.allGather.steps(ranks: 4) == 3)
        let truth = LatencyBandwidthModel(alpha: 3e-6, beta: 2e-10)
        var samples: [LatencyBandwidthModel.Sample] = []
        for k in [2, 4] {
            for e in stride(from: 8, through: 22, by: 2) {
                let n = Double(1 << e)
                samples.append(.init(kind: .allGather, ranks: k, elements: n, seconds: truth.seconds(.allGather, elements: n, ranks: k)))
            }
        }
        let fit = try LatencyBandwidthModel.fit(samples)
        #expect(abs(fit.alpha - truth.alpha) / truth.alpha < 1e-9 && abs(fit.beta - truth.beta) / truth.beta < 1e-9, "\(fit)")
        #expect(truth.seconds(.allReduce, elements: 1e6, ranks: 1) == 0)
        // Brute force: no (α, β) on a grid around the fit has a smaller relative squared error on noisy samples.
        let noisy = samples.enumerated().map { i, s in
            LatencyBandwidthModel.Sample(kind: s.kind, ranks: s.ranks, elements: s.elements, seconds: s.seconds * (1 + 0.1 * sin(Double(i))))
        }
        let best = try LatencyBandwidthModel.fit(noisy)
        func loss(_ m: LatencyBandwidthModel) -> Double {
            noisy.reduce(0) { $0 + pow((m.seconds($1.kind, elements: $1.elements, ranks: $1.ranks) - $1.seconds) / $1.seconds, 2) }
        }
        for da in [-0.02, 0, 0.02] {
            for db in [-0.02, 0, 0.02] where da != 0 || db != 0 {
                #expect(loss(best) < loss(LatencyBandwidthModel(alpha: best.alpha * (1 + da), beta: best.beta * (1 + db))))
            }
        }
        // One payload size cannot separate latency from bandwidth.
        #expect(throws: WorkbenchError.self) { try LatencyBandwidthModel.fit(Array(samples.prefix(1))) }
        let same = [samples[0], samples[0]]
        #expect(throws: WorkbenchError.self) { try LatencyBandwidthModel.fit(same) }
    }

    @Test("Samples to reach a value interpolate between evaluations; the speedup has the paper's meaning and both signs")
    func speedups() throws {
        let baseline: Curve = [(0, 0.1), (100, 0.3), (200, 0.4), (300, 0.5)]
        #expect(abs(LearningCurves.samplesToReach(0.35, baseline)! - 150) < 1e-9)
        #expect(LearningCurves.samplesToReach(0.1, baseline) == 0)
        #expect(LearningCurves.samplesToReach(0.6, baseline) == nil)
        // The candidate reaches the baseline's final 0.5 at 150 samples: 300 / 150 = 2×.
        let faster: Curve = [(0, 0.1), (100, 0.4), (200, 0.6), (300, 0.7)]
        let up = try #require(LearningCurves.speedup(baseline: baseline, candidate: faster))
        #expect(up.target == 0.5 && up.baselineSamples == 300 && up.candidateSamples == 150 && up.speedup == 2)
        // A candidate ending lower (0.35): the baseline gets there at 150, the candidate at 300: 0.5×.
        let slower: Curve = [(0, 0.1), (100, 0.2), (200, 0.3), (300, 0.35)]
        let down = try #require(LearningCurves.speedup(baseline: baseline, candidate: slower))
        #expect(down.target == 0.35 && abs(down.speedup - 0.5) < 1e-12)
        #expect(LearningCurves.speedup(baseline: [], candidate: faster) == nil)
    }
}
