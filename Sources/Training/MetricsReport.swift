// Terminal tables of metrics next to their chance levels.

import Data
import Foundation

public enum MetricsReport {
    /// A two- or three-column table: metric, value, and chance when known.
    public static func table(_ metrics: [String: Double], title: String, chance: [String: Double] = [:]) -> String {
        let names = Trainer.evalMetricNames + ["zeroshot_top1", "eval_mean"]  // zeroshot_top1: a real data set's classes
        var lines = [title]
        let width = names.map(\.count).max() ?? 10
        for n in names {
            guard let v = metrics[n], !v.isNaN else { continue }
            var line = n.padding(toLength: width + 2, withPad: " ", startingAt: 0) + String(format: "%6.3f", v)
            if let c = chance[n] { line += String(format: "   [%.3f]", c) }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

extension Trainer {
    /// Chance level of every evaluation metric: 1/classes for zero-shot tasks, k/n for retrieval R@k,
    /// and their mean for eval_mean.
    public static func chanceLevels(world: ShapesWorld, retrievalCount: Int) -> [String: Double] {
        var c: [String: Double] = [:]
        for task in world.zeroShotTasks(examplesPerClass: 1) {
            c["zeroshot_\(task.name)_top1"] = task.chanceAccuracy
        }
        for k in [1, 5, 10] {
            c["retrieval_i2t_r\(k)"] = Double(k) / Double(retrievalCount)
            c["retrieval_t2i_r\(k)"] = Double(k) / Double(retrievalCount)
        }
        c["eval_mean"] = evalMetricNames.compactMap { c[$0] }.reduce(0, +) / Double(evalMetricNames.count)
        return c
    }

    public var chanceLevels: [String: Double] {
        if let heldOut {
            return RealDataEvaluation.chanceLevels(retrievalCount: min(config.retrievalCount, heldOut.data.count), classes: heldOut.classes?.classes.count)
        }
        return world.map { Self.chanceLevels(world: $0, retrievalCount: config.retrievalCount) } ?? [:]
    }
}
