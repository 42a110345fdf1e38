// PNG encoding of 8-bit RGB images with zlib alone: signature, IHDR, IDAT (each row filtered with
// the PNG filter that minimises the sum of absolute byte differences, then deflated with
// compress2), IEND; every chunk closed by its CRC-32 (zlib's crc32). No libpng needed to write.

import CZlib

/// Writes `RGBImage`s as PNG (8-bit RGB, non-interlaced).
public enum PNGWriter {
    /// The PNG file signature.
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Largest IDAT chunk written; longer compressed data is split over several chunks.
    static let maxChunk = 1 << 20

    /// The PNG file for `image`.
    public static func encode(_ image: RGBImage) -> [UInt8] {
        precondition(image.width > 0 && image.height > 0 && image.width < 1 << 31 && image.height < 1 << 31,
                     "PNGWriter: cannot encode a \(image.width)×\(image.height) image")
        var out = signature
        var header: [UInt8] = []
        appendBigEndian(UInt32(image.width), to: &header)
        appendBigEndian(UInt32(image.height), to: &header)
        header += [8, 2, 0, 0, 0]  // 8 bits per channel, colour type 2 (RGB), deflate, adaptive filters, no interlace
        appendChunk("IHDR", header, to: &out)
        let compressed = deflate(filteredRows(image))
        var start = 0
        repeat {
            let end = min(compressed.count, start + maxChunk)
            appendChunk("IDAT", Array(compressed[start..<end]), to: &out)
            start = end
        } while start < compressed.count
        appendChunk("IEND", [], to: &out)
        return out
    }

    /// Writes `image` as a PNG file at `path`, atomically (temporary file, fsync, rename).
    public static func write(_ image: RGBImage, to path: String) throws {
        try FileIO.writeAtomically(encode(image), to: path)
    }

    /// Each row as a filter-type byte followed by the filtered bytes (PNG spec §9).
    static func filteredRows(_ image: RGBImage) -> [UInt8] {
        let stride = image.width * 3
        var out = [UInt8](repeating: 0, count: image.height * (stride + 1))
        var candidate = [UInt8](repeating: 0, count: stride)
        image.pixels.withUnsafeBufferPointer { px in
            out.withUnsafeMutableBufferPointer { out in
                for y in 0..<image.height {
                    let row = px.baseAddress! + y * stride
                    let above: UnsafePointer<UInt8>? = y > 0 ? row - stride : nil
                    var bestCost = Int.max
                    for type in UInt8(0)...4 {
                        var cost = 0
                        for i in 0..<stride {
                            let a: UInt8 = i >= 3 ? row[i - 3] : 0
                            let b: UInt8 = above?[i] ?? 0
                            let c: UInt8 = i >= 3 ? (above?[i - 3] ?? 0) : 0
                            let predicted: UInt8
                            switch type {
                            case 0: predicted = 0
                            case 1: predicted = a
                            case 2: predicted = b
                            case 3: predicted = UInt8((Int(a) + Int(b)) / 2)
                            default: predicted = paeth(a, b, c)
                            }
                            let v = row[i] &- predicted
                            candidate[i] = v
                            cost += v < 128 ? Int(v) : 256 - Int(v)
                        }
                        if cost < bestCost {
                            bestCost = cost
                            let dst = out.baseAddress! + y * (stride + 1)
                            dst[0] = type
                            candidate.withUnsafeBufferPointer { (dst + 1).update(from: $0.baseAddress!, count: stride) }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The Paeth predictor: whichever of left, above, upper-left is closest to left + above − upper-left.
    @inline(__always)
    static func paeth(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> UInt8 {
        let p = Int(a) + Int(b) - Int(c)
        let pa = abs(p - Int(a)), pb = abs(p - Int(b)), pc = abs(p - Int(c))
        if pa <= pb && pa <= pc { return a }
        return pb <= pc ? b : c
    }

    /// zlib-format deflate of `data` (compress2, level 6).
    static func deflate(_ data: [UInt8]) -> [UInt8] {
        var capacity = compressBound(uLong(data.count))
        var out = [UInt8](repeating: 0, count: Int(capacity))
        let status = out.withUnsafeMutableBufferPointer { dst in
            data.withUnsafeBufferPointer { src in
                compress2(dst.baseAddress!, &capacity, src.baseAddress!, uLong(src.count), 6)
            }
        }
        precondition(status == Z_OK, "PNGWriter: zlib compress2 failed with status \(status)")
        out.removeLast(out.count - Int(capacity))
        return out
    }

    /// Appends a chunk: length, type, data, CRC-32 of type and data.
    static func appendChunk(_ type: String, _ data: [UInt8], to out: inout [UInt8]) {
        let typeBytes = Array(type.utf8)
        appendBigEndian(UInt32(data.count), to: &out)
        var crc = crc32(0, nil, 0)
        crc = typeBytes.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        crc = data.withUnsafeBufferPointer { crc32(crc, $0.baseAddress, uInt($0.count)) }
        out += typeBytes
        out += data
        appendBigEndian(UInt32(truncatingIfNeeded: crc), to: &out)
    }

    static func appendBigEndian(_ value: UInt32, to out: inout [UInt8]) {
        out += [UInt8(value >> 24), UInt8((value >> 16) & 0xFF), UInt8((value >> 8) & 0xFF), UInt8(value & 0xFF)]
    }
}
