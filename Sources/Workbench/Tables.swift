// The study's tables: a CSV writer and reader (RFC 4180 quoting; numbers in their shortest
// round-trip form, so a value read back is the value written), and aggregation over seeds
// (mean and sample standard deviation per variant and metric).

import Foundation

/// A cell of a study table.
public enum Cell: Hashable, Sendable {
    case number(Double)
    case text(String)

    public var number: Double? { if case .number(let v) = self { v } else { nil } }
    public var text: String {
        switch self {
        case .number(let v): CSV.format(v)
        case .text(let s): s
        }
    }
}

public enum CSV {
    /// Integers without a decimal point, NaN as `nan`, other values in the shortest text that
    /// reads back to the same Double.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v.isInfinite { return v > 0 ? "inf" : "-inf" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// A field quoted when it holds a comma, a quote, a line break or edge spaces (quotes doubled).
    public static func quote(_ field: String) -> String {
        let needs = field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            || field.hasPrefix(" ") || field.hasSuffix(" ")
        return needs ? "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : field
    }

    /// The text of a table: a header line, then one line per row (cells in column order).
    public static func render(columns: [String], rows: [[Cell]]) -> String {
        var out = columns.map(quote).joined(separator: ",") + "\n"
        for row in rows {
            precondition(row.count == columns.count, "CSV.render: a row has \(row.count) cells for \(columns.count) columns")
            out += row.map { cell in
                switch cell {
                case .number(let v): format(v)
                case .text(let s): quote(s)
                }
            }.joined(separator: ",") + "\n"
        }
        return out
    }

    /// Parses RFC 4180 text into the header and rows of raw fields.
    public static func parse(_ text: String) throws -> (columns: [String], rows: [[String]]) {
        var records: [[String]] = []
        var field = "", record: [String] = []
        var quoted = false, atFieldStart = true
        var chars = Array(text)
        if chars.last != "\n" { chars.append("\n") }
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if quoted {
                if c == "\"" {
                    if i + 1 < chars.count && chars[i + 1] == "\"" {
                        field.append("\"")
                        i += 1
                    } else {
                        quoted = false
                    }
                } else {
                    field.append(c)
                }
            } else if c == "\"" && atFieldStart {
                quoted = true
                atFieldStart = false
            } else if c == "," {
                record.append(field)
                field = ""
                atFieldStart = true
            } else if c == "\n" || c == "\r\n" || c == "\r" {
                record.append(field)
                if !(record.count == 1 && record[0].isEmpty) { records.append(record) }
                record = []
                field = ""
                atFieldStart = true
            } else {
                field.append(c)
                atFieldStart = false
            }
            i += 1
        }
        if quoted { throw WorkbenchError.malformed(what: "CSV", reason: "a quoted field is not closed") }
        guard let header = records.first else { throw WorkbenchError.malformed(what: "CSV", reason: "no header line") }
        for (n, r) in records.dropFirst().enumerated() where r.count != header.count {
            throw WorkbenchError.malformed(what: "CSV", reason: "row \(n + 1) has \(r.count) fields; the header has \(header.count)")
        }
        return (header, Array(records.dropFirst()))
    }

    /// Reads a number as `format` writes it.
    public static func number(_ field: String) -> Double? {
        switch field {
        case "nan": .nan
        case "inf": .infinity
        case "-inf": -.infinity
        default: Double(field)
        }
    }
}

/// Errors of the workbench, naming what was wrong.
public enum WorkbenchError: Error, CustomStringConvertible {
    case malformed(what: String, reason: String)
    case missing(what: String)

    public var description: String {
        switch self {
        case .malformed(let w, let r): "\(w): \(r)"
        case .missing(let w): "missing: \(w)"
        }
    }
}

/// Mean and sample standard deviation (n − 1; 0 for one value) of the finite values.
public struct Summary: Hashable, Sendable {
    public let mean: Double
    public let standardDeviation: Double
    public let count: Int

    /// A summary read back from summary.csv.
    public init(mean: Double, standardDeviation: Double, count: Int) {
        self.mean = mean
        self.standardDeviation = standardDeviation
        self.count = count
    }

    public init(_ values: [Double]) {
        let v = values.filter(\.isFinite)
        count = v.count
        guard !v.isEmpty else {
            mean = .nan
            standardDeviation = .nan
            return
        }
        let m = v.reduce(0, +) / Double(v.count)
        mean = m
        standardDeviation = v.count > 1 ? (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot() : 0
    }
}

/// Groups `rows` by `key` (in first-seen order) and summarises each metric over each group.
public func aggregate(_ rows: [[String: Double]], by key: ([String: Double]) -> String, metrics: [String]) -> [(group: String, summaries: [String: Summary])] {
    var order: [String] = []
    var groups: [String: [[String: Double]]] = [:]
    for r in rows {
        let k = key(r)
        if groups[k] == nil { order.append(k) }
        groups[k, default: []].append(r)
    }
    return order.map { k in
        (k, Dictionary(uniqueKeysWithValues: metrics.map { m in (m, Summary(groups[k]!.compactMap { $0[m] })) }))
    }
}

/// A run's CSV (metrics.csv, steps.csv) as rows of cells, header first, without its wall-clock
/// columns (names ending in "seconds"): what two runs of equal numbers share.
public func csvWithoutWallClock(_ path: String) throws -> [[String]] {
    let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
        $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    }
    guard let header = lines.first else { return [] }
    let keep = header.indices.filter { !header[$0].hasSuffix("seconds") }
    return lines.map { row in keep.map { $0 < row.count ? row[$0] : "?" } }
}

/// The rows of a run directory's steps.csv so far (0 before it exists): the steps it has taken.
public func stepRows(_ directory: String) -> Int {
    guard let text = try? String(contentsOfFile: directory + "/steps.csv", encoding: .utf8) else { return 0 }
    return max(0, text.split(separator: "\n").count - 1)
}
