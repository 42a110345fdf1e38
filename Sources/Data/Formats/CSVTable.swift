// CSV/TSV image–caption tables (OpenCLIP's `--dataset-type csv`): RFC 4180 records read in chunks,
// a header naming the columns, an image-path column and a caption column picked by name.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A CSV file that cannot be read as a table: names the file, the line where that is known, and
/// what was expected, as in `captions.tsv, line 7: expected 2 fields (as the header has), found 3`.
public struct CSVError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong.
    public enum Kind: String, Sendable, Equatable {
        /// The file cannot be opened or read.
        case io
        /// The file holds no header row.
        case noHeader
        /// A column the options name is not in the header.
        case missingColumn
        /// A column the options name is in the header more than once.
        case duplicateColumn
        /// A row has more or fewer fields than the header.
        case fieldCount
        /// A quoted field is still open at the end of the file.
        case unterminatedQuote
        /// A quoted field's closing quote is followed by something other than a separator or a line end.
        case textAfterQuote
    }

    /// The CSV file.
    public let path: String
    /// The line (1-based, the header being line 1) where the row starts, if the error is about one.
    public let line: Int?
    /// The kind of problem.
    public let kind: Kind
    /// What was found and what was expected.
    public let problem: String

    public init(path: String, line: Int?, kind: Kind, problem: String) {
        self.path = path
        self.line = line
        self.kind = kind
        self.problem = problem
    }

    /// True for errors about one row (`.fieldCount`, `.textAfterQuote`): the table is past that
    /// row, and `next()` continues with the following one.
    public var canSkipRow: Bool { kind == .fieldCount || kind == .textAfterQuote }

    public var description: String {
        line.map { "\(path), line \($0): \(problem)" } ?? "\(path): \(problem)"
    }
}

/// Which folder relative image paths are taken from.
public enum CSVPathBase: Sendable, Hashable {
    /// The folder that holds the CSV file.
    case csvFolder
    /// The working directory when the table was opened (OpenCLIP's behaviour).
    case workingDirectory
    /// The CSV file's folder when the image exists there, else the working directory.
    case automatic
}

/// How to read a CSV table.
public struct CSVOptions: Sendable, Hashable {
    /// The field separator (one ASCII character): tab by default, as OpenCLIP's `--csv-separator`.
    public var separator: Character
    /// The column of image paths (OpenCLIP's `--csv-img-key`, default "filepath").
    public var imageColumn: String
    /// The column of captions (OpenCLIP's `--csv-caption-key`, default "title").
    public var captionColumn: String
    /// Where relative image paths start from; `.automatic` by default.
    public var relativeTo: CSVPathBase
    /// Whether `"` quotes fields (RFC 4180); when false it is an ordinary character.
    public var quoting: Bool

    public init(separator: Character = "\t", imageColumn: String = "filepath", captionColumn: String = "title",
                relativeTo: CSVPathBase = .automatic, quoting: Bool = true) {
        precondition(separator.isASCII && separator != "\"" && separator != "\n" && separator != "\r",
                     "CSVOptions: the separator must be one ASCII character other than a quote or a line end, got \(separator.debugDescription)")
        self.separator = separator
        self.imageColumn = imageColumn
        self.captionColumn = captionColumn
        self.relativeTo = relativeTo
        self.quoting = quoting
    }
}

/// An image–caption row.
public struct CSVSample: Sendable, Hashable {
    /// The line where the row starts (the header is line 1).
    public let line: Int
    /// The image path, resolved (see `CSVTable.resolve(imagePath:)`).
    public let imagePath: String
    /// The caption, as in the file.
    public let caption: String

    public init(line: Int, imagePath: String, caption: String) {
        self.line = line
        self.imagePath = imagePath
        self.caption = caption
    }
}

/// A row whose fields are there but whose image path or caption cannot be used.
public struct CSVBadRow: Sendable, Hashable {
    /// The line where the row starts.
    public let line: Int
    /// Why it cannot be used, e.g. "the caption is not valid UTF-8 (byte 0xFF at offset 4)".
    public let reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }
}

/// A data row of a table: usable, or not, with the reason.
public enum CSVRow: Sendable, Hashable {
    case sample(CSVSample)
    case bad(CSVBadRow)
}

/// Reads an image–caption table from a CSV or TSV file, row by row.
///
/// Format (RFC 4180, with a configurable separator):
/// - Rows end with LF or CRLF. A UTF-8 byte-order mark at the start is skipped. Empty lines are
///   skipped (they still count in line numbers).
/// - The first row is the header: the column names. Every other row must have as many fields.
/// - A field that starts with `"` is quoted: it ends at the next lone `"`, `""` inside stands for
///   one `"`, and separators, CR and LF inside are part of the field. After the closing quote must
///   come a separator or the end of the row. A `"` inside an unquoted field is an ordinary character.
///
/// Opening the table reads the header and fails (`CSVError`) when the image or caption column is
/// missing or repeated. Then `next()` gives the rows:
/// - a wrong field count or text after a closing quote is thrown with the row's line; the table is
///   past the row and `next()` can go on (`canSkipRow`);
/// - a quote still open at the end of the file is thrown, and ends the table;
/// - an empty image path, an image path or caption that is not valid UTF-8, and an empty or
///   whitespace-only caption come back as `.bad` rows, for the caller to skip and count.
///
/// Image paths: absolute paths are kept; relative ones are joined to the folder `relativeTo`
/// chooses. The default, `.automatic`, takes the CSV file's folder when the file exists there,
/// else the working directory (both made absolute when the table is opened).
public final class CSVTable {
    /// The CSV file.
    public let path: String
    /// The options it is read with.
    public let options: CSVOptions
    /// The column names of the header.
    public let columns: [String]
    /// The position of the image-path column in `columns`.
    public let imageColumnIndex: Int
    /// The position of the caption column in `columns`.
    public let captionColumnIndex: Int
    /// The CSV file's folder, absolute.
    public let folder: String
    /// The working directory when the table was opened.
    public let workingDirectory: String

    private var records: CSVRecordReader

    /// Opens the table at `path` and reads its header.
    public init(path: String, options: CSVOptions = CSVOptions()) throws(CSVError) {
        self.path = path
        self.options = options
        do {
            records = CSVRecordReader(file: try ChunkedFile(path: path), separator: options.separator.asciiValue!,
                                      quoting: options.quoting)
        } catch {
            throw CSVError(path: path, line: nil, kind: .io, problem: error.problem)
        }
        workingDirectory = CSVTable.currentDirectory()
        if let slash = path.lastIndex(of: "/") {
            let parent = slash == path.startIndex ? "/" : String(path[..<slash])
            folder = parent.hasPrefix("/") ? parent : CSVTable.join(workingDirectory, parent)
        } else {
            folder = workingDirectory
        }

        try records.skipByteOrderMark()
        guard let header = try records.next() else {
            throw CSVError(path: path, line: nil, kind: .noHeader,
                           problem: "the file is empty: expected a header row naming the columns")
        }
        let columns = header.fields.map { String(decoding: $0, as: UTF8.self) }
        self.columns = columns

        func column(_ name: String, _ role: String) throws(CSVError) -> Int {
            let matches = columns.indices.filter { columns[$0] == name }
            let found = columns.map { "\"\($0)\"" }.joined(separator: ", ")
            let separatorName = options.separator == "\t" ? "tab" : "\"\(options.separator)\""
            if matches.isEmpty {
                throw CSVError(path: path, line: 1, kind: .missingColumn,
                               problem: "no \(role) column \"\(name)\" in the header; the columns found (separator \(separatorName)) are \(found)")
            }
            if matches.count > 1 {
                throw CSVError(path: path, line: 1, kind: .duplicateColumn,
                               problem: "the \(role) column \"\(name)\" appears \(matches.count) times in the header, as columns \(matches.map { String($0 + 1) }.joined(separator: ", "))")
            }
            return matches[0]
        }
        imageColumnIndex = try column(options.imageColumn, "image")
        captionColumnIndex = try column(options.captionColumn, "caption")
    }

    /// The next data row, nil after the last.
    public func next() throws(CSVError) -> CSVRow? {
        guard let record = try records.next() else { return nil }
        guard record.fields.count == columns.count else {
            throw CSVError(path: path, line: record.line, kind: .fieldCount,
                           problem: "expected \(columns.count) fields (as the header has), found \(record.fields.count)")
        }
        func bad(_ reason: String) -> CSVRow { .bad(CSVBadRow(line: record.line, reason: reason)) }
        let pathBytes = record.fields[imageColumnIndex]
        let captionBytes = record.fields[captionColumnIndex]
        if pathBytes.isEmpty { return bad("the image path is empty") }
        if let at = CSVTable.firstInvalidUTF8(pathBytes) {
            return bad("the image path is not valid UTF-8 (byte \(CSVTable.hex(pathBytes[at])) at offset \(at))")
        }
        if let at = CSVTable.firstInvalidUTF8(captionBytes) {
            return bad("the caption is not valid UTF-8 (byte \(CSVTable.hex(captionBytes[at])) at offset \(at))")
        }
        let caption = String(decoding: captionBytes, as: UTF8.self)
        if caption.isEmpty { return bad("the caption is empty") }
        if caption.allSatisfy(\.isWhitespace) { return bad("the caption is only whitespace") }
        let imagePath = resolve(imagePath: String(decoding: pathBytes, as: UTF8.self))
        return .sample(CSVSample(line: record.line, imagePath: imagePath, caption: caption))
    }

    /// Every remaining row, split into usable samples and bad rows; throws the first `CSVError`.
    public func readAll() throws(CSVError) -> (samples: [CSVSample], badRows: [CSVBadRow]) {
        var samples: [CSVSample] = []
        var badRows: [CSVBadRow] = []
        while let row = try next() {
            switch row {
            case .sample(let sample): samples.append(sample)
            case .bad(let bad): badRows.append(bad)
            }
        }
        return (samples, badRows)
    }

    /// `imagePath` as the rows give it: absolute paths unchanged, relative ones joined to the folder
    /// `options.relativeTo` picks.
    public func resolve(imagePath: String) -> String {
        if imagePath.hasPrefix("/") { return imagePath }
        switch options.relativeTo {
        case .csvFolder: return CSVTable.join(folder, imagePath)
        case .workingDirectory: return CSVTable.join(workingDirectory, imagePath)
        case .automatic:
            let beside = CSVTable.join(folder, imagePath)
            var info = stat()
            return stat(beside, &info) == 0 ? beside : CSVTable.join(workingDirectory, imagePath)
        }
    }

    // MARK: - Helpers

    /// The offset of the first byte that does not belong to a valid UTF-8 sequence, nil if all do
    /// (no overlong forms, surrogates, or code points above U+10FFFF).
    static func firstInvalidUTF8(_ bytes: [UInt8]) -> Int? {
        var i = 0
        while i < bytes.count {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            // The sequence length, and the range of the second byte (narrower after E0, ED, F0, F4).
            let length: Int
            let secondRange: ClosedRange<UInt8>
            switch lead {
            case 0xC2...0xDF: (length, secondRange) = (2, 0x80...0xBF)
            case 0xE0: (length, secondRange) = (3, 0xA0...0xBF)
            case 0xED: (length, secondRange) = (3, 0x80...0x9F)
            case 0xE1...0xEF: (length, secondRange) = (3, 0x80...0xBF)
            case 0xF0: (length, secondRange) = (4, 0x90...0xBF)
            case 0xF4: (length, secondRange) = (4, 0x80...0x8F)
            case 0xF1...0xF3: (length, secondRange) = (4, 0x80...0xBF)
            default: return i
            }
            guard i + length <= bytes.count else { return i }
            guard secondRange.contains(bytes[i + 1]) else { return i }
            for k in 2..<length where !(0x80...0xBF).contains(bytes[i + k]) { return i }
            i += length
        }
        return nil
    }

    static func hex(_ byte: UInt8) -> String {
        "0x" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
    }

    static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// The records of a CSV file (the format rules are `CSVTable`'s), read in chunks of 64 KiB.
struct CSVRecordReader {
    let file: ChunkedFile
    let separator: UInt8
    let quoting: Bool
    private var chunk: [UInt8] = []
    private var index = 0
    private var atEnd = false
    /// The line the next byte is on.
    private var line = 1
    private var finished = false

    init(file: ChunkedFile, separator: UInt8, quoting: Bool) {
        self.file = file
        self.separator = separator
        self.quoting = quoting
    }

    private enum FieldState { case start, unquoted, quoted, afterQuote }

    /// Skips a UTF-8 byte-order mark at the start of the file.
    mutating func skipByteOrderMark() throws(CSVError) {
        try refill()
        if chunk.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    /// The next record and the line it starts on; nil at the end of the file. Empty lines are passed.
    mutating func next() throws(CSVError) -> (line: Int, fields: [[UInt8]])? {
        if finished { return nil }
        let quote = UInt8(ascii: "\"")
        let newline = UInt8(ascii: "\n")
        let carriageReturn = UInt8(ascii: "\r")
        while true {
            let startLine = line
            var fields: [[UInt8]] = []
            var field: [UInt8] = []
            var state = FieldState.start
            var firstFieldQuoted = false
            var quoteLine = 0
            var strayField: Int?
            var sawByte = false

            func endField() {
                if state == .unquoted, field.last == carriageReturn { field.removeLast() }
                fields.append(field)
                field = []
                state = .start
            }

            record: while true {
                guard let byte = try nextByte() else {
                    if state == .quoted {
                        finished = true
                        throw CSVError(path: file.path, line: startLine, kind: .unterminatedQuote,
                                       problem: "the quoted field \(fields.count + 1) opened on line \(quoteLine) is not closed before the end of the file")
                    }
                    if !sawByte { return nil }
                    endField()
                    break record
                }
                sawByte = true
                if state == .start {
                    if quoting && byte == quote {
                        state = .quoted
                        quoteLine = line
                        if fields.isEmpty { firstFieldQuoted = true }
                        continue
                    }
                    state = .unquoted
                }
                switch state {
                case .unquoted:
                    if byte == separator {
                        endField()
                    } else if byte == newline {
                        line += 1
                        endField()
                        break record
                    } else {
                        field.append(byte)
                    }
                case .quoted:
                    if byte == quote {
                        if try peekByte() == quote {
                            index += 1
                            field.append(quote)
                        } else {
                            state = .afterQuote
                        }
                    } else {
                        if byte == newline { line += 1 }
                        field.append(byte)
                    }
                case .afterQuote:
                    if byte == separator {
                        endField()
                    } else if byte == newline {
                        line += 1
                        endField()
                        break record
                    } else if byte == carriageReturn, try peekByte() == newline {
                        continue
                    } else if strayField == nil {
                        strayField = fields.count + 1
                    }
                case .start:
                    break
                }
            }
            if fields.count == 1, fields[0].isEmpty, !firstFieldQuoted { continue }  // an empty line
            if let stray = strayField {
                throw CSVError(path: file.path, line: startLine, kind: .textAfterQuote,
                               problem: "field \(stray) has text after its closing quote; expected a separator or the end of the row (write a quote inside a quoted field as \"\")")
            }
            return (startLine, fields)
        }
    }

    private mutating func nextByte() throws(CSVError) -> UInt8? {
        if index == chunk.count {
            if atEnd { return nil }
            try refill()
            if chunk.isEmpty { return nil }
        }
        index += 1
        return chunk[index - 1]
    }

    private mutating func peekByte() throws(CSVError) -> UInt8? {
        if index == chunk.count {
            if atEnd { return nil }
            try refill()
            if chunk.isEmpty { return nil }
        }
        return chunk[index]
    }

    private mutating func refill() throws(CSVError) {
        do { chunk = try file.read(1 << 16) } catch {
            finished = true
            throw CSVError(path: file.path, line: line, kind: .io, problem: error.problem)
        }
        index = 0
        if chunk.isEmpty { atEnd = true }
    }
}
