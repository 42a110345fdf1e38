// The byte-level BPE alphabet of GPT-2 and CLIP: each of the 256 byte values is written as one
// printable Unicode character, so merges can be stored as text, and the first 512 ids are the
// byte symbols without and with the word-end marker `</w>`.

/// The 512 base symbols and their ids.
///
/// Order (the vocabulary's first 256 ids): the bytes that are printable Latin-1 characters —
/// 0x21…0x7E, 0xA1…0xAC, 0xAE…0xFF — in increasing order, written as themselves; then the other
/// 68 bytes (0x00…0x20, 0x7F…0xA0, 0xAD) in increasing order, written as U+0100 + n for the n-th
/// of them. Ids 256…511 are the same symbols followed by `</w>`, the end of a word.
enum ByteSymbols {
    /// The word-end marker appended to a word's last symbol.
    static let wordEnd = "</w>"

    /// `id[b]`: the id of byte `b` inside a word (add 256 for the word's last byte).
    static let id: [Int32] = {
        var ids = [Int32](repeating: -1, count: 256)
        var next: Int32 = 0
        for b in 0..<256 where isPrintable(b) { ids[b] = next; next += 1 }
        for b in 0..<256 where !isPrintable(b) { ids[b] = next; next += 1 }
        return ids
    }()

    /// `byte[i]`: the byte of base id `i` (0 ≤ i < 256), the inverse of `id`.
    static let byte: [UInt8] = {
        var bytes = [UInt8](repeating: 0, count: 256)
        for b in 0..<256 { bytes[Int(id[b])] = UInt8(b) }
        return bytes
    }()

    /// `character[b]`: the character that writes byte `b` in the merges file.
    static let character: [Unicode.Scalar] = {
        var chars = [Unicode.Scalar](repeating: " ", count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if isPrintable(b) {
                chars[b] = Unicode.Scalar(UInt8(b))
            } else {
                chars[b] = Unicode.Scalar(256 + n)!
                n += 1
            }
        }
        return chars
    }()

    /// The text of each of the 512 base ids as the merges file writes it (`"a"`, `"a</w>"`, …).
    static let baseStrings: [String] = {
        let plain = (0..<256).map { String(Character(character[Int(byte[$0])])) }
        return plain + plain.map { $0 + wordEnd }
    }()

    /// Bytes written as themselves: printable ASCII and printable Latin-1 except the soft hyphen.
    static func isPrintable(_ b: Int) -> Bool {
        (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
    }
}
