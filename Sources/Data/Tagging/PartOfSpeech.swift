// Parts of speech for CLIPA's syntax masking, which keeps a short caption's nouns first, then its
// adjectives, then its verbs, then everything else. Only these four classes matter to it, so a
// tagger answers with one of them per word.

/// The word classes syntax masking ranks, in its order of priority (nouns kept first).
public enum PartOfSpeech: Int, Sendable, Hashable, Codable, CaseIterable, Comparable {
    /// Penn tags NN* (nouns, including proper and plural nouns).
    case noun = 1
    /// Penn tags JJ* (adjectives, including comparatives and superlatives).
    case adjective = 2
    /// Penn tags VB* (verbs in every form).
    case verb = 3
    /// Every other tag: determiners, numbers, prepositions, conjunctions, adverbs, punctuation.
    case other = 4

    public static func < (a: PartOfSpeech, b: PartOfSpeech) -> Bool { a.rawValue < b.rawValue }

    /// The class of a Penn Treebank tag, as CLIPA ranks it: NN* → noun, JJ* → adjective,
    /// VB* → verb, anything else → other.
    public init(pennTag: String) {
        if pennTag.hasPrefix("NN") { self = .noun } else if pennTag.hasPrefix("JJ") { self = .adjective } else if pennTag.hasPrefix("VB") {
            self = .verb
        } else { self = .other }
    }
}

/// Tags the words of a caption.
public protocol PartOfSpeechTagger: Sendable {
    /// One class per word of `words` (as `CaptionWords.split` cuts them).
    func tag(_ words: [String]) -> [PartOfSpeech]
}

/// The word tokenisation syntax masking works on: whitespace-separated words, with leading and
/// trailing punctuation split off as words of their own ("circle," → "circle", ","), so that
/// punctuation ranks last. Hyphens and apostrophes inside a word stay ("five-pointed", "cat's").
public enum CaptionWords {
    static let punctuation: Set<Character> = [",", ".", ";", ":", "!", "?", "\"", "(", ")", "[", "]", "'"]

    public static func split(_ caption: String) -> [String] {
        var words: [String] = []
        for raw in caption.split(whereSeparator: \.isWhitespace) {
            var chars = Substring(raw)
            var leading: [String] = [], trailing: [String] = []
            while let c = chars.first, punctuation.contains(c) {
                leading.append(String(c))
                chars = chars.dropFirst()
            }
            while let c = chars.last, punctuation.contains(c) {
                trailing.insert(String(c), at: 0)
                chars = chars.dropLast()
            }
            words += leading
            if !chars.isEmpty { words.append(String(chars)) }
            words += trailing
        }
        return words
    }
}
