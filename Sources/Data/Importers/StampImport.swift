// `clip data import tuxpaint` and `clip data import openclipart`: Debian's packaged clip art as
// image–caption pairs, its top-level folder as the class.
//
// tuxpaint     tuxpaint-stamps-default: /usr/share/tuxpaint/stamps/CATEGORY/…/NAME.png|.svg, each
//              with NAME.txt whose first line is an English sentence ("A brown potato."). A stamp
//              without a .txt (the _mirror variants) is skipped; where a stamp has both a PNG and
//              an SVG, the PNG is taken.
// openclipart  openclipart-svg: /usr/share/openclipart/svg/CATEGORY/…/NAME.svg, captioned by the
//              drawing's title (its first <dc:title>). Many files carry the name of the collection
//              they came in rather than a title ("gramastar" on 1,375 stars, "Part of the Flat Icon
//              Collection (…)", "Lemon SVG theme"): a title shared by `collectionThreshold` or more
//              files, or naming a collection, theme, icon set or "clipart by" an author, is taken for
//              a collection name and the file skipped, as are files with no title.

import Foundation

/// A picture file with its caption and category, before conversion.
struct StampCandidate: Sendable {
    let key: String
    let path: String
    let caption: String
    let classIndex: Int
    let category: String
}

/// Files under `root` (recursively), as paths relative to it, sorted.
func filesUnder(_ root: String) throws -> [String] {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: root, isDirectory: &isFolder), isFolder.boolValue else {
        throw ImportError(reason: "missing_input", "\(root): no such folder")
    }
    guard let walker = FileManager.default.enumerator(atPath: root) else {
        throw ImportError(reason: "missing_input", "\(root): cannot list")
    }
    var files: [String] = []
    while let next = walker.nextObject() as? String {
        var sub: ObjCBool = false
        if FileManager.default.fileExists(atPath: "\(root)/\(next)", isDirectory: &sub), !sub.boolValue { files.append(next) }
    }
    return files.sorted()
}

/// Converts stamp candidates (PNG or SVG files) and writes the set.
func importStamps(
    _ candidates: [StampCandidate], source: String, inputs: [String], classes: [String], templates: [String],
    skipped: [String: Int], out: String, options: ImportOptions
) throws -> ImportSummary {
    // Keys reduced from paths can collide ("a.b" and "a_b"): later ones get "_2", "_3", ….
    var seen: [String: Int] = [:]
    var unique: [StampCandidate] = []
    for c in candidates.sorted(by: { ($0.key, $0.path) < ($1.key, $1.path) }) {
        seen[c.key, default: 0] += 1
        let n = seen[c.key]!
        unique.append(n == 1 ? c : StampCandidate(key: "\(c.key)_\(n)", path: c.path, caption: c.caption, classIndex: c.classIndex, category: c.category))
    }
    var chosen = unique.sorted { $0.key < $1.key }
    if let limit = options.limit { chosen = Array(chosen.prefix(limit)) }
    let needsSVG = chosen.contains { $0.path.hasSuffix(".svg") }
    let rasterizer = needsSVG ? try SVGRasterizer.find() : nil
    let size = options.imageSize
    print("\(source): \(chosen.count) pictures")
    let converted = convertInParallel(chosen, jobs: options.jobs, label: source) { c in
        let image = c.path.hasSuffix(".svg")
            ? try rasterizer!.render(path: c.path, size: size)
            : squarePicture(try ImageDecoder.decode(path: c.path), size: size)
        return ImportedPair(key: c.key, caption: c.caption, classIndex: c.classIndex,
                            metadata: ["category": c.category, "file": c.path], png: PNGWriter.encode(image))
    }
    var skipped = skipped
    for failure in converted.failures {
        skipped[failure.reason, default: 0] += 1
        print("  skipped: \(failure.message)")
    }
    return try writeImportedSet(converted.pairs, to: out, source: source, inputs: inputs, classes: classes,
                                templates: templates, skipped: skipped, options: options)
}

/// Tux Paint's default stamps.
public struct TuxPaintImporter {
    public var root: String
    public var options: ImportOptions
    public static let templates = ["a drawing of {}.", "a clip art picture of {}.", "a stamp from the {} collection."]

    public init(root: String = "/usr/share/tuxpaint/stamps", options: ImportOptions) {
        self.root = root
        self.options = options
    }

    public func run(out: String) throws -> ImportSummary {
        let files: [String]
        do { files = try filesUnder(root) } catch let error as ImportError {
            throw ImportError(reason: error.reason, "\(error.message) (Tux Paint's stamps come with Debian's tuxpaint-stamps-default package: scripts/bootstrap.sh --real-data)")
        }
        let present = Set(files)
        let categories = Array(Set(files.compactMap { $0.contains("/") ? String($0.split(separator: "/")[0]) : nil })).sorted()
        var skipped: [String: Int] = [:]
        var candidates: [StampCandidate] = []
        for file in files where file.hasSuffix(".png") || file.hasSuffix(".svg") {
            let stem = String(file.dropLast(4))
            if file.hasSuffix(".svg") && present.contains(stem + ".png") { skipped["svg_with_png", default: 0] += 1; continue }
            guard present.contains(stem + ".txt") else { skipped["no_description", default: 0] += 1; continue }
            guard file.contains("/") else { skipped["no_category", default: 0] += 1; continue }
            guard let text = try? String(contentsOfFile: "\(root)/\(stem).txt", encoding: .utf8) else {
                skipped["bad_caption", default: 0] += 1
                continue
            }
            let first = text.split(whereSeparator: \.isNewline).first.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? ""
            // The first line is English; the others are `lang.utf8=…` translations.
            guard !first.isEmpty, !first.contains(".utf8=") else { skipped["bad_caption", default: 0] += 1; continue }
            let category = String(file.split(separator: "/")[0])
            candidates.append(StampCandidate(key: importKey(stem), path: "\(root)/\(file)", caption: first,
                                             classIndex: categories.firstIndex(of: category)!, category: category))
        }
        guard !candidates.isEmpty else { throw ImportError(reason: "missing_input", "\(root): no stamps (NAME.png|svg with NAME.txt) found") }
        return try importStamps(candidates, source: "tuxpaint", inputs: [root], classes: categories.map(Self.className),
                                templates: Self.templates, skipped: skipped, out: out, options: options)
    }

    /// A category folder as a class name ("naturalforces" → "natural forces").
    static func className(_ folder: String) -> String {
        folder == "naturalforces" ? "natural forces" : folder.replacingOccurrences(of: "_", with: " ")
    }
}

/// The Open Clip Art Library's drawings as Debian packages them.
public struct OpenClipartImporter {
    public var root: String
    public var options: ImportOptions
    /// A title on this many files or more is taken for a collection's name.
    public var collectionThreshold = 4
    public static let templates = ["a drawing of {}.", "a clip art picture of {}.", "clip art in the {} category."]

    public init(root: String = "/usr/share/openclipart/svg", options: ImportOptions) {
        self.root = root
        self.options = options
    }

    /// The drawing's title: the text of the first `<dc:title>` (or `<title>`) element, entities decoded.
    public static func title(ofSVG text: String) -> String? {
        for tag in ["dc:title", "title"] {
            guard let open = text.range(of: "<\(tag)>"), let close = text.range(of: "</\(tag)>", range: open.upperBound..<text.endIndex) else { continue }
            var t = String(text[open.upperBound..<close.lowerBound])
            for (entity, character) in [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&apos;", "'"), ("&#39;", "'"), ("&amp;", "&")] {
                t = t.replacingOccurrences(of: entity, with: character)
            }
            return t.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        }
        return nil
    }

    /// Whether `title` names a collection rather than the drawing.
    public static func namesCollection(_ title: String) -> Bool {
        let t = title.lowercased()
        return ["collection", "clipart by", "cliparts", "theme", "iconset", "icon set", "icons"].contains { t.contains($0) }
    }

    /// A title as a caption: ".svg" dropped, `_` as spaces.
    static func caption(_ title: String) -> String {
        var t = title
        if t.lowercased().hasSuffix(".svg") { t = String(t.dropLast(4)) }
        return t.replacingOccurrences(of: "_", with: " ").split(separator: " ").joined(separator: " ")
    }

    public func run(out: String) throws -> ImportSummary {
        let files: [String]
        do { files = try filesUnder(root).filter { $0.hasSuffix(".svg") && $0.contains("/") } } catch let error as ImportError {
            throw ImportError(reason: error.reason, "\(error.message) (the drawings come with Debian's openclipart-svg package: scripts/bootstrap.sh --real-data)")
        }
        let categories = Array(Set(files.map { String($0.split(separator: "/")[0]) })).sorted()
        var titles: [String: String] = [:]
        var uses: [String: Int] = [:]
        var skipped: [String: Int] = [:]
        for file in files {
            // Titles sit in the metadata near the top; read the first 64 KiB.
            guard let handle = FileHandle(forReadingAtPath: "\(root)/\(file)") else { skipped["unreadable", default: 0] += 1; continue }
            let head = handle.readData(ofLength: 1 << 16)
            try? handle.close()
            guard let title = Self.title(ofSVG: String(decoding: head, as: UTF8.self)).map(Self.caption),
                  title.contains(where: \.isLetter) else {
                skipped["no_title", default: 0] += 1
                continue
            }
            titles[file] = title
            uses[title.lowercased(), default: 0] += 1
        }
        var candidates: [StampCandidate] = []
        for file in files {
            guard let title = titles[file] else { continue }
            if uses[title.lowercased(), default: 0] >= collectionThreshold || Self.namesCollection(title) {
                skipped["collection_title", default: 0] += 1
                continue
            }
            let category = String(file.split(separator: "/")[0])
            candidates.append(StampCandidate(key: importKey(String(file.dropLast(4))), path: "\(root)/\(file)", caption: title,
                                             classIndex: categories.firstIndex(of: category)!, category: category))
        }
        guard !candidates.isEmpty else { throw ImportError(reason: "missing_input", "\(root): no titled SVG drawings found") }
        return try importStamps(candidates, source: "openclipart", inputs: [root],
                                classes: categories.map { $0.replacingOccurrences(of: "_", with: " ") },
                                templates: Self.templates, skipped: skipped, out: out, options: options)
    }
}
