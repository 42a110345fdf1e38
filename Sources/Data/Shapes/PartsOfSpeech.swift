// The part of speech of every word the caption grammar (Captions.swift) can emit, built from the
// same word lists the grammar draws from, so syntax masking on shapes captions needs no tagger
// and makes no tagging mistakes. Every word has one role in this grammar: colours, sizes,
// textures and backgrounds are adjectives; shapes and the places' head words are nouns.

extension ShapesWorld {
    /// The class of each word of the grammar (lower case, as `CaptionWords.split` cuts captions).
    public static let partsOfSpeech: [String: PartOfSpeech] = {
        var table: [String: PartOfSpeech] = [:]
        func add(_ words: [String], _ tag: PartOfSpeech) {
            for phrase in words {
                for word in CaptionWords.split(phrase) { table[word.lowercased()] = tag }
            }
        }
        add(Scene.Colour.allCases.flatMap(\.synonyms), .adjective)
        add(Scene.Background.allCases.flatMap(\.synonyms), .adjective)
        add(Scene.Size.allCases.flatMap(\.synonyms), .adjective)
        add(Scene.Texture.allCases.flatMap(\.synonyms), .adjective)
        // Shape nouns; the modifiers inside multi-word names are set below.
        add(Scene.Shape.allCases.flatMap { $0.synonyms + $0.pluralSynonyms }, .noun)
        add(["five-pointed", "single", "upper", "lower", "simple", "flat", "digital", "minimalist"], .adjective)
        add(["plus", "love", "crescent", "sign", "signs"], .noun)
        // Places: "at the top left", "in the top left corner", "along the bottom edge", …
        add(["top", "bottom", "left", "right", "centre", "middle", "corner", "side", "edge"], .noun)
        // Frames and distractors.
        add(["background", "backdrop", "pair", "photo", "image", "picture", "drawing", "illustration", "clip", "art",
             "rendering", "colours", "computer", "graphics"], .noun)
        add(["is", "are", "rendered"], .verb)
        add(["a", "an", "the", "one", "two", "three", "four", "and", "with", "of", "on", "at", "in", "against", "along",
             "there", "simply", ",", "."], .other)
        return table
    }()

    /// Tags shapes-world captions from `partsOfSpeech`; a word outside the grammar is `.other`.
    public struct Tagger: PartOfSpeechTagger {
        public init() {}
        public func tag(_ words: [String]) -> [PartOfSpeech] {
            words.map { ShapesWorld.partsOfSpeech[$0.lowercased()] ?? .other }
        }
    }
}
