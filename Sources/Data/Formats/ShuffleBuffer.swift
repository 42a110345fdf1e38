// A fixed-size shuffle buffer for streamed samples (WebDataset's `shuffle(n)`), its choices drawn
// from a CounterRNG so an order is reproducible from the seed.

import Compute

/// Shuffles a stream with bounded memory.
///
/// Rules: the first `capacity` items fill the buffer and nothing comes out; from then on each
/// incoming item takes the place of a resident item chosen uniformly at random, which comes out.
/// At the end, `drain()` gives the residents in a random order. Draw k of the stream (counting
/// every `add` that replaces an item) chooses the k-th replacement, `integer(below: capacity, k)`;
/// the drain is `permutation(count, start: k)` after the last one. The same seed, stream and input
/// give the same output.
public struct ShuffleBuffer<Element> {
    /// The most items held.
    public let capacity: Int
    /// The random stream.
    public let rng: CounterRNG
    private var items: [Element] = []
    private var draws: UInt64 = 0

    /// An empty buffer of `capacity` (≥ 1) items drawing from `rng`.
    public init(capacity: Int, rng: CounterRNG) {
        precondition(capacity >= 1, "ShuffleBuffer: capacity must be ≥ 1, got \(capacity)")
        self.capacity = capacity
        self.rng = rng
        items.reserveCapacity(capacity)
    }

    /// An empty buffer of `capacity` items drawing from the "shuffle-buffer" stream of `seed`.
    public init(capacity: Int, seed: UInt64) {
        self.init(capacity: capacity, rng: CounterRNG(seed: seed, streamNamed: "shuffle-buffer"))
    }

    /// The items held.
    public var count: Int { items.count }

    /// Takes `item`; once the buffer is full, returns the resident it replaces.
    public mutating func add(_ item: Element) -> Element? {
        if items.count < capacity {
            items.append(item)
            return nil
        }
        let slot = rng.integer(below: capacity, draws)
        draws += 1
        let out = items[slot]
        items[slot] = item
        return out
    }

    /// The items held, in random order; the buffer is then empty.
    public mutating func drain() -> [Element] {
        let order = rng.permutation(items.count, start: draws)
        draws += UInt64(max(items.count - 1, 0))
        let out = order.map { items[$0] }
        items.removeAll(keepingCapacity: true)
        return out
    }

    /// `sequence` shuffled through a buffer of `capacity` items.
    public static func shuffled<S: Sequence>(_ sequence: S, capacity: Int, rng: CounterRNG) -> [Element]
    where S.Element == Element {
        var buffer = ShuffleBuffer(capacity: capacity, rng: rng)
        var out: [Element] = []
        for item in sequence {
            if let evicted = buffer.add(item) { out.append(evicted) }
        }
        return out + buffer.drain()
    }
}

extension ShuffleBuffer: Sendable where Element: Sendable {}
