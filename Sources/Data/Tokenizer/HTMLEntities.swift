// HTML character references, decoded the two ways OpenCLIP's text cleaning decodes them:
// Python's `html.unescape` (lenient: legacy names without `;`, longest-prefix names, numeric
// references with the HTML5 replacement rules) and ftfy's `unescape_html` step (strict: only
// references that end in `;`, plus all-caps spellings such as `&NTILDE;`).

/// Decoders for HTML character references. The name table is `HTMLEntityTable.swift`.
enum HTMLEntities {
    /// Name as written after `&` (e.g. `"amp;"`, legacy `"amp"`) → replacement scalars.
    static let html5: [String: [Unicode.Scalar]] = {
        var table: [String: [Unicode.Scalar]] = [:]
        table.reserveCapacity(2300)
        for line in html5Source.split(separator: "\n") {
            let parts = line.split(separator: " ")
            let scalars = parts[1].split(separator: "+").map { Unicode.Scalar(UInt32($0, radix: 16)!)! }
            table[String(parts[0])] = scalars
        }
        return table
    }()

    /// ftfy's table, keyed by the whole reference (`"&amp;"`): every HTML5 name that ends in `;`,
    /// and, for each all-lower-case such name whose all-caps spelling Python's `html.unescape`
    /// leaves alone, that spelling mapped to the upper-cased replacement (`&NTILDE;` → `Ñ`,
    /// `&SZLIG;` → `SS`).
    static let ftfyTable: [String: [Unicode.Scalar]] = {
        var table: [String: [Unicode.Scalar]] = [:]
        table.reserveCapacity(3600)
        for (name, value) in html5 where name.hasSuffix(";") {
            table["&" + name] = value
        }
        for (name, value) in html5 where name.hasSuffix(";") && name == name.lowercased() {
            let upper = "&" + name.uppercased()
            if unescapePython(upper) == upper {
                var text = ""
                text.unicodeScalars.append(contentsOf: value)
                table[upper] = Array(text.uppercased().unicodeScalars)
            }
        }
        return table
    }()

    /// Windows-1252 as browsers decode it, for the C1 range 0x80…0x9F: the five bytes that
    /// Windows-1252 leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) map to themselves.
    static let windows1252C1: [Unicode.Scalar] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
        0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0x8D, 0x017D, 0x8F,
        0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
        0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ].map { Unicode.Scalar(UInt32($0))! }

    // MARK: - Python's html.unescape

    /// Python's `html.unescape(s)`. Each reference `&#digits;?`, `&#x hex;?` or `&name;?` (the name
    /// 1…32 characters, none of tab, LF, FF, space, `<`, `&`, `#`, `;`) is replaced:
    /// - numeric: 0x00 → U+FFFD; 0x0D → CR; 0x80…0x9F → Windows-1252 (`windows1252C1`);
    ///   surrogates and values above 0x10FFFF → U+FFFD; 0x01…0x08, 0x0B, 0x0E…0x1F, 0x7F,
    ///   U+FDD0…U+FDEF and each plane's last two code points → nothing; others → that scalar.
    /// - named: the whole name if it is in the table, else its longest prefix (of length ≥ 2)
    ///   that is a legacy name followed by the rest (`&copy2024` → `©2024`), else unchanged.
    static func unescapePython(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
        let s = Array(text.unicodeScalars)
        var out = UTF8Builder(capacity: text.utf8.count)
        var changed = false
        var i = 0
        while i < s.count {
            guard s[i] == "&" else { out.append(s[i]); i += 1; continue }
            if let (replacement, end) = pythonReference(s, at: i) {
                out.append(contentsOf: replacement)
                i = end
                changed = true
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return changed ? out.string : text
    }

    /// The reference starting at `s[amp]` (an `&`): its replacement and the index after it, or nil
    /// when nothing there matches Python's reference pattern.
    private static func pythonReference(_ s: [Unicode.Scalar], at amp: Int) -> ([Unicode.Scalar], Int)? {
        var j = amp + 1
        guard j < s.count else { return nil }
        if s[j] == "#" {
            j += 1
            var hex = false
            if j < s.count, s[j] == "x" || s[j] == "X" { hex = true; j += 1 }
            let start = j
            var value: UInt32 = 0
            var overflow = false
            while j < s.count, let d = digitValue(s[j], hex: hex) {
                if value > 0x10FFFF { overflow = true } else { value = value * (hex ? 16 : 10) + d }
                j += 1
            }
            guard j > start else { return nil }
            if j < s.count, s[j] == ";" { j += 1 }
            return (numericReference(overflow || value > 0x10FFFF ? 0x110000 : value), j)
        }
        let start = j
        while j < s.count, j - start < 32, !stopsName(s[j]) { j += 1 }
        guard j > start else { return nil }
        if j < s.count, s[j] == ";" { j += 1 }
        let name = s[start..<j]
        if let value = html5[string(name)] { return (value, j) }
        var x = name.count - 1
        while x >= 2 {
            if let value = html5[string(name.prefix(x))] {
                return (value + name.dropFirst(x), j)
            }
            x -= 1
        }
        return nil  // `&` + name, unchanged
    }

    /// The replacement of numeric reference `n` under Python's (HTML5's) rules.
    static func numericReference(_ n: UInt32) -> [Unicode.Scalar] {
        switch n {
        case 0x00: return ["\u{FFFD}"]
        case 0x0D: return ["\r"]
        case 0x80...0x9F: return [windows1252C1[Int(n - 0x80)]]
        case 0xD800...0xDFFF, 0x110000...: return ["\u{FFFD}"]
        case 0x01...0x08, 0x0B, 0x0E...0x1F, 0x7F, 0xFDD0...0xFDEF: return []
        default:
            if n & 0xFFFE == 0xFFFE { return [] }
            return [Unicode.Scalar(n)!]
        }
    }

    // MARK: - ftfy's unescape_html

    /// ftfy's `unescape_html` step: each `&name;` or `&#…;` whose body is 1…24 ASCII letters or
    /// digits is replaced if it is in `ftfyTable`, or if it is a numeric reference that Python
    /// decodes whole (semicolon included); anything else is left as it is.
    static func unescapeFTFY(_ text: String) -> String {
        guard text.utf8.contains(UInt8(ascii: "&")) else { return text }
        let s = Array(text.unicodeScalars)
        var out = UTF8Builder(capacity: text.utf8.count)
        var changed = false
        var i = 0
        while i < s.count {
            guard s[i] == "&" else { out.append(s[i]); i += 1; continue }
            var j = i + 1
            let numeric = j < s.count && s[j] == "#"
            if numeric { j += 1 }
            let bodyStart = j
            while j < s.count, j - bodyStart <= 24, isASCIIAlphanumeric(s[j]) { j += 1 }
            let length = j - bodyStart
            guard length >= 1, length <= 24, j < s.count, s[j] == ";" else {
                out.append(s[i]); i += 1; continue
            }
            let reference = string(s[i...j])
            if let value = ftfyTable[reference] {
                out.append(contentsOf: value)
                changed = true
            } else if numeric, let value = wholeNumericReference(s[bodyStart..<j]) {
                out.append(contentsOf: value)
                changed = true
            } else {
                out.append(contentsOf: s[i...j])
            }
            i = j + 1
        }
        return changed ? out.string : text
    }

    /// The replacement of `&#body;` when `body` is all decimal digits or `x` + all hex digits.
    private static func wholeNumericReference(_ body: ArraySlice<Unicode.Scalar>) -> [Unicode.Scalar]? {
        var digits = body
        var hex = false
        if let first = digits.first, first == "x" || first == "X" { hex = true; digits = digits.dropFirst() }
        guard !digits.isEmpty else { return nil }
        var value: UInt32 = 0
        for d in digits {
            guard let v = digitValue(d, hex: hex) else { return nil }
            if value <= 0x10FFFF { value = value * (hex ? 16 : 10) + v }
        }
        return numericReference(min(value, 0x110000))
    }

    // MARK: - Helpers

    private static func digitValue(_ c: Unicode.Scalar, hex: Bool) -> UInt32? {
        switch c.value {
        case 0x30...0x39: return c.value - 0x30
        case 0x41...0x46 where hex: return c.value - 0x41 + 10
        case 0x61...0x66 where hex: return c.value - 0x61 + 10
        default: return nil
        }
    }

    private static func isASCIIAlphanumeric(_ c: Unicode.Scalar) -> Bool {
        (0x30...0x39).contains(c.value) || (0x41...0x5A).contains(c.value) || (0x61...0x7A).contains(c.value)
    }

    /// Characters that end a name in Python's reference pattern.
    private static func stopsName(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "\t", "\n", "\u{0C}", " ", "<", "&", "#", ";": return true
        default: return false
        }
    }

    private static func string<C: Collection>(_ scalars: C) -> String where C.Element == Unicode.Scalar {
        var s = String.UnicodeScalarView()
        s.append(contentsOf: scalars)
        return String(s)
    }
}
