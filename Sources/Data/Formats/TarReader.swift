// A streaming reader of tar archives: the regular-file members of one shard, front to back, read in
// chunks so a shard of any size never sits whole in memory.

/// A regular file of a tar archive, with its data.
public struct TarMember: Sendable, Hashable {
    /// The member's path in the archive, extended headers applied (see `TarReader`).
    public let name: String
    /// Its size in bytes (`bytes.count`).
    public let size: Int
    /// Where its first header block starts in the archive (its first extended header, if any).
    public let headerOffset: Int
    /// Where its data starts in the archive.
    public let dataOffset: Int
    /// Its data.
    public let bytes: [UInt8]
}

/// Reads the regular-file members of a tar archive in order.
///
/// Formats: POSIX ustar (the 155-byte `prefix` joined to `name` with "/"), old v7 headers, GNU
/// (long names from 'L' headers; 'K' long link names read past), PAX ('x' records for the next
/// member, 'g' records for all following ones; `path` and `size` are used), base-256 numbers, and
/// checksums by unsigned or signed byte sums. Directories, links, devices, FIFOs and unknown types
/// are skipped; the archive ends at the first all-zero block, or where the file ends on a block
/// boundary. Names are UTF-8 (bytes that are not become U+FFFD). Compressed shards (.tar.gz) are not
/// read: decompress them first.
///
/// Errors are `TarError`s. Their `continuation` tells what is left:
/// - `.nextMember` (a member over `maximumMemberSize`, a GNU sparse file): that member is skipped,
///   and the next call to `next()` continues after it.
/// - `.endOfShard` (the file is cut inside a header or a member's data, e.g. a final member cut
///   short): the members before it were all delivered whole; `next()` then returns nil.
/// - `.restOfShardLost` (a bad checksum or numeric field, a malformed PAX header, an I/O error):
///   where the next header starts is unknown, so the rest of the shard cannot be read; `next()` then
///   returns nil.
public final class TarReader {
    /// The shard's path.
    public let path: String
    /// Members larger than this are reported (`.memberTooLarge`) and skipped, not read.
    public let maximumMemberSize: Int
    private var parser: TarHeaderParser

    /// Opens the archive at `path`; it is read with read() in chunks of `chunkSize` bytes.
    /// `maximumMemberSize` defaults to 1 GiB.
    public init(path: String, maximumMemberSize: Int = 1 << 30, chunkSize: Int = 1 << 16) throws(TarError) {
        precondition(chunkSize > 0, "TarReader: chunkSize must be > 0, got \(chunkSize)")
        self.path = path
        self.maximumMemberSize = maximumMemberSize
        do {
            parser = TarHeaderParser(file: try ChunkedFile(path: path, chunkSize: chunkSize))
        } catch {
            throw TarError(shard: path, member: nil, offset: 0, kind: .io, reason: error.problem,
                           continuation: .restOfShardLost)
        }
    }

    /// The next regular-file member, nil after the last one.
    public func next() throws(TarError) -> TarMember? {
        while let entry = try parser.next() {
            if entry.isSparse {
                throw parser.failure(.unsupportedMember, entry.name, entry.headerOffset, continuation: .nextMember,
                                     "a GNU sparse file, which this reader does not decode (it is skipped)")
            }
            guard entry.isRegularFile else { continue }
            if entry.size > maximumMemberSize {
                throw parser.failure(.memberTooLarge, entry.name, entry.headerOffset, continuation: .nextMember,
                                     "\(entry.size) bytes, more than the limit of \(maximumMemberSize) (it is skipped)")
            }
            let bytes: [UInt8]
            do { bytes = try parser.file.read(entry.size) } catch {
                parser.end()
                throw parser.failure(.io, entry.name, entry.dataOffset, continuation: .restOfShardLost, error.problem)
            }
            if bytes.count < entry.size { throw parser.truncated(entry, present: bytes.count) }
            return TarMember(name: entry.name, size: entry.size, headerOffset: entry.headerOffset,
                             dataOffset: entry.dataOffset, bytes: bytes)
        }
        return nil
    }

    /// Every remaining member; throws the first error.
    public func readAll() throws(TarError) -> [TarMember] {
        var members: [TarMember] = []
        while let member = try next() { members.append(member) }
        return members
    }
}
