// libFuzzer target: an image from an untrusted source (a WebDataset shard's .jpg or .png, a CSV
// data set's file) decoded by ImageDecoder: PNG through libpng, JPEG through libjpeg-turbo, CMYK
// JPEGs allowed so their conversion runs too. Checked: a decoded image has width × height × 3
// bytes.

import Data

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let image = try? ImageDecoder.decode(bytes, name: "fuzz-image", allowCMYK: true) else { return 0 }
    guard image.width > 0, image.height > 0, image.pixels.count == image.width * image.height * 3 else {
        fatalError("decoded a \(image.width)×\(image.height) image with \(image.pixels.count) bytes")
    }
    return 0
}
