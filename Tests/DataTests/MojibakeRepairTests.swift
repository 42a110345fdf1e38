// Tests of ftfy's mojibake repair (`MojibakeRepair.fixEncoding`) and badness heuristic on their
// own: ftfy 6.3.1's `fix_encoding` and `badness` of every text in Fixtures/tokenizer_openclip.json
// (recorded by scripts/make_tokenizer_fixture.py), and hand-checked cases for each step. The
// expected values were produced by ftfy 6.3.1.

import Data
import Testing

@Suite("Mojibake repair (ftfy's fix_encoding) and badness")
struct MojibakeRepairTests {
    private func fix(_ input: String, _ expected: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let got = MojibakeRepair.fixEncoding(input)
        #expect(sameScalars(got, expected), "\"\(scalars(input))\" → \"\(scalars(got))\", expected \"\(scalars(expected))\"",
            sourceLocation: sourceLocation)
    }

    @Test("fixEncoding gives ftfy's fix_encoding for every recorded text")
    func fixtureFixEncoding() throws {
        let cases = try TokenizerFixture.load().cases
        #expect(cases.filter { !sameScalars($0.fixEncoding, $0.text) }.count >= 40)
        for c in cases {
            let ours = MojibakeRepair.fixEncoding(c.text)
            #expect(sameScalars(ours, c.fixEncoding),
                "\"\(scalars(c.text))\": ours \"\(scalars(ours))\", ftfy \"\(scalars(c.fixEncoding))\"")
        }
    }

    @Test("badness and isBad give ftfy's values for every recorded text")
    func fixtureBadness() throws {
        for c in try TokenizerFixture.load().cases {
            #expect(MojibakeRepair.badness(c.text) == c.badness, "\"\(scalars(c.text))\"")
            #expect(MojibakeRepair.isBad(c.text) == (c.badness > 0), "\"\(scalars(c.text))\"")
        }
    }

    @Test("badness counts non-overlapping matches of ftfy's regex")
    func badness() {
        let expected: [(String, Int)] = [
            ("plain ascii", 0), ("São Paulo", 0), ("naïve", 0), ("", 0),
            ("cafÃ©", 1), ("ÃƒÂ©", 2), ("Ã©tÃ© Ã©tÃ©", 4), ("â€œquotedâ€\u{9D}", 3),
            ("Ð¿Ñ€Ð¸Ð²ÐµÑ‚", 5), ("Â£10 and â‚¬5", 2), ("â”€â”€", 2), ("\u{85}", 1),
            ("Ã la mode", 1),  // ^[ÃÂ] then a space
            ("the Ã la", 1), ("x\nÃ la", 1),  // [a-z] \s? [ÃÂ] then a space
            ("×²", 1), ("Â\u{A0}", 1), ("œ1", 1), ("ÉCOLE Ã‰°", 1),
        ]
        for (text, count) in expected {
            #expect(MojibakeRepair.badness(text) == count, "\"\(scalars(text))\"")
            #expect(MojibakeRepair.isBad(text) == (count > 0), "\"\(scalars(text))\"")
        }
    }

    @Test("UTF-8 read as a single-byte encoding, once or several times")
    func charmapEncodings() {
        fix("sÃ³", "só")
        fix("schÃ¶n", "schön")
        fix("âœ” No problems", "✔ No problems")
        fix("ÃƒÂ©", "é")
        // Not bad, so left alone (even though "Ã³" alone would be fixed).
        fix("&ATILDE;&SUP3;", "&ATILDE;&SUP3;")
        fix("São Paulo", "São Paulo")
        fix("Ã³", "ó")
    }

    @Test("decode_inconsistent_utf8: mojibake runs next to correct text are fixed on their own")
    func inconsistent() {
        // No encoding decodes the whole text (ï would be a lone byte EF), so each run is fixed.
        fix("naïve cafÃ©", "naïve café")
        fix("Ð¿Ñ€Ð¸Ð²ÐµÑ‚ and café", "привет and café")
    }

    @Test("restore_byte_a0: a space where byte A0 was, and the à exceptions")
    func byteA0() {
        fix("voilÃ le travail", "voilà le travail")
        fix("Ã  la mode", "à la mode")
        fix("Ã s vezes", "às vezes")
        fix("fÃ cil", "fà cil")  // ftfy's choice: "à" is taken for a word of its own
    }

    @Test("replace_lossy_sequences: U+FFFD or ? in place of a byte")
    func lossy() {
        fix("â€œ like this â€\u{FFFD}", "“ like this \u{FFFD}")
        fix("â€œ like this â€?", "“ like this \u{FFFD}")
    }

    @Test("utf-8-variants: CESU-8 surrogate pairs and Java's C0 80")
    func utf8Variants() {
        fix("\u{ED}\u{A0}\u{BD}\u{ED}\u{B8}\u{8D}", "😍")
        fix("cafÃ©À\u{80} end", "café\u{0} end")
        // ftfy's codec also takes C0 before a final newline for U+0000 (the newline goes).
        fix("cafÃ© À\n", "café \u{0}")
    }

    @Test("C1 controls read as Windows-1252 when nothing else applies")
    func c1Controls() {
        fix("a\u{93}b\u{81}", "a“b\u{81}")
        fix("\u{85}", "…")
    }
}
