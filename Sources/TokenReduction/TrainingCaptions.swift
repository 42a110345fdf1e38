// The caption rows a training stage feeds its text tower: every caption of the data set at the
// stage's text length, reduced by its strategy. Deterministic strategies (truncate, syntax) are
// tokenised once; random ones keep each caption's ids and draw per (epoch, sample) when a batch
// is filled, so a resumed run sees the same rows as an unbroken one.

import Compute
import Data

public final class TrainingCaptions: @unchecked Sendable {
    /// Ids per row (the stage's text context length).
    public let length: Int
    public let reduction: TextTokenReduction
    public let count: Int
    let seed: UInt64
    let startOfText: Int32
    let endOfText: Int32
    /// (count, length) rows, for truncate and syntax.
    let rows: [Int32]
    /// Each caption's ids without specials, for random, shuffle and block.
    let contents: [[Int32]]

    /// Tokenises captions 0..<count (`caption(i)`) over the threads. `tagger` is needed by
    /// `syntax`; `seed` keys the random strategies' draws.
    public init(
        count: Int, caption: @escaping @Sendable (Int) -> String, tokenizer: any Tokenizer, length: Int,
        reduction: TextTokenReduction = .truncate, tagger: (any PartOfSpeechTagger)? = nil, seed: UInt64 = 0
    ) throws {
        guard length >= 2 else { throw TokenReductionError("text length \(length): a row needs at least 2 ids (start and end of text)") }
        if reduction.needsTags && tagger == nil {
            throw TokenReductionError("text token reduction syntax needs each word's part of speech; this data source has no tagger")
        }
        self.length = length
        self.reduction = reduction
        self.count = count
        self.seed = seed
        startOfText = tokenizer.startOfText
        endOfText = tokenizer.endOfText
        switch reduction {
        case .truncate, .syntax:
            var rows = [Int32](repeating: 0, count: count * length)
            rows.withUnsafeMutableBufferPointer { buf in
                let p = UncheckedSendable(buf.baseAddress!)
                Threads.parallelFor(count, grain: 256) { range in
                    for i in range {
                        let row = reduction.tokenize(caption(i), length: length, tokenizer: tokenizer, tagger: tagger)
                        for j in 0..<length { p.value[i * length + j] = row[j] }
                    }
                }
            }
            self.rows = rows
            contents = []
        case .random, .shuffle, .block:
            var contents = [[Int32]](repeating: [], count: count)
            contents.withUnsafeMutableBufferPointer { buf in
                let p = UncheckedSendable(buf.baseAddress!)
                Threads.parallelFor(count, grain: 256) { range in
                    for i in range { p.value[i] = tokenizer.encode(caption(i)) }  // one slot per thread
                }
            }
            self.contents = contents
            rows = []
        }
    }

    /// Writes the rows of samples `ids` in `epoch` to `tokens`, (ids.count, length).
    public func fill(_ ids: ArraySlice<Int>, epoch: Int, into tokens: UnsafeMutablePointer<Int32>) {
        if !rows.isEmpty || contents.isEmpty {
            rows.withUnsafeBufferPointer { all in
                for (k, i) in ids.enumerated() { (tokens + k * length).update(from: all.baseAddress! + i * length, count: length) }
            }
            return
        }
        for (k, i) in ids.enumerated() {
            let row = reduction.reduce(
                content: contents[i], length: length, startOfText: startOfText, endOfText: endOfText, seed: seed, epoch: epoch, sample: i)
            (tokens + k * length).update(from: row, count: length)
        }
    }

    /// The share of captions longer than the content slots (which the strategy shortens).
    public func reducedShare(tokenizer: any Tokenizer, caption: (Int) -> String, sample: Int = 2000) -> Double {
        let n = min(count, sample)
        guard n > 0 else { return 0 }
        return Double((0..<n).filter { tokenizer.encode(caption($0)).count > length - 2 }.count) / Double(n)
    }
}
