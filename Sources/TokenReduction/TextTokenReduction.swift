// CLIPA's text token reduction (§A4 of the spec): how a caption becomes a row of `length` ids
// ([start] content… [end] padding) when the stage trains on fewer text tokens than the model's
// full context. Content slots are length − 2. Reduction runs in training only; evaluation prompts
// are always tokenised plainly at the model's context length.
//
//   strategy   when the caption's content is longer than length − 2 ids
//   truncate   keep the first ids; the last slot becomes end-of-text (OpenCLIP's default)
//   random     keep length − 2 ids drawn uniformly without replacement, in caption order
//   shuffle    as random, in a random order (CLIPA's JAX code)
//   block      keep one contiguous window of length − 2 ids at a uniform start
//   syntax     keep length − 2 *words*: nouns, then adjectives, then verbs, then the rest, ties by
//              position; restore their order, tokenise, and truncate (always applied)
//
// Draws are keyed by (seed, epoch, sample index).

import Compute
import Data

/// How a training stage shortens its captions.
public enum TextTokenReduction: String, Sendable, Hashable, Codable, CaseIterable {
    case truncate, random, shuffle, block, syntax

    /// Parses the command-line name; the error lists the choices.
    public init(parsing text: String) throws {
        guard let value = TextTokenReduction(rawValue: text) else {
            throw TokenReductionError(
                "text token reduction '\(text)': expected one of \(Self.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = value
    }

    /// Whether the strategy needs each word's part of speech.
    public var needsTags: Bool { self == .syntax }

    /// The ids of `caption` reduced to `length` (≥ 2): `[start] + content + [end]`, right-padded
    /// with 0. `tagger` must be given for `syntax`.
    public func tokenize(
        _ caption: String, length: Int, tokenizer: any Tokenizer, tagger: (any PartOfSpeechTagger)? = nil,
        seed: UInt64 = 0, epoch: Int = 0, sample: Int = 0
    ) -> [Int32] {
        precondition(length >= 2, "TextTokenReduction.tokenize: length must be ≥ 2, got \(length)")
        let slots = length - 2
        switch self {
        case .truncate:
            return tokenizer.tokenize(caption, contextLength: length)
        case .syntax:
            guard let tagger else { preconditionFailure("TextTokenReduction.syntax needs a part-of-speech tagger") }
            let words = CaptionWords.split(caption)
            let kept = Self.syntaxKept(tags: tagger.tag(words), slots: slots)
            return tokenizer.tokenize(kept.map { words[$0] }.joined(separator: " "), contextLength: length)
        case .random, .shuffle, .block:
            return reduce(
                content: tokenizer.encode(caption), length: length, startOfText: tokenizer.startOfText, endOfText: tokenizer.endOfText,
                seed: seed, epoch: epoch, sample: sample)
        }
    }

    /// The row of already-encoded caption ids `content` (no specials) for `random`, `shuffle` and
    /// `block`: when longer than length − 2, the strategy's draw for (seed, epoch, sample) picks
    /// what stays; then `[start] + content + [end]`, right-padded with 0.
    public func reduce(
        content: [Int32], length: Int, startOfText: Int32, endOfText: Int32, seed: UInt64, epoch: Int, sample: Int
    ) -> [Int32] {
        precondition(self == .random || self == .shuffle || self == .block, "TextTokenReduction.reduce: \(rawValue) works on words, not ids")
        let slots = length - 2
        var content = content
        if content.count > slots {
            let rng = CounterRNG(seed: seed, stream: Self.stream &+ UInt64(epoch))
            let base = UInt64(sample) << 16
            if self == .block {
                let start = rng.integer(below: content.count - slots + 1, base)
                content = Array(content[start..<(start + slots)])
            } else {
                var order = Array(content.indices)
                for i in 0..<slots { order.swapAt(i, i + rng.integer(below: content.count - i, base + UInt64(i))) }
                let chosen = self == .random ? order[0..<slots].sorted() : Array(order[0..<slots])
                content = chosen.map { content[$0] }
            }
        }
        var ids = [startOfText] + content + [endOfText]
        ids += repeatElement(0, count: length - ids.count)
        return ids
    }

    /// The positions of the words syntax masking keeps, ascending: a stable sort by class (nouns
    /// first; ties by position), its first `slots`, back in caption order.
    public static func syntaxKept(tags: [PartOfSpeech], slots: Int) -> [Int] {
        let ranked = tags.indices.sorted { (tags[$0], $0) < (tags[$1], $1) }
        return ranked.prefix(max(0, slots)).sorted()
    }

    static let stream: UInt64 = 0x6d61_736b_2e74_7874  // "mask.txt"
}
