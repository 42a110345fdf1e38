// The pieces of the real-data path that need no training: the tar writer against the reader,
// JPEG encoding, the random-resized crop's boxes and resampling.

import Compute
import Data
import Foundation
import Testing

@Suite("real-data formats: tar writer, JPEG writer, random-resized crop")
struct RealDataFormatTests {
    @Test("TarWriter's archives read back member for member, with prefix-split and PAX long names; Python-compatible padding")
    func tarRoundTrip() throws {
        var tar = TarWriter()
        let long = String(repeating: "folder/", count: 20) + "sample.seg.png"  // 154 bytes: prefix + name
        let veryLong = String(repeating: "x", count: 180) + ".txt"  // no slash: a PAX path record
        let members: [(String, [UInt8])] = [
            ("a.txt", Array("hello".utf8)), ("b.bin", (0..<1000).map { UInt8($0 % 251) }), (long, [1, 2, 3]), (veryLong, Array("long".utf8)),
            ("empty.txt", []),
        ]
        for (name, data) in members { tar.append(name: name, data: data) }
        let bytes = tar.finished()
        #expect(bytes.count % 10_240 == 0)
        let path = NSTemporaryDirectory() + "tarwriter-\(UUID().uuidString).tar"
        try tar.write(to: path)
        let read = try TarReader(path: path).readAll()
        #expect(read.map(\.name) == members.map(\.0))
        #expect(read.map(\.bytes) == members.map(\.1))
    }

    @Test("JPEGWriter's output decodes to the same size and nearly the same pixels")
    func jpegRoundTrip() throws {
        var pixels: [UInt8] = []
        for y in 0..<24 { for x in 0..<32 { pixels += [UInt8(x * 8), UInt8(y * 10), 128] } }
        let image = RGBImage(width: 32, height: 24, pixels: pixels)
        let decoded = try ImageDecoder.decode(try JPEGWriter.encode(image, quality: 95), name: "encoded")
        #expect(decoded.width == 32 && decoded.height == 24)
        let worst = zip(decoded.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 12, "largest channel difference \(worst)")
    }

    @Test("Random-resized crop boxes lie inside the image, keep 90–100% of its area within the ratio bounds, and depend only on the counter")
    func cropBoxes() {
        let crop = RandomResizedCrop()
        let rng = CounterRNG(seed: 3, streamNamed: "random-resized-crop")
        var distinct = Set<CropBox>()
        for (w, h) in [(64, 64), (60, 50), (33, 97)] {
            for c in 0..<200 {
                let box = crop.box(width: w, height: h, rng: rng, counter: UInt64(c))
                #expect(box == crop.box(width: w, height: h, rng: rng, counter: UInt64(c)))
                #expect(box.left >= 0 && box.top >= 0 && box.left + box.width <= w && box.top + box.height <= h, "\(box) in \(w)×\(h)")
                if w == 33 {
                    // 33×97 is narrower than ratio 3/4 allows, so no draw fits (an area ≥ 90% needs
                    // h ≥ 87, ratio ≤ 0.38): torchvision's fallback, the centred box of ratio 3/4.
                    #expect(box == CropBox(left: 0, top: 26, width: 33, height: 44))
                } else {
                    let area = Double(box.width * box.height) / Double(w * h)
                    // Rounding w and h to pixels moves the area by up to about one row and column;
                    // the fallback (when no draw fits) is the whole image.
                    let slack = Double(box.width + box.height + 1) / Double(w * h)
                    #expect(area >= 0.9 - slack - 1e-9 && area <= 1.0 + 1e-9, "area fraction \(area) for \(box) in \(w)×\(h)")
                }
                distinct.insert(box)
            }
        }
        #expect(distinct.count > 50, "only \(distinct.count) distinct boxes")
    }

    @Test("A crop of the whole square image resamples exactly as the evaluation transform does")
    func cropMatchesPreprocess() {
        var pixels: [UInt8] = []
        for y in 0..<48 { for x in 0..<48 { pixels += [UInt8((x * y) % 256), UInt8(x * 5), UInt8(255 - y * 5)] } }
        let image = RGBImage(width: 48, height: 48, pixels: pixels)
        var a = [Float](repeating: 0, count: 3 * 20 * 20), b = a
        preprocess(image, size: 20, into: &a)
        preprocessCrop(image, box: CropBox(left: 0, top: 0, width: 48, height: 48), size: 20, into: &b)
        #expect(a == b)
        // A corner crop differs from the whole.
        preprocessCrop(image, box: CropBox(left: 10, top: 4, width: 30, height: 40), size: 20, into: &b)
        #expect(a != b)
    }
}
