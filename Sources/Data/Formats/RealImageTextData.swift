// A user's image–text pairs as a numbered dataset: WebDataset tar shards (`wds:PATTERN`) or a
// CSV/TSV table of image paths and captions (`csv:FILE`). Opening one indexes every shard (headers
// only), reads every caption and decodes every image once, so that whatever cannot be used is
// found before training starts: by the bad-sample policy it is skipped and counted per reason,
// or it stops the run with an error naming the shard or file, the member or line, and the
// reason. Training then reads samples at random with pread, decodes them on the loading threads,
// and applies OpenCLIP's random-resized crop (training) or resize + centre crop (evaluation).
//
// Every rank of a data-parallel run indexes every shard: ranks take their share of each global
// batch from one numbering of the samples, as with the shapes world, so K ranks train exactly as
// one process does. (`ShardPattern.shards(forRank:worldSize:)` and `ShuffleBuffer` serve
// streaming readers, which would give that up.)

import Compute
import Foundation

/// What happens to a sample that cannot be used (a damaged tar member, an image that does not
/// decode, a missing or empty or non-UTF-8 caption, a missing image file).
public enum BadSamplePolicy: String, Sendable, Codable, CaseIterable {
    /// Left out and counted per reason (the default).
    case skip
    /// Stops with an error naming where and why.
    case fail
}

/// Why a sample was left out; the raw values name the metrics.csv columns (`skipped_<reason>`).
public enum SkipReason: String, Sendable, Codable, CaseIterable, Comparable {
    /// A tar member that could not be read (truncated, bad header checksum, …), or a CSV row
    /// that does not parse.
    case unreadable
    /// No image member (no .jpg, .jpeg or .png) in a WebDataset sample, or a CSV row whose image
    /// file does not exist.
    case missingImage = "missing_image"
    /// An image that does not decode.
    case badImage = "bad_image"
    /// No caption member (.txt, or .json with a "caption" field).
    case missingCaption = "missing_caption"
    /// A caption that is empty, only whitespace, or not UTF-8.
    case badCaption = "bad_caption"

    public static func < (a: SkipReason, b: SkipReason) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A sample that could not be used, with where and why.
public struct BadSampleError: Error, CustomStringConvertible, Sendable {
    public let reason: SkipReason
    /// The shard and member, or the CSV file and line, or the image file.
    public let location: String
    public let problem: String
    public var description: String { "\(location): \(problem) (\(reason.rawValue); --bad-sample skip leaves such samples out)" }
}

/// Where a user's data set is and how to read it.
public enum RealDataSource: Sendable, Hashable {
    /// WebDataset shards: a brace pattern (`data/train-{000000..000009}.tar`, `::` between patterns).
    case webDataset(pattern: String)
    /// A CSV/TSV table with an image-path column and a caption column.
    case csv(path: String, options: CSVOptions)
}

/// A user's image–text pairs, checked and numbered (see the file comment).
public final class RealImageTextData: ImageTextDataset, @unchecked Sendable {
    /// Where an image is: a member of an indexed shard, or a file.
    enum ImageLocation: Sendable {
        case member(shard: Int, TarIndex.Member, key: String)
        case file(String)
    }

    public let source: RealDataSource
    public let policy: BadSamplePolicy
    let shards: [TarIndex]
    let images: [ImageLocation]
    let captions: [String]
    /// Each sample's class index for zero-shot evaluation: a WebDataset sample's `.cls` member
    /// (an integer as text), nil where there is none (and for CSV tables).
    public let labels: [Int?]
    /// Samples left out, per reason (empty with `.fail`, which throws instead).
    public let skipped: [SkipReason: Int]
    /// The first few skipped samples' messages, for the log.
    public let skippedExamples: [String]
    /// The training transform.
    public let crop: RandomResizedCrop

    /// Image members WebDataset samples may carry, in order of preference.
    public static let imageExtensions = ["jpg", "jpeg", "png"]

    /// Opens, indexes and checks the data set (see the file comment). `progress(done, total)` is
    /// called now and then while the images are checked.
    public init(
        _ source: RealDataSource, policy: BadSamplePolicy = .skip, crop: RandomResizedCrop = RandomResizedCrop(),
        progress: ((Int, Int) -> Void)? = nil
    ) throws {
        self.source = source
        self.policy = policy
        self.crop = crop
        var skipped: [SkipReason: Int] = [:]
        var examples: [String] = []
        func skip(_ error: BadSampleError) throws {
            if policy == .fail { throw error }
            skipped[error.reason, default: 0] += 1
            if examples.count < 10 { examples.append(error.description) }
        }
        var candidates: [(ImageLocation, String, Int?)] = []
        var shards: [TarIndex] = []
        switch source {
        case .webDataset(let pattern):
            let names: [String]
            do { names = try ShardPattern(pattern).shards } catch {
                throw BadSampleError(reason: .unreadable, location: "wds:\(pattern)", problem: "\(error)")
            }
            for name in names {
                guard FileManager.default.fileExists(atPath: name) else {
                    throw BadSampleError(reason: .unreadable, location: name, problem: "no such shard (from the pattern \(pattern))")
                }
                let index: TarIndex
                do { index = try TarIndex(path: name, skipDamage: policy == .skip) } catch {
                    throw BadSampleError(reason: .unreadable, location: name, problem: "\(error)")
                }
                // Damage the index stepped over: members lost (counted once per damaged spot).
                for damage in index.damage {
                    try skip(BadSampleError(reason: .unreadable, location: name, problem: "\(damage)"))
                }
                let shard = shards.count
                shards.append(index)
                for sample in index.samples {
                    let where_ = "\(name): sample \"\(sample.key)\""
                    let byExt = Dictionary(sample.members.map { ($0.ext, $0) }, uniquingKeysWith: { a, _ in a })
                    guard let image = Self.imageExtensions.lazy.compactMap({ byExt[$0] }).first else {
                        let has = sample.members.map { "." + $0.ext }.joined(separator: ", ")
                        try skip(BadSampleError(reason: .missingImage, location: where_, problem: "no .jpg, .jpeg or .png member (it has \(has))"))
                        continue
                    }
                    let captionBytes: [UInt8]
                    var fromJSON = false
                    if let txt = byExt["txt"] {
                        captionBytes = try Self.read(index, txt)
                    } else if let json = byExt["json"] {
                        fromJSON = true
                        captionBytes = try Self.read(index, json)
                    } else {
                        try skip(BadSampleError(reason: .missingCaption, location: where_, problem: "no .txt member (nor a .json with a \"caption\")"))
                        continue
                    }
                    switch Self.caption(captionBytes, json: fromJSON) {
                    case .success(let text):
                        let label = try byExt["cls"].flatMap { member -> Int? in
                            Int(String(decoding: try Self.read(index, member), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
                        }
                        candidates.append((.member(shard: shard, image, key: sample.key), text, label))
                    case .failure(let problem):
                        try skip(BadSampleError(reason: fromJSON && problem.missing ? .missingCaption : .badCaption,
                                                location: where_ + ", member \".\(fromJSON ? "json" : "txt")\"", problem: problem.text))
                    }
                }
            }
        case .csv(let path, let options):
            let table: CSVTable
            do { table = try CSVTable(path: path, options: options) } catch {
                throw BadSampleError(reason: .unreadable, location: path, problem: error.problem)
            }
            while true {
                let row: CSVRow?
                do { row = try table.next() } catch {
                    guard error.canSkipRow else { throw BadSampleError(reason: .unreadable, location: path, problem: "\(error)") }
                    try skip(BadSampleError(reason: .unreadable, location: "\(path), line \(error.line ?? 0)", problem: error.problem))
                    continue
                }
                guard let row else { break }
                switch row {
                case .bad(let bad):
                    let reason: SkipReason = bad.reason.contains("caption") ? .badCaption : .unreadable
                    try skip(BadSampleError(reason: reason, location: "\(path), line \(bad.line)", problem: bad.reason))
                case .sample(let sample):
                    // The table has resolved the path already (beside the CSV or from the working directory).
                    let file = sample.imagePath
                    guard FileManager.default.fileExists(atPath: file) else {
                        try skip(BadSampleError(reason: .missingImage, location: "\(path), line \(sample.line)",
                                                problem: "the image \(file) does not exist"))
                        continue
                    }
                    candidates.append((.file(file), sample.caption, nil))
                }
            }
        }
        self.shards = shards
        // Decode every image once, on the threads: what does not decode is left out now, not
        // found in the middle of training.
        let total = candidates.count
        var failure = [String?](repeating: nil, count: total)
        let chunk = 256
        var done = 0
        while done < total {
            let n = min(chunk, total - done)
            let start = done
            let shardsCopy = shards
            failure.withUnsafeMutableBufferPointer { out in
                let base = UncheckedSendable(out.baseAddress!)
                Threads.parallelFor(n, grain: 8) { range in
                    for k in range {
                        let i = start + k
                        do { _ = try Self.decode(candidates[i].0, shards: shardsCopy) } catch { base.value[i] = "\(error)" }
                    }
                }
            }
            done += n
            progress?(done, total)
        }
        var images: [ImageLocation] = []
        var captions: [String] = []
        var labels: [Int?] = []
        images.reserveCapacity(total)
        captions.reserveCapacity(total)
        for (i, candidate) in candidates.enumerated() {
            if let problem = failure[i] {
                try skip(BadSampleError(reason: .badImage, location: Self.describe(candidate.0, shards: shards), problem: problem))
            } else {
                images.append(candidate.0)
                captions.append(candidate.1)
                labels.append(candidate.2)
            }
        }
        self.images = images
        self.captions = captions
        self.labels = labels
        self.skipped = skipped
        skippedExamples = examples
    }

    public var count: Int { images.count }
    public func caption(_ index: Int) -> String { captions[index] }

    /// Shards (WebDataset) or 1 (CSV).
    public var shardCount: Int { shards.isEmpty ? 1 : shards.count }
    /// All samples left out.
    public var skippedTotal: Int { skipped.values.reduce(0, +) }

    /// Evaluation transform: resize the shorter side to `size` (bicubic), centre crop.
    public func loadImage(_ index: Int, size: Int, into pixels: UnsafeMutablePointer<Float>) throws {
        preprocess(try Self.decode(images[index], shards: shards), size: size, into: pixels)
    }

    /// Training transform: a random-resized crop drawn from (seed, epoch, index), resized to size×size.
    public func loadTrainingImage(_ index: Int, size: Int, seed: UInt64, epoch: Int, into pixels: UnsafeMutablePointer<Float>) throws {
        let image = try Self.decode(images[index], shards: shards)
        let rng = CounterRNG(seed: seed, streamNamed: "random-resized-crop")
        let box = crop.box(width: image.width, height: image.height, rng: rng, counter: UInt64(epoch) << 40 | UInt64(index))
        preprocessCrop(image, box: box, size: size, into: pixels)
    }

    /// Where image `index` is, for messages.
    public func location(_ index: Int) -> String { Self.describe(images[index], shards: shards) }

    // MARK: - Helpers

    static func read(_ index: TarIndex, _ member: TarIndex.Member) throws -> [UInt8] {
        do { return try index.bytes(of: member) } catch {
            throw BadSampleError(reason: .unreadable, location: "\(index.path): member \"\(member.name)\"", problem: "\(error)")
        }
    }

    static func describe(_ location: ImageLocation, shards: [TarIndex]) -> String {
        switch location {
        case .member(let shard, let member, _): "\(shards[shard].path): member \"\(member.name)\" at byte \(member.offset)"
        case .file(let path): path
        }
    }

    static func decode(_ location: ImageLocation, shards: [TarIndex]) throws -> RGBImage {
        switch location {
        case .member(let shard, let member, _):
            let bytes: [UInt8]
            do { bytes = try shards[shard].bytes(of: member) } catch {
                throw BadSampleError(reason: .unreadable, location: describe(location, shards: shards), problem: "\(error)")
            }
            return try ImageDecoder.decode(bytes, name: describe(location, shards: shards))
        case .file(let path):
            return try ImageDecoder.decode(path: path)
        }
    }

    struct CaptionProblem: Error {
        let text: String
        let missing: Bool
    }

    /// The caption in a .txt member (UTF-8, trimmed of surrounding whitespace) or a .json
    /// member's "caption" string.
    static func caption(_ bytes: [UInt8], json: Bool) -> Result<String, CaptionProblem> {
        var text: String
        if json {
            guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
                return .failure(CaptionProblem(text: "the .json member is not a JSON object", missing: true))
            }
            guard let caption = object["caption"] as? String else {
                return .failure(CaptionProblem(text: "the .json member has no \"caption\" string (and there is no .txt member)", missing: true))
            }
            text = caption
        } else {
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                let at = CSVTable.firstInvalidUTF8(bytes) ?? 0
                return .failure(CaptionProblem(
                    text: "the caption is not valid UTF-8 (byte \(CSVTable.hex(bytes[min(at, bytes.count - 1)])) at offset \(at))", missing: false))
            }
            text = decoded
        }
        text = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if text.isEmpty { return .failure(CaptionProblem(text: "the caption is empty", missing: false)) }
        return .success(text)
    }
}
