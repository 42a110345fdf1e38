import Collective
import Compute
import Foundation
import Layers
import Objectives
import Testing
import TestSupport

/// Results of one rank, written by its thread only (one box per rank: threads never mutate a
/// shared array).
final class RankBox: @unchecked Sendable {
    var dx: [Double] = [], dy: [Double] = []
    var stats: [ObjectiveStepStatistics] = []
    var tables: [(name: String, values: [Double])] = []
}

@Suite("Distributed objectives against the single-process closed forms", .serialized)
struct DistributedObjectiveTests {
    static let cases: [(String, GradientReduction, Int)] = [
        "openclip", "fastclip-v1", "fastclip-v0", "fastclip-v3", "fastclip-v2", "fastclip-v3 exact", "fastclip-v2 unshifted",
    ].flatMap { preset in
        GradientReduction.allCases.flatMap { reduction in [1, 2, 4].map { (preset, reduction, $0) } }
    }

    @Test("K ranks (threads) give the closed form's feature gradients, statistics and per-sample tables on every rank", arguments: cases)
    func matchesSingleProcess(preset: String, reduction: GradientReduction, ranks: Int) throws {
        Threads.set(1)
        let bGlobal = 8, e = 5, count = 20, steps = 2
        // "exact": τ-derivative weight 0.5; "unshifted": ε on the true scale.
        var config = try #require(ObjectiveConfiguration.preset(String(preset.split(separator: " ")[0])))
        if preset.hasSuffix("exact") { config.tauDerivativeWeight = 0.5 }
        if preset.hasSuffix("unshifted") { config.epsilonScale = .unshifted }
        config.epsilon = 1e-6
        config.gammaDecayEpochs = 2
        let adam = AdamHyperparameters(beta1: 0.9, beta2: 0.98, epsilon: 1e-6)
        let logitScale = Foundation.log(1 / 0.2)
        // The same features and ids for every step of both runs.
        let x = (0..<steps).map { randomArray(bGlobal * e, seed: UInt64(7 + $0), stream: "x") }
        let y = (0..<steps).map { randomArray(bGlobal * e, seed: UInt64(7 + $0), stream: "y") }
        let ids = (0..<steps).map { CounterRNG(seed: UInt64(3 + $0), streamNamed: "ids").permutation(count).prefix(bGlobal).map { $0 } }

        // Reference: one process, closed form (epoch s: γ = 1 then the schedule's).
        var refDX: [[Double]] = [], refDY: [[Double]] = [], refStats: [ObjectiveStepStatistics] = []
        let reference = try ContrastiveObjective<Double>(config, batch: bGlobal, dimension: e, datasetCount: count, epochs: 4, adam: adam)
        for s in 0..<steps {
            var dx = [Double](repeating: 0, count: bGlobal * e), dy = dx
            refStats.append(reference.step(imageFeatures: x[s], textFeatures: y[s], ids: ids[s], logitScale: logitScale, epoch: s,
                                           dImageFeatures: &dx, dTextFeatures: &dy))
            refDX.append(dx)
            refDY.append(dy)
        }

        let boxes = (0..<ranks).map { _ in RankBox() }
        let b = bGlobal / ranks
        let frozen = config
        try LocalGroup(size: ranks).run { r, comm in
            let objective = try DistributedObjective<Double>(
                frozen, reduction: reduction, communicator: comm, globalBatch: bGlobal, dimension: e, datasetCount: count, epochs: 4, adam: adam)
            for s in 0..<steps {
                var dx = [Double](repeating: 0, count: b * e), dy = dx
                let xs = Array(x[s][(r * b * e)..<((r + 1) * b * e)]), ys = Array(y[s][(r * b * e)..<((r + 1) * b * e)])
                let stats = try objective.step(
                    imageFeatures: xs, textFeatures: ys, ids: ids[s][(r * b)..<((r + 1) * b)], logitScale: logitScale, epoch: s,
                    dImageFeatures: &dx, dTextFeatures: &dy)
                if s == steps - 1 {
                    boxes[r].dx = dx
                    boxes[r].dy = dy
                }
                boxes[r].stats.append(stats)
            }
            boxes[r].tables = objective.state?.tables() ?? []
        }
        let dx = boxes.flatMap(\.dx), dy = boxes.flatMap(\.dy)
        #expect(scaledMaxError(dx, refDX[steps - 1]) < 1e-12, "\(describeMismatch(dx, refDX[steps - 1], label: "image"))")
        #expect(scaledMaxError(dy, refDY[steps - 1]) < 1e-12, "\(describeMismatch(dy, refDY[steps - 1], label: "text"))")
        for r in 0..<ranks {
            for s in 0..<steps {
                let a = boxes[r].stats[s], c = refStats[s]
                for (name, u, v) in [("objective", a.objective, c.objective), ("surrogate", a.surrogate, c.surrogate),
                                     ("batch", a.batchContrastive, c.batchContrastive), ("τ", a.temperature, c.temperature),
                                     ("ds", a.logitScaleGradient, c.logitScaleGradient)] {
                    #expect(abs(u - v) <= 1e-12 * max(1, abs(v)), "rank \(r) step \(s) \(name): \(u) vs \(v)")
                }
            }
            // Every rank's tables equal the single process's.
            let mine = boxes[r].tables, ref = reference.state?.tables() ?? []
            #expect(mine.map(\.name) == ref.map(\.name))
            for (m, f) in zip(mine, ref) {
                #expect(scaledMaxError(m.values, f.values, floor: 1e-30) < 1e-12, "rank \(r) table \(m.name)")
            }
        }
    }

    @Test("A global batch that does not split over the ranks is refused")
    func uneven() throws {
        try LocalGroup(size: 3).run { _, comm in
            #expect(throws: ObjectiveError.self) {
                try DistributedObjective<Float>(
                    ObjectiveConfiguration.preset("fastclip-v3")!, reduction: .fastclip, communicator: comm, globalBatch: 8, dimension: 4,
                    datasetCount: 10, epochs: 1, adam: .vit)
            }
        }
    }
}
