// Writing tar archives (`clip data export`): POSIX ustar headers, as the Python `webdataset`
// library's TarWriter writes them, with a PAX `path` record before a member whose name does not
// fit the ustar name and prefix fields. The archive is built in memory and written atomically.

/// Builds a tar archive member by member.
public struct TarWriter {
    private(set) var bytes: [UInt8] = []
    /// The modification time written in every header (seconds since 1970; 0 keeps archives
    /// byte-for-byte reproducible).
    public var mtime: Int

    public init(mtime: Int = 0) {
        self.mtime = mtime
    }

    /// Appends a regular file `name` holding `data`.
    public mutating func append(name: String, data: [UInt8]) {
        precondition(!name.isEmpty, "TarWriter: empty member name")
        let utf8 = Array(name.utf8)
        var ustarName = utf8, prefix: [UInt8] = []
        if utf8.count > 100 {
            // Split at a slash so the prefix (≤ 155 bytes) and the name (≤ 100) both fit.
            if let cut = utf8.indices.last(where: { utf8[$0] == UInt8(ascii: "/") && $0 <= 155 && utf8.count - $0 - 1 <= 100 && $0 > 0 }) {
                prefix = Array(utf8[..<cut])
                ustarName = Array(utf8[(cut + 1)...])
            } else {
                // A PAX extended header carries the full path; the ustar name is a truncation.
                var record = " path=".utf8 + utf8 + [0x0A]
                var length = record.count + 1
                while String(length).utf8.count + record.count != length { length = String(length).utf8.count + record.count }
                record = Array(String(length).utf8) + record
                appendHeader(name: Array("PaxHeader/".utf8) + Array(utf8.suffix(90)), prefix: [], size: record.count, type: UInt8(ascii: "x"))
                appendData(record)
                ustarName = Array(utf8.suffix(100))
            }
        }
        appendHeader(name: ustarName, prefix: prefix, size: data.count, type: UInt8(ascii: "0"))
        appendData(data)
    }

    /// The archive: the members, then two zero blocks, padded to a multiple of 10,240 bytes
    /// (the default record size of tar and Python's tarfile).
    public func finished() -> [UInt8] {
        var out = bytes + [UInt8](repeating: 0, count: 1024)
        let record = 10_240
        if out.count % record != 0 { out += [UInt8](repeating: 0, count: record - out.count % record) }
        return out
    }

    /// Writes the archive to `path` atomically (temporary file, fsync, rename).
    public func write(to path: String) throws {
        try FileIO.writeAtomically(finished(), to: path)
    }

    private mutating func appendData(_ data: [UInt8]) {
        bytes += data
        if data.count % 512 != 0 { bytes += [UInt8](repeating: 0, count: 512 - data.count % 512) }
    }

    private mutating func appendHeader(name: [UInt8], prefix: [UInt8], size: Int, type: UInt8) {
        var h = [UInt8](repeating: 0, count: 512)
        func put(_ field: [UInt8], at offset: Int, length: Int) {
            for (i, b) in field.prefix(length).enumerated() { h[offset + i] = b }
        }
        func octal(_ value: Int, at offset: Int, length: Int) {
            let text = String(value, radix: 8)
            let padded = String(repeating: "0", count: max(0, length - 1 - text.count)) + text
            put(Array(padded.utf8), at: offset, length: length - 1)
        }
        put(name, at: 0, length: 100)
        octal(0o644, at: 100, length: 8)
        octal(0, at: 108, length: 8)
        octal(0, at: 116, length: 8)
        if size < 0o77777777777 {
            octal(size, at: 124, length: 12)
        } else {
            // base-256 for members of 8 GiB and more
            h[124] = 0x80
            var v = size
            for i in stride(from: 135, through: 125, by: -1) { h[i] = UInt8(v & 0xFF); v >>= 8 }
        }
        octal(mtime, at: 136, length: 12)
        h[156] = type
        put(Array("ustar".utf8) + [0], at: 257, length: 6)
        put(Array("00".utf8), at: 263, length: 2)
        put(prefix, at: 345, length: 155)
        // The checksum: the header's byte sum with the checksum field as eight spaces.
        for i in 148..<156 { h[i] = 0x20 }
        let sum = h.reduce(0) { $0 + Int($1) }
        let text = String(sum, radix: 8)
        put(Array((String(repeating: "0", count: max(0, 6 - text.count)) + text).utf8) + [0, 0x20], at: 148, length: 8)
        bytes += h
    }
}
