// The common output of `clip data import`: image–caption pairs from a package's pictures, written
// as WebDataset shards and as an OpenCLIP-style TSV with image files, split into train and val by a
// hash of each sample's key, with the zero-shot label set (classes.json) and a manifest of what was
// imported and what was skipped (import.json).
//
// Layout of an imported folder:
//   train-000000.tar …, val-000000.tar …   KEY.png + KEY.txt + KEY.json + KEY.cls per sample
//   train.tsv, val.tsv                     filepath<TAB>title, paths relative to the TSV
//   images/KEY.png                         the pictures the TSVs name
//   classes.json                           {"classes": [...], "templates": ["... {} ..."]}
//   sizes.json                             samples per shard, as webdataset tools write it
//   import.json                            source, counts per split and class, skips per reason

import Foundation

/// One picture and its caption, ready to be written.
public struct ImportedPair: Sendable {
    /// The WebDataset key: letters, digits, `_` and `-` only (a dot would split it).
    public var key: String
    /// The caption (the `.txt` member and the TSV's title).
    public var caption: String
    /// Index into the set's classes (the `.cls` member).
    public var classIndex: Int
    /// Extra facts about the sample, written as its `.json` member.
    public var metadata: [String: String]
    /// The picture as a PNG file, `imageSize` square.
    public var png: [UInt8]

    public init(key: String, caption: String, classIndex: Int, metadata: [String: String], png: [UInt8]) {
        self.key = key
        self.caption = caption
        self.classIndex = classIndex
        self.metadata = metadata
        self.png = png
    }
}

/// The train/val split and the pictures' common format.
public struct ImportOptions: Sendable {
    /// Side of the stored square pictures in pixels.
    public var imageSize: Int
    /// Percentage of keys (by hash) that go to the val split.
    public var valPercent: Int
    /// Samples per tar shard.
    public var shardSize: Int
    /// Parallel picture conversions (SVG rasterisation runs in child processes).
    public var jobs: Int
    /// Import at most this many samples per source (after sorting by key), for quick looks and tests.
    public var limit: Int?

    public init(imageSize: Int = 64, valPercent: Int = 20, shardSize: Int = 1000, jobs: Int = 2, limit: Int? = nil) {
        self.imageSize = imageSize
        self.valPercent = valPercent
        self.shardSize = shardSize
        self.jobs = jobs
        self.limit = limit
    }
}

/// What an import wrote.
public struct ImportSummary: Codable, Sendable {
    /// The importer's name (emoji, tuxpaint, openclipart) and style, if any.
    public var source: String
    /// Where the pictures and captions came from.
    public var inputs: [String]
    public var imageSize: Int
    public var valPercent: Int
    public var classes: [String]
    /// Samples per split.
    public var train: Int
    public var val: Int
    /// Samples per class index and split.
    public var trainPerClass: [Int]
    public var valPerClass: [Int]
    /// Candidates left out, per reason.
    public var skipped: [String: Int]
    /// The shard files per split.
    public var trainShards: [String]
    public var valShards: [String]

    /// `--data` argument for a split's shards (a brace pattern) in `folder`.
    public func pattern(_ split: String, in folder: String) -> String {
        let shards = split == "train" ? trainShards : valShards
        guard shards.count > 1 else { return "wds:\(folder)/\(shards.first ?? "\(split)-000000.tar")" }
        return "wds:\(folder)/\(split)-{000000..\(String(format: "%06d", shards.count - 1))}.tar"
    }
}

/// The split a key falls in: val when FNV-1a(key) mod 100 < `valPercent`. The same key (for
/// example one emoji in two art styles) always falls in the same split.
public func importSplit(key: String, valPercent: Int) -> String {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in key.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01B3
    }
    return Int(h % 100) < valPercent ? "val" : "train"
}

/// `text` reduced to a WebDataset key: runs of anything but letters, digits, `_` and `-` become `_`.
public func importKey(_ text: String) -> String {
    var out = ""
    var lastUnderscore = false
    for scalar in text.unicodeScalars {
        let ok = scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "_")
        if ok {
            out.unicodeScalars.append(scalar)
            lastUnderscore = scalar == "_"
        } else if !lastUnderscore {
            out += "_"
            lastUnderscore = true
        }
    }
    return out
}

/// A square `size`×`size` picture of `image`: padded to a square on white (centred), then resized
/// with the bicubic, antialiased filter of the evaluation transform.
public func squarePicture(_ image: RGBImage, size: Int) -> RGBImage {
    var padded = image
    if image.width != image.height {
        let side = max(image.width, image.height)
        padded = RGBImage(width: side, height: side)
        let x0 = (side - image.width) / 2, y0 = (side - image.height) / 2
        image.pixels.withUnsafeBufferPointer { src in
            padded.pixels.withUnsafeMutableBufferPointer { dst in
                for y in 0..<image.height {
                    let from = src.baseAddress! + 3 * y * image.width
                    let to = dst.baseAddress! + 3 * ((y0 + y) * side + x0)
                    to.update(from: from, count: 3 * image.width)
                }
            }
        }
    }
    if padded.width == size { return padded }
    var planes = [Float](repeating: 0, count: 3 * size * size)
    planes.withUnsafeMutableBufferPointer { preprocess(padded, size: size, into: $0.baseAddress!) }
    return RGBImage(planes: planes, width: size, height: size)
}

/// Converts candidates to pairs on `jobs` threads, keeping their order; a candidate whose
/// conversion throws is skipped and counted under the reason the error gives.
public func convertInParallel<Candidate: Sendable>(
    _ candidates: [Candidate], jobs: Int, label: String,
    _ convert: @Sendable (Candidate) throws -> ImportedPair
) -> (pairs: [ImportedPair], failures: [(reason: String, message: String)]) {
    let results = ConversionResults(candidates.count)
    let started = Date()
    let workers = max(1, min(jobs, candidates.count))
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
        var i = worker
        while i < candidates.count {
            let outcome: Result<ImportedPair, Error> = Result { try convert(candidates[i]) }
            results.lock.lock()
            switch outcome {
            case .success(let pair): results.pairs[i] = pair
            case .failure(let error):
                let reason = (error as? ImportError)?.reason ?? "bad_image"
                results.failures.append((i, reason, "\(error)"))
            }
            results.done += 1
            if Date().timeIntervalSince(results.lastReport) >= 5 {
                results.lastReport = Date()
                print(String(format: "  %@: %d of %d pictures (%.0f s)", label, results.done, candidates.count, Date().timeIntervalSince(started)))
            }
            results.lock.unlock()
            i += workers
        }
    }
    let failures = results.failures.sorted { $0.0 < $1.0 }.map { (reason: $0.1, message: $0.2) }
    return (results.pairs.compactMap { $0 }, failures)
}

/// The shared state of `convertInParallel`'s workers, guarded by `lock`.
private final class ConversionResults: @unchecked Sendable {
    var pairs: [ImportedPair?]
    var failures: [(Int, String, String)] = []
    var done = 0
    var lastReport = Date()
    let lock = NSLock()
    init(_ n: Int) { pairs = Array(repeating: nil, count: n) }
}

/// A candidate the importer could not use, with the reason it is counted under.
public struct ImportError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public let message: String
    public init(reason: String, _ message: String) {
        self.reason = reason
        self.message = message
    }
    public var description: String { message }
}

/// Writes `pairs` into `folder` in the layout above and returns what was written.
///
/// Pairs are sorted by key first, so the output depends only on the inputs; duplicate keys are
/// an error of the importer (it must make keys unique).
public func writeImportedSet(
    _ pairs: [ImportedPair], to folder: String, source: String, inputs: [String], classes: [String], templates: [String],
    skipped: [String: Int], options: ImportOptions
) throws -> ImportSummary {
    let fm = FileManager.default
    try fm.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
    let sorted = pairs.sorted { $0.key < $1.key }
    for (a, b) in zip(sorted, sorted.dropFirst()) where a.key == b.key {
        throw ImportError(reason: "duplicate_key", "\(source): two samples have the key '\(a.key)'")
    }
    var summary = ImportSummary(
        source: source, inputs: inputs, imageSize: options.imageSize, valPercent: options.valPercent, classes: classes,
        train: 0, val: 0, trainPerClass: Array(repeating: 0, count: classes.count),
        valPerClass: Array(repeating: 0, count: classes.count), skipped: skipped, trainShards: [], valShards: [])
    var sizes: [String: Int] = [:]
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let compact = JSONEncoder()
    compact.outputFormatting = [.sortedKeys]
    for split in ["train", "val"] {
        let members = sorted.filter { importSplit(key: $0.key, valPercent: options.valPercent) == split }
        var table = "filepath\ttitle\n"
        var shards: [String] = []
        var start = 0
        repeat {
            let chunk = members[start..<min(members.count, start + options.shardSize)]
            var tar = TarWriter()
            for pair in chunk {
                precondition((0..<classes.count).contains(pair.classIndex), "class \(pair.classIndex) of \(pair.key) out of range")
                tar.append(name: "\(pair.key).png", data: pair.png)
                tar.append(name: "\(pair.key).txt", data: Array(pair.caption.utf8))
                tar.append(name: "\(pair.key).json", data: Array(try compact.encode(pair.metadata)))
                tar.append(name: "\(pair.key).cls", data: Array("\(pair.classIndex)".utf8))
                try FileIO.writeAtomically(pair.png, to: "\(folder)/images/\(pair.key).png")
                table += "images/\(pair.key).png\t\(tsvField(pair.caption))\n"
                if split == "train" { summary.trainPerClass[pair.classIndex] += 1 } else { summary.valPerClass[pair.classIndex] += 1 }
            }
            let file = String(format: "%@-%06d.tar", split, shards.count)
            try tar.write(to: "\(folder)/\(file)")
            shards.append(file)
            sizes[file] = chunk.count
            start += options.shardSize
        } while start < members.count
        try FileIO.writeAtomically(Array(table.utf8), to: "\(folder)/\(split).tsv")
        if split == "train" {
            summary.train = members.count
            summary.trainShards = shards
        } else {
            summary.val = members.count
            summary.valShards = shards
        }
    }
    try FileIO.writeAtomically(Array(try encoder.encode(sizes)), to: "\(folder)/sizes.json")
    let classFile = ["classes": classes, "templates": templates]
    try FileIO.writeAtomically(Array(try encoder.encode(classFile)), to: "\(folder)/classes.json")
    try FileIO.writeAtomically(Array(try encoder.encode(summary)), to: "\(folder)/import.json")
    return summary
}

/// A TSV field: quoted (RFC 4180, quotes doubled) when it holds a tab, a quote or a line break.
func tsvField(_ text: String) -> String {
    guard text.contains(where: { $0 == "\t" || $0 == "\"" || $0.isNewline }) else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
}
