// The one parser of tar headers, shared by TarReader (which reads members' data) and TarIndex
// (which seeks over it): header blocks, checksums, numeric fields, and the GNU and PAX extended
// headers that rename or resize the member after them.

/// One archive entry as its headers describe it, extended headers applied.
struct TarEntry {
    /// The member's path: PAX `path`, else a GNU long name, else the global PAX `path`, else the
    /// header's ustar `prefix` + "/" + `name` (or `name` alone).
    var name: String
    /// The type flag (a v7 name ending in "/" is given `5`, a directory).
    var typeflag: UInt8
    /// The count of data bytes after the header(s) (0 for types that carry no data).
    var size: Int
    /// Where the entry's first header block starts (its first extended header, if any).
    var headerOffset: Int
    /// Where its data starts.
    var dataOffset: Int
    /// Whether the headers describe a GNU sparse file (old 'S' type or PAX `GNU.sparse.*` records).
    var isSparse: Bool

    /// A regular file: type '0', NUL (old tars) or '7' (contiguous file).
    var isRegularFile: Bool { !isSparse && (typeflag == UInt8(ascii: "0") || typeflag == 0 || typeflag == UInt8(ascii: "7")) }
}

/// Tar header layout and rules.
///
/// An archive is a sequence of 512-byte blocks. Each member is a header block followed by its data,
/// padded with zeros to a whole block. The header fields used here (offsets in bytes):
/// `name` 0..<100, `size` 124..<136, `chksum` 148..<156, `typeflag` 156, `magic` 257..<263,
/// `prefix` 345..<500 (POSIX ustar only, magic "ustar\0"). Text fields end at their first NUL.
///
/// - Numeric fields are octal ASCII digits, optionally surrounded by spaces and ended by NUL or
///   space; an empty field is 0. A field whose first byte has its high bit set is base-256 (GNU):
///   the remaining bytes are a big-endian binary number (bit 0x40 of the first byte is the sign).
/// - The checksum is the sum of the header's 512 bytes, the checksum field counted as 8 spaces.
///   Both the unsigned sum and the signed one (bytes as Int8, as old Sun and NeXT tars made it) are
///   accepted.
/// - Type flags: '0', NUL, '7' regular files; '1' hard link, '2' symbolic link, '3' '4' devices,
///   '5' directory, '6' FIFO carry no data (whatever their size field says, as Python's tarfile
///   reads them); GNU 'L' and 'K' carry the long name or long link name of the next header; PAX 'x'
///   carries records for the next header, 'g' records for every following header; GNU 'S' is a
///   sparse file; other types are skipped over their size.
/// - PAX records are "<length> <key>=<value>\n", the length counting the whole record. Used keys:
///   `path` (the member's name) and `size` (decimal, overriding the header's). An 'x' record beats a
///   'g' record of the same key; a 'g' record with an empty value deletes that key.
/// - The archive ends at the first all-zero header block (POSIX writes two; what follows the first
///   is not read), or at the end of the file on a block boundary where a header would start.
struct TarHeaderParser {
    /// The shard being read.
    let file: ChunkedFile
    /// The records of the PAX global headers met so far.
    private var globalRecords: [String: String] = [:]
    /// The entry last returned, whose data and padding the file may not have passed yet.
    private var pending: TarEntry?
    /// True once the archive's end is reached or an error has made the rest unreadable.
    private(set) var finished = false

    /// Extended-header data larger than this is taken as damage, not read.
    static let maximumExtendedHeader = 1 << 24

    init(file: ChunkedFile) {
        self.file = file
    }

    var shard: String { file.path }

    /// The next entry, the file then positioned at its data; nil at the end of the archive.
    /// Whatever of the previous entry's data the caller did not read is skipped first.
    mutating func next() throws(TarError) -> TarEntry? {
        if finished { return nil }
        if let previous = pending {
            pending = nil
            try pass(previous)
            if finished { return nil }
        }
        var longName: String?
        var local: [String: String] = [:]
        var chainStart: Int?
        var chainName: String? { local["path"] ?? longName }
        while true {
            let at = file.position
            let block = try read(512, member: chainName, at: at)
            if block.isEmpty {
                finished = true
                if let start = chainStart {
                    throw failure(.truncatedHeader, chainName, start, continuation: .endOfShard,
                                  "the file ends after an extended header, at byte \(at), before the header it applies to")
                }
                return nil
            }
            if block.count < 512 {
                throw failure(.truncatedHeader, chainName, chainStart ?? at, continuation: .endOfShard,
                              "a header block needs 512 bytes, the file ends \(block.count) bytes after byte \(at)")
            }
            if block.allSatisfy({ $0 == 0 }) {
                finished = true
                if let start = chainStart {
                    throw failure(.truncatedHeader, chainName, start, continuation: .endOfShard,
                                  "an extended header is followed by the end-of-archive block at byte \(at), not by the header it applies to")
                }
                return nil
            }
            try verifyChecksum(block, at: at)
            let typeflag = block[156]
            let fieldSize = try number(block, 124..<136, field: "size", member: chainName, at: at)
            // A global header belongs to no member: the member's own chain starts after it.
            if typeflag != UInt8(ascii: "g") { chainStart = chainStart ?? at }

            switch typeflag {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                let data = try extendedData(size: fieldSize, at: at, member: chainName, what: "GNU long name")
                if typeflag == UInt8(ascii: "L") { longName = TarHeaderParser.text(TarHeaderParser.terminated(data[...])) }
                continue
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                let data = try extendedData(size: fieldSize, at: at, member: chainName, what: "PAX extended header")
                let records = try paxRecords(data, at: at, member: chainName)
                for (key, value) in records {
                    if typeflag == UInt8(ascii: "x") {
                        local[key] = value
                    } else if value.isEmpty {
                        globalRecords[key] = nil
                    } else {
                        globalRecords[key] = value
                    }
                }
                continue
            default:
                break
            }

            var name = TarHeaderParser.text(TarHeaderParser.terminated(block[0..<100]))
            let isUstar = block[257..<263].elementsEqual("ustar\0".utf8)
            if isUstar {
                let prefix = TarHeaderParser.terminated(block[345..<500])
                if !prefix.isEmpty { name = TarHeaderParser.text(prefix) + "/" + name }
            }
            if let path = globalRecords["path"] { name = path }
            if let long = longName { name = long }
            if let path = local["path"] { name = path }

            var size = fieldSize
            if let text = local["size"] ?? globalRecords["size"] {
                guard let value = Int(text), value >= 0 else {
                    finished = true
                    throw failure(.badExtendedHeader, name, chainStart!, continuation: .restOfShardLost,
                                  "the PAX record size=\"\(text)\" is not a non-negative decimal number")
                }
                size = value
            }

            var type = typeflag
            if (type == 0 || type == UInt8(ascii: "0")) && name.hasSuffix("/") { type = UInt8(ascii: "5") }
            var sparse = local.keys.contains { $0.hasPrefix("GNU.sparse.") }
            if type == UInt8(ascii: "S") {
                sparse = true
                // Old GNU sparse headers: byte 482 flags extension blocks, each flagging the next at 504.
                var extended = block[482] != 0
                while extended {
                    let extensionAt = file.position
                    let extra = try read(512, member: name, at: extensionAt)
                    if extra.count < 512 {
                        throw failure(.truncatedHeader, name, chainStart!, continuation: .endOfShard,
                                      "a sparse-map block needs 512 bytes at byte \(extensionAt), the file ends \(extra.count) bytes later")
                    }
                    extended = extra[504] != 0
                }
            }
            let carriesNoData = (UInt8(ascii: "1")...UInt8(ascii: "6")).contains(type)
            let entry = TarEntry(name: name, typeflag: type, size: carriesNoData ? 0 : size,
                                 headerOffset: chainStart!, dataOffset: file.position, isSparse: sparse)
            pending = entry
            return entry
        }
    }

    /// Marks the archive as ended by a cut in `entry`'s data, `present` bytes of it being in the
    /// file, and returns the error to throw.
    mutating func truncated(_ entry: TarEntry, present: Int) -> TarError {
        finished = true
        pending = nil
        return failure(.truncatedData, entry.name, entry.headerOffset, continuation: .endOfShard,
                       "\(entry.size) bytes of data declared at byte \(entry.dataOffset), the file ends after \(present) of them")
    }

    /// Marks the archive as unreadable from here on (after an I/O error of the caller).
    mutating func end() {
        finished = true
        pending = nil
    }

    /// An error about this shard.
    func failure(_ kind: TarError.Kind, _ member: String?, _ offset: Int, continuation: TarError.Continuation,
                 _ reason: String) -> TarError {
        TarError(shard: shard, member: member, offset: offset, kind: kind, reason: reason, continuation: continuation)
    }

    // MARK: - Steps

    /// Moves past `entry`'s data and padding. A cut in the data is a truncated member; a cut in
    /// the padding only ends the archive (the data is whole).
    private mutating func pass(_ entry: TarEntry) throws(TarError) {
        let dataEnd = entry.dataOffset + entry.size
        if file.position < dataEnd {
            let wanted = dataEnd - file.position
            if try skip(wanted, member: entry.name) < wanted {
                throw truncated(entry, present: file.position - entry.dataOffset)
            }
        }
        let paddedEnd = entry.dataOffset + TarHeaderParser.padded(entry.size)
        if file.position < paddedEnd {
            let wanted = paddedEnd - file.position
            if try skip(wanted, member: entry.name) < wanted { finished = true }
        }
    }

    /// The data of an extended header ('L', 'K', 'x', 'g'), its padding passed.
    private mutating func extendedData(size: Int, at: Int, member: String?, what: String) throws(TarError) -> [UInt8] {
        guard size <= TarHeaderParser.maximumExtendedHeader else {
            finished = true
            throw failure(.badExtendedHeader, member, at, continuation: .restOfShardLost,
                          "a \(what) of \(size) bytes (more than \(TarHeaderParser.maximumExtendedHeader) is taken as damage)")
        }
        let dataAt = file.position
        let data = try read(size, member: member, at: dataAt)
        if data.count < size {
            finished = true
            throw failure(.truncatedHeader, member, at, continuation: .endOfShard,
                          "a \(what) declares \(size) bytes at byte \(dataAt), the file ends after \(data.count)")
        }
        let padding = TarHeaderParser.padded(size) - size
        if padding > 0 { _ = try skip(padding, member: member) }
        return data
    }

    /// The records of a PAX extended header, in order.
    private mutating func paxRecords(_ data: [UInt8], at: Int, member: String?) throws(TarError) -> [(String, String)] {
        var records: [(String, String)] = []
        var i = 0
        while i < data.count {
            if data[i] == 0 {
                if data[i...].allSatisfy({ $0 == 0 }) { break }
            }
            var length = 0
            var j = i
            while j < data.count, data[j] >= UInt8(ascii: "0"), data[j] <= UInt8(ascii: "9"), length <= data.count {
                length = length * 10 + Int(data[j] - UInt8(ascii: "0"))
                j += 1
            }
            let valid = j > i && j < data.count && data[j] == UInt8(ascii: " ") && length > j - i + 1
                && i + length <= data.count && data[i + length - 1] == UInt8(ascii: "\n")
            guard valid, let equals = data[(j + 1)..<(i + length - 1)].firstIndex(of: UInt8(ascii: "=")) else {
                finished = true
                let shown = TarHeaderParser.text(data[i..<min(data.count, i + 40)])
                throw failure(.badExtendedHeader, member, at, continuation: .restOfShardLost,
                              "expected a record \"<length> <key>=<value>\\n\" at byte \(i) of its data, found \"\(shown)\"")
            }
            let key = TarHeaderParser.text(data[(j + 1)..<equals])
            let value = TarHeaderParser.text(data[(equals + 1)..<(i + length - 1)])
            records.append((key, value))
            i += length
        }
        return records
    }

    private mutating func verifyChecksum(_ block: [UInt8], at: Int) throws(TarError) {
        var unsigned = 0
        var signed = 0
        for (index, byte) in block.enumerated() {
            let value = (148..<156).contains(index) ? 32 : byte
            unsigned += Int(value)
            signed += Int(Int8(bitPattern: value))
        }
        let stored = TarHeaderParser.parseNumber(block[148..<156])
        if let stored, stored == unsigned || stored == signed { return }
        finished = true
        var reason = stored.map { "the header says \($0), its bytes sum to \(unsigned) (unsigned) or \(signed) (signed)" }
            ?? "the checksum field (bytes 148..<156) reads \"\(TarHeaderParser.shown(block[148..<156]))\", not an octal number"
        let nameField = TarHeaderParser.terminated(block[0..<100])
        if !nameField.isEmpty, nameField.allSatisfy({ $0 >= 32 && $0 < 127 }) {
            reason += "; its name field reads \"\(TarHeaderParser.text(nameField))\""
        }
        if at == 0, block[0] == 0x1F, block[1] == 0x8B {
            reason += "; the file is gzip-compressed: decompress it (gunzip) to a plain tar first"
        }
        throw failure(.badChecksum, nil, at, continuation: .restOfShardLost,
                      reason + ", so where the next member starts is unknown")
    }

    /// A numeric field: octal ASCII or base-256.
    private mutating func number(_ block: [UInt8], _ range: Range<Int>, field: String, member: String?,
                                 at: Int) throws(TarError) -> Int {
        if let value = TarHeaderParser.parseNumber(block[range]) { return value }
        finished = true
        throw failure(.badNumber, member, at, continuation: .restOfShardLost,
                      "the \(field) field (bytes \(range.lowerBound)..<\(range.upperBound) of the header) reads \"\(TarHeaderParser.shown(block[range]))\", expected octal digits or a base-256 number")
    }

    private mutating func read(_ count: Int, member: String?, at: Int) throws(TarError) -> [UInt8] {
        do { return try file.read(count) } catch {
            finished = true
            throw failure(.io, member, at, continuation: .restOfShardLost, error.problem)
        }
    }

    private mutating func skip(_ count: Int, member: String?) throws(TarError) -> Int {
        do { return try file.skip(count) } catch {
            finished = true
            throw failure(.io, member, file.position, continuation: .restOfShardLost, error.problem)
        }
    }

    // MARK: - Field decoding

    /// `count` rounded up to a whole number of 512-byte blocks.
    static func padded(_ count: Int) -> Int { (count + 511) / 512 * 512 }

    /// The bytes of a text field up to its first NUL.
    static func terminated(_ field: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        field.firstIndex(of: 0).map { field[field.startIndex..<$0] } ?? field
    }

    /// A field's bytes for a message: printable ASCII as is, others as \\x and hex.
    static func shown(_ field: ArraySlice<UInt8>) -> String {
        field.map { byte in
            byte >= 32 && byte < 127 ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }.joined()
    }

    /// Bytes as text (UTF-8; invalid sequences become U+FFFD).
    static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// A numeric field's value: octal digits (spaces around, NUL or space after; empty is 0) or
    /// base-256 when the first byte's high bit is set. Nil if neither, negative, or beyond Int.
    static func parseNumber(_ field: ArraySlice<UInt8>) -> Int? {
        guard let first = field.first else { return nil }
        if first & 0x80 != 0 {
            if first & 0x40 != 0 { return nil }  // negative
            var value = Int(first & 0x3F)
            for byte in field.dropFirst() {
                guard value <= (Int.max >> 8) else { return nil }
                value = value << 8 | Int(byte)
            }
            return value
        }
        var digits = terminated(field)
        while digits.first == UInt8(ascii: " ") { digits = digits.dropFirst() }
        while digits.last == UInt8(ascii: " ") { digits = digits.dropLast() }
        var value = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value <= (Int.max >> 3) else { return nil }
            value = value << 3 | Int(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
