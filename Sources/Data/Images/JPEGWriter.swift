// JPEG encoding through libjpeg-turbo (the C helper in the CJPEG module's header), for exporting
// data sets (`clip data export --image-format jpg`).

import CJPEG

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Encodes `RGBImage`s as baseline JPEG files.
public enum JPEGWriter {
    /// The JPEG bytes of `image` at `quality` (1…100; libjpeg's 4:2:0 defaults).
    public static func encode(_ image: RGBImage, quality: Int = 90) throws -> [UInt8] {
        precondition((1...100).contains(quality), "JPEGWriter: quality must be in 1...100, got \(quality)")
        var data: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { src in
            message.withUnsafeMutableBufferPointer { msg in
                cliplab_jpeg_encode_rgb(src.baseAddress, UInt32(image.width), UInt32(image.height), Int32(quality), &data, &size,
                                        msg.baseAddress, msg.count)
            }
        }
        guard status == 0, let data else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw ImageError(path: "(JPEG encoder)", problem: "cannot encode a \(image.width)×\(image.height) image: \(text)")
        }
        defer { free(data) }
        return Array(UnsafeBufferPointer(start: data, count: Int(size)))
    }
}
