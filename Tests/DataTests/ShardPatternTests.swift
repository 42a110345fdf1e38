// Tests of shard patterns (brace expansion as webdataset's braceexpand does it, "::" lists, the
// errors), the shards of each rank, and the seeded shuffle buffer.

import Compute
import Data
import Foundation
import Testing

/// The error `pattern` raises.
func patternError(_ pattern: String) -> ShardPatternError? {
    do { _ = try ShardPattern(pattern) } catch { return error }
    return nil
}

@Suite("Shard patterns and shuffle buffer")
struct ShardPatternTests {
    @Test("Numeric ranges keep the first bound's width")
    func ranges() throws {
        let train = try ShardPattern("train-{000000..000009}.tar").shards
        #expect(train == (0...9).map { "train-00000\($0).tar" })
        #expect(try ShardPattern("{8..11}").shards == ["8", "9", "10", "11"])
        #expect(try ShardPattern("{08..11}").shards == ["08", "09", "10", "11"])
        #expect(try ShardPattern("s{7..7}").shards == ["s7"])
        let wide = try ShardPattern("{001..1000}").shards
        #expect(wide.count == 1000 && wide[0] == "001" && wide[98] == "099" && wide[998] == "999" && wide[999] == "1000")
        #expect(try ShardPattern("plain.tar").shards == ["plain.tar"])
    }

    @Test("Alternatives, several groups, nesting and '::' lists")
    func alternatives() throws {
        #expect(try ShardPattern("{a,b,c}.tar").shards == ["a.tar", "b.tar", "c.tar"])
        #expect(try ShardPattern("x{a,,b}y").shards == ["xay", "xy", "xby"])
        #expect(try ShardPattern("s{a,b}-{1..2}.tar").shards == ["sa-1.tar", "sa-2.tar", "sb-1.tar", "sb-2.tar"])
        #expect(try ShardPattern("{0..1}/{0..2}").shards == ["0/0", "0/1", "0/2", "1/0", "1/1", "1/2"])
        #expect(try ShardPattern("{a,b{1..2}}z").shards == ["az", "b1z", "b2z"])
        #expect(try ShardPattern("/data/a.tar::/data/b-{0..1}.tar").shards == ["/data/a.tar", "/data/b-0.tar", "/data/b-1.tar"])
        #expect(try ShardPattern("https://host/{x,y}.tar::c.tar").shards == ["https://host/x.tar", "https://host/y.tar", "c.tar"])
    }

    @Test("Errors: unbalanced braces, bad ranges, lone groups, empty pieces, too many names")
    func errors() throws {
        #expect(patternError("train-{0..3.tar")?.description == "shard pattern \"train-{0..3.tar\": the \"{\" at character 7 is never closed")
        #expect(patternError("a}b")?.problem == "the \"}\" at character 2 closes no \"{\"")
        #expect(patternError("{5..2}")?.problem == "the range \"{5..2}\" at character 1 descends (5 > 2)")
        #expect(patternError("{a..c}")?.problem.contains("is not two decimal numbers") == true)
        #expect(patternError("{1..2..3}")?.problem.contains("is not two decimal numbers") == true)
        #expect(patternError("{-1..2}")?.problem.contains("is not two decimal numbers") == true)
        #expect(patternError("x{abc}")?.problem == "the group \"{abc}\" at character 2 is neither a range {lo..hi} nor alternatives {a,b}")
        #expect(patternError("a.tar::")?.problem.contains("empty pattern") == true)
        #expect(patternError("{0..999999}{0..1}")?.problem == "expands to more than 1000000 names")
        #expect(patternError("{1..999999}::{a,b}")?.problem == "expands to more than 1000000 names")
        #expect(patternError("{0..9999999999}{0..9999999999}")?.problem == "expands to more than 1000000 names")
        #expect(try ShardPattern("{1..1000}{1..1000}").shards.count == 1_000_000)
    }

    @Test("Globs in the file part list the folder's matches in byte order; no match or a folder glob is an error")
    func globs() throws {
        let folder = NSTemporaryDirectory() + "shard-glob-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: folder + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for name in ["train-000010.tar", "train-000002.tar", "val-000000.tar", ".train-hidden.tar", "train-notes.txt", "Train-000001.tar"] {
            FileManager.default.createFile(atPath: "\(folder)/\(name)", contents: Data())
        }
        #expect(try ShardPattern("\(folder)/train-*.tar").shards == ["\(folder)/train-000002.tar", "\(folder)/train-000010.tar"])
        #expect(try ShardPattern("\(folder)/[Tt]rain-00000?.tar").shards == ["\(folder)/Train-000001.tar", "\(folder)/train-000002.tar"])
        // Braces first, then globs; '::' lists and plain names mix with them.
        #expect(try ShardPattern("\(folder)/{train,val}-*.tar::\(folder)/x.tar").shards
                == ["\(folder)/train-000002.tar", "\(folder)/train-000010.tar", "\(folder)/val-000000.tar", "\(folder)/x.tar"])
        #expect(patternError("\(folder)/test-*.tar")?.problem == "no file in \"\(folder)\" matches \"test-*.tar\"")
        #expect(patternError("\(folder)/*/train-*.tar")?.problem.contains("only the file part") == true)
        #expect(patternError("/nonexistent-folder/train-*.tar")?.problem.contains("cannot list the folder \"/nonexistent-folder\"") == true)
    }

    @Test("Shards per rank: shard i to rank i mod worldSize; fewer shards than ranks is an error")
    func ranks() throws {
        let pattern = try ShardPattern("s-{00..09}.tar")
        #expect(try pattern.shards(forRank: 0, worldSize: 3) == ["s-00.tar", "s-03.tar", "s-06.tar", "s-09.tar"])
        #expect(try pattern.shards(forRank: 1, worldSize: 3) == ["s-01.tar", "s-04.tar", "s-07.tar"])
        #expect(try pattern.shards(forRank: 2, worldSize: 3) == ["s-02.tar", "s-05.tar", "s-08.tar"])
        #expect(try pattern.shards(forRank: 0, worldSize: 1) == pattern.shards)
        var all: [String] = []
        for rank in 0..<4 { all += try pattern.shards(forRank: rank, worldSize: 4) }
        #expect(all.sorted() == pattern.shards)

        let few = try ShardPattern("s-{0..2}.tar")
        let error = try #require(#expect(throws: ShardPatternError.self) { _ = try few.shards(forRank: 0, worldSize: 4) })
        #expect(error.problem == "3 shards cannot be shared among 4 ranks: every rank needs at least one shard")
        #expect(throws: ShardPatternError.self) { _ = try few.shards(forRank: 3, worldSize: 3) }
    }

    @Test("Shuffle buffer: a permutation, reproducible from the seed, different across seeds")
    func shuffleDeterminism() {
        let input = Array(0..<200)
        let a = ShuffleBuffer.shuffled(input, capacity: 16, rng: CounterRNG(seed: 5))
        let b = ShuffleBuffer.shuffled(input, capacity: 16, rng: CounterRNG(seed: 5))
        let c = ShuffleBuffer.shuffled(input, capacity: 16, rng: CounterRNG(seed: 6))
        #expect(a == b)
        #expect(a.sorted() == input)
        #expect(a != c && c.sorted() == input)
        #expect(a != input)
        // Item i cannot leave before the buffer holds it: output k comes at input capacity + k.
        for (position, item) in a.enumerated() { #expect(item <= position + 16) }
    }

    @Test("Shuffle buffer: exact behaviour at capacity 1 and at capacity ≥ count")
    func shuffleExact() {
        let rng = CounterRNG(seed: 9, stream: 3)
        #expect(ShuffleBuffer.shuffled(Array(0..<50), capacity: 1, rng: rng) == Array(0..<50))
        #expect(ShuffleBuffer.shuffled(Array(0..<50), capacity: 50, rng: rng) == rng.permutation(50))
        #expect(ShuffleBuffer.shuffled(Array(0..<50), capacity: 80, rng: rng) == rng.permutation(50))

        var buffer = ShuffleBuffer<String>(capacity: 3, seed: 1)
        #expect(buffer.add("a") == nil && buffer.add("b") == nil && buffer.add("c") == nil)
        let evicted = buffer.add("d")
        #expect(evicted != nil && ["a", "b", "c"].contains(evicted!))
        #expect(buffer.count == 3)
        let rest = buffer.drain()
        #expect(Set(rest + [evicted!]) == ["a", "b", "c", "d"] && buffer.count == 0)
    }

    @Test("Shuffle buffer: the item evicted is uniform over the residents")
    func shuffleUniform() {
        var counts = [Int](repeating: 0, count: 10)
        for seed in 0..<3000 {
            var buffer = ShuffleBuffer<Int>(capacity: 10, seed: UInt64(seed))
            for i in 0..<10 { _ = buffer.add(i) }
            counts[buffer.add(10)!] += 1
        }
        // 300 expected each; ±60 is about 3.6 standard deviations.
        #expect(counts.allSatisfy { (240...360).contains($0) }, "\(counts)")
    }
}
