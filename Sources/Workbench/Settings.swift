// A run's configuration as the study language sees it: values at dotted key paths
// ("objective.loss", "batchSize"), with a canonical text form and a stable hash that names the run
// in the cache. The Workbench never sees model types; the `study` executable maps settings onto the
// trainer's configuration.

import Foundation

/// One setting's value.
public enum ConfigValue: Hashable, Sendable, Codable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): "\(v)"
        case .double(let v): "\(v)"
        case .string(let v): v
        case .bool(let v): v ? "true" : "false"
        }
    }

    /// The canonical JSON fragment: numbers in Swift's shortest round-trip form, strings escaped.
    var canonicalJSON: String {
        switch self {
        case .int(let v): "\(v)"
        case .double(let v): v.isFinite ? "\(v)" : "\"\(v)\""
        case .bool(let v): v ? "true" : "false"
        case .string(let v): jsonQuoted(v)
        }
    }

    public var intValue: Int? { if case .int(let v) = self { v } else { nil } }
    public var doubleValue: Double? {
        switch self {
        case .double(let v): v
        case .int(let v): Double(v)
        default: nil
        }
    }
    public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
}

extension ConfigValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByBooleanLiteral {
    public init(integerLiteral v: Int) { self = .int(v) }
    public init(floatLiteral v: Double) { self = .double(v) }
    public init(stringLiteral v: String) { self = .string(v) }
    public init(booleanLiteral v: Bool) { self = .bool(v) }
}

/// `s` as a JSON string literal (Foundation's escaping; slashes left as they are).
func jsonQuoted(_ s: String) -> String {
    // A String is always a valid JSON fragment, so this cannot fail.
    let data = try! JSONSerialization.data(withJSONObject: s, options: [.fragmentsAllowed, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}

/// Settings at dotted key paths. Later assignments override earlier ones.
public struct Settings: Hashable, Sendable, Codable {
    public private(set) var values: [String: ConfigValue]

    public init(_ values: [String: ConfigValue] = [:]) {
        for key in values.keys { precondition(Self.isValidKey(key), "Settings: invalid key path '\(key)'") }
        self.values = values
    }

    /// Letters, digits, '_' and '-' in dot-separated parts.
    public static func isValidKey(_ key: String) -> Bool {
        let parts = key.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { p in !p.isEmpty && p.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" } }
    }

    public subscript(key: String) -> ConfigValue? {
        get { values[key] }
        set {
            precondition(Self.isValidKey(key), "Settings: invalid key path '\(key)'")
            values[key] = newValue
        }
    }

    /// These settings with `other`'s on top.
    public func merging(_ other: Settings) -> Settings {
        Settings(values.merging(other.values) { _, new in new })
    }

    /// `{"a.b":1,"c":"x"}` with sorted keys and no spaces: equal settings give equal text.
    public var canonicalJSON: String {
        "{" + values.keys.sorted().map { jsonQuoted($0) + ":" + values[$0]!.canonicalJSON }.joined(separator: ",") + "}"
    }

    /// A 16-hex-digit FNV-1a hash of the canonical text and `codeVersion`: the run's cache key.
    public func runID(codeVersion: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in (canonicalJSON + "\n" + codeVersion).utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01b3
        }
        return String(format: "%016llx", h)
    }
}
