// The text tokenizer interface the model and the data loader code against, its errors, and where
// the CLIP merges file is looked for. `CLIPTokenizer` (CLIPTokenizer.swift) is the implementation:
// OpenCLIP's byte-level BPE when the merges file is present, or one trained on the captions.

import Foundation

/// Turns captions into token ids for the text tower.
///
/// Layout every implementation follows: ids `0 ..< vocabularySize`, the two specials last
/// (`startOfText = vocabularySize − 2`, `endOfText = vocabularySize − 1`), padding 0. Because
/// end-of-text is the highest id, `argmax(ids)` of a tokenized row is its first end-of-text,
/// the position whose features OpenCLIP's text pooling takes.
public protocol Tokenizer: Sendable {
    /// The number of ids, including the two specials: the token embedding's row count.
    var vocabularySize: Int { get }
    /// The id that starts every tokenized row.
    var startOfText: Int32 { get }
    /// The id that ends every tokenized row; the highest id.
    var endOfText: Int32 { get }
    /// The BPE ids of the cleaned text, without specials or padding.
    func encode(_ text: String) -> [Int32]
    /// `[startOfText] + encode(text) + [endOfText]`; when that is longer than `contextLength`,
    /// its first `contextLength` ids with the last set to `endOfText`; then right-padded with 0
    /// to exactly `contextLength` ids. Requires `contextLength ≥ 1`.
    func tokenize(_ text: String, contextLength: Int) -> [Int32]
    /// The text of `ids`, for previews and debugging: specials and the padding after an
    /// end-of-text are dropped, and word ends become spaces.
    func decode(_ ids: [Int32]) -> String
}

extension Tokenizer {
    /// `tokenize` of each text, concatenated: a row-major `(texts.count, contextLength)` batch.
    public func tokenize(_ texts: [String], contextLength: Int) -> [Int32] {
        var out: [Int32] = []
        out.reserveCapacity(texts.count * contextLength)
        for text in texts { out += tokenize(text, contextLength: contextLength) }
        return out
    }
}

/// What went wrong while loading or building a tokenizer. Each description names the file (or
/// the in-memory source) and says what was expected.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file could not be opened (missing, unreadable).
    case cannotOpen(path: String, reason: String)
    /// The file opened but could not be decompressed (corrupt or truncated gzip).
    case cannotRead(path: String, reason: String)
    /// A line is not valid UTF-8. Lines are numbered from 1, the header being line 1.
    case invalidUTF8(path: String, line: Int)
    /// A merge line does not hold exactly two symbols separated by whitespace.
    case malformedMerge(path: String, line: Int, text: String)
    /// A merge names a symbol that is neither one of the 512 byte symbols nor made by an
    /// earlier merge.
    case unknownSymbol(path: String, line: Int, symbol: String)
    /// The file ends before the expected number of merges.
    case tooFewMerges(path: String, expected: Int, found: Int)
    /// A requested vocabulary cannot hold the 512 byte symbols and the 2 specials.
    case vocabularySizeTooSmall(requested: Int, minimum: Int)

    /// `path: [line N: ]what was expected`, e.g. `…/bpe.txt.gz: line 17: expected two
    /// space-separated symbols, found "t h e"`.
    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "\(path): cannot open the BPE merges file: \(reason)"
        case .cannotRead(let path, let reason):
            return "\(path): cannot read the BPE merges file (expected gzip or plain text): \(reason)"
        case .invalidUTF8(let path, let line):
            return "\(path): line \(line): expected UTF-8 text"
        case .malformedMerge(let path, let line, let text):
            return "\(path): line \(line): expected two space-separated symbols, found \(quoted(text))"
        case .unknownSymbol(let path, let line, let symbol):
            return "\(path): line \(line): symbol \(quoted(symbol)) is neither a byte symbol nor made by an earlier merge"
        case .tooFewMerges(let path, let expected, let found):
            return "\(path): expected \(expected) merge lines after the header line, found \(found)"
        case .vocabularySizeTooSmall(let requested, let minimum):
            return "BPE training: vocabulary size \(requested) is too small; it must be at least \(minimum) (512 byte symbols + 2 specials)"
        }
    }

    private func quoted(_ s: String) -> String {
        "\"" + (s.count > 80 ? String(s.prefix(80)) + "…" : s) + "\""
    }
}

/// Where the CLIP merges file is found. `scripts/bootstrap.sh` installs it into the cache.
public enum TokenizerFiles {
    /// OpenCLIP's merges file name (it ships inside the `open-clip-torch` wheel).
    public static let mergesFileName = "bpe_simple_vocab_16e6.txt.gz"

    /// The file's sha256, as OpenCLIP ships it (checked by the bootstrap when it downloads).
    public static let mergesSHA256 = "924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a"

    /// The cache folder: `$CLIPLAB_CACHE`, else `$HOME/.cache/cliplab`.
    public static func cacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let dir = environment["CLIPLAB_CACHE"], !dir.isEmpty {
            return URL(fileURLWithPath: dir, isDirectory: true)
        }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
        return URL(fileURLWithPath: home, isDirectory: true).appendingPathComponent(".cache/cliplab", isDirectory: true)
    }

    /// The merges file to use, or nil when there is none (then train one with
    /// `CLIPTokenizer.trainBPE`): `$CLIPLAB_BPE_PATH` if it names an existing file, else
    /// `cacheDirectory()/bpe_simple_vocab_16e6.txt.gz` if it exists.
    public static func defaultMergesFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        let fm = FileManager.default
        if let path = environment["CLIPLAB_BPE_PATH"], !path.isEmpty, fm.fileExists(atPath: path) {
            return URL(fileURLWithPath: path)
        }
        let cached = cacheDirectory(environment: environment).appendingPathComponent(mergesFileName)
        return fm.fileExists(atPath: cached.path) ? cached : nil
    }
}
