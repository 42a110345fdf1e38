// SVG pictures to pixels through librsvg's `rsvg-convert` (Debian's librsvg2-bin), run as a child
// process per picture: librsvg is the SVG renderer of the GNOME desktop and handles what clip art
// and emoji SVGs use (gradients, masks, clip paths, text), which no small hand-written rasteriser
// would. The picture is fitted inside size×size keeping its aspect ratio, on white.

import Compute
import Foundation

/// Renders SVG files with `rsvg-convert`.
public struct SVGRasterizer: Sendable {
    /// The `rsvg-convert` executable.
    public let executable: String
    /// Longest time one picture may take before it is given up (seconds).
    public var timeout: Double = 30

    /// The rasteriser found on PATH (or at `CLIPLAB_RSVG_CONVERT`), or an error saying how to get it.
    public static func find() throws -> SVGRasterizer {
        let environment = ProcessInfo.processInfo.environment
        if let explicit = environment["CLIPLAB_RSVG_CONVERT"], FileManager.default.isExecutableFile(atPath: explicit) {
            return SVGRasterizer(executable: explicit)
        }
        for folder in (environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(folder)/rsvg-convert"
            if FileManager.default.isExecutableFile(atPath: candidate) { return SVGRasterizer(executable: candidate) }
        }
        throw ImportError(reason: "missing_tool",
            "rsvg-convert is not installed; SVG pictures need it (Debian package librsvg2-bin: `apt-get install librsvg2-bin`, or scripts/bootstrap.sh)")
    }

    public init(executable: String) {
        self.executable = executable
    }

    /// The SVG file at `path` rendered to fit `size`×`size` (aspect kept, white background),
    /// then padded to that square.
    public func render(path: String, size: Int) throws -> RGBImage {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        // Render at twice the size and let the bicubic filter shrink it: thin clip-art strokes
        // keep their weight better than with librsvg's own coverage at the final size.
        process.arguments = ["--width", "\(2 * size)", "--height", "\(2 * size)", "--keep-aspect-ratio",
                             "--background-color", "white", "--format", "png", path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        // Read both pipes before waiting, so a large output cannot block the child.
        let messages = LockedData()
        let errorReader = Thread { messages.set(errors.fileHandleForReading.readDataToEndOfFile()) }
        errorReader.start()
        let png = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        timer.cancel()
        while !messages.isSet { usleep(1000) }
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            if process.terminationReason == .uncaughtSignal {
                throw ImportError(reason: "svg_timeout", "\(path): rsvg-convert took longer than \(Int(timeout)) s and was stopped")
            }
            let text = String(decoding: messages.value, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw ImportError(reason: "bad_svg", "\(path): rsvg-convert failed (status \(process.terminationStatus)): \(text.prefix(300))")
        }
        let image = try ImageDecoder.decode(Array(png), name: "\(path) (rendered)")
        return squarePicture(image, size: size)
    }

    /// The SVG document `bytes` rendered like `render(path:size:)`; `name` is used in errors.
    public func render(bytes: [UInt8], name: String, size: Int) throws -> RGBImage {
        let file = NSTemporaryDirectory() + "cliplab-svg-\(UUID().uuidString).svg"
        try writeAtomically(bytes, to: file)
        defer { try? FileManager.default.removeItem(atPath: file) }
        do {
            return try render(path: file, size: size)
        } catch let error as ImportError {
            throw ImportError(reason: error.reason, error.message.replacingOccurrences(of: file, with: name))
        }
    }
}

/// Bytes handed from a reader thread.
private final class LockedData: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    private var done = false
    func set(_ d: Data) {
        lock.lock()
        data = d
        done = true
        lock.unlock()
    }
    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return done
    }
    var value: Data {
        lock.lock()
        defer { lock.unlock() }
        return data
    }
}
