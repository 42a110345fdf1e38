// The WordNet lexicon tagger on hand-tagged captions (Penn classes as CLIPA ranks them: N noun,
// J adjective, V verb, O other). The test pins the tagger's accuracy and the exact words it gets
// wrong, which docs/clipa.md lists.

import Data
import Foundation
import Testing

@Suite("WordNet tagger")
struct WordNetTaggerTests {
    /// Captions written for this test, each word with the class a careful annotator gives it.
    static let tagged = [
        "a:O photo:N of:O a:O cat:N sitting:V on:O a:O wooden:J table:N",
        "two:O dogs:N playing:V in:O the:O park:N",
        "a:O woman:N is:V riding:V a:O red:J bicycle:N down:O the:O street:N",
        "the:O old:J man:N stands:V next:J to:O a:O white:J car:N",
        "children:N are:V eating:V ice:N cream:N on:O a:O sunny:J day:N",
        "a:O close:J up:O of:O a:O yellow:J flower:N with:O green:J leaves:N",
        "an:O orange:J cat:N sleeps:V on:O the:O sofa:N",
        "people:N walking:V across:O a:O busy:J bridge:N at:O night:N",
        "a:O small:J boat:N floating:V on:O a:O calm:J lake:N",
        "the:O kitchen:N has:V a:O large:J window:N and:O wooden:J cabinets:N",
        "a:O bowl:N of:O fresh:J fruit:N on:O the:O counter:N",
        "three:O birds:N flying:V over:O the:O ocean:N",
        "a:O black:J and:O white:J photo:N of:O a:O train:N station:N",
        "a:O girl:N holding:V an:O umbrella:N in:O the:O rain:N",
        "the:O mountains:N are:V covered:V with:O snow:N",
        "a:O pizza:N with:O cheese:N and:O tomatoes:N",
        "a:O man:N wearing:V a:O blue:J shirt:N smiles:V at:O the:O camera:N",
        "an:O empty:J room:N with:O a:O bed:N and:O a:O lamp:N",
        "horses:N grazing:V in:O a:O green:J field:N",
        "a:O plate:N of:O food:N on:O a:O table:N",
        "a:O tall:J building:N in:O the:O city:N",
        "a:O dog:N running:V on:O the:O beach:N",
        "the:O sun:N sets:V behind:O the:O hills:N",
        "a:O group:N of:O friends:N sitting:V around:O a:O fire:N",
        "a:O cup:N of:O hot:J coffee:N on:O a:O desk:N",
    ]

    /// Tags `sentences` ("word:C …"); returns the words tagged right, the words, and each miss.
    static func score(_ sentences: [String], _ tagger: WordNetTagger) -> (right: Int, total: Int, wrong: [String]) {
        var total = 0, right = 0
        var wrong: [String] = []
        for sentence in sentences {
            let pairs = sentence.split(separator: " ").map { $0.split(separator: ":").map(String.init) }
            let words = pairs.map { $0[0] }
            let expected = pairs.map { ["N": PartOfSpeech.noun, "J": .adjective, "V": .verb, "O": .other][$0[1]]! }
            for (i, t) in tagger.tag(words).enumerated() {
                total += 1
                if t == expected[i] { right += 1 } else { wrong.append("\(words[i]) (\(expected[i]) → \(t))") }
            }
        }
        return (right, total, wrong)
    }

    @Test("Tags hand-tagged captions; the words it misses are the documented ones")
    func accuracy() throws {
        let (right, total, wrong) = Self.score(Self.tagged, try WordNetTagger())
        let accuracy = Double(right) / Double(total)
        #expect(accuracy >= 0.9, "accuracy \(accuracy) over \(total) words; wrong: \(wrong)")
        #expect(wrong == Self.knownMistakes, "\(wrong)")
    }

    /// What the lexicon tagger gets wrong on the sentences above (docs/clipa.md). These sentences
    /// were also the tagger's development set: its determiner rule came from their errors.
    static let knownMistakes = ["green (adjective → noun)", "leaves (noun → verb)", "sleeps (verb → noun)", "smiles (verb → noun)"]

    /// Captions written after the tagger was finished and tagged before it ran on them: its
    /// held-out accuracy.
    static let heldOut = [
        "a:O young:J boy:N throws:V a:O ball:N to:O his:O father:N",
        "two:O women:N talking:V outside:O a:O small:J shop:N",
        "a:O red:J bus:N drives:V past:O old:J houses:N",
        "the:O baby:N sleeps:V in:O a:O wooden:J crib:N",
        "a:O cat:N looking:V out:O of:O the:O window:N",
        "snow:N covers:V the:O quiet:J village:N",
        "a:O chef:N cuts:V vegetables:N in:O a:O restaurant:N kitchen:N",
        "a:O laptop:N and:O a:O notebook:N on:O a:O white:J desk:N",
        "tourists:N take:V pictures:N of:O the:O famous:J tower:N",
        "a:O brown:J horse:N jumps:V over:O a:O fence:N",
    ]

    @Test("Held-out captions: at least 85% of the words tagged right")
    func heldOutAccuracy() throws {
        let (right, total, wrong) = Self.score(Self.heldOut, try WordNetTagger())
        #expect(Double(right) / Double(total) >= 0.85, "\(right)/\(total); wrong: \(wrong)")
        print("WordNet tagger, held-out captions: \(right)/\(total) right; wrong: \(wrong)")
    }

    @Test("Base forms come from WordNet's exception lists and suffix rules; punctuation and closed words are other")
    func morphology() throws {
        let tagger = try WordNetTagger()
        #expect(tagger.tag(["women", "children", "geese"]) == [.noun, .noun, .noun])
        #expect(tagger.tag(["sitting", "ran", "stopped"]).allSatisfy { $0 == .verb })
        #expect(tagger.tag([",", ".", "the", "of", "42"]).allSatisfy { $0 == .other })
        #expect(tagger.tag(["zyxwvut"]) == [.noun], "unknown words are nouns")
    }

    @Test("A missing WordNet directory names the file and the package")
    func missing() {
        do {
            _ = try WordNetTagger(directory: "/nonexistent/wordnet")
            Issue.record("no error")
        } catch {
            #expect("\(error)".contains("/nonexistent/wordnet/index.noun") && "\(error)".contains("wordnet-base"))
        }
    }
}
