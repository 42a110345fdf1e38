// Properties of every image token mask over grid sizes and ratios: the count kept, distinct
// in-range ascending indices, the shape each strategy promises (one per window, one rectangle),
// uniformity of random masking, and determinism in (seed, epoch, sample).

import Compute
import Testing
import TokenReduction

func kept(_ r: ImageTokenReduction, grid: Int, seed: UInt64 = 1, epoch: Int = 0, sample: Int = 0) throws -> [Int] {
    let n = try r.keptPatches(grid: grid)
    var out = [Int32](repeating: -1, count: n)
    try out.withUnsafeMutableBufferPointer { try r.fillKept(grid: grid, seed: seed, epoch: epoch, sample: sample, into: $0.baseAddress!) }
    return out.map(Int.init)
}

@Suite struct ImageTokenReductionTests {
    @Test func randomKeepsTheFloorOfTheUnmaskedShare() throws {
        for g in 1...14 {
            for r in [0.0, 0.25, 0.3, 0.5, 0.75, 0.9] {
                let strategy = ImageTokenReduction.random(ratio: r)
                let expected = Int((Double(g * g) * (1 - r)).rounded(.down))
                if expected == 0 {
                    #expect(throws: TokenReductionError.self) { try strategy.keptPatches(grid: g) }
                    continue
                }
                for sample in 0..<5 {
                    let k = try kept(strategy, grid: g, sample: sample)
                    #expect(k.count == expected, "grid \(g), ratio \(r)")
                    #expect(k == k.sorted() && Set(k).count == k.count, "distinct, ascending")
                    #expect(k.allSatisfy { (0..<(g * g)).contains($0) })
                }
            }
        }
    }

    @Test func keptCountsCountedByHand() throws {
        // 8×8: 75% keeps 16, 50% keeps 32, 30% keeps 44 (⌊64 · 0.7⌋, as OpenCLIP's int()); 14×14 at 75%: 49.
        #expect(try ImageTokenReduction.random(ratio: 0.75).keptPatches(grid: 8) == 16)
        #expect(try ImageTokenReduction.random(ratio: 0.5).keptPatches(grid: 8) == 32)
        #expect(try ImageTokenReduction.random(ratio: 0.3).keptPatches(grid: 8) == 44)
        #expect(try ImageTokenReduction.random(ratio: 0.75).keptPatches(grid: 14) == 49)
        #expect(try ImageTokenReduction.grid(window: 2, offset: .image).keptPatches(grid: 8) == 16)
        #expect(try ImageTokenReduction.block(ratio: 0.75).keptPatches(grid: 8) == 16)
    }

    @Test func randomMaskingIsUniformOverPatches() throws {
        // 4,000 images of an 8×8 grid at 75%: each patch is kept with probability 1/4.
        let g = 8, images = 4000
        var hits = [Int](repeating: 0, count: g * g)
        for s in 0..<images { for p in try kept(.random(ratio: 0.75), grid: g, sample: s) { hits[p] += 1 } }
        let p = 0.25, sd = (Double(images) * p * (1 - p)).squareRoot()
        for (patch, h) in hits.enumerated() {
            #expect(abs(Double(h) - Double(images) * p) < 4.5 * sd, "patch \(patch) kept \(h) times of \(images)")
        }
    }

    @Test func gridKeepsOnePatchPerWindow() throws {
        for (g, k) in [(8, 2), (8, 4), (6, 3), (12, 2), (4, 1), (9, 3)] {
            for offset in GridMaskOffset.allCases {
                var offsetsSeen = Set<Int>()
                for sample in 0..<200 {
                    let idx = try kept(.grid(window: k, offset: offset), grid: g, sample: sample)
                    #expect(idx.count == (g / k) * (g / k))
                    var windows = [Int: Int]()
                    var offsets = Set<Int>()
                    for p in idx {
                        let (y, x) = (p / g, p % g)
                        windows[(y / k) * (g / k) + x / k, default: 0] += 1
                        offsets.insert((y % k) * k + x % k)
                    }
                    #expect(windows.count == (g / k) * (g / k) && windows.values.allSatisfy { $0 == 1 }, "one patch in every window")
                    switch offset {
                    case .fixed: #expect(offsets == [0])
                    case .image: #expect(offsets.count == 1, "one offset shared by the image's windows")
                    case .window: break
                    }
                    offsetsSeen.formUnion(offsets)
                }
                if offset != .fixed && k > 1 { #expect(offsetsSeen.count == k * k, "every offset occurs across images") }
            }
        }
        #expect(throws: TokenReductionError.self) { try ImageTokenReduction.grid(window: 3, offset: .image).keptPatches(grid: 8) }
    }

    @Test func blockKeepsOneRectangle() throws {
        for (g, r, h, w) in [(8, 0.75, 4, 4), (8, 0.5, 4, 8), (8, 0.25, 6, 8), (14, 0.75, 7, 7), (14, 0.5, 7, 14), (4, 0.75, 2, 2)] {
            let strategy = ImageTokenReduction.block(ratio: r)
            let shape = try strategy.blockShape(grid: g)
            #expect(shape.rows == h && shape.columns == w, "grid \(g) ratio \(r): \(shape)")
            var tops = Set<Int>()
            for sample in 0..<60 {
                let idx = try kept(strategy, grid: g, sample: sample)
                #expect(idx.count == h * w)
                let ys = idx.map { $0 / g }, xs = idx.map { $0 % g }
                let height = ys.max()! - ys.min()! + 1, width = xs.max()! - xs.min()! + 1
                #expect(height * width == idx.count && Set(idx).count == idx.count, "a filled rectangle")
                #expect(Set([height, width]) == Set([h, w]))
                tops.insert(ys.min()!)
            }
            if h < g || w < g { #expect(tops.count > 1, "the block moves between images") }
        }
        // 44 patches of an 8×8 grid form no rectangle: the error names a ratio that does.
        #expect(throws: TokenReductionError.self) { try ImageTokenReduction.block(ratio: 0.3).keptPatches(grid: 8) }
    }

    @Test func drawsAreKeyedBySeedEpochAndSample() throws {
        let r = ImageTokenReduction.random(ratio: 0.5)
        #expect(try kept(r, grid: 8, seed: 3, epoch: 2, sample: 9) == kept(r, grid: 8, seed: 3, epoch: 2, sample: 9))
        #expect(try kept(r, grid: 8, seed: 3, epoch: 2, sample: 9) != kept(r, grid: 8, seed: 3, epoch: 2, sample: 10))
        #expect(try kept(r, grid: 8, seed: 3, epoch: 2, sample: 9) != kept(r, grid: 8, seed: 3, epoch: 3, sample: 9))
        #expect(try kept(r, grid: 8, seed: 3, epoch: 2, sample: 9) != kept(r, grid: 8, seed: 4, epoch: 2, sample: 9))
    }

    @Test func parsesAndNamesItsOptions() throws {
        for text in ["none", "resize:16", "random:0.75", "grid:2:fixed", "grid:2:window", "block:0.5"] {
            #expect(try ImageTokenReduction(parsing: text).name == text)
        }
        #expect(try ImageTokenReduction(parsing: "grid:2") == .grid(window: 2, offset: .image))
        for bad in ["", "random", "random:1", "random:-0.1", "grid:0", "grid:2:corner", "resize:x", "mask:0.5"] {
            #expect(throws: TokenReductionError.self) { try ImageTokenReduction(parsing: bad) }
        }
        do {
            _ = try ImageTokenReduction(parsing: "random:1.5")
            Issue.record("random:1.5 parsed")
        } catch let e as TokenReductionError {
            #expect(e.message.contains("random:1.5") && e.message.contains("[0, 1)"))
        }
        #expect(ImageTokenReduction.resize(imageSize: 16).trainingImageSize(modelImageSize: 32) == 16)
        #expect(ImageTokenReduction.random(ratio: 0.5).trainingImageSize(modelImageSize: 32) == 32)
    }
}
