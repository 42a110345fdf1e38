import ArgumentParser
import Data
import Foundation

/// `clip data …`: look at the data.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect datasets.", subcommands: [Preview.self])

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a PNG contact sheet of samples with their captions.")

        @Option(help: "Seed of the synthetic data.") var dataSeed: UInt64 = 0
        @Option(help: "Number of samples.") var count = 24
        @Option(help: "First sample index.") var start = 0
        @Option(help: "Image size the samples are rendered at.") var imageSize = 32
        @Option(help: "Enlargement factor.") var scale = 4
        @Option(help: "Columns of the sheet.") var columns = 6
        @Option(name: [.customLong("out"), .customShort("o")], help: "PNG file to write.") var out = "shapes-preview.png"

        func validate() throws {
            guard (1...1000).contains(count) else { throw ValidationError("--count must be in 1...1000, got \(count)") }
            guard start >= 0 else { throw ValidationError("--start must be ≥ 0, got \(start)") }
            guard (8...512).contains(imageSize) else { throw ValidationError("--image-size must be in 8...512, got \(imageSize)") }
            guard (1...16).contains(scale) else { throw ValidationError("--scale must be in 1...16, got \(scale)") }
            guard (1...50).contains(columns) else { throw ValidationError("--columns must be in 1...50, got \(columns)") }
        }

        func run() throws {
            let world = ShapesWorld(ShapesWorld.Configuration(seed: dataSeed, count: start + count))
            let sheet = ContactSheet.render(world: world, indices: Array(start..<(start + count)), imageSize: imageSize, scale: scale, columns: columns)
            try PNGWriter.write(sheet, to: out)
            print("wrote \(out) (\(sheet.width)×\(sheet.height), samples \(start)…\(start + count - 1))")
        }
    }
}
