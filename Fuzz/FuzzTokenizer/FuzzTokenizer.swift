// libFuzzer target: captions from an untrusted source through the text cleaner, the mojibake
// repair and the CLIP tokenizer, as the data loader tokenizes them. The input is read two ways:
// as UTF-8 (invalid bytes become U+FFFD, as the caption readers decode them) and byte for byte as
// U+0000…U+00FF (raw bytes, the Latin-1 mojibake the repair looks for). Its bytes are also decoded
// as token ids. Checked on each text: `tokenize` gives exactly the context length of ids, all in
// the vocabulary.

import Data
import Foundation

/// OpenCLIP's merges when they are installed (scripts/bootstrap.sh), else a small BPE trained on a
/// few captions (the tokenizer `clip train` falls back to).
let tokenizer: CLIPTokenizer = {
    if let url = TokenizerFiles.defaultMergesFile(), let t = try? CLIPTokenizer(mergesFile: url) { return t }
    let captions = [
        "a photo of a red circle on a blue square", "two small green triangles", "a café in Zürich at night",
        "the quick brown fox jumps over the lazy dog", "an emoji 😀 of a smiling face", "a drawing of a cat",
    ]
    return try! CLIPTokenizer.trainBPE(captions: captions, vocabularySize: 600)
}()

func exercise(_ text: String) {
    _ = TextCleaner.clean(text)
    _ = MojibakeRepair.fixEncoding(text)
    _ = MojibakeRepair.badness(text)
    for contextLength in [77, 4] {
        let ids = tokenizer.tokenize(text, contextLength: contextLength)
        guard ids.count == contextLength, ids.allSatisfy({ $0 >= 0 && Int($0) < tokenizer.vocabularySize }) else {
            fatalError("tokenize gave \(ids.count) ids for context \(contextLength), or one outside 0..<\(tokenizer.vocabularySize): \(ids)")
        }
    }
    _ = tokenizer.decode(tokenizer.encode(text))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    exercise(String(decoding: bytes, as: UTF8.self))
    var latin1 = String.UnicodeScalarView()
    latin1.append(contentsOf: bytes.map { Unicode.Scalar($0) })
    exercise(String(latin1))
    let ids = stride(from: 0, to: size - size % 4, by: 4).map {
        Int32(bitPattern: UInt32(bytes[$0]) | UInt32(bytes[$0 + 1]) << 8 | UInt32(bytes[$0 + 2]) << 16 | UInt32(bytes[$0 + 3]) << 24)
    }
    _ = tokenizer.decode(ids)
    return 0
}
