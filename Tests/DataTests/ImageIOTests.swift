// Tests of image I/O: PNG writing (structure, CRCs, round trip through libpng), decoding every PNG
// flavour and JPEG (RGB, grey, CMYK) from fixtures, errors that name the file, the bicubic
// resize + centre crop, the bitmap font and the contact sheet.

import Compute
import Data
import Foundation
import Testing

/// A fresh empty folder under the temporary directory.
func temporaryFolder() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("cliplab-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// The path of an image fixture.
func fixture(_ name: String) throws -> String {
    let dot = name.lastIndex(of: ".")!
    let url = try #require(Bundle.module.url(
        forResource: String(name[..<dot]), withExtension: String(name[name.index(after: dot)...]),
        subdirectory: "Fixtures/images"))
    return url.path
}

/// CRC-32 (IEEE, reflected, as PNG uses), bit by bit: an independent check of zlib's crc32.
func referenceCRC32(_ bytes: ArraySlice<UInt8>) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

func bigEndian(_ b: [UInt8], _ at: Int) -> Int {
    Int(b[at]) << 24 | Int(b[at + 1]) << 16 | Int(b[at + 2]) << 8 | Int(b[at + 3])
}

/// The error `body` throws, as an ImageError.
func imageError(_ body: () throws -> Void) -> ImageError? {
    do { try body() } catch let error as ImageError { return error } catch { return nil }
    return nil
}

@Suite("Image I/O")
struct ImageIOTests {
    /// A deterministic noisy image with smooth and sharp parts.
    func testImage(width: Int, height: Int) -> RGBImage {
        let rng = CounterRNG(seed: 11, streamNamed: "png")
        var image = RGBImage(width: width, height: height)
        for y in 0..<height {
            for x in 0..<width {
                let noise = UInt8(rng.integer(below: 256, UInt64(y * width + x)))
                image[x, y] = (UInt8((x * 255) / max(1, width - 1)), x < width / 2 ? noise : UInt8(y % 256), 200)
            }
        }
        return image
    }

    @Test("PNGWriter: valid chunks with correct CRCs")
    func pngStructure() {
        let image = testImage(width: 37, height: 23)
        let bytes = PNGWriter.encode(image)
        #expect(Array(bytes[0..<8]) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
        var at = 8, types: [String] = []
        while at < bytes.count {
            let length = bigEndian(bytes, at)
            let type = String(decoding: bytes[(at + 4)..<(at + 8)], as: UTF8.self)
            types.append(type)
            let crc = UInt32(bigEndian(bytes, at + 8 + length))
            #expect(crc == referenceCRC32(bytes[(at + 4)..<(at + 8 + length)]), "\(type) CRC")
            if type == "IHDR" {
                #expect(bigEndian(bytes, at + 8) == 37 && bigEndian(bytes, at + 12) == 23)
                #expect(Array(bytes[(at + 16)..<(at + 21)]) == [8, 2, 0, 0, 0])
            }
            at += 12 + length
        }
        #expect(at == bytes.count)
        #expect(types.first == "IHDR" && types.last == "IEND" && types.contains("IDAT"))
    }

    @Test("PNG round trip: PNGWriter then libpng gives identical pixels")
    func pngRoundTrip() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let world = ShapesWorld(ShapesWorld.Configuration(seed: 1, count: 10))
        for (n, image) in [testImage(width: 37, height: 23), testImage(width: 1, height: 1),
                           testImage(width: 300, height: 2), world.renderImage(world.scene(3), size: 64)].enumerated() {
            let path = "\(folder)/image\(n).png"
            try PNGWriter.write(image, to: path)
            #expect(try ImageDecoder.decode(path: path) == image)
        }
        // Writing is atomic: only the final files remain, and overwriting replaces.
        try PNGWriter.write(testImage(width: 5, height: 5), to: "\(folder)/image0.png")
        #expect(try ImageDecoder.decode(path: "\(folder)/image0.png") == testImage(width: 5, height: 5))
        let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        #expect(names == ["image0.png", "image1.png", "image2.png", "image3.png"])
        let mode = try FileManager.default.attributesOfItem(atPath: "\(folder)/image0.png")[.posixPermissions] as? Int
        #expect(mode.map { $0 & 0o044 } == 0o044, "readable by group and others")
        // A folder that does not exist is an error naming the file.
        let missing = imageError { try PNGWriter.write(testImage(width: 2, height: 2), to: "\(folder)/no/such.png") }
        #expect(missing?.description.hasPrefix("\(folder)/no/such.png: ") == true)
    }

    @Test("PNG flavours: palette, 16-bit grey, 16-bit RGB and alpha become 8-bit RGB")
    func pngFlavours() throws {
        let quadrants: [(r: UInt8, g: UInt8, b: UInt8)] = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
        func quadrant(_ x: Int, _ y: Int) -> (r: UInt8, g: UInt8, b: UInt8) { quadrants[(y / 8) * 2 + x / 8] }
        for name in ["palette.png", "rgb16.png"] {
            let image = try ImageDecoder.decode(path: fixture(name))
            #expect(image.width == 16 && image.height == 16)
            for y in 0..<16 {
                for x in 0..<16 { #expect(image[x, y] == quadrant(x, y), "\(name) (\(x), \(y))") }
            }
        }
        let grey = try ImageDecoder.decode(path: fixture("grey16.png"))
        #expect(grey.width == 16 && grey.height == 8)
        let imageMagick: [Int] = [0, 36, 72, 109, 145, 182, 218, 255]
        for y in 0..<8 {
            for x in 0..<16 {
                let p = grey[x, y]
                #expect(p.r == p.g && p.g == p.b && abs(Int(p.r) - imageMagick[y]) <= 1, "grey16 (\(x), \(y)): \(p)")
            }
        }
        // 50% red over white: libpng composites in linear light, so green and blue are
        // 188 rather than ImageMagick's 128 (sRGB arithmetic); either way the red stays 255.
        let alpha = try ImageDecoder.decode(path: fixture("rgba.png"))
        let p = alpha[3, 3]
        #expect(p.r == 255 && p.g == p.b && p.g >= 120 && p.g <= 200, "\(p)")
    }

    @Test("JPEG: RGB as ImageMagick decodes it, grey expanded, CMYK refused (converted only when asked)")
    func jpeg() throws {
        let image = try ImageDecoder.decode(path: fixture("rgb.jpg"))
        #expect(image.width == 16 && image.height == 16)
        let expected = [UInt8](try Foundation.Data(contentsOf: URL(fileURLWithPath: fixture("rgb-jpg-expected.rgb"))))
        let worst = zip(image.pixels, expected).map { abs(Int($0) - Int($1)) }.max() ?? 999
        #expect(expected.count == 768 && worst <= 1, "largest difference from ImageMagick: \(worst)")
        #expect(image[2, 2].r > 240 && image[2, 2].g < 15 && image[12, 12] == (255, 255, 255) || image[12, 12].r > 250)

        let grey = try ImageDecoder.decode(path: fixture("grey.jpg"))
        #expect(grey.width == 16 && grey.height == 8)
        for y in 0..<8 {
            let p = grey[5, y]
            #expect(p.r == p.g && p.g == p.b && abs(Int(p.r) - (y * 255 + 3) / 7) <= 4, "grey row \(y): \(p)")
        }

        // CMYK is refused by default, with the reason; decoded naively only when asked.
        #expect {
            _ = try ImageDecoder.decode(path: fixture("cmyk.jpg"))
        } throws: { "\($0)".contains("cmyk.jpg") && "\($0)".contains("a CMYK JPEG") && "\($0)".contains("convert it to RGB") }
        let cmyk = try ImageDecoder.decode(path: fixture("cmyk.jpg"), allowCMYK: true)
        #expect(cmyk.width == 16 && cmyk.height == 16)
        let quadrants: [(Int, Int, Int)] = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
        for (q, (r, g, b)) in quadrants.enumerated() {
            let p = cmyk[(q % 2) * 8 + 3, (q / 2) * 8 + 3]
            #expect(abs(Int(p.r) - r) <= 12 && abs(Int(p.g) - g) <= 12 && abs(Int(p.b) - b) <= 12, "CMYK quadrant \(q): \(p)")
        }
    }

    @Test("Unreadable and corrupt files give errors that name the file")
    func errors() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func write(_ bytes: [UInt8], _ name: String) throws -> String {
            let path = "\(folder)/\(name)"
            try Foundation.Data(bytes).write(to: URL(fileURLWithPath: path))
            return path
        }
        let gif = try write(Array("GIF89a".utf8) + [1, 0, 1, 0], "x.jpg")
        #expect(imageError { _ = try ImageDecoder.decode(path: gif) }?.description
            == "\(gif): not a PNG or JPEG file (starts with 47 49 46 38)")

        let empty = try write([], "empty.png")
        #expect(imageError { _ = try ImageDecoder.decode(path: empty) }?.description == "\(empty): empty file, not a PNG or JPEG image")

        let missing = "\(folder)/missing.png"
        #expect(imageError { _ = try ImageDecoder.decode(path: missing) }?.description.hasPrefix("\(missing): cannot open") == true)

        // A PNG signature followed by garbage, and a truncated PNG.
        let png = PNGWriter.encode(testImage(width: 20, height: 20))
        for (name, bytes) in [("garbage.png", Array(png[0..<8]) + [UInt8](repeating: 7, count: 40)),
                              ("truncated.png", Array(png[0..<(png.count / 2)]))] {
            let path = try write(bytes, name)
            let error = imageError { _ = try ImageDecoder.decode(path: path) }
            #expect(error?.path == path && error?.problem.hasPrefix("invalid PNG (") == true, "\(String(describing: error))")
        }

        // JPEG markers followed by garbage: libjpeg's fatal error comes back as an error, not exit().
        let jpeg = try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: fixture("rgb.jpg"))))
        for (name, bytes) in [("garbage.jpg", [0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0x41, count: 64)),
                              ("cut.jpg", Array(jpeg[0..<40]))] {
            let path = try write(bytes, name)
            let error = imageError { _ = try ImageDecoder.decode(path: path) }
            #expect(error?.path == path && error?.problem.hasPrefix("invalid JPEG (") == true, "\(String(describing: error))")
        }
        // Decoding still works after an error.
        #expect(try ImageDecoder.decode(path: fixture("rgb.jpg")).width == 16)
    }

    @Test("preprocess: identity, centre crop, constants and linear ramps")
    func preprocessing() {
        func run(_ image: RGBImage, _ size: Int) -> [Float] {
            var out = [Float](repeating: -1, count: 3 * size * size)
            out.withUnsafeMutableBufferPointer { preprocess(image, size: size, into: $0.baseAddress!) }
            return out
        }
        // Same size: the pixels themselves, channel-major, / 255.
        let small = testImage(width: 6, height: 6)
        let same = run(small, 6)
        for y in 0..<6 {
            for x in 0..<6 {
                let p = small[x, y]
                #expect(abs(same[y * 6 + x] - Float(p.r) / 255) < 1e-6)
                #expect(abs(same[36 + y * 6 + x] - Float(p.g) / 255) < 1e-6)
                #expect(abs(same[72 + y * 6 + x] - Float(p.b) / 255) < 1e-6)
            }
        }
        // A 10×6 image at size 6 is not resized, only cropped: columns 2…7.
        let wide = testImage(width: 10, height: 6)
        let cropped = run(wide, 6)
        for y in 0..<6 {
            for x in 0..<6 { #expect(abs(cropped[36 + y * 6 + x] - Float(wide[x + 2, y].g) / 255) < 1e-6) }
        }
        // A constant image stays constant at any scale.
        let flat = RGBImage(width: 31, height: 17, fill: (10, 128, 250))
        for size in [4, 8, 17, 40] {
            let out = run(flat, size)
            let n = size * size
            #expect(out[0..<n].allSatisfy { abs($0 - 10 / 255) < 1e-5 })
            #expect(out[n..<(2 * n)].allSatisfy { abs($0 - 128 / 255) < 1e-5 })
            #expect(out[(2 * n)...].allSatisfy { abs($0 - 250 / 255) < 1e-5 })
        }
        // A horizontal linear ramp 64 wide shrunk to 16: away from the borders the cubic reproduces
        // the ramp at each output pixel's centre, x_in = (x_out + 0.5)·4 − 0.5.
        var ramp = RGBImage(width: 64, height: 64)
        for y in 0..<64 { for x in 0..<64 { ramp[x, y] = (UInt8(2 * x + 50), 0, 0) } }
        let shrunk = run(ramp, 16)
        for x in 2..<14 {
            let expected = (2 * ((Float(x) + 0.5) * 4 - 0.5) + 50) / 255
            #expect(abs(shrunk[5 * 16 + x] - expected) < 1e-4, "x \(x): \(shrunk[5 * 16 + x]) vs \(expected)")
        }
        // Tall image: the shorter side (width) becomes the size, the centre rows are kept.
        var tall = RGBImage(width: 8, height: 24)
        for y in 0..<24 { for x in 0..<8 { tall[x, y] = y < 8 || y >= 16 ? (0, 0, 0) : (255, 255, 255) } }
        let middle = run(tall, 8)
        #expect(middle[0..<64].allSatisfy { $0 == 1 })
        // Values stay in [0, 1] despite the cubic's overshoot at sharp edges.
        let sharp = run(testImage(width: 50, height: 40), 24)
        #expect(sharp.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(sharp.contains { $0 > 0 && $0 < 1 })
    }

    @Test("Bitmap font: wrapping and drawing")
    func bitmapFont() {
        #expect(BitmapFont.wrap("a red circle at the top left", columns: 12) == ["a red circle", "at the top", "left"])
        #expect(BitmapFont.wrap("abcdefghij klm", columns: 4) == ["abcd", "efgh", "ij", "klm"])
        #expect(BitmapFont.wrap("", columns: 4).isEmpty)
        var image = RGBImage(width: 40, height: 12)
        BitmapFont.draw("Hi, g!", into: &image, x: 1, y: 1)
        let ink = stride(from: 0, to: image.pixels.count, by: 3).filter { image.pixels[$0] == 0 }.count
        #expect(ink > 20)
        // 'H' occupies columns 1…5 and rows 1…7; column 6 (the spacing) is blank.
        #expect(image[1, 1] == (0, 0, 0) && image[5, 7] == (0, 0, 0) && image[6, 4] == (255, 255, 255))
        // The descender of 'g' reaches below the baseline (row 8 and 9 of the glyph).
        let gLeft = 1 + 4 * BitmapFont.advance
        #expect((gLeft..<(gLeft + 5)).contains { image[$0, 1 + 8] == (0, 0, 0) })
        // Scale 2 doubles every font pixel; text outside the image is clipped without trapping.
        var big = RGBImage(width: 30, height: 30)
        BitmapFont.draw("I", into: &big, x: 0, y: 0, scale: 2)
        #expect(big[2, 0] == (0, 0, 0) && big[3, 1] == (0, 0, 0))
        BitmapFont.draw("clipped text", into: &big, x: 25, y: 25, scale: 3)
    }

    @Test("Contact sheet: layout, legible content, PNG round trip")
    func contactSheet() throws {
        let world = ShapesWorld(ShapesWorld.Configuration(seed: 0, count: 1000))
        let indices = Array(0..<6)
        let sheet = ContactSheet.render(world: world, indices: indices, imageSize: 32, scale: 4, columns: 3)
        // 3 columns of 128-px tiles in 1-px frames, 12-px margins, 16-px gaps.
        #expect(sheet.width == 2 * 12 + 3 * 130 + 2 * 16)
        #expect(sheet.height > 2 * (130 + 11))
        // The first tile is the first image enlarged 4×.
        let first = world.renderImage(world.scene(0), size: 32)
        #expect(sheet[13 + 4 * 10 + 1, 13 + 4 * 20 + 2] == first[10, 20])
        #expect(sheet[12, 12] == (170, 170, 170) && sheet[0, 0] == (255, 255, 255))
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try PNGWriter.write(sheet, to: "\(folder)/sheet.png")
        #expect(try ImageDecoder.decode(path: "\(folder)/sheet.png") == sheet)
        // For a person to look at: CLIPLAB_CONTACT_SHEET=/tmp/sheet.png swift test --filter contactSheet
        if let path = ProcessInfo.processInfo.environment["CLIPLAB_CONTACT_SHEET"] {
            let size = Int(ProcessInfo.processInfo.environment["CLIPLAB_CONTACT_SHEET_SIZE"] ?? "64") ?? 64
            let textScale = ProcessInfo.processInfo.environment["CLIPLAB_CONTACT_SHEET_TEXT_SCALE"].flatMap { Int($0) }
            let big = ContactSheet.render(world: world, indices: Array(0..<24), imageSize: size,
                                          scale: max(1, 256 / size), columns: 6, textScale: textScale)
            try PNGWriter.write(big, to: path)
        }
    }
}
