// An index of a WebDataset shard made from its headers alone: each sample's key and where each of
// its members' data lies, so a dataset can read any sample by number with pread().

/// The samples of one shard and where their members are, found by reading the headers and seeking
/// over the data (the data itself is not read).
///
/// Samples are grouped exactly as `WebDatasetSamples` groups them (same key rules, same parser).
/// By default the first `TarError` is thrown. With `skipDamage`, damage is recorded in `damage`
/// instead and the index keeps what is whole: a sample with a bad member is left out, and after an
/// error that ends the shard (a cut, a bad checksum) the index holds the samples complete before it.
///
/// `sample(_:)` uses only pread on a descriptor opened once, so one index may serve several threads.
public final class TarIndex: @unchecked Sendable {
    /// A member of an indexed sample.
    public struct Member: Sendable, Hashable {
        /// Its path in the shard.
        public let name: String
        /// Its extension (see `WebDatasetSamples`).
        public let ext: String
        /// Where its data starts.
        public let offset: Int
        /// Its size in bytes.
        public let size: Int

        public init(name: String, ext: String, offset: Int, size: Int) {
            self.name = name
            self.ext = ext
            self.offset = offset
            self.size = size
        }
    }

    /// An indexed sample.
    public struct Sample: Sendable, Hashable {
        /// Its key.
        public let key: String
        /// Its members in shard order.
        public let members: [Member]

        public init(key: String, members: [Member]) {
            self.key = key
            self.members = members
        }
    }

    /// The shard's path.
    public let path: String
    /// The samples in shard order.
    public let samples: [Sample]
    /// Members skipped for having no key, or for being metadata.
    public let skippedMembers: Int
    /// The errors passed over (only with `skipDamage`).
    public let damage: [TarError]
    private let file: ChunkedFile

    /// Indexes the shard at `path`.
    public init(path: String, skipDamage: Bool = false) throws(TarError) {
        self.path = path
        do { file = try ChunkedFile(path: path, chunkSize: 0) } catch {
            throw TarError(shard: path, member: nil, offset: 0, kind: .io, reason: error.problem,
                           continuation: .restOfShardLost)
        }
        var parser = TarHeaderParser(file: file)
        var grouper = SampleGrouper<Int>()
        var samples: [Sample] = []
        var damage: [TarError] = []
        var skipped = 0
        func record(_ group: SampleGrouper<Int>.Group) {
            samples.append(Sample(key: group.key, members: group.parts.map {
                Member(name: $0.name, ext: $0.ext, offset: $0.dataOffset, size: $0.payload)
            }))
        }
        while true {
            do throws(TarError) {
                guard let entry = try parser.next() else {
                    if let group = grouper.finish() { record(group) }
                    break
                }
                if entry.isSparse {
                    throw parser.failure(.unsupportedMember, entry.name, entry.headerOffset, continuation: .nextMember,
                                         "a GNU sparse file, which this reader does not decode (it is skipped)")
                }
                guard entry.isRegularFile else { continue }
                if let group = try grouper.add(name: entry.name, dataOffset: entry.dataOffset,
                                               headerOffset: entry.headerOffset, part: entry.size, shard: path) {
                    record(group)
                }
                if grouper.lastMemberSkipped { skipped += 1 }
            } catch {
                var reported = error
                if error.kind != .duplicateExtension {
                    let (completed, annotated) = grouper.fail(error)
                    if let completed { record(completed) }
                    reported = annotated
                }
                guard skipDamage else { throw reported }
                damage.append(reported)
                if reported.continuation != .nextMember { break }
            }
        }
        self.samples = samples
        self.damage = damage
        skippedMembers = skipped
    }

    /// The number of samples.
    public var count: Int { samples.count }

    /// The data of one member of this shard (from `samples`), read with pread; safe from several
    /// threads at once.
    public func bytes(of member: Member) throws(TarError) -> [UInt8] {
        let bytes: [UInt8]
        do { bytes = try file.read(at: member.offset, count: member.size) } catch {
            throw TarError(shard: path, member: member.name, offset: member.offset, kind: .io,
                           reason: error.problem, continuation: .nextMember)
        }
        if bytes.count < member.size {
            throw TarError(shard: path, member: member.name, offset: member.offset, kind: .truncatedData,
                           reason: "\(member.size) bytes of data at byte \(member.offset), the file now ends after \(bytes.count) of them (it changed since it was indexed)",
                           continuation: .nextMember)
        }
        return bytes
    }

    /// Sample `index` (0..<count), its members read with pread.
    public func sample(_ index: Int) throws(TarError) -> WebDatasetSample {
        precondition(samples.indices.contains(index), "TarIndex.sample: index \(index) outside 0..<\(samples.count)")
        let entry = samples[index]
        var files: [String: [UInt8]] = [:]
        var offsets: [String: Int] = [:]
        for member in entry.members {
            let bytes = try self.bytes(of: member)
            files[member.ext] = bytes
            offsets[member.ext] = member.offset
        }
        return WebDatasetSample(key: entry.key, shard: path, files: files, offsets: offsets)
    }
}
