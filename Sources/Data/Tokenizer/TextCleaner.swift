// Caption cleaning before BPE, as OpenCLIP's `clean='lower'` does it: ftfy's `fix_text` (the
// steps listed on `TextCleaner.fixText`; its mojibake repair is in MojibakeRepair.swift),
// `html.unescape` twice, Python's `str.split()` whitespace collapse, and Python's full-Unicode
// `str.lower()`. README.md beside this file lists what is and is not reproduced.

import Foundation

/// OpenCLIP's text cleaning, reproduced on Unicode scalars (never on `Character`s or with
/// `String ==`, which would merge canonically equivalent texts that Python keeps apart).
public enum TextCleaner {
    /// The text BPE sees: `lowerPython(collapseWhitespace(h(h(fixText(text)))))`, where `h` is
    /// Python's `html.unescape` and `collapseWhitespace` is Python's `" ".join(text.split())`
    /// (which also strips). Plain ASCII text (no `&`, no control characters but tab, LF, FF, CR)
    /// takes a shortcut with the same result (such text is never mojibake to ftfy either).
    public static func clean(_ text: String) -> String {
        if isPlainASCII(text) {
            // ftfy and html.unescape leave such text as it is.
            var out: [UInt8] = []
            out.reserveCapacity(text.utf8.count)
            var pendingSpace = false
            for b in text.utf8 {
                if b == 0x20 || (0x09...0x0D).contains(b) {
                    pendingSpace = !out.isEmpty
                } else {
                    if pendingSpace { out.append(0x20); pendingSpace = false }
                    out.append((0x41...0x5A).contains(b) ? b + 32 : b)
                }
            }
            return String(decoding: out, as: UTF8.self)
        }
        let unescaped = HTMLEntities.unescapePython(HTMLEntities.unescapePython(fixText(text)))
        return lowerPython(collapseWhitespace(unescaped))
    }

    /// ASCII text with no `&` and no control characters other than tab, LF, FF and CR.
    static func isPlainASCII(_ text: String) -> Bool {
        for b in text.utf8 {
            switch b {
            case 0x20...0x7E: if b == UInt8(ascii: "&") { return false }
            case 0x09, 0x0A, 0x0C, 0x0D: continue
            default: return false
            }
        }
        return true
    }

    // MARK: - ftfy

    /// ftfy 6.3.1's `fix_text` with default settings.
    ///
    /// The text is cut after each `\n` into lines; HTML unescaping is on until the first line that
    /// contains `<`, and off from that line on. Each line is fixed by repeating, until nothing
    /// changes: HTML unescape (ftfy's strict form, `HTMLEntities.unescapeFTFY`) → mojibake repair
    /// (`MojibakeRepair.fixEncoding`: `cafÃ©` → `café`) → C1 controls
    /// U+0080…U+009F read as Windows-1252 (`\u{85}` → `…`) → Latin ligatures (`ﬁ` → `fi`,
    /// `Ĳ` → `IJ`, `ŉ` → `ʼn`, …) → character width (U+FF01…U+FFEF to their NFKC form, U+3000 →
    /// space) → quotes (`ʼ ‘ ’ ‚ ‛` → `'`, `“ ” „ ‟` → `"`) → line breaks (CRLF, CR, U+2028,
    /// U+2029, U+0085 → LF) → terminal escapes (ESC `[` digits-or-`;` letter) removed → control
    /// characters (U+0000–0008, U+000B, U+000E–001F, U+007F, U+206A–206F, U+FEFF, U+FFF9–FFFC)
    /// removed → NFC.
    ///
    /// Not reproduced: lone surrogates (ftfy's `fix_surrogates`) cannot occur in a Swift string;
    /// the 1,000,000-character segment limit.
    public static func fixText(_ text: String) -> String {
        guard needsFixing(text, unescapeHTML: true) else { return text }
        var out = ""
        var unescape = true
        let bytes = text.utf8
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: 0x0A).map { bytes.index(after: $0) } ?? bytes.endIndex
            let line = String(Substring(bytes[start..<end]))
            if unescape && line.utf8.contains(UInt8(ascii: "<")) { unescape = false }
            out += fixLine(line, unescapeHTML: unescape)
            start = end
        }
        return out
    }

    /// One line of `fixText`, repeated until it no longer changes.
    static func fixLine(_ line: String, unescapeHTML: Bool) -> String {
        guard needsFixing(line, unescapeHTML: unescapeHTML) else { return line }
        var text = line
        while true {
            var next = unescapeHTML ? HTMLEntities.unescapeFTFY(text) : text
            next = MojibakeRepair.fixEncoding(next)
            next = removeEscapesAndControls(fixLineBreaks(mapCharacters(next)))
            if next.unicodeScalars.contains(where: { $0.value >= 0x300 }) {
                // Below U+0300 every text is already NFC: nothing composes with such a scalar.
                next = next.precomposedStringWithCanonicalMapping
            }
            if next.unicodeScalars.elementsEqual(text.unicodeScalars) { return next }
            text = next
        }
    }

    /// False when every step of `fixLine` leaves `line` as it is: no scalar from U+0300 on (NFC
    /// could change those), none below that any other step touches, and not bad to ftfy's
    /// mojibake heuristic (on a text of several lines: no line is).
    static func needsFixing(_ line: String, unescapeHTML: Bool) -> Bool {
        if needsCharacterFixes(line, unescapeHTML: unescapeHTML) { return true }
        if line.utf8.allSatisfy({ $0 < 0x80 }) { return false }
        return MojibakeRepair.isBad(Array(line.unicodeScalars), caretAfterNewline: true)
    }

    /// Whether a step of `fixLine` other than mojibake repair could change `line`.
    static func needsCharacterFixes(_ line: String, unescapeHTML: Bool) -> Bool {
        for c in line.unicodeScalars {
            switch c.value {
            case 0x20...0x25, 0x27...0x7E, 0x09, 0x0A, 0x0C, 0xA0...0x131, 0x134...0x148, 0x14A...0x1C3, 0x1CD...0x1F0, 0x1F4...0x2BB, 0x2BD...0x2FF:
                continue
            case 0x26:
                if unescapeHTML { return true }
            default:
                return true
            }
        }
        return false
    }

    /// C1 controls, ligatures, character width and quotes: four per-scalar maps, in that order.
    static func mapCharacters(_ text: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(text.unicodeScalars.count)
        for c in text.unicodeScalars {
            if c.isASCII { out.append(c); continue }
            let c1 = (0x80...0x9F).contains(c.value) ? HTMLEntities.windows1252C1[Int(c.value - 0x80)] : c
            for l in ligatures[c1.value] ?? [c1] {
                for w in widthMap(l) ?? [l] {
                    out.append(uncurled(w))
                }
            }
        }
        return out
    }

    /// CRLF, CR, U+2028, U+2029 and U+0085 become LF.
    static func fixLineBreaks(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(s.count)
        var i = 0
        while i < s.count {
            switch s[i] {
            case "\r":
                out.append("\n")
                if i + 1 < s.count && s[i + 1] == "\n" { i += 1 }
            case "\u{2028}", "\u{2029}", "\u{85}": out.append("\n")
            default: out.append(s[i])
            }
            i += 1
        }
        return out
    }

    /// Removes terminal escapes (ESC `[` then decimal digits or `;`, then an ASCII letter), then
    /// the control characters ftfy deletes.
    static func removeEscapesAndControls(_ s: [Unicode.Scalar]) -> String {
        var out = UTF8Builder(capacity: s.count)
        var i = 0
        while i < s.count {
            let c = s[i]
            if c == "\u{1B}", i + 1 < s.count, s[i + 1] == "[" {
                var j = i + 2
                while j < s.count, s[j] == ";" || s[j].properties.generalCategory == .decimalNumber { j += 1 }
                if j < s.count, s[j].isASCII, s[j].properties.isAlphabetic {
                    i = j + 1
                    continue
                }
            }
            if !isRemovedControl(c) { out.append(c) }
            i += 1
        }
        return out.string
    }

    /// The control characters ftfy's `remove_control_chars` deletes.
    static func isRemovedControl(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x00...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0x206A...0x206F, 0xFEFF, 0xFFF9...0xFFFC: return true
        default: return false
        }
    }

    /// Latin ligatures ftfy takes apart.
    static let ligatures: [UInt32: [Unicode.Scalar]] = [
        0x0132: ["I", "J"], 0x0133: ["i", "j"], 0x0149: ["\u{2BC}", "n"],
        0x01F1: ["D", "Z"], 0x01F2: ["D", "z"], 0x01F3: ["d", "z"],
        0x01C4: ["D", "\u{17D}"], 0x01C5: ["D", "\u{17E}"], 0x01C6: ["d", "\u{17E}"],
        0x01C7: ["L", "J"], 0x01C8: ["L", "j"], 0x01C9: ["l", "j"],
        0x01CA: ["N", "J"], 0x01CB: ["N", "j"], 0x01CC: ["n", "j"],
        0xFB00: ["f", "f"], 0xFB01: ["f", "i"], 0xFB02: ["f", "l"], 0xFB03: ["f", "f", "i"],
        0xFB04: ["f", "f", "l"], 0xFB05: ["\u{17F}", "t"], 0xFB06: ["s", "t"],
    ]

    /// NFKC forms of U+FF01…U+FFEF (full-width ASCII, half-width katakana and Hangul, full- and
    /// half-width symbols) where they differ, and U+3000 → space.
    static let widthTable: [UInt32: [Unicode.Scalar]] = {
        var table: [UInt32: [Unicode.Scalar]] = [0x3000: [" "]]
        for v in UInt32(0xFF01)...0xFFEF {
            guard let c = Unicode.Scalar(v), c.properties.generalCategory != .unassigned else { continue }
            let nfkc = String(String.UnicodeScalarView([c])).precomposedStringWithCompatibilityMapping
            let mapped = Array(nfkc.unicodeScalars)
            if mapped != [c] { table[v] = mapped }
        }
        return table
    }()

    @inline(__always)
    static func widthMap(_ c: Unicode.Scalar) -> [Unicode.Scalar]? {
        c.value == 0x3000 || (0xFF01...0xFFEF).contains(c.value) ? widthTable[c.value] : nil
    }

    @inline(__always)
    static func uncurled(_ c: Unicode.Scalar) -> Unicode.Scalar {
        switch c.value {
        case 0x02BC, 0x2018...0x201B: return "'"
        case 0x201C...0x201F: return "\""
        default: return c
        }
    }

    // MARK: - Python string functions

    /// Python's `str.isspace()` characters, which `str.split()` and `str.strip()` use: tab, LF,
    /// VT, FF, CR, U+001C…U+001F, space, U+0085, U+00A0, U+1680, U+2000…U+200A, U+2028, U+2029,
    /// U+202F, U+205F, U+3000.
    @inline(__always)
    public static func isPythonWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    /// Python's `" ".join(text.split())`: runs of whitespace become one space, none at the ends.
    public static func collapseWhitespace(_ text: String) -> String {
        var out = UTF8Builder(capacity: text.utf8.count)
        var pendingSpace = false
        for c in text.unicodeScalars {
            if isPythonWhitespace(c) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(" "); pendingSpace = false }
                out.append(c)
            }
        }
        return out.string
    }

    /// The Unicode version of the Python whose `str.lower()` `lowerPython` reproduces: 3.11's
    /// (the fixture's). Scalars assigned in later versions are left as they are, as that Python
    /// does (Swift's own tables are newer).
    public static let pythonUnicodeVersion = (major: 14, minor: 0)

    /// Python's `str.lower()`: each scalar's full lower-case mapping (`İ` → `i` + U+0307), and
    /// capital sigma as final `ς` when a cased letter precedes it and none follows it (skipping
    /// case-ignorable scalars both ways), else `σ`. Scalars newer than `pythonUnicodeVersion`
    /// are kept.
    public static func lowerPython(_ text: String) -> String {
        let s = Array(text.unicodeScalars)
        var out = UTF8Builder(capacity: text.utf8.count)
        for (i, c) in s.enumerated() {
            if c.isASCII {
                out.append((0x41...0x5A).contains(c.value) ? Unicode.Scalar(c.value + 32)! : c)
            } else if c == "\u{3A3}" {
                out.append(isFinalSigma(s, at: i) ? "\u{3C2}" : "\u{3C3}")
            } else if (0xC0...0xDE).contains(c.value) && c.value != 0xD7 {
                out.append(Unicode.Scalar(c.value + 32)!)  // Latin-1 capitals
            } else if !c.properties.changesWhenLowercased {
                out.append(c)
            } else if let age = c.properties.age, age <= pythonUnicodeVersion {
                out.append(contentsOf: c.properties.lowercaseMapping.unicodeScalars)
            } else {
                out.append(c)
            }
        }
        return out.string
    }

    /// Unicode's Final_Sigma condition at `s[i]`.
    static func isFinalSigma(_ s: [Unicode.Scalar], at i: Int) -> Bool {
        var j = i - 1
        while j >= 0 && s[j].properties.isCaseIgnorable { j -= 1 }
        guard j >= 0 && s[j].properties.isCased else { return false }
        j = i + 1
        while j < s.count && s[j].properties.isCaseIgnorable { j += 1 }
        return j == s.count || !s[j].properties.isCased
    }
}

/// UTF-8 bytes that a text is built in: appending scalars to a `String` one by one is slower.
struct UTF8Builder {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    var isEmpty: Bool { bytes.isEmpty }

    var string: String { String(decoding: bytes, as: UTF8.self) }

    @inline(__always)
    mutating func append(_ c: Unicode.Scalar) {
        if c.value < 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: c.value))
        } else {
            UTF8.encode(c) { bytes.append($0) }
        }
    }

    mutating func append<S: Sequence>(contentsOf scalars: S) where S.Element == Unicode.Scalar {
        for c in scalars { append(c) }
    }
}
