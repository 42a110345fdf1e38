// The in-memory image type of ClipLab's image I/O, its error type, whole-file reading with POSIX
// calls and atomic writing (through Compute's `writeAtomically`).

import Compute

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (r, g, b, r, g, b, …).
public struct RGBImage: Sendable, Hashable {
    /// Width in pixels.
    public let width: Int
    /// Height in pixels.
    public let height: Int
    /// width·height·3 bytes: pixel (x, y) starts at 3·(y·width + x).
    public var pixels: [UInt8]

    /// An image over `pixels` (width·height·3 bytes, interleaved RGB).
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)×\(height)")
        precondition(pixels.count == width * height * 3,
                     "RGBImage: \(width)×\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    /// A width×height image of one colour.
    public init(width: Int, height: Int, fill: (r: UInt8, g: UInt8, b: UInt8) = (255, 255, 255)) {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<(width * height) {
            pixels[3 * i] = fill.r
            pixels[3 * i + 1] = fill.g
            pixels[3 * i + 2] = fill.b
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The image whose channel planes are `planes`, (3, height, width) Float in [0, 1]
    /// (values outside are clamped; each is rounded to the nearest of 0…255).
    public init(planes: [Float], width: Int, height: Int) {
        precondition(planes.count == 3 * width * height,
                     "RGBImage(planes:): \(width)×\(height) needs \(3 * width * height) floats, got \(planes.count)")
        let n = width * height
        var pixels = [UInt8](repeating: 0, count: 3 * n)
        for c in 0..<3 {
            for i in 0..<n {
                let v = min(max(planes[c * n + i], 0), 1)
                pixels[3 * i + c] = UInt8((v * 255).rounded())
            }
        }
        self.init(width: width, height: height, pixels: pixels)
    }

    /// The colour of pixel (x, y).
    public subscript(x: Int, y: Int) -> (r: UInt8, g: UInt8, b: UInt8) {
        get {
            let i = 3 * (y * width + x)
            return (pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = 3 * (y * width + x)
            pixels[i] = newValue.r
            pixels[i + 1] = newValue.g
            pixels[i + 2] = newValue.b
        }
    }
}

/// A failure to read, decode or write an image: names the file and the problem, as in
/// "x.jpg: not a PNG or JPEG file (starts with 47 49 46 38)".
public struct ImageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file (or, for in-memory data, the name the caller gave it).
    public let path: String
    /// What went wrong.
    public let problem: String

    /// An error about `path`.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = problem
    }

    /// "path: problem".
    public var description: String { "\(path): \(problem)" }
}

/// Whole-file reads and atomic writes.
enum FileIO {
    /// The text of the current `errno`.
    static func errorText() -> String { String(cString: strerror(errno)) }

    /// The bytes of the file at `path`.
    static func readFile(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError(path: path, problem: "cannot open (\(errorText()))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError(path: path, problem: "cannot stat (\(errorText()))") }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw ImageError(path: path, problem: "is a directory") }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(info.st_size))
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ImageError(path: path, problem: "cannot read (\(errorText()))")
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Writes `bytes` to `path` atomically with Compute's `writeAtomically` (a temporary file in
    /// the same folder, fsync, rename, fsync of the folder): readers see the old file or the
    /// complete new one, never a part. A failure leaves no temporary file and throws an
    /// `ImageError` naming `path` and the system's reason.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        do { try Compute.writeAtomically(bytes, to: path) } catch let e as FileWriteError {
            throw ImageError(path: path, problem: e.problem)
        }
    }
}
