// Decoding of users' images (WebDataset shards, CSV datasets) to 8-bit RGB, by magic bytes:
// PNG through libpng's simplified API (which converts every PNG flavour and reports errors in the
// image structure instead of through setjmp/longjmp), JPEG through libjpeg-turbo, driven by a C
// helper in the CJPEG module's header (libjpeg's error recovery needs setjmp, which Swift lacks).

import CJPEG
import CPNG

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Decodes PNG and JPEG files to `RGBImage`.
public enum ImageDecoder {
    /// Largest image decoded, in pixels (2²⁸, e.g. 16384 × 16384); larger ones are refused. Images
    /// whose header declares more pixels than their file's size can hold (PNG: deflate's 1032:1 on
    /// one bit a pixel; Huffman-coded JPEG: one bit per 8×8 block, taken as 1,024 pixels a byte)
    /// are refused too, before their pixels are allocated.
    public static let maxPixels = 1 << 28

    /// The image in the file at `path`, recognised as PNG or JPEG by its first bytes.
    ///
    /// PNG: palette, grey, grey + alpha, 16-bit and alpha images are all converted to 8-bit RGB;
    /// transparency is composited onto white; 16-bit samples without a gAMA or sRGB chunk are
    /// taken to be sRGB-encoded (as image tools write them). JPEG: YCbCr, RGB and grey images, and
    /// CMYK / YCCK only with `allowCMYK` (converted naively, without a colour profile; refused by
    /// default with an error saying so). Errors name the file.
    public static func decode(path: String, allowCMYK: Bool = false) throws -> RGBImage {
        try decode(FileIO.readFile(path), name: path, allowCMYK: allowCMYK)
    }

    /// The image encoded in `bytes` (e.g. a tar entry); `name` is used in error messages.
    public static func decode(_ bytes: [UInt8], name: String, allowCMYK: Bool = false) throws -> RGBImage {
        if bytes.starts(with: PNGWriter.signature) { return try decodePNG(bytes, name: name) }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return try decodeJPEG(bytes, name: name, allowCMYK: allowCMYK) }
        if bytes.isEmpty { throw ImageError(path: name, problem: "empty file, not a PNG or JPEG image") }
        let hex = bytes.prefix(4).map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }
        throw ImageError(path: name, problem: "not a PNG or JPEG file (starts with \(hex.joined(separator: " ")))")
    }

    /// The text of a char array inside a C struct.
    private static func text<T>(_ tuple: T) -> String {
        withUnsafeBytes(of: tuple) { raw in
            let chars = raw.bindMemory(to: UInt8.self)
            let end = chars.firstIndex(of: 0) ?? chars.count
            return String(decoding: chars[0..<end], as: UTF8.self)
        }
    }

    static func decodePNG(_ bytes: [UInt8], name: String) throws -> RGBImage {
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        return try bytes.withUnsafeBytes { raw -> RGBImage in
            guard png_image_begin_read_from_memory(&image, raw.baseAddress, raw.count) != 0 else {
                let message = text(image.message)
                png_image_free(&image)
                throw ImageError(path: name, problem: "invalid PNG (\(message))")
            }
            let width = Int(image.width), height = Int(image.height)
            guard width > 0, height > 0, width * height <= maxPixels else {
                png_image_free(&image)
                throw ImageError(path: name, problem: "PNG of \(width)×\(height) pixels is too large to decode")
            }
            // Checked before the pixels are allocated: a complete PNG's deflated data holds at
            // least its filtered rows (a filter byte and ⌈width/8⌉ bytes each at the smallest, one
            // bit a pixel) over deflate's largest ratio, 1032:1, so a file smaller than that is
            // cut short or lies in its header (which libpng would find only after the allocation).
            let leastRaw = height * (1 + (width + 7) / 8)
            guard bytes.count >= (leastRaw + 1031) / 1032 else {
                png_image_free(&image)
                throw ImageError(
                    path: name,
                    problem: "invalid PNG (its header declares \(width)×\(height) pixels, which take at least \((leastRaw + 1031) / 1032) bytes of compressed data; the file has \(bytes.count) bytes)")
            }
            image.format = UInt32(PNG_FORMAT_RGB)
            image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            var pixels = [UInt8](repeating: 255, count: width * height * 3)
            var white = png_color(red: 255, green: 255, blue: 255)
            let ok = pixels.withUnsafeMutableBytes {
                png_image_finish_read(&image, &white, $0.baseAddress, Int32(width * 3), nil)
            }
            guard ok != 0 else {
                let message = text(image.message)
                png_image_free(&image)
                throw ImageError(path: name, problem: "invalid PNG (\(message))")
            }
            return RGBImage(width: width, height: height, pixels: pixels)
        }
    }

    static func decodeJPEG(_ bytes: [UInt8], name: String, allowCMYK: Bool = false) throws -> RGBImage {
        var data: UnsafeMutablePointer<UInt8>?
        var width: UInt32 = 0, height: UInt32 = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = bytes.withUnsafeBufferPointer { src in
            message.withUnsafeMutableBufferPointer { msg in
                cliplab_jpeg_decode_rgb(src.baseAddress, UInt(src.count), &data, &width, &height,
                                        allowCMYK ? 1 : 0, msg.baseAddress, msg.count)
            }
        }
        guard status == 0, let data else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            let kind = text.hasPrefix("a CMYK") ? "unsupported JPEG" : "invalid JPEG"
            throw ImageError(path: name, problem: "\(kind) (\(text.isEmpty ? "unknown error" : text))")
        }
        defer { free(data) }
        let count = Int(width) * Int(height) * 3
        return RGBImage(width: Int(width), height: Int(height),
                        pixels: Array(UnsafeBufferPointer(start: data, count: count)))
    }
}
