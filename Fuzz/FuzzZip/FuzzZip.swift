// libFuzzer target: a zip archive from an untrusted source (a wheel that `clip data import emoji`
// reads pictures from) read by ZipArchive: its central directory, then every member extracted
// and checked against its CRC-32.

import Data

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let zip = try? ZipArchive(bytes: bytes, name: "fuzz.zip") else { return 0 }
    for member in zip.members {
        _ = zip.contains(member.name)
        _ = try? zip.read(member)
    }
    return 0
}
