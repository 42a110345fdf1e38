// metrics.csv: one header row, plain commas, numeric cells only, floats with round-trip
// precision. Rows are appended and flushed as they come, so a stopped run keeps every finished
// epoch.
//
// An append-only file, so not written through `writeAtomically` (a temporary file and a rename
// per row would rewrite the whole file each time): the header and the rows kept on resume are
// written atomically, then each row is appended in place. A failed append (a full disk) throws,
// naming the file and the system's reason; the rows before it stay.

import Compute
import Foundation

/// An append-only CSV file with a fixed header.
public final class MetricsCSV {
    public let path: String
    public let columns: [String]
    private let handle: FileHandle
    private let syncEveryRow: Bool

    /// Creates (or truncates) `path` and writes the header. With `keepingRowsThroughEpoch` N
    /// (resuming a run), the existing file must have the same header, and its rows whose `epoch`
    /// is at most N are kept; later ones (from an interrupted epoch) are dropped.
    ///
    /// `syncEveryRow` (the default) makes each row durable as it is appended; a per-step file
    /// turns it off and calls `synchronize()` once per epoch instead (rows still reach the file at
    /// once, so a crashed process loses none; only a crashed machine could).
    public convenience init(path: String, columns: [String], keepingRowsThroughEpoch keep: Int? = nil, syncEveryRow: Bool = true) throws {
        try self.init(path: path, columns: columns, keepingRowsThrough: keep.map { ("epoch", $0) }, syncEveryRow: syncEveryRow)
    }

    /// As above, keeping the rows whose `column` is at most `value` (steps.csv keeps its rows
    /// through the global step a run resumes from). The kept rows replace the file atomically
    /// (temporary file, fsync, rename), so a crash while resuming loses nothing.
    public init(path: String, columns: [String], keepingRowsThrough keep: (column: String, value: Int)?, syncEveryRow: Bool = true) throws {
        self.syncEveryRow = syncEveryRow
        precondition(Set(columns).count == columns.count, "MetricsCSV: duplicate column names in \(columns)")
        self.path = path
        self.columns = columns
        var text = columns.joined(separator: ",") + "\n"
        if let keep {
            guard let old = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw TrainingError.io(path: path, reason: "cannot read the metrics of the run being resumed")
            }
            let lines = old.split(separator: "\n", omittingEmptySubsequences: true)
            guard let head = lines.first, head == columns.joined(separator: ","), let keyColumn = columns.firstIndex(of: keep.column) else {
                throw TrainingError.io(path: path, reason: "its header differs from this version's columns; cannot resume into it")
            }
            for line in lines.dropFirst() {
                let cells = line.split(separator: ",", omittingEmptySubsequences: false)
                if cells.count == columns.count, let e = Double(cells[keyColumn]), e <= Double(keep.value) { text += line + "\n" }
            }
        }
        do { try writeAtomically(text, to: path) } catch let e as FileWriteError {
            throw TrainingError.io(path: path, reason: e.problem)
        }
        guard let h = FileHandle(forWritingAtPath: path) else {
            throw TrainingError.io(path: path, reason: "cannot open the metrics file for writing")
        }
        handle = h
        handle.seekToEndOfFile()
    }

    deinit { try? handle.close() }

    /// Appends a row; every column must be present in `values`, and no unknown key may be.
    public func append(_ values: [String: Double]) throws {
        let unknown = Set(values.keys).subtracting(columns)
        precondition(unknown.isEmpty, "MetricsCSV: values for unknown columns \(unknown.sorted())")
        let cells = try columns.map { c -> String in
            guard let v = values[c] else { throw TrainingError.io(path: path, reason: "row lacks column '\(c)'") }
            return Self.format(v)
        }
        do {
            try handle.write(contentsOf: Data((cells.joined(separator: ",") + "\n").utf8))
            if syncEveryRow { try handle.synchronize() }
        } catch {
            throw TrainingError.io(path: path, reason: "cannot append a row: " + Self.reason(error))
        }
    }

    /// Makes every row written so far durable (fsync).
    public func synchronize() throws {
        do { try handle.synchronize() } catch { throw TrainingError.io(path: path, reason: "cannot fsync: " + Self.reason(error)) }
    }

    /// The system's text of a FileHandle error ("No space left on device").
    static func reason(_ error: Error) -> String {
        let e = error as NSError
        if e.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(e.code))) }
        if let underlying = e.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return e.localizedDescription
    }

    /// Integers without a decimal point; other values with the shortest round-trip representation.
    public static func format(_ v: Double) -> String {
        if v.isNaN { return "nan" }
        if v == v.rounded(), abs(v) < 1e15 { return String(Int64(v)) }
        return "\(v)"
    }

    /// Parses a metrics CSV written by this type (tests, resume, studies).
    public static func read(path: String) throws -> (columns: [String], rows: [[Double]]) {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw TrainingError.io(path: path, reason: "cannot read")
        }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true)
        guard let head = lines.first else { throw TrainingError.io(path: path, reason: "empty file") }
        let columns = head.split(separator: ",").map(String.init)
        let rows = try lines.dropFirst().enumerated().map { (i, line) -> [Double] in
            let cells = line.split(separator: ",", omittingEmptySubsequences: false)
            guard cells.count == columns.count else {
                throw TrainingError.io(path: path, reason: "line \(i + 2) has \(cells.count) cells; the header has \(columns.count)")
            }
            return try cells.map { c in
                guard let v = Double(c) else { throw TrainingError.io(path: path, reason: "line \(i + 2): '\(c)' is not a number") }
                return v
            }
        }
        return (columns, rows)
    }
}

/// Errors of the training layer; each names the file or option concerned.
public enum TrainingError: Error, CustomStringConvertible {
    case io(path: String, reason: String)
    case invalid(option: String, reason: String)
    case diverged(step: Int, reason: String)
    /// The run stopped on request (SIGTERM or SIGINT, `--time-limit`, `--stop-after-epochs`) after
    /// writing `checkpoint`; `clip train --resume` continues it exactly. `clip train` exits with
    /// `Preemption.exitStatus` for it.
    case stopped(reason: String, step: Int, checkpoint: String)

    public var description: String {
        switch self {
        case .io(let p, let r): "\(p): \(r)"
        case .invalid(let o, let r): "\(o): \(r)"
        case .diverged(let s, let r): "training diverged at step \(s): \(r)"
        case .stopped(let r, let s, let c): "stopped at step \(s) (\(r)) after writing \(c)"
        }
    }
}
