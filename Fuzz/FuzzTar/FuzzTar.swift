// libFuzzer target: a WebDataset shard from an untrusted source read by the three tar readers, as
// `--data wds:` reads one: TarReader member by member (with 512-byte and 64 KiB chunks, so
// headers fall across chunk boundaries), WebDatasetSamples sample by sample, and TarIndex with
// `skipDamage` followed by a pread of every indexed sample. Each goes on past the errors after
// which its documentation says reading continues. Readers keep their default member-size limit.

import Data
import FuzzSupport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = ScratchFile.write(data, size, suffix: ".tar")
    for chunkSize in [512, 1 << 16] {
        guard let reader = try? TarReader(path: path, chunkSize: chunkSize) else { continue }
        while true {
            do {
                guard try reader.next() != nil else { break }
            } catch {
                if !error.canSkipMember { break }
            }
        }
    }
    if let samples = try? WebDatasetSamples(path: path) {
        while true {
            do {
                guard try samples.next() != nil else { break }
            } catch {
                if !error.canSkipMember { break }
            }
        }
    }
    if let index = try? TarIndex(path: path, skipDamage: true) {
        for i in 0..<index.count { _ = try? index.sample(i) }
    }
    return 0
}
