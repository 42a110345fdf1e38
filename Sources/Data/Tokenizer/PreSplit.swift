// The pre-split of cleaned text into the pieces BPE runs on, by hand instead of with `Regex`:
// OpenCLIP's pattern, case-insensitive,
//     <start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// scanned left to right, the first alternative that matches at a position winning.

/// One piece of pre-split text.
enum Piece {
    /// A literal `<start_of_text>` in the text.
    case startOfText
    /// A literal `<end_of_text>` in the text.
    case endOfText
    /// Text for BPE: a contraction, a run of letters, one number character, or a run of other
    /// non-space characters.
    case word(String)
}

/// OpenCLIP's pre-split.
enum PreSplit {
    /// Calls `body` with each piece of `text` in order. At each position, in this order:
    /// the literal specials; the contractions `'s 't 're 've 'm 'll 'd`; a maximal run of letters
    /// (`\p{L}`: general categories Lu Ll Lt Lm Lo); one number (`\p{N}`: Nd Nl No); a maximal run
    /// of characters that are neither whitespace (Unicode White_Space) nor letters nor numbers;
    /// whitespace is skipped. Combining marks are not letters, so `q` + U+0301 is two pieces.
    ///
    /// The pattern is case-insensitive, and the text is already lower-case, which leaves two
    /// effects (both measured with the `regex` module): `ſ` (U+017F) matches `s`, so `'ſ` is a
    /// contraction and `<ſtart_of_text>` is one piece, which BPE encodes as text (only the exact
    /// literal is the special); and U+0345 (combining ypogegrammeni, which case-folds to `ι`)
    /// matches none of the alternatives, so it is skipped like whitespace.
    static func forEach(in text: String, _ body: (Piece) -> Void) {
        let s = text.unicodeScalars
        var i = s.startIndex
        while i < s.endIndex {
            let c = s[i]
            if c == "<" {
                if let (end, exact) = literal(s, at: i, "<start_of_text>") {
                    body(exact ? .startOfText : .word(String(s[i..<end])))
                    i = end
                    continue
                }
                if let (end, _) = literal(s, at: i, "<end_of_text>") { body(.endOfText); i = end; continue }
            } else if c == "'", let end = contractionEnd(s, at: i) {
                body(.word(String(s[i..<end])))
                i = end
                continue
            }
            let kind = classify(c)
            var j = s.index(after: i)
            switch kind {
            case .space:
                i = j
                continue
            case .number:
                break
            case .letter, .other:
                while j < s.endIndex, classify(s[j]) == kind { j = s.index(after: j) }
            }
            body(.word(String(s[i..<j])))
            i = j
        }
    }

    enum Kind { case space, letter, number, other }

    @inline(__always)
    static func classify(_ c: Unicode.Scalar) -> Kind {
        let v = c.value
        if v < 0x80 {
            switch v {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x09...0x0D, 0x20: return .space
            default: return .other
            }
        }
        if v == 0x345 { return .space }
        let p = c.properties
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return .letter
        case .decimalNumber, .letterNumber, .otherNumber: return .number
        case .unassigned:
            if newerLetters.contains(where: { $0.contains(v) }) { return .letter }
            if newerNumbers.contains(where: { $0.contains(v) }) { return .number }
            return .other
        default:
            return p.isWhitespace ? .space : .other
        }
    }

    /// Letters that the Unicode data of Swift 6.3 leaves unassigned but OpenCLIP's `regex` module
    /// (2026.11.15, Unicode 17) classes as `\p{L}`: scalars added in recent Unicode versions.
    static let newerLetters: [ClosedRange<UInt32>] = [
        0x558...0x558, 0x58B...0x58C, 0x208F...0x208F, 0x209D...0x209F, 0xA7DD...0xA7DD,
        0xA7E2...0xA7E2, 0xAB6C...0xAB6D, 0x107BB...0x107BF, 0x10ED9...0x10EEE, 0x11B0A...0x11B0A,
        0x11DF1...0x11DF1, 0x18CD6...0x18CDA, 0x18D1F...0x18D20, 0x18E00...0x19191, 0x191A0...0x191D2,
        0x1B123...0x1B128, 0x1B168...0x1B168, 0x1D6A6...0x1D6A6, 0x1DF1F...0x1DF24, 0x1DF2B...0x1DF81,
        0x1DF90...0x1DF96, 0x1DFCD...0x1DFFF, 0x2B81E...0x2B81E, 0x3D000...0x3FC3F,
    ]

    /// Numbers, likewise (`\p{N}` in Unicode 17, unassigned for Swift 6.3).
    static let newerNumbers: [ClosedRange<UInt32>] = [0x1246F...0x1246F, 0x12475...0x1247F, 0x12550...0x12686]

    /// The end of `literal` (ASCII lower case) at `s[i...]` and whether it is there exactly, or
    /// nil; `ſ` matches `s`, which makes the match inexact.
    static func literal(_ s: String.UnicodeScalarView, at i: String.Index, _ literal: StaticString) -> (String.Index, Bool)? {
        literal.withUTF8Buffer { bytes in
            var j = i
            var exact = true
            for b in bytes {
                guard j < s.endIndex else { return nil }
                let c = s[j]
                if c.value != UInt32(b) {
                    guard b == UInt8(ascii: "s") && c == "\u{17F}" else { return nil }
                    exact = false
                }
                j = s.index(after: j)
            }
            return (j, exact)
        }
    }

    /// The end of the contraction starting at `s[i]` (an apostrophe), or nil.
    static func contractionEnd(_ s: String.UnicodeScalarView, at i: String.Index) -> String.Index? {
        let j = s.index(after: i)
        guard j < s.endIndex else { return nil }
        let next = s[j]
        let k = s.index(after: j)
        if next == "s" || next == "\u{17F}" || next == "t" || next == "m" || next == "d" { return k }
        guard k < s.endIndex else { return nil }
        switch (next, s[k]) {
        case ("r", "e"), ("v", "e"), ("l", "l"): return s.index(after: k)
        default: return nil
        }
    }
}
