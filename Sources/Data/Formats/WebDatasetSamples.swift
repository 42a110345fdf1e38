// WebDataset samples: consecutive tar members that share a key, grouped the way the Python
// `webdataset` library groups them, from a streaming TarReader.

/// One WebDataset sample: the members of one key, by extension.
public struct WebDatasetSample: Sendable, Hashable {
    /// The sample's key: the member path up to the first dot of its file name ("a/b/000001").
    public let key: String
    /// The shard it came from.
    public let shard: String
    /// The members' data by extension ("jpg", "txt", "seg.png").
    public let files: [String: [UInt8]]
    /// Where each member's data starts in the shard, by extension (for error messages).
    public let offsets: [String: Int]

    public init(key: String, shard: String, files: [String: [UInt8]], offsets: [String: Int]) {
        self.key = key
        self.shard = shard
        self.files = files
        self.offsets = offsets
    }

    /// The data of the member with extension `ext`.
    public subscript(_ ext: String) -> [UInt8]? { files[ext] }

    /// The extensions present, sorted.
    public var extensions: [String] { files.keys.sorted() }

    /// Where the sample is, for messages: "shard.tar: sample \"key\"" (+ " member .ext at byte n").
    public func location(_ ext: String? = nil) -> String {
        guard let ext, let offset = offsets[ext] else { return "\(shard): sample \"\(key)\"" }
        return "\(shard): sample \"\(key)\", member \"\(key).\(ext)\" at byte \(offset)"
    }
}

/// The samples of one WebDataset shard, read in order from a `TarReader`.
///
/// Rules (those of `webdataset`'s `tar_file_iterator` and `group_by_keys`, with its defaults):
/// - A member's key is its path up to the first dot of its file name, the folder part kept; its
///   extension is everything after that dot, lower-cased: `a/b/000001.Seg.PNG` → key `a/b/000001`,
///   extension `seg.png`.
/// - A new sample starts whenever the key differs from the previous member's; a key that comes back
///   later makes another sample.
/// - Members with no key — no dot in the file name, or nothing before the first dot (".hidden") —
///   and metadata members (a first path component of the form `__name__`) are skipped and counted
///   in `skippedMembers`. (`webdataset`'s regular expression gives a name like "dir/.hidden" the key
///   "dir/"; this reader skips it.)
/// - Two members of one sample with the same extension are an error (`.duplicateExtension`).
///
/// Errors are the reader's `TarError`s, with what became of the sample being built:
/// - A sample completed before the error is still returned; the error comes on the next call.
/// - The sample of the damaged member is dropped ("sample "k" is dropped" in the reason); so is a
///   sample in progress when the damaged member's name is unknown (it may lack members).
/// - After a `.nextMember` error, the remaining members of the dropped sample's key are skipped and
///   reading continues; after the others `next()` returns nil.
public final class WebDatasetSamples {
    /// The shard's path.
    public let path: String
    /// Members skipped for having no key, or for being metadata.
    public private(set) var skippedMembers = 0
    private let reader: TarReader
    private var grouper = SampleGrouper<[UInt8]>()
    private var deferred: TarError?
    private var finished = false

    /// Opens the shard at `path` (see `TarReader` for the options).
    public init(path: String, maximumMemberSize: Int = 1 << 30) throws(TarError) {
        self.path = path
        reader = try TarReader(path: path, maximumMemberSize: maximumMemberSize)
    }

    /// The next sample, nil after the last.
    public func next() throws(TarError) -> WebDatasetSample? {
        if let error = deferred {
            deferred = nil
            throw error
        }
        if finished { return nil }
        while true {
            let member: TarMember?
            do { member = try reader.next() } catch {
                let (completed, annotated) = grouper.fail(error)
                if error.continuation != .nextMember { finished = true }
                if let completed {
                    deferred = annotated
                    return sample(completed)
                }
                throw annotated
            }
            guard let member else {
                finished = true
                return grouper.finish().map(sample)
            }
            if let completed = try grouper.add(
                name: member.name, dataOffset: member.dataOffset, headerOffset: member.headerOffset,
                part: member.bytes, shard: path)
            {
                return sample(completed)
            }
            if grouper.lastMemberSkipped { skippedMembers += 1 }
        }
    }

    /// Every remaining sample; throws the first error.
    public func readAll() throws(TarError) -> [WebDatasetSample] {
        var samples: [WebDatasetSample] = []
        while let sample = try next() { samples.append(sample) }
        return samples
    }

    /// A member path's key and extension by the rules above; nil when it has none.
    public static func split(memberName name: String) -> (key: String, extension: String)? {
        let utf8 = name.utf8
        let baseStart = utf8.lastIndex(of: UInt8(ascii: "/")).map { utf8.index(after: $0) } ?? utf8.startIndex
        guard let dot = utf8[baseStart...].firstIndex(of: UInt8(ascii: ".")), dot != baseStart else { return nil }
        return (String(name[..<dot]), String(name[name.index(after: dot)...]).lowercased())
    }

    /// Whether `webdataset` skips the member as metadata: its first path component is `__name__`
    /// (at least four characters, starting and ending with two underscores).
    public static func isMetadata(memberName name: String) -> Bool {
        let first = name.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return first.count >= 4 && first.hasPrefix("__") && first.hasSuffix("__")
    }

    private func sample(_ group: SampleGrouper<[UInt8]>.Group) -> WebDatasetSample {
        var files: [String: [UInt8]] = [:]
        var offsets: [String: Int] = [:]
        for part in group.parts {
            files[part.ext] = part.payload
            offsets[part.ext] = part.dataOffset
        }
        return WebDatasetSample(key: group.key, shard: path, files: files, offsets: offsets)
    }
}

/// Groups a shard's members into samples by key: the one grouping logic of `WebDatasetSamples`
/// (payload: the data) and `TarIndex` (payload: where the data is).
struct SampleGrouper<Payload> {
    struct Part {
        let ext: String
        let name: String
        let dataOffset: Int
        let payload: Payload
    }

    struct Group {
        let key: String
        var parts: [Part]
    }

    /// The sample being built.
    private(set) var pending: Group?
    /// A key whose sample was dropped: its further members are skipped.
    private var droppedKey: String?
    /// Whether the last `add` skipped its member (no key, metadata).
    private(set) var lastMemberSkipped = false

    /// Adds a member; returns the sample it completes (the previous key's) if any.
    /// Throws `.duplicateExtension` (dropping the sample) for a second member of one extension.
    mutating func add(name: String, dataOffset: Int, headerOffset: Int, part: Payload,
                      shard: String) throws(TarError) -> Group? {
        lastMemberSkipped = false
        guard !WebDatasetSamples.isMetadata(memberName: name),
              let (key, ext) = WebDatasetSamples.split(memberName: name)
        else {
            lastMemberSkipped = true
            return nil
        }
        if key == droppedKey { return nil }
        droppedKey = nil
        let newPart = Part(ext: ext, name: name, dataOffset: dataOffset, payload: part)
        if var group = pending, group.key == key {
            if let first = group.parts.first(where: { $0.ext == ext }) {
                pending = nil
                droppedKey = key
                throw TarError(
                    shard: shard, member: name, offset: headerOffset, kind: .duplicateExtension,
                    reason: "sample \"\(key)\" already has a member with extension \"\(ext)\" (\"\(first.name)\", data at byte \(first.dataOffset)); sample \"\(key)\" is dropped",
                    continuation: .nextMember)
            }
            group.parts.append(newPart)
            pending = group
            return nil
        }
        let completed = pending
        pending = Group(key: key, parts: [newPart])
        return completed
    }

    /// Takes a reader error: returns the sample completed before it, if any, and the error with
    /// what became of the sample in progress.
    mutating func fail(_ error: TarError) -> (completed: Group?, error: TarError) {
        let key = error.member.flatMap { WebDatasetSamples.split(memberName: $0)?.key }
        var completed: Group?
        var annotated = error
        if let group = pending {
            if let key, key != group.key {
                completed = group
            } else if key == nil {
                annotated = error.adding("sample \"\(group.key)\", in progress, may be incomplete and is dropped")
            }
        }
        if let key { annotated = annotated.adding("sample \"\(key)\" is dropped") }
        pending = nil
        droppedKey = error.continuation == .nextMember ? key : nil
        return (completed, annotated)
    }

    /// The last sample, at the end of the shard.
    mutating func finish() -> Group? {
        defer { pending = nil }
        return pending
    }
}
