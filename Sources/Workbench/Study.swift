// A study: a base configuration, the factors it varies (each level assigns settings at key paths),
// the seeds, and per preset (smoke, quick, paper) the settings that scale it. Expanding a study
// gives its runs: every combination of levels, times the seeds, each with its full settings and
// its cache id.

import Foundation

/// How big a study runs: `smoke` (seconds, for CI), `quick` (minutes, the default) or `paper`
/// (the paper's regime scaled by its ratios: its epochs, schedule fractions and settings, ≥ 3
/// seeds; about an hour on 2 cores).
public enum StudyPreset: String, CaseIterable, Sendable, Codable {
    case smoke, quick, paper
}

/// One value of a factor: a label for tables and legends, and the settings it assigns.
public struct Level: Sendable, Hashable {
    public let label: String
    public let settings: Settings
    public init(_ label: String, _ settings: [String: ConfigValue]) {
        self.label = label
        self.settings = Settings(settings)
    }
}

/// A factor the study varies, with its levels in presentation order.
public struct Factor: Sendable, Hashable {
    public let name: String
    public let levels: [Level]
    public init(_ name: String, _ levels: [Level]) {
        precondition(!levels.isEmpty, "Factor \(name): no levels")
        precondition(Set(levels.map(\.label)).count == levels.count, "Factor \(name): duplicate level labels")
        self.name = name
        self.levels = levels
    }

    /// A factor over one key path, labelled by the values.
    public static func over(_ key: String, _ values: [ConfigValue], name: String? = nil) -> Factor {
        Factor(name ?? key, values.map { Level($0.description, [key: $0]) })
    }
}

/// What a preset changes: settings over the base, and how many seeds; `regime` says in words what
/// it matches of the paper and what it does not (findings.md opens with it).
public struct PresetScale: Sendable, Hashable {
    public let settings: Settings
    public let seeds: Int
    public let regime: String
    public init(seeds: Int, _ settings: [String: ConfigValue], regime: String = "") {
        precondition(seeds >= 1, "PresetScale: seeds must be ≥ 1")
        self.seeds = seeds
        self.settings = Settings(settings)
        self.regime = regime
    }
}

/// One run of an expanded study.
public struct PlannedRun: Sendable, Hashable {
    /// The levels' labels, one per factor, in factor order.
    public let levels: [String]
    public let seed: Int
    public let settings: Settings
    /// The cache key: a hash of the settings and the code version.
    public let id: String

    /// The variant: the levels joined ("fastclip-v1 / cosine"); runs of one variant differ only in seed.
    public var variant: String { levels.joined(separator: " / ") }
}

public struct Study: Sendable {
    public let name: String
    public let title: String
    /// The paper table or figure it mirrors.
    public let mirrors: String
    public let base: Settings
    public let factors: [Factor]
    public let presets: [StudyPreset: PresetScale]
    /// The key path the seed is written to.
    public let seedKey: String
    /// The folder of the cache its runs go in: the study's name unless studies share runs. A run's
    /// id hashes its whole settings and the code version, so studies whose variants coincide (the
    /// CLIPA studies share a regime and some variants) compute each shared run once.
    public let cacheGroup: String
    /// Settings applied to every run after the preset's and the levels' (`study --precision`):
    /// part of each run's settings, so of its cache id.
    public var overrides: Settings = Settings([:])

    public init(
        name: String, title: String, mirrors: String, base: [String: ConfigValue], factors: [Factor],
        presets: [StudyPreset: PresetScale], seedKey: String = "seed", cacheGroup: String? = nil
    ) {
        precondition(Settings.isValidKey(seedKey), "Study \(name): invalid seed key")
        for p in StudyPreset.allCases { precondition(presets[p] != nil, "Study \(name): no \(p.rawValue) preset") }
        self.name = name
        self.title = title
        self.mirrors = mirrors
        self.base = Settings(base)
        self.factors = factors
        self.presets = presets
        self.seedKey = seedKey
        self.cacheGroup = cacheGroup ?? name
    }

    /// Every combination of levels (the first factor varies slowest) × seeds 0..<n, with
    /// settings = base, then the preset's, then each level's, then the seed. `seeds` overrides the
    /// preset's count.
    public func expand(preset: StudyPreset, seeds: Int? = nil, codeVersion: String) -> [PlannedRun] {
        let scale = presets[preset]!
        let n = seeds ?? scale.seeds
        precondition(n >= 1, "Study.expand: seeds must be ≥ 1")
        var combos: [[Level]] = [[]]
        for f in factors { combos = combos.flatMap { c in f.levels.map { c + [$0] } } }
        var runs: [PlannedRun] = []
        for combo in combos {
            var s = base.merging(scale.settings)
            for level in combo { s = s.merging(level.settings) }
            s = s.merging(overrides)
            for seed in 0..<n {
                var settings = s
                settings[seedKey] = .int(seed)
                runs.append(PlannedRun(levels: combo.map(\.label), seed: seed, settings: settings, id: settings.runID(codeVersion: codeVersion)))
            }
        }
        return runs
    }

    /// The variants in presentation order.
    public var variants: [String] {
        var combos: [[String]] = [[]]
        for f in factors { combos = combos.flatMap { c in f.levels.map { c + [$0.label] } } }
        return combos.map { $0.joined(separator: " / ") }
    }
}
