// Text token reduction: every strategy's row layout, what each keeps of a long caption (a prefix,
// an ordered subset, a permuted subset, a window, the nouns first), that short captions pass
// unchanged, and syntax masking on shapes captions tagged by their own grammar.

import Compute
import Data
import Testing
import TokenReduction

/// A BPE trained on shapes captions (no merges file needed).
let shapesTokenizer: CLIPTokenizer = {
    let world = ShapesWorld(ShapesWorld.Configuration(seed: 5, count: 2000))
    return try! CLIPTokenizer.trainBPE(captions: (0..<2000).map(world.caption), vocabularySize: 1024)
}()

/// The content ids of a reduced row: between the start and the first end-of-text.
func content(_ row: [Int32], _ t: any Tokenizer) -> [Int32] {
    #expect(row.first == t.startOfText)
    let end = row.firstIndex(of: t.endOfText)!
    #expect(row[(end + 1)...].allSatisfy { $0 == 0 }, "padding after end-of-text")
    return Array(row[1..<end])
}

/// Whether `small` occurs in `large` in order (not necessarily contiguously).
func isSubsequence(_ small: [Int32], of large: [Int32]) -> Bool {
    var it = large.makeIterator()
    return small.allSatisfy { s in while let x = it.next() { if x == s { return true } }; return false }
}

@Suite struct TextTokenReductionTests {
    let t = shapesTokenizer
    let long = "a photo of two small striped red circles at the top left and on the right with a large blue star in the middle on a grey background"

    @Test func everyStrategyFillsTheRow() {
        for strategy in TextTokenReduction.allCases {
            for length in [2, 3, 4, 8, 16, 32] {
                let row = strategy.tokenize(long, length: length, tokenizer: t, tagger: ShapesWorld.Tagger(), sample: 3)
                #expect(row.count == length)
                let n = content(row, t).count
                if strategy == .syntax {
                    #expect(n <= length - 2 && n >= min(length - 2, 1), "syntax keeps whole words, cut to the slots")
                } else {
                    #expect(n == min(length - 2, t.encode(long).count))
                }
            }
        }
    }

    @Test func truncateIsPlainTokenisation() {
        for length in [4, 8, 32] {
            #expect(TextTokenReduction.truncate.tokenize(long, length: length, tokenizer: t) == t.tokenize(long, contextLength: length))
        }
    }

    @Test func randomShuffleAndBlockKeepWhatTheyPromise() {
        let all = t.encode(long), slots = 6
        var randomRows = Set<[Int32]>(), shuffledOutOfOrder = false, starts = Set<Int>()
        for sample in 0..<50 {
            let r = content(TextTokenReduction.random.tokenize(long, length: slots + 2, tokenizer: t, seed: 1, sample: sample), t)
            #expect(r.count == slots && isSubsequence(r, of: all), "random keeps caption order")
            randomRows.insert(r)
            let s = content(TextTokenReduction.shuffle.tokenize(long, length: slots + 2, tokenizer: t, seed: 1, sample: sample), t)
            #expect(s.count == slots)
            if !isSubsequence(s, of: all) { shuffledOutOfOrder = true }
            let b = content(TextTokenReduction.block.tokenize(long, length: slots + 2, tokenizer: t, seed: 1, sample: sample), t)
            let start = (0...(all.count - slots)).filter { Array(all[$0..<($0 + slots)]) == b }
            #expect(!start.isEmpty, "block is a contiguous window")
            starts.formUnion(start)
        }
        #expect(randomRows.count > 40, "random draws differ between samples")
        #expect(shuffledOutOfOrder, "shuffle permutes")
        #expect(starts.count > 5 && starts.contains(0) || starts.count > 10, "block windows start at many places")
    }

    @Test func shortCaptionsPassUnchanged() {
        let short = "a red circle, on a grey background."
        let plain = t.tokenize(short, contextLength: 32)
        for strategy in TextTokenReduction.allCases {
            #expect(strategy.tokenize(short, length: 32, tokenizer: t, tagger: ShapesWorld.Tagger(), sample: 7) == plain, "\(strategy)")
        }
    }

    @Test func syntaxKeepsNounsThenAdjectivesThenVerbs() {
        let words = CaptionWords.split("there is a large red circle, rendered simply at the top left.")
        #expect(words == ["there", "is", "a", "large", "red", "circle", ",", "rendered", "simply", "at", "the", "top", "left", "."])
        let tags = ShapesWorld.Tagger().tag(words)
        func keep(_ slots: Int) -> String { TextTokenReduction.syntaxKept(tags: tags, slots: slots).map { words[$0] }.joined(separator: " ") }
        #expect(keep(3) == "circle top left")
        #expect(keep(4) == "large circle top left", "adjectives next, the earlier first")
        #expect(keep(5) == "large red circle top left")
        #expect(keep(7) == "is large red circle rendered top left", "then verbs")
        #expect(keep(8) == "there is large red circle rendered top left", "then the rest, by position")
        // Tokenised at length 8 (6 word slots): the kept words in caption order.
        let row = TextTokenReduction.syntax.tokenize(
            "there is a large red circle, rendered simply at the top left.", length: 8, tokenizer: t, tagger: ShapesWorld.Tagger())
        #expect(row == t.tokenize("is large red circle top left", contextLength: 8))
    }

    @Test func syntaxSortIsStableOnTies() {
        let tags = [PartOfSpeech](repeating: .noun, count: 40)
        #expect(TextTokenReduction.syntaxKept(tags: tags, slots: 10) == Array(0..<10))
        #expect(PartOfSpeech(pennTag: "NNS") == .noun && PartOfSpeech(pennTag: "JJR") == .adjective)
        #expect(PartOfSpeech(pennTag: "VBZ") == .verb && PartOfSpeech(pennTag: "DT") == .other && PartOfSpeech(pennTag: ",") == .other)
    }

    @Test func theShapesGrammarTagsEveryWordItEmits() {
        let world = ShapesWorld(ShapesWorld.Configuration(seed: 11, count: 4000))
        var unknown = Set<String>()
        for i in 0..<4000 {
            for word in CaptionWords.split(world.caption(i)) where ShapesWorld.partsOfSpeech[word.lowercased()] == nil {
                unknown.insert(word)
            }
        }
        #expect(unknown.isEmpty, "words without a part of speech: \(unknown.sorted())")
        #expect(ShapesWorld.partsOfSpeech["crimson"] == .adjective && ShapesWorld.partsOfSpeech["rhombuses"] == .noun)
        #expect(ShapesWorld.partsOfSpeech["five-pointed"] == .adjective && ShapesWorld.partsOfSpeech["rendered"] == .verb)
    }

    @Test func parsingNamesTheChoices() throws {
        #expect(try TextTokenReduction(parsing: "syntax") == .syntax)
        do {
            _ = try TextTokenReduction(parsing: "nouns")
            Issue.record("accepted 'nouns'")
        } catch let e as TokenReductionError {
            #expect(e.message.contains("'nouns'") && e.message.contains("truncate, random, shuffle, block, syntax"))
        }
    }
}
