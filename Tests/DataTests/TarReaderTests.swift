// Tests of the tar and WebDataset readers against archives Python wrote (Fixtures/tar, made by
// make_fixtures.py there): every header form, the damaged archives and their errors, sample
// grouping by key, and the header-only index.

import Data
import Foundation
import Testing

/// The path of a tar fixture.
func tarFixture(_ name: String) throws -> String {
    let url = try #require(Bundle.module.url(forResource: name, withExtension: "tar", subdirectory: "Fixtures/tar"))
    return url.path
}

/// The bytes of `text`.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Members as (name, size, header offset, data offset, data) for comparisons.
func summary(_ members: [TarMember]) -> [String] {
    members.map { "\($0.name) size=\($0.size) header=\($0.headerOffset) data=\($0.dataOffset) \(String(decoding: $0.bytes, as: UTF8.self).debugDescription)" }
}

/// The members `reader` gives before nil, and the errors met on the way (reading goes on after
/// each, as `next()` allows).
func drain(_ reader: TarReader) -> (members: [TarMember], errors: [TarError]) {
    var members: [TarMember] = []
    var errors: [TarError] = []
    while true {
        do {
            guard let member = try reader.next() else { break }
            members.append(member)
        } catch {
            errors.append(error)
        }
        if errors.count > 10 { break }  // a reader that never ends would fail here, not hang
    }
    return (members, errors)
}

let longGNUName = "gnu/" + String(repeating: "long-directory-name-", count: 4) + "/member-with-a-name-over-100-characters.txt"
let longPAXName = "pax/" + String(repeating: "deeply-nested-folder-", count: 5) + "/caption.txt"
let prefixName = "ustar/" + String(repeating: "p", count: 70) + "/" + String(repeating: "q", count: 60) + "/000042.txt"

@Suite("Tar reader")
struct TarReaderTests {
    @Test("GNU: a long name from an 'L' header; 'K' link name, symlink and directory skipped")
    func gnuLongName() throws {
        let path = try tarFixture("gnu-longname")
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(raw[1536 + 156] == UInt8(ascii: "L") && raw[3584 + 156] == UInt8(ascii: "K"))
        #expect(longGNUName.utf8.count > 100)
        let members = try TarReader(path: path).readAll()
        #expect(summary(members) == [
            "gnu/first.txt size=13 header=512 data=1024 \"first member\\n\"",
            "\(longGNUName) size=14 header=1536 data=3072 \"long GNU name\\n\"",
            "gnu/last.txt size=5 header=5120 data=5632 \"last\\n\"",
        ])
    }

    @Test("PAX: global header skipped, an 'x' header before each float-mtime member, long and UTF-8 paths")
    func paxFloatMtime() throws {
        let path = try tarFixture("pax-float-mtime")
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(raw[156] == UInt8(ascii: "g") && raw[1024 + 156] == UInt8(ascii: "x"))
        let members = try TarReader(path: path).readAll()
        #expect(summary(members) == [
            "pax/a.txt size=6 header=1024 data=2560 \"alpha\\n\"",
            "\(longPAXName) size=16 header=3072 data=4608 \"a long PAX path\\n\"",
            "pax/café.txt size=6 header=5120 data=6656 \"café\\n\"",
            "pax/int-mtime.txt size=19 header=7168 data=7680 \"no extended header\\n\"",
        ])
        #expect(members[2].bytes == [0x63, 0x61, 0x66, 0xC3, 0xA9, 0x0A])
    }

    @Test("ustar: the prefix field joined to the name")
    func ustarPrefix() throws {
        let path = try tarFixture("ustar-prefix")
        let raw = try Data(contentsOf: URL(fileURLWithPath: path))
        let prefixField = String(decoding: raw[345..<500].prefix { $0 != 0 }, as: UTF8.self)
        let nameField = String(decoding: raw[0..<100].prefix { $0 != 0 }, as: UTF8.self)
        #expect(prefixField + "/" + nameField == prefixName)
        #expect(!prefixField.isEmpty)
        let members = try TarReader(path: path).readAll()
        #expect(summary(members) == [
            "\(prefixName) size=14 header=0 data=512 \"prefix joined\\n\"",
            "ustar/short.txt size=6 header=1024 data=1536 \"short\\n\"",
        ])
    }

    @Test("v7 headers, base-256 size, signed checksum, PAX size override, global path, no end blocks")
    func headerForms() throws {
        let v7 = try tarFixture("v7")
        let raw = try Data(contentsOf: URL(fileURLWithPath: v7))
        #expect(raw[257..<512].allSatisfy { $0 == 0 } && raw[156] == 0)
        #expect(summary(try TarReader(path: v7).readAll()) == ["v7/old.txt size=10 header=512 data=1024 \"version 7\\n\""])

        let base256 = try tarFixture("base256-size")
        #expect(try Data(contentsOf: URL(fileURLWithPath: base256))[124] == 0x80)
        #expect(summary(try TarReader(path: base256).readAll()) == ["b/binary-size.txt size=14 header=0 data=512 \"base-256 size\\n\""])

        #expect(summary(try TarReader(path: try tarFixture("signed-checksum")).readAll())
                == ["s/über.txt size=11 header=0 data=512 \"signed sum\\n\""])

        #expect(summary(try TarReader(path: try tarFixture("pax-size")).readAll()) == [
            "x/sized.txt size=11 header=0 data=1536 \"eleven byte\"",
            "x/after.txt size=6 header=2048 data=2560 \"after\\n\"",
        ])

        #expect(summary(try TarReader(path: try tarFixture("pax-global")).readAll()) == [
            "g/global-path.txt size=4 header=1024 data=1536 \"one\\n\"",
            "g/own-path.txt size=4 header=2048 data=3584 \"two\\n\"",
        ])

        let noEnd = try tarFixture("no-end-blocks")
        #expect(try Data(contentsOf: URL(fileURLWithPath: noEnd)).count == 1024)
        #expect(summary(try TarReader(path: noEnd).readAll()) == ["n/only.txt size=14 header=0 data=512 \"no end blocks\\n\""])
    }

    @Test("Any chunk size reads the same members")
    func chunkSizes() throws {
        for name in ["pax-float-mtime", "gnu-longname", "webdataset-shard"] {
            let path = try tarFixture(name)
            let reference = try TarReader(path: path).readAll()
            #expect(!reference.isEmpty)
            for chunk in [1, 3, 511, 512, 513, 4096] {
                #expect(try TarReader(path: path, chunkSize: chunk).readAll() == reference, "\(name), chunk \(chunk)")
            }
        }
    }

    @Test("Final member truncated: the members before it, then .truncatedData ending the shard")
    func truncatedMember() throws {
        let path = try tarFixture("truncated")
        let reader = try TarReader(path: path)
        let first = try #require(try reader.next())
        #expect(first.name == "t/000000.txt" && first.bytes == bytes("complete\n"))
        let error = try #require(#expect(throws: TarError.self) { _ = try reader.next() })
        #expect(error.kind == .truncatedData)
        #expect(error.member == "t/000001.bin" && error.offset == 1024 && error.shard == path)
        #expect(error.continuation == .endOfShard && !error.canSkipMember)
        #expect(error.description == "\(path): member \"t/000001.bin\" at byte 1024: truncated data: 1000 bytes of data declared at byte 1536, the file ends after 300 of them; the shard ends here")
        #expect(try reader.next() == nil)
    }

    @Test("A file cut inside a header: .truncatedHeader after the whole members")
    func truncatedHeader() throws {
        let folder = try temporaryFolder()
        let whole = try Data(contentsOf: URL(fileURLWithPath: try tarFixture("ustar-prefix")))
        let path = folder + "/cut-header.tar"
        try whole.prefix(1024 + 100).write(to: URL(fileURLWithPath: path))
        let (members, errors) = drain(try TarReader(path: path))
        #expect(members.map(\.name) == [prefixName])
        #expect(errors.count == 1)
        #expect(errors.first?.kind == .truncatedHeader && errors.first?.offset == 1024)
        #expect(errors.first?.continuation == .endOfShard && errors.first?.member == nil)
    }

    @Test("Bad checksum: the members before it, then .badChecksum losing the rest of the shard")
    func badChecksum() throws {
        let path = try tarFixture("bad-checksum")
        let (members, errors) = drain(try TarReader(path: path))
        #expect(summary(members) == ["c/000000.txt size=5 header=0 data=512 \"zero\\n\""])
        let error = try #require(errors.first)
        #expect(errors.count == 1)
        #expect(error.kind == .badChecksum && error.offset == 1024 && error.member == nil)
        #expect(error.continuation == .restOfShardLost)
        #expect(error.reason.contains("its name field reads \"C/000001.txt\""))
        #expect(error.description.hasSuffix("so where the next member starts is unknown; the rest of the shard is lost"))
    }

    @Test("Bad octal size field and gzip input are named as such")
    func badNumberAndGzip() throws {
        let folder = try temporaryFolder()
        var block = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try tarFixture("no-end-blocks"))))
        block.replaceSubrange(124..<136, with: bytes("00000000x14\0"))
        var sum = 0
        for (i, byte) in block[0..<512].enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        block.replaceSubrange(148..<156, with: bytes(String(sum, radix: 8).leftPadded(6) + "\0 "))
        let badSize = folder + "/bad-size.tar"
        try Data(block).write(to: URL(fileURLWithPath: badSize))
        let error = try #require(#expect(throws: TarError.self) { _ = try TarReader(path: badSize).next() })
        #expect(error.kind == .badNumber && error.offset == 0 && error.continuation == .restOfShardLost)
        #expect(error.reason.contains("the size field (bytes 124..<136 of the header) reads \"00000000x14\\x0\""))

        let gzip = folder + "/shard.tar.gz"
        try Data([0x1F, 0x8B, 0x08, 0x00] + [UInt8](repeating: 7, count: 600)).write(to: URL(fileURLWithPath: gzip))
        let gzipError = try #require(#expect(throws: TarError.self) { _ = try TarReader(path: gzip).next() })
        #expect(gzipError.kind == .badChecksum && gzipError.reason.contains("gzip-compressed"))

        let missing = try #require(#expect(throws: TarError.self) { _ = try TarReader(path: folder + "/none.tar") })
        #expect(missing.kind == .io && missing.description.contains("none.tar") && missing.reason.contains("cannot open"))
    }

    @Test("Skippable member errors: too large, sparse; reading continues after them")
    func skippableErrors() throws {
        let (members, errors) = drain(try TarReader(path: try tarFixture("gnu-longname"), maximumMemberSize: 13))
        #expect(members.map(\.name) == ["gnu/first.txt", "gnu/last.txt"])
        #expect(errors.map(\.kind) == [.memberTooLarge])
        #expect(errors.first?.member == longGNUName && errors.first?.offset == 1536 && errors.first?.canSkipMember == true)

        let (sparseMembers, sparseErrors) = drain(try TarReader(path: try tarFixture("sparse")))
        #expect(summary(sparseMembers) == [
            "s/0.txt size=7 header=0 data=512 \"before\\n\"",
            "s/2.txt size=6 header=2048 data=2560 \"after\\n\"",
        ])
        #expect(sparseErrors.map(\.kind) == [.unsupportedMember])
        #expect(sparseErrors.first?.member == "s/1.txt" && sparseErrors.first?.continuation == .nextMember)
    }
}

@Suite("WebDataset samples and tar index")
struct WebDatasetTests {
    let captions = ["a red square", "two blue circles", "café au lait", "a grey cat"]

    @Test("Key and extension split as webdataset does")
    func keySplit() {
        #expect(WebDatasetSamples.split(memberName: "a/b/000001.seg.png")! == ("a/b/000001", "seg.png"))
        #expect(WebDatasetSamples.split(memberName: "000001.JPG")! == ("000001", "jpg"))
        #expect(WebDatasetSamples.split(memberName: "x.y/000002.txt")! == ("x.y/000002", "txt"))
        #expect(WebDatasetSamples.split(memberName: "README") == nil)
        #expect(WebDatasetSamples.split(memberName: "a/.hidden.txt") == nil)
        #expect(WebDatasetSamples.split(memberName: "x.y/noext") == nil)
        #expect(WebDatasetSamples.isMetadata(memberName: "__key__"))
        #expect(WebDatasetSamples.isMetadata(memberName: "__cache__/000001.txt"))
        #expect(!WebDatasetSamples.isMetadata(memberName: "__meta__.json"))
        #expect(!WebDatasetSamples.isMetadata(memberName: "___"))
    }

    @Test("A shard written by webdataset.TarWriter")
    func webdatasetShard() throws {
        let path = try tarFixture("webdataset-shard")
        let jpeg = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try fixture("rgb.jpg"))))
        let samples = try WebDatasetSamples(path: path).readAll()
        #expect(samples.map(\.key) == ["sample000000", "sample000001", "sample000002", "sample000003"])
        for (i, sample) in samples.enumerated() {
            #expect(sample.extensions == ["cls", "jpg", "json", "txt"])
            #expect(sample["txt"] == bytes(captions[i]))
            #expect(sample["cls"] == bytes(String(i % 3)))
            #expect(sample["jpg"] == jpeg)
            #expect(sample.shard == path)
        }
        #expect(samples[0]["json"] == bytes("{\"index\": 0, \"caption\": \"a red square\"}"))
        #expect(samples[2]["json"] == bytes("{\"index\": 2, \"caption\": \"caf\\u00e9 au lait\"}"))
        #expect(samples[0].offsets == ["cls": 512, "jpg": 1536, "json": 2560, "txt": 3584])
        #expect(samples[3].offsets["txt"] == 15872)
        #expect(samples[1].location("jpg") == "\(path): sample \"sample000001\", member \"sample000001.jpg\" at byte 5632")
    }

    @Test("Grouping: keys with folders, metadata and keyless members skipped, a key that comes back")
    func grouping() throws {
        let reader = try WebDatasetSamples(path: try tarFixture("keys"))
        let samples = try reader.readAll()
        #expect(samples.map(\.key) == ["a/b/000001", "x.y/000002", "a/b/000001"])
        #expect(samples[0].files == ["seg.png": bytes("segmentation\n"), "jpg": bytes("image\n"), "txt": bytes("caption one\n")])
        #expect(samples[1].files == ["txt": bytes("caption two\n"), "cls": bytes("7")])
        #expect(samples[2].files == ["json": bytes("{}")])
        #expect(reader.skippedMembers == 3)
    }

    @Test("Damage: a duplicate extension drops its sample; a truncated member drops its own; a bad checksum drops the one in progress")
    func damage() throws {
        let duplicate = try WebDatasetSamples(path: try tarFixture("duplicate"))
        #expect(try duplicate.next()?.key == "k/0")
        let error = try #require(#expect(throws: TarError.self) { _ = try duplicate.next() })
        #expect(error.kind == .duplicateExtension && error.member == "k/1.txt" && error.offset == 3072)
        #expect(error.canSkipMember && error.reason.contains("sample \"k/1\" is dropped"))
        let next = try #require(try duplicate.next())
        #expect(next.key == "k/2" && next.files == ["txt": bytes("two\n")])
        #expect(try duplicate.next() == nil)

        let truncated = try WebDatasetSamples(path: try tarFixture("truncated"))
        #expect(try truncated.next()?.files == ["txt": bytes("complete\n")])
        let cut = try #require(#expect(throws: TarError.self) { _ = try truncated.next() })
        #expect(cut.kind == .truncatedData && cut.reason.hasSuffix("sample \"t/000001\" is dropped"))
        #expect(try truncated.next() == nil)

        let checksum = try WebDatasetSamples(path: try tarFixture("bad-checksum"))
        let lost = try #require(#expect(throws: TarError.self) { _ = try checksum.next() })
        #expect(lost.kind == .badChecksum && lost.reason.contains("sample \"c/000000\", in progress, may be incomplete and is dropped"))
        #expect(try checksum.next() == nil)
    }

    @Test("TarIndex: keys, offsets and sizes from headers; samples read by number equal the streamed ones")
    func index() throws {
        let path = try tarFixture("webdataset-shard")
        let index = try TarIndex(path: path)
        #expect(index.count == 4 && index.damage.isEmpty)
        let second = index.samples[1]
        #expect(second.key == "sample000001")
        #expect(second.members.map(\.ext) == ["cls", "jpg", "json", "txt"])
        #expect(second.members.map(\.offset) == [4608, 5632, 6656, 7680])
        #expect(second.members.map(\.size) == [1, 304, 43, 16])
        #expect(second.members.map(\.name) == ["sample000001.cls", "sample000001.jpg", "sample000001.json", "sample000001.txt"])
        let streamed = try WebDatasetSamples(path: path).readAll()
        for i in [3, 0, 2, 1] { #expect(try index.sample(i) == streamed[i]) }

        let keys = try TarIndex(path: try tarFixture("keys"))
        #expect(keys.samples.map(\.key) == ["a/b/000001", "x.y/000002", "a/b/000001"])
        #expect(keys.skippedMembers == 3)
        #expect(try keys.sample(1).files == ["txt": bytes("caption two\n"), "cls": bytes("7")])
    }

    @Test("A 4 GiB member: indexed from its header, skipped by the reader, its data never read")
    func hugeMember() throws {
        var header = [UInt8](try Data(contentsOf: URL(fileURLWithPath: try tarFixture("no-end-blocks"))).prefix(512))
        let size = 1 << 32
        header.replaceSubrange(124..<136, with: bytes(String(size, radix: 8).leftPadded(11) + "\0"))
        var sum = 0
        for (i, byte) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(byte) }
        header.replaceSubrange(148..<156, with: bytes(String(sum, radix: 8).leftPadded(6) + "\0 "))
        let path = try temporaryFolder() + "/huge.tar"
        try Data(header).write(to: URL(fileURLWithPath: path))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(512 + size + 1024))  // a sparse file: the data and end blocks are holes
        try handle.close()
        defer { try? FileManager.default.removeItem(atPath: path) }

        let index = try TarIndex(path: path)
        #expect(index.samples == [TarIndex.Sample(key: "n/only", members: [
            TarIndex.Member(name: "n/only.txt", ext: "txt", offset: 512, size: size),
        ])])
        let (members, errors) = drain(try TarReader(path: path))
        #expect(members.isEmpty)
        #expect(errors.map(\.kind) == [.memberTooLarge] && errors.first?.member == "n/only.txt")
    }

    @Test("TarIndex on damaged shards: throws, or with skipDamage keeps the whole samples")
    func indexDamage() throws {
        let truncated = try tarFixture("truncated")
        let error = try #require(#expect(throws: TarError.self) { _ = try TarIndex(path: truncated) })
        #expect(error.kind == .truncatedData && error.member == "t/000001.bin" && error.offset == 1024)
        #expect(error.reason.contains("1000 bytes of data declared at byte 1536, the file ends after 300 of them"))
        let lenient = try TarIndex(path: truncated, skipDamage: true)
        #expect(lenient.samples.map(\.key) == ["t/000000"] && lenient.damage.map(\.kind) == [.truncatedData])
        #expect(try lenient.sample(0).files == ["txt": bytes("complete\n")])

        let duplicate = try TarIndex(path: try tarFixture("duplicate"), skipDamage: true)
        #expect(duplicate.samples.map(\.key) == ["k/0", "k/2"] && duplicate.damage.map(\.kind) == [.duplicateExtension])

        let sparse = try TarIndex(path: try tarFixture("sparse"), skipDamage: true)
        #expect(sparse.samples.map(\.key) == ["s/0", "s/2"] && sparse.damage.map(\.kind) == [.unsupportedMember])

        let checksum = try TarIndex(path: try tarFixture("bad-checksum"), skipDamage: true)
        #expect(checksum.samples.isEmpty && checksum.damage.map(\.kind) == [.badChecksum])
    }
}

extension String {
    /// The string with zeros in front up to `width` characters.
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
