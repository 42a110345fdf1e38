// Reading members of a zip archive (a Python wheel, such as the emoji art wheels that
// `clip data import emoji` reads its pictures from), so no unzip step or Python is needed: the end
// of central directory record, the central directory, local headers, and members stored (method 0)
// or deflated (method 8, inflated raw through zlib), each checked against its CRC-32.
// Zip64, encryption and multi-disk archives are refused by name.

import CZlib

/// A zip archive read whole into memory, its members listed from the central directory.
public struct ZipArchive: Sendable {
    /// One member as the central directory lists it.
    public struct Member: Sendable {
        /// The member's path inside the archive.
        public let name: String
        let method: Int
        let crc: UInt32
        let compressedSize: Int
        /// Size after extraction in bytes.
        public let size: Int
        let localHeaderOffset: Int
        let flags: Int
    }

    /// The archive's file name, used in errors.
    public let path: String
    /// The members in central-directory order.
    public let members: [Member]
    private let bytes: [UInt8]
    private let index: [String: Int]

    /// The most bytes deflate can make from one compressed byte (a 258-byte match in 2 bits).
    static let maximumDeflateRatio = 1032

    /// Opens the zip file at `path` and reads its central directory.
    public init(path: String) throws {
        try self.init(bytes: FileIO.readFile(path), name: path)
    }

    /// Reads the central directory of the archive in `bytes`; `name` is used in errors.
    public init(bytes: [UInt8], name: String) throws {
        self.path = name
        self.bytes = bytes
        func fail(_ problem: String) -> ZipError { ZipError(path: name, problem: problem) }
        func u16(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { u16(o) | u16(o + 2) << 16 }
        // The end of central directory record: 22 bytes plus a comment of up to 65,535 bytes.
        guard bytes.count >= 22 else { throw fail("not a zip archive (only \(bytes.count) bytes)") }
        var eocd = -1
        var o = bytes.count - 22
        while o >= max(0, bytes.count - 22 - 65_535) {
            if bytes[o] == 0x50, bytes[o + 1] == 0x4B, bytes[o + 2] == 0x05, bytes[o + 3] == 0x06 { eocd = o; break }
            o -= 1
        }
        guard eocd >= 0 else { throw fail("not a zip archive (no end of central directory record)") }
        guard u16(eocd + 4) == 0, u16(eocd + 6) == 0 else { throw fail("multi-disk zip archives are not supported") }
        let count = u16(eocd + 10), directorySize = u32(eocd + 12), directoryOffset = u32(eocd + 16)
        guard count != 0xFFFF, directorySize != 0xFFFF_FFFF, directoryOffset != 0xFFFF_FFFF else {
            throw fail("zip64 archives are not supported")
        }
        guard directoryOffset + directorySize <= eocd else {
            throw fail("central directory at \(directoryOffset)+\(directorySize) runs past its end record at \(eocd) (truncated archive?)")
        }
        var members: [Member] = []
        members.reserveCapacity(count)
        var p = directoryOffset
        for i in 0..<count {
            guard p + 46 <= eocd, u32(p) == 0x0201_4B50 else { throw fail("central directory entry \(i) is damaged") }
            let nameLength = u16(p + 28), extraLength = u16(p + 30), commentLength = u16(p + 32)
            guard p + 46 + nameLength <= eocd else { throw fail("central directory entry \(i) is damaged") }
            let member = Member(
                name: String(decoding: bytes[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self),
                method: u16(p + 10), crc: UInt32(u32(p + 16)), compressedSize: u32(p + 20), size: u32(p + 24),
                localHeaderOffset: u32(p + 42), flags: u16(p + 8))
            members.append(member)
            p += 46 + nameLength + extraLength + commentLength
        }
        self.members = members
        var index: [String: Int] = [:]
        for (i, m) in members.enumerated() { index[m.name] = i }
        self.index = index
    }

    /// Whether the archive has a member `name`.
    public func contains(_ name: String) -> Bool { index[name] != nil }

    /// The extracted bytes of member `name`, checked against its CRC-32.
    public func read(_ name: String) throws -> [UInt8] {
        guard let i = index[name] else { throw ZipError(path: path, problem: "no member '\(name)'") }
        return try read(members[i])
    }

    /// The extracted bytes of `member`, checked against its CRC-32.
    public func read(_ member: Member) throws -> [UInt8] {
        func fail(_ problem: String) -> ZipError { ZipError(path: "\(path): \(member.name)", problem: problem) }
        guard member.flags & 1 == 0 else { throw fail("encrypted members are not supported") }
        let o = member.localHeaderOffset
        guard o + 30 <= bytes.count, bytes[o] == 0x50, bytes[o + 1] == 0x4B, bytes[o + 2] == 0x03, bytes[o + 3] == 0x04 else {
            throw fail("no local header at offset \(o)")
        }
        let nameLength = Int(bytes[o + 26]) | Int(bytes[o + 27]) << 8
        let extraLength = Int(bytes[o + 28]) | Int(bytes[o + 29]) << 8
        let start = o + 30 + nameLength + extraLength
        guard start + member.compressedSize <= bytes.count else { throw fail("data runs past the end of the archive (truncated?)") }
        var out: [UInt8]
        switch member.method {
        case 0:
            out = Array(bytes[start..<(start + member.compressedSize)])
        case 8:
            // The output buffer is allocated at the declared size, so that size is checked first:
            // deflate makes at most 1032 bytes from each compressed byte, and a larger claim (a
            // few bytes declaring gigabytes) is damage, not a member worth the memory.
            guard member.size <= member.compressedSize * ZipArchive.maximumDeflateRatio else {
                throw fail("declares \(member.size) bytes inflated from \(member.compressedSize) deflated bytes, more than deflate's "
                    + "\(ZipArchive.maximumDeflateRatio):1 can make (damaged archive?)")
            }
            out = [UInt8](repeating: 0, count: member.size)
            var stream = z_stream()
            guard inflateInit2_(&stream, -15, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
                throw fail("zlib could not start inflating")
            }
            defer { inflateEnd(&stream) }
            let status: Int32 = bytes.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    stream.next_in = UnsafeMutablePointer(mutating: src.baseAddress! + start)
                    stream.avail_in = UInt32(member.compressedSize)
                    stream.next_out = dst.baseAddress
                    stream.avail_out = UInt32(member.size)
                    return inflate(&stream, Z_FINISH)
                }
            }
            guard status == Z_STREAM_END, Int(stream.total_out) == member.size else {
                throw fail("deflated data is damaged (zlib status \(status), \(stream.total_out) of \(member.size) bytes)")
            }
        default:
            throw fail("compression method \(member.method) is not supported (only stored and deflate)")
        }
        let crc = out.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
        guard crc == member.crc else {
            throw fail("CRC-32 mismatch (stored \(String(member.crc, radix: 16)), computed \(String(crc, radix: 16)))")
        }
        return out
    }
}

/// A zip archive that cannot be read: names the archive (and member) and the problem.
public struct ZipError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let problem: String
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }
    public var description: String { "\(path): \(problem)" }
}
