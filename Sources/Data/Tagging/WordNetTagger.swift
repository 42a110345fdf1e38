// A lexicon tagger for syntax masking on captions outside the shapes world, built from WordNet 3.0
// (Debian's `wordnet-base`, installed by scripts/bootstrap.sh). CLIPA tags with NLTK's averaged
// perceptron; this is a simpler stand-in that needs no trained model:
//
// 1. closed-class words (determiners, pronouns, prepositions, conjunctions, numbers, "not") and
//    punctuation are `other`; forms of "be", "have" and "do" are verbs;
// 2. otherwise each of WordNet's four indexes (noun, verb, adjective, adverb) is looked up, the word
//    first and then its base forms (WordNet's exception lists and `morphy`'s suffix rules: "dogs" →
//    "dog", "sitting" → "sit", "women" → "woman"), and the class whose entry has the most senses
//    tagged in WordNet's sense-tagged corpus wins (ties: noun, verb, adjective, adverb);
// 3. two context rules: a word right after a determiner or an adjective is not a verb (it takes
//    its noun or adjective reading: "a train station", "a tall building"); then a word with an
//    adjective reading directly before a noun is an adjective ("red car", "white table"), since
//    colours and materials tie or lean to nouns out of context.
//
// Adverbs count as `other`. Words WordNet does not know are nouns (names, rare words). What it gets
// wrong is listed in docs/clipa.md and checked in WordNetTaggerTests.

import Foundation

public struct WordNetTagger: PartOfSpeechTagger {
    /// Where Debian installs WordNet's database.
    public static let defaultDirectory = "/usr/share/wordnet"

    enum Class: Int, CaseIterable { case noun, verb, adjective, adverb }

    /// Tagged-sense counts per class of every lemma in the indexes.
    let counts: [String: [Int]]
    /// Irregular forms → base forms, per class (noun.exc, verb.exc, adj.exc, adv.exc).
    let exceptions: [[String: [String]]]

    /// Reads the index and exception files in `directory`; the error names the missing file and
    /// how to install it.
    public init(directory: String = WordNetTagger.defaultDirectory) throws {
        let names = ["noun", "verb", "adj", "adv"]
        var counts: [String: [Int]] = [:]
        var exceptions: [[String: [String]]] = []
        for (c, name) in names.enumerated() {
            let index = try Self.read(directory + "/index." + name)
            for line in index.split(separator: "\n") where !line.hasPrefix(" ") {
                // lemma pos synset_cnt p_cnt [ptr_symbol × p_cnt] sense_cnt tagsense_cnt synset_offset…
                let f = line.split(separator: " ")
                guard f.count >= 6, let pointers = Int(f[3]), f.count > 5 + pointers, let tagged = Int(f[5 + pointers]) else { continue }
                counts[String(f[0]), default: [0, 0, 0, 0]][c] = tagged + 1  // + 1: present, even with no tagged sense
            }
            var exc: [String: [String]] = [:]
            for line in try Self.read(directory + "/" + name + ".exc").split(separator: "\n") {
                let f = line.split(separator: " ").map(String.init)
                if f.count >= 2 { exc[f[0], default: []] += f.dropFirst() }
            }
            exceptions.append(exc)
        }
        self.counts = counts
        self.exceptions = exceptions
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TaggerError(message: "\(path): not found; the WordNet tagger needs Debian's wordnet-base (scripts/bootstrap.sh installs it)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    public func tag(_ words: [String]) -> [PartOfSpeech] {
        var tags = words.map { unigram($0.lowercased()) }
        for i in tags.indices.dropFirst() where tags[i] == .verb && !Self.auxiliaries.contains(words[i].lowercased()) {
            let before = words[i - 1].lowercased()
            guard Self.determiners.contains(before) || tags[i - 1] == .adjective else { continue }
            let w = words[i].lowercased()
            tags[i] = score(w, .adjective) > score(w, .noun) ? .adjective : .noun
        }
        for i in tags.indices.dropLast() where tags[i] != .adjective && tags[i + 1] == .noun {
            let w = words[i].lowercased()
            if !Self.closedClass.contains(w), score(w, .adjective) > 0 { tags[i] = .adjective }
        }
        return tags
    }

    /// The class of `word` out of context.
    func unigram(_ word: String) -> PartOfSpeech {
        if Self.closedClass.contains(word) || word.allSatisfy({ !$0.isLetter }) { return .other }
        if Self.auxiliaries.contains(word) { return .verb }
        var best: Class?
        var bestScore = 0
        for c in Class.allCases {
            let s = score(word, c)
            if s > bestScore { (best, bestScore) = (c, s) }
        }
        switch best {
        case .noun, nil: return .noun
        case .verb: return .verb
        case .adjective: return .adjective
        case .adverb: return .other
        }
    }

    /// The tagged-sense count (+ 1) of the best base form of `word` in class `c`, 0 when none.
    func score(_ word: String, _ c: Class) -> Int {
        baseForms(word, c).map { counts[$0]?[c.rawValue] ?? 0 }.max() ?? 0
    }

    /// `word` and its candidate base forms in class `c` (WordNet's `morphy`).
    func baseForms(_ word: String, _ c: Class) -> [String] {
        var forms = [word] + (exceptions[c.rawValue][word] ?? [])
        for (suffix, ending) in Self.detachments[c.rawValue] where word.hasSuffix(suffix) && word.count > suffix.count {
            forms.append(String(word.dropLast(suffix.count)) + ending)
        }
        return forms
    }

    /// `morphy`'s suffix rules per class (noun, verb, adjective, adverb).
    static let detachments: [[(String, String)]] = [
        [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")],
        [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", ""),
         // doubled consonants ("sitting" → "sit", "stopped" → "stop"), which morphy's list misses
         ("tting", "t"), ("pping", "p"), ("nning", "n"), ("mming", "m"), ("gging", "g"), ("bbing", "b"), ("dding", "d"),
         ("tted", "t"), ("pped", "p"), ("nned", "n"), ("mmed", "m"), ("gged", "g"), ("bbed", "b"), ("dded", "d")],
        [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
        [],
    ]

    /// Words after which a noun phrase starts.
    static let determiners: Set<String> = [
        "a", "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our", "their", "some", "every",
        "each", "no", "another",
    ]

    /// Forms of the auxiliaries, which WordNet files under rare nouns or not at all.
    static let auxiliaries: Set<String> = [
        "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "having", "do", "does", "did",
    ]

    /// Closed-class words: determiners, pronouns, prepositions, conjunctions, numbers and particles.
    static let closedClass: Set<String> = [
        "a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "all", "both", "no", "not",
        "my", "your", "his", "her", "its", "our", "their", "i", "you", "he", "she", "it", "we", "they", "me", "him",
        "us", "them", "who", "whom", "whose", "which", "what", "there", "here", "of", "in", "on", "at", "to", "for",
        "with", "by", "from", "into", "onto", "over", "under", "above", "below", "near", "behind", "between", "through",
        "across", "along", "around", "against", "about", "beside", "inside", "outside", "up", "down", "off", "out",
        "and", "or", "but", "nor", "so", "as", "if", "than", "while", "when", "where", "one", "two", "three", "four",
        "five", "six", "seven", "eight", "nine", "ten", "another", "such", "very",
        "can", "could", "will", "would", "shall", "should", "may", "might", "must",
    ]
}

/// The tagger's data cannot be read.
public struct TaggerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
