// Tests of the CSV/TSV table reader: RFC 4180 quoting, line ends, the byte-order mark, column
// selection and its errors, row errors with line numbers, bad captions, and image path resolution.

import Data
import Foundation
import Testing

/// Writes `content` to `name` in a fresh folder; returns the file's path.
func csvFile(bytes content: [UInt8], name: String = "table.tsv") throws -> String {
    let path = try temporaryFolder() + "/" + name
    try Data(content).write(to: URL(fileURLWithPath: path))
    return path
}

func csvFile(_ content: String, name: String = "table.tsv") throws -> String {
    try csvFile(bytes: Array(content.utf8), name: name)
}

/// The folder of `path`.
func folderOf(_ path: String) -> String { String(path[..<path.lastIndex(of: "/")!]) }

@Suite("CSV table")
struct CSVTableTests {
    @Test("TSV by default: the filepath and title columns, lines, relative and absolute paths")
    func tsvDefaults() throws {
        let path = try csvFile("filepath\ttitle\tsize\nimg/a.jpg\ta cat on a mat\t3\n/abs/b.jpg\tA \"quoted\" dog\t4\n")
        let table = try CSVTable(path: path, options: CSVOptions(relativeTo: .csvFolder))
        #expect(table.columns == ["filepath", "title", "size"])
        #expect(table.imageColumnIndex == 0 && table.captionColumnIndex == 1)
        let (samples, bad) = try table.readAll()
        #expect(bad.isEmpty)
        #expect(samples == [
            CSVSample(line: 2, imagePath: folderOf(path) + "/img/a.jpg", caption: "a cat on a mat"),
            CSVSample(line: 3, imagePath: "/abs/b.jpg", caption: "A \"quoted\" dog"),
        ])
    }

    @Test("Quoted fields: doubled quotes, separators, LF and CRLF inside; line numbers count them")
    func quoting() throws {
        let text = "id,title,filepath\n"
            + "1,\"He said \"\"hi\"\"\",a.jpg\n"
            + "2,\"one, two\",b.jpg\n"
            + "3,\"first line\nsecond line\",c.jpg\n"
            + "4,\"crlf\r\ninside\",\"d,1.jpg\"\n"
            + "5,\"\"\"\",e.jpg\n"
            + "6,plain,\"\"\n"
        let table = try CSVTable(path: try csvFile(text, name: "t.csv"), options: CSVOptions(separator: ",", relativeTo: .csvFolder))
        #expect(table.imageColumnIndex == 2 && table.captionColumnIndex == 1)
        let (samples, bad) = try table.readAll()
        #expect(samples.map(\.caption) == ["He said \"hi\"", "one, two", "first line\nsecond line", "crlf\r\ninside", "\""])
        #expect(samples.map(\.line) == [2, 3, 4, 6, 8])
        #expect(samples[3].imagePath.hasSuffix("/d,1.jpg"))
        #expect(bad == [CSVBadRow(line: 9, reason: "the image path is empty")])
    }

    @Test("CRLF line ends, a byte-order mark and empty lines")
    func lineEnds() throws {
        let content: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("filepath\ttitle\r\n\r\na.jpg\tfirst\r\nb.jpg\t\"second\"\r\n\nc.jpg\tthird".utf8)
        let table = try CSVTable(path: try csvFile(bytes: content), options: CSVOptions(relativeTo: .workingDirectory))
        #expect(table.columns == ["filepath", "title"])
        let (samples, bad) = try table.readAll()
        #expect(bad.isEmpty)
        #expect(samples.map(\.caption) == ["first", "second", "third"])
        #expect(samples.map(\.line) == [3, 4, 6])
        let cwd = FileManager.default.currentDirectoryPath
        #expect(samples[0].imagePath == (cwd.hasSuffix("/") ? cwd : cwd + "/") + "a.jpg")
    }

    @Test("A missing column fails at open, naming the file, the column and the columns found")
    func missingColumn() throws {
        let path = try csvFile("filepath\tcaption\na.jpg\tx\n")
        let error = try #require(#expect(throws: CSVError.self) { _ = try CSVTable(path: path) })
        #expect(error.kind == .missingColumn && error.line == 1)
        #expect(error.description == "\(path), line 1: no caption column \"title\" in the header; the columns found (separator tab) are \"filepath\", \"caption\"")

        let comma = try csvFile("filepath,title\na.jpg,x\n")
        let wrongSeparator = try #require(#expect(throws: CSVError.self) { _ = try CSVTable(path: comma) })
        #expect(wrongSeparator.problem == "no image column \"filepath\" in the header; the columns found (separator tab) are \"filepath,title\"")

        let renamed = try CSVTable(path: path, options: CSVOptions(imageColumn: "filepath", captionColumn: "caption"))
        #expect(try renamed.next() != nil)

        let twice = try csvFile("title\tfilepath\ttitle\n")
        let duplicate = try #require(#expect(throws: CSVError.self) { _ = try CSVTable(path: twice) })
        #expect(duplicate.kind == .duplicateColumn && duplicate.problem.contains("as columns 1, 3"))

        let empty = try csvFile("")
        #expect(throws: CSVError(path: empty, line: nil, kind: .noHeader, problem: "the file is empty: expected a header row naming the columns")) {
            _ = try CSVTable(path: empty)
        }
    }

    @Test("A wrong field count names the line; reading goes on with the next row")
    func fieldCount() throws {
        let path = try csvFile("filepath\ttitle\na.jpg\t\"two\nlines\"\nb.jpg\tone\textra\nc.jpg\tok\nd.jpg\n")
        let table = try CSVTable(path: path)
        #expect(try table.next() != nil)
        let error = try #require(#expect(throws: CSVError.self) { _ = try table.next() })
        #expect(error.description == "\(path), line 4: expected 2 fields (as the header has), found 3")
        #expect(error.kind == .fieldCount && error.canSkipRow)
        guard case .sample(let sample) = try table.next() else { Issue.record("expected a sample"); return }
        #expect(sample.caption == "ok" && sample.line == 5)
        let short = try #require(#expect(throws: CSVError.self) { _ = try table.next() })
        #expect(short.line == 6 && short.problem.hasSuffix("found 1"))
        #expect(try table.next() == nil)
    }

    @Test("An unterminated quote ends the table; text after a closing quote is a row error")
    func quoteErrors() throws {
        let open = try csvFile("filepath\ttitle\na.jpg\tfine\nb.jpg\t\"never closed\nc.jpg\tlost\n")
        let table = try CSVTable(path: open)
        #expect(try table.next() != nil)
        let error = try #require(#expect(throws: CSVError.self) { _ = try table.next() })
        #expect(error.kind == .unterminatedQuote && error.line == 3 && !error.canSkipRow)
        #expect(error.description == "\(open), line 3: the quoted field 2 opened on line 3 is not closed before the end of the file")
        #expect(try table.next() == nil)

        let stray = try csvFile("filepath\ttitle\na.jpg\t\"quoted\" then text\nb.jpg\tok\n")
        let strayTable = try CSVTable(path: stray)
        let strayError = try #require(#expect(throws: CSVError.self) { _ = try strayTable.next() })
        #expect(strayError.kind == .textAfterQuote && strayError.line == 2 && strayError.canSkipRow)
        guard case .sample(let sample) = try strayTable.next() else { Issue.record("expected a sample"); return }
        #expect(sample.caption == "ok")

        let unquoted = try CSVTable(path: stray, options: CSVOptions(quoting: false))
        guard case .sample(let literal) = try unquoted.next() else { Issue.record("expected a sample"); return }
        #expect(literal.caption == "\"quoted\" then text")
    }

    @Test("Bad captions and paths come back as bad rows with reasons, not errors")
    func badRows() throws {
        var content = Array("filepath\ttitle\n".utf8)
        content += Array("a.jpg\tcaf".utf8) + [0xFF] + Array("\n".utf8)
        content += Array("b.jpg\t\n".utf8)
        content += Array("c.jpg\t   \n".utf8)
        content += Array("d.jpg\tover".utf8) + [0xC0, 0x80] + Array("long\n".utf8)
        content += Array("e.jpg\tsurrogate ".utf8) + [0xED, 0xA0, 0x80] + Array("\n".utf8)
        content += Array("f.jpg\tcut ".utf8) + [0xE2, 0x82] + Array("\n".utf8)
        content += [0x80] + Array(".jpg\tgood path?\n".utf8)
        content += Array("g.jpg\tgood: café ✓ 🐈\n".utf8)
        let table = try CSVTable(path: try csvFile(bytes: content))
        let (samples, bad) = try table.readAll()
        #expect(samples.map(\.caption) == ["good: café ✓ 🐈"])
        #expect(samples.map(\.line) == [9])
        #expect(bad == [
            CSVBadRow(line: 2, reason: "the caption is not valid UTF-8 (byte 0xFF at offset 3)"),
            CSVBadRow(line: 3, reason: "the caption is empty"),
            CSVBadRow(line: 4, reason: "the caption is only whitespace"),
            CSVBadRow(line: 5, reason: "the caption is not valid UTF-8 (byte 0xC0 at offset 4)"),
            CSVBadRow(line: 6, reason: "the caption is not valid UTF-8 (byte 0xED at offset 10)"),
            CSVBadRow(line: 7, reason: "the caption is not valid UTF-8 (byte 0xE2 at offset 4)"),
            CSVBadRow(line: 8, reason: "the image path is not valid UTF-8 (byte 0x80 at offset 0)"),
        ])
    }

    @Test("Relative paths: the CSV folder, the working directory, or automatic")
    func pathResolution() throws {
        let path = try csvFile("filepath\ttitle\nimages/here.jpg\tbeside the csv\nelsewhere.jpg\tnot beside\n")
        let folder = folderOf(path)
        try FileManager.default.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: folder + "/images/here.jpg", contents: Data([1])))
        let cwd = FileManager.default.currentDirectoryPath
        let inCwd = { (name: String) in (cwd.hasSuffix("/") ? cwd : cwd + "/") + name }

        func paths(_ base: CSVPathBase) throws -> [String] {
            try CSVTable(path: path, options: CSVOptions(relativeTo: base)).readAll().samples.map(\.imagePath)
        }
        #expect(try paths(.csvFolder) == [folder + "/images/here.jpg", folder + "/elsewhere.jpg"])
        #expect(try paths(.workingDirectory) == [inCwd("images/here.jpg"), inCwd("elsewhere.jpg")])
        #expect(try paths(.automatic) == [folder + "/images/here.jpg", inCwd("elsewhere.jpg")])
        #expect(try CSVTable(path: path).options.relativeTo == .automatic)
    }

    @Test("Rows across many read chunks parse as written")
    func largeFile() throws {
        var text = "filepath,title\n"
        var expected: [String] = []
        for i in 0..<6000 {
            let caption = i % 3 == 0 ? "row \(i), with \"quotes\"\nand a newline" : "row \(i) plain"
            expected.append(caption)
            let field = i % 3 == 0 ? "\"" + caption.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : caption
            text += "img/\(i).jpg,\(field)\(i % 2 == 0 ? "\r\n" : "\n")"
        }
        #expect(text.utf8.count > 3 * 65536)
        let table = try CSVTable(path: try csvFile(text, name: "big.csv"), options: CSVOptions(separator: ","))
        let (samples, bad) = try table.readAll()
        #expect(bad.isEmpty)
        #expect(samples.map(\.caption) == expected)
        #expect(samples.last?.line == 2 + 6000 + 2000 - 1)
    }
}
