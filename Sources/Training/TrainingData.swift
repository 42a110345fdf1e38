// Opening a user's data set for a run (`--data wds:…` / `csv:…`): the checks with progress in
// the log, the samples left out per reason, and their summary in config.json and metrics.csv.

import Data
import Foundation

/// What config.json records of a real data set.
public struct RealDataSummary: Codable, Sendable {
    /// "wds" or "csv".
    public let format: String
    public let shards: Int
    /// Usable pairs.
    public let samples: Int
    /// Pairs left out, by `SkipReason` raw value.
    public let skipped: [String: Int]
    public let badSamplePolicy: String

    public init(_ data: RealImageTextData) {
        if case .webDataset = data.source { format = "wds" } else { format = "csv" }
        shards = data.shardCount
        samples = data.count
        skipped = Dictionary(uniqueKeysWithValues: data.skipped.map { ($0.key.rawValue, $0.value) })
        badSamplePolicy = data.policy.rawValue
    }

    /// metrics.csv's count of left-out pairs per reason (the same in every row: the data set is
    /// checked once, before training).
    public static let metricColumns = SkipReason.allCases.map { "skipped_" + $0.rawValue }
}

enum TrainingData {
    /// Indexes and checks the data set, logging progress on large ones and what was left out.
    static func openReal(_ source: RealDataSource, config: TrainingConfiguration, log: RunLog, isRoot: Bool) throws -> RealImageTextData {
        let started = Date()
        var lastReport = Date()
        let data: RealImageTextData
        do {
            data = try RealImageTextData(source, policy: config.badSamples ?? .skip) { done, total in
                guard isRoot, Date().timeIntervalSince(lastReport) >= 10 else { return }
                lastReport = Date()
                log.say("checking \(config.data): \(done) of \(total) images decoded")
            }
        } catch let e as BadSampleError {
            throw TrainingError.invalid(option: "--data", reason: e.description)
        }
        guard data.count >= 2 else {
            throw TrainingError.invalid(option: "--data", reason: "\(config.data) holds \(data.count) usable pairs (\(data.skippedTotal) left out); at least 2 are needed")
        }
        if isRoot {
            let skipped = data.skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }
            log.say(String(format: "data %@: %d pairs in %d shard(s), checked in %.1f s", config.data, data.count, data.shardCount, Date().timeIntervalSince(started))
                + (skipped.isEmpty ? "" : "; left out \(data.skippedTotal) (\(skipped.joined(separator: ", ")))"))
            for example in data.skippedExamples { log.say("  left out: " + example) }
        }
        return data
    }
}
