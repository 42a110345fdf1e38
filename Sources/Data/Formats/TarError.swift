// The error of the tar and WebDataset readers: which shard, which member, at which byte, what was
// expected — and whether reading can go on after it.

/// A problem in a tar shard, as in
/// `train-000003.tar: member "x/000017.jpg" (header at byte 90112): truncated data: 40960 bytes
/// declared at byte 90624, the file ends after 1200 of them; the shard ends here`.
public struct TarError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What went wrong.
    public enum Kind: String, Sendable, Equatable {
        /// The file cannot be opened, read or seeked.
        case io
        /// The file ends inside a 512-byte header block (or after an extended header, before the
        /// header it belongs to).
        case truncatedHeader
        /// The file ends inside a member's data.
        case truncatedData
        /// A header block's checksum is neither its unsigned nor its signed byte sum: the block is
        /// not a header (or is damaged), so the member's size — and where the next header starts —
        /// is unknown.
        case badChecksum
        /// A numeric header field (size, checksum) is neither octal digits nor base-256.
        case badNumber
        /// A PAX extended header ('x' or 'g') whose records do not parse.
        case badExtendedHeader
        /// A member larger than the reader's `maximumMemberSize`.
        case memberTooLarge
        /// A regular file stored in a form this reader does not decode (GNU sparse files).
        case unsupportedMember
        /// Two members of one WebDataset sample with the same extension.
        case duplicateExtension
    }

    /// Whether, and how, reading can continue after the error.
    public enum Continuation: String, Sendable, Equatable {
        /// Only this member (or sample) is lost: the reader knows where the next header starts, and
        /// the next call to `next()` goes on from there.
        case nextMember
        /// The shard ended here (it is cut short); everything before this point was delivered.
        case endOfShard
        /// The reader cannot find the next header: the rest of the shard is lost. `next()` returns
        /// nil from now on.
        case restOfShardLost
    }

    /// The shard's path.
    public let shard: String
    /// The member's name, where the header naming it could be read.
    public let member: String?
    /// The byte offset of the problem: the member's first header block, or the data that is cut.
    public let offset: Int
    /// The kind of problem.
    public let kind: Kind
    /// What was found and what was expected.
    public let reason: String
    /// Whether reading can go on.
    public let continuation: Continuation

    public init(shard: String, member: String?, offset: Int, kind: Kind, reason: String, continuation: Continuation) {
        self.shard = shard
        self.member = member
        self.offset = offset
        self.kind = kind
        self.reason = reason
        self.continuation = continuation
    }

    /// True when the reader can skip the bad member and go on (`continuation == .nextMember`).
    public var canSkipMember: Bool { continuation == .nextMember }

    public var description: String {
        let what = member.map { "member \"\($0)\"" } ?? "header"
        let after: String
        switch continuation {
        case .nextMember: after = "reading can continue with the next member"
        case .endOfShard: after = "the shard ends here"
        case .restOfShardLost: after = "the rest of the shard is lost"
        }
        return "\(shard): \(what) at byte \(offset): \(kind.phrase): \(reason); \(after)"
    }

    /// The same error with `note` appended to its reason.
    func adding(_ note: String) -> TarError {
        TarError(shard: shard, member: member, offset: offset, kind: kind, reason: "\(reason); \(note)",
                 continuation: continuation)
    }
}

extension TarError.Kind {
    /// The kind in words, for messages.
    var phrase: String {
        switch self {
        case .io: "input/output error"
        case .truncatedHeader: "truncated header"
        case .truncatedData: "truncated data"
        case .badChecksum: "bad header checksum"
        case .badNumber: "bad numeric field"
        case .badExtendedHeader: "bad PAX extended header"
        case .memberTooLarge: "member too large"
        case .unsupportedMember: "unsupported member"
        case .duplicateExtension: "duplicate extension"
        }
    }
}
