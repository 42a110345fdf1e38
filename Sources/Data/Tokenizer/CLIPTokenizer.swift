// CLIP's byte-level BPE tokenizer: OpenCLIP's `SimpleTokenizer` with `clean='lower'`, giving
// the same ids as `open_clip.tokenize` (checked against recorded ids in the tests). Built from
// OpenCLIP's merges file, from a merges list, or trained on captions (BPETrainer.swift).

import CZlib
import Foundation

/// Byte-level BPE with word ends, as in CLIP.
///
/// Vocabulary layout: ids 0…255 are the byte symbols, 256…511 the same with `</w>` (a word's
/// last symbol), then one id per merge in rank order (512 + rank), then `<start_of_text>`
/// and `<end_of_text>` (a trained tokenizer may leave unused ids between its merges and the
/// specials; see `trainBPE`). With OpenCLIP's file: 256 + 256 + 48,894 + 2 = 49,408 ids,
/// start 49,406, end 49,407; padding is 0, which is also `!`.
///
/// `encode(text)`: `TextCleaner.clean`, then `PreSplit` into pieces; a literal
/// `<start_of_text>` / `<end_of_text>` piece gives the special's id; every other piece becomes
/// its UTF-8 bytes' symbols (the last one with `</w>`), on which the lowest-ranked adjacent pair
/// that has a merge is merged everywhere (left to right, non-overlapping), again and again until
/// no adjacent pair has a merge. Results are cached per piece.
public struct CLIPTokenizer: Tokenizer {
    /// How many merges OpenCLIP uses from its file: lines 2…48,895 (line 1 is a header).
    public static let openCLIPMergeCount = 48_894

    /// 512 + merges (+ unused ids, trained only) + 2.
    public let vocabularySize: Int
    /// `vocabularySize − 2` (49,406 with OpenCLIP's file).
    public var startOfText: Int32 { Int32(vocabularySize - 2) }
    /// `vocabularySize − 1` (49,407 with OpenCLIP's file), the highest id.
    public var endOfText: Int32 { Int32(vocabularySize - 1) }

    /// The merges in rank order, as the merges file writes them (`("t", "h")`, `("th", "e</w>")`).
    public let merges: [(String, String)]

    /// `pairKey(left, right)` → `rank << 32 | id of the merged symbol`.
    private let mergeTable: [UInt64: UInt64]
    /// The bytes of each id (a special's bytes are its name) and whether it ends a word.
    private let symbolBytes: [[UInt8]]
    private let endsWord: [Bool]
    private let cache = WordCache()

    /// Loads OpenCLIP's merges file (gzip, or plain text): its first `mergeCount` merges after the
    /// header line, one `left right` pair a line.
    /// - Throws: `TokenizerError` naming the file: missing or unreadable, not gzip/UTF-8, a line
    ///   that is not two symbols, a symbol no earlier line made, or fewer than `mergeCount` merges.
    public init(mergesFile: URL, mergeCount: Int = CLIPTokenizer.openCLIPMergeCount) throws {
        let path = mergesFile.path
        let bytes = try Self.readGzip(path: path)
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeCount)
        var lineNumber = 0
        var start = 0
        while merges.count < mergeCount && start < bytes.count {
            let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
            lineNumber += 1
            defer { start = end + 1 }
            if lineNumber == 1 { continue }  // the header: "#version: 0.2"
            guard let line = String(validating: bytes[start..<end], as: UTF8.self) else {
                throw TokenizerError.invalidUTF8(path: path, line: lineNumber)
            }
            let fields = line.utf8.split(whereSeparator: { $0 == 0x20 || (0x09...0x0D).contains($0) })
            guard fields.count == 2 else {
                throw TokenizerError.malformedMerge(path: path, line: lineNumber, text: line)
            }
            merges.append((String(Substring(fields[0])), String(Substring(fields[1]))))
        }
        guard merges.count == mergeCount else {
            throw TokenizerError.tooFewMerges(path: path, expected: mergeCount, found: merges.count)
        }
        try self.init(merges: merges, source: path, firstLine: 2, vocabularySize: 512 + mergeCount + 2)
    }

    /// A tokenizer from merges in rank order, each side a symbol in the byte alphabet
    /// (`ByteSymbols`), possibly ending with `</w>`. Vocabulary: 512 + `merges.count` + 2.
    /// - Throws: `TokenizerError.unknownSymbol` (source "merges", line = index + 1) for a side that
    ///   is neither a byte symbol nor the result of an earlier merge.
    public init(merges: [(String, String)]) throws {
        try self.init(merges: merges, source: "merges", firstLine: 1, vocabularySize: 512 + merges.count + 2)
    }

    /// The same with a vocabulary of `vocabularySize` ids (≥ 512 + `merges.count` + 2): the size a
    /// trained BPE that stopped early keeps (`trainBPE`), the ids between its last merge and the
    /// specials unused.
    /// - Throws: `TokenizerError.vocabularySizeTooSmall` when the merges do not fit.
    public init(merges: [(String, String)], vocabularySize: Int) throws {
        guard vocabularySize >= 512 + merges.count + 2 else {
            throw TokenizerError.vocabularySizeTooSmall(requested: vocabularySize, minimum: 512 + merges.count + 2)
        }
        try self.init(merges: merges, source: "merges", firstLine: 1, vocabularySize: vocabularySize)
    }

    /// The common initialiser: merge `k` gets id 512 + k and came from line `firstLine + k` of
    /// `source`; the specials are the last two of `vocabularySize` ids. As in OpenCLIP, a symbol
    /// text made twice gets the later id, and a pair listed twice the later rank.
    init(merges: [(String, String)], source: String, firstLine: Int, vocabularySize: Int) throws {
        precondition(vocabularySize >= 512 + merges.count + 2, "vocabulary \(vocabularySize) cannot hold \(merges.count) merges")
        // Pass 1: the final id of every symbol text (later wins), checking each side exists.
        var ids: [String: Int32] = [:]
        ids.reserveCapacity(512 + merges.count)
        for (i, text) in ByteSymbols.baseStrings.enumerated() { ids[text] = Int32(i) }
        for (k, (left, right)) in merges.enumerated() {
            for side in [left, right] where ids[side] == nil {
                throw TokenizerError.unknownSymbol(path: source, line: firstLine + k, symbol: side)
            }
            ids[left + right] = Int32(512 + k)
        }
        // Pass 2: the merge table and each id's bytes.
        var table: [UInt64: UInt64] = [:]
        table.reserveCapacity(merges.count)
        var bytes = (0..<512).map { [ByteSymbols.byte[$0 % 256]] }
        var ends = (0..<512).map { $0 >= 256 }
        bytes.reserveCapacity(vocabularySize)
        ends.reserveCapacity(vocabularySize)
        for (k, (left, right)) in merges.enumerated() {
            let a = ids[left]!, b = ids[right]!
            table[Self.pairKey(a, b)] = UInt64(k) << 32 | UInt64(ids[left + right]!)
            bytes.append(bytes[Int(a)] + bytes[Int(b)])
            ends.append(ends[Int(b)])
        }
        while bytes.count < vocabularySize - 2 { bytes.append([]); ends.append(false) }
        bytes += [Array("<start_of_text>".utf8), Array("<end_of_text>".utf8)]
        ends += [false, false]
        self.vocabularySize = vocabularySize
        self.merges = merges
        self.mergeTable = table
        self.symbolBytes = bytes
        self.endsWord = ends
    }

    // MARK: - Tokenizer

    /// The BPE ids of `TextCleaner.clean(text)` (see the type's description), no specials added.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = []
        PreSplit.forEach(in: TextCleaner.clean(text)) { piece in
            switch piece {
            case .startOfText: ids.append(startOfText)
            case .endOfText: ids.append(endOfText)
            case .word(let word): ids += bpe(word)
            }
        }
        return ids
    }

    /// `[startOfText] + encode(text) + [endOfText]`, cut to the first `contextLength` ids with
    /// the last one set to `endOfText` when longer, right-padded with 0. Stops the program when
    /// `contextLength < 1`.
    public func tokenize(_ text: String, contextLength: Int) -> [Int32] {
        guard contextLength >= 1 else { fatalError("tokenize: contextLength must be at least 1, got \(contextLength)") }
        var ids = [startOfText]
        ids += encode(text)
        ids.append(endOfText)
        if ids.count > contextLength {
            ids.removeLast(ids.count - contextLength)
            ids[contextLength - 1] = endOfText
        }
        ids += repeatElement(0, count: contextLength - ids.count)
        return ids
    }

    /// The UTF-8 text of `ids` with word ends as spaces and no trailing space. Specials are
    /// dropped, and so are the zeros after the last id when that is an end-of-text (padding;
    /// elsewhere 0 is `!`). Ids outside the vocabulary become U+FFFD, as do invalid UTF-8 bytes.
    public func decode(_ ids: [Int32]) -> String {
        var end = ids.count
        while end > 0 && ids[end - 1] == 0 { end -= 1 }
        if end == ids.count || end == 0 || ids[end - 1] != endOfText { end = ids.count }
        var bytes: [UInt8] = []
        for id in ids[..<end] where id != startOfText && id != endOfText {
            guard id >= 0 && Int(id) < vocabularySize else {
                bytes += [0xEF, 0xBF, 0xBD]
                continue
            }
            bytes += symbolBytes[Int(id)]
            if endsWord[Int(id)] { bytes.append(0x20) }
        }
        if bytes.last == 0x20 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }

    // MARK: - BPE

    @inline(__always)
    static func pairKey(_ a: Int32, _ b: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
    }

    /// The ids of one pre-split piece (cached).
    func bpe(_ word: String) -> [Int32] {
        let key = ExactString(word)
        if let hit = cache[key] { return hit }
        var symbols = word.utf8.map { ByteSymbols.id[Int($0)] }
        guard !symbols.isEmpty else { return [] }
        symbols[symbols.count - 1] += 256
        while symbols.count > 1 {
            var best = UInt64.max
            for i in 0..<(symbols.count - 1) {
                if let m = mergeTable[Self.pairKey(symbols[i], symbols[i + 1])], m < best { best = m }
            }
            if best == UInt64.max { break }
            let rank = best >> 32, merged = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            var out: [Int32] = []
            out.reserveCapacity(symbols.count - 1)
            var i = 0
            while i < symbols.count {
                if i + 1 < symbols.count, let m = mergeTable[Self.pairKey(symbols[i], symbols[i + 1])], m >> 32 == rank {
                    out.append(merged)
                    i += 2
                } else {
                    out.append(symbols[i])
                    i += 1
                }
            }
            symbols = out
        }
        cache[key] = symbols
        return symbols
    }

    // MARK: - Reading the merges file

    /// The decompressed bytes of a gzip file (zlib reads a plain file as it is).
    static func readGzip(path: String) throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerError.cannotOpen(path: path, reason: "no such file (scripts/bootstrap.sh installs it)")
        }
        guard let file = gzopen(path, "rb") else {
            throw TokenizerError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        defer { gzclose(file) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(file, $0.baseAddress, UInt32($0.count)) }
            if n <= 0 { break }  // end of file, or an error that gzerror reports below
            out += chunk[0..<Int(n)]
        }
        var code: Int32 = 0
        let message = gzerror(file, &code)
        if code != Z_OK && code != Z_STREAM_END {
            let detail = code == Z_ERRNO ? String(cString: strerror(errno)) : message.map { String(cString: $0) } ?? "zlib error \(code)"
            throw TokenizerError.cannotRead(path: path, reason: detail)
        }
        return out
    }
}

/// A string compared and hashed by its exact Unicode scalars (Swift's `String ==` treats
/// canonically equivalent texts as equal; Python, and so OpenCLIP, does not).
struct ExactString: Hashable, Sendable {
    let value: String
    init(_ value: String) { self.value = value }

    static func == (a: ExactString, b: ExactString) -> Bool {
        var x = a.value, y = b.value
        return x.withUTF8 { p in y.withUTF8 { q in p.count == q.count && (p.count == 0 || memcmp(p.baseAddress!, q.baseAddress!, p.count) == 0) } }
    }

    func hash(into hasher: inout Hasher) {
        var copy = value
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// The per-piece BPE cache shared by copies of one tokenizer, safe to use from many threads.
/// It is emptied when it reaches `limit` entries.
///
/// Guarded by an `NSLock` (a pthread mutex) rather than Synchronization's `Mutex`: with this
/// toolchain on Linux, ThreadSanitizer does not see `Mutex`'s lock and unlock as synchronisation
/// and reports its critical sections as data races (a correct test program gives such reports with
/// `Mutex` and none with `NSLock`), which would hide real races in the suite's TSan run.
final class WordCache: @unchecked Sendable {
    static let limit = 1 << 20
    private let lock = NSLock()
    private var table: [ExactString: [Int32]] = [:]

    subscript(key: ExactString) -> [Int32]? {
        get { lock.withLock { table[key] } }
        set {
            lock.withLock {
                if table.count >= Self.limit { table.removeAll(keepingCapacity: true) }
                table[key] = newValue
            }
        }
    }
}
