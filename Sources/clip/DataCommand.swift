import ArgumentParser
import Data
import Compute
import Foundation

/// `clip data …`: look at the data.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data", abstract: "Inspect, export and import datasets.", subcommands: [Preview.self, Export.self, Import.self])

    struct Preview: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write a PNG contact sheet of samples with their captions.")

        @Option(help: "shapes (the synthetic world), wds:PATTERN or csv:FILE (real image–caption data).") var data = "shapes"
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
            let sheet: RGBImage
            if data == "shapes" {
                let world = ShapesWorld(ShapesWorld.Configuration(seed: dataSeed, count: start + count))
                sheet = ContactSheet.render(world: world, indices: Array(start..<(start + count)), imageSize: imageSize, scale: scale, columns: columns)
            } else {
                // Real data: the evaluation transform's view of each picture, with its caption.
                let source: RealDataSource
                if data.hasPrefix("wds:") { source = .webDataset(pattern: String(data.dropFirst(4))) }
                else if data.hasPrefix("csv:") { source = .csv(path: String(data.dropFirst(4)), options: CSVOptions()) }
                else { throw ValidationError("--data: expected shapes, wds:PATTERN or csv:FILE, got '\(data)'") }
                let set = try RealImageTextData(source)
                guard start < set.count else { throw ValidationError("--start \(start): the data has only \(set.count) samples") }
                var planes = [Float](repeating: 0, count: 3 * imageSize * imageSize)
                let cells = try (start..<min(set.count, start + count)).map { i -> (image: RGBImage, caption: String, flag: String?) in
                    try planes.withUnsafeMutableBufferPointer { try set.loadImage(i, size: imageSize, into: $0.baseAddress!) }
                    return (RGBImage(planes: planes, width: imageSize, height: imageSize), "\(i): \(set.caption(i))", nil)
                }
                sheet = ContactSheet.render(cells: cells, scale: scale, columns: columns)
            }
            try PNGWriter.write(sheet, to: out)
            print("wrote \(out) (\(sheet.width)×\(sheet.height), samples \(start)…\(start + count - 1))")
        }
    }

    struct Export: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write the shapes world as a real data set: WebDataset tar shards or a TSV with image files.",
            discussion: """
                The images are rendered at --image-size and stored as PNG or JPEG; each sample carries its caption (.txt) and its \
                index (.json), and WebDataset samples their first object's colour as a class (.cls, indexing classes.json). Train on the result with `clip train --data wds:DIR/shapes-{000000..NNNNNN}.tar` or `--data csv:DIR/train.tsv` \
                (the command prints the exact argument).
                """)

        @Option(help: "shapes:<count> or shapes:<scale>: which pairs to write.") var data = "shapes:2048"
        @Option(help: "Seed of the synthetic data.") var dataSeed: UInt64 = 0
        @Option(help: "wds (tar shards) or csv (a TSV of image paths and captions beside an images/ folder).") var format = "wds"
        @Option(help: "png or jpg.") var imageFormat = "png"
        @Option(help: "JPEG quality (1…100).") var jpegQuality = 90
        @Option(help: "Side of the rendered images in pixels.") var imageSize = 64
        @Option(help: "Samples per tar shard.") var shardSize = 1000
        @Option(name: [.customLong("out"), .customShort("o")], help: "Folder to write into (created).") var out: String

        func validate() throws {
            guard ["wds", "csv"].contains(format) else { throw ValidationError("--format: expected wds or csv, got '\(format)'") }
            guard ["png", "jpg"].contains(imageFormat) else { throw ValidationError("--image-format: expected png or jpg, got '\(imageFormat)'") }
            guard (1...100).contains(jpegQuality) else { throw ValidationError("--jpeg-quality must be in 1...100, got \(jpegQuality)") }
            guard (8...1024).contains(imageSize) else { throw ValidationError("--image-size must be in 8...1024, got \(imageSize)") }
            guard (1...1_000_000).contains(shardSize) else { throw ValidationError("--shard-size must be in 1...1000000, got \(shardSize)") }
            let parts = data.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0] == "shapes" else { throw ValidationError("--data: expected shapes:<count> or shapes:<scale>, got '\(data)'") }
        }

        func run() throws {
            let name = String(data.split(separator: ":", maxSplits: 1)[1])
            let scales = ["cc3m-mini": 27_000, "cc12m-mini": 91_000, "laion315m-mini": 3_150_000]
            guard let count = Int(name) ?? scales[name], count >= 1 else {
                throw ValidationError("--data: unknown shapes scale '\(name)'; expected a count or cc3m-mini, cc12m-mini, laion315m-mini")
            }
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            let world = ShapesWorld(ShapesWorld.Configuration(seed: dataSeed, count: count))
            let s = imageSize
            var planes = [Float](repeating: 0, count: 3 * s * s)
            func colourClass(_ i: Int) -> Int {
                Scene.Colour.allCases.firstIndex(of: world.scene(i).objects[0].colour)!
            }
            func encoded(_ i: Int) throws -> [UInt8] {
                try planes.withUnsafeMutableBufferPointer { try world.loadImage(i, size: s, into: $0.baseAddress!) }
                let image = RGBImage(planes: planes, width: s, height: s)
                return imageFormat == "png" ? PNGWriter.encode(image) : try JPEGWriter.encode(image, quality: jpegQuality)
            }
            let started = Date()
            var lastReport = Date()
            func progress(_ done: Int) {
                if Date().timeIntervalSince(lastReport) >= 5 || done == count {
                    lastReport = Date()
                    print(String(format: "  %d of %d samples (%.0f s)", done, count, Date().timeIntervalSince(started)))
                }
            }
            if format == "wds" {
                let shards = (count + shardSize - 1) / shardSize
                var sizes: [String: Int] = [:]
                for shard in 0..<shards {
                    var tar = TarWriter()
                    let range = (shard * shardSize)..<min(count, (shard + 1) * shardSize)
                    for i in range {
                        let key = String(format: "%09d", i)
                        tar.append(name: "\(key).\(imageFormat)", data: try encoded(i))
                        tar.append(name: "\(key).txt", data: Array(world.caption(i).utf8))
                        tar.append(name: "\(key).json", data: Array("{\"index\": \(i), \"data_seed\": \(dataSeed)}".utf8))
                        tar.append(name: "\(key).cls", data: Array("\(colourClass(i))".utf8))
                    }
                    let file = String(format: "shapes-%06d.tar", shard)
                    try tar.write(to: out + "/" + file)
                    sizes[file] = range.count
                    progress(range.upperBound)
                }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                try writeAtomically(enc.encode(sizes), to: out + "/sizes.json")
                // Zero-shot labels: the first object's colour (the .cls members index these classes).
                let classes = ["classes": Scene.Colour.allCases.map(\.name), "templates": ["a picture of something {}.", "a {} shape.", "{} things."]]
                try writeAtomically(enc.encode(classes), to: out + "/classes.json")
                let last = String(format: "%06d", shards - 1)
                print("wrote \(shards) shard(s) of \(count) samples and classes.json (the first object's colour); train with --data 'wds:\(out)/shapes-{000000..\(last)}.tar'")
            } else {
                try FileManager.default.createDirectory(atPath: out + "/images", withIntermediateDirectories: true)
                var table = "filepath\ttitle\n"
                for i in 0..<count {
                    let file = String(format: "images/%09d.%@", i, imageFormat)
                    try writeAtomically(try encoded(i), to: out + "/" + file)
                    table += "\(file)\t\(world.caption(i))\n"
                    if (i + 1) % 1000 == 0 { progress(i + 1) }
                }
                try writeAtomically(table, to: out + "/train.tsv")
                progress(count)
                print("wrote \(count) images and \(out)/train.tsv; train with --data csv:\(out)/train.tsv")
            }
        }
    }
}
