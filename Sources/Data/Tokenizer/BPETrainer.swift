// The fallback when OpenCLIP's merges file is absent: a byte-level BPE learned from the
// training captions themselves, with CLIP's alphabet, word ends, cleaning, pre-split and
// vocabulary layout, so everything downstream works the same (only the ids differ).

extension CLIPTokenizer {
    /// The smallest vocabulary `trainBPE` accepts: the 512 byte symbols and the 2 specials.
    public static let minimumVocabularySize = 514

    /// Learns merges from `captions` until the vocabulary has `vocabularySize` ids
    /// (512 byte symbols + merges + 2 specials, end-of-text last).
    ///
    /// Each caption is cleaned and pre-split exactly as `encode` does (literal specials are left
    /// out), and each distinct piece, weighted by how often it occurs, starts as its byte symbols
    /// with `</w>` on the last. Then, repeatedly: the adjacent pair with the highest weighted
    /// count becomes the next merge (ties: the pair whose first symbol, then second, is smaller in
    /// Unicode code-point order), and every occurrence is merged left to right. Learning stops at
    /// `vocabularySize − 514` merges, or earlier when no pair occurs at least twice; the ids
    /// between the last merge and the specials are then never produced (and decode to nothing),
    /// so the vocabulary still has exactly `vocabularySize` ids. The result depends only on the
    /// multiset of captions.
    /// - Throws: `TokenizerError.vocabularySizeTooSmall` when `vocabularySize < 514`.
    public static func trainBPE(captions: [String], vocabularySize: Int) throws -> CLIPTokenizer {
        guard vocabularySize >= minimumVocabularySize else {
            throw TokenizerError.vocabularySizeTooSmall(requested: vocabularySize, minimum: minimumVocabularySize)
        }
        var counts: [ExactString: Int] = [:]
        for caption in captions {
            PreSplit.forEach(in: TextCleaner.clean(caption)) { piece in
                if case .word(let word) = piece { counts[ExactString(word), default: 0] += 1 }
            }
        }
        var trainer = BPETrainer(wordCounts: counts)
        let merges = trainer.learn(maxMerges: vocabularySize - minimumVocabularySize)
        return try CLIPTokenizer(merges: merges, source: "trained BPE", firstLine: 1, vocabularySize: vocabularySize)
    }
}

/// Greedy BPE learning with incremental pair counts: a merge updates only the words that contain
/// the merged pair, and the best pair comes from a max-heap whose out-of-date entries are skipped
/// when they surface.
struct BPETrainer {
    /// Each distinct word as symbol ids, and its count.
    private var words: [[Int32]]
    private let weights: [Int]
    /// Symbol id → its text, as code points (for tie-breaks) and as a string.
    private var symbolScalars: [[UInt32]]
    private var symbolStrings: [String]
    private var symbolIds: [ExactString: Int32]
    /// Weighted count of each adjacent pair, and the words it may occur in.
    private var pairCounts: [UInt64: Int] = [:]
    private var pairWords: [UInt64: [Int32]] = [:]
    /// Max-heap of (count, pair); an entry is current when its count equals `pairCounts[pair]`.
    private var heap: [(count: Int, pair: UInt64)] = []

    init(wordCounts: [ExactString: Int]) {
        let sorted = wordCounts.sorted { $0.key.value.unicodeScalars.lexicographicallyPrecedes($1.key.value.unicodeScalars) }
        words = sorted.map { entry in
            var ids = entry.key.value.utf8.map { ByteSymbols.id[Int($0)] }
            if !ids.isEmpty { ids[ids.count - 1] += 256 }
            return ids
        }
        weights = sorted.map(\.value)
        symbolStrings = ByteSymbols.baseStrings
        symbolScalars = symbolStrings.map { $0.unicodeScalars.map(\.value) }
        symbolIds = Dictionary(uniqueKeysWithValues: symbolStrings.enumerated().map { (ExactString($1), Int32($0)) })
        for (w, word) in words.enumerated() where word.count > 1 {
            for i in 0..<(word.count - 1) {
                let key = CLIPTokenizer.pairKey(word[i], word[i + 1])
                pairCounts[key, default: 0] += weights[w]
                pairWords[key, default: []].append(Int32(w))
            }
        }
        for (pair, count) in pairCounts { push(count: count, pair: pair) }
    }

    /// Learns up to `maxMerges` merges, in rank order.
    mutating func learn(maxMerges: Int) -> [(String, String)] {
        var merges: [(String, String)] = []
        var visited = [Int](repeating: -1, count: words.count)
        while merges.count < maxMerges, let top = pop() {
            guard pairCounts[top.pair] == top.count else { continue }  // out of date
            if top.count < 2 { break }
            let a = Int32(truncatingIfNeeded: top.pair >> 32), b = Int32(truncatingIfNeeded: top.pair & 0xFFFF_FFFF)
            let text = symbolStrings[Int(a)] + symbolStrings[Int(b)]
            let merged = symbolId(text)
            merges.append((symbolStrings[Int(a)], symbolStrings[Int(b)]))

            var changed = Set<UInt64>()
            for w32 in pairWords[top.pair] ?? [] {
                let w = Int(w32)
                guard visited[w] != merges.count else { continue }
                visited[w] = merges.count
                let old = words[w]
                var new: [Int32] = []
                new.reserveCapacity(old.count)
                var i = 0
                while i < old.count {
                    if i + 1 < old.count && old[i] == a && old[i + 1] == b {
                        new.append(merged)
                        i += 2
                    } else {
                        new.append(old[i])
                        i += 1
                    }
                }
                guard new.count < old.count else { continue }
                let weight = weights[w]
                for i in 0..<(old.count - 1) {
                    let key = CLIPTokenizer.pairKey(old[i], old[i + 1])
                    pairCounts[key, default: 0] -= weight
                    changed.insert(key)
                }
                for i in 0..<max(new.count - 1, 0) {
                    let key = CLIPTokenizer.pairKey(new[i], new[i + 1])
                    pairCounts[key, default: 0] += weight
                    changed.insert(key)
                    if new[i] == merged || new[i + 1] == merged { pairWords[key, default: []].append(w32) }
                }
                words[w] = new
            }
            pairWords[top.pair] = nil
            for key in changed {
                let count = pairCounts[key] ?? 0
                if count > 0 { push(count: count, pair: key) } else { pairCounts[key] = nil }
            }
        }
        return merges
    }

    /// The id of symbol `text`, added if new (a text made by two different merges keeps one id).
    private mutating func symbolId(_ text: String) -> Int32 {
        if let id = symbolIds[ExactString(text)] { return id }
        let id = Int32(symbolStrings.count)
        symbolStrings.append(text)
        symbolScalars.append(text.unicodeScalars.map(\.value))
        symbolIds[ExactString(text)] = id
        return id
    }

    // MARK: - Heap

    /// Whether `x` should be merged before `y`: higher count, then smaller first symbol, then
    /// smaller second symbol (code-point order).
    private func before(_ x: (count: Int, pair: UInt64), _ y: (count: Int, pair: UInt64)) -> Bool {
        if x.count != y.count { return x.count > y.count }
        let xa = Int(x.pair >> 32), ya = Int(y.pair >> 32)
        if xa != ya { return symbolScalars[xa].lexicographicallyPrecedes(symbolScalars[ya]) }
        let xb = Int(x.pair & 0xFFFF_FFFF), yb = Int(y.pair & 0xFFFF_FFFF)
        return symbolScalars[xb].lexicographicallyPrecedes(symbolScalars[yb])
    }

    private mutating func push(count: Int, pair: UInt64) {
        heap.append((count, pair))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    private mutating func pop() -> (count: Int, pair: UInt64)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if heap.isEmpty { return top }
        heap[0] = last
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var best = i
            if l < heap.count && before(heap[l], heap[best]) { best = l }
            if r < heap.count && before(heap[r], heap[best]) { best = r }
            if best == i { break }
            heap.swapAt(i, best)
            i = best
        }
        return top
    }
}
