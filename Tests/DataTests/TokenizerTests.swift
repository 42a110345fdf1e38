// Tests of the CLIP tokenizer: OpenCLIP's ids on recorded texts (Fixtures/tokenizer_openclip.json,
// written by scripts/make_tokenizer_fixture.py), the vocabulary layout, each cleaning rule,
// merges-file errors, and the BPE trained on captions when the merges file is absent.

import Data
import Foundation
import Testing

/// OpenCLIP's merges file as the bootstrap installs it, loaded once. Its absence is a failure:
/// CI runs scripts/bootstrap.sh, which installs it.
private let openCLIP: Result<CLIPTokenizer, any Error> = Result {
    guard let url = TokenizerFiles.defaultMergesFile() else {
        throw MissingMerges()
    }
    return try CLIPTokenizer(mergesFile: url)
}

private struct MissingMerges: Error, CustomStringConvertible {
    var description: String {
        "the CLIP merges file is missing (looked at $CLIPLAB_BPE_PATH and "
            + "\(TokenizerFiles.cacheDirectory().appendingPathComponent(TokenizerFiles.mergesFileName).path)); "
            + "run scripts/bootstrap.sh to install it"
    }
}

/// The recorded OpenCLIP ids, with ftfy's `fix_encoding` and `badness` of each text (used by
/// MojibakeRepairTests.swift).
struct TokenizerFixture: Decodable {
    struct Case: Decodable {
        let text: String
        let cleaned: String
        let fixEncoding: String
        let badness: Int
        let ids: [String: [Int32]]

        enum CodingKeys: String, CodingKey {
            case text, cleaned, fixEncoding = "fix_encoding", badness, ids
        }
    }
    let openCLIPVersion: String
    let contextLengths: [Int]
    let cases: [Case]

    enum CodingKeys: String, CodingKey {
        case openCLIPVersion = "open_clip_version", contextLengths = "context_lengths", cases
    }

    static func load() throws -> TokenizerFixture {
        let url = try #require(
            Bundle.module.url(forResource: "tokenizer_openclip", withExtension: "json", subdirectory: "Fixtures"),
            "Fixtures/tokenizer_openclip.json is not in the test bundle")
        return try JSONDecoder().decode(TokenizerFixture.self, from: Foundation.Data(contentsOf: url))
    }
}

/// Exact scalar equality (Swift's `==` on strings is canonical equivalence).
func sameScalars(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.elementsEqual(b.unicodeScalars)
}

/// `s` with each scalar outside printable ASCII written as `\u{…}`, for failure messages.
func scalars(_ s: String) -> String {
    s.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? String($0) : String(format: "\\u{%X}", $0.value) }.joined()
}

@Suite("CLIP tokenizer against OpenCLIP")
struct OpenCLIPTokenizerTests {
    @Test("Every recorded text gives OpenCLIP's ids at context 77 and 16")
    func fixtureIds() throws {
        let tokenizer = try openCLIP.get()
        let fixture = try TokenizerFixture.load()
        #expect(fixture.cases.count >= 120)
        #expect(fixture.contextLengths == [77, 16])
        for c in fixture.cases {
            for n in fixture.contextLengths {
                let expected = try #require(c.ids[String(n)])
                let got = tokenizer.tokenize(c.text, contextLength: n)
                #expect(got == expected, """
                    open_clip \(fixture.openCLIPVersion), context \(n), text "\(scalars(c.text))"
                    cleaned ours   "\(scalars(TextCleaner.clean(c.text)))"
                    cleaned theirs "\(scalars(c.cleaned))"
                    """)
            }
        }
    }

    @Test("Cleaning gives OpenCLIP's cleaned text for every recorded text")
    func fixtureCleaning() throws {
        for c in try TokenizerFixture.load().cases {
            let ours = TextCleaner.clean(c.text)
            #expect(sameScalars(ours, c.cleaned), "\"\(scalars(c.text))\": ours \"\(scalars(ours))\", OpenCLIP \"\(scalars(c.cleaned))\"")
        }
    }

    @Test("Vocabulary layout: 49,408 ids, specials last, padding 0 = '!'")
    func layout() throws {
        let t = try openCLIP.get()
        #expect(t.vocabularySize == 49_408)
        #expect(t.merges.count == CLIPTokenizer.openCLIPMergeCount)
        #expect(t.startOfText == 49_406)
        #expect(t.endOfText == 49_407)
        #expect(t.merges.first! == ("i", "n"))
        #expect(t.merges.last! == ("jeky", "ll</w>"))
        // Id 0 is the byte symbol "!", 256 the same ending a word; 320 is "a</w>".
        #expect(t.decode([0]) == "!")
        #expect(t.encode("!") == [256])
        #expect(t.encode("a") == [320])
        #expect(t.decode([49_406, 320, 1125, 539, 320, 2368, 49_407, 0, 0]) == "a photo of a cat")
        // Literal specials in a caption become the special ids.
        #expect(t.encode("<start_of_text> <end_of_text>") == [49_406, 49_407])
    }

    @Test("Truncation keeps the first ids and ends with end-of-text; pooling finds it by argmax")
    func truncation() throws {
        let t = try openCLIP.get()
        let text = Array(repeating: "photo", count: 40).joined(separator: " ")
        let full = t.encode(text)
        #expect(full.count == 40)
        for n in [1, 2, 16, 41, 42, 77] {
            let row = t.tokenize(text, contextLength: n)
            #expect(row.count == n)
            let kept = Array(([t.startOfText] + full + [t.endOfText]).prefix(n))
            #expect(Array(row.prefix(kept.count - 1)) == Array(kept.dropLast()))
            #expect(row[kept.count - 1] == t.endOfText)
            #expect(row.dropFirst(kept.count).allSatisfy { $0 == 0 })
            #expect(row.indices.max(by: { row[$0] < row[$1] }) == kept.count - 1)
        }
        let batch = t.tokenize(["a photo of a cat", text], contextLength: 16)
        #expect(batch == t.tokenize("a photo of a cat", contextLength: 16) + t.tokenize(text, contextLength: 16))
    }

    @Test("Curly apostrophes tokenize as the ASCII contraction")
    func curlyContraction() throws {
        let t = try openCLIP.get()
        #expect(t.encode("it’s a dog’s") == t.encode("it's a dog's"))
        #expect(t.encode("ＬＯＵＤ") == t.encode("loud"))
    }

    @Test("A missing merges file, a corrupt one and malformed lines give errors naming the file")
    func fileErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cliplab-tokenizer-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        func write(_ name: String, _ bytes: [UInt8]) throws -> URL {
            let url = dir.appendingPathComponent(name)
            try Foundation.Data(bytes).write(to: url)
            return url
        }
        func error(_ url: URL, merges: Int) -> TokenizerError? {
            do {
                _ = try CLIPTokenizer(mergesFile: url, mergeCount: merges)
                return nil
            } catch {
                return error as? TokenizerError
            }
        }

        let missing = dir.appendingPathComponent("absent.txt.gz")
        let e1 = try #require(error(missing, merges: 1))
        #expect(e1.description.hasPrefix(missing.path + ": cannot open"))

        // A gzip header followed by garbage.
        let corrupt = try write("corrupt.txt.gz", [0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03] + (0..<200).map { UInt8($0 * 37 % 251) })
        let e2 = try #require(error(corrupt, merges: 1))
        guard case .cannotRead = e2 else { Issue.record("expected cannotRead, got \(e2)"); return }
        #expect(e2.description.hasPrefix(corrupt.path + ": cannot read"))

        let badLine = try write("bad.txt", Array("#version: 0.2\ni n\nt h e\n".utf8))
        let e3 = try #require(error(badLine, merges: 2))
        #expect(e3 == .malformedMerge(path: badLine.path, line: 3, text: "t h e"))
        #expect(e3.description == badLine.path + ": line 3: expected two space-separated symbols, found \"t h e\"")

        let unknown = try write("unknown.txt", Array("#version: 0.2\ni n\nin xyz\n".utf8))
        #expect(error(unknown, merges: 2) == .unknownSymbol(path: unknown.path, line: 3, symbol: "xyz"))

        let short = try write("short.txt", Array("#version: 0.2\ni n\n".utf8))
        let e5 = try #require(error(short, merges: 5))
        #expect(e5 == .tooFewMerges(path: short.path, expected: 5, found: 1))
        #expect(e5.description.contains(short.path))

        let notUTF8 = try write("latin1.txt", Array("#version: 0.2\n".utf8) + [0x69, 0x20, 0xE9, 0x0A])
        #expect(error(notUTF8, merges: 1) == .invalidUTF8(path: notUTF8.path, line: 2))

        // A well-formed plain-text file loads: 512 + 2 merges + 2 ids.
        let good = try write("good.txt", Array("#version: 0.2\ni n\nin g</w>\nextra line\n".utf8))
        let t = try CLIPTokenizer(mergesFile: good, mergeCount: 2)
        #expect(t.vocabularySize == 516)
        #expect(t.encode("ing") == [513])
        #expect(t.decode(t.encode("sing ing")) == "sing ing")
    }

    @Test("The locator prefers CLIPLAB_BPE_PATH, then the cache folder")
    func locator() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cliplab-locator-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cached = dir.appendingPathComponent(TokenizerFiles.mergesFileName)
        #expect(TokenizerFiles.defaultMergesFile(environment: ["CLIPLAB_CACHE": dir.path]) == nil)
        _ = FileManager.default.createFile(atPath: cached.path, contents: Foundation.Data())
        #expect(TokenizerFiles.defaultMergesFile(environment: ["CLIPLAB_CACHE": dir.path])?.path == cached.path)
        let explicit = dir.appendingPathComponent("mine.txt")
        _ = FileManager.default.createFile(atPath: explicit.path, contents: Foundation.Data())
        #expect(TokenizerFiles.defaultMergesFile(environment: ["CLIPLAB_CACHE": dir.path, "CLIPLAB_BPE_PATH": explicit.path])?.path == explicit.path)
        #expect(TokenizerFiles.cacheDirectory(environment: ["HOME": "/home/x"]).path == "/home/x/.cache/cliplab")
    }
}

@Suite("Text cleaning (OpenCLIP's clean='lower')")
struct TextCleaningTests {
    // Expected values were produced by open_clip 3.3.0's `_clean_lower` (ftfy 6.3.1).
    private func check(_ input: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let got = TextCleaner.clean(input)
        #expect(sameScalars(got, expected), "\"\(scalars(input))\" → \"\(scalars(got))\", expected \"\(scalars(expected))\"", sourceLocation: sourceLocation)
    }

    @Test("HTML entities: to a fixed point before the first line with '<', twice after it")
    func html() {
        check("fish &amp; chips", "fish & chips")
        check("&amp;amp;amp;", "&")
        check("a &amp;amp; <b>\nx &amp;amp;amp;", "a & <b> x &amp;")
        check("&NTILDE;", "ñ")
        check("&copy2024 &ampx", "©2024 &x")
        check("&#x85; &#150; &#128512;", "… – 😀")
        check("&#0;&#xD800;", "��")
        check("&#11;x", "x")
    }

    @Test("Whitespace: Python's str.split() set, collapsed and stripped; CR, CRLF and U+2028 too")
    func whitespace() {
        check("  lots \t of \n\n space  ", "lots of space")
        check("a\r\nb\rc\u{2028}d", "a b c d")
        check("a\u{A0}b\u{2009}c\u{202F}d", "a b c d")
        check("a\u{3000}b", "a b")
        check("", "")
        check(" \t\n ", "")
    }

    @Test("Lower case is Python's full mapping, with final sigma")
    func lower() {
        check("İ", "i\u{307}")
        check("ΟΔΟΣ ΣΟΦΟΣ Σ", "οδος σοφος σ")
        check("ẞ", "ß")
        check("A Photo Of A Dog", "a photo of a dog")
    }

    @Test("NFC, full width, ligatures and curly quotes")
    func unicodeForms() {
        check("cafe\u{301}", "caf\u{E9}")
        check("ＬＯＵＤ ＮＯＩＳＥＳ", "loud noises")
        check("ｶﾞ", "\u{30AC}")
        check("ﬁsh", "fish")
        check("ŉ", "'n")
        check("ǅ", "d\u{17E}")
        check("it’s", "it's")
        check("“hi” ‘x’ ʼ „ ‟ ‛ ‚", "\"hi\" 'x' ' \" \" ' '")
    }

    @Test("Mojibake is repaired per line, before the character fixes and around the HTML steps")
    func mojibake() {
        check("cafÃ©", "café")
        check("CAFÃ‰ CRÃˆME", "café crème")
        check("ÃƒÂ©tÃƒÂ©", "été")
        check("itâ€™s", "it's")  // repaired to ’, then uncurled: the contraction 's
        check("â€¦ and \u{85}", "… and …")
        // A line of its own can be bad where the whole text is not ("^Ã " starts line 2 only).
        check("line one.\nÃ la mode", "line one. à la mode")
        // ftfy's entities first, then the repair; HTML unescaping stops at the line with '<'.
        check("caf&Atilde;&copy;", "café")
        check("&lt;b&gt; cafÃ©\n<i>crÃ¨me</i>", "<b> café <i>crème</i>")
        // ftfy's codec reads a final "À\n" (bytes C0 0A) as U+0000, which is then removed.
        check("cafÃ© À\nnext", "café next")
        // Correct text that looks alike stays.
        check("São Paulo NÃO", "são paulo não")
        check("Ð¿Ñ€Ð¸Ð²ÐµÑ‚", "привет")
    }

    @Test("Control characters and terminal escapes are removed; C1 controls read as Windows-1252")
    func controls() {
        check("a\u{1C}b", "ab")
        check("a\u{0}b\u{8}c\u{B}d\u{7F}e", "abcde")
        check("\u{FEFF}a\u{2060}b\u{206A}c\u{FFFC}d", "a\u{2060}bcd")
        check("\u{1B}[31mred\u{1B}[0m", "red")
        check("a\u{85}b", "a…b")
        check("a\u{AD}b\u{200B}c\u{200D}d", "a\u{AD}b\u{200B}c\u{200D}d")
    }
}

@Suite("BPE trained on captions (fallback without the merges file)")
struct TrainedBPETests {
    static let captions: [String] = {
        let subjects = ["cat", "dog", "bird", "horse", "child", "woman", "man", "car", "boat", "train"]
        let verbs = ["sitting on", "running across", "standing near", "looking at", "jumping over"]
        let places = ["the grass", "a wooden table", "the beach", "a snowy street", "the old bridge"]
        var out: [String] = []
        for (i, s) in subjects.enumerated() {
            for (j, v) in verbs.enumerated() {
                for (k, p) in places.enumerated() where (i + j + k) % 2 == 0 {
                    out.append("A photo of a \(s) \(v) \(p)")
                }
            }
        }
        return out + ["Two dogs playing in the snow!", "it's a sunny day, isn't it?", "ＬＯＵＤ café"]
    }()

    @Test("Vocabulary size as requested, specials last, deterministic and order-independent")
    func layoutAndDeterminism() throws {
        let a = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 600)
        let b = try CLIPTokenizer.trainBPE(captions: Self.captions.reversed(), vocabularySize: 600)
        #expect(a.vocabularySize == 600)
        #expect(a.startOfText == 598)
        #expect(a.endOfText == 599)
        #expect(a.merges.count == 600 - 514)
        #expect(a.merges.elementsEqual(b.merges, by: { $0 == $1 }))
        for caption in Self.captions {
            let ids = a.encode(caption)
            #expect(ids == b.encode(caption))
            #expect(ids.allSatisfy { $0 >= 0 && $0 < a.startOfText })
            let row = a.tokenize(caption, contextLength: 32)
            #expect(row.first == a.startOfText)
            #expect(row.indices.max(by: { row[$0] < row[$1] }) == min(ids.count + 1, 31))
        }
        // The most frequent pair comes first; equal counts are ordered by code points.
        let tie = try CLIPTokenizer.trainBPE(captions: ["cd ab", "ab cd", "xy xy xy"], vocabularySize: 517)
        #expect(tie.merges.map { [$0.0, $0.1] } == [["x", "y</w>"], ["a", "b</w>"], ["c", "d</w>"]])
    }

    @Test("decode(encode(x)) is the cleaned text for ASCII captions of space-separated words")
    func roundTrip() throws {
        let t = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 700)
        for caption in Self.captions.prefix(40) + ["A  Photo of a  ZEBRA", "unseen words like xylophone"] {
            #expect(t.decode(t.encode(caption)) == TextCleaner.clean(caption))
        }
        #expect(t.decode(t.tokenize("a photo of a cat", contextLength: 20)) == "a photo of a cat")
    }

    @Test("A caption from the training set takes fewer ids than bytes (under half its non-space bytes)")
    func compression() throws {
        let t = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 700)
        for caption in Self.captions.prefix(20) {
            let bytes = caption.utf8.filter { $0 != 0x20 }.count
            #expect(t.encode(caption).count < bytes / 2, "\(caption): \(t.encode(caption).count) ids for \(bytes) bytes")
        }
    }

    @Test("Too small a vocabulary is an error; running out of pairs leaves unused ids")
    func limits() throws {
        #expect(throws: TokenizerError.vocabularySizeTooSmall(requested: 513, minimum: 514)) {
            try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 513)
        }
        let base = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 514)
        #expect(base.merges.isEmpty)
        #expect(base.encode("cat") == [Int32(ByteIds.c), Int32(ByteIds.a), Int32(ByteIds.t + 256)])
        let tiny = try CLIPTokenizer.trainBPE(captions: ["aaa bbb"], vocabularySize: 2_000)
        #expect(tiny.vocabularySize == 2_000)
        #expect(tiny.endOfText == 1_999)
        #expect(tiny.merges.count < 10)
        #expect(tiny.decode([Int32(600)]) == "")
        #expect(tiny.decode(tiny.encode("aaa bbb")) == "aaa bbb")
    }

    @Test("Copies share one cache and give the same ids from many tasks at once")
    func concurrentUse() async throws {
        let shared = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 700)
        let fresh = try CLIPTokenizer.trainBPE(captions: Self.captions, vocabularySize: 700)
        let expected = Self.captions.map { fresh.tokenize($0, contextLength: 24) }
        let results = await withTaskGroup(of: (Int, [[Int32]]).self) { group in
            for task in 0..<8 {
                group.addTask {
                    let copy = shared
                    return (task, Self.captions.map { copy.tokenize($0, contextLength: 24) })
                }
            }
            var out: [Int: [[Int32]]] = [:]
            for await (task, rows) in group { out[task] = rows }
            return out
        }
        #expect(results.count == 8)
        #expect(results.values.allSatisfy { $0 == expected })
    }

    /// Byte symbol ids of ASCII letters: printable bytes come first, from `!` (0x21) = 0.
    private enum ByteIds {
        static let a = 0x61 - 0x21, c = 0x63 - 0x21, t = 0x74 - 0x21
    }
}
